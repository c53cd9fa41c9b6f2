//! The metrics recorder and the Prometheus endpoint: installs one global
//! `metrics` recorder, renders `/metrics`, answers `/ping`, records reloads.
//!
//! The recorder ([`ProxyRecorder`]) routes each metric by name: the
//! per-request series (entrypoint/router/service families and
//! `proxy_router_decision_seconds`) go to our lock-free store (see
//! `store.rs` for why), everything else (reload counters, open connections,
//! whatever other modules record) to `metrics-exporter-prometheus`.
//! [`MetricsHandle::render`] concatenates both.
//!
//! Nothing here runs per request except through handles resolved earlier.

use crate::config::{DisabledElement, ElementKind};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use super::names;
use super::store::Store;

/// Content type of the Prometheus text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Settings of the Prometheus recorder (plain values from the static config).
#[derive(Debug, Clone)]
pub struct MetricsOptions {
    /// Latency buckets in seconds (`metrics.prometheus.buckets`; Traefik's
    /// default is [`names::DEFAULT_BUCKETS`]).
    pub buckets: Vec<f64>,
    /// How often the exporter's upkeep runs (drains its histogram samples).
    pub upkeep_interval: Duration,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        Self {
            buckets: names::DEFAULT_BUCKETS.to_vec(),
            upkeep_interval: Duration::from_secs(5),
        }
    }
}

/// Errors installing the global recorder.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A global `metrics` recorder was already installed in this process.
    #[error("a global metrics recorder is already installed")]
    AlreadyInstalled,
    /// The buckets were rejected by the exporter (e.g. empty).
    #[error("invalid metrics buckets: {0}")]
    Buckets(String),
    /// The upkeep thread could not be started.
    #[error("cannot start the metrics upkeep thread: {0}")]
    Thread(#[from] std::io::Error),
}

// === impl ProxyRecorder ===

/// The process's `metrics` recorder: our store for per-request series, the
/// Prometheus exporter for the rest.
#[derive(Debug)]
pub struct ProxyRecorder {
    prometheus: PrometheusRecorder,
    store: Arc<Store>,
}

/// Whether a metric name is one of the per-request series kept in our store.
fn owned(name: &str) -> bool {
    names::help(name).is_some()
}

impl Recorder for ProxyRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        // Our own series carry their help text in `names`.
        if !owned(key.as_str()) {
            self.prometheus.describe_counter(key, unit, description);
        }
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        if !owned(key.as_str()) {
            self.prometheus.describe_gauge(key, unit, description);
        }
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        if !owned(key.as_str()) {
            self.prometheus.describe_histogram(key, unit, description);
        }
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        if owned(key.name()) {
            self.store
                .counter(key)
                .map_or_else(Counter::noop, Counter::from_arc)
        } else {
            self.prometheus.register_counter(key, metadata)
        }
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.prometheus.register_gauge(key, metadata)
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        if owned(key.name()) {
            self.store
                .histogram(key)
                .map_or_else(Histogram::noop, Histogram::from_arc)
        } else {
            self.prometheus.register_histogram(key, metadata)
        }
    }
}

// === impl MetricsHandle ===

/// Handle on the recorder: renders `/metrics` and removes the series of
/// routers and services a reload dropped. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MetricsHandle {
    prometheus: PrometheusHandle,
    pub(crate) store: Arc<Store>,
}

impl MetricsHandle {
    /// The whole Prometheus text: our per-request series, then the
    /// exporter's. Removes series of routers/services that no longer exist
    /// after rendering them one last time (as Traefik does).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        self.store.render(&mut out);
        out.push_str(&self.prometheus.render());
        out
    }

    /// Declares the routers and services of a configuration. Call it on each
    /// applied reload, before publishing the new snapshot: series of names
    /// not listed are dropped after the next scrape and not recreated by
    /// requests still running on the old configuration. Until the first call
    /// every name is accepted.
    pub fn set_live<R: AsRef<str>, S: AsRef<str>>(&self, routers: &[R], services: &[S]) {
        self.store.set_live(routers, services);
    }

    /// Forgets these routers and services: their series are dropped after
    /// the next scrape and not recreated until [`MetricsHandle::set_live`]
    /// lists them again.
    pub fn forget<R: AsRef<str>, S: AsRef<str>>(&self, routers: &[R], services: &[S]) {
        self.store.forget(routers, services);
    }

    /// Runs the exporter's upkeep (drains its histogram samples). Our store
    /// needs none. Called by [`spawn_upkeep`]'s thread.
    pub fn run_upkeep(&self) {
        self.prometheus.run_upkeep();
    }
}

/// Builds a recorder and its handle without installing it globally (tests
/// use it with `metrics::with_local_recorder`; [`install`] for the process).
pub fn build_recorder(
    options: &MetricsOptions,
) -> Result<(ProxyRecorder, MetricsHandle), MetricsError> {
    let prometheus = PrometheusBuilder::new()
        .set_buckets(&options.buckets)
        .map_err(|e| MetricsError::Buckets(e.to_string()))?
        .build_recorder();
    let store = Arc::new(Store::new(&options.buckets));
    let handle = MetricsHandle {
        prometheus: prometheus.handle(),
        store: Arc::clone(&store),
    };
    Ok((ProxyRecorder { prometheus, store }, handle))
}

/// Installs the recorder as the process-wide `metrics` recorder, describes
/// the metrics, sets the reload metrics to 0 (Traefik exports unlabelled
/// counters from the start) and starts the upkeep thread.
///
/// Returns the handle and the upkeep thread's guard; keep the guard for the
/// process lifetime (dropping it stops the upkeep).
pub fn install(options: &MetricsOptions) -> Result<(MetricsHandle, UpkeepThread), MetricsError> {
    let (recorder, handle) = build_recorder(options)?;
    metrics::set_global_recorder(recorder).map_err(|_| MetricsError::AlreadyInstalled)?;
    describe_metrics();
    init_reload_metrics();
    let upkeep = spawn_upkeep(handle.clone(), options.upkeep_interval)?;
    Ok((handle, upkeep))
}

/// Describes (help texts) the metrics kept by the exporter. Our own series
/// carry theirs in `names`.
pub fn describe_metrics() {
    metrics::describe_counter!(names::CONFIG_RELOADS_TOTAL, "Config reloads");
    metrics::describe_counter!(
        names::CONFIG_RELOAD_FAILURES_TOTAL,
        "Config reloads rejected (the running configuration stayed)"
    );
    metrics::describe_gauge!(
        names::CONFIG_LAST_RELOAD_SUCCESS,
        "Last config reload success"
    );
    metrics::describe_gauge!(
        names::CONFIG_LAST_RELOAD_FAILURE,
        "Last config reload failure"
    );
    metrics::describe_gauge!(
        names::CONFIG_GENERATION,
        "Generation number of the configuration being served"
    );
    metrics::describe_gauge!(
        names::CONFIG_DISABLED_ELEMENTS,
        "Elements of the served configuration disabled by an error, by kind"
    );
    metrics::describe_gauge!(
        names::OPEN_CONNECTIONS,
        "How many open connections exist, by entryPoint and protocol"
    );
    metrics::describe_gauge!(
        names::SERVICE_SERVER_UP,
        "Whether a health-checked server is up (1) or down (0)"
    );
    metrics::describe_counter!(
        names::ACCESSLOG_DROPPED_TOTAL,
        "Access log lines dropped because the writer fell behind"
    );
    metrics::describe_counter!(
        names::TLS_HANDSHAKE_ERRORS_TOTAL,
        "TLS handshakes that failed, by entryPoint"
    );
}

/// Registers the unlabelled reload series at 0 so they show before the
/// first reload.
pub fn init_reload_metrics() {
    metrics::counter!(names::CONFIG_RELOADS_TOTAL).increment(0);
    metrics::counter!(names::CONFIG_RELOAD_FAILURES_TOTAL).increment(0);
    metrics::gauge!(names::CONFIG_LAST_RELOAD_SUCCESS).set(0.0);
    metrics::gauge!(names::CONFIG_LAST_RELOAD_FAILURE).set(0.0);
    metrics::gauge!(names::CONFIG_GENERATION).set(0.0);
}

fn unix_now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs() as f64)
}

/// Records an applied configuration (the first one included, as Traefik
/// counts it): `proxy_config_reloads_total` + 1,
/// `proxy_config_last_reload_success` = now (Unix seconds),
/// `proxy_config_generation` = `generation`.
pub fn record_config_applied(generation: u64) {
    metrics::counter!(names::CONFIG_RELOADS_TOTAL).increment(1);
    metrics::gauge!(names::CONFIG_LAST_RELOAD_SUCCESS).set(unix_now_secs());
    metrics::gauge!(names::CONFIG_GENERATION).set(generation as f64);
}

/// Sets `proxy_config_disabled_elements{kind}` for every kind (0 included)
/// from the configuration about to be served.
pub fn record_config_disabled(disabled: &[DisabledElement]) {
    for kind in ElementKind::ALL {
        let n = disabled.iter().filter(|d| d.kind == kind).count();
        metrics::gauge!(names::CONFIG_DISABLED_ELEMENTS, "kind" => kind.as_str()).set(n as f64);
    }
}

/// Records a rejected configuration: `proxy_config_reload_failures_total` + 1,
/// `proxy_config_last_reload_failure` = now (Unix seconds).
pub fn record_config_rejected() {
    metrics::counter!(names::CONFIG_RELOAD_FAILURES_TOTAL).increment(1);
    metrics::gauge!(names::CONFIG_LAST_RELOAD_FAILURE).set(unix_now_secs());
}

// === open connections ===

/// `proxy_open_connections{entrypoint, protocol}` for one entrypoint,
/// resolved once when the listener starts; `inc`/`dec` are one atomic each.
#[derive(Debug, Clone)]
pub struct ConnectionGauge(Gauge);

impl ConnectionGauge {
    /// Resolves the gauge; `protocol` is `"TCP"` or `"UDP"` as in Traefik.
    pub fn new(entrypoint: &str, protocol: &'static str) -> Self {
        Self(metrics::gauge!(
            names::OPEN_CONNECTIONS,
            names::LABEL_ENTRYPOINT => entrypoint.to_owned(),
            names::LABEL_PROTOCOL => protocol
        ))
    }

    /// A connection was accepted.
    #[inline]
    pub fn inc(&self) {
        self.0.increment(1.0);
    }

    /// A connection was closed.
    #[inline]
    pub fn dec(&self) {
        self.0.decrement(1.0);
    }
}

// === upkeep ===

/// Guard of the upkeep thread; dropping it stops and joins the thread.
#[derive(Debug)]
pub struct UpkeepThread {
    stop: Option<mpsc::Sender<()>>,
    join: Option<thread::JoinHandle<()>>,
}

impl Drop for UpkeepThread {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

/// Starts a std thread running [`MetricsHandle::run_upkeep`] every
/// `interval`.
///
/// A std thread rather than a tokio task: the workers run current-thread
/// runtimes pinned to cores, and a periodic task would land on one of them
/// and steal its time at arbitrary moments; this thread also works before
/// any runtime exists. It sleeps in `recv_timeout` and costs nothing between
/// ticks.
pub fn spawn_upkeep(
    handle: MetricsHandle,
    interval: Duration,
) -> Result<UpkeepThread, MetricsError> {
    let (tx, rx) = mpsc::channel::<()>();
    let join = thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(interval) {
                handle.run_upkeep();
            }
        })?;
    Ok(UpkeepThread {
        stop: Some(tx),
        join: Some(join),
    })
}

// === admin endpoint ===

fn plain(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Bytes> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    resp
}

/// Answers a request on the internal (`traefik`) entrypoint.
///
/// As Traefik v3's internal routers (`PathPrefix(`/metrics`)` →
/// `prometheus@internal`, `PathPrefix(`/ping`)` → `ping@internal`, neither
/// restricted by method): `/metrics…` → the Prometheus text when `handle`
/// is `Some`; `/ping…` → 200 `OK` when `ping_enabled`; anything else → 404
/// `404 page not found` (Go's `NotFound` text). A `HEAD` gets the headers
/// without the body.
pub fn admin_response(
    path: &str,
    method: &Method,
    handle: Option<&MetricsHandle>,
    ping_enabled: bool,
) -> Response<Bytes> {
    let head = method == Method::HEAD;
    let body = |b: Bytes| if head { Bytes::new() } else { b };
    if let (true, Some(h)) = (path.starts_with("/metrics"), handle) {
        return plain(
            StatusCode::OK,
            PROMETHEUS_CONTENT_TYPE,
            body(Bytes::from(h.render())),
        );
    }
    if ping_enabled && path.starts_with("/ping") {
        return plain(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            body(Bytes::from_static(b"OK")),
        );
    }
    plain(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        body(Bytes::from_static(b"404 page not found\n")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> (ProxyRecorder, MetricsHandle) {
        build_recorder(&MetricsOptions::default()).unwrap()
    }

    #[test]
    fn reload_metrics_render_through_the_exporter() {
        let (recorder, handle) = local();
        metrics::with_local_recorder(&recorder, || {
            describe_metrics();
            init_reload_metrics();
            record_config_applied(7);
            record_config_rejected();
            record_config_applied(8);
        });
        let text = handle.render();
        assert!(
            text.contains("# HELP proxy_config_reloads_total Config reloads"),
            "{text}"
        );
        assert!(text.contains("proxy_config_reloads_total 2\n"), "{text}");
        assert!(
            text.contains("proxy_config_reload_failures_total 1\n"),
            "{text}"
        );
        assert!(text.contains("proxy_config_generation 8\n"), "{text}");
        assert!(
            !text.contains("proxy_config_last_reload_success 0\n"),
            "{text}"
        );
    }

    #[test]
    fn open_connections_gauge() {
        let (recorder, handle) = local();
        metrics::with_local_recorder(&recorder, || {
            let g = ConnectionGauge::new("web", "TCP");
            g.inc();
            g.inc();
            g.dec();
        });
        let text = handle.render();
        assert!(
            text.contains("proxy_open_connections{entrypoint=\"web\",protocol=\"TCP\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn admin_paths() {
        let (recorder, handle) = local();
        metrics::with_local_recorder(&recorder, init_reload_metrics);
        let r = admin_response("/metrics", &Method::GET, Some(&handle), false);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_TYPE], PROMETHEUS_CONTENT_TYPE);
        assert!(
            std::str::from_utf8(r.body())
                .unwrap()
                .contains("proxy_config_reloads_total 0")
        );

        let r = admin_response("/metrics", &Method::GET, None, true);
        assert_eq!(r.status(), StatusCode::NOT_FOUND);

        let r = admin_response("/ping", &Method::GET, None, true);
        assert_eq!(
            (r.status(), r.body().as_ref()),
            (StatusCode::OK, &b"OK"[..])
        );
        let r = admin_response("/ping", &Method::HEAD, None, true);
        assert_eq!((r.status(), r.body().len()), (StatusCode::OK, 0));
        let r = admin_response("/ping", &Method::GET, None, false);
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = admin_response("/other", &Method::GET, Some(&handle), true);
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn upkeep_thread_stops_on_drop() {
        let (_recorder, handle) = local();
        let guard = spawn_upkeep(handle, Duration::from_millis(5)).unwrap();
        thread::sleep(Duration::from_millis(20));
        drop(guard);
    }
}
