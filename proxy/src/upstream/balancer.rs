//! Server selection within a service: weighted round robin.
//!
//! The schedule is computed once when the configuration is compiled (smooth
//! weighted round robin, so heavier servers are interleaved rather than
//! picked in bursts); a request only bumps an atomic counter and indexes
//! the schedule. No lock, no allocation per request.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Largest schedule kept; weights are scaled down proportionally past it.
const MAX_SCHEDULE: u64 = 4096;

/// Weighted round robin over a fixed set of servers.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
    schedule: Box<[u32]>,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl RoundRobin {
    /// Plain round robin over `n` servers.
    pub fn new(n: usize) -> Self {
        Self::weighted(&vec![1; n])
    }

    /// Weighted round robin: server `i` gets `weights[i]` picks out of
    /// every `sum(weights)`; a weight of 0 takes the server out.
    pub fn weighted(weights: &[u32]) -> Self {
        let g = weights
            .iter()
            .filter(|w| **w > 0)
            .fold(0u64, |g, &w| gcd(g, u64::from(w)));
        let mut w: Vec<u64> = weights
            .iter()
            .map(|&x| if g == 0 { 0 } else { u64::from(x) / g })
            .collect();
        let total: u64 = w.iter().sum();
        if total > MAX_SCHEDULE {
            for x in &mut w {
                if *x > 0 {
                    *x = (*x * MAX_SCHEDULE / total).max(1);
                }
            }
        }
        let total: u64 = w.iter().sum();
        let mut current = vec![0i64; w.len()];
        let mut schedule = Vec::with_capacity(total as usize);
        for _ in 0..total {
            let mut best = 0;
            for i in 0..w.len() {
                current[i] += w[i] as i64;
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total as i64;
            schedule.push(best as u32);
        }
        Self {
            next: AtomicUsize::new(0),
            schedule: schedule.into_boxed_slice(),
        }
    }

    /// The index of the next server, or `None` when no server can be
    /// picked.
    #[inline]
    pub fn pick(&self) -> Option<usize> {
        match self.schedule.len() {
            0 => None,
            1 => Some(self.schedule[0] as usize),
            n => Some(self.schedule[self.next.fetch_add(1, Ordering::Relaxed) % n] as usize),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picks(rr: &RoundRobin, n: usize) -> Vec<usize> {
        (0..n).map(|_| rr.pick().unwrap()).collect()
    }

    #[test]
    fn cycles_through_all_servers_in_order() {
        assert_eq!(picks(&RoundRobin::new(3), 7), vec![0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(RoundRobin::new(0).pick(), None);
        assert_eq!(picks(&RoundRobin::new(1), 3), vec![0, 0, 0]);
    }

    #[test]
    fn weights_are_respected_and_interleaved() {
        let rr = RoundRobin::weighted(&[3, 1]);
        assert_eq!(picks(&rr, 8), vec![0, 0, 1, 0, 0, 0, 1, 0]);
        let rr = RoundRobin::weighted(&[5, 0, 5]);
        assert_eq!(picks(&rr, 4), vec![0, 2, 0, 2]);
        assert_eq!(RoundRobin::weighted(&[0, 0]).pick(), None);
        let rr = RoundRobin::weighted(&[100_000, 1]);
        let n = picks(&rr, 4097).iter().filter(|&&i| i == 1).count();
        assert!((1..=2).contains(&n), "{n}");
    }
}
