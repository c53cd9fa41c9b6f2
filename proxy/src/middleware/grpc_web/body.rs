//! The two bodies `grpcWeb` rewrites, as the gRPC-Web wrapper Traefik
//! uses (`github.com/traefik/grpc-web`) rewrites them:
//! - [`GrpcRequest`]: the client's body on its way to the gRPC server,
//!   as it is (binary) or base64-decoded as it streams (`-text`), with no
//!   length announced (the wrapper sets `ContentLength = -1`).
//! - [`GrpcWebResponse`]: the server's body on its way to the client:
//!   each data frame as it is (binary) or base64-encoded on its own,
//!   padded (`-text`: the proxy flushes at each write, and each flush
//!   closes the wrapper's encoder), the trailers turned into the last
//!   message, the gRPC-Web trailer frame ([`trailer_frame`]; written
//!   empty when the body ends without trailers, as v0.16 does).
//!
//! Per frame, no lock: a text frame is one allocation (its decoded or
//! encoded copy); a binary one passes as it is.

use std::pin::Pin;
use std::task::{Context, Poll};

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};
use hyper::body::{Body, Frame, SizeHint};

use crate::upstream::BodySource;

/// Go's `base64.StdEncoding` decoding: padding required, bits after the
/// last byte ignored (Go is not strict about them).
const GO_STD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// The flag of the gRPC-Web trailer frame (its first byte's high bit).
const TRAILER_FLAG: u8 = 0x80;

// === request ===

/// A request body forwarded as gRPC.
#[derive(Debug)]
pub struct GrpcRequest<B> {
    inner: B,
    /// `-text`: the base64 still to decode.
    text: Option<Text>,
    /// It ended in an error: nothing more is read.
    failed: bool,
}

/// The state of a base64 request body between frames.
#[derive(Debug, Default)]
struct Text {
    /// The characters of an incomplete quantum (at most 3).
    rest: [u8; 4],
    len: usize,
    /// A quantum ended in padding: nothing may follow.
    ended: bool,
}

impl<B> GrpcRequest<B> {
    /// `inner`, base64-decoded when `text`.
    pub(super) fn new(inner: B, text: bool) -> Self {
        Self {
            inner,
            text: text.then(Text::default),
            failed: false,
        }
    }
}

impl Text {
    /// The bytes `chunk` completes, as Go's streaming decoder reads it:
    /// line breaks skipped, whole quanta decoded, padding only at the end.
    fn decode(&mut self, chunk: &[u8]) -> Result<Bytes, &'static str> {
        let mut clean = Vec::with_capacity(self.len + chunk.len());
        clean.extend_from_slice(&self.rest[..self.len]);
        clean.extend(chunk.iter().copied().filter(|&b| b != b'\r' && b != b'\n'));
        if self.ended && clean.len() > self.len {
            return Err("data after base64 padding");
        }
        let whole = clean.len() / 4 * 4;
        let (quanta, rest) = clean.split_at(whole);
        self.len = rest.len();
        self.rest[..rest.len()].copy_from_slice(rest);
        if quanta.last() == Some(&b'=') {
            self.ended = true;
        }
        GO_STD
            .decode(quanta)
            .map(Bytes::from)
            .map_err(|_| "illegal base64 data")
    }

    /// The end of the body: an incomplete quantum is an error (Go's
    /// `unexpected EOF`).
    fn finish(&self) -> Result<(), &'static str> {
        if self.len == 0 {
            Ok(())
        } else {
            Err("unexpected end of base64 data")
        }
    }
}

impl<B> Body for GrpcRequest<B>
where
    B: BodySource<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        loop {
            if this.failed {
                return Poll::Ready(None);
            }
            let polled = Pin::new(&mut this.inner).poll_frame(cx);
            let Some(text) = &mut this.text else {
                return polled;
            };
            let frame = match polled {
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(None) => {
                    return Poll::Ready(text.finish().err().and_then(fail::<B>));
                }
                other => return other,
            };
            let Ok(data) = frame.into_data() else {
                // Request trailers: not part of a gRPC-Web request.
                continue;
            };
            match text.decode(&data) {
                Ok(out) if out.is_empty() => continue,
                Ok(out) => return Poll::Ready(Some(Ok(Frame::data(out)))),
                Err(e) => {
                    this.failed = true;
                    return Poll::Ready(fail::<B>(e));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || (self.inner.is_end_stream() && self.text.as_ref().is_none_or(|t| t.len == 0))
    }

    fn size_hint(&self) -> SizeHint {
        // No length: the wrapper forwards the body as a stream.
        SizeHint::default()
    }
}

/// The end of a body that is not base64: its source's error, or the end
/// where it has none (a body never decoded).
fn fail<B: BodySource>(reason: &'static str) -> Option<Result<Frame<Bytes>, B::Error>> {
    tracing::debug!(reason, "grpcWeb: the text request body is not base64");
    B::undecodable(reason).map(Err)
}

// === response ===

/// A gRPC response body on its way to a gRPC-Web client.
#[derive(Debug)]
pub struct GrpcWebResponse<B> {
    inner: B,
    /// `-text`: each frame base64-encoded.
    text: bool,
    /// The response head's `Access-Control-Expose-Headers`: the names the
    /// head has (trailers of those names are not repeated in the trailer
    /// frame), then `grpc-status, grpc-message`.
    head: HeaderValue,
    done: bool,
}

impl<B> GrpcWebResponse<B> {
    pub(super) fn new(inner: B, text: bool, head: HeaderValue) -> Self {
        Self {
            inner,
            text,
            head,
            done: false,
        }
    }

    /// The body being rewritten (something it carries to its end, an
    /// `inFlightReq` count, is handed to it).
    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }

    /// `data` as the client gets it.
    fn out(&self, data: Bytes) -> Bytes {
        if self.text {
            Bytes::from(base64::engine::general_purpose::STANDARD.encode(&data))
        } else {
            data
        }
    }
}

impl<B> Body for GrpcWebResponse<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(None) => {
                    // No trailers: the wrapper still writes its (empty)
                    // trailer frame.
                    this.done = true;
                    let block = trailer_frame(&HeaderMap::new(), &this.head);
                    return Poll::Ready(Some(Ok(Frame::data(this.out(block)))));
                }
                other => return other,
            };
            match frame.into_data() {
                Ok(data) if data.is_empty() => {}
                Ok(data) => return Poll::Ready(Some(Ok(Frame::data(this.out(data))))),
                Err(frame) => {
                    let Ok(trailers) = frame.into_trailers() else {
                        continue;
                    };
                    // The trailers end the stream: they are its last message.
                    this.done = true;
                    let block = trailer_frame(&trailers, &this.head);
                    return Poll::Ready(Some(Ok(Frame::data(this.out(block)))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// The gRPC-Web trailer frame of `trailers`: flag `0x80`, the length (4
/// bytes, big-endian), then `name: value\r\n` for each, names lower-case
/// and sorted (Go's `Header.Write`), values with line breaks made spaces
/// and trimmed. A trailer whose name the head has (`head`, its
/// `Access-Control-Expose-Headers`) is left out, as the wrapper skips the
/// keys it flushed. With none left, the frame is still written (empty), as
/// the wrapper (v0.16) writes it.
pub(super) fn trailer_frame(trailers: &HeaderMap, head: &HeaderValue) -> Bytes {
    let mut names: Vec<&HeaderName> = trailers
        .keys()
        .filter(|n| !in_head(n, head.as_bytes()))
        .collect();
    names.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    let mut out = BytesMut::with_capacity(64);
    out.put_slice(&[TRAILER_FLAG, 0, 0, 0, 0]);
    for name in names {
        for value in trailers.get_all(name) {
            out.put_slice(name.as_str().as_bytes());
            out.put_slice(b": ");
            let v = value.as_bytes().trim_ascii();
            out.extend(
                v.iter()
                    .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
            );
            out.put_slice(b"\r\n");
        }
    }
    let len = u32::try_from(out.len() - 5).unwrap_or(u32::MAX);
    out[1..5].copy_from_slice(&len.to_be_bytes());
    out.freeze()
}

/// Whether the response head has header `name`: it is the exposed list
/// itself, or one of the list's names (the two `grpc-*` names it ends
/// with are no header of the head).
fn in_head(name: &HeaderName, exposed: &[u8]) -> bool {
    if name == http::header::ACCESS_CONTROL_EXPOSE_HEADERS {
        return true;
    }
    let count = exposed.split(|&b| b == b',').count();
    exposed
        .split(|&b| b == b',')
        .take(count.saturating_sub(2))
        .any(|t| {
            t.trim_ascii()
                .eq_ignore_ascii_case(name.as_str().as_bytes())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_decodes_across_frames_as_go_does() {
        let mut t = Text::default();
        // "hello world" split in the middle of quanta, with a line break.
        assert_eq!(t.decode(b"aGVs").unwrap(), Bytes::from_static(b"hel"));
        assert_eq!(t.decode(b"bG8gd2").unwrap(), Bytes::from_static(b"lo "));
        assert_eq!(
            t.decode(b"9y\r\nbGQ=").unwrap(),
            Bytes::from_static(b"world")
        );
        assert!(t.finish().is_ok());
        assert!(t.decode(b"QQ==").is_err(), "nothing after padding");

        let mut t = Text::default();
        assert!(t.decode(b"QQ").unwrap().is_empty());
        assert!(t.finish().is_err(), "an incomplete quantum at the end");
        assert!(Text::default().decode(b"QQ==QUJD").is_err());
        assert!(Text::default().decode(b"a*bc").is_err());
        // Go ignores the bits past the last byte.
        assert_eq!(
            Text::default().decode(b"QR==").unwrap(),
            Bytes::from_static(b"A")
        );
    }

    #[test]
    fn trailer_frame_bytes() {
        let mut t = HeaderMap::new();
        t.insert("grpc-status", HeaderValue::from_static("0"));
        t.insert("grpc-message", HeaderValue::from_static(" all good "));
        t.append("x-b", HeaderValue::from_static("1"));
        t.append("x-b", HeaderValue::from_static("2"));
        t.insert("content-type", HeaderValue::from_static("x"));
        let head = HeaderValue::from_static("Content-Type, Vary, grpc-status, grpc-message");
        let f = trailer_frame(&t, &head);
        let text = b"grpc-message: all good\r\ngrpc-status: 0\r\nx-b: 1\r\nx-b: 2\r\n";
        assert_eq!(f[0], 0x80);
        assert_eq!(&f[1..5], &(text.len() as u32).to_be_bytes());
        assert_eq!(&f[5..], text);

        let mut only_head = HeaderMap::new();
        only_head.insert("vary", HeaderValue::from_static("x"));
        assert_eq!(&trailer_frame(&only_head, &head)[..], [0x80, 0, 0, 0, 0]);
        assert_eq!(
            &trailer_frame(&HeaderMap::new(), &head)[..],
            [0x80, 0, 0, 0, 0]
        );
    }
}
