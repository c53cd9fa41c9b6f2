//! The static configuration (Traefik's `traefik.yml` / `traefik.toml`):
//! entrypoints, the file provider, logs, access log, metrics, ping and api.
//!
//! Each section has its own file with its derived file schema and checks
//! (`entry_points`, `providers`, `observability`, `api`); this file holds the top
//! of the schema and what spans sections: Traefik's implicit `http` and
//! `traefik` entrypoints, and the entrypoints ping and metrics name.
//! Nothing here binds sockets or opens files other than the one it reads.

mod api;
mod entry_points;
mod observability;
mod providers;

use std::path::Path;

use serde::Deserialize;

use crate::routing::RuleSyntax;

use super::decode::{
    At, Ctx, Ignored, Named, Register, Schema, Spec, Support, Switch, decode, schema, suggest,
};
use super::error::{ConfigErrors, ConfigWarning, sort_warnings};
use super::node::{Format, Pos, parse};
use super::read_file;

pub use api::ApiConfig;
pub use entry_points::{
    DEFAULT_MAX_HEADER_BYTES, EntryPointConfig, EntryPointMiddleware, EntryPointTls,
    EntryPointTransport, ForwardedHeadersConfig, Http2Config, LifeCycle, ProxyProtocolConfig,
    Redirection, RespondingTimeouts, UnderscoreHeaders,
};
pub use observability::{
    AccessLogConfig, LogConfig, LogFormat, LogLevel, MetricsConfig, PingConfig, PrometheusConfig,
};
pub use providers::{
    EtcdProviderConfig, FileProviderConfig, HttpProviderConfig, ProvidersConfig,
    RedisProviderConfig,
};

use api::ApiFile;
use entry_points::EntryPointFile;
use observability::{AccessLogFile, LogFile, MetricsFile, PingFile};
use providers::ProvidersFile;

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
    /// The API and dashboard; `None` when off.
    pub api: Option<ApiConfig>,
    /// `core.defaultRuleSyntax`: the syntax of routers without
    /// `ruleSyntax` (v3 unless set).
    pub default_rule_syntax: RuleSyntax,
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

    /// The internal services (`<name>@internal`) this configuration
    /// provides, as Traefik's internal provider defines them: `noop`
    /// always, `api` and `dashboard` with `api`, `ping`, `prometheus`.
    pub fn internal_services(&self) -> Vec<&'static str> {
        let mut out = vec!["noop"];
        if let Some(api) = &self.api {
            out.push("api");
            if api.dashboard {
                out.push("dashboard");
            }
        }
        if self.ping.is_some() {
            out.push("ping");
        }
        if self.metrics.prometheus.is_some() {
            out.push("prometheus");
        }
        out
    }

    /// Entrypoints a router without `entryPoints` attaches to: those marked
    /// `asDefault`, or every entrypoint when none is, never the internal
    /// `traefik` one (Traefik v3's `getDefaultsEntrypoints`).
    pub fn default_entry_points(&self) -> Vec<String> {
        let any_marked = self.entry_points.iter().any(|e| e.as_default);
        self.entry_points
            .iter()
            .filter(|e| (e.as_default || !any_marked) && e.name != INTERNAL_ENTRY_POINT)
            .map(|e| e.name.clone())
            .collect()
    }
}

// === file schema ===

/// A static configuration file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct StaticFile {
    /// Silent (see the table); a field only so that a did-you-mean meets
    /// it first, as Traefik's documentation lists it.
    #[serde(rename = "global")]
    _global: Option<Ignored>,
    entry_points: Named<EntryPointFile>,
    providers: ProvidersFile,
    log: LogFile,
    access_log: Option<Switch<AccessLogFile>>,
    metrics: MetricsFile,
    ping: Option<At<Switch<PingFile>>>,
    api: Option<Switch<ApiFile>>,
    core: CoreFile,
}

const DYNAMIC_HERE: &str = "dynamic configuration belongs in the file given to providers.file";

impl Schema for StaticFile {
    const KEYS: Spec = &[
        ("global", Support::Silent),
        (
            "serversTransport",
            Support::Warn("defaults of dynamic serversTransports apply"),
        ),
        ("tcpServersTransport", Support::Warn("no TCP routing")),
        ("tracing", Support::Warn("")),
        ("hostResolver", Support::Warn("")),
        ("certificatesResolvers", Support::Warn("no ACME")),
        ("experimental", Support::Warn("")),
        ("pilot", Support::Warn("Traefik Pilot no longer exists")),
        ("spiffe", Support::Warn("")),
        ("ocsp", Support::Warn("no OCSP stapling")),
        ("http", Support::Error(DYNAMIC_HERE)),
        ("tcp", Support::Error(DYNAMIC_HERE)),
        ("udp", Support::Error(DYNAMIC_HERE)),
        ("tls", Support::Error(DYNAMIC_HERE)),
    ];
}

/// `core`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct CoreFile {
    default_rule_syntax: Option<At<String>>,
}

/// Every key table of the static schema.
const SCHEMAS: &[&[Register]] = &[
    &[schema::<StaticFile>, schema::<ApiFile>],
    entry_points::SCHEMAS,
    providers::SCHEMAS,
    observability::SCHEMAS,
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
    let mut ctx = Ctx::new(file, SCHEMAS);
    let config = decode::<StaticFile>(&mut ctx, &root).map(|f| check(&mut ctx, f));
    if let Some(c) = &config
        && names_itself(c, file)
    {
        // Static and dynamic in one file: the file provider reads the
        // dynamic sections.
        ctx.errors.retain(|e| !e.message.ends_with(DYNAMIC_HERE));
    }
    match config {
        Some(config) if ctx.errors.is_empty() => {
            sort_warnings(&mut ctx.warnings);
            Ok((config, ctx.warnings))
        }
        _ => Err(ConfigErrors::sorted(ctx.errors)),
    }
}

/// Whether the file provider's `filename` is the static file itself.
fn names_itself(config: &StaticConfig, file: &Path) -> bool {
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    config
        .providers
        .file
        .as_ref()
        .and_then(|f| f.filename.as_deref())
        .is_some_and(|f| abs(f) == abs(file))
}

/// The validated model of a decoded file.
fn check(ctx: &mut Ctx, file: StaticFile) -> StaticConfig {
    let mut entry_points = Vec::new();
    let mut names_written: Vec<String> = Vec::new();
    for item in file.entry_points.0 {
        names_written.push(item.name.clone());
        if let Some(ep) = item.value
            && let Some(ep) = entry_points::check(ctx, &item.name, &item.path, item.key_pos, ep)
        {
            entry_points.push(ep);
        }
    }
    // Traefik refuses any other value at startup, and warns about v2.
    let mut default_rule_syntax = RuleSyntax::V3;
    if let Some(f) = file.core.default_rule_syntax.filter(|f| f.ok) {
        match RuleSyntax::from_default_setting(&f.value) {
            Some(syntax) => default_rule_syntax = syntax,
            None => ctx.error(
                &f.path,
                f.pos,
                format!(
                    "unsupported default rule syntax {:?} (expected \"v2\" or \"v3\")",
                    f.value
                ),
            ),
        }
        if default_rule_syntax == RuleSyntax::V2 {
            ctx.warn(
                &f.path,
                f.pos,
                "the v2 rule syntax is deprecated (Traefik 3 warns too): routers without \
                 ruleSyntax are parsed as v2; rewrite their rules in v3",
            );
        }
    }
    let providers = providers::check(ctx, file.providers);
    let log = observability::log(ctx, file.log);
    let access_log = observability::access_log(ctx, file.access_log);
    let (metrics, prometheus_pos) = observability::metrics(ctx, file.metrics);
    let ping_pos = file.ping.as_ref().map_or(Pos::default(), |p| p.key_pos);
    let ping = observability::ping(ctx, file.ping.map(|p| p.value));
    let api = file.api.and_then(Switch::on).map(|a| api::check(ctx, a));
    let api_insecure = api.as_ref().is_some_and(|a| a.insecure);
    let mut config = StaticConfig {
        entry_points,
        providers,
        log,
        access_log,
        metrics,
        ping,
        api,
        default_rule_syntax,
    };

    // Traefik's SetEffectiveConfiguration: a default `http` entrypoint when
    // none is defined, and the internal one when something needs it.
    let file = ctx.file.clone();
    if names_written.is_empty() {
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
    if wants_internal && !names_written.iter().any(|n| n == INTERNAL_ENTRY_POINT) {
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
    // Redirections go to the port of their target entrypoint.
    let snapshot = config.entry_points.clone();
    for ep in &mut config.entry_points {
        if let Some(r) = &mut ep.redirect {
            match entry_points::redirect_port(&r.to, &snapshot) {
                Ok(port) => r.port = port,
                Err(e) => {
                    let pos = Pos {
                        line: ep.origin.line,
                        column: ep.origin.column,
                    };
                    ctx.error(
                        &format!("entryPoints.{}.http.redirections.entryPoint.to", ep.name),
                        pos,
                        e,
                    );
                }
            }
        }
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
