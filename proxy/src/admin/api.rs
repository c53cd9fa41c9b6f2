//! `api@internal`: Traefik 3.7's JSON API under `api.basePath`, the same
//! paths, shapes, filters (`search`, `status`, `serviceName`,
//! `middlewareName`), sorting (`sortBy`, `direction`) and pagination
//! (`page`, `per_page`, `X-Next-Page`) as `pkg/api`, the dashboard's
//! routes when `api.dashboard` is on, and the proxy's own additions under
//! paths Traefik does not have: `/api/explain`, `/api/proxy/live`,
//! `/api/proxy/reloads`.
//!
//! Runs on the blocking pool ([`super::off_loop`]), reading one snapshot.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::SystemTime;

use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use serde_json::{Value, json};

use super::json::{Query, go_duration, unescape};
use super::view::{self, Runtime, provider};
use super::{Admin, certificates, dashboard, explain};
use crate::config::{EncodedCharacters, UnderscoreHeaders};
use crate::control::ReloadResult;
use crate::observe::DecisionStats;
use crate::observe::access_log::rfc3339_nano as rfc3339;
use crate::observe::decision::bucket_upper_nanos;
use crate::snapshot::Snapshot;

/// A request to the API, owned so that it can move to the blocking pool.
#[derive(Debug)]
pub(super) struct Call {
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) query: Option<String>,
    pub(super) forwarded_prefix: Option<String>,
}

const JSON: &str = "application/json";

fn json_response(status: StatusCode, v: &Value) -> Response<Bytes> {
    // Go's json.Encoder ends the document with a newline.
    let mut body = serde_json::to_vec(v).unwrap_or_default();
    body.push(b'\n');
    let mut resp = Response::new(Bytes::from(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static(JSON));
    resp
}

/// An error as Traefik's `writeError` writes it: `{"message": ...}` sent
/// by Go's `http.Error` (plain-text content type, `nosniff`).
fn error(status: StatusCode, message: &str) -> Response<Bytes> {
    let mut body = serde_json::to_vec(&json!({ "message": message })).unwrap_or_default();
    body.push(b'\n');
    let mut resp = Response::new(Bytes::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    resp
}

fn not_found() -> Response<Bytes> {
    let mut resp = Response::new(Bytes::from_static(b"404 page not found\n"));
    *resp.status_mut() = StatusCode::NOT_FOUND;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The answer to `call`.
pub(super) fn answer(admin: &Admin, call: &Call) -> Response<Bytes> {
    let base = admin.api.base_path.trim_end_matches('/');
    let Some(rest) = call.path.strip_prefix(base) else {
        return not_found();
    };
    let rest = if rest.is_empty() { "/" } else { rest };
    let get = call.method == Method::GET || call.method == Method::HEAD;

    if admin.api.dashboard {
        // Traefik's dashboard routes on the API router: the base path
        // redirects to the page, which is served with its assets.
        if rest == "/" && call.path.ends_with('/') == admin.api.base_path.ends_with('/') && get {
            let prefix = call
                .forwarded_prefix
                .as_deref()
                .filter(|p| !p.contains("://") && !p.starts_with("//"))
                .unwrap_or("")
                .trim_end_matches('/');
            let mut resp = Response::new(Bytes::new());
            *resp.status_mut() = StatusCode::FOUND;
            if let Ok(v) = header::HeaderValue::from_str(&format!("{prefix}{base}/dashboard/")) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            return resp;
        }
        if let Some(file) = rest.strip_prefix("/dashboard/")
            && get
        {
            return dashboard::serve(&format!("/{file}"), call.method == Method::HEAD);
        }
    }

    let Some(api_path) = rest.strip_prefix("/api/") else {
        return not_found();
    };
    if !get {
        // gorilla/mux: the path exists, not with this method.
        let mut resp = Response::new(Bytes::new());
        *resp.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        return resp;
    }
    let query = Query::parse(call.query.as_deref());
    let snap = admin.snapshot.load_full();
    let rt = || view::runtime(&admin.static_cfg, &snap);
    let segments: Vec<&str> = api_path.split('/').collect();
    match segments.as_slice() {
        ["version"] => version(admin),
        ["overview"] => overview(admin, &rt(), &snap),
        ["rawdata"] => rawdata(&rt()),
        ["support-dump"] => support_dump(admin, &rt()),
        ["entrypoints"] => list(&query, entrypoints(admin), Kind::Plain),
        ["entrypoints", id] => one(id, "entry point", |id| {
            entrypoints(admin)
                .into_iter()
                .find(|e| e["name"].as_str() == Some(id))
        }),
        ["http", "routers"] => list(
            &query,
            filtered(&query, &rt().routers, Kind::Router),
            Kind::Router,
        ),
        ["http", "routers", id] => one(id, "router", |id| {
            rt().routers.get(id).map(|v| represent(id, v, Kind::Router))
        }),
        ["http", "services"] => list(
            &query,
            filtered(&query, &rt().services, Kind::Service),
            Kind::Service,
        ),
        ["http", "services", id] => one(id, "service", |id| {
            rt().services
                .get(id)
                .map(|v| represent(id, v, Kind::Service))
        }),
        ["http", "middlewares"] => list(
            &query,
            filtered(&query, &rt().middlewares, Kind::Middleware),
            Kind::Middleware,
        ),
        ["http", "middlewares", id] => one(id, "middleware", |id| {
            rt().middlewares
                .get(id)
                .map(|v| represent(id, v, Kind::Middleware))
        }),
        // No TCP or UDP routing yet: empty, as Traefik answers without
        // them.
        ["tcp", "routers" | "services" | "middlewares"] | ["udp", "routers" | "services"] => {
            list(&query, Vec::new(), Kind::Plain)
        }
        ["certificates"] => {
            let (search, status) = (query.get("search"), query.get("status"));
            let certs = certificates::all(&snap, SystemTime::now())
                .into_iter()
                .filter(|c| certificates::keep(c, search, status))
                .collect();
            list(&query, certs, Kind::Certificate)
        }
        ["tcp", kind @ ("routers" | "services" | "middlewares"), id]
        | ["udp", kind @ ("routers" | "services"), id] => {
            let what = kind.trim_end_matches('s');
            one(id, what, |_| None)
        }
        ["certificates", id] => one(id, "certificate", |id| {
            certificates::all(&snap, SystemTime::now())
                .into_iter()
                .find(|c| c["name"] == id)
        }),
        ["explain"] => explain::api(&admin.static_cfg, &snap, &query),
        ["proxy", "live"] => live(admin),
        ["proxy", "reloads"] => reloads(admin),
        _ => not_found(),
    }
}

/// A single element by its (escaped) id: the element, 400 for an id that
/// does not decode, 404 with Traefik's message when it does not exist.
fn one(escaped: &str, what: &str, find: impl FnOnce(&str) -> Option<Value>) -> Response<Bytes> {
    let Some(id) = unescape(escaped, false) else {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("unable to decode {what}ID {escaped:?}"),
        );
    };
    match find(&id) {
        Some(v) => json_response(StatusCode::OK, &v),
        None => error(StatusCode::NOT_FOUND, &format!("{what} not found: {id}")),
    }
}

// === lists ===

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Router,
    Service,
    Middleware,
    /// Entrypoints and the empty lists: no filters, sorted by name.
    Plain,
    /// Certificates: sorted by common name (`name`, `cn`), `status`,
    /// `issuer` or `validUntil`.
    Certificate,
}

/// `v` (an object of [`Runtime`]) as the list and single-element endpoints
/// show it: with `name`, `provider` and the kind's extra fields.
fn represent(name: &str, v: &Value, kind: Kind) -> Value {
    let mut out = v.clone();
    out["name"] = json!(name);
    out["provider"] = json!(provider(name));
    match kind {
        Kind::Router => {
            if let Some(p) = v["priority"].as_i64() {
                out["priorityStr"] = json!(p.to_string());
            }
        }
        Kind::Service => {
            if let Some(t) = view::service_type(v) {
                out["type"] = json!(t);
            }
        }
        Kind::Middleware => {
            if let Some(t) = view::middleware_type(v) {
                out["type"] = json!(t);
            }
        }
        Kind::Plain | Kind::Certificate => {}
    }
    out
}

/// The elements of `map` kept by the query's criteria (Traefik's
/// `searchCriterion`), represented for a list.
fn filtered(query: &Query, map: &BTreeMap<String, Value>, kind: Kind) -> Vec<Value> {
    let search = query.get("search").to_lowercase();
    let status = query.get("status");
    let service = query.get("serviceName");
    let middleware = query.get("middlewareName");
    map.iter()
        .filter(|(name, v)| {
            let s = |k: &str| v[k].as_str().unwrap_or("");
            let status_ok = status.is_empty() || s("status").eq_ignore_ascii_case(status);
            let in_search = |text: &str| search.is_empty() || text.to_lowercase().contains(&search);
            match kind {
                Kind::Router => {
                    let svc = s("service");
                    let service_ok = service.is_empty()
                        || if svc.contains('@') {
                            service == svc
                        } else {
                            service.split('@').next() == Some(svc)
                        };
                    let middleware_ok = middleware.is_empty()
                        || v["middlewares"]
                            .as_array()
                            .is_some_and(|ms| ms.iter().any(|m| m.as_str() == Some(middleware)));
                    status_ok
                        && (in_search(s("rule")) || in_search(name))
                        && service_ok
                        && middleware_ok
                }
                _ => status_ok && in_search(name),
            }
        })
        .map(|(name, v)| represent(name, v, kind))
        .collect()
}

/// Sorts (`sortBy`, `direction`) and pages (`page`, `per_page`) `items`,
/// as Traefik does.
fn list(query: &Query, mut items: Vec<Value>, kind: Kind) -> Response<Bytes> {
    sort(query, &mut items, kind);
    let int = |key: &str, default: usize| -> Result<usize, String> {
        let raw = query.get(key);
        if raw.is_empty() {
            return Ok(default);
        }
        match raw.parse::<i64>() {
            Ok(v) if v > 0 => Ok(v as usize),
            Ok(v) => Err(format!("invalid request: {key}: {v}")),
            Err(_) => Err(format!("invalid request: {key}: 0")),
        }
    };
    let paged = int("per_page", 100).and_then(|per_page| {
        let page = int("page", 1)?;
        let start = (page - 1).saturating_mul(per_page);
        if start != 0 && start >= items.len() {
            return Err(format!(
                "invalid request: page: {page}, per_page: {per_page}"
            ));
        }
        let end = start.saturating_add(per_page).min(items.len());
        let next = if page.saturating_mul(per_page) < items.len() {
            page + 1
        } else {
            1
        };
        Ok((start, end, next))
    });
    match paged {
        Ok((start, end, next)) => {
            let mut resp = json_response(StatusCode::OK, &Value::Array(items[start..end].to_vec()));
            resp.headers_mut()
                .insert("x-next-page", header::HeaderValue::from(next as u64));
            resp
        }
        Err(e) => error(StatusCode::BAD_REQUEST, &e),
    }
}

fn sort(query: &Query, items: &mut [Value], kind: Kind) {
    let by = query.get("sortBy");
    let desc = query.get("direction") == "desc";
    let field: &str = match (kind, by) {
        (Kind::Router, "provider" | "priority" | "status" | "rule" | "service" | "entryPoints") => {
            by
        }
        (Kind::Service, "type" | "servers" | "provider" | "status") => by,
        (Kind::Middleware, "type" | "provider" | "status") => by,
        (Kind::Certificate, "status") => by,
        (Kind::Certificate, "issuer") => "issuer",
        (Kind::Certificate, "validUntil") => "notAfter",
        (Kind::Certificate, _) => "commonName",
        _ => "name",
    };
    // Traefik breaks ties by the name it sorts by: a certificate's common
    // name (then its fingerprint here, so the order is total).
    let tie = |v: &Value| -> (String, String) {
        let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
        match kind {
            Kind::Certificate => (s("commonName"), s("name")),
            _ => (s("name"), String::new()),
        }
    };
    // Numbers for the numeric fields (0 when absent), text for the others:
    // one kind per field, so the order is total.
    let number = |v: &Value| -> i64 {
        match field {
            "entryPoints" => v["entryPoints"].as_array().map_or(0, Vec::len) as i64,
            "servers" => v["loadBalancer"]["servers"].as_array().map_or(0, Vec::len) as i64,
            _ => v[field].as_i64().unwrap_or(0),
        }
    };
    let numeric = matches!(field, "priority" | "entryPoints" | "servers");
    let cmp = |a: &Value, b: &Value| -> Ordering {
        let by_key = if numeric {
            number(a).cmp(&number(b))
        } else {
            let text = |v: &Value| {
                let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
                match field {
                    // Go's `issuer()`: the organisation, else the name.
                    "issuer" if !s("issuerOrg").is_empty() => s("issuerOrg"),
                    "issuer" => s("issuerCN"),
                    _ => s(field),
                }
            };
            text(a).cmp(&text(b))
        };
        let ties = || {
            let t = tie(a).cmp(&tie(b));
            if desc { t.reverse() } else { t }
        };
        let by_key = if desc { by_key.reverse() } else { by_key };
        by_key.then_with(ties)
    };
    items.sort_by(cmp);
}

// === the other endpoints ===

fn version(admin: &Admin) -> Response<Bytes> {
    let mut v = json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "Codename": "proxy",
        "startDate": rfc3339(admin.started),
    });
    if admin.api.disable_dashboard_ad {
        v["disableDashboardAd"] = json!(true);
    }
    if !admin.api.dashboard_name.is_empty() {
        v["dashboardName"] = json!(admin.api.dashboard_name);
    }
    let mut resp = json_response(StatusCode::OK, &v);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    resp
}

fn section(map: &BTreeMap<String, Value>) -> Value {
    let count = |s: &str| map.values().filter(|v| v["status"] == s).count();
    json!({"total": map.len(), "warnings": count("warning"), "errors": count(view::DISABLED)})
}

fn overview(admin: &Admin, rt: &Runtime, snap: &Snapshot) -> Response<Bytes> {
    let zero = json!({"total": 0, "warnings": 0, "errors": 0});
    let cfg = &admin.static_cfg;
    let mut providers = Vec::new();
    // In the order of Traefik's `static.Providers` fields.
    let p = &cfg.providers;
    for (on, name) in [
        (p.file.is_some(), "File"),
        (p.etcd.is_some(), "Etcd"),
        (p.redis.is_some(), "Redis"),
        (p.http.is_some(), "HTTP"),
    ] {
        if on {
            providers.push(name);
        }
    }
    let v = json!({
        "http": {
            "routers": section(&rt.routers),
            "services": section(&rt.services),
            "middlewares": section(&rt.middlewares),
        },
        "tcp": {"routers": zero, "services": zero, "middlewares": zero},
        "udp": {"routers": zero, "services": zero},
        "certificates": certificates::section(&certificates::all(snap, SystemTime::now())),
        "features": {
            "tracing": "",
            "metrics": if cfg.metrics.prometheus.is_some() { "Prometheus" } else { "" },
            "accessLog": cfg.access_log.is_some(),
        },
        "providers": providers,
    });
    json_response(StatusCode::OK, &v)
}

fn rawdata(rt: &Runtime) -> Response<Bytes> {
    json_response(StatusCode::OK, &rawdata_value(rt))
}

fn rawdata_value(rt: &Runtime) -> Value {
    let mut v = json!({});
    for (key, map) in [
        ("routers", &rt.routers),
        ("middlewares", &rt.middlewares),
        ("services", &rt.services),
    ] {
        if !map.is_empty() {
            v[key] = json!(map);
        }
    }
    v
}

/// Traefik sends a gzipped tar of its static and runtime configuration;
/// the proxy sends the same two documents as one JSON object.
fn support_dump(admin: &Admin, rt: &Runtime) -> Response<Bytes> {
    let v = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "entryPoints": entrypoints(admin),
        "runtime": rawdata_value(rt),
    });
    let mut resp = json_response(StatusCode::OK, &v);
    resp.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        header::HeaderValue::from_static("attachment; filename=support-dump.json"),
    );
    resp
}

/// The entrypoints as Traefik's static `EntryPoint` marshals them.
fn entrypoints(admin: &Admin) -> Vec<Value> {
    admin
        .static_cfg
        .entry_points
        .iter()
        .map(|ep| {
            let t = &ep.transport;
            let mut life = json!({"graceTimeOut": go_duration(t.life_cycle.grace_time_out)});
            if !t.life_cycle.request_accept_grace_timeout.is_zero() {
                life["requestAcceptGraceTimeout"] =
                    json!(go_duration(t.life_cycle.request_accept_grace_timeout));
            }
            let rt = &t.responding_timeouts;
            let mut timeouts = json!({});
            for (k, d) in [
                ("readTimeout", rt.read_timeout),
                ("writeTimeout", rt.write_timeout),
                ("idleTimeout", rt.idle_timeout),
            ] {
                if !d.is_zero() {
                    timeouts[k] = json!(go_duration(d));
                }
            }
            let mut transport = json!({"lifeCycle": life, "respondingTimeouts": timeouts});
            if t.keep_alive_max_requests > 0 {
                transport["keepAliveMaxRequests"] = json!(t.keep_alive_max_requests);
            }
            if !t.keep_alive_max_time.is_zero() {
                transport["keepAliveMaxTime"] = json!(go_duration(t.keep_alive_max_time));
            }
            let fh = &ep.forwarded_headers;
            let mut forwarded = json!({});
            if fh.insecure {
                forwarded["insecure"] = json!(true);
            }
            if !fh.trusted_ips.is_empty() {
                let ips: Vec<String> = fh.trusted_ips.iter().map(ToString::to_string).collect();
                forwarded["trustedIPs"] = json!(ips);
            }
            if !fh.connection.is_empty() {
                forwarded["connection"] = json!(fh.connection);
            }
            if fh.not_append_x_forwarded_for {
                forwarded["notAppendXForwardedFor"] = json!(true);
            }
            let mut http =
                json!({"sanitizePath": ep.sanitize_path, "maxHeaderBytes": ep.max_header_bytes});
            if ep.encode_query_semicolons {
                http["encodeQuerySemicolons"] = json!(true);
            }
            if let Some(denied) = &ep.encoded_characters {
                // Go's `omitempty`: only the allowed ones are shown.
                let mut e = serde_json::Map::new();
                for (key, b) in EncodedCharacters::KEYS {
                    if !denied.contains(&b) {
                        e.insert(key.to_owned(), json!(true));
                    }
                }
                http["encodedCharacters"] = Value::Object(e);
            }
            match ep.underscore_headers {
                UnderscoreHeaders::Keep => {}
                UnderscoreHeaders::Delete => http["underscoreHeadersStrategy"] = json!("delete"),
                UnderscoreHeaders::Reject => http["underscoreHeadersStrategy"] = json!("reject"),
            }
            let mut v = json!({
                "address": ep.address,
                "transport": transport,
                "forwardedHeaders": forwarded,
                "http": http,
                "http2": {
                    "maxConcurrentStreams": ep.http2.max_concurrent_streams,
                    "maxDecoderHeaderTableSize": ep.http2.max_decoder_header_table_size,
                    "maxEncoderHeaderTableSize": ep.http2.max_encoder_header_table_size,
                },
                "udp": {"timeout": "3s"},
                "name": ep.name,
            });
            if ep.as_default {
                v["asDefault"] = json!(true);
            }
            v
        })
        .collect()
}

/// Ours: the figures the dashboard draws, from what the metrics already
/// keep (`metrics` says whether `metrics.prometheus` is on; without it
/// there are no per-router figures, only the router decision times).
fn live(admin: &Admin) -> Response<Bytes> {
    // The decision timer's fine buckets, folded into a dozen for drawing:
    // (upper bound in ns, decisions since start); the last is unbounded.
    const BOUNDS_NS: [u64; 11] = [
        250,
        500,
        1_000,
        2_000,
        5_000,
        10_000,
        20_000,
        50_000,
        100_000,
        1_000_000,
        u64::MAX,
    ];
    let mut folded = [0u64; BOUNDS_NS.len()];
    for (i, n) in DecisionStats::global().snapshot().iter().enumerate() {
        let upper = bucket_upper_nanos(i);
        let slot = BOUNDS_NS
            .iter()
            .position(|&b| upper <= b)
            .unwrap_or(BOUNDS_NS.len() - 1);
        folded[slot] += n;
    }
    let decision: Vec<Value> = BOUNDS_NS
        .iter()
        .zip(folded)
        .map(|(b, n)| json!([b, n]))
        .collect();
    let prometheus = admin.static_cfg.metrics.prometheus.as_ref();
    let mut v = json!({
        "metrics": prometheus.is_some(),
        "routerLabels": prometheus.is_some_and(|p| p.add_routers_labels),
        "serviceLabels": prometheus.is_some_and(|p| p.add_services_labels),
        "decisionNanos": decision,
        "at": rfc3339(std::time::SystemTime::now()),
    });
    if let Some(m) = &admin.metrics {
        let figures = m.live_figures();
        v["routers"] = json!(figures.routers);
        v["services"] = json!(figures.services);
    }
    json_response(StatusCode::OK, &v)
}

/// Ours: the reload history, oldest first.
fn reloads(admin: &Admin) -> Response<Bytes> {
    let events: Vec<Value> = admin
        .history
        .events()
        .iter()
        .map(|e| {
            let mut v = json!({
                "generation": e.generation,
                "at": rfc3339(e.at),
                "durationMs": e.took.as_secs_f64() * 1e3,
            });
            match &e.result {
                ReloadResult::Applied { disabled } => {
                    v["result"] = json!("applied");
                    v["disabled"] = json!(disabled);
                }
                ReloadResult::Rejected { errors } => {
                    v["result"] = json!("rejected");
                    v["errors"] = json!(errors);
                }
            }
            v
        })
        .collect();
    json_response(StatusCode::OK, &Value::Array(events))
}
