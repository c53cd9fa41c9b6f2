//! Request-target helpers the data plane applies before routing: the
//! routing form of the path and the host without its port.
//!
//! Runs once per request: no heap allocation (the request arena is used only
//! when the path actually changes), no locks.
//!
//! Traefik 3.7 (`pkg/server/server_entrypoint_tcp.go`, `pkg/muxer/http/mux.go`)
//! runs, in order: `denyFragment` (a `#` in the raw path is a 400),
//! `normalizePath` (upper-case percent-encodings, decode the unreserved ones),
//! `sanitizePath` (`URL.JoinPath()`: `path.Clean` of the escaped path,
//! keeping a trailing slash), then the muxer's `withRoutingPath` (decode
//! every percent-encoding except the reserved characters and `%25`). The
//! composition is reproduced here, including Go's `URL.EscapedPath` choice of
//! re-escaping the decoded path when the raw one holds characters Go would
//! escape.

use bumpalo::Bump;
use bumpalo::collections::{String as BumpString, Vec as BumpVec};

/// Why a request path cannot be routed (the caller answers 400).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// A `%` not followed by two hexadecimal digits.
    #[error("invalid percent-encoding in the request path")]
    InvalidPercentEncoding,
    /// A `#` in the request path (Traefik's `denyFragment`).
    #[error("fragment in the request path")]
    Fragment,
}

/// Reserved characters (RFC 3986 §2.2) plus `%`: kept percent-encoded in the
/// routing path.
fn is_reserved(b: u8) -> bool {
    matches!(
        b,
        b':' | b'/'
            | b'?'
            | b'#'
            | b'['
            | b']'
            | b'@'
            | b'!'
            | b'$'
            | b'&'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b';'
            | b'='
            | b'%'
    )
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Go's `shouldEscape(c, encodePath)`.
fn go_path_should_escape(b: u8) -> bool {
    !(is_unreserved(b)
        || matches!(
            b,
            b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'@'
        ))
}

/// Go's `validEncoded(s, encodePath)` for one byte.
fn go_valid_encoded_byte(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$'
            | b'&'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b';'
            | b'='
            | b':'
            | b'@'
            | b'['
            | b']'
            | b'%'
    ) || !go_path_should_escape(b)
}

/// The value of a hexadecimal digit.
pub(super) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Returns the path Traefik 3.7 matches `Path`, `PathPrefix` and
/// `PathRegexp` against, given the raw request-target path (no query).
///
/// Dot segments and repeated slashes are removed as Go's `path.Clean` does
/// (a trailing slash is kept), unreserved percent-encodings are decoded
/// (`%41` becomes `A`) and reserved ones are kept in upper case (`%2f`
/// becomes `%2F`); other encodings are decoded (`%20` becomes a space).
/// Returns `raw` itself, without allocating, when nothing changes; otherwise
/// the result lives in `arena`.
///
/// A decoded byte sequence that is not valid UTF-8 stays percent-encoded
/// (Go would route on the raw bytes; a `&str` cannot hold them).
pub fn normalize_path<'a>(raw: &'a str, arena: &'a Bump) -> Result<&'a str, PathError> {
    forward_and_routing_paths(raw, arena, true).map(|(_, routed)| routed)
}

/// Both paths of a request on an entrypoint whose `http.sanitizePath` is
/// `clean`: the one forwarded upstream ([`sanitize_path`]) and the one
/// rules match ([`normalize_path`]; when `clean` is false, dot segments
/// and repeated slashes stay in both, as Traefik then only normalises
/// escapes). Each is `raw` itself, without allocating, when it equals it.
pub fn forward_and_routing_paths<'a>(
    raw: &'a str,
    arena: &'a Bump,
    clean: bool,
) -> Result<(&'a str, &'a str), PathError> {
    if is_routing_normal(raw.as_bytes()) {
        return Ok((raw, raw));
    }
    let sanitized = sanitize_path(raw, arena, clean)?;
    if is_routing_normal(sanitized.as_bytes()) {
        return Ok((sanitized, sanitized));
    }
    // Step 3: `withRoutingPath`: decode everything but reserved characters
    // (the sanitised path's escapes are valid and in upper case).
    let routed = routing_path(sanitized, arena)?;
    if routed == raw {
        return Ok((sanitized, raw));
    }
    Ok((sanitized, routed))
}

/// Returns the path Traefik 3.7 forwards upstream: escapes normalised
/// (upper case, unreserved ones decoded) and, when `clean` (the
/// entrypoint's `sanitizePath`), dot segments and repeated slashes removed
/// (a trailing slash kept). The first two of [`normalize_path`]'s steps,
/// without the routing-only decoding. Returns `raw` itself, without
/// allocating, when nothing changes.
fn sanitize_path<'a>(raw: &'a str, arena: &'a Bump, clean: bool) -> Result<&'a str, PathError> {
    if is_routing_normal(raw.as_bytes()) {
        return Ok(raw);
    }
    let bytes = raw.as_bytes();
    if bytes.contains(&b'#') {
        return Err(PathError::Fragment);
    }
    // Validate escapes (Go's URL parser rejects the request otherwise).
    let mut i = 0;
    let mut needs_reescape = false;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            if i + 2 >= bytes.len() {
                return Err(PathError::InvalidPercentEncoding);
            }
            if hex_val(bytes[i + 1]).is_none() || hex_val(bytes[i + 2]).is_none() {
                return Err(PathError::InvalidPercentEncoding);
            }
            i += 3;
            continue;
        }
        if !go_valid_encoded_byte(b) {
            needs_reescape = true;
        }
        i += 1;
    }

    // Step 1: the escaped path Go hands to `JoinPath` (`URL.EscapedPath`):
    // either the raw path with normalised escapes, or, when the raw path
    // holds characters Go would escape, the decoded path re-escaped.
    let mut escaped = BumpVec::with_capacity_in(bytes.len() + 8, arena);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let v = hex_val(bytes[i + 1]).unwrap_or(0) * 16 + hex_val(bytes[i + 2]).unwrap_or(0);
            if needs_reescape {
                push_go_escaped(&mut escaped, v);
            } else if is_unreserved(v) {
                escaped.push(v);
            } else {
                escaped.extend_from_slice(&[
                    b'%',
                    HEX_UPPER[usize::from(v >> 4)],
                    HEX_UPPER[usize::from(v & 15)],
                ]);
            }
            i += 3;
        } else {
            if needs_reescape {
                push_go_escaped(&mut escaped, b);
            } else {
                escaped.push(b);
            }
            i += 1;
        }
    }

    // Step 2: `URL.JoinPath()` = `path.Clean`, keeping a trailing slash.
    let cleaned = if clean {
        join_path_clean(&escaped, arena)
    } else {
        escaped.into_bump_slice()
    };
    if cleaned == raw.as_bytes() {
        return Ok(raw);
    }
    // Escaping leaves only ASCII.
    Ok(std::str::from_utf8(cleaned).unwrap_or(raw))
}

/// Fast check: the path is already in routing form (the common case).
fn is_routing_normal(bytes: &[u8]) -> bool {
    if bytes.first() != Some(&b'/') {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                // Only upper-case reserved encodings are left as they are.
                let (Some(&h), Some(&l)) = (bytes.get(i + 1), bytes.get(i + 2)) else {
                    return false;
                };
                let upper = |c: u8| c.is_ascii_digit() || (b'A'..=b'F').contains(&c);
                if !upper(h) || !upper(l) {
                    return false;
                }
                let v = hex_val(h).unwrap_or(0) * 16 + hex_val(l).unwrap_or(0);
                if !is_reserved(v) {
                    return false;
                }
                i += 3;
                continue;
            }
            b'#' => return false,
            b'/' => {
                // `//`, `/./`, `/../`, or a trailing `/.` / `/..`.
                let rest = &bytes[i + 1..];
                if rest.first() == Some(&b'/')
                    || rest == b"."
                    || rest == b".."
                    || rest.starts_with(b"./")
                    || rest.starts_with(b"../")
                {
                    return false;
                }
            }
            _ => {
                if !go_valid_encoded_byte(b) {
                    return false;
                }
            }
        }
        i += 1;
    }
    true
}

/// Go's `escape(s, encodePath)` for one byte.
fn push_go_escaped(out: &mut BumpVec<'_, u8>, b: u8) {
    if go_path_should_escape(b) {
        out.extend_from_slice(&[
            b'%',
            HEX_UPPER[usize::from(b >> 4)],
            HEX_UPPER[usize::from(b & 15)],
        ]);
    } else {
        out.push(b);
    }
}

/// Go's `URL.JoinPath()` with no elements applied to an escaped path.
fn join_path_clean<'a>(escaped: &[u8], arena: &'a Bump) -> &'a [u8] {
    let rooted = escaped.first() == Some(&b'/');
    // A relative path is cleaned as if rooted, then the root is dropped.
    let mut src = BumpVec::with_capacity_in(escaped.len() + 1, arena);
    if !rooted {
        src.push(b'/');
    }
    src.extend_from_slice(escaped);
    let mut out = go_clean_rooted(&src, arena);
    let trailing = src.last() == Some(&b'/');
    if !rooted {
        out = &out[1..];
    }
    if trailing && out.last() != Some(&b'/') {
        let mut v = BumpVec::with_capacity_in(out.len() + 1, arena);
        v.extend_from_slice(out);
        v.push(b'/');
        return v.into_bump_slice();
    }
    out
}

/// Go's `path.Clean` for a path starting with `/`.
fn go_clean_rooted<'a>(p: &[u8], arena: &'a Bump) -> &'a [u8] {
    let n = p.len();
    let mut out = BumpVec::with_capacity_in(n, arena);
    out.push(b'/');
    let mut r = 1;
    let dotdot = 1; // index in `out` where `..` must stop backtracking
    while r < n {
        if p[r] == b'/' || (p[r] == b'.' && (r + 1 == n || p[r + 1] == b'/')) {
            // An empty or `.` element.
            r += 1;
        } else if p[r] == b'.' && p.get(r + 1) == Some(&b'.') && (r + 2 == n || p[r + 2] == b'/') {
            r += 2;
            if out.len() > dotdot {
                let mut w = out.len() - 1;
                while w > dotdot && out[w] != b'/' {
                    w -= 1;
                }
                out.truncate(w);
            }
            // Rooted: `..` at the root is dropped.
        } else {
            if out.len() != 1 {
                out.push(b'/');
            }
            while r < n && p[r] != b'/' {
                out.push(p[r]);
                r += 1;
            }
        }
    }
    out.into_bump_slice()
}

/// The muxer's `withRoutingPath` alone, on a path as a request carries it
/// (escaped): what a child router's rule is matched against, on the
/// request its parent's middlewares may have changed (Traefik's child
/// muxer runs it again; the entrypoint's normalisation does not). Every
/// escape is decoded but the reserved characters' and `%25` written in
/// upper case (the keys of Go's table). Returns `escaped` itself when it
/// has no `%`; a `%` without two hexadecimal digits is an error (400).
pub fn routing_path<'a>(escaped: &'a str, arena: &'a Bump) -> Result<&'a str, PathError> {
    let p = escaped.as_bytes();
    if !p.contains(&b'%') {
        return Ok(escaped);
    }
    let mut out = BumpString::with_capacity_in(p.len(), arena);
    let mut run = BumpVec::new_in(arena);
    let mut i = 0;
    while i < p.len() {
        if p[i] != b'%' {
            let start = i;
            while i < p.len() && p[i] != b'%' {
                i += 1;
            }
            push_utf8_or_escaped(&mut out, &p[start..i]);
            continue;
        }
        run.clear();
        let mut kept = false;
        while i < p.len() && p[i] == b'%' {
            if i + 2 >= p.len() {
                return Err(PathError::InvalidPercentEncoding);
            }
            let (Some(hi), Some(lo)) = (hex_val(p[i + 1]), hex_val(p[i + 2])) else {
                return Err(PathError::InvalidPercentEncoding);
            };
            let v = hi * 16 + lo;
            let upper = !p[i + 1].is_ascii_lowercase() && !p[i + 2].is_ascii_lowercase();
            if is_reserved(v) && upper {
                kept = true;
                break;
            }
            run.push(v);
            i += 3;
        }
        push_utf8_or_escaped(&mut out, &run);
        if kept {
            out.push_str(&escaped[i..i + 3]);
            i += 3;
        }
    }
    Ok(out.into_bump_str())
}

/// Appends `bytes`, percent-encoding any byte that is not part of valid UTF-8.
fn push_utf8_or_escaped(out: &mut BumpString<'_>, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for &b in chunk.invalid() {
            out.push('%');
            out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
            out.push(char::from(HEX_UPPER[usize::from(b & 15)]));
        }
    }
}

/// Removes the port from a `Host` header value or `:authority`, as Traefik's
/// request decorator does (`net.SplitHostPort`, then bare `[v6]` brackets
/// stripped): `[::1]:8080` → `::1`, `example.com:443` → `example.com`,
/// `example.com` → `example.com`, `::1` → `::1` (not a host:port).
pub fn host_without_port(authority: &str) -> &str {
    if !authority.contains(':') {
        return authority;
    }
    match split_host_port(authority) {
        Some(host) => host,
        None => {
            if authority.len() >= 2 && authority.starts_with('[') && authority.ends_with(']') {
                &authority[1..authority.len() - 1]
            } else {
                authority
            }
        }
    }
}

/// Go's `net.SplitHostPort`, host part only; `None` on error.
fn split_host_port(hp: &str) -> Option<&str> {
    let b = hp.as_bytes();
    let i = hp.rfind(':')?;
    let (host, j, k);
    if b.first() == Some(&b'[') {
        let end = hp.find(']')?;
        if end + 1 != i {
            return None;
        }
        host = &hp[1..end];
        j = 1;
        k = end + 1;
    } else {
        host = &hp[..i];
        if host.contains(':') {
            return None;
        }
        j = 0;
        k = 0;
    }
    if hp[j..].contains('[') || hp[k..].contains(']') {
        return None;
    }
    Some(host)
}
