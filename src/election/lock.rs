//! The lock kinds: one small trait, three implementations, one client for all of them.
//!
//! [`LockObject`] says how a kind of object carries a [`LeaderRecord`]: a Lease in its `spec`, a
//! ConfigMap or Endpoints object in client-go's `control-plane.alpha.kubernetes.io/leader`
//! annotation. [`KubeLock`] does the I/O for any of them: every call carries a timeout and is
//! counted in the API metrics, and writes use the observed `resourceVersion` so that the API
//! server's optimistic concurrency decides races (a 409 means someone else wrote first).
//!
//! Every kind also carries the holder's incarnation in the
//! [`INCARNATION_ANNOTATION`] annotation, apart from the
//! record so that client-go's record stays exactly as client-go writes it. Reading a record never
//! fails: what cannot be read is an [unreadable](LeaderRecord::unreadable) record.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{PostParams, WatchEvent, WatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::record::{
    ADDRESS_ANNOTATION, INCARNATION_ANNOTATION, LEADER_ANNOTATION, LeaderRecord, fence_in,
    incarnation_annotation, incarnation_for, takeover_for, truncate_micros,
};
use crate::metrics::{ElectionMetrics, Verb};

/// A kind of object that can hold the leader record.
pub trait LockObject:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    /// A new object named `name` holding `record`.
    fn with_record(name: &str, namespace: &str, record: &LeaderRecord) -> Self;

    /// The record the object holds, without the incarnation; an object without one holds the
    /// empty record (no holder).
    fn bare_record(&self) -> LeaderRecord;

    /// Replaces the record, leaving everything else in the object as it is.
    fn set_bare_record(&mut self, record: &LeaderRecord);

    /// The record the object holds, with its holder's incarnation.
    fn record(&self) -> LeaderRecord {
        let mut record = self.bare_record();
        let annotation = self
            .meta()
            .annotations
            .as_ref()
            .and_then(|a| a.get(INCARNATION_ANNOTATION));
        record.incarnation = incarnation_for(annotation.map(String::as_str), &record.holder_identity);
        record.fence = fence_in(annotation.map(String::as_str));
        record.takeover = takeover_for(annotation.map(String::as_str), &record.holder_identity);
        // The address counts only while the incarnation annotation is the holder's.
        record.address = record
            .incarnation
            .as_ref()
            .and_then(|_| self.meta().annotations.as_ref()?.get(ADDRESS_ANNOTATION))
            .filter(|address| !address.is_empty())
            .cloned();
        record
    }

    /// Replaces the record, the incarnation annotation and the address annotation (each removed
    /// when the record has none).
    fn set_record(&mut self, record: &LeaderRecord) {
        self.set_bare_record(record);
        let annotations = &mut self.meta_mut().annotations;
        set_annotation(annotations, ADDRESS_ANNOTATION, record.address.clone());
        set_annotation(
            annotations,
            INCARNATION_ANNOTATION,
            incarnation_annotation(record),
        );
    }
}

/// Sets annotation `key` to `value`, or removes it when `value` is `None`.
fn set_annotation(annotations: &mut Option<BTreeMap<String, String>>, key: &str, value: Option<String>) {
    match value {
        Some(value) => {
            annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(key.to_owned(), value);
        }
        None => {
            if let Some(map) = annotations.as_mut() {
                map.remove(key);
            }
        }
    }
}

impl LockObject for Lease {
    fn with_record(name: &str, namespace: &str, record: &LeaderRecord) -> Self {
        let mut lease = Lease {
            metadata: named(name, namespace),
            spec: None,
        };
        lease.set_record(record);
        lease
    }

    fn bare_record(&self) -> LeaderRecord {
        let Some(spec) = &self.spec else {
            return LeaderRecord::default();
        };
        LeaderRecord {
            holder_identity: spec.holder_identity.clone().unwrap_or_default(),
            lease_duration_seconds: spec.lease_duration_seconds.unwrap_or(0),
            acquire_time: spec.acquire_time.as_ref().map(|t| t.0),
            renew_time: spec.renew_time.as_ref().map(|t| t.0),
            leader_transitions: spec.lease_transitions.unwrap_or(0),
            incarnation: None,
            fence: None,
            address: None,
            unreadable: None,
            takeover: None,
        }
    }

    fn set_bare_record(&mut self, record: &LeaderRecord) {
        let spec = self.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = Some(record.holder_identity.clone());
        spec.lease_duration_seconds = Some(record.lease_duration_seconds);
        spec.acquire_time = record.acquire_time.map(|t| MicroTime(truncate_micros(t)));
        spec.renew_time = record.renew_time.map(|t| MicroTime(truncate_micros(t)));
        spec.lease_transitions = Some(record.leader_transitions);
    }
}

/// ConfigMap and Endpoints locks keep the record the same way: in client-go's annotation.
macro_rules! annotation_lock {
    ($kind:ty) => {
        impl LockObject for $kind {
            fn with_record(name: &str, namespace: &str, record: &LeaderRecord) -> Self {
                let mut object = Self {
                    metadata: named(name, namespace),
                    ..Default::default()
                };
                object.set_record(record);
                object
            }

            fn bare_record(&self) -> LeaderRecord {
                annotation_record(&self.metadata)
            }

            fn set_bare_record(&mut self, record: &LeaderRecord) {
                set_annotation_record(&mut self.metadata, record);
            }
        }
    };
}

annotation_lock!(ConfigMap);
annotation_lock!(Endpoints);

fn named(name: &str, namespace: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        ..Default::default()
    }
}

fn annotation_record(meta: &ObjectMeta) -> LeaderRecord {
    match meta.annotations.as_ref().and_then(|a| a.get(LEADER_ANNOTATION)) {
        None => LeaderRecord::default(),
        Some(text) if text.trim().is_empty() => LeaderRecord::default(),
        Some(text) => LeaderRecord::from_annotation(text),
    }
}

fn set_annotation_record(meta: &mut ObjectMeta, record: &LeaderRecord) {
    set_annotation(
        &mut meta.annotations,
        LEADER_ANNOTATION,
        Some(record.to_annotation()),
    );
}

/// One read of the lock object.
#[derive(Clone, Debug)]
pub struct Snapshot<K> {
    /// The object as the API server returned it, kept whole for the next conditional write.
    pub object: K,
    /// The leader record the object holds, with its holder's incarnation.
    pub record: LeaderRecord,
}

impl<K: LockObject> Snapshot<K> {
    fn of(object: K) -> Self {
        let record = object.record();
        Self { object, record }
    }

    /// The object's resourceVersion, which guards the next write; `None` if the server sent none.
    pub fn resource_version(&self) -> Option<String> {
        self.object.resource_version()
    }
}

/// Why a call on the lock failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server answered with an error `Status`.
    #[error("{} {kind} {name:?}: the API server answered {code} {reason}: {message}", .verb.as_str())]
    Api {
        /// The call that failed.
        verb: Verb,
        /// The lock's kind in the API's plural form, e.g. `leases`.
        kind: String,
        /// The lock object's name.
        name: String,
        /// The HTTP status code of the answer.
        code: u16,
        /// The `Status` reason, e.g. `Conflict` or `AlreadyExists`.
        reason: String,
        /// The server's human-readable explanation.
        message: String,
        /// The server's `Retry-After` (429, 503), from the `Status` details.
        retry_after: Option<Duration>,
    },
    /// The call got no usable answer from the API server (connection, TLS, decoding).
    #[error("{} {kind} {name:?} failed: {source}", .verb.as_str())]
    Transport {
        /// The call that failed.
        verb: Verb,
        /// The lock's kind in the API's plural form, e.g. `leases`.
        kind: String,
        /// The lock object's name.
        name: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The call was not answered within its timeout and was abandoned.
    #[error("{} {kind} {name:?} timed out after {after:?}", .verb.as_str())]
    Timeout {
        /// The call that timed out.
        verb: Verb,
        /// The lock's kind in the API's plural form, e.g. `leases`.
        kind: String,
        /// The lock object's name.
        name: String,
        /// The timeout the call was given.
        after: Duration,
    },
}

impl Error {
    /// How long the server asked the client to wait before calling again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Someone else wrote first (409 Conflict).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Api { code: 409, reason, .. } if reason == "Conflict")
    }

    /// The object exists already (409 AlreadyExists).
    pub fn is_already_exists(&self) -> bool {
        matches!(self, Error::Api { code: 409, reason, .. } if reason == "AlreadyExists")
    }

    /// The lock object does not exist (404 Not Found).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Api { code: 404, .. })
    }
}

/// The events a watch on the lock delivers, reduced to what the election needs.
#[derive(Debug)]
pub enum Change<K> {
    /// The object now looks like this.
    Present(Snapshot<K>),
    /// The object was deleted at this resourceVersion; the highest token its last state showed.
    Deleted(Option<String>, Option<u64>),
    /// Nothing changed; the watch has reached this resourceVersion.
    Bookmark(String),
}

/// Why a watch ended or could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The server no longer has the resourceVersion the watch started from (410 Gone): start
    /// over from the current state. Holds the server's message.
    #[error("the watch's resourceVersion is too old (410 Gone): {0}")]
    Expired(String),
    /// The stream broke or delivered any other error; holds the reason.
    #[error("the watch failed: {0}")]
    Failed(String),
}

/// Reads and writes one named lock object of kind `K`.
#[derive(Clone)]
pub struct KubeLock<K: LockObject> {
    api: Api<K>,
    name: String,
    namespace: String,
    metrics: ElectionMetrics,
}

impl<K: LockObject> KubeLock<K> {
    /// A handle on the lock object `name` in `namespace`, its calls counted in `metrics`; makes
    /// no call.
    pub fn new(client: Client, namespace: &str, name: &str, metrics: ElectionMetrics) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            metrics,
        }
    }

    /// The lock object's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace the lock object lives in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The kind in the API's plural form, e.g. `leases`.
    pub fn kind(&self) -> String {
        K::plural(&()).into_owned()
    }

    /// Reads the lock; `None` when it does not exist.
    pub async fn get(&self, timeout: Duration) -> Result<Option<Snapshot<K>>, Error> {
        let object = self
            .call(Verb::Get, timeout, self.api.get_opt(&self.name))
            .await?;
        object.map(|object| self.snapshot(object)).transpose()
    }

    /// Creates the lock holding `record`.
    pub async fn create(&self, record: &LeaderRecord, timeout: Duration) -> Result<Snapshot<K>, Error> {
        let object = K::with_record(&self.name, &self.namespace, record);
        let created = self
            .call(
                Verb::Create,
                timeout,
                self.api.create(&PostParams::default(), &object),
            )
            .await?;
        self.snapshot(created)
    }

    /// Writes `record` over `current`, conditional on `current`'s resourceVersion.
    pub async fn update(
        &self,
        current: &K,
        record: &LeaderRecord,
        timeout: Duration,
    ) -> Result<Snapshot<K>, Error> {
        let mut object = current.clone();
        object.set_record(record);
        let replaced = self
            .call(
                Verb::Update,
                timeout,
                self.api.replace(&self.name, &PostParams::default(), &object),
            )
            .await?;
        self.snapshot(replaced)
    }

    /// Opens a watch on the lock from `resource_version` ("" for the current state first).
    pub async fn watch(
        &self,
        resource_version: &str,
        server_timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<BoxStream<'static, Result<Change<K>, WatchError>>, Error> {
        let params = WatchParams::default()
            .fields(&format!("metadata.name={}", self.name))
            .timeout(u32::try_from(server_timeout.as_secs()).unwrap_or(290).max(1));
        let stream = self
            .call(
                Verb::Watch,
                connect_timeout,
                self.api.watch(&params, resource_version),
            )
            .await?;
        Ok(stream
            .map_err(|e| WatchError::Failed(e.to_string()))
            .and_then(|event| {
                let result = match event {
                    WatchEvent::Added(object) | WatchEvent::Modified(object) => {
                        Ok(Change::Present(Snapshot::of(object)))
                    }
                    WatchEvent::Deleted(object) => Ok(Change::Deleted(
                        object.resource_version(),
                        object.record().seen_token(),
                    )),
                    WatchEvent::Bookmark(bookmark) => {
                        Ok(Change::Bookmark(bookmark.metadata.resource_version))
                    }
                    WatchEvent::Error(status) if status.code == 410 => {
                        Err(WatchError::Expired(status.message))
                    }
                    WatchEvent::Error(status) => Err(WatchError::Failed(format!(
                        "{} {}: {}",
                        status.code, status.reason, status.message
                    ))),
                };
                futures::future::ready(result)
            })
            .boxed())
    }

    fn snapshot(&self, object: K) -> Result<Snapshot<K>, Error> {
        Ok(Snapshot::of(object))
    }

    /// Runs one API call under `timeout`, counting it in the metrics.
    async fn call<T>(
        &self,
        verb: Verb,
        timeout: Duration,
        request: impl Future<Output = kube::Result<T>>,
    ) -> Result<T, Error> {
        let (kind, name) = (self.kind(), self.name.clone());
        match self.metrics.call(verb, timeout, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(kube::Error::Api(status))) => Err(Error::Api {
                verb,
                kind,
                name,
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
                retry_after: super::pacing::retry_after(&status),
            }),
            Ok(Err(source)) => Err(Error::Transport {
                verb,
                kind,
                name,
                source,
            }),
            Err(_) => Err(Error::Timeout {
                verb,
                kind,
                name,
                after: timeout,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn record() -> LeaderRecord {
        let at: Timestamp = "2026-02-03T04:05:06.123456789Z".parse().unwrap();
        LeaderRecord {
            holder_identity: "pod-a".into(),
            lease_duration_seconds: 15,
            acquire_time: Some(at),
            renew_time: Some(at),
            leader_transitions: 3,
            incarnation: Some("uid/1/ff".into()),
            fence: Some(3),
            address: None,
            unreadable: None,
            takeover: None,
        }
    }

    fn round_trip<K: LockObject>() {
        let object = K::with_record("lock", "ns", &record());
        let back = object.record();
        assert_eq!(back.incarnation.as_deref(), Some("uid/1/ff"));
        assert_eq!(back.holder_identity, "pod-a");
        assert_eq!(back.leader_transitions, 3);
        assert_eq!(back.lease_duration_seconds, 15);
        assert_eq!(
            back.renew_time.unwrap().to_string(),
            "2026-02-03T04:05:06.123456Z",
            "microseconds kept"
        );
        assert_eq!(object.meta().name.as_deref(), Some("lock"));
        assert_eq!(object.meta().namespace.as_deref(), Some("ns"));
    }

    #[test]
    fn every_kind_round_trips_the_record() {
        round_trip::<Lease>();
        round_trip::<ConfigMap>();
        round_trip::<Endpoints>();
    }

    #[test]
    fn an_object_without_a_record_holds_the_empty_record() {
        assert_eq!(Lease::default().record(), LeaderRecord::default());
        assert_eq!(ConfigMap::default().record(), LeaderRecord::default());
    }

    #[test]
    fn set_record_keeps_other_annotations_and_data() {
        let mut map = ConfigMap::with_record("lock", "ns", &record());
        map.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert("team".into(), "infra".into());
        map.data = Some(BTreeMap::from([("k".to_owned(), "v".to_owned())]));
        let mut next = record();
        next.holder_identity = "pod-b".into();
        map.set_record(&next);
        assert_eq!(map.record().holder_identity, "pod-b");
        assert_eq!(map.metadata.annotations.as_ref().unwrap()["team"], "infra");
        assert_eq!(map.data.as_ref().unwrap()["k"], "v");
    }

    #[test]
    fn a_corrupt_annotation_is_held_by_an_unknown_holder_not_an_empty_lock() {
        let mut map = ConfigMap::default();
        map.metadata.annotations = Some(BTreeMap::from([(
            LEADER_ANNOTATION.to_owned(),
            "{not json".to_owned(),
        )]));
        let record = map.record();
        assert_eq!(record.holding(), super::super::record::Holding::Unknown);
        assert_eq!(record.unreadable.as_deref(), Some("{not json"));
    }

    #[test]
    fn the_incarnation_lives_in_its_own_annotation_and_goes_with_its_holder() {
        for mut object in [
            serde_json::to_value(Lease::with_record("lock", "ns", &record())).unwrap(),
            serde_json::to_value(ConfigMap::with_record("lock", "ns", &record())).unwrap(),
        ] {
            let annotations = object["metadata"]["annotations"].as_object().unwrap().clone();
            assert!(annotations.contains_key(INCARNATION_ANNOTATION), "{object}");
            if let Some(text) = annotations.get(LEADER_ANNOTATION) {
                assert!(
                    !text.as_str().unwrap().contains("uid/1/ff"),
                    "not inside client-go's record"
                );
            }
            // Another client (client-go) takes over, keeping the annotations it does not know.
            if object["spec"].is_object() {
                object["spec"]["holderIdentity"] = "go-client".into();
                let lease: Lease = serde_json::from_value(object).unwrap();
                assert_eq!(
                    lease.record().incarnation,
                    None,
                    "the left-over incarnation is not the new holder's"
                );
            }
        }
        let mut released = Lease::with_record("lock", "ns", &record());
        released.set_record(&record().released(Timestamp::UNIX_EPOCH));
        let after = released.record();
        assert_eq!(
            after.incarnation, None,
            "a released lock has no holder incarnation"
        );
        assert_eq!(after.fence, Some(3), "but keeps the highest count seen");
        released.set_record(&LeaderRecord::default());
        assert!(
            !released
                .metadata
                .annotations
                .unwrap_or_default()
                .contains_key(INCARNATION_ANNOTATION)
        );
    }

    #[test]
    fn the_address_is_written_with_the_claim_and_counts_only_for_its_holder() {
        let advertising = LeaderRecord {
            address: Some("10.0.0.7:8000".into()),
            ..record()
        };
        for object in [
            serde_json::to_value(Lease::with_record("lock", "ns", &advertising)).unwrap(),
            serde_json::to_value(ConfigMap::with_record("lock", "ns", &advertising)).unwrap(),
            serde_json::to_value(Endpoints::with_record("lock", "ns", &advertising)).unwrap(),
        ] {
            assert_eq!(
                object["metadata"]["annotations"][ADDRESS_ANNOTATION], "10.0.0.7:8000",
                "{object}"
            );
            if let Some(text) = object["metadata"]["annotations"][LEADER_ANNOTATION].as_str() {
                assert!(
                    !text.contains("10.0.0.7"),
                    "not inside client-go's record: {text}"
                );
            }
        }
        let mut lease = Lease::with_record("lock", "ns", &advertising);
        assert_eq!(lease.record().address.as_deref(), Some("10.0.0.7:8000"));
        // client-go takes over and keeps the annotations it does not know: the address was
        // the previous holder's.
        let mut foreign = serde_json::to_value(&lease).unwrap();
        foreign["spec"]["holderIdentity"] = "go-client".into();
        let foreign: Lease = serde_json::from_value(foreign).unwrap();
        assert_eq!(
            foreign.record().address,
            None,
            "a left-over address is not the new holder's"
        );
        // A holder that advertises nothing (or a release) removes it.
        lease.set_record(&record());
        assert!(
            !lease
                .metadata
                .annotations
                .clone()
                .unwrap_or_default()
                .contains_key(ADDRESS_ANNOTATION)
        );
        lease.set_record(&advertising);
        lease.set_record(&advertising.released(Timestamp::UNIX_EPOCH));
        assert_eq!(lease.record().address, None);
        assert!(
            !lease
                .metadata
                .annotations
                .unwrap_or_default()
                .contains_key(ADDRESS_ANNOTATION),
            "a release takes the address with it"
        );
    }
}
