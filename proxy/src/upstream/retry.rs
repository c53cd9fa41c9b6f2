//! The transport's retry, as Go's `http.Transport` does it: a request that
//! failed on a **reused** connection before any byte of the response
//! arrived goes once more, on a new connection to the same server, when
//! that is safe: the request was not written at all, or it can be written
//! again (an idempotent method with no body or a held one). Trying another
//! server is the `retry` middleware's job, not this one's.
//!
//! Runs per request sent on a reused connection that was idle for at
//! least [`COPY_AFTER_IDLE`]: the request head kept as a list of its
//! header fields (clones of their names and values, reference counts, no
//! hashing) in a vector this worker reuses (no allocation once warm),
//! dropped when the response head arrives. No lock: the spare vectors are
//! a thread-local.

use std::cell::RefCell;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};
use hyper::body::Body;

use super::body::RequestBody;

thread_local! {
    /// Field lists of copies no longer needed, kept for the next copy.
    static SPARE: RefCell<Vec<Fields>> = const { RefCell::new(Vec::new()) };
}

/// A request's header fields, in order.
type Fields = Vec<(HeaderName, HeaderValue)>;

/// A request goes on a connection idle for less than this without a copy
/// to resend: a backend closes a kept-alive connection on its idle clock
/// (Node 5 s, gunicorn 2 s, Apache 5 s, nginx 75 s; tens of milliseconds
/// at the very least), so a connection that answered less than 10 ms ago
/// is not the one it closes, and a busy connection is spared the copy
/// (about 900 instructions, +2.4% of a proxied request, measured with the
/// counts gate; 10 ms also keeps the gate's loopback requests, idle about
/// a millisecond under callgrind, on the same side of the line every run).
/// A request on a connection that the backend closes outright, not on its
/// idle clock, is then not sent again: that is a backend failure, 502.
/// (hyper's `try_send_request` gives a request back only when none of it
/// was written, which the retry uses, copy or not.)
pub(super) const COPY_AFTER_IDLE: std::time::Duration = std::time::Duration::from_millis(10);

/// Spare lists kept per worker: one per request in flight on a reused
/// connection is the steady state, a few cover bursts.
const MAX_SPARE: usize = 64;

/// Go's `isReplayable`: a method that does no harm twice (or a request
/// that carries an idempotency key), with no body or a body the proxy
/// holds.
pub(super) fn replayable(req: &Request<RequestBody>) -> bool {
    let idempotent = matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) || req.headers().contains_key("idempotency-key")
        || req.headers().contains_key("x-idempotency-key");
    idempotent && (req.body().is_end_stream() || req.body().replay().is_some())
}

/// What it takes to send a request again; its field list goes back to
/// this worker when it is dropped.
#[derive(Debug)]
pub(super) struct Resend {
    method: Method,
    uri: Uri,
    version: Version,
    fields: Fields,
    body: RequestBody,
}

/// A copy of `req` to send again if the reused connection it is about to
/// go on turns out dead; `None` when it may not go twice.
pub(super) fn resend_copy(req: &Request<RequestBody>) -> Option<Resend> {
    if !replayable(req) {
        return None;
    }
    let mut fields = SPARE.with(|s| s.borrow_mut().pop()).unwrap_or_default();
    fields.extend(req.headers().iter().map(|(n, v)| (n.clone(), v.clone())));
    Some(Resend {
        method: req.method().clone(),
        uri: req.uri().clone(),
        version: req.version(),
        fields,
        body: req.body().replay().unwrap_or_else(RequestBody::empty),
    })
}

impl Resend {
    /// The request, to send again (only now is a header map built).
    pub(super) fn into_request(mut self) -> Request<RequestBody> {
        let mut headers = HeaderMap::with_capacity(self.fields.len());
        for (name, value) in self.fields.drain(..) {
            headers.append(name, value);
        }
        let mut req = Request::new(std::mem::replace(&mut self.body, RequestBody::empty()));
        *req.method_mut() = std::mem::take(&mut self.method);
        *req.uri_mut() = std::mem::take(&mut self.uri);
        *req.version_mut() = self.version;
        *req.headers_mut() = headers;
        req
    }
}

impl Drop for Resend {
    fn drop(&mut self) {
        let mut fields = std::mem::take(&mut self.fields);
        fields.clear();
        SPARE.with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < MAX_SPARE {
                s.push(fields);
            }
        });
    }
}

/// Whether `e`, on a connection the request was written to, means the
/// server closed or reset it before answering (Go's "nothing read from
/// server"), rather than a malformed or partial answer.
pub(super) fn closed_before_response(e: &hyper::Error) -> bool {
    if e.is_incomplete_message() || e.is_canceled() {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return connection_closed(io);
        }
        source = s.source();
    }
    false
}

/// Whether the I/O error `e` means the server closed or reset the
/// connection (Go's "nothing read from server" when no answer came).
pub(super) fn connection_closed(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::UnexpectedEof
    )
}

/// Whether `e` says the HTTP/2 server did not process the stream: reset
/// with `REFUSED_STREAM` (RFC 9113 §8.7: safe to retry), or ended by the
/// server's `GOAWAY` (a stream above its last stream id; one at or below it
/// that the server then dropped is treated alike, which only a request
/// that may go twice is exposed to).
pub(super) fn refused_stream(e: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(h2) = s.downcast_ref::<h2::Error>() {
            return h2.reason() == Some(h2::Reason::REFUSED_STREAM)
                || (h2.is_go_away() && h2.is_remote());
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, body: RequestBody) -> Request<RequestBody> {
        let mut r = Request::new(body);
        *r.method_mut() = method;
        r.headers_mut().insert("host", "b.test".parse().unwrap());
        r.headers_mut().append("accept", "a".parse().unwrap());
        r.headers_mut().append("accept", "b".parse().unwrap());
        r
    }

    #[test]
    fn only_requests_that_may_go_twice_are_copied_whole() {
        let copy = resend_copy(&req(Method::GET, RequestBody::empty()))
            .expect("GET")
            .into_request();
        assert_eq!(copy.method(), Method::GET);
        let accepts: Vec<_> = copy.headers().get_all("accept").iter().collect();
        assert_eq!(accepts, ["a", "b"]);
        assert_eq!(copy.headers()["host"], "b.test");
        // The spare list is reused, empty.
        assert_eq!(SPARE.with(|s| s.borrow().len()), 1);
        let again = resend_copy(&req(Method::HEAD, RequestBody::full("held"))).expect("HEAD");
        assert_eq!(SPARE.with(|s| s.borrow().len()), 0);
        let again = again.into_request();
        assert_eq!(again.headers().len(), 3);
        assert!(!again.body().is_end_stream(), "the held body is replayed");

        assert!(resend_copy(&req(Method::POST, RequestBody::empty())).is_none());
        let mut keyed = req(Method::POST, RequestBody::full("x"));
        keyed
            .headers_mut()
            .insert("idempotency-key", "k1".parse().unwrap());
        assert!(
            resend_copy(&keyed).is_some(),
            "an idempotency key makes POST replayable"
        );
    }
}
