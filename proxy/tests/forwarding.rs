//! End-to-end forwarding: real upstream servers, the proxy on real sockets,
//! HTTP/1.1 and h2c on both sides, headers, upgrades, trailers, failures.

mod support;

use std::time::Duration;

use http::{Method, Request, StatusCode};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_host_and_path_and_answers_404_otherwise() {
    let a = backend("a");
    let b = backend("b");
    let p = start_proxy(&routes_yaml(&[
        ("ra", "Host(`a.test`)", &a),
        ("rb", "Host(`b.test`) && PathPrefix(`/api`)", &b),
    ]));
    let mut c = H1::connect(p.web).await;
    let r = c.get("a.test", "/anything").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.backend(), Some("a"));
    let r = c.get("B.TEST:8080", "/api/x").await;
    assert_eq!(
        r.backend(),
        Some("b"),
        "host is case-insensitive, port ignored"
    );
    let r = c.get("b.test", "/other").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.text(), "404 page not found\n");
    let r = c.get("c.test", "/").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_matcher_and_operator_routes_through_the_proxy() {
    let hit = backend("hit");
    let p = start_proxy(&routes_yaml(&[
        ("method", "Host(`m.test`) && Method(`POST`)", &hit),
        ("header", "Host(`h.test`) && Header(`X-Env`, `prod`)", &hit),
        (
            "headerre",
            "Host(`hr.test`) && HeaderRegexp(`X-Env`, `^st.*g$`)",
            &hit,
        ),
        ("query", "Host(`q.test`) && Query(`mobile`, `true`)", &hit),
        (
            "queryre",
            "Host(`qr.test`) && QueryRegexp(`id`, `^[0-9]+$`)",
            &hit,
        ),
        ("hostre", "HostRegexp(`^[a-z]+\\.re\\.test$`)", &hit),
        ("path", "Host(`p.test`) && Path(`/exact`)", &hit),
        (
            "pathre",
            "Host(`pr.test`) && PathRegexp(`^/v[0-9]+/`)",
            &hit,
        ),
        ("or", "Host(`o1.test`) || Host(`o2.test`)", &hit),
        ("not", "Host(`n.test`) && !PathPrefix(`/private`)", &hit),
        ("client", "Host(`ip.test`) && ClientIP(`127.0.0.0/8`)", &hit),
        (
            "clientno",
            "Host(`ipno.test`) && ClientIP(`10.0.0.1`)",
            &hit,
        ),
        ("wild", "Host(`*.wild.test`)", &hit),
    ]));
    let mut c = H1::connect(p.web).await;
    let send = |m: Method, host: &str, path: &str, h: Option<(&str, &str)>| {
        let mut b = Request::builder().method(m).uri(path).header("host", host);
        if let Some((k, v)) = h {
            b = b.header(k, v);
        }
        b.body(empty()).unwrap()
    };
    let cases: Vec<(Request<TestBody>, bool)> = vec![
        (send(Method::POST, "m.test", "/", None), true),
        (send(Method::GET, "m.test", "/", None), false),
        (
            send(Method::GET, "h.test", "/", Some(("x-env", "prod"))),
            true,
        ),
        (
            send(Method::GET, "h.test", "/", Some(("x-env", "dev"))),
            false,
        ),
        (
            send(Method::GET, "hr.test", "/", Some(("x-env", "staging"))),
            true,
        ),
        (
            send(Method::GET, "hr.test", "/", Some(("x-env", "prod"))),
            false,
        ),
        (send(Method::GET, "q.test", "/?mobile=true&x=1", None), true),
        (send(Method::GET, "q.test", "/?mobile=false", None), false),
        (send(Method::GET, "qr.test", "/?id=42", None), true),
        (send(Method::GET, "qr.test", "/?id=4x2", None), false),
        (send(Method::GET, "abc.re.test", "/", None), true),
        (send(Method::GET, "ab1.re.test", "/", None), false),
        (send(Method::GET, "p.test", "/exact", None), true),
        (send(Method::GET, "p.test", "/exact/more", None), false),
        (send(Method::GET, "pr.test", "/v2/users", None), true),
        (send(Method::GET, "pr.test", "/vx/users", None), false),
        (send(Method::GET, "o2.test", "/", None), true),
        (send(Method::GET, "n.test", "/public", None), true),
        (send(Method::GET, "n.test", "/private/x", None), false),
        (send(Method::GET, "ip.test", "/", None), true),
        (send(Method::GET, "ipno.test", "/", None), false),
        (send(Method::GET, "api.wild.test", "/", None), true),
        (send(Method::GET, "a.b.wild.test", "/", None), false),
    ];
    for (i, (req, expect_hit)) in cases.into_iter().enumerate() {
        let desc = format!(
            "case {i}: {} {:?} {:?}",
            req.method(),
            req.headers().get("host"),
            req.uri()
        );
        let r = c.send(req).await.unwrap();
        if expect_hit {
            assert_eq!(r.status, StatusCode::OK, "{desc}");
            assert_eq!(r.backend(), Some("hit"), "{desc}");
        } else {
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{desc}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_decides_between_overlapping_routers() {
    let long = backend("long");
    let short = backend("short");
    let explicit = backend("explicit");
    let dynamic = format!(
        r#"http:
  routers:
    short:
      rule: "PathPrefix(`/`)"
      service: short
    long:
      rule: "PathPrefix(`/api`) && Host(`x.test`)"
      service: long
    boosted:
      rule: "PathPrefix(`/`) && Header(`X-Boost`, `1`)"
      priority: 1000
      service: explicit
    fallback:
      rule: "PathPrefix(`/`) && Header(`X-Fallback`, `1`)"
      priority: -1
      service: explicit
    zero:
      rule: "PathPrefix(`/`) && Header(`X-Zero`, `1`)"
      priority: 0
      service: explicit
  services:
    short:
      loadBalancer:
        servers: [{{url: "http://{}"}}]
    long:
      loadBalancer:
        servers: [{{url: "http://{}"}}]
    explicit:
      loadBalancer:
        servers: [{{url: "http://{}"}}]
"#,
        short.addr, long.addr, explicit.addr
    );
    let p = start_proxy(&dynamic);
    let mut c = H1::connect(p.web).await;
    assert_eq!(c.get("x.test", "/api/v1").await.backend(), Some("long"));
    assert_eq!(c.get("y.test", "/api/v1").await.backend(), Some("short"));
    let req = Request::get("/api/v1")
        .header("host", "x.test")
        .header("x-boost", "1")
        .body(empty())
        .unwrap();
    assert_eq!(c.send(req).await.unwrap().backend(), Some("explicit"));
    // A negative priority is a fallback below the 15-byte catch-all;
    // priority 0 is the rule's length (longer than the catch-all's).
    let req = |h: &str| {
        Request::get("/x")
            .header("host", "y.test")
            .header(h, "1")
            .body(empty())
            .unwrap()
    };
    assert_eq!(
        c.send(req("x-fallback")).await.unwrap().backend(),
        Some("short")
    );
    assert_eq!(
        c.send(req("x-zero")).await.unwrap().backend(),
        Some("explicit")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_requests_over_servers() {
    let a = backend("a");
    let b = backend("b");
    let dynamic = format!(
        "http:\n  routers:\n    r:\n      rule: \"PathPrefix(`/`)\"\n      service: s\n  services:\n    s:\n      loadBalancer:\n        servers:\n          - url: \"http://{}\"\n          - url: \"http://{}\"\n",
        a.addr, b.addr
    );
    let p = start_proxy(&dynamic);
    let mut c = H1::connect(p.web).await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(c.get("x", "/").await.backend().unwrap().to_owned());
    }
    assert_eq!(seen, ["a", "b", "a", "b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_downstream_and_h2c_upstream() {
    let b = backend("h2");
    let dynamic = format!(
        "http:\n  routers:\n    r1:\n      rule: \"PathPrefix(`/h1`)\"\n      service: h1\n    r2:\n      rule: \"PathPrefix(`/h2`)\"\n      service: h2\n  services:\n    h1:\n      loadBalancer:\n        servers: [{{url: \"http://{0}\"}}]\n    h2:\n      loadBalancer:\n        servers: [{{url: \"h2c://{0}\"}}]\n",
        b.addr
    );
    let p = start_proxy(&dynamic);
    let mut c = H2::connect(p.web).await;
    // Many concurrent streams on one downstream connection.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let mut c = c.clone();
        tasks.push(tokio::spawn(async move {
            let path = if i % 2 == 0 { "/h1/x" } else { "/h2/x" };
            c.get("example.test", path).await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let r = t.await.unwrap();
        assert_eq!(r.status, StatusCode::OK);
        let j = r.json();
        let want = if i % 2 == 0 { "HTTP/1.1" } else { "HTTP/2.0" };
        assert_eq!(j["version"], want, "upstream protocol for request {i}");
        assert_eq!(j["headers"]["x-forwarded-host"], "example.test");
    }
    let r = c.get("example.test", "/h2/host").await;
    let j = r.json();
    assert_eq!(j["headers"]["x-forwarded-proto"], "http");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_and_forwarded_headers() {
    let b = backend("b");
    let p = start_proxy(&routes_yaml(&[("r", "PathPrefix(`/`)", &b)]));
    let mut c = H1::connect(p.web).await;
    let req = Request::get("/echo?x=1")
        .header("host", "site.test:8443")
        .header("connection", "keep-alive, x-drop-me")
        .header("x-drop-me", "secret")
        .header("keep-alive", "timeout=5")
        .header("proxy-authorization", "Basic Zm9v")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-host", "evil.test")
        .header("x-real-ip", "6.6.6.6")
        .header("x-custom", "kept")
        .body(empty())
        .unwrap();
    let r = c.send(req).await.unwrap();
    let h = &r.json()["headers"];
    assert_eq!(
        h["host"], "site.test:8443",
        "passHostHeader defaults to true"
    );
    assert!(
        h.get("x-drop-me").is_none(),
        "Connection-named header removed: {h}"
    );
    assert!(h.get("keep-alive").is_none());
    assert!(h.get("proxy-authorization").is_none());
    assert_eq!(h["x-custom"], "kept");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1", "untrusted XFF replaced");
    assert_eq!(h["x-real-ip"], "127.0.0.1");
    assert_eq!(h["x-forwarded-host"], "site.test:8443");
    assert_eq!(h["x-forwarded-port"], "8443");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert!(
        h["x-forwarded-server"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert_eq!(r.json()["query"], "x=1");
    // Response hop-by-hop headers are removed too.
    assert!(r.headers.get("x-hop").is_none());
    assert!(r.headers.get("keep-alive").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_clients_keep_their_forwarded_headers() {
    let b = backend("b");
    let dir = TempDir::new("trusted");
    dir.write("dynamic.yml", &routes_yaml(&[("r", "PathPrefix(`/`)", &b)]));
    let stat = format!(
        "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\n    forwardedHeaders:\n      trustedIPs: [\"127.0.0.1/32\"]\nproviders:\n  file:\n    filename: \"{}/dynamic.yml\"\n",
        dir.path().display()
    );
    let file = dir.write("static.yml", &stat);
    let running = start_file(&file, 1);
    let mut c = H1::connect(running.addr("web").unwrap()).await;
    let req = Request::get("/")
        .header("host", "site.test")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-proto", "https")
        .body(empty())
        .unwrap();
    let r = c.send(req).await.unwrap();
    let h = &r.json()["headers"];
    assert_eq!(h["x-forwarded-for"], "6.6.6.6, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-port"], "443");
    running.shutdown(Some(Duration::from_millis(100)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_host_header_false_sends_the_server_host_and_url_path_is_prefixed() {
    let b = backend("b");
    let dynamic = format!(
        "http:\n  routers:\n    r:\n      rule: \"PathPrefix(`/`)\"\n      service: s\n  services:\n    s:\n      loadBalancer:\n        passHostHeader: false\n        servers:\n          - url: \"http://{}/base\"\n",
        b.addr
    );
    let p = start_proxy(&dynamic);
    let r = get(p.web, "front.test", "/x/y?q=1").await;
    let j = r.json();
    assert_eq!(j["headers"]["host"], b.addr.to_string());
    assert_eq!(j["path"], "/base/x/y");
    assert_eq!(j["query"], "q=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_stream_both_ways() {
    let b = backend("b");
    let p = start_proxy(&routes_yaml(&[("r", "PathPrefix(`/`)", &b)]));
    let mut c = H1::connect(p.web).await;
    let r = c.get("x", "/bytes/67108864").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.len(), 64 << 20);
    let payload: Vec<u8> = (0..(16u32 << 20)).map(|i| (i % 251) as u8).collect();
    let expect_sum = payload
        .iter()
        .fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(*b as u64));
    let req = Request::post("/upload")
        .header("host", "x")
        .body(body(payload))
        .unwrap();
    let r = c.send(req).await.unwrap();
    assert_eq!(r.text(), format!("{} {expect_sum}", 16u32 << 20));
    // The connection stays usable afterwards.
    assert_eq!(c.get("x", "/").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_is_tunnelled_both_ways() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let b = backend("ws");
    let p = start_proxy(&routes_yaml(&[("r", "PathPrefix(`/`)", &b)]));
    let mut s = tokio::net::TcpStream::connect(p.web).await.unwrap();
    s.write_all(
        b"GET /upgrade HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("upgrade: websocket"),
        "{head}"
    );
    for msg in [&b"hello"[..], b"second frame", &[0u8, 1, 2, 255]] {
        s.write_all(msg).await.unwrap();
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).await.unwrap();
        assert_eq!(back, msg);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_trailers_pass_through() {
    let b = backend("grpc");
    let dynamic = format!(
        "http:\n  routers:\n    r:\n      rule: \"PathPrefix(`/`)\"\n      service: s\n  services:\n    s:\n      loadBalancer:\n        servers: [{{url: \"h2c://{}\"}}]\n",
        b.addr
    );
    let p = start_proxy(&dynamic);
    let mut c = H2::connect(p.web).await;
    let req = Request::post("http://grpc.test/trailers")
        .header("te", "trailers")
        .header("content-type", "application/grpc")
        .body(body("req"))
        .unwrap();
    let r = c.send(req).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], b"payload");
    let t = r.trailers.expect("trailers forwarded");
    assert_eq!(t["grpc-status"], "0");
    assert_eq!(t["grpc-message"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_upstream_is_502_and_other_routes_keep_working() {
    let good = backend("good");
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let dynamic = format!(
        "http:\n  routers:\n    dead:\n      rule: \"PathPrefix(`/dead`)\"\n      service: dead\n    good:\n      rule: \"PathPrefix(`/good`)\"\n      service: good\n  services:\n    dead:\n      loadBalancer:\n        servers: [{{url: \"http://{dead_addr}\"}}]\n    good:\n      loadBalancer:\n        servers: [{{url: \"http://{}\"}}]\n",
        good.addr
    );
    let p = start_proxy(&dynamic);
    let mut c = H1::connect(p.web).await;
    let r = c.get("x", "/dead").await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.text(), "Bad Gateway");
    let r = c.get("x", "/good").await;
    assert_eq!(r.status, StatusCode::OK, "same connection still serves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_header_timeout_is_504() {
    let b = backend("slow");
    let dynamic = format!(
        "http:\n  routers:\n    r:\n      rule: \"PathPrefix(`/`)\"\n      service: s\n  services:\n    s:\n      loadBalancer:\n        serversTransport: quick\n        servers: [{{url: \"http://{}\"}}]\n  serversTransports:\n    quick:\n      forwardingTimeouts:\n        responseHeaderTimeout: 200ms\n",
        b.addr
    );
    let p = start_proxy(&dynamic);
    let mut c = H1::connect(p.web).await;
    let r = c.get("x", "/slow/3000").await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(r.text(), "Gateway Timeout");
    let r = c.get("x", "/slow/1").await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_gone_cancels_the_upstream_request() {
    let b = backend("slow");
    let p = start_proxy(&routes_yaml(&[("r", "PathPrefix(`/`)", &b)]));
    {
        let mut c = H1::connect(p.web).await;
        let req = Request::get("/slow/2000")
            .header("host", "x")
            .body(empty())
            .unwrap();
        let fut = c.send(req);
        // Give the request time to reach the backend, then drop the client.
        let _ = tokio::time::timeout(Duration::from_millis(300), fut).await;
    }
    let mut waited = 0;
    while b.stats.cancelled.load(std::sync::atomic::Ordering::Relaxed) == 0 && waited < 50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(
        b.stats.cancelled.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "the backend saw its request cancelled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_reuses_upstream_connections_and_pipelining_works() {
    let b = backend("b");
    let p = start_proxy(&routes_yaml(&[("r", "PathPrefix(`/`)", &b)]));
    let mut c = H1::connect(p.web).await;
    for _ in 0..50 {
        assert_eq!(c.get("x", "/").await.status, StatusCode::OK);
    }
    assert_eq!(
        b.stats
            .connections
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "50 sequential requests use one pooled upstream connection"
    );
    // Three pipelined requests in one write get three answers in order.
    let out = raw(
        p.web,
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let order: Vec<_> = ["\"path\":\"/a\"", "\"path\":\"/b\"", "\"path\":\"/c\""]
        .iter()
        .map(|p| {
            out.find(p)
                .unwrap_or_else(|| panic!("{p} missing in {out}"))
        })
        .collect();
    assert!(order[0] < order[1] && order[1] < order[2], "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_host_on_http11_is_400() {
    let b = backend("b");
    let p = start_proxy(&routes_yaml(&[("r", "PathPrefix(`/`)", &b)]));
    let out = raw(p.web, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    let out = raw(p.web, b"GARBAGE\r\n\r\n").await;
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_max_requests_closes_the_connection() {
    let b = backend("b");
    let p = start_proxy_static(
        &routes_yaml(&[("r", "PathPrefix(`/`)", &b)]),
        &static_with_transport("      keepAliveMaxRequests: 3\n"),
        1,
    );
    let mut c = H1::connect(p.web).await;
    assert!(c.get("x", "/").await.headers.get("connection").is_none());
    assert!(c.get("x", "/").await.headers.get("connection").is_none());
    let third = c.get("x", "/").await;
    assert_eq!(third.headers["connection"], "close");
    assert!(
        c.send(Request::get("/").header("host", "x").body(empty()).unwrap())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_header_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let b = backend("b");
    let p = start_proxy_static(
        &routes_yaml(&[("r", "PathPrefix(`/`)", &b)]),
        &static_with_transport(
            "      respondingTimeouts:\n        idleTimeout: 400ms\n        readTimeout: 400ms\n",
        ),
        1,
    );
    // An idle keep-alive connection is closed by the proxy.
    let mut idle = tokio::net::TcpStream::connect(p.web).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
        .await
        .expect("idle connection closed within the limit");
    assert_eq!(n.unwrap(), 0);

    // A request head trickling in (slowloris) is cut off too.
    let mut slow = tokio::net::TcpStream::connect(p.web).await.unwrap();
    let started = std::time::Instant::now();
    let mut closed = false;
    for _ in 0..40 {
        if slow.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(1), slow.read(&mut buf)).await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "slow header not cut after {:?}", started.elapsed());

    // A connection in active use is not affected.
    let mut c = H1::connect(p.web).await;
    for _ in 0..8 {
        assert_eq!(c.get("x", "/").await.status, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_are_sanitized_before_routing_and_forwarding() {
    let api = backend("api");
    let p = start_proxy(&routes_yaml(&[("r", "PathPrefix(`/api`)", &api)]));
    let mut c = H1::connect(p.web).await;
    // Dot segments and double slashes are cleaned, unreserved escapes
    // decoded, reserved ones kept: what Traefik routes on and forwards.
    let r = c.get("x", "/public/../api//v1/./%7Euser?q=%2F").await;
    assert_eq!(r.status, StatusCode::OK);
    let j = r.json();
    assert_eq!(j["path"], "/api/v1/~user");
    assert_eq!(j["query"], "q=%2F");
    let r = c.get("x", "/api/a%2Fb").await;
    assert_eq!(r.json()["path"], "/api/a%2Fb");
    // Escaping outside the prefix does not reach it.
    assert_eq!(
        c.get("x", "/other/..%2Fapi").await.status,
        StatusCode::NOT_FOUND
    );
    // A malformed escape is the client's error.
    assert_eq!(c.get("x", "/api/%zz").await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_connection_idles_out_after_a_reset_stream() {
    let b = backend("slow");
    let p = start_proxy_static(
        &routes_yaml(&[("r", "PathPrefix(`/`)", &b)]),
        &static_with_transport("      respondingTimeouts:\n        idleTimeout: 400ms\n"),
        1,
    );
    let c = H2::connect(p.web).await;
    let mut c2 = c.clone();
    let req = tokio::spawn(async move { c2.get("x", "/slow/5000").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Resets the stream: the proxy drops that request mid-flight.
    req.abort();
    // The connection idles out: the proxy sends GOAWAY and closes it, so a
    // new request on it fails.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut c = c;
    let late = c
        .send(Request::get("http://x/").body(empty()).unwrap())
        .await;
    assert!(
        late.is_err() || c.is_closed(),
        "an idle HTTP/2 connection whose only stream was reset must still idle out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_see_the_forwarding_headers_the_proxy_sets() {
    // Traefik sets X-Forwarded-* and X-Real-Ip before routing (after
    // dropping an untrusted client's), removes the Connection-named headers,
    // and adds the peer to X-Forwarded-For only when sending.
    let hit = backend("hit");
    let fallback = backend("fallback");
    let p = start_proxy(&routes_yaml(&[
        (
            "proto",
            "HeaderRegexp(`X-Forwarded-Proto`, `^https?$`) && Path(`/proto`)",
            &hit,
        ),
        (
            "spoofed",
            "Header(`X-Forwarded-Proto`, `https`) && Path(`/spoofed`)",
            &hit,
        ),
        (
            "host",
            "Header(`X-Forwarded-Host`, `site.test:8080`) && Path(`/host`)",
            &hit,
        ),
        (
            "xff",
            "HeaderRegexp(`X-Forwarded-For`, `.`) && Path(`/xff`)",
            &hit,
        ),
        ("named", "Header(`X-Named`, `1`) && Path(`/named`)", &hit),
        ("fallback", "PathPrefix(`/`)", &fallback),
    ]));
    let mut c = H1::connect(p.web).await;
    let mut get = async |path: &str, headers: &[(&str, &str)]| {
        let mut req = Request::get(path).header("host", "site.test:8080");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        c.send(req.body(empty()).unwrap()).await.unwrap()
    };
    assert_eq!(get("/proto", &[]).await.backend(), Some("hit"));
    assert_eq!(get("/host", &[]).await.backend(), Some("hit"));
    let spoofed = get("/spoofed", &[("x-forwarded-proto", "https")]).await;
    assert_eq!(
        spoofed.backend(),
        Some("fallback"),
        "untrusted value dropped"
    );
    assert_eq!(spoofed.json()["headers"]["x-forwarded-proto"], "http");
    let xff = get("/xff", &[("x-forwarded-for", "6.6.6.6")]).await;
    assert_eq!(
        xff.backend(),
        Some("fallback"),
        "the peer is added after routing"
    );
    assert_eq!(xff.json()["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(
        get("/named", &[("x-named", "1")]).await.backend(),
        Some("hit")
    );
    let named = get("/named", &[("x-named", "1"), ("connection", "x-named")]).await;
    assert_eq!(named.backend(), Some("fallback"), "removed before routing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_polling_ping_is_busy_not_slow() {
    // Internal endpoints count as requests: a keep-alive connection that
    // only asks /ping is not taken for a request head trickling in, and
    // keepAliveMaxRequests counts them as Traefik does.
    let b = backend("b");
    let p = start_proxy_static(
        &routes_yaml(&[("r", "PathPrefix(`/`)", &b)]),
        "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\n    transport:\n      keepAliveMaxRequests: 12\n      respondingTimeouts:\n        readTimeout: 300ms\n        idleTimeout: 5s\nping:\n  entryPoint: web\nproviders:\n  file:\n    filename: \"{DIR}/dynamic.yml\"\n",
        1,
    );
    let mut c = H1::connect(p.web).await;
    for i in 1..=12 {
        let r = c.get("x", "/ping").await;
        assert_eq!(r.status, StatusCode::OK, "ping {i}");
        assert_eq!(
            r.headers.get("connection").is_some(),
            i == 12,
            "ping {i}: only the 12th request closes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A backend writing `answer(request head)` as raw bytes on each
/// connection, then closing it: for answers no server library would send.
/// Serves at most `conns` connections.
fn raw_backend(conns: usize, answer: fn(&str) -> &'static [u8]) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().take(conns) {
            let Ok(mut s) = s else { break };
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
                head.push(b[0]);
            }
            let _ = s.write_all(answer(&String::from_utf8_lossy(&head)));
        }
    });
    addr
}

/// A router for every path to the server at `addr`.
fn all_to(addr: std::net::SocketAddr) -> String {
    format!(
        "http:\n  routers:\n    all:\n      rule: \"PathPrefix(`/`)\"\n      service: s\n  services:\n    s:\n      loadBalancer:\n        servers: [{{url: \"http://{addr}\"}}]\n"
    )
}

/// A backend speaking HTTP/1.0 (a simple or legacy server): the client
/// still gets an HTTP/1.1 answer on a connection that stays open, as from
/// Traefik (Go's server writes its own status line), and a body the
/// backend ends by closing becomes a chunked one instead of closing the
/// client's connection too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http10_backend_answers_over_http11_keep_alive() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    let addr = raw_backend(8, |head| {
        if head.starts_with("GET /sized") {
            b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nsized"
        } else {
            b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-close"
        }
    });
    let p = start_proxy(&all_to(addr));
    let mut s = TcpStream::connect(p.web).await.unwrap();
    for (path, body) in [
        ("/sized", "sized"),
        ("/close", "until-close"),
        ("/sized", "sized"),
    ] {
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let complete = |got: &[u8]| {
            let t = String::from_utf8_lossy(got);
            t.contains("\r\n\r\n") && (t.ends_with(body) || t.ends_with("0\r\n\r\n"))
        };
        while !complete(&got) {
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                .await
                .expect("an answer within 5 s")
                .unwrap();
            assert!(
                n > 0,
                "the proxy closed the connection after {path}: {:?}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{path}: {text}");
        assert!(text.contains(body), "{path}: {text}");
        assert_eq!(raw_header(&text, "connection"), None, "{path}: {text}");
        if path == "/close" {
            assert_eq!(
                raw_header(&text, "transfer-encoding"),
                Some("chunked"),
                "{text}"
            );
        }
    }
}

/// Answers framed in ways that cannot be passed on as they are, handled as
/// Go's transport and reverse proxy handle them for Traefik 3.7 (each
/// checked by hand against it): the chunked framing wins over a
/// `Content-Length`; a `gzip, chunked` body and a `101` to a request that
/// asked for no upgrade are refused (502 here, Traefik's 500: a broken
/// backend is a 502 as for the other upstream failures); a folded header
/// line is read as one value; the reason phrase is the canonical one; an
/// announced trailer reaches a client that accepts trailers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_upstream_framing_is_fixed_or_refused() {
    let addr = raw_backend(16, |head| {
        let path = head.split(' ').nth(1).unwrap_or("");
        match path {
            "/te-and-length" => b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            "/gzip-te" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            "/unasked-101" => b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            "/folded" => b"HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 2\r\n\r\nok",
            "/reason" => b"HTTP/1.1 200 Fine\r\nContent-Length: 2\r\n\r\nok",
            "/trailer" => b"HTTP/1.1 200 OK\r\nTrailer: X-T\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n",
            _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        }
    });
    let p = start_proxy(&all_to(addr));
    let ask = |path: &str, extra: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n").into_bytes()
    };
    let t = raw(p.web, &ask("/te-and-length", "")).await;
    assert!(t.starts_with("HTTP/1.1 200 OK\r\n"), "{t}");
    assert_eq!(raw_header(&t, "content-length"), None, "{t}");
    assert!(t.ends_with("2\r\nok\r\n0\r\n\r\n"), "{t}");
    for path in ["/gzip-te", "/unasked-101"] {
        let t = raw(p.web, &ask(path, "")).await;
        assert_eq!(raw_status(&t), 502, "{path}: {t}");
    }
    let t = raw(p.web, &ask("/folded", "")).await;
    assert_eq!(raw_status(&t), 200, "{t}");
    let folded = raw_header(&t, "x-a").unwrap_or_default();
    assert!(
        folded.starts_with('b') && folded.ends_with('c') && !folded.contains(['\r', '\n']),
        "{t}"
    );
    let t = raw(p.web, &ask("/reason", "")).await;
    assert!(t.starts_with("HTTP/1.1 200 OK\r\n"), "{t}");
    let t = raw(p.web, &ask("/trailer", "TE: trailers\r\n")).await;
    assert_eq!(raw_header(&t, "trailer"), Some("X-T"), "{t}");
    assert!(t.ends_with("0\r\nx-t: 1\r\n\r\n"), "{t}");
}
