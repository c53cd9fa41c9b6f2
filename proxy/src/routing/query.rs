//! The request query as Go's `URL.Query()` reads it, for the query matchers.
//!
//! Traefik wraps its handler in `http.AllowQuerySemicolons` (unless
//! `encodeQuerySemicolons`), so pairs split on `&` and `;`; `+` is a space,
//! `%XX` is decoded, and a pair whose key or value fails to decode is
//! dropped. Runs per request: no heap allocation (a decoded value that
//! differs from its raw form goes in the request arena).

use bumpalo::Bump;
use bumpalo::collections::Vec as BumpVec;

use super::path::hex_val;

/// `key=value` pieces of a raw query, in order.
pub(super) fn pairs(query: Option<&str>) -> impl Iterator<Item = (&[u8], &[u8])> {
    query
        .unwrap_or("")
        .as_bytes()
        .split(|&b| b == b'&' || b == b';')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(i) => (&p[..i], &p[i + 1..]),
            None => (p, &p[p.len()..]),
        })
}

/// The raw values of `key`, in order, leaving out pairs Go drops (a key or
/// value that fails to decode).
pub(super) fn values<'q>(query: Option<&'q str>, key: &'q [u8]) -> impl Iterator<Item = &'q [u8]> {
    pairs(query)
        .filter(move |(k, v)| decodes_to(k, key) == Some(true) && decodes(v))
        .map(|(_, v)| v)
}

/// The first decoded value of `key` (Go's `Query()[key][0]`).
pub(super) fn first_value<'a>(
    query: Option<&'a str>,
    key: &'a [u8],
    arena: &'a Bump,
) -> Option<&'a [u8]> {
    values(query, key).next().and_then(|v| decode(v, arena))
}

/// Decodes one byte of a query component at `raw[*i]` (Go's
/// `QueryUnescape`); `None` on an invalid escape.
fn next_decoded(raw: &[u8], i: &mut usize) -> Option<u8> {
    let b = raw[*i];
    match b {
        b'%' => {
            let h = hex_val(*raw.get(*i + 1)?)?;
            let l = hex_val(*raw.get(*i + 2)?)?;
            *i += 3;
            Some(h * 16 + l)
        }
        b'+' => {
            *i += 1;
            Some(b' ')
        }
        _ => {
            *i += 1;
            Some(b)
        }
    }
}

fn decodes(raw: &[u8]) -> bool {
    let mut i = 0;
    while i < raw.len() {
        if next_decoded(raw, &mut i).is_none() {
            return false;
        }
    }
    true
}

/// Whether the decoded form of the (valid) query component `raw` holds `b`.
pub(super) fn decoded_contains(raw: &[u8], b: u8) -> bool {
    let mut i = 0;
    while i < raw.len() {
        if next_decoded(raw, &mut i) == Some(b) {
            return true;
        }
    }
    false
}

/// Whether the query component `raw` decodes to `target`: `None` if `raw`
/// is not a valid encoding. Streams: no buffer.
pub(super) fn decodes_to(raw: &[u8], target: &[u8]) -> Option<bool> {
    let mut i = 0;
    let mut t = 0;
    let mut equal = true;
    while i < raw.len() {
        let b = next_decoded(raw, &mut i)?;
        if equal {
            if target.get(t) == Some(&b) {
                t += 1;
            } else {
                equal = false;
            }
        }
    }
    Some(equal && t == target.len())
}

/// The decoded query component, borrowing `raw` when nothing is encoded.
pub(super) fn decode<'a>(raw: &'a [u8], arena: &'a Bump) -> Option<&'a [u8]> {
    if !raw.iter().any(|&b| b == b'%' || b == b'+') {
        return Some(raw);
    }
    let mut out = BumpVec::with_capacity_in(raw.len(), arena);
    let mut i = 0;
    while i < raw.len() {
        out.push(next_decoded(raw, &mut i)?);
    }
    Some(out.into_bump_slice())
}
