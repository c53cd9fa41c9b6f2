//! Runtime glue: the executor hyper uses to spawn connection tasks on the
//! current worker, which worker a thread is (per-worker state such as
//! the round robin's cursors and the idle-connection limit divided among
//! the workers read it), and a future bounded by an optional timeout.
//!
//! Workers are thread-per-core (one current-thread tokio runtime each), so
//! tasks are spawned with `spawn_local` and may hold `!Send` per-worker
//! state.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

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

/// `fut`, failed with `on_timeout()` when it has not finished within
/// `limit` (never, with `None`).
///
/// Not an `async fn`: one keeps its argument next to the `Timeout` made of
/// it, so the future would be held twice — in every request's state (the
/// response-header timeout) and every connection's (the handshake).
pub(crate) fn bounded<F, T, E, M>(limit: Option<Duration>, fut: F, on_timeout: M) -> Bounded<F, M>
where
    F: Future<Output = Result<T, E>>,
    M: FnOnce() -> E,
{
    match limit {
        None => Bounded::Unlimited { fut },
        Some(limit) => Bounded::Limited {
            fut: tokio::time::timeout(limit, fut),
            on_timeout: Some(on_timeout),
        },
    }
}

pin_project_lite::pin_project! {
    /// What [`bounded`] returns.
    #[project = BoundedProj]
    pub(crate) enum Bounded<F, M> {
        /// No limit: the future alone.
        Unlimited {
            #[pin]
            fut: F,
        },
        /// The future under its timeout.
        Limited {
            #[pin]
            fut: tokio::time::Timeout<F>,
            // The error when the deadline passed (taken then).
            on_timeout: Option<M>,
        },
    }
}

impl<F, T, E, M> Future for Bounded<F, M>
where
    F: Future<Output = Result<T, E>>,
    M: FnOnce() -> E,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            BoundedProj::Unlimited { fut } => fut.poll(cx),
            BoundedProj::Limited { fut, on_timeout } => Poll::Ready(match ready!(fut.poll(cx)) {
                Ok(r) => r,
                Err(_) => Err(on_timeout
                    .take()
                    .expect("a Bounded is not polled after it finished")(
                )),
            }),
        }
    }
}
