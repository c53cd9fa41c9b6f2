//! Child processes and what /proc says about them: starting pinned
//! children (via `taskset`), killing every one of them on drop (so Ctrl-C or
//! a failure leaves nothing behind), CPU time and memory of a process and
//! its descendants (nginx and HAProxy work in child processes), CPU
//! placement, the open-files limit and free loopback ports.
//!
//! Read between load windows only; nothing here runs per request.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
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
    /// Kills the child and every descendant (nginx's workers outlive a
    /// killed master otherwise), then reaps the child.
    fn drop(&mut self) {
        let descendants: Vec<String> = tree(self.pid())
            .into_iter()
            .skip(1)
            .map(|p| p.to_string())
            .collect();
        let _ = self.child.kill();
        if !descendants.is_empty() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(&descendants)
                .stderr(Stdio::null())
                .status();
        }
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

/// `program args`, run through `taskset -c cpus` when `cpus` is given.
pub(crate) fn command(program: &Path, args: &[String], cpus: Option<&[usize]>) -> Command {
    let mut cmd = match cpus {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(cpu_list(c)).arg(program);
            cmd
        }
        None => Command::new(program),
    };
    cmd.args(args).stdin(Stdio::null());
    cmd
}

/// Where a child's output goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Output<'a> {
    /// stdout and stderr to one file.
    Log(&'a Path),
    /// stdout to the first file (an access log), stderr to the second.
    Split(&'a Path, &'a Path),
}

fn create(p: &Path) -> Result<fs::File, String> {
    fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))
}

/// Starts `program` pinned to `cpus` (when given) with its output to `out`.
/// `taskset` execs the program, so the child's pid is the program's.
pub(crate) fn spawn(
    label: &str,
    program: &Path,
    args: &[String],
    envs: &[(String, String)],
    cpus: Option<&[usize]>,
    out: Output<'_>,
) -> Result<ChildGuard, String> {
    let mut cmd = command(program, args, cpus);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    match out {
        Output::Log(p) => {
            let f = create(p)?;
            let f2 = f.try_clone().map_err(|e| e.to_string())?;
            cmd.stdout(f).stderr(f2);
        }
        Output::Split(o, e) => {
            cmd.stdout(create(o)?).stderr(create(e)?);
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

/// Sends signal `sig` (e.g. `HUP`) to `pid` with `kill(1)`.
pub(crate) fn signal(pid: u32, sig: &str) -> Result<(), String> {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("kill: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("kill -{sig} {pid} failed ({st})"))
    }
}

/// An executable `name` on PATH, else in /usr/sbin or /sbin (where Debian
/// puts nginx and haproxy, off a normal user's PATH).
pub(crate) fn on_path(name: &str) -> Option<PathBuf> {
    let dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    dirs.into_iter()
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|c| c.is_file())
}

/// Raises the soft open-files limit to the hard limit (idle-conns holds
/// thousands of sockets); returns the soft limit now in force.
#[allow(unsafe_code)]
pub(crate) fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    if lim.rlim_cur < lim.rlim_max {
        let want = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
            return want.rlim_cur;
        }
    }
    lim.rlim_cur
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
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        let out = Command::new("getconf").arg("CLK_TCK").output();
        out.ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The fields of /proc/PID/stat after `(comm)`, which may hold spaces:
/// index 0 is field 3 (state), so field N (1-based) is index N - 3.
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(
        rest.split_whitespace()
            .map(|v| v.parse::<u64>().unwrap_or(0))
            .collect(),
    )
}

/// `pid` and every live descendant.
pub(crate) fn tree(pid: u32) -> Vec<u32> {
    let mut parent_of: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            // ppid is field 4.
            if let Some(ppid) = stat_fields(p).and_then(|f| f.get(1).copied()) {
                parent_of.push((p, ppid as u32));
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(
            parent_of
                .iter()
                .filter(|&&(_, pp)| pp == p)
                .map(|&(c, _)| c),
        );
        i += 1;
    }
    out
}

/// CPU seconds (user, system) of `pid`, its live descendants and every
/// child they reaped (so a worker that exits during a window still counts).
pub(crate) fn cpu_seconds(pid: u32) -> Option<(f64, f64)> {
    let hz = ticks_per_sec();
    let mut found = false;
    let (mut user, mut sys) = (0u64, 0u64);
    for p in tree(pid) {
        // utime=14 stime=15 cutime=16 cstime=17 (1-based).
        if let Some(f) = stat_fields(p) {
            found = true;
            let g = |n: usize| f.get(n - 3).copied().unwrap_or(0);
            user += g(14) + g(16);
            sys += g(15) + g(17);
        }
    }
    found.then(|| (user as f64 / hz, sys as f64 / hz))
}

/// CPU seconds of this process (all threads) and of the children it has
/// reaped: (own user + system, children's user + system).
pub(crate) fn self_cpu_seconds() -> (f64, f64) {
    let hz = ticks_per_sec();
    let f = stat_fields(std::process::id()).unwrap_or_default();
    let g = |n: usize| f.get(n - 3).copied().unwrap_or(0) as f64 / hz;
    (g(14) + g(15), g(16) + g(17))
}

fn status_kib(pid: u32, key: &str) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Peak resident set size of `pid` and its descendants in KiB (the sum of
/// their VmHWM: an upper bound for processes that share pages).
pub(crate) fn peak_rss_kib(pid: u32) -> Option<u64> {
    let v: Vec<u64> = tree(pid)
        .into_iter()
        .filter_map(|p| status_kib(p, "VmHWM:"))
        .collect();
    (!v.is_empty()).then(|| v.iter().sum())
}

/// Memory in use by `pid` and its descendants now, KiB: the sum of their
/// proportional set sizes (shared pages split between the processes that
/// map them; /proc/PID/smaps_rollup), else of their VmRSS.
pub(crate) fn memory_kib(pid: u32) -> Option<u64> {
    let v: Vec<u64> = tree(pid)
        .into_iter()
        .filter_map(|p| {
            fs::read_to_string(format!("/proc/{p}/smaps_rollup"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("Pss:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                })
                .or_else(|| status_kib(p, "VmRSS:"))
        })
        .collect();
    (!v.is_empty()).then(|| v.iter().sum())
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
        assert!(memory_kib(pid).unwrap() > 0);
        assert!(free_port().unwrap() > 0);
        assert!(raise_nofile_limit() >= 1024);
    }

    #[test]
    fn a_tree_counts_its_children() {
        let mut c = spawn(
            "sleep",
            Path::new("sh"),
            &["-c".into(), "sleep 5 & sleep 5; wait".into()],
            &[],
            None,
            Output::Log(Path::new("/dev/null")),
        )
        .unwrap();
        let pid = c.pid();
        wait_until("the children", Duration::from_secs(5), Some(&mut c), || {
            tree(pid).len() >= 3
        })
        .unwrap();
        assert!(cpu_seconds(pid).is_some());
        assert!(memory_kib(pid).unwrap() > memory_kib(tree(pid)[1]).unwrap());
    }
}
