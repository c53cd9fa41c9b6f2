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
//! place (microseconds). Per request: nothing allocated for credentials
//! up to 384 bytes decoded, except what a bcrypt check sends to its
//! thread.

use std::collections::BTreeMap;

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
            } => {
                if verify_off_loop(secret, password).await {
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
        if secret.is_slow() {
            return Verdict::Slow {
                secret,
                password: password.to_vec(),
                user,
            };
        }
        Verdict::Done(user.filter(|_| secret.verify(password)))
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
    },
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
