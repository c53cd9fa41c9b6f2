//! The redirecting middlewares at request time, as Traefik 3.7 answers:
//! `redirectRegex` rewrites the request's URL (`scheme://host` + request
//! target) with its regex, `redirectScheme` rewrites the client's URL (the
//! scheme `X-Forwarded-Proto` says, the scheme's default port dropped) to
//! its scheme and port. A URL that changes is answered with its Location
//! (302, or 307 for a method other than GET; permanent: 301 / 308) and the
//! status text as body; a URL that does not change goes on unchanged.
//!
//! Per request: the URL is built (one string) only for these middlewares;
//! the regexes were compiled with the configuration.

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use super::path::{Step, plain, request_host};
use crate::config;
use crate::forward::ProxyBody;
use crate::listener::ConnCtx;
use crate::routing::goregex::GoRegex;
use crate::upstream::RequestBody;

/// `redirectScheme`.
#[derive(Debug)]
pub struct RedirectScheme {
    url: GoRegex,
    template: String,
    permanent: bool,
}

impl RedirectScheme {
    pub(super) fn new(c: &config::RedirectScheme) -> Self {
        Self {
            url: c.url.0.clone(),
            template: c.template.clone(),
            permanent: c.permanent,
        }
    }

    pub(super) fn apply(&self, req: Request<RequestBody>, conn: &ConnCtx) -> Step {
        let (authority, target) = host_and_target(&req);
        let (host, mut port) = match split_port(authority) {
            Some((h, p)) => (h, p),
            None => (authority, ""),
        };
        let mut scheme = if conn.tls { "https" } else { "http" };
        if let Some(proto) = req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
        {
            if proto.eq_ignore_ascii_case("http") || proto.eq_ignore_ascii_case("ws") {
                scheme = "http";
            } else if proto.eq_ignore_ascii_case("https") || proto.eq_ignore_ascii_case("wss") {
                scheme = "https";
            }
        }
        if (scheme == "http" && port == ":80") || (scheme == "https" && port == ":443") {
            port = "";
        }
        let old = format!("{scheme}://{host}{port}{target}");
        redirect(req, &self.url, &old, &self.template, self.permanent)
    }
}

/// `redirectRegex`.
#[derive(Debug)]
pub struct RedirectRegex {
    regex: GoRegex,
    replacement: String,
    permanent: bool,
}

impl RedirectRegex {
    pub(super) fn new(c: &config::RedirectRegex) -> Self {
        Self {
            regex: c.regex.0.clone(),
            replacement: c.replacement.clone(),
            permanent: c.permanent,
        }
    }

    pub(super) fn apply(&self, req: Request<RequestBody>, conn: &ConnCtx) -> Step {
        let scheme = if conn.tls { "https" } else { "http" };
        let (host, target) = host_and_target(&req);
        let old = format!("{scheme}://{host}{target}");
        if !self.regex.is_match_str(&old) {
            return Ok(req);
        }
        redirect(req, &self.regex, &old, &self.replacement, self.permanent)
    }
}

/// The host the request is for and its target (path and query).
fn host_and_target<B>(req: &Request<B>) -> (&str, &str) {
    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    (request_host(req), target)
}

/// `host:port` split as Go's `SplitHostPort` (an IPv6 host in brackets
/// keeps them); the port comes back with its `:`.
fn split_port(authority: &str) -> Option<(&str, &str)> {
    let i = authority.rfind(':')?;
    let (host, port) = authority.split_at(i);
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return None;
    }
    Some((host, port))
}

/// Answers with a redirect to what `re` and `template` make of `old`, or
/// lets the request go on when that is `old` itself.
fn redirect(
    req: Request<RequestBody>,
    re: &GoRegex,
    old: &str,
    template: &str,
    permanent: bool,
) -> Step {
    let new = re.replace_all(old, template);
    if new == old {
        return Ok(req);
    }
    let Ok(location) = HeaderValue::try_from(new) else {
        return Err(Box::new(plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error".to_owned(),
        )));
    };
    let get = req.method() == Method::GET;
    let status = match (permanent, get) {
        (false, true) => StatusCode::FOUND,
        (false, false) => StatusCode::TEMPORARY_REDIRECT,
        (true, true) => StatusCode::MOVED_PERMANENTLY,
        (true, false) => StatusCode::PERMANENT_REDIRECT,
    };
    let mut resp = Response::new(ProxyBody::full(status.canonical_reason().unwrap_or("")));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::LOCATION, location);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Err(Box::new(resp))
}
