//! The generator of the differential test: routers over a shared
//! vocabulary (v3 rules, with Go regexp constructs, and v2 rules for
//! `ruleSyntax: v2`, see `v2.rs`) and requests shaped after them.
//! Deterministic for a seed.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::support::{NamedBackends, yaml_str};
use super::v2::V2Atom;

// === deterministic randomness ===

pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    pub(crate) fn pick<'a, T>(&mut self, s: &'a [T]) -> &'a T {
        &s[self.below(s.len())]
    }
}

// === the vocabulary rules and requests share ===

pub(crate) const HOSTS: &[&str] = &[
    "a.test",
    "b.test",
    "c.test",
    "api.example.com",
    "www.example.com",
    "shop.example.com",
    "deep.api.example.com",
    "example.org",
    "x.internal",
    "localhost",
    "d.test",
    "e.test",
    "m.example.com",
    "api.example.org",
    "foo.internal",
    "a.b.c.test",
];
pub(crate) const WILDCARDS: &[&str] = &["*.example.com", "*.test", "*.api.example.com", "*.org"];
pub(crate) const WILDCARD_LABELS: &[&str] = &["a", "www", "zz", "api", "x-1"];
pub(crate) const HOST_REGEXPS: &[&str] = &[
    r"^[a-z]+\.example\.com$",
    r"\.test$",
    r"^(a|b)\.test$",
    r"example",
    r"^api\.",
    r"(?i)^WWW\.",
    r"^\w+\.org$",
    r"^[^.]+\.internal$",
    r"^\d",
    // Go regexp constructs that Rust's syntax reads differently or refuses.
    r"^[[:alnum:]-]+\.example\.com$",
    r"^\Qapi.\E",
    r"^[a-z]{1,3}\.test$",
    r"^{sub}\.test$",
    r"^(?P<sub>[a-z]+)\.(?P<sub>org)$",
    r"^\x{61}\.test$",
    r"^[\pL\d-]+\.internal$",
];
pub(crate) const PATHS: &[&str] = &[
    "/",
    "/api",
    "/api/",
    "/api/v1",
    "/api/v1/users",
    "/api/v2",
    "/static",
    "/static/css/site.css",
    "/admin",
    "/health",
    "/users/42",
    "/a%2Fb",
    "/café",
    "/a b",
    "/x;y",
];
pub(crate) const PATH_SUFFIXES: &[&str] = &[
    "",
    "/",
    "x",
    "/x",
    "/users",
    "/42",
    "/app.js",
    "/site.css",
    "-old",
    "/a/b/c",
];
pub(crate) const PATH_REGEXPS: &[&str] = &[
    r"^/api/v[0-9]+",
    r"\.css$",
    r"^/users/\d+$",
    r"/admin",
    r"^/[a-z]+/?$",
    r"\w+\.js$",
    r"(?i)^/STATIC",
    r"^/a%2F",
    r"^/caf",
    r"^/$",
    // Go regexp constructs that Rust's syntax reads differently or refuses.
    r"^/api/v{1}\d",
    r"^/\Qstatic/css\E/",
    r"^/[[:alpha:]]+/\d{2}$",
    r"(?i)^/API/V\d",
    r"^/users/(?P<id>\d+)$",
    r"^/caf\x{e9}",
    r"^/a{01}",
    r"^/\p{Ll}+$",
    r"^/[\d-]+$",
    r"\.css\z",
];
pub(crate) const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];
pub(crate) const HEADERS: &[(&str, &[&str])] = &[
    ("X-Env", &["prod", "staging", "dev"]),
    ("X-Tenant", &["t1", "t2", "t3"]),
    ("Accept", &["application/json", "text/html"]),
    ("User-Agent", &["curl/8.0", "Mozilla/5.0"]),
];
pub(crate) const HEADER_REGEXPS: &[(&str, &str)] = &[
    ("X-Env", "^st"),
    ("x-tenant", "[0-9]$"),
    ("User-Agent", "^curl/"),
    ("Accept", "json"),
    ("X-Env", "^(prod|dev)$"),
    ("User-Agent", r"^curl/\d"),
    ("Accept", "[[:alpha:]]+/json"),
    ("X-Env", "(?i)^PROD$"),
    ("X-Tenant", r"^t\d{1}$"),
];
pub(crate) const QUERIES: &[(&str, Option<&str>)] = &[
    ("mobile", Some("true")),
    ("id", Some("42")),
    ("q", Some("hello world")),
    ("debug", None),
    ("lang", Some("en")),
    ("tag", Some("a+b")),
    ("id", Some("7")),
];
pub(crate) const QUERY_REGEXPS: &[(&str, Option<&str>)] = &[
    ("id", Some(r"^[0-9]+$")),
    ("q", Some("hello")),
    ("lang", Some("^(en|fr)$")),
    ("debug", None),
    ("tag", Some(r"^a\+")),
    ("id", Some(r"^\d{2}$")),
    ("q", Some(r"\Qhello w\E")),
];
pub(crate) const QUERY_VALUES: &[&str] = &["true", "42", "7", "en", "fr", "hello world", "", "x"];
pub(crate) const CLIENT_IPS: &[&str] = &[
    "127.0.0.1",
    "127.0.0.0/8",
    "127.0.0.2/31",
    "127.0.0.5",
    "10.0.0.0/8",
    "::1",
    "192.168.0.0/16",
    "127.0.0.0/30",
    "::ffff:127.0.0.3",
];
/// Source addresses the requests come from (all on Linux's 127/8 loopback).
pub(crate) const SOURCES: &[[u8; 4]] = &[
    [127, 0, 0, 1],
    [127, 0, 0, 2],
    [127, 0, 0, 3],
    [127, 0, 0, 5],
    [127, 0, 0, 9],
];

// === rules ===

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Host,
    HostWildcard,
    HostRegexp,
    Path,
    PathPrefix,
    PathRegexp,
    Method,
    Header,
    HeaderRegexp,
    Query,
    QueryRegexp,
    ClientIp,
    And,
    Or,
    Not,
    Parens,
    ExplicitPriority,
    DefaultPriority,
    /// The router has `ruleSyntax: v2`.
    SyntaxV2,
    V2Host,
    V2HostRegexp,
    V2Path,
    V2PathPrefix,
    V2Method,
    V2Headers,
    V2HeadersRegexp,
    V2Query,
    V2ClientIp,
}

#[derive(Clone, Debug)]
pub(crate) enum Atom {
    Host(String),
    HostRegexp(String),
    Path(String),
    PathPrefix(String),
    PathRegexp(String),
    Method(String),
    Header(String, String),
    HeaderRegexp(String, String),
    Query(String, Option<String>),
    QueryRegexp(String, Option<String>),
    ClientIp(String),
    /// A matcher of the v2 syntax (in v2 routers only).
    V2(V2Atom),
}

#[derive(Clone, Debug)]
pub(crate) enum Expr {
    Atom(Atom),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Parens(Box<Expr>),
}

impl Atom {
    fn kind(&self) -> Kind {
        match self {
            Atom::Host(h) if h.starts_with('*') => Kind::HostWildcard,
            Atom::Host(_) => Kind::Host,
            Atom::HostRegexp(_) => Kind::HostRegexp,
            Atom::Path(_) => Kind::Path,
            Atom::PathPrefix(_) => Kind::PathPrefix,
            Atom::PathRegexp(_) => Kind::PathRegexp,
            Atom::Method(_) => Kind::Method,
            Atom::Header(..) => Kind::Header,
            Atom::HeaderRegexp(..) => Kind::HeaderRegexp,
            Atom::Query(..) => Kind::Query,
            Atom::QueryRegexp(..) => Kind::QueryRegexp,
            Atom::ClientIp(_) => Kind::ClientIp,
            Atom::V2(a) => a.kind(),
        }
    }

    /// Any atom (of the v2 syntax when `v2`).
    fn random(rng: &mut Rng, v2: bool) -> Atom {
        if v2 {
            return Atom::V2(V2Atom::random(rng));
        }
        match rng.below(12) {
            0 => Atom::Path(rng.pick(PATHS).to_string()),
            1 | 2 => Atom::PathPrefix(rng.pick(PATHS).to_string()),
            3 => Atom::PathRegexp(rng.pick(PATH_REGEXPS).to_string()),
            4 => {
                let m = rng.pick(METHODS);
                Atom::Method(if rng.chance(15) {
                    m.to_lowercase()
                } else {
                    m.to_string()
                })
            }
            5 => {
                let (k, vs) = rng.pick(HEADERS);
                let k = if rng.chance(20) {
                    k.to_lowercase()
                } else {
                    k.to_string()
                };
                Atom::Header(k, rng.pick(vs).to_string())
            }
            6 => {
                let (k, re) = rng.pick(HEADER_REGEXPS);
                Atom::HeaderRegexp(k.to_string(), re.to_string())
            }
            7 => {
                let (k, v) = rng.pick(QUERIES);
                Atom::Query(k.to_string(), v.map(str::to_string))
            }
            8 => {
                let (k, v) = rng.pick(QUERY_REGEXPS);
                Atom::QueryRegexp(k.to_string(), v.map(str::to_string))
            }
            9 => Atom::ClientIp(rng.pick(CLIENT_IPS).to_string()),
            _ => Atom::host_like(rng, false),
        }
    }

    fn random_non_host(rng: &mut Rng, v2: bool) -> Atom {
        loop {
            let a = Atom::random(rng, v2);
            if !a.is_host() {
                return a;
            }
        }
    }

    fn is_host(&self) -> bool {
        match self {
            Atom::Host(_) | Atom::HostRegexp(_) => true,
            Atom::V2(a) => a.is_host(),
            _ => false,
        }
    }

    fn is_broad(&self) -> bool {
        match self {
            Atom::ClientIp(_) | Atom::Method(_) => true,
            Atom::V2(a) => a.is_broad(),
            _ => false,
        }
    }

    fn host_like(rng: &mut Rng, v2: bool) -> Atom {
        if v2 {
            return Atom::V2(V2Atom::host_like(rng));
        }
        match rng.below(10) {
            0..=5 => Atom::Host(rng.pick(HOSTS).to_string()),
            6 | 7 => Atom::Host(rng.pick(WILDCARDS).to_string()),
            _ => Atom::HostRegexp(rng.pick(HOST_REGEXPS).to_string()),
        }
    }

    /// `Name(args)` with Traefik's accepted spellings and Go string forms.
    fn render(&self, rng: &mut Rng, out: &mut String) {
        let (name, args): (&str, Vec<&str>) = match self {
            Atom::Host(h) => ("Host", vec![h]),
            Atom::HostRegexp(r) => ("HostRegexp", vec![r]),
            Atom::Path(p) => ("Path", vec![p]),
            Atom::PathPrefix(p) => ("PathPrefix", vec![p]),
            Atom::PathRegexp(r) => ("PathRegexp", vec![r]),
            Atom::Method(m) => ("Method", vec![m]),
            Atom::Header(k, v) => ("Header", vec![k, v]),
            Atom::HeaderRegexp(k, r) => ("HeaderRegexp", vec![k, r]),
            Atom::Query(k, v) => (
                "Query",
                std::iter::once(k.as_str()).chain(v.as_deref()).collect(),
            ),
            Atom::QueryRegexp(k, r) => (
                "QueryRegexp",
                std::iter::once(k.as_str()).chain(r.as_deref()).collect(),
            ),
            Atom::ClientIp(ip) => ("ClientIP", vec![ip]),
            Atom::V2(a) => a.call(),
        };
        // Traefik registers each matcher as written, lower-case, upper-case
        // and title-of-lower-case.
        match rng.below(40) {
            0 => out.push_str(&name.to_lowercase()),
            1 => out.push_str(&name.to_uppercase()),
            2 => {
                let lower = name.to_lowercase();
                out.push_str(&lower[..1].to_uppercase());
                out.push_str(&lower[1..]);
            }
            _ => out.push_str(name),
        }
        out.push('(');
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                out.push_str(if rng.chance(50) { ", " } else { "," });
            }
            if rng.chance(12) {
                // A Go interpreted string literal.
                out.push('"');
                for c in a.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        c => out.push(c),
                    }
                }
                out.push('"');
            } else {
                out.push('`');
                out.push_str(a);
                out.push('`');
            }
        }
        out.push(')');
    }
}

impl Expr {
    /// A router's rule: mostly "a host requirement && more", as real
    /// configurations are, plus free-form trees. The flag tells a broad rule
    /// (one that matches much of the corpus); those get low priorities so
    /// that they do not shadow every specific router.
    /// `v2` draws the matchers from the v2 syntax.
    fn random_rule(rng: &mut Rng, v2: bool) -> (Expr, bool) {
        match rng.below(20) {
            0..=13 | 18 => {
                let host = Atom::host_like(rng, v2);
                let regexp = matches!(host, Atom::HostRegexp(_))
                    || matches!(&host, Atom::V2(a) if a.is_broad_host());
                let mut v = vec![Expr::Atom(host)];
                for _ in 0..rng.below(3) {
                    v.push(match rng.below(20) {
                        0..=13 => Expr::Atom(Atom::random_non_host(rng, v2)),
                        14..=16 => Expr::Not(Box::new(Expr::Atom(Atom::random(rng, v2)))),
                        17 | 18 => Expr::Or(vec![
                            Expr::Atom(Atom::random_non_host(rng, v2)),
                            Expr::Atom(Atom::random(rng, v2)),
                        ]),
                        _ => Expr::Parens(Box::new(Expr::random(rng, 1, v2))),
                    });
                }
                if v.len() == 1 {
                    (v.pop().unwrap(), regexp)
                } else {
                    (Expr::And(v), false)
                }
            }
            14..=16 if v2 => (Expr::Atom(Atom::V2(V2Atom::several_hosts(rng))), false),
            14..=16 => {
                let mut one = || Expr::Atom(Atom::Host(rng.pick(HOSTS).to_string()));
                (Expr::Or(vec![one(), one()]), false)
            }
            17 => loop {
                // Not a ClientIP or Method alone: they match a large share
                // of the corpus.
                let a = Atom::random_non_host(rng, v2);
                if !a.is_broad() {
                    break (Expr::Atom(a), true);
                }
            },
            _ => match Expr::random(rng, 2, v2) {
                // A top-level negation matches nearly everything: pair it.
                e @ Expr::Not(_) => (
                    Expr::And(vec![Expr::Atom(Atom::random_non_host(rng, v2)), e]),
                    true,
                ),
                e => (e, true),
            },
        }
    }

    fn random(rng: &mut Rng, depth: u32, v2: bool) -> Expr {
        if depth == 0 {
            return Expr::Atom(Atom::random(rng, v2));
        }
        match rng.below(10) {
            0..=4 => Expr::Atom(Atom::random(rng, v2)),
            5 | 6 => Expr::Not(Box::new(Expr::random(rng, depth - 1, v2))),
            7 => Expr::Or(
                (0..2 + rng.below(2))
                    .map(|_| Expr::random(rng, depth - 1, v2))
                    .collect(),
            ),
            8 => Expr::And((0..2).map(|_| Expr::random(rng, depth - 1, v2)).collect()),
            _ => Expr::Parens(Box::new(Expr::random(rng, depth - 1, v2))),
        }
    }

    fn render(&self, rng: &mut Rng, out: &mut String) {
        match self {
            Expr::Atom(a) => a.render(rng, out),
            Expr::And(v) | Expr::Or(v) => {
                let and = matches!(self, Expr::And(_));
                for (i, e) in v.iter().enumerate() {
                    if i > 0 {
                        out.push_str(if and { " && " } else { " || " });
                    }
                    // `&&` binds tighter than `||`: only an `||` inside an
                    // `&&` needs parentheses.
                    let wrap = and && matches!(e, Expr::Or(_));
                    if wrap {
                        out.push('(');
                    }
                    e.render(rng, out);
                    if wrap {
                        out.push(')');
                    }
                }
            }
            Expr::Not(e) => {
                out.push('!');
                let wrap = matches!(**e, Expr::And(_) | Expr::Or(_));
                if wrap {
                    out.push('(');
                }
                e.render(rng, out);
                if wrap {
                    out.push(')');
                }
            }
            Expr::Parens(e) => {
                out.push('(');
                e.render(rng, out);
                out.push(')');
            }
        }
    }

    fn kinds(&self, out: &mut BTreeSet<Kind>) {
        match self {
            Expr::Atom(a) => {
                out.insert(a.kind());
            }
            Expr::And(v) | Expr::Or(v) => {
                out.insert(if matches!(self, Expr::And(_)) {
                    Kind::And
                } else {
                    Kind::Or
                });
                v.iter().for_each(|e| e.kinds(out));
            }
            Expr::Not(e) => {
                out.insert(Kind::Not);
                e.kinds(out);
            }
            Expr::Parens(e) => {
                out.insert(Kind::Parens);
                e.kinds(out);
            }
        }
    }

    /// Atoms a request should satisfy to likely match (one branch of each
    /// `||`, nothing under `!`).
    fn positive_atoms<'a>(&'a self, rng: &mut Rng, out: &mut Vec<&'a Atom>) {
        match self {
            Expr::Atom(a) => out.push(a),
            Expr::And(v) => v.iter().for_each(|e| e.positive_atoms(rng, out)),
            Expr::Or(v) => v[rng.below(v.len())].positive_atoms(rng, out),
            Expr::Not(_) => {}
            Expr::Parens(e) => e.positive_atoms(rng, out),
        }
    }
}

pub(crate) struct Router {
    pub(crate) name: String,
    pub(crate) rule: String,
    pub(crate) expr: Expr,
    /// `None`: the default, `len(rule)`.
    pub(crate) priority: Option<i64>,
    /// Written in the v2 syntax (`ruleSyntax: v2`).
    pub(crate) v2: bool,
}

impl Router {
    /// The matchers, operators and features the router uses.
    pub(crate) fn kinds(&self) -> BTreeSet<Kind> {
        let mut kinds = BTreeSet::new();
        self.expr.kinds(&mut kinds);
        kinds.insert(if self.priority.is_some() {
            Kind::ExplicitPriority
        } else {
            Kind::DefaultPriority
        });
        if self.v2 {
            kinds.insert(Kind::SyntaxV2);
        }
        kinds
    }

    pub(crate) fn effective_priority(&self) -> i64 {
        self.priority.unwrap_or(self.rule.len() as i64)
    }
}

/// Routers with pairwise distinct effective priorities (Traefik's order among
/// equal priorities is undefined); a quarter of them in the v2 syntax.
pub(crate) fn generate_routers(rng: &mut Rng, n: usize) -> Vec<Router> {
    let mut routers: Vec<(Router, bool)> = (0..n)
        .map(|i| {
            let v2 = rng.chance(25);
            let (expr, broad) = Expr::random_rule(rng, v2);
            let mut rule = String::new();
            expr.render(rng, &mut rule);
            let r = Router {
                name: format!("r{i:03}"),
                rule,
                expr,
                priority: None,
                v2,
            };
            (r, broad)
        })
        .collect();
    let mut used = BTreeSet::new();
    // Broad rules first, at the bottom: above the specific routers they
    // would answer most of the corpus. Half of them negative (fallbacks,
    // as Traefik's documentation writes them).
    for (r, _) in routers.iter_mut().filter(|(_, broad)| *broad) {
        let p = unused(&used, rng.below(80) as i64 - 40);
        r.priority = Some(p);
        used.insert(p);
    }
    // Then the others, around a priority growing with their specificity:
    // explicit, or by default `len(rule)`, the rule padded up to a free
    // length (spaces and parentheses mean nothing to the parser but count).
    for (r, _) in routers.iter_mut().filter(|(_, broad)| !*broad) {
        let want = specific_priority(&r.expr, rng);
        if rng.chance(50) {
            let p = unused(&used, want);
            r.priority = Some(p);
            used.insert(p);
            continue;
        }
        let mut target = want.max(r.rule.len() as i64);
        while used.contains(&target) {
            target += 1;
        }
        let mut parens = 0;
        while (r.rule.len() as i64) < target {
            let left = target - r.rule.len() as i64;
            if left >= 2 && parens < 8 && rng.chance(40) {
                r.rule = format!("({})", r.rule);
                parens += 1;
            } else if rng.chance(30) {
                r.rule.insert(0, ' ');
            } else {
                r.rule.push(' ');
            }
        }
        used.insert(target);
    }
    if std::env::var_os("DIFF_DEBUG").is_some() {
        for (r, b) in &routers {
            eprintln!(
                "{} broad={b} len={} prio={:?} {}",
                r.name,
                r.rule.len(),
                r.priority,
                r.rule.trim()
            );
        }
    }
    routers.into_iter().map(|(r, _)| r).collect()
}

/// An explicit priority growing with the number of conditions (as people
/// write them: the more specific router first), spread wide enough for
/// hundreds of distinct values.
fn specific_priority(e: &Expr, rng: &mut Rng) -> i64 {
    let mut atoms = Vec::new();
    e.positive_atoms(&mut Rng(1), &mut atoms);
    let (base, spread) = match atoms.len() {
        0 | 1 => (1, 200),
        2 => (50, 450),
        _ => (100, 700),
    };
    base + rng.below(spread) as i64
}

/// The free priority nearest to `p`, never 0 (which means "not set").
fn unused(used: &BTreeSet<i64>, p: i64) -> i64 {
    (0..)
        .flat_map(|d| [p - d, p + d])
        .find(|q| *q != 0 && !used.contains(q))
        .unwrap()
}

/// The router that tells both servers are ready; above every generated
/// priority, on a host no request uses.
pub(crate) const READY_HOST: &str = "ready.diff.invalid";

pub(crate) fn dynamic_yaml(routers: &[Router], backends: &NamedBackends) -> String {
    let mut s = String::from("http:\n  routers:\n");
    let _ = write!(
        s,
        "    ready:\n      rule: 'Host(`{READY_HOST}`)'\n      priority: 1000000\n      service: svc-ready\n"
    );
    for r in routers {
        let _ = write!(
            s,
            "    {}:\n      rule: {}\n      service: svc-{}\n",
            r.name,
            yaml_str(&r.rule),
            r.name
        );
        if let Some(p) = r.priority {
            let _ = writeln!(s, "      priority: {p}");
        }
        if r.v2 {
            s += "      ruleSyntax: v2\n";
        }
    }
    s += "  services:\n";
    let names = routers.iter().map(|r| r.name.as_str()).chain(["ready"]);
    for (i, name) in names.enumerate() {
        let _ = write!(
            s,
            "    svc-{name}:\n      loadBalancer:\n        servers:\n          - url: \"http://{}\"\n",
            backends.addrs[i]
        );
    }
    s
}

// === requests ===

#[derive(Clone, Debug)]
pub(crate) struct Req {
    pub(crate) source: Ipv4Addr,
    method: String,
    host: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    /// Which router it was shaped after, if any (for the report).
    pub(crate) guided_by: Option<usize>,
}

/// What a request shaped after a rule's atoms carries so far.
#[derive(Default)]
pub(crate) struct Guide {
    pub(crate) method: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) path: Option<String>,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) source: Option<Ipv4Addr>,
}

/// A value of header `k` from the vocabulary.
pub(crate) fn header_value(rng: &mut Rng, k: &str) -> String {
    let vals = HEADERS
        .iter()
        .find(|(hk, _)| hk.eq_ignore_ascii_case(k))
        .map_or(&["x"][..], |(_, v)| *v);
    rng.pick(vals).to_string()
}

impl Req {
    pub(crate) fn bytes(&self) -> Vec<u8> {
        let mut s = format!("{} {}", self.method, self.path);
        if let Some(q) = &self.query {
            s.push('?');
            s.push_str(q);
        }
        let _ = write!(s, " HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (k, v) in &self.headers {
            let _ = write!(s, "{k}: {v}\r\n");
        }
        s.push_str("Connection: close\r\n\r\n");
        s.into_bytes()
    }

    pub(crate) fn describe(&self) -> String {
        let mut s = format!(
            "from {} {} http://{}{}",
            self.source, self.method, self.host, self.path
        );
        if let Some(q) = &self.query {
            s.push('?');
            s.push_str(q);
        }
        for (k, v) in &self.headers {
            let _ = write!(s, " [{k}: {v}]");
        }
        s
    }
}

fn query_escape(v: &str, rng: &mut Rng) -> String {
    let mut s = String::new();
    for c in v.chars() {
        match c {
            ' ' if rng.chance(50) => s.push('+'),
            ' ' => s.push_str("%20"),
            '+' => s.push_str("%2B"),
            'a'..='z' if rng.chance(5) => {
                let _ = write!(s, "%{:02X}", c as u32);
            }
            c => s.push(c),
        }
    }
    s
}

/// Percent-encodes or otherwise reshapes a path the way clients and attackers
/// do: escapes of unreserved and reserved characters, dot segments, double
/// slashes, trailing slashes, lower-case hex.
fn mutate_path(p: &str, rng: &mut Rng) -> String {
    let mut p = p.to_string();
    match rng.below(22) {
        0 => {
            // Escape one ASCII letter.
            if let Some((i, c)) = p.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
                let hex = if rng.chance(50) {
                    format!("%{:02X}", c as u32)
                } else {
                    format!("%{:02x}", c as u32)
                };
                p.replace_range(i..i + 1, &hex);
            }
        }
        1 => p = format!("/x/..{p}"),
        2 => p = format!("/.{p}"),
        3 => p = p.replacen('/', "//", 1),
        4 => p.push('/'),
        5 => p = format!("/x/%2e%2e{p}"),
        6 => p = format!("/{}", p[1..].replace('/', "%2F")),
        7 => p.push_str("/.."),
        8 => p = p.replacen('/', "/%2e/", 1),
        9 => p.push_str("%20"),
        10 => p.push_str("%zz"),
        11 => p.push_str("%25"),
        12 => p = p.to_uppercase(),
        13 => p.push_str("%3B"),
        14 => p = format!("/x%5C..{p}"),
        15 => p.push_str("%00"),
        16 => p = p.replace("%2F", "%2f"),
        _ => {}
    }
    p
}

/// Request-line form of a path: raw UTF-8 and spaces escaped, the way a
/// client sends them (sometimes keeping UTF-8 raw; Go accepts it).
fn wire_path(p: &str, rng: &mut Rng) -> String {
    let raw_utf8 = rng.chance(20);
    let mut s = String::new();
    for c in p.chars() {
        if c == ' ' {
            s.push_str("%20");
        } else if !c.is_ascii() && !raw_utf8 {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(s, "%{b:02X}");
            }
        } else {
            s.push(c);
        }
    }
    s
}

fn random_host(rng: &mut Rng) -> String {
    if rng.chance(20) {
        let w = rng.pick(WILDCARDS);
        format!("{}{}", rng.pick(WILDCARD_LABELS), &w[1..])
    } else if rng.chance(12) {
        // Hosts no Host or wildcard rule names (some near misses).
        rng.pick(&[
            "unknown.nowhere",
            "test",
            "b.test.evil",
            "example.com",
            "xtest",
            "127.0.0.1",
            "a.test..",
        ])
        .to_string()
    } else {
        rng.pick(HOSTS).to_string()
    }
}

pub(crate) fn generate_request(rng: &mut Rng, routers: &[Router]) -> Req {
    let mut g = Guide::default();
    let mut guided_by = None;
    if rng.chance(80) {
        let i = rng.below(routers.len());
        guided_by = Some(i);
        let mut atoms = Vec::new();
        routers[i].expr.positive_atoms(rng, &mut atoms);
        for a in atoms {
            match a {
                Atom::Host(h) => {
                    g.host = Some(match h.strip_prefix('*') {
                        Some(suffix) => format!("{}{suffix}", rng.pick(WILDCARD_LABELS)),
                        None => h.clone(),
                    })
                }
                Atom::HostRegexp(_) => g.host = Some(random_host(rng)),
                Atom::Path(p) => g.path = Some(p.clone()),
                Atom::PathPrefix(p) => g.path = Some(format!("{p}{}", rng.pick(PATH_SUFFIXES))),
                Atom::PathRegexp(re) => {
                    // A few paths the vocabulary regexes match.
                    let cands: &[&str] = match re.as_str() {
                        r"\.css$" | r"\.css\z" => &["/static/css/site.css", "/x.css"],
                        r"\w+\.js$" => &["/app.js", "/static/app.js"],
                        r"^/users/\d+$" | r"^/users/(?P<id>\d+)$" => &["/users/42", "/users/7"],
                        r"(?i)^/STATIC" => &["/static/x", "/Static"],
                        r"^/a%2F" => &["/a%2Fb", "/a%2fb/c"],
                        r"^/caf" | r"^/caf\x{e9}" => &["/café", "/cafe"],
                        r"^/\Qstatic/css\E/" => &["/static/css/site.css", "/static/cssx"],
                        r"^/[[:alpha:]]+/\d{2}$" => &["/users/42", "/users/7"],
                        r"(?i)^/API/V\d" | r"^/api/v{1}\d" => &["/api/v1", "/API/V2/x"],
                        r"^/a{01}" => &["/a%7B01%7D", "/a%7B01%7D/x", "/a"],
                        r"^/\p{Ll}+$" => &["/admin", "/café", "/Admin"],
                        r"^/[\d-]+$" => &["/42-7", "/-", "/4a"],
                        _ => &["/api/v1/x", "/admin/", "/api/v2", "/health", "/"],
                    };
                    g.path = Some(rng.pick(cands).to_string());
                }
                Atom::Method(m) => g.method = Some(m.to_uppercase()),
                Atom::Header(k, v) => g.headers.push((k.clone(), v.clone())),
                Atom::HeaderRegexp(k, _) => {
                    let v = header_value(rng, k);
                    g.headers.push((k.clone(), v));
                }
                Atom::Query(k, v) => g.query.push((k.clone(), v.clone().unwrap_or_default())),
                Atom::QueryRegexp(k, _) => g
                    .query
                    .push((k.clone(), rng.pick(QUERY_VALUES).to_string())),
                Atom::ClientIp(_) => g.source = Some(Ipv4Addr::from(*rng.pick(SOURCES))),
                Atom::V2(a) => a.guide(rng, &mut g),
            }
        }
    }
    let Guide {
        method,
        host,
        path,
        mut query,
        mut headers,
        source,
    } = g;
    let mut host = host.unwrap_or_else(|| random_host(rng));
    let path = path.unwrap_or_else(|| format!("{}{}", rng.pick(PATHS), rng.pick(PATH_SUFFIXES)));
    let mut method = method.unwrap_or_else(|| {
        if rng.chance(60) {
            "GET"
        } else {
            rng.pick(METHODS)
        }
        .to_string()
    });
    // Noise: extra headers and query pairs that may or may not matter.
    while rng.chance(30) {
        let (k, vs) = rng.pick(HEADERS);
        let k = if rng.chance(30) {
            k.to_lowercase()
        } else {
            k.to_string()
        };
        headers.push((k, rng.pick(vs).to_string()));
    }
    while rng.chance(25) {
        let (k, _) = rng.pick(QUERIES);
        query.push((k.to_string(), rng.pick(QUERY_VALUES).to_string()));
    }
    // Reshaping.
    match rng.below(25) {
        0 => host = host.to_uppercase(),
        1 => host.push_str(":8080"),
        2 => host.push('.'),
        3 => host = format!("{host}:80"),
        _ => {}
    }
    if rng.chance(3) {
        method = method.to_lowercase();
    }
    let path = wire_path(&mutate_path(&path, rng), rng);
    let query = if query.is_empty() && !rng.chance(5) {
        None
    } else {
        let sep = if rng.chance(15) { ";" } else { "&" };
        Some(
            query
                .iter()
                .map(|(k, v)| {
                    if v.is_empty() && rng.chance(50) {
                        k.clone()
                    } else {
                        format!("{k}={}", query_escape(v, rng))
                    }
                })
                .collect::<Vec<_>>()
                .join(sep),
        )
    };
    Req {
        source: source.unwrap_or_else(|| Ipv4Addr::from(*rng.pick(SOURCES))),
        method,
        host,
        path,
        query,
        headers,
        guided_by,
    }
}

// === sending ===
