//! Regular expressions with Go RE2 semantics, matched without locks.
//!
//! Traefik compiles rule regexes with Go's `regexp`, where `\d`, `\w`, `\s`
//! and `\b` are ASCII-only while everything else is Unicode-aware. The Rust
//! `regex` syntax makes those classes Unicode-aware, so patterns are parsed
//! once and those escapes are rewritten to their ASCII definitions before
//! compiling. Rust-only syntax that Go rejects (`(?x)`, `(?u)`, `(?R)`,
//! `\b{start}`, `\<`, ...) is rejected here too.
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

use regex_automata::meta::{self, Cache};
use regex_automata::{Input, util::syntax};
use regex_syntax::ast::{self, AssertionKind, Ast, ClassPerlKind, Flag, visit};

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
}

impl fmt::Debug for GoRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("GoRegex").field(&self.inner.source).finish()
    }
}

impl GoRegex {
    /// Compiles `pattern` with Go semantics; the error text is user-facing.
    pub(crate) fn new(pattern: &str) -> Result<Self, String> {
        let translated = translate(pattern)?;
        let re = meta::Regex::builder()
            .syntax(syntax::Config::new().unicode(true).utf8(true))
            .build(&translated)
            .map_err(|e| match e.syntax_error() {
                Some(s) => s.to_string(),
                None => e.to_string(),
            })?;
        Ok(GoRegex {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                source: pattern.into(),
                re,
            }),
        })
    }

    /// Whether the regex matches anywhere in `haystack` (Go `MatchString`).
    pub(crate) fn is_match(&self, haystack: &[u8]) -> bool {
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

// === Go syntax translation ===

/// Rewrites the Go-only-ASCII escapes of `pattern` and rejects syntax Go's
/// `regexp/syntax` does not accept.
fn translate(pattern: &str) -> Result<String, String> {
    let parsed = ast::parse::ParserBuilder::new()
        .nest_limit(1000)
        .build()
        .parse(pattern)
        .map_err(|e| e.to_string())?;
    let edits = visit(&parsed, Collect::default())?;
    let mut out = String::with_capacity(pattern.len() + 16 * edits.len());
    let mut last = 0;
    for (start, end, replacement) in edits {
        out.push_str(&pattern[last..start]);
        out.push_str(replacement);
        last = end;
    }
    out.push_str(&pattern[last..]);
    Ok(out)
}

#[derive(Default)]
struct Collect {
    edits: Vec<(usize, usize, &'static str)>,
}

fn perl_outside(kind: &ClassPerlKind, negated: bool) -> &'static str {
    // Go: \d = [0-9], \s = [\t\n\f\r ], \w = [0-9A-Za-z_].
    match (kind, negated) {
        (ClassPerlKind::Digit, false) => "[0-9]",
        (ClassPerlKind::Digit, true) => "[^0-9]",
        (ClassPerlKind::Space, false) => r"[\t\n\f\r ]",
        (ClassPerlKind::Space, true) => r"[^\t\n\f\r ]",
        (ClassPerlKind::Word, false) => "[0-9A-Za-z_]",
        (ClassPerlKind::Word, true) => "[^0-9A-Za-z_]",
    }
}

fn perl_inside(kind: &ClassPerlKind, negated: bool) -> &'static str {
    match (kind, negated) {
        (ClassPerlKind::Digit, false) => "0-9",
        (ClassPerlKind::Space, false) => r"\t\n\f\r ",
        (ClassPerlKind::Word, false) => "0-9A-Za-z_",
        // A negated class inside a set becomes a nested class.
        (k, true) => perl_outside(k, true),
    }
}

impl ast::Visitor for Collect {
    type Output = Vec<(usize, usize, &'static str)>;
    type Err = String;

    fn finish(mut self) -> Result<Self::Output, String> {
        self.edits.sort_by_key(|e| e.0);
        Ok(self.edits)
    }

    fn visit_pre(&mut self, node: &Ast) -> Result<(), String> {
        match node {
            Ast::ClassPerl(c) => {
                self.edits.push((
                    c.span.start.offset,
                    c.span.end.offset,
                    perl_outside(&c.kind, c.negated),
                ));
            }
            Ast::Assertion(a) => match a.kind {
                AssertionKind::WordBoundary => {
                    self.edits
                        .push((a.span.start.offset, a.span.end.offset, r"(?-u:\b)"));
                }
                AssertionKind::NotWordBoundary => {
                    self.edits
                        .push((a.span.start.offset, a.span.end.offset, r"(?-u:\B)"));
                }
                AssertionKind::StartLine
                | AssertionKind::EndLine
                | AssertionKind::StartText
                | AssertionKind::EndText => {}
                _ => return Err(unsupported(a.span.start.offset, "this word boundary")),
            },
            Ast::Flags(f) => check_flags(&f.flags)?,
            Ast::Group(g) => {
                if let ast::GroupKind::NonCapturing(flags) = &g.kind {
                    check_flags(flags)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn visit_class_set_item_pre(&mut self, item: &ast::ClassSetItem) -> Result<(), String> {
        if let ast::ClassSetItem::Perl(c) = item {
            self.edits.push((
                c.span.start.offset,
                c.span.end.offset,
                perl_inside(&c.kind, c.negated),
            ));
        }
        Ok(())
    }

    fn visit_class_set_binary_op_pre(&mut self, op: &ast::ClassSetBinaryOp) -> Result<(), String> {
        Err(unsupported(op.span.start.offset, "class set operations"))
    }
}

fn check_flags(flags: &ast::Flags) -> Result<(), String> {
    for item in &flags.items {
        if let ast::FlagsItemKind::Flag(flag) = &item.kind {
            match flag {
                Flag::CaseInsensitive
                | Flag::MultiLine
                | Flag::DotMatchesNewLine
                | Flag::SwapGreed => {}
                Flag::Unicode | Flag::CRLF | Flag::IgnoreWhitespace => {
                    return Err(unsupported(item.span.start.offset, "this flag"));
                }
            }
        }
    }
    Ok(())
}

fn unsupported(offset: usize, what: &str) -> String {
    format!("{what} (at byte {offset}) is not supported by Go's RE2 syntax")
}
