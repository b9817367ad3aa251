//! End-to-end: what the kubelet, Prometheus and the application see of a running elector.

mod common;

use std::time::Duration;

use common::*;
use serde::Deserialize;
use serde_json::Value;

const WITHIN: Duration = Duration::from_secs(20);

/// One sample from an OpenMetrics exposition: the sum over series whose labels include `labels`.
fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let values: Vec<f64> = exposition
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

async fn scrape(elector: &Elector) -> String {
    let (code, head, body) = elector.get("/metrics").await.expect("/metrics answers");
    assert_eq!(code, 200);
    assert!(
        head.to_ascii_lowercase().contains("application/openmetrics-text"),
        "content type: {head}"
    );
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_leadership_changes() {
    let sim = sim(&["a", "b"]).await;
    let mut electors = vec![elector(&sim, "a", &[]).await, elector(&sim, "b", &[]).await];
    let first = one_leader(&electors, WITHIN).await;
    let second = 1 - first;

    // The leader renews: its renew histogram counts successes as they happen.
    let before = scrape(&electors[first]).await;
    let renewals = |text: &str| {
        sample(
            text,
            "elector_renew_duration_seconds_count",
            &[("result", "success")],
        )
    };
    let counted = renewals(&before).unwrap_or(0.0);
    let later = eventually(WITHIN, "more successful renewals", || async {
        let text = scrape(&electors[first]).await;
        (renewals(&text).unwrap_or(0.0) >= counted + 2.0).then_some(text)
    })
    .await;
    assert_eq!(sample(&later, "elector_is_leader", &[]), Some(1.0), "{later}");
    assert_eq!(
        sample(&later, "leader_election_master_status", &[("name", "test")]),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &later,
            "elector_leadership_transitions_total",
            &[("direction", "acquired")]
        ),
        Some(1.0)
    );
    assert!(
        sample(
            &later,
            "elector_api_requests_total",
            &[("verb", "update"), ("code", "200")]
        )
        .unwrap_or(0.0)
            >= 2.0
    );
    assert!(sample(&later, "elector_fencing_token", &[]).is_some_and(|t| t >= 0.0));
    assert!(sample(&later, "process_resident_memory_bytes", &[]).is_some_and(|b| b > 0.0));
    let follower = scrape(&electors[second]).await;
    assert_eq!(
        sample(&follower, "elector_is_leader", &[]),
        Some(0.0),
        "{follower}"
    );
    assert_eq!(sample(&follower, "elector_fencing_token", &[]), Some(-1.0));

    // Hand over: the other side's gauges and counters move.
    electors[first].signal("TERM");
    assert!(electors[first].wait_exit(Duration::from_secs(10)).await.success());
    let text = eventually(WITHIN, "the follower to lead", || async {
        let text = scrape(&electors[second]).await;
        (sample(&text, "elector_is_leader", &[]) == Some(1.0)).then_some(text)
    })
    .await;
    assert_eq!(
        sample(
            &text,
            "elector_leadership_transitions_total",
            &[("direction", "acquired")]
        ),
        Some(1.0)
    );
    assert!(
        sample(&text, "elector_observed_leader_changes_total", &[]).unwrap_or(0.0) >= 1.0,
        "the follower saw the leader change: {text}"
    );
}

/// vapor-ware k8s-elector's `GET /` answer, exactly its fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct K8sElector {
    is_leader: bool,
    leader: String,
    node: String,
    timestamp: String,
}

/// The kubernetes contrib leader-elector sidecar's answer.
#[derive(Debug, Deserialize)]
struct ContribLeaderElector {
    name: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_as_existing_tools_expect() {
    let sim = sim(&["a", "b"]).await;
    let electors = vec![elector(&sim, "a", &[]).await, elector(&sim, "b", &[]).await];
    let leader = one_leader(&electors, WITHIN).await;
    let leader_id = electors[leader].id.clone();
    for elector in &electors {
        // A follower learns of the new leader from its watch, a moment after the leader knows.
        let body = eventually(WITHIN, "every elector to name the leader", || async {
            let (_, _, body) = elector.get("/").await?;
            body.contains(&format!("\"leader\":\"{leader_id}\""))
                .then_some(body)
        })
        .await;
        let mut full: Value = serde_json::from_str(&body).expect("JSON");
        let only_theirs: serde_json::Map<String, Value> = ["is_leader", "leader", "node", "timestamp"]
            .iter()
            .map(|k| (k.to_string(), full[k].take()))
            .collect();
        let theirs: K8sElector =
            serde_json::from_value(Value::Object(only_theirs)).expect("k8s-elector fields");
        assert_eq!(theirs.node, elector.id);
        assert_eq!(theirs.leader, leader_id);
        assert_eq!(theirs.is_leader, elector.id == leader_id);
        assert!(
            theirs.timestamp.ends_with('Z') && theirs.timestamp.len() == 20,
            "RFC 3339 UTC: {}",
            theirs.timestamp
        );
        let contrib: ContribLeaderElector = serde_json::from_str(&body).expect("leader-elector field");
        assert_eq!(contrib.name, leader_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_file_exists_only_on_the_leader() {
    let dir = std::env::temp_dir().join(format!("kube-elector-leader-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sim = sim(&["a", "b"]).await;
    let mut electors = Vec::new();
    for id in ["a", "b"] {
        let path = dir.join(format!("{id}.leader"));
        electors.push(elector(&sim, id, &["--leader-file", path.to_str().expect("utf-8 path")]).await);
    }
    let first = one_leader(&electors, WITHIN).await;
    let ids: Vec<String> = electors.iter().map(|e| e.id.clone()).collect();
    let file = |i: usize| dir.join(format!("{}.leader", ids[i]));
    let content = eventually(WITHIN, "the leader's file", || async {
        std::fs::read_to_string(file(first)).ok()
    })
    .await;
    assert_eq!(
        content.lines().next().unwrap_or_default(),
        electors[first].id,
        "the file's first line holds the leader's identity"
    );
    assert!(!file(1 - first).exists(), "a follower has no leader file");

    electors[first].signal("TERM");
    assert!(electors[first].wait_exit(Duration::from_secs(10)).await.success());
    assert!(
        !file(first).exists(),
        "the old leader removed its file on shutdown"
    );
    eventually(WITHIN, "the new leader's file", || async {
        file(1 - first).exists().then_some(())
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_label_marks_leader_and_follower() {
    let sim = sim(&["a", "b"]).await;
    let mut electors = Vec::new();
    for id in ["a", "b"] {
        electors.push(elector(&sim, id, &["--pod-label", "--pod-name", id]).await);
    }
    let first = one_leader(&electors, WITHIN).await;
    let role = |pod: &str| {
        sim.objects()
            .into_iter()
            .find(|o| o["kind"] == "Pod" && o["metadata"]["name"] == pod)
            .and_then(|p| {
                p["metadata"]["labels"]["kube-elector/role"]
                    .as_str()
                    .map(str::to_owned)
            })
    };
    let (leader_id, follower_id) = (electors[first].id.clone(), electors[1 - first].id.clone());
    eventually(WITHIN, "the pod labels", || async {
        (role(&leader_id).as_deref() == Some("leader") && role(&follower_id).as_deref() == Some("follower"))
            .then_some(())
    })
    .await;
    electors[first].signal("TERM");
    assert!(electors[first].wait_exit(Duration::from_secs(10)).await.success());
    eventually(WITHIN, "the labels to swap", || async {
        (role(&leader_id).as_deref() == Some("follower") && role(&follower_id).as_deref() == Some("leader"))
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_events_are_recorded_on_the_lock() {
    let sim = sim(&["a", "b"]).await;
    let mut electors = vec![elector(&sim, "a", &[]).await, elector(&sim, "b", &[]).await];
    let first = one_leader(&electors, WITHIN).await;
    let id = electors[first].id.clone();
    electors[first].signal("TERM");
    assert!(electors[first].wait_exit(Duration::from_secs(10)).await.success());
    let messages = || -> Vec<String> {
        sim.objects()
            .into_iter()
            .filter(|o| o["kind"] == "Event" && o["involvedObject"]["name"] == "test")
            .filter_map(|e| e["message"].as_str().map(str::to_owned))
            .collect()
    };
    let became = format!("{id} became leader");
    let stopped = format!("{id} stopped leading");
    eventually(WITHIN, "became/stopped events", || async {
        let now = messages();
        (now.contains(&became) && now.contains(&stopped)).then_some(())
    })
    .await;
}

/// Runs the binary with exactly `args` and `env` (nothing inherited) and returns its exit code and
/// stderr. A process still running after a generous bound was wrongly accepted as configured: it is
/// killed and the test fails, instead of hanging.
async fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let bound = Duration::from_secs(30);
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kube-elector"))
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kube-elector starts");
    match tokio::time::timeout(bound, child.wait_with_output()).await {
        Ok(output) => {
            let output = output.expect("output is collected");
            (
                output.status.code(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        }
        Err(_) => panic!("{args:?} was still running after {bound:?}: the configuration was accepted"),
    }
}

/// Asserts that nothing at all reached the simulator: no connection, no request.
fn nothing_reached(sim: &kube_sim::Sim, case: &str) {
    assert_eq!(
        (sim.connections(), sim.requests()),
        (0, Default::default()),
        "{case}: nothing may reach the API server (connections, requests)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_configuration_exits_2_before_touching_the_api() {
    let sim = sim(&["a"]).await;
    let kubeconfig = sim.kubeconfig_path("a");
    let kubeconfig = kubeconfig.to_str().expect("utf-8 path");
    // Each case: the arguments, then what the message must say. The unreadable kubeconfig's
    // path does not contain the word "kubeconfig", so only the message itself can.
    let cases: [(&[&str], &[&str]); 5] = [
        (
            &["--kubeconfig", kubeconfig, "--lock-type", "zookeeper"],
            &["lock-type", "\"zookeeper\"", "leases, configmaps or endpoints"],
        ),
        (
            &["--kubeconfig", kubeconfig, "--renew-deadline", "20s"],
            &["renew-deadline", "lease-duration"],
        ),
        (
            &["--kubeconfig", kubeconfig, "--lease-duration", "15"],
            &["lease-duration", "\"15\"", "write 15s"],
        ),
        (
            &["--kubeconfig", kubeconfig, "--election", ""],
            &["election", "must not be empty"],
        ),
        (
            &["--kubeconfig", "/nonexistent/credentials"],
            &["kubeconfig", "/nonexistent/credentials", "cannot be read"],
        ),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["--id", "a", "--http", "127.0.0.1:0"];
        if !extra.contains(&"--election") {
            args.extend(["--election", "test"]);
        }
        args.extend_from_slice(extra);
        let (code, stderr) = run_to_exit(&args, &[]).await;
        assert_eq!(code, Some(2), "{extra:?}: exit code; stderr: {stderr}");
        for part in expected {
            assert!(
                stderr.contains(part),
                "{extra:?}: the message says {part:?}: {stderr}"
            );
        }
        nothing_reached(&sim, &format!("{extra:?}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_refused_at_run_time_exits_2_naming_the_setting() {
    let sim = sim(&["a"]).await;
    let dir = std::env::temp_dir().join(format!("kube-elector-runtime-exit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let garbled = dir.join("garbled");
    std::fs::write(&garbled, "apiVersion: v1\nclusters: [unclosed\n").expect("write");
    let empty = dir.join("empty-config");
    std::fs::write(&empty, "apiVersion: v1\nkind: Config\n").expect("write");
    let base = ["--election", "test", "--id", "a"];

    // A readable file that is not YAML.
    let (code, stderr) = run_to_exit(
        &[
            &base[..],
            &[
                "--http",
                "127.0.0.1:0",
                "--kubeconfig",
                garbled.to_str().expect("utf-8"),
            ],
        ]
        .concat(),
        &[],
    )
    .await;
    assert_eq!(code, Some(2), "malformed kubeconfig: {stderr}");
    assert!(
        stderr.contains("reading kubeconfig") && stderr.contains("--kubeconfig / KUBECONFIG"),
        "names the file and the setting: {stderr}"
    );
    // A valid YAML kubeconfig with no cluster or context to use.
    let (code, stderr) = run_to_exit(
        &[
            &base[..],
            &[
                "--http",
                "127.0.0.1:0",
                "--kubeconfig",
                empty.to_str().expect("utf-8"),
            ],
        ]
        .concat(),
        &[],
    )
    .await;
    assert_eq!(code, Some(2), "unusable kubeconfig: {stderr}");
    assert!(
        stderr.contains("using kubeconfig") && stderr.contains("--kubeconfig / KUBECONFIG"),
        "{stderr}"
    );
    // No kubeconfig and no in-cluster service account (no KUBERNETES_SERVICE_HOST here).
    let (code, stderr) = run_to_exit(&[&base[..], &["--http", "127.0.0.1:0"]].concat(), &[]).await;
    assert_eq!(code, Some(2), "no API configuration: {stderr}");
    assert!(
        stderr.contains("in-cluster") && stderr.contains("pass --kubeconfig"),
        "says how to fix it: {stderr}"
    );
    // --http on an address already in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let kubeconfig = sim.kubeconfig_path("a");
    let (code, stderr) = run_to_exit(
        &[
            &base[..],
            &[
                "--http",
                &address,
                "--kubeconfig",
                kubeconfig.to_str().expect("utf-8"),
            ],
        ]
        .concat(),
        &[],
    )
    .await;
    assert_eq!(code, Some(2), "--http cannot bind: {stderr}");
    assert!(
        stderr.contains(&address) && stderr.contains("--http"),
        "names the address and the flag: {stderr}"
    );
    drop(taken);
    nothing_reached(&sim, "run-time refusals");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The pod's `kube-elector/role` label as the simulator's write log shows `client` patching it:
/// (seq, value) of each of its patches of `pod`.
fn label_patches(sim: &kube_sim::Sim, client: &str, pod: &str) -> Vec<(u64, String)> {
    sim.writes()
        .into_iter()
        .filter(|w| w.resource == "pods" && w.name == pod && w.client == client && w.verb == "patch")
        .map(|w| {
            let value = w.object["metadata"]["labels"]["kube-elector/role"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            (w.seq, value)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_label_turns_follower_when_the_claim_lapses() {
    let sim = sim(&["a"]).await;
    let mut a = elector(&sim, "a", &["--pod-label", "--pod-name", "a"]).await;
    one_leader(std::slice::from_ref(&a), WITHIN).await;
    eventually(WITHIN, "the leader label", || async {
        (label_patches(&sim, "a", "a").last().map(|p| p.1.as_str()) == Some("leader")).then_some(())
    })
    .await;
    let labelled = label_patches(&sim, "a", "a").len();
    // The API server stops answering a's renewals (only those: the pod patch still goes through).
    // No other candidate exists, so nothing but the lapse of a's own claim can end its leadership.
    sim.set_fault(
        "a",
        kube_sim::Fault {
            hang: true,
            verbs: Some(vec!["update".to_owned()]),
            ..kube_sim::Fault::default()
        },
    );
    a.wait_log(|l| l["message"] == "stopped leading", RENEW_DEADLINE * 3)
        .await;
    let patches = eventually(WITHIN, "the follower label", || async {
        let patches = label_patches(&sim, "a", "a");
        (patches.last().map(|p| p.1.as_str()) == Some("follower")).then_some(patches)
    })
    .await;
    assert_eq!(
        patches.len(),
        labelled + 1,
        "one patch to follower after the lapse: {patches:?}"
    );
    sim.clear_fault("a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_pod_label_patch_is_retried_and_the_label_is_reset_on_shutdown() {
    let sim = sim(&["a"]).await;
    // Every patch fails until the fault is cleared.
    sim.set_fault(
        "a",
        kube_sim::Fault {
            fail: Some(kube_sim::FailSpec {
                status: 503,
                ratio: 1.0,
                retry_after_seconds: None,
            }),
            verbs: Some(vec!["patch".to_owned()]),
            ..kube_sim::Fault::default()
        },
    );
    let mut a = elector(&sim, "a", &["--pod-label", "--pod-name", "a"]).await;
    one_leader(std::slice::from_ref(&a), WITHIN).await;
    let patch_requests = || {
        sim.requests()
            .get("a")
            .and_then(|c| c.get("patch pods").copied())
            .unwrap_or(0)
    };
    eventually(WITHIN, "the failed patch to be retried", || async {
        (patch_requests() >= 3).then_some(())
    })
    .await;
    assert!(label_patches(&sim, "a", "a").is_empty(), "no patch got through");
    sim.clear_fault("a");
    eventually(WITHIN, "the retried patch to land", || async {
        (label_patches(&sim, "a", "a").last().map(|p| p.1.as_str()) == Some("leader")).then_some(())
    })
    .await;
    // On SIGTERM the label is reset before the process exits: no waiting after the exit.
    a.signal("TERM");
    assert!(a.wait_exit(Duration::from_secs(10)).await.success());
    let patches = label_patches(&sim, "a", "a");
    assert_eq!(
        patches.last().map(|p| p.1.as_str()),
        Some("follower"),
        "the last patch before exit resets the label: {patches:?}"
    );
}

/// Sends raw bytes as one HTTP/1.1 request on a new connection and returns what comes back
/// before the server closes (or 5 s pass).
async fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connects");
    let _ = stream.write_all(request).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw)).await;
    String::from_utf8_lossy(&raw).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_heads_beyond_16_kib_are_refused() {
    let sim = sim(&["a"]).await;
    let a = elector(&sim, "a", &[]).await;
    let with_header = |bytes: usize| {
        format!(
            "GET /livez HTTP/1.1\r\nHost: test\r\nConnection: close\r\nX-Padding: {}\r\n\r\n",
            "p".repeat(bytes)
        )
    };
    // A large but allowed head (12 KiB) is served.
    let answer = raw_exchange(a.addr, with_header(12 * 1024).as_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "a 12 KiB head is served: {answer:.80}"
    );
    // Beyond the 16 KiB buffer the server answers 431 instead of buffering more.
    let answer = raw_exchange(a.addr, with_header(20 * 1024).as_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "a 20 KiB head is refused with 431: {answer:.80}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_keep_alive_connections_without_waiting_out_the_drain() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = sim(&["a"]).await;
    let mut a = elector(&sim, "a", &[]).await;
    let mut stream = tokio::net::TcpStream::connect(a.addr).await.expect("connects");
    stream
        .write_all(b"GET /livez HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .expect("request");
    // Read the whole first answer (its head says how long the body is); the connection stays open.
    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    let answered = loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("answered in time")
            .expect("read");
        assert!(
            n > 0,
            "the server closed a keep-alive connection after one request"
        );
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse().ok())
                .expect("content-length");
            if body.len() >= length {
                break text;
            }
        }
    };
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    assert!(
        !answered.to_ascii_lowercase().contains("connection: close"),
        "kept alive: {answered}"
    );
    a.signal("TERM");
    // The idle connection is closed by the server during the drain...
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("the server closes the idle connection on shutdown")
        .unwrap_or(0);
    assert_eq!(n, 0, "end of stream, not another answer");
    // ... so the process need not wait out the drain timeout for it.
    assert!(a.wait_exit(Duration::from_secs(10)).await.success());
    assert!(
        a.log_messages("closing HTTP connections still open after the drain timeout")
            .is_empty(),
        "an idle keep-alive connection held up the shutdown:\n{}",
        a.dump_logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_probes_does_not_delay_the_leaders_renewals() {
    let sim = sim(&["a"]).await;
    let a = elector(&sim, "a", &[]).await;
    one_leader(std::slice::from_ref(&a), WITHIN).await;
    let start_seq = sim.writes().last().map_or(0, |w| w.seq);
    // 32 clients probing /readyz back to back for a few seconds, on the same two cores.
    let flood = Duration::from_secs(4);
    let until = tokio::time::Instant::now() + flood;
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let addr = a.addr;
        clients.spawn(async move {
            let mut answered = 0u64;
            while tokio::time::Instant::now() < until {
                if http_get(addr, "/readyz")
                    .await
                    .is_some_and(|(code, _, _)| code == 200)
                {
                    answered += 1;
                }
            }
            answered
        });
    }
    let mut probes = 0;
    while let Some(answered) = clients.join_next().await {
        probes += answered.expect("probe task");
    }
    let renewals: Vec<u64> = sim
        .writes_since(start_seq)
        .into_iter()
        .filter(|w| w.resource == "leases" && w.client == "a")
        .map(|w| w.monotonic_ns)
        .collect();
    let longest = renewals
        .windows(2)
        .map(|p| Duration::from_nanos(p[1] - p[0]))
        .max()
        .unwrap_or_default();
    println!(
        "flood: {probes} /readyz answered 200 in {flood:?} ({:.0}/s); {} renewals, longest gap {longest:?} (retry period {RETRY:?})",
        probes as f64 / flood.as_secs_f64(),
        renewals.len()
    );
    assert!(probes > 0, "the flood reached the leader");
    // Generous bound: a renewal every retry period, never a gap near the renew deadline.
    assert!(
        renewals.len() as u32 + 2 >= (flood.as_millis() / RETRY.as_millis()) as u32 / 2,
        "only {} renewals in {flood:?}",
        renewals.len()
    );
    assert!(
        longest < RENEW_DEADLINE,
        "a renewal came {longest:?} after the one before, under the flood; the renew deadline is {RENEW_DEADLINE:?}"
    );
    assert!(
        a.log_messages("stopped leading").is_empty(),
        "the leader lost its claim under the flood:\n{}",
        a.dump_logs()
    );
}
