//! `digestAuth` at request time, as Traefik 3.7 (its fork of
//! go-http-auth's digest authenticator) decides: RFC 2617 digest with
//! `qop=auth` and MD5 only. A request passes when its
//! `Authorization: Digest …` names this middleware's `opaque`, `MD5` (or
//! no algorithm) and `qop=auth`, a `uri` that is the request's target or
//! a path prefix of it, a known user of the realm, a `response` equal to
//! `MD5(HA1:nonce:nc:cnonce:auth:MD5(method:uri))`, and a nonce this
//! middleware issued whose count `nc` is above the last one used. Any
//! other request gets a 401 with a fresh nonce in `WWW-Authenticate:
//! Digest realm=…, nonce=…, opaque=…, algorithm="MD5", qop="auth"`.
//! An accepted request gets the user in `headerField` and loses
//! `Authorization` with `removeHeader`.
//!
//! The issued nonces live in this compiled middleware (a reload starts
//! afresh with a new `opaque`, as Traefik's rebuilt handler does), in a
//! sharded concurrent map bounded like go-http-auth's client cache: past
//! 1,100 nonces the 200 least recently used are dropped. A nonce's count
//! is an atomic compare-and-swap: no lock held across a request.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use base64::Engine as _;
use dashmap::DashMap;
use http::Request;
use http::header::{self, HeaderName, HeaderValue};
use md5::{Digest as _, Md5};

use super::basic_auth::unauthorized;
use super::path::Step;
use crate::config::DigestAuth as Config;
use crate::upstream::RequestBody;

/// go-http-auth's `ClientCacheSize` and `ClientCacheTolerance`.
const CACHE_SIZE: usize = 1000;
const CACHE_TOLERANCE: usize = 100;

/// A nonce: base64 of 12 random bytes.
type Nonce = [u8; 16];

/// What is known of an issued nonce.
#[derive(Debug)]
struct Client {
    /// The last nonce count accepted (0: none yet).
    nc: AtomicU64,
    /// When it was issued or last used, in nanoseconds since `epoch`.
    last_seen: AtomicU64,
}

/// A compiled `digestAuth`.
#[derive(Debug)]
pub struct DigestAuth {
    /// HA1 by `name:realm`.
    users: std::collections::BTreeMap<String, String>,
    realm: String,
    opaque: String,
    header_field: Option<HeaderName>,
    remove_header: bool,
    clients: DashMap<Nonce, Client>,
    epoch: Instant,
}

/// 12 random bytes in base64 (the system's generator, through aws-lc), as
/// go-http-auth's `RandomKey`.
fn random_key() -> Nonce {
    let mut raw = [0u8; 12];
    // aws-lc's generator does not fail once initialised; a zero key
    // would only make the nonce guessable, never accept a bad digest.
    let _ = aws_lc_rs::rand::fill(&mut raw);
    let mut out = [0u8; 16];
    let _ = base64::engine::general_purpose::STANDARD.encode_slice(raw, &mut out);
    out
}

impl DigestAuth {
    pub(super) fn new(c: &Config) -> Self {
        let opaque = random_key();
        Self {
            users: c.users.clone(),
            realm: c.realm.clone(),
            opaque: String::from_utf8_lossy(&opaque).into_owned(),
            header_field: c.header_field.clone(),
            remove_header: c.remove_header,
            clients: DashMap::new(),
            epoch: Instant::now(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    pub(super) fn apply(&self, mut req: Request<RequestBody>) -> Step {
        let Some(user) = self.check(&req) else {
            return Err(Box::new(unauthorized(self.challenge())));
        };
        if let Some(field) = &self.header_field
            && let Ok(v) = HeaderValue::from_str(&user)
        {
            req.headers_mut().insert(field.clone(), v);
        }
        if self.remove_header {
            req.headers_mut().remove(header::AUTHORIZATION);
        }
        Ok(req)
    }

    /// The accepted user of `req`, or `None`.
    fn check(&self, req: &Request<RequestBody>) -> Option<String> {
        let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
        let params = value.strip_prefix("Digest ")?;
        let auth = Params::parse(params);
        if auth.get("opaque") != self.opaque
            || auth.get_or("algorithm", "MD5") != "MD5"
            || auth.get("qop") != "auth"
        {
            return None;
        }
        let uri = auth.get("uri");
        let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
        if target != uri {
            // go-http-auth also takes a `uri` whose path is a prefix of
            // the request's path.
            let theirs: http::Uri = uri.parse().ok()?;
            if !req.uri().path().starts_with(theirs.path()) {
                return None;
            }
        }
        let username = auth.get("username");
        let ha1 = self.users.get(&format!("{username}:{}", self.realm))?;
        let ha2 = hex_md5(&[req.method().as_str(), ":", uri]);
        let (nonce, nc, cnonce, qop) = (
            auth.get("nonce"),
            auth.get("nc"),
            auth.get("cnonce"),
            auth.get("qop"),
        );
        let kd = hex_md5(&[ha1, ":", nonce, ":", nc, ":", cnonce, ":", qop, ":", &ha2]);
        if !constant_time_eq(kd.as_bytes(), auth.get("response").as_bytes()) {
            return None;
        }
        let count = u64::from_str_radix(nc, 16).ok()?;
        let key: Nonce = nonce.as_bytes().try_into().ok()?;
        let client = self.clients.get(&key)?;
        // A count at or below the last one is a replay.
        let mut last = client.nc.load(Ordering::Acquire);
        loop {
            if last != 0 && last >= count {
                return None;
            }
            match client
                .nc
                .compare_exchange(last, count, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(now) => last = now,
            }
        }
        client.last_seen.store(self.now(), Ordering::Relaxed);
        Some(username.to_owned())
    }

    /// A challenge with a newly issued nonce.
    fn challenge(&self) -> HeaderValue {
        if self.clients.len() > CACHE_SIZE + CACHE_TOLERANCE {
            self.purge(CACHE_TOLERANCE * 2);
        }
        let nonce = random_key();
        self.clients.insert(
            nonce,
            Client {
                nc: AtomicU64::new(0),
                last_seen: AtomicU64::new(self.now()),
            },
        );
        let nonce = std::str::from_utf8(&nonce).unwrap_or_default();
        let text = format!(
            r#"Digest realm="{}", nonce="{nonce}", opaque="{}", algorithm="MD5", qop="auth""#,
            self.realm, self.opaque
        );
        // The realm was checked as a header value when configured.
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("Digest"))
    }

    /// Drops the `count` least recently seen nonces.
    fn purge(&self, count: usize) {
        let mut seen: Vec<(u64, Nonce)> = self
            .clients
            .iter()
            .map(|e| (e.value().last_seen.load(Ordering::Relaxed), *e.key()))
            .collect();
        seen.sort_unstable();
        for (_, nonce) in seen.into_iter().take(count) {
            self.clients.remove(&nonce);
        }
    }
}

fn hex_md5(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    let digest = h.finalize();
    let mut out = String::with_capacity(32);
    for b in digest {
        use std::fmt::Write as _;
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `key=value` pairs of a digest header, as go-http-auth's
/// `ParsePairs` reads them: items split at commas outside quotes, a
/// backslash escaping the next character inside them, a value's quotes
/// removed, a later key replacing an earlier one.
struct Params<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Params<'a> {
    fn parse(text: &'a str) -> Self {
        let mut out = Vec::new();
        for item in split_list(text.trim()) {
            let (k, v) = match item {
                Cow::Borrowed(s) => match s.split_once('=') {
                    Some((k, v)) => (Cow::Borrowed(k), Cow::Borrowed(unquote(v))),
                    None => (Cow::Borrowed(s), Cow::Borrowed("")),
                },
                Cow::Owned(s) => match s.split_once('=') {
                    Some((k, v)) => (Cow::Owned(k.to_owned()), Cow::Owned(unquote(v).to_owned())),
                    None => (Cow::Owned(s), Cow::Borrowed("")),
                },
            };
            out.push((k, v));
        }
        Params(out)
    }

    /// The last value of `key`, empty when absent (Go's map default).
    fn get(&self, key: &str) -> &str {
        self.get_or(key, "")
    }

    fn get_or<'s>(&'s self, key: &str, default: &'s str) -> &'s str {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map_or(default, |(_, v)| v.as_ref())
    }
}

/// `v` without its surrounding quotes, when it has both.
fn unquote(v: &str) -> &str {
    if v.len() > 1 && v.starts_with('"') && v.ends_with('"') {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// The comma-separated items of `text`, each trimmed; an item with an
/// escape inside quotes is unescaped (owned), the others borrowed.
fn split_list(text: &str) -> Vec<Cow<'_, str>> {
    let mut items = Vec::new();
    let (mut start, mut quote, mut escape) = (0, false, false);
    let mut owned: Option<String> = None;
    for (i, c) in text.char_indices() {
        if escape {
            escape = false;
            if let Some(o) = owned.as_mut() {
                o.push(c);
            }
            continue;
        }
        match c {
            '\\' if quote => {
                escape = true;
                // From here on the item differs from the text.
                owned.get_or_insert_with(|| text[start..i].to_owned());
                continue;
            }
            '"' => quote = !quote,
            ',' if !quote => {
                items.push(finish(&text[start..i], owned.take()));
                start = i + 1;
                continue;
            }
            _ => {}
        }
        if let Some(o) = owned.as_mut() {
            o.push(c);
        }
    }
    if start < text.len() {
        items.push(finish(&text[start..], owned.take()));
    }
    items
}

fn finish(raw: &str, owned: Option<String>) -> Cow<'_, str> {
    match owned {
        Some(o) => Cow::Owned(o.trim().to_owned()),
        None => Cow::Borrowed(raw.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_as_go_http_auth_reads_them() {
        let p = Params::parse(
            r#" username="a\"b", realm="x, y", nc=00000001, qop=auth, flag, realm="z" "#,
        );
        assert_eq!(p.get("username"), "a\"b");
        assert_eq!(p.get("realm"), "z");
        assert_eq!(p.get("nc"), "00000001");
        assert_eq!(p.get("qop"), "auth");
        assert_eq!(p.get("flag"), "");
        assert_eq!(p.get("missing"), "");
        assert_eq!(p.get_or("algorithm", "MD5"), "MD5");
    }

    #[test]
    fn md5_hex() {
        assert_eq!(hex_md5(&["a", "bc"]), "900150983cd24fb0d6963f7d28e17f72");
    }
}
