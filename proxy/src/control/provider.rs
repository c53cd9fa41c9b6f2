//! The providers other than `file` (`http`, `redis`, `etcd`): each runs as
//! a task on one small tokio runtime of its own thread (`proxy-providers`),
//! fetches its configuration, and offers it to its [`Sink`]. An offer that
//! does not decode is refused with its errors (each naming its key) and
//! the provider keeps its last good configuration; one equal to the last
//! good changes nothing; a new good one is kept and asks the control
//! thread for a reload, which merges every provider's last good
//! configuration (`config::load_providers`). A provider that fails (its
//! store unreachable) keeps its last good configuration too, so the
//! others are never held back by it.
//!
//! Control plane only: nothing here runs on the request path. The lock
//! on the last good configurations is taken by the provider tasks and the
//! reload, never by a request. Credentials are never logged.

// The last good configurations are shared by the provider tasks and the
// control thread (control plane only).
#![allow(clippy::disallowed_types)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;

use super::{Cause, Trigger};
use crate::config::{ProviderConfig, ProviderSource, StaticConfig, check_source};
use crate::routing::RuleSyntax;

/// How long a store's change notifications are gathered before it is read
/// again (Redis keyspace events, etcd watch events): a multi-key update
/// passes through partial states.
pub(super) const GATHER: Duration = Duration::from_millis(30);

/// The last good configuration of each provider other than `file`.
#[derive(Debug, Default)]
pub(super) struct Providers {
    last_good: Mutex<BTreeMap<&'static str, ProviderConfig>>,
    /// Bumped at each change of `last_good`.
    version: AtomicU64,
}

impl Providers {
    /// Every provider's last good configuration, in provider name order.
    pub(super) fn configs(&self) -> Vec<ProviderConfig> {
        self.last_good
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Changes at each new last good configuration.
    pub(super) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }
}

/// Where one provider offers what it fetched.
pub(super) struct Sink {
    name: &'static str,
    providers: Arc<Providers>,
    triggers: Sender<Trigger>,
    syntax: RuleSyntax,
    /// The last source refused, so a store answering it again (each poll,
    /// each event) logs its errors once.
    refused: Option<ProviderSource>,
    /// Whether the source was reachable at the last attempt (`None`:
    /// no attempt yet), for logging once per state change.
    reachable: Option<bool>,
}

impl Sink {
    /// Offers what the provider fetched: refused (logged, once) when it
    /// does not decode; kept and reloaded when it differs from the last
    /// good one. Whether it was kept.
    pub(super) fn offer(&mut self, source: ProviderSource) -> bool {
        self.reached();
        let name = self.name;
        {
            let good = self.providers.last_good.lock();
            let good = good.unwrap_or_else(|e| e.into_inner());
            if good.get(name).is_some_and(|g| g.source == source) {
                tracing::debug!(
                    provider = name,
                    "configuration unchanged: nothing to reload"
                );
                return false;
            }
        }
        let errors = check_source(&source, self.syntax);
        if !errors.is_empty() {
            if self.refused.as_ref() != Some(&source) {
                for e in &errors {
                    tracing::error!(provider = name, "{e}");
                }
                tracing::error!(
                    provider = name,
                    "configuration refused ({} errors above); keeping this provider's last good one",
                    errors.len()
                );
                crate::observe::record_config_rejected();
                self.refused = Some(source);
            }
            return false;
        }
        self.refused = None;
        self.providers
            .last_good
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                name,
                ProviderConfig {
                    provider: name.to_owned(),
                    source,
                },
            );
        self.providers.version.fetch_add(1, Ordering::AcqRel);
        tracing::info!(provider = name, "new configuration");
        // The control thread is gone only when the proxy stops.
        let _ = self.triggers.send(Trigger::Reload(Cause::Provider));
        true
    }

    /// The source answered: logged when it had not.
    pub(super) fn reached(&mut self) {
        if self.reachable != Some(true) {
            tracing::info!(provider = self.name, "connected");
            self.reachable = Some(true);
        }
    }

    /// The source failed (`error` must hold no credential): logged once
    /// per state change; the last good configuration stays.
    pub(super) fn unreachable(&mut self, error: &str) {
        if self.reachable != Some(false) {
            tracing::error!(
                provider = self.name,
                error,
                "cannot reach the provider; keeping its last good configuration, retrying with backoff"
            );
            self.reachable = Some(false);
        }
    }

    /// The provider's name.
    pub(super) fn name(&self) -> &'static str {
        self.name
    }
}

/// An exponential backoff, as Traefik's providers retry: from
/// [`Backoff::MIN`], doubling up to [`Backoff::MAX`], back to the start
/// after a success.
#[derive(Debug)]
pub(super) struct Backoff(Duration);

impl Backoff {
    const MIN: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(2);

    pub(super) fn new() -> Self {
        Backoff(Self::MIN)
    }

    /// Waits the current delay (or until `stop`), then doubles it.
    pub(super) async fn wait(&mut self, stop: &mut Stop) {
        let d = self.0;
        self.0 = (self.0 * 2).min(Self::MAX);
        stop.sleep(d).await;
    }

    pub(super) fn reset(&mut self) {
        self.0 = Self::MIN;
    }
}

/// The proxy is stopping: provider loops end at their next wait.
#[derive(Clone)]
pub(super) struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Whether the proxy is stopping.
    pub(super) fn stopping(&self) -> bool {
        *self.0.borrow()
    }

    /// Sleeps `d`, or less when the proxy stops.
    pub(super) async fn sleep(&mut self, d: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.0.changed() => {}
        }
    }

    /// Resolves when the proxy stops.
    pub(super) async fn stopped(&mut self) {
        while !*self.0.borrow() {
            if self.0.changed().await.is_err() {
                return;
            }
        }
    }
}

/// The running provider tasks; dropping it stops them.
pub(super) struct Tasks {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Tasks {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(h) = self.thread.take() {
            let _ = h.join();
        }
    }
}

/// Starts a task per configured provider other than `file` (`None` when
/// there is none), each offering into `providers` and asking `triggers`
/// for reloads.
pub(super) fn start(
    static_cfg: &StaticConfig,
    providers: &Arc<Providers>,
    triggers: &Sender<Trigger>,
) -> Option<Tasks> {
    let cfg = &static_cfg.providers;
    if !cfg.has_external() {
        return None;
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let sink = |name: &'static str| Sink {
        name,
        providers: Arc::clone(providers),
        triggers: triggers.clone(),
        syntax: static_cfg.default_rule_syntax,
        refused: None,
        reachable: None,
    };
    let http = cfg.http.clone().map(|c| (c, sink("http")));
    let redis = cfg.redis.clone().map(|c| (c, sink("redis")));
    let etcd = cfg.etcd.clone().map(|c| (c, sink("etcd")));
    let stop = Stop(stop_rx);
    let thread = std::thread::Builder::new()
        .name("proxy-providers".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the providers' runtime");
                    return;
                }
            };
            rt.block_on(async move {
                let mut tasks = tokio::task::JoinSet::new();
                if let Some((c, s)) = http {
                    tasks.spawn(super::http_provider::run(c, s, stop.clone()));
                }
                if let Some((c, s)) = redis {
                    tasks.spawn(super::redis_provider::run(c, s, stop.clone()));
                }
                if let Some((c, s)) = etcd {
                    tasks.spawn(super::etcd_provider::run(c, s, stop.clone()));
                }
                let mut stop = stop;
                stop.stopped().await;
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
            });
        });
    match thread {
        Ok(h) => Some(Tasks {
            stop: stop_tx,
            thread: Some(h),
        }),
        Err(e) => {
            tracing::error!(error = %e, "cannot start the providers");
            None
        }
    }
}
