//! End-to-end: the settings and shutdown paths the other suites do not run: `--follow poll`,
//! `--release-on-shutdown=false`, `--shutdown-timeout` bounding a hung release, the release retried
//! after a conflict, the check and the release after a write interrupted by shutdown, and the
//! harness reading an exited process's log to its last line. Evidence comes from the simulator's
//! write log and request counts, not from timing guesses.

mod common;

use std::time::Duration;

use common::*;
use kube_sim::Fault;

const ELECT_WITHIN: Duration = Duration::from_secs(20);

/// A released Lease named `test`, as a leader leaves it on shutdown, written by `operator`: a
/// claim of it leads at once (its resourceVersion proves that no one took it since), unlike a
/// create of a missing lock, which leads only a lease later.
async fn released_lease(sim: &kube_sim::Sim) {
    use k8s_openapi::api::coordination::v1::Lease;
    let kubeconfig =
        kube::config::Kubeconfig::read_from(sim.kubeconfig_path("operator")).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("client config");
    let client = kube::Client::try_from(config).expect("client");
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let lease: Lease = serde_json::from_value(serde_json::json!({"metadata": {"name": "test"},
        "spec": {"holderIdentity": "", "leaseDurationSeconds": 1, "acquireTime": now,
            "renewTime": now, "leaseTransitions": 0}}))
    .expect("lease");
    kube::Api::<Lease>::namespaced(client, "default")
        .create(&Default::default(), &lease)
        .await
        .expect("create the released lease");
}

/// Starts `a` with every request waiting 1 s in the API server (applied even when `a` hangs up
/// on it, with `complete_abandoned`), and returns once its first `verb` on the Lease is in flight.
async fn a_with_a_write_in_flight(sim: &kube_sim::Sim, complete_abandoned: bool, verb: &str) -> Elector {
    sim.set_fault(
        "a",
        Fault {
            latency_ms: 1_000,
            complete_abandoned,
            ..Fault::default()
        },
    );
    let a = elector(sim, "a", &[]).await;
    let what = format!("{verb} leases");
    eventually(ELECT_WITHIN, &format!("a's {verb} to be in flight"), || async {
        (count(sim, "a", &what) >= 1).then_some(())
    })
    .await;
    a
}

/// Requests of `client` for `"verb resource"` so far.
fn count(sim: &kube_sim::Sim, client: &str, what: &str) -> u64 {
    sim.requests()
        .get(client)
        .and_then(|c| c.get(what).copied())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_followers_read_every_retry_period_never_watch_and_take_over_a_release() {
    let sim = sim(&["a", "b", "c"]).await;
    let mut electors = Vec::new();
    for id in ["a", "b", "c"] {
        electors.push(elector(&sim, id, &["--follow", "poll"]).await);
    }
    let first = one_leader(&electors, ELECT_WITHIN).await;
    let leader = electors[first].id.clone();
    // Steady state: each follower reads the lock once per jittered retry period (RETRY to
    // 1.2 × RETRY) and never opens a watch.
    sim.reset_requests();
    let window = RETRY * 8;
    tokio::time::sleep(window).await;
    for follower in electors.iter().filter(|e| e.id != leader) {
        let reads = count(&sim, &follower.id, "get leases");
        assert!(
            (5..=9).contains(&reads),
            "{} read the lock {reads} times in {window:?}; polling every {RETRY:?} (jitter 1.2) gives 6 to 8",
            follower.id
        );
    }
    for elector in &electors {
        assert_eq!(
            count(&sim, &elector.id, "watch leases"),
            0,
            "{} watches in poll mode: {:?}",
            elector.id,
            sim.requests()
        );
    }
    // A release is found at the next poll: within one jittered retry period (+ scheduling).
    electors[first].signal("TERM");
    assert!(electors[first].wait_exit(Duration::from_secs(10)).await.success());
    let rest: Vec<Elector> = electors.into_iter().filter(|e| e.id != leader).collect();
    one_leader(&rest, LEASE).await;
    assert_prompt_takeover(&sim, "leases", &leader, RETRY.mul_f64(1.2) + RETRY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_release_on_shutdown_the_lease_is_left_to_expire() {
    let sim = sim(&["a", "b"]).await;
    let mut electors = Vec::new();
    for id in ["a", "b"] {
        electors.push(elector(&sim, id, &["--release-on-shutdown=false"]).await);
    }
    let first = one_leader(&electors, ELECT_WITHIN).await;
    let old = electors[first].id.clone();
    electors[first].signal("TERM");
    let exit = electors[first].wait_exit(Duration::from_secs(10)).await;
    assert!(exit.success(), "a graceful shutdown exits 0, got {exit:?}");
    let other = 1 - first;
    eventually(LEASE * 3, "the other candidate to lead", || async {
        electors[other].is_leader().await.then_some(())
    })
    .await;
    let writes = lock_writes(&sim, "leases");
    let last_own = writes
        .iter()
        .rev()
        .find(|w| w.client == old)
        .expect("the old leader renewed");
    assert_eq!(
        last_own.holder, old,
        "with --release-on-shutdown=false the last write is a renewal, not a release: {writes:?}"
    );
    let takeover = writes
        .iter()
        .find(|w| w.seq > last_own.seq && !w.holder.is_empty())
        .expect("a takeover");
    let gap = Duration::from_nanos(takeover.monotonic_ns - last_own.monotonic_ns);
    assert!(
        gap >= LEASE,
        "taken over {gap:?} after the last renewal: before the {LEASE:?} lease expired"
    );
    assert!(
        electors[first].log_messages("released the lock").is_empty(),
        "nothing was released"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_timeout_bounds_a_release_the_api_never_answers() {
    let sim = sim(&["a"]).await;
    let timeout = Duration::from_secs(1);
    // No release delay (at most half the shutdown timeout, 1 s by default): the whole 1 s is
    // the hung release's.
    let mut electors = vec![elector(&sim, "a", &["--shutdown-timeout", "1s", "--release-delay", "0s"]).await];
    one_leader(&electors, ELECT_WITHIN).await;
    // From now on the API server holds every write of `a` without ever answering.
    sim.set_fault(
        "a",
        Fault {
            hang: true,
            verbs: Some(vec!["update".to_owned()]),
            ..Fault::default()
        },
    );
    let sent = monotonic_now_ns();
    electors[0].signal("TERM");
    let exit = electors[0].wait_exit(Duration::from_secs(30)).await;
    let took = Duration::from_nanos(monotonic_now_ns().saturating_sub(sent));
    assert!(exit.success(), "a bounded release still exits 0, got {exit:?}");
    // The default shutdown timeout is 5 s; exiting well before shows the flag bounds the release.
    assert!(
        took < timeout + Duration::from_secs(2),
        "exited {took:?} after SIGTERM with --shutdown-timeout {timeout:?}"
    );
    let gave_up = electors[0].logs().into_iter().any(|l| {
        l["message"] == "releasing the lock timed out; others take over when it expires"
            || l["message"] == "could not release the lock; others take over when it expires"
    });
    assert!(
        gave_up,
        "the elector says it gave up the release:\n{}",
        electors[0].dump_logs()
    );
    assert!(
        lock_writes(&sim, "leases").iter().all(|w| !w.holder.is_empty()),
        "the hung release was never applied"
    );
    assert!(
        count(&sim, "a", "update leases") >= 1,
        "the release was attempted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_conflicts_is_retried_from_a_fresh_read() {
    let sim = sim(&["a", "x"]).await;
    let mut a = elector(&sim, "a", &[]).await;
    one_leader(std::slice::from_ref(&a), ELECT_WITHIN).await;
    // `a` must not learn of the outside change below from its watch: its cached Lease goes stale.
    sim.set_fault(
        "a",
        Fault {
            watch: kube_sim::WatchMode::Stall,
            ..Fault::default()
        },
    );
    let api: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(outside_client(&sim, "x").await, "default");
    // Each round: another writer changes the Lease (not its holder), and `a` is stopped right
    // after, before its next renewal can notice. A round where a renewal came in between anyway
    // proves nothing and is repeated.
    for round in 0..5 {
        let touched = touch(&api, &format!("round-{round}")).await;
        let touched_rv = touched.metadata.resource_version.unwrap_or_default();
        let seq = sim.writes().last().map_or(0, |w| w.seq);
        a.signal("TERM");
        assert!(a.wait_exit(Duration::from_secs(10)).await.success());
        let after: Vec<_> = sim
            .writes_since(seq)
            .into_iter()
            .filter(|w| w.resource == "leases" && w.client == "a")
            .collect();
        let renewed = after.iter().any(|w| w.object["spec"]["holderIdentity"] == "a");
        if !renewed {
            assert_eq!(
                after.len(),
                1,
                "after SIGTERM, exactly one write by a: the release, retried after its 409 ({:?})",
                sim.requests()
            );
            let release = &after[0];
            assert_eq!(
                release.object["spec"]["holderIdentity"], "",
                "the write after SIGTERM is the release: {release:?}"
            );
            assert_eq!(
                release.object["metadata"]["labels"]["touched"],
                format!("round-{round}"),
                "the release was written over the fresh read, keeping the other writer's change"
            );
            assert!(
                a.log_messages("released the lock").len() == 1,
                "{}",
                a.dump_logs()
            );
            assert!(
                count(&sim, "a", "get leases") >= 1,
                "the retry read the Lease again (resourceVersion {touched_rv} was new to a)"
            );
            return;
        }
        // A renewal got in first (it conflicted and re-read), so the release did not conflict:
        // start over.
        sim.clear_fault("a");
        a.restart().await;
        one_leader(std::slice::from_ref(&a), ELECT_WITHIN).await;
        sim.set_fault(
            "a",
            Fault {
                watch: kube_sim::WatchMode::Stall,
                ..Fault::default()
            },
        );
    }
    panic!("in five rounds a renewal always came between the outside write and the shutdown");
}

/// Sets the label `touched` on the Lease `test` as another client would: read, change, write
/// conditionally, and again from a fresh read when a renewal got in between (409).
async fn touch(
    api: &kube::Api<k8s_openapi::api::coordination::v1::Lease>,
    value: &str,
) -> k8s_openapi::api::coordination::v1::Lease {
    for _ in 0..20 {
        let mut lease = api.get("test").await.expect("get the Lease");
        lease
            .metadata
            .labels
            .get_or_insert_default()
            .insert("touched".into(), value.to_owned());
        match api.replace("test", &Default::default(), &lease).await {
            Ok(touched) => return touched,
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(error) => panic!("the outside write failed: {error}"),
        }
    }
    panic!("the outside write conflicted with a renewal 20 times in a row");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_interrupted_by_shutdown_is_checked_before_giving_up() {
    let sim = sim(&["a", "operator"]).await;
    released_lease(&sim).await;
    // Every request of `a` waits 1 s in the API server, so its first claim is still in flight
    // when SIGTERM comes. The elector cannot know whether the claim landed, so before exiting it
    // reads the lock and releases it if it names `a`. (By default kube-sim abandons a request
    // whose client hung up, so here the claim never lands: the read finds no lock to release.)
    let mut a = a_with_a_write_in_flight(&sim, false, "update").await;
    let reads_before = count(&sim, "a", "get leases");
    a.signal("TERM");
    assert!(a.wait_exit(Duration::from_secs(20)).await.success());
    assert_eq!(
        count(&sim, "a", "get leases"),
        reads_before + 1,
        "after SIGTERM the elector reads the lock once to learn the interrupted claim's outcome: {:?}",
        sim.requests()
    );
    assert!(
        !a.log_messages("the lock is not ours; nothing to release")
            .is_empty(),
        "the read found nothing of ours to release:\n{}",
        a.dump_logs()
    );
    assert!(
        lock_writes(&sim, "leases").iter().all(|w| w.holder != "a"),
        "no lock names a: {:?}",
        lock_writes(&sim, "leases")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_interrupted_by_shutdown_that_lands_anyway_is_released() {
    let sim = sim(&["a", "operator"]).await;
    released_lease(&sim).await;
    // As above, but the API server applies the claim although the elector hung up on it
    // (`complete_abandoned`). The read after SIGTERM waits 1 s too, so it is answered after the
    // claim was applied, finds the lock naming `a`, and the elector releases it.
    let mut a = a_with_a_write_in_flight(&sim, true, "update").await;
    assert_eq!(
        lock_writes(&sim, "leases").len(),
        1,
        "the claim is still in flight"
    );
    a.signal("TERM");
    assert!(a.wait_exit(Duration::from_secs(20)).await.success());
    let writes = lock_writes(&sim, "leases");
    let holders: Vec<&str> = writes.iter().map(|w| w.holder.as_str()).collect();
    assert_eq!(
        holders,
        ["", "a", ""],
        "the interrupted claim landed, then the release: {writes:?}"
    );
    assert_eq!(a.log_messages("released the lock").len(), 1, "{}", a.dump_logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_interrupted_by_shutdown_that_lands_anyway_is_not_released() {
    let sim = sim(&["a"]).await;
    // As above, but the lock is missing, so the interrupted claim is a create: a lock taken with
    // no past, which would have led only a lease later. Released, it would be taken at once by
    // others although whoever may have held it a moment ago could still lead.
    let mut a = a_with_a_write_in_flight(&sim, true, "create").await;
    a.signal("TERM");
    assert!(a.wait_exit(Duration::from_secs(20)).await.success());
    // The process has exited; the API server applies the abandoned create after its latency.
    let writes = eventually(ELECT_WITHIN, "the abandoned create to land", || async {
        Some(lock_writes(&sim, "leases")).filter(|w| !w.is_empty())
    })
    .await;
    let holders: Vec<&str> = writes.iter().map(|w| w.holder.as_str()).collect();
    assert_eq!(
        holders,
        ["a"],
        "the create landed and was not released: {writes:?}"
    );
    assert_eq!(
        a.log_messages("held the lock without leading on it yet; not releasing (others take it over when its lease runs out)")
            .len(),
        1,
        "{}",
        a.dump_logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_reads_an_exited_process_log_to_its_last_line() {
    let sim = sim(&["a"]).await;
    let mut a = elector(&sim, "a", &[]).await;
    one_leader(std::slice::from_ref(&a), ELECT_WITHIN).await;
    a.signal("TERM");
    assert!(a.wait_exit(Duration::from_secs(10)).await.success());
    // No waiting here: right after wait_exit the log must already hold the process's last lines,
    // "stopped leading" and the release that follows it. The chaos suite's overlap check reads
    // the log at exactly this point.
    let logs = a.logs();
    let position = |message: &str| logs.iter().position(|l| l["message"] == message);
    let stopped =
        position("stopped leading").unwrap_or_else(|| panic!("no 'stopped leading' in:\n{}", a.dump_logs()));
    let released = position("released the lock")
        .unwrap_or_else(|| panic!("no 'released the lock' in:\n{}", a.dump_logs()));
    assert!(stopped < released, "{}", a.dump_logs());
    assert_eq!(
        released,
        logs.len() - 1,
        "the release is the last thing the process logs:\n{}",
        a.dump_logs()
    );
}
