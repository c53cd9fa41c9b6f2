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
//! other service types) is one more arm in [`middleware`] or
//! [`service`], or one more map in [`Runtime`].

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::config::{
    DisabledElement, ElementKind, IpStrategy, MiddlewareConfig, RouterConfig, ServiceConfig,
    SourceCriterion, StaticConfig,
};
use crate::routing::RuleSyntax;
use crate::snapshot::Snapshot;
use crate::upstream::Strategy;

use super::json::go_duration;

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
        }
        rt.routers.insert(format!("{name}@file"), v);
    }
    for d in snap
        .disabled
        .iter()
        .filter(|d| d.kind == ElementKind::Router)
    {
        // A router whose rule did not parse is in no map: it is shown with
        // what is known of it, its errors.
        rt.routers
            .entry(format!("{}@file", d.name))
            .or_insert_with(|| json!({"status": DISABLED, "error": errors_of(d)}));
    }
    internal_routers(static_cfg, &mut rt.routers);

    for (name, s) in &config.services {
        let qualified = format!("{name}@file");
        let mut v = service(s, config.servers_transports.keys());
        v["status"] = json!(ENABLED);
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
        rt.middlewares.insert(format!("{name}@file"), v);
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
            format!("{}@file", d.name),
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
        v["service"] = json!(r.service);
    }
    if !r.middlewares.is_empty() {
        let names: Vec<String> = r.middlewares.iter().map(|m| format!("{m}@file")).collect();
        v["middlewares"] = json!(names);
    }
    if r.parsed.syntax() == RuleSyntax::V2 {
        v["ruleSyntax"] = json!("v2");
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
        v["serversTransport"] = json!(format!("{t}@file"));
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

/// A middleware's configuration under its type's key, as Traefik writes
/// the options (the compiled form is shown; options the compiled form
/// drops are named in the module's README section of differences).
fn middleware(m: &MiddlewareConfig) -> Value {
    let regex = |p: &crate::config::Pattern| json!(p.0.source());
    let (key, body) = match m {
        MiddlewareConfig::AddPrefix(a) => ("addPrefix", json!({"prefix": a.prefix})),
        // Users with their hashes, as Traefik's API lists them.
        MiddlewareConfig::BasicAuth(b) => {
            let mut v = json!({
                "users": b.users.iter().map(|(u, h)| format!("{u}:{}", h.as_written())).collect::<Vec<_>>(),
                "realm": b.realm,
            });
            if let Some(h) = &b.header_field {
                v["headerField"] = json!(h.as_str());
            }
            if b.remove_header {
                v["removeHeader"] = json!(true);
            }
            ("basicAuth", v)
        }
        MiddlewareConfig::ForwardAuth(f) => {
            let w = &f.written;
            let mut v = json!({"address": f.address.to_string(), "maxBodySize": w.max_body_size});
            if let Some(t) = f.trust_forward_header {
                v["trustForwardHeader"] = json!(t);
            }
            if !w.auth_response_headers.is_empty() {
                v["authResponseHeaders"] = json!(w.auth_response_headers);
            }
            if let Some(p) = &f.auth_response_headers_regex {
                v["authResponseHeadersRegex"] = regex(p);
            }
            if !w.auth_request_headers.is_empty() {
                v["authRequestHeaders"] = json!(w.auth_request_headers);
            }
            if !f.add_auth_cookies.is_empty() {
                v["addAuthCookiesToResponse"] = json!(f.add_auth_cookies);
            }
            if f.forward_body {
                v["forwardBody"] = json!(true);
            }
            if let Some(n) = w.max_response_body_size {
                v["maxResponseBodySize"] = json!(n);
            }
            if f.preserve_location_header {
                v["preserveLocationHeader"] = json!(true);
            }
            if f.preserve_request_method {
                v["preserveRequestMethod"] = json!(true);
            }
            if let Some(u) = &f.auth_signin_url {
                v["authSigninURL"] = json!(u.to_str().unwrap_or_default());
            }
            if let Some(h) = &w.header_field {
                v["headerField"] = json!(h);
            }
            ("forwardAuth", v)
        }
        MiddlewareConfig::EncodedCharacters(e) => {
            let allowed = |b: u8| !e.denied.contains(&b);
            (
                "encodedCharacters",
                json!({
                    "allowEncodedSlash": allowed(b'/'),
                    "allowEncodedBackSlash": allowed(b'\\'),
                    "allowEncodedNullCharacter": allowed(0),
                    "allowEncodedSemicolon": allowed(b';'),
                    "allowEncodedPercent": allowed(b'%'),
                    "allowEncodedQuestionMark": allowed(b'?'),
                    "allowEncodedHash": allowed(b'#'),
                }),
            )
        }
        MiddlewareConfig::StripPrefix(s) => {
            let mut b = json!({"prefixes": s.prefixes});
            if s.force_slash {
                b["forceSlash"] = json!(true);
            }
            ("stripPrefix", b)
        }
        MiddlewareConfig::StripPrefixRegex(s) => (
            "stripPrefixRegex",
            json!({"regex": s.regexes.iter().map(regex).collect::<Vec<_>>()}),
        ),
        MiddlewareConfig::ReplacePath(r) => ("replacePath", json!({"path": r.path})),
        MiddlewareConfig::ReplacePathRegex(r) => (
            "replacePathRegex",
            json!({"regex": regex(&r.regex), "replacement": r.replacement}),
        ),
        MiddlewareConfig::RedirectScheme(r) => {
            let mut b = json!({"scheme": r.scheme});
            if !r.port.is_empty() {
                b["port"] = json!(r.port);
            }
            if r.permanent {
                b["permanent"] = json!(true);
            }
            ("redirectScheme", b)
        }
        MiddlewareConfig::RedirectRegex(r) => {
            let mut b = json!({"regex": regex(&r.regex), "replacement": r.replacement});
            if r.permanent {
                b["permanent"] = json!(true);
            }
            ("redirectRegex", b)
        }
        MiddlewareConfig::Headers(h) => {
            let list = |hs: &[(http::HeaderName, Option<http::HeaderValue>)]| {
                let m: Map<String, Value> = hs
                    .iter()
                    .map(|(n, v)| {
                        let v = v
                            .as_ref()
                            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                            .unwrap_or_default();
                        (n.as_str().to_owned(), json!(v))
                    })
                    .collect();
                Value::Object(m)
            };
            let mut b = json!({});
            if !h.request.is_empty() {
                b["customRequestHeaders"] = list(&h.request);
            }
            if !h.response.is_empty() {
                b["customResponseHeaders"] = list(&h.response);
            }
            if let Some(s) = &h.secure {
                if !s.allowed_hosts.is_empty() {
                    b["allowedHosts"] = json!(s.allowed_hosts);
                }
                if s.is_development {
                    b["isDevelopment"] = json!(true);
                }
            }
            if let Some(c) = &h.cors {
                if c.allow_credentials {
                    b["accessControlAllowCredentials"] = json!(true);
                }
                if !c.origins.is_empty() {
                    b["accessControlAllowOriginList"] = json!(c.origins);
                }
            }
            ("headers", b)
        }
        MiddlewareConfig::InFlightReq(f) => {
            let mut b = json!({"amount": f.amount});
            if let Some(c) = source_criterion(&f.source) {
                b["sourceCriterion"] = c;
            }
            ("inFlightReq", b)
        }
        MiddlewareConfig::RateLimit(r) => {
            let mut b = json!({
                "average": r.average,
                "period": go_duration(r.period),
                "burst": r.burst,
            });
            if let Some(c) = source_criterion(&r.source) {
                b["sourceCriterion"] = c;
            }
            ("rateLimit", b)
        }
        MiddlewareConfig::Retry(r) => {
            let mut b = json!({"attempts": r.attempts});
            if !r.initial_interval.is_zero() {
                b["initialInterval"] = json!(go_duration(r.initial_interval));
            }
            if !r.timeout.is_zero() {
                b["timeout"] = json!(go_duration(r.timeout));
            }
            if !r.status.is_empty() {
                b["status"] = json!(status_ranges(r.status.ranges()));
            }
            if r.disable_on_network_error {
                b["disableRetryOnNetworkError"] = json!(true);
            }
            if r.non_idempotent {
                b["retryNonIdempotentMethod"] = json!(true);
            }
            b["maxRequestBodyBytes"] = json!(r.max_body);
            ("retry", b)
        }
        MiddlewareConfig::Errors(e) => {
            let ranges = status_ranges;
            let mut b = json!({"status": ranges(e.status.ranges()), "service": e.service});
            if !e.query.is_empty() {
                b["query"] = json!(e.query);
            }
            if !e.rewrites.is_empty() {
                let m: Map<String, Value> = e
                    .rewrites
                    .iter()
                    .map(|(r, to)| (ranges(std::slice::from_ref(r)).remove(0), json!(to)))
                    .collect();
                b["statusRewrites"] = Value::Object(m);
            }
            if let Some(h) = &e.request_headers {
                let names: Vec<&str> = h.iter().map(|n| n.as_str()).collect();
                b["errorRequestHeaders"] = json!(names);
            }
            ("errors", b)
        }
        MiddlewareConfig::IpAllowList(a) => {
            let ranges: Vec<String> = a.allowed.nets().iter().map(ToString::to_string).collect();
            let mut b = json!({"sourceRange": ranges});
            if a.reject != http::StatusCode::FORBIDDEN {
                b["rejectStatusCode"] = json!(a.reject.as_u16());
            }
            if let Some(st) = ip_strategy(&a.strategy) {
                b["ipStrategy"] = st;
            }
            ("ipAllowList", b)
        }
        MiddlewareConfig::Chain(names) => {
            let names: Vec<String> = names.iter().map(|n| format!("{n}@file")).collect();
            ("chain", json!({"middlewares": names}))
        }
    };
    let mut v = Map::new();
    v.insert(key.to_owned(), body);
    Value::Object(v)
}

/// Status ranges as written (`404`, `500-599`).
fn status_ranges(r: &[(u16, u16)]) -> Vec<String> {
    r.iter()
        .map(|&(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect()
}

/// An `ipStrategy` as Traefik shows it; `None` for the plain peer.
fn ip_strategy(s: &IpStrategy) -> Option<Value> {
    match s {
        IpStrategy::Peer { ipv6_subnet: None } => None,
        IpStrategy::Peer {
            ipv6_subnet: Some(n),
        } => Some(json!({"ipv6Subnet": n})),
        IpStrategy::Depth { depth, .. } => Some(json!({"depth": depth})),
        IpStrategy::Excluded(excluded) => {
            let ex: Vec<String> = excluded.nets().iter().map(ToString::to_string).collect();
            Some(json!({"excludedIPs": ex}))
        }
    }
}

/// A `sourceCriterion` as written: `None` when it is the default peer.
fn source_criterion(c: &SourceCriterion) -> Option<Value> {
    match c {
        SourceCriterion::Ip(s) => Some(json!({"ipStrategy": ip_strategy(s).unwrap_or(json!({}))})),
        SourceCriterion::Header(h) => Some(json!({"requestHeaderName": h.as_str()})),
        SourceCriterion::Host => Some(json!({"requestHost": true})),
    }
}

/// The type of a middleware's object, lower-cased as Traefik lists it
/// (`stripprefix`): its one key that is not a status field.
pub(super) fn middleware_type(v: &Value) -> Option<String> {
    v.as_object()?
        .keys()
        .find(|k| !matches!(k.as_str(), "status" | "usedBy" | "error"))
        .map(|k| k.to_lowercase())
}
