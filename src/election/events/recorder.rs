//! The recorder of leadership Events (the `events` feature): writes each in the background, as
//! client-go's event recorder would, counted in the API metrics.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::PostParams;
use kube::{Api, Client};

use super::{Leadership, LockRef};
use crate::metrics::{ElectionMetrics, Verb};

/// The component name Events are reported under.
pub const COMPONENT: &str = "kube-elector";

impl Leadership {
    fn message(self, identity: &str) -> String {
        match self {
            Leadership::Became => format!("{identity} became leader"),
            Leadership::Stopped => format!("{identity} stopped leading"),
            Leadership::IdentityConflict => format!(
                "another live process holds the lock as {identity}; this one will not lead while it does \
                 (every candidate needs its own identity)"
            ),
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Leadership::Became | Leadership::Stopped => "LeaderElection",
            Leadership::IdentityConflict => "IdentityConflict",
        }
    }

    fn event_type(self) -> &'static str {
        match self {
            Leadership::Became | Leadership::Stopped => "Normal",
            Leadership::IdentityConflict => "Warning",
        }
    }
}

/// Writes leadership Events; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    api: Api<Event>,
    identity: String,
    metrics: ElectionMetrics,
    timeout: Duration,
}

impl Recorder {
    /// A recorder writing Events in `namespace` for `identity`, each write abandoned after
    /// `timeout` and counted in `metrics`; makes no call.
    pub fn new(
        client: Client,
        namespace: &str,
        identity: &str,
        metrics: ElectionMetrics,
        timeout: Duration,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            identity: identity.to_owned(),
            metrics,
            timeout,
        }
    }

    /// Writes the Event in the background and returns at once; the handle lets shutdown wait
    /// for the last one.
    pub fn record(&self, what: Leadership, lock: LockRef, now: Timestamp) -> tokio::task::JoinHandle<()> {
        let event = event(what, &self.identity, &lock, now);
        let this = self.clone();
        tokio::spawn(async move {
            let outcome = this
                .metrics
                .call(
                    Verb::Create,
                    this.timeout,
                    this.api.create(&PostParams::default(), &event),
                )
                .await;
            match outcome {
                Ok(Ok(_)) => tracing::debug!(message = %what.message(&this.identity), "recorded event"),
                Ok(Err(error)) => tracing::warn!(%error, "could not record a leadership event"),
                Err(_) => tracing::warn!(timeout = ?this.timeout, "recording a leadership event timed out"),
            }
        })
    }
}

/// The Event client-go's recorder would write.
pub fn event(what: Leadership, identity: &str, lock: &LockRef, now: Timestamp) -> Event {
    let nanos = now.as_nanosecond();
    Event {
        metadata: ObjectMeta {
            // client-go names events `<object>.<hex of the time in nanoseconds>`.
            name: Some(format!("{}.{:x}", lock.name, nanos.max(0))),
            namespace: Some(lock.namespace.clone()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some(lock.api_version.clone()),
            kind: Some(lock.kind.clone()),
            name: Some(lock.name.clone()),
            namespace: Some(lock.namespace.clone()),
            uid: lock.uid.clone(),
            ..Default::default()
        },
        reason: Some(what.reason().into()),
        message: Some(what.message(identity)),
        type_: Some(what.event_type().into()),
        source: Some(EventSource {
            component: Some(format!("{COMPONENT}/{identity}")),
            host: None,
        }),
        reporting_component: Some(COMPONENT.into()),
        reporting_instance: Some(identity.to_owned()),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        action: Some(match what {
            Leadership::Became => "Acquire".into(),
            Leadership::Stopped => "Release".into(),
            Leadership::IdentityConflict => "Conflict".into(),
        }),
        count: Some(1),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_like_client_go() {
        let lock = LockRef {
            api_version: "coordination.k8s.io/v1".into(),
            kind: "Lease".into(),
            namespace: "ns".into(),
            name: "my-election".into(),
            uid: Some("u-1".into()),
        };
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let became = event(Leadership::Became, "pod-a", &lock, now);
        assert_eq!(became.message.as_deref(), Some("pod-a became leader"));
        assert_eq!(became.reason.as_deref(), Some("LeaderElection"));
        assert_eq!(became.involved_object.kind.as_deref(), Some("Lease"));
        assert_eq!(became.involved_object.uid.as_deref(), Some("u-1"));
        assert!(
            became
                .metadata
                .name
                .as_deref()
                .unwrap()
                .starts_with("my-election.")
        );
        let stopped = event(Leadership::Stopped, "pod-a", &lock, now);
        assert_eq!(stopped.message.as_deref(), Some("pod-a stopped leading"));
        let conflict = event(Leadership::IdentityConflict, "pod-a", &lock, now);
        assert_eq!(conflict.type_.as_deref(), Some("Warning"));
        assert_eq!(conflict.reason.as_deref(), Some("IdentityConflict"));
    }
}
