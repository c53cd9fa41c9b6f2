//! IP networks as Traefik reads them (Go's `net.ParseIP` / `ParseCIDR`):
//! `ClientIP` matchers and `forwardedHeaders.trustedIPs` share this type.
//!
//! `contains` runs per request (ClientIP) or per connection (trusted
//! sources): integer masks, no allocation.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address or network; a single address is a full-length prefix.
/// IPv4-mapped IPv6 networks of /96 or longer are stored as IPv4, as Go
/// compares them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpNet {
    /// An IPv4 network (address already masked).
    V4 {
        /// Network address.
        addr: u32,
        /// Prefix length, 0 to 32.
        prefix: u8,
    },
    /// An IPv6 network (address already masked).
    V6 {
        /// Network address.
        addr: u128,
        /// Prefix length, 0 to 128.
        prefix: u8,
    },
}

impl IpNet {
    /// Go's `net.ParseIP`, else `net.ParseCIDR`.
    pub fn parse(s: &str) -> Option<IpNet> {
        let (ip_part, prefix) = match s.split_once('/') {
            Some((ip, len)) => {
                if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let n = len.parse::<u32>().ok()?;
                (ip, Some(u8::try_from(n).ok()?))
            }
            None => (s, None),
        };
        let ip: IpAddr = ip_part.parse().ok()?;
        Some(match ip {
            IpAddr::V4(v4) => {
                let prefix = prefix.unwrap_or(32);
                if prefix > 32 {
                    return None;
                }
                IpNet::V4 {
                    addr: u32::from(v4) & mask32(prefix),
                    prefix,
                }
            }
            IpAddr::V6(v6) => {
                let prefix = prefix.unwrap_or(128);
                if prefix > 128 {
                    return None;
                }
                let addr = u128::from(v6) & mask128(prefix);
                match Ipv6Addr::from(addr).to_ipv4_mapped() {
                    Some(v4) if prefix >= 96 => IpNet::V4 {
                        addr: u32::from(v4),
                        prefix: prefix - 96,
                    },
                    _ => IpNet::V6 { addr, prefix },
                }
            }
        })
    }

    /// Whether `ip` lies in this network (an IPv4-mapped IPv6 address is
    /// compared as IPv4).
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, canonical_ip(ip)) {
            (IpNet::V4 { addr, prefix }, IpAddr::V4(v4)) => {
                u32::from(v4) & mask32(*prefix) == *addr
            }
            (IpNet::V6 { addr, prefix }, IpAddr::V6(v6)) => {
                u128::from(v6) & mask128(*prefix) == *addr
            }
            _ => false,
        }
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        match self {
            IpNet::V4 { prefix, .. } | IpNet::V6 { prefix, .. } => *prefix,
        }
    }
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        IpNet::parse(t).ok_or_else(|| match t.split_once('/') {
            Some((a, _)) if a.parse::<IpAddr>().is_ok() => {
                let max = if a.contains(':') { 128 } else { 32 };
                format!("{t:?} has an invalid prefix length (0 to {max})")
            }
            _ => format!("{t:?} is not an IP address or CIDR range"),
        })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpNet::V4 { addr, prefix } => write!(f, "{}/{prefix}", Ipv4Addr::from(*addr)),
            IpNet::V6 { addr, prefix } => write!(f, "{}/{prefix}", Ipv6Addr::from(*addr)),
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

fn mask128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address, as Go reports peers.
#[inline]
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A set of IP networks; membership is a linear scan (trusted lists are
/// short).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpSet {
    nets: Box<[IpNet]>,
}

impl IpSet {
    /// The set of `nets`.
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
        Self {
            nets: nets.into_iter().collect(),
        }
    }

    /// Its networks, as configured (for the API).
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// Whether `ip` is in one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_and_hosts() {
        let n: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains(ip("10.255.0.1")));
        assert!(!n.contains(ip("11.0.0.1")));
        assert!(
            n.contains(ip("::ffff:10.1.2.3")),
            "mapped IPv6 compares as IPv4"
        );
        let h: IpNet = "192.168.1.7".parse().unwrap();
        assert_eq!(h.prefix_len(), 32);
        assert!(h.contains(ip("192.168.1.7")) && !h.contains(ip("192.168.1.8")));
        let odd: IpNet = "172.16.0.0/12".parse().unwrap();
        assert!(odd.contains(ip("172.31.255.255")) && !odd.contains(ip("172.32.0.0")));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(
            "0.0.0.0/0"
                .parse::<IpNet>()
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        assert_eq!("::1".parse::<IpNet>().unwrap().prefix_len(), 128);
        let mapped: IpNet = "::ffff:127.0.0.0/104".parse().unwrap();
        assert_eq!(mapped.to_string(), "127.0.0.0/8");
    }

    #[test]
    fn invalid_forms_are_refused_with_a_reason() {
        for bad in [
            "",
            "10.0.0.0/33",
            "::1/129",
            "10.0.0/8",
            "abc",
            "10.0.0.0/",
            "1.2.3.4/+8",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
        assert!(
            "10.0.0.0/33"
                .parse::<IpNet>()
                .unwrap_err()
                .contains("prefix length")
        );
        assert!("abc".parse::<IpNet>().unwrap_err().contains("not an IP"));
    }

    #[test]
    fn mapped_ipv6_is_reported_as_ipv4() {
        assert_eq!(canonical_ip(ip("::ffff:10.1.2.3")).to_string(), "10.1.2.3");
        assert_eq!(canonical_ip(ip("2001:db8::1")), ip("2001:db8::1"));
    }

    #[test]
    fn sets() {
        let set = IpSet::new(["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()]);
        assert!(set.contains(ip("10.1.2.3")));
        assert!(set.contains(ip("::1")));
        assert!(!set.contains(ip("11.0.0.1")));
        assert!(!IpSet::default().contains(ip("10.0.0.1")));
    }
}
