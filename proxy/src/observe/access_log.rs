//! Traefik's access log (`accessLog`): `common`, `genericCLF` and `json`
//! formats, to `filePath` or stdout. Off unless configured.
//!
//! The request path only hands an [`AccessLogEntry`] to
//! [`AccessLogSender::log`]: a `try_send` into a bounded `std::sync::mpsc`
//! channel. Its array flavour preallocates the slots (no allocation per
//! line) and enqueues with atomics; a sender would take the channel's
//! internal lock only to wake a receiver parked in `recv`, and our writer
//! never parks there: it polls with `try_recv` and sleeps between polls, so
//! senders never lock. When the writer falls behind (slow or full disk) the
//! queue fills and new lines are dropped and counted
//! (`proxy_accesslog_dropped_total`): a request never waits for the log.
//! Formatting and I/O happen on the writer thread.
//!
//! Entry fields are `Bytes` / `Arc<str>` views of the request and of the
//! configuration snapshot, so building an entry copies no string.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Version};
use serde_json::Value;

use super::names;

/// Queue capacity when `bufferingSize` is 0 (Traefik then writes inline;
/// we never write on the request path, so a queue is always needed).
pub const DEFAULT_QUEUE: usize = 1024;

/// How long the writer sleeps when the queue is empty.
const IDLE_POLL: Duration = Duration::from_millis(2);

/// An access-log format (`accessLog.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessLogFormat {
    /// `common`: Traefik's CLF variant (adds request count, router, service
    /// URL and duration to CLF). Traefik's default.
    #[default]
    Common,
    /// `genericCLF`: plain combined log format.
    GenericClf,
    /// `json`: one JSON object per line with Traefik's field names.
    Json,
}

impl AccessLogFormat {
    /// Parses Traefik's value (`common`, `genericCLF`, `json`, exact case as
    /// Traefik compares them). `None` for anything else; Traefik then logs
    /// an error and uses `common`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "common" => Some(Self::Common),
            "genericCLF" => Some(Self::GenericClf),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// Access-log settings (plain values from the static config).
#[derive(Debug, Clone, Default)]
pub struct AccessLogOptions {
    /// `accessLog.filePath`; `None` (or empty) writes to stdout.
    pub file_path: Option<PathBuf>,
    /// `accessLog.format`.
    pub format: AccessLogFormat,
    /// `accessLog.bufferingSize`: how many lines may wait for the writer
    /// (the queue's capacity); 0 means [`DEFAULT_QUEUE`].
    pub buffering_size: usize,
    /// Whether the `Referer` and `User-Agent` request headers are logged
    /// (`accessLog.fields.headers.defaultMode: keep`). Traefik's default is
    /// `drop`, so by default `common` shows `"-" "-"` for them, as Traefik.
    pub keep_headers: bool,
}

/// Errors starting the access log.
#[derive(Debug, thiserror::Error)]
pub enum AccessLogError {
    /// The log file (or its directory) could not be created or opened.
    #[error("error opening access log file {path}: {source}")]
    Open {
        /// The configured `filePath`.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The writer thread could not be started.
    #[error("cannot start the access log writer: {0}")]
    Thread(io::Error),
}

/// What one request looked like, captured when it finished.
#[derive(Debug, Clone)]
pub struct AccessLogEntry {
    /// When the request was received (`StartUTC`).
    pub start: SystemTime,
    /// Total time to serve it (`Duration`).
    pub duration: Duration,
    /// Peer address (`ClientAddr`, `ClientHost`, `ClientPort`).
    pub client_addr: Option<SocketAddr>,
    /// `X-Forwarded-For` as received; Traefik logs it as `ClientHost` when
    /// present.
    pub forwarded_for: Option<Bytes>,
    /// `RequestMethod`.
    pub method: Method,
    /// Path and query as received (`RequestPath`).
    pub path: Bytes,
    /// `RequestProtocol` (`HTTP/1.1`, `HTTP/2.0`).
    pub version: Version,
    /// `Host` (`RequestAddr`, split into `RequestHost` / `RequestPort`).
    pub host: Option<Bytes>,
    /// Whether the request came over TLS (`RequestScheme`).
    pub tls: bool,
    /// `Referer` header (logged only with `keep_headers`).
    pub referer: Option<Bytes>,
    /// `User-Agent` header (logged only with `keep_headers`).
    pub user_agent: Option<Bytes>,
    /// Status sent to the client (`DownstreamStatus`).
    pub status: u16,
    /// Response body bytes sent to the client (`DownstreamContentSize`).
    pub response_size: u64,
    /// Request body bytes received (`RequestContentSize`).
    pub request_size: u64,
    /// Status the backend returned (`OriginStatus`); `None` when the proxy
    /// answered itself.
    pub origin_status: Option<u16>,
    /// Content length the backend announced (`OriginContentSize`).
    pub origin_size: Option<u64>,
    /// Time the backend took (`OriginDuration`).
    pub origin_duration: Option<Duration>,
    /// `RouterName`.
    pub router: Option<Arc<str>>,
    /// `ServiceName`.
    pub service: Option<Arc<str>>,
    /// `ServiceURL` (the chosen server's URL; `ServiceAddr` is derived).
    pub service_url: Option<Arc<str>>,
    /// `RetryAttempts`.
    pub retry_attempts: u32,
}

impl AccessLogEntry {
    /// An entry with only the request line filled in; set the rest with
    /// struct update syntax.
    pub fn new(start: SystemTime, method: Method, path: Bytes, version: Version) -> Self {
        Self {
            start,
            duration: Duration::ZERO,
            client_addr: None,
            forwarded_for: None,
            method,
            path,
            version,
            host: None,
            tls: false,
            referer: None,
            user_agent: None,
            status: 0,
            response_size: 0,
            request_size: 0,
            origin_status: None,
            origin_size: None,
            origin_duration: None,
            router: None,
            service: None,
            service_url: None,
            retry_attempts: 0,
        }
    }
}

/// A queued entry and its `RequestCount`.
struct Queued {
    count: u64,
    entry: AccessLogEntry,
}

// === sender (request path) ===

/// The request path's end of the access log. Cheap to clone; one per worker.
#[derive(Clone)]
pub struct AccessLogSender {
    tx: SyncSender<Queued>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AccessLogSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLogSender")
            .field("dropped", &self.dropped())
            .finish()
    }
}

struct Shared {
    /// Traefik's `RequestCount`: requests seen since start.
    requests: AtomicU64,
    dropped: AtomicU64,
    dropped_metric: metrics::Counter,
    stop: AtomicBool,
}

impl AccessLogSender {
    /// Queues one line; never blocks. When the writer is behind, the line
    /// is dropped and counted.
    #[inline]
    pub fn log(&self, entry: AccessLogEntry) {
        let count = self.shared.requests.fetch_add(1, Ordering::Relaxed) + 1;
        match self.tx.try_send(Queued { count, entry }) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                self.shared.dropped_metric.increment(1);
            }
        }
    }

    /// Lines dropped so far.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

// === writer (its own thread) ===

/// Guard of the writer thread. [`AccessLogWriter::shutdown`] (or drop)
/// writes what is queued, flushes and joins the thread.
#[derive(Debug)]
pub struct AccessLogWriter {
    shared: Arc<Shared>,
    join: Option<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .finish()
    }
}

impl AccessLogWriter {
    /// Writes what is queued, flushes and stops the writer.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

impl Drop for AccessLogWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Opens the output (creating the file's directory as Traefik does) and
/// starts the writer thread.
pub fn start(
    options: &AccessLogOptions,
) -> Result<(AccessLogSender, AccessLogWriter), AccessLogError> {
    let out: Box<dyn Write + Send> = match options.file_path.as_deref() {
        Some(p) if !p.as_os_str().is_empty() => {
            Box::new(open_file(p).map_err(|source| AccessLogError::Open {
                path: p.to_path_buf(),
                source,
            })?)
        }
        _ => Box::new(io::stdout()),
    };
    start_with_output(options, out)
}

fn open_file(path: &Path) -> io::Result<std::fs::File> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// [`start`] with any output (tests, or a caller-provided sink).
pub fn start_with_output(
    options: &AccessLogOptions,
    out: Box<dyn Write + Send>,
) -> Result<(AccessLogSender, AccessLogWriter), AccessLogError> {
    let capacity = if options.buffering_size == 0 {
        DEFAULT_QUEUE
    } else {
        options.buffering_size
    };
    let (tx, rx) = sync_channel::<Queued>(capacity);
    let shared = Arc::new(Shared {
        requests: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        dropped_metric: metrics::counter!(names::ACCESSLOG_DROPPED_TOTAL),
        stop: AtomicBool::new(false),
    });
    let format = options.format;
    let keep_headers = options.keep_headers;
    let thread_shared = Arc::clone(&shared);
    let join = thread::Builder::new()
        .name("access-log".into())
        .spawn(move || write_loop(rx, out, &thread_shared, format, keep_headers))
        .map_err(AccessLogError::Thread)?;
    Ok((
        AccessLogSender {
            tx,
            shared: Arc::clone(&shared),
        },
        AccessLogWriter {
            shared,
            join: Some(join),
        },
    ))
}

fn write_loop(
    rx: Receiver<Queued>,
    out: Box<dyn Write + Send>,
    shared: &Shared,
    format: AccessLogFormat,
    keep_headers: bool,
) {
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    let mut line = String::with_capacity(512);
    let mut failing = false;
    loop {
        match rx.try_recv() {
            Ok(q) => {
                line.clear();
                format_entry(
                    &mut line,
                    &q.entry,
                    q.count,
                    format,
                    keep_headers,
                    SystemTime::now(),
                );
                if let Err(e) = out.write_all(line.as_bytes()) {
                    report_write_error(&mut failing, &e);
                }
            }
            Err(TryRecvError::Empty) => {
                match out.flush() {
                    Ok(()) => failing = false,
                    Err(e) => report_write_error(&mut failing, &e),
                }
                if shared.stop.load(Ordering::Acquire) {
                    // Drain what raced in, then stop.
                    while let Ok(q) = rx.try_recv() {
                        line.clear();
                        format_entry(
                            &mut line,
                            &q.entry,
                            q.count,
                            format,
                            keep_headers,
                            SystemTime::now(),
                        );
                        let _ = out.write_all(line.as_bytes());
                    }
                    let _ = out.flush();
                    return;
                }
                thread::sleep(IDLE_POLL);
            }
            Err(TryRecvError::Disconnected) => {
                let _ = out.flush();
                return;
            }
        }
    }
}

fn report_write_error(failing: &mut bool, e: &io::Error) {
    // Once per failure streak, not once per line.
    if !*failing {
        tracing::error!(error = %e, "cannot write the access log");
        *failing = true;
    }
}

// === formatting (writer thread) ===

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

fn proto_str(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// Go's `net.SplitHostPort` as Traefik's `silentSplitHostPort` uses it:
/// `(host, port)`, or `(value, "-")` when there is no port.
fn split_host_port(value: &str) -> (&str, &str) {
    if let Some(rest) = value.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']')
            && let Some(port) = after.strip_prefix(':')
        {
            return (host, port);
        }
        return (value, "-");
    }
    match value.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, port),
        _ => (value, "-"),
    }
}

/// `host:port` of a server URL (`ServiceAddr`).
fn url_addr(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

/// Civil date (year, month 1..=12, day 1..=31) of a day count since
/// 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

struct Utc {
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    min: u64,
    sec: u64,
    nanos: u32,
}

fn utc(t: SystemTime) -> Utc {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    Utc {
        year,
        month,
        day,
        hour: sod / 3600,
        min: sod % 3600 / 60,
        sec: sod % 60,
        nanos: d.subsec_nanos(),
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Go's `02/Jan/2006:15:04:05 -0700`, in UTC.
fn clf_time(out: &mut String, t: SystemTime) {
    let u = utc(t);
    let _ = write!(
        out,
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        u.day,
        MONTHS[(u.month - 1) as usize],
        u.year,
        u.hour,
        u.min,
        u.sec
    );
}

/// Go's `time.RFC3339Nano` in UTC (fraction without trailing zeros, none
/// when zero), as `encoding/json` writes a `time.Time`.
fn rfc3339_nano(t: SystemTime) -> String {
    let u = utc(t);
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        u.year, u.month, u.day, u.hour, u.min, u.sec
    );
    if u.nanos != 0 {
        let frac = format!("{:09}", u.nanos);
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Go's `time.RFC3339` in UTC (logrus's `time` field).
fn rfc3339(t: SystemTime) -> String {
    let u = utc(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        u.year, u.month, u.day, u.hour, u.min, u.sec
    )
}

/// Traefik's `toLog(..., quoted=true)` for strings: `"-"` when absent or
/// empty, else quoted with `"` escaped.
fn quoted(out: &mut String, v: Option<&str>) {
    match v {
        Some(s) if !s.is_empty() => {
            out.push('"');
            out.push_str(&s.replace('"', "\\\""));
            out.push('"');
        }
        _ => out.push_str("\"-\""),
    }
}

fn or_dash(v: &str) -> &str {
    if v.is_empty() { "-" } else { v }
}

/// `ClientHost`: `X-Forwarded-For` when present, else the peer's IP.
fn client_host(e: &AccessLogEntry) -> String {
    match &e.forwarded_for {
        Some(xff) if !xff.is_empty() => lossy(xff).into_owned(),
        _ => e
            .client_addr
            .map_or_else(String::new, |a| a.ip().to_string()),
    }
}

/// Formats one line (with its newline) into `out`.
fn format_entry(
    out: &mut String,
    e: &AccessLogEntry,
    count: u64,
    format: AccessLogFormat,
    keep_headers: bool,
    now: SystemTime,
) {
    match format {
        AccessLogFormat::Json => json_line(out, e, count, keep_headers, now),
        AccessLogFormat::Common | AccessLogFormat::GenericClf => {
            let referer = e
                .referer
                .as_ref()
                .filter(|_| keep_headers)
                .map(|b| lossy(b));
            let agent = e
                .user_agent
                .as_ref()
                .filter(|_| keep_headers)
                .map(|b| lossy(b));
            let status = if e.status == 0 {
                "-".to_owned()
            } else {
                e.status.to_string()
            };
            let _ = write!(out, "{} - - [", or_dash(&client_host(e)));
            clf_time(out, e.start);
            let _ = write!(
                out,
                "] \"{} {} {}\" {} {} ",
                e.method,
                or_dash(&lossy(&e.path)),
                proto_str(e.version),
                status,
                e.response_size
            );
            quoted(out, referer.as_deref());
            out.push(' ');
            quoted(out, agent.as_deref());
            if format == AccessLogFormat::Common {
                let _ = write!(out, " {count} ");
                quoted(out, e.router.as_deref());
                out.push(' ');
                quoted(out, e.service_url.as_deref());
                let _ = write!(out, " {}ms", e.duration.as_nanos() / 1_000_000);
            }
            out.push('\n');
        }
    }
}

fn nanos(d: Duration) -> Value {
    Value::from(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn json_line(
    out: &mut String,
    e: &AccessLogEntry,
    count: u64,
    keep_headers: bool,
    now: SystemTime,
) {
    // A BTreeMap sorts the keys, as Go's encoding/json does for logrus.
    let mut m: BTreeMap<&str, Value> = BTreeMap::new();
    let start = rfc3339_nano(e.start);
    m.insert("StartUTC", Value::from(start.clone()));
    // No timezone database here: local time is logged as UTC.
    m.insert("StartLocal", Value::from(start));
    m.insert("Duration", nanos(e.duration));
    let overhead = e
        .origin_duration
        .map_or(e.duration, |o| e.duration.saturating_sub(o));
    m.insert("Overhead", nanos(overhead));
    if let Some(o) = e.origin_duration {
        m.insert("OriginDuration", nanos(o));
    }
    if let Some(r) = &e.router {
        m.insert("RouterName", Value::from(&**r));
    }
    if let Some(s) = &e.service {
        m.insert("ServiceName", Value::from(&**s));
    }
    if let Some(u) = &e.service_url {
        m.insert("ServiceURL", Value::from(&**u));
        m.insert("ServiceAddr", Value::from(url_addr(u)));
    }
    if let Some(a) = e.client_addr {
        m.insert("ClientAddr", Value::from(a.to_string()));
        m.insert("ClientPort", Value::from(a.port().to_string()));
    }
    m.insert("ClientHost", Value::from(client_host(e)));
    m.insert("ClientUsername", Value::from("-"));
    if let Some(h) = &e.host {
        let h = lossy(h);
        let (host, port) = split_host_port(&h);
        m.insert("RequestHost", Value::from(host));
        m.insert("RequestPort", Value::from(port));
        m.insert("RequestAddr", Value::from(&*h));
    }
    m.insert("RequestMethod", Value::from(e.method.as_str()));
    m.insert("RequestPath", Value::from(lossy(&e.path)));
    m.insert("RequestProtocol", Value::from(proto_str(e.version)));
    m.insert(
        "RequestScheme",
        Value::from(if e.tls { "https" } else { "http" }),
    );
    m.insert("RequestContentSize", Value::from(e.request_size));
    m.insert("RequestCount", Value::from(count));
    m.insert("RetryAttempts", Value::from(e.retry_attempts));
    m.insert("DownstreamStatus", Value::from(e.status));
    m.insert("DownstreamContentSize", Value::from(e.response_size));
    if let Some(s) = e.origin_status {
        m.insert("OriginStatus", Value::from(s));
    }
    if let Some(o) = e.origin_size {
        m.insert("OriginContentSize", Value::from(o));
        if o != e.response_size && e.response_size != 0 {
            m.insert("GzipRatio", Value::from(o as f64 / e.response_size as f64));
        }
    }
    if keep_headers {
        if let Some(r) = &e.referer {
            m.insert("request_Referer", Value::from(lossy(r)));
        }
        if let Some(a) = &e.user_agent {
            m.insert("request_User-Agent", Value::from(lossy(a)));
        }
    }
    m.insert("level", Value::from("info"));
    m.insert("msg", Value::from(""));
    m.insert("time", Value::from(rfc3339(now)));
    // Serializing a map of `Value`s cannot fail.
    if let Ok(s) = serde_json::to_string(&m) {
        out.push_str(&s);
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
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
}
