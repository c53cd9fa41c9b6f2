//! Runtime glue: the executor hyper uses to spawn connection tasks on the
//! current worker.
//!
//! Workers are thread-per-core (one current-thread tokio runtime each), so
//! tasks are spawned with `spawn_local` and may hold `!Send` per-worker
//! state.

use std::future::Future;

/// A hyper executor that spawns onto the current worker's `LocalSet`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: Future + 'static,
{
    fn execute(&self, fut: F) {
        tokio::task::spawn_local(fut);
    }
}
