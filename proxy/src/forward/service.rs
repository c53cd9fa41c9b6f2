//! Phase 4, the call the middleware chain wraps: the router's service
//! resolves (through `weighted`, `highestRandomWeight` and `failover`
//! services, sticky cookies) to one server of a load balancer, the request is pointed at it (hop-by-hop headers removed,
//! `X-Forwarded-For` completed, URI and `Host` rewritten) and sent over
//! the worker's pool; a `101 Switching Protocols` starts the tunnel.
//!
//! Runs per request: no lock, no `dyn`; the only allocations are the ones
//! hyper makes, a joined path when the server URL has one, and the list
//! of `Set-Cookie` headers sticky cookies add.
//!
//! The service's balancer picks by its strategy, skipping servers the
//! health checks took down (none up: 503). For p2c and leasttime a request
//! counts as in flight on its server until the response head arrives, and
//! leasttime records that time to first byte; wrr and hrw touch no shared
//! counter but the schedule's. A `passiveHealthCheck` hears of every
//! answer (a 5xx or an unreachable server counts against it). A request
//! that passed a `mirroring` has its copies sent first (`mirror`), off
//! this request's path; one that passed a `failover` with `errors` is
//! sent again to the fallback when the main service's answer is in them
//! (`failover`). The metrics and logs name the load balancer
//! the request reached, as Traefik's do.
//! An internal service (`api@internal`) is answered at
//! [`ServiceCall::call`] by [`crate::admin`], behind the router's
//! middlewares.
//!
//! A service with `middlewares` of its own runs them around the rest of
//! the call: the resolution stops before it, its chain runs, and the
//! resolution goes on from it inside the chain (`Below`), so the
//! middlewares of the services a request passes run outermost first,
//! after the router's, as Traefik nests its service handlers. A
//! `mirroring` or a `failover` with `errors` with such services below it
//! (`layered`, marked when the configuration is compiled) is served at
//! its place (`composite`): the mirroring's copies are taken there, each
//! served by its mirror service on a task of its own (which owns the
//! connection's `Rc`), before the main service's middlewares run; the
//! failover runs its main service through its middlewares and its
//! fallback through its own, outside the main's. Requests through
//! services without middlewares pay one branch per service passed.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use http::{Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;

use super::ProxyBody;
use super::failover;
use super::head::Head;
use super::headers;
use super::mirror;
use super::record::Outcome;
use crate::listener::ConnCtx;
use crate::middleware::{Exchange, Inner, Served};
use crate::snapshot::SnapshotRef;
use crate::upstream::{
    ErrorSource, LoadBalancer, PooledBody, ProxyError, RequestBody, Resolved, ServiceKind,
    UpstreamTarget, Walk, resolve, send_upstream,
};

/// The service call of one request.
pub(super) struct ServiceCall<'a> {
    /// The connection (owned by a mirror's copy, which outlives the call).
    pub(super) ctx: &'a Rc<ConnCtx>,
    /// The snapshot the request started with (mirrors keep it alive).
    pub(super) snap: &'a SnapshotRef,
    /// The router's service (index into the snapshot's services).
    pub(super) root: u32,
    pub(super) head: &'a Head,
    pub(super) outcome: &'a mut Outcome,
}

impl Inner for ServiceCall<'_> {
    #[allow(clippy::manual_async_fn)] // an `async fn` holds its arguments twice; see `forward::handle`
    fn call(&mut self, req: Request<RequestBody>) -> impl Future<Output = Served> {
        async move {
            let snap = self.snap;
            let root = &snap.services[self.root as usize];
            if let ServiceKind::Internal(internal) = &root.kind {
                return Ok(crate::admin::serve_internal(self.ctx, *internal, &req).await);
            }
            let walk = Walk {
                layers: true,
                ..Walk::default()
            };
            if !root.chain.is_empty() {
                return self.through(self.root, req, walk).await;
            }
            self.serve_from(self.root, req, walk).await
        }
    }
}

/// The rest of a request's service call below a service with middlewares
/// (`at`, whose chain wraps it): what the chain's members call, once or
/// again (a `retry` there resolves again, to another server).
struct Below<'c, 'a> {
    call: &'c mut ServiceCall<'a>,
    at: u32,
    /// What the resolution collected above `at` (sticky cookies).
    above: &'c Walk,
}

impl Inner for Below<'_, '_> {
    async fn call(&mut self, req: Request<RequestBody>) -> Served {
        // Nothing but cookies can be above: a mirroring or a failover with
        // errors above a service with middlewares is served at its place
        // (`composite`), never left in the walk.
        let walk = Walk {
            set_cookies: self.above.set_cookies.clone(),
            layers: true,
            ..Walk::default()
        };
        // Boxed: the call recurses through the next service's chain.
        Box::pin(self.call.serve_from(self.at, req, walk)).await
    }
}

impl ServiceCall<'_> {
    /// Resolves from service `from` (its own middlewares have run) with
    /// what `walk` collected above it, and sends; a service with
    /// middlewares on the way runs them around the rest ([`Self::through`]).
    #[allow(clippy::manual_async_fn)] // an `async fn` holds its arguments twice; see `forward::handle`
    fn serve_from(
        &mut self,
        from: u32,
        req: Request<RequestBody>,
        mut walk: Walk,
    ) -> impl Future<Output = Served> {
        async move {
            let services = &self.snap.services;
            let Some(to) = resolve(
                services,
                from,
                self.ctx.client_ip().as_bytes(),
                req.headers(),
                &mut walk,
            ) else {
                return match walk.layer.take() {
                    // A child's middlewares (resolve checks them first).
                    Some(at) if at != from && !services[at as usize].chain.is_empty() => {
                        self.through(at, req, walk).await
                    }
                    // Boxed: the call recurses through the composite's children.
                    Some(at) => Box::pin(self.composite(at, req, walk)).await,
                    None => Err(ProxyError::NoServer),
                };
            };
            // An upgrade is not sent twice: it goes to the main service only.
            // Boxed: a failover is rare, and its states (the main attempt, the
            // fallback) would otherwise size every request's future.
            if !walk.failovers.is_empty() && !self.head.upgrade {
                return Box::pin(failover::serve(self, req, to, walk)).await;
            }
            self.forward(req, to, &walk.set_cookies, &walk.mirrorings)
                .await
        }
    }

    /// Serves `req` from service `at`, its own middlewares first, with
    /// what `walk` collected above it.
    pub(super) async fn enter(&mut self, at: u32, req: Request<RequestBody>, walk: Walk) -> Served {
        if self.snap.services[at as usize].chain.is_empty() {
            self.serve_from(at, req, walk).await
        } else {
            self.through(at, req, walk).await
        }
    }

    /// Serves `req` at the mirroring or failover with errors `at`, which
    /// has services with middlewares below it: a mirroring's copies are
    /// taken before its main service's middlewares change the request,
    /// and a failover's fallback runs outside its main service's.
    async fn composite(&mut self, at: u32, req: Request<RequestBody>, walk: Walk) -> Served {
        // What a resolution pushes before it stops is its own: nothing
        // but cookies reach a layered composite.
        debug_assert!(walk.mirrorings.is_empty() && walk.failovers.is_empty());
        let snap = self.snap;
        let service = &snap.services[at as usize];
        match &service.kind {
            ServiceKind::Mirroring(m) => {
                let req = if self.head.upgrade {
                    req
                } else {
                    mirror::copy(self, &[at], req, &service.name).await?
                };
                self.enter(m.main, req, walk).await
            }
            // An upgrade is not sent twice: it goes to the main service only.
            ServiceKind::Failover(f) if self.head.upgrade => self.enter(f.main, req, walk).await,
            ServiceKind::Failover(f) => failover::serve_at(self, f, req, walk).await,
            _ => unreachable!("resolve stops at a layered mirroring or failover"),
        }
    }

    /// Runs service `at`'s middlewares around the rest of the call.
    async fn through(&mut self, at: u32, req: Request<RequestBody>, above: Walk) -> Served {
        let snap = self.snap;
        let cx = Exchange {
            conn: self.ctx,
            snapshot: snap,
        };
        let mut below = Below {
            call: self,
            at,
            above: &above,
        };
        snap.services[at as usize]
            .chain
            .run(req, &cx, &mut below)
            .await
    }
}

impl ServiceCall<'_> {
    /// Sends `req` to the server `to` names, after the copies for
    /// `mirrorings`; the answer carries `set_cookies`.
    #[allow(clippy::manual_async_fn)] // an `async fn` holds its arguments twice; see `forward::handle`
    pub(super) fn forward(
        &mut self,
        mut req: Request<RequestBody>,
        to: Resolved,
        set_cookies: &[HeaderValue],
        mirrorings: &[u32],
    ) -> impl Future<Output = Served> {
        async move {
            let services = &self.snap.services;
            self.outcome.service = Some(to.service);
            let ServiceKind::LoadBalancer(lb) = &services[to.service as usize].kind else {
                unreachable!("resolve ends at a load balancer");
            };
            let picked = to.server;
            let target = &lb.servers[picked];
            if !mirrorings.is_empty() && !self.head.upgrade {
                req = mirror::copy(self, mirrorings, req, &target.authority).await?;
            }
            self.outcome.server = Some(Arc::clone(&target.url));
            let downstream_upgrade = self.head.upgrade.then(|| hyper::upgrade::on(&mut req));
            let h = req.headers_mut();
            headers::remove_hop_by_hop(h, self.head.upgrade, true);
            headers::append_forwarded_for(h, self.ctx.client_ip(), self.ctx.forwarded_for());
            rewrite_target(
                &mut req,
                target,
                lb.pass_host_header,
                self.head.host.as_ref(),
            )?;
            match send_to(lb, picked, req).await {
                Ok(mut resp) => {
                    self.outcome.origin_status = Some(resp.status().as_u16());
                    let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
                    let trailer = response_framing(&mut resp, switching, self.head.upgrade)
                        .map_err(|reason| ProxyError::BadResponse {
                            addr: target.url.to_string(),
                            reason,
                        })?;
                    if switching && let Some(down) = downstream_upgrade {
                        let up = hyper::upgrade::on(&mut resp);
                        // The tunnel keeps a drain waiting, as an open
                        // connection does: SIGTERM gives it graceTimeOut.
                        let open = self.ctx.hold_open();
                        tokio::task::spawn_local(async move {
                            tunnel(down, up).await;
                            drop(open);
                        });
                    }
                    headers::remove_hop_by_hop(resp.headers_mut(), switching, false);
                    if let Some(t) = trailer {
                        resp.headers_mut().insert(header::TRAILER, t);
                    }
                    for c in set_cookies {
                        resp.headers_mut().append(header::SET_COOKIE, c.clone());
                    }
                    Ok(resp.map(ProxyBody::Stream))
                }
                Err(e) => {
                    tracing::debug!(error = %e, url = %target.url, "upstream request failed");
                    Err(e)
                }
            }
        }
    }
}

/// Sends `req` to service `root` of `services`, resolved to one server
/// as a router's request is (composite services, health) and pointed at
/// it (hop-by-hop headers removed, `Host` by `passHostHeader`), over the
/// worker's pool: how an `errors` middleware fetches its page. No
/// mirroring, sticky cookie or upgrade: the request is the proxy's own.
pub(crate) async fn fetch(
    ctx: &ConnCtx,
    services: &[crate::upstream::Service],
    root: u32,
    mut req: Request<RequestBody>,
) -> Served {
    let mut walk = Walk::default();
    let to = resolve(
        services,
        root,
        ctx.client_ip().as_bytes(),
        req.headers(),
        &mut walk,
    )
    .ok_or(ProxyError::NoServer)?;
    let ServiceKind::LoadBalancer(lb) = &services[to.service as usize].kind else {
        return Err(ProxyError::NoServer);
    };
    let target = &lb.servers[to.server];
    headers::remove_hop_by_hop(req.headers_mut(), false, true);
    let host = req.headers().get(header::HOST).cloned();
    rewrite_target(&mut req, target, lb.pass_host_header, host.as_ref())?;
    let resp = send_to(lb, to.server, req).await?;
    Ok(resp.map(ProxyBody::Stream))
}

/// Sends `req` (pointed at it already) to server `picked` of `lb`, keeping
/// what the strategy and the passive health check need: the in-flight
/// count and time to first byte (p2c, leasttime), the answer's verdict.
#[allow(clippy::manual_async_fn)] // an `async fn` holds its arguments twice; see `forward::handle`
pub(super) fn send_to(
    lb: &LoadBalancer,
    picked: usize,
    req: Request<RequestBody>,
) -> impl Future<Output = Result<Response<PooledBody>, ProxyError>> {
    async move {
        let target = &lb.servers[picked];
        let sent = if lb.balancer.strategy().counts_inflight() {
            let state = lb.balancer.state(picked);
            let _inflight = state.start();
            let started = Instant::now();
            let sent = send_upstream(target, req).await;
            if sent.is_ok() {
                state.record_ttfb(started.elapsed());
            }
            sent
        } else {
            send_upstream(target, req).await
        };
        if let Some(passive) = &lb.passive {
            match &sent {
                Ok(resp) if resp.status().as_u16() < 500 => passive.success(picked),
                // A client's broken body or unforwardable target is not the
                // server's failure.
                Err(e) if e.source_side() == ErrorSource::Client => {}
                _ => passive.failure(picked, &target.url, lb.balancer.state_arc(picked)),
            }
        }
        sent
    }
}

/// Points the request at `target`: origin-form URI for HTTP/1 upstreams
/// (absolute with the right authority for HTTP/2), the server URL's path
/// prepended, and the `Host` chosen by `passHostHeader`. A host or path
/// that forms no valid URI there is the client's fault (400).
pub(super) fn rewrite_target(
    req: &mut Request<RequestBody>,
    target: &UpstreamTarget,
    pass_host: bool,
    host: Option<&HeaderValue>,
) -> Result<(), ProxyError> {
    let needs_path = !target.base_path.is_empty();
    let pq: Option<PathAndQuery> = if needs_path {
        let orig = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let joined = if orig.starts_with('/') {
            format!("{}{}", target.base_path, orig)
        } else {
            format!("{}/{}", target.base_path, orig)
        };
        Some(PathAndQuery::try_from(joined).map_err(|_| target.invalid_target("invalid path"))?)
    } else {
        None
    };

    // Borrowed: the common case (HTTP/1, `passHostHeader`, a `Host` sent)
    // keeps the request's own header and copies nothing.
    let host_to_send = match host {
        Some(h) if pass_host => h,
        _ => &target.host_header,
    };

    if target.h2c {
        let authority = Authority::try_from(host_to_send.as_bytes())
            .map_err(|_| target.invalid_target("invalid host"))?;
        let mut parts = std::mem::take(req.uri_mut()).into_parts();
        parts.scheme = Some(Scheme::HTTP);
        parts.authority = Some(authority);
        if let Some(pq) = pq {
            parts.path_and_query = Some(pq);
        } else if parts.path_and_query.is_none() {
            parts.path_and_query = Some(PathAndQuery::from_static("/"));
        }
        *req.uri_mut() =
            Uri::from_parts(parts).map_err(|_| target.invalid_target("invalid URI"))?;
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
            req.headers_mut().insert(header::HOST, host_to_send.clone());
        }
        *req.version_mut() = Version::HTTP_11;
    }
    Ok(())
}

/// Checks how the upstream framed its answer before it is passed on, as
/// Go's transport and reverse proxy do for Traefik, and returns the
/// `Trailer` header to announce again once the hop-by-hop headers are gone
/// (hyper's server sends only announced trailer fields, and only to a
/// client that sent `TE: trailers`):
/// - a `Transfer-Encoding` other than one `chunked` is refused: hyper
///   undoes the chunking only, and the coded bytes would reach the client
///   as a plain body;
/// - with `Transfer-Encoding`, a `Content-Length` is dropped (RFC 9112
///   §6.3: the chunked framing wins, and the client must not wait for the
///   length);
/// - `101 Switching Protocols` to a request that asked for no upgrade is
///   refused;
/// - hyper's copy of the upstream's reason phrase is dropped: the client
///   gets the canonical one, as Go writes it.
fn response_framing(
    resp: &mut Response<impl Sized>,
    switching: bool,
    upgrade_asked: bool,
) -> Result<Option<HeaderValue>, &'static str> {
    if switching && !upgrade_asked {
        return Err("101 Switching Protocols to a request without an upgrade");
    }
    resp.extensions_mut().remove::<hyper::ext::ReasonPhrase>();
    let h = resp.headers_mut();
    match headers::chunked_only(h) {
        Ok(false) => return Ok(None),
        Ok(true) => {}
        Err(()) => return Err("unsupported transfer encoding in the response"),
    }
    h.remove(header::CONTENT_LENGTH);
    Ok(h.get(header::TRAILER).cloned())
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
