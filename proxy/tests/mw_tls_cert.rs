//! `passTLSClientCert` over real mutual TLS (rcgen certificates, rustls
//! clients), against a backend that echoes what it received: `pem` with
//! one certificate and with a chain, `info` with every subject and
//! issuer field, `serialNumber`, `notBefore`, `notAfter` and `sans`, in
//! Traefik 3.7's order and escaping; a field left off; no header without
//! a client certificate (TLS without one, plain HTTP), and a client's own
//! header never passing for the proxy's.

mod support;

use base64::Engine as _;
use rcgen::{CertificateParams, DnType, SanType, SerialNumber, date_time_ymd};
use support::tls::{Ca, ClientOpts, Leaf, client_config, connect_checked};
use support::*;

const DC: &[u64] = &[0, 9, 2342, 19200300, 100, 1, 25];
const SERIAL: &[u64] = &[2, 5, 4, 5];

/// A subject written in another order than Go prints it, so the test
/// shows the reordering.
fn name(p: &mut CertificateParams, cn: &str, org: &str) {
    let dn = &mut p.distinguished_name;
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationalUnitName, "Ops");
    dn.push(DnType::CustomDnType(SERIAL.to_vec()), "42");
    dn.push(DnType::OrganizationName, org);
    dn.push(DnType::LocalityName, "Toulouse");
    dn.push(DnType::StateOrProvinceName, "Occitanie");
    dn.push(DnType::CountryName, "FR");
    dn.push(DnType::CustomDnType(DC.to_vec()), "example");
}

fn client(ca: &Ca) -> Leaf {
    ca.client_with(|p| {
        name(p, "alice smith", "Acme, Inc.");
        p.serial_number = Some(SerialNumber::from(vec![0x01, 0x02, 0x03]));
        p.not_before = date_time_ymd(2024, 1, 2);
        p.not_after = date_time_ymd(2036, 5, 6);
        p.subject_alt_names = vec![
            SanType::URI("spiffe://acme/alice".try_into().unwrap()),
            SanType::IpAddress("2001:db8::7".parse().unwrap()),
            SanType::Rfc822Name("alice@example.test".try_into().unwrap()),
            SanType::IpAddress("10.0.0.7".parse().unwrap()),
            SanType::DnsName("alice.test".try_into().unwrap()),
        ];
    })
}

fn config(b: &Backend, ca_file: &str) -> String {
    format!(
        r#"http:
  routers:
    pem:
      rule: "Host(`pem.test`)"
      service: s
      middlewares: [pem]
      tls: {{}}
    info:
      rule: "Host(`info.test`)"
      service: s
      middlewares: [info]
      tls: {{}}
    some:
      rule: "Host(`some.test`)"
      service: s
      middlewares: [some]
      tls: {{}}
    plain:
      rule: "Host(`plain.test`)"
      service: s
      middlewares: [pem, info]
  services:
    s:
      loadBalancer:
        servers:
          - url: "http://{b}"
  middlewares:
    pem:
      passTLSClientCert:
        pem: true
    info:
      passTLSClientCert:
        info:
          notAfter: true
          notBefore: true
          sans: true
          serialNumber: true
          subject:
            country: true
            province: true
            locality: true
            organization: true
            organizationalUnit: true
            commonName: true
            serialNumber: true
            domainComponent: true
          issuer:
            country: true
            province: true
            locality: true
            organization: true
            commonName: true
            serialNumber: true
            domainComponent: true
    some:
      passTLSClientCert:
        info:
          notAfter: true
          subject:
            commonName: true
            organization: true
tls:
  options:
    default:
      clientAuth:
        caFiles: ["{ca_file}"]
        clientAuthType: VerifyClientCertIfGiven
"#,
        b = b.addr
    )
}

/// What the backend received in header `name` for a GET to `host` over
/// TLS with `cert` (or none).
async fn received(p: &TestProxy, cert: Option<&Leaf>, host: &str, name: &str) -> Option<String> {
    let opts = ClientOpts {
        client_cert: cert.cloned(),
        ..ClientOpts::default()
    };
    let s = connect_checked(p.web, Some(host), client_config(&opts))
        .await
        .unwrap();
    let r = support::tls::get(s, host, "/").await;
    assert_eq!(r.status, 200, "{host}: {}", r.text());
    r.json()["headers"][name].as_str().map(str::to_owned)
}

fn b64(der: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// Go's `url.QueryEscape` of the ASCII the test expects.
fn escaped(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out += &format!("%{b:02X}"),
        }
    }
    out
}

const CERT: &str = "x-forwarded-tls-client-cert";
const INFO: &str = "x-forwarded-tls-client-cert-info";

#[tokio::test]
async fn pem_passes_the_certificate_and_its_chain_in_base64() {
    let ca = Ca::new("client CA");
    let b = backend("app");
    let dir = TempDir::new("tls-cert");
    let ca_file = dir.write("ca.pem", &ca.pem);
    let p = start_proxy(&config(&b, &ca_file.display().to_string()));
    let leaf = client(&ca);
    assert_eq!(
        received(&p, Some(&leaf), "pem.test", CERT).await,
        Some(b64(&leaf.der))
    );
    let mut chained = leaf.clone();
    chained.chain = vec![ca.der()];
    assert_eq!(
        received(&p, Some(&chained), "pem.test", CERT).await,
        Some(format!("{},{}", b64(&leaf.der), b64(&ca.der())))
    );
    // No info asked: no info header.
    assert_eq!(received(&p, Some(&leaf), "pem.test", INFO).await, None);
}

#[tokio::test]
async fn info_writes_every_field_in_traefiks_order_and_escaping() {
    let ca = Ca::with("Client CA", |p| name(p, "Client CA", "Acme CA"));
    let b = backend("app");
    let dir = TempDir::new("tls-cert");
    let ca_file = dir.write("ca.pem", &ca.pem);
    let p = start_proxy(&config(&b, &ca_file.display().to_string()));
    let leaf = client(&ca);
    let subject =
        "DC=example,C=FR,ST=Occitanie,L=Toulouse,O=Acme, Inc.,OU=Ops,SN=42,CN=alice smith";
    // The issuer has no organizationalUnit option.
    let issuer = "DC=example,C=FR,ST=Occitanie,L=Toulouse,O=Acme CA,SN=42,CN=Client CA";
    // Grouped by kind as Go does (DNS, e-mail, IP, URI), each kind in the
    // certificate's order.
    let sans = "alice.test,alice@example.test,2001:db8::7,10.0.0.7,spiffe://acme/alice";
    let want = format!(
        r#"Subject="{subject}";Issuer="{issuer}";SerialNumber="66051";NB="1704153600";NA="2093644800";SAN="{sans}""#
    );
    assert_eq!(
        received(&p, Some(&leaf), "info.test", INFO).await,
        Some(escaped(&want))
    );
    // Only the switches set, the rest left out.
    let want = r#"Subject="O=Acme, Inc.,CN=alice smith";NA="2093644800""#;
    assert_eq!(
        received(&p, Some(&leaf), "some.test", INFO).await,
        Some(escaped(want))
    );
    // A chain: one entry per certificate, joined by a comma before
    // escaping (the CA is its own issuer, and has no SANs).
    let mut chained = leaf.clone();
    chained.chain = vec![ca.der()];
    let ca_subject = "O=Acme CA,CN=Client CA";
    let got = received(&p, Some(&chained), "some.test", INFO)
        .await
        .unwrap();
    let ca_not_after = {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let der = ca.der();
        let (_, c) = X509Certificate::from_der(der.as_ref()).unwrap();
        c.validity().not_after.timestamp()
    };
    assert_eq!(
        got,
        escaped(&format!(
            r#"{want},Subject="{ca_subject}";NA="{ca_not_after}""#
        ))
    );
}

#[tokio::test]
async fn without_a_client_certificate_nothing_is_set_and_a_clients_header_never_passes() {
    let ca = Ca::new("client CA");
    let b = backend("app");
    let dir = TempDir::new("tls-cert");
    let ca_file = dir.write("ca.pem", &ca.pem);
    let p = start_proxy(&config(&b, &ca_file.display().to_string()));
    // TLS without a client certificate.
    assert_eq!(received(&p, None, "pem.test", CERT).await, None);
    assert_eq!(received(&p, None, "info.test", INFO).await, None);
    // Plain HTTP, the client sending the headers itself: removed (it is
    // not a trusted forwarder) and not set again.
    let mut c = H1::connect(p.web).await;
    let req = http::Request::get("/")
        .header("host", "plain.test")
        .header(CERT, "forged")
        .header(INFO, "forged")
        .body(empty())
        .unwrap();
    let r = c.send(req).await.unwrap();
    assert_eq!(r.status, 200);
    let h = &r.json()["headers"];
    assert!(h.get(CERT).is_none() && h.get(INFO).is_none(), "{h}");
}

#[test]
fn its_options_are_checked_where_written() {
    let err = dynamic_errors(
        "http:\n  middlewares:\n    m:\n      passTLSClientCert:\n        info:\n          issuer:\n            organizationalUnit: true\n",
    );
    assert!(err.contains("organizationalUnit"), "{err}");
    let err = dynamic_errors(
        "http:\n  middlewares:\n    m:\n      passTLSClientCert:\n        pem: maybe\n",
    );
    assert!(err.contains("pem"), "{err}");
}
