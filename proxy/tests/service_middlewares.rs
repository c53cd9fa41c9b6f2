//! Service-level `middlewares` (Traefik 3.7's `services.<name>.middlewares`)
//! over real sockets: they run after the router's on the way in and
//! before them on the way out; each service of a `weighted` tree runs its
//! own around what is below it; one may answer by itself; a `retry` there
//! goes through the balancer below again (another server); an unknown
//! or broken one disables the service and its routers, which keep their
//! place (503); under a `mirroring` or a `failover` with `errors` they are
//! refused as not supported yet.

mod support;

use std::sync::atomic::Ordering;

use support::*;

fn path_seen(r: &Reply) -> String {
    r.json()["path"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_middlewares_run_after_the_routers_and_answer_before_them() {
    let b = backend("b");
    let p = start_proxy(&format!(
        r#"http:
  routers:
    r:
      rule: "Host(`a.test`)"
      service: s
      middlewares: [router-prefix, router-header]
  services:
    s:
      middlewares: [service-prefix, "service-header@file"]
      loadBalancer:
        servers:
          - url: "http://{}"
  middlewares:
    router-prefix:
      addPrefix:
        prefix: /r
    service-prefix:
      addPrefix:
        prefix: /s
    router-header:
      headers:
        customRequestHeaders:
          X-Seen: router
        customResponseHeaders:
          X-Who: router
    service-header:
      headers:
        customRequestHeaders:
          X-Seen: service
        customResponseHeaders:
          X-Who: service
          X-Service-Only: "yes"
"#,
        b.addr
    ));
    let r = get(p.web, "a.test", "/x").await;
    assert_eq!(r.status, 200, "{}", r.text());
    // In: the router's addPrefix, then the service's.
    assert_eq!(path_seen(&r), "/s/r/x");
    // The service's header is set last on the way in...
    assert_eq!(r.json()["headers"]["x-seen"], "service");
    // ...and the router's last on the way out.
    assert_eq!(r.headers["x-who"], "router");
    assert_eq!(r.headers["x-service-only"], "yes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_of_a_tree_runs_its_own_and_may_answer_alone() {
    let a = backend("a");
    let b = backend("b");
    let p = start_proxy(&format!(
        r#"http:
  routers:
    r:
      rule: "Host(`w.test`)"
      service: w
  services:
    w:
      middlewares: [tree]
      weighted:
        services:
          - name: sa
            weight: 1
          - name: sb
            weight: 1
    sa:
      middlewares: [to-a]
      loadBalancer:
        servers:
          - url: "http://{a}"
    sb:
      middlewares: [locked]
      loadBalancer:
        servers:
          - url: "http://{b}"
  middlewares:
    tree:
      addPrefix:
        prefix: /w
    to-a:
      addPrefix:
        prefix: /a
    locked:
      basicAuth:
        users: ["u:{{SHA}}qUqP5cyxm6YcTAhz05Hph5gvu9M="]
"#,
        a = a.addr,
        b = b.addr
    ));
    let (mut to_a, mut refused) = (0, 0);
    for _ in 0..4 {
        let r = get(p.web, "w.test", "/x").await;
        match r.status.as_u16() {
            200 => {
                assert_eq!(r.backend(), Some("a"));
                assert_eq!(path_seen(&r), "/a/w/x", "w's, then sa's");
                to_a += 1;
            }
            401 => {
                assert!(r.headers.contains_key("www-authenticate"));
                refused += 1;
            }
            s => panic!("status {s}: {}", r.text()),
        }
    }
    assert_eq!((to_a, refused), (2, 2), "the weighted split still holds");
    assert_eq!(
        b.stats.requests.load(Ordering::Relaxed),
        0,
        "b's basicAuth answered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_of_a_service_goes_through_its_balancer_again() {
    let live = backend("live");
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let p = start_proxy(&format!(
        r#"http:
  routers:
    r:
      rule: "Host(`r.test`)"
      service: s
  services:
    s:
      middlewares: [again]
      loadBalancer:
        servers:
          - url: "http://{dead}"
          - url: "http://{live}"
  middlewares:
    again:
      retry:
        attempts: 2
"#,
        live = live.addr
    ));
    for i in 0..6 {
        let r = get(p.web, "r.test", "/").await;
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
        assert_eq!(r.backend(), Some("live"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_service_middleware_disables_it_and_its_routers_keep_their_place() {
    let b = backend("b");
    let p = start_proxy(&format!(
        r#"http:
  routers:
    guarded:
      rule: "Host(`g.test`)"
      service: s
    catch-all:
      rule: "PathPrefix(`/`)"
      priority: 1
      service: open
  services:
    s:
      middlewares: [nope]
      loadBalancer:
        servers:
          - url: "http://{b}"
    open:
      loadBalancer:
        servers:
          - url: "http://{b}"
"#,
        b = b.addr
    ));
    let r = get(p.web, "g.test", "/").await;
    assert_eq!(r.status, 503, "never the catch-all: {}", r.text());
    assert_eq!(get(p.web, "other.test", "/").await.status, 200);
    let errors = dynamic_errors(&std::fs::read_to_string(p.dynamic_path()).unwrap());
    assert!(errors.contains("unknown middleware \"nope\""), "{errors}");
    assert!(errors.contains("http.services.s.middlewares"), "{errors}");
}

#[test]
fn middlewares_under_a_mirroring_or_a_failover_with_errors_are_not_supported_yet() {
    let text = r#"http:
  routers:
    r:
      rule: "Host(`m.test`)"
      service: m
  services:
    m:
      mirroring:
        service: main
        mirrors:
          - name: copy
            percent: 50
    f:
      failover:
        service: main
        fallback: spare
        errors:
          status: ["500-599"]
    main:
      loadBalancer:
        healthCheck:
          path: /health
        servers:
          - url: "http://127.0.0.1:1"
    copy:
      middlewares: [h]
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:1"
    spare:
      middlewares: [h]
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:1"
  middlewares:
    h:
      headers:
        customRequestHeaders:
          X-A: b
"#;
    let errors = dynamic_errors(text);
    assert!(
        errors.contains("service \"copy\" has middlewares, which are not supported yet under a mirroring (service \"m\")"),
        "{errors}"
    );
    assert!(
        errors.contains("service \"spare\" has middlewares, which are not supported yet under a failover with errors (service \"f\")"),
        "{errors}"
    );
    assert_eq!(errors.lines().count(), 2, "{errors}");
}
