//! `application/vnd.kubernetes.protobuf` request bodies, decoded with the `k8s-pb` generated
//! types into the JSON the rest of the server works on.
//!
//! client-go's typed clients send protobuf when configured to (kubectl's typed commands do:
//! `kubectl create configmap` posts a protobuf ConfigMap), and the real API server accepts it
//! for every built-in kind. The wire form is the 4-byte magic `k8s\0` followed by a
//! `runtime.Unknown` envelope whose `typeMeta` names the apiVersion and kind and whose `raw` is the
//! object's own message.
//!
//! Served here for the kinds those clients write: ConfigMaps, Leases and Endpoints, plus
//! `DeleteOptions` bodies. Pods and Events in protobuf are answered 415 (listed in
//! `sim/README.md` as simplified). Answers are always JSON: every client-go client that sends
//! protobuf also lists `application/json` in `Accept`.

use std::collections::BTreeMap;

use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use prost::Message;
use serde_json::{Map, Value, json};

use crate::resource::Kind;

/// The media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Why a protobuf body could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The magic or the envelope is wrong.
    #[error("{0}")]
    Envelope(String),
    /// The object's message does not decode.
    #[error("{0}")]
    Object(String),
    /// This simulator does not decode protobuf bodies of this kind.
    #[error("protobuf bodies are not decoded for this kind")]
    KindNotServed,
}

/// Whether protobuf bodies of `kind` are decoded.
pub fn decodes(kind: Kind) -> bool {
    matches!(kind, Kind::ConfigMap | Kind::Lease | Kind::Endpoints)
}

/// Splits the magic and the `runtime.Unknown` envelope: (`apiVersion`, `kind`, raw message).
fn envelope(body: &[u8]) -> Result<(String, String, Vec<u8>), Error> {
    let rest = body.strip_prefix(MAGIC.as_slice()).ok_or_else(|| {
        Error::Envelope(
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]".into(),
        )
    })?;
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(rest)
        .map_err(|e| Error::Envelope(format!("unable to decode the protobuf envelope: {e}")))?;
    if !unknown.content_encoding.as_deref().unwrap_or("").is_empty() {
        return Err(Error::Envelope(format!(
            "unsupported content encoding {:?}",
            unknown.content_encoding.unwrap_or_default()
        )));
    }
    let tm = unknown.type_meta.unwrap_or_default();
    Ok((
        tm.api_version.unwrap_or_default(),
        tm.kind.unwrap_or_default(),
        unknown.raw.unwrap_or_default(),
    ))
}

/// Decodes a create/update body of `kind` into JSON (with the envelope's `apiVersion` and `kind`,
/// which the caller checks against the URL as for JSON bodies).
pub fn decode_object(kind: Kind, body: &[u8]) -> Result<Value, Error> {
    if !decodes(kind) {
        return Err(Error::KindNotServed);
    }
    let (api_version, type_kind, raw) = envelope(body)?;
    let bad = |e: prost::DecodeError| Error::Object(format!("unable to decode {type_kind}: {e}"));
    let mut obj = match kind {
        Kind::ConfigMap => {
            let cm = k8s_pb::api::core::v1::ConfigMap::decode(raw.as_slice()).map_err(bad)?;
            let mut m = Map::new();
            put(&mut m, "metadata", cm.metadata.map(object_meta));
            put(&mut m, "immutable", cm.immutable.map(Value::Bool));
            put(&mut m, "data", string_map(&cm.data));
            if !cm.binary_data.is_empty() {
                use base64::Engine;
                let enc = base64::engine::general_purpose::STANDARD;
                let b: Map<String, Value> = cm
                    .binary_data
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(enc.encode(v))))
                    .collect();
                m.insert("binaryData".into(), Value::Object(b));
            }
            m
        }
        Kind::Lease => {
            let lease = k8s_pb::api::coordination::v1::Lease::decode(raw.as_slice()).map_err(bad)?;
            let mut m = Map::new();
            put(&mut m, "metadata", lease.metadata.map(object_meta));
            if let Some(s) = lease.spec {
                let mut spec = Map::new();
                put(&mut spec, "holderIdentity", s.holder_identity.map(Value::String));
                put(
                    &mut spec,
                    "leaseDurationSeconds",
                    s.lease_duration_seconds.map(Value::from),
                );
                put(
                    &mut spec,
                    "acquireTime",
                    s.acquire_time.and_then(|t| micro_time(t.seconds, t.nanos)),
                );
                put(
                    &mut spec,
                    "renewTime",
                    s.renew_time.and_then(|t| micro_time(t.seconds, t.nanos)),
                );
                put(
                    &mut spec,
                    "leaseTransitions",
                    s.lease_transitions.map(Value::from),
                );
                put(&mut spec, "strategy", s.strategy.map(Value::String));
                put(
                    &mut spec,
                    "preferredHolder",
                    s.preferred_holder.map(Value::String),
                );
                m.insert("spec".into(), Value::Object(spec));
            }
            m
        }
        Kind::Endpoints => {
            let ep = k8s_pb::api::core::v1::Endpoints::decode(raw.as_slice()).map_err(bad)?;
            let mut m = Map::new();
            put(&mut m, "metadata", ep.metadata.map(object_meta));
            if !ep.subsets.is_empty() {
                m.insert(
                    "subsets".into(),
                    ep.subsets.into_iter().map(endpoint_subset).collect(),
                );
            }
            m
        }
        _ => return Err(Error::KindNotServed),
    };
    put(&mut obj, "apiVersion", non_empty(api_version));
    put(&mut obj, "kind", non_empty(type_kind));
    Ok(Value::Object(obj))
}

/// Decodes a protobuf `DeleteOptions` body into its JSON form.
pub fn decode_delete_options(body: &[u8]) -> Result<Value, Error> {
    let (_, _, raw) = envelope(body)?;
    let o = meta::DeleteOptions::decode(raw.as_slice())
        .map_err(|e| Error::Object(format!("unable to decode DeleteOptions: {e}")))?;
    let mut m = Map::new();
    put(
        &mut m,
        "gracePeriodSeconds",
        o.grace_period_seconds.map(Value::from),
    );
    if let Some(p) = o.preconditions {
        let mut pre = Map::new();
        put(&mut pre, "uid", p.uid.map(Value::String));
        put(&mut pre, "resourceVersion", p.resource_version.map(Value::String));
        m.insert("preconditions".into(), Value::Object(pre));
    }
    put(&mut m, "orphanDependents", o.orphan_dependents.map(Value::Bool));
    put(
        &mut m,
        "propagationPolicy",
        o.propagation_policy.map(Value::String),
    );
    if !o.dry_run.is_empty() {
        m.insert("dryRun".into(), json!(o.dry_run));
    }
    Ok(Value::Object(m))
}

fn put(m: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        m.insert(key.to_owned(), v);
    }
}

/// Go encodes non-pointer strings even when empty; JSON omits them (`omitempty`).
fn non_empty(s: String) -> Option<Value> {
    (!s.is_empty()).then_some(Value::String(s))
}

fn opt_str(s: Option<String>) -> Option<Value> {
    s.and_then(non_empty)
}

fn string_map(m: &BTreeMap<String, String>) -> Option<Value> {
    (!m.is_empty()).then(|| json!(m))
}

/// Go's zero `time.Time` as Unix seconds: what a proto `Time` of an unset timestamp carries.
const GO_ZERO_TIME: i64 = -62_135_596_800;

fn timestamp(seconds: Option<i64>, nanos: Option<i32>, micro: bool) -> Option<Value> {
    let s = seconds?;
    if s == GO_ZERO_TIME && nanos.unwrap_or(0) == 0 {
        return None;
    }
    let ts = jiff::Timestamp::new(s, if micro { nanos.unwrap_or(0) } else { 0 }).ok()?;
    let text = if micro {
        ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    } else {
        ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    };
    Some(Value::String(text))
}

fn time(t: meta::Time) -> Option<Value> {
    timestamp(t.seconds, t.nanos, false)
}

fn micro_time(seconds: Option<i64>, nanos: Option<i32>) -> Option<Value> {
    timestamp(seconds, nanos, true)
}

fn object_meta(o: meta::ObjectMeta) -> Value {
    let mut m = Map::new();
    put(&mut m, "name", opt_str(o.name));
    put(&mut m, "generateName", opt_str(o.generate_name));
    put(&mut m, "namespace", opt_str(o.namespace));
    put(&mut m, "selfLink", opt_str(o.self_link));
    put(&mut m, "uid", opt_str(o.uid));
    put(&mut m, "resourceVersion", opt_str(o.resource_version));
    put(
        &mut m,
        "generation",
        o.generation.filter(|g| *g != 0).map(Value::from),
    );
    put(&mut m, "creationTimestamp", o.creation_timestamp.and_then(time));
    put(&mut m, "deletionTimestamp", o.deletion_timestamp.and_then(time));
    put(
        &mut m,
        "deletionGracePeriodSeconds",
        o.deletion_grace_period_seconds.map(Value::from),
    );
    put(&mut m, "labels", string_map(&o.labels));
    put(&mut m, "annotations", string_map(&o.annotations));
    if !o.owner_references.is_empty() {
        let refs = o
            .owner_references
            .into_iter()
            .map(|r| {
                let mut m = Map::new();
                put(&mut m, "apiVersion", opt_str(r.api_version));
                put(&mut m, "kind", opt_str(r.kind));
                put(&mut m, "name", opt_str(r.name));
                put(&mut m, "uid", opt_str(r.uid));
                put(&mut m, "controller", r.controller.map(Value::Bool));
                put(
                    &mut m,
                    "blockOwnerDeletion",
                    r.block_owner_deletion.map(Value::Bool),
                );
                Value::Object(m)
            })
            .collect();
        m.insert("ownerReferences".into(), Value::Array(refs));
    }
    if !o.finalizers.is_empty() {
        m.insert("finalizers".into(), json!(o.finalizers));
    }
    if !o.managed_fields.is_empty() {
        let entries = o
            .managed_fields
            .into_iter()
            .map(|e| {
                let mut m = Map::new();
                put(&mut m, "manager", opt_str(e.manager));
                put(&mut m, "operation", opt_str(e.operation));
                put(&mut m, "apiVersion", opt_str(e.api_version));
                put(&mut m, "time", e.time.and_then(time));
                put(&mut m, "fieldsType", opt_str(e.fields_type));
                put(
                    &mut m,
                    "fieldsV1",
                    e.fields_v1
                        .and_then(|f| f.raw)
                        .and_then(|raw| serde_json::from_slice(&raw).ok()),
                );
                put(&mut m, "subresource", opt_str(e.subresource));
                Value::Object(m)
            })
            .collect();
        m.insert("managedFields".into(), Value::Array(entries));
    }
    Value::Object(m)
}

fn endpoint_subset(s: k8s_pb::api::core::v1::EndpointSubset) -> Value {
    fn address(a: k8s_pb::api::core::v1::EndpointAddress) -> Value {
        let mut m = Map::new();
        put(&mut m, "ip", opt_str(a.ip));
        put(&mut m, "hostname", opt_str(a.hostname));
        put(&mut m, "nodeName", a.node_name.map(Value::String));
        if let Some(r) = a.target_ref {
            let mut t = Map::new();
            put(&mut t, "kind", opt_str(r.kind));
            put(&mut t, "namespace", opt_str(r.namespace));
            put(&mut t, "name", opt_str(r.name));
            put(&mut t, "uid", opt_str(r.uid));
            put(&mut t, "apiVersion", opt_str(r.api_version));
            put(&mut t, "resourceVersion", opt_str(r.resource_version));
            put(&mut t, "fieldPath", opt_str(r.field_path));
            m.insert("targetRef".into(), Value::Object(t));
        }
        Value::Object(m)
    }
    let mut m = Map::new();
    if !s.addresses.is_empty() {
        m.insert("addresses".into(), s.addresses.into_iter().map(address).collect());
    }
    if !s.not_ready_addresses.is_empty() {
        m.insert(
            "notReadyAddresses".into(),
            s.not_ready_addresses.into_iter().map(address).collect(),
        );
    }
    if !s.ports.is_empty() {
        let ports = s
            .ports
            .into_iter()
            .map(|p| {
                let mut m = Map::new();
                put(&mut m, "name", opt_str(p.name));
                put(&mut m, "port", p.port.map(Value::from));
                put(&mut m, "protocol", opt_str(p.protocol));
                put(&mut m, "appProtocol", p.app_protocol.map(Value::String));
                Value::Object(m)
            })
            .collect();
        m.insert("ports".into(), Value::Array(ports));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown {
            type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        let mut body = MAGIC.to_vec();
        body.extend(unknown.encode_to_vec());
        body
    }

    fn go_meta(name: &str) -> meta::ObjectMeta {
        // As Go encodes it: empty strings and a zero creationTimestamp are on the wire.
        meta::ObjectMeta {
            name: Some(name.into()),
            generate_name: Some(String::new()),
            namespace: Some(String::new()),
            uid: Some(String::new()),
            resource_version: Some(String::new()),
            generation: Some(0),
            creation_timestamp: Some(meta::Time {
                seconds: Some(GO_ZERO_TIME),
                nanos: Some(0),
            }),
            labels: BTreeMap::from([("app".into(), "x".into())]),
            ..Default::default()
        }
    }

    #[test]
    fn a_configmap_as_kubectl_create_configmap_sends_it() {
        let cm = k8s_pb::api::core::v1::ConfigMap {
            metadata: Some(go_meta("settings")),
            data: BTreeMap::from([("a".into(), "1".into())]),
            binary_data: BTreeMap::from([("b".into(), vec![0, 1])]),
            immutable: None,
        };
        let v = decode_object(Kind::ConfigMap, &wrap("v1", "ConfigMap", cm.encode_to_vec()));
        assert_eq!(
            v,
            Ok(json!({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "settings", "labels": {"app": "x"}},
                      "data": {"a": "1"}, "binaryData": {"b": "AAE="}}))
        );
    }

    #[test]
    fn a_lease_keeps_microsecond_times() {
        let lease = k8s_pb::api::coordination::v1::Lease {
            metadata: Some(go_meta("lock")),
            spec: Some(k8s_pb::api::coordination::v1::LeaseSpec {
                holder_identity: Some("pod-a".into()),
                lease_duration_seconds: Some(15),
                renew_time: Some(meta::MicroTime {
                    seconds: Some(1_767_225_600),
                    nanos: Some(123_456_000),
                }),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        let v = decode_object(
            Kind::Lease,
            &wrap("coordination.k8s.io/v1", "Lease", lease.encode_to_vec()),
        )
        .unwrap_or_default();
        assert_eq!(
            v["spec"],
            json!({"holderIdentity": "pod-a", "leaseDurationSeconds": 15,
                   "renewTime": "2026-01-01T00:00:00.123456Z", "leaseTransitions": 0})
        );
    }

    #[test]
    fn bad_bodies_are_named() {
        assert!(matches!(
            decode_object(Kind::Lease, b"{}"),
            Err(Error::Envelope(_))
        ));
        assert!(matches!(
            decode_object(
                Kind::Lease,
                &wrap("coordination.k8s.io/v1", "Lease", vec![0xff, 0xff])
            ),
            Err(Error::Object(_))
        ));
        assert_eq!(
            decode_object(Kind::Pod, &wrap("v1", "Pod", vec![])),
            Err(Error::KindNotServed)
        );
    }

    #[test]
    fn delete_options() {
        let o = meta::DeleteOptions {
            propagation_policy: Some("Background".into()),
            preconditions: Some(meta::Preconditions {
                uid: Some("u".into()),
                resource_version: None,
            }),
            ..Default::default()
        };
        assert_eq!(
            decode_delete_options(&wrap("v1", "DeleteOptions", o.encode_to_vec())),
            Ok(json!({"propagationPolicy": "Background", "preconditions": {"uid": "u"}}))
        );
    }
}
