//! `grpcWeb`'s one option (`allowOrigins`), as Traefik 3.7 reads it
//! (`pkg/middlewares/grpcweb`): the origins whose CORS requests are
//! allowed, `*` for any. Traefik checks nothing at build time (an empty
//! list allows no origin). The request-time part is
//! `crate::middleware::grpc_web`.

use serde::Deserialize;

use super::super::super::decode::At;
use super::MiddlewareConfig;

/// A validated `grpcWeb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcWeb {
    /// `allowOrigins`, as written: an origin is allowed when it equals one
    /// of them, or when one is `*`.
    pub allow_origins: Vec<String>,
}

/// `grpcWeb` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct GrpcWebFile {
    allow_origins: Option<At<Vec<At<String>>>>,
}

impl GrpcWebFile {
    pub(super) fn check(self) -> Option<MiddlewareConfig> {
        let allow_origins = self
            .allow_origins
            .map(At::strings)
            .unwrap_or_default()
            .into_iter()
            .map(|(origin, _)| origin)
            .collect();
        Some(MiddlewareConfig::GrpcWeb(GrpcWeb { allow_origins }))
    }
}
