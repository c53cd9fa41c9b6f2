//! `inFlightReq` at request time, as Traefik 3.7 (oxy's `connlimit`)
//! does it: a request whose source already has `amount` requests in
//! flight is answered `429` with `max connections reached: <amount>`;
//! otherwise it counts until its response has been sent to its last byte
//! (the count is held by the response body, [`Hold`], which also carries
//! a `circuitBreaker`'s measure of the answer to the body's end).
//!
//! Per request: the source's counter is found in the sharded table and
//! raised with a compare-and-swap (no lock of ours, no global lock); the
//! response body keeps a reference to it. A source's first request
//! allocates its entry. The counters live with the compiled middleware:
//! a reload starts them from zero, as Traefik's rebuilt handlers do.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{Request, Response, StatusCode};

use super::circuit_breaker::Measure;
use super::source::{self, Sources};
use super::{Frame, Inbound};
use crate::config::InFlightReq as Config;
use crate::forward::ProxyBody;
use crate::listener::ConnCtx;
use crate::upstream::{MessageBody, RequestBody};

/// Traefik's bound on the sources a limiter tracks.
pub(super) const MAX_SOURCES: usize = 65_536;

/// A compiled `inFlightReq`.
#[derive(Debug)]
pub struct InFlight {
    c: Config,
    counts: Sources<Arc<AtomicU64>>,
    refusal: Bytes,
}

/// What a response body holds until its last byte: a request counted in
/// flight (released when dropped), or a circuit breaker's measure of the
/// answer (recorded when dropped); chained with the others of the same
/// chain.
#[derive(Debug)]
pub struct Hold {
    what: Holding,
    next: Option<Box<Hold>>,
}

#[derive(Debug)]
enum Holding {
    InFlight(Arc<AtomicU64>),
    /// Kept for its `Drop`, which records the answer.
    Measure {
        _measure: Measure,
    },
}

impl Drop for Hold {
    fn drop(&mut self) {
        // A measure records itself when dropped.
        if let Holding::InFlight(count) = &self.what {
            count.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Hold {
    /// A circuit breaker's measure, taken when the body ends.
    pub(super) fn measure(m: Measure) -> Hold {
        Hold {
            what: Holding::Measure { _measure: m },
            next: None,
        }
    }

    /// `self`, also holding `other` (released with it).
    pub fn join(mut self, other: Option<Hold>) -> Hold {
        if let Some(o) = other {
            let mut tail = &mut self.next;
            while let Some(t) = tail {
                tail = &mut t.next;
            }
            *tail = Some(Box::new(o));
        }
        self
    }
}

impl InFlight {
    pub(super) fn new(c: &Config) -> Self {
        let refusal = Bytes::from(format!("max connections reached: {}", c.amount));
        Self {
            c: c.clone(),
            counts: Sources::new(MAX_SOURCES),
            refusal,
        }
    }

    pub(super) fn inbound(&self, req: Request<RequestBody>, conn: &ConnCtx) -> Inbound<Frame> {
        let key = source::key(&self.c.source, &req, conn);
        let entry = self.counts.get_or_insert(
            key.bytes(),
            || Arc::new(AtomicU64::new(0)),
            |c| Arc::strong_count(c) == 1 && c.load(Ordering::Acquire) == 0,
        );
        let amount = self.c.amount;
        let taken = entry
            .value()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < amount).then_some(n + 1)
            })
            .is_ok();
        if !taken {
            drop(entry);
            let mut resp = Response::new(ProxyBody::full(self.refusal.clone()));
            // No Content-Type, as oxy writes the status first.
            *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            return Inbound::Answer(resp);
        }
        let hold = Hold {
            what: Holding::InFlight(Arc::clone(entry.value())),
            next: None,
        };
        Inbound::Next(req, Frame::InFlight(hold))
    }

    /// The response carries the hold to its last byte; an answer without
    /// an upstream body (an error, a page the proxy wrote) releases it now.
    pub(super) fn outbound(resp: &mut Response<ProxyBody>, hold: Hold) {
        carry(resp.body_mut(), hold);
    }
}

/// `body` keeps `hold` to its end (the upstream body under a compressed
/// one); a body held whole releases it now.
pub(super) fn carry(body: &mut ProxyBody, hold: Hold) {
    match body {
        MessageBody::Stream(b) | MessageBody::Prefixed(_, b) => b.hold(hold),
        MessageBody::Encoded(c) => carry(c.inner_mut(), hold),
        MessageBody::GrpcWebResponse(g) => carry(g.inner_mut(), hold),
        // A request body is never a response's.
        MessageBody::Full(_) | MessageBody::Spilled(_) | MessageBody::GrpcRequest(_) => drop(hold),
    }
}
