//! Middlewares part 1 against a real Traefik 3.7 (skipped, saying so, when
//! no Traefik binary is found; see `support::traefik`): the same dynamic
//! configuration given to both, the same requests sent, and compared for
//! each: the client's status, the response headers the middleware touches
//! (values), the body when the middleware wrote it, and what the backend
//! received (path, query, the request headers the middleware touches).
//! Covered: `headers` (custom request/response headers, an empty value
//! removing, security headers, CORS preflight and simple requests),
//! `stripPrefix`, `stripPrefixRegex`, `addPrefix`, `replacePath`,
//! `replacePathRegex`, `redirectScheme`, `redirectRegex`, `basicAuth`,
//! `digestAuth`'s challenge, `ipAllowList`, `forwardAuth` (pass with
//! copied headers, deny), and a `chain` of them. `passTLSClientCert` is
//! compared in `mw_tls_cert.rs` against Traefik's documented format (it
//! needs mutual TLS on both sides).

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use support::traefik::{Traefik, exchange, find_traefik, free_port, skip_message, wait_ready};
use support::*;

const READY_HOST: &str = "ready.mw1.invalid";

// `openssl passwd -apr1 -salt Nf8Hbmnt secret`.
const APR1: &str = "$apr1$Nf8Hbmnt$vzN4/HYwFkrBpFBNM27mO/";

fn dynamic(ready: &Backend, app: &Backend, auth: &Backend) -> String {
    let router = |name: &str, mws: &str| {
        format!(
            "    {name}:\n      rule: \"Host(`{name}.test`)\"\n      service: app\n      middlewares: [{mws}]\n"
        )
    };
    let mut routers = String::new();
    for (name, mws) in [
        ("headers", "custom"),
        ("secure", "secure"),
        ("cors", "cors"),
        ("strip", "strip"),
        ("stripre", "stripre"),
        ("add", "add"),
        ("replace", "replace"),
        ("replacere", "replacere"),
        ("scheme", "scheme"),
        ("regex", "regex"),
        ("basic", "basic"),
        ("digest", "digest"),
        ("allowed", "allowed"),
        ("denied", "denied"),
        ("fwdok", "fwdok"),
        ("fwdno", "fwdno"),
        ("chained", "chained"),
    ] {
        routers += &router(name, mws);
    }
    format!(
        r#"http:
  routers:
    ready:
      rule: "Host(`{READY_HOST}`)"
      service: ready
{routers}  services:
    ready:
      loadBalancer:
        servers:
          - url: "http://{ready}"
    app:
      loadBalancer:
        servers:
          - url: "http://{app}"
  middlewares:
    custom:
      headers:
        customRequestHeaders:
          X-Script-Name: test
          X-Drop-Me: ""
        customResponseHeaders:
          X-Custom-Response: "yes"
          X-Backend: ""
    secure:
      headers:
        frameDeny: true
        contentTypeNosniff: true
        browserXssFilter: true
        referrerPolicy: same-origin
        contentSecurityPolicy: "default-src 'self'"
        permissionsPolicy: "camera=()"
        customFrameOptionsValue: SAMEORIGIN
    cors:
      headers:
        accessControlAllowMethods: [GET, OPTIONS, PUT]
        accessControlAllowHeaders: [X-Custom, Content-Type]
        accessControlAllowOriginList: ["https://a.example", "https://b.example"]
        accessControlExposeHeaders: [X-Exposed]
        accessControlMaxAge: 100
        accessControlAllowCredentials: true
        addVaryHeader: true
    strip:
      stripPrefix:
        prefixes: [/api, /v1]
    stripre:
      stripPrefixRegex:
        regex: ["/users/[0-9]+"]
    add:
      addPrefix:
        prefix: /base
    replace:
      replacePath:
        path: /fixed
    replacere:
      replacePathRegex:
        regex: "^/old/(.*)"
        replacement: "/new/$1"
    scheme:
      redirectScheme:
        scheme: https
        port: "8443"
        permanent: true
    regex:
      redirectRegex:
        regex: "^http://([^/]+)/from/(.*)"
        replacement: "http://${{1}}/to/${{2}}"
    basic:
      basicAuth:
        users: ["test:{APR1}"]
        realm: zone
        headerField: X-WebAuth-User
        removeHeader: true
    digest:
      digestAuth:
        users: ["test:traefik:a2688e031edb4be6a3797f3882655c05"]
    allowed:
      ipAllowList:
        sourceRange: ["127.0.0.1/32"]
    denied:
      ipAllowList:
        sourceRange: ["10.0.0.0/8"]
    fwdok:
      forwardAuth:
        address: "http://{auth}/echo"
        authResponseHeaders: [X-Backend]
    fwdno:
      forwardAuth:
        address: "http://{auth}/status/403"
    chained:
      chain:
        middlewares: [strip, custom, add]
"#,
        ready = ready.addr,
        app = app.addr,
        auth = auth.addr,
    )
}

/// What is compared of an answer: the status, the values of the response
/// headers named, then the backend's view (its path, query and the
/// request headers named) for an echo, or the body the proxy wrote.
fn digest(raw: &[u8], response: &[&str], request: &[&str]) -> String {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("").split(' ').nth(1).unwrap_or("?");
    let head: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut out = status.to_string();
    for name in response {
        let mut values: Vec<&str> = head
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect();
        values.sort();
        out += &format!(" {name}={values:?}");
    }
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) if v.get("headers").is_some() => {
            out += &format!(" | backend {} {}", v["path"], v["query"]);
            for name in request {
                out += &format!(" {name}={}", v["headers"][name]);
            }
        }
        _ => out += &format!(" | body {body:?}"),
    }
    out
}

/// One request: host, method, target, extra header lines, the response
/// headers and the backend-received headers compared.
struct Case {
    host: &'static str,
    method: &'static str,
    target: &'static str,
    extra: &'static str,
    response: &'static [&'static str],
    request: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        host: "headers.test",
        method: "GET",
        target: "/h",
        extra: "X-Drop-Me: please\r\n",
        response: &["x-custom-response", "x-backend"],
        request: &["x-script-name", "x-drop-me"],
    },
    Case {
        host: "secure.test",
        method: "GET",
        target: "/",
        extra: "",
        response: &[
            "x-frame-options",
            "x-content-type-options",
            "x-xss-protection",
            "referrer-policy",
            "content-security-policy",
            "permissions-policy",
            "strict-transport-security",
        ],
        request: &[],
    },
    Case {
        host: "cors.test",
        method: "OPTIONS",
        target: "/c",
        extra: "Origin: https://b.example\r\nAccess-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: X-Custom\r\n",
        response: &[
            "access-control-allow-origin",
            "access-control-allow-methods",
            "access-control-allow-headers",
            "access-control-allow-credentials",
            "access-control-max-age",
            "vary",
        ],
        request: &[],
    },
    Case {
        host: "cors.test",
        method: "GET",
        target: "/c",
        extra: "Origin: https://a.example\r\n",
        response: &[
            "access-control-allow-origin",
            "access-control-expose-headers",
            "access-control-allow-credentials",
            "vary",
        ],
        request: &["origin"],
    },
    Case {
        host: "cors.test",
        method: "GET",
        target: "/c",
        extra: "Origin: https://evil.example\r\n",
        response: &["access-control-allow-origin", "vary"],
        request: &[],
    },
    Case {
        host: "strip.test",
        method: "GET",
        target: "/api/items?x=1",
        extra: "",
        response: &[],
        request: &["x-forwarded-prefix"],
    },
    Case {
        host: "strip.test",
        method: "GET",
        target: "/v1",
        extra: "",
        response: &[],
        request: &["x-forwarded-prefix"],
    },
    Case {
        host: "stripre.test",
        method: "GET",
        target: "/users/42/profile",
        extra: "",
        response: &[],
        request: &["x-forwarded-prefix"],
    },
    Case {
        host: "add.test",
        method: "GET",
        target: "/x?q=2",
        extra: "",
        response: &[],
        request: &[],
    },
    Case {
        host: "replace.test",
        method: "GET",
        target: "/any/where?k=v",
        extra: "",
        response: &[],
        request: &["x-replaced-path"],
    },
    Case {
        host: "replacere.test",
        method: "GET",
        target: "/old/a/b",
        extra: "",
        response: &[],
        request: &["x-replaced-path"],
    },
    Case {
        host: "replacere.test",
        method: "GET",
        target: "/other",
        extra: "",
        response: &[],
        request: &["x-replaced-path"],
    },
    Case {
        host: "scheme.test",
        method: "GET",
        target: "/s?x=1",
        extra: "",
        response: &["location"],
        request: &[],
    },
    Case {
        host: "regex.test",
        method: "GET",
        target: "/from/here?y=2",
        extra: "",
        response: &["location"],
        request: &[],
    },
    Case {
        host: "regex.test",
        method: "GET",
        target: "/elsewhere",
        extra: "",
        response: &["location"],
        request: &[],
    },
    Case {
        host: "basic.test",
        method: "GET",
        target: "/b",
        extra: "",
        response: &["www-authenticate", "content-type"],
        request: &[],
    },
    Case {
        host: "basic.test",
        method: "GET",
        target: "/b",
        // test:secret
        extra: "Authorization: Basic dGVzdDpzZWNyZXQ=\r\n",
        response: &[],
        request: &["x-webauth-user", "authorization"],
    },
    Case {
        host: "basic.test",
        method: "GET",
        target: "/b",
        // test:wrong
        extra: "Authorization: Basic dGVzdDp3cm9uZw==\r\n",
        response: &["www-authenticate"],
        request: &[],
    },
    Case {
        host: "digest.test",
        method: "GET",
        target: "/d",
        extra: "",
        response: &["content-type"],
        request: &[],
    },
    Case {
        host: "allowed.test",
        method: "GET",
        target: "/a",
        extra: "",
        response: &[],
        request: &[],
    },
    Case {
        host: "denied.test",
        method: "GET",
        target: "/a",
        extra: "",
        response: &["content-type"],
        request: &[],
    },
    Case {
        host: "fwdok.test",
        method: "GET",
        target: "/f",
        extra: "",
        response: &[],
        request: &["x-backend"],
    },
    Case {
        host: "fwdno.test",
        method: "GET",
        target: "/f",
        extra: "",
        response: &["content-type"],
        request: &[],
    },
    Case {
        host: "chained.test",
        method: "GET",
        target: "/api/x",
        extra: "",
        response: &["x-custom-response"],
        request: &["x-forwarded-prefix", "x-script-name"],
    },
];

async fn ask(addr: SocketAddr, c: &Case) -> Vec<u8> {
    let req = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\n{}Content-Length: 0\r\nConnection: close\r\n\r\n",
        c.method, c.target, c.host, c.extra
    );
    exchange(addr, Ipv4Addr::LOCALHOST, req.as_bytes())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_one_middlewares_answer_as_traefik() {
    let Some(bin) = find_traefik() else {
        eprintln!("{}", skip_message("part_one_middlewares_answer_as_traefik"));
        return;
    };
    let (ready, app, auth) = (backend("ready"), backend("app"), backend("auth"));
    let dir = TempDir::new("traefik-mw1");
    let config = dynamic(&ready, &app, &auth);
    let dyn_path = dir.write("dynamic.yml", &config);
    let traefik_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let traefik = Traefik::start(
        &bin,
        &dir,
        &support::traefik::static_yaml(
            &[("web".to_owned(), traefik_addr, String::new())],
            &dyn_path,
            None,
        ),
    );
    let proxy = start_proxy(&config);
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
        let theirs = digest(&ask(traefik_addr, c).await, c.response, c.request);
        let ours = digest(&ask(proxy.web, c).await, c.response, c.request);
        if theirs != ours {
            wrong.push(format!(
                "- {} {}{}\n    traefik {theirs}\n    proxy   {ours}",
                c.method, c.host, c.target
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "differences from Traefik:\n{}",
        wrong.join("\n")
    );
}
