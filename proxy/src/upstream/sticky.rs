//! Sticky sessions by cookie, as Traefik 3.7 writes and reads them: the
//! cookie's value names the server (its URL) or the `weighted` child (its
//! name as written) by the first 16 hex digits of its SHA-256; the
//! default cookie name is `_` and the first 5 hex digits of the SHA-1 of
//! `_TRAEFIK_BACKEND_<service>@<provider>`. Older values Traefik still
//! accepts (the raw name, its FNV-1 64 in hex, the FNV of that) are
//! honoured and rewritten.
//!
//! Everything is computed when a configuration is compiled: per request,
//! [`Sticky::find`] scans the `Cookie` headers without allocating and the
//! `Set-Cookie` value is a prepared header cloned by reference count.

use aws_lc_rs::digest;
use http::header::{self, HeaderMap, HeaderValue};

use crate::config::StickyCookie;

/// The sticky cookie of one balancer over `n` members.
#[derive(Debug)]
pub struct Sticky {
    name: Box<str>,
    /// Per member: the value Traefik writes.
    values: Box<[Box<str>]>,
    /// Per member: the older values Traefik still reads.
    legacy: Box<[[Box<str>; 3]]>,
    /// Per member: the whole `Set-Cookie` header.
    set_cookie: Box<[HeaderValue]>,
}

impl Sticky {
    /// The cookie of `service` (with its provider, `name@file`) over
    /// members named `members` (server URLs or child names), configured
    /// by `cfg`.
    pub fn new<'a>(
        cfg: &StickyCookie,
        service: &str,
        members: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let name = cfg
            .name
            .clone()
            .unwrap_or_else(|| default_name(service))
            .into_boxed_str();
        let mut values = Vec::new();
        let mut legacy = Vec::new();
        let mut set_cookie = Vec::new();
        for m in members {
            let value = value_of(m);
            let fnv = format!("{:x}", fnv1(m.as_bytes()));
            let fnv2 = format!("{:x}", fnv1(fnv.as_bytes()));
            set_cookie.push(set_cookie_header(cfg, &name, &value));
            legacy.push([m.into(), fnv.into(), fnv2.into()]);
            values.push(value.into_boxed_str());
        }
        Self {
            name,
            values: values.into_boxed_slice(),
            legacy: legacy.into_boxed_slice(),
            set_cookie: set_cookie.into_boxed_slice(),
        }
    }

    /// The cookie's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The member the request's cookie names (the first cookie of that
    /// name, as Go reads it), and whether its value is an older form that
    /// the response should rewrite.
    pub fn find(&self, headers: &HeaderMap) -> Option<(usize, bool)> {
        let value = cookie_value(headers, &self.name)?;
        if let Some(i) = self.values.iter().position(|v| v.as_bytes() == value) {
            return Some((i, false));
        }
        self.legacy
            .iter()
            .position(|l| l.iter().any(|v| v.as_bytes() == value))
            .map(|i| (i, true))
    }

    /// The `Set-Cookie` header pinning member `i`.
    #[inline]
    pub fn set_cookie(&self, i: usize) -> &HeaderValue {
        &self.set_cookie[i]
    }
}

/// The value of the first cookie named `name` in the `Cookie` headers,
/// quotes removed.
fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h [u8]> {
    for h in headers.get_all(header::COOKIE) {
        for pair in h.as_bytes().split(|&b| b == b';') {
            let pair = pair.trim_ascii();
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            if &pair[..eq] != name.as_bytes() {
                continue;
            }
            let v = &pair[eq + 1..];
            let v = match v {
                [b'"', inner @ .., b'"'] => inner,
                v => v,
            };
            return Some(v);
        }
    }
    None
}

/// The value naming `member`: 16 hex digits of its SHA-256.
pub fn value_of(member: &str) -> String {
    let d = digest::digest(&digest::SHA256, member.as_bytes());
    hex(&d.as_ref()[..8])
}

/// The cookie name Traefik derives from a service name.
pub fn default_name(service: &str) -> String {
    let data = format!("_TRAEFIK_BACKEND_{service}");
    let d = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data.as_bytes());
    let mut name = String::from("_");
    name.push_str(&hex(d.as_ref())[..5]);
    name
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// FNV-1 64 (multiply, then xor), Go's `fnv.New64`.
fn fnv1(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        h ^= u64::from(b);
    }
    h
}

/// `Set-Cookie` as Go's `http.SetCookie` writes it: name=value, then
/// Path, Domain (a leading dot dropped), Max-Age (0 for a negative
/// maxAge), HttpOnly, Secure, SameSite.
fn set_cookie_header(cfg: &StickyCookie, name: &str, value: &str) -> HeaderValue {
    let mut s = format!("{name}={value}");
    if !cfg.path.is_empty() {
        s.push_str("; Path=");
        s.push_str(&cfg.path);
    }
    let domain = cfg.domain.strip_prefix('.').unwrap_or(&cfg.domain);
    if !domain.is_empty() {
        s.push_str("; Domain=");
        s.push_str(domain);
    }
    if cfg.max_age > 0 {
        s.push_str(&format!("; Max-Age={}", cfg.max_age));
    } else if cfg.max_age < 0 {
        s.push_str("; Max-Age=0");
    }
    if cfg.http_only {
        s.push_str("; HttpOnly");
    }
    if cfg.secure {
        s.push_str("; Secure");
    }
    if let Some(same_site) = cfg.same_site {
        s.push_str("; SameSite=");
        s.push_str(same_site.as_str());
    }
    HeaderValue::from_str(&s).expect("checked when the configuration was read")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SameSite;

    fn cookie(name: Option<&str>) -> StickyCookie {
        StickyCookie {
            name: name.map(str::to_owned),
            secure: true,
            http_only: true,
            same_site: Some(SameSite::Lax),
            max_age: 60,
            path: "/".into(),
            domain: ".example.com".into(),
        }
    }

    #[test]
    fn values_and_names_are_traefiks() {
        // sha256("http://10.0.0.1:80") and sha1("_TRAEFIK_BACKEND_api@file"),
        // computed independently with coreutils.
        assert_eq!(value_of("http://10.0.0.1:80"), "df5bd2f9c0180410");
        assert_eq!(default_name("api@file"), "_ddce2");
        assert_eq!(value_of("one"), "7692c3ad3540bb80");
        assert_eq!(default_name("w@file"), "_c239a");
        assert_eq!(format!("{:x}", fnv1(b"a")), "af63bd4c8601b7be");
    }

    #[test]
    fn finds_the_member_and_writes_the_header_as_go_does() {
        let s = Sticky::new(&cookie(Some("lb")), "api@file", ["http://a", "http://b"]);
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("x=1"));
        let v = format!("other=2; lb=\"{}\"", value_of("http://b"));
        h.append(header::COOKIE, HeaderValue::from_str(&v).unwrap());
        assert_eq!(s.find(&h), Some((1, false)));
        assert_eq!(
            s.set_cookie(0).to_str().unwrap(),
            format!(
                "lb={}; Path=/; Domain=example.com; Max-Age=60; HttpOnly; Secure; SameSite=Lax",
                value_of("http://a")
            )
        );
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("lb=http://a"));
        assert_eq!(s.find(&h), Some((0, true)), "the raw name: rewritten");
        h.insert(header::COOKIE, HeaderValue::from_static("lb=nothing"));
        assert_eq!(s.find(&h), None);
        h.insert(header::COOKIE, HeaderValue::from_static("lbx=http://a"));
        assert_eq!(s.find(&h), None);
    }
}
