//! Tests of the static and dynamic models through their public entry
//! points: both syntaxes, messages with positions, defaults, merging.

use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;

use super::*;

fn eps() -> Vec<String> {
    vec!["web".to_owned(), "websecure".to_owned()]
}

fn dyn_yaml(text: &str) -> Result<(DynamicConfig, Vec<ConfigWarning>), ConfigErrors> {
    parse_dynamic(text, Format::Yaml, Path::new("dynamic.yml"), &eps())
}

fn dyn_toml(text: &str) -> Result<(DynamicConfig, Vec<ConfigWarning>), ConfigErrors> {
    parse_dynamic(text, Format::Toml, Path::new("dynamic.toml"), &eps())
}

fn static_yaml(text: &str) -> Result<(StaticConfig, Vec<ConfigWarning>), ConfigErrors> {
    parse_static(text, Format::Yaml, Path::new("traefik.yml"))
}

/// The rendered errors, one string each.
fn errs<T: std::fmt::Debug>(r: Result<T, ConfigErrors>) -> Vec<String> {
    r.expect_err("expected errors")
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn has(list: &[String], needle: &str) -> bool {
    list.iter().any(|e| e.contains(needle))
}

#[track_caller]
fn assert_has(list: &[String], needle: &str) {
    assert!(has(list, needle), "no {needle:?} in:\n{}", list.join("\n"));
}

fn warns(list: &[ConfigWarning]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

/// Origins differ between two files by design; compare the rest.
fn without_origins(mut c: DynamicConfig) -> DynamicConfig {
    for r in c.routers.values_mut() {
        r.origin = Origin::default();
        r.rule_origin = Origin::default();
    }
    for s in c.services.values_mut() {
        let ServiceConfig::LoadBalancer(lb) = s;
        lb.origin = Origin::default();
    }
    for t in c.servers_transports.values_mut() {
        t.origin = Origin::default();
    }
    c
}

const YAML: &str = r#"
http:
  routers:
    api:
      rule: "Host(`example.com`) && PathPrefix(`/api`)"
      service: api@file
      entryPoints: [web]
      priority: 10
    site:
      rule: Host(`example.com`)
      service: site
  services:
    api:
      loadBalancer:
        passHostHeader: false
        serversTransport: slow
        servers:
          - url: http://10.0.0.1:8080
            weight: 3
          - url: h2c://10.0.0.2:8080/base
            preservePath: true
    site:
      loadBalancer:
        servers:
          - url: "http://site:80"
  serversTransports:
    slow:
      maxIdleConnsPerHost: 7
      disableHTTP2: true
      forwardingTimeouts:
        dialTimeout: 5s
        responseHeaderTimeout: 1m30s
        idleConnTimeout: 10
"#;

const TOML: &str = r#"
[http.routers.api]
rule = "Host(`example.com`) && PathPrefix(`/api`)"
service = "api@file"
entryPoints = ["web"]
priority = 10

[http.routers.site]
rule = "Host(`example.com`)"
service = "site"

[http.services.api.loadBalancer]
passHostHeader = false
serversTransport = "slow"
[[http.services.api.loadBalancer.servers]]
url = "http://10.0.0.1:8080"
weight = 3
[[http.services.api.loadBalancer.servers]]
url = "h2c://10.0.0.2:8080/base"
preservePath = true

[http.services.site.loadBalancer]
servers = [{ url = "http://site:80" }]

[http.serversTransports.slow]
maxIdleConnsPerHost = 7
disableHTTP2 = true
[http.serversTransports.slow.forwardingTimeouts]
dialTimeout = "5s"
responseHeaderTimeout = "1m30s"
idleConnTimeout = 10
"#;

// === dynamic ===

#[test]
fn yaml_and_toml_give_the_same_model() {
    let (y, yw) = dyn_yaml(YAML).unwrap();
    let (t, tw) = dyn_toml(TOML).unwrap();
    assert!(yw.is_empty() && tw.is_empty(), "{yw:?} {tw:?}");
    assert_eq!(without_origins(y.clone()), without_origins(t));

    let api = &y.routers["api"];
    assert_eq!(api.name, "api");
    assert_eq!(api.rule, "Host(`example.com`) && PathPrefix(`/api`)");
    assert_eq!(api.service, "api");
    assert_eq!(api.entry_points, vec!["web"]);
    assert_eq!(api.priority, Some(10));
    assert_eq!((api.origin.line, api.origin.column), (4, 5));
    assert!(y.routers["site"].entry_points.is_empty());
    assert_eq!(y.routers["site"].priority, None);

    let ServiceConfig::LoadBalancer(lb) = &y.services["api"];
    assert!(!lb.pass_host_header);
    assert_eq!(lb.servers_transport.as_deref(), Some("slow"));
    assert_eq!(lb.servers.len(), 2);
    assert_eq!(lb.servers[0].weight, Some(3));
    assert!(!lb.servers[0].h2c);
    assert_eq!(lb.servers[0].uri.host(), Some("10.0.0.1"));
    assert_eq!(lb.servers[0].uri.port_u16(), Some(8080));
    assert!(lb.servers[1].h2c && lb.servers[1].preserve_path);
    assert_eq!(lb.servers[1].uri.path(), "/base");
    let ServiceConfig::LoadBalancer(site) = &y.services["site"];
    assert!(site.pass_host_header, "default is true");
    assert_eq!(site.servers[0].weight, None);

    let slow = &y.servers_transports["slow"];
    assert_eq!(slow.max_idle_conns_per_host, 7);
    assert!(slow.disable_http2);
    assert_eq!(
        slow.forwarding_timeouts.dial_timeout,
        Duration::from_secs(5)
    );
    assert_eq!(
        slow.forwarding_timeouts.response_header_timeout,
        Duration::from_secs(90)
    );
    assert_eq!(
        slow.forwarding_timeouts.idle_conn_timeout,
        Duration::from_secs(10)
    );
    // Unset fields keep Traefik's defaults.
    assert_eq!(
        slow.forwarding_timeouts.ping_timeout,
        Duration::from_secs(15)
    );
    assert_eq!(y.transport_for(site), ServersTransportConfig::default());
    assert_eq!(y.transport_for(lb).max_idle_conns_per_host, 7);
}

#[test]
fn rule_origin_points_inside_the_quotes() {
    let (y, _) = dyn_yaml(YAML).unwrap();
    // `      rule: "Host(...` : the quote is column 13, the H column 14.
    let o = &y.routers["api"].rule_origin;
    assert_eq!((o.line, o.column), (5, 14));
    assert_eq!(o.file, PathBuf::from("dynamic.yml"));
    // Unquoted: the first character.
    let o = &y.routers["site"].rule_origin;
    assert_eq!((o.line, o.column), (10, 13));
    let (t, _) = dyn_toml(TOML).unwrap();
    let o = &t.routers["api"].rule_origin;
    assert_eq!((o.line, o.column), (3, 9));
}

#[test]
fn servers_transport_defaults() {
    let d = ServersTransportConfig::default();
    assert_eq!(d.max_idle_conns_per_host, 200);
    assert!(!d.disable_http2);
    let t = d.forwarding_timeouts;
    assert_eq!(t.dial_timeout, Duration::from_secs(30));
    assert_eq!(t.response_header_timeout, Duration::ZERO);
    assert_eq!(t.idle_conn_timeout, Duration::from_secs(90));
    assert_eq!(t.read_idle_timeout, Duration::ZERO);
    assert_eq!(t.ping_timeout, Duration::from_secs(15));
}

#[test]
fn keys_are_case_insensitive_names_are_not() {
    let text = "HTTP:\n  Routers:\n    Api:\n      RULE: Path(`/`)\n      Service: Svc\n      entrypoints: web,websecure\n      PRIORITY: \"5\"\n  SERVICES:\n    Svc:\n      loadbalancer:\n        SERVERS:\n          - URL: http://a\n        PassHostHeader: \"false\"\n";
    let (c, w) = dyn_yaml(text).unwrap();
    assert!(w.is_empty());
    let r = &c.routers["Api"];
    assert_eq!(r.service, "Svc");
    assert_eq!(r.entry_points, vec!["web", "websecure"]);
    assert_eq!(r.priority, Some(5));
    assert!(!c.routers.contains_key("api"));
    let e = errs(dyn_yaml(
        "http:\n  routers:\n    r:\n      rule: Path(`/`)\n      service: svc\n  services:\n    Svc:\n      loadBalancer:\n        servers: [{url: http://a}]\n",
    ));
    assert_eq!(
        e,
        vec![
            "dynamic.yml:5:16: http.routers.r.service: unknown service \"svc\" (did you mean \"Svc\"?)"
        ]
    );
}

#[test]
fn two_spellings_of_a_section_merge() {
    let text = "http:\n  Routers:\n    a:\n      rule: Path(`/a`)\n      service: s\n  routers:\n    b:\n      rule: Path(`/b`)\n      service: s\n  services:\n    s:\n      loadBalancer:\n        servers: [{url: 'http://a'}]\n";
    let (c, _) = dyn_yaml(text).unwrap();
    assert_eq!(c.routers.keys().collect::<Vec<_>>(), vec!["a", "b"]);
}

#[test]
fn duplicate_keys_differing_in_case_are_errors() {
    let e = errs(dyn_yaml(
        "http:\n  routers:\n    r:\n      rule: Path(`/`)\n      Rule: Path(`/x`)\n      service: s\n",
    ));
    assert_has(
        &e,
        "dynamic.yml:5:7: http.routers.r.Rule: duplicate key \"Rule\"",
    );
}

#[test]
fn unknown_keys_with_did_you_mean() {
    let e = errs(dyn_yaml(
        "http:\n  routers:\n    api:\n      rule: Path(`/`)\n      servce: api\n  servics: {}\nfoo: 1\n",
    ));
    assert_has(
        &e,
        "dynamic.yml:5:7: http.routers.api.servce: unknown key \"servce\" (did you mean \"service\"?)",
    );
    assert_has(
        &e,
        "dynamic.yml:6:3: http.servics: unknown key \"servics\" (did you mean \"services\"?)",
    );
    assert_has(&e, "dynamic.yml:7:1: foo: unknown key \"foo\"");
    assert!(!has(&e, "foo\" (did you mean"));
    // The missing service is reported too: every error is collected.
    assert_has(
        &e,
        "dynamic.yml:3:5: http.routers.api: router has no service",
    );
}

#[test]
fn unknown_references_with_suggestions() {
    let text = r#"
http:
  routers:
    api:
      rule: Path(`/`)
      service: apii
      entryPoints: [webb]
      middlewares: [auht]
  services:
    api:
      loadBalancer:
        serversTransport: defualt
        servers: [{url: "http://a"}]
"#;
    let e = errs(dyn_yaml(text));
    assert_has(
        &e,
        "dynamic.yml:6:16: http.routers.api.service: unknown service \"apii\" (did you mean \"api\"?)",
    );
    assert_has(
        &e,
        "dynamic.yml:7:21: http.routers.api.entryPoints: unknown entrypoint \"webb\" (did you mean \"web\"?)",
    );
    assert_has(
        &e,
        "http.routers.api.middlewares: unknown middleware \"auht\"",
    );
    assert_has(
        &e,
        "dynamic.yml:12:27: http.services.api.loadBalancer.serversTransport: unknown serversTransport \"defualt\"",
    );
    assert_eq!(e.len(), 4, "{e:?}");
    let all = dyn_yaml(text).unwrap_err().to_string();
    assert_eq!(all.lines().count(), 4);
}

#[test]
fn provider_suffixes() {
    let base = "http:\n  services:\n    s:\n      loadBalancer:\n        servers: [{url: 'http://a'}]\n  routers:\n    r:\n      rule: Path(`/`)\n      service: ";
    assert!(dyn_yaml(&format!("{base}s@file\n")).is_ok());
    let e = errs(dyn_yaml(&format!("{base}api@internal\n")));
    assert_has(
        &e,
        "service \"api@internal\": @internal services are not supported yet",
    );
    let e = errs(dyn_yaml(&format!("{base}s@docker\n")));
    assert_has(&e, "provider \"docker\" is not supported (only @file)");
}

#[test]
fn unsupported_router_features_are_errors() {
    let text = r#"
http:
  routers:
    a:
      rule: Path(`/`)
      service: s
      tls: {}
    b:
      rule: Path(`/`)
      service: s
      ruleSyntax: v2
    c:
      rule: Path(`/`)
      service: s
      priority: -1
    d:
      rule: Path(`/`)
      service: s
      priority: high
    e:
      service: s
    f:
      rule: ""
      service: s
    g:
      rule: Path(`/`)
      service: s
      ruleSyntax: v4
  services:
    s:
      loadBalancer:
        servers: [{url: "http://a"}]
"#;
    let e = errs(dyn_yaml(text));
    assert_has(
        &e,
        "dynamic.yml:7:7: http.routers.a.tls: not supported yet: no TLS yet",
    );
    assert_has(
        &e,
        "dynamic.yml:11:19: http.routers.b.ruleSyntax: rule syntax \"v2\" is not supported yet",
    );
    assert_has(
        &e,
        "dynamic.yml:15:17: http.routers.c.priority: must not be negative, found -1",
    );
    assert_has(
        &e,
        "http.routers.d.priority: expected an integer, found \"high\"",
    );
    assert_has(&e, "dynamic.yml:20:5: http.routers.e: router has no rule");
    assert_has(&e, "http.routers.f.rule: rule is empty");
    assert_has(&e, "http.routers.g.ruleSyntax: unknown rule syntax \"v4\"");
    assert_eq!(e.len(), 7, "{e:#?}");
}

#[test]
fn middlewares_are_not_supported_yet() {
    let text = "http:\n  middlewares:\n    auth:\n      basicAuth:\n        users: [a]\n    odd:\n      basicAuht: {}\n    none: {}\n";
    let e = errs(dyn_yaml(text));
    assert_has(
        &e,
        "dynamic.yml:4:7: http.middlewares.auth.basicAuth: middleware type \"basicAuth\" is not supported yet",
    );
    assert_has(
        &e,
        "dynamic.yml:7:7: http.middlewares.odd.basicAuht: unknown middleware type \"basicAuht\" (did you mean \"basicAuth\"?)",
    );
    assert_has(&e, "http.middlewares.none: middleware has no type");
    // A router naming a defined (if refused) middleware gets no second error.
    let text = "http:\n  middlewares:\n    auth:\n      basicAuth: {}\n  routers:\n    r:\n      rule: Path(`/`)\n      service: s\n      middlewares: [auth@file]\n  services:\n    s:\n      loadBalancer:\n        servers: [{url: 'http://a'}]\n";
    let e = errs(dyn_yaml(text));
    assert_eq!(e.len(), 1, "{e:?}");
}

#[test]
fn service_errors() {
    let text = r#"
http:
  services:
    w:
      weighted:
        services: [{name: a}]
    empty:
      loadBalancer:
        servers: []
    noservers:
      loadBalancer: {}
    tls:
      loadBalancer:
        servers:
          - url: https://secure:443
    rel:
      loadBalancer:
        servers:
          - url: /just/a/path
          - url: "ftp://x"
          - url: "http://"
          - weight: 1
    two:
      loadBalancer:
        servers: [{url: "http://a"}]
      mirroring:
        service: x
    notype: {}
    badweight:
      loadBalancer:
        passHostHeader: maybe
        servers:
          - url: http://a
            weight: -2
"#;
    let e = errs(dyn_yaml(text));
    assert_has(
        &e,
        "dynamic.yml:5:7: http.services.w.weighted: not supported yet: only loadBalancer services exist",
    );
    assert_has(
        &e,
        "dynamic.yml:9:18: http.services.empty.loadBalancer.servers: load balancer has no servers",
    );
    assert_has(
        &e,
        "http.services.noservers.loadBalancer: load balancer has no servers",
    );
    assert_has(
        &e,
        "dynamic.yml:15:18: http.services.tls.loadBalancer.servers[0].url: https server URL \"https://secure:443\" is not supported yet",
    );
    assert_has(
        &e,
        "http.services.rel.loadBalancer.servers[0].url: server URL \"/just/a/path\" must be absolute",
    );
    assert_has(
        &e,
        "servers[1].url: server URL \"ftp://x\" has unsupported scheme \"ftp\"",
    );
    assert_has(&e, "servers[2].url: invalid server URL \"http://\"");
    assert_has(&e, "servers[3]: server has no url");
    assert_has(
        &e,
        "http.services.two: a service must have exactly one type",
    );
    assert_has(
        &e,
        "http.services.notype: service has no type (expected loadBalancer)",
    );
    assert_has(
        &e,
        "http.services.badweight.loadBalancer.passHostHeader: expected a boolean",
    );
    assert_has(&e, "servers[0].weight: must not be negative");
}

#[test]
fn warnings_for_ignored_keys() {
    let text = r#"
http:
  routers:
    r:
      rule: Path(`/`)
      service: s
      observability: {accessLogs: false}
  services:
    s:
      loadBalancer:
        healthCheck: {path: /health}
        sticky: {cookie: {}}
        servers: [{url: "http://a"}]
  serversTransports:
    t:
      insecureSkipVerify: true
tcp:
  routers: {}
tls:
  certificates: []
"#;
    let (_, w) = dyn_yaml(text).unwrap();
    let w = warns(&w);
    assert_has(
        &w,
        "dynamic.yml:7:7: http.routers.r.observability: not supported yet; ignored",
    );
    assert_has(
        &w,
        "dynamic.yml:11:9: http.services.s.loadBalancer.healthCheck: not supported yet; ignored (servers are not health-checked)",
    );
    assert_has(
        &w,
        "http.services.s.loadBalancer.sticky: not supported yet; ignored",
    );
    assert_has(
        &w,
        "http.serversTransports.t.insecureSkipVerify: not supported yet; ignored",
    );
    assert_has(&w, "dynamic.yml:17:1: tcp: not supported yet; ignored");
    assert_has(&w, "dynamic.yml:19:1: tls: not supported yet; ignored");
}

#[test]
fn wrong_types_name_the_key() {
    let text = "http:\n  routers:\n    r:\n      rule: {a: 1}\n      service: [x]\n  serversTransports:\n    t:\n      forwardingTimeouts:\n        dialTimeout: 10 seconds\n        idleConnTimeout: 1.5\n  services: []\n";
    let e = errs(dyn_yaml(text));
    assert_has(
        &e,
        "dynamic.yml:4:13: http.routers.r.rule: expected a string, found a map",
    );
    assert_has(
        &e,
        "http.routers.r.service: expected a string, found a list",
    );
    assert_has(
        &e,
        "dynamic.yml:9:22: http.serversTransports.t.forwardingTimeouts.dialTimeout: invalid duration \"10 seconds\"",
    );
    assert_has(
        &e,
        "forwardingTimeouts.idleConnTimeout: invalid duration 1.5",
    );
    assert_has(
        &e,
        "dynamic.yml:11:13: http.services: expected a map, found a list",
    );
}

#[test]
fn toml_errors_have_positions() {
    let text = "[http.routers.api]\nrule = \"Path(`/`)\"\nservice = \"apii\"\n\n[http.services.api.loadBalancer]\nservers = [{ url = \"http://a\" }]\n";
    let e = errs(dyn_toml(text));
    assert_eq!(
        e,
        vec![
            "dynamic.toml:3:12: http.routers.api.service: unknown service \"apii\" (did you mean \"api\"?)"
        ]
    );
    let e = errs(dyn_toml("[http.routers.api]\nrule = \n"));
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("dynamic.toml:2:"), "{e:?}");
    assert!(e[0].contains("TOML syntax error"), "{e:?}");
}

#[test]
fn yaml_syntax_error_stops_that_file() {
    let e = errs(dyn_yaml("http:\n  routers:\n    r: [\n"));
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("dynamic.yml:"), "{e:?}");
    assert!(e[0].contains("YAML syntax error"), "{e:?}");
}

#[test]
fn empty_files_are_empty_configs() {
    assert_eq!(dyn_yaml("").unwrap().0, DynamicConfig::default());
    assert_eq!(dyn_toml("").unwrap().0, DynamicConfig::default());
    assert_eq!(
        dyn_yaml("http:\n  routers:\n").unwrap().0,
        DynamicConfig::default()
    );
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "proxy-config-{tag}-{}-{nanos}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.0.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn directory_merge_keeps_first_and_warns() {
    let dir = TempDir::new("merge");
    dir.write(
        "a.yml",
        "http:\n  routers:\n    r:\n      rule: Path(`/a`)\n      service: s\n",
    );
    dir.write(
        "b/services.toml",
        "[http.services.s.loadBalancer]\nservers = [{ url = \"http://a\" }]\n[http.routers.r]\nrule = \"Path(`/b`)\"\nservice = \"s\"\n",
    );
    dir.write("c.yaml", "");
    dir.write("notes.txt", "not config");
    let file = FileProviderConfig {
        filename: None,
        directory: Some(dir.0.clone()),
        watch: true,
    };
    let (c, w) = load_dynamic(&file, &eps()).unwrap();
    assert_eq!(c.routers["r"].rule, "Path(`/a`)");
    assert_eq!(c.routers["r"].origin.file, dir.0.join("a.yml"));
    assert!(c.services.contains_key("s"));
    let w = warns(&w);
    assert_eq!(w.len(), 1, "{w:?}");
    let a = dir.0.join("a.yml").display().to_string();
    let b = dir.0.join("b/services.toml").display().to_string();
    assert!(
        w[0].starts_with(&format!(
            "{b}:3:15: r: router \"r\" is already defined in {a}:3:5"
        )),
        "{w:?}"
    );

    // Errors from several files are all reported.
    dir.write(
        "d.yml",
        "http:\n  routers:\n    x:\n      rule: Path(`/`)\n      service: nope\n",
    );
    dir.write("e.toml", "[http]\nfoo = 1\n");
    let e = errs(load_dynamic(&file, &eps()));
    assert_eq!(e.len(), 2, "{e:?}");
    assert_has(
        &e,
        "d.yml:5:16: http.routers.x.service: unknown service \"nope\"",
    );
    assert_has(&e, "e.toml:2:1: http.foo: unknown key \"foo\"");
}

#[test]
fn load_dynamic_single_file_and_bad_extension() {
    let dir = TempDir::new("single");
    let p = dir.write("dyn.toml", TOML);
    let file = FileProviderConfig {
        filename: Some(p),
        directory: None,
        watch: false,
    };
    let (c, _) = load_dynamic(&file, &eps()).unwrap();
    assert_eq!(c.routers.len(), 2);
    let p = dir.write("dyn.json", "{}");
    let file = FileProviderConfig {
        filename: Some(p),
        directory: None,
        watch: false,
    };
    assert_has(
        &errs(load_dynamic(&file, &eps())),
        "unsupported file extension (expected .yml, .yaml or .toml)",
    );
    let file = FileProviderConfig {
        filename: Some(dir.0.join("missing.yml")),
        directory: None,
        watch: false,
    };
    assert_has(&errs(load_dynamic(&file, &eps())), "cannot read file");
}

// === static ===

#[test]
fn static_defaults() {
    let (c, w) = static_yaml("").unwrap();
    assert!(w.is_empty());
    assert_eq!(c.entry_points.len(), 1);
    let http = &c.entry_points[0];
    assert_eq!(http.name, "http");
    assert_eq!(http.address, ":80");
    assert_eq!(http.addr, "0.0.0.0:80".parse().unwrap());
    let t = &http.transport;
    assert_eq!(t.responding_timeouts.read_timeout, Duration::from_secs(60));
    assert_eq!(t.responding_timeouts.write_timeout, Duration::ZERO);
    assert_eq!(t.responding_timeouts.idle_timeout, Duration::from_secs(180));
    assert_eq!(t.life_cycle.request_accept_grace_timeout, Duration::ZERO);
    assert_eq!(t.life_cycle.grace_time_out, Duration::from_secs(10));
    assert_eq!(t.keep_alive_max_requests, 0);
    assert_eq!(t.keep_alive_max_time, Duration::ZERO);
    assert_eq!(c.providers.file, None);
    assert_eq!(
        c.providers.providers_throttle_duration,
        Duration::from_secs(2)
    );
    assert_eq!(c.log.level, LogLevel::Error);
    assert_eq!(c.log.format, LogFormat::Common);
    assert_eq!(c.access_log, None);
    assert_eq!(c.metrics.prometheus, None);
    assert_eq!(c.ping, None);
}

#[test]
fn static_full() {
    let text = r#"
global:
  checkNewVersion: false
  sendAnonymousUsage: false
entryPoints:
  websecure:
    address: "127.0.0.1:0"
    asDefault: true
    forwardedHeaders:
      trustedIPs: ["10.0.0.0/8", "fd00::/8", 192.168.1.1]
      insecure: false
  web:
    address: ":8000/tcp"
    transport:
      respondingTimeouts:
        readTimeout: 5s
        writeTimeout: 10
        idleTimeout: 1m
      lifeCycle:
        requestAcceptGraceTimeout: 2s
        graceTimeOut: 30s
      keepAliveMaxRequests: 100
      keepAliveMaxTime: 1h
providers:
  providersThrottleDuration: 500ms
  file:
    filename: dynamic.yml
    watch: false
log:
  level: debug
  format: json
  filePath: /var/log/traefik.log
accessLog:
  bufferingSize: 100
metrics:
  prometheus:
    buckets: [0.05, 0.5, 2]
    addRoutersLabels: true
    entryPoint: web
ping: {}
"#;
    let (c, w) = static_yaml(text).unwrap();
    assert!(w.is_empty(), "{w:?}");
    // Sorted by name; ping on `traefik` adds the internal entrypoint.
    let names = c.entry_point_names();
    assert_eq!(names, vec!["traefik", "web", "websecure"]);
    assert_eq!(c.default_entry_points(), vec!["websecure"]);
    let web = c.entry_point("web").unwrap();
    assert_eq!(web.addr, "0.0.0.0:8000".parse().unwrap());
    assert_eq!((web.origin.line, web.origin.column), (12, 3));
    let t = &web.transport;
    assert_eq!(t.responding_timeouts.read_timeout, Duration::from_secs(5));
    assert_eq!(t.responding_timeouts.write_timeout, Duration::from_secs(10));
    assert_eq!(t.responding_timeouts.idle_timeout, Duration::from_secs(60));
    assert_eq!(
        t.life_cycle.request_accept_grace_timeout,
        Duration::from_secs(2)
    );
    assert_eq!(t.life_cycle.grace_time_out, Duration::from_secs(30));
    assert_eq!(t.keep_alive_max_requests, 100);
    assert_eq!(t.keep_alive_max_time, Duration::from_secs(3600));
    let ws = c.entry_point("websecure").unwrap();
    assert_eq!(ws.addr, "127.0.0.1:0".parse().unwrap());
    let ips = &ws.forwarded_headers.trusted_ips;
    assert_eq!(ips.len(), 3);
    assert!(ips[0].contains("10.9.8.7".parse().unwrap()));
    assert!(ips[1].contains("fd00::1".parse().unwrap()));
    assert_eq!(ips[2].prefix_len(), 32);
    let traefik = c.entry_point("traefik").unwrap();
    assert_eq!(traefik.addr, "0.0.0.0:8080".parse().unwrap());
    assert_eq!(traefik.origin.line, 0);

    let file = c.providers.file.as_ref().unwrap();
    assert_eq!(file.filename, Some(PathBuf::from("dynamic.yml")));
    assert!(!file.watch);
    assert_eq!(
        c.providers.providers_throttle_duration,
        Duration::from_millis(500)
    );
    assert_eq!(c.log.level, LogLevel::Debug);
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.log.file_path, Some(PathBuf::from("/var/log/traefik.log")));
    let al = c.access_log.as_ref().unwrap();
    assert_eq!(
        (al.file_path.as_ref(), al.format, al.buffering_size),
        (None, LogFormat::Common, 100)
    );
    let p = c.metrics.prometheus.as_ref().unwrap();
    assert_eq!(p.buckets, vec![0.05, 0.5, 2.0]);
    assert!(p.add_routers_labels && p.add_entry_points_labels && p.add_services_labels);
    assert_eq!(p.entry_point, "web");
    let ping = c.ping.as_ref().unwrap();
    assert_eq!(ping.entry_point, "traefik");
    assert_eq!(ping.terminating_status_code, 503);
}

#[test]
fn implicit_entry_points() {
    // Prometheus with defaults needs `traefik`; user entrypoints suppress `http`.
    let (c, _) =
        static_yaml("entryPoints:\n  web:\n    address: ':80'\nmetrics:\n  prometheus: {}\n")
            .unwrap();
    assert_eq!(c.entry_point_names(), vec!["traefik", "web"]);
    let p = c.metrics.prometheus.as_ref().unwrap();
    assert_eq!(p.buckets, vec![0.1, 0.3, 1.2, 5.0]);
    assert!(!p.add_routers_labels);
    // Nothing needs it: no `traefik`; none defined: the default `http`.
    let (c, _) = static_yaml("ping:\n  entryPoint: http\n").unwrap();
    assert_eq!(c.entry_point_names(), vec!["http"]);
    // Manual routing doesn't need it either.
    let (c, _) = static_yaml("ping:\n  manualRouting: true\n").unwrap();
    assert_eq!(c.entry_point_names(), vec!["http"]);
    // api.insecure creates it too, with a warning for the ignored api.
    let (c, w) = static_yaml("api:\n  insecure: true\n").unwrap();
    assert_eq!(c.entry_point_names(), vec!["http", "traefik"]);
    assert_has(
        &warns(&w),
        "traefik.yml:1:1: api: not supported yet; ignored",
    );
    // A user-defined `traefik` is kept as is.
    let (c, _) =
        static_yaml("entryPoints:\n  traefik:\n    address: ':9000'\nping: true\n").unwrap();
    assert_eq!(c.entry_point("traefik").unwrap().address, ":9000");
    // ping on an unknown entrypoint.
    let e = errs(static_yaml(
        "entryPoints:\n  web:\n    address: ':80'\nping:\n  entryPoint: wbe\n",
    ));
    assert_has(
        &e,
        "ping.entryPoint: unknown entrypoint \"wbe\" (did you mean \"web\"?)",
    );
}

#[test]
fn static_errors_and_warnings() {
    let text = r#"
entryPoints:
  dns:
    address: ":53/udp"
  pp:
    address: ":81"
    proxyProtocol:
      trustedIPs: [127.0.0.1]
  sec:
    address: ":443"
    http:
      tls: {}
      middlewares: [a]
      redirections: {}
      encodeQuerySemicolons: true
    http3: {}
  bad:
    address: ":99999"
  noaddr: {}
  ips:
    address: ":82"
    forwardedHeaders:
      trustedIPs: ["10.0.0.0/33"]
    transport:
      respondingTimeouts:
        readTimeout: soon
providers:
  docker: {}
  file:
    filename: a.yml
    directory: dir
log:
  level: LOUD
  format: xml
core:
  defaultRuleSyntax: v2
http:
  routers: {}
tracing: {}
experimental: {}
certificatesResolvers: {}
entrypoint: {}
"#;
    let e = errs(static_yaml(text));
    assert_has(
        &e,
        "traefik.yml:4:15: entryPoints.dns.address: UDP entrypoints are not supported yet",
    );
    assert_has(
        &e,
        "traefik.yml:7:5: entryPoints.pp.proxyProtocol: not supported yet: it changes which address is the client's",
    );
    assert_has(
        &e,
        "traefik.yml:12:7: entryPoints.sec.http.tls: not supported yet",
    );
    assert_has(&e, "entryPoints.sec.http.middlewares: not supported yet");
    assert_has(&e, "entryPoints.sec.http.redirections: not supported yet");
    assert_has(&e, "entryPoints.bad.address: invalid port \"99999\"");
    assert_has(
        &e,
        "traefik.yml:19:3: entryPoints.noaddr: entrypoint has no address",
    );
    assert_has(
        &e,
        "entryPoints.ips.forwardedHeaders.trustedIPs: \"10.0.0.0/33\" has an invalid prefix length",
    );
    assert_has(
        &e,
        "entryPoints.ips.transport.respondingTimeouts.readTimeout: invalid duration \"soon\"",
    );
    assert_has(
        &e,
        "traefik.yml:29:3: providers.file: filename and directory are both set",
    );
    assert_has(&e, "log.level: unknown log level \"LOUD\"");
    assert_has(&e, "log.format: unknown format \"xml\"");
    assert_has(
        &e,
        "core.defaultRuleSyntax: rule syntax \"v2\" is not supported yet",
    );
    assert_has(
        &e,
        "traefik.yml:37:1: http: not supported yet: dynamic configuration belongs in the file given to providers.file",
    );
    assert_has(
        &e,
        "entrypoint: unknown key \"entrypoint\" (did you mean \"entryPoints\"?)",
    );
    assert!(!has(&e, "encodeQuerySemicolons"), "a warning, not an error");
    assert!(
        e[0].starts_with("traefik.yml:4:15:"),
        "in file order: {e:?}"
    );

    // The same file minus the errors: only warnings remain.
    let text = "entryPoints:\n  sec:\n    address: ':443'\n    http:\n      encodeQuerySemicolons: true\n    http3: {}\nproviders:\n  docker: {}\n  file:\n    directory: dir\ntracing: {}\nexperimental: {}\ncertificatesResolvers: {}\npilot: {}\nserversTransport:\n  insecureSkipVerify: true\nhostResolver: {}\n";
    let (c, w) = static_yaml(text).unwrap();
    assert_eq!(
        c.providers.file.as_ref().unwrap().directory,
        Some(PathBuf::from("dir"))
    );
    assert!(c.providers.file.as_ref().unwrap().watch);
    let w = warns(&w);
    for key in [
        "entryPoints.sec.http.encodeQuerySemicolons",
        "entryPoints.sec.http3",
        "providers.docker: not supported yet; ignored (only the file provider is supported)",
        "tracing",
        "experimental",
        "certificatesResolvers",
        "pilot",
        "serversTransport",
        "hostResolver",
    ] {
        assert_has(&w, key);
    }
}

#[test]
fn static_case_insensitive_and_toml() {
    let text = "[EntryPoints.Web]\nAddress = \":8081\"\n[EntryPoints.Web.Transport.RespondingTimeouts]\nREADTIMEOUT = 7\n[Providers.File]\nFileName = \"d.toml\"\n[LOG]\nLevel = \"warn\"\n[accesslog]\n";
    let (c, w) = parse_static(text, Format::Toml, Path::new("traefik.toml")).unwrap();
    assert!(w.is_empty());
    let web = c.entry_point("Web").unwrap();
    assert_eq!(web.addr.port(), 8081);
    assert_eq!(
        web.transport.responding_timeouts.read_timeout,
        Duration::from_secs(7)
    );
    assert_eq!(c.log.level, LogLevel::Warn);
    assert!(c.access_log.is_some());
    assert_eq!(
        c.providers.file.unwrap().filename,
        Some(PathBuf::from("d.toml"))
    );
}

#[test]
fn one_key_spelled_two_ways_merges_maps() {
    // paerser fills one field from both spellings: maps merge.
    let text = "[EntryPoints.web]\naddress = \":8081\"\n[entrypoints.web.transport]\nkeepAliveMaxRequests = 1\n";
    let (c, _) = parse_static(text, Format::Toml, Path::new("traefik.toml")).unwrap();
    let web = c.entry_point("web").unwrap();
    assert_eq!(web.addr.port(), 8081);
    assert_eq!(web.transport.keep_alive_max_requests, 1);
    // Names are case-sensitive: `web` and `Web` stay two entrypoints.
    let text = "entryPoints:\n  web:\n    address: ':81'\n  Web:\n    address: ':82'\n";
    assert_eq!(
        static_yaml(text).unwrap().0.entry_point_names(),
        vec!["Web", "web"]
    );
    // Two scalars for one field: which one wins would be a guess.
    let text = "[entryPoints.web]\naddress = \":81\"\n[EntryPoints.web]\naddress = \":82\"\n";
    let e = errs(parse_static(text, Format::Toml, Path::new("traefik.toml")));
    assert_eq!(
        e,
        vec![
            "traefik.toml:4:1: entryPoints.web.address: duplicate key \"address\" (keys are case-insensitive; first set as \"address\" on line 2)"
        ]
    );
}

#[test]
fn load_static_from_disk() {
    let dir = TempDir::new("static");
    let p = dir.write(
        "traefik.yml",
        "entryPoints:\n  web:\n    address: 127.0.0.1:0\n",
    );
    let (c, _) = load_static(&p).unwrap();
    assert_eq!(c.entry_point_names(), vec!["web"]);
    let p = dir.write("traefik.yml", "entryPoints:\n  web:\n    adress: ':80'\n");
    let e = errs(load_static(&p));
    assert_eq!(
        e,
        vec![
            format!(
                "{}:2:3: entryPoints.web: entrypoint has no address",
                p.display()
            ),
            format!(
                "{}:3:5: entryPoints.web.adress: unknown key \"adress\" (did you mean \"address\"?)",
                p.display()
            ),
        ]
    );
}

#[test]
fn public_duration_parser() {
    assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
    assert!(parse_duration("x").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn front_ends_never_panic(text in "\\PC{0,200}") {
        let _ = dyn_yaml(&text);
        let _ = dyn_toml(&text);
        let _ = static_yaml(&text);
        let _ = parse_static(&text, Format::Toml, Path::new("t.toml"));
    }

    #[test]
    fn structured_input_never_panics(text in "([a-zA-Z]{1,8}(:|=| =|: )[ \\[\\]{}\"'a-z0-9.:/@`-]{0,12}\n {0,6}){0,12}") {
        let _ = dyn_yaml(&text);
        let _ = dyn_toml(&text);
        let _ = static_yaml(&text);
    }
}
