//! Middlewares part 2 against a real Traefik 3.7 (skipped, saying so, when
//! no Traefik binary is found; see `support::traefik`): the same dynamic
//! configuration given to both, the same requests sent, and what is
//! deterministic compared — a rate limit's statuses, 429 body and header
//! names; an in-flight limit's refusal; how many times a retried request
//! reaches its backend, and with which final status; an error page's
//! status, path and query; a circuit breaker's trip and fallback; the
//! compression negotiation; buffering's limits, what the backend receives
//! of a buffered request and how often a `retryExpression` resends it.

#[path = "../support/mod.rs"]
mod support;

mod buffering;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use support::traefik::{Traefik, exchange, find_traefik, free_port, skip_message, wait_ready};
use support::*;

const READY_HOST: &str = "ready.mw2.invalid";

/// The configuration both get: backends `ready`, `main`, `pages`, a dead
/// port, and one router per behaviour.
fn dynamic(ready: &Backend, main: &Backend, pages: &Backend, dead: SocketAddr) -> String {
    format!(
        r#"http:
  routers:
    ready:
      rule: "Host(`{READY_HOST}`)"
      service: ready
    limited:
      rule: "Host(`limited.test`)"
      service: main
      middlewares: [two-a-minute]
    closed:
      rule: "Host(`closed.test`)"
      service: main
      middlewares: [none-in-flight]
    retried:
      rule: "Host(`retried.test`)"
      service: main
      middlewares: [three-times]
    unsent:
      rule: "Host(`unsent.test`)"
      service: dead
      middlewares: [three-times]
    paged:
      rule: "Host(`paged.test`)"
      service: main
      middlewares: [pages]
    broken:
      rule: "Host(`broken.test`)"
      service: main
      middlewares: [breaker]
    refusing:
      rule: "Host(`refusing.test`)"
      service: main
      middlewares: [by-codes]
    recovering:
      rule: "Host(`recovering.test`)"
      service: main
      middlewares: [short]
  services:
    ready:
      loadBalancer:
        servers:
          - url: "http://{ready}"
    main:
      loadBalancer:
        servers:
          - url: "http://{main}"
    pages:
      loadBalancer:
        servers:
          - url: "http://{pages}"
    dead:
      loadBalancer:
        servers:
          - url: "http://{dead}"
  middlewares:
    two-a-minute:
      rateLimit:
        average: 2
        period: 1m
        burst: 2
    none-in-flight:
      inFlightReq:
        amount: 0
    three-times:
      retry:
        attempts: 3
        status: ["500-504"]
    pages:
      errors:
        status: ["404", "500-599"]
        service: pages
        query: "/err/{{status}}?from={{originalStatus}}&u={{url}}"
    breaker:
      circuitBreaker:
        expression: "NetworkErrorRatio() > 0.5"
        responseCode: 418
        fallbackDuration: 1m
    short:
      circuitBreaker:
        expression: "NetworkErrorRatio() > 0.5"
        fallbackDuration: 300ms
        recoveryDuration: 300ms
    by-codes:
      circuitBreaker:
        expression: "ResponseCodeRatio(400, 500, 0, 600) >= 0.5 && NetworkErrorRatio() < 0.1"
        responseCode: 599
        fallbackDuration: 1m
"#,
        ready = ready.addr,
        main = main.addr,
        pages = pages.addr,
    )
}

/// What is compared of an answer: the status, the headers named, the body
/// (the page's echoed path and query for a JSON echo).
fn digest(raw: &[u8], headers: &[&str]) -> String {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("").split(' ').nth(1).unwrap_or("?");
    let head: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut out = status.to_string();
    for name in headers {
        let present = head.iter().any(|(k, _)| k == name);
        out += &format!(" {name}:{}", if present { "yes" } else { "no" });
    }
    let body = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) => format!("{} {} {}", v["name"], v["path"], v["query"]),
        Err(_) => body.to_owned(),
    };
    format!("{out} | {body}")
}

async fn ask(addr: SocketAddr, host: &str, method: &str, path: &str) -> Vec<u8> {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    exchange(addr, Ipv4Addr::LOCALHOST, req.as_bytes())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_two_middlewares_answer_as_traefik() {
    let Some(bin) = find_traefik() else {
        eprintln!("{}", skip_message("part_two_middlewares_answer_as_traefik"));
        return;
    };
    // Each side its own backends, so that each side's hits are counted.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (t_ready, t_main, t_pages) = (backend("ready"), backend("main"), backend("pages"));
    let (p_ready, p_main, p_pages) = (backend("ready"), backend("main"), backend("pages"));
    let dir = TempDir::new("traefik-mw2");
    let dyn_path = dir.write("dynamic.yml", &dynamic(&t_ready, &t_main, &t_pages, dead));
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
    let proxy = start_proxy(&dynamic(&p_ready, &p_main, &p_pages, dead));
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

    let limit_headers = ["retry-after", "x-retry-in", "content-type"];
    let mut wrong = Vec::new();
    let mut compare = |what: String, theirs: String, ours: String| {
        if theirs != ours {
            wrong.push(format!(
                "- {what}\n    traefik {theirs}\n    proxy   {ours}"
            ));
        }
    };
    // rateLimit: the burst of two, then refusals.
    for i in 0..4 {
        let t = digest(
            &ask(traefik_addr, "limited.test", "GET", "/").await,
            &limit_headers,
        );
        let p = digest(
            &ask(proxy.web, "limited.test", "GET", "/").await,
            &limit_headers,
        );
        compare(format!("rateLimit request {i}"), t, p);
    }
    // inFlightReq amount 0: every request refused.
    let t = digest(
        &ask(traefik_addr, "closed.test", "GET", "/").await,
        &["content-type"],
    );
    let p = digest(
        &ask(proxy.web, "closed.test", "GET", "/").await,
        &["content-type"],
    );
    compare("inFlightReq amount 0".into(), t, p);

    // retry: statuses retried up to three attempts (GET), not for POST;
    // the backend's hits counted on each side.
    for (method, path) in [
        ("GET", "/status/503"),
        ("POST", "/status/503"),
        ("GET", "/status/404"),
    ] {
        let (t0, p0) = (
            t_main.stats.requests.load(Ordering::SeqCst),
            p_main.stats.requests.load(Ordering::SeqCst),
        );
        let t = digest(&ask(traefik_addr, "retried.test", method, path).await, &[]);
        let p = digest(&ask(proxy.web, "retried.test", method, path).await, &[]);
        let t_hits = t_main.stats.requests.load(Ordering::SeqCst) - t0;
        let p_hits = p_main.stats.requests.load(Ordering::SeqCst) - p0;
        compare(
            format!("retry {method} {path}"),
            format!("{t} hits {t_hits}"),
            format!("{p} hits {p_hits}"),
        );
    }
    // A dead server: every attempt fails unsent, the last answer is 502.
    let t = digest(&ask(traefik_addr, "unsent.test", "GET", "/").await, &[]);
    let p = digest(&ask(proxy.web, "unsent.test", "GET", "/").await, &[]);
    compare("retry against a dead server".into(), t, p);

    // errors: the page's path and query, the status kept.
    for path in ["/status/500", "/status/404", "/status/200", "/status/401"] {
        let t = digest(&ask(traefik_addr, "paged.test", "GET", path).await, &[]);
        let p = digest(&ask(proxy.web, "paged.test", "GET", path).await, &[]);
        compare(format!("errors {path}"), t, p);
    }
    // circuitBreaker: the first answer is checked at once; a 502 trips it,
    // then the fallback answers without the backend.
    for (i, (host, path)) in [
        ("broken.test", "/status/502"),
        ("broken.test", "/"),
        ("broken.test", "/status/200"),
        ("refusing.test", "/status/404"),
        ("refusing.test", "/"),
    ]
    .iter()
    .enumerate()
    {
        let (t0, p0) = (
            t_main.stats.requests.load(Ordering::SeqCst),
            p_main.stats.requests.load(Ordering::SeqCst),
        );
        let t = digest(
            &ask(traefik_addr, host, "GET", path).await,
            &["content-type", "content-length"],
        );
        let p = digest(
            &ask(proxy.web, host, "GET", path).await,
            &["content-type", "content-length"],
        );
        let t_hits = t_main.stats.requests.load(Ordering::SeqCst) - t0;
        let p_hits = p_main.stats.requests.load(Ordering::SeqCst) - p0;
        compare(
            format!("circuitBreaker request {i} {host}{path}"),
            format!("{t} hits {t_hits}"),
            format!("{p} hits {p_hits}"),
        );
    }
    // The breaker's timeline, each side on its own: tripped, the fallback;
    // past fallbackDuration the first request is refused (the recovering
    // ramp starts at 0); past recoveryDuration, closed again.
    for (side, addr) in [("traefik", traefik_addr), ("proxy", proxy.web)] {
        let mut seen = Vec::new();
        for (path, wait) in [("/status/502", 0), ("/", 0), ("/", 400), ("/", 400)] {
            tokio::time::sleep(Duration::from_millis(wait)).await;
            let raw = ask(addr, "recovering.test", "GET", path).await;
            seen.push(raw_status(&String::from_utf8_lossy(&raw)));
        }
        compare(
            format!("circuitBreaker timeline ({side})"),
            "[502, 503, 503, 200]".into(),
            format!("{seen:?}"),
        );
    }
    assert!(
        wrong.is_empty(),
        "differences from Traefik:\n{}",
        wrong.join("\n")
    );
}

/// The configuration of the compression comparison: `compress` with its
/// defaults, one with its own order, default and minimum, and one with
/// included types.
fn compress_dynamic(ready: &Backend, main: &Backend) -> String {
    format!(
        r#"http:
  routers:
    ready:
      rule: "Host(`{READY_HOST}`)"
      service: ready
    all:
      rule: "Host(`all.test`)"
      service: main
      middlewares: [all]
    zs:
      rule: "Host(`zs.test`)"
      service: main
      middlewares: [zstd-first]
    html:
      rule: "Host(`html.test`)"
      service: main
      middlewares: [only-html]
  services:
    ready:
      loadBalancer:
        servers:
          - url: "http://{ready}"
    main:
      loadBalancer:
        servers:
          - url: "http://{main}"
{COMPRESS_MIDDLEWARES}"#,
        ready = ready.addr,
        main = main.addr,
    )
}

/// What is compared of a compressed (or not) answer: the status, the
/// coding, `Vary`, and whether the body decodes to the backend's text.
/// Not whether a length is sent: Go's server sets one for a small answer
/// its handler wrote whole, the proxy streams a compressed body chunked.
async fn coded(addr: SocketAddr, method: &str, host: &str, path: &str, ae: Option<&str>) -> String {
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    if let Some(ae) = ae {
        req = req.header("accept-encoding", ae);
    }
    let r = H1::connect(addr)
        .await
        .send(req.body(empty()).unwrap())
        .await
        .unwrap();
    let h = |n: &str| {
        let v: Vec<&str> = r
            .headers
            .get_all(n)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        v.join(",")
    };
    let n: usize = path
        .trim_start_matches("/content/")
        .split('?')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let coding = h("content-encoding");
    let plain = decoded(&coding, &r.body);
    let intact = method == "HEAD" || r.status == 304 || plain == Some(text_body(n));
    format!(
        "{} coding={coding:?} vary={:?} intact={intact}",
        r.status.as_u16(),
        h("vary"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_negotiates_as_traefik() {
    let Some(bin) = find_traefik() else {
        eprintln!("{}", skip_message("compression_negotiates_as_traefik"));
        return;
    };
    let (t_ready, t_main) = (backend("ready"), backend("main"));
    let (p_ready, p_main) = (backend("ready"), backend("main"));
    let dir = TempDir::new("traefik-compress");
    let dyn_path = dir.write("dynamic.yml", &compress_dynamic(&t_ready, &t_main));
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
    let proxy = start_proxy(&compress_dynamic(&p_ready, &p_main));
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
    let cases: &[(&str, &str, &str, Option<&str>)] = &[
        // Negotiation.
        ("GET", "all.test", "/content/4096", Some("gzip")),
        ("GET", "all.test", "/content/4096", Some("br")),
        ("GET", "all.test", "/content/4096", Some("zstd")),
        ("GET", "all.test", "/content/4096", Some("gzip, br, zstd")),
        (
            "GET",
            "all.test",
            "/content/4096",
            Some("gzip;q=0.5, br;q=0.9"),
        ),
        (
            "GET",
            "all.test",
            "/content/4096",
            Some("zstd;q=0, gzip;q=0.2"),
        ),
        (
            "GET",
            "all.test",
            "/content/4096",
            Some("br;q=abc, zstd;q=0.1"),
        ),
        ("GET", "all.test", "/content/4096", Some("identity")),
        ("GET", "all.test", "/content/4096", Some("")),
        ("GET", "all.test", "/content/4096", Some("deflate")),
        ("GET", "all.test", "/content/4096", Some("GZIP")),
        ("GET", "all.test", "/content/4096", Some("*")),
        ("GET", "all.test", "/content/4096", Some("*, gzip;q=0.5")),
        ("GET", "all.test", "/content/4096", None),
        ("GET", "zs.test", "/content/4096", Some("gzip, br, zstd")),
        ("GET", "zs.test", "/content/4096", Some("*")),
        ("GET", "zs.test", "/content/4096", None),
        // Sizes.
        ("GET", "all.test", "/content/1023", Some("gzip")),
        ("GET", "all.test", "/content/1024", Some("br")),
        ("GET", "zs.test", "/content/199", Some("zstd")),
        ("GET", "zs.test", "/content/200", Some("zstd")),
        ("GET", "all.test", "/content/100?chunked", Some("zstd")),
        ("GET", "all.test", "/content/65536?chunked", Some("gzip")),
        // Types.
        (
            "GET",
            "all.test",
            "/content/4096?type=text/event-stream",
            Some("br"),
        ),
        (
            "GET",
            "all.test",
            "/content/4096?type=application/grpc",
            Some("br"),
        ),
        (
            "GET",
            "all.test",
            "/content/4096?type=text/html;+x",
            Some("br"),
        ),
        (
            "GET",
            "all.test",
            "/content/4096?type=text+html",
            Some("br"),
        ),
        (
            "GET",
            "html.test",
            "/content/4096?type=text/html;+charset=utf-8",
            Some("br"),
        ),
        (
            "GET",
            "html.test",
            "/content/4096?type=application/json",
            Some("zstd"),
        ),
        (
            "GET",
            "html.test",
            "/content/4096?type=application/json;+charset=utf-8",
            Some("zstd"),
        ),
        ("GET", "html.test", "/content/4096", Some("br")),
        // Never twice, never a range, a 304, a 204 or a HEAD.
        ("GET", "all.test", "/content/4096?ce=br", Some("gzip")),
        // A range with gzip (Traefik's br and zstd handlers compress a 206;
        // the proxy never does).
        ("GET", "all.test", "/content/4096?range", Some("gzip")),
        ("GET", "all.test", "/content/4096?status=304", Some("br")),
        ("GET", "all.test", "/content/4096?status=204", Some("br")),
        ("GET", "all.test", "/content/4096?status=404", Some("br")),
        ("HEAD", "all.test", "/content/4096", Some("br")),
        ("GET", "all.test", "/content/4096?vary=Origin", Some("zstd")),
    ];
    let mut wrong = Vec::new();
    for &(method, host, path, ae) in cases {
        let t = coded(traefik_addr, method, host, path, ae).await;
        let p = coded(proxy.web, method, host, path, ae).await;
        if t != p {
            wrong.push(format!(
                "- {method} {host}{path} accept-encoding {ae:?}\n    traefik {t}\n    proxy   {p}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "differences from Traefik:\n{}",
        wrong.join("\n")
    );
}
