//! `compress` at request time, as Traefik 3.7's `pkg/middlewares/compress`
//! does it: the encoding is chosen from the request (`negotiate`), and
//! the response is compressed with it when it can be: it has a body (not
//! a `HEAD`, 1xx, 204 or 304), is not a range (206, `Content-Range`), is
//! not encoded already (`Content-Encoding`: never twice), its type is not
//! excluded (`application/grpc` always is) or is included (by
//! `type/subtype`: Traefik drops the lists' parameters), and its
//! `Content-Length`, when it has one, is at least `minResponseBodyBytes`.
//! A compressed response loses `Content-Length` and `Accept-Ranges` and
//! gets `Content-Encoding`; every response the middleware chose an
//! encoding for gets `Vary: Accept-Encoding`.
//!
//! A response without `Content-Length` (a stream) is compressed whatever
//! its size, as Traefik's are: its proxy flushes a stream at each write,
//! which starts compression before the minimum is known. A stream is
//! compressed as it arrives ([`Compressed`]); a body the proxy holds whole
//! is compressed at once and keeps an exact length.
//!
//! Per request through `compress`: the `Accept-Encoding` scan and a
//! header check, no allocation for a response left as it is; a compressed
//! one allocates its encoder (and its output chunks).

mod body;
mod negotiate;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};

pub use body::Compressed;

use self::body::Encoder;
use self::negotiate::Choice;
use super::{Frame, Inbound, Served};
use crate::config::{Compress as Config, Encoding, parse_media_type};
use crate::forward::ProxyBody;
use crate::upstream::{MessageBody, RequestBody};

/// A compiled `compress`.
#[derive(Debug)]
pub struct Compress {
    c: Config,
}

/// What the way out does: add `Vary`, and compress with this encoding
/// when the response allows it.
#[derive(Debug, Clone, Copy)]
pub struct Chosen(Option<Encoding>);

impl Compress {
    pub(super) fn new(c: &Config) -> Self {
        Self { c: c.clone() }
    }

    pub(super) fn inbound(&self, req: Request<RequestBody>) -> Inbound<Frame> {
        if req.method() == Method::HEAD || self.excluded(req.headers().get(header::CONTENT_TYPE)) {
            return Inbound::Next(req, Frame::Pass);
        }
        let frame = match negotiate::choose(&self.c, req.headers()) {
            Choice::Pass => Frame::Pass,
            Choice::VaryOnly => Frame::Compress(Chosen(None)),
            Choice::Encode(e) => Frame::Compress(Chosen(Some(e))),
        };
        Inbound::Next(req, frame)
    }

    /// Whether a request's content type is excluded (its media type, even
    /// with malformed parameters, as Traefik compares it).
    fn excluded(&self, ct: Option<&HeaderValue>) -> bool {
        let Some(essence) = ct
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_media_type(v).ok())
        else {
            return false;
        };
        self.c.excluded.iter().any(|m| m.matches(essence))
    }

    pub(super) fn outbound(&self, served: Served, chosen: Chosen) -> Served {
        let mut resp = served?;
        vary(&mut resp);
        if let Some(encoding) = chosen.0
            && self.applies(&resp)
        {
            encode(&mut resp, encoding);
        }
        Ok(resp)
    }

    /// Whether `resp` is compressed (see the module's list).
    fn applies(&self, resp: &Response<ProxyBody>) -> bool {
        let s = resp.status();
        if s.is_informational()
            || s == StatusCode::NO_CONTENT
            || s == StatusCode::NOT_MODIFIED
            || s == StatusCode::PARTIAL_CONTENT
        {
            return false;
        }
        let h = resp.headers();
        if h.get(header::CONTENT_ENCODING)
            .is_some_and(|v| !v.is_empty())
            || h.contains_key(header::CONTENT_RANGE)
        {
            return false;
        }
        if let Some(ct) = h.get(header::CONTENT_TYPE) {
            let Some(essence) = ct.to_str().ok().and_then(|v| parse_media_type(v).ok()) else {
                // Traefik compresses no type it cannot parse.
                return false;
            };
            if !self.c.included.is_empty() && !self.c.included.iter().any(|m| m.matches(essence)) {
                return false;
            }
            if self.c.excluded.iter().any(|m| m.matches(essence)) {
                return false;
            }
        }
        let length = h
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if length.is_some_and(|n| n < self.c.min_size) {
            return false;
        }
        match resp.body() {
            MessageBody::Full(b) => b
                .as_ref()
                .is_some_and(|b| b.len() as u64 >= self.c.min_size),
            body => !hyper::body::Body::is_end_stream(body),
        }
    }
}

/// Adds `Vary: Accept-Encoding` unless the response varies on it already,
/// before the upstream's own values (as Traefik sets it before the
/// upstream's headers are copied).
fn vary(resp: &mut Response<ProxyBody>) {
    const VALUE: HeaderValue = HeaderValue::from_static("Accept-Encoding");
    let h = resp.headers_mut();
    let listed = h.get_all(header::VARY).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"accept-encoding"))
    });
    if listed {
        return;
    }
    if !h.contains_key(header::VARY) {
        h.insert(header::VARY, VALUE);
        return;
    }
    let theirs: Vec<HeaderValue> = h.get_all(header::VARY).iter().cloned().collect();
    h.insert(header::VARY, VALUE);
    for v in theirs {
        h.append(header::VARY, v);
    }
}

/// Compresses `resp`'s body with `encoding` and says so in its headers.
fn encode(resp: &mut Response<ProxyBody>, encoding: Encoding) {
    let mut encoder = match Encoder::new(encoding) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "compress: creating the encoder; sent as it is");
            return;
        }
    };
    let body = std::mem::replace(resp.body_mut(), MessageBody::empty());
    let encoded = match body {
        // Held whole: compressed now, its length known.
        MessageBody::Full(Some(bytes)) => {
            match encoder.write(&bytes).and_then(|()| encoder.finish()) {
                Ok(out) => MessageBody::full(out),
                Err(e) => {
                    tracing::error!(error = %e, "compress: encoding the body; sent as it is");
                    *resp.body_mut() = MessageBody::Full(Some(bytes));
                    return;
                }
            }
        }
        stream => MessageBody::Encoded(Box::new(Compressed::new(stream, encoder))),
    };
    *resp.body_mut() = encoded;
    let h = resp.headers_mut();
    h.remove(header::CONTENT_LENGTH);
    h.remove(header::ACCEPT_RANGES);
    h.insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static(encoding.token()),
    );
}
