//! Configurations Traefik accepts that the proxy used to refuse, over real
//! sockets: a static file that names itself as the file provider's
//! `filename` (static and dynamic in one file), a service without servers
//! (503), and the refusals that name what is missing (Go templates, TCP).

mod support;

use http::StatusCode;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_file_naming_itself_as_the_dynamic_file_is_served() {
    let b = backend("b");
    let dir = TempDir::new("self");
    let path = dir.path().join("traefik.yml");
    let text = format!(
        "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\nproviders:\n  file:\n    filename: \"{}\"\n{}",
        path.display(),
        routes_yaml(&[("r", "PathPrefix(`/`)", &b)])
    );
    let file = dir.write("traefik.yml", &text);
    let running = start_file(&file, 1);
    let web = running.addr("web").unwrap();
    assert_eq!(get(web, "x", "/").await.backend(), Some("b"));
    running.shutdown(Some(std::time::Duration::from_millis(200)));

    // Another static file with an http section is still told where it
    // belongs.
    let other = dir.write(
        "static.yml",
        &text.replace(&path.display().to_string(), "elsewhere.yml"),
    );
    let e = proxy::config::load_static(&other).unwrap_err().to_string();
    assert!(
        e.contains("http: not supported yet: dynamic configuration belongs"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_without_servers_answers_503() {
    let p = start_proxy(
        "http:\n  routers:\n    r:\n      rule: \"PathPrefix(`/`)\"\n      service: empty\n  services:\n    empty:\n      loadBalancer:\n        servers: []\n",
    );
    let r = get(p.web, "x", "/").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(p.running().control().snapshot().load().disabled.is_empty());
}

#[test]
fn go_templates_and_tcp_sections_are_refused_naming_the_feature() {
    let e = try_start_proxy(
        "http:\n  routers:\n    r:\n      rule: \"Host(`{{ env \"HOST\" }}`)\"\n      service: s\n",
    )
    .map(drop)
    .expect_err("refused");
    assert!(
        e.contains("dynamic.yml:4:20: Go template actions ({{ ... }}) are not supported"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "one cause, one message: {e}");

    let e = try_start_proxy(
        "tcp:\n  routers:\n    t:\n      rule: \"HostSNI(`*`)\"\n      service: s\nudp:\n  services: {}\n",
    )
    .map(drop)
    .expect_err("refused");
    assert!(
        e.contains("dynamic.yml:1:1: tcp: not supported yet: TCP routing"),
        "{e}"
    );
    assert!(
        e.contains("dynamic.yml:6:1: udp: not supported yet: UDP routing"),
        "{e}"
    );
}
