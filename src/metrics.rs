//! Prometheus metrics of the election (STUB: interface only; the bodies are being written).
//!
//! The driver records events it alone sees (API requests, renew attempts, slow paths); everything
//! that is state (leadership, fencing token, counts of transitions) is mirrored from the published
//! [`LeaderState`] when a scrape asks, so a paused process cannot serve a stale "leader".

use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::time::Instant;

use crate::status::LeaderState;

/// The API verbs the elector uses, as a bounded label value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    Get,
    Create,
    Update,
    Patch,
    Watch,
}

/// Outcome of one renew (or acquire) attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RenewResult {
    Success,
    Failure,
}

/// Handles to every election metric family; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct ElectionMetrics {}

impl ElectionMetrics {
    /// Registers every family in `registry`, labelled with the election and namespace.
    pub fn register(_registry: &mut Registry, _election: &str, _namespace: &str) -> Self {
        Self {}
    }

    /// One API request finished: `code` is the HTTP status, `None` for a transport error or timeout.
    pub fn api_request(&self, _verb: Verb, _code: Option<u16>, _elapsed: Duration) {}

    /// One renew or acquire attempt finished.
    pub fn renew(&self, _result: RenewResult, _elapsed: Duration) {}

    /// A write from the cached record failed and the record had to be read again (client-go's
    /// `leader_election_slowpath_total`).
    pub fn slowpath(&self) {}

    /// Brings the state-derived families up to date with `state` as of `now`; called per scrape.
    pub fn observe_state(&self, _state: &LeaderState, _now: Instant) {}
}
