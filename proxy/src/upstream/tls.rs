//! TLS to `https://` servers: what a target needs to handshake (the
//! transport's rustls client configuration and the server name), the
//! handshake on a dialled socket, and the request shape an HTTP/2
//! connection negotiated by ALPN needs.
//!
//! Runs per new upstream connection (the handshake) and, for HTTP/2 over
//! TLS, per request (an absolute URI); pooled connections are reused as
//! plain ones are.

use std::sync::Arc;

use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use http::{Request, Version, header};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::body::RequestBody;
use super::error::ProxyError;

/// How connections to one `https://` server are secured.
#[derive(Clone)]
pub struct UpstreamTls {
    /// The transport's client configuration.
    pub connector: TlsConnector,
    /// The SNI sent and the name verified (`serverName`, else the URL's
    /// host).
    pub server_name: ServerName<'static>,
}

impl UpstreamTls {
    /// TLS with `config` to `server_name`.
    pub fn new(config: Arc<rustls::ClientConfig>, server_name: ServerName<'static>) -> Self {
        UpstreamTls {
            connector: TlsConnector::from(config),
            server_name,
        }
    }

    /// The handshake over `tcp` to `addr`; whether ALPN chose HTTP/2.
    pub(super) async fn handshake(
        &self,
        tcp: TcpStream,
        addr: &str,
    ) -> Result<(TlsStream<TcpStream>, bool), ProxyError> {
        let stream = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|source| ProxyError::Connect {
                addr: addr.to_owned(),
                source,
            })?;
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        Ok((stream, h2))
    }
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// `req` (HTTP/1 form: origin URI and `Host`) as an HTTP/2 request over
/// TLS: `https` absolute URI with the host as authority; `None` when the
/// host is no authority.
pub(super) fn to_h2(
    mut req: Request<RequestBody>,
    fallback: &Authority,
) -> Option<Request<RequestBody>> {
    let authority = match req.headers_mut().remove(header::HOST) {
        Some(h) => Authority::try_from(h.as_bytes()).ok()?,
        None => fallback.clone(),
    };
    let mut parts = std::mem::take(req.uri_mut()).into_parts();
    parts.scheme = Some(Scheme::HTTPS);
    parts.authority = Some(authority);
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(PathAndQuery::from_static("/"));
    }
    *req.uri_mut() = Uri::from_parts(parts).ok()?;
    *req.version_mut() = Version::HTTP_2;
    Some(req)
}
