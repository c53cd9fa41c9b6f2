//! Small formats the API writes and reads as Go's Traefik does: Go's
//! duration text (`1m0s`) and query strings
//! (`application/x-www-form-urlencoded`, as `url.ParseQuery`).
//!
//! Pure functions, control plane only.

use std::time::Duration;

/// `d` as Go's `time.Duration.String` writes it: `0s`, `250ms`, `1.5s`,
/// `1m0s`, `3m0s`, `1h0m0s`.
pub(crate) fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_owned();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", fraction(ns, 1_000));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", fraction(ns, 1_000_000));
    }
    let secs_ns = ns % 60_000_000_000;
    let mins = ns / 60_000_000_000;
    let s = format!("{}s", fraction(secs_ns, 1_000_000_000));
    match (mins / 60, mins % 60) {
        (0, 0) => s,
        (0, m) => format!("{m}m{s}"),
        (h, m) => format!("{h}h{m}m{s}"),
    }
}

/// `n / unit` with the fraction's trailing zeros trimmed (`1.5`, `2`).
fn fraction(n: u128, unit: u128) -> String {
    let whole = n / unit;
    let rest = n % unit;
    if rest == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// A parsed query string: every `key=value` pair, decoded.
#[derive(Debug, Default)]
pub(super) struct Query(Vec<(String, String)>);

impl Query {
    /// Parses `raw` (without the `?`); a pair that does not decode is
    /// skipped, as Go skips it.
    pub(super) fn parse(raw: Option<&str>) -> Self {
        let mut out = Vec::new();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if let (Some(k), Some(v)) = (unescape(k, true), unescape(v, true)) {
                out.push((k, v));
            }
        }
        Query(out)
    }

    /// The first value of `key`, or `""` (Go's `Values.Get`).
    pub(super) fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub(super) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Percent-decodes `s` (and `+` as a space when `plus`); `None` for a bad
/// escape or bytes that are not UTF-8.
pub(super) fn unescape(s: &str, plus: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_go_writes_them() {
        let ms = Duration::from_millis;
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(ms(100)), "100ms");
        assert_eq!(go_duration(ms(1500)), "1.5s");
        assert_eq!(go_duration(ms(10_000)), "10s");
        assert_eq!(go_duration(ms(60_000)), "1m0s");
        assert_eq!(go_duration(ms(180_000)), "3m0s");
        assert_eq!(go_duration(ms(3_600_000)), "1h0m0s");
        assert_eq!(go_duration(ms(3_661_500)), "1h1m1.5s");
        assert_eq!(go_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(go_duration(Duration::from_nanos(1500)), "1.5µs");
    }

    #[test]
    fn queries_decode_as_go_parses_them() {
        let q = Query::parse(Some("search=a%40b+c&status=&x&page=2&page=3&bad=%zz"));
        assert_eq!(q.get("search"), "a@b c");
        assert_eq!(q.get("status"), "");
        assert_eq!(q.get("x"), "");
        assert_eq!(q.get("page"), "2");
        assert_eq!(q.all("page").collect::<Vec<_>>(), ["2", "3"]);
        assert_eq!(q.get("bad"), "");
        assert_eq!(Query::parse(None).get("search"), "");
    }
}
