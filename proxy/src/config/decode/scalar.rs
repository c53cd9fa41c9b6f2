//! Traefik's scalar rules: paerser reads every leaf as a string, so a
//! boolean may be `"true"` or `1`, a number may be quoted, a list may be one
//! comma-separated string, and a duration is Go syntax or whole seconds.
//!
//! Pure functions from a node's value to a typed value or the message that
//! says why not; the deserializer and the sections' checks share them.

use std::time::Duration;

use super::super::duration::parse_duration;
use super::super::node::{ScalarKind, Value};

/// `expected {what}, found a map` and the like.
pub(crate) fn expected(what: &str, value: &Value) -> String {
    format!("expected {what}, found {}", value.describe())
}

/// The text of a scalar; anything else is refused as not being `what`.
fn text<'v>(value: &'v Value, what: &str) -> Result<&'v str, String> {
    match value {
        Value::Scalar(_, s) => Ok(s),
        other => Err(expected(what, other)),
    }
}

/// Scalar text; numbers and booleans count as their text. Null is the
/// empty string.
pub(super) fn string(value: &Value) -> Result<String, String> {
    match value {
        Value::Scalar(_, s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        other => Err(expected("a string", other)),
    }
}

/// A boolean, as Go's `strconv.ParseBool` reads it.
pub(super) fn boolean(value: &Value) -> Result<bool, String> {
    let text = text(value, "a boolean")?;
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!(
            "expected a boolean (true or false), found {text:?}"
        )),
    }
}

/// A non-negative integer no larger than `max`.
pub(crate) fn uint(value: &Value, max: u64) -> Result<u64, String> {
    let text = text(value, "an integer")?;
    let t = text.trim();
    match t.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        Ok(_) => Err(format!("{t} is too large (maximum {max})")),
        Err(_) if t.parse::<i64>().is_ok() => Err(format!("must not be negative, found {t}")),
        Err(_) => Err(format!("expected an integer, found {text:?}")),
    }
}

/// A signed integer within `min..=max`.
pub(super) fn int(value: &Value, min: i64, max: i64) -> Result<i64, String> {
    let text = text(value, "an integer")?;
    let t = text.trim();
    match t.parse::<i64>() {
        Ok(n) if n > max => Err(format!("{t} is too large (maximum {max})")),
        Ok(n) if n < min => Err(format!("{t} is too small (minimum {min})")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("expected an integer, found {text:?}")),
    }
}

/// A finite floating-point number.
pub(super) fn float(value: &Value) -> Result<f64, String> {
    let text = text(value, "a number")?;
    match text.trim().parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(n),
        _ => Err(format!("expected a number, found {text:?}")),
    }
}

/// A duration: Go syntax ("1m30s") or an integer number of seconds. A
/// number with a fraction is refused: Traefik would read whole seconds.
pub(super) fn duration(value: &Value) -> Result<Duration, String> {
    let text = text(value, "a duration")?;
    if matches!(value, Value::Scalar(ScalarKind::Float, _)) {
        return Err(format!(
            "invalid duration {text}: a number is a count of whole seconds; write e.g. \"1500ms\""
        ));
    }
    parse_duration(text)
}

/// The items of a comma-separated list, trimmed, empty ones dropped.
pub(super) fn list_items(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|p| !p.is_empty())
}
