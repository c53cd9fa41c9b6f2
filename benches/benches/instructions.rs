//! Deterministic instruction counts (gungraun on callgrind) of the proxy's
//! hot path: rule parse+compile, the routing decision at 1 to 10,000
//! routers, the same decisions with rules written in the v2 and the v3
//! syntax, request-head processing, the upstream pick, and one whole
//! proxied request, over plain HTTP and over an established TLS 1.3
//! keep-alive connection, and through a router with three middlewares.
//!
//! Gated: `cargo run -p gate` runs this file and compares every count with
//! `baselines/counts.json`. Each micro benchmark returns its input so that
//! dropping it (a 10,000-router index) is not counted. Setup runs outside
//! the measured function.
//!
//! The end-to-end benchmark counts every instruction of the process (all
//! threads: client, proxy worker, backend) for `K` and for `N + K`
//! requests; the gate reports `(I(N+K) - I(K)) / N`, so the proxy's start
//! and stop cancel out.

#![allow(
    missing_docs,
    reason = "gungraun's macros generate undocumented public modules and constants"
)]

use std::hint::black_box;

use benches::e2e::{E2e, H2C_STREAMS, Route};
use benches::fixtures::{
    COMPLEX_RULE, Case, ForwardingValues, PICK_CLIENT_IP, RouteInput, SIMPLE_RULE, SyntaxCase,
    Tree, balancer, process_head, request_head, route_input, service_tree, strategy_balancer,
    syntax_input,
};
use gungraun::{
    Callgrind, EntryPoint, LibraryBenchmarkConfig, library_benchmark, library_benchmark_group, main,
};
use http::HeaderMap;
use proxy::routing::{Rule, RuleSyntax, parse_rule};
use proxy::upstream::{Balancer, Resolved, RoundRobin, Service, Strategy, Walk, resolve};

// === routing ===

#[library_benchmark]
#[bench::simple(SIMPLE_RULE)]
#[bench::complex(COMPLEX_RULE)]
fn parse_compile(rule: &str) -> Rule {
    black_box(parse_rule(black_box(rule)).expect("rule parses"))
}

/// Builds the router set and warms the request path once (lazy state, the
/// arena's first chunk).
fn warm_route(n: usize, case: Case) -> RouteInput {
    let mut input = route_input(n, case);
    assert_eq!(input.decide(), input.expect);
    input
}

#[library_benchmark]
#[bench::r1_hit_first(args = (1, Case::HitFirst), setup = warm_route)]
#[bench::r1_hit_last(args = (1, Case::HitLast), setup = warm_route)]
#[bench::r1_miss(args = (1, Case::Miss), setup = warm_route)]
#[bench::r100_hit_first(args = (100, Case::HitFirst), setup = warm_route)]
#[bench::r100_hit_last(args = (100, Case::HitLast), setup = warm_route)]
#[bench::r100_miss(args = (100, Case::Miss), setup = warm_route)]
#[bench::r1000_hit_first(args = (1_000, Case::HitFirst), setup = warm_route)]
#[bench::r1000_hit_last(args = (1_000, Case::HitLast), setup = warm_route)]
#[bench::r1000_miss(args = (1_000, Case::Miss), setup = warm_route)]
#[bench::r10000_hit_first(args = (10_000, Case::HitFirst), setup = warm_route)]
#[bench::r10000_hit_last(args = (10_000, Case::HitLast), setup = warm_route)]
#[bench::r10000_miss(args = (10_000, Case::Miss), setup = warm_route)]
fn route_decision(mut input: RouteInput) -> (Option<usize>, RouteInput) {
    let chosen = black_box(input.decide());
    (chosen, input)
}

/// A syntax-comparison set, warmed like [`warm_route`].
fn warm_syntax(case: SyntaxCase, syntax: RuleSyntax) -> RouteInput {
    let mut input = syntax_input(case, syntax);
    assert_eq!(input.decide(), input.expect);
    input
}

// The same routing in both syntaxes: the gate requires each `_v2` count to
// be at most its `_v3` twin.
#[library_benchmark]
#[bench::hosts_v2(args = (SyntaxCase::Hosts, RuleSyntax::V2), setup = warm_syntax)]
#[bench::hosts_v3(args = (SyntaxCase::Hosts, RuleSyntax::V3), setup = warm_syntax)]
#[bench::host_template_v2(args = (SyntaxCase::HostTemplate, RuleSyntax::V2), setup = warm_syntax)]
#[bench::host_template_v3(args = (SyntaxCase::HostTemplate, RuleSyntax::V3), setup = warm_syntax)]
#[bench::path_template_v2(args = (SyntaxCase::PathTemplate, RuleSyntax::V2), setup = warm_syntax)]
#[bench::path_template_v3(args = (SyntaxCase::PathTemplate, RuleSyntax::V3), setup = warm_syntax)]
#[bench::headers_query_v2(args = (SyntaxCase::HeadersQuery, RuleSyntax::V2), setup = warm_syntax)]
#[bench::headers_query_v3(args = (SyntaxCase::HeadersQuery, RuleSyntax::V3), setup = warm_syntax)]
fn syntax_decision(mut input: RouteInput) -> (Option<usize>, RouteInput) {
    let chosen = black_box(input.decide());
    (chosen, input)
}

library_benchmark_group!(
    name = routing,
    benchmarks = [parse_compile, route_decision, syntax_decision]
);

// === forward: request head ===

fn head_input() -> (HeaderMap, ForwardingValues) {
    (request_head(), ForwardingValues::default())
}

#[library_benchmark]
#[bench::browser_get(setup = head_input)]
fn request_head_processing(
    (mut headers, values): (HeaderMap, ForwardingValues),
) -> (HeaderMap, ForwardingValues) {
    process_head(black_box(&mut headers), &values);
    (headers, values)
}

library_benchmark_group!(name = forward, benchmarks = [request_head_processing]);

// === upstream: server pick ===

fn warm_balancer(weighted: bool) -> RoundRobin {
    let rr = balancer(weighted);
    let _ = rr.pick();
    rr
}

#[library_benchmark]
#[bench::round_robin(args = (false), setup = warm_balancer)]
#[bench::weighted(args = (true), setup = warm_balancer)]
fn upstream_pick(rr: RoundRobin) -> (Option<usize>, RoundRobin) {
    let picked = black_box(rr.pick());
    (picked, rr)
}

fn warm_strategy(strategy: Strategy, n: usize) -> Balancer {
    let b = strategy_balancer(strategy, n);
    let _ = b.pick(PICK_CLIENT_IP);
    b
}

// One pick of each `loadBalancer.strategy`, every server up.
#[library_benchmark]
#[bench::wrr_2(args = (Strategy::Wrr, 2), setup = warm_strategy)]
#[bench::wrr_100(args = (Strategy::Wrr, 100), setup = warm_strategy)]
#[bench::p2c_2(args = (Strategy::P2c, 2), setup = warm_strategy)]
#[bench::p2c_100(args = (Strategy::P2c, 100), setup = warm_strategy)]
#[bench::hrw_2(args = (Strategy::Hrw, 2), setup = warm_strategy)]
#[bench::hrw_100(args = (Strategy::Hrw, 100), setup = warm_strategy)]
#[bench::leasttime_2(args = (Strategy::LeastTime, 2), setup = warm_strategy)]
#[bench::leasttime_100(args = (Strategy::LeastTime, 100), setup = warm_strategy)]
fn strategy_pick(b: Balancer) -> (Option<usize>, Balancer) {
    let picked = black_box(b.pick(black_box(PICK_CLIENT_IP)));
    (picked, b)
}

fn warm_tree(tree: Tree) -> (Vec<Service>, HeaderMap) {
    let (services, headers) = service_tree(tree);
    let mut walk = Walk::default();
    let _ = resolve(&services, 0, PICK_CLIENT_IP, &headers, &mut walk);
    (services, headers)
}

// One request resolved through a service tree to a server: a weighted
// service of two load balancers, a failover, a sticky cookie hit.
#[library_benchmark]
#[bench::weighted_of_two_lbs(args = (Tree::Weighted), setup = warm_tree)]
#[bench::failover_main_up(args = (Tree::Failover), setup = warm_tree)]
#[bench::sticky_cookie_hit(args = (Tree::StickyHit), setup = warm_tree)]
fn service_resolve(
    (services, headers): (Vec<Service>, HeaderMap),
) -> (Option<Resolved>, Vec<Service>) {
    let mut walk = Walk::default();
    let to = black_box(resolve(
        black_box(&services),
        0,
        black_box(PICK_CLIENT_IP),
        black_box(&headers),
        &mut walk,
    ));
    (to, services)
}

library_benchmark_group!(
    name = upstream,
    benchmarks = [upstream_pick, strategy_pick, service_resolve]
);

// === end to end ===

/// Requests every e2e run starts with: the proxy's start, the first dial
/// of the upstream and stop are in both runs and cancel out.
const E2E_K: usize = 10;
/// Extra requests of the long run: the gate divides by this.
const E2E_N: usize = 200;

/// Counts the whole process, every thread: the proxy's work happens on
/// its worker thread, which the default entry point (this function, on
/// the main thread only) would not see.
fn whole_process() -> LibraryBenchmarkConfig {
    let mut callgrind = Callgrind::default();
    callgrind.entry_point(EntryPoint::None);
    let mut config = LibraryBenchmarkConfig::default();
    config.tool(callgrind);
    config
}

#[library_benchmark(config = whole_process())]
#[bench::requests_10(E2E_K)]
#[bench::requests_210(E2E_K + E2E_N)]
fn proxied_requests(n: usize) {
    let mut e2e = E2e::start();
    for _ in 0..n {
        e2e.request();
    }
    e2e.stop();
}

// The same requests over one TLS keep-alive connection (the handshake is
// in the start, which cancels out like the proxy's start).
#[library_benchmark(config = whole_process())]
#[bench::requests_10(E2E_K)]
#[bench::requests_210(E2E_K + E2E_N)]
fn proxied_tls_requests(n: usize) {
    let mut e2e = E2e::start_tls();
    for _ in 0..n {
        e2e.request();
    }
    e2e.stop();
}

// The same through a router with three middlewares (`headers`,
// `stripPrefix`, `basicAuth` with a `{SHA}` hash).
#[library_benchmark(config = whole_process())]
#[bench::requests_10(E2E_K)]
#[bench::requests_210(E2E_K + E2E_N)]
fn proxied_requests_chain(n: usize) {
    let mut e2e = E2e::start_with(Route::Chain);
    for _ in 0..n {
        e2e.request();
    }
    e2e.stop();
}

// The plain requests with the API and dashboard on beside them (their
// own entrypoint): the same count as `proxied_requests`, or they cost the
// data plane something.
#[library_benchmark(config = whole_process())]
#[bench::requests_10(E2E_K)]
#[bench::requests_210(E2E_K + E2E_N)]
fn proxied_requests_api_on(n: usize) {
    let mut e2e = E2e::start_with(Route::Api);
    for _ in 0..n {
        e2e.request();
    }
    e2e.stop();
}

// The same through a router with a `rateLimit` far above the load.
#[library_benchmark(config = whole_process())]
#[bench::requests_10(E2E_K)]
#[bench::requests_210(E2E_K + E2E_N)]
fn proxied_requests_ratelimit(n: usize) {
    let mut e2e = E2e::start_with(Route::RateLimit);
    for _ in 0..n {
        e2e.request();
    }
    e2e.stop();
}

// The same through a `weighted` service of two load balancers.
#[library_benchmark(config = whole_process())]
#[bench::requests_10(E2E_K)]
#[bench::requests_210(E2E_K + E2E_N)]
fn proxied_requests_weighted(n: usize) {
    let mut e2e = E2e::start_with(Route::Weighted);
    for _ in 0..n {
        e2e.request();
    }
    e2e.stop();
}

// The same through `compress`: a 12-byte answer (below the minimum size:
// negotiation and Vary only) and a 64 KiB one (gzip as it streams).
#[library_benchmark(config = whole_process())]
#[bench::requests_10(E2E_K)]
#[bench::requests_210(E2E_K + E2E_N)]
fn proxied_requests_compress_small(n: usize) {
    let mut e2e = E2e::start_with(Route::CompressSmall);
    for _ in 0..n {
        e2e.request();
    }
    e2e.stop();
}

#[library_benchmark(config = whole_process())]
#[bench::requests_10(E2E_K)]
#[bench::requests_210(E2E_K + E2E_N)]
fn proxied_requests_compress_64k(n: usize) {
    let mut e2e = E2e::start_with(Route::CompressLarge);
    for _ in 0..n {
        e2e.request();
    }
    e2e.stop();
}

// A browser's request (`Connection: keep-alive`, a dozen headers) to a
// backend answering `Connection: keep-alive` as nginx does.
#[library_benchmark(config = whole_process())]
#[bench::requests_10(E2E_K)]
#[bench::requests_210(E2E_K + E2E_N)]
fn proxied_requests_browser(n: usize) {
    let mut e2e = E2e::start_with(Route::Browser);
    for _ in 0..n {
        e2e.request();
    }
    e2e.stop();
}

// The plain requests with Prometheus metrics on.
#[library_benchmark(config = whole_process())]
#[bench::requests_10(E2E_K)]
#[bench::requests_210(E2E_K + E2E_N)]
fn proxied_requests_metrics(n: usize) {
    let mut e2e = E2e::start_with(Route::Metrics);
    for _ in 0..n {
        e2e.request();
    }
    e2e.stop();
}

// The plain requests with the access log on, to a file (its writer
// thread is counted in "all threads", not in the worker's count).
#[library_benchmark(config = whole_process())]
#[bench::requests_10(E2E_K)]
#[bench::requests_210(E2E_K + E2E_N)]
fn proxied_requests_access_log(n: usize) {
    let mut e2e = E2e::start_with(Route::AccessLog);
    for _ in 0..n {
        e2e.request();
    }
    e2e.stop();
}

// h2c: one connection, `H2C_STREAMS` concurrent streams per batch; `n`
// requests in all (E2E_K and E2E_N are multiples of H2C_STREAMS).
#[library_benchmark(config = whole_process())]
#[bench::requests_10(E2E_K)]
#[bench::requests_210(E2E_K + E2E_N)]
fn proxied_requests_h2c(n: usize) {
    let mut e2e = E2e::start_with(Route::H2c);
    for _ in 0..n / H2C_STREAMS {
        e2e.request();
    }
    e2e.stop();
}

const _: () = assert!(E2E_K.is_multiple_of(H2C_STREAMS) && E2E_N.is_multiple_of(H2C_STREAMS));

library_benchmark_group!(
    name = e2e,
    benchmarks = [
        proxied_requests,
        proxied_tls_requests,
        proxied_requests_chain,
        proxied_requests_api_on,
        proxied_requests_ratelimit,
        proxied_requests_weighted,
        proxied_requests_compress_small,
        proxied_requests_compress_64k,
        proxied_requests_browser,
        proxied_requests_metrics,
        proxied_requests_access_log,
        proxied_requests_h2c
    ]
);

main!(
    config = LibraryBenchmarkConfig::default().tool(Callgrind::with_args(["--cache-sim=no"]));
    library_benchmark_groups = routing, forward, upstream, e2e
);
