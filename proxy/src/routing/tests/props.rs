//! Property tests: the indexed router agrees with the linear scan (rules of
//! both syntaxes mixed in one set), and the parser and path normaliser never
//! panic.

use bumpalo::Bump;
use proptest::prelude::*;

use super::support::Req;
use crate::routing::{
    LinearRouter, RouteEntry, Router, RuleSyntax, normalize_path, parse_rule, parse_rule_with,
};

const HOSTS: &[&str] = &[
    "a.com",
    "b.com",
    "x.a.com",
    "y.x.a.com",
    "A.COM",
    "b.com.",
    "localhost",
];
const PATHS: &[&str] = &["/", "/api", "/api/", "/api/v1", "/apix", "/b", "/b/c"];

fn quote(s: &str, dq: bool) -> String {
    if dq {
        format!("\"{s}\"")
    } else {
        format!("`{s}`")
    }
}

fn leaf() -> impl Strategy<Value = String> {
    let host = (prop::sample::select(HOSTS), any::<bool>())
        .prop_map(|(h, dq)| format!("Host({})", quote(h, dq)));
    let wild = prop::sample::select(&["*.a.com", "*.x.a.com", "*", "*.com."][..])
        .prop_map(|h| format!("Host(`{h}`)"));
    let path = (prop::sample::select(PATHS), any::<bool>())
        .prop_map(|(p, dq)| format!("Path({})", quote(p, dq)));
    let prefix = prop::sample::select(PATHS).prop_map(|p| format!("PathPrefix(`{p}`)"));
    let other = prop::sample::select(
        &[
            "Method(`GET`)",
            "Method(`post`)",
            "Header(`X-A`, `1`)",
            "HeaderRegexp(`x-a`, `^[0-9]$`)",
            "HostRegexp(`^x\\.`)",
            "PathRegexp(`^/api/v\\d`)",
            "Query(`q`, `1`)",
            "Query(`q`)",
            "QueryRegexp(`q`, `^\\d+$`)",
            "ClientIP(`10.0.0.0/8`)",
            "ClientIP(`192.168.0.1`)",
        ][..],
    )
    .prop_map(str::to_owned);
    prop_oneof![3 => host, 1 => wild, 2 => path, 3 => prefix, 2 => other]
}

/// v2 matchers: several values, mux templates (indexed by exact host,
/// wildcard suffix or path prefix where their shape allows), first-value
/// queries.
fn leaf_v2() -> impl Strategy<Value = String> {
    let hosts = prop::collection::vec(prop::sample::select(HOSTS), 1..3).prop_map(|hs| {
        let args: Vec<String> = hs.iter().map(|h| format!("`{h}`")).collect();
        format!("Host({})", args.join(", "))
    });
    let paths = prop::collection::vec(prop::sample::select(PATHS), 1..3).prop_map(|ps| {
        let args: Vec<String> = ps.iter().map(|p| format!("`{p}`")).collect();
        format!("Path({})", args.join(", "))
    });
    let other = prop::sample::select(
        &[
            "Host(`*`)",
            "HostHeader(`a.com`)",
            "HostRegexp(`{sub:[a-z]+}.a.com`)",
            "HostRegexp(`{sub}.x.a.com`)",
            "HostRegexp(`a.com`)",
            "HostRegexp(`A.COM.`, `b.com`)",
            "HostRegexp(`{h:.*}`)",
            "HostRegexp(`{h:[a-z.]+}.com`)",
            "Path(`/api/{v}`)",
            "Path(`/{p}`)",
            "PathPrefix(`/api/{v:v[0-9]}`)",
            "PathPrefix(`/apix`, `/b/`)",
            "PathPrefix(`/{x:[a-z]}`)",
            "Method(`GET`, `post`)",
            "Headers(`X-A`, `1`)",
            "HeadersRegexp(`x-a`, `^[0-9]$`)",
            "Query(`q=1`)",
            "Query(`q=`)",
            "Query(`q={v:[0-9]+}`)",
            "ClientIP(`10.0.0.0/8`, `::1`)",
        ][..],
    )
    .prop_map(str::to_owned);
    prop_oneof![3 => hosts, 2 => paths, 4 => other]
}

fn combine(leaf: impl Strategy<Value = String> + 'static) -> impl Strategy<Value = String> {
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} && {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} || {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
            inner.clone().prop_map(|a| format!("!{a}")),
            inner.prop_map(|a| format!("!({a})")),
        ]
    })
}

fn rule() -> impl Strategy<Value = (String, RuleSyntax)> {
    prop_oneof![
        combine(leaf()).prop_map(|r| (r, RuleSyntax::V3)),
        combine(leaf_v2()).prop_map(|r| (r, RuleSyntax::V2)),
    ]
}

type Entry = (String, (String, RuleSyntax), Option<i64>);

fn entries() -> impl Strategy<Value = Vec<Entry>> {
    prop::collection::vec(
        (
            prop::sample::select(&["r0", "r1", "r2", "r3", "r4", "r5"][..]).prop_map(str::to_owned),
            rule(),
            prop::option::of(-5i64..40),
        ),
        0..24,
    )
}

#[derive(Debug, Clone)]
struct TestReq {
    host: String,
    path: String,
    method: &'static str,
    header: Option<&'static str>,
    query: Option<&'static str>,
    ip: &'static str,
}

fn request() -> impl Strategy<Value = TestReq> {
    let hosts = prop::sample::select(
        &[
            "a.com",
            "b.com",
            "x.a.com",
            "y.x.a.com",
            "z.a.com",
            "A.com",
            "b.com.",
            "c.com",
            "",
            "localhost",
            "x.com",
        ][..],
    );
    let paths = prop::sample::select(
        &[
            "/",
            "/api",
            "/api/",
            "/api/v1",
            "/api/v1/x",
            "/apix",
            "/apix/y",
            "/b",
            "/b/c",
            "/c",
            "/ap",
        ][..],
    );
    (
        hosts,
        paths,
        prop::sample::select(&["GET", "POST"][..]),
        prop::option::of(prop::sample::select(&["1", "2"][..])),
        prop::option::of(prop::sample::select(&["q=1", "q=", "q=12", "r=1"][..])),
        prop::sample::select(&["10.1.2.3", "192.168.0.1", "::1"][..]),
    )
        .prop_map(|(h, p, method, header, query, ip)| TestReq {
            host: h.to_owned(),
            path: p.to_owned(),
            method,
            header,
            query,
            ip,
        })
}

fn build(req: &TestReq) -> Req {
    let mut r = Req::new(&req.host, &req.path).method(req.method).ip(req.ip);
    if let Some(v) = req.header {
        r = r.header("x-a", v);
    }
    if let Some(q) = req.query {
        r = r.query(q);
    }
    r
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn router_agrees_with_linear_scan(set in entries(), reqs in prop::collection::vec(request(), 1..12)) {
        let mut list = Vec::new();
        for (i, (name, (text, syntax), prio)) in set.iter().enumerate() {
            let rule = parse_rule_with(text, *syntax)
                .map_err(|e| TestCaseError::fail(format!("{text} ({syntax:?}): {e}")))?;
            let priority = prio.unwrap_or_else(|| rule.default_priority());
            list.push(RouteEntry { name: name.clone(), rule, priority, value: i });
        }
        let indexed = Router::new(list.clone());
        let linear = LinearRouter::new(list);
        for req in &reqs {
            let r = build(req);
            prop_assert_eq!(indexed.route(&r.view()), linear.route(&r.view()), "{:?}", req);
        }
    }

    #[test]
    fn parser_never_panics_on_arbitrary_text(s in "\\PC{0,80}") {
        let _ = parse_rule(&s);
        let _ = parse_rule_with(&s, RuleSyntax::V2);
    }

    #[test]
    fn parser_never_panics_on_token_soup(tokens in prop::collection::vec(prop::sample::select(&[
        "Host", "host", "PathPrefix", "Query", "Header", "ClientIP", "HostRegexp", "(", ")", ",", "&&", "||", "!",
        "&", "|", "`a`", "`/`", "\"x\"", "\"\\", "`", "\"", "\n", " ", "/*", "*/", "//", "1", "'a'", "é", "\\u00e9",
        "`[`", "`(?x)`", "`10.0.0.0/8`", "==", "Headers", "HostHeader", "`{a:[0-9]+}`", "`/{p}`",
        "`k=v`", "`{`",
    ][..]), 0..30)) {
        let text: String = tokens.concat();
        for syntax in [RuleSyntax::V3, RuleSyntax::V2] {
            if let Err(e) = parse_rule_with(&text, syntax) {
                prop_assert!(e.column >= 1 && e.column <= text.chars().count() + 1, "{:?} {:?}", text, e);
            }
        }
    }

    #[test]
    fn go_regex_parser_never_panics(s in "[\\\\(){}\\[\\]^$.*+?|a-z0-9:,PQEpdswbBxU<>=!é_-]{0,30}") {
        if let Ok(re) = crate::routing::goregex::GoRegex::new(&s) {
            let _ = re.is_match(b"a{1}", &Bump::new());
        }
    }

    #[test]
    fn normalize_path_never_panics(s in "[/a.%0-9A-Fa-f#é!\" ]{0,24}") {
        let arena = Bump::new();
        if let Ok(out) = normalize_path(&s, &arena) {
            if s.starts_with('/') {
                prop_assert!(out.starts_with('/'), "{:?} -> {:?}", s, out);
            }
            prop_assert!(!out.contains("/../") && !out.contains("/./") && !out.contains("//"), "{:?} -> {:?}", s, out);
        }
    }
}
