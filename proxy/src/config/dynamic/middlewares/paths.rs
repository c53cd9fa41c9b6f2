//! The middlewares that rewrite a request's path or redirect it:
//! `addPrefix`, `stripPrefix`, `stripPrefixRegex`, `replacePath`,
//! `replacePathRegex`, `redirectScheme`, `redirectRegex`, with Traefik
//! 3.7's options and build-time checks (`pkg/middlewares/{addprefix,
//! stripprefix,stripprefixregex,replacepath,replacepathregex,redirect}`).
//! Their request-time behaviour is in `crate::middleware::{path,redirect}`.

use serde::Deserialize;

use super::super::super::decode::{At, Ctx};
use super::super::super::node::Pos;
use super::{MiddlewareConfig, Pattern, pattern};

/// `addPrefix`: `prefix` is put before the request path.
#[derive(Debug, Clone, PartialEq)]
pub struct AddPrefix {
    /// Not empty.
    pub prefix: String,
}

/// `stripPrefix`: the first of `prefixes` the path starts with is removed
/// and sent as `X-Forwarded-Prefix`.
#[derive(Debug, Clone, PartialEq)]
pub struct StripPrefix {
    /// Trimmed of spaces, in the order written.
    pub prefixes: Vec<String>,
    /// Deprecated `forceSlash`: the stripped path always starts with `/`
    /// without keeping one of its own.
    pub force_slash: bool,
}

/// `stripPrefixRegex`: the first match of the first regex that matches
/// at the start of the path is removed and sent as `X-Forwarded-Prefix`.
#[derive(Debug, Clone, PartialEq)]
pub struct StripPrefixRegex {
    /// Compiled, in the order written.
    pub regexes: Vec<Pattern>,
}

/// `replacePath`: the path becomes `path`; the old one is sent as
/// `X-Replaced-Path`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplacePath {
    /// The new (escaped) path.
    pub path: String,
}

/// `replacePathRegex`: a path `regex` matches is replaced by
/// `replacement` (Go's `$1`/`${name}` expansion); the old one is sent as
/// `X-Replaced-Path`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplacePathRegex {
    /// Compiled, trimmed of spaces.
    pub regex: Pattern,
    /// Trimmed of spaces.
    pub replacement: String,
}

/// `redirectScheme`: a request not already on `scheme` is redirected to it.
#[derive(Debug, Clone, PartialEq)]
pub struct RedirectScheme {
    /// Not empty.
    pub scheme: String,
    /// `:port` to put in the Location; empty when none was given or when
    /// it is the scheme's default (80 for http, 443 for https).
    pub port: String,
    /// 301/308 instead of 302/307.
    pub permanent: bool,
    /// Traefik's reading of the client's URL (scheme, host, port, rest)
    /// and the Location it makes of it: `<scheme>://${2}<port>${4}`.
    pub url: Pattern,
    /// See `url`.
    pub template: String,
}

/// How Traefik splits the URL a `redirectScheme` rewrites.
const SCHEME_URL: &str = r"^(https?:\/\/)?(\[[\w:.]+\]|[\w\._-]+)?(:\d+)?(.*)$";

/// `redirectRegex`: a request whose URL `regex` matches is redirected to
/// the URL `replacement` makes of it.
#[derive(Debug, Clone, PartialEq)]
pub struct RedirectRegex {
    /// Compiled.
    pub regex: Pattern,
    /// With Go's `$1`/`${name}` expansion.
    pub replacement: String,
    /// 301/308 instead of 302/307.
    pub permanent: bool,
}

/// `encodedCharacters`: the percent-encoded bytes refused (400) in a
/// request path. Every one is refused unless allowed (the dynamic
/// middleware has no defaults, unlike the entrypoint option).
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedCharacters {
    /// The decoded values refused: of `/`, `\`, NUL, `;`, `%`, `?`, `#`.
    pub denied: Vec<u8>,
}

impl EncodedCharacters {
    /// Each option's key and the byte it allows, in Traefik's order (the
    /// middleware's and the entrypoint's `http.encodedCharacters`).
    pub const KEYS: [(&'static str, u8); 7] = [
        ("allowEncodedSlash", b'/'),
        ("allowEncodedBackSlash", b'\\'),
        ("allowEncodedNullCharacter", 0),
        ("allowEncodedSemicolon", b';'),
        ("allowEncodedPercent", b'%'),
        ("allowEncodedQuestionMark", b'?'),
        ("allowEncodedHash", b'#'),
    ];

    /// The bytes refused when `allowed[i]` says whether the byte of
    /// [`Self::KEYS`]`[i]` is allowed.
    pub fn denying(allowed: [bool; 7]) -> Vec<u8> {
        Self::KEYS
            .iter()
            .zip(allowed)
            .filter(|(_, allowed)| !allowed)
            .map(|((_, byte), _)| *byte)
            .collect()
    }
}

// === file schemas ===

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct AddPrefixFile {
    prefix: Option<String>,
}

impl AddPrefixFile {
    pub(super) fn check(self, ctx: &mut Ctx, path: &str, pos: Pos) -> Option<MiddlewareConfig> {
        match self.prefix.filter(|p| !p.is_empty()) {
            Some(prefix) => Some(MiddlewareConfig::AddPrefix(AddPrefix { prefix })),
            None => {
                ctx.error(path, pos, "addPrefix: prefix cannot be empty");
                None
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct StripPrefixFile {
    prefixes: Vec<String>,
    force_slash: Option<At<bool>>,
}

impl StripPrefixFile {
    pub(super) fn check(self, ctx: &mut Ctx, _path: &str, _pos: Pos) -> Option<MiddlewareConfig> {
        if let Some(f) = &self.force_slash {
            ctx.warn(
                &f.path,
                f.key_pos,
                "forceSlash is deprecated (Traefik 3.7 still honours it)",
            );
        }
        Some(MiddlewareConfig::StripPrefix(StripPrefix {
            prefixes: self.prefixes.iter().map(|p| p.trim().to_owned()).collect(),
            force_slash: self.force_slash.is_some_and(|f| f.value),
        }))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct StripPrefixRegexFile {
    regex: Vec<At<String>>,
}

impl StripPrefixRegexFile {
    pub(super) fn check(self, ctx: &mut Ctx) -> Option<MiddlewareConfig> {
        let mut regexes = Vec::new();
        let mut ok = true;
        for r in &self.regex {
            match pattern(ctx, r, r.value.trim()) {
                Some(p) => regexes.push(p),
                None => ok = false,
            }
        }
        ok.then_some(MiddlewareConfig::StripPrefixRegex(StripPrefixRegex {
            regexes,
        }))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct ReplacePathFile {
    path: String,
}

impl ReplacePathFile {
    pub(super) fn check(self, _ctx: &mut Ctx, _path: &str, _pos: Pos) -> Option<MiddlewareConfig> {
        Some(MiddlewareConfig::ReplacePath(ReplacePath {
            path: self.path,
        }))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct ReplacePathRegexFile {
    regex: At<String>,
    replacement: String,
}

impl ReplacePathRegexFile {
    pub(super) fn check(self, ctx: &mut Ctx, _path: &str, _pos: Pos) -> Option<MiddlewareConfig> {
        let regex = pattern(ctx, &self.regex, self.regex.value.trim())?;
        Some(MiddlewareConfig::ReplacePathRegex(ReplacePathRegex {
            regex,
            replacement: self.replacement.trim().to_owned(),
        }))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct RedirectSchemeFile {
    scheme: String,
    port: String,
    permanent: bool,
}

impl RedirectSchemeFile {
    pub(super) fn check(self, ctx: &mut Ctx, path: &str, pos: Pos) -> Option<MiddlewareConfig> {
        if self.scheme.is_empty() {
            ctx.error(
                path,
                pos,
                "redirectScheme: you must provide a target scheme",
            );
            return None;
        }
        let default_port = matches!(
            (self.scheme.as_str(), self.port.as_str()),
            ("http", "80") | ("https", "443")
        );
        let port = if self.port.is_empty() || default_port {
            String::new()
        } else {
            format!(":{}", self.port)
        };
        let url = Pattern::new(SCHEME_URL).ok()?;
        Some(MiddlewareConfig::RedirectScheme(RedirectScheme {
            template: format!("{}://${{2}}{port}${{4}}", self.scheme),
            scheme: self.scheme,
            port,
            permanent: self.permanent,
            url,
        }))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct RedirectRegexFile {
    regex: At<String>,
    replacement: String,
    permanent: bool,
}

impl RedirectRegexFile {
    pub(super) fn check(self, ctx: &mut Ctx, _path: &str, _pos: Pos) -> Option<MiddlewareConfig> {
        let regex = pattern(ctx, &self.regex, &self.regex.value)?;
        Some(MiddlewareConfig::RedirectRegex(RedirectRegex {
            regex,
            replacement: self.replacement,
            permanent: self.permanent,
        }))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct EncodedCharactersFile {
    allow_encoded_slash: bool,
    allow_encoded_back_slash: bool,
    allow_encoded_null_character: bool,
    allow_encoded_semicolon: bool,
    allow_encoded_percent: bool,
    allow_encoded_question_mark: bool,
    allow_encoded_hash: bool,
}

impl EncodedCharactersFile {
    pub(super) fn check(self) -> Option<MiddlewareConfig> {
        let denied = EncodedCharacters::denying([
            self.allow_encoded_slash,
            self.allow_encoded_back_slash,
            self.allow_encoded_null_character,
            self.allow_encoded_semicolon,
            self.allow_encoded_percent,
            self.allow_encoded_question_mark,
            self.allow_encoded_hash,
        ]);
        Some(MiddlewareConfig::EncodedCharacters(EncodedCharacters {
            denied,
        }))
    }
}
