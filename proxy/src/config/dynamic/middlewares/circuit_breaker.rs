//! `circuitBreaker`'s options (`expression`, `checkPeriod`,
//! `fallbackDuration`, `recoveryDuration`, `responseCode`), with Traefik
//! 3.7's defaults (100 ms, 10 s, 10 s, 503; a zero or negative duration
//! keeps the default, as `pkg/middlewares/circuitbreaker` passes only
//! positive ones to oxy) and the expression checked as oxy's `cbreaker`
//! builds it: `NetworkErrorRatio()` and `ResponseCodeRatio(a, b, c, d)`
//! (integer arguments) are floats compared with a float literal,
//! `LatencyAtQuantileMS(q)` (a float argument) an integer compared with an
//! integer literal, the function on the left; `&&` and `||` join
//! comparisons. `NetworkErrorRatio() > 1` is refused, as Traefik refuses
//! it. The request-time part is `crate::middleware::circuit_breaker`.

use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;

use super::super::super::decode::{At, Ctx};
use super::super::super::node::Pos;
use super::MiddlewareConfig;
use super::predicate::{self, Lit, Node, Op};

/// What an expression's function measures over the rolling window.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// `NetworkErrorRatio()`: the share of 502 and 504 answers.
    NetworkErrorRatio,
    /// `ResponseCodeRatio(a, b, c, d)`: answers with a status in `[a, b)`
    /// over those in `[c, d)` (0 when none of the latter).
    ResponseCodeRatio(i64, i64, i64, i64),
    /// `LatencyAtQuantileMS(q)`: the `q`th percentile of the latencies,
    /// in whole milliseconds.
    LatencyAtQuantileMs(f64),
}

/// A comparison's constant: a float for the ratios, an integer for the
/// latency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// Compared with a ratio.
    Float(f64),
    /// Compared with a latency in milliseconds.
    Int(i64),
}

/// The tripping condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Both hold.
    And(Box<Condition>, Box<Condition>),
    /// One holds.
    Or(Box<Condition>, Box<Condition>),
    /// `metric op threshold`; `op` is a comparison.
    Compare(Metric, CmpOp, Threshold),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The comparison a parsed operator is; `None` for `&&` and `||`.
    pub(super) fn of(op: Op) -> Option<Self> {
        Some(match op {
            Op::Eq => CmpOp::Eq,
            Op::Ne => CmpOp::Ne,
            Op::Lt => CmpOp::Lt,
            Op::Le => CmpOp::Le,
            Op::Gt => CmpOp::Gt,
            Op::Ge => CmpOp::Ge,
            Op::And | Op::Or => return None,
        })
    }

    /// `a op b`.
    pub fn holds<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
        }
    }
}

/// A validated `circuitBreaker`.
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitBreaker {
    /// `expression` as written.
    pub expression: String,
    /// `expression`, checked.
    pub condition: Condition,
    /// `checkPeriod`: the condition is evaluated at most once per period.
    pub check_period: Duration,
    /// `fallbackDuration`: how long the breaker stays open.
    pub fallback_duration: Duration,
    /// `recoveryDuration`: how long the recovering ramp lasts.
    pub recovery_duration: Duration,
    /// `responseCode`: the fallback's status.
    pub response_code: StatusCode,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct CircuitBreakerFile {
    expression: Option<At<String>>,
    check_period: Option<Duration>,
    fallback_duration: Option<Duration>,
    recovery_duration: Option<Duration>,
    response_code: Option<At<i64>>,
}

impl CircuitBreakerFile {
    pub(super) fn check(self, ctx: &mut Ctx, path: &str, pos: Pos) -> Option<MiddlewareConfig> {
        let Some(expr) = self.expression.filter(|e| e.ok) else {
            ctx.error(path, pos, "circuitBreaker needs an expression");
            return None;
        };
        let condition = match predicate::parse(&expr.value).and_then(|n| condition(&n)) {
            Ok(c) => Some(c),
            Err(e) => {
                ctx.error(
                    &expr.path,
                    expr.pos,
                    format!("invalid expression {:?}: {e}", expr.value),
                );
                None
            }
        };
        let response_code = match self.response_code {
            None => Some(StatusCode::SERVICE_UNAVAILABLE),
            Some(c) => {
                // Go's WriteHeader panics outside 100-999; a 1xx is an
                // interim answer, not a fallback.
                let s = u16::try_from(c.value)
                    .ok()
                    .filter(|s| (200..=999).contains(s))
                    .and_then(|s| StatusCode::from_u16(s).ok());
                if s.is_none() {
                    ctx.error(
                        &c.path,
                        c.pos,
                        format!(
                            "responseCode {} is not a final HTTP status (200-999)",
                            c.value
                        ),
                    );
                }
                s
            }
        };
        let positive =
            |d: Option<Duration>, default: Duration| d.filter(|d| !d.is_zero()).unwrap_or(default);
        Some(MiddlewareConfig::CircuitBreaker(Box::new(CircuitBreaker {
            expression: expr.value,
            condition: condition?,
            check_period: positive(self.check_period, Duration::from_millis(100)),
            fallback_duration: positive(self.fallback_duration, Duration::from_secs(10)),
            recovery_duration: positive(self.recovery_duration, Duration::from_secs(10)),
            response_code: response_code?,
        })))
    }
}

/// `n` as a tripping condition, or why oxy's parser would refuse it.
fn condition(n: &Node) -> Result<Condition, String> {
    match n {
        Node::Binary(Op::And, a, b) => Ok(Condition::And(
            Box::new(condition(a)?),
            Box::new(condition(b)?),
        )),
        Node::Binary(Op::Or, a, b) => Ok(Condition::Or(
            Box::new(condition(a)?),
            Box::new(condition(b)?),
        )),
        Node::Binary(op, left, right) => {
            let cmp = CmpOp::of(*op).expect("&& and || matched above");
            let Node::Call(name, args) = &**left else {
                return Err(format!(
                    "{op}: the left side must be a function call, found {}",
                    predicate::describe(left)
                ));
            };
            let metric = metric(name, args)?;
            let Node::Lit(lit) = &**right else {
                return Err(format!(
                    "{op}: the right side must be a number, found {}",
                    predicate::describe(right)
                ));
            };
            let threshold = match (&metric, lit) {
                (Metric::LatencyAtQuantileMs(_), Lit::Int(v)) => Threshold::Int(*v),
                (Metric::LatencyAtQuantileMs(_), other) => {
                    return Err(format!(
                        "{name}() is an integer of milliseconds: compare it with an integer, found {}",
                        other.kind()
                    ));
                }
                (_, Lit::Float(v)) => Threshold::Float(*v),
                (_, Lit::Int(v)) => {
                    return Err(format!(
                        "{name}() is a ratio: compare it with a float (write {v}.0), as Traefik requires"
                    ));
                }
                (_, other) => {
                    return Err(format!(
                        "{name}() is a ratio: compare it with a float, found {}",
                        other.kind()
                    ));
                }
            };
            Ok(Condition::Compare(metric, cmp, threshold))
        }
        other => Err(format!(
            "expected a comparison such as NetworkErrorRatio() > 0.5, found {}",
            predicate::describe(other)
        )),
    }
}

/// The function `name(args)`, its arguments of the types oxy's take.
fn metric(name: &str, args: &[Lit]) -> Result<Metric, String> {
    let count = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!(
                "{name} takes {n} argument{}, found {}",
                if n == 1 { "" } else { "s" },
                args.len()
            ))
        }
    };
    match name {
        "NetworkErrorRatio" => count(0).map(|()| Metric::NetworkErrorRatio),
        "LatencyAtQuantileMS" => {
            count(1)?;
            match &args[0] {
                Lit::Float(q) => Ok(Metric::LatencyAtQuantileMs(*q)),
                Lit::Int(q) => Err(format!(
                    "LatencyAtQuantileMS takes a float quantile (write {q}.0), as Traefik requires"
                )),
                other => Err(format!(
                    "LatencyAtQuantileMS takes a float quantile, found {}",
                    other.kind()
                )),
            }
        }
        "ResponseCodeRatio" => {
            count(4)?;
            let mut v = [0i64; 4];
            for (slot, a) in v.iter_mut().zip(args) {
                match a {
                    Lit::Int(n) => *slot = *n,
                    other => {
                        return Err(format!(
                            "ResponseCodeRatio takes integer status codes, found {}",
                            other.kind()
                        ));
                    }
                }
            }
            Ok(Metric::ResponseCodeRatio(v[0], v[1], v[2], v[3]))
        }
        other => Err(format!(
            "unsupported function: {other} (NetworkErrorRatio, ResponseCodeRatio, LatencyAtQuantileMS)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(src: &str) -> Result<Condition, String> {
        predicate::parse(src).and_then(|n| condition(&n))
    }

    #[test]
    fn traefik_s_documented_expressions_are_accepted() {
        assert_eq!(
            cond("NetworkErrorRatio() > 0.30").unwrap(),
            Condition::Compare(Metric::NetworkErrorRatio, CmpOp::Gt, Threshold::Float(0.3))
        );
        assert_eq!(
            cond("ResponseCodeRatio(500, 600, 0, 600) > 0.25").unwrap(),
            Condition::Compare(
                Metric::ResponseCodeRatio(500, 600, 0, 600),
                CmpOp::Gt,
                Threshold::Float(0.25)
            )
        );
        assert!(matches!(
            cond("LatencyAtQuantileMS(50.0) > 100").unwrap(),
            Condition::Compare(Metric::LatencyAtQuantileMs(q), CmpOp::Gt, Threshold::Int(100)) if q == 50.0
        ));
        assert!(matches!(
            cond("ResponseCodeRatio(500, 600, 0, 600) > 0.30 || NetworkErrorRatio() > 0.10")
                .unwrap(),
            Condition::Or(..)
        ));
        assert!(matches!(
            cond("(NetworkErrorRatio() >= 0.5) && LatencyAtQuantileMS(99.0) <= 2000").unwrap(),
            Condition::And(..)
        ));
    }

    #[test]
    fn what_oxy_refuses_is_refused_with_the_reason() {
        for (src, why) in [
            ("NetworkErrorRatio() > 1", "write 1.0"),
            ("LatencyAtQuantileMS(50) > 100", "write 50.0"),
            (
                "LatencyAtQuantileMS(50.0) > 100.0",
                "compare it with an integer",
            ),
            (
                "ResponseCodeRatio(500.0, 600, 0, 600) > 0.5",
                "integer status codes",
            ),
            (
                "ResponseCodeRatio(500, 600) > 0.5",
                "takes 4 arguments, found 2",
            ),
            (
                "0.5 < NetworkErrorRatio()",
                "left side must be a function call",
            ),
            ("NetworkErrorRatio()", "expected a comparison"),
            ("NetworkErrorRatio() > 0.5 && 1", "expected a comparison"),
            ("Latency() > 1", "unsupported function: Latency"),
            ("networkErrorRatio() > 0.5", "unsupported function"),
        ] {
            let e = cond(src).unwrap_err();
            assert!(e.contains(why), "{src:?}: {e}");
        }
    }
}
