//! The transport's retry, as Go's `http.Transport` does it: a request that
//! failed on a **reused** connection before any byte of the response
//! arrived goes once more, on a new connection to the same server, when
//! that is safe: the request was not written at all, or it can be written
//! again (an idempotent method with no body or a held one). Trying another
//! server is the `retry` middleware's job, not this one's.
//!
//! Runs per request sent on a reused connection that was idle for at
//! least [`COPY_AFTER_IDLE`]: a copy of the request head into a header map
//! this worker keeps for the purpose (its capacity reused, so no
//! allocation once warm), returned when the response head arrives. No
//! lock: the spare maps are a thread-local.

use std::cell::RefCell;

use http::{HeaderMap, Method, Request};
use hyper::body::Body;

use super::body::RequestBody;

thread_local! {
    /// Header maps of copies no longer needed, kept for the next copy.
    static SPARE: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
}

/// A request goes on a connection idle for less than this without a copy
/// to resend: a backend closes a kept-alive connection on its idle clock
/// (Node 5 s, gunicorn 2 s, nginx 75 s; tens of milliseconds at the very
/// least), so a connection that answered a moment ago is not the one it
/// closes, and a busy connection is spared the copy (about 3,000
/// instructions, +8% of a proxied request, measured with the counts
/// gate). A request on a connection that the backend closes outright, not
/// on its idle clock, is then not sent again: that is a backend failure,
/// 502.
pub(super) const COPY_AFTER_IDLE: std::time::Duration = std::time::Duration::from_millis(1);

/// Spare maps kept per worker: one per request in flight on a reused
/// connection is the steady state, a few cover bursts.
const MAX_SPARE: usize = 64;

/// Go's `isReplayable`: a method that does no harm twice (or a request
/// that carries an idempotency key), with no body or a body the proxy
/// holds.
fn replayable(req: &Request<RequestBody>) -> bool {
    let idempotent = matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) || req.headers().contains_key("idempotency-key")
        || req.headers().contains_key("x-idempotency-key");
    idempotent && (req.body().is_end_stream() || req.body().replay().is_some())
}

/// A copy of `req` to send again if the reused connection it is about to
/// go on turns out dead; `None` when it may not go twice.
pub(super) fn resend_copy(req: &Request<RequestBody>) -> Option<Request<RequestBody>> {
    if !replayable(req) {
        return None;
    }
    let body = req.body().replay().unwrap_or_else(RequestBody::empty);
    let mut headers = SPARE.with(|s| s.borrow_mut().pop()).unwrap_or_default();
    for (name, value) in req.headers() {
        headers.append(name.clone(), value.clone());
    }
    let mut copy = Request::new(body);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = headers;
    Some(copy)
}

/// The copy was not needed: its header map goes back to this worker.
pub(super) fn discard(copy: Request<RequestBody>) {
    let (mut parts, _) = copy.into_parts();
    parts.headers.clear();
    SPARE.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < MAX_SPARE {
            s.push(parts.headers);
        }
    });
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
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            );
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
        let copy = resend_copy(&req(Method::GET, RequestBody::empty())).expect("GET");
        assert_eq!(copy.method(), Method::GET);
        let accepts: Vec<_> = copy.headers().get_all("accept").iter().collect();
        assert_eq!(accepts, ["a", "b"]);
        assert_eq!(copy.headers()["host"], "b.test");
        discard(copy);
        // The spare map is reused, empty.
        let again = resend_copy(&req(Method::HEAD, RequestBody::full("held"))).expect("HEAD");
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
