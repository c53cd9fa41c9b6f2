//! Compiled services and how one request resolves through them to one
//! server: a `loadBalancer` picks a server; `weighted`,
//! `highestRandomWeight` and `failover` pick one of their child services
//! (indexes into the snapshot's service list), which resolves in turn.
//!
//! Health, as Traefik propagates it: a load balancer is up while one of
//! its servers is; a `weighted` or `highestRandomWeight` service with
//! `healthCheck` skips its children that are down and is up while one
//! child is (without `healthCheck` it never skips one); a `failover` uses
//! its main service while that is up, else its fallback (followed only
//! when the failover has `healthCheck`), and is up while either is. The
//! configuration check makes every followed child track its health, and
//! cycles are refused there, so the walk ends.
//!
//! Runs per request: no lock, no allocation, except the `Set-Cookie`
//! headers a sticky cookie adds (pushed to the caller's list).

use std::sync::Arc;

use http::HeaderMap;
use http::header::HeaderValue;

use super::balancer::{Balancer, RoundRobin, hrw_pick};
use super::passive::PassiveCheck;
use super::pool::UpstreamTarget;
use super::sticky::Sticky;
use crate::config::HealthCheckConfig;

/// A compiled service.
#[derive(Debug)]
pub struct Service {
    /// The service name with its provider (`name@file`), as metrics and
    /// logs show it.
    pub name: Arc<str>,
    /// What it does with a request.
    pub kind: ServiceKind,
}

/// The service types.
#[derive(Debug)]
pub enum ServiceKind {
    /// `loadBalancer`.
    LoadBalancer(LoadBalancer),
    /// `weighted`: smooth weighted round robin over child services.
    Weighted(Children),
    /// `highestRandomWeight`: child services by highest random weight of
    /// the client IP.
    HighestRandomWeight(Children),
    /// `failover`.
    Failover(Failover),
}

/// A compiled `loadBalancer` service.
#[derive(Debug)]
pub struct LoadBalancer {
    /// Its servers.
    pub servers: Vec<Arc<UpstreamTarget>>,
    /// Picks among `servers` (same order) by the service's strategy,
    /// reading their run-time state.
    pub balancer: Balancer,
    /// Forward the client's `Host` header (Traefik's default) or use the
    /// server's.
    pub pass_host_header: bool,
    /// The active health check of its servers, run by
    /// [`HealthChecks`](crate::upstream::HealthChecks).
    pub health_check: Option<Arc<HealthCheckConfig>>,
    /// `sticky.cookie`, over `servers` (named by URL).
    pub sticky: Option<Sticky>,
    /// `passiveHealthCheck`, over `servers`.
    pub passive: Option<PassiveCheck>,
}

/// The children of a `weighted` or `highestRandomWeight` service.
#[derive(Debug)]
pub struct Children {
    /// Its children, in configuration order.
    pub members: Box<[Child]>,
    /// The weighted schedule over `members` (weighted only).
    pub rr: RoundRobin,
    /// `healthCheck`: children down are skipped.
    pub health_check: bool,
    /// `sticky.cookie` over `members` (weighted only; named as written).
    pub sticky: Option<Sticky>,
}

/// One child service.
#[derive(Debug)]
pub struct Child {
    /// Index into the snapshot's services.
    pub service: u32,
    /// Its weight (0: never picked by the schedule or the hash).
    pub weight: u32,
    /// The name as written (what hrw hashes).
    pub name: Arc<str>,
}

/// A compiled `failover` service.
#[derive(Debug)]
pub struct Failover {
    /// The main service (index into the snapshot's services).
    pub main: u32,
    /// The fallback.
    pub fallback: u32,
    /// `healthCheck`: the fallback's health is followed too.
    pub follow_fallback: bool,
}

/// Where a request went: the load balancer's index and its server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// Index into the snapshot's services: a load balancer.
    pub service: u32,
    /// Index into its servers.
    pub server: usize,
}

/// Resolves a request for service `root` of `services` to one server;
/// `None` when nothing is up on the way (503). `client_ip` is the socket
/// peer's address as text (hrw), `headers` the request's (sticky
/// cookies); the `Set-Cookie` headers to add to the response are pushed
/// to `set_cookies`.
#[inline]
pub fn resolve(
    services: &[Service],
    root: u32,
    client_ip: &[u8],
    headers: &HeaderMap,
    set_cookies: &mut Vec<HeaderValue>,
) -> Option<Resolved> {
    let mut at = root;
    loop {
        match &services[at as usize].kind {
            ServiceKind::LoadBalancer(lb) => {
                let server = match &lb.sticky {
                    None => lb.balancer.pick(client_ip)?,
                    Some(st) => sticky_pick(st, headers, set_cookies, |i| lb.balancer.usable(i))
                        .or_else(|| {
                            let i = lb.balancer.pick(client_ip)?;
                            set_cookies.push(st.set_cookie(i).clone());
                            Some(i)
                        })?,
                };
                return Some(Resolved {
                    service: at,
                    server,
                });
            }
            ServiceKind::Weighted(c) => {
                let up = |i: usize| !c.health_check || is_up(services, c.members[i].service);
                let i = match &c.sticky {
                    None => c.rr.pick_where(up)?,
                    Some(st) => sticky_pick(st, headers, set_cookies, up).or_else(|| {
                        let i = c.rr.pick_where(up)?;
                        set_cookies.push(st.set_cookie(i).clone());
                        Some(i)
                    })?,
                };
                at = c.members[i].service;
            }
            ServiceKind::HighestRandomWeight(c) => {
                let i = hrw_pick(client_ip, c.members.len(), |i| {
                    let m = &c.members[i];
                    let usable = m.weight > 0 && (!c.health_check || is_up(services, m.service));
                    usable.then(|| (m.name.as_bytes(), f64::from(m.weight)))
                })?;
                at = c.members[i].service;
            }
            ServiceKind::Failover(f) => {
                at = if is_up(services, f.main) {
                    f.main
                } else if !f.follow_fallback || is_up(services, f.fallback) {
                    f.fallback
                } else {
                    return None;
                };
            }
        }
    }
}

/// The member a sticky cookie names, when `usable`; a rewritten cookie is
/// pushed for an older value.
#[inline]
fn sticky_pick(
    st: &Sticky,
    headers: &HeaderMap,
    set_cookies: &mut Vec<HeaderValue>,
    usable: impl Fn(usize) -> bool,
) -> Option<usize> {
    let (i, rewrite) = st.find(headers)?;
    if !usable(i) {
        return None;
    }
    if rewrite {
        set_cookies.push(st.set_cookie(i).clone());
    }
    Some(i)
}

/// Whether service `at` is up, as a parent following its health sees it.
pub fn is_up(services: &[Service], at: u32) -> bool {
    match &services[at as usize].kind {
        ServiceKind::LoadBalancer(lb) => lb.balancer.any_up(),
        ServiceKind::Weighted(c) | ServiceKind::HighestRandomWeight(c) => {
            !c.health_check
                || c.members
                    .iter()
                    .any(|m| m.weight > 0 && is_up(services, m.service))
        }
        ServiceKind::Failover(f) => {
            is_up(services, f.main) || !f.follow_fallback || is_up(services, f.fallback)
        }
    }
}
