//! Active health checks the way the servers are reached: `https://`
//! servers checked over TLS with their servers transport (a real rustls
//! backend, certificates from a CA made at test time), and `mode: grpc`
//! asking the standard `grpc.health.v1.Health/Check` over HTTP/2 of a
//! backend that answers it as gRPC servers do (length-prefixed protobuf,
//! `grpc-status` in the trailers). A server whose check fails leaves the
//! rotation and comes back when it passes again. Bounds are generous
//! (the machine is shared).

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use support::tls::{Alg, Ca, Leaf};
use support::*;

/// What a backend answers, changed by the test while it runs.
#[derive(Default)]
struct Knobs {
    /// The status of `/health` (0: 200).
    health: AtomicU16,
    /// The gRPC `ServingStatus` answered (0 UNKNOWN, 1 SERVING, 2
    /// NOT_SERVING).
    serving: AtomicU16,
    /// Checks received (`/health` or the gRPC health method).
    checks: AtomicU64,
    /// Whether the last check came over HTTP/2.
    last_check_h2: AtomicU16,
}

struct Backend {
    addr: SocketAddr,
    knobs: Arc<Knobs>,
}

async fn answer(
    name: &'static str,
    k: &Knobs,
    req: Request<Incoming>,
) -> Response<http_body_util::combinators::BoxBody<Bytes, Infallible>> {
    let path = req.uri().path().to_owned();
    if path == "/grpc.health.v1.Health/Check" {
        k.checks.fetch_add(1, Ordering::Relaxed);
        k.last_check_h2.store(
            u16::from(req.version() == http::Version::HTTP_2),
            Ordering::Relaxed,
        );
        let request = req.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            &request[..],
            &[0, 0, 0, 0, 0],
            "an empty HealthCheckRequest"
        );
        let status = k.serving.load(Ordering::Relaxed) as u8;
        // HealthCheckResponse { status }: field 1, varint.
        let msg = Bytes::from(vec![0, 0, 0, 0, 2, 0x08, status]);
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        let body = Full::new(msg)
            .with_trailers(async move { Some(Ok(trailers)) })
            .boxed();
        let mut r = Response::new(body);
        r.headers_mut()
            .insert("content-type", "application/grpc".parse().unwrap());
        return r;
    }
    let status = if path == "/health" {
        k.checks.fetch_add(1, Ordering::Relaxed);
        k.last_check_h2.store(
            u16::from(req.version() == http::Version::HTTP_2),
            Ordering::Relaxed,
        );
        match k.health.load(Ordering::Relaxed) {
            0 => 200,
            s => s,
        }
    } else {
        200
    };
    let mut r = Response::new(Full::new(Bytes::from(name)).boxed());
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r.headers_mut().insert("x-backend", name.parse().unwrap());
    r
}

/// A backend speaking HTTP/1.1 and HTTP/2 (prior knowledge, or by ALPN
/// over TLS when `leaf` is given).
fn backend(name: &'static str, leaf: Option<&Leaf>) -> Backend {
    let acceptor = leaf.map(|leaf| {
        let chain = vec![CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let knobs = Arc::new(Knobs {
        serving: AtomicU16::new(1),
        ..Knobs::default()
    });
    let k = Arc::clone(&knobs);
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
                let (acceptor, k) = (acceptor.clone(), Arc::clone(&k));
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let k = Arc::clone(&k);
                        async move { Ok::<_, Infallible>(answer(name, &k, req).await) }
                    });
                    let auto = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        Some(a) => {
                            if let Ok(tls) = a.accept(tcp).await {
                                let _ = auto.serve_connection(TokioIo::new(tls), svc).await;
                            }
                        }
                        None => {
                            let _ = auto.serve_connection(TokioIo::new(tcp), svc).await;
                        }
                    }
                });
            }
        });
    });
    Backend { addr, knobs }
}

/// Which backend answered each of `n` requests (`-`: none).
async fn answers(addr: SocketAddr, n: usize) -> Vec<String> {
    let mut c = H1::connect(addr).await;
    let mut out = Vec::new();
    for _ in 0..n {
        let r = c.get("x.test", "/").await;
        out.push(r.backend().unwrap_or("-").to_owned());
    }
    out
}

fn lb(urls: &[String], check: &str, transport: &str) -> String {
    let mut s = String::from(
        "http:\n  routers:\n    r:\n      rule: \"PathPrefix(`/`)\"\n      service: s\n  services:\n    s:\n      loadBalancer:\n",
    );
    if !transport.is_empty() {
        s += "        serversTransport: t\n";
    }
    s += &format!(
        "        healthCheck:\n          interval: 100ms\n          timeout: 2s\n{check}        servers:\n"
    );
    for u in urls {
        s += &format!("          - url: \"{u}\"\n");
    }
    if !transport.is_empty() {
        s += &format!("  serversTransports:\n    t:\n{transport}");
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_servers_are_checked_over_tls_with_their_transport() {
    let ca = Ca::new("backend CA");
    let leaf = ca.server(&["backend.test"], Alg::EcdsaP256);
    let (a, b) = (backend("a", Some(&leaf)), backend("b", Some(&leaf)));
    let dir = TempDir::new("health-tls");
    let ca_file = dir.write("ca.pem", &ca.pem);
    let transport = format!(
        "      serverName: backend.test\n      rootCAs: [\"{}\"]\n",
        ca_file.display()
    );
    let urls = [format!("https://{}", a.addr), format!("https://{}", b.addr)];
    let p = start_proxy(&lb(&urls, "          path: /health\n", &transport));
    let both = answers(p.web, 10).await;
    assert_eq!(both.iter().filter(|x| *x == "a").count(), 5, "{both:?}");
    assert!(
        eventually(10, async || a.knobs.checks.load(Ordering::Relaxed) >= 2).await,
        "no check reached the TLS backend"
    );
    // ALPN chose HTTP/2, as for the server's requests.
    assert_eq!(a.knobs.last_check_h2.load(Ordering::Relaxed), 1);
    a.knobs.health.store(503, Ordering::Relaxed);
    assert!(
        eventually(10, async || answers(p.web, 6)
            .await
            .iter()
            .all(|x| x == "b"))
        .await,
        "a failing TLS check never took a out"
    );
    a.knobs.health.store(0, Ordering::Relaxed);
    assert!(
        eventually(10, async || answers(p.web, 6)
            .await
            .iter()
            .any(|x| x == "a"))
        .await,
        "a never came back"
    );
    drop(p);

    // A transport that does not trust the backend: every check fails,
    // both servers leave the rotation, and the service answers 503.
    let wrong = Ca::new("wrong CA");
    let wrong_file = dir.write("wrong.pem", &wrong.pem);
    let distrust = format!(
        "      serverName: backend.test\n      rootCAs: [\"{}\"]\n",
        wrong_file.display()
    );
    let p = start_proxy(&lb(&urls, "          path: /health\n", &distrust));
    assert!(
        eventually(10, async || get(p.web, "x.test", "/").await.status == 503).await,
        "checks that cannot verify the server must fail"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_checks_follow_the_serving_status_of_the_standard_health_service() {
    let (a, b) = (backend("a", None), backend("b", None));
    // http:// servers: their requests go over HTTP/1.1, the gRPC checks
    // over HTTP/2 in clear, as Traefik's.
    let urls = [format!("http://{}", a.addr), format!("http://{}", b.addr)];
    let p = start_proxy(&lb(&urls, "          mode: grpc\n", ""));
    assert!(
        eventually(10, async || a.knobs.checks.load(Ordering::Relaxed) >= 2).await,
        "no gRPC check reached the backend"
    );
    assert_eq!(a.knobs.last_check_h2.load(Ordering::Relaxed), 1);
    let both = answers(p.web, 10).await;
    assert_eq!(both.iter().filter(|x| *x == "a").count(), 5, "{both:?}");
    for not_serving in [2, 0] {
        a.knobs.serving.store(not_serving, Ordering::Relaxed);
        assert!(
            eventually(10, async || answers(p.web, 6)
                .await
                .iter()
                .all(|x| x == "b"))
            .await,
            "status {not_serving} never took a out"
        );
        a.knobs.serving.store(1, Ordering::Relaxed);
        assert!(
            eventually(10, async || answers(p.web, 6)
                .await
                .iter()
                .any(|x| x == "a"))
            .await,
            "SERVING never brought a back"
        );
    }
    // No server SERVING: 503.
    b.knobs.serving.store(2, Ordering::Relaxed);
    a.knobs.serving.store(2, Ordering::Relaxed);
    assert!(
        eventually(10, async || get(p.web, "x.test", "/").await.status == 503).await,
        "no server SERVING must be 503"
    );
}
