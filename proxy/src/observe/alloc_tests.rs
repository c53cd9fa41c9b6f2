//! The request-path calls of this module allocate nothing: counted with
//! the library's test allocator.

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use bytes::Bytes;
    use http::{Method, Version};

    use crate::observe::access_log::{self, AccessLogEntry, AccessLogOptions};
    use crate::observe::decision::DecisionStats;
    use crate::observe::prometheus::{MetricsOptions, build_recorder};
    use crate::observe::{MetricsFlags, Protocol, RequestLabels, WorkerMetrics};
    use crate::test_alloc::allocations_during;

    #[test]
    fn the_counter_sees_allocations() {
        let (n, v) = allocations_during(|| vec![1u8; 10]);
        assert_eq!(v.len(), 10);
        assert!(n >= 1);
    }

    #[test]
    fn request_path_calls_do_not_allocate() {
        let (recorder, handle) = build_recorder(&MetricsOptions::default()).unwrap();
        let flags = MetricsFlags {
            entry_points: true,
            routers: true,
            services: true,
        };
        let mut worker = WorkerMetrics::new(&handle, flags);
        let stats = DecisionStats::new();
        let timer = metrics::with_local_recorder(&recorder, || stats.timer());
        let (ep, r, s): (Arc<str>, Arc<str>, Arc<str>) = ("web".into(), "r".into(), "s".into());
        let labels = RequestLabels {
            generation: 3,
            entrypoint: &ep,
            router: Some(&r),
            service: Some(&s),
        };
        let record = |w: &mut WorkerMetrics| {
            w.record(
                labels,
                200,
                &Method::GET,
                Protocol::Http,
                Duration::from_micros(300),
                120,
                4096,
            );
        };
        // First request of this label set resolves (allocates); then hits.
        record(&mut worker);
        let (n, ()) = allocations_during(|| {
            for _ in 0..1000 {
                record(&mut worker);
                timer.record(Duration::from_micros(2));
            }
        });
        assert_eq!(
            n, 0,
            "WorkerMetrics::record / DecisionTimer::record allocated"
        );

        let (tx, writer) =
            access_log::start_with_output(&AccessLogOptions::default(), Box::new(std::io::sink()))
                .unwrap();
        let path = Bytes::from_static(b"/api/items?id=1");
        let router: Arc<str> = "r@file".into();
        let (n, ()) = allocations_during(|| {
            for _ in 0..100 {
                tx.log(AccessLogEntry {
                    status: 200,
                    router: Some(Arc::clone(&router)),
                    ..AccessLogEntry::new(
                        SystemTime::now(),
                        Method::GET,
                        path.clone(),
                        Version::HTTP_11,
                    )
                });
            }
        });
        assert_eq!(n, 0, "AccessLogSender::log allocated");
        writer.shutdown();
        assert!(handle.render().contains("proxy_router_requests_total"));
    }
}

/// Rough per-call costs of the request-path calls. Ignored by default: run
/// `cargo test --release -p proxy --lib observe::alloc_tests::cost -- --ignored --nocapture`.
#[cfg(test)]
mod cost {
    use std::hint::black_box;
    use std::sync::Arc;
    use std::time::{Duration, Instant, SystemTime};

    use bytes::Bytes;
    use http::{Method, Version};

    use crate::observe::access_log::{self, AccessLogEntry, AccessLogOptions};
    use crate::observe::decision::DecisionStats;
    use crate::observe::prometheus::{MetricsOptions, build_recorder};
    use crate::observe::{MetricsFlags, Protocol, RequestLabels, WorkerMetrics};

    const N: u32 = 2_000_000;

    fn per_call(label: &str, mut f: impl FnMut()) {
        let start = Instant::now();
        for _ in 0..N {
            f();
        }
        let ns = start.elapsed().as_nanos() as f64 / f64::from(N);
        println!("{label}: {ns:.1} ns/call");
    }

    #[test]
    #[ignore = "timing, run by hand in release"]
    fn per_call_costs() {
        let (recorder, handle) = build_recorder(&MetricsOptions::default()).unwrap();
        let flags = MetricsFlags {
            entry_points: true,
            routers: true,
            services: true,
        };
        let mut worker = WorkerMetrics::new(&handle, flags);
        let (ep, r, s): (Arc<str>, Arc<str>, Arc<str>) = ("web".into(), "r".into(), "s".into());
        let labels = RequestLabels {
            generation: 1,
            entrypoint: &ep,
            router: Some(&r),
            service: Some(&s),
        };
        per_call("WorkerMetrics::record (3 families)", || {
            worker.record(
                black_box(labels),
                200,
                &Method::GET,
                Protocol::Http,
                Duration::from_micros(300),
                120,
                4096,
            );
        });
        let stats = DecisionStats::new();
        let timer = metrics::with_local_recorder(&recorder, || stats.timer());
        per_call("DecisionTimer::record", || {
            timer.record(black_box(Duration::from_nanos(1800)));
        });
        let (tx, writer) = access_log::start_with_output(
            &AccessLogOptions {
                buffering_size: 1 << 16,
                ..AccessLogOptions::default()
            },
            Box::new(std::io::sink()),
        )
        .unwrap();
        let path = Bytes::from_static(b"/api/items?id=1");
        let router: Arc<str> = "r@file".into();
        per_call("AccessLogSender::log (incl. building the entry)", || {
            tx.log(AccessLogEntry {
                status: 200,
                router: Some(Arc::clone(&router)),
                ..AccessLogEntry::new(
                    SystemTime::now(),
                    Method::GET,
                    path.clone(),
                    Version::HTTP_11,
                )
            });
        });
        println!("access log lines dropped: {} of {N}", tx.dropped());
        writer.shutdown();
    }
}
