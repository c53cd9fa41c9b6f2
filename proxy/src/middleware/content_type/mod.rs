//! `contentType`: Go's content-type sniffing turned back on for what runs
//! inside it, as Traefik 3.7 does (its entrypoint turns Go's
//! auto-detection off; this middleware removes that for the rest of the
//! chain and the service). A response without a `Content-Type`, with a
//! status that allows a body, no `Content-Encoding` and no
//! `Transfer-Encoding` header, and a non-empty body gets the type Go's
//! `DetectContentType` gives its first bytes (`sniff`), as Go's server
//! sets it when it writes the head. `autoDetect: false` (deprecated, as
//! Traefik warns) leaves it out of the chain.
//!
//! Runs on the way out of each response it sees: a header lookup; only a
//! response to sniff has its first data frame read ahead (put back in
//! front of the rest: `MessageBody::Prefixed`). Go sniffs its first flush
//! (the first writes, up to 2 KiB); this sniffs the first frame the
//! upstream sent, which is the same for bodies that arrive at once. A
//! body `buffering` spilled to a file is not sniffed.

mod sniff;

use http::header::{CONTENT_ENCODING, CONTENT_TYPE, TRANSFER_ENCODING};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;

use super::Served;
use crate::forward::ProxyBody;
use crate::upstream::{MessageBody, ProxyError};

/// A built `contentType` (it has no options left once built).
#[derive(Debug)]
pub struct ContentType;

impl ContentType {
    /// The way out: `served` with the `Content-Type` Go would sniff.
    pub(super) async fn outbound(&self, served: Served) -> Served {
        let resp = served?;
        if !to_sniff(&resp) {
            return Ok(resp);
        }
        let (mut parts, body) = resp.into_parts();
        let (head, body) = first_bytes(body).await?;
        if let Some(head) = head.filter(|h| !h.is_empty()) {
            parts
                .headers
                .insert(CONTENT_TYPE, HeaderValue::from_static(sniff::detect(&head)));
        }
        Ok(Response::from_parts(parts, body))
    }
}

/// Whether Go's server would sniff this response's type (`chunkWriter`
/// `writeHeader`): no `Content-Type` key, a status with a body, no
/// `Content-Encoding`, no `Transfer-Encoding`.
fn to_sniff(resp: &Response<ProxyBody>) -> bool {
    let h = resp.headers();
    let s = resp.status();
    let body_allowed =
        !(s.is_informational() || s == StatusCode::NO_CONTENT || s == StatusCode::NOT_MODIFIED);
    body_allowed
        && !h.contains_key(CONTENT_TYPE)
        && h.get(CONTENT_ENCODING).is_none_or(|v| v.is_empty())
        && !h.contains_key(TRANSFER_ENCODING)
}

/// The body's first bytes (`None` when empty or not at hand), and the
/// body, whole again.
async fn first_bytes(body: ProxyBody) -> Result<(Option<bytes::Bytes>, ProxyBody), ProxyError> {
    match body {
        MessageBody::Full(Some(b)) => Ok((Some(b.clone()), MessageBody::Full(Some(b)))),
        MessageBody::Prefixed(Some(b), rest) => {
            Ok((Some(b.clone()), MessageBody::Prefixed(Some(b), rest)))
        }
        MessageBody::Stream(mut s) => {
            if hyper::body::Body::is_end_stream(&s) {
                return Ok((None, MessageBody::Stream(s)));
            }
            match s.frame().await {
                None => Ok((None, MessageBody::empty())),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => Ok((Some(data.clone()), MessageBody::Prefixed(Some(data), s))),
                    // Trailers before any data: an empty body (its
                    // trailers are not kept).
                    Err(_) => Ok((None, MessageBody::empty())),
                },
                Some(Err(e)) => Err(ProxyError::Upstream {
                    addr: String::new(),
                    source: e,
                    request_sent: true,
                }),
            }
        }
        other => Ok((None, other)),
    }
}
