//! Entrypoints: binding, the per-worker accept loops, serving connections
//! (HTTP/1.1 and HTTP/2 prior knowledge on the same port), idle timeouts and
//! graceful draining.
//!
//! Thread-per-core: every worker thread runs a current-thread tokio runtime
//! and its own `SO_REUSEPORT` socket per entrypoint, so the kernel spreads
//! connections and a connection never leaves its worker.

pub mod bind;

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};

use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::admin::AdminRoutes;
use crate::forward::{ConnCtx, EntryPointInfo, Shared};
use crate::rt::LocalExec;

/// Timeouts of one entrypoint (Traefik's `transport.respondingTimeouts`).
/// `read` bounds the time a request head may take to arrive (Go also
/// counts the body; a stalled upload is bounded by the upstream instead).
#[derive(Clone, Copy, Debug)]
pub struct ConnTimeouts {
    /// Maximum time to read a request's headers; `None` for no limit.
    pub read: Option<Duration>,
    /// Keep-alive connections idle for this long are closed.
    pub idle: Option<Duration>,
}

/// Everything a worker needs to serve one entrypoint.
#[derive(Debug)]
pub struct WorkerListener {
    /// Entrypoint settings.
    pub info: Arc<EntryPointInfo>,
    /// Connection timeouts.
    pub timeouts: ConnTimeouts,
    /// Admin endpoints (`/metrics`, `/ping`) served on this entrypoint.
    pub admin: AdminRoutes,
    /// Keep-alive limits.
    pub keep_alive: KeepAliveLimits,
    /// This worker's socket.
    pub socket: std::net::TcpListener,
}

/// What a worker is told to do at shutdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// Keep serving.
    Running,
    /// Stop accepting, finish in-flight requests until the deadline.
    Drain {
        /// Time left for in-flight requests.
        deadline: Duration,
    },
}

/// Counts a worker's open connections and wakes the drain when the last
/// one closes.
#[derive(Debug, Default)]
struct Tracker {
    open: Cell<usize>,
    idle: Notify,
}

struct ConnGuard(Rc<Tracker>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let n = self.0.open.get() - 1;
        self.0.open.set(n);
        if n == 0 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Runs one worker until it has drained: accepts on its sockets, serves
/// connections, and on [`Shutdown::Drain`] stops accepting and waits for
/// in-flight requests up to the deadline.
pub async fn run_worker(
    shared: Arc<Shared>,
    listeners: Vec<WorkerListener>,
    mut shutdown: watch::Receiver<Shutdown>,
) {
    let tracker = Rc::new(Tracker::default());
    let mut accepts = Vec::new();
    for l in listeners {
        let listener = match TcpListener::from_std(l.socket) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(entrypoint = %l.info.name, error = %e, "cannot register listener");
                continue;
            }
        };
        let server = Rc::new(make_builder());
        let ep = Rc::new(EpState {
            info: l.info,
            timeouts: l.timeouts,
            admin: l.admin,
            keep_alive: l.keep_alive,
        });
        accepts.push(tokio::task::spawn_local(accept_loop(
            listener,
            Arc::clone(&shared),
            ep,
            server,
            Rc::clone(&tracker),
            shutdown.clone(),
        )));
    }

    let deadline = loop {
        if let Shutdown::Drain { deadline } = *shutdown.borrow_and_update() {
            break deadline;
        }
        if shutdown.changed().await.is_err() {
            break Duration::ZERO;
        }
    };
    for a in accepts {
        let _ = a.await;
    }
    if tracker.open.get() > 0 {
        let drained = async {
            while tracker.open.get() > 0 {
                let notified = tracker.idle.notified();
                if tracker.open.get() == 0 {
                    break;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(deadline, drained).await.is_err() {
            tracing::warn!(
                open = tracker.open.get(),
                "grace period over: closing connections still in flight"
            );
        }
    }
}

struct EpState {
    info: Arc<EntryPointInfo>,
    timeouts: ConnTimeouts,
    admin: AdminRoutes,
    keep_alive: KeepAliveLimits,
}

/// Traefik's `transport.keepAliveMaxRequests` / `keepAliveMaxTime`.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeepAliveLimits {
    /// Close after this many requests; `None` = never.
    pub max_requests: Option<u64>,
    /// Close once the connection is this old; `None` = never.
    pub max_time: Option<Duration>,
}

impl KeepAliveLimits {
    #[inline]
    fn limit_reached(&self, ctx: &ConnCtx) -> bool {
        self.max_requests.is_some_and(|m| ctx.requests.get() >= m)
            || self.max_time.is_some_and(|t| ctx.opened.elapsed() >= t)
    }
}

fn make_builder() -> auto::Builder<LocalExec> {
    let mut b = auto::Builder::new(LocalExec);
    // Timeouts are the connection watchdog's job: hyper's header timer
    // would arm a boxed sleep for every request.
    b.http1().keep_alive(true).header_read_timeout(None);
    b
}

fn is_fd_exhaustion(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
        || e.kind() == std::io::ErrorKind::OutOfMemory
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    ep: Rc<EpState>,
    server: Rc<auto::Builder<LocalExec>>,
    tracker: Rc<Tracker>,
    mut shutdown: watch::Receiver<Shutdown>,
) {
    let mut last_warn: Option<std::time::Instant> = None;
    loop {
        if *shutdown.borrow_and_update() != Shutdown::Running {
            break;
        }
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => continue,
        };
        match accepted {
            Ok((stream, peer)) => {
                tracker.open.set(tracker.open.get() + 1);
                let guard = ConnGuard(Rc::clone(&tracker));
                tokio::task::spawn_local(serve_conn(
                    stream,
                    peer,
                    Arc::clone(&shared),
                    Rc::clone(&ep),
                    Rc::clone(&server),
                    shutdown.clone(),
                    guard,
                ));
            }
            Err(e) if is_fd_exhaustion(&e) => {
                // Out of file descriptors: back off instead of spinning on a
                // listener that stays readable, and keep serving what is open.
                if last_warn.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                    tracing::warn!(entrypoint = %ep.info.name, error = %e, "accept failed: out of file descriptors; backing off");
                    last_warn = Some(std::time::Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                tracing::debug!(entrypoint = %ep.info.name, error = %e, "accept failed");
            }
        }
    }
}

/// A TCP stream that notes whether bytes arrived since the watchdog last
/// looked, so timeouts need no timer per request (hyper's header timer
/// costs a boxed sleep per request). A plain load and store: the stream is
/// only touched by its worker, the atomic only makes it `Send`.
struct ActivityStream {
    inner: tokio::net::TcpStream,
    reads: Arc<AtomicU64>,
}

impl tokio::io::AsyncRead for ActivityStream {
    #[inline]
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() != before {
            let n = self.reads.load(Ordering::Relaxed);
            self.reads.store(n.wrapping_add(1), Ordering::Relaxed);
        }
        r
    }
}

impl tokio::io::AsyncWrite for ActivityStream {
    #[inline]
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    #[inline]
    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    #[inline]
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    #[inline]
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    #[inline]
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The per-connection timeout state, checked once per tick (not per
/// request). A connection with no request in flight is closed gracefully
/// when
/// - nothing arrived for `idleTimeout` (Traefik's keep-alive idle
///   timeout), or
/// - bytes arrived but no request started within `readTimeout` of the
///   first of them (a request head trickling in: slowloris).
///
/// Precision is one tick: a limit `T` closes after between `T` and
/// `T + tick`.
#[derive(Debug)]
struct Watchdog {
    tick: Duration,
    read: Option<Duration>,
    idle: Option<Duration>,
    last_reads: u64,
    last_requests: u64,
    quiet_for: Duration,
    partial_for: Duration,
}

impl Watchdog {
    fn new(t: &ConnTimeouts) -> Option<Self> {
        let tick = match (t.read, t.idle) {
            (None, None) => return None,
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
        };
        // Finer ticks for long limits keep the overshoot small.
        let tick = (tick / 4).max(Duration::from_millis(50));
        Some(Self {
            tick,
            read: t.read,
            idle: t.idle,
            last_reads: 0,
            last_requests: 0,
            quiet_for: Duration::ZERO,
            partial_for: Duration::ZERO,
        })
    }

    /// One tick: whether the connection should be closed.
    fn expired(&mut self, reads: u64, requests: u64, in_flight: u32) -> bool {
        let new_request = requests != self.last_requests;
        let new_bytes = reads != self.last_reads;
        self.last_requests = requests;
        self.last_reads = reads;
        if in_flight > 0 || new_request {
            self.quiet_for = Duration::ZERO;
            self.partial_for = Duration::ZERO;
            return false;
        }
        // Bytes that started no request: a head arriving (slowloris when
        // it drags on) or HTTP/2 control frames. From the first of them the
        // read deadline runs, as Go's does; silence counts towards idle.
        if new_bytes || !self.partial_for.is_zero() {
            self.partial_for += self.tick;
        }
        if new_bytes {
            self.quiet_for = Duration::ZERO;
        } else {
            self.quiet_for += self.tick;
        }
        self.read.is_some_and(|r| self.partial_for >= r)
            || self.idle.is_some_and(|i| self.quiet_for >= i)
    }
}

async fn serve_conn(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    ep: Rc<EpState>,
    server: Rc<auto::Builder<LocalExec>>,
    mut shutdown: watch::Receiver<Shutdown>,
    _guard: ConnGuard,
) {
    let _ = stream.set_nodelay(true);
    let ctx = Rc::new(ConnCtx::new(shared, Arc::clone(&ep.info), peer));
    let svc_ctx = Rc::clone(&ctx);
    let svc_ep = Rc::clone(&ep);
    let service = hyper::service::service_fn(move |req| {
        let ctx = Rc::clone(&svc_ctx);
        let ep = Rc::clone(&svc_ep);
        async move {
            if let Some(resp) = ep.admin.answer(&req) {
                return Ok::<_, std::convert::Infallible>(resp);
            }
            let mut resp = crate::forward::handle(Rc::clone(&ctx), req).await?;
            if ep.keep_alive.limit_reached(&ctx) {
                // Traefik's keepAliveMaxRequests / keepAliveMaxTime: this
                // response closes the HTTP/1.1 connection.
                resp.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            Ok(resp)
        }
    });
    let reads = Arc::new(AtomicU64::new(0));
    let io = ActivityStream {
        inner: stream,
        reads: Arc::clone(&reads),
    };
    let conn = server.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);

    let mut watchdog = Watchdog::new(&ep.timeouts);
    let tick = watchdog.as_ref().map_or(Duration::MAX, |w| w.tick);
    let mut closing = false;
    let mut expired = false;
    loop {
        tokio::select! {
            biased;
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                }
                break;
            }
            _ = shutdown.changed(), if !closing => {
                if *shutdown.borrow() != Shutdown::Running {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            _ = tokio::time::sleep(tick), if watchdog.is_some() && (!closing || expired) => {
                if expired {
                    // Graceful shutdown could not close it within a tick: an
                    // HTTP/1 request head still arriving, with no request in
                    // flight. Nothing is lost by dropping it.
                    if ctx.in_flight.get() == 0 {
                        break;
                    }
                    continue;
                }
                let w = watchdog.as_mut().expect("guarded by the branch condition");
                if w.expired(reads.load(Ordering::Relaxed), ctx.requests.get(), ctx.in_flight.get()) {
                    closing = true;
                    expired = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dog(read: u64, idle: u64) -> Watchdog {
        Watchdog::new(&ConnTimeouts {
            read: (read > 0).then(|| Duration::from_secs(read)),
            idle: (idle > 0).then(|| Duration::from_secs(idle)),
        })
        .unwrap()
    }

    #[test]
    fn idle_connection_closes_after_idle_timeout() {
        let mut w = dog(60, 180);
        assert_eq!(w.tick, Duration::from_secs(15));
        // 180 s of nothing: 12 ticks.
        for i in 0..11 {
            assert!(!w.expired(0, 0, 0), "tick {i}");
        }
        assert!(w.expired(0, 0, 0));
    }

    #[test]
    fn trickled_request_head_closes_after_read_timeout() {
        let mut w = dog(60, 180);
        let mut reads = 0;
        for i in 0..3 {
            reads += 1;
            assert!(!w.expired(reads, 0, 0), "tick {i}");
        }
        reads += 1;
        assert!(w.expired(reads, 0, 0), "60 s of bytes without a request");
    }

    #[test]
    fn a_lone_frame_then_silence_closes() {
        // An HTTP/2 RST_STREAM or PING: bytes, then nothing. The read
        // deadline runs from the frame (60 s: 4 ticks of 15 s)...
        let mut w = dog(60, 180);
        for i in 0..3 {
            assert!(!w.expired(1, 0, 0), "tick {i}");
        }
        assert!(w.expired(1, 0, 0));
        // ...and without a read timeout, silence idles it out (2 s: 4
        // ticks of 500 ms after the frame's tick).
        let mut w = dog(0, 2);
        assert!(!w.expired(1, 0, 0));
        for i in 0..3 {
            assert!(!w.expired(1, 0, 0), "tick {i}");
        }
        assert!(w.expired(1, 0, 0));
    }

    #[test]
    fn activity_resets_the_clocks() {
        let mut w = dog(60, 180);
        for i in 0..100u64 {
            // A request every tick, or one in flight.
            assert!(!w.expired(i, i, 0));
            assert!(!w.expired(i, i, 1));
        }
        assert!(
            Watchdog::new(&ConnTimeouts {
                read: None,
                idle: None
            })
            .is_none()
        );
    }
}
