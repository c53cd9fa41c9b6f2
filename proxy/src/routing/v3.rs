//! Builds the matchers of the v3 syntax (Traefik 3.7
//! `pkg/muxer/http/matcher.go`): one value per matcher (two for `Header`,
//! `HeaderRegexp`, one or two for `Query`, `QueryRegexp`), regexes in Go
//! syntax, `Host` with `*.` wildcards.
//!
//! Control plane only: runs when a rule is compiled.

use super::matcher::{Expr, Matcher, client_ips, header_name, regex};
use super::parser::RuleError;
use super::syntax::Func;

/// Warnings for v2 writing that v3 accepts with another meaning.
pub(super) fn lint(func: Func, args: &[(String, usize)]) -> Vec<RuleError> {
    let mut out = Vec::new();
    let regex_arg = match func {
        Func::HostRegexp | Func::PathRegexp => args.first(),
        Func::HeaderRegexp | Func::QueryRegexp => args.get(1),
        _ => None,
    };
    if let Some((pattern, col)) = regex_arg
        && let Some(var) = template_variable(pattern)
    {
        out.push(RuleError::new(
            *col,
            format!(
                "`{var}` is a v2 template: in the v3 syntax these braces are literal text \
                 (Traefik accepts the rule and matches them literally); set `ruleSyntax: v2` \
                 if this is a v2 rule, or write the regex itself"
            ),
        ));
    }
    if func == Func::Query
        && let [(kv, col)] = args
        && let Some((k, v)) = kv.split_once('=')
    {
        out.push(RuleError::new(
            *col,
            format!(
                "Query(`{kv}`) in the v3 syntax matches a key named {kv:?}; v3 writes \
                 Query(`{k}`, `{v}`) (the `key=value` form is v2)"
            ),
        ));
    }
    out
}

/// The first `{name}` or `{name:...}` (mux's variable form: a name starting
/// with a letter or `_`) in `pattern`.
fn template_variable(pattern: &str) -> Option<&str> {
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let tail = &rest[open + 1..];
        let name_len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(tail.len());
        let starts_well = tail.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
        if starts_well
            && let Some(close) = tail.find('}')
            && close >= name_len
            && matches!(tail.as_bytes().get(name_len), Some(b'}' | b':'))
        {
            return Some(&rest[open..open + 2 + close]);
        }
        rest = tail;
    }
    None
}

/// Accepted argument counts (`expectNParameters` in matcher.go).
fn arity(func: Func) -> &'static [usize] {
    match func {
        Func::Header | Func::HeaderRegexp => &[2],
        Func::Query | Func::QueryRegexp => &[1, 2],
        _ => &[1],
    }
}

/// The matcher `func(args)` (arguments already checked non-empty).
pub(super) fn build(func: Func, args: Vec<(String, usize)>, col: usize) -> Result<Expr, RuleError> {
    let name = func.name();
    let accepted = arity(func);
    if !accepted.contains(&args.len()) {
        let expected = match accepted {
            [1] => "1 argument".to_owned(),
            [n] => format!("{n} arguments"),
            _ => "1 or 2 arguments".to_owned(),
        };
        // Several values in one matcher is how v2 rules read.
        let hint = if accepted == [1] && args.len() > 1 {
            format!(
                " (several values are the v2 syntax: set `ruleSyntax: v2` on the router, or write {name}(`a`) || {name}(`b`))"
            )
        } else {
            String::new()
        };
        return Err(RuleError::new(
            col,
            format!("{name} expects {expected}, got {}{hint}", args.len()),
        ));
    }
    let (a0, c0) = (&args[0].0, args[0].1);
    let arg1 = args.get(1);
    let ascii = |what: &str| -> Result<(), RuleError> {
        if a0.is_ascii() {
            Ok(())
        } else {
            Err(RuleError::new(
                c0,
                format!("{what} must be ASCII (use the punycode form)"),
            ))
        }
    };
    let matcher = match func {
        Func::Host if a0 == "*" => Matcher::HostAny,
        Func::Host => {
            ascii("Host")?;
            Matcher::Host(a0.to_ascii_lowercase().into())
        }
        Func::HostRegexp => {
            ascii("HostRegexp")?;
            let re = regex(a0, c0)?;
            let matches_empty = re.is_match_str("");
            Matcher::HostRegexp { re, matches_empty }
        }
        Func::Path | Func::PathPrefix => {
            if !a0.starts_with('/') {
                return Err(RuleError::new(c0, format!("{name} must start with \"/\"")));
            }
            if func == Func::Path {
                Matcher::Path(a0.as_str().into())
            } else {
                Matcher::PathPrefix(a0.as_str().into())
            }
        }
        Func::PathRegexp => Matcher::PathRegexp(regex(a0, c0)?),
        Func::Method => Matcher::Method(a0.to_ascii_uppercase().into()),
        Func::Header | Func::HeaderRegexp => {
            let header = header_name(a0);
            let (v, c1) = arg1.map(|(v, c)| (v.as_str(), *c)).unwrap_or(("", col));
            if func == Func::Header {
                Matcher::Header {
                    name: header,
                    value: v.into(),
                }
            } else {
                Matcher::HeaderRegexp {
                    name: header,
                    re: regex(v, c1)?,
                }
            }
        }
        Func::Query | Func::QueryRegexp => match arg1 {
            Some((v, c1)) if func == Func::QueryRegexp => Matcher::QueryRegexp {
                key: a0.as_str().into(),
                re: regex(v, *c1)?,
            },
            // `Query(key)` and one-argument `QueryRegexp(key)` match a key
            // present with an empty value.
            _ => Matcher::Query {
                key: a0.as_str().into(),
                value: arg1.map(|(v, _)| v.as_str()).unwrap_or("").into(),
            },
        },
        Func::ClientIp => client_ips(name, &args)?,
        // `syntax::resolve` never returns these for v3.
        Func::HostHeader | Func::Headers | Func::HeadersRegexp => {
            return Err(RuleError::new(
                col,
                format!("unsupported function \"{name}\""),
            ));
        }
    };
    Ok(Expr::Leaf(matcher))
}
