//! Rendering a run: the terminal summary, `report.md` and `report.html`
//! ([`html`]). Each scenario gets its table (which driver produced it, and
//! per target what limited it: the load side or the target), a ratio table
//! for every proxy build against every peer (traefik, nginx, haproxy, the
//! floor, direct), and notes (driver against wrk, goose against the driver,
//! the offered rate, TLS parameters, reload and access-log figures, first
//! errors). Everything is computed from `results.json` alone, so
//! `harness report DIR` re-renders any run.

mod html;

use std::fmt::Write as _;
use std::path::Path;

use crate::results::{Limit, Results, Round, ScenarioResult, TargetResult};
use crate::stats::{self, Percentiles, Spread};
use crate::targets::REFERENCES;

fn fmt_spread(s: Option<Spread>, digits: usize) -> String {
    match s {
        None => "–".into(),
        Some(s) if (s.max - s.min).abs() < f64::EPSILON => format!("{:.*}", digits, s.median),
        Some(s) => format!(
            "{:.*} ({:.*}–{:.*})",
            digits, s.median, digits, s.min, digits, s.max
        ),
    }
}

fn merged(t: &TargetResult) -> Percentiles {
    stats::from_v2_base64(&t.merged_histogram)
        .ok()
        .filter(|h| !h.is_empty())
        .map(|h| Percentiles::of(&h))
        .unwrap_or_else(|| {
            // No histogram (wrk, or a baseline): medians of the rounds.
            let m = |f: fn(&Percentiles) -> f64| {
                t.spread(|r| Some(f(&r.latency_us)))
                    .map_or(f64::NAN, |s| s.median)
            };
            Percentiles {
                p50: m(|p| p.p50),
                p90: m(|p| p.p90),
                p99: m(|p| p.p99),
                p999: m(|p| p.p999),
                max: m(|p| p.max),
            }
        })
}

fn us(v: f64) -> String {
    if !v.is_finite() || v <= 0.0 {
        "–".into()
    } else if v >= 10_000.0 {
        format!("{:.1} ms", v / 1000.0)
    } else {
        format!("{v:.0} µs")
    }
}

/// Whether the scenario has more than one driver per target.
fn multi_driver(s: &ScenarioResult) -> bool {
    s.targets.iter().any(|t| t.driver != s.targets[0].driver)
}

/// How a table row names its target (and driver, when there are several).
pub(crate) fn row_label(s: &ScenarioResult, t: &TargetResult) -> String {
    if multi_driver(s) {
        format!("{} ({})", t.target, t.driver)
    } else {
        t.target.clone()
    }
}

fn is_idle(s: &ScenarioResult) -> bool {
    s.targets
        .iter()
        .flat_map(|t| &t.rounds)
        .any(|r| r.idle_conns.is_some())
}

fn limit_of(t: &TargetResult) -> &'static str {
    let limits: Vec<Limit> = t.rounds.iter().map(Round::limit).collect();
    let all = |l: Limit| !limits.is_empty() && limits.iter().all(|x| *x == l);
    if all(Limit::Load) {
        "load side"
    } else if all(Limit::Target) {
        "target"
    } else if all(Limit::Both) {
        "both"
    } else if all(Limit::Contended) {
        "other tenants"
    } else if all(Limit::Neither) {
        "neither"
    } else if limits.contains(&Limit::Load) {
        "load side (some rounds)"
    } else {
        "mixed"
    }
}

/// One line saying what the scenario is and how it was driven.
pub(crate) fn scenario_line(s: &ScenarioResult) -> String {
    let mut l = format!(
        "{} — load: {}; configuration `{}`; {} s per round.",
        s.what, s.driver, s.config, s.duration_secs
    );
    if let Some(rate) = s.offered_rate {
        let _ = write!(l, " Offered rate {rate:.0} req/s");
        if let Some(n) = &s.offered_rate_note {
            let _ = write!(l, " ({n})");
        }
        l.push('.');
    }
    l
}

/// The main table of one scenario, markdown.
pub(crate) fn scenario_table(s: &ScenarioResult) -> String {
    let mut o = String::new();
    if is_idle(s) {
        o.push_str("| target | connections held | memory before MiB | memory held MiB | KiB per connection | answers after idling | errors |\n");
        o.push_str("|---|---|---|---|---|---|---|\n");
        for t in &s.targets {
            let mib = |f: fn(&Round) -> Option<u64>| t.spread(|r| f(r).map(|k| k as f64 / 1024.0));
            let after_idle: u64 = t
                .rounds
                .iter()
                .map(|r| r.requests.saturating_sub(r.idle_conns.unwrap_or(0)))
                .sum();
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} |",
                row_label(s, t),
                fmt_spread(t.spread(|r| r.idle_conns.map(|n| n as f64)), 0),
                fmt_spread(mib(|r| r.mem_before_kib), 1),
                fmt_spread(mib(|r| r.mem_after_kib), 1),
                fmt_spread(t.spread(|r| r.mem_per_conn_kib), 2),
                after_idle,
                t.rounds.iter().map(|r| r.errors).sum::<u64>(),
            );
        }
        return o;
    }
    let logs = s
        .targets
        .iter()
        .any(|t| t.rounds.iter().any(|r| r.log_lines.is_some()));
    let dashboard = s
        .targets
        .iter()
        .any(|t| t.rounds.iter().any(|r| r.dashboard.is_some()));
    let sizes = s
        .targets
        .iter()
        .any(|t| t.rounds.iter().any(|r| r.body_bytes_per_answer.is_some()));
    o.push_str("| target | req/s | p50 | p90 | p99 | p99.9 | max | errors | CPU µs/req (user) | peak RSS MiB | load side busy | target busy | limit | load tool CPU µs/req |");
    if logs {
        o.push_str(" log lines per answer |");
    }
    if dashboard {
        o.push_str(" dashboard refreshes × calls (failed) |");
    }
    if sizes {
        o.push_str(" body bytes per answer |");
    }
    o.push_str("\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    o.push_str(&"---|".repeat(usize::from(logs) + usize::from(dashboard) + usize::from(sizes)));
    o.push('\n');
    for t in &s.targets {
        let p = merged(t);
        let errors: u64 = t.rounds.iter().map(|r| r.errors).sum();
        let sat = t.rounds.iter().any(|r| r.limit() == Limit::Load);
        let rss = t.spread(|r| r.peak_rss_kib.map(|k| k as f64 / 1024.0));
        let _ = write!(
            o,
            "| {} | {}{} | {} | {} | {} | {} | {} | {} | {} ({}) | {} | {}% | {} | {} | {} |",
            row_label(s, t),
            fmt_spread(t.spread(|r| Some(r.req_per_s)), 0),
            if sat { " ≥*" } else { "" },
            us(p.p50),
            us(p.p90),
            us(p.p99),
            us(p.p999),
            us(p.max),
            errors,
            fmt_spread(t.spread(|r| r.cpu_us_per_req), 1),
            fmt_spread(t.spread(|r| r.cpu_user_us_per_req), 1),
            rss.map_or("–".into(), |s| format!("{:.1}", s.max)),
            fmt_spread(t.spread(|r| Some(r.load_busy_pct)), 0),
            t.spread(|r| r.sut_busy_pct)
                .map_or("–".into(), |v| format!("{}%", fmt_spread(Some(v), 0))),
            limit_of(t),
            fmt_spread(t.spread(|r| r.load_cpu_us_per_req), 1),
        );
        if logs {
            let _ = write!(
                o,
                " {} |",
                fmt_spread(
                    t.spread(|r| r
                        .log_lines
                        .map(|l| l as f64 / r.answered_total.max(1) as f64)),
                    3
                )
            );
        }
        if dashboard {
            let d = t.rounds.iter().filter_map(|r| r.dashboard.as_ref());
            let (refreshes, calls, failed) = d.fold((0, 0, 0), |(a, _, f), d| {
                (a + d.refreshes, d.calls_per_refresh, f + d.failed)
            });
            let _ = write!(o, " {refreshes} × {calls} ({failed}) |");
        }
        if sizes {
            let _ = write!(
                o,
                " {} |",
                fmt_spread(t.spread(|r| r.body_bytes_per_answer), 0)
            );
        }
        o.push('\n');
    }
    o
}

fn ratio(
    a: Option<&TargetResult>,
    b: Option<&TargetResult>,
    f: fn(&Round) -> Option<f64>,
) -> Option<Spread> {
    let (a, b) = (a?, b?);
    Spread::of(
        a.rounds
            .iter()
            .zip(&b.rounds)
            .filter_map(|(x, y)| Some(f(x)? / f(y)?))
            .filter(|v| v.is_finite()),
    )
}

/// The driver's rows of target `name` (not wrk's).
fn rows<'a>(s: &'a ScenarioResult, name: &str) -> Option<&'a TargetResult> {
    s.targets
        .iter()
        .find(|t| t.target == name && t.driver != "wrk")
}

/// The ratio table: every proxy build against every peer of the scenario.
pub(crate) fn ratio_table(_r: &Results, s: &ScenarioResult) -> String {
    let proxies: Vec<&TargetResult> = s
        .targets
        .iter()
        .filter(|t| !REFERENCES.contains(&t.target.as_str()) && t.driver != "wrk")
        .collect();
    let peers: Vec<&str> = REFERENCES
        .iter()
        .copied()
        .filter(|p| rows(s, p).is_some())
        .collect();
    if proxies.is_empty() || peers.is_empty() {
        return String::new();
    }
    let idle = is_idle(s);
    let mut o = String::new();
    if idle {
        o.push_str("| ratio | memory per connection |\n|---|---|\n");
    } else {
        o.push_str("| ratio | CPU per request | throughput |\n|---|---|---|\n");
    }
    for p in proxies {
        for peer in &peers {
            let other = rows(s, peer);
            if idle {
                let m = ratio(Some(p), other, |r| r.mem_per_conn_kib);
                let _ = writeln!(o, "| {}/{peer} | {} |", p.target, fmt_spread(m, 3));
            } else {
                let c = ratio(Some(p), other, |r| r.cpu_us_per_req);
                let t = ratio(Some(p), other, |r| Some(r.req_per_s));
                let _ = writeln!(
                    o,
                    "| {}/{peer} | {} | {} |",
                    p.target,
                    fmt_spread(c, 3),
                    fmt_spread(t, 3)
                );
            }
        }
    }
    o
}

/// Notes under a scenario's tables.
pub(crate) fn notes(r: &Results, s: &ScenarioResult) -> Vec<String> {
    let mut lines = Vec::new();
    // driver-vs-wrk: the driver's rate over wrk's, per target.
    for t in s.targets.iter().filter(|t| t.driver == "driver") {
        if let Some(w) = s
            .targets
            .iter()
            .find(|w| w.target == t.target && w.driver == "wrk")
        {
            let v = ratio(Some(t), Some(w), |r| Some(r.req_per_s));
            let c = ratio(Some(t), Some(w), |r| r.load_cpu_us_per_req);
            lines.push(format!(
                "{}: the driver's rate / wrk's (same connections, same placement, rounds interleaved): {}; the driver's own CPU per request / wrk's: {}",
                t.target,
                fmt_spread(v, 3),
                fmt_spread(c, 3)
            ));
        }
    }
    // goose beside the driver: the same targets in small-get.
    if s.targets.iter().any(|t| t.driver == "goose")
        && let Some(base) = r.scenarios.iter().find(|x| x.name == "small-get")
    {
        for t in &s.targets {
            if let Some(d) = rows(base, &t.target) {
                let rate = |x: &TargetResult| x.spread(|r| Some(r.req_per_s)).map(|v| v.median);
                let cpu = |x: &TargetResult| x.spread(|r| r.cpu_us_per_req).map(|v| v.median);
                let mut l = format!(
                    "{}: goose / driver (small-get): rate {}",
                    t.target,
                    match (rate(t), rate(d)) {
                        (Some(a), Some(b)) => format!("{:.3}", a / b),
                        _ => "–".into(),
                    }
                );
                if let (Some(a), Some(b)) = (cpu(t), cpu(d)) {
                    let _ = write!(l, ", CPU per request {:.3}", a / b);
                }
                lines.push(l);
            }
        }
    }
    // dashboard-open beside small-get: what the open dashboard costs.
    if s.targets
        .iter()
        .any(|t| t.rounds.iter().any(|r| r.dashboard.is_some()))
        && let Some(base) = r.scenarios.iter().find(|x| x.name == "small-get")
    {
        for t in &s.targets {
            let cpu = |x: &TargetResult| x.spread(|r| r.cpu_us_per_req).map(|v| v.median);
            if let Some((a, b)) = rows(base, &t.target).and_then(|d| Some((cpu(t)?, cpu(d)?))) {
                lines.push(format!(
                    "{}: CPU per request with the dashboard open / small-get without it (medians, this run): {:.3} ({a:.1} / {b:.1} µs)",
                    t.target,
                    a / b
                ));
            }
        }
    }
    // compress: a CPU ratio only means something at equal or better size.
    if let Some(traefik) =
        rows(s, "traefik").filter(|t| t.rounds.iter().any(|r| r.body_bytes_per_answer.is_some()))
    {
        let bytes = |x: &TargetResult| x.spread(|r| r.body_bytes_per_answer).map(|v| v.median);
        for t in s.targets.iter().filter(|t| t.target != "traefik") {
            if let (Some(a), Some(b)) = (bytes(t), bytes(traefik)) {
                lines.push(format!(
                    "{}: bytes per compressed answer / Traefik's: {:.3} ({a:.0} / {b:.0}){}",
                    t.target,
                    a / b,
                    if a <= b {
                        ""
                    } else {
                        "; larger answers than Traefik's: its CPU ratio is not at equal size"
                    }
                ));
            }
        }
    }
    for p in s.targets.iter().filter(|t| t.driver != "wrk") {
        if let Some(v) = p.spread(|r| r.router_p99_us) {
            lines.push(format!(
                "{} router decision p99 (from proxy_router_decision_seconds buckets): ≤ {} µs",
                p.target,
                fmt_spread(Some(v), 1)
            ));
        }
    }
    // TLS: what every connection negotiated.
    let negotiated: Vec<String> = s
        .targets
        .iter()
        .filter_map(|t| {
            let n = t.rounds.iter().find_map(|r| r.tls.as_ref())?;
            Some(format!(
                "{} {} / {} / {}",
                t.target, n.version, n.cipher_suite, n.group
            ))
        })
        .collect();
    if !negotiated.is_empty() {
        lines.push(format!(
            "TLS negotiated (pinned, checked on every handshake; no resumption): {}",
            negotiated.join("; ")
        ));
    }
    for t in &s.targets {
        if let Some(rl) = t
            .rounds
            .iter()
            .filter_map(|r| r.reload.as_ref())
            .next_back()
        {
            let storm = merged(t);
            let throttle = if t.target == "traefik" {
                format!(
                    " (providersThrottleDuration {})",
                    crate::configs::TRAEFIK_THROTTLE
                )
            } else {
                String::new()
            };
            lines.push(format!(
                "{}{throttle}: p99 / p99.9 without reloads {} / {}, with a rewrite every 100 ms {} / {} ({} rewrites in the last round, {} quiet-window errors); a new route answered after {}",
                t.target,
                us(rl.quiet_latency_us.p99),
                us(rl.quiet_latency_us.p999),
                us(storm.p99),
                us(storm.p999),
                rl.rewrites,
                rl.quiet_errors,
                rl.route_live_ms
                    .map_or("more than 10 s".into(), |ms| format!("{ms:.0} ms"))
            ));
        }
        let retried: u64 = t.rounds.iter().map(|r| r.retried).sum();
        if retried > 0 {
            lines.push(format!(
                "{}: {retried} GETs sent again on a new connection after the target closed a kept-alive one before answering (as HTTP clients retry idempotent requests)",
                row_label(s, t)
            ));
        }
        if let Some(e) = t.rounds.iter().find_map(|r| r.first_error.as_ref()) {
            lines.push(format!("{}: first error: {e}", row_label(s, t)));
        }
    }
    if let Some(rate) = s.offered_rate {
        for t in s.targets.iter().filter(|t| {
            t.spread(|r| Some(r.req_per_s))
                .is_some_and(|v| v.median < 0.95 * rate)
        }) {
            lines.push(format!(
                "{} did not sustain the offered {rate:.0} req/s",
                t.target
            ));
        }
    }
    lines
}

/// A scenario's table, ratio table, notes and unavailable targets, each
/// note line starting with `bullet`.
fn tables_and_notes(
    o: &mut String,
    r: &Results,
    s: &ScenarioResult,
    bullet: &str,
    name: impl Fn(&str) -> String,
) {
    o.push_str(&scenario_table(s));
    let rt = ratio_table(r, s);
    if !rt.is_empty() {
        o.push('\n');
        o.push_str(&rt);
    }
    o.push('\n');
    for l in notes(r, s) {
        let _ = writeln!(o, "{bullet}{l}");
    }
    for u in &s.unavailable {
        let _ = writeln!(o, "{bullet}unavailable: {} — {}", name(&u.target), u.reason);
    }
}

/// The terminal summary.
pub(crate) fn terminal(r: &Results) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "\n=== summary (medians of {} round(s), min–max in brackets) ===",
        r.meta.rounds
    );
    for s in &r.scenarios {
        let _ = writeln!(o, "\n{}: {}", s.name, scenario_line(s));
        tables_and_notes(&mut o, r, s, "  ", |t| t.to_owned());
    }
    o.push_str(LEGEND);
    o.push('\n');
    o
}

const LEGEND: &str = "\nBusy: the CPU our own processes used over the window as a share of the cores they are pinned to (load side: the load tool and the backend; target: its process tree), so other tenants of a shared machine do not count. `≥*` / limit `load side`: the load side was > 90% busy and the target was not, so throughput is a lower bound (the load side was the limit); `target`: the target was > 90% busy; `other tenants`: neither was, and other processes took more than 15% of the cores (a shared machine: the rate is not the targets' alone). CPU µs/req (utime+stime of the target's process tree over the window / requests served) is the primary efficiency figure; load tool CPU µs/req is what the driver (the harness process), goose or wrk spent per answer.";

/// `report.md`.
pub(crate) fn markdown(r: &Results) -> String {
    let m = &r.meta;
    let mut o = String::new();
    let _ = writeln!(o, "# Harness report {}\n", m.started_utc);
    let _ = writeln!(o, "- git commit: `{}`", m.git_commit);
    let _ = writeln!(o, "- CPU: {} ({} usable cores)", m.cpu_model, m.cpus);
    let _ = writeln!(
        o,
        "- placement: process under test on cpu {:?}, load + backend on cpu {:?}, workers/GOMAXPROCS {}, driver threads {}{}",
        m.placement.sut_cpus,
        m.placement.load_cpus,
        m.placement.workers,
        m.load_threads,
        if m.placement.pinned {
            ""
        } else {
            " (not pinned)"
        }
    );
    let _ = writeln!(
        o,
        "- rounds: {} interleaved, warm-up {} s{}",
        m.rounds,
        m.warmup_secs,
        if m.quick { ", --quick smoke run" } else { "" }
    );
    if let Some(t) = &m.tls {
        let _ = writeln!(
            o,
            "- TLS pinned: {} / {} / {}, session resumption {}; {}",
            t.pinned.version,
            t.pinned.cipher_suite,
            t.pinned.group,
            if t.resumption { "on" } else { "off" },
            t.certificate
        );
    }
    for (t, v) in &m.versions {
        let _ = writeln!(o, "- {t}: {v}");
    }
    for n in &m.notes {
        let _ = writeln!(o, "- note: {n}");
    }
    o.push_str(
        "\nLatency percentiles come from all rounds' histograms merged (µs resolution); req/s and CPU are medians of the rounds with min–max.",
    );
    o.push_str(LEGEND);
    o.push('\n');
    for s in &r.scenarios {
        let _ = writeln!(o, "\n## {}\n\n{}\n", s.name, scenario_line(s));
        tables_and_notes(&mut o, r, s, "- ", |t| format!("**{t}**"));
    }
    o
}

/// Writes report.md and report.html next to results.json.
pub(crate) fn write_all(r: &Results, dir: &Path) -> Result<(), String> {
    let w = |name: &str, body: String| {
        std::fs::write(dir.join(name), body)
            .map_err(|e| format!("{}: {e}", dir.join(name).display()))
    };
    w("report.md", markdown(r))?;
    w("report.html", html::html(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_synthetic_results() {
        let mut r = crate::compare::tests::synthetic(&[15.0, 15.5, 14.5]);
        let mut h = stats::new_histogram();
        for v in 1..1000 {
            stats::record_us(&mut h, v);
        }
        r.scenarios[0].targets[2].merged_histogram = stats::to_v2_base64(&h);
        let md = markdown(&r);
        assert!(md.contains("| proxy |"), "{md}");
        assert!(
            md.contains("| proxy/traefik | 0.375 (0.362–0.388) |"),
            "{md}"
        );
        assert!(md.contains("| proxy/nginx | "), "{md}");
        assert!(md.contains("| proxy/haproxy | "), "{md}");
        assert!(md.contains("load: driver (closed loop)"), "{md}");
        assert!(md.contains("| target |"), "{md}");
        let html = html::html(&r);
        assert!(html.contains("<svg"));
        assert!(terminal(&r).contains("small-get"));
    }

    #[test]
    fn driver_against_wrk_and_idle_tables() {
        let mut r = crate::compare::tests::synthetic(&[15.0; 3]);
        let s = &mut r.scenarios[0];
        let mut wrk = crate::compare::tests::target("direct", &[f64::NAN; 3], &[100_000.0; 3]);
        wrk.driver = "wrk".into();
        s.targets.push(wrk);
        let md = markdown(&r);
        assert!(md.contains("| direct (driver) |"), "{md}");
        assert!(md.contains("direct: the driver's rate / wrk's"), "{md}");
        assert!(md.contains("0.900"), "{md}");

        let mut r = crate::compare::tests::synthetic(&[15.0; 3]);
        for (i, t) in r.scenarios[0].targets.iter_mut().enumerate() {
            for round in &mut t.rounds {
                round.idle_conns = Some(5000);
                round.mem_before_kib = Some(10_000);
                round.mem_after_kib = Some(10_000 + 5000 * (i as u64 + 1));
                round.mem_per_conn_kib = Some(i as f64 + 1.0);
            }
        }
        let md = markdown(&r);
        assert!(md.contains("KiB per connection"), "{md}");
        assert!(md.contains("| proxy/traefik | 0.750 |"), "{md}");
    }
}
