//! Entrypoints: binding, the per-worker accept loops and graceful
//! draining. The connection-level pieces live beside it: `conn.rs` (the
//! per-connection context and serving a connection), `served.rs` (the
//! response body that keeps its request in flight), `stream.rs` (the
//! plain-or-TLS client stream, the entrypoint's handshake, the activity
//! counter), `tls.rs` (telling TLS from plain, the TLS handshake with the
//! options the SNI chose) and `watchdog.rs` (read and idle timeouts).
//!
//! Thread-per-core: every worker thread runs a current-thread tokio runtime
//! and its own `SO_REUSEPORT` socket per entrypoint, so the kernel spreads
//! connections and a connection never leaves its worker. Accepting runs
//! per connection; nothing here runs per request.

pub mod bind;
pub mod conn;
pub mod proxy_protocol;
mod request_line;
pub mod served;
pub mod serving;
pub mod stream;
mod tls;
mod watchdog;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

pub use conn::ConnCtx;
pub use proxy_protocol::ProxyProtocol;
pub use stream::{Accepted, ClientCerts, ClientStream, Handshake};

use self::serving::Builders;
use crate::admin::AdminRoutes;
use crate::config::{DEFAULT_MAX_HEADER_BYTES, Http2Config, UnderscoreHeaders};
use crate::forward::Shared;
use crate::ipnet::IpSet;
use crate::rt::LocalExec;

/// Static per-entrypoint settings the request path needs.
#[derive(Debug)]
pub struct EntryPointInfo {
    /// Index in the static configuration (and in each snapshot).
    pub index: usize,
    /// Entrypoint name.
    pub name: Arc<str>,
    /// Clients whose forwarding headers are trusted.
    pub trusted: IpSet,
    /// Trust every client's forwarding headers.
    pub insecure: bool,
    /// Failed TLS handshakes (`proxy_tls_handshake_errors_total`).
    pub handshake_errors: metrics::Counter,
    /// How request headers are read and forwarded.
    pub headers: EntryPointHeaders,
}

/// An entrypoint's settings for request headers, used before routing and
/// when a request is sent (Traefik's entrypoint handler and forwarded
/// headers middleware).
#[derive(Debug)]
pub struct EntryPointHeaders {
    /// `http.underscoreHeadersStrategy`.
    pub underscores: UnderscoreHeaders,
    /// `forwardedHeaders.connection`: `Connection`-named headers that
    /// rules and middlewares still see (any case).
    pub connection: Box<[String]>,
    /// `forwardedHeaders.notAppendXForwardedFor`.
    pub not_append_x_forwarded_for: bool,
    /// `http.encodeQuerySemicolons`.
    pub encode_query_semicolons: bool,
    /// `http.sanitizePath`.
    pub sanitize_path: bool,
    /// `http.maxHeaderBytes`: the largest request head (431 above).
    pub max_header_bytes: usize,
}

impl Default for EntryPointHeaders {
    fn default() -> Self {
        EntryPointHeaders {
            underscores: UnderscoreHeaders::Keep,
            connection: Box::default(),
            not_append_x_forwarded_for: false,
            encode_query_semicolons: false,
            sanitize_path: true,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
        }
    }
}

/// Timeouts of one entrypoint (Traefik's `transport.respondingTimeouts`,
/// with the meaning of Go's `http.Server` fields).
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnTimeouts {
    /// Maximum time to read a request, head and body: the head within it
    /// of its first byte (the watchdog), the body within it of the head
    /// (`upstream::ClientBody`); `None` for no limit.
    pub read: Option<Duration>,
    /// Keep-alive connections with no request in flight for this long are
    /// closed.
    pub idle: Option<Duration>,
    /// Maximum time, from the request head, to write its response; the
    /// connection is closed when it passes (Go's `WriteTimeout`). Not
    /// applied once a connection is upgraded (WebSocket). `None`: no limit
    /// (Traefik's default).
    pub write: Option<Duration>,
}

/// Everything a worker needs to serve one entrypoint.
#[derive(Debug)]
pub struct WorkerListener {
    /// Entrypoint settings.
    pub info: Arc<EntryPointInfo>,
    /// How accepted connections become client streams (plain or TLS).
    pub handshake: Handshake,
    /// Connection timeouts.
    pub timeouts: ConnTimeouts,
    /// Admin endpoints (`/metrics`, `/ping`) served on this entrypoint.
    pub admin: AdminRoutes,
    /// Keep-alive limits.
    pub keep_alive: KeepAliveLimits,
    /// HTTP/2 server settings (`entryPoints.<n>.http2`).
    pub http2: Http2Config,
    /// `proxyProtocol`: the client address from a PROXY header.
    pub proxy_protocol: Option<ProxyProtocol>,
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
/// one closes; tells them when the worker drains.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    open: Cell<usize>,
    idle: Notify,
    /// Set once when the worker drains.
    draining: Cell<bool>,
    /// The tasks waiting for `draining`, a slot each ([`Draining`]).
    waiting: RefCell<Vec<Option<Waker>>>,
    /// Free slots of `waiting`.
    free: RefCell<Vec<usize>>,
}

impl Tracker {
    /// Tells every connection of the worker that it drains.
    fn drain(&self) {
        self.draining.set(true);
        let waiting = std::mem::take(&mut *self.waiting.borrow_mut());
        for w in waiting.into_iter().flatten() {
            w.wake();
        }
    }

    /// Resolves once the worker drains. The worker's own signal: a
    /// connection polls it on every wake of its task, and the
    /// process-wide `watch` it replaces took a mutex shared by all workers
    /// each time (tokio's `Notified`).
    pub(crate) fn draining(self: &Rc<Self>) -> Draining {
        Draining {
            tracker: Rc::clone(self),
            slot: None,
        }
    }
}

/// [`Tracker::draining`]'s future.
#[derive(Debug)]
pub(crate) struct Draining {
    tracker: Rc<Tracker>,
    slot: Option<usize>,
}

impl Future for Draining {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let t = &this.tracker;
        if t.draining.get() {
            this.slot = None;
            return Poll::Ready(());
        }
        let mut waiting = t.waiting.borrow_mut();
        match this.slot {
            Some(i) => {
                let w = &mut waiting[i];
                if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *w = Some(cx.waker().clone());
                }
            }
            None => {
                let waker = Some(cx.waker().clone());
                let i = match t.free.borrow_mut().pop() {
                    Some(i) => {
                        waiting[i] = waker;
                        i
                    }
                    None => {
                        waiting.push(waker);
                        waiting.len() - 1
                    }
                };
                this.slot = Some(i);
            }
        }
        Poll::Pending
    }
}

impl Drop for Draining {
    fn drop(&mut self) {
        if let Some(i) = self.slot
            && !self.tracker.draining.get()
        {
            self.tracker.waiting.borrow_mut()[i] = None;
            self.tracker.free.borrow_mut().push(i);
        }
    }
}

/// Keeps its worker's drain waiting (up to the grace period) while it
/// lives: one per accepted connection, and one per upgraded tunnel, which
/// outlives the HTTP serving of its connection ([`ConnCtx::hold_open`]).
#[derive(Debug)]
pub struct ConnGuard(Rc<Tracker>);

impl ConnGuard {
    fn new(tracker: &Rc<Tracker>) -> Self {
        tracker.open.set(tracker.open.get() + 1);
        ConnGuard(Rc::clone(tracker))
    }
}

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
        let server = Rc::new(make_builder(&l.http2, l.info.headers.max_header_bytes));
        let ep = Rc::new(EpState {
            info: l.info,
            handshake: l.handshake,
            timeouts: l.timeouts,
            admin: l.admin,
            keep_alive: l.keep_alive,
            proxy_protocol: l.proxy_protocol,
        });
        accepts.push(tokio::task::spawn_local(accept_loop(
            listener,
            Arc::clone(&shared),
            ep,
            server,
            Rc::clone(&tracker),
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
    tracker.drain();
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

/// One entrypoint as a worker serves it.
struct EpState {
    info: Arc<EntryPointInfo>,
    handshake: Handshake,
    timeouts: ConnTimeouts,
    admin: AdminRoutes,
    keep_alive: KeepAliveLimits,
    proxy_protocol: Option<ProxyProtocol>,
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
        self.max_requests.is_some_and(|m| ctx.requests() >= m)
            || self.max_time.is_some_and(|t| ctx.age() >= t)
    }
}

/// Response bytes hyper may buffer per HTTP/2 stream for a client that
/// reads slowly (hyper's default is 400 KiB). With Traefik's default of
/// 250 streams, one slow-reading connection holds at most 250 × 64 KiB =
/// 16 MiB of responses, plus what it sent and the proxy did not read yet,
/// bounded by the connection's receive window (hyper's 1 MiB).
const H2_SEND_BUFFER_PER_STREAM: usize = 64 * 1024;

/// `max_header_bytes` is `maxHeaderBytes`, applied as Go applies it: an
/// HTTP/1 head may take 4096 bytes more (Go's read limit; here hyper's
/// read buffer, a bound, not an allocation), and HTTP/2 advertises the
/// limit plus ten fields' overhead as its `SETTINGS_MAX_HEADER_LIST_SIZE`
/// (hyper's own default, 16 KiB, would refuse the large cookies Traefik
/// accepts).
fn make_builder(h2: &Http2Config, max_header_bytes: usize) -> Builders {
    let mut b = Builders {
        h1: hyper::server::conn::http1::Builder::new(),
        h2: hyper::server::conn::http2::Builder::new(LocalExec),
    };
    // Timeouts are the connection watchdog's job: hyper's header timer
    // would arm a boxed sleep for every request.
    b.h1.keep_alive(true)
        .header_read_timeout(None)
        .max_buf_size((max_header_bytes + 4096).max(8192));
    // The HPACK table sizes are the h2 crate's 4096 bytes (Go's default);
    // hyper's server has no knob for them (the config warns when set).
    b.h2.max_concurrent_streams(h2.max_concurrent_streams)
        .max_send_buf_size(H2_SEND_BUFFER_PER_STREAM)
        .max_header_list_size(u32::try_from(max_header_bytes + 320).unwrap_or(u32::MAX));
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
    server: Rc<Builders>,
    tracker: Rc<Tracker>,
) {
    let mut last_warn: Option<std::time::Instant> = None;
    let mut draining = std::pin::pin!(tracker.draining());
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut draining => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                tokio::task::spawn_local(conn::serve_conn(
                    stream,
                    peer,
                    Arc::clone(&shared),
                    Rc::clone(&ep),
                    Rc::clone(&server),
                    ConnGuard::new(&tracker),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every waiting connection wakes when its worker drains; one that
    /// went away before frees its slot for the next, and one that starts
    /// waiting after the drain is ready at once.
    #[test]
    fn a_drain_wakes_every_waiting_connection() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            let tracker = Rc::new(Tracker::default());
            let woken = Rc::new(Cell::new(0));
            let tasks: Vec<_> = (0..3)
                .map(|_| {
                    let (t, w) = (Rc::clone(&tracker), Rc::clone(&woken));
                    tokio::task::spawn_local(async move {
                        t.draining().await;
                        w.set(w.get() + 1);
                    })
                })
                .collect();
            tokio::task::yield_now().await;
            {
                // Polled once, then dropped: its slot is freed.
                let mut gone = std::pin::pin!(tracker.draining());
                let waker = std::task::Waker::noop();
                assert!(
                    gone.as_mut()
                        .poll(&mut Context::from_waker(waker))
                        .is_pending()
                );
            }
            assert_eq!(tracker.waiting.borrow().len(), 4);
            assert_eq!(*tracker.free.borrow(), [3]);
            assert_eq!(woken.get(), 0, "nothing drains yet");
            tracker.drain();
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(woken.get(), 3);
            tracker.draining().await;
        });
    }
}
