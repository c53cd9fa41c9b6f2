//! Format layer: turns YAML (serde-saphyr) or TOML (toml) text into one
//! generic, position-annotated [`Node`] tree, so the typed decoding
//! (`decode`) can look keys up case-insensitively (as Traefik's paerser
//! does) and point every diagnostic at a line and column. A key/value
//! provider can build the same tree.
//!
//! Must not interpret Traefik keys: no defaults, no validation beyond syntax.

use std::fmt;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use super::error::ConfigError;

/// The syntax of a configuration file, chosen by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.yml` / `.yaml`
    Yaml,
    /// `.toml`
    Toml,
}

impl Format {
    /// The format for `path`'s extension (case-insensitive), or `None` when
    /// the extension is neither YAML nor TOML.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "yml" | "yaml" => Some(Format::Yaml),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }
}

/// A 1-based line and column (in characters); 0 means unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    pub(crate) line: u32,
    pub(crate) column: u32,
}

/// What a scalar looked like in the file, before any Traefik typing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScalarKind {
    String,
    Integer,
    Float,
    Bool,
}

/// A map key as written, with the position of its first character.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    pub(crate) name: String,
    pub(crate) pos: Pos,
}

/// One value of the tree. `pos` is where the value starts; for a quoted
/// string that is its first character inside the quotes.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Node {
    pub(crate) value: Value,
    pub(crate) pos: Pos,
}

/// The shape of a [`Node`].
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) enum Value {
    /// Entries in file order (TOML tables are re-sorted by position).
    Map(Vec<(Key, Node)>),
    Seq(Vec<Node>),
    Scalar(ScalarKind, String),
    #[default]
    Null,
}

impl Value {
    /// A word for error messages: "a map", "a list", ...
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Value::Map(_) => "a map",
            Value::Seq(_) => "a list",
            Value::Scalar(ScalarKind::String, _) => "a string",
            Value::Scalar(ScalarKind::Integer, _) => "an integer",
            Value::Scalar(ScalarKind::Float, _) => "a number",
            Value::Scalar(ScalarKind::Bool, _) => "a boolean",
            Value::Null => "nothing",
        }
    }
}

/// Parses `text` in `format`. An empty document is an empty map. A syntax
/// error is returned with the position the parser reports.
pub(crate) fn parse(text: &str, format: Format, file: &Path) -> Result<Node, ConfigError> {
    let node = match format {
        Format::Yaml => parse_yaml(text, file)?,
        Format::Toml => parse_toml(text, file)?,
    };
    Ok(match node.value {
        Value::Null => Node {
            value: Value::Map(Vec::new()),
            pos: Pos { line: 1, column: 1 },
        },
        _ => node,
    })
}

fn syntax_error(file: &Path, pos: Option<Pos>, what: &str, message: String) -> ConfigError {
    ConfigError {
        file: file.to_path_buf(),
        key: String::new(),
        line: pos.filter(|p| p.line > 0).map(|p| p.line),
        column: pos.filter(|p| p.line > 0).map(|p| p.column),
        message: format!("{what} syntax error: {message}"),
    }
}

// === YAML ===

/// The serde-side mirror of [`Value`]; positions come from `Spanned`.
enum YValue {
    Map(Vec<(Spanned<YValue>, Spanned<YValue>)>),
    Seq(Vec<Spanned<YValue>>),
    Scalar(ScalarKind, String),
    Null,
}

impl<'de> Deserialize<'de> for YValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(YVisitor)
    }
}

struct YVisitor;

impl<'de> Visitor<'de> for YVisitor {
    type Value = YValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<YValue, E> {
        Ok(YValue::Scalar(ScalarKind::Bool, v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<YValue, E> {
        Ok(YValue::Scalar(ScalarKind::Integer, v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<YValue, E> {
        Ok(YValue::Scalar(ScalarKind::Integer, v.to_string()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<YValue, E> {
        Ok(YValue::Scalar(ScalarKind::Integer, v.to_string()))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<YValue, E> {
        Ok(YValue::Scalar(ScalarKind::Integer, v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<YValue, E> {
        Ok(YValue::Scalar(ScalarKind::Float, v.to_string()))
    }
    fn visit_char<E: de::Error>(self, v: char) -> Result<YValue, E> {
        Ok(YValue::Scalar(ScalarKind::String, v.to_string()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<YValue, E> {
        Ok(YValue::Scalar(ScalarKind::String, v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<YValue, E> {
        Ok(YValue::Scalar(ScalarKind::String, v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<YValue, E> {
        Ok(YValue::Scalar(
            ScalarKind::String,
            String::from_utf8_lossy(v).into_owned(),
        ))
    }
    fn visit_unit<E: de::Error>(self) -> Result<YValue, E> {
        Ok(YValue::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<YValue, E> {
        Ok(YValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<YValue, D::Error> {
        YValue::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<YValue, D::Error> {
        YValue::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<YValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<YValue>>()? {
            items.push(item);
        }
        Ok(YValue::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<YValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<YValue>>()? {
            if matches!(key.value, YValue::Map(_) | YValue::Seq(_)) {
                return Err(de::Error::custom("a mapping key must be a scalar"));
            }
            let value = map.next_value::<Spanned<YValue>>()?;
            entries.push((key, value));
        }
        Ok(YValue::Map(entries))
    }
}

fn parse_yaml(text: &str, file: &Path) -> Result<Node, ConfigError> {
    if yaml_is_empty(text) {
        return Ok(Node {
            value: Value::Null,
            pos: Pos { line: 1, column: 1 },
        });
    }
    // Close to Go's yaml.v3 as Traefik uses it: YAML 1.2 booleans only
    // (`on`, `y` stay strings), `0755` and `1_000` stay strings.
    let options = serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
        with_snippet: false,
    };
    match serde_saphyr::from_str_with_options::<Spanned<YValue>>(text, options) {
        Ok(root) => Ok(convert_yaml(root, text)),
        Err(err) => {
            let pos = err.location().map(|l| Pos {
                line: clamp(l.line()),
                column: clamp(l.column()),
            });
            let inner = err.without_snippet();
            let message = clean_yaml_message(&inner.to_string());
            Err(syntax_error(file, pos, "YAML", message))
        }
    }
}

/// Only comments, blank lines and document markers: Traefik treats such a
/// file as an empty configuration.
fn yaml_is_empty(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}

/// serde-saphyr appends developer hints (which API to call) and sometimes
/// " at line X, column Y" to messages; our prefix already has the position.
fn clean_yaml_message(msg: &str) -> String {
    let mut first = msg.lines().next().unwrap_or("").trim();
    for hint in [", set DuplicateKeyPolicy", "; use from_str_multiple"] {
        if let Some(idx) = first.find(hint) {
            first = &first[..idx];
        }
    }
    for marker in [" at line ", " at ", ", line "] {
        if let Some(idx) = first.rfind(marker) {
            let tail = &first[idx + marker.len()..];
            if tail.starts_with(|c: char| c.is_ascii_digit())
                || tail.starts_with("line")
                || tail.starts_with("column")
            {
                return first[..idx].trim_end_matches([':', ',']).to_owned();
            }
        }
    }
    first.to_owned()
}

fn clamp(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn convert_yaml(spanned: Spanned<YValue>, text: &str) -> Node {
    let pos = yaml_pos(&spanned.referenced, text);
    let value = match spanned.value {
        YValue::Null => Value::Null,
        YValue::Scalar(kind, s) => Value::Scalar(kind, s),
        YValue::Seq(items) => {
            Value::Seq(items.into_iter().map(|i| convert_yaml(i, text)).collect())
        }
        YValue::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let key_pos = yaml_pos(&k.referenced, text);
                    let name = match k.value {
                        YValue::Scalar(_, s) => s,
                        _ => String::new(),
                    };
                    (Key { name, pos: key_pos }, convert_yaml(v, text))
                })
                .collect(),
        ),
    };
    Node { value, pos }
}

/// Position of a YAML node; moved past an opening quote so a quoted value
/// points at its first character.
fn yaml_pos(loc: &Location, text: &str) -> Pos {
    let mut pos = Pos {
        line: clamp(loc.line()),
        column: clamp(loc.column()),
    };
    let byte = loc
        .span()
        .byte_offset()
        .and_then(|o| usize::try_from(o).ok());
    if let Some(b) = byte
        && matches!(text.as_bytes().get(b), Some(b'"' | b'\''))
        && pos.line > 0
    {
        pos.column += 1;
    }
    pos
}

// === TOML ===

fn parse_toml(text: &str, file: &Path) -> Result<Node, ConfigError> {
    let index = LineIndex::new(text);
    match toml::de::DeTable::parse(text) {
        Ok(root) => {
            let span = root.span();
            let table = root.into_inner();
            Ok(Node {
                value: convert_toml_table(table, text, &index),
                pos: index.pos(text, span.start),
            })
        }
        Err(err) => {
            let pos = err.span().map(|s| index.pos(text, s.start));
            let message = err.message().trim().to_owned();
            Err(syntax_error(file, pos, "TOML", message))
        }
    }
}

fn convert_toml_table(table: toml::de::DeTable<'_>, text: &str, index: &LineIndex) -> Value {
    let mut entries: Vec<(usize, Key, Node)> = table
        .into_iter()
        .map(|(k, v)| {
            let kspan = k.span();
            let key = Key {
                name: k.into_inner().into_owned(),
                pos: index.pos(text, kspan.start),
            };
            (kspan.start, key, convert_toml(v, text, index))
        })
        .collect();
    // The map is ordered by key name; file order reads better in errors.
    entries.sort_by_key(|(start, _, _)| *start);
    Value::Map(entries.into_iter().map(|(_, k, v)| (k, v)).collect())
}

fn convert_toml(
    value: toml::Spanned<toml::de::DeValue<'_>>,
    text: &str,
    index: &LineIndex,
) -> Node {
    use toml::de::DeValue;
    let span = value.span();
    let mut start = span.start;
    let value = match value.into_inner() {
        DeValue::String(s) => {
            // Point inside the quotes: skip `"`, `'`, `"""` or `'''`.
            let rest = text.get(start..).unwrap_or("");
            if rest.starts_with("\"\"\"") || rest.starts_with("'''") {
                start += 3;
            } else if rest.starts_with('"') || rest.starts_with('\'') {
                start += 1;
            }
            Value::Scalar(ScalarKind::String, s.into_owned())
        }
        DeValue::Integer(i) => {
            let text = i64::from_str_radix(i.as_str(), i.radix())
                .map(|n| n.to_string())
                .unwrap_or_else(|_| i.to_string());
            Value::Scalar(ScalarKind::Integer, text)
        }
        DeValue::Float(f) => Value::Scalar(ScalarKind::Float, f.as_str().to_owned()),
        DeValue::Boolean(b) => Value::Scalar(ScalarKind::Bool, b.to_string()),
        DeValue::Datetime(d) => Value::Scalar(ScalarKind::String, d.to_string()),
        DeValue::Array(items) => Value::Seq(
            items
                .into_iter()
                .map(|i| convert_toml(i, text, index))
                .collect(),
        ),
        DeValue::Table(t) => convert_toml_table(t, text, index),
    };
    Node {
        value,
        pos: index.pos(text, start),
    }
}

/// Byte offset → 1-based line and character column.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    fn pos(&self, text: &str, offset: usize) -> Pos {
        let offset = offset.min(text.len());
        let line = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let line_start = self.starts[line];
        let column = text
            .get(line_start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(offset - line_start);
        Pos {
            line: u32::try_from(line + 1).unwrap_or(u32::MAX),
            column: u32::try_from(column + 1).unwrap_or(u32::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str, f: Format) -> Node {
        parse(text, f, Path::new("t")).unwrap()
    }

    fn entries(n: &Node) -> &[(Key, Node)] {
        match &n.value {
            Value::Map(e) => e,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn yaml_positions_and_kinds() {
        let n = p(
            "a:\n  b: \"x y\"\n  c: 10\n  d: 1.5\n  e: true\n  f:\n",
            Format::Yaml,
        );
        let a = &entries(&n)[0];
        assert_eq!(a.0.pos, Pos { line: 1, column: 1 });
        let inner = entries(&a.1);
        assert_eq!(inner[0].0.name, "b");
        assert_eq!(inner[0].0.pos, Pos { line: 2, column: 3 });
        // Inside the quotes.
        assert_eq!(inner[0].1.pos, Pos { line: 2, column: 7 });
        assert_eq!(
            inner[0].1.value,
            Value::Scalar(ScalarKind::String, "x y".into())
        );
        assert_eq!(
            inner[1].1.value,
            Value::Scalar(ScalarKind::Integer, "10".into())
        );
        assert_eq!(inner[1].1.pos, Pos { line: 3, column: 6 });
        assert_eq!(
            inner[2].1.value,
            Value::Scalar(ScalarKind::Float, "1.5".into())
        );
        assert_eq!(
            inner[3].1.value,
            Value::Scalar(ScalarKind::Bool, "true".into())
        );
        assert_eq!(inner[4].1.value, Value::Null);
        let n = p("y: on\nz: 0755\n", Format::Yaml);
        assert_eq!(entries(&n)[0].0.name, "y");
        assert_eq!(
            entries(&n)[0].1.value,
            Value::Scalar(ScalarKind::String, "on".into())
        );
        assert_eq!(
            entries(&n)[1].1.value,
            Value::Scalar(ScalarKind::String, "0755".into())
        );
    }

    #[test]
    fn toml_positions_and_kinds() {
        let n = p("[a]\nb = \"x y\"\nc = 0x10\nd = '''q'''\n", Format::Toml);
        let a = &entries(&n)[0];
        let inner = entries(&a.1);
        assert_eq!(inner[0].0.pos, Pos { line: 2, column: 1 });
        assert_eq!(inner[0].1.pos, Pos { line: 2, column: 6 });
        assert_eq!(
            inner[1].1.value,
            Value::Scalar(ScalarKind::Integer, "16".into())
        );
        assert_eq!(inner[2].1.pos, Pos { line: 4, column: 8 });
    }

    #[test]
    fn empty_documents_are_empty_maps() {
        for (t, f) in [
            ("", Format::Yaml),
            ("# c\n---\n", Format::Yaml),
            ("", Format::Toml),
            ("# c\n", Format::Toml),
        ] {
            assert_eq!(p(t, f).value, Value::Map(Vec::new()));
        }
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("a: 1\nb: [\n", Format::Yaml, Path::new("x.yml")).unwrap_err();
        assert!(e.line.is_some(), "{e}");
        assert!(e.message.starts_with("YAML syntax error"), "{e}");
        let e = parse("a = 1\na = 2\n", Format::Toml, Path::new("x.toml")).unwrap_err();
        assert_eq!((e.line, e.column), (Some(2), Some(1)));
        assert_eq!(
            e.to_string(),
            "x.toml:2:1: TOML syntax error: duplicate key"
        );
        let e = parse("a: 1\na: 2\n", Format::Yaml, Path::new("x.yml")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.yml:2:1: YAML syntax error: duplicate mapping key: a"
        );
    }

    #[test]
    fn yaml_anchors_and_merges() {
        let n = p("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n", Format::Yaml);
        let other = &entries(&n)[1].1;
        let names: Vec<&str> = entries(other)
            .iter()
            .map(|(k, _)| k.name.as_str())
            .collect();
        assert!(names.contains(&"x") && names.contains(&"y"), "{names:?}");
    }
}
