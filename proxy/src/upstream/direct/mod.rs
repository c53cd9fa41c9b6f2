//! The direct HTTP/1.1 exchange: a request to a plain `http://` server,
//! written and answered on the task of the request itself, with no hyper
//! client in between. This file sends a request and retries it;
//! `request.rs` puts the request on the wire, `answer.rs` reads the
//! answer and its body.
//!
//! hyper's client runs each upstream connection as a task of its own. A
//! request goes to it through a channel, its answer comes back through a
//! oneshot, and the response body through the connection task again: two
//! or more wake-ups across tasks and three allocations per request. Here
//! the request's task writes the head, reads the answer, and, when the
//! body is not all there with the head, reads the rest as the client's
//! connection asks for it ([`DirectBody`]), as Pingora drives its
//! upstream. A body read whole with its head (the common small answer)
//! puts the connection back into the worker's pool before the response
//! goes downstream.
//!
//! What takes this path: every request to a server without TLS or
//! HTTP/2 but an upgrade (a WebSocket: hyper hands its connection to the
//! tunnel, and takes an idle connection of this path for it) and
//! `CONNECT`. TLS and h2c servers go through hyper as before. The request
//! is framed as hyper's client frames it (`Client::set_length` of hyper
//! 1.12): a `Transfer-Encoding` (made to end in `chunked`) wins over a
//! `Content-Length`, a valid `Content-Length` is kept, a body of known
//! size gets one, any other body is chunked (with its trailers, as Go's
//! transport sends them for Traefik), a `GET` or `HEAD` of unknown size
//! sends none. A held body of up to 16 KiB goes out in the head's write.
//! The answer is awaited while the body is sent; an answer that comes
//! first stops the body, and its connection is not reused. A body write
//! that fails (the server answered and closed) counts only when no answer
//! can be read after it, as Go's transport prefers a response. The answer
//! is read as hyper's client reads it (`proto/h1/role.rs`, to match its
//! behaviour): `1xx`
//! answers other than `101` are skipped; a `HEAD` answer, `1xx`, `204` and
//! `304` have no body; a `Transfer-Encoding` whose last coding is
//! `chunked` is decoded (with trailers), any other is read to the close;
//! then one valid `Content-Length` (repeated values must agree) frames the
//! body, and without either the body runs to the close. Folded header
//! lines (obs-fold) become spaces, as the hyper client is configured.
//! HTTP/1.1 keeps the connection unless `Connection: close`; HTTP/1.0 only
//! with `Connection: keep-alive`. A connection with bytes left over after
//! its answer is closed, not pooled.
//!
//! The transport's retry (`retry.rs`) holds here too, and needs no copy of
//! the request head: the request is written from a borrow, so after a
//! reused connection failed before any byte of the answer arrived, the
//! same request goes once more on a new connection, when nothing was
//! written, or when it may go twice (its body replayed) and the
//! connection had been idle for [`retry::COPY_AFTER_IDLE`] (the rule the
//! hyper path follows).
//!
//! Runs per request: one write and one read for a small answer; no task,
//! channel or lock. Allocations: the buffer the answer is read into, when
//! views of the last one (its head and body) are still alive, and a box
//! for a body that streams; the answer's header map is the request's,
//! reused.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use http::header::{self, HeaderMap};
use http::{Method, Request, Response};
use hyper::body::Body;
use tokio::net::TcpStream;

use super::body::{BodyError, RequestBody};
use super::connect::{dial, with_header_timeout};
use super::error::{ProxyError, UpstreamFailure};
use super::pool::{PooledBody, UpstreamTarget, checkout_direct};
use super::retry;

mod answer;
mod request;

pub(in crate::upstream) use answer::DirectBody;
use answer::{Head, read_head, respond};
use request::{Send, encode, frame_request, send_body, write_parts};

/// Whether `req`, to `target`, takes the direct path: any request to a
/// plain HTTP/1.1 server but an upgrade (whose connection hyper hands to
/// the tunnel) and `CONNECT`.
#[inline]
pub(super) fn eligible(target: &UpstreamTarget, req: &Request<RequestBody>) -> bool {
    target.tls.is_none()
        && !target.h2c
        && req.method() != Method::CONNECT
        && !req.headers().contains_key(header::UPGRADE)
}

/// An upstream connection of the direct path, with what was read of it.
pub(super) struct DirectConn {
    pub(super) io: TcpStream,
    /// The request head on its way out; then the answer as it is read.
    /// Empty between exchanges.
    pub(super) buf: BytesMut,
}

impl DirectConn {
    /// The socket, for hyper's client to take over (between exchanges:
    /// nothing is buffered).
    pub(super) fn into_stream(self) -> TcpStream {
        self.io
    }

    /// Whether the server closed this idle connection (or sent bytes no
    /// request asked for): looked up without a system call unless the
    /// socket was reported readable.
    pub(super) fn closed(&self) -> bool {
        match self.io.try_read(&mut [0u8; 1]) {
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
            Ok(_) => true,
        }
    }
}

/// Where the worker's pool keeps a connection again.
#[derive(Clone, Copy)]
pub(super) struct Home {
    pub(super) key: super::identity::PoolKey,
    pub(super) max_idle: usize,
    pub(super) idle_timeout: Option<Duration>,
}

impl Home {
    fn of(target: &UpstreamTarget) -> Self {
        Self {
            key: target.key,
            max_idle: target.transport.max_idle_per_host,
            idle_timeout: target.transport.idle_conn_timeout,
        }
    }
}

/// Sends `req` to `target` on the direct path (see [`eligible`]): on an
/// idle connection of this worker, else on a new one.
pub(super) async fn send(
    target: &UpstreamTarget,
    mut req: Request<RequestBody>,
) -> Result<Response<PooledBody>, ProxyError> {
    let home = Home::of(target);
    let mut fresh = false;
    loop {
        let pooled = if fresh {
            None
        } else {
            checkout_direct(home.key, home.idle_timeout)
        };
        let reused = pooled.is_some();
        let (mut conn, idle_for) = match pooled {
            Some(pooled) => pooled,
            // Boxed: a new connection is rare next to the requests sent
            // on one, and the dial's state would size every request's
            // future.
            None => {
                let io = Box::pin(dial(target)).await?;
                let conn = DirectConn {
                    io,
                    buf: BytesMut::new(),
                };
                (conn, Duration::ZERO)
            }
        };
        // Whether the request may go again if this reused connection
        // turns out dead after it went out, and the body to send then (a
        // body already over is not read, and goes again as it is).
        let may_resend = reused && idle_for >= retry::COPY_AFTER_IDLE && retry::replayable(&req);
        let again = if may_resend && !req.body().is_end_stream() {
            req.body().replay()
        } else {
            None
        };
        let answered =
            with_header_timeout(target, async { Ok(exchange(&mut conn, &mut req).await) }).await?;
        match answered {
            Ok(head) => return Ok(respond(conn, head, home)),
            Err(Failed::Unanswered { error, written })
                if reused && retry::connection_closed(&error) =>
            {
                if written {
                    if !may_resend {
                        return Err(target.broken(UpstreamFailure::Io(error), true));
                    }
                    if let Some(body) = again {
                        *req.body_mut() = body;
                    }
                }
                tracing::debug!(error = %error, url = %target.url, "reused upstream connection closed before answering; sending again on a new one");
                fresh = true;
            }
            Err(Failed::Unanswered { error, written }) => {
                return Err(target.broken(UpstreamFailure::Io(error), written));
            }
            Err(Failed::Answer(failure)) => return Err(target.broken(failure, true)),
            Err(Failed::Body(e)) => return Err(target.client_body_failed(&e)),
        }
    }
}

/// How an exchange failed.
pub(super) enum Failed {
    /// No byte of an answer arrived; `written`: some of the request may
    /// have reached the server.
    Unanswered { error: io::Error, written: bool },
    /// The answer was malformed or cut short.
    Answer(UpstreamFailure),
    /// The request body could not be read from its source (the client).
    Body(BodyError),
}

/// Writes `req` on `conn` and reads the answer's head, skipping
/// informational answers. A body is sent while the answer is awaited: an
/// answer that comes first stops it, and the connection is not reused.
async fn exchange(conn: &mut DirectConn, req: &mut Request<RequestBody>) -> Result<Head, Failed> {
    let framing = frame_request(req);
    conn.buf.clear();
    encode(req, &mut conn.buf);
    // The request's header map, written out, holds the answer's fields
    // (as hyper recycles its maps): no map is allocated per request. It
    // goes back to the request when no answer came, for a retry.
    let mut spare = std::mem::take(req.headers_mut());
    let sent = send_and_read(conn, req, framing, &mut spare).await;
    if sent.is_err() {
        *req.headers_mut() = spare;
    }
    sent
}

/// [`exchange`] after the head was encoded into `conn.buf`.
async fn send_and_read(
    conn: &mut DirectConn,
    req: &mut Request<RequestBody>,
    framing: Send,
    spare: &mut HeaderMap,
) -> Result<Head, Failed> {
    // A body the proxy holds goes out with the head, in one write.
    let mut inline = false;
    if let Send::Length(n) = framing
        && n <= INLINE_BODY as u64
        && let Some(data) = req.body().held_bytes()
        && data.len() as u64 == n
    {
        conn.buf.extend_from_slice(data);
        inline = true;
    }
    write_parts(&mut conn.io, &[&conn.buf])
        .await
        .map_err(|(error, done)| Failed::Unanswered {
            error,
            written: done > 0,
        })?;
    conn.buf.clear();
    let head_request = req.method() == Method::HEAD;
    if inline || matches!(framing, Send::Nothing) {
        return read_head(&mut conn.io, &mut conn.buf, head_request, spare).await;
    }
    let (mut rd, mut wr) = conn.io.split();
    let body = req.body_mut();
    let sending = send_body(&mut wr, body, framing);
    let reading = read_head(&mut rd, &mut conn.buf, head_request, spare);
    let mut sending = std::pin::pin!(sending);
    let mut reading = std::pin::pin!(reading);
    let mut sent = false;
    let mut sending_over = false;
    // A write that failed because the server answered and closed (a
    // backend that answers without reading the body): its answer may
    // already be waiting, and is read before the failure counts, as Go's
    // transport prefers a response to a body write error.
    let mut write_failed = None;
    loop {
        tokio::select! {
            biased;
            head = &mut reading => {
                let mut head = match (head, write_failed) {
                    (Ok(head), _) => head,
                    (Err(_), Some(error)) => {
                        return Err(Failed::Unanswered { error, written: true });
                    }
                    (Err(e), None) => return Err(e),
                };
                if !sent {
                    // Answered before the body was all sent: the rest
                    // is not sent, and the connection is spent.
                    head.keep_alive = false;
                }
                return Ok(head);
            }
            done = &mut sending, if !sending_over => {
                sending_over = true;
                match done {
                    Ok(()) => sent = true,
                    Err(Failed::Unanswered { error, .. }) => write_failed = Some(error),
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// A held body at most this large is written with the request head.
const INLINE_BODY: usize = 16 * 1024;
