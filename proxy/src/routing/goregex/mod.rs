//! Regular expressions with Go's semantics, matched without locks.
//!
//! Traefik compiles rule regexes with Go's `regexp`. The pattern is parsed
//! here with Go's grammar (`parse`, with Go's class tables in `tables`) into
//! a regex-syntax `Hir`, which the regex crate compiles: what Go accepts
//! compiles to the same language, what Go rejects fails with Go's message.
//! Matching also reads text as Go does: a byte that is not valid UTF-8 is one
//! U+FFFD (Go's `RuneError`), so `.` matches it.
//!
//! Matching runs on every request on every worker thread: it must not take a
//! lock or allocate once warm. Each compiled regex has a process-unique id and
//! each thread keeps its own `meta::Cache` per id in a `thread_local!` map, so
//! workers never share mutable state. Entries of regexes that were dropped (an
//! old configuration) are purged whenever a new entry is inserted.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use bumpalo::Bump;
use bumpalo::collections::Vec as BumpVec;
use regex_automata::Input;
use regex_automata::meta::{self, Cache};
use regex_syntax::hir::{Class, Hir, HirKind};

mod lex;
mod parse;
mod tables;

/// Heap a compiled regex may use; Go's own limit is about 3.3 million
/// instructions (128 MiB), this one is in bytes of automaton.
const SIZE_LIMIT: usize = 64 << 20;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A compiled regex following Go's `regexp` semantics (unanchored search).
#[derive(Clone)]
pub(crate) struct GoRegex {
    inner: Arc<Inner>,
}

struct Inner {
    id: u64,
    source: Box<str>,
    re: meta::Regex,
    /// Text every match starts the haystack with (`^literal...`).
    prefix: Option<Box<str>>,
}

impl fmt::Debug for GoRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("GoRegex").field(&self.inner.source).finish()
    }
}

impl GoRegex {
    /// Compiles `pattern` with Go semantics; the error text is user-facing
    /// (Go's `error parsing regexp: ...` wording).
    pub(crate) fn new(pattern: &str) -> Result<Self, String> {
        let hir = parse::parse(pattern).map_err(|e| format!("error parsing regexp: {e}"))?;
        Self::build(pattern, &hir)
    }

    /// Like [`GoRegex::new`], keeping the capture groups for
    /// [`GoRegex::replace_all`] (matching alone does not need them).
    pub(crate) fn with_captures(pattern: &str) -> Result<Self, String> {
        let hir = parse::parse_with_captures(pattern)
            .map_err(|e| format!("error parsing regexp: {e}"))?;
        Self::build(pattern, &hir)
    }

    fn build(pattern: &str, hir: &Hir) -> Result<Self, String> {
        let re = meta::Regex::builder()
            .configure(meta::Config::new().nfa_size_limit(Some(SIZE_LIMIT)))
            .build_from_hir(hir)
            .map_err(|e| {
                format!(
                    "the expression compiles to more than {} MiB here (Go's regexp may accept it): {e}",
                    SIZE_LIMIT >> 20
                )
            })?;
        Ok(GoRegex {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                source: pattern.into(),
                re,
                prefix: anchored_prefix(hir),
            }),
        })
    }

    /// The literal text a match must start the haystack with, when the
    /// pattern begins with `^` (start of text, not `(?m)`) and a literal:
    /// `^/users/[0-9]+$` gives `/users/`. For the router index.
    pub(crate) fn literal_prefix(&self) -> Option<&str> {
        self.inner.prefix.as_deref()
    }

    /// Whether the regex matches anywhere in `haystack` (Go `MatchString`).
    pub(crate) fn is_match_str(&self, haystack: &str) -> bool {
        self.search(haystack.as_bytes())
    }

    /// Like [`GoRegex::is_match_str`] for bytes that may not be UTF-8: each
    /// invalid byte reads as U+FFFD, as Go decodes it (the rewritten text, a
    /// rare case, goes in the request arena).
    pub(crate) fn is_match(&self, haystack: &[u8], arena: &Bump) -> bool {
        if std::str::from_utf8(haystack).is_ok() {
            return self.search(haystack);
        }
        let mut text = BumpVec::with_capacity_in(haystack.len() + 8, arena);
        for chunk in haystack.utf8_chunks() {
            text.extend_from_slice(chunk.valid().as_bytes());
            for _ in chunk.invalid() {
                text.extend_from_slice("\u{FFFD}".as_bytes());
            }
        }
        self.search(&text)
    }

    fn search(&self, haystack: &[u8]) -> bool {
        let input = Input::new(haystack).earliest(true);
        let inner = &*self.inner;
        let run = |cache: &mut Cache| inner.re.search_half_with(cache, &input).is_some();
        let res = CACHES.try_with(|caches| match caches.try_borrow_mut() {
            Ok(mut caches) => Some(caches.with_cache(&self.inner, run)),
            // Re-entrancy cannot happen (matching calls no user code); if it
            // ever did, fall through to a one-off cache rather than panic.
            Err(_) => None,
        });
        match res {
            Ok(Some(matched)) => matched,
            // Thread-local storage being torn down, or re-entrant borrow.
            _ => run(&mut inner.re.create_cache()),
        }
    }
}

impl GoRegex {
    /// The pattern as written.
    pub(crate) fn source(&self) -> &str {
        &self.inner.source
    }

    /// The leftmost-first match in `haystack` (Go `FindStringIndex`), as a
    /// byte range.
    pub(crate) fn find(&self, haystack: &str) -> Option<std::ops::Range<usize>> {
        self.inner.re.find(haystack).map(|m| m.range())
    }

    /// Every non-overlapping match of `haystack` replaced by `template`
    /// expanded as Go's `ReplaceAllString` expands it (`$1`, `${1}`,
    /// `$name`, `${name}`, `$$`; an unknown group is empty, a malformed
    /// `$` is kept as text). Allocates the result: for middlewares whose
    /// own work is building a new URL or path.
    pub(crate) fn replace_all(&self, haystack: &str, template: &str) -> String {
        let re = &self.inner.re;
        let mut out = String::with_capacity(haystack.len() + template.len());
        let mut last = 0;
        for caps in re.captures_iter(haystack) {
            let Some(m) = caps.get_match() else {
                continue;
            };
            out.push_str(&haystack[last..m.start()]);
            expand(&mut out, template, haystack, &caps);
            last = m.end();
        }
        out.push_str(&haystack[last..]);
        out
    }
}

/// Appends `template` to `out` with Go's `$` expansion from `caps`.
fn expand(
    out: &mut String,
    template: &str,
    haystack: &str,
    caps: &regex_automata::util::captures::Captures,
) {
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let Some((name, after)) = group_ref(rest) else {
            // Malformed: the `$` is text.
            out.push('$');
            continue;
        };
        rest = after;
        let span = match group_number(name) {
            Some(n) => caps.get_group(n),
            None => caps.get_group_by_name(name),
        };
        if let Some(span) = span {
            out.push_str(&haystack[span.range()]);
        }
    }
    out.push_str(rest);
}

/// The group name after a `$` (`name` or `{name}`: letters, digits, `_`)
/// and the text after it; `None` when malformed (empty, unclosed brace).
fn group_ref(s: &str) -> Option<(&str, &str)> {
    let (brace, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let end = body
        .char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    if brace {
        let after = body[end..].strip_prefix('}')?;
        return Some((name, after));
    }
    Some((name, &body[end..]))
}

/// A group reference that is a number, as Go reads it (no leading zero,
/// below 10^8); anything else is a name.
fn group_number(name: &str) -> Option<usize> {
    if name.len() > 1 && name.starts_with('0') {
        return None;
    }
    if !name.bytes().all(|b| b.is_ascii_digit()) || name.len() > 8 {
        return None;
    }
    name.parse().ok()
}

fn anchored_prefix(hir: &Hir) -> Option<Box<str>> {
    let HirKind::Concat(subs) = hir.kind() else {
        return None;
    };
    let [first, second, ..] = subs.as_slice() else {
        return None;
    };
    if !matches!(first.kind(), HirKind::Look(regex_syntax::hir::Look::Start)) {
        return None;
    }
    let HirKind::Literal(lit) = second.kind() else {
        return None;
    };
    std::str::from_utf8(&lit.0).ok().map(Into::into)
}

/// Whether a match of the Go `pattern` could contain `c` (`true` when the
/// pattern does not parse): a conservative reading of its tree, for the
/// router index.
pub(crate) fn may_match_char(pattern: &str, c: char) -> bool {
    match parse::parse(pattern) {
        Ok(hir) => may_contain(&hir, c),
        Err(_) => true,
    }
}

fn may_contain(hir: &Hir, c: char) -> bool {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => false,
        HirKind::Literal(lit) => {
            let mut buf = [0; 4];
            let enc = c.encode_utf8(&mut buf).as_bytes();
            lit.0.windows(enc.len()).any(|w| w == enc)
        }
        HirKind::Class(Class::Unicode(u)) => {
            u.ranges().iter().any(|r| r.start() <= c && c <= r.end())
        }
        HirKind::Class(Class::Bytes(_)) => true,
        HirKind::Repetition(r) => r.max != Some(0) && may_contain(&r.sub, c),
        HirKind::Capture(cap) => may_contain(&cap.sub, c),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().any(|h| may_contain(h, c)),
    }
}

// === per-thread caches ===

thread_local! {
    static CACHES: RefCell<ThreadCaches> = RefCell::new(ThreadCaches::default());
}

#[derive(Default)]
struct ThreadCaches {
    map: HashMap<u64, (Weak<Inner>, Cache), BuildHasherDefault<IdHasher>>,
}

impl ThreadCaches {
    fn with_cache<R>(&mut self, inner: &Arc<Inner>, f: impl FnOnce(&mut Cache) -> R) -> R {
        if !self.map.contains_key(&inner.id) {
            // Warm-up path only: forget caches of regexes that no longer exist.
            self.map.retain(|_, (weak, _)| weak.strong_count() > 0);
            self.map
                .insert(inner.id, (Arc::downgrade(inner), inner.re.create_cache()));
        }
        let (_, cache) = self
            .map
            .get_mut(&inner.id)
            .unwrap_or_else(|| unreachable!("inserted above"));
        f(cache)
    }
}

/// Ids are sequential integers: a multiplicative mix is enough.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}
