//! Request and response header rewriting for proxying, as RFC 9110 and
//! Traefik do it: hop-by-hop headers removed (with those the `Connection`
//! header names), `X-Forwarded-*` and `X-Real-Ip` set, untrusted incoming
//! `X-Forwarded-*` dropped first. Before routing (what rules see) and when
//! the request is sent are separate functions, as in Traefik.
//!
//! Runs per request: one pass over the headers to find what needs work, no
//! allocation when the client sent no `X-Forwarded-For` and the values are
//! cached per connection.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers Traefik treats as forwarding information (its `XHeaders`) and
/// removes from requests of untrusted clients; forwardAuth's
/// `trustForwardHeader` reads the same list.
pub(crate) const X_HEADERS: [&str; 11] = [
    "x-forwarded-proto",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-forwarded-uri",
    "x-forwarded-method",
    "x-forwarded-prefix",
    "x-forwarded-tls-client-cert",
    "x-forwarded-tls-client-cert-info",
    "x-real-ip",
];

/// Hop-by-hop headers (RFC 9110 §7.6.1, and the legacy ones Go's reverse
/// proxy removes), in the order of their bits in [`hop_bit`].
const HOP_BY_HOP_COUNT: usize = 9;
const HOP_BY_HOP: [HeaderName; HOP_BY_HOP_COUNT] = [
    header::CONNECTION,
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_FORWARDED_SERVER: HeaderName = HeaderName::from_static("x-forwarded-server");

/// The bit of a hop-by-hop name in [`HOP_BY_HOP`]'s order, and of `close`
/// (named by `Connection: close`, a header almost nobody sends), 0 for any
/// other name. `name` is lower case: a `HeaderName`'s, or a token lowered.
const fn hop_bit(name: &[u8]) -> u16 {
    match name {
        b"connection" => CONNECTION_BIT,
        b"proxy-connection" => 1 << 1,
        b"keep-alive" => 1 << 2,
        b"proxy-authenticate" => 1 << 3,
        b"proxy-authorization" => 1 << 4,
        b"te" => TE_BIT,
        b"trailer" => 1 << 6,
        b"transfer-encoding" => 1 << 7,
        b"upgrade" => UPGRADE_BIT,
        b"close" => CLOSE_BIT,
        _ => 0,
    }
}

const CONNECTION_BIT: u16 = 1;
const TE_BIT: u16 = 1 << 5;
const UPGRADE_BIT: u16 = 1 << 8;
const CLOSE_BIT: u16 = 1 << 9;
/// The hop-by-hop names' bits, `close` excluded.
const HOP_MASK: u16 = (1 << HOP_BY_HOP_COUNT) - 1;
static CLOSE: HeaderName = HeaderName::from_static("close");

/// Which hop-by-hop names (and `close`) `headers` holds, from one pass
/// over its names: nothing hashed, and the removals that follow are of
/// names that are there.
fn hop_names(headers: &HeaderMap) -> u16 {
    headers
        .keys()
        .fold(0, |m, name| m | hop_bit(name.as_str().as_bytes()))
}

/// The bit of a `Connection` token that names a hop-by-hop header or
/// `close`, in any case (a token longer than every such name has none).
fn token_bit(token: &str) -> u16 {
    let mut buf = [0u8; 19];
    let Some(lower) = buf.get_mut(..token.len()) else {
        return 0;
    };
    for (l, b) in lower.iter_mut().zip(token.bytes()) {
        *l = b.to_ascii_lowercase();
    }
    hop_bit(lower)
}

/// The headers the `Connection` values name, as [`hop_bit`]s, when every
/// token names a hop-by-hop header, `close` or (with `keep_forwarding`) a
/// forwarding header; `None` when another token (or one in `keep`) needs
/// [`remove_connection_named`]. Reads the values in place.
fn connection_named_bits(
    headers: &HeaderMap,
    keep_forwarding: bool,
    keep: &[String],
) -> Option<u16> {
    let mut bits = 0;
    for value in headers.get_all(header::CONNECTION) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for token in value.split(',').map(str::trim) {
            let bit = token_bit(token);
            if bit != 0 && !keep.iter().any(|k| token.eq_ignore_ascii_case(k)) {
                bits |= bit;
            } else if !(token.is_empty() || (keep_forwarding && managed_x_header(token))) {
                return None;
            }
        }
    }
    Some(bits)
}

/// Removes the headers of `bits` ([`hop_bit`]'s).
fn remove_bits(headers: &mut HeaderMap, bits: u16) {
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if bits & (1 << i) != 0 {
            headers.remove(name);
        }
    }
    if bits & CLOSE_BIT != 0 {
        headers.remove(&CLOSE);
    }
}

fn is_x_header(name: &str) -> bool {
    (name.len() > 12 && name.starts_with("x-forwarded-"))
        || name == "x-real-ip"
        || (name.starts_with('x') && name.contains('_') && managed_x_header(name))
}

/// Whether `token` names one of [`X_HEADERS`], in any case and with any of
/// its `-` written `_` (`X_Forwarded_For`): Go reads both as the same
/// header, so Traefik's `isManagedXHeader` manages (and removes) both.
fn managed_x_header(token: &str) -> bool {
    X_HEADERS.iter().any(|x| {
        x.len() == token.len()
            && x.bytes()
                .zip(token.bytes())
                .all(|(x, t)| x == t.to_ascii_lowercase() || (x == b'-' && t == b'_'))
    })
}

/// Whether a comma-separated header contains `token` (case-insensitive).
pub fn has_token(values: header::GetAll<'_, HeaderValue>, token: &str) -> bool {
    values.iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Whether the request asks for a protocol upgrade (WebSocket and
/// friends): `Connection: upgrade` together with an `Upgrade` header.
pub fn is_upgrade_request(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && has_token(headers.get_all(header::CONNECTION), "upgrade")
}

/// Removes the headers the `Connection` values name (RFC 9110 §7.6.1),
/// and with `keep_forwarding` never a forwarding header: a client cannot
/// make the proxy drop the `X-Forwarded-*` it manages, as in Traefik.
/// Names in `keep` (`forwardedHeaders.connection`, any case) are not
/// removed either; they are returned, for the new `Connection` header.
/// Allocation-free unless something is kept: each value is cloned (a
/// reference count) so the map can change while its tokens are read, and
/// names are looked up as `&str`.
fn remove_connection_named(
    headers: &mut HeaderMap,
    keep_forwarding: bool,
    keep: &[String],
) -> Vec<String> {
    let mut kept = Vec::new();
    let mut i = 0;
    while let Some(value) = headers.get_all(header::CONNECTION).iter().nth(i).cloned() {
        i += 1;
        let Ok(value) = value.to_str() else {
            continue;
        };
        for token in value.split(',').map(str::trim) {
            if token.is_empty()
                || token.eq_ignore_ascii_case("connection")
                || (keep_forwarding && managed_x_header(token))
            {
                continue;
            }
            if keep.iter().any(|k| token.eq_ignore_ascii_case(k)) {
                kept.push(canonical_name(token));
                continue;
            }
            headers.remove(token);
        }
    }
    kept
}

/// Go's `CanonicalHeaderKey`: each dash-separated word capitalised
/// (`x-foo` → `X-Foo`).
pub(crate) fn canonical_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut up = true;
    for ch in name.chars() {
        out.push(if up {
            ch.to_ascii_uppercase()
        } else {
            ch.to_ascii_lowercase()
        });
        up = ch == '-';
    }
    out
}

/// Removes what the request's `Connection` header names, and `Connection`
/// itself (`Connection: Upgrade` and `Upgrade` stay for an upgrade), as
/// Traefik does before routing: rules and middlewares do not see them. The
/// other hop-by-hop headers go when the request is sent upstream
/// ([`remove_hop_by_hop`]), as Go's reverse proxy removes them. Headers
/// named in `keep` (the entrypoint's `forwardedHeaders.connection`) stay,
/// and `Connection` then names them, as in Traefik: they are removed when
/// the request is sent.
pub fn remove_connection_headers(headers: &mut HeaderMap, upgrade: bool, keep: &[String]) {
    if !headers.contains_key(header::CONNECTION) {
        return;
    }
    let up = if upgrade {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    };
    // Most clients send `Connection: keep-alive` (or `close`): whether the
    // header it names is there is known from one pass over the names.
    let kept = match connection_named_bits(headers, true, keep) {
        Some(bits) => {
            remove_bits(headers, (bits & hop_names(headers)) | CONNECTION_BIT);
            Vec::new()
        }
        None => {
            let kept = remove_connection_named(headers, true, keep);
            headers.remove(header::CONNECTION);
            kept
        }
    };
    if !kept.is_empty() {
        let mut names = kept.join(",");
        if up.is_some() {
            names.push_str(",Upgrade");
        }
        if let Ok(v) = HeaderValue::from_str(&names) {
            headers.insert(header::CONNECTION, v);
        }
    } else if up.is_some() {
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    }
    if let Some(up) = up {
        headers.insert(header::UPGRADE, up);
    }
}

/// Removes the headers named in `Connection` and the hop-by-hop headers.
/// Keeps `Connection: Upgrade` + `Upgrade` when `keep_upgrade` (a request or
/// 101 response of an upgrade), and `TE: trailers` when the client sent it
/// (gRPC needs it end to end).
pub fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool, keep_te_trailers: bool) {
    // One pass to learn what is there: most requests carry none of these
    // (HTTP/2 forbids them), at most `Connection: keep-alive`; most answers
    // `Connection: keep-alive` (nginx's) or nothing.
    let present = hop_names(headers);
    if present & HOP_MASK == 0 {
        return;
    }
    let upgrade = if keep_upgrade && present & UPGRADE_BIT != 0 {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    };
    let te_trailers = keep_te_trailers
        && present & TE_BIT != 0
        && has_token(headers.get_all(header::TE), "trailers");
    let mut remove = present & HOP_MASK;
    if present & CONNECTION_BIT != 0 {
        match connection_named_bits(headers, false, &[]) {
            Some(bits) => remove |= bits & present,
            None => drop(remove_connection_named(headers, false, &[])),
        }
    }
    remove_bits(headers, remove);
    if let Some(up) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(header::UPGRADE, up);
    }
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Whether a message's body is chunked, and in nothing else: `Ok(false)`
/// without `Transfer-Encoding`, `Ok(true)` for exactly one `chunked`,
/// `Err(())` for any other coding or several headers, which Go refuses on
/// both sides (hyper would undo the chunking only and pass the coded bytes
/// on as a plain body).
pub(super) fn chunked_only(h: &HeaderMap) -> Result<bool, ()> {
    let mut all = h.get_all(header::TRANSFER_ENCODING).iter();
    let Some(coding) = all.next() else {
        return Ok(false);
    };
    if all.next().is_some() || !coding.as_bytes().eq_ignore_ascii_case(b"chunked") {
        return Err(());
    }
    Ok(true)
}

/// Removes every forwarding header (`X-Forwarded-*`, `X-Real-Ip`): what
/// Traefik does for clients outside `forwardedHeaders.trustedIPs`.
pub fn remove_forwarding_headers(headers: &mut HeaderMap) {
    if !headers.keys().any(|n| is_x_header(n.as_str())) {
        return;
    }
    for name in X_HEADERS {
        headers.remove(name);
    }
    // Spellings with `_` (`X_Forwarded_For`), rare: found by a second pass.
    if headers.keys().any(|n| is_x_header(n.as_str())) {
        let variants: Vec<HeaderName> = headers
            .keys()
            .filter(|n| is_x_header(n.as_str()))
            .cloned()
            .collect();
        for name in variants {
            headers.remove(name);
        }
    }
}

/// What the forwarding headers are set from. The values are prepared per
/// connection (client IP) or once (server name), so setting them costs a
/// reference-count increment, not an allocation.
#[derive(Debug)]
pub struct Forwarding<'a> {
    /// The peer IP as a header value.
    pub client_ip: &'a HeaderValue,
    /// Whether the client is trusted to send forwarding headers.
    pub trusted: bool,
    /// Whether the downstream connection is TLS.
    pub tls: bool,
    /// Whether the request is a protocol upgrade (ws/wss).
    pub websocket: bool,
    /// The request's host as sent (`Host` or `:authority`), port included.
    pub host: Option<&'a HeaderValue>,
    /// The port part of `host`, if it has one.
    pub host_port: Option<&'a HeaderValue>,
    /// This proxy's host name for `X-Forwarded-Server`.
    pub server_name: &'a HeaderValue,
}

/// Sets `X-Forwarded-Proto/Host/Port/Server` and `X-Real-Ip` as Traefik
/// does before routing: untrusted incoming values are removed first;
/// values a trusted client sent are kept; `X-Forwarded-Server` is always
/// ours. `X-Forwarded-For` gets the peer when the request is sent
/// ([`append_forwarded_for`]), as in Traefik, so rules and middlewares see
/// what the client's proxies sent.
pub fn set_forwarded_headers(headers: &mut HeaderMap, f: &Forwarding<'_>) {
    // One pass over the names: with no forwarding header there (most
    // requests), or none left once an untrusted client's are removed, each
    // one is set without a hashed lookup first.
    let sent = headers.keys().any(|n| is_x_header(n.as_str()));
    if sent && !f.trusted {
        remove_forwarding_headers(headers);
    }
    let absent = !sent || !f.trusted;
    if absent || !headers.contains_key(&X_REAL_IP) {
        headers.insert(X_REAL_IP.clone(), f.client_ip.clone());
    }
    let sent_proto = if absent {
        None
    } else {
        headers.get(&X_FORWARDED_PROTO)
    };
    let proto = match sent_proto {
        Some(p) => p.clone(),
        None => {
            let p = HeaderValue::from_static(match (f.websocket, f.tls) {
                (true, true) => "wss",
                (true, false) => "ws",
                (false, true) => "https",
                (false, false) => "http",
            });
            headers.insert(X_FORWARDED_PROTO.clone(), p.clone());
            p
        }
    };
    if absent || !headers.contains_key(&X_FORWARDED_PORT) {
        let port = match f.host_port {
            Some(p) => p.clone(),
            None if f.tls || proto == "https" || proto == "wss" => HeaderValue::from_static("443"),
            None => HeaderValue::from_static("80"),
        };
        headers.insert(X_FORWARDED_PORT.clone(), port);
    }
    if let Some(host) = f.host
        && !host.is_empty()
        && (absent || !headers.contains_key(&X_FORWARDED_HOST))
    {
        headers.insert(X_FORWARDED_HOST.clone(), host.clone());
    }
    headers.insert(X_FORWARDED_SERVER.clone(), f.server_name.clone());
}

/// What becomes of `X-Forwarded-For` when a request is sent upstream,
/// by the entrypoint's `forwardedHeaders` and the client's trust.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardedFor {
    /// The peer is appended to the list a trusted client sent.
    Append,
    /// The peer is the only value (an untrusted client's list was
    /// removed by [`set_forwarded_headers`]).
    Replace,
    /// `notAppendXForwardedFor`: the header goes on as it is (a trusted
    /// client's list unchanged, none from an untrusted client).
    Keep,
}

/// Sets `X-Forwarded-For` as [`ForwardedFor`] says.
pub fn append_forwarded_for(headers: &mut HeaderMap, client_ip: &HeaderValue, how: ForwardedFor) {
    match (how, headers.get(&X_FORWARDED_FOR)) {
        (ForwardedFor::Keep, _) => {}
        (ForwardedFor::Append, Some(prev)) => {
            let mut v = Vec::with_capacity(prev.len() + 2 + client_ip.len());
            v.extend_from_slice(prev.as_bytes());
            v.extend_from_slice(b", ");
            v.extend_from_slice(client_ip.as_bytes());
            if let Ok(v) = HeaderValue::from_bytes(&v) {
                headers.insert(X_FORWARDED_FOR.clone(), v);
            }
        }
        _ => {
            headers.insert(X_FORWARDED_FOR.clone(), client_ip.clone());
        }
    }
}

#[cfg(test)]
mod tests;
