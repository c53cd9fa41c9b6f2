//! The control thread: waits for reload triggers (a provider saw a change,
//! `SIGHUP`) and applies them one at a time, in Linux's `SCHED_IDLE`
//! class so that it never delays a request, raised to the normal class
//! when a change would otherwise wait (see [`booster`]).
//!
//! Control plane only; the control thread, its booster and the `SIGHUP`
//! listener are the only threads this module starts. A new provider sends
//! its triggers into the same channel.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use super::file::FileWatch;
use super::{Cause, Inner, Trigger};

/// How long a reload may wait or run in `SCHED_IDLE` before the control
/// thread is raised to the normal class for the rest of it: on a machine
/// whose cores the workers (or anything else) keep busy, an idle-class
/// thread gets almost no CPU, and a renewed certificate or a new route
/// would wait for seconds (issue 20, item 5: under 1 s whatever the load).
const IDLE_BUDGET: Duration = Duration::from_millis(200);

/// Sets thread `tid`'s scheduling class (`0` is the calling thread);
/// false when the kernel refuses.
#[allow(unsafe_code)]
fn set_class(tid: libc::pid_t, policy: libc::c_int) -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler only reads `param`; `tid` is 0 or a thread
    // of this process that is alive (the control thread, which outlives
    // its booster), and priority 0 is valid for SCHED_IDLE and SCHED_OTHER.
    let rc = unsafe { libc::sched_setscheduler(tid, policy, &param) };
    if rc != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            policy,
            "cannot change the control thread's scheduling class"
        );
    }
    rc == 0
}

/// Whether a thread of this process may go to `SCHED_IDLE` and come back
/// to the normal class: leaving `SCHED_IDLE` needs `CAP_SYS_NICE` or an
/// `RLIMIT_NICE` of 20, which an unprivileged process usually lacks. Tried
/// on a throwaway thread, so a refusal strands nothing.
fn can_leave_idle_class() -> bool {
    std::thread::Builder::new()
        .name("proxy-sched-probe".into())
        .spawn(|| set_class(0, libc::SCHED_IDLE) && set_class(0, libc::SCHED_OTHER))
        .ok()
        .and_then(|h| h.join().ok())
        .unwrap_or(false)
}

/// The calling thread's id.
#[allow(unsafe_code)]
fn current_tid() -> libc::pid_t {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

/// Relays `triggers` to the control thread `tid` (returned receiver) and
/// keeps that thread in `SCHED_IDLE` while it has nothing to do, so that a
/// worker woken by a request preempts a reload at once, even when the
/// control thread shares the workers' cores (a proxy pinned to one core).
/// Measured with `reload-storm`: p99.9 +5% with a rewrite every 100 ms,
/// against +87% at normal priority and +130% at nice 19 (CFS lets a nice
/// thread finish its slice first).
///
/// The booster itself stays in the normal class (it only waits): a
/// trigger that has not been applied [`IDLE_BUDGET`] after it arrived raises
/// the control thread to the normal class until every trigger it was given
/// is done ([`Trigger::Applied`]), then lowers it again. The deadline runs
/// from the trigger's arrival, not from the reload's start: a starved
/// idle-class thread may not even get to start it.
fn booster(triggers: Receiver<Trigger>, tid: libc::pid_t) -> Receiver<Trigger> {
    let (work_tx, work) = std::sync::mpsc::channel::<Trigger>();
    std::thread::Builder::new()
        .name("proxy-reload-boost".into())
        .spawn(move || {
            // When each trigger forwarded and not applied yet arrived,
            // oldest first: the control thread applies them in order, so
            // the deadline is always the oldest one's.
            let mut outstanding: VecDeque<Instant> = VecDeque::new();
            let mut raised = false;
            // set_class refused the raise for the current backlog: no more
            // deadlines until it is applied (can_leave_idle_class said it
            // would be allowed, so this is not expected).
            let mut refused = false;
            loop {
                let deadline = outstanding
                    .front()
                    .filter(|_| !raised && !refused)
                    .map(|&arrived| arrived + IDLE_BUDGET);
                let next = match deadline {
                    Some(d) => triggers.recv_timeout(d.saturating_duration_since(Instant::now())),
                    None => triggers.recv().map_err(|_| RecvTimeoutError::Disconnected),
                };
                match next {
                    Ok(Trigger::Applied) => {
                        outstanding.pop_front();
                        if outstanding.is_empty() {
                            refused = false;
                            if raised {
                                raised = !set_class(tid, libc::SCHED_IDLE);
                            }
                        }
                    }
                    Ok(Trigger::Stop) => {
                        let _ = work_tx.send(Trigger::Stop);
                        return;
                    }
                    Ok(t) => {
                        if matches!(t, Trigger::Reload(_)) {
                            outstanding.push_back(Instant::now());
                        }
                        if work_tx.send(t).is_err() {
                            return;
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {
                        raised = set_class(tid, libc::SCHED_OTHER);
                        if raised {
                            tracing::debug!(
                                "a reload not applied 200 ms after its trigger: control thread at normal priority"
                            );
                        } else {
                            refused = true;
                        }
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        })
        .expect("spawn the reload booster");
    work
}

/// Runs the control thread until [`Trigger::Stop`] (or every sender is
/// gone). `own` sends into `triggers` (for [`Trigger::Applied`]); `files`
/// is kept alive meanwhile: dropping it stops the watches. Where the
/// process may leave `SCHED_IDLE` again, the thread waits and reloads in
/// that class behind a [`booster`]; elsewhere it stays in the normal class,
/// so that a change always applies.
pub(super) fn run(
    inner: Arc<Inner>,
    triggers: Receiver<Trigger>,
    own: Sender<Trigger>,
    files: Option<FileWatch>,
) {
    let (triggers, applied) = if can_leave_idle_class() {
        // The booster first: a thread inherits its creator's class.
        let work = booster(triggers, current_tid());
        set_class(0, libc::SCHED_IDLE);
        (work, Some(own))
    } else {
        tracing::debug!("no CAP_SYS_NICE (or RLIMIT_NICE 20): reloads run at normal priority");
        (triggers, None)
    };
    let mut files = files;
    while let Ok(trigger) = triggers.recv() {
        match trigger {
            Trigger::Reload(cause) => {
                let forced = cause == Cause::Sighup;
                if forced {
                    tracing::info!("SIGHUP: reloading the configuration");
                }
                let reloaded = inner.reload(forced);
                if reloaded.is_ok()
                    && let Some(f) = files.as_mut()
                    && inner
                        .static_cfg
                        .providers
                        .file
                        .as_ref()
                        .is_some_and(|p| p.watch)
                {
                    // Certificate files the new configuration names.
                    let certs = inner
                        .cert_files
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone();
                    f.watch_certs(&certs);
                }
                if let Some(a) = &applied {
                    let _ = a.send(Trigger::Applied);
                }
            }
            Trigger::StaticChanged => tracing::warn!(
                "the static configuration changed: entrypoints and providers apply after a restart"
            ),
            Trigger::Applied => {}
            Trigger::Stop => break,
        }
    }
}

/// Sends a reload trigger on every `SIGHUP`, from a small tokio runtime on
/// its own thread (signal handlers can't run code of ours directly); the
/// thread ends at the first signal after the control thread is gone.
/// Returns once the handler is installed: a `SIGHUP` right after start
/// then reloads instead of killing the process (the default action).
pub(super) fn forward_sighup(triggers: Sender<Trigger>) {
    let (ready_tx, ready) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("proxy-sighup".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
                let _ = ready_tx.send(());
                let Ok(mut hup) = hup else {
                    return;
                };
                while hup.recv().await.is_some() {
                    if triggers.send(Trigger::Reload(Cause::Sighup)).is_err() {
                        return;
                    }
                }
            });
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot listen for SIGHUP");
        return;
    }
    let _ = ready.recv_timeout(Duration::from_secs(5));
}
