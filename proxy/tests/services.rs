//! Load balancing through a real proxy to several real backends on
//! 127.0.0.1: the strategies (`wrr` weights, `p2c`, `hrw`, `leasttime`),
//! active health checks, and the service types that nest services.
//! Timing bounds are generous (the machine is shared); shares are judged
//! over hundreds of requests with a stated tolerance.

mod services {
    pub mod backend;
}
mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use http::Request;
use services::backend::KnobBackend;
use support::{H1, TestProxy, empty, start_proxy_with};
use tokio::net::TcpSocket;

fn lb_yaml(strategy: &str, servers: &[(&KnobBackend, u32)], extra: &str) -> String {
    let mut s = String::from(
        "http:\n  routers:\n    r:\n      rule: PathPrefix(`/`)\n      service: svc\n  services:\n    svc:\n      loadBalancer:\n",
    );
    if !strategy.is_empty() {
        s += &format!("        strategy: {strategy}\n");
    }
    s += extra;
    s += "        servers:\n";
    for (b, w) in servers {
        s += &format!(
            "          - url: \"{}\"\n            weight: {w}\n",
            b.url()
        );
    }
    s
}

/// `n` requests on one keep-alive connection; which backend answered each
/// (`-` for an answer without one, e.g. a 503 from the proxy).
async fn tally(addr: SocketAddr, n: usize) -> BTreeMap<String, usize> {
    let mut c = H1::connect(addr).await;
    let mut out = BTreeMap::new();
    for _ in 0..n {
        let r = c.get("example.test", "/").await;
        *out.entry(r.backend().unwrap_or("-").to_owned())
            .or_default() += 1;
    }
    out
}

fn share(t: &BTreeMap<String, usize>, name: &str) -> usize {
    t.get(name).copied().unwrap_or(0)
}

fn start(dynamic: &str) -> TestProxy {
    start_proxy_with(dynamic, "", 2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrr_respects_server_weights() {
    let (a, b, c) = (
        KnobBackend::start("a"),
        KnobBackend::start("b"),
        KnobBackend::start("c"),
    );
    let p = start(&lb_yaml("wrr", &[(&a, 1), (&b, 2), (&c, 3)], ""));
    // Three clients at once, over both workers.
    let (x, y, z) = tokio::join!(tally(p.web, 400), tally(p.web, 400), tally(p.web, 400));
    let mut t = x;
    for (k, v) in y.into_iter().chain(z) {
        *t.entry(k).or_default() += v;
    }
    // 1200 requests, 1:2:3 = 200/400/600, within 2%.
    for (name, want) in [("a", 200), ("b", 400), ("c", 600)] {
        let got = share(&t, name);
        assert!(
            got.abs_diff(want) <= 24,
            "{name}: {got} of 1200, want {want}: {t:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn p2c_sends_less_to_a_slow_server() {
    let (fast, slow) = (KnobBackend::start("fast"), KnobBackend::start("slow"));
    slow.knobs
        .delay_ms
        .store(150, std::sync::atomic::Ordering::Relaxed);
    let p = start(&lb_yaml("p2c", &[(&fast, 1), (&slow, 1)], ""));
    let clients = (0..6).map(|_| tally(p.web, 30));
    let mut t = BTreeMap::new();
    for r in futures_join_all(clients).await {
        for (k, v) in r {
            *t.entry(k).or_default() += v;
        }
    }
    let (f, s) = (share(&t, "fast"), share(&t, "slow"));
    assert_eq!(f + s, 180, "{t:?}");
    // A plain round robin gives each 90; with in-flight counts the slow
    // server gets a few (each of six clients waits on at most one at a
    // time), far below half.
    assert!(s * 4 < f, "fast {f}, slow {s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hrw_maps_one_client_ip_to_one_server_whatever_x_forwarded_for_says() {
    let backends: Vec<KnobBackend> = (0..3)
        .map(|i| KnobBackend::start(&format!("s{i}")))
        .collect();
    let servers: Vec<(&KnobBackend, u32)> = backends.iter().map(|b| (b, 1)).collect();
    let p = start(&lb_yaml("hrw", &servers, ""));
    let mut used = std::collections::BTreeSet::new();
    for last in 1..=12u8 {
        let ip: std::net::IpAddr = format!("127.0.0.{last}").parse().unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..8 {
            let sock = TcpSocket::new_v4().unwrap();
            sock.bind(SocketAddr::new(ip, 0)).unwrap();
            let stream = sock.connect(p.web).await.unwrap();
            let mut c = H1::from_stream(stream).await;
            let req = Request::get("/")
                .header("host", "example.test")
                .header("x-forwarded-for", format!("203.0.113.{i}"))
                .body(empty())
                .unwrap();
            let r = c.send(req).await.unwrap();
            seen.insert(r.backend().unwrap().to_owned());
        }
        assert_eq!(seen.len(), 1, "client {ip} reached {seen:?}");
        used.extend(seen);
    }
    assert!(used.len() >= 2, "12 client IPs all on {used:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leasttime_prefers_the_server_answering_first() {
    let (fast, slow) = (KnobBackend::start("fast"), KnobBackend::start("slow"));
    slow.knobs
        .delay_ms
        .store(40, std::sync::atomic::Ordering::Relaxed);
    let p = start(&lb_yaml("leasttime", &[(&fast, 1), (&slow, 1)], ""));
    let t = tally(p.web, 60).await;
    // Once the slow server's first answer took 40 ms, its score stays
    // above the fast one's (0 ms in whole milliseconds, or a few).
    assert!(share(&t, "slow") <= 3, "{t:?}");
    assert_eq!(share(&t, "fast") + share(&t, "slow"), 60, "{t:?}");
}

#[test]
fn an_unknown_strategy_is_refused_naming_it() {
    let yaml = "http:\n  services:\n    svc:\n      loadBalancer:\n        strategy: fastest\n        servers:\n          - url: http://127.0.0.1:1\n";
    let err = config_errors(yaml);
    assert!(
        err.contains("http.services.svc.loadBalancer.strategy")
            && err.contains("unsupported load-balancer strategy \"fastest\""),
        "{err}"
    );
}

/// The errors of a dynamic file that must not load.
fn config_errors(yaml: &str) -> String {
    proxy::config::parse_dynamic(
        yaml,
        proxy::config::Format::Yaml,
        std::path::Path::new("dynamic.yml"),
        &["web".to_string()],
        proxy::routing::RuleSyntax::V3,
    )
    .unwrap_err()
    .to_string()
}

/// Runs futures concurrently (no futures crate in the dev-dependencies).
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    fs: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

// === active health checks ===

const FAST_CHECKS: &str = "        healthCheck:\n          path: /health\n          interval: 100ms\n          timeout: 500ms\n";

/// Polls until `cond` holds (checked every 50 ms, at most `secs`).
async fn eventually(secs: u64, mut cond: impl AsyncFnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn set(b: &KnobBackend, health: u16) {
    b.knobs
        .health_status
        .store(health, std::sync::atomic::Ordering::Relaxed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_leaves_the_rotation_and_returns_when_restarted() {
    let (a, mut b) = (KnobBackend::start("a"), KnobBackend::start("b"));
    let p = start(&lb_yaml("", &[(&a, 1), (&b, 1)], FAST_CHECKS));
    assert_eq!(share(&tally(p.web, 20).await, "b"), 10);
    b.stop();
    // Out after a failed check (interval 100 ms; 10 s allowed).
    assert!(
        eventually(10, async || {
            // A fresh connection each round: the pool's connection to b
            // died with it.
            tally(p.web, 4).await.keys().all(|k| k == "a")
        })
        .await,
        "b never left the rotation"
    );
    // Once out, not one failed request.
    let t = tally(p.web, 100).await;
    assert_eq!(share(&t, "a"), 100, "{t:?}");
    b.restart();
    assert!(
        eventually(10, async || share(&tally(p.web, 10).await, "b") > 0).await,
        "b never came back"
    );
    let t = tally(p.web, 40).await;
    assert_eq!((share(&t, "a"), share(&t, "b")), (20, 20), "{t:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_server_up_is_503_and_a_recovered_one_serves_again() {
    let (a, b) = (KnobBackend::start("a"), KnobBackend::start("b"));
    let p = start(&lb_yaml("p2c", &[(&a, 1), (&b, 1)], FAST_CHECKS));
    set(&a, 500);
    set(&b, 503);
    assert!(
        eventually(10, async || {
            let mut c = H1::connect(p.web).await;
            c.get("example.test", "/").await.status == 503
        })
        .await,
        "never 503"
    );
    // Every request now: 503 from the proxy, none reaching a backend.
    let before = a.requests() + b.requests();
    assert_eq!(share(&tally(p.web, 20).await, "-"), 20);
    assert_eq!(a.requests() + b.requests(), before);
    set(&b, 200);
    assert!(
        eventually(10, async || share(&tally(p.web, 4).await, "b") == 4).await,
        "b never came back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_survives_a_reload() {
    let (a, b) = (KnobBackend::start("a"), KnobBackend::start("b"));
    let p = start(&lb_yaml("", &[(&a, 1), (&b, 1)], FAST_CHECKS));
    set(&b, 500);
    assert!(
        eventually(10, async || tally(p.web, 4).await.keys().all(|k| k == "a")).await,
        "b never left the rotation"
    );
    // The same servers, checked rarely now, with a second router: b is
    // still out right after the reload (no check has run since).
    let slow = FAST_CHECKS.replace("interval: 100ms", "interval: 60s");
    let edited = lb_yaml("", &[(&a, 1), (&b, 1)], &slow).replace(
        "  services:\n",
        "    other:\n      rule: Host(`other.test`)\n      service: svc\n  services:\n",
    );
    std::fs::write(p.dynamic_path(), edited).unwrap();
    let generation = p.running().control().generation();
    p.running().control().reload().unwrap();
    assert!(p.running().control().generation() > generation);
    let t = tally(p.web, 20).await;
    assert_eq!(share(&t, "a"), 20, "{t:?}");
}

#[test]
fn health_check_options_are_checked_where_written() {
    let cases = [
        (
            "scheme: https",
            "healthCheck scheme https is not supported yet",
        ),
        ("mode: grpc", "healthCheck mode grpc is not supported yet"),
        (
            "path: http://elsewhere/health",
            "health check path must be a relative URL",
        ),
        ("method: \"GE T\"", "invalid healthCheck method"),
        ("status: 1000", "invalid healthCheck status 1000"),
    ];
    for (line, want) in cases {
        let yaml = format!(
            "http:\n  services:\n    svc:\n      loadBalancer:\n        healthCheck:\n          {line}\n        servers:\n          - url: http://127.0.0.1:1\n"
        );
        let err = config_errors(&yaml);
        assert!(
            err.contains("http.services.svc.loadBalancer.healthCheck.") && err.contains(want),
            "{line}: {err}"
        );
    }
    // The checks speak http or h2c only: an https:// server would fail
    // every one, so its service is refused instead.
    let err = config_errors(
        "http:\n  services:\n    svc:\n      loadBalancer:\n        healthCheck:\n          path: /health\n        servers:\n          - url: https://127.0.0.1:1\n",
    );
    assert!(
        err.contains("http.services.svc.loadBalancer.healthCheck:")
            && err.contains("healthCheck of https:// servers is not supported yet"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_up_is_exported_per_service_and_url() {
    let (a, b) = (KnobBackend::start("a"), KnobBackend::start("b"));
    let stat = "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\n  traefik:\n    address: \"127.0.0.1:0\"\nproviders:\n  file:\n    filename: \"{DIR}/dynamic.yml\"\nmetrics:\n  prometheus: {}\n";
    let p = support::start_proxy_static(&lb_yaml("", &[(&a, 1), (&b, 1)], FAST_CHECKS), stat, 1);
    set(&b, 500);
    let metrics = p.addr("traefik");
    let (up, down) = (
        format!(
            "proxy_service_server_up{{service=\"svc@file\",url=\"{}\"}} 1",
            a.url()
        ),
        format!(
            "proxy_service_server_up{{service=\"svc@file\",url=\"{}\"}} 0",
            b.url()
        ),
    );
    let mut last = String::new();
    let found = eventually(10, async || {
        last = support::get(metrics, "x", "/metrics").await.text();
        last.contains(&up) && last.contains(&down)
    })
    .await;
    assert!(found, "want {up:?} and {down:?} in:\n{last}");
}
