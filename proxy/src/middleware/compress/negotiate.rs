//! Which encoding a request's `Accept-Encoding` asks for, as Traefik 3.7
//! reads it (`pkg/middlewares/compress/acceptencoding.go`): spaces
//! dropped, the codings the middleware offers (and `*`, `identity`)
//! kept, `q=0` (or a q-value that does not parse) refusing one; the
//! highest q-value wins, ties going to `*` first, then the `encodings`
//! order, `identity` last. `*` stands for `defaultEncoding` (or the first
//! encoding). An empty header asks for none; one that names nothing the
//! middleware offers, for none either.
//!
//! gzip additionally needs the request's first `Accept-Encoding` line to
//! name gzip with a positive q-value, as Traefik's gzip handler
//! (klauspost's `gzhttp`) checks again: chosen through `*` or
//! `defaultEncoding` alone, gzip is not applied ([`Choice::VaryOnly`]).
//!
//! Per request through `compress`: a scan of the header's bytes, no
//! allocation.

use http::header::{ACCEPT_ENCODING, HeaderMap, HeaderValue};

use crate::config::{Compress as Config, Encoding};

/// What the request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Choice {
    /// Nothing: the response passes as it is (no `Vary` either).
    Pass,
    /// `Vary: Accept-Encoding` only (gzip chosen for a request that does
    /// not name it).
    VaryOnly,
    /// This encoding, when the response allows it.
    Encode(Encoding),
}

/// A coding of the header that the middleware knows.
#[derive(Clone, Copy, PartialEq)]
enum Known {
    Any,
    Identity,
    Is(Encoding),
}

/// The choice for a request with `headers`.
pub(super) fn choose(c: &Config, headers: &HeaderMap) -> Choice {
    let chosen = if headers.contains_key(ACCEPT_ENCODING) {
        match best(c, headers) {
            None | Some(Known::Identity) => return Choice::Pass,
            Some(Known::Any) => c.default_encoding.unwrap_or(c.encodings[0]),
            Some(Known::Is(e)) => e,
        }
    } else {
        match c.default_encoding {
            Some(d) => d,
            None => return Choice::Pass,
        }
    };
    if chosen == Encoding::Gzip && gzip_q(headers.get(ACCEPT_ENCODING)) <= 0.0 {
        return Choice::VaryOnly;
    }
    Choice::Encode(chosen)
}

/// The best known coding of the header, `None` when it names none (an
/// empty header names `identity`).
fn best(c: &Config, headers: &HeaderMap) -> Option<Known> {
    let mut all = headers.get_all(ACCEPT_ENCODING).iter();
    if let (Some(only), None) = (all.next(), all.next())
        && only.is_empty()
    {
        return Some(Known::Identity);
    }
    let priority = |k: Known| -> isize {
        match k {
            Known::Any => -1,
            Known::Identity => c.encodings.len() as isize,
            Known::Is(e) => c.encodings.iter().position(|x| *x == e).unwrap_or(0) as isize,
        }
    };
    let mut best: Option<(Known, f64)> = None;
    for line in headers.get_all(ACCEPT_ENCODING) {
        for item in line.as_bytes().split(|&b| b == b',') {
            let (name, params) = match item.iter().position(|&b| b == b';') {
                Some(i) => (&item[..i], Some(&item[i + 1..])),
                None => (item, None),
            };
            let Some(known) = known(c, name) else {
                continue;
            };
            let mut weight = 1.0;
            if let Some(q) = params.and_then(q_value) {
                if q == 0.0 {
                    continue;
                }
                weight = q;
            }
            let better = match best {
                None => true,
                Some((b, bw)) => weight > bw || (weight == bw && priority(known) < priority(b)),
            };
            if better {
                best = Some((known, weight));
            }
        }
    }
    best.map(|(k, _)| k)
}

/// Whether `written` (spaces ignored, as Traefik removes them) is
/// `token`.
fn is(written: &[u8], token: &str) -> bool {
    written
        .iter()
        .copied()
        .filter(|&b| b != b' ')
        .eq(token.bytes())
}

/// The coding `name` names, if the middleware knows it (exact case, as
/// Traefik compares).
fn known(c: &Config, name: &[u8]) -> Option<Known> {
    if is(name, "*") {
        return Some(Known::Any);
    }
    if is(name, "identity") {
        return Some(Known::Identity);
    }
    c.encodings
        .iter()
        .find(|e| is(name, e.token()))
        .map(|&e| Known::Is(e))
}

/// The q-value of a coding's parameters (spaces ignored): `None` when
/// they do not start with `q=`; 0 when the number does not parse (Go's
/// `ParseFloat` error value, which refuses the coding).
fn q_value(params: &[u8]) -> Option<f64> {
    let mut buf = [0u8; 64];
    let mut n = 0;
    for &b in params.iter().filter(|&&b| b != b' ') {
        if n == buf.len() {
            return Some(0.0);
        }
        buf[n] = b;
        n += 1;
    }
    let rest = buf[..n].strip_prefix(b"q=")?;
    Some(
        std::str::from_utf8(rest)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0),
    )
}

/// gzip's q-value in `line` as `gzhttp` reads it (codings lowercased and
/// trimmed, q clamped to 0..=1; 0 when gzip is not named).
fn gzip_q(line: Option<&HeaderValue>) -> f64 {
    let Some(line) = line else { return 0.0 };
    for coding in line.as_bytes().split(|&b| b == b',') {
        let mut parts = coding.split(|&b| b == b';');
        let name = parts.next().unwrap_or_default().trim_ascii();
        if !name.eq_ignore_ascii_case(b"gzip") {
            continue;
        }
        let mut q = 1.0;
        for part in parts {
            if let Some(v) = part.trim_ascii().strip_prefix(b"q=") {
                q = std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                    .unwrap_or(0.0)
                    .clamp(0.0, 1.0);
            } else {
                q = 1.0;
            }
        }
        return q;
    }
    0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(encodings: &[Encoding], default: Option<Encoding>) -> Config {
        Config {
            encodings: encodings.to_vec(),
            default_encoding: default,
            min_size: 1024,
            min_written: 0,
            excluded: Vec::new(),
            included: Vec::new(),
        }
    }

    fn pick(c: &Config, lines: &[&str]) -> Choice {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(ACCEPT_ENCODING, HeaderValue::from_str(l).unwrap());
        }
        choose(c, &h)
    }

    #[test]
    fn q_values_then_the_encodings_order() {
        use Encoding::*;
        let all = config(&[Gzip, Brotli, Zstd], None);
        let e = Choice::Encode;
        assert_eq!(pick(&all, &["gzip, br, zstd"]), e(Gzip), "ties: the order");
        assert_eq!(pick(&all, &["zstd, br"]), e(Brotli));
        assert_eq!(pick(&all, &["gzip;q=0.5, zstd;q=0.8"]), e(Zstd));
        assert_eq!(
            pick(&all, &["gzip", "br;q=2"]),
            e(Brotli),
            "every line, q above 1 kept"
        );
        assert_eq!(
            pick(&all, &["gzip;q=0, br;q=0"]),
            Choice::Pass,
            "q=0 refuses"
        );
        assert_eq!(
            pick(&all, &["br;q=abc, gzip;q=0.1"]),
            e(Gzip),
            "a bad q refuses"
        );
        assert_eq!(
            pick(&all, &["br;level=1;q=0.1, zstd;q=0.5"]),
            e(Brotli),
            "not q=: weight 1"
        );
        assert_eq!(
            pick(&all, &["deflate, compress"]),
            Choice::Pass,
            "nothing offered"
        );
        assert_eq!(pick(&all, &[""]), Choice::Pass, "empty: identity");
        assert_eq!(pick(&all, &["identity, gzip;q=0.5"]), Choice::Pass);
        assert_eq!(pick(&all, &["identity;q=0.1, zstd;q=0.5"]), e(Zstd));
        assert_eq!(
            pick(&all, &["GZIP, BR"]),
            Choice::Pass,
            "exact case, as Traefik"
        );
        assert_eq!(
            pick(&all, &["b r ; q = 0.4, zstd;q=0.3"]),
            e(Brotli),
            "spaces dropped"
        );
        // `*`: the default encoding, or the first; gzip then needs naming.
        assert_eq!(pick(&all, &["*"]), Choice::VaryOnly);
        assert_eq!(
            pick(&all, &["*, gzip;q=0.5"]),
            e(Gzip),
            "* wins; gzip is named"
        );
        assert_eq!(
            pick(&all, &["gzip, *"]),
            e(Gzip),
            "* first at equal q; gzip named"
        );
        let zs = config(&[Zstd, Brotli, Gzip], Some(Brotli));
        assert_eq!(pick(&zs, &["*"]), e(Brotli));
        assert_eq!(pick(&zs, &[]), e(Brotli), "no header: the default");
        assert_eq!(pick(&config(&[Gzip], None), &[]), Choice::Pass);
        assert_eq!(pick(&config(&[Gzip], Some(Gzip)), &[]), Choice::VaryOnly);
        assert_eq!(
            pick(&config(&[Brotli], None), &["gzip, zstd"]),
            Choice::Pass
        );
    }
}
