//! Routing: the Traefik v3 rule language, compiled matchers, and the router
//! index that picks the highest-priority matching route for a request.
//!
//! Control plane: [`parse_rule`] compiles a rule (regexes included) once per
//! configuration, and [`Router::new`] builds the immutable index. Data plane:
//! [`Router::route`] runs per request with no lock and no heap allocation
//! (scratch space comes from the request's bumpalo arena). The index design
//! is described in `routing/DESIGN.md`.
//!
//! Must not: take a lock, allocate on the heap, or block on the request path.

mod goregex;
mod matcher;
mod parser;
mod path;
mod router;

#[cfg(test)]
mod tests;

use crate::request::ProxyRequest;

pub use parser::{RuleError, parse_rule};
pub use path::{PathError, host_without_port, normalize_path, sanitize_path};
pub use router::{LinearRouter, RouteEntry, Router};

/// A parsed and compiled rule, ready to match requests.
#[derive(Clone, Debug)]
pub struct Rule {
    source: Box<str>,
    expr: matcher::Expr,
}

/// Two rules are equal when written the same: parsing is deterministic.
impl PartialEq for Rule {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Rule {}

impl Rule {
    /// The rule text as written in the configuration.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Traefik's default priority for a router without one: the length of
    /// the rule in bytes (`len(rule)` in Go, `GetRulePriority` in
    /// `pkg/muxer/http/mux.go`).
    pub fn default_priority(&self) -> u64 {
        self.source.len() as u64
    }

    /// Whether the request satisfies the rule.
    pub fn matches(&self, req: &ProxyRequest<'_>) -> bool {
        self.expr.eval(&matcher::MatchCtx::new(req))
    }

    pub(crate) fn expr(&self) -> &matcher::Expr {
        &self.expr
    }
}
