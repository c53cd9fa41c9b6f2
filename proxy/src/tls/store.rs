//! The certificate store handshakes read (decision 5): an immutable
//! [`CertSet`] (exact names, one-label wildcards, the default) published
//! through one `ArcSwap`. A handshake loads the current set without a lock
//! and never waits for an update; an update (a reload, a renewed file)
//! builds a whole new set off to the side and swaps it in one store, so no
//! handshake ever sees a set with a certificate missing or half-replaced.
//!
//! Selection follows Traefik's `GetBestCertificate`: the SNI lower-cased,
//! matched against each certificate's names, a wildcard `*.example.com`
//! covering exactly one label (`a.example.com`, not `a.b.example.com` nor
//! `example.com`); with no SNI, the connection's local IP; then the
//! default, unless `sniStrict` fails the handshake. Where Traefik's order
//! between candidates is arbitrary (it walks the certificates by their
//! reverse-sorted name lists and takes the first that matches), an exact
//! name always wins over a wildcard; between two certificates with the
//! same name, the one Traefik's order meets first wins.
//!
//! Runs per handshake: one atomic load, at most two hash lookups, no
//! allocation for a lower-case SNI (the form clients send).

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::certs::LoadedCert;

/// One complete set of certificates, never changed once built.
#[derive(Debug)]
pub struct CertSet {
    /// Each certificate once, in configuration order; of two with the
    /// same names only the first (as Traefik's store keeps them).
    listed: Vec<Arc<CertifiedKey>>,
    exact: HashMap<Box<str>, Arc<CertifiedKey>>,
    /// `*.suffix` certificates keyed by `suffix`.
    wildcard: HashMap<Box<str>, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl CertSet {
    /// The set serving `certs`, `default` when nothing matches.
    pub fn new(certs: &[LoadedCert], default: Arc<CertifiedKey>) -> CertSet {
        // Traefik's order: by the sorted, comma-joined name list, reversed.
        let mut ordered: Vec<(String, &LoadedCert)> =
            certs.iter().map(|c| (c.names.join(","), c)).collect();
        ordered.sort_by(|a, b| b.0.cmp(&a.0));
        let mut seen = std::collections::HashSet::new();
        let listed = certs
            .iter()
            .filter(|c| seen.insert(c.names.join(",")))
            .map(|c| Arc::clone(&c.key))
            .collect();
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for (_, c) in ordered {
            for name in &c.names {
                let name = name.trim_end_matches('.');
                let map = match name.strip_prefix("*.") {
                    Some(suffix) => wildcard.entry(suffix.into()),
                    None => exact.entry(name.into()),
                };
                map.or_insert_with(|| Arc::clone(&c.key));
            }
        }
        CertSet {
            listed,
            exact,
            wildcard,
            default,
        }
    }

    /// The certificate for `name` (an SNI or an IP in text form), if one
    /// of the set's certificates has it.
    pub fn find(&self, name: &str) -> Option<&Arc<CertifiedKey>> {
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.find_lower(&name.to_ascii_lowercase());
        }
        self.find_lower(name)
    }

    fn find_lower(&self, name: &str) -> Option<&Arc<CertifiedKey>> {
        if let Some(c) = self.exact.get(name) {
            return Some(c);
        }
        let (_, suffix) = name.split_once('.')?;
        self.wildcard.get(suffix)
    }

    /// The certificate served when no name matches.
    pub fn default_cert(&self) -> &Arc<CertifiedKey> {
        &self.default
    }

    /// The configured certificates, each once, then the default one (the
    /// generated default too: the API leaves it out by its name).
    pub fn certificates(&self) -> impl Iterator<Item = &Arc<CertifiedKey>> {
        self.listed.iter().chain(std::iter::once(&self.default))
    }
}

/// The published certificate set.
#[derive(Debug)]
pub struct CertStore {
    current: ArcSwap<CertSet>,
}

impl CertStore {
    /// A store serving `set`.
    pub fn new(set: CertSet) -> CertStore {
        CertStore {
            current: ArcSwap::from_pointee(set),
        }
    }

    /// The set served now (for the API; handshakes use [`Self::select`]).
    pub fn current(&self) -> Arc<CertSet> {
        self.current.load_full()
    }

    /// Replaces the whole set at once.
    pub fn replace(&self, set: CertSet) {
        self.current.store(Arc::new(set));
    }

    /// The certificate a handshake for `name` gets: its match, else the
    /// default unless `strict`.
    pub fn select(&self, name: &str, strict: bool) -> Option<Arc<CertifiedKey>> {
        let set = self.current.load();
        match set.find(name) {
            Some(c) => Some(Arc::clone(c)),
            None if strict => None,
            None => Some(Arc::clone(set.default_cert())),
        }
    }
}

/// The certificate resolver of one set of TLS options: reads the store
/// per handshake.
#[derive(Debug)]
pub struct StoreResolver {
    pub(super) store: Arc<CertStore>,
    pub(super) sni_strict: bool,
}

impl ResolvesServerCert for StoreResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match hello.server_name() {
            Some(name) => self.store.select(name, self.sni_strict),
            // The acceptor resolves SNI-less handshakes by local IP itself;
            // a connection reaching here has none that matched.
            None if self.sni_strict => None,
            None => Some(Arc::clone(self.store.current.load().default_cert())),
        }
    }
}

/// Serves one certificate: an SNI-less handshake whose local IP matched.
#[derive(Debug)]
pub struct FixedCert(pub Arc<CertifiedKey>);

impl ResolvesServerCert for FixedCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}
