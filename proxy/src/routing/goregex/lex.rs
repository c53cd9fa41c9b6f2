//! The small lexical pieces of Go's `regexp/syntax`: counted repetitions
//! (`parseRepeat`, `parseInt`), escapes (`parseEscape`) and class
//! characters. Pure functions over the remaining pattern text; control plane
//! only.

use super::parse::{
    INVALID_ESCAPE, MISSING_BRACKET, SyntaxError, TRAILING_BACKSLASH, consumed, err,
};

/// Go's `parseRepeat`: `{n}`, `{n,}` or `{n,m}` at the start of `s`, as
/// (min, max, rest) with max -1 for `{n,}` and min -1 when a number is too
/// large to read. `None` when `s` does not have that form (the `{` is then a
/// literal).
pub(super) fn parse_repeat(s: &str) -> Option<(i64, i64, &str)> {
    let s = s.strip_prefix('{')?;
    let (mut min, s) = parse_int(s)?;
    let (max, s) = match s.strip_prefix(',') {
        None => (min, s),
        Some(rest) if rest.starts_with('}') => (-1, rest),
        Some(rest) => {
            let (max, rest) = parse_int(rest)?;
            if max < 0 {
                min = -1;
            }
            (max, rest)
        }
    };
    Some((min, max, s.strip_prefix('}')?))
}

/// Go's `parseInt`: decimal digits without a leading zero; -1 for a number
/// of 1e8 or more.
fn parse_int(s: &str) -> Option<(i64, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || (digits >= 2 && s.starts_with('0')) {
        return None;
    }
    let value = s[..digits]
        .parse::<i64>()
        .ok()
        .filter(|&n| n < 100_000_000)
        .unwrap_or(-1);
    Some((value, &s[digits..]))
}

/// One character of a bracketed class (an escape allowed); `whole` is the
/// class from its `[`, for the missing-bracket error.
pub(super) fn class_char<'a>(s: &'a str, whole: &str) -> Result<(u32, &'a str), SyntaxError> {
    match s.chars().next() {
        None => err(MISSING_BRACKET, whole),
        Some('\\') => escape(s),
        Some(c) => Ok((u32::from(c), &s[c.len_utf8()..])),
    }
}

/// Go's `parseEscape`: the rune of the escape at the start of `s` (`\`...).
pub(super) fn escape(s: &str) -> Result<(u32, &str), SyntaxError> {
    let mut t = &s[1..];
    let Some(c) = t.chars().next() else {
        return err(TRAILING_BACKSLASH, "");
    };
    t = &t[c.len_utf8()..];
    let invalid = |t: &str| err(INVALID_ESCAPE, consumed(s, t));
    let octal = |b: Option<&u8>| b.is_some_and(|b| (b'0'..=b'7').contains(b));
    match c {
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok((u32::from(c), t)),
        '1'..='7' if !octal(t.as_bytes().first()) => invalid(t),
        '0'..='7' => {
            let mut r = c as u32 - u32::from(b'0');
            for _ in 1..3 {
                if !octal(t.as_bytes().first()) {
                    break;
                }
                r = r * 8 + u32::from(t.as_bytes()[0] - b'0');
                t = &t[1..];
            }
            Ok((r, t))
        }
        'x' => {
            let Some(c) = t.chars().next() else {
                return invalid(t);
            };
            t = &t[c.len_utf8()..];
            if c == '{' {
                let mut r: u32 = 0;
                let mut digits = 0;
                loop {
                    let Some(c) = t.chars().next() else {
                        return invalid(t);
                    };
                    t = &t[c.len_utf8()..];
                    if c == '}' {
                        break;
                    }
                    let Some(v) = c.to_digit(16) else {
                        return invalid(t);
                    };
                    r = r * 16 + v;
                    if r > 0x10FFFF {
                        return invalid(t);
                    }
                    digits += 1;
                }
                if digits == 0 {
                    return invalid(t);
                }
                return Ok((r, t));
            }
            let x = c.to_digit(16);
            let y = t.chars().next();
            if let Some(y) = y {
                t = &t[y.len_utf8()..];
            }
            match (x, y.and_then(|y| y.to_digit(16))) {
                (Some(x), Some(y)) => Ok((x * 16 + y, t)),
                _ => invalid(t),
            }
        }
        'a' => Ok((0x07, t)),
        'f' => Ok((0x0C, t)),
        'n' => Ok((0x0A, t)),
        'r' => Ok((0x0D, t)),
        't' => Ok((0x09, t)),
        'v' => Ok((0x0B, t)),
        _ => invalid(t),
    }
}
