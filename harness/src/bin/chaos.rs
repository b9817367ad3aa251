//! The chaos safety suite: real electors, random faults in combination, and the safety checks.
//!
//! Runs 3–5 `kube-elector` processes against the simulator (one under libfaketime with its wall
//! clock minutes off) and, for a bounded time, injects at random: API latency beyond the renew
//! deadline, 5xx and 429 bursts, dropped connections, lost responses to applied writes, watch
//! stalls and closes, partitions of single candidates, SIGSTOP/SIGCONT pauses of the leader
//! longer than the lease, SIGKILL and restart, and graceful SIGTERM. Every so often all faults
//! heal at once and the time until a leader exists again is measured.
//!
//! The lock kind (Lease, ConfigMap or Endpoints) is drawn per run unless `--lock-type` is given,
//! and each candidate's follow mode (`watch` or `poll`, at least one of each) is drawn per
//! candidate; the draws come from the seed, which is printed, so a run can be repeated.
//!
//! At the end it checks, over every candidate's leadership intervals on the shared monotonic
//! clock: no two leaders at once; fencing tokens rise with each new leader; a leader within
//! lease duration + retry period after every heal (lease + 2 × the longest jittered retry when
//! some candidates poll), plus [`RECOVERY_SLACK`] for scheduling on a loaded machine; no panic,
//! no unexpected exit; and the simulator's write history of the lock agrees (see
//! [`check_history`]). It prints what it exercised and exits 1 on any violation, with the
//! command that repeats the run.
//!
//! With `--exec` every candidate runs a recording child in exec mode (`-- sh -c … python3 …`), a
//! pause freezes the leader's child with it (a frozen machine), and the end adds a check that no
//! two children ever ran at once ([`ExecCheck`]).
//!
//! What other clients and people do to the lock is injected too, on every lock kind, through the
//! ordinary API as a client named `operator` ([`Hostile`]): the lock object deleted, its record
//! stripped, a foreign holder written without resourceVersion, a record in another client's
//! format (a Lease with optional fields missing; an annotation with numbers as strings and times
//! without fractional seconds), unrelated writes to the object every second throughout (a label,
//! and a ConfigMap's `data`), and a second process running under candidate `c1`'s identity for
//! the whole run (its leadership is checked as a separate process, `c1~twin`). Tokens must still
//! rise strictly with each new leader, across deletions.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use kube_elector_harness::timeline::{self, Interval};
use kube_elector_harness::{Elector, Launch, elector_binary, http_get};
use kube_sim::{FailSpec, Fault, Sim, SimOptions, WatchMode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

#[derive(Parser, Debug)]
#[command(about = "Chaos safety suite for kube-elector")]
struct Args {
    /// Inject faults for at least this long.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    min_seconds: u64,
    /// ... and until the run has exercised enough changes of leader, but never longer than this.
    #[arg(long, default_value_t = 420, value_name = "SECONDS")]
    max_seconds: u64,
    /// Number of candidates (3 to 5).
    #[arg(long, default_value_t = 5)]
    candidates: usize,
    /// Random seed (default: from the clock); printed so a run can be repeated.
    #[arg(long)]
    seed: Option<u64>,
    /// Fail unless at least this many leadership changes were exercised.
    #[arg(long, default_value_t = 200)]
    min_changes: usize,
    /// Wall-clock offset of the candidate run under libfaketime (libfaketime syntax).
    #[arg(long, default_value = "+7m")]
    skew: String,
    /// Path of libfaketime.
    #[arg(long, default_value = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")]
    libfaketime: PathBuf,
    /// The kube-elector binary (default: next to this one).
    #[arg(long)]
    elector: Option<PathBuf>,
    /// Lock kind: leases, configmaps or endpoints (default: drawn from the seed).
    #[arg(long, value_parser = ["leases", "configmaps", "endpoints"])]
    lock_type: Option<String>,
    /// Exec mode: every candidate runs a recording child (`-- python3 …`), pauses freeze the
    /// child's process group with its elector, and no two children may run at once.
    #[arg(long)]
    exec: bool,
}

/// A lock kind: the `--lock-type` value, the stored object's API group, kind and plural resource.
#[derive(Clone, Copy, Debug)]
struct LockKind {
    flag: &'static str,
    group: &'static str,
    kind: &'static str,
    resource: &'static str,
}

impl LockKind {
    /// The record's field holding the transition count.
    fn transitions_field(self) -> &'static str {
        if self.kind == "Lease" {
            "leaseTransitions"
        } else {
            "leaderTransitions"
        }
    }
}

const LOCK_KINDS: [LockKind; 3] = [
    LockKind {
        flag: "leases",
        group: "coordination.k8s.io",
        kind: "Lease",
        resource: "leases",
    },
    LockKind {
        flag: "configmaps",
        group: "",
        kind: "ConfigMap",
        resource: "configmaps",
    },
    LockKind {
        flag: "endpoints",
        group: "",
        kind: "Endpoints",
        resource: "endpoints",
    },
];

/// The annotation in which ConfigMap and Endpoints locks keep client-go's record.
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";

/// The record of a stored lock object as stored: a Lease's spec, or the annotation's text.
fn raw_record(object: &serde_json::Value) -> &serde_json::Value {
    if object["kind"] == "Lease" {
        &object["spec"]
    } else {
        &object["metadata"]["annotations"][LEADER_ANNOTATION]
    }
}

/// The leader record of a stored lock object: a Lease's spec, or client-go's annotation on a
/// ConfigMap or Endpoints. `(holder, transitions)`; the holder is empty when released.
fn lock_record(object: &serde_json::Value) -> Option<(String, i64)> {
    if object["kind"] == "Lease" {
        let spec = &object["spec"];
        return Some((
            spec["holderIdentity"].as_str().unwrap_or("").to_owned(),
            spec["leaseTransitions"].as_i64().unwrap_or(0),
        ));
    }
    let annotation = raw_record(object).as_str()?;
    let record: serde_json::Value = serde_json::from_str(annotation).ok()?;
    Some((
        record["holderIdentity"].as_str().unwrap_or("").to_owned(),
        record["leaderTransitions"].as_i64().unwrap_or(0),
    ))
}

/// The timings of the run: short, so hundreds of changes fit in a few minutes.
const LEASE: Duration = Duration::from_secs(1);
const RENEW_DEADLINE: Duration = Duration::from_millis(600);
const RETRY: Duration = Duration::from_millis(200);
const TIMING_ARGS: [&str; 6] = [
    "--lease-duration",
    "1s",
    "--renew-deadline",
    "600ms",
    "--retry-period",
    "200ms",
];
/// A short release delay (the default is 1 s): every SIGTERM still goes through the whole
/// shutdown order, without the delay dominating the run's time.
const SHUTDOWN_ARGS: [&str; 2] = ["--release-delay", "100ms"];

/// A candidate's arguments beyond the simulator's: timings, shutdown, lock kind, follow mode.
fn candidate_args(lock: LockKind, follow: &'static str) -> Vec<&'static str> {
    [
        &TIMING_ARGS[..],
        &SHUTDOWN_ARGS[..],
        &["--lock-type", lock.flag, "--follow", follow],
    ]
    .concat()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Latency,
    ErrorBurst,
    TooManyRequests,
    DropConnections,
    LoseResponses,
    WatchStall,
    WatchClose,
    Partition,
    PauseLeader,
    KillLeader,
    TerminateLeader,
}

const ACTIONS: [(Action, u32); 11] = [
    (Action::Latency, 8),
    (Action::ErrorBurst, 6),
    (Action::TooManyRequests, 4),
    (Action::DropConnections, 5),
    (Action::LoseResponses, 6),
    (Action::WatchStall, 4),
    (Action::WatchClose, 3),
    (Action::Partition, 8),
    (Action::PauseLeader, 6),
    (Action::KillLeader, 8),
    (Action::TerminateLeader, 70),
];

enum Process {
    Running,
    Paused { since: Instant, until: Instant },
    Dead { restart_at: Instant },
}

struct Candidate {
    elector: Elector,
    /// The name its leadership intervals are checked under (the identity, or `c1~twin`).
    label: String,
    /// Identity conflicts its processes reported (a live process holding the lock under its identity).
    conflicts: usize,
    process: Process,
    fault_until: Option<Instant>,
    /// Intervals of earlier incarnations of this candidate.
    past: Vec<Interval>,
    /// Log lines of earlier incarnations, to explain a violation.
    past_logs: Vec<serde_json::Value>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("chaos: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<bool> {
    if !(3..=5).contains(&args.candidates) {
        bail!("--candidates must be 3 to 5, got {}", args.candidates);
    }
    if !args.libfaketime.exists() {
        bail!(
            "libfaketime not found at {} (--libfaketime): install Debian's faketime package",
            args.libfaketime.display()
        );
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let lock = match &args.lock_type {
        Some(flag) => LOCK_KINDS
            .into_iter()
            .find(|k| k.flag == flag)
            .context("--lock-type is one of leases, configmaps, endpoints")?,
        None => LOCK_KINDS[rng.random_range(0..LOCK_KINDS.len())],
    };
    // Each candidate watches or polls; at least one of each, so both algorithms are exercised.
    let mut follow: Vec<&'static str> = (0..args.candidates)
        .map(|_| if rng.random_bool(0.5) { "watch" } else { "poll" })
        .collect();
    let forced = rng.random_range(0..args.candidates);
    follow[forced] = "watch";
    follow[(forced + 1) % args.candidates] = "poll";
    let rerun = format!(
        "scripts/chaos.sh --seed {seed} --lock-type {} --candidates {} --min-seconds {} --max-seconds {} --min-changes {}",
        lock.flag, args.candidates, args.min_seconds, args.max_seconds, args.min_changes
    );
    let binary = args.elector.clone().unwrap_or_else(elector_binary);
    if !binary.exists() {
        bail!(
            "kube-elector binary not found at {} (--elector): build it first",
            binary.display()
        );
    }
    let ids: Vec<String> = (0..args.candidates).map(|i| format!("c{i}")).collect();
    let sim = Sim::start(SimOptions::new(ids.iter().map(String::as_str).chain([OPERATOR])))
        .await
        .context("starting the simulator")?;
    println!(
        "chaos: seed {seed}, {} candidates, {}–{}s, lease {LEASE:?} / renew deadline {RENEW_DEADLINE:?} / retry {RETRY:?}, \
         {} under libfaketime {}",
        args.candidates, args.min_seconds, args.max_seconds, ids[0], args.skew
    );
    println!(
        "lock {} ({}); follow modes: {}",
        lock.kind,
        lock.flag,
        ids.iter()
            .zip(&follow)
            .map(|(id, mode)| format!("{id}={mode}"))
            .collect::<Vec<_>>()
            .join(" ")
    );

    let mut exec = if args.exec {
        Some(ExecCheck::start().context("preparing exec mode's recording child")?)
    } else {
        None
    };
    let mut candidates = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let env = if i == 0 {
            vec![
                ("LD_PRELOAD".to_owned(), args.libfaketime.display().to_string()),
                ("FAKETIME".to_owned(), args.skew.clone()),
                ("FAKETIME_DONT_FAKE_MONOTONIC".to_owned(), "1".to_owned()),
            ]
        } else {
            Vec::new()
        };
        let extra = candidate_args(lock, follow[i]);
        let slice = slice_args(lock, i);
        let extra: Vec<&str> = extra
            .iter()
            .copied()
            .chain(slice.iter().map(String::as_str))
            .collect();
        let launch = Launch {
            env,
            ..Launch::test(&binary, &sim, id, &extra)
        };
        let elector = Elector::launch(exec_launch(exec.as_ref(), launch)).await?;
        candidates.push(Candidate {
            label: id.clone(),
            conflicts: 0,
            elector,
            process: Process::Running,
            fault_until: None,
            past: Vec::new(),
            past_logs: Vec::new(),
        });
    }
    check_skew(&candidates[0]).await?;
    // A second live process under c1's identity, for the whole run, following the other way.
    let twin_follow = if follow[1] == "watch" { "poll" } else { "watch" };
    let twin_slice = slice_args(lock, ids.len());
    let twin_args: Vec<&str> = candidate_args(lock, twin_follow)
        .into_iter()
        .chain(twin_slice.iter().map(String::as_str))
        .collect();
    let twin = Elector::launch(exec_launch(
        exec.as_ref(),
        Launch::test(&binary, &sim, &ids[1], &twin_args),
    ))
    .await?;
    candidates.push(Candidate {
        label: format!("{}~twin", ids[1]),
        conflicts: 0,
        elector: twin,
        process: Process::Running,
        fault_until: None,
        past: Vec::new(),
        past_logs: Vec::new(),
    });
    let operator = Operator::connect(&sim, lock).await?;
    let (noise, noise_writes) = operator.unrelated_writes();
    let mut hostile: BTreeMap<Hostile, (u32, u32)> = BTreeMap::new();
    let mut last_hostile: Option<Instant> = None;

    let mut exercised: BTreeMap<Action, u32> = BTreeMap::new();
    let mut recoveries: Vec<Duration> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let start = Instant::now();
    let min_end = start + Duration::from_secs(args.min_seconds);
    let max_end = start + Duration::from_secs(args.max_seconds.max(args.min_seconds));
    // The run goes on until the candidates' logs show enough changes of leader, counted as the
    // final check counts them (the lock's transition count and its writes are no measure: the
    // operator's rewrites move the count, and a lock taken with no past may be given up before
    // its holder leads), with a margin for intervals the final heal and stop may still close.
    let enough = args.min_changes + args.min_changes / 10;
    let mut next_count = min_end;
    let mut next_action = start + Duration::from_millis(500);
    let mut next_heal = start + Duration::from_secs(rng.random_range(12..20));
    let mut next_hostile = start + Duration::from_secs(2);
    loop {
        let now = Instant::now();
        if now >= max_end {
            break;
        }
        if now >= next_count {
            if leader_changes_so_far(&candidates) >= enough {
                break;
            }
            next_count = now + Duration::from_secs(1);
        }
        tend(&sim, &mut candidates, now, &mut problems).await;
        if let Some(exec) = &mut exec {
            exec.thaw_resumed(&candidates).await;
        }
        if now >= next_heal {
            recoveries.push(heal_and_measure(&sim, &mut candidates, &mut problems).await);
            if let Some(exec) = &mut exec {
                exec.thaw_resumed(&candidates).await;
            }
            next_heal = Instant::now() + Duration::from_secs(rng.random_range(12..20));
            next_action = Instant::now() + Duration::from_millis(300);
            continue;
        }
        // Changes to the lock stop a while before each heal, so the recovery bound still holds.
        if now >= next_hostile && now + HOSTILE_QUIET < next_heal {
            let what = Hostile::ALL[rng.random_range(0..Hostile::ALL.len())];
            let entry = hostile.entry(what).or_default();
            entry.0 += 1;
            entry.1 += u32::from(operator.apply(what).await);
            last_hostile = Some(now);
            next_hostile = now + Duration::from_millis(rng.random_range(1_500..4_000));
        }
        if now >= next_action {
            if let Some(action) = inject(&sim, lock, &mut candidates, &mut rng, now, &mut problems).await {
                *exercised.entry(action).or_default() += 1;
                if let (Some(exec), Action::PauseLeader) = (&mut exec, action) {
                    exec.freeze_paused(&candidates, now);
                }
            }
            next_action = now + Duration::from_millis(rng.random_range(30..150));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(at) = last_hostile {
        tokio::time::sleep_until(at + HOSTILE_QUIET).await;
    }
    recoveries.push(heal_and_measure(&sim, &mut candidates, &mut problems).await);
    if let Some(exec) = &mut exec {
        exec.thaw_resumed(&candidates).await;
    }
    noise.abort();
    let slice_at_end = if lock.kind == "Lease" {
        Some(slice_names_the_leader(&sim, &candidates).await)
    } else {
        None
    };
    let noise_writes = noise_writes.load(Ordering::Relaxed);

    // Graceful stop of everyone; every exit must be clean.
    for candidate in &mut candidates {
        candidate.elector.signal("TERM");
    }
    for candidate in &mut candidates {
        let status = candidate.elector.wait_exit(Duration::from_secs(10)).await;
        if !status.success() {
            problems.push(format!(
                "{} exited with {status:?} after SIGTERM",
                candidate.elector.id
            ));
        }
        harvest(candidate, None);
    }
    let finished_ns = u128::from(kube_elector_harness::monotonic_now_ns());
    if let Some(exec) = exec.take() {
        problems.extend(exec.check(&candidates).await);
    }
    let slice_report = slice_at_end.map(|at_end| check_slice(&sim, &candidates, at_end));

    let intervals: Vec<Interval> = candidates.iter().flat_map(|c| c.past.clone()).collect();
    let overlaps = timeline::overlaps(&intervals, finished_ns);
    let (history_problems, resets) = check_history(&sim, lock);
    // Leaderships on either side of a documented token reset (see `check_history`) are not
    // compared.
    let regressions: Vec<_> = timeline::token_regressions(&intervals)
        .into_iter()
        .filter(|(a, b)| {
            !resets
                .iter()
                .any(|&at| a.start_ns < u128::from(at) && u128::from(at) <= b.start_ns)
        })
        .collect();
    let changes = timeline::leader_changes(&intervals);
    for overlap in &overlaps {
        problems.push(format!(
            "two leaders at once for {:?}: {:?} and {:?}\n{}",
            Duration::from_nanos(u64::try_from(overlap.overlap_ns).unwrap_or(u64::MAX)),
            overlap.first,
            overlap.second,
            explain(&sim, lock, &candidates, overlap)
        ));
    }
    for (a, b) in &regressions {
        problems.push(format!("fencing token did not rise: {a:?} then {b:?}"));
    }
    problems.extend(history_problems);
    let deletions = sim
        .writes()
        .iter()
        .filter(|w| w.resource == lock.resource && w.name == "test" && w.verb == "delete")
        .count();
    // A watching follower acts at expiry; a polling one up to a jittered retry (1.2 × retry)
    // after it, having seen the last renewal up to one such period late.
    let bound = if follow.contains(&"poll") {
        LEASE + RETRY.mul_f64(2.4)
    } else {
        LEASE + RETRY
    };
    for (i, took) in recoveries.iter().enumerate() {
        if *took > bound + RECOVERY_SLACK {
            problems.push(format!(
                "heal #{i}: no leader for {took:?} (bound {bound:?} + {RECOVERY_SLACK:?} slack)"
            ));
        }
    }
    if changes < args.min_changes {
        problems.push(format!(
            "only {changes} leadership changes; the run must exercise at least {}",
            args.min_changes
        ));
    }

    let mut sorted = recoveries.clone();
    sorted.sort();
    println!("faults exercised ({} in all):", exercised.values().sum::<u32>());
    for (action, count) in &exercised {
        println!("  {action:?}: {count}");
    }
    println!(
        "changes to the lock by other clients ({} attempted, applied in brackets): {}; unrelated writes: {noise_writes}; \
         {} deletions: {deletions}, of which {} recreated by a candidate that had not seen the last token \
         (the documented limit: its count starts a new baseline)",
        hostile.values().map(|(n, _)| n).sum::<u32>(),
        hostile
            .iter()
            .map(|(what, (n, applied))| format!("{what:?} {n} ({applied})"))
            .collect::<Vec<_>>()
            .join(", "),
        lock.kind,
        resets.len()
    );
    let twin_intervals = intervals.iter().filter(|i| i.identity.ends_with("~twin")).count();
    let conflicts: usize = candidates.iter().map(|c| c.conflicts).sum();
    println!(
        "duplicate identity: the twin of {} ({twin_follow}) led {twin_intervals} times; identity conflicts reported: {conflicts}",
        ids[1]
    );
    println!(
        "leadership: {} intervals, {changes} changes of leader, {} overlapping pairs, {} token regressions",
        intervals.len(),
        overlaps.len(),
        regressions.len()
    );
    println!(
        "recovery after heal ({} heals): median {:?}, max {:?} (bound {bound:?} + {RECOVERY_SLACK:?} slack)",
        sorted.len(),
        sorted.get(sorted.len() / 2).copied().unwrap_or_default(),
        sorted.last().copied().unwrap_or_default()
    );
    println!(
        "ran {:?}; {} writes in the simulator: {}",
        start.elapsed(),
        lock.kind,
        sim.writes()
            .iter()
            .filter(|w| w.resource == lock.resource)
            .count()
    );
    if let Some((slice_problems, summary)) = slice_report {
        println!("{summary}");
        problems.extend(slice_problems);
    }
    if problems.is_empty() {
        println!("chaos: 0 violations");
        Ok(true)
    } else {
        for problem in &problems {
            println!("VIOLATION: {problem}");
        }
        println!("chaos: {} violations (seed {seed})", problems.len());
        println!("re-run this run with: {rerun}");
        Ok(false)
    }
}

/// Scheduling noise allowed on top of the recovery bound on a loaded two-core machine: the
/// simulator, five electors, the harness and other builds share two cores, and the recovery is
/// measured from outside (the harness's `/readyz` polling every 5 ms) rather than on the write
/// log. README.md states this slack next to the bound.
const RECOVERY_SLACK: Duration = Duration::from_millis(500);

/// The skewed candidate must really see a different wall clock.
async fn check_skew(candidate: &Candidate) -> anyhow::Result<()> {
    let (_, _, body) = http_get(candidate.elector.addr, "/status")
        .await
        .context("status of the skewed candidate")?;
    let status: serde_json::Value = serde_json::from_str(&body).context("status JSON")?;
    let theirs: jiff::Timestamp = status["timestamp"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .context("timestamp")?;
    let skew = theirs.duration_since(jiff::Timestamp::now());
    if skew.abs() < jiff::SignedDuration::from_secs(60) {
        bail!(
            "the candidate under libfaketime reports {theirs}, less than a minute off: the skew is not in effect"
        );
    }
    println!(
        "skewed candidate {} reports wall clock {theirs} ({skew:#} off)",
        candidate.elector.id
    );
    Ok(())
}

/// The stored lock's record, if the lock exists.
fn stored_record(sim: &Sim, lock: LockKind) -> Option<(String, i64)> {
    sim.objects()
        .into_iter()
        .find(|o| o["kind"] == lock.kind && o["metadata"]["name"] == "test")
        .as_ref()
        .and_then(lock_record)
}

/// The current leader by the simulator's lock, if it names a candidate.
fn lock_holder(sim: &Sim, lock: LockKind) -> Option<String> {
    stored_record(sim, lock)
        .map(|(holder, _)| holder)
        .filter(|holder| !holder.is_empty())
}

/// Changes of leader so far, from every process's log (earlier incarnations and the current).
fn leader_changes_so_far(candidates: &[Candidate]) -> usize {
    let intervals: Vec<Interval> = candidates
        .iter()
        .flat_map(|c| {
            let mut all = c.past.clone();
            all.extend(timeline::intervals_from_logs(&c.label, &c.elector.logs()));
            all
        })
        .collect();
    timeline::leader_changes(&intervals)
}

/// What happened around an overlap: the lock's writes and both processes' log lines from three
/// seconds before the first leadership began until the second began, on the shared clock.
fn explain(sim: &Sim, lock: LockKind, candidates: &[Candidate], overlap: &timeline::Overlap) -> String {
    let from = overlap.first.start_ns.saturating_sub(3_000_000_000);
    let to = overlap.second.start_ns + 200_000_000;
    let within = |ns: u128| from <= ns && ns <= to;
    let mut lines: Vec<(u128, String)> = sim
        .writes()
        .into_iter()
        .filter(|w| w.resource == lock.resource && w.name == "test" && within(u128::from(w.monotonic_ns)))
        .map(|w| {
            let (holder, count) = lock_record(&w.object).unwrap_or_default();
            let incarnation = w.object["metadata"]["annotations"]["kube-elector/holder-incarnation"]
                .as_str()
                .unwrap_or("");
            (
                u128::from(w.monotonic_ns),
                format!(
                    "write #{} rv {} {} by {}: holder {holder:?} count {count} {incarnation}",
                    w.seq, w.resource_version, w.verb, w.client
                ),
            )
        })
        .collect();
    for candidate in candidates
        .iter()
        .filter(|c| c.label == overlap.first.identity || c.label == overlap.second.identity)
    {
        // Most lines carry no monotonic time: they are placed at the last one before them.
        let current = candidate.elector.logs();
        let mut last_ns = None;
        for line in candidate.past_logs.iter().chain(current.iter()) {
            let ns = match &line["monotonic_ns"] {
                serde_json::Value::String(text) => text.parse().ok(),
                serde_json::Value::Number(n) => n.as_u64().map(u128::from),
                _ => None,
            };
            let exact = ns.is_some();
            last_ns = ns.or(last_ns);
            if let Some(ns) = last_ns.filter(|ns| within(*ns)) {
                let mark = if exact { "" } else { "~" };
                lines.push((ns, format!("{mark}{}: {line}", candidate.label)));
            }
        }
    }
    lines.sort_by_key(|(ns, _)| *ns);
    lines
        .into_iter()
        .map(|(ns, text)| format!("  {:>8.3}s {text}", (ns - from) as f64 / 1e9))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Collects an incarnation's intervals; `killed_at` closes one left open.
fn harvest(candidate: &mut Candidate, killed_at: Option<u128>) {
    let logs = candidate.elector.logs();
    candidate.conflicts += logs
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("another live process"))
        })
        .count();
    let mut intervals = timeline::intervals_from_logs(&candidate.label, &logs);
    if let Some(at) = killed_at {
        timeline::close_open(&mut intervals, at);
    }
    candidate.past.extend(intervals);
    candidate.past_logs.extend(logs);
}

/// Ends faults whose time is up, wakes paused processes, restarts dead ones, and notices any
/// process that exited on its own.
async fn tend(sim: &Sim, candidates: &mut [Candidate], now: Instant, problems: &mut Vec<String>) {
    for candidate in candidates.iter_mut() {
        if candidate.fault_until.is_some_and(|until| until <= now) {
            sim.clear_fault(&candidate.elector.id);
            candidate.fault_until = None;
        }
        match candidate.process {
            Process::Paused { until, .. } if until <= now => {
                candidate.elector.signal("CONT");
                candidate.process = Process::Running;
            }
            Process::Dead { restart_at } if restart_at <= now => {
                candidate.elector.restart().await;
                candidate.process = Process::Running;
            }
            Process::Running if candidate.elector.has_exited().is_some() => {
                // Exited: read its log to the end before harvesting its intervals.
                let status = candidate.elector.wait_exit(Duration::from_secs(5)).await;
                problems.push(format!(
                    "{} exited on its own with {status:?}; logs:\n{}",
                    candidate.elector.id,
                    candidate.elector.dump_logs()
                ));
                harvest(
                    candidate,
                    Some(u128::from(kube_elector_harness::monotonic_now_ns())),
                );
                candidate.elector.restart().await;
            }
            _ => {}
        }
        if candidate
            .elector
            .logs()
            .iter()
            .any(|l| l.as_str().is_some_and(|s| s.contains("panicked")))
        {
            problems.push(format!(
                "{} panicked:\n{}",
                candidate.elector.id,
                candidate.elector.dump_logs()
            ));
        }
    }
}

/// Picks and applies one fault; `None` if nothing fitted right now.
async fn inject(
    sim: &Sim,
    lock: LockKind,
    candidates: &mut [Candidate],
    rng: &mut StdRng,
    now: Instant,
    problems: &mut Vec<String>,
) -> Option<Action> {
    let total: u32 = ACTIONS.iter().map(|(_, w)| w).sum();
    let mut pick = rng.random_range(0..total);
    let action = ACTIONS
        .iter()
        .find(|(_, w)| {
            if pick < *w {
                true
            } else {
                pick -= w;
                false
            }
        })
        .map(|(a, _)| *a)?;
    let holder = lock_holder(sim, lock);
    let running: Vec<usize> = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c.process, Process::Running))
        .map(|(i, _)| i)
        .collect();
    let leader = running
        .iter()
        .copied()
        .find(|&i| Some(&candidates[i].elector.id) == holder.as_ref());
    let alive = candidates
        .iter()
        .filter(|c| !matches!(c.process, Process::Dead { .. }))
        .count();
    let for_process = |rng: &mut StdRng| -> Option<usize> {
        // Mostly aim at the leader, where faults matter most.
        if rng.random_bool(0.7) && leader.is_some() {
            return leader;
        }
        let free: Vec<usize> = running
            .iter()
            .copied()
            .filter(|&i| candidates[i].fault_until.is_none())
            .collect();
        if free.is_empty() {
            None
        } else {
            Some(free[rng.random_range(0..free.len())])
        }
    };
    let fault_for = |rng: &mut StdRng| -> Option<(Fault, Duration)> {
        let lasting = Duration::from_millis(rng.random_range(400..2_500));
        let fault = match action {
            Action::Latency => Fault {
                latency_ms: rng.random_range(100..1_200),
                ..Fault::default()
            },
            Action::ErrorBurst => Fault {
                fail: Some(FailSpec {
                    status: if rng.random_bool(0.5) { 500 } else { 503 },
                    ratio: rng.random_range(0.5..=1.0),
                    retry_after_seconds: Some(1),
                }),
                ..Fault::default()
            },
            Action::TooManyRequests => Fault {
                fail: Some(FailSpec {
                    status: 429,
                    ratio: rng.random_range(0.5..=1.0),
                    retry_after_seconds: Some(1),
                }),
                ..Fault::default()
            },
            Action::DropConnections => Fault {
                drop_ratio: rng.random_range(0.3..=1.0),
                ..Fault::default()
            },
            Action::LoseResponses => Fault {
                lose_response_ratio: rng.random_range(0.5..=1.0),
                ..Fault::default()
            },
            Action::WatchStall => Fault {
                watch: WatchMode::Stall,
                ..Fault::default()
            },
            Action::WatchClose => Fault {
                watch: WatchMode::Close,
                ..Fault::default()
            },
            Action::Partition => Fault {
                partition: true,
                ..Fault::default()
            },
            _ => return None,
        };
        Some((fault, lasting))
    };
    match action {
        Action::PauseLeader => {
            let i = leader?;
            let pause = LEASE.mul_f64(rng.random_range(1.3..3.0));
            candidates[i].elector.signal("STOP");
            candidates[i].process = Process::Paused {
                since: now,
                until: now + pause,
            };
        }
        Action::KillLeader => {
            let i = leader?;
            // Keep a quorum of live candidates so there is always someone to take over.
            if alive <= 2 {
                return None;
            }
            kill(&mut candidates[i], now, rng).await;
        }
        Action::TerminateLeader => {
            let i = leader?;
            if alive <= 2 {
                return None;
            }
            candidates[i].elector.signal("TERM");
            let status = candidates[i].elector.wait_exit(Duration::from_secs(10)).await;
            if !status.success() {
                problems.push(format!(
                    "{} exited with {status:?} after SIGTERM; logs:\n{}",
                    candidates[i].elector.id,
                    candidates[i].elector.dump_logs()
                ));
            }
            harvest(&mut candidates[i], None);
            candidates[i].process = Process::Dead {
                restart_at: Instant::now() + Duration::from_millis(rng.random_range(50..600)),
            };
        }
        _ => {
            let i = for_process(rng)?;
            let (fault, lasting) = fault_for(rng)?;
            sim.set_fault(&candidates[i].elector.id, fault);
            candidates[i].fault_until = Some(now + lasting);
        }
    }
    Some(action)
}

async fn kill(candidate: &mut Candidate, now: Instant, rng: &mut StdRng) {
    let killed_at = u128::from(kube_elector_harness::monotonic_now_ns());
    // A process killed while paused had lost its claim by pause + renew deadline at the latest.
    let end = match candidate.process {
        Process::Paused { since, .. } => {
            let lapse = killed_at.saturating_sub(since.elapsed().as_nanos()) + RENEW_DEADLINE.as_nanos();
            lapse.min(killed_at)
        }
        _ => killed_at,
    };
    candidate.elector.signal("KILL");
    let _ = candidate.elector.wait_exit(Duration::from_secs(5)).await;
    harvest(candidate, Some(end));
    candidate.process = Process::Dead {
        restart_at: now + Duration::from_millis(rng.random_range(100..1_000)),
    };
}

/// Heals everything at once, then measures how long until some candidate is ready.
async fn heal_and_measure(sim: &Sim, candidates: &mut [Candidate], problems: &mut Vec<String>) -> Duration {
    for candidate in candidates.iter_mut() {
        sim.clear_fault(&candidate.elector.id);
        candidate.fault_until = None;
        match candidate.process {
            Process::Paused { .. } => candidate.elector.signal("CONT"),
            Process::Dead { .. } => candidate.elector.restart().await,
            Process::Running => {}
        }
        candidate.process = Process::Running;
    }
    let healed = Instant::now();
    let deadline = healed + LEASE * 10;
    loop {
        for candidate in candidates.iter() {
            if let Some((200, _, _)) = http_get(candidate.elector.addr, "/readyz").await {
                return healed.elapsed();
            }
        }
        if Instant::now() > deadline {
            problems.push(format!(
                "no leader within {:?} after healing every fault",
                LEASE * 10
            ));
            return healed.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The simulator's history of the lock must be one a correct election writes. Among the
/// candidates' writes (the operator's are the faults): a renewal or a release keeps the count,
/// and a new holder (identity and incarnation) writes a count above every count a candidate
/// wrote before, across foreign rewrites. The one exception is the documented limit: a candidate
/// that had not seen the last count recreating a deleted lock (it has nowhere to learn it from);
/// such creates are returned apart, as the monotonic times of the writes, and start a new
/// baseline. The record is read as each kind keeps it (see [`lock_record`]).
fn check_history(sim: &Sim, lock: LockKind) -> (Vec<String>, Vec<u64>) {
    let mut problems = Vec::new();
    let mut resets = Vec::new();
    let writes: Vec<_> = sim
        .writes()
        .into_iter()
        .filter(|w| w.resource == lock.resource && w.name == "test")
        .collect();
    if writes.is_empty() {
        problems.push(format!("no {} was ever written", lock.kind));
    }
    let holder = |w: &kube_sim::WriteRecord| lock_record(&w.object).unwrap_or_default().0;
    let transitions = |w: &kube_sim::WriteRecord| lock_record(&w.object).unwrap_or_default().1;
    let incarnation = |w: &kube_sim::WriteRecord| {
        let text = w.object["metadata"]["annotations"]["kube-elector/holder-incarnation"]
            .as_str()
            .unwrap_or("");
        serde_json::from_str::<serde_json::Value>(text).map_or(String::new(), |v| {
            v["incarnation"].as_str().unwrap_or("").to_owned()
        })
    };
    let mut previous: Option<kube_sim::WriteRecord> = None;
    let mut highest = i64::MIN;
    let mut touched = false;
    let mut deleted = false;
    for write in writes {
        if write.client == OPERATOR || write.verb == "delete" {
            // Writes that leave the record alone (the unrelated noise) change nothing here.
            let same_record = write.verb != "delete"
                && previous
                    .as_ref()
                    .is_some_and(|a| raw_record(&a.object) == raw_record(&write.object));
            touched |= !same_record;
            deleted |= write.verb == "delete";
            continue;
        }
        let (b, t) = (&write, transitions(&write));
        let problem = match &previous {
            // After a foreign change, the same process writing again is a new leadership.
            Some(a) if !touched && holder(a) == holder(b) && incarnation(a) == incarnation(b) => {
                (t != transitions(a)).then(|| format!("a renewal changed the count from {}", transitions(a)))
            }
            Some(a) if !touched && holder(b).is_empty() => {
                (t != transitions(a)).then(|| format!("a release changed the count from {}", transitions(a)))
            }
            _ if holder(b).is_empty() || t > highest => None,
            _ if deleted && b.verb == "create" => {
                resets.push(b.monotonic_ns);
                highest = t;
                None
            }
            _ => Some(format!(
                "a new holder's count is not above the highest before, {highest}"
            )),
        };
        if let Some(problem) = problem {
            let before = previous.as_ref().map_or("nothing".to_owned(), |a| {
                format!(
                    "write {} ({} {} {} {}){}",
                    a.seq,
                    a.verb,
                    holder(a),
                    incarnation(a),
                    transitions(a),
                    if touched { " and foreign changes" } else { "" }
                )
            });
            problems.push(format!(
                "{} write {} ({} by {}: {} {}): {t} transitions after {before}: {problem}",
                lock.kind,
                b.seq,
                b.verb,
                b.client,
                holder(b),
                incarnation(b)
            ));
        }
        highest = highest.max(t);
        previous = Some(write);
        touched = false;
        deleted = false;
    }
    (problems, resets)
}

/// The EndpointSlice every candidate writes in a Lease run (the other lock kinds run without
/// it: one extra check on the long run costs no extra run).
const SLICE: &str = "test-leader";

/// The pod IP of candidate `index` (the twin is the index after the last candidate).
fn slice_address(index: usize) -> String {
    format!("10.0.1.{}", index + 1)
}

/// `--endpoint-slice` and its settings for candidate `index`, in a Lease run only.
fn slice_args(lock: LockKind, index: usize) -> Vec<String> {
    if lock.kind != "Lease" {
        return Vec::new();
    }
    [
        "--endpoint-slice",
        SLICE,
        "--endpoint-slice-service",
        "web",
        "--endpoint-slice-ports",
        "http:8080",
        "--pod-ip",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([slice_address(index)])
    .collect()
}

/// The addresses a stored slice (or a write of it) names.
fn slice_addresses(object: &serde_json::Value) -> Vec<String> {
    object["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect()
}

/// The stored slice's addresses.
fn stored_slice(sim: &Sim) -> Option<Vec<String>> {
    sim.objects()
        .into_iter()
        .find(|o| o["kind"] == "EndpointSlice" && o["metadata"]["name"] == SLICE)
        .map(|o| slice_addresses(&o))
}

/// After the final heal, while nothing is faulted: the slice comes to name exactly the current
/// leader's address within [`SLICE_SETTLE`]. `Err` says what it named instead.
async fn slice_names_the_leader(sim: &Sim, candidates: &[Candidate]) -> Result<Duration, String> {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < SLICE_SETTLE {
        let mut leading = Vec::new();
        for (i, candidate) in candidates.iter().enumerate() {
            if candidate.elector.is_leader().await {
                leading.push(slice_address(i));
            }
        }
        let stored = stored_slice(sim);
        if leading.len() == 1 && stored.as_ref() == Some(&leading) {
            return Ok(started.elapsed());
        }
        last = format!("leaders {leading:?}, slice {stored:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(last)
}

/// How long after the final heal the slice may take to name the leader: a retry period or two
/// of a write that failed just before the heal, and scheduling on a loaded machine.
const SLICE_SETTLE: Duration = Duration::from_secs(5);

/// The EndpointSlice invariant of a Lease run, from the simulator's write log and the
/// candidates' leadership intervals (on the same monotonic clock):
/// 1. own address only: every candidate's write names no address or only the writer's own
///    (client `c1` is two processes, `c1` and its twin, so either of their addresses);
/// 2. at each handover (a leadership interval beginning at S), the slice as stored at S names
///    nobody, the leader before (the one whose interval began last before S: it may not have
///    emptied the slice yet, or could not) or the new leader; or an older leader X only when no
///    leader since X's last leadership began got a write of its own address applied before S
///    (each lost its claim before its first write landed: counted and printed, not a violation).
///    A slice naming X after a later leader's own write was applied would mean a stale write was
///    applied over a newer one, which the conditional writes exclude;
/// 3. at the end, after the final heal, the slice names exactly the current leader
///    ([`slice_names_the_leader`]); and once every candidate has stopped gracefully it names
///    nobody.
fn check_slice(
    sim: &Sim,
    candidates: &[Candidate],
    at_end: Result<Duration, String>,
) -> (Vec<String>, String) {
    let mut problems = Vec::new();
    let address_of: BTreeMap<&str, String> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| (c.label.as_str(), slice_address(i)))
        .collect();
    let writes: Vec<_> = sim
        .writes()
        .into_iter()
        .filter(|w| w.resource == "endpointslices" && w.name == SLICE)
        .collect();
    for write in &writes {
        let named = slice_addresses(&write.object);
        let own: Vec<&String> = address_of
            .iter()
            .filter(|(label, _)| label.split('~').next() == Some(write.client.as_str()))
            .map(|(_, address)| address)
            .collect();
        if named.len() > 1 || named.iter().any(|a| !own.contains(&a)) {
            problems.push(format!(
                "EndpointSlice write {} by {} names {named:?}; a candidate writes only its own address {own:?}",
                write.seq, write.client
            ));
        }
    }
    let mut intervals: Vec<Interval> = candidates.iter().flat_map(|c| c.past.clone()).collect();
    intervals.sort_by_key(|i| i.start_ns);
    let mut handovers = 0;
    let mut left_by_silent_leaders = 0;
    let label_of = |address: &str| {
        address_of
            .iter()
            .find(|(_, a)| a.as_str() == address)
            .map(|(label, _)| (*label).to_owned())
    };
    for (i, pair) in intervals.windows(2).enumerate() {
        let (before, after) = (&pair[0], &pair[1]);
        if before.identity == after.identity {
            continue;
        }
        handovers += 1;
        let stored = writes
            .iter()
            .rev()
            .find(|w| u128::from(w.monotonic_ns) <= after.start_ns)
            .map(|w| slice_addresses(&w.object))
            .unwrap_or_default();
        let allowed = [
            address_of.get(before.identity.as_str()),
            address_of.get(after.identity.as_str()),
        ];
        let Some(stale) = stored.iter().find(|a| !allowed.contains(&Some(*a))) else {
            continue;
        };
        // An older leader X: acceptable only if no leader since X's last leadership began got a
        // write of its own address applied before this handover (each lost leadership first).
        let older = label_of(stale).unwrap_or_default();
        let since = intervals[..=i]
            .iter()
            .rev()
            .find(|interval| interval.identity == older)
            .map_or(0, |interval| interval.start_ns);
        let overwritten = intervals[..=i]
            .iter()
            .filter(|y| y.start_ns > since && y.identity != older)
            .find_map(|y| {
                let own = address_of.get(y.identity.as_str())?;
                writes
                    .iter()
                    .find(|w| {
                        let at = u128::from(w.monotonic_ns);
                        at >= y.start_ns
                            && at <= after.start_ns
                            && slice_addresses(&w.object) == [own.clone()]
                    })
                    .map(|w| (y.identity.clone(), w.seq))
            });
        match overwritten {
            Some((by, seq)) => problems.push(format!(
                "at the handover from {} to {} the EndpointSlice named {older} ({stale}), although {by} \
                 had written its own address (write {seq}) since {older} last led: a stale write was applied",
                before.identity, after.identity
            )),
            None => left_by_silent_leaders += 1,
        }
    }
    let settled = match at_end {
        Ok(took) => format!("named the leader {took:?} after the final heal"),
        Err(what) => {
            problems.push(format!(
                "the EndpointSlice did not name the leader within {SLICE_SETTLE:?} of the final heal: {what}"
            ));
            "did not settle".to_owned()
        }
    };
    let after_stop = stored_slice(sim).unwrap_or_default();
    if !after_stop.is_empty() {
        problems.push(format!(
            "the EndpointSlice names {after_stop:?} after every candidate stopped gracefully"
        ));
    }
    let summary = format!(
        "EndpointSlice: {} writes, {handovers} handovers checked ({left_by_silent_leaders} found an older leader's \
         address left by successors that lost leadership before their first write), {settled}, naming \
         {after_stop:?} after the graceful stop",
        writes.len()
    );
    (problems, summary)
}

/// The client that acts on the lock as other clients and people do.
const OPERATOR: &str = "operator";

/// How long before a heal no change to the lock is made, and how long after the last one the
/// final heal waits: a change makes candidates wait out a lease, which the recovery bound after
/// a heal does not cover.
const HOSTILE_QUIET: Duration = Duration::from_secs(3);

/// What other clients and people do to the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Hostile {
    /// `kubectl delete lease|configmap|endpoints`.
    DeleteLock,
    /// The record removed (a Lease's `spec: null`, the leader annotation), the object kept.
    StripRecord,
    /// Another holder written over the live one with a merge patch: no resourceVersion.
    ForeignHolder,
    /// A record as another client writes it, with no incarnation. A Lease: its identity, no
    /// duration, no times, no count. An annotation, as the official Python client writes it:
    /// numbers as strings, times without fractional seconds, no count.
    OtherClientFormat,
}

impl Hostile {
    const ALL: [Hostile; 4] = [
        Hostile::DeleteLock,
        Hostile::StripRecord,
        Hostile::ForeignHolder,
        Hostile::OtherClientFormat,
    ];
}

/// The `operator` client, through the ordinary API, on the run's kind of lock.
struct Operator {
    lock: LockKind,
    api: kube::Api<kube::api::DynamicObject>,
}

impl Operator {
    async fn connect(sim: &Sim, lock: LockKind) -> anyhow::Result<Self> {
        let kubeconfig = kube::config::Kubeconfig::read_from(sim.kubeconfig_path(OPERATOR))
            .context("reading the operator's kubeconfig")?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .context("the operator's client configuration")?;
        let client = kube::Client::try_from(config).context("the operator's client")?;
        let gvk = kube::api::GroupVersionKind::gvk(lock.group, "v1", lock.kind);
        let resource = kube::api::ApiResource::from_gvk_with_plural(&gvk, lock.resource);
        Ok(Self {
            lock,
            api: kube::Api::namespaced_with(client, "default", &resource),
        })
    }

    /// Applies `what`; false when the API server refused it (e.g. the lock was already gone).
    async fn apply(&self, what: Hostile) -> bool {
        use kube::api::{DeleteParams, Patch, PatchParams};
        let now = jiff::Timestamp::now();
        let micros = now.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        let seconds = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let lease = self.lock.kind == "Lease";
        let record = match what {
            Hostile::DeleteLock => return self.api.delete("test", &DeleteParams::default()).await.is_ok(),
            Hostile::StripRecord => serde_json::Value::Null,
            Hostile::ForeignHolder => serde_json::json!({"holderIdentity": "intruder",
                "leaseDurationSeconds": 1, (self.lock.transitions_field()): 0,
                "acquireTime": micros, "renewTime": micros}),
            Hostile::OtherClientFormat if lease => serde_json::json!({"holderIdentity": "other-client",
                "leaseDurationSeconds": null, "acquireTime": null, "renewTime": null, "leaseTransitions": null}),
            Hostile::OtherClientFormat => serde_json::json!({"holderIdentity": "other-client",
                "leaseDurationSeconds": "1", "acquireTime": seconds, "renewTime": seconds}),
        };
        let patch = if lease {
            serde_json::json!({ "spec": record })
        } else {
            let text = (!record.is_null()).then(|| record.to_string());
            serde_json::json!({"metadata": {"annotations": {LEADER_ANNOTATION: text}}})
        };
        self.api
            .patch("test", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .is_ok()
    }

    /// Writes a label on the lock every second (and, on a ConfigMap, its `data`) until aborted
    /// (GitOps noise); counts the writes the API server took.
    fn unrelated_writes(&self) -> (tokio::task::JoinHandle<()>, Arc<AtomicUsize>) {
        use kube::api::{Patch, PatchParams};
        let api = self.api.clone();
        let with_data = self.lock.kind == "ConfigMap";
        let written = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&written);
        let task = tokio::spawn(async move {
            for n in 0u64.. {
                let mut patch = serde_json::json!({"metadata": {"labels": {"chaos-noise": n.to_string()}}});
                if with_data {
                    patch["data"] = serde_json::json!({"chaos-noise": n.to_string()});
                }
                if api
                    .patch("test", &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .is_ok()
                {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        (task, written)
    }
}

/// Exec mode in the chaos run: the recording child for every candidate, the freezes of children
/// with their paused electors, and the final check that no two children ran at once.
///
/// A pause freezes the leader's process group and its child's (a frozen machine). On resume the
/// elector is woken first and given up to [`THAW_WAIT`] to stop its child, which by then must
/// have lapsed its claim (a pause is longer than the lease): SIGKILL ends a frozen process, so
/// the child never runs again. If it is still there, it is woken too, and any running time it
/// then shares with another child is a violation. A child's end is the earlier of its elector's
/// reap (logged with `monotonic_ns`, read after `waitpid`) and the moment a sampler polling
/// `/proc` every [`SAMPLE_EVERY`] first saw it gone: both come after its real end. Its start is
/// its elector's "started the command" (logged with `monotonic_ns` read before the fork), so a
/// child stopped before it could record anything is checked too.
struct ExecCheck {
    dir: PathBuf,
    recorder: kube_elector_harness::exec_child::ChildRecorder,
    /// (candidate label, child PID, index in `freezes`) of children frozen right now.
    frozen: Vec<(String, u32, usize)>,
    freezes: Vec<kube_elector_harness::exec_child::Freeze>,
    sampler: tokio::task::JoinHandle<BTreeMap<u32, u64>>,
    stop_sampler: Arc<std::sync::atomic::AtomicBool>,
}

/// How long a resumed elector gets to stop its frozen child before the child is woken too.
const THAW_WAIT: Duration = Duration::from_secs(2);
/// How often the sampler looks for children that have ended.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// `launch` with the recording child as its command, in exec mode.
fn exec_launch(exec: Option<&ExecCheck>, mut launch: Launch) -> Launch {
    if let Some(exec) = exec {
        launch.command = exec.recorder.command();
        launch.args.extend(["--child-grace".to_owned(), "1s".to_owned()]);
    }
    launch
}

impl ExecCheck {
    fn start() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("kube-elector-chaos-exec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let recorder = kube_elector_harness::exec_child::ChildRecorder::new(&dir)
            .with_context(|| format!("writing the recording child into {}", dir.display()))?;
        let stop_sampler = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = {
            let recorder = recorder.clone();
            let stop = stop_sampler.clone();
            tokio::spawn(async move {
                let mut ended: BTreeMap<u32, u64> = BTreeMap::new();
                while !stop.load(Ordering::Relaxed) {
                    for pid in recorder.spawned() {
                        if !ended.contains_key(&pid) && kube_elector_harness::exec_child::process_ended(pid) {
                            ended.insert(pid, kube_elector_harness::monotonic_now_ns());
                        }
                    }
                    tokio::time::sleep(SAMPLE_EVERY).await;
                }
                ended
            })
        };
        Ok(Self {
            dir,
            recorder,
            frozen: Vec::new(),
            freezes: Vec::new(),
            sampler,
            stop_sampler,
        })
    }

    /// Freezes the children of the candidates paused at `now` (just now, with their elector).
    fn freeze_paused(&mut self, candidates: &[Candidate], now: Instant) {
        // From the shell's `spawn PID PPID` line, so a child still starting Python is found too.
        let spawned = self.recorder.spawned_by();
        for candidate in candidates {
            if !matches!(candidate.process, Process::Paused { since, .. } if since == now) {
                continue;
            }
            for &(child, _) in spawned
                .iter()
                .filter(|(_, ppid)| *ppid == candidate.elector.pid())
            {
                if kube_elector_harness::exec_child::process_ended(child) {
                    continue;
                }
                let Some(pid) = i32::try_from(child).ok().and_then(rustix::process::Pid::from_raw) else {
                    continue;
                };
                if rustix::process::kill_process_group(pid, rustix::process::Signal::STOP).is_ok() {
                    self.freezes.push(kube_elector_harness::exec_child::Freeze {
                        pid: child,
                        from_ns: kube_elector_harness::monotonic_now_ns(),
                        to_ns: None,
                    });
                    self.frozen
                        .push((candidate.label.clone(), child, self.freezes.len() - 1));
                }
            }
        }
    }

    /// Wakes the frozen children whose elector is no longer paused, once their elector has had
    /// [`THAW_WAIT`] to end them; one ended meanwhile stays as it is (it never ran again).
    async fn thaw_resumed(&mut self, candidates: &[Candidate]) {
        let resumed: Vec<(String, u32, usize)> = self
            .frozen
            .iter()
            .filter(|(label, _, _)| {
                candidates
                    .iter()
                    .find(|c| &c.label == label)
                    .is_none_or(|c| !matches!(c.process, Process::Paused { .. }))
            })
            .cloned()
            .collect();
        for (label, child, index) in resumed {
            self.frozen.retain(|(_, pid, _)| *pid != child);
            let deadline = Instant::now() + THAW_WAIT;
            while !kube_elector_harness::exec_child::process_ended(child) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if kube_elector_harness::exec_child::process_ended(child) {
                continue;
            }
            println!(
                "exec: {label}'s child {child} outlived its elector's resume by {THAW_WAIT:?}; waking it"
            );
            self.freezes[index].to_ns = Some(kube_elector_harness::monotonic_now_ns());
            if let Some(pid) = i32::try_from(child).ok().and_then(rustix::process::Pid::from_raw) {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::CONT);
            }
        }
    }

    /// After every elector has stopped: no two children ran at once; prints what it saw.
    async fn check(self, candidates: &[Candidate]) -> Vec<String> {
        use kube_elector_harness::exec_child::{ChildLife, process_ended, running_overlaps};
        let mut problems = Vec::new();
        // Every child must be gone once its elector has exited.
        let spawned = self.recorder.spawned();
        let deadline = Instant::now() + Duration::from_secs(5);
        while spawned.iter().any(|pid| !process_ended(*pid)) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.stop_sampler.store(true, Ordering::Relaxed);
        let sampled = self.sampler.await.unwrap_or_default();
        let ns = |line: &serde_json::Value| line["monotonic_ns"].as_str().and_then(|v| v.parse::<u64>().ok());
        let pid_of = |line: &serde_json::Value| line["pid"].as_u64().and_then(|p| u32::try_from(p).ok());
        let mut started: BTreeMap<u32, ChildLife> = BTreeMap::new();
        let mut reaped: BTreeMap<u32, (u64, String)> = BTreeMap::new();
        for (label, line) in candidates
            .iter()
            .flat_map(|c| c.past_logs.iter().map(move |line| (&c.label, line)))
        {
            let (Some(pid), Some(at)) = (pid_of(line), ns(line)) else {
                continue;
            };
            if line["message"] == "started the command" {
                started.entry(pid).or_insert_with(|| ChildLife {
                    pid,
                    ppid: 0,
                    identity: label.clone(),
                    token: line["fencing_token"].as_u64().unwrap_or_default(),
                    start_ns: at,
                    exit_ns: None,
                });
            } else if line["message"] == "the command ended" {
                let reason = line["reason"].as_str().unwrap_or("?");
                let reason = if reason == "exited" {
                    format!("exited ({})", line["exit"].as_str().unwrap_or("?"))
                } else {
                    reason.to_owned()
                };
                reaped.insert(pid, (at, reason));
            }
        }
        let mut lives: Vec<ChildLife> = started.into_values().collect();
        lives.sort_by_key(|life| life.start_ns);
        let now = kube_elector_harness::monotonic_now_ns();
        let end = |life: &ChildLife| match (reaped.get(&life.pid).map(|r| r.0), sampled.get(&life.pid)) {
            (Some(a), Some(b)) => a.min(*b),
            (Some(a), None) => a,
            (None, Some(b)) => *b,
            (None, None) => now,
        };
        let unended: Vec<u32> = spawned
            .iter()
            .copied()
            .filter(|pid| !process_ended(*pid))
            .collect();
        if !unended.is_empty() {
            problems.push(format!(
                "exec: children alive after every elector exited: {unended:?}"
            ));
        }
        let unknown: Vec<u32> = spawned
            .iter()
            .copied()
            .filter(|pid| !lives.iter().any(|l| l.pid == *pid))
            .collect();
        if !unknown.is_empty() {
            // An elector killed between its fork and its log line: the child died with it
            // (checked above: no child outlives the run), its start is not known to compare.
            println!(
                "exec: children whose start no elector logged (elector killed at the fork): {unknown:?}"
            );
        }
        let overlaps = running_overlaps(&lives, end, &self.freezes);
        for (a, b, ns) in &overlaps {
            let ends = |life: &ChildLife| {
                format!(
                    "{}'s child {} (token {}) started at {} ns, reaped at {:?}, seen gone at {:?}",
                    life.identity,
                    life.pid,
                    life.token,
                    life.start_ns,
                    reaped.get(&life.pid),
                    sampled.get(&life.pid)
                )
            };
            let stops: Vec<String> = candidates
                .iter()
                .flat_map(|c| c.past_logs.iter())
                .filter(|l| {
                    l["pid"].as_u64() == Some(u64::from(a.pid)) || l["pid"].as_u64() == Some(u64::from(b.pid))
                })
                .map(|l| l.to_string())
                .collect();
            problems.push(format!(
                "exec: two children ran at once for {:?}: {}; {}\n  {}",
                Duration::from_nanos(*ns),
                ends(a),
                ends(b),
                stops.join("\n  ")
            ));
        }
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, reason) in reaped.values() {
            *reasons.entry(reason.as_str()).or_default() += 1;
        }
        let by_sampler_only = lives.iter().filter(|l| !reaped.contains_key(&l.pid)).count();
        // The children's own stderr passes through their electors' (lines that are not JSON).
        let child_errors: Vec<&str> = candidates
            .iter()
            .flat_map(|c| c.past_logs.iter())
            .filter_map(|l| l.as_str())
            .filter(|l| l.contains("Error") || l.contains("error"))
            .collect();
        if !child_errors.is_empty() {
            println!("exec: the children's stderr said: {child_errors:?}");
        }
        println!(
            "exec: {} children ({} recorded a start), reaped by their elector {reasons:?}, {by_sampler_only} \
             ended with their elector (parent-death signal); {} frozen with their elector ({} woken); \
             {} pairs ran at once",
            lives.len(),
            self.recorder.lives().len(),
            self.freezes.len(),
            self.freezes.iter().filter(|f| f.to_ns.is_some()).count(),
            overlaps.len(),
        );
        let _ = std::fs::remove_dir_all(&self.dir);
        problems
    }
}
