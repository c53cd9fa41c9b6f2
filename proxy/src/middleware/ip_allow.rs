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
        if client(&c.strategy, req.headers(), conn)
            .ip()
            .is_some_and(|ip| c.allowed.contains(ip))
        {
            return Ok(req);
        }
        let mut resp = Response::new(ProxyBody::full(c.reject.canonical_reason().unwrap_or("")));
        *resp.status_mut() = c.reject;
        // No Content-Type: Traefik writes the status text with its
        // content sniffing disabled.
        Err(Box::new(resp))
    }
}

/// The client as `strategy` reads it, as Traefik's `Strategy.GetIP`:
/// an address, an entry of `X-Forwarded-For` that is none (kept as
/// written: a rate limit's source is the text), or nothing.
#[derive(Debug, Clone, Copy)]
pub(super) enum Client<'r> {
    /// An address (IPv4-mapped read as IPv4, reduced to `ipv6Subnet`).
    Ip(IpAddr),
    /// An `X-Forwarded-For` entry that is no address.
    Text(&'r str),
    /// No entry (too few for `depth`, or all excluded).
    Missing,
}

impl Client<'_> {
    /// The address, when there is one to check.
    pub(super) fn ip(self) -> Option<IpAddr> {
        match self {
            Client::Ip(ip) => Some(ip),
            Client::Text(_) | Client::Missing => None,
        }
    }
}

/// The client `strategy` reads from `headers` (the request's) or `conn`.
pub(super) fn client<'r>(
    strategy: &IpStrategy,
    headers: &'r http::HeaderMap,
    conn: &ConnCtx,
) -> Client<'r> {
    let xff = || {
        headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let read = |entry: &'r str, bits: Option<u8>| match parse(entry) {
        Some(ip) => Client::Ip(subnet(ip, bits)),
        None => Client::Text(entry),
    };
    match strategy {
        IpStrategy::Peer { ipv6_subnet } => {
            Client::Ip(subnet(canonical_ip(conn.peer.ip()), *ipv6_subnet))
        }
        IpStrategy::Depth { depth, ipv6_subnet } => {
            let entries = xff();
            let n = entries.split(',').count();
            let Some(i) = n.checked_sub(*depth) else {
                return Client::Missing;
            };
            match entries.split(',').nth(i) {
                Some(entry) => read(entry.trim(), *ipv6_subnet),
                None => Client::Missing,
            }
        }
        IpStrategy::Excluded(excluded) => xff()
            .rsplit(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .find(|e| parse(e).is_none_or(|ip| !excluded.contains(ip)))
            .map_or(Client::Missing, |e| read(e, None)),
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
