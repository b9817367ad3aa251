//! The bounded values the election's calls and counts are named by: the API verb of a call and
//! the result of a renew. Always compiled (the election's errors name the verb); the `metrics`
//! feature encodes them as Prometheus label values and re-exports them as `metrics::Verb` and
//! `metrics::RenewResult`.

/// The API verbs the elector uses, as a bounded label value (`verb`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    /// A read of the lock object.
    Get,
    /// The creation of the lock object, or of a Kubernetes Event.
    Create,
    /// A conditional write of the leader record over the lock object.
    Update,
    /// A change of the leadership label on this pod.
    Patch,
    /// The opening of a watch on the lock object.
    Watch,
}

impl Verb {
    /// The label value: Kubernetes' lower-case verb names.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Watch => "watch",
        }
    }
}

impl Verb {
    /// The HTTP status of a successful call.
    pub(crate) fn success_code(self) -> u16 {
        match self {
            Verb::Create => 201,
            Verb::Get | Verb::Update | Verb::Patch | Verb::Watch => 200,
        }
    }
}

/// Outcome of one renew (or acquire) attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RenewResult {
    /// The write went through while the claim was still valid.
    Success,
    /// The write failed, timed out or lost a race (409).
    Failure,
}

impl RenewResult {
    /// The label value of `result`: `success` or `failure`.
    pub fn as_str(self) -> &'static str {
        match self {
            RenewResult::Success => "success",
            RenewResult::Failure => "failure",
        }
    }
}
