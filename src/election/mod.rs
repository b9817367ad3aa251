//! The election (being written): timing model, lock kinds, decision function and driver.

mod timing;

pub use timing::{Error as TimingError, JITTER_FACTOR, Timing};

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
    pub const ALL: [LockType; 3] = [LockType::Leases, LockType::Configmaps, LockType::Endpoints];

    pub fn as_str(self) -> &'static str {
        match self {
            LockType::Leases => "leases",
            LockType::Configmaps => "configmaps",
            LockType::Endpoints => "endpoints",
        }
    }
}

impl FollowMode {
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
