//! `results.json`: the schema every report, baseline and gate reads. Bump
//! [`SCHEMA_VERSION`] on an incompatible change.
//!
//! Plain data; summaries over rounds are computed from it, never stored
//! apart from it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::stats::{Percentiles, Spread};

/// Version of this schema.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// One harness run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Results {
    /// [`SCHEMA_VERSION`] at write time.
    pub(crate) schema_version: u32,
    /// How, where and on what it ran.
    pub(crate) meta: Meta,
    /// One entry per scenario run.
    pub(crate) scenarios: Vec<ScenarioResult>,
}

/// Run metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Meta {
    /// Start time, UTC, RFC 3339.
    pub(crate) started_utc: String,
    /// `git rev-parse HEAD` of the workspace (`-dirty` when modified).
    pub(crate) git_commit: String,
    /// CPU model name.
    pub(crate) cpu_model: String,
    /// CPUs the harness could use.
    pub(crate) cpus: usize,
    /// Where things ran.
    pub(crate) placement: Placement,
    /// Version string of every target.
    pub(crate) versions: BTreeMap<String, String>,
    /// Interleaved rounds.
    pub(crate) rounds: usize,
    /// Warm-up before each measured window, seconds.
    pub(crate) warmup_secs: f64,
    /// Whether this was a `--quick` smoke run.
    pub(crate) quick: bool,
    /// Things a reader should know (targets missing, pinning off, …).
    pub(crate) notes: Vec<String>,
}

/// CPU placement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Placement {
    /// Cores of the process under test.
    pub(crate) sut_cpus: Vec<usize>,
    /// Cores of the load generator and backend.
    pub(crate) load_cpus: Vec<usize>,
    /// Proxy `--workers`, Traefik `GOMAXPROCS`, floor workers.
    pub(crate) workers: usize,
    /// Whether pinning was applied (`taskset` present, enough cores).
    pub(crate) pinned: bool,
}

/// One scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ScenarioResult {
    /// Scenario name.
    pub(crate) name: String,
    /// What it measures.
    pub(crate) what: String,
    /// Measured seconds per round.
    pub(crate) duration_secs: f64,
    /// Targets measured, in run order.
    pub(crate) targets: Vec<TargetResult>,
    /// Targets not run, with why.
    pub(crate) unavailable: Vec<Unavailable>,
}

/// A target that did not run a scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Unavailable {
    /// Target name.
    pub(crate) target: String,
    /// Why.
    pub(crate) reason: String,
}

/// One target in one scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TargetResult {
    /// Target name.
    pub(crate) target: String,
    /// Every round.
    pub(crate) rounds: Vec<Round>,
    /// All rounds' latencies merged, HdrHistogram V2, base64 (tails come
    /// from here: more samples than one round).
    pub(crate) merged_histogram: String,
}

/// One measured window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Round {
    /// 1-based round.
    pub(crate) round: usize,
    /// Correct answers in the window.
    pub(crate) requests: u64,
    /// Wrong or failed requests in the window.
    pub(crate) errors: u64,
    /// The first error's text.
    pub(crate) first_error: Option<String>,
    /// Correct answers per second.
    pub(crate) req_per_s: f64,
    /// Latency percentiles, µs.
    pub(crate) latency_us: Percentiles,
    /// CPU (user + system) of the process under test per request, µs.
    pub(crate) cpu_us_per_req: Option<f64>,
    /// User-space part of it, µs.
    pub(crate) cpu_user_us_per_req: Option<f64>,
    /// Peak RSS of the process under test so far, KiB.
    pub(crate) peak_rss_kib: Option<u64>,
    /// Busy % of the load cores over the window.
    pub(crate) load_busy_pct: f64,
    /// Load cores > 90% busy: throughput is a lower bound.
    pub(crate) load_saturated: bool,
    /// p99 of the proxy's `proxy_router_decision_seconds` over the window, µs.
    pub(crate) router_p99_us: Option<f64>,
    /// Reload-storm figures.
    pub(crate) reload: Option<ReloadFigures>,
    /// This round's histogram, HdrHistogram V2, base64.
    pub(crate) histogram: String,
}

/// What the reload storm adds to a round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ReloadFigures {
    /// The same load without reloads, just before, µs.
    pub(crate) quiet_latency_us: Percentiles,
    /// Errors in the quiet window.
    pub(crate) quiet_errors: u64,
    /// Rewrites of the dynamic file during the storm window.
    pub(crate) rewrites: u64,
    /// Time from writing a new route to it answering, ms (None: not within 10 s).
    pub(crate) route_live_ms: Option<f64>,
}

impl TargetResult {
    /// Median and range of a per-round figure.
    pub(crate) fn spread(&self, f: impl Fn(&Round) -> Option<f64>) -> Option<Spread> {
        Spread::of(self.rounds.iter().filter_map(f))
    }
}

impl ScenarioResult {
    /// The target named `name`.
    pub(crate) fn target(&self, name: &str) -> Option<&TargetResult> {
        self.targets.iter().find(|t| t.target == name)
    }
}

impl Results {
    /// Reads `results.json` (or a baseline file).
    pub(crate) fn load(path: &Path) -> Result<Self, String> {
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
    pub(crate) fn save(&self, path: &Path) -> Result<(), String> {
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
    fn utc_now_is_well_formed() {
        let (long, short) = utc_now();
        assert_eq!(long.len(), 20);
        assert!(long.starts_with("20"));
        assert_eq!(short.len(), 16);
    }
}
