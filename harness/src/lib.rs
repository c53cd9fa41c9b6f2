//! The benchmark harness: starts a backend, the proxy, Traefik, nginx,
//! HAProxy and the bare-hyper floor on loopback, drives identical load at
//! each with its own driver (as fast as wrk), goose or wrk, and writes a
//! comparison; `harness compare` judges a run against a baseline or one
//! build against another.
//!
//! Layout, in the order a run goes: [`cli`] (commands) → `run` (placement,
//! targets, scenarios, rounds) → `launch` (backend and targets with the
//! configurations of `configs`) → `measure` (one window: the load of
//! `load`, the samples of `procs` and `prom`, the dashboard polling of `poll`) → [`results`] → `report`;
//! [`compare`] reads results. The public modules are what other tools and
//! tests read: the results schema, its statistics, the comparison.

mod backend;
mod certs;
pub mod cli;
pub mod compare;
mod configs;
mod floor;
mod launch;
mod load;
mod measure;
mod poll;
mod procs;
mod prom;
mod report;
pub mod results;
mod run;
mod scenario;
pub mod stats;
mod targets;

pub use cli::main;
