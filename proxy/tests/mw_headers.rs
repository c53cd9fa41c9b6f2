//! The `headers` middleware over real sockets, against a backend that
//! echoes what it received: custom request and response headers (an empty
//! value removes), CORS preflights answered by the proxy and CORS headers
//! on simple requests, the security headers (STS only over HTTPS or when
//! forced, `sslProxyHeaders`), `allowedHosts` with `hostsProxyHeaders`,
//! and the headers on an answer of the proxy itself (a 502), as Traefik
//! 3.7 does.

mod support;

use std::sync::atomic::Ordering;

use http::{Method, Request, StatusCode};
use support::*;

fn config(b: &str, middlewares: &str) -> String {
    format!(
        r#"http:
  routers:
    custom:
      rule: "Host(`custom.test`)"
      service: s
      middlewares: [custom]
    cors:
      rule: "Host(`cors.test`)"
      service: s
      middlewares: [cors]
    secure:
      rule: "Host(`secure.test`)"
      service: s
      middlewares: [secure]
    hosts:
      rule: "PathPrefix(`/hosts`)"
      service: s
      middlewares: [hosts]
    down:
      rule: "Host(`down.test`)"
      service: down
      middlewares: [secure]
  services:
    s:
      loadBalancer:
        servers:
          - url: "http://{b}"
    down:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:1"
  middlewares:
{middlewares}"#
    )
}

const MIDDLEWARES: &str = r#"    custom:
      headers:
        customRequestHeaders:
          X-Script-Name: test
          X-Drop-Me: ""
        customResponseHeaders:
          X-Custom-Response: "yes"
          Content-Type: ""
    cors:
      headers:
        accessControlAllowMethods: [GET, OPTIONS, PUT]
        accessControlAllowHeaders: ["X-Token", "Content-Type"]
        accessControlAllowOriginList: ["https://app.test"]
        accessControlAllowOriginListRegex: ["^https://[a-z]+\\.other\\.test$"]
        accessControlExposeHeaders: [X-Backend]
        accessControlMaxAge: 100
        addVaryHeader: true
    secure:
      headers:
        frameDeny: true
        contentTypeNosniff: true
        browserXssFilter: true
        stsSeconds: 31536000
        stsIncludeSubdomains: true
        stsPreload: true
        contentSecurityPolicy: "default-src 'self'"
        referrerPolicy: same-origin
        permissionsPolicy: "camera=()"
        sslProxyHeaders:
          X-Is-Ssl: "on"
    hosts:
      headers:
        allowedHosts: [good.test]
        hostsProxyHeaders: [X-Original-Host]
"#;

fn req(method: Method, host: &str, path: &str, headers: &[(&str, &str)]) -> Request<TestBody> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(empty()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_headers_are_set_and_removed_both_ways() {
    let b = backend("b");
    let p = start_proxy(&config(&b.addr.to_string(), MIDDLEWARES));
    let mut c = H1::connect(p.web).await;
    let r = c
        .send(req(
            Method::GET,
            "custom.test",
            "/",
            &[("x-drop-me", "secret"), ("x-script-name", "client")],
        ))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    let seen = r.json();
    assert_eq!(seen["headers"]["x-script-name"], "test");
    assert!(seen["headers"].get("x-drop-me").is_none());
    assert_eq!(r.headers["x-custom-response"], "yes");
    assert!(r.headers.get("content-type").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflights_are_answered_by_the_proxy() {
    let b = backend("b");
    let p = start_proxy(&config(&b.addr.to_string(), MIDDLEWARES));
    let mut c = H1::connect(p.web).await;
    let preflight = req(
        Method::OPTIONS,
        "cors.test",
        "/api",
        &[
            ("origin", "https://app.test"),
            ("access-control-request-method", "PUT"),
        ],
    );
    let r = c.send(preflight).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["access-control-allow-origin"], "https://app.test");
    assert_eq!(r.headers["access-control-allow-methods"], "GET,OPTIONS,PUT");
    assert_eq!(
        r.headers["access-control-allow-headers"],
        "X-Token,Content-Type"
    );
    assert_eq!(r.headers["access-control-max-age"], "100");
    assert_eq!(r.headers["access-control-expose-headers"], "X-Backend");
    assert_eq!(r.headers["content-length"], "0");
    assert_eq!(
        b.stats.requests.load(Ordering::Relaxed),
        0,
        "the backend never sees a preflight"
    );

    // A simple request from an allowed origin (by regex): the origin is
    // echoed, Vary added.
    let r = c
        .send(req(
            Method::GET,
            "cors.test",
            "/api",
            &[("origin", "https://x.other.test")],
        ))
        .await
        .unwrap();
    assert_eq!(r.backend(), Some("b"));
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://x.other.test"
    );
    assert_eq!(r.headers["vary"], "Origin");
    assert_eq!(r.headers["access-control-expose-headers"], "X-Backend");
    // An origin not allowed gets no Allow-Origin.
    let r = c
        .send(req(
            Method::GET,
            "cors.test",
            "/api",
            &[("origin", "https://evil.test")],
        ))
        .await
        .unwrap();
    assert!(r.headers.get("access-control-allow-origin").is_none());
    // An OPTIONS without Access-Control-Request-Method is no preflight.
    let r = c
        .send(req(
            Method::OPTIONS,
            "cors.test",
            "/api",
            &[("origin", "https://app.test")],
        ))
        .await
        .unwrap();
    assert_eq!(r.backend(), Some("b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_and_sts_only_over_https() {
    let b = backend("b");
    let p = start_proxy(&config(&b.addr.to_string(), MIDDLEWARES));
    let mut c = H1::connect(p.web).await;
    let r = c.get("secure.test", "/").await;
    assert_eq!(r.headers["x-frame-options"], "DENY");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert_eq!(r.headers["x-xss-protection"], "1; mode=block");
    assert_eq!(r.headers["content-security-policy"], "default-src 'self'");
    assert_eq!(r.headers["referrer-policy"], "same-origin");
    assert_eq!(r.headers["permissions-policy"], "camera=()");
    assert!(
        r.headers.get("strict-transport-security").is_none(),
        "plain HTTP"
    );
    // A request an sslProxyHeaders header marks as HTTPS gets STS.
    let r = c
        .send(req(Method::GET, "secure.test", "/", &[("x-is-ssl", "on")]))
        .await
        .unwrap();
    assert_eq!(
        r.headers["strict-transport-security"],
        "max-age=31536000; includeSubDomains; preload"
    );
    // The proxy's own answers get the headers too (Traefik's response
    // modifier sees every response).
    let r = c.get("down.test", "/").await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.headers["x-frame-options"], "DENY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_hosts_refuse_other_hosts_with_bad_host() {
    let b = backend("b");
    let p = start_proxy(&config(&b.addr.to_string(), MIDDLEWARES));
    let mut c = H1::connect(p.web).await;
    let r = c.get("good.test", "/hosts").await;
    assert_eq!(r.backend(), Some("b"));
    let r = c.get("GOOD.test", "/hosts").await;
    assert_eq!(r.backend(), Some("b"), "hosts compare ignoring case");
    let r = c.get("bad.test", "/hosts").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.text(), "Bad Host\n");
    // hostsProxyHeaders: the host a front proxy names wins.
    let r = c
        .send(req(
            Method::GET,
            "bad.test",
            "/hosts",
            &[("x-original-host", "good.test")],
        ))
        .await
        .unwrap();
    assert_eq!(r.backend(), Some("b"));
    assert_eq!(b.stats.requests.load(Ordering::Relaxed), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_headers_middleware_with_no_option_or_a_bad_name_is_refused() {
    let b = backend("b");
    let bad = r#"    custom:
      headers: {}
    cors:
      headers:
        customRequestHeaders:
          "Bad Name": x
    secure:
      headers:
        accessControlAllowOriginListRegex: ["(["]
    hosts:
      headers:
        frameDeny: true
"#;
    let err = dynamic_errors(&config(&b.addr.to_string(), bad));
    assert!(err.contains("http.middlewares.custom"), "{err}");
    assert!(err.contains("no header option is set"), "{err}");
    assert!(
        err.contains("\"Bad Name\" is not a valid header name"),
        "{err}"
    );
    assert!(err.contains("error parsing regexp"), "{err}");
    assert!(!err.contains("middlewares.hosts"), "{err}");
}
