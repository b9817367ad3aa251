//! Watch semantics: ordered delivery, resourceVersion resume, 410 after compaction, bookmarks,
//! selectors, and decoding by `kube::Api::watch` and the `kube::runtime` watcher.

mod common;

use std::time::Duration;

use common::{client, lease, leases, raw, sim};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{PostParams, WatchEvent, WatchParams};
use kube_sim::{Sim, SimOptions};

fn holder(l: &Lease) -> String {
    l.spec
        .as_ref()
        .and_then(|s| s.holder_identity.clone())
        .unwrap_or_default()
}

async fn next_event(
    stream: &mut (impl futures::Stream<Item = Result<WatchEvent<Lease>, kube::Error>> + Unpin),
) -> WatchEvent<Lease> {
    tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("an event within 20s")
        .expect("stream still open")
        .expect("event decodes")
}

#[tokio::test]
async fn watch_delivers_every_change_in_order_and_resumes() {
    let sim = sim(&["a"]).await;
    let api = leases(&client(&sim, "a").await);
    let created = api
        .create(&PostParams::default(), &lease("lock", "h0"))
        .await
        .unwrap();
    let start_rv = created.metadata.resource_version.clone().unwrap();

    let wp = WatchParams::default().fields("metadata.name=lock");
    let mut stream = api.watch(&wp, &start_rv).await.unwrap().boxed();
    let mut cur = created;
    for i in 1..=20 {
        cur.spec.as_mut().unwrap().holder_identity = Some(format!("h{i}"));
        cur = api.replace("lock", &PostParams::default(), &cur).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut last_rv = 0u64;
    while seen.len() < 20 {
        match next_event(&mut stream).await {
            WatchEvent::Modified(l) => {
                let rv: u64 = l.metadata.resource_version.clone().unwrap().parse().unwrap();
                assert!(
                    rv > last_rv,
                    "resourceVersions must increase: {last_rv} then {rv}"
                );
                last_rv = rv;
                seen.push(holder(&l));
            }
            other => panic!("expected MODIFIED, got {other:?}"),
        }
    }
    let expected: Vec<String> = (1..=20).map(|i| format!("h{i}")).collect();
    assert_eq!(seen, expected);

    // Resume from the middle: exactly the later changes, in order.
    let mid = sim
        .writes()
        .into_iter()
        .find(|w| w.object["spec"]["holderIdentity"] == "h10")
        .unwrap()
        .resource_version;
    let mut resumed = api.watch(&wp, &mid).await.unwrap().boxed();
    for i in 11..=20 {
        match next_event(&mut resumed).await {
            WatchEvent::Modified(l) => assert_eq!(holder(&l), format!("h{i}")),
            other => panic!("expected MODIFIED h{i}, got {other:?}"),
        }
    }

    // Unset resourceVersion: a synthetic ADDED for the current object first.
    let mut fresh = api.watch(&wp, "0").await.unwrap().boxed();
    match next_event(&mut fresh).await {
        WatchEvent::Added(l) => assert_eq!(holder(&l), "h20"),
        other => panic!("expected ADDED, got {other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn too_old_resource_version_gets_410_after_compaction() {
    let sim = sim(&["a"]).await;
    let api = leases(&client(&sim, "a").await);
    let created = api
        .create(&PostParams::default(), &lease("lock", "a"))
        .await
        .unwrap();
    let old = created.metadata.resource_version.clone().unwrap();
    let mut cur = created;
    cur.spec.as_mut().unwrap().holder_identity = Some("b".into());
    api.replace("lock", &PostParams::default(), &cur).await.unwrap();
    sim.compact();
    let mut stream = api.watch(&WatchParams::default(), &old).await.unwrap().boxed();
    match next_event(&mut stream).await {
        WatchEvent::Error(e) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert_eq!(
                e.message,
                format!("too old resource version: {old} ({})", sim.resource_version())
            );
        }
        other => panic!("expected ERROR 410, got {other:?}"),
    }
    let end = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("stream ends");
    assert!(
        end.is_none(),
        "the stream must end after the 410 event, got {end:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn history_window_bounds_resumption() {
    let sim = Sim::start(SimOptions::new(["a"]).history(5)).await.unwrap();
    let api = leases(&client(&sim, "a").await);
    let mut cur = api
        .create(&PostParams::default(), &lease("lock", "h"))
        .await
        .unwrap();
    let old = cur.metadata.resource_version.clone().unwrap();
    for i in 0..10 {
        cur.spec.as_mut().unwrap().holder_identity = Some(format!("h{i}"));
        cur = api.replace("lock", &PostParams::default(), &cur).await.unwrap();
    }
    let mut stream = api.watch(&WatchParams::default(), &old).await.unwrap().boxed();
    assert!(matches!(next_event(&mut stream).await, WatchEvent::Error(e) if e.code == 410));
    sim.shutdown().await;
}

#[tokio::test]
async fn bookmarks_arrive_and_carry_the_latest_version() {
    let sim = Sim::start(SimOptions::new(["a"]).bookmark_interval(Duration::from_millis(100)))
        .await
        .unwrap();
    let api = leases(&client(&sim, "a").await);
    let created = api
        .create(&PostParams::default(), &lease("lock", "a"))
        .await
        .unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();
    let mut stream = api
        .watch(
            &WatchParams {
                bookmarks: true,
                ..WatchParams::default()
            },
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    match next_event(&mut stream).await {
        WatchEvent::Bookmark(b) => assert_eq!(b.metadata.resource_version, rv),
        other => panic!("expected BOOKMARK, got {other:?}"),
    }
    // Without allowWatchBookmarks there are none: the next event is the real change.
    let mut plain = api
        .watch(
            &WatchParams {
                bookmarks: false,
                ..WatchParams::default()
            },
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut cur = created;
    cur.spec.as_mut().unwrap().holder_identity = Some("b".into());
    api.replace("lock", &PostParams::default(), &cur).await.unwrap();
    assert!(matches!(next_event(&mut plain).await, WatchEvent::Modified(_)));
    sim.shutdown().await;
}

#[tokio::test]
async fn timeout_seconds_ends_the_stream_cleanly() {
    let sim = sim(&["a"]).await;
    let api = leases(&client(&sim, "a").await);
    let mut stream = api
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap()
        .boxed();
    let end = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("ends within 20s");
    assert!(end.is_none(), "expected a clean end, got {end:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn runtime_watcher_decodes_the_stream() {
    let sim = Sim::start(SimOptions::new(["a"]).bookmark_interval(Duration::from_millis(200)))
        .await
        .unwrap();
    let api = leases(&client(&sim, "a").await);
    let mut events = kube::runtime::watcher(api.clone(), kube::runtime::watcher::Config::default()).boxed();
    let mut cur = api
        .create(&PostParams::default(), &lease("lock", "a"))
        .await
        .unwrap();
    cur.spec.as_mut().unwrap().holder_identity = Some("b".into());
    api.replace("lock", &PostParams::default(), &cur).await.unwrap();
    let mut holders = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !holders.contains(&"b".to_owned()) {
        let ev = tokio::time::timeout_at(deadline, events.try_next())
            .await
            .expect("events in time")
            .expect("no watcher error");
        match ev {
            Some(kube::runtime::watcher::Event::Apply(l) | kube::runtime::watcher::Event::InitApply(l)) => {
                holders.push(holder(&l))
            }
            Some(_) => {}
            None => panic!("watcher ended"),
        }
    }
    assert_eq!(holders.last().map(String::as_str), Some("b"), "got {holders:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn selector_errors_are_400() {
    let sim = common::plain_sim(&["a"]).await;
    let t = sim.token("a");
    let r = raw(&sim, "GET", "/apis/coordination.k8s.io/v1/namespaces/default/leases?watch=true&fieldSelector=spec.holderIdentity%3Dx", t, None, b"").await.unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "\"spec.holderIdentity\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
    );
    let r = raw(
        &sim,
        "GET",
        "/apis/coordination.k8s.io/v1/namespaces/default/leases?watch=1&labelSelector=a+in+(b)",
        t,
        None,
        b"",
    )
    .await
    .unwrap();
    assert_eq!((r.status, r.json()["reason"].as_str()), (400, Some("BadRequest")));
    sim.shutdown().await;
}
