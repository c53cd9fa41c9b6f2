//! The control plane: loads the dynamic configuration from its providers,
//! compiles it and publishes it with one `ArcSwap` store; reloads when a
//! provider sees a change or on `SIGHUP`.
//!
//! - `file.rs`: the file provider (loading and watching `providers.file`).
//! - `provider.rs`: the other providers (`http_provider.rs`,
//!   `redis_provider.rs`, `etcd_provider.rs`, over `http_client.rs`), each
//!   keeping its last good configuration and sending `Trigger`s to the
//!   control thread; a reload merges every provider's
//!   (`config::load_providers`, names qualified `name@provider`).
//! - `compile.rs`: a validated configuration into a [`Snapshot`].
//! - `watch.rs`: the control thread and the `SIGHUP` listener.
//! - `history.rs`: the reload history the API shows.
//! - here: [`Control`], which serialises reloads and publishes snapshots.
//!
//! Nothing here runs on the request path. A reload builds a whole new
//! snapshot off to the side; readers never wait for it (decision 2). An
//! error that belongs to one element disables that element (and what
//! references it) and the rest is published; a load with an error that
//! belongs to no element (a file that does not parse) is rejected whole
//! and the running configuration stays (at start: an empty one).

// A reload is serialised by a mutex: it is taken only by the control
// thread, SIGHUP handling and tests, never by a request.
#![allow(clippy::disallowed_types)]

pub mod compile;
mod etcd_provider;
pub mod file;
pub mod history;
mod http_client;
mod http_provider;
mod provider;
mod redis_provider;
mod watch;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use arc_swap::ArcSwap;

pub use compile::{Identities, compile};
pub use history::{ReloadEvent, ReloadHistory, ReloadResult};

use crate::config::{
    self, ConfigError, ConfigErrors, ConfigWarning, DynamicConfig, Loaded, StaticConfig,
};
use crate::observe::{self, MetricsHandle};
use crate::snapshot::{SharedSnapshot, Snapshot};
use crate::tls::{CertSet, TlsRuntime};
use crate::upstream::HealthChecks;

/// Why a reload was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    /// A watched configuration file changed.
    FileChanged,
    /// The process got `SIGHUP`.
    Sighup,
    /// A provider other than `file` gave a new configuration.
    Provider,
}

/// What the control thread is asked to do.
#[derive(Debug)]
enum Trigger {
    /// Load, compile and publish the dynamic configuration.
    Reload(Cause),
    /// The static configuration file changed: it applies after a restart.
    StaticChanged,
    /// The proxy is stopping.
    Stop,
    /// Sent by the control thread to its booster: a reload it was given
    /// has ended (applied or refused).
    Applied,
}

/// State shared by [`Control`], the control thread and the signal
/// listener.
struct Inner {
    static_cfg: Arc<StaticConfig>,
    static_file: Option<PathBuf>,
    snapshot: SharedSnapshot,
    ids: Identities,
    tls: TlsRuntime,
    generation: AtomicU64,
    rejected: AtomicU64,
    /// The certificate files the running configuration reads, watched for
    /// renewals.
    cert_files: file::CertFiles,
    /// Serialises reloads; holds the [`file::fingerprint`] of the files
    /// last examined (applied or rejected).
    reload_lock: Mutex<Option<u64>>,
    metrics: Option<MetricsHandle>,
    /// The active health checks of the served configuration.
    health: HealthChecks,
    /// Every load's outcome, for the API.
    history: Arc<ReloadHistory>,
    /// The last good configuration of each provider other than `file`.
    providers: Arc<provider::Providers>,
    /// The file provider's files last applied: served with the other
    /// providers' when a later edit cannot be used.
    file_good: Mutex<Option<config::FileTexts>>,
}

/// Owns the configuration lifecycle of a running proxy.
pub struct Control {
    inner: Arc<Inner>,
    thread: Mutex<Option<(Sender<Trigger>, JoinHandle<()>)>>,
    /// The tasks of the providers other than `file`.
    tasks: Mutex<Option<provider::Tasks>>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

/// The metric label values of a snapshot's routers and services.
fn live_names(snap: &Snapshot) -> (Vec<&str>, Vec<&str>) {
    (
        snap.routers.iter().map(|r| &*r.name).collect(),
        snap.services.iter().map(|s| &*s.name).collect(),
    )
}

/// Every provider's configuration merged: the file provider's files and
/// the others' last good configurations. When other providers give
/// something and the files cannot be used (a file that does not parse),
/// the file provider's last applied files are used instead (none at
/// start), so that what the others give is never refused because of it;
/// the files' errors are logged.
fn load_all(
    static_cfg: &StaticConfig,
    providers: &provider::Providers,
    file_good: &Mutex<Option<config::FileTexts>>,
) -> Loaded {
    let entry_points = static_cfg.entry_point_names();
    let syntax = static_cfg.default_rule_syntax;
    let files = config::read_file_provider(static_cfg.providers.file.as_ref());
    let others = providers.configs();
    let mut loaded = config::load_providers(files.as_ref(), &others, &entry_points, syntax);
    let mut good = file_good.lock().unwrap_or_else(|e| e.into_inner());
    if loaded.usable {
        *good = files;
    } else if !others.is_empty() {
        for e in &loaded.errors {
            tracing::error!("{e}");
        }
        tracing::error!(
            "the file provider's configuration cannot be used; serving its last applied files with the other providers'"
        );
        observe::record_config_rejected();
        loaded = config::load_providers(good.as_ref(), &others, &entry_points, syntax);
    }
    file::finish_load(&mut loaded, static_cfg);
    loaded
}

/// What `proxy check` reports: the compiled configuration (certificates
/// read, TLS options built), or every error; the warnings in both cases.
pub fn check(static_cfg: &StaticConfig) -> (Result<Snapshot, ConfigErrors>, Vec<ConfigWarning>) {
    let mut loaded = file::load(static_cfg);
    let result = match tls_runtime() {
        Err(e) => Err(e),
        Ok(_) if !loaded.usable => Err(ConfigErrors(loaded.errors.clone())),
        Ok(tls) => match build(static_cfg, &tls, &Identities::default(), 0, &mut loaded) {
            Ok((snap, _)) => loaded.error_list().map_or(Ok(snap), Err),
            Err(fatal) => {
                let mut all = loaded.errors.clone();
                all.extend(fatal.0);
                Err(ConfigErrors::sorted(all))
            }
        },
    };
    (result, loaded.warnings)
}

/// What `proxy explain` routes with: the configuration as the running
/// proxy would serve it (an element with an error disabled, not the
/// whole load), with the load's errors to report; `Err` when it cannot
/// be served at all.
pub fn served(static_cfg: &StaticConfig) -> Result<(Snapshot, Vec<ConfigError>), ConfigErrors> {
    let mut loaded = file::load(static_cfg);
    let tls = tls_runtime()?;
    if !loaded.usable {
        return Err(ConfigErrors(loaded.errors));
    }
    let (snap, _) = build(static_cfg, &tls, &Identities::default(), 1, &mut loaded)?;
    Ok((snap, loaded.errors))
}

fn tls_runtime() -> Result<TlsRuntime, ConfigErrors> {
    TlsRuntime::new().map_err(|message| {
        ConfigErrors(vec![ConfigError {
            file: Default::default(),
            key: "tls".to_owned(),
            line: None,
            column: None,
            message,
        }])
    })
}

/// Builds generation `generation` of `loaded` (certificates read, TLS
/// options and upstream TLS clients built): the snapshot and the
/// certificate set to publish with it. What cannot be built is disabled
/// in `loaded` with what uses it (its errors join the load's); an error
/// only when nothing can be served (the `default` TLS options).
fn build(
    static_cfg: &StaticConfig,
    tls: &TlsRuntime,
    ids: &Identities,
    generation: u64,
    loaded: &mut Loaded,
) -> Result<(Snapshot, CertSet), ConfigErrors> {
    let prepared = tls.prepare(&static_cfg.entry_points, &loaded.config)?;
    if !prepared.unbuilt.is_empty() {
        crate::config::disable_unbuilt(loaded, &prepared.unbuilt);
    }
    let snap = compile(
        static_cfg,
        &loaded.config,
        generation,
        ids,
        prepared.tls,
        &prepared.upstream,
    );
    Ok((snap, prepared.certs))
}

/// [`build`] of a load, then its report (warnings, errors, disabled
/// elements, each logged once); `Err` when the load is unusable or
/// cannot be built.
fn build_loaded(
    static_cfg: &StaticConfig,
    tls: &TlsRuntime,
    ids: &Identities,
    generation: u64,
    mut loaded: Loaded,
) -> Result<(Snapshot, CertSet, DynamicConfig), ConfigErrors> {
    if !loaded.usable {
        report(&loaded);
        return Err(loaded
            .error_list()
            .unwrap_or_else(|| ConfigErrors(Vec::new())));
    }
    let built = build(static_cfg, tls, ids, generation, &mut loaded);
    report(&loaded);
    match built {
        Ok((snap, certs)) => Ok((snap, certs, loaded.config)),
        Err(errors) => {
            for e in &errors.0 {
                tracing::error!("{e}");
            }
            Err(errors)
        }
    }
}

/// Logs a load's warnings and errors, each once, and a line per disabled
/// element saying what it does now; sets the disabled-elements gauge.
fn report(loaded: &Loaded) {
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    for e in &loaded.errors {
        tracing::error!("{e}");
    }
    if loaded.usable {
        for d in &loaded.config.disabled {
            tracing::error!("{d}");
        }
        observe::record_config_disabled(&loaded.config.disabled);
    }
}

impl Control {
    /// Loads and compiles the first configuration. An element with an
    /// error is disabled; a file that cannot be used at all gives no
    /// configuration from the provider (every request is 404) until a
    /// reload reads a usable one, as in Traefik.
    pub fn new(
        static_cfg: Arc<StaticConfig>,
        static_file: Option<PathBuf>,
        metrics: Option<MetricsHandle>,
    ) -> Result<Self, ConfigErrors> {
        let ids = Identities::default();
        let tls = tls_runtime()?;
        // The certificate files are known after the load: the first event
        // on one reloads once more, which changes nothing.
        let files = file::fingerprint(&static_cfg, &[]);
        let started = Instant::now();
        let providers = Arc::new(provider::Providers::default());
        let file_good = Mutex::new(None);
        let loaded = load_all(&static_cfg, &providers, &file_good);
        let mut rejected = 0;
        let history = Arc::new(ReloadHistory::default());
        let (snap, certs, dynamic) = match build_loaded(&static_cfg, &tls, &ids, 1, loaded) {
            Ok(built) => {
                history.push(ReloadEvent::applied(1, started, &built.2));
                built
            }
            Err(errors) => {
                history.push(ReloadEvent::rejected(1, started, &errors));
                tracing::error!("the dynamic configuration cannot be used; starting without it");
                observe::record_config_rejected();
                rejected = 1;
                let mut empty = Loaded {
                    usable: true,
                    ..Loaded::default()
                };
                let (snap, certs) = build(&static_cfg, &tls, &ids, 1, &mut empty)?;
                (snap, certs, empty.config)
            }
        };
        tls.publish(certs);
        tracing::info!(
            generation = 1,
            routers = snap.routers.len(),
            services = snap.services.len(),
            "configuration loaded"
        );
        if let Some(m) = &metrics {
            let (routers, services) = live_names(&snap);
            m.set_live(&routers, &services);
        }
        observe::record_config_applied(1);
        let health = HealthChecks::default();
        health.apply(&snap);
        Ok(Self {
            inner: Arc::new(Inner {
                static_cfg,
                static_file,
                snapshot: Arc::new(ArcSwap::from_pointee(snap)),
                ids,
                tls,
                cert_files: Arc::new(Mutex::new(file::absolute_all(&dynamic.tls.files()))),
                generation: AtomicU64::new(1),
                rejected: AtomicU64::new(rejected),
                reload_lock: Mutex::new(files),
                metrics,
                health,
                history,
                providers,
                file_good,
            }),
            thread: Mutex::new(None),
            tasks: Mutex::new(None),
        })
    }

    /// The published configuration, for the workers.
    pub fn snapshot(&self) -> SharedSnapshot {
        Arc::clone(&self.inner.snapshot)
    }

    /// The generation of the configuration being served.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// How many reloads were rejected (invalid configuration) so far.
    pub fn rejected(&self) -> u64 {
        self.inner.rejected.load(Ordering::Acquire)
    }

    /// The history of loads (applied and rejected), for the API.
    pub fn history(&self) -> Arc<ReloadHistory> {
        Arc::clone(&self.inner.history)
    }

    /// The metrics handle, when Prometheus metrics are enabled.
    pub fn metrics(&self) -> Option<&MetricsHandle> {
        self.inner.metrics.as_ref()
    }

    /// Reloads the dynamic configuration now: its generation, or, when the
    /// load cannot be used at all, the errors (logged too) while the
    /// running configuration stays. Element errors disable their elements
    /// and are logged; [`Snapshot::disabled`] lists them.
    pub fn reload(&self) -> Result<u64, ConfigErrors> {
        self.inner
            .reload(true)
            .map(|g| g.unwrap_or_else(|| self.generation()))
    }

    /// Starts the control thread: watching the configuration files (when
    /// the file provider's `watch` is on) and handling `SIGHUP`. Both are
    /// in place when this returns.
    pub fn start_watching(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        let inner = &self.inner;
        let files = file::watch(
            &inner.static_cfg,
            inner.static_file.as_deref(),
            Arc::clone(&inner.cert_files),
            tx.clone(),
        );
        watch::forward_sighup(tx.clone());
        *self.tasks.lock().unwrap_or_else(|e| e.into_inner()) =
            provider::start(&inner.static_cfg, &inner.providers, &tx);
        let inner = Arc::clone(inner);
        let own = tx.clone();
        let h = std::thread::Builder::new()
            .name("proxy-control".into())
            .spawn(move || watch::run(inner, rx, own, files))
            .expect("spawn control thread");
        *self.thread.lock().expect("control thread lock") = Some((tx, h));
    }

    /// Stops the control thread (and the file watches with it) and the
    /// providers' tasks.
    pub fn stop(&self) {
        drop(self.tasks.lock().unwrap_or_else(|e| e.into_inner()).take());
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((tx, h)) = thread {
            let _ = tx.send(Trigger::Stop);
            let _ = h.join();
        }
    }
}

impl Drop for Control {
    /// A proxy dropped without [`Control::stop`] (a test that panicked)
    /// does not leave its control thread and file watches behind.
    fn drop(&mut self) {
        self.stop();
    }
}

impl Inner {
    /// Loads, compiles and publishes a new generation; serialised, so two
    /// triggers never compile at once. Unless `forced` (`SIGHUP`, an
    /// explicit reload), files whose bytes are those last examined are not
    /// loaded again: `Ok(None)`.
    fn reload(&self, forced: bool) -> Result<Option<u64>, ConfigErrors> {
        let mut examined = self.reload_lock.lock().unwrap_or_else(|e| e.into_inner());
        let certs = self
            .cert_files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let files = self.fingerprint(&certs);
        if !forced && files.is_some() && *examined == files {
            tracing::debug!("configuration files unchanged: nothing to reload");
            return Ok(None);
        }
        *examined = files;
        let started = Instant::now();
        let loaded = load_all(&self.static_cfg, &self.providers, &self.file_good);
        let generation = self.generation.load(Ordering::Acquire) + 1;
        let result = build_loaded(&self.static_cfg, &self.tls, &self.ids, generation, loaded);
        match result {
            Ok((snap, certs, dynamic)) => {
                let (routers, services) = (snap.routers.len(), snap.services.len());
                // Certificates first: a handshake between the two stores
                // sees the new certificates with the old options, never a
                // certificate missing.
                self.tls.publish(certs);
                self.publish(generation, snap);
                self.history
                    .push(ReloadEvent::applied(generation, started, &dynamic));
                *self.cert_files.lock().unwrap_or_else(|e| e.into_inner()) =
                    file::absolute_all(&dynamic.tls.files());
                tracing::info!(
                    generation,
                    routers,
                    services,
                    took_ms = started.elapsed().as_secs_f64() * 1e3,
                    "configuration reloaded"
                );
                Ok(Some(generation))
            }
            Err(errors) => {
                self.rejected.fetch_add(1, Ordering::AcqRel);
                self.history.push(ReloadEvent::rejected(
                    self.generation.load(Ordering::Acquire),
                    started,
                    &errors,
                ));
                observe::record_config_rejected();
                tracing::error!(
                    generation = self.generation.load(Ordering::Acquire),
                    "configuration rejected, keeping the running one ({} errors above)",
                    errors.0.len()
                );
                Err(errors)
            }
        }
    }

    /// What the providers hold now: the file provider's files (see
    /// [`file::fingerprint`]) and the other providers' last good
    /// configurations (their version); `None` when it cannot be known
    /// (no provider at all).
    fn fingerprint(&self, certs: &[PathBuf]) -> Option<u64> {
        use std::hash::{Hash, Hasher};
        let files = file::fingerprint(&self.static_cfg, certs);
        if !self.static_cfg.providers.has_external() {
            return files;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (files, self.providers.version()).hash(&mut h);
        Some(h.finish())
    }

    /// Makes `snap` the configuration every new request sees.
    fn publish(&self, generation: u64, snap: Snapshot) {
        // Series of routers and services that are gone disappear from
        // /metrics after one more scrape, as in Traefik; declared before
        // the store so a request on the new snapshot is never refused its
        // series.
        if let Some(m) = &self.metrics {
            let (routers, services) = live_names(&snap);
            m.set_live(&routers, &services);
        }
        let snap = Arc::new(snap);
        self.snapshot.store(Arc::clone(&snap));
        self.health.apply(&snap);
        self.generation.store(generation, Ordering::Release);
        observe::record_config_applied(generation);
    }
}
