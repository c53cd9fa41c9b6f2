//! TLS termination against real rustls clients, with certificates
//! generated at test time: certificate selection (exact, one-label
//! wildcard, no SNI, default, generated default, `sniStrict`), RSA /
//! ECDSA / Ed25519 keys, ALPN, TLS routers apart from plain ones, TLS
//! options (versions, suites, the five client-authentication modes), the
//! 421 on a Host/SNI options mismatch, ticket resumption, entrypoint
//! `http.tls` and redirections, configuration errors, and middlewares
//! (`headers` STS, `redirectScheme`) seeing a TLS connection as HTTPS.

mod support;

use std::net::SocketAddr;

use rustls::CipherSuite;
use support::tls::{Alg, Ca, ClientOpts, Leaf, client_config, connect, connect_checked, served};
use support::*;

/// A PEM value as a YAML block scalar at `indent`.
fn block(pem: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut s = String::from("|\n");
    for line in pem.lines() {
        s += &format!("{pad}{line}\n");
    }
    s
}

/// A `tls.certificates` entry with inline PEM.
fn cert_entry(leaf: &Leaf) -> String {
    format!(
        "    - certFile: {}      keyFile: {}",
        block(&leaf.cert_pem, 8),
        block(&leaf.key_pem, 8)
    )
}

/// `tls.stores.default.defaultCertificate` with inline PEM.
fn default_entry(leaf: &Leaf) -> String {
    format!(
        "  stores:\n    default:\n      defaultCertificate:\n        certFile: {}        keyFile: {}",
        block(&leaf.cert_pem, 10),
        block(&leaf.key_pem, 10)
    )
}

/// Routers (name, rule, extra YAML under the router) to backend `b`.
fn routers(b: &Backend, routers: &[(&str, &str, &str)]) -> String {
    let mut s = String::from("http:\n  routers:\n");
    for (name, rule, extra) in routers {
        s += &format!(
            "    {name}:\n      rule: {}\n      service: app\n{extra}",
            yaml_str(rule)
        );
    }
    s += &format!(
        "  services:\n    app:\n      loadBalancer:\n        servers:\n          - url: \"http://{}\"\n",
        b.addr
    );
    s
}

const TLS: &str = "      tls: {}\n";

fn no_verify() -> std::sync::Arc<rustls::ClientConfig> {
    client_config(&ClientOpts::default())
}

async fn served_for(
    addr: SocketAddr,
    sni: Option<&str>,
) -> rustls::pki_types::CertificateDer<'static> {
    served(&connect(addr, sni, no_verify()).await.unwrap())
}

#[tokio::test]
async fn certificates_are_chosen_by_sni_exact_before_wildcard_then_ip_then_default() {
    let ca = Ca::new("test CA");
    let exact = ca.server(&["a.example.com"], Alg::EcdsaP256);
    let wild = ca.server(&["*.example.com"], Alg::Rsa2048);
    let by_ip = ca.server(&["127.0.0.1"], Alg::Ed25519);
    let dflt = ca.server(&["default.test"], Alg::EcdsaP256);
    let b = backend("app");
    let dynamic = format!(
        "{}tls:\n  certificates:\n{}{}{}{}",
        routers(&b, &[("any", "PathPrefix(`/`)", TLS)]),
        cert_entry(&wild),
        cert_entry(&exact),
        cert_entry(&by_ip),
        default_entry(&dflt)
    );
    let p = start_proxy(&dynamic);
    assert_eq!(served_for(p.web, Some("a.example.com")).await, exact.der);
    assert_eq!(served_for(p.web, Some("A.Example.COM")).await, exact.der);
    assert_eq!(
        served_for(p.web, Some("b.example.com")).await,
        wild.der,
        "RSA wildcard"
    );
    // A wildcard covers one label only.
    assert_eq!(served_for(p.web, Some("x.b.example.com")).await, dflt.der);
    assert_eq!(served_for(p.web, Some("example.com")).await, dflt.der);
    assert_eq!(served_for(p.web, Some("other.test")).await, dflt.der);
    // No SNI: the local IP names the certificate (Ed25519 here).
    assert_eq!(served_for(p.web, None).await, by_ip.der);

    // A real client verifying the chain gets its answer from the TLS router.
    let opts = ClientOpts {
        roots: Some(ca.roots()),
        ..ClientOpts::default()
    };
    let s = connect(p.web, Some("a.example.com"), client_config(&opts))
        .await
        .unwrap();
    let r = support::tls::get(s, "a.example.com", "/x").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["headers"]["x-forwarded-proto"], "https");
}

#[tokio::test]
async fn without_a_default_certificate_one_is_generated_and_sni_strict_refuses_unknown_names() {
    let ca = Ca::new("test CA");
    let known = ca.server(&["known.test"], Alg::EcdsaP256);
    let b = backend("app");
    let dynamic = format!(
        "{}tls:\n  certificates:\n{}",
        routers(&b, &[("any", "PathPrefix(`/`)", TLS)]),
        cert_entry(&known)
    );
    let p = start_proxy(&dynamic);
    let generated = served_for(p.web, Some("unknown.test")).await;
    let names = proxy::tls::certs::names_of(&generated).unwrap();
    assert!(
        names
            .iter()
            .any(|n| n == &proxy::tls::certs::GENERATED_CN.to_ascii_lowercase()),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.ends_with(".traefik.default")),
        "{names:?}"
    );
    drop(p);

    let strict = format!("{dynamic}  options:\n    default:\n      sniStrict: true\n");
    let p = start_proxy(&strict);
    assert_eq!(served_for(p.web, Some("known.test")).await, known.der);
    assert!(
        connect(p.web, Some("unknown.test"), no_verify())
            .await
            .is_err()
    );
    assert!(
        connect(p.web, None, no_verify()).await.is_err(),
        "no SNI, no IP certificate"
    );
}

#[tokio::test]
async fn tls_routers_answer_only_tls_and_plain_routers_only_plain() {
    let b = backend("app");
    let dynamic = routers(
        &b,
        &[
            ("secure", "PathPrefix(`/secure`)", TLS),
            ("plain", "PathPrefix(`/plain`)", ""),
        ],
    );
    let p = start_proxy(&dynamic);
    assert_eq!(get(p.web, "x.test", "/plain").await.status, 200);
    assert_eq!(get(p.web, "x.test", "/secure").await.status, 404);
    let s = connect(p.web, Some("x.test"), no_verify()).await.unwrap();
    assert_eq!(support::tls::get(s, "x.test", "/secure").await.status, 200);
    let s = connect(p.web, Some("x.test"), no_verify()).await.unwrap();
    assert_eq!(support::tls::get(s, "x.test", "/plain").await.status, 404);
}

#[tokio::test]
async fn alpn_negotiates_h2_or_http11() {
    let b = backend("app");
    let p = start_proxy(&routers(&b, &[("any", "PathPrefix(`/`)", TLS)]));
    for (offer, want, version) in [
        (vec!["h2", "http/1.1"], Some(&b"h2"[..]), "HTTP/2.0"),
        (vec!["http/1.1"], Some(&b"http/1.1"[..]), "HTTP/1.1"),
        (vec![], None, "HTTP/1.1"),
    ] {
        let opts = ClientOpts {
            alpn: offer.clone(),
            ..ClientOpts::default()
        };
        let s = connect(p.web, Some("x.test"), client_config(&opts))
            .await
            .unwrap();
        assert_eq!(s.get_ref().1.alpn_protocol(), want, "{offer:?}");
        let r = support::tls::get(s, "x.test", "/").await;
        assert_eq!(r.status, 200);
        // The upstream leg is HTTP/1.1 either way; the client's version is
        // what the downstream negotiated.
        assert_eq!(r.json()["version"], "HTTP/1.1", "{version}");
    }
}

#[tokio::test]
async fn versions_and_cipher_suites_follow_the_options() {
    let b = backend("app");
    let dynamic = format!(
        "{}tls:\n  options:\n    modern:\n      minVersion: VersionTLS13\n    legacy:\n      minVersion: VersionTLS12\n      maxVersion: VersionTLS12\n      cipherSuites:\n        - TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\n        - TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA\n",
        routers(
            &b,
            &[
                (
                    "m",
                    "Host(`modern.test`)",
                    "      tls:\n        options: modern\n"
                ),
                (
                    "l",
                    "Host(`legacy.test`)",
                    "      tls:\n        options: legacy@file\n"
                ),
            ]
        )
    );
    let p = start_proxy(&dynamic);
    let tls12 = ClientOpts {
        version: Some(&rustls::version::TLS12),
        ..ClientOpts::default()
    };
    assert!(
        connect(p.web, Some("modern.test"), client_config(&tls12))
            .await
            .is_err(),
        "a TLS 1.2 client is refused under a TLS 1.3-only option"
    );
    let s = connect(p.web, Some("legacy.test"), client_config(&tls12))
        .await
        .unwrap();
    assert_eq!(
        s.get_ref().1.negotiated_cipher_suite().unwrap().suite(),
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
    );
    let aes128 = ClientOpts {
        version: Some(&rustls::version::TLS12),
        suites: Some(vec![CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]),
        ..ClientOpts::default()
    };
    assert!(
        connect(p.web, Some("legacy.test"), client_config(&aes128))
            .await
            .is_err(),
        "a suite outside the list is refused"
    );
    let tls13 = ClientOpts {
        version: Some(&rustls::version::TLS13),
        ..ClientOpts::default()
    };
    assert!(
        connect(p.web, Some("legacy.test"), client_config(&tls13))
            .await
            .is_err()
    );
    let s = connect(p.web, Some("modern.test"), client_config(&tls13))
        .await
        .unwrap();
    assert_eq!(support::tls::get(s, "modern.test", "/").await.status, 200);
}

#[tokio::test]
async fn a_host_served_with_other_options_than_the_sni_chose_is_misdirected() {
    let b = backend("app");
    let dynamic = format!(
        "{}tls:\n  options:\n    strict:\n      minVersion: VersionTLS13\n",
        routers(
            &b,
            &[
                ("a", "Host(`a.test`)", TLS),
                (
                    "s",
                    "Host(`s.test`)",
                    "      tls:\n        options: strict\n"
                ),
            ]
        )
    );
    let p = start_proxy(&dynamic);
    let s = connect(p.web, Some("a.test"), no_verify()).await.unwrap();
    assert_eq!(support::tls::get(s, "s.test", "/").await.status, 421);
    let s = connect(p.web, Some("s.test"), no_verify()).await.unwrap();
    assert_eq!(support::tls::get(s, "s.test", "/").await.status, 200);
    // Same options, other host: served (Traefik checks options, not names).
    let dynamic2 = routers(
        &b,
        &[("a", "Host(`a.test`)", TLS), ("c", "Host(`c.test`)", TLS)],
    );
    drop(p);
    let p = start_proxy(&dynamic2);
    let s = connect(p.web, Some("a.test"), no_verify()).await.unwrap();
    assert_eq!(support::tls::get(s, "c.test", "/").await.status, 200);
}

/// Each client-authentication mode against a valid client certificate,
/// none, and one from another CA: whether the handshake (and a request)
/// succeeds.
#[tokio::test]
async fn each_client_auth_mode_accepts_and_refuses_as_go_does() {
    let ca = Ca::new("client CA");
    let other = Ca::new("other CA");
    let valid = ca.client("alice");
    let untrusted = other.client("mallory");
    let b = backend("app");
    let ca_dir = TempDir::new("mtls");
    let ca_file = ca_dir.write("ca.pem", &ca.pem);
    let modes = [
        ("NoClientCert", [true, true, true]),
        ("RequestClientCert", [true, true, true]),
        ("RequireAnyClientCert", [true, false, true]),
        ("VerifyClientCertIfGiven", [true, true, false]),
        ("RequireAndVerifyClientCert", [true, false, false]),
    ];
    for (mode, expect) in modes {
        let dynamic = format!(
            "{}tls:\n  options:\n    default:\n      clientAuth:\n        caFiles: [\"{}\"]\n        clientAuthType: {mode}\n",
            routers(&b, &[("any", "PathPrefix(`/`)", TLS)]),
            ca_file.display()
        );
        let p = start_proxy(&dynamic);
        let clients = [
            ("valid", Some(&valid)),
            ("none", None),
            ("untrusted", Some(&untrusted)),
        ];
        for ((who, client), want) in clients.into_iter().zip(expect) {
            for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
                let opts = ClientOpts {
                    client_cert: client.cloned(),
                    version: Some(version),
                    ..ClientOpts::default()
                };
                let got = match connect_checked(p.web, Some("x.test"), client_config(&opts)).await {
                    Ok(s) => support::tls::get(s, "x.test", "/").await.status == 200,
                    Err(_) => false,
                };
                assert_eq!(got, want, "{mode}, client certificate {who}, {version:?}");
            }
        }
    }
}

#[tokio::test]
async fn session_tickets_resume_unless_disabled() {
    let b = backend("app");
    let base = routers(&b, &[("any", "PathPrefix(`/`)", TLS)]);
    for (extra, resumes) in [
        ("", true),
        (
            "tls:\n  options:\n    default:\n      disableSessionTickets: true\n",
            false,
        ),
    ] {
        let p = start_proxy(&format!("{base}{extra}"));
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let config = client_config(&ClientOpts {
                resumption: true,
                version: Some(version),
                ..ClientOpts::default()
            });
            let first = connect(p.web, Some("x.test"), config.clone())
                .await
                .unwrap();
            // TLS 1.3 tickets arrive after the handshake: a request reads them.
            assert_eq!(support::tls::get(first, "x.test", "/").await.status, 200);
            let second = connect(p.web, Some("x.test"), config).await.unwrap();
            let kind = second.get_ref().1.handshake_kind();
            assert_eq!(
                kind == Some(rustls::HandshakeKind::Resumed),
                resumes,
                "{version:?} {extra:?}: {kind:?}"
            );
        }
    }
}

#[tokio::test]
async fn entrypoint_tls_makes_its_routers_tls_and_redirections_send_plain_requests_there() {
    let b = backend("app");
    let dynamic = routers(&b, &[("any", "PathPrefix(`/`)", "")]);
    let stat = "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\n    http:\n      redirections:\n        entryPoint:\n          to: websecure\n  websecure:\n    address: \"127.0.0.1:0\"\n    http:\n      tls: {}\nproviders:\n  file:\n    filename: \"{DIR}/dynamic.yml\"\n";
    let p = start_proxy_static(&dynamic, stat, 1);
    let secure = p.addr("websecure");
    let r = get(p.web, "app.test:8000", "/some/path?q=1").await;
    assert_eq!(r.status, 301);
    assert_eq!(
        r.headers["location"],
        format!("https://app.test:{}/some/path?q=1", secure.port())
    );
    // A POST keeps its method: 308.
    let raw = raw(
        p.web,
        b"POST /p HTTP/1.1\r\nHost: app.test\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 308"), "{raw}");
    // websecure: the router is TLS there, and answers only TLS.
    assert_eq!(get(secure, "app.test", "/").await.status, 404);
    let s = connect(secure, Some("app.test"), no_verify())
        .await
        .unwrap();
    assert_eq!(support::tls::get(s, "app.test", "/").await.status, 200);
}

/// An error in TLS options other than `default` disables them and the
/// routers using them, as `config/dynamic/isolate.rs` does for every
/// element: a handshake whose SNI names such a router is refused (as
/// Traefik closes it), the router keeps its place (503 over the options
/// another SNI chose), and the others serve.
#[tokio::test]
async fn a_tls_options_error_disables_the_routers_using_them_only() {
    let b = backend("app");
    let dynamic = format!(
        "{}tls:\n  options:\n    broken:\n      cipherSuites: [TLS_NOPE]\n",
        routers(
            &b,
            &[
                ("good", "Host(`good.test`)", TLS),
                (
                    "bad",
                    "Host(`bad.test`)",
                    "      tls:\n        options: broken\n"
                ),
            ]
        )
    );
    let p = start_proxy(&dynamic);
    let s = connect(p.web, Some("good.test"), no_verify())
        .await
        .unwrap();
    assert_eq!(support::tls::get(s, "good.test", "/").await.status, 200);
    assert!(
        connect(p.web, Some("bad.test"), no_verify()).await.is_err(),
        "handshake for a router with broken options"
    );
    let snap = p.running().control().snapshot().load_full();
    let got: Vec<(proxy::config::ElementKind, &str, usize, &[String])> = snap
        .disabled
        .iter()
        .map(|d| {
            (
                d.kind,
                d.name.as_str(),
                d.errors.len(),
                d.because.as_slice(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                proxy::config::ElementKind::Router,
                "bad",
                0,
                &["TLS options \"broken\"".to_owned()][..]
            ),
            (proxy::config::ElementKind::TlsOptions, "broken", 1, &[][..]),
        ]
    );
}

/// What fails when the configuration is built (a file that cannot be
/// read): a certificate is left out and the others are served (Traefik
/// logs and skips it); TLS options whose CA file is missing are disabled
/// with their routers (their handshakes refused); a servers transport
/// whose roots are missing is disabled with its service and routers
/// (503). The rest serves, and each error names its file, line and key.
/// A reload breaking one more certificate keeps serving the rest.
#[tokio::test]
async fn build_errors_disable_only_the_elements_that_use_what_failed() {
    let ca = Ca::new("test CA");
    let good = ca.server(&["good.test"], Alg::EcdsaP256);
    let other = ca.server(&["other.test"], Alg::EcdsaP256);
    let b = backend("app");
    let dir = TempDir::new("tls-build-errors");
    let good_cert = dir.write("good.pem", &good.cert_pem);
    let good_key = dir.write("good.key", &good.key_pem);
    let other_cert = dir.write("other.pem", &other.cert_pem);
    let other_key = dir.write("other.key", &other.key_pem);
    let file_entry = |c: &std::path::Path, k: &std::path::Path| {
        format!(
            "    - certFile: \"{}\"\n      keyFile: \"{}\"\n",
            c.display(),
            k.display()
        )
    };
    let body = |certs: &str| {
        format!(
            "http:\n  routers:\n    good:\n      rule: Host(`good.test`)\n      service: app\n      tls: {{}}\n    other:\n      rule: Host(`other.test`)\n      service: app\n      tls: {{}}\n    mtls:\n      rule: Host(`mtls.test`)\n      service: app\n      tls:\n        options: needca\n    up:\n      rule: Host(`good.test`) && PathPrefix(`/up`)\n      service: secure\n      tls: {{}}\n  services:\n    app:\n      loadBalancer:\n        servers:\n          - url: \"http://{}\"\n    secure:\n      loadBalancer:\n        serversTransport: private\n        servers:\n          - url: \"https://127.0.0.1:1\"\n  serversTransports:\n    private:\n      rootCAs: [\"/nonexistent/root.pem\"]\ntls:\n  certificates:\n{certs}  options:\n    needca:\n      clientAuth:\n        caFiles: [\"/nonexistent/ca.pem\"]\n        clientAuthType: RequireAndVerifyClientCert\n",
            b.addr
        )
    };
    let dynamic = body(&format!(
        "{}    - certFile: /nonexistent/bad.pem\n      keyFile: /nonexistent/bad.key\n{}",
        file_entry(&good_cert, &good_key),
        file_entry(&other_cert, &other_key)
    ));
    // `proxy check` reports each error with its place...
    let err = try_start_proxy(&dynamic).expect_err("check refuses");
    for want in [
        "tls.certificates[1]: cannot read /nonexistent/bad.pem",
        "tls.options.needca: clientAuth.caFiles: cannot read /nonexistent/ca.pem",
        "http.serversTransports.private.rootCAs: cannot read /nonexistent/root.pem",
    ] {
        assert!(err.contains(want), "{want:?} not in:\n{err}");
    }
    assert!(err.contains("dynamic.yml:"), "{err}");
    // ...and the proxy serves what does not depend on them.
    let p = start_proxy(&dynamic);
    assert_eq!(served_for(p.web, Some("good.test")).await, good.der);
    assert_eq!(served_for(p.web, Some("other.test")).await, other.der);
    let s = connect(p.web, Some("good.test"), no_verify())
        .await
        .unwrap();
    assert_eq!(support::tls::get(s, "good.test", "/").await.status, 200);
    let s = connect(p.web, Some("good.test"), no_verify())
        .await
        .unwrap();
    assert_eq!(
        support::tls::get(s, "good.test", "/up").await.status,
        503,
        "router of a disabled transport's service"
    );
    assert!(
        connect(p.web, Some("mtls.test"), no_verify())
            .await
            .is_err(),
        "handshake for a router with unbuilt options"
    );
    let snap = p.running().control().snapshot().load_full();
    let got: Vec<(proxy::config::ElementKind, &str, Vec<String>)> = snap
        .disabled
        .iter()
        .map(|d| (d.kind, d.name.as_str(), d.because.clone()))
        .collect();
    use proxy::config::ElementKind as K;
    assert_eq!(
        got,
        [
            (K::Router, "mtls", vec!["TLS options \"needca\"".to_owned()]),
            (K::Router, "up", vec!["service \"secure\"".to_owned()]),
            (
                K::Service,
                "secure",
                vec!["serversTransport \"private\"".to_owned()]
            ),
            (K::ServersTransport, "private", vec![]),
            (K::TlsOptions, "needca", vec![]),
        ]
    );

    // A reload that breaks the other certificate too: good.test serves on,
    // other.test falls to the default certificate.
    std::fs::write(&other_key, "not a key").unwrap();
    p.running().control().reload().unwrap();
    assert_eq!(served_for(p.web, Some("good.test")).await, good.der);
    assert_ne!(served_for(p.web, Some("other.test")).await, other.der);
    let s = connect(p.web, Some("good.test"), no_verify())
        .await
        .unwrap();
    assert_eq!(support::tls::get(s, "good.test", "/").await.status, 200);
}

#[test]
fn bad_tls_configuration_is_refused_with_its_place() {
    let b = backend("app");
    let r = routers(
        &b,
        &[(
            "any",
            "Host(`a.test`)",
            "      tls:\n        options: modrn\n",
        )],
    );
    let cases = [
        (
            format!("{r}tls:\n  options:\n    modern:\n      minVersion: VersionTLS13\n"),
            "unknown TLS options \"modrn\" (did you mean \"modern\"?)",
        ),
        (
            format!(
                "{}tls:\n  options:\n    default:\n      cipherSuites: [TLS_NOPE]\n",
                routers(&b, &[])
            ),
            "invalid cipher suite \"TLS_NOPE\"",
        ),
        (
            format!(
                "{}tls:\n  options:\n    default:\n      clientAuth:\n        clientAuthType: RequireAndVerifyClientCert\n",
                routers(&b, &[])
            ),
            "clientAuthType RequireAndVerifyClientCert needs clientAuth.caFiles",
        ),
        (
            format!(
                "{}tls:\n  options:\n    default:\n      maxVersion: VersionTLS11\n",
                routers(&b, &[])
            ),
            "no version remains",
        ),
        (
            format!(
                "{}tls:\n  certificates:\n    - certFile: /nonexistent/c.pem\n      keyFile: /nonexistent/k.pem\n",
                routers(&b, &[])
            ),
            "tls.certificates[0]: cannot read /nonexistent/c.pem",
        ),
        (
            routers(
                &b,
                &[(
                    "any",
                    "Host(`a.test`)",
                    "      tls:\n        certResolver: le\n",
                )],
            ),
            "http.routers.any.tls.certResolver: not supported yet",
        ),
    ];
    for (dynamic, want) in cases {
        let err = try_start_proxy(&dynamic).expect_err(&dynamic);
        assert!(err.contains(want), "{want:?} not in:\n{err}");
    }
}

/// Handshakes without pause (no resumption) from two clients while `change`
/// runs once; returns (start time, served certificate or error) of each.
async fn handshake_loop(
    addr: SocketAddr,
    change: impl FnOnce() + Send + 'static,
) -> (
    std::time::Instant,
    Vec<(std::time::Instant, Result<Vec<u8>, String>)>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let mut loops = Vec::new();
    for _ in 0..2 {
        let stop = std::sync::Arc::clone(&stop);
        loops.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = std::time::Instant::now();
                let r = connect(addr, Some("svc.test"), no_verify())
                    .await
                    .map(|s| served(&s).to_vec())
                    .map_err(|e| e.to_string());
                seen.push((t, r));
            }
            seen
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let changed = tokio::task::spawn_blocking(move || {
        change();
        std::time::Instant::now()
    })
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for l in loops {
        all.extend(l.await.unwrap());
    }
    (changed, all)
}

fn check_replacement(
    changed: std::time::Instant,
    seen: &[(std::time::Instant, Result<Vec<u8>, String>)],
    old: &Leaf,
    new: &Leaf,
) {
    let after = changed + std::time::Duration::from_secs(1);
    let mut late = 0;
    for (t, r) in seen {
        let der = r
            .as_ref()
            .unwrap_or_else(|e| panic!("a handshake failed: {e}"));
        assert!(
            der == old.der.as_ref() || der == new.der.as_ref(),
            "a handshake got neither the old nor the new certificate"
        );
        if *t > after {
            late += 1;
            assert_eq!(
                der,
                new.der.as_ref(),
                "a handshake 1 s after the change got the old certificate"
            );
        }
    }
    assert!(
        late > 10,
        "only {late} handshakes after the change ({} in all)",
        seen.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_file_replaces_the_old_without_a_gap() {
    let ca = Ca::new("test CA");
    let old = ca.server(&["svc.test"], Alg::EcdsaP256);
    let new = ca.server(&["svc.test"], Alg::EcdsaP256);
    let certs = std::sync::Arc::new(TempDir::new("renew"));
    let cert = certs.write("svc.crt", &old.cert_pem);
    let key = certs.write("svc.key", &old.key_pem);
    let b = backend("app");
    let dynamic = format!(
        "{}tls:\n  certificates:\n    - certFile: \"{}\"\n      keyFile: \"{}\"\n",
        routers(&b, &[("any", "PathPrefix(`/`)", TLS)]),
        cert.display(),
        key.display()
    );
    let p = start_proxy_with(&dynamic, "", 2);
    let renewed = new.clone();
    let dir = std::sync::Arc::clone(&certs);
    let (changed, seen) = handshake_loop(p.web, move || {
        // Renewed in place as certbot-style tools do: the key first, then
        // the certificate (in between the pair does not match, and that
        // reload is refused: the old pair keeps serving).
        dir.write_atomic("svc.key", &renewed.key_pem);
        dir.write_atomic("svc.crt", &renewed.cert_pem);
    })
    .await;
    check_replacement(changed, &seen, &old, &new);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_replaced_by_a_config_reload_replaces_the_old_without_a_gap() {
    let ca = Ca::new("test CA");
    let old = ca.server(&["svc.test"], Alg::Rsa2048);
    let new = ca.server(&["svc.test"], Alg::EcdsaP256);
    let b = backend("app");
    let base = routers(&b, &[("any", "PathPrefix(`/`)", TLS)]);
    let p = start_proxy_with(
        &format!("{base}tls:\n  certificates:\n{}", cert_entry(&old)),
        "",
        2,
    );
    let path = p.dynamic_path();
    let next = format!("{base}tls:\n  certificates:\n{}", cert_entry(&new));
    let (changed, seen) = handshake_loop(p.web, move || {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, next).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    })
    .await;
    check_replacement(changed, &seen, &old, &new);
}

#[tokio::test]
async fn middlewares_see_a_tls_connection_as_https() {
    let b = backend("app");
    let mut dynamic = routers(
        &b,
        &[
            ("sts", "PathPrefix(`/sts`)", "      middlewares: [sts]\n"),
            (
                "sts-tls",
                "PathPrefix(`/sts`)",
                "      middlewares: [sts]\n      tls: {}\n",
            ),
            ("go", "PathPrefix(`/go`)", "      middlewares: [to-https]\n"),
            (
                "go-tls",
                "PathPrefix(`/go`)",
                "      middlewares: [to-https]\n      tls: {}\n",
            ),
        ],
    );
    dynamic += "  middlewares:\n    sts:\n      headers:\n        stsSeconds: 60\n    \
                to-https:\n      redirectScheme:\n        scheme: https\n";
    let p = start_proxy(&dynamic);
    // `headers` sends STS over the TLS connection only.
    let r = get(p.web, "x.test", "/sts").await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers.get("strict-transport-security").is_none(),
        "plain"
    );
    let s = connect(p.web, Some("x.test"), no_verify()).await.unwrap();
    let r = support::tls::get(s, "x.test", "/sts").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["strict-transport-security"], "max-age=60");
    // `redirectScheme` reads the scheme the proxy set from the connection:
    // a plain request is redirected, the TLS one already is HTTPS.
    let r = get(p.web, "x.test", "/go").await;
    assert_eq!(r.status, 302);
    assert_eq!(r.headers["location"], "https://x.test/go");
    let s = connect(p.web, Some("x.test"), no_verify()).await.unwrap();
    let r = support::tls::get(s, "x.test", "/go").await;
    assert_eq!(r.status, 200, "{:?}", r.headers.get("location"));
    // Both /sts requests and the TLS /go; the redirect never reached it.
    assert_eq!(
        b.stats.requests.load(std::sync::atomic::Ordering::Relaxed),
        3
    );
}
