//! Configuration: parse and validate Traefik v3 file-provider configuration,
//! static (`traefik.yml` / `traefik.toml`) and dynamic (routers, services,
//! middlewares, servers transports), in YAML or TOML.
//!
//! Two steps: `node` turns either syntax into one position-annotated tree;
//! `decode` deserializes that tree into each section's derived file
//! schema, with Traefik's case-insensitive keys and scalar rules, and the
//! sections check what a type cannot say and fill in Traefik's defaults.
//! Validation collects every error (file, key path, line, column) instead
//! of stopping at the first. Keys that would make us serve traffic
//! differently from what was asked are errors; harmless unsupported ones
//! are warnings.
//!
//! Layout: `static_config/` (entrypoints, providers, observability) and
//! `dynamic/` (routers, services, transports, middlewares, TLS), each
//! section's schema next to its checks. `DESIGN.md`
//! says what a new schema costs and where the next ones plug in. Rules
//! stay text here (the routing module parses them). This module runs on
//! the control plane only: nothing in it is on the request path.

mod address;
mod decode;
mod duration;
mod dynamic;
mod error;
mod node;
pub(crate) mod redis;
mod static_config;
#[cfg(test)]
mod tests;

use std::path::Path;

pub use crate::ipnet::IpNet;
pub use dynamic::{
    AddPrefix, BasicAuth, Buffering, CertInfo, CertificateConfig, CheckScheme, ChildService,
    CircuitBreaker, CmpOp, Compress, Condition, ContentType, Cors, DigestAuth, DisabledElement,
    DnFields, DynamicConfig, EXTERNAL_PROVIDERS, ElementKind, EncodedCharacters, Encoding,
    ErrorPage, FailoverConfig, FailoverErrors, FileTexts, ForwardAuth, ForwardingTimeouts, GrpcWeb,
    Headers, HealthCheckConfig, INTERNAL_SERVICES, InFlightReq, IpAllowList, IpStrategy,
    LoadBalancerConfig, Loaded, MediaType, Metric, MiddlewareConfig, MirrorConfig, MirroringConfig,
    PassTlsClientCert, PassiveHealthCheckConfig, Pattern, PemSource, ProviderConfig,
    ProviderSource, RateLimit, RedirectRegex, RedirectScheme, ReplacePath, ReplacePathRegex, Retry,
    RetryCondition, RouterConfig, RouterTls, SameSite, Secure, ServerConfig,
    ServersTransportConfig, ServiceConfig, SourceCriterion, StatusRanges, StickyCookie,
    StripPrefix, StripPrefixRegex, Threshold, TlsConfig, TlsOptionsConfig, UpstreamTlsConfig,
    WeightedConfig, apply_entry_point_models, check_source, disable_missing_internal,
    disable_unbuilt, dynamic_paths, load_dynamic, load_dynamic_isolated, load_kv_isolated,
    load_providers, parse_dynamic, parse_dynamic_isolated, parse_media_type, qualified,
    read_file_provider,
};
pub use error::{ConfigError, ConfigErrors, ConfigWarning, Origin};
pub use node::Format;
pub use static_config::{
    AccessLogConfig, ApiConfig, DEFAULT_MAX_HEADER_BYTES, EntryPointConfig, EntryPointMiddleware,
    EntryPointTls, EntryPointTransport, EtcdProviderConfig, FileProviderConfig,
    ForwardedHeadersConfig, Http2Config, HttpProviderConfig, INTERNAL_ENTRY_POINT, LifeCycle,
    LogConfig, LogFormat, LogLevel, MetricsConfig, PingConfig, PrometheusConfig, ProvidersConfig,
    ProxyProtocolConfig, Redirection, RedisProviderConfig, RespondingTimeouts, StaticConfig,
    UnderscoreHeaders, load_static, parse_static,
};

/// Parses a Traefik duration ("10s", "1m30s", "250ms", or an integer
/// number of seconds). Negative durations are refused.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    duration::parse_duration(text)
}

/// Reads a configuration file and picks its format from the extension.
fn read_file(path: &Path) -> Result<(String, Format), ConfigErrors> {
    let fail = |message: String| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            key: String::new(),
            line: None,
            column: None,
            message,
        }])
    };
    let Some(format) = Format::from_path(path) else {
        return Err(fail(
            "unsupported file extension (expected .yml, .yaml or .toml)".to_owned(),
        ));
    };
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read file: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "file is not valid UTF-8 (at byte {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    Ok((text, format))
}
