//! One `tls.options` entry as a rustls `ServerConfig`: versions, the TLS
//! 1.2 suites allowed (TLS 1.3 suites always, as Go), key-exchange groups
//! in the configured order, ALPN, the five client-authentication modes,
//! session tickets, and the store's certificate resolver.
//!
//! Control plane only: built when a configuration is applied (and reused
//! while its options are unchanged, so sessions survive reloads).

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, aws_lc_rs};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{
    CipherSuite, DigitallySignedStruct, DistinguishedName, Error, NamedGroup, ServerConfig,
    SignatureScheme, SupportedProtocolVersion,
};

use super::certs::read_cas;
use super::names::{ClientAuthType, TlsVersion};
use super::store::{CertStore, StoreResolver};
use crate::config::TlsOptionsConfig;

/// The crypto provider of every server configuration: aws-lc-rs, its
/// suites and groups narrowed to what `o` allows.
pub fn provider_for(o: &TlsOptionsConfig) -> CryptoProvider {
    provider_with(o.cipher_suites.as_deref(), o.curve_preferences.as_deref())
}

/// aws-lc-rs with only the TLS 1.2 suites of `suites` (TLS 1.3 suites
/// always, as Go) and the groups of `groups` in that order.
pub fn provider_with(
    suites: Option<&[CipherSuite]>,
    groups: Option<&[NamedGroup]>,
) -> CryptoProvider {
    let mut p = aws_lc_rs::default_provider();
    if let Some(allowed) = suites {
        p.cipher_suites.retain(|s| match s {
            rustls::SupportedCipherSuite::Tls13(_) => true,
            rustls::SupportedCipherSuite::Tls12(_) => allowed.contains(&s.suite()),
        });
    }
    if let Some(groups) = groups {
        p.kx_groups = groups
            .iter()
            .filter_map(|g| {
                aws_lc_rs::ALL_KX_GROUPS
                    .iter()
                    .find(|k| k.name() == *g)
                    .copied()
            })
            .collect();
    }
    p
}

/// The server configuration of options `o`, certificates from `store`.
pub fn server_config(o: &TlsOptionsConfig, store: Arc<CertStore>) -> Result<ServerConfig, String> {
    let provider = Arc::new(provider_for(o));
    let mut versions: Vec<&'static SupportedProtocolVersion> = Vec::new();
    if o.max_version >= TlsVersion::Tls13 && o.min_version <= TlsVersion::Tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if o.min_version <= TlsVersion::Tls12 && o.max_version >= TlsVersion::Tls12 {
        versions.push(&rustls::version::TLS12);
    }
    let verifier: Arc<dyn ClientCertVerifier> = match o.client_auth {
        ClientAuthType::NoClientCert => WebPkiClientVerifier::no_client_auth(),
        ClientAuthType::RequestClientCert | ClientAuthType::RequireAnyClientCert => {
            Arc::new(AnyClientCert {
                mandatory: o.client_auth == ClientAuthType::RequireAnyClientCert,
                algs: provider.signature_verification_algorithms,
            })
        }
        ClientAuthType::VerifyClientCertIfGiven | ClientAuthType::RequireAndVerifyClientCert => {
            let roots = Arc::new(read_cas(&o.ca_files)?);
            let builder = WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(&provider));
            let builder = if o.client_auth == ClientAuthType::VerifyClientCertIfGiven {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder
                .build()
                .map_err(|e| format!("clientAuth.caFiles: {e}"))?
        }
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("no usable TLS configuration: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(StoreResolver {
            store,
            sni_strict: o.sni_strict,
        }));
    config.alpn_protocols = o
        .alpn_protocols
        .iter()
        .map(|p| p.as_bytes().to_vec())
        .collect();
    if o.disable_session_tickets {
        // Go's SessionTicketsDisabled: no resumption at all (Go servers
        // have no session-ID cache).
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
    } else {
        config.ticketer =
            aws_lc_rs::Ticketer::new().map_err(|e| format!("session tickets: {e}"))?;
    }
    Ok(config)
}

/// `RequestClientCert` / `RequireAnyClientCert`: a certificate is asked
/// for (and required by the second) but not verified against any CA; its
/// signature over the handshake still proves the client holds the key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}
