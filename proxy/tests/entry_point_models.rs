//! Entrypoint models: `entryPoints.<n>.http.middlewares` run before every
//! router's own middlewares on that entrypoint, and a router on several
//! entrypoints becomes one router per modelled entrypoint (`<ep>-<name>`),
//! as Traefik 3.7 does it (`applyModel`); checked over real sockets, and
//! the router list against a real Traefik's API.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::traefik::{Traefik, find_traefik, free_ports, skip_message};
use support::*;

/// Two entrypoints, `web` with a model (a middleware), `other` without.
fn static_cfg(extra_web: &str) -> String {
    format!(
        "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\n    http:\n      middlewares:\n{extra_web}  other:\n    address: \"127.0.0.1:0\"\n  traefik:\n    address: \"127.0.0.1:0\"\napi:\n  insecure: true\nproviders:\n  file:\n    filename: \"{{DIR}}/dynamic.yml\"\n"
    )
}

fn dynamic(backend: &Backend) -> String {
    format!(
        r#"http:
  routers:
    both:
      rule: "PathPrefix(`/`)"
      entryPoints: [web, other]
      service: app
      middlewares: [own]
    only-web:
      rule: "Host(`only.web.test`)"
      entryPoints: [web]
      service: app
  middlewares:
    ep-mark:
      headers:
        customRequestHeaders:
          X-Order: "entrypoint"
        customResponseHeaders:
          X-Entrypoint-Model: "yes"
    own:
      headers:
        customRequestHeaders:
          X-Order: "router"
  services:
    app:
      loadBalancer:
        servers:
          - url: "http://{}"
"#,
        backend.addr
    )
}

fn router_names(routers: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = routers
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .filter(|n| n.ends_with("@file"))
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entrypoint_middlewares_run_first_and_split_routers_as_traefik_names_them() {
    let b = backend("app");
    let p = start_proxy_static(&dynamic(&b), &static_cfg("        - ep-mark@file\n"), 1);
    let (web, other) = (p.addr("web"), p.addr("other"));

    // On `web`: the entrypoint's middleware, then the router's (its header
    // value wins, set last), and the response header of the model.
    let r = get(web, "a.test", "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["headers"]["x-order"], "router", "{}", r.text());
    assert_eq!(r.headers["x-entrypoint-model"], "yes");
    let r = get(web, "only.web.test", "/").await;
    assert_eq!(r.json()["headers"]["x-order"], "entrypoint");
    assert_eq!(r.headers["x-entrypoint-model"], "yes");
    // On `other`: only the router's own middleware.
    let r = get(other, "a.test", "/").await;
    assert_eq!(r.json()["headers"]["x-order"], "router");
    assert!(r.headers.get("x-entrypoint-model").is_none());

    // The API lists what it became, as Traefik does.
    let api = p.addr("traefik");
    let routers = get(api, "x", "/api/http/routers").await.json();
    assert_eq!(
        router_names(&routers),
        ["both@file", "only-web@file", "web-both@file"]
    );
    let split = get(api, "x", "/api/http/routers/web-both@file")
        .await
        .json();
    assert_eq!(split["entryPoints"], serde_json::json!(["web"]));
    assert_eq!(
        split["middlewares"],
        serde_json::json!(["ep-mark@file", "own@file"])
    );
    let kept = get(api, "x", "/api/http/routers/both@file").await.json();
    assert_eq!(kept["entryPoints"], serde_json::json!(["other"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_entrypoint_middleware_disables_only_the_routers_it_models() {
    let b = backend("app");
    let p = start_proxy_static(&dynamic(&b), &static_cfg("        - nowhere\n"), 1);
    let (web, other) = (p.addr("web"), p.addr("other"));
    // Never served without its middlewares: 503, no fall-through.
    assert_eq!(get(web, "a.test", "/").await.status, 503);
    assert_eq!(get(web, "only.web.test", "/").await.status, 503);
    assert_eq!(
        b.stats.requests.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    // The router's copy on the entrypoint without a model still serves.
    assert_eq!(get(other, "a.test", "/").await.status, 200);
    let api = p.addr("traefik");
    let r = get(api, "x", "/api/http/routers/web-both@file")
        .await
        .json();
    assert_eq!(r["status"], "disabled");
    let error = r["error"][0].as_str().unwrap();
    assert!(
        error.contains("entryPoints.web.http.middlewares[0]") && error.contains("nowhere"),
        "{error}"
    );
    assert_eq!(
        get(api, "x", "/api/http/routers/both@file").await.json()["status"],
        "enabled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_routers_an_entrypoint_model_makes_are_the_ones_traefik_makes() {
    let Some(bin) = find_traefik() else {
        eprintln!("{}", skip_message("entry_point_models"));
        return;
    };
    let b = backend("app");
    let dir = TempDir::new("ep-models");
    dir.write("dynamic.yml", &dynamic(&b));
    let ports = free_ports(6);
    let addr = |i: usize| SocketAddr::from(([127, 0, 0, 1], ports[i]));
    let cfg = |web: SocketAddr, other: SocketAddr, api: SocketAddr| {
        format!(
            "global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\nentryPoints:\n  web:\n    address: \"{web}\"\n    http:\n      middlewares: [ep-mark@file]\n  other:\n    address: \"{other}\"\n  traefik:\n    address: \"{api}\"\napi:\n  insecure: true\nproviders:\n  file:\n    filename: \"{}\"\n    watch: false\nlog:\n  level: ERROR\n",
            dir.path().join("dynamic.yml").display()
        )
    };
    let traefik = Traefik::start(&bin, &dir, &cfg(addr(0), addr(1), addr(2)));
    let ours = dir.write("proxy.yml", &cfg(addr(3), addr(4), addr(5)));
    let running = start_file(&ours, 1);
    let fields = |v: &serde_json::Value| {
        let mut list: Vec<(String, String, String, String)> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["name"].as_str().unwrap().to_owned(),
                    r["entryPoints"].to_string(),
                    r["middlewares"].to_string(),
                    r["status"].to_string(),
                )
            })
            .collect();
        list.sort();
        list
    };
    let t0 = Instant::now();
    let theirs = loop {
        if let Ok(s) = tokio::net::TcpStream::connect(addr(2)).await
            && let Ok(r) = tokio::time::timeout(Duration::from_secs(2), async {
                H1::from_stream(s).await.get("x", "/api/http/routers").await
            })
            .await
            && r.status == 200
            && r.json().as_array().is_some_and(|a| a.len() >= 3)
        {
            break r.json();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "Traefik's API did not come up: {}",
            traefik.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mine = get(running.addr("traefik").unwrap(), "x", "/api/http/routers")
        .await
        .json();
    assert_eq!(fields(&mine), fields(&theirs));
    running.shutdown(Some(Duration::from_millis(200)));
}
