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
//! no unexpected exit; and the simulator's write history of the lock agrees (a new holder adds
//! exactly one transition). It prints what it exercised and exits 1 on any violation, with the
//! command that repeats the run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use kube_elector_harness::timeline::{self, Interval};
use kube_elector_harness::{Elector, elector_binary, http_get};
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
}

/// A lock kind: the `--lock-type` value, the stored object's kind and its plural resource.
#[derive(Clone, Copy, Debug)]
struct LockKind {
    flag: &'static str,
    kind: &'static str,
    resource: &'static str,
}

const LOCK_KINDS: [LockKind; 3] = [
    LockKind {
        flag: "leases",
        kind: "Lease",
        resource: "leases",
    },
    LockKind {
        flag: "configmaps",
        kind: "ConfigMap",
        resource: "configmaps",
    },
    LockKind {
        flag: "endpoints",
        kind: "Endpoints",
        resource: "endpoints",
    },
];

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
    let annotation =
        object["metadata"]["annotations"]["control-plane.alpha.kubernetes.io/leader"].as_str()?;
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
    process: Process,
    fault_until: Option<Instant>,
    /// Intervals of earlier incarnations of this candidate.
    past: Vec<Interval>,
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
    let mut follow: Vec<&str> = (0..args.candidates)
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
    let sim = Sim::start(SimOptions::new(ids.iter().map(String::as_str)))
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
        let mut extra: Vec<&str> = TIMING_ARGS.to_vec();
        extra.extend(["--lock-type", lock.flag, "--follow", follow[i]]);
        let elector = Elector::start_with_env(&binary, &sim, id, &extra, &env).await;
        candidates.push(Candidate {
            elector,
            process: Process::Running,
            fault_until: None,
            past: Vec::new(),
        });
    }
    check_skew(&candidates[0]).await?;

    let mut exercised: BTreeMap<Action, u32> = BTreeMap::new();
    let mut recoveries: Vec<Duration> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let start = Instant::now();
    let min_end = start + Duration::from_secs(args.min_seconds);
    let max_end = start + Duration::from_secs(args.max_seconds.max(args.min_seconds));
    // The Lease counts every change of holder; leadership intervals can count a little fewer
    // (a takeover whose response was lost is finished by the same process later), so aim higher.
    let enough = args.min_changes + args.min_changes / 5;
    let mut next_action = start + Duration::from_millis(500);
    let mut next_heal = start + Duration::from_secs(rng.random_range(12..20));
    loop {
        let now = Instant::now();
        if now >= max_end || (now >= min_end && lock_transitions(&sim, lock) >= enough) {
            break;
        }
        tend(&sim, &mut candidates, now, &mut problems).await;
        if now >= next_heal {
            recoveries.push(heal_and_measure(&sim, &mut candidates, &mut problems).await);
            next_heal = Instant::now() + Duration::from_secs(rng.random_range(12..20));
            next_action = Instant::now() + Duration::from_millis(300);
            continue;
        }
        if now >= next_action {
            if let Some(action) = inject(&sim, lock, &mut candidates, &mut rng, now, &mut problems).await {
                *exercised.entry(action).or_default() += 1;
            }
            next_action = now + Duration::from_millis(rng.random_range(30..150));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    recoveries.push(heal_and_measure(&sim, &mut candidates, &mut problems).await);

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
    let finished_ns = kube_elector_harness::monotonic_now_ns();

    let intervals: Vec<Interval> = candidates.iter().flat_map(|c| c.past.clone()).collect();
    let overlaps = timeline::overlaps(&intervals, finished_ns);
    let regressions = timeline::token_regressions(&intervals);
    let changes = timeline::leader_changes(&intervals);
    for overlap in &overlaps {
        problems.push(format!(
            "two leaders at once for {:?}: {:?} and {:?}",
            Duration::from_nanos(u64::try_from(overlap.overlap_ns).unwrap_or(u64::MAX)),
            overlap.first,
            overlap.second
        ));
    }
    for (a, b) in &regressions {
        problems.push(format!("fencing token did not rise: {a:?} then {b:?}"));
    }
    problems.extend(check_history(&sim, lock));
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

/// The lock's transition count: how many times it changed hands.
fn lock_transitions(sim: &Sim, lock: LockKind) -> usize {
    stored_record(sim, lock).map_or(0, |(_, t)| usize::try_from(t).unwrap_or(0))
}

/// Collects an incarnation's intervals; `killed_at` closes one left open.
fn harvest(candidate: &mut Candidate, killed_at: Option<u128>) {
    let mut intervals = timeline::intervals_from_logs(&candidate.elector.id, &candidate.elector.logs());
    if let Some(at) = killed_at {
        timeline::close_open(&mut intervals, at);
    }
    candidate.past.extend(intervals);
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
                harvest(candidate, Some(kube_elector_harness::monotonic_now_ns()));
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
    let killed_at = kube_elector_harness::monotonic_now_ns();
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

/// The simulator's history of the lock must be one a correct election writes: a new holder adds
/// exactly one transition; a renewal or a release keeps the count.
fn check_history(sim: &Sim, lock: LockKind) -> Vec<String> {
    let writes: Vec<_> = sim
        .writes()
        .into_iter()
        .filter(|w| w.resource == lock.resource && w.name == "test")
        .collect();
    let mut problems = Vec::new();
    if writes.is_empty() {
        problems.push(format!("no {} was ever written", lock.kind));
    }
    for pair in writes.windows(2) {
        let holder = |w: &kube_sim::WriteRecord| lock_record(&w.object).unwrap_or_default().0;
        let transitions = |w: &kube_sim::WriteRecord| lock_record(&w.object).unwrap_or_default().1;
        let (a, b) = (&pair[0], &pair[1]);
        let expected = if holder(b) != holder(a) && !holder(b).is_empty() {
            transitions(a) + 1
        } else {
            transitions(a)
        };
        if transitions(b) != expected {
            problems.push(format!(
                "{} write {} ({} → {}) has {} transitions, expected {expected}",
                lock.kind,
                b.seq,
                holder(a),
                holder(b),
                transitions(b)
            ));
        }
    }
    problems
}
