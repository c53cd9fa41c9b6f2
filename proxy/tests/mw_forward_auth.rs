//! `forwardAuth` over real sockets: a real auth server (below) that
//! decides by the request's `X-Case` and reports what it received in
//! `X-Auth-Seen`, in front of the echoing backend. A 2xx passes with
//! `authResponseHeaders` / `authResponseHeadersRegex` copied onto the
//! request and the listed auth cookies on the response; anything else is
//! returned to the client (status, headers, body, `Location` made
//! absolute); `authSigninURL`, `authRequestHeaders`, the forwarding
//! headers of both `trustForwardHeader` modes, `forwardBody` with
//! `maxBodySize` and `preserveRequestMethod`, an unreachable auth server
//! (500), keep-alive reuse of the auth connection, and bad options.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::*;

/// A real auth server on 127.0.0.1:0 (its own thread and runtime).
struct AuthServer {
    addr: SocketAddr,
    connections: Arc<AtomicU64>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn auth_server() -> AuthServer {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let connections = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&connections);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            let serve = async {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    count.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(|req| async {
                            Ok::<_, Infallible>(decide(req).await)
                        });
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            };
            tokio::select! {
                _ = serve => {}
                _ = stopped => {}
            }
        });
    });
    AuthServer {
        addr,
        connections,
        _stop: stop,
    }
}

/// The auth server's decision, by `X-Case`.
async fn decide(req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut headers = serde_json::Map::new();
    for (k, v) in &parts.headers {
        headers.insert(
            k.as_str().to_owned(),
            serde_json::Value::from(v.to_str().unwrap_or("?")),
        );
    }
    let seen = serde_json::json!({
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    })
    .to_string();
    let case = parts
        .headers
        .get("x-case")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut b = Response::builder().header("x-auth-seen", seen);
    let body = match case {
        "ok" => {
            b = b
                .status(200)
                .header("x-auth-user", "alice")
                .header("x-auth-role", "admin")
                .header("x-other", "not copied")
                .header("set-cookie", "auth=1; Path=/")
                .header("set-cookie", "other=2");
            "fine"
        }
        "deny" => {
            b = b.status(403).header("x-reason", "nope");
            "denied"
        }
        "redirect" => {
            b = b.status(302).header("location", "/login");
            ""
        }
        _ => {
            b = b.status(401).header("www-authenticate", "Bearer");
            "who?"
        }
    };
    b.body(Full::new(Bytes::from(body))).unwrap()
}

fn config(b: &Backend, auth: SocketAddr) -> String {
    format!(
        r#"http:
  routers:
    fa:
      rule: "Host(`fa.test`)"
      service: s
      middlewares: [fa]
    legacy:
      rule: "Host(`legacy.test`)"
      service: s
      middlewares: [legacy]
    signin:
      rule: "Host(`signin.test`)"
      service: s
      middlewares: [signin]
    body:
      rule: "Host(`body.test`)"
      service: s
      middlewares: [body]
    down:
      rule: "Host(`down.test`)"
      service: s
      middlewares: [down]
  services:
    s:
      loadBalancer:
        servers:
          - url: "http://{b}"
  middlewares:
    fa:
      forwardAuth:
        address: "http://{auth}/check?from=proxy"
        trustForwardHeader: true
        authResponseHeaders: [X-Auth-User, X-Auth-Seen]
        authResponseHeadersRegex: "^X-Auth-R"
        addAuthCookiesToResponse: [auth]
    legacy:
      forwardAuth:
        address: "http://{auth}/check"
        authRequestHeaders: [X-Case, Accept]
        authResponseHeaders: [X-Auth-Seen]
    signin:
      forwardAuth:
        address: "http://{auth}/check"
        authSigninURL: "https://login.test/start"
    body:
      forwardAuth:
        address: "http://{auth}/check"
        forwardBody: true
        maxBodySize: 10
        preserveRequestMethod: true
        authResponseHeaders: [X-Auth-Seen]
    down:
      forwardAuth:
        address: "http://127.0.0.1:1/check"
"#,
        b = b.addr
    )
}

fn req(
    method: Method,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Request<TestBody> {
    let mut r = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(support::body(body.to_owned())).unwrap()
}

/// What the auth server received, as the backend saw it in `X-Auth-Seen`.
fn auth_saw(r: &Reply) -> serde_json::Value {
    let seen = r.json()["headers"]["x-auth-seen"]
        .as_str()
        .unwrap_or_else(|| panic!("no x-auth-seen: {}", r.text()))
        .to_owned();
    serde_json::from_str(&seen).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2xx_passes_with_the_auth_headers_and_cookies() {
    let b = backend("b");
    let auth = auth_server();
    let p = start_proxy(&config(&b, auth.addr));
    let mut c = H1::connect(p.web).await;
    let r = c
        .send(req(
            Method::GET,
            "fa.test",
            "/some/path?q=1",
            &[
                ("x-case", "ok"),
                ("x-auth-user", "mallory"),
                ("x-auth-rank", "forged"),
                ("x-forwarded-for", "10.0.0.1"),
            ],
            "",
        ))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let seen = r.json();
    assert_eq!(seen["headers"]["x-auth-user"], "alice", "replaced");
    assert_eq!(seen["headers"]["x-auth-role"], "admin", "by the regex");
    assert!(seen["headers"].get("x-auth-rank").is_none(), "{seen}");
    assert!(seen["headers"].get("x-other").is_none(), "{seen}");
    let cookies: Vec<_> = r.headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["auth=1; Path=/"], "only the listed cookie");

    let asked = auth_saw(&r);
    assert_eq!(asked["method"], "GET");
    assert_eq!(asked["uri"], "/check?from=proxy");
    let h = &asked["headers"];
    assert_eq!(h["host"], auth.addr.to_string());
    assert_eq!(h["x-forwarded-method"], "GET");
    assert_eq!(h["x-forwarded-uri"], "/some/path?q=1");
    assert_eq!(h["x-forwarded-host"], "fa.test");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-port"], "80");
    // An untrusted client's X-Forwarded-For was dropped at the entrypoint.
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(
        h["x-auth-user"], "mallory",
        "the request as the client sent it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anything_else_is_the_clients_answer() {
    let b = backend("b");
    let auth = auth_server();
    let p = start_proxy(&config(&b, auth.addr));
    let mut c = H1::connect(p.web).await;
    let send = |host: &'static str, case: &'static str| {
        req(Method::GET, host, "/", &[("x-case", case)], "")
    };
    let r = c.send(send("fa.test", "deny")).await.unwrap();
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.text(), "denied");
    assert_eq!(r.headers["x-reason"], "nope");
    let r = c.send(send("fa.test", "who")).await.unwrap();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    assert_eq!(r.text(), "who?");
    let r = c.send(send("fa.test", "redirect")).await.unwrap();
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.headers["location"], format!("http://{}/login", auth.addr));
    // authSigninURL: the auth server's 401 becomes a redirect there.
    let r = c.send(send("signin.test", "who")).await.unwrap();
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.headers["location"], "https://login.test/start");
    let r = c.send(send("signin.test", "deny")).await.unwrap();
    assert_eq!(r.status, StatusCode::FORBIDDEN, "only a 401 is redirected");
    assert_eq!(b.stats.requests.load(Ordering::Relaxed), 0);
    // The auth server unreachable: 500.
    let r = c.send(send("down.test", "ok")).await.unwrap();
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_headers_are_filtered_and_legacy_forwarding_headers_set() {
    let b = backend("b");
    let auth = auth_server();
    let p = start_proxy(&config(&b, auth.addr));
    let mut c = H1::connect(p.web).await;
    let r = c
        .send(req(
            Method::DELETE,
            "legacy.test:8080",
            "/x",
            &[
                ("x-case", "ok"),
                ("accept", "*/*"),
                ("x-extra", "kept back"),
            ],
            "",
        ))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    let asked = auth_saw(&r);
    assert_eq!(asked["method"], "GET", "GET unless preserveRequestMethod");
    let h = asked["headers"].as_object().unwrap();
    assert!(h.get("x-extra").is_none(), "{h:?}");
    assert_eq!(h["accept"], "*/*");
    assert_eq!(h["x-forwarded-method"], "DELETE");
    assert_eq!(h["x-forwarded-host"], "legacy.test:8080");
    assert_eq!(h["x-forwarded-uri"], "/x");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_goes_to_the_auth_server_within_its_limit() {
    let b = backend("b");
    let auth = auth_server();
    let p = start_proxy(&config(&b, auth.addr));
    let mut c = H1::connect(p.web).await;
    let r = c
        .send(req(
            Method::POST,
            "body.test",
            "/echo",
            &[("x-case", "ok")],
            "hello",
        ))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    let asked = auth_saw(&r);
    assert_eq!(asked["method"], "POST");
    assert_eq!(asked["body"], "hello");
    let r = c
        .send(req(
            Method::POST,
            "body.test",
            "/upload",
            &[("x-case", "ok")],
            "hello",
        ))
        .await
        .unwrap();
    assert_eq!(
        r.text().split(' ').next(),
        Some("5"),
        "the backend got the body too: {}",
        r.text()
    );
    let r = c
        .send(req(
            Method::POST,
            "body.test",
            "/upload",
            &[("x-case", "ok")],
            "more than ten bytes",
        ))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auth_server_is_reached_over_pooled_connections() {
    let b = backend("b");
    let auth = auth_server();
    let p = start_proxy(&config(&b, auth.addr));
    for _ in 0..3 {
        let mut c = H1::connect(p.web).await;
        for _ in 0..3 {
            let r = c
                .send(req(Method::GET, "fa.test", "/", &[("x-case", "ok")], ""))
                .await
                .unwrap();
            assert_eq!(r.status, StatusCode::OK);
        }
    }
    assert_eq!(
        auth.connections.load(Ordering::Relaxed),
        1,
        "nine checks over one kept-alive connection"
    );
}

#[test]
fn bad_forward_auths_are_refused_where_written() {
    let b = backend("b");
    let good = config(&b, "127.0.0.1:9".parse().unwrap());
    let errors = dynamic_errors(
        &good
            .replace(
                "address: \"http://127.0.0.1:1/check\"",
                "address: \"ftp://x\"",
            )
            .replace(
                "authResponseHeadersRegex: \"^X-Auth-R\"",
                "authResponseHeadersRegex: \"(\"",
            )
            .replace(
                "authRequestHeaders: [X-Case, Accept]",
                "authRequestHeaders: [\"bad name\"]",
            )
            .replace(
                "authSigninURL: \"https://login.test/start\"",
                "authSigninURL: \"https://login.test/start\"\n        tls:\n          key: /k.pem",
            ),
    );
    assert!(
        errors.contains("address \"ftp://x\" is not an http:// or https:// URL"),
        "{errors}"
    );
    assert!(
        errors.contains("http.middlewares.fa.forwardAuth.authResponseHeadersRegex"),
        "{errors}"
    );
    assert!(
        errors.contains("authRequestHeaders: \"bad name\" is not a header name"),
        "{errors}"
    );
    assert!(
        errors.contains("forwardAuth tls: both cert and key must be defined"),
        "{errors}"
    );
}
