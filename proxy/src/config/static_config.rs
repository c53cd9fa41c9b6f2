//! The static configuration (Traefik's `traefik.yml` / `traefik.toml`):
//! entrypoints, the file provider, logs, access log, metrics and ping.
//!
//! Decodes the [`Node`] tree into typed, validated structs with Traefik's
//! defaults, including the implicit `http` and `traefik` entrypoints.
//! Nothing here binds sockets or opens files other than the one it reads.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::decode::{
    Ctx, Field, Spec, Support, boolean, child, duration, float, named_entries, section_enabled,
    string, string_list, suggest, table, uint,
};
use super::error::{ConfigErrors, ConfigWarning, Origin, sort_warnings};
use super::net::parse_entrypoint_address;
use super::node::{Format, Node, Pos, parse};
use super::read_file;
use crate::ipnet::IpNet;

/// Traefik's name for its internal entrypoint (API, ping, metrics).
pub const INTERNAL_ENTRY_POINT: &str = "traefik";

/// The validated static configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticConfig {
    /// Entrypoints sorted by name, implicit ones included.
    pub entry_points: Vec<EntryPointConfig>,
    /// Where the dynamic configuration comes from.
    pub providers: ProvidersConfig,
    /// Traefik's own log.
    pub log: LogConfig,
    /// The access log; `None` when off (Traefik's default).
    pub access_log: Option<AccessLogConfig>,
    /// Metrics exporters.
    pub metrics: MetricsConfig,
    /// The ping health endpoint; `None` when off.
    pub ping: Option<PingConfig>,
}

impl StaticConfig {
    /// The entrypoint called `name`.
    pub fn entry_point(&self, name: &str) -> Option<&EntryPointConfig> {
        self.entry_points.iter().find(|e| e.name == name)
    }

    /// Names of all entrypoints, as [`super::load_dynamic`] wants them.
    pub fn entry_point_names(&self) -> Vec<String> {
        self.entry_points.iter().map(|e| e.name.clone()).collect()
    }

    /// Entrypoints a router without `entryPoints` attaches to: those marked
    /// `asDefault`, or every entrypoint when none is (Traefik v3).
    pub fn default_entry_points(&self) -> Vec<String> {
        let marked: Vec<String> = self
            .entry_points
            .iter()
            .filter(|e| e.as_default)
            .map(|e| e.name.clone())
            .collect();
        if marked.is_empty() {
            self.entry_point_names()
        } else {
            marked
        }
    }
}

/// One listening entrypoint.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryPointConfig {
    /// Its name (case-sensitive), referenced by routers.
    pub name: String,
    /// The address as written, e.g. `:80`.
    pub address: String,
    /// The resolved socket address (`:80` is `0.0.0.0:80`).
    pub addr: SocketAddr,
    /// `asDefault`: routers without `entryPoints` attach here.
    pub as_default: bool,
    /// Connection timeouts and lifecycle.
    pub transport: EntryPointTransport,
    /// Which `X-Forwarded-*` headers are trusted.
    pub forwarded_headers: ForwardedHeadersConfig,
    /// Where it was defined (line 0 for an implicit entrypoint).
    pub origin: Origin,
}

impl EntryPointConfig {
    /// An entrypoint Traefik creates itself, on every interface at `port`.
    fn implicit(name: &str, port: u16, file: &Path) -> Self {
        EntryPointConfig {
            name: name.to_owned(),
            address: format!(":{port}"),
            addr: SocketAddr::from(([0, 0, 0, 0], port)),
            as_default: false,
            transport: EntryPointTransport::default(),
            forwarded_headers: ForwardedHeadersConfig::default(),
            origin: Origin {
                file: file.to_path_buf(),
                line: 0,
                column: 0,
            },
        }
    }
}

/// `entryPoints.<name>.transport`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntryPointTransport {
    /// Read/write/idle timeouts.
    pub responding_timeouts: RespondingTimeouts,
    /// Graceful shutdown timings.
    pub life_cycle: LifeCycle,
    /// Close a keep-alive connection after this many requests; 0 = never.
    pub keep_alive_max_requests: u64,
    /// Close a keep-alive connection after this long; 0 = never.
    pub keep_alive_max_time: Duration,
}

/// `transport.respondingTimeouts`; zero means no timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RespondingTimeouts {
    /// Reading the whole request, headers and body (default 60s).
    pub read_timeout: Duration,
    /// Writing the response (default 0: none).
    pub write_timeout: Duration,
    /// Keep-alive idle time between requests (default 180s).
    pub idle_timeout: Duration,
}

impl Default for RespondingTimeouts {
    fn default() -> Self {
        RespondingTimeouts {
            read_timeout: Duration::from_secs(60),
            write_timeout: Duration::ZERO,
            idle_timeout: Duration::from_secs(180),
        }
    }
}

/// `transport.lifeCycle`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifeCycle {
    /// Keep accepting requests this long after a stop signal (default 0).
    pub request_accept_grace_timeout: Duration,
    /// Time given to in-flight requests to finish (default 10s).
    pub grace_time_out: Duration,
}

impl Default for LifeCycle {
    fn default() -> Self {
        LifeCycle {
            request_accept_grace_timeout: Duration::ZERO,
            grace_time_out: Duration::from_secs(10),
        }
    }
}

/// `entryPoints.<name>.forwardedHeaders`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ForwardedHeadersConfig {
    /// Clients whose `X-Forwarded-*` headers are kept.
    pub trusted_ips: Vec<IpNet>,
    /// Trust every client's `X-Forwarded-*` headers.
    pub insecure: bool,
}

/// `providers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvidersConfig {
    /// The file provider, if configured.
    pub file: Option<FileProviderConfig>,
    /// Minimum time between two applied configuration changes (default 2s).
    pub providers_throttle_duration: Duration,
}

/// `providers.file`: exactly one of `filename` or `directory` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProviderConfig {
    /// One dynamic file (relative to the working directory).
    pub filename: Option<PathBuf>,
    /// A directory of `.yml`/`.yaml`/`.toml` files, read recursively.
    pub directory: Option<PathBuf>,
    /// Reload on change (default true).
    pub watch: bool,
}

/// `log.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// TRACE
    Trace,
    /// DEBUG
    Debug,
    /// INFO
    Info,
    /// WARN
    Warn,
    /// ERROR (Traefik's default)
    Error,
    /// FATAL
    Fatal,
    /// PANIC
    Panic,
}

impl LogLevel {
    /// The level's name as Traefik writes it (`ERROR`, `INFO`...).
    pub const fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
            LogLevel::Fatal => "FATAL",
            LogLevel::Panic => "PANIC",
        }
    }
}

/// `log.format` / `accessLog.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Traefik's text format (CLF for the access log); the default.
    Common,
    /// One JSON object per line.
    Json,
}

/// `log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Minimum level (default ERROR).
    pub level: LogLevel,
    /// Log file; `None` = stdout.
    pub file_path: Option<PathBuf>,
    /// Line format (default common).
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: LogLevel::Error,
            file_path: None,
            format: LogFormat::Common,
        }
    }
}

/// `accessLog`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogConfig {
    /// Access log file; `None` = stdout.
    pub file_path: Option<PathBuf>,
    /// Line format (default common).
    pub format: LogFormat,
    /// Lines buffered before writing (default 0).
    pub buffering_size: u64,
}

/// `metrics`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricsConfig {
    /// The Prometheus exporter, if enabled.
    pub prometheus: Option<PrometheusConfig>,
}

/// `metrics.prometheus`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusConfig {
    /// Histogram buckets in seconds (default 0.1, 0.3, 1.2, 5.0).
    pub buckets: Vec<f64>,
    /// Label metrics with the entrypoint (default true).
    pub add_entry_points_labels: bool,
    /// Label metrics with the router (default false).
    pub add_routers_labels: bool,
    /// Label metrics with the service (default true).
    pub add_services_labels: bool,
    /// Entrypoint serving `/metrics` (default `traefik`).
    pub entry_point: String,
    /// Don't add the `/metrics` router; the user routes it (default false).
    pub manual_routing: bool,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            buckets: vec![0.1, 0.3, 1.2, 5.0],
            add_entry_points_labels: true,
            add_routers_labels: false,
            add_services_labels: true,
            entry_point: INTERNAL_ENTRY_POINT.to_owned(),
            manual_routing: false,
        }
    }
}

/// `ping`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingConfig {
    /// Entrypoint serving `/ping` (default `traefik`).
    pub entry_point: String,
    /// Don't add the `/ping` router; the user routes it (default false).
    pub manual_routing: bool,
    /// Status answered while shutting down (default 503).
    pub terminating_status_code: u16,
}

impl Default for PingConfig {
    fn default() -> Self {
        PingConfig {
            entry_point: INTERNAL_ENTRY_POINT.to_owned(),
            manual_routing: false,
            terminating_status_code: 503,
        }
    }
}

// === specs ===

const DYNAMIC_HERE: &str = "dynamic configuration belongs in the file given to providers.file";

const TOP: Spec = &[
    ("global", Support::Silent),
    ("entryPoints", Support::Yes),
    ("providers", Support::Yes),
    ("log", Support::Yes),
    ("accessLog", Support::Yes),
    ("metrics", Support::Yes),
    ("ping", Support::Yes),
    (
        "api",
        Support::Warn("no API or dashboard; @internal services are refused"),
    ),
    ("core", Support::Yes),
    (
        "serversTransport",
        Support::Warn("defaults of dynamic serversTransports apply"),
    ),
    ("tcpServersTransport", Support::Warn("no TCP routing")),
    ("tracing", Support::Warn("")),
    ("hostResolver", Support::Warn("")),
    (
        "certificatesResolvers",
        Support::Warn("no ACME; no TLS yet"),
    ),
    ("experimental", Support::Warn("")),
    ("pilot", Support::Warn("Traefik Pilot no longer exists")),
    ("spiffe", Support::Warn("")),
    ("ocsp", Support::Warn("no TLS yet")),
    ("http", Support::Error(DYNAMIC_HERE)),
    ("tcp", Support::Error(DYNAMIC_HERE)),
    ("udp", Support::Error(DYNAMIC_HERE)),
    ("tls", Support::Error(DYNAMIC_HERE)),
];

const CORE: Spec = &[("defaultRuleSyntax", Support::Yes)];

const ENTRY_POINT: Spec = &[
    ("address", Support::Yes),
    ("asDefault", Support::Yes),
    ("transport", Support::Yes),
    ("forwardedHeaders", Support::Yes),
    (
        "proxyProtocol",
        Support::Error("it changes which address is the client's"),
    ),
    ("http", Support::Yes),
    ("http2", Support::Warn("HTTP/2 server defaults apply")),
    ("http3", Support::Warn("no HTTP/3")),
    ("udp", Support::Warn("no UDP")),
    ("observability", Support::Warn("")),
    ("reusePort", Support::Warn("")),
    ("allowACMEByPass", Support::Warn("no ACME")),
];

const EP_HTTP: Spec = &[
    (
        "redirections",
        Support::Error("ignoring it would serve requests that should be redirected"),
    ),
    (
        "middlewares",
        Support::Error("no middlewares yet; ignoring them would skip them"),
    ),
    (
        "tls",
        Support::Error("no TLS yet; ignoring it would serve plain HTTP"),
    ),
    ("encodeQuerySemicolons", Support::Warn("")),
    ("sanitizePath", Support::Warn("")),
    ("maxHeaderBytes", Support::Warn("")),
];

const TRANSPORT: Spec = &[
    ("respondingTimeouts", Support::Yes),
    ("lifeCycle", Support::Yes),
    ("keepAliveMaxRequests", Support::Yes),
    ("keepAliveMaxTime", Support::Yes),
];

const RESPONDING: Spec = &[
    ("readTimeout", Support::Yes),
    ("writeTimeout", Support::Yes),
    ("idleTimeout", Support::Yes),
];

const LIFECYCLE: Spec = &[
    ("requestAcceptGraceTimeout", Support::Yes),
    ("graceTimeOut", Support::Yes),
];

const FORWARDED: Spec = &[
    ("trustedIPs", Support::Yes),
    ("insecure", Support::Yes),
    ("connection", Support::Warn("")),
];

const OTHER_PROVIDER: Support = Support::Warn("only the file provider is supported");

const PROVIDERS: Spec = &[
    ("providersThrottleDuration", Support::Yes),
    ("file", Support::Yes),
    ("docker", OTHER_PROVIDER),
    ("swarm", OTHER_PROVIDER),
    ("kubernetesCRD", OTHER_PROVIDER),
    ("kubernetesIngress", OTHER_PROVIDER),
    ("kubernetesIngressNGINX", OTHER_PROVIDER),
    ("kubernetesGateway", OTHER_PROVIDER),
    ("knative", OTHER_PROVIDER),
    ("consulCatalog", OTHER_PROVIDER),
    ("nomad", OTHER_PROVIDER),
    ("ecs", OTHER_PROVIDER),
    ("consul", OTHER_PROVIDER),
    ("etcd", OTHER_PROVIDER),
    ("zooKeeper", OTHER_PROVIDER),
    ("redis", OTHER_PROVIDER),
    ("http", OTHER_PROVIDER),
    ("rest", OTHER_PROVIDER),
    ("plugin", OTHER_PROVIDER),
];

const FILE_PROVIDER: Spec = &[
    ("filename", Support::Yes),
    ("directory", Support::Yes),
    ("watch", Support::Yes),
    (
        "debugLogGeneratedTemplate",
        Support::Warn("no Go templates"),
    ),
];

const LOG: Spec = &[
    ("level", Support::Yes),
    ("filePath", Support::Yes),
    ("format", Support::Yes),
    ("noColor", Support::Silent),
    ("maxSize", Support::Warn("no log rotation")),
    ("maxAge", Support::Warn("no log rotation")),
    ("maxBackups", Support::Warn("no log rotation")),
    ("compress", Support::Warn("no log rotation")),
];

const ACCESS_LOG: Spec = &[
    ("filePath", Support::Yes),
    ("format", Support::Yes),
    ("bufferingSize", Support::Yes),
    ("filters", Support::Warn("every request is logged")),
    ("fields", Support::Warn("default fields are logged")),
    ("addInternals", Support::Warn("")),
];

const METRICS: Spec = &[
    ("prometheus", Support::Yes),
    ("addInternals", Support::Warn("")),
    ("datadog", Support::Warn("only prometheus is supported")),
    ("statsD", Support::Warn("only prometheus is supported")),
    ("influxDB2", Support::Warn("only prometheus is supported")),
    ("otlp", Support::Warn("only prometheus is supported")),
];

const PROMETHEUS: Spec = &[
    ("buckets", Support::Yes),
    ("addEntryPointsLabels", Support::Yes),
    ("addRoutersLabels", Support::Yes),
    ("addServicesLabels", Support::Yes),
    ("entryPoint", Support::Yes),
    ("manualRouting", Support::Yes),
    ("headerLabels", Support::Warn("")),
];

const PING: Spec = &[
    ("entryPoint", Support::Yes),
    ("manualRouting", Support::Yes),
    ("terminatingStatusCode", Support::Yes),
];

const API: Spec = &[
    ("insecure", Support::Yes),
    ("dashboard", Support::Yes),
    ("debug", Support::Yes),
    ("basePath", Support::Yes),
    ("disableDashboardAd", Support::Yes),
];

// === loading ===

/// Reads and validates a static configuration file (format by extension).
/// Returns every error found, or the model and the warnings.
pub fn load_static(path: &Path) -> Result<(StaticConfig, Vec<ConfigWarning>), ConfigErrors> {
    let (text, format) = read_file(path)?;
    parse_static(&text, format, path)
}

/// Validates static configuration text; `file` is only used in messages.
pub fn parse_static(
    text: &str,
    format: Format,
    file: &Path,
) -> Result<(StaticConfig, Vec<ConfigWarning>), ConfigErrors> {
    let root = parse(text, format, file).map_err(|e| ConfigErrors(vec![e]))?;
    let mut ctx = Ctx::new(file);
    let config = decode_static(&mut ctx, &root);
    if ctx.errors.is_empty() {
        sort_warnings(&mut ctx.warnings);
        Ok((config, ctx.warnings))
    } else {
        Err(ConfigErrors::sorted(ctx.errors))
    }
}

fn decode_static(ctx: &mut Ctx, root: &Node) -> StaticConfig {
    let mut config = StaticConfig {
        entry_points: Vec::new(),
        providers: ProvidersConfig {
            file: None,
            providers_throttle_duration: Duration::from_secs(2),
        },
        log: LogConfig::default(),
        access_log: None,
        metrics: MetricsConfig::default(),
        ping: None,
    };
    let Some(top) = table(ctx, "", root, TOP) else {
        return config;
    };
    let mut ep_fields: Vec<(String, Pos)> = Vec::new();
    if let Some(f) = top.get("entryPoints") {
        for (key, node) in named_entries(ctx, &f.path, &f.node).unwrap_or_default() {
            ep_fields.push((key.name.clone(), key.pos));
            let path = child(&f.path, &key.name);
            if let Some(ep) = decode_entry_point(ctx, &path, &key.name, key.pos, &node) {
                config.entry_points.push(ep);
            }
        }
    }
    if let Some(f) = top.get("core")
        && let Some(core) = table(ctx, &f.path, &f.node, CORE)
        && let Some(f) = core.get("defaultRuleSyntax")
        && let Some(s) = string(ctx, f)
        && s != "v3"
    {
        let msg = if s == "v2" {
            "rule syntax \"v2\" is not supported yet (only \"v3\")".to_owned()
        } else {
            format!("unknown rule syntax {s:?} (expected \"v3\")")
        };
        ctx.error(&f.path, f.node.pos, msg);
    }
    if let Some(f) = top.get("providers") {
        decode_providers(ctx, f, &mut config.providers);
    }
    if let Some(f) = top.get("log") {
        decode_log(ctx, f, &mut config.log);
    }
    if let Some(f) = top.get("accessLog") {
        config.access_log = decode_access_log(ctx, f);
    }
    let mut prometheus_pos = Pos::default();
    if let Some(f) = top.get("metrics")
        && let Some(metrics) = table(ctx, &f.path, &f.node, METRICS)
        && let Some(f) = metrics.get("prometheus")
    {
        prometheus_pos = f.key.pos;
        config.metrics.prometheus = decode_prometheus(ctx, f);
    }
    let mut ping_pos = Pos::default();
    if let Some(f) = top.get("ping") {
        ping_pos = f.key.pos;
        config.ping = decode_ping(ctx, f);
    }
    let api_insecure = top.get_any("api").is_some_and(|f| api_insecure(ctx, f));

    // Traefik's SetEffectiveConfiguration: a default `http` entrypoint when
    // none is defined, and the internal one when something needs it.
    let file = ctx.file.clone();
    if ep_fields.is_empty() {
        config
            .entry_points
            .push(EntryPointConfig::implicit("http", 80, &file));
    }
    let wants_internal = api_insecure
        || config
            .ping
            .as_ref()
            .is_some_and(|p| !p.manual_routing && p.entry_point == INTERNAL_ENTRY_POINT)
        || config
            .metrics
            .prometheus
            .as_ref()
            .is_some_and(|p| !p.manual_routing && p.entry_point == INTERNAL_ENTRY_POINT);
    if wants_internal && !ep_fields.iter().any(|(n, _)| n == INTERNAL_ENTRY_POINT) {
        config.entry_points.push(EntryPointConfig::implicit(
            INTERNAL_ENTRY_POINT,
            8080,
            &file,
        ));
    }
    config.entry_points.sort_by(|a, b| a.name.cmp(&b.name));

    // The entrypoints ping and metrics serve on must exist.
    let names: Vec<String> = config.entry_point_names();
    let check = |ctx: &mut Ctx, what: &str, ep: &str, manual: bool, pos: Pos| {
        if !manual && !names.iter().any(|n| n == ep) {
            let hint = suggest(ep, names.iter().map(String::as_str));
            ctx.error(what, pos, format!("unknown entrypoint {ep:?}{hint}"));
        }
    };
    if let Some(p) = &config.ping {
        check(
            ctx,
            "ping.entryPoint",
            &p.entry_point,
            p.manual_routing,
            ping_pos,
        );
    }
    if let Some(p) = &config.metrics.prometheus {
        check(
            ctx,
            "metrics.prometheus.entryPoint",
            &p.entry_point,
            p.manual_routing,
            prometheus_pos,
        );
    }
    // Two entrypoints on one socket would fail at bind time; say it now.
    for (i, a) in config.entry_points.iter().enumerate() {
        for b in &config.entry_points[i + 1..] {
            if a.addr == b.addr && a.addr.port() != 0 {
                let pos = Pos {
                    line: b.origin.line,
                    column: b.origin.column,
                };
                ctx.error(
                    &format!("entryPoints.{}.address", b.name),
                    pos,
                    format!(
                        "address {} is already used by entrypoint {:?}",
                        b.addr, a.name
                    ),
                );
            }
        }
    }
    config
}

fn decode_entry_point(
    ctx: &mut Ctx,
    path: &str,
    name: &str,
    pos: Pos,
    node: &Node,
) -> Option<EntryPointConfig> {
    let t = table(ctx, path, node, ENTRY_POINT)?;
    let mut ep = EntryPointConfig::implicit(name, 80, &ctx.file.clone());
    ep.origin = ctx.origin(pos);
    let mut ok = true;
    match t.get("address") {
        Some(f) => match string(ctx, f) {
            Some(address) => match parse_entrypoint_address(address.trim()) {
                Ok(addr) => {
                    ep.addr = addr;
                    ep.address = address;
                }
                Err(e) => {
                    ctx.error(&f.path, f.node.pos, e);
                    ok = false;
                }
            },
            None => ok = false,
        },
        None => {
            ctx.error(path, pos, "entrypoint has no address");
            ok = false;
        }
    }
    if let Some(f) = t.get("asDefault") {
        ep.as_default = boolean(ctx, f).unwrap_or(false);
    }
    if let Some(f) = t.get("http") {
        // Every supported key of `http` is refused or warned in the spec.
        let _ = table(ctx, &f.path, &f.node, EP_HTTP);
    }
    if let Some(f) = t.get("transport")
        && let Some(tt) = table(ctx, &f.path, &f.node, TRANSPORT)
    {
        let tr = &mut ep.transport;
        if let Some(f) = tt.get("respondingTimeouts")
            && let Some(rt) = table(ctx, &f.path, &f.node, RESPONDING)
        {
            set_duration(
                ctx,
                &rt,
                "readTimeout",
                &mut tr.responding_timeouts.read_timeout,
            );
            set_duration(
                ctx,
                &rt,
                "writeTimeout",
                &mut tr.responding_timeouts.write_timeout,
            );
            set_duration(
                ctx,
                &rt,
                "idleTimeout",
                &mut tr.responding_timeouts.idle_timeout,
            );
        }
        if let Some(f) = tt.get("lifeCycle")
            && let Some(lc) = table(ctx, &f.path, &f.node, LIFECYCLE)
        {
            set_duration(
                ctx,
                &lc,
                "requestAcceptGraceTimeout",
                &mut tr.life_cycle.request_accept_grace_timeout,
            );
            set_duration(ctx, &lc, "graceTimeOut", &mut tr.life_cycle.grace_time_out);
        }
        if let Some(f) = tt.get("keepAliveMaxRequests") {
            tr.keep_alive_max_requests = uint(ctx, f, i64::MAX as u64).unwrap_or(0);
        }
        set_duration(ctx, &tt, "keepAliveMaxTime", &mut tr.keep_alive_max_time);
    }
    if let Some(f) = t.get("forwardedHeaders")
        && let Some(fh) = table(ctx, &f.path, &f.node, FORWARDED)
    {
        if let Some(f) = fh.get("insecure") {
            ep.forwarded_headers.insecure = boolean(ctx, f).unwrap_or(false);
        }
        if let Some(f) = fh.get("trustedIPs") {
            for (ip, ip_pos) in string_list(ctx, f).unwrap_or_default() {
                match ip.parse::<IpNet>() {
                    Ok(net) => ep.forwarded_headers.trusted_ips.push(net),
                    Err(e) => ctx.error(&f.path, ip_pos, e),
                }
            }
        }
    }
    ok.then_some(ep)
}

/// Sets `target` from the duration at `key` when present and valid.
pub(crate) fn set_duration(
    ctx: &mut Ctx,
    t: &super::decode::Table<'_>,
    key: &str,
    target: &mut Duration,
) {
    if let Some(f) = t.get(key)
        && let Some(d) = duration(ctx, f)
    {
        *target = d;
    }
}

fn set_bool(ctx: &mut Ctx, t: &super::decode::Table<'_>, key: &str, target: &mut bool) {
    if let Some(f) = t.get(key)
        && let Some(b) = boolean(ctx, f)
    {
        *target = b;
    }
}

fn decode_providers(ctx: &mut Ctx, f: &Field<'_>, out: &mut ProvidersConfig) {
    let Some(t) = table(ctx, &f.path, &f.node, PROVIDERS) else {
        return;
    };
    set_duration(
        ctx,
        &t,
        "providersThrottleDuration",
        &mut out.providers_throttle_duration,
    );
    let Some(f) = t.get("file") else {
        return;
    };
    let Some(ft) = table(ctx, &f.path, &f.node, FILE_PROVIDER) else {
        return;
    };
    let path_of = |ctx: &mut Ctx, key: &str| {
        ft.get(key)
            .and_then(|f| string(ctx, f))
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    };
    let filename = path_of(ctx, "filename");
    let directory = path_of(ctx, "directory");
    let mut watch = true;
    set_bool(ctx, &ft, "watch", &mut watch);
    match (&filename, &directory) {
        (Some(_), Some(_)) => ctx.error(
            &f.path,
            f.key.pos,
            "filename and directory are both set; use only one",
        ),
        (None, None) => ctx.error(
            &f.path,
            f.key.pos,
            "neither filename nor directory is defined",
        ),
        _ => {
            out.file = Some(FileProviderConfig {
                filename,
                directory,
                watch,
            });
        }
    }
}

fn log_format(ctx: &mut Ctx, t: &super::decode::Table<'_>) -> LogFormat {
    let Some(f) = t.get("format") else {
        return LogFormat::Common;
    };
    match string(ctx, f).map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("common" | "") => LogFormat::Common,
        Some("json") => LogFormat::Json,
        Some(other) => {
            ctx.error(
                &f.path,
                f.node.pos,
                format!("unknown format {other:?} (expected \"common\" or \"json\")"),
            );
            LogFormat::Common
        }
        None => LogFormat::Common,
    }
}

fn file_path(ctx: &mut Ctx, t: &super::decode::Table<'_>) -> Option<PathBuf> {
    t.get("filePath")
        .and_then(|f| string(ctx, f))
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

fn decode_log(ctx: &mut Ctx, f: &Field<'_>, out: &mut LogConfig) {
    let Some(t) = table(ctx, &f.path, &f.node, LOG) else {
        return;
    };
    if let Some(f) = t.get("level")
        && let Some(level) = string(ctx, f)
    {
        out.level = match level.to_ascii_uppercase().as_str() {
            "TRACE" => LogLevel::Trace,
            "DEBUG" => LogLevel::Debug,
            "INFO" => LogLevel::Info,
            "WARN" | "WARNING" => LogLevel::Warn,
            "ERROR" | "" => LogLevel::Error,
            "FATAL" => LogLevel::Fatal,
            "PANIC" => LogLevel::Panic,
            _ => {
                ctx.error(
                    &f.path,
                    f.node.pos,
                    format!(
                        "unknown log level {level:?} (expected TRACE, DEBUG, INFO, WARN, ERROR, FATAL or PANIC)"
                    ),
                );
                LogLevel::Error
            }
        };
    }
    out.file_path = file_path(ctx, &t);
    out.format = log_format(ctx, &t);
}

fn decode_access_log(ctx: &mut Ctx, f: &Field<'_>) -> Option<AccessLogConfig> {
    let (enabled, node) = section_enabled(ctx, f);
    if !enabled {
        return None;
    }
    let mut out = AccessLogConfig {
        file_path: None,
        format: LogFormat::Common,
        buffering_size: 0,
    };
    if let Some(node) = node
        && let Some(t) = table(ctx, &f.path, node, ACCESS_LOG)
    {
        out.file_path = file_path(ctx, &t);
        out.format = log_format(ctx, &t);
        if let Some(f) = t.get("bufferingSize") {
            out.buffering_size = uint(ctx, f, i64::MAX as u64).unwrap_or(0);
        }
    }
    Some(out)
}

fn decode_prometheus(ctx: &mut Ctx, f: &Field<'_>) -> Option<PrometheusConfig> {
    let (enabled, node) = section_enabled(ctx, f);
    if !enabled {
        return None;
    }
    let mut out = PrometheusConfig::default();
    if let Some(node) = node
        && let Some(t) = table(ctx, &f.path, node, PROMETHEUS)
    {
        if let Some(f) = t.get("buckets") {
            let mut buckets = Vec::new();
            match &f.node.value {
                super::node::Value::Seq(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let field = Field {
                            key: f.key,
                            node: std::borrow::Cow::Borrowed(item),
                            path: format!("{}[{i}]", f.path),
                        };
                        if let Some(b) = float(ctx, &field) {
                            buckets.push(b);
                        }
                    }
                }
                _ => {
                    for (s, pos) in string_list(ctx, f).unwrap_or_default() {
                        match s.parse::<f64>() {
                            Ok(b) if b.is_finite() => buckets.push(b),
                            _ => ctx.error(&f.path, pos, format!("expected a number, found {s:?}")),
                        }
                    }
                }
            }
            if buckets.windows(2).any(|w| w[0] >= w[1]) {
                ctx.error(&f.path, f.node.pos, "buckets must be in increasing order");
            }
            out.buckets = buckets;
        }
        set_bool(
            ctx,
            &t,
            "addEntryPointsLabels",
            &mut out.add_entry_points_labels,
        );
        set_bool(ctx, &t, "addRoutersLabels", &mut out.add_routers_labels);
        set_bool(ctx, &t, "addServicesLabels", &mut out.add_services_labels);
        set_bool(ctx, &t, "manualRouting", &mut out.manual_routing);
        if let Some(f) = t.get("entryPoint")
            && let Some(s) = string(ctx, f)
            && !s.is_empty()
        {
            out.entry_point = s;
        }
    }
    Some(out)
}

fn decode_ping(ctx: &mut Ctx, f: &Field<'_>) -> Option<PingConfig> {
    let (enabled, node) = section_enabled(ctx, f);
    if !enabled {
        return None;
    }
    let mut out = PingConfig::default();
    if let Some(node) = node
        && let Some(t) = table(ctx, &f.path, node, PING)
    {
        set_bool(ctx, &t, "manualRouting", &mut out.manual_routing);
        if let Some(f) = t.get("entryPoint")
            && let Some(s) = string(ctx, f)
            && !s.is_empty()
        {
            out.entry_point = s;
        }
        if let Some(f) = t.get("terminatingStatusCode")
            && let Some(code) = uint(ctx, f, 599)
        {
            if code < 100 {
                ctx.error(
                    &f.path,
                    f.node.pos,
                    format!("{code} is not an HTTP status code"),
                );
            } else {
                out.terminating_status_code = code as u16;
            }
        }
    }
    Some(out)
}

/// `api.insecure`, read only to create the `traefik` entrypoint as Traefik
/// does; the rest of `api` is ignored (with the section's warning).
fn api_insecure(ctx: &mut Ctx, f: &Field<'_>) -> bool {
    let (enabled, node) = section_enabled(ctx, f);
    if !enabled {
        return false;
    }
    let Some(node) = node else { return false };
    // Unknown keys under an ignored section are still worth an error.
    table(ctx, &f.path, node, API)
        .and_then(|t| t.get("insecure").and_then(|f| boolean(ctx, f)))
        .unwrap_or(false)
}
