//! Per-request metrics (Traefik's entrypoint/router/service families),
//! recorded by a per-worker [`WorkerMetrics`].
//!
//! Runs per request. A cache hit neither locks nor allocates: it hashes a
//! few integers, loads one atomic (the store's liveness epoch) and does
//! relaxed `fetch_add`s. Only a miss (first request of a label combination in
//! a configuration generation, on this worker) builds `metrics::Key`s and
//! takes the store's lock.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::Method;
use metrics::{Key, Label};

use super::hist::SecondsHistogram;
use super::labels::{METHOD_LABELS, Protocol, method_index};
use super::names;
use super::prometheus::MetricsHandle;
use super::store::Store;

// === flags and labels ===

/// Which families are recorded: Traefik's `addEntryPointsLabels` (default
/// true), `addRoutersLabels` (default false), `addServicesLabels` (default
/// true).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsFlags {
    /// `addEntryPointsLabels`.
    pub entry_points: bool,
    /// `addRoutersLabels`.
    pub routers: bool,
    /// `addServicesLabels`.
    pub services: bool,
}

impl Default for MetricsFlags {
    fn default() -> Self {
        Self {
            entry_points: true,
            routers: false,
            services: true,
        }
    }
}

/// Who handled a request. The names are the `Arc<str>`s of the configuration
/// snapshot the request ran on: their addresses, together with
/// `generation`, key the per-worker cache.
#[derive(Debug, Clone, Copy)]
pub struct RequestLabels<'a> {
    /// Generation of the configuration snapshot the request used.
    pub generation: u64,
    /// Entrypoint name.
    pub entrypoint: &'a Arc<str>,
    /// Router name; `None` when no router matched (then only the
    /// entrypoint family is recorded, as in Traefik).
    pub router: Option<&'a Arc<str>>,
    /// Service name of the router; `None` when no router matched.
    pub service: Option<&'a Arc<str>>,
}

// === per-worker cache ===

/// FxHash-style hasher for the cache's integer keys: a multiply and a
/// rotate per word, no per-process random state to load.
#[derive(Default, Clone, Copy)]
struct WordHasher(u64);

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct CacheKey {
    generation: u64,
    entrypoint: usize,
    router: usize,
    service: usize,
    code: u16,
    method: u8,
    protocol: Protocol,
}

#[derive(Debug)]
struct Family {
    requests: Arc<AtomicU64>,
    duration: Arc<SecondsHistogram>,
    req_bytes: Arc<AtomicU64>,
    resp_bytes: Arc<AtomicU64>,
}

impl Family {
    #[inline]
    fn record(&self, nanos: u64, req_bytes: u64, resp_bytes: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.duration.record_nanos(nanos);
        self.req_bytes.fetch_add(req_bytes, Ordering::Relaxed);
        self.resp_bytes.fetch_add(resp_bytes, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Entry {
    /// Store epoch the handles were resolved at.
    epoch: u64,
    entrypoint: Option<Family>,
    router: Option<Family>,
    service: Option<Family>,
}

/// Cap on cached label combinations per worker; past it the cache is
/// cleared (a safety net against label explosions, not a normal path).
const MAX_ENTRIES: usize = 4096;

/// Request metrics of one worker thread: resolved handles cached by label
/// combination. Owned by the worker (`&mut self`, no sharing); the handles
/// point into the shared store, so all workers add to the same series.
#[derive(Debug)]
pub struct WorkerMetrics {
    store: Option<Arc<Store>>,
    flags: MetricsFlags,
    cache: HashMap<CacheKey, Entry, BuildHasherDefault<WordHasher>>,
    /// Highest generation seen; entries older than `max_generation - 1` are
    /// dropped when it advances.
    max_generation: u64,
}

impl WorkerMetrics {
    /// Metrics of one worker recording into `handle`'s store.
    pub fn new(handle: &MetricsHandle, flags: MetricsFlags) -> Self {
        Self {
            store: Some(Arc::clone(&handle.store)),
            flags,
            cache: HashMap::default(),
            max_generation: 0,
        }
    }

    /// A recorder that records nothing (metrics not configured).
    pub fn disabled() -> Self {
        Self {
            store: None,
            flags: MetricsFlags {
                entry_points: false,
                routers: false,
                services: false,
            },
            cache: HashMap::default(),
            max_generation: 0,
        }
    }

    /// Number of cached label combinations (for tests and debugging).
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Records one finished request in the entrypoint, router and service
    /// families (as enabled by the flags).
    ///
    /// `code` is the HTTP status, or for gRPC ([`Protocol::is_grpc`]) the
    /// gRPC status as [`super::grpc_status_code`] computes it, as Traefik does.
    /// `duration` is the whole request as the entrypoint saw it; Traefik
    /// times each family at its own middleware, which differ by the routing
    /// time only, so one duration serves the three.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn record(
        &mut self,
        labels: RequestLabels<'_>,
        code: u16,
        method: &Method,
        protocol: Protocol,
        duration: Duration,
        req_bytes: u64,
        resp_bytes: u64,
    ) {
        let Some(store) = self.store.as_ref() else {
            return;
        };
        let key = CacheKey {
            generation: labels.generation,
            entrypoint: Arc::as_ptr(labels.entrypoint) as *const u8 as usize,
            router: labels
                .router
                .map_or(0, |r| Arc::as_ptr(r) as *const u8 as usize),
            service: labels
                .service
                .map_or(0, |s| Arc::as_ptr(s) as *const u8 as usize),
            code,
            method: method_index(method),
            protocol,
        };
        let epoch = store.epoch();
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        if let Some(e) = self.cache.get(&key)
            && e.epoch == epoch
        {
            record_entry(e, nanos, req_bytes, resp_bytes);
            return;
        }
        self.record_miss(key, epoch, labels, protocol, nanos, req_bytes, resp_bytes);
    }

    #[allow(clippy::too_many_arguments)]
    #[cold]
    fn record_miss(
        &mut self,
        key: CacheKey,
        epoch: u64,
        labels: RequestLabels<'_>,
        protocol: Protocol,
        nanos: u64,
        req_bytes: u64,
        resp_bytes: u64,
    ) {
        let Some(store) = self.store.as_ref() else {
            return;
        };
        let entry = resolve(store, self.flags, &key, epoch, &labels, protocol);
        record_entry(&entry, nanos, req_bytes, resp_bytes);

        if key.generation > self.max_generation {
            let keep_from = key.generation.saturating_sub(1);
            self.cache.retain(|k, _| k.generation >= keep_from);
            self.max_generation = key.generation;
        }
        // Requests finishing on a configuration two or more generations old
        // are recorded without being cached: that generation is gone.
        if key.generation + 1 < self.max_generation {
            return;
        }
        if self.cache.len() >= MAX_ENTRIES {
            self.cache.clear();
        }
        self.cache.insert(key, entry);
    }
}

#[inline]
fn record_entry(e: &Entry, nanos: u64, req_bytes: u64, resp_bytes: u64) {
    for f in [&e.entrypoint, &e.router, &e.service].into_iter().flatten() {
        f.record(nanos, req_bytes, resp_bytes);
    }
}

/// Resolves the handles of one label combination (cold path: allocates the
/// label strings and takes the store's lock).
fn resolve(
    store: &Store,
    flags: MetricsFlags,
    key: &CacheKey,
    epoch: u64,
    labels: &RequestLabels<'_>,
    protocol: Protocol,
) -> Entry {
    let base = [
        Label::new(names::LABEL_CODE, key.code.to_string()),
        Label::new(names::LABEL_METHOD, METHOD_LABELS[key.method as usize]),
        Label::new(names::LABEL_PROTOCOL, protocol.as_str()),
    ];
    let family = |names: [&'static str; 4], extra: &[Label]| -> Option<Family> {
        let labels: Vec<Label> = base.iter().chain(extra).cloned().collect();
        let k = |n: &'static str| Key::from_parts(n, labels.clone());
        Some(Family {
            requests: store.counter(&k(names[0]))?,
            duration: store.histogram(&k(names[1]))?,
            req_bytes: store.counter(&k(names[2]))?,
            resp_bytes: store.counter(&k(names[3]))?,
        })
    };
    let entrypoint = flags
        .entry_points
        .then(|| {
            family(
                [
                    names::ENTRYPOINT_REQUESTS_TOTAL,
                    names::ENTRYPOINT_REQUEST_DURATION,
                    names::ENTRYPOINT_REQUESTS_BYTES,
                    names::ENTRYPOINT_RESPONSES_BYTES,
                ],
                &[Label::new(
                    names::LABEL_ENTRYPOINT,
                    labels.entrypoint.to_string(),
                )],
            )
        })
        .flatten();
    let router = match (flags.routers, labels.router, labels.service) {
        (true, Some(r), Some(s)) => family(
            [
                names::ROUTER_REQUESTS_TOTAL,
                names::ROUTER_REQUEST_DURATION,
                names::ROUTER_REQUESTS_BYTES,
                names::ROUTER_RESPONSES_BYTES,
            ],
            &[
                Label::new(names::LABEL_ROUTER, r.to_string()),
                Label::new(names::LABEL_SERVICE, s.to_string()),
            ],
        ),
        _ => None,
    };
    let service = match (flags.services, labels.service) {
        (true, Some(s)) => family(
            [
                names::SERVICE_REQUESTS_TOTAL,
                names::SERVICE_REQUEST_DURATION,
                names::SERVICE_REQUESTS_BYTES,
                names::SERVICE_RESPONSES_BYTES,
            ],
            &[Label::new(names::LABEL_SERVICE, s.to_string())],
        ),
        _ => None,
    };
    Entry {
        epoch,
        entrypoint,
        router,
        service,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::prometheus::{MetricsOptions, build_recorder};

    fn handle() -> MetricsHandle {
        build_recorder(&MetricsOptions::default()).unwrap().1
    }

    fn all_flags() -> MetricsFlags {
        MetricsFlags {
            entry_points: true,
            routers: true,
            services: true,
        }
    }

    #[test]
    fn records_the_three_families_with_traefik_labels() {
        let h = handle();
        let mut w = WorkerMetrics::new(&h, all_flags());
        let (ep, r, s): (Arc<str>, Arc<str>, Arc<str>) =
            ("web".into(), "api@file".into(), "api-svc".into());
        let labels = RequestLabels {
            generation: 1,
            entrypoint: &ep,
            router: Some(&r),
            service: Some(&s),
        };
        for _ in 0..3 {
            w.record(
                labels,
                200,
                &Method::GET,
                Protocol::Http,
                Duration::from_millis(50),
                10,
                100,
            );
        }
        // No router matched: entrypoint family only.
        let none = RequestLabels {
            router: None,
            service: None,
            ..labels
        };
        w.record(
            none,
            404,
            &Method::GET,
            Protocol::Http,
            Duration::from_millis(1),
            5,
            19,
        );
        assert_eq!(w.cached(), 2);
        let text = h.render();
        for line in [
            "proxy_entrypoint_requests_total{code=\"200\",method=\"GET\",protocol=\"http\",entrypoint=\"web\"} 3\n",
            "proxy_entrypoint_requests_total{code=\"404\",method=\"GET\",protocol=\"http\",entrypoint=\"web\"} 1\n",
            "proxy_entrypoint_requests_bytes_total{code=\"200\",method=\"GET\",protocol=\"http\",entrypoint=\"web\"} 30\n",
            "proxy_entrypoint_responses_bytes_total{code=\"200\",method=\"GET\",protocol=\"http\",entrypoint=\"web\"} 300\n",
            "proxy_router_requests_total{code=\"200\",method=\"GET\",protocol=\"http\",router=\"api@file\",service=\"api-svc\"} 3\n",
            "proxy_router_request_duration_seconds_bucket{code=\"200\",method=\"GET\",protocol=\"http\",router=\"api@file\",service=\"api-svc\",le=\"0.1\"} 3\n",
            "proxy_service_requests_total{code=\"200\",method=\"GET\",protocol=\"http\",service=\"api-svc\"} 3\n",
            "proxy_service_request_duration_seconds_count{code=\"200\",method=\"GET\",protocol=\"http\",service=\"api-svc\"} 3\n",
            "proxy_service_responses_bytes_total{code=\"200\",method=\"GET\",protocol=\"http\",service=\"api-svc\"} 300\n",
            "# TYPE proxy_entrypoint_request_duration_seconds histogram\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("code=\"404\",method=\"GET\",protocol=\"http\",service"));
    }

    #[test]
    fn flags_turn_families_off() {
        let h = handle();
        let mut w = WorkerMetrics::new(&h, MetricsFlags::default());
        let (ep, r, s): (Arc<str>, Arc<str>, Arc<str>) = ("web".into(), "r".into(), "s".into());
        let labels = RequestLabels {
            generation: 1,
            entrypoint: &ep,
            router: Some(&r),
            service: Some(&s),
        };
        w.record(
            labels,
            200,
            &Method::POST,
            Protocol::Grpc,
            Duration::ZERO,
            0,
            0,
        );
        let text = h.render();
        assert!(
            !text.contains("proxy_router_"),
            "addRoutersLabels defaults to false: {text}"
        );
        assert!(text.contains("proxy_service_requests_total{code=\"200\",method=\"POST\",protocol=\"grpc\",service=\"s\"} 1"));

        let mut off = WorkerMetrics::disabled();
        off.record(
            labels,
            200,
            &Method::GET,
            Protocol::Http,
            Duration::ZERO,
            0,
            0,
        );
        assert_eq!(off.cached(), 0);
    }

    #[test]
    fn reload_removes_series_of_dropped_routers_and_services() {
        let h = handle();
        let mut w = WorkerMetrics::new(&h, all_flags());
        let ep: Arc<str> = "web".into();
        let (old_r, old_s): (Arc<str>, Arc<str>) = ("old".into(), "old-svc".into());
        let (new_r, new_s): (Arc<str>, Arc<str>) = ("new".into(), "new-svc".into());
        let old = RequestLabels {
            generation: 1,
            entrypoint: &ep,
            router: Some(&old_r),
            service: Some(&old_s),
        };
        w.record(old, 200, &Method::GET, Protocol::Http, Duration::ZERO, 1, 1);

        // Reload: generation 2 has only `new`. Declared before publishing.
        h.set_live(&["new"], &["new-svc"]);
        let new = RequestLabels {
            generation: 2,
            entrypoint: &ep,
            router: Some(&new_r),
            service: Some(&new_s),
        };
        w.record(new, 200, &Method::GET, Protocol::Http, Duration::ZERO, 1, 1);
        // A request still running on generation 1 finishes: its router family
        // is not recreated; the entrypoint still counts it.
        w.record(old, 200, &Method::GET, Protocol::Http, Duration::ZERO, 1, 1);

        let scrape1 = h.render();
        assert!(
            scrape1.contains("router=\"old\""),
            "last scrape shows final values: {scrape1}"
        );
        assert!(scrape1.contains("proxy_router_requests_total{code=\"200\",method=\"GET\",protocol=\"http\",router=\"old\",service=\"old-svc\"} 1\n"));
        let scrape2 = h.render();
        assert!(!scrape2.contains("old"), "{scrape2}");
        assert!(scrape2.contains("router=\"new\""));
        assert!(scrape2.contains("proxy_entrypoint_requests_total{code=\"200\",method=\"GET\",protocol=\"http\",entrypoint=\"web\"} 3\n"), "{scrape2}");

        // Explicit forget of a live service.
        h.forget(&[] as &[&str], &["new-svc"]);
        w.record(new, 200, &Method::GET, Protocol::Http, Duration::ZERO, 1, 1);
        let _ = h.render();
        assert!(!h.render().contains("new-svc"));
    }

    #[test]
    fn cache_keeps_two_generations_only() {
        let h = handle();
        let mut w = WorkerMetrics::new(&h, all_flags());
        let ep: Arc<str> = "web".into();
        for generation in 1..=10u64 {
            let r: Arc<str> = format!("r{generation}").into();
            let l = RequestLabels {
                generation,
                entrypoint: &ep,
                router: Some(&r),
                service: Some(&r),
            };
            w.record(l, 200, &Method::GET, Protocol::Http, Duration::ZERO, 0, 0);
            w.record(l, 500, &Method::GET, Protocol::Http, Duration::ZERO, 0, 0);
        }
        assert_eq!(w.cached(), 4);
        // A straggler on generation 3 is recorded but not cached.
        let r: Arc<str> = "r3".into();
        let l = RequestLabels {
            generation: 3,
            entrypoint: &ep,
            router: Some(&r),
            service: Some(&r),
        };
        w.record(l, 200, &Method::GET, Protocol::Http, Duration::ZERO, 0, 0);
        assert_eq!(w.cached(), 4);
    }
}
