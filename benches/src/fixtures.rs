//! Inputs for the micro benchmarks: router sets, request views, request
//! heads, balancers. Built once per benchmark, outside the measured code.

use std::net::{IpAddr, Ipv4Addr};

use bumpalo::Bump;
use http::Method;
use http::header::{self, HeaderMap, HeaderValue};
use proxy::ProxyRequest;
use proxy::forward::headers::{self as fwd, Forwarding};
use proxy::routing::{RouteEntry, Router, RuleSyntax, parse_rule, parse_rule_with};
use std::sync::Arc;

use proxy::config::StickyCookie;
use proxy::upstream::{
    Balancer, Child, Children, Failover, LoadBalancer, RoundRobin, ServerState, Service,
    ServiceKind, Sticky, Strategy,
};

/// A simple rule, as most routers have.
pub const SIMPLE_RULE: &str = "Host(`svc1.example.com`) && PathPrefix(`/api/1`)";

/// A rule using most of the language, regexes included.
pub const COMPLEX_RULE: &str = "(Host(`a.example.com`) || HostRegexp(`^[a-z]+\\.example\\.org$`)) \
     && PathPrefix(`/api`) && !Method(`DELETE`) && Header(`X-Tenant`, `blue`) \
     && (Query(`debug`, `1`) || PathRegexp(`^/api/v[0-9]+/items`))";

/// Which router a routing benchmark's request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// The router ranked first (highest priority).
    HitFirst,
    /// The router ranked last (lowest priority).
    HitLast,
    /// No router matches (a host no router has).
    Miss,
}

impl Case {
    /// Every case, in report order.
    pub const ALL: [Case; 3] = [Case::HitFirst, Case::HitLast, Case::Miss];

    /// Short name used in benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Case::HitFirst => "hit_first",
            Case::HitLast => "hit_last",
            Case::Miss => "miss",
        }
    }
}

/// Router counts every routing benchmark runs at.
pub const ROUTER_COUNTS: [usize; 4] = [1, 100, 1_000, 10_000];

/// The rule of router `i`: `Host(svcI.example.com) && PathPrefix(/api/I)`.
pub fn router_rule(i: usize) -> String {
    format!("Host(`svc{i}.example.com`) && PathPrefix(`/api/{i}`)")
}

/// `n` routers; router `i` has priority `n - i`, so router 0 is ranked
/// first and router `n - 1` last. Values are the router index.
pub fn router_set(n: usize) -> Router<usize> {
    let entries = (0..n)
        .map(|i| RouteEntry {
            name: format!("r{i:05}"),
            rule: parse_rule(&router_rule(i)).expect("generated rule parses"),
            priority: (n - i) as i64,
            value: i,
        })
        .collect();
    Router::new(entries)
}

/// What a routing benchmark needs: the router, the request's host and
/// path, its headers, and a warmed-up arena.
#[derive(Debug)]
pub struct RouteInput {
    /// The router set.
    pub router: Router<usize>,
    /// Request host.
    pub host: String,
    /// Request path (already normalised).
    pub path: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// Request query, if any.
    pub query: Option<&'static str>,
    /// Per-request scratch, with its first chunk already allocated (a
    /// worker's arena is reused request after request).
    pub arena: Bump,
    /// The router index the request must reach, if any.
    pub expect: Option<usize>,
}

/// A router set of `n` routers and a request for `case`.
pub fn route_input(n: usize, case: Case) -> RouteInput {
    let (i, expect) = match case {
        Case::HitFirst => (0, Some(0)),
        Case::HitLast => (n - 1, Some(n - 1)),
        Case::Miss => (n, None),
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
    let mut arena = Bump::with_capacity(4096);
    arena.reset();
    RouteInput {
        router: router_set(n),
        host: format!("svc{i}.example.com"),
        path: format!("/api/{i}/items"),
        headers,
        query: None,
        arena,
        expect,
    }
}

/// Rule shapes written in both syntaxes, for the v2 vs v3 counts: the same
/// routing written as a v2 user writes it and as its v3 equivalent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyntaxCase {
    /// `Host(a, b) && PathPrefix(p)` / `(Host(a) || Host(b)) && PathPrefix(p)`.
    Hosts,
    /// `HostRegexp(`{sub:[a-z]+}.svcI.example.com`)` / `HostRegexp(`^[a-z]+\.svcI\.example\.com$`)`.
    HostTemplate,
    /// `Host(h) && Path(`/users/{id:[0-9]+}`)` / `Host(h) && PathRegexp(`^/users/[0-9]+$`)`.
    PathTemplate,
    /// `Host(h) && Headers(k, v) && Query(`q=v`)` / `Host(h) && Header(k, v) && Query(`q`, `v`)`.
    HeadersQuery,
}

/// Routers in each syntax-comparison set; the request is for the middle one.
pub const SYNTAX_ROUTERS: usize = 100;

fn syntax_rule(case: SyntaxCase, syntax: RuleSyntax, i: usize) -> String {
    let v2 = syntax == RuleSyntax::V2;
    match case {
        SyntaxCase::Hosts if v2 => {
            format!("Host(`a{i}.example.com`, `b{i}.example.com`) && PathPrefix(`/api/{i}`)")
        }
        SyntaxCase::Hosts => format!(
            "(Host(`a{i}.example.com`) || Host(`b{i}.example.com`)) && PathPrefix(`/api/{i}`)"
        ),
        SyntaxCase::HostTemplate if v2 => {
            format!("HostRegexp(`{{sub:[a-z]+}}.svc{i}.example.com`)")
        }
        SyntaxCase::HostTemplate => format!("HostRegexp(`^[a-z]+\\.svc{i}\\.example\\.com$`)"),
        SyntaxCase::PathTemplate if v2 => {
            format!("Host(`svc{i}.example.com`) && Path(`/users/{{id:[0-9]+}}`)")
        }
        SyntaxCase::PathTemplate => {
            format!("Host(`svc{i}.example.com`) && PathRegexp(`^/users/[0-9]+$`)")
        }
        SyntaxCase::HeadersQuery if v2 => {
            format!("Host(`svc{i}.example.com`) && Headers(`X-Tenant`, `t{i}`) && Query(`debug=1`)")
        }
        SyntaxCase::HeadersQuery => format!(
            "Host(`svc{i}.example.com`) && Header(`X-Tenant`, `t{i}`) && Query(`debug`, `1`)"
        ),
    }
}

/// [`SYNTAX_ROUTERS`] routers of `case` in `syntax`, and a request for the
/// middle one (priorities by router, as in [`router_set`]).
pub fn syntax_input(case: SyntaxCase, syntax: RuleSyntax) -> RouteInput {
    let n = SYNTAX_ROUTERS;
    let entries = (0..n)
        .map(|i| {
            let text = syntax_rule(case, syntax, i);
            RouteEntry {
                name: format!("r{i:05}"),
                rule: parse_rule_with(&text, syntax).expect("generated rule parses"),
                priority: (n - i) as i64,
                value: i,
            }
        })
        .collect();
    let i = n / 2;
    let (host, path) = match case {
        SyntaxCase::Hosts => (format!("b{i}.example.com"), format!("/api/{i}/items")),
        SyntaxCase::HostTemplate => (format!("www.svc{i}.example.com"), "/".to_owned()),
        SyntaxCase::PathTemplate => (format!("svc{i}.example.com"), "/users/42".to_owned()),
        SyntaxCase::HeadersQuery => (format!("svc{i}.example.com"), "/".to_owned()),
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
    headers.insert(
        "x-tenant",
        HeaderValue::from_str(&format!("t{i}")).expect("a header value"),
    );
    let mut arena = Bump::with_capacity(4096);
    arena.reset();
    RouteInput {
        router: Router::new(entries),
        host,
        path,
        headers,
        query: (case == SyntaxCase::HeadersQuery).then_some("debug=1"),
        arena,
        expect: Some(i),
    }
}

impl RouteInput {
    /// One routing decision, as the proxy makes it per request: build the
    /// borrowed view, route, reset the arena.
    #[inline]
    pub fn decide(&mut self) -> Option<usize> {
        let req = ProxyRequest {
            method: &Method::GET,
            host: &self.host,
            authority: &self.host,
            path: &self.path,
            query: self.query,
            headers: &self.headers,
            client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            arena: &self.arena,
        };
        let chosen = self.router.route(&req).copied();
        self.arena.reset();
        chosen
    }
}

/// The request head a browser-like client sends through the proxy, with
/// `Connection: keep-alive` (a hop-by-hop header to remove).
pub fn request_head() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::HOST,
        HeaderValue::from_static("svc1.example.com:8080"),
    );
    h.insert(
        header::USER_AGENT,
        HeaderValue::from_static("Mozilla/5.0 (X11; Linux x86_64) bench/1.0"),
    );
    h.insert(
        header::ACCEPT,
        HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"),
    );
    h.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("gzip, br"),
    );
    h.insert(
        header::ACCEPT_LANGUAGE,
        HeaderValue::from_static("en-US,en;q=0.5"),
    );
    h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    h.insert(
        header::COOKIE,
        HeaderValue::from_static("session=abc123; theme=dark"),
    );
    h
}

/// The per-connection and per-process values the forwarding headers are
/// set from (prepared once, as the proxy does).
#[derive(Debug)]
pub struct ForwardingValues {
    /// The peer IP.
    pub client_ip: HeaderValue,
    /// The `Host` header as sent.
    pub host: HeaderValue,
    /// The port part of the host.
    pub host_port: HeaderValue,
    /// This proxy's host name.
    pub server_name: HeaderValue,
}

impl Default for ForwardingValues {
    fn default() -> Self {
        ForwardingValues {
            client_ip: HeaderValue::from_static("192.0.2.10"),
            host: HeaderValue::from_static("svc1.example.com:8080"),
            host_port: HeaderValue::from_static("8080"),
            server_name: HeaderValue::from_static("bench-host"),
        }
    }
}

/// Request-head processing as the proxy does it per request, for an
/// untrusted client: before routing, `X-Forwarded-*` set and the
/// `Connection`-named headers removed; when sending, the hop-by-hop
/// headers removed and the peer added to `X-Forwarded-For`.
#[inline]
pub fn process_head(headers: &mut HeaderMap, v: &ForwardingValues) {
    fwd::set_forwarded_headers(
        headers,
        &Forwarding {
            client_ip: &v.client_ip,
            trusted: false,
            tls: false,
            websocket: false,
            host: Some(&v.host),
            host_port: Some(&v.host_port),
            server_name: &v.server_name,
        },
    );
    fwd::remove_connection_headers(headers, false, &[]);
    fwd::remove_hop_by_hop(headers, false, false);
    fwd::append_forwarded_for(headers, &v.client_ip, fwd::ForwardedFor::Replace);
}

/// A round-robin balancer over three servers, weighted 1:2:3 when
/// `weighted`.
pub fn balancer(weighted: bool) -> RoundRobin {
    if weighted {
        RoundRobin::weighted(&[1, 2, 3])
    } else {
        RoundRobin::new(3)
    }
}

/// A balancer of `strategy` over `n` servers, all up (weights 1, 2, 3, 1,
/// 2, 3...), as a `loadBalancer` service compiles it.
pub fn strategy_balancer(strategy: Strategy, n: usize) -> Balancer {
    Balancer::new(
        strategy,
        (0..n).map(|i| {
            (
                Arc::new(ServerState::default()),
                (i % 3) as u32 + 1,
                Arc::from(format!("http://10.0.{}.{}:8080", i / 250, i % 250)),
            )
        }),
    )
}

/// A service tree to resolve a request through, as the snapshot compiles
/// it: service 0 is the root.
#[derive(Debug, Clone, Copy)]
pub enum Tree {
    /// A `weighted` service (3:1) of two wrr load balancers of 2 servers.
    Weighted,
    /// A `failover` whose main load balancer (2 servers) is up.
    Failover,
    /// A wrr load balancer of 2 servers with a sticky cookie; the request
    /// carries a valid cookie.
    StickyHit,
}

fn lb_service(name: &str, n: usize, sticky: bool) -> Service {
    let balancer = strategy_balancer(Strategy::Wrr, n);
    let sticky = sticky.then(|| {
        let cookie = StickyCookie {
            name: Some("lb".into()),
            secure: false,
            http_only: true,
            same_site: None,
            max_age: 0,
            path: "/".into(),
            domain: String::new(),
        };
        let urls: Vec<String> = (0..n)
            .map(|i| format!("http://10.0.{}.{}:8080", i / 250, i % 250))
            .collect();
        Sticky::new(&cookie, name, urls.iter().map(String::as_str))
    });
    Service {
        name: Arc::from(name),
        chain: proxy::middleware::Chain::default(),
        kind: ServiceKind::LoadBalancer(LoadBalancer {
            servers: Vec::new(),
            balancer,
            pass_host_header: true,
            health_check: None,
            sticky,
            passive: None,
        }),
    }
}

/// The services of `tree`, and the request headers it resolves with.
pub fn service_tree(tree: Tree) -> (Vec<Service>, HeaderMap) {
    let mut headers = request_head();
    let services = match tree {
        Tree::Weighted => vec![
            Service {
                name: Arc::from("canary@file"),
                chain: proxy::middleware::Chain::default(),
                kind: ServiceKind::Weighted(Children {
                    members: [(1, 3, "stable"), (2, 1, "next")]
                        .into_iter()
                        .map(|(service, weight, name)| Child {
                            service,
                            weight,
                            name: Arc::from(name),
                        })
                        .collect(),
                    rr: RoundRobin::weighted(&[3, 1]),
                    health_check: false,
                    sticky: None,
                }),
            },
            lb_service("stable@file", 2, false),
            lb_service("next@file", 2, false),
        ],
        Tree::Failover => vec![
            Service {
                name: Arc::from("f@file"),
                chain: proxy::middleware::Chain::default(),
                kind: ServiceKind::Failover(Failover {
                    main: 1,
                    fallback: 2,
                    follow_fallback: true,
                    errors: None,
                }),
            },
            lb_service("main@file", 2, false),
            lb_service("spare@file", 2, false),
        ],
        Tree::StickyHit => {
            let value = proxy::upstream::sticky::value_of("http://10.0.0.1:8080");
            headers.insert(
                header::COOKIE,
                HeaderValue::from_str(&format!("theme=dark; lb={value}")).expect("cookie"),
            );
            vec![lb_service("pinned@file", 2, true)]
        }
    };
    (services, headers)
}

/// The client address an hrw pick hashes.
pub const PICK_CLIENT_IP: &[u8] = b"192.0.2.17";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_inputs_reach_the_expected_router() {
        for n in [1, 100] {
            for case in Case::ALL {
                let mut input = route_input(n, case);
                assert_eq!(input.decide(), input.expect, "n={n} case={case:?}");
            }
        }
    }

    #[test]
    fn head_processing_sets_forwarding_headers() {
        let mut h = request_head();
        process_head(&mut h, &ForwardingValues::default());
        assert!(h.get(header::CONNECTION).is_none());
        assert_eq!(h.get("x-forwarded-for").unwrap(), "192.0.2.10");
        assert_eq!(h.get("x-forwarded-port").unwrap(), "8080");
    }

    #[test]
    fn both_rules_parse() {
        parse_rule(SIMPLE_RULE).unwrap();
        parse_rule(COMPLEX_RULE).unwrap();
    }
}
