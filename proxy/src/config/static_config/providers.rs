//! `providers`: where the dynamic configuration comes from. Only the file
//! provider is built; the others are warned about.
//!
//! The schema and its checks only: `control` watches and reads the files.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::super::decode::{At, Ctx, Register, Schema, Spec, Support, schema};

/// `providers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvidersConfig {
    /// The file provider, if configured.
    pub file: Option<FileProviderConfig>,
    /// Minimum time between two applied configuration changes (default 2s).
    pub providers_throttle_duration: Duration,
}

/// `providers.file`: exactly one of `filename` or `directory` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProviderConfig {
    /// One dynamic file (relative to the working directory).
    pub filename: Option<PathBuf>,
    /// A directory of `.yml`/`.yaml`/`.toml` files, read recursively.
    pub directory: Option<PathBuf>,
    /// Reload on change (default true).
    pub watch: bool,
}

// === file schema ===

/// `providers` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ProvidersFile {
    providers_throttle_duration: Option<Duration>,
    file: Option<At<FileProviderFile>>,
}

const OTHER_PROVIDER: Support = Support::Warn("only the file provider is supported");

impl Schema for ProvidersFile {
    const KEYS: Spec = &[
        ("docker", OTHER_PROVIDER),
        ("swarm", OTHER_PROVIDER),
        ("kubernetesCRD", OTHER_PROVIDER),
        ("kubernetesIngress", OTHER_PROVIDER),
        ("kubernetesIngressNGINX", OTHER_PROVIDER),
        ("kubernetesGateway", OTHER_PROVIDER),
        ("knative", OTHER_PROVIDER),
        ("consulCatalog", OTHER_PROVIDER),
        ("nomad", OTHER_PROVIDER),
        ("ecs", OTHER_PROVIDER),
        ("consul", OTHER_PROVIDER),
        ("etcd", OTHER_PROVIDER),
        ("zooKeeper", OTHER_PROVIDER),
        ("redis", OTHER_PROVIDER),
        ("http", OTHER_PROVIDER),
        ("rest", OTHER_PROVIDER),
        ("plugin", OTHER_PROVIDER),
        ("precedence", Support::Warn("only the file provider exists")),
    ];
}

/// `providers.file` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FileProviderFile {
    filename: Option<String>,
    directory: Option<String>,
    watch: Option<bool>,
}

impl Schema for FileProviderFile {
    const KEYS: Spec = &[(
        "debugLogGeneratedTemplate",
        Support::Warn("no Go templates"),
    )];
}

pub(super) const SCHEMAS: &[Register] = &[schema::<ProvidersFile>, schema::<FileProviderFile>];

/// `providers`, Traefik's defaults filled in; exactly one of `filename` and
/// `directory` must be set.
pub(super) fn check(ctx: &mut Ctx, file: ProvidersFile) -> ProvidersConfig {
    let mut out = ProvidersConfig {
        file: None,
        providers_throttle_duration: file
            .providers_throttle_duration
            .unwrap_or(Duration::from_secs(2)),
    };
    let Some(f) = file.file.filter(|f| f.ok) else {
        return out;
    };
    let path_of = |s: Option<String>| s.filter(|s| !s.is_empty()).map(PathBuf::from);
    let filename = path_of(f.value.filename);
    let directory = path_of(f.value.directory);
    match (&filename, &directory) {
        (Some(_), Some(_)) => ctx.error(
            &f.path,
            f.key_pos,
            "filename and directory are both set; use only one",
        ),
        (None, None) => ctx.error(
            &f.path,
            f.key_pos,
            "neither filename nor directory is defined",
        ),
        _ => {
            out.file = Some(FileProviderConfig {
                filename,
                directory,
                watch: f.value.watch.unwrap_or(true),
            });
        }
    }
    out
}
