//! `headers` at request time, in Traefik 3.7's order: the security part
//! first (the allowed-hosts check, answering 500 "Bad Host"; whether the
//! request is HTTPS), then the CORS preflight (answered here, 200 with
//! the CORS headers) and the custom request headers; on the way out the
//! custom response headers and CORS headers, then the security headers
//! (set last, so they win). Answers of the proxy (a 502) get them too, as
//! in Traefik, whose response modifier sees every response.
//!
//! One difference: Traefik reads an empty `X-Forwarded-For` in
//! `customRequestHeaders` as "send none" (Go's nil header value); here
//! the client's one is removed and the proxy's own is still added.
//!
//! Per request: header names and values were built with the configuration
//! and are cloned (reference counts, no copy); the way out keeps the
//! request's `Origin` and whether it was HTTPS.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use super::path::{plain, request_host};
use super::{Frame, Inbound, Served};
use crate::config;
use crate::forward::{Answer, ProxyBody};
use crate::listener::ConnCtx;
use crate::upstream::RequestBody;

/// A compiled `headers` middleware (the validated configuration is its
/// state: every name and value is parsed).
#[derive(Debug)]
pub struct Headers(config::Headers);

/// What the way out needs of the request.
#[derive(Debug)]
pub struct Seen {
    origin: Option<HeaderValue>,
    ssl: bool,
}

impl Headers {
    pub(super) fn new(c: &config::Headers) -> Self {
        Self(c.clone())
    }

    pub(super) fn inbound(&self, mut req: Request<RequestBody>, conn: &ConnCtx) -> Inbound<Frame> {
        let c = &self.0;
        let mut ssl = false;
        if let Some(s) = &c.secure {
            if !s.is_development && !s.allowed_hosts.is_empty() {
                let host = s
                    .hosts_proxy_headers
                    .iter()
                    .filter_map(|h| req.headers().get(h))
                    .filter_map(|v| v.to_str().ok())
                    .find(|v| !v.is_empty())
                    .unwrap_or_else(|| request_host(&req));
                if !s.allowed_hosts.iter().any(|a| a.eq_ignore_ascii_case(host)) {
                    return Inbound::Answer(plain(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Bad Host".to_owned(),
                    ));
                }
            }
            ssl = conn.tls
                || req.uri().scheme_str() == Some("https")
                || s.ssl_proxy_headers.iter().any(|(k, v)| {
                    req.headers()
                        .get(k)
                        .map(HeaderValue::as_bytes)
                        .unwrap_or(b"")
                        == v.as_bytes()
                });
        }
        if c.custom_or_cors
            && let Some(cors) = &c.cors
            && let Some(resp) = preflight(cors, &req)
        {
            let mut resp = resp;
            self.secure_headers(resp.headers_mut(), ssl);
            return Inbound::Answer(resp);
        }
        if c.custom_or_cors {
            set_or_remove(req.headers_mut(), &c.request);
        }
        let origin = req.headers().get(header::ORIGIN).cloned();
        Inbound::Next(req, Frame::Headers(Seen { origin, ssl }))
    }

    pub(super) fn outbound(&self, served: Served, seen: Seen) -> Served {
        let c = &self.0;
        let mut resp = match served {
            Ok(resp) => resp,
            Err(e) => Answer::from(&e).response(),
        };
        let h = resp.headers_mut();
        if c.custom_or_cors {
            set_or_remove(h, &c.response);
            if let Some(cors) = &c.cors {
                cors_response(cors, h, seen.origin.as_ref());
            }
        }
        self.secure_headers(h, seen.ssl);
        Ok(resp)
    }

    /// The security headers a response gets (set, replacing any).
    fn secure_headers(&self, h: &mut HeaderMap, ssl: bool) {
        let Some(s) = &self.0.secure else {
            return;
        };
        if !s.is_development {
            if let Some(sts) = &s.sts
                && (ssl || s.force_sts)
            {
                h.insert(header::STRICT_TRANSPORT_SECURITY, sts.clone());
            }
            if let Some(pk) = &s.public_key
                && ssl
            {
                h.insert(HeaderName::from_static("public-key-pins"), pk.clone());
            }
        }
        for (name, value) in &s.fixed {
            h.insert(name.clone(), value.clone());
        }
    }
}

/// Sets each header of `custom` with a value, removes each without.
fn set_or_remove(h: &mut HeaderMap, custom: &[(HeaderName, Option<HeaderValue>)]) {
    for (name, value) in custom {
        match value {
            Some(v) => {
                h.insert(name.clone(), v.clone());
            }
            None => {
                h.remove(name);
            }
        }
    }
}

/// The allowed origin to answer `origin` with, if any.
fn match_origin(cors: &config::Cors, origin: &HeaderValue) -> Option<HeaderValue> {
    let text = origin.to_str().unwrap_or("");
    for item in &cors.origins {
        if item == text {
            return Some(origin.clone());
        }
        if item == "*" {
            // A wildcard cannot go with credentials: the origin is echoed.
            return Some(if cors.allow_credentials {
                origin.clone()
            } else {
                HeaderValue::from_static("*")
            });
        }
    }
    cors.origin_regexes
        .iter()
        .any(|re| re.0.is_match_str(text))
        .then(|| origin.clone())
}

/// The answer to a CORS preflight (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`), `None` for any other request.
fn preflight(cors: &config::Cors, req: &Request<RequestBody>) -> Option<Response<ProxyBody>> {
    let method = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .filter(|v| !v.is_empty())?;
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .filter(|v| !v.is_empty())?;
    if req.method() != Method::OPTIONS {
        return None;
    }
    let mut resp = Response::new(ProxyBody::empty());
    let h = resp.headers_mut();
    if cors.allow_credentials {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    if cors.allow_headers_echo {
        if let Some(asked) = req
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .filter(|v| !v.is_empty())
        {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        }
    } else if let Some(v) = &cors.allow_headers {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
    }
    if cors.allow_methods_echo {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, method.clone());
    } else if let Some(v) = &cors.allow_methods {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v.clone());
    }
    if let Some(o) = match_origin(cors, origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
    }
    if let Some(v) = &cors.max_age {
        h.insert(header::ACCESS_CONTROL_MAX_AGE, v.clone());
    }
    if let Some(v) = &cors.expose_headers {
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v.clone());
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    Some(resp)
}

/// The CORS headers of a response to a simple (not preflight) request.
fn cors_response(cors: &config::Cors, h: &mut HeaderMap, origin: Option<&HeaderValue>) {
    let origin = origin.cloned().unwrap_or(HeaderValue::from_static(""));
    if let Some(o) = match_origin(cors, &origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
    }
    if cors.allow_credentials {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    if let Some(v) = &cors.expose_headers {
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v.clone());
    }
    if !cors.add_vary {
        return;
    }
    let vary = match h.get(header::VARY) {
        Some(v) if v == "Origin" => return,
        Some(v) if !v.is_empty() => {
            let mut s = v.as_bytes().to_vec();
            s.extend_from_slice(b",Origin");
            HeaderValue::from_bytes(&s).unwrap_or(HeaderValue::from_static("Origin"))
        }
        _ => HeaderValue::from_static("Origin"),
    };
    h.insert(header::VARY, vary);
}
