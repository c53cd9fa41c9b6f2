//! The answer on the direct path: its head parsed as hyper's client
//! parses it, its body's framing, and the body itself, handed to the
//! response as it is read ([`DirectBody`]) with the connection going back
//! to the pool at its end.

use std::io;
use std::mem::MaybeUninit;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode, Version};
use hyper::body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{DirectConn, Failed, Home};
use crate::forward::headers::has_token;
use crate::upstream::error::UpstreamFailure;
use crate::upstream::pool::{PooledBody, checkin_direct};

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

/// An answer's head as read, and how its body is framed.
pub(super) struct Head {
    response: Response<()>,
    framing: Framing,
    pub(super) keep_alive: bool,
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

/// Reads the answer's head from `rd` into `buf`, skipping informational
/// answers.
pub(super) async fn read_head<R: AsyncRead + Unpin>(
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
pub(super) fn last_coding_chunked(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .next_back()
        .and_then(|v| v.as_bytes().rsplit(|&b| b == b',').next())
        .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// The body's length from every `Content-Length` value (lists included),
/// which must all agree; `None` when one is not a number or they differ.
pub(super) fn content_length(headers: &HeaderMap) -> Option<u64> {
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
pub(super) fn respond(mut conn: DirectConn, head: Head, home: Home) -> Response<PooledBody> {
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
pub(in crate::upstream) enum DirectBody {
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
pub(in crate::upstream) struct Streaming {
    conn: DirectConn,
    framing: Framing,
    keep_alive: bool,
    home: Home,
}

impl DirectBody {
    pub(in crate::upstream) fn is_end_stream(&self) -> bool {
        match self {
            DirectBody::Done => true,
            DirectBody::Full(_) | DirectBody::Failed(_) => false,
            DirectBody::Stream(s) => matches!(s.framing, Framing::Length(0)),
        }
    }

    pub(in crate::upstream) fn size_hint(&self) -> SizeHint {
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

    pub(in crate::upstream) fn poll_frame(
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
