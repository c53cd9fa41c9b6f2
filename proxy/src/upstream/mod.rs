//! Upstream side of the data plane: picking a server, pooled connections to
//! it, and the errors a failing upstream produces.
//!
//! Everything here runs per request on a worker thread, so it must take no
//! lock: pools are per worker (thread-local), balancers use atomics.

pub mod balancer;
pub mod error;
pub mod pool;

pub use balancer::RoundRobin;
pub use error::{ErrorSource, ProxyError};
pub use pool::{PoolKey, PooledBody, TransportSettings, UpstreamTarget, send_upstream};
