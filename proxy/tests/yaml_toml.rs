//! The same dynamic configuration written in YAML and in TOML routes the
//! same requests to the same backends.

mod support;

use http::StatusCode;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yaml_and_toml_route_identically() {
    let a = backend("a");
    let b = backend("b");
    let yaml = format!(
        r#"http:
  routers:
    api:
      rule: "Host(`api.test`) && PathPrefix(`/v1`)"
      service: api
      priority: 10
    web:
      Rule: "Host(`www.test`) || Host(`web.test`)"
      Service: web
  services:
    api:
      loadBalancer:
        servers:
          - url: "http://{a}"
    web:
      LoadBalancer:
        passHostHeader: false
        servers:
          - url: "http://{b}"
"#,
        a = a.addr,
        b = b.addr
    );
    let toml = format!(
        r#"[http.routers.api]
rule = "Host(`api.test`) && PathPrefix(`/v1`)"
service = "api"
priority = 10

[http.routers.web]
Rule = "Host(`www.test`) || Host(`web.test`)"
Service = "web"

[http.services.api.loadBalancer]
[[http.services.api.loadBalancer.servers]]
url = "http://{a}"

[http.services.web.LoadBalancer]
passHostHeader = false
[[http.services.web.LoadBalancer.servers]]
url = "http://{b}"
"#,
        a = a.addr,
        b = b.addr
    );
    let py = start_proxy(&yaml);
    let dir = TempDir::new("toml");
    dir.write("dynamic.toml", &toml);
    let stat = format!(
        "[entryPoints.web]\naddress = \"127.0.0.1:0\"\n[providers.file]\nfilename = \"{}/dynamic.toml\"\n",
        dir.path().display()
    );
    let file = dir.write("static.toml", &stat);
    let pt = start_file(&file, 1);
    let toml_web = pt.addr("web").unwrap();

    let cases = [
        ("api.test", "/v1/users"),
        ("api.test", "/v2"),
        ("www.test", "/"),
        ("web.test", "/x"),
        ("other.test", "/v1"),
    ];
    for (host, path) in cases {
        let ry = get(py.web, host, path).await;
        let rt = get(toml_web, host, path).await;
        assert_eq!(ry.status, rt.status, "{host}{path}");
        assert_eq!(ry.backend(), rt.backend(), "{host}{path}");
        if ry.status == StatusCode::OK {
            assert_eq!(ry.json()["headers"]["host"], rt.json()["headers"]["host"]);
        }
    }
    assert_eq!(get(toml_web, "www.test", "/").await.backend(), Some("b"));
    assert_eq!(get(toml_web, "api.test", "/v1").await.backend(), Some("a"));
    pt.shutdown(Some(std::time::Duration::from_millis(100)));
}
