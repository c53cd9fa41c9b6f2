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

/// Whether `b`'s last request carried header `name`.
fn last_had(b: &Backend, name: &str) -> Option<bool> {
    b.stats.last().map(|l| l.1.contains_key(name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_runs_its_own_middlewares_and_the_main_its_own() {
    let main = backend("main");
    let copy = backend("copy");
    let refused = backend("refused");
    let p = start_proxy(&format!(
        r#"http:
  routers:
    r:
      rule: "Host(`m.test`)"
      service: m
    bare:
      rule: "Host(`bare.test`)"
      service: bm
  services:
    bm:
      mirroring:
        service: bare
        mirrors:
          - name: copy
            percent: 100
    bare:
      loadBalancer:
        servers:
          - url: "http://{main}"
    m:
      mirroring:
        service: main
        mirrors:
          - name: copy
            percent: 100
          - name: refused
            percent: 100
    main:
      middlewares: [main-mark]
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
  middlewares:
    main-mark:
      headers:
        customRequestHeaders:
          X-Main: "yes"
    copy-mark:
      headers:
        customRequestHeaders:
          X-Copy: "yes"
    copy-prefix:
      addPrefix:
        prefix: /c
    nobody:
      ipAllowList:
        sourceRange: ["10.9.9.9/32"]
"#,
        main = main.addr,
        copy = copy.addr,
        refused = refused.addr,
    ));
    let r = get(p.web, "m.test", "/x").await;
    assert_eq!(
        r.status,
        200,
        "a refused copy is not the answer: {}",
        r.text()
    );
    assert_eq!(r.backend(), Some("main"));
    assert_eq!(r.json()["headers"]["x-main"], "yes");
    assert!(r.json()["headers"].get("x-copy").is_none(), "{}", r.text());
    assert!(
        eventually(5, async || copy.stats.requests.load(Ordering::Relaxed) == 1).await,
        "the copy arrives"
    );
    let seen = copy.stats.last().unwrap();
    assert_eq!(seen.0, "/c/x", "the copy went through copy's chain");
    assert_eq!(last_had(&copy, "x-copy"), Some(true));
    assert_eq!(
        last_had(&copy, "x-main"),
        Some(false),
        "the copy is taken before main's middlewares"
    );
    // The ipAllowList of `refused` answered its copy (403) by itself.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(refused.stats.requests.load(Ordering::Relaxed), 0);
    assert_eq!(main.stats.requests.load(Ordering::Relaxed), 1);

    // A main service without middlewares: the copy still runs the
    // mirror's.
    let r = get(p.web, "bare.test", "/z").await;
    assert_eq!(r.backend(), Some("main"));
    assert!(r.json()["headers"].get("x-copy").is_none(), "{}", r.text());
    assert!(eventually(5, async || copy.stats.requests.load(Ordering::Relaxed) == 2).await);
    assert_eq!(copy.stats.last().unwrap().0, "/c/z");
    assert_eq!(last_had(&copy, "x-copy"), Some(true));
}

/// A failover with `errors` whose main service `main` (backend `main`)
/// and fallback `spare` (backend `spare`) have middlewares; `locked`
/// answers by itself (403, in the errors too).
fn failover_config(main: &Backend, spare: &Backend) -> String {
    format!(
        r#"http:
  routers:
    r:
      rule: "Host(`f.test`)"
      service: f
    l:
      rule: "Host(`l.test`)"
      service: fl
  services:
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
    spare:
      middlewares: [spare-mark, spare-path]
      loadBalancer:
        servers:
          - url: "http://{spare}"
  middlewares:
    main-mark:
      headers:
        customRequestHeaders:
          X-Main: "yes"
        customResponseHeaders:
          X-Main-Answer: "yes"
    spare-mark:
      headers:
        customRequestHeaders:
          X-Spare: "yes"
    spare-path:
      replacePath:
        path: /spare
    nobody:
      ipAllowList:
        sourceRange: ["10.9.9.9/32"]
"#,
        main = main.addr,
        spare = spare.addr,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_with_errors_runs_the_main_and_the_fallback_through_their_own() {
    let main = backend("main");
    let spare = backend("spare");
    let p = start_proxy(&failover_config(&main, &spare));

    // The main service answers through its middlewares.
    let r = get(p.web, "f.test", "/x").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.backend(), Some("main"));
    assert_eq!(r.json()["headers"]["x-main"], "yes");
    assert_eq!(r.headers["x-main-answer"], "yes");

    // Its 500 goes to the fallback, which runs its own middlewares and
    // none of the main service's, on the way in or out.
    let r = post(p.web, "f.test", "/status/500", "payload").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.backend(), Some("spare"));
    assert_eq!(path_seen(&r), "/spare");
    assert_eq!(r.json()["headers"]["x-spare"], "yes");
    assert!(r.json()["headers"].get("x-main").is_none(), "{}", r.text());
    assert!(!r.headers.contains_key("x-main-answer"), "{:?}", r.headers);
    assert_eq!(r.json()["headers"]["content-length"], "7", "the body again");

    // The status the main service's middlewares answer decides: its
    // ipAllowList's 403 sends the request to the fallback, and the
    // main backend never sees it.
    let before = main.stats.requests.load(Ordering::Relaxed);
    let r = get(p.web, "l.test", "/y").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.backend(), Some("spare"));
    assert_eq!(main.stats.requests.load(Ordering::Relaxed), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirroring_under_a_failover_with_errors_keeps_each_services_middlewares() {
    let main = backend("main");
    let copy = backend("copy");
    let spare = backend("spare");
    let p = start_proxy(&format!(
        r#"http:
  routers:
    r:
      rule: "Host(`n.test`)"
      service: f
  services:
    f:
      middlewares: [outer]
      failover:
        service: m
        fallback: spare
        errors:
          status: ["500-599"]
    m:
      mirroring:
        service: main
        mirrors:
          - name: copy
            percent: 100
    main:
      middlewares: [main-mark]
      loadBalancer:
        servers:
          - url: "http://{main}"
    copy:
      middlewares: [copy-mark]
      loadBalancer:
        servers:
          - url: "http://{copy}"
    spare:
      middlewares: [spare-mark]
      loadBalancer:
        servers:
          - url: "http://{spare}"
  middlewares:
    outer:
      headers:
        customRequestHeaders:
          X-Outer: "yes"
    main-mark:
      headers:
        customRequestHeaders:
          X-Main: "yes"
    copy-mark:
      headers:
        customRequestHeaders:
          X-Copy: "yes"
    spare-mark:
      headers:
        customRequestHeaders:
          X-Spare: "yes"
"#,
        main = main.addr,
        copy = copy.addr,
        spare = spare.addr,
    ));
    let r = get(p.web, "n.test", "/status/502").await;
    assert_eq!(r.status, 502, "spare answers the same path: {}", r.text());
    assert_eq!(r.backend(), Some("spare"));
    assert_eq!(main.stats.requests.load(Ordering::Relaxed), 1);
    let spare_seen = spare.stats.last().unwrap();
    assert_eq!(
        spare_seen.1["x-outer"], "yes",
        "the failover's own wrap both"
    );
    assert_eq!(spare_seen.1["x-spare"], "yes");
    assert!(!spare_seen.1.contains_key("x-main"));
    let main_seen = main.stats.last().unwrap();
    assert_eq!(main_seen.1["x-outer"], "yes");
    assert_eq!(main_seen.1["x-main"], "yes");
    assert!(!main_seen.1.contains_key("x-spare"));
    assert!(eventually(5, async || copy.stats.requests.load(Ordering::Relaxed) == 1).await);
    let copy_seen = copy.stats.last().unwrap();
    assert_eq!(copy_seen.0, "/status/502");
    assert_eq!(copy_seen.1["x-outer"], "yes");
    assert_eq!(copy_seen.1["x-copy"], "yes");
    assert!(!copy_seen.1.contains_key("x-main"));
    assert!(!copy_seen.1.contains_key("x-spare"));
}

async fn post(addr: std::net::SocketAddr, host: &str, path: &str, body: &'static str) -> Reply {
    let mut c = H1::connect(addr).await;
    let req = http::Request::post(path)
        .header("host", host)
        .body(support::body(body))
        .unwrap();
    c.send(req).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_through_layered_failover_and_mirroring_goes_to_the_main_only() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let main = backend("main");
    let copy = backend("copy");
    let spare = backend("spare");
    let p = start_proxy(&format!(
        r#"http:
  routers:
    r:
      rule: "PathPrefix(`/`)"
      service: f
  services:
    f:
      failover:
        service: m
        fallback: spare
        errors:
          status: ["500-599"]
    m:
      mirroring:
        service: main
        mirrors:
          - name: copy
            percent: 100
    main:
      middlewares: [mark]
      loadBalancer:
        servers:
          - url: "http://{main}"
    copy:
      middlewares: [mark]
      loadBalancer:
        servers:
          - url: "http://{copy}"
    spare:
      middlewares: [mark]
      loadBalancer:
        servers:
          - url: "http://{spare}"
  middlewares:
    mark:
      headers:
        customRequestHeaders:
          X-Mark: "yes"
"#,
        main = main.addr,
        copy = copy.addr,
        spare = spare.addr,
    ));
    let mut s = upgraded(p.web).await;
    s.write_all(b"ping").await.unwrap();
    let mut echo = [0u8; 4];
    tokio::time::timeout(std::time::Duration::from_secs(5), s.read_exact(&mut echo))
        .await
        .expect("the tunnel echoes")
        .unwrap();
    assert_eq!(&echo, b"ping");
    assert_eq!(last_had(&main, "x-mark"), Some(true));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        copy.stats.requests.load(Ordering::Relaxed),
        0,
        "not mirrored"
    );
    assert_eq!(spare.stats.requests.load(Ordering::Relaxed), 0);
}
