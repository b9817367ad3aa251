//! The election: timing model, lock kinds, the pure decision function and the loop that drives it.
//!
//! - `timing`: client-go's lease duration / renew deadline / retry period, validated.
//! - `record`: the leader record a lock object holds, read leniently and totally.
//! - `incarnation`: who this process is beyond its identity, and when a record is its own.
//! - `candidacy`: whether this process may stand for election now (an input set from outside).
//! - `decide`: what to do next, as a pure function of (observed record, when, now).
//! - `lock`: the three lock kinds behind one trait, and the API calls on them.
//! - `pacing`: backoff after failures, `Retry-After`, the time one call may take.
//! - `takeover`: the followers' takeover delays, which keep a handover to about one write.
//! - `state`: the election's state, advanced synchronously: observations, write outcomes, timers.
//! - `driver`: the thin async shell: I/O, timers, channels; carries out the state's effects.
//! - `watch`: the watch on the lock, and why it is not kube-runtime's `watch_object`.
//! - `events`: "became leader" / "stopped leading" Kubernetes Events (recorded with the `events`
//!   feature).

pub(crate) mod candidacy;
pub(crate) mod decide;
pub(crate) mod driver;
pub(crate) mod events;
pub(crate) mod incarnation;
pub(crate) mod lock;
pub(crate) mod pacing;
pub(crate) mod record;
pub(crate) mod state;
pub(crate) mod takeover;
mod timing;
pub(crate) mod watch;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints};

pub use candidacy::{Candidacy, CandidacySender};
pub(crate) use driver::{Driver, Settings};
pub use driver::{GateOpener, ReleaseGate};
pub use timing::{Error as TimingError, JITTER_FACTOR, Timing};

use crate::clock::WallClock;
use crate::metrics::ElectionMetrics;
use crate::status::StateSender;

/// Where the election takes place.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// The kind of object that holds the lock.
    pub lock_type: LockType,
    /// The namespace the lock object lives in.
    pub namespace: String,
    /// The election's name, which is the lock object's name.
    pub name: String,
}

/// Runs the election on `target` until `shutdown` completes, then releases (see [`Driver::run`]);
/// records Events with `recorder` when given.
pub(crate) async fn run(
    client: kube::Client,
    target: &Target,
    settings: Settings,
    recorder: Option<events::Recorder>,
    state: StateSender,
    metrics: ElectionMetrics,
    shutdown: impl Future<Output = ()>,
) {
    match target.lock_type {
        LockType::Leases => {
            drive::<Lease>(client, target, settings, recorder, state, metrics, shutdown).await
        }
        LockType::Configmaps => {
            drive::<ConfigMap>(client, target, settings, recorder, state, metrics, shutdown).await
        }
        LockType::Endpoints => {
            drive::<Endpoints>(client, target, settings, recorder, state, metrics, shutdown).await
        }
    }
}

async fn drive<K: lock::LockObject>(
    client: kube::Client,
    target: &Target,
    settings: Settings,
    recorder: Option<events::Recorder>,
    state: StateSender,
    metrics: ElectionMetrics,
    shutdown: impl Future<Output = ()>,
) {
    let lock = lock::KubeLock::<K>::new(client, &target.namespace, &target.name, metrics.clone());
    Driver::new(lock, settings, WallClock::system(), state, metrics, recorder)
        .run(shutdown)
        .await;
}

/// Which kind of object holds the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockType {
    /// `coordination.k8s.io/v1` Lease (the default).
    #[default]
    Leases,
    /// Core v1 ConfigMap with client-go's record in the `control-plane.alpha.kubernetes.io/leader` annotation.
    Configmaps,
    /// Core v1 Endpoints with the same annotation.
    Endpoints,
}

/// How followers learn about changes to the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FollowMode {
    /// Watch the lock object; act the moment it is released or expires (the default).
    #[default]
    Watch,
    /// Poll every jittered retry period, as client-go does.
    Poll,
}

impl LockType {
    /// Every lock kind, in the order `--lock-type` offers them.
    pub const ALL: [LockType; 3] = [LockType::Leases, LockType::Configmaps, LockType::Endpoints];

    /// The kind's plural API name, as given to `--lock-type`: `leases`, `configmaps`, `endpoints`.
    pub fn as_str(self) -> &'static str {
        match self {
            LockType::Leases => "leases",
            LockType::Configmaps => "configmaps",
            LockType::Endpoints => "endpoints",
        }
    }
}

impl FollowMode {
    /// The name as given to `--follow`: `watch` or `poll`.
    pub fn as_str(self) -> &'static str {
        match self {
            FollowMode::Watch => "watch",
            FollowMode::Poll => "poll",
        }
    }
}

impl std::fmt::Display for LockType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for FollowMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
