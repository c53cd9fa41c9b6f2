//! Server selection within a service.
//!
//! Runs per request: an atomic counter, no lock, no allocation.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Round robin over a fixed number of servers.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl RoundRobin {
    /// A balancer starting at the first server.
    pub fn new() -> Self {
        Self::default()
    }

    /// The index of the next server among `len`, or `None` when `len` is 0.
    #[inline]
    pub fn pick(&self, len: usize) -> Option<usize> {
        match len {
            0 => None,
            1 => Some(0),
            n => Some(self.next.fetch_add(1, Ordering::Relaxed) % n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_through_all_servers_in_order() {
        let rr = RoundRobin::new();
        let picks: Vec<_> = (0..7).map(|_| rr.pick(3).unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(rr.pick(0), None);
        assert_eq!(rr.pick(1), Some(0));
    }
}
