//! `bench`: kube-elector's watch-driven followers (`--follow watch`) against client-go's polling
//! algorithm (`--follow poll`), side by side in one run, against one in-process simulator over
//! HTTPS, with the same timings, at each group size (3 and 50 candidates by default).
//!
//! For every (size, mode) it starts the group concurrently, waits for a leader, lets it settle,
//! then measures:
//!
//! - steady state over a window: API requests per second per follower and for the leader (the
//!   simulator's per-client accounting), resident memory (`VmRSS`) and CPU time (`utime+stime`)
//!   per process from `/proc`;
//! - graceful handovers: SIGTERM to the leader → the next `became leader` log line, whose
//!   CLOCK_MONOTONIC stamp is the same clock the signal moment is read on (the process turns
//!   ready in the same step of its loop);
//! - crash failovers: SIGKILL to the leader (at a random phase of its renew cycle) → the next
//!   `became leader`, also as a share of the lease duration, and, from the simulator's write
//!   log, the gap between the dead leader's last renewal and the takeover write.
//!
//! Then, once, **crash and restart in the same pod**: three candidates started with `--pod-uid`,
//! the leader SIGKILLed and started again at once with the same pod UID (as the kubelet restarts
//! a crashed container) → the next `became leader`. The restarted process takes its lock back
//! without waiting out the lease, since its predecessor in the pod has provably exited; the crash
//! failovers above (another pod takes over) are the baseline in the same run.
//!
//! Then, once, **exec mode's graceful handover** at 3 candidates (`-- sleep …`, release delay 0
//! as above): SIGTERM to the leader, and from the electors' own CLOCK_MONOTONIC log stamps the
//! old command's end (its reap) -> the new command's start (read before its fork), next to the
//! plain sidecar's handover measured in the same run.
//!
//! Then, once, **the leader-forwarding proxy** (`harness::proxy_bench`): graceful handovers
//! under load through three proxies, SIGTERM -> every request reaches the new leader, against a
//! model of readiness gating (probe period and endpoint propagation stated) on the same
//! handovers; and the proxy's added latency (p50/p99) and throughput against a direct connection
//! to the application, on loopback.
//!
//! Each stopped or killed process is started again before the next round, so the group keeps its
//! size. It prints a table to stdout (progress goes to stderr) and writes every sample to
//! `target/bench/results.json`. It asserts nothing about the figures: a benchmark, not a test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use kube_elector::config::parse_duration;
use kube_elector_harness::events::Events;
use kube_elector_harness::fleet::procfs;
use kube_elector_harness::fleet::stats::{Summary, summarize};
use kube_elector_harness::{Elector, Launch, Signal, elector_binary, monotonic_now_ns};
use kube_sim::{Sim, SimOptions};
use serde::Serialize;
use tokio::time::Instant;

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    about = "Benchmark kube-elector's --follow watch against client-go's algorithm (--follow poll)"
)]
struct Args {
    /// Lease duration given to every elector.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    lease_duration: Duration,
    /// Renew deadline given to every elector.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    renew_deadline: Duration,
    /// Retry period given to every elector.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    retry_period: Duration,
    /// Group sizes (candidate processes), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "3,50,200")]
    sizes: Vec<usize>,
    /// Graceful handovers per mode and size.
    #[arg(long, default_value_t = 8)]
    handovers: usize,
    /// Crash failovers per mode and size.
    #[arg(long, default_value_t = 6)]
    failovers: usize,
    /// Wait after the first leader before the steady-state window.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    settle: Duration,
    /// Steady-state measurement window.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    window: Duration,
    /// Where to write the JSON results.
    #[arg(long, default_value = "target/bench/results.json")]
    out: PathBuf,
    /// Every candidate also writes an EndpointSlice (`--endpoint-slice`, its pod IP from its
    /// id); each graceful handover then also measures SIGTERM -> the slice names the new leader,
    /// from the simulator's write log (the same CLOCK_MONOTONIC).
    #[arg(long)]
    endpoint_slice: bool,
    /// A kube-elector binary of an earlier version (`scripts/bench.sh --baseline REV` builds one)
    /// to run with `--follow watch` too, as the column "watch, before": the same cases, the
    /// same run, to compare a change against.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Graceful handovers under load in the proxy section.
    #[arg(long, default_value_t = 6)]
    proxy_handovers: usize,
    /// Sequential requests per path in the proxy section's latency figures.
    #[arg(long, default_value_t = 2000)]
    proxy_requests: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Watch,
    /// `--follow watch` with the `--baseline` binary.
    WatchBefore,
    Poll,
}

impl Mode {
    fn flag(self) -> &'static str {
        match self {
            Mode::Watch | Mode::WatchBefore => "watch",
            Mode::Poll => "poll",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Mode::Watch => "watch",
            Mode::WatchBefore => "watch-before",
            Mode::Poll => "poll",
        }
    }
}

const ELECTION: &str = "bench";
const START_WITHIN: Duration = Duration::from_secs(60);

#[derive(Debug, Serialize)]
struct Report {
    machine: Machine,
    timings_ms: Timings,
    method: Method,
    cases: Vec<Case>,
    comparisons: Vec<Comparison>,
    restart_in_pod: RestartInPod,
    exec_handover: ExecHandover,
    proxy: kube_elector_harness::proxy_bench::ProxyReport,
    total_seconds: f64,
}

/// Exec mode's graceful handover (see [`exec_handover`]).
#[derive(Debug, Serialize)]
struct ExecHandover {
    candidates: usize,
    /// SIGTERM to the leader -> the next `became leader`, as for the plain sidecar.
    became_ms: Vec<f64>,
    became: Option<Summary>,
    /// The old command's end (its elector's reap) -> the new command's start (its elector's
    /// spawn), both on CLOCK_MONOTONIC from the electors' logs.
    child_gap_ms: Vec<f64>,
    child_gap: Option<Summary>,
    /// SIGTERM to the leader -> the new command's spawn.
    signal_to_new_child_ms: Vec<f64>,
    signal_to_new_child: Option<Summary>,
}

/// Crash and restart in the same pod (see the module documentation).
#[derive(Debug, Serialize)]
struct RestartInPod {
    /// SIGKILL to the leader -> the next `became leader`, restarted at once with its pod UID.
    took_ms: Vec<f64>,
    took: Option<Summary>,
    /// Rounds in which the restarted process itself became leader again.
    restarted_process_led_again: usize,
    /// SIGKILL -> the restarted process serving (process start-up, part of `took`).
    start_up_ms: Vec<f64>,
}

#[derive(Debug, Serialize)]
struct Machine {
    cpus: usize,
    cpu_model: Option<String>,
    memory_mib: Option<u64>,
    kernel: Option<String>,
    load_average_at_start: Option<String>,
}

#[derive(Debug, Serialize)]
struct Timings {
    lease_duration: u128,
    renew_deadline: u128,
    retry_period: u128,
}

#[derive(Debug, Serialize)]
struct Method {
    handover: &'static str,
    takeover_writes: &'static str,
    failover: &'static str,
    requests: &'static str,
    resources: &'static str,
    percentiles: &'static str,
}

const METHOD: Method = Method {
    handover: "SIGTERM to the leader -> the next `became leader` log line of another process; both \
               on CLOCK_MONOTONIC (signal moment read just before kill(2), log stamp taken by the \
               elector when the takeover write succeeded, in the loop step that makes /readyz 200)",
    takeover_writes: "`update leases` requests the other candidates sent from the signal (SIGTERM \
                      or SIGKILL) until the later of the old leader's exit and half a retry \
                      period after the new leader's takeover (simulator accounting, counted on \
                      arrival): one wins, the rest get 409; the new leader's first renewal comes \
                      a full retry period after its takeover, outside the window",
    failover: "SIGKILL to the leader at a uniformly random phase of its renew cycle -> the next \
               `became leader`; also divided by the lease duration, and the simulator's gap from the \
               dead leader's last Lease write to the takeover write",
    requests: "simulator per-client request counts (every verb, counted on arrival) over the \
               steady-state window, divided by its length",
    resources: "VmRSS from /proc/<pid>/status at the end of the window; CPU = run time over the \
                window / window, from the threads' /proc/<pid>/task/*/schedstat (ns) when available, \
                and from utime+stime in /proc/<pid>/stat (clock ticks, coarse) as a cross-check",
    percentiles: "median; p95 by nearest rank (with fewer than 20 samples, the largest)",
};

#[derive(Debug, Serialize)]
struct Case {
    candidates: usize,
    follow: Mode,
    first_leader_ms: f64,
    steady: Steady,
    handover_ms: Vec<f64>,
    handover: Option<Summary>,
    /// Lease updates sent by the other candidates per handover (one wins, the rest get 409).
    handover_takeover_writes_n: Vec<f64>,
    handover_takeover_writes: Option<Summary>,
    /// With `--endpoint-slice`: SIGTERM -> the applied write that makes the slice name the new
    /// leader.
    handover_slice_ms: Vec<f64>,
    handover_slice: Option<Summary>,
    /// With `--endpoint-slice`: the new leader's `became leader` -> that write.
    slice_after_takeover_ms: Vec<f64>,
    slice_after_takeover: Option<Summary>,
    failover_ms: Vec<f64>,
    failover: Option<Summary>,
    failover_lease_ratio: Option<Summary>,
    /// From the simulator's write log: dead leader's last renewal -> takeover write.
    failover_after_last_renewal_ms: Vec<f64>,
    failover_after_last_renewal: Option<Summary>,
    /// Lease updates sent by the surviving candidates per crash failover.
    failover_takeover_writes_n: Vec<f64>,
    failover_takeover_writes: Option<Summary>,
    load_average_after: Option<String>,
}

#[derive(Debug, Serialize)]
struct Steady {
    window_s: f64,
    leader: String,
    leader_changed_during_window: bool,
    leader_requests_per_s: f64,
    leader_requests_per_s_by_kind: BTreeMap<String, f64>,
    follower_requests_per_s: Option<Summary>,
    /// Summed over followers and divided by their number.
    follower_requests_per_s_by_kind: BTreeMap<String, f64>,
    group_requests_per_s: f64,
    leader_rss_mib: f64,
    follower_rss_mib: Option<Summary>,
    /// Where the CPU figures come from: `schedstat` (thread run time, ns) or `stat` (ticks).
    cpu_source: &'static str,
    leader_cpu_percent: f64,
    follower_cpu_percent: Option<Summary>,
    /// CPU time of all followers over the window / followers.
    follower_cpu_percent_mean: f64,
    /// The same from `utime+stime` in clock ticks (coarse: see the resolution).
    leader_cpu_percent_ticks: f64,
    follower_cpu_percent_ticks_mean: f64,
    cpu_tick_resolution_percent: f64,
}

#[derive(Debug, Serialize)]
struct Comparison {
    candidates: usize,
    metric: &'static str,
    watch: Option<f64>,
    /// The `--baseline` binary's figure, when one was given.
    watch_before: Option<f64>,
    poll: Option<f64>,
    /// poll / watch: how many times faster (times) or cheaper (load) watch is.
    poll_over_watch: Option<f64>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    if args.sizes.iter().any(|&n| n < 2) {
        bail!("--sizes: every group needs at least 2 candidates (a leader and a follower)");
    }
    let binary = elector_binary();
    if !binary.is_file() {
        bail!(
            "no kube-elector binary at {}; build it (cargo build --release -p kube-elector) or set KUBE_ELECTOR_BIN",
            binary.display()
        );
    }
    if let Some(baseline) = args.baseline.as_ref().filter(|b| !b.is_file()) {
        bail!(
            "--baseline: no kube-elector binary at {}; give the path of a built binary",
            baseline.display()
        );
    }
    let begun = Instant::now();
    let largest = args.sizes.iter().copied().max().unwrap_or(0);
    let ids: Vec<String> = (0..largest).map(|i| format!("c{i:02}")).collect();
    let sim = Sim::start(SimOptions::new(ids.clone()))
        .await
        .context("starting the simulator")?;
    let machine = machine();
    eprintln!(
        "bench: {} | lease {:?}, renew deadline {:?}, retry {:?} | sizes {:?} | {} handovers, {} failovers per case",
        describe(&machine),
        args.lease_duration,
        args.renew_deadline,
        args.retry_period,
        args.sizes,
        args.handovers,
        args.failovers
    );

    let mut cases = Vec::new();
    for &size in &args.sizes {
        for mode in [Mode::Watch, Mode::WatchBefore, Mode::Poll] {
            let binary = match (mode, &args.baseline) {
                (Mode::WatchBefore, None) => continue,
                (Mode::WatchBefore, Some(baseline)) => baseline.as_path(),
                (Mode::Watch | Mode::Poll, _) => binary.as_path(),
            };
            let case = run_case(&sim, binary, &ids[..size], mode, &args)
                .await
                .with_context(|| format!("{size} candidates, {}", mode.label()))?;
            cases.push(case);
        }
    }
    let restart_in_pod = restart_in_pod(&sim, &binary, &ids[..3.min(ids.len())], &args)
        .await
        .context("crash and restart in the same pod")?;
    let exec_handover = exec_handover(&sim, &binary, &ids[..3.min(ids.len())], &args)
        .await
        .context("exec mode's graceful handover")?;
    let proxy_spec = Launch {
        own_process_group: true,
        within: START_WITHIN,
        args: timing_args(&args),
        ..Launch::new(&binary, sim.kubeconfig_dir(), "bench-proxy", "")
    };
    let proxy = kube_elector_harness::proxy_bench::run(
        &proxy_spec,
        &ids[..3.min(ids.len())],
        args.proxy_handovers,
        args.proxy_requests,
    )
    .await
    .context("the leader-forwarding proxy")?;
    sim.shutdown().await;

    let comparisons = compare(&cases);
    let report = Report {
        machine,
        timings_ms: Timings {
            lease_duration: args.lease_duration.as_millis(),
            renew_deadline: args.renew_deadline.as_millis(),
            retry_period: args.retry_period.as_millis(),
        },
        method: METHOD,
        cases,
        comparisons,
        restart_in_pod,
        exec_handover,
        proxy,
        total_seconds: begun.elapsed().as_secs_f64(),
    };
    print!("{}", table(&report, &args));
    let crash_baseline = report
        .cases
        .iter()
        .find(|c| c.follow == Mode::Watch)
        .and_then(|c| c.failover.as_ref())
        .map(|s| s.median);
    let pod = &report.restart_in_pod;
    println!(
        "\nCrash and restart in the same pod (--pod-uid), SIGKILL -> leader again: median {} (p95 {}), \
         the restarted process led again in {}/{} rounds; process start-up median {}; \
         crash failover to another pod in the same run (watch): median {}{}",
        pod.took.as_ref().map_or("-".to_owned(), |s| fmt_ms(s.median)),
        pod.took.as_ref().map_or("-".to_owned(), |s| fmt_ms(s.p95)),
        pod.restarted_process_led_again,
        pod.took_ms.len(),
        summarize(&pod.start_up_ms).map_or("-".to_owned(), |s| fmt_ms(s.median)),
        crash_baseline.map_or("-".to_owned(), fmt_ms),
        match (pod.took.as_ref(), crash_baseline) {
            (Some(pod), Some(crash)) if pod.median > 0.0 => format!(" ({:.1}× faster)", crash / pod.median),
            _ => String::new(),
        }
    );
    let exec = &report.exec_handover;
    let sidecar = report
        .cases
        .iter()
        .find(|c| c.follow == Mode::Watch && c.candidates == exec.candidates)
        .and_then(|c| c.handover.as_ref());
    println!(
        "\nExec mode, graceful handover at {} candidates (N={}): old command's end -> new command's start \
         median {} (p95 {}); SIGTERM -> became leader median {} (plain sidecar in the same run: {}); \
         SIGTERM -> new command started median {}",
        exec.candidates,
        exec.child_gap_ms.len(),
        exec.child_gap
            .as_ref()
            .map_or("-".to_owned(), |s| fmt_ms(s.median)),
        exec.child_gap.as_ref().map_or("-".to_owned(), |s| fmt_ms(s.p95)),
        exec.became.as_ref().map_or("-".to_owned(), |s| fmt_ms(s.median)),
        sidecar.map_or("-".to_owned(), |s| fmt_ms(s.median)),
        exec.signal_to_new_child
            .as_ref()
            .map_or("-".to_owned(), |s| fmt_ms(s.median)),
    );
    print!("{}", kube_elector_harness::proxy_bench::table(&report.proxy));
    write_json(&args.out, &report)?;
    println!("\nAll samples: {}", args.out.display());
    Ok(())
}

fn write_json(path: &Path, report: &Report) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(report).context("encoding the results")?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

/// The election timings every candidate of a run is started with.
fn timing_args(args: &Args) -> Vec<String> {
    vec![
        "--lease-duration".into(),
        format!("{}ms", args.lease_duration.as_millis()),
        "--renew-deadline".into(),
        format!("{}ms", args.renew_deadline.as_millis()),
        "--retry-period".into(),
        format!("{}ms", args.retry_period.as_millis()),
    ]
}

/// One group size in one follow mode, start to finish.
async fn run_case(sim: &Sim, binary: &Path, ids: &[String], mode: Mode, args: &Args) -> Result<Case> {
    let label = format!("[{} × {}]", ids.len(), mode.label());
    let events = Events::new();
    let spec = Launch {
        events: Some(events.clone()),
        own_process_group: true,
        within: START_WITHIN,
        args: [
            timing_args(args),
            vec![
                "--follow".into(),
                mode.flag().into(),
                // The handover measured is the election's: the release delay (default 1 s) is a
                // pause the operator chooses for the application, added to it by design.
                "--release-delay".into(),
                "0s".into(),
            ],
            slice_args(args.endpoint_slice),
        ]
        .concat(),
        // Each case its own lock: a group learns its takeover model from the lock, and a case
        // must not start from another's.
        ..Launch::new(
            binary,
            sim.kubeconfig_dir(),
            &format!("{ELECTION}-{}-{}", ids.len(), mode.label()),
            "",
        )
    };
    let started = monotonic_now_ns();
    eprintln!("{label} starting {} processes", ids.len());
    let mut group = Elector::launch_all(ids.iter().map(|id| with_pod_ip(spec.with_id(id))).collect()).await?;
    let first = events
        .became_after(started, None, args.lease_duration * 4 + START_WITHIN)
        .await
        .context("first election")?;
    let first_leader_ms = ms(first.monotonic_ns.saturating_sub(started));
    eprintln!(
        "{label} {} leads after {first_leader_ms:.0} ms; settling",
        first.id
    );
    tokio::time::sleep(args.settle).await;

    let steady = steady_state(sim, &group, &events, &first.id, args.window).await?;
    eprintln!(
        "{label} steady state: leader {:.2} req/s, followers {:.2} req/s (median)",
        steady.leader_requests_per_s,
        steady.follower_requests_per_s.as_ref().map_or(0.0, |s| s.median)
    );

    let mut leader = first.id.clone();
    let mut handover_ms = Vec::new();
    let mut takeover_writes = Vec::new();
    let mut handover_slice_ms = Vec::new();
    let mut slice_after_takeover_ms = Vec::new();
    for round in 1..=args.handovers {
        let done = handover(sim, &mut group, &spec, &events, &leader, args).await?;
        eprintln!(
            "{label} handover {round}/{}: {:.1} ms ({leader} → {}; {} takeover writes)",
            args.handovers, done.took_ms, done.next, done.takeover_writes
        );
        handover_ms.push(done.took_ms);
        takeover_writes.push(done.takeover_writes);
        if let Some(slice_ms) = done.slice_ms {
            eprintln!(
                "{label}   the EndpointSlice names {} after {slice_ms:.1} ms",
                done.next
            );
            handover_slice_ms.push(slice_ms);
            slice_after_takeover_ms.push(slice_ms - done.took_ms);
        }
        leader = done.next;
    }

    let mut failover_ms = Vec::new();
    let mut after_renewal_ms = Vec::new();
    let mut failover_writes = Vec::new();
    for round in 1..=args.failovers {
        let crash = failover(sim, &mut group, &spec, &events, &leader, args).await?;
        eprintln!(
            "{label} failover {round}/{}: {:.0} ms ({leader} → {}; {} after its last renewal; {} takeover writes)",
            args.failovers,
            crash.took_ms,
            crash.next,
            crash
                .after_last_renewal_ms
                .map_or("?".to_owned(), |gap| format!("{gap:.0} ms")),
            crash.takeover_writes
        );
        failover_ms.push(crash.took_ms);
        failover_writes.push(crash.takeover_writes);
        after_renewal_ms.extend(crash.after_last_renewal_ms);
        leader = crash.next;
    }

    stop_all(&mut group).await;
    let lease_ms = args.lease_duration.as_secs_f64() * 1000.0;
    let ratios: Vec<f64> = failover_ms.iter().map(|f| f / lease_ms).collect();
    Ok(Case {
        candidates: ids.len(),
        follow: mode,
        first_leader_ms,
        steady,
        handover: summarize(&handover_ms),
        handover_ms,
        handover_takeover_writes: summarize(&takeover_writes),
        handover_takeover_writes_n: takeover_writes,
        handover_slice: summarize(&handover_slice_ms),
        handover_slice_ms,
        slice_after_takeover: summarize(&slice_after_takeover_ms),
        slice_after_takeover_ms,
        failover: summarize(&failover_ms),
        failover_ms,
        failover_lease_ratio: summarize(&ratios),
        failover_after_last_renewal: summarize(&after_renewal_ms),
        failover_after_last_renewal_ms: after_renewal_ms,
        failover_takeover_writes: summarize(&failover_writes),
        failover_takeover_writes_n: failover_writes,
        load_average_after: load_average(),
    })
}

/// Crash and restart in the same pod: candidates with their own `--pod-uid`; the leader killed
/// and started again at once with the same pod UID, `args.failovers` times.
async fn restart_in_pod(sim: &Sim, binary: &Path, ids: &[String], args: &Args) -> Result<RestartInPod> {
    let label = "[restart in pod]";
    let events = Events::new();
    let base = Launch {
        events: Some(events.clone()),
        own_process_group: true,
        within: START_WITHIN,
        args: timing_args(args),
        ..Launch::new(binary, sim.kubeconfig_dir(), &format!("{ELECTION}-pod"), "")
    };
    let launch_of = |i: usize, id: &str| {
        let mut launch = base.with_id(id);
        launch
            .args
            .extend(["--pod-uid".into(), format!("00000000-0000-4000-8000-{i:012}")]);
        launch
    };
    let started = monotonic_now_ns();
    let mut group = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        group.push(Elector::launch(launch_of(i, id)).await?);
    }
    let mut leader = events
        .became_after(started, None, args.lease_duration * 4 + START_WITHIN)
        .await
        .context("first election")?
        .id;
    let mut took_ms = Vec::new();
    let mut start_up_ms = Vec::new();
    let mut again = 0;
    for round in 1..=args.failovers {
        let index = index_of(&group, &leader)?;
        tokio::time::sleep(args.retry_period.mul_f64(1.0 + rand::random::<f64>())).await;
        let sent = group[index].send(Signal::Kill)?;
        group[index].try_wait_exit(Duration::from_secs(5)).await?;
        group[index] = Elector::launch(launch_of(index, &leader)).await?;
        start_up_ms.push(ms(monotonic_now_ns().saturating_sub(sent)));
        let next = events
            .became_after(sent, None, args.lease_duration * 4)
            .await
            .with_context(|| format!("leadership after SIGKILL to {leader}"))?;
        let took = ms(next.monotonic_ns.saturating_sub(sent));
        eprintln!(
            "{label} round {round}/{}: {took:.0} ms ({leader} → {})",
            args.failovers, next.id
        );
        again += usize::from(next.id == leader);
        took_ms.push(took);
        leader = next.id;
    }
    stop_all(&mut group).await;
    Ok(RestartInPod {
        took: summarize(&took_ms),
        took_ms,
        restarted_process_led_again: again,
        start_up_ms,
    })
}

/// Exec mode's graceful handover: `ids.len()` candidates run `sleep` as their command with
/// `--release-delay 0s`, as the sidecar cases do; SIGTERM to the leader, then from the electors'
/// own logs (CLOCK_MONOTONIC): the old command's reap, the next `became leader`, and the new
/// command's spawn. The gap from the old command's end to the new one's start is the cost of
/// waiting for the command before the release, on top of the election's own handover.
async fn exec_handover(sim: &Sim, binary: &Path, ids: &[String], args: &Args) -> Result<ExecHandover> {
    let label = "[exec handover]";
    let events = Events::new();
    let spec = Launch {
        events: Some(events.clone()),
        own_process_group: true,
        within: START_WITHIN,
        args: [timing_args(args), vec!["--release-delay".into(), "0s".into()]].concat(),
        command: vec!["sleep".into(), "100000".into()],
        ..Launch::new(binary, sim.kubeconfig_dir(), &format!("{ELECTION}-exec"), "")
    };
    let started = monotonic_now_ns();
    let mut group = Elector::launch_all(ids.iter().map(|id| spec.with_id(id)).collect()).await?;
    let mut leader = events
        .became_after(started, None, args.lease_duration * 4 + START_WITHIN)
        .await
        .context("first election")?
        .id;
    let log_ns = |line: &serde_json::Value| line["monotonic_ns"].as_str().and_then(|v| v.parse::<u64>().ok());
    let (mut became_ms, mut child_gap_ms, mut signal_to_new_child_ms) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=args.handovers {
        let index = index_of(&group, &leader)?;
        // Its command must be running before the handover is measured.
        let deadline = Instant::now() + Duration::from_secs(15);
        while group[index].log_messages("started the command").is_empty() {
            if Instant::now() >= deadline {
                bail!(
                    "{leader} leads but did not start its command:\n{}",
                    group[index].tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let sent = group[index].send(Signal::Term)?;
        let next = events
            .became_after(sent, Some(&leader), args.lease_duration * 4)
            .await
            .with_context(|| format!("handover after SIGTERM to {leader}"))?;
        group[index].try_wait_exit(Duration::from_secs(20)).await?;
        let ended = group[index]
            .log_messages("the command ended")
            .last()
            .and_then(log_ns)
            .ok_or_else(|| anyhow!("{leader} logged no end of its command"))?;
        let new_index = index_of(&group, &next.id)?;
        let deadline = Instant::now() + Duration::from_secs(15);
        let spawned = loop {
            if let Some(at) = group[new_index]
                .log_messages("started the command")
                .iter()
                .filter_map(log_ns)
                .find(|&at| at > sent)
            {
                break at;
            }
            if Instant::now() >= deadline {
                bail!("{} leads but did not start its command", next.id);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let gap = spawned as f64 / 1e6 - ended as f64 / 1e6;
        eprintln!(
            "{label} round {round}/{}: old command ended -> new started {gap:.1} ms ({leader} → {})",
            args.handovers, next.id
        );
        became_ms.push(ms(next.monotonic_ns.saturating_sub(sent)));
        child_gap_ms.push(gap);
        signal_to_new_child_ms.push(ms(spawned.saturating_sub(sent)));
        replace(&mut group, index, &spec, &next.id).await?;
        leader = next.id;
    }
    stop_all(&mut group).await;
    Ok(ExecHandover {
        candidates: ids.len(),
        became: summarize(&became_ms),
        became_ms,
        child_gap: summarize(&child_gap_ms),
        child_gap_ms,
        signal_to_new_child: summarize(&signal_to_new_child_ms),
        signal_to_new_child_ms,
    })
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn index_of(group: &[Elector], id: &str) -> Result<usize> {
    group
        .iter()
        .position(|c| c.id == id)
        .ok_or_else(|| anyhow!("{id} is not in the group"))
}

/// SIGTERM to the leader; the time until another process logs `became leader`. The stopped
/// process is started again and followed until it sees the new leader.
async fn handover(
    sim: &Sim,
    group: &mut [Elector],
    spec: &Launch,
    events: &Events,
    leader: &str,
    args: &Args,
) -> Result<Handover> {
    let index = index_of(group, leader)?;
    let counts_before = sim.requests();
    let cursor = sim.writes().last().map_or(0, |w| w.seq);
    let sent = group[index].send(Signal::Term)?;
    let next = events
        .became_after(sent, Some(leader), args.lease_duration * 4)
        .await
        .with_context(|| format!("handover after SIGTERM to {leader}"))?;
    let status = group[index].try_wait_exit(Duration::from_secs(10)).await?;
    if !status.success() {
        eprintln!("bench: warning: {leader} exited with {status} after SIGTERM");
    }
    let takeover_writes = takeover_writes(sim, &counts_before, group, leader, next.monotonic_ns, args).await;
    let slice_ms = if args.endpoint_slice {
        slice_names(sim, cursor, &next.id)
            .await
            .map(|at| ms(at.saturating_sub(sent)))
    } else {
        None
    };
    replace(group, index, spec, &next.id).await?;
    Ok(Handover {
        took_ms: ms(next.monotonic_ns.saturating_sub(sent)),
        next: next.id,
        takeover_writes,
        slice_ms,
    })
}

struct Handover {
    took_ms: f64,
    next: String,
    /// Lease updates the other candidates sent for the takeover (see [`takeover_writes`]).
    takeover_writes: f64,
    /// SIGTERM -> the slice names the new leader, with `--endpoint-slice`.
    slice_ms: Option<f64>,
}

/// The EndpointSlice the candidates write with `--endpoint-slice`.
const SLICE: &str = "bench-leader";

/// `--endpoint-slice` and its settings (the pod IP comes per candidate, [`with_pod_ip`]).
fn slice_args(enabled: bool) -> Vec<String> {
    if !enabled {
        return Vec::new();
    }
    [
        "--endpoint-slice",
        SLICE,
        "--endpoint-slice-service",
        "bench",
        "--endpoint-slice-ports",
        "http:8080",
    ]
    .map(String::from)
    .to_vec()
}

/// A candidate's pod IP, from the number in its id (`c07` -> 10.1.0.8).
fn pod_ip(id: &str) -> String {
    let n: u32 = id
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap_or(0);
    format!("10.1.{}.{}", n / 250, n % 250 + 1)
}

/// The launch with `POD_IP` set from its id (read only with `--endpoint-slice`).
fn with_pod_ip(mut launch: Launch) -> Launch {
    launch.env.push(("POD_IP".to_owned(), pod_ip(&launch.id)));
    launch
}

/// The monotonic time of the first write after `cursor` that left the slice naming `id`'s
/// address, polling the write log for up to 5 s.
async fn slice_names(sim: &Sim, cursor: u64, id: &str) -> Option<u64> {
    let address = serde_json::Value::String(pod_ip(id));
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let found = sim.writes_since(cursor).into_iter().find(|w| {
            w.resource == "endpointslices"
                && w.name == SLICE
                && w.object["endpoints"][0]["addresses"][0] == address
        });
        if let Some(write) = found {
            return Some(write.monotonic_ns);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!("bench: warning: the EndpointSlice never named {id}");
    None
}

struct Crash {
    took_ms: f64,
    next: String,
    after_last_renewal_ms: Option<f64>,
    /// Lease updates the surviving candidates sent for the takeover (see [`takeover_writes`]).
    takeover_writes: f64,
}

/// The `update leases` requests every candidate but `old` sent since `before`, counted once the
/// takeover (stamped `became_ns`) is half a retry period old and `old` has exited: late
/// takeover attempts (a drawn delay, at most half a retry period; a read after a 409) are in,
/// the new leader's first renewal (a full retry period after its takeover) is not.
async fn takeover_writes(
    sim: &Sim,
    before: &kube_sim::RequestCounts,
    group: &[Elector],
    old: &str,
    became_ns: u64,
    args: &Args,
) -> f64 {
    let settled_ns = became_ns.saturating_add(u64::try_from((args.retry_period / 2).as_nanos()).unwrap_or(0));
    let now_ns = monotonic_now_ns();
    if settled_ns > now_ns {
        tokio::time::sleep(Duration::from_nanos(settled_ns - now_ns)).await;
    }
    let after = sim.requests();
    group
        .iter()
        .filter(|c| c.id != old)
        .map(|c| {
            request_delta(before, &after, &c.id, 1.0)
                .get("update leases")
                .copied()
                .unwrap_or(0.0)
        })
        .fold(0.0, |sum, n| sum + n)
}

/// SIGKILL to the leader at a random phase of its renew cycle; the time until another process
/// logs `became leader`, and the simulator's view of the gap after the last renewal.
async fn failover(
    sim: &Sim,
    group: &mut [Elector],
    spec: &Launch,
    events: &Events,
    leader: &str,
    args: &Args,
) -> Result<Crash> {
    let index = index_of(group, leader)?;
    let cursor = sim.writes().last().map_or(0, |w| w.seq);
    // At least one full retry period passes after the cursor, so the leader's last renewal
    // before the kill is in the write log read below; the random part spreads the kill over
    // the renew cycle.
    let phase = args.retry_period.mul_f64(1.0 + rand::random::<f64>());
    tokio::time::sleep(phase).await;
    let counts_before = sim.requests();
    let sent = group[index].send(Signal::Kill)?;
    let next = events
        .became_after(sent, Some(leader), args.lease_duration * 4)
        .await
        .with_context(|| format!("failover after SIGKILL to {leader}"))?;
    group[index].try_wait_exit(Duration::from_secs(5)).await?;
    let takeover_writes = takeover_writes(sim, &counts_before, group, leader, next.monotonic_ns, args).await;
    let lease_writes: Vec<_> = sim
        .writes_since(cursor)
        .into_iter()
        .filter(|w| w.resource == "leases" && w.name == spec.election)
        .collect();
    let last_renewal = lease_writes
        .iter()
        .filter(|w| w.client == leader && w.monotonic_ns <= sent)
        .map(|w| w.monotonic_ns)
        .max();
    let takeover = lease_writes
        .iter()
        .filter(|w| w.client == next.id && w.monotonic_ns > sent)
        .map(|w| w.monotonic_ns)
        .min();
    let after_last_renewal_ms = last_renewal
        .zip(takeover)
        .map(|(renewed, taken)| ms(taken.saturating_sub(renewed)));
    replace(group, index, spec, &next.id).await?;
    Ok(Crash {
        took_ms: ms(next.monotonic_ns.saturating_sub(sent)),
        next: next.id,
        after_last_renewal_ms,
        takeover_writes,
    })
}

/// Starts the process at `index` again and waits until it follows `leader`.
async fn replace(group: &mut [Elector], index: usize, spec: &Launch, leader: &str) -> Result<()> {
    let id = group[index].id.clone();
    group[index] = Elector::launch(with_pod_ip(spec.with_id(&id))).await?;
    let within = Duration::from_secs(15);
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = group[index].status().await
            && status["leader"] == leader
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "restarted {id} did not see {leader} as leader within {within:?}; last log lines:\n{}",
                group[index].tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Requests, memory and CPU over `window`, split into the leader and its followers.
async fn steady_state(
    sim: &Sim,
    group: &[Elector],
    events: &Events,
    leader: &str,
    window: Duration,
) -> Result<Steady> {
    let transitions_before = events.snapshot().len();
    let counts_before = sim.requests();
    let before = group
        .iter()
        .map(|c| procfs::sample(c.pid()))
        .collect::<Result<Vec<_>>>()?;
    let opened = Instant::now();
    tokio::time::sleep(window).await;
    let after = group
        .iter()
        .map(|c| procfs::sample(c.pid()))
        .collect::<Result<Vec<_>>>()?;
    let counts_after = sim.requests();
    let seconds = opened.elapsed().as_secs_f64();
    let leader_changed = events.snapshot().len() != transitions_before;

    let ticks = procfs::ticks_per_second() as f64;
    let precise = before.iter().chain(&after).all(|s| s.cpu_ns.is_some());
    let mut follower_rps = Vec::new();
    let mut follower_rss = Vec::new();
    let mut follower_cpu = Vec::new();
    let mut follower_cpu_ticks = Vec::new();
    let mut follower_kinds: BTreeMap<String, f64> = BTreeMap::new();
    let (mut leader_rps, mut leader_rss, mut leader_cpu, mut leader_cpu_ticks) = (0.0, 0.0, 0.0, 0.0);
    let mut leader_kinds = BTreeMap::new();
    let mut group_rps = 0.0;
    for (i, candidate) in group.iter().enumerate() {
        let kinds = request_delta(&counts_before, &counts_after, &candidate.id, seconds);
        let rps = kinds.values().fold(0.0, |sum, rate| sum + rate);
        group_rps += rps;
        let rss = after[i].rss_kib as f64 / 1024.0;
        let cpu_ticks =
            after[i].cpu_ticks.saturating_sub(before[i].cpu_ticks) as f64 / ticks / seconds * 100.0;
        let cpu = match (before[i].cpu_ns, after[i].cpu_ns) {
            (Some(b), Some(a)) if precise => a.saturating_sub(b) as f64 / 1e9 / seconds * 100.0,
            _ => cpu_ticks,
        };
        if candidate.id == leader {
            (leader_rps, leader_rss, leader_cpu, leader_cpu_ticks) = (rps, rss, cpu, cpu_ticks);
            leader_kinds = kinds;
        } else {
            follower_rps.push(rps);
            follower_rss.push(rss);
            follower_cpu.push(cpu);
            follower_cpu_ticks.push(cpu_ticks);
            for (kind, rate) in kinds {
                *follower_kinds.entry(kind).or_default() += rate;
            }
        }
    }
    let followers = follower_rps.len().max(1) as f64;
    for rate in follower_kinds.values_mut() {
        *rate /= followers;
    }
    Ok(Steady {
        window_s: seconds,
        leader: leader.to_owned(),
        leader_changed_during_window: leader_changed,
        leader_requests_per_s: leader_rps,
        leader_requests_per_s_by_kind: leader_kinds,
        follower_requests_per_s: summarize(&follower_rps),
        follower_requests_per_s_by_kind: follower_kinds,
        group_requests_per_s: group_rps,
        leader_rss_mib: leader_rss,
        follower_rss_mib: summarize(&follower_rss),
        cpu_source: if precise { "schedstat" } else { "stat" },
        leader_cpu_percent: leader_cpu,
        follower_cpu_percent_mean: follower_cpu.iter().fold(0.0, |sum, c| sum + c) / followers,
        follower_cpu_percent: summarize(&follower_cpu),
        leader_cpu_percent_ticks: leader_cpu_ticks,
        follower_cpu_percent_ticks_mean: follower_cpu_ticks.iter().fold(0.0, |sum, c| sum + c) / followers,
        cpu_tick_resolution_percent: 100.0 / ticks / seconds,
    })
}

/// Requests per second of `client` between two snapshots, per `"verb resource"`.
fn request_delta(
    before: &kube_sim::RequestCounts,
    after: &kube_sim::RequestCounts,
    client: &str,
    seconds: f64,
) -> BTreeMap<String, f64> {
    let empty = BTreeMap::new();
    let earlier = before.get(client).unwrap_or(&empty);
    after
        .get(client)
        .unwrap_or(&empty)
        .iter()
        .filter_map(|(kind, &count)| {
            let delta = count.saturating_sub(earlier.get(kind).copied().unwrap_or(0));
            (delta > 0).then(|| (kind.clone(), delta as f64 / seconds))
        })
        .collect()
}

/// SIGTERM to every process at once, then waits for each (SIGKILL after a grace period).
async fn stop_all(group: &mut [Elector]) {
    for candidate in group.iter() {
        if let Err(error) = candidate.send(Signal::Term) {
            eprintln!("bench: warning: {error:#}");
        }
    }
    for candidate in group.iter_mut() {
        if candidate.try_wait_exit(Duration::from_secs(10)).await.is_ok() {
            continue;
        }
        eprintln!(
            "bench: warning: {} ignored SIGTERM for 10 s; killing it",
            candidate.id
        );
        let killed = candidate.send(Signal::Kill);
        if let Err(error) = killed.and(candidate.try_wait_exit(Duration::from_secs(5)).await.map(drop)) {
            eprintln!("bench: warning: {error:#}");
        }
    }
}

fn compare(cases: &[Case]) -> Vec<Comparison> {
    let mut out = Vec::new();
    let sizes: Vec<usize> = cases.iter().map(|c| c.candidates).fold(Vec::new(), |mut v, n| {
        if !v.contains(&n) {
            v.push(n);
        }
        v
    });
    type Pick = fn(&Case) -> Option<f64>;
    let metrics: [(&'static str, Pick); 8] = [
        ("graceful handover median ms", |c| {
            c.handover.as_ref().map(|s| s.median)
        }),
        ("lease writes per graceful handover (median)", |c| {
            c.handover_takeover_writes.as_ref().map(|s| s.median)
        }),
        ("lease writes per crash failover (median)", |c| {
            c.failover_takeover_writes.as_ref().map(|s| s.median)
        }),
        ("crash failover median ms", |c| {
            c.failover.as_ref().map(|s| s.median)
        }),
        ("requests/s per follower (median)", |c| {
            c.steady.follower_requests_per_s.as_ref().map(|s| s.median)
        }),
        ("requests/s of the whole group", |c| {
            Some(c.steady.group_requests_per_s)
        }),
        ("follower CPU % (mean)", |c| {
            Some(c.steady.follower_cpu_percent_mean)
        }),
        ("follower RSS MiB (median)", |c| {
            c.steady.follower_rss_mib.as_ref().map(|s| s.median)
        }),
    ];
    for size in sizes {
        let find = |mode| cases.iter().find(|c| c.candidates == size && c.follow == mode);
        let (Some(watch), Some(poll)) = (find(Mode::Watch), find(Mode::Poll)) else {
            continue;
        };
        let before = find(Mode::WatchBefore);
        for (metric, pick) in metrics {
            let (w, p) = (pick(watch), pick(poll));
            out.push(Comparison {
                candidates: size,
                metric,
                watch: w,
                watch_before: before.and_then(pick),
                poll: p,
                poll_over_watch: w.zip(p).and_then(|(w, p)| (w > 0.0).then_some(p / w)),
            });
        }
    }
    out
}

// ------------------------------------------------------------------------------------ output

fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

fn med_p95(summary: Option<&Summary>, fmt: fn(f64) -> String) -> String {
    summary.map_or("-".to_owned(), |s| format!("{} / {}", fmt(s.median), fmt(s.p95)))
}

fn times(watch: Option<f64>, poll: Option<f64>, better: &str, worse: &str) -> String {
    match (watch, poll) {
        (Some(w), Some(p)) if w > 0.0 && p > 0.0 => {
            if p >= w {
                format!("{} {better}", ratio(p / w))
            } else {
                format!("{} {worse}", ratio(w / p))
            }
        }
        (Some(w), Some(p)) if w == 0.0 && p > 0.0 => format!("watch 0, poll {p:.2}"),
        _ => "-".to_owned(),
    }
}

fn ratio(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.2}×")
    }
}

/// Lease writes: median / p95 / worst.
fn writes(summary: Option<&Summary>) -> String {
    summary.map_or("-".to_owned(), |s| {
        format!("{:.0} / {:.0} / {:.0}", s.median, s.p95, s.max)
    })
}

/// The cells of the "watch, before" column, by row label (the rows of [`table`] it has figures for).
fn baseline_cells(case: &Case) -> BTreeMap<String, String> {
    let steady = &case.steady;
    [
        (
            format!("graceful handover (N={})", case.handover_ms.len()),
            med_p95(case.handover.as_ref(), fmt_ms),
        ),
        (
            "  lease writes per handover (median / p95 / worst)".to_owned(),
            writes(case.handover_takeover_writes.as_ref()),
        ),
        (
            format!("crash failover (N={})", case.failover_ms.len()),
            med_p95(case.failover.as_ref(), fmt_ms),
        ),
        (
            "  as a share of the lease".to_owned(),
            med_p95(case.failover_lease_ratio.as_ref(), |r| format!("{r:.2}")),
        ),
        (
            "  last renewal -> takeover".to_owned(),
            med_p95(case.failover_after_last_renewal.as_ref(), fmt_ms),
        ),
        (
            "  lease writes per failover (median / p95 / worst)".to_owned(),
            writes(case.failover_takeover_writes.as_ref()),
        ),
        (
            format!("API req/s per follower (N={})", case.candidates - 1),
            med_p95(steady.follower_requests_per_s.as_ref(), |r| format!("{r:.2}")),
        ),
        (
            "API req/s of the leader".to_owned(),
            format!("{:.2}", steady.leader_requests_per_s),
        ),
        (
            "API req/s, whole group".to_owned(),
            format!("{:.2}", steady.group_requests_per_s),
        ),
        (
            "RSS per follower, MiB".to_owned(),
            med_p95(steady.follower_rss_mib.as_ref(), |r| format!("{r:.1}")),
        ),
        (
            format!("CPU % per follower (mean, {})", steady.cpu_source),
            format!("{:.3}", steady.follower_cpu_percent_mean),
        ),
    ]
    .into_iter()
    .collect()
}

fn table(report: &Report, args: &Args) -> String {
    let mut out = String::new();
    let t = &report.timings_ms;
    out.push_str(&format!(
        "\nkube-elector --follow watch vs --follow poll (client-go's algorithm)\n\
         {}\n\
         timings: --lease-duration {}ms --renew-deadline {}ms --retry-period {}ms; simulator in-process over HTTPS\n\
         times: signal sent -> new leader's `became leader` log stamp, both CLOCK_MONOTONIC (exact; /readyz turns 200 in the same loop step)\n\
         cells: median / p95 (nearest rank: with N < 20 the p95 is the largest sample)\n",
        describe(&report.machine),
        t.lease_duration,
        t.renew_deadline,
        t.retry_period
    ));
    let sizes: Vec<usize> = report
        .cases
        .iter()
        .map(|c| c.candidates)
        .fold(Vec::new(), |mut v, n| {
            if !v.contains(&n) {
                v.push(n);
            }
            v
        });
    for size in sizes {
        let find = |mode| {
            report
                .cases
                .iter()
                .find(|c| c.candidates == size && c.follow == mode)
        };
        let (Some(w), Some(p)) = (find(Mode::Watch), find(Mode::Poll)) else {
            continue;
        };
        let before = find(Mode::WatchBefore);
        let rows: Vec<[String; 4]> = vec![
            [
                format!("graceful handover (N={})", w.handover_ms.len()),
                med_p95(w.handover.as_ref(), fmt_ms),
                med_p95(p.handover.as_ref(), fmt_ms),
                times(
                    w.handover.as_ref().map(|s| s.median),
                    p.handover.as_ref().map(|s| s.median),
                    "faster",
                    "slower",
                ),
            ],
            [
                format!(
                    "  SIGTERM -> EndpointSlice names the new leader (N={})",
                    w.handover_slice_ms.len()
                ),
                med_p95(w.handover_slice.as_ref(), fmt_ms),
                med_p95(p.handover_slice.as_ref(), fmt_ms),
                String::new(),
            ],
            [
                "  became leader -> slice written".to_owned(),
                med_p95(w.slice_after_takeover.as_ref(), fmt_ms),
                med_p95(p.slice_after_takeover.as_ref(), fmt_ms),
                String::new(),
            ],
            [
                "  lease writes per handover (median / p95 / worst)".to_owned(),
                writes(w.handover_takeover_writes.as_ref()),
                writes(p.handover_takeover_writes.as_ref()),
                String::new(),
            ],
            [
                format!("crash failover (N={})", w.failover_ms.len()),
                med_p95(w.failover.as_ref(), fmt_ms),
                med_p95(p.failover.as_ref(), fmt_ms),
                times(
                    w.failover.as_ref().map(|s| s.median),
                    p.failover.as_ref().map(|s| s.median),
                    "faster",
                    "slower",
                ),
            ],
            [
                "  as a share of the lease".to_owned(),
                med_p95(w.failover_lease_ratio.as_ref(), |r| format!("{r:.2}")),
                med_p95(p.failover_lease_ratio.as_ref(), |r| format!("{r:.2}")),
                String::new(),
            ],
            [
                "  last renewal -> takeover".to_owned(),
                med_p95(w.failover_after_last_renewal.as_ref(), fmt_ms),
                med_p95(p.failover_after_last_renewal.as_ref(), fmt_ms),
                String::new(),
            ],
            [
                "  lease writes per failover (median / p95 / worst)".to_owned(),
                writes(w.failover_takeover_writes.as_ref()),
                writes(p.failover_takeover_writes.as_ref()),
                String::new(),
            ],
            [
                format!("API req/s per follower (N={})", size - 1),
                med_p95(w.steady.follower_requests_per_s.as_ref(), |r| format!("{r:.2}")),
                med_p95(p.steady.follower_requests_per_s.as_ref(), |r| format!("{r:.2}")),
                times(
                    w.steady.follower_requests_per_s.as_ref().map(|s| s.median),
                    p.steady.follower_requests_per_s.as_ref().map(|s| s.median),
                    "fewer",
                    "more",
                ),
            ],
            [
                "API req/s of the leader".to_owned(),
                format!("{:.2}", w.steady.leader_requests_per_s),
                format!("{:.2}", p.steady.leader_requests_per_s),
                String::new(),
            ],
            [
                "API req/s, whole group".to_owned(),
                format!("{:.2}", w.steady.group_requests_per_s),
                format!("{:.2}", p.steady.group_requests_per_s),
                times(
                    Some(w.steady.group_requests_per_s),
                    Some(p.steady.group_requests_per_s),
                    "fewer",
                    "more",
                ),
            ],
            [
                "RSS per follower, MiB".to_owned(),
                med_p95(w.steady.follower_rss_mib.as_ref(), |r| format!("{r:.1}")),
                med_p95(p.steady.follower_rss_mib.as_ref(), |r| format!("{r:.1}")),
                String::new(),
            ],
            [
                "RSS of the leader, MiB".to_owned(),
                format!("{:.1}", w.steady.leader_rss_mib),
                format!("{:.1}", p.steady.leader_rss_mib),
                String::new(),
            ],
            [
                format!("CPU % per follower (mean, {})", w.steady.cpu_source),
                format!("{:.3}", w.steady.follower_cpu_percent_mean),
                format!("{:.3}", p.steady.follower_cpu_percent_mean),
                times(
                    Some(w.steady.follower_cpu_percent_mean),
                    Some(p.steady.follower_cpu_percent_mean),
                    "less",
                    "more",
                ),
            ],
            [
                "CPU % of the leader".to_owned(),
                format!("{:.2}", w.steady.leader_cpu_percent),
                format!("{:.2}", p.steady.leader_cpu_percent),
                String::new(),
            ],
        ];
        // The EndpointSlice rows only when it was measured (`--endpoint-slice`).
        let measured_slice = !w.handover_slice_ms.is_empty() || !p.handover_slice_ms.is_empty();
        let rows: Vec<[String; 4]> = rows
            .into_iter()
            .filter(|row| {
                measured_slice || !(row[0].contains("EndpointSlice") || row[0].contains("slice written"))
            })
            .collect();
        out.push_str(&format!(
            "\n{size} candidates (steady window {:.0} s after a {:.0} s settle)\n",
            w.steady.window_s,
            args.settle.as_secs_f64()
        ));
        let mut header = vec![
            "metric".to_owned(),
            "watch (kube-elector)".to_owned(),
            "poll (client-go)".to_owned(),
            "watch vs poll".to_owned(),
        ];
        // With `--baseline`: the same rows for the earlier binary, after the watch column.
        let rows: Vec<Vec<String>> = match before {
            None => rows.into_iter().map(Vec::from).collect(),
            Some(b) => {
                header.insert(2, "watch, before (--baseline)".to_owned());
                let earlier = baseline_cells(b);
                rows.into_iter()
                    .map(|row| {
                        let mut row = Vec::from(row);
                        let cell = earlier.get(row[0].as_str()).cloned().unwrap_or_default();
                        row.insert(2, cell);
                        row
                    })
                    .collect()
            }
        };
        let widths: Vec<usize> = (0..header.len())
            .map(|col| {
                rows.iter()
                    .map(|r| r[col].chars().count())
                    .chain([header[col].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in std::iter::once(&header).chain(rows.iter()) {
            let line = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect::<Vec<_>>()
                .join("  ");
            out.push_str(line.trim_end());
            out.push('\n');
        }
        for case in [w, p] {
            if case.steady.leader_changed_during_window {
                out.push_str(&format!(
                    "  note: leadership changed during the {} steady window; its figures mix roles\n",
                    case.follow.flag()
                ));
            }
        }
    }
    out.push_str(&format!("\ntotal run time {:.0} s\n", report.total_seconds));
    out
}

// ----------------------------------------------------------------------------------- machine

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    Machine {
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        cpu_model: cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned()),
        memory_mib: meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<u64>().ok())
            .map(|kib| kib / 1024),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|k| k.trim().to_owned()),
        load_average_at_start: load_average(),
    }
}

fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

fn describe(machine: &Machine) -> String {
    format!(
        "machine: {} CPUs ({}), {} MiB, Linux {}, load average {}",
        machine.cpus,
        machine.cpu_model.as_deref().unwrap_or("unknown model"),
        machine.memory_mib.map_or("?".to_owned(), |m| m.to_string()),
        machine.kernel.as_deref().unwrap_or("?"),
        machine.load_average_at_start.as_deref().unwrap_or("?")
    )
}
