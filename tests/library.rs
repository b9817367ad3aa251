//! The library API against the simulator, in-process: spawn, observe, cancellation-safe shutdown.

use std::time::Duration;

use futures::FutureExt;

use kube_elector::{Elector, ElectorHandle, LeaderState, Lock};
use kube_sim::{Sim, SimOptions};
use serde_json::Value;

/// Generous: a correctness bound, not a timing claim.
const WITHIN: Duration = Duration::from_secs(30);

async fn client(sim: &Sim, id: &str) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(sim.kubeconfig_path(id)).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

/// Short timings: a new Lease leads a lease duration (1 s) after it is taken.
async fn spawn(sim: &Sim, id: &str) -> ElectorHandle {
    Elector::builder(client(sim, id).await, Lock::lease("default", "lib"), id)
        .timing(
            Duration::from_secs(1),
            Duration::from_millis(600),
            Duration::from_millis(100),
        )
        .build()
        .expect("valid settings")
        .spawn()
}

async fn leading(handle: &ElectorHandle) -> u64 {
    let mut state = handle.subscribe();
    tokio::time::timeout(WITHIN, state.wait_for(LeaderState::is_leader_now))
        .await
        .expect("leads within the bound")
        .expect("the elector is running");
    handle.fencing_token().expect("a leader has a token")
}

fn lease(sim: &Sim) -> Value {
    sim.objects()
        .into_iter()
        .find(|o| o["kind"] == "Lease" && o["metadata"]["name"] == "lib")
        .expect("the Lease exists")
}

async fn until_released(sim: &Sim) {
    tokio::time::timeout(WITHIN, async {
        while !lease(sim)["spec"]["holderIdentity"]
            .as_str()
            .unwrap_or("")
            .is_empty()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the Lease is released within the bound");
}

#[tokio::test]
async fn a_cancelled_shutdown_still_releases_and_the_next_leader_has_a_higher_token() {
    let sim = Sim::start(SimOptions::new(["a", "b"]))
        .await
        .expect("simulator starts");
    let a = spawn(&sim, "a").await;
    let first = leading(&a).await;
    let mut a_state = a.subscribe();
    assert_eq!(lease(&sim)["spec"]["holderIdentity"], "a");

    // The shutdown future is polled once and dropped: the stop has been sent all the same. On a
    // current-thread runtime the elector's task cannot run during that one poll, so the future
    // is certainly dropped unfinished.
    let cancelled = a.shutdown().now_or_never();
    assert!(
        cancelled.is_none(),
        "the shutdown future was cancelled, not completed"
    );
    tokio::time::timeout(WITHIN, a_state.wait_for(|s| s.shutting_down))
        .await
        .expect("a steps down")
        .expect("a's state was published before its task ended");
    assert!(!a_state.borrow().is_leader_now());
    until_released(&sim).await;

    let b = spawn(&sim, "b").await;
    let second = leading(&b).await;
    assert!(second > first, "b's token {second} must exceed a's {first}");

    // Dropping the handle shuts down in the background and releases too.
    drop(b);
    until_released(&sim).await;
    sim.shutdown().await;
}
