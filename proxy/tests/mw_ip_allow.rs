//! `ipAllowList` (and `ipWhiteList`) over real sockets: the peer's IP
//! (requests sent from 127.0.0.1 and 127.0.0.2), `rejectStatusCode`, and
//! `X-Forwarded-For` read by `ipStrategy.depth` and `excludedIPs`, kept
//! only from trusted peers as Traefik's entrypoint keeps it.

mod support;

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;

use support::traefik::send;
use support::*;

fn config(b: &Backend) -> String {
    format!(
        r#"http:
  routers:
    peer:
      rule: "Host(`peer.test`)"
      service: s
      middlewares: [only-one]
    not-found:
      rule: "Host(`hidden.test`)"
      service: s
      middlewares: [hidden]
    depth:
      rule: "Host(`depth.test`)"
      service: s
      middlewares: [by-depth]
    excluded:
      rule: "Host(`excluded.test`)"
      service: s
      middlewares: [by-exclusion]
    legacy:
      rule: "Host(`legacy.test`)"
      service: s
      middlewares: [legacy]
  services:
    s:
      loadBalancer:
        servers:
          - url: "http://{b}"
  middlewares:
    only-one:
      ipAllowList:
        sourceRange: ["127.0.0.1/32", "::1"]
    hidden:
      ipAllowList:
        sourceRange: ["127.0.0.1"]
        rejectStatusCode: 404
    by-depth:
      ipAllowList:
        sourceRange: ["10.0.0.0/24"]
        ipStrategy:
          depth: 2
    by-exclusion:
      ipAllowList:
        sourceRange: ["10.0.0.2"]
        ipStrategy:
          excludedIPs: ["192.168.0.0/16"]
    legacy:
      ipWhiteList:
        sourceRange: ["127.0.0.2"]
"#,
        b = b.addr
    )
}

fn wire(host: &str, xff: Option<&str>) -> Vec<u8> {
    let xff = xff.map_or(String::new(), |v| format!("X-Forwarded-For: {v}\r\n"));
    format!("GET / HTTP/1.1\r\nHost: {host}\r\n{xff}Connection: close\r\n\r\n").into_bytes()
}

const ONE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const TWO: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_ip_is_allowed_or_refused() {
    let b = backend("b");
    let p = start_proxy(&config(&b));
    let at = |host: &'static str, from| {
        let addr = p.web;
        async move { send(addr, from, &wire(host, None)).await.unwrap() }
    };
    let r = at("peer.test", ONE).await;
    assert_eq!((r.status, r.backend.as_deref()), (200, Some("b")));
    let r = at("peer.test", TWO).await;
    assert_eq!((r.status, r.backend), (403, None));
    let r = at("hidden.test", TWO).await;
    assert_eq!(r.status, 404, "rejectStatusCode");
    let r = at("legacy.test", TWO).await;
    assert_eq!(r.status, 200, "ipWhiteList is the same middleware");
    let r = at("legacy.test", ONE).await;
    assert_eq!(r.status, 403);
    assert_eq!(b.stats.requests.load(Ordering::Relaxed), 2);
    let text = raw(p.web, &wire("peer.test", None)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    // The refusal is the status text without a Content-Type, as Traefik's.
    let text = raw(p.web, &wire("legacy.test", None)).await;
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    assert!(text.ends_with("\r\n\r\nForbidden"), "{text}");
    assert!(
        !text.to_ascii_lowercase().contains("content-type"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_read_by_depth_and_exclusion_from_trusted_peers() {
    let b = backend("b");
    let trusted = "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\n    forwardedHeaders:\n      insecure: true\nproviders:\n  file:\n    filename: \"{DIR}/dynamic.yml\"\n";
    let p = start_proxy_static(&config(&b), trusted, 1);
    let ask = |host: &'static str, xff: Option<&'static str>| {
        let addr = p.web;
        async move { send(addr, ONE, &wire(host, xff)).await.unwrap().status }
    };
    // depth 2: the second entry from the right.
    assert_eq!(ask("depth.test", Some("10.0.0.9, 192.168.1.1")).await, 200);
    assert_eq!(ask("depth.test", Some("192.168.1.1, 10.0.0.9")).await, 403);
    assert_eq!(
        ask("depth.test", Some("10.0.0.9")).await,
        403,
        "too few entries"
    );
    assert_eq!(ask("depth.test", None).await, 403);
    // excludedIPs: the rightmost entry not excluded.
    assert_eq!(
        ask("excluded.test", Some("10.0.0.2, 192.168.0.7, 192.168.3.3")).await,
        200
    );
    assert_eq!(
        ask("excluded.test", Some("10.0.0.2, 172.16.0.1")).await,
        403
    );

    // From an untrusted peer the client's X-Forwarded-For is dropped
    // before the middleware (as Traefik's entrypoint drops it).
    let untrusted = start_proxy(&config(&b));
    let r = send(
        untrusted.web,
        ONE,
        &wire("depth.test", Some("10.0.0.9, 192.168.1.1")),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 403);
}

#[test]
fn bad_allow_lists_are_refused_where_written() {
    let b = backend("b");
    let bad = config(&b)
        .replace("[\"127.0.0.1/32\", \"::1\"]", "[\"127.0.0.300\"]")
        .replace("rejectStatusCode: 404", "rejectStatusCode: 999")
        .replace("depth: 2", "depth: 2\n          ipv6Subnet: 129")
        .replace("sourceRange: [\"127.0.0.2\"]", "sourceRange: []");
    let errors = dynamic_errors(&bad);
    assert!(
        errors.contains("\"127.0.0.300\" is neither an IP address nor a CIDR network"),
        "{errors}"
    );
    assert!(errors.contains("invalid HTTP status code 999"), "{errors}");
    assert!(errors.contains("invalid IPv6 subnet 129"), "{errors}");
    assert!(errors.contains("http.middlewares.legacy"), "{errors}");
    assert!(errors.contains("sourceRange is empty"), "{errors}");
}
