//! Making a new upstream connection: the TCP dial (with its timeout and
//! keep-alive), the TLS handshake when the server is `https://`, and the
//! HTTP/1.1 handshake; the errors a failing server produces. HTTP/2
//! connections are made in `h2.rs`. Nothing here keeps connections: the
//! worker's pools (`pool.rs`) do.

use std::pin::Pin;
use std::time::Duration;

use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::body::{BodyError, RequestBody};
use super::error::{ProxyError, UpstreamFailure};
use super::pool::UpstreamTarget;

pub(super) async fn dial(target: &UpstreamTarget) -> Result<TcpStream, ProxyError> {
    let timeout = target.transport.dial_timeout;
    let connect = async {
        match target.socket_addr {
            Some(addr) => TcpStream::connect(addr).await,
            None => TcpStream::connect(target.authority.as_str()).await,
        }
    };
    let stream = if timeout.is_zero() {
        connect.await
    } else {
        match tokio::time::timeout(timeout, connect).await {
            Ok(r) => r,
            Err(_) => {
                return Err(ProxyError::ConnectTimeout {
                    addr: target.authority.to_string(),
                    timeout,
                });
            }
        }
    }
    .map_err(|source| ProxyError::Connect {
        addr: target.authority.to_string(),
        source,
    })?;
    let _ = stream.set_nodelay(true);
    // TCP keep-alive, as Go's dialer in Traefik's transport (30 s): a
    // pooled connection to a host that vanished is found dead.
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(TCP_KEEPALIVE)
        .with_interval(TCP_KEEPALIVE);
    let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
    Ok(stream)
}

/// Idle time before the first keep-alive probe, and between probes, on
/// dialled sockets (Traefik's `KeepAlive: 30 * time.Second`).
pub(super) const TCP_KEEPALIVE: Duration = Duration::from_secs(30);

/// Runs an upstream connection on this worker until it closes.
pub(super) fn drive(conn: impl Future<Output = Result<(), hyper::Error>> + 'static) {
    tokio::task::spawn_local(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
}

impl UpstreamTarget {
    pub(super) fn handshake_failed(&self, source: hyper::Error) -> ProxyError {
        ProxyError::Handshake {
            addr: self.authority.to_string(),
            source,
        }
    }

    /// The connection failed; `request_sent` when some of the request may
    /// have been written to it.
    pub(super) fn failed(&self, source: hyper::Error, request_sent: bool) -> ProxyError {
        // The request body hyper was sending failed to read: the client's
        // error, not this server's.
        let mut cause = std::error::Error::source(&source);
        while let Some(c) = cause {
            if let Some(b) = c.downcast_ref::<BodyError>() {
                return self.client_body_failed(b);
            }
            cause = c.source();
        }
        self.broken(UpstreamFailure::Hyper(source), request_sent)
    }

    /// The client's request body failed while it was being sent (400, or
    /// 408 when it came too late).
    pub(super) fn client_body_failed(&self, b: &BodyError) -> ProxyError {
        ProxyError::ClientBody {
            addr: self.authority.to_string(),
            reason: b.to_string(),
            timed_out: matches!(b, BodyError::ReadTimeout(_)),
        }
    }

    /// The exchange failed after the connection was made; `request_sent`
    /// when some of the request may have been written to it.
    pub(super) fn broken(&self, source: UpstreamFailure, request_sent: bool) -> ProxyError {
        ProxyError::Upstream {
            addr: self.authority.to_string(),
            source,
            request_sent,
        }
    }

    /// The request cannot be forwarded to this server as it is.
    pub fn invalid_target(&self, reason: &'static str) -> ProxyError {
        ProxyError::InvalidTarget {
            addr: self.authority.to_string(),
            reason,
        }
    }
}

/// A new connection: HTTP/1.1, or HTTP/2 when a TLS server chose it.
pub(super) enum Fresh {
    H1(http1::SendRequest<RequestBody>),
    H2(hyper::client::conn::http2::SendRequest<RequestBody>),
}

/// Boxed: a new connection is rare next to the requests sent on one, and
/// its states (the dial, the TLS and HTTP/2 handshakes, 6.5 KiB) would
/// otherwise be part of every request's future, copied with it.
pub(super) fn connect_new(
    target: &UpstreamTarget,
) -> Pin<Box<impl Future<Output = Result<Fresh, ProxyError>> + Send + '_>> {
    Box::pin(connect_fresh(target))
}

async fn connect_fresh(target: &UpstreamTarget) -> Result<Fresh, ProxyError> {
    let stream = dial(target).await?;
    let Some(tls) = &target.tls else {
        return Ok(Fresh::H1(h1_handshake(target, stream).await?));
    };
    let (stream, h2) = tls.handshake(stream, target.authority.as_str()).await?;
    if h2 {
        return Ok(Fresh::H2(super::h2::handshake(target, stream).await?));
    }
    Ok(Fresh::H1(h1_handshake(target, stream).await?))
}

/// hyper's HTTP/1.1 client on `stream`, an idle connection of the direct
/// path (`direct/`). Boxed, as [`connect_new`] is.
pub(super) fn adopt(
    target: &UpstreamTarget,
    stream: TcpStream,
) -> Pin<Box<impl Future<Output = Result<http1::SendRequest<RequestBody>, ProxyError>> + Send + '_>>
{
    Box::pin(h1_handshake(target, stream))
}

async fn h1_handshake<S>(
    target: &UpstreamTarget,
    stream: S,
) -> Result<http1::SendRequest<RequestBody>, ProxyError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // Go's transport reads a folded header line (obs-fold) as one value;
    // hyper would fail the whole response (502). It turns the fold into
    // spaces, so nothing folded reaches the client.
    let (tx, conn) = http1::Builder::new()
        .allow_obsolete_multiline_headers_in_responses(true)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| target.handshake_failed(e))?;
    drive(conn.with_upgrades());
    Ok(tx)
}

/// `fut` (the request sent and its response head read), bounded by the
/// target's `responseHeaderTimeout` when it has one.
pub(super) fn with_header_timeout<F, T>(
    target: &UpstreamTarget,
    fut: F,
) -> impl Future<Output = Result<T, ProxyError>>
where
    F: Future<Output = Result<T, ProxyError>>,
{
    let limit = target.transport.response_header_timeout;
    crate::rt::bounded(limit, fut, |timeout| ProxyError::ResponseHeaderTimeout {
        addr: target.authority.to_string(),
        timeout,
    })
}
