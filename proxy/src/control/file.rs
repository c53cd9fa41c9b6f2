//! The file provider (`providers.file`): loads the dynamic configuration
//! from `filename` or `directory`, and watches them (plus the static file,
//! to say that a change there needs a restart, and the certificate files
//! the configuration reads: a renewed certificate reloads like an edit).
//!
//! Control plane only. Watching asks for a reload through the control
//! thread's `Trigger` channel; it never loads or compiles on the
//! watcher's own thread.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::RecursiveMode;
use notify::event::{AccessKind, AccessMode, EventKind};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};

use super::Trigger;
use crate::config::{self, Loaded, StaticConfig};

/// How long file events are gathered before a reload: editors write a file
/// in several steps (truncate, write, rename), and one reload should see
/// the final state. Far below Traefik's 2 s provider throttle.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// Loads and validates the dynamic configuration the static one points at
/// (empty when no file provider is configured), with Traefik's error
/// isolation: an element with an error is disabled, not the whole load.
pub fn load(static_cfg: &StaticConfig) -> Loaded {
    let Some(file) = &static_cfg.providers.file else {
        return Loaded {
            usable: true,
            ..Loaded::default()
        };
    };
    let mut loaded = config::load_dynamic_isolated(
        file,
        &static_cfg.entry_point_names(),
        static_cfg.default_rule_syntax,
    );
    finish_load(&mut loaded, static_cfg);
    loaded
}

/// The steps of a load that need the static configuration: references to
/// `@internal` services the static configuration does not enable disable
/// their holders, and the entrypoints' models apply.
pub(super) fn finish_load(loaded: &mut Loaded, static_cfg: &StaticConfig) {
    config::disable_missing_internal(loaded, &static_cfg.internal_services());
    config::apply_entry_point_models(loaded, static_cfg);
}

/// The certificate files a configuration reads (absolute paths), shared
/// with the watcher's event handler.
pub(super) type CertFiles = Arc<Mutex<Vec<PathBuf>>>;

/// What the dynamic files and the certificate files `certs` hold now
/// (their paths and bytes, hashed), so a change event on files whose bytes
/// did not change reloads nothing, while a renewed certificate (the
/// dynamic files unchanged) does. `None` without a file provider. Taken
/// before the files are loaded: a write racing the load then reloads once
/// more, never zero times.
pub(super) fn fingerprint(static_cfg: &StaticConfig, certs: &[PathBuf]) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let file = static_cfg.providers.file.as_ref()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let hash_file = |p: &Path, h: &mut std::collections::hash_map::DefaultHasher| {
        p.hash(h);
        match std::fs::read(p) {
            Ok(bytes) => bytes.hash(h),
            Err(e) => e.kind().hash(h),
        }
    };
    match config::dynamic_paths(file) {
        Ok(paths) => {
            for p in paths {
                hash_file(&p, &mut h);
            }
        }
        Err(e) => e.to_string().hash(&mut h),
    }
    for p in certs {
        hash_file(p, &mut h);
    }
    Some(h.finish())
}

/// The file watches of a running proxy; dropping it stops watching.
pub(super) struct FileWatch {
    debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
    /// Directories watched for certificate files.
    cert_dirs: BTreeSet<PathBuf>,
}

impl FileWatch {
    /// Watches the directories of `files` not watched yet (a reload may
    /// name new certificate files). Directories are watched rather than
    /// files, so a renewal by rename is seen.
    pub(super) fn watch_certs(&mut self, files: &[PathBuf]) {
        for dir in files.iter().filter_map(|f| f.parent()) {
            if self.cert_dirs.insert(dir.to_path_buf())
                && let Err(e) = self.debouncer.watch(dir, RecursiveMode::NonRecursive)
            {
                tracing::error!(path = %dir.display(), error = %e, "cannot watch certificate directory");
            }
        }
    }
}

/// The absolute forms of `files`.
pub(super) fn absolute_all(files: &[PathBuf]) -> Vec<PathBuf> {
    files.iter().map(|f| absolute(f)).collect()
}

/// Which watched files an event batch touched.
#[derive(Debug)]
struct Watched {
    /// The dynamic file (watched through its directory, so rename-on-save
    /// and atomic replacement are seen).
    dynamic_file: Option<PathBuf>,
    /// The dynamic directory (recursively; `.yml`, `.yaml`, `.toml` files).
    dynamic_dir: Option<PathBuf>,
    /// The static file.
    static_file: Option<PathBuf>,
    /// Certificate files of the running configuration.
    certs: CertFiles,
}

impl Watched {
    /// What a batch of debounced events asks for, if anything.
    fn classify(&self, result: DebounceEventResult) -> Option<Trigger> {
        let events = match result {
            Ok(events) => events,
            Err(errors) => {
                for e in errors {
                    tracing::warn!(error = %e, "file watcher error");
                }
                return None;
            }
        };
        let mut dynamic_changed = false;
        let mut static_changed = false;
        let certs = self.certs.lock().unwrap_or_else(|e| e.into_inner());
        // Opening and reading a file (the proxy's own reload does) is not
        // a change; only a write that was closed is.
        let changes = events.iter().filter(|ev| match ev.event.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Access(_) => false,
            _ => true,
        });
        for p in changes.flat_map(|ev| &ev.event.paths) {
            if certs.contains(p) {
                dynamic_changed = true;
            }
            if self.dynamic_file.as_ref().is_some_and(|f| f == p)
                || self
                    .dynamic_dir
                    .as_ref()
                    .is_some_and(|d| p.starts_with(d) && is_config_file(p))
            {
                dynamic_changed = true;
            }
            if self.static_file.as_ref().is_some_and(|f| f == p) {
                static_changed = true;
            }
        }
        if dynamic_changed {
            Some(Trigger::Reload(super::Cause::FileChanged))
        } else if static_changed {
            Some(Trigger::StaticChanged)
        } else {
            None
        }
    }
}

/// Registers the file watches (when the file provider's `watch` is on)
/// and the static file's; events go to `triggers`. Done before the proxy's
/// start returns, so a change written right after start is not missed.
/// `None` when nothing can be watched (SIGHUP still reloads).
pub(super) fn watch(
    static_cfg: &StaticConfig,
    static_file: Option<&Path>,
    certs: CertFiles,
    triggers: Sender<Trigger>,
) -> Option<FileWatch> {
    let watch_certs = static_cfg.providers.file.as_ref().is_some_and(|f| f.watch);
    let cert_list = certs.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut watched = Watched {
        dynamic_file: None,
        dynamic_dir: None,
        static_file: static_file.map(absolute),
        certs,
    };
    let mut dirs: Vec<(PathBuf, RecursiveMode)> = Vec::new();
    if let Some(f) = static_cfg.providers.file.as_ref().filter(|f| f.watch) {
        if let Some(path) = &f.filename {
            let abs = absolute(path);
            dirs.push((
                abs.parent().map(Path::to_path_buf).unwrap_or_default(),
                RecursiveMode::NonRecursive,
            ));
            watched.dynamic_file = Some(abs);
        }
        if let Some(dir) = &f.directory {
            let abs = absolute(dir);
            dirs.push((abs.clone(), RecursiveMode::Recursive));
            watched.dynamic_dir = Some(abs);
        }
    }
    // The static file's directory, unless the dynamic file's watch covers
    // it already. A failure here only loses the restart warning.
    let static_dir = watched
        .static_file
        .as_ref()
        .and_then(|sf| sf.parent())
        .filter(|dir| watched.dynamic_file.as_ref().and_then(|d| d.parent()) != Some(*dir))
        .map(Path::to_path_buf);

    let handler = move |result: DebounceEventResult| {
        if let Some(t) = watched.classify(result) {
            // The control thread is gone only when the proxy stops.
            let _ = triggers.send(t);
        }
    };
    let mut debouncer = match new_debouncer(DEBOUNCE, None, handler) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch configuration files; reload with SIGHUP");
            return None;
        }
    };
    for (dir, mode) in &dirs {
        if let Err(e) = debouncer.watch(dir, *mode) {
            tracing::error!(path = %dir.display(), error = %e, "cannot watch");
        }
    }
    if let Some(dir) = static_dir {
        let _ = debouncer.watch(&dir, RecursiveMode::NonRecursive);
    }
    let mut fw = FileWatch {
        debouncer,
        cert_dirs: BTreeSet::new(),
    };
    if watch_certs {
        fw.watch_certs(&cert_list);
    }
    Some(fw)
}

fn is_config_file(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yml" | "yaml" | "toml")
    )
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
