//! Compiled services and how one request resolves through them to one
//! server: a `loadBalancer` picks a server; `weighted`,
//! `highestRandomWeight` and `failover` pick one of their child services
//! (indexes into the snapshot's service list), which resolves in turn; a
//! `mirroring` passes to its main service and is noted in the [`Walk`],
//! for the service phase to send the copies.
//!
//! Health, as Traefik propagates it: a load balancer is up while one of
//! its servers is; a `weighted` or `highestRandomWeight` service with
//! `healthCheck` skips its children that are down and is up while one
//! child is (without `healthCheck` it never skips one); a `failover` uses
//! its main service while that is up, else its fallback (followed only
//! when the failover has `healthCheck`), and is up while either is; a
//! `mirroring` with `healthCheck` is up while its main service is. The
//! configuration check makes every followed child track its health, and
//! cycles are refused there, so the walk ends.
//!
//! A `failover` with `errors` whose main service is up is noted in the
//! walk too: when the main service answers a status in its `errors`, the
//! service phase resolves again from its fallback ([`resolve_fallback`]).
//! A mirroring or a failover with `errors` with services with middlewares
//! below it (`layered`, known at compile time) is not noted: the walk of
//! a request stops there, and the service phase serves it at its place.
//!
//! Runs per request: no lock, no allocation, except the `Set-Cookie`
//! headers a sticky cookie adds, the mirrorings and failovers passed
//! (pushed to the caller's [`Walk`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderMap;
use http::header::HeaderValue;

use super::balancer::{Balancer, RoundRobin, hrw_pick};
use super::passive::PassiveCheck;
use super::pool::UpstreamTarget;
use super::sticky::Sticky;
use crate::config::{HealthCheckConfig, StatusRanges};

/// A compiled service.
#[derive(Debug)]
pub struct Service {
    /// The service name with its provider (`name@file`), as metrics and
    /// logs show it.
    pub name: Arc<str>,
    /// What it does with a request.
    pub kind: ServiceKind,
    /// Its own `middlewares` (Traefik 3.7), run around it, after the
    /// router's and any service's above it (empty for most).
    pub chain: crate::middleware::Chain,
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
    /// `mirroring`.
    Mirroring(Mirroring),
    /// An internal service (`api@internal`...), answered by the proxy
    /// itself ([`crate::admin`]); a router's service only, never a child.
    Internal(crate::admin::Internal),
}

/// A compiled `mirroring` service.
#[derive(Debug)]
pub struct Mirroring {
    /// The service that answers (index into the snapshot's services).
    pub main: u32,
    /// Where copies go.
    pub mirrors: Box<[Mirror]>,
    /// `mirrorBody`: copies carry the request body.
    pub mirror_body: bool,
    /// `maxBodySize`: a larger body is not mirrored (`None`: no limit).
    pub max_body: Option<u64>,
    /// `healthCheck`: its health is its main service's.
    pub health_check: bool,
    /// Its main service, or one below it, has middlewares of its own: the
    /// copies are taken here, before them, so a request's resolution
    /// stops at it (`Walk::layers`) for the service phase to serve it at
    /// its place. Set when the configuration is compiled.
    pub layered: bool,
    /// Requests seen.
    total: AtomicU64,
}

/// One mirror of a [`Mirroring`].
#[derive(Debug)]
pub struct Mirror {
    /// Index into the snapshot's services.
    pub service: u32,
    percent: u64,
    /// Requests copied to it.
    count: AtomicU64,
}

impl Mirroring {
    /// A mirroring to `main` with mirrors given as (service, percent).
    pub fn new(
        main: u32,
        mirrors: impl IntoIterator<Item = (u32, u32)>,
        mirror_body: bool,
        max_body: Option<u64>,
        health_check: bool,
    ) -> Self {
        Self {
            main,
            mirrors: mirrors
                .into_iter()
                .map(|(service, percent)| Mirror {
                    service,
                    percent: u64::from(percent),
                    count: AtomicU64::new(0),
                })
                .collect(),
            mirror_body,
            max_body,
            health_check,
            layered: false,
            total: AtomicU64::new(0),
        }
    }

    /// Counts one request and pushes the mirrors it is copied to, as
    /// Traefik picks them: a mirror takes the request while it has had
    /// fewer than `percent` % of all requests so far.
    pub fn pick_mirrors(&self, out: &mut Vec<u32>) {
        let total = self.total.fetch_add(1, Ordering::Relaxed) + 1;
        for m in &self.mirrors {
            if m.count.load(Ordering::Relaxed) * 100 < total * m.percent {
                m.count.fetch_add(1, Ordering::Relaxed);
                out.push(m.service);
            }
        }
    }
}

/// What a resolution collected on its way, besides the server.
#[derive(Debug, Default)]
pub struct Walk {
    /// `Set-Cookie` headers for the response.
    pub set_cookies: Vec<HeaderValue>,
    /// The mirroring services passed through (indexes).
    pub mirrorings: Vec<u32>,
    /// The `failover` services with `errors` passed through their main
    /// service, outermost first: where an answer in their `errors` goes
    /// instead ([`resolve_fallback`]).
    pub failovers: Vec<FailoverPoint>,
    /// Stop at a child service that has middlewares of its own, and at a
    /// `mirroring` or a `failover` with `errors` above one (the service
    /// phase sets it, for a request or a mirror's copy; a resolution for
    /// another purpose, an error page, goes through them).
    pub layers: bool,
    /// Where it stopped: the child whose middlewares run next (the
    /// resolution goes on from there, [`resolve`] with it as root), or
    /// the layered mirroring or failover to serve at its place (the root
    /// itself, when that is one).
    pub layer: Option<u32>,
}

/// A `failover` with `errors` a request passed to its main service.
#[derive(Debug, Clone, Copy)]
pub struct FailoverPoint {
    /// The failover (index into the snapshot's services).
    pub at: u32,
    /// How many of the walk's `set_cookies` were pushed before it (the
    /// ones after are the main service's, dropped with its answer).
    pub cookies: usize,
    /// How many of the walk's `mirrorings` were passed before it.
    pub mirrorings: usize,
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
    /// `errors`: the main service's answers that go to the fallback.
    pub errors: Option<FailoverOnErrors>,
}

/// A failover's `errors`, compiled.
#[derive(Debug)]
pub struct FailoverOnErrors {
    /// The statuses answered by the fallback instead (never empty).
    pub ranges: StatusRanges,
    /// The request body kept to be sent again; a larger one is answered
    /// 413 (`None`: no limit).
    pub max_body: Option<u64>,
    /// Its main service or its fallback, or one below them, has
    /// middlewares of its own: the fallback must run outside the main
    /// service's, so a request's resolution stops at it (`Walk::layers`)
    /// for the service phase to serve it at its place.
    pub layered: bool,
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
/// cookies); the `Set-Cookie` headers to add to the response and the
/// mirrorings passed are pushed to `walk`. With `walk.layers` it stops
/// before a child service with middlewares, and at a layered mirroring or
/// failover with errors whose main service is up (`None`, `walk.layer`
/// set).
#[inline]
pub fn resolve(
    services: &[Service],
    root: u32,
    client_ip: &[u8],
    headers: &HeaderMap,
    walk: &mut Walk,
) -> Option<Resolved> {
    let mut at = root;
    loop {
        if at != root && walk.layers && !services[at as usize].chain.is_empty() {
            walk.layer = Some(at);
            return None;
        }
        let set_cookies = &mut walk.set_cookies;
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
            ServiceKind::Mirroring(m) => {
                if m.layered && walk.layers {
                    walk.layer = Some(at);
                    return None;
                }
                walk.mirrorings.push(at);
                at = m.main;
            }
            ServiceKind::Failover(f) => {
                at = if is_up(services, f.main) {
                    if let Some(e) = &f.errors {
                        if e.layered && walk.layers {
                            walk.layer = Some(at);
                            return None;
                        }
                        walk.failovers.push(FailoverPoint {
                            at,
                            cookies: walk.set_cookies.len(),
                            mirrorings: walk.mirrorings.len(),
                        });
                    }
                    f.main
                } else if !f.follow_fallback || is_up(services, f.fallback) {
                    f.fallback
                } else {
                    return None;
                };
            }
            // Answered before resolving (the service phase), and never a
            // child: the configuration names internal services in routers
            // only.
            ServiceKind::Internal(_) => return None,
        }
    }
}

/// Where a request goes instead after the main service of the failover
/// at `walk.failovers[point]` answered a status in its `errors`: the
/// walk forgets what the main service added (its cookies, its
/// mirrorings, the failovers inside it) and resolves the fallback;
/// `None` when the fallback is followed and down, or nothing is up in it
/// (503, which the failovers outside may take in turn).
pub fn resolve_fallback(
    services: &[Service],
    point: usize,
    client_ip: &[u8],
    headers: &HeaderMap,
    walk: &mut Walk,
) -> Option<Resolved> {
    let p = walk.failovers[point];
    walk.failovers.truncate(point);
    walk.set_cookies.truncate(p.cookies);
    walk.mirrorings.truncate(p.mirrorings);
    let ServiceKind::Failover(f) = &services[p.at as usize].kind else {
        return None;
    };
    if f.follow_fallback && !is_up(services, f.fallback) {
        return None;
    }
    resolve(services, f.fallback, client_ip, headers, walk)
}

/// The innermost failover of `walk` whose `errors` take `status`.
pub fn failover_for(services: &[Service], walk: &Walk, status: u16) -> Option<usize> {
    walk.failovers.iter().rposition(|p| {
        matches!(&services[p.at as usize].kind,
            ServiceKind::Failover(Failover { errors: Some(e), .. }) if e.ranges.contains(status))
    })
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
        ServiceKind::Mirroring(m) => !m.health_check || is_up(services, m.main),
        ServiceKind::Internal(_) => true,
    }
}
