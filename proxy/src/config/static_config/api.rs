//! The static `api` section: Traefik 3.7's options, its defaults
//! (`dashboard: true`, `basePath: /`) and its check of `basePath`.
//!
//! The schema only: `admin` serves the API and the dashboard from it.

use serde::Deserialize;

use super::super::decode::{At, Ctx, Schema, Spec};

/// `api`: Traefik's JSON API and dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Served on the `traefik` entrypoint by Traefik's internal routers
    /// (otherwise only through a router whose service is `api@internal`).
    pub insecure: bool,
    /// The dashboard (default on).
    pub dashboard: bool,
    /// Where the API and the dashboard are mounted (default `/`).
    pub base_path: String,
    /// Traefik serves Go's pprof and expvar under `/debug/`; the proxy
    /// answers those paths 404 (no Go runtime to profile).
    pub debug: bool,
    /// Traefik's dashboard advertisement switch (the proxy's has none); it
    /// is reported by `/api/version` as Traefik reports it.
    pub disable_dashboard_ad: bool,
    /// A name shown in the dashboard's title.
    pub dashboard_name: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            insecure: false,
            dashboard: true,
            base_path: "/".to_owned(),
            debug: false,
            disable_dashboard_ad: false,
            dashboard_name: String::new(),
        }
    }
}

/// `api` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ApiFile {
    insecure: Option<bool>,
    dashboard: Option<bool>,
    base_path: Option<At<String>>,
    debug: Option<At<bool>>,
    disable_dashboard_ad: Option<bool>,
    dashboard_name: Option<String>,
}

impl Schema for ApiFile {
    const KEYS: Spec = &[];
}

/// Traefik's `validBasePath`: a slash, then letters, digits and `/_.:~-`.
fn valid_base_path(p: &str) -> bool {
    p.starts_with('/')
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_.:~-".contains(&b))
}

/// The validated section.
pub(super) fn check(ctx: &mut Ctx, file: ApiFile) -> ApiConfig {
    let mut out = ApiConfig {
        insecure: file.insecure.unwrap_or(false),
        dashboard: file.dashboard.unwrap_or(true),
        debug: file.debug.as_ref().is_some_and(|d| d.value),
        disable_dashboard_ad: file.disable_dashboard_ad.unwrap_or(false),
        dashboard_name: file.dashboard_name.unwrap_or_default(),
        ..ApiConfig::default()
    };
    if let Some(p) = file.base_path.filter(|p| p.ok) {
        if valid_base_path(&p.value) {
            out.base_path = p.value;
        } else {
            ctx.error(
                &p.path,
                p.pos,
                format!(
                    "invalid basePath {:?}: it must start with / and hold only letters, digits and /_.:~-",
                    p.value
                ),
            );
        }
    }
    if let Some(d) = file.debug.filter(|d| d.value) {
        ctx.warn(
            &d.path,
            d.pos,
            "Go's pprof and expvar endpoints (/debug/...) do not exist here: they answer 404",
        );
    }
    out
}
