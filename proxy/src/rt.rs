//! Runtime glue: the executor hyper uses to spawn connection tasks on the
//! current worker, and which worker a thread is (per-worker state such as
//! the round robin's cursors and the idle-connection limit divided among
//! the workers read it).
//!
//! Workers are thread-per-core (one current-thread tokio runtime each), so
//! tasks are spawned with `spawn_local` and may hold `!Send` per-worker
//! state.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many worker threads the proxy runs (1 until [`set_workers`]).
static WORKERS: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// This thread's worker index (0 on threads that are not workers).
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Records how many workers serve: read when a configuration is compiled
/// (control plane), before the first one is.
pub fn set_workers(n: usize) {
    WORKERS.store(n.max(1), Ordering::Relaxed);
}

/// How many workers serve.
pub fn workers() -> usize {
    WORKERS.load(Ordering::Relaxed)
}

/// Marks the calling thread as worker `i`.
pub fn set_worker_index(i: usize) {
    WORKER.with(|w| w.set(i));
}

/// The calling thread's worker index (0 off the workers).
#[inline]
pub fn worker_index() -> usize {
    WORKER.with(Cell::get)
}

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
