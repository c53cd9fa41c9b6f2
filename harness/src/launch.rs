//! Starting things: the backend process of a scenario, and each target
//! pinned with the scenario's generated configuration ([`crate::configs`])
//! in its own directory, waited for until it answers the scenario's request
//! correctly. A running target also knows how to apply a new configuration
//! generation (rewrite the file it watches, or rewrite and signal nginx /
//! HAProxy to reload).
//!
//! Runs between measurements only. Every child is owned by a
//! [`ChildGuard`]: dropping a [`Running`] kills its process tree.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::certs::CertFiles;
use crate::configs::{self, Env};
use crate::load::tls::TlsClient;
use crate::procs::{self, ChildGuard, Output};
use crate::scenario::Scenario;
use crate::targets::{Kind, Target};

/// Where the backend listens.
#[derive(Debug, Clone)]
pub(crate) struct BackendAddrs {
    /// The `main` backend.
    pub(crate) main: SocketAddr,
    /// The `fallback` backend (catch-all router).
    pub(crate) fallback: SocketAddr,
    /// `main` over TLS (TLS scenarios: the `direct` target).
    pub(crate) main_tls: Option<SocketAddr>,
    /// The servers of `main` when the scenario has several (each answers
    /// as `main`).
    pub(crate) pool: Vec<SocketAddr>,
}

/// Starts the backend process for a scenario, pinned to the load cores.
pub(crate) fn backend(
    s: &Scenario,
    load_cpus: Option<&[usize]>,
    threads: usize,
    dir: &Path,
    certs: Option<&CertFiles>,
) -> Result<(ChildGuard, BackendAddrs), String> {
    let main = procs::loopback(procs::free_port()?);
    let fallback = procs::loopback(procs::free_port()?);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut args = vec![
        "backend".to_owned(),
        "--listen".into(),
        format!("main={}", main.port()),
        "--listen".into(),
        format!("fallback={}", fallback.port()),
        "--body-size".into(),
        s.body_size.to_string(),
        "--threads".into(),
        threads.to_string(),
    ];
    if s.compress {
        args.push("--json".into());
    }
    let mut pool = Vec::new();
    if s.servers > 1 {
        for _ in 0..s.servers {
            let a = procs::loopback(procs::free_port()?);
            // Each is a server of the `main` service: it names itself so,
            // and the answers' check (routed to `main`) holds for all.
            args.extend(["--listen".into(), format!("main={}", a.port())]);
            pool.push(a);
        }
    }
    let mut main_tls = None;
    if let (true, Some(c)) = (s.tls, certs) {
        let a = procs::loopback(procs::free_port()?);
        args.extend([
            "--tls-listen".into(),
            format!("main={}", a.port()),
            "--cert".into(),
            c.cert.display().to_string(),
            "--key".into(),
            c.key.display().to_string(),
        ]);
        main_tls = Some(a);
    }
    let mut child = procs::spawn(
        "backend",
        &exe,
        &args,
        &[],
        load_cpus,
        Output::Log(&dir.join("backend.log")),
    )?;
    procs::wait_until(
        "the backend to listen",
        Duration::from_secs(10),
        Some(&mut child),
        || {
            [Some(main), Some(fallback), main_tls]
                .into_iter()
                .flatten()
                .chain(pool.iter().copied())
                .all(|a| TcpStream::connect(a).is_ok())
        },
    )?;
    Ok((
        child,
        BackendAddrs {
            main,
            fallback,
            main_tls,
            pool,
        },
    ))
}

/// A started target.
#[derive(Debug)]
pub(crate) struct Running {
    /// Where load goes.
    pub(crate) addr: SocketAddr,
    /// The process under test (None for direct).
    pub(crate) child: Option<ChildGuard>,
    /// Whose memory `idle-conns` reads (the backend's for direct).
    pub(crate) mem_pid: Option<u32>,
    /// The backend (its CPU counts to the load side).
    pub(crate) backend_pid: u32,
    /// Where `/metrics` is served (scraped at the window's edges).
    pub(crate) metrics: Option<SocketAddr>,
    /// Where the API is served (polled during the window: dashboard-open),
    /// and whether it is the proxy's (which has the dashboard's own paths).
    pub(crate) api: Option<(SocketAddr, Kind)>,
    /// The access log file.
    pub(crate) access_log: Option<PathBuf>,
    /// How to apply a new configuration generation.
    pub(crate) reloader: Option<Reloader>,
    /// The `redis-server` the target's Redis provider reads (its reloads
    /// go there), killed with the target.
    pub(crate) store: Option<ChildGuard>,
}

/// How a target takes a new configuration (cloned into the thread that
/// rewrites it during reload-storm).
#[derive(Debug, Clone)]
pub(crate) struct Reloader {
    kind: Kind,
    file: PathBuf,
    env: Env,
    pid: Option<u32>,
}

/// `args` as one RESP command.
fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// Writes `pairs` to the Redis at `addr` in one `MSET`.
fn redis_mset(addr: &str, pairs: &[(String, String)]) -> Result<(), String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| format!("redis {addr}: {e}"))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let mut args = vec!["MSET"];
    for (k, v) in pairs {
        args.push(k);
        args.push(v);
    }
    s.write_all(&resp(&args)).map_err(|e| e.to_string())?;
    let mut reply = [0u8; 5];
    s.read_exact(&mut reply).map_err(|e| e.to_string())?;
    if &reply != b"+OK\r\n" {
        return Err(format!("redis MSET: {}", String::from_utf8_lossy(&reply)));
    }
    Ok(())
}

/// Starts a `redis-server` on a free loopback port for `dir`'s target;
/// its address once it accepts connections.
fn start_redis(dir: &Path, log: &Path) -> Result<(ChildGuard, String), String> {
    let bin = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or("redis-server is not installed (reload-storm-redis needs it)")?;
    let port = procs::free_port()?;
    let args: Vec<String> = [
        "--bind",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &dir.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let child = procs::spawn("redis-server", &bin, &args, &[], None, Output::Log(log))?;
    let addr = format!("127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        if std::time::Instant::now() > deadline {
            return Err("redis-server did not start".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok((child, addr))
}

/// Replaces `path` atomically (write a temporary file, rename it over).
pub(crate) fn write_atomically(path: &Path, body: &str) -> Result<(), String> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, body).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

impl Reloader {
    /// Applies configuration `generation` of `s` (adds its reload route):
    /// rewrites the file Traefik / the proxy watch, or rewrites nginx's
    /// configuration (HAProxy's map) and signals a reload.
    pub(crate) fn apply(&self, s: &Scenario, generation: u64) -> Result<(), String> {
        let pid = || self.pid.ok_or("not running");
        match self.kind {
            Kind::Proxy | Kind::Traefik if s.redis => {
                let addr = self.env.redis.as_deref().ok_or("no redis-server")?;
                redis_mset(addr, &configs::redis_reload_keys(generation))
            }
            Kind::Proxy | Kind::Traefik => {
                write_atomically(&self.file, &configs::dynamic(s, &self.env, generation))
            }
            Kind::Nginx => {
                write_atomically(&self.file, &configs::nginx(s, &self.env, generation))?;
                procs::signal(pid()?, "HUP")
            }
            Kind::Haproxy => {
                let map = configs::haproxy_map(s, generation).ok_or("no map to rewrite")?;
                write_atomically(&self.file, &map)?;
                procs::signal(pid()?, "USR2")
            }
            Kind::Direct | Kind::Floor => Err("this target has no configuration".into()),
        }
    }
}

fn write(p: &Path, body: &str) -> Result<(), String> {
    std::fs::write(p, body).map_err(|e| format!("{}: {e}", p.display()))
}

/// Starts `t` for scenario `s` with files in `dir`, and waits until the
/// scenario's request is answered correctly.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn start(
    t: &Target,
    s: &Scenario,
    dir: &Path,
    backend: BackendAddrs,
    backend_pid: u32,
    sut_cpus: Option<&[usize]>,
    workers: usize,
    certs: Option<&CertFiles>,
    tls: Option<&TlsClient>,
) -> Result<Running, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let addr = procs::loopback(procs::free_port()?);
    let metrics = procs::loopback(procs::free_port()?);
    let log = dir.join("output.log");
    let path = |name: &str| dir.join(name).display().to_string();
    let store = if s.redis && matches!(t.kind, Kind::Proxy | Kind::Traefik) {
        Some(start_redis(dir, &dir.join("redis.log"))?)
    } else {
        None
    };
    let env = Env {
        web: addr.to_string(),
        metrics: metrics.to_string(),
        main: backend.main.to_string(),
        fallback: backend.fallback.to_string(),
        pool: backend.pool.iter().map(ToString::to_string).collect(),
        dir: dir.display().to_string(),
        dynamic: path("dynamic.yml"),
        redis: store.as_ref().map(|(_, addr)| addr.clone()),
        access_log: path("access.log"),
        map: path("haproxy.map"),
        cert: certs.map_or_else(String::new, |c| c.cert.display().to_string()),
        key: certs.map_or_else(String::new, |c| c.key.display().to_string()),
        combined: certs.map_or_else(String::new, |c| c.combined.display().to_string()),
        workers,
    };
    let bin = || {
        t.bin
            .as_deref()
            .ok_or_else(|| format!("{} binary missing", t.name))
    };
    let access_log = s.access_log.then(|| PathBuf::from(&env.access_log));
    // A started process: its memory, metrics, access log, and how it reloads
    // (the file it watches or that is rewritten before a signal).
    let process = |child: ChildGuard, reload_file: Option<&str>| Running {
        addr,
        mem_pid: Some(child.pid()),
        backend_pid,
        metrics: s.metrics.then_some(metrics),
        api: s.dashboard.then_some((metrics, t.kind)),
        access_log: access_log.clone(),
        reloader: reload_file.map(|f| Reloader {
            kind: t.kind,
            file: PathBuf::from(f),
            env: env.clone(),
            pid: Some(child.pid()),
        }),
        child: Some(child),
        store: None,
    };
    let mut running = match t.kind {
        Kind::Direct => Running {
            addr: if s.tls {
                backend.main_tls.ok_or("the backend has no TLS listener")?
            } else {
                backend.main
            },
            child: None,
            mem_pid: Some(backend_pid),
            backend_pid,
            metrics: None,
            api: None,
            access_log: None,
            reloader: None,
            store: None,
        },
        Kind::Floor => {
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let mut args = vec![
                "floor".to_owned(),
                "--port".into(),
                addr.port().to_string(),
                "--upstream".into(),
                backend.main.to_string(),
                "--workers".into(),
                workers.to_string(),
            ];
            if s.h2c() {
                args.push("--h2c".into());
            }
            process(
                procs::spawn("floor", &exe, &args, &[], sut_cpus, Output::Log(&log))?,
                None,
            )
        }
        Kind::Proxy | Kind::Traefik => {
            write(Path::new(&env.dynamic), &configs::dynamic(s, &env, 0))?;
            let stat = dir.join("static.yml");
            let (args, envs) = if t.kind == Kind::Proxy {
                write(&stat, &configs::proxy_static(s, &env))?;
                let args = vec![
                    "--configFile".to_owned(),
                    stat.display().to_string(),
                    "--workers".into(),
                    workers.to_string(),
                    "--log-level".into(),
                    "error".into(),
                ];
                (args, vec![])
            } else {
                write(&stat, &configs::traefik_static(s, &env))?;
                let args = vec![format!("--configFile={}", stat.display())];
                (args, vec![("GOMAXPROCS".to_owned(), workers.to_string())])
            };
            let child = procs::spawn(&t.name, bin()?, &args, &envs, sut_cpus, Output::Log(&log))?;
            process(child, Some(&env.dynamic))
        }
        Kind::Nginx => {
            let conf = dir.join("nginx.conf");
            write(&conf, &configs::nginx(s, &env, 0))?;
            let args = vec![
                "-c".to_owned(),
                conf.display().to_string(),
                "-p".into(),
                dir.display().to_string(),
                "-e".into(),
                dir.join("error.log").display().to_string(),
            ];
            let child = procs::spawn("nginx", bin()?, &args, &[], sut_cpus, Output::Log(&log))?;
            process(child, Some(&conf.display().to_string()))
        }
        Kind::Haproxy => {
            let conf = dir.join("haproxy.cfg");
            write(&conf, &configs::haproxy(s, &env))?;
            if let Some(m) = configs::haproxy_map(s, 0) {
                write(Path::new(&env.map), &m)?;
            }
            // Master-worker mode (-W) so a reload (SIGUSR2) starts a new
            // worker; -db keeps it in the foreground.
            let args = vec![
                "-W".to_owned(),
                "-db".into(),
                "-f".into(),
                conf.display().to_string(),
            ];
            let access = dir.join("access.log");
            let out = if s.access_log {
                Output::Split(&access, &log)
            } else {
                Output::Log(&log)
            };
            let child = procs::spawn("haproxy", bin()?, &args, &[], sut_cpus, out)?;
            process(child, s.reload.then_some(env.map.as_str()))
        }
    };
    running.store = store.map(|(child, _)| child);
    wait_ready(&mut running, s, &log, tls).await?;
    Ok(running)
}

/// Waits until the scenario's request gets a correct answer.
async fn wait_ready(
    r: &mut Running,
    s: &Scenario,
    log: &Path,
    tls: Option<&TlsClient>,
) -> Result<(), String> {
    let req = s.request();
    let tls = if s.tls { tls } else { None };
    if s.tls && tls.is_none() {
        return Err("a TLS scenario without a TLS client".into());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut last: String;
    // A target that keeps answering a TLS handshake with plain HTTP will not
    // start speaking TLS: give up after 5 s of that, not 90.
    let mut plain_since: Option<tokio::time::Instant> = None;
    loop {
        let probe = if s.h2c() {
            crate::load::h2::probe(r.addr, &req).await
        } else {
            crate::load::probe(r.addr, &req, tls).await
        };
        match probe {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        if last.contains(crate::load::tls::NOT_TLS) {
            let since = *plain_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() > Duration::from_secs(5) {
                return Err(format!("not answering over TLS after 5 s: {last}"));
            }
        } else {
            plain_since = None;
        }
        if let Some(c) = r.child.as_mut()
            && let Some(st) = c.exited()
        {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(5).collect();
            return Err(format!(
                "{} exited ({st}) before answering; last log lines: {}",
                c.label,
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ));
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("not answering correctly after 90 s: {last}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
