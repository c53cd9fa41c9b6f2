//! The response body as a client connection serves it: [`ServedBody`]
//! keeps its request in flight (for the idle and read watchdog, and the
//! drain) until the body has ended or been dropped, not merely until its
//! headers exist, so a long stream (server-sent events, a slow download,
//! a gRPC stream) is never taken for an idle connection. It also counts
//! the body's bytes, and its end finishes the request's metrics and
//! access-log record when one waits (`ConnCtx::record_at_end`): durations
//! to the last byte. The record stays with the connection, not in the
//! body, so that the body hyper moves about stays small.
//!
//! Runs per response frame: a match and a `Cell` update on the
//! connection's own worker; no lock, no allocation, no `dyn`.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use super::conn::InFlight;
use crate::forward::ProxyBody;

/// A response body that holds its request in flight until it ends.
#[derive(Debug)]
pub struct ServedBody {
    inner: ProxyBody,
    /// Dropped with the body's end (or the body).
    in_flight: Option<InFlight>,
}

impl ServedBody {
    /// `inner`, keeping `in_flight` until its last frame (or its drop).
    pub(super) fn new(inner: ProxyBody, in_flight: InFlight) -> Self {
        // A body that is already over (a 204, a 404 the proxy wrote, a
        // 101 whose tunnel runs on its own) ends the request now.
        let in_flight = (!inner.is_end_stream()).then_some(in_flight);
        Self { inner, in_flight }
    }
}

impl Body for ServedBody {
    type Data = Bytes;
    type Error = crate::upstream::UpstreamFailure;

    #[inline]
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, crate::upstream::UpstreamFailure>>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        match &r {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(f), Some(d)) = (this.in_flight.as_mut(), frame.data_ref()) {
                    f.sent(d.len());
                }
                if this.inner.is_end_stream() {
                    this.in_flight = None;
                }
            }
            // The end, or a body that failed: the request is over. (A body
            // dropped before its end, when the client went away or hyper
            // sends none for a HEAD, drops `in_flight` with it: recorded
            // with what was sent.)
            Poll::Ready(_) => this.in_flight = None,
            Poll::Pending => {}
        }
        r
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
