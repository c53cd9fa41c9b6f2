//! Go `regexp/syntax` semantics of rule regexes, and per-thread matching.
//!
//! Every case below was checked against Traefik 3.7.15 (Go 1.26) with the
//! pattern in a `PathRegexp` rule: whether Traefik accepts it, Go's error
//! text when not, and which texts match. The same patterns run against a
//! real Traefik in `proxy/tests/traefik_rules.rs`.

use bumpalo::Bump;

use super::support::{Req, m};
use crate::routing::goregex::GoRegex;

fn re(p: &str) -> GoRegex {
    GoRegex::new(p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn is(p: &str, text: &[u8]) -> bool {
    re(p).is_match(text, &Bump::new())
}

/// `pattern` compiles; each of `yes` matches and each of `no` does not.
#[track_caller]
fn accepts(pattern: &str, yes: &[&str], no: &[&str]) {
    let r = re(pattern);
    let arena = Bump::new();
    for t in yes {
        assert!(
            r.is_match(t.as_bytes(), &arena),
            "{pattern:?} should match {t:?}"
        );
    }
    for t in no {
        assert!(
            !r.is_match(t.as_bytes(), &arena),
            "{pattern:?} should not match {t:?}"
        );
    }
}

/// `pattern` is refused with Go's message.
#[track_caller]
fn refuses(pattern: &str, message: &str) {
    match GoRegex::new(pattern) {
        Ok(_) => panic!("{pattern:?} compiled; Go refuses it ({message})"),
        Err(e) => assert_eq!(e, format!("error parsing regexp: {message}"), "{pattern:?}"),
    }
}

#[test]
fn perl_classes_are_ascii_only() {
    assert!(!is(r"^\d$", "٣".as_bytes())); // ARABIC-INDIC DIGIT THREE
    assert!(is(r"^\d$", b"3"));
    assert!(!is(r"^\w$", "é".as_bytes()));
    assert!(is(r"^\w+$", b"a_Z9"));
    assert!(!is(r"^\s$", "\u{a0}".as_bytes()));
    assert!(!is(r"^\s$", b"\x0b")); // Go's \s has no \v
    assert!(is(r"^\s$", b"\x0c"));
    // Negations are Unicode-wide complements of the ASCII set.
    assert!(is(r"^\D$", "٣".as_bytes()));
    assert!(is(r"^\W$", "é".as_bytes()));
    // Inside classes too.
    assert!(!is(r"^[\d]$", "٣".as_bytes()));
    assert!(is(r"^[\dx]+$", b"1x2"));
    assert!(is(r"^[^\d]$", "٣".as_bytes()));
    assert!(is(r"^[\D]$", "٣".as_bytes()));
    assert!(!is(r"^[\D]$", b"3"));
    assert!(is(r"^[\s]$", b" "));
    assert!(is(r"^[\w-]+$", b"a-b"));
    // Unicode classes and '.' stay Unicode-aware, as in Go.
    assert!(is(r"^\pL$", "é".as_bytes()));
    assert!(is(r"^.$", "é".as_bytes()));
}

#[test]
fn word_boundary_is_ascii() {
    // In Go "é" is not a word character, so there is a boundary before "x".
    assert!(is(r"\bx", "éx".as_bytes()));
    assert!(!is(r"\Bx", "éx".as_bytes()));
    assert!(is(r"\bfoo\b", b"a foo b"));
    assert!(!is(r"\bfoo\b", b"afoo"));
}

#[test]
fn a_brace_that_is_no_repetition_is_literal() {
    accepts("^/a{01}$", &["/a{01}"], &["/a"]);
    accepts("^/x{,5}$", &["/x{,5}"], &["/x"]);
    accepts("^/x{ 2}$", &["/x{ 2}"], &["/xx"]);
    accepts("^/{$", &["/{"], &[]);
    accepts("^/a{2$", &["/a{2"], &["/aa"]);
    accepts("^/a}$", &["/a}"], &[]);
    accepts(
        "^{domain:[a-z]+}\\.com$",
        &["{domain:abc}.com"],
        &["example.com"],
    );
    accepts("^/{2}$", &["//"], &["/{2}"]);
    accepts(r"\b{start}a", &["x{start}a"], &["a"]);
    // Real repetitions.
    accepts("^/a{2}$", &["/aa"], &["/a", "/aaa"]);
    accepts("^/a{2,}$", &["/aaaa"], &["/a"]);
    accepts("^/a{0,1}$", &["/", "/a"], &["/aa"]);
    accepts("^/a{2}?$", &["/aa"], &[]);
    accepts("^/a{1000}$", &[], &["/a"]);
    accepts("^/(a{10}){100}$", &[], &["/a"]);
    accepts("^/(?:a{2}){500}$", &[], &[]);
    accepts("^/(?:a*){1000}$", &["/"], &[]);
}

#[test]
fn repetition_limits_and_nesting() {
    refuses("^/a{2,1}$", "invalid repeat count: `{2,1}`");
    refuses("^/a{1001}$", "invalid repeat count: `{1001}`");
    refuses("^/a{100000000}$", "invalid repeat count: `{100000000}`");
    refuses("^/a{99999999,}$", "invalid repeat count: `{99999999,}`");
    refuses("^/(a{100}){100}$", "invalid repeat count: `{100}`");
    refuses("^/(?:a{2}){501}$", "invalid repeat count: `{501}`");
    refuses("^/(?:a{0}){1001}$", "invalid repeat count: `{1001}`");
    refuses("^/(?:(?:a{10}){10}){11}$", "invalid repeat count: `{11}`");
    refuses("^/a**$", "invalid nested repetition operator: `**`");
    refuses("^/x{2}{3}$", "invalid nested repetition operator: `{2}{3}`");
    refuses(
        "^/a{1000}{0}$",
        "invalid nested repetition operator: `{1000}{0}`",
    );
    refuses(
        "^/(?:a{2}){0}{2}$",
        "invalid nested repetition operator: `{0}{2}`",
    );
    refuses("^/a|{2}$", "missing argument to repetition operator: `{2}`");
    refuses("^/(a)|*$", "missing argument to repetition operator: `*`");
    refuses("^/(*)$", "missing argument to repetition operator: `*`");
    refuses("*", "missing argument to repetition operator: `*`");
    // A repetition may follow an empty-width assertion, a flag group or `\Q\E`.
    accepts("^*/$", &["/"], &[]);
    accepts("^/a(?i)*$", &["/", "/aa"], &["/b"]);
    accepts(r"^/\Q\E*$", &["/", "//"], &[]);
    accepts(r"\b+x", &["x"], &[]);
}

#[test]
fn quoted_literals() {
    accepts(r"^/\Qa.b\E$", &["/a.b"], &["/axb"]);
    accepts(r"^/\Qa.b", &["/a.b"], &["/axb"]);
    accepts(r"^\Q(*)\E+$", &["(*)))"], &["(*)(*)"]);
    refuses(r"^/[\Q]\E]$", r"invalid escape sequence: `\Q`");
}

#[test]
fn escapes() {
    accepts(r"^/\x{263a}$", &["/☺"], &[]);
    accepts(r"^/\x{41}$", &["/A"], &[]);
    accepts(r"^\x41$", &["A"], &[]);
    accepts(r"^/\012$", &["/\n"], &[]);
    accepts(r"^/\08$", &["/\u{0}8"], &[]);
    accepts(r"^/\1234$", &["/S4"], &[]);
    accepts(r"^/\<$", &["/<"], &[]);
    accepts(r"^/\_$", &["/_"], &[]);
    accepts(r"^/\ $", &["/ "], &[]);
    accepts(r"^/[\ ]$", &["/ "], &[]);
    accepts(r"^\a\f\t\n\r\v$", &["\x07\x0c\t\n\r\x0b"], &[]);
    refuses(r"^/\Z", r"invalid escape sequence: `\Z`");
    refuses(r"^/\e", r"invalid escape sequence: `\e`");
    refuses(r"^/\1", r"invalid escape sequence: `\1`");
    refuses(r"^/\8", r"invalid escape sequence: `\8`");
    refuses(r"^/\C$", r"invalid escape sequence: `\C`");
    refuses(r"^/\cA$", r"invalid escape sequence: `\c`");
    refuses(r"^/\x1$", r"invalid escape sequence: `\x1$`");
    refuses(r"^/\x{}$", r"invalid escape sequence: `\x{}`");
    refuses(r"^/\x{110000}", r"invalid escape sequence: `\x{110000`");
    refuses(r"^/\é$", r"invalid escape sequence: `\é`");
    refuses(r"^/[\b]$", r"invalid escape sequence: `\b`");
    refuses(r"^/[a-\d]$", r"invalid escape sequence: `\d`");
    refuses(r"a\", "trailing backslash at end of expression: ``");
    // A surrogate is a valid Go rune that no text decodes to.
    accepts(r"^\x{D800}", &[], &["\u{FFFD}"]);
    accepts(r"^[\x{D7FF}-\x{E000}]$", &["\u{E000}", "\u{D7FF}"], &[]);
}

#[test]
fn classes() {
    accepts("^/[[:alpha:]]$", &["/a"], &["/1"]);
    accepts("^/[[:^alpha:]]$", &["/1"], &["/a"]);
    accepts("^/[:alpha:]$", &["/a", "/:"], &["/b"]);
    accepts(r"^/[\d-z]$", &["/-", "/z", "/5"], &["/a"]);
    accepts("^/[a&&b]$", &["/&", "/a"], &["/c"]);
    refuses("^/[a--b]$", "invalid character class range: `a--`");
    accepts("^/[[a]]$", &["/a]", "/[]"], &["/a"]);
    accepts("^/[a]]$", &["/a]"], &[]);
    accepts("^/[]]$", &["/]"], &[]);
    accepts("^/[a-]$", &["/-", "/a"], &[]);
    accepts("^/[[:alpha:]-z]$", &["/-"], &[]);
    accepts("^[[:space:]]$", &["\x0b"], &[]);
    accepts("^[[:word:]]+$", &["a_1"], &["é"]);
    refuses("^/[[:foo:]]", "invalid character class range: `[:foo:]`");
    refuses("^/[[:a]b:]]", "invalid character class range: `[:a]b:]`");
    refuses("^/[z-a]$", "invalid character class range: `z-a`");
    refuses("^/[]$", "missing closing ]: `[]$`");
    refuses("^/[^]$", "missing closing ]: `[^]$`");
}

#[test]
fn unicode_classes_use_gos_names() {
    accepts(r"^/\p{Greek}$", &["/α"], &["/a"]);
    accepts(r"^/\p{greek}$", &["/α"], &[]);
    accepts(r"^/\p{Letter}$", &["/a"], &["/1"]);
    accepts(r"^/\p{^Greek}$", &["/a"], &["/α"]);
    accepts(r"^/\P{^Greek}$", &["/α"], &["/a"]);
    accepts(r"^/\p{Any}$", &["/a"], &[]);
    accepts(r"^/\p{Assigned}$", &["/a"], &["/\u{378}"]);
    accepts(r"^/\P{Assigned}$", &["/\u{378}"], &[]);
    accepts(r"^/\p{ASCII}$", &["/a"], &["/é"]);
    accepts(r"^/\p{LC}$", &["/a"], &[]);
    accepts(r"^/\p{Cn}$", &["/\u{378}"], &["/a"]);
    accepts(r"^/\p{C}$", &["/\u{378}", "/\u{1}"], &[]);
    accepts(r"^/\p{Other}$", &["/\u{378}"], &[]);
    accepts(r"^/\p{Unassigned}$", &["/\u{378}"], &[]);
    accepts(r"^/\pL$", &["/a"], &[]);
    accepts(r"^/\pN$", &["/1"], &[]);
    accepts(r"^/\p{lu}$", &["/A"], &["/a"]);
    accepts(r"^/\p{ L }$", &["/a"], &[]);
    accepts(r"^/\p{cased letter}$", &["/a"], &[]);
    accepts(r"^/\p{CasedLetter}$", &["/a"], &[]);
    accepts(r"^/\p{digit}$", &["/1"], &[]);
    accepts(r"^/\p{punct}$", &["/!"], &[]);
    for ok in [
        "Common",
        "Inherited",
        "Kawi",
        "Nko",
        "Toto",
        "Yi",
        "Braille",
        "cntrl",
        "Combining_Mark",
    ] {
        assert!(GoRegex::new(&format!(r"\p{{{ok}}}")).is_ok(), "{ok}");
    }
    // Go's lookup never reaches multi-word scripts; Rust-only properties,
    // short script names and Unicode 16 scripts are unknown to Go.
    for bad in [
        "Old_Italic",
        "SignWriting",
        "Garay",
        "Sunuwar",
        "Todhri",
        "Alphabetic",
        "gc=L",
        "L&",
        "Unknown",
        "Zzzz",
        "Grek",
        "Latn",
        "Katakana_Or_Hiragana",
    ] {
        refuses(
            &format!(r"^/\p{{{bad}}}$"),
            &format!(r"invalid character class range: `\p{{{bad}}}`"),
        );
    }
    refuses(r"^/\p$", r"invalid character class range: `\p$`");
    refuses(r"\p", r"invalid character class range: `\p`");
    refuses(r"^/\pé$", r"invalid character class range: `\pé`");
    refuses(
        r"^/\p{Greek$",
        r"invalid character class range: `\p{Greek$`",
    );
}

#[test]
fn case_folding_like_go() {
    accepts("^/(?i)k$", &["/\u{212A}", "/K"], &[]);
    accepts("^/(?i)s$", &["/\u{17F}"], &[]);
    accepts("^/(?i)[k]$", &["/\u{212A}"], &[]);
    accepts(r"^/(?i)\w$", &["/\u{212A}"], &[]);
    accepts(r"^/(?i)\W$", &[], &["/\u{212A}"]);
    accepts("^/(?i)[^k]$", &[], &["/\u{212A}"]);
    accepts("^/(?i)Σ$", &["/ς", "/σ"], &[]);
    accepts(r"^/(?i)\p{Lu}$", &["/a"], &[]);
    accepts(r"^/(?i)\P{Lu}$", &[], &["/a"]);
    accepts(r"^/(?i)[^\p{Lu}]$", &[], &["/a"]);
}

#[test]
fn groups_and_flags() {
    accepts("^/(?P<x>a)(?P<x>b)$", &["/ab"], &[]);
    accepts("^/(?P<1>a)$", &["/a"], &[]);
    accepts("^/(?<n>a)$", &["/a"], &[]);
    accepts("^/(?)a$", &["/a"], &[]);
    accepts("^/(?i:a)b$", &["/Ab"], &["/AB"]);
    accepts("^/(?i)a(?-i)b$", &["/Ab"], &["/AB"]);
    accepts("^/(?i)(?-i:a)b$", &["/aB"], &["/AB"]);
    accepts("^/(?i-i)a$", &["/a"], &["/A"]);
    accepts("^(?:(?i)a|b)c$", &["Bc"], &["BC"]);
    accepts("^/(?s).$", &["/\n"], &[]);
    accepts("a.b", &[], &["a\nb"]);
    accepts("(?m)^b$", &["a\nb\nc"], &[]);
    accepts("(?U)a+", &["aa"], &[]);
    accepts("", &["abc", ""], &[]);
    accepts("b", &["abc"], &[]);
    accepts("^b", &[], &["abc"]);
    accepts("a|", &["x"], &[]);
    refuses("^/(?'n'a)$", "invalid or unsupported Perl syntax: `(?'`");
    refuses("^/(?i-)a$", "invalid or unsupported Perl syntax: `(?i-)`");
    refuses("^/(?--i)a$", "invalid or unsupported Perl syntax: `(?--`");
    refuses("(?x)a", "invalid or unsupported Perl syntax: `(?x`");
    refuses("(?u)a", "invalid or unsupported Perl syntax: `(?u`");
    refuses("(?R)a", "invalid or unsupported Perl syntax: `(?R`");
    refuses("^/(?P=n)$", "invalid or unsupported Perl syntax: `(?P`");
    refuses("^/(?P<n$", "invalid named capture: `(?P<n$`");
    refuses("^/(?P<>a)$", "invalid named capture: `(?P<>`");
    refuses("^/(?P<a-b>a)$", "invalid named capture: `(?P<a-b>`");
    refuses("^/(?P<é>a)$", "invalid named capture: `(?P<é>`");
    refuses("(?<=a)b", "invalid named capture: `(?<=a)b`");
    refuses("a)", "unexpected ): `a)`");
    refuses("(a", "missing closing ): `(a`");
}

#[test]
fn nesting_is_bounded_like_go() {
    // Non-capturing groups leave no node: any depth is fine.
    let deep = format!("{}a{}", "(?:".repeat(5000), ")".repeat(5000));
    accepts(&deep, &["a"], &["b"]);
    let ok = format!("{}a{}", "(".repeat(900), ")".repeat(900));
    accepts(&ok, &["a"], &[]);
    let too_deep = format!("{}a{}", "(".repeat(1500), ")".repeat(1500));
    match GoRegex::new(&too_deep) {
        Err(e) => assert!(e.contains("expression nests too deeply"), "{e}"),
        Ok(_) => panic!("1500 nested captures compiled"),
    }
    let stars = format!("{}a{}", "(?:".repeat(2000), ")*".repeat(2000));
    assert!(GoRegex::new(&stars).is_err());
}

#[test]
fn text_that_is_not_utf8_reads_as_replacement_characters() {
    // Go decodes each invalid byte as one U+FFFD.
    assert!(is("^.$", b"\xff"));
    assert!(is(r"^\x{FFFD}$", b"\xff"));
    assert!(is("^..$", b"\xe2\x82"));
    assert!(!is("^.$", b"\xe2\x82"));
    assert!(is("^a.b$", b"a\xffb"));
    assert!(is("^[^x]$", b"\xff"));
}

#[test]
fn unanchored_like_go_match_string() {
    assert!(is("b", b"abc"));
    assert!(!is("^b", b"abc"));
    assert!(is("", b"abc"));
}

#[test]
fn rule_regexes_use_go_classes() {
    assert!(!m(r"PathRegexp(`^/\d+$`)", &Req::new("a", "/٣")));
    assert!(m(r"PathRegexp(`^/\d+$`)", &Req::new("a", "/42")));
    assert!(!m(
        r"HeaderRegexp(`X`, `^\w+$`)",
        &Req::new("a", "/").header("x", "abc-")
    ));
    // A v2-style template in a v3 rule is a literal brace pattern.
    assert!(m(
        "HostRegexp(`{domain:[a-z]+}\\.com`)",
        &Req::new("{domain:abc}.com", "/")
    ));
    assert!(!m(
        "HostRegexp(`{domain:[a-z]+}\\.com`)",
        &Req::new("example.com", "/")
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
                    assert!(r.is_match_str(&path));
                    assert!(!r.is_match_str("/item/x"));
                }
            });
        }
    });
    // Caches of dropped regexes are purged when new ones warm up.
    for i in 0..200 {
        let tmp = re(&format!("^x{i}$"));
        assert!(tmp.is_match_str(&format!("x{i}")));
    }
    assert!(shared.is_match_str("/item/7"));
}
