//! `loadBalancer.healthCheck` and `.passiveHealthCheck`: their file
//! schemas, checks and Traefik 3.7's defaults (active: interval 30s,
//! timeout 5s, unhealthy interval = interval, follow redirects, `GET`, any
//! 2xx or 3xx is healthy unless `status` names one; passive: a window of
//! 10s, one failure).
//!
//! `scheme` (the server URL's by default; `https` for `https://` servers,
//! checked with their servers transport) and `mode` (`http`, or `grpc`:
//! the gRPC health protocol over HTTP/2) as Traefik reads them.
//!
//! Only the model: the checks themselves run in `upstream::health` and
//! `upstream::passive`.

use std::collections::BTreeMap;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use serde::Deserialize;

use super::super::decode::{At, Ctx};

/// Traefik's default check interval.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Traefik's default check timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A validated active health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckConfig {
    /// Path (with query) asked on each server, relative.
    pub path: String,
    /// `scheme`: how to reach the server for a check.
    pub scheme: CheckScheme,
    /// `mode: grpc`: the gRPC health protocol (`grpc.health.v1.Health/Check`)
    /// instead of an HTTP request for `path`.
    pub grpc: bool,
    /// Ask this port instead of the server URL's.
    pub port: Option<u16>,
    /// `Host` of the check request; the server's authority when `None`.
    pub hostname: Option<String>,
    /// Extra request headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Request method (default `GET`).
    pub method: Method,
    /// The one healthy status; `None`: any 2xx or 3xx.
    pub status: Option<u16>,
    /// Time between checks of a healthy server.
    pub interval: Duration,
    /// Time between checks of an unhealthy server.
    pub unhealthy_interval: Duration,
    /// A check taking longer fails.
    pub timeout: Duration,
    /// Follow redirects (up to 10, as Go's client); otherwise a 3xx is the
    /// answer.
    pub follow_redirects: bool,
}

/// `healthCheck.scheme`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckScheme {
    /// Not set: the server URL's (`https://` servers over TLS with their
    /// servers transport, `h2c://` as HTTP/2 cleartext).
    #[default]
    Server,
    /// `http`: HTTP/1.1 in clear (or h2c for gRPC), whatever the URL says.
    Http,
    /// `h2c`: HTTP/2 in clear.
    H2c,
    /// `https`: TLS with the servers transport (`https://` servers only).
    Https,
}

impl CheckScheme {
    /// As written in the configuration (`None` when not set).
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            CheckScheme::Server => None,
            CheckScheme::Http => Some("http"),
            CheckScheme::H2c => Some("h2c"),
            CheckScheme::Https => Some("https"),
        }
    }
}

/// `healthCheck` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct HealthCheckFile {
    scheme: Option<At<String>>,
    mode: Option<At<String>>,
    path: Option<At<String>>,
    method: Option<At<String>>,
    status: Option<At<u16>>,
    port: Option<At<u16>>,
    interval: Option<Duration>,
    unhealthy_interval: Option<Duration>,
    timeout: Option<Duration>,
    hostname: Option<String>,
    follow_redirects: Option<bool>,
    headers: BTreeMap<String, String>,
}

/// Checks `healthCheck` at `path`; `None` when it has an error (in `ctx`).
pub(super) fn check(ctx: &mut Ctx, path: &str, file: HealthCheckFile) -> Option<HealthCheckConfig> {
    let mut ok = true;
    let mut scheme = CheckScheme::Server;
    if let Some(s) = file.scheme.filter(|s| s.ok) {
        match s.value.to_ascii_lowercase().as_str() {
            "" => {}
            "http" => scheme = CheckScheme::Http,
            "h2c" => scheme = CheckScheme::H2c,
            "https" => scheme = CheckScheme::Https,
            other => {
                ctx.error(
                    &s.path,
                    s.pos,
                    format!(
                        "unsupported healthCheck scheme {other:?} (expected http, https or h2c)"
                    ),
                );
                ok = false;
            }
        }
    }
    let mut grpc = false;
    if let Some(m) = file.mode.filter(|m| m.ok) {
        match m.value.as_str() {
            // Traefik checks over HTTP for any mode but grpc.
            "" | "http" => {}
            "grpc" => grpc = true,
            other => ctx.warn(
                &m.path,
                m.pos,
                format!("healthCheck mode {other:?} is not http or grpc; checked over HTTP, as Traefik does"),
            ),
        }
    }
    let mut check_path = String::from("/");
    if let Some(p) = file.path.filter(|p| p.ok && !p.value.is_empty()) {
        let joined = if p.value.starts_with('/') {
            p.value.clone()
        } else {
            format!("/{}", p.value)
        };
        if p.value.contains("://") || p.value.starts_with("//") {
            ctx.error(
                &p.path,
                p.pos,
                format!(
                    "health check path must be a relative URL, got {:?}",
                    p.value
                ),
            );
            ok = false;
        } else if http::uri::PathAndQuery::try_from(joined.as_str()).is_err() {
            ctx.error(
                &p.path,
                p.pos,
                format!("invalid health check path {:?}", p.value),
            );
            ok = false;
        } else {
            check_path = joined;
        }
    }
    let mut method = Method::GET;
    if let Some(m) = file.method.filter(|m| m.ok && !m.value.is_empty()) {
        match Method::from_bytes(m.value.as_bytes()) {
            Ok(v) => method = v,
            Err(_) => {
                ctx.error(
                    &m.path,
                    m.pos,
                    format!("invalid healthCheck method {:?}", m.value),
                );
                ok = false;
            }
        }
    }
    let status = match file.status.filter(|s| s.ok) {
        Some(s) if s.value == 0 => None,
        Some(s) if (100..=999).contains(&s.value) => Some(s.value),
        Some(s) => {
            ctx.error(
                &s.path,
                s.pos,
                format!("invalid healthCheck status {}", s.value),
            );
            ok = false;
            None
        }
        None => None,
    };
    let port = file
        .port
        .and_then(|p| (p.ok && p.value != 0).then_some(p.value));
    let mut headers = Vec::with_capacity(file.headers.len());
    for (k, v) in file.headers {
        match (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            (Ok(k), Ok(v)) => headers.push((k, v)),
            _ => {
                ctx.error(
                    &child(&child(path, "headers"), &k),
                    Default::default(),
                    format!("invalid healthCheck header {k:?}: {v:?}"),
                );
                ok = false;
            }
        }
    }
    let positive =
        |d: Option<Duration>, default: Duration| d.filter(|d| !d.is_zero()).unwrap_or(default);
    let interval = positive(file.interval, DEFAULT_INTERVAL);
    let unhealthy_interval = match file.unhealthy_interval {
        None => interval,
        Some(d) => positive(Some(d), DEFAULT_INTERVAL),
    };
    ok.then(|| HealthCheckConfig {
        path: check_path,
        scheme,
        grpc,
        port,
        hostname: file.hostname.filter(|h| !h.is_empty()),
        headers,
        method,
        status,
        interval,
        unhealthy_interval,
        timeout: positive(file.timeout, DEFAULT_TIMEOUT),
        follow_redirects: file.follow_redirects.unwrap_or(true),
    })
}

fn child(path: &str, name: &str) -> String {
    super::super::decode::child(path, name)
}

/// Traefik's default passive failure window.
const DEFAULT_FAILURE_WINDOW: Duration = Duration::from_secs(10);

/// A validated `loadBalancer.passiveHealthCheck`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassiveHealthCheckConfig {
    /// Failures counted within this window (default 10s); without an
    /// active check, a server taken out comes back after it.
    pub failure_window: Duration,
    /// Failures within the window that take a server out (default 1; 0
    /// counts as 1, as Traefik's comparison makes it).
    pub max_failed_attempts: u32,
}

/// `passiveHealthCheck` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct PassiveHealthCheckFile {
    failure_window: Option<Duration>,
    max_failed_attempts: Option<u32>,
}

/// `passiveHealthCheck` with Traefik's defaults.
pub(super) fn passive(file: PassiveHealthCheckFile) -> PassiveHealthCheckConfig {
    PassiveHealthCheckConfig {
        failure_window: file
            .failure_window
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_FAILURE_WINDOW),
        max_failed_attempts: file.max_failed_attempts.unwrap_or(1).max(1),
    }
}
