//! Errors of a proxied exchange, recording which side failed and whether a
//! retry is safe, so the response status (400/502/503/504) follows from the
//! error and not from string matching at the call site.

use http::StatusCode;

/// Which side of the exchange failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorSource {
    /// The downstream client sent something we cannot proxy.
    Client,
    /// The upstream server could not be reached or misbehaved.
    Upstream,
    /// A failure inside the proxy itself.
    Internal,
}

/// A failed proxied exchange.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
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
        /// The hyper error.
        source: hyper::Error,
    },
    /// The service has no server to send to.
    #[error("no available server")]
    NoServer,
}

impl ProxyError {
    /// Which side failed.
    pub fn source_side(&self) -> ErrorSource {
        match self {
            ProxyError::NoServer => ErrorSource::Internal,
            _ => ErrorSource::Upstream,
        }
    }

    /// The status answered downstream for this error, as Traefik does:
    /// timeouts are 504, an unreachable or broken upstream is 502, no
    /// server at all is 503.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::ConnectTimeout { .. } | ProxyError::ResponseHeaderTimeout { .. } => {
                StatusCode::GATEWAY_TIMEOUT
            }
            ProxyError::NoServer => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Connect { .. }
            | ProxyError::Handshake { .. }
            | ProxyError::Upstream { .. } => StatusCode::BAD_GATEWAY,
        }
    }
}
