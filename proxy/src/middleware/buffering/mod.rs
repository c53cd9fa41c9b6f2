//! `buffering` at request time, as Traefik 3.7 runs oxy's `buffer`:
//! - the request: a `Content-Length` over `maxRequestBodyBytes` is
//!   answered 413 at once; otherwise the body is read whole before
//!   anything is sent on (in memory up to `memRequestBodyBytes`, the rest
//!   in a temporary file, [`spill`]), 413 as soon as it passes the
//!   maximum; it goes on with its length (`Content-Length`, no chunking);
//! - the response: read whole the same way before anything of it goes to
//!   the client (not for HEAD, 1xx, 204, 304, `Content-Length: 0` or a
//!   gRPC error), a body over `maxResponseBodyBytes` answered 500;
//! - `retryExpression`: after each attempt, while it holds (at most 10
//!   retries, and only for a request with a body, as oxy), the request
//!   goes through the rest of the chain and the service again, its body
//!   replayed from memory and file.
//!
//! Per request through a `buffering`: the body is held (a copy of the
//! request head per retry when `retryExpression` is set); a body past
//! the memory limit costs a temporary file, written and read on tokio's
//! blocking pool. Nothing here runs for routers without it.

mod spill;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};

pub use spill::Spilled;

use self::spill::{Overflow, hold};
use super::retry::copy;
use super::{Frame, Inbound, Outbound, Served, text_answer};
use crate::config::{Buffering as Config, RetryCondition};
use crate::forward::ProxyBody;
use crate::upstream::{BodyError, RequestBody};

/// oxy's `DefaultMaxRetryAttempts`.
const MAX_RETRIES: u32 = 10;

/// A compiled `buffering`.
#[derive(Debug)]
pub struct Buffering {
    c: Config,
}

/// What the way out needs: the request to send again, the attempt and
/// the method.
#[derive(Debug)]
pub struct Pending {
    again: Option<Request<RequestBody>>,
    attempt: u32,
    method: Method,
}

impl Buffering {
    pub(super) fn new(c: &Config) -> Self {
        Self { c: c.clone() }
    }

    pub(super) async fn inbound(&self, req: Request<RequestBody>) -> Inbound<Frame> {
        let c = &self.c;
        if let Some(max) = c.max_request {
            let declared = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            if declared.is_some_and(|n| n > max) {
                return Inbound::Answer(text_answer(StatusCode::PAYLOAD_TOO_LARGE));
            }
        }
        let (mut parts, body) = req.into_parts();
        let held = match hold(body, c.request_memory(), c.max_request).await {
            Ok(h) => h,
            Err(Overflow::TooLarge) => {
                return Inbound::Answer(text_answer(StatusCode::PAYLOAD_TOO_LARGE));
            }
            Err(Overflow::Body(e)) => {
                tracing::debug!(error = %e, "buffering: reading the request body");
                let status = match e {
                    BodyError::ReadTimeout(_) => StatusCode::REQUEST_TIMEOUT,
                    BodyError::Client(_) | BodyError::Malformed(_) => StatusCode::BAD_REQUEST,
                };
                return Inbound::Answer(text_answer(status));
            }
            Err(Overflow::Disk(e)) => {
                tracing::error!(error = %e, "buffering: holding the request body");
                return Inbound::Answer(text_answer(StatusCode::INTERNAL_SERVER_ERROR));
            }
        };
        // Sent on with its length, as oxy's copy of the request (Go sends
        // a zero length for every method but GET and HEAD).
        let total = held.len();
        let h = &mut parts.headers;
        h.remove(header::TRANSFER_ENCODING);
        if total > 0 || !matches!(parts.method, Method::GET | Method::HEAD) {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
        } else {
            h.remove(header::CONTENT_LENGTH);
        }
        let method = parts.method.clone();
        let req = Request::from_parts(parts, held.into_body());
        let again = if c.retry.is_some() && total > 0 {
            copy(&req)
        } else {
            None
        };
        Inbound::Next(
            req,
            Frame::Buffering(Box::new(Pending {
                again,
                attempt: 1,
                method,
            })),
        )
    }

    pub(super) async fn outbound(&self, served: Served, mut p: Box<Pending>) -> Outbound<Frame> {
        let c = &self.c;
        let served = match served {
            Ok(resp) if expects_body(&p.method, &resp) => {
                let (parts, body) = resp.into_parts();
                match hold(body, c.response_memory(), c.max_response).await {
                    Ok(h) => Ok(Response::from_parts(parts, h.into_body())),
                    // oxy answers the writer's error, before any retry.
                    Err(Overflow::TooLarge) => {
                        return Outbound::Done(Ok(text_answer(StatusCode::INTERNAL_SERVER_ERROR)));
                    }
                    Err(Overflow::Disk(e)) => {
                        tracing::error!(error = %e, "buffering: holding the response body");
                        return Outbound::Done(Ok(text_answer(StatusCode::INTERNAL_SERVER_ERROR)));
                    }
                    Err(Overflow::Body(e)) => {
                        tracing::debug!(error = %e, "buffering: reading the response body");
                        Ok(text_answer(StatusCode::BAD_GATEWAY))
                    }
                }
            }
            other => other,
        };
        let Some(cond) = &c.retry else {
            return Outbound::Done(served);
        };
        let code = match &served {
            Ok(r) => r.status(),
            Err(e) => e.status(),
        };
        if p.again.is_none()
            || p.attempt > MAX_RETRIES
            || !holds(cond, p.attempt, code.as_u16(), &p.method)
        {
            return Outbound::Done(served);
        }
        drop(served);
        let Some(next) = p.again.take() else {
            unreachable!("checked above");
        };
        p.again = copy(&next);
        p.attempt += 1;
        tracing::debug!(attempt = p.attempt, "buffering: retry");
        Outbound::Again(next, Frame::Buffering(p))
    }
}

/// oxy's `expectBody`: whether the response has a body to buffer.
fn expects_body(method: &Method, resp: &Response<ProxyBody>) -> bool {
    let s = resp.status().as_u16();
    if *method == Method::HEAD || (100..200).contains(&s) || s == 204 || s == 304 {
        return false;
    }
    let h = resp.headers();
    if h.get(header::CONTENT_LENGTH).is_some_and(|v| v == "0") {
        return false;
    }
    !h.get("grpc-status")
        .is_some_and(|v| !v.is_empty() && v != "0")
}

/// Whether `c` holds after attempt `attempt` answered `code`.
fn holds(c: &RetryCondition, attempt: u32, code: u16, method: &Method) -> bool {
    match c {
        RetryCondition::And(a, b) => {
            holds(a, attempt, code, method) && holds(b, attempt, code, method)
        }
        RetryCondition::Or(a, b) => {
            holds(a, attempt, code, method) || holds(b, attempt, code, method)
        }
        RetryCondition::NetworkError => code == 502 || code == 504,
        RetryCondition::Attempts(op, n) => op.holds(i64::from(attempt), *n),
        RetryCondition::ResponseCode(op, n) => op.holds(i64::from(code), *n),
        RetryCondition::Method(eq, m) => (method.as_str() == m) == *eq,
    }
}

#[cfg(test)]
mod tests;
