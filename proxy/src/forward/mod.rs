//! The request handler: from a parsed downstream request to the response
//! sent back, through routing and the upstream.
//!
//! Runs per request on a worker thread. No lock, no `dyn`: the snapshot is
//! a worker-cached `Rc`, the routing view borrows the request and the
//! worker's arena, the upstream connection comes from the worker's pool.

pub mod body;
pub mod headers;

use std::cell::RefCell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bumpalo::Bump;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body, Incoming};
use hyper_util::rt::TokioIo;

pub use body::ProxyBody;

use crate::ProxyRequest;
use crate::ipnet::canonical_ip;
use crate::observe::{
    AccessLogEntry, AccessLogSender, DecisionStats, DecisionTimer, MetricsFlags, MetricsHandle,
    Protocol, RequestLabels, WorkerMetrics, grpc_status_code,
};
use crate::routing::{host_without_port, normalize_path, sanitize_path};
use crate::snapshot::{self, SharedSnapshot, SnapshotRef};
use crate::upstream::{ProxyError, UpstreamTarget, send_upstream};

/// Process-wide state shared by every worker (immutable after start, or
/// swapped atomically).
#[derive(Debug)]
pub struct Shared {
    /// The current compiled configuration.
    pub snapshot: SharedSnapshot,
    /// `X-Forwarded-Server` value: this machine's host name.
    pub server_name: HeaderValue,
    /// Prometheus metrics, when `metrics.prometheus` is configured.
    pub metrics: Option<MetricsHandle>,
    /// Which request-metric families are recorded.
    pub metric_flags: MetricsFlags,
    /// The access log, when `accessLog` is configured.
    pub access_log: Option<AccessLogSender>,
}

/// Static per-entrypoint settings the handler needs.
#[derive(Debug)]
pub struct EntryPointInfo {
    /// Index in the static configuration (and in each snapshot).
    pub index: usize,
    /// Entrypoint name.
    pub name: Arc<str>,
    /// Whether the listener terminates TLS.
    pub tls: bool,
    /// Clients whose forwarding headers are trusted.
    pub trusted: crate::ipnet::IpSet,
    /// Trust every client's forwarding headers.
    pub insecure: bool,
}

/// Per-connection context, shared by the requests of one connection.
#[derive(Debug)]
pub struct ConnCtx {
    /// Process-wide state.
    pub shared: Arc<Shared>,
    /// The entrypoint the connection came in on.
    pub entrypoint: Arc<EntryPointInfo>,
    /// The TCP peer.
    pub peer: SocketAddr,
    client_ip: HeaderValue,
    trusted: bool,
    /// Last `Host` seen on this connection and its port as a header value:
    /// keep-alive clients repeat the same host, so the value is made once.
    host_port: RefCell<Option<(HeaderValue, Option<HeaderValue>)>>,
    /// Requests started on this connection (for the idle watchdog).
    pub requests: std::cell::Cell<u64>,
    /// Requests in flight on this connection.
    pub in_flight: std::cell::Cell<u32>,
    /// When the connection was accepted.
    pub opened: Instant,
}

impl ConnCtx {
    /// Context for a connection accepted on `entrypoint` from `peer`.
    pub fn new(shared: Arc<Shared>, entrypoint: Arc<EntryPointInfo>, peer: SocketAddr) -> Self {
        let ip = canonical_ip(peer.ip());
        let trusted = entrypoint.insecure || entrypoint.trusted.contains(ip);
        let client_ip =
            HeaderValue::from_str(&ip.to_string()).expect("an IP is a valid header value");
        Self {
            shared,
            entrypoint,
            peer,
            client_ip,
            trusted,
            host_port: RefCell::new(None),
            requests: std::cell::Cell::new(0),
            in_flight: std::cell::Cell::new(0),
            opened: Instant::now(),
        }
    }

    fn port_of(&self, host: &HeaderValue) -> Option<HeaderValue> {
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
        *cache = Some((host.clone(), port.clone()));
        port
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

thread_local! {
    /// Scratch space for the synchronous routing step of one request; reset
    /// right after the decision (decision 1).
    static ARENA: RefCell<Bump> = RefCell::new(Bump::with_capacity(4096));
    /// This worker's router decision timer (created on the worker, after the
    /// metrics recorder was installed).
    static DECISION: DecisionTimer = DecisionStats::global().timer();
    /// This worker's request-metric handles.
    static METRICS: RefCell<Option<WorkerMetrics>> = const { RefCell::new(None) };
}

fn text(status: StatusCode, body: &'static str) -> Response<ProxyBody> {
    let mut r = Response::new(ProxyBody::full(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The response for a request no router matched (Traefik's body).
pub fn not_found() -> Response<ProxyBody> {
    text(StatusCode::NOT_FOUND, "404 page not found\n")
}

fn error_response(e: &ProxyError) -> Response<ProxyBody> {
    let status = e.status();
    let body = match status {
        StatusCode::GATEWAY_TIMEOUT => "Gateway Timeout",
        StatusCode::SERVICE_UNAVAILABLE => "Service Unavailable",
        _ => "Bad Gateway",
    };
    text(status, body)
}

/// What the proxy did with one request, for metrics and the access log.
struct Outcome {
    snap: Option<SnapshotRef>,
    router: Option<u32>,
    service: Option<u32>,
    server: Option<Arc<str>>,
    origin_status: Option<u16>,
}

impl Outcome {
    const NONE: Outcome = Outcome {
        snap: None,
        router: None,
        service: None,
        server: None,
        origin_status: None,
    };
}

/// One request in flight on a connection, for the idle watchdog.
struct InFlight<'a>(&'a ConnCtx);

impl<'a> InFlight<'a> {
    fn enter(ctx: &'a ConnCtx) -> Self {
        ctx.in_flight.set(ctx.in_flight.get() + 1);
        Self(ctx)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.set(self.0.in_flight.get() - 1);
    }
}

/// Handles one downstream request.
pub async fn handle(
    ctx: Rc<ConnCtx>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    ctx.requests.set(ctx.requests.get() + 1);
    // Counted down on drop too: a client that goes away (or an HTTP/2
    // stream reset) drops this future mid-flight.
    let in_flight = InFlight::enter(&ctx);
    let started = Instant::now();
    let shared = &ctx.shared;
    if shared.metrics.is_none() && shared.access_log.is_none() {
        let (resp, _) = proxy(&ctx, req, started).await;
        drop(in_flight);
        return Ok(resp);
    }

    // Observed path: capture what the records need before the request is
    // handed to the upstream.
    let method = req.method().clone();
    let protocol = Protocol::detect(req.headers());
    let req_bytes = body_len(req.headers());
    let log_start = shared.access_log.as_ref().map(|_| {
        let mut e = AccessLogEntry::new(
            std::time::SystemTime::now(),
            method.clone(),
            Bytes::copy_from_slice(
                req.uri()
                    .path_and_query()
                    .map_or(req.uri().path(), |p| p.as_str())
                    .as_bytes(),
            ),
            req.version(),
        );
        let h = req.headers();
        let copy = |n: header::HeaderName| h.get(n).map(|v| Bytes::copy_from_slice(v.as_bytes()));
        e.client_addr = Some(ctx.peer);
        e.forwarded_for = copy(header::HeaderName::from_static("x-forwarded-for"));
        e.host = copy(header::HOST).or_else(|| {
            req.uri()
                .authority()
                .map(|a| Bytes::copy_from_slice(a.as_str().as_bytes()))
        });
        e.tls = ctx.entrypoint.tls;
        e.referer = copy(header::REFERER);
        e.user_agent = copy(header::USER_AGENT);
        e.request_size = req_bytes;
        e
    });

    let (resp, outcome) = proxy(&ctx, req, started).await;
    drop(in_flight);
    let duration = started.elapsed();
    let resp_bytes = resp.body().size_hint().exact().unwrap_or(0);
    let names = outcome.snap.as_ref().map(|snap| {
        let router = outcome.router.map(|r| &snap.routers[r as usize].name);
        let service = outcome.service.map(|s| &snap.services[s as usize].name);
        (snap.generation, router, service)
    });

    if let Some(handle) = &shared.metrics {
        let code = if protocol.is_grpc() {
            grpc_status_code(resp.headers())
        } else {
            resp.status().as_u16()
        };
        let (generation, router, service) = names.unwrap_or((0, None, None));
        METRICS.with(|m| {
            let mut m = m.borrow_mut();
            let m = m.get_or_insert_with(|| WorkerMetrics::new(handle, shared.metric_flags));
            m.record(
                RequestLabels {
                    generation,
                    entrypoint: &ctx.entrypoint.name,
                    router,
                    service,
                },
                code,
                &method,
                protocol,
                duration,
                req_bytes,
                resp_bytes,
            );
        });
    }
    if let (Some(log), Some(mut e)) = (&shared.access_log, log_start) {
        e.duration = duration;
        e.status = resp.status().as_u16();
        e.response_size = resp_bytes;
        e.origin_status = outcome.origin_status;
        if let Some((_, router, service)) = names {
            e.router = router.cloned();
            e.service = service.cloned();
        }
        e.service_url = outcome.server;
        log.log(e);
    }
    Ok(resp)
}

/// The request body length announced by `Content-Length` (0 otherwise).
fn body_len(h: &http::HeaderMap) -> u64 {
    h.get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn proxy(
    ctx: &ConnCtx,
    mut req: Request<Incoming>,
    started: Instant,
) -> (Response<ProxyBody>, Outcome) {
    let snap = snapshot::current(&ctx.shared.snapshot);

    // The host as the client addressed it: `Host` (HTTP/1) or `:authority`.
    let host_value: Option<HeaderValue> = match req.headers().get(header::HOST) {
        Some(h) => Some(h.clone()),
        None => req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
    };
    if host_value.is_none() && req.version() == Version::HTTP_11 {
        return (
            text(
                StatusCode::BAD_REQUEST,
                "400 Bad Request: missing required Host header",
            ),
            Outcome::NONE,
        );
    }

    // === routing (synchronous, arena-backed) ===
    let Some(routes) = snap.entrypoints.get(ctx.entrypoint.index) else {
        return (not_found(), Outcome::NONE);
    };
    let host_str = host_value
        .as_ref()
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    // `Some` when Traefik's path normalisation changed the path: the
    // upstream then gets the sanitised path, as from Traefik (rare: the
    // common path is already normal and nothing is copied).
    let mut sanitized: Option<String> = None;
    let decision = ARENA.with(|arena| {
        let mut arena = arena.borrow_mut();
        let raw = req.uri().path();
        let d = match normalize_path(raw, &arena) {
            Ok(path) => {
                if !std::ptr::eq(path, raw)
                    && let Ok(s) = sanitize_path(raw, &arena)
                    && s != raw
                {
                    sanitized = Some(s.to_owned());
                }
                let view = ProxyRequest {
                    method: req.method(),
                    host: host_without_port(host_str),
                    path,
                    query: req.uri().query(),
                    headers: req.headers(),
                    client_ip: canonical_ip(ctx.peer.ip()),
                    arena: &arena,
                };
                Ok(routes.router.route(&view).copied())
            }
            Err(e) => Err(e),
        };
        arena.reset();
        d
    });
    DECISION.with(|t| t.record_since(started));

    let target = match decision {
        Ok(Some(t)) => t,
        Ok(None) => {
            return (
                not_found(),
                Outcome {
                    snap: Some(snap),
                    ..Outcome::NONE
                },
            );
        }
        Err(e) => {
            tracing::debug!(error = %e, path = req.uri().path(), "unroutable path");
            return (
                text(StatusCode::BAD_REQUEST, "400 Bad Request"),
                Outcome::NONE,
            );
        }
    };
    let mut outcome = Outcome {
        snap: None,
        router: Some(target.router),
        service: Some(target.service),
        server: None,
        origin_status: None,
    };
    let service = &snap.services[target.service as usize];
    let Some(target) = service.pick() else {
        let resp = error_response(&ProxyError::NoServer);
        outcome.snap = Some(Rc::clone(&snap));
        return (resp, outcome);
    };
    outcome.server = Some(Arc::clone(&target.url));

    // === rewrite for the upstream ===
    let upgrade = headers::is_upgrade_request(req.headers());
    let downstream_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    {
        let host_port = host_value.as_ref().and_then(|h| ctx.port_of(h));
        let headers = req.headers_mut();
        headers::remove_hop_by_hop(headers, upgrade, true);
        headers::set_forwarding_headers(
            headers,
            &headers::Forwarding {
                client_ip: &ctx.client_ip,
                trusted: ctx.trusted,
                tls: ctx.entrypoint.tls,
                websocket: upgrade,
                host: host_value.as_ref(),
                host_port: host_port.as_ref(),
                server_name: &ctx.shared.server_name,
            },
        );
    }
    if let Some(path) = sanitized
        && set_path(&mut req, &path).is_err()
    {
        return (text(StatusCode::BAD_REQUEST, "400 Bad Request"), outcome);
    }
    if rewrite_target(&mut req, target, service.pass_host_header, host_value).is_err() {
        return (text(StatusCode::BAD_REQUEST, "400 Bad Request"), outcome);
    }

    // === send ===
    let resp = match send_upstream(target, req).await {
        Ok(mut resp) => {
            outcome.origin_status = Some(resp.status().as_u16());
            if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                if let Some(down) = downstream_upgrade {
                    let up = hyper::upgrade::on(&mut resp);
                    tokio::task::spawn_local(tunnel(down, up));
                }
                headers::remove_hop_by_hop(resp.headers_mut(), true, false);
            } else {
                headers::remove_hop_by_hop(resp.headers_mut(), false, false);
            }
            resp.map(ProxyBody::Upstream)
        }
        Err(e) => {
            tracing::debug!(error = %e, url = %target.url, "upstream request failed");
            error_response(&e)
        }
    };
    outcome.snap = Some(snap);
    (resp, outcome)
}

/// Replaces the request's path, keeping its query.
fn set_path(req: &mut Request<Incoming>, path: &str) -> Result<(), BadTarget> {
    let pq = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let mut parts = std::mem::take(req.uri_mut()).into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(pq).map_err(|_| BadTarget)?);
    *req.uri_mut() = Uri::from_parts(parts).map_err(|_| BadTarget)?;
    Ok(())
}

/// The request cannot be pointed at the upstream (its host or path do not
/// form a valid URI there): the client's fault, a 400.
#[derive(Debug)]
struct BadTarget;

/// Points the request at `target`: origin-form URI for HTTP/1 upstreams
/// (absolute with the right authority for HTTP/2), the server URL's path
/// prepended, and the `Host` chosen by `passHostHeader`.
fn rewrite_target(
    req: &mut Request<Incoming>,
    target: &UpstreamTarget,
    pass_host: bool,
    host: Option<HeaderValue>,
) -> Result<(), BadTarget> {
    let needs_path = !target.base_path.is_empty();
    let pq: Option<PathAndQuery> = if needs_path {
        let orig = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let joined = if orig.starts_with('/') {
            format!("{}{}", target.base_path, orig)
        } else {
            format!("{}/{}", target.base_path, orig)
        };
        Some(PathAndQuery::try_from(joined).map_err(|_| BadTarget)?)
    } else {
        None
    };

    let host_to_send = if pass_host {
        host.unwrap_or_else(|| target.host_header.clone())
    } else {
        target.host_header.clone()
    };

    if target.h2c {
        let authority = Authority::try_from(host_to_send.as_bytes()).map_err(|_| BadTarget)?;
        let mut parts = std::mem::take(req.uri_mut()).into_parts();
        parts.scheme = Some(Scheme::HTTP);
        parts.authority = Some(authority);
        if let Some(pq) = pq {
            parts.path_and_query = Some(pq);
        } else if parts.path_and_query.is_none() {
            parts.path_and_query = Some(PathAndQuery::from_static("/"));
        }
        *req.uri_mut() = Uri::from_parts(parts).map_err(|_| BadTarget)?;
        req.headers_mut().remove(header::HOST);
        *req.version_mut() = Version::HTTP_2;
    } else {
        let origin_form = req.uri().scheme().is_none() && req.uri().authority().is_none();
        if pq.is_some() || !origin_form {
            let pq = match pq {
                Some(pq) => pq,
                None => req
                    .uri()
                    .path_and_query()
                    .cloned()
                    .unwrap_or_else(|| PathAndQuery::from_static("/")),
            };
            *req.uri_mut() = Uri::from(pq);
        }
        if !pass_host || !req.headers().contains_key(header::HOST) {
            req.headers_mut().insert(header::HOST, host_to_send);
        }
        *req.version_mut() = Version::HTTP_11;
    }
    Ok(())
}

/// Copies bytes both ways between an upgraded downstream and upstream
/// connection (WebSocket and other `101 Switching Protocols` upgrades).
async fn tunnel(down: hyper::upgrade::OnUpgrade, up: hyper::upgrade::OnUpgrade) {
    let (down, up) = match tokio::try_join!(down, up) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade failed");
            return;
        }
    };
    let mut down = TokioIo::new(down);
    let mut up = TokioIo::new(up);
    if let Err(e) = tokio::io::copy_bidirectional(&mut down, &mut up).await {
        tracing::debug!(error = %e, "upgraded connection ended with an error");
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
