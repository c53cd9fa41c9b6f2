//! The `proxy` binary as users run it: command line, `check`, signals and
//! graceful draining, memory while streaming large bodies.

// Test scaffolding only (log capture), never on the proxy's request path.
#![allow(clippy::disallowed_types)]

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use http::{Request, StatusCode};
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_proxy");

struct Proc {
    child: Child,
    addrs: std::collections::HashMap<String, SocketAddr>,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Proc {
    /// Starts the binary on `static_file` and waits until it logged the
    /// bound address of every entrypoint in `eps`.
    fn start(static_file: &std::path::Path, eps: &[&str], extra: &[&str]) -> Proc {
        let mut child = Command::new(BIN)
            .arg("--configFile")
            .arg(static_file)
            .args(["--workers", "1", "--log-level", "INFO"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log2 = std::sync::Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log2.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let mut addrs = std::collections::HashMap::new();
        while addrs.len() < eps.len() {
            let line = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("proxy logged its listening addresses");
            if line.contains("listening") {
                let ep = field(&line, "entrypoint=").trim_matches('"').to_owned();
                let addr: SocketAddr = field(&line, "address=").parse().unwrap();
                addrs.insert(ep, addr);
            }
        }
        Proc { child, addrs, log }
    }

    fn term(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = std::time::Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(start.elapsed() < limit, "proxy did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn child_alive(&self) -> bool {
        std::fs::metadata(format!("/proc/{}", self.child.id())).is_ok()
            && !std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
                .unwrap_or_default()
                .contains(") Z ")
    }

    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .parse()
            .unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let i = line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len();
    line[i..].split_whitespace().next().unwrap()
}

fn write_config(dir: &TempDir, dynamic: &str, static_extra: &str) -> std::path::PathBuf {
    write_static(dir, dynamic, &static_yaml(static_extra))
}

/// Writes `dynamic.yml` and a whole static file (`{DIR}` stands for `dir`).
fn write_static(dir: &TempDir, dynamic: &str, static_cfg: &str) -> std::path::PathBuf {
    dir.write("dynamic.yml", dynamic);
    dir.write(
        "static.yml",
        &static_cfg.replace("{DIR}", &dir.path().display().to_string()),
    )
}

#[test]
fn version_flag() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn check_reports_every_error_with_file_key_and_reason() {
    let dir = TempDir::new("check");
    let dynamic = "http:\n  routers:\n    api:\n      rule: \"Host(`a.test`) && Pathh(`/x`)\"\n      service: api\n    web:\n      rule: \"Host(`b.test`)\"\n      service: apii\n  services:\n    api:\n      loadBalancer:\n        servers:\n          - url: \"http://127.0.0.1:1\"\n";
    let file = write_config(&dir, dynamic, "");
    let out = Command::new(BIN)
        .arg("check")
        .arg("--configFile")
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("dynamic.yml"), "{err}");
    assert!(err.contains("http.routers.web.service"), "{err}");
    assert!(
        err.contains("apii") && err.contains("did you mean"),
        "{err}"
    );
    assert!(err.contains("http.routers.api.rule"), "{err}");
    assert!(err.contains("Pathh"), "{err}");

    // A valid configuration passes.
    let ok = write_config(
        &dir,
        "http:\n  routers:\n    api:\n      rule: \"Host(`a.test`)\"\n      service: api\n  services:\n    api:\n      loadBalancer:\n        servers:\n          - url: \"http://127.0.0.1:1\"\n",
        "",
    );
    let out = Command::new(BIN)
        .arg("check")
        .arg("--configFile")
        .arg(&ok)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Warnings only: printed one a line with their place, exit 0.
    let warned = write_config(
        &dir,
        "http:\n  routers:\n    api:\n      rule: \"Host(`a.test`)\"\n      ruleSyntax: v3\n      service: api\n  services:\n    api:\n      loadBalancer:\n        servers:\n          - url: \"http://127.0.0.1:1\"\n",
        "",
    );
    let out = Command::new(BIN)
        .arg("check")
        .arg("--configFile")
        .arg(&warned)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0]
            .contains("dynamic.yml:5:19: http.routers.api.ruleSyntax: ruleSyntax is deprecated"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 warnings"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_router_at_start_is_disabled_logged_once_and_answers_503() {
    let b = backend("b");
    let dir = TempDir::new("isolated");
    let dynamic = routes_yaml(&[("r", "PathPrefix(`/`)", &b)]).replacen(
        "  routers:\n",
        "  routers:\n    broken:\n      rule: \"Host(`a`)\"\n      priority: 100\n      service: missing\n",
        1,
    );
    let file = write_config(&dir, &dynamic, "");
    let p = Proc::start(&file, &["web"], &[]);
    let web = p.addrs["web"];
    assert_eq!(
        get(web, "b", "/").await.backend(),
        Some("b"),
        "the rest is served"
    );
    let r = get(web, "a", "/").await;
    assert_eq!(
        r.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "not the catch-all"
    );
    // The per-request warning is written as the answer goes out: the
    // client can read the answer before the log reader has the line.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let log = loop {
        let log = p.log.lock().unwrap().join("\n");
        if log.contains("answering 503") || std::time::Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        log.matches("http.routers.broken.service: unknown service \"missing\"")
            .count(),
        1,
        "{log}"
    );
    assert!(
        log.contains("router \"broken\"") && log.contains("answers 503"),
        "{log}"
    );
    assert!(log.contains("answering 503"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_then_exits_zero() {
    let b = backend("slow");
    let dir = TempDir::new("drain");
    let file = write_config(&dir, &routes_yaml(&[("r", "PathPrefix(`/`)", &b)]), "");
    let mut p = Proc::start(&file, &["web"], &[]);
    let web = p.addrs["web"];
    let mut c = H1::connect(web).await;
    let req = Request::get("/slow/1500")
        .header("host", "x")
        .body(empty())
        .unwrap();
    let inflight = tokio::spawn(async move { c.send(req).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.term("-TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // No new connections once draining.
    assert!(
        tokio::net::TcpStream::connect(web).await.is_err(),
        "listener closed while draining"
    );
    let r = inflight
        .await
        .unwrap()
        .expect("in-flight request completed");
    assert_eq!(r.status, StatusCode::OK);
    let st = p.wait(Duration::from_secs(10));
    assert!(
        st.success(),
        "exit status {st:?}: {:?}",
        p.log.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grace_timeout_bounds_the_drain() {
    let b = backend("slow");
    let dir = TempDir::new("grace");
    let file = write_static(
        &dir,
        &routes_yaml(&[("r", "PathPrefix(`/`)", &b)]),
        "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\n    transport:\n      lifeCycle:\n        graceTimeOut: 500ms\nproviders:\n  file:\n    filename: \"{DIR}/dynamic.yml\"\n",
    );
    let mut p = Proc::start(&file, &["web"], &[]);
    let mut c = H1::connect(p.addrs["web"]).await;
    let req = Request::get("/slow/20000")
        .header("host", "x")
        .body(empty())
        .unwrap();
    let inflight = tokio::spawn(async move { c.send(req).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.term("-TERM");
    let st = p.wait(Duration::from_secs(10));
    assert!(st.success());
    assert!(
        inflight.await.unwrap().is_err(),
        "the request past the grace period was cut"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_each_way_streams_in_bounded_memory() {
    let b = backend("big");
    let dir = TempDir::new("stream");
    let file = write_config(&dir, &routes_yaml(&[("r", "PathPrefix(`/`)", &b)]), "");
    let p = Proc::start(&file, &["web"], &[]);
    let web = p.addrs["web"];
    const GIB: u64 = 1 << 30;

    // Download: count bytes without keeping them.
    let s = tokio::net::TcpStream::connect(web).await.unwrap();
    let (mut tx, conn) =
        hyper::client::conn::http1::handshake::<_, TestBody>(hyper_util::rt::TokioIo::new(s))
            .await
            .unwrap();
    tokio::spawn(conn);
    let resp = tx
        .send_request(
            Request::get(format!("/bytes/{GIB}"))
                .header("host", "x")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = resp.into_body();
    let mut n = 0u64;
    use http_body_util::BodyExt;
    while let Some(f) = body.frame().await {
        if let Some(d) = f.unwrap().data_ref() {
            n += d.len() as u64;
        }
    }
    assert_eq!(n, GIB);

    // Upload: a generated stream of 1 GiB.
    let chunk = bytes::Bytes::from(vec![7u8; 256 * 1024]);
    let frames = (0..(GIB / chunk.len() as u64))
        .map(move |_| Ok::<_, hyper::Error>(hyper::body::Frame::data(chunk.clone())));
    let stream = http_body_util::StreamBody::new(IterStream(frames));
    let req = Request::post("/upload")
        .header("host", "x")
        .body(BodyExt::boxed(stream))
        .unwrap();
    tx.ready().await.unwrap();
    let r = collect(tx.send_request(req).await.unwrap()).await.unwrap();
    assert!(r.text().starts_with(&format!("{GIB} ")), "{}", r.text());

    let rss = p.peak_rss_kib();
    assert!(
        rss < 64 * 1024,
        "peak RSS {rss} KiB while streaming 1 GiB each way"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_and_metrics_on_the_traefik_entrypoint() {
    let b = backend("b");
    let dir = TempDir::new("metrics");
    let file = write_static(
        &dir,
        &routes_yaml(&[("r", "PathPrefix(`/`)", &b)]),
        "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\n  traefik:\n    address: \"127.0.0.1:0\"\nproviders:\n  file:\n    filename: \"{DIR}/dynamic.yml\"\nping: {}\nmetrics:\n  prometheus:\n    addRoutersLabels: true\n",
    );
    let p = Proc::start(&file, &["web", "traefik"], &[]);
    for _ in 0..5 {
        assert_eq!(get(p.addrs["web"], "x", "/").await.status, StatusCode::OK);
    }
    let ping = get(p.addrs["traefik"], "x", "/ping").await;
    assert_eq!(ping.status, StatusCode::OK);
    assert_eq!(ping.text(), "OK");
    let m = get(p.addrs["traefik"], "x", "/metrics").await;
    assert_eq!(m.status, StatusCode::OK);
    let text = m.text();
    assert!(
        text.contains("proxy_router_decision_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("proxy_entrypoint_requests_total"), "{text}");
    assert!(text.contains("entrypoint=\"web\""), "{text}");
    assert!(text.contains("proxy_config_reloads_total"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_when_watching_is_off() {
    let a = backend("a");
    let b = backend("b");
    let dir = TempDir::new("sighup");
    let file = write_static(
        &dir,
        &routes_yaml(&[("r", "PathPrefix(`/`)", &a)]),
        "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\nproviders:\n  file:\n    filename: \"{DIR}/dynamic.yml\"\n    watch: false\n",
    );
    let p = Proc::start(&file, &["web"], &[]);
    let started = std::time::Instant::now();
    while !p
        .log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("proxy started"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "proxy never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let web = p.addrs["web"];
    assert_eq!(get(web, "x", "/").await.backend(), Some("a"));
    dir.write_atomic("dynamic.yml", &routes_yaml(&[("r", "PathPrefix(`/`)", &b)]));
    // Not watching: the change waits for SIGHUP.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(get(web, "x", "/").await.backend(), Some("a"));
    p.term("-HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while get(web, "x", "/").await.backend() != Some("b") {
        assert!(
            std::time::Instant::now() < deadline,
            "SIGHUP did not reload"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(p.child_alive(), "SIGHUP must not stop the proxy");
}
