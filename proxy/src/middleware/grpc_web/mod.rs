//! `grpcWeb`: gRPC-Web requests forwarded as gRPC, their answers turned
//! back into gRPC-Web, as Traefik 3.7 does (`pkg/middlewares/grpcweb`
//! wraps its handler with `grpcweb.WrapHandler` of
//! `github.com/traefik/grpc-web`, endpoints not checked, origins from
//! `allowOrigins`; its CORS is `github.com/rs/cors` 1.7).
//!
//! What the wrapper takes ([`GrpcWeb::inbound`]): a `POST` whose
//! `Content-Type` starts with `application/grpc-web`, or an `OPTIONS`
//! whose `Access-Control-Request-Headers` names `x-grpc-web`. Anything
//! else passes untouched.
//! - A preflight (`OPTIONS` with `Access-Control-Request-Method`) is
//!   answered here, 200 and no body, with `Vary` (three values) and, for
//!   an allowed origin and method (`GET`, `POST`, `HEAD`, `OPTIONS`), the
//!   `Access-Control-Allow-*` headers rs/cors writes ([`preflight`]).
//! - Any other is sent on as gRPC: `Content-Type` `application/grpc-web`
//!   (or `-text`) made `application/grpc`, `Content-Length` removed, a
//!   `-text` body base64-decoded as it streams ([`GrpcRequest`]). The
//!   service's scheme decides the protocol (`h2c` for a gRPC server), as
//!   in Traefik; nothing is added (the upstream gets `TE: trailers` when
//!   the client sent it, as Go's proxy forwards it).
//! - Its answer ([`GrpcWeb::outbound`]): `Content-Type` back to
//!   `application/grpc-web[-text]`, no `Trailer` nor `Content-Length`,
//!   `Vary: Origin` and, for an allowed origin, `Access-Control-Allow-
//!   Origin` and `-Credentials` (unless the server sent them), and
//!   `Access-Control-Expose-Headers` listing the head's names and
//!   `grpc-status, grpc-message`; the body streamed, its trailers written
//!   into it as the gRPC-Web trailer frame ([`GrpcWebResponse`]), `-text`
//!   base64-encoded frame by frame.
//!
//! Per request through `grpcWeb`: header checks; a gRPC-Web one boxes its
//! two body wrappers and builds its exposed-headers value; no lock.

mod body;

use bytes::{BufMut, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};

pub use body::{GrpcRequest, GrpcWebResponse};

use super::{Frame, Inbound, Served};
use crate::config::GrpcWeb as Config;
use crate::forward::ProxyBody;
use crate::upstream::{MessageBody, RequestBody};

const GRPC: &[u8] = b"application/grpc";
const GRPC_WEB: &[u8] = b"application/grpc-web";
const GRPC_WEB_TEXT: &[u8] = b"application/grpc-web-text";

/// rs/cors' `Access-Control-Max-Age`: the wrapper's default, 10 minutes.
const MAX_AGE: HeaderValue = HeaderValue::from_static("600");

/// A compiled `grpcWeb`.
#[derive(Debug)]
pub struct GrpcWeb {
    /// `*` is in `allowOrigins`.
    any_origin: bool,
    /// `allowOrigins`, compared byte for byte.
    origins: Box<[Box<[u8]>]>,
}

/// What the way out needs: the format the client asked for, and the
/// origin to allow (when it is).
#[derive(Debug)]
pub struct Reply {
    text: bool,
    allowed: Option<HeaderValue>,
}

impl GrpcWeb {
    pub(super) fn new(c: &Config) -> Self {
        Self {
            any_origin: c.allow_origins.iter().any(|o| o == "*"),
            origins: c
                .allow_origins
                .iter()
                .map(|o| o.as_bytes().into())
                .collect(),
        }
    }

    /// The wrapper's origin function.
    fn allows(&self, origin: &[u8]) -> bool {
        self.any_origin || self.origins.iter().any(|o| **o == *origin)
    }

    /// The origin rs/cors allows for a request: its `Origin` (the first),
    /// when not empty and allowed, and `method` allowed too.
    fn allowed_origin(&self, h: &HeaderMap, method: &[u8]) -> Option<HeaderValue> {
        let origin = h.get(header::ORIGIN).filter(|o| !o.is_empty())?;
        (self.allows(origin.as_bytes()) && method_allowed(method)).then(|| origin.clone())
    }

    pub(super) fn inbound(&self, req: Request<RequestBody>) -> Inbound<Frame> {
        let h = req.headers();
        let first = |name| h.get(name).map_or(&b""[..], HeaderValue::as_bytes);
        let content_type = first(header::CONTENT_TYPE);
        let cors = req.method() == Method::OPTIONS
            && contains_ignore_case(first(header::ACCESS_CONTROL_REQUEST_HEADERS), b"x-grpc-web");
        let grpc_web = req.method() == Method::POST && content_type.starts_with(GRPC_WEB);
        if !cors && !grpc_web {
            return Inbound::Next(req, Frame::Pass);
        }
        if req.method() == Method::OPTIONS
            && !first(header::ACCESS_CONTROL_REQUEST_METHOD).is_empty()
        {
            return Inbound::Answer(self.preflight(h));
        }
        let allowed = self.allowed_origin(h, req.method().as_str().as_bytes());
        let text = content_type.starts_with(GRPC_WEB_TEXT);
        let incoming = if text { GRPC_WEB_TEXT } else { GRPC_WEB };
        let grpc_type = replace_first(content_type, incoming, GRPC);
        let (mut parts, body) = req.into_parts();
        match HeaderValue::from_maybe_shared(grpc_type) {
            Ok(v) => {
                parts.headers.insert(header::CONTENT_TYPE, v);
            }
            Err(_) => {
                // The value came from a header: it stays a valid one.
                parts.headers.remove(header::CONTENT_TYPE);
            }
        }
        parts.headers.remove(header::CONTENT_LENGTH);
        let body = MessageBody::GrpcRequest(Box::new(GrpcRequest::new(body, text)));
        Inbound::Next(
            Request::from_parts(parts, body),
            Frame::GrpcWeb(Reply { text, allowed }),
        )
    }

    /// rs/cors' answer to a preflight (`handlePreflight`, then 200).
    fn preflight(&self, h: &HeaderMap) -> Response<ProxyBody> {
        let mut resp = Response::new(ProxyBody::empty());
        *resp.status_mut() = StatusCode::OK;
        let out = resp.headers_mut();
        for v in [
            "Origin",
            "Access-Control-Request-Method",
            "Access-Control-Request-Headers",
        ] {
            out.append(header::VARY, HeaderValue::from_static(v));
        }
        let method = h
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .map_or(&b""[..], HeaderValue::as_bytes);
        let Some(origin) = self.allowed_origin(h, method) else {
            return resp;
        };
        // Every requested header is allowed (`*`).
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if let Ok(m) = HeaderValue::from_maybe_shared(method.to_ascii_uppercase()) {
            out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, m);
        }
        let requested = h
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .map_or(&b""[..], HeaderValue::as_bytes);
        let allow = header_list(requested);
        if !allow.is_empty()
            && let Ok(v) = HeaderValue::from_maybe_shared(allow)
        {
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        out.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        out.insert(header::ACCESS_CONTROL_MAX_AGE, MAX_AGE);
        resp
    }

    /// The way out: the answer as the wrapper's response writer makes it.
    pub(super) fn outbound(served: Served, reply: Reply) -> Served {
        let resp = served?;
        let (mut parts, body) = resp.into_parts();
        let h = &mut parts.headers;
        h.remove(header::TRAILER);
        // The body changes length (the trailer frame, base64).
        h.remove(header::CONTENT_LENGTH);
        let web: &[u8] = if reply.text { GRPC_WEB_TEXT } else { GRPC_WEB };
        if h.contains_key(header::CONTENT_TYPE) {
            let types: Vec<HeaderValue> = h
                .get_all(header::CONTENT_TYPE)
                .iter()
                .filter_map(|v| {
                    HeaderValue::from_maybe_shared(replace_first(v.as_bytes(), GRPC, web)).ok()
                })
                .collect();
            h.remove(header::CONTENT_TYPE);
            for v in types {
                h.append(header::CONTENT_TYPE, v);
            }
        }
        // rs/cors set these before the server's headers were copied over
        // them.
        if !h.contains_key(header::VARY) {
            h.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        if let Some(origin) = reply.allowed {
            if !h.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            }
            if !h.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS) {
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
        }
        let exposed = exposed(h);
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, exposed.clone());
        let body =
            MessageBody::GrpcWebResponse(Box::new(GrpcWebResponse::new(body, reply.text, exposed)));
        Ok(Response::from_parts(parts, body))
    }
}

/// rs/cors' allowed methods (its defaults) and `OPTIONS`, any case.
fn method_allowed(method: &[u8]) -> bool {
    [&b"GET"[..], b"POST", b"HEAD", b"OPTIONS"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(method))
}

/// The head's names (Go's canonical form) and `grpc-status,
/// grpc-message`, as the wrapper lists them.
fn exposed(h: &HeaderMap) -> HeaderValue {
    let mut out = BytesMut::with_capacity(16 * h.keys_len() + 26);
    for name in h.keys() {
        canonical(name.as_str().as_bytes(), &mut out);
        out.put_slice(b", ");
    }
    out.put_slice(b"grpc-status, grpc-message");
    HeaderValue::from_maybe_shared(out.freeze())
        .unwrap_or(HeaderValue::from_static("grpc-status, grpc-message"))
}

/// Go's `CanonicalHeaderKey` of a (lower-case) header name, appended.
fn canonical(name: &[u8], out: &mut BytesMut) {
    let mut upper = true;
    for &b in name {
        out.put_u8(if upper { b.to_ascii_uppercase() } else { b });
        upper = b == b'-';
    }
}

/// rs/cors' `parseHeaderList` joined with `, `: names made canonical
/// (upper after `-` or `_`), split at spaces and commas, bytes other than
/// letters, digits, `-` and `_` dropped.
fn header_list(list: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(list.len() + 8);
    let mut current = Vec::with_capacity(32);
    let mut upper = true;
    for (i, &b) in list.iter().enumerate() {
        match b {
            b'a'..=b'z' if upper => current.push(b.to_ascii_uppercase()),
            b'A'..=b'Z' if !upper => current.push(b.to_ascii_lowercase()),
            b'a'..=b'z' | b'A'..=b'Z' | b'-' | b'_' | b'0'..=b'9' => current.push(b),
            _ => {}
        }
        if b == b' ' || b == b',' || i == list.len() - 1 {
            if !current.is_empty() {
                if !out.is_empty() {
                    out.extend_from_slice(b", ");
                }
                out.append(&mut current);
                upper = true;
            }
        } else {
            upper = b == b'-' || b == b'_';
        }
    }
    out
}

/// `s` with its first `from` made `to` (Go's `strings.Replace(s, from,
/// to, 1)`).
fn replace_first(s: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let Some(at) = s.windows(from.len()).position(|w| w == from) else {
        return s.to_vec();
    };
    let mut out = Vec::with_capacity(s.len() + to.len());
    out.extend_from_slice(&s[..at]);
    out.extend_from_slice(to);
    out.extend_from_slice(&s[at + from.len()..]);
    out
}

/// Whether `hay` lower-cased contains `needle` (lower-case).
fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lists_read_as_rs_cors_does() {
        assert_eq!(
            header_list(b"x-grpc-web, content-type,X-USER-agent"),
            b"X-Grpc-Web, Content-Type, X-User-Agent"
        );
        assert_eq!(header_list(b"a_b c.d,,"), b"A_B, Cd");
        assert!(header_list(b" , ").is_empty());
    }

    #[test]
    fn go_string_helpers() {
        assert_eq!(
            replace_first(b"application/grpc-web-text+proto", GRPC_WEB_TEXT, GRPC),
            b"application/grpc+proto"
        );
        assert_eq!(
            replace_first(b"application/grpc+proto", GRPC, GRPC_WEB),
            b"application/grpc-web+proto"
        );
        assert_eq!(replace_first(b"text/plain", GRPC, GRPC_WEB), b"text/plain");
        let mut out = BytesMut::new();
        canonical(b"grpc-accept-encoding", &mut out);
        assert_eq!(&out[..], b"Grpc-Accept-Encoding");
        assert!(contains_ignore_case(
            b"Content-Type, X-Grpc-Web",
            b"x-grpc-web"
        ));
    }
}
