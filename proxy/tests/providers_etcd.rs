//! `providers.etcd` against a real `etcd` started on loopback ports
//! (skipped, with a SKIP line, where it is not installed): routes written
//! in Traefik's key layout are served; a change (one transaction of
//! several keys) is live within 1 s on each of three proxy processes; the
//! store stopped and restarted mid-run loses no request on existing
//! routes; a bad value is refused whole with its key named.

mod support;

use std::time::{Duration, Instant};

use support::providers::{
    EtcdServer, ProxyProcess, StoreTls, backend_of, lost_across_outage, route_pairs, wait_until,
};
use support::*;

fn static_cfg(dir: &TempDir, etcd: &EtcdServer) -> std::path::PathBuf {
    let text = format!(
        "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\nproviders:\n  etcd:\n    endpoints: [\"{}\"]\n",
        etcd.endpoint()
    );
    dir.write("static.yml", &text)
}

fn put_all(etcd: &EtcdServer, pairs: &[(String, String)]) {
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    etcd.put_all(&refs);
}

#[test]
fn etcd_routes_are_served_and_changes_live_on_three_processes() {
    let Some(etcd) = EtcdServer::start("etcd_routes_are_served") else {
        return;
    };
    let (a, b) = (backend("a"), backend("b"));
    put_all(&etcd, &route_pairs("traefik", "p", a.addr));
    let dir = TempDir::new("etcd-provider");
    let file = static_cfg(&dir, &etcd);
    let procs: Vec<ProxyProcess> = (0..3).map(|_| ProxyProcess::start(&file)).collect();
    for p in &procs {
        assert!(wait_until(Duration::from_secs(10), || {
            backend_of(p.web, "/p").as_deref() == Some("a")
        }));
    }
    let mut change = route_pairs("traefik", "q", b.addr);
    change.push((
        "traefik/http/services/svc-p/loadbalancer/servers/0/url".into(),
        format!("http://{}", b.addr),
    ));
    let written = Instant::now();
    put_all(&etcd, &change);
    for p in &procs {
        assert!(wait_until(Duration::from_secs(5), || {
            backend_of(p.web, "/p").as_deref() == Some("b")
                && backend_of(p.web, "/q").as_deref() == Some("b")
        }));
    }
    let took = written.elapsed();
    eprintln!("change live on three processes after {took:?}");
    assert!(took < Duration::from_secs(1), "live within 1 s: {took:?}");
    // A deleted router is gone (a router left without its rule would be
    // an invalid update, refused whole).
    etcd.delete("traefik/http/routers/q/rule");
    etcd.delete("traefik/http/routers/q/service");
    for p in &procs {
        assert!(wait_until(Duration::from_secs(5), || backend_of(
            p.web, "/q"
        )
        .is_none()));
    }
}

#[test]
fn etcd_down_and_back_loses_no_request_and_bad_values_are_refused() {
    let Some(mut etcd) = EtcdServer::start("etcd_down_and_back") else {
        return;
    };
    let (a, b) = (backend("a"), backend("b"));
    put_all(&etcd, &route_pairs("traefik", "p", a.addr));
    let dir = TempDir::new("etcd-provider");
    let p = ProxyProcess::start(&static_cfg(&dir, &etcd));
    let failed = {
        let store = std::cell::RefCell::new(&mut etcd);
        lost_across_outage(
            p.web,
            200,
            (40, 120),
            || store.borrow_mut().stop(),
            || store.borrow_mut().restart(),
        )
    };
    assert_eq!(failed, 0, "requests lost while the store was down");
    assert!(
        p.logged("cannot reach the provider"),
        "the outage is logged"
    );
    // A bad value with a change: refused whole, the key named.
    put_all(
        &etcd,
        &[
            ("traefik/http/routers/p/priority".into(), "high".into()),
            (
                "traefik/http/services/svc-p/loadbalancer/servers/0/url".into(),
                format!("http://{}", b.addr),
            ),
        ],
    );
    assert!(wait_until(Duration::from_secs(10), || p
        .logged("traefik/http/routers/p/priority")));
    assert_eq!(backend_of(p.web, "/p").as_deref(), Some("a"));
    etcd.delete("traefik/http/routers/p/priority");
    assert!(wait_until(Duration::from_secs(5), || backend_of(
        p.web, "/p"
    )
    .as_deref()
        == Some("b")));
}

#[test]
fn etcd_credentials_are_used_and_never_logged() {
    let Some(etcd) = EtcdServer::start("etcd_credentials_are_used") else {
        return;
    };
    let a = backend("a");
    put_all(&etcd, &route_pairs("traefik", "p", a.addr));
    let pw = "etcd-pw-never-logged";
    etcd.enable_auth(pw);
    let dir = TempDir::new("etcd-provider");
    let good = format!(
        "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\nproviders:\n  etcd:\n    endpoints: [\"{}\"]\n    username: root\n    password: {pw}\n",
        etcd.endpoint()
    );
    let p = ProxyProcess::start(&dir.write("good.yml", &good));
    assert!(
        wait_until(Duration::from_secs(10), || backend_of(p.web, "/p")
            .as_deref()
            == Some("a")),
        "{}",
        p.log.load().join("\n")
    );
    let wrong = good.replace(pw, "wrong-etcd-pw");
    let q = ProxyProcess::start(&dir.write("wrong.yml", &wrong));
    assert!(wait_until(Duration::from_secs(10), || q
        .logged("cannot reach the provider")));
    assert_eq!(backend_of(q.web, "/p"), None);
    for proc in [&p, &q] {
        let log = proc.log.load();
        assert!(
            !log.iter()
                .any(|l| l.contains(pw) || l.contains("wrong-etcd-pw")),
            "a credential in the log:\n{}",
            log.join("\n")
        );
    }
}

/// `tls` against an etcd serving clients over TLS on a second listener
/// (the plain one is the test's own, to write the keys): with the CA that
/// signed its certificate the routes are served; with another CA the
/// store is unreachable, logged once.
#[test]
fn tls_to_etcd_is_verified_against_the_given_ca() {
    let certs = TempDir::new("etcd-tls-certs");
    let tls = StoreTls::new(&certs);
    let Some(etcd) = EtcdServer::start_tls(
        "tls_to_etcd_is_verified_against_the_given_ca",
        Some((tls.cert.clone(), tls.key.clone())),
    ) else {
        return;
    };
    let a = backend("a");
    put_all(&etcd, &route_pairs("traefik", "p", a.addr));
    let endpoint = etcd.tls_endpoint();
    tls.check(&TempDir::new("etcd-tls"), |ca| {
        format!(
            "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\nproviders:\n  etcd:\n    endpoints: [\"{endpoint}\"]\n    tls:\n      ca: \"{}\"\n",
            ca.display()
        )
    });
}
