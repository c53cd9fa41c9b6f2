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
//!
//! Building an entry costs five small copies when the log is on: the
//! request path and the `Host`, `X-Forwarded-For`, `Referer` and
//! `User-Agent` values are copied into `Bytes` of their own (see
//! `forward::record`); router, service and server names are `Arc<str>`
//! clones of the configuration snapshot. Formatting (`format.rs`) and I/O
//! happen on the writer thread.

use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::thread;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Method, Version};

use super::names;

mod format;

pub(crate) use format::rfc3339_nano;
#[cfg(test)]
mod tests;

use format::format_entry;

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
                if let Err(e) = write_one(&mut out, &mut line, &q, format, keep_headers) {
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
                        let _ = write_one(&mut out, &mut line, &q, format, keep_headers);
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

/// Formats one queued entry into `line` and writes it.
fn write_one(
    out: &mut impl Write,
    line: &mut String,
    q: &Queued,
    format: AccessLogFormat,
    keep_headers: bool,
) -> io::Result<()> {
    line.clear();
    format_entry(
        line,
        &q.entry,
        q.count,
        format,
        keep_headers,
        SystemTime::now(),
    );
    out.write_all(line.as_bytes())
}

fn report_write_error(failing: &mut bool, e: &io::Error) {
    // Once per failure streak, not once per line.
    if !*failing {
        tracing::error!(error = %e, "cannot write the access log");
        *failing = true;
    }
}
