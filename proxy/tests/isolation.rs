//! Error isolation over real sockets: an error that belongs to one element
//! disables that element and what references it, the others are served; a
//! disabled router whose rule parsed keeps its place and answers 503, so
//! the requests it matches never fall through to a catch-all (Traefik lets
//! them, serving e.g. an unprotected route when its auth middleware is
//! broken); a file that does not parse gives no configuration at start.

mod support;

use http::StatusCode;
use proxy::config::ElementKind;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_elements_are_disabled_and_keep_their_place() {
    let ok = backend("ok");
    let all = backend("all");
    let dynamic = format!(
        r#"http:
  routers:
    good:
      rule: "Host(`good.test`)"
      service: ok
    no-service:
      rule: "Host(`a.test`)"
      service: nowhere
    broken-auth:
      rule: "Host(`admin.test`)"
      service: ok
      middlewares: [auth]
    bad-server:
      rule: "Host(`b.test`)"
      service: bad
    bad-priority:
      rule: "Host(`c.test`)"
      service: ok
      priority: 9223372036854775807
    bad-rule:
      rule: "Host(`d.test`) && Pathh(`/`)"
      service: ok
    catch-all:
      rule: "PathPrefix(`/`)"
      priority: 1
      service: all
  middlewares:
    auth:
      basicAuth:
        users: ["u:$apr1$x$y"]
  services:
    ok:
      loadBalancer:
        servers: [{{url: "http://{ok}"}}]
    all:
      loadBalancer:
        servers: [{{url: "http://{all}"}}]
    bad:
      loadBalancer:
        servers: [{{url: "ftp://{ok}"}}]
"#,
        ok = ok.addr,
        all = all.addr,
    );
    let p = start_proxy(&dynamic);
    let mut c = H1::connect(p.web).await;
    let r = c.get("good.test", "/").await;
    assert_eq!((r.status, r.backend()), (StatusCode::OK, Some("ok")));
    for host in ["a.test", "admin.test", "b.test", "c.test"] {
        let r = c.get(host, "/").await;
        assert_eq!(
            r.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{host}: a disabled router keeps its place"
        );
        assert_eq!(r.text(), "Service Unavailable");
        assert_eq!(r.backend(), None);
    }
    // A rule that does not parse has no place to keep.
    let r = c.get("d.test", "/").await;
    assert_eq!(r.backend(), Some("all"));
    assert_eq!(
        all.stats
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "only d.test reached the catch-all"
    );

    let snap = p.running().control().snapshot().load_full();
    let got: Vec<(ElementKind, &str, bool, usize, &[String])> = snap
        .disabled
        .iter()
        .map(|d| {
            (
                d.kind,
                d.name.as_str(),
                d.keeps_place,
                d.errors.len(),
                d.because.as_slice(),
            )
        })
        .collect();
    let svc = |s: &str| vec![s.to_owned()];
    assert_eq!(
        got,
        [
            (ElementKind::Router, "bad-priority", true, 1, &[][..]),
            (ElementKind::Router, "bad-rule", false, 1, &[][..]),
            (
                ElementKind::Router,
                "bad-server",
                true,
                0,
                &svc("service \"bad\"")[..]
            ),
            (
                ElementKind::Router,
                "broken-auth",
                true,
                0,
                &svc("middleware \"auth\"")[..]
            ),
            (ElementKind::Router, "no-service", true, 1, &[][..]),
            (ElementKind::Service, "bad", false, 1, &[][..]),
            (ElementKind::Middleware, "auth", false, 1, &[][..]),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_does_not_parse_gives_no_configuration_at_start() {
    let b = backend("b");
    let broken = routes_yaml(&[("r", "PathPrefix(`/`)", &b)]).replace("routers:", "routers: [");
    let p = start_proxy(&broken);
    let r = get(p.web, "x", "/").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(p.running().control().rejected(), 1);
    // A usable file is served on reload.
    std::fs::write(
        p.dynamic_path(),
        routes_yaml(&[("r", "PathPrefix(`/`)", &b)]),
    )
    .unwrap();
    p.running().control().reload().expect("usable now");
    assert_eq!(get(p.web, "x", "/").await.backend(), Some("b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_naming_a_disabled_service_is_disabled_and_its_router_answers_503() {
    let ok = backend("ok");
    let dynamic = format!(
        r#"http:
  routers:
    good:
      rule: "Host(`good.test`)"
      service: split
    canary:
      rule: "Host(`canary.test`)"
      service: outer
    unfollowed:
      rule: "Host(`hc.test`)"
      service: checked
  services:
    split:
      weighted:
        services: [{{name: ok}}]
    outer:
      failover:
        service: inner
        fallback: ok
    inner:
      weighted:
        healthCheck: {{}}
        services: [{{name: bad}}]
    checked:
      weighted:
        healthCheck: {{}}
        services: [{{name: ok}}]
    ok:
      loadBalancer:
        servers: [{{url: "http://{ok}"}}]
    bad:
      loadBalancer:
        servers: [{{url: "ftp://{ok}"}}]
"#,
        ok = ok.addr,
    );
    let p = start_proxy(&dynamic);
    let mut c = H1::connect(p.web).await;
    let r = c.get("good.test", "/").await;
    assert_eq!((r.status, r.backend()), (StatusCode::OK, Some("ok")));
    for host in ["canary.test", "hc.test"] {
        let r = c.get(host, "/").await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{host}");
    }
    let snap = p.running().control().snapshot().load_full();
    let services: Vec<(&str, usize, &[String])> = snap
        .disabled
        .iter()
        .filter(|d| d.kind == ElementKind::Service)
        .map(|d| (d.name.as_str(), d.errors.len(), d.because.as_slice()))
        .collect();
    let because = |s: &str| vec![s.to_owned()];
    assert_eq!(
        services,
        [
            ("bad", 1, &[][..]),
            // Its child "ok" has no healthCheck to follow.
            ("checked", 1, &[][..]),
            ("inner", 0, &because("service \"bad\"")[..]),
            ("outer", 0, &because("service \"inner\"")[..]),
        ]
    );
}
