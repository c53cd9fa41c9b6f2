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
//! HTTP/2 (`h2c://`): one multiplexed connection per worker and server.

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
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::error::ProxyError;
use crate::rt::LocalExec;

/// Identifies one upstream connection pool: the same server address with
/// the same transport settings, across configuration generations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolKey(pub u32);

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
    /// Idle connections kept per server, per worker.
    pub max_idle_per_host: usize,
}

impl Default for TransportSettings {
    fn default() -> Self {
        Self {
            dial_timeout: Duration::from_secs(30),
            response_header_timeout: None,
            idle_conn_timeout: Some(Duration::from_secs(90)),
            max_idle_per_host: 200,
        }
    }
}

/// One upstream server as compiled from a `loadBalancer.servers[].url`.
#[derive(Debug)]
pub struct UpstreamTarget {
    /// The pool this server's connections live in.
    pub key: PoolKey,
    /// `host:port` as dialled.
    pub authority: http::uri::Authority,
    /// The resolved address when the URL names an IP literal.
    pub socket_addr: Option<SocketAddr>,
    /// Speak HTTP/2 with prior knowledge (`h2c://`).
    pub h2c: bool,
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
    tx: http1::SendRequest<Incoming>,
    since: Instant,
}

#[derive(Default)]
struct HostPool {
    idle: Vec<IdleConn>,
    idle_timeout: Option<Duration>,
    h2: Option<http2::SendRequest<Incoming>>,
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
) -> Option<http1::SendRequest<Incoming>> {
    POOLS.with(|p| {
        let mut p = p.borrow_mut();
        let host = p.host(key);
        while let Some(c) = host.idle.pop() {
            if c.tx.is_closed() {
                continue;
            }
            if let Some(t) = idle_timeout
                && c.since.elapsed() > t
            {
                continue;
            }
            return Some(c.tx);
        }
        None
    })
}

fn checkin_h1(
    key: PoolKey,
    max_idle: usize,
    idle_timeout: Option<Duration>,
    tx: http1::SendRequest<Incoming>,
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

/// Closes idle connections of this worker older than their server's idle
/// timeout, and pooled HTTP/2 connections that have closed.
pub fn sweep_idle() {
    POOLS.with(|p| {
        let mut p = p.borrow_mut();
        for host in p.hosts.iter_mut() {
            let timeout = host.idle_timeout;
            host.idle
                .retain(|c| !c.tx.is_closed() && timeout.is_none_or(|t| c.since.elapsed() <= t));
            if host.h2.as_ref().is_some_and(|h| h.is_closed()) {
                host.h2 = None;
            }
        }
    });
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

/// Number of idle HTTP/1 connections this worker holds for `key` (tests,
/// introspection).
pub fn idle_count(key: PoolKey) -> usize {
    POOLS.with(|p| p.borrow_mut().host(key).idle.len())
}

// === dialing ===

async fn dial(target: &UpstreamTarget) -> Result<TcpStream, ProxyError> {
    let timeout = target.transport.dial_timeout;
    let connect = async {
        match target.socket_addr {
            Some(addr) => TcpStream::connect(addr).await,
            None => TcpStream::connect(target.authority.as_str()).await,
        }
    };
    let stream = if timeout.is_zero() {
        connect.await
    } else {
        match tokio::time::timeout(timeout, connect).await {
            Ok(r) => r,
            Err(_) => {
                return Err(ProxyError::ConnectTimeout {
                    addr: target.authority.to_string(),
                    timeout,
                });
            }
        }
    }
    .map_err(|source| ProxyError::Connect {
        addr: target.authority.to_string(),
        source,
    })?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Runs an upstream connection on this worker until it closes.
fn drive(conn: impl Future<Output = Result<(), hyper::Error>> + 'static) {
    tokio::task::spawn_local(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
}

impl UpstreamTarget {
    fn handshake_failed(&self, source: hyper::Error) -> ProxyError {
        ProxyError::Handshake {
            addr: self.authority.to_string(),
            source,
        }
    }

    fn failed(&self, source: hyper::Error) -> ProxyError {
        ProxyError::Upstream {
            addr: self.authority.to_string(),
            source,
        }
    }
}

async fn connect_h1(target: &UpstreamTarget) -> Result<http1::SendRequest<Incoming>, ProxyError> {
    let stream = dial(target).await?;
    let (tx, conn) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| target.handshake_failed(e))?;
    drive(conn.with_upgrades());
    Ok(tx)
}

async fn h2_sender(target: &UpstreamTarget) -> Result<http2::SendRequest<Incoming>, ProxyError> {
    let existing = POOLS.with(|p| {
        let mut p = p.borrow_mut();
        let host = p.host(target.key);
        match &host.h2 {
            Some(tx) if !tx.is_closed() => Some(tx.clone()),
            _ => {
                host.h2 = None;
                None
            }
        }
    });
    if let Some(tx) = existing {
        return Ok(tx);
    }
    let stream = dial(target).await?;
    let (tx, conn) = http2::Builder::new(LocalExec)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| target.handshake_failed(e))?;
    drive(conn);
    POOLS.with(|p| p.borrow_mut().host(target.key).h2 = Some(tx.clone()));
    Ok(tx)
}

async fn with_header_timeout<F, T>(target: &UpstreamTarget, fut: F) -> Result<T, ProxyError>
where
    F: Future<Output = Result<T, ProxyError>>,
{
    match target.transport.response_header_timeout {
        None => fut.await,
        Some(timeout) => match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(ProxyError::ResponseHeaderTimeout {
                addr: target.authority.to_string(),
                timeout,
            }),
        },
    }
}

/// Sends `req` (already rewritten for the upstream) to `target` on a pooled
/// connection of this worker, dialling one when none is idle.
///
/// A pooled connection that turns out to be closed before the request was
/// written is discarded and the request is sent on a new connection; once
/// any of it was written the error is returned (502), since the request
/// body cannot be replayed.
pub async fn send_upstream(
    target: &UpstreamTarget,
    req: Request<Incoming>,
) -> Result<Response<PooledBody>, ProxyError> {
    if target.h2c {
        let mut tx = h2_sender(target).await?;
        let resp = with_header_timeout(target, async {
            tx.ready().await.map_err(|e| target.failed(e))?;
            tx.send_request(req).await.map_err(|e| target.failed(e))
        })
        .await?;
        return Ok(resp.map(|body| PooledBody::new(body, None)));
    }

    let mut req = req;
    let transport = &target.transport;
    // At most one pooled connection that turns out dead, then a fresh one.
    for _attempt in 0..3 {
        let (mut tx, reused) = match checkout_h1(target.key, transport.idle_conn_timeout) {
            Some(tx) => (tx, true),
            None => (connect_h1(target).await?, false),
        };
        if !tx.is_ready()
            && let Err(source) = tx.ready().await
        {
            if reused {
                continue;
            }
            return Err(target.failed(source));
        }
        let sent = with_header_timeout(target, async {
            match tx.try_send_request(req).await {
                Ok(resp) => Ok(Ok(resp)),
                Err(mut e) => match e.take_message() {
                    Some(back) if reused => Ok(Err(back)),
                    _ => Err(target.failed(e.into_error())),
                },
            }
        })
        .await?;
        match sent {
            Ok(resp) => {
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
            Err(back) => req = back,
        }
    }
    Err(ProxyError::NoServer)
}

// === the response body that returns its connection ===

struct Checkin {
    key: PoolKey,
    max_idle: usize,
    idle_timeout: Option<Duration>,
    tx: http1::SendRequest<Incoming>,
}

/// An upstream response body that puts its HTTP/1 connection back into the
/// worker's pool as soon as the body has been read to its end. Dropped
/// before its end, the connection is closed instead (hyper cannot reuse a
/// connection with unread response bytes).
pub struct PooledBody {
    inner: Incoming,
    checkin: Option<Checkin>,
}

impl std::fmt::Debug for PooledBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledBody").finish_non_exhaustive()
    }
}

impl PooledBody {
    fn new(inner: Incoming, checkin: Option<Checkin>) -> Self {
        let mut body = Self { inner, checkin };
        if body.inner.is_end_stream() {
            body.release();
        }
        body
    }

    #[inline]
    fn release(&mut self) {
        if let Some(c) = self.checkin.take() {
            checkin_h1(c.key, c.max_idle, c.idle_timeout, c.tx);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    #[inline]
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        match &r {
            Poll::Ready(None) => this.release(),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.release(),
            Poll::Ready(Some(Err(_))) => this.checkin = None,
            _ => {}
        }
        r
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
