//! Compiled matchers and their evaluation against a [`ProxyRequest`].
//!
//! Semantics follow Traefik 3.7 `pkg/muxer/http/matcher.go` (see
//! `routing/DESIGN.md` for the list). Runs per request: no locks, no heap
//! allocation; the request arena is used only for rare rewrites (an
//! upper-case `Host`, a percent-encoded query value under `QueryRegexp`).

use std::cell::Cell;

use bumpalo::collections::{String as BumpString, Vec as BumpVec};
use http::HeaderName;

use super::goregex::GoRegex;
use super::parser::RuleError;
use crate::ipnet::IpNet;
use crate::request::ProxyRequest;

/// The matcher functions of the v3 syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MatcherKind {
    ClientIp,
    Method,
    Host,
    HostRegexp,
    Path,
    PathRegexp,
    PathPrefix,
    Header,
    HeaderRegexp,
    Query,
    QueryRegexp,
}

impl MatcherKind {
    pub(crate) const ALL: [MatcherKind; 11] = [
        MatcherKind::ClientIp,
        MatcherKind::Method,
        MatcherKind::Host,
        MatcherKind::HostRegexp,
        MatcherKind::Path,
        MatcherKind::PathRegexp,
        MatcherKind::PathPrefix,
        MatcherKind::Header,
        MatcherKind::HeaderRegexp,
        MatcherKind::Query,
        MatcherKind::QueryRegexp,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            MatcherKind::ClientIp => "ClientIP",
            MatcherKind::Method => "Method",
            MatcherKind::Host => "Host",
            MatcherKind::HostRegexp => "HostRegexp",
            MatcherKind::Path => "Path",
            MatcherKind::PathRegexp => "PathRegexp",
            MatcherKind::PathPrefix => "PathPrefix",
            MatcherKind::Header => "Header",
            MatcherKind::HeaderRegexp => "HeaderRegexp",
            MatcherKind::Query => "Query",
            MatcherKind::QueryRegexp => "QueryRegexp",
        }
    }

    /// Accepted argument counts (`expectNParameters` in matcher.go).
    fn arity(self) -> &'static [usize] {
        match self {
            MatcherKind::Header | MatcherKind::HeaderRegexp => &[2],
            MatcherKind::Query | MatcherKind::QueryRegexp => &[1, 2],
            _ => &[1],
        }
    }
}

/// A boolean combination of matchers. `And`/`Or` are n-ary so that long
/// chains do not nest (bounded recursion when matching and dropping).
#[derive(Clone, Debug)]
pub(crate) enum Expr {
    Leaf(Matcher),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
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
}

// === building ===

impl Matcher {
    pub(crate) fn build(
        kind: MatcherKind,
        args: Vec<(String, usize)>,
        col: usize,
    ) -> Result<Matcher, RuleError> {
        let arity = kind.arity();
        if !arity.contains(&args.len()) {
            let expected = match arity {
                [1] => "1 argument".to_owned(),
                [n] => format!("{n} arguments"),
                _ => "1 or 2 arguments".to_owned(),
            };
            return Err(RuleError::new(
                col,
                format!("{} expects {expected}, got {}", kind.name(), args.len()),
            ));
        }
        // `rules.CheckRule`: no argument may be empty.
        if let Some((_, c)) = args.iter().find(|(a, _)| a.is_empty()) {
            return Err(RuleError::new(
                *c,
                format!("empty argument for {}", kind.name()),
            ));
        }
        let (a0, c0) = (&args[0].0, args[0].1);
        let arg1 = args.get(1);
        let regex = |pattern: &str, c: usize| {
            GoRegex::new(pattern)
                .map_err(|e| RuleError::new(c, format!("invalid regular expression: {e}")))
        };
        Ok(match kind {
            MatcherKind::Host => {
                if a0 == "*" {
                    Matcher::HostAny
                } else if !a0.is_ascii() {
                    return Err(RuleError::new(
                        c0,
                        "Host must be ASCII (use the punycode form)",
                    ));
                } else {
                    Matcher::Host(a0.to_ascii_lowercase().into())
                }
            }
            MatcherKind::HostRegexp => {
                if !a0.is_ascii() {
                    return Err(RuleError::new(
                        c0,
                        "HostRegexp must be ASCII (use the punycode form)",
                    ));
                }
                let re = regex(a0, c0)?;
                let matches_empty = re.is_match(b"");
                Matcher::HostRegexp { re, matches_empty }
            }
            MatcherKind::Path | MatcherKind::PathPrefix => {
                if !a0.starts_with('/') {
                    return Err(RuleError::new(
                        c0,
                        format!("{} must start with \"/\"", kind.name()),
                    ));
                }
                if kind == MatcherKind::Path {
                    Matcher::Path(a0.as_str().into())
                } else {
                    Matcher::PathPrefix(a0.as_str().into())
                }
            }
            MatcherKind::PathRegexp => Matcher::PathRegexp(regex(a0, c0)?),
            MatcherKind::Method => Matcher::Method(a0.to_ascii_uppercase().into()),
            MatcherKind::Header | MatcherKind::HeaderRegexp => {
                let name = header_name(a0);
                let (v, c1) = arg1.map(|(v, c)| (v.as_str(), *c)).unwrap_or(("", col));
                if kind == MatcherKind::Header {
                    Matcher::Header {
                        name,
                        value: v.into(),
                    }
                } else {
                    Matcher::HeaderRegexp {
                        name,
                        re: regex(v, c1)?,
                    }
                }
            }
            MatcherKind::Query | MatcherKind::QueryRegexp => match arg1 {
                Some((v, c1)) if kind == MatcherKind::QueryRegexp => Matcher::QueryRegexp {
                    key: a0.as_str().into(),
                    re: regex(v, *c1)?,
                },
                // `Query(key)` and one-argument `QueryRegexp(key)` match a key
                // present with an empty value.
                _ => Matcher::Query {
                    key: a0.as_str().into(),
                    value: arg1.map(|(v, _)| v.as_str()).unwrap_or("").into(),
                },
            },
            MatcherKind::ClientIp => {
                let net = IpNet::parse(a0).ok_or_else(|| {
                    RuleError::new(c0, format!("invalid IP or CIDR {a0:?} for ClientIP"))
                })?;
                Matcher::ClientIp(Box::new([net]))
            }
        })
    }
}

fn header_name(key: &str) -> Option<HeaderName> {
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
        let h = if lower.contains('ſ') {
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
                *matches_empty || re.is_match(ctx.host_lower().as_bytes())
            }
            Matcher::Path(p) => req.path == &**p,
            Matcher::PathPrefix(p) => req.path.starts_with(&**p),
            Matcher::PathRegexp(re) => re.is_match(req.path.as_bytes()),
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
                    .any(|v| re.is_match(v.as_bytes()))
            }),
            Matcher::Query { key, value } => query_pairs(req.query).any(|(k, v)| {
                // Go's ParseQuery drops a pair whose key or value fails to
                // unescape.
                query_eq(k, key.as_bytes()) == Some(true)
                    && query_eq(v, value.as_bytes()) == Some(true)
            }),
            Matcher::QueryRegexp { key, re } => query_pairs(req.query).any(|(k, v)| {
                if query_eq(k, key.as_bytes()) != Some(true) {
                    return false;
                }
                match query_decode(v, req.arena) {
                    Some(decoded) => re.is_match(decoded),
                    None => false,
                }
            }),
            Matcher::ClientIp(nets) => nets.iter().any(|n| n.contains(req.client_ip)),
        }
    }
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

// === query ===

/// `key=value` pieces of a raw query, split on `&` and `;` (Traefik wraps its
/// handler in `http.AllowQuerySemicolons` unless `encodeQuerySemicolons`).
fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (&[u8], &[u8])> {
    query
        .unwrap_or("")
        .as_bytes()
        .split(|&b| b == b'&' || b == b';')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(i) => (&p[..i], &p[i + 1..]),
            None => (p, &p[p.len()..]),
        })
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes one byte of a query component at `raw[*i]` (Go's
/// `QueryUnescape`); `None` on an invalid escape.
fn next_decoded(raw: &[u8], i: &mut usize) -> Option<u8> {
    let b = raw[*i];
    match b {
        b'%' => {
            let h = hex(*raw.get(*i + 1)?)?;
            let l = hex(*raw.get(*i + 2)?)?;
            *i += 3;
            Some(h * 16 + l)
        }
        b'+' => {
            *i += 1;
            Some(b' ')
        }
        _ => {
            *i += 1;
            Some(b)
        }
    }
}

/// Whether the query component `raw` decodes to `target`: `None` if `raw`
/// is not a valid encoding. Streams: no buffer.
fn query_eq(raw: &[u8], target: &[u8]) -> Option<bool> {
    let mut i = 0;
    let mut t = 0;
    let mut equal = true;
    while i < raw.len() {
        let b = next_decoded(raw, &mut i)?;
        if equal {
            if target.get(t) == Some(&b) {
                t += 1;
            } else {
                equal = false;
            }
        }
    }
    Some(equal && t == target.len())
}

/// The decoded query component, borrowing `raw` when nothing is encoded.
fn query_decode<'a>(raw: &'a [u8], arena: &'a bumpalo::Bump) -> Option<&'a [u8]> {
    if !raw.iter().any(|&b| b == b'%' || b == b'+') {
        return Some(raw);
    }
    let mut out = BumpVec::with_capacity_in(raw.len(), arena);
    let mut i = 0;
    while i < raw.len() {
        out.push(next_decoded(raw, &mut i)?);
    }
    Some(out.into_bump_slice())
}

// === ClientIP ===
