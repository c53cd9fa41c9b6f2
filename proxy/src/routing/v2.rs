//! Builds the matchers of the v2 syntax, as Traefik 3.7 keeps it for
//! `ruleSyntax: v2` (`pkg/muxer/http/matcher_v2.go`), which delegates to
//! gorilla/mux (Traefik's fork, `containous/mux`):
//!
//! - every matcher takes several values: `Host`, `HostHeader`, `HostRegexp`,
//!   `Path`, `PathPrefix`, `Method` and `ClientIP` match any of them;
//!   `Headers(k, v, ...)`, `HeadersRegexp(k, re, ...)` and `Query(k=v, ...)`
//!   need all of them (a key repeated as written: the last value wins);
//! - `HostRegexp`, `Path`, `PathPrefix` and `Query` are mux templates: text
//!   with `{name}` or `{name:regex}` variables, turned into an anchored Go
//!   regex exactly as `newRouteRegexp` does (the text around variables
//!   quoted, `[^.]+` / `[^/]+` / `.*` as the default variable patterns, hosts
//!   case-insensitive, `PathPrefix` without the final `$`);
//! - `HostRegexp` reads the raw `Host` (port removed, not lower-cased);
//!   `Query` reads only the first value of its key.
//!
//! A template without variables is compiled to the plain matcher it is
//! equivalent to (`Path(`/a`)` is an exact path, `Query(`k=v`)` a comparison
//! of the first value), so the index and the counts treat it like v3.
//!
//! Control plane only: runs when a rule is compiled.

use super::goregex;
use super::matcher::{Expr, Matcher, client_ips, header_name, regex};
use super::parser::RuleError;
use super::syntax::Func;

type Args = Vec<(String, usize)>;

/// The matcher `func(args)` (arguments already checked: at least one, none
/// empty).
pub(super) fn build(func: Func, args: Args, col: usize) -> Result<Expr, RuleError> {
    let name = func.name();
    let leaves = match func {
        Func::Host | Func::HostHeader => args
            .iter()
            .map(|(h, c)| {
                ascii(name, h, *c)?;
                Ok(Matcher::HostV2(h.to_ascii_lowercase().into()))
            })
            .collect::<Result<Vec<_>, RuleError>>()?,
        Func::HostRegexp => args
            .iter()
            .map(|(h, c)| {
                ascii(name, h, *c)?;
                host_template(h, *c)
            })
            .collect::<Result<Vec<_>, RuleError>>()?,
        Func::Path | Func::PathPrefix => args
            .iter()
            .map(|(p, c)| path_template(p, *c, func == Func::PathPrefix))
            .collect::<Result<Vec<_>, RuleError>>()?,
        Func::Method => args
            .iter()
            .map(|(m, _)| Matcher::Method(m.to_ascii_uppercase().into()))
            .collect(),
        Func::ClientIp => vec![client_ips(name, &args)?],
        Func::Headers | Func::HeadersRegexp => {
            return Ok(all(headers(func, &args, col)?));
        }
        Func::Query => return Ok(all(queries(&args, col)?)),
        Func::Header | Func::HeaderRegexp | Func::PathRegexp | Func::QueryRegexp => {
            // `syntax::resolve` never returns these for v2.
            return Err(RuleError::new(
                col,
                format!("unsupported function \"{name}\""),
            ));
        }
    };
    Ok(any(leaves))
}

fn any(mut leaves: Vec<Matcher>) -> Expr {
    if leaves.len() == 1 {
        Expr::Leaf(leaves.pop().unwrap_or_else(|| unreachable!()))
    } else {
        Expr::Or(leaves.into_iter().map(Expr::Leaf).collect())
    }
}

fn all(mut leaves: Vec<Matcher>) -> Expr {
    if leaves.len() == 1 {
        Expr::Leaf(leaves.pop().unwrap_or_else(|| unreachable!()))
    } else {
        Expr::And(leaves.into_iter().map(Expr::Leaf).collect())
    }
}

fn ascii(name: &str, value: &str, col: usize) -> Result<(), RuleError> {
    if value.is_ascii() {
        return Ok(());
    }
    Err(RuleError::new(
        col,
        format!(
            "invalid value {value:?} for {name}: non-ASCII characters are not allowed (use the punycode form)"
        ),
    ))
}

/// `mux: number of parameters must be multiple of 2`.
fn pairs<'a>(values: &'a [&'a str], col: usize) -> Result<Vec<(&'a str, &'a str)>, RuleError> {
    if !values.len().is_multiple_of(2) {
        return Err(RuleError::new(
            col,
            format!(
                "mux: number of parameters must be multiple of 2, got [{}]",
                values.join(" ")
            ),
        ));
    }
    Ok(values.chunks(2).map(|p| (p[0], p[1])).collect())
}

/// `Headers` / `HeadersRegexp`: key-value pairs, all required; a key written
/// twice keeps its last value (a Go map keyed by the key as written), but
/// every regex must compile.
fn headers(func: Func, args: &Args, col: usize) -> Result<Vec<Matcher>, RuleError> {
    let values: Vec<&str> = args.iter().map(|(a, _)| a.as_str()).collect();
    let mut out: Vec<(&str, Matcher)> = Vec::new();
    for (i, (key, value)) in pairs(&values, col)?.into_iter().enumerate() {
        let name = header_name(key);
        let matcher = if func == Func::Headers {
            Matcher::Header {
                name,
                value: value.into(),
            }
        } else {
            Matcher::HeaderRegexp {
                name,
                re: regex(value, args[2 * i + 1].1)?,
            }
        };
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = matcher,
            None => out.push((key, matcher)),
        }
    }
    Ok(out.into_iter().map(|(_, m)| m).collect())
}

/// `Query(`k=v`, ...)`: every value split at its first `=`, the pieces taken
/// two by two as key and value (so `Query(`a`, `b`)` is `a=b`), each pair a
/// mux query template; all must match.
fn queries(args: &Args, col: usize) -> Result<Vec<Matcher>, RuleError> {
    let mut values: Vec<&str> = Vec::new();
    for (a, _) in args {
        match a.split_once('=') {
            Some((k, v)) => values.extend([k, v]),
            None => values.push(a),
        }
    }
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (key, value) in pairs(&values, col)? {
        let template = format!("{key}={value}");
        let t = Template::parse(&template, Kind::Query).map_err(|e| RuleError::new(col, e))?;
        // Variables are unique across the queries of one mux route.
        for v in &t.vars {
            if seen.contains(v) {
                return Err(RuleError::new(
                    col,
                    format!("mux: duplicated route variable {v:?}"),
                ));
            }
        }
        seen.extend(t.vars.iter().cloned());
        out.push(match t.regex {
            None => Matcher::QueryFirst {
                key: key.into(),
                value: (!value.is_empty()).then(|| value.into()),
            },
            Some(pattern) => Matcher::QueryTemplate {
                key: key.into(),
                re: regex(&pattern, col)?,
            },
        });
    }
    Ok(out)
}

fn host_template(tpl: &str, col: usize) -> Result<Matcher, RuleError> {
    let t = Template::parse(tpl, Kind::Host).map_err(|e| RuleError::new(col, e))?;
    Ok(match t.regex {
        None => Matcher::HostFold(tpl.into()),
        Some(pattern) => Matcher::HostTemplate {
            re: regex(&pattern, col)?,
            suffix: t.host_suffix,
        },
    })
}

fn path_template(tpl: &str, col: usize, prefix: bool) -> Result<Matcher, RuleError> {
    if !tpl.starts_with('/') {
        return Err(RuleError::new(
            col,
            format!("mux: path must start with a slash, got {tpl:?}"),
        ));
    }
    let kind = if prefix { Kind::PathPrefix } else { Kind::Path };
    let t = Template::parse(tpl, kind).map_err(|e| RuleError::new(col, e))?;
    Ok(match t.regex {
        None if prefix => Matcher::PathPrefix(tpl.into()),
        None => Matcher::Path(tpl.into()),
        Some(pattern) => Matcher::PathTemplate(regex(&pattern, col)?),
    })
}

// === mux templates ===

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Host,
    Path,
    PathPrefix,
    Query,
}

/// A parsed mux template (`newRouteRegexp`).
struct Template {
    /// The Go regex of the template; `None` when it has no variables (then
    /// it is the template text itself, matched literally).
    regex: Option<String>,
    /// Variable names.
    vars: Vec<String>,
    /// For a host template `{v:re}.rest` where `re` cannot match a `.`: the
    /// wildcard-suffix index key (`.rest`, canonical).
    host_suffix: Option<Box<str>>,
}

impl Template {
    fn parse(tpl: &str, kind: Kind) -> Result<Template, String> {
        let braces = brace_indices(tpl)?;
        let default_pattern = match kind {
            Kind::Query => ".*",
            Kind::Host => "[^.]+",
            Kind::Path | Kind::PathPrefix => "[^/]+",
        };
        let mut pattern = String::from(if kind == Kind::Host { "(?i)^" } else { "^" });
        let mut vars = Vec::new();
        let mut patterns = Vec::new();
        let mut end = 0;
        for &(open, close) in &braces {
            quote_meta(&tpl[end..open], &mut pattern);
            end = close + 1;
            let inner = &tpl[open + 1..close];
            let (name, patt) = inner.split_once(':').unwrap_or((inner, default_pattern));
            if name.is_empty() || patt.is_empty() {
                return Err(format!(
                    "mux: missing name or pattern in {:?}",
                    &tpl[open..=close]
                ));
            }
            // mux compiles each variable's pattern on its own first.
            goregex::GoRegex::new(&format!("^{patt}$"))?;
            pattern.push_str(&format!("(?P<v{}>{patt})", vars.len()));
            vars.push(name.to_owned());
            patterns.push(patt);
        }
        if braces.is_empty() {
            return Ok(Template {
                regex: None,
                vars,
                host_suffix: None,
            });
        }
        let rest = &tpl[end..];
        quote_meta(rest, &mut pattern);
        if kind == Kind::Query && tpl.split_once('=').is_some_and(|(_, v)| v.is_empty()) {
            pattern.push_str(default_pattern);
        }
        if kind != Kind::PathPrefix {
            pattern.push('$');
        }
        let host_suffix = (kind == Kind::Host
            && braces.len() == 1
            && braces[0].0 == 0
            && rest.starts_with('.')
            && !goregex::may_match_char(patterns[0], '.'))
        .then(|| {
            rest.trim()
                .to_ascii_lowercase()
                .trim_end_matches('.')
                .into()
        });
        Ok(Template {
            regex: Some(pattern),
            vars,
            host_suffix,
        })
    }
}

/// mux's `braceIndices`: the (open, close) byte positions of each
/// first-level `{...}`; unbalanced braces are an error.
fn brace_indices(s: &str) -> Result<Vec<(usize, usize)>, String> {
    let mut level = 0i32;
    let mut start = 0;
    let mut out = Vec::new();
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'{' => {
                level += 1;
                if level == 1 {
                    start = i;
                }
            }
            b'}' => {
                level -= 1;
                if level == 0 {
                    out.push((start, i));
                } else if level < 0 {
                    return Err(format!("mux: unbalanced braces in {s:?}"));
                }
            }
            _ => {}
        }
    }
    if level != 0 {
        return Err(format!("mux: unbalanced braces in {s:?}"));
    }
    Ok(out)
}

/// Go's `regexp.QuoteMeta`.
fn quote_meta(s: &str, out: &mut String) {
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
}
