//! Matcher semantics, checked case by case against Traefik 3.7's
//! `pkg/muxer/http/matcher.go` and `pkg/muxer/muxer.go`.

use super::support::{Req, m};

#[test]
fn host_is_case_insensitive_and_exact() {
    assert!(m("Host(`Example.COM`)", &Req::new("example.com", "/")));
    assert!(m("Host(`example.com`)", &Req::new("EXAMPLE.com", "/")));
    assert!(!m("Host(`example.com`)", &Req::new("www.example.com", "/")));
    assert!(!m("Host(`example.com`)", &Req::new("example.co", "/")));
    assert!(!m("Host(`example.com`)", &Req::new("", "/")));
    // IP hosts.
    assert!(m("Host(`127.0.0.1`)", &Req::new("127.0.0.1", "/")));
    assert!(m("Host(`10::10`)", &Req::new("10::10", "/")));
    // Surrounding spaces are trimmed (CanonicalDomain).
    assert!(m("Host(`example.com`)", &Req::new(" example.com ", "/")));
    // A rule host with a port never matches (the request host has none).
    assert!(!m("Host(`example.com:80`)", &Req::new("example.com", "/")));
}

#[test]
fn host_trailing_period() {
    assert!(m("Host(`example.com.`)", &Req::new("example.com", "/")));
    assert!(m("Host(`example.com`)", &Req::new("example.com.", "/")));
    assert!(m("Host(`example.com.`)", &Req::new("example.com.", "/")));
    assert!(!m("Host(`example.com`)", &Req::new("example.com..", "/")));
}

#[test]
fn host_wildcard_one_label() {
    let rule = "Host(`*.example.com`)";
    assert!(m(rule, &Req::new("a.example.com", "/")));
    assert!(m(rule, &Req::new("A-B.Example.Com", "/")));
    assert!(!m(rule, &Req::new("example.com", "/")));
    assert!(!m(rule, &Req::new("a.b.example.com", "/")));
    assert!(!m(rule, &Req::new("aexample.com", "/")));
    assert!(m(rule, &Req::new("a.example.com.", "/")));
    // Only "*." prefixes can ever match.
    assert!(!m(
        "Host(`*example.com`)",
        &Req::new("www.example.com", "/")
    ));
    assert!(!m("Host(`*example.com`)", &Req::new("wwwexample.com", "/")));
}

#[test]
fn host_star_matches_everything() {
    assert!(m("Host(`*`)", &Req::new("anything", "/")));
    assert!(m("Host(`*`)", &Req::new("", "/")));
    assert!(!m("!Host(`*`)", &Req::new("x", "/")));
}

#[test]
fn host_unicode_folding_like_go() {
    // Go lower-cases the request host with simple case mapping and compares
    // with EqualFold: KELVIN SIGN lowers to 'k', LONG S folds to 's'.
    assert!(m("Host(`k.com`)", &Req::new("\u{212A}.com", "/")));
    assert!(m("Host(`s.com`)", &Req::new("\u{17F}.com", "/")));
    assert!(m("Host(`i.com`)", &Req::new("\u{130}.com", "/")));
    assert!(!m("Host(`e.com`)", &Req::new("é.com", "/")));
    assert!(m("Host(`*.com`)", &Req::new("é.com", "/")));
}

#[test]
fn host_regexp_unanchored_on_lowercase_host() {
    assert!(m(
        "HostRegexp(`^[a-z]+\\.example\\.com$`)",
        &Req::new("Foo.example.com", "/")
    ));
    assert!(m(
        "HostRegexp(`example`)",
        &Req::new("www.example.com", "/")
    ));
    assert!(!m(
        "HostRegexp(`^example`)",
        &Req::new("www.example.com", "/")
    ));
    // The request host is lower-cased first: an upper-case pattern never matches.
    assert!(!m("HostRegexp(`Foo`)", &Req::new("Foo", "/")));
    assert!(m("HostRegexp(`(?i)Foo`)", &Req::new("Foo", "/")));
    // A regex matching "" also matches Traefik's empty flattened host.
    assert!(m("HostRegexp(`^$`)", &Req::new("x.com", "/")));
    assert!(m("HostRegexp(`^(www\\.)?$`)", &Req::new("x.com", "/")));
}

#[test]
fn path_exact_and_prefix() {
    assert!(m("Path(`/foo`)", &Req::new("a", "/foo")));
    assert!(!m("Path(`/foo`)", &Req::new("a", "/foo/")));
    assert!(!m("Path(`/foo`)", &Req::new("a", "/FOO")));
    assert!(m("PathPrefix(`/foo`)", &Req::new("a", "/foobar")));
    assert!(m("PathPrefix(`/foo/`)", &Req::new("a", "/foo/")));
    assert!(!m("PathPrefix(`/foo/`)", &Req::new("a", "/foo")));
    assert!(m("PathPrefix(`/`)", &Req::new("a", "/anything")));
    // Rules compare with the routing path: reserved escapes stay encoded.
    assert!(m("Path(`/a%2Fb`)", &Req::new("a", "/a%2Fb")));
    assert!(m("Path(`/foo bar`)", &Req::new("a", "/foo bar")));
}

#[test]
fn path_regexp_unanchored() {
    assert!(m(
        "PathRegexp(`/api/v[0-9]+`)",
        &Req::new("a", "/x/api/v2/y")
    ));
    assert!(!m(
        "PathRegexp(`^/api/v[0-9]+$`)",
        &Req::new("a", "/api/v2/y")
    ));
    assert!(m(
        "PathRegexp(`^/api/v[0-9]+$`)",
        &Req::new("a", "/api/v22")
    ));
    assert!(m("PathRegexp(`\\.(css|js)$`)", &Req::new("a", "/s/app.js")));
}

#[test]
fn method_is_upper_cased_from_rule_only() {
    assert!(m("Method(`GET`)", &Req::new("a", "/")));
    assert!(m("Method(`get`)", &Req::new("a", "/")));
    assert!(!m("Method(`POST`)", &Req::new("a", "/")));
    assert!(m("Method(`purge`)", &Req::new("a", "/").method("PURGE")));
    // The request method is compared as sent.
    assert!(!m("Method(`purge`)", &Req::new("a", "/").method("purge")));
}

#[test]
fn header_any_line_exact_value() {
    let r = Req::new("a", "/")
        .header("x-env", "prod")
        .header("X-Env", "canary")
        .header("accept", "text/html, application/json");
    assert!(m("Header(`X-Env`, `prod`)", &r));
    assert!(m("Header(`x-env`, `canary`)", &r));
    assert!(m("Header(`X-ENV`, `canary`)", &r));
    assert!(!m("Header(`X-Env`, `Prod`)", &r));
    // Values are whole header lines, not comma-split elements.
    assert!(!m("Header(`Accept`, `text/html`)", &r));
    assert!(m("Header(`Accept`, `text/html, application/json`)", &r));
    assert!(!m("Header(`X-Missing`, `a`)", &r));
    // Go's server removes Host from the header map.
    let h = Req::new("a", "/").header("host", "a");
    assert!(!m("Header(`Host`, `a`)", &h));
    // An invalid header name is accepted and never matches.
    assert!(!m("Header(`bad name`, `a`)", &r));
}

#[test]
fn header_regexp_any_line() {
    let r = Req::new("a", "/").header("x-v", "abc").header("x-v", "12");
    assert!(m("HeaderRegexp(`X-V`, `^[0-9]+$`)", &r));
    assert!(m("HeaderRegexp(`X-V`, `b`)", &r));
    assert!(!m("HeaderRegexp(`X-V`, `^b`)", &r));
    assert!(!m("HeaderRegexp(`X-W`, `.*`)", &r));
}

#[test]
fn query_decoding_like_go_url_query() {
    let r = Req::new("a", "/").query("a=1&b=x+y&c=%41%42&d&e=&f=1;g=2&h=%zz&a=2");
    assert!(m("Query(`a`, `1`)", &r));
    assert!(m("Query(`a`, `2`)", &r));
    assert!(!m("Query(`a`, `3`)", &r));
    assert!(m("Query(`b`, `x y`)", &r));
    assert!(m("Query(`c`, `AB`)", &r));
    // One-argument Query: the key present with an empty value.
    assert!(m("Query(`d`)", &r));
    assert!(m("Query(`e`)", &r));
    assert!(!m("Query(`a`)", &r));
    assert!(!m("Query(`zz`)", &r));
    // ';' separates like '&' (http.AllowQuerySemicolons).
    assert!(m("Query(`f`, `1`)", &r));
    assert!(m("Query(`g`, `2`)", &r));
    // A pair that fails to decode is dropped.
    assert!(!m("QueryRegexp(`h`, `.*`)", &r));
    // Keys are decoded too.
    let k = Req::new("a", "/").query("my%20key=v&x+y=1");
    assert!(m("Query(`my key`, `v`)", &k));
    assert!(m("Query(`x y`, `1`)", &k));
    assert!(!m("Query(`a`, `1`)", &Req::new("a", "/")));
}

#[test]
fn query_regexp() {
    let r = Req::new("a", "/").query("id=12&name=J%C3%BCrgen&x=a+b");
    assert!(m("QueryRegexp(`id`, `^[0-9]+$`)", &r));
    assert!(!m("QueryRegexp(`id`, `^[a-z]+$`)", &r));
    assert!(m("QueryRegexp(`name`, `^J.rgen$`)", &r));
    assert!(m("QueryRegexp(`x`, `^a b$`)", &r));
    // One argument behaves as Query(key).
    assert!(!m("QueryRegexp(`id`)", &r));
    assert!(m("QueryRegexp(`e`)", &Req::new("a", "/").query("e")));
}

#[test]
fn client_ip_ip_and_cidr() {
    let r = Req::new("a", "/").ip("192.168.1.20");
    assert!(m("ClientIP(`192.168.1.20`)", &r));
    assert!(m("ClientIP(`192.168.1.0/24`)", &r));
    assert!(m("ClientIP(`192.168.1.77/24`)", &r));
    assert!(!m("ClientIP(`192.168.2.0/24`)", &r));
    assert!(m("ClientIP(`0.0.0.0/0`)", &r));
    assert!(!m("ClientIP(`::/0`)", &r));
    assert!(m("ClientIP(`::ffff:192.168.1.20`)", &r));
    assert!(m("ClientIP(`::ffff:192.168.1.0/120`)", &r));
    // A v4-mapped peer is an IPv4 client.
    let mapped = Req::new("a", "/").ip("::ffff:192.168.1.20");
    assert!(m("ClientIP(`192.168.1.0/24`)", &mapped));
    let v6 = Req::new("a", "/").ip("2001:db8::1");
    assert!(m("ClientIP(`2001:db8::/32`)", &v6));
    assert!(m("ClientIP(`2001:DB8::1`)", &v6));
    assert!(!m("ClientIP(`2001:db9::/32`)", &v6));
    assert!(!m("ClientIP(`0.0.0.0/0`)", &v6));
    // Never from X-Forwarded-For.
    let xff = Req::new("a", "/")
        .ip("10.0.0.1")
        .header("x-forwarded-for", "1.2.3.4");
    assert!(!m("ClientIP(`1.2.3.4`)", &xff));
    for bad in [
        "1.2.3",
        "1.2.3.4/",
        "1.2.3.4/x",
        "01.2.3.4",
        "::1/129",
        "a::g",
    ] {
        assert!(
            crate::routing::parse_rule(&format!("ClientIP(`{bad}`)")).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn combined_rule() {
    let rule = "Host(`api.example.com`) && (PathPrefix(`/v1`) || PathPrefix(`/v2`)) && !Method(`DELETE`) && Header(`X-Key`, `k`)";
    let ok = Req::new("api.example.com", "/v2/users").header("x-key", "k");
    assert!(m(rule, &ok));
    let del = Req::new("api.example.com", "/v2/users")
        .header("x-key", "k")
        .method("DELETE");
    assert!(!m(rule, &del));
    assert!(!m(
        rule,
        &Req::new("api.example.com", "/v3").header("x-key", "k")
    ));
}
