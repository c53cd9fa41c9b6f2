//! The series store for request metrics and router-decision timing: the
//! series that are recorded per request, and the ones a reload must be able
//! to remove.
//!
//! Why not the exporter's own registry: `metrics-exporter-prometheus` 0.18
//! keeps its registry private; the only way it ever deletes a series is its
//! idle timeout (`PrometheusBuilder::idle_timeout`), which drops any series
//! not updated for a while, live routers included, and cannot target the
//! routers a reload removed. Its histograms also push every sample into an
//! `AtomicBucket` that allocates a block per 64 samples until the next
//! upkeep. So the per-request series live here instead: counters are
//! `AtomicU64`, histograms are fixed-bucket atomics ([`SecondsHistogram`]),
//! and this store renders them in the Prometheus text format next to the
//! exporter's output.
//!
//! Locking: a (std) mutex guards the series maps. It is taken on
//! registration (a per-worker cache miss), on a reload and on a scrape,
//! never on a cache hit: handles are `Arc`s the workers keep.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::Key;

use super::hist::{HistogramSnapshot, SecondsHistogram};
use super::names;

/// Every counter with its value and every histogram with its handle.
pub(crate) type Series = (Vec<(Key, u64)>, Vec<(Key, Arc<SecondsHistogram>)>);

// Control plane only (see the module doc): registration, reload and scrape.
#[allow(clippy::disallowed_types)]
type ControlMutex<T> = std::sync::Mutex<T>;

/// Router and service names.
#[derive(Debug, Default)]
struct NameSets {
    routers: HashSet<Box<str>>,
    services: HashSet<Box<str>>,
}

#[derive(Debug, Default)]
struct Inner {
    counters: HashMap<Key, Arc<AtomicU64>>,
    histograms: HashMap<Key, Arc<SecondsHistogram>>,
    /// The routers and services of the current configuration; `None` until
    /// the reload path first says (then every name is allowed).
    live: Option<NameSets>,
    /// Names forgotten explicitly and not declared live since.
    dead: NameSets,
    /// A sweep of disallowed series is due after the next render.
    sweep_pending: bool,
}

impl Inner {
    fn allowed(&self, key: &Key) -> bool {
        key.labels().all(|l| match l.key() {
            names::LABEL_ROUTER => {
                !self.dead.routers.contains(l.value())
                    && self
                        .live
                        .as_ref()
                        .is_none_or(|s| s.routers.contains(l.value()))
            }
            names::LABEL_SERVICE => {
                !self.dead.services.contains(l.value())
                    && self
                        .live
                        .as_ref()
                        .is_none_or(|s| s.services.contains(l.value()))
            }
            _ => true,
        })
    }
}

/// Request-metric series, shared by every worker.
#[derive(Debug)]
pub(crate) struct Store {
    inner: ControlMutex<Inner>,
    /// Bumped whenever the set of allowed names changes, so workers re-resolve
    /// cached handles (one relaxed load per request).
    epoch: AtomicU64,
    latency_buckets: Box<[f64]>,
}

impl Store {
    pub(crate) fn new(latency_buckets: &[f64]) -> Self {
        Self {
            inner: ControlMutex::new(Inner::default()),
            epoch: AtomicU64::new(0),
            latency_buckets: latency_buckets.into(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the maps half-updated
        // in a way that matters for metrics; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Current liveness epoch.
    #[inline]
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The counter for `key`, created at 0 if new; `None` when the key names
    /// a router or service that no longer exists.
    pub(crate) fn counter(&self, key: &Key) -> Option<Arc<AtomicU64>> {
        let mut inner = self.lock();
        if !inner.allowed(key) {
            return None;
        }
        if let Some(c) = inner.counters.get(key) {
            return Some(Arc::clone(c));
        }
        let c = Arc::new(AtomicU64::new(0));
        inner.counters.insert(key.clone(), Arc::clone(&c));
        Some(c)
    }

    /// The histogram for `key` (see [`Store::counter`]).
    pub(crate) fn histogram(&self, key: &Key) -> Option<Arc<SecondsHistogram>> {
        let mut inner = self.lock();
        if !inner.allowed(key) {
            return None;
        }
        if let Some(h) = inner.histograms.get(key) {
            return Some(Arc::clone(h));
        }
        let bounds: &[f64] = if key.name() == names::ROUTER_DECISION_SECONDS {
            &names::DECISION_BUCKETS
        } else {
            &self.latency_buckets
        };
        let h = Arc::new(SecondsHistogram::new(bounds));
        inner.histograms.insert(key.clone(), Arc::clone(&h));
        Some(h)
    }

    /// Declares the routers and services of the configuration being
    /// published. Series of other names are removed after the next render.
    pub(crate) fn set_live<R: AsRef<str>, S: AsRef<str>>(&self, routers: &[R], services: &[S]) {
        let mut inner = self.lock();
        inner.live = Some(NameSets {
            routers: routers.iter().map(|r| r.as_ref().into()).collect(),
            services: services.iter().map(|s| s.as_ref().into()).collect(),
        });
        // The live set now decides alone; earlier explicit forgets are moot.
        inner.dead = NameSets::default();
        inner.sweep_pending = true;
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Forgets these routers and services: their series are removed after
    /// the next render and not recreated until a later [`Store::set_live`]
    /// names them again.
    pub(crate) fn forget<R: AsRef<str>, S: AsRef<str>>(&self, routers: &[R], services: &[S]) {
        let mut inner = self.lock();
        for r in routers {
            let r = r.as_ref();
            inner.dead.routers.insert(r.into());
            if let Some(live) = inner.live.as_mut() {
                live.routers.remove(r);
            }
        }
        for s in services {
            let s = s.as_ref();
            inner.dead.services.insert(s.into());
            if let Some(live) = inner.live.as_mut() {
                live.services.remove(s);
            }
        }
        inner.sweep_pending = true;
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Number of series held (counters + histograms), for tests and logs.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let inner = self.lock();
        inner.counters.len() + inner.histograms.len()
    }

    /// Every series with its current value (counters) or its histogram,
    /// unsorted: what a scrape and the API's live figures read. Takes the
    /// control-plane lock only to copy the handles.
    pub(crate) fn series(&self) -> Series {
        let inner = self.lock();
        let counters = inner
            .counters
            .iter()
            .map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed)))
            .collect();
        let histograms = inner
            .histograms
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect();
        (counters, histograms)
    }

    /// Appends the Prometheus text of every series to `out`, then removes
    /// the series of routers and services that no longer exist. As Traefik
    /// does (`promState.Collect`), a removed router's series are scraped
    /// one last time with their final values before they disappear.
    pub(crate) fn render(&self, out: &mut String) {
        let (mut counters, mut histograms) = self.series();
        counters.sort_by(|a, b| key_order(&a.0, &b.0));
        histograms.sort_by(|a, b| key_order(&a.0, &b.0));

        let mut last: Option<&str> = None;
        for (key, value) in &counters {
            if last != Some(key.name()) {
                header(out, key.name(), "counter");
                last = Some(key.name());
            }
            out.push_str(key.name());
            labels(out, key, None);
            let _ = writeln!(out, " {value}");
        }
        let mut last: Option<&str> = None;
        for (key, h) in &histograms {
            if last != Some(key.name()) {
                header(out, key.name(), "histogram");
                last = Some(key.name());
            }
            histogram_lines(out, key, &h.snapshot());
        }

        let mut inner = self.lock();
        if inner.sweep_pending {
            inner.sweep_pending = false;
            let Inner {
                counters,
                histograms,
                ..
            } = &*inner;
            let dead_c: Vec<Key> = counters
                .keys()
                .filter(|k| !inner.allowed(k))
                .cloned()
                .collect();
            let dead_h: Vec<Key> = histograms
                .keys()
                .filter(|k| !inner.allowed(k))
                .cloned()
                .collect();
            for k in dead_c {
                inner.counters.remove(&k);
            }
            for k in dead_h {
                inner.histograms.remove(&k);
            }
        }
    }
}

fn key_order(a: &Key, b: &Key) -> std::cmp::Ordering {
    a.name().cmp(b.name()).then_with(|| {
        a.labels()
            .map(|l| (l.key(), l.value()))
            .cmp(b.labels().map(|l| (l.key(), l.value())))
    })
}

fn header(out: &mut String, name: &str, kind: &str) {
    if let Some(help) = names::help(name) {
        let _ = writeln!(out, "# HELP {name} {help}");
    }
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Writes `{k="v",...}` (nothing when there are no labels and no `le`).
fn labels(out: &mut String, key: &Key, le: Option<&str>) {
    let mut first = true;
    for l in key.labels() {
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(l.key());
        out.push_str("=\"");
        escape_label_value(out, l.value());
        out.push('"');
    }
    if let Some(le) = le {
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str("le=\"");
        out.push_str(le);
        out.push('"');
    }
    if !first {
        out.push('}');
    }
}

/// Prometheus text format: `\`, `"` and line feed are escaped in values.
fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn histogram_lines(out: &mut String, key: &Key, s: &HistogramSnapshot) {
    let name = key.name();
    for &(le, count) in &s.buckets {
        let _ = write!(out, "{name}_bucket");
        labels(out, key, Some(&le.to_string()));
        let _ = writeln!(out, " {count}");
    }
    let _ = write!(out, "{name}_bucket");
    labels(out, key, Some("+Inf"));
    let _ = writeln!(out, " {}", s.count);
    let _ = write!(out, "{name}_sum");
    labels(out, key, None);
    let _ = writeln!(out, " {}", s.sum);
    let _ = write!(out, "{name}_count");
    labels(out, key, None);
    let _ = writeln!(out, " {}", s.count);
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics::Label;

    fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
        Key::from_parts(
            name,
            labels
                .iter()
                .map(|(k, v)| Label::new(*k, v.to_string()))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn renders_counters_and_histograms() {
        let store = Store::new(&[0.1, 1.0]);
        let c = store
            .counter(&key(names::SERVICE_REQUESTS_TOTAL, &[("service", "a\"b")]))
            .unwrap();
        c.fetch_add(3, Ordering::Relaxed);
        let h = store
            .histogram(&key(names::SERVICE_REQUEST_DURATION, &[("service", "s")]))
            .unwrap();
        h.record_nanos(50_000_000);
        let mut out = String::new();
        store.render(&mut out);
        assert!(out.contains("# TYPE proxy_service_requests_total counter\n"));
        assert!(out.contains("proxy_service_requests_total{service=\"a\\\"b\"} 3\n"));
        assert!(out.contains(
            "proxy_service_request_duration_seconds_bucket{service=\"s\",le=\"0.1\"} 1\n"
        ));
        assert!(out.contains(
            "proxy_service_request_duration_seconds_bucket{service=\"s\",le=\"+Inf\"} 1\n"
        ));
        assert!(out.contains("proxy_service_request_duration_seconds_sum{service=\"s\"} 0.05\n"));
        assert!(out.contains("proxy_service_request_duration_seconds_count{service=\"s\"} 1\n"));
    }

    #[test]
    fn forgotten_names_render_once_more_then_vanish_and_stay_gone() {
        let store = Store::new(&[1.0]);
        let k = key(
            names::ROUTER_REQUESTS_TOTAL,
            &[("router", "r"), ("service", "s")],
        );
        store.counter(&k).unwrap().fetch_add(1, Ordering::Relaxed);
        let e0 = store.epoch();
        store.forget(&["r"], &[] as &[&str]);
        assert_ne!(store.epoch(), e0);
        assert!(store.counter(&k).is_none(), "no zombie re-registration");
        let mut first = String::new();
        store.render(&mut first);
        assert!(first.contains("router=\"r\""), "{first}");
        let mut second = String::new();
        store.render(&mut second);
        assert!(!second.contains("router=\"r\""), "{second}");
        assert_eq!(store.len(), 0);
        // A later configuration that has the router again revives it.
        store.set_live(&["r"], &["s"]);
        assert!(store.counter(&k).is_some());
    }
}
