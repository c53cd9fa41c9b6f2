//! The runtime view the API shows, in Traefik 3.7's JSON shapes
//! (`pkg/config/runtime`: `RouterInfo`, `ServiceInfo`, `MiddlewareInfo`):
//! every router, service and middleware by its name with provider
//! (`app@file`, `api@internal`), with `status`, `error`, `using` and
//! `usedBy`, the internal provider's own elements included as Traefik
//! lists them.
//!
//! Built from one published snapshot (its validated configuration, its
//! disabled elements, its servers' health) when the API is asked, never
//! per data-plane request. A section a later feature adds (TLS options,
//! other service types) is one more arm in `middlewares::middleware` or
//! [`service`], or one more map in [`Runtime`].

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::config::{DisabledElement, ElementKind, RouterConfig, ServiceConfig, StaticConfig};
use crate::routing::RuleSyntax;
use crate::snapshot::Snapshot;
use crate::upstream::Strategy;

use super::json::go_duration;

mod middlewares;

use middlewares::middleware;
pub(super) use middlewares::middleware_type;

/// Traefik's `math.MaxInt`: the priority of its `ping` and `prometheus`
/// routers (`api` has one less, `dashboard` two less).
const MAX_PRIORITY: i64 = i64::MAX;

/// Status values, as Traefik writes them.
pub(super) const ENABLED: &str = "enabled";
pub(super) const DISABLED: &str = "disabled";

/// Every element of one configuration, by qualified name, each the object
/// `/api/rawdata` shows.
#[derive(Debug, Default)]
pub(super) struct Runtime {
    pub(super) routers: BTreeMap<String, Value>,
    pub(super) services: BTreeMap<String, Value>,
    pub(super) middlewares: BTreeMap<String, Value>,
}

/// The provider part of a qualified name (`file` of `app@file`).
pub(super) fn provider(name: &str) -> &str {
    name.split_once('@').map_or("", |(_, p)| p)
}

fn errors_of(d: &DisabledElement) -> Vec<String> {
    let mut out: Vec<String> = d.errors.iter().map(ToString::to_string).collect();
    out.extend(d.because.iter().map(|b| format!("{b} is disabled")));
    out
}

fn strategy(s: Strategy) -> &'static str {
    match s {
        Strategy::Wrr => "wrr",
        Strategy::P2c => "p2c",
        Strategy::Hrw => "hrw",
        Strategy::LeastTime => "leasttime",
    }
}

/// Builds the view of `snap` served with `static_cfg`.
pub(super) fn runtime(static_cfg: &StaticConfig, snap: &Snapshot) -> Runtime {
    let mut rt = Runtime::default();
    let config = &snap.config;
    let disabled = |kind: ElementKind, name: &str| {
        snap.disabled
            .iter()
            .find(|d| d.kind == kind && d.name == name)
    };
    let default_eps = static_cfg.default_entry_points();

    for (name, r) in &config.routers {
        let mut v = router(r, &default_eps);
        if let Some(d) = disabled(ElementKind::Router, name) {
            v["error"] = json!(errors_of(d));
            if unbuilt_child(r, d) {
                v.as_object_mut().map(|m| m.remove("priority"));
            }
        }
        rt.routers
            .insert(crate::config::qualified(name).into_owned(), v);
    }
    for d in snap
        .disabled
        .iter()
        .filter(|d| d.kind == ElementKind::Router)
    {
        // A router whose rule did not parse is in no map: it is shown with
        // what is known of it, its errors.
        rt.routers
            .entry(crate::config::qualified(&d.name).into_owned())
            .or_insert_with(|| json!({"status": DISABLED, "error": errors_of(d)}));
    }
    internal_routers(static_cfg, &mut rt.routers);

    for (name, s) in &config.services {
        let qualified = crate::config::qualified(name).into_owned();
        let mut v = service(s, config.servers_transports.keys());
        v["status"] = json!(ENABLED);
        // Traefik shows a service's own middlewares as its provider wrote
        // them (no provider suffix added).
        if let Some(mws) = config.service_middlewares_written.get(name) {
            v["middlewares"] = json!(mws);
        }
        if let Some(live) = snap.services.iter().find(|l| *l.name == *qualified)
            && let crate::upstream::ServiceKind::LoadBalancer(lb) = &live.kind
        {
            let status: Map<String, Value> = lb
                .servers
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let up = lb.balancer.state(i).is_up();
                    (t.url.to_string(), json!(if up { "UP" } else { "DOWN" }))
                })
                .collect();
            if !status.is_empty() {
                v["serverStatus"] = Value::Object(status);
            }
        }
        rt.services.insert(qualified, v);
    }
    for name in static_cfg.internal_services() {
        rt.services
            .insert(format!("{name}@internal"), json!({"status": ENABLED}));
    }

    for (name, m) in &config.middlewares {
        let mut v = middleware(m);
        v["status"] = json!(ENABLED);
        rt.middlewares
            .insert(crate::config::qualified(name).into_owned(), v);
    }
    if static_cfg
        .api
        .as_ref()
        .is_some_and(|a| a.insecure && a.dashboard)
    {
        rt.middlewares.insert(
            "dashboard_redirect@internal".to_owned(),
            json!({"redirectRegex": {
                "regex": r"^(http:\/\/(\[[\w:.]+\]|[\w\._-]+)(:\d+)?)\/$",
                "replacement": "${1}/dashboard/",
                "permanent": true,
            }, "status": ENABLED}),
        );
        rt.middlewares.insert(
            "dashboard_stripprefix@internal".to_owned(),
            json!({"stripPrefix": {"prefixes": ["/dashboard/", "/dashboard"]}, "status": ENABLED}),
        );
    }

    // Disabled services and middlewares are in no map: shown with their
    // errors.
    for d in &snap.disabled {
        let map = match d.kind {
            ElementKind::Service => &mut rt.services,
            ElementKind::Middleware => &mut rt.middlewares,
            _ => continue,
        };
        map.insert(
            crate::config::qualified(&d.name).into_owned(),
            json!({"status": DISABLED, "error": errors_of(d)}),
        );
    }

    used_by(&mut rt);
    rt
}

/// `usedBy` of services and middlewares: the routers naming them, sorted.
fn used_by(rt: &mut Runtime) {
    let mut services: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut middlewares: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, r) in &rt.routers {
        let provider = provider(name);
        if let Some(s) = r["service"].as_str() {
            let qualified = if s.contains('@') {
                s.to_owned()
            } else {
                format!("{s}@{provider}")
            };
            services.entry(qualified).or_default().push(name.clone());
        }
        for m in r["middlewares"].as_array().into_iter().flatten() {
            if let Some(m) = m.as_str() {
                middlewares
                    .entry(m.to_owned())
                    .or_default()
                    .push(name.clone());
            }
        }
    }
    for (map, users) in [
        (&mut rt.services, services),
        (&mut rt.middlewares, middlewares),
    ] {
        for (name, by) in users {
            if let Some(v) = map.get_mut(&name) {
                v["usedBy"] = json!(by);
            }
        }
    }
}

/// Whether Traefik leaves child router `r` (disabled by `d`) without the
/// priority it computes when it builds a child under its parent: it skips
/// a child with an error from its router tree's check (and one on an
/// entrypoint got its priority there).
fn unbuilt_child(r: &RouterConfig, d: &DisabledElement) -> bool {
    const TREE_ERRORS: [&str; 6] = [
        "parent router ",
        "non-root router cannot have",
        "router is not reachable",
        "router has no service and no child routers",
        "router has both a service",
        "cyclic reference detected",
    ];
    !r.parent_refs.is_empty()
        && r.priority.is_none()
        && r.entry_points.is_empty()
        && d.errors
            .iter()
            .any(|e| TREE_ERRORS.iter().any(|t| e.message.starts_with(t)))
}

/// A file router as Traefik's `RouterInfo` shows it.
fn router(r: &RouterConfig, default_eps: &[String]) -> Value {
    let eps = if r.entry_points.is_empty() {
        default_eps
    } else {
        &r.entry_points
    };
    let mut v = json!({
        "entryPoints": eps,
        "rule": r.rule,
        "priority": r.priority.unwrap_or_else(|| r.parsed.default_priority()),
        "status": if r.disabled { DISABLED } else { ENABLED },
        "using": eps,
    });
    if !r.service.is_empty() {
        // As its provider wrote it: without the router's own provider.
        let own = r.name.rsplit_once('@').map(|(_, p)| format!("@{p}"));
        let shown = own
            .and_then(|p| r.service.strip_suffix(&p))
            .unwrap_or(&r.service);
        v["service"] = json!(shown);
    }
    if !r.middlewares.is_empty() {
        let names: Vec<String> = r
            .middlewares
            .iter()
            .map(|m| crate::config::qualified(m).into_owned())
            .collect();
        v["middlewares"] = json!(names);
    }
    if r.parsed.syntax() == RuleSyntax::V2 {
        v["ruleSyntax"] = json!("v2");
    }
    if !r.parent_refs.is_empty() {
        // A child is on no entrypoint (unless it names some, an error),
        // and Traefik computes its priority when it builds it under its
        // parent, which it does not for a child with an error.
        let map = v.as_object_mut().expect("an object");
        if r.entry_points.is_empty() {
            map.remove("entryPoints");
            map.remove("using");
        }
        let parents: Vec<String> = r
            .parent_refs
            .iter()
            .map(|p| crate::config::qualified(p).into_owned())
            .collect();
        v["parentRefs"] = json!(parents);
    }
    if let Some(tls) = &r.tls {
        // As Traefik's representation: `default` when none is named.
        v["tls"] = json!({ "options": tls.options.as_deref().unwrap_or("default") });
    }
    v
}

/// One router Traefik's internal provider adds.
pub(super) struct InternalRouter {
    /// Its name without `@internal`.
    pub(super) name: &'static str,
    pub(super) entry_point: String,
    pub(super) rule: &'static str,
    pub(super) priority: i64,
    pub(super) service: &'static str,
}

/// The routers Traefik's internal provider adds for `static_cfg`
/// (`apiConfiguration`, `pingConfiguration`, `prometheusConfiguration`);
/// the API lists them and explain tries them.
pub(super) fn internal_router_list(static_cfg: &StaticConfig) -> Vec<InternalRouter> {
    let mut out = Vec::new();
    let mut add = |name, entry_point: &str, rule, priority, service| {
        out.push(InternalRouter {
            name,
            entry_point: entry_point.to_owned(),
            rule,
            priority,
            service,
        });
    };
    let internal = crate::config::INTERNAL_ENTRY_POINT;
    if let Some(api) = static_cfg.api.as_ref().filter(|a| a.insecure) {
        add(
            "api",
            internal,
            "PathPrefix(`/api`)",
            MAX_PRIORITY - 1,
            "api@internal",
        );
        if api.dashboard {
            add(
                "dashboard",
                internal,
                "PathPrefix(`/`)",
                MAX_PRIORITY - 2,
                "dashboard@internal",
            );
        }
        if api.debug {
            add(
                "debug",
                internal,
                "PathPrefix(`/debug`)",
                MAX_PRIORITY - 1,
                "api@internal",
            );
        }
    }
    if let Some(p) = static_cfg.ping.as_ref().filter(|p| !p.manual_routing) {
        add(
            "ping",
            &p.entry_point,
            "PathPrefix(`/ping`)",
            MAX_PRIORITY,
            "ping@internal",
        );
    }
    if let Some(p) = static_cfg
        .metrics
        .prometheus
        .as_ref()
        .filter(|p| !p.manual_routing)
    {
        add(
            "prometheus",
            &p.entry_point,
            "PathPrefix(`/metrics`)",
            MAX_PRIORITY,
            "prometheus@internal",
        );
    }
    out
}

/// The internal provider's routers, as Traefik lists them.
fn internal_routers(static_cfg: &StaticConfig, out: &mut BTreeMap<String, Value>) {
    for r in internal_router_list(static_cfg) {
        let mut v = json!({
            "entryPoints": [r.entry_point],
            "service": r.service,
            "rule": r.rule,
            "ruleSyntax": "default",
            "priority": r.priority,
            "status": ENABLED,
            "using": [r.entry_point],
        });
        if r.name == "dashboard" {
            v["middlewares"] = json!([
                "dashboard_redirect@internal",
                "dashboard_stripprefix@internal"
            ]);
        }
        out.insert(format!("{}@internal", r.name), v);
    }
}

/// A service's configuration under its type's key (`loadBalancer`,
/// `weighted`, ...), the services it names as written, as Traefik shows them.
fn service<'a>(s: &ServiceConfig, transports: impl Iterator<Item = &'a String>) -> Value {
    let health = |on: bool, v: &mut Value| {
        if on {
            v["healthCheck"] = json!({});
        }
    };
    let lb = match s {
        ServiceConfig::LoadBalancer(lb) => lb,
        ServiceConfig::Weighted(w) | ServiceConfig::HighestRandomWeight(w) => {
            let services: Vec<Value> = w
                .services
                .iter()
                .map(|c| json!({"name": c.name, "weight": c.weight}))
                .collect();
            let mut v = json!({ "services": services });
            if let Some(st) = &w.sticky {
                // Traefik's fields, empty ones left out as it does.
                let mut cookie = json!({ "path": st.path });
                if let Some(n) = &st.name {
                    cookie["name"] = json!(n);
                }
                if st.secure {
                    cookie["secure"] = json!(true);
                }
                if st.http_only {
                    cookie["httpOnly"] = json!(true);
                }
                if let Some(ss) = st.same_site {
                    cookie["sameSite"] = json!(ss.as_str().to_ascii_lowercase());
                }
                if st.max_age != 0 {
                    cookie["maxAge"] = json!(st.max_age);
                }
                if !st.domain.is_empty() {
                    cookie["domain"] = json!(st.domain);
                }
                v["sticky"] = json!({ "cookie": cookie });
            }
            health(w.health_check, &mut v);
            let key = if matches!(s, ServiceConfig::Weighted(_)) {
                "weighted"
            } else {
                "highestRandomWeight"
            };
            return json!({ key: v });
        }
        ServiceConfig::Failover(f) => {
            // Named as written, as Traefik shows them.
            let mut v = json!({"service": f.service, "fallback": f.fallback});
            health(f.health_check, &mut v);
            if let Some(e) = &f.errors {
                // Traefik's default -1 is shown; an empty status list is not.
                let max = e
                    .max_request_body_bytes
                    .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
                let mut errors = json!({ "maxRequestBodyBytes": max });
                if !e.status.is_empty() {
                    errors["status"] = json!(e.status);
                }
                v["errors"] = errors;
            }
            return json!({ "failover": v });
        }
        ServiceConfig::Mirroring(m) => {
            let mirrors: Vec<Value> = m
                .mirrors
                .iter()
                .map(|x| json!({"name": x.service, "percent": x.percent}))
                .collect();
            let mut v = json!({
                "service": m.service,
                "mirrorBody": m.mirror_body,
                "maxBodySize": m.max_body_size.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX)),
                "mirrors": mirrors,
            });
            health(m.health_check, &mut v);
            return json!({ "mirroring": v });
        }
    };
    let servers: Vec<Value> = lb
        .servers
        .iter()
        .map(|s| {
            let mut v = json!({"url": s.url});
            if let Some(w) = s.weight {
                v["weight"] = json!(w);
            }
            if s.preserve_path {
                v["preservePath"] = json!(true);
            }
            v
        })
        .collect();
    let mut v = json!({
        "strategy": strategy(lb.strategy),
        "passHostHeader": lb.pass_host_header,
    });
    if !servers.is_empty() {
        v["servers"] = json!(servers);
    }
    let mut transports = transports;
    if let Some(t) = &lb.servers_transport
        && transports.any(|n| n == t)
    {
        v["serversTransport"] = json!(crate::config::qualified(t).into_owned());
    }
    if let Some(h) = &lb.health_check {
        let mut hc = json!({
            "path": h.path,
            "interval": go_duration(h.interval),
            "unhealthyInterval": go_duration(h.unhealthy_interval),
            "timeout": go_duration(h.timeout),
            "method": h.method.as_str(),
            "followRedirects": h.follow_redirects,
        });
        if let Some(scheme) = h.scheme.as_str() {
            hc["scheme"] = json!(scheme);
        }
        // Traefik's default mode is shown.
        hc["mode"] = json!(if h.grpc { "grpc" } else { "http" });
        if let Some(p) = h.port {
            hc["port"] = json!(p);
        }
        if let Some(host) = &h.hostname {
            hc["hostname"] = json!(host);
        }
        if let Some(s) = h.status {
            hc["status"] = json!(s);
        }
        if !h.headers.is_empty() {
            let headers: Map<String, Value> = h
                .headers
                .iter()
                .map(|(n, val)| {
                    (
                        n.as_str().to_owned(),
                        json!(String::from_utf8_lossy(val.as_bytes())),
                    )
                })
                .collect();
            hc["headers"] = Value::Object(headers);
        }
        v["healthCheck"] = hc;
    }
    json!({ "loadBalancer": v })
}

/// The type key of a service's object (`loadbalancer` in the lists).
pub(super) fn service_type(v: &Value) -> Option<&'static str> {
    [
        ("loadBalancer", "loadbalancer"),
        ("weighted", "weighted"),
        ("highestRandomWeight", "highestrandomweight"),
        ("failover", "failover"),
        ("mirroring", "mirroring"),
    ]
    .into_iter()
    .find(|(key, _)| v.get(key).is_some())
    .map(|(_, t)| t)
}
