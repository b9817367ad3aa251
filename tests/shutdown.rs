//! End-to-end: the shutdown order and the leader file's contents, observed from outside.
//!
//! On SIGTERM the leader must step down (`/readyz` 503), remove its leader file and reset its pod
//! label, and only then, `--release-delay` after the step-down, write the release. The release is
//! read from the simulator's write log (with its CLOCK_MONOTONIC time), the step-down from the
//! elector's own log line, the readiness and the file from outside.

mod common;

use std::time::Duration;

use common::*;

/// Generous: a loaded 2-core machine must not make these flake.
const WITHIN: Duration = Duration::from_secs(20);

/// The release: an update of the Lease by `client` that leaves no holder.
fn is_release(write: &kube_sim::accounting::WriteRecord, client: &str) -> bool {
    let holder = &write.object["spec"]["holderIdentity"];
    write.client == client
        && write.verb == "update"
        && write.resource == "leases"
        && (holder.is_null() || holder == "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_steps_down_removes_file_and_label_then_releases_after_the_delay() {
    shutdown_order(Duration::from_secs(3)).await;
}

/// Without a delay the order must still hold: the release waits for the file and the label.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_release_delay_the_release_still_waits_for_file_and_label() {
    shutdown_order(Duration::ZERO).await;
}

async fn shutdown_order(release_delay: Duration) {
    let dir = TempDir::new(&format!("order-{}", release_delay.as_millis()));
    let file = dir.0.join("leader");
    let sim = sim(&["a"]).await;
    let delay = format!("{}ms", release_delay.as_millis());
    let mut a = elector(
        &sim,
        "a",
        &[
            "--leader-file",
            file.to_str().expect("utf-8 path"),
            "--pod-label",
            "--pod-name",
            "a",
            "--release-delay",
            &delay,
            "--shutdown-timeout",
            "8s",
        ],
    )
    .await;
    one_leader(std::slice::from_ref(&a), WITHIN).await;
    eventually(WITHIN, "the leader file", || async {
        file.exists().then_some(())
    })
    .await;
    let before = sim.writes().last().map_or(0, |w| w.seq);
    // A slow pod-label reset: the release must wait for it, however long the delay.
    sim.set_fault(
        "a",
        kube_sim::Fault {
            latency_ms: 1_500,
            verbs: Some(vec!["patch".into()]),
            ..Default::default()
        },
    );

    a.signal("TERM");
    // From outside: readiness turns 503 (the surface still answers) and the file goes.
    let ready_gone_at = eventually(WITHIN, "/readyz to answer 503 during shutdown", || async {
        match a.get("/readyz").await {
            Some((503, _, _)) => Some(u128::from(monotonic_now_ns())),
            _ => None,
        }
    })
    .await;
    let file_gone_at = eventually(WITHIN, "the leader file to be removed", || async {
        (!file.exists()).then(|| u128::from(monotonic_now_ns()))
    })
    .await;
    assert!(a.wait_exit(WITHIN).await.success(), "a clean exit");

    let stopped = a
        .log_messages("stopped leading")
        .into_iter()
        .last()
        .expect("a 'stopped leading' log line");
    let stepped_down_at: u128 = stopped["monotonic_ns"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .or_else(|| stopped["monotonic_ns"].as_u64().map(u128::from))
        .expect("monotonic_ns on the step-down");
    let writes = sim.writes_since(before);
    let release = writes
        .iter()
        .find(|w| is_release(w, "a"))
        .unwrap_or_else(|| panic!("no release in the write log: {writes:#?}"));
    let label = writes
        .iter()
        .find(|w| {
            w.verb == "patch"
                && w.resource == "pods"
                && w.object["metadata"]["labels"]["kube-elector/role"] == "follower"
        })
        .unwrap_or_else(|| panic!("no 'follower' label patch in the write log: {writes:#?}"));
    let released_at = u128::from(release.monotonic_ns);

    assert!(
        label.seq < release.seq,
        "the pod label is reset (write {}) before the release (write {})",
        label.seq,
        release.seq
    );
    assert!(
        ready_gone_at < released_at,
        "/readyz answered 503 at {ready_gone_at} ns, before the release at {released_at} ns"
    );
    assert!(
        file_gone_at < released_at,
        "the leader file was gone at {file_gone_at} ns, before the release at {released_at} ns"
    );
    let waited = Duration::from_nanos(u64::try_from(released_at - stepped_down_at).unwrap_or(u64::MAX));
    assert!(
        waited >= release_delay,
        "the release came {waited:?} after the step-down; --release-delay is {release_delay:?}"
    );
    assert!(
        waited < Duration::from_secs(8),
        "the release came {waited:?} after the step-down, past --shutdown-timeout 8s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_file_names_identity_token_and_a_deadline_that_a_killed_elector_cannot_extend() {
    let dir = TempDir::new("file");
    let file = dir.0.join("leader");
    let sim = sim(&["a"]).await;
    let mut a = elector(&sim, "a", &["--leader-file", file.to_str().expect("utf-8 path")]).await;
    one_leader(std::slice::from_ref(&a), WITHIN).await;
    let text = eventually(WITHIN, "the leader file", || async {
        std::fs::read_to_string(&file).ok()
    })
    .await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "identity, token, deadline: {text:?}");
    assert_eq!(lines[0], "a", "the identity alone on the first line: {text:?}");
    let status = a.status().await.expect("status");
    assert_eq!(
        lines[1],
        format!("fencing_token={}", status["fencing_token"]),
        "the token /status reports: {text:?}"
    );
    let valid_until: jiff::Timestamp = lines[2]
        .strip_prefix("valid_until=")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("an RFC 3339 valid_until on the third line: {text:?}"));
    assert!(text.ends_with('\n'), "lines end with a newline: {text:?}");

    // Renewals move the deadline on.
    eventually(WITHIN, "a renewal to rewrite valid_until", || async {
        let text = std::fs::read_to_string(&file).ok()?;
        let now: jiff::Timestamp = text.lines().nth(2)?.strip_prefix("valid_until=")?.parse().ok()?;
        (now > valid_until).then_some(())
    })
    .await;

    // SIGKILL leaves the file behind, but its deadline is at most a renew deadline (2s) away.
    a.signal("KILL");
    let killed_at = jiff::Timestamp::now();
    a.wait_exit(WITHIN).await;
    let text = std::fs::read_to_string(&file).expect("a killed elector cannot remove its file");
    let last: jiff::Timestamp = text
        .lines()
        .nth(2)
        .and_then(|l| l.strip_prefix("valid_until="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("valid_until in {text:?}"));
    assert!(
        last <= killed_at + jiff::SignedDuration::from_secs(2),
        "the stale file's valid_until {last} is within the renew deadline of the kill at {killed_at}"
    );
}
