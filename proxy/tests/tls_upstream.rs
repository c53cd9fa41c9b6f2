//! `https://` servers through `serversTransports`: a real rustls backend
//! (certificates from a CA generated at test time) reached with a private
//! CA and `serverName`, refused with the wrong CA or name, accepted with
//! `insecureSkipVerify`, HTTP/2 by ALPN unless `disableHTTP2`, a client
//! certificate presented, and connections pooled.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use support::tls::{Alg, Ca, Leaf};
use support::*;

/// A TLS backend answering `{"version": ..}`; counts its connections.
struct TlsBackend {
    addr: SocketAddr,
    connections: Arc<AtomicU64>,
}

fn tls_backend(leaf: &Leaf, client_ca: Option<&Ca>) -> TlsBackend {
    let chain = vec![CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => builder.with_client_cert_verifier(
            rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(ca.roots()),
                provider,
            )
            .build()
            .unwrap(),
        ),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&connections);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let count = Arc::clone(&count);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    count.fetch_add(1, Ordering::Relaxed);
                    let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
                        let body = format!("{{\"version\":\"{:?}\"}}", req.version());
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
    });
    TlsBackend { addr, connections }
}

/// One router to `url` with `transport` (YAML under the transport).
fn config(url: &str, transport: &str) -> String {
    format!(
        "http:\n  routers:\n    r:\n      rule: \"PathPrefix(`/`)\"\n      service: s\n  services:\n    s:\n      loadBalancer:\n        serversTransport: t\n        servers:\n          - url: \"{url}\"\n  serversTransports:\n    t:\n{transport}"
    )
}

#[tokio::test]
async fn https_servers_are_verified_against_the_transport_and_pooled() {
    let ca = Ca::new("backend CA");
    let wrong = Ca::new("wrong CA");
    let leaf = ca.server(&["backend.test"], Alg::EcdsaP256);
    let b = tls_backend(&leaf, None);
    let dir = TempDir::new("upstream-ca");
    let ca_file = dir.write("ca.pem", &ca.pem);
    let wrong_file = dir.write("wrong.pem", &wrong.pem);
    let url = format!("https://{}", b.addr);
    let ok = format!(
        "      serverName: backend.test\n      rootCAs: [\"{}\"]\n",
        ca_file.display()
    );

    // Private CA and serverName: served, over HTTP/2 (ALPN), one pooled
    // connection for several requests.
    let p = start_proxy(&config(&url, &ok));
    for _ in 0..5 {
        let r = get(p.web, "x.test", "/").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["version"], "HTTP/2.0");
    }
    assert_eq!(b.connections.load(Ordering::Relaxed), 1, "pooled");
    drop(p);

    // disableHTTP2: HTTP/1.1, pooled as well.
    let before = b.connections.load(Ordering::Relaxed);
    let p = start_proxy(&config(&url, &format!("{ok}      disableHTTP2: true\n")));
    for _ in 0..5 {
        let r = get(p.web, "x.test", "/").await;
        assert_eq!(r.json()["version"], "HTTP/1.1");
    }
    assert_eq!(b.connections.load(Ordering::Relaxed) - before, 1, "pooled");
    drop(p);

    // The wrong CA, or no serverName (the URL's IP is not in the
    // certificate): refused, 502.
    for t in [
        format!(
            "      serverName: backend.test\n      rootCAs: [\"{}\"]\n",
            wrong_file.display()
        ),
        format!("      rootCAs: [\"{}\"]\n", ca_file.display()),
    ] {
        let p = start_proxy(&config(&url, &t));
        assert_eq!(get(p.web, "x.test", "/").await.status, 502, "{t}");
    }
    // insecureSkipVerify accepts it.
    let p = start_proxy(&config(&url, "      insecureSkipVerify: true\n"));
    assert_eq!(get(p.web, "x.test", "/").await.status, 200);
}

#[tokio::test]
async fn a_transport_presents_its_client_certificate() {
    let ca = Ca::new("backend CA");
    let clients = Ca::new("client CA");
    let leaf = ca.server(&["backend.test"], Alg::Rsa2048);
    let b = tls_backend(&leaf, Some(&clients));
    let me = clients.client("proxy");
    let dir = TempDir::new("upstream-mtls");
    let ca_file = dir.write("ca.pem", &ca.pem);
    let cert = dir.write("client.pem", &me.cert_pem);
    let key = dir.write("client.key", &me.key_pem);
    let url = format!("https://{}", b.addr);
    let base = format!(
        "      serverName: backend.test\n      rootCAs: [\"{}\"]\n",
        ca_file.display()
    );
    let p = start_proxy(&config(&url, &base));
    assert_eq!(
        get(p.web, "x.test", "/").await.status,
        502,
        "no client certificate"
    );
    drop(p);
    let with_cert = format!(
        "{base}      certificates:\n        - certFile: \"{}\"\n          keyFile: \"{}\"\n",
        cert.display(),
        key.display()
    );
    let p = start_proxy(&config(&url, &with_cert));
    let r = get(p.web, "x.test", "/").await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Of several client certificates, each handshake presents the first the
/// backend accepts (issued by a CA it names), as Go chooses; none when no
/// certificate fits (the backend then refuses: 502).
#[tokio::test]
async fn a_transport_presents_the_client_certificate_the_backend_accepts() {
    let ca = Ca::new("backend CA");
    let leaf = ca.server(&["backend.test"], Alg::EcdsaP256);
    let (first_ca, second_ca, unknown_ca) = (Ca::new("first"), Ca::new("second"), Ca::new("x"));
    let dir = TempDir::new("upstream-mtls-many");
    let ca_file = dir.write("ca.pem", &ca.pem);
    let mut certs = String::from("      certificates:\n");
    for (i, c) in [&first_ca, &second_ca].iter().enumerate() {
        let me = c.client(&format!("proxy-{i}"));
        let cert = dir.write(&format!("c{i}.pem"), &me.cert_pem);
        let key = dir.write(&format!("c{i}.key"), &me.key_pem);
        certs += &format!(
            "        - certFile: \"{}\"\n          keyFile: \"{}\"\n",
            cert.display(),
            key.display()
        );
    }
    let transport = format!(
        "      serverName: backend.test\n      rootCAs: [\"{}\"]\n{certs}",
        ca_file.display()
    );
    for (trusted, want) in [(&first_ca, 200), (&second_ca, 200), (&unknown_ca, 502)] {
        let b = tls_backend(&leaf, Some(trusted));
        let p = start_proxy(&config(&format!("https://{}", b.addr), &transport));
        let r = get(p.web, "x.test", "/").await;
        assert_eq!(r.status, want, "{}", r.text());
    }
}

/// A `serverName` that is not a DNS name or an IP is an error at its key
/// and line: the transport is disabled with its service and router (503).
#[tokio::test]
async fn an_invalid_server_name_is_an_error_with_its_place() {
    let dynamic = config("https://127.0.0.1:1", "      serverName: \"bad name!\"\n");
    let err = try_start_proxy(&dynamic).expect_err("check refuses");
    assert!(
        err.contains(
            "dynamic.yml:14:20: http.serversTransports.t.serverName: invalid serverName \"bad name!\""
        ),
        "{err}"
    );
    let p = start_proxy(&dynamic);
    assert_eq!(get(p.web, "x.test", "/").await.status, 503);
}

/// A router whose `forwardAuth` (`auth`, YAML `tls` under it) checks at
/// `address`, in front of backend `b`.
fn forward_auth(b: &Backend, address: &str, tls: &str) -> String {
    format!(
        "http:\n  routers:\n    r:\n      rule: \"PathPrefix(`/`)\"\n      service: app\n      middlewares: [auth]\n  middlewares:\n    auth:\n      forwardAuth:\n        address: \"{address}\"\n{tls}  services:\n    app:\n      loadBalancer:\n        servers:\n          - url: \"http://{}\"\n",
        b.addr
    )
}

/// `forwardAuth` to an `https://` auth server: verified against its `tls.ca`
/// (refused, 500, against the system's roots; accepted with
/// `insecureSkipVerify`), its `cert`/`key` presented to a server requiring
/// one, connections pooled; an unreadable `ca` disables the middleware and
/// its router (503) with the error at its key.
#[tokio::test]
async fn forward_auth_reaches_an_https_auth_server_with_its_tls() {
    let ca = Ca::new("auth CA");
    let clients = Ca::new("client CA");
    let leaf = ca.server(&["127.0.0.1"], Alg::EcdsaP256);
    let open = tls_backend(&leaf, None);
    let mtls = tls_backend(&leaf, Some(&clients));
    let me = clients.client("proxy");
    let dir = TempDir::new("forward-auth-https");
    let ca_file = dir.write("ca.pem", &ca.pem);
    let cert = dir.write("client.pem", &me.cert_pem);
    let key = dir.write("client.key", &me.key_pem);
    let app = backend("app");
    let with_ca = format!("        tls:\n          ca: \"{}\"\n", ca_file.display());

    let p = start_proxy(&forward_auth(
        &app,
        &format!("https://{}/check", open.addr),
        &with_ca,
    ));
    for _ in 0..3 {
        let r = get(p.web, "x.test", "/").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.backend(), Some("app"));
    }
    assert_eq!(open.connections.load(Ordering::Relaxed), 1, "pooled");
    drop(p);

    let url = format!("https://{}/check", open.addr);
    let p = start_proxy(&forward_auth(&app, &url, ""));
    assert_eq!(get(p.web, "x.test", "/").await.status, 500, "system roots");
    drop(p);
    let p = start_proxy(&forward_auth(
        &app,
        &url,
        "        tls:\n          insecureSkipVerify: true\n",
    ));
    assert_eq!(get(p.web, "x.test", "/").await.status, 200);
    drop(p);

    let url = format!("https://{}/check", mtls.addr);
    let p = start_proxy(&forward_auth(&app, &url, &with_ca));
    assert_eq!(
        get(p.web, "x.test", "/").await.status,
        500,
        "no client certificate"
    );
    drop(p);
    let both = format!(
        "{with_ca}          cert: \"{}\"\n          key: \"{}\"\n",
        cert.display(),
        key.display()
    );
    let p = start_proxy(&forward_auth(&app, &url, &both));
    let r = get(p.web, "x.test", "/").await;
    assert_eq!(r.status, 200, "{}", r.text());
    drop(p);

    let bad = forward_auth(
        &app,
        &url,
        "        tls:\n          ca: /nonexistent/ca.pem\n",
    );
    let err = try_start_proxy(&bad).expect_err("check refuses");
    assert!(
        err.contains(
            "http.middlewares.auth.forwardAuth.tls.rootCAs: cannot read /nonexistent/ca.pem"
        ),
        "{err}"
    );
    let p = start_proxy(&bad);
    assert_eq!(get(p.web, "x.test", "/").await.status, 503);
    let half = forward_auth(
        &app,
        &url,
        &format!("        tls:\n          cert: \"{}\"\n", cert.display()),
    );
    let err = try_start_proxy(&half).expect_err("check refuses");
    assert!(err.contains("both cert and key must be defined"), "{err}");
}
