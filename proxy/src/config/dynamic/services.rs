//! `http.services.<name>`: the file schema of each service type, and the
//! checks that need more than a type (exactly one type, server URLs).
//!
//! Every service type of Traefik 3.7 is built: `loadBalancer`,
//! `weighted`, `highestRandomWeight`, `failover` and `mirroring`.
//! Services naming services are
//! resolved, checked for cycles and for the health tracking their
//! `healthCheck` needs in `super::finish`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use http::Uri;
use serde::Deserialize;

use super::super::decode::{
    At, Ctx, Ignored, Raw, Register, Schema, Spec, Support, decode_at, schema,
};
use super::super::error::{ConfigError, Origin};
use super::super::node::{Pos, Value};
use super::health::{
    self, HealthCheckConfig, HealthCheckFile, PassiveHealthCheckConfig, PassiveHealthCheckFile,
};
use super::sticky::{self, StickyCookie, StickyFile};
use super::{ChildRefs, Ref, err_at};
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

/// `services.<name>.mirroring`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirroringConfig {
    /// The service that answers.
    pub service: String,
    /// Where copies go, each for `percent` of the requests.
    pub mirrors: Vec<MirrorConfig>,
    /// `mirrorBody` (default true): copies carry the request body.
    pub mirror_body: bool,
    /// `maxBodySize` (default -1, no limit): a larger body is not mirrored.
    pub max_body_size: Option<u64>,
    /// `healthCheck`: a parent sees this service as up as its main one.
    pub health_check: bool,
    /// Where the service's name is written.
    pub origin: Origin,
}

/// One `mirroring.mirrors[i]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorConfig {
    /// The service it names, without provider.
    pub service: String,
    /// The share of requests copied to it, 0 to 100.
    pub percent: u32,
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

/// One child of a `weighted` or `highestRandomWeight` service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildService {
    /// The name as written: what sticky cookies and hrw hash, as Traefik.
    pub name: String,
    /// The service it names, without provider.
    pub service: String,
    /// Its weight (default 1; 0 takes it out).
    pub weight: u32,
}

/// `services.<name>.weighted`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedConfig {
    /// The child services and their weights.
    pub services: Vec<ChildService>,
    /// `sticky.cookie` (weighted only).
    pub sticky: Option<StickyCookie>,
    /// `healthCheck`: children with no server up are skipped, and parents
    /// see this service down when no child is up.
    pub health_check: bool,
    /// Where the service's name is written.
    pub origin: Origin,
}

/// `services.<name>.failover`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverConfig {
    /// The main service.
    pub service: String,
    /// Where requests go while the main service has no server up.
    pub fallback: String,
    /// `healthCheck`: a parent sees this service down when neither has a
    /// server up.
    pub health_check: bool,
    /// Where the service's name is written.
    pub origin: Origin,
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
}

impl Schema for ServiceFile {
    const KEYS: Spec = &[(
        "middlewares",
        Support::Error("service middlewares; ignoring them would skip them"),
    )];
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

/// `weighted` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WeightedFile {
    services: Vec<At<ChildFile>>,
    health_check: Option<Ignored>,
    sticky: Option<At<StickyFile>>,
}

/// `mirroring` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct MirroringFile {
    service: Option<At<String>>,
    mirrors: Vec<At<MirrorFile>>,
    mirror_body: Option<bool>,
    max_body_size: Option<At<i64>>,
    health_check: Option<Ignored>,
}

/// `mirroring.mirrors[i]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct MirrorFile {
    name: Option<At<String>>,
    percent: Option<At<i64>>,
}

/// `highestRandomWeight` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct HrwFile {
    services: Vec<At<ChildFile>>,
    health_check: Option<Ignored>,
}

/// `weighted.services[i]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ChildFile {
    name: Option<At<String>>,
    weight: Option<At<u32>>,
}

/// `failover` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct FailoverFile {
    service: Option<At<String>>,
    fallback: Option<At<String>>,
    health_check: Option<Ignored>,
}

impl Schema for FailoverFile {
    const KEYS: Spec = &[(
        "errors",
        Support::Error("failover on response statuses; ignoring it would keep failing responses"),
    )];
}

/// `servers[i]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ServerFile {
    url: Option<At<String>>,
    weight: Option<At<u32>>,
    preserve_path: Option<At<bool>>,
}

pub(super) const SCHEMAS: &[Register] = &[
    schema::<ServiceFile>,
    schema::<LoadBalancerFile>,
    schema::<FailoverFile>,
];

// === checks ===

/// A service whose servers transport and child services are still to be
/// resolved.
pub(super) struct ServiceDraft {
    pub(super) config: ServiceConfig,
    pub(super) transport: Option<Ref>,
    /// The services it names, in the order of its config's children.
    pub(super) children: Vec<Ref>,
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
    if let Some(w) = file.weighted {
        if !w.ok {
            return None;
        }
        let sticky = sticky_of(ctx, w.value.sticky)?;
        let kids = children_of(ctx, "weighted", w.value.services);
        return kids.map(|(services, refs)| {
            draft(
                ServiceConfig::Weighted(WeightedConfig {
                    services,
                    sticky,
                    health_check: w.value.health_check.is_some(),
                    origin: ctx.origin(pos),
                }),
                refs,
            )
        });
    }
    if let Some(h) = file.highest_random_weight {
        if !h.ok {
            return None;
        }
        let kids = children_of(ctx, "highestRandomWeight", h.value.services);
        return kids.map(|(services, refs)| {
            draft(
                ServiceConfig::HighestRandomWeight(WeightedConfig {
                    services,
                    sticky: None,
                    health_check: h.value.health_check.is_some(),
                    origin: ctx.origin(pos),
                }),
                refs,
            )
        });
    }
    if let Some(f) = file.failover {
        return failover(ctx, pos, f);
    }
    if let Some(m) = file.mirroring {
        return mirroring(ctx, pos, m);
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
    })
}

fn draft(config: ServiceConfig, children: Vec<Ref>) -> ServiceDraft {
    ServiceDraft {
        config,
        transport: None,
        children,
    }
}

/// The `sticky` of a service: `Some(None)` when there is none (or it has
/// no `cookie`, which Traefik ignores), `None` on an error.
fn sticky_of(ctx: &mut Ctx, sticky: Option<At<StickyFile>>) -> Option<Option<StickyCookie>> {
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

/// The `services` list of a weighted or highestRandomWeight service.
fn children_of(
    ctx: &mut Ctx,
    kind: &str,
    list: Vec<At<ChildFile>>,
) -> Option<(Vec<ChildService>, Vec<Ref>)> {
    let mut ok = true;
    let mut services = Vec::new();
    let mut children = Vec::new();
    for child in list {
        let Some(name) = child.value.name.filter(|n| n.ok && !n.value.is_empty()) else {
            ctx.error(
                &child.path,
                child.pos,
                format!("{kind} service entry has no name"),
            );
            ok = false;
            continue;
        };
        let weight = match child.value.weight {
            Some(wt) if wt.ok => wt.value,
            Some(_) => {
                ok = false;
                1
            }
            None => 1,
        };
        services.push(ChildService {
            name: name.value.clone(),
            service: name.value.clone(),
            weight,
        });
        children.push(Ref {
            name: name.value,
            path: name.path,
            pos: name.pos,
        });
    }
    ok.then_some((services, children))
}

fn failover(ctx: &mut Ctx, pos: Pos, f: At<FailoverFile>) -> Option<ServiceDraft> {
    if !f.ok {
        return None;
    }
    let mut refs = Vec::new();
    for (key, field) in [("service", f.value.service), ("fallback", f.value.fallback)] {
        match field {
            Some(v) if v.ok && !v.value.is_empty() => refs.push(Ref {
                name: v.value,
                path: v.path,
                pos: v.pos,
            }),
            Some(v) if !v.ok => return None,
            _ => {
                ctx.error(&f.path, f.key_pos, format!("failover has no {key}"));
                return None;
            }
        }
    }
    let origin = ctx.origin(pos);
    Some(ServiceDraft {
        config: ServiceConfig::Failover(FailoverConfig {
            service: refs[0].name.clone(),
            fallback: refs[1].name.clone(),
            health_check: f.value.health_check.is_some(),
            origin,
        }),
        transport: None,
        children: refs,
    })
}

fn mirroring(ctx: &mut Ctx, pos: Pos, m: At<MirroringFile>) -> Option<ServiceDraft> {
    if !m.ok {
        return None;
    }
    let f = m.value;
    let main = match f.service {
        Some(v) if v.ok && !v.value.is_empty() => v,
        Some(v) if !v.ok => return None,
        _ => {
            ctx.error(&m.path, m.key_pos, "mirroring has no service");
            return None;
        }
    };
    let mut ok = true;
    let mut refs = vec![Ref {
        name: main.value.clone(),
        path: main.path,
        pos: main.pos,
    }];
    let mut mirrors = Vec::new();
    for mirror in f.mirrors {
        let Some(name) = mirror.value.name.filter(|n| n.ok && !n.value.is_empty()) else {
            ctx.error(&mirror.path, mirror.pos, "mirror has no name");
            ok = false;
            continue;
        };
        let percent = match mirror.value.percent {
            Some(p) if p.ok && (0..=100).contains(&p.value) => p.value as u32,
            Some(p) if p.ok => {
                ctx.error(
                    &p.path,
                    p.pos,
                    format!(
                        "mirror percent must be between 0 and 100, found {}",
                        p.value
                    ),
                );
                ok = false;
                0
            }
            Some(_) => {
                ok = false;
                0
            }
            None => 0,
        };
        mirrors.push(MirrorConfig {
            service: name.value.clone(),
            percent,
        });
        refs.push(Ref {
            name: name.value,
            path: name.path,
            pos: name.pos,
        });
    }
    let max_body_size = match f.max_body_size {
        Some(v) if !v.ok => {
            ok = false;
            None
        }
        // Negative: no limit, as Traefik's -1 default.
        Some(v) => u64::try_from(v.value).ok(),
        None => None,
    };
    let origin = ctx.origin(pos);
    ok.then(|| {
        draft(
            ServiceConfig::Mirroring(MirroringConfig {
                service: main.value,
                mirrors,
                mirror_body: f.mirror_body.unwrap_or(true),
                max_body_size,
                health_check: f.health_check.is_some(),
                origin,
            }),
            refs,
        )
    })
}

/// Rejects every service that reaches itself through the services it
/// names, with the cycle in the message (`a -> b -> a`), at the first
/// service each one names (`refs`: file, key path, position).
pub(super) fn reject_cycles(
    children: &BTreeMap<String, Vec<String>>,
    refs: &BTreeMap<String, (PathBuf, String, Pos)>,
    errors: &mut Vec<ConfigError>,
) {
    for start in children.keys() {
        // Depth-first, keeping the path; a service is reported when the
        // walk from it comes back to it.
        let mut stack = vec![(start.as_str(), 0usize)];
        let mut path: Vec<&str> = vec![start.as_str()];
        let mut seen = BTreeSet::new();
        while let Some((node, next)) = stack.pop() {
            let kids = children.get(node).map_or(&[][..], Vec::as_slice);
            if next >= kids.len() {
                path.pop();
                continue;
            }
            stack.push((node, next + 1));
            let kid = kids[next].as_str();
            if kid == start {
                let (file, key, pos) = &refs[start];
                errors.push(ConfigError {
                    file: file.clone(),
                    key: key.clone(),
                    line: (pos.line > 0).then_some(pos.line),
                    column: (pos.line > 0).then_some(pos.column),
                    message: format!("service cycle: {} -> {start}", path.join(" -> ")),
                });
                break;
            }
            if seen.insert(kid) {
                path.push(kid);
                stack.push((kid, 0));
            }
        }
    }
}

/// Refuses, as Traefik does, a parent whose health depends on a child
/// that tracks none: every child of a `weighted` or `highestRandomWeight`
/// service with `healthCheck`, the main service of a `failover`, and its
/// fallback when the failover has `healthCheck` itself, must have a
/// `healthCheck` of its own. The error is at the child's reference.
pub(super) fn check_tracking(
    services: &BTreeMap<String, ServiceConfig>,
    tracking: &[ChildRefs],
    errors: &mut Vec<ConfigError>,
) {
    for (name, file, refs) in tracking {
        let (kind, needs): (&str, Vec<(usize, &str)>) = match services.get(name) {
            Some(ServiceConfig::Weighted(w)) if w.health_check => (
                "weighted.healthCheck",
                w.services
                    .iter()
                    .map(|c| c.service.as_str())
                    .enumerate()
                    .collect(),
            ),
            Some(ServiceConfig::HighestRandomWeight(w)) if w.health_check => (
                "highestRandomWeight.healthCheck",
                w.services
                    .iter()
                    .map(|c| c.service.as_str())
                    .enumerate()
                    .collect(),
            ),
            Some(ServiceConfig::Mirroring(m)) if m.health_check => {
                ("mirroring.healthCheck", vec![(0, m.service.as_str())])
            }
            Some(ServiceConfig::Failover(f)) => {
                let mut needs = vec![(0, f.service.as_str())];
                if f.health_check {
                    needs.push((1, f.fallback.as_str()));
                }
                ("failover", needs)
            }
            _ => continue,
        };
        for (i, child) in needs {
            let Some(c) = services.get(child) else {
                continue;
            };
            if !c.health_tracked() {
                errors.push(err_at(
                    file,
                    &refs[i].path,
                    refs[i].pos,
                    format!(
                        "service {child:?} has no healthCheck, which {kind} of {name:?} needs to follow its health"
                    ),
                ));
            }
        }
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
