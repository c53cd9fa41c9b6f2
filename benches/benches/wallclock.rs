//! Wall-clock timings (criterion) of the same hot paths the instruction
//! benches count, for humans: `cargo bench -p benches --bench wallclock`.
//! Not gated: wall clock on shared machines drifts by more than 5%.

use std::hint::black_box;

use benches::e2e::E2e;
use benches::fixtures::{
    COMPLEX_RULE, Case, ForwardingValues, ROUTER_COUNTS, SIMPLE_RULE, balancer, process_head,
    request_head, route_input,
};
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use proxy::routing::parse_rule;

fn routing(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_compile");
    for (name, rule) in [("simple", SIMPLE_RULE), ("complex", COMPLEX_RULE)] {
        g.bench_function(name, |b| b.iter(|| parse_rule(black_box(rule))));
    }
    g.finish();

    let mut g = c.benchmark_group("route_decision");
    for n in ROUTER_COUNTS {
        for case in Case::ALL {
            let mut input = route_input(n, case);
            g.bench_with_input(BenchmarkId::new(case.name(), n), &n, |b, _| {
                b.iter(|| black_box(input.decide()));
            });
        }
    }
    g.finish();
}

fn forward(c: &mut Criterion) {
    let values = ForwardingValues::default();
    c.bench_function("request_head_processing", |b| {
        b.iter_batched_ref(
            request_head,
            |h| process_head(black_box(h), &values),
            BatchSize::SmallInput,
        );
    });
}

fn upstream(c: &mut Criterion) {
    let mut g = c.benchmark_group("upstream_pick");
    for (name, weighted) in [("round_robin", false), ("weighted", true)] {
        let rr = balancer(weighted);
        g.bench_function(name, |b| b.iter(|| black_box(rr.pick())));
    }
    g.finish();
}

fn e2e(c: &mut Criterion) {
    let mut e = E2e::start();
    c.bench_function("proxied_request", |b| b.iter(|| e.request()));
    e.stop();
}

criterion_group!(benches, routing, forward, upstream, e2e);
criterion_main!(benches);
