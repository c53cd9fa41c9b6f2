//! Network values in the configuration: trusted-IP ranges ([`IpNet`]) and
//! Traefik entrypoint addresses (`:80`, `127.0.0.1:8080/tcp`, `[::]:443`).
//!
//! Parsing only; the listener module binds the resolved addresses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;

/// An IPv4 or IPv6 network: an address and a prefix length. A bare address
/// is a single-host network (/32 or /128). The address is kept as written;
/// [`IpNet::contains`] masks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    /// The address part, as written.
    pub addr: IpAddr,
    /// Number of leading bits that must match.
    pub prefix_len: u8,
}

impl IpNet {
    /// Whether `ip` lies in this network. IPv4-mapped IPv6 addresses match
    /// IPv4 networks.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix_len)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix_len)
            }
            (IpAddr::V4(net), IpAddr::V6(ip)) => ip
                .to_ipv4_mapped()
                .is_some_and(|ip| prefix_eq(&net.octets(), &ip.octets(), self.prefix_len)),
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    let rem = bits % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rem == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rem);
    (a[full] & mask) == (b[full] & mask)
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && !p.starts_with('+') => n,
                _ => return Err(format!("{s:?} has an invalid prefix length (0 to {max})")),
            },
        };
        Ok(IpNet { addr, prefix_len })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

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
    fn ipnet_parse_and_contains() {
        let n: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains(&"10.1.2.3".parse().unwrap()));
        assert!(!n.contains(&"11.0.0.1".parse().unwrap()));
        assert!(n.contains(&"::ffff:10.0.0.1".parse().unwrap()));
        let h: IpNet = "192.168.1.7".parse().unwrap();
        assert_eq!(h.prefix_len, 32);
        assert!(h.contains(&"192.168.1.7".parse().unwrap()));
        assert!(!h.contains(&"192.168.1.8".parse().unwrap()));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains(&"fd12::1".parse().unwrap()));
        assert!(!v6.contains(&"fe80::1".parse().unwrap()));
        let odd: IpNet = "172.16.0.0/12".parse().unwrap();
        assert!(odd.contains(&"172.31.255.255".parse().unwrap()));
        assert!(!odd.contains(&"172.32.0.0".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(&"8.8.8.8".parse().unwrap()));
        assert_eq!("::1".parse::<IpNet>().unwrap().prefix_len, 128);
        for bad in ["10.0.0.0/33", "x", "10.0.0.0/", "::/129", "1.2.3.4/+8"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

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
