//! Go regexp parity, fuzzed against a real Traefik: hundreds of random
//! patterns built from Go's constructs (and the text Rust's syntax reads
//! differently: literal braces, `\Q...\E`, POSIX classes, `\p{...}` names,
//! octal escapes, flags, repeated repetitions, unbalanced groups), each in a
//! `PathRegexp` router of its own, then random paths. Traefik must refuse
//! exactly the patterns the proxy refuses, and match exactly the paths the
//! proxy matches on the same routing path.
//!
//! The proxy side runs in process (a refused pattern would refuse the whole
//! configuration): `parse_rule`, then `Rule::matches` on the routing path
//! `normalize_path` makes of the request's path, as the proxy routes it.
//! Traefik's side goes over sockets; its API says which routers it
//! disabled. Knobs: `REGEX_SEED`, `REGEX_PATTERNS`. Without Traefik the test
//! prints a SKIP line and passes.

mod support;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bumpalo::Bump;
use http::{HeaderMap, Method};
use proxy::ProxyRequest;
use proxy::routing::{normalize_path, parse_rule};
use support::traefik::{Traefik, find_traefik, router_status, send, skip_message};
use support::*;

const DEFAULT_SEED: u64 = 0x676f_7265_6765_7870;
const DEFAULT_PATTERNS: usize = 400;
const PATHS_PER_PATTERN: usize = 6;

/// Pieces of Go regexp syntax; a pattern is a few of them in a row.
const PIECES: &[&str] = &[
    "a",
    "b",
    "/",
    ".",
    "-",
    "_",
    "0",
    "1",
    "A",
    "é",
    "{",
    "}",
    ",",
    ":",
    "^",
    "$",
    "|",
    "(",
    ")",
    "(?:",
    "(?i)",
    "(?s)",
    "(?m)",
    "(?U)",
    "(?i:",
    "(?P<n>",
    "(?<m>",
    "(?P<1>",
    "*",
    "+",
    "?",
    "*?",
    "{2}",
    "{1,3}",
    "{0,}",
    "{,2}",
    "{01}",
    "{ 2}",
    "{1001}",
    "[a-c]",
    "[^a]",
    "[]a]",
    "[[:alpha:]]",
    "[[:^digit:]]",
    "[:word:]",
    "[\\d-z]",
    "[a&&b]",
    "[[a]]",
    "\\d",
    "\\D",
    "\\w",
    "\\W",
    "\\s",
    "\\S",
    "\\b",
    "\\B",
    "\\A",
    "\\z",
    "\\pL",
    "\\PN",
    "\\p{Greek}",
    "\\p{greek}",
    "\\p{Letter}",
    "\\p{Old_Italic}",
    "\\p{Alphabetic}",
    "\\Qa.b\\E",
    "\\Q{x}",
    "\\x41",
    "\\x{263a}",
    "\\101",
    "\\012",
    "\\.",
    "\\*",
    "\\<",
    "\\{",
    "\\_",
    "\\e",
    "\\Z",
    "\\1",
    "\\C",
    "(?x)",
    "**",
    "x{2}{3}",
];

/// Characters of the random paths (sent percent-encoded when needed).
const PATH_CHARS: &[&str] = &[
    "a", "b", "c", "A", "/", ".", "-", "_", "0", "1", "2", "{", "}", ",", ":", "é", "α", "☺", " ",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A random pattern. Traefik's file provider renders the dynamic file as a
/// Go template first, so `{{` and `}}` (template actions) are left out.
fn pattern(rng: &mut Rng) -> String {
    loop {
        let mut p = String::new();
        if rng.below(3) == 0 {
            p.push('^');
        }
        for _ in 0..1 + rng.below(7) {
            p.push_str(PIECES[rng.below(PIECES.len())]);
        }
        if !p.contains("{{") && !p.contains("}}") {
            return p;
        }
    }
}

/// A path as sent (every character outside the unreserved set
/// percent-encoded) for a random text.
fn wire_path(rng: &mut Rng) -> String {
    let mut out = String::from("/");
    for _ in 0..rng.below(6) {
        for b in PATH_CHARS[rng.below(PATH_CHARS.len())].bytes() {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                out.push(b as char);
            } else {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Whether the proxy routes `wire` to a router with `PathRegexp(pattern)`;
/// `None` when it refuses the pattern.
fn proxy_matches(pattern: &str, wire: &str) -> Option<bool> {
    let rule = parse_rule(&format!("PathRegexp(`{pattern}`)")).ok()?;
    let arena = Bump::new();
    let path = normalize_path(wire, &arena).expect("a valid path");
    let headers = HeaderMap::new();
    let view = ProxyRequest {
        method: &Method::GET,
        host: "r",
        authority: "r",
        path,
        query: None,
        headers: &headers,
        client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        arena: &arena,
    };
    Some(rule.matches(&view))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_regexp_parity_with_traefik() {
    let Some(bin) = find_traefik() else {
        eprintln!("{}", skip_message("go_regexp_parity_with_traefik"));
        return;
    };
    let seed: u64 = env_or("REGEX_SEED", DEFAULT_SEED);
    let n: usize = env_or("REGEX_PATTERNS", DEFAULT_PATTERNS);
    let mut rng = Rng(seed);
    let patterns: Vec<String> = (0..n).map(|_| pattern(&mut rng)).collect();
    let paths: Vec<Vec<String>> = (0..n)
        .map(|_| {
            (0..PATHS_PER_PATTERN)
                .map(|_| wire_path(&mut rng))
                .collect()
        })
        .collect();

    // Router `p{i}` answers for host `p{i}` when its path matches.
    let backends = named_backends(&["hit".to_owned()]);
    let mut dynamic = String::from("http:\n  routers:\n");
    for (i, p) in patterns.iter().enumerate() {
        let _ = write!(
            dynamic,
            "    p{i}:\n      rule: {}\n      service: hit\n",
            yaml_str(&format!("Host(`p{i}`) && PathRegexp(`{p}`)"))
        );
    }
    let _ = write!(
        dynamic,
        "  services:\n    hit:\n      loadBalancer:\n        servers:\n          - url: \"http://{}\"\n",
        backends.addrs[0]
    );
    let dir = TempDir::new("traefik-regex");
    let dyn_path = dir.write("dynamic.yml", &dynamic);
    let ports = support::traefik::free_ports(2);
    let web = SocketAddr::from(([127, 0, 0, 1], ports[0]));
    let api = SocketAddr::from(([127, 0, 0, 1], ports[1]));
    let traefik = Traefik::start(
        &bin,
        &dir,
        &support::traefik::static_yaml(
            &[("web".to_owned(), web, String::new())],
            &dyn_path,
            Some(api),
        ),
    );
    let status = router_status(api, n, &traefik)
        .await
        .unwrap_or_else(|log| panic!("Traefik did not load the routers; its log:\n{log}"));

    let mut failures = Vec::new();
    let (mut refused, mut requests, mut matched) = (0, 0, 0);
    for (i, p) in patterns.iter().enumerate() {
        let enabled = status.get(&format!("p{i}")).map(String::as_str) == Some("enabled");
        let ours = proxy_matches(p, "/");
        if enabled != ours.is_some() {
            failures.push(format!(
                "pattern {p:?}: Traefik {}, proxy {}",
                if enabled { "accepts it" } else { "refuses it" },
                match ours {
                    Some(_) => "accepts it".to_owned(),
                    None => format!(
                        "refuses it: {}",
                        parse_rule(&format!("PathRegexp(`{p}`)"))
                            .err()
                            .map(|e| e.message)
                            .unwrap_or_default()
                    ),
                }
            ));
            continue;
        }
        if !enabled {
            refused += 1;
            continue;
        }
        for wire in &paths[i] {
            let req = format!("GET {wire} HTTP/1.1\r\nHost: p{i}\r\nConnection: close\r\n\r\n");
            let theirs = send(web, Ipv4Addr::LOCALHOST, req.as_bytes())
                .await
                .unwrap_or_else(|e| panic!("traefik: {e}"));
            requests += 1;
            let theirs = theirs.status == 200;
            let ours = proxy_matches(p, wire) == Some(true);
            matched += usize::from(theirs);
            if theirs != ours {
                failures.push(format!(
                    "pattern {p:?} on path {wire:?}: Traefik {}, proxy {}",
                    if theirs { "matches" } else { "does not match" },
                    if ours { "matches" } else { "does not match" }
                ));
            }
        }
    }
    eprintln!(
        "go regexp parity (seed {seed:#x}): {n} patterns, {refused} refused by both, {requests} requests, {matched} matched; {} differences",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
    drop(traefik);
}
