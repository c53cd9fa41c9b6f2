//! `sticky.cookie` of `loadBalancer` and `weighted` services: its file
//! schema and checks, with Traefik 3.7's defaults (path `/`, no domain,
//! session cookie, `sameSite` unset).
//!
//! Only the configuration: the cookie's name derived from the service, its
//! values and the `Set-Cookie` header are made in `upstream::sticky` when
//! a configuration is compiled.

use serde::Deserialize;

use super::super::decode::{At, Ctx};

/// A sticky cookie as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickyCookie {
    /// `name`, with the characters a cookie name cannot hold replaced by
    /// `_` as Traefik does; `None`: derived from the service name.
    pub name: Option<String>,
    /// `secure`.
    pub secure: bool,
    /// `httpOnly`.
    pub http_only: bool,
    /// `sameSite` (`none`, `lax`, `strict`, any case); anything else sets
    /// no attribute, as in Traefik.
    pub same_site: Option<SameSite>,
    /// `maxAge` in seconds: 0 a session cookie, negative deletes it.
    pub max_age: i64,
    /// `path` (default `/`).
    pub path: String,
    /// `domain` (default none).
    pub domain: String,
}

/// The `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// `SameSite=None`.
    None,
    /// `SameSite=Lax`.
    Lax,
    /// `SameSite=Strict`.
    Strict,
}

impl SameSite {
    /// The attribute's value as written in `Set-Cookie`.
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::None => "None",
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
        }
    }
}

/// `sticky` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct StickyFile {
    pub(super) cookie: Option<At<CookieFile>>,
}

/// `sticky.cookie` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct CookieFile {
    name: Option<String>,
    secure: Option<bool>,
    http_only: Option<bool>,
    same_site: Option<String>,
    max_age: Option<i64>,
    path: Option<At<String>>,
    domain: Option<At<String>>,
}

/// Checks `sticky.cookie`; `None` when it has an error (in `ctx`).
pub(super) fn check(ctx: &mut Ctx, cookie: At<CookieFile>) -> Option<StickyCookie> {
    let c = cookie.value;
    let mut ok = true;
    let mut attribute = |field: Option<At<String>>, default: &str| match field {
        Some(v) if v.ok => {
            // Traefik drops the bytes a cookie attribute cannot hold; a
            // header could not carry them at all, so they are refused.
            if v.value
                .bytes()
                .any(|b| b == b';' || !(0x20..0x7f).contains(&b))
            {
                ctx.error(
                    &v.path,
                    v.pos,
                    format!(
                        "{:?} cannot be written in a cookie (no ';', control or non-ASCII characters)",
                        v.value
                    ),
                );
                ok = false;
            }
            v.value
        }
        Some(_) => {
            ok = false;
            String::new()
        }
        None => default.to_owned(),
    };
    let path = attribute(c.path, "/");
    let domain = attribute(c.domain, "");
    let same_site = match c
        .same_site
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("none") => Some(SameSite::None),
        Some("lax") => Some(SameSite::Lax),
        Some("strict") => Some(SameSite::Strict),
        _ => None,
    };
    ok.then(|| StickyCookie {
        name: c.name.filter(|n| !n.is_empty()).map(|n| sanitize_name(&n)),
        secure: c.secure.unwrap_or(false),
        http_only: c.http_only.unwrap_or(false),
        same_site,
        max_age: c.max_age.unwrap_or(0),
        path,
        domain,
    })
}

/// A cookie name as Traefik sanitizes it: the token characters kept, any
/// other character replaced by `_`.
fn sanitize_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '!' | '#' | '$' | '%' | '&' | '\'' | '*' | '+' | '-' | '.' | '^' | '`' | '|' | '~' => c,
            c if c.is_ascii_alphanumeric() => c,
            _ => '_',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::sanitize_name;

    #[test]
    fn names_are_sanitized_as_traefik_does() {
        assert_eq!(sanitize_name("my cookie;é=1"), "my_cookie___1");
        assert_eq!(sanitize_name("a.b-c~d"), "a.b-c~d");
    }
}
