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

/// `fut`, failed with `on_timeout(limit)` when it has not finished within
/// `limit` (never, with `None`).
///
/// Not an `async fn`: one keeps its argument next to the `Timeout` made of
/// it, so the future would be held twice — in every request's state (the
/// response-header timeout) and every connection's (the handshake).
pub(crate) fn bounded<F, T, E, M>(limit: Option<Duration>, fut: F, on_timeout: M) -> Bounded<F, M>
where
    F: Future<Output = Result<T, E>>,
    M: FnOnce(Duration) -> E,
{
    match limit {
        None => Bounded::Unlimited { fut },
        Some(limit) => Bounded::Limited {
            fut: tokio::time::timeout(limit, fut),
            limit,
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
            limit: Duration,
            // The error when the deadline passed (taken then).
            on_timeout: Option<M>,
        },
    }
}

impl<F, T, E, M> Future for Bounded<F, M>
where
    F: Future<Output = Result<T, E>>,
    M: FnOnce(Duration) -> E,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            BoundedProj::Unlimited { fut } => fut.poll(cx),
            BoundedProj::Limited {
                fut,
                limit,
                on_timeout,
            } => Poll::Ready(match ready!(fut.poll(cx)) {
                Ok(r) => r,
                Err(_) => {
                    let on_timeout = on_timeout.take();
                    Err(on_timeout
                        .expect("a Bounded is not polled after it finished")(
                        *limit
                    ))
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::bounded;

    #[tokio::test(start_paused = true)]
    async fn a_future_past_its_limit_fails_with_the_timeout_error_made_of_the_limit() {
        let never = std::future::pending::<Result<(), String>>();
        let got = bounded(Some(Duration::from_secs(5)), never, |limit| {
            format!("timed out after {limit:?}")
        })
        .await;
        assert_eq!(got, Err("timed out after 5s".to_owned()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_future_within_its_limit_gives_its_own_result() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(4)).await;
            Err::<u8, _>("its own error")
        };
        let got = bounded(Some(Duration::from_secs(5)), slow, |_| "timed out").await;
        assert_eq!(got, Err("its own error"));
        let quick = async { Ok::<_, &str>(7) };
        assert_eq!(
            bounded(Some(Duration::from_secs(5)), quick, |_| "timed out").await,
            Ok(7)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_limit_a_future_is_never_cut() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, &str>("done")
        };
        assert_eq!(bounded(None, slow, |_| "timed out").await, Ok("done"));
    }

    #[tokio::test]
    async fn the_bounded_future_holds_its_inner_future_once() {
        // The reason `bounded` is no `async fn`: its size is the inner
        // future's under a `Timeout`, not that plus the future again.
        let inner = async {
            let buf = [0u8; 1024];
            std::future::ready(()).await;
            Ok::<_, ()>(buf[0])
        };
        let inner_size = std::mem::size_of_val(&inner);
        let fut = bounded(Some(Duration::from_secs(1)), inner, |_| ());
        assert!(
            std::mem::size_of_val(&fut) < 2 * inner_size,
            "bounded is {} bytes for a {inner_size}-byte future",
            std::mem::size_of_val(&fut)
        );
    }
}
