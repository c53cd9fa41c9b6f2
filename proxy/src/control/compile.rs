//! Compiling a validated configuration into a [`Snapshot`]: services
//! resolved to upstream targets (with their stable pool keys and server
//! ids), internal services (`api@internal`) marked for `admin`, routers
//! grouped per entrypoint (TLS routers apart from plain ones) and indexed,
//! each router with its middleware chain and TLS options, the SNI →
//! options table of each entrypoint, and the routers of entrypoint
//! redirections.
//!
//! Control plane only: runs at start and on reload, never per request.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use http::uri::Authority;

use crate::admin::Internal;
use crate::config::{
    DynamicConfig, LoadBalancerConfig, ServersTransportConfig, ServiceConfig, StaticConfig,
    WeightedConfig,
};
use crate::forward::Redirect;
use crate::middleware::{Build, Chain};
use crate::routing::{RouteEntry, Router, RuleSyntax, parse_rule_with};
use crate::snapshot::{EntryPointRoutes, RouteTarget, RouterInfo, Snapshot};
use crate::tls::{DEFAULT_OPTIONS, SniOptions, TlsSnapshot, UpstreamClients};
use crate::upstream::{
    Balancer, Child, Children, Failover, FailoverOnErrors, LoadBalancer, Mirroring, PassiveCheck,
    PoolKeys, RoundRobin, ServerIds, ServerStates, Service, ServiceKind, Sticky, TransportSettings,
    UpstreamTarget, UpstreamTls,
};

fn transport_settings(t: &ServersTransportConfig) -> TransportSettings {
    let nz = |d: Duration| (!d.is_zero()).then_some(d);
    TransportSettings {
        dial_timeout: t.forwarding_timeouts.dial_timeout,
        response_header_timeout: nz(t.forwarding_timeouts.response_header_timeout),
        idle_conn_timeout: nz(t.forwarding_timeouts.idle_conn_timeout),
        max_idle_per_host: idle_per_worker(t.max_idle_conns_per_host, crate::rt::workers()),
        h2_read_idle_timeout: nz(t.forwarding_timeouts.read_idle_timeout),
        h2_ping_timeout: t.forwarding_timeouts.ping_timeout,
    }
}

/// `maxIdleConnsPerHost` as each worker's share: Traefik's limit is for
/// the whole process, and each worker keeps its own pool, so the limit is
/// divided among them (rounded up: a worker keeps at least one). 0 is
/// Go's default of 2, as Traefik hands it to Go's transport.
fn idle_per_worker(limit: u32, workers: usize) -> usize {
    let limit = if limit == 0 { 2 } else { limit as usize };
    limit.div_ceil(workers.max(1))
}

/// The identities that outlive one compiled configuration: handed out by
/// [`compile`], the same for the same server in every generation.
#[derive(Debug, Default)]
pub struct Identities {
    /// Connection pools.
    pub pools: PoolKeys,
    /// Servers of services.
    pub servers: ServerIds,
    /// The run-time state of each server (health, load), by server id.
    pub states: ServerStates,
}

/// Compiles `dynamic` (already validated: rules parsed, references
/// resolved) for the entrypoints of `static_cfg` into generation
/// `generation`, with the TLS options of `tls` and the TLS client
/// configurations of `upstream`.
pub fn compile(
    static_cfg: &StaticConfig,
    dynamic: &DynamicConfig,
    generation: u64,
    ids: &Identities,
    tls: TlsSnapshot,
    upstream: &UpstreamClients,
) -> Snapshot {
    let default_transport = Arc::new(transport_settings(&ServersTransportConfig::default()));
    let transports: HashMap<&str, Arc<TransportSettings>> = dynamic
        .servers_transports
        .iter()
        .map(|(name, t)| (name.as_str(), Arc::new(transport_settings(t))))
        .collect();

    // Every service's index first: composite services name others.
    let mut service_index: HashMap<&str, u32> = dynamic
        .services
        .keys()
        .enumerate()
        .map(|(i, name)| (name.as_str(), i as u32))
        .collect();
    let mut services = Vec::with_capacity(dynamic.services.len());
    for (name, svc) in &dynamic.services {
        let service_name: Arc<str> = Arc::from(crate::config::qualified(name).into_owned());
        let kind = match svc {
            ServiceConfig::LoadBalancer(lb) => {
                let transport = lb
                    .servers_transport
                    .as_deref()
                    .and_then(|t| transports.get(t).cloned())
                    .unwrap_or_else(|| Arc::clone(&default_transport));
                ServiceKind::LoadBalancer(load_balancer(
                    lb,
                    &service_name,
                    transport,
                    dynamic,
                    upstream,
                    ids,
                ))
            }
            ServiceConfig::Weighted(w) => {
                let sticky = w.sticky.as_ref().map(|st| {
                    Sticky::new(
                        st,
                        &service_name,
                        w.services.iter().map(|c| c.name.as_str()),
                    )
                });
                ServiceKind::Weighted(children(w, &service_index, sticky))
            }
            ServiceConfig::HighestRandomWeight(w) => {
                ServiceKind::HighestRandomWeight(children(w, &service_index, None))
            }
            ServiceConfig::Failover(f) => ServiceKind::Failover(Failover {
                main: service_index[f.service.as_str()],
                fallback: service_index[f.fallback.as_str()],
                follow_fallback: f.health_check,
                // No status: no effect, as in Traefik.
                errors: f.errors.as_ref().filter(|e| !e.ranges.is_empty()).map(|e| {
                    FailoverOnErrors {
                        ranges: e.ranges.clone(),
                        max_body: e.max_request_body_bytes,
                        layered: false,
                    }
                }),
            }),
            ServiceConfig::Mirroring(m) => ServiceKind::Mirroring(Mirroring::new(
                service_index[m.service.as_str()],
                m.mirrors
                    .iter()
                    .map(|x| (service_index[x.service.as_str()], x.percent)),
                m.mirror_body,
                m.max_body_size,
                m.health_check,
            )),
        };
        let chain = match dynamic.service_middlewares.get(name) {
            None => Chain::default(),
            Some(names) => Chain::compile(
                names,
                &dynamic.middlewares,
                Build {
                    pools: &ids.pools,
                    servers: &ids.servers,
                    clients: upstream,
                    services: &service_index,
                },
            ),
        };
        services.push(Service {
            name: service_name,
            kind,
            chain,
        });
    }
    mark_layered(&mut services);
    // The internal services routers name (`api@internal`), each once.
    for r in dynamic.routers.values().filter(|r| !r.disabled) {
        if let Some(kind) = Internal::from_service(&r.service)
            && !service_index.contains_key(r.service.as_str())
        {
            service_index.insert(r.service.as_str(), services.len() as u32);
            services.push(Service {
                name: Arc::from(r.service.as_str()),
                kind: ServiceKind::Internal(kind),
                chain: Chain::default(),
            });
        }
    }

    let default_eps = static_cfg.default_entry_points();
    let n_eps = static_cfg.entry_points.len();
    let mut routers = Vec::with_capacity(dynamic.routers.len());
    let mut plain: Vec<Vec<RouteEntry<RouteTarget>>> = (0..n_eps).map(|_| Vec::new()).collect();
    let mut secure: Vec<Vec<TlsEntry>> = (0..n_eps).map(|_| Vec::new()).collect();
    // Each router's index, for the parents' child tables.
    let mut router_index: HashMap<&str, u32> = HashMap::new();
    for (name, r) in &dynamic.routers {
        let parent = !r.children.is_empty();
        let service = if r.disabled || parent {
            RouterInfo::NO_SERVICE
        } else if let Some(&service) = service_index.get(r.service.as_str()) {
            service
        } else {
            // The validator disables routers without a service.
            continue;
        };
        router_index.insert(name.as_str(), routers.len() as u32);
        let router = routers.len() as u32;
        let build = Build {
            pools: &ids.pools,
            servers: &ids.servers,
            clients: upstream,
            services: &service_index,
        };
        let chain = if r.disabled {
            Chain::compile(&[], &dynamic.middlewares, build)
        } else {
            let denied = r.denied_encoded.as_deref().unwrap_or_default();
            Chain::compile_guarded(denied, &r.middlewares, &dynamic.middlewares, build)
        };
        routers.push(RouterInfo::new(
            Arc::from(crate::config::qualified(name).into_owned()),
            service,
            chain,
            None,
            r.disabled,
            None,
        ));
        // A child router is served under its parents only.
        if !r.parent_refs.is_empty() {
            continue;
        }
        let priority = r.priority.unwrap_or_else(|| r.parsed.default_priority());
        let eps = if r.entry_points.is_empty() {
            &default_eps
        } else {
            &r.entry_points
        };
        for (i, ep) in static_cfg.entry_points.iter().enumerate() {
            if !eps.contains(&ep.name) {
                continue;
            }
            // A TLS router; an entrypoint's `http.tls` was given to the
            // routers without their own `tls` by its model
            // (`config::apply_entry_point_models`, at load).
            let options = r.tls.as_ref().map(|t| t.options.as_deref());
            let mut entry = RouteEntry {
                name: name.clone(),
                rule: r.parsed.clone(),
                priority,
                value: RouteTarget {
                    router,
                    service,
                    tls_options: RouteTarget::PLAIN,
                },
            };
            match options {
                None => plain[i].push(entry),
                Some(o) => {
                    let o = o.unwrap_or(DEFAULT_OPTIONS);
                    // Options that are not there were disabled by an
                    // error, and their router with them.
                    entry.value.tls_options = tls.index_of(o).unwrap_or(RouteTarget::REFUSED);
                    let hosts = r.parsed.hosts().into_iter().map(str::to_owned).collect();
                    secure[i].push(TlsEntry { entry, hosts });
                }
            }
        }
    }
    child_tables(dynamic, &router_index, &mut routers);
    for (i, ep) in static_cfg.entry_points.iter().enumerate() {
        let Some(to) = &ep.redirect else { continue };
        let rule = parse_rule_with("HostRegexp(`^.+$`)", RuleSyntax::V3)
            .expect("the redirection rule parses");
        let name = format!("{}-to-{}", ep.name, to.to.trim_start_matches(':'));
        let router = routers.len() as u32;
        routers.push(RouterInfo::new(
            Arc::from(format!("{name}@internal")),
            RouterInfo::NO_SERVICE,
            Chain::default(),
            Some(Redirect::new(&to.scheme, to.port, to.permanent)),
            false,
            None,
        ));
        plain[i].push(RouteEntry {
            name,
            rule,
            priority: to.priority,
            value: RouteTarget {
                router,
                service: RouterInfo::NO_SERVICE,
                tls_options: RouteTarget::PLAIN,
            },
        });
    }
    let entrypoints = plain
        .into_iter()
        .zip(secure)
        .zip(&static_cfg.entry_points)
        .map(|((plain, mut secure), ep)| {
            let sni = resolve_sni(&ep.name, &mut secure, &tls);
            EntryPointRoutes {
                router: Router::new(plain),
                tls_router: Router::new(secure.into_iter().map(|t| t.entry).collect()),
                sni,
            }
        })
        .collect();
    Snapshot {
        generation,
        entrypoints,
        routers,
        services,
        tls,
        disabled: dynamic.disabled.clone(),
        config: Arc::new(dynamic.clone()),
    }
}

/// Gives each parent router (served: not disabled) the index of its
/// children, as Traefik builds a parent's child muxer: each child by its
/// rule and priority (a disabled one keeps its place and answers 503).
fn child_tables(dynamic: &DynamicConfig, index: &HashMap<&str, u32>, routers: &mut [RouterInfo]) {
    for (name, r) in &dynamic.routers {
        let Some(&at) = index.get(name.as_str()) else {
            continue;
        };
        if r.disabled || r.children.is_empty() {
            continue;
        }
        let entries = r
            .children
            .iter()
            .filter_map(|c| {
                let child = dynamic.routers.get(c)?;
                let router = *index.get(c.as_str())?;
                Some(RouteEntry {
                    name: c.clone(),
                    rule: child.parsed.clone(),
                    priority: child
                        .priority
                        .unwrap_or_else(|| child.parsed.default_priority()),
                    value: RouteTarget {
                        router,
                        service: routers[router as usize].service,
                        tls_options: RouteTarget::PLAIN,
                    },
                })
            })
            .collect();
        routers[at as usize].set_children(Router::new(entries));
    }
}

fn load_balancer(
    lb: &LoadBalancerConfig,
    service_name: &Arc<str>,
    transport: Arc<TransportSettings>,
    dynamic: &DynamicConfig,
    upstream: &UpstreamClients,
    ids: &Identities,
) -> LoadBalancer {
    let tls_settings = lb
        .servers_transport
        .as_deref()
        .and_then(|t| dynamic.servers_transports.get(t))
        .map(|t| &t.tls);
    let client = lb
        .servers_transport
        .as_deref()
        .and_then(|t| upstream.by_transport.get(t))
        .unwrap_or(&upstream.default);
    let mut servers = Vec::with_capacity(lb.servers.len());
    let mut members = Vec::with_capacity(lb.servers.len());
    for s in &lb.servers {
        let Some(authority) = s.uri.authority().cloned() else {
            continue;
        };
        let authority = with_default_port(authority, if s.tls { 443 } else { 80 });
        let tls = if s.tls {
            let host = s.uri.host().unwrap_or_default();
            let default = crate::config::UpstreamTlsConfig::default();
            match crate::tls::client::server_name(tls_settings.unwrap_or(&default), host) {
                Ok(name) => Some(UpstreamTls::new(Arc::clone(client), name)),
                // `serverName` was checked when the transport was read; a
                // URL host is always a valid name.
                Err(e) => {
                    tracing::error!(url = %s.url, error = %e, "server skipped");
                    continue;
                }
            }
        } else {
            None
        };
        let scheme = match (s.h2c, s.tls) {
            (true, _) => "h2c".to_owned(),
            (_, true) => format!(
                "https|{}|{:?}",
                lb.servers_transport.as_deref().unwrap_or(""),
                tls_settings
            ),
            _ => "http".to_owned(),
        };
        let id = ids.servers.id(service_name, s.url.as_str());
        let url: Arc<str> = Arc::from(s.url.as_str());
        members.push((ids.states.get(id), s.weight.unwrap_or(1), Arc::clone(&url)));
        let base_path = s.uri.path().trim_end_matches('/');
        servers.push(Arc::new(UpstreamTarget {
            id,
            key: ids.pools.key(&scheme, authority.as_str(), &transport),
            socket_addr: authority.as_str().parse().ok(),
            host_header: HeaderValue::from_str(authority.as_str())
                .expect("an authority is a valid header value"),
            authority,
            h2c: s.h2c,
            tls,
            base_path: base_path.into(),
            transport: Arc::clone(&transport),
            url,
        }));
    }
    let sticky = lb
        .sticky
        .as_ref()
        .map(|st| Sticky::new(st, service_name, servers.iter().map(|t| &*t.url)));
    let passive = lb.passive_health_check.as_ref().map(|p| {
        PassiveCheck::new(
            p,
            Arc::clone(service_name),
            servers.len(),
            lb.health_check.is_some(),
        )
    });
    LoadBalancer {
        servers,
        passive,
        balancer: Balancer::new(lb.strategy, members),
        pass_host_header: lb.pass_host_header,
        health_check: lb.health_check.clone().map(Arc::new),
        sticky,
    }
}

/// The children of a weighted or highestRandomWeight service; they exist
/// (the validator disables a service naming one that does not).
/// Marks the mirrorings whose main service, and the failovers with
/// `errors` whose main service or fallback, has middlewares of its own or
/// a service with them below it: those are served at their place, so that
/// each service's middlewares wrap only what is below it.
fn mark_layered(services: &mut [Service]) {
    // Whether a request's resolution from service `at` meets middlewares
    // (its own or a service's below it); cycles are refused by the
    // configuration check, `seen` guards anyway.
    fn below(services: &[Service], at: u32, memo: &mut [Option<bool>], seen: &mut [bool]) -> bool {
        let i = at as usize;
        if let Some(known) = memo[i] {
            return known;
        }
        if std::mem::replace(&mut seen[i], true) {
            return false;
        }
        let s = &services[i];
        let mut layered = !s.chain.is_empty();
        let mut child = |c: u32| layered |= below(services, c, memo, seen);
        match &s.kind {
            ServiceKind::Weighted(c) | ServiceKind::HighestRandomWeight(c) => {
                c.members.iter().for_each(|m| child(m.service));
            }
            ServiceKind::Failover(f) => {
                child(f.main);
                child(f.fallback);
            }
            // The copies are sent apart, each through its mirror's own.
            ServiceKind::Mirroring(m) => child(m.main),
            ServiceKind::LoadBalancer(_) | ServiceKind::Internal(_) => {}
        }
        memo[i] = Some(layered);
        layered
    }
    let mut memo = vec![None; services.len()];
    let mut seen = vec![false; services.len()];
    let mut marks = Vec::new();
    for (i, s) in services.iter().enumerate() {
        let mut layered = |at| below(services, at, &mut memo, &mut seen);
        let mark = match &s.kind {
            ServiceKind::Mirroring(m) => layered(m.main),
            ServiceKind::Failover(f) if f.errors.is_some() => layered(f.main) | layered(f.fallback),
            _ => false,
        };
        if mark {
            marks.push(i);
        }
    }
    for i in marks {
        match &mut services[i].kind {
            ServiceKind::Mirroring(m) => m.layered = true,
            ServiceKind::Failover(Failover {
                errors: Some(e), ..
            }) => e.layered = true,
            _ => {}
        }
    }
}

fn children(w: &WeightedConfig, index: &HashMap<&str, u32>, sticky: Option<Sticky>) -> Children {
    let weights: Vec<u32> = w.services.iter().map(|c| c.weight).collect();
    Children {
        members: w
            .services
            .iter()
            .map(|c| Child {
                service: index[c.service.as_str()],
                weight: c.weight,
                name: Arc::from(c.name.as_str()),
            })
            .collect(),
        rr: RoundRobin::weighted(&weights),
        health_check: w.health_check,
        sticky,
    }
}

/// A TLS router on one entrypoint, with the hosts of its rule.
struct TlsEntry {
    entry: RouteEntry<RouteTarget>,
    hosts: Vec<String>,
}

/// The SNI → TLS options table of one entrypoint, as Traefik arbitrates
/// it: a router without a host in its rule cannot have its options chosen
/// by SNI, and a host that two routers serve with different options is
/// served with the default ones; those routers then use the default
/// options too (both warned about).
fn resolve_sni(ep: &str, routers: &mut [TlsEntry], tls: &TlsSnapshot) -> SniOptions {
    let name = |i: u32| tls.options.get(i as usize).map_or("?", |o| &*o.name);
    for r in routers.iter_mut() {
        if r.hosts.is_empty() && r.entry.value.tls_options == RouteTarget::REFUSED {
            // Disabled (it answers 503): no SNI to refuse.
            r.entry.value.tls_options = 0;
        } else if r.hosts.is_empty() && r.entry.value.tls_options != 0 {
            tracing::warn!(
                entrypoint = ep,
                router = %r.entry.name,
                "no domain in the rule of router {:?}: its TLS options {:?} cannot be chosen by SNI; the default options are used",
                r.entry.name,
                name(r.entry.value.tls_options),
            );
            r.entry.value.tls_options = 0;
        }
    }
    loop {
        let mut by_host: HashMap<&str, BTreeSet<u32>> = HashMap::new();
        for r in routers.iter() {
            for h in &r.hosts {
                by_host
                    .entry(h.as_str())
                    .or_default()
                    .insert(r.entry.value.tls_options);
            }
        }
        let conflicted: Vec<String> = by_host
            .iter()
            .filter(|(_, o)| o.len() > 1)
            .map(|(h, _)| (*h).to_owned())
            .collect();
        if conflicted.is_empty() {
            let mut sni = SniOptions::default();
            for (h, o) in by_host {
                if let Some(&o) = o.first() {
                    sni.insert(h, o);
                }
            }
            return sni;
        }
        for r in routers.iter_mut() {
            if r.entry.value.tls_options != 0 && r.hosts.iter().any(|h| conflicted.contains(h)) {
                tracing::warn!(
                    entrypoint = ep,
                    router = %r.entry.name,
                    "router {:?}: its TLS options {:?} conflict with another router's on the same host and entrypoint; the default options are used",
                    r.entry.name,
                    name(r.entry.value.tls_options),
                );
                r.entry.value.tls_options = 0;
            }
        }
    }
}

/// `host` → `host:port`: the dialled address always has a port (80, or
/// 443 for `https`).
fn with_default_port(a: Authority, port: u16) -> Authority {
    if a.port_u16().is_some() {
        return a;
    }
    Authority::try_from(format!("{}:{port}", a.as_str())).unwrap_or(a)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn max_idle_conns_per_host_is_divided_among_the_workers() {
        // Traefik's default 200 over 2 workers, an odd limit rounded up,
        // at least one per worker, and Go's 2 for 0.
        assert_eq!(idle_per_worker(200, 2), 100);
        assert_eq!(idle_per_worker(7, 2), 4);
        assert_eq!(idle_per_worker(1, 8), 1);
        assert_eq!(idle_per_worker(0, 1), 2);
        assert_eq!(idle_per_worker(0, 4), 1);
    }
    use crate::config::{Format, parse_dynamic, parse_static};
    use crate::upstream::{PoolKey, ServerId};

    fn snapshot(dynamic: &str, generation: u64, ids: &Identities) -> Snapshot {
        let (static_cfg, _) = parse_static(
            "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\n",
            Format::Yaml,
            Path::new("traefik.yml"),
        )
        .unwrap();
        let (dynamic, _) = parse_dynamic(
            dynamic,
            Format::Yaml,
            Path::new("dynamic.yml"),
            &["web".to_string()],
            static_cfg.default_rule_syntax,
        )
        .unwrap();
        let prepared = crate::tls::TlsRuntime::new()
            .unwrap()
            .prepare(&static_cfg.entry_points, &dynamic)
            .unwrap();
        compile(
            &static_cfg,
            &dynamic,
            generation,
            ids,
            prepared.tls,
            &prepared.upstream,
        )
    }

    fn servers(snap: &Snapshot, service: &str) -> Vec<(ServerId, PoolKey)> {
        let s = snap.services.iter().find(|s| &*s.name == service).unwrap();
        let ServiceKind::LoadBalancer(lb) = &s.kind else {
            panic!("{service} is not a load balancer")
        };
        lb.servers.iter().map(|t| (t.id, t.key)).collect()
    }

    const TWO_SERVICES: &str = "http:\n  routers:\n    r:\n      rule: PathPrefix(`/`)\n      service: api\n  services:\n    api:\n      loadBalancer:\n        servers:\n          - url: http://10.0.0.1\n          - url: http://10.0.0.2\n    web:\n      loadBalancer:\n        servers:\n          - url: http://10.0.0.1\n";

    #[test]
    fn servers_keep_their_identity_across_generations_and_routers_get_a_chain() {
        let ids = Identities::default();
        let one = snapshot(TWO_SERVICES, 1, &ids);
        assert_eq!(
            servers(&one, "api@file"),
            servers(&snapshot(TWO_SERVICES, 2, &ids), "api@file")
        );
        let (api, web) = (servers(&one, "api@file"), servers(&one, "web@file"));
        assert_ne!(api[0].0, web[0].0, "one URL in two services: two servers");
        assert_eq!(api[0].1, web[0].1, "...sharing one pool");
        assert_eq!(ids.servers.len(), 3);
        assert!(one.routers.iter().all(|r| r.chain.is_empty()));

        // Editing the transport moves the servers to new pools; they stay
        // the same servers.
        let edited = TWO_SERVICES.replace(
            "    web:\n      loadBalancer:\n",
            "    web:\n      loadBalancer:\n        serversTransport: slow\n",
        ) + "  serversTransports:\n    slow:\n      forwardingTimeouts:\n        dialTimeout: 1s\n";
        let three = snapshot(&edited, 3, &ids);
        let web3 = servers(&three, "web@file");
        assert_eq!(web3[0].0, web[0].0);
        assert_ne!(web3[0].1, web[0].1);
        assert_eq!(servers(&three, "api@file"), api);
    }
}
