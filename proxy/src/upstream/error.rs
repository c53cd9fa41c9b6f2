//! Errors of a proxied exchange, recording which side failed and whether
//! the upstream may have received the request, so that the answer
//! (400/502/503/504, built by `forward::respond`) and any retry decision
//! follow from the error and not from string matching at the call site.
//!
//! Two retry decisions read it: the transport's (a reused connection that
//! failed before any response byte; the hardening issue) and the `retry`
//! middleware's (another server; middlewares part 2). Both go through
//! [`ProxyError::retry_safe`].

use http::StatusCode;

/// Which side of the exchange failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorSource {
    /// The downstream client sent something we cannot proxy.
    Client,
    /// The upstream server could not be reached or misbehaved.
    Upstream,
    /// The proxy itself cannot serve it (no server to send to).
    Internal,
}

/// A failed proxied exchange.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The request cannot be pointed at the upstream: its host or path do
    /// not form a valid request there.
    #[error("cannot forward the request to {addr}: {reason}")]
    InvalidTarget {
        /// The upstream address.
        addr: String,
        /// What is wrong with the request.
        reason: &'static str,
    },
    /// The TCP connection to the upstream could not be established.
    #[error("dial {addr}: {source}")]
    Connect {
        /// The address that was dialled.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The dial did not complete within `dialTimeout`.
    #[error("dial {addr}: timed out after {timeout:?}")]
    ConnectTimeout {
        /// The address that was dialled.
        addr: String,
        /// The configured dial timeout.
        timeout: std::time::Duration,
    },
    /// The HTTP handshake with the upstream failed.
    #[error("handshake with {addr}: {source}")]
    Handshake {
        /// The upstream address.
        addr: String,
        /// The hyper error.
        source: hyper::Error,
    },
    /// The upstream did not send response headers within
    /// `responseHeaderTimeout`.
    #[error("no response headers from {addr} within {timeout:?}")]
    ResponseHeaderTimeout {
        /// The upstream address.
        addr: String,
        /// The configured timeout.
        timeout: std::time::Duration,
    },
    /// The upstream closed or reset the connection, or sent a malformed
    /// response.
    #[error("upstream {addr}: {source}")]
    Upstream {
        /// The upstream address.
        addr: String,
        /// What went wrong.
        source: UpstreamFailure,
        /// Whether any of the request may have been written to the
        /// connection before it failed.
        request_sent: bool,
    },
    /// The upstream answered with something that cannot be passed on: a
    /// body in a transfer coding other than `chunked`, or `101 Switching
    /// Protocols` to a request that asked for no upgrade (502).
    #[error("upstream {addr}: {reason}")]
    BadResponse {
        /// The upstream address.
        addr: String,
        /// What is wrong with the response.
        reason: &'static str,
    },
    /// The client's request body could not be read while it was being
    /// sent: malformed (a bad chunk) or not within `readTimeout`. The
    /// client's error, not the upstream's.
    #[error("request to {addr}: {reason}")]
    ClientBody {
        /// The upstream address.
        addr: String,
        /// What went wrong with the body.
        reason: String,
        /// The body did not arrive in time (408) rather than being
        /// malformed (400).
        timed_out: bool,
    },
    /// The service has no server to send to.
    #[error("no available server")]
    NoServer,
    /// The request body is larger than a `failover`'s
    /// `maxRequestBodyBytes` (kept to be sent again to its fallback).
    #[error("request body larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: u64,
    },
}

/// Why an exchange with an upstream (or the body of its answer) failed
/// after the connection was made: as hyper's client saw it, or as the
/// direct path (`direct/`) did.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamFailure {
    /// hyper's client failed.
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
    /// The connection failed or closed too early.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The answer's head could not be parsed.
    #[error("invalid HTTP response: {0}")]
    Parse(httparse::Error),
    /// The answer is not valid HTTP/1.1.
    #[error("invalid HTTP response: {0}")]
    Malformed(&'static str),
}

impl ProxyError {
    /// Which side failed.
    pub fn source_side(&self) -> ErrorSource {
        match self {
            ProxyError::InvalidTarget { .. }
            | ProxyError::ClientBody { .. }
            | ProxyError::BodyTooLarge { .. } => ErrorSource::Client,
            ProxyError::NoServer => ErrorSource::Internal,
            ProxyError::Connect { .. }
            | ProxyError::ConnectTimeout { .. }
            | ProxyError::Handshake { .. }
            | ProxyError::ResponseHeaderTimeout { .. }
            | ProxyError::Upstream { .. }
            | ProxyError::BadResponse { .. } => ErrorSource::Upstream,
        }
    }

    /// Whether the upstream may have received (part of) the request, and
    /// may have acted on it. False when the connection was never
    /// established or failed before the request was written.
    pub fn reached_upstream(&self) -> bool {
        match self {
            ProxyError::InvalidTarget { .. }
            | ProxyError::NoServer
            | ProxyError::BodyTooLarge { .. }
            | ProxyError::Connect { .. }
            | ProxyError::ConnectTimeout { .. }
            | ProxyError::Handshake { .. } => false,
            ProxyError::ResponseHeaderTimeout { .. }
            | ProxyError::ClientBody { .. }
            | ProxyError::BadResponse { .. } => true,
            ProxyError::Upstream { request_sent, .. } => *request_sent,
        }
    }

    /// Whether the request may be sent again (on a new connection, or to
    /// another server): the upstream failed, and either it cannot have
    /// seen the request, or the request is `idempotent` so seeing it twice
    /// does no harm (the retry middleware's rule, as Traefik's: every
    /// method but POST, PATCH and LOCK, unless `retryNonIdempotentMethod`). The caller also needs the body again (a
    /// [`super::RequestBody::replay`]) and must not have sent any of the
    /// response downstream.
    pub fn retry_safe(&self, idempotent: bool) -> bool {
        self.source_side() == ErrorSource::Upstream && (idempotent || !self.reached_upstream())
    }

    /// The status answered downstream for this error, as Traefik does:
    /// timeouts are 504, an unreachable or broken upstream is 502, no
    /// server at all is 503, a body over a failover's limit 413, a
    /// request that cannot be forwarded or a
    /// malformed request body 400, a request body that did not arrive
    /// within `readTimeout` 408.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::InvalidTarget { .. } => StatusCode::BAD_REQUEST,
            ProxyError::ClientBody { timed_out, .. } => {
                if *timed_out {
                    StatusCode::REQUEST_TIMEOUT
                } else {
                    StatusCode::BAD_REQUEST
                }
            }
            ProxyError::ConnectTimeout { .. } | ProxyError::ResponseHeaderTimeout { .. } => {
                StatusCode::GATEWAY_TIMEOUT
            }
            ProxyError::NoServer => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::Connect { .. }
            | ProxyError::Handshake { .. }
            | ProxyError::Upstream { .. }
            | ProxyError::BadResponse { .. } => StatusCode::BAD_GATEWAY,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn refused() -> ProxyError {
        ProxyError::Connect {
            addr: "127.0.0.1:1".into(),
            source: std::io::ErrorKind::ConnectionRefused.into(),
        }
    }

    #[test]
    fn each_error_says_who_failed_its_status_and_whether_a_retry_is_safe() {
        let timeout = ProxyError::ResponseHeaderTimeout {
            addr: "b:80".into(),
            timeout: Duration::from_secs(1),
        };
        let bad = ProxyError::InvalidTarget {
            addr: "b:80".into(),
            reason: "invalid path",
        };
        let cases = [
            (refused(), ErrorSource::Upstream, 502, false),
            (
                ProxyError::ConnectTimeout {
                    addr: "b:80".into(),
                    timeout: Duration::from_secs(1),
                },
                ErrorSource::Upstream,
                504,
                false,
            ),
            (timeout, ErrorSource::Upstream, 504, true),
            (bad, ErrorSource::Client, 400, false),
            (ProxyError::NoServer, ErrorSource::Internal, 503, false),
            (
                ProxyError::BodyTooLarge { limit: 10 },
                ErrorSource::Client,
                413,
                false,
            ),
            (
                ProxyError::ClientBody {
                    addr: "b:80".into(),
                    reason: "invalid chunk size".into(),
                    timed_out: false,
                },
                ErrorSource::Client,
                400,
                true,
            ),
            (
                ProxyError::ClientBody {
                    addr: "b:80".into(),
                    reason: "late".into(),
                    timed_out: true,
                },
                ErrorSource::Client,
                408,
                true,
            ),
        ];
        for (e, side, status, reached) in cases {
            assert_eq!(e.source_side(), side, "{e}");
            assert_eq!(e.status().as_u16(), status, "{e}");
            assert_eq!(e.reached_upstream(), reached, "{e}");
            let upstream = side == ErrorSource::Upstream;
            // Idempotent requests may go again after any upstream failure;
            // others only when the upstream cannot have seen them.
            assert_eq!(e.retry_safe(true), upstream, "{e}");
            assert_eq!(e.retry_safe(false), upstream && !reached, "{e}");
        }
    }
}
