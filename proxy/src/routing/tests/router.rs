//! Router unit tests: ordering, ties, index buckets.

use super::support::Req;
use crate::routing::{LinearRouter, RouteEntry, Router, RuleSyntax, parse_rule, parse_rule_with};

fn entry(name: &str, rule: &str, priority: Option<i64>) -> RouteEntry<String> {
    let rule = parse_rule(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
    let priority = priority.unwrap_or_else(|| rule.default_priority());
    RouteEntry {
        name: name.to_owned(),
        rule,
        priority,
        value: name.to_owned(),
    }
}

fn both(entries: Vec<RouteEntry<String>>) -> (Router<String>, LinearRouter<String>) {
    (Router::new(entries.clone()), LinearRouter::new(entries))
}

fn route<'r>(r: &'r (Router<String>, LinearRouter<String>), req: &Req) -> Option<&'r str> {
    let indexed = r.0.route(&req.view()).map(String::as_str);
    let linear = r.1.route(&req.view()).map(String::as_str);
    assert_eq!(indexed, linear, "host={} path={}", req.host, req.path);
    indexed
}

#[test]
fn longest_rule_wins_by_default() {
    let r = both(vec![
        entry("short", "PathPrefix(`/`)", None),
        entry("long", "PathPrefix(`/api`)", None),
        entry("host", "Host(`a.com`) && PathPrefix(`/api`)", None),
    ]);
    assert_eq!(route(&r, &Req::new("a.com", "/api/x")), Some("host"));
    assert_eq!(route(&r, &Req::new("b.com", "/api/x")), Some("long"));
    assert_eq!(route(&r, &Req::new("b.com", "/x")), Some("short"));
    assert_eq!(r.0.len(), 3);
    assert_eq!(r.1.len(), 3);
}

#[test]
fn explicit_priority_and_name_tie_break() {
    let r = both(vec![
        entry("b", "PathPrefix(`/`)", Some(10)),
        entry("a", "PathPrefix(`/x`)", Some(10)),
        entry("c", "Path(`/x`)", Some(5)),
    ]);
    assert_eq!(route(&r, &Req::new("h", "/x")), Some("a"));
    assert_eq!(route(&r, &Req::new("h", "/y")), Some("b"));
    let r = both(vec![
        entry("z", "Host(`h`)", Some(1)),
        entry("y", "Host(`h`)", Some(1)),
    ]);
    assert_eq!(route(&r, &Req::new("h", "/")), Some("y"));
    // A negative priority is below every default one (a fallback).
    let r = both(vec![
        entry("fallback", "PathPrefix(`/x`)", Some(-1)),
        entry("other", "Host(`h`)", None),
    ]);
    assert_eq!(route(&r, &Req::new("h", "/x")), Some("other"));
    assert_eq!(route(&r, &Req::new("g", "/x")), Some("fallback"));
}

#[test]
fn host_buckets_exact_wildcard_and_any() {
    let r = both(vec![
        entry("exact", "Host(`api.a.com`)", Some(1)),
        entry("wild", "Host(`*.a.com`)", Some(2)),
        entry("or", "Host(`b.com`) || Host(`c.com`)", Some(3)),
        entry("not", "!Host(`d.com`) && Path(`/only`)", Some(4)),
        entry("star", "Host(`*`) && Path(`/star`)", Some(5)),
        entry("dot", "Host(`e.com.`)", Some(6)),
        entry("regexp", "HostRegexp(`^f\\.`)", Some(7)),
    ]);
    assert_eq!(route(&r, &Req::new("api.a.com", "/")), Some("wild"));
    assert_eq!(route(&r, &Req::new("API.A.COM", "/")), Some("wild"));
    assert_eq!(route(&r, &Req::new("x.a.com.", "/")), Some("wild"));
    assert_eq!(route(&r, &Req::new("a.com", "/")), None);
    assert_eq!(route(&r, &Req::new("c.com", "/")), Some("or"));
    assert_eq!(route(&r, &Req::new("d.com", "/only")), None);
    assert_eq!(route(&r, &Req::new("x.com", "/only")), Some("not"));
    assert_eq!(route(&r, &Req::new("", "/star")), Some("star"));
    assert_eq!(route(&r, &Req::new("e.com", "/")), Some("dot"));
    assert_eq!(route(&r, &Req::new("e.com..", "/")), Some("dot"));
    assert_eq!(route(&r, &Req::new("f.x", "/")), Some("regexp"));
}

#[test]
fn path_trie_prefixes_and_exact() {
    let r = both(vec![
        entry("root", "PathPrefix(`/`)", Some(1)),
        entry("api", "PathPrefix(`/api`)", Some(2)),
        entry("apiv1", "PathPrefix(`/api/v1`)", Some(3)),
        entry("apix", "PathPrefix(`/apix`)", Some(4)),
        entry("exact", "Path(`/api/v1/health`)", Some(5)),
        entry("ab", "Path(`/a`) || Path(`/b`)", Some(6)),
        entry("neg", "!PathPrefix(`/api`) && Method(`POST`)", Some(7)),
    ]);
    assert_eq!(route(&r, &Req::new("h", "/api/v1/health")), Some("exact"));
    assert_eq!(route(&r, &Req::new("h", "/api/v1/healthz")), Some("apiv1"));
    assert_eq!(route(&r, &Req::new("h", "/api/v2")), Some("api"));
    assert_eq!(route(&r, &Req::new("h", "/apix/1")), Some("apix"));
    assert_eq!(route(&r, &Req::new("h", "/ap")), Some("root"));
    assert_eq!(route(&r, &Req::new("h", "/a")), Some("ab"));
    assert_eq!(route(&r, &Req::new("h", "/b")), Some("ab"));
    assert_eq!(route(&r, &Req::new("h", "/c").method("POST")), Some("neg"));
    assert_eq!(
        route(&r, &Req::new("h", "/api").method("POST")),
        Some("api")
    );
}

#[test]
fn duplicate_keys_evaluate_once_and_empty_router() {
    let r = both(vec![entry(
        "dup",
        "(Host(`a`) || Host(`a.`)) && (PathPrefix(`/x`) || PathPrefix(`/xy`))",
        None,
    )]);
    assert_eq!(route(&r, &Req::new("a", "/xyz")), Some("dup"));
    let empty = both(Vec::new());
    assert_eq!(route(&empty, &Req::new("a", "/")), None);
    assert!(empty.0.is_empty());
}

#[test]
fn many_routers_route_like_one() {
    let mut entries = Vec::new();
    for i in 0..2000 {
        entries.push(entry(
            &format!("h{i}"),
            &format!("Host(`svc{i}.example.com`) && PathPrefix(`/api`)"),
            None,
        ));
        entries.push(entry(
            &format!("p{i}"),
            &format!("PathPrefix(`/p{i}/`)"),
            None,
        ));
    }
    entries.push(entry("fallback", "PathPrefix(`/`)", Some(1)));
    let r = both(entries);
    assert_eq!(
        route(&r, &Req::new("svc1234.example.com", "/api/x")),
        Some("h1234")
    );
    assert_eq!(
        route(&r, &Req::new("svc1234.example.com", "/p77/x")),
        Some("p77")
    );
    assert_eq!(route(&r, &Req::new("nope", "/x")), Some("fallback"));
}

#[test]
fn route_does_not_allocate_on_the_heap_for_common_requests() {
    // The arena is only used for the candidate-list scratch space.
    let r = Router::new(vec![
        entry("a", "Host(`a.com`) && PathPrefix(`/api`)", None),
        entry("b", "PathPrefix(`/`)", None),
    ]);
    let req = Req::new("a.com", "/api/x");
    for _ in 0..3 {
        assert_eq!(r.route(&req.view()).map(String::as_str), Some("a"));
    }
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    assert_send_sync(&r);
}

#[test]
fn v2_rules_are_indexed_where_their_shape_allows() {
    let v2 = |name: &str, rule: &str| {
        let rule = parse_rule_with(rule, RuleSyntax::V2).unwrap_or_else(|e| panic!("{rule}: {e}"));
        RouteEntry {
            name: name.to_owned(),
            priority: rule.default_priority(),
            rule,
            value: name.to_owned(),
        }
    };
    let entries = vec![
        v2("hosts", "Host(`a.com`, `B.com.`) && Path(`/x`, `/y`)"),
        v2("sub", "HostRegexp(`{sub:[a-z]+}.x.com`)"),
        v2("label", "HostRegexp(`{sub}.y.com`)"),
        v2("literal", "HostRegexp(`Z.com.`)"),
        v2("path", "Path(`/api/{id:[0-9]+}`)"),
        v2("prefix", "PathPrefix(`/static/{v}`)"),
        v2("dotty", "HostRegexp(`{h:.*}.com`)"),
        v2("headers", "Headers(`X-A`, `1`)"),
        v2("query", "Query(`q={v}`)"),
    ];
    let r = both(entries);
    let (exact, wild, rest) = r.0.shape();
    assert_eq!(exact, vec!["a.com", "b.com", "z.com"]);
    assert_eq!(wild, vec![".x.com", ".y.com"]);
    // A template whose first variable can match a dot, and rules with
    // neither host nor path, stay in the residue.
    assert_eq!(rest, 3);
    assert_eq!(route(&r, &Req::new("A.com", "/y")), Some("hosts"));
    assert_eq!(route(&r, &Req::new("b.com.", "/x")), Some("hosts"));
    assert_eq!(route(&r, &Req::new("ab.X.com", "/")), Some("sub"));
    assert_eq!(route(&r, &Req::new("q-1.y.com", "/")), Some("label"));
    assert_eq!(route(&r, &Req::new("z.COM.", "/")), Some("literal"));
    assert_eq!(route(&r, &Req::new("h", "/api/12")), Some("path"));
    assert_eq!(
        route(&r, &Req::new("h", "/static/v1/app.js")),
        Some("prefix")
    );
    assert_eq!(route(&r, &Req::new("a.b.com", "/")), Some("dotty"));
    assert_eq!(
        route(&r, &Req::new("h", "/").header("x-a", "1")),
        Some("headers")
    );
    assert_eq!(route(&r, &Req::new("h", "/").query("q=2")), Some("query"));
    assert_eq!(route(&r, &Req::new("h", "/api/x")), None);
}

#[test]
fn anchored_path_regexps_are_indexed_by_their_literal_prefix() {
    let r = both(vec![
        entry("users", r"PathRegexp(`^/users/\d+$`)", None),
        entry("alt", r"PathRegexp(`^/a|^/b`)", None),
        entry("multiline", r"PathRegexp(`(?m)^/x`)", None),
        entry("folded", r"PathRegexp(`^(?i)/api`)", None),
    ]);
    // `^/users/` keys the first; `(?m)^` is no start of text.
    let alone = |rule: &str| Router::new(vec![entry("x", rule, None)]).shape().2;
    assert_eq!(alone(r"PathRegexp(`^/users/\d+$`)"), 0);
    assert_eq!(alone(r"PathRegexp(`(?m)^/x`)"), 1);
    assert_eq!(alone(r"PathRegexp(`/users`)"), 1);
    assert_eq!(route(&r, &Req::new("h", "/users/12")), Some("users"));
    assert_eq!(route(&r, &Req::new("h", "/users/x")), None);
    assert_eq!(route(&r, &Req::new("h", "/b")), Some("alt"));
    assert_eq!(route(&r, &Req::new("h", "/x")), Some("multiline"));
    assert_eq!(route(&r, &Req::new("h", "/API")), Some("folded"));
}
