//! Traefik's own rule tests (`pkg/muxer/http/matcher_test.go`, `mux_test.go`,
//! `matcher_v2_test.go`, `pkg/rules/parser_test.go`), ported as data in
//! `tests/data/traefik_rule_cases.toml` with the Go regexp constructs of
//! issue 12, run three ways:
//!
//! 1. in process, against the routing API (`parse_rule_with`, `Router`), with
//!    the request view the proxy builds (host without port, normalised path,
//!    the case's remote address);
//! 2. over real sockets against the proxy: every case on its own entry point,
//!    every router on its own backend; rejected rules must fail the
//!    configuration with an error on that router's `rule`;
//! 3. the same sockets against a real Traefik when one is installed
//!    (`support::traefik`): Traefik must give the data's answer (which
//!    checks the data) and the proxy's (the differential), and must disable
//!    exactly the routers the data says it rejects (its API).
//!
//! What cannot run is listed with the reason (`skip`: not at all; `socket`:
//! in process only; `socket_status`: Go's server answers before routing).
//! Requests marked `xfail` are known differences owned by another issue:
//! the proxy must still answer differently, so a fix shows up as a failure
//! asking to remove the mark.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bumpalo::Bump;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use proxy::ProxyRequest;
use proxy::routing::{
    RouteEntry, Router, RuleSyntax, host_without_port, normalize_path, parse_rule_with,
};
use serde::Deserialize;
use support::traefik::{
    Answer, Traefik, find_traefik, free_ports, router_status, send, skip_message,
};
use support::*;

const CASES: &str = include_str!("data/traefik_rule_cases.toml");

/// Go's `httptest.NewRequest` remote address, for in-process requests that
/// name none.
const HTTPTEST_REMOTE: &str = "192.0.2.1";

// === the data ===

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Cases {
    case: Vec<Case>,
}

#[derive(Clone, Copy, Default, Deserialize, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum Syntax {
    V2,
    #[default]
    V3,
}

impl Syntax {
    fn rule_syntax(self) -> RuleSyntax {
        match self {
            Syntax::V2 => RuleSyntax::V2,
            Syntax::V3 => RuleSyntax::V3,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    from: String,
    #[serde(default)]
    syntax: Syntax,
    rule: Option<String>,
    #[serde(default)]
    routers: Vec<RouterSpec>,
    #[serde(default)]
    error: bool,
    skip: Option<String>,
    /// The case's entry point does not trust the client's forwarding
    /// headers (the others trust 127.0.0.0/8, so a test's `X-Forwarded-*`
    /// reaches the rule as the Go test sets it).
    #[serde(default)]
    untrusted_forwarding: bool,
    #[serde(default)]
    requests: Vec<Request>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouterSpec {
    name: String,
    rule: String,
    priority: Option<i64>,
    syntax: Option<Syntax>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    url: Option<String>,
    raw: Option<String>,
    method: Option<String>,
    #[serde(default)]
    headers: Vec<(String, String)>,
    /// Header values are Latin-1: each character up to U+00FF is one byte.
    #[serde(default)]
    latin1: bool,
    remote: Option<String>,
    status: u16,
    router: Option<String>,
    skip: Option<String>,
    socket: Option<String>,
    socket_status: Option<u16>,
    socket_why: Option<String>,
    xfail: Option<String>,
}

impl Case {
    /// The case's routers with their syntax (one, named after the case,
    /// when it has a `rule`).
    fn routers(&self) -> Vec<(RouterSpec, Syntax)> {
        match &self.rule {
            Some(rule) => vec![(
                RouterSpec {
                    name: "r".to_owned(),
                    rule: rule.clone(),
                    priority: None,
                    syntax: None,
                },
                self.syntax,
            )],
            None => self
                .routers
                .iter()
                .map(|r| (r.clone(), r.syntax.unwrap_or(self.syntax)))
                .collect(),
        }
    }

    /// The router a routed request reaches: the one it names, or the
    /// case's single router.
    fn expected_router(&self, req: &Request) -> String {
        req.router.clone().unwrap_or_else(|| "r".to_owned())
    }
}

fn load() -> Vec<Case> {
    let cases: Cases =
        toml::from_str(CASES).unwrap_or_else(|e| panic!("traefik_rule_cases.toml: {e}"));
    for c in &cases.case {
        assert!(
            c.rule.is_some() == c.routers.is_empty() || c.skip.is_some(),
            "{}: a case has a rule or routers",
            c.from
        );
        assert!(
            c.error == c.requests.is_empty() || c.skip.is_some(),
            "{}: an error case has no requests, others have some",
            c.from
        );
    }
    cases.case
}

/// A request's parts: (method, host header, path and query, headers).
struct Parts {
    method: String,
    host: Vec<u8>,
    target: String,
    headers: Vec<(String, Vec<u8>)>,
}

fn parts(req: &Request) -> Parts {
    let url = req
        .url
        .as_deref()
        .expect("a request has a url or raw bytes");
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (authority, target) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let target = if target.starts_with('/') {
        target.to_owned()
    } else {
        format!("/{target}")
    };
    let bytes = |v: &str| -> Vec<u8> {
        if req.latin1 {
            v.chars()
                .map(|c| u8::try_from(u32::from(c)).expect("Latin-1 header value"))
                .collect()
        } else {
            v.as_bytes().to_vec()
        }
    };
    let mut host = authority.as_bytes().to_vec();
    let mut headers = Vec::new();
    for (k, v) in &req.headers {
        if k.eq_ignore_ascii_case("host") {
            host = bytes(v);
        } else {
            headers.push((k.clone(), bytes(v)));
        }
    }
    Parts {
        method: req.method.clone().unwrap_or_else(|| "GET".to_owned()),
        host,
        target,
        headers,
    }
}

/// The request on the wire, asking to close the connection.
fn wire(req: &Request) -> Vec<u8> {
    if let Some(raw) = &req.raw {
        let head = raw
            .strip_suffix("\r\n\r\n")
            .expect("a raw request ends its head");
        return format!("{head}\r\nConnection: close\r\n\r\n").into_bytes();
    }
    let p = parts(req);
    let mut out = format!("{} {} HTTP/1.1\r\nHost: ", p.method, p.target).into_bytes();
    out.extend_from_slice(&p.host);
    out.extend_from_slice(b"\r\n");
    for (k, v) in &p.headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out
}

fn describe(req: &Request) -> String {
    match (&req.raw, &req.url) {
        (Some(raw), _) => format!("{raw:?}"),
        (None, Some(url)) => {
            let mut s = format!("{} {url}", req.method.as_deref().unwrap_or("GET"));
            for (k, v) in &req.headers {
                let _ = write!(s, " [{k}: {v}]");
            }
            if let Some(r) = &req.remote {
                let _ = write!(s, " from {r}");
            }
            s
        }
        (None, None) => "?".to_owned(),
    }
}

fn expected(case: &Case, req: &Request, over_socket: bool) -> Answer {
    let status = if over_socket {
        req.socket_status.unwrap_or(req.status)
    } else {
        req.status
    };
    let backend = (status == 200).then(|| case.expected_router(req));
    Answer { status, backend }
}

// === in process ===

#[test]
fn cases_in_process() {
    let cases = load();
    let mut failures = Vec::new();
    let (mut ran, mut rejected) = (0, 0);
    for case in cases.iter().filter(|c| c.skip.is_none()) {
        let mut entries = Vec::new();
        let mut errors = Vec::new();
        for (spec, syntax) in case.routers() {
            match parse_rule_with(&spec.rule, syntax.rule_syntax()) {
                Ok(rule) => entries.push(RouteEntry {
                    priority: spec.priority.unwrap_or_else(|| rule.default_priority()),
                    name: spec.name.clone(),
                    rule,
                    value: spec.name,
                }),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if case.error {
            rejected += 1;
            if errors.is_empty() {
                failures.push(format!(
                    "{}: {:?} parsed; Traefik refuses it",
                    case.from, case.rule
                ));
            }
            continue;
        }
        if !errors.is_empty() {
            failures.push(format!("{}: refused: {}", case.from, errors.join("; ")));
            continue;
        }
        let router = Router::new(entries);
        for req in case
            .requests
            .iter()
            .filter(|r| r.skip.is_none() && r.raw.is_none())
        {
            ran += 1;
            let got = route_in_process(&router, req);
            let want = expected(case, req, false);
            // A mark about what happens over a socket does not apply here.
            let xfail = req.xfail.as_ref().filter(|_| req.socket_status.is_none());
            match xfail {
                None if got != want => failures.push(format!(
                    "{}: {} => {got}, want {want}",
                    case.from,
                    describe(req)
                )),
                Some(why) if got == want => failures.push(format!(
                    "{}: {} now gives {want} (expected failure: {why}); remove the xfail mark",
                    case.from,
                    describe(req)
                )),
                _ => {}
            }
        }
    }
    eprintln!("in process: {ran} requests and {rejected} rejected rules checked");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn route_in_process(router: &Router<String>, req: &Request) -> Answer {
    let p = parts(req);
    let arena = Bump::new();
    let method = Method::from_bytes(p.method.as_bytes()).expect("a method token");
    let mut headers = HeaderMap::new();
    for (k, v) in &p.headers {
        headers.append(
            HeaderName::from_bytes(k.as_bytes()).expect("a header name"),
            HeaderValue::from_bytes(v).expect("a header value"),
        );
    }
    let (path, query) = match p.target.split_once('?') {
        Some((path, q)) => (path, Some(q)),
        None => (p.target.as_str(), None),
    };
    let Ok(path) = normalize_path(path, &arena) else {
        return Answer {
            status: 400,
            backend: None,
        };
    };
    let host = String::from_utf8(p.host).expect("a UTF-8 host");
    let remote = req.remote.as_deref().unwrap_or(HTTPTEST_REMOTE);
    let view = ProxyRequest {
        method: &method,
        host: host_without_port(&host),
        authority: &host,
        path,
        query,
        headers: &headers,
        client_ip: remote.parse::<IpAddr>().expect("an IP"),
        arena: &arena,
    };
    match router.route(&view) {
        Some(name) => Answer {
            status: 200,
            backend: Some(name.clone()),
        },
        None => Answer {
            status: 404,
            backend: None,
        },
    }
}

// === over sockets ===

/// The dynamic configuration of every case that routes: case `i` on entry
/// point `c{i}`, its routers named `c{i}-{name}`, each on its own backend;
/// plus (when `with_errors`) every refused router on entry point `errors`.
struct Layout {
    /// (case index, entry point name)
    entry_points: Vec<(usize, String)>,
    /// Router names, in the order of their backends.
    routers: Vec<String>,
    /// Refused routers: (router name, case index).
    refused: Vec<(String, usize)>,
}

/// The layout of `cases`.
fn layout(cases: &[Case]) -> Layout {
    let mut l = Layout {
        entry_points: Vec::new(),
        routers: Vec::new(),
        refused: Vec::new(),
    };
    for (i, case) in cases.iter().enumerate() {
        if case.skip.is_some() {
            continue;
        }
        if case.error {
            l.refused.push((format!("e{i}"), i));
            continue;
        }
        l.entry_points.push((i, format!("c{i}")));
        for (spec, _) in case.routers() {
            l.routers.push(format!("c{i}-{}", spec.name));
        }
    }
    l
}

fn dynamic_yaml(cases: &[Case], l: &Layout, backends: &[SocketAddr], with_errors: bool) -> String {
    let mut routers = String::new();
    let mut services = String::new();
    let mut b = 0;
    for (i, ep) in &l.entry_points {
        for (spec, syntax) in cases[*i].routers() {
            let name = format!("{ep}-{}", spec.name);
            let _ = write!(
                routers,
                "    {name}:\n      rule: {}\n      ruleSyntax: {}\n      entryPoints: [{ep}]\n      service: svc-{name}\n",
                yaml_str(&spec.rule),
                if syntax == Syntax::V2 { "v2" } else { "v3" },
            );
            if let Some(p) = spec.priority {
                let _ = writeln!(routers, "      priority: {p}");
            }
            let _ = write!(
                services,
                "    svc-{name}:\n      loadBalancer:\n        servers:\n          - url: \"http://{}\"\n",
                backends[b]
            );
            b += 1;
        }
    }
    if with_errors {
        routers += &refused_yaml(
            cases,
            l,
            "      entryPoints: [errors]\n",
            &format!("svc-{}", l.routers[0]),
        );
    }
    format!("http:\n  routers:\n{routers}  services:\n{services}")
}

/// The refused routers as YAML router entries (`extra` under each, then
/// `service`).
fn refused_yaml(cases: &[Case], l: &Layout, extra: &str, service: &str) -> String {
    let mut out = String::new();
    for (name, i) in &l.refused {
        for (spec, syntax) in cases[*i].routers() {
            let _ = write!(
                out,
                "    {name}:\n      rule: {}\n      ruleSyntax: {}\n{extra}      service: {service}\n",
                yaml_str(&spec.rule),
                if syntax == Syntax::V2 { "v2" } else { "v3" },
            );
        }
    }
    out
}

/// Every runnable socket request: (case, request, entry point), and what
/// is not run, with why.
fn socket_requests<'c>(
    cases: &'c [Case],
    l: &Layout,
) -> (Vec<(&'c Case, &'c Request, String)>, Vec<String>) {
    let mut run = Vec::new();
    let mut not_run = Vec::new();
    for case in cases {
        if let Some(why) = &case.skip {
            not_run.push(format!("{}: {why}", case.from));
        }
    }
    for (i, ep) in &l.entry_points {
        let case = &cases[*i];
        for req in &case.requests {
            match (&req.skip, &req.socket) {
                (Some(why), _) => not_run.push(format!("{}: {}: {why}", case.from, describe(req))),
                (None, Some(why)) => not_run.push(format!(
                    "{}: {}: in process only: {why}",
                    case.from,
                    describe(req)
                )),
                (None, None) => run.push((case, req, ep.clone())),
            }
        }
    }
    (run, not_run)
}

fn source(req: &Request) -> Ipv4Addr {
    req.remote.as_deref().map_or(Ipv4Addr::LOCALHOST, |r| {
        r.parse().expect("an IPv4 source on 127/8")
    })
}

/// Each request's answer, the backend named as in the data (without the
/// `c{i}-` prefix of its router).
async fn answers(
    addr: impl Fn(&str) -> SocketAddr,
    reqs: &[(&Case, &Request, String)],
) -> Vec<Result<Answer, String>> {
    let mut out = Vec::with_capacity(reqs.len());
    for (_, req, ep) in reqs {
        let answer = send(addr(ep), source(req), &wire(req)).await.map(|mut a| {
            a.backend = a
                .backend
                .map(|b| b.split_once('-').map_or(b.clone(), |(_, n)| n.to_owned()));
            a
        });
        out.push(answer);
    }
    out
}

/// YAML under a case's entry point: trust the loopback clients' forwarding
/// headers unless the case says otherwise.
fn entry_point_extra(case: &Case) -> String {
    if case.untrusted_forwarding {
        String::new()
    } else {
        "    forwardedHeaders:\n      trustedIPs: [\"127.0.0.0/8\"]\n".to_owned()
    }
}

fn proxy_static(cases: &[Case], l: &Layout) -> String {
    // `web` is the entry point the test support expects; no router uses it.
    let mut s = String::from("entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\n");
    for (i, ep) in &l.entry_points {
        let _ = write!(
            s,
            "  {ep}:\n    address: \"127.0.0.1:0\"\n{}",
            entry_point_extra(&cases[*i])
        );
    }
    s + "providers:\n  file:\n    filename: \"{DIR}/dynamic.yml\"\n"
}

/// Checks the proxy's answer to one request against the data; `None` when
/// it is as expected (an `xfail` must differ).
fn judge(case: &Case, req: &Request, got: &Result<Answer, String>) -> Option<String> {
    let want = expected(case, req, true);
    let same = got.as_ref().is_ok_and(|a| *a == want);
    let shown = match got {
        Ok(a) => a.to_string(),
        Err(e) => format!("error {e}"),
    };
    match (&req.xfail, same) {
        (None, true) | (Some(_), false) => None,
        (None, false) => Some(format!(
            "{}: {} => {shown}, want {want}",
            case.from,
            describe(req)
        )),
        (Some(why), true) => Some(format!(
            "{}: {} now gives {want} (expected failure: {why}); remove the xfail mark",
            case.from,
            describe(req)
        )),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cases_over_sockets_against_the_proxy() {
    let cases = load();
    let l = layout(&cases);
    let backends = named_backends(&l.routers);
    let proxy = start_proxy_static(
        &dynamic_yaml(&cases, &l, &backends.addrs, false),
        &proxy_static(&cases, &l),
        1,
    );
    let (reqs, not_run) = socket_requests(&cases, &l);
    let got = answers(|ep| proxy.addr(ep), &reqs).await;
    let mut failures = Vec::new();
    let mut xfails = Vec::new();
    for ((case, req, _), got) in reqs.iter().zip(&got) {
        if let Some(f) = judge(case, req, got) {
            failures.push(f);
        } else if let Some(why) = &req.xfail {
            xfails.push(format!("{}: {}: {why}", case.from, describe(req)));
        }
    }

    // Refused rules: the configuration fails, naming each router's rule.
    let refused = format!(
        "http:\n  routers:\n{}  services:\n    svc:\n      loadBalancer:\n        servers:\n          - url: \"http://127.0.0.1:1\"\n",
        refused_yaml(&cases, &l, "", "svc")
    );
    match try_start_proxy(&refused) {
        Ok(running) => {
            running.shutdown(Some(Duration::from_millis(200)));
            failures.push("the configuration of refused rules was accepted".to_owned());
        }
        Err(text) => {
            for (name, i) in &l.refused {
                let key = format!("http.routers.{name}.rule: ");
                if !text.contains(&key) {
                    failures.push(format!(
                        "{}: no error on {key}(errors:\n{text})",
                        cases[*i].from
                    ));
                }
            }
        }
    }

    let different: Vec<String> = reqs
        .iter()
        .filter_map(|(c, r, _)| {
            let why = r.socket_why.as_deref()?;
            Some(format!(
                "{}: {}: {} over a socket: {why}",
                c.from,
                describe(r),
                r.socket_status?
            ))
        })
        .collect();
    eprintln!(
        "answered differently over a socket than in Go's in-memory test ({}):\n  {}",
        different.len(),
        different.join("\n  ")
    );
    eprintln!(
        "proxy over sockets: {} cases, {} requests sent, {} refused rules checked, {} expected failures:\n  {}\nnot run over a socket ({}):\n  {}",
        l.entry_points.len(),
        reqs.len(),
        l.refused.len(),
        xfails.len(),
        xfails.join("\n  "),
        not_run.len(),
        not_run.join("\n  ")
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// === against Traefik ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cases_against_traefik() {
    let Some(bin) = find_traefik() else {
        eprintln!("{}", skip_message("cases_against_traefik"));
        return;
    };
    let cases = load();
    let l = layout(&cases);
    let backends = named_backends(&l.routers);
    let dir = TempDir::new("traefik-rules");
    let dyn_path = dir.write(
        "dynamic.yml",
        &dynamic_yaml(&cases, &l, &backends.addrs, true),
    );
    let names: Vec<(String, String)> = l
        .entry_points
        .iter()
        .map(|(i, ep)| (ep.clone(), entry_point_extra(&cases[*i])))
        .chain([("errors".to_owned(), String::new())])
        .collect();
    // Hundreds of ports picked while other tests bind theirs: on a clash
    // (Traefik cannot bind), pick again.
    let mut attempt = 0;
    let (_traefik, eps, status) = loop {
        attempt += 1;
        let mut ports = free_ports(names.len() + 1);
        let api = SocketAddr::from(([127, 0, 0, 1], ports.pop().unwrap_or_default()));
        let list: Vec<(String, SocketAddr, String)> = names
            .iter()
            .zip(ports)
            .map(|((name, extra), p)| {
                (
                    name.clone(),
                    SocketAddr::from(([127, 0, 0, 1], p)),
                    extra.clone(),
                )
            })
            .collect();
        let eps: BTreeMap<String, SocketAddr> =
            list.iter().map(|(k, v, _)| (k.clone(), *v)).collect();
        let traefik = Traefik::start(
            &bin,
            &dir,
            &support::traefik::static_yaml(&list, &dyn_path, Some(api)),
        );
        match router_status(api, l.routers.len() + l.refused.len(), &traefik).await {
            Ok(status) => break (traefik, eps, status),
            Err(log) if attempt < 5 && log.contains("address already in use") => {
                eprintln!("Traefik could not bind a port; picking new ones");
            }
            Err(log) => panic!("Traefik did not load the routers; its log:\n{log}"),
        }
    };
    // The proxy serves the same entry points and backends.
    let proxy = start_proxy_static(
        &dynamic_yaml(&cases, &l, &backends.addrs, false),
        &proxy_static(&cases, &l),
        1,
    );

    let (reqs, _) = socket_requests(&cases, &l);
    let theirs = answers(|ep| eps[ep], &reqs).await;
    let ours = answers(|ep| proxy.addr(ep), &reqs).await;
    let mut failures = Vec::new();
    let mut differ = 0;
    for (((case, req, _), t), o) in reqs.iter().zip(&theirs).zip(&ours) {
        let want = expected(case, req, true);
        let t = t
            .as_ref()
            .unwrap_or_else(|e| panic!("traefik: {e} for {}", describe(req)));
        if *t != want {
            failures.push(format!(
                "{}: {}: Traefik answers {t}, the data says {want}",
                case.from,
                describe(req)
            ));
        }
        match o {
            Ok(o) if o == t => {}
            _ if req.xfail.is_some() => differ += 1,
            Ok(o) => failures.push(format!(
                "{}: {}: Traefik {t}, proxy {o}",
                case.from,
                describe(req)
            )),
            Err(e) => failures.push(format!(
                "{}: {}: Traefik {t}, proxy error {e}",
                case.from,
                describe(req)
            )),
        }
    }
    for name in &l.routers {
        match status.get(name.as_str()) {
            Some(s) if s == "enabled" => {}
            s => failures.push(format!("Traefik router {name}: status {s:?}, want enabled")),
        }
    }
    for (name, i) in &l.refused {
        match status.get(name.as_str()) {
            Some(s) if s == "disabled" => {}
            s => failures.push(format!(
                "{}: Traefik router {name} status {s:?}; the data says Traefik refuses {:?}",
                cases[*i].from, cases[*i].rule
            )),
        }
    }
    eprintln!(
        "traefik differential: {} requests, {} answered differently by the proxy as marked xfail; {} refused rules confirmed",
        reqs.len(),
        differ,
        l.refused.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// === core.defaultRuleSyntax ===

/// `core.defaultRuleSyntax: v2` makes routers without `ruleSyntax` v2 (and
/// `ruleSyntax: v3` still v3), in the proxy and, when installed, in Traefik.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_rule_syntax_v2() {
    let names = ["v2".to_owned(), "v3".to_owned()];
    let backends = named_backends(&names);
    let dynamic = format!(
        "http:\n  routers:\n    v2:\n      rule: 'Host(`a.test`, `b.test`) && Query(`q=1`)'\n      service: svc-v2\n    v3:\n      rule: 'PathRegexp(`^/v3`)'\n      ruleSyntax: v3\n      service: svc-v3\n  services:\n    svc-v2:\n      loadBalancer:\n        servers:\n          - url: \"http://{}\"\n    svc-v3:\n      loadBalancer:\n        servers:\n          - url: \"http://{}\"\n",
        backends.addrs[0], backends.addrs[1]
    );
    let requests: [(&str, &str, Answer); 4] = [
        (
            "b.test",
            "/?q=2&q=1",
            Answer {
                status: 404,
                backend: None,
            },
        ),
        (
            "b.test",
            "/?q=1&q=2",
            Answer {
                status: 200,
                backend: Some("v2".to_owned()),
            },
        ),
        (
            "a.test",
            "/v3",
            Answer {
                status: 200,
                backend: Some("v3".to_owned()),
            },
        ),
        (
            "c.test",
            "/?q=1",
            Answer {
                status: 404,
                backend: None,
            },
        ),
    ];
    let check = |what: &str, addr: SocketAddr| {
        let what = what.to_owned();
        let requests = requests.clone();
        async move {
            for (host, target, want) in requests {
                let req =
                    format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
                let got = send(addr, Ipv4Addr::LOCALHOST, req.as_bytes())
                    .await
                    .expect("an answer");
                assert_eq!(got, want, "{what}: {host}{target}");
            }
        }
    };
    let proxy = start_proxy_with(&dynamic, "core:\n  defaultRuleSyntax: v2\n", 1);
    check("proxy", proxy.web).await;

    let Some(bin) = find_traefik() else {
        eprintln!("{}", skip_message("default_rule_syntax_v2 against Traefik"));
        return;
    };
    let dir = TempDir::new("traefik-default-syntax");
    let dyn_path = dir.write("dynamic.yml", &dynamic);
    let mut ports = free_ports(2);
    let api = SocketAddr::from(([127, 0, 0, 1], ports.pop().unwrap_or_default()));
    let web = SocketAddr::from(([127, 0, 0, 1], ports.pop().unwrap_or_default()));
    let stat = support::traefik::static_yaml(
        &[("web".to_owned(), web, String::new())],
        &dyn_path,
        Some(api),
    ) + "core:\n  defaultRuleSyntax: v2\n";
    let traefik = Traefik::start(&bin, &dir, &stat);
    router_status(api, 2, &traefik)
        .await
        .unwrap_or_else(|log| panic!("Traefik: {log}"));
    check("traefik", web).await;
}
