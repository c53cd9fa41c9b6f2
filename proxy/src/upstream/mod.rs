//! Upstream side of the data plane: picking a server, pooled connections to
//! it (plain, h2c or TLS), the request body sent there, the errors a
//! failing upstream produces, the transport's retry on a reused
//! connection, and the stable identities of servers and pools.
//!
//! Everything here runs per request on a worker thread, so it must take no
//! lock: pools are per worker (thread-local), balancers use atomics.

pub mod balancer;
pub mod body;
pub mod error;
pub mod identity;
pub mod pool;
mod retry;
pub mod tls;

pub use balancer::RoundRobin;
pub use body::{BodyError, ClientBody, MessageBody, RequestBody};
pub use error::{ErrorSource, ProxyError};
pub use identity::{PoolKey, PoolKeys, ServerId, ServerIds};
pub use pool::{PooledBody, TransportSettings, UpstreamTarget, send_upstream};
pub use tls::UpstreamTls;
