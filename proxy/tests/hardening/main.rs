//! Production hardening over real sockets (the hardening issue): long
//! streams outlive the connection timeouts, stale upstream connections are
//! retried, slow clients are cut, shutdown waits for tunnels and streams,
//! the records tell the truth about streamed responses, and idle
//! connections park without a client seeing it.

#[path = "../support/mod.rs"]
mod support;

mod parking;
mod records;
mod refused;
mod reuse;
mod shutdown;
mod slow_clients;
mod streaming;
