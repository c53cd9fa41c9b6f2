//! Certificates as the store serves them: PEM read (a file or inline
//! text, rustls-pki-types' parser), the key loaded by aws-lc-rs and checked
//! against the certificate, and the names it answers for (subject common
//! name, DNS and IP subject alternative names, lower-case, as Traefik
//! collects them). Also the self-signed certificate generated at start
//! when no default certificate is configured, as Traefik generates one.
//!
//! Control plane only: runs when a configuration is built.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::X509Certificate;

use crate::config::PemSource;

/// A certificate with its key, ready to serve.
#[derive(Debug, Clone)]
pub struct LoadedCert {
    /// Chain and signing key.
    pub key: Arc<CertifiedKey>,
    /// The names it serves (lower-case; wildcards as `*.example.com`; IPs
    /// in their text form).
    pub names: Vec<String>,
}

/// The CN of the certificate generated when none is configured (Traefik's).
pub const GENERATED_CN: &str = "TRAEFIK DEFAULT CERT";

/// Reads the certificate chain `cert` and its private key `key` (RSA,
/// ECDSA or Ed25519; PKCS#1, SEC1 or PKCS#8).
pub fn load(
    cert: &PemSource,
    key: &PemSource,
    provider: &CryptoProvider,
) -> Result<LoadedCert, String> {
    let (chain, key_der) = read_pair(cert, key)?;
    let names = names_of(&chain[0]).map_err(|e| format!("certFile {}: {e}", cert.describe()))?;
    let certified = CertifiedKey::from_der(chain, key_der, provider).map_err(|e| {
        format!(
            "certFile {} with keyFile {}: {e}",
            cert.describe(),
            key.describe()
        )
    })?;
    Ok(LoadedCert {
        key: Arc::new(certified),
        names,
    })
}

/// The chain (leaf first) and private key of a PEM pair.
fn read_pair(
    cert: &PemSource,
    key: &PemSource,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let cert_pem = cert.read()?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("certFile {}: invalid PEM: {e}", cert.describe()))?;
    if chain.is_empty() {
        return Err(format!(
            "certFile {}: no CERTIFICATE block",
            cert.describe()
        ));
    }
    let key_pem = key.read()?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("keyFile {}: no usable private key: {e}", key.describe()))?;
    Ok((chain, key_der))
}

/// The names a leaf certificate serves: its CN, DNS SANs and IP SANs.
pub fn names_of(leaf: &CertificateDer<'_>) -> Result<Vec<String>, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let mut names = Vec::new();
    for cn in cert.subject().iter_common_name() {
        if let Ok(s) = cn.as_str() {
            names.push(s.to_ascii_lowercase());
        }
    }
    names.extend(sans(&cert).iter().map(|s| s.to_ascii_lowercase()));
    names.sort();
    names.dedup();
    Ok(names)
}

/// A certificate's DNS (as written) and IP (in text form) subject
/// alternative names, in certificate order.
pub fn sans(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(s) => out.push((*s).to_owned()),
                GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).ok().map(std::net::IpAddr::from),
                        16 => <[u8; 16]>::try_from(*b).ok().map(std::net::IpAddr::from),
                        _ => None,
                    };
                    out.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    out
}

/// A self-signed ECDSA P-256 certificate for `GENERATED_CN` and a random
/// `<hex>.traefik.default` name, as Traefik serves when no default
/// certificate is configured.
pub fn generate_default(provider: &CryptoProvider) -> Result<LoadedCert, String> {
    let mut random = [0u8; 16];
    provider
        .secure_random
        .fill(&mut random)
        .map_err(|e| format!("random: {e:?}"))?;
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let domain = format!("{hex}.traefik.default");
    let mut params = rcgen::CertificateParams::new(vec![domain])
        .map_err(|e| format!("default certificate: {e}"))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, GENERATED_CN);
    let key = rcgen::KeyPair::generate().map_err(|e| format!("default certificate: {e}"))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("default certificate: {e}"))?;
    let der = CertificateDer::from(cert.der().to_vec());
    let names = names_of(&der)?;
    let key_der = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| format!("default certificate: {e}"))?;
    let certified = CertifiedKey::from_der(vec![der], key_der, provider)
        .map_err(|e| format!("default certificate: {e}"))?;
    Ok(LoadedCert {
        key: Arc::new(certified),
        names,
    })
}

/// The certificates of CA files, for verifying client certificates.
pub fn read_cas(files: &[PemSource]) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for f in files {
        let pem = f.read()?;
        let mut n = 0;
        for c in CertificateDer::pem_slice_iter(&pem) {
            let c = c.map_err(|e| format!("caFiles {}: invalid PEM: {e}", f.describe()))?;
            roots
                .add(c)
                .map_err(|e| format!("caFiles {}: {e}", f.describe()))?;
            n += 1;
        }
        if n == 0 {
            return Err(format!("caFiles {}: no CERTIFICATE block", f.describe()));
        }
    }
    Ok(roots)
}
