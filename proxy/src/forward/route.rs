//! Phase 2: the router of the request's entrypoint (its TLS routers for a
//! TLS connection, its plain ones otherwise) picks a router, on the
//! path normalised as Traefik matches it, in the worker's arena; the
//! request's path becomes the sanitised one Traefik forwards.
//!
//! Runs per request: synchronous, allocation-free on the common path (a
//! normal path is matched as is and nothing is copied); the decision time
//! is recorded (decision 3).

use std::cell::RefCell;
use std::time::Instant;

use bumpalo::Bump;
use http::Request;
use http::uri::{PathAndQuery, Uri};

use super::head::Head;
use super::respond::Answer;
use crate::ProxyRequest;
use crate::ipnet::canonical_ip;
use crate::listener::ConnCtx;
use crate::observe::{DecisionStats, DecisionTimer};
use crate::routing::{Router, forward_and_routing_paths, host_without_port, routing_path};
use crate::snapshot::{EntryPointRoutes, RouteTarget};

thread_local! {
    /// Scratch space for the synchronous routing step of one request; reset
    /// right after the decision (decision 1).
    static ARENA: RefCell<Bump> = RefCell::new(Bump::with_capacity(4096));
    /// This worker's router decision timer (created on the worker, after the
    /// metrics recorder was installed).
    static DECISION: DecisionTimer = DecisionStats::global().timer();
}

/// Routes `req` among `routes`: the router's target, `None` when no router
/// matches, or the answer for a path that cannot be routed. `started` is
/// when the request was received (the decision time runs from there).
pub(super) fn route<B>(
    ctx: &ConnCtx,
    routes: &EntryPointRoutes,
    req: &mut Request<B>,
    head: &Head,
    started: Instant,
) -> Result<Option<RouteTarget>, Answer> {
    // `Some` when Traefik's path normalisation changed the path: the
    // upstream then gets the sanitised path, as from Traefik (rare: the
    // common path is already normal and nothing is copied).
    let mut sanitized: Option<String> = None;
    let decision = ARENA.with(|arena| {
        let mut arena = arena.borrow_mut();
        let raw = req.uri().path();
        let clean = ctx.entrypoint.headers.sanitize_path;
        let d = match forward_and_routing_paths(raw, &arena, clean) {
            Ok((forward, path)) => {
                if !std::ptr::eq(forward, raw) && forward != raw {
                    sanitized = Some(forward.to_owned());
                }
                let view = ProxyRequest {
                    method: req.method(),
                    host: host_without_port(head.host_str()),
                    authority: head.host_str(),
                    path,
                    query: req.uri().query(),
                    headers: req.headers(),
                    client_ip: canonical_ip(ctx.peer.ip()),
                    arena: &arena,
                };
                let table = if ctx.tls {
                    &routes.tls_router
                } else {
                    &routes.router
                };
                Ok(table.route(&view).copied())
            }
            Err(e) => Err(e),
        };
        arena.reset();
        d
    });
    DECISION.with(|t| t.record_since(started));
    let target = match decision {
        Ok(t) => t,
        Err(e) => {
            tracing::debug!(error = %e, path = req.uri().path(), "unroutable path");
            return Err(Answer::BadRequest);
        }
    };
    if target.is_some()
        && let Some(path) = sanitized
    {
        set_path(req, &path).map_err(|()| Answer::BadRequest)?;
    }
    Ok(target)
}

/// Routes `req` among a parent router's `children`, as Traefik's child
/// muxer does: on the request as the parent's middlewares left it, its
/// path decoded for routing again (`withRoutingPath` only: the
/// entrypoint's normalisation ran once, before the parent), its host the
/// URI's authority or `Host`. `None` when no child matches; a path that
/// cannot be decoded is a 400, as from Traefik's muxer.
pub(super) fn route_child<B>(
    ctx: &ConnCtx,
    children: &Router<RouteTarget>,
    req: &Request<B>,
) -> Result<Option<RouteTarget>, Answer> {
    let host = match req.uri().authority() {
        Some(a) => a.as_str(),
        None => req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or(""),
    };
    let decision = ARENA.with(|arena| {
        let mut arena = arena.borrow_mut();
        let d = routing_path(req.uri().path(), &arena).map(|path| {
            let view = ProxyRequest {
                method: req.method(),
                host: host_without_port(host),
                authority: host,
                path,
                query: req.uri().query(),
                headers: req.headers(),
                client_ip: canonical_ip(ctx.peer.ip()),
                arena: &arena,
            };
            children.route(&view).copied()
        });
        arena.reset();
        d
    });
    decision.map_err(|e| {
        tracing::debug!(error = %e, path = req.uri().path(), "unroutable path under a parent router");
        Answer::BadRequest
    })
}

/// Replaces the request's path, keeping its query.
fn set_path<B>(req: &mut Request<B>, path: &str) -> Result<(), ()> {
    let pq = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let mut parts = std::mem::take(req.uri_mut()).into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(pq).map_err(|_| ())?);
    *req.uri_mut() = Uri::from_parts(parts).map_err(|_| ())?;
    Ok(())
}
