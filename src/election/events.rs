//! Kubernetes Events about leadership, as client-go's leader election records them.
//!
//! "`<identity>` became leader" and "`<identity>` stopped leading", reason `LeaderElection`, type
//! `Normal`, on the lock object, so `kubectl describe lease <name>` shows the history. Recording is
//! fire-and-forget: an Event that cannot be written is logged and counted, never waited for by
//! the election. A duplicated identity is reported as a `Warning` Event, reason
//! `IdentityConflict`, on the same object.
//!
//! What happened ([`Leadership`]) and about what ([`LockRef`]) are the election's vocabulary,
//! always compiled; the recorder that writes them is the `events` feature's (`events/recorder.rs`).
//! Without the feature [`Recorder`] is a type with no values, so the driver's "record if a
//! recorder was given" is the same code and provably never records.

#[cfg(feature = "events")]
mod recorder;
#[cfg(not(feature = "events"))]
mod recorder {
    use jiff::Timestamp;
    use tokio::task::JoinHandle;

    use super::{Leadership, LockRef};

    /// No recorder exists without the `events` feature.
    #[derive(Clone, Debug)]
    pub enum Recorder {}

    impl Recorder {
        /// Never called: there is no value to call it on.
        pub fn record(&self, _what: Leadership, _lock: LockRef, _now: Timestamp) -> JoinHandle<()> {
            match *self {}
        }
    }
}

pub use recorder::Recorder;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leadership {
    /// This process began to lead ("became leader").
    Became,
    /// This process stopped leading, by losing the lock or at shutdown ("stopped leading").
    Stopped,
    /// Another live process holds the lock under this identity (a Warning Event).
    IdentityConflict,
}

/// The object Events are about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockRef {
    /// The lock object's API group and version, e.g. `coordination.k8s.io/v1`.
    pub api_version: String,
    /// The lock object's kind, e.g. `Lease`.
    pub kind: String,
    /// The namespace of the lock object, where its Events are written too.
    pub namespace: String,
    /// The lock object's name.
    pub name: String,
    /// The lock object's UID when known, which ties the Event to this object and not to a later
    /// one of the same name.
    pub uid: Option<String>,
}
