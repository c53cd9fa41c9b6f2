//! Differential against a real Traefik on the same store (Redis, etcd):
//! the keys of Traefik's own KV integration tests (`redis_test.go`,
//! `etcd_test.go`, adapted to loopback backends: one server per service,
//! so no balancing order is compared), with a file provider beside it
//! whose router sends to a store service through a store middleware, and
//! a store router sending to a file service. Both route the same requests
//! to the same backends, before and after a change written to the store.
//! Skipped (SKIP line) without Traefik, redis-server or etcd.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use support::providers::{EtcdServer, ProxyProcess, wait_until};
use support::redis::RedisServer;
use support::traefik::{Answer, Traefik, find_traefik, free_port, send, skip_message};
use support::*;

/// The store, as Traefik's integration tests write it, servers on our
/// backends.
fn pairs(a: SocketAddr, b: SocketAddr) -> Vec<(String, String)> {
    let p: &[(&str, String)] = &[
        ("traefik/http/routers/Router0/entryPoints/0", "web".into()),
        (
            "traefik/http/routers/Router0/middlewares/0",
            "compressor".into(),
        ),
        (
            "traefik/http/routers/Router0/middlewares/1",
            "striper".into(),
        ),
        ("traefik/http/routers/Router0/service", "simplesvc".into()),
        (
            "traefik/http/routers/Router0/rule",
            "Host(`kv1.localhost`)".into(),
        ),
        ("traefik/http/routers/Router0/priority", "42".into()),
        (
            "traefik/http/routers/Router1/rule",
            "Host(`kv2.localhost`)".into(),
        ),
        ("traefik/http/routers/Router1/priority", "42".into()),
        ("traefik/http/routers/Router1/entryPoints/0", "web".into()),
        ("traefik/http/routers/Router1/service", "mirror".into()),
        (
            "traefik/http/routers/Router2/rule",
            "PathPrefix(`/local`)".into(),
        ),
        ("traefik/http/routers/Router2/service", "local@file".into()),
        (
            "traefik/http/services/simplesvc/loadBalancer/servers/0/url",
            format!("http://{a}"),
        ),
        (
            "traefik/http/services/srvcA/loadBalancer/servers/0/url",
            format!("http://{a}"),
        ),
        (
            "traefik/http/services/srvcB/loadBalancer/servers/0/url",
            format!("http://{b}"),
        ),
        (
            "traefik/http/services/mirror/mirroring/service",
            "srvcB".into(),
        ),
        (
            "traefik/http/services/mirror/mirroring/mirrors/0/name",
            "srvcA".into(),
        ),
        (
            "traefik/http/services/mirror/mirroring/mirrors/0/percent",
            "42".into(),
        ),
        (
            "traefik/http/middlewares/compressor/compress",
            "true".into(),
        ),
        (
            "traefik/http/middlewares/striper/stripPrefix/prefixes/0",
            "foo".into(),
        ),
        (
            "traefik/http/middlewares/striper/stripPrefix/prefixes/1",
            "bar".into(),
        ),
    ];
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn file(c: SocketAddr, store: &str) -> String {
    format!(
        "http:\n  routers:\n    f:\n      rule: PathPrefix(`/f`)\n      service: srvcA@{store}\n      middlewares: [striper@{store}]\n  services:\n    local:\n      loadBalancer:\n        servers:\n          - url: \"http://{c}\"\n"
    )
}

fn static_cfg(web: SocketAddr, dynamic: &std::path::Path, store: &str, endpoint: &str) -> String {
    format!(
        "global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\nentryPoints:\n  web:\n    address: \"{web}\"\nproviders:\n  file:\n    filename: \"{}\"\n  {store}:\n    endpoints: [\"{endpoint}\"]\nlog:\n  level: ERROR\n",
        dynamic.display(),
    )
}

const CASES: &[(&str, &str)] = &[
    ("kv1.localhost", "/"),
    ("kv1.localhost", "/foo/x"),
    ("kv2.localhost", "/"),
    ("other", "/local/x"),
    ("kv1.localhost", "/local"),
    ("other", "/f"),
    ("other", "/nothing"),
];

async fn answers(addr: SocketAddr) -> Vec<Answer> {
    let mut out = Vec::new();
    for (host, path) in CASES {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        // No answer (not listening yet): status 0.
        let a = send(addr, Ipv4Addr::LOCALHOST, req.as_bytes()).await;
        out.push(a.unwrap_or(Answer {
            status: 0,
            backend: None,
        }));
    }
    out
}

fn answers_now(addr: SocketAddr) -> Vec<Answer> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(answers(addr))
}

/// Writes pairs to the store under test.
trait Store {
    const NAME: &'static str;
    fn endpoint(&self) -> String;
    fn write(&self, pairs: &[(String, String)]);
}

impl Store for RedisServer {
    const NAME: &'static str = "redis";
    fn endpoint(&self) -> String {
        RedisServer::endpoint(self)
    }
    fn write(&self, pairs: &[(String, String)]) {
        let mut args = vec!["MSET"];
        for (k, v) in pairs {
            args.push(k);
            args.push(v);
        }
        assert!(self.command(&args).starts_with("+OK"));
    }
}

impl Store for EtcdServer {
    const NAME: &'static str = "etcd";
    fn endpoint(&self) -> String {
        EtcdServer::endpoint(self)
    }
    fn write(&self, pairs: &[(String, String)]) {
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.put_all(&refs);
    }
}

/// The differential on `store`, with Traefik at `bin`.
fn same_routing(bin: &std::path::Path, store: &impl Store) {
    let (a, b, c) = (backend("a"), backend("b"), backend("c"));
    store.write(&pairs(a.addr, b.addr));
    let dir = TempDir::new("traefik-kv");
    let dyn_path = dir.write("dynamic.yml", &file(c.addr, name_of(store)));
    let t_web = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let p_web = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let endpoint = store.endpoint();
    let traefik = Traefik::start(
        bin,
        &dir,
        &static_cfg(t_web, &dyn_path, name_of(store), &endpoint),
    );
    let p_static = dir.write(
        "proxy.yml",
        &static_cfg(p_web, &dyn_path, name_of(store), &endpoint),
    );
    let proxy = ProxyProcess::start(&p_static);

    let ready = |addr: SocketAddr| {
        wait_until(Duration::from_secs(30), || {
            let got = answers_now(addr);
            got[0].backend.as_deref() == Some("a") && got[5].backend.as_deref() == Some("a")
        })
    };
    assert!(
        ready(t_web),
        "Traefik ready; its log:\n{}",
        traefik.log_text()
    );
    assert!(
        ready(proxy.web),
        "proxy ready; its log:\n{}",
        proxy.log.load().join("\n")
    );
    let (t, p) = (answers_now(t_web), answers_now(proxy.web));
    for (i, (host, path)) in CASES.iter().enumerate() {
        eprintln!("{host}{path}: traefik {} proxy {}", t[i], p[i]);
    }
    assert_eq!(p, t, "same answers before the change");

    // A change in the store: both follow it.
    store.write(&[(
        "traefik/http/routers/Router0/service".to_owned(),
        "srvcB".to_owned(),
    )]);
    let moved = |addr: SocketAddr| {
        wait_until(Duration::from_secs(10), || {
            answers_now(addr)[0].backend.as_deref() == Some("b")
        })
    };
    assert!(moved(t_web), "Traefik follows");
    assert!(moved(proxy.web), "proxy follows");
    assert_eq!(
        answers_now(proxy.web),
        answers_now(t_web),
        "same answers after"
    );
}

fn name_of<S: Store>(_: &S) -> &'static str {
    S::NAME
}

#[test]
fn the_same_redis_store_routes_the_same_in_traefik() {
    let test = "the_same_redis_store_routes_the_same_in_traefik";
    let Some(bin) = find_traefik() else {
        eprintln!("{}", skip_message(test));
        return;
    };
    let Some(redis) = RedisServer::start(test) else {
        return;
    };
    same_routing(&bin, &redis);
}

#[test]
fn the_same_etcd_store_routes_the_same_in_traefik() {
    let test = "the_same_etcd_store_routes_the_same_in_traefik";
    let Some(bin) = find_traefik() else {
        eprintln!("{}", skip_message(test));
        return;
    };
    let Some(etcd) = EtcdServer::start(test) else {
        return;
    };
    same_routing(&bin, &etcd);
}
