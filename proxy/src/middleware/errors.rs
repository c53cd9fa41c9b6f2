//! `errors` at request time, as Traefik 3.7's `customerrors` does it: an
//! answer whose status is in `status` (a response's, or the 502/503/504
//! of an upstream failure) is replaced by the page the error service
//! answers to `GET <query>` — `{status}` the status answered (after
//! `statusRewrites`), `{originalStatus}` the caught one, `{url}` the
//! request's URL, query-escaped — sent with the request's headers (or
//! only `errorRequestHeaders`) and `Host`. The page keeps its headers and
//! body and takes the status; an error service that fails answers the
//! status with its text. 1xx answers are never caught.
//!
//! The page is fetched over the worker's pooled upstream connections
//! (`forward::fetch`), through the service's balancer and health. Per
//! request through `errors`: the request's URL and headers are kept for
//! the way out (a copy of the header map); the caught answer is dropped
//! unread.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode, Uri};

use super::{Frame, Inbound, Outbound, Served};
use crate::config::ErrorPage as Config;
use crate::forward::{ProxyBody, fetch};
use crate::listener::ConnCtx;
use crate::upstream::{MessageBody, RequestBody};

/// A compiled `errors`.
#[derive(Debug)]
pub struct Errors {
    c: Config,
    /// The error service in the snapshot (`None`: it was not built, and
    /// answers pass unchanged, as Traefik's without a backend handler).
    service: Option<u32>,
}

/// What the page request needs of the request.
#[derive(Debug)]
pub struct Asked {
    uri: Uri,
    headers: HeaderMap,
    tls: bool,
}

impl Errors {
    pub(super) fn new(c: &Config, service: Option<u32>) -> Self {
        Self {
            c: c.clone(),
            service,
        }
    }

    pub(super) fn inbound(&self, req: Request<RequestBody>, conn: &ConnCtx) -> Inbound<Frame> {
        let headers = match &self.c.request_headers {
            None => req.headers().clone(),
            Some(names) => {
                let mut h = HeaderMap::new();
                for name in names {
                    for v in req.headers().get_all(name) {
                        h.append(name.clone(), v.clone());
                    }
                }
                if let Some(host) = req.headers().get(header::HOST) {
                    h.insert(header::HOST, host.clone());
                }
                h
            }
        };
        let asked = Asked {
            uri: req.uri().clone(),
            headers,
            tls: conn.tls,
        };
        Inbound::Next(req, Frame::Errors(Box::new(asked)))
    }

    pub(super) async fn outbound(
        &self,
        served: Served,
        asked: Box<Asked>,
        conn: &ConnCtx,
        services: &[crate::upstream::Service],
    ) -> Outbound<Frame> {
        let caught = match &served {
            Ok(r) => r.status(),
            Err(e) => e.status(),
        };
        let Some(service) = self.service else {
            return Outbound::Done(served);
        };
        if caught.as_u16() < 200 || !self.c.status.contains(caught.as_u16()) {
            return Outbound::Done(served);
        }
        drop(served);
        let original = caught.as_u16();
        let code = self
            .c
            .rewrites
            .iter()
            .find(|((lo, hi), _)| (*lo..=*hi).contains(&original))
            .map_or(original, |&(_, to)| to);
        let status = StatusCode::from_u16(code).unwrap_or(caught);
        let Some(req) = self.page_request(&asked, original, code) else {
            return Outbound::Done(Ok(status_text(status)));
        };
        let page = match fetch(conn, services, service, req).await {
            Ok(mut resp) => {
                *resp.status_mut() = status;
                resp
            }
            Err(e) => {
                tracing::debug!(error = %e, "errors: the error page could not be fetched");
                let mut resp = status_text(e.status());
                *resp.status_mut() = status;
                resp
            }
        };
        Outbound::Done(Ok(page))
    }

    /// `GET <query>` with the request's headers; `None` when the query
    /// makes no valid URI.
    fn page_request(
        &self,
        asked: &Asked,
        original: u16,
        code: u16,
    ) -> Option<Request<RequestBody>> {
        let path = if self.c.query.is_empty() {
            "/".to_owned()
        } else {
            format!("/{}", self.c.query.trim_start_matches('/'))
                .replace("{status}", &code.to_string())
                .replace("{originalStatus}", &original.to_string())
                .replace("{url}", &query_escape(&original_url(asked)))
        };
        let uri: Uri = path.parse().ok()?;
        let mut req = Request::new(MessageBody::empty());
        *req.uri_mut() = uri;
        *req.headers_mut() = asked.headers.clone();
        let h = req.headers_mut();
        h.remove(header::CONTENT_LENGTH);
        h.remove(header::TRANSFER_ENCODING);
        if let Some(a) = asked.uri.authority()
            && !h.contains_key(header::HOST)
            && let Ok(v) = HeaderValue::from_str(a.as_str())
        {
            h.insert(header::HOST, v);
        }
        Some(req)
    }
}

/// The request's URL as Go's `url.URL.String` writes Traefik's copy of it.
fn original_url(asked: &Asked) -> String {
    let scheme = if asked.tls { "https" } else { "http" };
    let host = asked
        .uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            asked
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let pq = asked.uri.path_and_query().map_or("/", |p| p.as_str());
    format!("{scheme}://{host}{pq}")
}

/// Go's `url.QueryEscape`: unreserved bytes kept, space as `+`, the rest
/// `%XX`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `status` with its reason as the body, as Go's `http.Error` writes it.
fn status_text(status: StatusCode) -> Response<ProxyBody> {
    let text = status.canonical_reason().unwrap_or("");
    let mut resp = Response::new(MessageBody::full(Bytes::from(format!("{text}\n"))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_query_escaped_as_go_does() {
        assert_eq!(
            query_escape("http://a.test/p q?x=1&y=é"),
            "http%3A%2F%2Fa.test%2Fp+q%3Fx%3D1%26y%3D%C3%A9"
        );
    }
}
