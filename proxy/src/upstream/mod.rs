//! Upstream side of the data plane: picking a server, pooled connections to
//! it (plain, h2c or TLS), the request body sent there, the errors a
//! failing upstream produces, the transport's retry on a reused
//! connection, the stable identities of servers and pools, and the
//! run-time state of each server (health, load) kept beside the snapshot;
//! the compiled services and their resolution to one server, sticky
//! cookies.
//!
//! Everything here runs per request on a worker thread, so it must take no
//! lock: pools are per worker (thread-local), balancers use atomics. The
//! exception is `health`, which runs on its own thread and only writes the
//! atomics the balancers read.

pub mod balancer;
pub mod body;
mod connect;
mod direct;
pub mod error;
mod h2;
pub mod health;
pub mod identity;
pub mod passive;
pub mod pool;
mod retry;
pub mod service;
pub mod state;
pub mod sticky;
pub mod tls;

pub use balancer::{Balancer, RoundRobin, Strategy};
pub use body::{BodyError, BodySource, ClientBody, MessageBody, RequestBody};
pub use error::{ErrorSource, ProxyError, UpstreamFailure};
pub use health::HealthChecks;
pub use identity::{PoolKey, PoolKeys, ServerId, ServerIds};
pub use passive::PassiveCheck;
pub use pool::{PooledBody, TransportSettings, UpstreamTarget, send_upstream};
pub use service::{
    Child, Children, Failover, FailoverOnErrors, FailoverPoint, LoadBalancer, Mirroring, Resolved,
    Service, ServiceKind, Walk, failover_for, is_up, resolve, resolve_fallback,
};
pub use state::{ServerState, ServerStates};
pub use sticky::Sticky;
pub use tls::UpstreamTls;
