//! `buffering` against a real Traefik 3.7: request limits (declared and
//! streamed), what the backend receives of a buffered request (its
//! length, no chunking), response limits, and how often a
//! `retryExpression` resends a request.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::READY_HOST;
use super::support::traefik::{
    Traefik, exchange, find_traefik, free_port, skip_message, wait_ready,
};
use super::support::*;

/// The configuration of the buffering comparison: request and response
/// limits, and two retry expressions.
fn buffering_dynamic(ready: &Backend, main: &Backend) -> String {
    format!(
        r#"http:
  routers:
    ready:
      rule: "Host(`{READY_HOST}`)"
      service: ready
    limits:
      rule: "Host(`limits.test`)"
      service: main
      middlewares: [limits]
    network:
      rule: "Host(`network.test`)"
      service: main
      middlewares: [network-retry]
    codes:
      rule: "Host(`codes.test`)"
      service: main
      middlewares: [code-retry]
  services:
    ready:
      loadBalancer:
        servers:
          - url: "http://{ready}"
    main:
      loadBalancer:
        servers:
          - url: "http://{main}"
  middlewares:
    limits:
      buffering:
        maxRequestBodyBytes: 1000
        memRequestBodyBytes: 100
        maxResponseBodyBytes: 3000
        memResponseBodyBytes: 100
    network-retry:
      buffering:
        retryExpression: "IsNetworkError() && Attempts() < 3"
    code-retry:
      buffering:
        retryExpression: "ResponseCode() == 503 && Attempts() <= 1 || RequestMethod() == \"PUT\" && Attempts() < 4"
"#,
        ready = ready.addr,
        main = main.addr,
    )
}

/// A raw request with `body`, sent with its length or `chunked`.
fn with_body(method: &str, host: &str, path: &str, body: &[u8], chunked: bool) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if chunked {
        req += "Transfer-Encoding: chunked\r\n\r\n";
        let mut out = req.into_bytes();
        for part in body.chunks(300) {
            out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            out.extend_from_slice(part);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    } else {
        req += &format!("Content-Length: {}\r\n\r\n", body.len());
        let mut out = req.into_bytes();
        out.extend_from_slice(body);
        out
    }
}

/// What is compared of a buffered exchange: the status, `Content-Type`,
/// the body's length, and for an echo the length framing the backend
/// received (its `Content-Length` and `Transfer-Encoding`).
fn buffered(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let status = raw_status(&text);
    let ct = raw_header(&text, "content-type").unwrap_or("-").to_owned();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let chunked = raw_header(&text, "transfer-encoding").is_some();
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    let sent = match serde_json::from_str::<serde_json::Value>(&body) {
        Ok(v) => format!(
            "upstream saw length {} te {}",
            v["headers"]["content-length"], v["headers"]["transfer-encoding"]
        ),
        Err(_) if body.len() < 40 => format!("{body:?}"),
        Err(_) => format!("{} bytes", body.len()),
    };
    format!("{status} {ct} | {sent}")
}

/// A chunked body's data.
fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out += &rest[..n];
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffering_answers_as_traefik() {
    let Some(bin) = find_traefik() else {
        eprintln!("{}", skip_message("buffering_answers_as_traefik"));
        return;
    };
    let (t_ready, t_main) = (backend("ready"), backend("main"));
    let (p_ready, p_main) = (backend("ready"), backend("main"));
    let dir = TempDir::new("traefik-buffering");
    let dyn_path = dir.write("dynamic.yml", &buffering_dynamic(&t_ready, &t_main));
    let traefik_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let traefik = Traefik::start(
        &bin,
        &dir,
        &super::support::traefik::static_yaml(
            &[("web".to_owned(), traefik_addr, String::new())],
            &dyn_path,
            None,
        ),
    );
    let proxy = start_proxy(&buffering_dynamic(&p_ready, &p_main));
    for (addr, what) in [(traefik_addr, "traefik"), (proxy.web, "proxy")] {
        wait_ready(
            addr,
            READY_HOST,
            "ready",
            what,
            Duration::from_secs(20),
            || traefik.log_text(),
        )
        .await;
    }
    let body = |n: usize| -> Vec<u8> { (0..n).map(|i| b'a' + (i % 26) as u8).collect() };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // Request limits: declared, then streamed past the maximum; under
        // it, spilled past memory, sent on with its length.
        (
            "declared over",
            with_body("POST", "limits.test", "/drain/echo", &body(1001), false),
        ),
        (
            "chunked over",
            with_body("POST", "limits.test", "/drain/echo", &body(1500), true),
        ),
        (
            "at the limit",
            with_body("POST", "limits.test", "/drain/echo", &body(1000), false),
        ),
        (
            "chunked under",
            with_body("POST", "limits.test", "/drain/echo", &body(700), true),
        ),
        (
            "empty chunked",
            with_body("POST", "limits.test", "/drain/echo", b"", true),
        ),
        (
            "no body",
            with_body("GET", "limits.test", "/drain/echo", b"", false),
        ),
        // Response limits.
        (
            "response over",
            with_body("GET", "limits.test", "/content/3001", b"", false),
        ),
        (
            "response at",
            with_body("GET", "limits.test", "/content/3000", b"", false),
        ),
        (
            "response chunked over",
            with_body("GET", "limits.test", "/content/5000?chunked", b"", false),
        ),
        (
            "response 204",
            with_body("GET", "limits.test", "/content/5000?status=204", b"", false),
        ),
        (
            "HEAD over",
            with_body("HEAD", "limits.test", "/content/5000", b"", false),
        ),
    ];
    let mut wrong = Vec::new();
    for (what, req) in &cases {
        let t = buffered(
            &exchange(traefik_addr, Ipv4Addr::LOCALHOST, req)
                .await
                .unwrap(),
        );
        let p = buffered(&exchange(proxy.web, Ipv4Addr::LOCALHOST, req).await.unwrap());
        if t != p {
            wrong.push(format!("- {what}\n    traefik {t}\n    proxy   {p}"));
        }
    }
    // retryExpression: the backend's hits counted on each side; a request
    // without a body is never retried (oxy). The backend reads every body
    // (`/drain/`): one answered unread makes Traefik's pooled connection
    // fail the next exchange at random (a 502, or a resend less).
    let retries: Vec<(&str, Vec<u8>)> = vec![
        (
            "502 with a body",
            with_body("POST", "network.test", "/drain/status/502", b"x", false),
        ),
        (
            "502 without",
            with_body("GET", "network.test", "/drain/status/502", b"", false),
        ),
        (
            "504 chunked body",
            with_body("POST", "network.test", "/drain/status/504", b"xyz", true),
        ),
        (
            "503 not a network error",
            with_body("POST", "network.test", "/drain/status/503", b"x", false),
        ),
        (
            "503 retried once",
            with_body("POST", "codes.test", "/drain/status/503", b"x", false),
        ),
        (
            "PUT until attempt 4",
            with_body("PUT", "codes.test", "/drain/status/200", b"x", false),
        ),
        (
            "POST 200 once",
            with_body("POST", "codes.test", "/drain/status/200", b"x", false),
        ),
    ];
    for (what, req) in &retries {
        let (t0, p0) = (
            t_main.stats.requests.load(Ordering::SeqCst),
            p_main.stats.requests.load(Ordering::SeqCst),
        );
        let t = buffered(
            &exchange(traefik_addr, Ipv4Addr::LOCALHOST, req)
                .await
                .unwrap(),
        );
        let p = buffered(&exchange(proxy.web, Ipv4Addr::LOCALHOST, req).await.unwrap());
        let t_hits = t_main.stats.requests.load(Ordering::SeqCst) - t0;
        let p_hits = p_main.stats.requests.load(Ordering::SeqCst) - p0;
        let (t, p) = (format!("{t} hits {t_hits}"), format!("{p} hits {p_hits}"));
        if t != p {
            wrong.push(format!("- retry: {what}\n    traefik {t}\n    proxy   {p}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "differences from Traefik:\n{}",
        wrong.join("\n")
    );
}
