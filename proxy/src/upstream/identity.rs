//! Stable identities of upstream servers across configuration generations:
//! the [`PoolKey`] of a connection pool and the [`ServerId`] of a server.
//!
//! Two different things. A pool key names *how connections are made*
//! (scheme, address, transport settings): two services naming the same URL
//! share a pool, and editing a transport gives the server a new pool. A
//! server id names *a server of a service* (the service name and the
//! server URL, as Traefik keys health): it is what state that outlives a
//! configuration (health, passive failure counts, sticky cookies) is keyed
//! by, so a reload that keeps the server keeps that state.
//!
//! Control plane only: interned while a configuration is compiled (under
//! the reload lock), never per request. The data plane sees the small
//! integers.

use std::sync::atomic::{AtomicU32, Ordering};

use dashmap::DashMap;

use super::pool::TransportSettings;

/// Identifies one upstream connection pool: the same server address with
/// the same transport settings, across configuration generations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolKey(pub u32);

/// Identifies one server of one service (service name + server URL),
/// across configuration generations; dense from 0, so state kept beside
/// the snapshot can be a vector indexed by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerId(pub u32);

/// Hands out small dense integers for string keys, the same one for the
/// same key for the life of the process.
#[derive(Debug, Default)]
struct Interner {
    ids: DashMap<String, u32>,
    next: AtomicU32,
}

impl Interner {
    fn intern(&self, key: String) -> u32 {
        *self
            .ids
            .entry(key)
            .or_insert_with(|| self.next.fetch_add(1, Ordering::Relaxed))
    }

    fn len(&self) -> usize {
        self.ids.len()
    }
}

/// Stable pool keys: the same server with the same transport settings gets
/// the same key in every configuration generation, so its pooled
/// connections survive reloads.
#[derive(Debug, Default)]
pub struct PoolKeys(Interner);

impl PoolKeys {
    /// The key of the pool for `authority` spoken as `scheme` (`http`,
    /// `h2c`, or `https` with its TLS settings) with the transport `t`.
    pub fn key(&self, scheme: &str, authority: &str, t: &TransportSettings) -> PoolKey {
        let id = format!(
            "{scheme}|{authority}|{:?}|{:?}|{}",
            t.dial_timeout, t.idle_conn_timeout, t.max_idle_per_host
        );
        PoolKey(self.0.intern(id))
    }

    /// How many keys were handed out.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no key was handed out yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Stable server identities: the server `url` of service `service` (its
/// name with the provider, `api@file`) gets the same id in every
/// configuration generation.
#[derive(Debug, Default)]
pub struct ServerIds(Interner);

impl ServerIds {
    /// The id of server `url` of `service`.
    pub fn id(&self, service: &str, url: &str) -> ServerId {
        // A service name cannot contain a NUL, so the pair is unambiguous.
        ServerId(self.0.intern(format!("{service}\0{url}")))
    }

    /// How many ids were handed out (the length a table indexed by
    /// [`ServerId`] needs).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no id was handed out yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn server_ids_are_per_service_and_url_pool_keys_per_address_and_transport() {
        let ids = ServerIds::default();
        let a = ids.id("api@file", "http://10.0.0.1:80");
        assert_eq!(a, ids.id("api@file", "http://10.0.0.1:80"), "stable");
        let b = ids.id("web@file", "http://10.0.0.1:80");
        assert_ne!(a, b, "the same URL in another service is another server");
        assert_ne!(a, ids.id("api@file", "http://10.0.0.2:80"));
        assert_eq!(ids.len(), 3);

        let keys = PoolKeys::default();
        let t = TransportSettings::default();
        let k = keys.key("http", "10.0.0.1:80", &t);
        assert_eq!(k, keys.key("http", "10.0.0.1:80", &t), "shared pool");
        assert_ne!(k, keys.key("h2c", "10.0.0.1:80", &t), "h2c is another pool");
        let edited = TransportSettings {
            dial_timeout: Duration::from_secs(1),
            ..TransportSettings::default()
        };
        assert_ne!(
            k,
            keys.key("http", "10.0.0.1:80", &edited),
            "an edited transport is a new pool"
        );
        assert_eq!(keys.len(), 3);
    }
}
