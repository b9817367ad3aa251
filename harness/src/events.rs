//! The leadership transitions a group of electors log, gathered on one channel ([`Events`]) so a
//! caller can await "the next `became leader` after this moment" across fifty processes.
//!
//! Times are CLOCK_MONOTONIC nanoseconds, the clock the elector stamps its `became leader` and
//! `stopped leading` lines with ([`crate::monotonic_now_ns`] reads the same clock here).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// What a caller awaited did not happen in time.
#[derive(Debug, thiserror::Error)]
#[error("no {what} within {within:?}")]
pub struct Timeout {
    pub what: String,
    pub within: Duration,
}

/// A leadership transition, as a process logged it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    Became,
    Stopped,
}

/// One `became leader` or `stopped leading` line.
#[derive(Clone, Debug)]
pub struct LeaderEvent {
    pub id: String,
    pub transition: Transition,
    /// When the process logged it (CLOCK_MONOTONIC).
    pub monotonic_ns: u64,
    pub fencing_token: Option<u64>,
}

/// The leadership transitions of a group of processes, in arrival order.
#[derive(Clone, Debug)]
pub struct Events {
    tx: Arc<watch::Sender<Vec<LeaderEvent>>>,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::channel(Vec::new()).0),
        }
    }

    pub(crate) fn push(&self, event: LeaderEvent) {
        self.tx.send_modify(|events| events.push(event));
    }

    /// Every transition so far.
    pub fn snapshot(&self) -> Vec<LeaderEvent> {
        self.tx.borrow().clone()
    }

    /// Waits up to `within` until `pick` finds what it looks for among the transitions.
    pub async fn wait_for<T>(
        &self,
        within: Duration,
        what: &str,
        mut pick: impl FnMut(&[LeaderEvent]) -> Option<T>,
    ) -> Result<T, Timeout> {
        let mut rx = self.tx.subscribe();
        let mut found = None;
        let _ = tokio::time::timeout(
            within,
            rx.wait_for(|events| {
                found = pick(events);
                found.is_some()
            }),
        )
        .await
        .map(|ready| ready.is_ok());
        found.ok_or_else(|| Timeout {
            what: what.to_owned(),
            within,
        })
    }

    /// The first `became leader` logged at or after `after_ns` by a process other than `not`.
    pub async fn became_after(
        &self,
        after_ns: u64,
        not: Option<&str>,
        within: Duration,
    ) -> Result<LeaderEvent, Timeout> {
        self.wait_for(within, "new leader", |events| {
            events
                .iter()
                .filter(|e| e.transition == Transition::Became && e.monotonic_ns >= after_ns)
                .filter(|e| not.is_none_or(|not| e.id != not))
                .min_by_key(|e| e.monotonic_ns)
                .cloned()
        })
        .await
    }
}
