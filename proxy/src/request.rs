//! The borrowed view of one request that routing and middlewares see.
//!
//! Nothing here owns request data (decision 1): every field is a slice of the
//! parsed request, or of the request's bumpalo arena when the value had to be
//! rewritten (a normalised path). Building a view must not allocate on the
//! heap.

use std::net::IpAddr;

use bumpalo::Bump;
use http::{HeaderMap, Method};

/// A zero-copy view of the request, valid for the lifetime of the request.
#[derive(Clone, Copy, Debug)]
pub struct ProxyRequest<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The host the request is addressed to, from the `Host` header (HTTP/1)
    /// or the `:authority` (HTTP/2), with any port removed. Original case:
    /// matchers compare case-insensitively.
    pub host: &'a str,
    /// The `Host` header or `:authority` that `host` was taken from, port
    /// and brackets included, for the matchers that read it whole (a v2
    /// `HostRegexp` sees the brackets of `[::1]`).
    pub authority: &'a str,
    /// The path, normalised as Traefik matches it: `sanitizePath` applied
    /// (`/../`, `/./`, `//` cleaned) and unreserved percent-encodings decoded.
    pub path: &'a str,
    /// The raw query string, without the `?`, if the request had one.
    pub query: Option<&'a str>,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The IP of the TCP peer (never taken from a header).
    pub client_ip: IpAddr,
    /// Per-request scratch space, reset when the request is done.
    pub arena: &'a Bump,
}
