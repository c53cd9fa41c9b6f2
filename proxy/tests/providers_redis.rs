//! `providers.redis` against a real `redis-server` started on a loopback
//! port (skipped, with a SKIP line, where it is not installed): routes
//! written in Traefik's key layout are served; a change is live within
//! 1 s on each of three proxy processes on the same store; the store
//! stopped and restarted mid-run loses no request on existing routes; a
//! bad value is refused whole with its key named; `CONFIG` refused falls
//! back to polling; Sentinel: the master is found, and followed across a
//! failover (killed, or SENTINEL FAILOVER of a live master).

mod support;

use std::time::{Duration, Instant};

use support::providers::{
    ProxyProcess, StoreTls, backend_of, lost_across_outage, route_pairs, wait_until,
};
use support::redis::RedisServer;
use support::*;

fn static_cfg(dir: &TempDir, redis: &RedisServer) -> std::path::PathBuf {
    let text = format!(
        "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\nproviders:\n  redis:\n    endpoints: [\"{}\"]\n",
        redis.endpoint()
    );
    dir.write("static.yml", &text)
}

fn set_all(redis: &RedisServer, pairs: &[(String, String)]) {
    let mut args = vec!["MSET"];
    for (k, v) in pairs {
        args.push(k);
        args.push(v);
    }
    let r = redis.command(&args);
    assert!(r.starts_with("+OK"), "{r}");
}

#[test]
fn redis_routes_are_served_and_changes_live_on_three_processes() {
    let Some(redis) = RedisServer::start("redis_routes_are_served") else {
        return;
    };
    let (a, b) = (backend("a"), backend("b"));
    set_all(&redis, &route_pairs("traefik", "p", a.addr));
    let dir = TempDir::new("redis-provider");
    let file = static_cfg(&dir, &redis);
    let procs: Vec<ProxyProcess> = (0..3).map(|_| ProxyProcess::start(&file)).collect();
    for p in &procs {
        assert!(
            wait_until(Duration::from_secs(10), || backend_of(p.web, "/p")
                .as_deref()
                == Some("a")),
            "the store's route is served"
        );
    }
    // A multi-key change: a new route and the first one moved.
    let mut change = route_pairs("traefik", "q", b.addr);
    change.push((
        "traefik/http/services/svc-p/loadbalancer/servers/0/url".into(),
        format!("http://{}", b.addr),
    ));
    let written = Instant::now();
    set_all(&redis, &change);
    for p in &procs {
        assert!(wait_until(Duration::from_secs(5), || {
            backend_of(p.web, "/p").as_deref() == Some("b")
                && backend_of(p.web, "/q").as_deref() == Some("b")
        }));
    }
    let took = written.elapsed();
    eprintln!("change live on three processes after {took:?}");
    assert!(took < Duration::from_secs(1), "live within 1 s: {took:?}");
    // Credentials never logged (none here), and no reload storm: the
    // change is one configuration.
    assert!(procs.iter().all(|p| p.logged("new configuration")));
}

#[test]
fn redis_down_and_back_loses_no_request() {
    // Persistence on, so the restarted server has the keys again.
    let Some(mut redis) = RedisServer::start_with(
        "redis_down_and_back_loses_no_request",
        &["--appendonly", "yes", "--appendfsync", "always"],
    ) else {
        return;
    };
    let a = backend("a");
    set_all(&redis, &route_pairs("traefik", "p", a.addr));
    let dir = TempDir::new("redis-provider");
    let p = ProxyProcess::start(&static_cfg(&dir, &redis));
    let failed = {
        let store = std::cell::RefCell::new(&mut redis);
        lost_across_outage(
            p.web,
            300,
            (50, 200),
            || store.borrow_mut().stop(),
            || store.borrow_mut().restart(),
        )
    };
    assert_eq!(failed, 0, "requests lost while the store was down");
    assert!(
        p.logged("cannot reach the provider"),
        "the outage is logged"
    );
    // Reconnected: a change is seen again.
    let b = backend("b");
    set_all(
        &redis,
        &[(
            "traefik/http/services/svc-p/loadbalancer/servers/0/url".into(),
            format!("http://{}", b.addr),
        )],
    );
    assert!(wait_until(Duration::from_secs(10), || backend_of(
        p.web, "/p"
    )
    .as_deref()
        == Some("b")));
    p.assert_unreachable_logged_once();
}

#[test]
fn bad_value_is_refused_with_its_key_and_config_refused_polls() {
    // CONFIG disabled, as managed Redis services do.
    let Some(redis) =
        RedisServer::start_with("bad_value_is_refused", &["--rename-command", "CONFIG", ""])
    else {
        return;
    };
    let (a, b) = (backend("a"), backend("b"));
    set_all(&redis, &route_pairs("traefik", "p", a.addr));
    let dir = TempDir::new("redis-provider");
    let p = ProxyProcess::start(&static_cfg(&dir, &redis));
    assert!(wait_until(Duration::from_secs(10), || backend_of(
        p.web, "/p"
    )
    .as_deref()
        == Some("a")));
    assert!(
        p.logged("polling the store"),
        "the fallback is warned about"
    );
    // A bad value with a change: the whole update is refused.
    set_all(
        &redis,
        &[
            ("traefik/http/routers/p/priority".into(), "high".into()),
            (
                "traefik/http/services/svc-p/loadbalancer/servers/0/url".into(),
                format!("http://{}", b.addr),
            ),
        ],
    );
    assert!(wait_until(Duration::from_secs(5), || p
        .logged("traefik/http/routers/p/priority")));
    assert_eq!(
        backend_of(p.web, "/p").as_deref(),
        Some("a"),
        "the update is refused whole"
    );
    // Fixed: applied (through polling).
    redis.command(&["DEL", "traefik/http/routers/p/priority"]);
    assert!(wait_until(Duration::from_secs(5), || backend_of(
        p.web, "/p"
    )
    .as_deref()
        == Some("b")));
}

#[test]
fn several_endpoints_without_sentinel_are_an_error() {
    // Several endpoints need Sentinel; Sentinel needs a master name and
    // the sentinels' endpoints.
    for (text, want) in [
        (
            "providers:\n  redis:\n    endpoints: [\"a:6379\", \"b:6379\"]\n",
            "providers.redis.endpoints[1]",
        ),
        (
            "providers:\n  redis:\n    sentinel:\n      masterName: m\n",
            "sentinel needs endpoints",
        ),
        (
            "providers:\n  redis:\n    endpoints: [\"a:26379\"]\n    sentinel:\n      password: x\n",
            "sentinel.masterName is required",
        ),
        (
            "providers:\n  redis:\n    endpoints: [\"a:26379\"]\n    sentinel:\n      masterName: m\n      latencyStrategy: true\n      replicaStrategy: true\n",
            "mutually exclusive",
        ),
    ] {
        let e = proxy::config::parse_static(
            text,
            proxy::config::Format::Yaml,
            std::path::Path::new("static.yml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(want) && e.contains("static.yml") && e.contains("sentinel"),
            "{e}"
        );
    }
    let ok = "providers:\n  redis:\n    endpoints: [\"a:26379\", \"b:26379\"]\n    sentinel:\n      masterName: m\n";
    proxy::config::parse_static(
        ok,
        proxy::config::Format::Yaml,
        std::path::Path::new("static.yml"),
    )
    .expect("several endpoints with sentinel");
}

/// A master, its replica and a sentinel (password `spw`) monitoring the
/// master as `m`; `None` (after a SKIP line) without `redis-server`.
fn sentinel_setup(test: &str, spw: &str) -> Option<(RedisServer, RedisServer, RedisServer)> {
    let master = RedisServer::start(test)?;
    let master_port = master.addr().port().to_string();
    let replica =
        RedisServer::start_with(test, &["--replicaof", "127.0.0.1", &master_port]).unwrap();
    let sentinel = RedisServer::start_sentinel(test, "m", &master, Some(spw)).unwrap();
    Some((master, replica, sentinel))
}

/// Routes are read from the master the sentinels name (the first
/// endpoint is dead: the next sentinel is asked), and after the master
/// is killed and the sentinel promotes its replica, the proxy follows:
/// the last good routes keep serving meanwhile, and a change written to
/// the new master is served. The sentinel's password is used, never logged.
#[test]
fn sentinel_master_is_followed_across_a_failover() {
    let spw = "sentinel-pw-never-logged";
    let Some((mut master, replica, sentinel)) =
        sentinel_setup("sentinel_master_is_followed_across_a_failover", spw)
    else {
        return;
    };
    let (a, b) = (backend("a"), backend("b"));
    set_all(&master, &route_pairs("traefik", "p", a.addr));
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let dir = TempDir::new("redis-sentinel");
    let text = format!(
        "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\nproviders:\n  redis:\n    endpoints: [\"{dead_addr}\", \"{}\"]\n    sentinel:\n      masterName: m\n      password: {spw}\n",
        sentinel.endpoint()
    );
    let p = ProxyProcess::start(&dir.write("static.yml", &text));
    assert!(
        wait_until(Duration::from_secs(10), || backend_of(p.web, "/p")
            .as_deref()
            == Some("a")),
        "routes from the sentinel's master"
    );
    // The replica holds the routes and the sentinel knows it.
    assert!(wait_until(Duration::from_secs(20), || {
        replica
            .command(&["GET", "traefik/http/routers/p/rule"])
            .starts_with('$')
            && !replica
                .command(&["GET", "traefik/http/routers/p/rule"])
                .starts_with("$-1")
            && sentinel
                .command_as(Some(spw), &["INFO", "sentinel"])
                .contains("slaves=1")
    }));
    master.stop();
    let killed = Instant::now();
    assert_eq!(
        backend_of(p.web, "/p").as_deref(),
        Some("a"),
        "the last good routes serve while the master is down"
    );
    let replica_port = replica.addr().port().to_string();
    assert!(
        wait_until(Duration::from_secs(30), || sentinel
            .command_as(Some(spw), &["SENTINEL", "get-master-addr-by-name", "m"])
            .contains(&replica_port)),
        "the sentinel promotes the replica"
    );
    let promoted = killed.elapsed();
    assert_eq!(backend_of(p.web, "/p").as_deref(), Some("a"));
    let r = replica.command(&[
        "SET",
        "traefik/http/services/svc-p/loadbalancer/servers/0/url",
        &format!("http://{}", b.addr),
    ]);
    assert!(
        r.starts_with("+OK"),
        "the promoted replica takes writes: {r}"
    );
    let written = Instant::now();
    assert!(
        wait_until(Duration::from_secs(10), || backend_of(p.web, "/p")
            .as_deref()
            == Some("b")),
        "the proxy follows the new master"
    );
    eprintln!(
        "sentinel promoted after {promoted:?}; change on the new master served after {:?}",
        written.elapsed()
    );
    let log = p.log.load();
    assert!(
        !log.iter().any(|l| l.contains(spw)),
        "the sentinel password in the log:\n{}",
        log.join("\n")
    );
}

#[test]
fn credentials_are_used_and_never_logged() {
    let pw = "s3cret-pw-never-logged";
    let Some(redis) = RedisServer::start_with("credentials_are_used", &["--requirepass", pw])
    else {
        return;
    };
    let a = backend("a");
    let mut args = vec!["MSET".to_owned()];
    for (k, v) in route_pairs("traefik", "p", a.addr) {
        args.push(k);
        args.push(v);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(redis.command_as(Some(pw), &refs).starts_with("+OK"));
    let dir = TempDir::new("redis-provider");
    let good = format!(
        "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\nproviders:\n  redis:\n    endpoints: [\"{}\"]\n    password: {pw}\n",
        redis.endpoint()
    );
    let p = ProxyProcess::start(&dir.write("good.yml", &good));
    assert!(wait_until(Duration::from_secs(10), || backend_of(
        p.web, "/p"
    )
    .as_deref()
        == Some("a")));
    // A wrong password: refused by the store, logged once, never shown.
    let wrong = good.replace(pw, "wrong-pw-never-logged");
    let q = ProxyProcess::start(&dir.write("wrong.yml", &wrong));
    assert!(wait_until(Duration::from_secs(10), || q
        .logged("cannot reach the provider")));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(backend_of(q.web, "/p"), None);
    for proc in [&p, &q] {
        let log = proc.log.load();
        assert!(
            !log.iter()
                .any(|l| l.contains(pw) || l.contains("wrong-pw-never-logged")),
            "a credential in the log:\n{}",
            log.join("\n")
        );
    }
    q.assert_unreachable_logged_once();
}

/// `SENTINEL FAILOVER` with both servers alive: the old master becomes a
/// replica (the sentinel closes its clients), and the proxy moves to the
/// promoted one; a wrong sentinel password is refused and logged once.
#[test]
fn sentinel_failover_of_a_live_master_is_followed() {
    let spw = "sentinel-pw";
    let Some((master, replica, sentinel)) =
        sentinel_setup("sentinel_failover_of_a_live_master_is_followed", spw)
    else {
        return;
    };
    let (a, b) = (backend("a"), backend("b"));
    set_all(&master, &route_pairs("traefik", "p", a.addr));
    let dir = TempDir::new("redis-sentinel");
    let cfg = |pw: &str| {
        format!(
            "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\nproviders:\n  redis:\n    endpoints: [\"{}\"]\n    sentinel:\n      masterName: m\n      password: {pw}\n",
            sentinel.endpoint()
        )
    };
    let p = ProxyProcess::start(&dir.write("good.yml", &cfg(spw)));
    let wrong = ProxyProcess::start(&dir.write("wrong.yml", &cfg("wrong-sentinel-pw")));
    assert!(wait_until(Duration::from_secs(10), || backend_of(
        p.web, "/p"
    )
    .as_deref()
        == Some("a")));
    assert!(wait_until(Duration::from_secs(10), || wrong
        .logged("cannot reach the provider")));
    assert_eq!(
        backend_of(wrong.web, "/p"),
        None,
        "a wrong password gets nothing"
    );
    assert!(wait_until(Duration::from_secs(20), || {
        replica
            .command(&["INFO", "replication"])
            .contains("master_link_status:up")
            && sentinel
                .command_as(Some(spw), &["INFO", "sentinel"])
                .contains("slaves=1")
    }));
    // The sentinel refuses (-NOGOODSLAVE) until it has its own fresh INFO
    // from the replica, which it asks for every few seconds.
    let mut r = String::new();
    assert!(
        wait_until(Duration::from_secs(30), || {
            r = sentinel.command_as(Some(spw), &["SENTINEL", "FAILOVER", "m"]);
            r.starts_with("+OK")
        }),
        "SENTINEL FAILOVER: {r}"
    );
    assert!(wait_until(Duration::from_secs(20), || replica
        .command(&["ROLE"])
        .contains("master")
        && master.command(&["ROLE"]).contains("slave")));
    let r = replica.command(&[
        "SET",
        "traefik/http/services/svc-p/loadbalancer/servers/0/url",
        &format!("http://{}", b.addr),
    ]);
    assert!(r.starts_with("+OK"), "{r}");
    assert!(
        wait_until(Duration::from_secs(20), || backend_of(p.web, "/p")
            .as_deref()
            == Some("b")),
        "the proxy follows the promoted replica"
    );
    wrong.assert_unreachable_logged_once();
}

/// `tls` against a Redis serving TLS only (its `--tls-port`; the plain
/// port is the test's own, to write the keys): with the CA that signed the
/// server's certificate the routes are served; with another CA the
/// handshake fails and the store is unreachable, logged once.
#[test]
fn tls_to_redis_is_verified_against_the_given_ca() {
    let certs = TempDir::new("redis-tls-certs");
    let tls = StoreTls::new(&certs);
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let args = [
        "--tls-port".to_owned(),
        tls_port.clone(),
        "--tls-cert-file".to_owned(),
        path(&tls.cert),
        "--tls-key-file".to_owned(),
        path(&tls.key),
        "--tls-ca-cert-file".to_owned(),
        path(&tls.ca),
        "--tls-auth-clients".to_owned(),
        "no".to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let Some(redis) =
        RedisServer::start_with("tls_to_redis_is_verified_against_the_given_ca", &args)
    else {
        return;
    };
    let a = backend("a");
    set_all(&redis, &route_pairs("traefik", "p", a.addr));
    tls.check(&TempDir::new("redis-tls"), |ca| {
        format!(
            "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\nproviders:\n  redis:\n    endpoints: [\"127.0.0.1:{tls_port}\"]\n    tls:\n      ca: \"{}\"\n",
            ca.display()
        )
    });
}
