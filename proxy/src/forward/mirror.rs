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
//! its own on this worker, served by the mirror service as a request is
//! (its middlewares, and those of the services below it, run on the copy
//! alone; a mirroring there copies again, a failover fails over), its
//! answer read and dropped, and abandoned after [`MIRROR_LIMIT`]. The
//! copies are taken where the mirroring stands: its main service's
//! middlewares change the main request only. Upgrade requests are not
//! mirrored.
//!
//! Runs on the request path only for requests that passed a mirroring:
//! it allocates (the body, the copies' heads), takes no lock.

use std::fmt::Display;
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Request};
use hyper::body::Body;

use super::head::Head;
use super::record::Outcome;
use super::service::ServiceCall;
use crate::listener::ConnCtx;
use crate::snapshot::SnapshotRef;
use crate::upstream::{BodyError, MessageBody, ProxyError, RequestBody, ServiceKind, Walk};

/// A copy's exchange (answer and body) is abandoned after this: Traefik
/// waits forever, which would keep old configurations alive.
const MIRROR_LIMIT: Duration = Duration::from_secs(60);

/// Sends the copies of `req`, a request of `call`, for the mirrorings at
/// `mirrorings` (indexes into the snapshot's services); returns the
/// request for the main service (its body read whole when a copy carries
/// it). `main` names where it goes in a client body error.
pub(super) async fn copy(
    call: &ServiceCall<'_>,
    mirrorings: &[u32],
    mut req: Request<RequestBody>,
    main: &impl Display,
) -> Result<Request<RequestBody>, ProxyError> {
    let snap = call.snap;
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
            let (ctx, snap, host) = (
                Rc::clone(call.ctx),
                SnapshotRef::clone(snap),
                call.head.host.clone(),
            );
            tokio::task::spawn_local(async move {
                let sent =
                    tokio::time::timeout(MIRROR_LIMIT, send_copy(&ctx, &snap, host, mirror, copy))
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
    main: &impl Display,
) -> Result<RequestBody, ProxyError> {
    body.held(limit).await.map_err(|e| ProxyError::ClientBody {
        addr: main.to_string(),
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

/// Serves one copy by service `at` as a request of connection `ctx` for
/// `host` is served (its middlewares, its resolution), reading and
/// dropping the answer; nothing is recorded.
async fn send_copy(
    ctx: &Rc<ConnCtx>,
    snap: &SnapshotRef,
    host: Option<HeaderValue>,
    at: u32,
    req: Request<RequestBody>,
) -> Result<(), ProxyError> {
    let head = Head {
        host,
        upgrade: false,
    };
    let mut outcome = Outcome::default();
    let mut call = ServiceCall {
        ctx,
        snap,
        root: at,
        head: &head,
        outcome: &mut outcome,
    };
    let walk = Walk {
        layers: true,
        ..Walk::default()
    };
    // Boxed: a copy's call is a request's service call, which may copy
    // again.
    let mut body = Box::pin(call.enter(at, req, walk)).await?.into_body();
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if frame.is_err() {
            break;
        }
    }
    Ok(())
}
