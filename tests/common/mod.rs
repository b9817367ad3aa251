//! Test bed for end-to-end tests: the simulator in-process, real `kube-elector` processes.
#![allow(dead_code)]

pub use kube_elector_harness::*;
use kube_sim::{Sim, SimOptions};

/// Starts a simulator with these clients.
pub async fn sim(clients: &[&str]) -> Sim {
    Sim::start(SimOptions::new(clients.iter().copied()))
        .await
        .expect("simulator starts")
}

/// Starts this package's `kube-elector` binary as `id`.
pub async fn elector(sim: &Sim, id: &str, extra: &[&str]) -> Elector {
    Elector::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_kube-elector")),
        sim,
        id,
        extra,
    )
    .await
}

/// Like [`elector`], with extra environment variables (e.g. `RUST_LOG`).
pub async fn elector_with_env(sim: &Sim, id: &str, extra: &[&str], env: &[(&str, &str)]) -> Elector {
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Elector::start_with_env(
        std::path::Path::new(env!("CARGO_BIN_EXE_kube-elector")),
        sim,
        id,
        extra,
        &env,
    )
    .await
}

/// One applied write to the lock named `test`, from the simulator's write log.
#[derive(Clone, Debug)]
pub struct LockWrite {
    pub seq: u64,
    /// CLOCK_MONOTONIC when the simulator applied it.
    pub monotonic_ns: u64,
    pub client: String,
    /// The holder the write left in the record; empty for a release.
    pub holder: String,
    pub transitions: i64,
}

/// The applied writes to the lock `test` of this plural resource (`leases`, `configmaps`,
/// `endpoints`), reading the Lease spec or client-go's leader annotation.
pub fn lock_writes(sim: &Sim, resource: &str) -> Vec<LockWrite> {
    sim.writes()
        .into_iter()
        .filter(|w| w.resource == resource && w.name == "test")
        .map(|w| {
            let record = if resource == "leases" {
                w.object["spec"].clone()
            } else {
                w.object["metadata"]["annotations"]["control-plane.alpha.kubernetes.io/leader"]
                    .as_str()
                    .and_then(|a| serde_json::from_str(a).ok())
                    .unwrap_or_default()
            };
            let transitions = record["leaseTransitions"]
                .as_i64()
                .or_else(|| record["leaderTransitions"].as_i64())
                .unwrap_or_default();
            LockWrite {
                seq: w.seq,
                monotonic_ns: w.monotonic_ns,
                client: w.client.clone(),
                holder: record["holderIdentity"].as_str().unwrap_or_default().to_owned(),
                transitions,
            }
        })
        .collect()
}

/// Asserts that `old` released the lock as its last write and that another candidate's takeover
/// was applied within `within` of the release, both read from the simulator's write log (its
/// clock): a release is acted on at once, not when the lease would have expired.
pub fn assert_prompt_takeover(
    sim: &Sim,
    resource: &str,
    old: &str,
    within: std::time::Duration,
) -> LockWrite {
    let writes = lock_writes(sim, resource);
    let release = writes
        .iter()
        .rposition(|w| w.client == old)
        .unwrap_or_else(|| panic!("{old} never wrote the {resource} lock: {writes:?}"));
    assert_eq!(
        writes[release].holder, "",
        "{old}'s last write must release the lock: {:?}",
        writes[release]
    );
    let takeover = writes[release + 1..]
        .iter()
        .find(|w| !w.holder.is_empty())
        .unwrap_or_else(|| panic!("nobody took over after {old}'s release: {writes:?}"));
    assert_eq!(
        takeover.client, takeover.holder,
        "a takeover is written by its holder: {takeover:?}"
    );
    let gap =
        std::time::Duration::from_nanos(takeover.monotonic_ns.saturating_sub(writes[release].monotonic_ns));
    assert!(
        gap <= within,
        "the takeover came {gap:?} after the release; a release must be acted on within {within:?} \
         (waiting out the lease would take {:?})",
        LEASE
    );
    takeover.clone()
}

/// A `kube` client for the simulator's client `name`, for a test that writes the lock itself
/// (another writer than the electors).
pub async fn outside_client(sim: &Sim, name: &str) -> kube::Client {
    let kubeconfig =
        kube::config::Kubeconfig::read_from(sim.kubeconfig_path(name)).expect("kubeconfig reads");
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
            .await
            .expect("kubeconfig is usable");
    kube::Client::try_from(config).expect("client builds")
}

/// A directory of this test process, removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// A fresh, empty `kube-elector-test-NAME-PID` under the system temp dir.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("kube-elector-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
