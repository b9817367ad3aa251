//! The pod label: marks this pod `leader` or `follower`, so a Service can select the leader
//! without gating readiness on leadership (vapor-ware k8s-elector offers the same).
//!
//! Follows the published state only. The label turns to `follower` when leadership ends, when
//! the claim's validity deadline passes (a timer, so a starved election loop cannot leave a stale
//! `leader` label), and on shutdown. A failed patch is retried every retry period.
//!
//! It also publishes whether the pod *may* carry `leader` ([`LabelStatus`]): true from the moment
//! a patch to `leader` is sent (it may be applied even when the answer is lost), false again only
//! once a patch to `follower` succeeded. `/readyz/pod-label` fails while the pod may carry
//! `leader` but this process's claim is no longer valid, so the kubelet takes a partitioned
//! ex-leader out of the Service, whose selector still matches its stale label. It starts true:
//! after a restart the pod may still carry the previous process's `leader` label.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::leadership_output;
use crate::metrics::ElectionMetrics;
use crate::status::{LeaderState, StateReceiver};

/// The label value for a state at a moment.
pub fn role(state: &LeaderState, now: Instant) -> &'static str {
    if state.is_leader_at(now) {
        "leader"
    } else {
        "follower"
    }
}

/// The merge patch that sets `key` to `value`.
pub fn patch_body(key: &str, value: &str) -> serde_json::Value {
    serde_json::json!({ "metadata": { "labels": BTreeMap::from([(key, value)]) } })
}

/// Whether this pod may carry the `leader` label, as far as this process knows.
pub type LabelStatus = watch::Receiver<bool>;

/// A channel for [`PodLabel::reporting_to`]; the receiver goes to the HTTP surface.
pub fn status_channel() -> (watch::Sender<bool>, LabelStatus) {
    watch::channel(false)
}

/// Patches one pod's label.
pub struct PodLabel {
    api: Api<Pod>,
    pod: String,
    key: String,
    metrics: ElectionMetrics,
    timeout: Duration,
    may_be_leader: watch::Sender<bool>,
}

impl PodLabel {
    /// Patches the label `key` on the pod named `pod` in `namespace`, each patch abandoned after
    /// `timeout` and counted in `metrics`; makes no call until [`PodLabel::run`].
    pub fn new(
        client: Client,
        namespace: &str,
        pod: &str,
        key: &str,
        metrics: ElectionMetrics,
        timeout: Duration,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            pod: pod.into(),
            key: key.into(),
            metrics,
            timeout,
            may_be_leader: watch::Sender::new(false),
        }
    }

    /// Publishes whether the pod may carry `leader` on `status` (see the module documentation).
    /// Until the first patch succeeds that is unknown, so it starts true: a restarted container
    /// whose pod still carries the previous process's `leader` label is not Ready until the label
    /// is reset (or this process leads).
    pub fn reporting_to(mut self, status: watch::Sender<bool>) -> Self {
        status.send_replace(true);
        self.may_be_leader = status;
        self
    }

    async fn set(&self, value: &str) -> Result<(), String> {
        if value == "leader" {
            self.may_be_leader.send_replace(true);
        }
        let result = leadership_output::patch_pod(
            &self.api,
            &self.pod,
            patch_body(&self.key, value),
            &self.metrics,
            self.timeout,
        )
        .await;
        if value != "leader" && result.is_ok() {
            self.may_be_leader.send_replace(false);
        }
        result
    }

    /// Keeps the label in step with the state until `shutdown`, then sets `follower`.
    pub async fn run(self, mut state: StateReceiver, retry: Duration, shutdown: impl Future<Output = ()>) {
        let this = &self;
        let applied = leadership_output::follow(&mut state, retry, shutdown, |leading| async move {
            let value = if leading { "leader" } else { "follower" };
            match this.set(value).await {
                Ok(()) => {
                    tracing::info!(pod = %this.pod, label = %this.key, value, "labelled pod");
                    true
                }
                Err(error) => {
                    tracing::warn!(pod = %this.pod, label = %this.key, %error, "could not label pod; retrying");
                    false
                }
            }
        })
        .await;
        if applied != Some(false)
            && let Err(error) = self.set("follower").await
        {
            tracing::warn!(pod = %self.pod, %error, "could not reset the pod label on shutdown");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn role_follows_validity_not_just_the_claim() {
        let now = Instant::now();
        let mut state = LeaderState::new("a", now);
        assert_eq!(role(&state, now), "follower");
        state.lead(1, jiff::Timestamp::UNIX_EPOCH, now + Duration::from_secs(1), None);
        assert_eq!(role(&state, now), "leader");
        assert_eq!(role(&state, now + Duration::from_secs(1)), "follower");
    }

    #[tokio::test]
    async fn the_label_may_say_leader_until_the_first_patch_succeeds() {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = Client::try_from(config).unwrap();
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = ElectionMetrics::register(&mut registry, "demo", "ns");
        let (tx, rx) = status_channel();
        assert!(!*rx.borrow(), "without a pod label nothing may say leader");
        let _label = PodLabel::new(
            client,
            "ns",
            "pod-a",
            crate::config::DEFAULT_POD_LABEL,
            metrics,
            Duration::from_secs(1),
        )
        .reporting_to(tx);
        assert!(
            *rx.borrow(),
            "a restarted elector's pod may still carry the previous process's leader label"
        );
    }

    #[test]
    fn patch_touches_only_the_label() {
        assert_eq!(
            patch_body(crate::config::DEFAULT_POD_LABEL, "leader"),
            serde_json::json!({"metadata": {"labels": {"kube-elector/role": "leader"}}})
        );
    }
}
