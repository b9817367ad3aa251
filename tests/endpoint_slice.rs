//! The EndpointSlice variant of the real binary against the simulator: three electors write one
//! slice; after each handover (SIGTERM, then SIGKILL of the leader) it names only the current
//! leader's address, a gracefully stepping-down leader empties it before it releases the lock,
//! and no elector ever writes an address other than its own.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use kube_sim::Sim;
use serde_json::Value;

/// Generous bound for a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(30);
const SLICE: &str = "test-leader";

fn ip(id: &str) -> String {
    match id {
        "a" => "10.0.0.1",
        "b" => "10.0.0.2",
        _ => "10.0.0.3",
    }
    .to_owned()
}

async fn start(sim: &Sim, id: &str) -> Elector {
    let address = ip(id);
    elector(
        sim,
        id,
        &[
            "--pod-name",
            id,
            "--endpoint-slice",
            SLICE,
            "--endpoint-slice-service",
            "web",
            "--endpoint-slice-ports",
            "http:8080",
            "--pod-ip",
            &address,
        ],
    )
    .await
}

/// The addresses the stored slice names, `None` while it does not exist.
fn slice_addresses(sim: &Sim) -> Option<Vec<String>> {
    let slice = sim
        .objects()
        .into_iter()
        .find(|o| o["kind"] == "EndpointSlice" && o["metadata"]["name"] == SLICE)?;
    Some(addresses(&slice))
}

fn addresses(slice: &Value) -> Vec<String> {
    slice["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect()
}

/// Waits until the slice names exactly `id`'s address, and checks that `id` leads meanwhile.
async fn slice_names_only(sim: &Sim, leader: &Elector) {
    let want = vec![ip(&leader.id)];
    eventually(
        PATIENCE,
        &format!("the slice names only {}", leader.id),
        || async { (slice_addresses(sim).as_ref() == Some(&want)).then_some(()) },
    )
    .await;
    assert!(
        leader.is_leader().await,
        "{} leads while the slice names it",
        leader.id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slice_names_only_the_current_leader_through_sigterm_and_sigkill() {
    let sim = sim(&["a", "b", "c"]).await;
    let mut electors = vec![
        start(&sim, "a").await,
        start(&sim, "b").await,
        start(&sim, "c").await,
    ];

    let first = one_leader(&electors, PATIENCE).await;
    slice_names_only(&sim, &electors[first]).await;
    let slice = sim
        .objects()
        .into_iter()
        .find(|o| o["kind"] == "EndpointSlice")
        .expect("the slice exists");
    assert_eq!(slice["metadata"]["labels"]["kubernetes.io/service-name"], "web");
    assert_eq!(
        slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "kube-elector.leader-endpoints"
    );
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["ports"],
        serde_json::json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    assert_eq!(
        slice["endpoints"][0]["conditions"],
        serde_json::json!({"ready": true, "serving": true, "terminating": false})
    );
    let status = electors[first].status().await.expect("status");
    assert_eq!(status["endpoint_slice"]["may_name_this_pod"], true, "{status}");

    // Graceful step-down: the old leader empties the slice, then releases; a successor writes.
    let gone = electors[first].id.clone();
    electors[first].signal("TERM");
    electors[first].wait_exit(PATIENCE).await;
    let mut rest: Vec<Elector> = electors
        .drain(..)
        .enumerate()
        .filter(|(i, _)| *i != first)
        .map(|(_, e)| e)
        .collect();
    let second = one_leader(&rest, PATIENCE).await;
    slice_names_only(&sim, &rest[second]).await;
    let writes = sim.writes();
    let emptied = writes
        .iter()
        .rposition(|w| w.resource == "endpointslices" && w.client == gone && addresses(&w.object).is_empty())
        .unwrap_or_else(|| panic!("{gone} never emptied the slice on SIGTERM"));
    let released = writes
        .iter()
        .rposition(|w| {
            w.resource == "leases"
                && w.client == gone
                && w.object["spec"]["holderIdentity"]
                    .as_str()
                    .unwrap_or_default()
                    .is_empty()
        })
        .unwrap_or_else(|| panic!("{gone} never released the lease"));
    assert!(
        emptied < released,
        "{gone} must empty the slice (write {}) before it releases the lock (write {})",
        writes[emptied].seq,
        writes[released].seq
    );

    // SIGKILL: nobody empties the slice; the next leader overwrites it.
    let killed = rest[second].id.clone();
    rest[second].signal("KILL");
    rest[second].wait_exit(PATIENCE).await;
    assert_eq!(
        slice_addresses(&sim),
        Some(vec![ip(&killed)]),
        "a killed leader cannot empty the slice"
    );
    rest.remove(second);
    let third = one_leader(&rest, PATIENCE).await;
    slice_names_only(&sim, &rest[third]).await;

    // Every write to the slice named nobody or the writer itself.
    let by_client: BTreeMap<String, Vec<Vec<String>>> = sim
        .writes()
        .into_iter()
        .filter(|w| w.resource == "endpointslices")
        .fold(BTreeMap::new(), |mut map, w| {
            map.entry(w.client.clone())
                .or_default()
                .push(addresses(&w.object));
            map
        });
    for (client, written) in &by_client {
        for addresses in written {
            assert!(
                addresses.is_empty() || addresses == &vec![ip(client)],
                "{client} wrote {addresses:?}; an elector writes only its own address: {by_client:?}"
            );
        }
    }
    let (_, _, metrics) = rest[third].get("/metrics").await.expect("metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("elector_endpoint_slice_writes_total{")
                && l.contains("result=\"updated\"")
                && !l.ends_with(" 0")),
        "the new leader counts its update:\n{metrics}"
    );
    for mut elector in rest {
        let _ = elector.stop(PATIENCE).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_stepping_down_leaves_a_slice_that_names_someone_else_alone() {
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    let sim = sim(&["a", "other"]).await;
    let mut a = start(&sim, "a").await;
    slice_names_only(&sim, &a).await;

    // Another writer (a successor, as far as the slice can tell) replaces the address.
    let api: kube::Api<EndpointSlice> = kube::Api::namespaced(outside_client(&sim, "other").await, "default");
    let mut slice = api.get(SLICE).await.expect("the slice exists");
    slice.endpoints[0].addresses = vec!["10.0.0.9".to_owned()];
    api.replace(SLICE, &Default::default(), &slice)
        .await
        .expect("the other writer replaces the address");

    a.signal("TERM");
    a.wait_exit(PATIENCE).await;
    assert_eq!(
        slice_addresses(&sim),
        Some(vec!["10.0.0.9".to_owned()]),
        "a stepping-down leader empties only a slice that still names it"
    );
    let emptied_by_a = sim
        .writes()
        .iter()
        .any(|w| w.resource == "endpointslices" && w.client == "a" && addresses(&w.object).is_empty());
    assert!(
        !emptied_by_a,
        "a never wrote an empty slice over the other writer's"
    );
}
