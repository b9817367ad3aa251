//! End-to-end: health-gated candidacy (`--app-health`) against the simulator, with stand-in
//! applications whose health endpoint the tests flip.
//!
//! What is shown: an elector whose application is unhealthy never writes the lock, even when it
//! is free; a leader whose application turns unhealthy steps down after the failure threshold and
//! releases, and a healthy replica takes over from the release (not a lease later); a recovered
//! application's elector stands again; with no healthy candidate the lock is left unheld. Every
//! wait is on an observable event (a status field, a count of health checks, the write log).

mod common;

use std::time::Duration;

use common::app::StandInApp;
use common::*;
use serde_json::Value;

/// Generous: a loaded 2-core machine must not make these flake.
const WITHIN: Duration = Duration::from_secs(20);
/// The health check's tuning in these tests: a check every 200ms, unhealthy after 3 failures.
const PERIOD: &str = "200ms";
const FAILURES: u64 = 3;

async fn with_app(sim: &kube_sim::Sim, id: &str, app: &StandInApp) -> Elector {
    let url = app.url();
    elector(
        sim,
        id,
        &[
            "--app-health",
            &url,
            "--app-health-period",
            PERIOD,
            "--app-health-timeout",
            PERIOD,
            "--app-health-failure-threshold",
            "3",
            "--release-delay",
            "200ms",
        ],
    )
    .await
}

/// The `app_health` object of `elector`'s status, once it answers.
async fn app_health(elector: &Elector) -> Option<Value> {
    elector.status().await.map(|status| status["app_health"].clone())
}

/// Waits until `elector` reports the application `state` with `candidate` as given.
async fn wait_app_state(elector: &Elector, state: &str, candidate: bool) -> Value {
    eventually(
        WITHIN,
        &format!("{} to report app {state}, candidate {candidate}", elector.id),
        || async {
            let status = elector.status().await?;
            (status["app_health"]["state"] == state && status["candidate"] == candidate).then_some(status)
        },
    )
    .await
}

/// Waits until `app` has answered `more` further health checks.
async fn wait_checks(app: &StandInApp, more: u64) {
    let target = app.requests() + more;
    eventually(WITHIN, &format!("{more} more health checks"), || async {
        (app.requests() >= target).then_some(())
    })
    .await;
}

fn writes_by(sim: &kube_sim::Sim, client: &str) -> Vec<LockWrite> {
    lock_writes(sim, "leases")
        .into_iter()
        .filter(|w| w.client == client)
        .collect()
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(name) && line[name.len()..].starts_with(['{', ' ']))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_applications_elector_never_takes_the_lock_even_when_free() {
    let sim = sim(&["sick", "well"]).await;
    let sick_app = StandInApp::start(false).await.expect("stand-in app");
    let sick = with_app(&sim, "sick", &sick_app).await;
    // Alone, with the lock free (not even created), for well over the failure threshold.
    let status = wait_app_state(&sick, "starting", false).await;
    wait_checks(&sick_app, 2 * FAILURES).await;
    assert_eq!(status["is_leader"], false);
    assert!(
        writes_by(&sim, "sick").is_empty(),
        "an elector whose application never passed must not write the lock"
    );

    let well_app = StandInApp::start(true).await.expect("stand-in app");
    let well = with_app(&sim, "well", &well_app).await;
    let electors = [sick, well];
    let leader = one_leader(&electors, WITHIN).await;
    assert_eq!(electors[leader].id, "well");
    wait_checks(&sick_app, 2 * FAILURES).await;
    assert!(
        writes_by(&sim, "sick").is_empty(),
        "the unhealthy application's elector never wrote the lock: {:?}",
        writes_by(&sim, "sick")
    );
    let sick_status = electors[0].status().await.expect("status");
    assert_eq!(
        sick_status["leader"], "well",
        "it still follows the lock and knows the holder"
    );
    let (_, _, metrics) = electors[0].get("/metrics").await.expect("metrics");
    assert_eq!(metric(&metrics, "elector_candidate"), Some(0.0), "{metrics}");
    assert_eq!(metric(&metrics, "elector_app_healthy"), Some(0.0), "{metrics}");
    let (_, _, metrics) = electors[1].get("/metrics").await.expect("metrics");
    assert_eq!(metric(&metrics, "elector_candidate"), Some(1.0), "{metrics}");
    assert_eq!(metric(&metrics, "elector_app_healthy"), Some(1.0), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_application_fails_releases_to_a_healthy_replica_which_leads_from_the_release() {
    let sim = sim(&["a", "b"]).await;
    let apps = [
        StandInApp::start(true).await.expect("stand-in app"),
        StandInApp::start(true).await.expect("stand-in app"),
    ];
    let electors = [
        with_app(&sim, "a", &apps[0]).await,
        with_app(&sim, "b", &apps[1]).await,
    ];
    let first = one_leader(&electors, WITHIN).await;
    let other = 1 - first;
    let old = electors[first].id.clone();

    let flipped_ns = monotonic_now_ns();
    apps[first].set_healthy(false);
    let status = wait_app_state(&electors[first], "unhealthy", false).await;
    assert!(
        status["app_health"]["consecutive_failures"].as_u64() >= Some(FAILURES),
        "unhealthy only after the failure threshold: {status}"
    );
    assert!(
        status["app_health"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("503")),
        "the last error names the answer: {status}"
    );
    let new = one_leader(&electors, WITHIN).await;
    assert_eq!(new, other, "the healthy replica leads");
    // Leadership moved with the release, not when the old lease would have run out.
    let takeover = assert_prompt_takeover(&sim, "leases", &old, LEASE / 2);
    assert_eq!(takeover.holder, electors[other].id);
    let stopped = electors[first]
        .log_messages("stopped leading")
        .into_iter()
        .last()
        .expect("a 'stopped leading' log line");
    assert_eq!(stopped["reason"], "this process may no longer stand for election");
    // Figures, not assertions (timing claims are printed): from the application turning
    // unhealthy to the release (failure threshold x period, then the release delay) and from
    // the release to the takeover.
    let writes = lock_writes(&sim, "leases");
    let release = writes
        .iter()
        .rfind(|w| w.client == old && w.holder.is_empty())
        .expect("the release");
    eprintln!(
        "figure: app unhealthy -> release {} ms (3 failures x 200ms + release delay 200ms); \
         release -> takeover {} ms",
        release.monotonic_ns.saturating_sub(flipped_ns) / 1_000_000,
        takeover.monotonic_ns.saturating_sub(release.monotonic_ns) / 1_000_000
    );

    // Recovered, it stands again: when the current leader goes, it takes over.
    apps[first].set_healthy(true);
    wait_app_state(&electors[first], "healthy", true).await;
    assert!(
        !electors[first].is_leader().await,
        "standing again does not unseat a healthy leader"
    );
    apps[other].set_healthy(false);
    wait_app_state(&electors[other], "unhealthy", false).await;
    let back = one_leader(&electors, WITHIN).await;
    assert_eq!(back, first, "the recovered replica stands again and takes over");
    assert_prompt_takeover(&sim, "leases", &electors[other].id, LEASE / 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_healthy_candidate_the_lock_is_left_unheld() {
    let sim = sim(&["only"]).await;
    let app = StandInApp::start(true).await.expect("stand-in app");
    let only = with_app(&sim, "only", &app).await;
    one_leader(std::slice::from_ref(&only), WITHIN).await;
    app.set_healthy(false);
    wait_app_state(&only, "unhealthy", false).await;
    eventually(WITHIN, "the lock released", || async {
        lease_holder(&sim).filter(|(holder, _)| holder.is_empty())
    })
    .await;
    let released = lock_writes(&sim, "leases").len();
    // Well past a lease duration of checks: nobody takes the lock, nobody leads.
    let checks = (LEASE.as_millis() / 200) as u64 + FAILURES;
    wait_checks(&app, checks).await;
    assert_eq!(
        lock_writes(&sim, "leases").len(),
        released,
        "no write after the release"
    );
    assert!(!only.is_leader().await);
    assert_eq!(lease_holder(&sim).map(|(holder, _)| holder), Some(String::new()));
    let health = app_health(&only).await.expect("status");
    assert_eq!(health["state"], "unhealthy");
}

/// The release after a withdrawal waits for the pod label to say follower, as at shutdown: with
/// the label's patch slowed down and no release delay, the release still comes after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_leader_releases_only_after_its_pod_label_says_follower() {
    let sim = sim(&["a"]).await;
    let app = StandInApp::start(true).await.expect("stand-in app");
    let url = app.url();
    let a = elector(
        &sim,
        "a",
        &[
            "--app-health",
            &url,
            "--app-health-period",
            PERIOD,
            "--app-health-timeout",
            PERIOD,
            "--pod-label",
            "--pod-name",
            "a",
            "--release-delay",
            "0s",
            "--shutdown-timeout",
            "8s",
        ],
    )
    .await;
    one_leader(std::slice::from_ref(&a), WITHIN).await;
    eventually(WITHIN, "the leader label", || async {
        sim.writes()
            .iter()
            .any(|w| w.resource == "pods" && w.object["metadata"]["labels"]["kube-elector/role"] == "leader")
            .then_some(())
    })
    .await;
    let before = sim.writes().last().map_or(0, |w| w.seq);
    sim.set_fault(
        "a",
        kube_sim::Fault {
            latency_ms: 1_500,
            verbs: Some(vec!["patch".into()]),
            ..Default::default()
        },
    );
    app.set_healthy(false);
    let release = eventually(WITHIN, "the release", || async {
        sim.writes_since(before).into_iter().find(|w| {
            w.resource == "leases"
                && w.verb == "update"
                && w.object["spec"]["holderIdentity"]
                    .as_str()
                    .unwrap_or_default()
                    .is_empty()
        })
    })
    .await;
    let writes = sim.writes_since(before);
    let label = writes
        .iter()
        .find(|w| w.resource == "pods" && w.object["metadata"]["labels"]["kube-elector/role"] == "follower")
        .unwrap_or_else(|| panic!("no 'follower' label patch before the release: {writes:#?}"));
    assert!(
        label.seq < release.seq,
        "the pod label is reset (write {}) before the release (write {})",
        label.seq,
        release.seq
    );
    assert!(!a.is_leader().await);
}
