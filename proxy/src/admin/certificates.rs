//! `/api/certificates[/{id}]` and the overview's `certificates` section,
//! as Traefik 3.7's `pkg/api` shows them: every certificate of the served
//! set, then the default one unless it is the generated one, each once by
//! its SHA-256 fingerprint (its `name` and id), with its names, validity,
//! issuer, key and status (`expired`, `warning` under 30 days left,
//! `enabled`). Go's names for signature algorithms and key types.
//!
//! Control plane: runs on the blocking pool for an API call, parsing the
//! certificates of one snapshot; never touches a handshake.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use serde_json::{Value, json};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use crate::observe::access_log::rfc3339_nano;
use crate::snapshot::Snapshot;
use crate::tls::certs::GENERATED_CN;

/// A certificate with under this long left is shown as `warning`.
const WARN_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Every certificate `snap` serves, as the API lists them (unsorted).
pub(super) fn all(snap: &Snapshot, now: SystemTime) -> Vec<Value> {
    let set = snap.tls.store.current();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for key in set.certificates() {
        let Some(der) = key.cert.first() else {
            continue;
        };
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            continue;
        };
        let v = represent(&cert, der, now);
        if v["commonName"] == GENERATED_CN || !seen.insert(v["name"].to_string()) {
            continue;
        }
        out.push(v);
    }
    out
}

/// Whether `v` passes the list's `search` (in its common name, issuer
/// organisation and name, and SANs, ignoring case) and `status`.
pub(super) fn keep(v: &Value, search: &str, status: &str) -> bool {
    let s = |k: &str| v[k].as_str().unwrap_or("");
    let status_ok = status.is_empty() || s("status").eq_ignore_ascii_case(status);
    let search = search.to_lowercase();
    let found = |t: &str| t.to_lowercase().contains(&search);
    let sans = v["sans"].as_array().into_iter().flatten();
    status_ok
        && (search.is_empty()
            || found(s("commonName"))
            || found(s("issuerOrg"))
            || found(s("issuerCN"))
            || sans.filter_map(Value::as_str).any(found))
}

/// The overview's section: how many, how many close to expiry
/// (`warnings`) and expired (`errors`).
pub(super) fn section(certs: &[Value]) -> Value {
    let count = |s: &str| certs.iter().filter(|c| c["status"] == s).count();
    json!({"total": certs.len(), "warnings": count("warning"), "errors": count("expired")})
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn time(t: x509_parser::time::ASN1Time) -> SystemTime {
    let secs = t.timestamp();
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// One certificate as Traefik's `certificateRepresentation`.
fn represent(cert: &X509Certificate<'_>, der: &[u8], now: SystemTime) -> Value {
    let fingerprint = hex(digest::digest(&digest::SHA256, der).as_ref());
    let spki = hex(digest::digest(&digest::SHA256, cert.public_key().raw).as_ref());
    let mut sans = crate::tls::certs::sans(cert);
    sans.sort();
    let first = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>>| {
        it.next()
            .and_then(|a| a.as_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    // Go's `Name.CommonName` is the last CN.
    let cn = |name: &x509_parser::x509::X509Name<'_>| {
        name.iter_common_name()
            .last()
            .and_then(|a| a.as_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (subject, issuer) = (cert.subject(), cert.issuer());
    let not_after = time(cert.validity().not_after);
    let status = match not_after.duration_since(now) {
        Err(_) => "expired",
        Ok(left) if left < WARN_BEFORE => "warning",
        Ok(_) => "enabled",
    };
    let (key_type, key_size) = key_info(cert);
    let mut v = json!({
        "name": fingerprint,
        "sans": sans,
        "notAfter": rfc3339_nano(not_after),
        "notBefore": rfc3339_nano(time(cert.validity().not_before)),
        "serialNumber": cert.tbs_certificate.serial.to_string(),
        "commonName": cn(subject),
        "version": format!("v{}", cert.version().0 + 1),
        "keyType": key_type,
        "signatureAlgorithm": signature_algorithm(&cert.signature_algorithm.algorithm.to_id_string()),
        "certFingerprint": fingerprint,
        "publicKeyFingerprint": spki,
        "status": status,
    });
    // Go leaves these out when empty.
    for (field, value) in [
        ("issuerOrg", first(&mut issuer.iter_organization())),
        ("issuerCN", cn(issuer)),
        ("issuerCountry", first(&mut issuer.iter_country())),
        ("organization", first(&mut subject.iter_organization())),
        ("country", first(&mut subject.iter_country())),
    ] {
        if !value.is_empty() {
            v[field] = json!(value);
        }
    }
    if key_size > 0 {
        v["keySize"] = json!(key_size);
    }
    v
}

/// Go's key type and size: RSA and its modulus bits, ECDSA and its
/// curve's bits, else `Unknown` (Ed25519 too) without a size.
fn key_info(cert: &X509Certificate<'_>) -> (&'static str, usize) {
    match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => ("RSA", rsa.key_size()),
        Ok(PublicKey::EC(point)) => {
            let bits = match point.data().len() {
                65 => 256,
                97 => 384,
                133 => 521,
                n => (n.saturating_sub(1) / 2) * 8,
            };
            ("ECDSA", bits)
        }
        _ => ("Unknown", 0),
    }
}

/// Go's `x509.SignatureAlgorithm.String()` of a signature OID.
fn signature_algorithm(oid: &str) -> &'static str {
    match oid {
        "1.2.840.113549.1.1.2" => "MD2-RSA",
        "1.2.840.113549.1.1.4" => "MD5-RSA",
        "1.2.840.113549.1.1.5" => "SHA1-RSA",
        "1.2.840.113549.1.1.11" => "SHA256-RSA",
        "1.2.840.113549.1.1.12" => "SHA384-RSA",
        "1.2.840.113549.1.1.13" => "SHA512-RSA",
        "1.2.840.113549.1.1.10" => "SHA256-RSAPSS",
        "1.2.840.10045.4.1" => "ECDSA-SHA1",
        "1.2.840.10045.4.3.2" => "ECDSA-SHA256",
        "1.2.840.10045.4.3.3" => "ECDSA-SHA384",
        "1.2.840.10045.4.3.4" => "ECDSA-SHA512",
        "1.3.101.112" => "Ed25519",
        _ => "0",
    }
}
