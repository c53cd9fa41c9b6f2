//! `entryPoints.<n>.proxyProtocol`: reading the PROXY protocol header (v1
//! text, v2 binary) an L4 load balancer puts before a connection's bytes,
//! and choosing the client address from it as Traefik 3.7 (go-proxyproto's
//! listener) does:
//! - a peer in `trustedIPs` (or any peer with `insecure`): the header's
//!   source address becomes the client's (`ClientIP`, `X-Forwarded-For`,
//!   allow-lists, the access log, the forwarded-headers trust check); a
//!   connection without a header keeps its TCP peer;
//! - any other peer: a header it sends is read and dropped, and the TCP
//!   peer stays the client;
//! - a malformed header closes the connection.
//!
//! Runs once per connection, only on entrypoints that enable it, before
//! the TLS-or-plain detection: it peeks until it can tell, then consumes
//! exactly the header, so the stream that follows is untouched. Bounded by
//! the entrypoint's `readTimeout` like the handshake (go-proxyproto's
//! `ReadHeaderTimeout` is that same timeout in Traefik). No lock, no
//! allocation but for a v2 header's TLVs, read into a stack buffer.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::ipnet::{IpSet, canonical_ip};

/// An entrypoint's `proxyProtocol`.
#[derive(Clone, Debug, Default)]
pub struct ProxyProtocol {
    /// Peers whose headers are used (`trustedIPs`).
    pub trusted: IpSet,
    /// Use every peer's header (`insecure`).
    pub insecure: bool,
}

/// The v1 header's start.
const V1_SIG: &[u8] = b"PROXY";
/// The v2 header's 12-byte signature.
const V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 header, `\r\n` included (the specification's 107).
const V1_MAX: usize = 107;
/// A v2 header's fixed part: signature, version/command, family, length.
const V2_FIXED: usize = 16;

impl ProxyProtocol {
    /// Reads the PROXY header of the connection `tcp` from `peer`, if it
    /// sends one, and returns the address to treat as the client's.
    pub async fn client_addr(
        &self,
        tcp: &mut TcpStream,
        peer: SocketAddr,
    ) -> io::Result<SocketAddr> {
        let header = read_header(tcp).await?;
        let trusted = self.insecure || self.trusted.contains(canonical_ip(peer.ip()));
        Ok(match header {
            Some(src) if trusted => src,
            Some(src) => {
                tracing::debug!(peer = %peer, header_source = %src, "PROXY protocol header from an untrusted peer: ignored");
                peer
            }
            None => peer,
        })
    }
}

/// Peeks at least `need` bytes (or fewer at the end of the stream) into
/// `buf`. A header split over several segments is waited for with a short
/// sleep, as a peek of a partly arrived header returns at once.
async fn peek_at_least(tcp: &TcpStream, buf: &mut [u8], need: usize) -> io::Result<usize> {
    let mut wait = Duration::from_millis(1);
    loop {
        let n = tcp.peek(buf).await?;
        if n >= need || n == 0 {
            return Ok(n);
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(50));
    }
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads the PROXY header at the start of `tcp`, if there is one: its
/// source address (`None` for v1 `UNKNOWN`, v2 `LOCAL`, or a family
/// without an IP address). Leaves the stream untouched when there is no
/// header; an error when the header is malformed.
pub(crate) async fn read_header(tcp: &mut TcpStream) -> io::Result<Option<SocketAddr>> {
    let mut buf = [0u8; V1_MAX];
    let n = peek_at_least(tcp, &mut buf, 1).await?;
    let first = match buf[..n].first() {
        Some(b) => *b,
        None => return Ok(None),
    };
    if first == V1_SIG[0] {
        let n = peek_at_least(tcp, &mut buf, V1_SIG.len()).await?;
        if n < V1_SIG.len() || &buf[..V1_SIG.len()] != V1_SIG {
            return Ok(None);
        }
        return read_v1(tcp, &mut buf).await;
    }
    if first == V2_SIG[0] {
        let n = peek_at_least(tcp, &mut buf, V2_FIXED).await?;
        if n < V2_SIG.len() || &buf[..V2_SIG.len()] != V2_SIG {
            return Ok(None);
        }
        if n < V2_FIXED {
            return Err(invalid("PROXY v2 header cut short"));
        }
        return read_v2(tcp).await;
    }
    Ok(None)
}

/// Reads a v1 header, whose start is already seen.
async fn read_v1(tcp: &mut TcpStream, buf: &mut [u8; V1_MAX]) -> io::Result<Option<SocketAddr>> {
    let mut need = V1_SIG.len() + 1;
    let len = loop {
        let n = peek_at_least(tcp, buf, need).await?;
        if let Some(at) = buf[..n].windows(2).position(|w| w == b"\r\n") {
            break at + 2;
        }
        if n >= V1_MAX {
            return Err(invalid("PROXY v1 header longer than 107 bytes"));
        }
        if n < need {
            return Err(invalid("PROXY v1 header cut short"));
        }
        need = n + 1;
    };
    tcp.read_exact(&mut buf[..len]).await?;
    parse_v1(&buf[..len - 2])
}

/// Parses a v1 line without its `\r\n`: `PROXY TCP4 <src> <dst> <sport>
/// <dport>`, `PROXY TCP6 …` or `PROXY UNKNOWN[ …]`.
fn parse_v1(line: &[u8]) -> io::Result<Option<SocketAddr>> {
    let line = std::str::from_utf8(line).map_err(|_| invalid("PROXY v1 header is not text"))?;
    let mut parts = line.split(' ');
    parts.next(); // "PROXY"
    let family = parts
        .next()
        .ok_or(invalid("PROXY v1 header has no protocol"))?;
    let v6 = match family {
        "TCP4" => false,
        "TCP6" => true,
        // The sender does not know (or will not say) the addresses.
        "UNKNOWN" => return Ok(None),
        _ => return Err(invalid("PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN")),
    };
    let (Some(src), Some(dst), Some(sport), Some(dport), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(invalid(
            "PROXY v1 header does not have two addresses and two ports",
        ));
    };
    let ip = |s: &str| -> io::Result<IpAddr> {
        let ip: IpAddr = s
            .parse()
            .map_err(|_| invalid("PROXY v1 address is not an IP"))?;
        if ip.is_ipv6() != v6 {
            return Err(invalid("PROXY v1 address does not match its protocol"));
        }
        Ok(ip)
    };
    let port = |s: &str| -> io::Result<u16> {
        // Decimal digits only: no sign, no leading zero.
        if s.is_empty()
            || !s.bytes().all(|b| b.is_ascii_digit())
            || (s.len() > 1 && s.starts_with('0'))
        {
            return Err(invalid("PROXY v1 port is not a number between 0 and 65535"));
        }
        s.parse()
            .map_err(|_| invalid("PROXY v1 port is not a number between 0 and 65535"))
    };
    let src = ip(src)?;
    ip(dst)?;
    let sport = port(sport)?;
    port(dport)?;
    Ok(Some(SocketAddr::new(src, sport)))
}

/// Reads a v2 header, whose 16-byte fixed part is already seen.
async fn read_v2(tcp: &mut TcpStream) -> io::Result<Option<SocketAddr>> {
    let mut fixed = [0u8; V2_FIXED];
    tcp.read_exact(&mut fixed).await?;
    let (ver_cmd, fam, len) = (
        fixed[12],
        fixed[13],
        u16::from_be_bytes([fixed[14], fixed[15]]),
    );
    if ver_cmd >> 4 != 2 {
        return Err(invalid("PROXY v2 header has an unknown version"));
    }
    let local = match ver_cmd & 0x0f {
        0 => true,
        1 => false,
        _ => return Err(invalid("PROXY v2 header has an unknown command")),
    };
    let (family, transport) = (fam >> 4, fam & 0x0f);
    if family > 3 || transport > 2 {
        return Err(invalid("PROXY v2 header has an unknown address family"));
    }
    // Addresses: IPv4 4+4+2+2, IPv6 16+16+2+2, Unix 108+108.
    let addr_len = match family {
        1 => 12,
        2 => 36,
        3 => 216,
        _ => 0,
    };
    let len = usize::from(len);
    if len < addr_len {
        return Err(invalid("PROXY v2 header too short for its addresses"));
    }
    let mut addrs = [0u8; 216];
    tcp.read_exact(&mut addrs[..addr_len]).await?;
    // TLVs (ALPN, authority, SSL, …) are read and dropped.
    let mut rest = len - addr_len;
    let mut sink = [0u8; 256];
    while rest > 0 {
        let n = rest.min(sink.len());
        tcp.read_exact(&mut sink[..n]).await?;
        rest -= n;
    }
    if local || transport != 1 {
        // LOCAL: the balancer's own connection (a health check); UDP and
        // unspecified transports carry no client of a TCP connection.
        return Ok(None);
    }
    Ok(match family {
        1 => {
            let ip = Ipv4Addr::new(addrs[0], addrs[1], addrs[2], addrs[3]);
            Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([addrs[8], addrs[9]]),
            ))
        }
        2 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(&addrs[..16]);
            let port = u16::from_be_bytes([addrs[32], addrs[33]]);
            Some(SocketAddr::new(Ipv6Addr::from(b).into(), port))
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_lines() {
        let a = |s: &str| parse_v1(s.as_bytes());
        assert_eq!(
            a("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443").unwrap(),
            Some("192.0.2.1:56324".parse().unwrap())
        );
        assert_eq!(
            a("PROXY TCP6 2001:db8::1 2001:db8::2 4000 80").unwrap(),
            Some("[2001:db8::1]:4000".parse().unwrap())
        );
        assert_eq!(a("PROXY UNKNOWN").unwrap(), None);
        assert_eq!(a("PROXY UNKNOWN ffff::1 ffff::2 1 2").unwrap(), None);
        for bad in [
            "PROXY TCP4 2001:db8::1 192.0.2.1 1 2",
            "PROXY TCP4 192.0.2.1 198.51.100.2 1",
            "PROXY TCP4 192.0.2.1 198.51.100.2 65536 80",
            "PROXY TCP4 192.0.2.1 198.51.100.2 -1 80",
            "PROXY TCP4 192.0.2.1 198.51.100.2 01 80",
            "PROXY UDP4 192.0.2.1 198.51.100.2 1 80",
            "PROXY TCP4  192.0.2.1 198.51.100.2 1 80",
            "PROXY",
        ] {
            assert!(a(bad).is_err(), "{bad}");
        }
    }
}
