//! End-to-end: the real binary, the simulator over HTTPS, kubeconfigs — the election's promises.

mod common;

use std::time::Duration;

use common::*;
use kube_sim::{FailSpec, Fault, WatchMode};
use serde_json::Value;

const ELECT_WITHIN: Duration = Duration::from_secs(20);

async fn three(sim: &kube_sim::Sim, extra: &[&str]) -> Vec<Elector> {
    let mut electors = Vec::new();
    for id in ["a", "b", "c"] {
        electors.push(elector(sim, id, extra).await);
    }
    electors
}

/// The electors other than the one at `index`.
fn without(electors: Vec<Elector>, index: usize) -> Vec<Elector> {
    electors
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != index)
        .map(|(_, e)| e)
        .collect()
}

/// Waits until some elector other than `id` reports itself leader.
async fn another_leader(electors: &[Elector], id: &str, within: Duration) {
    eventually(within, "another leader", || async {
        for e in electors.iter().filter(|e| e.id != id) {
            if e.is_leader().await {
                return Some(());
            }
        }
        None
    })
    .await;
}

/// Waits until every elector but the leader has a watch open on the lock and names the leader.
async fn followers_watching(sim: &kube_sim::Sim, electors: &[Elector], leader_id: &str) {
    eventually(ELECT_WITHIN, "every follower watching the leader", || async {
        let counts = sim.requests();
        for follower in electors.iter().filter(|e| e.id != leader_id) {
            let watching = counts
                .get(&follower.id)
                .and_then(|c| c.get("watch leases"))
                .is_some_and(|n| *n > 0);
            let sees = follower.status().await.is_some_and(|s| s["leader"] == leader_id);
            if !(watching && sees) {
                return None;
            }
        }
        Some(())
    })
    .await;
}

fn fencing_token(status: &Value) -> i64 {
    status["fencing_token"]
        .as_i64()
        .unwrap_or_else(|| panic!("no fencing token in {status}"))
}

/// The simulator's applied writes to the Lease, as (monotonic ns, client, holder, transitions).
fn lease_writes(sim: &kube_sim::Sim) -> Vec<(u64, String, String, i64)> {
    sim.writes()
        .into_iter()
        .filter(|w| w.resource == "leases")
        .map(|w| {
            (
                w.monotonic_ns,
                w.client.clone(),
                w.object["spec"]["holderIdentity"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                w.object["spec"]["leaseTransitions"].as_i64().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_candidates_elect_exactly_one_leader_and_keep_it() {
    let sim = sim(&["a", "b", "c"]).await;
    let electors = three(&sim, &[]).await;
    let leader = one_leader(&electors, ELECT_WITHIN).await;
    let id = electors[leader].id.clone();
    let (holder, _) = lease_holder(&sim).expect("the Lease exists");
    assert_eq!(holder, id, "the Lease must name the process that says it leads");

    // Over several lease durations the same process keeps leading and nobody else claims.
    let until = tokio::time::Instant::now() + LEASE * 2;
    while tokio::time::Instant::now() < until {
        assert_eq!(
            leaders(&electors).await,
            vec![id.clone()],
            "leadership must stay put"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for elector in &electors {
        let status = elector.status().await.expect("status answers");
        assert_eq!(
            status["leader"],
            id.as_str(),
            "{} must see {id} as leader: {status}",
            elector.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_the_leader_hands_over_to_a_higher_fencing_token() {
    let sim = sim(&["a", "b", "c"]).await;
    let mut electors = three(&sim, &[]).await;
    let first = one_leader(&electors, ELECT_WITHIN).await;
    let token = fencing_token(&electors[first].status().await.expect("status"));

    electors[first].signal("TERM");
    let exit = electors[first].wait_exit(Duration::from_secs(10)).await;
    assert!(exit.success(), "a graceful shutdown exits 0, got {exit:?}");
    let writes = lease_writes(&sim);
    let released = writes
        .iter()
        .rev()
        .find(|w| w.1 == electors[first].id)
        .expect("the old leader wrote last");
    assert_eq!(
        released.2, "",
        "the old leader's last write releases the Lease: {released:?}"
    );

    let old = electors[first].id.clone();
    let rest = without(electors, first);
    let next = one_leader(&rest, LEASE).await;
    // Released, the Lease is taken at once: the takeover write follows the release write within
    // a retry period on the simulator's clock (watching followers take a few milliseconds; one
    // that ignored the release would wait out the lease).
    let takeover = assert_prompt_takeover(&sim, "leases", &old, RETRY);
    assert_eq!(
        takeover.holder, rest[next].id,
        "the process that leads wrote the takeover"
    );
    let next_token = fencing_token(&rest[next].status().await.expect("status"));
    assert!(
        next_token > token,
        "fencing tokens must increase: {token} then {next_token}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_on_the_leader_fails_over_after_the_lease_expires_and_not_before() {
    // Two candidates: the one follower's own timing is what the write log shows.
    let sim = sim(&["a", "b"]).await;
    let mut electors = vec![elector(&sim, "a", &[]).await, elector(&sim, "b", &[]).await];
    let first = one_leader(&electors, ELECT_WITHIN).await;
    let dead = electors[first].id.clone();
    followers_watching(&sim, &electors, &dead).await;
    sim.reset_requests();
    electors[first].signal("KILL");
    electors[first].wait_exit(Duration::from_secs(5)).await;
    let rest = without(electors, first);
    let next = one_leader(&rest, LEASE * 3).await;

    // Both ends of the gap are the simulator's clock: the last renewal applied, the takeover
    // applied.
    let writes = lease_writes(&sim);
    let last_renewal = writes
        .iter()
        .rev()
        .find(|w| w.1 == dead)
        .expect("the dead leader renewed")
        .0;
    let takeover = writes
        .iter()
        .find(|w| w.0 > last_renewal && w.2 == rest[next].id)
        .expect("the new leader's takeover is in the write log")
        .0;
    let gap = Duration::from_nanos(takeover - last_renewal);
    assert!(
        gap >= LEASE,
        "took over {gap:?} after the last renewal, before the {LEASE:?} lease expired"
    );
    // The watching follower acts at expiry (it saw the renewal a few milliseconds after it was
    // applied and times the lease from then), not a poll later: a poller would first see the
    // renewal up to a jittered retry period late and then find the expiry up to another one late,
    // on average a whole retry period after expiry.
    assert!(
        gap < LEASE + RETRY / 2,
        "took over {gap:?} after the last renewal; a watching follower acts at expiry ({LEASE:?}), \
         within {:?}",
        RETRY / 2
    );
    // And it learned of every renewal from its watch: not one read of the Lease until it took over.
    let follower = &rest[next].id;
    let reads = sim
        .requests()
        .get(follower)
        .and_then(|c| c.get("get leases").copied())
        .unwrap_or(0);
    assert_eq!(reads, 0, "the follower polled the Lease: {:?}", sim.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_steps_down_within_the_renew_deadline() {
    let sim = sim(&["a", "b", "c"]).await;
    let mut electors = three(&sim, &[]).await;
    let first = one_leader(&electors, ELECT_WITHIN).await;
    let id = electors[first].id.clone();
    sim.set_fault(
        &id,
        Fault {
            partition: true,
            ..Fault::default()
        },
    );

    let stopped = electors[first]
        .wait_log(|l| l["message"] == "stopped leading", RENEW_DEADLINE * 3)
        .await;
    let last_renewal = lease_writes(&sim)
        .iter()
        .rev()
        .find(|w| w.1 == id)
        .expect("renewed before")
        .0;
    let ns = |field: &str| {
        stopped[field]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{field} in {stopped}"))
    };
    // The claim (and every readiness answer) ended at the send time of the last successful
    // renewal + renew deadline, so no later than that write's arrival + renew deadline; the
    // loop's own step-down follows when its timer runs.
    let claim_ended = Duration::from_nanos(ns("valid_until_monotonic_ns").saturating_sub(last_renewal));
    assert!(
        claim_ended <= RENEW_DEADLINE,
        "the claim lasted {claim_ended:?} past the last renewal; the renew deadline is {RENEW_DEADLINE:?}"
    );
    assert!(
        ns("monotonic_ns") >= ns("valid_until_monotonic_ns"),
        "stepped down for the deadline: {stopped}"
    );
    assert!(
        !electors[first].is_leader().await,
        "a partitioned process must not report leader"
    );

    // Someone else takes over once the lease expires.
    another_leader(&electors, &id, LEASE * 3).await;
    sim.clear_fault(&id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_renewals_are_delayed_past_the_deadline_steps_down() {
    let sim = sim(&["a", "b", "c"]).await;
    let mut electors = three(&sim, &[]).await;
    let first = one_leader(&electors, ELECT_WITHIN).await;
    let id = electors[first].id.clone();
    let latency = RENEW_DEADLINE + Duration::from_millis(500);
    sim.set_fault(
        &id,
        Fault {
            latency_ms: latency.as_millis() as u64,
            ..Fault::default()
        },
    );
    electors[first]
        .wait_log(|l| l["message"] == "stopped leading", RENEW_DEADLINE * 3)
        .await;
    assert!(!electors[first].is_leader().await);
    let new_leader = eventually(LEASE * 3, "a new leader", || async {
        let now = leaders(&electors).await;
        (now.len() == 1 && now[0] != id).then(|| now[0].clone())
    })
    .await;
    // The old leader's writes still arrive, late; none may make it claim leadership again.
    let status = electors[first].status().await.expect("status answers");
    assert_eq!(
        status["is_leader"], false,
        "{id} claims again while {new_leader} leads: {status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_candidates_leave_exactly_one_leader() {
    let sim = sim(&["a", "b", "c"]).await;
    let mut electors = three(&sim, &[]).await;
    let leader = one_leader(&electors, ELECT_WITHIN).await;
    let leader_id = electors[leader].id.clone();
    followers_watching(&sim, &electors, &leader_id).await;
    // Make the race certain: the simulator holds each follower's writes for 300 ms before
    // applying them, so both claims of the released Lease are in flight, from the same
    // resourceVersion, before either is applied. The first applied wins; the other gets 409.
    let followers: Vec<String> = electors
        .iter()
        .map(|e| e.id.clone())
        .filter(|id| *id != leader_id)
        .collect();
    for id in &followers {
        sim.set_fault(
            id,
            Fault {
                latency_ms: 300,
                verbs: Some(vec!["update".to_owned()]),
                ..Fault::default()
            },
        );
    }
    electors[leader].signal("TERM");
    assert!(
        electors[leader]
            .wait_exit(Duration::from_secs(10))
            .await
            .success()
    );
    let others = without(electors, leader);
    let winner = one_leader(&others, LEASE * 2).await;
    let loser = 1 - winner;
    // The loser's 409 shows in its metrics once it has read the Lease again and names the winner.
    let conflicts = eventually(ELECT_WITHIN, "the loser to count its 409", || async {
        let n = metric(
            &others[loser],
            "elector_api_requests_total",
            &[("verb", "update"), ("code", "409")],
        )
        .await;
        (n > 0.0).then_some(n)
    })
    .await;
    assert_eq!(conflicts, 1.0, "one lost race, one conflict");
    assert_eq!(
        metric(
            &others[winner],
            "elector_api_requests_total",
            &[("verb", "update"), ("code", "409")],
        )
        .await,
        0.0,
        "the winner's write was applied first"
    );
    assert_eq!(leaders(&others).await, vec![others[winner].id.clone()]);
    // Transitions in the Lease count each handover exactly once.
    let writes = lease_writes(&sim);
    for pair in writes.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.2 != b.2 && !b.2.is_empty() {
            assert_eq!(
                b.3,
                a.3 + 1,
                "a new holder adds exactly one transition: {a:?} -> {b:?}"
            );
        } else {
            assert_eq!(
                b.3, a.3,
                "a renewal or release keeps the transitions: {a:?} -> {b:?}"
            );
        }
    }
    for id in &followers {
        sim.clear_fault(id);
    }
}

/// A sample's value from an elector's /metrics (sum over series matching `labels`).
async fn metric(elector: &Elector, name: &str, labels: &[(&str, &str)]) -> f64 {
    let (_, _, body) = elector.get("/metrics").await.expect("metrics answer");
    body.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Sends `GET path` over a fresh connection now and returns a task that reads the answer, so a
/// request can be in flight (queued in the kernel) while the process is stopped.
async fn request_in_flight(addr: std::net::SocketAddr, path: &str) -> tokio::task::JoinHandle<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the kernel accepts a connection for a stopped process");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .expect("the request is queued");
    tokio::spawn(async move {
        let mut raw = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_string(&mut raw)).await;
        raw
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_reports_not_leader_the_instant_it_wakes() {
    let sim = sim(&["a", "b", "c"]).await;
    let electors = three(&sim, &[]).await;
    let first = one_leader(&electors, ELECT_WITHIN).await;
    let paused = &electors[first];
    paused.signal("STOP");
    another_leader(&electors, &paused.id, LEASE * 3).await;
    // A probe arrives while the process is stopped and waits in the kernel; it is answered the
    // moment the process wakes, racing the election thread, which steps down on waking.
    let probe = request_in_flight(paused.addr, "/readyz").await;
    paused.signal("CONT");
    let answer = probe.await.expect("the probe task");
    assert!(
        answer.starts_with("HTTP/1.0 503") || answer.starts_with("HTTP/1.1 503"),
        "a woken leader whose claim lapsed must not be ready: {answer}"
    );
    // Which side of that race the answer came from shows in its reason: "the claim's validity
    // deadline has passed" if /readyz answered before the loop stepped down (readiness computed
    // at the request's moment), otherwise the loop's step-down ("leader is ..."). Both are
    // correct; a /readyz that read a stored flag would answer 200 in the first case. Which case
    // occurs is up to the scheduler, so this end-to-end test cannot force the first one; the
    // unit tests pin it on the paused clock, with no step-down at all:
    // status::tests::leadership_lapses_at_the_validity_deadline_without_any_update and
    // http::tests::readyz_follows_leadership_and_lapses_at_the_deadline_without_an_update.
    assert!(
        answer.contains("not leader: the claim's validity deadline has passed")
            || answer.contains("not leader: leader is"),
        "the 503 names why: {answer}"
    );
    let status = paused.status().await.expect("status");
    assert_eq!(status["is_leader"], false, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_followers_make_almost_no_requests_in_steady_state() {
    let sim = sim(&["a", "b", "c"]).await;
    let electors = three(&sim, &[]).await;
    let leader = one_leader(&electors, ELECT_WITHIN).await;
    let leader_id = electors[leader].id.clone();
    // Start-up is over once every follower has opened its watch and seen the leader.
    followers_watching(&sim, &electors, &leader_id).await;
    sim.reset_requests();
    let window = Duration::from_secs(5);
    tokio::time::sleep(window).await;
    let counts = sim.requests();
    let leader_requests: u64 = counts.get(&leader_id).map(|c| c.values().sum()).unwrap_or(0);
    let renewals_expected = (window.as_millis() / RETRY.as_millis()) as u64;
    assert!(
        leader_requests + 2 >= renewals_expected && leader_requests <= renewals_expected * 2,
        "the leader should renew about every {RETRY:?}: {leader_requests} requests in {window:?}"
    );
    for follower in electors.iter().filter(|e| e.id != leader_id) {
        let made: u64 = counts.get(&follower.id).map(|c| c.values().sum()).unwrap_or(0);
        assert!(
            made <= 1,
            "follower {} made {made} requests in {window:?}: {:?}",
            follower.id,
            counts.get(&follower.id)
        );
    }
}

async fn elect_and_hand_over(lock_type: &str, kind: &str) {
    let sim = sim(&["a", "b"]).await;
    let mut electors = Vec::new();
    for id in ["a", "b"] {
        electors.push(elector(&sim, id, &["--lock-type", lock_type]).await);
    }
    let first = one_leader(&electors, ELECT_WITHIN).await;
    let object = lock_object(&sim, kind).unwrap_or_else(|| panic!("a {kind} named test exists"));
    if kind != "Lease" {
        let annotation = object["metadata"]["annotations"]["control-plane.alpha.kubernetes.io/leader"]
            .as_str()
            .expect("the leader annotation is set");
        let record: Value = serde_json::from_str(annotation).expect("the annotation is JSON");
        assert_eq!(record["holderIdentity"], electors[first].id.as_str(), "{record}");
    }
    electors[first].signal("TERM");
    assert!(electors[first].wait_exit(Duration::from_secs(10)).await.success());
    let other = 1 - first;
    eventually(LEASE, "the other candidate leads", || async {
        electors[other].is_leader().await.then_some(())
    })
    .await;
    let takeover = assert_prompt_takeover(&sim, lock_type, &electors[first].id, RETRY);
    assert_eq!(takeover.holder, electors[other].id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmaps_lock_works() {
    elect_and_hand_over("configmaps", "ConfigMap").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_lock_works() {
    elect_and_hand_over("endpoints", "Endpoints").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_lock_works() {
    elect_and_hand_over("leases", "Lease").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_do_not_make_a_follower_leader_or_kill_the_process() {
    let sim = sim(&["a", "b"]).await;
    sim.set_fault(
        "b",
        Fault {
            fail: Some(FailSpec {
                status: 503,
                ratio: 1.0,
                retry_after_seconds: Some(1),
            }),
            ..Fault::default()
        },
    );
    let electors = vec![elector(&sim, "a", &[]).await, elector(&sim, "b", &[]).await];
    let leader = one_leader(&electors, ELECT_WITHIN).await;
    assert_eq!(electors[leader].id, "a", "b cannot reach the API, so a must lead");
    let status = eventually(ELECT_WITHIN, "b to report its error", || async {
        electors[1].status().await.filter(|s| s["last_error"].is_string())
    })
    .await;
    assert!(
        status["last_error"].as_str().is_some_and(|e| e.contains("503")),
        "b reports the 503: {status}"
    );
    assert_eq!(status["is_leader"], false);
    let (code, _, _) = electors[1].get("/livez").await.expect("livez answers");
    assert_eq!(
        code, 200,
        "an unreachable API server is no reason to restart the elector"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_whose_watch_keeps_failing_polls_and_still_takes_over() {
    let sim = sim(&["a", "b"]).await;
    let mut electors = vec![elector(&sim, "a", &[]).await, elector(&sim, "b", &[]).await];
    let first = one_leader(&electors, ELECT_WITHIN).await;
    let follower = electors[1 - first].id.clone();
    sim.set_fault(
        &follower,
        Fault {
            watch: WatchMode::Close,
            ..Fault::default()
        },
    );
    // With its watch cut, the follower reads the lock every jittered retry period instead.
    let polled = |sim: &kube_sim::Sim| {
        sim.requests()
            .get(&follower)
            .and_then(|c| c.get("get leases").copied())
    };
    let before = polled(&sim).unwrap_or(0);
    eventually(LEASE * 2, "the follower to poll", || async {
        (polled(&sim).unwrap_or(0) >= before + 2).then_some(())
    })
    .await;
    electors[first].signal("KILL");
    electors[first].wait_exit(Duration::from_secs(5)).await;
    let rest = without(electors, first);
    one_leader(&rest, LEASE + RETRY * 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumed_from_a_compacted_version_starts_over_and_keeps_working() {
    let sim = sim(&["a", "b"]).await;
    let debug = [("RUST_LOG", "info,kube_elector=debug")];
    let mut electors = vec![
        elector_with_env(&sim, "a", &[], &debug).await,
        elector_with_env(&sim, "b", &[], &debug).await,
    ];
    let first = one_leader(&electors, ELECT_WITHIN).await;
    let second = 1 - first;
    let follower = electors[second].id.clone();
    followers_watching(&sim, &electors, &electors[first].id).await;
    // Cut the follower's watch, forget the history, let it reconnect from its old version.
    sim.set_fault(
        &follower,
        Fault {
            watch: WatchMode::Close,
            ..Fault::default()
        },
    );
    electors[second]
        .wait_log(
            |l| l["message"] == "watch on the lock lost; polling until it is back",
            LEASE * 2,
        )
        .await;
    // The leader renews while the follower's watch is down, so the version it resumes from is
    // behind the compaction (resuming from the latest version is no reason for 410 Gone).
    let cut = sim.writes().last().map_or(0, |w| w.seq);
    eventually(LEASE, "a renewal while the follower's watch is down", || async {
        sim.writes_since(cut).into_iter().find(|w| w.resource == "leases")
    })
    .await;
    sim.compact();
    sim.clear_fault(&follower);
    electors[second]
        .wait_log(
            |l| l["message"] == "watch expired; starting over from the current state",
            LEASE * 4,
        )
        .await;
    electors[second]
        .wait_log(
            |l| l["message"] == "watch on the lock is back; polling stops",
            LEASE,
        )
        .await;
    // Back on a watch, the follower stops polling: no reads over several retry periods.
    let reads = || {
        sim.requests()
            .get(&follower)
            .and_then(|c| c.get("get leases").copied())
            .unwrap_or(0)
    };
    let settled = reads();
    tokio::time::sleep(RETRY * 4).await;
    assert_eq!(
        reads(),
        settled,
        "the follower still polls: its new watch is not working"
    );
    electors[first].signal("TERM");
    assert!(electors[first].wait_exit(Duration::from_secs(10)).await.success());
    let old = electors[first].id.clone();
    let rest = without(electors, first);
    one_leader(&rest, LEASE).await;
    // The restarted watch delivers the release: the takeover follows it at once.
    assert_prompt_takeover(&sim, "leases", &old, RETRY);
}
