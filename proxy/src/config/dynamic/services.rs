//! `http.services.<name>`: which type a service has, the file schema and
//! checks of `loadBalancer` and its servers (server URLs, strategy, health
//! checks, sticky cookie), and what every type shares (`sticky`, the
//! draft a check returns).
//!
//! Every service type of Traefik 3.7 is built: `loadBalancer` here;
//! `weighted`, `highestRandomWeight`, `failover` and `mirroring` in
//! `composite`. Services naming services are resolved, checked for cycles
//! and for the health tracking their `healthCheck` needs in
//! `merge::finish`. Nothing here touches the network.

use http::Uri;
use serde::Deserialize;

use super::super::decode::{At, Ctx, Raw, Register, Schema, Spec, Support, decode_at, schema};
use super::super::error::Origin;
use super::super::node::{Pos, Value};
use super::Ref;
use super::composite::{
    self, FailoverConfig, FailoverFile, HrwFile, MirroringConfig, MirroringFile, WeightedConfig,
    WeightedFile,
};
use super::health::{
    self, CheckScheme, HealthCheckConfig, HealthCheckFile, PassiveHealthCheckConfig,
    PassiveHealthCheckFile,
};
use super::sticky::{self, StickyCookie, StickyFile};
use crate::upstream::Strategy;

/// A service.
// Configuration, built once per reload and read by the compiler: the size
// of a load balancer's variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceConfig {
    /// `loadBalancer`: servers picked by a strategy.
    LoadBalancer(LoadBalancerConfig),
    /// `weighted`: other services in the ratio of their weights.
    Weighted(WeightedConfig),
    /// `highestRandomWeight`: other services by highest random weight of
    /// the client IP (no `sticky`).
    HighestRandomWeight(WeightedConfig),
    /// `failover`: the main service while it has a server up, else the
    /// fallback.
    Failover(FailoverConfig),
    /// `mirroring`: the main service answers, copies go to the mirrors.
    Mirroring(MirroringConfig),
}

impl ServiceConfig {
    /// Where the service's name is written.
    pub fn origin(&self) -> &Origin {
        match self {
            ServiceConfig::LoadBalancer(lb) => &lb.origin,
            ServiceConfig::Weighted(w) | ServiceConfig::HighestRandomWeight(w) => &w.origin,
            ServiceConfig::Failover(f) => &f.origin,
            ServiceConfig::Mirroring(m) => &m.origin,
        }
    }

    /// The services it sends to (none for a load balancer).
    pub fn children(&self) -> Vec<&str> {
        match self {
            ServiceConfig::LoadBalancer(_) => Vec::new(),
            ServiceConfig::Weighted(w) | ServiceConfig::HighestRandomWeight(w) => {
                w.services.iter().map(|c| c.service.as_str()).collect()
            }
            ServiceConfig::Failover(f) => vec![f.service.as_str(), f.fallback.as_str()],
            ServiceConfig::Mirroring(m) => std::iter::once(m.service.as_str())
                .chain(m.mirrors.iter().map(|x| x.service.as_str()))
                .collect(),
        }
    }

    /// Whether its health is tracked, so that a parent with `healthCheck`
    /// can follow it: a load balancer with `healthCheck`, any other type
    /// with its own (empty) `healthCheck`, as Traefik's status updaters
    /// require.
    pub fn health_tracked(&self) -> bool {
        match self {
            ServiceConfig::LoadBalancer(lb) => lb.health_check.is_some(),
            ServiceConfig::Weighted(w) | ServiceConfig::HighestRandomWeight(w) => w.health_check,
            ServiceConfig::Failover(f) => f.health_check,
            ServiceConfig::Mirroring(m) => m.health_check,
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
    /// `sticky.cookie`: a client's later requests go to the same server.
    pub sticky: Option<StickyCookie>,
    /// `passiveHealthCheck`: servers failing requests are taken out.
    pub passive_health_check: Option<PassiveHealthCheckConfig>,
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

/// `http.services.<name>` as written: one field per service type.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ServiceFile {
    load_balancer: Option<At<LoadBalancerFile>>,
    weighted: Option<At<WeightedFile>>,
    mirroring: Option<At<MirroringFile>>,
    failover: Option<At<FailoverFile>>,
    highest_random_weight: Option<At<HrwFile>>,
    /// Run before the service, after the router's (Traefik 3.7).
    middlewares: Option<At<Vec<At<String>>>>,
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
    sticky: Option<At<StickyFile>>,
    passive_health_check: Option<At<PassiveHealthCheckFile>>,
}

impl Schema for LoadBalancerFile {
    const KEYS: Spec = &[("responseForwarding", Support::Warn(""))];
}

/// `servers[i]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ServerFile {
    url: Option<At<String>>,
    weight: Option<At<u32>>,
    preserve_path: Option<At<bool>>,
}

pub(super) const SCHEMAS: &[Register] = &[schema::<LoadBalancerFile>];

// === checks ===

/// A service whose servers transport and child services are still to be
/// resolved.
pub(super) struct ServiceDraft {
    pub(super) config: ServiceConfig,
    pub(super) transport: Option<Ref>,
    /// The services it names, in the order of its config's children.
    pub(super) children: Vec<Ref>,
    /// The middlewares it names, as written.
    pub(super) middlewares: Vec<Ref>,
}

/// Checks the service at `path` (named at `pos`). `None` when it cannot be
/// served; its errors are in `ctx`.
pub(super) fn check(
    ctx: &mut Ctx,
    path: &str,
    pos: Pos,
    mut file: ServiceFile,
) -> Option<ServiceDraft> {
    let middlewares = super::routers::refs(file.middlewares.take());
    let mut draft = check_type(ctx, path, pos, file)?;
    draft.middlewares = middlewares;
    Some(draft)
}

/// [`check`] of the service's type.
fn check_type(ctx: &mut Ctx, path: &str, pos: Pos, file: ServiceFile) -> Option<ServiceDraft> {
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
    if let Some(w) = file.weighted {
        return composite::weighted(ctx, pos, w);
    }
    if let Some(h) = file.highest_random_weight {
        return composite::hrw(ctx, pos, h);
    }
    if let Some(f) = file.failover {
        return composite::failover(ctx, pos, f);
    }
    if let Some(m) = file.mirroring {
        return composite::mirroring(ctx, pos, m);
    }
    let Some(lb) = file.load_balancer else {
        // One cause, one message: a misspelled or refused type was
        // reported already.
        if kinds == 0 && !ctx.has_error_under(path) {
            ctx.error(
                path,
                pos,
                "service has no type (expected loadBalancer, weighted, highestRandomWeight, failover or mirroring)",
            );
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
        // TLS needs the servers transport of an `https://` server.
        if health_check
            .as_ref()
            .is_some_and(|c| c.scheme == CheckScheme::Https)
            && servers.iter().any(|s: &ServerConfig| !s.tls)
        {
            ctx.error(
                &h.path,
                h.pos,
                "healthCheck scheme https of http:// or h2c:// servers is not supported yet (checks over TLS use the servers transport of https:// servers)",
            );
            health_check = None;
            ok = false;
        }
    }
    let mut passive_health_check = None;
    if let Some(p) = lb.value.passive_health_check {
        ok &= p.ok;
        passive_health_check = Some(health::passive(p.value));
    }
    let sticky = sticky_of(ctx, lb.value.sticky);
    ok &= sticky.is_some();
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
            sticky: sticky.flatten(),
            passive_health_check,
            servers_transport: None,
            origin,
        }),
        transport,
        children: Vec::new(),
        middlewares: Vec::new(),
    })
}

pub(super) fn draft(config: ServiceConfig, children: Vec<Ref>) -> ServiceDraft {
    ServiceDraft {
        config,
        transport: None,
        children,
        middlewares: Vec::new(),
    }
}

/// The `sticky` of a service: `Some(None)` when there is none (or it has
/// no `cookie`, which Traefik ignores), `None` on an error.
pub(super) fn sticky_of(
    ctx: &mut Ctx,
    sticky: Option<At<StickyFile>>,
) -> Option<Option<StickyCookie>> {
    let Some(st) = sticky else {
        return Some(None);
    };
    if !st.ok {
        return None;
    }
    match st.value.cookie {
        None => Some(None),
        Some(c) if c.ok => sticky::check(ctx, c).map(Some),
        Some(_) => None,
    }
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
