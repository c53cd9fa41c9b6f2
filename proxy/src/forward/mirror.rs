//! `mirroring` services: copies of a request sent to the mirrors, as
//! Traefik 3.7 sends them, without ever slowing or failing the main
//! response.
//!
//! For each mirroring the request passed ([`crate::upstream::Walk`]), the
//! mirrors taking this request are picked (`percent`, counted as Traefik
//! does). With `mirrorBody` (the default) the body is read first, whole,
//! so the main service and every copy get it (as Traefik buffers it); one
//! larger than `maxBodySize` (known from `Content-Length`, or found while
//! reading) is not mirrored and reaches the main service unchanged. Without
//! `mirrorBody` the copies carry no body. Each copy is sent by a task of
//! its own on this worker, resolved through the mirror service like any
//! request (a mirror that is itself a mirroring is not mirrored again),
//! its answer read and dropped, and abandoned after [`MIRROR_LIMIT`].
//! Upgrade requests are not mirrored.
//!
//! Runs on the request path only for requests that passed a mirroring:
//! it allocates (the body, the copies' heads), takes no lock.

use std::future::poll_fn;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Request};
use hyper::body::Body;

use super::headers::{self, ForwardedFor};
use super::service::{rewrite_target, send_to};
use crate::listener::ConnCtx;
use crate::snapshot::SnapshotRef;
use crate::upstream::{
    BodyError, MessageBody, ProxyError, RequestBody, ServiceKind, UpstreamTarget, Walk, resolve,
};

/// A copy's exchange (answer and body) is abandoned after this: Traefik
/// waits forever, which would keep old configurations alive.
const MIRROR_LIMIT: Duration = Duration::from_secs(60);

/// Sends the copies of `req` for the mirrorings at `mirrorings` (indexes
/// into the snapshot's services); returns the request for the main
/// service (its body read whole when a copy carries it). `main` names the
/// server in a client body error.
pub(super) async fn copy(
    ctx: &ConnCtx,
    snap: &SnapshotRef,
    mirrorings: &[u32],
    mut req: Request<RequestBody>,
    main: &UpstreamTarget,
) -> Result<Request<RequestBody>, ProxyError> {
    let mut picked = Vec::new();
    for &at in mirrorings {
        let ServiceKind::Mirroring(m) = &snap.services[at as usize].kind else {
            continue;
        };
        picked.clear();
        m.pick_mirrors(&mut picked);
        if picked.is_empty() {
            continue;
        }
        let body = if m.mirror_body {
            let declared = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            if m.max_body.zip(declared).is_some_and(|(max, n)| n > max) {
                tracing::debug!("request body larger than maxBodySize: not mirrored");
                continue;
            }
            let (parts, body) = req.into_parts();
            let body = read_whole(body, m.max_body, main).await?;
            req = Request::from_parts(parts, body);
            match req.body() {
                MessageBody::Full(b) => Some(b.clone().unwrap_or_default()),
                _ => {
                    tracing::debug!("request body larger than maxBodySize: not mirrored");
                    continue;
                }
            }
        } else {
            None
        };
        for &mirror in &picked {
            let copy = copy_of(&req, body.clone());
            let (snap, ip, xff) = (
                SnapshotRef::clone(snap),
                ctx.client_ip().clone(),
                ctx.forwarded_for(),
            );
            tokio::task::spawn_local(async move {
                let sent =
                    tokio::time::timeout(MIRROR_LIMIT, send_copy(&snap, mirror, copy, &ip, xff))
                        .await;
                match sent {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::debug!(error = %e, "mirrored request failed"),
                    Err(_) => tracing::debug!("mirrored request abandoned after {MIRROR_LIMIT:?}"),
                }
            });
        }
    }
    Ok(req)
}

/// The body read whole, or past `limit` what was read and the rest
/// ([`RequestBody::held`]: a body held already is returned as it is); a
/// client's failure to send it is its error.
pub(super) async fn read_whole(
    body: RequestBody,
    limit: Option<u64>,
    main: &UpstreamTarget,
) -> Result<RequestBody, ProxyError> {
    body.held(limit).await.map_err(|e| ProxyError::ClientBody {
        addr: main.authority.to_string(),
        reason: e.to_string(),
        timed_out: matches!(e, BodyError::ReadTimeout(_)),
    })
}

/// A copy of `req`'s head with `body` (none: no body, and no length
/// headers saying otherwise).
pub(super) fn copy_of(req: &Request<RequestBody>, body: Option<Bytes>) -> Request<RequestBody> {
    let mut headers: HeaderMap<HeaderValue> = req.headers().clone();
    let body = match body {
        Some(b) => MessageBody::full(b),
        None => {
            headers.remove(header::CONTENT_LENGTH);
            headers.remove(header::TRANSFER_ENCODING);
            MessageBody::empty()
        }
    };
    let mut copy = Request::new(body);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = headers;
    copy
}

/// Sends one copy through service `at`, reading and dropping the answer.
async fn send_copy(
    snap: &SnapshotRef,
    at: u32,
    mut req: Request<RequestBody>,
    client_ip: &HeaderValue,
    xff: ForwardedFor,
) -> Result<(), ProxyError> {
    let services = &snap.services;
    let mut walk = Walk::default();
    let to = resolve(services, at, client_ip.as_bytes(), req.headers(), &mut walk)
        .ok_or(ProxyError::NoServer)?;
    let ServiceKind::LoadBalancer(lb) = &services[to.service as usize].kind else {
        return Err(ProxyError::NoServer);
    };
    let host = req.headers().get(header::HOST).cloned();
    let h = req.headers_mut();
    headers::remove_hop_by_hop(h, false, true);
    headers::append_forwarded_for(h, client_ip, xff);
    rewrite_target(
        &mut req,
        &lb.servers[to.server],
        lb.pass_host_header,
        host.as_ref(),
    )?;
    let mut body = send_to(lb, to.server, req).await?.into_body();
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if frame.is_err() {
            break;
        }
    }
    Ok(())
}
