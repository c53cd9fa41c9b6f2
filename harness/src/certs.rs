//! The TLS certificate of a run: one self-signed ECDSA P-256 certificate
//! (rcgen) for `bench.test`, `localhost` and 127.0.0.1, written as PEM for
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

/// What the report says the certificate is.
pub(crate) const DESCRIPTION: &str =
    "self-signed ECDSA P-256 / SHA-256 certificate for bench.test (rcgen)";

/// Generates the certificate into `dir`.
pub(crate) fn generate(dir: &Path) -> Result<CertFiles, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let names = vec![
        crate::load::tls::SERVER_NAME.to_owned(),
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
    ];
    let ck = rcgen::generate_simple_self_signed(names).map_err(|e| format!("rcgen: {e}"))?;
    let cert_pem = ck.cert.pem();
    let key_pem = ck.signing_key.serialize_pem();
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
