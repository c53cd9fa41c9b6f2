//! The access log's formats and its never-blocking queue, against
//! Traefik's formatter output.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Version};

use super::format::{civil_from_days, format_entry, rfc3339_nano, split_host_port, url_addr};
use super::*;

/// 2009-11-10T23:00:00Z, the date in Traefik's formatter tests.
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_257_894_000)
}

fn entry() -> AccessLogEntry {
    AccessLogEntry {
        duration: Duration::from_millis(123),
        client_addr: Some("10.0.0.1:51000".parse().unwrap()),
        host: Some(Bytes::from_static(b"example.com:8080")),
        referer: Some(Bytes::from_static(b"referer")),
        user_agent: Some(Bytes::from_static(b"foo \" bar")),
        status: 200,
        response_size: 132,
        request_size: 7,
        origin_status: Some(200),
        origin_duration: Some(Duration::from_millis(100)),
        router: Some("foo@file".into()),
        service: Some("svc@file".into()),
        service_url: Some("http://10.0.0.2:8081/base".into()),
        ..AccessLogEntry::new(
            t0() + Duration::from_millis(5),
            Method::GET,
            Bytes::from_static(b"/foo?x=1"),
            Version::HTTP_11,
        )
    }
}

fn temp_path(name: &str) -> PathBuf {
    let mut p = std::env::temp_dir();
    p.push(format!(
        "proxy-observe-{}-{}-{name}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    p
}

fn write_and_read(options: AccessLogOptions, entries: Vec<AccessLogEntry>) -> String {
    let (tx, writer) = start(&options).unwrap();
    for e in entries {
        tx.log(e);
    }
    writer.shutdown();
    let path = options.file_path.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
    text
}

#[test]
fn common_format_matches_traefik() {
    let dir = temp_path("common");
    let options = AccessLogOptions {
        file_path: Some(dir.join("sub/access.log")),
        format: AccessLogFormat::Common,
        buffering_size: 0,
        keep_headers: true,
    };
    let no_router = AccessLogEntry {
        status: 404,
        response_size: 19,
        router: None,
        service: None,
        service_url: None,
        referer: None,
        user_agent: None,
        duration: Duration::from_micros(900),
        ..entry()
    };
    let text = write_and_read(options, vec![entry(), no_router]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            r#"10.0.0.1 - - [10/Nov/2009:23:00:00 +0000] "GET /foo?x=1 HTTP/1.1" 200 132 "referer" "foo \" bar" 1 "foo@file" "http://10.0.0.2:8081/base" 123ms"#,
            r#"10.0.0.1 - - [10/Nov/2009:23:00:00 +0000] "GET /foo?x=1 HTTP/1.1" 404 19 "-" "-" 2 "-" "-" 0ms"#,
        ]
    );
}

#[test]
fn headers_are_dropped_by_default_and_xff_is_the_client_host() {
    let e = AccessLogEntry {
        forwarded_for: Some(Bytes::from_static(b"203.0.113.9")),
        ..entry()
    };
    let mut line = String::new();
    format_entry(&mut line, &e, 5, AccessLogFormat::Common, false, t0());
    assert!(line.starts_with("203.0.113.9 - - ["), "{line}");
    assert!(line.contains(r#" 200 132 "-" "-" 5 "foo@file""#), "{line}");
    let mut generic = String::new();
    format_entry(&mut generic, &e, 5, AccessLogFormat::GenericClf, true, t0());
    assert!(
        generic.ends_with("200 132 \"referer\" \"foo \\\" bar\"\n"),
        "{generic}"
    );
}

#[test]
fn json_format_uses_traefik_field_names() {
    let dir = temp_path("json");
    let options = AccessLogOptions {
        file_path: Some(dir.join("access.json")),
        format: AccessLogFormat::Json,
        buffering_size: 16,
        keep_headers: false,
    };
    let text = write_and_read(options, vec![entry()]);
    let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(v["ClientAddr"], "10.0.0.1:51000");
    assert_eq!(v["ClientHost"], "10.0.0.1");
    assert_eq!(v["ClientPort"], "51000");
    assert_eq!(v["ClientUsername"], "-");
    assert_eq!(v["RequestMethod"], "GET");
    assert_eq!(v["RequestPath"], "/foo?x=1");
    assert_eq!(v["RequestProtocol"], "HTTP/1.1");
    assert_eq!(v["RequestScheme"], "http");
    assert_eq!(v["RequestHost"], "example.com");
    assert_eq!(v["RequestPort"], "8080");
    assert_eq!(v["RequestAddr"], "example.com:8080");
    assert_eq!(v["RequestContentSize"], 7);
    assert_eq!(v["RequestCount"], 1);
    assert_eq!(v["DownstreamStatus"], 200);
    assert_eq!(v["DownstreamContentSize"], 132);
    assert_eq!(v["OriginStatus"], 200);
    assert_eq!(v["RouterName"], "foo@file");
    assert_eq!(v["ServiceName"], "svc@file");
    assert_eq!(v["ServiceURL"], "http://10.0.0.2:8081/base");
    assert_eq!(v["ServiceAddr"], "10.0.0.2:8081");
    assert_eq!(v["Duration"], 123_000_000u64);
    assert_eq!(v["OriginDuration"], 100_000_000u64);
    assert_eq!(v["Overhead"], 23_000_000u64);
    assert_eq!(v["StartUTC"], "2009-11-10T23:00:00.005Z");
    assert_eq!(v["RetryAttempts"], 0);
    assert_eq!(v["level"], "info");
    assert!(
        v.get("request_User-Agent").is_none(),
        "headers dropped by default"
    );
    // Keys come sorted, as Go's encoding/json writes a map.
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
}

/// A sink whose first write says so and then blocks until released.
struct Gate {
    entered: SyncSender<()>,
    release: Receiver<()>,
    first: bool,
    lines: Arc<AtomicU64>,
}

impl Write for Gate {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.first {
            self.first = false;
            let _ = self.entered.send(());
            let _ = self.release.recv();
        }
        let n = buf.iter().filter(|&&b| b == b'\n').count() as u64;
        self.lines.fetch_add(n, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_stuck_writer_drops_lines_instead_of_blocking() {
    let (entered_tx, entered) = sync_channel(1);
    let (release_tx, release) = sync_channel(1);
    let lines = Arc::new(AtomicU64::new(0));
    let gate = Gate {
        entered: entered_tx,
        release,
        first: true,
        lines: Arc::clone(&lines),
    };
    let options = AccessLogOptions {
        buffering_size: 4,
        ..AccessLogOptions::default()
    };
    let (tx, writer) = start_with_output(&options, Box::new(gate)).unwrap();
    tx.log(entry());
    // The writer is now stuck in its first write (the "full disk").
    entered.recv_timeout(Duration::from_secs(10)).unwrap();
    let began = std::time::Instant::now();
    for _ in 0..100 {
        tx.log(entry());
    }
    assert!(
        began.elapsed() < Duration::from_secs(1),
        "log() must not block"
    );
    assert_eq!(tx.dropped(), 96, "4 queued, the rest dropped");
    release_tx.send(()).unwrap();
    writer.shutdown();
    assert_eq!(lines.load(Ordering::Relaxed), 5);
}

#[test]
fn helpers() {
    assert_eq!(split_host_port("[::1]:80"), ("::1", "80"));
    assert_eq!(split_host_port("example.com"), ("example.com", "-"));
    assert_eq!(split_host_port("::1"), ("::1", "-"));
    assert_eq!(url_addr("h2c://backend:9000"), "backend:9000");
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    assert_eq!(rfc3339_nano(t0()), "2009-11-10T23:00:00Z");
    assert_eq!(
        AccessLogFormat::parse("genericCLF"),
        Some(AccessLogFormat::GenericClf)
    );
    assert_eq!(AccessLogFormat::parse("JSON"), None);
}
