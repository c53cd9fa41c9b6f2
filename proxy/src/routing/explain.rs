//! Why a rule does or does not match a request, for `/api/explain` and
//! `proxy explain`: the same compiled matchers the router evaluates,
//! walked once more to name the parts that decided.
//!
//! Never on the request path: it allocates its answer freely.

use super::Rule;
use super::matcher::{Expr, MatchCtx, Matcher};
use crate::request::ProxyRequest;

impl Rule {
    /// The parts of the rule that decided its outcome on `req`: for a rule
    /// that does not match, the matchers that failed (every branch of an
    /// `||`, the first failing operand of an `&&`, the matched operand of
    /// a `!`); for one that matches, the matchers that held.
    pub fn explain(&self, req: &ProxyRequest<'_>) -> Vec<String> {
        let ctx = MatchCtx::new(req);
        let mut out = Vec::new();
        why(self.expr(), &ctx, self.expr().eval(&ctx), &mut out);
        out
    }
}

/// Adds to `out` why `e` evaluated to `outcome`.
fn why(e: &Expr, ctx: &MatchCtx<'_, '_>, outcome: bool, out: &mut Vec<String>) {
    match e {
        Expr::Leaf(m) => out.push(format!(
            "{} {}",
            describe(m),
            if outcome { "matched" } else { "did not match" }
        )),
        Expr::Not(inner) => why(inner, ctx, !outcome, out),
        Expr::And(v) if outcome => v.iter().for_each(|e| why(e, ctx, true, out)),
        Expr::And(v) => {
            if let Some(failed) = v.iter().find(|e| !e.eval(ctx)) {
                why(failed, ctx, false, out);
            }
        }
        Expr::Or(v) if outcome => {
            if let Some(held) = v.iter().find(|e| e.eval(ctx)) {
                why(held, ctx, true, out);
            }
        }
        Expr::Or(v) => v.iter().for_each(|e| why(e, ctx, false, out)),
    }
}

/// A matcher in rule syntax (its compiled form: hosts lower-cased).
fn describe(m: &Matcher) -> String {
    match m {
        Matcher::HostAny => "Host(`*`)".to_owned(),
        Matcher::Host(h) | Matcher::HostV2(h) => format!("Host(`{h}`)"),
        Matcher::HostFold(h) => format!("HostRegexp(`{h}`)"),
        Matcher::HostRegexp { re, .. } => format!("HostRegexp(`{}`)", re.source()),
        Matcher::HostTemplate { re, .. } => format!("v2 host template (as `{}`)", re.source()),
        Matcher::Path(p) => format!("Path(`{p}`)"),
        Matcher::PathPrefix(p) => format!("PathPrefix(`{p}`)"),
        Matcher::PathRegexp(re) => format!("PathRegexp(`{}`)", re.source()),
        Matcher::PathTemplate(re) => format!("v2 path template (as `{}`)", re.source()),
        Matcher::Method(m) => format!("Method(`{m}`)"),
        Matcher::Header { name, value } => format!(
            "Header(`{}`, `{value}`)",
            name.as_ref().map_or("", |n| n.as_str())
        ),
        Matcher::HeaderRegexp { name, re } => format!(
            "HeaderRegexp(`{}`, `{}`)",
            name.as_ref().map_or("", |n| n.as_str()),
            re.source()
        ),
        Matcher::Query { key, value } => format!("Query(`{key}`, `{value}`)"),
        Matcher::QueryFirst { key, value } => {
            format!("Query(`{key}={}`)", value.as_deref().unwrap_or(""))
        }
        Matcher::QueryRegexp { key, re } => format!("QueryRegexp(`{key}`, `{}`)", re.source()),
        Matcher::QueryTemplate { key, re } => {
            format!("v2 query template on `{key}` (as `{}`)", re.source())
        }
        Matcher::ClientIp(nets) => {
            let nets: Vec<String> = nets.iter().map(ToString::to_string).collect();
            format!("ClientIP(`{}`)", nets.join("`, `"))
        }
    }
}
