//! `contentType` over real sockets: a response without `Content-Type` gets
//! the type Go's sniffing gives its first bytes (HTML, XML, PNG, gzip,
//! text, binary), only inside the middleware; a typed response, an empty
//! body, a 204, a `Content-Encoding` and `autoDetect: false` are left
//! alone, and so is a typed answer of a middleware inside it (a 401).
//! Then the same 14 requests against a real Traefik 3.7 (skipped, saying
//! so, without one): status, `Content-Type` and body compared.

mod support;

use std::net::SocketAddr;

use support::traefik::{Traefik, exchange, find_traefik, free_ports, skip_message};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The bodies the raw backend serves, by path: (path, extra head lines,
/// body). None has a `Content-Type` unless its extra lines give one.
pub const BODIES: &[(&str, &str, &[u8])] = &[
    (
        "/html",
        "",
        b"  <!DOCTYPE html><html><body>hi</body></html>",
    ),
    ("/xml", "", b"\n<?xml version=\"1.0\"?><a/>"),
    ("/png", "", b"\x89PNG\x0D\x0A\x1A\x0A\x00\x00\x00\x0DIHDR"),
    ("/gzip", "", b"\x1F\x8B\x08\x00\x00\x00\x00\x00"),
    ("/text", "", b"plain words\n"),
    ("/json", "", b"{\"a\": 1}"),
    ("/binary", "", b"\x00\x01\x02\x03\x04"),
    ("/pdf", "", b"%PDF-1.7\n"),
    ("/empty", "", b""),
    (
        "/typed",
        "Content-Type: application/x-custom\r\n",
        b"<html>",
    ),
    ("/encoded", "Content-Encoding: br\r\n", b"<html> "),
    ("/nocontent", "", b""),
    // Sent in two parts 30 ms apart: Go's first flush holds both.
    ("/split", "", b"<html><body>late</body></html>"),
];

/// A raw HTTP/1.1 server answering each path of [`BODIES`] (one request
/// per connection), `404` otherwise; `/nocontent` is a 204.
pub fn raw_backend() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head);
                    let path = text.split(' ').nth(1).unwrap_or("/").to_owned();
                    let found = BODIES.iter().find(|(p, _, _)| *p == path);
                    let mut out = match found {
                        Some(("/nocontent", _, _)) => b"HTTP/1.1 204 No Content\r\n".to_vec(),
                        Some(_) => b"HTTP/1.1 200 OK\r\n".to_vec(),
                        None => b"HTTP/1.1 404 Not Found\r\n".to_vec(),
                    };
                    let (extra, body) = found.map_or(("", &b""[..]), |(_, e, b)| (*e, *b));
                    out.extend_from_slice(extra.as_bytes());
                    if path != "/nocontent" {
                        out.extend_from_slice(
                            format!("Content-Length: {}\r\n", body.len()).as_bytes(),
                        );
                    }
                    out.extend_from_slice(b"Connection: close\r\n\r\n");
                    if path == "/split" {
                        out.extend_from_slice(&body[..1]);
                        let _ = s.write_all(&out).await;
                        let _ = s.flush().await;
                        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
                        let _ = s.write_all(&body[1..]).await;
                        return;
                    }
                    out.extend_from_slice(body);
                    let _ = s.write_all(&out).await;
                });
            }
        });
    });
    addr
}

fn content_type(r: &Reply) -> Option<&str> {
    r.headers.get("content-type").and_then(|v| v.to_str().ok())
}

fn config(raw: SocketAddr) -> String {
    format!(
        r#"http:
  routers:
    sniffed:
      rule: "Host(`s.test`)"
      service: raw
      middlewares: [sniff]
    plain:
      rule: "Host(`p.test`)"
      service: raw
    off:
      rule: "Host(`o.test`)"
      service: raw
      middlewares: [off]
    auth:
      rule: "Host(`a.test`)"
      service: raw
      middlewares: [sniff, basic]
  middlewares:
    sniff:
      contentType: {{}}
    off:
      contentType:
        autoDetect: false
    basic:
      basicAuth:
        users: ["test:$apr1$Nf8Hbmnt$vzN4/HYwFkrBpFBNM27mO/"]
  services:
    raw:
      loadBalancer:
        servers:
          - url: "http://{raw}"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_type_sniffs_as_go_inside_the_middleware_only() {
    let raw = raw_backend();
    let p = start_proxy(&config(raw));
    for (path, want) in [
        ("/html", Some("text/html; charset=utf-8")),
        ("/xml", Some("text/xml; charset=utf-8")),
        ("/png", Some("image/png")),
        ("/gzip", Some("application/x-gzip")),
        ("/text", Some("text/plain; charset=utf-8")),
        ("/json", Some("text/plain; charset=utf-8")),
        ("/binary", Some("application/octet-stream")),
        ("/pdf", Some("application/pdf")),
        ("/empty", None),
        ("/typed", Some("application/x-custom")),
        ("/encoded", None),
        ("/nocontent", None),
        ("/split", Some("text/html; charset=utf-8")),
    ] {
        let r = get(p.web, "s.test", path).await;
        assert_eq!(content_type(&r), want, "{path}");
        // The body is passed whole after being looked at.
        let body = BODIES.iter().find(|(p, _, _)| *p == path).unwrap().2;
        assert_eq!(&r.body[..], body, "{path}");
        // Without the middleware (or turned off), no type is made up.
        for host in ["p.test", "o.test"] {
            let r = get(p.web, host, path).await;
            let typed = (path == "/typed").then_some("application/x-custom");
            assert_eq!(content_type(&r), typed, "{host}{path}");
        }
    }
    // A middleware's own answer inside it keeps the type it has
    // (basicAuth's 401 is `text/plain`, as Traefik's).
    let r = get(p.web, "a.test", "/html").await;
    assert_eq!(r.status, 401);
    assert_eq!(content_type(&r), Some("text/plain"));
}

#[test]
fn auto_detect_is_deprecated_with_a_warning() {
    let (_, warnings) = proxy::config::parse_dynamic(
        "http:\n  middlewares:\n    m:\n      contentType:\n        autoDetect: true\n",
        proxy::config::Format::Yaml,
        std::path::Path::new("d.yml"),
        &["web".to_owned()],
        proxy::routing::RuleSyntax::V3,
    )
    .unwrap();
    let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|w| w
                .contains("http.middlewares.m.contentType.autoDetect: autoDetect is deprecated")),
        "{text:?}"
    );
}

/// Status, `Content-Type` and body of a raw answer.
fn digest(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).unwrap_or("?");
    let ct = head
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.trim().to_owned());
    format!("{status} content-type={ct:?} body={body:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_type_answers_as_traefik() {
    let Some(bin) = find_traefik() else {
        eprintln!("{}", skip_message("content_type_answers_as_traefik"));
        return;
    };
    let raw = raw_backend();
    let dir = TempDir::new("traefik-content-type");
    let dyn_path = dir.write("dynamic.yml", &config(raw));
    let ports = free_ports(1);
    let t_web = SocketAddr::from(([127, 0, 0, 1], ports[0]));
    let traefik = Traefik::start(
        &bin,
        &dir,
        &support::traefik::static_yaml(
            &[("web".to_owned(), t_web, String::new())],
            &dyn_path,
            None,
        ),
    );
    let p = start_proxy(&config(raw));
    let ask = |addr: SocketAddr, host: &'static str, path: &'static str| async move {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        exchange(addr, std::net::Ipv4Addr::LOCALHOST, req.as_bytes()).await
    };
    // Traefik loads its file asynchronously.
    let t0 = std::time::Instant::now();
    while ask(t_web, "s.test", "/text")
        .await
        .map_or(true, |a| !digest(&a).starts_with("200"))
    {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(20),
            "Traefik not ready: {}",
            traefik.log_text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut cases: Vec<(&str, &str)> = BODIES
        .iter()
        .map(|(path, _, _)| ("s.test", *path))
        .collect();
    cases.push(("a.test", "/html"));
    let mut wrong = Vec::new();
    for (host, path) in &cases {
        let theirs = digest(&ask(t_web, host, path).await.unwrap());
        let ours = digest(&ask(p.web, host, path).await.unwrap());
        if theirs != ours {
            wrong.push(format!(
                "- {host}{path}\n    traefik {theirs}\n    proxy   {ours}"
            ));
        }
    }
    eprintln!(
        "contentType: {} cases compared with Traefik, {} differences",
        cases.len(),
        wrong.len()
    );
    assert!(
        wrong.is_empty(),
        "differences from Traefik:\n{}",
        wrong.join("\n")
    );
}
