//! Starting and stopping the proxy: binds the entrypoints, compiles the
//! first configuration, starts the worker threads and the control plane,
//! and drains on shutdown.
//!
//! Used by the binary, the tests, the benches and the harness alike, so the
//! process they measure is the one users run.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use http::HeaderValue;
use tokio::sync::watch;

use crate::admin::{Admin, AdminRoutes};
use crate::config::{self, ConfigErrors, StaticConfig};
use crate::control::Control;
use crate::forward::Shared;
use crate::ipnet::IpSet;
use crate::listener::{
    self, ConnTimeouts, EntryPointHeaders, EntryPointInfo, Handshake, KeepAliveLimits,
    ProxyProtocol, Shutdown, WorkerListener,
};
use crate::observe::{self, AccessLogOptions, AccessLogWriter, MetricsFlags, MetricsHandle};

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The static or dynamic configuration is invalid.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// An entrypoint could not be bound.
    #[error("entrypoint {name:?}: cannot listen on {addr}: {source}")]
    Bind {
        /// Entrypoint name.
        name: String,
        /// Address it was to listen on.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A worker thread or runtime could not be started.
    #[error("cannot start worker: {0}")]
    Worker(std::io::Error),
    /// The access log file could not be opened.
    #[error("access log: {0}")]
    AccessLog(observe::access_log::AccessLogError),
}

/// A running proxy.
#[derive(Debug)]
pub struct Running {
    /// Bound address of each entrypoint, by name.
    pub addrs: BTreeMap<String, SocketAddr>,
    shutdown: watch::Sender<Shutdown>,
    workers: Vec<JoinHandle<()>>,
    control: Control,
    grace: Duration,
    accept_grace: Duration,
    access_log: Option<AccessLogWriter>,
}

/// Starts serving `static_cfg` (loaded with [`config::load_static`]) with
/// `workers` worker threads. `static_file` is the file it came from, watched
/// to tell the user a change needs a restart.
pub fn start(
    static_cfg: StaticConfig,
    static_file: Option<PathBuf>,
    workers: usize,
) -> Result<Running, StartError> {
    let workers = workers.max(1);
    let mut static_cfg = static_cfg;
    // Bind every entrypoint before starting anything, so a port in use
    // fails the start cleanly.
    let mut bound_eps = Vec::with_capacity(static_cfg.entry_points.len());
    for ep in &static_cfg.entry_points {
        let bound = listener::bind::bind_reuseport(ep.addr, workers).map_err(|source| {
            StartError::Bind {
                name: ep.name.clone(),
                addr: ep.addr,
                source,
            }
        })?;
        bound_eps.push(bound);
    }
    // A redirection to an entrypoint on port 0 goes to the port it got.
    let ports: BTreeMap<String, u16> = static_cfg
        .entry_points
        .iter()
        .zip(&bound_eps)
        .map(|(ep, (_, addr))| (ep.name.clone(), addr.port()))
        .collect();
    for ep in &mut static_cfg.entry_points {
        if let Some(r) = &mut ep.redirect
            && r.port == 0
            && let Some(&port) = ports.get(&r.to)
        {
            r.port = port;
        }
    }
    let static_cfg = Arc::new(static_cfg);
    let metrics = install_metrics(&static_cfg);
    start_decision_watch();
    crate::rt::set_workers(workers);
    let control = Control::new(Arc::clone(&static_cfg), static_file, metrics.clone())?;
    let (access_log, access_log_writer) = match &static_cfg.access_log {
        Some(cfg) => {
            let opts = AccessLogOptions {
                file_path: cfg.file_path.clone(),
                format: match cfg.format {
                    config::LogFormat::Json => observe::AccessLogFormat::Json,
                    config::LogFormat::Common => observe::AccessLogFormat::Common,
                },
                buffering_size: usize::try_from(cfg.buffering_size).unwrap_or(usize::MAX),
                keep_headers: false,
            };
            let (tx, writer) = observe::access_log::start(&opts).map_err(StartError::AccessLog)?;
            (Some(tx), Some(writer))
        }
        None => (None, None),
    };
    let metric_flags = static_cfg.metrics.prometheus.as_ref().map_or(
        MetricsFlags {
            entry_points: false,
            routers: false,
            services: false,
        },
        |p| MetricsFlags {
            entry_points: p.add_entry_points_labels,
            routers: p.add_routers_labels,
            services: p.add_services_labels,
        },
    );

    let admin = Admin::new(
        Arc::clone(&static_cfg),
        control.snapshot(),
        metrics.clone(),
        control.history(),
    );
    let shared = Arc::new(Shared {
        snapshot: control.snapshot(),
        server_name: server_name(),
        metrics: metrics.clone(),
        metric_flags,
        access_log,
        admin: Some(Arc::clone(&admin)),
    });

    let mut addrs = BTreeMap::new();
    let mut per_worker: Vec<Vec<WorkerListener>> = (0..workers).map(|_| Vec::new()).collect();
    for ((index, ep), (socks, bound)) in static_cfg.entry_points.iter().enumerate().zip(bound_eps) {
        // Every entrypoint serves plain HTTP and TLS, as Traefik's do.
        let handshake = Handshake::Detect;
        tracing::info!(entrypoint = %ep.name, address = %bound, tls = handshake.serves_tls(), "listening");
        addrs.insert(ep.name.clone(), bound);
        let info = Arc::new(EntryPointInfo {
            index,
            name: Arc::from(ep.name.as_str()),
            trusted: IpSet::new(ep.forwarded_headers.trusted_ips.iter().copied()),
            insecure: ep.forwarded_headers.insecure,
            handshake_errors: metrics::counter!(
                observe::names::TLS_HANDSHAKE_ERRORS_TOTAL,
                "entrypoint" => ep.name.clone()
            ),
            headers: EntryPointHeaders {
                underscores: ep.underscore_headers,
                connection: ep.forwarded_headers.connection.clone().into(),
                not_append_x_forwarded_for: ep.forwarded_headers.not_append_x_forwarded_for,
                encode_query_semicolons: ep.encode_query_semicolons,
                sanitize_path: ep.sanitize_path,
                max_header_bytes: ep.max_header_bytes,
            },
        });
        let t = &ep.transport.responding_timeouts;
        let timeouts = ConnTimeouts {
            read: nonzero(t.read_timeout),
            idle: nonzero(t.idle_timeout),
            write: nonzero(t.write_timeout),
        };
        let admin =
            AdminRoutes::for_entrypoint(&static_cfg, &ep.name, metrics.clone(), Some(&admin));
        let keep_alive = KeepAliveLimits {
            max_requests: (ep.transport.keep_alive_max_requests > 0)
                .then_some(ep.transport.keep_alive_max_requests),
            max_time: nonzero(ep.transport.keep_alive_max_time),
        };
        let proxy_protocol = ep.proxy_protocol.as_ref().map(|pp| {
            if pp.insecure {
                tracing::info!(entrypoint = %ep.name, "PROXY protocol: every peer's header is used (insecure)");
            } else {
                tracing::info!(entrypoint = %ep.name, trusted = ?pp.trusted_ips, "PROXY protocol: headers used from trusted peers only");
            }
            ProxyProtocol {
                trusted: IpSet::new(pp.trusted_ips.iter().copied()),
                insecure: pp.insecure,
            }
        });
        for (w, sock) in socks.into_iter().enumerate() {
            per_worker[w].push(WorkerListener {
                info: Arc::clone(&info),
                handshake: handshake.clone(),
                timeouts,
                admin: admin.clone(),
                keep_alive,
                http2: ep.http2,
                proxy_protocol: proxy_protocol.clone(),
                socket: sock,
            });
        }
    }

    let (shutdown, shutdown_rx) = watch::channel(Shutdown::Running);
    let mut handles = Vec::with_capacity(workers);
    for (i, listeners) in per_worker.into_iter().enumerate() {
        let shared = Arc::clone(&shared);
        let rx = shutdown_rx.clone();
        let h = std::thread::Builder::new()
            .name(format!("proxy-worker-{i}"))
            .spawn(move || {
                crate::rt::set_worker_index(i);
                worker_thread(shared, listeners, rx)
            })
            .map_err(StartError::Worker)?;
        handles.push(h);
    }
    let grace = static_cfg
        .entry_points
        .iter()
        .map(|e| e.transport.life_cycle.grace_time_out)
        .max()
        .unwrap_or(Duration::from_secs(10));
    let accept_grace = static_cfg
        .entry_points
        .iter()
        .map(|e| e.transport.life_cycle.request_accept_grace_timeout)
        .max()
        .unwrap_or_default();
    control.start_watching();
    Ok(Running {
        addrs,
        shutdown,
        workers: handles,
        control,
        grace,
        accept_grace,
        access_log: access_log_writer,
    })
}

/// Installs the Prometheus recorder once per process (the `metrics`
/// recorder is global; several proxies in one test process share it).
fn install_metrics(static_cfg: &StaticConfig) -> Option<MetricsHandle> {
    static INSTALLED: OnceLock<Option<MetricsHandle>> = OnceLock::new();
    let prom = static_cfg.metrics.prometheus.as_ref()?;
    INSTALLED
        .get_or_init(|| {
            let opts = observe::MetricsOptions {
                buckets: prom.buckets.clone(),
                ..observe::MetricsOptions::default()
            };
            match observe::install(&opts) {
                Ok((handle, upkeep)) => {
                    // The upkeep thread lives as long as the process.
                    std::mem::forget(upkeep);
                    Some(handle)
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot install the metrics recorder");
                    None
                }
            }
        })
        .clone()
}

/// Starts the router-decision p99 watch (decision 3) once per process: a
/// warning when the p99 of the last 10 s exceeds 50 µs.
fn start_decision_watch() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        match observe::spawn_watcher(
            Arc::clone(observe::DecisionStats::global()),
            Duration::from_secs(10),
            Duration::from_micros(50),
        ) {
            Ok(w) => std::mem::forget(w),
            Err(e) => tracing::warn!(error = %e, "cannot start the router decision watch"),
        }
    });
}

fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

fn worker_thread(
    shared: Arc<Shared>,
    listeners: Vec<WorkerListener>,
    shutdown: watch::Receiver<Shutdown>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot build worker runtime");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let sweeper = tokio::task::spawn_local(crate::upstream::pool::sweep_loop());
        listener::run_worker(shared, listeners, shutdown).await;
        sweeper.abort();
        // The pools are the thread's, not the runtime's: their idle
        // connections close now, while the runtime they registered with
        // is still there.
        crate::upstream::pool::close_idle();
    });
}

/// This machine's host name, for `X-Forwarded-Server`.
fn server_name() -> HeaderValue {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned());
    HeaderValue::from_str(&name).unwrap_or_else(|_| HeaderValue::from_static("localhost"))
}

impl Running {
    /// The bound address of entrypoint `name`.
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.addrs.get(name).copied()
    }

    /// The configuration control plane (reloads, current generation).
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// Stops accepting and lets in-flight requests finish within `deadline`
    /// (default: the entrypoints' `graceTimeOut`), then returns once every
    /// worker has stopped.
    pub fn shutdown(self, deadline: Option<Duration>) {
        // Traefik's requestAcceptGraceTimeout: keep accepting a little
        // while so a load balancer in front notices we are going.
        if deadline.is_none() && !self.accept_grace.is_zero() {
            std::thread::sleep(self.accept_grace);
        }
        let deadline = deadline.unwrap_or(self.grace);
        let _ = self.shutdown.send(Shutdown::Drain { deadline });
        for h in self.workers {
            let _ = h.join();
        }
        self.control.stop();
        if let Some(w) = self.access_log {
            w.shutdown();
        }
    }
}
