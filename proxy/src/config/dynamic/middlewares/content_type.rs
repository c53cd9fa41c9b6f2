//! `contentType`'s one option (`autoDetect`, deprecated), as Traefik 3.7
//! reads it (`pkg/middlewares/contenttype`): written at all, it is warned
//! about; `false` makes the middleware nothing. The request-time part is
//! `crate::middleware::content_type`.

use serde::Deserialize;

use super::super::super::decode::{At, Ctx};
use super::MiddlewareConfig;

/// A validated `contentType`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    /// `autoDetect` as written; `Some(false)` leaves the middleware out
    /// of the chains naming it, as Traefik returns the next handler.
    pub auto_detect: Option<bool>,
}

impl ContentType {
    /// Whether it sniffs (not turned off by `autoDetect: false`).
    pub fn enabled(&self) -> bool {
        self.auto_detect != Some(false)
    }
}

/// `contentType` as written (`{}` is the usual form).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct ContentTypeFile {
    auto_detect: Option<At<bool>>,
}

impl ContentTypeFile {
    pub(super) fn check(self, ctx: &mut Ctx) -> Option<MiddlewareConfig> {
        let auto_detect = self.auto_detect.filter(|a| a.ok).map(|a| {
            ctx.warn(
                &a.path,
                a.pos,
                "autoDetect is deprecated (Traefik warns too): the contentType middleware is \
                 only meant to enable content-type detection; remove the option",
            );
            a.value
        });
        Some(MiddlewareConfig::ContentType(ContentType { auto_detect }))
    }
}
