//! The election as a library: build an [`Elector`] from a [`kube::Client`], a [`Lock`] and an
//! identity, run it as a future or a spawned task, and watch its [`LeaderState`].
//!
//! This is the surface the sidecar binary itself uses to start its election; everything here is
//! covered by the crate's semver promise. See the [crate documentation](crate) for the algorithm
//! and its limits.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::election::events::Recorder;
use crate::election::{self, Candidacy, LockType, ReleaseGate, Settings, Target, Timing, TimingError};
use crate::metrics::ElectionMetrics;
use crate::status::{self, StateReceiver, StateSender};

pub use crate::election::FollowMode;
pub use crate::status::LeaderState;

/// The object that holds the lock: its kind, namespace and name (the election's name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lock {
    kind: LockType,
    namespace: String,
    name: String,
}

impl Lock {
    /// A `coordination.k8s.io/v1` Lease `name` in `namespace` (the recommended kind).
    ///
    /// ```
    /// use kube_elector::{Lock, LockType};
    ///
    /// let lock = Lock::lease("operators", "my-operator");
    /// assert_eq!((lock.kind(), lock.namespace(), lock.name()), (LockType::Leases, "operators", "my-operator"));
    /// assert_eq!(Lock::config_map("ns", "x").kind().as_str(), "configmaps");
    /// assert_eq!(Lock::endpoints("ns", "x").kind(), LockType::Endpoints);
    /// ```
    pub fn lease(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self::of_kind(LockType::Leases, namespace, name)
    }

    /// A core v1 ConfigMap holding client-go's record in the
    /// `control-plane.alpha.kubernetes.io/leader` annotation.
    pub fn config_map(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self::of_kind(LockType::Configmaps, namespace, name)
    }

    /// A core v1 Endpoints object holding the record in the same annotation as
    /// [`Lock::config_map`].
    pub fn endpoints(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self::of_kind(LockType::Endpoints, namespace, name)
    }

    /// A lock of `kind` (what `--lock-type` names).
    pub fn of_kind(kind: LockType, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The kind of object.
    pub fn kind(&self) -> LockType {
        self.kind
    }

    /// The namespace the object lives in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The object's name, which is the election's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Why [`ElectorBuilder::build`] refused its settings. Each message names the field and the fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The timings break one of the rules the CLI also enforces (see [`Timing::new`]).
    #[error(transparent)]
    Timing(#[from] TimingError),
    /// The identity is empty.
    #[error("identity must not be empty; use e.g. the pod name")]
    EmptyIdentity,
    /// The lock's name is empty.
    #[error(
        "lock name must not be empty; use the election's name, e.g. Lock::lease(\"default\", \"my-app\")"
    )]
    EmptyLockName,
    /// The lock's namespace is empty.
    #[error("lock namespace must not be empty; use e.g. Lock::lease(\"default\", \"my-app\")")]
    EmptyNamespace,
}

/// Builds an [`Elector`]; see [`Elector::builder`]. Every setting but the client, the lock and
/// the identity has the sidecar's default.
pub struct ElectorBuilder {
    client: kube::Client,
    lock: Lock,
    identity: String,
    timing: (Duration, Duration, Duration),
    pod_uid: Option<String>,
    advertise_address: Option<String>,
    follow: FollowMode,
    release_on_shutdown: bool,
    shutdown_timeout: Duration,
    release_delay: Duration,
    release_gate: ReleaseGate,
    candidacy: Candidacy,
    step_down_gate: ReleaseGate,
    #[cfg(feature = "events")]
    events: bool,
    metrics: Option<ElectionMetrics>,
    state: (StateSender, StateReceiver),
}

impl std::fmt::Debug for ElectorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElectorBuilder")
            .field("lock", &self.lock)
            .field("identity", &self.identity)
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

impl ElectorBuilder {
    /// Lease duration, renew deadline and retry period (default 15s, 10s, 2s, as client-go).
    /// Checked by [`Self::build`] with the CLI's rules ([`Timing::new`]).
    pub fn timing(
        mut self,
        lease_duration: Duration,
        renew_deadline: Duration,
        retry_period: Duration,
    ) -> Self {
        self.timing = (lease_duration, renew_deadline, retry_period);
        self
    }

    /// This pod's UID, which tells a restarted process under the same identity from the one
    /// before it (default none: the identity and the start time are used).
    pub fn pod_uid(mut self, uid: impl Into<String>) -> Self {
        self.pod_uid = Some(uid.into());
        self
    }

    /// An address (`HOST:PORT`) at which the other replicas reach this process, published in
    /// the lock with every claim (the `kube-elector.io/leader-address` annotation, written in
    /// the same conditional write) and seen by every candidate as
    /// [`LeaderState::leader_address`](crate::LeaderState::leader_address). The sidecar's
    /// leader-forwarding proxy sends followers' requests there. Default none: nothing is
    /// published.
    pub fn advertise_address(mut self, address: impl Into<String>) -> Self {
        self.advertise_address = Some(address.into());
        self
    }

    /// How followers learn of changes to the lock (default [`FollowMode::Watch`]).
    pub fn follow(mut self, follow: FollowMode) -> Self {
        self.follow = follow;
        self
    }

    /// Whether a leader that shuts down writes an empty holder so another takes over at once
    /// (default true).
    pub fn release_on_shutdown(mut self, release: bool) -> Self {
        self.release_on_shutdown = release;
        self
    }

    /// Upper bound on the whole shutdown: gate, delay, release (default 10s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// How long after stepping down the release is written, for the application to notice
    /// (default 0).
    pub fn release_delay(mut self, delay: Duration) -> Self {
        self.release_delay = delay;
        self
    }

    /// A gate the release at shutdown waits for, e.g. until the caller has stopped acting as
    /// leader (default open).
    pub fn release_gate(mut self, gate: ReleaseGate) -> Self {
        self.release_gate = gate;
        self
    }

    /// Whether this process may stand for election, set from outside (default always).
    pub fn candidacy(mut self, candidacy: Candidacy) -> Self {
        self.candidacy = candidacy;
        self
    }

    /// The gate a leader withdrawn from candidacy waits for before releasing (default open).
    pub fn step_down_gate(mut self, gate: ReleaseGate) -> Self {
        self.step_down_gate = gate;
        self
    }

    /// Records "became leader" / "stopped leading" Kubernetes Events in the lock's namespace
    /// (default false; needs `create` on `events`).
    #[cfg(feature = "events")]
    #[cfg_attr(docsrs, doc(cfg(feature = "events")))]
    pub fn events(mut self, record: bool) -> Self {
        self.events = record;
        self
    }

    /// Counts into these metric handles (default: handles registered nowhere).
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn metrics(mut self, metrics: ElectionMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Registers the election's metrics (client-go's `leader_election_*` and `elector_*`,
    /// labelled with the election and namespace) in the caller's registry and counts into them.
    ///
    /// ```
    /// use kube_elector::{Elector, Lock};
    /// use prometheus_client::registry::Registry;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let client = kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
    /// let mut registry = Registry::default();
    /// let _elector = Elector::builder(client, Lock::lease("default", "app"), "pod-a")
    ///     .register_metrics(&mut registry)
    ///     .build()
    ///     .unwrap();
    /// let mut text = String::new();
    /// prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    /// assert!(text.contains(r#"leader_election_master_status{election="app",namespace="default",name="app"} 0"#), "{text}");
    /// # }
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn register_metrics(self, registry: &mut prometheus_client::registry::Registry) -> Self {
        let metrics = ElectionMetrics::register(registry, &self.lock.name, &self.lock.namespace);
        self.metrics(metrics)
    }

    /// A receiver of the state the elector will publish, for parts that must exist before the
    /// elector is built (the sidecar's outputs); the same channel as [`Elector::subscribe`].
    pub fn subscribe(&self) -> StateReceiver {
        self.state.1.clone()
    }

    /// Checks the settings (errors name the field and the fix); nothing is sent to the API
    /// server until [`Elector::run`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use kube_elector::{Elector, Error, Lock, Timing, TimingError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// // No request is made while building: a client for an address nothing listens on will do.
    /// let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
    /// let client = kube::Client::try_from(config).unwrap();
    ///
    /// let elector = Elector::builder(client.clone(), Lock::lease("default", "app"), "pod-a")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(elector.timing(), Timing::DEFAULT);
    /// assert_eq!(elector.fencing_token(), None);
    ///
    /// let error = Elector::builder(client, Lock::lease("default", "app"), "pod-a")
    ///     .timing(Duration::from_secs(15), Duration::from_secs(10), Duration::from_millis(5))
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(error, Error::Timing(TimingError::RetryPeriodTooShort { .. })));
    /// assert!(error.to_string().contains("retry-period"));
    /// # }
    /// ```
    pub fn build(self) -> Result<Elector, Error> {
        if self.identity.is_empty() {
            return Err(Error::EmptyIdentity);
        }
        if self.lock.name.is_empty() {
            return Err(Error::EmptyLockName);
        }
        if self.lock.namespace.is_empty() {
            return Err(Error::EmptyNamespace);
        }
        let (lease, renew, retry) = self.timing;
        let timing = Timing::new(lease, renew, retry)?;
        let metrics = self.metrics.unwrap_or_default();
        #[cfg(feature = "events")]
        let recorder = self.events.then(|| {
            Recorder::new(
                self.client.clone(),
                &self.lock.namespace,
                &self.identity,
                metrics.clone(),
                timing.renew_deadline,
            )
        });
        #[cfg(not(feature = "events"))]
        let recorder: Option<Recorder> = None;
        let target = Target {
            lock_type: self.lock.kind,
            namespace: self.lock.namespace,
            name: self.lock.name,
        };
        let settings = Settings {
            identity: self.identity,
            pod_uid: self.pod_uid,
            advertise_address: self.advertise_address,
            timing,
            follow: self.follow,
            release_on_shutdown: self.release_on_shutdown,
            shutdown_timeout: self.shutdown_timeout,
            release_delay: self.release_delay,
            release_gate: self.release_gate,
            candidacy: self.candidacy,
            step_down_gate: self.step_down_gate,
        };
        Ok(Elector {
            client: self.client,
            target,
            settings,
            recorder,
            metrics,
            state: self.state.0,
        })
    }
}

/// One candidate in one election. Build with [`Elector::builder`]; run with [`Elector::run`] or
/// [`Elector::spawn`].
pub struct Elector {
    client: kube::Client,
    target: Target,
    settings: Settings,
    recorder: Option<Recorder>,
    metrics: ElectionMetrics,
    state: StateSender,
}

impl std::fmt::Debug for Elector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elector")
            .field("target", &self.target)
            .field("settings", &self.settings)
            .field("events", &self.recorder.is_some())
            .finish_non_exhaustive()
    }
}

impl Elector {
    /// A builder for candidate `identity` on `lock`, using `client` for every API call.
    pub fn builder(client: kube::Client, lock: Lock, identity: impl Into<String>) -> ElectorBuilder {
        let identity = identity.into();
        let state = status::channel(identity.clone());
        ElectorBuilder {
            client,
            lock,
            identity,
            timing: (
                Timing::DEFAULT.lease_duration,
                Timing::DEFAULT.renew_deadline,
                Timing::DEFAULT.retry_period,
            ),
            pod_uid: None,
            advertise_address: None,
            follow: FollowMode::Watch,
            release_on_shutdown: true,
            shutdown_timeout: Duration::from_secs(10),
            release_delay: Duration::ZERO,
            release_gate: ReleaseGate::default(),
            candidacy: Candidacy::always(),
            step_down_gate: ReleaseGate::default(),
            #[cfg(feature = "events")]
            events: false,
            metrics: None,
            state,
        }
    }

    /// The validated timings.
    pub fn timing(&self) -> Timing {
        self.settings.timing
    }

    /// A receiver of every state the elector publishes. Ask it
    /// [`LeaderState::is_leader_now`] at the moment of acting: the answer is computed then, not
    /// stored.
    pub fn subscribe(&self) -> StateReceiver {
        self.state.subscribe()
    }

    /// The fencing token while this process leads now, else `None`.
    pub fn fencing_token(&self) -> Option<u64> {
        self.state.borrow().fencing_token_now()
    }

    /// Runs the election until `shutdown` completes, then steps down (published at once),
    /// waits for the release gate and delay, releases the lock if it holds it, and returns.
    /// Losing the election or failing API calls are never errors: the loop competes again.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        election::run(
            self.client,
            &self.target,
            self.settings,
            self.recorder,
            self.state,
            self.metrics,
            shutdown,
        )
        .await
    }

    /// Runs the election on a task of the current Tokio runtime until
    /// [`ElectorHandle::shutdown`] is called or the handle is dropped.
    pub fn spawn(self) -> ElectorHandle {
        let state = self.subscribe();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(self.run(async move {
            // A send or a dropped sender: either way, shut down.
            let _ = stop_rx.await;
        }));
        ElectorHandle {
            stop: Some(stop_tx),
            task,
            state,
        }
    }
}

/// A running [`Elector`] on its own task. Dropping it shuts the election down in the
/// background (step down, release); [`Self::shutdown`] does the same and waits for it.
#[derive(Debug)]
pub struct ElectorHandle {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: JoinHandle<()>,
    state: StateReceiver,
}

impl ElectorHandle {
    /// A receiver of every state the elector publishes.
    pub fn subscribe(&self) -> StateReceiver {
        self.state.clone()
    }

    /// The fencing token while this process leads now, else `None`.
    pub fn fencing_token(&self) -> Option<u64> {
        self.state.borrow().fencing_token_now()
    }

    /// Steps down, releases (within the shutdown timeout) and waits for the task to finish.
    ///
    /// Cancellation-safe: the stop is sent before the first await, so dropping this future
    /// midway leaves the release running to completion on its task.
    ///
    /// ```
    /// use kube_elector::{Elector, Lock};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// // An API server that refuses connections: the elector keeps trying, never leads.
    /// let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
    /// let client = kube::Client::try_from(config).unwrap();
    /// let elector = Elector::builder(client, Lock::lease("default", "app"), "pod-a").build().unwrap();
    /// let mut state = elector.subscribe();
    /// let handle = elector.spawn();
    /// // The loop publishes its failed attempt.
    /// state.wait_for(|s| s.last_error.is_some()).await.unwrap();
    /// assert!(!state.borrow().is_leader_now());
    /// handle.shutdown().await.unwrap();
    /// assert!(state.borrow().shutting_down);
    /// # }
    /// ```
    pub async fn shutdown(mut self) -> Result<(), tokio::task::JoinError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await
    }
}

impl Drop for ElectorHandle {
    fn drop(&mut self) {
        // Dropping the sender ends the shutdown future; the task finishes the release on its own.
        self.stop.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> kube::Client {
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("a valid URL"));
        kube::Client::try_from(config).expect("a client from a plain-HTTP config")
    }

    #[tokio::test]
    async fn build_refuses_what_the_cli_refuses_naming_the_field() {
        let bad = Elector::builder(client(), Lock::lease("default", "app"), "a")
            .timing(
                Duration::from_secs(10),
                Duration::from_secs(10),
                Duration::from_secs(2),
            )
            .build()
            .expect_err("lease == renew deadline is refused");
        assert!(matches!(
            bad,
            Error::Timing(TimingError::LeaseNotAboveRenewDeadline { .. })
        ));
        assert!(bad.to_string().contains("lease-duration"), "{bad}");
        let empty = Elector::builder(client(), Lock::config_map("default", ""), "a")
            .build()
            .expect_err("an empty name is refused");
        assert_eq!(empty, Error::EmptyLockName);
        let no_id = Elector::builder(client(), Lock::endpoints("default", "app"), "")
            .build()
            .expect_err("an empty identity is refused");
        assert_eq!(no_id, Error::EmptyIdentity);
    }

    #[tokio::test]
    async fn the_builders_receiver_sees_the_elector_channel() {
        let builder = Elector::builder(client(), Lock::lease("ns", "app"), "me");
        let early = builder.subscribe();
        let elector = builder.build().expect("defaults are valid");
        assert_eq!(elector.timing(), Timing::DEFAULT);
        assert_eq!(early.borrow().identity, "me");
        assert!(elector.fencing_token().is_none());
        elector
            .state
            .send_modify(|state| state.identity = "changed".into());
        assert_eq!(
            early.borrow().identity,
            "changed",
            "one channel, built before the elector"
        );
    }
}
