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

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::admin::AdminRoutes;
use crate::forward::{ConnCtx, EntryPointInfo, Shared};
use crate::rt::LocalExec;

/// Timeouts of one entrypoint (Traefik's `transport.respondingTimeouts`).
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
        let server = Rc::new(make_builder(&l.timeouts));
        let ep = Rc::new(EpState {
            info: l.info,
            timeouts: l.timeouts,
            admin: l.admin,
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
}

fn make_builder(t: &ConnTimeouts) -> auto::Builder<LocalExec> {
    let mut b = auto::Builder::new(LocalExec);
    {
        let mut h1 = b.http1();
        h1.keep_alive(true);
        if let Some(read) = t.read {
            h1.timer(TokioTimer::new()).header_read_timeout(read);
        } else {
            h1.header_read_timeout(None);
        }
    }
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
    let admin = ep.admin.clone();
    let service = hyper::service::service_fn(move |req| {
        let ctx = Rc::clone(&svc_ctx);
        let admin = admin.clone();
        async move {
            if let Some(resp) = admin.answer(&req) {
                return Ok::<_, std::convert::Infallible>(resp);
            }
            crate::forward::handle(ctx, req).await
        }
    });
    let conn = server.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(conn);

    let idle = ep.timeouts.idle;
    let mut seen = 0u64;
    let mut closing = false;
    loop {
        tokio::select! {
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
            _ = tokio::time::sleep(idle.unwrap_or(Duration::MAX)), if idle.is_some() && !closing => {
                let n = ctx.requests.get();
                if n == seen && ctx.in_flight.get() == 0 {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                seen = n;
            }
        }
    }
}
