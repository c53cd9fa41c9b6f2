//! Compiled matchers and their evaluation against a [`ProxyRequest`].
//!
//! Semantics follow Traefik 3.7 `pkg/muxer/http/matcher.go` and, for the v2
//! syntax, `matcher_v2.go` on top of gorilla/mux (see `routing/DESIGN.md`
//! for the list); `v3` and `v2` build them from rule text. Runs per
//! request: no locks, no heap allocation; the request arena is used only for
//! rare rewrites (an upper-case `Host`, a percent-encoded query value under a
//! regex, a header value that is not UTF-8).

use std::cell::Cell;

use bumpalo::collections::{String as BumpString, Vec as BumpVec};
use http::HeaderName;

use super::goregex::GoRegex;
use super::parser::RuleError;
use super::query;
use crate::ipnet::IpNet;
use crate::request::ProxyRequest;

/// A boolean combination of matchers. `And`/`Or` are n-ary so that long
/// chains do not nest (bounded recursion when matching and dropping).
#[derive(Clone, Debug)]
pub(crate) enum Expr {
    Leaf(Matcher),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

impl Expr {
    /// The names of every `Host` matcher in the expression, negated ones
    /// included (as Traefik's `ParseMatchers` collects them).
    pub(crate) fn hosts<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::Leaf(Matcher::Host(h) | Matcher::HostV2(h)) => out.push(h),
            Expr::Leaf(_) => {}
            Expr::Not(e) => e.hosts(out),
            Expr::And(es) | Expr::Or(es) => es.iter().for_each(|e| e.hosts(out)),
        }
    }
}

/// One compiled matcher.
#[derive(Clone, Debug)]
pub(crate) enum Matcher {
    /// `Host(`*`)`: every request, even without a host.
    HostAny,
    /// Lower-case ASCII host expression, possibly `*.`-prefixed.
    Host(Box<str>),
    HostRegexp {
        re: GoRegex,
        /// Traefik also tries the (empty, without CNAME flattening) flattened
        /// host, so a regex matching "" matches every request.
        matches_empty: bool,
    },
    Path(Box<str>),
    PathPrefix(Box<str>),
    PathRegexp(GoRegex),
    Method(Box<str>),
    Header {
        /// `None`: a name no request header can carry (invalid, or `Host`,
        /// which Go's server removes from the header map).
        name: Option<HeaderName>,
        value: Box<str>,
    },
    HeaderRegexp {
        name: Option<HeaderName>,
        re: GoRegex,
    },
    Query {
        key: Box<str>,
        value: Box<str>,
    },
    QueryRegexp {
        key: Box<str>,
        re: GoRegex,
    },
    ClientIp(Box<[IpNet]>),
    /// v2 `Host`: the canonical host equals this lower-case name (a trailing
    /// `.` tolerated on either side); no wildcard, no case folding.
    HostV2(Box<str>),
    /// v2 `HostRegexp` without `{}` variables: the raw host (port removed)
    /// equals this ASCII text ignoring case as Go's `(?i)` folds it.
    HostFold(Box<str>),
    /// v2 `HostRegexp` with variables, matched on the raw host (port removed).
    HostTemplate {
        re: GoRegex,
        /// The wildcard-suffix index key when the first label is one
        /// variable that cannot match a `.` (`{sub:[a-z]+}.example.com`).
        suffix: Option<Box<str>>,
    },
    /// v2 `Path`/`PathPrefix` with variables, matched on the routing path
    /// (the regex is anchored: its literal start is a path-prefix key).
    PathTemplate(GoRegex),
    /// v2 `Query(`k=v`)` without variables: the first value of `k` is `v`
    /// (`None`: `k=`, any first value without a newline).
    QueryFirst {
        key: Box<str>,
        value: Option<Box<str>>,
    },
    /// v2 `Query` with variables: the regex runs on `k=<first value of k>`,
    /// or on "" when `k` is absent (gorilla/mux's `getURLQuery`).
    QueryTemplate {
        key: Box<str>,
        re: GoRegex,
    },
}

// === building (shared by both syntaxes) ===

/// Compiles a matcher's regex argument with Go semantics.
pub(crate) fn regex(pattern: &str, col: usize) -> Result<GoRegex, RuleError> {
    GoRegex::new(pattern)
        .map_err(|e| RuleError::new(col, format!("invalid regular expression: {e}")))
}

/// `ClientIP` ranges (`ip.NewChecker`).
pub(crate) fn client_ips(func: &str, args: &[(String, usize)]) -> Result<Matcher, RuleError> {
    let mut nets = Vec::with_capacity(args.len());
    for (a, c) in args {
        let net = IpNet::parse(a)
            .ok_or_else(|| RuleError::new(*c, format!("invalid IP or CIDR {a:?} for {func}")))?;
        nets.push(net);
    }
    Ok(Matcher::ClientIp(nets.into_boxed_slice()))
}

/// The header a `Header`-like matcher reads: `None` for a name no request
/// header can carry (invalid, or `Host`, which Go's server removes from the
/// header map).
pub(crate) fn header_name(key: &str) -> Option<HeaderName> {
    let name = HeaderName::from_bytes(key.as_bytes()).ok()?;
    (name != http::header::HOST).then_some(name)
}

// === evaluation ===

/// Per-request match state shared by every rule evaluated for one request:
/// derived forms of the host are computed at most once.
pub(crate) struct MatchCtx<'r, 'a> {
    pub(crate) req: &'r ProxyRequest<'a>,
    lower: Cell<Option<&'a str>>,
    folded: Cell<Option<&'a str>>,
}

impl<'r, 'a> MatchCtx<'r, 'a> {
    pub(crate) fn new(req: &'r ProxyRequest<'a>) -> Self {
        MatchCtx {
            req,
            lower: Cell::new(None),
            folded: Cell::new(None),
        }
    }

    /// Traefik's canonical host: `strings.ToLower(strings.TrimSpace(host))`.
    pub(crate) fn host_lower(&self) -> &'a str {
        if let Some(h) = self.lower.get() {
            return h;
        }
        let h = canonical_host(self.req.host, self.req.arena);
        self.lower.set(Some(h));
        h
    }

    /// The canonical host with the one non-ASCII letter Go's `EqualFold`
    /// equates with an ASCII one (`ſ` ~ `s`) folded: the form `Host` compares.
    pub(crate) fn host_folded(&self) -> &'a str {
        if let Some(h) = self.folded.get() {
            return h;
        }
        let lower = self.host_lower();
        // `str::contains` of a non-ASCII char compares every window with
        // memcmp: skip it for the ASCII hosts nearly every request has.
        let h = if !lower.is_ascii() && lower.contains('ſ') {
            let mut s = BumpString::with_capacity_in(lower.len(), self.req.arena);
            for c in lower.chars() {
                s.push(if c == 'ſ' { 's' } else { c });
            }
            s.into_bump_str()
        } else {
            lower
        };
        self.folded.set(Some(h));
        h
    }
}

fn canonical_host<'a>(host: &'a str, arena: &'a bumpalo::Bump) -> &'a str {
    let simple = host
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
        && !host.starts_with(|c: char| c.is_ascii_whitespace())
        && !host.ends_with(|c: char| c.is_ascii_whitespace());
    if simple {
        return host;
    }
    let trimmed = host.trim();
    if trimmed
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
    {
        return trimmed;
    }
    let mut s = BumpString::with_capacity_in(trimmed.len(), arena);
    for c in trimmed.chars() {
        // Go's unicode.ToLower is the simple mapping: 'İ' becomes 'i'.
        if c == 'İ' {
            s.push('i');
        } else {
            s.extend(c.to_lowercase());
        }
    }
    s.into_bump_str()
}

impl Expr {
    pub(crate) fn eval(&self, ctx: &MatchCtx<'_, '_>) -> bool {
        match self {
            Expr::Leaf(m) => m.matches(ctx),
            Expr::Not(e) => !e.eval(ctx),
            Expr::And(v) => v.iter().all(|e| e.eval(ctx)),
            Expr::Or(v) => v.iter().any(|e| e.eval(ctx)),
        }
    }
}

impl Matcher {
    fn matches(&self, ctx: &MatchCtx<'_, '_>) -> bool {
        let req = ctx.req;
        match self {
            Matcher::HostAny => true,
            Matcher::Host(expr) => host_matches(expr, ctx.host_folded()),
            Matcher::HostRegexp { re, matches_empty } => {
                *matches_empty || re.is_match_str(ctx.host_lower())
            }
            Matcher::Path(p) => req.path == &**p,
            Matcher::PathPrefix(p) => req.path.starts_with(&**p),
            Matcher::PathRegexp(re) => re.is_match_str(req.path),
            Matcher::Method(m) => req.method.as_str() == &**m,
            Matcher::Header { name, value } => name.as_ref().is_some_and(|n| {
                req.headers
                    .get_all(n)
                    .iter()
                    .any(|v| v.as_bytes() == value.as_bytes())
            }),
            Matcher::HeaderRegexp { name, re } => name.as_ref().is_some_and(|n| {
                req.headers
                    .get_all(n)
                    .iter()
                    .any(|v| re.is_match(v.as_bytes(), req.arena))
            }),
            Matcher::Query { key, value } => query::values(req.query, key.as_bytes())
                .any(|v| query::decodes_to(v, value.as_bytes()) == Some(true)),
            Matcher::QueryRegexp { key, re } => query::values(req.query, key.as_bytes())
                .any(|v| query::decode(v, req.arena).is_some_and(|d| re.is_match(d, req.arena))),
            Matcher::ClientIp(nets) => nets.iter().any(|n| n.contains(req.client_ip)),
            Matcher::HostV2(expr) => host_v2_matches(expr, ctx.host_lower()),
            Matcher::HostFold(lit) => go_fold_eq(req.host, lit),
            Matcher::HostTemplate { re, .. } => re.is_match_str(req.host),
            Matcher::PathTemplate(re) => re.is_match_str(req.path),
            Matcher::QueryFirst { key, value } => query::values(req.query, key.as_bytes())
                .next()
                .is_some_and(|first| match value {
                    Some(v) => query::decodes_to(first, v.as_bytes()) == Some(true),
                    None => !query::decoded_contains(first, b'\n'),
                }),
            Matcher::QueryTemplate { key, re } => {
                match query::first_value(req.query, key.as_bytes(), req.arena) {
                    None => re.is_match_str(""),
                    Some(first) => {
                        let mut text =
                            BumpVec::with_capacity_in(key.len() + 1 + first.len(), req.arena);
                        text.extend_from_slice(key.as_bytes());
                        text.push(b'=');
                        text.extend_from_slice(first);
                        re.is_match(&text, req.arena)
                    }
                }
            }
        }
    }
}

/// v2 `Host` (`hostV2`) on the canonical request host: equality, a trailing
/// period on the rule's host, then on the request's.
fn host_v2_matches(expr: &str, host: &str) -> bool {
    !host.is_empty()
        && (host == expr
            || expr.strip_suffix('.') == Some(host)
            || host.strip_suffix('.') == Some(expr))
}

/// Whether `text` equals the ASCII `lit` under Go's `(?i)`: ASCII case, plus
/// the two non-ASCII runes whose fold orbit holds an ASCII letter (KELVIN
/// SIGN ~ k, LONG S ~ s).
fn go_fold_eq(text: &str, lit: &str) -> bool {
    let mut lit = lit.bytes();
    for c in text.chars() {
        let Some(l) = lit.next() else {
            return false;
        };
        let same = match c {
            '\u{212A}' => l.eq_ignore_ascii_case(&b'k'),
            '\u{17F}' => l.eq_ignore_ascii_case(&b's'),
            c => c.is_ascii() && (c as u8).eq_ignore_ascii_case(&l),
        };
        if !same {
            return false;
        }
    }
    lit.next().is_none()
}

/// Traefik's `Host` matcher on the canonical (folded) request host.
pub(crate) fn host_matches(expr: &str, host: &str) -> bool {
    if host.is_empty() {
        return false;
    }
    if domain_match(host, expr) {
        return true;
    }
    // A trailing period on the rule's host, then on the request's.
    expr.strip_suffix('.')
        .is_some_and(|e| domain_match(host, e))
        || host
            .strip_suffix('.')
            .is_some_and(|h| domain_match(h, expr))
}

/// `muxer.DomainMatchHostExpression`: a `*`-prefixed expression is compared
/// with the domain whose first label is replaced by `*`.
fn domain_match(domain: &str, expr: &str) -> bool {
    match expr.strip_prefix('*') {
        Some(rest) => rest == wildcard_suffix(domain),
        None => domain == expr,
    }
}

/// The domain from its first `.` (included), or "" for a single label.
pub(crate) fn wildcard_suffix(domain: &str) -> &str {
    domain.find('.').map_or("", |i| &domain[i..])
}
