//! `forwardAuth`'s options with Traefik 3.7's defaults and build-time
//! checks (`pkg/middlewares/auth/forward.go`): `address` (an `http://`
//! or `https://` URL), `tls` (`ca`, `cert` and `key` as a path or inline
//! PEM, `insecureSkipVerify`; read when the configuration is built, as a
//! servers transport's), `trustForwardHeader` (unset, false and
//! true are three behaviours), `authResponseHeaders`,
//! `authResponseHeadersRegex` (a Go regexp), `authRequestHeaders`,
//! `addAuthCookiesToResponse`, `headerField`, `forwardBody`,
//! `maxBodySize` and `maxResponseBodySize` (-1 or unset: no limit),
//! `preserveLocationHeader`, `preserveRequestMethod`, `authSigninURL`.
//! The request-time part is `crate::middleware::forward_auth`.

use http::{HeaderName, HeaderValue, Uri};
use serde::Deserialize;

use super::super::super::decode::{At, Ctx};
use super::super::super::error::Origin;
use super::super::super::node::Pos;
use super::super::{CertificateConfig, PemSource, UpstreamTlsConfig};
use super::auth::header_field;
use super::{MiddlewareConfig, Pattern, pattern};

/// A validated `forwardAuth`.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardAuth {
    /// `address`: `http[s]://host[:port]/path?query`.
    pub address: Uri,
    /// `tls`, for an `https://` address (`ca` as `rootCAs`, `cert` and
    /// `key` as the client certificate); unused for `http://`, as in Go.
    pub tls: UpstreamTlsConfig,
    /// Where `tls` is written (the address when it is not).
    pub tls_at: Origin,
    /// `trustForwardHeader`: `None` is Traefik's legacy behaviour (the
    /// forwarding headers always overwritten), `Some(false)` drops the
    /// client's, `Some(true)` keeps them.
    pub trust_forward_header: Option<bool>,
    /// `authResponseHeaders`: copied from the auth answer onto the request.
    pub auth_response_headers: Vec<HeaderName>,
    /// `authResponseHeadersRegex`, matched against Go's canonical names.
    pub auth_response_headers_regex: Option<Pattern>,
    /// `authRequestHeaders`: the only request headers sent (all when
    /// empty); with `trustForwardHeader: true`, the forwarding ones too.
    pub auth_request_headers: Vec<HeaderName>,
    /// `addAuthCookiesToResponse`: cookie names.
    pub add_auth_cookies: Vec<String>,
    /// `headerField` (Traefik records the user for its access log only).
    pub header_field: Option<HeaderName>,
    /// `forwardBody`.
    pub forward_body: bool,
    /// `maxBodySize`; `None` is no limit.
    pub max_body_size: Option<u64>,
    /// `maxResponseBodySize`; `None` is no limit.
    pub max_response_body_size: Option<u64>,
    /// `preserveLocationHeader`.
    pub preserve_location_header: bool,
    /// `preserveRequestMethod`.
    pub preserve_request_method: bool,
    /// `authSigninURL`: a 401 from the auth server becomes a 302 there.
    pub auth_signin_url: Option<HeaderValue>,
    /// The options the API shows as Traefik does: as written.
    pub written: ForwardAuthWritten,
}

/// `forwardAuth` options as written, for the API (Traefik shows its
/// configuration, not what it compiled from it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ForwardAuthWritten {
    /// `authRequestHeaders`, without the forwarding headers
    /// `trustForwardHeader` adds.
    pub auth_request_headers: Vec<String>,
    /// `authResponseHeaders`.
    pub auth_response_headers: Vec<String>,
    /// `maxBodySize` (Traefik's default -1).
    pub max_body_size: i64,
    /// `maxResponseBodySize` when written.
    pub max_response_body_size: Option<i64>,
    /// `headerField`.
    pub header_field: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct ForwardAuthFile {
    address: Option<At<String>>,
    tls: Option<At<ClientTlsFile>>,
    trust_forward_header: Option<bool>,
    auth_response_headers: Vec<At<String>>,
    auth_response_headers_regex: Option<At<String>>,
    auth_request_headers: Vec<At<String>>,
    add_auth_cookies_to_response: Vec<String>,
    header_field: Option<At<String>>,
    forward_body: bool,
    max_body_size: Option<At<i64>>,
    max_response_body_size: Option<At<i64>>,
    preserve_location_header: bool,
    preserve_request_method: bool,
    #[serde(rename = "authSigninURL")]
    auth_signin_url: Option<At<String>>,
}

/// `tls` as written (Traefik's `ClientTLS`; `rateLimit.redis.tls` too).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in crate::config) struct ClientTlsFile {
    ca: String,
    cert: String,
    key: String,
    insecure_skip_verify: bool,
    ca_optional: Option<At<bool>>,
}

/// The client TLS of `tls` (at `path`, `pos`) in `owner`'s options:
/// `cert` and `key` both or neither, as Go requires.
pub(in crate::config) fn client_tls(
    ctx: &mut Ctx,
    owner: &str,
    tls: At<ClientTlsFile>,
) -> Option<UpstreamTlsConfig> {
    let t = tls.value;
    if let Some(c) = &t.ca_optional {
        ctx.warn(
            &c.path,
            c.key_pos,
            "caOptional is ignored: Traefik v3 removed it",
        );
    }
    let mut out = UpstreamTlsConfig {
        insecure_skip_verify: t.insecure_skip_verify,
        ..UpstreamTlsConfig::default()
    };
    if !t.ca.is_empty() {
        out.root_cas.push(PemSource::new(&t.ca));
    }
    match (t.cert.is_empty(), t.key.is_empty()) {
        (true, true) => {}
        (false, false) => out.certificates.push(CertificateConfig {
            cert: PemSource::new(&t.cert),
            key: PemSource::new(&t.key),
            path: tls.path.clone(),
            origin: ctx.origin(tls.key_pos),
        }),
        _ => {
            ctx.error(
                &tls.path,
                tls.key_pos,
                format!("{owner} tls: both cert and key must be defined"),
            );
            return None;
        }
    }
    Some(out)
}

/// The forwarding headers `trustForwardHeader: true` adds to
/// `authRequestHeaders` (Traefik's `XHeadersSet`).
const FORWARDING: [&str; 11] = crate::forward::headers::X_HEADERS;

/// Header names written in `list`, each bad one reported where written.
fn names(ctx: &mut Ctx, option: &str, list: &[At<String>]) -> Option<Vec<HeaderName>> {
    let mut out = Vec::new();
    let mut ok = true;
    for item in list {
        match HeaderName::try_from(item.value.as_str()) {
            Ok(n) => out.push(n),
            Err(_) => {
                ctx.error(
                    &item.path,
                    item.pos,
                    format!("{option}: {:?} is not a header name", item.value),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// A size limit: negative is none.
fn limit(at: Option<&At<i64>>) -> Option<u64> {
    at.and_then(|a| u64::try_from(a.value).ok())
}

impl ForwardAuthFile {
    pub(super) fn check(mut self, ctx: &mut Ctx, path: &str, pos: Pos) -> Option<MiddlewareConfig> {
        let tls_at = ctx.origin(self.tls.as_ref().map_or(pos, |t| t.key_pos));
        let tls = match self.tls.take() {
            Some(t) => client_tls(ctx, "forwardAuth", t),
            None => Some(UpstreamTlsConfig::default()),
        };
        let address = match &self.address {
            None => {
                ctx.error(path, pos, "forwardAuth: address is required");
                None
            }
            Some(a) => match a.value.parse::<Uri>() {
                Ok(u)
                    if matches!(u.scheme_str(), Some("http" | "https"))
                        && u.authority().is_some() =>
                {
                    Some(u)
                }
                _ => {
                    ctx.error(
                        &a.path,
                        a.pos,
                        format!(
                            "forwardAuth: address {:?} is not an http:// or https:// URL",
                            a.value
                        ),
                    );
                    None
                }
            },
        };
        let regex = match &self.auth_response_headers_regex {
            Some(r) if !r.value.is_empty() => pattern(ctx, r, &r.value).map(Some),
            _ => Some(None),
        };
        let response_headers = names(ctx, "authResponseHeaders", &self.auth_response_headers);
        let mut request_headers = names(ctx, "authRequestHeaders", &self.auth_request_headers);
        if let Some(list) = &mut request_headers
            && self.trust_forward_header == Some(true)
            && !list.is_empty()
        {
            list.extend(FORWARDING.iter().map(|h| HeaderName::from_static(h)));
        }
        let signin = match &self.auth_signin_url {
            Some(s) if !s.value.is_empty() => match HeaderValue::from_str(&s.value) {
                Ok(v) => Some(Some(v)),
                Err(_) => {
                    ctx.error(
                        &s.path,
                        s.pos,
                        format!("authSigninURL {:?} cannot be a Location", s.value),
                    );
                    None
                }
            },
            _ => Some(None),
        };
        if self.forward_body && self.max_body_size.is_none() {
            ctx.warn(
                path,
                pos,
                "forwardAuth: forwardBody without maxBodySize reads request bodies of any size into memory",
            );
        }
        let header_field = header_field(ctx, self.header_field.as_ref());
        let as_written = |l: &[At<String>]| l.iter().map(|h| h.value.clone()).collect();
        let written = ForwardAuthWritten {
            auth_request_headers: as_written(&self.auth_request_headers),
            auth_response_headers: as_written(&self.auth_response_headers),
            max_body_size: self.max_body_size.as_ref().map_or(-1, |m| m.value),
            max_response_body_size: self.max_response_body_size.as_ref().map(|m| m.value),
            header_field: self.header_field.as_ref().map(|h| h.value.clone()),
        };
        Some(MiddlewareConfig::ForwardAuth(Box::new(ForwardAuth {
            address: address?,
            tls: tls?,
            tls_at,
            trust_forward_header: self.trust_forward_header,
            auth_response_headers: response_headers?,
            auth_response_headers_regex: regex?,
            auth_request_headers: request_headers?,
            add_auth_cookies: self.add_auth_cookies_to_response,
            header_field: header_field?,
            forward_body: self.forward_body,
            max_body_size: limit(self.max_body_size.as_ref()),
            max_response_body_size: limit(self.max_response_body_size.as_ref()),
            preserve_location_header: self.preserve_location_header,
            preserve_request_method: self.preserve_request_method,
            auth_signin_url: signin?,
            written,
        })))
    }
}
