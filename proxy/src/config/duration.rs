//! Traefik duration values: Go `time.ParseDuration` strings ("1m30s",
//! "250ms") or a bare integer meaning seconds, as Traefik's
//! `ptypes.Duration` accepts.
//!
//! Pure parsing; never panics on any input (see the proptest).

use std::time::Duration;

/// Parses a Traefik duration. Negative durations are rejected (no timeout
/// we read may be negative); `0` means "none" where Traefik says so.
pub(crate) fn parse_duration(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("empty duration".to_owned());
    }
    // Traefik first tries a plain integer: a number of seconds.
    if let Ok(secs) = s.parse::<i64>() {
        return u64::try_from(secs)
            .map(Duration::from_secs)
            .map_err(|_| format!("invalid duration {input:?}: must not be negative"));
    }
    parse_go_duration(s).map_err(|why| format!("invalid duration {input:?}: {why}"))
}

/// Go's `time.ParseDuration`, restricted to non-negative results.
fn parse_go_duration(s: &str) -> Result<Duration, &'static str> {
    const MAX_NANOS: u128 = i64::MAX as u128;
    let mut rest = s;
    let mut negative = false;
    if let Some(r) = rest.strip_prefix('-') {
        negative = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err("expected a number and a unit, e.g. \"10s\"");
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.bytes().take_while(u8::is_ascii_digit).count();
                a.split_at(n)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err("expected a number and a unit, e.g. \"10s\"");
        }
        let unit_len = after
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err("missing unit (ns, us, ms, s, m, h)"),
            _ => return Err("unknown unit (expected ns, us, ms, s, m or h)"),
        };
        let mut value: u128 = 0;
        for d in int_part.bytes() {
            value = value * 10 + u128::from(d - b'0');
            if value > MAX_NANOS {
                return Err("overflows the maximum duration");
            }
        }
        let mut nanos = value
            .checked_mul(scale)
            .ok_or("overflows the maximum duration")?;
        // Fractional part, truncated to whole nanoseconds like Go.
        let mut frac_scale = scale;
        for d in frac_part.bytes() {
            if frac_scale < 10 {
                break;
            }
            frac_scale /= 10;
            nanos += u128::from(d - b'0') * frac_scale;
        }
        total += nanos;
        if total > MAX_NANOS {
            return Err("overflows the maximum duration");
        }
        rest = after;
    }
    if negative && total > 0 {
        return Err("must not be negative");
    }
    let nanos = u64::try_from(total).map_err(|_| "overflows the maximum duration")?;
    Ok(Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(s: &str) -> Duration {
        parse_duration(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn go_forms() {
        assert_eq!(ok("10s"), Duration::from_secs(10));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("1.s"), Duration::from_secs(1));
        assert_eq!(ok("2h45m"), Duration::from_secs(2 * 3600 + 45 * 60));
        assert_eq!(ok("1us"), Duration::from_micros(1));
        assert_eq!(ok("1µs"), Duration::from_micros(1));
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        assert_eq!(ok("1.0000000001s"), Duration::from_secs(1));
        assert_eq!(ok("+5s"), Duration::from_secs(5));
        assert_eq!(ok("-0s"), Duration::ZERO);
    }

    #[test]
    fn bare_integers_are_seconds() {
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("42"), Duration::from_secs(42));
        assert_eq!(ok(" 3 "), Duration::from_secs(3));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "s",
            "1",
            "1.5",
            "10x",
            "1h2",
            ".s",
            "-1s",
            "-3",
            "abc",
            "9999999999h",
            "1..5s",
        ] {
            if bad == "1" {
                continue;
            }
            let err = parse_duration(bad).expect_err(bad);
            assert!(!err.is_empty());
        }
        assert!(parse_duration("1.5").unwrap_err().contains("missing unit"));
        assert!(parse_duration("-3").unwrap_err().contains("negative"));
        assert!(parse_duration("10x").unwrap_err().contains("unknown unit"));
        assert!(
            parse_duration("9999999999h")
                .unwrap_err()
                .contains("overflow")
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = parse_duration(&s);
        }

        #[test]
        fn never_panics_durationish(s in "[-+]?[0-9.]{0,25}(ns|us|µs|ms|s|m|h|x)?([0-9.]{0,5}(s|m|h))?") {
            let _ = parse_duration(&s);
        }

        #[test]
        fn millis_roundtrip(ms in 0u64..10_000_000_000) {
            prop_assert_eq!(parse_duration(&format!("{ms}ms")).unwrap(), Duration::from_millis(ms));
        }
    }
}
