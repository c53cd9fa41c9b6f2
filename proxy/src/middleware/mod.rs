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
//! only when the chain has members).

use std::collections::BTreeMap;

use http::{Request, Response};

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

/// A compiled middleware. No middleware type is implemented yet (the
/// configuration rejects every definition, see
/// [`MiddlewareConfig`]), so no value of it exists: the middleware issues
/// add the variants.
#[derive(Debug)]
pub enum Middleware {}

/// The per-request state of a [`Middleware`] between its way in and its
/// way out (a variant per middleware that needs one).
#[derive(Debug)]
pub enum Frame {}

impl Middleware {
    /// Builds the middleware `config` describes (regexes compiled, headers
    /// parsed: nothing is left for the request path to prepare).
    pub fn compile(config: &MiddlewareConfig) -> Middleware {
        match *config {}
    }
}

impl Member for Middleware {
    type Frame = Frame;

    async fn inbound(&self, _req: Request<RequestBody>, _cx: &Exchange<'_>) -> Inbound<Frame> {
        match *self {}
    }

    async fn outbound(&self, _served: Served, frame: Frame, _cx: &Exchange<'_>) -> Outbound<Frame> {
        match frame {}
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
    /// `defined`), each middleware compiled for this router.
    pub fn compile(names: &[String], defined: &BTreeMap<String, MiddlewareConfig>) -> Self {
        Self::new(
            names
                .iter()
                .filter_map(|name| defined.get(name))
                .map(Middleware::compile)
                .collect(),
        )
    }
}

impl<M: Member> Chain<M> {
    /// Runs `req` through the chain around `inner`: each member's way in
    /// in order, the inner call, each way out in reverse order.
    pub async fn run<S: Inner>(
        &self,
        req: Request<RequestBody>,
        cx: &Exchange<'_>,
        inner: &mut S,
    ) -> Served {
        if self.members.is_empty() {
            return inner.call(req).await;
        }
        // frames[i] is member i's; its length is how many members the
        // request is inside of.
        let mut frames: Vec<M::Frame> = Vec::with_capacity(self.members.len());
        let mut req = req;
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
