//! Heap allocations of the decision path, counted per thread by a test-only
//! global allocator.

use super::support::Req;
use crate::routing::{RouteEntry, Router, RuleSyntax, parse_rule, parse_rule_with};
use crate::test_alloc::allocations_during;

fn entry(name: &str, rule: &str) -> RouteEntry<usize> {
    let rule = parse_rule(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
    entry_of(name, rule)
}

fn entry_v2(name: &str, rule: &str) -> RouteEntry<usize> {
    let rule = parse_rule_with(rule, RuleSyntax::V2).unwrap_or_else(|e| panic!("{rule}: {e}"));
    entry_of(name, rule)
}

fn entry_of(name: &str, rule: crate::routing::Rule) -> RouteEntry<usize> {
    RouteEntry {
        name: name.to_owned(),
        priority: rule.default_priority(),
        rule,
        value: name.len(),
    }
}

#[test]
fn warm_decision_path_does_not_touch_the_heap() {
    let mut entries = Vec::new();
    for i in 0..500 {
        entries.push(entry(
            &format!("h{i}"),
            &format!("Host(`svc{i}.example.com`) && PathPrefix(`/api`) && Method(`GET`)"),
        ));
        entries.push(entry(
            &format!("w{i}"),
            &format!("Host(`*.w{i}.example.com`) || Path(`/w{i}`)"),
        ));
    }
    entries.push(entry(
        "re",
        r"PathRegexp(`^/items/\d+$`) && HeaderRegexp(`X-Tenant`, `^t[0-9]+$`)",
    ));
    entries.push(entry("q", "Query(`debug`, `1`) && !ClientIP(`10.0.0.0/8`)"));
    entries.push(entry_v2(
        "v2host",
        "HostRegexp(`{sub:[a-z]+}.v2.example.com`)",
    ));
    entries.push(entry_v2(
        "v2query",
        "Host(`v2q`) && Query(`id={id:[0-9]+}`) && Headers(`X-A`, `1`)",
    ));
    entries.push(entry_v2("v2path", "Path(`/v2/{name}`, `/v2b`)"));
    entries.push(entry("fallback", "PathPrefix(`/`)"));
    let router = Router::new(entries);

    let mut reqs = [
        Req::new("svc42.example.com", "/api/users"),
        Req::new("a.w7.example.com", "/x"),
        Req::new("other", "/items/12").header("x-tenant", "t1"),
        Req::new("other", "/x").query("debug=1").ip("192.168.1.1"),
        Req::new("Upper.Example.COM", "/none"),
        Req::new("abc.V2.example.com", "/"),
        Req::new("v2q", "/").query("id=%31%32").header("x-a", "1"),
        Req::new("other", "/v2/thing"),
        // Not UTF-8: the regex reads it rewritten in the arena.
        Req::new("other", "/items/1").header_bytes("x-tenant", b"t1\xff"),
    ];
    // Warm-up: per-thread regex caches, arena chunks.
    for r in &reqs {
        assert!(router.route(&r.view()).is_some());
    }
    let (allocs, ()) = allocations_during(|| {
        for _ in 0..100 {
            for r in &mut reqs {
                // The data plane resets the arena after each request.
                r.arena.reset();
                assert!(router.route(&r.view()).is_some());
            }
        }
    });
    assert_eq!(allocs, 0, "heap allocations on the warm decision path");
}
