//! `buffering`'s options (`maxRequestBodyBytes`, `memRequestBodyBytes`,
//! `maxResponseBodyBytes`, `memResponseBodyBytes`, `retryExpression`),
//! with Traefik 3.7's defaults (no maximum, 1 MiB in memory) and oxy's
//! build-time checks (`vulcand/oxy/v2/buffer`: no negative size; the
//! expression over `Attempts()`, `ResponseCode()` (integers),
//! `RequestMethod()` (a string, `==`/`!=` only) and `IsNetworkError()`
//! (a condition itself), joined by `&&` and `||`). The request-time part
//! is `crate::middleware::buffering`.

use serde::Deserialize;

use super::super::super::decode::{At, Ctx};
use super::MiddlewareConfig;
use super::circuit_breaker::CmpOp;
use super::predicate::{self, Lit, Node, Op};

/// oxy's `DefaultMemBodyBytes`: 1 MiB kept in memory, the rest on disk.
const DEFAULT_MEM: u64 = 1 << 20;

/// When a buffered request is sent again.
#[derive(Debug, Clone, PartialEq)]
pub enum RetryCondition {
    /// Both hold.
    And(Box<RetryCondition>, Box<RetryCondition>),
    /// One holds.
    Or(Box<RetryCondition>, Box<RetryCondition>),
    /// `IsNetworkError()`: the attempt was answered 502 or 504.
    NetworkError,
    /// `Attempts() op n`: the attempts made so far (from 1).
    Attempts(CmpOp, i64),
    /// `ResponseCode() op n`: the attempt's status.
    ResponseCode(CmpOp, i64),
    /// `RequestMethod() == "M"` (or `!=`).
    Method(bool, String),
}

/// A validated `buffering`.
#[derive(Debug, Clone, PartialEq)]
pub struct Buffering {
    /// `maxRequestBodyBytes` (`None`: no maximum): a larger request body
    /// is answered 413.
    pub max_request: Option<u64>,
    /// `memRequestBodyBytes` as written (0: oxy's 1 MiB): held in memory
    /// up to this (and never more than the maximum), the rest in a
    /// temporary file.
    pub mem_request: u64,
    /// `maxResponseBodyBytes` (`None`: no maximum): a larger response is
    /// answered 500.
    pub max_response: Option<u64>,
    /// `memResponseBodyBytes` as written, as for requests.
    pub mem_response: u64,
    /// `retryExpression` as written (empty: none).
    pub retry_expression: String,
    /// `retryExpression`, checked.
    pub retry: Option<RetryCondition>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct BufferingFile {
    max_request_body_bytes: Option<At<i64>>,
    mem_request_body_bytes: Option<At<i64>>,
    max_response_body_bytes: Option<At<i64>>,
    mem_response_body_bytes: Option<At<i64>>,
    retry_expression: Option<At<String>>,
}

impl BufferingFile {
    pub(super) fn check(self, ctx: &mut Ctx) -> Option<MiddlewareConfig> {
        let mut ok = true;
        let mut size = |ctx: &mut Ctx, v: Option<At<i64>>| -> u64 {
            match v {
                Some(a) if a.value < 0 => {
                    ctx.error(
                        &a.path,
                        a.pos,
                        format!("must be 0 or more (bytes), found {}", a.value),
                    );
                    ok = false;
                    0
                }
                Some(a) => a.value.unsigned_abs(),
                None => 0,
            }
        };
        let max_request = size(ctx, self.max_request_body_bytes);
        let mem_request = size(ctx, self.mem_request_body_bytes);
        let max_response = size(ctx, self.max_response_body_bytes);
        let mem_response = size(ctx, self.mem_response_body_bytes);
        let (retry_expression, retry) = match self.retry_expression {
            Some(e) if !e.value.trim().is_empty() => {
                match predicate::parse(&e.value).and_then(|n| retry_condition(&n)) {
                    Ok(c) => (e.value, Some(c)),
                    Err(why) => {
                        ctx.error(
                            &e.path,
                            e.pos,
                            format!("invalid expression {:?}: {why}", e.value),
                        );
                        return None;
                    }
                }
            }
            _ => (String::new(), None),
        };
        if !ok {
            return None;
        }
        let limit = |n: u64| (n > 0).then_some(n);
        Some(MiddlewareConfig::Buffering(Box::new(Buffering {
            max_request: limit(max_request),
            mem_request,
            max_response: limit(max_response),
            mem_response,
            retry_expression,
            retry,
        })))
    }
}

impl Buffering {
    /// What a request body keeps in memory: `memRequestBodyBytes` (1 MiB
    /// unless set), never more than the maximum (as multibuf reads it).
    pub fn request_memory(&self) -> u64 {
        let mem = if self.mem_request == 0 {
            DEFAULT_MEM
        } else {
            self.mem_request
        };
        self.max_request.map_or(mem, |m| m.min(mem))
    }

    /// What a response body keeps in memory (1 MiB unless set).
    pub fn response_memory(&self) -> u64 {
        if self.mem_response == 0 {
            DEFAULT_MEM
        } else {
            self.mem_response
        }
    }
}

/// `n` as a retry condition, or why oxy's parser would refuse it.
fn retry_condition(n: &Node) -> Result<RetryCondition, String> {
    let functions = "IsNetworkError, Attempts, ResponseCode, RequestMethod";
    match n {
        Node::Binary(Op::And, a, b) => Ok(RetryCondition::And(
            Box::new(retry_condition(a)?),
            Box::new(retry_condition(b)?),
        )),
        Node::Binary(Op::Or, a, b) => Ok(RetryCondition::Or(
            Box::new(retry_condition(a)?),
            Box::new(retry_condition(b)?),
        )),
        Node::Call(name, args) if name == "IsNetworkError" => {
            if args.is_empty() {
                Ok(RetryCondition::NetworkError)
            } else {
                Err("IsNetworkError takes no argument".into())
            }
        }
        Node::Binary(op, left, right) => {
            let cmp = CmpOp::of(*op).expect("&& and || matched above");
            let Node::Call(name, args) = &**left else {
                return Err(format!(
                    "{op}: the left side must be a function call, found {}",
                    predicate::describe(left)
                ));
            };
            if !args.is_empty() {
                return Err(format!("{name} takes no argument"));
            }
            let Node::Lit(lit) = &**right else {
                return Err(format!(
                    "{op}: the right side must be a literal, found {}",
                    predicate::describe(right)
                ));
            };
            match (name.as_str(), lit) {
                ("Attempts", Lit::Int(v)) => Ok(RetryCondition::Attempts(cmp, *v)),
                ("ResponseCode", Lit::Int(v)) => Ok(RetryCondition::ResponseCode(cmp, *v)),
                ("Attempts" | "ResponseCode", other) => Err(format!(
                    "{name}() is an integer: compare it with an integer, found {}",
                    other.kind()
                )),
                ("RequestMethod", Lit::Str(m)) => match cmp {
                    CmpOp::Eq => Ok(RetryCondition::Method(true, m.clone())),
                    CmpOp::Ne => Ok(RetryCondition::Method(false, m.clone())),
                    _ => Err(format!(
                        "RequestMethod() is a string: {op} is not supported"
                    )),
                },
                ("RequestMethod", other) => Err(format!(
                    "RequestMethod() is a string: compare it with a string, found {}",
                    other.kind()
                )),
                ("IsNetworkError", _) => Err(format!(
                    "IsNetworkError() is a condition: it cannot be compared ({op})"
                )),
                (other, _) => Err(format!("unsupported function: {other} ({functions})")),
            }
        }
        Node::Call(name, _)
            if matches!(name.as_str(), "Attempts" | "ResponseCode" | "RequestMethod") =>
        {
            Err(format!("{name}() must be compared, e.g. Attempts() < 3"))
        }
        Node::Call(name, _) => Err(format!("unsupported function: {name} ({functions})")),
        Node::Lit(l) => Err(format!("expected a condition, found {}", l.kind())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(src: &str) -> Result<RetryCondition, String> {
        predicate::parse(src).and_then(|n| retry_condition(&n))
    }

    #[test]
    fn oxy_s_documented_expressions_are_accepted() {
        assert_eq!(
            cond("IsNetworkError() && Attempts() < 2").unwrap(),
            RetryCondition::And(
                Box::new(RetryCondition::NetworkError),
                Box::new(RetryCondition::Attempts(CmpOp::Lt, 2))
            )
        );
        assert_eq!(
            cond(r#"Attempts() <= 2 && ResponseCode() == 502 || RequestMethod() != "POST""#)
                .unwrap(),
            RetryCondition::Or(
                Box::new(RetryCondition::And(
                    Box::new(RetryCondition::Attempts(CmpOp::Le, 2)),
                    Box::new(RetryCondition::ResponseCode(CmpOp::Eq, 502))
                )),
                Box::new(RetryCondition::Method(false, "POST".into()))
            )
        );
    }

    #[test]
    fn what_oxy_refuses_is_refused() {
        for (src, why) in [
            ("Attempts() < 2.0", "compare it with an integer"),
            ("RequestMethod() < \"GET\"", "< is not supported"),
            ("RequestMethod() == 1", "compare it with a string"),
            ("IsNetworkError() == 1", "cannot be compared"),
            ("Attempts()", "must be compared"),
            ("Retries() < 2", "unsupported function: Retries"),
            ("!IsNetworkError()", "! is not supported"),
        ] {
            let e = cond(src).unwrap_err();
            assert!(e.contains(why), "{src:?}: {e}");
        }
    }
}
