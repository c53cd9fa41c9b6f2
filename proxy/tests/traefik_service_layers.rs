//! Service middlewares under a `mirroring` and a `failover` with `errors`
//! against a real Traefik 3.7 (skipped, saying so, when no Traefik binary
//! is found; see `support::traefik`): the same dynamic configuration
//! given to both (each with backends of its own), the same requests sent,
//! compared for each: the answer (status, backend, the headers and path
//! the backend saw, the response headers the middlewares add), and what
//! the mirrors' backends saw of their copies (path and marks), and that a
//! copy refused by its mirror's `ipAllowList` reaches nothing.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use support::traefik::{Traefik, exchange, find_traefik, free_ports, skip_message, wait_ready};
use support::*;

const READY_HOST: &str = "ready.svc-layers.invalid";

/// The marks the middlewares set, on requests and answers.
const MARKS: [&str; 5] = ["x-outer", "x-main", "x-copy", "x-spare", "x-main-answer"];

/// One side's backends.
struct Side {
    ready: Backend,
    main: Backend,
    copy: Backend,
    refused: Backend,
    spare: Backend,
}

impl Side {
    fn new() -> Side {
        Side {
            ready: backend("ready"),
            main: backend("main"),
            copy: backend("copy"),
            refused: backend("refused"),
            spare: backend("spare"),
        }
    }

    fn dynamic(&self) -> String {
        let mark = |name: &str, header: &str| {
            format!(
                "    {name}:\n      headers:\n        customRequestHeaders:\n          {header}: \"yes\"\n"
            )
        };
        format!(
            r#"http:
  routers:
    ready:
      rule: "Host(`{READY_HOST}`)"
      service: ready
    mirror:
      rule: "Host(`m.test`)"
      service: m
    failover:
      rule: "Host(`f.test`)"
      service: f
    locked:
      rule: "Host(`l.test`)"
      service: fl
    nested:
      rule: "Host(`n.test`)"
      service: nf
    bare-mirror:
      rule: "Host(`bm.test`)"
      service: bm
    bare-failover:
      rule: "Host(`bf.test`)"
      service: bf
  services:
    ready:
      loadBalancer:
        servers:
          - url: "http://{ready}"
    m:
      mirroring:
        service: main
        mirrors:
          - name: copy
            percent: 100
          - name: refused
            percent: 100
    f:
      failover:
        service: main
        fallback: spare
        errors:
          status: ["500-599"]
    fl:
      failover:
        service: locked
        fallback: spare
        errors:
          status: ["403"]
    nf:
      middlewares: [outer]
      failover:
        service: nm
        fallback: spare
        errors:
          status: ["500-599"]
    nm:
      mirroring:
        service: main
        mirrors:
          - name: copy
            percent: 100
    bm:
      mirroring:
        service: bare
        mirrors:
          - name: copy
            percent: 100
    bf:
      failover:
        service: bare
        fallback: spare
        errors:
          status: ["404"]
    bare:
      loadBalancer:
        servers:
          - url: "http://{main}"
    main:
      middlewares: [main-mark]
      loadBalancer:
        servers:
          - url: "http://{main}"
    locked:
      middlewares: [nobody]
      loadBalancer:
        servers:
          - url: "http://{main}"
    copy:
      middlewares: [copy-mark, copy-prefix]
      loadBalancer:
        servers:
          - url: "http://{copy}"
    refused:
      middlewares: [nobody]
      loadBalancer:
        servers:
          - url: "http://{refused}"
    spare:
      middlewares: [spare-mark, spare-prefix]
      loadBalancer:
        servers:
          - url: "http://{spare}"
  middlewares:
{outer}{copy_mark}{spare_mark}    main-mark:
      headers:
        customRequestHeaders:
          X-Main: "yes"
        customResponseHeaders:
          X-Main-Answer: "yes"
    copy-prefix:
      addPrefix:
        prefix: /c
    spare-prefix:
      addPrefix:
        prefix: /s
    nobody:
      ipAllowList:
        sourceRange: ["10.9.9.9/32"]
"#,
            ready = self.ready.addr,
            main = self.main.addr,
            copy = self.copy.addr,
            refused = self.refused.addr,
            spare = self.spare.addr,
            outer = mark("outer", "X-Outer"),
            copy_mark = mark("copy-mark", "X-Copy"),
            spare_mark = mark("spare-mark", "X-Spare"),
        )
    }
}

/// The status, backend, marks and path of a raw answer.
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
        "{status} backend={:?} x-main-answer={:?}",
        value("x-backend"),
        value("x-main-answer")
    );
    match serde_json::from_str::<Value>(body) {
        Ok(v) if v.get("headers").is_some() => {
            out += &format!(" | path {}", v["path"]);
            for name in MARKS.iter().chain(&["content-length"]) {
                out += &format!(" {name}={}", v["headers"][name]);
            }
        }
        _ => out += &format!(" | body {body:?}"),
    }
    out
}

/// What backend `b` saw of its last request (path and marks), once it has
/// had `n` requests.
async fn last_seen(b: &Backend, n: u64) -> String {
    let arrived = eventually(5, async || b.stats.requests.load(Ordering::Relaxed) >= n).await;
    let Some(last) = b.stats.last().filter(|_| arrived) else {
        return format!("{}: no request {n}", b.name);
    };
    let mut out = format!("{} path {}", b.name, last.0);
    for name in MARKS {
        out += &format!(" {name}={:?}", last.1.get(name));
    }
    out
}

async fn ask(addr: SocketAddr, host: &str, method: &str, target: &str) -> Vec<u8> {
    let body = if method == "POST" {
        "Content-Length: 7\r\n\r\npayload"
    } else {
        "\r\n"
    };
    let req = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{body}");
    exchange(addr, Ipv4Addr::LOCALHOST, req.as_bytes())
        .await
        .unwrap()
}

/// Every request of the comparison, in order, and what the backends saw:
/// one line per observation.
async fn observe(web: SocketAddr, side: &Side) -> Vec<String> {
    let mut out = Vec::new();
    // A mirroring: the main service's middlewares and each mirror's.
    out.push(digest(&ask(web, "m.test", "GET", "/x").await));
    out.push(last_seen(&side.copy, 1).await);
    // A failover: the main answers, then its 500 goes to the fallback,
    // then the 403 its own ipAllowList answers does.
    out.push(digest(&ask(web, "f.test", "GET", "/x").await));
    out.push(digest(&ask(web, "f.test", "POST", "/status/500").await));
    out.push(last_seen(&side.spare, 1).await);
    out.push(digest(&ask(web, "l.test", "GET", "/y").await));
    // Nested: a mirroring as the main service of a failover.
    out.push(digest(&ask(web, "n.test", "GET", "/status/502").await));
    out.push(last_seen(&side.main, 4).await);
    out.push(last_seen(&side.copy, 2).await);
    out.push(last_seen(&side.spare, 3).await);
    // Only the mirror, or only the fallback, has middlewares.
    out.push(digest(&ask(web, "bm.test", "GET", "/z").await));
    out.push(last_seen(&side.copy, 3).await);
    out.push(digest(&ask(web, "bf.test", "GET", "/status/404").await));
    out.push(last_seen(&side.spare, 4).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    out.push(format!(
        "requests: main {} refused {}",
        side.main.stats.requests.load(Ordering::Relaxed),
        side.refused.stats.requests.load(Ordering::Relaxed)
    ));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_middlewares_under_mirrorings_and_failovers_answer_as_traefik() {
    let test = "service_middlewares_under_mirrorings_and_failovers_answer_as_traefik";
    let Some(bin) = find_traefik() else {
        eprintln!("{}", skip_message(test));
        return;
    };
    let (theirs, ours) = (Side::new(), Side::new());
    let dir = TempDir::new("traefik-svc-layers");
    let ports = free_ports(2);
    let addr = |i: usize| SocketAddr::from(([127, 0, 0, 1], ports[i]));
    let static_for = |i: usize, dynamic: &str| {
        let path = dir.write(&format!("dynamic{i}.yml"), dynamic);
        support::traefik::static_yaml(&[("web".to_owned(), addr(i), String::new())], &path, None)
    };
    let traefik = Traefik::start(&bin, &dir, &static_for(0, &theirs.dynamic()));
    let proxy_cfg = dir.write("proxy.yml", &static_for(1, &ours.dynamic()));
    let running = start_file(&proxy_cfg, 1);
    let (t_web, p_web) = (addr(0), running.addr("web").unwrap());
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
    let (t, p) = (observe(t_web, &theirs).await, observe(p_web, &ours).await);
    let wrong: Vec<String> = t
        .iter()
        .zip(&p)
        .filter(|(t, p)| t != p)
        .map(|(t, p)| format!("- traefik {t}\n  proxy   {p}"))
        .collect();
    for line in &p {
        eprintln!("{line}");
    }
    assert!(
        wrong.is_empty(),
        "differences from Traefik:\n{}",
        wrong.join("\n")
    );
}
