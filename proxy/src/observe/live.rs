//! The live figures the dashboard shows, read from what the metrics store
//! already keeps: per router and per service, requests by status class and
//! the request-duration histogram, summed over the other labels.
//!
//! Read by the API only (a copy of the series handles under the store's
//! control-plane lock, as a scrape takes it); nothing here adds work to a
//! request. Rates and percentiles are the reader's: the difference of two
//! readings.

use std::collections::BTreeMap;

use super::MetricsHandle;
use super::names;

/// One router's or service's figures since the proxy started (or since
/// its series appeared).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Figures {
    /// Requests answered.
    pub requests: u64,
    /// Requests per status class: `"2xx"`, `"4xx"`...
    pub codes: BTreeMap<String, u64>,
    /// Cumulative request-duration buckets: `(upper bound in seconds,
    /// requests at or below it)`.
    pub buckets: Vec<(f64, u64)>,
    /// Requests in the histogram (the `+Inf` bucket).
    pub count: u64,
    /// Their summed duration in seconds.
    pub sum: f64,
}

/// Every router's and service's figures, by name with provider.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LiveFigures {
    /// By router (`name@file`), from `proxy_router_*` (needs
    /// `metrics.prometheus.addRoutersLabels`).
    pub routers: BTreeMap<String, Figures>,
    /// By service, from `proxy_service_*` (`addServicesLabels`, on by
    /// default).
    pub services: BTreeMap<String, Figures>,
}

fn label<'a>(key: &'a metrics::Key, name: &str) -> Option<&'a str> {
    key.labels().find(|l| l.key() == name).map(|l| l.value())
}

fn class(code: &str) -> String {
    match code.as_bytes().first() {
        Some(c @ b'1'..=b'5') => format!("{}xx", *c as char),
        _ => "other".to_owned(),
    }
}

/// Which figures a series feeds: the map and the label naming its owner.
fn owner(key: &metrics::Key) -> Option<(bool, bool, &str)> {
    let (router, total) = match key.name() {
        names::ROUTER_REQUESTS_TOTAL => (true, true),
        names::ROUTER_REQUEST_DURATION => (true, false),
        names::SERVICE_REQUESTS_TOTAL => (false, true),
        names::SERVICE_REQUEST_DURATION => (false, false),
        _ => return None,
    };
    let name = label(
        key,
        if router {
            names::LABEL_ROUTER
        } else {
            names::LABEL_SERVICE
        },
    )?;
    Some((router, total, name))
}

impl LiveFigures {
    fn figures(&mut self, router: bool, name: &str) -> &mut Figures {
        let map = if router {
            &mut self.routers
        } else {
            &mut self.services
        };
        map.entry(name.to_owned()).or_default()
    }
}

impl MetricsHandle {
    /// The live figures of every router and service with series.
    pub fn live_figures(&self) -> LiveFigures {
        let (counters, histograms) = self.store.series();
        let mut out = LiveFigures::default();
        for (key, value) in &counters {
            if let Some((router, true, name)) = owner(key) {
                let f = out.figures(router, name);
                f.requests += value;
                let code = label(key, names::LABEL_CODE).unwrap_or("");
                *f.codes.entry(class(code)).or_default() += value;
            }
        }
        for (key, h) in &histograms {
            if let Some((router, false, name)) = owner(key) {
                let snap = h.snapshot();
                let f = out.figures(router, name);
                if f.buckets.is_empty() {
                    f.buckets = snap.buckets.iter().map(|&(le, _)| (le, 0)).collect();
                }
                for (mine, (_, n)) in f.buckets.iter_mut().zip(&snap.buckets) {
                    mine.1 += n;
                }
                f.count += snap.count;
                f.sum += snap.sum;
            }
        }
        out
    }
}
