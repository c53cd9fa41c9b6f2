//! User-facing configuration diagnostics: errors and warnings that name the
//! file, the key path as the user wrote it, and the position in the file.
//!
//! Owns only the types and their rendering; it knows nothing of Traefik's
//! model. No I/O happens here.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem found in a configuration file; loading fails if any exist.
///
/// Renders as `file:line:column: key.path: message`, e.g.
/// `dynamic.yml:12:11: http.routers.api.service: unknown service "apii" (did you mean "api"?)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(&self.file, &self.key, self.line, self.column, &self.message))]
pub struct ConfigError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// Dotted key path as written by the user, e.g. `http.routers.api.rule`;
    /// sequence items appear as `servers[0]`. Empty for a whole-file problem.
    pub key: String,
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// 1-based column (in characters), when known.
    pub column: Option<u32>,
    /// What is wrong, for a human.
    pub message: String,
}

/// Something in a configuration file that is accepted but ignored or
/// degraded; loading succeeds. Same shape and rendering as [`ConfigError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The file the key is in.
    pub file: PathBuf,
    /// Dotted key path as written by the user.
    pub key: String,
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// 1-based column (in characters), when known.
    pub column: Option<u32>,
    /// What is ignored and why, for a human.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render(
            &self.file,
            &self.key,
            self.line,
            self.column,
            &self.message,
        ))
    }
}

/// Sorts warnings into file order, like [`ConfigErrors`].
pub(crate) fn sort_warnings(warnings: &mut [ConfigWarning]) {
    warnings.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
}

/// Every error found while loading a configuration, in file order.
///
/// Displays one error per line. Never empty when returned by a loader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_all(.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The individual errors.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }

    /// Errors in file order: by file, then line, then column (stable).
    pub(crate) fn sorted(mut errors: Vec<ConfigError>) -> Self {
        errors.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        ConfigErrors(errors)
    }
}

fn render_all(errors: &[ConfigError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

fn render(file: &Path, key: &str, line: Option<u32>, column: Option<u32>, message: &str) -> String {
    let mut out = file.display().to_string();
    if let Some(line) = line {
        out.push_str(&format!(":{line}"));
        if let Some(column) = column {
            out.push_str(&format!(":{column}"));
        }
    }
    out.push_str(": ");
    if !key.is_empty() {
        out.push_str(key);
        out.push_str(": ");
    }
    out.push_str(message);
    out
}

/// Where a configuration item was defined: file, 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Origin {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 for an item Traefik creates implicitly).
    pub line: u32,
    /// 1-based column in characters (0 for an implicit item).
    pub column: u32,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}
