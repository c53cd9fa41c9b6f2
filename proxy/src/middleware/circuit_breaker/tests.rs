//! The breaker's states on its own clock (times given, not waited for):
//! tripping when the check is due and the condition holds, the fallback
//! for `fallbackDuration`, oxy's recovering ramp, tripping again while
//! recovering, and standby after `recoveryDuration`.

use std::time::Duration;

use http::StatusCode;
use http::header;

use super::*;

const MS: u64 = 1_000_000;
const S: u64 = 1_000 * MS;

fn breaker(condition: Condition) -> Shared {
    Shared::new(&Config {
        expression: String::new(),
        condition,
        check_period: Duration::from_millis(100),
        fallback_duration: Duration::from_secs(10),
        recovery_duration: Duration::from_secs(10),
        response_code: StatusCode::SERVICE_UNAVAILABLE,
    })
}

fn network(op: CmpOp, v: f64) -> Condition {
    Condition::Compare(Metric::NetworkErrorRatio, op, Threshold::Float(v))
}

#[test]
fn trips_only_when_the_check_is_due() {
    let cb = breaker(network(CmpOp::Gt, 0.5));
    cb.observe(200, 10, MS);
    // Due again at 101 ms: three failures in between are not checked.
    for _ in 0..3 {
        cb.observe(502, 10, 50 * MS);
    }
    assert!(cb.admit(|| 60 * MS));
    cb.observe(504, 10, 102 * MS);
    // 4 of 5 are network errors: tripped for 10 s.
    assert!(!cb.admit(|| 103 * MS));
    assert!(!cb.admit(|| 10 * S));
    assert_eq!(cb.metrics.network_error_ratio(103 * MS), 0.0, "forgotten");
}

#[test]
fn the_recovering_ramp_lets_through_a_growing_share() {
    let cb = breaker(network(CmpOp::Gt, 0.5));
    cb.observe(502, 10, 0);
    assert!(!cb.admit(|| S));
    // From 10 s: recovering for 10 s, 1,000 requests spread over it.
    let start = 10 * S + 1;
    let mut allowed = Vec::new();
    for i in 0..1000u64 {
        if cb.admit(|| start + i * 10 * MS) {
            allowed.push(i);
        }
    }
    // The first is refused (the target is 0 then); the let-through share
    // follows 0.5 × elapsed / duration.
    assert_ne!(allowed.first(), Some(&0));
    let early = allowed.iter().filter(|&&i| i < 100).count();
    assert!(early <= 5, "{early} of the first 100");
    assert!((480..=500).contains(&allowed.len()), "{}", allowed.len());
    // Past the recovery: standby, everything goes through.
    assert!(cb.admit(|| 21 * S));
    assert!(cb.admit(|| 21 * S));
    assert_eq!(cb.state.load(Ordering::Relaxed) & 3, STANDBY);
}

#[test]
fn a_failure_while_recovering_trips_it_again() {
    let cb = breaker(network(CmpOp::Ge, 0.5));
    cb.observe(502, 10, 0);
    let start = 10 * S + 1;
    let mut t = start;
    while !cb.admit(|| t) {
        t += 10 * MS;
    }
    // A request let through fails: tripped again for 10 s from now.
    cb.observe(502, 10, t);
    assert!(!cb.admit(|| t + 5 * S));
    assert!(!cb.admit(|| t + 10 * S - 1));
    assert_eq!(cb.state.load(Ordering::Relaxed) & 3, TRIPPED);
}

#[test]
fn codes_and_latency_conditions() {
    let ratio = Condition::Compare(
        Metric::ResponseCodeRatio(500, 600, 0, 600),
        CmpOp::Gt,
        Threshold::Float(0.25),
    );
    let cb = breaker(ratio);
    cb.observe(200, 10, 0);
    for i in 1..=3 {
        cb.observe(200, 10, i * 200 * MS);
    }
    assert!(cb.admit(|| S));
    // 2 of 6 in 5xx: over a quarter.
    cb.observe(503, 10, 1_000 * MS);
    cb.observe(500, 10, 1_200 * MS);
    assert!(!cb.admit(|| 1_300 * MS));

    let slow = Condition::Or(
        Box::new(network(CmpOp::Gt, 0.9)),
        Box::new(Condition::Compare(
            Metric::LatencyAtQuantileMs(50.0),
            CmpOp::Gt,
            Threshold::Int(100),
        )),
    );
    let cb = breaker(slow);
    cb.observe(200, 90_000, 0);
    assert!(cb.admit(|| MS));
    cb.observe(200, 150_000, 200 * MS);
    cb.observe(200, 150_000, 400 * MS);
    assert!(!cb.admit(|| 500 * MS), "median 150 ms > 100");
}

#[test]
fn the_fallback_is_the_status_and_its_go_text() {
    let cb = breaker(network(CmpOp::Gt, 0.5));
    let r = cb.fallback();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().get(header::CONTENT_TYPE).is_none());
    assert_eq!(
        crate::middleware::status_text(StatusCode::PAYLOAD_TOO_LARGE),
        "Request Entity Too Large"
    );
}
