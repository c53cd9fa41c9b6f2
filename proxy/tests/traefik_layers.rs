//! Multi-layer routing (`parentRefs`) against a real Traefik 3.7 (skipped,
//! saying so, when no Traefik binary is found; see `support::traefik`):
//! the same dynamic configuration given to both, the same requests sent,
//! compared for each: the status, the backend reached, the path it got,
//! the headers the parents' middlewares touch; then every router of both
//! APIs (status, rule, priority, service, middlewares, `parentRefs`,
//! `entryPoints`, `using`, whether it has errors), and the access log's
//! `RouterName` (every router passed: `root@file -> mid@file -> ...`).
//!
//! Trees: the documentation's authentication example (a `forwardAuth`
//! parent whose copied header chooses the child), a `stripPrefix` parent
//! (children match the stripped path; no child matching is Traefik's 404
//! through the parent's middlewares), three layers with priorities and a
//! child of two parents, and trees with errors; then a parent split by
//! an entrypoint model, its child reached under each copy.
//!
//! The differences that remain, by the project's rule that a disabled
//! router keeps its place and answers 503 (Traefik leaves it out, and its
//! requests reach a sibling, another router or a 404), are checked as
//! such in [`KNOWN`]: a child with an error, a root router with neither
//! service nor child, a router with both a service and children (Traefik
//! reports it disabled yet serves its children), a cycle (Traefik leaves
//! out the router closing it and, one by one, its emptied parents, so the
//! requests reach a lower root router). In the API, a child whose parent
//! does not exist is shown by its status and errors only (it has no place
//! here).

mod support;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::traefik::{Traefik, exchange, find_traefik, free_ports, skip_message, wait_ready};
use support::*;

const READY_HOST: &str = "ready.layers.invalid";

fn dynamic(ready: &Backend, b1: &Backend, b2: &Backend, b3: &Backend, auth: &Backend) -> String {
    format!(
        r#"http:
  routers:
    ready:
      rule: "Host(`{READY_HOST}`)"
      service: ready
    auth-parent:
      rule: "Host(`auth.test`)"
      middlewares: [auth]
    auth-admin:
      rule: "HeaderRegexp(`X-Backend`, `^auth$`) && PathPrefix(`/admin`)"
      service: b1
      parentRefs: [auth-parent]
    auth-user:
      rule: "PathPrefix(`/`)"
      priority: 1
      service: b2
      parentRefs: [auth-parent]
    strip-parent:
      rule: "Host(`strip.test`) && PathPrefix(`/api`)"
      middlewares: [strip, tag]
    strip-v1:
      rule: "Path(`/v1`)"
      service: b1
      middlewares: [child-tag]
      parentRefs: [strip-parent]
    strip-gold:
      rule: "Header(`X-Tier`, `gold`) && PathPrefix(`/gold`)"
      service: b2
      parentRefs: ["strip-parent@file"]
    root:
      rule: "Host(`nest.test`)"
      middlewares: [root-mark]
    mid:
      rule: "PathPrefix(`/m`)"
      middlewares: [mid-strip]
      parentRefs: [root]
    long:
      rule: "PathPrefix(`/x`) && Method(`GET`)"
      service: b1
      parentRefs: [mid]
    short:
      rule: "PathPrefix(`/x`)"
      priority: 100
      service: b2
      parentRefs: [mid]
    shared:
      rule: "PathPrefix(`/p`)"
      service: b3
      parentRefs: [root, mid]
    bad-parent:
      rule: "Host(`bad.test`)"
    bad-good:
      rule: "PathPrefix(`/good`)"
      service: b1
      parentRefs: [bad-parent]
    bad-eps:
      rule: "PathPrefix(`/eps`)"
      service: b2
      entryPoints: [web]
      parentRefs: [bad-parent]
    bad-orphan:
      rule: "PathPrefix(`/orphan`)"
      service: b2
      parentRefs: [nobody]
    dead-end:
      rule: "Host(`dead.test`)"
    both:
      rule: "Host(`both.test`)"
      service: b3
    both-child:
      rule: "PathPrefix(`/c`)"
      service: b1
      parentRefs: [both]
    cyc-a:
      rule: "Host(`cycle.test`)"
    cyc-b:
      rule: "PathPrefix(`/`)"
      parentRefs: [cyc-a, cyc-c]
    cyc-c:
      rule: "PathPrefix(`/`)"
      parentRefs: [cyc-b]
    fallback:
      rule: "PathPrefix(`/`)"
      priority: 1
      service: b3
  middlewares:
    auth:
      forwardAuth:
        address: "http://{auth}/echo"
        authResponseHeaders: [X-Backend]
    strip:
      stripPrefix:
        prefixes: [/api]
    tag:
      headers:
        customRequestHeaders:
          X-Tier: gold
        customResponseHeaders:
          X-Parent: "yes"
    child-tag:
      headers:
        customResponseHeaders:
          X-Child: "yes"
    root-mark:
      headers:
        customRequestHeaders:
          X-Root: "1"
    mid-strip:
      stripPrefix:
        prefixes: [/m]
  services:
    ready:
      loadBalancer:
        servers:
          - url: "http://{ready}"
    b1:
      loadBalancer:
        servers:
          - url: "http://{b1}"
    b2:
      loadBalancer:
        servers:
          - url: "http://{b2}"
    b3:
      loadBalancer:
        servers:
          - url: "http://{b3}"
"#,
        ready = ready.addr,
        b1 = b1.addr,
        b2 = b2.addr,
        b3 = b3.addr,
        auth = auth.addr,
    )
}

/// Host and target of the requests that must be answered the same.
const CASES: &[(&str, &str)] = &[
    ("auth.test", "/admin/x"),
    ("auth.test", "/other"),
    ("strip.test", "/api/v1"),
    ("strip.test", "/api/gold/x?q=1"),
    ("strip.test", "/api/none"),
    ("strip.test", "/v1"),
    ("nest.test", "/m/x/1"),
    ("nest.test", "/p/q"),
    ("nest.test", "/m/p/q"),
    ("nest.test", "/m/y"),
    ("nest.test", "/elsewhere"),
    ("bad.test", "/good/1"),
    ("other.test", "/orphan"),
];

/// The requests answered differently by the project's rule (a disabled
/// router keeps its place: 503), with the status the proxy must give.
const KNOWN: &[(&str, &str, u16, &str)] = &[
    (
        "bad.test",
        "/eps",
        503,
        "a child with an error (entryPoints): Traefik leaves it out of its parent's muxer",
    ),
    (
        "dead.test",
        "/",
        503,
        "a root router with neither service nor child: Traefik does not serve it",
    ),
    (
        "both.test",
        "/c",
        503,
        "a router with both a service and a child: Traefik reports it disabled yet serves its children",
    ),
    (
        "cycle.test",
        "/",
        503,
        "a cycle: Traefik leaves out the router closing it, then its emptied parents",
    ),
];

/// Status, backend, the path it got and the headers compared.
fn digest(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("").split(' ').nth(1).unwrap_or("?");
    let head: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let value = |name: &str| head.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let mut out = format!(
        "{status} backend={:?} x-parent={:?} x-child={:?}",
        value("x-backend"),
        value("x-parent"),
        value("x-child")
    );
    match serde_json::from_str::<Value>(body) {
        Ok(v) if v.get("headers").is_some() => {
            out += &format!(" | path {} query {}", v["path"], v["query"]);
            for name in ["x-forwarded-prefix", "x-tier", "x-root"] {
                out += &format!(" {name}={}", v["headers"][name]);
            }
        }
        _ => out += &format!(" | body {body:?}"),
    }
    out
}

async fn ask(addr: SocketAddr, host: &str, target: &str) -> Vec<u8> {
    let req = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    exchange(addr, Ipv4Addr::LOCALHOST, req.as_bytes())
        .await
        .unwrap()
}

fn static_cfg(
    web: SocketAddr,
    api: SocketAddr,
    dynamic: &std::path::Path,
    access_log: &std::path::Path,
) -> String {
    format!(
        "global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\nentryPoints:\n  web:\n    address: \"{web}\"\n  traefik:\n    address: \"{api}\"\napi:\n  insecure: true\nproviders:\n  file:\n    filename: \"{}\"\n    watch: false\nlog:\n  level: ERROR\naccessLog:\n  filePath: \"{}\"\n  format: json\n",
        dynamic.display(),
        access_log.display()
    )
}

/// The `RouterName` of the access log entry for `host` in `path`'s log
/// (waiting for it to be written).
async fn logged_router(path: &std::path::Path, host: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let found = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["RequestHost"] == host);
        match found {
            Some(e) => return e["RouterName"].clone(),
            None if Instant::now() > deadline => return Value::Null,
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn routers(api: SocketAddr) -> BTreeMap<String, Value> {
    let r = H1::connect(api)
        .await
        .get("api.test", "/api/http/routers?per_page=1000")
        .await;
    r.json()
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {}", r.text()))
        .iter()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.strip_suffix("@file")?.to_owned(),
                e.clone(),
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_layer_routing_answers_as_traefik() {
    let Some(bin) = find_traefik() else {
        eprintln!("{}", skip_message("multi_layer_routing_answers_as_traefik"));
        return;
    };
    let (ready, b1, b2, b3, auth) = (
        backend("ready"),
        backend("b1"),
        backend("b2"),
        backend("b3"),
        backend("auth"),
    );
    let dir = TempDir::new("traefik-layers");
    let dyn_path = dir.write("dynamic.yml", &dynamic(&ready, &b1, &b2, &b3, &auth));
    let ports = free_ports(4);
    let addr = |i: usize| SocketAddr::from(([127, 0, 0, 1], ports[i]));
    let (t_log, p_log) = (dir.path().join("traefik.log"), dir.path().join("proxy.log"));
    let traefik = Traefik::start(&bin, &dir, &static_cfg(addr(0), addr(1), &dyn_path, &t_log));
    let ours = dir.write(
        "proxy.yml",
        &static_cfg(addr(2), addr(3), &dyn_path, &p_log),
    );
    let running = start_file(&ours, 1);
    let (t_web, p_web) = (addr(0), running.addr("web").unwrap());
    let (t_api, p_api) = (addr(1), running.addr("traefik").unwrap());
    for (a, what) in [(t_web, "traefik"), (p_web, "proxy")] {
        wait_ready(
            a,
            READY_HOST,
            "ready",
            what,
            Duration::from_secs(20),
            || traefik.log_text(),
        )
        .await;
    }

    let mut wrong = Vec::new();
    for (host, target) in CASES {
        let theirs = digest(&ask(t_web, host, target).await);
        let ours = digest(&ask(p_web, host, target).await);
        if theirs != ours {
            wrong.push(format!(
                "- {host}{target}\n    traefik {theirs}\n    proxy   {ours}"
            ));
        }
    }
    for (host, target, status, why) in KNOWN {
        let theirs = digest(&ask(t_web, host, target).await);
        let ours = digest(&ask(p_web, host, target).await);
        eprintln!(
            "known difference {host}{target} ({why}):\n    traefik {theirs}\n    proxy   {ours}"
        );
        if !ours.starts_with(&status.to_string()) {
            wrong.push(format!("- {host}{target}: proxy {ours}, expected {status}"));
        }
    }

    // The access log names every router passed.
    let (theirs, ours) = (
        logged_router(&t_log, "nest.test").await,
        logged_router(&p_log, "nest.test").await,
    );
    eprintln!("access log RouterName: traefik {theirs} / proxy {ours}");
    if theirs != ours || theirs.is_null() {
        wrong.push(format!(
            "- access log RouterName: proxy {ours} / traefik {theirs}"
        ));
    }

    // The routers as both APIs show them (Traefik loads asynchronously:
    // it answered the requests above, so its routers are there).
    let t0 = Instant::now();
    let (p, t) = loop {
        let (p, t) = (routers(p_api).await, routers(t_api).await);
        if t.len() >= p.len() || t0.elapsed() > Duration::from_secs(10) {
            break (p, t);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let names = |m: &BTreeMap<String, Value>| m.keys().cloned().collect::<Vec<_>>();
    if names(&p) != names(&t) {
        wrong.push(format!(
            "- router names: proxy {:?} / traefik {:?}",
            names(&p),
            names(&t)
        ));
    }
    for (name, tr) in &t {
        let Some(pr) = p.get(name) else { continue };
        // A child whose parent does not exist has no place: the proxy
        // keeps only its status and errors (Traefik: all it was given).
        let fields: &[&str] = if pr.get("rule").is_none() {
            &["status"]
        } else {
            &[
                "status",
                "rule",
                "priority",
                "service",
                "middlewares",
                "parentRefs",
                "entryPoints",
                "using",
            ]
        };
        for f in fields {
            let f = *f;
            if pr[f] != tr[f] {
                wrong.push(format!("- {name}.{f}: proxy {} / traefik {}", pr[f], tr[f]));
            }
        }
        if pr["error"].is_array() != tr["error"].is_array() {
            wrong.push(format!(
                "- {name}.error: proxy {} / traefik {}",
                pr["error"], tr["error"]
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "differences from Traefik:\n{}",
        wrong.join("\n")
    );
}

/// A parent split by an entrypoint model (`web` has one, `other` not):
/// its child is reached under both copies, the model's middleware only on
/// `web`; the routers' `parentRefs`, `entryPoints` and status as Traefik's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_parent_answers_as_traefik() {
    let Some(bin) = find_traefik() else {
        eprintln!("{}", skip_message("a_split_parent_answers_as_traefik"));
        return;
    };
    let (ready, b1) = (backend("ready"), backend("b1"));
    let dir = TempDir::new("traefik-layers-model");
    let dyn_path = dir.write(
        "dynamic.yml",
        &format!(
            r#"http:
  routers:
    ready:
      rule: "Host(`{READY_HOST}`)"
      service: ready
      entryPoints: [other]
    parent:
      rule: "Host(`m.test`)"
      entryPoints: [web, other]
    child:
      rule: "PathPrefix(`/c`)"
      service: b1
      parentRefs: [parent]
  middlewares:
    tag:
      headers:
        customResponseHeaders:
          X-Parent: "model"
  services:
    ready:
      loadBalancer:
        servers:
          - url: "http://{}"
    b1:
      loadBalancer:
        servers:
          - url: "http://{}"
"#,
            ready.addr, b1.addr
        ),
    );
    let ports = free_ports(6);
    let addr = |i: usize| SocketAddr::from(([127, 0, 0, 1], ports[i]));
    let cfg = |web: SocketAddr, other: SocketAddr, api: SocketAddr| {
        format!(
            "global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\nentryPoints:\n  web:\n    address: \"{web}\"\n    http:\n      middlewares:\n        - tag@file\n  other:\n    address: \"{other}\"\n  traefik:\n    address: \"{api}\"\napi:\n  insecure: true\nproviders:\n  file:\n    filename: \"{}\"\n    watch: false\nlog:\n  level: ERROR\n",
            dyn_path.display()
        )
    };
    let traefik = Traefik::start(&bin, &dir, &cfg(addr(0), addr(1), addr(2)));
    let ours = dir.write("proxy.yml", &cfg(addr(3), addr(4), addr(5)));
    let running = start_file(&ours, 1);
    let p_eps = [
        running.addr("web").unwrap(),
        running.addr("other").unwrap(),
        running.addr("traefik").unwrap(),
    ];
    for (a, what) in [(addr(1), "traefik"), (p_eps[1], "proxy")] {
        wait_ready(
            a,
            READY_HOST,
            "ready",
            what,
            Duration::from_secs(20),
            || traefik.log_text(),
        )
        .await;
    }
    let mut wrong = Vec::new();
    for (i, ep) in ["web", "other"].into_iter().enumerate() {
        for target in ["/c/1", "/d"] {
            let theirs = digest(&ask(addr(i), "m.test", target).await);
            let ours = digest(&ask(p_eps[i], "m.test", target).await);
            if theirs != ours {
                wrong.push(format!(
                    "- {ep} m.test{target}\n    traefik {theirs}\n    proxy   {ours}"
                ));
            }
        }
    }
    let (p, t) = (routers(p_eps[2]).await, routers(addr(2)).await);
    let names = |m: &BTreeMap<String, Value>| m.keys().cloned().collect::<Vec<_>>();
    if names(&p) != names(&t) {
        wrong.push(format!(
            "- names: proxy {:?} / traefik {:?}",
            names(&p),
            names(&t)
        ));
    }
    for (name, tr) in &t {
        let Some(pr) = p.get(name) else { continue };
        for f in [
            "status",
            "parentRefs",
            "entryPoints",
            "using",
            "middlewares",
        ] {
            if pr[f] != tr[f] {
                wrong.push(format!("- {name}.{f}: proxy {} / traefik {}", pr[f], tr[f]));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "differences from Traefik:\n{}",
        wrong.join("\n")
    );
}
