//! Every answer the proxy writes itself instead of the upstream's: what a
//! bad request (400, 421, 431), a request no router takes (404) and a
//! failed exchange (502, 503, 504 from [`ProxyError::status`]) look like,
//! with the bodies Traefik sends.
//!
//! Runs per request on those paths only: a static body and one header,
//! no formatting. (Requests hyper itself refuses before they reach us, a
//! malformed or oversized HTTP/1 head, get hyper's own 400 or 431.)

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use super::ProxyBody;
use crate::upstream::ProxyError;

/// Why the proxy answers a request itself, before or instead of an
/// upstream exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP/1.1 request without `Host` (400, Go's body).
    MissingHost,
    /// A request with more than one `Host` header (400, Go's body).
    TooManyHosts,
    /// A `Host` header with a byte no host may contain (400, Go's body).
    MalformedHost,
    /// A request that cannot be routed or forwarded as sent (400).
    BadRequest,
    /// No router matched (404, Go's `http.NotFound` body).
    NotFound,
    /// The request's host is served with other TLS settings than the
    /// connection's SNI chose (421, as Traefik's SNI check answers).
    Misdirected,
    /// The request's headers are larger than the entrypoint allows (431).
    HeadersTooLarge,
    /// A header name with an `_`, under `underscoreHeadersStrategy:
    /// reject` (400, Go's `http.Error` body).
    UnderscoreHeader,
    /// `OPTIONS *`: answered by the server itself, 200 with an empty body,
    /// as Go's server answers it before any handler (Traefik routes
    /// nothing for it).
    GlobalOptions,
    /// A `Transfer-Encoding` other than one `chunked` (501 and the
    /// connection closed, Go's answer: a body whose coding the proxy cannot
    /// undo must not reach the backend as if plain).
    UnsupportedTransferEncoding,
    /// The exchange failed: the status and body follow the error.
    Failed(StatusCode),
}

impl Answer {
    /// The answer to a failed exchange.
    pub fn failed(e: &ProxyError) -> Self {
        match e.status() {
            StatusCode::BAD_REQUEST => Answer::BadRequest,
            status => Answer::Failed(status),
        }
    }

    /// The status sent.
    pub fn status(self) -> StatusCode {
        match self {
            Answer::MissingHost
            | Answer::TooManyHosts
            | Answer::MalformedHost
            | Answer::BadRequest
            | Answer::UnderscoreHeader => StatusCode::BAD_REQUEST,
            Answer::NotFound => StatusCode::NOT_FOUND,
            Answer::Misdirected => StatusCode::MISDIRECTED_REQUEST,
            Answer::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Answer::GlobalOptions => StatusCode::OK,
            Answer::UnsupportedTransferEncoding => StatusCode::NOT_IMPLEMENTED,
            Answer::Failed(status) => status,
        }
    }

    fn body(self) -> &'static str {
        match self {
            Answer::MissingHost => "400 Bad Request: missing required Host header",
            Answer::TooManyHosts => "400 Bad Request: too many Host headers",
            Answer::MalformedHost => "400 Bad Request: malformed Host header",
            Answer::BadRequest => "400 Bad Request",
            Answer::UnderscoreHeader => "Bad Request\n",
            Answer::NotFound => "404 page not found\n",
            Answer::Misdirected => "Misdirected Request\n",
            Answer::HeadersTooLarge => "431 Request Header Fields Too Large",
            Answer::GlobalOptions => "",
            Answer::UnsupportedTransferEncoding => "Unsupported transfer encoding",
            // Traefik's proxy error handler: the status text, no newline.
            Answer::Failed(StatusCode::GATEWAY_TIMEOUT) => "Gateway Timeout",
            Answer::Failed(StatusCode::SERVICE_UNAVAILABLE) => "Service Unavailable",
            Answer::Failed(StatusCode::REQUEST_TIMEOUT) => "Request Timeout",
            // Traefik's failover, with `http.Error`'s newline.
            Answer::Failed(StatusCode::PAYLOAD_TOO_LARGE) => "Request body too large\n",
            Answer::Failed(_) => "Bad Gateway",
        }
    }

    /// The response: the status, a plain-text body and its content type.
    pub fn response(self) -> Response<ProxyBody> {
        let mut r = Response::new(ProxyBody::full(Bytes::from_static(self.body().as_bytes())));
        *r.status_mut() = self.status();
        if self == Answer::GlobalOptions {
            return r;
        }
        if self == Answer::UnsupportedTransferEncoding {
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if matches!(
            self,
            Answer::UnderscoreHeader
                | Answer::NotFound
                | Answer::Misdirected
                | Answer::Failed(StatusCode::PAYLOAD_TOO_LARGE)
        ) {
            // Go's `http.Error` adds it: Traefik answers these through it
            // (`http.NotFound`, the SNI check, failover's body limit).
            r.headers_mut().insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
        }
        r
    }
}

impl From<&ProxyError> for Answer {
    fn from(e: &ProxyError) -> Self {
        Answer::failed(e)
    }
}

#[cfg(test)]
mod tests {
    use hyper::body::Body as _;

    use super::*;

    #[test]
    fn each_answer_has_its_status_and_body() {
        let cases = [
            (Answer::MissingHost, 400),
            (Answer::BadRequest, 400),
            (Answer::UnderscoreHeader, 400),
            (Answer::NotFound, 404),
            (Answer::Misdirected, 421),
            (Answer::HeadersTooLarge, 431),
            (Answer::UnsupportedTransferEncoding, 501),
            (Answer::failed(&ProxyError::NoServer), 503),
        ];
        for (answer, status) in cases {
            let r = answer.response();
            assert_eq!(r.status().as_u16(), status, "{answer:?}");
            assert_eq!(
                r.headers()[header::CONTENT_TYPE],
                "text/plain; charset=utf-8"
            );
            assert_eq!(
                r.body().size_hint().exact(),
                Some(answer.body().len() as u64)
            );
        }
        let timeout = ProxyError::ConnectTimeout {
            addr: "b:80".into(),
            timeout: std::time::Duration::from_secs(1),
        };
        assert_eq!(Answer::from(&timeout).body(), "Gateway Timeout");
        let bad = ProxyError::InvalidTarget {
            addr: "b:80".into(),
            reason: "invalid path",
        };
        assert_eq!(Answer::from(&bad), Answer::BadRequest);
    }
}
