//! The leader-forwarding proxy's benchmark section of `bench` (see docs/benchmarks.md).
//!
//! **Handover: until every request reaches the new leader.** Three replicas, each an elector
//! with `--proxy-listen` in front of an [`EchoApp`], `--release-delay 0s`, under steady load
//! (four clients, each through every proxy in turn). SIGTERM to the leader at `t0`; the proxy's
//! figure is `t0` → the first answer from the new leader's application, after which no answer
//! comes from another (counted). The baseline is readiness gating, modelled explicitly on the same
//! handovers: the client switches to the new leader when the kubelet's next readiness probe
//! passes after it leads (a probe phase drawn uniformly from the 1 s probe period) plus an
//! endpoint propagation delay ([`PROPAGATION`], stated, not measured here): `t0` → `became
//! leader` (measured, from the elector's log) + phase + propagation. The readiness variant's
//! 1 s release delay is left out of the baseline, which favours it.
//!
//! **Added latency and throughput on loopback**: sequential keep-alive GETs directly to the
//! application, through the leader's proxy (one hop) and through a follower's proxy (two hops):
//! p50 and p99; then eight concurrent clients for two seconds each way: requests per second.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde::Serialize;
use tokio::time::Instant;

use crate::echo::{self, Answer, EchoApp};
use crate::events::Events;
use crate::fleet::stats::{Summary, summarize};
use crate::{Elector, Launch, Signal};

/// Endpoint propagation assumed by the readiness-gating model: kubelet status update,
/// EndpointSlice controller, kube-proxy; "usually well under a second".
pub const PROPAGATION: Duration = Duration::from_millis(500);
/// The readiness probe period of the shipped manifests.
pub const PROBE_PERIOD: Duration = Duration::from_secs(1);

/// The section's figures.
#[derive(Debug, Serialize)]
pub struct ProxyReport {
    pub handovers: usize,
    /// SIGTERM -> first answer from the new leader's application, through the proxies.
    pub proxy_switch_ms: Vec<f64>,
    pub proxy_switch: Option<Summary>,
    /// The readiness-gating model on the same handovers.
    pub readiness_switch_ms: Vec<f64>,
    pub readiness_switch: Option<Summary>,
    pub propagation_ms: f64,
    pub probe_period_ms: f64,
    /// Requests under load during the handovers, and those not answered 200.
    pub requests: usize,
    pub failed: usize,
    /// Answers from another pod after the new leader's first (should be none).
    pub stale_after_switch: usize,
    /// Sequential latency, ms: direct, via the leader's proxy, via a follower's proxy.
    pub latency_direct: Option<Summary>,
    pub latency_one_hop: Option<Summary>,
    pub latency_two_hops: Option<Summary>,
    pub p99_direct_ms: f64,
    pub p99_one_hop_ms: f64,
    pub p99_two_hops_ms: f64,
    /// Requests per second with eight concurrent clients.
    pub throughput_direct: f64,
    pub throughput_one_hop: f64,
    pub throughput_two_hops: f64,
}

struct Replica {
    _app: EchoApp,
    proxy: SocketAddr,
    app: SocketAddr,
}

/// Runs the section with `ids` (three or more) as replicas, `handovers` rounds, `requests`
/// sequential requests per latency path.
pub async fn run(spec: &Launch, ids: &[String], handovers: usize, requests: usize) -> Result<ProxyReport> {
    let events = Events::new();
    let mut replicas = Vec::new();
    let mut launches = Vec::new();
    for id in ids {
        let app = EchoApp::start(id)
            .await
            .context("starting a stand-in application")?;
        let proxy = echo::free_loopback_addr()?;
        let mut launch = spec.with_id(id);
        launch.events = Some(events.clone());
        launch.args.extend(
            [
                "--release-delay",
                "0s",
                "--proxy-listen",
                &proxy.to_string(),
                "--proxy-upstream",
                &app.addr().to_string(),
                "--advertise-address",
                &proxy.to_string(),
            ]
            .map(String::from),
        );
        launches.push(launch);
        replicas.push(Replica {
            app: app.addr(),
            _app: app,
            proxy,
        });
    }
    let started = crate::monotonic_now_ns();
    let mut group = Elector::launch_all(launches.clone()).await?;
    let mut leader = events
        .became_after(started, None, Duration::from_secs(60))
        .await
        .context("first leader")?;
    let client = echo::client();
    let proxies: Vec<SocketAddr> = replicas.iter().map(|r| r.proxy).collect();
    // Wait until every proxy serves from the leader.
    for proxy in &proxies {
        let deadline = Instant::now() + Duration::from_secs(30);
        while echo::get(&client, *proxy, "/").await.pod != leader.id {
            if Instant::now() > deadline {
                return Err(anyhow!("{proxy} never served from {}", leader.id));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let mut proxy_switch = Vec::new();
    let mut readiness_switch = Vec::new();
    let (mut requests_total, mut failed, mut stale) = (0, 0, 0);
    for round in 0..handovers {
        let running = Arc::new(AtomicBool::new(true));
        let load = spawn_load(&client, &proxies, &running);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let index = group
            .iter()
            .position(|e| e.id == leader.id)
            .ok_or_else(|| anyhow!("no process {}", leader.id))?;
        let t0 = Instant::now();
        let sent = group[index].send(Signal::Term)?;
        let next = events
            .became_after(sent, Some(&leader.id), Duration::from_secs(30))
            .await
            .context("handover")?;
        group[index].try_wait_exit(Duration::from_secs(10)).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        running.store(false, Ordering::SeqCst);
        let mut answers: Vec<Answer> = Vec::new();
        for worker in load {
            answers.extend(worker.await.unwrap_or_default());
        }
        requests_total += answers.len();
        failed += answers.iter().filter(|a| a.status != Some(200)).count();
        let first_new = answers
            .iter()
            .filter(|a| a.pod == next.id)
            .map(|a| a.answered)
            .min()
            .ok_or_else(|| anyhow!("no answer from the new leader {}", next.id))?;
        stale += answers
            .iter()
            .filter(|a| a.answered > first_new && a.status == Some(200) && a.pod != next.id)
            .count();
        proxy_switch.push(ms(first_new.saturating_duration_since(t0)));
        // The readiness model: the next probe after leading (uniform phase) plus propagation.
        let phase = PROBE_PERIOD.mul_f64(rand::random::<f64>());
        let became = Duration::from_nanos(next.monotonic_ns.saturating_sub(sent));
        readiness_switch.push(ms(became + phase + PROPAGATION));
        eprintln!(
            "[proxy] handover {}: {} -> {}: proxy {:.1} ms, readiness model {:.1} ms",
            round + 1,
            leader.id,
            next.id,
            proxy_switch.last().copied().unwrap_or_default(),
            readiness_switch.last().copied().unwrap_or_default()
        );
        group[index] = Elector::launch(launches[index].clone()).await?;
        leader = next;
    }

    let leader_index = ids
        .iter()
        .position(|id| *id == leader.id)
        .ok_or_else(|| anyhow!("no replica {}", leader.id))?;
    let follower_index = (leader_index + 1) % replicas.len();
    let paths = [
        replicas[leader_index].app,
        replicas[leader_index].proxy,
        replicas[follower_index].proxy,
    ];
    let mut latencies = Vec::new();
    let mut throughputs = Vec::new();
    for target in paths {
        let mut samples = Vec::with_capacity(requests);
        for _ in 0..requests {
            let answer = echo::get(&client, target, "/").await;
            if answer.status == Some(200) {
                samples.push(ms(answer.answered - answer.sent));
            }
        }
        latencies.push(samples);
        throughputs.push(throughput(&client, target, 8, Duration::from_secs(2)).await);
    }
    for elector in &mut group {
        let _ = elector.stop(Duration::from_secs(10)).await;
    }
    let p99 = |samples: &[f64]| percentile(samples, 0.99);
    Ok(ProxyReport {
        handovers,
        proxy_switch: summarize(&proxy_switch),
        proxy_switch_ms: proxy_switch,
        readiness_switch: summarize(&readiness_switch),
        readiness_switch_ms: readiness_switch,
        propagation_ms: ms(PROPAGATION),
        probe_period_ms: ms(PROBE_PERIOD),
        requests: requests_total,
        failed,
        stale_after_switch: stale,
        latency_direct: summarize(&latencies[0]),
        latency_one_hop: summarize(&latencies[1]),
        latency_two_hops: summarize(&latencies[2]),
        p99_direct_ms: p99(&latencies[0]),
        p99_one_hop_ms: p99(&latencies[1]),
        p99_two_hops_ms: p99(&latencies[2]),
        throughput_direct: throughputs[0],
        throughput_one_hop: throughputs[1],
        throughput_two_hops: throughputs[2],
    })
}

fn spawn_load(
    client: &echo::Client,
    proxies: &[SocketAddr],
    running: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Answer>>> {
    (0..4usize)
        .map(|worker| {
            let (client, proxies, running) = (client.clone(), proxies.to_vec(), running.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                let mut n = worker;
                while running.load(Ordering::SeqCst) {
                    let mut answer = echo::get(&client, proxies[n % proxies.len()], "/").await;
                    // A stopped replica refused the connection: as a Service would, the next one.
                    while answer.status.is_none() && answer.text.contains("ConnectionRefused") {
                        n += 1;
                        answer = echo::get(&client, proxies[n % proxies.len()], "/").await;
                    }
                    answers.push(answer);
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                answers
            })
        })
        .collect()
}

async fn throughput(client: &echo::Client, target: SocketAddr, clients: usize, window: Duration) -> f64 {
    let until = Instant::now() + window;
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < until {
                    if echo::get(&client, target, "/").await.status == Some(200) {
                        done += 1;
                    }
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.await.unwrap_or(0);
    }
    total as f64 / window.as_secs_f64()
}

fn percentile(samples: &[f64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The section as printed by `bench`.
pub fn table(report: &ProxyReport) -> String {
    let median = |s: &Option<Summary>| s.as_ref().map_or(f64::NAN, |s| s.median);
    let p95 = |s: &Option<Summary>| s.as_ref().map_or(f64::NAN, |s| s.p95);
    let mut out = String::new();
    out.push_str(&format!(
        "\nLeader-forwarding proxy, {} graceful handovers under load ({} requests, {} not answered 200, \
         {} answered by another pod after the new leader's first):\n",
        report.handovers, report.requests, report.failed, report.stale_after_switch
    ));
    out.push_str(&format!(
        "  SIGTERM -> every request reaches the new leader: proxy median {:.1} ms (p95 {:.1}); readiness \
         gating (model: became leader + probe phase U[0,{:.0} ms) + {:.0} ms propagation) median {:.1} ms \
         (p95 {:.1}); {:.0}x\n",
        median(&report.proxy_switch),
        p95(&report.proxy_switch),
        report.probe_period_ms,
        report.propagation_ms,
        median(&report.readiness_switch),
        p95(&report.readiness_switch),
        median(&report.readiness_switch) / median(&report.proxy_switch)
    ));
    out.push_str("  loopback, keep-alive     p50 ms   p99 ms   req/s (8 clients)\n");
    for (name, summary, p99, rate) in [
        (
            "direct to the app",
            &report.latency_direct,
            report.p99_direct_ms,
            report.throughput_direct,
        ),
        (
            "leader's proxy",
            &report.latency_one_hop,
            report.p99_one_hop_ms,
            report.throughput_one_hop,
        ),
        (
            "follower's proxy",
            &report.latency_two_hops,
            report.p99_two_hops_ms,
            report.throughput_two_hops,
        ),
    ] {
        out.push_str(&format!(
            "  {name:<22} {:>8.3} {:>8.3} {:>9.0} ({:.2}x direct)\n",
            median(summary),
            p99,
            rate,
            rate / report.throughput_direct
        ));
    }
    out
}
