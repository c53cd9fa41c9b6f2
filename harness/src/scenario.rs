//! The scenarios: what each measures, the load it drives and the request it
//! sends, and which configuration ([`crate::configs`]) every target runs
//! for it.
//!
//! Pure data: no processes, no I/O.

/// How the load is driven.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Load {
    /// The driver, closed loop: each connection sends its next request when
    /// the last answer ended.
    Closed {
        /// Concurrent connections.
        conns: usize,
        /// A new connection per request (`Connection: close`).
        new_conn: bool,
    },
    /// Goose users, closed loop, keep-alive.
    Goose {
        /// Concurrent users (one connection each).
        users: usize,
    },
    /// The driver at a fixed rate (open loop, latency from intended send time).
    Open {
        /// Requests per second, all connections together.
        rate: u64,
        /// Connections the rate is spread over.
        conns: usize,
    },
    /// The driver at one offered rate for every target: `fraction` of the
    /// slowest flat-out rate of the fast targets (proxies, floor, nginx,
    /// HAProxy), each measured for a second first.
    EqualRate {
        /// Share of the slowest flat-out rate.
        fraction: f64,
        /// Connections.
        conns: usize,
    },
    /// The driver, HTTP/2 prior knowledge, many streams on few connections.
    H2 {
        /// Connections.
        conns: usize,
        /// Concurrent streams per connection (closed loop each).
        streams: usize,
    },
    /// Keep-alive connections that answer once and then sit idle.
    Idle {
        /// Connections held (fewer with `--quick`).
        conns: usize,
    },
    /// The driver and wrk alternately, closed loop, same connections.
    VersusWrk {
        /// Concurrent connections of each.
        conns: usize,
    },
}

/// Which headers a request carries besides `Host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// None (as wrk sends).
    Minimal,
    /// A desktop browser's navigation headers, cookies included.
    Browser,
    /// The credentials `middleware-chain`'s basicAuth accepts.
    Auth,
    /// `Accept-Encoding: gzip` (`compress`).
    Gzip,
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
    /// Extra headers.
    pub(crate) shape: Shape,
    /// Ask the server to close after answering.
    pub(crate) close: bool,
    /// The answer is compressed: a correct body is shorter than
    /// `expect_len` (the uncompressed size) and not empty.
    pub(crate) compressed: bool,
}

impl RequestSpec {
    /// A plain GET.
    pub(crate) fn get(path: &str, host: Option<String>, expect_len: usize) -> Self {
        Self {
            path: path.to_owned(),
            host,
            upload: None,
            expect_len,
            shape: Shape::Minimal,
            close: false,
            compressed: false,
        }
    }
}

/// One scenario.
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    /// Stable name used on the command line and in reports.
    pub(crate) name: &'static str,
    /// One line: what it measures.
    pub(crate) what: &'static str,
    /// The configuration it runs (scenarios sharing one share its files
    /// under `traefik-baseline/<config>/`).
    pub(crate) config: &'static str,
    /// Host+path routers generated (0: one catch-all router only).
    pub(crate) routers: usize,
    /// Body size the backend answers with.
    pub(crate) body_size: usize,
    /// The load.
    pub(crate) load: Load,
    /// Extra request headers.
    pub(crate) shape: Shape,
    /// Measured seconds per round by default.
    pub(crate) default_secs: f64,
    /// Part of the `--quick` smoke set.
    pub(crate) in_quick: bool,
    /// Rewrite the dynamic configuration every 100 ms during the window.
    pub(crate) reload: bool,
    /// Prometheus metrics on (Traefik, the proxy; HAProxy's exporter;
    /// nginx's stub_status), scraped at the window's edges.
    pub(crate) metrics: bool,
    /// An access log line per request, to a file.
    pub(crate) access_log: bool,
    /// TLS on the client side (the targets terminate it).
    pub(crate) tls: bool,
    /// The API and dashboard on (a router to `api@internal` on the second
    /// entrypoint), polled during the window as an open dashboard page
    /// polls it ([`crate::poll`]).
    pub(crate) dashboard: bool,
    /// Servers of the `main` service, each a listener of its own on the
    /// backend answering as `main`, balanced round robin (1: the `main`
    /// listener).
    pub(crate) servers: usize,
    /// The router runs [`CHAIN`]: headers, stripPrefix, basicAuth (apr1)
    /// and a rateLimit far above the load.
    pub(crate) chain: bool,
    /// The router runs a `compress` middleware with Traefik's defaults; the
    /// backend answers [`COMPRESS_BODY`] bytes of JSON.
    pub(crate) compress: bool,
    /// The reloads go through a Redis provider (a `redis-server` the
    /// harness starts): the reload route's keys are rewritten instead of
    /// the file.
    pub(crate) redis: bool,
}

/// The 12-byte body of `small-get`.
pub(crate) const SMALL_BODY: &[u8] = b"hello world\n";

/// The middlewares `middleware-chain` runs, in order.
pub(crate) const CHAIN: [&str; 4] = ["hdrs", "strip", "auth", "limit"];

/// The prefix `middleware-chain` requests carry and its stripPrefix removes.
pub(crate) const CHAIN_PREFIX: &str = "/api";

/// `middleware-chain`'s basicAuth user: `bench` with password `bench`, an
/// Apache MD5 (apr1) hash, as `htpasswd -m` writes it (bcrypt's cost would
/// swamp the figure).
pub(crate) const CHAIN_USER: &str = "bench:$apr1$benchslt$xg8nhdNCXN8cv7mXxgHvB0";

/// Its `Authorization` header (`bench:bench`).
pub(crate) const CHAIN_AUTHORIZATION: &str = "Basic YmVuY2g6YmVuY2g=";

/// The uncompressed response size of `compress`: a 16 KiB JSON document,
/// a typical API answer.
pub(crate) const COMPRESS_BODY: usize = 16 * 1024;

/// Router that `many-routers` load hits (the middle of 10,000).
const MANY_ROUTERS_HIT: usize = 5_000;

/// Connections `idle-conns` holds.
pub(crate) const IDLE_CONNS: usize = 5_000;

/// Connections `idle-conns` holds with `--quick`.
pub(crate) const IDLE_CONNS_QUICK: usize = 500;

const BASE: Scenario = Scenario {
    name: "",
    what: "",
    config: "small-get",
    routers: 0,
    body_size: SMALL_BODY.len(),
    load: Load::Closed {
        conns: 50,
        new_conn: false,
    },
    shape: Shape::Minimal,
    default_secs: 3.0,
    in_quick: false,
    reload: false,
    metrics: false,
    access_log: false,
    tls: false,
    dashboard: false,
    servers: 1,
    chain: false,
    compress: false,
    redis: false,
};

/// Every scenario, in report order.
pub(crate) fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "driver-vs-wrk",
            what: "the harness's driver and wrk alternately, 50 connections each, same placement: the driver's rate against wrk's",
            load: Load::VersusWrk { conns: 50 },
            in_quick: true,
            ..BASE
        },
        Scenario {
            name: "small-get",
            what: "1 route, 12-byte body, keep-alive, 50 connections",
            in_quick: true,
            ..BASE
        },
        Scenario {
            name: "small-get-goose",
            what: "small-get driven by goose (50 users) instead of the driver",
            load: Load::Goose { users: 50 },
            ..BASE
        },
        Scenario {
            name: "client-shapes",
            what: "small-get with a browser's headers (keep-alive, accept headers, cookies: a 1.1 KB head)",
            shape: Shape::Browser,
            in_quick: true,
            ..BASE
        },
        Scenario {
            name: "metrics-on",
            what: "small-get with Prometheus metrics on (nginx: stub_status), scraped at the window's edges",
            config: "metrics-on",
            metrics: true,
            in_quick: true,
            ..BASE
        },
        Scenario {
            name: "access-log-on",
            what: "small-get with an access log line per request to a file",
            config: "access-log-on",
            access_log: true,
            in_quick: true,
            ..BASE
        },
        Scenario {
            name: "dashboard-open",
            what: "small-get with the API on and an open dashboard polling it (its API calls every 2 s, one keep-alive connection): CPU per request beside small-get's",
            config: "dashboard",
            dashboard: true,
            in_quick: true,
            ..BASE
        },
        Scenario {
            name: "many-routers",
            what: "10,000 Host && PathPrefix routers + catch-all; load hits router #5000 (metrics on, for the proxy's router-decision p99)",
            config: "many-routers",
            routers: 10_000,
            metrics: true,
            ..BASE
        },
        Scenario {
            name: "body-1m",
            what: "1 MiB responses, keep-alive, 8 connections",
            body_size: 1 << 20,
            load: Load::Closed {
                conns: 8,
                new_conn: false,
            },
            ..BASE
        },
        Scenario {
            name: "post-64k",
            what: "64 KiB uploads (backend echoes the byte count), 16 connections",
            load: Load::Closed {
                conns: 16,
                new_conn: false,
            },
            ..BASE
        },
        Scenario {
            name: "h2c",
            what: "HTTP/2 prior knowledge: 2 connections x 32 streams, closed loop",
            config: "h2c",
            load: Load::H2 {
                conns: 2,
                streams: 32,
            },
            in_quick: true,
            ..BASE
        },
        Scenario {
            name: "new-conn",
            what: "a new TCP connection per request (Connection: close), 16 connections",
            load: Load::Closed {
                conns: 16,
                new_conn: true,
            },
            ..BASE
        },
        Scenario {
            name: "tls-handshake",
            what: "a new TLS connection (full handshake, no resumption) per request, 16 connections",
            config: "tls",
            load: Load::Closed {
                conns: 16,
                new_conn: true,
            },
            tls: true,
            in_quick: true,
            ..BASE
        },
        Scenario {
            name: "tls-keepalive",
            what: "small-get over TLS keep-alive connections, 50 connections",
            config: "tls",
            tls: true,
            in_quick: true,
            ..BASE
        },
        Scenario {
            name: "fixed-rate",
            what: "5,000 req/s open loop on 50 connections, latency from intended send time",
            load: Load::Open {
                rate: 5_000,
                conns: 50,
            },
            default_secs: 5.0,
            in_quick: true,
            ..BASE
        },
        Scenario {
            name: "equal-rate",
            what: "small-get at one offered rate for every target: 80% of the slowest flat-out rate of the fast targets (proxies, floor, nginx, HAProxy)",
            load: Load::EqualRate {
                fraction: 0.8,
                conns: 50,
            },
            ..BASE
        },
        Scenario {
            name: "idle-conns",
            what: "5,000 keep-alive connections that served one request each, then idle: memory per connection; then requests must still be answered",
            load: Load::Idle { conns: IDLE_CONNS },
            in_quick: true,
            ..BASE
        },
        Scenario {
            name: "lb-4",
            what: "small-get through one load balancer of four servers (weighted round robin, equal weights), keep-alive, 50 connections",
            config: "lb-4",
            servers: 4,
            in_quick: true,
            ..BASE
        },
        Scenario {
            name: "middleware-chain",
            what: "small-get through four middlewares (headers, stripPrefix, basicAuth with an apr1 hash, rateLimit far above the load), keep-alive, 50 connections",
            config: "middleware-chain",
            shape: Shape::Auth,
            chain: true,
            in_quick: true,
            ..BASE
        },
        Scenario {
            name: "compress",
            what: "a 16 KiB JSON answer gzip-compressed by a compress middleware (Traefik's defaults; the client accepts gzip only), keep-alive, 50 connections: CPU per request beside bytes per answer",
            config: "compress",
            body_size: COMPRESS_BODY,
            shape: Shape::Gzip,
            compress: true,
            in_quick: true,
            ..BASE
        },
        Scenario {
            name: "reload-storm",
            what: "1,000 routers at 5,000 req/s; configuration rewritten every 100 ms (vs the same run without reloads)",
            config: "reload-storm",
            routers: 1_000,
            load: Load::Open {
                rate: 5_000,
                conns: 50,
            },
            default_secs: 5.0,
            reload: true,
            ..BASE
        },
        Scenario {
            name: "reload-storm-redis",
            what: "reload-storm with the reload route in Redis (providers.redis): its keys rewritten every 100 ms under load (vs the same run without rewrites)",
            config: "reload-storm",
            routers: 1_000,
            load: Load::Open {
                rate: 5_000,
                conns: 50,
            },
            default_secs: 5.0,
            reload: true,
            redis: true,
            ..BASE
        },
    ]
}

impl Scenario {
    /// The request the load sends and the readiness probe checks.
    pub(crate) fn request(&self) -> RequestSpec {
        let (path, host) = if self.routers > 0 {
            let i = if self.routers > MANY_ROUTERS_HIT {
                MANY_ROUTERS_HIT
            } else {
                self.routers / 2
            };
            (format!("/r{i}/hit"), Some(router_host(i)))
        } else if self.chain {
            (format!("{CHAIN_PREFIX}/items"), None)
        } else {
            ("/".to_owned(), None)
        };
        let upload = (self.name == "post-64k").then_some(64 * 1024);
        let expect_len = match upload {
            Some(n) => n.to_string().len(),
            None => self.body_size,
        };
        RequestSpec {
            upload,
            shape: self.shape,
            compressed: self.compress,
            ..RequestSpec::get(&path, host, expect_len)
        }
    }

    /// Whether the downstream side speaks h2c.
    pub(crate) fn h2c(&self) -> bool {
        matches!(self.load, Load::H2 { .. })
    }

    /// Whether the harness's own driver produces the figures.
    pub(crate) fn driver(&self) -> &'static str {
        match self.load {
            Load::Goose { .. } => "goose",
            Load::VersusWrk { .. } => "driver and wrk, alternately",
            Load::Idle { .. } => "driver (idle connections)",
            Load::H2 { .. } => "driver (h2c, hyper client)",
            Load::Open { .. } | Load::EqualRate { .. } => "driver (open loop)",
            Load::Closed { .. } => "driver (closed loop)",
        }
    }

    /// Every scenario that runs the configuration named `config`.
    pub(crate) fn sharing(config: &str) -> Vec<&'static str> {
        all()
            .into_iter()
            .filter(|s| s.config == config)
            .map(|s| s.name)
            .collect()
    }
}

/// The host name of router `i`.
pub(crate) fn router_host(i: usize) -> String {
    format!("r{i}.bench.test")
}

/// The host a reload generation adds (a route that must go live).
pub(crate) fn reload_host(generation: u64) -> String {
    format!("gen{generation}.reload.test")
}

/// Finds scenarios by name; `None` for an unknown name.
pub(crate) fn by_name(name: &str) -> Option<Scenario> {
    all().into_iter().find(|s| s.name == name)
}

/// The distinct configurations, each with the first scenario using it.
pub(crate) fn configs() -> Vec<Scenario> {
    let mut out: Vec<Scenario> = Vec::new();
    for s in all() {
        if !out.iter().any(|o| o.config == s.config) {
            out.push(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_configs_consistent() {
        let all = all();
        for (i, s) in all.iter().enumerate() {
            assert!(all[i + 1..].iter().all(|o| o.name != s.name), "{}", s.name);
            // A scenario sharing a configuration routes, reloads, serves TLS
            // and turns on features exactly like its first user.
            let first = configs()
                .into_iter()
                .find(|c| c.config == s.config)
                .unwrap();
            assert_eq!(
                (
                    s.routers,
                    s.reload,
                    s.tls,
                    s.metrics,
                    s.access_log,
                    s.h2c(),
                    s.servers,
                    s.chain,
                    s.compress
                ),
                (
                    first.routers,
                    first.reload,
                    first.tls,
                    first.metrics,
                    first.access_log,
                    first.h2c(),
                    first.servers,
                    first.chain,
                    first.compress
                ),
                "{} vs {}",
                s.name,
                first.name
            );
        }
    }

    #[test]
    fn many_routers_request_hits_router_5000() {
        let req = by_name("many-routers").unwrap().request();
        assert_eq!(req.host.as_deref(), Some("r5000.bench.test"));
        assert!(req.path.starts_with("/r5000/"));
        let storm = by_name("reload-storm").unwrap().request();
        assert_eq!(storm.host.as_deref(), Some("r500.bench.test"));
    }

    #[test]
    fn post_expects_the_echoed_count_and_shapes_carry_over() {
        let r = by_name("post-64k").unwrap().request();
        assert_eq!(r.upload, Some(65536));
        assert_eq!(r.expect_len, 5);
        assert_eq!(
            by_name("client-shapes").unwrap().request().shape,
            Shape::Browser
        );
    }
}
