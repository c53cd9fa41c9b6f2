//! The label values Traefik's request metrics classify a request by: its
//! protocol (`http`, `websocket`, `sse`, `grpc`, `grpc-web`), its method
//! (bounded to the standard ones) and, for gRPC, the status code.
//!
//! Runs per request: header lookups and comparisons, no allocation.

use http::{HeaderMap, Method, header};

// === Protocol ===

/// The `protocol` label, as Traefik's metrics middleware classifies requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `http`: anything else.
    Http,
    /// `websocket`: `Connection: upgrade` and `Upgrade: websocket`.
    Websocket,
    /// `sse`: `Accept: text/event-stream`.
    Sse,
    /// `grpc-web`: `Content-Type` starting with `application/grpc-web`.
    GrpcWeb,
    /// `grpc`: `Content-Type` starting with `application/grpc`.
    Grpc,
}

impl Protocol {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Websocket => "websocket",
            Protocol::Sse => "sse",
            Protocol::GrpcWeb => "grpc-web",
            Protocol::Grpc => "grpc",
        }
    }

    /// Classifies a request by its headers, in Traefik's order (websocket,
    /// sse, grpc-web, grpc, http). Like Go's `Header.Get`, only the first
    /// value of each header is read. No allocation.
    pub fn detect(headers: &HeaderMap) -> Protocol {
        if has_token(headers, &header::CONNECTION, "upgrade")
            && has_token(headers, &header::UPGRADE, "websocket")
        {
            Protocol::Websocket
        } else if has_token(headers, &header::ACCEPT, "text/event-stream") {
            Protocol::Sse
        } else {
            let ct = headers
                .get(header::CONTENT_TYPE)
                .map_or(&b""[..], |v| v.as_bytes());
            if ct.starts_with(b"application/grpc-web") {
                Protocol::GrpcWeb
            } else if ct.starts_with(b"application/grpc") {
                Protocol::Grpc
            } else {
                Protocol::Http
            }
        }
    }

    /// Whether the `code` label is the gRPC status rather than the HTTP one.
    pub const fn is_grpc(self) -> bool {
        matches!(self, Protocol::Grpc | Protocol::GrpcWeb)
    }
}

/// Whether the first value of `name`, split on commas and trimmed, has an
/// item equal to `token` ignoring ASCII case.
fn has_token(headers: &HeaderMap, name: &header::HeaderName, token: &str) -> bool {
    headers.get(name).is_some_and(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// The `code` label of a gRPC request, as Traefik computes it: the
/// `Grpc-Status` value (response headers or trailers) when it is a valid gRPC
/// code 0..=16, else 2 (`Unknown`).
pub fn grpc_status_code(headers: &HeaderMap) -> u16 {
    headers
        .get("grpc-status")
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .and_then(|s| s.trim().parse::<u16>().ok())
        .filter(|&c| c <= 16)
        .unwrap_or(2)
}

// === method label ===

/// Traefik's `method` label values: the standard methods as sent, any other
/// as `EXTENSION_METHOD` (bounds the label's cardinality).
pub(super) const METHOD_LABELS: [&str; 11] = [
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "PRI",
    "EXTENSION_METHOD",
];

pub(super) fn method_index(method: &Method) -> u8 {
    // Matching on the `Method` constants is a tag comparison, no string work
    // for the standard methods.
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::CONNECT => 5,
        Method::OPTIONS => 6,
        Method::TRACE => 7,
        Method::PATCH => 8,
        _ if method.as_str() == "PRI" => 9,
        _ => 10,
    }
}

/// The `method` label Traefik gives `method`.
pub fn method_label(method: &Method) -> &'static str {
    METHOD_LABELS[method_index(method) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn protocol_detection_follows_traefik_order() {
        let mut h = HeaderMap::new();
        assert_eq!(Protocol::detect(&h), Protocol::Http);
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc+proto"),
        );
        assert_eq!(Protocol::detect(&h), Protocol::Grpc);
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc-web-text"),
        );
        assert_eq!(Protocol::detect(&h), Protocol::GrpcWeb);
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html, Text/Event-Stream"),
        );
        assert_eq!(Protocol::detect(&h), Protocol::Sse);
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert_eq!(Protocol::detect(&h), Protocol::Websocket);
        assert_eq!(Protocol::Websocket.as_str(), "websocket");
    }

    #[test]
    fn grpc_status_defaults_to_unknown() {
        let mut h = HeaderMap::new();
        assert_eq!(grpc_status_code(&h), 2);
        h.insert("grpc-status", HeaderValue::from_static("0"));
        assert_eq!(grpc_status_code(&h), 0);
        h.insert("grpc-status", HeaderValue::from_static("14"));
        assert_eq!(grpc_status_code(&h), 14);
        h.insert("grpc-status", HeaderValue::from_static("99"));
        assert_eq!(grpc_status_code(&h), 2);
    }

    #[test]
    fn methods_outside_the_standard_set_are_extension_method() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::from_bytes(b"PRI").unwrap()), "PRI");
        assert_eq!(
            method_label(&Method::from_bytes(b"PURGE").unwrap()),
            "EXTENSION_METHOD"
        );
    }
}
