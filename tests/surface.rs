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
        content.trim(),
        electors[first].id,
        "the file holds the leader's identity"
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
