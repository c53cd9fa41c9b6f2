//! `failover.errors`: a request that passed a `failover` with `errors`
//! while its main service was up is sent there, and sent again to the
//! fallback when the main service answers a status in `errors`, as
//! Traefik 3.7 does.
//!
//! The body is read whole first (it must go twice), up to the smallest
//! `maxRequestBodyBytes` of the failovers passed: a larger one (declared
//! by `Content-Length` or found while reading) is answered 413 `Request
//! body too large`, as Traefik answers. The main service's answer is
//! judged by its status, a server's or the proxy's own (502, 503, 504):
//! in `errors`, it is dropped with the headers it would have added
//! (sticky cookies), and the fallback answers instead (503 when it is
//! followed by `healthCheck` and down). Failovers nest: an answer goes to
//! the innermost failover whose `errors` take it, and a fallback's answer
//! to those outside it.
//!
//! A failover with services with middlewares below it is served at its
//! place instead ([`serve_at`]), as Traefik nests its handlers: the main
//! service's middlewares run around the main service only, the status
//! they answer decides, and the fallback runs through its own
//! middlewares, outside the main service's.
//!
//! Runs on the request path only for requests through such a failover:
//! it allocates (the body, a copy of the head per attempt), takes no lock.

use bytes::Bytes;
use http::Request;
use http::header;

use super::mirror::{copy_of, read_whole};
use super::service::ServiceCall;
use crate::middleware::Served;
use crate::upstream::{
    Failover, MessageBody, ProxyError, RequestBody, Resolved, Service, ServiceKind, Walk,
    failover_for, is_up, resolve_fallback,
};

/// Serves `req` at the failover `f` (its main service up), whose main
/// service or fallback has middlewares: the main service answers through
/// its own, and when that answer's status is in `errors` it is dropped
/// (with the cookies it would have added) and the fallback answers
/// through its own. `above` is what the resolution collected above `f`.
pub(super) async fn serve_at(
    call: &mut ServiceCall<'_>,
    f: &Failover,
    req: Request<RequestBody>,
    above: Walk,
) -> Served {
    let Some(errors) = &f.errors else {
        unreachable!("only a failover with errors is served at its place");
    };
    let limit = errors.max_body;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(limit) = limit.filter(|&l| declared.is_some_and(|n| n > l)) {
        return Err(ProxyError::BodyTooLarge { limit });
    }
    let (parts, body) = req.into_parts();
    let main_name = &call.snap.services[f.main as usize].name;
    // A body held already (by a failover or mirroring above) keeps this
    // failover's limit too.
    let body: Bytes = match read_whole(body, limit, main_name).await? {
        MessageBody::Full(b)
            if limit.is_none_or(|l| b.as_ref().map_or(0, Bytes::len) as u64 <= l) =>
        {
            b.unwrap_or_default()
        }
        _ => {
            return Err(ProxyError::BodyTooLarge {
                limit: limit.unwrap_or_default(),
            });
        }
    };
    let template = Request::from_parts(parts, MessageBody::empty());
    let walk = |above: &Walk| Walk {
        set_cookies: above.set_cookies.clone(),
        layers: true,
        ..Walk::default()
    };
    let served = call
        .enter(f.main, copy_of(&template, Some(body.clone())), walk(&above))
        .await;
    let status = match &served {
        Ok(resp) => resp.status().as_u16(),
        Err(e) => e.status().as_u16(),
    };
    if !errors.ranges.contains(status) {
        return served;
    }
    drop(served);
    call.outcome.origin_status = None;
    if f.follow_fallback && !is_up(&call.snap.services, f.fallback) {
        return Err(ProxyError::NoServer);
    }
    let (parts, _) = template.into_parts();
    let req = Request::from_parts(parts, MessageBody::full(body));
    call.enter(f.fallback, req, above).await
}

/// Serves `req`, resolved to `to` through the failovers in `walk`.
pub(super) async fn serve(
    call: &mut ServiceCall<'_>,
    req: Request<RequestBody>,
    mut to: Resolved,
    mut walk: Walk,
) -> Served {
    let snap = call.snap;
    let services = &snap.services;
    let limit = body_limit(services, &walk);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(limit) = limit.filter(|&l| declared.is_some_and(|n| n > l)) {
        return Err(ProxyError::BodyTooLarge { limit });
    }
    let (parts, body) = req.into_parts();
    let ServiceKind::LoadBalancer(lb) = &services[to.service as usize].kind else {
        unreachable!("resolve ends at a load balancer");
    };
    let body = read_whole(body, limit, &lb.servers[to.server].authority).await?;
    let body: Bytes = match body {
        MessageBody::Full(b) => b.unwrap_or_default(),
        _ => {
            return Err(ProxyError::BodyTooLarge {
                limit: limit.unwrap_or_default(),
            });
        }
    };
    let template = Request::from_parts(parts, MessageBody::empty());
    let client_ip = call.ctx.client_ip().as_bytes();
    // How many of the walk's mirrorings had their copies sent.
    let mut mirrored = 0;
    loop {
        let attempt = copy_of(&template, Some(body.clone()));
        let served = call
            .forward(attempt, to, &walk.set_cookies, &walk.mirrorings[mirrored..])
            .await;
        let mut status = match &served {
            Ok(resp) => resp.status().as_u16(),
            Err(e) => e.status().as_u16(),
        };
        // The fallback of the innermost failover taking the status, or,
        // when it is down, of the next one taking the 503.
        loop {
            let Some(point) = failover_for(services, &walk, status) else {
                return served;
            };
            call.outcome.origin_status = None;
            let first_mirroring = walk.failovers[point].mirrorings;
            if let Some(next) =
                resolve_fallback(services, point, client_ip, template.headers(), &mut walk)
            {
                to = next;
                mirrored = first_mirroring;
                break;
            }
            status = ProxyError::NoServer.status().as_u16();
        }
        // A failover met in the fallback keeps the body under its own limit.
        if let Some(limit) = body_limit(services, &walk).filter(|&l| body.len() as u64 > l) {
            return Err(ProxyError::BodyTooLarge { limit });
        }
    }
}

/// The smallest `maxRequestBodyBytes` of the failovers in `walk`
/// (`None`: no limit).
fn body_limit(services: &[Service], walk: &Walk) -> Option<u64> {
    walk.failovers
        .iter()
        .filter_map(|p| match &services[p.at as usize].kind {
            ServiceKind::Failover(Failover {
                errors: Some(e), ..
            }) => e.max_body,
            _ => None,
        })
        .min()
}
