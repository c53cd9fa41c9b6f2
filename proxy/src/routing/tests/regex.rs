//! Go RE2 semantics of rule regexes, and per-thread matching.

use super::support::{Req, m};
use crate::routing::goregex::GoRegex;

fn re(p: &str) -> GoRegex {
    GoRegex::new(p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[test]
fn perl_classes_are_ascii_only() {
    assert!(!re(r"^\d$").is_match("٣".as_bytes())); // ARABIC-INDIC DIGIT THREE
    assert!(re(r"^\d$").is_match(b"3"));
    assert!(!re(r"^\w$").is_match("é".as_bytes()));
    assert!(re(r"^\w+$").is_match(b"a_Z9"));
    assert!(!re(r"^\s$").is_match("\u{a0}".as_bytes()));
    assert!(!re(r"^\s$").is_match(b"\x0b")); // Go's \s has no \v
    assert!(re(r"^\s$").is_match(b"\x0c"));
    // Negations are Unicode-wide complements of the ASCII set.
    assert!(re(r"^\D$").is_match("٣".as_bytes()));
    assert!(re(r"^\W$").is_match("é".as_bytes()));
    // Inside classes too.
    assert!(!re(r"^[\d]$").is_match("٣".as_bytes()));
    assert!(re(r"^[\dx]+$").is_match(b"1x2"));
    assert!(re(r"^[^\d]$").is_match("٣".as_bytes()));
    assert!(re(r"^[\D]$").is_match("٣".as_bytes()));
    assert!(!re(r"^[\D]$").is_match(b"3"));
    assert!(re(r"^[\s]$").is_match(b" "));
    assert!(re(r"^[\w-]+$").is_match(b"a-b"));
    // Unicode classes and '.' stay Unicode-aware, as in Go.
    assert!(re(r"^\pL$").is_match("é".as_bytes()));
    assert!(re(r"^.$").is_match("é".as_bytes()));
}

#[test]
fn word_boundary_is_ascii() {
    // In Go "é" is not a word character, so there is a boundary before "x".
    assert!(re(r"\bx").is_match("éx".as_bytes()));
    assert!(!re(r"\Bx").is_match("éx".as_bytes()));
    assert!(re(r"\bfoo\b").is_match(b"a foo b"));
    assert!(!re(r"\bfoo\b").is_match(b"afoo"));
}

#[test]
fn go_flags_and_syntax() {
    assert!(re("(?i)abc").is_match(b"xABCx"));
    assert!(re("(?s)a.b").is_match(b"a\nb"));
    assert!(!re("a.b").is_match(b"a\nb"));
    assert!(re("(?m)^b$").is_match(b"a\nb\nc"));
    assert!(re("(?U)a+").is_match(b"aa"));
    assert!(re(r"^/api\/v1").is_match(b"/api/v1"));
    assert!(re("(?P<n>a)").is_match(b"a"));
    // Rust-only syntax that Go rejects.
    for bad in ["(?x)a b", "(?u)a", "(?R)a", r"\b{start}a", r"\<a", "[a&&b]"] {
        assert!(GoRegex::new(bad).is_err(), "{bad}");
    }
}

#[test]
fn unanchored_like_go_match_string() {
    assert!(re("b").is_match(b"abc"));
    assert!(!re("^b").is_match(b"abc"));
    assert!(re("").is_match(b"abc"));
}

#[test]
fn rule_regexes_use_go_classes() {
    assert!(!m(r"PathRegexp(`^/\d+$`)", &Req::new("a", "/٣")));
    assert!(m(r"PathRegexp(`^/\d+$`)", &Req::new("a", "/42")));
    assert!(!m(
        r"HeaderRegexp(`X`, `^\w+$`)",
        &Req::new("a", "/").header("x", "abc-")
    ));
}

#[test]
fn matching_from_many_threads_and_after_drop() {
    let shared = re(r"^/item/\d+$");
    std::thread::scope(|s| {
        for t in 0..4 {
            let r = shared.clone();
            s.spawn(move || {
                for i in 0..1000 {
                    let path = format!("/item/{}", i * t);
                    assert!(r.is_match(path.as_bytes()));
                    assert!(!r.is_match(b"/item/x"));
                }
            });
        }
    });
    // Caches of dropped regexes are purged when new ones warm up.
    for i in 0..200 {
        let tmp = re(&format!("^x{i}$"));
        assert!(tmp.is_match(format!("x{i}").as_bytes()));
    }
    assert!(shared.is_match(b"/item/7"));
}
