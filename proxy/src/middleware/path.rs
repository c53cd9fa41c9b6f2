//! The path-rewriting middlewares at request time: `addPrefix`,
//! `stripPrefix`, `stripPrefixRegex`, `replacePath`, `replacePathRegex`,
//! as Traefik 3.7 applies them to Go's `URL.Path` (decoded) and
//! `URL.RawPath` (as received): prefixes are compared with the decoded
//! path and cut from the raw one, a result Go's `JoinPath` would clean
//! (`//`, `.`, `..` segments) is refused with 400, and the headers
//! `X-Forwarded-Prefix` / `X-Replaced-Path` are added.
//!
//! Per request: a request whose path is rewritten gets one new URI (one
//! allocation, plus the decoded path when it has `%` escapes); a request
//! left alone costs a prefix comparison. Must not: build state the
//! configuration could have built (done in `new`).

use std::borrow::Cow;

use http::header::{HeaderName, HeaderValue};
use http::uri::{PathAndQuery, Uri};
use http::{Request, Response, StatusCode};

use crate::config;
use crate::forward::ProxyBody;
use crate::routing::goregex::GoRegex;
use crate::upstream::RequestBody;

/// A way in: the request changed (or not), or the answer.
pub(super) type Step = Result<Request<RequestBody>, Refusal>;

/// An answer instead of the request (boxed: the rare path pays for it).
pub(super) type Refusal = Box<Response<ProxyBody>>;

const FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");
const REPLACED_PATH: HeaderName = HeaderName::from_static("x-replaced-path");

/// `addPrefix`.
#[derive(Debug)]
pub struct AddPrefix {
    prefix: String,
}

impl AddPrefix {
    pub(super) fn new(c: &config::AddPrefix) -> Self {
        Self {
            prefix: c.prefix.clone(),
        }
    }

    pub(super) fn apply(&self, mut req: Request<RequestBody>) -> Step {
        let raw = req.uri().path();
        let mut path = String::with_capacity(self.prefix.len() + raw.len() + 1);
        if !self.prefix.starts_with('/') {
            path.push('/');
        }
        path.push_str(&self.prefix);
        path.push_str(raw);
        set_path(&mut req, &path)?;
        Ok(req)
    }
}

/// `stripPrefix`.
#[derive(Debug)]
pub struct StripPrefix {
    /// Each prefix with its `X-Forwarded-Prefix` value (`None` when it is
    /// no valid header value: the header is then left out).
    prefixes: Vec<(String, Option<HeaderValue>)>,
    force_slash: bool,
}

impl StripPrefix {
    pub(super) fn new(c: &config::StripPrefix) -> Self {
        Self {
            prefixes: c
                .prefixes
                .iter()
                .map(|p| (p.clone(), HeaderValue::from_str(p).ok()))
                .collect(),
            force_slash: c.force_slash,
        }
    }

    pub(super) fn apply(&self, mut req: Request<RequestBody>) -> Step {
        let raw = req.uri().path();
        let decoded = percent_decode(raw);
        let Some((prefix, value)) = self
            .prefixes
            .iter()
            .find(|(p, _)| decoded.starts_with(p.as_str()))
        else {
            return Ok(req);
        };
        let rest = &raw[encoded_prefix_len(raw, prefix)..];
        let stripped = if self.force_slash {
            format!("/{}", rest.trim_start_matches('/'))
        } else {
            leading_slash(rest)
        };
        set_clean_path(&mut req, &stripped)?;
        if let Some(v) = value {
            req.headers_mut().append(FORWARDED_PREFIX, v.clone());
        }
        Ok(req)
    }
}

/// `stripPrefixRegex`.
#[derive(Debug)]
pub struct StripPrefixRegex {
    regexes: Vec<GoRegex>,
}

impl StripPrefixRegex {
    pub(super) fn new(c: &config::StripPrefixRegex) -> Self {
        Self {
            regexes: c.regexes.iter().map(|p| p.0.clone()).collect(),
        }
    }

    pub(super) fn apply(&self, mut req: Request<RequestBody>) -> Step {
        let raw = req.uri().path();
        let decoded = percent_decode(raw);
        for re in &self.regexes {
            let Some(m) = re.find(&decoded) else {
                continue;
            };
            let prefix = &decoded[m];
            if prefix.is_empty() || !decoded.starts_with(prefix) {
                continue;
            }
            let value = HeaderValue::from_str(prefix).ok();
            let stripped = leading_slash(&raw[encoded_prefix_len(raw, prefix)..]);
            set_clean_path(&mut req, &stripped)?;
            if let Some(v) = value {
                req.headers_mut().append(FORWARDED_PREFIX, v);
            }
            break;
        }
        Ok(req)
    }
}

/// `replacePath`.
#[derive(Debug)]
pub struct ReplacePath {
    path: String,
}

impl ReplacePath {
    pub(super) fn new(c: &config::ReplacePath) -> Self {
        Self {
            path: c.path.clone(),
        }
    }

    pub(super) fn apply(&self, mut req: Request<RequestBody>) -> Step {
        let old = HeaderValue::from_str(req.uri().path()).ok();
        let sent = escaped(&self.path)?;
        set_path(&mut req, &sent)?;
        if let Some(old) = old {
            req.headers_mut().append(REPLACED_PATH, old);
        }
        Ok(req)
    }
}

/// `replacePathRegex`.
#[derive(Debug)]
pub struct ReplacePathRegex {
    regex: GoRegex,
    replacement: String,
}

impl ReplacePathRegex {
    pub(super) fn new(c: &config::ReplacePathRegex) -> Self {
        Self {
            regex: c.regex.0.clone(),
            replacement: c.replacement.clone(),
        }
    }

    pub(super) fn apply(&self, mut req: Request<RequestBody>) -> Step {
        let current = req.uri().path();
        if !self.regex.is_match_str(current) {
            return Ok(req);
        }
        let old = HeaderValue::from_str(current).ok();
        let new = self.regex.replace_all(current, &self.replacement);
        let sent = escaped(&new)?;
        set_clean_path(&mut req, &sent)?;
        if let Some(old) = old {
            req.headers_mut().append(REPLACED_PATH, old);
        }
        Ok(req)
    }
}

// === helpers ===

/// A proxy answer with `status` and its reason as the body, as Go's
/// `http.Error` writes it.
pub(super) fn plain(status: StatusCode, body: String) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::full(body + "\n"));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp.headers_mut().insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn bad_request() -> Refusal {
    Box::new(plain(StatusCode::BAD_REQUEST, "Bad Request".to_owned()))
}

/// The host a request is for: the URI's authority (absolute form,
/// HTTP/2), else `Host`.
pub(super) fn request_host<B>(req: &Request<B>) -> &str {
    host_of(req.uri(), req.headers())
}

/// The host of a request with this URI and these headers.
pub(super) fn host_of<'a>(uri: &'a Uri, headers: &'a http::HeaderMap) -> &'a str {
    match uri.authority() {
        Some(a) => a.as_str(),
        None => headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or(""),
    }
}

/// `s` with a `/` in front unless it is empty or has one.
fn leading_slash(s: &str) -> String {
    if s.is_empty() || s.starts_with('/') {
        s.to_owned()
    } else {
        format!("/{s}")
    }
}

/// How many bytes of `raw` spell the `decoded` prefix (a `%XX` escape is
/// one decoded byte).
fn encoded_prefix_len(raw: &str, decoded: &str) -> usize {
    let bytes = raw.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < bytes.len() && n < decoded.len() {
        i += if bytes[i] == b'%' && i + 2 < bytes.len() {
            3
        } else {
            1
        };
        n += 1;
    }
    i
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The path with `%XX` escapes decoded (Go's `URL.Path`); borrowed when it
/// has none. A malformed escape is kept as written.
pub(super) fn percent_decode(raw: &str) -> Cow<'_, str> {
    if !raw.contains('%') {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(String::from_utf8_lossy(&unescape(raw).unwrap_or_else(|()| raw.into())).into_owned())
}

/// Go's `PathUnescape`: `Err` on a malformed escape.
fn unescape(raw: &str) -> Result<Vec<u8>, ()> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(());
            };
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// The path Go sends for a raw path set by a middleware: as written when
/// it is a valid escaped path, else its decoded form escaped again; a
/// malformed escape is Go's 500.
fn escaped(raw: &str) -> Result<String, Refusal> {
    let decoded = unescape(raw).map_err(|()| {
        let bad = raw
            .match_indices('%')
            .map(|(i, _)| &raw[i..(i + 3).min(raw.len())])
            .find(|e| e.len() < 3 || !e.bytes().skip(1).all(|b| hex(b).is_some()))
            .unwrap_or("%");
        Box::new(plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("invalid URL escape {bad:?}"),
        ))
    })?;
    if raw.bytes().all(valid_in_path) {
        return Ok(raw.to_owned());
    }
    let mut out = String::with_capacity(decoded.len() * 3);
    for b in decoded {
        if b != b'%' && b != b'?' && valid_in_path(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(out)
}

/// A byte Go leaves as is in an escaped path (`validEncoded`).
fn valid_in_path(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.~!$&'()*+,;=:@[]%/".contains(&b)
}

/// Whether Go's `JoinPath` leaves `path` as it is: no empty, `.` or `..`
/// segment (a trailing `/` is kept).
fn is_clean(path: &str) -> bool {
    let inner = path.strip_prefix('/').unwrap_or(path);
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    path == "/" || inner.split('/').all(|seg| !matches!(seg, "" | "." | ".."))
}

/// Sets the path after a strip or a regex replacement: 400 when Go would
/// have cleaned it (Traefik refuses the request rather than send another
/// path than the one it checked).
fn set_clean_path(req: &mut Request<RequestBody>, path: &str) -> Result<(), Refusal> {
    if !path.is_empty() && !is_clean(path) {
        return Err(bad_request());
    }
    set_path(req, path)
}

/// Replaces the request's path (empty = `/`), keeping its query and, for
/// an absolute-form or HTTP/2 request, its scheme and authority.
fn set_path(req: &mut Request<RequestBody>, path: &str) -> Result<(), Refusal> {
    let path = if path.is_empty() { "/" } else { path };
    let pq = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let mut parts = std::mem::take(req.uri_mut()).into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(pq).map_err(|_| bad_request())?);
    *req.uri_mut() = Uri::from_parts(parts).map_err(|_| bad_request())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_cut_from_the_raw_path_by_decoded_length() {
        assert_eq!(encoded_prefix_len("/a%2Fb/c", "/a/b"), 6);
        assert_eq!(encoded_prefix_len("/foo/bar", "/foo"), 4);
        assert_eq!(percent_decode("/a%41"), "/aA");
    }

    #[test]
    fn cleanliness_follows_join_path() {
        assert!(is_clean("/"));
        assert!(is_clean("/a/b/"));
        assert!(!is_clean("//a"));
        assert!(!is_clean("/a/./b"));
        assert!(!is_clean("/a/.."));
    }

    #[test]
    fn set_paths_are_escaped_as_go_sends_them() {
        assert_eq!(escaped("/a b").unwrap(), "/a%20b");
        assert_eq!(escaped("/a%2Fb").unwrap(), "/a%2Fb");
        assert!(escaped("/a%zz").is_err());
    }
}
