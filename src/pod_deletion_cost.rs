//! The pod deletion cost: `controller.kubernetes.io/pod-deletion-cost` on this pod while it
//! leads, so that a scale-down or a rolling update removes followers first and moves leadership
//! once instead of several times (`--pod-deletion-cost`).
//!
//! The ReplicaSet controller picks the pods to delete by rank: unscheduled, pending, not ready
//! first, then the **lower deletion cost**, then (among ready pods) the more recently ready and
//! the newer. Without a cost, a rolling update deletes old pods in an order unrelated to
//! leadership: each time it deletes the current leader while other old pods remain, leadership
//! may move to an old pod that is deleted later, and moves again. With the leader's cost above
//! the followers' (which have none, i.e. 0), the leader is the last old pod deleted, when only new
//! pods remain to take over: one move. [`rolling_update_moves`] models that, and its test prints
//! the figures.
//!
//! Follows the published state only, like the pod label: the annotation is set while
//! [`crate::status::LeaderState::is_leader_at`] holds and removed when leadership ends (a lapse
//! of the claim included) and at shutdown. A failed patch is retried every retry period.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client};

use crate::leadership_output;
use crate::metrics::ElectionMetrics;
use crate::status::StateReceiver;

/// The annotation the ReplicaSet controller reads.
pub const ANNOTATION: &str = "controller.kubernetes.io/pod-deletion-cost";
/// The leader's cost; followers have none (the controller reads that as 0).
pub const LEADER_COST: &str = "1000";

/// The merge patch that sets the leader's cost (`leading`) or removes the annotation.
pub fn patch_body(leading: bool) -> serde_json::Value {
    let value = leading.then_some(LEADER_COST);
    serde_json::json!({ "metadata": { "annotations": BTreeMap::from([(ANNOTATION, value)]) } })
}

/// Patches this pod's deletion cost as leadership goes.
pub struct PodDeletionCost {
    api: Api<Pod>,
    pod: String,
    metrics: ElectionMetrics,
    timeout: Duration,
}

impl PodDeletionCost {
    /// Patches the pod named `pod` in `namespace`, each patch abandoned after `timeout` and
    /// counted in `metrics`; no call until [`PodDeletionCost::run`].
    pub fn new(
        client: Client,
        namespace: &str,
        pod: &str,
        metrics: ElectionMetrics,
        timeout: Duration,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            pod: pod.into(),
            metrics,
            timeout,
        }
    }

    async fn set(&self, leading: bool) -> Result<(), String> {
        leadership_output::patch_pod(
            &self.api,
            &self.pod,
            patch_body(leading),
            &self.metrics,
            self.timeout,
        )
        .await
    }

    /// Keeps the annotation in step with the state until `shutdown`, then removes it.
    pub async fn run(self, mut state: StateReceiver, retry: Duration, shutdown: impl Future<Output = ()>) {
        let this = &self;
        let applied = leadership_output::follow(&mut state, retry, shutdown, |leading| async move {
            match this.set(leading).await {
                Ok(()) => {
                    tracing::info!(pod = %this.pod, leading, "set the pod deletion cost");
                    true
                }
                Err(error) => {
                    tracing::warn!(pod = %this.pod, %error, "could not set the pod deletion cost; retrying");
                    false
                }
            }
        })
        .await;
        if applied != Some(false)
            && let Err(error) = self.set(false).await
        {
            tracing::warn!(pod = %self.pod, %error, "could not reset the pod deletion cost on shutdown");
        }
    }
}

/// A model of a rolling update (`maxSurge: 1`, `maxUnavailable: 0`) of `replicas` ready pods, one
/// of them leading: each step starts a new pod (ready at once) and the ReplicaSet controller
/// deletes one old pod, the one of lowest rank: lower deletion cost first, then the more recently
/// ready (old pods became ready in a random order). When the leader is deleted, a uniformly random
/// remaining pod (old or new) takes over. Returns the number of leadership moves.
pub fn rolling_update_moves(replicas: usize, with_cost: bool, rng: &mut impl rand::Rng) -> usize {
    // Old pods: (ready order: higher = more recently ready, is leader).
    let mut ready_order: Vec<usize> = (0..replicas).collect();
    for i in (1..replicas).rev() {
        ready_order.swap(i, rng.random_range(0..=i));
    }
    let mut old: Vec<(usize, bool)> = ready_order.into_iter().map(|order| (order, false)).collect();
    let leader = rng.random_range(0..replicas);
    old[leader].1 = true;
    let mut new_pods = 0usize;
    let mut leader_is_new = false;
    let mut moves = 0;
    while !old.is_empty() {
        new_pods += 1;
        // The victim: lowest cost (a leader with the annotation costs more), then most recently
        // ready.
        let victim = (0..old.len())
            .min_by_key(|&i| {
                let (order, leading) = old[i];
                let cost = if with_cost && leading { 1 } else { 0 };
                (cost, std::cmp::Reverse(order))
            })
            .unwrap_or(0);
        let (_, was_leader) = old.remove(victim);
        if was_leader {
            moves += 1;
            let candidates = old.len() + new_pods;
            let pick = rng.random_range(0..candidates);
            if pick < old.len() {
                old[pick].1 = true;
            } else {
                leader_is_new = true;
            }
        }
    }
    debug_assert!(leader_is_new || replicas == 0);
    moves
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_patch_sets_or_removes_only_the_annotation() {
        assert_eq!(
            patch_body(true),
            serde_json::json!({"metadata": {"annotations": {"controller.kubernetes.io/pod-deletion-cost": "1000"}}})
        );
        assert_eq!(
            patch_body(false),
            serde_json::json!({"metadata": {"annotations": {"controller.kubernetes.io/pod-deletion-cost": null}}})
        );
    }

    /// Prints the modelled leadership moves per rolling update (`cargo test --lib
    /// pod_deletion_cost -- --nocapture`); checks only what the model guarantees.
    #[test]
    fn a_rolling_update_moves_leadership_once_with_the_cost_and_more_often_without() {
        const TRIALS: usize = 10_000;
        let mut rng = rand::rngs::StdRng::seed_from_u64(18);
        for replicas in [2, 3, 5] {
            let mut with = Vec::new();
            let mut without = Vec::new();
            for _ in 0..TRIALS {
                with.push(rolling_update_moves(replicas, true, &mut rng));
                without.push(rolling_update_moves(replicas, false, &mut rng));
            }
            let mean = |v: &[usize]| v.iter().sum::<usize>() as f64 / v.len() as f64;
            let max = |v: &[usize]| v.iter().copied().max().unwrap_or(0);
            println!(
                "rolling update of {replicas} replicas ({TRIALS} trials): leadership moves with \
                 pod-deletion-cost mean {:.2} max {}, without mean {:.2} max {} ({:.2}x)",
                mean(&with),
                max(&with),
                mean(&without),
                max(&without),
                mean(&without) / mean(&with)
            );
            assert!(
                with.iter().all(|&m| m == 1),
                "with the cost the leader goes last: one move"
            );
            assert!(
                mean(&without) > 1.0,
                "without the cost an old pod can inherit leadership and be deleted later"
            );
        }
    }
}
