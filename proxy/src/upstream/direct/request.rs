//! The request on the wire for the direct path: its framing as hyper's
//! client frames it, its head, and its body (chunked with trailers, or of
//! known length), written through vectored writes.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;

use bytes::BytesMut;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request};
use http_body_util::BodyExt;
use hyper::body::Body;
use tokio::io::AsyncWrite;
use tokio::net::tcp::WriteHalf;

use super::Failed;
use super::answer::{content_length, last_coding_chunked};
use crate::upstream::body::{BodyError, RequestBody};

/// How the request body is framed on the wire.
#[derive(Clone, Copy)]
pub(super) enum Send {
    /// No body.
    Nothing,
    /// So many bytes (its `Content-Length`).
    Length(u64),
    /// Chunked, with the body's trailers (as Go's transport sends
    /// them for Traefik).
    Chunked,
}

/// How `req`'s body goes on the wire, with its head made to say so, as
/// hyper's client frames a request (`Client::set_length`): a
/// `Transfer-Encoding` (made to end in `chunked`) wins and drops any
/// `Content-Length`; then a valid `Content-Length` is kept; then a body of
/// known size gets one; an unknown one is chunked, except for `GET` and
/// `HEAD`, which send none. A body already over sends nothing and loses a
/// `Transfer-Encoding`.
pub(super) fn frame_request(req: &mut Request<RequestBody>) -> Send {
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
pub(super) async fn send_body(
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
pub(super) async fn write_parts<W: AsyncWrite + Unpin>(
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

/// `req`'s head as hyper's client writes it: the names as the map holds
/// them (lower case), the values as they are.
pub(super) fn encode(req: &Request<RequestBody>, out: &mut BytesMut) {
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
}
