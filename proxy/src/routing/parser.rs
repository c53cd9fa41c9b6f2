//! The rule language parser: Traefik v3 rule text to a [`Rule`].
//!
//! Traefik parses rules with `vulcand/predicate`, which hands the text to Go's
//! `go/parser.ParseExpr`; the accepted language is therefore a subset of Go
//! expressions. Reproduced here: `||` binds looser than `&&`, `!` binds
//! tightest, parentheses group; arguments are Go string literals (backquoted
//! raw strings, or double-quoted with Go escapes); a call may end with a
//! trailing comma; `//` and `/* */` comments are whitespace; a newline right
//! after a matcher call or `)` ends the expression (Go's automatic semicolon),
//! so more text after it is an error. Both syntaxes share this grammar; they
//! differ in the matcher functions (`syntax`) and how each builds (`v3`,
//! `v2`).
//!
//! Control plane only: runs when a configuration is compiled.

use super::matcher::Expr;
use super::syntax::{self, RuleSyntax};
use super::{Rule, v2, v3};

/// A rule that failed to parse or compile.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct RuleError {
    /// 1-based column, in characters, of the offending token in the rule.
    pub column: usize,
    /// What is wrong, for a human.
    pub message: String,
}

impl RuleError {
    pub(crate) fn new(column: usize, message: impl Into<String>) -> Self {
        RuleError {
            column,
            message: message.into(),
        }
    }
}

/// Deepest nesting of parentheses and `!` accepted (keeps recursion bounded).
const MAX_DEPTH: usize = 256;

/// Parses and compiles a Traefik v3 rule (regexes are compiled here, once).
pub fn parse_rule(rule: &str) -> Result<Rule, RuleError> {
    parse_rule_with(rule, RuleSyntax::V3)
}

/// Parses and compiles a rule written in `syntax` (a router's `ruleSyntax`).
pub fn parse_rule_with(rule: &str, syntax: RuleSyntax) -> Result<Rule, RuleError> {
    let tokens = lex(rule)?;
    let mut p = Parser {
        toks: tokens,
        pos: 0,
        depth: 0,
        syntax,
        warnings: Vec::new(),
    };
    if p.peek().kind == Tok::Eof {
        return Err(RuleError::new(p.peek().col, "empty rule"));
    }
    let expr = p.parse_or()?;
    let t = p.peek();
    if t.kind != Tok::Eof {
        let what = describe(&t.kind);
        return Err(RuleError::new(
            t.col,
            format!("unexpected {what}, expected \"&&\", \"||\" or the end of the rule"),
        ));
    }
    Ok(Rule {
        source: rule.into(),
        syntax,
        expr,
        warnings: p.warnings.into_boxed_slice(),
    })
}

// === lexer ===

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Str(String),
    LParen,
    RParen,
    Comma,
    And,
    Or,
    Not,
    /// A Go-inserted semicolon: a newline after an operand.
    Newline,
    /// Anything Go would tokenise but the rule language rejects.
    Other(String),
    Eof,
}

#[derive(Clone, Debug)]
struct Token {
    kind: Tok,
    col: usize,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("\"{s}\""),
        Tok::Str(_) => "string".to_owned(),
        Tok::LParen => "\"(\"".to_owned(),
        Tok::RParen => "\")\"".to_owned(),
        Tok::Comma => "\",\"".to_owned(),
        Tok::And => "\"&&\"".to_owned(),
        Tok::Or => "\"||\"".to_owned(),
        Tok::Not => "\"!\"".to_owned(),
        Tok::Newline => "newline".to_owned(),
        Tok::Other(s) => s.clone(),
        Tok::Eof => "end of rule".to_owned(),
    }
}

fn lex(src: &str) -> Result<Vec<Token>, RuleError> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    // Whether a newline here would be a Go-inserted semicolon.
    let mut semi = false;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        match c {
            ' ' | '\t' | '\r' => i += 1,
            '\n' => {
                if semi {
                    toks.push(Token {
                        kind: Tok::Newline,
                        col,
                    });
                    semi = false;
                }
                i += 1;
            }
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                let mut j = i + 2;
                let mut newline = false;
                loop {
                    if j + 1 >= chars.len() {
                        return Err(RuleError::new(col, "comment not terminated"));
                    }
                    if chars[j] == '*' && chars[j + 1] == '/' {
                        break;
                    }
                    newline |= chars[j] == '\n';
                    j += 1;
                }
                if newline && semi {
                    toks.push(Token {
                        kind: Tok::Newline,
                        col,
                    });
                    semi = false;
                }
                i = j + 2;
            }
            '(' | ')' | ',' | '!' => {
                let kind = match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    ',' => Tok::Comma,
                    _ if chars.get(i + 1) == Some(&'=') => Tok::Other("\"!=\"".to_owned()),
                    _ => Tok::Not,
                };
                semi = c == ')';
                toks.push(Token { kind, col });
                i += 1;
            }
            '&' | '|' => {
                if chars.get(i + 1) == Some(&c) {
                    let kind = if c == '&' { Tok::And } else { Tok::Or };
                    toks.push(Token { kind, col });
                    i += 2;
                } else {
                    toks.push(Token {
                        kind: Tok::Other(format!("\"{c}\" (did you mean \"{c}{c}\"?)")),
                        col,
                    });
                    i += 1;
                }
                semi = false;
            }
            '`' => {
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => {
                            return Err(RuleError::new(col, "raw string literal not terminated"));
                        }
                        Some('`') => break,
                        // Go drops carriage returns from raw strings.
                        Some('\r') => {}
                        Some(&ch) => s.push(ch),
                    }
                    j += 1;
                }
                toks.push(Token {
                    kind: Tok::Str(s),
                    col,
                });
                semi = true;
                i = j + 1;
            }
            '"' => {
                let (s, next) = lex_interpreted(&chars, i)?;
                toks.push(Token {
                    kind: Tok::Str(s),
                    col,
                });
                semi = true;
                i = next;
            }
            '\'' => {
                let mut j = i + 1;
                while j < chars.len() && chars[j] != '\'' && chars[j] != '\n' {
                    j += if chars[j] == '\\' { 2 } else { 1 };
                }
                toks.push(Token {
                    kind: Tok::Other(
                        "character literal (use `...` or \"...\" for strings)".to_owned(),
                    ),
                    col,
                });
                semi = true;
                i = j + 1;
            }
            c if c == '_' || c.is_alphabetic() => {
                let mut j = i;
                while j < chars.len() && (chars[j] == '_' || chars[j].is_alphanumeric()) {
                    j += 1;
                }
                toks.push(Token {
                    kind: Tok::Ident(chars[i..j].iter().collect()),
                    col,
                });
                semi = true;
                i = j;
            }
            c if c.is_ascii_digit() => {
                let mut j = i;
                while j < chars.len()
                    && (chars[j].is_ascii_alphanumeric() || chars[j] == '.' || chars[j] == '_')
                {
                    j += 1;
                }
                toks.push(Token {
                    kind: Tok::Other("number (matcher arguments are strings)".to_owned()),
                    col,
                });
                semi = true;
                i = j;
            }
            other => {
                toks.push(Token {
                    kind: Tok::Other(format!("{other:?}")),
                    col,
                });
                semi = false;
                i += 1;
            }
        }
    }
    let eof = chars.len() + 1;
    // A trailing newline is an accepted automatic semicolon; one followed by
    // more tokens ends the expression early, which Go rejects.
    while toks.last().is_some_and(|t| t.kind == Tok::Newline) {
        toks.pop();
    }
    if let Some(t) = toks.iter().find(|t| t.kind == Tok::Newline) {
        return Err(RuleError::new(
            t.col,
            "unexpected newline: a line cannot end after a matcher or \")\" (put \"&&\" or \"||\" at the end of the line)",
        ));
    }
    toks.push(Token {
        kind: Tok::Eof,
        col: eof,
    });
    Ok(toks)
}

/// A Go interpreted string literal starting at `chars[start] == '"'`.
/// Returns the value and the index after the closing quote.
fn lex_interpreted(chars: &[char], start: usize) -> Result<(String, usize), RuleError> {
    let mut bytes: Vec<u8> = Vec::new();
    let mut j = start + 1;
    let push_char = |bytes: &mut Vec<u8>, c: char| {
        let mut buf = [0u8; 4];
        bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    };
    loop {
        let col = j + 1;
        match chars.get(j) {
            None | Some('\n') => {
                return Err(RuleError::new(start + 1, "string literal not terminated"));
            }
            Some('"') => break,
            Some('\\') => {
                let esc = chars.get(j + 1).copied();
                j += 2;
                match esc {
                    Some('a') => bytes.push(0x07),
                    Some('b') => bytes.push(0x08),
                    Some('f') => bytes.push(0x0c),
                    Some('n') => bytes.push(b'\n'),
                    Some('r') => bytes.push(b'\r'),
                    Some('t') => bytes.push(b'\t'),
                    Some('v') => bytes.push(0x0b),
                    Some('\\') => bytes.push(b'\\'),
                    Some('"') => bytes.push(b'"'),
                    Some(d @ '0'..='7') => {
                        let mut v = d.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            match chars.get(j).and_then(|c| c.to_digit(8)) {
                                Some(x) => v = v * 8 + x,
                                None => {
                                    return Err(RuleError::new(
                                        col,
                                        "invalid octal escape (need 3 digits)",
                                    ));
                                }
                            }
                            j += 1;
                        }
                        let b = u8::try_from(v)
                            .map_err(|_| RuleError::new(col, "octal escape value > 255"))?;
                        bytes.push(b);
                    }
                    Some(k @ ('x' | 'u' | 'U')) => {
                        let n = match k {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut v: u32 = 0;
                        for _ in 0..n {
                            match chars.get(j).and_then(|c| c.to_digit(16)) {
                                Some(x) => v = v * 16 + x,
                                None => {
                                    return Err(RuleError::new(
                                        col,
                                        format!("invalid \\{k} escape (need {n} hex digits)"),
                                    ));
                                }
                            }
                            j += 1;
                        }
                        if k == 'x' {
                            bytes.push(u8::try_from(v).unwrap_or(0));
                        } else {
                            let c = char::from_u32(v).ok_or_else(|| {
                                RuleError::new(col, "escape is an invalid Unicode code point")
                            })?;
                            push_char(&mut bytes, c);
                        }
                    }
                    _ => return Err(RuleError::new(col, "unknown escape sequence")),
                }
            }
            Some(&c) => {
                push_char(&mut bytes, c);
                j += 1;
            }
        }
    }
    let s = String::from_utf8(bytes).map_err(|_| {
        RuleError::new(
            start + 1,
            "string literal is not valid UTF-8 after unescaping",
        )
    })?;
    Ok((s, j + 1))
}

// === parser ===

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
    syntax: RuleSyntax,
    /// What is accepted but probably not meant (see [`Rule::warnings`]).
    warnings: Vec<RuleError>,
}

impl Parser {
    fn peek(&self) -> Token {
        self.toks[self.pos.min(self.toks.len() - 1)].clone()
    }

    fn bump(&mut self) -> Token {
        let t = self.peek();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn enter(&mut self, col: usize) -> Result<(), RuleError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(RuleError::new(
                col,
                format!("rule nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn parse_or(&mut self) -> Result<Expr, RuleError> {
        let mut items = vec![self.parse_and()?];
        while self.peek().kind == Tok::Or {
            self.bump();
            items.push(self.parse_and()?);
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or_else(|| unreachable!())
        } else {
            Expr::Or(items)
        })
    }

    fn parse_and(&mut self) -> Result<Expr, RuleError> {
        let mut items = vec![self.parse_unary()?];
        while self.peek().kind == Tok::And {
            self.bump();
            items.push(self.parse_unary()?);
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or_else(|| unreachable!())
        } else {
            Expr::And(items)
        })
    }

    fn parse_unary(&mut self) -> Result<Expr, RuleError> {
        let t = self.peek();
        if t.kind == Tok::Not {
            self.bump();
            self.enter(t.col)?;
            let inner = self.parse_unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.parse_primary()
    }

    fn parse_primary(&mut self) -> Result<Expr, RuleError> {
        let t = self.bump();
        match t.kind {
            Tok::LParen => {
                self.enter(t.col)?;
                let e = self.parse_or()?;
                let close = self.bump();
                if close.kind != Tok::RParen {
                    return Err(RuleError::new(
                        close.col,
                        format!("expected \")\", found {}", describe(&close.kind)),
                    ));
                }
                self.depth -= 1;
                Ok(e)
            }
            Tok::Ident(name) => self.parse_call(&name, t.col),
            other => Err(RuleError::new(
                t.col,
                format!(
                    "expected a matcher, \"(\" or \"!\", found {}",
                    describe(&other)
                ),
            )),
        }
    }

    fn parse_call(&mut self, name: &str, col: usize) -> Result<Expr, RuleError> {
        let func = syntax::resolve(name, self.syntax).map_err(|msg| RuleError::new(col, msg))?;
        let open = self.bump();
        if open.kind != Tok::LParen {
            return Err(RuleError::new(
                open.col,
                format!(
                    "expected \"(\" after {}, found {}",
                    func.name(),
                    describe(&open.kind)
                ),
            ));
        }
        let mut args: Vec<(String, usize)> = Vec::new();
        loop {
            let t = self.bump();
            match t.kind {
                Tok::RParen => break,
                Tok::Str(s) => {
                    args.push((s, t.col));
                    let sep = self.bump();
                    match sep.kind {
                        Tok::Comma => {}
                        Tok::RParen => break,
                        other => {
                            return Err(RuleError::new(
                                sep.col,
                                format!("expected \",\" or \")\", found {}", describe(&other)),
                            ));
                        }
                    }
                }
                other => {
                    let msg = if args.is_empty() {
                        format!(
                            "expected a quoted argument or \")\", found {}",
                            describe(&other)
                        )
                    } else {
                        format!("expected a quoted argument, found {}", describe(&other))
                    };
                    return Err(RuleError::new(t.col, msg));
                }
            }
        }
        // `rules.CheckRule`: at least one argument, none empty.
        if args.is_empty() && self.syntax == RuleSyntax::V2 {
            return Err(RuleError::new(
                col,
                format!("no arguments for {}", func.name()),
            ));
        }
        if let Some((_, c)) = args.iter().find(|(a, _)| a.is_empty()) {
            return Err(RuleError::new(
                *c,
                format!("empty argument for {}", func.name()),
            ));
        }
        match self.syntax {
            RuleSyntax::V3 => {
                self.warnings.extend(v3::lint(func, &args));
                v3::build(func, args, col)
            }
            RuleSyntax::V2 => v2::build(func, args, col),
        }
    }
}
