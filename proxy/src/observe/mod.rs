//! Observability: process logging, Prometheus metrics with Traefik's names,
//! router decision timing (decision 3) and Traefik's access log.
//!
//! What runs per request is lock-free and allocation-free on its fast path:
//! [`WorkerMetrics::record`] (a per-worker cache of resolved handles),
//! [`DecisionTimer::record`] and [`AccessLogSender::log`]. Everything else
//! (installing the recorder, rendering `/metrics`, reload bookkeeping, the
//! watcher, upkeep and access-log writer threads) is control plane and runs
//! off the request path. See `DESIGN.md` next to this file.

pub mod access_log;
#[cfg(test)]
mod alloc_tests;
pub mod decision;
mod hist;
pub mod labels;
pub mod live;
pub mod logging;
pub mod names;
pub mod prometheus;
pub mod request_metrics;
mod store;

pub use access_log::{
    AccessLogEntry, AccessLogFormat, AccessLogOptions, AccessLogSender, AccessLogWriter,
};
pub use decision::{DecisionStats, DecisionTimer, DecisionWatch, spawn_watcher};
pub use labels::{Protocol, grpc_status_code, method_label};
pub use logging::init_logging;
pub use prometheus::{
    ConnectionGauge, MetricsHandle, MetricsOptions, admin_response, build_recorder, install,
    record_config_applied, record_config_disabled, record_config_rejected,
};
pub use request_metrics::{MetricsFlags, RequestLabels, WorkerMetrics};
