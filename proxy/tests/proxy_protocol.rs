//! `entryPoints.<n>.proxyProtocol` over real sockets: v1 and v2 headers
//! from a trusted peer (127.0.0.1) set the client address that `ClientIP`,
//! `ipAllowList`, `X-Forwarded-For` and the access log see; a peer outside
//! `trustedIPs` (127.0.0.2) has its header read and dropped (Traefik's
//! go-proxyproto `IGNORE`), unless `insecure`; no header keeps the TCP
//! peer; a malformed header closes the connection; TLS after a header.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use support::traefik::exchange;
use support::*;

const TRUSTED: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const UNTRUSTED: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

fn dynamic(b: &Backend, other: &Backend) -> String {
    format!(
        r#"http:
  routers:
    by-client-ip:
      rule: "ClientIP(`203.0.113.0/24`) || ClientIP(`2001:db8::/32`)"
      service: pp
    allowed:
      rule: "Host(`allowed.test`)"
      service: pp
      middlewares: [only-proxied]
      priority: 1000
    rest:
      rule: "PathPrefix(`/`)"
      priority: 1
      service: other
  middlewares:
    only-proxied:
      ipAllowList:
        sourceRange: ["203.0.113.7"]
  services:
    pp:
      loadBalancer:
        servers:
          - url: "http://{b}"
    other:
      loadBalancer:
        servers:
          - url: "http://{o}"
"#,
        b = b.addr,
        o = other.addr
    )
}

fn static_cfg(proxy_protocol: &str) -> String {
    format!(
        "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\n    proxyProtocol:\n{proxy_protocol}providers:\n  file:\n    filename: \"{{DIR}}/dynamic.yml\"\naccessLog:\n  filePath: \"{{DIR}}/access.log\"\n  format: json\n"
    )
}

fn request(host: &str) -> String {
    format!("GET /echo HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

fn v1(src: &str, dst: &str) -> String {
    let family = if src.contains(':') { "TCP6" } else { "TCP4" };
    format!("PROXY {family} {src} {dst} 40000 80\r\n")
}

/// A v2 PROXY header for `src` (command PROXY, TCP), with one TLV.
fn v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21);
    let mut body = Vec::new();
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            h.push(0x11);
            body.extend(s.octets());
            body.extend(d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            h.push(0x21);
            body.extend(s.octets());
            body.extend(d.octets());
        }
        _ => panic!("one family"),
    }
    body.extend(src.port().to_be_bytes());
    body.extend(dst.port().to_be_bytes());
    // PP2_TYPE_AUTHORITY "lb.test": read and dropped.
    body.extend([0x02, 0x00, 0x07]);
    body.extend(b"lb.test");
    h.extend((body.len() as u16).to_be_bytes());
    h.extend(body);
    h
}

/// A v2 LOCAL header (a balancer's own health check): no address.
fn v2_local() -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend([0x20, 0x00, 0x00, 0x00]);
    h
}

struct Seen {
    status: u16,
    backend: Option<String>,
    xff: Option<String>,
}

async fn ask(addr: SocketAddr, from: Ipv4Addr, header: &[u8], host: &str) -> Seen {
    let mut wire = header.to_vec();
    wire.extend(request(host).as_bytes());
    let out = exchange(addr, from, &wire).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no answer: {text:?}"));
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let backend = head.split("\r\n").find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("x-backend")
            .then(|| v.trim().to_owned())
    });
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let xff = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|j| j["headers"]["x-forwarded-for"].as_str().map(str::to_owned));
    Seen {
        status,
        backend,
        xff,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_peers_v1_and_v2_headers_set_the_client_address() {
    let (b, other) = (backend("pp"), backend("other"));
    let p = start_proxy_static(
        &dynamic(&b, &other),
        &static_cfg("      trustedIPs: [\"127.0.0.1/32\"]\n"),
        1,
    );
    let web = p.web;

    let s = ask(web, TRUSTED, v1("203.0.113.7", "127.0.0.1").as_bytes(), "x").await;
    assert_eq!(s.status, 200);
    assert_eq!(
        s.backend.as_deref(),
        Some("pp"),
        "ClientIP sees the header's address"
    );
    assert_eq!(s.xff.as_deref(), Some("203.0.113.7"));

    let src: SocketAddr = "[2001:db8::5]:1234".parse().unwrap();
    let s = ask(
        web,
        TRUSTED,
        &v2(src, "[2001:db8::1]:80".parse().unwrap()),
        "x",
    )
    .await;
    assert_eq!(s.backend.as_deref(), Some("pp"));
    assert_eq!(s.xff.as_deref(), Some("2001:db8::5"));

    let src: SocketAddr = "203.0.113.9:1234".parse().unwrap();
    let s = ask(web, TRUSTED, &v2(src, "127.0.0.1:80".parse().unwrap()), "x").await;
    assert_eq!(s.backend.as_deref(), Some("pp"));
    assert_eq!(s.xff.as_deref(), Some("203.0.113.9"));

    // The allow-list reads the header's address.
    let s = ask(
        web,
        TRUSTED,
        v1("203.0.113.7", "127.0.0.1").as_bytes(),
        "allowed.test",
    )
    .await;
    assert_eq!(s.status, 200);
    let s = ask(
        web,
        TRUSTED,
        v1("203.0.113.8", "127.0.0.1").as_bytes(),
        "allowed.test",
    )
    .await;
    assert_eq!(s.status, 403);

    // No header, UNKNOWN, LOCAL: the TCP peer is the client.
    for header in [&b""[..], b"PROXY UNKNOWN\r\n", &v2_local()] {
        let s = ask(web, TRUSTED, header, "x").await;
        assert_eq!(s.status, 200);
        assert_eq!(s.backend.as_deref(), Some("other"), "{header:?}");
        assert_eq!(s.xff.as_deref(), Some("127.0.0.1"), "{header:?}");
    }

    // The access log's client is the header's address.
    let _ = ask(
        web,
        TRUSTED,
        v1("203.0.113.77", "127.0.0.1").as_bytes(),
        "logged.test",
    )
    .await;
    let log = p.dir.path().join("access.log");
    let deadline = Instant::now() + Duration::from_secs(5);
    let entry = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let found = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| e["RequestHost"] == "logged.test");
        match found {
            Some(e) => break e,
            None if Instant::now() > deadline => panic!("no entry in {text}"),
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    assert_eq!(entry["ClientHost"], "203.0.113.77", "{entry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_peers_header_is_dropped_unless_insecure() {
    let (b, other) = (backend("pp"), backend("other"));
    let p = start_proxy_static(
        &dynamic(&b, &other),
        &static_cfg("      trustedIPs: [\"127.0.0.1\"]\n"),
        1,
    );
    let s = ask(
        p.web,
        UNTRUSTED,
        v1("203.0.113.7", "127.0.0.1").as_bytes(),
        "x",
    )
    .await;
    assert_eq!(
        s.status, 200,
        "the connection is served, its header dropped"
    );
    assert_eq!(s.backend.as_deref(), Some("other"));
    assert_eq!(s.xff.as_deref(), Some("127.0.0.2"));
    let src: SocketAddr = "203.0.113.9:1234".parse().unwrap();
    let s = ask(
        p.web,
        UNTRUSTED,
        &v2(src, "127.0.0.1:80".parse().unwrap()),
        "x",
    )
    .await;
    assert_eq!(s.backend.as_deref(), Some("other"));
    assert_eq!(s.xff.as_deref(), Some("127.0.0.2"));

    let insecure = start_proxy_static(
        &dynamic(&b, &other),
        &static_cfg("      insecure: true\n"),
        1,
    );
    let s = ask(
        insecure.web,
        UNTRUSTED,
        v1("203.0.113.7", "127.0.0.1").as_bytes(),
        "x",
    )
    .await;
    assert_eq!(s.backend.as_deref(), Some("pp"));
    assert_eq!(s.xff.as_deref(), Some("203.0.113.7"));
}

/// The connection was closed (or reset, the request being unread) without
/// an answer.
fn unanswered(r: Result<Vec<u8>, String>, sent: &[u8]) {
    match r {
        Ok(out) => assert!(
            out.is_empty(),
            "{:?} answered {:?}",
            String::from_utf8_lossy(sent),
            String::from_utf8_lossy(&out)
        ),
        Err(e) => assert!(e.contains("reset"), "{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_header_closes_the_connection_and_others_go_on() {
    let (b, other) = (backend("pp"), backend("other"));
    let p = start_proxy_static(
        &dynamic(&b, &other),
        &static_cfg("      trustedIPs: [\"127.0.0.1\"]\n"),
        1,
    );
    for bad in [
        &b"PROXY TCP4 not-an-ip 127.0.0.1 1 2\r\n"[..],
        b"PROXY TCP4 203.0.113.7 127.0.0.1 99999 80\r\n",
        b"\r\n\r\n\0\r\nQUIT\n\x31\x11\x00\x0c",
    ] {
        let mut wire = bad.to_vec();
        wire.extend(request("x").as_bytes());
        unanswered(exchange(p.web, TRUSTED, &wire).await, bad);
    }
    // An untrusted peer's header is parsed too (and this one is bad).
    let bad = b"PROXY TCP4 1.2.3 4.5.6.7 1 2\r\n";
    let mut wire = bad.to_vec();
    wire.extend(request("x").as_bytes());
    unanswered(exchange(p.web, UNTRUSTED, &wire).await, bad);
    // A method that starts like a header is a request.
    let out = exchange(
        p.web,
        TRUSTED,
        b"PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_sent_in_pieces_is_waited_for_and_a_silent_one_times_out() {
    let (b, other) = (backend("pp"), backend("other"));
    let p = start_proxy_static(
        &dynamic(&b, &other),
        &format!(
            "{}{}",
            "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\n    transport:\n      respondingTimeouts:\n        readTimeout: 2s\n    proxyProtocol:\n      insecure: true\n",
            "providers:\n  file:\n    filename: \"{DIR}/dynamic.yml\"\n"
        ),
        1,
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(p.web).await.unwrap();
    let header = v1("203.0.113.7", "127.0.0.1");
    let (a, rest) = header.split_at(3);
    s.write_all(a.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.write_all(rest.as_bytes()).await.unwrap();
    s.write_all(request("x").as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("x-backend: pp"), "{text}");

    // Half a header and silence: cut at readTimeout (2 s), within 5 s.
    let mut s = tokio::net::TcpStream::connect(p.web).await.unwrap();
    s.write_all(b"PROX").await.unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(7), s.read_to_end(&mut out)).await;
    assert!(r.is_ok(), "not cut");
    assert!(out.is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

/// A PEM value as a YAML block scalar at `indent`.
fn block(pem: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut s = String::from("|\n");
    for line in pem.lines() {
        s += &format!("{pad}{line}\n");
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_after_a_header_is_served_with_the_headers_client() {
    use support::tls::{Alg, Ca, ClientOpts, client_config};
    use tokio::io::AsyncWriteExt;
    let (b, other) = (backend("pp"), backend("other"));
    let leaf = Ca::new("pp-ca").server(&["x.test"], Alg::EcdsaP256);
    let dynamic = format!(
        "{}tls:\n  certificates:\n    - certFile: {}      keyFile: {}",
        dynamic(&b, &other).replace(
            "      service: pp\n    allowed:",
            "      service: pp\n      tls: {}\n    allowed:"
        ),
        block(&leaf.cert_pem, 8),
        block(&leaf.key_pem, 8)
    );
    let p = start_proxy_static(
        &dynamic,
        &static_cfg("      trustedIPs: [\"127.0.0.1\"]\n"),
        1,
    );
    let mut tcp = tokio::net::TcpStream::connect(p.web).await.unwrap();
    tcp.write_all(v1("203.0.113.7", "127.0.0.1").as_bytes())
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("x.test").unwrap();
    let tls = tokio_rustls::TlsConnector::from(client_config(&ClientOpts::default()))
        .connect(name, tcp)
        .await
        .unwrap();
    let reply = support::tls::get(tls, "x.test", "/echo").await;
    assert_eq!(reply.backend(), Some("pp"), "{}", reply.text());
    assert_eq!(reply.json()["headers"]["x-forwarded-for"], "203.0.113.7");
}
