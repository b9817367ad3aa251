//! The pod-label variant's readiness (`/readyz/pod-label`) of the real binary against the
//! simulator: a leader cut off from the API server cannot reset its pod's `leader` label, so its
//! readiness must fail once its claim lapses, and recover once the label is reset.

mod common;

use std::time::Duration;

use common::*;
use kube_sim::{Fault, Sim};

/// Generous bound for a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(30);

fn label(sim: &Sim, pod: &str) -> Option<String> {
    sim.objects()
        .into_iter()
        .find(|o| o["kind"] == "Pod" && o["metadata"]["name"] == pod)
        .and_then(|pod| {
            pod["metadata"]["labels"]["kube-elector/role"]
                .as_str()
                .map(str::to_owned)
        })
}

async fn readiness(elector: &Elector) -> Option<u16> {
    elector.get("/readyz/pod-label").await.map(|(code, _, _)| code)
}

#[tokio::test]
async fn a_partitioned_ex_leader_with_a_stale_label_is_not_ready() {
    let sim = sim(&["a"]).await;
    let a = elector(&sim, "a", &["--pod-label", "--pod-name", "a"]).await;
    eventually(PATIENCE, "a labels its pod leader", || async {
        (label(&sim, "a").as_deref() == Some("leader")).then_some(())
    })
    .await;
    assert!(a.is_leader().await, "a leads");
    assert_eq!(readiness(&a).await, Some(200), "the valid leader is ready");

    sim.set_fault(
        "a",
        Fault {
            partition: true,
            ..Default::default()
        },
    );
    eventually(PATIENCE, "a's readiness fails once its claim lapses", || async {
        (readiness(&a).await == Some(503)).then_some(())
    })
    .await;
    assert_eq!(
        label(&sim, "a").as_deref(),
        Some("leader"),
        "the label is stale: the partitioned elector could not reset it"
    );
    assert!(!a.is_leader().await, "the claim has lapsed");
    let (_, _, body) = a.get("/readyz/pod-label").await.expect("answers");
    assert!(body.contains("labelled leader"), "{body}");

    sim.clear_fault("a");
    eventually(PATIENCE, "a is ready again once the API is back", || async {
        (readiness(&a).await == Some(200)).then_some(())
    })
    .await;
}
