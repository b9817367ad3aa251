//! `demo`: the first thing to run. Starts the `kube-sim` API simulator and three `kube-elector`
//! processes (`a`, `b`, `c`) in election `demo`, prints the URLs to try, then shows who leads,
//! with fencing tokens, while it disrupts them on a schedule: in turn it kills the leader
//! (SIGKILL: a crash, the lease must expire), stops the leader (SIGTERM: a graceful handover, the
//! lease is released) and stops a follower (SIGTERM: nothing should move). Each stopped process
//! is started again on the same port a little later. Every failover is printed with its kind and
//! duration: signal sent → the new leader's `became leader` log stamp, both on CLOCK_MONOTONIC.
//!
//! It runs for `--duration` (60 s) and then stops every process it started and removes its
//! temporary directory; Ctrl-C (or SIGTERM) does the same at once. On a terminal a status line
//! refreshes every 250 ms; otherwise (piped, CI) a line is printed on each change only.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use kube_elector::config::parse_duration;
use kube_elector_harness::events::{Events, Transition};
use kube_elector_harness::fleet::sim_process::SimProcess;
use kube_elector_harness::fleet::stats::summarize;
use kube_elector_harness::{Elector, Launch, Signal, elector_binary, sim_binary};
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;

#[derive(Debug, Parser)]
#[command(
    name = "demo",
    about = "Three kube-elector processes against a simulated API server, with crashes and handovers"
)]
struct Args {
    /// How long to run before cleaning up.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Time between disruptions.
    #[arg(long, default_value = "8s", value_parser = parse_duration)]
    every: Duration,
    /// How followers learn of changes: watch (kube-elector) or poll (client-go's algorithm).
    #[arg(long, default_value = "watch", value_parser = ["watch", "poll"])]
    follow: String,
    #[arg(long, default_value = "3s")]
    lease_duration: String,
    #[arg(long, default_value = "2s")]
    renew_deadline: String,
    #[arg(long, default_value = "500ms")]
    retry_period: String,
}

const IDS: [&str; 3] = ["a", "b", "c"];
const ELECTION: &str = "demo";
const START_WITHIN: Duration = Duration::from_secs(30);
/// A stopped process is started again this long after its failover completed.
const RESTART_AFTER: Duration = Duration::from_secs(2);

/// What the demo does to a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Disruption {
    /// SIGKILL to the leader: the followers must wait for the lease to expire.
    Crash,
    /// SIGTERM to the leader: it releases the lease on the way out.
    Graceful,
    /// SIGTERM to a follower: leadership should not move.
    FollowerStop,
}

impl Disruption {
    const ROTATION: [Disruption; 3] = [Disruption::Crash, Disruption::Graceful, Disruption::FollowerStop];

    fn describe(self) -> &'static str {
        match self {
            Disruption::Crash => "crash: SIGKILL to the leader",
            Disruption::Graceful => "graceful: SIGTERM to the leader",
            Disruption::FollowerStop => "SIGTERM to a follower",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Disruption::Crash => "crash failover",
            Disruption::Graceful => "graceful handover",
            Disruption::FollowerStop => "follower stop",
        }
    }
}

/// One of the three electors: running, or down until its restart time.
struct Slot {
    id: &'static str,
    addr: SocketAddr,
    process: Option<Elector>,
    restart_at: Option<Instant>,
}

/// A disruption whose outcome is still awaited.
struct Pending {
    disruption: Disruption,
    target: usize,
    sent_ns: u64,
    at: Instant,
}

/// What one elector said on its last poll.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Down,
    NotAnswering,
    Follower,
    Leader(Option<u64>),
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    let workdir = std::env::temp_dir().join(format!("kube-elector-demo-{}", std::process::id()));
    let outcome = run(&args, &workdir).await;
    if workdir.exists()
        && let Err(error) = std::fs::remove_dir_all(&workdir)
    {
        eprintln!("demo: could not remove {}: {error}", workdir.display());
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("demo: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn binary(path: PathBuf, name: &str, env: &str) -> Result<PathBuf> {
    if path.is_file() {
        return Ok(path);
    }
    bail!(
        "no {name} binary at {}; build it with `cargo build -p {}` (scripts/demo.sh does) or set {env}",
        path.display(),
        if name == "kube-sim" {
            "kube-sim"
        } else {
            "kube-elector"
        }
    )
}

async fn run(args: &Args, workdir: &Path) -> Result<()> {
    let elector = binary(elector_binary(), "kube-elector", "KUBE_ELECTOR_BIN")?;
    let sim_binary = binary(sim_binary(), "kube-sim", "KUBE_SIM_BIN")?;
    for (flag, text) in [
        ("--lease-duration", &args.lease_duration),
        ("--renew-deadline", &args.renew_deadline),
        ("--retry-period", &args.retry_period),
    ] {
        parse_duration(text).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
    }
    std::fs::create_dir_all(workdir).with_context(|| format!("creating {}", workdir.display()))?;

    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;

    let clients: Vec<String> = IDS.iter().map(|s| s.to_string()).collect();
    let mut sim = SimProcess::start(&sim_binary, &clients, workdir, START_WITHIN).await?;
    let events = Events::new();
    let spec = Launch {
        events: Some(events.clone()),
        own_process_group: true,
        within: START_WITHIN,
        args: vec![
            "--lease-duration".into(),
            args.lease_duration.clone(),
            "--renew-deadline".into(),
            args.renew_deadline.clone(),
            "--retry-period".into(),
            args.retry_period.clone(),
            "--follow".into(),
            args.follow.clone(),
        ],
        ..Launch::new(&elector, workdir, ELECTION, "")
    };
    let started = Elector::launch_all(clients.iter().map(|id| spec.with_id(id)).collect()).await;
    let mut slots: Vec<Slot> = match started {
        Ok(processes) => IDS
            .iter()
            .zip(processes)
            .map(|(id, process)| Slot {
                id,
                addr: process.addr,
                process: Some(process),
                restart_at: None,
            })
            .collect(),
        Err(error) => {
            let _ = sim.stop(Duration::from_secs(5)).await;
            return Err(error.into());
        }
    };
    print_header(args, &sim, &slots);

    let mut screen = Screen::new();
    let mut outcomes = Vec::new();
    let lease = parse_duration(&args.lease_duration).unwrap_or(Duration::from_secs(3));
    let outcome = tokio::select! {
        outcome = drive(args, &spec, &events, &mut slots, &mut screen, &mut outcomes) => outcome.map(|()| None),
        _ = interrupt.recv() => Ok(Some("Ctrl-C")),
        _ = terminate.recv() => Ok(Some("SIGTERM")),
    };
    screen.clear_status();
    if let Ok(Some(why)) = &outcome {
        screen.line(&format!("{why}: stopping early"));
    }
    let stopped = clean_up(&mut slots, &mut sim).await;
    outcome?;
    summarize_outcomes(&outcomes, lease, &args.follow);
    println!("{stopped}; removed {}", workdir.display());
    Ok(())
}

fn print_header(args: &Args, sim: &SimProcess, slots: &[Slot]) {
    println!(
        "kube-elector demo: election {ELECTION:?} in namespace default, 3 electors, --follow {}",
        args.follow
    );
    println!(
        "timings: --lease-duration {} --renew-deadline {} --retry-period {}",
        args.lease_duration, args.renew_deadline, args.retry_period
    );
    println!();
    println!("simulated API server  {}", sim.url);
    println!(
        "  its admin API       curl -sk {}/sim/writes   (also /sim/requests, /sim/objects)",
        sim.url
    );
    println!(
        "  kubeconfigs         {}/<id>.kubeconfig",
        sim.kubeconfig_dir.display()
    );
    println!("{}", kubectl_line(&sim.kubeconfig_dir));
    println!();
    println!("elector  /status (JSON)                  /readyz (200 = leader)           /metrics");
    for slot in slots {
        let base = format!("http://{}", slot.addr);
        let (status, readyz) = (format!("{base}/status"), format!("{base}/readyz"));
        println!("{:<8} {status:<32} {readyz:<32} {base}/metrics", slot.id);
    }
    println!();
    println!(
        "Every {}: in turn, SIGKILL the leader (crash), SIGTERM the leader (graceful), SIGTERM a follower;",
        seconds(args.every)
    );
    println!(
        "a stopped elector restarts on the same port {} after things settle. Runs {}; Ctrl-C stops early.",
        seconds(RESTART_AFTER),
        seconds(args.duration)
    );
    println!();
}

/// The ready-to-paste line that watches the election's Lease with kubectl (as elector `a`, whose
/// kubeconfig outlives its restarts).
fn kubectl_line(kubeconfig_dir: &Path) -> String {
    format!(
        "  watch it            kubectl --kubeconfig {}/{}.kubeconfig get lease {ELECTION} -w",
        kubeconfig_dir.display(),
        IDS[0]
    )
}

fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// The loop: poll every 250 ms, print changes, disrupt on schedule, restart, report failovers.
async fn drive(
    args: &Args,
    spec: &Launch,
    events: &Events,
    slots: &mut [Slot],
    screen: &mut Screen,
    outcomes: &mut Vec<(Disruption, f64)>,
) -> Result<()> {
    let begun = Instant::now();
    let end = begun + args.duration;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_disruption = begun + args.every.min(Duration::from_secs(5));
    let mut rotation = Disruption::ROTATION.iter().copied().cycle();
    let mut pending: Option<Pending> = None;
    let mut last_view = String::new();
    let lease = parse_duration(&args.lease_duration).unwrap_or(Duration::from_secs(3));

    while Instant::now() < end {
        tick.tick().await;
        let now = Instant::now();
        screen.set_elapsed(now - begun);

        // Reap processes that exited; one that exited unasked restarts after the usual pause.
        for (index, slot) in slots.iter_mut().enumerate() {
            if let Some(status) = slot.process.as_mut().and_then(Elector::has_exited) {
                slot.process = None;
                let asked = slot.restart_at.is_some() || pending.as_ref().is_some_and(|p| p.target == index);
                if !asked {
                    screen.line(&format!("  {} exited on its own ({status})", slot.id));
                    slot.restart_at = Some(now + RESTART_AFTER);
                }
            }
        }

        // Restarts that are due (once the old process is gone).
        for slot in slots.iter_mut() {
            if slot.process.is_none() && slot.restart_at.is_some_and(|at| now >= at) {
                slot.restart_at = None;
                restart(spec, slot, screen).await;
            }
        }

        // The live view.
        let mut seen = Vec::new();
        for slot in slots.iter_mut() {
            seen.push(observe(slot).await);
        }
        let view = render(slots, &seen);
        if view != last_view {
            screen.view(&view);
            last_view = view.clone();
        }

        // The outcome of the last disruption.
        if let Some(p) = &pending {
            let from = slots[p.target].id;
            let next = events
                .snapshot()
                .into_iter()
                .find(|e| e.transition == Transition::Became && e.monotonic_ns >= p.sent_ns && e.id != from);
            match (p.disruption, next) {
                (Disruption::FollowerStop, None) if now - p.at >= lease => {
                    screen.line(&format!(
                        "  → {} stopped; leadership stayed put for a whole lease ({}), as it should",
                        from,
                        seconds(lease)
                    ));
                    slots[p.target].restart_at = Some(now + RESTART_AFTER);
                    pending = None;
                }
                (Disruption::FollowerStop, Some(moved)) => {
                    screen.line(&format!(
                        "  → unexpected: {} became leader after a follower stopped",
                        moved.id
                    ));
                    slots[p.target].restart_at = Some(now + RESTART_AFTER);
                    pending = None;
                }
                (disruption, Some(moved)) => {
                    let took = moved.monotonic_ns.saturating_sub(p.sent_ns) as f64 / 1e6;
                    let share = match disruption {
                        Disruption::Crash => {
                            format!("; {:.2} × the lease", took / 1000.0 / lease.as_secs_f64())
                        }
                        Disruption::Graceful | Disruption::FollowerStop => String::new(),
                    };
                    screen.line(&format!(
                        "  → {}: {from} → {} in {} (token {}{share})",
                        disruption.kind(),
                        moved.id,
                        fmt_ms(took),
                        moved.fencing_token.map_or("?".into(), |t| t.to_string()),
                    ));
                    outcomes.push((disruption, took));
                    slots[p.target].restart_at = Some(now + RESTART_AFTER);
                    pending = None;
                }
                (_, None) if now - p.at > lease * 4 => {
                    screen.line(
                        "  → no new leader within four lease durations; restarting the stopped elector",
                    );
                    slots[p.target].restart_at = Some(now);
                    pending = None;
                }
                _ => {}
            }
        }

        // The next disruption, once everyone is back and a leader is known.
        let all_up = slots.iter().all(|s| s.process.is_some());
        let leader = seen.iter().position(|s| matches!(s, Seen::Leader(_)));
        if pending.is_none()
            && all_up
            && now >= next_disruption
            && now + lease < end
            && let Some(leader) = leader
        {
            let disruption = rotation.next().unwrap_or(Disruption::Crash);
            let target = match disruption {
                Disruption::FollowerStop => (leader + 1) % slots.len(),
                Disruption::Crash | Disruption::Graceful => leader,
            };
            let signal = match disruption {
                Disruption::Crash => Signal::Kill,
                Disruption::Graceful | Disruption::FollowerStop => Signal::Term,
            };
            if let Some(process) = &slots[target].process {
                let sent_ns = process.send(signal)?;
                screen.line(&format!("{} ({})", disruption.describe(), slots[target].id));
                pending = Some(Pending {
                    disruption,
                    target,
                    sent_ns,
                    at: now,
                });
            }
            next_disruption = now + args.every;
        }
    }
    Ok(())
}

/// Starts a slot's elector again, on its old port if it is still free.
async fn restart(spec: &Launch, slot: &mut Slot, screen: &mut Screen) {
    let on_old_port = Launch {
        http: slot.addr,
        ..spec.with_id(slot.id)
    };
    let started = match Elector::launch(on_old_port).await {
        Ok(process) => Ok(process),
        Err(_) => Elector::launch(spec.with_id(slot.id)).await,
    };
    match started {
        Ok(process) => {
            if process.addr != slot.addr {
                screen.line(&format!(
                    "  restarted {} on a new port: http://{}/status",
                    slot.id, process.addr
                ));
                slot.addr = process.addr;
            } else {
                screen.line(&format!("  restarted {}", slot.id));
            }
            slot.process = Some(process);
        }
        Err(error) => {
            screen.line(&format!("  could not restart {}: {error:#}; retrying", slot.id));
            slot.restart_at = Some(Instant::now() + RESTART_AFTER);
        }
    }
}

async fn observe(slot: &mut Slot) -> Seen {
    let Some(process) = &slot.process else {
        return Seen::Down;
    };
    match process.status().await {
        None => Seen::NotAnswering,
        Some(status) if status["is_leader"] == true => Seen::Leader(status["fencing_token"].as_u64()),
        Some(_) => Seen::Follower,
    }
}

fn render(slots: &[Slot], seen: &[Seen]) -> String {
    let parts: Vec<String> = slots
        .iter()
        .zip(seen)
        .map(|(slot, seen)| match seen {
            Seen::Leader(Some(token)) => format!("{} LEADER (token {token})", slot.id),
            Seen::Leader(None) => format!("{} LEADER", slot.id),
            Seen::Follower => format!("{} follower", slot.id),
            Seen::NotAnswering => format!("{} starting", slot.id),
            Seen::Down => format!("{} down", slot.id),
        })
        .collect();
    let leaders = seen.iter().filter(|s| matches!(s, Seen::Leader(_))).count();
    let suffix = match leaders {
        0 => "   (no leader)",
        1 => "",
        _ => "   (MORE THAN ONE LEADER)",
    };
    format!("{}{suffix}", parts.join(" · "))
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{ms:.1} ms")
    }
}

fn summarize_outcomes(outcomes: &[(Disruption, f64)], lease: Duration, follow: &str) {
    println!();
    if outcomes.is_empty() {
        println!("no failovers completed (try a longer --duration)");
        return;
    }
    println!("failovers (signal sent → new leader's `became leader`, CLOCK_MONOTONIC):");
    for disruption in [Disruption::Crash, Disruption::Graceful] {
        let times: Vec<f64> = outcomes
            .iter()
            .filter(|(d, _)| *d == disruption)
            .map(|(_, ms)| *ms)
            .collect();
        if let Some(summary) = summarize(&times) {
            println!(
                "  {:<18} N={}  median {}  max {}",
                disruption.kind(),
                summary.n,
                fmt_ms(summary.median),
                fmt_ms(summary.max)
            );
        }
    }
    println!(
        "A crash waits for the {} lease to expire; a graceful stop releases it.",
        seconds(lease)
    );
    if follow == "watch" {
        println!(
            "Watching followers see the release at once. Compare client-go's algorithm: scripts/demo.sh --follow poll"
        );
    } else {
        println!(
            "Polling followers (client-go's algorithm) see it at their next poll. Compare: scripts/demo.sh"
        );
    }
    println!("Measured side by side, 3 and 50 candidates: make bench (docs/benchmarks.md).");
}

/// Stops every elector (SIGTERM, then SIGKILL after 5 s) and the simulator; says what it did.
async fn clean_up(slots: &mut [Slot], sim: &mut SimProcess) -> String {
    for slot in slots.iter() {
        if let Some(process) = &slot.process
            && let Err(error) = process.send(Signal::Term)
        {
            eprintln!("demo: {error:#}");
        }
    }
    let mut stopped = 0;
    for slot in slots.iter_mut() {
        if let Some(mut process) = slot.process.take() {
            if process.try_wait_exit(Duration::from_secs(5)).await.is_err() {
                let _ = process.send(Signal::Kill);
                let _ = process.try_wait_exit(Duration::from_secs(5)).await;
            }
            stopped += 1;
        }
    }
    let sim_note = match sim.stop(Duration::from_secs(5)).await {
        Ok(_) => "kube-sim",
        Err(error) => {
            eprintln!("demo: stopping kube-sim: {error:#}");
            "kube-sim (killed)"
        }
    };
    format!("stopped {stopped} electors and {sim_note}")
}

/// Output: permanent lines, plus on a terminal a status line rewritten in place.
struct Screen {
    tty: bool,
    elapsed: Duration,
    status: String,
    drawn: bool,
}

impl Screen {
    fn new() -> Self {
        Self {
            tty: std::io::stdout().is_terminal(),
            elapsed: Duration::ZERO,
            status: String::new(),
            drawn: false,
        }
    }

    fn stamp(&self) -> String {
        format!("[{:>5.1}s]", self.elapsed.as_secs_f64())
    }

    /// Prints a permanent line, stamped with the elapsed time.
    fn line(&mut self, text: &str) {
        let mut out = std::io::stdout().lock();
        if self.tty && self.drawn {
            let _ = write!(out, "\r\x1b[2K");
        }
        let _ = writeln!(out, "{} {text}", self.stamp());
        self.drawn = false;
        let _ = out.flush();
    }

    /// Prints who leads now, and keeps it for the status line.
    fn view(&mut self, text: &str) {
        self.line(text);
        self.status = text.to_owned();
    }

    /// On a terminal, redraws the status line with the current time.
    fn set_elapsed(&mut self, elapsed: Duration) {
        self.elapsed = elapsed;
        if !self.tty || self.status.is_empty() {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "\r\x1b[2K{} now: {}", self.stamp(), self.status);
        let _ = out.flush();
        self.drawn = true;
    }

    fn clear_status(&mut self) {
        if self.tty && self.drawn {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[2K");
            let _ = out.flush();
        }
        self.drawn = false;
    }
}
