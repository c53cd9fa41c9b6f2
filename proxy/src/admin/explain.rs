//! Explain (ours alone): which router a request would reach on an
//! entrypoint, and why. `GET /api/explain?entryPoint=…&url=…&method=…
//! &header=Name:Value&clientIP=…&sni=…` answers it from the running
//! configuration; `proxy explain` from the files, offline.
//!
//! It cannot drift from what the proxy routes: the request is prepared as
//! the request path prepares it (the forwarding headers set before
//! routing, the path normalised as Traefik matches it), the answer is the
//! entrypoint's real [`Router::route`](crate::routing::Router::route), and
//! the candidates above it are the router's own entries in its own order,
//! each evaluated with its compiled rule ([`Rule::explain`]): the TLS
//! routers for an `https://` URL or a given `sni`, the others otherwise
//! (the SNI's TLS options are not checked against the router's). The internal
//! provider's routers (`ping@internal`...) come first, as their priorities
//! put them above every user router.
//!
//! Control plane only: runs on the API's blocking pool or in the CLI.

use std::net::IpAddr;

use bumpalo::Bump;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Uri};
use serde_json::{Value, json};

use super::json::Query;
use super::view::internal_router_list;
use crate::ProxyRequest;
use crate::config::StaticConfig;
use crate::forward::headers::{Forwarding, set_forwarded_headers};
use crate::ipnet::{IpSet, canonical_ip};
use crate::routing::{RuleSyntax, forward_and_routing_paths, host_without_port, parse_rule_with};
use crate::snapshot::Snapshot;

/// What to explain: a request as a client would send it.
#[derive(Debug, Clone)]
pub struct Question {
    /// The entrypoint it arrives on.
    pub entry_point: String,
    /// `http://host/path?query`, or a path with a `Host` header.
    pub url: String,
    /// `GET` unless given.
    pub method: String,
    /// Request headers, `Name: Value` pairs as sent.
    pub headers: Vec<(String, String)>,
    /// The client's address (`127.0.0.1` unless given).
    pub client_ip: Option<String>,
    /// The TLS server name, for a TLS connection.
    pub sni: Option<String>,
}

impl Question {
    /// A question from the API's query string.
    fn from_query(q: &Query) -> Result<Self, String> {
        let entry_point = q.get("entryPoint").to_owned();
        if entry_point.is_empty() {
            return Err("entryPoint is required".to_owned());
        }
        let url = q.get("url").to_owned();
        if url.is_empty() {
            return Err("url is required".to_owned());
        }
        let mut headers = Vec::new();
        for h in q.all("header") {
            let (name, value) = h
                .split_once(':')
                .ok_or_else(|| format!("header {h:?}: expected Name:Value"))?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let opt = |k: &str| Some(q.get(k).to_owned()).filter(|v| !v.is_empty());
        Ok(Question {
            entry_point,
            url,
            method: opt("method").unwrap_or_else(|| "GET".to_owned()),
            headers,
            client_ip: opt("clientIP"),
            sni: opt("sni"),
        })
    }
}

/// `/api/explain`: the answer as JSON, or 400 naming what is wrong with
/// the question.
pub(super) fn api(static_cfg: &StaticConfig, snap: &Snapshot, q: &Query) -> Response<Bytes> {
    let (status, v) = match Question::from_query(q).and_then(|q| explain(static_cfg, snap, &q)) {
        Ok(v) => (StatusCode::OK, v),
        Err(e) => (StatusCode::BAD_REQUEST, json!({ "message": e })),
    };
    let mut body = serde_json::to_vec(&v).unwrap_or_default();
    body.push(b'\n');
    let mut resp = Response::new(Bytes::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// One router considered, in the order the router tries them.
struct Candidate {
    name: String,
    priority: i64,
    rule: String,
    matched: bool,
    why: Vec<String>,
    service: Option<String>,
    middlewares: Vec<String>,
    disabled: bool,
}

impl Candidate {
    fn json(&self) -> Value {
        let mut v = json!({
            "router": self.name,
            "priority": self.priority,
            "rule": self.rule,
            "matched": self.matched,
            "why": self.why,
        });
        if self.disabled {
            v["disabled"] = json!(true);
        }
        v
    }
}

/// Explains `q` against `snap` (served with `static_cfg`).
pub fn explain(static_cfg: &StaticConfig, snap: &Snapshot, q: &Question) -> Result<Value, String> {
    let Some(ep_index) = static_cfg
        .entry_points
        .iter()
        .position(|e| e.name == q.entry_point)
    else {
        let names: Vec<&str> = static_cfg
            .entry_points
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        return Err(format!(
            "unknown entrypoint {:?} (entrypoints: {})",
            q.entry_point,
            names.join(", ")
        ));
    };
    let ep = &static_cfg.entry_points[ep_index];
    let uri: Uri = q.url.parse().map_err(|e| format!("url {:?}: {e}", q.url))?;
    let method = Method::from_bytes(q.method.as_bytes())
        .map_err(|_| format!("method {:?} is not a valid method", q.method))?;
    let client_ip: IpAddr = match &q.client_ip {
        Some(ip) => ip
            .parse()
            .map_err(|_| format!("clientIP {ip:?} is not an IP address"))?,
        None => IpAddr::from([127, 0, 0, 1]),
    };
    let mut headers = HeaderMap::new();
    for (n, v) in &q.headers {
        let name = HeaderName::from_bytes(n.as_bytes())
            .map_err(|_| format!("header name {n:?} is not valid"))?;
        let value = HeaderValue::from_str(v)
            .map_err(|_| format!("header {n}: value {v:?} is not valid"))?;
        headers.append(name, value);
    }
    let tls = q.sni.is_some() || uri.scheme_str() == Some("https");
    // The host as the request path decides it: the URL's authority wins
    // over a Host header.
    let host = uri
        .authority()
        .map(|a| {
            a.as_str()
                .rsplit_once('@')
                .map_or(a.as_str(), |(_, h)| h)
                .to_owned()
        })
        .or_else(|| {
            headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let host_value = HeaderValue::from_str(&host).ok();
    let host_port = host
        .rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()) && !host.ends_with(']'))
        .and_then(|(_, p)| HeaderValue::from_str(p).ok());
    let trusted = ep.forwarded_headers.insecure
        || IpSet::new(ep.forwarded_headers.trusted_ips.iter().copied()).contains(client_ip);
    let client_value = HeaderValue::from_str(&canonical_ip(client_ip).to_string())
        .map_err(|_| "client IP".to_owned())?;
    let server_name = HeaderValue::from_static("explain");
    set_forwarded_headers(
        &mut headers,
        &Forwarding {
            client_ip: &client_value,
            trusted,
            tls,
            websocket: false,
            host: host_value.as_ref(),
            host_port: host_port.as_ref(),
            server_name: &server_name,
        },
    );

    let arena = Bump::new();
    let raw_path = uri.path();
    let (_, path) = forward_and_routing_paths(raw_path, &arena, ep.sanitize_path)
        .map_err(|e| format!("path {raw_path:?} cannot be routed (the proxy answers 400): {e}"))?;
    let view = ProxyRequest {
        method: &method,
        host: host_without_port(&host),
        authority: &host,
        path,
        query: uri.query(),
        headers: &headers,
        client_ip: canonical_ip(client_ip),
        arena: &arena,
    };

    let mut request = json!({
        "method": method.as_str(),
        "host": view.host,
        "path": view.path,
        "clientIP": view.client_ip.to_string(),
        "tls": tls,
    });
    if let Some(q) = view.query {
        request["query"] = json!(q);
    }
    let mut out = json!({
        "entryPoint": ep.name,
        "request": request,
    });
    // The internal provider's routers first, then the entrypoint's own, in
    // the router's order, up to the first that matches.
    let mut considered: Vec<Candidate> = Vec::new();
    let mut winner: Option<usize> = None;
    let mut internal = internal_router_list(static_cfg);
    internal.retain(|r| r.entry_point == ep.name);
    internal.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.name.cmp(b.name)));
    for r in internal {
        let Ok(parsed) = parse_rule_with(r.rule, RuleSyntax::V3) else {
            continue;
        };
        let matched = parsed.matches(&view);
        considered.push(Candidate {
            why: parsed.explain(&view),
            name: format!("{}@internal", r.name),
            priority: r.priority,
            rule: r.rule.to_owned(),
            matched,
            service: Some(r.service.to_owned()),
            middlewares: Vec::new(),
            disabled: false,
        });
        if matched {
            winner = Some(considered.len() - 1);
            break;
        }
    }
    // A TLS connection is routed among the TLS routers only, as in the
    // request path.
    let table = snap
        .entrypoints
        .get(ep_index)
        .map(|r| if tls { &r.tls_router } else { &r.router });
    let routed = table.and_then(|t| t.route(&view).copied());
    if winner.is_none()
        && let Some(table) = table
    {
        for entry in table.entries() {
            let matched = entry.rule.matches(&view);
            let info = &snap.routers[entry.value.router as usize];
            let config = snap.config.routers.get(&entry.name);
            considered.push(Candidate {
                name: info.name.to_string(),
                priority: entry.priority,
                rule: entry.rule.source().to_owned(),
                matched,
                why: entry.rule.explain(&view),
                service: snap
                    .services
                    .get(entry.value.service as usize)
                    .map(|s| s.name.to_string()),
                middlewares: config
                    .map(|c| {
                        c.middlewares
                            .iter()
                            .map(|m| crate::config::qualified(m).into_owned())
                            .collect()
                    })
                    .unwrap_or_default(),
                disabled: info.disabled,
            });
            if matched {
                winner = Some(considered.len() - 1);
                if routed != Some(entry.value) {
                    // The index and the scan disagree: the property test
                    // says this cannot happen; say so if it does.
                    out["indexDisagrees"] = json!(true);
                }
                break;
            }
        }
    }
    if winner.is_none() && routed.is_some() {
        out["indexDisagrees"] = json!(true);
    }
    match winner.map(|i| &considered[i]) {
        Some(c) => {
            out["router"] = json!(c.name);
            out["rule"] = json!(c.rule);
            out["priority"] = json!(c.priority);
            out["matched"] = json!(c.why);
            if c.disabled {
                out["status"] = json!(503);
                out["disabled"] = json!(true);
                let errors: Vec<String> = snap
                    .disabled
                    .iter()
                    .filter(|d| crate::config::qualified(&d.name).into_owned() == c.name)
                    .flat_map(|d| d.errors.iter().map(ToString::to_string))
                    .collect();
                out["errors"] = json!(errors);
            } else {
                out["service"] = json!(c.service);
                out["middlewares"] = json!(c.middlewares);
                let config = snap
                    .config
                    .routers
                    .get(c.name.strip_suffix("@file").unwrap_or(&c.name));
                if let Some(r) = config.filter(|r| !r.children.is_empty()) {
                    // Multi-layer routing: what the children match depends
                    // on what the middlewares do, which explain does not run.
                    let children: Vec<String> = r
                        .children
                        .iter()
                        .map(|n| crate::config::qualified(n).into_owned())
                        .collect();
                    out["children"] = json!(children);
                }
            }
        }
        None => {
            out["router"] = Value::Null;
            out["status"] = json!(404);
        }
    }
    out["candidates"] = Value::Array(considered.iter().map(Candidate::json).collect());
    Ok(out)
}

/// The strings of a JSON list (none when it is not one).
fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// The answer in a few lines of text, for `proxy explain`.
pub fn to_text(v: &Value) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let r = &v["request"];
    let _ = writeln!(
        out,
        "{} {}{}{} on entrypoint {} from {}",
        r["method"].as_str().unwrap_or(""),
        r["host"].as_str().unwrap_or(""),
        r["path"].as_str().unwrap_or(""),
        r["query"]
            .as_str()
            .map(|q| format!("?{q}"))
            .unwrap_or_default(),
        v["entryPoint"].as_str().unwrap_or(""),
        r["clientIP"].as_str().unwrap_or(""),
    );
    for c in v["candidates"].as_array().into_iter().flatten() {
        let mark = if c["matched"] == true { "->" } else { "  " };
        let why = strs(&c["why"]);
        let _ = writeln!(
            out,
            "{mark} {} (priority {}): {}\n     {}",
            c["router"].as_str().unwrap_or(""),
            c["priority"],
            c["rule"].as_str().unwrap_or(""),
            why.join("; ")
        );
    }
    match v["router"].as_str() {
        Some(router) if v["disabled"] == true => {
            let _ = writeln!(out, "router {router} is disabled: the proxy answers 503");
            for e in strs(&v["errors"]) {
                let _ = writeln!(out, "  {e}");
            }
        }
        Some(router) => {
            let mws = strs(&v["middlewares"]);
            let _ = writeln!(
                out,
                "router {router} -> service {}{}",
                v["service"].as_str().unwrap_or(""),
                if mws.is_empty() {
                    String::new()
                } else {
                    format!(" through {}", mws.join(", "))
                }
            );
        }
        None => {
            let _ = writeln!(out, "no router matches: the proxy answers 404");
        }
    }
    out
}
