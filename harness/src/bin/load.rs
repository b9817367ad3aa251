//! Probe flood: `/readyz` throughput of a leader under `wrk`, and its renew latency with and
//! without the flood, measured in the same run.
//!
//! Starts the simulator and two electors, lets the leader settle, then measures the leader's
//! renew histogram (from its own `/metrics`) over a quiet window and over a window in which `wrk`
//! hammers its `/readyz`. Prints both, with the ratio; it asserts nothing about timing.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use kube_elector_harness::{Elector, elector_binary, eventually, http_get, one_leader};
use kube_sim::{Sim, SimOptions};

#[derive(Parser, Debug)]
#[command(about = "Renew latency of a kube-elector leader with and without a /readyz flood")]
struct Args {
    /// Length of each window.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// wrk connections.
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
    let sim = Sim::start(SimOptions::new(["a", "b"]))
        .await
        .context("starting the simulator")?;
    let electors = vec![
        Elector::start(&binary, &sim, "a", &[]).await,
        Elector::start(&binary, &sim, "b", &[]).await,
    ];
    let leader = &electors[one_leader(&electors, Duration::from_secs(20)).await];
    let window = Duration::from_secs(args.seconds);
    // Settle: a few renewals before measuring.
    let start = renew_histogram(leader).await?;
    eventually(Duration::from_secs(10), "a few renewals", || async {
        let now = renew_histogram(leader).await.ok()?;
        (now.count >= start.count + 3.0).then_some(())
    })
    .await;

    let before_quiet = renew_histogram(leader).await?;
    tokio::time::sleep(window).await;
    let quiet = renew_histogram(leader).await?.since(&before_quiet);

    let before_load = renew_histogram(leader).await?;
    let url = format!("http://{}/readyz", leader.addr);
    let wrk = tokio::process::Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{}", args.connections),
            &format!("-d{}s", args.seconds),
            &url,
        ])
        .output()
        .await
        .context("running wrk")?;
    let loaded = renew_histogram(leader).await?.since(&before_load);
    let report = String::from_utf8_lossy(&wrk.stdout);
    let rate = report
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .map(str::trim)
        .unwrap_or("?")
        .to_owned();
    let non_2xx = report
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .map(str::trim)
        .unwrap_or("Non-2xx responses: 0");
    let still_leader = leader.is_leader().await;

    println!("renew latency of the leader (successful renewals, bucket upper bounds for quantiles)");
    println!(
        "{:<24} {:>8} {:>10} {:>10} {:>10}",
        "window", "renews", "mean ms", "p50 ≤ ms", "p99 ≤ ms"
    );
    for (name, h) in [("quiet", &quiet), ("/readyz flood", &loaded)] {
        println!(
            "{:<24} {:>8} {:>10.2} {:>10.1} {:>10.1}",
            name,
            h.count,
            h.mean_ms(),
            h.quantile_ms(0.5),
            h.quantile_ms(0.99)
        );
    }
    println!(
        "flood: wrk -t2 -c{} -d{}s on /readyz: {rate} requests/s; {non_2xx}; mean renew latency ratio flood/quiet {:.2}",
        args.connections,
        args.seconds,
        loaded.mean_ms() / quiet.mean_ms()
    );
    println!("leader still leading after the flood: {still_leader}");
    Ok(())
}
