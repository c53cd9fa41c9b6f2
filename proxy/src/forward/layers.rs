//! Multi-layer routing on the request path (`parentRefs`): a parent
//! router's middlewares run, then its children are matched on the request
//! as they left it (path, headers, host), as Traefik's child muxer does;
//! the child that matches runs its own middlewares, then its service or,
//! for an intermediate router, the same again one layer down. No child
//! matching is a 404, as from Traefik's child muxer; a disabled child
//! answers 503 at its place.
//!
//! Runs per request, only for requests a parent router matched (a plain
//! router never enters this module): the routing view borrows the request
//! and the worker's arena; the metrics name the router whose service
//! answered, the access log every router passed (`parent@file ->
//! child@file`, as Traefik concatenates them).

use std::rc::Rc;
use std::sync::Arc;

use http::{Request, Response, StatusCode};

use super::ProxyBody;
use super::head::Head;
use super::record::Outcome;
use super::respond::Answer;
use super::route;
use super::service::ServiceCall;
use crate::listener::ConnCtx;
use crate::middleware::{Exchange, Inner, Served};
use crate::routing::Router;
use crate::snapshot::{RouteTarget, RouterInfo, SnapshotRef};
use crate::upstream::RequestBody;

/// The answer of a disabled router: it keeps its place so that what it
/// matches never falls through to another router (which Traefik lets
/// happen).
pub(super) fn disabled(router: &RouterInfo) -> Response<ProxyBody> {
    tracing::warn!(
        router = &*router.name,
        "router disabled by a configuration error: answering 503"
    );
    Answer::Failed(StatusCode::SERVICE_UNAVAILABLE).response()
}

/// Runs parent `router`'s middlewares around the choice among `children`
/// (`call` is the request's service call, its service not yet known).
pub(super) async fn serve(
    call: ServiceCall<'_>,
    router: &RouterInfo,
    children: &Router<RouteTarget>,
    req: Request<RequestBody>,
) -> Served {
    let ServiceCall {
        ctx,
        snap,
        head,
        outcome,
        ..
    } = call;
    let mut below = Children {
        ctx,
        snap,
        head,
        outcome,
        children,
    };
    // An empty chain calls `below` straight away (`Chain::run`).
    let cx = Exchange {
        conn: ctx,
        snapshot: snap,
    };
    router.chain.run(req, &cx, &mut below).await
}

/// The call a parent's chain wraps: route among its children, then the
/// child's chain around its service (or its own children).
struct Children<'a> {
    ctx: &'a Rc<ConnCtx>,
    snap: &'a SnapshotRef,
    head: &'a Head,
    outcome: &'a mut Outcome,
    children: &'a Router<RouteTarget>,
}

impl Inner for Children<'_> {
    async fn call(&mut self, req: Request<RequestBody>) -> Served {
        let target = match route::route_child(self.ctx, self.children, &req) {
            Ok(Some(target)) => target,
            Ok(None) => return Ok(Answer::NotFound.response()),
            Err(answer) => return Ok(answer.response()),
        };
        let snap = self.snap;
        let router = &snap.routers[target.router as usize];
        // The access log names every router passed, as Traefik's does.
        let above = match (&self.outcome.layers, self.outcome.router) {
            (Some(names), _) => Some(Arc::clone(names)),
            (None, Some(parent)) => Some(Arc::clone(&snap.routers[parent as usize].name)),
            (None, None) => None,
        };
        if let Some(above) = above {
            self.outcome.layers = Some(Arc::from(format!("{above} -> {}", router.name)));
        }
        self.outcome.router = Some(target.router);
        if router.disabled {
            return Ok(disabled(router));
        }
        let cx = Exchange {
            conn: self.ctx,
            snapshot: snap,
        };
        if let Some(children) = router.children.as_deref() {
            let mut below = Children {
                ctx: self.ctx,
                snap,
                head: self.head,
                outcome: &mut *self.outcome,
                children,
            };
            // Boxed: one layer down is the same call again.
            return Box::pin(router.chain.run(req, &cx, &mut below)).await;
        }
        self.outcome.service = Some(target.service);
        let mut call = ServiceCall {
            ctx: self.ctx,
            snap,
            root: target.service,
            head: self.head,
            outcome: &mut *self.outcome,
        };
        router.chain.run(req, &cx, &mut call).await
    }
}
