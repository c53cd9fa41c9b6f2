//! Sets of IP networks checked per connection (trusted forwarding-header
//! sources).
//!
//! Checked once per accepted connection, not per request.

use std::net::IpAddr;

use crate::config::IpNet;

/// A set of IP networks; membership is a linear scan (trusted lists are
/// short).
#[derive(Clone, Debug, Default)]
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

    /// Whether `ip` is in one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership() {
        let set = IpSet::new(["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()]);
        assert!(set.contains("10.1.2.3".parse().unwrap()));
        assert!(set.contains("::1".parse().unwrap()));
        assert!(!set.contains("11.0.0.1".parse().unwrap()));
        assert!(!IpSet::default().contains("10.0.0.1".parse().unwrap()));
    }
}
