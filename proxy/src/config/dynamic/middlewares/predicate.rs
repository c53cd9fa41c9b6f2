//! The expression language of `circuitBreaker.expression` and
//! `buffering.retryExpression`: Go expression syntax read as Traefik's
//! `vulcand/predicate` reads it (`go/parser`, then a walk that knows
//! `&&`, `||`, the six comparisons, calls with literal arguments and
//! parentheses). [`parse`] gives the syntax tree ([`Node`]); each
//! middleware checks it against its own functions and their types.
//!
//! What Go's parser takes but the predicate walk refuses is refused here
//! too, with the reason: unary operators (`!`, `-1`), arithmetic, bare
//! identifiers, a call's argument that is not a literal. Control plane
//! only.

use std::fmt;

/// A binary operator the predicate walk knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    And,
    Or,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::And => "&&",
            Op::Or => "||",
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        })
    }
}

/// A literal, typed as Go's scanner types it (`1` an int, `1.0` a float).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Lit {
    Int(i64),
    Float(f64),
    Str(String),
}

impl Lit {
    /// What it is, for messages.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Lit::Int(_) => "an integer",
            Lit::Float(_) => "a float",
            Lit::Str(_) => "a string",
        }
    }
}

/// An expression as written.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    Binary(Op, Box<Node>, Box<Node>),
    Call(String, Vec<Lit>),
    Lit(Lit),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Lit(Lit),
    Op(Op),
    /// An operator Go has and the predicate walk does not (`+`, `!`).
    Other(String),
    Open,
    Close,
    Comma,
}

fn tokens(src: &str) -> Result<Vec<Tok>, String> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let two = b.get(i..i + 2).unwrap_or(&[]);
        let op2 = match two {
            b"&&" => Some(Op::And),
            b"||" => Some(Op::Or),
            b"==" => Some(Op::Eq),
            b"!=" => Some(Op::Ne),
            b"<=" => Some(Op::Le),
            b">=" => Some(Op::Ge),
            _ => None,
        };
        if let Some(op) = op2 {
            out.push(Tok::Op(op));
            i += 2;
            continue;
        }
        match c {
            b'(' => out.push(Tok::Open),
            b')' => out.push(Tok::Close),
            b',' => out.push(Tok::Comma),
            b'<' if b.get(i + 1) == Some(&b'<') => {
                out.push(Tok::Other("<<".into()));
                i += 1;
            }
            b'>' if b.get(i + 1) == Some(&b'>') => {
                out.push(Tok::Other(">>".into()));
                i += 1;
            }
            b'<' => out.push(Tok::Op(Op::Lt)),
            b'>' => out.push(Tok::Op(Op::Gt)),
            b'!' | b'+' | b'-' | b'*' | b'/' | b'%' | b'&' | b'|' | b'^' => {
                out.push(Tok::Other((c as char).to_string()));
            }
            b'"' | b'`' => {
                let (s, len) = string(&src[i..])?;
                out.push(Tok::Lit(Lit::Str(s)));
                i += len;
                continue;
            }
            b'0'..=b'9' | b'.' => {
                let len = b[i..]
                    .iter()
                    .enumerate()
                    .take_while(|&(k, &d)| {
                        d.is_ascii_alphanumeric()
                            || d == b'.'
                            || d == b'_'
                            // an exponent's sign
                            || ((d == b'-' || d == b'+')
                                && k > 0
                                && matches!(b[i + k - 1], b'e' | b'E'))
                    })
                    .count();
                out.push(Tok::Lit(number(&src[i..i + len])?));
                i += len;
                continue;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let len = src[i..]
                    .char_indices()
                    .find(|&(_, ch)| !(ch.is_alphanumeric() || ch == '_'))
                    .map_or(src.len() - i, |(k, _)| k);
                out.push(Tok::Ident(src[i..i + len].to_owned()));
                i += len;
                continue;
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(format!("unexpected {ch:?}"));
            }
        }
        i += 1;
    }
    Ok(out)
}

/// A number as Go scans it and `strconv` then reads it: an int is
/// decimal digits (`strconv.Atoi`), a float has a point or an exponent.
fn number(text: &str) -> Result<Lit, String> {
    let bad = || format!("failed to parse argument: {text}");
    if text.bytes().all(|d| d.is_ascii_digit()) {
        return text.parse().map(Lit::Int).map_err(|_| bad());
    }
    let float_chars = text
        .bytes()
        .all(|d| d.is_ascii_digit() || matches!(d, b'.' | b'e' | b'E' | b'-' | b'+'));
    if float_chars
        && text.bytes().any(|d| matches!(d, b'.' | b'e' | b'E'))
        && let Ok(v) = text.parse::<f64>()
        && v.is_finite()
    {
        return Ok(Lit::Float(v));
    }
    Err(bad())
}

/// A Go string literal at the start of `s` (interpreted `"..."` with the
/// common escapes, or raw `` `...` ``), and its length in bytes.
fn string(s: &str) -> Result<(String, usize), String> {
    let quote = s.as_bytes()[0];
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((k, ch)) = chars.next() {
        if ch as u32 == u32::from(quote) {
            return Ok((out, k + 1));
        }
        if quote == b'"' && ch == '\\' {
            let Some((_, e)) = chars.next() else { break };
            out.push(match e {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                '\\' => '\\',
                '"' => '"',
                other => return Err(format!("unknown escape sequence \\{other}")),
            });
            continue;
        }
        if quote == b'"' && ch == '\n' {
            break;
        }
        out.push(ch);
    }
    Err("string literal not terminated".into())
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

/// Go's precedence of a binary operator (higher binds tighter).
fn precedence(t: &Tok) -> Option<u8> {
    match t {
        Tok::Op(Op::Or) => Some(1),
        Tok::Op(Op::And) => Some(2),
        Tok::Op(_) => Some(3),
        Tok::Other(o) => match o.as_str() {
            "+" | "-" | "|" | "^" => Some(4),
            "*" | "/" | "%" | "<<" | ">>" | "&" => Some(5),
            _ => None,
        },
        _ => None,
    }
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn binary(&mut self, min: u8) -> Result<Node, String> {
        let mut left = self.unary()?;
        while let Some(prec) = self.peek().and_then(precedence) {
            if prec < min {
                break;
            }
            let op = match self.next() {
                Some(Tok::Op(op)) => op,
                Some(Tok::Other(o)) => return Err(format!("{o} is not supported")),
                _ => unreachable!("precedence() only for operators"),
            };
            let right = self.binary(prec + 1)?;
            left = Node::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Node, String> {
        match self.next() {
            Some(Tok::Open) => {
                let inner = self.binary(1)?;
                match self.next() {
                    Some(Tok::Close) => Ok(inner),
                    _ => Err("expected ')'".into()),
                }
            }
            Some(Tok::Lit(l)) => Ok(Node::Lit(l)),
            Some(Tok::Ident(name)) => {
                if self.peek() != Some(&Tok::Open) {
                    return Err(format!("{name} is not defined"));
                }
                self.at += 1;
                let mut args = Vec::new();
                if self.peek() == Some(&Tok::Close) {
                    self.at += 1;
                    return Ok(Node::Call(name, args));
                }
                loop {
                    match self.next() {
                        Some(Tok::Lit(l)) => args.push(l),
                        Some(Tok::Other(o)) => {
                            return Err(format!(
                                "{name}: argument {}: {o} is not supported (only a literal)",
                                args.len() + 1
                            ));
                        }
                        _ => {
                            return Err(format!(
                                "{name}: argument {} is not a literal",
                                args.len() + 1
                            ));
                        }
                    }
                    match self.next() {
                        Some(Tok::Comma) if self.peek() == Some(&Tok::Close) => {
                            self.at += 1;
                            return Ok(Node::Call(name, args));
                        }
                        Some(Tok::Comma) => {}
                        Some(Tok::Close) => return Ok(Node::Call(name, args)),
                        _ => return Err(format!("{name}: expected ',' or ')'")),
                    }
                }
            }
            Some(Tok::Other(o)) => Err(format!("{o} is not supported")),
            Some(Tok::Op(op)) => Err(format!("unexpected {op}")),
            Some(Tok::Close) => Err("unexpected ')'".into()),
            Some(Tok::Comma) => Err("unexpected ','".into()),
            None => Err("expected an operand".into()),
        }
    }
}

/// The syntax tree of `src`, or why Traefik would refuse it.
pub(super) fn parse(src: &str) -> Result<Node, String> {
    let toks = tokens(src)?;
    if toks.is_empty() {
        return Err("empty expression".into());
    }
    let mut p = Parser { toks, at: 0 };
    let node = p.binary(1)?;
    match p.peek() {
        None => Ok(node),
        Some(Tok::Close) => Err("unexpected ')'".into()),
        Some(_) => Err("expected an operator".into()),
    }
}

/// What a node is when a predicate was wanted, for messages.
pub(super) fn describe(n: &Node) -> String {
    match n {
        Node::Call(name, _) => format!("{name}()"),
        Node::Lit(l) => l.kind().to_owned(),
        Node::Binary(op, _, _) => format!("a {op} expression"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, args: Vec<Lit>) -> Box<Node> {
        Box::new(Node::Call(name.into(), args))
    }

    #[test]
    fn precedence_and_parentheses_are_go_s() {
        let n = parse("A() > 0.5 || B(1, 2) == 3 && C(50.0) < 1e2").unwrap();
        let expect = Node::Binary(
            Op::Or,
            Box::new(Node::Binary(
                Op::Gt,
                call("A", vec![]),
                Box::new(Node::Lit(Lit::Float(0.5))),
            )),
            Box::new(Node::Binary(
                Op::And,
                Box::new(Node::Binary(
                    Op::Eq,
                    call("B", vec![Lit::Int(1), Lit::Int(2)]),
                    Box::new(Node::Lit(Lit::Int(3))),
                )),
                Box::new(Node::Binary(
                    Op::Lt,
                    call("C", vec![Lit::Float(50.0)]),
                    Box::new(Node::Lit(Lit::Float(100.0))),
                )),
            )),
        );
        assert_eq!(n, expect);
        let n = parse("(A() > .5)").unwrap();
        assert!(matches!(n, Node::Binary(Op::Gt, _, _)));
        assert_eq!(
            parse(r#"M() == "GET""#).unwrap(),
            Node::Binary(
                Op::Eq,
                call("M", vec![]),
                Box::new(Node::Lit(Lit::Str("GET".into())))
            )
        );
    }

    #[test]
    fn what_the_predicate_walk_refuses_is_refused() {
        for (src, why) in [
            ("", "empty"),
            ("!A()", "! is not supported"),
            ("A() > -1", "- is not supported"),
            ("A() + 1 > 2", "+ is not supported"),
            ("A > 1", "A is not defined"),
            ("A(B()) > 1", "argument 1 is not a literal"),
            ("A(-1) > 1", "argument 1: - is not supported"),
            ("A() > 0x10", "failed to parse argument: 0x10"),
            ("(A() > 1", "expected ')'"),
            ("A() > 1)", "unexpected ')'"),
            ("A() 1", "expected an operator"),
            ("A() > ", "expected an operand"),
            ("A() # 1", "unexpected '#'"),
        ] {
            let e = parse(src).unwrap_err();
            assert!(e.contains(why), "{src:?}: {e}");
        }
    }
}
