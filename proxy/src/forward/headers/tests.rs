//! Header rewriting: hop-by-hop and `Connection`-named removal, and the
//! forwarding headers, against Traefik's behaviour.

use super::*;

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn fwd<'a>(ip: &'a HeaderValue, server: &'a HeaderValue, trusted: bool) -> Forwarding<'a> {
    Forwarding {
        client_ip: ip,
        trusted,
        tls: false,
        websocket: false,
        host: None,
        host_port: None,
        server_name: server,
    }
}

/// Both halves, as a request gets them on its way through.
fn forward_all(h: &mut HeaderMap, f: &Forwarding<'_>) {
    set_forwarded_headers(h, f);
    let how = if f.trusted {
        ForwardedFor::Append
    } else {
        ForwardedFor::Replace
    };
    append_forwarded_for(h, f.client_ip, how);
}

#[test]
fn connection_named_headers_go_before_routing_but_never_forwarding_ones() {
    let mut h = map(&[
        ("connection", "keep-alive, X-Secret, X-Forwarded-Proto"),
        ("connection", "x-real-ip, upgrade"),
        ("keep-alive", "timeout=5"),
        ("x-secret", "1"),
        ("x-forwarded-proto", "https"),
        ("x-real-ip", "1.2.3.4"),
        ("upgrade", "websocket"),
        ("te", "trailers"),
    ]);
    // Values parsed by hyper are views of one shared buffer: cloning
    // one counts a reference. A value built from a `&str` is promoted
    // to that on its first clone, which allocates; do it beforehand.
    h.values().for_each(|v| drop(v.clone()));
    let (n, ()) =
        crate::test_alloc::allocations_during(|| remove_connection_headers(&mut h, true, &[]));
    assert_eq!(n, 0, "removing Connection-named headers allocated");
    assert!(!h.contains_key("keep-alive") && !h.contains_key("x-secret"));
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-real-ip"], "1.2.3.4");
    assert_eq!(h["connection"], "Upgrade");
    assert_eq!(h["upgrade"], "websocket");
    assert_eq!(h["te"], "trailers", "other hop-by-hop headers go later");
    let mut h = map(&[("connection", "close"), ("accept", "*/*")]);
    remove_connection_headers(&mut h, false, &[]);
    assert_eq!(h.len(), 1, "{h:?}");
}

#[test]
fn removes_hop_by_hop_and_connection_named_headers() {
    let mut h = map(&[
        ("connection", "keep-alive, x-secret"),
        ("keep-alive", "timeout=5"),
        ("x-secret", "1"),
        ("transfer-encoding", "chunked"),
        ("proxy-authorization", "Basic x"),
        ("te", "gzip"),
        ("accept", "*/*"),
    ]);
    remove_hop_by_hop(&mut h, false, true);
    assert_eq!(h.len(), 1, "{h:?}");
    assert!(h.contains_key("accept"));
}

/// `hop_bit` gives each name of `HOP_BY_HOP` the bit `remove_bits`
/// removes it by: the two lists must keep one order.
#[test]
fn each_hop_by_hop_name_has_its_own_bit() {
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        assert_eq!(hop_bit(name.as_str().as_bytes()), 1 << i, "{name}");
        assert_eq!(token_bit(&name.as_str().to_ascii_uppercase()), 1 << i);
    }
    assert_eq!(hop_bit(b"close"), CLOSE_BIT);
    assert_eq!(CLOSE_BIT & HOP_MASK, 0);
}

/// `Connection: close` names a header too (rarely sent); a token in
/// any case, and a mix of hop-by-hop names with another name, are
/// read as before the one-pass lookup.
#[test]
fn connection_tokens_in_any_case_and_mixed_with_other_names() {
    let mut h = map(&[
        ("connection", "Keep-Alive, CLOSE"),
        ("keep-alive", "timeout=5"),
        ("close", "1"),
        ("accept", "*/*"),
    ]);
    remove_connection_headers(&mut h, false, &[]);
    assert_eq!(h.len(), 1, "{h:?}");
    let mut h = map(&[
        ("connection", "keep-alive, X-Secret"),
        ("connection", "Close"),
        ("close", "1"),
        ("x-secret", "1"),
        ("proxy-connection", "keep-alive"),
        ("accept", "*/*"),
    ]);
    remove_hop_by_hop(&mut h, false, false);
    assert_eq!(h.len(), 1, "{h:?}");
    let mut h = map(&[("connection", "keep-alive"), ("close", "1")]);
    remove_hop_by_hop(&mut h, false, false);
    assert_eq!(h["close"], "1", "not named by Connection: stays");
}

#[test]
fn keeps_upgrade_and_te_trailers() {
    let mut h = map(&[
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("te", "trailers, deflate"),
    ]);
    assert!(is_upgrade_request(&h));
    remove_hop_by_hop(&mut h, true, true);
    assert_eq!(h["connection"], "Upgrade");
    assert_eq!(h["upgrade"], "websocket");
    assert_eq!(h["te"], "trailers");
    let mut h = map(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
    remove_hop_by_hop(&mut h, false, false);
    assert!(h.is_empty());
}

#[test]
fn untrusted_forwarding_headers_are_replaced() {
    let ip = HeaderValue::from_static("10.0.0.7");
    let server = HeaderValue::from_static("proxy-1");
    let host = HeaderValue::from_static("example.com:8443");
    let port = HeaderValue::from_static("8443");
    let mut h = map(&[
        ("x-forwarded-for", "1.2.3.4"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil"),
        ("x-real-ip", "1.2.3.4"),
        ("x-forwarded-uri", "/evil"),
    ]);
    let mut f = fwd(&ip, &server, false);
    f.host = Some(&host);
    f.host_port = Some(&port);
    forward_all(&mut h, &f);
    assert_eq!(h["x-forwarded-for"], "10.0.0.7");
    assert_eq!(h["x-real-ip"], "10.0.0.7");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "example.com:8443");
    assert_eq!(h["x-forwarded-port"], "8443");
    assert_eq!(h["x-forwarded-server"], "proxy-1");
    assert!(!h.contains_key("x-forwarded-uri"));
}

#[test]
fn trusted_forwarding_headers_are_kept_and_appended() {
    let ip = HeaderValue::from_static("10.0.0.7");
    let server = HeaderValue::from_static("proxy-1");
    let mut h = map(&[
        ("x-forwarded-for", "1.2.3.4"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-server", "other"),
    ]);
    forward_all(&mut h, &fwd(&ip, &server, true));
    assert_eq!(h["x-forwarded-for"], "1.2.3.4, 10.0.0.7");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-port"], "443");
    assert_eq!(h["x-forwarded-server"], "proxy-1");
}

#[test]
fn websocket_proto() {
    let ip = HeaderValue::from_static("::1");
    let server = HeaderValue::from_static("p");
    let mut h = HeaderMap::new();
    let mut f = fwd(&ip, &server, false);
    f.websocket = true;
    forward_all(&mut h, &f);
    assert_eq!(h["x-forwarded-proto"], "ws");
    assert_eq!(h["x-forwarded-port"], "80");
}

#[test]
fn forwarding_headers_spelt_with_underscores_are_forwarding_headers() {
    for name in [
        "x_forwarded_for",
        "x_real_ip",
        "x_forwarded-proto",
        "X_FORWARDED_HOST",
    ] {
        assert!(managed_x_header(name), "{name}");
    }
    for name in [
        "x_forwarded_fo",
        "x_custom",
        "x-forwarded-for_",
        "y_real_ip",
    ] {
        assert!(!managed_x_header(name), "{name}");
    }
    let ip = HeaderValue::from_static("127.0.0.1");
    let server = HeaderValue::from_static("proxy");
    let sent = [
        ("x_forwarded_for", "6.6.6.6"),
        ("x_real_ip", "6.6.6.6"),
        ("x_custom", "1"),
    ];
    let mut h = map(&sent);
    set_forwarded_headers(&mut h, &fwd(&ip, &server, false));
    assert!(!h.contains_key("x_forwarded_for") && !h.contains_key("x_real_ip"));
    assert_eq!(h["x_custom"], "1");
    let mut h = map(&sent);
    set_forwarded_headers(&mut h, &fwd(&ip, &server, true));
    assert_eq!(h["x_forwarded_for"], "6.6.6.6", "a trusted client's stay");
    // Naming one in Connection does not remove it either.
    let mut h = map(&[
        ("connection", "X_Real_Ip, x-gone"),
        ("x_real_ip", "1"),
        ("x-gone", "1"),
    ]);
    remove_connection_headers(&mut h, false, &[]);
    assert_eq!(h["x_real_ip"], "1");
    assert!(!h.contains_key("x-gone") && !h.contains_key("connection"));
}

#[test]
fn connection_named_headers_listed_by_the_entrypoint_stay_until_sent() {
    let keep = ["X-Keep".to_owned()];
    let mut h = map(&[
        ("connection", "x-keep, x-drop"),
        ("x-keep", "1"),
        ("x-drop", "1"),
    ]);
    remove_connection_headers(&mut h, false, &keep);
    assert_eq!(h["x-keep"], "1");
    assert!(!h.contains_key("x-drop"));
    assert_eq!(h["connection"], "X-Keep");
    remove_hop_by_hop(&mut h, false, false);
    assert!(
        !h.contains_key("x-keep") && !h.contains_key("connection"),
        "{h:?}"
    );
    // With an upgrade, Connection names both.
    let mut h = map(&[
        ("connection", "Upgrade, X-Keep"),
        ("upgrade", "websocket"),
        ("x-keep", "1"),
    ]);
    remove_connection_headers(&mut h, true, &keep);
    assert_eq!(h["connection"], "X-Keep,Upgrade");
    assert_eq!(h["upgrade"], "websocket");
    remove_hop_by_hop(&mut h, true, false);
    assert_eq!(h["connection"], "Upgrade");
    assert!(!h.contains_key("x-keep"));
}

#[test]
fn x_forwarded_for_is_appended_replaced_or_kept() {
    let ip = HeaderValue::from_static("10.0.0.1");
    let cases = [
        (
            ForwardedFor::Append,
            Some("1.2.3.4"),
            Some("1.2.3.4, 10.0.0.1"),
        ),
        (ForwardedFor::Append, None, Some("10.0.0.1")),
        (ForwardedFor::Replace, Some("1.2.3.4"), Some("10.0.0.1")),
        (ForwardedFor::Keep, Some("1.2.3.4"), Some("1.2.3.4")),
        (ForwardedFor::Keep, None, None),
    ];
    for (how, sent, want) in cases {
        let mut h = HeaderMap::new();
        if let Some(v) = sent {
            h.insert("x-forwarded-for", HeaderValue::from_static(v));
        }
        append_forwarded_for(&mut h, &ip, how);
        assert_eq!(
            h.get("x-forwarded-for").map(|v| v.to_str().unwrap()),
            want,
            "{how:?} {sent:?}"
        );
    }
}
