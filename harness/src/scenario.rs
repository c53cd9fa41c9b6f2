//! The scenarios: what each measures, the load it drives, and the one
//! Traefik file-provider configuration it generates, given unchanged to the
//! proxy and to Traefik so both route the same rules.
//!
//! Pure data and text generation: no processes, no I/O beyond the caller
//! writing the strings this returns.

use std::fmt::Write as _;
use std::path::Path;

/// How the load is driven.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Load {
    /// Goose users, each sending the next request when the last one ended.
    Closed {
        /// Concurrent users (one connection each).
        users: usize,
        /// A new TCP connection per request instead of keep-alive.
        new_conn: bool,
    },
    /// wrk2-style fixed rate over HTTP/1.1 keep-alive connections.
    Open {
        /// Requests per second, all connections together.
        rate: u64,
        /// Connections the rate is spread over.
        conns: usize,
    },
    /// HTTP/2 prior knowledge (h2c), many streams on few connections.
    H2 {
        /// Connections.
        conns: usize,
        /// Concurrent streams per connection (closed loop each).
        streams: usize,
    },
}

/// What one request looks like and what a correct answer is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RequestSpec {
    /// Request path.
    pub(crate) path: String,
    /// `Host` header to send (None: the address dialled).
    pub(crate) host: Option<String>,
    /// Upload body size for a POST (None: GET).
    pub(crate) upload: Option<usize>,
    /// Response body length a correct answer has.
    pub(crate) expect_len: usize,
}

/// One scenario.
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    /// Stable name used on the command line and in reports.
    pub(crate) name: &'static str,
    /// One line: what it measures.
    pub(crate) what: &'static str,
    /// Host+path routers generated (0: one catch-all router only).
    pub(crate) routers: usize,
    /// Body size the backend answers with.
    pub(crate) body_size: usize,
    /// The load.
    pub(crate) load: Load,
    /// Measured seconds per round by default.
    pub(crate) default_secs: f64,
    /// Part of the `--quick` smoke set.
    pub(crate) in_quick: bool,
    /// Rewrite the dynamic file every 100 ms during the measured window.
    pub(crate) reload: bool,
}

/// The 12-byte body of `small-get`.
pub(crate) const SMALL_BODY: &[u8] = b"hello world\n";

/// Router that `many-routers` load hits (the middle of 10,000).
const MANY_ROUTERS_HIT: usize = 5_000;

/// Every scenario, in report order.
pub(crate) fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "small-get",
            what: "1 route, 12-byte body, keep-alive, 50 goose users",
            routers: 0,
            body_size: SMALL_BODY.len(),
            load: Load::Closed {
                users: 50,
                new_conn: false,
            },
            default_secs: 4.0,
            in_quick: true,
            reload: false,
        },
        Scenario {
            name: "many-routers",
            what: "10,000 Host && PathPrefix routers + catch-all; load hits router #5000",
            routers: 10_000,
            body_size: SMALL_BODY.len(),
            load: Load::Closed {
                users: 50,
                new_conn: false,
            },
            default_secs: 4.0,
            in_quick: false,
            reload: false,
        },
        Scenario {
            name: "body-1m",
            what: "1 MiB responses, keep-alive, 8 goose users",
            routers: 0,
            body_size: 1 << 20,
            load: Load::Closed {
                users: 8,
                new_conn: false,
            },
            default_secs: 3.0,
            in_quick: false,
            reload: false,
        },
        Scenario {
            name: "post-64k",
            what: "64 KiB uploads (backend echoes the byte count), 16 goose users",
            routers: 0,
            body_size: SMALL_BODY.len(),
            load: Load::Closed {
                users: 16,
                new_conn: false,
            },
            default_secs: 3.0,
            in_quick: false,
            reload: false,
        },
        Scenario {
            name: "h2c",
            what: "HTTP/2 prior knowledge: 2 connections x 32 streams, closed loop",
            routers: 0,
            body_size: SMALL_BODY.len(),
            load: Load::H2 {
                conns: 2,
                streams: 32,
            },
            default_secs: 3.0,
            in_quick: true,
            reload: false,
        },
        Scenario {
            name: "new-conn",
            what: "a new TCP connection per request, 16 goose users",
            routers: 0,
            body_size: SMALL_BODY.len(),
            load: Load::Closed {
                users: 16,
                new_conn: true,
            },
            default_secs: 3.0,
            in_quick: false,
            reload: false,
        },
        Scenario {
            name: "fixed-rate",
            what: "5,000 req/s open loop on 50 connections, latency from intended send time",
            routers: 0,
            body_size: SMALL_BODY.len(),
            load: Load::Open {
                rate: 5_000,
                conns: 50,
            },
            default_secs: 10.0,
            in_quick: true,
            reload: false,
        },
        Scenario {
            name: "reload-storm",
            what: "1,000 routers at 5,000 req/s; dynamic file rewritten every 100 ms (vs the same run without reloads)",
            routers: 1_000,
            body_size: SMALL_BODY.len(),
            load: Load::Open {
                rate: 5_000,
                conns: 50,
            },
            default_secs: 8.0,
            in_quick: false,
            reload: true,
        },
    ]
}

impl Scenario {
    /// The request the load sends and the readiness probe checks.
    pub(crate) fn request(&self) -> RequestSpec {
        let (path, host) = if self.name == "many-routers" {
            let i = MANY_ROUTERS_HIT;
            (format!("/r{i}/hit"), Some(router_host(i)))
        } else if self.routers > 0 {
            let i = self.routers / 2;
            (format!("/r{i}/hit"), Some(router_host(i)))
        } else {
            ("/".to_owned(), None)
        };
        let upload = (self.name == "post-64k").then_some(64 * 1024);
        let expect_len = match upload {
            Some(n) => n.to_string().len(),
            None => self.body_size,
        };
        RequestSpec {
            path,
            host,
            upload,
            expect_len,
        }
    }

    /// Whether the downstream side speaks h2c.
    pub(crate) fn h2c(&self) -> bool {
        matches!(self.load, Load::H2 { .. })
    }
}

/// The host name of router `i`.
fn router_host(i: usize) -> String {
    format!("r{i}.bench.test")
}

/// The host a reload generation adds (a route that must go live).
pub(crate) fn reload_host(generation: u64) -> String {
    format!("gen{generation}.reload.test")
}

/// Backend URLs the dynamic config points at.
#[derive(Debug, Clone)]
pub(crate) struct BackendUrls {
    /// Where every real router sends traffic (answers `x-backend: main`).
    pub(crate) main: String,
    /// Where the catch-all sends traffic (answers `x-backend: fallback`), so a
    /// request the routers should have matched is counted as an error.
    pub(crate) fallback: String,
}

/// The dynamic (file provider) configuration of a scenario, YAML.
///
/// `generation` > 0 adds one router on [`reload_host`]`(generation)`: the
/// reload storm rewrites the file with increasing generations.
pub(crate) fn dynamic_config(s: &Scenario, urls: &BackendUrls, generation: u64) -> String {
    let mut y = String::with_capacity(120 * s.routers + 1024);
    let _ = writeln!(
        y,
        "# Generated by `harness` for scenario `{}`: {}.\n# Given unchanged to the proxy and to Traefik.",
        s.name, s.what
    );
    y.push_str("http:\n  routers:\n");
    if s.routers == 0 {
        y.push_str(
            "    all:\n      rule: \"PathPrefix(`/`)\"\n      entryPoints: [web]\n      service: main\n",
        );
    } else {
        for i in 0..s.routers {
            let _ = writeln!(
                y,
                "    r{i}:\n      rule: \"Host(`{}`) && PathPrefix(`/r{i}/`)\"\n      entryPoints: [web]\n      service: main",
                router_host(i)
            );
        }
        y.push_str(
            "    catchall:\n      rule: \"PathPrefix(`/`)\"\n      priority: 1\n      entryPoints: [web]\n      service: fallback\n",
        );
    }
    if generation > 0 {
        let _ = writeln!(
            y,
            "    reload:\n      rule: \"Host(`{}`)\"\n      entryPoints: [web]\n      service: main",
            reload_host(generation)
        );
    }
    let _ = write!(
        y,
        "  services:\n    main:\n      loadBalancer:\n        servers:\n          - url: \"{}\"\n",
        urls.main
    );
    if s.routers > 0 {
        let _ = write!(
            y,
            "    fallback:\n      loadBalancer:\n        servers:\n          - url: \"{}\"\n",
            urls.fallback
        );
    }
    y
}

/// Traefik's `providers.providersThrottleDuration` in every run: its
/// default, written out so reports can state it (`reload-storm` depends on
/// it: Traefik ignores changes for this long after applying one).
pub(crate) const TRAEFIK_THROTTLE: &str = "2s";

/// Traefik's static configuration: entrypoint `web`, the file provider on
/// `dynamic`, log level ERROR, no access log, no phoning home.
pub(crate) fn traefik_static(web: &str, dynamic: &Path) -> String {
    format!(
        "# Generated by `harness`: Traefik static configuration.\n\
         global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\n\
         entryPoints:\n  web:\n    address: \"{web}\"\n\
         providers:\n  providersThrottleDuration: {TRAEFIK_THROTTLE}\n  file:\n    filename: \"{}\"\n    watch: true\n\
         log:\n  level: ERROR\n",
        dynamic.display()
    )
}

/// The proxy's static configuration: the same entrypoint and provider, plus
/// an entrypoint `metrics` serving Prometheus text and `/ping`.
pub(crate) fn proxy_static(web: &str, metrics: &str, dynamic: &Path) -> String {
    format!(
        "# Generated by `harness`: proxy static configuration (Traefik format).\n\
         entryPoints:\n  web:\n    address: \"{web}\"\n  metrics:\n    address: \"{metrics}\"\n\
         providers:\n  file:\n    filename: \"{}\"\n\
         metrics:\n  prometheus:\n    entryPoint: metrics\n\
         ping:\n  entryPoint: metrics\n",
        dynamic.display()
    )
}

/// Finds scenarios by name; `None` for an unknown name.
pub(crate) fn by_name(name: &str) -> Option<Scenario> {
    all().into_iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls() -> BackendUrls {
        BackendUrls {
            main: "http://127.0.0.1:1".into(),
            fallback: "http://127.0.0.1:2".into(),
        }
    }

    #[derive(serde::Deserialize)]
    struct Dynamic {
        http: Http,
    }
    #[derive(serde::Deserialize)]
    struct Http {
        routers: std::collections::BTreeMap<String, Router>,
        services: std::collections::BTreeMap<String, serde::de::IgnoredAny>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)] // fields are checked by deserializing them
    struct Router {
        rule: String,
        service: String,
        entry_points: Vec<String>,
        priority: Option<i64>,
    }

    #[test]
    fn every_dynamic_config_is_valid_yaml_with_the_routers_it_claims() {
        for s in all() {
            let y = dynamic_config(&s, &urls(), 0);
            let d: Dynamic = serde_saphyr::from_str(&y).unwrap();
            let expect = if s.routers == 0 { 1 } else { s.routers + 1 };
            assert_eq!(d.http.routers.len(), expect, "{}", s.name);
            for r in d.http.routers.values() {
                assert!(d.http.services.contains_key(&r.service), "{}", s.name);
                assert_eq!(r.entry_points, ["web"]);
            }
        }
    }

    #[test]
    fn many_routers_request_hits_its_router() {
        let s = by_name("many-routers").unwrap();
        let y = dynamic_config(&s, &urls(), 0);
        let d: Dynamic = serde_saphyr::from_str(&y).unwrap();
        let req = s.request();
        let r = &d.http.routers["r5000"];
        assert!(r.rule.contains(req.host.as_deref().unwrap()));
        assert!(req.path.starts_with("/r5000/"));
        assert_eq!(d.http.routers["catchall"].service, "fallback");
        assert_eq!(d.http.routers["catchall"].priority, Some(1));
    }

    #[test]
    fn reload_generation_adds_a_router() {
        let s = by_name("reload-storm").unwrap();
        let y = dynamic_config(&s, &urls(), 7);
        let d: Dynamic = serde_saphyr::from_str(&y).unwrap();
        assert!(d.http.routers["reload"].rule.contains(&reload_host(7)));
    }

    #[test]
    fn static_configs_name_the_dynamic_file() {
        let p = Path::new("/tmp/x/dynamic.yml");
        let t = traefik_static("127.0.0.1:8080", p);
        assert!(t.contains("filename: \"/tmp/x/dynamic.yml\""));
        assert!(t.contains("level: ERROR"));
        let v: serde_json::Value = serde_saphyr::from_str(&t).unwrap();
        assert_eq!(v["entryPoints"]["web"]["address"], "127.0.0.1:8080");
        let p2 = proxy_static("127.0.0.1:8080", "127.0.0.1:9090", p);
        let v: serde_json::Value = serde_saphyr::from_str(&p2).unwrap();
        assert_eq!(v["metrics"]["prometheus"]["entryPoint"], "metrics");
        assert_eq!(v["ping"]["entryPoint"], "metrics");
    }

    #[test]
    fn post_expects_the_echoed_count() {
        let r = by_name("post-64k").unwrap().request();
        assert_eq!(r.upload, Some(65536));
        assert_eq!(r.expect_len, 5);
    }
}
