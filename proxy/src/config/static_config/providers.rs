//! `providers`: where the dynamic configuration comes from: the file
//! provider, `http`, `redis` and `etcd` (Traefik 3.7's options and
//! defaults); the others are warned about as not supported yet.
//!
//! The schema and its checks only: `control` watches and reads the
//! providers. Credentials are kept out of `Debug`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::super::decode::{At, Ctx, Register, Schema, Spec, Support, schema};
use super::super::dynamic::{ClientTlsFile, UpstreamTlsConfig, client_tls};
use crate::redis_client::{self, Settings};

/// `providers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvidersConfig {
    /// The file provider, if configured.
    pub file: Option<FileProviderConfig>,
    /// Minimum time between two applied configuration changes (default 2s).
    pub providers_throttle_duration: Duration,
    /// `providers.http`, if configured.
    pub http: Option<HttpProviderConfig>,
    /// `providers.redis`, if configured.
    pub redis: Option<RedisProviderConfig>,
    /// `providers.etcd`, if configured.
    pub etcd: Option<EtcdProviderConfig>,
}

impl ProvidersConfig {
    /// Whether a provider other than the file one is configured.
    pub fn has_external(&self) -> bool {
        self.http.is_some() || self.redis.is_some() || self.etcd.is_some()
    }
}

/// `providers.http`: the dynamic configuration polled from an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpProviderConfig {
    /// `endpoint`: the URL fetched (`http` or `https`).
    pub endpoint: String,
    /// `pollInterval` (default 5 s, above 0).
    pub poll_interval: Duration,
    /// `pollTimeout` (default 5 s): the whole fetch's deadline.
    pub poll_timeout: Duration,
    /// `headers` sent with each fetch (`Host` sets the request's host).
    pub headers: BTreeMap<String, String>,
    /// `tls`: the client TLS for an `https` endpoint.
    pub tls: Option<UpstreamTlsConfig>,
    /// `maxResponseBodySize` in bytes (default -1: no limit).
    pub max_response_body_size: i64,
}

/// `providers.redis`: Traefik's key layout in Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisProviderConfig {
    /// `rootKey` (default `traefik`).
    pub root_key: String,
    /// The connection (`endpoints`, `username`, `password`, `db`, `tls`).
    pub settings: Settings,
}

/// `providers.etcd`: Traefik's key layout in etcd (v3).
#[derive(Clone, PartialEq, Eq)]
pub struct EtcdProviderConfig {
    /// `rootKey` (default `traefik`).
    pub root_key: String,
    /// `endpoints` (`host:port` or URLs; default `127.0.0.1:2379`), tried
    /// in turn.
    pub endpoints: Vec<String>,
    /// `username` (empty: no authentication).
    pub username: String,
    /// `password`.
    pub password: String,
    /// `tls`: the client TLS (the endpoints are then `https`).
    pub tls: Option<UpstreamTlsConfig>,
}

// The credentials never reach a log line.
impl fmt::Debug for EtcdProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("EtcdProviderConfig")
            .field("root_key", &self.root_key)
            .field("endpoints", &self.endpoints)
            .field("username", &set(&self.username))
            .field("password", &set(&self.password))
            .field("tls", &self.tls)
            .finish()
    }
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
    http: Option<At<HttpProviderFile>>,
    redis: Option<At<RedisProviderFile>>,
    etcd: Option<At<EtcdProviderFile>>,
}

const OTHER_PROVIDER: Support =
    Support::Warn("only the file, http, redis and etcd providers are supported");

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
        ("zooKeeper", OTHER_PROVIDER),
        ("rest", OTHER_PROVIDER),
        ("plugin", OTHER_PROVIDER),
        (
            "precedence",
            Support::Warn("providers are merged as Traefik merges them, without precedence"),
        ),
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

/// `providers.http` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct HttpProviderFile {
    endpoint: At<String>,
    poll_interval: Option<At<Duration>>,
    poll_timeout: Option<Duration>,
    headers: BTreeMap<String, String>,
    tls: Option<At<ClientTlsFile>>,
    max_response_body_size: Option<i64>,
}

impl Schema for HttpProviderFile {
    const KEYS: Spec = &[];
}

/// `providers.redis` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RedisProviderFile {
    root_key: Option<String>,
    endpoints: Vec<At<String>>,
    tls: Option<At<ClientTlsFile>>,
    username: String,
    password: String,
    db: Option<At<i64>>,
    sentinel: Option<At<SentinelFile>>,
}

impl Schema for RedisProviderFile {
    const KEYS: Spec = &[];
}

/// `providers.redis.sentinel` as written (Traefik 3.7's `Sentinel`).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct SentinelFile {
    master_name: String,
    username: String,
    password: String,
    // Traefik's client may send read-only commands to a replica chosen by
    // these; the provider reads from the master, which is never staler.
    latency_strategy: bool,
    random_strategy: bool,
    replica_strategy: bool,
    use_disconnected_replicas: bool,
}

/// `providers.etcd` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct EtcdProviderFile {
    root_key: Option<String>,
    endpoints: Vec<At<String>>,
    tls: Option<At<ClientTlsFile>>,
    username: String,
    password: String,
}

impl Schema for EtcdProviderFile {
    const KEYS: Spec = &[];
}

pub(super) const SCHEMAS: &[Register] = &[
    schema::<ProvidersFile>,
    schema::<FileProviderFile>,
    schema::<HttpProviderFile>,
    schema::<RedisProviderFile>,
    schema::<EtcdProviderFile>,
];

/// `providers`, Traefik's defaults filled in; exactly one of `filename` and
/// `directory` must be set.
pub(super) fn check(ctx: &mut Ctx, file: ProvidersFile) -> ProvidersConfig {
    let mut out = ProvidersConfig {
        file: None,
        providers_throttle_duration: file
            .providers_throttle_duration
            .unwrap_or(Duration::from_secs(2)),
        http: file.http.filter(|h| h.ok).and_then(|h| http(ctx, h)),
        redis: file.redis.filter(|r| r.ok).and_then(|r| redis(ctx, r)),
        etcd: file.etcd.filter(|e| e.ok).and_then(|e| etcd(ctx, e)),
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

/// `root_key`, Traefik's `traefik` when unset or empty.
fn root_key(key: Option<String>) -> String {
    key.filter(|k| !k.trim_matches('/').is_empty())
        .map(|k| k.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| "traefik".to_owned())
}

/// A provider's `tls` section, checked (its PEM read where it is used).
fn provider_tls(
    ctx: &mut Ctx,
    owner: &str,
    tls: Option<At<ClientTlsFile>>,
) -> Result<Option<UpstreamTlsConfig>, ()> {
    match tls.filter(|t| t.ok) {
        None => Ok(None),
        Some(t) => client_tls(ctx, owner, t).map(Some).ok_or(()),
    }
}

fn http(ctx: &mut Ctx, h: At<HttpProviderFile>) -> Option<HttpProviderConfig> {
    let f = h.value;
    let endpoint = f.endpoint.value.trim().to_owned();
    let mut ok = true;
    if endpoint.is_empty() {
        ctx.error(&h.path, h.key_pos, "non-empty endpoint is required");
        ok = false;
    } else if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        ctx.error(
            &f.endpoint.path,
            f.endpoint.pos,
            format!("endpoint {endpoint:?} is not an http:// or https:// URL"),
        );
        ok = false;
    }
    let poll_interval = match f.poll_interval {
        Some(p) if p.value.is_zero() => {
            ctx.error(&p.path, p.pos, "poll interval must be greater than 0");
            ok = false;
            Duration::ZERO
        }
        Some(p) => p.value,
        None => Duration::from_secs(5),
    };
    let tls = provider_tls(ctx, "providers.http", f.tls).ok()?;
    ok.then(|| HttpProviderConfig {
        endpoint,
        poll_interval,
        poll_timeout: f.poll_timeout.unwrap_or(Duration::from_secs(5)),
        headers: f.headers,
        tls,
        max_response_body_size: f.max_response_body_size.unwrap_or(-1),
    })
}

fn redis(ctx: &mut Ctx, r: At<RedisProviderFile>) -> Option<RedisProviderConfig> {
    let f = r.value;
    let sentinel = match f.sentinel {
        None => None,
        Some(s) if s.value.master_name.trim().is_empty() => {
            ctx.error(&s.path, s.key_pos, "sentinel.masterName is required");
            return None;
        }
        Some(s)
            if [
                s.value.latency_strategy,
                s.value.random_strategy,
                s.value.replica_strategy,
            ]
            .iter()
            .filter(|on| **on)
            .count()
                > 1 =>
        {
            // Traefik's Init refuses them together too.
            ctx.error(
                &s.path,
                s.key_pos,
                "latencyStrategy, randomStrategy and replicaStrategy are mutually exclusive: use \
                 only one",
            );
            return None;
        }
        Some(s) if f.endpoints.is_empty() => {
            ctx.error(
                &s.path,
                s.key_pos,
                "sentinel needs endpoints: the sentinels' host:port",
            );
            return None;
        }
        Some(s) => Some(redis_client::Sentinel {
            master_name: s.value.master_name.trim().to_owned(),
            endpoints: f
                .endpoints
                .iter()
                .map(|e| e.value.trim().to_owned())
                .collect(),
            username: s.value.username,
            password: s.value.password,
        }),
    };
    let endpoint = match f.endpoints.as_slice() {
        [] => "127.0.0.1:6379".to_owned(),
        [one, ..] if sentinel.is_some() => one.value.trim().to_owned(),
        [one] => one.value.trim().to_owned(),
        // Traefik's Redis store: several endpoints need Sentinel.
        [_, second, ..] => {
            ctx.error(
                &second.path,
                second.pos,
                "several endpoints are only supported with sentinel (Traefik's Redis store \
                 refuses them otherwise)",
            );
            return None;
        }
    };
    let db = match f.db {
        Some(d) if d.value < 0 => {
            ctx.error(
                &d.path,
                d.pos,
                format!("db must not be negative, found {}", d.value),
            );
            return None;
        }
        Some(d) => d.value,
        None => 0,
    };
    let tls = match provider_tls(ctx, "providers.redis", f.tls).ok()? {
        None => None,
        Some(t) => {
            let read = |ctx: &mut Ctx, what: &str, src: &crate::config::PemSource| {
                src.read()
                    .map_err(|e| ctx.error(&r.path, r.key_pos, format!("tls {what}: {e}")))
                    .ok()
            };
            let ca = match t.root_cas.first() {
                Some(src) => Some(read(ctx, "ca", src)?),
                None => None,
            };
            let client = match t.certificates.first() {
                Some(c) => Some((read(ctx, "cert", &c.cert)?, read(ctx, "key", &c.key)?)),
                None => None,
            };
            Some(redis_client::Tls {
                ca,
                client,
                insecure_skip_verify: t.insecure_skip_verify,
            })
        }
    };
    let settings = Settings {
        endpoint,
        sentinel,
        username: f.username,
        password: f.password,
        db,
        tls,
        ..Settings::default()
    };
    if let Err(e) = settings.check() {
        ctx.error(&r.path, r.key_pos, format!("providers.redis: {e}"));
        return None;
    }
    Some(RedisProviderConfig {
        root_key: root_key(f.root_key),
        settings,
    })
}

fn etcd(ctx: &mut Ctx, e: At<EtcdProviderFile>) -> Option<EtcdProviderConfig> {
    let f = e.value;
    let endpoints: Vec<String> = f
        .endpoints
        .iter()
        .map(|s| s.value.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let tls = provider_tls(ctx, "providers.etcd", f.tls).ok()?;
    Some(EtcdProviderConfig {
        root_key: root_key(f.root_key),
        endpoints: if endpoints.is_empty() {
            vec!["127.0.0.1:2379".to_owned()]
        } else {
            endpoints
        },
        username: f.username,
        password: f.password,
        tls,
    })
}
