//! Entrypoint request handling against a real Traefik. What rules see of
//! the forwarding headers: Traefik
//! sets `X-Forwarded-*` and `X-Real-Ip` (after dropping an untrusted
//! client's) and removes the `Connection`-named headers before routing, and
//! adds the peer to `X-Forwarded-For` only when sending. The same routers
//! and requests go to Traefik and to the proxy; both must reach the router
//! written next to each request.
//!
//! Requests come from 127.0.0.1 (untrusted) and 127.0.0.2 (in
//! `forwardedHeaders.trustedIPs`). Also compared: the entrypoint options
//! for request headers (`underscoreHeadersStrategy`,
//! `forwardedHeaders.connection` / `notAppendXForwardedFor`,
//! `encodeQuerySemicolons`, `encodedCharacters`, `sanitizePath`) by what the backend
//! receives, and
//! `maxHeaderBytes` over HTTP/1.1 and HTTP/2. Without Traefik each test
//! prints a SKIP line and passes.

mod support;

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use support::traefik::{
    Answer, Traefik, exchange, find_traefik, free_port, send, skip_message, wait_ready,
};
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

/// Traefik and the proxy on the same dynamic configuration, each with the
/// entrypoints `eps` (name, its extra static YAML; the first is where
/// readiness is checked: a router for [`READY_HOST`] to backend `main`).
struct Both {
    /// Kept running until dropped.
    _traefik: Traefik,
    theirs: Vec<(String, SocketAddr)>,
    proxy: TestProxy,
    _dir: TempDir,
}

impl Both {
    async fn start(bin: &std::path::Path, tag: &str, dynamic: &str, eps: &[(&str, &str)]) -> Both {
        let dir = TempDir::new(tag);
        let dyn_path = dir.write("dynamic.yml", dynamic);
        let theirs: Vec<(String, SocketAddr, String)> = eps
            .iter()
            .map(|(n, extra)| {
                let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
                ((*n).to_owned(), addr, (*extra).to_owned())
            })
            .collect();
        let traefik = Traefik::start(
            bin,
            &dir,
            &support::traefik::static_yaml(&theirs, &dyn_path, None),
        );
        let mut ours = String::from("entryPoints:\n");
        for (n, extra) in eps {
            let _ = write!(ours, "  {n}:\n    address: \"127.0.0.1:0\"\n{extra}");
        }
        ours += "providers:\n  file:\n    filename: \"{DIR}/dynamic.yml\"\n";
        let proxy = start_proxy_static(dynamic, &ours, 1);
        let first = proxy.addr(eps[0].0);
        for (addr, what) in [(theirs[0].1, "traefik"), (first, "proxy")] {
            wait_ready(
                addr,
                READY_HOST,
                "main",
                what,
                Duration::from_secs(20),
                || traefik.log_text(),
            )
            .await;
        }
        Both {
            _traefik: traefik,
            theirs: theirs.into_iter().map(|(n, a, _)| (n, a)).collect(),
            proxy,
            _dir: dir,
        }
    }

    fn traefik_addr(&self, ep: &str) -> SocketAddr {
        self.theirs.iter().find(|t| t.0 == ep).unwrap().1
    }
}

/// One request of the entrypoint-options comparison: sent from
/// `127.0.0.<source>` to entrypoint `ep`, with `headers`.
struct EpCase {
    ep: &'static str,
    source: u8,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
}

/// The request headers whose arrival at the backend is compared.
const SEEN: [&str; 6] = [
    "x_custom",
    "x-keep",
    "connection",
    "x-forwarded-for",
    "x_forwarded_for",
    "x_real_ip",
];

const EP_CASES: &[EpCase] = &[
    // underscoreHeadersStrategy: reject → 400; without one → served.
    EpCase {
        ep: "rej",
        source: 1,
        path: "/",
        headers: &[("X_Custom", "1")],
    },
    EpCase {
        ep: "rej",
        source: 1,
        path: "/",
        headers: &[("X-Custom", "1")],
    },
    // delete: gone before routing (the router that wants it is missed)
    // and never forwarded.
    EpCase {
        ep: "del",
        source: 1,
        path: "/custom",
        headers: &[("X_Custom", "1")],
    },
    // forwardedHeaders.connection: a Connection-named X-Keep is still seen
    // by the rule, then removed when sent; not on the plain entrypoint.
    EpCase {
        ep: "del",
        source: 1,
        path: "/keep",
        headers: &[("X-Keep", "1"), ("Connection", "X-Keep")],
    },
    EpCase {
        ep: "web",
        source: 1,
        path: "/keep",
        headers: &[("X-Keep", "1"), ("Connection", "X-Keep")],
    },
    // notAppendXForwardedFor: an untrusted client's list is dropped and
    // nothing appended; a trusted client's goes on as sent.
    EpCase {
        ep: "del",
        source: 1,
        path: "/",
        headers: &[("X-Forwarded-For", "1.2.3.4")],
    },
    EpCase {
        ep: "del",
        source: 2,
        path: "/",
        headers: &[("X-Forwarded-For", "1.2.3.4")],
    },
    EpCase {
        ep: "web",
        source: 2,
        path: "/",
        headers: &[("X-Forwarded-For", "1.2.3.4")],
    },
    // A `;` in the query is `&` (Go's AllowQuerySemicolons) for the rule
    // and the upstream, `%3B` with encodeQuerySemicolons.
    EpCase {
        ep: "web",
        source: 1,
        path: "/semi?a=1;b=2",
        headers: &[],
    },
    EpCase {
        ep: "del",
        source: 1,
        path: "/semi?a=1;b=2",
        headers: &[],
    },
    // http.encodedCharacters: the refused escapes are 400 on that
    // entrypoint only (every router there gets it through its model).
    EpCase {
        ep: "enc",
        source: 1,
        path: "/a%2Fb",
        headers: &[],
    },
    EpCase {
        ep: "web",
        source: 1,
        path: "/a%2Fb",
        headers: &[],
    },
    EpCase {
        ep: "enc",
        source: 1,
        path: "/a%23b",
        headers: &[],
    },
    EpCase {
        ep: "enc",
        source: 1,
        path: "/a%3Bb",
        headers: &[],
    },
    // Forwarding headers spelt with `_` are forwarding headers: dropped
    // from an untrusted client, kept from a trusted one.
    EpCase {
        ep: "web",
        source: 1,
        path: "/",
        headers: &[("X_Forwarded_For", "6.6.6.6"), ("X_Real_Ip", "6.6.6.6")],
    },
    EpCase {
        ep: "web",
        source: 2,
        path: "/",
        headers: &[("X_Forwarded_For", "6.6.6.6"), ("X_Real_Ip", "6.6.6.6")],
    },
    // http.sanitizePath: false keeps dot segments and repeated slashes, for
    // the rule and the upstream; escapes are still normalised.
    EpCase {
        ep: "raw",
        source: 1,
        path: "/x/../keep",
        headers: &[("X-Keep", "1")],
    },
    EpCase {
        ep: "web",
        source: 1,
        path: "/x/../keep",
        headers: &[("X-Keep", "1")],
    },
    EpCase {
        ep: "raw",
        source: 1,
        path: "//keep",
        headers: &[("X-Keep", "1")],
    },
    EpCase {
        ep: "raw",
        source: 1,
        path: "/a/./b/%2e%2e/%63//d/",
        headers: &[],
    },
    EpCase {
        ep: "web",
        source: 1,
        path: "/a/./b/%2e%2e/%63//d/",
        headers: &[],
    },
];

/// What a client and the backend saw of one exchange: the status, the
/// backend, the [`SEEN`] headers the backend received (`-` for none) and,
/// for the proxy's own answers, the body and its headers.
fn observed(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).unwrap_or("?");
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let Some(backend) = header("x-backend") else {
        return format!(
            "{status} body {body:?} content-type {:?} nosniff {:?}",
            header("content-type"),
            header("x-content-type-options")
        );
    };
    let json = body
        .find('{')
        .zip(body.rfind('}'))
        .and_then(|(a, b)| serde_json::from_str::<serde_json::Value>(&body[a..=b]).ok())
        .unwrap_or_default();
    let seen: Vec<String> = SEEN
        .iter()
        .map(|h| {
            let v = json["headers"][*h].as_str().unwrap_or("-");
            format!("{h}={v}")
        })
        .collect();
    format!(
        "{status} {backend} path {:?} query {:?} {}",
        json["path"].as_str(),
        json["query"].as_str(),
        seen.join(" ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entrypoint_header_options_act_as_in_traefik() {
    let Some(bin) = find_traefik() else {
        eprintln!(
            "{}",
            skip_message("entrypoint_header_options_act_as_in_traefik")
        );
        return;
    };
    let (main, keep, custom) = (backend("main"), backend("keep"), backend("custom"));
    let dynamic = format!(
        "http:\n  routers:\n\
         \x20   ready:\n      rule: \"Host(`{READY_HOST}`)\"\n      service: main\n\
         \x20   keep:\n      rule: \"Header(`X-Keep`, `1`) && Path(`/keep`)\"\n      service: keep\n\
         \x20   custom:\n      rule: \"Header(`X_Custom`, `1`) && Path(`/custom`)\"\n      service: custom\n\
         \x20   semi:\n      rule: \"Query(`b`, `2`) && Path(`/semi`)\"\n      service: keep\n\
         \x20   main:\n      rule: \"PathPrefix(`/`)\"\n      priority: 1\n      service: main\n\
         \x20 services:\n\
         \x20   main:\n      loadBalancer:\n        servers:\n          - url: \"http://{}\"\n\
         \x20   keep:\n      loadBalancer:\n        servers:\n          - url: \"http://{}\"\n\
         \x20   custom:\n      loadBalancer:\n        servers:\n          - url: \"http://{}\"\n",
        main.addr, keep.addr, custom.addr
    );
    let trusted = "    forwardedHeaders:\n      trustedIPs: [\"127.0.0.2\"]\n";
    let del = "    http:\n      underscoreHeadersStrategy: delete\n      encodeQuerySemicolons: true\n    \
               forwardedHeaders:\n      \
               trustedIPs: [\"127.0.0.2\"]\n      connection: [\"X-Keep\"]\n      \
               notAppendXForwardedFor: true\n";
    let rej = "    http:\n      underscoreHeadersStrategy: reject\n";
    let enc = "    http:\n      encodedCharacters:\n        allowEncodedSlash: false\n        \
               allowEncodedHash: false\n";
    let raw = "    http:\n      sanitizePath: false\n";
    let eps = [
        ("web", trusted),
        ("del", del),
        ("rej", rej),
        ("enc", enc),
        ("raw", raw),
    ];

    let both = Both::start(&bin, "traefik-ep-headers", &dynamic, &eps).await;
    let (traefik_at, proxy) = (|ep: &str| both.traefik_addr(ep), &both.proxy);

    let mut wrong = Vec::new();
    let mut compared = 0;
    for c in EP_CASES {
        let source = Ipv4Addr::new(127, 0, 0, c.source);
        let mut req = format!("GET {} HTTP/1.1\r\nHost: site.test\r\n", c.path);
        for (k, v) in c.headers {
            let _ = write!(req, "{k}: {v}\r\n");
        }
        req += "Connection: close\r\n\r\n";
        let t = observed(
            &exchange(traefik_at(c.ep), source, req.as_bytes())
                .await
                .unwrap(),
        );
        let p = observed(
            &exchange(proxy.addr(c.ep), source, req.as_bytes())
                .await
                .unwrap(),
        );
        compared += 1;
        eprintln!(
            "{} from {source} {} {:?}: traefik {t}",
            c.ep, c.path, c.headers
        );
        if t != p {
            wrong.push(format!(
                "- {} from {source} {} {:?}\n    traefik {t}\n    proxy   {p}",
                c.ep, c.path, c.headers
            ));
        }
    }
    eprintln!("entrypoint header options: {compared} requests compared with Traefik");
    assert!(
        wrong.is_empty(),
        "entrypoint header options differ from Traefik:\n{}",
        wrong.join("\n")
    );
}

/// What `maxHeaderBytes` lets through, over HTTP/1.1 and HTTP/2: the
/// status of a request carrying one header of `size` bytes, `refused` for
/// a 431 or a failed exchange (an HTTP/2 client may refuse by itself to
/// send more than the server's `SETTINGS_MAX_HEADER_LIST_SIZE`, depending
/// on whether those settings arrived first; an HTTP/1 server may close
/// before reading the whole head).
async fn with_header_of(addr: SocketAddr, size: usize, h2: bool) -> String {
    let big = "b".repeat(size);
    if h2 {
        let mut c = H2::connect(addr).await;
        let req = http::Request::get(format!("http://{READY_HOST}/"))
            .header("x-big", &big)
            .body(empty())
            .unwrap();
        return match c.send(req).await {
            Ok(r) if r.status != 431 => r.status.as_u16().to_string(),
            _ => "refused".to_owned(),
        };
    }
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {READY_HOST}\r\nX-Big: {big}\r\nConnection: close\r\n\r\n"
    );
    match exchange(addr, Ipv4Addr::LOCALHOST, req.as_bytes()).await {
        Ok(out) => match String::from_utf8_lossy(&out).split(' ').nth(1) {
            Some("431") | None => "refused".to_owned(),
            Some(status) => status.to_owned(),
        },
        Err(_) => "refused".to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_header_bytes_limits_request_heads_as_in_traefik() {
    let Some(bin) = find_traefik() else {
        eprintln!(
            "{}",
            skip_message("max_header_bytes_limits_request_heads_as_in_traefik")
        );
        return;
    };
    let main = backend("main");
    let dynamic = format!(
        "http:\n  routers:\n    ready:\n      rule: \"PathPrefix(`/`)\"\n      service: main\n\
         \x20 services:\n    main:\n      loadBalancer:\n        servers:\n          - url: \"http://{}\"\n",
        main.addr
    );
    let eps = [
        ("web", ""),
        ("small", "    http:\n      maxHeaderBytes: 8192\n"),
    ];
    let both = Both::start(&bin, "traefik-max-header", &dynamic, &eps).await;
    // (entrypoint, header size, over HTTP/2). The test backend takes
    // heads up to about 400 KiB: larger ones are refused by it, not by
    // the entrypoint. HTTP/1's limit is Go's plus up to one read (hyper's
    // read buffer bound): a refusal is tested well above it.
    let cases = [
        ("web", 20_000, false),
        ("web", 20_000, true),
        ("web", 300_000, true),
        ("web", 300_000, false),
        ("web", 1_100_000, false),
        ("small", 6_000, false),
        ("small", 30_000, false),
        ("small", 6_000, true),
        ("small", 30_000, true),
    ];
    let mut wrong = Vec::new();
    for (ep, size, h2) in cases {
        let t = with_header_of(both.traefik_addr(ep), size, h2).await;
        let p = with_header_of(both.proxy.addr(ep), size, h2).await;
        eprintln!("{ep} header of {size} bytes, h2 {h2}: traefik {t}, proxy {p}");
        if t != p {
            wrong.push(format!(
                "- {ep} {size} bytes h2 {h2}: traefik {t}, proxy {p}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "maxHeaderBytes differs from Traefik:\n{}",
        wrong.join("\n")
    );
}

/// Requests framed or addressed unusually, answered as Go's server answers
/// them for Traefik: `OPTIONS *` by the server itself; no router as
/// `http.NotFound` does (with `nosniff`); a transfer coding
/// other than one `chunked` refused with 501 (never handed on as a plain
/// body); a path with bytes Go escapes forwarded escaped. Left different:
/// hyper refuses (400) a `Transfer-Encoding` on an HTTP/1.0 request, which
/// Go ignores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusual_request_framing_is_answered_as_in_traefik() {
    let Some(bin) = find_traefik() else {
        eprintln!(
            "{}",
            skip_message("unusual_request_framing_is_answered_as_in_traefik")
        );
        return;
    };
    let main = backend("main");
    let dynamic = format!(
        "http:\n  routers:\n\
         \x20   ready:\n      rule: \"Host(`{READY_HOST}`)\"\n      service: main\n\
         \x20   main:\n      rule: \"PathPrefix(`/`) && !PathPrefix(`/none`)\"\n      priority: 1\n      service: main\n\
         \x20 services:\n\
         \x20   main:\n      loadBalancer:\n        servers:\n          - url: \"http://{}\"\n",
        main.addr
    );
    let both = Both::start(&bin, "traefik-framing", &dynamic, &[("web", "")]).await;
    let cases: [(&str, &[u8]); 9] = [
        ("OPTIONS *", b"OPTIONS * HTTP/1.1\r\nHost: a.test\r\n\r\n"),
        ("no router", b"GET /none HTTP/1.1\r\nHost: a.test\r\n\r\n"),
        ("OPTIONS /", b"OPTIONS / HTTP/1.1\r\nHost: a.test\r\n\r\n"),
        (
            "gzip, chunked",
            b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "two Transfer-Encoding headers",
            b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "Chunked",
            b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        ),
        ("raw UTF-8 path", "GET /é HTTP/1.1\r\nHost: a.test\r\n\r\n".as_bytes()),
        ("path with {}", b"GET /a{b}|c HTTP/1.1\r\nHost: a.test\r\n\r\n"),
        ("escaped UTF-8 path", b"GET /%c3%a9 HTTP/1.1\r\nHost: a.test\r\n\r\n"),
    ];
    let mut wrong = Vec::new();
    for (what, req) in cases {
        let mut req = req.to_vec();
        // One request per connection: the answer is read to the close.
        let at = req.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        req.splice(at + 2..at + 2, b"Connection: close\r\n".iter().copied());
        let source = Ipv4Addr::LOCALHOST;
        let t = observed(
            &exchange(both.traefik_addr("web"), source, &req)
                .await
                .unwrap(),
        );
        let p = observed(
            &exchange(both.proxy.addr("web"), source, &req)
                .await
                .unwrap(),
        );
        eprintln!("{what}: traefik {t}");
        if t != p {
            wrong.push(format!("- {what}\n    traefik {t}\n    proxy   {p}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "request framing differs from Traefik:\n{}",
        wrong.join("\n")
    );
}
