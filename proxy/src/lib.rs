//! A high-performance reverse proxy that reads Traefik's file-provider
//! configuration.
//!
//! The modules follow the path a request takes: `listener` accepts it,
//! `routing` picks a router for its [`ProxyRequest`] view, `upstream` forwards
//! it to a backend, and `observe` records what happened. `config` is the
//! control plane: it parses, validates and compiles the files into the
//! immutable runtime form the data plane reads through an `ArcSwap`.

pub mod config;
pub mod observe;
pub mod request;
pub mod routing;

pub use request::ProxyRequest;
