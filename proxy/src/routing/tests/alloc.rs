//! Heap allocations of the decision path, counted per thread by a test-only
//! global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use super::support::Req;
use crate::routing::{RouteEntry, Router, parse_rule};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call unchanged to the system allocator; the only
// addition is a const-initialised thread-local counter, which never
// allocates.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

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
    let before = allocs();
    for _ in 0..100 {
        for r in &mut reqs {
            // The data plane resets the arena after each request.
            r.arena.reset();
            assert!(router.route(&r.view()).is_some());
        }
    }
    assert_eq!(
        allocs() - before,
        0,
        "heap allocations on the warm decision path"
    );
}
