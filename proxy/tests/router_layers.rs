//! Multi-layer routing (`parentRefs`) over real sockets: a child router is
//! matched only among the requests its parent matched, on the request as
//! the parent's middlewares left it; the parent's middlewares answer
//! around the child's; a parent's request never falls through to another
//! root router (no child matching: 404); layers nest, with priorities
//! among siblings; a disabled child keeps its place (503), a parent left
//! without a child served is disabled; the tree's errors are Traefik's; a
//! parent split by an entrypoint model keeps its children; a TLS parent's
//! children serve TLS only (HTTP/1.1 and h2); the access log names every
//! router passed; explain names a parent and its children.

mod support;

use support::*;

fn path_seen(r: &Reply) -> String {
    r.json()["path"].as_str().unwrap_or_default().to_owned()
}

fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

fn services(backends: &[&Backend]) -> String {
    let mut s = String::from("  services:\n");
    for b in backends {
        s += &format!(
            "    {}:\n      loadBalancer:\n        servers:\n          - url: \"http://{}\"\n",
            b.name, b.addr
        );
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_are_matched_after_the_parents_middlewares() {
    let (b1, b2, other) = (backend("b1"), backend("b2"), backend("other"));
    let p = start_proxy(&format!(
        r#"http:
  routers:
    parent:
      rule: "Host(`a.test`) && PathPrefix(`/api`)"
      middlewares: [strip, tag]
    v1:
      rule: "Path(`/v1`)"
      service: b1
      middlewares: [child-tag]
      parentRefs: [parent]
    gold:
      rule: "Header(`X-Tier`, `gold`) && PathPrefix(`/gold`)"
      service: b2
      parentRefs: ["parent@file"]
    fallback:
      rule: "PathPrefix(`/`)"
      priority: 1
      service: other
  middlewares:
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
{}"#,
        services(&[&b1, &b2, &other])
    ));
    // The child's rule sees the path the parent's stripPrefix left.
    let r = get(p.web, "a.test", "/api/v1").await;
    assert_eq!(r.backend(), Some("b1"), "{}", r.text());
    assert_eq!(path_seen(&r), "/v1");
    assert_eq!(r.json()["headers"]["x-forwarded-prefix"], "/api");
    assert_eq!(header(&r, "x-parent"), Some("yes"));
    assert_eq!(header(&r, "x-child"), Some("yes"));
    // ...and the header the parent's `headers` added.
    let r = get(p.web, "a.test", "/api/gold/x").await;
    assert_eq!(r.backend(), Some("b2"), "{}", r.text());
    assert_eq!(path_seen(&r), "/gold/x");
    assert_eq!(header(&r, "x-child"), None);
    // The parent matched, no child does: its child muxer's 404, through
    // the parent's middlewares; never the lower-priority root router.
    let r = get(p.web, "a.test", "/api/none").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "404 page not found\n");
    assert_eq!(header(&r, "x-parent"), Some("yes"));
    // A child is no root router: its rule alone matches nothing.
    let r = get(p.web, "a.test", "/v1").await;
    assert_eq!(r.backend(), Some("other"));
    let r = get(p.web, "b.test", "/api/v1").await;
    assert_eq!(r.backend(), Some("other"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_nest_and_siblings_are_ordered_by_priority() {
    let (b1, b2, b3) = (backend("b1"), backend("b2"), backend("b3"));
    let p = start_proxy(&format!(
        r#"http:
  routers:
    root:
      rule: "PathPrefix(`/`)"
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
    plain:
      rule: "PathPrefix(`/p`)"
      service: b3
      parentRefs: [root, mid]
  middlewares:
    root-mark:
      headers:
        customRequestHeaders:
          X-Root: "1"
    mid-strip:
      stripPrefix:
        prefixes: [/m]
{}"#,
        services(&[&b1, &b2, &b3])
    ));
    // Two layers down: `mid` strips `/m`, then the explicit priority 100
    // wins over the longer rule (default priority: its length).
    let r = get(p.web, "a.test", "/m/x/1").await;
    assert_eq!(r.backend(), Some("b2"), "{}", r.text());
    assert_eq!(path_seen(&r), "/x/1");
    assert_eq!(r.json()["headers"]["x-root"], "1");
    // A child of two parents is reached under each.
    let r = get(p.web, "a.test", "/p/q").await;
    assert_eq!(r.backend(), Some("b3"));
    assert_eq!(path_seen(&r), "/p/q");
    let r = get(p.web, "a.test", "/m/p/q").await;
    assert_eq!(r.backend(), Some("b3"));
    assert_eq!(path_seen(&r), "/p/q");
    let r = get(p.web, "a.test", "/m/y").await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_child_keeps_its_place_and_a_parent_without_children_answers_503() {
    let (b1, low) = (backend("b1"), backend("low"));
    let p = start_proxy(&format!(
        r#"http:
  routers:
    parent:
      rule: "PathPrefix(`/a`)"
    good:
      rule: "Path(`/a/good`)"
      service: b1
      parentRefs: [parent]
    broken:
      rule: "PathPrefix(`/a/broken`)"
      service: b1
      middlewares: [missing]
      parentRefs: [parent]
    lonely:
      rule: "PathPrefix(`/l`)"
    only:
      rule: "PathPrefix(`/l`)"
      service: nowhere
      parentRefs: [lonely]
    low:
      rule: "PathPrefix(`/`)"
      priority: 1
      service: low
{}"#,
        services(&[&b1, &low])
    ));
    assert_eq!(get(p.web, "a.test", "/a/good").await.backend(), Some("b1"));
    // The broken child answers 503 for what it matches; its requests do
    // not reach a sibling or the lower root router.
    assert_eq!(get(p.web, "a.test", "/a/broken/x").await.status, 503);
    assert_eq!(get(p.web, "a.test", "/a/other").await.status, 404);
    // `lonely`'s only child is disabled: `lonely` is disabled, at its place.
    assert_eq!(get(p.web, "a.test", "/l/x").await.status, 503);
    assert_eq!(get(p.web, "a.test", "/z").await.backend(), Some("low"));
}

/// The tree's errors, as Traefik 3.7 words them, each at its router.
#[test]
fn the_router_tree_is_checked_as_traefik_does() {
    let svc = "  services:\n    s:\n      loadBalancer:\n        servers:\n          - url: \"http://127.0.0.1:1\"\n";
    let case = |routers: &str| dynamic_errors(&format!("http:\n  routers:\n{routers}{svc}"));
    let e =
        case("    child:\n      rule: \"Path(`/`)\"\n      service: s\n      parentRefs: [nope]\n");
    assert!(
        e.contains("http.routers.child.parentRefs: parent router \"nope@file\" does not exist"),
        "{e}"
    );
    assert!(
        e.contains("http.routers.child: router is not reachable"),
        "{e}"
    );

    let e = case(
        "    p:\n      rule: \"Path(`/`)\"\n    c:\n      rule: \"Path(`/`)\"\n      service: s\n      parentRefs: [p]\n      tls: {}\n      entryPoints: [web]\n",
    );
    assert!(
        e.contains("http.routers.c.tls: non-root router cannot have TLS configuration"),
        "{e}"
    );
    // Traefik reports the first of the two.
    assert!(!e.contains("Entrypoints"), "{e}");
    assert!(
        e.contains("no child routers could be added to muxer (1 skipped)"),
        "{e}"
    );

    let e = case(
        "    p:\n      rule: \"Path(`/`)\"\n    c:\n      rule: \"Path(`/`)\"\n      service: s\n      parentRefs: [p]\n      entryPoints: [web]\n",
    );
    assert!(
        e.contains(
            "http.routers.c.entryPoints: non-root router cannot have Entrypoints configuration"
        ),
        "{e}"
    );

    let e = case(
        "    p:\n      rule: \"Path(`/`)\"\n    c:\n      rule: \"Path(`/`)\"\n      service: s\n      parentRefs: [p]\n      observability:\n        accessLogs: false\n",
    );
    assert!(
        e.contains(
            "http.routers.c.observability: non-root router cannot have Observability configuration"
        ),
        "{e}"
    );

    // A parent whose rule does not parse exists: its child is only
    // unreachable.
    let e = case(
        "    p:\n      rule: \"Path(`/`\"\n    c:\n      rule: \"Path(`/`)\"\n      service: s\n      parentRefs: [p]\n",
    );
    assert!(!e.contains("does not exist"), "{e}");
    assert!(e.contains("http.routers.c: router is not reachable"), "{e}");

    let e = case("    lone:\n      rule: \"Path(`/`)\"\n");
    assert!(
        e.contains("http.routers.lone: router has no service and no child routers"),
        "{e}"
    );

    let e = case(
        "    p:\n      rule: \"Path(`/`)\"\n      service: s\n    c:\n      rule: \"Path(`/`)\"\n      service: s\n      parentRefs: [p]\n",
    );
    assert!(
        e.contains(
            "http.routers.p: router has both a service and is referenced as a parent by other routers"
        ),
        "{e}"
    );

    // A -> B -> C -> D -> B: D's link back to B is cut (D holds the error),
    // D is then a dead end; a loop no root reaches is unreachable.
    let e = case(
        "    a:\n      rule: \"Path(`/`)\"\n    b:\n      rule: \"Path(`/`)\"\n      parentRefs: [a, d]\n    c:\n      rule: \"Path(`/`)\"\n      parentRefs: [b]\n    d:\n      rule: \"Path(`/`)\"\n      parentRefs: [c]\n    x:\n      rule: \"Path(`/`)\"\n      service: s\n      parentRefs: [y]\n    y:\n      rule: \"Path(`/`)\"\n      parentRefs: [x]\n",
    );
    assert!(
        e.contains("http.routers.d: cyclic reference detected in router tree: b@file -> c@file -> d@file -> b@file"),
        "{e}"
    );
    assert!(
        e.contains("http.routers.d: router has no service and no child routers"),
        "{e}"
    );
    assert!(e.contains("http.routers.x: router is not reachable"), "{e}");
    assert!(e.contains("http.routers.y: router is not reachable"), "{e}");
    assert!(!e.contains("http.routers.a: router is"), "{e}");
}

/// Entrypoint models apply to root routers only: a parent on a modelled
/// and a plain entrypoint is split (`web-parent` runs the model's
/// middleware), and its child, on neither, is reached under both copies,
/// its `parentRefs` naming them as Traefik rewrites them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_parent_keeps_its_children_under_each_copy() {
    let b1 = backend("b1");
    let static_cfg = "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\n    http:\n      middlewares:\n        - ep-mark@file\n  other:\n    address: \"127.0.0.1:0\"\n  traefik:\n    address: \"127.0.0.1:0\"\napi:\n  insecure: true\nproviders:\n  file:\n    filename: \"{DIR}/dynamic.yml\"\n";
    let p = start_proxy_static(
        &format!(
            r#"http:
  routers:
    parent:
      rule: "PathPrefix(`/`)"
      entryPoints: [web, other]
    child:
      rule: "PathPrefix(`/c`)"
      service: b1
      parentRefs: [parent]
  middlewares:
    ep-mark:
      headers:
        customResponseHeaders:
          X-Entrypoint-Model: "yes"
{}"#,
            services(&[&b1])
        ),
        static_cfg,
        1,
    );
    let r = get(p.addr("web"), "a.test", "/c").await;
    assert_eq!(r.backend(), Some("b1"), "{}", r.text());
    assert_eq!(header(&r, "x-entrypoint-model"), Some("yes"));
    let r = get(p.addr("other"), "a.test", "/c").await;
    assert_eq!(r.backend(), Some("b1"));
    assert_eq!(header(&r, "x-entrypoint-model"), None);
    let r = get(
        p.addr("traefik"),
        "api.test",
        "/api/http/routers/child@file",
    )
    .await;
    assert_eq!(
        r.json()["parentRefs"],
        serde_json::json!(["parent@file", "web-parent@file"])
    );
    assert_eq!(r.json()["status"], "enabled");
    assert!(r.json().get("entryPoints").is_none(), "{}", r.text());
}

/// The access log names every router passed, as Traefik's does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_names_the_routers_passed() {
    let b1 = backend("b1");
    let static_cfg = "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\nproviders:\n  file:\n    filename: \"{DIR}/dynamic.yml\"\naccessLog:\n  filePath: \"{DIR}/access.log\"\n  format: json\n";
    let p = start_proxy_static(
        &format!(
            "http:\n  routers:\n    root:\n      rule: \"Host(`log.test`)\"\n    mid:\n      rule: \"PathPrefix(`/`)\"\n      parentRefs: [root]\n    leaf:\n      rule: \"PathPrefix(`/`)\"\n      service: b1\n      parentRefs: [mid]\n{}",
            services(&[&b1])
        ),
        static_cfg,
        1,
    );
    assert_eq!(get(p.web, "log.test", "/x").await.backend(), Some("b1"));
    let log = p.dir.path().join("access.log");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let entry = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let found = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| e["RequestHost"] == "log.test");
        match found {
            Some(e) => break e,
            None if std::time::Instant::now() > deadline => panic!("no entry in {text}"),
            None => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    };
    assert_eq!(
        entry["RouterName"], "root@file -> mid@file -> leaf@file",
        "{entry}"
    );
    assert_eq!(entry["ServiceName"], "b1@file", "{entry}");
}

/// A TLS root router's children serve its TLS connections (HTTP/1.1 and
/// HTTP/2, where the host is the `:authority`), never plain ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_parents_children_serve_tls_only() {
    use support::tls::{ClientOpts, client_config, connect};
    let b1 = backend("b1");
    let p = start_proxy(&format!(
        r#"http:
  routers:
    secure:
      rule: "PathPrefix(`/s`)"
      tls: {{}}
    child:
      rule: "Host(`t.test`) && Path(`/s/x`)"
      service: b1
      parentRefs: [secure]
{}"#,
        services(&[&b1])
    ));
    assert_eq!(get(p.web, "t.test", "/s/x").await.status, 404);
    for alpn in [vec![], vec!["h2"]] {
        let config = client_config(&ClientOpts {
            alpn: alpn.clone(),
            ..ClientOpts::default()
        });
        let s = connect(p.web, Some("t.test"), config.clone())
            .await
            .unwrap();
        let r = support::tls::get(s, "t.test", "/s/x").await;
        assert_eq!(r.backend(), Some("b1"), "{alpn:?}: {}", r.text());
        let s = connect(p.web, Some("t.test"), config).await.unwrap();
        assert_eq!(
            support::tls::get(s, "u.test", "/s/x").await.status,
            404,
            "{alpn:?}"
        );
    }
}

/// Explain names the parent a request reaches and its children (what they
/// match depends on the parent's middlewares, which explain does not run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_names_a_parent_and_its_children() {
    let b1 = backend("b1");
    let static_cfg = "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\n  traefik:\n    address: \"127.0.0.1:0\"\napi:\n  insecure: true\nproviders:\n  file:\n    filename: \"{DIR}/dynamic.yml\"\n";
    let p = start_proxy_static(
        &format!(
            "http:\n  routers:\n    parent:\n      rule: \"Host(`e.test`)\"\n    one:\n      rule: \"Path(`/1`)\"\n      service: b1\n      parentRefs: [parent]\n    two:\n      rule: \"Path(`/2`)\"\n      service: b1\n      parentRefs: [parent]\n{}",
            services(&[&b1])
        ),
        static_cfg,
        1,
    );
    let r = H1::connect(p.addr("traefik"))
        .await
        .get(
            "api.test",
            "/api/explain?entryPoint=web&method=GET&url=http://e.test%2F1",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let e = r.json();
    assert_eq!(e["router"], "parent@file", "{e}");
    assert_eq!(
        e["children"],
        serde_json::json!(["one@file", "two@file"]),
        "{e}"
    );
}
