//! The real kubectl against kube-sim: discovery, OpenAPI (kubectl's strict validation), server-side
//! tables, create from a manifest, get, `-o jsonpath`, annotate, patch, `get --watch` and delete.
//! Each command's output is checked against what kubectl prints for a real API server, and the
//! simulator's stored objects against what the command asked for.
//!
//! kubectl must be installed (`scripts/install-tools.sh`); outside CI a missing kubectl skips
//! these tests with a note, under `CI=true` it fails them.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use std::io::Write;

use kube_elector_harness::tools::{Need, installed_or_skip, need};
use kube_sim::{Sim, SimOptions};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const LEASE: &str = "apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: demo
  namespace: default
spec:
  holderIdentity: pod-a
  leaseDurationSeconds: 15
";

/// Generous: a kubectl command takes well under a second here.
const DEADLINE: Duration = Duration::from_secs(20);

/// kubectl before 1.27 validates `create -f` on the client against a protobuf OpenAPI v2 schema,
/// which kube-sim does not serve; 1.27+ leaves it to the server (`fieldValidation`).
const MIN_MINOR: u64 = 27;

fn have_kubectl() -> bool {
    if !installed_or_skip("kubectl", "scripts/install-tools.sh") {
        return false;
    }
    let minor = std::process::Command::new("kubectl")
        .args(["version", "--client", "-o", "json"])
        .output()
        .ok()
        .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
        .and_then(|v| {
            v["clientVersion"]["minor"]
                .as_str()
                .and_then(|m| m.trim_end_matches('+').parse::<u64>().ok())
        });
    let shown = minor.map_or("?".into(), |m| m.to_string());
    let ci = std::env::var("CI").ok();
    match need(minor.is_some_and(|m| m >= MIN_MINOR), ci.as_deref()) {
        Need::Run => true,
        Need::Skip => {
            let _ = writeln!(
                std::io::stderr(),
                "skipping: kubectl 1.{shown} is older than 1.{MIN_MINOR}; CI=true makes it mandatory"
            );
            false
        }
        Need::Fail => panic!(
            "kubectl 1.{shown} is older than 1.{MIN_MINOR}, which these tests need (server-side field validation)"
        ),
    }
}

struct Kubectl {
    sim: Sim,
    dir: PathBuf,
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Kubectl {
    async fn start() -> Self {
        let sim = Sim::start(SimOptions::new(["a"])).await.expect("kube-sim starts");
        let dir = sim
            .kubeconfig_path("a")
            .parent()
            .expect("the kubeconfig is in a directory")
            .to_path_buf();
        Self { sim, dir }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(self.sim.kubeconfig_path("a"))
            .arg("--cache-dir")
            .arg(self.dir.join("cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .env("HOME", &self.dir)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    async fn run(&self, args: &[&str]) -> Out {
        let out = tokio::time::timeout(DEADLINE, self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish within {DEADLINE:?}"))
            .expect("kubectl runs");
        Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs a command that must succeed; returns its stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.ok,
            "kubectl {args:?} failed:\nstdout: {}\nstderr: {}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    fn manifest(&self, name: &str, text: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, text).expect("manifest written");
        path.display().to_string()
    }

    async fn create_lease(&self) {
        let file = self.manifest("lease.yaml", LEASE);
        let out = self.ok(&["create", "-f", &file]).await;
        assert_eq!(out.trim(), "lease.coordination.k8s.io/demo created");
    }

    /// The stored object, as kube-sim holds it.
    fn stored(&self, kind: &str, name: &str) -> Option<Value> {
        self.sim
            .objects()
            .into_iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }
}

/// Columns of a printed table row.
fn columns(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_from_a_manifest_then_get_prints_the_servers_table() {
    if !have_kubectl() {
        return;
    }
    let k = Kubectl::start().await;
    k.create_lease().await;
    let stored = k.stored("Lease", "demo").expect("the Lease is stored");
    assert_eq!(stored["spec"]["holderIdentity"], "pod-a");
    assert_eq!(stored["spec"]["leaseDurationSeconds"], 15);

    let out = k.ok(&["get", "lease"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "a header and one row: {out}");
    assert_eq!(
        columns(lines[0]),
        ["NAME", "HOLDER", "AGE"],
        "the server's Lease columns: {out}"
    );
    let row = columns(lines[1]);
    assert_eq!(row[..2], ["demo", "pod-a"], "{out}");
    assert!(row[2].ends_with('s'), "an age in seconds: {out}");

    let out = k.ok(&["get", "configmap"]).await;
    assert!(out.is_empty(), "no ConfigMaps: {out}");

    // Discovery lists what kube-sim serves, with short names.
    let out = k.ok(&["api-resources", "--no-headers"]).await;
    let leases = out.lines().map(columns).find(|c| c[0] == "leases");
    assert_eq!(
        leases,
        Some(vec!["leases", "coordination.k8s.io/v1", "true", "Lease"]),
        "{out}"
    );
    let out = k.ok(&["get", "cm", "-n", "kube-system"]).await;
    assert!(out.is_empty(), "`cm` resolves to configmaps: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_configmap_sends_protobuf_and_is_stored() {
    if !have_kubectl() {
        return;
    }
    let k = Kubectl::start().await;
    // kubectl's typed generators post `application/vnd.kubernetes.protobuf` bodies.
    let out = k
        .ok(&[
            "create",
            "configmap",
            "settings",
            "--from-literal=mode=fast",
            "--from-literal=size=3",
        ])
        .await;
    assert_eq!(out.trim(), "configmap/settings created");
    let stored = k.stored("ConfigMap", "settings").expect("stored");
    assert_eq!(
        stored["data"],
        serde_json::json!({"mode": "fast", "size": "3"}),
        "{stored}"
    );
    assert_eq!(stored["metadata"]["namespace"], "default");
    let out = k.ok(&["get", "cm", "settings", "--no-headers"]).await;
    assert_eq!(
        columns(&out)[..2],
        ["settings", "2"],
        "the Data column counts the keys: {out}"
    );
    // A server-side dry run is refused, not carried out for real.
    let out = k.run(&["delete", "cm", "settings", "--dry-run=server"]).await;
    assert!(
        !out.ok && out.stderr.contains("kube-sim does not serve dry runs"),
        "{}",
        out.stderr
    );
    assert!(
        k.stored("ConfigMap", "settings").is_some(),
        "a dry run deleted the ConfigMap"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_validation_rejects_an_unknown_field() {
    if !have_kubectl() {
        return;
    }
    let k = Kubectl::start().await;
    let file = k.manifest(
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: b\nbogus: 1\n",
    );
    let out = k.run(&["create", "-f", &file]).await;
    assert!(!out.ok, "created despite an unknown field: {}", out.stdout);
    assert!(
        out.stderr
            .contains(r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "bogus""#),
        "{}",
        out.stderr
    );
    assert_eq!(k.stored("ConfigMap", "c"), None);
    // With validation relaxed to warnings, the field is dropped and kubectl prints the warning.
    let out = k.run(&["create", "-f", &file, "--validate=warn"]).await;
    assert!(out.ok, "{}", out.stderr);
    assert!(out.stderr.contains(r#"unknown field "bogus""#), "{}", out.stderr);
    let stored = k.stored("ConfigMap", "c").expect("stored");
    assert_eq!(stored.get("bogus"), None);
    assert_eq!(stored["data"]["a"], "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_jsonpath_reads_the_stored_object() {
    if !have_kubectl() {
        return;
    }
    let k = Kubectl::start().await;
    k.create_lease().await;
    let stored = k.stored("Lease", "demo").expect("stored");
    let out = k
        .ok(&[
            "get",
            "lease",
            "demo",
            "-o",
            "jsonpath={.spec.holderIdentity} {.metadata.resourceVersion} {.metadata.uid}",
        ])
        .await;
    let want = format!(
        "pod-a {} {}",
        stored["metadata"]["resourceVersion"].as_str().unwrap_or("?"),
        stored["metadata"]["uid"].as_str().unwrap_or("?")
    );
    assert_eq!(out, want);
    let out = k.run(&["get", "lease", "missing"]).await;
    assert!(!out.ok);
    assert!(
        out.stderr
            .contains(r#"Error from server (NotFound): leases.coordination.k8s.io "missing" not found"#),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotate_label_and_patch_change_the_stored_object() {
    if !have_kubectl() {
        return;
    }
    let k = Kubectl::start().await;
    k.create_lease().await;
    let out = k.ok(&["annotate", "lease", "demo", "team=infra"]).await;
    assert_eq!(out.trim(), "lease.coordination.k8s.io/demo annotated");
    let out = k.ok(&["label", "lease", "demo", "tier=control"]).await;
    assert_eq!(out.trim(), "lease.coordination.k8s.io/demo labeled");
    // `kubectl patch` sends a strategic merge patch by default.
    let out = k
        .ok(&[
            "patch",
            "lease",
            "demo",
            "-p",
            r#"{"spec":{"holderIdentity":"pod-b"}}"#,
        ])
        .await;
    assert_eq!(out.trim(), "lease.coordination.k8s.io/demo patched");
    let out = k
        .ok(&[
            "patch",
            "lease",
            "demo",
            "--type=merge",
            "-p",
            r#"{"metadata":{"annotations":{"team":null}}}"#,
        ])
        .await;
    assert_eq!(out.trim(), "lease.coordination.k8s.io/demo patched");
    let stored = k.stored("Lease", "demo").expect("stored");
    assert_eq!(stored["metadata"]["labels"]["tier"], "control", "{stored}");
    assert_eq!(
        stored["metadata"]["annotations"].get("team"),
        None,
        "removed by the merge patch: {stored}"
    );
    assert_eq!(stored["spec"]["holderIdentity"], "pod-b", "{stored}");
    assert_eq!(
        stored["spec"]["leaseDurationSeconds"], 15,
        "kept by the patches: {stored}"
    );
    // Annotating again without --overwrite is refused by kubectl from what it read back.
    k.ok(&["annotate", "lease", "demo", "team=infra"]).await;
    let out = k.run(&["annotate", "lease", "demo", "team=other"]).await;
    assert!(
        !out.ok && out.stderr.contains("already has a value (infra)"),
        "{}",
        out.stderr
    );
}

/// Reads `kubectl get -w` lines into `seen` until a row for `demo` held by `holder`.
async fn read_until(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    seen: &mut Vec<String>,
    holder: &str,
) {
    let found = tokio::time::timeout(DEADLINE, async {
        while let Ok(Some(line)) = lines.next_line().await {
            let hit = columns(&line).get(..2) == Some(&["demo", holder][..]);
            seen.push(line);
            if hit {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        found,
        Ok(true),
        "no row with holder {holder}; kubectl printed {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_prints_a_row_per_change() {
    if !have_kubectl() {
        return;
    }
    let k = Kubectl::start().await;
    k.create_lease().await;
    let mut child = k
        .command(&["get", "lease", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl get -w starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    read_until(&mut lines, &mut seen, "pod-a").await;
    assert_eq!(columns(&seen[0]), ["NAME", "HOLDER", "AGE"], "{seen:?}");
    // A change made by another client arrives as a new row.
    k.ok(&[
        "patch",
        "lease",
        "demo",
        "--type=merge",
        "-p",
        r#"{"spec":{"holderIdentity":"pod-b"}}"#,
    ])
    .await;
    read_until(&mut lines, &mut seen, "pod-b").await;
    child.kill().await.expect("kubectl get -w stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_the_object() {
    if !have_kubectl() {
        return;
    }
    let k = Kubectl::start().await;
    k.create_lease().await;
    let out = k.ok(&["delete", "lease", "demo"]).await;
    assert_eq!(out.trim(), r#"lease.coordination.k8s.io "demo" deleted"#);
    assert_eq!(k.stored("Lease", "demo"), None);
    let out = k.run(&["delete", "lease", "demo"]).await;
    assert!(!out.ok);
    assert!(
        out.stderr
            .contains(r#"Error from server (NotFound): leases.coordination.k8s.io "demo" not found"#),
        "{}",
        out.stderr
    );
    let out = k.run(&["delete", "lease", "demo", "--ignore-not-found"]).await;
    assert!(out.ok && out.stdout.is_empty(), "{} {}", out.stdout, out.stderr);
}
