//! `basicAuth` at request time, as Traefik 3.7 decides: the credentials
//! of `Authorization: Basic` (scheme in any case, standard base64, the
//! password after the first colon) are checked against the user's hash;
//! an unknown user is checked against the first user's hash all the same
//! (no timing difference tells which names exist). A refusal is a 401
//! with `WWW-Authenticate: Basic realm="<realm>"`, the service never
//! reached; an accepted request gets the user in `headerField` and loses
//! `Authorization` with `removeHeader`.
//!
//! A bcrypt check costs milliseconds: it runs on the blocking pool, at
//! most [`SLOW_CHECKS`] at once for the whole process, and the worker
//! serves its other requests meanwhile. SHA1 and MD5-crypt checks run in
//! place (SHA1 a microsecond, MD5-crypt's 1,000 rounds about 100 µs).
//!
//! Ours, not Traefik's: credentials a bcrypt or MD5-crypt hash accepted
//! are remembered ([`Accepted`]), so a client that sends them again (every
//! request of a browser or an API client) costs one keyed digest instead of
//! the hash, as Caddy's basic auth cache does. Only accepted credentials
//! are remembered, so a wrong password always costs the full hash; what is
//! kept is a keyed digest (HMAC-SHA256 with a key drawn when the
//! middleware is built, never the password), and a reload builds a new
//! middleware, forgetting them. Per request: nothing allocated for
//! credentials up to 384 bytes decoded, except what a bcrypt check sends
//! to its thread; no lock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::hmac;
use base64::Engine as _;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use tokio::sync::Semaphore;

use super::path::Step;
use crate::config::BasicAuth as Config;
use crate::forward::ProxyBody;
use crate::htpasswd::Secret;
use crate::upstream::RequestBody;

/// How many bcrypt checks may run at once in the process; more wait
/// (without blocking their worker) for a turn.
const SLOW_CHECKS: usize = 4;

static SLOW: Semaphore = Semaphore::const_new(SLOW_CHECKS);

/// A compiled `basicAuth`.
#[derive(Debug)]
pub struct BasicAuth {
    users: BTreeMap<String, Secret>,
    /// Checked for an unknown user, so that it costs what a known one does.
    decoy: Secret,
    challenge: HeaderValue,
    header_field: Option<HeaderName>,
    remove_header: bool,
    /// Credentials a slow hash (bcrypt, MD5-crypt) accepted (boxed: the
    /// HMAC key's state is large, and the middleware enum holds this).
    accepted: Box<Accepted>,
}

impl BasicAuth {
    pub(super) fn new(c: &Config) -> Self {
        let decoy = c
            .users
            .values()
            .next()
            .cloned()
            .unwrap_or(Secret::Sha1([0; 20]));
        Self {
            users: c.users.clone(),
            decoy,
            challenge: HeaderValue::from_str(&format!("Basic realm=\"{}\"", c.realm))
                .unwrap_or_else(|_| HeaderValue::from_static("Basic realm=\"traefik\"")),
            header_field: c.header_field.clone(),
            remove_header: c.remove_header,
            accepted: Box::new(Accepted::new()),
        }
    }

    pub(super) async fn apply(&self, mut req: Request<RequestBody>) -> Step {
        // The decoding buffer is not kept across the wait for a bcrypt
        // check (the future stays small).
        let user = match self.check(req.headers()) {
            Verdict::Done(user) => user,
            Verdict::Slow {
                secret,
                password,
                user,
                tag,
            } => {
                if verify_off_loop(secret, password).await {
                    if user.is_some() {
                        self.accepted.insert(tag);
                    }
                    user
                } else {
                    None
                }
            }
        };
        let Some(user) = user else {
            return Err(Box::new(unauthorized(self.challenge.clone())));
        };
        if let Some(field) = &self.header_field
            && let Ok(v) = HeaderValue::from_str(user)
        {
            req.headers_mut().insert(field.clone(), v);
        }
        if self.remove_header {
            req.headers_mut().remove(header::AUTHORIZATION);
        }
        Ok(req)
    }

    /// The credentials of `headers` checked, or what is left to check off
    /// the event loop.
    fn check(&self, headers: &HeaderMap) -> Verdict<'_> {
        let mut buf = [0u8; 384];
        match credentials(headers, &mut buf) {
            Some(Credentials::Inline(n)) => self.check_decoded(&buf[..n]),
            Some(Credentials::Long(v)) => self.check_decoded(&v),
            None => Verdict::Done(None),
        }
    }

    /// [`BasicAuth::check`] of `decoded` (`user:password`).
    fn check_decoded(&self, decoded: &[u8]) -> Verdict<'_> {
        let Some(colon) = decoded.iter().position(|&b| b == b':') else {
            return Verdict::Done(None);
        };
        let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
        let known = std::str::from_utf8(user)
            .ok()
            .and_then(|u| self.users.get_key_value(u));
        let secret = known.map_or(&self.decoy, |(_, s)| s);
        let user = known.map(|(name, _)| name.as_str());
        if matches!(secret, Secret::Sha1(_)) {
            // As cheap as the digest that would remember it.
            return Verdict::Done(user.filter(|_| secret.verify(password)));
        }
        let tag = self.accepted.tag(decoded);
        if user.is_some() && self.accepted.contains(tag) {
            return Verdict::Done(user);
        }
        if secret.is_slow() {
            return Verdict::Slow {
                secret,
                password: password.to_vec(),
                user,
                tag,
            };
        }
        let ok = user.filter(|_| secret.verify(password));
        if ok.is_some() {
            self.accepted.insert(tag);
        }
        Verdict::Done(ok)
    }
}

/// What [`BasicAuth::check`] found.
enum Verdict<'a> {
    /// The accepted user, or `None`.
    Done(Option<&'a str>),
    /// A bcrypt hash: `user` (`None` for an unknown one, checked all the
    /// same) is accepted when `password` matches `secret`.
    Slow {
        secret: &'a Secret,
        password: Vec<u8>,
        user: Option<&'a str>,
        /// The credentials' [`Accepted`] tag, remembered if they pass.
        tag: Tag,
    },
}

/// The first 128 bits of a credentials' keyed digest; never all zero (an
/// empty slot).
type Tag = [u64; 2];

/// Slots of [`Accepted`]: 4 KiB per middleware; a credential whose slot
/// another takes is hashed again, once.
const ACCEPTED_SLOTS: usize = 256;

/// Credentials accepted by this middleware, as tags in a fixed table of
/// atomics (no lock, no allocation per request). A slot is written as two
/// words: a reader racing a writer may see one word of each tag, which
/// matches a request's tag only with a 64-bit collision on a tag that was
/// itself accepted.
#[derive(Debug)]
struct Accepted {
    key: hmac::Key,
    slots: Box<[[AtomicU64; 2]]>,
}

impl Accepted {
    fn new() -> Self {
        let mut key = [0u8; 32];
        // Without randomness (it does not fail on supported systems) the
        // table is keyed by zeros; tags still name accepted credentials only.
        let _ = aws_lc_rs::rand::fill(&mut key);
        Accepted {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            slots: (0..ACCEPTED_SLOTS).map(|_| Default::default()).collect(),
        }
    }

    /// The tag of `credentials` (`user:password` as decoded).
    fn tag(&self, credentials: &[u8]) -> Tag {
        let d = hmac::sign(&self.key, credentials);
        let d = d.as_ref();
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&d[i..i + 8]);
            u64::from_le_bytes(w)
        };
        [word(0), word(8) | 1]
    }

    fn slot(&self, tag: Tag) -> &[AtomicU64; 2] {
        &self.slots[(tag[0] >> 32) as usize % ACCEPTED_SLOTS]
    }

    fn contains(&self, tag: Tag) -> bool {
        let s = self.slot(tag);
        s[0].load(Ordering::Relaxed) == tag[0] && s[1].load(Ordering::Relaxed) == tag[1]
    }

    fn insert(&self, tag: Tag) {
        let s = self.slot(tag);
        s[0].store(tag[0], Ordering::Relaxed);
        s[1].store(tag[1], Ordering::Relaxed);
    }
}

/// `secret.verify(password)` on the blocking pool, once a turn is free.
async fn verify_off_loop(secret: &Secret, password: Vec<u8>) -> bool {
    let Ok(_turn) = SLOW.acquire().await else {
        return false;
    };
    let secret = secret.clone();
    tokio::task::spawn_blocking(move || secret.verify(&password))
        .await
        .unwrap_or(false)
}

/// Where the decoded credentials are.
enum Credentials {
    /// In the caller's buffer, this long.
    Inline(usize),
    /// Too long for it.
    Long(Vec<u8>),
}

/// The decoded `Authorization: Basic` credentials, as Go's
/// `Request.BasicAuth` reads them (the first such header).
fn credentials(headers: &HeaderMap, buf: &mut [u8]) -> Option<Credentials> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let scheme = value.get(..6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let b64 = &value[6..];
    let engine = &base64::engine::general_purpose::STANDARD;
    if base64::decoded_len_estimate(b64.len()) <= buf.len() {
        engine.decode_slice(b64, buf).ok().map(Credentials::Inline)
    } else {
        engine.decode(b64).ok().map(Credentials::Long)
    }
}

/// Traefik's refusal: 401, the challenge, `401 Unauthorized`.
pub(super) fn unauthorized(challenge: HeaderValue) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::full("401 Unauthorized\n"));
    *resp.status_mut() = StatusCode::UNAUTHORIZED;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    h.insert(header::WWW_AUTHENTICATE, challenge);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    // `openssl passwd -apr1 -salt Nf8Hbmnt secret`.
    const APR1: &str = "$apr1$Nf8Hbmnt$vzN4/HYwFkrBpFBNM27mO/";

    fn auth() -> BasicAuth {
        let mut users = BTreeMap::new();
        users.insert("ann".to_owned(), Secret::parse(APR1).unwrap());
        BasicAuth::new(&Config {
            users,
            realm: "traefik".to_owned(),
            header_field: None,
            remove_header: false,
        })
    }

    fn verdict(a: &BasicAuth, credentials: &str) -> Option<String> {
        let mut h = HeaderMap::new();
        let b64 = base64::engine::general_purpose::STANDARD.encode(credentials);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {b64}")).unwrap(),
        );
        match a.check(&h) {
            Verdict::Done(u) => u.map(str::to_owned),
            Verdict::Slow { .. } => panic!("apr1 is checked in place"),
        }
    }

    #[test]
    fn accepted_credentials_are_remembered_and_only_those() {
        let a = auth();
        let tag = |c: &str| a.accepted.tag(c.as_bytes());
        assert!(!a.accepted.contains(tag("ann:secret")));
        assert_eq!(verdict(&a, "ann:wrong"), None);
        assert!(
            !a.accepted.contains(tag("ann:wrong")),
            "a refusal is not kept"
        );
        assert_eq!(verdict(&a, "bob:secret"), None, "unknown user");
        assert!(!a.accepted.contains(tag("bob:secret")));
        assert_eq!(verdict(&a, "ann:secret").as_deref(), Some("ann"));
        assert!(a.accepted.contains(tag("ann:secret")));
        // Remembered: accepted again; a wrong password still refused.
        assert_eq!(verdict(&a, "ann:secret").as_deref(), Some("ann"));
        assert_eq!(verdict(&a, "ann:secreT"), None);
        assert_eq!(verdict(&a, "ann:"), None);
        // A new middleware (a reload) has its own key and remembers nothing.
        let b = auth();
        assert!(!b.accepted.contains(b.accepted.tag(b"ann:secret")));
        assert_ne!(a.accepted.tag(b"ann:secret"), b.accepted.tag(b"ann:secret"));
    }

    #[test]
    fn a_slot_taken_by_other_credentials_is_checked_again() {
        let a = auth();
        let t = a.accepted.tag(b"ann:secret");
        a.accepted.insert(t);
        // Another tag in the same slot replaces it.
        let other = [t[0], t[1] ^ 2];
        a.accepted.insert(other);
        assert!(!a.accepted.contains(t));
        assert_eq!(verdict(&a, "ann:secret").as_deref(), Some("ann"));
        assert!(a.accepted.contains(t));
    }
}
