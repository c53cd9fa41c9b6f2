//! `grpcWeb`'s one option (`allowOrigins`), as Traefik 3.7 reads it
//! (`pkg/middlewares/grpcweb`): the origins whose CORS requests are
//! allowed, `*` for any. Traefik checks nothing at build time (an empty
//! list allows no origin). The request-time part is
//! `crate::middleware::grpc_web`.

use serde::Deserialize;

use super::super::super::decode::{At, Ctx};
use super::super::super::node::Pos;
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
    pub(super) fn check(self, ctx: &mut Ctx, path: &str, pos: Pos) -> Option<MiddlewareConfig> {
        let Some(list) = self.allow_origins else {
            ctx.error(
                path,
                pos,
                "grpcWeb sets nothing: write allowOrigins (Traefik refuses an empty grpcWeb, \
                 \"cannot be a standalone element\")",
            );
            return None;
        };
        let allow_origins = list
            .strings()
            .into_iter()
            .map(|(origin, _)| origin)
            .collect();
        Some(MiddlewareConfig::GrpcWeb(GrpcWeb { allow_origins }))
    }
}
