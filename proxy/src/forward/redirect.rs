//! An entrypoint redirection (`entryPoints.<n>.http.redirections.entryPoint`):
//! Traefik generates a router (`HostRegexp(`^.+$`)`, priority `MaxInt-1`
//! unless set) whose `redirectScheme` middleware sends every request to the
//! same host and URI on the target scheme and port. This is that answer.
//!
//! Runs per redirected request: one formatted `Location`, nothing else.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use super::ProxyBody;
use crate::routing::host_without_port;

/// Where a redirection router sends requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    scheme: Box<str>,
    /// `:port`, or empty when it is the scheme's default.
    port: Box<str>,
    permanent: bool,
}

impl Redirect {
    /// Redirects to `scheme` on `port`; `permanent` gives 301/308 instead
    /// of 302/307.
    pub fn new(scheme: &str, port: u16, permanent: bool) -> Redirect {
        let default = matches!((scheme, port), ("https", 443) | ("http", 80));
        Redirect {
            scheme: scheme.into(),
            port: if default {
                "".into()
            } else {
                format!(":{port}").into()
            },
            permanent,
        }
    }

    /// The redirect for `req`, addressed to `host` (the request's host).
    pub(super) fn response<B>(&self, req: &Request<B>, host: &str) -> Response<ProxyBody> {
        let get = req.method() == Method::GET;
        let status = match (self.permanent, get) {
            (true, true) => StatusCode::MOVED_PERMANENTLY,
            (true, false) => StatusCode::PERMANENT_REDIRECT,
            (false, true) => StatusCode::FOUND,
            (false, false) => StatusCode::TEMPORARY_REDIRECT,
        };
        let host = host_without_port(host);
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let uri = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let location = format!("{}://{host}{}{uri}", self.scheme, self.port);
        let mut r = Response::new(ProxyBody::full(Bytes::from_static(
            status.canonical_reason().unwrap_or("").as_bytes(),
        )));
        *r.status_mut() = status;
        if let Ok(v) = HeaderValue::from_str(&location) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_and_statuses_follow_traefik() {
        let get = Request::get("/a/b?x=1").body(()).unwrap();
        let post = Request::post("/p").body(()).unwrap();
        let r = Redirect::new("https", 443, true);
        let resp = r.response(&get, "example.com:80");
        assert_eq!(resp.status(), 301);
        assert_eq!(resp.headers()["location"], "https://example.com/a/b?x=1");
        assert_eq!(r.response(&post, "example.com").status(), 308);
        let t = Redirect::new("https", 8443, false);
        let resp = t.response(&get, "[::1]:8080");
        assert_eq!(resp.status(), 302);
        assert_eq!(resp.headers()["location"], "https://[::1]:8443/a/b?x=1");
        assert_eq!(t.response(&post, "h").status(), 307);
    }
}
