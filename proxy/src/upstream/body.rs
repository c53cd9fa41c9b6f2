//! The request body sent to an upstream: the client's body streamed
//! through as it arrives, or a body the proxy holds whole, which can be
//! sent again (a retry, a mirror, a buffered request).
//!
//! An enum, not a boxed trait object, so the upstream connection's body
//! polling is statically dispatched (decision 4). Runs per request: a
//! match per frame, no allocation.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

/// A request body on its way to the upstream.
#[derive(Debug)]
pub enum RequestBody {
    /// The client's body, streamed (neither buffered nor replayable).
    Incoming(Incoming),
    /// A complete body held by the proxy (`None` once sent, or empty);
    /// [`RequestBody::replay`] gives a fresh copy sharing the bytes.
    Full(Option<Bytes>),
}

impl RequestBody {
    /// A complete body of `bytes` (empty when `bytes` is).
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        RequestBody::Full((!bytes.is_empty()).then_some(bytes))
    }

    /// A copy to send again, when the body is held whole and not sent yet
    /// (a reference-count increment, not a copy of the bytes); `None` for
    /// a streamed body, which can be read once only.
    pub fn replay(&self) -> Option<RequestBody> {
        match self {
            RequestBody::Incoming(_) => None,
            RequestBody::Full(b) => Some(RequestBody::Full(b.clone())),
        }
    }
}

impl From<Incoming> for RequestBody {
    #[inline]
    fn from(body: Incoming) -> Self {
        RequestBody::Incoming(body)
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            RequestBody::Incoming(b) => Pin::new(b).poll_frame(cx),
            RequestBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Incoming(b) => b.is_end_stream(),
            RequestBody::Full(b) => b.is_none(),
        }
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Incoming(b) => b.size_hint(),
            RequestBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}
