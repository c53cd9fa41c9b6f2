//! The files the file provider reads: its `filename`, or every
//! configuration file under its `directory`. Lists paths only; reading and
//! decoding them is the parent module's.

use std::path::{Path, PathBuf};

use super::super::error::ConfigError;
use super::super::node::Format;
use super::super::static_config::FileProviderConfig;

/// The files the file provider reads, in the order it reads them: its
/// `filename`, or every configuration file under its `directory`.
pub fn dynamic_paths(file: &FileProviderConfig) -> Result<Vec<PathBuf>, ConfigError> {
    match (&file.filename, &file.directory) {
        (Some(f), None) => Ok(vec![f.clone()]),
        (None, Some(dir)) => list_dir(dir),
        _ => Err(ConfigError {
            file: PathBuf::new(),
            key: "providers.file".to_owned(),
            line: None,
            column: None,
            message: "exactly one of filename or directory must be set".to_owned(),
        }),
    }
}

/// Every `.yml`/`.yaml`/`.toml` file under `dir`, recursively, sorted.
fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| ConfigError {
            file: d.clone(),
            key: String::new(),
            line: None,
            column: None,
            message: format!("cannot read directory: {e}"),
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if Format::from_path(&path).is_some() {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}
