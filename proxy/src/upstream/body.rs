//! The bodies that pass through the proxy, both ways: [`RequestBody`] on
//! its way to the upstream, and `forward::ProxyBody` on its way to the
//! client. Each is a stream from the other side passed through as it
//! arrives, or a complete body the proxy holds: one it produced (a 404, a
//! 502), or one kept so it can be sent again (a retry, a mirror, a
//! buffered request), or the part of a stream read to check a size limit
//! followed by the rest, or one `buffering` read whole with its end in a
//! temporary file, or one `compress` or `grpcWeb` rewrites as it streams
//! (a `grpcWeb` text request decoded from base64 fails as its source's
//! error: [`BodySource`]).
//!
//! [`ClientBody`] is the client's request body as it streams in: bounded
//! by the entrypoint's `readTimeout` (counted from the request head, as
//! Go's deadline covers the body too), and any failure to read it (a
//! malformed chunk, the deadline) marked as the client's, so the answer is
//! a 400 or 408 and not the upstream's 502.
//!
//! An enum, not a boxed trait object, so body polling is statically
//! dispatched (decision 4). Runs per request: a match per frame, no
//! allocation (a request body that is not all there at once arms one
//! boxed timer for its deadline).

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::middleware::{Compressed, GrpcRequest, GrpcWebResponse, Spilled};

/// A body streamed from `S`, or held whole.
#[derive(Debug)]
pub enum MessageBody<S> {
    /// Passed through from the other side as it arrives (read once).
    Stream(S),
    /// Complete and held by the proxy (`None` once sent, or empty);
    /// [`MessageBody::replay`] gives a fresh copy sharing the bytes.
    Full(Option<Bytes>),
    /// What was read of a stream (`None` once sent), then the rest of it:
    /// a body read in part to see whether it fits a limit, and too large.
    Prefixed(Option<Bytes>, S),
    /// A body compressed as it streams (a response through `compress`).
    Encoded(Box<Compressed<MessageBody<S>>>),
    /// A body read whole by `buffering`, its end in a temporary file.
    Spilled(Box<Spilled>),
    /// A gRPC-Web request body forwarded as gRPC (through `grpcWeb`).
    GrpcRequest(Box<GrpcRequest<MessageBody<S>>>),
    /// A gRPC answer on its way to a gRPC-Web client (through `grpcWeb`).
    GrpcWebResponse(Box<GrpcWebResponse<MessageBody<S>>>),
}

/// What a [`MessageBody`] streams from: says how a body the proxy cannot
/// decode ends.
pub trait BodySource: Body {
    /// The error a body that cannot be decoded ends with (a gRPC-Web text
    /// request that is not base64); `None` where the proxy decodes
    /// nothing (the body just ends).
    fn undecodable(reason: &'static str) -> Option<Self::Error>;
}

/// A request body on its way to the upstream: the client's, streamed, or
/// one the proxy holds.
pub type RequestBody = MessageBody<ClientBody>;

/// Why the client's request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The client sent a malformed body (a bad chunk) or went away.
    #[error("reading the request body: {0}")]
    Client(#[source] hyper::Error),
    /// The body did not arrive within the entrypoint's `readTimeout`.
    #[error("request body not received within readTimeout ({0:?})")]
    ReadTimeout(Duration),
    /// The body is not what its type says (a gRPC-Web text body that is
    /// not base64).
    #[error("malformed request body: {0}")]
    Malformed(&'static str),
}

/// The client's request body, streamed, with its read deadline.
#[derive(Debug)]
pub struct ClientBody {
    inner: Incoming,
    /// `None` for no limit (or a body already complete). Kept small: the
    /// request and its body are moved several times per request.
    deadline: Option<Deadline>,
}

/// When the body must have arrived, and the `readTimeout` it comes from
/// (whole milliseconds, for the error).
#[derive(Debug)]
enum Deadline {
    /// Not waited on yet.
    At(Instant, u32),
    /// The body was not all there: a timer armed for the deadline.
    Armed(Pin<Box<tokio::time::Sleep>>, u32),
}

impl ClientBody {
    /// `inner`, to be read within `read_timeout` of `head_read` (when the
    /// request head had arrived).
    pub fn new(inner: Incoming, head_read: Instant, read_timeout: Option<Duration>) -> Self {
        let deadline = read_timeout.filter(|_| !inner.is_end_stream()).map(|t| {
            let ms = u32::try_from(t.as_millis()).unwrap_or(u32::MAX);
            Deadline::At(head_read + t, ms)
        });
        Self { inner, deadline }
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BodyError;

    #[inline]
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(r) => Poll::Ready(r.map(|f| f.map_err(BodyError::Client))),
            Poll::Pending => {
                let Some(deadline) = &mut this.deadline else {
                    return Poll::Pending;
                };
                if let Deadline::At(at, ms) = *deadline {
                    let timer = tokio::time::sleep_until(tokio::time::Instant::from_std(at));
                    *deadline = Deadline::Armed(Box::pin(timer), ms);
                }
                let Deadline::Armed(timer, ms) = deadline else {
                    return Poll::Pending;
                };
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        let limit = Duration::from_millis(u64::from(*ms));
                        this.deadline = None;
                        Poll::Ready(Some(Err(BodyError::ReadTimeout(limit))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl BodySource for ClientBody {
    fn undecodable(reason: &'static str) -> Option<BodyError> {
        Some(BodyError::Malformed(reason))
    }
}

impl<S: BodySource<Data = Bytes> + Unpin> BodySource for MessageBody<S> {
    fn undecodable(reason: &'static str) -> Option<S::Error> {
        S::undecodable(reason)
    }
}

impl<S> MessageBody<S> {
    /// An empty body.
    pub fn empty() -> Self {
        MessageBody::Full(None)
    }

    /// A complete body of `bytes` (empty when `bytes` is).
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        MessageBody::Full((!bytes.is_empty()).then_some(bytes))
    }

    /// The bytes of a body held whole in memory and not sent yet.
    pub fn held_bytes(&self) -> Option<&Bytes> {
        match self {
            MessageBody::Full(Some(b)) => Some(b),
            _ => None,
        }
    }

    /// A copy to send again, when the body is held whole and not sent yet
    /// (a reference-count increment, not a copy of the bytes; a spilled
    /// body's file is shared and read again from its start); `None` for
    /// a stream, which can be read once only.
    pub fn replay(&self) -> Option<Self> {
        match self {
            MessageBody::Stream(_)
            | MessageBody::Prefixed(..)
            | MessageBody::Encoded(_)
            | MessageBody::GrpcRequest(_)
            | MessageBody::GrpcWebResponse(_) => None,
            MessageBody::Full(b) => Some(MessageBody::Full(b.clone())),
            MessageBody::Spilled(s) => Some(MessageBody::Spilled(Box::new(s.replay()))),
        }
    }
}

impl RequestBody {
    /// The body read whole (`Full`), or, past `limit` bytes, what was
    /// read followed by the rest (`Prefixed`); a body held already is
    /// returned as it is, but one `buffering` spilled to a file is read
    /// into memory when within `limit`, and one read in part under a
    /// smaller limit (a mirroring's `maxBodySize` above) is read on (for a
    /// failover, a mirror or `forwardAuth`, which keep bytes). Trailers
    /// are not kept: a held body is its data.
    pub async fn held(self, limit: Option<u64>) -> Result<RequestBody, BodyError> {
        let (mut stream, mut buf) = match self {
            MessageBody::Stream(s) => (s, BytesMut::new()),
            MessageBody::Spilled(s) if limit.is_none_or(|l| s.remaining() <= l) => {
                return Ok(MessageBody::full(s.read_all().await));
            }
            MessageBody::Prefixed(Some(read), s)
                if limit.is_none_or(|l| read.len() as u64 <= l) =>
            {
                (s, BytesMut::from(read))
            }
            other => return Ok(other),
        };
        loop {
            match poll_fn(|cx| Pin::new(&mut stream).poll_frame(cx)).await {
                None => return Ok(MessageBody::full(buf.freeze())),
                Some(Err(e)) => return Err(e),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        buf.extend_from_slice(&data);
                        if limit.is_some_and(|l| buf.len() as u64 > l) {
                            return Ok(MessageBody::Prefixed(Some(buf.freeze()), stream));
                        }
                    }
                }
            }
        }
    }
}

impl<S> Body for MessageBody<S>
where
    S: BodySource<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = S::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, S::Error>>> {
        match self.get_mut() {
            MessageBody::Stream(b) => Pin::new(b).poll_frame(cx),
            MessageBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            MessageBody::Prefixed(head, rest) => match head.take() {
                Some(b) => Poll::Ready(Some(Ok(Frame::data(b)))),
                None => Pin::new(rest).poll_frame(cx),
            },
            MessageBody::Encoded(c) => Pin::new(&mut **c).poll_frame(cx),
            MessageBody::Spilled(s) => s.poll_data(cx).map(|d| d.map(|b| Ok(Frame::data(b)))),
            MessageBody::GrpcRequest(g) => Pin::new(&mut **g).poll_frame(cx),
            MessageBody::GrpcWebResponse(g) => Pin::new(&mut **g).poll_frame(cx),
        }
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        match self {
            MessageBody::Stream(b) => b.is_end_stream(),
            MessageBody::Full(b) => b.is_none(),
            MessageBody::Prefixed(head, rest) => head.is_none() && rest.is_end_stream(),
            MessageBody::Encoded(c) => c.is_end_stream(),
            MessageBody::Spilled(s) => s.is_end(),
            MessageBody::GrpcRequest(g) => g.is_end_stream(),
            MessageBody::GrpcWebResponse(g) => g.is_end_stream(),
        }
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        match self {
            MessageBody::Stream(b) => b.size_hint(),
            MessageBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            MessageBody::Prefixed(head, rest) => {
                let n = head.as_ref().map_or(0, |b| b.len() as u64);
                let r = rest.size_hint();
                let mut h = SizeHint::new();
                h.set_lower(r.lower() + n);
                if let Some(u) = r.upper() {
                    h.set_upper(u + n);
                }
                h
            }
            MessageBody::Encoded(c) => c.size_hint(),
            MessageBody::Spilled(s) => SizeHint::with_exact(s.remaining()),
            MessageBody::GrpcRequest(g) => g.size_hint(),
            MessageBody::GrpcWebResponse(g) => g.size_hint(),
        }
    }
}
