//! Reading Prometheus text: the cumulative buckets of one histogram
//! (summed over label sets) and a quantile of the observations between two
//! scrapes. Used for the proxy's `proxy_router_decision_seconds`.
//!
//! Pure functions over scraped text.

use std::collections::BTreeMap;

/// Cumulative `(le, count)` buckets of histogram `name`, summed over label sets.
pub(crate) fn buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{");
    let mut acc: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once('}') else {
            continue;
        };
        let Some(le) = labels
            .split(',')
            .find_map(|kv| kv.trim().strip_prefix("le="))
        else {
            continue;
        };
        let le = le.trim_matches('"');
        let le: f64 = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap_or(f64::NAN)
        };
        let Ok(v) = value.split_whitespace().next().unwrap_or("").parse::<f64>() else {
            continue;
        };
        if le.is_nan() {
            continue;
        }
        let e = acc.entry(le.to_bits()).or_insert((le, 0.0));
        e.1 += v;
    }
    let mut v: Vec<(f64, f64)> = acc.into_values().collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

/// The `q` quantile of the observations between two bucket snapshots: the
/// upper bound of the bucket holding it (the largest finite bound for +Inf).
pub(crate) fn quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> Option<f64> {
    let delta: Vec<(f64, f64)> = after
        .iter()
        .map(|&(le, c)| {
            let c0 = before.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
            (le, c - c0)
        })
        .collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let hit = delta.iter().find(|d| d.1 >= rank)?;
    if hit.0.is_finite() {
        Some(hit.0)
    } else {
        delta.iter().rev().find(|d| d.0.is_finite()).map(|d| d.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_p99_from_prometheus_buckets() {
        let before = "proxy_router_decision_seconds_bucket{le=\"0.00001\"} 10\n\
                      proxy_router_decision_seconds_bucket{le=\"0.00005\"} 10\n\
                      proxy_router_decision_seconds_bucket{le=\"+Inf\"} 10\n";
        let after = "# TYPE proxy_router_decision_seconds histogram\n\
                     proxy_router_decision_seconds_bucket{entrypoint=\"web\",le=\"0.00001\"} 990\n\
                     proxy_router_decision_seconds_bucket{entrypoint=\"web\",le=\"0.00005\"} 1009\n\
                     proxy_router_decision_seconds_bucket{entrypoint=\"web\",le=\"+Inf\"} 1010\n\
                     proxy_router_decision_seconds_sum 0.01\n";
        let a = buckets(before, "proxy_router_decision_seconds");
        let b = buckets(after, "proxy_router_decision_seconds");
        assert_eq!(b.len(), 3);
        // 1000 new observations: 980 <= 10 µs, 19 more <= 50 µs, 1 above.
        assert_eq!(quantile(&a, &b, 0.5), Some(0.00001));
        assert_eq!(quantile(&a, &b, 0.99), Some(0.00005));
        assert_eq!(quantile(&a, &b, 0.9999), Some(0.00005));
        assert_eq!(quantile(&b, &b, 0.99), None);
    }
}
