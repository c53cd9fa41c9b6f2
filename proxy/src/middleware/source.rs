//! What `rateLimit` and `inFlightReq` count requests by
//! (`sourceCriterion`): a client IP read by an `ipStrategy`, a request
//! header's value, or the request's host, as Traefik's source extractor
//! reads them; and the per-source table both keep their state in.
//!
//! Per request: the key is read in place (an IP as 16 bytes on the
//! stack, a header or host as a slice of the request) and looked up
//! without allocating; only a source seen for the first time allocates
//! its entry. The table is sharded (`dashmap`): no global lock, and two
//! sources in different shards never wait for each other. Its size is
//! bounded: at `capacity`, the entries its owner says are idle are swept
//! before a new one is added (a sweep is rare and visits every shard).

use std::net::IpAddr;

use dashmap::DashMap;
use dashmap::mapref::one::Ref;
use http::Request;

use super::ip_allow::{Client, client};
use super::path::host_of;
use crate::config::SourceCriterion;
use crate::listener::ConnCtx;

/// A request's source, borrowed from the request where it can be.
#[derive(Debug, Clone, Copy)]
pub(super) enum Key<'r> {
    /// A client IP, IPv4 as IPv4-mapped IPv6.
    Ip([u8; 16]),
    /// A header value, the host, or an `X-Forwarded-For` entry that is no
    /// address (empty when missing: one source for all such requests).
    Text(&'r [u8]),
}

impl Key<'_> {
    /// The bytes the table is keyed by.
    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            Key::Ip(b) => b,
            Key::Text(t) => t,
        }
    }
}

/// The source of `req` by `criterion`.
pub(super) fn key<'r, B>(
    criterion: &SourceCriterion,
    req: &'r Request<B>,
    conn: &ConnCtx,
) -> Key<'r> {
    match criterion {
        SourceCriterion::Ip(strategy) => match client(strategy, req.headers(), conn) {
            Client::Ip(ip) => Key::Ip(octets(ip)),
            Client::Text(t) => Key::Text(t.as_bytes()),
            Client::Missing => Key::Text(b""),
        },
        SourceCriterion::Header(name) => {
            Key::Text(req.headers().get(name).map_or(&b""[..], |v| v.as_bytes()))
        }
        SourceCriterion::Host => Key::Text(host_of(req.uri(), req.headers()).as_bytes()),
    }
}

fn octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Per-source state `V`, at most `capacity` sources.
#[derive(Debug)]
pub(super) struct Sources<V> {
    map: DashMap<Box<[u8]>, V>,
    capacity: usize,
}

impl<V> Sources<V> {
    /// An empty table for up to `capacity` sources.
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            map: DashMap::new(),
            capacity,
        }
    }

    /// The entry of `key`, made by `new` when there is none. At capacity,
    /// the entries `idle` says are idle are removed first; if none is, the
    /// new source shares nothing and gets a fresh entry that replaces an
    /// arbitrary one (bounded memory wins over exactness).
    pub(super) fn get_or_insert(
        &self,
        key: &[u8],
        new: impl FnOnce() -> V,
        idle: impl Fn(&V) -> bool,
    ) -> Ref<'_, Box<[u8]>, V> {
        if let Some(found) = self.map.get(key) {
            return found;
        }
        if self.map.len() >= self.capacity {
            self.map.retain(|_, v| !idle(v));
            if self.map.len() >= self.capacity {
                // Its own statement: the iterator's shard guard must be
                // gone before the removal locks that shard.
                let victim = self.map.iter().next().map(|e| e.key().clone());
                if let Some(victim) = victim {
                    self.map.remove(&victim);
                }
            }
        }
        self.map
            .entry(Box::from(key))
            .or_insert_with(new)
            .downgrade()
    }

    /// How many sources have an entry.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }
}
