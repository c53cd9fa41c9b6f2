//! Decision 5, measured: the certificate store under a handshake storm
//! with concurrent certificate updates. Reader threads look certificates
//! up as handshakes do while a writer replaces the whole certificate set
//! every millisecond, for three designs:
//!
//! - `arcswap`: the proxy's [`CertStore`] (an immutable set behind one
//!   `ArcSwap`, replaced whole);
//! - `dashmap`: a `DashMap` updated entry by entry (its shards are
//!   `RwLock`s; `scc::HashIndex` reads without locks but is updated entry
//!   by entry the same way, so it has the same gap);
//! - `rwlock`: one `RwLock<HashMap>` rebuilt under the write lock
//!   (Traefik's `sync.RWMutex` design).
//!
//! Reported: lookups per second per design, and lookups that found no
//! certificate (a handshake that would have got the default certificate
//! during an update). Run: `cargo bench -p benches --bench cert_store`.
//! Wall-clock figures: compare designs within one run only.

// The RwLock is the design being measured against, not code of ours.
#![allow(clippy::disallowed_types)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use proxy::tls::{CertSet, CertStore, LoadedCert};

const NAMES: usize = 1_000;
const READERS: usize = 2;
const RUN: Duration = Duration::from_secs(2);

trait Store: Send + Sync {
    fn lookup(&self, name: &str) -> bool;
    fn replace(&self, certs: &[(String, LoadedCert)]);
}

struct Swap(CertStore, LoadedCert);

impl Store for Swap {
    fn lookup(&self, name: &str) -> bool {
        self.0.select(name, true).is_some()
    }
    fn replace(&self, certs: &[(String, LoadedCert)]) {
        let loaded: Vec<LoadedCert> = certs.iter().map(|(_, c)| c.clone()).collect();
        self.0
            .replace(CertSet::new(&loaded, Arc::clone(&self.1.key)));
    }
}

struct Dash(DashMap<String, LoadedCert>);

impl Store for Dash {
    fn lookup(&self, name: &str) -> bool {
        self.0.get(name).map(|c| Arc::clone(&c.key)).is_some()
    }
    fn replace(&self, certs: &[(String, LoadedCert)]) {
        // Entry by entry: what a concurrent map offers for a new set.
        self.0.clear();
        for (n, c) in certs {
            self.0.insert(n.clone(), c.clone());
        }
    }
}

struct Locked(RwLock<HashMap<String, LoadedCert>>);

impl Store for Locked {
    fn lookup(&self, name: &str) -> bool {
        self.0
            .read()
            .unwrap()
            .get(name)
            .map(|c| Arc::clone(&c.key))
            .is_some()
    }
    fn replace(&self, certs: &[(String, LoadedCert)]) {
        let mut m = self.0.write().unwrap();
        m.clear();
        for (n, c) in certs {
            m.insert(n.clone(), c.clone());
        }
    }
}

fn run(name: &str, store: Arc<dyn Store>, certs: Arc<Vec<(String, LoadedCert)>>) {
    store.replace(&certs);
    let stop = Arc::new(AtomicBool::new(false));
    let lookups = Arc::new(AtomicU64::new(0));
    let misses = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for r in 0..READERS {
        let (store, stop, lookups, misses, certs) = (
            Arc::clone(&store),
            Arc::clone(&stop),
            Arc::clone(&lookups),
            Arc::clone(&misses),
            Arc::clone(&certs),
        );
        threads.push(std::thread::spawn(move || {
            let (mut n, mut miss, mut i) = (0u64, 0u64, r * 7);
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..64 {
                    i = (i + 13) % NAMES;
                    if !store.lookup(&certs[i].0) {
                        miss += 1;
                    }
                    n += 1;
                }
            }
            lookups.fetch_add(n, Ordering::Relaxed);
            misses.fetch_add(miss, Ordering::Relaxed);
        }));
    }
    let started = Instant::now();
    let mut updates = 0u64;
    while started.elapsed() < RUN {
        store.replace(&certs);
        updates += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let n = lookups.load(Ordering::Relaxed);
    println!(
        "{name:8} lookups/s {:>12.0}  without a certificate {:>9} ({:.4}%)  updates {updates}",
        n as f64 / secs,
        misses.load(Ordering::Relaxed),
        100.0 * misses.load(Ordering::Relaxed) as f64 / n.max(1) as f64
    );
}

fn main() {
    let provider = rustls_provider();
    let base = proxy::tls::certs::generate_default(&provider).expect("certificate");
    let certs: Arc<Vec<(String, LoadedCert)>> = Arc::new(
        (0..NAMES)
            .map(|i| {
                let name = format!("host{i}.example.com");
                let c = LoadedCert {
                    key: Arc::clone(&base.key),
                    names: vec![name.clone()],
                };
                (name, c)
            })
            .collect(),
    );
    println!(
        "{READERS} reader threads, {NAMES} certificates, the whole set replaced every 1 ms for {RUN:?}"
    );
    let swap = Swap(
        CertStore::new(CertSet::new(&[], Arc::clone(&base.key))),
        base.clone(),
    );
    run("arcswap", Arc::new(swap), Arc::clone(&certs));
    run(
        "dashmap",
        Arc::new(Dash(DashMap::new())),
        Arc::clone(&certs),
    );
    run(
        "rwlock",
        Arc::new(Locked(RwLock::new(HashMap::new()))),
        certs,
    );
}

fn rustls_provider() -> proxy::tls::CryptoProvider {
    proxy::tls::default_provider()
}
