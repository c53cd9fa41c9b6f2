//! Several providers merged (`load_providers`), as Traefik's aggregator
//! does: other providers' elements named `name@provider`, references
//! without a provider resolved in the referring element's provider, with
//! one across providers; an error disables only its element, whichever
//! provider holds it; `check_source` refuses an update that does not
//! decode, naming the store key.

use std::path::PathBuf;

use super::support::*;
use crate::config::*;

fn files(text: &str) -> FileTexts {
    Ok(vec![(
        PathBuf::from("dyn.yml"),
        text.to_owned(),
        Format::Yaml,
    )])
}

fn redis(pairs: &[(&str, &str)]) -> ProviderConfig {
    ProviderConfig {
        provider: "redis".into(),
        source: ProviderSource::Kv {
            origin: "redis".into(),
            root_key: "traefik".into(),
            pairs: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        },
    }
}

fn http(text: &str) -> ProviderConfig {
    ProviderConfig {
        provider: "http".into(),
        source: ProviderSource::Text {
            origin: "http://config/".into(),
            text: text.to_owned(),
        },
    }
}

const FILE: &str = "http:
  routers:
    f:
      rule: Path(`/f`)
      service: api@redis
      middlewares: [strip@http]
  services:
    local:
      loadBalancer:
        servers: [{url: 'http://10.0.0.9'}]
";

const HTTP: &str = "http:
  middlewares:
    strip:
      stripPrefix:
        prefixes: [/f]
";

const REDIS: &[(&str, &str)] = &[
    ("traefik/http/routers/r/rule", "Path(`/r`)"),
    ("traefik/http/routers/r/service", "api"),
    ("traefik/http/routers/r/middlewares/0", "strip@http"),
    ("traefik/http/routers/l/rule", "Path(`/l`)"),
    ("traefik/http/routers/l/service", "local@file"),
    (
        "traefik/http/services/api/loadBalancer/servers/0/url",
        "http://10.0.0.1",
    ),
];

#[test]
fn names_are_qualified_and_references_cross_providers() {
    let l = load_providers(
        Some(&files(FILE)),
        &[http(HTTP), redis(REDIS)],
        &eps(),
        RuleSyntax::V3,
    );
    assert!(l.usable && l.errors.is_empty(), "{:?}", l.errors);
    let c = &l.config;
    let names: Vec<&str> = c.routers.keys().map(String::as_str).collect();
    assert_eq!(names, ["f", "l@redis", "r@redis"]);
    assert_eq!(c.routers["f"].service, "api@redis");
    assert_eq!(c.routers["f"].middlewares, ["strip@http"]);
    assert_eq!(c.routers["r@redis"].service, "api@redis", "own provider");
    assert_eq!(c.routers["r@redis"].name, "r@redis");
    assert_eq!(c.routers["l@redis"].service, "local", "@file is the file's");
    assert!(c.services.contains_key("api@redis"));
    assert!(c.middlewares.contains_key("strip@http"));
    assert_eq!(qualified("f"), "f@file");
    assert_eq!(qualified("r@redis"), "r@redis");
}

#[test]
fn an_unknown_reference_disables_only_its_router() {
    let mut pairs = REDIS.to_vec();
    pairs.push(("traefik/http/routers/bad/rule", "Path(`/b`)"));
    pairs.push(("traefik/http/routers/bad/service", "nowhere"));
    let l = load_providers(
        Some(&files(FILE)),
        &[http(HTTP), redis(&pairs)],
        &eps(),
        RuleSyntax::V3,
    );
    assert!(l.usable);
    assert_eq!(l.errors.len(), 1, "{:?}", l.errors);
    let e = l.errors[0].to_string();
    assert!(
        e.contains("traefik/http/routers/bad/service") && e.contains("nowhere@redis"),
        "{e}"
    );
    assert!(l.config.routers["bad@redis"].disabled);
    assert!(!l.config.routers["r@redis"].disabled);
    assert!(!l.config.routers["f"].disabled);
}

#[test]
fn a_missing_provider_disables_what_references_it() {
    // Without the HTTP provider, `strip@http` is unknown: the routers
    // using it are disabled, the rest is served.
    let l = load_providers(Some(&files(FILE)), &[redis(REDIS)], &eps(), RuleSyntax::V3);
    assert!(l.usable);
    assert!(l.config.routers["f"].disabled);
    assert!(l.config.routers["r@redis"].disabled);
    assert!(!l.config.routers["l@redis"].disabled);
}

#[test]
fn an_unknown_provider_is_named() {
    let text = FILE.replace("api@redis", "api@consul");
    let l = load_providers(Some(&files(&text)), &[redis(REDIS)], &eps(), RuleSyntax::V3);
    let all: Vec<String> = l.errors.iter().map(ToString::to_string).collect();
    assert!(
        all.iter()
            .any(|e| e.contains("provider \"consul\" is not supported")),
        "{all:?}"
    );
}

#[test]
fn tls_options_are_qualified_except_default() {
    let text = "http:
  routers:
    t:
      rule: Host(`a`)
      service: s
      tls:
        options: modern
    d:
      rule: Host(`b`)
      service: s
      tls:
        options: default
  services:
    s:
      loadBalancer:
        servers: [{url: 'http://10.0.0.1'}]
tls:
  options:
    modern:
      minVersion: VersionTLS13
";
    let l = load_providers(None, &[http(text)], &eps(), RuleSyntax::V3);
    assert!(l.usable && l.errors.is_empty(), "{:?}", l.errors);
    assert!(l.config.tls.options.contains_key("modern@http"));
    let t = l.config.routers["t@http"].tls.as_ref().unwrap();
    assert_eq!(t.options.as_deref(), Some("modern@http"));
    let d = l.config.routers["d@http"].tls.as_ref().unwrap();
    assert_eq!(d.options.as_deref(), Some("default"));
}

#[test]
fn an_update_that_does_not_decode_is_refused_with_its_key() {
    let mut pairs = REDIS.to_vec();
    pairs.push(("traefik/http/routers/r/priority", "high"));
    let errors = check_source(&redis(&pairs).source, RuleSyntax::V3);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].key, "traefik/http/routers/r/priority");
    // References to other providers are not checked here.
    assert!(check_source(&redis(REDIS).source, RuleSyntax::V3).is_empty());
    let errors = check_source(&http("http: [").source, RuleSyntax::V3);
    assert!(!errors.is_empty());
    let errors = check_source(
        &http("http:\n  routers:\n    r:\n      rulez: x\n").source,
        RuleSyntax::V3,
    );
    assert!(errors[0].to_string().contains("rulez"), "{errors:?}");
}

#[test]
fn no_provider_at_all_is_an_empty_usable_load() {
    let l = load_providers(None, &[], &eps(), RuleSyntax::V3);
    assert!(l.usable && l.config.routers.is_empty());
}
