//! `errors` over real sockets: the statuses listed (a response's, an
//! unreachable backend's 502) are replaced by the page the error service
//! answers to the query (`{status}`, `{originalStatus}`, `{url}`), with
//! `statusRewrites`, the request's headers (or `errorRequestHeaders`
//! only) and the original status; other answers pass; a failing error
//! service answers the status with its text; unknown services refused.

mod support;

use support::*;

fn config(main: &Backend, pages: &str, dead: &str) -> String {
    format!(
        r#"http:
  routers:
    r:
      rule: "Host(`a.test`)"
      service: main
      middlewares: [pages]
    gone:
      rule: "Host(`dead.test`)"
      service: dead
      middlewares: [pages]
    few:
      rule: "Host(`few.test`)"
      service: main
      middlewares: [few-headers]
  services:
    main:
      loadBalancer:
        servers:
          - url: "http://{main}"
    pages:
      loadBalancer:
        servers:
          - url: "http://{pages}"
    dead:
      loadBalancer:
        servers:
          - url: "http://{dead}"
  middlewares:
    pages:
      errors:
        status: ["404", "418", "500-599"]
        service: pages
        query: "/page/{{status}}?orig={{originalStatus}}&u={{url}}"
        statusRewrites:
          "418": 410
    few-headers:
      errors:
        status: ["500"]
        service: pages@file
        errorRequestHeaders: [X-Keep]
"#,
        main = main.addr
    )
}

fn dead_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

async fn ask(p: &TestProxy, host: &str, path: &str, extra: &str) -> String {
    raw(
        p.web,
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
}

fn status(text: &str) -> u16 {
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The page backend's JSON echo in an answer.
fn echo(text: &str) -> serde_json::Value {
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_statuses_get_the_error_services_page() {
    let main = backend("main");
    let pages = backend("pages");
    let p = start_proxy(&config(&main, &pages.addr.to_string(), &dead_addr()));

    let r = ask(&p, "a.test", "/status/500", "X-Client: 1\r\n").await;
    assert_eq!(status(&r), 500, "{r}");
    let page = echo(&r);
    assert_eq!(page["name"], "pages");
    assert_eq!(page["method"], "GET");
    assert_eq!(page["path"], "/page/500");
    assert_eq!(
        page["query"],
        "orig=500&u=http%3A%2F%2Fa.test%2Fstatus%2F500"
    );
    assert_eq!(page["headers"]["x-client"], "1", "the request's headers");
    assert_eq!(page["headers"]["host"], "a.test");

    // statusRewrites: 418 answered 410, the page asked for 410.
    let r = ask(&p, "a.test", "/status/418", "").await;
    assert_eq!(status(&r), 410, "{r}");
    assert_eq!(echo(&r)["path"], "/page/410");
    assert!(echo(&r)["query"].as_str().unwrap().starts_with("orig=418&"));

    // Not listed: the backend's own answer.
    for code in [200, 401] {
        let r = ask(&p, "a.test", &format!("/status/{code}"), "").await;
        assert_eq!(status(&r), code, "{r}");
        assert!(r.ends_with(&format!("main answered {code}")), "{r}");
    }

    // An unreachable backend's 502 is caught too.
    let r = ask(&p, "dead.test", "/x", "").await;
    assert_eq!(status(&r), 502, "{r}");
    assert_eq!(echo(&r)["path"], "/page/502");

    // errorRequestHeaders: only those (and the host) reach the page.
    let r = ask(&p, "few.test", "/status/500", "X-Keep: k\r\nX-Drop: d\r\n").await;
    assert_eq!(status(&r), 500, "{r}");
    let page = echo(&r);
    assert_eq!(page["path"], "/", "no query: the root");
    assert_eq!(page["headers"]["x-keep"], "k");
    assert!(page["headers"].get("x-drop").is_none(), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_error_service_answers_the_status_with_its_text() {
    let main = backend("main");
    let p = start_proxy(&config(&main, &dead_addr(), &dead_addr()));
    let r = ask(&p, "a.test", "/status/503", "").await;
    assert_eq!(status(&r), 503, "{r}");
    assert!(r.ends_with("Bad Gateway\n"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_error_service_is_refused_where_written() {
    let main = backend("main");
    let bad =
        config(&main, &dead_addr(), &dead_addr()).replace("service: pages@file", "service: pagez");
    let errors = dynamic_errors(&bad);
    assert!(errors.contains("unknown service \"pagez\""), "{errors}");
    assert!(errors.contains("http.middlewares.few-headers"), "{errors}");
    // Its router keeps its place and answers 503; the others serve.
    let p = start_proxy(&bad);
    assert_eq!(status(&ask(&p, "few.test", "/status/200", "").await), 503);
    assert_eq!(status(&ask(&p, "a.test", "/status/200", "").await), 200);
}
