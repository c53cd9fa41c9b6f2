//! The v2 rule syntax (`ruleSyntax: v2`): matchers with several values, mux
//! templates, and the errors Traefik 3.7 gives. Facts checked against
//! Traefik 3.7.15; Traefik's own v2 tests run as data over sockets in
//! `proxy/tests/traefik_rules.rs`.

use super::support::{Req, err, err2, m2};
use crate::routing::{RuleSyntax, parse_rule, parse_rule_with};

#[test]
fn several_values_match_any() {
    let r = "Host(`example.com`, `example.org`)";
    assert!(m2(r, &Req::new("example.com", "/")));
    assert!(m2(r, &Req::new("EXAMPLE.ORG", "/")));
    assert!(!m2(r, &Req::new("example.net", "/")));
    assert!(m2(
        "HostHeader(`a`) || hostheader(`b`)",
        &Req::new("b", "/")
    ));
    let p = "Path(`/css`, `/js`)";
    assert!(m2(p, &Req::new("a", "/js")));
    assert!(!m2(p, &Req::new("a", "/js/")));
    assert!(m2("PathPrefix(`/css`, `/js`)", &Req::new("a", "/js/x")));
    assert!(m2(
        "Method(`get`, `post`)",
        &Req::new("a", "/").method("POST")
    ));
    assert!(!m2("Method(`GET`)", &Req::new("a", "/").method("PUT")));
    let ip = "ClientIP(`10.0.0.1`, `192.168.0.0/16`)";
    assert!(m2(ip, &Req::new("a", "/").ip("192.168.3.4")));
    assert!(!m2(ip, &Req::new("a", "/").ip("10.0.0.2")));
    // Negation covers the whole matcher.
    assert!(!m2("!Host(`a`, `b`)", &Req::new("b", "/")));
}

#[test]
fn host_is_exact_without_wildcards() {
    assert!(m2("Host(`example.com.`)", &Req::new("example.com", "/")));
    assert!(m2("Host(`example.com`)", &Req::new("example.com.", "/")));
    assert!(m2("Host(`EXAMPLE.COM`)", &Req::new("example.com", "/")));
    // `*` is no wildcard in v2: it is the host "*".
    assert!(!m2(
        "Host(`*.example.com`)",
        &Req::new("a.example.com", "/")
    ));
    assert!(m2("Host(`*`)", &Req::new("*", "/")));
    assert!(!m2("Host(`*`)", &Req::new("a", "/")));
    // v2 compares lower-cased strings; v3's fold of LONG S does not apply.
    assert!(!m2("Host(`s.com`)", &Req::new("\u{17F}.com", "/")));
    assert!(!m2("Host(`a.com:80`)", &Req::new("a.com", "/")));
}

#[test]
fn host_regexp_templates() {
    let r = "HostRegexp(`{subdomain:(foo\\.)?bar\\.com}`)";
    assert!(m2(r, &Req::new("foo.bar.com", "/")));
    assert!(m2(r, &Req::new("bar.com", "/")));
    assert!(!m2(r, &Req::new("fooubar.com", "/")));
    let r = "HostRegexp(`{sub:[a-z]+}.x.com`)";
    assert!(m2(r, &Req::new("AB.X.COM", "/")));
    assert!(!m2(r, &Req::new("ab.x.com.", "/")));
    assert!(!m2(r, &Req::new("a.b.x.com", "/")));
    assert!(!m2(r, &Req::new(".x.com", "/")));
    // The default variable pattern is one label.
    let r = "HostRegexp(`{sub}.x.com`)";
    assert!(m2(r, &Req::new("a-1.x.com", "/")));
    assert!(!m2(r, &Req::new("a.b.x.com", "/")));
    // Without variables: the whole host, case-insensitive as Go folds.
    let r = "HostRegexp(`example.com`)";
    assert!(m2(r, &Req::new("EXAMPLE.com", "/")));
    assert!(!m2(r, &Req::new("example.com.", "/")));
    assert!(!m2(r, &Req::new("www.example.com", "/")));
    assert!(m2("HostRegexp(`k.com`)", &Req::new("\u{212A}.com", "/")));
    // The text around variables is quoted: `(example.com` is literal.
    assert!(m2(
        "HostRegexp(`(example.com`)",
        &Req::new("(example.com", "/")
    ));
    assert!(!m2(
        "HostRegexp(`(example.com`)",
        &Req::new("example.com", "/")
    ));
    // Variables may repeat; several templates match any.
    assert!(m2(
        "HostRegexp(`r.{a}.{a}`, `{b}`)",
        &Req::new("single", "/")
    ));
}

#[test]
fn path_templates() {
    let r = "Path(`/css{path:(/.*)?}`)";
    assert!(m2(r, &Req::new("a", "/css/main.css")));
    assert!(m2(r, &Req::new("a", "/css")));
    assert!(!m2(r, &Req::new("a", "/css.css")));
    let r = "Path(`/{a}/{b:[0-9]+}`)";
    assert!(m2(r, &Req::new("a", "/x/1")));
    assert!(!m2(r, &Req::new("a", "/x/y/1")));
    assert!(!m2(r, &Req::new("a", "/x/")));
    let r = "PathPrefix(`/css-{name:[0-9]?}`)";
    assert!(m2(r, &Req::new("a", "/css-1/main.css")));
    assert!(m2(r, &Req::new("a", "/css-222/main.css")));
    assert!(!m2(r, &Req::new("a", "/css.css")));
    // Flags inside a variable stay inside it.
    assert!(m2("Path(`/{x:(?i)ab}c`)", &Req::new("a", "/ABc")));
    assert!(!m2("Path(`/{x:(?i)ab}c`)", &Req::new("a", "/ABC")));
    // Outside variables the text is literal.
    assert!(!m2("Path(`/a.b`)", &Req::new("a", "/axb")));
    assert!(m2("Path(`/{x:a{2}}`)", &Req::new("a", "/aa")));
}

#[test]
fn headers_need_every_pair() {
    let h = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .fold(Req::new("a", "/"), |r, (k, v)| r.header(k, v))
    };
    let r = "Headers(`Content-Type`, `application/json`, `X-A`, `1`)";
    assert!(m2(
        r,
        &h(&[("content-type", "application/json"), ("x-a", "1")])
    ));
    assert!(!m2(r, &h(&[("content-type", "application/json")])));
    // A key written twice keeps its last value.
    let r = "Headers(`X-A`, `1`, `X-A`, `2`)";
    assert!(m2(r, &h(&[("x-a", "2")])));
    assert!(!m2(r, &h(&[("x-a", "1")])));
    // Written differently, both pairs stay (and name the same header).
    let r = "Headers(`X-A`, `1`, `x-a`, `2`)";
    assert!(m2(r, &h(&[("x-a", "1"), ("x-a", "2")])));
    assert!(!m2(r, &h(&[("x-a", "1")])));
    assert!(!m2("Headers(`Host`, `a`)", &h(&[])));
    let r = "HeadersRegexp(`Content-Type`, `application/(text|json)`)";
    assert!(m2(r, &h(&[("content-type", "application/text")])));
    assert!(!m2(r, &h(&[("content-type", "application/foo")])));
}

#[test]
fn query_reads_the_first_value() {
    let q = |query: &str| Req::new("a", "/").query(query);
    let r = "Query(`q=traefik`)";
    assert!(m2(r, &q("q=traefik&q=x")));
    assert!(!m2(r, &q("q=awesome&q=traefik")));
    // `k=`: the key with any first value (without a newline).
    let r = "Query(`k=`)";
    assert!(m2(r, &q("k")));
    assert!(m2(r, &q("k=ab")));
    assert!(!m2(r, &q("k=a%0Ab")));
    assert!(!m2(r, &q("j=1")));
    // Values split at their first `=`, then taken two by two.
    assert!(m2("Query(`a`, `b`)", &q("a=b")));
    assert!(m2("Query(`foo=b=ar`)", &q("foo=b=ar")));
    assert!(m2("Query(`foo=bar`, `bar=baz`)", &q("foo=bar&bar=baz")));
    assert!(!m2("Query(`foo=bar`, `bar=baz`)", &q("bar=baz")));
    assert!(m2("Query(`a=b`, `c=`)", &q("c=1;a=b")));
    // The rule's text is compared with decoded keys and values.
    assert!(m2("Query(`a=%41`)", &q("a=%2541")));
    assert!(!m2("Query(`a=%41`)", &q("a=A")));
    assert!(m2("Query(`a+b=c`)", &q("a%2Bb=c")));
    assert!(!m2("Query(`a+b=c`)", &q("a+b=c")));
    // Templates.
    let r = "Query(`a={b:[0-9]+}`)";
    assert!(m2(r, &q("a=12")));
    assert!(m2(r, &q("a=1&a=x")));
    assert!(!m2(r, &q("a=x&a=1")));
    assert!(m2("Query(`{k}=1`)", &q("{k}=1")));
    assert!(!m2("Query(`{k}=1`)", &q("a=1")));
}

#[test]
fn errors_as_traefik_gives_them() {
    let cases: &[(&str, &str)] = &[
        ("Host()", "no arguments for Host"),
        ("Host(``)", "empty argument for Host"),
        ("Path(`/a`, ``)", "empty argument for Path"),
        ("Host(`🦭.com`)", "non-ASCII characters are not allowed"),
        (
            "HostRegexp(`locàlhost`)",
            "non-ASCII characters are not allowed",
        ),
        (
            "Path(`css`)",
            "mux: path must start with a slash, got \"css\"",
        ),
        ("Path(`/a{`)", "mux: unbalanced braces in \"/a{\""),
        ("Path(`/a}`)", "mux: unbalanced braces in \"/a}\""),
        ("HostRegexp(`{test`)", "mux: unbalanced braces in \"{test\""),
        ("Path(`/{:x}`)", "mux: missing name or pattern in \"{:x}\""),
        ("Path(`/{x:}`)", "mux: missing name or pattern in \"{x:}\""),
        ("Path(`/{a:x)|(y}`)", "unexpected ): `^x)|(y$`"),
        ("Path(`/{a:x\\}`)", "missing closing ): `^/(?P<v0>x\\)$`"),
        ("HostRegexp(`{a:(}`)", "missing closing ): `^($`"),
        (
            "Headers(`X-Forwarded-Host`)",
            "mux: number of parameters must be multiple of 2, got [X-Forwarded-Host]",
        ),
        ("Headers(`a`, `b`, `c`)", "multiple of 2"),
        (
            "HeadersRegexp(`X`, `(`, `X`, `^a`)",
            "missing closing ): `(`",
        ),
        (
            "Query(`titi`)",
            "mux: number of parameters must be multiple of 2, got [titi]",
        ),
        (
            "Query(`titi={test`)",
            "mux: unbalanced braces in \"titi={test\"",
        ),
        (
            "Query(`a={x}`, `b={x}`)",
            "mux: duplicated route variable \"x\"",
        ),
        (
            "ClientIP(`invalid`)",
            "invalid IP or CIDR \"invalid\" for ClientIP",
        ),
        (
            "ClientIP(`10.0.0.1`, `bad`)",
            "invalid IP or CIDR \"bad\" for ClientIP",
        ),
        (
            "PathRegexp(`/x`)",
            "unsupported function \"PathRegexp\": it is a v3 matcher",
        ),
        (
            "Header(`X`, `y`)",
            "unsupported function \"Header\": it is a v3 matcher",
        ),
        ("HeaderRegexp()", "unsupported function \"HeaderRegexp\""),
        ("QueryRegexp(`q`)", "unsupported function \"QueryRegexp\""),
        (
            "rulewithnotmatcher",
            "unknown matcher \"rulewithnotmatcher\"",
        ),
    ];
    for (rule, want) in cases {
        let e = err2(rule);
        assert!(
            e.message.contains(want),
            "{rule}: {} (wanted {want:?})",
            e.message
        );
    }
    // The column points at the argument.
    assert_eq!(err2("Host(`a`, ``)").column, 11);
    assert_eq!(err2("Path(`/a`, `x`)").column, 12);
}

#[test]
fn v2_rules_without_v2_syntax_get_traefiks_error() {
    let e = err("Headers(`X`, `y`)");
    assert!(
        e.message.starts_with(
            "unsupported function \"Headers\": it is a v2 matcher; set `ruleSyntax: v2`"
        ),
        "{}",
        e.message
    );
    assert!(e.message.contains("Header(...)"), "{}", e.message);
    assert!(err("HostHeader(`a`)").message.contains("as Host(...)"));
    assert!(
        err("HeadersRegexp(`a`, `b`)")
            .message
            .contains("v2 matcher")
    );
    let e = err("Host(`a`, `b`)");
    assert!(
        e.message.contains("several values are the v2 syntax"),
        "{}",
        e.message
    );
    let e = err("Method(`GET`, `POST`)");
    assert!(e.message.contains("ruleSyntax: v2"), "{}", e.message);
    // Valid in both, with different meanings.
    assert!(parse_rule("Query(`q=traefik`)").is_ok());
    assert!(parse_rule_with("Query(`q=traefik`)", RuleSyntax::V2).is_ok());
}

#[test]
fn syntax_of_a_router() {
    use RuleSyntax::{V2, V3};
    assert_eq!(RuleSyntax::for_router("", V2), (V2, false));
    assert_eq!(RuleSyntax::for_router("", V3), (V3, false));
    assert_eq!(RuleSyntax::for_router("v2", V3), (V2, false));
    assert_eq!(RuleSyntax::for_router("v3", V2), (V3, false));
    // Traefik parses unknown names (`default`, `V2`) as v3.
    assert_eq!(RuleSyntax::for_router("default", V2), (V3, true));
    assert_eq!(RuleSyntax::for_router("V2", V3), (V3, true));
    assert_eq!(RuleSyntax::from_default_setting("v2"), Some(V2));
    assert_eq!(RuleSyntax::from_default_setting("v4"), None);
    let r = parse_rule_with("Host(`a`)", V2).expect("parses");
    assert_eq!(r.syntax(), V2);
    assert_eq!(r.default_priority(), 9);
    assert_ne!(Some(r), parse_rule("Host(`a`)").ok());
}

#[test]
fn v2_writing_that_v3_accepts_is_warned() {
    let warn = |rule: &str| -> Vec<String> {
        parse_rule(rule)
            .expect("parses")
            .warnings()
            .iter()
            .map(|w| format!("{}: {}", w.column, w.message))
            .collect()
    };
    let w = warn("HostRegexp(`{sub:[a-z]+}.example.com`)");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("12: `{sub:[a-z]+}` is a v2 template"),
        "{w:?}"
    );
    assert!(warn("PathRegexp(`/users/{id}`)")[0].contains("`{id}` is a v2 template"));
    assert!(warn("HeaderRegexp(`X`, `http{secure:s?}`)")[0].contains("`{secure:s?}`"));
    let q = warn("Query(`mobile=true`)");
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(q[0].contains("v3 writes Query(`mobile`, `true`)"), "{q:?}");
    // Repetitions, plain braces and v3 forms are not warned.
    for ok in [
        "PathRegexp(`^/a{2,3}$`)",
        "HostRegexp(`^{$`)",
        "HostRegexp(`x{1}`)",
        "Query(`mobile`, `a=b`)",
        "Path(`/{id}`)",
    ] {
        assert!(warn(ok).is_empty(), "{ok}: {:?}", warn(ok));
    }
    // The v2 syntax reads templates: nothing to warn.
    let r = parse_rule_with("HostRegexp(`{sub}.a.com`)", RuleSyntax::V2).expect("parses");
    assert!(r.warnings().is_empty());
}
