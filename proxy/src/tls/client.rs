//! TLS towards `https://` servers: a rustls client configuration per
//! servers transport (`serverName`, `insecureSkipVerify`, `rootCAs` or the
//! system's roots, client certificates chosen per handshake as Go chooses
//! them, versions and TLS 1.2 suites, `peerCertURI`, ALPN `h2` unless
//! `disableHTTP2`).
//!
//! Control plane only: built when a configuration is applied; the pool
//! only clones the `Arc` per connection it dials.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use x509_parser::extensions::GeneralName;

use super::certs::{load, read_cas};
use super::names::TlsVersion;
use super::options::provider_with;
use crate::config::{ConfigError, Origin, UpstreamTlsConfig};

/// Why a transport's TLS could not be built, and which of its keys.
#[derive(Debug)]
pub struct ClientError {
    /// What is wrong.
    pub message: String,
    /// The key under the transport (`rootCAs`; empty: the transport), or
    /// an item's own key path and position (`certificates[1]`).
    pub at: Result<(String, Origin), &'static str>,
}

impl ClientError {
    fn under(key: &'static str, message: String) -> ClientError {
        ClientError {
            message,
            at: Err(key),
        }
    }

    /// The error of the TLS settings at key `base` (a transport,
    /// `http.serversTransports.<name>`), written at `origin`.
    pub fn at(self, base: &str, origin: &Origin) -> ConfigError {
        let (key, origin) = match self.at {
            Ok((key, origin)) => (key, origin),
            Err("") => (base.to_owned(), origin.clone()),
            Err(k) => (format!("{base}.{k}"), origin.clone()),
        };
        ConfigError {
            file: origin.file.clone(),
            key,
            line: (origin.line > 0).then_some(origin.line),
            column: (origin.line > 0).then_some(origin.column),
            message: self.message,
        }
    }
}

/// The system's trusted roots, read once.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    Arc::clone(ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "reading the system's trusted certificates");
        }
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        tracing::debug!(added, ignored, "system trusted certificates");
        Arc::new(roots)
    }))
}

/// The client configuration of a transport's TLS settings `t`.
pub fn client_config(
    t: &UpstreamTlsConfig,
    disable_http2: bool,
) -> Result<ClientConfig, ClientError> {
    let provider = Arc::new(provider_with(t.cipher_suites.as_deref(), None));
    let min = t.min_version.unwrap_or(TlsVersion::Tls12);
    let max = t.max_version.unwrap_or(TlsVersion::Tls13);
    if min > max {
        return Err(ClientError::under(
            "minVersion",
            "minVersion is above maxVersion".to_owned(),
        ));
    }
    let mut versions = Vec::new();
    if max >= TlsVersion::Tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if min <= TlsVersion::Tls12 {
        versions.push(&rustls::version::TLS12);
    }
    let roots = if t.root_cas.is_empty() {
        system_roots()
    } else {
        Arc::new(
            read_cas(&t.root_cas)
                .map_err(|e| ClientError::under("rootCAs", e.replace("caFiles", "rootCAs")))?,
        )
    };
    let webpki =
        WebPkiServerVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
            .build()
            .map_err(|e| ClientError::under("rootCAs", format!("rootCAs: {e}")));
    let verifier: Arc<dyn ServerCertVerifier> = Arc::new(Verifier {
        webpki: if t.insecure_skip_verify {
            None
        } else {
            Some(webpki?)
        },
        roots,
        peer_uri: t.peer_cert_uri.clone(),
        provider: Arc::clone(&provider),
    });
    let mut certificates = Vec::with_capacity(t.certificates.len());
    for c in &t.certificates {
        let loaded = load(&c.cert, &c.key, &provider).map_err(|e| ClientError {
            message: e,
            at: Ok((c.path.clone(), c.origin.clone())),
        })?;
        certificates.push(ClientCert::new(loaded.key).map_err(|e| ClientError {
            message: e,
            at: Ok((c.path.clone(), c.origin.clone())),
        })?);
    }
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| ClientError::under("", format!("no usable TLS configuration: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = if certificates.is_empty() {
        builder.with_no_client_auth()
    } else {
        builder.with_client_cert_resolver(Arc::new(ClientCerts(certificates)))
    };
    config.alpn_protocols = if disable_http2 {
        vec![b"http/1.1".to_vec()]
    } else {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    };
    Ok(config)
}

/// A client certificate and the issuers of its chain (DER names, to match
/// a server's acceptable CAs).
#[derive(Debug)]
struct ClientCert {
    key: Arc<CertifiedKey>,
    issuers: Vec<Vec<u8>>,
}

impl ClientCert {
    fn new(key: Arc<CertifiedKey>) -> Result<ClientCert, String> {
        let issuers = key
            .cert
            .iter()
            .map(|c| {
                x509_parser::parse_x509_certificate(c)
                    .map(|(_, x)| x.issuer().as_raw().to_vec())
                    .map_err(|e| format!("certFile: not an X.509 certificate: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(ClientCert { key, issuers })
    }
}

/// A transport's `certificates`, chosen per handshake as Go's
/// `getClientCertificate` chooses: the first whose key can sign with one
/// of the schemes the server accepts and, when the server names the CAs
/// it accepts, whose chain has a certificate issued by one of them. None
/// matching: no certificate is sent (the server decides).
#[derive(Debug)]
struct ClientCerts(Vec<ClientCert>);

impl ResolvesClientCert for ClientCerts {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.0
            .iter()
            .find(|c| {
                c.key.key.choose_scheme(sigschemes).is_some()
                    && (root_hint_subjects.is_empty()
                        || c.issuers
                            .iter()
                            .any(|i| root_hint_subjects.contains(&&i[..])))
            })
            .map(|c| Arc::clone(&c.key))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The name a connection to `host` asks for (SNI) and verifies.
pub fn server_name(t: &UpstreamTlsConfig, host: &str) -> Result<ServerName<'static>, String> {
    let name = t.server_name.as_deref().unwrap_or(host);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(name.to_owned()).map_err(|e| format!("server name {name:?}: {e}"))
}

/// Go's verification of a transport: the chain and name (unless
/// `insecureSkipVerify`), and with `peerCertURI` the chain (without the
/// name, as Traefik's `verifyChain`) and a URI SAN equal to it.
#[derive(Debug)]
struct Verifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    roots: Arc<RootCertStore>,
    peer_uri: Option<String>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if let Some(v) = &self.webpki {
            v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        }
        if let Some(uri) = &self.peer_uri {
            let parsed = ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &parsed,
                &self.roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
            if !has_uri(end_entity, uri) {
                return Err(Error::General(format!(
                    "peer certificate mismatch: no SAN URI in peer certificate matches {uri}"
                )));
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Whether `cert` has a URI SAN equal (ignoring case) to `uri`.
fn has_uri(cert: &CertificateDer<'_>, uri: &str) -> bool {
    let Ok((_, c)) = x509_parser::parse_x509_certificate(cert) else {
        return false;
    };
    let Ok(Some(san)) = c.subject_alternative_name() else {
        return false;
    };
    san.value
        .general_names
        .iter()
        .any(|n| matches!(n, GeneralName::URI(u) if u.eq_ignore_ascii_case(uri)))
}
