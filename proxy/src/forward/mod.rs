//! The request's journey through the proxy, one phase per module:
//!
//! 1. `head`: the head checked (the host it is for) and prepared as
//!    Traefik's entrypoint prepares it (forwarding headers set, the
//!    `Connection`-named headers removed), so rules see the result;
//! 2. `route`: the entrypoint's router picks a router; a parent router
//!    (`layers`) picks one of its children after its middlewares;
//! 3. the router's middleware chain ([`crate::middleware`]);
//! 4. `service`: its service picks a server and the request is sent;
//! 5. `record`: metrics and the access log.
//!
//! Answers the proxy writes itself are built in `respond`, header
//! rewriting is in `headers`; the body types are `upstream::MessageBody`.
//!
//! Runs per request on a worker thread. No lock, no `dyn`: the snapshot is
//! a worker-cached `Rc`, the routing view borrows the request and the
//! worker's arena, the upstream connection comes from the worker's pool.
//! The phases are plain functions composed in one `async fn`, so the
//! whole journey compiles to one state machine (decision 4's static
//! composition; tower's `Service` would add `poll_ready` plumbing and a
//! nameable future per phase, and nothing measurable).

mod failover;
mod head;
pub mod headers;
mod layers;
mod mirror;
mod record;
mod redirect;
pub mod respond;
mod route;
mod service;

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use http::header::HeaderValue;
use http::{Request, Response};
use hyper::body::Incoming;

pub use redirect::Redirect;
pub use respond::Answer;
pub(crate) use service::fetch;

use crate::admin::Admin;
use crate::listener::ConnCtx;
use crate::middleware::{Exchange, Inner};
use crate::observe::{AccessLogSender, MetricsFlags, MetricsHandle};
use crate::snapshot::{self, RouteTarget, SharedSnapshot};
use crate::upstream::{ClientBody, MessageBody, PooledBody, ProxyError, RequestBody};
pub use record::Finish;
use record::{Outcome, Record};

/// A response body on its way to the client: the upstream's, streamed
/// (returning its connection to the pool when done), or one the proxy
/// produced itself (a 404, a 502).
pub type ProxyBody = MessageBody<PooledBody>;

/// Process-wide state shared by every worker (immutable after start, or
/// swapped atomically). State that must outlive a configuration and be
/// read per request (the services issue's server health, keyed by
/// `UpstreamTarget::id`) lives here, beside the snapshot, not in it.
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
    /// What internal services (`api@internal`...) answer from; `None` in
    /// a proxy built without it (tests).
    pub admin: Option<Arc<Admin>>,
}

/// Handles one downstream request, number `request` on connection `ctx`.
/// When metrics or the access log are on, its record is left with the
/// connection ([`ConnCtx::record_at_end`]) to be finished when the
/// response body has been sent, so that durations run to the last byte and
/// streamed bytes are counted.
///
/// Not an `async fn`, and neither are the functions a request goes through
/// to its server: an `async fn` moves its arguments into locals of its
/// state, so its state holds the request (264-320 bytes) twice at every
/// level, and `async move` holds it once. The whole request's future is
/// kept by hyper for the connection's life (boxed once, reused by every
/// request) and moved in per request, so its size is memory per idle
/// connection and copying per request: 5.3 KiB with this and the boxed
/// rare paths (connecting, failover, HTTP/2 upstreams), 14.5 KiB before.
#[allow(clippy::manual_async_fn)]
pub fn handle(
    ctx: &Rc<ConnCtx>,
    req: Request<Incoming>,
    request: u64,
) -> impl Future<Output = Response<ProxyBody>> {
    async move {
        let started = Instant::now();
        let shared = &ctx.shared;
        let mut outcome = Outcome::default();
        if shared.metrics.is_none() && shared.access_log.is_none() {
            return journey(ctx, req, started, &mut outcome).await;
        }
        // What the records need is captured before the phases change the
        // request.
        let record = Record::begin(ctx, &req);
        let resp = journey(ctx, req, started, &mut outcome).await;
        ctx.record_at_end(request, record.responded(&resp, outcome, started));
        resp
    }
}

/// Phases 1 to 4, filling `outcome` in as they go.
#[allow(clippy::manual_async_fn)] // an `async fn` holds its arguments twice; see `forward::handle`
fn journey(
    ctx: &Rc<ConnCtx>,
    mut req: Request<Incoming>,
    started: Instant,
    outcome: &mut Outcome,
) -> impl Future<Output = Response<ProxyBody>> {
    async move {
        let head = match head::check(ctx, &mut req) {
            Ok(head) => head,
            Err(answer) => return answer.response(),
        };

        let snap = snapshot::current(&ctx.shared.snapshot);
        let Some(routes) = snap.entrypoints.get(ctx.entrypoint.index) else {
            return Answer::NotFound.response();
        };
        let target = match route::route(ctx, routes, &mut req, &head, started) {
            Ok(Some(target)) => target,
            Ok(None) => {
                outcome.snap = Some(snap);
                return Answer::NotFound.response();
            }
            Err(answer) => return answer.response(),
        };
        outcome.router = Some(target.router);
        let router = &snap.routers[target.router as usize];
        // Traefik's SNI check: a TLS router answers only connections whose
        // handshake used its TLS options (the SNI chose them); a Host mapping
        // to other options than the SNI did is misdirected.
        if let Some(used) = &ctx.tls_options
            && target.tls_options != RouteTarget::PLAIN
            && snap
                .tls
                .options
                .get(target.tls_options as usize)
                .is_none_or(|o| o.name != *used)
        {
            outcome.snap = Some(snap);
            return Answer::Misdirected.response();
        }
        // One branch for a plain router; then which of the three.
        let mut children = None;
        if router.special {
            if let Some(redirect) = &router.redirect {
                let resp = redirect.response(&req, head.host_str());
                outcome.snap = Some(snap);
                return resp;
            }
            if router.disabled {
                let resp = layers::disabled(router);
                outcome.snap = Some(snap);
                return resp;
            }
            children = router.children.as_deref();
        }
        outcome.service = Some(target.service);

        let mut call = service::ServiceCall {
            ctx,
            snap: &snap,
            root: target.service,
            head: &head,
            outcome,
        };
        let read_timeout = ctx.read_timeout();
        let h1 = req.version() < http::Version::HTTP_2;
        let req = req.map(|b| RequestBody::Stream(ClientBody::new(b, started, read_timeout)));
        // Every router has a chain; an empty one (every router until the
        // middlewares exist) is skipped without entering the runner.
        let served = if let Some(children) = children {
            // Boxed: a parent's call recurses through its children's chains
            // (and keeps the plain journey's future small).
            call.outcome.service = None;
            Box::pin(layers::serve(call, router, children, req)).await
        } else if router.chain.is_empty() {
            call.call(req).await
        } else {
            let cx = Exchange {
                conn: ctx,
                snapshot: &snap,
            };
            router.chain.run(req, &cx, &mut call).await
        };
        let mut resp = match served {
            Ok(resp) => resp,
            Err(e) => {
                let mut resp = Answer::from(&e).response();
                if h1 && matches!(e, ProxyError::ClientBody { .. }) {
                    // The rest of the body will not be read: the connection
                    // cannot carry another request.
                    resp.headers_mut()
                        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
                }
                resp
            }
        };
        // The answer is the proxy's own HTTP/1.1 message, whatever version the
        // backend spoke, as Go's server writes it for Traefik: an HTTP/1.0
        // backend's answer would otherwise go out as `HTTP/1.0` without
        // keep-alive, and a body it ends by closing would close the client's
        // connection instead of being chunked. (hyper still answers an
        // HTTP/1.0 client in HTTP/1.0.)
        *resp.version_mut() = http::Version::HTTP_11;
        outcome.snap = Some(snap);
        resp
    }
}
