//! Server selection within a service: the `loadBalancer.strategy`
//! options with Traefik 3.7's meaning.
//!
//! - `wrr` (default): smooth weighted round robin. The schedule is computed
//!   once when the configuration is compiled (heavier servers interleaved,
//!   not picked in bursts); each worker walks it with a cursor of its own
//!   (starting spread out over the schedule), drawing again past a server
//!   that is down, so the servers up share the load in the ratio of their
//!   weights on every worker, hence overall, and no pick writes a cache
//!   line another worker reads. Traefik takes a mutex on every pick.
//! - `p2c`: two servers drawn at random (weights ignored, as in Traefik),
//!   the one with fewer requests in flight wins.
//! - `hrw`: highest random weight of FNV-1a 64 over the client's socket IP
//!   and the server URL, `weight / -ln(hash / 2^64)`: one client IP, one
//!   server while the set of servers up does not change.
//! - `leasttime`: the lowest `avg TTFB (ms) * (1 + in flight) / weight`;
//!   ties go to the round robin.
//!
//! Runs per request: no lock, no allocation; shared atomics only where the
//! strategy needs global knowledge (the in-flight counts and times of
//! [`ServerState`]). The random draws of p2c come from a per-thread
//! generator.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::state::ServerState;

/// Largest schedule kept; weights are scaled down proportionally past it.
const MAX_SCHEDULE: u64 = 4096;

/// Weighted round robin over a fixed set of servers.
#[derive(Debug, Default)]
pub struct RoundRobin {
    /// Where each worker is in `schedule` ([`crate::rt::worker_index`]).
    cursors: Box<[Cursor]>,
    schedule: Box<[u32]>,
}

/// One worker's position in a schedule, on a cache line of its own. Only
/// its worker moves it (a load and a store, no read-modify-write); a
/// thread that is no worker shares worker 0's, and a lost step there only
/// repeats a server once.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Cursor(AtomicUsize);

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
            .map(|&x| u64::from(x).checked_div(g).unwrap_or(0))
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
        // Workers start spread over the schedule, so that they do not all
        // send their first requests to the same server.
        let workers = crate::rt::workers();
        let cursors = (0..workers)
            .map(|w| Cursor(AtomicUsize::new(w * schedule.len() / workers)))
            .collect();
        Self {
            cursors,
            schedule: schedule.into_boxed_slice(),
        }
    }

    /// This worker's next position in the schedule.
    #[inline]
    fn advance(&self) -> usize {
        let c = &self.cursors[crate::rt::worker_index() % self.cursors.len()].0;
        let at = c.load(Ordering::Relaxed);
        c.store(at.wrapping_add(1), Ordering::Relaxed);
        at
    }

    /// The index of the next server, or `None` when no server can be
    /// picked.
    #[inline]
    pub fn pick(&self) -> Option<usize> {
        match self.schedule.len() {
            0 => None,
            1 => Some(self.schedule[0] as usize),
            n => Some(self.schedule[self.advance() % n] as usize),
        }
    }

    /// The next server for which `ok` holds, drawing again (at most once
    /// around the schedule) past those for which it does not: the servers
    /// that pass keep the ratio of their weights.
    #[inline]
    pub fn pick_where(&self, ok: impl Fn(usize) -> bool) -> Option<usize> {
        let n = self.schedule.len();
        for _ in 0..n {
            let i = self.schedule[self.advance() % n] as usize;
            if ok(i) {
                return Some(i);
            }
        }
        None
    }
}

/// `loadBalancer.strategy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strategy {
    /// `wrr`: smooth weighted round robin.
    #[default]
    Wrr,
    /// `p2c`: power of two choices on requests in flight.
    P2c,
    /// `hrw`: highest random weight on the client IP.
    Hrw,
    /// `leasttime`: lowest time to first byte times load.
    LeastTime,
}

impl Strategy {
    /// The strategy named as in Traefik's configuration (case-sensitive,
    /// as Traefik compares it; empty is `wrr`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "" | "wrr" => Strategy::Wrr,
            "p2c" => Strategy::P2c,
            "hrw" => Strategy::Hrw,
            "leasttime" => Strategy::LeastTime,
            _ => return None,
        })
    }

    /// Whether picks read the servers' in-flight counts, so requests must
    /// keep them.
    pub fn counts_inflight(self) -> bool {
        matches!(self, Strategy::P2c | Strategy::LeastTime)
    }
}

/// One server as the balancer sees it.
#[derive(Debug)]
struct Member {
    state: Arc<ServerState>,
    weight: f64,
    /// The server URL: what hrw hashes with the client IP.
    name: Arc<str>,
}

/// The balancer of one `loadBalancer` service.
#[derive(Debug, Default)]
pub struct Balancer {
    strategy: Strategy,
    /// The weighted schedule (wrr, and leasttime's ties).
    rr: RoundRobin,
    members: Box<[Member]>,
}

impl Balancer {
    /// A balancer over servers given as (state, weight, URL); a weight of 0
    /// takes the server out, as Traefik ignores non-positive weights.
    pub fn new(
        strategy: Strategy,
        servers: impl IntoIterator<Item = (Arc<ServerState>, u32, Arc<str>)>,
    ) -> Self {
        let members: Vec<Member> = servers
            .into_iter()
            .map(|(state, weight, name)| Member {
                state,
                weight: f64::from(weight),
                name,
            })
            .collect();
        let weights: Vec<u32> = members.iter().map(|m| m.weight as u32).collect();
        Self {
            strategy,
            rr: RoundRobin::weighted(&weights),
            members: members.into_boxed_slice(),
        }
    }

    /// The strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The run-time state of server `i`.
    #[inline]
    pub fn state(&self, i: usize) -> &ServerState {
        &self.members[i].state
    }

    /// The shared handle on server `i`'s state (for the health checks).
    pub fn state_arc(&self, i: usize) -> &Arc<ServerState> {
        &self.members[i].state
    }

    /// Whether some server can be picked.
    pub fn any_up(&self) -> bool {
        self.members
            .iter()
            .any(|m| m.weight > 0.0 && m.state.is_up())
    }

    /// Whether server `i` may be picked: weighted and up.
    #[inline]
    pub fn usable(&self, i: usize) -> bool {
        let m = &self.members[i];
        m.weight > 0.0 && m.state.is_up()
    }

    /// The server for the next request from `client_ip` (the socket peer's
    /// address as text, which hrw hashes); `None` when none is up.
    #[inline]
    pub fn pick(&self, client_ip: &[u8]) -> Option<usize> {
        match self.strategy {
            Strategy::Wrr => self.rr.pick_where(|i| self.members[i].state.is_up()),
            Strategy::P2c => self.pick_p2c(),
            Strategy::Hrw => self.pick_hrw(client_ip),
            Strategy::LeastTime => self.pick_least_time(),
        }
    }

    fn pick_p2c(&self) -> Option<usize> {
        let n = self.members.len();
        if n == 0 {
            return None;
        }
        if n == 1 {
            return self.usable(0).then_some(0);
        }
        // Common case: both draws up.
        let (a, b) = two_draws(n);
        if self.usable(a) && self.usable(b) {
            return Some(self.fewer_inflight(a, b));
        }
        // Some are down: draw among those up, as Traefik does.
        let up = (0..n).filter(|&i| self.usable(i)).count();
        match up {
            0 => None,
            1 => (0..n).find(|&i| self.usable(i)),
            _ => {
                let (a, b) = two_draws(up);
                let nth = |k: usize| (0..n).filter(|&i| self.usable(i)).nth(k);
                Some(self.fewer_inflight(nth(a)?, nth(b)?))
            }
        }
    }

    /// Traefik keeps the first draw unless the second has strictly fewer.
    fn fewer_inflight(&self, a: usize, b: usize) -> usize {
        if self.members[b].state.inflight() < self.members[a].state.inflight() {
            b
        } else {
            a
        }
    }

    fn pick_hrw(&self, client_ip: &[u8]) -> Option<usize> {
        hrw_pick(client_ip, self.members.len(), |i| {
            self.usable(i)
                .then(|| (self.members[i].name.as_bytes(), self.members[i].weight))
        })
    }

    fn pick_least_time(&self) -> Option<usize> {
        let score = |i: usize| {
            let m = &self.members[i];
            m.state.avg_ttfb_ms() * (1.0 + f64::from(m.state.inflight())) / m.weight
        };
        let min = (0..self.members.len())
            .filter(|&i| self.usable(i))
            .map(score)
            .fold(f64::INFINITY, f64::min);
        if min == f64::INFINITY {
            return None;
        }
        self.rr
            .pick_where(|i| self.usable(i) && score(i) <= min)
            // The minimum moved under concurrent requests: take the first
            // server up rather than nothing.
            .or_else(|| (0..self.members.len()).find(|&i| self.usable(i)))
    }
}

/// Highest random weight over `n` members for `client_ip`: `member(i)`
/// gives the name it hashes and its weight, or `None` when it cannot be
/// picked. Traefik's score: `weight / -ln(fnv1a(ip + name) / 2^64)`.
#[inline]
pub fn hrw_pick<'a>(
    client_ip: &[u8],
    n: usize,
    member: impl Fn(usize) -> Option<(&'a [u8], f64)>,
) -> Option<usize> {
    let seed = fnv1a(FNV_OFFSET, client_ip);
    let mut best = None;
    let mut best_score = 0.0;
    for i in 0..n {
        let Some((name, weight)) = member(i) else {
            continue;
        };
        let h = fnv1a(seed, name);
        let score = (1.0 / -(h as f64 / TWO_POW_64).ln()) * weight;
        if score > best_score {
            best_score = score;
            best = Some(i);
        }
    }
    best
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

/// FNV-1a 64 continued from `h` over `bytes` (hashing a then b from the
/// offset equals hashing their concatenation, as Traefik hashes
/// `ip + url`).
#[inline]
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// Two indexes in `0..n` (n >= 2), distinct as Traefik makes them (the
/// second moves up by one when they collide). xorshift64* per thread.
fn two_draws(n: usize) -> (usize, usize) {
    RNG.with(|rng| {
        let mut x = rng.get();
        if x == 0 {
            // Seeded once per thread from its stack address and the clock.
            let here = &x as *const u64 as u64;
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64);
            x = (here ^ nanos.rotate_left(32)) | 1;
        }
        let mut next = || {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as usize
        };
        let a = next() % n;
        let mut b = next() % n;
        if a == b {
            b = (b + 1) % n;
        }
        rng.set(x);
        (a, b)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picks(rr: &RoundRobin, n: usize) -> Vec<usize> {
        (0..n).map(|_| rr.pick().unwrap()).collect()
    }

    #[test]
    fn each_worker_walks_the_schedule_on_its_own_and_keeps_the_ratio() {
        crate::rt::set_workers(3);
        let rr = std::sync::Arc::new(RoundRobin::weighted(&[3, 1]));
        let firsts: Vec<(usize, Vec<usize>)> = (0..3)
            .map(|w| {
                let rr = std::sync::Arc::clone(&rr);
                std::thread::spawn(move || {
                    crate::rt::set_worker_index(w);
                    let p = picks(&rr, 400);
                    (p[0], vec![p.iter().filter(|&&i| i == 0).count(), p.len()])
                })
            })
            .map(|t| t.join().unwrap())
            .collect();
        // 3:1 exactly on every worker, whatever the others do.
        for (_, counts) in &firsts {
            assert_eq!(counts, &vec![300, 400]);
        }
        // Spread starts: worker 0 at the schedule's start, worker 2 past
        // its middle (the schedule is [0, 0, 1, 0]).
        assert_eq!(firsts[0].0, 0);
        assert_eq!(firsts[2].0, 1);
        crate::rt::set_workers(1);
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

    fn balancer(strategy: Strategy, weights: &[u32]) -> Balancer {
        Balancer::new(
            strategy,
            weights.iter().enumerate().map(|(i, &w)| {
                (
                    Arc::new(ServerState::default()),
                    w,
                    Arc::from(format!("http://10.0.0.{i}:80")),
                )
            }),
        )
    }

    fn counts(b: &Balancer, n: usize, ip: &[u8]) -> Vec<usize> {
        let mut c = vec![0; b.members.len()];
        for _ in 0..n {
            c[b.pick(ip).unwrap()] += 1;
        }
        c
    }

    #[test]
    fn wrr_skips_servers_down_and_keeps_the_ratio_of_the_others() {
        let b = balancer(Strategy::Wrr, &[1, 2, 3]);
        assert_eq!(counts(&b, 600, b""), vec![100, 200, 300]);
        b.state(1).set_up(false);
        assert_eq!(counts(&b, 400, b""), vec![100, 0, 300]);
        b.state(0).set_up(false);
        b.state(2).set_up(false);
        assert_eq!(b.pick(b""), None);
        assert!(!b.any_up());
    }

    #[test]
    fn p2c_prefers_fewer_inflight_and_skips_servers_down() {
        let b = balancer(Strategy::P2c, &[1, 1]);
        let _busy = b.state(0).start();
        assert_eq!(
            counts(&b, 200, b""),
            vec![0, 200],
            "two servers: always both drawn"
        );
        let b = balancer(Strategy::P2c, &[1, 1, 1, 1]);
        let _busy = b.state(0).start();
        let c = counts(&b, 4000, b"");
        // Server 0 only wins when drawn against nobody less busy: never.
        assert_eq!(c[0], 0, "{c:?}");
        assert!(c[1..].iter().all(|&n| n > 1000), "{c:?}");
        b.state(1).set_up(false);
        b.state(2).set_up(false);
        assert_eq!(counts(&b, 100, b"")[3], 100);
        b.state(3).set_up(false);
        assert_eq!(counts(&b, 10, b"")[0], 10, "busy but the only one up");
    }

    #[test]
    fn hrw_maps_one_ip_to_one_server_and_spreads_ips() {
        let b = balancer(Strategy::Hrw, &[1, 1, 1]);
        let first = b.pick(b"192.0.2.7").unwrap();
        assert!((0..50).all(|_| b.pick(b"192.0.2.7") == Some(first)));
        let mut seen = [0; 3];
        for i in 0..300 {
            seen[b
                .pick(format!("10.1.{}.{}", i / 250, i % 250).as_bytes())
                .unwrap()] += 1;
        }
        assert!(seen.iter().all(|&n| n > 60), "{seen:?}");
        // Its server down, the IP moves; back up, it comes back.
        b.state(first).set_up(false);
        let moved = b.pick(b"192.0.2.7").unwrap();
        assert_ne!(moved, first);
        b.state(first).set_up(true);
        assert_eq!(b.pick(b"192.0.2.7"), Some(first));
        // Traefik's FNV-1a 64 of the concatenation.
        assert_eq!(
            fnv1a(fnv1a(FNV_OFFSET, b"a"), b"b"),
            fnv1a(FNV_OFFSET, b"ab")
        );
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn leasttime_prefers_the_fastest_and_round_robins_ties() {
        let b = balancer(Strategy::LeastTime, &[1, 1]);
        assert_eq!(counts(&b, 100, b""), vec![50, 50], "no samples: a tie");
        b.state(0).record_ttfb(std::time::Duration::from_millis(50));
        b.state(1).record_ttfb(std::time::Duration::from_millis(5));
        assert_eq!(counts(&b, 100, b""), vec![0, 100]);
        // Weight divides the score: 50 / 20 < 5 / 1.
        let b = balancer(Strategy::LeastTime, &[20, 1]);
        b.state(0).record_ttfb(std::time::Duration::from_millis(50));
        b.state(1).record_ttfb(std::time::Duration::from_millis(5));
        assert_eq!(counts(&b, 10, b""), vec![10, 0]);
        b.state(0).set_up(false);
        assert_eq!(counts(&b, 10, b""), vec![0, 10]);
    }

    #[test]
    fn strategies_are_named_as_in_traefik() {
        assert_eq!(Strategy::parse(""), Some(Strategy::Wrr));
        assert_eq!(Strategy::parse("wrr"), Some(Strategy::Wrr));
        assert_eq!(Strategy::parse("p2c"), Some(Strategy::P2c));
        assert_eq!(Strategy::parse("hrw"), Some(Strategy::Hrw));
        assert_eq!(Strategy::parse("leasttime"), Some(Strategy::LeastTime));
        assert_eq!(Strategy::parse("WRR"), None);
    }
}
