//! Probes and renewals under abuse, measured in one run against the same leader: `/readyz` and
//! `/livez` latency (p50, p99, worst, failures) and the leader's renew latency in a quiet window,
//! while 1,000 idle connections are held and refreshed, while 1,000 slow-header connections are,
//! while `wrk` hammers `/readyz`, and while `wrk` scrapes `/metrics` (with the elector's CPU time
//! per scrape). Prints the figures and the ratios against the quiet window; asserts nothing about
//! timing.
//!
//! Set-up: the simulator and two electors on this machine; the floods come from 127.0.0.2 (another
//! "pod"), the probes from 127.0.0.1 (the "kubelet"), each probe on a fresh connection with a 1 s
//! timeout (the kubelet's default), every 20 ms.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use kube_elector_harness::fleet::procfs;
use kube_elector_harness::flood::{Flood, FloodKind, raise_fd_limit};
use kube_elector_harness::{Elector, Launch, elector_binary, eventually, http_get, one_leader};
use kube_sim::{Sim, SimOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

#[derive(Parser, Debug)]
#[command(
    about = "Probe and renew latency of a kube-elector leader under connection floods, /readyz and /metrics load"
)]
struct Args {
    /// Length of each window.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Connections held by the idle and slow-header floods.
    #[arg(long, default_value_t = 1_000)]
    flood: usize,
    /// wrk connections for the /readyz and /metrics floods.
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// The kube-elector binary (default: next to this one).
    #[arg(long)]
    elector: Option<PathBuf>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("load: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Where the floods come from: another address than the probes, as another pod in a cluster.
const FLOOD_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// The kubelet's default probe timeout: a slower answer is a failed probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
const PROBE_EVERY: Duration = Duration::from_millis(20);
/// The renew histogram's cumulative buckets, count and sum, for successful renewals.
#[derive(Clone, Debug, Default)]
struct Histogram {
    buckets: Vec<(f64, f64)>,
    count: f64,
    sum: f64,
}

impl Histogram {
    fn parse(exposition: &str) -> Self {
        let mut histogram = Histogram::default();
        let name = "elector_renew_duration_seconds";
        for line in exposition
            .lines()
            .filter(|l| l.starts_with(name) && l.contains("result=\"success\""))
        {
            let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
                continue;
            };
            if line.starts_with(&format!("{name}_bucket")) {
                let le = line
                    .split("le=\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or("+Inf");
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or(f64::INFINITY)
                };
                histogram.buckets.push((bound, value));
            } else if line.starts_with(&format!("{name}_count")) {
                histogram.count = value;
            } else if line.starts_with(&format!("{name}_sum")) {
                histogram.sum = value;
            }
        }
        histogram
    }

    /// What was observed between `earlier` and `self`.
    fn since(&self, earlier: &Histogram) -> Histogram {
        let buckets = self
            .buckets
            .iter()
            .map(|(le, v)| {
                let before = earlier
                    .buckets
                    .iter()
                    .find(|(b, _)| b == le)
                    .map_or(0.0, |(_, v)| *v);
                (*le, v - before)
            })
            .collect();
        Histogram {
            buckets,
            count: self.count - earlier.count,
            sum: self.sum - earlier.sum,
        }
    }

    fn mean_ms(&self) -> f64 {
        if self.count > 0.0 {
            self.sum / self.count * 1_000.0
        } else {
            f64::NAN
        }
    }

    /// Upper bound of the bucket holding quantile `q`, in milliseconds.
    fn quantile_ms(&self, q: f64) -> f64 {
        let target = self.count * q;
        self.buckets
            .iter()
            .find(|(_, v)| *v >= target)
            .map_or(f64::NAN, |(le, _)| le * 1_000.0)
    }
}

async fn renew_histogram(elector: &Elector) -> anyhow::Result<Histogram> {
    let (_, _, body) = http_get(elector.addr, "/metrics")
        .await
        .context("scraping the leader")?;
    Ok(Histogram::parse(&body))
}

/// One probe as the kubelet sends it; its latency, or `None` if it failed (no 200 within 1 s).
async fn probe(addr: SocketAddr, path: &str) -> Option<Duration> {
    let started = Instant::now();
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        answer.starts_with(b"HTTP/1.1 200").then_some(())
    };
    tokio::time::timeout(PROBE_TIMEOUT, attempt)
        .await
        .ok()
        .flatten()?;
    Some(started.elapsed())
}

/// Probe latencies of one path over a window.
#[derive(Default)]
struct Probes {
    ok: Vec<Duration>,
    failed: usize,
}

impl Probes {
    fn quantile_ms(&self, q: f64) -> f64 {
        if self.ok.is_empty() {
            return f64::NAN;
        }
        let mut sorted = self.ok.clone();
        sorted.sort();
        let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[index].as_secs_f64() * 1_000.0
    }

    fn worst_ms(&self) -> f64 {
        self.ok
            .iter()
            .max()
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1_000.0)
    }
}

/// What one window measured.
struct Window {
    name: String,
    readyz: Probes,
    livez: Probes,
    renew: Histogram,
    cpu_seconds: f64,
    extra: String,
}

/// CPU seconds (user + system) the process has used, from `/proc/PID/stat`; NaN if unreadable.
fn cpu_seconds(pid: u32) -> f64 {
    procfs::sample(pid).map_or(f64::NAN, |s| {
        s.cpu_ticks as f64 / procfs::ticks_per_second() as f64
    })
}

/// Probes `/readyz` and `/livez` every 20 ms for `length`, while `load` runs; measures the
/// leader's renewals and CPU over the same window. `load` returns a note for the report.
async fn window<F>(name: &str, leader: &Elector, length: Duration, load: F) -> anyhow::Result<Window>
where
    F: std::future::Future<Output = String>,
{
    let renew_before = renew_histogram(leader).await?;
    let cpu_before = cpu_seconds(leader.pid());
    let addr = leader.addr;
    let prober = async move {
        let (mut readyz, mut livez) = (Probes::default(), Probes::default());
        let end = Instant::now() + length;
        let mut tick = tokio::time::interval(PROBE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while Instant::now() < end {
            tick.tick().await;
            for (path, probes) in [("/readyz", &mut readyz), ("/livez", &mut livez)] {
                match probe(addr, path).await {
                    Some(latency) => probes.ok.push(latency),
                    None => probes.failed += 1,
                }
            }
        }
        (readyz, livez)
    };
    let ((readyz, livez), extra) = tokio::join!(prober, load);
    let cpu_seconds = cpu_seconds(leader.pid()) - cpu_before;
    let renew = renew_histogram(leader).await?.since(&renew_before);
    Ok(Window {
        name: name.to_owned(),
        readyz,
        livez,
        renew,
        cpu_seconds,
        extra,
    })
}

/// Runs wrk on `url` for `seconds`; returns requests/s, total requests and the non-2xx line.
async fn wrk(url: &str, connections: u32, seconds: u64) -> anyhow::Result<(f64, f64, String)> {
    let out = tokio::process::Command::new("wrk")
        .args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s"), url])
        .output()
        .await
        .context("running wrk")?;
    let report = String::from_utf8_lossy(&out.stdout);
    let rate = report
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN);
    let total = report
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ").map(|(n, _)| n.to_owned()))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(f64::NAN);
    let non_2xx = report
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .map(str::trim)
        .unwrap_or("Non-2xx or 3xx responses: 0")
        .to_owned();
    Ok((rate, total, non_2xx))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let binary = args.elector.clone().unwrap_or_else(elector_binary);
    if !binary.exists() {
        bail!(
            "kube-elector binary not found at {} (--elector)",
            binary.display()
        );
    }
    if std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_err()
    {
        bail!("wrk is not installed: apt-get install wrk");
    }
    let fd_limit = raise_fd_limit(args.flood as u64 + 1_024);
    if fd_limit < args.flood as u64 + 64 {
        bail!(
            "the open-files limit is {fd_limit}, too low for a flood of {}; raise the hard limit (ulimit -Hn)",
            args.flood
        );
    }
    let sim = Sim::start(SimOptions::new(["a", "b"]))
        .await
        .context("starting the simulator")?;
    let electors = Elector::launch_all(vec![
        Launch::test(&binary, &sim, "a", &[]),
        Launch::test(&binary, &sim, "b", &[]),
    ])
    .await?;
    let leader = &electors[one_leader(&electors, Duration::from_secs(20)).await];
    let length = Duration::from_secs(args.seconds);
    // Settle: a few renewals before measuring.
    let start = renew_histogram(leader).await?;
    eventually(Duration::from_secs(10), "a few renewals", || async {
        let now = renew_histogram(leader).await.ok()?;
        (now.count >= start.count + 3.0).then_some(())
    })
    .await;

    let mut windows = Vec::new();
    windows.push(window("quiet", leader, length, async { String::new() }).await?);
    for (name, kind) in [
        ("idle flood", FloodKind::Idle),
        ("slow-header flood", FloodKind::SlowHeader),
    ] {
        let flood = Flood::start(
            leader.addr,
            FLOOD_SOURCE,
            args.flood,
            kind,
            Duration::from_millis(500),
        );
        let opened_before = flood.opened();
        let name = format!("{name} of {}", args.flood);
        let w = window(&name, leader, length, async {
            tokio::time::sleep(length).await;
            String::new()
        })
        .await?;
        let opened = flood.opened() - opened_before;
        flood.stop().await;
        windows.push(Window {
            extra: format!(
                "{name}: {opened} connections opened in the window ({:.0}/s), held and refreshed every 0.5-1 s",
                opened as f64 / length.as_secs_f64()
            ),
            ..w
        });
    }
    let readyz_url = format!("http://{}/readyz", leader.addr);
    windows.push(
        window("/readyz wrk flood", leader, length, async {
            match wrk(&readyz_url, args.connections, args.seconds).await {
                Ok((rate, _, non_2xx)) => format!(
                    "/readyz wrk flood: wrk -t2 -c{} on /readyz: {rate:.0} requests/s; {non_2xx}",
                    args.connections
                ),
                Err(error) => format!("/readyz wrk flood: {error:#}"),
            }
        })
        .await?,
    );
    let metrics_url = format!("http://{}/metrics", leader.addr);
    let scrape_bytes = http_get(leader.addr, "/metrics")
        .await
        .map_or(0, |(_, _, body)| body.len());
    let mut scrapes = 0.0;
    let mut w = window("/metrics wrk flood", leader, length, async {
        match wrk(&metrics_url, args.connections, args.seconds).await {
            Ok((rate, total, non_2xx)) => {
                scrapes = total;
                format!(
                    "/metrics wrk flood: wrk -t2 -c{} on /metrics ({scrape_bytes} bytes): {rate:.0} scrapes/s; {non_2xx}",
                    args.connections
                )
            }
            Err(error) => format!("/metrics wrk flood: {error:#}"),
        }
    })
    .await?;
    w.extra += &format!(
        "; elector CPU {:.1} µs per scrape ({:.2} CPU-s over {scrapes:.0} scrapes, probes included)",
        w.cpu_seconds / scrapes * 1e6,
        w.cpu_seconds
    );
    windows.push(w);
    let still_leader = leader.is_leader().await;

    report(&windows, args.seconds);
    println!("leader still leading after all windows: {still_leader}");
    Ok(())
}

fn report(windows: &[Window], seconds: u64) {
    println!(
        "probes on fresh connections every {} ms from 127.0.0.1, 1 s timeout = failure; floods from 127.0.0.2; {seconds} s windows",
        PROBE_EVERY.as_millis()
    );
    println!(
        "{:<24} | {:>22} {:>5} | {:>22} {:>5} | {:>6} {:>9} {:>9} {:>7}",
        "window",
        "/readyz p50/p99/worst ms",
        "fail",
        "/livez p50/p99/worst ms",
        "fail",
        "renews",
        "mean ms",
        "p99 ≤ ms",
        "CPU s"
    );
    for w in windows {
        let cell = |p: &Probes| {
            format!(
                "{:.2} / {:.2} / {:.2}",
                p.quantile_ms(0.5),
                p.quantile_ms(0.99),
                p.worst_ms()
            )
        };
        println!(
            "{:<24} | {:>22} {:>5} | {:>22} {:>5} | {:>6} {:>9.2} {:>9.1} {:>7.2}",
            w.name,
            cell(&w.readyz),
            format!("{}/{}", w.readyz.failed, w.readyz.failed + w.readyz.ok.len()),
            cell(&w.livez),
            format!("{}/{}", w.livez.failed, w.livez.failed + w.livez.ok.len()),
            w.renew.count,
            w.renew.mean_ms(),
            w.renew.quantile_ms(0.99),
            w.cpu_seconds
        );
    }
    let quiet = &windows[0];
    println!();
    for w in &windows[1..] {
        println!(
            "{:<24} /readyz p99 {:.2}x quiet, /livez p99 {:.2}x, mean renew latency {:.2}x",
            w.name,
            w.readyz.quantile_ms(0.99) / quiet.readyz.quantile_ms(0.99),
            w.livez.quantile_ms(0.99) / quiet.livez.quantile_ms(0.99),
            w.renew.mean_ms() / quiet.renew.mean_ms()
        );
    }
    println!();
    for w in windows.iter().filter(|w| !w.extra.is_empty()) {
        println!("{}", w.extra);
    }
}
