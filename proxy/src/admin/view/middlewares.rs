//! The middlewares' part of the API's runtime view: each middleware's
//! options under its type's key, as Traefik 3.7 shows them, and the
//! middleware type a view names. Built when the API is asked (from
//! [`super`]), never per data-plane request.

use serde_json::{Map, Value, json};

use crate::config::{EncodedCharacters, IpStrategy, MiddlewareConfig, SourceCriterion};

use super::super::json::go_duration;

/// A middleware's configuration under its type's key, as Traefik writes
/// the options (the compiled form is shown; options the compiled form
/// drops are named in the module's README section of differences).
pub(super) fn middleware(m: &MiddlewareConfig) -> Value {
    let regex = |p: &crate::config::Pattern| json!(p.0.source());
    let (key, body) = match m {
        MiddlewareConfig::AddPrefix(a) => ("addPrefix", json!({"prefix": a.prefix})),
        // Users with their hashes, as Traefik's API lists them.
        MiddlewareConfig::BasicAuth(b) => {
            let mut v = json!({
                "users": b.users.iter().map(|(u, h)| format!("{u}:{}", h.as_written())).collect::<Vec<_>>(),
                "realm": b.realm,
            });
            if let Some(h) = &b.header_field {
                v["headerField"] = json!(h.as_str());
            }
            if b.remove_header {
                v["removeHeader"] = json!(true);
            }
            ("basicAuth", v)
        }
        MiddlewareConfig::DigestAuth(d) => {
            let mut v = json!({
                "users": d.users.iter().map(|(u, h)| format!("{u}:{h}")).collect::<Vec<_>>(),
                "realm": d.realm,
            });
            if let Some(h) = &d.header_field {
                v["headerField"] = json!(h.as_str());
            }
            if d.remove_header {
                v["removeHeader"] = json!(true);
            }
            ("digestAuth", v)
        }
        MiddlewareConfig::ForwardAuth(f) => {
            let w = &f.written;
            let mut v = json!({"address": f.address.to_string(), "maxBodySize": w.max_body_size});
            if let Some(t) = f.trust_forward_header {
                v["trustForwardHeader"] = json!(t);
            }
            if !w.auth_response_headers.is_empty() {
                v["authResponseHeaders"] = json!(w.auth_response_headers);
            }
            if let Some(p) = &f.auth_response_headers_regex {
                v["authResponseHeadersRegex"] = regex(p);
            }
            if !w.auth_request_headers.is_empty() {
                v["authRequestHeaders"] = json!(w.auth_request_headers);
            }
            if !f.add_auth_cookies.is_empty() {
                v["addAuthCookiesToResponse"] = json!(f.add_auth_cookies);
            }
            if f.forward_body {
                v["forwardBody"] = json!(true);
            }
            if let Some(n) = w.max_response_body_size {
                v["maxResponseBodySize"] = json!(n);
            }
            if f.preserve_location_header {
                v["preserveLocationHeader"] = json!(true);
            }
            if f.preserve_request_method {
                v["preserveRequestMethod"] = json!(true);
            }
            if let Some(u) = &f.auth_signin_url {
                v["authSigninURL"] = json!(u.to_str().unwrap_or_default());
            }
            if let Some(h) = &w.header_field {
                v["headerField"] = json!(h);
            }
            ("forwardAuth", v)
        }
        MiddlewareConfig::PassTlsClientCert(p) => ("passTLSClientCert", json!(p)),
        MiddlewareConfig::EncodedCharacters(e) => {
            let allowed: Map<String, Value> = EncodedCharacters::KEYS
                .iter()
                .map(|(key, b)| ((*key).to_owned(), json!(!e.denied.contains(b))))
                .collect();
            ("encodedCharacters", Value::Object(allowed))
        }
        MiddlewareConfig::StripPrefix(s) => {
            let mut b = json!({"prefixes": s.prefixes});
            if s.force_slash {
                b["forceSlash"] = json!(true);
            }
            ("stripPrefix", b)
        }
        MiddlewareConfig::StripPrefixRegex(s) => (
            "stripPrefixRegex",
            json!({"regex": s.regexes.iter().map(regex).collect::<Vec<_>>()}),
        ),
        MiddlewareConfig::ReplacePath(r) => ("replacePath", json!({"path": r.path})),
        MiddlewareConfig::ReplacePathRegex(r) => (
            "replacePathRegex",
            json!({"regex": regex(&r.regex), "replacement": r.replacement}),
        ),
        MiddlewareConfig::RedirectScheme(r) => {
            let mut b = json!({"scheme": r.scheme});
            if !r.port.is_empty() {
                b["port"] = json!(r.port);
            }
            if r.permanent {
                b["permanent"] = json!(true);
            }
            ("redirectScheme", b)
        }
        MiddlewareConfig::RedirectRegex(r) => {
            let mut b = json!({"regex": regex(&r.regex), "replacement": r.replacement});
            if r.permanent {
                b["permanent"] = json!(true);
            }
            ("redirectRegex", b)
        }
        MiddlewareConfig::Headers(h) => {
            let list = |hs: &[(http::HeaderName, Option<http::HeaderValue>)]| {
                let m: Map<String, Value> = hs
                    .iter()
                    .map(|(n, v)| {
                        let v = v
                            .as_ref()
                            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                            .unwrap_or_default();
                        (n.as_str().to_owned(), json!(v))
                    })
                    .collect();
                Value::Object(m)
            };
            let mut b = json!({});
            if !h.request.is_empty() {
                b["customRequestHeaders"] = list(&h.request);
            }
            if !h.response.is_empty() {
                b["customResponseHeaders"] = list(&h.response);
            }
            if let Some(s) = &h.secure {
                if !s.allowed_hosts.is_empty() {
                    b["allowedHosts"] = json!(s.allowed_hosts);
                }
                if s.is_development {
                    b["isDevelopment"] = json!(true);
                }
            }
            if let Some(c) = &h.cors {
                if c.allow_credentials {
                    b["accessControlAllowCredentials"] = json!(true);
                }
                if !c.origins.is_empty() {
                    b["accessControlAllowOriginList"] = json!(c.origins);
                }
            }
            ("headers", b)
        }
        MiddlewareConfig::InFlightReq(f) => {
            let mut b = json!({"amount": f.amount});
            if let Some(c) = source_criterion(&f.source) {
                b["sourceCriterion"] = c;
            }
            ("inFlightReq", b)
        }
        MiddlewareConfig::RateLimit(r) => {
            let mut b = json!({
                "average": r.average,
                "period": go_duration(r.period),
                "burst": r.burst,
            });
            if let Some(c) = source_criterion(&r.source) {
                b["sourceCriterion"] = c;
            }
            ("rateLimit", b)
        }
        MiddlewareConfig::Retry(r) => {
            let mut b = json!({"attempts": r.attempts});
            if !r.initial_interval.is_zero() {
                b["initialInterval"] = json!(go_duration(r.initial_interval));
            }
            if !r.timeout.is_zero() {
                b["timeout"] = json!(go_duration(r.timeout));
            }
            if !r.status.is_empty() {
                b["status"] = json!(status_ranges(r.status.ranges()));
            }
            if r.disable_on_network_error {
                b["disableRetryOnNetworkError"] = json!(true);
            }
            if r.non_idempotent {
                b["retryNonIdempotentMethod"] = json!(true);
            }
            b["maxRequestBodyBytes"] = json!(r.max_body);
            ("retry", b)
        }
        // The options as written (no defaults: Traefik sets none).
        MiddlewareConfig::Buffering(b) => {
            let mut v = Map::new();
            let mut set = |k: &str, n: u64| {
                if n > 0 {
                    v.insert(k.to_owned(), json!(n));
                }
            };
            set("maxRequestBodyBytes", b.max_request.unwrap_or(0));
            set("memRequestBodyBytes", b.mem_request);
            set("maxResponseBodyBytes", b.max_response.unwrap_or(0));
            set("memResponseBodyBytes", b.mem_response);
            if !b.retry_expression.is_empty() {
                v.insert("retryExpression".into(), json!(b.retry_expression));
            }
            ("buffering", Value::Object(v))
        }
        // Traefik's defaults are set before decoding: all five are shown.
        MiddlewareConfig::CircuitBreaker(c) => (
            "circuitBreaker",
            json!({
                "expression": c.expression,
                "checkPeriod": go_duration(c.check_period),
                "fallbackDuration": go_duration(c.fallback_duration),
                "recoveryDuration": go_duration(c.recovery_duration),
                "responseCode": c.response_code.as_u16(),
            }),
        ),
        MiddlewareConfig::Errors(e) => {
            let ranges = status_ranges;
            let mut b = json!({"status": ranges(e.status.ranges()), "service": e.service});
            if !e.query.is_empty() {
                b["query"] = json!(e.query);
            }
            if !e.rewrites.is_empty() {
                let m: Map<String, Value> = e
                    .rewrites
                    .iter()
                    .map(|(r, to)| (ranges(std::slice::from_ref(r)).remove(0), json!(to)))
                    .collect();
                b["statusRewrites"] = Value::Object(m);
            }
            if let Some(h) = &e.request_headers {
                let names: Vec<&str> = h.iter().map(|n| n.as_str()).collect();
                b["errorRequestHeaders"] = json!(names);
            }
            ("errors", b)
        }
        MiddlewareConfig::Compress(c) => {
            let written = |l: &[crate::config::MediaType]| -> Vec<String> {
                l.iter().map(|m| m.written.clone()).collect()
            };
            let tokens: Vec<&str> = c.encodings.iter().map(|e| e.token()).collect();
            let mut b = json!({"encodings": tokens});
            // application/grpc, always excluded, is not written.
            if c.excluded.len() > 1 {
                b["excludedContentTypes"] = json!(written(&c.excluded[1..]));
            }
            if !c.included.is_empty() {
                b["includedContentTypes"] = json!(written(&c.included));
            }
            if c.min_written != 0 {
                b["minResponseBodyBytes"] = json!(c.min_written);
            }
            if let Some(d) = c.default_encoding {
                b["defaultEncoding"] = json!(d.token());
            }
            ("compress", b)
        }
        MiddlewareConfig::IpAllowList(a) => {
            let ranges: Vec<String> = a.allowed.nets().iter().map(ToString::to_string).collect();
            let mut b = json!({"sourceRange": ranges});
            if a.reject != http::StatusCode::FORBIDDEN {
                b["rejectStatusCode"] = json!(a.reject.as_u16());
            }
            if let Some(st) = ip_strategy(&a.strategy) {
                b["ipStrategy"] = st;
            }
            ("ipAllowList", b)
        }
        MiddlewareConfig::ContentType(c) => {
            let mut b = json!({});
            if let Some(a) = c.auto_detect {
                b["autoDetect"] = json!(a);
            }
            ("contentType", b)
        }
        MiddlewareConfig::GrpcWeb(g) => {
            let mut b = json!({});
            if !g.allow_origins.is_empty() {
                b["allowOrigins"] = json!(g.allow_origins);
            }
            ("grpcWeb", b)
        }
        MiddlewareConfig::Chain(names) => {
            let names: Vec<String> = names
                .iter()
                .map(|n| crate::config::qualified(n).into_owned())
                .collect();
            ("chain", json!({"middlewares": names}))
        }
    };
    let mut v = Map::new();
    v.insert(key.to_owned(), body);
    Value::Object(v)
}

/// Status ranges as written (`404`, `500-599`).
fn status_ranges(r: &[(u16, u16)]) -> Vec<String> {
    r.iter()
        .map(|&(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect()
}

/// An `ipStrategy` as Traefik shows it; `None` for the plain peer.
fn ip_strategy(s: &IpStrategy) -> Option<Value> {
    match s {
        IpStrategy::Peer { ipv6_subnet: None } => None,
        IpStrategy::Peer {
            ipv6_subnet: Some(n),
        } => Some(json!({"ipv6Subnet": n})),
        IpStrategy::Depth { depth, .. } => Some(json!({"depth": depth})),
        IpStrategy::Excluded(excluded) => {
            let ex: Vec<String> = excluded.nets().iter().map(ToString::to_string).collect();
            Some(json!({"excludedIPs": ex}))
        }
    }
}

/// A `sourceCriterion` as written: `None` when it is the default peer.
fn source_criterion(c: &SourceCriterion) -> Option<Value> {
    match c {
        SourceCriterion::Ip(s) => Some(json!({"ipStrategy": ip_strategy(s).unwrap_or(json!({}))})),
        SourceCriterion::Header(h) => Some(json!({"requestHeaderName": h.as_str()})),
        SourceCriterion::Host => Some(json!({"requestHost": true})),
    }
}

/// The type of a middleware's object, lower-cased as Traefik lists it
/// (`stripprefix`): its one key that is not a status field.
pub(in crate::admin) fn middleware_type(v: &Value) -> Option<String> {
    v.as_object()?
        .keys()
        .find(|k| !matches!(k.as_str(), "status" | "usedBy" | "error"))
        .map(|k| k.to_lowercase())
}
