//! The dynamic model: routers, services, transports, middlewares.

use std::path::PathBuf;
use std::time::Duration;

use super::super::*;
use super::support::*;

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

    let ServiceConfig::LoadBalancer(lb) = &y.services["api"] else {
        panic!("a load balancer")
    };
    assert!(!lb.pass_host_header);
    assert_eq!(lb.servers_transport.as_deref(), Some("slow"));
    assert_eq!(lb.servers.len(), 2);
    assert_eq!(lb.servers[0].weight, Some(3));
    assert!(!lb.servers[0].h2c);
    assert_eq!(lb.servers[0].uri.host(), Some("10.0.0.1"));
    assert_eq!(lb.servers[0].uri.port_u16(), Some(8080));
    assert!(lb.servers[1].h2c && lb.servers[1].preserve_path);
    assert_eq!(lb.servers[1].uri.path(), "/base");
    let ServiceConfig::LoadBalancer(site) = &y.services["site"] else {
        panic!("a load balancer")
    };
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
        "http:\n  routers:\n    api:\n      rule: Path(`/`)\n      servce: api\n  servics: {}\nfooBarBaz: 1\n",
    ));
    assert_has(
        &e,
        "dynamic.yml:5:7: http.routers.api.servce: unknown key \"servce\" (did you mean \"service\"?)",
    );
    assert_has(
        &e,
        "dynamic.yml:6:3: http.servics: unknown key \"servics\" (did you mean \"services\"?)",
    );
    assert_has(&e, "dynamic.yml:7:1: fooBarBaz: unknown key \"fooBarBaz\"");
    assert!(!has(&e, "fooBarBaz\" (did you mean"));
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
    // Traefik's internal services are accepted here; whether the static
    // configuration provides them is checked where it is known
    // (`disable_missing_internal`).
    let (c, _) = dyn_yaml(&format!("{base}api@internal\n")).unwrap();
    assert_eq!(c.routers["r"].service, "api@internal");
    let e = errs(dyn_yaml(&format!("{base}rest@internal\n")));
    assert_has(
        &e,
        "unknown internal service \"rest@internal\" (internal services: api, dashboard, noop, ping, prometheus)",
    );
    let e = errs(dyn_yaml(&format!("{base}s@docker\n")));
    assert_has(
        &e,
        "provider \"docker\" is not supported (only @file, @http, @redis, @etcd)",
    );
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
      rule: Host(`a`, `b`)
      service: s
    c:
      rule: Path(`/`)
      service: s
      priority: 9223372036854774808
    d:
      rule: Path(`/`)
      service: s
      priority: high
    e:
      service: s
    f:
      rule: ""
      service: s
  services:
    s:
      loadBalancer:
        servers: [{url: "http://a"}]
"#;
    let e = errs(dyn_yaml(text));
    // Router TLS is served now.
    assert!(!e.iter().any(|l| l.contains("http.routers.a.tls")), "{e:?}");
    assert_has(
        &e,
        "dynamic.yml:9:13: http.routers.b.rule: Host expects 1 argument, got 2 (several values are the v2 syntax",
    );
    assert_has(
        &e,
        "dynamic.yml:14:17: http.routers.c.priority: the router priority 9223372036854774808 exceeds the max user-defined priority 9223372036854774807",
    );
    assert_has(
        &e,
        "http.routers.d.priority: expected an integer, found \"high\"",
    );
    assert_has(&e, "dynamic.yml:19:5: http.routers.e: router has no rule");
    assert_has(&e, "http.routers.f.rule: rule is empty");
    assert_eq!(e.len(), 5, "{e:#?}");
}

#[test]
fn rule_syntax_per_router_and_by_default() {
    let text = r#"
http:
  routers:
    v2:
      rule: Host(`a.com`, `b.com`) && Query(`q=1`)
      ruleSyntax: v2
      service: s
    v3:
      rule: Host(`c.com`)
      ruleSyntax: v3
      service: s
    odd:
      rule: Host(`d.com`)
      ruleSyntax: V2
      service: s
    internal:
      rule: Host(`e.com`)
      ruleSyntax: default
      service: s
    plain:
      rule: HostRegexp(`{sub:[a-z]+}.f.com`)
      service: s
  services:
    s:
      loadBalancer:
        servers: [{url: "http://a"}]
"#;
    let (c, w) = dyn_yaml(text).expect("loads");
    let syntax = |name: &str| c.routers[name].parsed.syntax();
    assert_eq!(syntax("v2"), RuleSyntax::V2);
    assert_eq!(syntax("v3"), RuleSyntax::V3);
    // Traefik parses a name it does not know as v3, `default` included.
    assert_eq!(syntax("odd"), RuleSyntax::V3);
    assert_eq!(syntax("internal"), RuleSyntax::V3);
    assert_eq!(syntax("plain"), RuleSyntax::V3);
    let w: Vec<String> = w.iter().map(ToString::to_string).collect();
    assert_has(
        &w,
        "dynamic.yml:6:19: http.routers.v2.ruleSyntax: ruleSyntax is deprecated",
    );
    assert_has(
        &w,
        "dynamic.yml:10:19: http.routers.v3.ruleSyntax: ruleSyntax is deprecated",
    );
    assert_has(
        &w,
        "dynamic.yml:14:19: http.routers.odd.ruleSyntax: unknown rule syntax \"V2\": Traefik parses the rule as v3",
    );
    // A v2 template left in a v3 rule is accepted and warned about, at its
    // column.
    assert_has(
        &w,
        "dynamic.yml:21:24: http.routers.plain.rule: `{sub:[a-z]+}` is a v2 template",
    );
    assert_eq!(w.len(), 4, "{w:#?}");

    // `core.defaultRuleSyntax: v2` makes routers without ruleSyntax v2.
    let (c, _) = dyn_yaml_v2(text).expect("loads");
    assert_eq!(c.routers["plain"].parsed.syntax(), RuleSyntax::V2);
    assert_eq!(c.routers["v3"].parsed.syntax(), RuleSyntax::V3);
    assert_eq!(c.routers["odd"].parsed.syntax(), RuleSyntax::V3);
    let e = errs(dyn_yaml_v2(
        "http:\n  routers:\n    r:\n      rule: PathRegexp(`/x`)\n      service: s\n  services:\n    s:\n      loadBalancer:\n        servers: [{url: \"http://a\"}]\n",
    ));
    assert_has(
        &e,
        "dynamic.yml:4:13: http.routers.r.rule: unsupported function \"PathRegexp\": it is a v3 matcher",
    );
}

#[test]
fn grpc_web_needs_its_origins() {
    let text = "http:\n  middlewares:\n    web:\n      grpcWeb:\n        allowOrigins: [\"*\", \"https://a.test\"]\n    none:\n      grpcWeb: {}\n    closed:\n      grpcWeb:\n        allowOrigins: []\n";
    let e = errs(dyn_yaml(text));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_has(
        &e,
        "dynamic.yml:6:5: http.middlewares.none: grpcWeb sets nothing: write allowOrigins",
    );
    let (c, _) = dyn_yaml(&text.replace("    none:\n      grpcWeb: {}\n", "")).expect("loads");
    let origins = |name: &str| match &c.middlewares[name] {
        MiddlewareConfig::GrpcWeb(g) => g.allow_origins.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(origins("web"), ["*", "https://a.test"]);
    assert!(origins("closed").is_empty());
}

#[test]
fn middlewares_are_not_supported_yet() {
    let text = "http:\n  middlewares:\n    squeeze:\n      plugin:\n        demo: {}\n    odd:\n      basicAuht: {}\n    none: {}\n";
    let e = errs(dyn_yaml(text));
    assert_has(
        &e,
        "dynamic.yml:4:7: http.middlewares.squeeze.plugin: middleware type \"plugin\" is not supported yet",
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
        "dynamic.yml:6:27: http.services.w.weighted.services[0].name: unknown service \"a\"",
    );
    assert!(
        !e.iter()
            .any(|e| e.contains("services.empty") || e.contains("noservers")),
        "no servers is valid: {e:#?}"
    );
    assert!(
        !e.iter().any(|l| l.contains("http.services.tls.")),
        "an https server URL is accepted:\n{}",
        e.join("\n")
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
        "http.services.notype: service has no type (expected loadBalancer, weighted, highestRandomWeight, failover or mirroring)",
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
tls:
  certificates: []
"#;
    let (_, w) = dyn_yaml(text).unwrap();
    let w = warns(&w);
    assert_has(
        &w,
        "dynamic.yml:7:7: http.routers.r.observability: not supported yet; ignored",
    );
    assert!(
        !w.iter().any(|l| l.contains("healthCheck")),
        "health checks are built: {w:?}"
    );
    assert!(
        !w.iter().any(|l| l.contains("sticky")),
        "sticky cookies are built: {w:?}"
    );
    // Upstream TLS and the tls section are built now: no warning.
    assert!(
        !w.iter()
            .any(|l| l.contains("insecureSkipVerify") || l.contains("yml:17:1: tls")),
        "{w:?}"
    );
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

// === since decoding by derive ===

#[test]
fn two_spellings_of_a_service_type_are_one_type() {
    // Merged like any key spelled twice (the hand decoder merged them too,
    // then refused the service as having two types).
    let text = "http:\n  routers:\n    r:\n      rule: Path(`/`)\n      service: s\n  services:\n    s:\n      loadBalancer:\n        servers: [{url: 'http://a'}]\n      LoadBalancer:\n        passHostHeader: false\n";
    let (c, w) = dyn_yaml(text).unwrap();
    assert!(w.is_empty(), "{w:?}");
    let ServiceConfig::LoadBalancer(lb) = &c.services["s"] else {
        panic!("a load balancer")
    };
    assert_eq!(lb.servers[0].url, "http://a");
    assert!(!lb.pass_host_header);
}

#[test]
fn a_refused_server_still_reports_its_other_errors() {
    let text = "http:\n  services:\n    s:\n      loadBalancer:\n        servers:\n          - weight: -1\n    t:\n      loadBalancer:\n        servers: 'http://a'\n";
    let e = errs(dyn_yaml(text));
    assert_eq!(
        e,
        vec![
            "dynamic.yml:6:13: http.services.s.loadBalancer.servers[0]: server has no url",
            "dynamic.yml:6:21: http.services.s.loadBalancer.servers[0].weight: must not be negative, found -1",
            "dynamic.yml:9:19: http.services.t.loadBalancer.servers: expected a list of servers, found a string",
        ]
    );
}

#[test]
fn negative_priorities_are_valid_and_zero_means_not_set() {
    let text = r#"
http:
  routers:
    fallback:
      rule: PathPrefix(`/`)
      service: s
      priority: -10
    zero:
      rule: Path(`/`)
      service: s
      priority: 0
    top:
      rule: Path(`/`)
      service: s
      priority: 9223372036854774807
  services:
    s:
      loadBalancer:
        servers: [{url: "http://a"}]
"#;
    let (c, _) = dyn_yaml(text).unwrap();
    assert_eq!(c.routers["fallback"].priority, Some(-10));
    assert_eq!(c.routers["zero"].priority, None, "0 is the rule's length");
    assert_eq!(c.routers["top"].priority, Some(i64::MAX - 1000));
}

#[test]
fn a_service_without_servers_is_valid() {
    let yaml = "http:\n  services:\n    a:\n      loadBalancer: {}\n    b:\n      loadBalancer:\n        servers: []\n    c:\n      loadBalancer:\n        servers:\n    d:\n      loadBalancer:\n        servers: {}\n";
    let (c, _) = dyn_yaml(yaml).unwrap();
    assert_eq!(c.services.len(), 4);
    for s in c.services.values() {
        let ServiceConfig::LoadBalancer(lb) = s else {
            panic!("a load balancer")
        };
        assert!(lb.servers.is_empty());
    }
    let toml = "[http.services.a.loadBalancer]\n[http.services.b.loadBalancer.servers]\n";
    let (c, _) = dyn_toml(toml).unwrap();
    assert_eq!(c.services.len(), 2);
}

#[test]
fn a_misspelled_service_type_is_one_error() {
    let e = errs(dyn_yaml(
        "http:\n  services:\n    s:\n      loadBalancr:\n        servers: []\n",
    ));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_has(
        &e,
        "unknown key \"loadBalancr\" (did you mean \"loadBalancer\"?)",
    );
}

#[test]
fn compress_options_are_checked_at_their_keys() {
    let text = "http:\n  middlewares:\n    both:\n      compress:\n        excludedContentTypes: [text/html]\n        includedContentTypes: [text/css]\n    bad:\n      compress:\n        encodings: [gzip, deflate]\n        excludedContentTypes: [\"te(xt/html\"]\n    nodefault:\n      compress:\n        encodings: [br]\n        defaultEncoding: gzip\n    none:\n      compress:\n        encodings: []\n";
    let e = errs(dyn_yaml(text));
    assert_has(
        &e,
        "dynamic.yml:3:5: http.middlewares.both: excludedContentTypes and includedContentTypes options are mutually exclusive",
    );
    assert_has(
        &e,
        "dynamic.yml:9:27: http.middlewares.bad.compress.encodings[1]: unsupported encoding: deflate (gzip, br or zstd)",
    );
    assert_has(
        &e,
        "dynamic.yml:10:33: http.middlewares.bad.compress.excludedContentTypes[0]: parsing excluded media type: mime: expected token after slash",
    );
    assert_has(
        &e,
        "dynamic.yml:14:26: http.middlewares.nodefault.compress.defaultEncoding: unsupported default encoding: gzip (not in encodings)",
    );
    assert_has(
        &e,
        "dynamic.yml:17:20: http.middlewares.none.compress.encodings: at least one encoding must be specified",
    );
}
