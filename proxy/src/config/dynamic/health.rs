//! `loadBalancer.healthCheck`: the file schema of an active health check,
//! its checks and Traefik 3.7's defaults (interval 30s, timeout 5s,
//! unhealthy interval = interval, follow redirects, `GET`, any 2xx or 3xx
//! is healthy unless `status` names one).
//!
//! Only the model: the checks themselves run in `upstream::health`.

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
    /// Speak HTTP/2 cleartext to check (`scheme: h2c`), else HTTP/1.1.
    pub h2c: bool,
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
    let mut h2c = false;
    if let Some(s) = file.scheme.filter(|s| s.ok) {
        match s.value.to_ascii_lowercase().as_str() {
            "" | "http" => {}
            "h2c" => h2c = true,
            "https" => {
                ctx.error(
                    &s.path,
                    s.pos,
                    "healthCheck scheme https is not supported yet",
                );
                ok = false;
            }
            other => {
                ctx.error(
                    &s.path,
                    s.pos,
                    format!("unsupported healthCheck scheme {other:?} (expected http or h2c)"),
                );
                ok = false;
            }
        }
    }
    if let Some(m) = file.mode.filter(|m| m.ok) {
        match m.value.as_str() {
            // Traefik checks over HTTP for any mode but grpc.
            "" | "http" => {}
            "grpc" => {
                ctx.error(&m.path, m.pos, "healthCheck mode grpc is not supported yet");
                ok = false;
            }
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
        h2c,
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
