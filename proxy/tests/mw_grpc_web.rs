//! `grpcWeb` end to end: a gRPC-Web client over HTTP/1.1 to the proxy, the
//! proxy to a real h2c gRPC server (the test backend's `test.Echo`):
//! binary and text requests, the forwarded request as the server saw it,
//! the answer's message and trailer frames byte for byte, a stream that
//! arrives as it is sent, a trailers-only answer, CORS preflights allowed
//! and refused, and requests the middleware leaves alone. The same
//! exchanges against a real Traefik 3.7 when one is found
//! (`grpc_web_answers_as_traefik`).

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::BodyExt;
use support::traefik::{Traefik, find_traefik, free_port, skip_message, wait_ready};
use support::*;

const ORIGIN: &str = "https://app.test";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn dynamic(ready: &Backend, grpc: &Backend) -> String {
    format!(
        r#"http:
  routers:
    ready:
      rule: "Host(`ready.test`)"
      service: ready
    grpc:
      rule: "Host(`grpc.test`)"
      service: grpc
      middlewares: [web]
    plain:
      rule: "Host(`plain.test`)"
      service: ready
      middlewares: [web]
  services:
    ready:
      loadBalancer:
        servers: [{{url: "http://{ready}"}}]
    grpc:
      loadBalancer:
        servers: [{{url: "h2c://{grpc}"}}]
  middlewares:
    web:
      grpcWeb:
        allowOrigins: ["{ORIGIN}", "https://other.test"]
"#,
        ready = ready.addr,
        grpc = grpc.addr
    )
}

/// A gRPC-Web request to `test.Echo/<method>`: `text` for
/// `application/grpc-web-text` (the body base64), else `+proto`.
fn grpc_web(method: &str, text: bool, payload: &[u8], origin: Option<&str>) -> Request<TestBody> {
    let msg = grpc_message(payload);
    let (ct, body) = if text {
        ("application/grpc-web-text", B64.encode(&msg).into_bytes())
    } else {
        ("application/grpc-web+proto", msg)
    };
    let mut b = Request::post(format!("/test.Echo/{method}"))
        .header("host", "grpc.test")
        .header("content-type", ct)
        .header("x-grpc-web", "1");
    if let Some(o) = origin {
        b = b.header("origin", o);
    }
    b.body(support::body(body)).unwrap()
}

fn preflight(origin: &str, method: &str) -> Request<TestBody> {
    Request::options("/test.Echo/Unary")
        .header("host", "grpc.test")
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", "x-grpc-web,content-type")
        .body(empty())
        .unwrap()
}

/// The trailer frame the wrapper writes for `lines` (`name: value`).
fn trailer_frame(lines: &[&str]) -> Vec<u8> {
    let text: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
    let mut f = vec![0x80];
    f.extend_from_slice(&(text.len() as u32).to_be_bytes());
    f.extend_from_slice(text.as_bytes());
    f
}

/// A text body decoded: padded base64 segments, one after the other.
fn decode_text(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..body.len() {
        let last_pad = body[i] == b'=' && body.get(i + 1) != Some(&b'=');
        if last_pad || i + 1 == body.len() {
            out.extend(B64.decode(&body[start..=i]).unwrap());
            start = i + 1;
        }
    }
    out
}

/// The messages of a gRPC-Web body: (flag, payload) each.
fn frames(mut body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while body.len() >= 5 {
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        out.push((body[0], body[5..5 + len].to_vec()));
        body = &body[5 + len..];
    }
    assert!(body.is_empty(), "a partial frame at the end: {body:?}");
    out
}

/// The response header `name` (all its values, joined by `|`).
fn header(h: &HeaderMap, name: &str) -> String {
    h.get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect::<Vec<_>>()
        .join("|")
}

/// The names of `Access-Control-Expose-Headers`, sorted (Traefik lists
/// them in Go's map order).
fn exposed(h: &HeaderMap) -> Vec<String> {
    let mut v: Vec<String> = header(h, "access-control-expose-headers")
        .split(", ")
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

async fn started() -> (Backend, Backend, TestProxy) {
    let (ready, grpc) = (backend("ready"), backend("grpc"));
    let proxy = start_proxy(&dynamic(&ready, &grpc));
    (ready, grpc, proxy)
}

#[tokio::test]
async fn unary_binary_is_forwarded_as_grpc_and_answered_as_grpc_web() {
    let (_ready, _grpc, proxy) = started().await;
    let mut c = H1::connect(proxy.web).await;
    let r = c
        .send(grpc_web("Unary", false, b"hello", Some(ORIGIN)))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let h = &r.headers;
    assert_eq!(header(h, "content-type"), "application/grpc-web+proto");
    assert_eq!(header(h, "access-control-allow-origin"), ORIGIN);
    assert_eq!(header(h, "access-control-allow-credentials"), "true");
    assert_eq!(header(h, "vary"), "Origin");
    assert!(h.get("content-length").is_none(), "{h:?}");
    assert!(h.get("trailer").is_none(), "{h:?}");
    let exposed = header(h, "access-control-expose-headers");
    assert!(
        exposed.ends_with(", grpc-status, grpc-message"),
        "{exposed}"
    );
    for name in [
        "Content-Type",
        "Vary",
        "Access-Control-Allow-Origin",
        "Access-Control-Allow-Credentials",
    ] {
        assert!(exposed.contains(name), "{name} in {exposed}");
    }
    assert!(r.trailers.is_none(), "the trailers are in the body");

    let got = frames(&r.body);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, 0);
    let trailer = trailer_frame(&[
        "grpc-message: done",
        "grpc-status: 0",
        "x-trailer-a: 1",
        "x-trailer-b: 2",
    ]);
    assert!(r.body.ends_with(&trailer), "{:?}", r.body);

    // What the gRPC server saw: HTTP/2, gRPC's type, no length, the
    // message as sent.
    let seen: serde_json::Value = serde_json::from_slice(&got[0].1).unwrap();
    assert_eq!(seen["version"], "HTTP/2.0");
    assert_eq!(seen["headers"]["content-type"], "application/grpc+proto");
    assert!(seen["headers"].get("content-length").is_none(), "{seen}");
    assert_eq!(seen["headers"]["x-grpc-web"], "1");
    assert_eq!(seen["body"], "000000000568656c6c6f");
}

#[tokio::test]
async fn unary_text_is_base64_both_ways() {
    let (_ready, _grpc, proxy) = started().await;
    let mut c = H1::connect(proxy.web).await;
    let r = c
        .send(grpc_web("Unary", true, b"hello", None))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        header(&r.headers, "content-type"),
        "application/grpc-web-text"
    );
    // No origin: only `Vary`.
    assert!(r.headers.get("access-control-allow-origin").is_none());
    assert_eq!(header(&r.headers, "vary"), "Origin");
    assert!(
        r.body
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(b))
    );
    let body = decode_text(&r.body);
    let got = frames(&body);
    assert_eq!(got.len(), 2, "{got:?}");
    let seen: serde_json::Value = serde_json::from_slice(&got[0].1).unwrap();
    assert_eq!(seen["headers"]["content-type"], "application/grpc");
    assert_eq!(
        seen["body"], "000000000568656c6c6f",
        "decoded before it was sent"
    );
    // The trailer frame is its own padded segment.
    let trailer = trailer_frame(&[
        "grpc-message: done",
        "grpc-status: 0",
        "x-trailer-a: 1",
        "x-trailer-b: 2",
    ]);
    assert!(r.body.ends_with(B64.encode(&trailer).as_bytes()));

    // Not base64: the exchange fails (the stream to the server is reset).
    // Traefik answers 500 through the wrapper (base64, CORS headers); the
    // proxy answers its usual 502 after the chain.
    let bad = Request::post("/test.Echo/Unary")
        .header("host", "grpc.test")
        .header("content-type", "application/grpc-web-text")
        .body(support::body("not base64!"))
        .unwrap();
    let r = H1::connect(proxy.web).await.send(bad).await.unwrap();
    assert_eq!(r.status, 502, "{}", r.text());
}

#[tokio::test]
async fn a_stream_reaches_the_client_as_it_is_sent() {
    let (_ready, _grpc, proxy) = started().await;
    let mut c = H1::connect(proxy.web).await;
    let tx = c.sender();
    tx.ready().await.unwrap();
    let t0 = Instant::now();
    let resp = tx
        .send_request(grpc_web("Stream", false, b"", Some(ORIGIN)))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut all = Vec::new();
    let mut first_at = None;
    while let Some(frame) = body.frame().await {
        if let Ok(d) = frame.unwrap().into_data() {
            first_at.get_or_insert_with(|| t0.elapsed());
            all.extend_from_slice(&d);
        }
    }
    // The server sends its messages 300 ms apart: the first one comes
    // well before the end (a buffered answer would come all at once).
    let first_at = first_at.unwrap();
    let spread = t0.elapsed() - first_at;
    assert!(
        spread >= Duration::from_millis(450),
        "first at {first_at:?}, {spread:?} before the end"
    );
    let mut want = Vec::new();
    for m in ["one", "two", "three"] {
        want.extend(grpc_message(m.as_bytes()));
    }
    want.extend(trailer_frame(&["grpc-status: 0"]));
    assert_eq!(Bytes::from(all), Bytes::from(want));
}

#[tokio::test]
async fn a_trailers_only_answer_has_its_status_in_the_head() {
    let (_ready, _grpc, proxy) = started().await;
    let r = H1::connect(proxy.web)
        .await
        .send(grpc_web("Fail", false, b"x", Some(ORIGIN)))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(header(&r.headers, "grpc-status"), "5");
    assert_eq!(header(&r.headers, "grpc-message"), "not found");
    assert_eq!(r.body, [0x80, 0, 0, 0, 0][..], "an empty trailer frame");
    let exposed = exposed(&r.headers);
    assert!(exposed.contains(&"Grpc-Status".to_owned()), "{exposed:?}");
}

#[tokio::test]
async fn preflights_are_answered_by_the_middleware() {
    let (_ready, grpc, proxy) = started().await;
    let mut c = H1::connect(proxy.web).await;
    let r = c.send(preflight(ORIGIN, "POST")).await.unwrap();
    assert_eq!(r.status, 200);
    let h = &r.headers;
    assert_eq!(
        header(h, "vary"),
        "Origin|Access-Control-Request-Method|Access-Control-Request-Headers"
    );
    assert_eq!(header(h, "access-control-allow-origin"), ORIGIN);
    assert_eq!(header(h, "access-control-allow-methods"), "POST");
    assert_eq!(
        header(h, "access-control-allow-headers"),
        "X-Grpc-Web, Content-Type"
    );
    assert_eq!(header(h, "access-control-allow-credentials"), "true");
    assert_eq!(header(h, "access-control-max-age"), "600");
    assert!(r.body.is_empty());

    // A refused origin, a refused method: 200 with `Vary` only.
    for req in [
        preflight("https://evil.test", "POST"),
        preflight(ORIGIN, "PUT"),
    ] {
        let r = c.send(req).await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(header(&r.headers, "vary").matches('|').count(), 2);
        for name in [
            "access-control-allow-origin",
            "access-control-allow-methods",
            "access-control-allow-credentials",
            "access-control-max-age",
        ] {
            assert!(r.headers.get(name).is_none(), "{name}: {:?}", r.headers);
        }
    }
    assert_eq!(
        grpc.stats
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "no preflight reached the server"
    );
}

#[tokio::test]
async fn other_requests_pass_untouched() {
    let (ready, _grpc, proxy) = started().await;
    let mut c = H1::connect(proxy.web).await;
    // A plain POST, and a preflight that is not for gRPC-Web.
    let post = Request::post("/echo")
        .header("host", "plain.test")
        .header("content-type", "application/json")
        .header("origin", ORIGIN)
        .body(support::body("{}"))
        .unwrap();
    let r = c.send(post).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.backend(), Some("ready"));
    let seen = r.json();
    assert_eq!(seen["headers"]["content-type"], "application/json");
    assert_eq!(seen["headers"]["content-length"], "2");
    assert_eq!(seen["version"], "HTTP/1.1");
    assert_eq!(header(&r.headers, "content-type"), "application/json");
    assert!(r.headers.get("access-control-expose-headers").is_none());
    assert!(r.headers.get("vary").is_none());

    let options = Request::options("/echo")
        .header("host", "plain.test")
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .body(empty())
        .unwrap();
    let r = c.send(options).await.unwrap();
    assert_eq!(r.json()["method"], "OPTIONS", "reached the backend");
    assert!(r.headers.get("access-control-allow-origin").is_none());
    drop(ready);
}

// === against Traefik ===

/// What is compared of one answer: the status, the headers the wrapper
/// writes, the body (text bodies decoded: their segments follow the
/// writes), and the message the server echoed (what it saw).
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    headers: Vec<(String, String)>,
    exposed: Vec<String>,
    body: Vec<u8>,
    server: Option<serde_json::Value>,
}

async fn seen(addr: SocketAddr, req: Request<TestBody>) -> Seen {
    let text = req
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc-web-text"));
    let r = H1::connect(addr).await.send(req).await.unwrap();
    let body = if text && r.status == 200 {
        decode_text(&r.body)
    } else {
        r.body.to_vec()
    };
    let mut server = None;
    let mut shown = body.clone();
    if r.status == 200 && body.first() == Some(&0) {
        let f = frames(&body);
        if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&f[0].1) {
            // What differs between two proxies whatever the middleware.
            let h = v["headers"].as_object_mut().unwrap();
            h.retain(|k, _| {
                [
                    "content-type",
                    "content-length",
                    "te",
                    "x-grpc-web",
                    "origin",
                ]
                .contains(&k.as_str())
            });
            server = Some(v);
            shown = f.last().unwrap().1.clone();
        }
    }
    let headers = [
        "content-type",
        "content-length",
        "vary",
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-max-age",
        "grpc-status",
        "grpc-message",
        "trailer",
    ]
    .iter()
    .map(|n| (n.to_string(), header(&r.headers, n)))
    .collect();
    let mut exposed = exposed(&r.headers);
    // Traefik's proxy keeps the server's `Date`, and the length Go adds.
    exposed.retain(|n| n != "Date" && n != "Content-Length");
    Seen {
        status: r.status.as_u16(),
        headers,
        exposed,
        body: shown,
        server,
    }
}

/// Builds one request of a compared exchange (sent to each proxy).
type MakeRequest = fn() -> Request<TestBody>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_answers_as_traefik() {
    let Some(bin) = find_traefik() else {
        eprintln!("{}", skip_message("grpc_web_answers_as_traefik"));
        return;
    };
    let (ready, grpc) = (backend("ready"), backend("grpc"));
    let config = dynamic(&ready, &grpc);
    let dir = TempDir::new("traefik-grpcweb");
    let dyn_path = dir.write("dynamic.yml", &config);
    let traefik_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let traefik = Traefik::start(
        &bin,
        &dir,
        &support::traefik::static_yaml(
            &[("web".to_owned(), traefik_addr, String::new())],
            &dyn_path,
            None,
        ),
    );
    let proxy = start_proxy(&config);
    for (addr, what) in [(traefik_addr, "traefik"), (proxy.web, "proxy")] {
        wait_ready(
            addr,
            "ready.test",
            "ready",
            what,
            Duration::from_secs(20),
            || traefik.log_text(),
        )
        .await;
    }
    let cases: Vec<(&str, MakeRequest)> = vec![
        ("unary binary", || {
            grpc_web("Unary", false, b"hello", Some(ORIGIN))
        }),
        ("unary text", || grpc_web("Unary", true, b"hello", None)),
        ("stream", || grpc_web("Stream", false, b"", Some(ORIGIN))),
        ("stream text", || {
            grpc_web("Stream", true, b"", Some(ORIGIN))
        }),
        ("trailers only", || {
            grpc_web("Fail", false, b"x", Some("https://evil.test"))
        }),
        ("preflight", || preflight(ORIGIN, "post")),
        ("preflight refused", || {
            preflight("https://evil.test", "POST")
        }),
        ("preflight bad method", || preflight(ORIGIN, "DELETE")),
        ("te trailers", || {
            let mut r = grpc_web("Unary", false, b"t", Some(ORIGIN));
            r.headers_mut().insert("te", "trailers".parse().unwrap());
            r
        }),
    ];
    let mut diffs = Vec::new();
    for (what, req) in cases {
        let theirs = seen(traefik_addr, req()).await;
        let ours = seen(proxy.web, req()).await;
        eprintln!("{what}: traefik {theirs:?}");
        if theirs != ours {
            diffs.push(format!("{what}:\n  traefik {theirs:?}\n  proxy   {ours:?}"));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}
