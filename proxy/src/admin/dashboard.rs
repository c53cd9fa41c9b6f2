//! `dashboard@internal`: the dashboard's page and its two assets, written
//! by hand and embedded in the binary (`include_str!`), so nothing is
//! fetched from anywhere at run time and there is no build step.
//!
//! The page polls the API it was served beside (`../api/`, relative, so it
//! works under `api.basePath` and behind a prefix-stripping router) and
//! the proxy's own figures (`../api/proxy/live`, `../api/proxy/reloads`).
//! A content security policy keeps it to its own origin.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/style.css");

/// Nothing but this origin: the page, its script and style, its API calls.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

/// The dashboard's file at `path` (relative to the dashboard's root, `/`
/// being the page).
pub(super) fn serve(path: &str, head: bool) -> Response<Bytes> {
    let (body, content_type) = match path {
        "/" | "" | "/index.html" => (INDEX, "text/html; charset=utf-8"),
        "/app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "/style.css" => (STYLE, "text/css; charset=utf-8"),
        _ => {
            let mut resp = Response::new(Bytes::from_static(b"404 page not found\n"));
            *resp.status_mut() = StatusCode::NOT_FOUND;
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            return resp;
        }
    };
    let mut resp = Response::new(if head {
        Bytes::new()
    } else {
        Bytes::from_static(body.as_bytes())
    });
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}
