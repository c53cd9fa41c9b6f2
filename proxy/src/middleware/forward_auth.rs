//! `forwardAuth` at request time, as Traefik 3.7 does it: the request's
//! headers (hop-by-hop ones removed, `authRequestHeaders` only when set)
//! go to the auth server with the `X-Forwarded-*` it expects, by `GET`
//! (or the request's method with `preserveRequestMethod`), with the body
//! when `forwardBody`; a 2xx lets the request on with `authResponseHeaders`
//! (and those `authResponseHeadersRegex` matches) copied from the answer,
//! and the auth server's cookies named in `addAuthCookiesToResponse` put
//! on the response; anything else is the client's answer (status, headers,
//! body, `Location` made absolute against the auth address unless
//! `preserveLocationHeader`), a 401 becomes a 302 to `authSigninURL` when
//! set. The auth server unreachable or too slow (30 s, Go's client
//! timeout) is a 500; a body over `maxBodySize` / `maxResponseBodySize` a
//! 401.
//!
//! The auth server (`http://`, or `https://` with the middleware's `tls`:
//! verified against `ca` or the system's roots, `cert`/`key` presented) is
//! reached over the worker's pooled upstream connections (`upstream::send_upstream`), its pool key interned when the
//! configuration is compiled, so keep-alive connections are reused across
//! requests and reloads. Per request: the auth request's header map is a
//! copy of the request's (the exchange costs a network round trip anyway).

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery};
use http::{Method, Request, Response, StatusCode, Uri};
use hyper::body::Body;

use super::path::host_of;
use super::{Frame, Inbound};
use crate::config::ForwardAuth as Config;
use crate::forward::ProxyBody;
use crate::forward::headers::canonical_name;
use crate::listener::ConnCtx;
use crate::tls::UpstreamClients;
use crate::upstream::{
    PoolKeys, RequestBody, ServerIds, TransportSettings, UpstreamTarget, UpstreamTls, send_upstream,
};
use rustls::pki_types::ServerName;

/// Go's `http.Client.Timeout` in Traefik's forwardAuth.
const AUTH_TIMEOUT: Duration = Duration::from_secs(30);

/// The hop-by-hop headers Traefik removes from the auth request and the
/// auth server's refusal (`Proxy-Authorization` goes to the auth server).
const HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// The forwarding headers `trustForwardHeader: false` removes.
const FORWARDING: [&str; 11] = crate::forward::headers::X_HEADERS;

const XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
const XF_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const XF_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const XF_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const XF_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const XF_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");

/// What the compiler hands a middleware that reaches a server of its own.
#[derive(Debug, Clone, Copy)]
pub struct Build<'a> {
    /// Connection pools, interned across generations.
    pub pools: &'a PoolKeys,
    /// Server identities, interned across generations.
    pub servers: &'a ServerIds,
    /// The TLS clients built for the configuration (a `forwardAuth` to an
    /// `https://` address has its own, by middleware name).
    pub clients: &'a UpstreamClients,
    /// The snapshot's services by name (an `errors` middleware's pages
    /// come from one).
    pub services: &'a std::collections::HashMap<&'a str, u32>,
}

/// A compiled `forwardAuth`.
#[derive(Debug)]
pub struct ForwardAuth {
    c: Config,
    target: UpstreamTarget,
    /// The address's path and query, as sent.
    path: PathAndQuery,
    /// `http://host:port`, what a relative `Location` is resolved against.
    origin: String,
}

/// The auth server's cookies to put on the response (`Set-Cookie` values
/// whose names `addAuthCookiesToResponse` lists).
#[derive(Debug)]
pub struct AuthCookies(Vec<HeaderValue>);

impl ForwardAuth {
    pub(super) fn new(c: &Config, name: &str, build: Build<'_>) -> Self {
        let transport = Arc::new(TransportSettings::default());
        let given = c
            .address
            .authority()
            .cloned()
            .unwrap_or_else(|| Authority::from_static("localhost"));
        let https = c.address.scheme_str() == Some("https");
        let authority = if given.port_u16().is_some() {
            given.clone()
        } else {
            let port = if https { 443 } else { 80 };
            Authority::try_from(format!("{}:{port}", given.as_str()))
                .unwrap_or_else(|_| given.clone())
        };
        // An `https://` middleware without a client was disabled when its
        // TLS failed to build; the default client is never used then.
        let tls = https.then(|| {
            let client = build
                .clients
                .by_middleware
                .get(name)
                .unwrap_or(&build.clients.default);
            let host = given.host().trim_start_matches('[').trim_end_matches(']');
            ServerName::try_from(host.to_owned())
                .ok()
                .map(|n| UpstreamTls::new(Arc::clone(client), n))
        });
        let scheme = if https {
            format!("https|forwardAuth|{name}|{:?}", c.tls)
        } else {
            "http".to_owned()
        };
        let url: Arc<str> = Arc::from(c.address.to_string());
        let target = UpstreamTarget {
            id: build.servers.id(&format!("{name}@forwardAuth"), &url),
            key: build.pools.key(&scheme, authority.as_str(), &transport),
            socket_addr: authority.as_str().parse().ok(),
            host_header: HeaderValue::from_str(given.as_str())
                .unwrap_or_else(|_| HeaderValue::from_static("localhost")),
            authority,
            h2c: false,
            tls: tls.flatten(),
            base_path: "".into(),
            transport,
            url,
        };
        Self {
            c: c.clone(),
            path: c
                .address
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
            origin: format!(
                "{}://{}",
                if https { "https" } else { "http" },
                given.as_str()
            ),
            target,
        }
    }

    pub(super) async fn inbound(
        &self,
        req: Request<RequestBody>,
        conn: &ConnCtx,
    ) -> Inbound<Frame> {
        let c = &self.c;
        let (parts, body) = req.into_parts();
        let connect_tunnel = parts.method == Method::CONNECT && body.size_hint().exact().is_none();
        let (body, auth_body) = if c.forward_body && !connect_tunnel {
            match read_limited(body, c.max_body_size).await {
                Ok(Some(bytes)) => (RequestBody::full(bytes.clone()), RequestBody::full(bytes)),
                Ok(None) => return Inbound::Answer(status_only(StatusCode::UNAUTHORIZED)),
                Err(_) => return Inbound::Answer(status_only(StatusCode::INTERNAL_SERVER_ERROR)),
            }
        } else {
            (body, RequestBody::empty())
        };
        let mut parts = parts;
        let auth_req = self.auth_request(&parts, conn, auth_body);
        let exchange = async {
            let resp = send_upstream(&self.target, auth_req).await.ok()?;
            let (head, body) = resp.into_parts();
            let body = read_limited(body, c.max_response_body_size).await.ok()?;
            Some((head, body))
        };
        let (head, auth_body) = match tokio::time::timeout(AUTH_TIMEOUT, exchange).await {
            Ok(Some(answer)) => answer,
            _ => {
                tracing::debug!(address = %c.address, "forwardAuth: the auth server did not answer");
                return Inbound::Answer(status_only(StatusCode::INTERNAL_SERVER_ERROR));
            }
        };
        let Some(auth_body) = auth_body else {
            return Inbound::Answer(status_only(StatusCode::UNAUTHORIZED));
        };
        if let Some(signin) = &c.auth_signin_url
            && head.status == StatusCode::UNAUTHORIZED
        {
            return Inbound::Answer(redirect(signin.clone(), &parts.method));
        }
        if !head.status.is_success() {
            return Inbound::Answer(self.refusal(head, auth_body));
        }
        copy_auth_headers(c, &head.headers, &mut parts.headers);
        let frame = self.cookies(&head.headers);
        Inbound::Next(Request::from_parts(parts, body), frame)
    }

    /// The request to the auth server.
    fn auth_request(
        &self,
        parts: &http::request::Parts,
        conn: &ConnCtx,
        body: RequestBody,
    ) -> Request<RequestBody> {
        let c = &self.c;
        let method = if c.preserve_request_method {
            parts.method.clone()
        } else {
            Method::GET
        };
        let mut h = parts.headers.clone();
        for name in &HOP {
            h.remove(name);
        }
        // Go sends the length of the body it has (none without forwardBody).
        h.remove(header::CONTENT_LENGTH);
        h.remove(header::HOST);
        if c.trust_forward_header == Some(false) {
            for name in FORWARDING {
                h.remove(name);
            }
        }
        if !c.auth_request_headers.is_empty() {
            let mut kept = HeaderMap::new();
            for name in &c.auth_request_headers {
                for v in h.get_all(name) {
                    kept.append(name.clone(), v.clone());
                }
            }
            h = kept;
        }
        let host = host_of(&parts.uri, &parts.headers);
        let client_ip = HeaderValue::from_str(&conn.peer.ip().to_string()).ok();
        let proto = HeaderValue::from_static(if conn.tls { "https" } else { "http" });
        let uri = parts
            .uri
            .path_and_query()
            .map_or("/", PathAndQuery::as_str)
            .to_owned();
        let set = |h: &mut HeaderMap, name: HeaderName, v: Option<HeaderValue>, always: bool| {
            if let Some(v) = v
                && (always || !h.contains_key(&name))
            {
                h.insert(name, v);
            }
        };
        let value = |s: &str| HeaderValue::from_str(s).ok();
        match c.trust_forward_header {
            None => {
                // Traefik's legacy behaviour: always overwritten.
                set(&mut h, XFF, client_ip, true);
                set(&mut h, XF_PROTO, Some(proto), true);
                set(&mut h, XF_METHOD, value(parts.method.as_str()), true);
                set(&mut h, XF_HOST, value(host), true);
                set(&mut h, XF_URI, value(&uri), true);
            }
            Some(_) => {
                let prior: Vec<&str> = h
                    .get_all(&XFF)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                let xff = match (prior.is_empty(), &client_ip) {
                    (_, None) => None,
                    (true, Some(ip)) => Some(ip.clone()),
                    (false, Some(ip)) => value(&format!(
                        "{}, {}",
                        prior.join(", "),
                        ip.to_str().unwrap_or("")
                    )),
                };
                set(&mut h, XFF, xff, true);
                set(&mut h, XF_METHOD, value(parts.method.as_str()), false);
                set(&mut h, XF_PROTO, Some(proto), false);
                let port = forwarded_port(host, &h, conn.tls);
                set(&mut h, XF_PORT, value(port), false);
                set(&mut h, XF_HOST, value(host), false);
                set(&mut h, XF_URI, value(&uri), false);
            }
        }
        h.insert(header::HOST, self.target.host_header.clone());
        let mut req = Request::new(body);
        *req.method_mut() = method;
        *req.uri_mut() = Uri::from(self.path.clone());
        *req.headers_mut() = h;
        req
    }

    /// The auth server's refusal as the client's answer.
    fn refusal(&self, head: http::response::Parts, body: Bytes) -> Response<ProxyBody> {
        let mut resp = Response::new(ProxyBody::full(body));
        *resp.status_mut() = head.status;
        let mut h = head.headers;
        for name in &HOP {
            h.remove(name);
        }
        if !self.c.preserve_location_header
            && let Some(loc) = h.get(header::LOCATION).and_then(|v| v.to_str().ok())
            && let Ok(abs) = HeaderValue::from_str(&resolve(&self.origin, self.path.path(), loc))
        {
            h.insert(header::LOCATION, abs);
        }
        *resp.headers_mut() = h;
        resp
    }

    /// The frame for the way out: the auth cookies to add, if any.
    fn cookies(&self, auth: &HeaderMap) -> Frame {
        let names = &self.c.add_auth_cookies;
        if names.is_empty() {
            return Frame::Pass;
        }
        let listed: Vec<HeaderValue> = auth
            .get_all(header::SET_COOKIE)
            .iter()
            .filter(|v| cookie_name(v).is_some_and(|n| names.iter().any(|l| l == n)))
            .cloned()
            .collect();
        if auth.get(header::SET_COOKIE).is_none() {
            return Frame::Pass;
        }
        Frame::AuthCookies(AuthCookies(listed))
    }

    /// The way out: the backend's cookies of the listed names replaced by
    /// the auth server's.
    pub(super) fn outbound(&self, resp: &mut Response<ProxyBody>, cookies: AuthCookies) {
        let names = &self.c.add_auth_cookies;
        let h = resp.headers_mut();
        let kept: Vec<HeaderValue> = h
            .get_all(header::SET_COOKIE)
            .iter()
            .filter(|v| !cookie_name(v).is_some_and(|n| names.iter().any(|l| l == n)))
            .cloned()
            .collect();
        h.remove(header::SET_COOKIE);
        for v in kept.into_iter().chain(cookies.0) {
            h.append(header::SET_COOKIE, v);
        }
    }
}

/// Copies `authResponseHeaders` and the headers the regex matches from the
/// auth answer onto the request, replacing what it had.
fn copy_auth_headers(c: &Config, auth: &HeaderMap, req: &mut HeaderMap) {
    for name in &c.auth_response_headers {
        req.remove(name);
        for v in auth.get_all(name) {
            req.append(name.clone(), v.clone());
        }
    }
    if let Some(re) = &c.auth_response_headers_regex {
        let matches = |n: &HeaderName| re.0.is_match_str(&canonical_name(n.as_str()));
        let drop: Vec<HeaderName> = req.keys().filter(|n| matches(n)).cloned().collect();
        for n in drop {
            req.remove(n);
        }
        for (n, v) in auth {
            if matches(n) {
                req.append(n.clone(), v.clone());
            }
        }
    }
}

/// The name of the cookie a `Set-Cookie` value sets.
fn cookie_name(v: &HeaderValue) -> Option<&str> {
    let s = v.to_str().ok()?;
    let (name, _) = s.split_once('=')?;
    Some(name.trim())
}

/// `X-Forwarded-Port` as Traefik derives it.
fn forwarded_port<'a>(host: &'a str, h: &HeaderMap, tls: bool) -> &'a str {
    if let Some((_, port)) = host.rsplit_once(':')
        && !port.is_empty()
        && !port.contains(']')
    {
        return port;
    }
    let proto = h.get(&XF_PROTO).and_then(|v| v.to_str().ok());
    if matches!(proto, Some("https" | "wss")) || tls {
        "443"
    } else {
        "80"
    }
}

/// `location` resolved against the auth address (`origin` + `base`), as
/// Go's `Response.Location` does.
fn resolve(origin: &str, base: &str, location: &str) -> String {
    let has_scheme = location.split_once(':').is_some_and(|(s, _)| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
    });
    if has_scheme {
        location.to_owned()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("http://{rest}")
    } else if location.starts_with('/') {
        format!("{origin}{location}")
    } else {
        let dir = base.rsplit_once('/').map_or("", |(d, _)| d);
        format!("{origin}{dir}/{location}")
    }
}

/// Reads `body` whole; `Ok(None)` when it is over `limit` bytes.
async fn read_limited<B>(mut body: B, limit: Option<u64>) -> Result<Option<Bytes>, B::Error>
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut buf = BytesMut::new();
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame?.into_data() {
            if limit.is_some_and(|l| (buf.len() + data.len()) as u64 > l) {
                return Ok(None);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Some(buf.freeze()))
}

/// An answer with a status and nothing else (Go's bare `WriteHeader`).
fn status_only(status: StatusCode) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::empty());
    *resp.status_mut() = status;
    resp
}

/// Go's `http.Redirect` with 302.
fn redirect(to: HeaderValue, method: &Method) -> Response<ProxyBody> {
    let body = if *method == Method::GET || *method == Method::HEAD {
        let href = to.to_str().unwrap_or("");
        format!("<a href=\"{href}\">Found</a>.\n\n")
    } else {
        String::new()
    };
    let mut resp = Response::new(ProxyBody::full(body));
    *resp.status_mut() = StatusCode::FOUND;
    let h = resp.headers_mut();
    h.insert(header::LOCATION, to);
    if *method == Method::GET || *method == Method::HEAD {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_auth_address() {
        let o = "http://auth:9000";
        assert_eq!(resolve(o, "/check", "/login"), "http://auth:9000/login");
        assert_eq!(resolve(o, "/a/check", "login"), "http://auth:9000/a/login");
        assert_eq!(
            resolve(o, "/check", "https://sso.test/x"),
            "https://sso.test/x"
        );
        assert_eq!(resolve(o, "/check", "//sso.test/x"), "http://sso.test/x");
    }

    #[test]
    fn header_names_are_canonical_as_go_writes_them() {
        assert_eq!(canonical_name("x-auth-user"), "X-Auth-User");
        assert_eq!(canonical_name("www-authenticate"), "Www-Authenticate");
    }
}
