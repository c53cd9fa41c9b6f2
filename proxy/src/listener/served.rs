//! The response body as a client connection serves it: [`ServedBody`]
//! keeps its request in flight (for the idle and read watchdog, and the
//! drain) until the body has ended or been dropped, not merely until its
//! headers exist, so a long stream (server-sent events, a slow download,
//! a gRPC stream) is never taken for an idle connection. It also counts
//! the body's bytes and, at its end, finishes the request's metrics and
//! access-log record (`forward::Finish`): durations to the last byte.
//!
//! Runs per response frame: a match and a `Cell` update on the
//! connection's own worker; no lock, no allocation, no `dyn`.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use super::conn::InFlight;
use crate::forward::{Finish, ProxyBody};

/// A response body that holds its request in flight until it ends.
#[derive(Debug)]
pub struct ServedBody {
    inner: ProxyBody,
    tail: Option<Tail>,
}

/// What ends with the body.
#[derive(Debug)]
struct Tail {
    in_flight: InFlight,
    finish: Option<Finish>,
    bytes: u64,
}

impl Tail {
    fn end(self) {
        if let Some(f) = self.finish {
            f.done(self.in_flight.conn(), self.bytes);
        }
    }
}

impl ServedBody {
    /// `inner`, keeping `in_flight` until its last frame (or its drop),
    /// then finishing the request's record.
    pub(super) fn new(inner: ProxyBody, in_flight: InFlight, finish: Option<Finish>) -> Self {
        let tail = Tail {
            in_flight,
            finish,
            bytes: 0,
        };
        // A body that is already over (a 204, a 404 the proxy wrote, a
        // 101 whose tunnel runs on its own) ends the request now.
        if inner.is_end_stream() {
            tail.end();
            return Self { inner, tail: None };
        }
        Self {
            inner,
            tail: Some(tail),
        }
    }
}

impl Drop for ServedBody {
    fn drop(&mut self) {
        // Dropped before its end: the client went away, or hyper sends no
        // body (HEAD). Recorded with what was sent.
        if let Some(t) = self.tail.take() {
            t.end();
        }
    }
}

impl Body for ServedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    #[inline]
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        match &r {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(t), Some(d)) = (this.tail.as_mut(), frame.data_ref()) {
                    t.bytes += d.len() as u64;
                }
                if this.inner.is_end_stream()
                    && let Some(t) = this.tail.take()
                {
                    t.end();
                }
            }
            Poll::Ready(_) => {
                if let Some(t) = this.tail.take() {
                    t.end();
                }
            }
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
