//! The election's metrics handle when the `metrics` feature is off: the calls the election makes
//! (see `metrics.rs`, compiled in its place with the feature), counting nothing.
//!
//! The election code is the same in both builds; only this module is swapped (in `lib.rs`), so
//! a library user without the feature builds neither `prometheus-client` nor any family.

use std::time::Duration;

pub(crate) use crate::labels::{RenewResult, Verb};

/// A handle that counts nothing; cheap to clone, like the real one.
#[derive(Clone, Debug, Default)]
pub(crate) struct ElectionMetrics;

impl ElectionMetrics {
    /// Runs one Kubernetes API call under `timeout`; the outcome is `tokio::time::timeout`'s.
    pub(crate) async fn call<T>(
        &self,
        _verb: Verb,
        timeout: Duration,
        request: impl Future<Output = kube::Result<T>>,
    ) -> Result<kube::Result<T>, tokio::time::error::Elapsed> {
        tokio::time::timeout(timeout, request).await
    }

    pub(crate) fn renew(&self, _result: RenewResult, _elapsed: Duration) {}

    pub(crate) fn slowpath(&self) {}

    pub(crate) fn became_leader(&self) {}

    pub(crate) fn stopped_leading(&self) {}

    pub(crate) fn observed_leader_change(&self) {}

    pub(crate) fn identity_conflict_detected(&self) {}
}
