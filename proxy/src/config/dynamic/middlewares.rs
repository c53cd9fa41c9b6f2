//! `http.middlewares.<name>`: one of Traefik's middleware types.
//!
//! [`MiddlewareConfig`] is the enum of the types that are built, decoded by
//! derive (a map with one key naming the type); the types Traefik has and
//! we do not build yet are refused by its key table. None is built yet, so
//! every middleware definition is an error. A new type is a variant with
//! its own derived struct (in a file of its own under `middlewares/` once
//! it has one), and its name leaves [`NOT_BUILT`].

use serde::Deserialize;

use super::super::decode::{Register, Schema, Spec, Support, schema};

/// A middleware. No type is implemented yet, so no value can exist; a
/// configuration defining any middleware fails to load.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MiddlewareConfig {}

const NOT_YET: Support = Support::Error("");

/// Traefik v3's HTTP middleware types not built yet.
const NOT_BUILT: Spec = &[
    ("addPrefix", NOT_YET),
    ("basicAuth", NOT_YET),
    ("buffering", NOT_YET),
    ("chain", NOT_YET),
    ("circuitBreaker", NOT_YET),
    ("compress", NOT_YET),
    ("contentType", NOT_YET),
    ("digestAuth", NOT_YET),
    ("errors", NOT_YET),
    ("forwardAuth", NOT_YET),
    ("grpcWeb", NOT_YET),
    ("headers", NOT_YET),
    ("ipAllowList", NOT_YET),
    ("ipWhiteList", NOT_YET),
    ("inFlightReq", NOT_YET),
    ("passTLSClientCert", NOT_YET),
    ("plugin", NOT_YET),
    ("rateLimit", NOT_YET),
    ("redirectRegex", NOT_YET),
    ("redirectScheme", NOT_YET),
    ("replacePath", NOT_YET),
    ("replacePathRegex", NOT_YET),
    ("retry", NOT_YET),
    ("stripPrefix", NOT_YET),
    ("stripPrefixRegex", NOT_YET),
];

impl Schema for MiddlewareConfig {
    const KEYS: Spec = NOT_BUILT;
    const NOUN: &'static str = "middleware";
}

pub(super) const SCHEMAS: &[Register] = &[schema::<MiddlewareConfig>];
