//! Parser tests: syntax, precedence, quoting, names, error columns.

use super::support::{Req, err, m};
use crate::routing::parse_rule;

#[test]
fn quoting_backtick_and_double_quote() {
    let r = Req::new("example.com", "/");
    assert!(m("Host(`example.com`)", &r));
    assert!(m("Host(\"example.com\")", &r));
    // Go escapes in double-quoted strings.
    assert!(m(r#"Host("exa\x6dple.com")"#, &r));
    assert!(m(r#"Host("\u0065xample.com")"#, &r));
    assert!(m(r#"Host("\145xample.com")"#, &r));
    // Raw strings keep backslashes.
    let p = Req::new("a", "/a\\b");
    assert!(m(r"Path(`/a\b`)", &p));
    assert!(m(r#"Path("/a\\b")"#, &p));
}

#[test]
fn matcher_name_spellings() {
    let r = Req::new("example.com", "/css/x");
    for ok in ["PathPrefix", "pathprefix", "PATHPREFIX", "Pathprefix"] {
        assert!(m(&format!("{ok}(`/css`)"), &r), "{ok}");
    }
    for ok in ["Host", "host", "HOST"] {
        assert!(m(&format!("{ok}(`example.com`)"), &r), "{ok}");
    }
    for ok in ["ClientIP", "clientip", "CLIENTIP", "Clientip"] {
        assert!(parse_rule(&format!("{ok}(`10.0.0.1`)")).is_ok(), "{ok}");
    }
    for bad in ["pathPrefix", "PAthPrefix", "hOST", "Hostregexp2"] {
        assert!(parse_rule(&format!("{bad}(`/`)")).is_err(), "{bad}");
    }
    assert!(parse_rule("Hostregexp(`x`)").is_ok());
    assert!(parse_rule("HostRegexp(`x`)").is_ok());
}

#[test]
fn unknown_matcher_suggests() {
    let e = err("Hots(`a`)");
    assert_eq!(e.column, 1);
    assert_eq!(
        e.message,
        "unknown matcher \"Hots\" (did you mean \"Host\"?)"
    );
    let e = err("Host(`a`) && pathPrefix(`/`)");
    assert_eq!(e.column, 14);
    assert!(
        e.message.contains("did you mean \"PathPrefix\""),
        "{}",
        e.message
    );
    let e = err("Foo(`a`)");
    assert_eq!(e.message, "unknown matcher \"Foo\"");
}

#[test]
fn precedence_and_binds_tighter_than_or() {
    // Host(a) || Host(b) && Path(/css) == Host(a) || (Host(b) && Path(/css))
    let rule = "Host(`a`) || Host(`b`) && Path(`/css`)";
    assert!(m(rule, &Req::new("a", "/js")));
    assert!(m(rule, &Req::new("b", "/css")));
    assert!(!m(rule, &Req::new("b", "/js")));
    let rule = "(Host(`a`) || Host(`b`)) && Path(`/css`)";
    assert!(!m(rule, &Req::new("a", "/js")));
    assert!(m(rule, &Req::new("a", "/css")));
    // Left-associativity and mixing.
    let rule = "Path(`/x`) && Host(`a`) || Path(`/y`) && Host(`b`) || Host(`c`)";
    assert!(m(rule, &Req::new("a", "/x")));
    assert!(!m(rule, &Req::new("a", "/y")));
    assert!(m(rule, &Req::new("b", "/y")));
    assert!(m(rule, &Req::new("c", "/z")));
}

#[test]
fn negation() {
    assert!(m("!Host(`a`)", &Req::new("b", "/")));
    assert!(!m("!Host(`a`)", &Req::new("a", "/")));
    assert!(m("!!Host(`a`)", &Req::new("a", "/")));
    // ! binds tighter than &&.
    let rule = "!Host(`a`) && Path(`/x`)";
    assert!(m(rule, &Req::new("b", "/x")));
    assert!(!m(rule, &Req::new("a", "/x")));
    // De Morgan over a group.
    let rule = "!(Host(`a`) && Path(`/x`))";
    assert!(m(rule, &Req::new("a", "/y")));
    assert!(!m(rule, &Req::new("a", "/x")));
    let rule = "!(Host(`a`) || Path(`/x`))";
    assert!(!m(rule, &Req::new("b", "/x")));
    assert!(m(rule, &Req::new("b", "/y")));
}

#[test]
fn whitespace_comments_newlines_trailing_comma() {
    let r = Req::new("a", "/x");
    assert!(m("  Host( `a` )\t&&\n  Path(`/x`)\n", &r));
    assert!(m("Host(`a`,)", &r));
    assert!(m("Host(`a`) /* c */ && // comment\n Path(`/x`)", &r));
    // A newline after an operand ends the expression (Go's semicolon).
    let e = err("Host(`a`)\n&& Path(`/x`)");
    assert_eq!(e.column, 10);
    assert!(e.message.contains("newline"), "{}", e.message);
    let e = err("Host(`a`\n)");
    assert_eq!(e.column, 9);
    // Raw strings may span lines; \r is dropped from them.
    assert!(m("Path(`/a\r\nb`)", &Req::new("a", "/a\nb")));
}

#[test]
fn error_columns_and_messages() {
    let e = err("Host(`a`");
    assert_eq!(
        (e.column, e.message.as_str()),
        (9, "expected \",\" or \")\", found end of rule")
    );
    let e = err("(Host(`a`)");
    assert_eq!(e.column, 11);
    assert!(e.message.starts_with("expected \")\""), "{}", e.message);
    let e = err("Path(`a`)");
    assert_eq!(
        (e.column, e.message.as_str()),
        (6, "Path must start with \"/\"")
    );
    let e = err("PathPrefix(`a`)");
    assert_eq!(e.message, "PathPrefix must start with \"/\"");
    let e = err("Host(`a`, `b`)");
    assert_eq!(e.column, 1);
    assert_eq!(
        e.message,
        "Host expects 1 argument, got 2 (several values are the v2 syntax: set `ruleSyntax: v2` \
         on the router, or write Host(`a`) || Host(`b`))"
    );
    let e = err("Header(`a`)");
    assert_eq!(e.message, "Header expects 2 arguments, got 1");
    let e = err("Query(`a`, `b`, `c`)");
    assert_eq!(e.message, "Query expects 1 or 2 arguments, got 3");
    let e = err("Host()");
    assert_eq!(e.message, "Host expects 1 argument, got 0");
    let e = err("Host(``)");
    assert_eq!(
        (e.column, e.message.as_str()),
        (6, "empty argument for Host")
    );
    let e = err("Query(`a`, ``)");
    assert_eq!(e.column, 12);
    let e = err("PathRegexp(`(`)");
    assert_eq!(e.column, 12);
    assert!(
        e.message.starts_with("invalid regular expression: "),
        "{}",
        e.message
    );
    let e = err("");
    assert_eq!((e.column, e.message.as_str()), (1, "empty rule"));
    let e = err("Host(`a`) Path(`/`)");
    assert_eq!(e.column, 11);
    let e = err("Host(`a`) & Path(`/`)");
    assert_eq!(e.column, 11);
    assert!(e.message.contains("did you mean \"&&\""), "{}", e.message);
    let e = err("Host(a)");
    assert_eq!(e.column, 6);
    let e = err("Host(1)");
    assert!(e.message.contains("number"), "{}", e.message);
    let e = err("Host('a')");
    assert!(e.message.contains("character literal"), "{}", e.message);
    let e = err("Host(`a`) && ");
    assert_eq!(e.column, 14);
    let e = err("Host(\"a)");
    assert_eq!(
        (e.column, e.message.as_str()),
        (6, "string literal not terminated")
    );
    let e = err("Host(`a)");
    assert_eq!(e.column, 6);
    let e = err(r#"Host("\q")"#);
    assert_eq!(e.message, "unknown escape sequence");
    let e = err("Host(`a`) == Host(`b`)");
    assert_eq!(e.column, 11);
    let e = err("Host(`é.com`)");
    assert!(e.message.contains("ASCII"), "{}", e.message);
    // Columns count characters, not bytes.
    let e = err("Header(`é`, `é`) && Foo(`x`)");
    assert_eq!(e.column, 21);
    let e = err("Host");
    assert_eq!(e.column, 5);
    let e = err("ClientIP(`1.2.3.4/33`)");
    assert_eq!(e.column, 10);
    let e = err("ClientIP(`1.2.3.4`, `::1`)");
    assert!(
        e.message
            .starts_with("ClientIP expects 1 argument, got 2 (several values"),
        "{}",
        e.message
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{}Host(`a`){}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(parse_rule(&deep).is_err());
    let nots = format!("{}Host(`a`)", "!".repeat(10_000));
    assert!(parse_rule(&nots).is_err());
    let ok = format!("{}Host(`a`){}", "(".repeat(100), ")".repeat(100));
    assert!(parse_rule(&ok).is_ok());
    // Long flat chains do not nest.
    let chain = vec!["Host(`a`)"; 20_000].join(" || ");
    let rule = parse_rule(&chain).expect("flat chain parses");
    assert!(rule.matches(&Req::new("a", "/").view()));
}

#[test]
fn source_and_default_priority() {
    let rule = parse_rule("Host(`é`) || Path(`/`)").err();
    assert!(rule.is_some());
    let r = parse_rule("Path(`/é`)").expect("parses");
    assert_eq!(r.source(), "Path(`/é`)");
    // Bytes, as Go's len(rule).
    assert_eq!(r.default_priority(), 11);
}
