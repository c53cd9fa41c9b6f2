//! Routing: Traefik's rule languages (v3, and v2 for `ruleSyntax: v2`),
//! compiled matchers, and the router index that picks the highest-priority
//! matching route for a request.
//!
//! Control plane: [`parse_rule_with`] compiles a rule (regexes included,
//! with Go's regexp semantics) once per configuration, and [`Router::new`]
//! builds the immutable index. Data plane:
//! [`Router::route`] runs per request with no lock and no heap allocation
//! (scratch space comes from the request's bumpalo arena). The index design
//! is described in `routing/DESIGN.md`.
//!
//! Must not: take a lock, allocate on the heap, or block on the request path.

mod explain;
pub(crate) mod goregex;
mod matcher;
mod parser;
mod path;
mod query;
mod router;
mod syntax;
mod v2;
mod v3;

#[cfg(test)]
mod tests;

use crate::request::ProxyRequest;

pub use parser::{RuleError, parse_rule, parse_rule_with};
pub use path::{
    PathError, forward_and_routing_paths, host_without_port, normalize_path, routing_path,
};
pub use router::{LinearRouter, RouteEntry, Router};
pub use syntax::RuleSyntax;

/// A parsed and compiled rule, ready to match requests.
#[derive(Clone, Debug)]
pub struct Rule {
    source: Box<str>,
    syntax: RuleSyntax,
    expr: matcher::Expr,
    warnings: Box<[RuleError]>,
}

/// Two rules are equal when written the same in the same syntax: parsing is
/// deterministic.
impl PartialEq for Rule {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.syntax == other.syntax
    }
}

impl Eq for Rule {}

impl Rule {
    /// The rule text as written in the configuration.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The syntax the rule was parsed in.
    pub fn syntax(&self) -> RuleSyntax {
        self.syntax
    }

    /// What Traefik accepts in this rule but probably is not meant: v2
    /// writing in a v3 rule that still parses (a `{name:re}` template in a
    /// regex, where v3 reads the braces literally; `Query(`k=v`)`, a key
    /// named `k=v` in v3). For the configuration to report as warnings.
    pub fn warnings(&self) -> &[RuleError] {
        &self.warnings
    }

    /// Traefik's default priority for a router without one: the length of
    /// the rule in bytes (`len(rule)` in Go, `GetRulePriority` in
    /// `pkg/muxer/http/mux.go`), in both syntaxes.
    pub fn default_priority(&self) -> i64 {
        i64::try_from(self.source.len()).unwrap_or(i64::MAX)
    }

    /// Whether the request satisfies the rule.
    pub fn matches(&self, req: &ProxyRequest<'_>) -> bool {
        self.expr.eval(&matcher::MatchCtx::new(req))
    }

    /// The host names its `Host` matchers name, lower-case (Traefik's
    /// `ParseDomains`: what a TLS router's SNI is matched against to pick
    /// its TLS options). `Host(`*`)` names none.
    pub fn hosts(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.expr.hosts(&mut out);
        out
    }

    pub(crate) fn expr(&self) -> &matcher::Expr {
        &self.expr
    }
}
