//! `compress`' options (`encodings`, `defaultEncoding`,
//! `minResponseBodyBytes`, `excludedContentTypes`,
//! `includedContentTypes`), with Traefik 3.7's defaults and build-time
//! checks (`pkg/middlewares/compress`): the encodings among gzip, br and
//! zstd, the default one of them, the two content-type lists exclusive
//! and each entry a media type as Go's `mime.ParseMediaType` reads it
//! ([`MediaType`], also what the request path matches responses with).
//! The request-time part is `crate::middleware::compress`.

use serde::Deserialize;

use super::super::super::decode::{At, Ctx};
use super::super::super::node::Pos;
use super::MiddlewareConfig;

/// Traefik's `defaultMinSize`: responses shorter than this (by their
/// `Content-Length`) are sent as they are.
const DEFAULT_MIN_SIZE: u64 = 1024;

/// A content coding the proxy can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `gzip`.
    Gzip,
    /// `br`.
    Brotli,
    /// `zstd`.
    Zstd,
}

impl Encoding {
    /// Its `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Brotli => "br",
            Encoding::Zstd => "zstd",
        }
    }

    fn from_token(s: &str) -> Option<Self> {
        match s {
            "gzip" => Some(Encoding::Gzip),
            "br" => Some(Encoding::Brotli),
            "zstd" => Some(Encoding::Zstd),
            _ => None,
        }
    }
}

/// A validated `compress`.
#[derive(Debug, Clone, PartialEq)]
pub struct Compress {
    /// `encodings`, in order of preference (at equal q-value).
    pub encodings: Vec<Encoding>,
    /// `defaultEncoding`: used for a request without `Accept-Encoding`
    /// and for `*` (one of `encodings`).
    pub default_encoding: Option<Encoding>,
    /// `minResponseBodyBytes` (1024 unless set above 0).
    pub min_size: u64,
    /// `minResponseBodyBytes` as written (0 when not), for the API.
    pub min_written: i64,
    /// `excludedContentTypes`, after `application/grpc` (always
    /// excluded): neither requests nor responses of these types are
    /// compressed.
    pub excluded: Vec<MediaType>,
    /// `includedContentTypes`: when set, only responses of these types
    /// (or without a type) are compressed.
    pub included: Vec<MediaType>,
}

/// A media type with its parameters, as written in a content-type list:
/// `text/html` matches `text/html; charset=utf-8`, `text/html;
/// charset=utf-8` only that (the same parameters, no others).
#[derive(Debug, Clone, PartialEq)]
pub struct MediaType {
    /// The entry as written (for the API).
    pub written: String,
    /// `type/subtype`, lowercase.
    pub essence: String,
    /// Its parameters: names lowercase, values as unquoted.
    pub params: Vec<(String, String)>,
}

impl MediaType {
    /// `s` read as Go's `mime.ParseMediaType` does, or its error.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let parsed = parse(s)?;
        let mut params = Vec::new();
        for p in parsed.params {
            let (name, value) = p?;
            let name = name.to_ascii_lowercase();
            if params.iter().any(|(n, _): &(String, String)| *n == name) {
                return Err("mime: duplicate parameter name");
            }
            params.push((name, value.to_string()));
        }
        Ok(Self {
            written: s.to_owned(),
            essence: parsed.essence.to_ascii_lowercase(),
            params,
        })
    }

    /// Whether a header value's media type is this one (parameters as
    /// [`MediaType`] says); `None` when `value` is no media type Go can
    /// parse. No allocation.
    pub fn matches(&self, value: &Parsed<'_>) -> bool {
        if !value.essence.eq_ignore_ascii_case(&self.essence) {
            return false;
        }
        if self.params.is_empty() {
            return true;
        }
        let mut n = 0;
        for p in value.params.clone() {
            let Ok((name, v)) = p else { return false };
            n += 1;
            let found = self
                .params
                .iter()
                .any(|(k, want)| name.eq_ignore_ascii_case(k) && v.eq(want));
            if !found {
                return false;
            }
        }
        n == self.params.len()
    }
}

/// A header value read as a media type, its parameters not yet read.
#[derive(Debug, Clone)]
pub struct Parsed<'a> {
    /// `type/subtype` (or a lone token) as written, trimmed.
    pub essence: &'a str,
    params: Params<'a>,
}

/// Reads the media type of `s` (its parameters are read when matched);
/// an error when the type itself is malformed.
pub fn parse(s: &str) -> Result<Parsed<'_>, &'static str> {
    let (base, rest) = s.find(';').map_or((s, ""), |i| (&s[..i], &s[i..]));
    let essence = base.trim();
    let (ty, sub) = essence
        .split_once('/')
        .map_or((essence, None), |(t, s)| (t, Some(s)));
    if !is_token(ty) || sub.is_some_and(|s| !is_token(s)) {
        return Err("mime: expected token after slash");
    }
    if ty.is_empty() {
        return Err("mime: no media type");
    }
    Ok(Parsed {
        essence,
        params: Params(rest),
    })
}

/// Whether every byte of non-empty `s` is an RFC 7230 token byte (Go's
/// `isTokenChar`).
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(token_byte)
}

fn token_byte(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !b"()<>@,;:\\\"/[]?=".contains(&b)
}

/// How many leading bytes of `s` are token bytes.
fn token_len(s: &str) -> usize {
    s.bytes().position(|b| !token_byte(b)).unwrap_or(s.len())
}

/// The `; name=value` parameters after a media type.
#[derive(Debug, Clone)]
struct Params<'a>(&'a str);

/// A parameter's value: a token, or a quoted string still escaped.
#[derive(Debug, Clone, Copy)]
struct Value<'a> {
    raw: &'a str,
    quoted: bool,
}

impl Value<'_> {
    /// The characters of the value, quotes and escapes removed.
    fn chars(&self) -> impl Iterator<Item = char> + '_ {
        let mut it = self.raw.chars();
        let quoted = self.quoted;
        std::iter::from_fn(move || {
            let c = it.next()?;
            if quoted && c == '\\' {
                it.next()
            } else {
                Some(c)
            }
        })
    }

    fn eq(&self, want: &str) -> bool {
        self.chars().eq(want.chars())
    }
}

impl std::fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.chars()
            .try_for_each(|c| std::fmt::Write::write_char(f, c))
    }
}

impl<'a> Iterator for Params<'a> {
    type Item = Result<(&'a str, Value<'a>), &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        const BAD: &str = "mime: invalid media parameter";
        let v = self.0.trim_start();
        if v.is_empty() {
            return None;
        }
        // A lone trailing ";" is allowed.
        if v.trim() == ";" {
            self.0 = "";
            return None;
        }
        let Some(v) = v.strip_prefix(';') else {
            self.0 = "";
            return Some(Err(BAD));
        };
        let v = v.trim_start();
        let (name, v) = v.split_at(token_len(v));
        let v = v.trim_start();
        let Some(v) = v.strip_prefix('=').filter(|_| !name.is_empty()) else {
            self.0 = "";
            return Some(Err(BAD));
        };
        let v = v.trim_start();
        let (value, rest) = if let Some(q) = v.strip_prefix('"') {
            let mut esc = false;
            let close = q.char_indices().find(|&(_, c)| {
                let end = !esc && c == '"';
                esc = !esc && c == '\\';
                end
            });
            let Some((i, _)) = close else {
                self.0 = "";
                return Some(Err(BAD));
            };
            (
                Value {
                    raw: &q[..i],
                    quoted: true,
                },
                &q[i + 1..],
            )
        } else {
            let end = token_len(v);
            if end == 0 {
                self.0 = "";
                return Some(Err(BAD));
            }
            (
                Value {
                    raw: &v[..end],
                    quoted: false,
                },
                &v[end..],
            )
        };
        self.0 = rest;
        Some(Ok((name, value)))
    }
}

impl Parsed<'_> {
    /// Whether the parameters are well formed (Go refuses the whole value
    /// otherwise).
    pub fn params_ok(&self) -> bool {
        self.params.clone().all(|p| p.is_ok())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct CompressFile {
    excluded_content_types: Vec<At<String>>,
    included_content_types: Vec<At<String>>,
    min_response_body_bytes: Option<At<i64>>,
    encodings: Option<At<Vec<At<String>>>>,
    default_encoding: Option<At<String>>,
}

impl CompressFile {
    pub(super) fn check(self, ctx: &mut Ctx, path: &str, pos: Pos) -> Option<MiddlewareConfig> {
        if !self.excluded_content_types.is_empty() && !self.included_content_types.is_empty() {
            ctx.error(
                path,
                pos,
                "excludedContentTypes and includedContentTypes options are mutually exclusive",
            );
            return None;
        }
        let mut ok = true;
        let mut types = |ctx: &mut Ctx, list: &[At<String>], what: &str| -> Vec<MediaType> {
            let mut out = Vec::new();
            for item in list {
                match MediaType::parse(&item.value) {
                    Ok(m) => out.push(m),
                    Err(e) => {
                        ctx.error(
                            &item.path,
                            item.pos,
                            format!("parsing {what} media type: {e}"),
                        );
                        ok = false;
                    }
                }
            }
            out
        };
        let mut excluded = vec![MediaType::parse("application/grpc").ok()?];
        excluded.extend(types(ctx, &self.excluded_content_types, "excluded"));
        let included = types(ctx, &self.included_content_types, "included");
        let encodings = match self.encodings {
            None => vec![Encoding::Gzip, Encoding::Brotli, Encoding::Zstd],
            Some(list) => {
                if list.value.is_empty() {
                    ctx.error(
                        &list.path,
                        list.pos,
                        "at least one encoding must be specified",
                    );
                    return None;
                }
                let mut out = Vec::new();
                for item in &list.value {
                    match Encoding::from_token(&item.value) {
                        Some(e) => out.push(e),
                        None => {
                            ctx.error(
                                &item.path,
                                item.pos,
                                format!("unsupported encoding: {} (gzip, br or zstd)", item.value),
                            );
                            ok = false;
                        }
                    }
                }
                out
            }
        };
        let default_encoding = match self.default_encoding.filter(|d| !d.value.is_empty()) {
            None => None,
            Some(d) => match Encoding::from_token(&d.value).filter(|e| encodings.contains(e)) {
                Some(e) => Some(e),
                None => {
                    ctx.error(
                        &d.path,
                        d.pos,
                        format!(
                            "unsupported default encoding: {} (not in encodings)",
                            d.value
                        ),
                    );
                    return None;
                }
            },
        };
        if !ok {
            return None;
        }
        let min_written = self.min_response_body_bytes.map_or(0, |m| m.value);
        Some(MiddlewareConfig::Compress(Box::new(Compress {
            encodings,
            default_encoding,
            min_size: u64::try_from(min_written)
                .ok()
                .filter(|&m| m > 0)
                .unwrap_or(DEFAULT_MIN_SIZE),
            min_written,
            excluded,
            included,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_read_as_go_does() {
        let m = MediaType::parse("Text/HTML; Charset=\"utf-8\"").unwrap();
        assert_eq!(m.essence, "text/html");
        assert_eq!(m.params, [("charset".to_owned(), "utf-8".to_owned())]);
        assert!(MediaType::parse("text").is_ok(), "a lone token is a type");
        assert!(MediaType::parse("text/html;").is_ok(), "a trailing ;");
        for bad in [
            "",
            "text/",
            "a b/c",
            "text/html; charset",
            "text/html; =x",
            "t/h; a=1; a=2",
        ] {
            assert!(MediaType::parse(bad).is_err(), "{bad:?}");
        }

        let html = MediaType::parse("text/html").unwrap();
        let utf8 = MediaType::parse("text/html; charset=utf-8").unwrap();
        let p = |s| parse(s).unwrap();
        assert!(html.matches(&p("TEXT/html; charset=latin1")));
        assert!(utf8.matches(&p("text/html;CHARSET=\"utf-8\"")));
        assert!(!utf8.matches(&p("text/html")));
        assert!(!utf8.matches(&p("text/html; charset=utf-8; q=1")));
        assert!(
            !utf8.matches(&p("text/html; charset=UTF-8")),
            "values keep their case"
        );
        assert!(!p("text/html; charset").params_ok());
        assert_eq!(
            Value {
                raw: r#"a\"b"#,
                quoted: true
            }
            .to_string(),
            "a\"b"
        );
    }
}
