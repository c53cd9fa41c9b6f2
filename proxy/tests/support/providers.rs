//! Fixtures for the provider tests: a configuration server for
//! `providers.http` whose answer a test changes (a body, a status, no
//! answer at all), a real `etcd` on free loopback ports (skipped, with a
//! SKIP line, where it is not installed), and a wait for a condition.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::TempDir;

/// What the configuration server answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// `200` with this body.
    Body(String),
    /// This status, empty body.
    Status(u16),
    /// Headers never sent (the poll times out).
    Hang,
}

/// A configuration server on 127.0.0.1:0.
pub struct ConfigServer {
    pub addr: SocketAddr,
    answer: Arc<ArcSwap<Answer>>,
    /// Requests received.
    pub requests: Arc<AtomicUsize>,
    /// The value of `X-Token` in the last request.
    pub last_token: Arc<ArcSwap<String>>,
    _stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl ConfigServer {
    pub fn start(first: Answer) -> ConfigServer {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let answer = Arc::new(ArcSwap::from_pointee(first));
        let requests = Arc::new(AtomicUsize::new(0));
        let last_token = Arc::new(ArcSwap::from_pointee(String::new()));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (a, r, t) = (
            Arc::clone(&answer),
            Arc::clone(&requests),
            Arc::clone(&last_token),
        );
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                let serve = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let (a, r, t) = (Arc::clone(&a), Arc::clone(&r), Arc::clone(&t));
                        tokio::spawn(async move {
                            let svc = hyper::service::service_fn(move |req: http::Request<_>| {
                                let (a, r, t) = (Arc::clone(&a), Arc::clone(&r), Arc::clone(&t));
                                async move {
                                    r.fetch_add(1, Ordering::SeqCst);
                                    let token = req
                                        .headers()
                                        .get("x-token")
                                        .and_then(|v| v.to_str().ok())
                                        .unwrap_or("")
                                        .to_owned();
                                    t.store(Arc::new(token));
                                    let answer = (**a.load()).clone();
                                    let resp = match answer {
                                        Answer::Body(b) => Response::new(Full::new(Bytes::from(b))),
                                        Answer::Status(s) => {
                                            let mut resp = Response::new(Full::new(Bytes::new()));
                                            *resp.status_mut() = StatusCode::from_u16(s).unwrap();
                                            resp
                                        }
                                        Answer::Hang => {
                                            tokio::time::sleep(Duration::from_secs(3600)).await;
                                            Response::new(Full::new(Bytes::new()))
                                        }
                                    };
                                    Ok::<_, Infallible>(resp)
                                }
                            });
                            let _ =
                                hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                                    .serve_connection(TokioIo::new(stream), svc)
                                    .await;
                        });
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stop_rx => {}
                }
            });
            rt.shutdown_background();
        });
        ConfigServer {
            addr,
            answer,
            requests,
            last_token,
            _stop: Some(stop_tx),
        }
    }

    /// Answers `a` from now on.
    pub fn set(&self, a: Answer) {
        self.answer.store(Arc::new(a));
    }

    /// The URL of its configuration.
    pub fn url(&self) -> String {
        format!("http://{}/config", self.addr)
    }
}

impl Drop for ConfigServer {
    fn drop(&mut self) {
        if let Some(tx) = self._stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Polls `f` every 20 ms until it is true or `limit` passed; whether it
/// became true.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// === etcd ===

/// The `etcd` binary: `$ETCD`, else on `$PATH`.
pub fn find_etcd() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ETCD") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join("etcd"))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running single-member `etcd` (data in a temporary directory).
pub struct EtcdServer {
    child: Option<Child>,
    pub port: u16,
    peer_port: u16,
    dir: TempDir,
    /// A second, TLS-only client listener: its port, certificate and key.
    tls: Option<(u16, PathBuf, PathBuf)>,
}

impl EtcdServer {
    /// `None` (after printing a SKIP line) when `etcd` is not installed.
    pub fn start(test: &str) -> Option<EtcdServer> {
        Self::start_tls(test, None)
    }

    /// [`EtcdServer::start`] also serving clients over TLS only, with the
    /// server certificate and key `tls`, on [`EtcdServer::tls_endpoint`]
    /// (the plain listener stays the test's own, to write keys).
    pub fn start_tls(test: &str, tls: Option<(PathBuf, PathBuf)>) -> Option<EtcdServer> {
        if find_etcd().is_none() {
            eprintln!(
                "SKIP {test}: no etcd (apt-get install etcd-server, as .ci/run does, or set ETCD)"
            );
            return None;
        }
        let mut s = EtcdServer {
            child: None,
            port: free_port(),
            peer_port: free_port(),
            dir: TempDir::new("etcd"),
            tls: tls.map(|(cert, key)| (free_port(), cert, key)),
        };
        s.spawn();
        Some(s)
    }

    fn spawn(&mut self) {
        let mut client = format!("http://127.0.0.1:{}", self.port);
        let mut cmd = Command::new(find_etcd().unwrap());
        if let Some((port, cert, key)) = &self.tls {
            client = format!("{client},https://127.0.0.1:{port}");
            cmd.arg("--cert-file").arg(cert).arg("--key-file").arg(key);
        }
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = cmd
            .args(["--name", "test", "--data-dir"])
            .arg(self.dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("test={peer}")])
            .args(["--log-level", "error"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd");
        self.child = Some(child);
        let ready = wait_until(Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", self.port)).is_ok() && self.put_raw("probe", "1")
        });
        assert!(ready, "etcd did not start");
        self.delete("probe");
    }

    /// `127.0.0.1:<port>`, as an `endpoints` entry.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:<tls port>`, where it serves clients over TLS only.
    pub fn tls_endpoint(&self) -> String {
        format!(
            "127.0.0.1:{}",
            self.tls.as_ref().expect("started with TLS").0
        )
    }

    /// Kills it (etcd down); [`EtcdServer::restart`] brings it back with
    /// its data.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn call(&self, path: &str, body: &str) -> Option<String> {
        use std::io::{Read, Write};
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        out.starts_with("HTTP/1.1 200").then_some(out)
    }

    fn put_raw(&self, key: &str, value: &str) -> bool {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD;
        let body = serde_json::json!({"key": b.encode(key), "value": b.encode(value)});
        self.call("/v3/kv/put", &body.to_string()).is_some()
    }

    /// Writes `key` = `value`.
    pub fn put(&self, key: &str, value: &str) {
        assert!(self.put_raw(key, value), "etcd put {key}");
    }

    /// Writes every pair in one transaction (one revision, one event
    /// batch).
    pub fn put_all(&self, pairs: &[(&str, &str)]) {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD;
        let success: Vec<_> = pairs
            .iter()
            .map(|(k, v)| serde_json::json!({"request_put": {"key": b.encode(k), "value": b.encode(v)}}))
            .collect();
        let body = serde_json::json!({"success": success});
        assert!(
            self.call("/v3/kv/txn", &body.to_string()).is_some(),
            "etcd txn"
        );
    }

    /// Turns authentication on with user `root` (password `password`),
    /// as etcd's docs do it; writes without a token fail afterwards.
    pub fn enable_auth(&self, password: &str) {
        for (path, body) in [
            ("/v3/auth/role/add", serde_json::json!({"name": "root"})),
            (
                "/v3/auth/user/add",
                serde_json::json!({"name": "root", "password": password}),
            ),
            (
                "/v3/auth/user/grant",
                serde_json::json!({"user": "root", "role": "root"}),
            ),
            ("/v3/auth/enable", serde_json::json!({})),
        ] {
            assert!(self.call(path, &body.to_string()).is_some(), "etcd {path}");
        }
    }

    /// Deletes `key`.
    pub fn delete(&self, key: &str) {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD;
        let body = serde_json::json!({"key": b.encode(key)});
        let _ = self.call("/v3/kv/deleterange", &body.to_string());
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.stop();
    }
}

// === the proxy binary ===

/// A `proxy` process (the binary as users run it), killed on drop.
pub struct ProxyProcess {
    child: Child,
    /// Its `web` entrypoint.
    pub web: SocketAddr,
    /// Its stderr lines so far.
    pub log: Arc<ArcSwap<Vec<String>>>,
}

impl ProxyProcess {
    /// Starts the binary on `static_file` and waits for its `web` address.
    pub fn start(static_file: &std::path::Path) -> ProxyProcess {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_proxy"))
            .arg("--configFile")
            .arg(static_file)
            .args(["--workers", "1", "--log-level", "INFO"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = Arc::new(ArcSwap::from_pointee(Vec::new()));
        let log2 = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log2.rcu(|l| {
                    let mut l = Vec::clone(l);
                    l.push(line.clone());
                    l
                });
                let _ = tx.send(line);
            }
        });
        let web = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("proxy logged its listening address");
            if line.contains("listening") && line.contains("web") {
                let i = line.find("address=").unwrap() + "address=".len();
                break line[i..]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
            }
        };
        ProxyProcess { child, web, log }
    }

    /// Whether a stderr line contains `text`.
    pub fn logged(&self, text: &str) -> bool {
        self.log.load().iter().any(|l| l.contains(text))
    }

    /// Asserts that the store was reported unreachable exactly once (the
    /// provider logs once per state change, not once per retry).
    pub fn assert_unreachable_logged_once(&self) {
        let outages = self
            .log
            .load()
            .iter()
            .filter(|l| l.contains("cannot reach the provider"))
            .count();
        assert_eq!(outages, 1, "logged once per state change");
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The backend a blocking GET of `path` on `addr` reaches (`None`: not
/// routed, or no answer).
/// Sends `n` requests for `/p` to `web`, 5 ms apart, with the store taken
/// down (`down`) before request `down_at` and brought back (`up`) before
/// `up_at`, after waiting (10 s at most) for `/p` to reach backend `a`;
/// the number that did not reach `a` (0 when the last good configuration
/// kept serving through the outage).
pub fn lost_across_outage(
    web: SocketAddr,
    n: usize,
    (down_at, up_at): (usize, usize),
    mut down: impl FnMut(),
    mut up: impl FnMut(),
) -> usize {
    let at_a = || backend_of(web, "/p").as_deref() == Some("a");
    assert!(
        wait_until(Duration::from_secs(10), at_a),
        "/p never reached a"
    );
    let mut failed = 0;
    for i in 0..n {
        if i == down_at {
            down();
        }
        if i == up_at {
            up();
        }
        if !at_a() {
            failed += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    failed
}

pub fn backend_of(addr: SocketAddr, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    if !out.starts_with("HTTP/1.1 200") {
        return None;
    }
    out.lines()
        .find_map(|l| {
            l.strip_prefix("x-backend: ")
                .or_else(|| l.strip_prefix("X-Backend: "))
        })
        .map(|v| v.trim().to_owned())
}

/// The pairs of a route `/<name>` to `backend` in Traefik's key layout
/// under `root`.
pub fn route_pairs(root: &str, name: &str, backend: SocketAddr) -> Vec<(String, String)> {
    vec![
        (
            format!("{root}/http/routers/{name}/rule"),
            format!("PathPrefix(`/{name}`)"),
        ),
        (
            format!("{root}/http/routers/{name}/service"),
            format!("svc-{name}"),
        ),
        (
            format!("{root}/http/services/svc-{name}/loadbalancer/servers/0/url"),
            format!("http://{backend}"),
        ),
    ]
}

// === TLS to a store ===

/// The files of a store's TLS test, in `dir`: a server certificate for
/// 127.0.0.1 and its key, the CA that signed it, and a CA that did not.
pub struct StoreTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
    pub other_ca: PathBuf,
}

impl StoreTls {
    pub fn new(dir: &TempDir) -> StoreTls {
        let ca = super::tls::Ca::new("store test ca");
        let leaf = ca.server(&["127.0.0.1"], super::tls::Alg::EcdsaP256);
        let other = super::tls::Ca::new("another ca");
        StoreTls {
            cert: dir.write("server.pem", &leaf.cert_pem),
            key: dir.write("server.key", &leaf.key_pem),
            ca: dir.write("ca.pem", &ca.pem),
            other_ca: dir.write("other.pem", &other.pem),
        }
    }

    /// Two proxies on the store whose `route` for `/p` goes to backend
    /// `a`, one given (through `static_cfg`, from a CA file to the static
    /// configuration) the CA that signed the store's certificate and one
    /// another CA: the first serves the route; the second cannot reach the
    /// store, logs it once and serves nothing.
    pub fn check(&self, dir: &TempDir, static_cfg: impl Fn(&std::path::Path) -> String) {
        let good = ProxyProcess::start(&dir.write("good.yml", &static_cfg(&self.ca)));
        assert!(
            wait_until(Duration::from_secs(10), || {
                backend_of(good.web, "/p").as_deref() == Some("a")
            }),
            "no route over TLS:\n{}",
            good.log.load().join("\n")
        );
        let wrong = ProxyProcess::start(&dir.write("wrong.yml", &static_cfg(&self.other_ca)));
        assert!(wait_until(Duration::from_secs(10), || wrong
            .logged("cannot reach the provider")));
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(backend_of(wrong.web, "/p"), None);
        wrong.assert_unreachable_logged_once();
    }
}
