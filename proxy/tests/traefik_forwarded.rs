//! What rules see of the forwarding headers, against a real Traefik: it
//! sets `X-Forwarded-*` and `X-Real-Ip` (after dropping an untrusted
//! client's) and removes the `Connection`-named headers before routing, and
//! adds the peer to `X-Forwarded-For` only when sending. The same routers
//! and requests go to Traefik and to the proxy; both must reach the router
//! written next to each request.
//!
//! Requests come from 127.0.0.1 (untrusted) and 127.0.0.2 (in
//! `forwardedHeaders.trustedIPs`). Without Traefik the test prints a SKIP
//! line and passes.

mod support;

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use support::traefik::{Answer, Traefik, find_traefik, free_port, send, skip_message, wait_ready};
use support::*;

/// One request: from `127.0.0.<source>`, for `path` with `headers`, and
/// the router it must reach on both.
struct Case {
    source: u8,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    expect: &'static str,
}

const READY_HOST: &str = "ready.forwarded.invalid";

const ROUTERS: &[(&str, &str, u32)] = &[
    ("ready", "Host(`ready.forwarded.invalid`)", 1_000_000),
    (
        "proto",
        "HeaderRegexp(`X-Forwarded-Proto`, `^https?$`) && Path(`/proto`)",
        100,
    ),
    (
        "https",
        "Header(`X-Forwarded-Proto`, `https`) && Path(`/https`)",
        100,
    ),
    (
        "fhost",
        "Header(`X-Forwarded-Host`, `site.test`) && Path(`/fhost`)",
        100,
    ),
    (
        "fport",
        "Header(`X-Forwarded-Port`, `80`) && Path(`/fport`)",
        100,
    ),
    (
        "server",
        "HeaderRegexp(`X-Forwarded-Server`, `.`) && Path(`/server`)",
        100,
    ),
    (
        "realip",
        "Header(`X-Real-Ip`, `127.0.0.1`) && Path(`/realip`)",
        100,
    ),
    (
        "spoofip",
        "Header(`X-Real-Ip`, `6.6.6.6`) && Path(`/realip`)",
        200,
    ),
    (
        "xff",
        "HeaderRegexp(`X-Forwarded-For`, `.`) && Path(`/xff`)",
        100,
    ),
    ("secret", "Header(`X-Secret`, `1`) && Path(`/secret`)", 100),
    ("fallback", "PathPrefix(`/`)", 1),
];

const CASES: &[Case] = &[
    Case {
        source: 1,
        path: "/proto",
        headers: &[],
        expect: "proto",
    },
    Case {
        source: 1,
        path: "/https",
        headers: &[("X-Forwarded-Proto", "https")],
        expect: "fallback",
    },
    Case {
        source: 2,
        path: "/https",
        headers: &[("X-Forwarded-Proto", "https")],
        expect: "https",
    },
    Case {
        source: 1,
        path: "/fhost",
        headers: &[],
        expect: "fhost",
    },
    Case {
        source: 1,
        path: "/fport",
        headers: &[],
        expect: "fport",
    },
    Case {
        source: 1,
        path: "/server",
        headers: &[],
        expect: "server",
    },
    Case {
        source: 1,
        path: "/realip",
        headers: &[("X-Real-Ip", "6.6.6.6")],
        expect: "realip",
    },
    Case {
        source: 2,
        path: "/realip",
        headers: &[("X-Real-Ip", "6.6.6.6")],
        expect: "spoofip",
    },
    // The peer joins X-Forwarded-For after routing; an untrusted client's
    // list is dropped before.
    Case {
        source: 1,
        path: "/xff",
        headers: &[],
        expect: "fallback",
    },
    Case {
        source: 1,
        path: "/xff",
        headers: &[("X-Forwarded-For", "1.2.3.4")],
        expect: "fallback",
    },
    Case {
        source: 2,
        path: "/xff",
        headers: &[("X-Forwarded-For", "1.2.3.4")],
        expect: "xff",
    },
    Case {
        source: 1,
        path: "/secret",
        headers: &[("X-Secret", "1")],
        expect: "secret",
    },
    Case {
        source: 1,
        path: "/secret",
        headers: &[("X-Secret", "1"), ("Connection", "X-Secret")],
        expect: "fallback",
    },
    // A client cannot have the proxy drop a forwarding header it manages
    // by naming it in Connection.
    Case {
        source: 2,
        path: "/https",
        headers: &[
            ("X-Forwarded-Proto", "https"),
            ("Connection", "X-Forwarded-Proto"),
        ],
        expect: "https",
    },
];

fn wire(c: &Case) -> Vec<u8> {
    let mut s = format!("GET {} HTTP/1.1\r\nHost: site.test\r\n", c.path);
    for (k, v) in c.headers {
        let _ = write!(s, "{k}: {v}\r\n");
    }
    s.push_str("Connection: close\r\n\r\n");
    s.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_are_set_before_routing_as_in_traefik() {
    let Some(bin) = find_traefik() else {
        eprintln!(
            "{}",
            skip_message("forwarding_headers_are_set_before_routing_as_in_traefik")
        );
        return;
    };
    let names: Vec<String> = ROUTERS.iter().map(|r| r.0.to_string()).collect();
    let backends = named_backends(&names);
    let mut dynamic = String::from("http:\n  routers:\n");
    for (name, rule, priority) in ROUTERS {
        let _ = write!(
            dynamic,
            "    {name}:\n      rule: {}\n      priority: {priority}\n      service: svc-{name}\n",
            yaml_str(rule)
        );
    }
    dynamic += "  services:\n";
    for (i, name) in names.iter().enumerate() {
        let _ = write!(
            dynamic,
            "    svc-{name}:\n      loadBalancer:\n        servers:\n          - url: \"http://{}\"\n",
            backends.addrs[i]
        );
    }
    let trusted = "    forwardedHeaders:\n      trustedIPs: [\"127.0.0.2\"]\n";

    let dir = TempDir::new("traefik-forwarded");
    let dyn_path = dir.write("dynamic.yml", &dynamic);
    let traefik_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let traefik = Traefik::start(
        &bin,
        &dir,
        &support::traefik::static_yaml(
            &[("web".to_owned(), traefik_addr, trusted.to_owned())],
            &dyn_path,
            None,
        ),
    );
    let proxy = start_proxy_static(
        &dynamic,
        &format!(
            "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\n{trusted}\
             providers:\n  file:\n    filename: \"{{DIR}}/dynamic.yml\"\n"
        ),
        1,
    );
    for (addr, what) in [(traefik_addr, "traefik"), (proxy.web, "proxy")] {
        wait_ready(
            addr,
            READY_HOST,
            "ready",
            what,
            Duration::from_secs(20),
            || traefik.log_text(),
        )
        .await;
    }

    let mut wrong = Vec::new();
    for c in CASES {
        let source = Ipv4Addr::new(127, 0, 0, c.source);
        let req = wire(c);
        let theirs = send(traefik_addr, source, &req).await.unwrap();
        let ours = send(proxy.web, source, &req).await.unwrap();
        let expect = Answer {
            status: 200,
            backend: Some(c.expect.to_string()),
        };
        if theirs != expect || ours != expect {
            wrong.push(format!(
                "- from {source} GET {} {:?}\n    expected {expect}, traefik {theirs}, proxy {ours}",
                c.path, c.headers
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "forwarding headers seen by rules differ:\n{}",
        wrong.join("\n")
    );
}
