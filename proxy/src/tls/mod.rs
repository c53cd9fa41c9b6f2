//! TLS termination: the certificate store handshakes read (`store`), the
//! certificates it holds (`certs`), one rustls server configuration per
//! `tls.options` entry (`options`), Go's names for versions, suites and
//! curves (`names`), and here what a configuration generation carries:
//! its options ([`TlsSnapshot`]), which options an SNI gets on an
//! entrypoint ([`SniOptions`]), and [`TlsRuntime`], the control-plane
//! state that builds them and outlives reloads.
//!
//! The handshake itself is the listener's (`listener/tls.rs`). Per
//! handshake this module runs only [`SniOptions::options_for`] and the
//! store's lookup: no lock, no allocation. Everything else is control
//! plane.

// The options cache is taken by the control thread once per reload, never
// by a handshake or a request.
#![allow(clippy::disallowed_types)]

pub mod certs;
pub mod client;
pub mod names;
pub mod options;
pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rustls::ServerConfig;

pub use certs::LoadedCert;
pub use rustls::crypto::CryptoProvider;

/// The crypto provider every TLS configuration of the proxy uses.
pub fn default_provider() -> CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}
pub use store::{CertSet, CertStore};

use crate::config::{
    ConfigError, ConfigErrors, DynamicConfig, ElementKind, EntryPointConfig, MiddlewareConfig,
    Origin, TlsOptionsConfig,
};

/// An error at `origin` (line 0: none known) about `key`.
fn error_at(origin: &Origin, key: &str, message: String) -> ConfigError {
    ConfigError {
        file: origin.file.clone(),
        key: key.to_owned(),
        line: (origin.line > 0).then_some(origin.line),
        column: (origin.line > 0).then_some(origin.column),
        message,
    }
}

/// The name of Traefik's default TLS options.
pub const DEFAULT_OPTIONS: &str = "default";

/// One compiled `tls.options` entry.
#[derive(Debug)]
pub struct TlsOptions {
    /// Its name (`default`, or as configured).
    pub name: Arc<str>,
    /// The rustls configuration handshakes with these options use.
    pub config: Arc<ServerConfig>,
    /// `sniStrict`.
    pub sni_strict: bool,
}

/// The TLS part of a configuration generation.
#[derive(Debug)]
pub struct TlsSnapshot {
    /// Every options entry; index 0 is `default`.
    pub options: Vec<TlsOptions>,
    /// The certificate store (the same for every generation).
    pub store: Arc<CertStore>,
}

impl TlsSnapshot {
    /// The index of the options called `name`.
    pub fn index_of(&self, name: &str) -> Option<u32> {
        self.options
            .iter()
            .position(|o| &*o.name == name)
            .map(|i| i as u32)
    }
}

/// Which TLS options a handshake gets on one entrypoint, from its SNI:
/// the options of the TLS routers whose `Host` names it (exact, then a
/// one-label `*.` wildcard), else `default` (index 0), as Traefik's
/// `HostSNI` table of an entrypoint chooses them.
#[derive(Debug, Default)]
pub struct SniOptions {
    exact: HashMap<Box<str>, u32>,
    wildcard: HashMap<Box<str>, u32>,
}

impl SniOptions {
    /// Maps `host` (lower-case, from a router's `Host`) to options `index`.
    pub fn insert(&mut self, host: &str, index: u32) {
        let host = host.trim_end_matches('.');
        match host.strip_prefix("*.") {
            Some(suffix) => self.wildcard.insert(suffix.into(), index),
            None => self.exact.insert(host.into(), index),
        };
    }

    /// Whether no host maps to options other than `default`.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty()
    }

    /// The options index for a handshake with `sni`.
    pub fn options_for(&self, sni: Option<&str>) -> u32 {
        let Some(sni) = sni.filter(|_| !self.is_empty()) else {
            return 0;
        };
        let lower;
        let sni = if sni.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = sni.to_ascii_lowercase();
            &lower
        } else {
            sni
        };
        if let Some(&i) = self.exact.get(sni) {
            return i;
        }
        sni.split_once('.')
            .and_then(|(_, suffix)| self.wildcard.get(suffix))
            .copied()
            .unwrap_or(0)
    }
}

/// What applying a configuration publishes: its certificates and options,
/// and what could not be built.
#[derive(Debug)]
pub struct Prepared {
    /// The certificate set, to publish with [`TlsRuntime::publish`].
    pub certs: CertSet,
    /// The options, for the snapshot.
    pub tls: TlsSnapshot,
    /// The client configurations of `https://` servers.
    pub upstream: UpstreamClients,
    /// Each element that could not be built, with its error: a
    /// certificate is left out of the set (Traefik logs and skips it), an
    /// options entry or a servers transport is disabled with the elements
    /// using it ([`crate::config::disable_unbuilt`]).
    pub unbuilt: Vec<Unbuilt>,
}

/// One element of the dynamic configuration that could not be built.
#[derive(Debug, Clone)]
pub struct Unbuilt {
    /// The element it disables: `None` for a certificate, which is only
    /// left out.
    pub element: Option<(ElementKind, String)>,
    /// What is wrong, where.
    pub error: ConfigError,
}

/// The rustls client configuration of each servers transport, for
/// `https://` servers, and of each `forwardAuth` to an `https://` address.
#[derive(Debug)]
pub struct UpstreamClients {
    /// By transport name.
    pub by_transport: HashMap<String, Arc<rustls::ClientConfig>>,
    /// By middleware name.
    pub by_middleware: HashMap<String, Arc<rustls::ClientConfig>>,
    /// Servers without a named transport.
    pub default: Arc<rustls::ClientConfig>,
}

/// A built options entry and what it was built from.
#[derive(Debug)]
struct Built {
    key: (TlsOptionsConfig, Vec<Vec<u8>>),
    config: Arc<ServerConfig>,
}

/// The TLS state that outlives configuration generations: the store, the
/// generated default certificate, and the built options (reused while
/// unchanged, so session tickets stay valid across reloads).
#[derive(Debug)]
pub struct TlsRuntime {
    store: Arc<CertStore>,
    provider: CryptoProvider,
    generated: LoadedCert,
    built: Mutex<HashMap<String, Built>>,
}

impl TlsRuntime {
    /// A runtime with a freshly generated default certificate.
    pub fn new() -> Result<TlsRuntime, String> {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let generated = certs::generate_default(&provider)?;
        let store = Arc::new(CertStore::new(CertSet::new(
            &[],
            Arc::clone(&generated.key),
        )));
        Ok(TlsRuntime {
            store,
            provider,
            generated,
            built: Mutex::new(HashMap::new()),
        })
    }

    /// The store handshakes read.
    pub fn store(&self) -> &Arc<CertStore> {
        &self.store
    }

    /// Reads the certificates and builds the options and upstream TLS
    /// clients of `dynamic`. What belongs to one element is in
    /// [`Prepared::unbuilt`] and the rest is built; an error only when
    /// nothing could be served: the `default` options, an entrypoint's
    /// `http.tls.options` naming options that do not exist. Every error
    /// names the file, line and key. `entry_points` are the static ones.
    pub fn prepare(
        &self,
        entry_points: &[EntryPointConfig],
        dynamic: &DynamicConfig,
    ) -> Result<Prepared, ConfigErrors> {
        let mut fatal = Vec::new();
        let mut unbuilt = Vec::new();
        let t = &dynamic.tls;
        let mut loaded = Vec::with_capacity(t.certificates.len());
        for c in &t.certificates {
            match certs::load(&c.cert, &c.key, &self.provider) {
                Ok(l) => loaded.push(l),
                Err(e) => unbuilt.push(Unbuilt {
                    element: None,
                    error: error_at(&c.origin, &c.path, e),
                }),
            }
        }
        // A default certificate that cannot be read is logged and the
        // generated one serves in its place.
        let default = match &t.default_certificate {
            Some(c) => match certs::load(&c.cert, &c.key, &self.provider) {
                Ok(l) => l.key,
                Err(e) => {
                    unbuilt.push(Unbuilt {
                        element: None,
                        error: error_at(
                            &c.origin,
                            &c.path,
                            format!("{e}; the generated default certificate is served instead"),
                        ),
                    });
                    Arc::clone(&self.generated.key)
                }
            },
            None => Arc::clone(&self.generated.key),
        };

        let default_options = t.options.get(DEFAULT_OPTIONS).cloned().unwrap_or_default();
        let mut all: Vec<(&str, &TlsOptionsConfig)> = vec![(DEFAULT_OPTIONS, &default_options)];
        all.extend(
            t.options
                .iter()
                .filter(|(n, _)| n.as_str() != DEFAULT_OPTIONS)
                .map(|(n, o)| (n.as_str(), o)),
        );
        let mut options = Vec::with_capacity(all.len());
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        let mut keep = HashMap::new();
        for (name, o) in all {
            match self.build(&mut built, name, o) {
                Ok(b) => {
                    options.push(TlsOptions {
                        name: Arc::from(name),
                        config: Arc::clone(&b.config),
                        sni_strict: o.sni_strict,
                    });
                    keep.insert(name.to_owned(), b);
                }
                // Every TLS connection without other options uses these.
                Err(e) if name == DEFAULT_OPTIONS => fatal.push(error_at(&o.origin, &o.path, e)),
                Err(e) => unbuilt.push(Unbuilt {
                    element: Some((ElementKind::TlsOptions, name.to_owned())),
                    error: error_at(&o.origin, &o.path, e),
                }),
            }
        }
        for ep in entry_points {
            if let Some(name) = ep.http_tls.as_ref().and_then(|t| t.options.as_deref())
                && !options.iter().any(|o| &*o.name == name)
            {
                fatal.push(error_at(
                    &ep.origin,
                    &format!("entryPoints.{}.http.tls.options", ep.name),
                    format!("unknown TLS options {name:?}"),
                ));
            }
        }
        let mut by_transport = HashMap::new();
        for (name, tr) in &dynamic.servers_transports {
            match client::client_config(&tr.tls, tr.disable_http2) {
                Ok(c) => {
                    by_transport.insert(name.clone(), Arc::new(c));
                }
                Err(e) => unbuilt.push(Unbuilt {
                    element: Some((ElementKind::ServersTransport, name.clone())),
                    error: e.at(&format!("http.serversTransports.{name}"), &tr.origin),
                }),
            }
        }
        let mut by_middleware = HashMap::new();
        for (name, m) in &dynamic.middlewares {
            let MiddlewareConfig::ForwardAuth(fa) = m else {
                continue;
            };
            if fa.address.scheme_str() != Some("https") {
                continue;
            }
            match client::client_config(&fa.tls, false) {
                Ok(c) => {
                    by_middleware.insert(name.clone(), Arc::new(c));
                }
                Err(e) => unbuilt.push(Unbuilt {
                    element: Some((ElementKind::Middleware, name.clone())),
                    error: e.at(
                        &format!("http.middlewares.{name}.forwardAuth.tls"),
                        &fa.tls_at,
                    ),
                }),
            }
        }
        let default_client = client::client_config(&Default::default(), false).map(Arc::new);
        let default_client = match default_client {
            Ok(c) => Some(c),
            Err(e) => {
                fatal.push(error_at(
                    &Origin::default(),
                    "http.serversTransports",
                    e.message,
                ));
                None
            }
        };
        let Some(default_client) = default_client.filter(|_| fatal.is_empty()) else {
            return Err(ConfigErrors::sorted(fatal));
        };
        *built = keep;
        Ok(Prepared {
            certs: CertSet::new(&loaded, default),
            tls: TlsSnapshot {
                options,
                store: Arc::clone(&self.store),
            },
            upstream: UpstreamClients {
                by_transport,
                by_middleware,
                default: default_client,
            },
            unbuilt,
        })
    }

    /// The built options `name`: the previous build when neither the
    /// options nor their CA files changed, else a new one.
    fn build(
        &self,
        built: &mut HashMap<String, Built>,
        name: &str,
        o: &TlsOptionsConfig,
    ) -> Result<Built, String> {
        let mut bare = o.clone();
        bare.origin = Origin::default();
        bare.path.clear();
        let cas = o
            .ca_files
            .iter()
            .map(|f| f.read().map_err(|e| format!("clientAuth.caFiles: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let key = (bare, cas);
        if let Some(b) = built.remove(name)
            && b.key == key
        {
            return Ok(b);
        }
        let config = options::server_config(o, Arc::clone(&self.store))?;
        Ok(Built {
            key,
            config: Arc::new(config),
        })
    }

    /// Makes `certs` the set every new handshake is served from.
    pub fn publish(&self, certs: CertSet) {
        self.store.replace(certs);
    }
}
