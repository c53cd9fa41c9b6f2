//! Which host a request is for, as Go's server (and so Traefik) decides
//! it, over real sockets: an absolute-form target's authority wins over
//! `Host`, an empty authority falls back to it, HTTP/2's `:authority` wins
//! over a `host` header, and two `Host` headers or an invalid one are 400
//! instead of being routed.

mod support;

use http::{Request, StatusCode};
use support::*;

fn two_hosts(a: &Backend, b: &Backend, all: &Backend) -> TestProxy {
    start_proxy(&routes_yaml(&[
        ("ra", "Host(`a.test`)", a),
        ("rb", "Host(`b.test`)", b),
        // Shorter than the Host rules, so below them by default.
        ("all", "Method(`GET`)", all),
    ]))
}

/// The backend's JSON echo in a raw HTTP/1.1 response.
fn echo_of(out: &str) -> serde_json::Value {
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absolute_form_target_wins_over_the_host_header() {
    let (a, b, all) = (backend("a"), backend("b"), backend("all"));
    let p = two_hosts(&a, &b, &all);
    let out = raw(
        p.web,
        b"GET http://b.test/x HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        out.contains("x-backend: b"),
        "routed on the URI's host: {out}"
    );
    let j = echo_of(&out);
    assert_eq!(j["path"], "/x", "sent in origin form");
    assert_eq!(j["headers"]["host"], "b.test", "the routed host is sent");
    assert_eq!(j["headers"]["x-forwarded-host"], "b.test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absolute_form_target_routes_on_its_host_without_user_information() {
    let (a, b, all) = (backend("a"), backend("b"), backend("all"));
    let p = two_hosts(&a, &b, &all);
    let out = raw(
        p.web,
        b"GET http://user@b.test:8080/y HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("x-backend: b"), "{out}");
    let j = echo_of(&out);
    assert_eq!(j["headers"]["host"], "b.test:8080");
    assert_eq!(j["headers"]["x-forwarded-port"], "8080");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absolute_form_target_without_a_host_routes_on_the_host_header() {
    let (a, b, all) = (backend("a"), backend("b"), backend("all"));
    let p = two_hosts(&a, &b, &all);
    for (target, path) in [
        ("http://@/", "/"),
        ("http://user:pw@/p?q=1", "/p?q=1"),
        ("HTTP:///x", "/x"),
        ("http://@?q", "/?q"),
    ] {
        let req = format!("GET {target} HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n");
        let out = raw(p.web, req.as_bytes()).await;
        assert!(out.starts_with("HTTP/1.1 200"), "{target}: {out}");
        assert!(
            out.contains("x-backend: b"),
            "{target}: routed on Host: {out}"
        );
        let j = echo_of(&out);
        let sent = match j["query"].as_str() {
            Some(q) if !q.is_empty() => format!("{}?{q}", j["path"].as_str().unwrap()),
            _ => j["path"].as_str().unwrap().to_owned(),
        };
        assert_eq!(sent, path, "{target}: sent in origin form: {j}");
        assert_eq!(j["headers"]["host"], "b.test");
    }
    // Only the target's host is checked: a target naming one is routed on
    // it even with an `@` further on.
    let out = raw(
        p.web,
        b"GET http://a.test/@/ HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(out.contains("x-backend: a"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_host_headers_are_400_and_never_routed() {
    let (a, b, all) = (backend("a"), backend("b"), backend("all"));
    let p = two_hosts(&a, &b, &all);
    for req in [
        &b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\nConnection: close\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\nConnection: close\r\n\r\n",
        b"GET http://b.test/ HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\nConnection: close\r\n\r\n",
    ] {
        let out = raw(p.web, req).await;
        assert!(out.starts_with("HTTP/1.1 400"), "{out}");
        assert!(
            out.ends_with("400 Bad Request: too many Host headers"),
            "{out}"
        );
    }
    for backend in [&a, &b, &all] {
        assert_eq!(
            backend
                .stats
                .requests
                .load(std::sync::atomic::Ordering::Relaxed),
            0,
            "{} was reached",
            backend.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_with_bytes_no_host_has_is_400_not_the_catch_all() {
    let (a, b, all) = (backend("a"), backend("b"), backend("all"));
    let p = two_hosts(&a, &b, &all);
    for host in [
        "a.test/evil",
        "a\"b",
        "a b",
        "a.test\\x",
        "<a>",
        "a.test?q",
        "a.test#f",
    ] {
        let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let out = raw(p.web, req.as_bytes()).await;
        assert!(out.starts_with("HTTP/1.1 400"), "Host {host:?}: {out}");
        assert!(
            out.ends_with("400 Bad Request: malformed Host header"),
            "Host {host:?}: {out}"
        );
    }
    // What Go accepts is routed: an IPv6 literal with a port, sub-delimiters,
    // an empty Host (the catch-all takes it).
    for (host, want) in [("[::1]:80", "all"), ("a.test:8080", "a"), ("", "all")] {
        let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let out = raw(p.web, req.as_bytes()).await;
        assert!(out.starts_with("HTTP/1.1 200"), "Host {host:?}: {out}");
        assert!(
            out.contains(&format!("x-backend: {want}")),
            "Host {host:?}: {out}"
        );
    }
    assert_eq!(
        all.stats
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_authority_wins_over_a_host_header() {
    let (a, b, all) = (backend("a"), backend("b"), backend("all"));
    let p = two_hosts(&a, &b, &all);
    let mut c = H2::connect(p.web).await;
    let req = Request::get("http://b.test/z")
        .header("host", "a.test")
        .body(empty())
        .unwrap();
    let r = c.send(req).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.backend(), Some("b"));
    assert_eq!(r.json()["headers"]["host"], "b.test");
    assert_eq!(r.json()["headers"]["x-forwarded-host"], "b.test");
}
