//! Phase 1 of a request's journey: the request head checked (the host it
//! is for) and prepared the way Traefik's entrypoint prepares it before
//! routing: forwarding headers set (`X-Forwarded-*`, `X-Real-Ip`, after
//! dropping an untrusted client's) and the `Connection`-named headers
//! removed. Rules and middlewares see the result.
//!
//! The SNI check (a router whose TLS options differ from those the
//! connection's SNI chose answers [`Answer::Misdirected`]) runs once the
//! router is known, in `journey`, as Traefik runs it in the router's chain.
//!
//! Runs per request: header lookups and reference-counted values; the
//! host's port is cached per connection.

use http::header::{self, HeaderName, HeaderValue};
use http::uri::{PathAndQuery, Uri};
use http::{HeaderMap, Method, Request, Version};

use super::headers::{self, Forwarding};
use super::respond::Answer;
use crate::config::UnderscoreHeaders;
use crate::listener::ConnCtx;

/// What the head phase learnt, for the later phases.
#[derive(Debug)]
pub(super) struct Head {
    /// The host as the client addressed it: `Host` (HTTP/1) or
    /// `:authority` (HTTP/2), port included.
    pub(super) host: Option<HeaderValue>,
    /// The request asks for a protocol upgrade (WebSocket and others).
    pub(super) upgrade: bool,
}

impl Head {
    /// The host as routing reads it (`""` when absent or not text).
    pub(super) fn host_str(&self) -> &str {
        self.host
            .as_ref()
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
    }
}

/// Checks the head of `req` and prepares its headers for routing.
pub(super) fn check<B>(ctx: &ConnCtx, req: &mut Request<B>) -> Result<Head, Answer> {
    if req.method() == Method::OPTIONS && req.uri() == "*" {
        return Err(Answer::GlobalOptions);
    }
    // A body in another coding than `chunked` alone is 501, as from Go's
    // server; an HTTP/1.0 request's `Transfer-Encoding` is ignored, in Go
    // and in hyper.
    if req.version() == Version::HTTP_11 && headers::chunked_only(req.headers()).is_err() {
        return Err(Answer::UnsupportedTransferEncoding);
    }
    let host = request_host(req)?;
    let eh = &ctx.entrypoint.headers;
    if eh.underscores != UnderscoreHeaders::Keep {
        underscore_headers(req.headers_mut(), eh.underscores)?;
    }
    if req.uri().query().is_some_and(|q| q.contains(';')) {
        query_semicolons(req, eh.encode_query_semicolons)?;
    }
    let upgrade = headers::is_upgrade_request(req.headers());
    let host_port = host.as_ref().and_then(|h| ctx.port_of(h));
    let h = req.headers_mut();
    headers::set_forwarded_headers(
        h,
        &Forwarding {
            client_ip: ctx.client_ip(),
            trusted: ctx.trusted(),
            tls: ctx.tls,
            websocket: upgrade,
            host: host.as_ref(),
            host_port: host_port.as_ref(),
            server_name: &ctx.shared.server_name,
        },
    );
    headers::remove_connection_headers(h, upgrade, &eh.connection);
    Ok(Head { host, upgrade })
}

/// Rewrites the `;` of the query as Traefik's entrypoint does before
/// anything reads the request: `&` (Go's `AllowQuerySemicolons`, the
/// default) or, with `http.encodeQuerySemicolons`, `%3B`. Rules and the
/// upstream see the result. Rare (one allocation when a query has a `;`).
fn query_semicolons<B>(req: &mut Request<B>, encode: bool) -> Result<(), Answer> {
    let uri = req.uri();
    let query = uri.query().unwrap_or("");
    let query = if encode {
        query.replace(';', "%3B")
    } else {
        query.replace(';', "&")
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(
        PathAndQuery::try_from(format!("{}?{query}", uri.path()))
            .map_err(|_| Answer::BadRequest)?,
    );
    *req.uri_mut() = Uri::from_parts(parts).map_err(|_| Answer::BadRequest)?;
    Ok(())
}

/// Traefik's `underscoreHeadersStrategy`, applied first of all (its
/// entrypoint handler's outermost step): headers whose name has an `_`
/// are removed (`delete`) or make the request a 400 (`reject`).
fn underscore_headers(h: &mut HeaderMap, how: UnderscoreHeaders) -> Result<(), Answer> {
    if !h.keys().any(|n| n.as_str().contains('_')) {
        return Ok(());
    }
    if how == UnderscoreHeaders::Reject {
        return Err(Answer::UnderscoreHeader);
    }
    let names: Vec<HeaderName> = h
        .keys()
        .filter(|n| n.as_str().contains('_'))
        .cloned()
        .collect();
    for n in names {
        h.remove(n);
    }
    Ok(())
}

/// The host `req` is for, as Go's server decides it (RFC 9112 §3.2.2): the
/// URI's authority without user information (an absolute-form HTTP/1
/// target, HTTP/2's `:authority`), else the `Host` header. Refused with 400, as Go
/// refuses them: an HTTP/1.1 request without `Host`, two `Host` headers,
/// a `Host` with a byte no host may contain. When the authority wins over a
/// different `Host` header, the header is replaced by it, so the upstream
/// and `X-Forwarded-Host` see the host that was routed (Go's `req.Host`).
fn request_host<B>(req: &mut Request<B>) -> Result<Option<HeaderValue>, Answer> {
    let header_host = single_host_header(req.headers(), req.version())?;
    // Go's `URL.Host`: the authority without its user information.
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str().rsplit_once('@').map_or(a.as_str(), |(_, h)| h))
        .filter(|h| !h.is_empty())
        .and_then(|h| HeaderValue::from_str(h).ok());
    let Some(authority) = authority else {
        return Ok(header_host);
    };
    if header_host.as_ref().is_some_and(|h| *h != authority) {
        req.headers_mut().insert(header::HOST, authority.clone());
    }
    Ok(Some(authority))
}

/// The request's one `Host` header: 400 for two of them, for one that is
/// not a valid host (Go's `httpguts.ValidHostHeader`), and for none in an
/// HTTP/1.1 request.
fn single_host_header(
    headers: &HeaderMap,
    version: Version,
) -> Result<Option<HeaderValue>, Answer> {
    let mut all = headers.get_all(header::HOST).iter();
    let Some(host) = all.next() else {
        return if version == Version::HTTP_11 {
            Err(Answer::MissingHost)
        } else {
            Ok(None)
        };
    };
    if all.next().is_some() {
        return Err(Answer::TooManyHosts);
    }
    if !host.as_bytes().iter().all(|&b| valid_host_byte(b)) {
        return Err(Answer::MalformedHost);
    }
    Ok(Some(host.clone()))
}

/// The bytes Go accepts in a `Host` header: letters, digits, the URI's
/// unreserved and sub-delimiter characters, `%` (escapes, IPv6 zones), `:`
/// and brackets.
const fn valid_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'-'
                | b'.'
                | b':'
                | b';'
                | b'='
                | b'['
                | b']'
                | b'_'
                | b'~'
        )
}
