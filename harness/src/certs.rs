//! The TLS certificate of a run: one self-signed certificate (rcgen),
//! ECDSA P-256 by default or RSA 2048 (`--tls-key`), for `bench.test`,
//! `localhost` and 127.0.0.1, written as PEM for
//! every server (cert + key apart, and both in one file for HAProxy), which
//! the driver trusts as its only root. Also the backend's rustls server
//! configuration from those files.
//!
//! Runs once per run, before any target starts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Where a run's certificate files are.
#[derive(Debug, Clone)]
pub(crate) struct CertFiles {
    /// The certificate, PEM.
    pub(crate) cert: PathBuf,
    /// Its private key, PEM (PKCS#8).
    pub(crate) key: PathBuf,
    /// Certificate then key in one PEM file (HAProxy's `crt`).
    pub(crate) combined: PathBuf,
}

/// The key type of a run's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum CertKey {
    /// ECDSA P-256, signed with SHA-256.
    #[default]
    #[value(name = "ecdsa-p256")]
    EcdsaP256,
    /// RSA 2048, signed with SHA-256 (PKCS#1 v1.5; handshakes sign with PSS).
    #[value(name = "rsa2048")]
    Rsa2048,
}

impl CertKey {
    /// What the report says the certificate is.
    pub(crate) fn description(self) -> &'static str {
        match self {
            CertKey::EcdsaP256 => {
                "self-signed ECDSA P-256 / SHA-256 certificate for bench.test (rcgen)"
            }
            CertKey::Rsa2048 => "self-signed RSA 2048 / SHA-256 certificate for bench.test (rcgen)",
        }
    }

    fn algorithm(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            CertKey::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            CertKey::Rsa2048 => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

/// Generates a certificate with a `key` key into `dir`.
pub(crate) fn generate(dir: &Path, key: CertKey) -> Result<CertFiles, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let names = vec![
        crate::load::tls::SERVER_NAME.to_owned(),
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
    ];
    let signing_key =
        rcgen::KeyPair::generate_for(key.algorithm()).map_err(|e| format!("rcgen: {e}"))?;
    let cert = rcgen::CertificateParams::new(names)
        .and_then(|p| p.self_signed(&signing_key))
        .map_err(|e| format!("rcgen: {e}"))?;
    let cert_pem = cert.pem();
    let key_pem = signing_key.serialize_pem();
    let files = CertFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        combined: dir.join("combined.pem"),
    };
    let w = |p: &Path, s: &str| std::fs::write(p, s).map_err(|e| format!("{}: {e}", p.display()));
    w(&files.cert, &cert_pem)?;
    w(&files.key, &key_pem)?;
    w(&files.combined, &format!("{cert_pem}{key_pem}"))?;
    Ok(files)
}

/// A rustls server configuration serving `cert` with `key` (the backend's
/// TLS listener, the `direct` target of the TLS scenarios).
pub(crate) fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| format!("backend certificate: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
