//! The router's middleware chain: the middlewares a router names
//! (`http.routers.<r>.middlewares`), compiled with the configuration and
//! run in order around the service call, their response parts in reverse
//! order after it.
//!
//! Decision 4, static dispatch: a chain is a slice of [`Middleware`], an
//! enum matched per call, never a `Box<dyn>`. The chain runs iteratively
//! (each member's way in, the service, each member's way out), not by
//! recursion, so its future has a fixed size whatever the chain's length
//! and needs no boxing; an empty chain (every router today) is one branch.
//!
//! What a member can do, and how the middleware issues plug in (a variant
//! of [`Middleware`] with its compiled state in `middleware/<name>/`, an arm
//! in [`Middleware::compile`], [`Member::inbound`] and [`Member::outbound`],
//! and a [`Frame`] variant if its way out needs state from its way in):
//! - answer by itself (`redirectScheme`, `basicAuth`'s 401, `ipAllowList`'s
//!   403, a CORS preflight): [`Inbound::Answer`]. The members before it
//!   still see the answer on their way out (a `headers` middleware adds its
//!   response headers to a redirect), the members after it and the service
//!   never run.
//! - act before and after (`headers`, `stripPrefix`): [`Inbound::Next`]
//!   with the request changed, then [`Outbound::Done`] with the response
//!   changed.
//! - wrap the inner call (`retry`, `circuitBreaker`, `buffering`,
//!   `errors`): the way in keeps what it needs in its [`Frame`] (a
//!   replayable body, a start time); the way out sees the inner result,
//!   upstream errors included ([`Served`]), and either finishes with it or
//!   with a response of its own (an error page it fetched), or sends the
//!   request through the rest of the chain and the service again
//!   ([`Outbound::Again`]: a retry).
//!
//! Per request: the chain's members are borrowed from the snapshot;
//! nothing is allocated for an empty chain (the frames' vector is made
//! only when the chain has members). A `chain` middleware is no member of
//! its own: its members are compiled into the router's chain in its place.
//!
//! Built: the path and redirect middlewares (`path`, `redirect`),
//! `headers` (`headers`), `ipAllowList` (`ip_allow`), `basicAuth`
//! (`basic_auth`, its hashes in `crate::htpasswd`), `digestAuth`
//! (`digest_auth`), `forwardAuth`
//! (`forward_auth`, over the worker's upstream pool), `encodedCharacters`
//! (`encoded`), `inFlightReq` (`in_flight`) and `rateLimit` (`rate_limit`,
//! in memory or in Redis), both counting by a `sourceCriterion`
//! (`source`), `retry`
//! (`retry`), `circuitBreaker` (`circuit_breaker`: its state and
//! measurements in atomics of its own), `buffering` (`buffering`: bodies
//! held whole, past memory in a temporary file,
//! `upstream::MessageBody::Spilled`), `errors` (`errors`, its pages fetched with
//! `forward::fetch`), `passTLSClientCert` (`tls_cert`, from the
//! connection's client certificates), `compress` (`compress`: the response
//! body compressed as it streams, `upstream::MessageBody::Encoded`),
//! `contentType` (`content_type`: Go's content-type sniffing), `grpcWeb`
//! (`grpc_web`: gRPC-Web to gRPC and back, its bodies rewritten as they
//! stream, `upstream::MessageBody::GrpcRequest` and `GrpcWebResponse`).

mod basic_auth;
mod buffering;
mod circuit_breaker;
mod compress;
mod content_type;
mod digest_auth;
mod encoded;
mod errors;
mod forward_auth;
mod grpc_web;
mod headers;
mod in_flight;
mod ip_allow;
mod path;
mod rate_limit;
mod redirect;
mod retry;
mod source;
mod tls_cert;

use std::collections::BTreeMap;

use http::{Request, Response};

pub use buffering::Spilled;
pub use compress::Compressed;
pub use forward_auth::Build;
pub use grpc_web::{GrpcRequest, GrpcWebResponse};
pub use in_flight::Hold;

use crate::config::MiddlewareConfig;
use crate::forward::ProxyBody;
use crate::listener::ConnCtx;
use crate::snapshot::Snapshot;
use crate::upstream::{ProxyError, RequestBody};

#[cfg(test)]
mod tests;

/// What the inner call gives back: the upstream's response, or why there
/// is none (the answer is built from the error after the chain, so members
/// can tell a network failure from a response).
pub type Served = Result<Response<ProxyBody>, ProxyError>;

/// What a member sees of a request's surroundings besides the request.
#[derive(Clone, Copy, Debug)]
pub struct Exchange<'a> {
    /// The connection: peer, TLS, entrypoint, forwarding trust.
    pub conn: &'a ConnCtx,
    /// The configuration the request was routed with (a middleware that
    /// calls a service, like `errors`, finds it here).
    pub snapshot: &'a Snapshot,
}

/// A member's decision on the way in.
#[derive(Debug)]
pub enum Inbound<F> {
    /// Go on with this request; `F` is handed back on the way out.
    Next(Request<RequestBody>, F),
    /// Answer now: the rest of the chain and the service do not run.
    Answer(Response<ProxyBody>),
}

/// A member's decision on the way out.
#[derive(Debug)]
pub enum Outbound<F> {
    /// This is the result (changed or not) the members before see.
    Done(Served),
    /// Send this request through the rest of the chain and the service
    /// again; `F` comes back on the way out of that attempt.
    Again(Request<RequestBody>, F),
}

/// One kind of chain member: its way in and its way out. [`Middleware`]
/// is the one the proxy runs; the trait keeps the chain's runner
/// independent of the members (and testable on its own).
// The futures run on the request's worker thread and are never sent:
// no `Send` bound is wanted.
#[allow(async_fn_in_trait)]
pub trait Member {
    /// What the way out needs from the way in.
    type Frame;

    /// The way in: change the request and go on, or answer.
    async fn inbound(&self, req: Request<RequestBody>, cx: &Exchange<'_>) -> Inbound<Self::Frame>;

    /// The way out, with the inner result and this member's frame.
    async fn outbound(
        &self,
        served: Served,
        frame: Self::Frame,
        cx: &Exchange<'_>,
    ) -> Outbound<Self::Frame>;
}

/// The call a chain wraps (the service phase: pick a server and send).
#[allow(async_fn_in_trait)]
pub trait Inner {
    /// Sends `req` and gives back what came of it.
    async fn call(&mut self, req: Request<RequestBody>) -> Served;
}

/// A compiled middleware: one variant per type, its state built from the
/// validated configuration (regexes compiled, header values made). A
/// `chain` is no member: its middlewares are put in the router's chain in
/// its place ([`Chain::compile`]).
#[derive(Debug)]
pub enum Middleware {
    /// `addPrefix`.
    AddPrefix(path::AddPrefix),
    /// `stripPrefix`.
    StripPrefix(path::StripPrefix),
    /// `stripPrefixRegex`.
    StripPrefixRegex(path::StripPrefixRegex),
    /// `replacePath`.
    ReplacePath(path::ReplacePath),
    /// `replacePathRegex`.
    ReplacePathRegex(path::ReplacePathRegex),
    /// `redirectScheme`.
    RedirectScheme(redirect::RedirectScheme),
    /// `redirectRegex`.
    RedirectRegex(redirect::RedirectRegex),
    /// `headers` (boxed: the largest by far).
    Headers(Box<headers::Headers>),
    /// `ipAllowList` / `ipWhiteList`.
    IpAllowList(ip_allow::IpAllowList),
    /// `basicAuth`.
    BasicAuth(basic_auth::BasicAuth),
    /// `digestAuth` (boxed: its nonce table).
    DigestAuth(Box<digest_auth::DigestAuth>),
    /// `forwardAuth` (boxed: large).
    ForwardAuth(Box<forward_auth::ForwardAuth>),
    /// `encodedCharacters`.
    EncodedCharacters(encoded::EncodedCharacters),
    /// `inFlightReq` (boxed: its table).
    InFlightReq(Box<in_flight::InFlight>),
    /// `rateLimit` (boxed: its table).
    RateLimit(Box<rate_limit::RateLimit>),
    /// `retry`.
    Retry(retry::Retry),
    /// `circuitBreaker` (boxed: its measurements).
    CircuitBreaker(Box<circuit_breaker::CircuitBreaker>),
    /// `buffering` (boxed: large).
    Buffering(Box<buffering::Buffering>),
    /// `errors` (boxed: large).
    Errors(Box<errors::Errors>),
    /// `passTLSClientCert`.
    PassTlsClientCert(tls_cert::PassTlsCert),
    /// `compress` (boxed: its content-type lists).
    Compress(Box<compress::Compress>),
    /// `contentType`.
    ContentType(content_type::ContentType),
    /// `grpcWeb`.
    GrpcWeb(grpc_web::GrpcWeb),
}

/// The per-request state of a [`Middleware`] between its way in and its
/// way out (a variant per middleware that needs one).
#[derive(Debug)]
pub enum Frame {
    /// Nothing to do on the way out.
    Pass,
    /// `headers`: what its response part needs of the request.
    Headers(headers::Seen),
    /// `forwardAuth`: the auth server's cookies for the response.
    AuthCookies(forward_auth::AuthCookies),
    /// `inFlightReq`: the request's place among its source's, released
    /// with the response.
    InFlight(Hold),
    /// `retry`: the request to send again and the attempts made.
    Retry(Box<retry::Attempts>),
    /// `circuitBreaker`: when the request entered it.
    Breaker(circuit_breaker::Entered),
    /// `buffering`: the request to send again, the attempt.
    Buffering(Box<buffering::Pending>),
    /// `errors`: what the page request needs of the request.
    Errors(Box<errors::Asked>),
    /// `compress`: the encoding chosen for the request.
    Compress(compress::Chosen),
    /// `grpcWeb`: the format the client asked for, the origin allowed.
    GrpcWeb(grpc_web::Reply),
}

impl Middleware {
    /// Builds middleware `name` as `config` describes (nothing is left for
    /// the request path to prepare); `None` for a `chain`, which has no
    /// state of its own.
    pub fn compile(name: &str, config: &MiddlewareConfig, build: Build<'_>) -> Option<Middleware> {
        Some(match config {
            MiddlewareConfig::AddPrefix(c) => Middleware::AddPrefix(path::AddPrefix::new(c)),
            MiddlewareConfig::StripPrefix(c) => Middleware::StripPrefix(path::StripPrefix::new(c)),
            MiddlewareConfig::StripPrefixRegex(c) => {
                Middleware::StripPrefixRegex(path::StripPrefixRegex::new(c))
            }
            MiddlewareConfig::ReplacePath(c) => Middleware::ReplacePath(path::ReplacePath::new(c)),
            MiddlewareConfig::ReplacePathRegex(c) => {
                Middleware::ReplacePathRegex(path::ReplacePathRegex::new(c))
            }
            MiddlewareConfig::RedirectScheme(c) => {
                Middleware::RedirectScheme(redirect::RedirectScheme::new(c))
            }
            MiddlewareConfig::RedirectRegex(c) => {
                Middleware::RedirectRegex(redirect::RedirectRegex::new(c))
            }
            MiddlewareConfig::Headers(c) => Middleware::Headers(Box::new(headers::Headers::new(c))),
            MiddlewareConfig::IpAllowList(c) => {
                Middleware::IpAllowList(ip_allow::IpAllowList::new(c))
            }
            MiddlewareConfig::BasicAuth(c) => Middleware::BasicAuth(basic_auth::BasicAuth::new(c)),
            MiddlewareConfig::DigestAuth(c) => {
                Middleware::DigestAuth(Box::new(digest_auth::DigestAuth::new(c)))
            }
            MiddlewareConfig::ForwardAuth(c) => {
                Middleware::ForwardAuth(Box::new(forward_auth::ForwardAuth::new(c, name, build)))
            }
            MiddlewareConfig::EncodedCharacters(c) => {
                Middleware::EncodedCharacters(encoded::EncodedCharacters::new(c))
            }
            MiddlewareConfig::InFlightReq(c) => {
                Middleware::InFlightReq(Box::new(in_flight::InFlight::new(c)))
            }
            MiddlewareConfig::RateLimit(c) => {
                Middleware::RateLimit(Box::new(rate_limit::RateLimit::new(c, name)))
            }
            MiddlewareConfig::Retry(c) => Middleware::Retry(retry::Retry::new(c)),
            MiddlewareConfig::Buffering(c) => {
                Middleware::Buffering(Box::new(buffering::Buffering::new(c)))
            }
            MiddlewareConfig::CircuitBreaker(c) => {
                Middleware::CircuitBreaker(Box::new(circuit_breaker::CircuitBreaker::new(c)))
            }
            MiddlewareConfig::Errors(c) => Middleware::Errors(Box::new(errors::Errors::new(
                c,
                build.services.get(c.service.as_str()).copied(),
            ))),
            MiddlewareConfig::PassTlsClientCert(c) => {
                Middleware::PassTlsClientCert(tls_cert::PassTlsCert::new(c))
            }
            MiddlewareConfig::Compress(c) => {
                Middleware::Compress(Box::new(compress::Compress::new(c)))
            }
            // `autoDetect: false`: Traefik returns the next handler.
            MiddlewareConfig::ContentType(c) if !c.enabled() => return None,
            MiddlewareConfig::ContentType(_) => Middleware::ContentType(content_type::ContentType),
            MiddlewareConfig::GrpcWeb(c) => Middleware::GrpcWeb(grpc_web::GrpcWeb::new(c)),
            MiddlewareConfig::Chain(_) => return None,
        })
    }
}

/// Go's `http.StatusText` (where it differs from the `http` crate's).
pub(crate) fn status_text(s: http::StatusCode) -> &'static str {
    match s.as_u16() {
        413 => "Request Entity Too Large",
        414 => "Request URI Too Long",
        416 => "Requested Range Not Satisfiable",
        425 => "Too Early",
        _ => s.canonical_reason().unwrap_or(""),
    }
}

/// `status` with its text as the body, as oxy's handlers write it
/// (`WriteHeader` then `Write`) and Traefik sends it: without a
/// `Content-Type` (Traefik does not sniff one unless `contentType` asks).
fn text_answer(status: http::StatusCode) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::full(status_text(status)));
    *resp.status_mut() = status;
    resp
}

/// A way in that changes the request or answers, with nothing for the way
/// out.
fn pass(step: path::Step) -> Inbound<Frame> {
    match step {
        Ok(req) => Inbound::Next(req, Frame::Pass),
        Err(resp) => Inbound::Answer(*resp),
    }
}

impl Member for Middleware {
    type Frame = Frame;

    async fn inbound(&self, req: Request<RequestBody>, cx: &Exchange<'_>) -> Inbound<Frame> {
        match self {
            Middleware::AddPrefix(m) => pass(m.apply(req)),
            Middleware::StripPrefix(m) => pass(m.apply(req)),
            Middleware::StripPrefixRegex(m) => pass(m.apply(req)),
            Middleware::ReplacePath(m) => pass(m.apply(req)),
            Middleware::ReplacePathRegex(m) => pass(m.apply(req)),
            Middleware::RedirectScheme(m) => pass(m.apply(req, cx.conn)),
            Middleware::RedirectRegex(m) => pass(m.apply(req, cx.conn)),
            Middleware::Headers(m) => m.inbound(req, cx.conn),
            Middleware::IpAllowList(m) => pass(m.apply(req, cx.conn)),
            Middleware::BasicAuth(m) => pass(m.apply(req).await),
            Middleware::DigestAuth(m) => pass(m.apply(req)),
            Middleware::EncodedCharacters(m) => pass(m.apply(req)),
            Middleware::InFlightReq(m) => m.inbound(req, cx.conn),
            Middleware::RateLimit(m) => pass(m.apply(req, cx.conn).await),
            Middleware::Retry(m) => m.inbound(req).await,
            Middleware::CircuitBreaker(m) => m.inbound(req),
            // Boxed: reading a body (maybe to a file) would make every
            // chain's future as large.
            Middleware::Buffering(m) => Box::pin(m.inbound(req)).await,
            Middleware::Errors(m) => m.inbound(req, cx.conn),
            Middleware::PassTlsClientCert(m) => Inbound::Next(m.apply(req, cx.conn), Frame::Pass),
            Middleware::Compress(m) => m.inbound(req),
            Middleware::ContentType(_) => Inbound::Next(req, Frame::Pass),
            Middleware::GrpcWeb(m) => m.inbound(req),
            // Boxed: its future (an exchange with the auth server) would
            // make every chain's future as large; the round trip dwarfs
            // the allocation.
            Middleware::ForwardAuth(m) => Box::pin(m.inbound(req, cx.conn)).await,
        }
    }

    async fn outbound(&self, served: Served, frame: Frame, cx: &Exchange<'_>) -> Outbound<Frame> {
        match (self, frame) {
            (Middleware::Headers(m), Frame::Headers(seen)) => {
                Outbound::Done(m.outbound(served, seen))
            }
            (Middleware::ForwardAuth(m), Frame::AuthCookies(cookies)) => {
                Outbound::Done(served.map(|mut resp| {
                    m.outbound(&mut resp, cookies);
                    resp
                }))
            }
            (Middleware::InFlightReq(_), Frame::InFlight(hold)) => {
                Outbound::Done(served.map(|mut resp| {
                    in_flight::InFlight::outbound(&mut resp, hold);
                    resp
                }))
            }
            (Middleware::Retry(m), Frame::Retry(attempts)) => m.outbound(served, attempts).await,
            (Middleware::Buffering(m), Frame::Buffering(pending)) => {
                Box::pin(m.outbound(served, pending)).await
            }
            (Middleware::CircuitBreaker(m), Frame::Breaker(entered)) => {
                let mut served = served;
                m.outbound(&mut served, entered);
                Outbound::Done(served)
            }
            (Middleware::Compress(m), Frame::Compress(chosen)) => {
                Outbound::Done(m.outbound(served, chosen))
            }
            (Middleware::ContentType(m), Frame::Pass) => Outbound::Done(m.outbound(served).await),
            (Middleware::GrpcWeb(_), Frame::GrpcWeb(reply)) => {
                Outbound::Done(grpc_web::GrpcWeb::outbound(served, reply))
            }
            // Boxed: the page's fetch would make every chain's future as
            // large.
            (Middleware::Errors(m), Frame::Errors(asked)) => {
                Box::pin(m.outbound(served, asked, cx.conn, &cx.snapshot.services)).await
            }
            (_, _) => Outbound::Done(served),
        }
    }
}

/// The middlewares of one router, in the order they run.
#[derive(Debug)]
pub struct Chain<M = Middleware> {
    members: Box<[M]>,
}

impl<M> Default for Chain<M> {
    fn default() -> Self {
        Self {
            members: Box::new([]),
        }
    }
}

impl<M> Chain<M> {
    /// A chain of `members`, run first to last on the way in.
    pub fn new(members: Vec<M>) -> Self {
        Self {
            members: members.into_boxed_slice(),
        }
    }

    /// How many members it has.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether it has none (the request goes straight to the service).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

impl Chain<Middleware> {
    /// The chain of a router naming `names` (validated: each is defined in
    /// `defined`, and no `chain` reaches itself), each middleware compiled
    /// for this router, a `chain`'s members in its place.
    pub fn compile(
        names: &[String],
        defined: &BTreeMap<String, MiddlewareConfig>,
        build: Build<'_>,
    ) -> Self {
        Self::compile_guarded(&[], names, defined, build)
    }

    /// [`Chain::compile`], after a check refusing the percent-encoded
    /// bytes `denied` in the path (a router's entrypoint
    /// `http.encodedCharacters`, run before its middlewares as Traefik
    /// runs it). Nothing is added when `denied` is empty.
    pub fn compile_guarded(
        denied: &[u8],
        names: &[String],
        defined: &BTreeMap<String, MiddlewareConfig>,
        build: Build<'_>,
    ) -> Self {
        let mut members = Vec::new();
        if !denied.is_empty() {
            members.push(Middleware::EncodedCharacters(
                encoded::EncodedCharacters::denying(denied.to_vec()),
            ));
        }
        flatten(names, defined, build, &mut members, 0);
        Self::new(members)
    }
}

/// Appends the middlewares `names` stand for to `out`, a `chain`'s own
/// members in its place. `depth` bounds the nesting (the configuration
/// refuses cycles; this only guards the recursion).
fn flatten(
    names: &[String],
    defined: &BTreeMap<String, MiddlewareConfig>,
    build: Build<'_>,
    out: &mut Vec<Middleware>,
    depth: usize,
) {
    if depth > 64 {
        return;
    }
    for (name, config) in names.iter().filter_map(|n| Some((n, defined.get(n)?))) {
        match config {
            MiddlewareConfig::Chain(members) => flatten(members, defined, build, out, depth + 1),
            other => out.extend(Middleware::compile(name, other, build)),
        }
    }
}

impl<M: Member> Chain<M> {
    /// Runs `req` through the chain around `inner`: each member's way in
    /// in order, the inner call, each way out in reverse order.
    #[allow(clippy::manual_async_fn)] // an `async fn` holds its arguments twice; see `forward::handle`
    pub fn run<S: Inner>(
        &self,
        mut req: Request<RequestBody>,
        cx: &Exchange<'_>,
        inner: &mut S,
    ) -> impl Future<Output = Served> {
        async move {
            if self.members.is_empty() {
                return inner.call(req).await;
            }
            // frames[i] is member i's; its length is how many members the
            // request is inside of.
            let mut frames: Vec<M::Frame> = Vec::with_capacity(self.members.len());
            loop {
                // The way in, from the first member not entered yet.
                let mut served = loop {
                    let Some(member) = self.members.get(frames.len()) else {
                        break inner.call(req).await;
                    };
                    match member.inbound(req, cx).await {
                        Inbound::Next(next, frame) => {
                            frames.push(frame);
                            req = next;
                        }
                        Inbound::Answer(resp) => break Ok(resp),
                    }
                };
                // The way out, innermost first.
                loop {
                    let Some(frame) = frames.pop() else {
                        return served;
                    };
                    let member = &self.members[frames.len()];
                    match member.outbound(served, frame, cx).await {
                        Outbound::Done(s) => served = s,
                        Outbound::Again(again, frame) => {
                            frames.push(frame);
                            req = again;
                            break;
                        }
                    }
                }
            }
        }
    }
}
