//! `passTLSClientCert`: the certificates a client sent in its mutual-TLS
//! handshake passed to the backend, as Traefik 3.7's
//! `pkg/middlewares/passtlsclientcert` writes them:
//! - `pem`: `X-Forwarded-Tls-Client-Cert`, each certificate's DER in
//!   base64 (the PEM without its armour and line breaks), the chain's
//!   certificates joined by `,`;
//! - `info`: `X-Forwarded-Tls-Client-Cert-Info`, per certificate the
//!   chosen fields joined by `;` — `Subject="…"`, `Issuer="…"`,
//!   `SerialNumber="…"`, `NB="…"`, `NA="…"`, `SAN="…"`, in that order, an
//!   empty one left out — the certificates joined by `,`, the whole
//!   query-escaped as Go's `url.QueryEscape` does. A name's parts come
//!   as Go orders them: every `DC` in the certificate's order, then `C`,
//!   `ST`, `L`, `O`, `OU` (each value), `SN`, `CN` (the last one), each
//!   `X=value` joined by `,`.
//!
//! Without client certificates both headers are left as they are (the
//! forwarded-headers stage already removed an untrusted client's). Runs
//! per request only on routers using it: the certificates are parsed
//! and the values built then (a few allocations); no lock.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request};
use rustls_pki_types::CertificateDer;
use x509_parser::asn1_rs::Tag;
use x509_parser::der_parser::num_bigint::BigUint;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::X509Name;

use crate::config::{CertInfo, DnFields, PassTlsClientCert};
use crate::listener::ConnCtx;
use crate::upstream::RequestBody;

static CERT: HeaderName = HeaderName::from_static("x-forwarded-tls-client-cert");
static CERT_INFO: HeaderName = HeaderName::from_static("x-forwarded-tls-client-cert-info");

/// A compiled `passTLSClientCert`.
#[derive(Debug)]
pub struct PassTlsCert {
    pem: bool,
    info: Option<Info>,
}

/// `info`.
#[derive(Debug)]
struct Info {
    subject: Option<DnFields>,
    issuer: Option<DnFields>,
    serial_number: bool,
    not_before: bool,
    not_after: bool,
    sans: bool,
}

impl PassTlsCert {
    /// Compiles `c`.
    pub fn new(c: &PassTlsClientCert) -> Self {
        Self {
            pem: c.pem,
            info: c.info.as_ref().map(|i: &CertInfo| Info {
                subject: i.subject.clone(),
                issuer: i.issuer.clone(),
                serial_number: i.serial_number,
                not_before: i.not_before,
                not_after: i.not_after,
                sans: i.sans,
            }),
        }
    }

    /// Sets the headers from the connection's client certificates.
    pub fn apply(&self, mut req: Request<RequestBody>, conn: &ConnCtx) -> Request<RequestBody> {
        let certs = conn.client_certs();
        if certs.is_empty() {
            tracing::debug!("passTLSClientCert: no client certificate on this connection");
            return req;
        }
        if self.pem {
            set(&mut req, &CERT, pem_value(certs));
        }
        if let Some(info) = &self.info {
            let mut raw = Vec::new();
            for (i, cert) in certs.iter().enumerate() {
                if i > 0 {
                    raw.push(b',');
                }
                info.write(&mut raw, cert);
            }
            set(&mut req, &CERT_INFO, query_escape(&raw));
        }
        req
    }
}

fn set(req: &mut Request<RequestBody>, name: &HeaderName, value: String) {
    // Base64 and query-escaped text are visible ASCII: always a value.
    if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(value)) {
        req.headers_mut().insert(name.clone(), v);
    }
}

/// The chain's DER certificates in base64, joined by `,`.
fn pem_value(certs: &[CertificateDer<'_>]) -> String {
    use base64::Engine as _;
    let mut out = String::new();
    for (i, c) in certs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        base64::engine::general_purpose::STANDARD.encode_string(c.as_ref(), &mut out);
    }
    out
}

impl Info {
    /// Appends one certificate's fields to `out` (nothing for one that
    /// does not parse: the handshake accepted its bytes unverified).
    fn write(&self, out: &mut Vec<u8>, der: &CertificateDer<'_>) {
        let Ok((_, cert)) = X509Certificate::from_der(der.as_ref()) else {
            return;
        };
        let mut fields: Vec<(&str, Vec<u8>)> = Vec::new();
        if let Some(s) = &self.subject {
            fields.push(("Subject", dn(cert.subject(), s)));
        }
        if let Some(s) = &self.issuer {
            fields.push(("Issuer", dn(cert.issuer(), s)));
        }
        if self.serial_number {
            fields.push(("SerialNumber", serial(cert.raw_serial()).into_bytes()));
        }
        let validity = cert.validity();
        if self.not_before {
            // Go writes uint64(Unix()): a date before 1970 wraps alike.
            let t = validity.not_before.timestamp() as u64;
            fields.push(("NB", t.to_string().into_bytes()));
        }
        if self.not_after {
            let t = validity.not_after.timestamp() as u64;
            fields.push(("NA", t.to_string().into_bytes()));
        }
        if self.sans {
            fields.push(("SAN", sans(&cert)));
        }
        let mut first = true;
        for (key, value) in fields.into_iter().filter(|(_, v)| !v.is_empty()) {
            if !first {
                out.push(b';');
            }
            first = false;
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"=\"");
            out.extend_from_slice(&value);
            out.push(b'"');
        }
    }
}

const OID_CN: &str = "2.5.4.3";
const OID_SERIAL: &str = "2.5.4.5";
const OID_C: &str = "2.5.4.6";
const OID_L: &str = "2.5.4.7";
const OID_ST: &str = "2.5.4.8";
const OID_O: &str = "2.5.4.10";
const OID_OU: &str = "2.5.4.11";
const OID_DC: &str = "0.9.2342.19200300.100.1.25";

/// An attribute's value as Go's `asn1` reads a string (the string types
/// it knows; T61 bytes as they are, BMP from UTF-16); `None` for others.
fn text(tag: Tag, data: &[u8]) -> Option<Vec<u8>> {
    match tag {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::NumericString
        | Tag::T61String => Some(data.to_vec()),
        Tag::BmpString => {
            let units = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]));
            let s: String = char::decode_utf16(units)
                .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect();
            Some(s.into_bytes())
        }
        _ => None,
    }
}

/// A name's chosen parts, as Traefik's `getSubjectDNInfo` writes them
/// (without the trailing separator).
fn dn(name: &X509Name<'_>, on: &DnFields) -> Vec<u8> {
    // (oid, value) of every string attribute, in the certificate's order.
    let mut attrs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut dcs: Vec<Vec<u8>> = Vec::new();
    for atv in name.iter().flat_map(|rdn| rdn.iter()) {
        let oid = atv.attr_type().to_id_string();
        let value = atv.attr_value();
        let Some(v) = text(value.tag(), value.as_bytes()) else {
            continue;
        };
        if oid == OID_DC {
            dcs.push(v.clone());
        }
        attrs.push((oid, v));
    }
    let all = |oid: &str| -> Vec<&[u8]> {
        attrs
            .iter()
            .filter(|(o, _)| o == oid)
            .map(|(_, v)| v.as_slice())
            .collect()
    };
    // CommonName and SerialNumber keep the last one, as Go's pkix.Name.
    let last = |oid: &str| -> Vec<&[u8]> { all(oid).into_iter().last().into_iter().collect() };
    let mut parts: Vec<(&str, Vec<&[u8]>)> = Vec::new();
    if on.domain_component {
        parts.push(("DC", dcs.iter().map(Vec::as_slice).collect()));
    }
    let switches = [
        (on.country, "C", all(OID_C)),
        (on.province, "ST", all(OID_ST)),
        (on.locality, "L", all(OID_L)),
        (on.organization, "O", all(OID_O)),
        (on.organizational_unit, "OU", all(OID_OU)),
        (on.serial_number, "SN", last(OID_SERIAL)),
        (on.common_name, "CN", last(OID_CN)),
    ];
    parts.extend(switches.into_iter().filter(|s| s.0).map(|(_, k, v)| (k, v)));
    let mut out = Vec::new();
    for (key, values) in parts {
        for v in values.into_iter().filter(|v| !v.is_empty() || key == "DC") {
            if !out.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(key.as_bytes());
            out.push(b'=');
            out.extend_from_slice(v);
        }
    }
    out
}

/// A certificate's serial number in decimal, signed as Go's `big.Int`
/// reads the DER integer.
fn serial(raw: &[u8]) -> String {
    let magnitude = BigUint::from_bytes_be(raw);
    if raw.first().is_some_and(|b| b & 0x80 != 0) {
        let modulus = BigUint::from(1u8) << (8 * raw.len());
        format!("-{}", modulus - magnitude)
    } else {
        magnitude.to_string()
    }
}

/// The subject alternative names as Go groups them: DNS names, e-mail
/// addresses, IP addresses, URIs, joined by `,`.
fn sans(cert: &X509Certificate<'_>) -> Vec<u8> {
    let Ok(Some(ext)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    let names = &ext.value.general_names;
    let mut list: Vec<String> = Vec::new();
    list.extend(names.iter().filter_map(|n| match n {
        GeneralName::DNSName(d) => Some((*d).to_owned()),
        _ => None,
    }));
    list.extend(names.iter().filter_map(|n| match n {
        GeneralName::RFC822Name(e) => Some((*e).to_owned()),
        _ => None,
    }));
    list.extend(names.iter().filter_map(|n| match n {
        GeneralName::IPAddress(ip) => ip_text(ip),
        _ => None,
    }));
    list.extend(names.iter().filter_map(|n| match n {
        GeneralName::URI(u) => Some((*u).to_owned()),
        _ => None,
    }));
    list.join(",").into_bytes()
}

/// An IP SAN as Go's `net.IP.String` writes it (an IPv4-mapped IPv6
/// address as IPv4).
fn ip_text(raw: &[u8]) -> Option<String> {
    match raw.len() {
        4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(raw).ok()?).to_string()),
        16 => {
            let v6 = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(raw).ok()?);
            Some(match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => v6.to_string(),
            })
        }
        _ => None,
    }
}

/// `bytes` escaped as Go's `url.QueryEscape`: letters, digits and `-_.~`
/// kept, space as `+`, every other byte `%XX` (upper-case hex).
pub(crate) fn query_escape(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 3 / 2);
    for &b in bytes {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_escape_as_go() {
        assert_eq!(
            query_escape(br#"Subject="C=FR,CN=a b";NB="1""#),
            "Subject%3D%22C%3DFR%2CCN%3Da+b%22%3BNB%3D%221%22"
        );
        assert_eq!(query_escape("é~".as_bytes()), "%C3%A9~");
    }

    #[test]
    fn serial_signed_as_go() {
        assert_eq!(serial(&[0x01, 0x00]), "256");
        assert_eq!(serial(&[0x00, 0xff]), "255");
        assert_eq!(serial(&[0xff]), "-1");
        assert_eq!(serial(&[0x80, 0x00]), "-32768");
    }

    /// A DER TLV (bodies under 256 bytes).
    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let len = u8::try_from(body.len()).unwrap();
        let mut v = if len < 128 {
            vec![tag, len]
        } else {
            vec![tag, 0x81, len]
        };
        v.extend_from_slice(body);
        v
    }

    /// A Name of one attribute per RDN: (encoded OID, string tag, value).
    fn name_der(attrs: &[(&[u8], u8, &[u8])]) -> Vec<u8> {
        let rdns: Vec<u8> = attrs
            .iter()
            .flat_map(|(oid, tag, value)| {
                let atv = [tlv(0x06, oid), tlv(*tag, value)].concat();
                tlv(0x31, &tlv(0x30, &atv))
            })
            .collect();
        tlv(0x30, &rdns)
    }

    #[test]
    fn names_as_go_orders_and_repeats_them() {
        const CN: &[u8] = &[0x55, 4, 3];
        const OU: &[u8] = &[0x55, 4, 11];
        const C: &[u8] = &[0x55, 4, 6];
        const DC: &[u8] = &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19];
        let der = name_der(&[
            (CN, 0x0c, b"first"),
            (DC, 0x16, b"example"),
            (OU, 0x0c, b"a"),
            (C, 0x13, b"FR"),
            (OU, 0x1e, &[0, b'b', 0, 0xe9]), // BMPString "bé"
            (DC, 0x16, b"org"),
            (OU, 0x0c, b""),
            (CN, 0x0c, b"last"),
        ]);
        let (_, name) = X509Name::from_der(&der).unwrap();
        let all = DnFields {
            country: true,
            province: true,
            locality: true,
            organization: true,
            organizational_unit: true,
            common_name: true,
            serial_number: true,
            domain_component: true,
        };
        // Every DC first, in order; OUs each (the empty one skipped); the
        // last CN only.
        assert_eq!(
            String::from_utf8(dn(&name, &all)).unwrap(),
            "DC=example,DC=org,C=FR,OU=a,OU=bé,CN=last"
        );
        let cn_only = DnFields {
            common_name: true,
            ..DnFields::default()
        };
        assert_eq!(dn(&name, &cn_only), b"CN=last");
    }

    #[test]
    fn ips_as_go() {
        assert_eq!(ip_text(&[10, 0, 0, 1]).unwrap(), "10.0.0.1");
        let mapped: std::net::Ipv6Addr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(ip_text(&mapped.octets()).unwrap(), "10.0.0.1");
        let v6: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(ip_text(&v6.octets()).unwrap(), "2001:db8::1");
    }
}
