//! Fixtures shared by the proxy's benchmarks: router sets of any size with
//! requests that hit the first router, the last one, or none; a typical
//! request head for header processing; and [`e2e::E2e`], a real proxy
//! started in process between a blocking client and a blocking backend.
//!
//! The same fixtures feed the gungraun instruction counts, the criterion
//! wall-clock benches and the allocation budget, so the three measure the
//! same work. Setup only: nothing here is measured by itself, and nothing
//! here may allocate per request in the e2e loop (the allocation budget
//! counts every thread).

pub mod e2e;
pub mod fixtures;
