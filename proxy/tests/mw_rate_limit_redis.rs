//! `rateLimit.redis` against a real `redis-server` started by the test:
//! one limit shared by two proxy processes (the `proxy` binary, twice),
//! and by a proxy and a real Traefik 3.7 on one Redis (the same keys and
//! bucket state, so a fleet can move from one to the other); Redis down
//! answers 500 as Traefik does and the limit comes back with Redis;
//! `password` and `db` are used; the options Traefik refuses, or that we
//! do not build (a Redis Cluster), are refused where written.

mod support;

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use support::redis::RedisServer;
use support::traefik::{self as tr, exchange};
use support::*;

const ONE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const BIN: &str = env!("CARGO_BIN_EXE_proxy");

/// A router `limited.test` behind `limit` (1 a minute, burst `burst`, in
/// `redis`), and `ready.test` without a limit, for readiness probes.
fn config(b: &Backend, redis: &str, burst: u32) -> String {
    format!(
        r#"http:
  routers:
    limited:
      rule: "Host(`limited.test`)"
      service: s
      middlewares: [limit]
    ready:
      rule: "Host(`ready.test`)"
      service: s
  services:
    s:
      loadBalancer:
        servers:
          - url: "http://{b}"
  middlewares:
    limit:
      rateLimit:
        average: 1
        period: 1m
        burst: {burst}
        redis:
{redis}"#,
        b = b.addr
    )
}

fn redis_block(server: &RedisServer, extra: &str) -> String {
    format!("          endpoints: [\"{}\"]\n{extra}", server.endpoint())
}

async fn ask(addr: SocketAddr, host: &str) -> String {
    let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let out = exchange(addr, ONE, req.as_bytes()).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

use support::{raw_header as header, raw_status as status};

/// The `proxy` binary on `dynamic`, entrypoint `web` on `port`; killed on
/// drop.
struct ProxyProcess {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl ProxyProcess {
    async fn start(dynamic: &str) -> ProxyProcess {
        let dir = TempDir::new("redis-proxy");
        dir.write("dynamic.yml", dynamic);
        let port = tr::free_ports(1)[0];
        let addr = SocketAddr::from((ONE, port));
        let stat = format!(
            "entryPoints:\n  web:\n    address: \"{addr}\"\nproviders:\n  file:\n    filename: \"{}/dynamic.yml\"\n",
            dir.path().display()
        );
        let file = dir.write("static.yml", &stat);
        let child = Command::new(BIN)
            .arg("--configFile")
            .arg(&file)
            .args(["--workers", "2", "--log-level", "ERROR"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut p = ProxyProcess {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(addr).is_ok() && status(&ask(addr, "ready.test").await) == 200 {
                return p;
            }
            if let Ok(Some(s)) = p.child.try_wait() {
                panic!("proxy exited: {s}");
            }
            assert!(Instant::now() < deadline, "proxy not ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_limit_holds_across_two_proxy_processes() {
    let Some(server) = RedisServer::start("a_shared_limit_holds_across_two_proxy_processes") else {
        return;
    };
    let b = backend("b");
    let dynamic = config(&b, &redis_block(&server, ""), 4);
    let first = ProxyProcess::start(&dynamic).await;
    let second = ProxyProcess::start(&dynamic).await;
    let before = b.stats.requests.load(Ordering::Relaxed);
    // Alternating between the two: the burst of 4 is for both together.
    let mut statuses = Vec::new();
    for i in 0..8 {
        let p = if i % 2 == 0 { &first } else { &second };
        statuses.push(status(&ask(p.addr, "limited.test").await));
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429, 429, 429]);
    assert_eq!(b.stats.requests.load(Ordering::Relaxed) - before, 4);
    let refused = ask(second.addr, "limited.test").await;
    assert_eq!(status(&refused), 429);
    let after: u64 = header(&refused, "retry-after").unwrap().parse().unwrap();
    assert!((50..=60).contains(&after), "Retry-After {after}");
    // The bucket is where Traefik keeps it.
    let state = server.command(&["HGETALL", "rate:limit@file:127.0.0.1"]);
    assert!(
        state.contains("last") && state.contains("tokens"),
        "{state}"
    );
    let ttl = server.command(&["TTL", "rate:limit@file:127.0.0.1"]);
    assert!(ttl.starts_with(":") && ttl != ":-1\r\n", "{ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_answers_500_as_traefik_and_the_limit_comes_back() {
    let Some(mut server) = RedisServer::start("redis_down_answers_500") else {
        return;
    };
    let b = backend("b");
    let p = start_proxy(&config(
        &b,
        &redis_block(&server, "          dialTimeout: 1s\n"),
        2,
    ));
    assert_eq!(status(&ask(p.web, "limited.test").await), 200);
    server.stop();
    let t = Instant::now();
    let r = ask(p.web, "limited.test").await;
    assert_eq!(status(&r), 500, "{r}");
    assert!(
        r.ends_with("\r\n\r\nCould not insert/update bucket\n"),
        "{r}"
    );
    assert_eq!(
        header(&r, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    // Routers without the limit do not care.
    assert_eq!(status(&ask(p.web, "ready.test").await), 200);
    server.restart();
    // Back (empty: a full bucket of 2) once the connection is re-made.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    loop {
        let s = status(&ask(p.web, "limited.test").await);
        seen.push(s);
        if s == 200 {
            break;
        }
        assert_eq!(s, 500);
        assert!(Instant::now() < deadline, "never recovered: {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status(&ask(p.web, "limited.test").await), 200);
    assert_eq!(status(&ask(p.web, "limited.test").await), 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_and_db_are_used() {
    let Some(server) =
        RedisServer::start_with("password_and_db_are_used", &["--requirepass", "pw"])
    else {
        return;
    };
    let b = backend("b");
    let p = start_proxy(&config(
        &b,
        &redis_block(&server, "          password: pw\n          db: 5\n"),
        1,
    ));
    assert_eq!(status(&ask(p.web, "limited.test").await), 200);
    assert_eq!(status(&ask(p.web, "limited.test").await), 429);
    let key = "rate:limit@file:127.0.0.1";
    assert_eq!(
        server.command_as(Some("pw"), &["EXISTS", key]),
        ":0\r\n",
        "not in db 0"
    );
    // A wrong password: every limited request is answered 500.
    let b2 = backend("b2");
    let wrong = start_proxy(&config(
        &b2,
        &redis_block(&server, "          password: nope\n"),
        1,
    ));
    assert_eq!(status(&ask(wrong.web, "limited.test").await), 500);
    assert_eq!(b2.stats.requests.load(Ordering::Relaxed), 0);
}

#[test]
fn options_are_checked_where_written() {
    let cases: [(&str, &str); 4] = [
        (
            "          endpoints: [\"a:6379\", \"b:6379\"]\n",
            "several endpoints (a Redis Cluster) are not supported yet",
        ),
        ("          db: -1\n", "db must not be negative"),
        (
            "          endpoints: [\"host:port\"]\n",
            "endpoint \"host:port\" is not host:port",
        ),
        (
            "          tls:\n            cert: /nonexistent.pem\n",
            "both cert and key must be defined",
        ),
    ];
    let b = backend("b");
    for (block, expected) in cases {
        let text = config(&b, block, 1);
        let errors = dynamic_errors(&text);
        assert!(errors.contains(expected), "{block}: {errors}");
        assert!(
            errors.contains("middlewares.limit.rateLimit.redis"),
            "{block}: {errors}"
        );
    }
    // The pool's sizes are accepted (a warning, not an error).
    let text = config(
        &b,
        "          poolSize: 10\n          maxActiveConns: 3\n",
        1,
    );
    try_start_proxy(&text)
        .unwrap()
        .shutdown(Some(Duration::from_millis(200)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_and_traefik_share_one_limit() {
    let Some(bin) = tr::find_traefik() else {
        eprintln!(
            "{}",
            tr::skip_message("a_proxy_and_traefik_share_one_limit")
        );
        return;
    };
    let Some(server) = RedisServer::start("a_proxy_and_traefik_share_one_limit") else {
        return;
    };
    let b = backend("b");
    let dynamic = config(&b, &redis_block(&server, ""), 4);
    let dir = TempDir::new("traefik-redis");
    let dyn_file = dir.write("dynamic.yml", &dynamic);
    let port = tr::free_ports(1)[0];
    let traefik_addr = SocketAddr::from((ONE, port));
    let traefik = tr::Traefik::start(
        &bin,
        &dir,
        &tr::static_yaml(
            &[("web".into(), traefik_addr, String::new())],
            &dyn_file,
            None,
        ),
    );
    tr::wait_ready(
        traefik_addr,
        "ready.test",
        "b",
        "traefik",
        Duration::from_secs(30),
        || traefik.log_text(),
    )
    .await;
    let p = start_proxy(&dynamic);
    let mut statuses = Vec::new();
    for i in 0..8 {
        let addr = if i % 2 == 0 { traefik_addr } else { p.web };
        statuses.push(status(&ask(addr, "limited.test").await));
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 429, 429, 429, 429],
        "Traefik, proxy, Traefik, ...; Traefik's log:\n{}",
        traefik.log_text()
    );
}
