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
use support::{H1, TestProxy, empty, eventually, start_proxy_with};
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
            "scheme: ftp",
            "unsupported healthCheck scheme \"ftp\" (expected http, https or h2c)",
        ),
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
    // Checks over TLS use the transport of https:// servers: scheme
    // https for an http:// server is refused, naming why.
    let err = config_errors(
        "http:\n  services:\n    svc:\n      loadBalancer:\n        healthCheck:\n          scheme: https\n        servers:\n          - url: http://127.0.0.1:1\n",
    );
    assert!(
        err.contains("http.services.svc.loadBalancer.healthCheck:")
            && err.contains(
                "healthCheck scheme https of http:// or h2c:// servers is not supported yet"
            ),
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

// === services of services: weighted, highestRandomWeight, failover ===

/// A load balancer `name` over `servers` (weight 1), with `extra` lines
/// (indented under `loadBalancer`).
fn lb_service(name: &str, servers: &[&KnobBackend], extra: &str) -> String {
    let mut s = format!("    {name}:\n      loadBalancer:\n{extra}        servers:\n");
    for b in servers {
        s += &format!("          - url: \"{}\"\n", b.url());
    }
    s
}

/// A router to `root` and the given services.
fn nested_yaml(root: &str, services: &[String]) -> String {
    format!(
        "http:\n  routers:\n    r:\n      rule: PathPrefix(`/`)\n      service: {root}\n  services:\n{}",
        services.concat()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_splits_between_load_balancers_by_weight() {
    let (a, b, c) = (
        KnobBackend::start("a"),
        KnobBackend::start("b"),
        KnobBackend::start("c"),
    );
    let yaml = nested_yaml(
        "canary",
        &[
            "    canary:\n      weighted:\n        services:\n          - name: stable\n            weight: 3\n          - name: next@file\n            weight: 1\n".into(),
            lb_service("stable", &[&a], ""),
            lb_service("next", &[&b, &c], ""),
        ],
    );
    let p = start(&yaml);
    let (x, y) = tokio::join!(tally(p.web, 400), tally(p.web, 400));
    let mut t = x;
    for (k, v) in y {
        *t.entry(k).or_default() += v;
    }
    // 800 requests, 3:1 = 600 / 200 (b and c halving theirs), within 3%.
    assert!(share(&t, "a").abs_diff(600) <= 24, "{t:?}");
    assert!(
        (share(&t, "b") + share(&t, "c")).abs_diff(200) <= 24,
        "{t:?}"
    );
    assert!(share(&t, "b").abs_diff(share(&t, "c")) <= 24, "{t:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_with_health_check_skips_a_child_with_no_server_up() {
    let (a, b) = (KnobBackend::start("a"), KnobBackend::start("b"));
    let yaml = nested_yaml(
        "w",
        &[
            "    w:\n      weighted:\n        healthCheck: {}\n        services:\n          - name: one\n          - name: two\n".into(),
            lb_service("one", &[&a], FAST_CHECKS),
            lb_service("two", &[&b], FAST_CHECKS),
        ],
    );
    let p = start(&yaml);
    assert_eq!(share(&tally(p.web, 20).await, "a"), 10);
    set(&a, 500);
    assert!(
        eventually(10, async || share(&tally(p.web, 10).await, "b") == 10).await,
        "one never left the weighted rotation"
    );
    set(&b, 500);
    assert!(
        eventually(10, async || share(&tally(p.web, 4).await, "-") == 4).await,
        "no child up must be 503"
    );
    set(&a, 200);
    assert!(
        eventually(10, async || share(&tally(p.web, 10).await, "a") == 10).await,
        "one never came back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_switches_to_the_fallback_and_back() {
    let (main, spare) = (KnobBackend::start("main"), KnobBackend::start("spare"));
    let yaml = nested_yaml(
        "f",
        &[
            "    f:\n      failover:\n        service: primary\n        fallback: backup\n".into(),
            lb_service("primary", &[&main], FAST_CHECKS),
            lb_service("backup", &[&spare], ""),
        ],
    );
    let p = start(&yaml);
    assert_eq!(share(&tally(p.web, 10).await, "main"), 10);
    set(&main, 500);
    assert!(
        eventually(10, async || share(&tally(p.web, 10).await, "spare") == 10).await,
        "never switched to the fallback"
    );
    let before = main.requests();
    assert_eq!(share(&tally(p.web, 20).await, "spare"), 20);
    assert_eq!(
        main.requests(),
        before,
        "no request to the main service while down"
    );
    set(&main, 200);
    assert!(
        eventually(10, async || share(&tally(p.web, 10).await, "main") == 10).await,
        "never switched back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_of_failovers_follows_the_health_of_both() {
    // outer -> (inner: a then b) then c; inner has healthCheck so outer
    // sees it down only when a and b both are.
    let (a, b, c) = (
        KnobBackend::start("a"),
        KnobBackend::start("b"),
        KnobBackend::start("c"),
    );
    let yaml = nested_yaml(
        "outer",
        &[
            "    outer:\n      failover:\n        service: inner\n        fallback: third\n".into(),
            "    inner:\n      failover:\n        healthCheck: {}\n        service: first\n        fallback: second\n".into(),
            lb_service("first", &[&a], FAST_CHECKS),
            lb_service("second", &[&b], FAST_CHECKS),
            lb_service("third", &[&c], ""),
        ],
    );
    let p = start(&yaml);
    assert_eq!(share(&tally(p.web, 4).await, "a"), 4);
    set(&a, 500);
    assert!(eventually(10, async || share(&tally(p.web, 4).await, "b") == 4).await);
    set(&b, 500);
    assert!(eventually(10, async || share(&tally(p.web, 4).await, "c") == 4).await);
    set(&b, 200);
    assert!(eventually(10, async || share(&tally(p.web, 4).await, "b") == 4).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn highest_random_weight_maps_one_client_ip_to_one_child_service() {
    let backends: Vec<KnobBackend> = (0..3)
        .map(|i| KnobBackend::start(&format!("s{i}")))
        .collect();
    let mut services = vec![
        "    h:\n      highestRandomWeight:\n        services:\n          - name: c0\n          - name: c1\n          - name: c2\n".to_string(),
    ];
    for (i, b) in backends.iter().enumerate() {
        services.push(lb_service(&format!("c{i}"), &[b], ""));
    }
    let p = start(&nested_yaml("h", &services));
    let mut used = std::collections::BTreeSet::new();
    for last in 1..=12u8 {
        let ip: std::net::IpAddr = format!("127.0.0.{last}").parse().unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..6 {
            let sock = TcpSocket::new_v4().unwrap();
            sock.bind(SocketAddr::new(ip, 0)).unwrap();
            let mut c = H1::from_stream(sock.connect(p.web).await.unwrap()).await;
            seen.insert(
                c.get("example.test", "/")
                    .await
                    .backend()
                    .unwrap()
                    .to_owned(),
            );
        }
        assert_eq!(seen.len(), 1, "client {ip} reached {seen:?}");
        used.extend(seen);
    }
    assert!(used.len() >= 2, "12 client IPs all on {used:?}");
}

#[test]
fn service_references_are_checked_for_cycles_and_health_tracking() {
    let lb =
        "    lb:\n      loadBalancer:\n        servers:\n          - url: http://127.0.0.1:1\n";
    let cases = [
        (
            format!(
                "    a:\n      weighted:\n        services:\n          - name: b\n    b:\n      failover:\n        service: a\n        fallback: lb\n{lb}"
            ),
            "service cycle: a -> b -> a",
        ),
        (
            format!(
                "    w:\n      weighted:\n        healthCheck: {{}}\n        services:\n          - name: lb\n{lb}"
            ),
            "service \"lb\" has no healthCheck, which weighted.healthCheck of \"w\" needs",
        ),
        (
            format!("    f:\n      failover:\n        service: lb\n        fallback: lb\n{lb}"),
            "service \"lb\" has no healthCheck, which failover of \"f\" needs",
        ),
        (
            format!("    w:\n      weighted:\n        services:\n          - name: nope\n{lb}"),
            "unknown service \"nope\"",
        ),
    ];
    for (services, want) in cases {
        let err = config_errors(&format!("http:\n  services:\n{services}"));
        assert!(err.contains(want), "want {want:?} in:\n{err}");
    }
}

// === sticky cookies ===

/// The `name=value` of the response's `Set-Cookie`, and the whole header.
fn set_cookie(r: &support::Reply) -> Option<(String, String)> {
    let h = r.headers.get("set-cookie")?.to_str().ok()?.to_owned();
    Some((h.split(';').next()?.to_owned(), h))
}

async fn get_with_cookie(addr: SocketAddr, cookie: &str) -> support::Reply {
    let mut c = H1::connect(addr).await;
    let req = Request::get("/")
        .header("host", "example.test")
        .header("cookie", cookie)
        .body(empty())
        .unwrap();
    c.send(req).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sticky_cookie_pins_a_server_and_moves_when_it_goes_down() {
    let (a, b) = (KnobBackend::start("a"), KnobBackend::start("b"));
    let sticky = format!(
        "        sticky:\n          cookie:\n            name: lb\n            httpOnly: true\n            sameSite: strict\n            maxAge: 60\n{FAST_CHECKS}"
    );
    let p = start(&lb_yaml("", &[(&a, 1), (&b, 1)], &sticky));
    let first = support::get(p.web, "example.test", "/").await;
    let (pair, header) = set_cookie(&first).expect("the first response sets the cookie");
    assert_eq!(
        header,
        format!("{pair}; Path=/; Max-Age=60; HttpOnly; SameSite=Strict")
    );
    let pinned = first.backend().unwrap().to_owned();
    assert!(
        pair.starts_with("lb=") && pair.len() == "lb=".len() + 16,
        "{pair}"
    );
    for _ in 0..10 {
        let r = get_with_cookie(p.web, &pair).await;
        assert_eq!(r.backend(), Some(pinned.as_str()));
        assert!(set_cookie(&r).is_none(), "a valid cookie is not rewritten");
    }
    let (down, other) = if pinned == "a" { (&a, "b") } else { (&b, "a") };
    set(down, 500);
    assert!(
        eventually(10, async || get_with_cookie(p.web, &pair).await.backend()
            == Some(other))
        .await,
        "the cookie never moved off a server down"
    );
    let moved = get_with_cookie(p.web, &pair).await;
    let (new_pair, _) = set_cookie(&moved).expect("moving sets a new cookie");
    assert_ne!(new_pair, pair);
    assert_eq!(
        get_with_cookie(p.web, &new_pair).await.backend(),
        Some(other)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sticky_weighted_service_pins_its_child_with_traefiks_default_name() {
    let (a, b) = (KnobBackend::start("a"), KnobBackend::start("b"));
    let yaml = nested_yaml(
        "w",
        &[
            "    w:\n      weighted:\n        sticky:\n          cookie: {}\n        services:\n          - name: one\n          - name: two\n".into(),
            lb_service("one", &[&a], ""),
            lb_service("two", &[&b], ""),
        ],
    );
    let p = start(&yaml);
    let first = support::get(p.web, "example.test", "/").await;
    let (pair, _) = set_cookie(&first).expect("cookie set");
    // "_" + sha1("_TRAEFIK_BACKEND_w@file")[..5]; the value is
    // sha256(child name as written)[..16].
    let (name, value) = pair.split_once('=').unwrap();
    assert_eq!(name, proxy::upstream::sticky::default_name("w@file"));
    let child = if first.backend() == Some("a") {
        "one"
    } else {
        "two"
    };
    assert_eq!(value, proxy::upstream::sticky::value_of(child));
    let pinned = first.backend().unwrap().to_owned();
    for _ in 0..10 {
        assert_eq!(
            get_with_cookie(p.web, &pair).await.backend(),
            Some(pinned.as_str())
        );
    }
    // Without the cookie the round robin goes on.
    let t = tally(p.web, 10).await;
    assert_eq!((share(&t, "a"), share(&t, "b")), (5, 5), "{t:?}");
}

// === passive health checks ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_checks_eject_a_server_answering_errors_and_let_it_back_after_the_window() {
    let (a, b) = (KnobBackend::start("a"), KnobBackend::start("b"));
    let passive = "        passiveHealthCheck:\n          maxFailedAttempts: 3\n          failureWindow: 2s\n";
    let p = start(&lb_yaml("", &[(&a, 1), (&b, 1)], passive));
    a.knobs
        .status
        .store(500, std::sync::atomic::Ordering::Relaxed);
    let t = tally(p.web, 40).await;
    // a answered (and failed) three times, then left the rotation: every
    // other request reached b.
    assert_eq!(a.requests(), 3, "{t:?}");
    assert_eq!(share(&t, "b"), 37, "{t:?}");
    a.knobs
        .status
        .store(200, std::sync::atomic::Ordering::Relaxed);
    // Back after the 2 s window (10 s allowed).
    assert!(
        eventually(10, async || share(&tally(p.web, 4).await, "a") > 0).await,
        "a never came back"
    );
    let t = tally(p.web, 20).await;
    assert_eq!((share(&t, "a"), share(&t, "b")), (10, 10), "{t:?}");
}

#[test]
fn passive_health_check_options_are_decoded() {
    let yaml = "http:\n  services:\n    svc:\n      loadBalancer:\n        passiveHealthCheck:\n          maxFailedAttempts: -1\n        servers:\n          - url: http://127.0.0.1:1\n";
    let err = config_errors(yaml);
    assert!(
        err.contains("http.services.svc.loadBalancer.passiveHealthCheck.maxFailedAttempts")
            && err.contains("must not be negative"),
        "{err}"
    );
}

// === mirroring ===

fn mirroring_yaml(extra: &str, main: &KnobBackend, mirrors: &[(&KnobBackend, u32)]) -> String {
    let mut m = format!(
        "    mirrored:\n      mirroring:\n        service: main\n{extra}        mirrors:\n"
    );
    let mut services = vec![lb_service("main", &[main], "")];
    for (i, (b, percent)) in mirrors.iter().enumerate() {
        m += &format!("          - name: m{i}\n            percent: {percent}\n");
        services.push(lb_service(&format!("m{i}"), &[b], ""));
    }
    services.insert(0, m);
    nested_yaml("mirrored", &services)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_receive_their_percent_of_requests() {
    let (main, half, tenth) = (
        KnobBackend::start("main"),
        KnobBackend::start("half"),
        KnobBackend::start("tenth"),
    );
    let p = start(&mirroring_yaml("", &main, &[(&half, 50), (&tenth, 10)]));
    let t = tally(p.web, 200).await;
    assert_eq!(share(&t, "main"), 200, "the main service answers: {t:?}");
    // Traefik's counting gives exactly 100 and 20 of 200; the copies are
    // sent off the request path, so they may trail.
    assert!(
        eventually(10, async || half.requests() == 100
            && tenth.requests() == 20)
        .await,
        "half {}, tenth {}",
        half.requests(),
        tenth.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_or_dead_mirror_neither_slows_nor_fails_the_response() {
    let (main, slow, mut dead) = (
        KnobBackend::start("main"),
        KnobBackend::start("slow"),
        KnobBackend::start("dead"),
    );
    slow.knobs
        .delay_ms
        .store(10_000, std::sync::atomic::Ordering::Relaxed);
    dead.stop();
    let p = start(&mirroring_yaml("", &main, &[(&slow, 100), (&dead, 100)]));
    let started = std::time::Instant::now();
    let t = tally(p.web, 20).await;
    assert_eq!(share(&t, "main"), 20, "{t:?}");
    // Every copy to the slow mirror takes 10 s to be answered: 20 answers
    // well before that were not waiting for one.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(
        eventually(5, async || slow.requests() == 20).await,
        "the slow mirror got {}",
        slow.requests()
    );
}

async fn post(addr: SocketAddr, body: &'static [u8]) -> support::Reply {
    let mut c = H1::connect(addr).await;
    let req = Request::post("/")
        .header("host", "example.test")
        .body(support::body(body))
        .unwrap();
    c.send(req).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrored_bodies_and_max_body_size() {
    use std::sync::atomic::Ordering::Relaxed;
    let (main, copy) = (KnobBackend::start("main"), KnobBackend::start("copy"));
    let p = start(&mirroring_yaml(
        "        maxBodySize: 8\n",
        &main,
        &[(&copy, 100)],
    ));
    // 5 bytes fit: the main service and the mirror both get them.
    assert_eq!(post(p.web, b"hello").await.backend(), Some("main"));
    assert!(eventually(5, async || copy.knobs.body_bytes.load(Relaxed) == 5).await);
    // 12 bytes do not: the main service gets them, the mirror nothing.
    assert_eq!(post(p.web, b"hello world!").await.backend(), Some("main"));
    assert_eq!(main.knobs.body_bytes.load(Relaxed), 17);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        copy.requests(),
        1,
        "a body over maxBodySize is not mirrored"
    );
    // Chunked, so the size is found while reading: the same.
    let answer = support::raw(
        p.web,
        b"POST / HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n6\r\nhello \r\n6\r\nworld!\r\n0\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(main.knobs.body_bytes.load(Relaxed), 29);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        copy.requests(),
        1,
        "a chunked body over maxBodySize is not mirrored"
    );

    // mirrorBody: false: copies without the body.
    let (main2, copy2) = (KnobBackend::start("main"), KnobBackend::start("copy"));
    let p2 = start(&mirroring_yaml(
        "        mirrorBody: false\n",
        &main2,
        &[(&copy2, 100)],
    ));
    assert_eq!(post(p2.web, b"hello").await.backend(), Some("main"));
    assert!(eventually(5, async || copy2.requests() == 1).await);
    assert_eq!(copy2.knobs.body_bytes.load(Relaxed), 0);
    assert_eq!(main2.knobs.body_bytes.load(Relaxed), 5);
}

#[test]
fn mirror_percent_is_checked() {
    let yaml = "http:\n  services:\n    m:\n      mirroring:\n        service: lb\n        mirrors:\n          - name: lb\n            percent: 101\n    lb:\n      loadBalancer:\n        servers:\n          - url: http://127.0.0.1:1\n";
    let err = config_errors(yaml);
    assert!(
        err.contains("http.services.m.mirroring.mirrors[0].percent")
            && err.contains("mirror percent must be between 0 and 100, found 101"),
        "{err}"
    );
}

/// A failover `f` from `primary` (checked) to `backup`, with `errors`.
fn failover_errors_yaml(errors: &str, primary: &str, backup: &KnobBackend) -> String {
    nested_yaml(
        "f",
        &[
            format!(
                "    f:\n      failover:\n        service: primary\n        fallback: backup\n        errors:\n{errors}"
            ),
            primary.to_owned(),
            lb_service("backup", &[backup], ""),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_errors_send_the_main_services_error_answers_to_the_fallback_with_the_body() {
    use std::sync::atomic::Ordering::Relaxed;
    let (main, spare) = (KnobBackend::start("main"), KnobBackend::start("spare"));
    let p = start(&failover_errors_yaml(
        "          status: [\"500-504\", \"418\"]\n",
        &lb_service("primary", &[&main], FAST_CHECKS),
        &spare,
    ));
    let answer = async || {
        let r = post(p.web, b"hello").await;
        (r.status.as_u16(), r.backend().unwrap_or("-").to_owned())
    };
    assert_eq!(answer().await, (200, "main".into()));
    // Outside the ranges: the main service's answer stands.
    main.knobs.status.store(404, Relaxed);
    assert_eq!(answer().await, (404, "main".into()));
    // Inside: the fallback answers, and gets the body the main one got.
    for status in [503, 500, 418] {
        main.knobs.status.store(status, Relaxed);
        assert_eq!(
            answer().await,
            (200, "spare".into()),
            "main answering {status}"
        );
    }
    assert_eq!(main.requests(), 5);
    assert_eq!(main.knobs.body_bytes.load(Relaxed), 25);
    assert_eq!(spare.requests(), 3);
    assert_eq!(spare.knobs.body_bytes.load(Relaxed), 15);
    // A fallback answering an error itself is what the client gets.
    spare.knobs.status.store(502, Relaxed);
    assert_eq!(answer().await, (502, "spare".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_errors_take_the_proxys_own_502_and_keep_the_body_limit() {
    let (health, spare) = (KnobBackend::start("health"), KnobBackend::start("spare"));
    // The main service's server refuses connections, while its health
    // check (on another port) passes: the main service stays up, and
    // every request through it fails with the proxy's own 502.
    let checks = format!("{FAST_CHECKS}          port: {}\n", health.addr.port());
    let primary = format!(
        "    primary:\n      loadBalancer:\n{checks}        servers:\n          - url: \"http://127.0.0.1:1\"\n"
    );
    let p = start(&failover_errors_yaml(
        "          status: [\"502\"]\n          maxRequestBodyBytes: 4\n",
        &primary,
        &spare,
    ));
    let r = post(p.web, b"abc").await;
    assert_eq!(
        (r.status.as_u16(), r.backend()),
        (200, Some("spare")),
        "{}",
        r.text()
    );
    // Over maxRequestBodyBytes: 413, as Traefik answers, sent nowhere.
    let r = post(p.web, b"hello").await;
    assert_eq!(r.status.as_u16(), 413);
    assert_eq!(r.text(), "Request body too large\n");
    assert_eq!(spare.requests(), 1);
    // Without `status`, `errors` does nothing (as in Traefik): the 502
    // and any body size reach the client.
    let p2 = start(&failover_errors_yaml(
        "          maxRequestBodyBytes: 4\n",
        &primary,
        &spare,
    ));
    assert_eq!(post(p2.web, b"hello").await.status.as_u16(), 502);
    assert_eq!(spare.requests(), 1);
}

#[test]
fn failover_error_statuses_are_checked_where_written() {
    let yaml = "http:\n  services:\n    f:\n      failover:\n        service: a\n        fallback: b\n        errors:\n          status: [\"500-599\", \"5xx\"]\n    a:\n      loadBalancer:\n        healthCheck:\n          path: /\n        servers:\n          - url: http://127.0.0.1:1\n    b:\n      loadBalancer:\n        servers:\n          - url: http://127.0.0.1:1\n";
    let err = config_errors(yaml);
    assert!(
        err.contains("http.services.f.failover.errors.status[1]") && err.contains("\"5xx\""),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_idle_conns_per_host_is_the_limit_for_all_workers_together() {
    use std::sync::atomic::Ordering::Relaxed;
    let b = support::backend("b");
    // Two workers share a limit of 2: each keeps one idle connection.
    let yaml = format!(
        "http:\n  routers:\n    r:\n      rule: PathPrefix(`/`)\n      service: s\n  services:\n    s:\n      loadBalancer:\n        serversTransport: t\n        servers:\n          - url: \"http://{}\"\n  serversTransports:\n    t:\n      maxIdleConnsPerHost: 2\n",
        b.addr
    );
    let p = start_proxy_with(&yaml, "", 2);
    let burst = async || {
        // 20 requests at once on 20 client connections (spread over both
        // workers by the kernel), each held 300 ms by the backend: 20
        // upstream connections, of which the pools keep what the limit
        // allows.
        let web = p.web;
        let codes = futures_join_all((0..20).map(|_| async move {
            let mut c = H1::connect(web).await;
            c.get("example.test", "/slow/300").await.status.as_u16()
        }))
        .await;
        assert!(codes.iter().all(|&c| c == 200), "{codes:?}");
        b.stats.connections.load(Relaxed)
    };
    let first = burst().await;
    assert_eq!(first, 20);
    // The second burst reuses the connections kept idle, at most 2 (one
    // per worker); the limit once per worker would keep up to 4.
    let new = burst().await - first;
    assert!(
        (18..20).contains(&new),
        "{new} new connections for 20 requests"
    );
}
