//! The key-value layout (`load_kv_isolated`): Traefik's keys (the layout
//! of its etcd integration test) give the model the same YAML gives;
//! plain lists joined, section lists indexed, case-insensitive segments,
//! keys outside the sections ignored; errors name the store key.

use super::support::*;
use crate::config::*;

fn kv(pairs: &[(&str, &str)]) -> Loaded {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    load_kv_isolated("etcd", "traefik", &pairs, &eps(), RuleSyntax::V3)
}

fn ok(pairs: &[(&str, &str)]) -> DynamicConfig {
    let l = kv(pairs);
    assert!(l.usable && l.errors.is_empty(), "{:?}", l.errors);
    l.config
}

const PAIRS: &[(&str, &str)] = &[
    ("traefik/http/routers/Router0/entryPoints/0", "web"),
    ("traefik/http/routers/Router0/middlewares/0", "compressor"),
    ("traefik/http/routers/Router0/middlewares/1", "striper"),
    ("traefik/http/routers/Router0/service", "simplesvc"),
    ("traefik/http/routers/Router0/rule", "Host(`kv1.localhost`)"),
    ("traefik/http/routers/Router0/priority", "42"),
    ("traefik/http/routers/Router0/tls", ""),
    ("traefik/http/routers/Router1/rule", "Host(`kv2.localhost`)"),
    ("traefik/http/routers/Router1/entryPoints/0", "web"),
    ("traefik/http/routers/Router1/entryPoints/1", "websecure"),
    ("traefik/http/routers/Router1/service", "Service03"),
    (
        "traefik/http/services/simplesvc/loadBalancer/servers/0/url",
        "http://10.0.1.1:8888",
    ),
    (
        "traefik/http/services/simplesvc/loadBalancer/servers/1/url",
        "http://10.0.1.1:8889",
    ),
    (
        "traefik/http/services/srvcA/loadBalancer/servers/0/url",
        "http://10.0.1.2:8888",
    ),
    (
        "traefik/http/services/srvcB/loadBalancer/servers/0/url",
        "http://10.0.1.3:8888",
    ),
    (
        "traefik/http/services/Service03/weighted/services/0/name",
        "srvcA",
    ),
    (
        "traefik/http/services/Service03/weighted/services/0/weight",
        "42",
    ),
    (
        "traefik/http/services/Service03/weighted/services/1/name",
        "srvcB",
    ),
    (
        "traefik/http/services/Service03/weighted/services/1/weight",
        "41",
    ),
    (
        "traefik/http/middlewares/compressor/headers/customRequestHeaders/X-A",
        "1",
    ),
    (
        "traefik/http/middlewares/striper/stripPrefix/prefixes/0",
        "foo",
    ),
    (
        "traefik/http/middlewares/striper/stripPrefix/prefixes/1",
        "bar",
    ),
    // Outside the dynamic sections: ignored, as Traefik ignores it.
    ("traefik/other/thing", "x"),
    ("elsewhere/http/routers/x/rule", "Host(`nope`)"),
];

const SAME_AS_YAML: &str = r#"
http:
  routers:
    Router0:
      entryPoints: [web]
      middlewares: [compressor, striper]
      service: simplesvc
      rule: "Host(`kv1.localhost`)"
      priority: 42
      tls: {}
    Router1:
      rule: "Host(`kv2.localhost`)"
      entryPoints: [web, websecure]
      service: Service03
  services:
    simplesvc:
      loadBalancer:
        servers:
          - url: "http://10.0.1.1:8888"
          - url: "http://10.0.1.1:8889"
    srvcA:
      loadBalancer:
        servers: [{url: "http://10.0.1.2:8888"}]
    srvcB:
      loadBalancer:
        servers: [{url: "http://10.0.1.3:8888"}]
    Service03:
      weighted:
        services:
          - {name: srvcA, weight: 42}
          - {name: srvcB, weight: 41}
  middlewares:
    compressor:
      headers:
        customRequestHeaders: {X-A: "1"}
    striper:
      stripPrefix:
        prefixes: [foo, bar]
"#;

#[test]
fn traefiks_key_layout_gives_the_model_yaml_gives() {
    let from_kv = ok(PAIRS);
    let (from_yaml, w) = dyn_yaml(SAME_AS_YAML).unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(without_origins(from_kv.clone()), without_origins(from_yaml));
    let r0 = &from_kv.routers["Router0"];
    assert_eq!(r0.priority, Some(42));
    assert!(r0.tls.is_some(), "an empty value switches tls on");
    assert_eq!(
        from_kv.routers["Router1"].entry_points,
        ["web", "websecure"]
    );
    assert_eq!(
        from_kv.routers.len(),
        2,
        "keys outside the root are ignored"
    );
}

#[test]
fn segments_match_case_insensitively_and_items_keep_key_order() {
    let c = ok(&[
        ("traefik/HTTP/Routers/r/Rule", "Host(`a`)"),
        ("traefik/http/routers/r/service", "s"),
        (
            "traefik/http/services/s/LoadBalancer/servers/0/url",
            "http://10.0.0.1",
        ),
        (
            "traefik/http/services/s/loadbalancer/servers/1/url",
            "http://10.0.0.2",
        ),
        (
            "traefik/http/services/s/loadBalancer/passHostHeader",
            "false",
        ),
    ]);
    assert_eq!(c.routers["r"].rule, "Host(`a`)");
    let ServiceConfig::LoadBalancer(lb) = &c.services["s"] else {
        panic!("a load balancer")
    };
    assert!(!lb.pass_host_header);
    let hosts: Vec<_> = lb.servers.iter().map(|s| s.uri.host().unwrap()).collect();
    assert_eq!(hosts, ["10.0.0.1", "10.0.0.2"]);
}

#[test]
fn errors_name_the_store_key_and_disable_only_their_element() {
    let l = kv(&[
        ("traefik/http/routers/good/rule", "Host(`a`)"),
        ("traefik/http/routers/good/service", "s"),
        ("traefik/http/routers/bad/rule", "Host(`b`)"),
        ("traefik/http/routers/bad/service", "s"),
        ("traefik/http/routers/bad/priority", "high"),
        ("traefik/http/routers/typo/rule", "Host(`c`)"),
        ("traefik/http/routers/typo/servcie", "s"),
        (
            "traefik/http/services/s/loadBalancer/servers/0/url",
            "http://10.0.0.1",
        ),
    ]);
    assert!(l.usable);
    let e: Vec<String> = l.errors.iter().map(ToString::to_string).collect();
    assert!(
        e.iter()
            .any(|m| m.starts_with("etcd: traefik/http/routers/bad/priority: ")),
        "{e:?}"
    );
    assert!(
        e.iter().any(
            |m| m.starts_with("etcd: traefik/http/routers/typo/servcie: ") && m.contains("service")
        ),
        "{e:?}"
    );
    assert!(l.config.routers.contains_key("good"));
    assert!(
        l.config.disabled.iter().any(|d| d.name == "bad"),
        "{:?}",
        l.config.disabled
    );
}

#[test]
fn a_key_with_a_value_and_keys_below_it_is_refused() {
    let l = kv(&[
        ("traefik/http/routers/r", "x"),
        ("traefik/http/routers/r/rule", "Host(`a`)"),
    ]);
    let e: Vec<String> = l.errors.iter().map(ToString::to_string).collect();
    assert!(!l.usable, "{e:?}");
    assert!(
        e.iter().any(|m| m.contains("traefik/http/routers/r")
            && m.contains("has both a value and keys below it")),
        "{e:?}"
    );
}
