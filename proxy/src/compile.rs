//! Compiling a validated configuration into a [`Snapshot`]: rules parsed,
//! services resolved to upstream targets, routers grouped per entrypoint
//! and indexed.
//!
//! Control plane only: runs at start and on reload, never per request.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use http::HeaderValue;
use http::uri::Authority;

use crate::config::{DynamicConfig, ServersTransportConfig, ServiceConfig, StaticConfig};
use crate::routing::{RouteEntry, Router};
use crate::snapshot::{EntryPointRoutes, RouteTarget, RouterInfo, Service, Snapshot};
use crate::upstream::{PoolKey, RoundRobin, TransportSettings, UpstreamTarget};

/// Stable pool keys: the same server with the same transport settings gets
/// the same key in every configuration generation, so its pooled
/// connections survive reloads.
#[derive(Debug, Default)]
pub struct PoolKeys {
    keys: DashMap<String, PoolKey>,
    next: AtomicU32,
}

impl PoolKeys {
    fn key(&self, h2c: bool, authority: &str, t: &TransportSettings) -> PoolKey {
        let id = format!(
            "{}|{authority}|{:?}|{:?}|{}",
            if h2c { "h2c" } else { "http" },
            t.dial_timeout,
            t.idle_conn_timeout,
            t.max_idle_per_host
        );
        *self
            .keys
            .entry(id)
            .or_insert_with(|| PoolKey(self.next.fetch_add(1, Ordering::Relaxed)))
    }

    /// The idle timeout of each key, for the workers' pool sweeper.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key was handed out yet.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn transport_settings(t: &ServersTransportConfig) -> TransportSettings {
    let nz = |d: Duration| (!d.is_zero()).then_some(d);
    TransportSettings {
        dial_timeout: t.forwarding_timeouts.dial_timeout,
        response_header_timeout: nz(t.forwarding_timeouts.response_header_timeout),
        idle_conn_timeout: nz(t.forwarding_timeouts.idle_conn_timeout),
        max_idle_per_host: t.max_idle_conns_per_host as usize,
    }
}

/// Compiles `dynamic` (already validated: rules parsed, references
/// resolved) for the entrypoints of `static_cfg` into generation
/// `generation`.
pub fn compile(
    static_cfg: &StaticConfig,
    dynamic: &DynamicConfig,
    generation: u64,
    keys: &PoolKeys,
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
        let transport = lb
            .servers_transport
            .as_deref()
            .and_then(|t| transports.get(t).cloned())
            .unwrap_or_else(|| Arc::clone(&default_transport));
        let mut servers = Vec::with_capacity(lb.servers.len());
        let mut weights = Vec::with_capacity(lb.servers.len());
        for s in &lb.servers {
            let Some(authority) = s.uri.authority().cloned() else {
                continue;
            };
            let authority = with_default_port(authority);
            weights.push(s.weight.unwrap_or(1));
            let base_path = s.uri.path().trim_end_matches('/');
            servers.push(Arc::new(UpstreamTarget {
                key: keys.key(s.h2c, authority.as_str(), &transport),
                socket_addr: authority.as_str().parse().ok(),
                host_header: HeaderValue::from_str(authority.as_str())
                    .expect("an authority is a valid header value"),
                authority,
                h2c: s.h2c,
                base_path: base_path.into(),
                transport: Arc::clone(&transport),
                url: Arc::from(s.url.as_str()),
            }));
        }
        service_index.insert(name.as_str(), services.len() as u32);
        services.push(Service {
            name: Arc::from(format!("{name}@file")),
            servers,
            balancer: RoundRobin::weighted(&weights),
            pass_host_header: lb.pass_host_header,
        });
    }

    let default_eps = static_cfg.default_entry_points();
    let mut routers = Vec::with_capacity(dynamic.routers.len());
    let mut per_ep: Vec<Vec<RouteEntry<RouteTarget>>> =
        static_cfg.entry_points.iter().map(|_| Vec::new()).collect();
    for (name, r) in &dynamic.routers {
        let Some(&service) = service_index.get(r.service.as_str()) else {
            // The validator already reported unknown services.
            continue;
        };
        let router = routers.len() as u32;
        routers.push(RouterInfo {
            name: Arc::from(format!("{name}@file")),
            service,
        });
        let priority = r.priority.unwrap_or(r.rule.len() as u64);
        let eps = if r.entry_points.is_empty() {
            &default_eps
        } else {
            &r.entry_points
        };
        for (i, ep) in static_cfg.entry_points.iter().enumerate() {
            if eps.iter().any(|e| *e == ep.name) {
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
    }
}

/// `host` → `host:80`: the dialled address always has a port.
fn with_default_port(a: Authority) -> Authority {
    if a.port_u16().is_some() {
        return a;
    }
    Authority::try_from(format!("{}:80", a.as_str())).unwrap_or(a)
}
