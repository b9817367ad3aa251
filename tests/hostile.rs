//! End-to-end tests of what operators and other clients do to the lock: delete it, strip its
//! record, write a foreign holder without resourceVersion, write unrelated fields, run two
//! processes under one identity, write records in other clients' formats, restart a container
//! in the same pod. Each runs the real binary against the simulator; a second client,
//! `operator`, acts on the lock through the ordinary API as `kubectl` would.

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube_sim::Sim;
use serde_json::{Value, json};

const WITHIN: Duration = Duration::from_secs(30);
const LEASE_NS: u64 = 3_000_000_000;
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";

/// A client acting on the simulator as a person with `kubectl` would.
async fn operator(sim: &Sim) -> kube::Client {
    let kubeconfig =
        kube::config::Kubeconfig::read_from(sim.kubeconfig_path("operator")).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("client config");
    kube::Client::try_from(config).expect("client")
}

/// Waits for `elector` to lead and returns its status.
async fn leads(elector: &Elector) -> Value {
    eventually(WITHIN, &format!("{} leading", elector.id), || async {
        elector.status().await.filter(|s| s["is_leader"] == true)
    })
    .await
}

/// The monotonic time of a log line.
fn stamp(line: &Value) -> u64 {
    line["monotonic_ns"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .or_else(|| line["monotonic_ns"].as_u64())
        .unwrap_or_else(|| panic!("no monotonic_ns in {line}"))
}

/// The monotonic time of `elector`'s log line `message` (the last one).
fn logged_at(elector: &Elector, message: &str) -> u64 {
    let lines = elector.log_messages(message);
    let line = lines.last().unwrap_or_else(|| {
        panic!(
            "{}: no {message:?} line; logs:\n{}",
            elector.id,
            elector.dump_logs()
        )
    });
    stamp(line)
}

/// The monotonic time of `elector`'s first "became leader" line stamped after `after_ns` (on the
/// simulator's clock, CLOCK_MONOTONIC like the elector's), waiting for it: `/status` can say
/// "leader" before the harness has read the log line, and an elector that led before the fault
/// has an earlier line that must not be taken for this one.
async fn became_leader_after(elector: &Elector, after_ns: u64) -> u64 {
    eventually(
        WITHIN,
        &format!("{}'s \"became leader\" line after the fault", elector.id),
        || async {
            elector
                .log_messages("became leader")
                .iter()
                .map(stamp)
                .find(|&at| at > after_ns)
        },
    )
    .await
}

/// The simulator's monotonic time of its write `seq`.
fn written_at(sim: &Sim, seq: u64) -> u64 {
    sim.writes()
        .into_iter()
        .find(|w| w.seq == seq)
        .map(|w| w.monotonic_ns)
        .unwrap_or_else(|| panic!("write {seq} is in the write log"))
}

/// The last write to the lock by `client` before the write with sequence `before`.
fn last_write_by(sim: &Sim, client: &str, before: u64) -> kube_sim::WriteRecord {
    sim.writes()
        .into_iter()
        .rfind(|w| w.client == client && w.seq < before && w.name == "test")
        .unwrap_or_else(|| panic!("no write by {client} before #{before}"))
}

/// The first write by an elector (not the operator) after `after`, once there is one.
async fn next_elector_write(sim: &Sim, after: u64) -> kube_sim::WriteRecord {
    eventually(WITHIN, "an elector's write to the lock", || async {
        sim.writes_since(after)
            .into_iter()
            .find(|w| w.client != "operator" && w.name == "test" && w.verb != "delete")
    })
    .await
}

fn lease_transitions(write: &kube_sim::WriteRecord) -> i64 {
    write.object["spec"]["leaseTransitions"].as_i64().unwrap_or(-1)
}

fn annotation_record(write: &kube_sim::WriteRecord) -> Value {
    write.object["metadata"]["annotations"][LEADER_ANNOTATION]
        .as_str()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

/// Runs `a` to leadership with a follower `b` behind it, and hands over once so the token is 1.
async fn leader_and_follower(sim: &Sim, extra: &[&str]) -> (Elector, Elector) {
    let mut a = elector(sim, "a", extra).await;
    leads(&a).await;
    let b = elector(sim, "b", extra).await;
    a.signal("TERM");
    a.wait_exit(WITHIN).await;
    let status = leads(&b).await;
    assert_eq!(status["fencing_token"], 1);
    a.restart().await;
    eventually(WITHIN, "a following b", || async {
        a.status().await.filter(|s| s["leader"] == "b")
    })
    .await;
    (b, a)
}

/// What every hostile change must keep: the old leader stopped leading before the new one
/// began (on the shared monotonic clock), nobody began to lead before the old holder's lease ran
/// out counted from its last renewal, and the new token is above the old one. `takeover` is the
/// first write by an elector after the change, made by one of `candidates` (the old leader may
/// be the one that takes the lock again).
async fn assert_safe_takeover(
    sim: &Sim,
    old: &Elector,
    candidates: &[&Elector],
    fault_seq: u64,
    takeover: &kube_sim::WriteRecord,
    old_token: i64,
    token: i64,
) {
    let new = candidates
        .iter()
        .find(|c| c.id == takeover.client)
        .unwrap_or_else(|| panic!("the takeover was written by {}", takeover.client));
    leads(new).await;
    let began = became_leader_after(new, written_at(sim, fault_seq)).await;
    let last_renewal = last_write_by(sim, &old.id, fault_seq);
    assert!(
        began >= last_renewal.monotonic_ns + LEASE_NS,
        "{} began to lead {} ms after the old holder's last renewal, before its lease ran out",
        new.id,
        (began - last_renewal.monotonic_ns) / 1_000_000
    );
    let stopped = logged_at(old, "stopped leading");
    assert!(stopped <= began, "{} still led when {} began to", old.id, new.id);
    assert!(
        token > old_token,
        "the fencing token went from {old_token} to {token}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_lock_makes_the_leader_step_down_and_is_led_again_only_after_its_lease_with_a_higher_token()
{
    let sim = sim(&["a", "b", "operator"]).await;
    // Polling followers (the case where a follower used to recreate the lock at once), and a
    // ConfigMap, whose update answers 404 once it is gone (a Lease is created on update).
    let (mut leader, follower) =
        leader_and_follower(&sim, &["--follow", "poll", "--lock-type", "configmaps"]).await;
    let maps: Api<ConfigMap> = Api::namespaced(operator(&sim).await, "default");
    maps.delete("test", &DeleteParams::default())
        .await
        .expect("delete");
    let deleted = sim
        .writes()
        .into_iter()
        .rfind(|w| w.verb == "delete")
        .expect("the delete is in the write log");
    let stop = leader
        .wait_log(|l| l["message"] == "stopped leading", WITHIN)
        .await;
    assert_eq!(stop["reason"], "the lock was deleted", "{stop}");
    let created = next_elector_write(&sim, deleted.seq).await;
    assert_eq!(created.verb, "create");
    let token = annotation_record(&created)["leaderTransitions"]
        .as_i64()
        .unwrap_or(-1);
    assert_safe_takeover(
        &sim,
        &leader,
        &[&leader, &follower],
        deleted.seq,
        &created,
        1,
        token,
    )
    .await;
    assert_eq!(token, 2, "highest seen (1) + 1, not 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_deleted_after_its_holder_died_is_led_again_only_after_the_holders_lease_with_a_higher_token()
{
    let sim = sim(&["a", "b", "operator"]).await;
    let (mut leader, follower) = leader_and_follower(&sim, &["--follow", "poll"]).await;
    leader.signal("KILL");
    leader.wait_exit(WITHIN).await;
    let leases: Api<Lease> = Api::namespaced(operator(&sim).await, "default");
    leases
        .delete("test", &DeleteParams::default())
        .await
        .expect("delete");
    let deleted = sim
        .writes()
        .into_iter()
        .rfind(|w| w.verb == "delete")
        .expect("the delete is in the write log");
    let created = next_elector_write(&sim, deleted.seq).await;
    assert_eq!(created.verb, "create");
    assert_eq!(created.client, follower.id);
    leads(&follower).await;
    let began = became_leader_after(&follower, deleted.monotonic_ns).await;
    let last_renewal = last_write_by(&sim, &leader.id, deleted.seq);
    assert!(
        began >= last_renewal.monotonic_ns + LEASE_NS,
        "led {} ms after the dead holder's last renewal, before its lease ran out",
        (began - last_renewal.monotonic_ns) / 1_000_000
    );
    assert_eq!(lease_transitions(&created), 2, "highest seen (1) + 1, not 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripped_record_is_waited_out_and_taken_with_a_higher_token() {
    let sim = sim(&["a", "b", "operator"]).await;
    let (mut leader, follower) = leader_and_follower(&sim, &["--lock-type", "configmaps"]).await;
    let maps: Api<ConfigMap> = Api::namespaced(operator(&sim).await, "default");
    let strip = json!({"metadata": {"annotations": {LEADER_ANNOTATION: null}}});
    maps.patch("test", &PatchParams::default(), &Patch::Merge(&strip))
        .await
        .expect("strip");
    let stripped = sim
        .writes()
        .into_iter()
        .rfind(|w| w.client == "operator")
        .expect("logged");
    let stop = leader
        .wait_log(|l| l["message"] == "stopped leading", WITHIN)
        .await;
    assert_eq!(stop["reason"], "the lock's record was removed", "{stop}");
    let takeover = next_elector_write(&sim, stripped.seq).await;
    let token = annotation_record(&takeover)["leaderTransitions"]
        .as_i64()
        .unwrap_or(-1);
    assert_safe_takeover(
        &sim,
        &leader,
        &[&leader, &follower],
        stripped.seq,
        &takeover,
        1,
        token,
    )
    .await;
    assert_eq!(token, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_holder_written_without_resource_version_is_waited_out_as_if_the_old_record_stood() {
    let sim = sim(&["a", "b", "operator"]).await;
    let (mut leader, follower) = leader_and_follower(&sim, &[]).await;
    let leases: Api<Lease> = Api::namespaced(operator(&sim).await, "default");
    // A merge patch carries no resourceVersion: it is applied whatever the leader wrote last.
    let foreign =
        json!({"spec": {"holderIdentity": "intruder", "leaseDurationSeconds": 1, "leaseTransitions": 0}});
    leases
        .patch("test", &PatchParams::default(), &Patch::Merge(&foreign))
        .await
        .expect("patch");
    let written = sim
        .writes()
        .into_iter()
        .rfind(|w| w.client == "operator")
        .expect("logged");
    let stop = leader
        .wait_log(|l| l["message"] == "stopped leading", WITHIN)
        .await;
    assert_eq!(stop["reason"], "the lock now names another holder", "{stop}");
    let takeover = next_elector_write(&sim, written.seq).await;
    assert_safe_takeover(
        &sim,
        &leader,
        &[&leader, &follower],
        written.seq,
        &takeover,
        1,
        lease_transitions(&takeover),
    )
    .await;
    assert_eq!(
        lease_transitions(&takeover),
        2,
        "above the 1 seen before the rewrite to 0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrelated_writes_to_the_lock_do_not_keep_a_dead_leaders_lease_alive() {
    let sim = sim(&["a", "b", "operator"]).await;
    let mut leader = elector(&sim, "a", &["--lock-type", "configmaps"]).await;
    leads(&leader).await;
    let follower = elector(&sim, "b", &["--lock-type", "configmaps"]).await;
    eventually(WITHIN, "b following a", || async {
        follower.status().await.filter(|s| s["leader"] == "a")
    })
    .await;
    leader.signal("KILL");
    leader.wait_exit(WITHIN).await;
    let killed_at = sim.writes().last().map_or(0, |w| w.seq);
    // GitOps-style noise: a label and the data change every 200 ms, the record never.
    let maps: Api<ConfigMap> = Api::namespaced(operator(&sim).await, "default");
    let noise = tokio::spawn(async move {
        for i in 0u64.. {
            let patch =
                json!({"metadata": {"labels": {"sync": i.to_string()}}, "data": {"n": i.to_string()}});
            let _ = maps
                .patch("test", &PatchParams::default(), &Patch::Merge(&patch))
                .await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let status = leads(&follower).await;
    noise.abort();
    let takeover = sim
        .writes_since(killed_at)
        .into_iter()
        .find(|w| w.client == "b")
        .expect("b's takeover is logged");
    let noisy = sim
        .writes_since(killed_at)
        .iter()
        .filter(|w| w.client == "operator" && w.seq < takeover.seq)
        .count();
    assert!(noisy >= 5, "the noise ran through the lease ({noisy} writes)");
    let last_renewal = last_write_by(&sim, "a", killed_at + 1);
    assert!(
        takeover.monotonic_ns >= last_renewal.monotonic_ns + LEASE_NS,
        "not before expiry"
    );
    assert_eq!(status["fencing_token"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_in_other_clients_formats_and_garbage_are_taken_over_not_wedged() {
    let sim = sim(&["a", "operator"]).await;
    let maps: Api<ConfigMap> = Api::namespaced(operator(&sim).await, "default");
    // As a client library that writes numbers as strings and times with an offset does.
    let foreign = json!({"holderIdentity": "py-client", "leaseDurationSeconds": "2",
        "acquireTime": "2026-01-01T10:00:00+01:00", "renewTime": "2026-01-01T10:00:00+01:00",
        "leaderTransitions": "7"});
    let map: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "test",
        "annotations": {LEADER_ANNOTATION: foreign.to_string()}}}))
    .expect("configmap");
    maps.create(&PostParams::default(), &map).await.expect("create");
    let a = elector(&sim, "a", &["--lock-type", "configmaps"]).await;
    let status = leads(&a).await;
    assert_eq!(status["fencing_token"], 8, "the string \"7\" was read as 7");
    assert_eq!(status["last_error"], Value::Null);

    // Garbage under a live leader: a record it did not write, held by an unknown holder.
    let garbage = json!({"metadata": {"annotations": {LEADER_ANNOTATION: "{\"holderIdentity\": 42"}}});
    maps.patch("test", &PatchParams::default(), &Patch::Merge(&garbage))
        .await
        .expect("patch");
    let written = sim
        .writes()
        .into_iter()
        .rfind(|w| w.client == "operator")
        .expect("logged");
    let takeover = next_elector_write(&sim, written.seq).await;
    assert!(
        takeover.monotonic_ns >= written.monotonic_ns + LEASE_NS,
        "an unreadable record stands for our own lease duration"
    );
    assert_eq!(annotation_record(&takeover)["leaderTransitions"], 9);
    leads(&a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_live_processes_with_one_identity_never_both_lead_and_the_other_reports_it() {
    let sim = sim(&["twin"]).await;
    let first = elector(&sim, "twin", &[]).await;
    leads(&first).await;
    let second = elector(&sim, "twin", &[]).await;
    // Over two lease durations: the second never leads, and says why.
    let conflict = eventually(WITHIN, "the second twin reporting the conflict", || async {
        second
            .status()
            .await
            .filter(|s| s["identity_conflict"].is_string())
    })
    .await;
    let first_status = first.status().await.expect("status");
    assert_eq!(conflict["identity_conflict"], first_status["incarnation"]);
    let (_, _, metrics) = second.get("/metrics").await.expect("metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("elector_identity_conflict{") && l.ends_with(" 1")),
        "{metrics}"
    );
    let until = tokio::time::Instant::now() + 2 * LEASE;
    while tokio::time::Instant::now() < until {
        let both = first.is_leader().await && second.is_leader().await;
        assert!(!both, "two processes with one identity both lead");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(first.is_leader().await, "the first keeps leading");
    assert!(!second.log_messages("another live process holds the lock under this identity; this one will not lead while it does (give every candidate its own --id)").is_empty());
    let token = first_status["fencing_token"].as_i64().expect("token");
    first.signal("KILL");
    let status = leads(&second).await;
    assert!(
        status["fencing_token"].as_i64() > Some(token),
        "a higher token than the twin's: {status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_restarted_in_the_same_pod_takes_its_lock_back_at_once() {
    let sim = sim(&["a"]).await;
    // A long lease, so that taking the lock back at once and waiting it out are far apart.
    let args = [
        "--pod-uid",
        "0b7e1c9a-5d7e-4f7e-9c61-6f1f0b1c2d3e",
        "--lease-duration",
        "20s",
        "--renew-deadline",
        "10s",
        "--retry-period",
        "2s",
    ];
    let mut a = elector(&sim, "a", &args).await;
    let status = leads(&a).await;
    assert_eq!(status["fencing_token"], 0);
    a.signal("KILL");
    a.wait_exit(WITHIN).await;
    let killed = sim.writes().last().map_or(0, |w| w.seq);
    a.restart().await;
    let status = leads(&a).await;
    let takeover = sim.writes_since(killed).into_iter().next().expect("logged");
    let last_renewal = last_write_by(&sim, "a", killed + 1);
    assert!(
        takeover.monotonic_ns < last_renewal.monotonic_ns + 20_000_000_000,
        "took {} ms: the lease was waited out",
        (takeover.monotonic_ns - last_renewal.monotonic_ns) / 1_000_000
    );
    assert_eq!(status["fencing_token"], 1, "a new leadership, a new token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poller_that_missed_a_whole_leadership_does_not_lead_over_it_when_the_lock_is_gone_again() {
    // p polls. It sees the lock missing but may not create it yet; then, cut off from the API
    // server, it misses x creating the lock and leading. The lock is deleted under x and p comes
    // back: to p the lock was missing and is missing still. A create proves nothing about what
    // happened in between, so whoever takes the lock now must not lead before x's lease is out.
    let sim = sim(&["p", "x", "operator"]).await;
    let args = ["--follow", "poll", "--lock-type", "configmaps"];
    sim.deny("p", "create", "configmaps");
    let p = elector(&sim, "p", &args).await;
    eventually(WITHIN, "p's first look and its refused create", || async {
        let counts = sim.requests();
        let p = counts.get("p")?;
        (p.get("get configmaps").copied().unwrap_or(0) >= 1
            && p.get("create configmaps").copied().unwrap_or(0) >= 1)
            .then_some(())
    })
    .await;
    sim.set_fault(
        "p",
        kube_sim::Fault {
            partition: true,
            ..kube_sim::Fault::default()
        },
    );
    let x = elector(&sim, "x", &["--lock-type", "configmaps"]).await;
    leads(&x).await;
    let maps: Api<ConfigMap> = Api::namespaced(operator(&sim).await, "default");
    maps.delete("test", &DeleteParams::default())
        .await
        .expect("delete");
    sim.clear_fault("p");
    sim.allow_all("p");
    let deleted = sim
        .writes()
        .into_iter()
        .rfind(|w| w.verb == "delete")
        .expect("the delete is in the write log");
    let takeover = next_elector_write(&sim, deleted.seq).await;
    assert_eq!(takeover.verb, "create");
    let new = if takeover.client == "p" { &p } else { &x };
    leads(new).await;
    let began = became_leader_after(new, deleted.monotonic_ns).await;
    let last_renewal = last_write_by(&sim, "x", deleted.seq);
    assert!(
        began >= last_renewal.monotonic_ns + LEASE_NS,
        "{} began to lead {} ms after x's last renewal, before x's lease ran out",
        new.id,
        (began - last_renewal.monotonic_ns) / 1_000_000
    );
    assert!(
        logged_at(&x, "stopped leading") <= began,
        "x still led when {} began to",
        new.id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_without_leading_yet_is_not_released_on_shutdown() {
    // x leads and is frozen; the record is stripped; y takes the stripped lock, which says
    // nothing about who held it, so y holds it a lease before leading. Shut down in that lease,
    // y must not write a release: a released lock is taken at once, and x may still lead.
    let sim = sim(&["x", "y", "operator"]).await;
    let args = ["--lock-type", "configmaps"];
    let x = elector(&sim, "x", &args).await;
    leads(&x).await;
    let mut y = elector(&sim, "y", &args).await;
    eventually(WITHIN, "y following x", || async {
        y.status().await.filter(|s| s["leader"] == "x")
    })
    .await;
    x.signal("STOP");
    let maps: Api<ConfigMap> = Api::namespaced(operator(&sim).await, "default");
    let strip = json!({"metadata": {"annotations": {LEADER_ANNOTATION: null}}});
    maps.patch("test", &PatchParams::default(), &Patch::Merge(&strip))
        .await
        .expect("strip");
    y.wait_log(
        |l| l["message"] == "took a lock with no past; holding it for a lease before leading",
        WITHIN,
    )
    .await;
    let taken = sim.writes().last().map_or(0, |w| w.seq);
    y.signal("TERM");
    y.wait_exit(WITHIN).await;
    x.signal("CONT");
    assert!(
        y.log_messages("became leader").is_empty(),
        "y led within the lease after taking a lock with no past"
    );
    let released: Vec<_> = sim
        .writes_since(taken)
        .into_iter()
        .filter(|w| w.client == "y" && annotation_record(w)["holderIdentity"] == "")
        .collect();
    assert!(
        released.is_empty(),
        "y released a lock it had not led on: {released:?}"
    );
    assert!(
        !y.log_messages("held the lock without leading on it yet; not releasing (others take it over when its lease runs out)")
            .is_empty(),
        "{}",
        y.dump_logs()
    );
}
