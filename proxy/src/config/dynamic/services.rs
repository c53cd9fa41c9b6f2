//! `http.services.<name>`: the file schema of each service type, and the
//! checks that need more than a type (exactly one type, server URLs).
//!
//! Only `loadBalancer` is built. The other types are fields of
//! [`ServiceFile`] refused in its key table, so their presence still
//! counts; a new type becomes a field with its own derived struct here and
//! a variant of [`ServiceConfig`].

use http::Uri;
use serde::Deserialize;

use super::super::decode::{
    At, Ctx, Ignored, Raw, Register, Schema, Spec, Support, decode_at, schema,
};
use super::super::error::Origin;
use super::super::node::{Pos, Value};
use super::Ref;
use super::health::{self, HealthCheckConfig, HealthCheckFile};
use crate::upstream::Strategy;

/// A service. Only load balancers exist so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceConfig {
    /// `loadBalancer`: weighted round robin over servers.
    LoadBalancer(LoadBalancerConfig),
}

impl ServiceConfig {
    /// Where the service's name is written.
    pub fn origin(&self) -> &Origin {
        match self {
            ServiceConfig::LoadBalancer(lb) => &lb.origin,
        }
    }
}

/// `services.<name>.loadBalancer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerConfig {
    /// The servers; none answers 503.
    pub servers: Vec<ServerConfig>,
    /// Forward the client's `Host` header (default true).
    pub pass_host_header: bool,
    /// `strategy`: how a server is picked (default `wrr`).
    pub strategy: Strategy,
    /// `healthCheck`: the active check of every server.
    pub health_check: Option<HealthCheckConfig>,
    /// Named servers transport; it exists in
    /// [`DynamicConfig::servers_transports`](super::DynamicConfig::servers_transports).
    pub servers_transport: Option<String>,
    /// Where the service's name is written.
    pub origin: Origin,
}

/// One upstream server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The URL as written.
    pub url: String,
    /// The parsed URL: scheme `http`, `https` or `h2c`, with a host.
    pub uri: Uri,
    /// Speak HTTP/2 cleartext (scheme `h2c`).
    pub h2c: bool,
    /// TLS (scheme `https`).
    pub tls: bool,
    /// Weight for the round robin; `None` = Traefik's default of 1.
    pub weight: Option<u32>,
    /// Keep the URL's path as a prefix of forwarded paths.
    pub preserve_path: bool,
}

// === file schema ===

const UNSUPPORTED_KIND: Support = Support::Error("only loadBalancer services exist");

/// `http.services.<name>` as written: one field per service type.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ServiceFile {
    load_balancer: Option<At<LoadBalancerFile>>,
    weighted: Option<Ignored>,
    mirroring: Option<Ignored>,
    failover: Option<Ignored>,
    highest_random_weight: Option<Ignored>,
}

impl Schema for ServiceFile {
    const KEYS: Spec = &[
        ("weighted", UNSUPPORTED_KIND),
        ("mirroring", UNSUPPORTED_KIND),
        ("failover", UNSUPPORTED_KIND),
        ("highestRandomWeight", UNSUPPORTED_KIND),
        (
            "middlewares",
            Support::Error("service middlewares; ignoring them would skip them"),
        ),
    ];
}

/// `loadBalancer` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct LoadBalancerFile {
    /// Kept raw: a value that is not a list is "not a list of servers".
    servers: Option<Raw>,
    pass_host_header: Option<At<bool>>,
    servers_transport: Option<At<String>>,
    strategy: Option<At<String>>,
    health_check: Option<At<HealthCheckFile>>,
}

impl Schema for LoadBalancerFile {
    const KEYS: Spec = &[
        (
            "sticky",
            Support::Warn("requests are not pinned to a server"),
        ),
        (
            "passiveHealthCheck",
            Support::Warn("servers are not health-checked"),
        ),
        ("responseForwarding", Support::Warn("")),
    ];
}

/// `servers[i]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ServerFile {
    url: Option<At<String>>,
    weight: Option<At<u32>>,
    preserve_path: Option<At<bool>>,
}

pub(super) const SCHEMAS: &[Register] = &[schema::<ServiceFile>, schema::<LoadBalancerFile>];

// === checks ===

/// A service whose servers transport is still to be resolved.
pub(super) struct ServiceDraft {
    pub(super) config: ServiceConfig,
    pub(super) transport: Option<Ref>,
}

/// Checks the service at `path` (named at `pos`). `None` when it cannot be
/// served; its errors are in `ctx`.
pub(super) fn check(
    ctx: &mut Ctx,
    path: &str,
    pos: Pos,
    file: ServiceFile,
) -> Option<ServiceDraft> {
    let kinds = [
        file.load_balancer.is_some(),
        file.weighted.is_some(),
        file.mirroring.is_some(),
        file.failover.is_some(),
        file.highest_random_weight.is_some(),
    ]
    .into_iter()
    .filter(|k| *k)
    .count();
    if kinds > 1 {
        ctx.error(path, pos, "a service must have exactly one type");
        return None;
    }
    let Some(lb) = file.load_balancer else {
        // One cause, one message: a misspelled or refused type was
        // reported already.
        if kinds == 0 && !ctx.has_error_under(path) {
            ctx.error(path, pos, "service has no type (expected loadBalancer)");
        }
        return None;
    };
    if !lb.ok {
        return None;
    }
    let mut ok = true;
    let mut servers = Vec::new();
    // No `servers` at all is valid too.
    if let Some(raw) = lb.value.servers {
        {
            let raw = ctx.take_raw(raw);
            match &raw.node.value {
                Value::Seq(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let spath = format!("{}[{i}]", raw.path);
                        let server = decode_at::<At<ServerFile>>(ctx, item, &spath, item.pos)
                            .filter(|s| s.ok)
                            .and_then(|s| server(ctx, &spath, item.pos, s.value));
                        match server {
                            Some(s) => servers.push(s),
                            None => ok = false,
                        }
                    }
                }
                // No servers (`[]`, an empty value, an empty map or TOML
                // table) is valid and answers 503, as in Traefik.
                Value::Null => {}
                Value::Map(entries) if entries.is_empty() => {}
                other => {
                    ctx.error(
                        &raw.path,
                        raw.node.pos,
                        format!("expected a list of servers, found {}", other.describe()),
                    );
                    ok = false;
                }
            }
        }
    }
    let mut pass_host_header = true;
    if let Some(f) = lb.value.pass_host_header {
        ok &= f.ok;
        pass_host_header = f.value;
    }
    let mut strategy = Strategy::default();
    if let Some(f) = lb.value.strategy
        && f.ok
    {
        match Strategy::parse(&f.value) {
            Some(s) => strategy = s,
            None => {
                ctx.error(
                    &f.path,
                    f.pos,
                    format!(
                        "unsupported load-balancer strategy {:?} (expected wrr, p2c, hrw or leasttime)",
                        f.value
                    ),
                );
                ok = false;
            }
        }
    }
    let mut health_check = None;
    if let Some(h) = lb.value.health_check.filter(|h| h.ok) {
        health_check = health::check(ctx, &h.path, h.value);
        ok &= health_check.is_some();
        // The checker speaks plain HTTP or h2c only: an `https://` server
        // would fail every check and leave the rotation.
        if health_check.is_some() && servers.iter().any(|s: &ServerConfig| s.tls) {
            ctx.error(
                &h.path,
                h.pos,
                "healthCheck of https:// servers is not supported yet (checks speak http or h2c only)",
            );
            health_check = None;
            ok = false;
        }
    }
    let transport = lb
        .value
        .servers_transport
        .filter(|f| f.ok && !f.value.is_empty())
        .map(|f| Ref {
            name: f.value,
            path: f.path,
            pos: f.pos,
        });
    let origin = ctx.origin(pos);
    ok.then_some(ServiceDraft {
        config: ServiceConfig::LoadBalancer(LoadBalancerConfig {
            servers,
            pass_host_header,
            strategy,
            health_check,
            servers_transport: None,
            origin,
        }),
        transport,
    })
}

fn server(ctx: &mut Ctx, path: &str, pos: Pos, file: ServerFile) -> Option<ServerConfig> {
    let Some(f) = file.url else {
        ctx.error(path, pos, "server has no url");
        return None;
    };
    if !f.ok {
        return None;
    }
    let (uri, h2c, tls) = match parse_server_url(f.value.trim()) {
        Ok(v) => v,
        Err(e) => {
            ctx.error(&f.path, f.pos, e);
            return None;
        }
    };
    let mut ok = true;
    let weight = file.weight.and_then(|w| {
        ok &= w.ok;
        w.ok().copied()
    });
    let preserve_path = file.preserve_path.is_some_and(|p| {
        ok &= p.ok;
        p.value
    });
    ok.then_some(ServerConfig {
        url: f.value,
        uri,
        h2c,
        tls,
        weight,
        preserve_path,
    })
}

/// An absolute `http://`, `https://` or `h2c://` URL with a host; whether
/// it is h2c, whether TLS.
fn parse_server_url(url: &str) -> Result<(Uri, bool, bool), String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("invalid server URL {url:?}: {e}"))?;
    let (h2c, tls) = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("http") => (false, false),
        Some("h2c") => (true, false),
        Some("https") => (false, true),
        Some(other) => {
            return Err(format!(
                "server URL {url:?} has unsupported scheme {other:?} (expected http, https or h2c)"
            ));
        }
        None => {
            return Err(format!(
                "server URL {url:?} must be absolute, e.g. \"http://10.0.0.1:8080\""
            ));
        }
    };
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("server URL {url:?} has no host"));
    }
    Ok((uri, h2c, tls))
}
