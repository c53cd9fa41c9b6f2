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

/// A media type of a content-type list. Its parameters are not compared,
/// as Traefik keeps only the `type/subtype` of each entry: `text/html;
/// charset=utf-8` matches `text/html` as well.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaType {
    /// The entry as written (for the API).
    pub written: String,
    /// `type/subtype`, lowercase.
    pub essence: String,
}

impl MediaType {
    /// `s` read as Go's `mime.ParseMediaType` reads its type, or why not.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        Ok(Self {
            written: s.to_owned(),
            essence: parse(s)?.to_ascii_lowercase(),
        })
    }

    /// Whether `essence` (from [`parse`]) is this type. No allocation.
    pub fn matches(&self, essence: &str) -> bool {
        essence.eq_ignore_ascii_case(&self.essence)
    }
}

/// The `type/subtype` (or lone token) of a content-type value, trimmed;
/// an error when it is malformed (its parameters are not read).
pub fn parse(s: &str) -> Result<&str, &'static str> {
    let base = s.split(';').next().unwrap_or(s);
    let essence = base.trim();
    if essence.is_empty() {
        return Err("mime: no media type");
    }
    let (ty, sub) = essence
        .split_once('/')
        .map_or((essence, None), |(t, s)| (t, Some(s)));
    if !is_token(ty) || sub.is_some_and(|s| !is_token(s)) {
        return Err("mime: expected token after slash");
    }
    Ok(essence)
}

/// Whether every byte of non-empty `s` is an RFC 7230 token byte (Go's
/// `isTokenChar`).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b > 0x20 && b < 0x7f && !b"()<>@,;:\\\"/[]?=".contains(&b))
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
        assert!(MediaType::parse("text").is_ok(), "a lone token is a type");
        assert!(
            MediaType::parse("text/html; charset").is_ok(),
            "parameters not read"
        );
        for bad in ["", " ; a=b", "text/", "a b/c", "te(xt/html"] {
            assert!(MediaType::parse(bad).is_err(), "{bad:?}");
        }
        let html = MediaType::parse("text/html; charset=utf-8").unwrap();
        assert!(html.matches(parse("TEXT/html; charset=latin1").unwrap()));
        assert!(html.matches(parse(" text/html ").unwrap()));
        assert!(!html.matches(parse("text/plain").unwrap()));
    }
}
