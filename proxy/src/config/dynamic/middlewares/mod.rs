//! `http.middlewares.<name>`: one of Traefik's middleware types.
//!
//! [`MiddlewareFile`] is the file schema, an enum decoded by derive (a map
//! with one key naming the type); the types Traefik has and we do not
//! build yet are refused by its key table ([`NOT_BUILT`]). [`check`] turns
//! a decoded type into its validated model ([`MiddlewareConfig`]: regexes
//! compiled, values parsed), reporting each bad option at its key;
//! [`resolve`] resolves the names a `chain` lists and refuses cycles.
//!
//! A new type is a variant of both enums with its structs in a file of
//! this folder, an arm in [`check`], and its name leaves [`NOT_BUILT`].
//! Control plane only: nothing here runs per request.

mod auth;
mod buffering;
mod circuit_breaker;
mod compress;
mod content_type;
mod errors;
mod forward_auth;
mod grpc_web;
mod headers;
mod ip_allow;
mod paths;
mod predicate;
mod retry;
mod tls_cert;
mod traffic;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;

use super::super::decode::{At, Ctx, Register, Schema, Spec, Support, schema, suggest};
use super::super::error::{ConfigError, Origin};
use super::super::node::Pos;
use super::{Ref, err_at, service_ref, strip_provider};
use crate::routing::goregex::GoRegex;

pub use auth::{BasicAuth, DigestAuth};
pub use buffering::{Buffering, RetryCondition};
pub use circuit_breaker::{CircuitBreaker, CmpOp, Condition, Metric, Threshold};
pub use compress::{Compress, Encoding, MediaType, parse as parse_media_type};
pub use content_type::ContentType;
pub use errors::ErrorPage;
pub use forward_auth::ForwardAuth;
pub(in crate::config) use forward_auth::{ClientTlsFile, client_tls};
pub use grpc_web::GrpcWeb;
pub use headers::{Cors, Headers, Secure};
pub use ip_allow::{IpAllowList, IpStrategy};
pub use paths::{
    AddPrefix, EncodedCharacters, RedirectRegex, RedirectScheme, ReplacePath, ReplacePathRegex,
    StripPrefix, StripPrefixRegex,
};
pub use retry::Retry;
pub use tls_cert::{CertInfo, DnFields, PassTlsClientCert};
pub use traffic::{InFlightReq, RateLimit, SourceCriterion};

/// A validated middleware, ready to be compiled into a router's chain.
#[derive(Debug, Clone, PartialEq)]
pub enum MiddlewareConfig {
    /// `addPrefix`.
    AddPrefix(AddPrefix),
    /// `stripPrefix`.
    StripPrefix(StripPrefix),
    /// `stripPrefixRegex`.
    StripPrefixRegex(StripPrefixRegex),
    /// `replacePath`.
    ReplacePath(ReplacePath),
    /// `replacePathRegex`.
    ReplacePathRegex(ReplacePathRegex),
    /// `redirectScheme`.
    RedirectScheme(RedirectScheme),
    /// `redirectRegex`.
    RedirectRegex(RedirectRegex),
    /// `headers` (boxed: the largest by far).
    Headers(Box<Headers>),
    /// `ipAllowList`, or its deprecated alias `ipWhiteList`.
    IpAllowList(IpAllowList),
    /// `basicAuth`.
    BasicAuth(BasicAuth),
    /// `digestAuth`.
    DigestAuth(DigestAuth),
    /// `forwardAuth` (boxed: large).
    ForwardAuth(Box<ForwardAuth>),
    /// `encodedCharacters`.
    EncodedCharacters(EncodedCharacters),
    /// `inFlightReq`.
    InFlightReq(InFlightReq),
    /// `rateLimit`.
    RateLimit(RateLimit),
    /// `retry`.
    Retry(Retry),
    /// `circuitBreaker` (boxed: large).
    CircuitBreaker(Box<CircuitBreaker>),
    /// `buffering` (boxed: large).
    Buffering(Box<Buffering>),
    /// `errors` (boxed: large).
    Errors(Box<ErrorPage>),
    /// `passTLSClientCert`.
    PassTlsClientCert(PassTlsClientCert),
    /// `compress` (boxed: large).
    Compress(Box<Compress>),
    /// `contentType`.
    ContentType(ContentType),
    /// `grpcWeb`.
    GrpcWeb(GrpcWeb),
    /// `chain`: the listed middlewares, in order (names resolved, `@file`
    /// removed; each exists in
    /// [`DynamicConfig::middlewares`](super::DynamicConfig::middlewares)).
    Chain(Vec<String>),
}

/// A regular expression with Go's semantics, compiled when the
/// configuration is checked; two are equal when written alike.
#[derive(Clone)]
pub struct Pattern(pub(crate) GoRegex);

impl Pattern {
    /// Compiles `source` (Go syntax, capture groups kept for `$1`), the
    /// error in Go's words.
    fn new(source: &str) -> Result<Self, String> {
        GoRegex::with_captures(source).map(Pattern)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.source() == other.0.source()
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.0.source())
    }
}

// === file schema ===

/// `http.middlewares.<name>` as written: exactly one type.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) enum MiddlewareFile {
    AddPrefix(paths::AddPrefixFile),
    StripPrefix(paths::StripPrefixFile),
    StripPrefixRegex(paths::StripPrefixRegexFile),
    ReplacePath(paths::ReplacePathFile),
    ReplacePathRegex(paths::ReplacePathRegexFile),
    RedirectScheme(paths::RedirectSchemeFile),
    RedirectRegex(paths::RedirectRegexFile),
    Headers(Box<headers::HeadersFile>),
    IpAllowList(ip_allow::IpAllowListFile),
    IpWhiteList(ip_allow::IpWhiteListFile),
    BasicAuth(auth::BasicAuthFile),
    DigestAuth(auth::DigestAuthFile),
    EncodedCharacters(paths::EncodedCharactersFile),
    ForwardAuth(Box<forward_auth::ForwardAuthFile>),
    InFlightReq(traffic::InFlightReqFile),
    RateLimit(traffic::RateLimitFile),
    Retry(retry::RetryFile),
    CircuitBreaker(circuit_breaker::CircuitBreakerFile),
    Buffering(buffering::BufferingFile),
    Errors(errors::ErrorPageFile),
    #[serde(rename = "passTLSClientCert")]
    PassTlsClientCert(tls_cert::PassTlsClientCertFile),
    Compress(compress::CompressFile),
    ContentType(content_type::ContentTypeFile),
    GrpcWeb(grpc_web::GrpcWebFile),
    Chain(ChainFile),
}

/// `chain` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ChainFile {
    middlewares: Option<At<Vec<At<String>>>>,
}

const NOT_YET: Support = Support::Error("");

/// Traefik v3's HTTP middleware types not built yet.
const NOT_BUILT: Spec = &[("plugin", NOT_YET)];

impl Schema for MiddlewareFile {
    const KEYS: Spec = NOT_BUILT;
    const NOUN: &'static str = "middleware";
}

pub(super) const SCHEMAS: &[Register] = &[schema::<MiddlewareFile>];

// === checks ===

/// A checked middleware whose `chain` references are still to be
/// resolved.
pub(super) struct MiddlewareDraft {
    config: MiddlewareConfig,
    /// The names a `chain` lists, as written.
    refs: Vec<Ref>,
    /// The service an `errors` fetches its pages from, as written.
    service: Option<Ref>,
    /// Its key path (`http.middlewares.<name>`), for errors found later.
    path: String,
    /// Where its name is written.
    pub(super) origin: Origin,
}

impl MiddlewareDraft {
    /// Applies `f` to each reference it holds (a chain's members, the
    /// service of an `errors`), for qualifying them by provider.
    pub(super) fn for_each_ref(&mut self, mut f: impl FnMut(&mut Ref)) {
        for r in self.refs.iter_mut().chain(self.service.iter_mut()) {
            f(r);
        }
    }
}

/// Checks middleware `file` at `path` (named at `pos`). `None` when it
/// cannot be built; its errors are in `ctx`.
pub(super) fn check(
    ctx: &mut Ctx,
    path: &str,
    pos: Pos,
    file: MiddlewareFile,
) -> Option<MiddlewareDraft> {
    let mut refs = Vec::new();
    let mut service = None;
    let config = match file {
        MiddlewareFile::AddPrefix(f) => f.check(ctx, path, pos),
        MiddlewareFile::StripPrefix(f) => f.check(ctx, path, pos),
        MiddlewareFile::StripPrefixRegex(f) => f.check(ctx),
        MiddlewareFile::ReplacePath(f) => f.check(ctx, path, pos),
        MiddlewareFile::ReplacePathRegex(f) => f.check(ctx, path, pos),
        MiddlewareFile::RedirectScheme(f) => f.check(ctx, path, pos),
        MiddlewareFile::RedirectRegex(f) => f.check(ctx, path, pos),
        MiddlewareFile::Headers(f) => f.check(ctx, path, pos),
        MiddlewareFile::IpAllowList(f) => f.check(ctx, path, pos),
        MiddlewareFile::IpWhiteList(f) => f.check(ctx, path, pos),
        MiddlewareFile::BasicAuth(f) => f.check(ctx, path, pos),
        MiddlewareFile::DigestAuth(f) => f.check_digest(ctx, path, pos),
        MiddlewareFile::EncodedCharacters(f) => f.check(),
        MiddlewareFile::ForwardAuth(f) => f.check(ctx, path, pos),
        MiddlewareFile::InFlightReq(f) => f.check(ctx, path, pos),
        MiddlewareFile::RateLimit(f) => f.check(ctx, path),
        MiddlewareFile::Retry(f) => f.check(ctx, path, pos),
        MiddlewareFile::CircuitBreaker(f) => f.check(ctx, path, pos),
        MiddlewareFile::Buffering(f) => f.check(ctx),
        MiddlewareFile::Errors(f) => f.check(ctx, path, pos).map(|(config, r)| {
            service = Some(r);
            config
        }),
        MiddlewareFile::PassTlsClientCert(f) => f.check(ctx, path, pos),
        MiddlewareFile::Compress(f) => f.check(ctx, path, pos),
        MiddlewareFile::ContentType(f) => f.check(ctx),
        MiddlewareFile::GrpcWeb(f) => f.check(ctx, path, pos),
        MiddlewareFile::Chain(f) => {
            let Some(list) = f.middlewares.filter(|l| l.ok) else {
                ctx.error(path, pos, "chain lists no middlewares");
                return None;
            };
            let list_path = list.path.clone();
            for (name, pos) in list.strings() {
                refs.push(Ref {
                    name,
                    path: list_path.clone(),
                    pos,
                });
            }
            Some(MiddlewareConfig::Chain(Vec::new()))
        }
    }?;
    Some(MiddlewareDraft {
        config,
        refs,
        service,
        path: path.to_owned(),
        origin: ctx.origin(pos),
    })
}

/// Compiles `source` at `at` as a Go regexp, reporting a bad one there.
fn pattern(ctx: &mut Ctx, at: &At<String>, source: &str) -> Option<Pattern> {
    match Pattern::new(source) {
        Ok(p) => Some(p),
        Err(e) => {
            ctx.error(&at.path, at.pos, e);
            None
        }
    }
}

/// The middlewares of every file once merged: each `chain`'s names
/// resolved (unknown ones and cycles are errors of that chain), and for
/// each middleware the middlewares it needs (a chain's members), for the
/// disabling to follow.
pub(super) fn resolve(
    drafts: BTreeMap<String, MiddlewareDraft>,
    defined: &BTreeMap<String, Origin>,
    services: &BTreeSet<String>,
    errors: &mut Vec<ConfigError>,
) -> (
    BTreeMap<String, MiddlewareConfig>,
    BTreeMap<String, Vec<String>>,
) {
    let mut configs = BTreeMap::new();
    let mut needs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut paths = BTreeMap::new();
    for (name, draft) in drafts {
        let MiddlewareDraft {
            mut config,
            refs,
            service,
            path,
            origin,
        } = draft;
        // A name's first definition wins; a later one of a name whose
        // first failed is not used in its place.
        if defined.get(&name) != Some(&origin) {
            continue;
        }
        if let (MiddlewareConfig::Errors(page), Some(r)) = (&mut config, &service) {
            match service_ref(r, &origin.file, services, errors) {
                Some((s, true)) => page.service = s,
                // Unknown (reported): the middleware is not built.
                _ => continue,
            }
        }
        if let MiddlewareConfig::Chain(members) = &mut config {
            for r in refs {
                match strip_provider(&r, &origin.file, "middleware", errors) {
                    Some(m) if defined.contains_key(&m) => members.push(m),
                    Some(m) => {
                        let hint = suggest(&m, defined.keys().map(String::as_str));
                        errors.push(err_at(
                            &origin.file,
                            &r.path,
                            r.pos,
                            format!("unknown middleware {m:?}{hint}"),
                        ));
                    }
                    None => {}
                }
            }
            needs.insert(name.clone(), members.clone());
        }
        paths.insert(name.clone(), (path, origin));
        configs.insert(name, config);
    }
    // A chain that reaches itself again is refused (Traefik: "recursion
    // detected"); the chains using it are disabled with it.
    for (name, (path, origin)) in &paths {
        if let Some(cycle) = cycle_from(name, &needs) {
            errors.push(err_at(
                &origin.file,
                path,
                Pos {
                    line: origin.line,
                    column: origin.column,
                },
                format!("middleware {name:?}: chain cycle {}", cycle.join(" -> ")),
            ));
        }
    }
    (configs, needs)
}

/// The names from `start` back to itself, when its chain reaches it again.
fn cycle_from(start: &str, needs: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    // Depth-first, one path at a time; each name is expanded once.
    let mut seen = BTreeSet::new();
    let mut stack: Vec<(String, usize)> = vec![(start.to_owned(), 0)];
    while let Some((name, next)) = stack.last().cloned() {
        let members = needs.get(&name).map_or(&[][..], Vec::as_slice);
        let Some(member) = members.get(next) else {
            stack.pop();
            continue;
        };
        if let Some(top) = stack.last_mut() {
            top.1 += 1;
        }
        if member == start {
            let mut cycle: Vec<String> = stack.iter().map(|(n, _)| n.clone()).collect();
            cycle.push(start.to_owned());
            return Some(cycle);
        }
        if seen.insert(member.clone()) {
            stack.push((member.clone(), 0));
        }
    }
    None
}
