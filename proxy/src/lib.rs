//! A high-performance reverse proxy that reads Traefik's file-provider
//! configuration.
//!
//! The modules follow the path a request takes: `listener` accepts it,
//! `routing` picks a router for its [`ProxyRequest`] view, `forward`
//! rewrites it and `upstream` sends it to a backend, `observe` records what
//! happened. `config`, `compile` and `control` are the control plane: they
//! parse, validate and compile the files into the immutable [`snapshot`]
//! the data plane reads through an `ArcSwap`.

pub mod admin;
pub mod app;
pub mod compile;
pub mod config;
pub mod control;
pub mod forward;
pub mod ipnet;
pub mod listener;
pub mod observe;
pub mod request;
pub mod routing;
pub mod rt;
pub mod snapshot;
pub mod upstream;

#[cfg(test)]
mod test_alloc;

pub use request::ProxyRequest;
