//! Each fault kind observably works, through the `kube` client.

mod common;

use std::time::Duration;

use common::{client, eventually, lease, leases, sim};
use futures::StreamExt;
use kube::api::{PostParams, WatchParams};
use kube_sim::{FailSpec, Fault, WatchMode};

/// GETs Lease `x` as client `a`.
async fn get_lease_x(sim: &kube_sim::Sim) -> common::Raw {
    common::raw(
        sim,
        "GET",
        "/apis/coordination.k8s.io/v1/namespaces/default/leases/x",
        sim.token("a"),
        None,
        b"",
    )
    .await
    .expect("the simulator answers")
}

#[tokio::test]
async fn fail_answers_with_status() {
    let sim = sim(&["a", "b"]).await;
    let api = leases(&client(&sim, "a").await);
    // 500 is final for the client (kube retries 503/429 itself; those are checked raw below).
    sim.set_fault(
        "a",
        Fault {
            fail: Some(FailSpec {
                status: 500,
                ratio: 1.0,
                retry_after_seconds: None,
            }),
            ..Fault::default()
        },
    );
    let (code, reason, _) = common::api_err(api.get("x").await);
    assert_eq!((code, reason.as_str()), (500, "InternalError"));
    // Other clients are unaffected.
    let other = leases(&client(&sim, "b").await);
    assert_eq!(common::api_err(other.get("x").await).0, 404);
    sim.clear_fault("a");
    assert_eq!(common::api_err(api.get("x").await).0, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn fail_503_is_service_unavailable() {
    let sim = common::plain_sim(&["a"]).await;
    sim.set_fault(
        "a",
        Fault {
            fail: Some(FailSpec::default()),
            ..Fault::default()
        },
    );
    let r = get_lease_x(&sim).await;
    assert_eq!(
        (r.status, r.json()["reason"].as_str()),
        (503, Some("ServiceUnavailable"))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn fail_429_carries_retry_after_header() {
    let sim = common::plain_sim(&["a"]).await;
    sim.set_fault(
        "a",
        Fault {
            fail: Some(FailSpec {
                status: 429,
                ratio: 1.0,
                retry_after_seconds: Some(3),
            }),
            ..Fault::default()
        },
    );
    let r = get_lease_x(&sim).await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some("3")));
    assert_eq!(r.json()["reason"], "TooManyRequests");
    sim.shutdown().await;
}

#[tokio::test]
async fn verbs_restrict_request_faults() {
    let sim = sim(&["a"]).await;
    let api = leases(&client(&sim, "a").await);
    let created = api
        .create(&PostParams::default(), &lease("lock", "a"))
        .await
        .unwrap();
    sim.set_fault(
        "a",
        Fault {
            drop_ratio: 1.0,
            verbs: Some(vec!["update".into()]),
            ..Fault::default()
        },
    );
    api.get("lock").await.expect("get is not faulted");
    let before = sim.writes().len();
    let r = api.replace("lock", &PostParams::default(), &created).await;
    assert!(
        r.is_err() && !matches!(r, Err(kube::Error::Api(_))),
        "update must fail at the connection, got {r:?}"
    );
    assert_eq!(sim.writes().len(), before, "a dropped write is not applied");
    sim.shutdown().await;
}

#[tokio::test]
async fn lose_response_applies_the_write_but_the_client_gets_an_error() {
    let sim = sim(&["a"]).await;
    let api = leases(&client(&sim, "a").await);
    sim.set_fault(
        "a",
        Fault {
            lose_response_ratio: 1.0,
            verbs: Some(vec!["create".into()]),
            ..Fault::default()
        },
    );
    let r = api.create(&PostParams::default(), &lease("lock", "a")).await;
    assert!(
        r.is_err() && !matches!(r, Err(kube::Error::Api(_))),
        "client must see a transport error, got {r:?}"
    );
    let w = sim
        .writes()
        .into_iter()
        .find(|w| w.resource == "leases")
        .expect("the write was applied");
    assert_eq!(
        (w.client.as_str(), w.verb.as_str(), w.name.as_str()),
        ("a", "create", "lock")
    );
    sim.clear_fault("a");
    assert!(api.get("lock").await.is_ok());
    sim.shutdown().await;
}

#[tokio::test]
async fn drop_closes_without_applying() {
    let sim = sim(&["a"]).await;
    let api = leases(&client(&sim, "a").await);
    sim.set_fault(
        "a",
        Fault {
            drop_ratio: 1.0,
            ..Fault::default()
        },
    );
    let r = api.create(&PostParams::default(), &lease("lock", "a")).await;
    assert!(r.is_err() && !matches!(r, Err(kube::Error::Api(_))), "got {r:?}");
    assert!(
        sim.writes().iter().all(|w| w.resource != "leases"),
        "nothing may be applied"
    );
    assert_eq!(
        sim.requests()["a"]["create leases"],
        1,
        "faulted requests are counted"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn latency_and_hang() {
    let sim = sim(&["a"]).await;
    let api = leases(&client(&sim, "a").await);
    sim.set_fault(
        "a",
        Fault {
            latency_ms: 300,
            ..Fault::default()
        },
    );
    let t0 = tokio::time::Instant::now();
    let _ = api.get("x").await;
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "latency must delay the answer, took {:?}",
        t0.elapsed()
    );
    sim.set_fault(
        "a",
        Fault {
            hang: true,
            ..Fault::default()
        },
    );
    let r = tokio::time::timeout(Duration::from_millis(500), api.get("x")).await;
    assert!(r.is_err(), "a hung request must not be answered, got {r:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn partition_refuses_and_cuts_watches() {
    let sim = sim(&["a"]).await;
    let api = leases(&client(&sim, "a").await);
    let mut stream = api.watch(&WatchParams::default(), "0").await.unwrap().boxed();
    sim.set_fault(
        "a",
        Fault {
            partition: true,
            ..Fault::default()
        },
    );
    let end = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("stream reacts");
    assert!(
        end.is_none() || matches!(end, Some(Err(_))),
        "watch must be cut, got {end:?}"
    );
    let r = api.get("x").await;
    assert!(r.is_err() && !matches!(r, Err(kube::Error::Api(_))), "got {r:?}");
    sim.clear_fault("a");
    assert_eq!(common::api_err(api.get("x").await).0, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn watch_close_and_stall() {
    let sim = sim(&["a", "b"]).await;
    let api = leases(&client(&sim, "a").await);
    let writer = leases(&client(&sim, "b").await);
    let mut stream = api.watch(&WatchParams::default(), "0").await.unwrap().boxed();
    sim.set_fault(
        "a",
        Fault {
            watch: WatchMode::Stall,
            ..Fault::default()
        },
    );
    // The stream checks for fault changes before it takes the next event (biased select), so
    // the stall is in force for the write below.
    let mut cur = writer
        .create(&PostParams::default(), &lease("lock", "b"))
        .await
        .unwrap();
    let stalled = tokio::time::timeout(Duration::from_millis(500), stream.next()).await;
    assert!(
        stalled.is_err(),
        "a stalled stream delivers nothing, got {stalled:?}"
    );
    sim.clear_fault("a");
    cur.spec.as_mut().unwrap().holder_identity = Some("c".into());
    writer
        .replace("lock", &PostParams::default(), &cur)
        .await
        .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(next, kube::api::WatchEvent::Modified(_)),
        "the ADDED event was lost to the stall; got {next:?}"
    );

    sim.set_fault(
        "a",
        Fault {
            watch: WatchMode::Close,
            ..Fault::default()
        },
    );
    let end = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("stream ends");
    assert!(end.is_none(), "watch close ends the stream, got {end:?}");
    let mut again = api.watch(&WatchParams::default(), "0").await.unwrap().boxed();
    let end = tokio::time::timeout(Duration::from_secs(20), again.next())
        .await
        .expect("new stream ends too");
    assert!(
        end.is_none(),
        "new streams end right after they start, got {end:?}"
    );
    let counted = eventually(5, || async {
        (sim.requests()["a"]["watch leases"] >= 2).then_some(())
    })
    .await;
    assert!(counted.is_some(), "watches are counted: {:?}", sim.requests());
    sim.shutdown().await;
}
