//! Child processes and what /proc says about them: starting pinned
//! children (via `taskset`), killing every one of them on drop (so Ctrl-C or
//! a failure leaves nothing behind), CPU time, peak RSS, per-core busy time,
//! CPU placement and free loopback ports.
//!
//! Read between load windows only; nothing here runs per request.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub(crate) struct ChildGuard {
    child: Child,
    /// What it is, for messages.
    pub(crate) label: String,
}

impl ChildGuard {
    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` if it has already exited.
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `taskset` is available to pin processes.
pub(crate) fn have_taskset() -> bool {
    Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Formats a CPU list for `taskset -c`.
pub(crate) fn cpu_list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses a CPU list such as `0-2,5`.
pub(crate) fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let bad = |_| format!("bad CPU list `{s}`");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().map_err(bad)?, b.parse().map_err(bad)?);
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(bad)?),
        }
    }
    if out.is_empty() {
        return Err(format!("empty CPU list `{s}`"));
    }
    Ok(out)
}

/// The CPUs this process may run on.
pub(crate) fn allowed_cpus() -> Vec<usize> {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .and_then(|l| parse_cpu_list(l).ok())
        })
        .unwrap_or_else(|| {
            (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect()
        })
}

/// Pins this process (all its threads) to `cpus`. Call before starting
/// runtimes so new threads inherit it.
pub(crate) fn pin_self(cpus: &[usize]) -> Result<(), String> {
    let st = Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &cpu_list(cpus),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("taskset: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("taskset exited with {st}"))
    }
}

/// Starts `cmd` pinned to `cpus` (when given) with output to `log` (or
/// inherited stderr when None).
pub(crate) fn spawn(
    label: &str,
    program: &Path,
    args: &[String],
    envs: &[(String, String)],
    cpus: Option<&[usize]>,
    log: Option<&Path>,
) -> Result<ChildGuard, String> {
    let mut cmd = match cpus {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(cpu_list(c)).arg(program);
            cmd
        }
        None => Command::new(program),
    };
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    match log {
        Some(p) => {
            let f = fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?;
            let f2 = f.try_clone().map_err(|e| e.to_string())?;
            cmd.stdout(f).stderr(f2);
        }
        None => {
            cmd.stdout(Stdio::null());
        }
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("starting {label} ({}): {e}", program.display()))?;
    Ok(ChildGuard {
        child,
        label: label.to_owned(),
    })
}

/// A free loopback port: bind 127.0.0.1:0, read the port, close.
pub(crate) fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// `127.0.0.1:PORT`.
pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Clock ticks per second for /proc times (USER_HZ; 100 on Linux).
fn ticks_per_sec() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output();
    out.ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU seconds (user, system) of `pid` plus its reaped children.
pub(crate) fn cpu_seconds(pid: u32) -> Option<(f64, f64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`, which may contain spaces: field 3 onwards.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime=14 stime=15 cutime=16 cstime=17 (1-based) -> index 11..=14 here.
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
    let hz = ticks_per_sec();
    Some(((n(11)? + n(13)?) / hz, (n(12)? + n(14)?) / hz))
}

/// Peak resident set size of `pid` in KiB (VmHWM).
pub(crate) fn peak_rss_kib(pid: u32) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Per-CPU (busy, total) jiffies from /proc/stat.
pub(crate) fn cpu_jiffies() -> Vec<(usize, u64, u64)> {
    let Ok(s) = fs::read_to_string("/proc/stat") else {
        return Vec::new();
    };
    s.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let name = it.next()?;
            let cpu: usize = name.strip_prefix("cpu")?.parse().ok()?;
            let v: Vec<u64> = it.filter_map(|x| x.parse().ok()).collect();
            let total: u64 = v.iter().take(8).sum();
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            Some((cpu, total - idle, total))
        })
        .collect()
}

/// Average busy % of `cpus` between two [`cpu_jiffies`] samples.
pub(crate) fn busy_percent(
    before: &[(usize, u64, u64)],
    after: &[(usize, u64, u64)],
    cpus: &[usize],
) -> f64 {
    let (mut busy, mut total) = (0u64, 0u64);
    for &(c, b1, t1) in after.iter().filter(|x| cpus.contains(&x.0)) {
        if let Some(&(_, b0, t0)) = before.iter().find(|x| x.0 == c) {
            busy += b1.saturating_sub(b0);
            total += t1.saturating_sub(t0);
        }
    }
    if total == 0 {
        return f64::NAN;
    }
    100.0 * busy as f64 / total as f64
}

/// The CPU model name.
pub(crate) fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Polls `check` until it returns true or `timeout` passes, failing early
/// when `child` exits.
pub(crate) fn wait_until(
    what: &str,
    timeout: Duration,
    mut child: Option<&mut ChildGuard>,
    mut check: impl FnMut() -> bool,
) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if check() {
            return Ok(());
        }
        if let Some(c) = child.as_deref_mut()
            && let Some(st) = c.exited()
        {
            return Err(format!("{} exited ({st}) before {what}", c.label));
        }
        if start.elapsed() > timeout {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(cpu_list(&[0, 3]), "0,3");
        assert!(parse_cpu_list("x").is_err());
    }

    #[test]
    fn reads_own_process_figures() {
        let pid = std::process::id();
        let (u, s) = cpu_seconds(pid).unwrap();
        assert!(u >= 0.0 && s >= 0.0);
        assert!(peak_rss_kib(pid).unwrap() > 0);
        let a = cpu_jiffies();
        assert!(!a.is_empty());
        assert!(free_port().unwrap() > 0);
    }
}
