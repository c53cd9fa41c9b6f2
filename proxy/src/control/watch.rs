//! The control thread: waits for reload triggers (a provider saw a change,
//! `SIGHUP`) and applies them one at a time, in Linux's `SCHED_IDLE`
//! class so that it never delays a request.
//!
//! Control plane only; the thread and the `SIGHUP` listener are the only
//! threads this module starts. A new provider sends its triggers into the
//! same channel.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use super::file::FileWatch;
use super::{Cause, Inner, Trigger};

/// Puts the calling thread in Linux's `SCHED_IDLE` class: a worker woken
/// by a request preempts it at once, so a reload does not delay requests
/// even when the control thread shares the workers' cores (a proxy pinned
/// to one core). Measured with `reload-storm`: p99.9 +5% with a rewrite
/// every 100 ms, against +87% at normal priority and +130% at nice 19
/// (CFS lets a nice thread finish its slice first). On cores kept 100%
/// busy an idle-class thread gets a sliver of CPU, so a reload still
/// running after [`IDLE_BUDGET`] is raised to the normal class for the rest
/// of it (the booster), and the thread returns to `SCHED_IDLE` after it.
#[allow(unsafe_code)]
fn deprioritize_current_thread() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler only reads `param`; pid 0 is the calling
    // thread, and SCHED_IDLE with priority 0 is always a valid request.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "cannot lower the control thread's scheduling class"
        );
    }
}

/// How long a reload runs in `SCHED_IDLE` before the control thread is
/// raised to the normal class for the rest of it: on a machine whose cores
/// the workers (or anything else) keep busy, an idle-class thread gets
/// almost no CPU, and a renewed certificate or a new route would wait for
/// seconds (issue 20, item 5: under 1 s whatever the load).
const IDLE_BUDGET: Duration = Duration::from_millis(200);

/// Raises thread `tid` to the normal scheduling class (nice 0).
#[allow(unsafe_code)]
fn raise(tid: libc::pid_t) {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler only reads `param`; `tid` is the control
    // thread's id (a thread of this process, alive while the booster runs:
    // the booster ends when the control thread drops its sender).
    let rc = unsafe { libc::sched_setscheduler(tid, libc::SCHED_OTHER, &param) };
    if rc != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "cannot raise the control thread's scheduling class"
        );
    }
}

/// A reload's start or end, told to the booster.
enum Phase {
    Started,
    Done,
}

/// Starts the booster: for each reload that has not ended `IDLE_BUDGET`
/// after it started, raises thread `tid` to the normal class.
fn booster(tid: libc::pid_t) -> Option<Sender<Phase>> {
    let (tx, rx) = std::sync::mpsc::channel::<Phase>();
    let spawned = std::thread::Builder::new()
        .name("proxy-reload-boost".into())
        .spawn(move || {
            while let Ok(phase) = rx.recv() {
                if !matches!(phase, Phase::Started) {
                    continue;
                }
                match rx.recv_timeout(IDLE_BUDGET) {
                    Ok(_) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        raise(tid);
                        tracing::debug!("reload still running after 200 ms: normal priority");
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
        });
    match spawned {
        Ok(_) => Some(tx),
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the reload booster");
            None
        }
    }
}

/// The calling thread's id.
#[allow(unsafe_code)]
fn current_tid() -> libc::pid_t {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

/// Runs the control thread until [`Trigger::Stop`] (or every sender is
/// gone). `files` is kept alive meanwhile: dropping it stops the watches.
pub(super) fn run(inner: Arc<Inner>, triggers: Receiver<Trigger>, files: Option<FileWatch>) {
    deprioritize_current_thread();
    let boost = booster(current_tid());
    let mut files = files;
    while let Ok(trigger) = triggers.recv() {
        match trigger {
            Trigger::Reload(cause) => {
                let forced = cause == Cause::Sighup;
                if forced {
                    tracing::info!("SIGHUP: reloading the configuration");
                }
                if let Some(b) = &boost {
                    let _ = b.send(Phase::Started);
                }
                let reloaded = inner.reload(forced);
                if let Some(b) = &boost {
                    let _ = b.send(Phase::Done);
                }
                deprioritize_current_thread();
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
            }
            Trigger::StaticChanged => tracing::warn!(
                "the static configuration changed: entrypoints and providers apply after a restart"
            ),
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
