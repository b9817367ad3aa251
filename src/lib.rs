//! Leader election for Kubernetes, as a library and as a sidecar.
//!
//! A Rust program embeds the election with [`Elector`]; the `kube-elector` sidecar binary is
//! built on the same public API. One candidate per process competes for a lock object (a
//! `coordination.k8s.io/v1` Lease, or a ConfigMap or Endpoints with client-go's record) and
//! publishes what it knows on a [`tokio::sync::watch`] channel of [`LeaderState`].
//!
//! ```no_run
//! use kube_elector::{Elector, Lock};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = kube::Client::try_default().await?;
//! let elector = Elector::builder(client, Lock::lease("default", "my-operator"), "pod-a").build()?;
//! let mut state = elector.subscribe();
//! let handle = elector.spawn();
//! state.wait_for(|s| s.is_leader_now()).await?;
//! // Check right before acting, and attach the token to every write the storage can fence.
//! if let Some(token) = state.borrow().fencing_token_now() {
//!     println!("leading with fencing token {token}");
//! }
//! handle.shutdown().await?; // steps down, then releases: another candidate takes over at once
//! # Ok(())
//! # }
//! ```
//!
//! # The algorithm
//!
//! client-go's algorithm and timing model (lease duration > renew deadline > 1.2 × retry
//! period, checked by [`Timing::new`] for the library and the CLI alike), with these changes:
//!
//! - **Pure decisions.** What to do next is a pure function of the observed record, when it was
//!   observed and now (`election::decide`, `election::state`); the async shell only performs
//!   I/O, timers and channels. The decisions are tested on a paused clock without a server.
//! - **Watch-driven followers.** Followers watch the lock instead of polling it: no requests in
//!   steady state, a release taken over the moment it arrives, an expiry when the observed
//!   lease runs out, in a group of more than three each after a drawn delay (usually none for
//!   the first writer, at most half a retry period) that a winner seen in the watch cancels, so
//!   a handover costs one or two writes whatever the group's size ([`FollowMode::Poll`] keeps
//!   client-go's behaviour).
//! - **Expiry on the observer's monotonic clock.** A follower judges a lease expired a lease
//!   duration after it first saw the current record, never by comparing `renewTime` with its
//!   wall clock, so clock skew between nodes does not matter.
//! - **A claim valid from the send time.** The leader's claim lasts until the *send time* of its
//!   last successful renew plus the renew deadline, on its monotonic clock (and the boot-time
//!   clock, which counts suspended time). [`LeaderState::is_leader_at`] compares that deadline
//!   with the moment of asking, so a paused or starved process answers "not leader" the instant
//!   it wakes, before its loop has run. Since lease duration > renew deadline, the old claim has
//!   ended before a follower can take over.
//! - **Conditional writes.** Every write carries the `resourceVersion` last seen; a create is
//!   exclusive. A lock found missing or stripped is taken at once but led on only a lease
//!   duration later (someone may have led on it a moment ago).
//! - **Fencing token.** The lock's transition count while this process leads
//!   ([`LeaderState::fencing_token_now`]); it rises strictly with each new leader and is
//!   remembered across deletions of the lock.
//! - **Release.** At shutdown the claim is withdrawn and published first, then (after the
//!   release gate and delay) the holder is cleared, so another candidate takes over at once.
//!
//! # Limits
//!
//! - **Clock rate.** The argument compares durations measured on two machines' monotonic clocks:
//!   a leader clock slower than a follower's by more than lease duration − renew deadline (a
//!   third, by default) could overlap. A VM frozen in a way that stops both clocks is the
//!   realistic risk; the fencing token covers it.
//! - **Acting takes time.** A check of [`LeaderState::is_leader_now`] followed by a write can be
//!   overtaken between the two: have the storage reject writes with a token lower than the
//!   highest it has seen.
//! - **A deleted lock can take its count with it** when no candidate that saw it recreates it:
//!   leadership still does not overlap, but the token may repeat. Release, do not delete.
//! - **Foreign holders are trusted**: a record written by another tool is waited out like any.
//! - All candidates must use the same lock with these rules (a client-go elector on the same
//!   Lease interoperates).
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `metrics` | via `sidecar` | the election's Prometheus families (client-go's `leader_election_*` and `elector_*`), registered in the caller's `prometheus_client::Registry` by `ElectorBuilder::register_metrics`; the `metrics` module. Without it nothing is counted and `prometheus-client` is not built. |
//! | `events` | via `sidecar` | "became leader" / "stopped leading" Kubernetes Events on the lock object (`ElectorBuilder::events`). |
//! | `sidecar` | yes | the sidecar binary and its building blocks (HTTP surface, CLI and configuration, leader file, pod label, exec mode, EndpointSlice); enables `metrics` and `events`. |
//!
//! A program embedding the election takes `default-features = false` and adds what it uses:
//!
//! ```toml
//! kube-elector = { version = "0.1", default-features = false, features = ["metrics", "events"] }
//! ```
//!
//! # Public surface and stability
//!
//! The library's surface is [`Elector`], [`ElectorBuilder`], [`ElectorHandle`], [`Lock`],
//! [`LeaderState`], [`Timing`], [`Candidacy`], [`ReleaseGate`], [`FollowMode`], [`LockType`],
//! the errors, the `status` module's channel types, and with the `metrics` feature the `metrics`
//! module's `ElectionMetrics` handles; the items at the crate root are re-exported there.
//! The modules behind the `sidecar` feature are the sidecar binary's building blocks (the HTTP
//! surface, leader file, pod label, exec mode, EndpointSlice, configuration): public for the
//! binary, the test harness and the end-to-end tests, with **no stability promise**.
// `deny`, not `forbid`: exec mode sets the child's parent-death signal between fork and exec
// (`CommandExt::pre_exec`, an unsafe API), allowed in that one place (`exec::process::spawn`).
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "sidecar")]
pub mod app_health;
pub mod clock;
#[cfg(feature = "sidecar")]
pub mod config;
pub mod election;
pub mod elector;
// Unused parts (a verb only the sidecar sends, the label strings) without the `metrics` feature.
#[cfg(feature = "sidecar")]
pub mod endpoint_slice;
#[cfg(feature = "sidecar")]
pub mod exec;
#[cfg(feature = "sidecar")]
pub mod http;
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
mod labels;
#[cfg(feature = "sidecar")]
pub mod leader_file;
#[cfg(feature = "sidecar")]
mod leadership_output;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
// Without the feature the election counts into a handle that does nothing: one swap here, no
// `cfg` in the election's logic.
#[cfg(not(feature = "metrics"))]
#[path = "metrics_disabled.rs"]
mod metrics;
#[cfg(feature = "sidecar")]
pub mod pod_deletion_cost;
#[cfg(feature = "sidecar")]
pub mod pod_label;
#[cfg(feature = "sidecar")]
pub mod process_metrics;
#[cfg(feature = "sidecar")]
pub mod proxy;
pub mod status;

pub use election::{
    Candidacy, CandidacySender, FollowMode, GateOpener, LockType, ReleaseGate, Timing, TimingError,
};
pub use elector::{Elector, ElectorBuilder, ElectorHandle, Error, Lock};
pub use status::LeaderState;
