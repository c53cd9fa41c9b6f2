//! Binding entrypoint sockets: one `SO_REUSEPORT` socket per worker on the
//! same address, and raising the open-files limit at start.
//!
//! Start-up only; nothing here runs per request.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

fn bind_one(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(false)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(4096)?;
    Ok(sock.into())
}

/// Binds `count` sockets on `addr`, one per worker. With port 0 the first
/// socket picks the port and the others join it. Returns the sockets and
/// the bound address.
pub fn bind_reuseport(
    addr: SocketAddr,
    count: usize,
) -> io::Result<(Vec<std::net::TcpListener>, SocketAddr)> {
    let first = bind_one(addr)?;
    let bound = first.local_addr()?;
    let mut socks = vec![first];
    for _ in 1..count.max(1) {
        socks.push(bind_one(bound)?);
    }
    Ok((socks, bound))
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, so many concurrent
/// connections don't run out of descriptors. Returns the new soft limit.
#[allow(unsafe_code)]
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_binds_every_worker_to_the_same_port() {
        let (socks, bound) = bind_reuseport("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        assert_eq!(socks.len(), 3);
        assert_ne!(bound.port(), 0);
        for s in &socks {
            assert_eq!(s.local_addr().unwrap(), bound);
        }
    }

    #[test]
    fn nofile_limit_is_raised_to_the_hard_limit() {
        let soft = raise_nofile_limit().unwrap();
        assert!(soft >= 1024, "soft limit {soft}");
    }
}
