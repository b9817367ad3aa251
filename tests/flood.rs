//! A flood of idle or slow connections cannot starve the probes of the real binary (against the
//! simulator): `/readyz` and `/livez` keep answering, within a generous bound, while 1,000
//! connections are held and refreshed continuously, also when the elector is at its own file
//! descriptor limit. The figures (p99, worst, renew latency) are in `make load`; this test only
//! bounds them loosely so a regression fails CI.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use kube_elector_harness::flood::{Flood, FloodKind, raise_fd_limit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The probe's answer must come within this (the kubelet's default probe timeout), on a loaded
/// 2-core machine; before the fix 256 idle connections delayed it by 3–4 s.
const PROBE_BOUND: Duration = Duration::from_secs(1);
const PATIENCE: Duration = Duration::from_secs(30);
/// The flood comes from another address than the probes (127.0.0.1), as another pod's
/// connections do in a cluster, where the kubelet probes from the node's address.
const FLOOD_SOURCE: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

/// One probe as the kubelet sends it: connect, GET, read the whole answer; the status code, or
/// why it failed within [`PROBE_BOUND`].
async fn probe(addr: SocketAddr, path: &str) -> Result<u16, String> {
    let connected = std::cell::Cell::new(None);
    let start = tokio::time::Instant::now();
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        connected.set(Some(start.elapsed()));
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let text = String::from_utf8_lossy(&answer);
        text.split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("no status line in {text:?}"))
    };
    match tokio::time::timeout(PROBE_BOUND, attempt).await {
        Ok(result) => result,
        Err(_) => Err(match connected.get() {
            Some(after) => format!("no answer within {PROBE_BOUND:?} (connected after {after:?})"),
            None => format!("not even connected within {PROBE_BOUND:?}"),
        }),
    }
}

/// Waits until the flood has opened at least `count` connections (so it is really held).
async fn until_opened(flood: &Flood, count: u64) {
    eventually(PATIENCE, "the flood's connections are open", || async {
        (flood.opened() >= count).then_some(())
    })
    .await;
}

/// Probes `/readyz` and `/livez` `rounds` times; every answer must be 200 within the bound.
async fn probes_stay_answered(addr: SocketAddr, rounds: usize, flood: &Flood, what: &str) {
    for round in 0..rounds {
        for path in ["/readyz", "/livez"] {
            let result = probe(addr, path).await;
            assert_eq!(
                result,
                Ok(200),
                "{what}: round {round}, {path} must answer 200 within {PROBE_BOUND:?} \
                 (flood opened {} connections)",
                flood.opened()
            );
        }
    }
}

#[tokio::test]
async fn idle_and_slow_header_floods_cannot_starve_the_probes() {
    raise_fd_limit(4_096);
    let sim = sim(&["a"]).await;
    let a = elector(&sim, "a", &[]).await;
    eventually(PATIENCE, "a leads", || async {
        a.is_leader().await.then_some(())
    })
    .await;

    for kind in [FloodKind::Idle, FloodKind::SlowHeader] {
        let flood = Flood::start(a.addr, FLOOD_SOURCE, 1_000, kind, Duration::from_millis(500));
        until_opened(&flood, 2_000).await; // every slot opened, and reopened: refreshed
        probes_stay_answered(a.addr, 20, &flood, &format!("{kind:?} flood of 1,000")).await;
        flood.stop().await;
    }
    assert!(a.is_leader().await, "a still leads after the floods");
}

#[tokio::test]
async fn at_its_file_descriptor_limit_the_elector_keeps_accepting_and_answering() {
    raise_fd_limit(4_096);
    let sim = sim(&["a"]).await;
    let a = elector(&sim, "a", &[]).await;
    eventually(PATIENCE, "a leads", || async {
        a.is_leader().await.then_some(())
    })
    .await;
    // Room for about 32 connections above what the process uses now.
    let open = std::fs::read_dir(format!("/proc/{}/fd", a.pid()))
        .expect("the elector's fd directory")
        .count();
    let limit = open + 32;
    let status = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &a.pid().to_string(),
            &format!("--nofile={limit}:{limit}"),
        ])
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(status.success(), "prlimit failed: {status}");

    let flood = Flood::start(
        a.addr,
        FLOOD_SOURCE,
        300,
        FloodKind::Idle,
        Duration::from_millis(500),
    );
    until_opened(&flood, 600).await;
    probes_stay_answered(
        a.addr,
        20,
        &flood,
        &format!("fd limit {limit}, idle flood of 300"),
    )
    .await;
    flood.stop().await;
    assert_eq!(
        probe(a.addr, "/readyz").await,
        Ok(200),
        "the accept loop is still alive"
    );
}
