//! Compiling a validated configuration into a [`Snapshot`]: services
//! resolved to upstream targets (with their stable pool keys and server
//! ids), internal services (`api@internal`) marked for `admin`, routers
//! grouped per entrypoint and indexed, each router with its middleware
//! chain.
//!
//! Control plane only: runs at start and on reload, never per request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use http::uri::Authority;

use crate::admin::Internal;
use crate::config::{DynamicConfig, ServersTransportConfig, ServiceConfig, StaticConfig};
use crate::middleware::Chain;
use crate::routing::{RouteEntry, Router};
use crate::snapshot::{EntryPointRoutes, RouteTarget, RouterInfo, Service, Snapshot};
use crate::upstream::{
    Balancer, PoolKeys, ServerIds, ServerStates, TransportSettings, UpstreamTarget,
};

fn transport_settings(t: &ServersTransportConfig) -> TransportSettings {
    let nz = |d: Duration| (!d.is_zero()).then_some(d);
    TransportSettings {
        dial_timeout: t.forwarding_timeouts.dial_timeout,
        response_header_timeout: nz(t.forwarding_timeouts.response_header_timeout),
        idle_conn_timeout: nz(t.forwarding_timeouts.idle_conn_timeout),
        max_idle_per_host: t.max_idle_conns_per_host as usize,
        h2_read_idle_timeout: nz(t.forwarding_timeouts.read_idle_timeout),
        h2_ping_timeout: t.forwarding_timeouts.ping_timeout,
    }
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
/// `generation`.
pub fn compile(
    static_cfg: &StaticConfig,
    dynamic: &DynamicConfig,
    generation: u64,
    ids: &Identities,
) -> Snapshot {
    let default_transport = Arc::new(transport_settings(&ServersTransportConfig::default()));
    let transports: HashMap<&str, Arc<TransportSettings>> = dynamic
        .servers_transports
        .iter()
        .map(|(name, t)| (name.as_str(), Arc::new(transport_settings(t))))
        .collect();

    let mut service_index = HashMap::new();
    let mut services = Vec::with_capacity(dynamic.services.len());
    for (name, svc) in &dynamic.services {
        let ServiceConfig::LoadBalancer(lb) = svc;
        let service_name: Arc<str> = Arc::from(format!("{name}@file"));
        let transport = lb
            .servers_transport
            .as_deref()
            .and_then(|t| transports.get(t).cloned())
            .unwrap_or_else(|| Arc::clone(&default_transport));
        let mut servers = Vec::with_capacity(lb.servers.len());
        let mut members = Vec::with_capacity(lb.servers.len());
        for s in &lb.servers {
            let Some(authority) = s.uri.authority().cloned() else {
                continue;
            };
            let authority = with_default_port(authority);
            let id = ids.servers.id(&service_name, s.url.as_str());
            let url: Arc<str> = Arc::from(s.url.as_str());
            members.push((ids.states.get(id), s.weight.unwrap_or(1), Arc::clone(&url)));
            let base_path = s.uri.path().trim_end_matches('/');
            servers.push(Arc::new(UpstreamTarget {
                id,
                key: ids.pools.key(s.h2c, authority.as_str(), &transport),
                socket_addr: authority.as_str().parse().ok(),
                host_header: HeaderValue::from_str(authority.as_str())
                    .expect("an authority is a valid header value"),
                authority,
                h2c: s.h2c,
                base_path: base_path.into(),
                transport: Arc::clone(&transport),
                url,
            }));
        }
        service_index.insert(name.as_str(), services.len() as u32);
        services.push(Service {
            name: service_name,
            servers,
            balancer: Balancer::new(lb.strategy, members),
            pass_host_header: lb.pass_host_header,
            health_check: lb.health_check.clone().map(Arc::new),
            internal: None,
        });
    }
    // The internal services routers name (`api@internal`), each once.
    for r in dynamic.routers.values().filter(|r| !r.disabled) {
        if let Some(kind) = Internal::from_service(&r.service)
            && !service_index.contains_key(r.service.as_str())
        {
            service_index.insert(r.service.as_str(), services.len() as u32);
            services.push(Service {
                name: Arc::from(r.service.as_str()),
                servers: Vec::new(),
                balancer: Balancer::new(Default::default(), Vec::new()),
                pass_host_header: true,
                health_check: None,
                internal: Some(kind),
            });
        }
    }

    let default_eps = static_cfg.default_entry_points();
    let mut routers = Vec::with_capacity(dynamic.routers.len());
    let mut per_ep: Vec<Vec<RouteEntry<RouteTarget>>> =
        static_cfg.entry_points.iter().map(|_| Vec::new()).collect();
    for (name, r) in &dynamic.routers {
        let service = if r.disabled {
            RouterInfo::NO_SERVICE
        } else if let Some(&service) = service_index.get(r.service.as_str()) {
            service
        } else {
            // The validator disables routers without a service.
            continue;
        };
        let router = routers.len() as u32;
        let chain = if r.disabled {
            Chain::compile(&[], &dynamic.middlewares)
        } else {
            Chain::compile(&r.middlewares, &dynamic.middlewares)
        };
        routers.push(RouterInfo {
            name: Arc::from(format!("{name}@file")),
            service,
            chain,
            disabled: r.disabled,
        });
        let priority = r.priority.unwrap_or_else(|| r.parsed.default_priority());
        let eps = if r.entry_points.is_empty() {
            &default_eps
        } else {
            &r.entry_points
        };
        for (i, ep) in static_cfg.entry_points.iter().enumerate() {
            if eps.contains(&ep.name) {
                per_ep[i].push(RouteEntry {
                    name: name.clone(),
                    rule: r.parsed.clone(),
                    priority,
                    value: RouteTarget { router, service },
                });
            }
        }
    }
    Snapshot {
        generation,
        entrypoints: per_ep
            .into_iter()
            .map(|entries| EntryPointRoutes {
                router: Router::new(entries),
            })
            .collect(),
        routers,
        services,
        disabled: dynamic.disabled.clone(),
        config: Arc::new(dynamic.clone()),
    }
}

/// `host` → `host:80`: the dialled address always has a port.
fn with_default_port(a: Authority) -> Authority {
    if a.port_u16().is_some() {
        return a;
    }
    Authority::try_from(format!("{}:80", a.as_str())).unwrap_or(a)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
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
        compile(&static_cfg, &dynamic, generation, ids)
    }

    fn servers(snap: &Snapshot, service: &str) -> Vec<(ServerId, PoolKey)> {
        let s = snap.services.iter().find(|s| &*s.name == service).unwrap();
        s.servers.iter().map(|t| (t.id, t.key)).collect()
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
