//! The routers: [`LinearRouter`], the reference (sorted list, first full
//! match wins), and [`Router`], an index that returns the same entry.
//!
//! Both sort entries once into the total order: priority descending, then
//! name ascending (Traefik leaves equal priorities unordered; the name makes
//! the choice deterministic). An entry's position in that order is its rank.
//! [`Router`] narrows the candidates with host and path indexes, then
//! evaluates the full rule of each candidate in rank order; see
//! `routing/DESIGN.md` for why this equals the linear scan.
//!
//! `route` runs per request: no lock, no heap allocation (candidate lists
//! are merged with scratch space from the request arena).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use bumpalo::collections::Vec as BumpVec;

use super::Rule;
use super::matcher::{Expr, MatchCtx, Matcher, wildcard_suffix};
use crate::request::ProxyRequest;

/// One router of the configuration: its rule, priority and payload.
#[derive(Clone, Debug)]
pub struct RouteEntry<T> {
    /// The router's name; breaks priority ties (ascending).
    pub name: String,
    /// The compiled rule.
    pub rule: Rule,
    /// Higher wins; negative values are valid (fallbacks below every
    /// default). Use [`Rule::default_priority`] when none is configured.
    pub priority: i64,
    /// What routing returns (e.g. the compiled middleware chain + service).
    pub value: T,
}

/// Sorts into the routing order; stable, so duplicate (priority, name)
/// pairs keep their input order.
fn sort_entries<T>(entries: &mut [RouteEntry<T>]) {
    entries.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| a.name.cmp(&b.name))
    });
}

// === LinearRouter ===

/// The reference router: a sorted list scanned in order.
#[derive(Clone, Debug)]
pub struct LinearRouter<T> {
    entries: Vec<RouteEntry<T>>,
}

impl<T> LinearRouter<T> {
    /// Sorts the entries into routing order.
    pub fn new(mut entries: Vec<RouteEntry<T>>) -> Self {
        sort_entries(&mut entries);
        LinearRouter { entries }
    }

    /// The value of the first entry (in routing order) whose rule matches.
    pub fn route(&self, req: &ProxyRequest<'_>) -> Option<&T> {
        let ctx = MatchCtx::new(req);
        self.entries
            .iter()
            .find(|e| e.rule.expr().eval(&ctx))
            .map(|e| &e.value)
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

// === Router ===

/// The indexed router: same answers as [`LinearRouter`], found through host
/// and path indexes. Immutable once built; `Send + Sync` when `T` is.
#[derive(Debug)]
pub struct Router<T> {
    /// In routing order: index = rank.
    entries: Vec<RouteEntry<T>>,
    /// Rules requiring one of a set of exact hosts, keyed by the lower-case
    /// host without trailing dots.
    exact_hosts: HashMap<Box<str>, Bucket, FastBuild>,
    /// Rules requiring a `*.suffix` host, keyed by the suffix from its first
    /// dot (included) without trailing dots.
    wildcard_hosts: HashMap<Box<str>, Bucket, FastBuild>,
    /// Rules that do not require a host.
    any_host: Bucket,
}

impl<T> Router<T> {
    /// Sorts the entries and builds the index.
    pub fn new(mut entries: Vec<RouteEntry<T>>) -> Self {
        sort_entries(&mut entries);
        let mut exact_hosts: HashMap<Box<str>, Bucket, FastBuild> = HashMap::default();
        let mut wildcard_hosts: HashMap<Box<str>, Bucket, FastBuild> = HashMap::default();
        let mut any_host = Bucket::default();
        for (rank, entry) in entries.iter().enumerate() {
            let rank = u32::try_from(rank).unwrap_or(u32::MAX);
            let expr = entry.rule.expr();
            let paths = path_keys(expr, true);
            match host_keys(expr, true) {
                Some(hosts) => {
                    for key in hosts {
                        let bucket = match key {
                            HostKey::Exact(h) => exact_hosts.entry(h).or_default(),
                            HostKey::Suffix(s) => wildcard_hosts.entry(s).or_default(),
                        };
                        bucket.insert(rank, paths.as_deref());
                    }
                }
                None => any_host.insert(rank, paths.as_deref()),
            }
        }
        Router {
            entries,
            exact_hosts,
            wildcard_hosts,
            any_host,
        }
    }

    /// The value of the first entry (in routing order) whose rule matches:
    /// the same entry [`LinearRouter::route`] returns.
    pub fn route(&self, req: &ProxyRequest<'_>) -> Option<&T> {
        let ctx = MatchCtx::new(req);
        let mut lists: BumpVec<'_, &[u32]> = BumpVec::with_capacity_in(8, req.arena);
        let path = req.path.as_bytes();
        let has_host_index = !(self.exact_hosts.is_empty() && self.wildcard_hosts.is_empty());
        if has_host_index && !req.host.is_empty() {
            let host = ctx.host_folded();
            if !host.is_empty() {
                if let Some(b) = self.exact_hosts.get(host.trim_end_matches('.')) {
                    b.collect(path, &mut lists);
                }
                if !self.wildcard_hosts.is_empty() {
                    let suffix = wildcard_suffix(host).trim_end_matches('.');
                    if let Some(b) = self.wildcard_hosts.get(suffix) {
                        b.collect(path, &mut lists);
                    }
                }
            }
        }
        self.any_host.collect(path, &mut lists);

        // k-way merge of ascending rank lists, evaluated lazily in rank
        // order: the first full match is the linear scan's answer.
        match lists.len() {
            0 => None,
            1 => lists[0]
                .iter()
                .map(|&r| &self.entries[r as usize])
                .find(|e| e.rule.expr().eval(&ctx))
                .map(|e| &e.value),
            _ => {
                let mut heads: BumpVec<'_, usize> =
                    BumpVec::with_capacity_in(lists.len(), req.arena);
                heads.resize(lists.len(), 0);
                let mut last = u32::MAX;
                loop {
                    let mut best: Option<(usize, u32)> = None;
                    for (i, list) in lists.iter().enumerate() {
                        if let Some(&r) = list.get(heads[i])
                            && best.is_none_or(|(_, b)| r < b)
                        {
                            best = Some((i, r));
                        }
                    }
                    let (i, rank) = best?;
                    heads[i] += 1;
                    if rank == last {
                        continue; // the same entry reached through two keys
                    }
                    last = rank;
                    let entry = &self.entries[rank as usize];
                    if entry.rule.expr().eval(&ctx) {
                        return Some(&entry.value);
                    }
                }
            }
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry in routing order (priority descending, then name): the
    /// order in which [`Router::route`] takes the first match (`explain`
    /// walks it to say why the higher ones did not).
    pub fn entries(&self) -> &[RouteEntry<T>] {
        &self.entries
    }

    /// (exact host keys, wildcard suffix keys, rules in `any_host.rest`):
    /// how much of a rule set the index could key.
    #[cfg(test)]
    pub(crate) fn shape(&self) -> (Vec<&str>, Vec<&str>, usize) {
        let mut exact: Vec<&str> = self.exact_hosts.keys().map(|k| &**k).collect();
        let mut wild: Vec<&str> = self.wildcard_hosts.keys().map(|k| &**k).collect();
        exact.sort_unstable();
        wild.sort_unstable();
        (exact, wild, self.any_host.rest.len())
    }
}

// === rule analysis ===

enum HostKey {
    Exact(Box<str>),
    Suffix(Box<str>),
}

#[derive(Clone)]
enum PathKey {
    Exact(Box<str>),
    Prefix(Box<str>),
}

/// Hosts one of which every request matching `e` (taken with `positive`
/// polarity) must carry; `None` when the rule can match without a host rule
/// being satisfied (no `Host`, a negated one, `||` with a host-free branch,
/// `Host(`*`)`).
///
/// v2 matchers give keys too: `Host` its exact host, a `HostRegexp` without
/// variables its text (lower-case, trimmed, as the request side is
/// canonicalised), and `{sub:re}.rest` with a `re` that cannot match a `.`
/// the wildcard suffix `.rest`.
fn host_keys(e: &Expr, positive: bool) -> Option<Vec<HostKey>> {
    analyse(e, positive, &|m| match m {
        Matcher::Host(h) => Some(vec![match h.strip_prefix('*') {
            Some(suffix) => HostKey::Suffix(suffix.trim_end_matches('.').into()),
            None => HostKey::Exact(h.trim_end_matches('.').into()),
        }]),
        Matcher::HostV2(h) => Some(vec![HostKey::Exact(h.trim_end_matches('.').into())]),
        // A bracketed IPv6 literal is keyed without its brackets, as the
        // request's host is (the matcher then tells `[::1]` from `[::1]:80`).
        Matcher::HostFold(lit) => {
            let lit = lit.trim();
            let lit = lit
                .strip_prefix('[')
                .and_then(|l| l.strip_suffix(']'))
                .unwrap_or(lit);
            Some(vec![HostKey::Exact(
                lit.to_ascii_lowercase().trim_end_matches('.').into(),
            )])
        }
        Matcher::HostTemplate {
            suffix: Some(s), ..
        } => Some(vec![HostKey::Suffix(s.clone())]),
        _ => None,
    })
}

/// Like [`host_keys`], for `Path` and `PathPrefix`; a `PathRegexp` or v2
/// path template anchored on a literal (`^/users/...`) requires that literal
/// as a prefix.
fn path_keys(e: &Expr, positive: bool) -> Option<Vec<PathKey>> {
    analyse(e, positive, &|m| match m {
        Matcher::Path(p) => Some(vec![PathKey::Exact(p.clone())]),
        Matcher::PathPrefix(p) => Some(vec![PathKey::Prefix(p.clone())]),
        Matcher::PathRegexp(re) | Matcher::PathTemplate(re) => {
            re.literal_prefix().map(|p| vec![PathKey::Prefix(p.into())])
        }
        _ => None,
    })
}

/// A set of keys that every match must satisfy one of, pushed through
/// `!` by De Morgan: a conjunction needs one constrained child (the smallest
/// set is kept), a disjunction needs all children constrained (union).
fn analyse<K>(
    e: &Expr,
    positive: bool,
    leaf: &dyn Fn(&Matcher) -> Option<Vec<K>>,
) -> Option<Vec<K>> {
    match e {
        Expr::Leaf(m) if positive => leaf(m),
        Expr::Leaf(_) => None,
        Expr::Not(inner) => analyse(inner, !positive, leaf),
        Expr::And(v) | Expr::Or(v) => {
            let conjunction = matches!(e, Expr::And(_)) == positive;
            if conjunction {
                v.iter()
                    .filter_map(|c| analyse(c, positive, leaf))
                    .min_by_key(Vec::len)
            } else {
                let mut all = Vec::new();
                for c in v {
                    all.extend(analyse(c, positive, leaf)?);
                }
                Some(all)
            }
        }
    }
}

// === buckets and the path trie ===

/// The entries of one host key (or of no host), by path.
#[derive(Debug, Default)]
struct Bucket {
    paths: Node,
    /// Entries without a path requirement, ascending rank.
    rest: Vec<u32>,
}

impl Bucket {
    fn insert(&mut self, rank: u32, paths: Option<&[PathKey]>) {
        match paths {
            Some(keys) => {
                for key in keys {
                    match key {
                        PathKey::Exact(p) => {
                            push_rank(&mut self.paths.insert(p.as_bytes()).exact, rank)
                        }
                        PathKey::Prefix(p) => {
                            push_rank(&mut self.paths.insert(p.as_bytes()).prefix, rank)
                        }
                    }
                }
            }
            None => push_rank(&mut self.rest, rank),
        }
    }

    /// Pushes every candidate list for `path`.
    fn collect<'a>(&'a self, path: &[u8], out: &mut BumpVec<'_, &'a [u32]>) {
        if !self.rest.is_empty() {
            out.push(&self.rest);
        }
        let mut node = &self.paths;
        let mut depth = 0;
        loop {
            if !node.prefix.is_empty() {
                out.push(&node.prefix);
            }
            if depth == path.len() {
                if !node.exact.is_empty() {
                    out.push(&node.exact);
                }
                return;
            }
            let next = path[depth];
            let Ok(i) = node.children.binary_search_by_key(&next, |c| c.label[0]) else {
                return;
            };
            let child = &node.children[i];
            if !path[depth..].starts_with(&child.label) {
                return;
            }
            depth += child.label.len();
            node = child;
        }
    }
}

/// Ranks are inserted in ascending order; a rule reaching the same list
/// twice (`Path(`/a`) || Path(`/a`)`) is kept once.
fn push_rank(list: &mut Vec<u32>, rank: u32) {
    if list.last() != Some(&rank) {
        list.push(rank);
    }
}

/// A radix-tree node over path bytes. The root has an empty label; every
/// other label is non-empty and children are sorted by their first byte.
#[derive(Debug, Default)]
struct Node {
    label: Box<[u8]>,
    /// `PathPrefix` entries whose prefix ends at this node.
    prefix: Vec<u32>,
    /// `Path` entries whose path ends at this node.
    exact: Vec<u32>,
    children: Vec<Node>,
}

impl Node {
    /// The node for `key` (relative to this node), created if missing.
    fn insert(&mut self, key: &[u8]) -> &mut Node {
        if key.is_empty() {
            return self;
        }
        let pos = self.children.binary_search_by_key(&key[0], |c| c.label[0]);
        let i = match pos {
            Ok(i) => i,
            Err(i) => {
                self.children.insert(
                    i,
                    Node {
                        label: key.into(),
                        ..Node::default()
                    },
                );
                return &mut self.children[i];
            }
        };
        let child = &mut self.children[i];
        let common = child
            .label
            .iter()
            .zip(key)
            .take_while(|(a, b)| a == b)
            .count();
        if common < child.label.len() {
            // Split the edge: the child keeps the tail under a new node.
            let tail = Node {
                label: child.label[common..].into(),
                prefix: std::mem::take(&mut child.prefix),
                exact: std::mem::take(&mut child.exact),
                children: std::mem::take(&mut child.children),
            };
            child.label = key[..common].into();
            child.children = vec![tail];
        }
        child.insert(&key[common..])
    }
}

// === hashing ===

type FastBuild = BuildHasherDefault<FastHasher>;

/// A small multiplicative hasher for host keys (FxHash-style). Keys come
/// from configuration, requests only look up, so flooding is not a concern.
#[derive(Default)]
struct FastHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
}
