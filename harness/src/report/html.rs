//! `report.html`: the markdown report's tables as HTML plus a
//! latency-by-percentile plot per scenario (SVG, plotters).
//!
//! Computed from `results.json` alone, like the rest of the report.

use std::fmt::Write as _;

use plotters::prelude::*;

use crate::results::{Results, ScenarioResult};
use crate::stats;

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
            Some((super::row_label(s, t), pts))
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
    let md = super::markdown(r);
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
            "<h2>{}</h2><p>{}</p>",
            s.name,
            html_escape(&super::scenario_line(s))
        );
        o.push_str(&md_table_to_html(&super::scenario_table(s)));
        let ratios = super::ratio_table(r, s);
        if !ratios.is_empty() {
            o.push_str(&md_table_to_html(&ratios));
        }
        o.push_str("<ul>");
        for l in super::notes(r, s) {
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
