//! `headers`: custom request and response headers, CORS, and the security
//! headers (Traefik 3.7's `pkg/middlewares/headers`, whose security part
//! is `unrolled/secure` with the options Traefik passes it). Every header
//! name and value is parsed here, once; the request-time behaviour is in
//! `crate::middleware::headers`.

use std::collections::BTreeMap;

use http::header::{HeaderName, HeaderValue};
use serde::Deserialize;

use super::super::super::decode::{At, Ctx};
use super::super::super::node::Pos;
use super::{MiddlewareConfig, Pattern, pattern};

/// A validated `headers` middleware: at least one of its three parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Headers {
    /// `customRequestHeaders`: set, or removed when the value is empty.
    pub request: Vec<(HeaderName, Option<HeaderValue>)>,
    /// `customResponseHeaders`: set, or removed when the value is empty.
    pub response: Vec<(HeaderName, Option<HeaderValue>)>,
    /// Whether custom or CORS headers are defined (Traefik's header
    /// handler runs: custom request headers, the response part).
    pub custom_or_cors: bool,
    /// The CORS options, when any is set.
    pub cors: Option<Cors>,
    /// The security options, when any is set.
    pub secure: Option<Secure>,
}

/// The CORS part of `headers`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cors {
    /// `accessControlAllowCredentials`.
    pub allow_credentials: bool,
    /// `accessControlAllowHeaders` joined with `,`; `None` when empty.
    pub allow_headers: Option<HeaderValue>,
    /// `*` among the allowed headers with credentials: a preflight is
    /// answered with the headers it asks for.
    pub allow_headers_echo: bool,
    /// `accessControlAllowMethods` joined with `,`; `None` when empty.
    pub allow_methods: Option<HeaderValue>,
    /// `*` among the allowed methods with credentials: the method asked.
    pub allow_methods_echo: bool,
    /// `accessControlAllowOriginList`, in order.
    pub origins: Vec<String>,
    /// `accessControlAllowOriginListRegex`, compiled.
    pub origin_regexes: Vec<Pattern>,
    /// `accessControlExposeHeaders` joined; `None` when empty, or when it
    /// has `*` with credentials (the header is then not sent).
    pub expose_headers: Option<HeaderValue>,
    /// `accessControlMaxAge`, for preflights.
    pub max_age: Option<HeaderValue>,
    /// `addVaryHeader`.
    pub add_vary: bool,
}

/// The security part of `headers`.
#[derive(Debug, Clone, PartialEq)]
pub struct Secure {
    /// `allowedHosts` (any other host is refused with 500 "Bad Host").
    pub allowed_hosts: Vec<String>,
    /// `hostsProxyHeaders`: headers holding the host to check, first
    /// non-empty wins over the request's host.
    pub hosts_proxy_headers: Vec<HeaderName>,
    /// `sslProxyHeaders`: a request with one of these header values is
    /// treated as HTTPS.
    pub ssl_proxy_headers: Vec<(HeaderName, String)>,
    /// `Strict-Transport-Security` (from `stsSeconds`, with
    /// `includeSubDomains` / `preload`), sent over HTTPS.
    pub sts: Option<HeaderValue>,
    /// `forceSTSHeader`: sent over plain HTTP too.
    pub force_sts: bool,
    /// `publicKey` (`Public-Key-Pins`), sent over HTTPS.
    pub public_key: Option<HeaderValue>,
    /// Headers every response gets: frame options, nosniff, XSS
    /// protection, CSP (and report-only), referrer and permissions policy.
    pub fixed: Vec<(HeaderName, HeaderValue)>,
    /// `isDevelopment`: no host check, no STS, no key pins.
    pub is_development: bool,
}

// === file schema ===

/// `headers` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct HeadersFile {
    custom_request_headers: BTreeMap<String, String>,
    custom_response_headers: BTreeMap<String, String>,
    access_control_allow_credentials: bool,
    access_control_allow_headers: Vec<String>,
    access_control_allow_methods: Vec<String>,
    access_control_allow_origin_list: Vec<String>,
    access_control_allow_origin_list_regex: Vec<At<String>>,
    access_control_expose_headers: Vec<String>,
    access_control_max_age: Option<i64>,
    add_vary_header: bool,
    allowed_hosts: Vec<String>,
    hosts_proxy_headers: Vec<String>,
    ssl_proxy_headers: BTreeMap<String, String>,
    sts_seconds: Option<i64>,
    sts_include_subdomains: bool,
    sts_preload: bool,
    #[serde(rename = "forceSTSHeader")]
    force_sts_header: bool,
    frame_deny: bool,
    custom_frame_options_value: String,
    content_type_nosniff: bool,
    browser_xss_filter: bool,
    #[serde(rename = "customBrowserXSSValue")]
    custom_browser_xss_value: String,
    content_security_policy: String,
    content_security_policy_report_only: String,
    public_key: String,
    referrer_policy: String,
    permissions_policy: String,
    is_development: bool,
    feature_policy: Option<At<String>>,
    ssl_redirect: Option<At<bool>>,
    ssl_temporary_redirect: Option<At<bool>>,
    ssl_host: Option<At<String>>,
    ssl_force_host: Option<At<bool>>,
}

/// A header name and value of the configuration, checked where written.
struct Check<'a> {
    ctx: &'a mut Ctx,
    path: &'a str,
    pos: Pos,
    ok: bool,
}

impl Check<'_> {
    fn name(&mut self, option: &str, name: &str) -> Option<HeaderName> {
        match HeaderName::try_from(name) {
            Ok(n) => Some(n),
            Err(_) => {
                self.ok = false;
                self.ctx.error(
                    &format!("{}.{option}", self.path),
                    self.pos,
                    format!("headers: {option}: {name:?} is not a valid header name"),
                );
                None
            }
        }
    }

    fn value(&mut self, option: &str, value: &str) -> Option<HeaderValue> {
        match HeaderValue::try_from(value) {
            Ok(v) => Some(v),
            Err(_) => {
                self.ok = false;
                self.ctx.error(
                    &format!("{}.{option}", self.path),
                    self.pos,
                    format!("headers: {option}: {value:?} is not a valid header value"),
                );
                None
            }
        }
    }

    /// A non-empty value, or `None`.
    fn some(&mut self, option: &str, value: &str) -> Option<HeaderValue> {
        if value.is_empty() {
            return None;
        }
        self.value(option, value)
    }

    fn custom(
        &mut self,
        option: &str,
        map: &BTreeMap<String, String>,
    ) -> Vec<(HeaderName, Option<HeaderValue>)> {
        let mut out = Vec::new();
        for (k, v) in map {
            let name = self.name(option, k);
            let value = if v.is_empty() {
                Some(None)
            } else {
                self.value(option, v).map(Some)
            };
            if let (Some(n), Some(v)) = (name, value) {
                out.push((n, v));
            }
        }
        out
    }
}

impl HeadersFile {
    pub(super) fn check(self, ctx: &mut Ctx, path: &str, pos: Pos) -> Option<MiddlewareConfig> {
        let f = self;
        for (key, at) in [
            (
                "featurePolicy",
                f.feature_policy.as_ref().map(|a| (&a.path, a.key_pos)),
            ),
            (
                "sslRedirect",
                f.ssl_redirect.as_ref().map(|a| (&a.path, a.key_pos)),
            ),
            (
                "sslTemporaryRedirect",
                f.ssl_temporary_redirect
                    .as_ref()
                    .map(|a| (&a.path, a.key_pos)),
            ),
            ("sslHost", f.ssl_host.as_ref().map(|a| (&a.path, a.key_pos))),
            (
                "sslForceHost",
                f.ssl_force_host.as_ref().map(|a| (&a.path, a.key_pos)),
            ),
        ] {
            if let Some((p, kp)) = at {
                let instead = if key == "featurePolicy" {
                    "use permissionsPolicy"
                } else {
                    "use a redirectScheme middleware"
                };
                ctx.warn(
                    p,
                    kp,
                    format!("{key} is deprecated and has no effect in Traefik 3.7: {instead}"),
                );
            }
        }
        let custom = !f.custom_request_headers.is_empty() || !f.custom_response_headers.is_empty();
        let has_cors = f.access_control_allow_credentials
            || !f.access_control_allow_headers.is_empty()
            || !f.access_control_allow_methods.is_empty()
            || !f.access_control_allow_origin_list.is_empty()
            || !f.access_control_allow_origin_list_regex.is_empty()
            || !f.access_control_expose_headers.is_empty()
            || f.access_control_max_age.is_some()
            || f.add_vary_header;
        let truthy = |b: &Option<At<bool>>| b.as_ref().is_some_and(|a| a.value);
        let has_secure = !f.allowed_hosts.is_empty()
            || !f.hosts_proxy_headers.is_empty()
            || truthy(&f.ssl_redirect)
            || truthy(&f.ssl_temporary_redirect)
            || truthy(&f.ssl_force_host)
            || f.ssl_host.as_ref().is_some_and(|a| !a.value.is_empty())
            || !f.ssl_proxy_headers.is_empty()
            || f.sts_seconds.is_some()
            || f.sts_include_subdomains
            || f.sts_preload
            || f.force_sts_header
            || f.frame_deny
            || !f.custom_frame_options_value.is_empty()
            || f.content_type_nosniff
            || f.browser_xss_filter
            || !f.custom_browser_xss_value.is_empty()
            || !f.content_security_policy.is_empty()
            || !f.content_security_policy_report_only.is_empty()
            || !f.public_key.is_empty()
            || !f.referrer_policy.is_empty()
            || f.feature_policy
                .as_ref()
                .is_some_and(|a| !a.value.is_empty())
            || !f.permissions_policy.is_empty()
            || f.is_development;
        if !custom && !has_cors && !has_secure {
            ctx.error(path, pos, "headers: no header option is set");
            return None;
        }
        let mut regexes = Vec::new();
        let mut ok = true;
        for r in &f.access_control_allow_origin_list_regex {
            match pattern(ctx, r, &r.value) {
                Some(p) => regexes.push(p),
                None => ok = false,
            }
        }
        let mut c = Check { ctx, path, pos, ok };
        let request = c.custom("customRequestHeaders", &f.custom_request_headers);
        let response = c.custom("customResponseHeaders", &f.custom_response_headers);
        let creds = f.access_control_allow_credentials;
        let star = |v: &[String]| creds && v.iter().any(|s| s == "*");
        let cors = has_cors.then(|| Cors {
            allow_credentials: creds,
            allow_headers: c.some(
                "accessControlAllowHeaders",
                &f.access_control_allow_headers.join(","),
            ),
            allow_headers_echo: star(&f.access_control_allow_headers),
            allow_methods: c.some(
                "accessControlAllowMethods",
                &f.access_control_allow_methods.join(","),
            ),
            allow_methods_echo: star(&f.access_control_allow_methods),
            origins: f.access_control_allow_origin_list.clone(),
            origin_regexes: regexes,
            expose_headers: if star(&f.access_control_expose_headers) {
                None
            } else {
                c.some(
                    "accessControlExposeHeaders",
                    &f.access_control_expose_headers.join(","),
                )
            },
            max_age: f.access_control_max_age.map(HeaderValue::from),
            add_vary: f.add_vary_header,
        });
        let secure = if has_secure {
            let mut hosts_proxy_headers = Vec::new();
            for h in &f.hosts_proxy_headers {
                hosts_proxy_headers.extend(c.name("hostsProxyHeaders", h));
            }
            let mut ssl_proxy_headers = Vec::new();
            for (k, v) in &f.ssl_proxy_headers {
                if let Some(n) = c.name("sslProxyHeaders", k) {
                    ssl_proxy_headers.push((n, v.clone()));
                }
            }
            let sts = f.sts_seconds.filter(|s| *s != 0).map(|s| {
                let mut v = format!("max-age={s}");
                if f.sts_include_subdomains {
                    v += "; includeSubDomains";
                }
                if f.sts_preload {
                    v += "; preload";
                }
                HeaderValue::try_from(v).unwrap_or(HeaderValue::from_static("max-age=0"))
            });
            let mut fixed = Vec::new();
            let frame = if f.custom_frame_options_value.is_empty() && f.frame_deny {
                "DENY"
            } else {
                f.custom_frame_options_value.as_str()
            };
            let xss = if f.custom_browser_xss_value.is_empty() && f.browser_xss_filter {
                "1; mode=block"
            } else {
                f.custom_browser_xss_value.as_str()
            };
            let nosniff = if f.content_type_nosniff {
                "nosniff"
            } else {
                ""
            };
            for (header, option, value) in [
                ("x-frame-options", "customFrameOptionsValue", frame),
                ("x-content-type-options", "contentTypeNosniff", nosniff),
                ("x-xss-protection", "customBrowserXSSValue", xss),
                (
                    "content-security-policy",
                    "contentSecurityPolicy",
                    f.content_security_policy.as_str(),
                ),
                (
                    "content-security-policy-report-only",
                    "contentSecurityPolicyReportOnly",
                    f.content_security_policy_report_only.as_str(),
                ),
                (
                    "referrer-policy",
                    "referrerPolicy",
                    f.referrer_policy.as_str(),
                ),
                (
                    "permissions-policy",
                    "permissionsPolicy",
                    f.permissions_policy.as_str(),
                ),
            ] {
                if let Some(v) = c.some(option, value) {
                    fixed.push((HeaderName::from_static(header), v));
                }
            }
            Some(Secure {
                allowed_hosts: f.allowed_hosts.clone(),
                hosts_proxy_headers,
                ssl_proxy_headers,
                sts,
                force_sts: f.force_sts_header,
                public_key: c.some("publicKey", &f.public_key),
                fixed,
                is_development: f.is_development,
            })
        } else {
            None
        };
        c.ok.then_some(MiddlewareConfig::Headers(Box::new(Headers {
            request,
            response,
            custom_or_cors: custom || has_cors,
            cors,
            secure,
        })))
    }
}
