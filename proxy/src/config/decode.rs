//! Decoding helpers shared by the static and dynamic models: a context that
//! collects every error and warning, case-insensitive key lookup against a
//! table of known keys (Traefik's paerser ignores key case), and scalar
//! conversions that name the offending key.
//!
//! Must not know any particular Traefik key; the models pass their specs in.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::duration::parse_duration;
use super::error::{ConfigError, ConfigWarning, Origin};
use super::node::{Key, Node, Pos, ScalarKind, Value};

/// How a known key is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Support {
    /// Decoded by the model.
    Yes,
    /// Accepted and ignored without a word (e.g. `global.checkNewVersion`).
    Silent,
    /// Accepted, ignored, with a warning; the text says what that means.
    Warn(&'static str),
    /// Refused: ignoring it would serve traffic differently or less safely
    /// than asked. The text says why.
    Error(&'static str),
}

/// Known keys of one map level, spelled as Traefik documents them.
pub(crate) type Spec = &'static [(&'static str, Support)];

/// Collects diagnostics for one file.
pub(crate) struct Ctx {
    pub(crate) file: PathBuf,
    pub(crate) errors: Vec<ConfigError>,
    pub(crate) warnings: Vec<ConfigWarning>,
}

impl Ctx {
    pub(crate) fn new(file: &Path) -> Self {
        Ctx {
            file: file.to_path_buf(),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub(crate) fn error(&mut self, key: &str, pos: Pos, message: impl Into<String>) {
        let (line, column) = split_pos(pos);
        self.errors.push(ConfigError {
            file: self.file.clone(),
            key: key.to_owned(),
            line,
            column,
            message: message.into(),
        });
    }

    pub(crate) fn warn(&mut self, key: &str, pos: Pos, message: impl Into<String>) {
        let (line, column) = split_pos(pos);
        self.warnings.push(ConfigWarning {
            file: self.file.clone(),
            key: key.to_owned(),
            line,
            column,
            message: message.into(),
        });
    }

    pub(crate) fn origin(&self, pos: Pos) -> Origin {
        Origin {
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
        }
    }
}

fn split_pos(pos: Pos) -> (Option<u32>, Option<u32>) {
    if pos.line == 0 {
        (None, None)
    } else {
        (Some(pos.line), Some(pos.column))
    }
}

/// `parent.child` key path; sequence items use `[i]`.
pub(crate) fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// A key/value pair found in a [`Table`], with its full key path.
#[derive(Clone)]
pub(crate) struct Field<'n> {
    pub(crate) key: &'n Key,
    /// Borrowed from the tree, or owned when two spellings of one key
    /// (`entryPoints` and `entrypoints`) were merged.
    pub(crate) node: Cow<'n, Node>,
    pub(crate) path: String,
}

/// A map checked against a [`Spec`]: keys resolved to their canonical
/// spelling, unknown and unsupported keys already reported.
pub(crate) struct Table<'n> {
    entries: Vec<(&'static str, Field<'n>)>,
    /// Keys reported with a warning: invisible to `get`.
    ignored: Vec<(&'static str, Field<'n>)>,
}

impl<'n> Table<'n> {
    /// The supported key `canonical` (as spelled in the spec), if present.
    pub(crate) fn get(&self, canonical: &str) -> Option<&Field<'n>> {
        self.entries
            .iter()
            .find(|(c, _)| *c == canonical)
            .map(|(_, f)| f)
    }

    /// Like [`Table::get`] but also finds keys the spec warns about or
    /// refuses (to read `api.insecure` of an ignored `api`, say).
    pub(crate) fn get_any(&self, canonical: &str) -> Option<&Field<'n>> {
        self.get(canonical).or_else(|| {
            self.ignored
                .iter()
                .find(|(c, _)| *c == canonical)
                .map(|(_, f)| f)
        })
    }
}

/// Checks `node` is a map (null counts as empty) and resolves its keys
/// against `spec`. Unknown keys are errors with a did-you-mean; keys marked
/// `Warn`/`Error` are reported here. Returns `None` if `node` is no map.
pub(crate) fn table<'n>(
    ctx: &mut Ctx,
    path: &str,
    node: &'n Node,
    spec: Spec,
) -> Option<Table<'n>> {
    let entries = map_entries(ctx, path, node)?;
    let mut out: Vec<(&'static str, Field<'n>)> = Vec::new();
    let mut ignored: Vec<(&'static str, Field<'n>)> = Vec::new();
    for (key, value) in entries {
        let kpath = child(path, &key.name);
        let lower = key.name.to_ascii_lowercase();
        let Some((canonical, support)) = spec
            .iter()
            .find(|(name, _)| name.to_ascii_lowercase() == lower)
        else {
            let hint = suggest(&key.name, spec.iter().map(|(n, _)| *n));
            ctx.error(&kpath, key.pos, format!("unknown key {:?}{hint}", key.name));
            continue;
        };
        if let Some((_, first)) = out
            .iter_mut()
            .chain(ignored.iter_mut())
            .find(|(c, _)| c == canonical)
        {
            // paerser fills one field from every spelling of its key, so
            // two maps merge; two scalars would silently overwrite.
            if let (Value::Map(a), Value::Map(b)) = (&first.node.value, &value.value) {
                let mut merged = a.clone();
                merged.extend(b.iter().cloned());
                first.node = Cow::Owned(Node {
                    value: Value::Map(merged),
                    pos: first.node.pos,
                });
                continue;
            }
            ctx.error(
                &kpath,
                key.pos,
                format!(
                    "duplicate key {:?} (keys are case-insensitive; first set as {:?} on line {})",
                    key.name, first.key.name, first.key.pos.line
                ),
            );
            continue;
        }
        let field = Field {
            key,
            node: Cow::Borrowed(value),
            path: kpath.clone(),
        };
        match support {
            Support::Yes => {}
            Support::Silent => {
                ignored.push((canonical, field));
                continue;
            }
            Support::Warn(why) => {
                let msg = if why.is_empty() {
                    "not supported yet; ignored".to_owned()
                } else {
                    format!("not supported yet; ignored ({why})")
                };
                ctx.warn(&kpath, key.pos, msg);
                ignored.push((canonical, field));
                continue;
            }
            Support::Error(why) => {
                let msg = if why.is_empty() {
                    "not supported yet".to_owned()
                } else {
                    format!("not supported yet: {why}")
                };
                ctx.error(&kpath, key.pos, msg);
                continue;
            }
        }
        out.push((canonical, field));
    }
    Some(Table {
        entries: out,
        ignored,
    })
}

/// Entries of a map node (null is an empty map); an error otherwise.
pub(crate) fn map_entries<'n>(
    ctx: &mut Ctx,
    path: &str,
    node: &'n Node,
) -> Option<Vec<(&'n Key, &'n Node)>> {
    match &node.value {
        Value::Map(entries) => Some(entries.iter().map(|(k, v)| (k, v)).collect()),
        Value::Null => Some(Vec::new()),
        other => {
            ctx.error(
                path,
                node.pos,
                format!("expected a map, found {}", other.describe()),
            );
            None
        }
    }
}

/// Entries of a map of user-chosen names (routers, services,
/// entrypoints...). Names are case-sensitive; the same name twice can only
/// come from merging two spellings of the parent key, and two maps under
/// it merge too.
pub(crate) fn named_entries<'n>(
    ctx: &mut Ctx,
    path: &str,
    node: &'n Node,
) -> Option<Vec<(&'n Key, Cow<'n, Node>)>> {
    let mut out: Vec<(&'n Key, Cow<'n, Node>)> = Vec::new();
    for (key, value) in map_entries(ctx, path, node)? {
        match out.iter_mut().find(|(k, _)| k.name == key.name) {
            Some((_, first)) => {
                if let (Value::Map(a), Value::Map(b)) = (&first.value, &value.value) {
                    let mut merged = a.clone();
                    merged.extend(b.iter().cloned());
                    *first = Cow::Owned(Node {
                        value: Value::Map(merged),
                        pos: first.pos,
                    });
                } else {
                    ctx.error(
                        &child(path, &key.name),
                        key.pos,
                        format!("{:?} is defined twice", key.name),
                    );
                }
            }
            None => out.push((key, Cow::Borrowed(value))),
        }
    }
    Some(out)
}

/// ` (did you mean "x"?)` for the closest candidate within edit distance 2
/// (case-insensitive), or an empty string.
pub(crate) fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let lower = name.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for cand in candidates {
        let d = levenshtein(&lower, &cand.to_lowercase());
        if d <= 2 && d < lower.chars().count().max(1) && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, cand));
        }
    }
    match best {
        Some((_, c)) => format!(" (did you mean {c:?}?)"),
        None => String::new(),
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

// === scalars ===

/// Scalar text; numbers and booleans count as their text (paerser reads
/// every leaf as a string). Null is the empty string.
pub(crate) fn string(ctx: &mut Ctx, f: &Field<'_>) -> Option<String> {
    match &f.node.value {
        Value::Scalar(_, s) => Some(s.clone()),
        Value::Null => Some(String::new()),
        other => {
            ctx.error(
                &f.path,
                f.node.pos,
                format!("expected a string, found {}", other.describe()),
            );
            None
        }
    }
}

/// A boolean, as Go's `strconv.ParseBool` reads it.
pub(crate) fn boolean(ctx: &mut Ctx, f: &Field<'_>) -> Option<bool> {
    let text = scalar_text(ctx, f, "a boolean")?;
    match text.as_str() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => {
            ctx.error(
                &f.path,
                f.node.pos,
                format!("expected a boolean (true or false), found {text:?}"),
            );
            None
        }
    }
}

/// A non-negative integer that fits `max`.
pub(crate) fn uint(ctx: &mut Ctx, f: &Field<'_>, max: u64) -> Option<u64> {
    let text = scalar_text(ctx, f, "an integer")?;
    let t = text.trim();
    match t.parse::<u64>() {
        Ok(n) if n <= max => Some(n),
        Ok(_) => {
            ctx.error(
                &f.path,
                f.node.pos,
                format!("{t} is too large (maximum {max})"),
            );
            None
        }
        Err(_) if t.parse::<i64>().is_ok() => {
            ctx.error(
                &f.path,
                f.node.pos,
                format!("must not be negative, found {t}"),
            );
            None
        }
        Err(_) => {
            ctx.error(
                &f.path,
                f.node.pos,
                format!("expected an integer, found {text:?}"),
            );
            None
        }
    }
}

/// A finite floating-point number.
pub(crate) fn float(ctx: &mut Ctx, f: &Field<'_>) -> Option<f64> {
    let text = scalar_text(ctx, f, "a number")?;
    match text.trim().parse::<f64>() {
        Ok(n) if n.is_finite() => Some(n),
        _ => {
            ctx.error(
                &f.path,
                f.node.pos,
                format!("expected a number, found {text:?}"),
            );
            None
        }
    }
}

/// A duration: Go syntax ("1m30s") or an integer number of seconds.
pub(crate) fn duration(ctx: &mut Ctx, f: &Field<'_>) -> Option<Duration> {
    let text = scalar_text(ctx, f, "a duration")?;
    if matches!(f.node.value, Value::Scalar(ScalarKind::Float, _)) {
        ctx.error(
            &f.path,
            f.node.pos,
            format!("invalid duration {text}: a number is a count of whole seconds; write e.g. \"1500ms\""),
        );
        return None;
    }
    match parse_duration(&text) {
        Ok(d) => Some(d),
        Err(e) => {
            ctx.error(&f.path, f.node.pos, e);
            None
        }
    }
}

/// A list of strings: a sequence of scalars, or one comma-separated string
/// (paerser accepts both).
pub(crate) fn string_list(ctx: &mut Ctx, f: &Field<'_>) -> Option<Vec<(String, Pos)>> {
    match &f.node.value {
        Value::Seq(items) => {
            let mut out = Vec::new();
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                match &item.value {
                    Value::Scalar(_, s) => out.push((s.clone(), item.pos)),
                    other => {
                        ctx.error(
                            &format!("{}[{i}]", f.path),
                            item.pos,
                            format!("expected a string, found {}", other.describe()),
                        );
                        ok = false;
                    }
                }
            }
            ok.then_some(out)
        }
        Value::Scalar(_, s) => Some(
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| (p.to_owned(), f.node.pos))
                .collect(),
        ),
        Value::Null => Some(Vec::new()),
        Value::Map(_) => {
            ctx.error(&f.path, f.node.pos, "expected a list, found a map");
            None
        }
    }
}

/// Whether an optional section (`ping`, `accessLog`, ...) is switched on:
/// a map or an empty value enables it, `true`/`false` say so directly.
/// Returns the section's node when it should be decoded as a map.
pub(crate) fn section_enabled<'a>(ctx: &mut Ctx, f: &'a Field<'_>) -> (bool, Option<&'a Node>) {
    match &f.node.value {
        Value::Map(_) | Value::Null => (true, Some(&*f.node)),
        Value::Scalar(..) => (boolean(ctx, f).unwrap_or(false), None),
        Value::Seq(_) => {
            ctx.error(&f.path, f.node.pos, "expected a map, found a list");
            (false, None)
        }
    }
}

fn scalar_text(ctx: &mut Ctx, f: &Field<'_>, what: &str) -> Option<String> {
    match &f.node.value {
        Value::Scalar(_, s) => Some(s.clone()),
        other => {
            ctx.error(
                &f.path,
                f.node.pos,
                format!("expected {what}, found {}", other.describe()),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("servce", ["service", "rule"]),
            " (did you mean \"service\"?)"
        );
        assert_eq!(
            suggest("RULE", ["service", "rule"]),
            " (did you mean \"rule\"?)"
        );
        assert_eq!(suggest("zzzzzz", ["service", "rule"]), "");
        assert_eq!(suggest("ab", ["xy"]), "");
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }
}
