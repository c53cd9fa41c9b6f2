//! What the config tests share: parsing helpers that render errors as
//! the user sees them, the reference YAML/TOML pair, and a temporary
//! directory.

use std::path::{Path, PathBuf};

use super::super::*;
pub(super) use crate::routing::RuleSyntax;

pub(super) fn eps() -> Vec<String> {
    vec!["web".to_owned(), "websecure".to_owned()]
}

pub(super) fn dyn_yaml(text: &str) -> Result<(DynamicConfig, Vec<ConfigWarning>), ConfigErrors> {
    parse_dynamic(
        text,
        Format::Yaml,
        Path::new("dynamic.yml"),
        &eps(),
        RuleSyntax::V3,
    )
}

/// [`dyn_yaml`] with `core.defaultRuleSyntax: v2`.
pub(super) fn dyn_yaml_v2(text: &str) -> Result<(DynamicConfig, Vec<ConfigWarning>), ConfigErrors> {
    parse_dynamic(
        text,
        Format::Yaml,
        Path::new("dynamic.yml"),
        &eps(),
        RuleSyntax::V2,
    )
}

pub(super) fn dyn_toml(text: &str) -> Result<(DynamicConfig, Vec<ConfigWarning>), ConfigErrors> {
    parse_dynamic(
        text,
        Format::Toml,
        Path::new("dynamic.toml"),
        &eps(),
        RuleSyntax::V3,
    )
}

pub(super) fn static_yaml(text: &str) -> Result<(StaticConfig, Vec<ConfigWarning>), ConfigErrors> {
    parse_static(text, Format::Yaml, Path::new("traefik.yml"))
}

/// The rendered errors, one string each.
pub(super) fn errs<T: std::fmt::Debug>(r: Result<T, ConfigErrors>) -> Vec<String> {
    r.expect_err("expected errors")
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

pub(super) fn has(list: &[String], needle: &str) -> bool {
    list.iter().any(|e| e.contains(needle))
}

#[track_caller]
pub(super) fn assert_has(list: &[String], needle: &str) {
    assert!(has(list, needle), "no {needle:?} in:\n{}", list.join("\n"));
}

pub(super) fn warns(list: &[ConfigWarning]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

/// Origins differ between two files by design; compare the rest.
pub(super) fn without_origins(mut c: DynamicConfig) -> DynamicConfig {
    for r in c.routers.values_mut() {
        r.origin = Origin::default();
        r.rule_origin = Origin::default();
    }
    for s in c.services.values_mut() {
        match s {
            ServiceConfig::LoadBalancer(lb) => lb.origin = Origin::default(),
            ServiceConfig::Weighted(w) | ServiceConfig::HighestRandomWeight(w) => {
                w.origin = Origin::default();
            }
            ServiceConfig::Failover(f) => f.origin = Origin::default(),
            ServiceConfig::Mirroring(m) => m.origin = Origin::default(),
        }
    }
    for t in c.servers_transports.values_mut() {
        t.origin = Origin::default();
    }
    c
}

pub(super) const YAML: &str = r#"
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

pub(super) const TOML: &str = r#"
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

/// A fresh directory under the system temp dir, removed on drop.
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn new(tag: &str) -> Self {
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

    pub(super) fn write(&self, rel: &str, text: &str) -> PathBuf {
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
