//! The middleware chain and the path and redirect middlewares over real
//! sockets, against a backend that echoes what it received: a router's
//! `middlewares` in order (with `@file`), `chain` nesting, a broken or
//! cyclic middleware disabling its routers (503, no fall-through), and
//! `addPrefix`, `stripPrefix`, `stripPrefixRegex`, `replacePath`,
//! `replacePathRegex`, `redirectScheme`, `redirectRegex` as Traefik 3.7
//! documents them.

mod support;

use http::{Method, Request, StatusCode};
use proxy::config::ElementKind;
use support::*;

/// A dynamic configuration: one router per `(name, rule, middlewares)` on
/// the backend `b`, plus the `middlewares` YAML (indented under
/// `http.middlewares`).
fn config(b: &Backend, routers: &[(&str, &str, &str)], middlewares: &str) -> String {
    let mut s = String::from("http:\n  routers:\n");
    for (name, rule, mws) in routers {
        s += &format!(
            "    {name}:\n      rule: {}\n      service: s\n      middlewares: [{mws}]\n",
            yaml_str(rule)
        );
    }
    s += &format!(
        "  services:\n    s:\n      loadBalancer:\n        servers:\n          - url: \"http://{}\"\n",
        b.addr
    );
    s += "  middlewares:\n";
    s += middlewares;
    s
}

fn header(r: &Reply, name: &str) -> Option<String> {
    r.json()["headers"][name].as_str().map(str::to_owned)
}

fn path(r: &Reply) -> String {
    r.json()["path"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_middlewares_rewrite_what_the_backend_receives() {
    let b = backend("b");
    let mws = r#"    add:
      addPrefix:
        prefix: /api
    strip:
      stripPrefix:
        prefixes: ["/nope", " /foo "]
    strip-re:
      stripPrefixRegex:
        regex: ["/user/[a-z]+"]
    replace:
      replacePath:
        path: /fixed path
    replace-re:
      replacePathRegex:
        regex: "^/old/(.*)"
        replacement: "/new/$1"
"#;
    let p = start_proxy(&config(
        &b,
        &[
            ("add", "PathPrefix(`/a`)", "add"),
            ("strip", "PathPrefix(`/foo`)", "strip@file"),
            ("strip-re", "PathPrefix(`/user`)", "strip-re"),
            ("replace", "PathPrefix(`/r`)", "replace"),
            ("replace-re", "PathPrefix(`/old`)", "replace-re"),
        ],
        mws,
    ));
    let mut c = H1::connect(p.web).await;

    let r = c.get("x.test", "/a/b?q=1").await;
    assert_eq!(path(&r), "/api/a/b");
    assert_eq!(r.json()["query"], "q=1");

    let r = c.get("x.test", "/foo/bar").await;
    assert_eq!(path(&r), "/bar");
    assert_eq!(header(&r, "x-forwarded-prefix").as_deref(), Some("/foo"));
    // The whole path stripped: the backend gets `/`.
    let r = c.get("x.test", "/foo").await;
    assert_eq!(path(&r), "/");
    // A prefix is not a path segment: `/foobar` loses `/foo`.
    let r = c.get("x.test", "/foobar").await;
    assert_eq!(path(&r), "/bar");
    // Escapes count as the byte they stand for; the raw rest is sent.
    let r = c.get("x.test", "/f%6Fo/a%20b").await;
    assert_eq!(path(&r), "/a%20b");
    // The path is cleaned before routing (as Traefik's entrypoint does),
    // so the strip sees `/foo/etc`.
    let r = c.get("x.test", "/foo//etc").await;
    assert_eq!(path(&r), "/etc");

    let r = c.get("x.test", "/user/bob/profile").await;
    assert_eq!(path(&r), "/profile");
    assert_eq!(
        header(&r, "x-forwarded-prefix").as_deref(),
        Some("/user/bob")
    );

    let r = c.get("x.test", "/r/anything?k=v").await;
    assert_eq!(path(&r), "/fixed%20path");
    assert_eq!(r.json()["query"], "k=v");
    assert_eq!(
        header(&r, "x-replaced-path").as_deref(),
        Some("/r/anything")
    );

    let r = c.get("x.test", "/old/x/y").await;
    assert_eq!(path(&r), "/new/x/y");
    assert_eq!(header(&r, "x-replaced-path").as_deref(), Some("/old/x/y"));
    assert_eq!(
        b.stats.requests.load(std::sync::atomic::Ordering::Relaxed),
        9
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_answer_without_the_backend() {
    let b = backend("b");
    let mws = r#"    to-https:
      redirectScheme:
        scheme: https
        permanent: true
    to-port:
      redirectScheme:
        scheme: https
        port: "8443"
    to-www:
      redirectRegex:
        regex: "^http://example\\.test/(.*)"
        replacement: "http://www.example.test/${1}"
"#;
    let p = start_proxy(&config(
        &b,
        &[
            ("https", "Host(`a.test`)", "to-https"),
            ("port", "Host(`p.test`)", "to-port"),
            ("www", "HostRegexp(`example`)", "to-www"),
        ],
        mws,
    ));
    let mut c = H1::connect(p.web).await;

    let r = c.get("a.test", "/x?y=1").await;
    assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(r.headers["location"], "https://a.test/x?y=1");
    assert_eq!(r.text(), "Moved Permanently");
    // A non-GET is redirected with 308 (301 is 302/307 not permanent).
    let req = Request::builder()
        .method(Method::POST)
        .uri("/form")
        .header("host", "a.test:8000")
        .body(empty())
        .unwrap();
    let r = c.send(req).await.unwrap();
    assert_eq!(r.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.headers["location"], "https://a.test/form");

    let r = c.get("p.test:80", "/").await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.headers["location"], "https://p.test:8443/");

    let r = c.get("example.test", "/page").await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.headers["location"], "http://www.example.test/page");
    // The URL the regex makes is itself: no redirect, the backend answers.
    let r = c.get("www.example.test", "/page").await;
    assert_eq!((r.status, r.backend()), (StatusCode::OK, Some("b")));
    assert_eq!(
        b.stats.requests.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_runs_its_middlewares_in_order_and_nests() {
    let b = backend("b");
    let mws = r#"    inner:
      chain:
        middlewares: [strip, add@file]
    outer:
      chain:
        middlewares: [inner, add2]
    strip:
      stripPrefix:
        prefixes: [/svc]
    add:
      addPrefix:
        prefix: /v1
    add2:
      addPrefix:
        prefix: /root
"#;
    let p = start_proxy(&config(&b, &[("r", "PathPrefix(`/`)", "outer")], mws));
    let r = get(p.web, "x.test", "/svc/items").await;
    // strip, then add /v1, then add /root: in order.
    assert_eq!(path(&r), "/root/v1/items");
    assert_eq!(header(&r, "x-forwarded-prefix").as_deref(), Some("/svc"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_middlewares_disable_their_routers_which_keep_their_place() {
    let b = backend("b");
    let mws = r#"    bad-regex:
      replacePathRegex:
        regex: "(["
        replacement: /x
    loop-a:
      chain:
        middlewares: [loop-b]
    loop-b:
      chain:
        middlewares: [loop-a]
    uses-bad:
      chain:
        middlewares: [bad-regex]
    no-prefix:
      addPrefix: {}
    unknown-member:
      chain:
        middlewares: [nowhere]
"#;
    let mut routers = vec![
        ("r1", "Host(`one.test`)", "bad-regex"),
        ("r2", "Host(`two.test`)", "loop-a"),
        ("r3", "Host(`three.test`)", "uses-bad"),
        ("r4", "Host(`four.test`)", "no-prefix"),
        ("r5", "Host(`five.test`)", "unknown-member"),
    ];
    routers.push(("all", "PathPrefix(`/`)", ""));
    let dynamic = config(&b, &routers, mws).replace(
        "rule: 'PathPrefix(`/`)'",
        "rule: 'PathPrefix(`/`)'\n      priority: 1",
    );
    let p = start_proxy(&dynamic);
    let mut c = H1::connect(p.web).await;
    for host in [
        "one.test",
        "two.test",
        "three.test",
        "four.test",
        "five.test",
    ] {
        let r = c.get(host, "/").await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{host}");
    }
    let r = c.get("other.test", "/").await;
    assert_eq!(r.backend(), Some("b"));
    assert_eq!(
        b.stats.requests.load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    let snap = p.running().control().snapshot().load_full();
    let mut disabled: Vec<(ElementKind, &str)> = snap
        .disabled
        .iter()
        .map(|d| (d.kind, d.name.as_str()))
        .collect();
    disabled.sort();
    assert_eq!(
        disabled,
        [
            (ElementKind::Router, "r1"),
            (ElementKind::Router, "r2"),
            (ElementKind::Router, "r3"),
            (ElementKind::Router, "r4"),
            (ElementKind::Router, "r5"),
            (ElementKind::Middleware, "bad-regex"),
            (ElementKind::Middleware, "loop-a"),
            (ElementKind::Middleware, "loop-b"),
            (ElementKind::Middleware, "no-prefix"),
            (ElementKind::Middleware, "unknown-member"),
            (ElementKind::Middleware, "uses-bad"),
        ]
    );
    let errors: Vec<String> = snap
        .disabled
        .iter()
        .flat_map(|d| d.errors.iter().map(|e| e.to_string()))
        .collect();
    let all = errors.join("\n");
    assert!(
        all.contains("http.middlewares.bad-regex.replacePathRegex.regex"),
        "{all}"
    );
    assert!(all.contains("error parsing regexp"), "{all}");
    assert!(
        all.contains("chain cycle loop-a -> loop-b -> loop-a"),
        "{all}"
    );
    assert!(all.contains("addPrefix: prefix cannot be empty"), "{all}");
    assert!(all.contains("unknown middleware \"nowhere\""), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_characters_refuses_the_escapes_not_allowed() {
    let b = backend("b");
    let mws = r#"    strict:
      encodedCharacters: {}
    slashes-ok:
      encodedCharacters:
        allowEncodedSlash: true
        allowEncodedHash: true
"#;
    let p = start_proxy(&config(
        &b,
        &[
            ("strict", "PathPrefix(`/s`)", "strict"),
            ("lenient", "PathPrefix(`/l`)", "slashes-ok"),
        ],
        mws,
    ));
    let status = |path: &'static str| {
        let addr = p.web;
        async move { get(addr, "x.test", path).await.status }
    };
    for refused in [
        "/s/a%2Fb", "/s/a%2fb", "/s/%5C", "/s/%00", "/s/%3b", "/s/%25", "/s/%3F", "/s/%23", "/s/%2",
    ] {
        assert_eq!(status(refused).await, StatusCode::BAD_REQUEST, "{refused}");
    }
    assert_eq!(status("/s/plain%20space").await, StatusCode::OK);
    assert_eq!(status("/l/a%2Fb%23").await, StatusCode::OK, "allowed");
    assert_eq!(
        status("/l/a%3B").await,
        StatusCode::BAD_REQUEST,
        "still refused"
    );
    assert_eq!(
        b.stats.requests.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}
