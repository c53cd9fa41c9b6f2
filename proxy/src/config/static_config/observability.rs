//! Observability settings: `log`, `accessLog`, `metrics` and `ping`. The
//! file schemas, Traefik's defaults, and the checks that need more than a
//! type (levels and formats by name, bucket order, status codes).
//!
//! The schema only: `observe` and `admin` act on it.

use std::path::PathBuf;

use serde::Deserialize;

use super::super::decode::{At, Ctx, Raw, Register, Schema, Spec, Support, Switch, schema, uint};
use super::super::node::Pos;
use super::INTERNAL_ENTRY_POINT;

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

// === file schema ===

/// `log` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct LogFile {
    level: Option<At<String>>,
    file_path: Option<String>,
    format: Option<At<String>>,
}

const NO_ROTATION: Support = Support::Warn("no log rotation");

impl Schema for LogFile {
    const KEYS: Spec = &[
        ("noColor", Support::Silent),
        ("maxSize", NO_ROTATION),
        ("maxAge", NO_ROTATION),
        ("maxBackups", NO_ROTATION),
        ("compress", NO_ROTATION),
        ("otlp", Support::Warn("no OpenTelemetry logs")),
    ];
}

/// `accessLog` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct AccessLogFile {
    file_path: Option<String>,
    format: Option<At<String>>,
    buffering_size: Option<u64>,
}

impl Schema for AccessLogFile {
    const KEYS: Spec = &[
        ("filters", Support::Warn("every request is logged")),
        ("fields", Support::Warn("default fields are logged")),
        ("addInternals", Support::Warn("")),
        ("otlp", Support::Warn("no OpenTelemetry access logs")),
        ("dualOutput", Support::Warn("")),
    ];
}

/// `metrics` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct MetricsFile {
    prometheus: Option<At<Switch<PrometheusFile>>>,
}

const ONLY_PROMETHEUS: Support = Support::Warn("only prometheus is supported");

impl Schema for MetricsFile {
    const KEYS: Spec = &[
        ("addInternals", Support::Warn("")),
        ("datadog", ONLY_PROMETHEUS),
        ("statsD", ONLY_PROMETHEUS),
        ("influxDB2", ONLY_PROMETHEUS),
        ("otlp", ONLY_PROMETHEUS),
    ];
}

/// `metrics.prometheus` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PrometheusFile {
    buckets: Option<At<Vec<At<f64>>>>,
    add_entry_points_labels: Option<bool>,
    add_routers_labels: Option<bool>,
    add_services_labels: Option<bool>,
    entry_point: Option<At<String>>,
    manual_routing: Option<bool>,
}

impl Schema for PrometheusFile {
    const KEYS: Spec = &[("headerLabels", Support::Warn(""))];
}

/// `ping` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct PingFile {
    entry_point: Option<At<String>>,
    manual_routing: Option<bool>,
    /// Kept raw: an integer bounded by 599, which no type says.
    terminating_status_code: Option<Raw>,
}

pub(super) const SCHEMAS: &[Register] = &[
    schema::<LogFile>,
    schema::<AccessLogFile>,
    schema::<MetricsFile>,
    schema::<PrometheusFile>,
];

// === checks ===

/// A non-empty entrypoint name, if one is set.
fn entry_point(f: Option<At<String>>) -> Option<String> {
    f.filter(|f| f.ok && !f.value.is_empty()).map(|f| f.value)
}

fn file_path(s: Option<String>) -> Option<PathBuf> {
    s.filter(|s| !s.is_empty()).map(PathBuf::from)
}

fn log_format(ctx: &mut Ctx, f: Option<At<String>>) -> LogFormat {
    let Some(f) = f.filter(|f| f.ok) else {
        return LogFormat::Common;
    };
    match f.value.to_ascii_lowercase().as_str() {
        "common" | "" => LogFormat::Common,
        "json" => LogFormat::Json,
        other => {
            ctx.error(
                &f.path,
                f.pos,
                format!("unknown format {other:?} (expected \"common\" or \"json\")"),
            );
            LogFormat::Common
        }
    }
}

/// `log`, Traefik's defaults filled in.
pub(super) fn log(ctx: &mut Ctx, file: LogFile) -> LogConfig {
    let mut out = LogConfig::default();
    if let Some(f) = file.level.filter(|f| f.ok) {
        out.level = match f.value.to_ascii_uppercase().as_str() {
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
                    f.pos,
                    format!(
                        "unknown log level {:?} (expected TRACE, DEBUG, INFO, WARN, ERROR, FATAL or PANIC)",
                        f.value
                    ),
                );
                LogLevel::Error
            }
        };
    }
    out.file_path = file_path(file.file_path);
    out.format = log_format(ctx, file.format);
    out
}

/// `accessLog`, when switched on.
pub(super) fn access_log(
    ctx: &mut Ctx,
    file: Option<Switch<AccessLogFile>>,
) -> Option<AccessLogConfig> {
    let file = file?.on()?;
    Some(AccessLogConfig {
        file_path: file_path(file.file_path),
        format: log_format(ctx, file.format),
        buffering_size: file.buffering_size.unwrap_or(0),
    })
}

/// `metrics`; `metrics.prometheus` when switched on. The position is where
/// `prometheus` is written, for the check of its entrypoint.
pub(super) fn metrics(ctx: &mut Ctx, file: MetricsFile) -> (MetricsConfig, Pos) {
    let Some(f) = file.prometheus else {
        return (MetricsConfig::default(), Pos::default());
    };
    let pos = f.key_pos;
    let Some(p) = f.value.on() else {
        return (MetricsConfig::default(), pos);
    };
    let mut out = PrometheusConfig::default();
    if let Some(list) = p.buckets {
        let buckets: Vec<f64> = list
            .value
            .iter()
            .filter(|b| b.ok)
            .map(|b| b.value)
            .collect();
        if buckets.windows(2).any(|w| w[0] >= w[1]) {
            ctx.error(&list.path, list.pos, "buckets must be in increasing order");
        }
        out.buckets = buckets;
    }
    out.add_entry_points_labels = p
        .add_entry_points_labels
        .unwrap_or(out.add_entry_points_labels);
    out.add_routers_labels = p.add_routers_labels.unwrap_or(out.add_routers_labels);
    out.add_services_labels = p.add_services_labels.unwrap_or(out.add_services_labels);
    out.manual_routing = p.manual_routing.unwrap_or(out.manual_routing);
    if let Some(ep) = entry_point(p.entry_point) {
        out.entry_point = ep;
    }
    (
        MetricsConfig {
            prometheus: Some(out),
        },
        pos,
    )
}

/// `ping`, when switched on.
pub(super) fn ping(ctx: &mut Ctx, file: Option<Switch<PingFile>>) -> Option<PingConfig> {
    let file = file?.on()?;
    let mut out = PingConfig {
        manual_routing: file.manual_routing.unwrap_or(false),
        ..PingConfig::default()
    };
    if let Some(ep) = entry_point(file.entry_point) {
        out.entry_point = ep;
    }
    if let Some(raw) = file.terminating_status_code {
        let raw = ctx.take_raw(raw);
        match uint(&raw.node.value, 599) {
            Ok(code) if code < 100 => ctx.error(
                &raw.path,
                raw.node.pos,
                format!("{code} is not an HTTP status code"),
            ),
            Ok(code) => out.terminating_status_code = code as u16,
            Err(e) => ctx.error(&raw.path, raw.node.pos, e),
        }
    }
    Some(out)
}
