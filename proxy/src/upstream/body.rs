//! The bodies that pass through the proxy, both ways: [`RequestBody`] on
//! its way to the upstream, and `forward::ProxyBody` on its way to the
//! client. Each is a stream from the other side passed through as it
//! arrives, or a complete body the proxy holds: one it produced (a 404, a
//! 502), or one kept so it can be sent again (a retry, a mirror, a
//! buffered request).
//!
//! An enum, not a boxed trait object, so body polling is statically
//! dispatched (decision 4). Runs per request: a match per frame, no
//! allocation.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

/// A body streamed from `S`, or held whole.
#[derive(Debug)]
pub enum MessageBody<S> {
    /// Passed through from the other side as it arrives (read once).
    Stream(S),
    /// Complete and held by the proxy (`None` once sent, or empty);
    /// [`MessageBody::replay`] gives a fresh copy sharing the bytes.
    Full(Option<Bytes>),
}

/// A request body on its way to the upstream: the client's, streamed, or
/// one the proxy holds.
pub type RequestBody = MessageBody<Incoming>;

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

    /// A copy to send again, when the body is held whole and not sent yet
    /// (a reference-count increment, not a copy of the bytes); `None` for
    /// a stream, which can be read once only.
    pub fn replay(&self) -> Option<Self> {
        match self {
            MessageBody::Stream(_) => None,
            MessageBody::Full(b) => Some(MessageBody::Full(b.clone())),
        }
    }
}

impl<S> Body for MessageBody<S>
where
    S: Body<Data = Bytes, Error = hyper::Error> + Unpin,
{
    type Data = Bytes;
    type Error = hyper::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            MessageBody::Stream(b) => Pin::new(b).poll_frame(cx),
            MessageBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        match self {
            MessageBody::Stream(b) => b.is_end_stream(),
            MessageBody::Full(b) => b.is_none(),
        }
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        match self {
            MessageBody::Stream(b) => b.size_hint(),
            MessageBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}
