//! End-to-end: exec mode (`kube-elector [FLAGS] -- COMMAND`) with real child processes against
//! the simulator. The child is the harness's recording child ([`exec_child`]): it appends its
//! start and its exit after SIGTERM, on CLOCK_MONOTONIC, with the identity and fencing token it
//! was given, to one file shared by every child of a test.

mod common;

use std::time::Duration;

use common::*;
use kube_elector_harness::exec_child::{ChildLife, ChildRecorder, first_overlap, process_ended};

/// Generous: a loaded 2-core machine must not make these flake.
const WITHIN: Duration = Duration::from_secs(20);

/// Starts elector `id` running the recording child, with `extra` flags and the child's `env`.
async fn exec_elector(
    sim: &kube_sim::Sim,
    id: &str,
    recorder: &ChildRecorder,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Elector {
    let mut launch = Launch::test(
        std::path::Path::new(env!("CARGO_BIN_EXE_kube-elector")),
        sim,
        id,
        extra,
    );
    launch.command = recorder.command();
    launch.env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Elector::launch(launch)
        .await
        .unwrap_or_else(|error| panic!("elector {id} starts: {error}"))
}

/// Waits until the recorder holds `count` starts, and returns the lives.
async fn wait_starts(recorder: &ChildRecorder, count: usize) -> Vec<ChildLife> {
    eventually(WITHIN, &format!("{count} child start(s)"), || async {
        let lives = recorder.lives();
        (lives.len() >= count).then_some(lives)
    })
    .await
}

/// The release: an update of the Lease by `client` that leaves no holder.
fn is_release(write: &kube_sim::accounting::WriteRecord, client: &str) -> bool {
    let holder = &write.object["spec"]["holderIdentity"];
    write.client == client
        && write.verb == "update"
        && write.resource == "leases"
        && (holder.is_null() || holder == "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leaders_child_runs_and_it_sees_the_token_and_identity() {
    let dir = TempDir::new("only");
    let recorder = ChildRecorder::new(&dir.0).expect("recorder");
    let sim = sim(&["a", "b", "c"]).await;
    let electors = vec![
        exec_elector(&sim, "a", &recorder, &[], &[]).await,
        exec_elector(&sim, "b", &recorder, &[], &[]).await,
        exec_elector(&sim, "c", &recorder, &[], &[]).await,
    ];
    let leader = &electors[one_leader(&electors, WITHIN).await];
    let lives = wait_starts(&recorder, 1).await;
    // Let the leader renew several times: no follower may start a child meanwhile.
    let renewals_before = lock_writes(&sim, "leases").len();
    eventually(WITHIN, "four more renewals", || async {
        (lock_writes(&sim, "leases").len() >= renewals_before + 4).then_some(())
    })
    .await;
    let lives_now = recorder.lives();
    assert_eq!(
        lives_now.len(),
        1,
        "exactly one child ever started: {lives_now:?}"
    );
    assert_eq!(lives, lives_now);
    let child = &lives[0];
    assert_eq!(child.identity, leader.id, "the leader's child: {child:?}");
    let status = leader.status().await.expect("status");
    assert_eq!(
        status["fencing_token"].as_u64(),
        Some(child.token),
        "the child sees the leader's fencing token: {status}"
    );
    assert_eq!(status["child"]["state"], "running", "{status}");
    assert_eq!(
        status["child"]["pid"].as_u64(),
        Some(u64::from(child.pid)),
        "{status}"
    );
    for follower in electors.iter().filter(|e| e.id != leader.id) {
        let status = follower.status().await.expect("status");
        assert_eq!(
            status["child"]["state"], "waiting",
            "a follower runs nothing: {status}"
        );
        assert!(status["child"]["pid"].is_null(), "{status}");
    }
    let metrics = leader.get("/metrics").await.expect("metrics").2;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("elector_child_running{") && l.ends_with(" 1")),
        "the leader's child gauge is 1:\n{metrics}"
    );
}

/// The old leader's child takes 1.5 s to stop after SIGTERM, longer than the release delay
/// (0 here): the release, and so the new child, must still wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_graceful_handover_the_new_child_starts_only_after_the_old_one_exited() {
    let dir = TempDir::new("handover");
    let recorder = ChildRecorder::new(&dir.0).expect("recorder");
    let sim = sim(&["a", "b"]).await;
    let flags = [
        "--release-delay",
        "0s",
        "--child-grace",
        "5s",
        "--shutdown-timeout",
        "10s",
    ];
    let slow_stop = [("CHILD_STOP_DELAY", "1.5")];
    let mut electors = vec![
        exec_elector(&sim, "a", &recorder, &flags, &slow_stop).await,
        exec_elector(&sim, "b", &recorder, &flags, &slow_stop).await,
    ];
    let first = one_leader(&electors, WITHIN).await;
    let old = wait_starts(&recorder, 1).await.remove(0);
    assert_eq!(old.identity, electors[first].id);

    let old_leader = &mut electors[first];
    old_leader.signal("TERM");
    let status = old_leader.wait_exit(WITHIN).await;
    assert!(
        status.success(),
        "SIGTERM: stop the child, release, exit 0: {status:?}"
    );
    assert!(
        process_ended(old.pid),
        "the old child is gone once its elector has exited"
    );

    let lives = wait_starts(&recorder, 2).await;
    let (old, new) = (&lives[0], &lives[1]);
    assert_ne!(
        new.identity, old.identity,
        "the other candidate's child: {lives:?}"
    );
    let old_exit = old
        .exit_ns
        .unwrap_or_else(|| panic!("the old child recorded its exit after SIGTERM: {lives:?}"));
    assert!(
        new.start_ns > old_exit,
        "the new child started at {} ns, {} ns before the old one exited at {old_exit} ns",
        new.start_ns,
        old_exit - new.start_ns
    );
    assert!(
        new.token > old.token,
        "the token rises with the new leader: old {}, new {}",
        old.token,
        new.token
    );
    let release = sim
        .writes()
        .into_iter()
        .find(|w| is_release(w, &old.identity))
        .expect("the old leader released the lock");
    assert!(
        release.monotonic_ns > old_exit,
        "the release ({} ns) came after the old child's exit ({old_exit} ns)",
        release.monotonic_ns
    );
    assert_eq!(
        first_overlap(&lives, |life| life.exit_ns),
        None,
        "no two children at once"
    );
}

/// The monotonic stamp of the last log line of `elector` saying `message` (and its reason).
fn logged_ns(elector: &Elector, message: &str) -> (u64, String) {
    let line = elector
        .log_messages(message)
        .into_iter()
        .last()
        .unwrap_or_else(|| panic!("{} logged no {message:?}:\n{}", elector.id, elector.dump_logs()));
    let at = line["monotonic_ns"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("monotonic_ns on {line}"));
    (at, line["reason"].as_str().unwrap_or_default().to_owned())
}

/// A partitioned leader cannot release: its child, which ignores SIGTERM and has a 30 s grace,
/// must still be killed before the other candidate can take the lock over (the last renewal's
/// send time + lease duration), so the other's child starts only after it has ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_partition_the_child_is_killed_before_a_takeover_is_possible_whatever_the_grace() {
    let dir = TempDir::new("partition");
    let recorder = ChildRecorder::new(&dir.0).expect("recorder");
    let sim = sim(&["a", "b"]).await;
    let flags = ["--child-grace", "30s", "--shutdown-timeout", "40s"];
    let stubborn = [("CHILD_IGNORE_TERM", "1")];
    let electors = vec![
        exec_elector(&sim, "a", &recorder, &flags, &stubborn).await,
        exec_elector(&sim, "b", &recorder, &flags, &stubborn).await,
    ];
    let first = one_leader(&electors, WITHIN).await;
    let old = wait_starts(&recorder, 1).await.remove(0);
    let (old_leader, other) = (&electors[first], &electors[1 - first]);
    sim.set_fault(
        &old_leader.id,
        kube_sim::Fault {
            partition: true,
            ..Default::default()
        },
    );
    let new = wait_starts(&recorder, 2).await.remove(1);
    assert_eq!(new.identity, other.id, "the other candidate's child: {new:?}");
    assert!(new.token > old.token, "a new token: {old:?} then {new:?}");
    let (ended_ns, reason) = logged_ns(old_leader, "the command ended");
    assert_eq!(reason, "killed", "the stubborn child needs SIGKILL");
    let (new_spawned_ns, _) = logged_ns(other, "started the command");
    assert!(
        ended_ns < new_spawned_ns,
        "the old child was reaped at {ended_ns} ns, {} ms after the new one was spawned at \
         {new_spawned_ns} ns",
        (ended_ns - new_spawned_ns) / 1_000_000
    );
    assert!(process_ended(old.pid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_elector_kills_its_child() {
    let dir = TempDir::new("kill");
    let recorder = ChildRecorder::new(&dir.0).expect("recorder");
    let sim = sim(&["a"]).await;
    // The child ignores SIGTERM: only the parent-death SIGKILL can end it.
    let mut a = exec_elector(&sim, "a", &recorder, &[], &[("CHILD_IGNORE_TERM", "1")]).await;
    let child = wait_starts(&recorder, 1).await.remove(0);
    assert!(!process_ended(child.pid), "the child runs");
    a.signal("KILL");
    a.wait_exit(WITHIN).await;
    eventually(WITHIN, "the child to die with its elector", || async {
        process_ended(child.pid).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_kills_a_child_that_ignores_it_after_the_grace_then_releases_and_exits_0() {
    let dir = TempDir::new("grace");
    let recorder = ChildRecorder::new(&dir.0).expect("recorder");
    let sim = sim(&["a"]).await;
    let mut a = exec_elector(
        &sim,
        "a",
        &recorder,
        &["--child-grace", "1s", "--release-delay", "0s"],
        &[("CHILD_IGNORE_TERM", "1")],
    )
    .await;
    let child = wait_starts(&recorder, 1).await.remove(0);
    let sent = a.send(Signal::Term).expect("SIGTERM");
    let status = a.wait_exit(WITHIN).await;
    assert!(status.success(), "exit 0 after a clean shutdown: {status:?}");
    assert!(
        process_ended(child.pid),
        "the child was killed before the elector exited"
    );
    let ended = a
        .log_messages("the command ended")
        .into_iter()
        .last()
        .unwrap_or_else(|| panic!("an end of the command in the log:\n{}", a.dump_logs()));
    assert_eq!(ended["reason"], "killed", "{ended}");
    let ended_ns: u64 = ended["monotonic_ns"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("monotonic_ns on the end");
    assert!(
        ended_ns >= sent + 1_000_000_000,
        "SIGKILL only after the 1s grace: ended {} ms after SIGTERM",
        (ended_ns - sent) / 1_000_000
    );
    let release = sim
        .writes()
        .into_iter()
        .find(|w| is_release(w, "a"))
        .expect("a released the lock");
    assert!(
        release.monotonic_ns > ended_ns,
        "the release follows the child's end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_exits_is_restarted_with_the_same_token_or_ends_the_elector_with_its_code() {
    let dir = TempDir::new("exit");
    let recorder = ChildRecorder::new(&dir.0).expect("recorder");
    let sim = sim(&["a", "b"]).await;
    let quick_exit = [("CHILD_EXIT_AFTER", "0.2"), ("CHILD_EXIT_CODE", "3")];
    // restart (the default): a second start with the same token, counted.
    let a = exec_elector(&sim, "a", &recorder, &[], &quick_exit).await;
    let lives = wait_starts(&recorder, 2).await;
    assert_eq!(
        lives[0].token, lives[1].token,
        "same leadership, same token: {lives:?}"
    );
    let restarts = eventually(WITHIN, "a counted restart", || async {
        let status = a.status().await?;
        let restarts = status["child"]["restarts"].as_u64()?;
        (restarts >= 1).then_some(status)
    })
    .await;
    assert_eq!(restarts["child"]["last_exit"]["code"], 3, "{restarts}");
    assert_eq!(restarts["child"]["last_exit"]["reason"], "exited", "{restarts}");
    drop(a);

    // exit: step down, release, exit with the child's code.
    let dir = TempDir::new("exit-code");
    let recorder = ChildRecorder::new(&dir.0).expect("recorder");
    let sim = kube_sim::Sim::start(kube_sim::SimOptions::new(["b"]))
        .await
        .expect("simulator");
    let mut b = exec_elector(&sim, "b", &recorder, &["--on-child-exit", "exit"], &quick_exit).await;
    let status = b.wait_exit(WITHIN).await;
    assert_eq!(status.code(), Some(3), "the child's exit code: {status:?}");
    assert!(
        sim.writes().iter().any(|w| is_release(w, "b")),
        "the lock was released before exiting"
    );
}

#[tokio::test]
async fn exec_settings_are_validated_naming_the_fields() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kube-elector"))
            .env_clear()
            .args(["--election", "test", "--id", "a"])
            .args(args)
            .output()
            .expect("runs")
    };
    let out = run(&["--shutdown-timeout", "5s", "--child-grace", "10s", "--", "true"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("shutdown-timeout") && stderr.contains("child-grace") && stderr.contains("raise"),
        "names both fields and the fix: {stderr}"
    );
    let out = run(&["--on-child-exit", "sometimes", "--", "true"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("on-child-exit") && stderr.contains("restart or exit"),
        "{stderr}"
    );
    let out = run(&["--child-grace", "3s"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an exec setting without a command: {stderr}"
    );
    assert!(
        stderr.contains("child-grace") && stderr.contains("after --"),
        "{stderr}"
    );
    // With a command and no shutdown timeout, the default makes room for the grace.
    let out = run(&["--child-grace", "20s", "--print-config", "--", "app", "--flag"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("shutdown-timeout: \"25s\""), "{stdout}");
    assert!(
        stdout.contains("\"app\" \"--flag\""),
        "the command is shown: {stdout}"
    );
}
