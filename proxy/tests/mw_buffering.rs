//! `buffering` over real sockets: a request body over
//! `maxRequestBodyBytes` is answered 413 (declared, or found while
//! reading a chunked one) and never reaches the backend; a body past
//! `memRequestBodyBytes` is spilled to a temporary file (unlinked at once,
//! seen open while the client is still sending, closed after) and arrives whole with
//! its length; a response past `memResponseBodyBytes` is held in a file
//! before its head is sent, one over `maxResponseBodyBytes` answered 500;
//! `retryExpression` sends a request with a body to another server after
//! a network error. Bad sizes and expressions are refused at their key.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::*;

fn dead() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn config(b: &Backend, dead: SocketAddr) -> String {
    config_with(b, b, dead)
}

fn config_with(b: &Backend, copies: &Backend, dead: SocketAddr) -> String {
    format!(
        r#"http:
  routers:
    limited:
      rule: "Host(`limited.test`)"
      service: s
      middlewares: [limited]
    spill:
      rule: "Host(`spill.test`)"
      service: s
      middlewares: [spill]
    retried:
      rule: "Host(`retried.test`)"
      service: flaky
      middlewares: [retried]
    mirrored:
      rule: "Host(`mirrored.test`)"
      service: copied
      middlewares: [spill]
  services:
    copied:
      mirroring:
        service: s
        mirrors:
          - name: copies
            percent: 100
    copies:
      loadBalancer:
        servers:
          - url: "http://{copies}"
    s:
      loadBalancer:
        servers:
          - url: "http://{b}"
    flaky:
      loadBalancer:
        servers:
          - url: "http://{dead}"
          - url: "http://{b}"
  middlewares:
    limited:
      buffering:
        maxRequestBodyBytes: 10000
        maxResponseBodyBytes: 5000
    spill:
      buffering:
        memRequestBodyBytes: 1000
        memResponseBodyBytes: 1000
    retried:
      buffering:
        retryExpression: "IsNetworkError() && Attempts() < 2"
"#,
        b = b.addr,
        copies = copies.addr,
    )
}

fn post(host: &str, path: &str, len: usize, chunked: bool) -> Vec<u8> {
    let body = vec![b'q'; len];
    if chunked {
        let mut r = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        for part in body.chunks(4096) {
            r.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            r.extend_from_slice(part);
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(b"0\r\n\r\n");
        r
    } else {
        let mut r = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        r.extend_from_slice(&body);
        r
    }
}

/// The spill files this process has open (unlinked when created: seen
/// through `/proc/self/fd`), by name, with their sizes.
fn spill_files() -> Vec<(String, u64)> {
    let prefix = std::env::temp_dir()
        .join(format!("proxy-buffer-{}-", std::process::id()))
        .to_string_lossy()
        .into_owned();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let target = std::fs::read_link(e.path()).ok()?;
            let target = target.to_string_lossy().into_owned();
            let size = std::fs::metadata(e.path()).ok()?.len();
            target.starts_with(&prefix).then_some((target, size))
        })
        .collect()
}

/// Waits (up to 10 s) for a spill file of at least `min` bytes.
async fn spilled(min: u64) -> (String, u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(f) = spill_files().into_iter().find(|(_, n)| *n >= min) {
            return f;
        }
        assert!(Instant::now() < deadline, "no spill file of {min} bytes");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (up to 5 s) for spill file `name` to be closed.
async fn closed(name: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while spill_files().iter().any(|(n, _)| n == name) {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_response_limits_answer_413_and_500() {
    let b = backend("b");
    let p = start_proxy(&config(&b, dead()));
    let hits = || b.stats.requests.load(Ordering::SeqCst);

    // Declared over the maximum: refused before reading.
    let r = raw(p.web, &post("limited.test", "/upload", 10_001, false)).await;
    assert_eq!(raw_status(&r), 413, "{r}");
    assert!(r.ends_with("Request Entity Too Large"), "{r}");
    assert_eq!(raw_header(&r, "content-type"), None, "as Traefik: none");
    // Chunked, found over it while reading.
    let r = raw(p.web, &post("limited.test", "/upload", 12_000, true)).await;
    assert_eq!(raw_status(&r), 413, "{r}");
    assert_eq!(hits(), 0, "nothing reached the backend");
    // At the maximum: sent on whole, with its length.
    let r = raw(p.web, &post("limited.test", "/upload", 10_000, true)).await;
    assert_eq!(raw_status(&r), 200, "{r}");
    assert!(r.contains("\r\n\r\n10000 "), "{r}");

    // Responses: at the maximum passes, over it is a 500.
    let ok = get(p.web, "limited.test", "/bytes/5000").await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body.len(), 5000);
    let over = get(p.web, "limited.test", "/bytes/5001").await;
    assert_eq!(over.status, 500);
    assert_eq!(over.text(), "Internal Server Error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_are_spilled_to_a_file_and_arrive_whole() {
    let b = backend("b");
    let p = start_proxy(&config(&b, dead()));

    // A 700 KiB request sent in two parts: while the second is held back,
    // what came past the first 1,000 bytes is on disk.
    let req = post("spill.test", "/upload", 700 * 1024, false);
    let cut = req.len() - 50 * 1024;
    let mut s = TcpStream::connect(p.web).await.unwrap();
    s.write_all(&req[..cut]).await.unwrap();
    let (path, size) = spilled(256 * 1024).await;
    assert!(size <= 700 * 1024 - 1000, "{size}");
    assert_eq!(b.stats.requests.load(Ordering::SeqCst), 0, "held back");
    s.write_all(&req[cut..]).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let out = String::from_utf8_lossy(&out);
    assert_eq!(raw_status(&out), 200, "{out}");
    let upload = post("x", "/", 700 * 1024, false);
    let sum = upload[upload.len() - 700 * 1024..]
        .iter()
        .fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(*b)));
    assert!(out.ends_with(&format!("{} {sum}", 700 * 1024)), "{out}");
    assert!(closed(&path).await, "the request's file is closed");

    // A 32 MiB response: held whole before its head is sent, the part
    // past 1,000 bytes in a file, which lives while the body is read.
    let n = 32 * 1024 * 1024;
    let mut s = TcpStream::connect(p.web).await.unwrap();
    s.write_all(
        format!("GET /bytes/{n} HTTP/1.1\r\nHost: spill.test\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert_eq!(raw_status(&head), 200, "{head}");
    let (path, size) = spilled(n as u64 - 1000).await;
    assert_eq!(size, n as u64 - 1000);
    let mut body = Vec::new();
    s.read_to_end(&mut body).await.unwrap();
    let body_len = if raw_header(&head, "transfer-encoding").is_some() {
        // Chunked: count the data only.
        let text = body;
        let mut rest = &text[..];
        let mut total = 0;
        while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..i]).unwrap(), 16).unwrap();
            if size == 0 {
                break;
            }
            total += size;
            rest = &rest[i + 2 + size + 2..];
        }
        total
    } else {
        body.len()
    };
    assert_eq!(body_len, n);
    // The body is dropped once sent.
    assert!(closed(&path).await, "the response's file is closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spilled_body_is_mirrored_whole() {
    // 200 KiB: spilled, and smaller than the file the spill test waits
    // for (the tests share this process's descriptors).
    let (b, copies) = (backend("b"), backend("copies"));
    let p = start_proxy(&config_with(&b, &copies, dead()));
    let r = raw(p.web, &post("mirrored.test", "/upload", 200 * 1024, true)).await;
    assert_eq!(raw_status(&r), 200, "{r}");
    assert!(r.contains(&format!("\r\n\r\n{} ", 200 * 1024)), "{r}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while copies.stats.requests.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(copies.stats.requests.load(Ordering::SeqCst), 1, "mirrored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_error_is_retried_for_a_request_with_a_body() {
    let b = backend("b");
    let p = start_proxy(&config(&b, dead()));
    // With a body: the dead server's 502 is retried on the other one.
    for _ in 0..4 {
        let r = raw(p.web, &post("retried.test", "/upload", 10, false)).await;
        assert_eq!(raw_status(&r), 200, "{r}");
    }
    // Without one, oxy never retries: half meet the dead server.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get(p.web, "retried.test", "/").await.status.as_u16());
    }
    statuses.sort();
    assert_eq!(statuses, [200, 200, 502, 502]);
}

#[test]
fn bad_options_are_refused_at_their_key() {
    let with = |opts: &str| {
        format!(
            "http:\n  routers:\n    r:\n      rule: \"PathPrefix(`/`)\"\n      service: s\n      middlewares: [buf]\n  services:\n    s:\n      loadBalancer:\n        servers:\n          - url: \"http://127.0.0.1:1\"\n  middlewares:\n    buf:\n      buffering:\n{opts}"
        )
    };
    let errors = dynamic_errors(&with("        maxRequestBodyBytes: -1\n"));
    assert!(
        errors.contains("http.middlewares.buf.buffering.maxRequestBodyBytes")
            && errors.contains("must be 0 or more"),
        "{errors}"
    );
    let errors = dynamic_errors(&with("        retryExpression: \"Attempts() < 2.5\"\n"));
    assert!(
        errors.contains("http.middlewares.buf.buffering.retryExpression")
            && errors.contains("compare it with an integer"),
        "{errors}"
    );
}
