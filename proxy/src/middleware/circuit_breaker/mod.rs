//! `circuitBreaker` at request time, as Traefik 3.7 runs oxy's
//! `cbreaker`:
//! - standby (closed): requests go through; each answer is measured
//!   ([`metrics`]) and, at most once per `checkPeriod`, the expression is
//!   evaluated over the window; when it holds the breaker trips and the
//!   measurements are forgotten;
//! - tripped (open): for `fallbackDuration` every request is answered
//!   `responseCode` with its status text, nothing is sent on;
//! - recovering: for `recoveryDuration` a growing share of requests goes
//!   through — a request is let through while the let-through ratio, it
//!   included, stays under `0.5 × elapsed / recoveryDuration` (oxy's
//!   ratio controller) — the others get the fallback; the answers are
//!   measured and checked as in standby, so a condition that holds again
//!   trips it again; once the duration has passed it is standby.
//!
//! The answer measured is what the way out sees: a response's status, or
//! the 502/503/504 an upstream failure is answered with; it is recorded,
//! with the latency from the way in, once the response body has been
//! read to its end (or dropped), as oxy records after its handler wrote
//! the whole response (the body carries a [`Measure`]).
//!
//! State without a lock: the state and its deadline are one atomic word,
//! the recovering ramp's counts another, the last check a third; the one
//! request that wins the check's compare-and-swap evaluates the
//! expression. All of it belongs to this compiled middleware (one per
//! router using it, as Traefik builds one per router; the bodies being
//! measured share it); a reload starts it afresh in standby, as
//! Traefik's rebuilt handlers do. Per request through a breaker: one
//! reference-count increment for the body's measure.

mod metrics;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};

use self::metrics::Metrics;
use super::in_flight::{Hold, carry};
use super::{Frame, Inbound, Served, text_answer};
use crate::config::{CircuitBreaker as Config, CmpOp, Condition, Metric, Threshold};
use crate::forward::ProxyBody;
use crate::upstream::RequestBody;

const STANDBY: u64 = 0;
const TRIPPED: u64 = 1;
const RECOVERING: u64 = 2;

/// The expression with its `ResponseCodeRatio` ranges as counter indexes.
#[derive(Debug)]
enum Check {
    And(Box<Check>, Box<Check>),
    Or(Box<Check>, Box<Check>),
    NetworkErrors(CmpOp, f64),
    Codes(usize, usize, CmpOp, f64),
    Latency(f64, CmpOp, i64),
}

/// A compiled `circuitBreaker`: its state, shared with the response
/// bodies still measured.
#[derive(Debug)]
pub struct CircuitBreaker(Arc<Shared>);

/// What a breaker keeps.
#[derive(Debug)]
struct Shared {
    check: Check,
    metrics: Metrics,
    check_period: u64,
    fallback_duration: u64,
    recovery_duration: u64,
    status: StatusCode,
    /// The breaker's clock: nanoseconds from here.
    epoch: Instant,
    /// `deadline << 2 | state` (the deadline of tripped or recovering).
    state: AtomicU64,
    /// The recovering ramp: `let through << 32 | refused`.
    ramp: AtomicU64,
    /// No check before this (ns).
    next_check: AtomicU64,
}

/// When a request let through entered the breaker.
#[derive(Debug)]
pub struct Entered(Instant);

/// An answer being sent: recorded (and the condition checked) when
/// dropped, with the response body at its end, as oxy records once its
/// handler has written the whole response.
#[derive(Debug)]
pub(super) struct Measure {
    breaker: Arc<Shared>,
    status: u16,
    entered: Instant,
}

impl Drop for Measure {
    fn drop(&mut self) {
        let micros = u64::try_from(self.entered.elapsed().as_micros()).unwrap_or(u64::MAX);
        let now = self.breaker.now();
        self.breaker.observe(self.status, micros, now);
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `d` after `now`, as the state word holds it (62 bits: 146 years).
fn deadline(now: u64, d: u64) -> u64 {
    now.saturating_add(d).min(u64::MAX >> 2)
}

/// `c` with its ranges put in `ranges` (each once), and whether it reads
/// latencies.
fn compile(c: &Condition, ranges: &mut Vec<(i64, i64)>, latency: &mut bool) -> Check {
    fn range(ranges: &mut Vec<(i64, i64)>, r: (i64, i64)) -> usize {
        match ranges.iter().position(|x| *x == r) {
            Some(i) => i,
            None => {
                ranges.push(r);
                ranges.len() - 1
            }
        }
    }
    match c {
        Condition::And(a, b) => Check::And(
            Box::new(compile(a, ranges, latency)),
            Box::new(compile(b, ranges, latency)),
        ),
        Condition::Or(a, b) => Check::Or(
            Box::new(compile(a, ranges, latency)),
            Box::new(compile(b, ranges, latency)),
        ),
        Condition::Compare(m, op, t) => {
            let float = match t {
                Threshold::Float(f) => *f,
                Threshold::Int(i) => *i as f64,
            };
            match m {
                Metric::NetworkErrorRatio => Check::NetworkErrors(*op, float),
                Metric::ResponseCodeRatio(a, b, c, d) => {
                    let (x, y) = (range(ranges, (*a, *b)), range(ranges, (*c, *d)));
                    Check::Codes(x, y, *op, float)
                }
                Metric::LatencyAtQuantileMs(q) => {
                    *latency = true;
                    let int = match t {
                        Threshold::Int(i) => *i,
                        Threshold::Float(f) => *f as i64,
                    };
                    Check::Latency(*q, *op, int)
                }
            }
        }
    }
}

impl CircuitBreaker {
    pub(super) fn new(c: &Config) -> Self {
        Self(Arc::new(Shared::new(c)))
    }

    pub(super) fn inbound(&self, req: Request<RequestBody>) -> Inbound<Frame> {
        let b = &self.0;
        if b.admit(|| b.now()) {
            Inbound::Next(req, Frame::Breaker(Entered(Instant::now())))
        } else {
            Inbound::Answer(b.fallback())
        }
    }

    /// The way out: the answer is measured when its body has been sent
    /// (an error's answer, held whole, at once).
    pub(super) fn outbound(&self, served: &mut Served, entered: Entered) {
        let status = match served {
            Ok(resp) => resp.status(),
            Err(e) => e.status(),
        };
        let measure = Measure {
            breaker: Arc::clone(&self.0),
            status: status.as_u16(),
            entered: entered.0,
        };
        match served {
            Ok(resp) => carry(resp.body_mut(), Hold::measure(measure)),
            Err(_) => drop(measure),
        }
    }
}

impl Shared {
    fn new(c: &Config) -> Self {
        let mut ranges = Vec::new();
        let mut latency = false;
        let check = compile(&c.condition, &mut ranges, &mut latency);
        Self {
            check,
            metrics: Metrics::new(ranges, latency),
            check_period: nanos(c.check_period),
            fallback_duration: nanos(c.fallback_duration),
            recovery_duration: nanos(c.recovery_duration).max(1),
            status: c.response_code,
            epoch: Instant::now(),
            state: AtomicU64::new(STANDBY),
            ramp: AtomicU64::new(0),
            next_check: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        nanos(self.epoch.elapsed()).min(u64::MAX >> 2)
    }

    /// Whether a request goes through (`now` read only when not in
    /// standby).
    fn admit(&self, now: impl FnOnce() -> u64) -> bool {
        let word = self.state.load(Ordering::Acquire);
        word & 3 == STANDBY || self.let_through(word, now())
    }

    /// Whether a request arriving at `now` goes through, the state being
    /// `word` (tripped or recovering).
    fn let_through(&self, mut word: u64, now: u64) -> bool {
        if word & 3 == TRIPPED {
            if now < word >> 2 {
                return false;
            }
            // Fallback over: recovering, its ramp from zero.
            let recovering = (deadline(now, self.recovery_duration) << 2) | RECOVERING;
            if self
                .state
                .compare_exchange(word, recovering, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                self.ramp.store(0, Ordering::Release);
                tracing::debug!("circuitBreaker: recovering");
            }
            word = self.state.load(Ordering::Acquire);
        }
        match word & 3 {
            STANDBY => true,
            TRIPPED => false,
            _ => {
                let until = word >> 2;
                if now > until {
                    let _ = self.state.compare_exchange(
                        word,
                        STANDBY,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                    tracing::debug!("circuitBreaker: standby");
                    return true;
                }
                self.ramp_allows(now, until)
            }
        }
    }

    /// oxy's ratio controller: let through while the ratio let through,
    /// this request included, stays under the target.
    fn ramp_allows(&self, now: u64, until: u64) -> bool {
        let start = until.saturating_sub(self.recovery_duration);
        let target = 0.5 * now.saturating_sub(start) as f64 / self.recovery_duration as f64;
        let mut cur = self.ramp.load(Ordering::Acquire);
        loop {
            let (allowed, denied) = (cur >> 32, cur & 0xffff_ffff);
            let ratio = (allowed + 1) as f64 / (allowed + 1 + denied) as f64;
            let (next, allow) = if ratio < target {
                (cur + (1 << 32), true)
            } else {
                (cur + 1, false)
            };
            match self
                .ramp
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return allow,
                Err(seen) => cur = seen,
            }
        }
    }

    fn fallback(&self) -> Response<ProxyBody> {
        text_answer(self.status)
    }

    /// Records an answer of `status` that took `micros`, at `now`, and
    /// trips the breaker when the check is due and the condition holds.
    fn observe(&self, status: u16, micros: u64, now: u64) {
        self.metrics.record(status, micros, now);
        let due = self.next_check.load(Ordering::Acquire);
        if now <= due && due != 0 {
            return;
        }
        let next = deadline(now, self.check_period);
        if self
            .next_check
            .compare_exchange(due, next, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        if self.state.load(Ordering::Acquire) & 3 == TRIPPED || !self.holds(&self.check, now) {
            return;
        }
        let tripped = (deadline(now, self.fallback_duration) << 2) | TRIPPED;
        self.state.store(tripped, Ordering::Release);
        self.metrics.reset(now);
        tracing::info!(
            status = self.status.as_u16(),
            "circuitBreaker: tripped, answering the fallback for {:?}",
            Duration::from_nanos(self.fallback_duration)
        );
    }

    fn holds(&self, c: &Check, now: u64) -> bool {
        match c {
            Check::And(a, b) => self.holds(a, now) && self.holds(b, now),
            Check::Or(a, b) => self.holds(a, now) || self.holds(b, now),
            Check::NetworkErrors(op, v) => op.holds(self.metrics.network_error_ratio(now), *v),
            Check::Codes(a, b, op, v) => op.holds(self.metrics.code_ratio(*a, *b, now), *v),
            Check::Latency(q, op, v) => op.holds(self.metrics.latency_ms(*q), *v),
        }
    }
}

#[cfg(test)]
mod tests;
