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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_configuration_exits_2_before_touching_the_api() {
    let sim = sim(&["a"]).await;
    let kubeconfig = sim.kubeconfig_path("a");
    let kubeconfig = kubeconfig.to_str().expect("utf-8 path");
    let cases: [(&[&str], &str); 5] = [
        (
            &["--kubeconfig", kubeconfig, "--lock-type", "zookeeper"],
            "lock-type",
        ),
        (
            &["--kubeconfig", kubeconfig, "--renew-deadline", "20s"],
            "renew-deadline",
        ),
        (
            &["--kubeconfig", kubeconfig, "--lease-duration", "15"],
            "lease-duration",
        ),
        (&["--kubeconfig", kubeconfig, "--election", ""], "election"),
        (&["--kubeconfig", "/nonexistent/kubeconfig"], "kubeconfig"),
    ];
    for (extra, field) in cases {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_kube-elector"))
            .env_clear()
            .args(["--election", "test", "--id", "a", "--http", "127.0.0.1:0"])
            .args(extra)
            .output()
            .await
            .expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{extra:?}: exit code; stderr: {stderr}"
        );
        assert!(
            stderr.contains(field),
            "{extra:?}: the message names {field}: {stderr}"
        );
    }
    assert!(
        sim.requests().values().all(|c| c.is_empty()),
        "nothing reached the API: {:?}",
        sim.requests()
    );
}
