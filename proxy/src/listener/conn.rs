//! One client connection: its context (shared by the requests it carries),
//! serving it with hyper (HTTP/1.1 and HTTP/2 prior knowledge), the
//! per-connection accounting the watchdog and keep-alive limits read, and
//! closing it on shutdown or timeout.
//!
//! Runs per connection and, for the accounting, per request: `Cell`s on
//! the connection's own worker, no lock, no allocation per request.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderValue;
use rustls_pki_types::CertificateDer;
use tokio::io::AsyncWriteExt;

use super::served::ServedBody;
use super::serving::{self, Builders, Serving};
use super::stream::{Accepted, Activity, ActivityStream, ClientCerts, ClientStream};
use super::watchdog::Watchdog;
use super::{ConnGuard, ConnTimeouts, EntryPointInfo, EpState, Tracker};
use crate::forward::headers::ForwardedFor;
use crate::forward::{Finish, Shared};
use crate::ipnet::canonical_ip;

/// Per-connection context, shared by the requests of one connection.
#[derive(Debug)]
pub struct ConnCtx {
    /// Process-wide state.
    pub shared: Arc<Shared>,
    /// The entrypoint the connection came in on.
    pub entrypoint: Arc<EntryPointInfo>,
    /// The client's address: the TCP peer, or the source address of the
    /// PROXY protocol header a trusted peer sent (`proxyProtocol`).
    pub peer: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// For TLS, the name of the TLS options its handshake used: a TLS
    /// router answers only when it names the same ones (Traefik's SNI
    /// check, 421 otherwise).
    pub tls_options: Option<Arc<str>>,
    /// For mutual TLS, the certificates the client sent, leaf first.
    client_certs: Option<ClientCerts>,
    client_ip: HeaderValue,
    trusted: bool,
    /// Last `Host` seen on this connection and its port as a header value:
    /// keep-alive clients repeat the same host, so the value is made once.
    host_port: RefCell<Option<(HeaderValue, Option<HeaderValue>)>>,
    /// Requests started on this connection (the watchdog and
    /// `keepAliveMaxRequests` read it).
    requests: Cell<u64>,
    /// Requests in flight on this connection.
    in_flight: Cell<u32>,
    /// Whether the last request came with a body: hyper may still be
    /// reading (or be about to discard) it after its response, so the
    /// connection is not parked (`serve_conn`).
    body_sent: Cell<bool>,
    /// When the connection was accepted.
    opened: Instant,
    /// The entrypoint's timeouts.
    timeouts: ConnTimeouts,
    /// With `writeTimeout`: when each response in flight must have been
    /// written, by request number (one entry on HTTP/1, one per open
    /// stream on HTTP/2). Empty, and never touched, without it.
    write_deadlines: RefCell<Vec<(u64, Instant)>>,
    /// With metrics or the access log: the records of responses being
    /// sent, by request number, finished when their bodies end. Empty, and
    /// never touched, without them.
    records: RefCell<Vec<(u64, Finish)>>,
    /// The worker's open-connection count, which its drain waits on.
    tracker: Option<Rc<Tracker>>,
}

impl ConnCtx {
    /// Context for a connection accepted on `entrypoint` from `peer`.
    pub fn new(
        shared: Arc<Shared>,
        entrypoint: Arc<EntryPointInfo>,
        peer: SocketAddr,
        tls_options: Option<Arc<str>>,
    ) -> Self {
        let ip = canonical_ip(peer.ip());
        let trusted = entrypoint.insecure || entrypoint.trusted.contains(ip);
        let client_ip =
            HeaderValue::from_str(&ip.to_string()).expect("an IP is a valid header value");
        Self {
            shared,
            entrypoint,
            peer,
            tls: tls_options.is_some(),
            tls_options,
            client_certs: None,
            client_ip,
            trusted,
            host_port: RefCell::new(None),
            requests: Cell::new(0),
            in_flight: Cell::new(0),
            body_sent: Cell::new(false),
            opened: Instant::now(),
            timeouts: ConnTimeouts::default(),
            write_deadlines: RefCell::new(Vec::new()),
            records: RefCell::new(Vec::new()),
            tracker: None,
        }
    }

    /// Keeps the worker's drain (`SIGTERM`) waiting, up to `graceTimeOut`,
    /// while the guard lives: for an upgraded (WebSocket) tunnel, which
    /// runs on after hyper has finished serving its connection. `None`
    /// outside a worker (unit tests).
    pub fn hold_open(&self) -> Option<ConnGuard> {
        self.tracker.as_ref().map(ConnGuard::new)
    }

    /// This context with the entrypoint's timeouts applied.
    pub fn with_timeouts(mut self, timeouts: ConnTimeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// This context with the certificates the client sent in its TLS
    /// handshake.
    pub fn with_client_certs(mut self, certs: Option<ClientCerts>) -> Self {
        self.client_certs = certs;
        self
    }

    /// The certificates the client sent in its TLS handshake, leaf first
    /// (empty without mutual TLS).
    #[inline]
    pub fn client_certs(&self) -> &[CertificateDer<'static>] {
        self.client_certs.as_deref().unwrap_or_default()
    }

    /// The entrypoint's `readTimeout`, which bounds a request body too.
    #[inline]
    pub fn read_timeout(&self) -> Option<Duration> {
        self.timeouts.read
    }

    /// Whether a response in flight is past its `writeTimeout`.
    fn write_overdue(&self, now: Instant) -> bool {
        self.write_deadlines
            .borrow()
            .iter()
            .any(|(_, at)| *at <= now)
    }

    /// The peer's IP (IPv4-mapped addresses as IPv4) as a header value.
    #[inline]
    pub fn client_ip(&self) -> &HeaderValue {
        &self.client_ip
    }

    /// Whether the peer may send forwarding headers
    /// (`forwardedHeaders.trustedIPs` / `insecure`).
    #[inline]
    pub fn trusted(&self) -> bool {
        self.trusted
    }

    /// What `X-Forwarded-For` gets when a request is sent upstream.
    #[inline]
    pub fn forwarded_for(&self) -> ForwardedFor {
        if self.entrypoint.headers.not_append_x_forwarded_for {
            ForwardedFor::Keep
        } else if self.trusted {
            ForwardedFor::Append
        } else {
            ForwardedFor::Replace
        }
    }

    /// The port part of `host` as a header value, cached for the
    /// connection's last host.
    pub fn port_of(&self, host: &HeaderValue) -> Option<HeaderValue> {
        let mut cache = self.host_port.borrow_mut();
        if let Some((h, p)) = cache.as_ref()
            && h == host
        {
            return p.clone();
        }
        let port = host
            .to_str()
            .ok()
            .and_then(|h| authority_port(h))
            .and_then(|p| HeaderValue::from_str(p).ok());
        // A copy, not a clone: the request's value is a slice of hyper's
        // read buffer, and holding it would keep that 8 KiB buffer for the
        // connection's life (and make hyper allocate a new one for every
        // request).
        let owned = HeaderValue::from_bytes(host.as_bytes()).unwrap_or_else(|_| host.clone());
        *cache = Some((owned, port.clone()));
        port
    }

    /// Counts a request that starts on this connection (`with_body`: it
    /// came with a body); it is in flight until the returned guard drops:
    /// with its response body's last frame ([`super::served::ServedBody`]),
    /// or when hyper drops the request or the body (client gone, HTTP/2
    /// stream reset).
    #[inline]
    pub fn begin_request(self: &Rc<Self>, with_body: bool) -> InFlight {
        let n = self.requests.get() + 1;
        self.requests.set(n);
        self.in_flight.set(self.in_flight.get() + 1);
        self.body_sent.set(with_body);
        if let Some(w) = self.timeouts.write {
            self.write_deadlines
                .borrow_mut()
                .push((n, Instant::now() + w));
        }
        InFlight {
            ctx: Rc::clone(self),
            id: n,
            bytes: 0,
        }
    }

    /// Keeps `finish`, the record of request number `request`, until that
    /// request's response body ends ([`InFlight`] drops), which finishes
    /// it: durations to the last byte, the body's bytes counted.
    pub fn record_at_end(&self, request: u64, finish: Finish) {
        self.records.borrow_mut().push((request, finish));
    }

    /// Requests started on this connection so far.
    pub fn requests(&self) -> u64 {
        self.requests.get()
    }

    /// How long ago the connection was accepted.
    pub fn age(&self) -> Duration {
        self.opened.elapsed()
    }
}

/// One request in flight on a connection, for the watchdog and the drain,
/// counting its response body's bytes for the request's record.
#[derive(Debug)]
pub struct InFlight {
    ctx: Rc<ConnCtx>,
    /// The request's number on its connection.
    id: u64,
    /// Response body bytes sent so far.
    bytes: u64,
}

impl InFlight {
    /// The request's number on its connection.
    #[inline]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// `n` more bytes of the response body were sent.
    #[inline]
    pub(super) fn sent(&mut self, n: usize) {
        self.bytes += n as u64;
    }

    /// The response is written (or abandoned). A `101`'s body is empty, so
    /// an upgraded connection's tunnel is never bounded by `writeTimeout`
    /// (Go drops a hijacked connection's deadlines).
    fn clear_write_deadline(&self) {
        if self.ctx.timeouts.write.is_some() {
            let id = self.id;
            self.ctx
                .write_deadlines
                .borrow_mut()
                .retain(|(n, _)| *n != id);
        }
    }

    /// The request's record, if one waits for the end of its response.
    fn take_record(&self) -> Option<Finish> {
        let mut records = self.ctx.records.borrow_mut();
        let at = records.iter().position(|(n, _)| *n == self.id)?;
        Some(records.swap_remove(at).1)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let ctx = &self.ctx;
        ctx.in_flight.set(ctx.in_flight.get() - 1);
        self.clear_write_deadline();
        if let Some(finish) = self.take_record() {
            finish.done(ctx, self.bytes);
        }
    }
}

/// The port of `host:port` / `[v6]:port`, if present.
fn authority_port(authority: &str) -> Option<&str> {
    let rest = match authority.strip_prefix('[') {
        Some(r) => r.split_once(']')?.1,
        None => authority,
    };
    let (_, port) = rest.rsplit_once(':')?;
    (!port.is_empty()).then_some(port)
}

/// Serves one accepted connection until it closes, the worker drains, or
/// the watchdog closes it.
pub(super) async fn serve_conn(
    mut tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    ep: Rc<EpState>,
    server: Rc<Builders>,
    guard: ConnGuard,
) {
    let _ = tcp.set_nodelay(true);
    // The TLS handshake (or the first byte of a plain request) must come
    // within the read timeout, as Traefik bounds reading the ClientHello.
    // A PROXY protocol header comes first, within the same bound.
    let handshake = async {
        let peer = match &ep.proxy_protocol {
            Some(pp) => pp.client_addr(&mut tcp, peer).await?,
            None => peer,
        };
        let accepted = ep
            .handshake
            .complete(tcp, &shared.snapshot, ep.info.index)
            .await?;
        Ok::<_, std::io::Error>((peer, accepted))
    };
    let accepted = within(ep.timeouts.read, handshake).await;
    let (
        peer,
        Accepted {
            stream,
            tls_options,
            client_certs,
        },
    ) = match accepted {
        Ok(a) => a,
        Err(e) => {
            if e.kind() != std::io::ErrorKind::UnexpectedEof {
                ep.info.handshake_errors.increment(1);
            }
            tracing::debug!(peer = %peer, error = %e, "handshake failed");
            return;
        }
    };
    let mut ctx = ConnCtx::new(shared, Arc::clone(&ep.info), peer, tls_options)
        .with_timeouts(ep.timeouts)
        .with_client_certs(client_certs);
    ctx.tracker = Some(Rc::clone(&guard.0));
    let ctx = Rc::new(ctx);
    let activity = Arc::new(Activity::default());
    let io = ActivityStream::new(stream, Arc::clone(&activity));
    let mut draining = std::pin::pin!(guard.0.draining());
    // The first bytes tell HTTP/2 prior knowledge from HTTP/1; they come
    // within the read timeout, as the first request's head must, and
    // within the idle timeout, as the watchdog bounds a silent connection.
    let silent_for = match (ep.timeouts.read, ep.timeouts.idle) {
        (Some(r), Some(i)) => Some(r.min(i)),
        (r, i) => r.or(i),
    };
    let detected = tokio::select! {
        biased;
        () = &mut draining => return,
        d = within(silent_for, serving::detect(io)) => d,
    };
    let (io, h2) = match detected {
        Ok(Some(d)) => d,
        Ok(None) => return,
        Err(e) => {
            tracing::debug!(peer = %peer, error = %e, "no request came");
            return;
        }
    };
    let (svc_ctx, svc_ep) = (Rc::clone(&ctx), Rc::clone(&ep));
    let conn = if h2 {
        // HTTP/2 spawns a task per stream, its future copied into the
        // task: boxed, the copy is a pointer (the gate's h2c request:
        // 153k instructions per stream -> 66k, one allocation more).
        Serving::h2(
            &server,
            io,
            hyper::service::service_fn(move |req| {
                Box::pin(serve_request(Rc::clone(&svc_ctx), Rc::clone(&svc_ep), req))
            }),
        )
    } else {
        // HTTP/1.1 keeps the future in the box hyper allocates once per
        // connection: boxing it per request would cost an allocation and a
        // copy of the whole future (+40% instructions per request).
        Serving::h1(
            &server,
            io,
            hyper::service::service_fn(move |req| {
                serve_request(Rc::clone(&svc_ctx), Rc::clone(&svc_ep), req)
            }),
        )
    };
    // Unpinned: a parked connection gives hyper's connection up by value.
    let mut conn = Some(conn);
    let mut parked = None;

    let mut watchdog = Watchdog::new(&ep.timeouts);
    let tick = watchdog.as_ref().map_or(Duration::MAX, |w| w.tick);
    let mut closing = false;
    let mut expired = false;
    // hyper was stopped to park the connection: its end parks it.
    let mut parking = false;
    // Reads and requests at the previous check: unchanged, with nothing in
    // flight, the connection is idle and is parked.
    let mut seen = (u64::MAX, u64::MAX);
    // Requests before hyper's current start: it starts busy, and is idle
    // only once it has served one.
    let mut served_before = 0;
    let write_limited = ep.timeouts.write.is_some();
    loop {
        let Some(serving) = conn.as_mut() else {
            let (io, service) = parked.take().expect("a connection not served is parked");
            match wait_parked(&io, draining.as_mut(), watchdog.as_mut(), &activity, &ctx).await {
                Unparked::Readable => {
                    tracing::debug!(peer = %peer, "parked connection readable: served again");
                    conn = Some(Serving::h1(&server, io, service));
                    seen = (activity.reads(), ctx.requests.get());
                    served_before = seen.1;
                    continue;
                }
                Unparked::Close => {
                    close_parked(io).await;
                    break;
                }
            }
        };
        let may_park = !closing && !parking && serving.parkable();
        let period = if may_park { tick.min(PARK_CHECK) } else { tick };
        tokio::select! {
            biased;
            r = &mut *serving => {
                if let Err(e) = r {
                    tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                    break;
                }
                if !parking {
                    break;
                }
                activity.keep_open(false);
                let Some((io, service)) = conn.take().and_then(Serving::into_parked) else {
                    break;
                };
                if closing {
                    close_parked(io).await;
                    break;
                }
                parking = false;
                tracing::debug!(peer = %peer, "idle connection parked");
                parked = Some((io, service));
            }
            () = &mut draining, if !closing => {
                closing = true;
                Pin::new(serving).graceful_shutdown();
            }
            _ = tokio::time::sleep(period), if may_park || (watchdog.is_some() && (!closing || expired || write_limited)) => {
                if write_limited && ctx.write_overdue(Instant::now()) {
                    // writeTimeout: Go's write deadline fails every later
                    // write, and the connection with it.
                    tracing::debug!(peer = %peer, "writeTimeout passed: closing the connection");
                    break;
                }
                if closing {
                    // Graceful shutdown could not close it within a tick: an
                    // HTTP/1 request head still arriving, with no request in
                    // flight. Nothing is lost by dropping it.
                    if expired && ctx.in_flight.get() == 0 {
                        break;
                    }
                    continue;
                }
                let now = (activity.reads(), ctx.requests.get());
                let in_flight = ctx.in_flight.get();
                if let Some(w) = watchdog.as_mut()
                    && w.expired_after(period, now.0, now.1, in_flight)
                {
                    closing = true;
                    expired = true;
                    Pin::new(serving).graceful_shutdown();
                    continue;
                }
                if may_park
                    && in_flight == 0
                    && now == seen
                    && parkable_between_requests(&ctx, &activity, served_before)
                {
                    // Idle for a whole check: hyper, told to stop while idle,
                    // ends at once without closing the stream, and the
                    // connection parks.
                    parking = true;
                    activity.keep_open(true);
                    Pin::new(serving).graceful_shutdown();
                }
                seen = now;
            }
        }
    }
}

/// How an idle HTTP/1.1 connection is checked for parking: one with no
/// request in flight and nothing read since the previous check parks, so
/// between one and two checks after it fell silent. nginx frees an idle
/// connection's buffers at once; a check keeps parking off the request
/// path and a connection that is reused at once out of it.
const PARK_CHECK: Duration = Duration::from_millis(250);

/// Whether hyper, idle for a check with nothing in flight, waits for the
/// next request head (its keep-alive state idle), which stopping it ends
/// at once with the stream intact. Not before it served a request
/// (`served_before`: the requests before it started; hyper starts busy,
/// and stopped then it would close after that request), not after a
/// request with a body (hyper may still be reading it, or discard it and
/// close), not while a response is still being written (with
/// `Connection: close`, hyper's own close follows, which parking would
/// keep from the client).
fn parkable_between_requests(ctx: &ConnCtx, activity: &Activity, served_before: u64) -> bool {
    ctx.requests.get() > served_before && !ctx.body_sent.get() && !activity.write_blocked()
}

/// How long a parked connection's close may take (a TLS `close_notify`
/// and the FIN, into an empty send buffer).
const PARKED_CLOSE: Duration = Duration::from_secs(1);

/// How a parked connection's wait ended.
enum Unparked {
    /// Bytes (or the end, or an error) arrived: serve it again.
    Readable,
    /// The worker drains, or the watchdog closes it.
    Close,
}

/// Waits, holding no buffer, until a parked connection has something to
/// read, the worker drains, or the watchdog (which keeps its count across
/// the park) closes it.
async fn wait_parked(
    io: &serving::Prefixed<ActivityStream<ClientStream>>,
    mut draining: std::pin::Pin<&mut impl Future<Output = ()>>,
    mut watchdog: Option<&mut Watchdog>,
    activity: &Activity,
    ctx: &ConnCtx,
) -> Unparked {
    let tcp = io.get_ref().get_ref().tcp();
    let tick = watchdog.as_ref().map_or(Duration::MAX, |w| w.tick);
    loop {
        tokio::select! {
            biased;
            () = draining.as_mut() => return Unparked::Close,
            // An error shows when hyper reads.
            _ = tcp.readable() => return Unparked::Readable,
            _ = tokio::time::sleep(tick), if watchdog.is_some() => {
                let w = watchdog.as_mut().expect("guarded by the branch condition");
                if w.expired_after(tick, activity.reads(), ctx.requests.get(), 0) {
                    return Unparked::Close;
                }
            }
        }
    }
}

/// Closes a parked connection as hyper closes an idle one: TLS
/// `close_notify`, then the FIN.
async fn close_parked(mut io: serving::Prefixed<ActivityStream<ClientStream>>) {
    let _ = tokio::time::timeout(PARKED_CLOSE, io.shutdown()).await;
}

/// `fut`, bounded by `limit` (`None`: unbounded): past it, `TimedOut`.
fn within<T>(
    limit: Option<Duration>,
    fut: impl Future<Output = std::io::Result<T>>,
) -> impl Future<Output = std::io::Result<T>> {
    crate::rt::bounded(limit, fut, |_| std::io::ErrorKind::TimedOut.into())
}

/// Serves one request of a connection: the internal endpoints, else the
/// forwarding.
#[allow(clippy::manual_async_fn)] // an `async fn` holds its arguments twice; see `forward::handle`
fn serve_request(
    ctx: Rc<ConnCtx>,
    ep: Rc<EpState>,
    req: http::Request<hyper::body::Incoming>,
) -> impl Future<Output = Result<http::Response<ServedBody>, std::convert::Infallible>> {
    async move {
        // Every request counts, internal ones too: a connection that only
        // polls /ping is busy, not slow (and Traefik's keepAliveMaxRequests
        // counts them).
        let in_flight = ctx.begin_request(!hyper::body::Body::is_end_stream(req.body()));
        let mut resp = match ep.admin.hit(&req) {
            // Boxed: rare, and kept out of the forwarding request's future.
            Some(hit) => Box::pin(ep.admin.serve(hit, &req)).await,
            None => crate::forward::handle(&ctx, req, in_flight.id()).await,
        };
        if ep.keep_alive.limit_reached(&ctx) {
            // Traefik's keepAliveMaxRequests / keepAliveMaxTime: this response
            // closes the HTTP/1.1 connection.
            resp.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        Ok(resp.map(|b| ServedBody::new(b, in_flight)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_of_authorities() {
        assert_eq!(authority_port("example.com:8080"), Some("8080"));
        assert_eq!(authority_port("example.com"), None);
        assert_eq!(authority_port("[::1]:443"), Some("443"));
        assert_eq!(authority_port("[::1]"), None);
        assert_eq!(authority_port("example.com:"), None);
    }
}
