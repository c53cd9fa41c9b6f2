//! The authenticating middlewares' options: `basicAuth` and `digestAuth`
//! (`users`, `usersFile`, `realm`, `headerField`, `removeHeader`) with
//! Traefik 3.7's build-time checks (`pkg/middlewares/auth`): users read
//! from the file first (trimmed, blank and `#` lines skipped), then the
//! list, a later entry of a name replacing an earlier one. `basicAuth`:
//! each `name:hash` split on its one colon; no users is an error; hashes
//! are parsed here (`crate::htpasswd`): one no password can match is
//! refused where it is written. `digestAuth`: each `name:realm:HA1`
//! (htdigest) split on its two colons; a user of another realm than the
//! middleware's can never log in, and no users refuses every request
//! (warned, as Traefik accepts it). The request-time parts are
//! `crate::middleware::basic_auth` and `crate::middleware::digest_auth`.

use std::collections::BTreeMap;

use http::{HeaderName, HeaderValue};
use serde::Deserialize;

use super::super::super::decode::{At, Ctx};
use super::super::super::node::Pos;
use super::MiddlewareConfig;
use crate::htpasswd::Secret;

/// A validated `basicAuth`.
#[derive(Debug, Clone, PartialEq)]
pub struct BasicAuth {
    /// The users by name, each with its parsed hash (at least one).
    pub users: BTreeMap<String, Secret>,
    /// `realm` ("traefik" unless set).
    pub realm: String,
    /// `headerField`: the header the user's name is sent in.
    pub header_field: Option<HeaderName>,
    /// `removeHeader`: `Authorization` is not sent to the backend.
    pub remove_header: bool,
}

/// A validated `digestAuth`.
#[derive(Debug, Clone, PartialEq)]
pub struct DigestAuth {
    /// Each user's HA1 (`MD5(name:realm:password)` in hex, as written) by
    /// `name:realm`.
    pub users: BTreeMap<String, String>,
    /// `realm` ("traefik" unless set).
    pub realm: String,
    /// `headerField`: the header the user's name is sent in.
    pub header_field: Option<HeaderName>,
    /// `removeHeader`: `Authorization` is not sent to the backend.
    pub remove_header: bool,
}

/// Traefik's realm when none is given.
const DEFAULT_REALM: &str = "traefik";

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct BasicAuthFile {
    users: Vec<At<String>>,
    users_file: Option<At<String>>,
    realm: String,
    header_field: Option<At<String>>,
    remove_header: bool,
}

/// `digestAuth` as written: `basicAuth`'s keys.
pub(in super::super) type DigestAuthFile = BasicAuthFile;

/// One user entry and where it is written (a file line, or a list item).
struct Entry {
    text: String,
    key: String,
    pos: Pos,
}

/// The entries of `usersFile` then `users`, or `None` when the file
/// cannot be read (reported).
fn entries(ctx: &mut Ctx, file: Option<&At<String>>, users: &[At<String>]) -> Option<Vec<Entry>> {
    let mut out = Vec::new();
    if let Some(f) = file.filter(|f| !f.value.is_empty()) {
        match std::fs::read_to_string(&f.value) {
            Ok(text) => {
                for (n, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if !line.is_empty() && !line.starts_with('#') {
                        out.push(Entry {
                            text: line.to_owned(),
                            key: format!("{} ({}, line {})", f.path, f.value, n + 1),
                            pos: f.pos,
                        });
                    }
                }
            }
            Err(e) => {
                ctx.error(
                    &f.path,
                    f.pos,
                    format!("cannot read users file {:?}: {e}", f.value),
                );
                return None;
            }
        }
    }
    out.extend(users.iter().map(|u| Entry {
        text: u.value.clone(),
        key: u.path.clone(),
        pos: u.pos,
    }));
    Some(out)
}

/// A header field named in `at`, reported there when it is not a name.
pub(super) fn header_field(ctx: &mut Ctx, at: Option<&At<String>>) -> Option<Option<HeaderName>> {
    match at.filter(|a| !a.value.is_empty()) {
        None => Some(None),
        Some(a) => match HeaderName::try_from(a.value.as_str()) {
            Ok(n) => Some(Some(n)),
            Err(_) => {
                ctx.error(
                    &a.path,
                    a.pos,
                    format!("headerField: {:?} is not a header name", a.value),
                );
                None
            }
        },
    }
}

impl BasicAuthFile {
    /// The realm (Traefik's default when unset), refused when it cannot
    /// be sent in a challenge.
    fn checked_realm(&mut self, ctx: &mut Ctx, path: &str, pos: Pos, kind: &str) -> Option<String> {
        let realm = if self.realm.is_empty() {
            DEFAULT_REALM.to_owned()
        } else {
            std::mem::take(&mut self.realm)
        };
        if realm.contains('"') || HeaderValue::from_str(&realm).is_err() {
            ctx.error(
                path,
                pos,
                format!("{kind}: realm {realm:?} cannot be sent in WWW-Authenticate"),
            );
            return None;
        }
        Some(realm)
    }

    /// This file as a `digestAuth`.
    pub(super) fn check_digest(
        mut self,
        ctx: &mut Ctx,
        path: &str,
        pos: Pos,
    ) -> Option<MiddlewareConfig> {
        let entries = entries(ctx, self.users_file.as_ref(), &self.users)?;
        let mut users = BTreeMap::new();
        let mut ok = true;
        for e in entries {
            // Traefik splits on every colon and wants exactly three parts.
            let parts: Vec<&str> = e.text.split(':').collect();
            let [name, realm, ha1] = parts[..] else {
                ctx.error(&e.key, e.pos, "digestAuth user is not name:realm:HA1");
                ok = false;
                continue;
            };
            users.insert(format!("{name}:{realm}"), ha1.to_owned());
        }
        let header_field = header_field(ctx, self.header_field.as_ref())?;
        let realm = self.checked_realm(ctx, path, pos, "digestAuth")?;
        if ok && users.is_empty() {
            ctx.warn(path, pos, "digestAuth: no users, every request is refused");
        }
        ok.then_some(MiddlewareConfig::DigestAuth(DigestAuth {
            users,
            realm,
            header_field,
            remove_header: self.remove_header,
        }))
    }

    pub(super) fn check(mut self, ctx: &mut Ctx, path: &str, pos: Pos) -> Option<MiddlewareConfig> {
        let entries = entries(ctx, self.users_file.as_ref(), &self.users)?;
        let mut users = BTreeMap::new();
        let mut ok = true;
        for e in entries {
            // Traefik splits on every colon and wants exactly two parts.
            let mut parts = e.text.split(':');
            let (Some(name), Some(hash), None) = (parts.next(), parts.next(), parts.next()) else {
                ctx.error(
                    &e.key,
                    e.pos,
                    "basicAuth user is not name:hashed-password".to_owned(),
                );
                ok = false;
                continue;
            };
            match Secret::parse(hash) {
                Ok(secret) => {
                    users.insert(name.to_owned(), secret);
                }
                Err(why) => {
                    ctx.error(&e.key, e.pos, format!("basicAuth user {name:?}: {why}"));
                    ok = false;
                }
            }
        }
        if ok && users.is_empty() {
            ctx.error(path, pos, "basicAuth: no users found");
            return None;
        }
        let header_field = header_field(ctx, self.header_field.as_ref())?;
        let realm = self.checked_realm(ctx, path, pos, "basicAuth")?;
        ok.then_some(MiddlewareConfig::BasicAuth(BasicAuth {
            users,
            realm,
            header_field,
            remove_header: self.remove_header,
        }))
    }
}
