//! Per-worker pools of upstream connections over `hyper::client::conn`.
//!
//! Each worker thread owns its pools (a thread-local), so checkout and
//! return take no lock and need no channel or task per request, unlike
//! hyper-util's legacy pooled client. A pool is keyed by a [`PoolKey`]
//! interned when a configuration is compiled, so a reload that keeps a
//! server keeps its connections.
//!
//! HTTP/1.1: idle connections are kept LIFO; a connection goes back to the
//! pool when the response body has been read to its end ([`PooledBody`]).
//! Requests to plain servers take the direct path (`direct/`), whose
//! connections are bare sockets kept apart from hyper's; an upgrade takes
//! one over for hyper's client.
//! HTTP/2 (`h2c://`, or `https://` when the server's ALPN picks `h2`): one
//! multiplexed connection per worker and server. TLS connections are
//! pooled and reused like plain ones. New connections are made in
//! `connect.rs` (dial, TLS, HTTP/1.1) and `h2.rs` (HTTP/2 and its resend).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::{http1, http2};

use super::body::RequestBody;
use super::connect::{Fresh, adopt, connect_new, with_header_timeout};
use super::direct::{self, DirectBody, DirectConn, Home};
use super::error::{ProxyError, UpstreamFailure};
use super::h2::{h2_sender, send_h2_twice, tls_h2_request};
use super::identity::{PoolKey, ServerId};
use super::retry;
use crate::middleware::Hold;

/// How connections to a server are made and kept (a Traefik
/// `serversTransport`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportSettings {
    /// Maximum time to establish the TCP connection.
    pub dial_timeout: Duration,
    /// Maximum time to wait for response headers after the request was
    /// sent; `None` waits forever (Traefik's default `0`).
    pub response_header_timeout: Option<Duration>,
    /// Idle connections older than this are closed; `None` keeps them.
    pub idle_conn_timeout: Option<Duration>,
    /// Idle connections kept per server, per worker: the transport's
    /// `maxIdleConnsPerHost` divided among the workers.
    pub max_idle_per_host: usize,
    /// HTTP/2: a PING is sent when no frame arrived for this long
    /// (`forwardingTimeouts.readIdleTimeout`); `None`: no health pings
    /// (Traefik's default `0`).
    pub h2_read_idle_timeout: Option<Duration>,
    /// HTTP/2: the connection is closed when a PING is not answered
    /// within this (`forwardingTimeouts.pingTimeout`, 15 s).
    pub h2_ping_timeout: Duration,
}

impl Default for TransportSettings {
    fn default() -> Self {
        Self {
            dial_timeout: Duration::from_secs(30),
            response_header_timeout: None,
            idle_conn_timeout: Some(Duration::from_secs(90)),
            max_idle_per_host: 200,
            h2_read_idle_timeout: None,
            h2_ping_timeout: Duration::from_secs(15),
        }
    }
}

/// One upstream server as compiled from a `loadBalancer.servers[].url`.
#[derive(Debug)]
pub struct UpstreamTarget {
    /// This server of this service, for state kept across reloads
    /// (health).
    pub id: ServerId,
    /// The pool this server's connections live in (shared with every
    /// service naming the same address and transport).
    pub key: PoolKey,
    /// `host:port` as dialled.
    pub authority: http::uri::Authority,
    /// The resolved address when the URL names an IP literal.
    pub socket_addr: Option<SocketAddr>,
    /// Speak HTTP/2 with prior knowledge (`h2c://`).
    pub h2c: bool,
    /// TLS (`https://`): HTTP/2 or HTTP/1.1 as the server's ALPN says.
    pub tls: Option<super::tls::UpstreamTls>,
    /// The URL's path, prepended to the request path (empty or without a
    /// trailing slash).
    pub base_path: Box<str>,
    /// The `Host` header sent when `passHostHeader` is false.
    pub host_header: http::HeaderValue,
    /// Connection settings.
    pub transport: Arc<TransportSettings>,
    /// The server URL as configured, for logs and metrics.
    pub url: Arc<str>,
}

// === per-worker state ===

struct IdleConn {
    tx: http1::SendRequest<RequestBody>,
    since: Instant,
}

struct IdleDirect {
    conn: DirectConn,
    since: Instant,
}

#[derive(Default)]
struct HostPool {
    idle: Vec<IdleConn>,
    /// Idle connections of the direct path (`direct/`), kept apart:
    /// hyper's connections are driven by their own tasks, these by none.
    direct: Vec<IdleDirect>,
    idle_timeout: Option<Duration>,
    h2: Option<http2::SendRequest<RequestBody>>,
}

#[derive(Default)]
struct Pools {
    hosts: Vec<HostPool>,
}

impl Pools {
    fn host(&mut self, key: PoolKey) -> &mut HostPool {
        let i = key.0 as usize;
        if i >= self.hosts.len() {
            self.hosts.resize_with(i + 1, HostPool::default);
        }
        &mut self.hosts[i]
    }
}

thread_local! {
    static POOLS: RefCell<Pools> = RefCell::new(Pools::default());
}

fn checkout_h1(
    key: PoolKey,
    idle_timeout: Option<Duration>,
) -> Option<(http1::SendRequest<RequestBody>, Duration)> {
    POOLS.with(|p| {
        let mut p = p.borrow_mut();
        let host = p.host(key);
        while let Some(c) = host.idle.pop() {
            if c.tx.is_closed() {
                continue;
            }
            let idle_for = c.since.elapsed();
            if idle_timeout.is_some_and(|t| idle_for > t) {
                continue;
            }
            return Some((c.tx, idle_for));
        }
        None
    })
}

fn checkin_h1(
    key: PoolKey,
    max_idle: usize,
    idle_timeout: Option<Duration>,
    tx: http1::SendRequest<RequestBody>,
) {
    if tx.is_closed() {
        return;
    }
    POOLS.with(|p| {
        let mut p = p.borrow_mut();
        let host = p.host(key);
        host.idle_timeout = idle_timeout;
        if host.idle.len() < max_idle {
            host.idle.push(IdleConn {
                tx,
                since: Instant::now(),
            });
        }
    });
}

/// An idle connection of the direct path to `key`, with how long it was
/// idle; connections the server closed, or idle for longer than
/// `idle_timeout`, are dropped on the way.
pub(super) fn checkout_direct(
    key: PoolKey,
    idle_timeout: Option<Duration>,
) -> Option<(DirectConn, Duration)> {
    POOLS.with(|p| {
        let mut p = p.borrow_mut();
        let host = p.host(key);
        while let Some(c) = host.direct.pop() {
            let idle_for = c.since.elapsed();
            if idle_timeout.is_some_and(|t| idle_for > t) || c.conn.closed() {
                continue;
            }
            return Some((c.conn, idle_for));
        }
        None
    })
}

/// Keeps `conn`, whose last answer was read to its end, for the next
/// request of the direct path to its server.
pub(super) fn checkin_direct(home: Home, conn: DirectConn) {
    POOLS.with(|p| {
        let mut p = p.borrow_mut();
        let host = p.host(home.key);
        host.idle_timeout = home.idle_timeout;
        if host.direct.len() < home.max_idle {
            host.direct.push(IdleDirect {
                conn,
                since: Instant::now(),
            });
        }
    });
}

/// Closes idle connections of this worker older than their server's idle
/// timeout or closed by their server, and pooled HTTP/2 connections that
/// have closed.
pub fn sweep_idle() {
    POOLS.with(|p| {
        let mut p = p.borrow_mut();
        for host in p.hosts.iter_mut() {
            let timeout = host.idle_timeout;
            host.idle
                .retain(|c| !c.tx.is_closed() && timeout.is_none_or(|t| c.since.elapsed() <= t));
            host.direct
                .retain(|c| !c.conn.closed() && timeout.is_none_or(|t| c.since.elapsed() <= t));
            if host.h2.as_ref().is_some_and(|h| h.is_closed()) {
                host.h2 = None;
            }
        }
    });
}

/// Closes every idle connection of this worker (its end).
pub fn close_idle() {
    POOLS.with(|p| p.borrow_mut().hosts.clear());
}

/// Runs [`sweep_idle`] every few seconds on the current worker, off the
/// request path, so pools of servers no longer in the configuration empty
/// out.
pub async fn sweep_loop() {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        sweep_idle();
    }
}

/// Number of idle HTTP/1 connections this worker holds for `key`, hyper's
/// and the direct path's (tests, introspection).
pub fn idle_count(key: PoolKey) -> usize {
    POOLS.with(|p| {
        let mut p = p.borrow_mut();
        let host = p.host(key);
        host.idle.len() + host.direct.len()
    })
}

/// The worker's live HTTP/2 connection to `target`, if any.
pub(super) fn pooled_h2(target: &UpstreamTarget) -> Option<http2::SendRequest<RequestBody>> {
    POOLS.with(|p| {
        let mut p = p.borrow_mut();
        let host = p.host(target.key);
        match &host.h2 {
            Some(tx) if !tx.is_closed() => Some(tx.clone()),
            _ => {
                host.h2 = None;
                None
            }
        }
    })
}

/// Keeps `tx` as the worker's HTTP/2 connection to `target`.
pub(super) fn keep_h2(target: &UpstreamTarget, tx: http2::SendRequest<RequestBody>) {
    POOLS.with(|p| p.borrow_mut().host(target.key).h2 = Some(tx));
}

/// Drops the worker's HTTP/2 connection to `target` from the pool (the
/// requests still on it finish).
pub(super) fn forget_h2(target: &UpstreamTarget) {
    POOLS.with(|p| p.borrow_mut().host(target.key).h2 = None);
}

/// Sends `req` (already rewritten for the upstream) to `target` on a pooled
/// connection of this worker, dialling one when none is idle.
///
/// A pooled connection that turns out to be closed before the request was
/// written, or closed by the server before it answered a request that may
/// go twice, is discarded and the request is sent once more on a new
/// connection (`retry.rs`); otherwise the error is returned (502),
/// recording whether the upstream may have received the request
/// ([`ProxyError::reached_upstream`]).
#[allow(clippy::manual_async_fn)] // an `async fn` holds its arguments twice; see `forward::handle`
pub fn send_upstream(
    target: &UpstreamTarget,
    mut req: Request<RequestBody>,
) -> impl Future<Output = Result<Response<PooledBody>, ProxyError>> {
    async move {
        // The HTTP/2 paths are boxed: their states (1.4 KiB more than
        // HTTP/1.1's) would otherwise size every request's future, and an
        // HTTP/2 exchange already costs hyper a task and channels.
        if target.h2c {
            return Box::pin(async move {
                let tx = h2_sender(target).await?;
                send_h2_twice(target, tx, req).await
            })
            .await;
        }
        if direct::eligible(target, &req) {
            return direct::send(target, req).await;
        }
        if target.tls.is_some()
            && let Some(tx) = pooled_h2(target)
        {
            return Box::pin(send_h2_twice(target, tx, tls_h2_request(target, req)?)).await;
        }

        let transport = &target.transport;
        // A pooled connection first; after it failed in a way that allows the
        // request to go again, once more on a new connection (`retry.rs`). The
        // last attempt is always on a new connection, so this runs at most
        // twice.
        let mut fresh = false;
        loop {
            let mut pooled = if fresh {
                None
            } else {
                checkout_h1(target.key, transport.idle_conn_timeout)
            };
            // An idle connection of the direct path, taken over by hyper
            // (an upgrade to a plain server): the two share the server's
            // connections.
            if pooled.is_none()
                && !fresh
                && target.tls.is_none()
                && let Some((conn, idle_for)) =
                    checkout_direct(target.key, transport.idle_conn_timeout)
            {
                pooled = Some((adopt(target, conn.into_stream()).await?, idle_for));
            }
            let reused = pooled.is_some();
            let (mut tx, idle_for) = match pooled {
                Some(pooled) => pooled,
                None => match connect_new(target).await? {
                    Fresh::H1(tx) => (tx, Duration::ZERO),
                    Fresh::H2(tx) => {
                        let req = tls_h2_request(target, req)?;
                        return Box::pin(send_h2_twice(target, tx, req)).await;
                    }
                },
            };
            if !tx.is_ready()
                && let Err(source) = tx.ready().await
            {
                if reused {
                    fresh = true;
                    continue;
                }
                return Err(target.failed(source, false));
            }
            let mut copy = if reused && idle_for >= retry::COPY_AFTER_IDLE {
                retry::resend_copy(&req)
            } else {
                None
            };
            let sent = with_header_timeout(target, async {
                match tx.try_send_request(req).await {
                    Ok(resp) => Ok(Ok(resp)),
                    Err(mut e) => match e.take_message() {
                        // The request came back: none of it was written.
                        Some(back) if reused => Ok(Err(back)),
                        back => {
                            let written = back.is_none();
                            let source = e.into_error();
                            match copy.take() {
                                Some(again) if written && retry::closed_before_response(&source) => {
                                    tracing::debug!(error = %source, url = %target.url, "reused upstream connection closed before answering; sending again on a new one");
                                    Ok(Err(again.into_request()))
                                }
                                _ => Err(target.failed(source, written)),
                            }
                        }
                    },
                }
            })
            .await?;
            match sent {
                Ok(resp) => {
                    drop(copy);
                    let key = target.key;
                    let max_idle = transport.max_idle_per_host;
                    let upgrading = resp.status() == http::StatusCode::SWITCHING_PROTOCOLS;
                    let ret = (!upgrading).then_some(Checkin {
                        key,
                        max_idle,
                        idle_timeout: transport.idle_conn_timeout,
                        tx,
                    });
                    return Ok(resp.map(|body| PooledBody::new(body, ret)));
                }
                Err(again) => {
                    req = again;
                    fresh = true;
                }
            }
        }
    }
}

// === the response body that returns its connection ===

struct Checkin {
    key: PoolKey,
    max_idle: usize,
    idle_timeout: Option<Duration>,
    tx: http1::SendRequest<RequestBody>,
}

/// An upstream response body that puts its HTTP/1 connection back into the
/// worker's pool as soon as the body has been read to its end. Dropped
/// before its end, the connection is closed instead (a connection with
/// unread response bytes cannot be reused).
pub struct PooledBody {
    inner: Source,
    /// What the response holds until its last byte (an `inFlightReq`
    /// count), released at its end or when dropped.
    held: Option<Hold>,
}

/// Who reads the body: hyper's client (with the connection to return),
/// or the request's own task on the direct path.
enum Source {
    Hyper(Incoming, Option<Checkin>),
    Direct(DirectBody),
}

impl std::fmt::Debug for PooledBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledBody").finish_non_exhaustive()
    }
}

impl PooledBody {
    /// A body of an HTTP/2 response: its connection stays in the pool.
    pub(super) fn multiplexed(inner: Incoming) -> Self {
        Self::new(inner, None)
    }

    /// A body of the direct path.
    pub(super) fn direct(body: DirectBody) -> Self {
        Self {
            inner: Source::Direct(body),
            held: None,
        }
    }

    fn new(inner: Incoming, checkin: Option<Checkin>) -> Self {
        let mut body = Self {
            inner: Source::Hyper(inner, checkin),
            held: None,
        };
        if body.is_end_stream() {
            body.release();
        }
        body
    }

    #[inline]
    fn release(&mut self) {
        if let Source::Hyper(_, checkin) = &mut self.inner
            && let Some(c) = checkin.take()
        {
            checkin_h1(c.key, c.max_idle, c.idle_timeout, c.tx);
        }
        self.held = None;
    }

    /// Keeps `hold` until the body has been read to its end (or dropped);
    /// a body already at its end releases it at once.
    pub fn hold(&mut self, hold: Hold) {
        if self.is_end_stream() {
            return;
        }
        self.held = Some(hold.join(self.held.take()));
    }
}

/// An upstream's answer is never decoded: nothing to fail with.
impl super::BodySource for PooledBody {
    fn undecodable(_: &'static str) -> Option<UpstreamFailure> {
        None
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = UpstreamFailure;

    #[inline]
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpstreamFailure>>> {
        let this = &mut *self;
        let r = match &mut this.inner {
            Source::Hyper(inner, _) => Pin::new(inner)
                .poll_frame(cx)
                .map_err(UpstreamFailure::Hyper),
            Source::Direct(body) => body.poll_frame(cx),
        };
        match &r {
            Poll::Ready(None) => this.release(),
            Poll::Ready(Some(Ok(_))) if this.is_end_stream() => this.release(),
            Poll::Ready(Some(Err(_))) => {
                if let Source::Hyper(_, checkin) = &mut this.inner {
                    *checkin = None;
                }
                this.held = None;
            }
            _ => {}
        }
        r
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Source::Hyper(inner, _) => inner.is_end_stream(),
            Source::Direct(body) => body.is_end_stream(),
        }
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Source::Hyper(inner, _) => inner.size_hint(),
            Source::Direct(body) => body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use http_body_util::BodyExt;

    use super::*;
    use crate::upstream::connect::{TCP_KEEPALIVE, dial};

    /// A blocking HTTP/1.1 backend on 127.0.0.1:0 that answers each
    /// request of one connection with the body it received; after
    /// `requests` it waits for the connection to close and returns the
    /// bodies.
    fn echo_backend(requests: usize) -> (SocketAddr, std::thread::JoinHandle<Vec<Vec<u8>>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let join = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut bodies = Vec::new();
            let mut buf = Vec::new();
            while bodies.len() < requests {
                let mut chunk = [0u8; 4096];
                let n = conn.read(&mut chunk).unwrap();
                assert!(n > 0, "the proxy closed the pooled connection");
                buf.extend_from_slice(&chunk[..n]);
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if buf.len() < end + 4 + len {
                    continue;
                }
                let body = buf[end + 4..end + 4 + len].to_vec();
                buf.drain(..end + 4 + len);
                write!(conn, "HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n").unwrap();
                conn.write_all(&body).unwrap();
                bodies.push(body);
            }
            // Keep the connection open until the proxy side closes it.
            let _ = conn.read(&mut [0u8; 1]);
            bodies
        });
        (addr, join)
    }

    fn target(addr: SocketAddr) -> UpstreamTarget {
        let authority: http::uri::Authority = addr.to_string().parse().unwrap();
        UpstreamTarget {
            id: ServerId(0),
            key: PoolKey(0),
            socket_addr: Some(addr),
            host_header: http::HeaderValue::from_str(authority.as_str()).unwrap(),
            authority,
            h2c: false,
            tls: None,
            base_path: "".into(),
            transport: Arc::new(TransportSettings::default()),
            url: format!("http://{addr}").into(),
        }
    }

    #[test]
    fn dialled_sockets_have_tcp_keepalive() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = target(listener.local_addr().unwrap());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let stream = rt.block_on(dial(&target)).unwrap();
        let sock = socket2::SockRef::from(&stream);
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), TCP_KEEPALIVE);
    }

    #[test]
    fn a_held_body_is_sent_and_its_replay_sent_again_on_the_pooled_connection() {
        let (addr, backend) = echo_backend(2);
        let target = target(addr);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            let body = RequestBody::full("hello, upstream");
            let again = body.replay().expect("a held body replays");
            for body in [body, again] {
                let req = Request::post("/echo")
                    .header(http::header::HOST, "b.test")
                    .body(body)
                    .unwrap();
                let resp = send_upstream(&target, req).await.unwrap();
                assert_eq!(resp.status(), http::StatusCode::OK);
                let got = resp.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(got, "hello, upstream");
                assert_eq!(idle_count(target.key), 1, "connection back in the pool");
            }
        });
        // Closing the pool's idle connection (as a worker does at its
        // end): the backend sees the close and returns.
        local.block_on(&rt, async { close_idle() });
        drop(local);
        drop(rt);
        let bodies = backend.join().unwrap();
        assert_eq!(
            bodies,
            [b"hello, upstream".to_vec(), b"hello, upstream".to_vec()]
        );
    }
}
