//! The API against a real Traefik 3.7: the same configuration (routers that
//! fail to build included) served by both, the same API calls, the answers
//! compared field by field for the fields both have.
//!
//! The differences that remain, and why (the README lists them too):
//! - `error` texts: both list one entry per cause, worded differently (ours
//!   say file, line and key); only their presence is compared.
//! - a router whose rule does not parse: Traefik still shows its rule,
//!   service, priority and entrypoints and lists it in its service's
//!   `usedBy`; the proxy keeps only its name, status and errors.
//! - `observability` (Traefik's per-router tracing/metrics/access-log
//!   switches) and `loadBalancer.responseForwarding` are not shown: the
//!   proxy has neither option.
//! - `/api/version` names the proxy and its version.
//! - the children of `failover` and `mirroring` are shown without their
//!   provider, as they are usually written; one written `x@file` shows
//!   as `x` (Traefik: as written).
//!
//! Skipped, saying so, when no Traefik binary is found (see
//! `support/traefik.rs`).

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::traefik::{Traefik, find_traefik, free_ports, skip_message};
use support::*;

const DYNAMIC: &str = r#"http:
  routers:
    app:
      rule: "Host(`a.test`)"
      service: app
      middlewares: [strip, chained]
    weighted:
      rule: "Host(`w.test`) && PathPrefix(`/w`)"
      service: two
      priority: 7
      entryPoints: [web]
    missing:
      rule: "Host(`m.test`)"
      service: nowhere
    broken:
      rule: "Host(`c.test`"
      service: app
    dash:
      rule: "Host(`dash.test`)"
      service: api@internal
      entryPoints: [web]
    teapot:
      rule: "Host(`t.test`)"
      service: noop@internal
    failover:
      rule: "Host(`f.test`)"
      service: backup
    failover-plain:
      rule: "Host(`g.test`)"
      service: plain
    mirrored:
      rule: "Host(`mirror.test`)"
      service: copies
    byip:
      rule: "Host(`hrw.test`)"
      service: byip
  services:
    app:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:9"
    two:
      loadBalancer:
        passHostHeader: false
        servers:
          - url: "http://127.0.0.1:9"
            weight: 2
          - url: "http://127.0.0.1:10"
            weight: 1
    split:
      weighted:
        services:
          - name: app
            weight: 3
          - name: two
            weight: 1
        sticky:
          cookie:
            name: pin
            httpOnly: true
    checked:
      loadBalancer:
        healthCheck:
          path: /health
          interval: 1h
        servers:
          - url: "http://127.0.0.1:9"
    backup:
      failover:
        service: checked
        fallback: two
        errors:
          status: ["500-504", "418"]
          maxRequestBodyBytes: 1024
    plain:
      failover:
        service: checked
        fallback: app
        errors:
          status: []
    copies:
      mirroring:
        service: app
        maxBodySize: 2048
        mirrors:
          - name: two
            percent: 10
    byip:
      highestRandomWeight:
        services:
          - name: app
            weight: 2
          - name: two
  middlewares:
    auth:
      basicAuth:
        users: ["test:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M="]
        realm: inside
    strip:
      stripPrefix:
        prefixes: ["/x", "/y"]
    prefix:
      addPrefix:
        prefix: /p
    chained:
      chain:
        middlewares: [prefix]
    web:
      grpcWeb:
        allowOrigins: ["*", "https://a.test"]
    scheme:
      redirectScheme:
        scheme: https
        permanent: true
    rewrite:
      replacePath:
        path: /r
    outside:
      forwardAuth:
        address: "http://127.0.0.1:9/auth"
        trustForwardHeader: true
        authResponseHeaders: [X-User, X-Team]
        authRequestHeaders: [Cookie]
        maxResponseBodySize: 4096
    breaker:
      circuitBreaker:
        expression: "NetworkErrorRatio() > 0.5"
    breaker-tuned:
      circuitBreaker:
        expression: "LatencyAtQuantileMS(50.0) > 100"
        checkPeriod: 1s
        responseCode: 429
    buffered:
      buffering:
        maxRequestBodyBytes: 2000
        memResponseBodyBytes: 100
        retryExpression: "IsNetworkError() && Attempts() < 2"
"#;

fn static_cfg(web: SocketAddr, api: SocketAddr, dynamic: &std::path::Path) -> String {
    format!(
        "global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\nentryPoints:\n  web:\n    address: \"{web}\"\n  traefik:\n    address: \"{api}\"\napi:\n  insecure: true\nping: {{}}\nproviders:\n  file:\n    filename: \"{}\"\n    watch: false\nlog:\n  level: ERROR\n",
        dynamic.display()
    )
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    H1::connect(addr).await.get("api.test", path).await
}

fn by_name(v: &Value) -> std::collections::BTreeMap<String, Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e.clone()))
        .collect()
}

/// Records a difference in `field` of `what` unless both sides agree.
fn same(diffs: &mut Vec<String>, what: &str, field: &str, ours: &Value, theirs: &Value) {
    if ours != theirs {
        diffs.push(format!("{what}.{field}: proxy {ours} / traefik {theirs}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_as_traefik_does() {
    let Some(bin) = find_traefik() else {
        eprintln!("{}", skip_message("traefik_api"));
        return;
    };
    let dir = TempDir::new("traefik-api");
    let ports = free_ports(4);
    let addr = |i: usize| SocketAddr::from(([127, 0, 0, 1], ports[i]));
    let dynamic = dir.write("dynamic.yml", DYNAMIC);
    let traefik = Traefik::start(&bin, &dir, &static_cfg(addr(0), addr(1), &dynamic));
    let ours = dir.write("proxy.yml", &static_cfg(addr(2), addr(3), &dynamic));
    let running = start_file(&ours, 1);
    let (t_api, p_api) = (addr(1), running.addr("traefik").unwrap());

    // Traefik loads its providers asynchronously: wait for the routers.
    let t0 = Instant::now();
    loop {
        if let Ok(s) = tokio::net::TcpStream::connect(t_api).await
            && let Ok(r) = tokio::time::timeout(Duration::from_secs(2), async {
                let mut c = H1::from_stream(s).await;
                c.get("api.test", "/api/http/routers").await
            })
            .await
            && r.status == 200
            && r.json().as_array().is_some_and(|a| a.len() >= 10)
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "Traefik's API did not come up: {}",
            traefik.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut diffs = Vec::new();
    let mut compared = 0usize;
    let unparsed: BTreeSet<&str> = ["broken@file"].into();

    // Routers.
    let (p, t) = (
        by_name(&get(p_api, "/api/http/routers").await.json()),
        by_name(&get(t_api, "/api/http/routers").await.json()),
    );
    same(
        &mut diffs,
        "routers",
        "names",
        &serde_json::json!(p.keys().collect::<Vec<_>>()),
        &serde_json::json!(t.keys().collect::<Vec<_>>()),
    );
    for (name, tr) in &t {
        let Some(pr) = p.get(name) else { continue };
        let fields: &[&str] = if unparsed.contains(name.as_str()) {
            &["status", "provider"]
        } else {
            &[
                "status",
                "provider",
                "rule",
                "ruleSyntax",
                "priority",
                "priorityStr",
                "entryPoints",
                "using",
                "middlewares",
                "tls",
            ]
        };
        for f in fields {
            same(&mut diffs, name, f, &pr[*f], &tr[*f]);
            compared += 1;
        }
        if !unparsed.contains(name.as_str()) && tr["status"] == "enabled" {
            same(&mut diffs, name, "service", &pr["service"], &tr["service"]);
        }
        same(
            &mut diffs,
            name,
            "error (present)",
            &Value::Bool(pr["error"].is_array()),
            &Value::Bool(tr["error"].is_array()),
        );
        compared += 2;
    }

    // Services.
    let (p, t) = (
        by_name(&get(p_api, "/api/http/services").await.json()),
        by_name(&get(t_api, "/api/http/services").await.json()),
    );
    same(
        &mut diffs,
        "services",
        "names",
        &serde_json::json!(p.keys().collect::<Vec<_>>()),
        &serde_json::json!(t.keys().collect::<Vec<_>>()),
    );
    for (name, ts) in &t {
        let Some(ps) = p.get(name) else { continue };
        for f in ["status", "provider", "type", "serverStatus"] {
            same(&mut diffs, name, f, &ps[f], &ts[f]);
            compared += 1;
        }
        // A composite service's whole body, under its type's key.
        for key in ["weighted", "mirroring", "failover", "highestRandomWeight"] {
            if ts.get(key).is_some() || ps.get(key).is_some() {
                same(&mut diffs, name, key, &ps[key], &ts[key]);
                compared += 1;
            }
        }
        for f in ["servers", "passHostHeader", "strategy"] {
            same(
                &mut diffs,
                name,
                f,
                &ps["loadBalancer"][f],
                &ts["loadBalancer"][f],
            );
            compared += 1;
        }
        // usedBy, without the routers whose rule did not parse (Traefik
        // knows their service, the proxy does not).
        let used = |v: &Value| -> Value {
            let list: Vec<&Value> = v["usedBy"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|n| !unparsed.contains(n.as_str().unwrap_or("")))
                .collect();
            serde_json::json!(list)
        };
        same(&mut diffs, name, "usedBy", &used(ps), &used(ts));
        compared += 1;
    }

    // Middlewares: their options under their type's key.
    let (p, t) = (
        by_name(&get(p_api, "/api/http/middlewares").await.json()),
        by_name(&get(t_api, "/api/http/middlewares").await.json()),
    );
    same(
        &mut diffs,
        "middlewares",
        "names",
        &serde_json::json!(p.keys().collect::<Vec<_>>()),
        &serde_json::json!(t.keys().collect::<Vec<_>>()),
    );
    for (name, tm) in &t {
        let Some(pm) = p.get(name) else { continue };
        for f in ["status", "provider", "type", "usedBy"] {
            same(&mut diffs, name, f, &pm[f], &tm[f]);
            compared += 1;
        }
        let key = tm
            .as_object()
            .unwrap()
            .keys()
            .find(|k| {
                !matches!(
                    k.as_str(),
                    "status" | "usedBy" | "error" | "name" | "provider" | "type"
                )
            })
            .cloned()
            .unwrap_or_default();
        same(&mut diffs, name, &key, &pm[&key], &tm[&key]);
        compared += 1;
    }

    // Overview, entrypoints, the empty TCP/UDP lists.
    let (po, to) = (
        get(p_api, "/api/overview").await.json(),
        get(t_api, "/api/overview").await.json(),
    );
    for f in [
        "http",
        "tcp",
        "udp",
        "certificates",
        "features",
        "providers",
    ] {
        same(&mut diffs, "overview", f, &po[f], &to[f]);
        compared += 1;
    }
    let (pe, te) = (
        by_name(&get(p_api, "/api/entrypoints").await.json()),
        by_name(&get(t_api, "/api/entrypoints").await.json()),
    );
    for (name, tep) in &te {
        let pep = &pe[name];
        for f in ["transport", "forwardedHeaders", "http2", "http", "udp"] {
            same(
                &mut diffs,
                &format!("entrypoint {name}"),
                f,
                &pep[f],
                &tep[f],
            );
            compared += 1;
        }
    }
    for path in ["/api/tcp/routers", "/api/udp/services", "/api/certificates"] {
        same(
            &mut diffs,
            path,
            "body",
            &get(p_api, path).await.json(),
            &get(t_api, path).await.json(),
        );
        compared += 1;
    }

    // Pagination and errors.
    for path in [
        "/api/http/routers?per_page=4",
        "/api/http/routers?per_page=4&page=3",
        "/api/http/routers?per_page=0",
        "/api/http/routers?status=disabled",
        "/api/http/routers?search=W.TEST",
        "/api/http/routers?serviceName=app@file",
        "/api/http/routers?middlewareName=strip@file",
        "/api/http/services?search=two",
        "/api/http/routers/nope",
        "/api/http/services/nope",
        "/api/entrypoints/nope",
        "/api/tcp/routers/nope",
    ] {
        let (pr, tr) = (get(p_api, path).await, get(t_api, path).await);
        same(
            &mut diffs,
            path,
            "status",
            &serde_json::json!(pr.status.as_u16()),
            &serde_json::json!(tr.status.as_u16()),
        );
        same(
            &mut diffs,
            path,
            "X-Next-Page",
            &serde_json::json!(pr.headers.get("x-next-page").map(|v| v.to_str().unwrap())),
            &serde_json::json!(tr.headers.get("x-next-page").map(|v| v.to_str().unwrap())),
        );
        let (pj, tj) = (pr.json(), tr.json());
        // The names listed (a router whose rule did not parse has no
        // service here: left out), or the error message.
        let shape = |v: &Value| match v {
            Value::Array(a) => serde_json::json!(
                a.iter()
                    .map(|e| e["name"].clone())
                    .filter(|n| !unparsed.contains(n.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
            ),
            other => other["message"].clone(),
        };
        same(
            &mut diffs,
            path,
            "names or message",
            &shape(&pj),
            &shape(&tj),
        );
        compared += 3;
    }

    // The same requests through the routers to internal services.
    for (host, path) in [("dash.test", "/api/version"), ("t.test", "/")] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let (pa, ta) = (
            support::traefik::send(addr(2), std::net::Ipv4Addr::LOCALHOST, req.as_bytes())
                .await
                .unwrap(),
            support::traefik::send(addr(0), std::net::Ipv4Addr::LOCALHOST, req.as_bytes())
                .await
                .unwrap(),
        );
        same(
            &mut diffs,
            host,
            "status",
            &serde_json::json!(pa.status),
            &serde_json::json!(ta.status),
        );
        compared += 1;
    }

    eprintln!(
        "traefik_api: {compared} fields compared, {} differ",
        diffs.len()
    );
    running.shutdown(Some(Duration::from_millis(200)));
    assert!(
        diffs.is_empty(),
        "differences from Traefik:\n{}",
        diffs.join("\n")
    );
}
