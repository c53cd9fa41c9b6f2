//! `providers.http` against a real configuration server that changes its
//! answer, fails and times out: routes it gives are served (with names
//! `@http`, and a file router sending to an `@http` service), an
//! identical answer reloads nothing, a failed or timed-out poll keeps the
//! last good configuration, a bad answer is refused whole with the key
//! named, and a later good one applies.

mod support;

use std::time::Duration;

use support::providers::{Answer, ConfigServer, wait_until};
use support::*;

/// The HTTP provider's configuration routing `/p` to `backend`.
fn answer(backend: &Backend) -> String {
    format!(
        "http:\n  routers:\n    r:\n      rule: PathPrefix(`/p`)\n      service: s\n  services:\n    s:\n      loadBalancer:\n        servers:\n          - url: \"http://{}\"\n",
        backend.addr
    )
}

fn static_cfg(server: &ConfigServer, extra: &str) -> String {
    format!(
        "{}  http:\n    endpoint: \"{}\"\n    pollInterval: 100ms\n    pollTimeout: 300ms\n    headers:\n      X-Token: secret-token\n{extra}",
        static_yaml(""),
        server.url()
    )
}

/// The backend `path` reaches now (`None`: not routed).
fn routed(p: &TestProxy, path: &str) -> Option<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt.block_on(get(p.web, "x", path));
    r.backend().map(str::to_owned)
}

#[test]
fn http_provider_follows_its_endpoint() {
    let (a, b) = (backend("a"), backend("b"));
    let server = ConfigServer::start(Answer::Body(answer(&a)));
    // The file provider's router sends to the HTTP provider's service.
    let file = "http:\n  routers:\n    f:\n      rule: PathPrefix(`/f`)\n      service: s@http\n";
    let p = start_proxy_static(file, &static_cfg(&server, ""), 1);
    assert!(
        wait_until(Duration::from_secs(5), || routed(&p, "/p").as_deref()
            == Some("a")),
        "the endpoint's route is served"
    );
    assert_eq!(
        routed(&p, "/f").as_deref(),
        Some("a"),
        "file router -> s@http"
    );
    assert_eq!(
        &**server.last_token.load(),
        "secret-token",
        "headers are sent"
    );

    // Identical answers: no reload.
    let generation = p.running().control().generation();
    let polled = server.requests.load(std::sync::atomic::Ordering::SeqCst);
    assert!(wait_until(Duration::from_secs(5), || {
        server.requests.load(std::sync::atomic::Ordering::SeqCst) >= polled + 3
    }));
    assert_eq!(p.running().control().generation(), generation, "no reload");

    // A change is applied.
    server.set(Answer::Body(answer(&b)));
    assert!(
        wait_until(Duration::from_secs(5), || routed(&p, "/p").as_deref()
            == Some("b")),
        "the change is served"
    );

    // Failing and timing out: the last good configuration stays.
    for failure in [Answer::Status(500), Answer::Hang] {
        server.set(failure);
        let before = server.requests.load(std::sync::atomic::Ordering::SeqCst);
        assert!(wait_until(Duration::from_secs(5), || {
            server.requests.load(std::sync::atomic::Ordering::SeqCst) >= before + 2
        }));
        assert_eq!(routed(&p, "/p").as_deref(), Some("b"), "kept while failing");
    }

    // A bad answer is refused whole: the last good one stays.
    let bad = answer(&a).replace("rule:", "rulez:");
    server.set(Answer::Body(bad));
    let before = server.requests.load(std::sync::atomic::Ordering::SeqCst);
    assert!(wait_until(Duration::from_secs(5), || {
        server.requests.load(std::sync::atomic::Ordering::SeqCst) >= before + 3
    }));
    assert_eq!(routed(&p, "/p").as_deref(), Some("b"), "bad answer refused");

    // Back to a good answer.
    server.set(Answer::Body(answer(&a)));
    assert!(wait_until(Duration::from_secs(5), || routed(&p, "/p")
        .as_deref()
        == Some("a")));
}

#[test]
fn http_provider_names_are_qualified_in_the_api() {
    let a = backend("a");
    let server = ConfigServer::start(Answer::Body(answer(&a)));
    let extra = "api:\n  insecure: true\n";
    let mut cfg = static_cfg(&server, "");
    cfg.push_str(extra);
    let p = start_proxy_static("http: {}\n", &cfg, 1);
    assert!(wait_until(Duration::from_secs(5), || routed(&p, "/p")
        .as_deref()
        == Some("a")));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let api = p.addr("traefik");
    let routers = rt.block_on(get(api, "x", "/api/http/routers")).json();
    let names: Vec<&str> = routers
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(names.contains(&"r@http"), "{names:?}");
    let r = rt
        .block_on(get(api, "x", "/api/http/routers/r@http"))
        .json();
    assert_eq!(r["provider"], "http", "{r}");
    assert_eq!(r["service"], "s", "{r}");
}

#[test]
fn body_larger_than_the_limit_is_a_failed_poll() {
    let (a, b) = (backend("a"), backend("b"));
    let server = ConfigServer::start(Answer::Body(answer(&a)));
    let cfg = static_cfg(&server, "    maxResponseBodySize: 400\n");
    let p = start_proxy_static("http: {}\n", &cfg, 1);
    assert!(wait_until(Duration::from_secs(5), || routed(&p, "/p")
        .as_deref()
        == Some("a")));
    // The same configuration padded past 400 bytes: refused.
    let padded = format!("{}# {}\n", answer(&b), "x".repeat(400));
    server.set(Answer::Body(padded));
    let before = server.requests.load(std::sync::atomic::Ordering::SeqCst);
    assert!(wait_until(Duration::from_secs(5), || {
        server.requests.load(std::sync::atomic::Ordering::SeqCst) >= before + 3
    }));
    assert_eq!(routed(&p, "/p").as_deref(), Some("a"));
}

#[test]
fn a_broken_file_never_holds_back_the_other_providers() {
    let (a, b, c) = (backend("a"), backend("b"), backend("c"));
    let server = ConfigServer::start(Answer::Body(answer(&a)));
    let file = format!(
        "http:\n  routers:\n    f:\n      rule: PathPrefix(`/f`)\n      service: local\n  services:\n    local:\n      loadBalancer:\n        servers:\n          - url: \"http://{}\"\n",
        c.addr
    );
    let p = start_proxy_static(&file, &static_cfg(&server, ""), 1);
    assert!(wait_until(Duration::from_secs(5), || routed(&p, "/p")
        .as_deref()
        == Some("a")));
    assert_eq!(routed(&p, "/f").as_deref(), Some("c"));
    // The file cannot be used any more (a syntax error)...
    p.dir.write_atomic("dynamic.yml", "http: [\n");
    std::thread::sleep(Duration::from_millis(300));
    // ...and the HTTP provider changes: its change applies, the file's
    // last applied routes stay.
    server.set(Answer::Body(answer(&b)));
    assert!(
        wait_until(Duration::from_secs(5), || routed(&p, "/p").as_deref()
            == Some("b")),
        "the HTTP provider's change is applied"
    );
    assert_eq!(
        routed(&p, "/f").as_deref(),
        Some("c"),
        "the file's last applied routes stay"
    );
}
