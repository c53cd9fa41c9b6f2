//! Network values in the configuration: Traefik entrypoint addresses (`:80`, `127.0.0.1:8080/tcp`, `[::]:443`).
//!
//! Parsing only; the listener module binds the resolved addresses.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

/// Resolves a Traefik entrypoint address. `:80` means every interface
/// (`0.0.0.0:80`); a `/tcp` suffix is allowed; `/udp` is refused (no UDP
/// entrypoints yet). A host name is resolved once, first address wins.
pub(crate) fn parse_entrypoint_address(address: &str) -> Result<SocketAddr, String> {
    let (hostport, proto) = match address.rsplit_once('/') {
        Some((hp, proto)) => (hp, Some(proto.to_ascii_lowercase())),
        None => (address, None),
    };
    match proto.as_deref() {
        None | Some("tcp") => {}
        Some("udp") => return Err("UDP entrypoints are not supported yet".to_owned()),
        Some(other) => {
            return Err(format!(
                "unknown protocol {other:?} in address {address:?} (expected tcp)"
            ));
        }
    }
    let Some(colon) = hostport.rfind(':') else {
        return Err(format!(
            "invalid address {address:?}: expected [host]:port, e.g. \":80\""
        ));
    };
    let (host, port) = (&hostport[..colon], &hostport[colon + 1..]);
    let port: u16 = port
        .parse()
        .map_err(|_| format!("invalid port {port:?} in address {address:?}"))?;
    if host.is_empty() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    if host.contains(['[', ']']) || bare.contains(':') {
        return Err(format!("invalid host {host:?} in address {address:?}"));
    }
    (bare, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .ok_or_else(|| format!("cannot resolve host {host:?} in address {address:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_entrypoint_address(":80").unwrap(),
            "0.0.0.0:80".parse().unwrap()
        );
        assert_eq!(
            parse_entrypoint_address("127.0.0.1:0").unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        assert_eq!(
            parse_entrypoint_address(":8443/tcp").unwrap(),
            "0.0.0.0:8443".parse().unwrap()
        );
        assert_eq!(
            parse_entrypoint_address("[::1]:80").unwrap(),
            "[::1]:80".parse().unwrap()
        );
        assert!(parse_entrypoint_address("localhost:81").is_ok());
        assert!(
            parse_entrypoint_address(":53/udp")
                .unwrap_err()
                .contains("not supported yet")
        );
        for bad in ["80", ":http", ":99999", ":80/sctp", "[::1:80"] {
            assert!(parse_entrypoint_address(bad).is_err(), "{bad}");
        }
    }
}
