//! The reload history the API and the dashboard show: one entry per load
//! (the first one included), applied or rejected, newest last, the last
//! [`ReloadHistory::KEEP`] kept.
//!
//! Written by the control plane only (after each load); read by the API
//! with one atomic load (`ArcSwap`), so rendering it never waits for a
//! reload and no request of the data plane ever touches it.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;

use crate::config::{ConfigErrors, DynamicConfig};

/// How one load ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadResult {
    /// Published as the generation of its [`ReloadEvent`]; `disabled`
    /// elements (with their errors in the API's lists) were left out.
    Applied {
        /// How many elements an error disabled.
        disabled: usize,
    },
    /// Not usable at all: the running configuration stayed.
    Rejected {
        /// Every error, one line each (`file:line:col: key: reason`).
        errors: Vec<String>,
    },
}

/// One load of the dynamic configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadEvent {
    /// The generation served after it (the old one when rejected).
    pub generation: u64,
    /// When it finished.
    pub at: SystemTime,
    /// How long loading and compiling took.
    pub took: Duration,
    /// What happened.
    pub result: ReloadResult,
}

impl ReloadEvent {
    /// A load started at `started`, published as `generation` from
    /// `config`.
    pub fn applied(generation: u64, started: Instant, config: &DynamicConfig) -> Self {
        ReloadEvent {
            generation,
            at: SystemTime::now(),
            took: started.elapsed(),
            result: ReloadResult::Applied {
                disabled: config.disabled.len(),
            },
        }
    }

    /// A load started at `started` and refused with `errors`; `generation`
    /// is the one still served.
    pub fn rejected(generation: u64, started: Instant, errors: &ConfigErrors) -> Self {
        ReloadEvent {
            generation,
            at: SystemTime::now(),
            took: started.elapsed(),
            result: ReloadResult::Rejected {
                errors: errors.0.iter().map(ToString::to_string).collect(),
            },
        }
    }
}

/// The last loads, newest last.
#[derive(Debug, Default)]
pub struct ReloadHistory {
    events: ArcSwap<Vec<ReloadEvent>>,
}

impl ReloadHistory {
    /// How many loads are kept.
    pub const KEEP: usize = 50;

    /// Adds `event` (control plane only: loads are serialised, so there is
    /// one writer at a time).
    pub fn push(&self, event: ReloadEvent) {
        self.events.rcu(|old| {
            let skip = (old.len() + 1).saturating_sub(Self::KEEP);
            let mut next: Vec<ReloadEvent> = old.iter().skip(skip).cloned().collect();
            next.push(event.clone());
            next
        });
    }

    /// The kept loads, oldest first.
    pub fn events(&self) -> Arc<Vec<ReloadEvent>> {
        self.events.load_full()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_loads_in_order() {
        let h = ReloadHistory::default();
        for generation in 0..(ReloadHistory::KEEP as u64 + 7) {
            h.push(ReloadEvent {
                generation,
                at: SystemTime::UNIX_EPOCH,
                took: Duration::ZERO,
                result: ReloadResult::Applied { disabled: 0 },
            });
        }
        let events = h.events();
        assert_eq!(events.len(), ReloadHistory::KEEP);
        assert_eq!(events[0].generation, 7);
        assert_eq!(
            events.last().unwrap().generation,
            ReloadHistory::KEEP as u64 + 6
        );
    }
}
