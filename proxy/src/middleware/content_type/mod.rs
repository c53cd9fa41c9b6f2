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
//! response to sniff has its start read ahead (put back in front of the
//! rest: `MessageBody::Prefixed`): what Go's first flush would hold, the
//! data that arrives within 100 ms of the first byte (Traefik's flush
//! interval), up to the 512 bytes that decide. A body `buffering` spilled
//! to a file is not sniffed; trailers that end a body read ahead whole
//! are not kept (a response with trailers, gRPC, has its type).

mod sniff;

use http::header::{CONTENT_ENCODING, CONTENT_TYPE, TRANSFER_ENCODING};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;

use super::Served;
use crate::forward::ProxyBody;
use crate::upstream::{MessageBody, ProxyError};

/// Traefik's reverse proxy flushes what it wrote every 100 ms
/// (`flushInterval`): Go sniffs what its first flush holds.
const FIRST_FLUSH: std::time::Duration = std::time::Duration::from_millis(100);

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
            // What arrives within Go's first flush: 512 bytes decide, and
            // Traefik's reverse proxy flushes every 100 ms.
            let mut head = bytes::BytesMut::new();
            let mut deadline = None;
            let ended = loop {
                let next = match deadline {
                    None => s.frame().await,
                    Some(at) => match tokio::time::timeout_at(at, s.frame()).await {
                        Ok(next) => next,
                        Err(_) => break false,
                    },
                };
                match next {
                    None => break true,
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => {
                            head.extend_from_slice(&data);
                            if head.len() >= sniff::SNIFF_LEN {
                                break false;
                            }
                            deadline
                                .get_or_insert_with(|| tokio::time::Instant::now() + FIRST_FLUSH);
                        }
                        // Trailers: the data before them is the body (the
                        // trailers are not kept).
                        Err(_) => break true,
                    },
                    Some(Err(e)) => {
                        return Err(ProxyError::Upstream {
                            addr: String::new(),
                            source: e,
                            request_sent: true,
                        });
                    }
                }
            };
            let head = head.freeze();
            let body = if ended {
                MessageBody::full(head.clone())
            } else {
                MessageBody::Prefixed(Some(head.clone()), s)
            };
            Ok((Some(head), body))
        }
        other => Ok((None, other)),
    }
}
