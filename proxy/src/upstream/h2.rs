//! HTTP/2 to upstream servers (`h2c://`, or `https://` when the server's
//! ALPN picks `h2`): the handshake (with Go's health PINGs), one
//! multiplexed connection per worker and server kept in the worker's pool,
//! and sending once more on a new connection what the server did not
//! process. Dialing is `connect.rs`'s; the pool's state is `pool.rs`'s.

use http::{Request, Response};
use hyper::client::conn::http2;
use hyper_util::rt::TokioIo;

use super::body::RequestBody;
use super::connect::{Fresh, connect_new, dial, drive, with_header_timeout};
use super::error::ProxyError;
use super::pool::{PooledBody, UpstreamTarget, forget_h2, keep_h2, pooled_h2};
use super::retry;
use crate::rt::LocalExec;

/// An HTTP/2 connection over `stream`, kept as the worker's connection to
/// `target`.
pub(super) async fn handshake<S>(
    target: &UpstreamTarget,
    stream: S,
) -> Result<http2::SendRequest<RequestBody>, ProxyError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http2::Builder::new(LocalExec);
    if let Some(idle) = target.transport.h2_read_idle_timeout {
        // Go's ReadIdleTimeout / PingTimeout: a connection whose backend
        // stopped answering (a dead host, a silent middlebox) is closed,
        // failing its streams, instead of waiting forever.
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .keep_alive_interval(idle)
            .keep_alive_timeout(target.transport.h2_ping_timeout)
            .keep_alive_while_idle(true);
    }
    let (tx, conn) = builder
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| target.handshake_failed(e))?;
    drive(conn);
    keep_h2(target, tx.clone());
    Ok(tx)
}

/// What became of a request sent on an HTTP/2 connection.
enum H2Sent {
    Answered(Response<PooledBody>),
    /// Not processed by the server (the connection was gone before the
    /// request went, or the server refused its stream): the request, or a
    /// copy of it, to send once more on a new connection.
    Refused(Request<RequestBody>),
}

/// Sends `req` on the HTTP/2 connection `tx`. Unless this is the `last`
/// attempt, a request the server did not process — the connection closed
/// before it went, or its stream reset with `REFUSED_STREAM` or above the
/// last stream id of the server's `GOAWAY` — comes back to be sent again
/// on a new connection, as Go's transport does: always when nothing was
/// sent, and after the stream was refused when the request may go twice
/// (`retry.rs`, the copy taken before sending).
#[allow(clippy::manual_async_fn)] // an `async fn` holds its arguments twice; see `forward::handle`
fn send_h2(
    target: &UpstreamTarget,
    mut tx: http2::SendRequest<RequestBody>,
    req: Request<RequestBody>,
    last: bool,
) -> impl Future<Output = Result<H2Sent, ProxyError>> {
    async move {
        let mut copy = if last { None } else { retry::resend_copy(&req) };
        let sent = with_header_timeout(target, async {
            if let Err(e) = tx.ready().await {
                return if last {
                    Err(target.failed(e, false))
                } else {
                    Ok(Err(req))
                };
            }
            match tx.send_request(req).await {
                Ok(resp) => Ok(Ok(resp)),
                Err(e) => match copy.take() {
                    Some(again) if retry::refused_stream(&e) => {
                        tracing::debug!(error = %e, url = %target.url, "HTTP/2 stream refused by the server; sending again on a new connection");
                        Ok(Err(again.into_request()))
                    }
                    _ => Err(target.failed(e, true)),
                },
            }
        })
        .await?;
        Ok(match sent {
            Ok(resp) => H2Sent::Answered(resp.map(PooledBody::multiplexed)),
            Err(again) => H2Sent::Refused(again),
        })
    }
}

/// Sends `req` on `tx`, and a refused request once more on a new HTTP/2
/// connection to `target` (which replaces `tx` in the worker's pool).
#[allow(clippy::manual_async_fn)] // an `async fn` holds its arguments twice; see `forward::handle`
pub(super) fn send_h2_twice(
    target: &UpstreamTarget,
    tx: http2::SendRequest<RequestBody>,
    req: Request<RequestBody>,
) -> impl Future<Output = Result<Response<PooledBody>, ProxyError>> {
    async move {
        match send_h2(target, tx, req, false).await? {
            H2Sent::Answered(resp) => Ok(resp),
            // Boxed: the second attempt is rare, and its states would
            // otherwise size every request's future.
            H2Sent::Refused(again) => Box::pin(send_again(target, again)).await,
        }
    }
}

/// Sends the refused request `again` on a new HTTP/2 connection to
/// `target`, which replaces the refused one in the worker's pool.
async fn send_again(
    target: &UpstreamTarget,
    again: Request<RequestBody>,
) -> Result<Response<PooledBody>, ProxyError> {
    forget_h2(target);
    let tx = if target.tls.is_some() {
        match connect_new(target).await? {
            Fresh::H2(tx) => tx,
            // `again` is already in HTTP/2's form (its Host in the URI).
            Fresh::H1(_) => return Err(target.invalid_target("the server no longer offers HTTP/2")),
        }
    } else {
        let stream = dial(target).await?;
        handshake(target, stream).await?
    };
    match send_h2(target, tx, again, true).await? {
        H2Sent::Answered(resp) => Ok(resp),
        H2Sent::Refused(_) => unreachable!("the last attempt returns its errors"),
    }
}

/// `req` as HTTP/2 over TLS wants it (400 when its host is no authority).
pub(super) fn tls_h2_request(
    target: &UpstreamTarget,
    req: Request<RequestBody>,
) -> Result<Request<RequestBody>, ProxyError> {
    super::tls::to_h2(req, &target.authority).ok_or_else(|| target.invalid_target("invalid host"))
}

pub(super) async fn h2_sender(
    target: &UpstreamTarget,
) -> Result<http2::SendRequest<RequestBody>, ProxyError> {
    if let Some(tx) = pooled_h2(target) {
        return Ok(tx);
    }
    let stream = dial(target).await?;
    handshake(target, stream).await
}
