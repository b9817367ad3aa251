//! End-to-end: the leader-forwarding proxy (`--proxy-listen`) against the simulator, with real
//! stand-in applications that name their pod and echo the fencing token they were given
//! (`harness::echo`).
//!
//! What is shown: under steady load through every replica's proxy, across graceful handovers
//! (SIGTERM of the leader, restarted as a follower), every request is answered 200 (a connection
//! refused by the stopped process, which sent nothing, goes to the next replica as a Service
//! would send it), every answer
//! comes from the application of the leader whose token it carries (checked against the
//! simulator's write log), and no answer carries a lower token than one answered before it was
//! sent. A request that finds no leader waits and, past `--proxy-queue-timeout`, gets 503 with
//! `Retry-After`; over `--proxy-queue-limit` it gets 503 at once. Bodies stream through a
//! follower to the leader's application, an upgrade is tunnelled through both proxies, and an
//! HTTP/2 prior-knowledge connection gets GOAWAY with HTTP_1_1_REQUIRED.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::echo::{self, Answer, EchoApp};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WITHIN: Duration = Duration::from_secs(20);

/// A replica: its application and its elector with the proxy in front of it.
struct Replica {
    /// Kept alive with the replica.
    _app: EchoApp,
    proxy: SocketAddr,
    elector: Elector,
}

async fn replica(sim: &kube_sim::Sim, id: &str, extra: &[&str]) -> Replica {
    let app = EchoApp::start(id).await.expect("the stand-in application starts");
    let proxy = echo::free_loopback_addr().expect("a free port");
    let mut args = vec![
        "--proxy-listen".to_owned(),
        proxy.to_string(),
        "--proxy-upstream".to_owned(),
        app.addr().to_string(),
        "--advertise-address".to_owned(),
        proxy.to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let elector = elector(sim, id, &args).await;
    Replica {
        _app: app,
        proxy,
        elector,
    }
}

/// Waits until `replica`'s proxy answers 200 from a leader's application, which then leads.
async fn wait_served(client: &echo::Client, replica: &Replica) -> Answer {
    eventually(
        WITHIN,
        &format!("{}'s proxy to answer from a leader", replica.elector.id),
        || async {
            let answer = echo::get(client, replica.proxy, "/").await;
            (answer.status == Some(200)).then_some(answer)
        },
    )
    .await
}

/// The holder of each token, from the simulator's write log.
fn holders_by_token(sim: &kube_sim::Sim) -> BTreeMap<u64, String> {
    let mut holders = BTreeMap::new();
    for write in lock_writes(sim, "leases") {
        if write.holder.is_empty() {
            continue;
        }
        let token = u64::try_from(write.transitions).unwrap_or_default();
        let previous = holders.insert(token, write.holder.clone());
        assert!(
            previous.as_ref().is_none_or(|p| *p == write.holder),
            "token {token} held by two holders: {previous:?} and {}",
            write.holder
        );
    }
    holders
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_handovers_under_steady_load_answer_every_request_from_the_tokens_leader() {
    let sim = sim(&["a", "b", "c"]).await;
    let mut replicas = Vec::new();
    for id in ["a", "b", "c"] {
        replicas.push(replica(&sim, id, &[]).await);
    }
    let client = echo::client();
    wait_served(&client, &replicas[0]).await;
    let proxies: Vec<SocketAddr> = replicas.iter().map(|r| r.proxy).collect();

    // Steady load: four clients, each through every proxy in turn; one request in four is held
    // 50 ms by the application, so some are in flight at every handover.
    let running = Arc::new(AtomicBool::new(true));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for worker in 0..4usize {
        let (client, proxies, running) = (client.clone(), proxies.clone(), running.clone());
        let answered = answered.clone();
        load.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            let mut n = worker;
            while running.load(Ordering::SeqCst) {
                let path = if n % 4 == 0 {
                    "/orders?delay_ms=50"
                } else {
                    "/orders"
                };
                // A stopped replica refuses the connection (nothing was sent): the next replica
                // gets it, as a Service would once the pod left its endpoints.
                let mut answer = echo::get(&client, proxies[n % proxies.len()], path).await;
                while answer.status.is_none() && answer.text.contains("ConnectionRefused") {
                    n += 1;
                    answer = echo::get(&client, proxies[n % proxies.len()], path).await;
                }
                answers.push(answer);
                answered.fetch_add(1, Ordering::SeqCst);
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            answers
        }));
    }

    // Two graceful handovers: SIGTERM the leader (it steps down, releases, exits), restart it as
    // a follower, wait until the new leader serves.
    for _ in 0..2 {
        let leader_index = eventually(WITHIN, "a leader", || async {
            let electors: Vec<&Elector> = replicas.iter().map(|r| &r.elector).collect();
            for (i, e) in electors.iter().enumerate() {
                if e.is_leader().await {
                    return Some(i);
                }
            }
            None
        })
        .await;
        answered_more(&answered, 40).await; // load on the settled leader
        let leader = &mut replicas[leader_index].elector;
        let status = leader.stop(WITHIN).await.expect("the leader stops");
        assert!(
            status.success(),
            "{} exits 0 after a graceful stop: {status:?}",
            leader.id
        );
        leader.restart().await;
        let old = leader.id.clone();
        let other = replicas
            .iter()
            .find(|r| r.elector.id != old)
            .expect("another replica");
        let served = wait_served(&client, other).await;
        assert_ne!(served.pod, old, "a new leader serves after {old}'s handover");
    }
    answered_more(&answered, 40).await;
    running.store(false, Ordering::SeqCst);
    let mut answers = Vec::new();
    for worker in load {
        answers.extend(worker.await.expect("a load worker"));
    }

    let failed: Vec<&Answer> = answers.iter().filter(|a| a.status != Some(200)).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed across graceful handovers, e.g. {:?}",
        failed.len(),
        answers.len(),
        failed.iter().take(3).collect::<Vec<_>>()
    );
    let holders = holders_by_token(&sim);
    for answer in &answers {
        let token = answer
            .token
            .unwrap_or_else(|| panic!("the application got no token: {answer:?}"));
        assert_eq!(
            holders.get(&token),
            Some(&answer.pod),
            "an answer carrying token {token} must come from that token's leader: {answer:?}; holders {holders:?}"
        );
    }
    let tokens: std::collections::BTreeSet<u64> = answers.iter().filter_map(|a| a.token).collect();
    assert!(
        tokens.len() >= 3,
        "the load must span both handovers (three leaders), saw tokens {tokens:?}"
    );
    let regressions = echo::token_regressions(&answers);
    assert!(
        regressions.is_empty(),
        "a request sent after an answer with a higher token got a lower one: {:?}",
        regressions.first()
    );
    // Every proxy took part: followers forwarded (an answer from a pod other than the proxy's own
    // replica would show it, checked through the metrics).
    let mut forwarded = 0;
    for replica in &replicas {
        let (_, _, metrics) = replica.elector.get("/metrics").await.expect("metrics");
        assert!(
            metrics.contains("elector_proxy_requests_total{"),
            "{} exposes the proxy metrics",
            replica.elector.id
        );
        forwarded += metric(&metrics, "elector_proxy_requests_total", "outcome=\"forwarded\"");
    }
    assert!(forwarded > 0, "followers forwarded requests to the leader");
}

/// Returns once the load has had `more` answers since the call.
async fn answered_more(answered: &AtomicUsize, more: usize) {
    let target = answered.load(Ordering::SeqCst) + more;
    eventually(WITHIN, &format!("{more} more answers under load"), || async {
        (answered.load(Ordering::SeqCst) >= target).then_some(())
    })
    .await;
}

/// The value of the first sample of `family` whose labels contain `label`.
fn metric(text: &str, family: &str, label: &str) -> u64 {
    text.lines()
        .find(|line| line.starts_with(family) && line.contains(label))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse::<f64>().ok())
        .map_or(0, |value| value as u64)
}

#[tokio::test]
async fn without_a_leader_requests_wait_then_get_503_with_retry_after() {
    let sim = sim(&["a"]).await;
    // A fresh lock is led only a lease (3 s) after it is taken: meanwhile there is no leader.
    let solo = replica(&sim, "a", &["--proxy-queue-timeout", "300ms"]).await;
    let client = echo::client();
    let answer = echo::get(&client, solo.proxy, "/").await;
    assert_eq!(
        answer.status,
        Some(503),
        "no leader within the queue timeout: {answer:?}"
    );
    assert!(
        answer.text.contains("--proxy-queue-timeout"),
        "the 503 says why: {answer:?}"
    );
    assert!(
        answer.answered - answer.sent >= Duration::from_millis(300),
        "it waited the queue timeout first: {answer:?}"
    );
    let (status, headers, _) = raw(
        solo.proxy,
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    if status == 503 {
        assert!(
            headers.to_ascii_lowercase().contains("retry-after: 1"),
            "{headers}"
        );
    }
    let served = wait_served(&client, &solo).await;
    assert_eq!(served.pod, "a");
    let (_, _, metrics) = solo.elector.get("/metrics").await.expect("metrics");
    assert!(
        metric(&metrics, "elector_proxy_requests_total", "outcome=\"rejected\"") >= 1,
        "{metrics}"
    );
    assert!(
        metric(&metrics, "elector_proxy_queued_total", "") >= 1,
        "{metrics}"
    );
    assert!(
        metric(&metrics, "elector_proxy_requests_total", "outcome=\"local\"") >= 1,
        "{metrics}"
    );

    // A queue limit of 0: nothing waits, the 503 comes at once.
    let sim = common::sim(&["b"]).await;
    let unqueued = replica(
        &sim,
        "b",
        &["--proxy-queue-limit", "0", "--proxy-queue-timeout", "10s"],
    )
    .await;
    let (status, headers, body) = raw(
        unqueued.proxy,
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 503, "{headers}{body}");
    assert!(
        headers.to_ascii_lowercase().contains("retry-after: 1"),
        "{headers}"
    );
    assert!(body.contains("--proxy-queue-limit"), "{body}");
}

/// Sends raw bytes, reads until the peer closes: status, head, body.
async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connects");
    stream.write_all(request).await.expect("writes");
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(WITHIN, stream.read_to_end(&mut bytes)).await;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

#[tokio::test]
async fn bodies_stream_and_upgrades_tunnel_through_a_follower_and_http2_is_refused_clearly() {
    let sim = sim(&["a", "b"]).await;
    let a = replica(&sim, "a", &[]).await;
    let client = echo::client();
    wait_served(&client, &a).await;
    let b = replica(&sim, "b", &[]).await;
    // b follows once it has seen a's claim and address.
    let via_b = eventually(WITHIN, "b to forward to a", || async {
        let answer = echo::get(&client, b.proxy, "/").await;
        (answer.pod == "a").then_some(answer)
    })
    .await;
    assert!(via_b.token.is_some());

    // A client that connects and says nothing holds up only its own connection: the next
    // request, on a new connection (a fresh client), is answered long before the silent one's
    // header read timeout (30 s).
    let silent = tokio::net::TcpStream::connect(a.proxy).await.expect("connects");
    let answer = tokio::time::timeout(WITHIN, echo::get(&echo::client(), a.proxy, "/"))
        .await
        .expect("answered while a silent connection is open");
    assert_eq!((answer.status, answer.pod.as_str()), (Some(200), "a"));
    drop(silent);

    // A body through the follower reaches the leader's application whole.
    let body: String = (0..64 * 1024u32).map(|i| format!("{:04}", i % 10_000)).collect();
    let answer = echo::send(&client, b.proxy, "POST", "/upload", body.clone().into()).await;
    assert_eq!(
        answer.status,
        Some(200),
        "{}",
        answer.text.chars().take(200).collect::<String>()
    );
    assert_eq!(answer.pod, "a");
    let echoed = answer.text.split_once('\n').map(|(_, rest)| rest);
    assert!(echoed == Some(body.as_str()), "the 256 KiB body came back whole");

    // An upgrade through b and a to a's application, then bytes both ways.
    let mut stream = tokio::net::TcpStream::connect(b.proxy).await.expect("connects");
    stream
        .write_all(b"GET /chat HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .expect("writes");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(WITHIN, stream.read(&mut byte))
            .await
            .expect("in time")
            .expect("reads");
        assert_eq!(
            n,
            1,
            "the connection closed in the head: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("x-served-by: a"), "{head}");
    stream
        .write_all(b"ping through two proxies")
        .await
        .expect("writes");
    let mut echoed = [0u8; 24];
    tokio::time::timeout(WITHIN, stream.read_exact(&mut echoed))
        .await
        .expect("in time")
        .expect("reads");
    assert_eq!(&echoed, b"ping through two proxies");

    // HTTP/2 with prior knowledge: SETTINGS, then GOAWAY with HTTP_1_1_REQUIRED (0xd).
    let mut stream = tokio::net::TcpStream::connect(b.proxy).await.expect("connects");
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .expect("writes");
    let mut frames = Vec::new();
    let _ = tokio::time::timeout(WITHIN, stream.read_to_end(&mut frames)).await;
    assert_eq!(frames.len(), 26, "{frames:?}");
    assert_eq!(frames[12], 0x7, "a GOAWAY frame follows the SETTINGS: {frames:?}");
    assert_eq!(
        &frames[22..26],
        &[0, 0, 0, 0xd],
        "error code HTTP_1_1_REQUIRED: {frames:?}"
    );

    // Every replica is ready for the proxy's Service, leader or not.
    for replica in [&a, &b] {
        let (status, text, _) = replica.elector.get("/readyz/proxy").await.expect("answers");
        assert_eq!(status, 200, "{}: {text}", replica.elector.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_replica_exits_well_before_a_long_shutdown_timeout_with_a_silent_connection_open() {
    // Neither a connection that sends nothing (an HTTP client pool's spare, say) nor the wait
    // for a successor that never comes (no other replica) may keep the process alive to the end
    // of a long shutdown budget.
    let sim = sim(&["a"]).await;
    let mut a = replica(&sim, "a", &["--shutdown-timeout", "60s"]).await;
    wait_served(&echo::client(), &a).await;
    let _silent = tokio::net::TcpStream::connect(a.proxy).await.expect("connects");
    // Connections are accepted in order: once a later one is answered, the silent one is open
    // at the proxy.
    let answer = echo::get(&echo::client(), a.proxy, "/").await;
    assert_eq!(answer.status, Some(200), "{}", answer.text);
    let status = a
        .elector
        .stop(Duration::from_secs(30))
        .await
        .expect("the elector stops");
    assert!(
        status.success(),
        "exits 0 well before its 60 s shutdown timeout (killed after 30 s): {status:?}"
    );
}
