//! The driver's TLS client (rustls, aws-lc-rs): one protocol version, one
//! cipher suite and one key-exchange group, pinned so every target is
//! measured doing the same cryptography, and checked on every handshake.
//! Session resumption is off: every new connection is a full handshake.
//!
//! Built once per run; per connection it only runs the handshake.

use std::path::Path;
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// What a handshake error says when the answer was not TLS at all.
pub(crate) const NOT_TLS: &str = "the target does not speak TLS on this port";

use super::Negotiated;

/// TLS protocol versions the driver can pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub(crate) enum TlsVersion {
    /// TLS 1.2.
    #[value(name = "1.2")]
    V1_2,
    /// TLS 1.3.
    #[value(name = "1.3")]
    #[default]
    V1_3,
}

/// What every TLS connection of a run must negotiate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsPin {
    /// Protocol version.
    pub(crate) version: TlsVersion,
    /// Cipher suite, IANA name (e.g. `TLS13_AES_128_GCM_SHA256`).
    pub(crate) cipher_suite: String,
    /// Key-exchange group (e.g. `X25519`).
    pub(crate) group: String,
}

impl Default for TlsPin {
    fn default() -> Self {
        Self {
            version: TlsVersion::V1_3,
            cipher_suite: "TLS13_AES_128_GCM_SHA256".into(),
            group: "X25519".into(),
        }
    }
}

/// The server name the driver asks for (SNI) and the certificate names.
pub(crate) const SERVER_NAME: &str = "bench.test";

/// A pinned TLS client.
#[derive(Clone)]
pub(crate) struct TlsClient {
    connector: TlsConnector,
    server_name: ServerName<'static>,
    /// What a handshake must negotiate.
    pub(crate) expect: Negotiated,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("expect", &self.expect)
            .finish_non_exhaustive()
    }
}

/// The one of `all` named `want`, or an error listing the names.
fn pick<T: Copy>(
    all: &[T],
    name: impl Fn(&T) -> String,
    want: &str,
    what: &str,
) -> Result<Vec<T>, String> {
    let found: Vec<T> = all.iter().copied().filter(|x| name(x) == want).collect();
    if found.is_empty() {
        let known: Vec<String> = all.iter().map(name).collect();
        return Err(format!(
            "TLS {what} `{want}` unknown (known: {})",
            known.join(", ")
        ));
    }
    Ok(found)
}

fn version_name(v: TlsVersion) -> &'static str {
    match v {
        TlsVersion::V1_2 => "TLSv1_2",
        TlsVersion::V1_3 => "TLSv1_3",
    }
}

impl TlsClient {
    /// A client trusting only the certificate(s) in `ca_pem`, pinned to `pin`.
    pub(crate) fn new(pin: &TlsPin, ca_pem: &Path) -> Result<Self, String> {
        let base = rustls::crypto::aws_lc_rs::default_provider();
        let suites = pick(
            &base.cipher_suites,
            |s| format!("{:?}", s.suite()),
            &pin.cipher_suite,
            "cipher suite",
        )?;
        let groups = pick(
            &base.kx_groups,
            |g| format!("{:?}", g.name()),
            &pin.group,
            "key-exchange group",
        )?;
        let provider = CryptoProvider {
            cipher_suites: suites,
            kx_groups: groups,
            ..base
        };
        let version = match pin.version {
            TlsVersion::V1_2 => &rustls::version::TLS12,
            TlsVersion::V1_3 => &rustls::version::TLS13,
        };
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(ca_pem)
            .map_err(|e| format!("{}: {e}", ca_pem.display()))?;
        for c in certs {
            let c = c.map_err(|e| format!("{}: {e}", ca_pem.display()))?;
            roots
                .add(c)
                .map_err(|e| format!("{}: {e}", ca_pem.display()))?;
        }
        let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[version])
            .map_err(|e| format!("TLS pin {pin:?}: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.resumption = Resumption::disabled();
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            server_name: ServerName::try_from(SERVER_NAME).expect("valid DNS name"),
            expect: Negotiated {
                version: version_name(pin.version).into(),
                cipher_suite: pin.cipher_suite.clone(),
                group: pin.group.clone(),
            },
        })
    }

    /// Handshakes over `tcp` and checks what was negotiated.
    pub(crate) async fn handshake(&self, tcp: TcpStream) -> Result<TlsStream<TcpStream>, String> {
        let s = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| {
                // A record that is not TLS at all: the target serves plain
                // HTTP on this port (e.g. a build without TLS).
                let plain = e
                    .get_ref()
                    .and_then(|i| i.downcast_ref::<rustls::Error>())
                    .is_some_and(|r| matches!(r, rustls::Error::InvalidMessage(_)));
                if plain {
                    format!("TLS handshake: {NOT_TLS} ({e})")
                } else {
                    format!("TLS handshake: {e}")
                }
            })?;
        let got = negotiated(s.get_ref().1);
        if got != self.expect {
            return Err(format!("TLS negotiated {got:?}, pinned {:?}", self.expect));
        }
        Ok(s)
    }
}

/// What a finished handshake negotiated.
pub(crate) fn negotiated(c: &ClientConnection) -> Negotiated {
    let unknown = || "unknown".to_owned();
    Negotiated {
        version: c
            .protocol_version()
            .map_or_else(unknown, |v| format!("{v:?}")),
        cipher_suite: c
            .negotiated_cipher_suite()
            .map_or_else(unknown, |s| format!("{:?}", s.suite())),
        group: c
            .negotiated_key_exchange_group()
            .map_or_else(unknown, |g| format!("{:?}", g.name())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_pins_are_errors_naming_the_choices() {
        let dir = std::env::temp_dir().join(format!("harness-tls-{}", std::process::id()));
        let certs = crate::certs::generate(&dir, crate::certs::CertKey::default()).unwrap();
        let bad = TlsPin {
            cipher_suite: "TLS_NOPE".into(),
            ..TlsPin::default()
        };
        let e = TlsClient::new(&bad, &certs.cert).unwrap_err();
        assert!(
            e.contains("TLS_NOPE") && e.contains("TLS13_AES_128_GCM_SHA256"),
            "{e}"
        );
        let bad = TlsPin {
            group: "P-1".into(),
            ..TlsPin::default()
        };
        let e = TlsClient::new(&bad, &certs.cert).unwrap_err();
        assert!(e.contains("X25519"), "{e}");
        assert!(TlsClient::new(&TlsPin::default(), &certs.cert).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
