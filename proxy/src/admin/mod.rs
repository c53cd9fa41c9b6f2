//! Traefik's internal endpoints on their entrypoint: `/ping` and
//! `/metrics` (Prometheus text), answered before routing.
//!
//! Checked per request on the entrypoints that carry them: two string
//! comparisons, no allocation unless an endpoint is hit.

use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;

use crate::config::StaticConfig;
use crate::forward::ProxyBody;
use crate::observe::{self, MetricsHandle};

#[derive(Debug)]
struct Inner {
    metrics: Option<MetricsHandle>,
    ping: bool,
}

/// The internal endpoints served on one entrypoint (none on most).
#[derive(Clone, Debug, Default)]
pub struct AdminRoutes {
    inner: Option<Arc<Inner>>,
}

impl AdminRoutes {
    /// What `static_cfg` puts on entrypoint `name`: Prometheus metrics
    /// (`metrics.prometheus.entryPoint`, unless `manualRouting`) and ping
    /// (`ping.entryPoint`, unless `manualRouting`).
    pub fn for_entrypoint(
        static_cfg: &StaticConfig,
        name: &str,
        metrics: Option<MetricsHandle>,
    ) -> Self {
        let metrics = static_cfg
            .metrics
            .prometheus
            .as_ref()
            .filter(|p| p.entry_point == name && !p.manual_routing)
            .and(metrics);
        let ping = static_cfg
            .ping
            .as_ref()
            .is_some_and(|p| p.entry_point == name && !p.manual_routing);
        if metrics.is_none() && !ping {
            return Self::default();
        }
        Self {
            inner: Some(Arc::new(Inner { metrics, ping })),
        }
    }

    /// The response when `req` is for an internal endpoint here.
    #[inline]
    pub fn answer(&self, req: &Request<Incoming>) -> Option<http::Response<ProxyBody>> {
        let inner = self.inner.as_ref()?;
        let path = req.uri().path();
        let hit = (inner.metrics.is_some() && path == "/metrics")
            || (inner.ping && (path == "/ping" || path.starts_with("/ping/")));
        if !hit {
            return None;
        }
        let resp = observe::admin_response(path, req.method(), inner.metrics.as_ref(), inner.ping);
        Some(resp.map(ProxyBody::full))
    }
}
