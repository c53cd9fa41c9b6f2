//! Heap allocations of the decision path, counted per thread by a test-only
//! global allocator.

use crate::test_alloc::allocations_during;

fn entry(name: &str, rule: &str) -> RouteEntry<usize> {
    let rule = parse_rule(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
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
    entries.push(entry("fallback", "PathPrefix(`/`)"));
    let router = Router::new(entries);

    let mut reqs = [
        Req::new("svc42.example.com", "/api/users"),
        Req::new("a.w7.example.com", "/x"),
        Req::new("other", "/items/12").header("x-tenant", "t1"),
        Req::new("other", "/x").query("debug=1").ip("192.168.1.1"),
        Req::new("Upper.Example.COM", "/none"),
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
    assert_eq!(
        allocs, 0,
        "heap allocations on the warm decision path"
    );
}
