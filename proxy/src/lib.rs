//! A high-performance reverse proxy that reads Traefik's file-provider
//! configuration.
//!
//! The modules follow the path a request takes: `listener` accepts the
//! connection (plain, or TLS once an entrypoint terminates it) and serves
//! it; `forward` runs each request through its phases — the head checked
//! and the forwarding headers set, `routing` picks a router for its
//! [`ProxyRequest`] view, the router's `middleware` chain, the service
//! (`upstream`: pick a server, send over the worker's pool) — and
//! `observe` records what happened. `admin` answers Traefik's internal
//! endpoints (`/ping`, `/metrics`) before routing.
//!
//! `config` and `control` are the control plane: they parse and validate
//! the files, compile them into the immutable [`snapshot`] the data plane
//! reads through an `ArcSwap`, and reload on change. `app` starts and
//! stops it all; `ipnet` holds Traefik's IP networks, `rt` the executor
//! hyper spawns on, `redis_client` the Redis connections.

pub mod admin;
pub mod app;
pub mod config;
pub mod control;
pub mod forward;
pub mod htpasswd;
pub mod ipnet;
pub mod listener;
pub mod middleware;
pub mod observe;
pub mod redis_client;
pub mod request;
pub mod routing;
pub mod rt;
pub mod snapshot;
pub mod tls;
pub mod upstream;

#[cfg(test)]
mod test_alloc;

pub use request::ProxyRequest;
