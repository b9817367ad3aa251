//! End-to-end: retry pacing against a failing API server, read from the simulator's request
//! accounting and the elector's own "election step failed" lines (which carry the wait chosen).
//!
//! Timings are the harness's: lease 3s, renew deadline 2s, retry period 500ms.

mod common;

use std::time::Duration;

use common::*;
use kube_sim::{FailSpec, Fault};
use serde_json::Value;

/// Generous: a loaded 2-core machine must not make these flake.
const WITHIN: Duration = Duration::from_secs(30);

fn failures(elector: &Elector) -> Vec<Value> {
    elector.log_messages("election step failed")
}

fn retry_in_ms(line: &Value) -> u64 {
    line["retry_in_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("retry_in_ms on {line}"))
}

fn gets(sim: &kube_sim::Sim, client: &str) -> u64 {
    sim.requests()
        .get(client)
        .and_then(|counts| counts.get("get leases"))
        .copied()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_backs_off_exponentially_under_constant_server_errors() {
    let sim = sim(&["a"]).await;
    sim.set_fault(
        "a",
        Fault {
            fail: Some(FailSpec {
                status: 500,
                ratio: 1.0,
                retry_after_seconds: None,
            }),
            ..Default::default()
        },
    );
    let mut a = elector(&sim, "a", &[]).await;
    a.wait_log(
        |l| l["message"] == "election step failed" && l["failures"] == 6,
        WITHIN,
    )
    .await;
    let lines = failures(&a);
    let waits: Vec<u64> = lines.iter().take(6).map(retry_in_ms).collect();
    // retry period × 2^(n−1), capped at the lease duration, times a jitter in [1, 1.2).
    let bases = [500, 1_000, 2_000, 3_000, 3_000, 3_000];
    for (n, (wait, base)) in waits.iter().zip(bases).enumerate() {
        assert!(
            (base..base * 6 / 5).contains(wait),
            "failure {}: waited {wait} ms, expected {base} ms × [1, 1.2); all: {waits:?}",
            n + 1
        );
    }
    // One read per attempt and nothing in between: at most one more in flight.
    let counted = gets(&sim, "a");
    assert!(
        (6..=7).contains(&counted),
        "6 failed attempts made {counted} GETs of the lock (a fixed 500 ms pace would have made \
         about {} by now)",
        waits.iter().sum::<u64>() / 500
    );
    assert!(!a.is_leader().await, "no leadership out of errors");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_retry_after_is_honoured() {
    let sim = sim(&["a"]).await;
    sim.set_fault(
        "a",
        Fault {
            fail: Some(FailSpec {
                status: 429,
                ratio: 1.0,
                retry_after_seconds: Some(2),
            }),
            ..Default::default()
        },
    );
    let mut a = elector(&sim, "a", &[]).await;
    a.wait_log(
        |l| l["message"] == "election step failed" && l["failures"] == 2,
        WITHIN,
    )
    .await;
    let lines = failures(&a);
    let first = &lines[0];
    assert!(
        first["error"].as_str().is_some_and(|e| e.contains("429")),
        "the failure is the 429: {first}"
    );
    assert!(
        retry_in_ms(first) >= 2_000,
        "Retry-After: 2 must delay the next attempt at least 2 s, not the 500 ms backoff: {first}"
    );
    assert!(
        retry_in_ms(&lines[1]) >= 2_000,
        "and again on the second 429: {}",
        lines[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_renewal_gets_half_the_renew_deadline_so_a_second_try_fits() {
    let sim = sim(&["a"]).await;
    let mut a = elector(&sim, "a", &[]).await;
    one_leader(std::slice::from_ref(&a), WITHIN).await;
    let updates_before = sim
        .requests()
        .get("a")
        .and_then(|c| c.get("update leases"))
        .copied()
        .unwrap_or(0);
    sim.set_fault(
        "a",
        Fault {
            hang: true,
            verbs: Some(vec!["update".into()]),
            ..Default::default()
        },
    );
    a.wait_log(|l| l["message"] == "stopped leading", WITHIN).await;
    let timeouts: Vec<Value> = failures(&a)
        .into_iter()
        .filter(|l| l["error"].as_str().is_some_and(|e| e.contains("timed out")))
        .collect();
    let first = timeouts
        .first()
        .unwrap_or_else(|| panic!("a timed-out renewal; logs:\n{}", a.dump_logs()));
    let error = first["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("timed out after 1s"),
        "the first hanging renewal is cut at half the 2 s renew deadline: {error}"
    );
    let updates = sim
        .requests()
        .get("a")
        .and_then(|c| c.get("update leases"))
        .copied()
        .unwrap_or(0)
        - updates_before;
    assert!(
        updates >= 2,
        "a second renewal must be tried before the claim lapses; {updates} update(s) were sent"
    );
}
