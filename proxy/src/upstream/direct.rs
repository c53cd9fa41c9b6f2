//! The direct HTTP/1.1 exchange: a request to a plain `http://` server, written and answered on the task of the request
//! itself, with no hyper client in between.
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
//! can be read after it, as Go's transport prefers a response. The answer is
//! read as hyper's client reads it
//! (`proto/h1/role.rs`, to match its behaviour): `1xx`
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
//! channel or lock. Allocations: the header map and the buffer the answer
//! is read into (its head and body are views of it), and a box for a
//! body that streams.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tokio::net::tcp::WriteHalf;

use super::body::{BodyError, RequestBody};
use super::connect::{dial, with_header_timeout};
use super::error::{ProxyError, UpstreamFailure};
use super::pool::{PooledBody, UpstreamTarget, checkin_direct, checkout_direct};
use super::retry;
use crate::forward::headers::has_token;

/// Header fields read per answer at most (hyper's default).
const MAX_HEADERS: usize = 100;
/// The largest answer head accepted (hyper's default read buffer limit).
const MAX_HEAD: usize = 8192 + 4096 * 100;
/// Room made in the buffer before each read of a head.
const HEAD_READ: usize = 4096;
/// Room made before each read of a streamed body, at most.
const BODY_READ: usize = 64 * 1024;
/// An answer cut short by the connection's close, in hyper's words.
fn incomplete() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed before message completed",
    )
}

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
    io: TcpStream,
    /// The request head on its way out; then the answer as it is read.
    /// Empty between exchanges.
    buf: BytesMut,
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
enum Failed {
    /// No byte of an answer arrived; `written`: some of the request may
    /// have reached the server.
    Unanswered { error: io::Error, written: bool },
    /// The answer was malformed or cut short.
    Answer(UpstreamFailure),
    /// The request body could not be read from its source (the client).
    Body(BodyError),
}

/// An answer's head as read, and how its body is framed.
struct Head {
    response: Response<()>,
    framing: Framing,
    keep_alive: bool,
}

/// How the rest of an answer's body is delimited.
#[derive(Clone, Copy, Debug)]
enum Framing {
    /// So many bytes left.
    Length(u64),
    /// Chunked, at this point of the coding.
    Chunked(Chunk),
    /// Until the server closes the connection.
    Close,
}

/// Where a chunked body's reader stands.
#[derive(Clone, Copy, Debug)]
enum Chunk {
    /// A chunk-size line is next.
    Size,
    /// So many bytes of the current chunk's data left.
    Data(u64),
    /// The CRLF after a chunk's data is next.
    DataEnd,
    /// The trailer section (after the last chunk) is next.
    Trailers,
}

/// How the request body is framed on the wire.
#[derive(Clone, Copy)]
enum Send {
    /// No body.
    Nothing,
    /// So many bytes (its `Content-Length`).
    Length(u64),
    /// Chunked, with the body's trailers (as Go's transport sends
    /// them for Traefik).
    Chunked,
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

/// How `req`'s body goes on the wire, with its head made to say so, as
/// hyper's client frames a request (`Client::set_length`): a
/// `Transfer-Encoding` (made to end in `chunked`) wins and drops any
/// `Content-Length`; then a valid `Content-Length` is kept; then a body of
/// known size gets one; an unknown one is chunked, except for `GET` and
/// `HEAD`, which send none. A body already over sends nothing and loses a
/// `Transfer-Encoding`.
fn frame_request(req: &mut Request<RequestBody>) -> Send {
    let end = req.body().is_end_stream();
    let exact = req.body().size_hint().exact();
    let method_without_body = matches!(*req.method(), Method::GET | Method::HEAD);
    let h = req.headers_mut();
    if end {
        h.remove(header::TRANSFER_ENCODING);
        return Send::Nothing;
    }
    if h.contains_key(header::TRANSFER_ENCODING) {
        h.remove(header::CONTENT_LENGTH);
        if !last_coding_chunked(h) {
            h.append(
                header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
        }
        return Send::Chunked;
    }
    if let Some(n) = content_length(h) {
        return Send::Length(n);
    }
    match exact {
        Some(n) => {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
            Send::Length(n)
        }
        None if method_without_body => Send::Nothing,
        None => {
            h.remove(header::CONTENT_LENGTH);
            h.insert(
                header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
            Send::Chunked
        }
    }
}

/// Sends `body` framed as `framing`.
async fn send_body(
    wr: &mut WriteHalf<'_>,
    body: &mut RequestBody,
    framing: Send,
) -> Result<(), Failed> {
    // The head went before: whatever fails now, the request was written.
    let io = |(error, _)| Failed::Unanswered {
        error,
        written: true,
    };
    let mut left = match framing {
        Send::Length(n) => Some(n),
        _ => None,
    };
    if matches!(framing, Send::Nothing) {
        return Ok(());
    }
    loop {
        let frame = match body.frame().await {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return Err(Failed::Body(e)),
        };
        match frame.into_data() {
            Ok(data) if data.is_empty() => {}
            Ok(data) => match &mut left {
                Some(left) => {
                    let n = data.len() as u64;
                    if n > *left {
                        return Err(Failed::Body(BodyError::Malformed(
                            "request body longer than its Content-Length",
                        )));
                    }
                    *left -= n;
                    write_parts(wr, &[&data]).await.map_err(io)?;
                }
                None => {
                    let mut line = [0u8; 18];
                    let size = chunk_size_line(data.len(), &mut line);
                    write_parts(wr, &[size, &data, b"\r\n"]).await.map_err(io)?;
                }
            },
            Err(frame) => {
                if left.is_none()
                    && let Ok(trailers) = frame.into_trailers()
                {
                    return finish_chunked(wr, Some(&trailers)).await.map_err(io);
                }
            }
        }
    }
    match left {
        Some(0) => Ok(()),
        Some(_) => Err(Failed::Body(BodyError::Malformed(
            "request body shorter than its Content-Length",
        ))),
        None => finish_chunked(wr, None).await.map_err(io),
    }
}

/// `n` in hex and a CRLF, at the end of `out`: a chunk-size line.
fn chunk_size_line(n: usize, out: &mut [u8; 18]) -> &[u8] {
    let mut at = out.len() - 2;
    out[at..].copy_from_slice(b"\r\n");
    let mut v = n;
    loop {
        at -= 1;
        out[at] = b"0123456789abcdef"[v & 15];
        v >>= 4;
        if v == 0 {
            return &out[at..];
        }
    }
}

/// The last chunk, with the trailer fields.
async fn finish_chunked(
    wr: &mut WriteHalf<'_>,
    trailers: Option<&HeaderMap>,
) -> Result<(), (io::Error, usize)> {
    let mut end = BytesMut::from(&b"0\r\n"[..]);
    if let Some(trailers) = trailers {
        put_fields(trailers, &mut end);
    }
    end.extend_from_slice(b"\r\n");
    write_parts(wr, &[&end]).await
}

/// Writes all of `parts`, in order, gathering them into as few writes as
/// the socket takes; a failure comes with how many bytes went before it.
async fn write_parts<W: AsyncWrite + Unpin>(
    wr: &mut W,
    parts: &[&[u8]],
) -> Result<(), (io::Error, usize)> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut done = 0;
    while done < total {
        let mut slices = [IoSlice::new(&[]); 4];
        let mut k = 0;
        let mut skip = done;
        for p in parts {
            if skip >= p.len() {
                skip -= p.len();
                continue;
            }
            slices[k] = IoSlice::new(&p[skip..]);
            skip = 0;
            k += 1;
        }
        match poll_fn(|cx| Pin::new(&mut *wr).poll_write_vectored(cx, &slices[..k])).await {
            Ok(0) => return Err((io::ErrorKind::WriteZero.into(), done)),
            Ok(n) => done += n,
            Err(e) => return Err((e, done)),
        }
    }
    Ok(())
}

/// Reads the answer's head from `rd` into `buf`, skipping informational
/// answers.
async fn read_head<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    head_request: bool,
    spare: &mut HeaderMap,
) -> Result<Head, Failed> {
    let mut answered = false;
    loop {
        if !buf.is_empty() {
            match parse(buf, head_request, spare).map_err(Failed::Answer)? {
                Parsed::Head(head) => return Ok(head),
                Parsed::Informational => continue,
                Parsed::Partial => {}
            }
        }
        if buf.len() >= MAX_HEAD {
            return Err(Failed::Answer(UpstreamFailure::Malformed(
                "response head too large",
            )));
        }
        buf.reserve(HEAD_READ);
        match rd.read_buf(buf).await {
            Ok(0) if !answered => {
                return Err(Failed::Unanswered {
                    error: incomplete(),
                    written: true,
                });
            }
            Err(error) if !answered => {
                return Err(Failed::Unanswered {
                    error,
                    written: true,
                });
            }
            Ok(0) => return Err(Failed::Answer(UpstreamFailure::Io(incomplete()))),
            Ok(_) => answered = true,
            Err(e) => return Err(Failed::Answer(UpstreamFailure::Io(e))),
        }
    }
}

/// `req`'s head as hyper's client writes it: the names as the map holds
/// them (lower case), the values as they are.
fn encode(req: &Request<RequestBody>, out: &mut BytesMut) {
    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let headers = req.headers();
    out.reserve(req.method().as_str().len() + target.len() + 14 + headers.len() * 32 + 2);
    out.extend_from_slice(req.method().as_str().as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    put_fields(headers, out);
    out.extend_from_slice(b"\r\n");
}

/// Each field of `fields` as a `name: value` line (names as the map holds
/// them: lower case).
fn put_fields(fields: &HeaderMap, out: &mut BytesMut) {
    for (name, value) in fields {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

enum Parsed {
    Head(Head),
    /// A `1xx` answer (not `101`), consumed: the real one follows.
    Informational,
    /// More bytes are needed.
    Partial,
}

/// Parses the answer's head at the start of `buf`, splitting it off; its
/// fields go into `spare`'s allocation.
fn parse(
    buf: &mut BytesMut,
    head_request: bool,
    spare: &mut HeaderMap,
) -> Result<Parsed, UpstreamFailure> {
    // (name start, name end, value start, value end) of each field.
    let mut fields = [(0u32, 0u32, 0u32, 0u32); MAX_HEADERS];
    let (len, status, version, count) = {
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut []);
        let bytes: &[u8] = buf;
        let parsed = httparse::ParserConfig::default()
            .allow_obsolete_multiline_headers_in_responses(true)
            .parse_response_with_uninit_headers(&mut res, bytes, &mut slots);
        let len = match parsed {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
            Err(e) => return Err(UpstreamFailure::Parse(e)),
        };
        let status = res
            .code
            .and_then(|c| StatusCode::from_u16(c).ok())
            .ok_or(UpstreamFailure::Malformed("invalid status code"))?;
        let version = if res.version == Some(1) {
            Version::HTTP_11
        } else {
            Version::HTTP_10
        };
        let base = bytes.as_ptr() as usize;
        let at = |s: &[u8]| (s.as_ptr() as usize - base) as u32;
        for (slot, h) in fields.iter_mut().zip(res.headers.iter()) {
            let n = at(h.name.as_bytes());
            let v = at(h.value);
            *slot = (n, n + h.name.len() as u32, v, v + h.value.len() as u32);
        }
        (len, status, version, res.headers.len())
    };
    let code = status.as_u16();
    if code != 101 && status.is_informational() {
        buf.advance(len);
        return Ok(Parsed::Informational);
    }
    let raw = buf.split_to(len).freeze();
    let mut headers = std::mem::take(spare);
    headers.clear();
    headers.reserve(count);
    for &(n0, n1, v0, v1) in &fields[..count] {
        let name = HeaderName::from_bytes(&raw[n0 as usize..n1 as usize])
            .map_err(|_| UpstreamFailure::Malformed("invalid header name"))?;
        let bytes = &raw[v0 as usize..v1 as usize];
        let value = if bytes.iter().any(|&b| b == b'\r' || b == b'\n') {
            unfold(bytes)?
        } else {
            HeaderValue::from_maybe_shared(raw.slice(v0 as usize..v1 as usize))
                .map_err(|_| UpstreamFailure::Malformed("invalid header value"))?
        };
        headers.append(name, value);
    }
    // Any `Connection: close` closes; HTTP/1.0 keeps the connection only
    // when asked to (`keep-alive`).
    let connection = |token| has_token(headers.get_all(header::CONNECTION), token);
    let mut keep_alive =
        !connection("close") && (version == Version::HTTP_11 || connection("keep-alive"));
    let framing = if code == 101 {
        keep_alive = false;
        Framing::Length(0)
    } else if code == 204 || code == 304 || head_request {
        Framing::Length(0)
    } else if headers.contains_key(header::TRANSFER_ENCODING) {
        if version == Version::HTTP_10 {
            return Err(UpstreamFailure::Malformed(
                "HTTP/1.0 response with Transfer-Encoding",
            ));
        }
        if last_coding_chunked(&headers) {
            Framing::Chunked(Chunk::Size)
        } else {
            Framing::Close
        }
    } else if headers.contains_key(header::CONTENT_LENGTH) {
        Framing::Length(content_length(&headers).ok_or(UpstreamFailure::Malformed(
            "invalid Content-Length in the response",
        ))?)
    } else {
        Framing::Close
    };
    if matches!(framing, Framing::Close) {
        keep_alive = false;
    }
    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.version_mut() = version;
    *response.headers_mut() = headers;
    Ok(Parsed::Head(Head {
        response,
        framing,
        keep_alive,
    }))
}

/// A folded value with each CR and LF turned into a space (RFC 9112 §5.2:
/// an obs-fold is replaced with SP octets).
fn unfold(bytes: &[u8]) -> Result<HeaderValue, UpstreamFailure> {
    let flat: Vec<u8> = bytes
        .iter()
        .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
        .collect();
    HeaderValue::from_bytes(&flat).map_err(|_| UpstreamFailure::Malformed("invalid header value"))
}

/// Whether the last transfer coding named is `chunked`.
fn last_coding_chunked(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .next_back()
        .and_then(|v| v.as_bytes().rsplit(|&b| b == b',').next())
        .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// The body's length from every `Content-Length` value (lists included),
/// which must all agree; `None` when one is not a number or they differ.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for part in value.as_bytes().split(|&b| b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let n: u64 = std::str::from_utf8(part).ok()?.parse().ok()?;
            if length.is_some_and(|l| l != n) {
                return None;
            }
            length = Some(n);
        }
    }
    length
}

/// The response to pass on: a body read whole with its head returns the
/// connection to the pool now; one still to come streams from it.
fn respond(mut conn: DirectConn, head: Head, home: Home) -> Response<PooledBody> {
    let Head {
        response,
        framing,
        keep_alive,
    } = head;
    let body = match framing {
        Framing::Length(n) if (conn.buf.len() as u64) >= n => {
            let data = conn.buf.split_to(n as usize).freeze();
            // Bytes after the answer: the connection is out of step.
            if keep_alive && conn.buf.is_empty() {
                checkin_direct(home, conn);
            }
            if data.is_empty() {
                DirectBody::Done
            } else {
                DirectBody::Full(data)
            }
        }
        framing => DirectBody::Stream(Box::new(Streaming {
            conn,
            framing,
            keep_alive,
            home,
        })),
    };
    response.map(|()| PooledBody::direct(body))
}

/// The body of an answer on the direct path.
pub(super) enum DirectBody {
    /// Over (or empty).
    Done,
    /// Read whole with the head; the connection is back in the pool.
    Full(Bytes),
    /// Still being read from its connection.
    Stream(Box<Streaming>),
    /// Failed; the failure is told at the next poll, so that what came
    /// before it is written to the client first (hyper's server drops
    /// what it has not flushed when a body fails).
    Failed(UpstreamFailure),
}

/// A body being read from its connection, which goes back to the pool at
/// the body's end (dropped before it, the connection closes).
pub(super) struct Streaming {
    conn: DirectConn,
    framing: Framing,
    keep_alive: bool,
    home: Home,
}

impl DirectBody {
    pub(super) fn is_end_stream(&self) -> bool {
        match self {
            DirectBody::Done => true,
            DirectBody::Full(_) | DirectBody::Failed(_) => false,
            DirectBody::Stream(s) => matches!(s.framing, Framing::Length(0)),
        }
    }

    pub(super) fn size_hint(&self) -> SizeHint {
        match self {
            DirectBody::Done => SizeHint::with_exact(0),
            DirectBody::Failed(_) => SizeHint::default(),
            DirectBody::Full(b) => SizeHint::with_exact(b.len() as u64),
            DirectBody::Stream(s) => match s.framing {
                Framing::Length(n) => SizeHint::with_exact(n),
                _ => SizeHint::default(),
            },
        }
    }

    pub(super) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpstreamFailure>>> {
        match self {
            DirectBody::Done => Poll::Ready(None),
            DirectBody::Failed(_) => {
                let DirectBody::Failed(e) = std::mem::replace(self, DirectBody::Done) else {
                    unreachable!()
                };
                Poll::Ready(Some(Err(e)))
            }
            DirectBody::Full(_) => {
                let DirectBody::Full(data) = std::mem::replace(self, DirectBody::Done) else {
                    unreachable!()
                };
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            DirectBody::Stream(s) => {
                let polled = s.poll_next(cx);
                match polled {
                    Poll::Ready(Some(Err(e))) => {
                        *self = DirectBody::Failed(e);
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    Poll::Ready(Some(Ok(_))) if !s.ended() => {}
                    Poll::Pending => {}
                    // The end: the connection goes home when it can.
                    Poll::Ready(_) => {
                        let DirectBody::Stream(s) = std::mem::replace(self, DirectBody::Done)
                        else {
                            unreachable!()
                        };
                        (*s).finish();
                    }
                }
                polled
            }
        }
    }
}

impl Streaming {
    fn ended(&self) -> bool {
        matches!(self.framing, Framing::Length(0))
    }

    /// Back to the pool after the body's end, when it may be reused.
    fn finish(self) {
        if self.keep_alive && self.ended() && self.conn.buf.is_empty() {
            checkin_direct(self.home, self.conn);
        }
    }

    /// Reads more of the connection into the buffer: `Ok(false)` at its
    /// close.
    fn poll_fill(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<bool>> {
        self.conn.buf.reserve(want.clamp(HEAD_READ, BODY_READ));
        let read = self.conn.io.read_buf(&mut self.conn.buf);
        // `read_buf` keeps no state of its own between polls.
        let n = ready!(std::pin::pin!(read).poll(cx))?;
        Poll::Ready(Ok(n > 0))
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpstreamFailure>>> {
        loop {
            match self.framing {
                Framing::Length(0) => return Poll::Ready(None),
                Framing::Length(left) => {
                    if !self.conn.buf.is_empty() {
                        let n = (self.conn.buf.len() as u64).min(left);
                        self.framing = Framing::Length(left - n);
                        let data = self.conn.buf.split_to(n as usize).freeze();
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    let want = usize::try_from(left).unwrap_or(usize::MAX);
                    match ready!(self.poll_fill(cx, want)) {
                        Ok(true) => {}
                        Ok(false) => {
                            return Poll::Ready(Some(Err(UpstreamFailure::Io(incomplete()))));
                        }
                        Err(e) => return Poll::Ready(Some(Err(UpstreamFailure::Io(e)))),
                    }
                }
                Framing::Close => {
                    if !self.conn.buf.is_empty() {
                        let data = self.conn.buf.split().freeze();
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    match ready!(self.poll_fill(cx, BODY_READ)) {
                        Ok(true) => {}
                        Ok(false) => {
                            self.framing = Framing::Length(0);
                            return Poll::Ready(None);
                        }
                        Err(e) => return Poll::Ready(Some(Err(UpstreamFailure::Io(e)))),
                    }
                }
                Framing::Chunked(state) => {
                    match self.step_chunked(state) {
                        Ok(Some(Step::Frame(frame))) => return Poll::Ready(Some(Ok(frame))),
                        Ok(Some(Step::Next(next))) => {
                            self.framing = next;
                            continue;
                        }
                        Ok(None) => {}
                        Err(e) => return Poll::Ready(Some(Err(e))),
                    }
                    match ready!(self.poll_fill(cx, HEAD_READ)) {
                        Ok(true) => {}
                        Ok(false) => {
                            return Poll::Ready(Some(Err(UpstreamFailure::Io(incomplete()))));
                        }
                        Err(e) => return Poll::Ready(Some(Err(UpstreamFailure::Io(e)))),
                    }
                }
            }
        }
    }

    /// One step of the chunked decoding on what is buffered: `None` when
    /// more bytes are needed.
    fn step_chunked(&mut self, state: Chunk) -> Result<Option<Step>, UpstreamFailure> {
        let buf = &mut self.conn.buf;
        match state {
            Chunk::Size => match httparse::parse_chunk_size(buf) {
                Ok(httparse::Status::Complete((used, 0))) => {
                    buf.advance(used);
                    Ok(Some(Step::Next(Framing::Chunked(Chunk::Trailers))))
                }
                Ok(httparse::Status::Complete((used, size))) => {
                    buf.advance(used);
                    Ok(Some(Step::Next(Framing::Chunked(Chunk::Data(size)))))
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_CHUNK_LINE => Ok(None),
                _ => Err(UpstreamFailure::Malformed("invalid chunk size line")),
            },
            Chunk::Data(left) => {
                if buf.is_empty() {
                    return Ok(None);
                }
                let n = (buf.len() as u64).min(left);
                let data = buf.split_to(n as usize).freeze();
                self.framing = Framing::Chunked(if n == left {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(left - n)
                });
                Ok(Some(Step::Frame(Frame::data(data))))
            }
            Chunk::DataEnd => {
                if buf.len() < 2 {
                    return Ok(None);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(UpstreamFailure::Malformed(
                        "chunk data not followed by CRLF",
                    ));
                }
                buf.advance(2);
                Ok(Some(Step::Next(Framing::Chunked(Chunk::Size))))
            }
            Chunk::Trailers => {
                if buf.starts_with(b"\r\n") {
                    buf.advance(2);
                    return Ok(Some(Step::Next(Framing::Length(0))));
                }
                let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
                match httparse::parse_headers(buf, &mut slots) {
                    Ok(httparse::Status::Complete((used, fields))) => {
                        let mut trailers = HeaderMap::with_capacity(fields.len());
                        for f in fields.iter() {
                            let name = HeaderName::from_bytes(f.name.as_bytes())
                                .map_err(|_| UpstreamFailure::Malformed("invalid trailer name"))?;
                            let value = HeaderValue::from_bytes(f.value)
                                .map_err(|_| UpstreamFailure::Malformed("invalid trailer value"))?;
                            trailers.append(name, value);
                        }
                        buf.advance(used);
                        self.framing = Framing::Length(0);
                        Ok(Some(Step::Frame(Frame::trailers(trailers))))
                    }
                    Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => Ok(None),
                    Ok(httparse::Status::Partial) => {
                        Err(UpstreamFailure::Malformed("trailer section too large"))
                    }
                    Err(e) => Err(UpstreamFailure::Parse(e)),
                }
            }
        }
    }
}

/// The longest chunk-size line accepted (with its extensions).
const MAX_CHUNK_LINE: usize = 4096;

enum Step {
    Frame(Frame<Bytes>),
    Next(Framing),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_size_lines_are_lower_case_hex() {
        let mut out = [0u8; 18];
        for (n, line) in [
            (0, "0\r\n"),
            (10, "a\r\n"),
            (4096, "1000\r\n"),
            (usize::MAX, "ffffffffffffffff\r\n"),
        ] {
            assert_eq!(chunk_size_line(n, &mut out), line.as_bytes(), "{n}");
        }
    }

    #[test]
    fn content_lengths_must_agree_and_be_numbers() {
        let map = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(header::CONTENT_LENGTH, HeaderValue::from_str(v).unwrap());
            }
            h
        };
        assert_eq!(content_length(&map(&["5"])), Some(5));
        assert_eq!(content_length(&map(&["5", "5, 5"])), Some(5));
        assert_eq!(content_length(&map(&["5", "6"])), None);
        assert_eq!(content_length(&map(&["+5"])), None);
        assert_eq!(content_length(&map(&[""])), None);
        assert_eq!(content_length(&map(&["99999999999999999999999"])), None);
    }
}
