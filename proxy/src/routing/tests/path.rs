//! Path normalisation (Traefik 3.7 entrypoint + muxer) and host parsing.

use bumpalo::Bump;

use crate::routing::{PathError, host_without_port, normalize_path, routing_path};

fn norm(raw: &str) -> Result<String, PathError> {
    let arena = Bump::new();
    normalize_path(raw, &arena).map(str::to_owned)
}

#[test]
fn clean_dot_segments_and_slashes() {
    let cases = [
        ("/", "/"),
        ("/a/b", "/a/b"),
        ("/a/b/", "/a/b/"),
        ("//a//b//", "/a/b/"),
        ("/a/./b", "/a/b"),
        ("/a/../b", "/b"),
        ("/a/b/..", "/a"),
        ("/a/b/../", "/a/"),
        ("/a/b/.", "/a/b"),
        ("/a/b/./", "/a/b/"),
        ("/..", "/"),
        ("/../a", "/a"),
        ("/../../a/../..", "/"),
        ("/a/...", "/a/..."),
        ("/a/..b/c", "/a/..b/c"),
        ("/.a", "/.a"),
        ("/a//", "/a/"),
        ("*", "*"),
        ("", "/"),
    ];
    for (raw, want) in cases {
        assert_eq!(norm(raw).as_deref(), Ok(want), "{raw:?}");
    }
}

#[test]
fn percent_encodings() {
    let cases = [
        ("/%41%7E", "/A~"),
        ("/%61%2d%2E%5f", "/a-._"),
        ("/a%2Fb", "/a%2Fb"),
        ("/a%2fb", "/a%2Fb"),
        ("/a%3a%3A", "/a%3A%3A"),
        ("/a%25b", "/a%25b"),
        ("/foo%20bar", "/foo bar"),
        ("/%C3%A9", "/é"),
        ("/%c3%a9", "/é"),
        // Encoded dots are decoded before cleaning.
        ("/a/%2E%2E/b", "/b"),
        ("/a/%2e/b", "/a/b"),
        // Encoded slashes are not separators.
        ("/a%2F..%2Fb", "/a%2F..%2Fb"),
        ("/a/..%2Fb", "/a/..%2Fb"),
        // Reserved sub-delims kept literally stay literal.
        ("/a!b$c(d)", "/a!b$c(d)"),
        ("/a%21b", "/a%21b"),
        // Invalid UTF-8 after decoding stays encoded.
        ("/%FF", "/%FF"),
        ("/%C3", "/%C3"),
        ("/%C3%A9%FF", "/é%FF"),
    ];
    for (raw, want) in cases {
        assert_eq!(norm(raw).as_deref(), Ok(want), "{raw:?}");
    }
}

#[test]
fn raw_characters_go_would_escape() {
    // A raw path holding a character Go escapes is re-escaped from its
    // decoded form: reserved sub-delims then show up encoded in the routing
    // path, like Traefik's EscapedPath.
    assert_eq!(norm("/a b").as_deref(), Ok("/a b"));
    assert_eq!(norm("/a!b c").as_deref(), Ok("/a%21b c"));
    assert_eq!(norm("/é").as_deref(), Ok("/é"));
    assert_eq!(norm("/é/../x").as_deref(), Ok("/x"));
    // Go re-escapes the decoded path: the %2F became a real separator.
    assert_eq!(norm("/a\"%2Fb").as_deref(), Ok("/a\"/b"));
    assert_eq!(norm("/a\"%2F..%2Fb").as_deref(), Ok("/b"));
}

#[test]
fn rejects() {
    assert_eq!(norm("/a%"), Err(PathError::InvalidPercentEncoding));
    assert_eq!(norm("/a%4"), Err(PathError::InvalidPercentEncoding));
    assert_eq!(norm("/a%zz"), Err(PathError::InvalidPercentEncoding));
    assert_eq!(norm("/a#b"), Err(PathError::Fragment));
}

#[test]
fn unchanged_paths_are_returned_without_allocating() {
    let arena = Bump::new();
    for raw in ["/", "/api/v1/users", "/a%2Fb", "/a:b@c", "/x.y/z~"] {
        let out = normalize_path(raw, &arena).expect("valid");
        assert!(std::ptr::eq(out, raw), "{raw}");
    }
    assert_eq!(arena.allocated_bytes(), 0);
}

#[test]
fn host_port_stripping() {
    let cases = [
        ("example.com", "example.com"),
        ("example.com:443", "example.com"),
        ("example.com:", "example.com"),
        ("[::1]:8080", "::1"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("10.0.0.1:80", "10.0.0.1"),
        ("a:b:c", "a:b:c"),
        ("[::1]x:80", "[::1]x:80"),
        ("", ""),
    ];
    for (raw, want) in cases {
        assert_eq!(host_without_port(raw), want, "{raw:?}");
    }
}

#[test]
fn a_child_routers_path_is_decoded_as_the_muxer_does() {
    let arena = Bump::new();
    let route = |p: &str| routing_path(p, &arena).map(str::to_owned);
    for (escaped, want) in [
        ("/plain", "/plain"),
        ("/a%20b", "/a b"),
        ("/%41%62", "/Ab"),
        // Reserved characters stay encoded when written in upper case (the
        // keys of Go's table); Go decodes a lower-case one.
        ("/a%2Fb%3F", "/a%2Fb%3F"),
        ("/a%2fb", "/a/b"),
        ("/%25%41", "/%25A"),
        ("/%C3%A9", "/é"),
        ("/%FF", "/%FF"),
    ] {
        assert_eq!(route(escaped).as_deref(), Ok(want), "{escaped}");
    }
    assert_eq!(route("/a%4"), Err(PathError::InvalidPercentEncoding));
    assert_eq!(route("/a%zz/b"), Err(PathError::InvalidPercentEncoding));
}
