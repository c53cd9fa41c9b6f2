//! Every key Traefik 3.7 reads from a file is recognised: each path of
//! `tests/data/traefik_keys.txt` (extracted from Traefik's configuration
//! structs by `tests/data/traefik_keys.py`, `file:"-"`/`yaml:"-"` fields
//! left out) is written into a file of its kind and loaded; no error may
//! call it an unknown key. Built keys decode, the others are refused as
//! "not supported yet" (changing behaviour) or warned about (harmless).
//!
//! Regenerate the list from a Traefik checkout with
//! `python3 proxy/tests/data/traefik_keys.py /path/to/traefik > proxy/tests/data/traefik_keys.txt`.

use std::path::Path;

use proxy::config::{Format, parse_dynamic, parse_static};
use proxy::routing::RuleSyntax;

const KEYS: &str = include_str!("data/traefik_keys.txt");

/// A JSON (so YAML) document setting `path` to `{}`: `<name>` is a
/// user-chosen name, `[]` a list of one item.
fn document(path: &str) -> String {
    let mut open = String::new();
    let mut close = String::new();
    for seg in path.split('.') {
        let (key, list) = match seg.strip_suffix("[]") {
            Some(k) => (k, true),
            None => (seg, false),
        };
        let key = if key == "<name>" { "x" } else { key };
        open += &format!("{{{key:?}: ");
        close.insert(0, '}');
        if list {
            open += "[";
            close.insert(0, ']');
        }
    }
    format!("{open}{{}}{close}\n")
}

/// The messages of loading `path`'s document, errors and warnings.
fn messages(kind: &str, path: &str) -> Vec<String> {
    let text = document(path);
    let file = Path::new("keys.yml");
    let (errors, warnings) = match kind {
        "static" => match parse_static(&text, Format::Yaml, file) {
            Ok((_, w)) => (Vec::new(), w),
            Err(e) => (e.0, Vec::new()),
        },
        _ => match parse_dynamic(
            &text,
            Format::Yaml,
            file,
            &["web".to_owned()],
            RuleSyntax::V3,
        ) {
            Ok((_, w)) => (Vec::new(), w),
            Err(e) => (e.0, Vec::new()),
        },
    };
    errors
        .iter()
        .map(|e| e.to_string())
        .chain(warnings.iter().map(|w| w.to_string()))
        .collect()
}

#[test]
fn every_key_traefik_reads_from_a_file_is_recognised() {
    let mut unknown = Vec::new();
    let (mut total, mut refused, mut warned) = (0, 0, 0);
    for line in KEYS.lines().filter(|l| !l.trim().is_empty()) {
        let (kind, path) = line.split_once(' ').expect("kind and path");
        total += 1;
        let msgs = messages(kind, path);
        if let Some(m) = msgs.iter().find(|m| m.contains("unknown key")) {
            unknown.push(format!("{kind} {path}: {m}"));
        } else if msgs
            .iter()
            .any(|m| m.contains("not supported yet") && !m.contains("ignored"))
        {
            refused += 1;
        } else if msgs.iter().any(|m| m.contains("ignored")) {
            warned += 1;
        }
    }
    eprintln!(
        "{total} keys: {} unknown, {refused} refused as not supported yet (or under such a key), {warned} warned and ignored, the rest decoded",
        unknown.len()
    );
    assert!(
        unknown.is_empty(),
        "{} of {total} keys Traefik reads are called unknown:\n{}",
        unknown.len(),
        unknown.join("\n")
    );
}

#[test]
fn a_key_traefik_does_not_have_is_still_unknown() {
    let msgs = messages("dynamic", "http.routers.<name>.rulle");
    assert!(
        msgs.iter()
            .any(|m| m.contains("unknown key \"rulle\" (did you mean \"rule\"?)")),
        "{msgs:?}"
    );
}
