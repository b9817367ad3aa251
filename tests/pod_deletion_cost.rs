//! `--pod-deletion-cost` of the real binary against the simulator: the leader's pod carries
//! `controller.kubernetes.io/pod-deletion-cost`, a follower's does not, and the leader removes it
//! when it steps down at shutdown.

mod common;

use std::time::Duration;

use common::*;
use kube_sim::Sim;

/// Generous bound for a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(30);

fn cost(sim: &Sim, pod: &str) -> Option<String> {
    sim.objects()
        .into_iter()
        .find(|o| o["kind"] == "Pod" && o["metadata"]["name"] == pod)
        .and_then(|pod| {
            pod["metadata"]["annotations"]["controller.kubernetes.io/pod-deletion-cost"]
                .as_str()
                .map(str::to_owned)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_pod_costs_more_to_delete_until_it_steps_down() {
    let sim = sim(&["a", "b"]).await;
    let mut electors = vec![
        elector(&sim, "a", &["--pod-name", "a", "--pod-deletion-cost"]).await,
        elector(&sim, "b", &["--pod-name", "b", "--pod-deletion-cost"]).await,
    ];
    let first = one_leader(&electors, PATIENCE).await;
    let (leader, follower) = (electors[first].id.clone(), electors[1 - first].id.clone());
    eventually(PATIENCE, "the leader's pod carries the cost", || async {
        (cost(&sim, &leader).as_deref() == Some("1000")).then_some(())
    })
    .await;
    assert_eq!(cost(&sim, &follower), None, "a follower's pod has no cost");

    electors[first].signal("TERM");
    electors[first].wait_exit(PATIENCE).await;
    assert_eq!(
        cost(&sim, &leader),
        None,
        "the old leader removed its cost before exiting"
    );
    eventually(PATIENCE, "the new leader's pod carries the cost", || async {
        (cost(&sim, &follower).as_deref() == Some("1000")).then_some(())
    })
    .await;
    let _ = electors[1 - first].stop(PATIENCE).await;
}
