//! `ipAllowList` (and `ipWhiteList`) at request time, as Traefik 3.7
//! decides: the client IP is read by the configured strategy (the peer;
//! the `X-Forwarded-For` entry `depth` from the right; the rightmost one
//! not excluded), an IPv6 one reduced to `ipv6Subnet`, and a request whose
//! IP is missing, unparsable or not in `sourceRange` is answered with the
//! reject status and its text, without reaching the backend.
//!
//! `X-Forwarded-For` here is what the client's proxies sent, kept only
//! from trusted peers (the entrypoint removed it otherwise, as Traefik's
//! does); the proxy's own entry is added later, when the request is sent.
//!
//! Per request: the header is split in place; no allocation.

use std::net::{IpAddr, Ipv6Addr};

use http::header::{self, HeaderValue};
use http::{Request, Response};

use super::path::Step;
use crate::config::{IpAllowList as Config, IpStrategy};
use crate::forward::ProxyBody;
use crate::ipnet::canonical_ip;
use crate::listener::ConnCtx;
use crate::upstream::RequestBody;

/// A compiled `ipAllowList`.
#[derive(Debug)]
pub struct IpAllowList(Config);

impl IpAllowList {
    pub(super) fn new(c: &Config) -> Self {
        Self(c.clone())
    }

    pub(super) fn apply(&self, req: Request<RequestBody>, conn: &ConnCtx) -> Step {
        let c = &self.0;
        if client_ip(&c.strategy, &req, conn).is_some_and(|ip| c.allowed.contains(ip)) {
            return Ok(req);
        }
        let mut resp = Response::new(ProxyBody::full(c.reject.canonical_reason().unwrap_or("")));
        *resp.status_mut() = c.reject;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Err(Box::new(resp))
    }
}

/// The client IP `strategy` reads; `None` when there is none to check.
fn client_ip<B>(strategy: &IpStrategy, req: &Request<B>, conn: &ConnCtx) -> Option<IpAddr> {
    let xff = || {
        req.headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    match strategy {
        IpStrategy::Peer { ipv6_subnet } => {
            Some(subnet(canonical_ip(conn.peer.ip()), *ipv6_subnet))
        }
        IpStrategy::Depth { depth, ipv6_subnet } => {
            let entries = xff();
            let n = entries.split(',').count();
            let i = n.checked_sub(*depth)?;
            let ip = entries.split(',').nth(i)?.trim();
            parse(ip).map(|ip| subnet(ip, *ipv6_subnet))
        }
        IpStrategy::Excluded(excluded) => xff()
            .rsplit(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .find(|e| parse(e).is_none_or(|ip| !excluded.contains(ip)))
            .and_then(parse),
    }
}

/// An address as Go's `net.ParseIP` reads it (IPv4-mapped as IPv4).
fn parse(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok().map(canonical_ip)
}

/// An IPv6 address reduced to its first `bits` (an IPv4 one unchanged).
fn subnet(ip: IpAddr, bits: Option<u8>) -> IpAddr {
    match (ip, bits) {
        (IpAddr::V6(v6), Some(bits)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
        _ => ip,
    }
}
