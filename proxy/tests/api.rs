//! The API, the internal services and explain over real sockets: Traefik's
//! paths, shapes, filters and pagination on the `traefik` entrypoint with
//! `api.insecure`; `api@internal` and the other internal services behind a
//! user router and its middlewares; the reload history; explain checked
//! against what the proxy actually routes.

mod support;

use std::time::{Duration, Instant};

use http::{Method, Request, StatusCode};
use serde_json::Value;
use support::*;

/// web and traefik on free ports, the API insecure, ping (and `extra`).
fn insecure_static(extra: &str) -> String {
    static_yaml(&format!("api:\n  insecure: true\nping: {{}}\n{extra}")).replacen(
        "providers:",
        "  traefik:\n    address: \"127.0.0.1:0\"\nproviders:",
        1,
    )
}

fn dynamic(ok: &Backend) -> String {
    format!(
        r#"http:
  routers:
    app:
      rule: "Host(`a.test`)"
      service: app
      middlewares: [strip]
    other:
      rule: "Host(`b.test`) && PathPrefix(`/x`)"
      service: app
    missing:
      rule: "Host(`m.test`)"
      service: nowhere
    broken:
      rule: "Host(`c.test`"
      service: app
  services:
    app:
      loadBalancer:
        servers:
          - url: "http://{}"
  middlewares:
    strip:
      stripPrefix:
        prefixes: ["/x"]
    unused:
      addPrefix:
        prefix: /y
"#,
        ok.addr
    )
}

async fn api(addr: std::net::SocketAddr, path: &str) -> Reply {
    H1::connect(addr).await.get("proxy.test", path).await
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_api_lists_routers_services_middlewares_as_traefik() {
    let ok = backend("ok");
    let p = start_proxy_static(&dynamic(&ok), &insecure_static(""), 1);
    let t = p.addr("traefik");

    let r = api(t, "/api/http/routers").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["x-next-page"], "1");
    let routers = r.json();
    assert_eq!(
        names(&routers),
        [
            "api@internal",
            "app@file",
            "broken@file",
            "dashboard@internal",
            "missing@file",
            "other@file",
            "ping@internal"
        ]
    );
    let by = |n: &str| {
        routers
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .unwrap()
            .clone()
    };
    let app = by("app@file");
    assert_eq!(app["status"], "enabled");
    assert_eq!(app["provider"], "file");
    assert_eq!(app["rule"], "Host(`a.test`)");
    assert_eq!(app["service"], "app");
    assert_eq!(app["priority"], 14);
    assert_eq!(app["priorityStr"], "14");
    // The traefik entrypoint is never a default one, as in Traefik.
    assert_eq!(app["entryPoints"], serde_json::json!(["web"]));
    assert_eq!(app["using"], serde_json::json!(["web"]));
    assert_eq!(app["middlewares"], serde_json::json!(["strip@file"]));
    for bad in ["missing@file", "broken@file"] {
        let b = by(bad);
        assert_eq!(b["status"], "disabled", "{b}");
        let errors = b["error"].as_array().unwrap();
        assert!(!errors.is_empty(), "{b}");
    }
    assert!(
        by("missing@file")["error"][0]
            .as_str()
            .unwrap()
            .contains("unknown service \"nowhere\"")
    );
    let dash = by("dashboard@internal");
    assert_eq!(dash["provider"], "internal");
    assert_eq!(dash["priority"], i64::MAX - 2);
    assert_eq!(dash["entryPoints"], serde_json::json!(["traefik"]));

    // One router; an unknown one with Traefik's message.
    let one = api(t, "/api/http/routers/app@file").await.json();
    assert_eq!(one, app);
    let missing = api(t, "/api/http/routers/nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["message"], "router not found: nope");

    // Services: servers with their status, who uses them.
    let services = api(t, "/api/http/services").await.json();
    assert_eq!(
        names(&services),
        [
            "api@internal",
            "app@file",
            "dashboard@internal",
            "noop@internal",
            "ping@internal"
        ]
    );
    let svc = api(t, "/api/http/services/app@file").await.json();
    assert_eq!(svc["type"], "loadbalancer");
    assert_eq!(svc["status"], "enabled");
    let url = format!("http://{}", ok.addr);
    assert_eq!(svc["loadBalancer"]["servers"][0]["url"], url.as_str());
    assert_eq!(svc["loadBalancer"]["passHostHeader"], true);
    assert_eq!(svc["serverStatus"][&url], "UP");
    assert_eq!(svc["usedBy"], serde_json::json!(["app@file", "other@file"]));

    let mws = api(t, "/api/http/middlewares").await.json();
    assert_eq!(
        names(&mws),
        [
            "dashboard_redirect@internal",
            "dashboard_stripprefix@internal",
            "strip@file",
            "unused@file"
        ]
    );
    let strip = api(t, "/api/http/middlewares/strip@file").await.json();
    assert_eq!(strip["type"], "stripprefix");
    assert_eq!(strip["stripPrefix"]["prefixes"], serde_json::json!(["/x"]));
    assert_eq!(strip["usedBy"], serde_json::json!(["app@file"]));
    assert!(api(t, "/api/http/middlewares/unused@file").await.json()["usedBy"].is_null());

    // The overview counts what the lists hold.
    let o = api(t, "/api/overview").await.json();
    assert_eq!(o["http"]["routers"]["total"], 7);
    assert_eq!(o["http"]["routers"]["errors"], 2);
    assert_eq!(o["http"]["services"]["total"], 5);
    assert_eq!(o["http"]["middlewares"]["total"], 4);
    assert_eq!(o["tcp"]["routers"]["total"], 0);
    assert_eq!(o["providers"], serde_json::json!(["File"]));
    assert_eq!(o["features"]["metrics"], "");

    // rawdata: the same objects by name.
    let raw = api(t, "/api/rawdata").await.json();
    assert_eq!(raw["routers"]["app@file"]["rule"], "Host(`a.test`)");
    assert_eq!(raw["services"]["app@file"]["serverStatus"][&url], "UP");

    // Entrypoints, version, the empty TCP/UDP lists and certificates.
    let eps = api(t, "/api/entrypoints").await.json();
    assert_eq!(names(&eps), ["traefik", "web"]);
    assert_eq!(
        eps[1]["transport"]["respondingTimeouts"]["readTimeout"],
        "1m0s"
    );
    assert_eq!(
        eps[1]["transport"]["respondingTimeouts"]["idleTimeout"],
        "3m0s"
    );
    assert_eq!(eps[1]["http2"]["maxConcurrentStreams"], 250);
    assert_eq!(api(t, "/api/entrypoints/web").await.json()["name"], "web");
    assert_eq!(
        api(t, "/api/entrypoints/nope").await.status,
        StatusCode::NOT_FOUND
    );
    let v = api(t, "/api/version").await.json();
    assert_eq!(v["Version"], env!("CARGO_PKG_VERSION"));
    assert!(v["startDate"].as_str().unwrap().ends_with('Z'));
    for empty in [
        "/api/tcp/routers",
        "/api/tcp/services",
        "/api/tcp/middlewares",
        "/api/udp/routers",
        "/api/udp/services",
        "/api/certificates",
    ] {
        let r = api(t, empty).await;
        assert_eq!(r.status, StatusCode::OK, "{empty}");
        assert_eq!(r.json(), serde_json::json!([]), "{empty}");
    }
    assert_eq!(
        api(t, "/api/tcp/routers/x").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(api(t, "/api/nothing").await.status, StatusCode::NOT_FOUND);

    // A method the API does not have: 405, as gorilla/mux answers.
    let mut c = H1::connect(t).await;
    let post = Request::builder()
        .method(Method::POST)
        .uri("/api/overview")
        .header("host", "proxy.test")
        .body(empty())
        .unwrap();
    assert_eq!(
        c.send(post).await.unwrap().status,
        StatusCode::METHOD_NOT_ALLOWED
    );

    // ping still answers on the traefik entrypoint, above the dashboard.
    assert_eq!(api(t, "/ping").await.text(), "OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_filter_sort_and_page_as_traefik() {
    let ok = backend("ok");
    let p = start_proxy_static(&dynamic(&ok), &insecure_static(""), 1);
    let t = p.addr("traefik");

    let page1 = api(t, "/api/http/routers?per_page=3").await;
    assert_eq!(page1.headers["x-next-page"], "2");
    assert_eq!(names(&page1.json()).len(), 3);
    let page3 = api(t, "/api/http/routers?per_page=3&page=3").await;
    assert_eq!(page3.headers["x-next-page"], "1");
    assert_eq!(names(&page3.json()), ["ping@internal"]);
    let beyond = api(t, "/api/http/routers?per_page=3&page=4").await;
    assert_eq!(beyond.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        beyond.json()["message"],
        "invalid request: page: 4, per_page: 3"
    );
    let zero = api(t, "/api/http/routers?per_page=0").await;
    assert_eq!(zero.status, StatusCode::BAD_REQUEST);
    assert_eq!(zero.json()["message"], "invalid request: per_page: 0");

    let disabled = api(t, "/api/http/routers?status=disabled").await.json();
    assert_eq!(names(&disabled), ["broken@file", "missing@file"]);
    // search looks in the rule and the name, case-insensitively.
    let search = api(t, "/api/http/routers?search=B.TEST").await.json();
    assert_eq!(names(&search), ["other@file"]);
    let by_service = api(t, "/api/http/routers?serviceName=app@file")
        .await
        .json();
    assert_eq!(names(&by_service), ["app@file", "other@file"]);
    let by_mw = api(t, "/api/http/routers?middlewareName=strip@file")
        .await
        .json();
    assert_eq!(names(&by_mw), ["app@file"]);
    let svc_search = api(t, "/api/http/services?search=noop").await.json();
    assert_eq!(names(&svc_search), ["noop@internal"]);
    let by_priority = api(t, "/api/http/routers?sortBy=priority&direction=desc")
        .await
        .json();
    assert_eq!(names(&by_priority)[0], "ping@internal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_is_served_on_the_traefik_entrypoint_with_its_redirect() {
    let ok = backend("ok");
    let p = start_proxy_static(&dynamic(&ok), &insecure_static(""), 1);
    let t = p.addr("traefik");
    let root = api(t, "/").await;
    assert_eq!(root.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(root.headers["location"], "http://proxy.test/dashboard/");
    let page = api(t, "/dashboard/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    assert!(page.text().contains("<script src=\"app.js\""));
    let js = api(t, "/dashboard/app.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.text().contains("../api/"));
    assert_eq!(api(t, "/dashboard/style.css").await.status, StatusCode::OK);
    assert_eq!(
        api(t, "/dashboard/nope.js").await.status,
        StatusCode::NOT_FOUND
    );
    // Nothing on the other entrypoints.
    assert_eq!(
        api(p.web, "/api/overview").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_services_answer_behind_their_routers_middlewares() {
    let dynamic = r#"http:
  routers:
    admin:
      rule: "Host(`admin.test`)"
      service: api@internal
      middlewares: [guard]
    health:
      rule: "Host(`ping.test`)"
      service: ping@internal
    scrape:
      rule: "Host(`metrics.test`)"
      service: prometheus@internal
    nothing:
      rule: "Host(`noop.test`)"
      service: noop@internal
    dash:
      rule: "Host(`dash.test`)"
      service: dashboard@internal
  middlewares:
    guard:
      headers:
        customResponseHeaders:
          X-Guard: "on"
"#;
    let p = start_proxy_static(
        dynamic,
        &static_yaml(
            "api: {}\nping:\n  manualRouting: true\nmetrics:\n  prometheus:\n    manualRouting: true\n",
        ),
        1,
    );
    assert!(
        p.running().addr("traefik").is_none(),
        "without insecure, nothing asks for the traefik entrypoint"
    );
    let mut c = H1::connect(p.web).await;
    let v = c.get("admin.test", "/api/version").await;
    assert_eq!(v.status, StatusCode::OK);
    assert_eq!(v.headers["x-guard"], "on", "the router's middleware ran");
    let routers = c.get("admin.test", "/api/http/routers").await.json();
    assert!(names(&routers).contains(&"admin@file".to_owned()));
    // No insecure mode: no internal api/dashboard routers.
    assert!(!names(&routers).contains(&"api@internal".to_owned()));
    // api@internal serves the dashboard too (dashboard on by default).
    let root = c.get("admin.test", "/").await;
    assert_eq!(root.status, StatusCode::FOUND);
    assert_eq!(root.headers["location"], "/dashboard/");
    assert!(
        c.get("admin.test", "/dashboard/")
            .await
            .text()
            .contains("app.js")
    );

    assert_eq!(c.get("ping.test", "/anything").await.text(), "OK");
    let m = c.get("metrics.test", "/").await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(
        m.text().contains("proxy_config_reloads_total"),
        "{}",
        m.text()
    );
    assert_eq!(
        c.get("noop.test", "/").await.status,
        StatusCode::IM_A_TEAPOT
    );
    let d = c.get("dash.test", "/").await;
    assert_eq!(d.status, StatusCode::OK);
    assert!(d.text().contains("<html"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_service_the_static_configuration_lacks_disables_its_router() {
    let dynamic = r#"http:
  routers:
    admin:
      rule: "Host(`admin.test`)"
      service: api@internal
    unknown:
      rule: "Host(`u.test`)"
      service: whatever@internal
"#;
    let p = start_proxy(dynamic);
    let mut c = H1::connect(p.web).await;
    // Disabled, keeping its place: 503, not a fall-through.
    assert_eq!(
        c.get("admin.test", "/api/version").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        c.get("u.test", "/").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let snap = p.running().control().snapshot().load_full();
    let d = snap
        .disabled
        .iter()
        .find(|d| d.name == "admin")
        .expect("admin is disabled");
    assert!(
        d.errors[0]
            .message
            .contains("the service \"api@internal\" does not exist")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_shows_a_reload_and_the_reload_history() {
    let ok = backend("ok");
    let p = start_proxy_static(&dynamic(&ok), &insecure_static(""), 1);
    let t = p.addr("traefik");
    assert!(!names(&api(t, "/api/http/routers").await.json()).contains(&"new@file".to_owned()));
    let added = dynamic(&ok).replace(
        "  services:\n",
        "    new:\n      rule: \"Host(`new.test`)\"\n      service: app\n  services:\n",
    );
    std::fs::write(p.dynamic_path(), added).unwrap();
    p.running().control().reload().unwrap();
    assert!(names(&api(t, "/api/http/routers").await.json()).contains(&"new@file".to_owned()));

    std::fs::write(p.dynamic_path(), "http: [not: valid").unwrap();
    assert!(p.running().control().reload().is_err());
    let reloads = api(t, "/api/proxy/reloads").await.json();
    let reloads = reloads.as_array().unwrap();
    assert_eq!(reloads.len(), 3, "{reloads:?}");
    assert_eq!(reloads[0]["generation"], 1);
    assert_eq!(reloads[0]["result"], "applied");
    assert_eq!(reloads[0]["disabled"], 2);
    assert_eq!(reloads[1]["generation"], 2);
    assert_eq!(reloads[2]["result"], "rejected");
    assert_eq!(reloads[2]["generation"], 2, "the running generation stays");
    assert!(!reloads[2]["errors"].as_array().unwrap().is_empty());
    // The rejected load kept what was running.
    assert!(names(&api(t, "/api/http/routers").await.json()).contains(&"new@file".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_figures_come_from_the_metrics_the_proxy_keeps() {
    let ok = backend("ok");
    let p = start_proxy_static(
        &dynamic(&ok),
        &insecure_static("metrics:\n  prometheus:\n    addRoutersLabels: true\n"),
        1,
    );
    let t = p.addr("traefik");
    let mut c = H1::connect(p.web).await;
    for _ in 0..5 {
        assert_eq!(c.get("a.test", "/").await.status, StatusCode::OK);
    }
    assert_eq!(
        c.get("m.test", "/").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Records are finished when the response body ends: wait for them.
    let t0 = Instant::now();
    let live = loop {
        let live = api(t, "/api/proxy/live").await.json();
        if live["routers"]["app@file"]["requests"] == 5 || t0.elapsed() > Duration::from_secs(5) {
            break live;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(live["metrics"], true);
    assert_eq!(live["routerLabels"], true);
    let app = &live["routers"]["app@file"];
    assert_eq!(app["requests"], 5, "{live}");
    assert_eq!(app["codes"]["2xx"], 5);
    assert_eq!(app["count"], 5);
    assert_eq!(live["services"]["app@file"]["requests"], 5);
    let decisions: u64 = live["decisionNanos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[1].as_u64().unwrap())
        .sum();
    assert!(decisions >= 6, "{decisions}");
}

// === explain ===

/// Routers with priorities, regexes, `!` and `||`, each to its own backend.
fn explain_dynamic(backends: &[Backend]) -> String {
    let mut s = String::from(
        r#"http:
  routers:
    exact:
      rule: "Host(`shop.test`) && Path(`/cart`)"
      service: s0
    regex:
      rule: "HostRegexp(`^[a-z]+\\.shop\\.test$`) && PathRegexp(`^/api/v[0-9]+/`)"
      service: s1
      priority: 100
    not-admin:
      rule: "Host(`shop.test`) && !PathPrefix(`/admin`)"
      service: s2
    either:
      rule: "(Host(`a.test`) || Host(`b.test`)) && Method(`POST`)"
      service: s3
    header:
      rule: "Host(`shop.test`) && Header(`X-Beta`, `1`)"
      service: s4
      priority: 200
    fallback:
      rule: "PathPrefix(`/`)"
      service: s5
      priority: -1
    broken:
      rule: "Host(`down.test`)"
      service: s0
      middlewares: [nowhere]
    legacy:
      rule: "Host(`old.test`) && PathPrefix(`/v/{id:[0-9]+}`)"
      ruleSyntax: v2
      service: s3
    secure:
      rule: "Host(`shop.test`) && PathPrefix(`/pay`)"
      service: s4
      tls: {}
  services:
"#,
    );
    for (i, b) in backends.iter().enumerate() {
        s += &format!(
            "    s{i}:\n      loadBalancer:\n        servers:\n          - url: \"http://{}\"\n",
            b.addr
        );
    }
    s
}

/// A request: method, host, path, headers.
type Case<'a> = (&'a str, &'a str, &'a str, &'a [(&'a str, &'a str)]);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_names_the_router_the_proxy_really_routes_to() {
    let backends: Vec<Backend> = (0..6).map(|i| backend(&format!("b{i}"))).collect();
    let p = start_proxy_static(&explain_dynamic(&backends), &insecure_static(""), 1);
    let t = p.addr("traefik");
    let cases: &[Case] = &[
        ("GET", "shop.test", "/cart", &[]),
        ("GET", "shop.test", "/", &[]),
        ("GET", "shop.test", "/admin/x", &[]),
        ("GET", "shop.test", "/cart", &[("X-Beta", "1")]),
        ("GET", "eu.shop.test", "/api/v2/items", &[]),
        ("GET", "eu.shop.test", "/api/vx/items", &[]),
        ("POST", "b.test", "/", &[]),
        ("GET", "b.test", "/", &[]),
        ("GET", "down.test", "/", &[]),
        ("GET", "other.test", "/anything", &[]),
        ("GET", "old.test", "/v/42/x", &[]),
        ("GET", "old.test", "/v/x", &[]),
    ];
    for (method, host, path, headers) in cases {
        let mut q = format!(
            "/api/explain?entryPoint=web&method={method}&url=http://{host}{}",
            path.replace('/', "%2F")
        );
        for (n, v) in *headers {
            q += &format!("&header={n}:{v}");
        }
        let e = api(t, &q).await;
        assert_eq!(e.status, StatusCode::OK, "{}", e.text());
        let e = e.json();

        let mut req = Request::builder()
            .method(*method)
            .uri(*path)
            .header("host", *host);
        for (n, v) in *headers {
            req = req.header(*n, *v);
        }
        let real = H1::connect(p.web)
            .await
            .send(req.body(empty()).unwrap())
            .await
            .unwrap();
        let case = format!("{method} {host}{path} {headers:?}: {e}");
        match e["router"].as_str() {
            Some(_) if e["disabled"] == true => {
                assert_eq!(real.status, StatusCode::SERVICE_UNAVAILABLE, "{case}");
                assert!(!e["errors"].as_array().unwrap().is_empty(), "{case}");
            }
            Some(_) => {
                let svc = e["service"].as_str().unwrap();
                let index: usize = svc
                    .trim_start_matches('s')
                    .trim_end_matches("@file")
                    .parse()
                    .unwrap();
                assert_eq!(real.backend(), Some(format!("b{index}").as_str()), "{case}");
            }
            None => assert_eq!(real.status, StatusCode::NOT_FOUND, "{case}"),
        }
        // Every candidate before the winner did not match, the winner did.
        let candidates = e["candidates"].as_array().unwrap();
        let (last, before) = candidates.split_last().unwrap();
        assert!(before.iter().all(|c| c["matched"] == false), "{case}");
        assert_eq!(last["matched"], e["router"].is_string(), "{case}");
    }

    // Why the higher ones failed: the part of the rule that decided.
    let e = api(
        t,
        "/api/explain?entryPoint=web&url=http://shop.test/admin/x",
    )
    .await
    .json();
    assert_eq!(e["router"], "fallback@file");
    let not_admin = e["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["router"] == "not-admin@file")
        .unwrap();
    assert_eq!(
        not_admin["why"],
        serde_json::json!(["PathPrefix(`/admin`) matched"])
    );
    let header = &e["candidates"][0];
    assert_eq!(header["router"], "header@file", "priority 200 first");
    assert_eq!(
        header["why"],
        serde_json::json!(["Header(`x-beta`, `1`) did not match"])
    );
    let either = api(
        t,
        "/api/explain?entryPoint=web&url=http://c.test/&method=POST",
    )
    .await
    .json();
    let c = either["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["router"] == "either@file")
        .unwrap();
    assert_eq!(
        c["why"],
        serde_json::json!([
            "Host(`a.test`) did not match",
            "Host(`b.test`) did not match"
        ])
    );

    // A v2-syntax router is explained in its own syntax's terms.
    let e = api(t, "/api/explain?entryPoint=web&url=http://old.test/v/42/x")
        .await
        .json();
    assert_eq!(e["router"], "legacy@file");
    assert_eq!(
        e["matched"],
        serde_json::json!([
            "Host(`old.test`) matched",
            "v2 path template (as `^/v/(?P<v0>[0-9]+)`) matched"
        ])
    );

    // TLS routers for an https URL or an SNI, and only for those.
    let e = api(t, "/api/explain?entryPoint=web&url=https://shop.test/pay")
        .await
        .json();
    assert_eq!(e["router"], "secure@file", "{e}");
    assert_eq!(e["request"]["tls"], true);
    let e = api(
        t,
        "/api/explain?entryPoint=web&url=http://shop.test/pay&sni=shop.test",
    )
    .await
    .json();
    assert_eq!(e["router"], "secure@file", "{e}");
    let e = api(t, "/api/explain?entryPoint=web&url=http://shop.test/pay")
        .await
        .json();
    assert_eq!(e["router"], "not-admin@file", "{e}");

    // Bad questions are 400 naming the problem.
    let bad = api(t, "/api/explain?entryPoint=nope&url=http://a.test/").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.json()["message"]
            .as_str()
            .unwrap()
            .contains("unknown entrypoint \"nope\"")
    );
    let bad = api(t, "/api/explain?url=http://a.test/").await;
    assert_eq!(bad.json()["message"], "entryPoint is required");
    // The internal routers on the traefik entrypoint come first.
    let e = api(
        t,
        "/api/explain?entryPoint=traefik&url=http://x/api/overview",
    )
    .await
    .json();
    assert_eq!(e["router"], "api@internal");
    assert_eq!(e["candidates"][0]["router"], "ping@internal");
}

#[test]
fn proxy_explain_answers_offline_and_checks_an_expected_router() {
    let backends: Vec<Backend> = (0..6).map(|i| backend(&format!("b{i}"))).collect();
    let dir = TempDir::new("explain-cli");
    dir.write("dynamic.yml", &explain_dynamic(&backends));
    let stat = dir.write(
        "static.yml",
        &static_yaml("").replace("{DIR}", &dir.path().display().to_string()),
    );
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_proxy"))
            .arg("explain")
            .arg("--configFile")
            .arg(&stat)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["http://eu.shop.test/api/v1/x"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("-> regex@file (priority 100)"), "{out}");
    assert!(
        out.contains("router regex@file -> service s1@file"),
        "{out}"
    );

    let (code, out, _) = run(&["--json", "-H", "X-Beta: 1", "http://shop.test/cart"]);
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["router"], "header@file");

    // not-admin's rule is longer than exact's: its default priority wins.
    let (code, _, err) = run(&["--expect", "not-admin", "http://shop.test/cart"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(&["--expect", "exact", "-X", "GET", "http://shop.test/cart"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("expected router exact@file, got not-admin@file"),
        "{err}"
    );
    let (code, out, _) = run(&["http://down.test/"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("router broken@file is disabled: the proxy answers 503"),
        "{out}"
    );
    let (code, _, err) = run(&["--entryPoint", "nope", "http://a.test/"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("unknown entrypoint \"nope\""), "{err}");
}
