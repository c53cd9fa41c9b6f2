//! `results.json`: the schema every report, baseline and comparison reads
//! (public: tests and other tools read runs through these types). Bump
//! [`SCHEMA_VERSION`] on an incompatible change.
//!
//! Plain data; summaries over rounds are computed from it, never stored
//! apart from it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::load::Negotiated;
use crate::stats::{Percentiles, Spread};

/// Version of this schema.
pub const SCHEMA_VERSION: u32 = 2;

/// One harness run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    /// [`SCHEMA_VERSION`] at write time.
    pub schema_version: u32,
    /// How, where and on what it ran.
    pub meta: Meta,
    /// One entry per scenario run.
    pub scenarios: Vec<ScenarioResult>,
}

/// Run metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// Start time, UTC, RFC 3339.
    pub started_utc: String,
    /// `git rev-parse HEAD` of the workspace (`-dirty` when modified).
    pub git_commit: String,
    /// CPU model name.
    pub cpu_model: String,
    /// CPUs the harness could use.
    pub cpus: usize,
    /// Where things ran.
    pub placement: Placement,
    /// Version string of every target.
    pub versions: BTreeMap<String, String>,
    /// Interleaved rounds.
    pub rounds: usize,
    /// Warm-up before each measured window, seconds.
    pub warmup_secs: f64,
    /// Whether this was a `--quick` smoke run.
    pub quick: bool,
    /// Things a reader should know (targets missing, pinning off, …).
    pub notes: Vec<String>,
    /// Threads the driver runs load on (one current-thread runtime each).
    pub load_threads: usize,
    /// The TLS parameters pinned for the TLS scenarios, and the certificate.
    pub tls: Option<TlsMeta>,
}

/// What the TLS scenarios pin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TlsMeta {
    /// Version, cipher suite and key-exchange group every handshake must negotiate.
    pub pinned: Negotiated,
    /// The servers' certificate.
    pub certificate: String,
    /// Session resumption (always off: every handshake is full).
    pub resumption: bool,
}

/// CPU placement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Placement {
    /// Cores of the process under test.
    pub sut_cpus: Vec<usize>,
    /// Cores of the load generator and backend.
    pub load_cpus: Vec<usize>,
    /// Proxy `--workers`, Traefik `GOMAXPROCS`, floor workers.
    pub workers: usize,
    /// Whether pinning was applied (`taskset` present, enough cores).
    pub pinned: bool,
}

/// One scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Scenario name.
    pub name: String,
    /// What it measures.
    pub what: String,
    /// Measured seconds per round.
    pub duration_secs: f64,
    /// The configuration every target ran (`traefik-baseline/<config>/`).
    pub config: String,
    /// Which load tool produced the figures.
    pub driver: String,
    /// The offered rate of an open-loop scenario, req/s.
    pub offered_rate: Option<f64>,
    /// How the offered rate was chosen (equal-rate).
    pub offered_rate_note: Option<String>,
    /// Targets measured, in run order.
    pub targets: Vec<TargetResult>,
    /// Targets not run, with why.
    pub unavailable: Vec<Unavailable>,
}

/// A target that did not run a scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unavailable {
    /// Target name.
    pub target: String,
    /// Why.
    pub reason: String,
}

/// One target in one scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetResult {
    /// Target name.
    pub target: String,
    /// The load tool of these rounds (`driver-vs-wrk` has two per target).
    pub driver: String,
    /// Every round.
    pub rounds: Vec<Round>,
    /// All rounds' latencies merged, HdrHistogram V2, base64 (tails come
    /// from here: more samples than one round).
    pub merged_histogram: String,
}

/// One measured window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Round {
    /// 1-based round.
    pub round: usize,
    /// Correct answers in the window.
    pub requests: u64,
    /// Wrong or failed requests in the window.
    pub errors: u64,
    /// The first error's text.
    pub first_error: Option<String>,
    /// Correct answers per second.
    pub req_per_s: f64,
    /// Latency percentiles, µs.
    pub latency_us: Percentiles,
    /// CPU (user + system) of the process under test per request, µs.
    pub cpu_us_per_req: Option<f64>,
    /// User-space part of it, µs.
    pub cpu_user_us_per_req: Option<f64>,
    /// CPU of the load tool itself per answer, µs (the harness process for
    /// the driver and goose, the wrk process for wrk).
    pub load_cpu_us_per_req: Option<f64>,
    /// Peak RSS of the process under test so far, KiB.
    pub peak_rss_kib: Option<u64>,
    /// CPU the load side's own processes (the driver or goose in this
    /// process, wrk, the backend) used over the window, % of the load cores
    /// (other tenants of a shared machine do not count).
    #[serde(deserialize_with = "crate::stats::nan_if_null")]
    pub load_busy_pct: f64,
    /// The load side > 90% busy: throughput is a lower bound.
    pub load_saturated: bool,
    /// CPU the target's process tree used over the window, % of its cores.
    pub sut_busy_pct: Option<f64>,
    /// The share of the load and target cores other processes (other
    /// tenants of a shared machine) used over the window (/proc/stat minus
    /// our own processes), %.
    pub others_busy_pct: Option<f64>,
    /// Correct answers over the whole run, warm-up included.
    pub answered_total: u64,
    /// GETs sent again on a new connection because the target closed a
    /// kept-alive one before answering (as HTTP clients retry them).
    pub retried: u64,
    /// Access-log lines written over the run (access-log-on).
    pub log_lines: Option<u64>,
    /// What the TLS connections negotiated.
    pub tls: Option<Negotiated>,
    /// idle-conns: connections held idle.
    pub idle_conns: Option<u64>,
    /// idle-conns: memory of the target before opening them, KiB.
    pub mem_before_kib: Option<u64>,
    /// idle-conns: memory while they are held, KiB.
    pub mem_after_kib: Option<u64>,
    /// idle-conns: (after - before) / connections, KiB.
    pub mem_per_conn_kib: Option<f64>,
    /// p99 of the proxy's `proxy_router_decision_seconds` over the window, µs.
    pub router_p99_us: Option<f64>,
    /// Reload-storm figures.
    pub reload: Option<ReloadFigures>,
    /// dashboard-open: what the dashboard's polling got.
    #[serde(default)]
    pub dashboard: Option<DashboardFigures>,
    /// compress: mean body bytes of a correct answer in the window (the
    /// compressed size: a cheaper level would send more).
    #[serde(default)]
    pub body_bytes_per_answer: Option<f64>,
    /// This round's histogram, HdrHistogram V2, base64.
    pub histogram: String,
}

/// What dashboard-open adds to a round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DashboardFigures {
    /// Refreshes (every 2 s) in which every API call was answered 200.
    pub refreshes: u64,
    /// API calls per refresh.
    pub calls_per_refresh: u64,
    /// API calls not answered 200.
    pub failed: u64,
}

/// What the reload storm adds to a round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReloadFigures {
    /// The same load without reloads, just before, µs.
    pub quiet_latency_us: Percentiles,
    /// Errors in the quiet window.
    pub quiet_errors: u64,
    /// Rewrites of the dynamic file during the storm window.
    pub rewrites: u64,
    /// Time from writing a new route to it answering, ms (None: not within 10 s).
    pub route_live_ms: Option<f64>,
}

/// What limited a round's throughput.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The load cores were busy (> 90%) and the target's were not: the
    /// figure is a lower bound of the target's capacity.
    Load,
    /// The target's cores were busy (> 90%) and the load cores were not.
    Target,
    /// Both were busy.
    Both,
    /// Neither, but other processes took more than [`CONTENDED_PCT`] of
    /// the cores: the figures come from a contended machine.
    Contended,
    /// Neither (open loop, or waiting on the network).
    Neither,
}

/// Cores busier than this are saturated.
pub const SATURATED_PCT: f64 = 90.0;

/// Other processes using more than this share of our cores make a round
/// contended (when neither side of ours was saturated).
pub const CONTENDED_PCT: f64 = 15.0;

impl Round {
    /// What limited this round.
    pub fn limit(&self) -> Limit {
        let load = self.load_busy_pct > SATURATED_PCT;
        let sut = self.sut_busy_pct.is_some_and(|b| b > SATURATED_PCT);
        match (load, sut) {
            (true, false) => Limit::Load,
            (false, true) => Limit::Target,
            (true, true) => Limit::Both,
            (false, false) if self.others_busy_pct.is_some_and(|b| b > CONTENDED_PCT) => {
                Limit::Contended
            }
            (false, false) => Limit::Neither,
        }
    }
}

impl TargetResult {
    /// Median and range of a per-round figure.
    pub fn spread(&self, f: impl Fn(&Round) -> Option<f64>) -> Option<Spread> {
        Spread::of(self.rounds.iter().filter_map(f))
    }
}

impl ScenarioResult {
    /// The target named `name` (its first driver's rounds).
    pub fn target(&self, name: &str) -> Option<&TargetResult> {
        self.targets.iter().find(|t| t.target == name)
    }

    /// Whether any round of any target had a wrong or failed answer.
    pub fn errors(&self) -> u64 {
        self.targets
            .iter()
            .flat_map(|t| &t.rounds)
            .map(|r| r.errors)
            .sum()
    }
}

impl Results {
    /// Reads `results.json` (or a baseline file).
    pub fn load(path: &Path) -> Result<Self, String> {
        let s = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let r: Self = serde_json::from_str(&s).map_err(|e| format!("{}: {e}", path.display()))?;
        if r.schema_version != SCHEMA_VERSION {
            return Err(format!(
                "{}: schema version {} (this harness reads {SCHEMA_VERSION})",
                path.display(),
                r.schema_version
            ));
        }
        Ok(r)
    }

    /// Writes it as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let s = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(path, s).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// The UTC time now as (RFC 3339, compact `YYYYmmddTHHMMSSZ`).
pub(crate) fn utc_now() -> (String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    (
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z"),
        format!("{y:04}{mo:02}{d:02}T{h:02}{m:02}{s:02}Z"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_with_unmeasured_figures_round_trips() {
        let mut r = crate::compare::tests::synthetic(&[15.0; 3]);
        r.scenarios[0].targets[0].rounds[0].latency_us.p999 = f64::NAN;
        r.scenarios[0].targets[0].rounds[0].load_busy_pct = f64::NAN;
        let p = std::env::temp_dir().join(format!("harness-results-{}.json", std::process::id()));
        r.save(&p).unwrap();
        let back = Results::load(&p).unwrap();
        let _ = std::fs::remove_file(&p);
        let round = &back.scenarios[0].targets[0].rounds[0];
        assert!(round.latency_us.p999.is_nan() && round.load_busy_pct.is_nan());
        assert_eq!(back.scenarios[0].targets.len(), 6);
    }

    #[test]
    fn utc_now_is_well_formed() {
        let (long, short) = utc_now();
        assert_eq!(long.len(), 20);
        assert!(long.starts_with("20"));
        assert_eq!(short.len(), 16);
    }
}
