//! Rendering a run: the terminal summary, `report.md`, and `report.html`
//! with latency-percentile plots (SVG, plotters). Everything is computed
//! from `results.json` alone, so `harness report DIR` re-renders any run.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::results::{Results, ScenarioResult, TargetResult};
use crate::stats::{self, Percentiles, Spread};

/// Targets that are not proxies under evaluation (ratios are not computed
/// for them).
const REFERENCES: [&str; 5] = ["direct", "floor", "traefik", "nginx", "haproxy"];

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
        .map(|h| Percentiles::of(&h))
        .unwrap_or_else(|_| {
            // A baseline without histograms: medians of the rounds.
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
    if !v.is_finite() {
        "–".into()
    } else if v >= 10_000.0 {
        format!("{:.1} ms", v / 1000.0)
    } else {
        format!("{v:.0} µs")
    }
}

/// The main table of one scenario, markdown.
fn scenario_table(s: &ScenarioResult) -> String {
    let mut o = String::new();
    o.push_str("| target | req/s | p50 | p90 | p99 | p99.9 | max | errors | CPU µs/req (user) | peak RSS MiB | load cores busy |\n");
    o.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for t in &s.targets {
        let p = merged(t);
        let errors: u64 = t.rounds.iter().map(|r| r.errors).sum();
        let sat = t.rounds.iter().any(|r| r.load_saturated);
        let rss = t.spread(|r| r.peak_rss_kib.map(|k| k as f64 / 1024.0));
        let _ = writeln!(
            o,
            "| {} | {}{} | {} | {} | {} | {} | {} | {} | {} ({}) | {} | {}% |",
            t.target,
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
        );
    }
    o
}

fn ratio(
    a: Option<&TargetResult>,
    b: Option<&TargetResult>,
    f: &dyn Fn(&crate::results::Round) -> Option<f64>,
) -> Option<Spread> {
    let (a, b) = (a?, b?);
    Spread::of(
        a.rounds
            .iter()
            .zip(&b.rounds)
            .filter_map(|(x, y)| Some(f(x)? / f(y)?)),
    )
}

/// Ratio lines for every proxy target of a scenario.
fn ratio_lines(s: &ScenarioResult) -> Vec<String> {
    let mut lines = Vec::new();
    for p in s
        .targets
        .iter()
        .filter(|t| !REFERENCES.contains(&t.target.as_str()))
    {
        let n = &p.target;
        let cpu = |r: &crate::results::Round| r.cpu_us_per_req;
        let rps = |r: &crate::results::Round| Some(r.req_per_s);
        let items = [
            (
                format!("{n}/traefik CPU per request"),
                ratio(Some(p), s.target("traefik"), &cpu),
            ),
            (
                format!("{n}/floor CPU per request"),
                ratio(Some(p), s.target("floor"), &cpu),
            ),
            (
                format!("{n}/traefik throughput"),
                ratio(Some(p), s.target("traefik"), &rps),
            ),
            (
                format!("{n}/direct throughput"),
                ratio(Some(p), s.target("direct"), &rps),
            ),
        ];
        for (what, v) in items {
            if let Some(v) = v {
                lines.push(format!("{what}: {}", fmt_spread(Some(v), 3)));
            }
        }
        if let Some(r) = p.spread(|r| r.router_p99_us) {
            lines.push(format!(
                "{n} router decision p99 (from proxy_router_decision_seconds buckets): ≤ {} µs",
                fmt_spread(Some(r), 1)
            ));
        }
    }
    for t in &s.targets {
        if let Some(r) = t
            .rounds
            .iter()
            .filter_map(|r| r.reload.as_ref())
            .next_back()
        {
            let storm = merged(t);
            let throttle = if t.target == "traefik" {
                format!(
                    " (providersThrottleDuration {})",
                    crate::scenario::TRAEFIK_THROTTLE
                )
            } else {
                String::new()
            };
            lines.push(format!(
                "{}{throttle}: p99 / p99.9 without reloads {} / {}, with a rewrite every 100 ms {} / {} ({} rewrites in the last round, {} quiet-window errors); a new route answered after {}",
                t.target,
                us(r.quiet_latency_us.p99),
                us(r.quiet_latency_us.p999),
                us(storm.p99),
                us(storm.p999),
                r.rewrites,
                r.quiet_errors,
                r.route_live_ms.map_or("more than 10 s".into(), |ms| format!("{ms:.0} ms"))
            ));
        }
        if let Some(e) = t.rounds.iter().find_map(|r| r.first_error.as_ref()) {
            lines.push(format!("{}: first error: {e}", t.target));
        }
    }
    lines
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
        let _ = writeln!(
            o,
            "\n{} — {} ({} s per round)",
            s.name, s.what, s.duration_secs
        );
        o.push_str(&scenario_table(s));
        for l in ratio_lines(s) {
            let _ = writeln!(o, "  {l}");
        }
        for u in &s.unavailable {
            let _ = writeln!(o, "  unavailable: {} — {}", u.target, u.reason);
        }
    }
    o.push_str("\n≥* load cores > 90% busy in a round: throughput is a lower bound (the load side was the limit). CPU µs/req is the primary efficiency figure.\n");
    o
}

/// `report.md`.
pub(crate) fn markdown(r: &Results) -> String {
    let m = &r.meta;
    let mut o = String::new();
    let _ = writeln!(o, "# Harness report {}\n", m.started_utc);
    let _ = writeln!(o, "- git commit: `{}`", m.git_commit);
    let _ = writeln!(o, "- CPU: {} ({} usable cores)", m.cpu_model, m.cpus);
    let _ = writeln!(
        o,
        "- placement: process under test on cpu {:?}, load + backend on cpu {:?}, workers/GOMAXPROCS {}{}",
        m.placement.sut_cpus,
        m.placement.load_cpus,
        m.placement.workers,
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
    for (t, v) in &m.versions {
        let _ = writeln!(o, "- {t}: {v}");
    }
    for n in &m.notes {
        let _ = writeln!(o, "- note: {n}");
    }
    o.push_str(
        "\nLatency percentiles come from all rounds' histograms merged (µs resolution); req/s and CPU are medians of the rounds with min–max. \
         CPU µs/req = utime+stime of the process under test over the window / requests served. `≥*`: load cores > 90% busy, throughput is a lower bound.\n",
    );
    for s in &r.scenarios {
        let _ = writeln!(
            o,
            "\n## {}\n\n{} — {} s per round.\n",
            s.name, s.what, s.duration_secs
        );
        o.push_str(&scenario_table(s));
        o.push('\n');
        for l in ratio_lines(s) {
            let _ = writeln!(o, "- {l}");
        }
        for u in &s.unavailable {
            let _ = writeln!(o, "- unavailable: **{}** — {}", u.target, u.reason);
        }
    }
    o
}

/// Percentile plot of one scenario, SVG.
pub(crate) fn plot(s: &ScenarioResult) -> Result<String, String> {
    let series: Vec<(String, Vec<(f64, f64)>)> = s
        .targets
        .iter()
        .filter_map(|t| {
            let h = stats::from_v2_base64(&t.merged_histogram).ok()?;
            if h.is_empty() {
                return None;
            }
            // x = "nines": 0 -> p0, 1 -> p90, 2 -> p99, 3 -> p99.9, ...
            let pts = (0..=50)
                .map(|i| {
                    let x = f64::from(i) * 0.1;
                    let q = 1.0 - 10f64.powf(-x);
                    (x, (h.value_at_quantile(q.min(1.0)) as f64).max(1.0))
                })
                .collect();
            Some((t.target.clone(), pts))
        })
        .collect();
    let ymax = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|v| v.1))
        .fold(10.0, f64::max)
        * 1.5;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 380)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{}: latency by percentile", s.name),
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..5f64, (1f64..ymax).log_scale())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_labels(6)
            .x_label_formatter(&|x| {
                let p = 100.0 * (1.0 - 10f64.powf(-x));
                format!("p{}", (p * 1000.0).round() / 1000.0)
            })
            .y_desc("µs")
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, (name, pts)) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

fn md_table_to_html(md: &str) -> String {
    let mut o = String::from("<table>\n");
    for (i, line) in md.lines().enumerate() {
        if i == 1 {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let tag = if i == 0 { "th" } else { "td" };
        o.push_str("<tr>");
        for c in cells {
            let _ = write!(o, "<{tag}>{}</{tag}>", html_escape(c));
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</table>\n");
    o
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `report.html`: the tables plus one percentile plot per scenario.
pub(crate) fn html(r: &Results) -> String {
    let mut o = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Harness report</title>\
         <style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#eee}</style></head><body>\n",
    );
    let md = markdown(r);
    let head: String = md.split("\n## ").next().unwrap_or("").to_owned();
    for line in head.lines() {
        if let Some(t) = line.strip_prefix("# ") {
            let _ = writeln!(o, "<h1>{}</h1>", html_escape(t));
        } else if let Some(t) = line.strip_prefix("- ") {
            let _ = writeln!(o, "<div>• {}</div>", html_escape(t));
        } else if !line.is_empty() {
            let _ = writeln!(o, "<p>{}</p>", html_escape(line));
        }
    }
    for s in &r.scenarios {
        let _ = writeln!(
            o,
            "<h2>{}</h2><p>{} — {} s per round.</p>",
            s.name,
            html_escape(&s.what),
            s.duration_secs
        );
        o.push_str(&md_table_to_html(&scenario_table(s)));
        o.push_str("<ul>");
        for l in ratio_lines(s) {
            let _ = write!(o, "<li>{}</li>", html_escape(&l));
        }
        for u in &s.unavailable {
            let _ = write!(
                o,
                "<li>unavailable: <b>{}</b> — {}</li>",
                u.target,
                html_escape(&u.reason)
            );
        }
        o.push_str("</ul>\n");
        match plot(s) {
            Ok(svg) => o.push_str(&svg),
            Err(e) => {
                let _ = writeln!(o, "<p>(plot failed: {})</p>", html_escape(&e));
            }
        }
    }
    o.push_str("</body></html>\n");
    o
}

/// Writes report.md and report.html next to results.json.
pub(crate) fn write_all(r: &Results, dir: &Path) -> Result<(), String> {
    let w = |name: &str, body: String| {
        std::fs::write(dir.join(name), body)
            .map_err(|e| format!("{}: {e}", dir.join(name).display()))
    };
    w("report.md", markdown(r))?;
    w("report.html", html(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_synthetic_results() {
        let mut r = crate::gate::tests::synthetic(&[15.0, 15.5, 14.5]);
        let mut h = stats::new_histogram();
        for v in 1..1000 {
            stats::record_us(&mut h, v);
        }
        r.scenarios[0].targets[2].merged_histogram = stats::to_v2_base64(&h);
        let md = markdown(&r);
        assert!(md.contains("| proxy |"), "{md}");
        assert!(md.contains("proxy/traefik CPU per request: 0.375"), "{md}");
        let html = html(&r);
        assert!(html.contains("<svg"));
        assert!(terminal(&r).contains("small-get"));
    }
}
