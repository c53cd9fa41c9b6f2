//! Go's `regexp/syntax` grammar, with the flags `regexp.Compile` uses (Perl:
//! `ClassNL | OneLine | PerlX | UnicodeGroups`), parsed into a regex-syntax
//! [`Hir`]. The regex crate then runs exactly the language Go would, instead
//! of what the same text means in Rust syntax.
//!
//! What this reproduces (each checked against Traefik 3.7 in the tests):
//! a `{` that does not start `{n}`, `{n,}` or `{n,m}` (no leading zeros, no
//! spaces) is a literal; counts above 1000, and nested counts whose product
//! exceeds 1000, are errors; `\Q...\E` (to the end when unterminated);
//! `\d \s \w \b` are ASCII; octal `\0`, `\012`; `\x{...}`; any escaped ASCII
//! punctuation is itself (`\<` is `<`); `[[`, `[&&]`, `[--]` are literal;
//! `[\d-z]` is `\d`, `-`, `z`; `(?P<name>` and `(?<name>` with Go's names
//! (digits first allowed, duplicates allowed); flags `imsU` only; a repetition
//! may follow `^`, `$` and `\b`; `**` and `{2}{3}` are errors. Errors carry
//! Go's wording and the offending text, as Traefik logs them.
//!
//! Control plane only: parsing is iterative (an explicit group stack), and
//! the tree's height is capped at Go's 1000, so no input can exhaust the
//! stack later.

use regex_syntax::hir::{self, Class, ClassUnicode, Hir, Look};

use super::lex::{class_char, escape, parse_repeat};
use super::tables;

/// Go's `maxRepeat` and `maxHeight`.
const MAX_REPEAT: u32 = 1000;
const MAX_HEIGHT: u32 = 1000;

/// A pattern Go's `regexp.Compile` rejects: Go's error code and the text it
/// points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) code: &'static str,
    pub(crate) expr: String,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: `{}`", self.code, self.expr)
    }
}

pub(super) const INVALID_CHAR_RANGE: &str = "invalid character class range";
pub(super) const INVALID_ESCAPE: &str = "invalid escape sequence";
const INVALID_NAMED_CAPTURE: &str = "invalid named capture";
const INVALID_PERL_OP: &str = "invalid or unsupported Perl syntax";
const INVALID_REPEAT_OP: &str = "invalid nested repetition operator";
const INVALID_REPEAT_SIZE: &str = "invalid repeat count";
pub(super) const MISSING_BRACKET: &str = "missing closing ]";
const MISSING_PAREN: &str = "missing closing )";
const MISSING_REPEAT_ARGUMENT: &str = "missing argument to repetition operator";
pub(super) const TRAILING_BACKSLASH: &str = "trailing backslash at end of expression";
const UNEXPECTED_PAREN: &str = "unexpected )";
const NESTING_DEPTH: &str = "expression nests too deeply";

pub(super) fn err<T>(code: &'static str, expr: &str) -> Result<T, SyntaxError> {
    Err(SyntaxError {
        code,
        expr: expr.to_owned(),
    })
}

/// The text of `s` consumed so far, `rest` being what is left of it.
pub(super) fn consumed<'a>(s: &'a str, rest: &str) -> &'a str {
    &s[..s.len() - rest.len()]
}

/// Parses `pattern` as Go does and returns the equivalent [`Hir`].
pub(crate) fn parse(pattern: &str) -> Result<Hir, SyntaxError> {
    Ok(Parser::new(pattern).run()?.to_hir(false))
}

/// Like [`parse`], keeping the capture groups (numbered and named as in
/// Go), for the middlewares that expand `$1` / `${name}`.
pub(crate) fn parse_with_captures(pattern: &str) -> Result<Hir, SyntaxError> {
    Ok(Parser::new(pattern).run()?.to_hir(true))
}

// === the tree ===

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Flags {
    /// `i`
    fold: bool,
    /// `m`: `^`/`$` match at line boundaries (Go's `OneLine` cleared).
    multi_line: bool,
    /// `s`
    dot_nl: bool,
    /// `U`: repetitions lazy by default.
    ungreedy: bool,
}

#[derive(Debug)]
struct Node {
    kind: Kind,
    height: u32,
}

#[derive(Debug)]
enum Kind {
    Empty,
    /// A Go rune: may be a surrogate (`\x{D800}`), which never matches.
    Literal {
        rune: u32,
        fold: bool,
    },
    Class(ClassUnicode),
    Dot {
        newline: bool,
    },
    Look(Look),
    /// A group: its number (in the order groups open), its name.
    Capture(u32, Option<Box<str>>, Box<Node>),
    Repeat {
        min: u32,
        max: Option<u32>,
        /// `{n,m}` (Go's `OpRepeat`), as opposed to `*`, `+`, `?`.
        counted: bool,
        greedy: bool,
        sub: Box<Node>,
    },
    Concat(Vec<Node>),
    Alternate(Vec<Node>),
}

impl Node {
    fn leaf(kind: Kind) -> Node {
        Node { kind, height: 1 }
    }

    fn with_subs(kind: Kind) -> Result<Node, ()> {
        let height = 1 + match &kind {
            Kind::Capture(_, _, s) | Kind::Repeat { sub: s, .. } => s.height,
            Kind::Concat(v) | Kind::Alternate(v) => v.iter().map(|n| n.height).max().unwrap_or(0),
            _ => 0,
        };
        if height > MAX_HEIGHT {
            return Err(());
        }
        Ok(Node { kind, height })
    }

    /// Go's `repeatIsValid`: the product of nested counted repetitions stays
    /// within `n` copies.
    fn repeat_is_valid(&self, mut n: u32) -> bool {
        match &self.kind {
            Kind::Repeat {
                min,
                max,
                counted: true,
                sub,
                ..
            } => {
                let m = match *max {
                    Some(0) => return true,
                    Some(m) => m,
                    None => *min,
                };
                if m > n {
                    return false;
                }
                n = n.checked_div(m).unwrap_or(n);
                sub.repeat_is_valid(n)
            }
            Kind::Capture(_, _, s) | Kind::Repeat { sub: s, .. } => s.repeat_is_valid(n),
            Kind::Concat(v) | Kind::Alternate(v) => v.iter().all(|s| s.repeat_is_valid(n)),
            _ => true,
        }
    }

    fn to_hir(&self, captures: bool) -> Hir {
        match &self.kind {
            Kind::Empty => Hir::empty(),
            Kind::Literal { rune, fold } => match char::from_u32(*rune) {
                None => Hir::fail(),
                Some(c) if *fold => {
                    let mut class = ClassUnicode::new([hir::ClassUnicodeRange::new(c, c)]);
                    class.case_fold_simple();
                    Hir::class(Class::Unicode(class))
                }
                Some(c) => Hir::literal(c.encode_utf8(&mut [0; 4]).as_bytes()),
            },
            Kind::Class(c) => Hir::class(Class::Unicode(c.clone())),
            Kind::Dot { newline: true } => Hir::dot(hir::Dot::AnyChar),
            Kind::Dot { newline: false } => Hir::dot(hir::Dot::AnyCharExceptLF),
            Kind::Look(l) => Hir::look(*l),
            Kind::Capture(index, name, s) if captures => Hir::capture(hir::Capture {
                index: *index,
                name: name.clone(),
                sub: Box::new(s.to_hir(true)),
            }),
            Kind::Capture(_, _, s) => s.to_hir(false),
            Kind::Repeat {
                min,
                max,
                greedy,
                sub,
                ..
            } => Hir::repetition(hir::Repetition {
                min: *min,
                max: *max,
                greedy: *greedy,
                sub: Box::new(sub.to_hir(captures)),
            }),
            Kind::Concat(v) => Hir::concat(v.iter().map(|n| n.to_hir(captures)).collect()),
            Kind::Alternate(v) => Hir::alternation(v.iter().map(|n| n.to_hir(captures)).collect()),
        }
    }
}

// === the parser ===

/// One open group (the bottom frame is the whole pattern).
struct Frame {
    /// Flags when the group opened, restored at its `)`.
    flags: Flags,
    /// A capture group's number and name; `None` for other groups.
    capture: Option<(u32, Option<Box<str>>)>,
    /// Finished alternatives (before the last `|`).
    alternatives: Vec<Node>,
    /// The concatenation being built.
    items: Vec<Node>,
}

impl Frame {
    fn new(flags: Flags, capture: Option<(u32, Option<Box<str>>)>) -> Frame {
        Frame {
            flags,
            capture,
            alternatives: Vec::new(),
            items: Vec::new(),
        }
    }
}

struct Parser<'p> {
    whole: &'p str,
    flags: Flags,
    stack: Vec<Frame>,
    /// Capture groups opened so far.
    captures: u32,
}

/// A concatenation or alternation of `subs`, nested ones flattened (Go's
/// `collapse`).
fn collapse(subs: Vec<Node>, alternate: bool) -> Result<Node, ()> {
    let mut flat = Vec::with_capacity(subs.len());
    for n in subs {
        match n.kind {
            Kind::Concat(v) if !alternate => flat.extend(v),
            Kind::Alternate(v) if alternate => flat.extend(v),
            kind => flat.push(Node {
                kind,
                height: n.height,
            }),
        }
    }
    match flat.len() {
        0 => Ok(Node::leaf(Kind::Empty)),
        1 => Ok(flat.pop().unwrap_or_else(|| unreachable!())),
        _ if alternate => Node::with_subs(Kind::Alternate(flat)),
        _ => Node::with_subs(Kind::Concat(flat)),
    }
}

impl<'p> Parser<'p> {
    fn new(whole: &'p str) -> Self {
        Parser {
            whole,
            flags: Flags::default(),
            stack: vec![Frame::new(Flags::default(), None)],
            captures: 0,
        }
    }

    fn frame(&mut self) -> &mut Frame {
        self.stack.last_mut().unwrap_or_else(|| unreachable!())
    }

    fn too_deep<T>(&self) -> Result<T, SyntaxError> {
        err(NESTING_DEPTH, self.whole)
    }

    fn push(&mut self, node: Node) {
        self.frame().items.push(node);
    }

    fn literal(&mut self, rune: u32) {
        let fold = self.flags.fold;
        self.push(Node::leaf(Kind::Literal { rune, fold }));
    }

    fn run(mut self) -> Result<Node, SyntaxError> {
        let mut t = self.whole;
        // The text of the previous token when it was a repetition operator.
        let mut last_repeat: Option<&'p str> = None;
        while let Some(&b) = t.as_bytes().first() {
            let mut repeat = None;
            match b {
                b'(' if t.as_bytes().get(1) == Some(&b'?') => t = self.perl_flags(t)?,
                b'(' => {
                    let flags = self.flags;
                    self.captures += 1;
                    self.stack
                        .push(Frame::new(flags, Some((self.captures, None))));
                    t = &t[1..];
                }
                b'|' => {
                    let f = self.frame();
                    let items = std::mem::take(&mut f.items);
                    let concat = collapse(items, false).or_else(|()| self.too_deep())?;
                    self.frame().alternatives.push(concat);
                    t = &t[1..];
                }
                b')' => {
                    self.close_group()?;
                    t = &t[1..];
                }
                b'^' => {
                    let look = if self.flags.multi_line {
                        Look::StartLF
                    } else {
                        Look::Start
                    };
                    self.push(Node::leaf(Kind::Look(look)));
                    t = &t[1..];
                }
                b'$' => {
                    let look = if self.flags.multi_line {
                        Look::EndLF
                    } else {
                        Look::End
                    };
                    self.push(Node::leaf(Kind::Look(look)));
                    t = &t[1..];
                }
                b'.' => {
                    let newline = self.flags.dot_nl;
                    self.push(Node::leaf(Kind::Dot { newline }));
                    t = &t[1..];
                }
                b'[' => t = self.class(t)?,
                b'*' | b'+' | b'?' => {
                    let (min, max) = match b {
                        b'*' => (0, None),
                        b'+' => (1, None),
                        _ => (0, Some(1)),
                    };
                    let before = t;
                    t = self.repeat(min, max, false, before, &t[1..], last_repeat)?;
                    repeat = Some(before);
                }
                b'{' => match parse_repeat(t) {
                    None => {
                        self.literal(u32::from(b'{'));
                        t = &t[1..];
                    }
                    Some((min, max, after)) => {
                        if min < 0
                            || min > MAX_REPEAT.into()
                            || max > MAX_REPEAT.into()
                            || (max >= 0 && min > max)
                        {
                            return err(INVALID_REPEAT_SIZE, consumed(t, after));
                        }
                        // In range: both fit in u32 (max -1 is `{n,}`).
                        let min = min as u32;
                        let max = u32::try_from(max).ok();
                        let before = t;
                        t = self.repeat(min, max, true, before, after, last_repeat)?;
                        repeat = Some(before);
                    }
                },
                b'\\' => t = self.backslash(t)?,
                _ => {
                    let c = t.chars().next().unwrap_or_else(|| unreachable!());
                    self.literal(u32::from(c));
                    t = &t[c.len_utf8()..];
                }
            }
            last_repeat = repeat;
        }
        if self.stack.len() != 1 {
            return err(MISSING_PAREN, self.whole);
        }
        let frame = self.stack.pop().unwrap_or_else(|| unreachable!());
        self.finish(frame)
    }

    /// The alternation of a frame's parts.
    fn finish(&self, mut frame: Frame) -> Result<Node, SyntaxError> {
        let concat = collapse(frame.items, false).or_else(|()| self.too_deep())?;
        if frame.alternatives.is_empty() {
            return Ok(concat);
        }
        frame.alternatives.push(concat);
        collapse(frame.alternatives, true).or_else(|()| self.too_deep())
    }

    fn close_group(&mut self) -> Result<(), SyntaxError> {
        if self.stack.len() < 2 {
            return err(UNEXPECTED_PAREN, self.whole);
        }
        let mut frame = self.stack.pop().unwrap_or_else(|| unreachable!());
        self.flags = frame.flags;
        let capture = frame.capture.take();
        let inner = self.finish(frame)?;
        let node = if let Some((index, name)) = capture {
            Node::with_subs(Kind::Capture(index, name, Box::new(inner)))
                .or_else(|()| self.too_deep())?
        } else {
            inner
        };
        self.push(node);
        Ok(())
    }

    /// Applies a repetition to the last item. `before` starts at the
    /// operator, `after` follows it (a `?` after it makes it non-greedy).
    fn repeat(
        &mut self,
        min: u32,
        max: Option<u32>,
        counted: bool,
        before: &'p str,
        mut after: &'p str,
        last_repeat: Option<&'p str>,
    ) -> Result<&'p str, SyntaxError> {
        let mut greedy = !self.flags.ungreedy;
        if let Some(rest) = after.strip_prefix('?') {
            after = rest;
            greedy = !greedy;
        }
        if let Some(last) = last_repeat {
            return err(INVALID_REPEAT_OP, consumed(last, after));
        }
        let Some(sub) = self.frame().items.pop() else {
            return err(MISSING_REPEAT_ARGUMENT, consumed(before, after));
        };
        let node = Node::with_subs(Kind::Repeat {
            min,
            max,
            counted,
            greedy,
            sub: Box::new(sub),
        })
        .or_else(|()| self.too_deep())?;
        if counted && (min >= 2 || max.is_some_and(|m| m >= 2)) && !node.repeat_is_valid(MAX_REPEAT)
        {
            return err(INVALID_REPEAT_SIZE, consumed(before, after));
        }
        self.push(node);
        Ok(after)
    }

    /// `(?` at the start of `s`: a named capture, a flag group `(?i:` or a
    /// flag setting `(?i)`.
    fn perl_flags(&mut self, s: &'p str) -> Result<&'p str, SyntaxError> {
        let b = s.as_bytes();
        let with_p = b.len() > 4 && b[2] == b'P' && b[3] == b'<';
        let bare = b.len() > 3 && b[2] == b'<';
        if with_p || bare {
            let start = if with_p { 4 } else { 3 };
            let Some(end) = s.find('>') else {
                return err(INVALID_NAMED_CAPTURE, s);
            };
            let name = &s[start..end];
            if name.is_empty() || !name.bytes().all(|c| c == b'_' || c.is_ascii_alphanumeric()) {
                return err(INVALID_NAMED_CAPTURE, &s[..=end]);
            }
            let flags = self.flags;
            self.captures += 1;
            self.stack
                .push(Frame::new(flags, Some((self.captures, Some(name.into())))));
            return Ok(&s[end + 1..]);
        }
        let mut flags = self.flags;
        let mut negated = false;
        let mut saw_flag = false;
        let mut t = &s[2..];
        while let Some(c) = t.chars().next() {
            t = &t[c.len_utf8()..];
            let set = !negated;
            match c {
                'i' => flags.fold = set,
                'm' => flags.multi_line = set,
                's' => flags.dot_nl = set,
                'U' => flags.ungreedy = set,
                '-' if !negated => {
                    negated = true;
                    saw_flag = false;
                    continue;
                }
                ':' | ')' if !negated || saw_flag => {
                    if c == ':' {
                        let old = self.flags;
                        self.stack.push(Frame::new(old, None));
                    }
                    self.flags = flags;
                    return Ok(t);
                }
                _ => break,
            }
            saw_flag = true;
        }
        err(INVALID_PERL_OP, consumed(s, t))
    }

    /// A `\` escape outside a class.
    fn backslash(&mut self, t: &'p str) -> Result<&'p str, SyntaxError> {
        let look = match t.as_bytes().get(1) {
            Some(b'A') => Some(Look::Start),
            Some(b'z') => Some(Look::End),
            Some(b'b') => Some(Look::WordAscii),
            Some(b'B') => Some(Look::WordAsciiNegate),
            Some(b'C') => return err(INVALID_ESCAPE, &t[..2]),
            Some(b'Q') => {
                let (lit, rest) = match t[2..].find(r"\E") {
                    Some(i) => (&t[2..2 + i], &t[2 + i + 2..]),
                    None => (&t[2..], ""),
                };
                for c in lit.chars() {
                    self.literal(u32::from(c));
                }
                return Ok(rest);
            }
            _ => None,
        };
        if let Some(look) = look {
            self.push(Node::leaf(Kind::Look(look)));
            return Ok(&t[2..]);
        }
        if let Some((class, rest)) = self.unicode_class(t)? {
            self.push(Node::leaf(Kind::Class(class)));
            return Ok(rest);
        }
        if let Some((class, rest)) = self.perl_class(t) {
            self.push(Node::leaf(Kind::Class(class)));
            return Ok(rest);
        }
        let (rune, rest) = escape(t)?;
        self.literal(rune);
        Ok(rest)
    }

    /// Folds a named class when `i` is set, then negates it if asked (Go's
    /// `appendGroup` order).
    fn group(&self, mut class: ClassUnicode, negated: bool) -> ClassUnicode {
        if self.flags.fold {
            class.case_fold_simple();
        }
        if negated {
            class.negate();
        }
        class
    }

    /// `\d \D \s \S \w \W` at the start of `t`.
    fn perl_class(&self, t: &'p str) -> Option<(ClassUnicode, &'p str)> {
        let b = t.as_bytes();
        if b.len() < 2 || b[0] != b'\\' {
            return None;
        }
        let (class, negated) = tables::perl(b[1])?;
        Some((self.group(class, negated), &t[2..]))
    }

    /// `\pN`, `\p{Name}`, `\PN`, `\P{Name}`, `\p{^Name}` at the start of `s`.
    fn unicode_class(&self, s: &'p str) -> Result<Option<(ClassUnicode, &'p str)>, SyntaxError> {
        let b = s.as_bytes();
        if b.len() < 2 || b[0] != b'\\' || (b[1] != b'p' && b[1] != b'P') {
            return Ok(None);
        }
        let mut negated = b[1] == b'P';
        let after = &s[2..];
        let (seq, mut name, rest) = match after.chars().next() {
            Some('{') => {
                let Some(end) = s.find('}') else {
                    return err(INVALID_CHAR_RANGE, s);
                };
                (&s[..=end], &s[3..end], &s[end + 1..])
            }
            Some(c) => {
                let len = 2 + c.len_utf8();
                (&s[..len], &s[2..len], &s[len..])
            }
            None => (s, "", ""),
        };
        if let Some(n) = name.strip_prefix('^') {
            negated = !negated;
            name = n;
        }
        let Some((class, table_negated)) = tables::unicode(name) else {
            return err(INVALID_CHAR_RANGE, seq);
        };
        Ok(Some((self.group(class, negated != table_negated), rest)))
    }

    /// A bracketed class `[...]` at the start of `s`.
    fn class(&mut self, s: &'p str) -> Result<&'p str, SyntaxError> {
        let mut t = &s[1..];
        let negated = t.starts_with('^');
        if negated {
            t = &t[1..];
        }
        let fold = self.flags.fold;
        let mut class = ClassUnicode::empty();
        let mut first = true;
        while t.is_empty() || !t.starts_with(']') || first {
            first = false;
            if t.len() > 2
                && t.starts_with("[:")
                && let Some(i) = t[2..].find(":]")
            {
                let name = &t[..i + 4];
                let Some((c, neg)) = tables::posix(name) else {
                    return err(INVALID_CHAR_RANGE, name);
                };
                class.union(&self.group(c, neg));
                t = &t[i + 4..];
                continue;
            }
            if let Some((c, rest)) = self.unicode_class(t)? {
                class.union(&c);
                t = rest;
                continue;
            }
            if let Some((c, rest)) = self.perl_class(t) {
                class.union(&c);
                t = rest;
                continue;
            }
            let range_start = t;
            let (lo, rest) = class_char(t, s)?;
            t = rest;
            let mut hi = lo;
            if t.len() >= 2 && t.starts_with('-') && !t[1..].starts_with(']') {
                let (h, rest) = class_char(&t[1..], s)?;
                t = rest;
                if h < lo {
                    return err(INVALID_CHAR_RANGE, consumed(range_start, t));
                }
                hi = h;
            }
            let mut range = tables::class_from_runes([(lo, hi)]);
            if fold {
                range.case_fold_simple();
            }
            class.union(&range);
        }
        if negated {
            class.negate();
        }
        self.push(Node::leaf(Kind::Class(class)));
        Ok(&t[1..])
    }
}
