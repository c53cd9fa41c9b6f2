//! `rateLimit` (in memory) and `inFlightReq` over real sockets: the burst
//! passes then 429 with Traefik's headers, per source (the peer's IP,
//! 127.0.0.1 and 127.0.0.2), recovery bounded by the configured rate;
//! in-flight requests counted per host until their response's last byte,
//! and the options Traefik refuses refused where written.

mod support;

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use support::traefik::exchange;
use support::*;

const ONE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const TWO: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

fn config(b: &Backend) -> String {
    format!(
        r#"http:
  routers:
    slow-rate:
      rule: "Host(`slow.test`)"
      service: s
      middlewares: [one-a-minute]
    fast-rate:
      rule: "Host(`fast.test`)"
      service: s
      middlewares: [ten-a-second]
    by-header:
      rule: "Host(`header.test`)"
      service: s
      middlewares: [per-tenant]
    in-flight:
      rule: "PathPrefix(`/`)"
      priority: 1
      service: s
      middlewares: [two-at-once]
  services:
    s:
      loadBalancer:
        servers:
          - url: "http://{b}"
  middlewares:
    one-a-minute:
      rateLimit:
        average: 1
        period: 1m
        burst: 3
    ten-a-second:
      rateLimit:
        average: 10
        burst: 1
    per-tenant:
      rateLimit:
        average: 1
        period: 1m
        sourceCriterion:
          requestHeaderName: X-Tenant
    two-at-once:
      inFlightReq:
        amount: 2
"#,
        b = b.addr
    )
}

fn wire(host: &str, path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n").into_bytes()
}

/// The raw answer to `host` `path` sent from `from`.
async fn ask(p: &TestProxy, from: Ipv4Addr, host: &str, path: &str, extra: &str) -> String {
    let out = exchange(p.web, from, &wire(host, path, extra))
        .await
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

use support::{raw_header as header, raw_status as status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_burst_passes_then_429_with_traefiks_headers_per_source() {
    let b = backend("b");
    let p = start_proxy(&config(&b));
    for i in 0..3 {
        let r = ask(&p, ONE, "slow.test", "/", "").await;
        assert_eq!(status(&r), 200, "request {i} of the burst: {r}");
    }
    let r = ask(&p, ONE, "slow.test", "/", "").await;
    assert_eq!(status(&r), 429, "{r}");
    assert!(r.ends_with("\r\n\r\nToo Many Requests"), "{r}");
    let after: u64 = header(&r, "retry-after").unwrap().parse().unwrap();
    assert!((50..=60).contains(&after), "Retry-After {after}");
    let retry_in = header(&r, "x-retry-in").unwrap();
    assert!(retry_in.ends_with('s'), "X-Retry-In {retry_in}");
    // Another peer has its own bucket.
    assert_eq!(status(&ask(&p, TWO, "slow.test", "/", "").await), 200);
    assert_eq!(b.stats.requests.load(Ordering::Relaxed), 4);

    // requestHeaderName: each tenant its own bucket of one (the default
    // burst), whoever sends it; no header is one more source.
    for tenant in ["X-Tenant: a\r\n", "X-Tenant: b\r\n", ""] {
        assert_eq!(status(&ask(&p, ONE, "header.test", "/", tenant).await), 200);
        assert_eq!(status(&ask(&p, TWO, "header.test", "/", tenant).await), 429);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bucket_refills_at_the_configured_rate() {
    let b = backend("b");
    let p = start_proxy(&config(&b));
    // 10 a second, burst 1: sequential requests for at least 1.5 s.
    let started = Instant::now();
    let (mut passed, mut refused) = (0u64, 0u64);
    while started.elapsed() < Duration::from_millis(1500) {
        match status(&ask(&p, ONE, "fast.test", "/", "").await) {
            200 => passed += 1,
            429 => refused += 1,
            s => panic!("unexpected status {s}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Never more than the burst plus one token per 100 ms (slowness can
    // only lower it); at least a third of the tokens that came back.
    let most = 1.0 + elapsed * 10.0 + 1.0;
    assert!(
        (passed as f64) <= most,
        "{passed} passed in {elapsed:.2}s (at most {most})"
    );
    assert!(passed >= 5, "{passed} passed, {refused} refused");
    assert_eq!(b.stats.requests.load(Ordering::Relaxed), passed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_requests_are_limited_per_host_until_the_last_byte() {
    let b = backend("b");
    let p = start_proxy(&config(&b));
    let web = p.web;
    // Two slow requests to one host take its two places.
    let slow: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(async move {
                exchange(web, ONE, &wire("busy.test", "/slow/1500", ""))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.stats.requests.load(Ordering::Relaxed) < 2 {
        assert!(Instant::now() < deadline, "the slow requests never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = ask(&p, TWO, "busy.test", "/", "").await;
    assert_eq!(status(&r), 429, "{r}");
    assert!(r.ends_with("max connections reached: 2"), "{r}");
    // Another host is another source.
    assert_eq!(status(&ask(&p, ONE, "other.test", "/", "").await), 200);
    for s in slow {
        let out = s.await.unwrap();
        assert!(out.starts_with(b"HTTP/1.1 200"));
    }
    assert_eq!(status(&ask(&p, ONE, "busy.test", "/", "").await), 200);

    // A streamed response holds its place until its end: two downloads
    // whose heads have arrived keep a third out.
    let mut heads = Vec::new();
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(web).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(&wire("busy.test", "/drip/20/100", ""))
            .await
            .unwrap();
        let mut first = [0u8; 12];
        s.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
        heads.push(s);
    }
    let r = ask(&p, ONE, "busy.test", "/", "").await;
    assert_eq!(status(&r), 429, "while two bodies stream: {r}");
    // Closing them gives the places back.
    drop(heads);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = status(&ask(&p, ONE, "busy.test", "/", "").await);
        if s == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "places never came back ({s})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn bad_traffic_options_are_refused_where_written() {
    let b = backend("b");
    let bad = config(&b)
        .replace(
            "requestHeaderName: X-Tenant",
            "requestHeaderName: X-Tenant\n          requestHost: true",
        )
        .replace("average: 10", "average: -10")
        .replace("amount: 2", "amount: -1")
        .replace(
            "burst: 3",
            "burst: 3\n        redis:\n          endpoints: [\"127.0.0.1:6379\"]\n          db: -1",
        );
    let errors = dynamic_errors(&bad);
    assert!(
        errors.contains("requestHost and requestHeaderName are mutually exclusive"),
        "{errors}"
    );
    assert!(
        errors.contains("average must not be negative, found -10"),
        "{errors}"
    );
    assert!(
        errors.contains("amount must not be negative, found -1"),
        "{errors}"
    );
    // rateLimit.redis is built (tests/mw_rate_limit_redis.rs); its
    // options are checked too.
    assert!(
        errors.contains("db must not be negative, found -1"),
        "{errors}"
    );
}
