//! Traefik's internal services and the endpoints the proxy answers itself:
//! `ping@internal`, `prometheus@internal`, `noop@internal`, `api@internal`
//! (the JSON API, `api`), `dashboard@internal` (the embedded page,
//! `dashboard`), and explain (`explain`, ours alone).
//!
//! Two ways in, as in Traefik:
//! - [`AdminRoutes`]: what Traefik's internal provider routes on an
//!   entrypoint by itself (`/ping` and `/metrics` on theirs, and with
//!   `api.insecure` the API and the dashboard on `traefik`). These routers
//!   carry priorities above any user router's, so answering them before
//!   routing is the same decision; checked per request on the entrypoints
//!   that carry them: a few string comparisons, no allocation unless one
//!   is hit.
//! - a router whose service is `name@internal`: the router's middlewares
//!   run, then [`serve_internal`] answers in the service's place.
//!
//! Nothing here takes a lock a data-plane request takes: the API reads the
//! published snapshot (one atomic load), the reload history (one atomic
//! load) and the metric handles (copied under the store's control-plane
//! lock, as a scrape does). JSON rendering runs on the worker's blocking
//! pool, off its event loop.

mod api;
mod certificates;
mod dashboard;
pub mod explain;
pub(crate) mod json;
mod view;

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, header};

use crate::config::{ApiConfig, StaticConfig};
use crate::control::ReloadHistory;
use crate::forward::ProxyBody;
use crate::listener::ConnCtx;
use crate::observe::{self, MetricsHandle};
use crate::snapshot::SharedSnapshot;

/// An internal service a router can name (`<name>@internal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Internal {
    /// `api@internal`: the JSON API (and the dashboard, when on).
    Api,
    /// `dashboard@internal`: the dashboard's page and assets.
    Dashboard,
    /// `noop@internal`: answers 418, for routers that only redirect.
    Noop,
    /// `ping@internal`: answers `OK`.
    Ping,
    /// `prometheus@internal`: the Prometheus text.
    Prometheus,
}

impl Internal {
    /// The internal service `service` (`api@internal`) names.
    pub fn from_service(service: &str) -> Option<Self> {
        Some(match service.strip_suffix("@internal")? {
            "api" => Internal::Api,
            "dashboard" => Internal::Dashboard,
            "noop" => Internal::Noop,
            "ping" => Internal::Ping,
            "prometheus" => Internal::Prometheus,
            _ => return None,
        })
    }
}

/// What the internal services answer from: the configuration being
/// served and what the proxy records about itself.
pub struct Admin {
    static_cfg: Arc<StaticConfig>,
    api: ApiConfig,
    snapshot: SharedSnapshot,
    metrics: Option<MetricsHandle>,
    history: Arc<ReloadHistory>,
    started: SystemTime,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// The internal services of a proxy serving `snapshot` with
    /// `static_cfg`.
    pub fn new(
        static_cfg: Arc<StaticConfig>,
        snapshot: SharedSnapshot,
        metrics: Option<MetricsHandle>,
        history: Arc<ReloadHistory>,
    ) -> Arc<Self> {
        Arc::new(Admin {
            api: static_cfg.api.clone().unwrap_or_default(),
            static_cfg,
            snapshot,
            metrics,
            history,
            started: SystemTime::now(),
        })
    }

    /// The answer of internal service `internal` to a request for `uri`.
    /// `headers` are the request's (the dashboard's redirect reads
    /// `X-Forwarded-Prefix`).
    pub async fn answer(
        self: &Arc<Self>,
        internal: Internal,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Response<Bytes> {
        let head = method == Method::HEAD;
        match internal {
            Internal::Noop => empty(StatusCode::IM_A_TEAPOT),
            Internal::Ping => observe::admin_response("/ping", method, None, true),
            Internal::Prometheus => {
                let admin = Arc::clone(self);
                let method = method.clone();
                off_loop(move || {
                    observe::admin_response("/metrics", &method, admin.metrics.as_ref(), false)
                })
                .await
            }
            Internal::Dashboard => dashboard::serve(uri.path(), head),
            Internal::Api => {
                let admin = Arc::clone(self);
                let call = api::Call {
                    method: method.clone(),
                    path: uri.path().to_owned(),
                    query: uri.query().map(str::to_owned),
                    forwarded_prefix: headers
                        .get("x-forwarded-prefix")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                };
                off_loop(move || api::answer(&admin, &call)).await
            }
        }
    }
}

/// Runs `render` on the worker's blocking pool, so a large configuration's
/// JSON never holds up the connections on the worker's event loop.
async fn off_loop(render: impl FnOnce() -> Response<Bytes> + Send + 'static) -> Response<Bytes> {
    tokio::task::spawn_blocking(render)
        .await
        .unwrap_or_else(|_| empty(StatusCode::INTERNAL_SERVER_ERROR))
}

fn empty(status: StatusCode) -> Response<Bytes> {
    let mut resp = Response::new(Bytes::new());
    *resp.status_mut() = status;
    resp
}

/// The answer of internal service `internal`, named by the router the
/// request was routed to (its middlewares have run).
pub async fn serve_internal<B>(
    ctx: &ConnCtx,
    internal: Internal,
    req: &Request<B>,
) -> Response<ProxyBody> {
    let Some(admin) = &ctx.shared.admin else {
        return empty(StatusCode::NOT_FOUND).map(ProxyBody::full);
    };
    admin
        .answer(internal, req.method(), req.uri(), req.headers())
        .await
        .map(ProxyBody::full)
}

// === the internal provider's routers on their entrypoints ===

#[derive(Debug)]
struct Inner {
    metrics: Option<MetricsHandle>,
    ping: bool,
    /// `api.insecure` on this (the `traefik`) entrypoint.
    api: Option<Arc<Admin>>,
}

/// The internal endpoints served on one entrypoint (none on most).
#[derive(Clone, Debug, Default)]
pub struct AdminRoutes {
    inner: Option<Arc<Inner>>,
}

/// Which internal router took a request, by Traefik's priorities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hit {
    /// `ping@internal` (`PathPrefix(/ping)`) or `prometheus@internal`
    /// (`/metrics`): answered on the spot.
    Plain,
    /// `api@internal` (`PathPrefix(/api)`, and `/debug` with
    /// `api.debug`).
    Api,
    /// `dashboard@internal` (`PathPrefix(/)`, the lowest of the three),
    /// behind its redirect of `/` and its strip of `/dashboard`.
    Dashboard,
}

impl AdminRoutes {
    /// What `static_cfg` puts on entrypoint `name`: Prometheus metrics
    /// (`metrics.prometheus.entryPoint`, unless `manualRouting`), ping
    /// (`ping.entryPoint`, unless `manualRouting`), and with
    /// `api.insecure` the API and the dashboard on `traefik`.
    pub fn for_entrypoint(
        static_cfg: &StaticConfig,
        name: &str,
        metrics: Option<MetricsHandle>,
        admin: Option<&Arc<Admin>>,
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
        let api = admin
            .filter(|_| {
                name == crate::config::INTERNAL_ENTRY_POINT
                    && static_cfg.api.as_ref().is_some_and(|a| a.insecure)
            })
            .cloned();
        if metrics.is_none() && !ping && api.is_none() {
            return Self::default();
        }
        Self {
            inner: Some(Arc::new(Inner { metrics, ping, api })),
        }
    }

    /// Which internal router takes `req` here, if one does.
    #[inline]
    pub fn hit<B>(&self, req: &Request<B>) -> Option<Hit> {
        let inner = self.inner.as_ref()?;
        let path = req.uri().path();
        // Traefik's rules for them: PathPrefix(`/metrics`), PathPrefix(`/ping`).
        if (inner.metrics.is_some() && path.starts_with("/metrics"))
            || (inner.ping && path.starts_with("/ping"))
        {
            return Some(Hit::Plain);
        }
        let api = inner.api.as_ref()?;
        if path.starts_with("/api") || (api.api.debug && path.starts_with("/debug")) {
            return Some(Hit::Api);
        }
        api.api.dashboard.then_some(Hit::Dashboard)
    }

    /// The answer of the internal router `hit` ([`AdminRoutes::hit`]).
    pub async fn serve<B>(&self, hit: Hit, req: &Request<B>) -> Response<ProxyBody> {
        let Some(inner) = self.inner.as_ref() else {
            return empty(StatusCode::NOT_FOUND).map(ProxyBody::full);
        };
        let path = req.uri().path();
        let resp = match (hit, &inner.api) {
            (Hit::Plain, _) => {
                observe::admin_response(path, req.method(), inner.metrics.as_ref(), inner.ping)
            }
            (Hit::Api, Some(admin)) => {
                admin
                    .answer(Internal::Api, req.method(), req.uri(), req.headers())
                    .await
            }
            (Hit::Dashboard, Some(_)) => dashboard_router(req),
            _ => empty(StatusCode::NOT_FOUND),
        };
        resp.map(ProxyBody::full)
    }
}

/// Traefik's `dashboard@internal` router: `dashboard_redirect` (`/` on
/// plain HTTP to `/dashboard/`, permanently), `dashboard_stripprefix`
/// (`/dashboard/`, `/dashboard`), then the dashboard's files.
fn dashboard_router<B>(req: &Request<B>) -> Response<Bytes> {
    let path = req.uri().path();
    if path == "/" {
        let host = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                req.headers()
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            });
        if let Some(host) = host {
            // Traefik's redirectRegex: 301 for GET, 308 otherwise.
            let status = if req.method() == Method::GET {
                StatusCode::MOVED_PERMANENTLY
            } else {
                StatusCode::PERMANENT_REDIRECT
            };
            let mut resp = empty(status);
            if let Ok(v) = http::HeaderValue::from_str(&format!("http://{host}/dashboard/")) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            return resp;
        }
    }
    let stripped = path
        .strip_prefix("/dashboard/")
        .or_else(|| path.strip_prefix("/dashboard"))
        .map_or_else(|| path.to_owned(), |rest| format!("/{rest}"));
    dashboard::serve(&stripped, req.method() == Method::HEAD)
}
