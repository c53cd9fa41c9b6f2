//! `retry` at request time, as Traefik 3.7 does it: the rest of the chain
//! and the service are called again (the load balancer picks again, so
//! another server) up to `attempts` times in all, while
//! - the upstream could not be reached with the request unsent (a refused
//!   or failed dial, a handshake error), whatever the method, unless
//!   `disableRetryOnNetworkError`; or
//! - the answer's status (an upstream error's 502/504, a 503 of no
//!   server, or a response's) is in `status`, for every method but POST,
//!   PATCH and LOCK (all with `retryNonIdempotentMethod`);
//!
//! and `timeout` since the first attempt has not passed. The waits
//! between attempts follow Traefik's exponential backoff (from
//! `initialInterval`, growing to twice it by the last attempt, each
//! randomised by ±50%; none without `initialInterval`). A response is
//! retried only before anything of it went to the client: the chain's
//! way out sees its head before it is sent, and a retried one is dropped.
//!
//! The body is kept to be sent again: a request without one costs
//! nothing, one up to `maxRequestBodyBytes` is read whole first; a larger
//! one is sent as it streams and not retried (Traefik retries it on a
//! network error, whose attempt did not read it; ours has consumed it).
//!
//! Per request through a retry: the request head is copied once for the
//! attempts to come; a wait arms one boxed timer.

use std::time::{Duration, Instant};

use http::{Method, Request, StatusCode};
use hyper::body::Body;

use super::{Frame, Inbound, Outbound, Served};
use crate::config::Retry as Config;
use crate::forward::ProxyBody;
use crate::upstream::{ErrorSource, MessageBody, RequestBody};

/// A compiled `retry`.
#[derive(Debug)]
pub struct Retry {
    c: Config,
    /// The backoff's growth per attempt: 2^(1/(attempts-1)).
    multiplier: f64,
}

/// What the attempts to come need.
#[derive(Debug)]
pub struct Attempts {
    /// The request as it entered, to send again (`None`: not retried).
    again: Option<Request<RequestBody>>,
    /// Attempts made so far.
    made: u32,
    /// Whether statuses are retried (not for a non-idempotent method).
    statuses: bool,
    started: Instant,
    /// The backoff's next interval before randomisation.
    interval: Duration,
}

/// The most Traefik's backoff waits between two attempts.
const MAX_INTERVAL: Duration = Duration::from_secs(60);

impl Retry {
    pub(super) fn new(c: &Config) -> Self {
        let multiplier = if c.attempts > 1 {
            2f64.powf(1.0 / f64::from(c.attempts - 1))
        } else {
            1.0
        };
        Self {
            c: c.clone(),
            multiplier,
        }
    }

    pub(super) async fn inbound(&self, req: Request<RequestBody>) -> Inbound<Frame> {
        let c = &self.c;
        if c.attempts == 1 {
            return Inbound::Next(req, Frame::Pass);
        }
        let idempotent = !matches!(req.method(), &Method::POST | &Method::PATCH)
            && req.method().as_str() != "LOCK";
        let statuses = (c.non_idempotent || idempotent) && !c.status.is_empty();
        let (parts, body) = req.into_parts();
        let body = if body.is_end_stream() {
            RequestBody::empty()
        } else {
            let limit = u64::try_from(c.max_body).ok();
            match body.held(limit).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::debug!(error = %e, "retry: reading the request body failed");
                    return Inbound::Answer(status_only(StatusCode::INTERNAL_SERVER_ERROR));
                }
            }
        };
        let req = Request::from_parts(parts, body);
        let again = copy(&req);
        let frame = Attempts {
            again,
            made: 1,
            statuses,
            started: Instant::now(),
            interval: c.initial_interval,
        };
        Inbound::Next(req, Frame::Retry(Box::new(frame)))
    }

    pub(super) async fn outbound(&self, served: Served, mut a: Box<Attempts>) -> Outbound<Frame> {
        let c = &self.c;
        let timed_out = !c.timeout.is_zero() && a.started.elapsed() >= c.timeout;
        if a.made >= c.attempts || timed_out || a.again.is_none() {
            return Outbound::Done(served);
        }
        let status = |s: StatusCode| a.statuses && c.status.contains(s.as_u16());
        let retry = match &served {
            Ok(resp) => resp.status() != StatusCode::SWITCHING_PROTOCOLS && status(resp.status()),
            Err(e) => {
                let unsent = e.source_side() == ErrorSource::Upstream && !e.reached_upstream();
                (unsent && !c.disable_on_network_error) || status(e.status())
            }
        };
        if !retry {
            return Outbound::Done(served);
        }
        // The failed answer is dropped unread: nothing of it was sent.
        drop(served);
        let Some(next) = a.again.take() else {
            unreachable!("checked above");
        };
        a.again = copy(&next);
        a.made += 1;
        if !a.interval.is_zero() {
            let wait = randomised(a.interval);
            a.interval = a.interval.mul_f64(self.multiplier).min(MAX_INTERVAL);
            Box::pin(tokio::time::sleep(wait)).await;
        }
        tracing::debug!(attempt = a.made, "retry: new attempt");
        Outbound::Again(next, Frame::Retry(a))
    }
}

/// A copy of `req` to send again, when its body can be (`None` for a
/// body too large to keep).
pub(super) fn copy(req: &Request<RequestBody>) -> Option<Request<RequestBody>> {
    let body = req.body().replay()?;
    let mut copy = Request::new(body);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    Some(copy)
}

/// `interval` ±50%, as Go's backoff randomises it (the clock's nanoseconds
/// as the draw: no generator to share between threads).
fn randomised(interval: Duration) -> Duration {
    let nanos = Instant::now().elapsed().subsec_nanos()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    let draw = f64::from(nanos % 1_000_000) / 1_000_000.0;
    interval.mul_f64(0.5 + draw)
}

fn status_only(status: StatusCode) -> http::Response<ProxyBody> {
    let mut resp = http::Response::new(MessageBody::full(status.canonical_reason().unwrap_or("")));
    *resp.status_mut() = status;
    resp
}
