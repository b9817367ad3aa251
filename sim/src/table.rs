//! Server-side printing: `meta.k8s.io/v1` `Table`s, which `kubectl get` asks for
//! (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`) and prints as they come.
//!
//! The columns are the real server's printers' (`pkg/printers/internalversion`): Leases Name,
//! Holder, Age; ConfigMaps Name, Data, Age; Endpoints Name, Endpoints, Age; Pods Name, Ready,
//! Status, Restarts, Age (+ IP, Node, Nominated Node, Readiness Gates at priority 1); Events Last
//! Seen, Type, Reason, Object, Message (+ Subobject, Source, First Seen, Count, Name). A kind
//! without a printer gets the default convertor's Name and Created At. Each row carries the object
//! as `includeObject` asks: `None`, `Metadata` (the default: a `PartialObjectMetadata`) or
//! `Object`. Ages are computed when the table is rendered, with apimachinery's `HumanDuration`.

use serde_json::{Value, json};

use crate::resource::Kind;
use crate::status::ApiError;

/// What each row carries besides its cells (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    /// No object.
    None,
    /// `PartialObjectMetadata` (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl Include {
    /// From the `includeObject` query parameter; unknown values are the real server's 400.
    pub fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value.unwrap_or("") {
            "" | "Metadata" => Ok(Include::Metadata),
            "None" => Ok(Include::None),
            "Object" => Ok(Include::Object),
            other => Err(ApiError::bad_request(format!(
                "includeObject: Unsupported value: {}: supported values: \"Metadata\", \"None\", \"Object\"",
                crate::status::quote(other)
            ))),
        }
    }
}

struct Column {
    name: &'static str,
    kind: &'static str,
    format: &'static str,
    description: &'static str,
    priority: u8,
}

const fn col(
    name: &'static str,
    kind: &'static str,
    format: &'static str,
    description: &'static str,
) -> Column {
    Column {
        name,
        kind,
        format,
        description,
        priority: 0,
    }
}

const fn wide(name: &'static str, kind: &'static str, description: &'static str) -> Column {
    Column {
        name,
        kind,
        format: "",
        description,
        priority: 1,
    }
}

const NAME: Column = col(
    "Name",
    "string",
    "name",
    "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
);
const AGE: Column = col(
    "Age",
    "string",
    "",
    "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
);

fn columns(kind: Kind) -> Vec<Column> {
    match kind {
        Kind::Lease => vec![NAME, col("Holder", "string", "", "The holder of the lease"), AGE],
        Kind::ConfigMap => vec![
            NAME,
            col("Data", "integer", "", "The number of data entries"),
            AGE,
        ],
        Kind::Endpoints => vec![
            NAME,
            col("Endpoints", "string", "", "Endpoints of the service"),
            AGE,
        ],
        Kind::Pod => vec![
            NAME,
            col(
                "Ready",
                "string",
                "",
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            col(
                "Status",
                "string",
                "",
                "The aggregate status of the containers in this pod.",
            ),
            col(
                "Restarts",
                "string",
                "",
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            AGE,
            wide("IP", "string", "IP address allocated to the pod."),
            wide("Node", "string", "Name of the node the pod is assigned to."),
            wide(
                "Nominated Node",
                "string",
                "Name of the node the pod is nominated to.",
            ),
            wide("Readiness Gates", "string", "Pod readiness gates."),
        ],
        Kind::Event | Kind::EventV1 => vec![
            col(
                "Last Seen",
                "string",
                "",
                "Time when last event from this object was seen.",
            ),
            col("Type", "string", "", "Type of this event."),
            col("Reason", "string", "", "Reason of this event."),
            col("Object", "string", "", "The object this event is about."),
            wide(
                "Subobject",
                "string",
                "Subobject of the object this event is about.",
            ),
            wide("Source", "string", "The source of this event."),
            col("Message", "string", "", "Message of this event."),
            wide(
                "First Seen",
                "string",
                "Time when first event from this object was seen.",
            ),
            wide("Count", "string", "Number of times this event has been seen."),
            wide("Name", "string", "Name of this event."),
        ],
        #[allow(unreachable_patterns)]
        _ => vec![
            NAME,
            col("Created At", "date", "", "Time when this object was created."),
        ],
    }
}

/// apimachinery's `duration.HumanDuration`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{h}h")
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        let d = days % 365;
        return if d == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{d}d")
        };
    }
    format!("{years}y")
}

/// `translateTimestampSince`: the age of an RFC 3339 timestamp at `now`, `<unknown>` when unset.
fn since(ts: Option<&str>, now: jiff::Timestamp) -> String {
    match ts.and_then(|t| t.parse::<jiff::Timestamp>().ok()) {
        Some(t) => human_duration(now.as_second() - t.as_second()),
        None => "<unknown>".into(),
    }
}

fn s<'a>(obj: &'a Value, ptr: &str) -> &'a str {
    obj.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn or_none(v: &str) -> String {
    if v.is_empty() {
        "<none>".into()
    } else {
        v.to_owned()
    }
}

fn endpoints_cell(obj: &Value) -> String {
    let mut addrs = Vec::new();
    for subset in obj["subsets"].as_array().into_iter().flatten() {
        let ports: Vec<i64> = subset["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["port"].as_i64())
            .collect();
        for a in subset["addresses"].as_array().into_iter().flatten() {
            let ip = a["ip"].as_str().unwrap_or("");
            if ports.is_empty() {
                addrs.push(ip.to_owned());
            } else {
                addrs.extend(ports.iter().map(|p| format!("{ip}:{p}")));
            }
        }
    }
    match addrs.len() {
        0 => "<none>".into(),
        n if n <= 3 => addrs.join(","),
        n => format!("{} + {} more...", addrs[..3].join(","), n - 3),
    }
}

fn cells(kind: Kind, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let name = s(obj, "/metadata/name");
    let age = since(
        obj.pointer("/metadata/creationTimestamp").and_then(Value::as_str),
        now,
    );
    match kind {
        Kind::Lease => vec![name.into(), s(obj, "/spec/holderIdentity").into(), age.into()],
        Kind::ConfigMap => {
            let n = |k: &str| obj[k].as_object().map_or(0, serde_json::Map::len);
            vec![name.into(), (n("data") + n("binaryData")).into(), age.into()]
        }
        Kind::Endpoints => vec![name.into(), endpoints_cell(obj).into(), age.into()],
        Kind::Pod => {
            let statuses = obj.pointer("/status/containerStatuses").and_then(Value::as_array);
            let total = obj
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = statuses
                .into_iter()
                .flatten()
                .filter(|c| c["ready"] == true)
                .count();
            let restarts: i64 = statuses
                .into_iter()
                .flatten()
                .filter_map(|c| c["restartCount"].as_i64())
                .sum();
            let status = match s(obj, "/status/reason") {
                "" => s(obj, "/status/phase"),
                r => r,
            };
            let gates = obj
                .pointer("/spec/readinessGates")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            vec![
                name.into(),
                format!("{ready}/{total}").into(),
                status.into(),
                restarts.to_string().into(),
                age.into(),
                or_none(s(obj, "/status/podIP")).into(),
                or_none(s(obj, "/spec/nodeName")).into(),
                or_none(s(obj, "/status/nominatedNodeName")).into(),
                if gates == 0 {
                    "<none>".into()
                } else {
                    format!("0/{gates}").into()
                },
            ]
        }
        Kind::Event | Kind::EventV1 => {
            let (object, source) = if kind == Kind::EventV1 {
                ("/regarding", s(obj, "/reportingController").to_owned())
            } else {
                let component = s(obj, "/source/component");
                let host = s(obj, "/source/host");
                (
                    "/involvedObject",
                    if host.is_empty() {
                        component.to_owned()
                    } else {
                        format!("{component}, {host}")
                    },
                )
            };
            let last = [
                "/lastTimestamp",
                "/deprecatedLastTimestamp",
                "/eventTime",
                "/series/lastObservedTime",
            ]
            .iter()
            .find_map(|p| obj.pointer(p).and_then(Value::as_str))
            .or_else(|| obj.pointer("/metadata/creationTimestamp").and_then(Value::as_str));
            let first = ["/firstTimestamp", "/deprecatedFirstTimestamp", "/eventTime"]
                .iter()
                .find_map(|p| obj.pointer(p).and_then(Value::as_str));
            let count = ["/count", "/deprecatedCount", "/series/count"]
                .iter()
                .find_map(|p| obj.pointer(p).and_then(Value::as_i64))
                .unwrap_or(1);
            let message = if kind == Kind::EventV1 {
                s(obj, "/note")
            } else {
                s(obj, "/message")
            };
            vec![
                since(last, now).into(),
                s(obj, "/type").into(),
                s(obj, "/reason").into(),
                format!(
                    "{}/{}",
                    s(obj, &format!("{object}/kind")).to_ascii_lowercase(),
                    s(obj, &format!("{object}/name"))
                )
                .into(),
                s(obj, &format!("{object}/fieldPath")).into(),
                or_none(&source).into(),
                message.trim().into(),
                since(first, now).into(),
                count.to_string().into(),
                name.into(),
            ]
        }
        #[allow(unreachable_patterns)]
        _ => vec![name.into(), s(obj, "/metadata/creationTimestamp").into()],
    }
}

fn row(kind: Kind, obj: &Value, include: Include, now: jiff::Timestamp) -> Value {
    let mut row = json!({"cells": cells(kind, obj, now)});
    match include {
        Include::None => {}
        Include::Object => row["object"] = obj.clone(),
        Include::Metadata => {
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
            });
        }
    }
    row
}

/// A `Table` of `objects` at `now`; `resource_version` for a list, `None` for one object.
pub fn table<'a>(
    kind: Kind,
    objects: impl IntoIterator<Item = &'a Value>,
    resource_version: Option<u64>,
    include: Include,
    now: jiff::Timestamp,
) -> Value {
    let defs: Vec<Value> = columns(kind)
        .into_iter()
        .map(|c| {
            json!({"name": c.name, "type": c.kind, "format": c.format, "description": c.description, "priority": c.priority})
        })
        .collect();
    let rows: Vec<Value> = objects.into_iter().map(|o| row(kind, o, include, now)).collect();
    let metadata = match resource_version {
        Some(rv) => json!({"resourceVersion": rv.to_string()}),
        None => json!({}),
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": defs,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: &str) -> jiff::Timestamp {
        t.parse().unwrap_or_default()
    }

    #[test]
    fn ages_read_as_kubectls() {
        for (secs, want) in [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (125, "2m5s"),
            (600, "10m"),
            (3 * 3600 - 1, "179m"),
            (3 * 3600 + 60, "3h1m"),
            (10 * 3600, "10h"),
            (3 * 86400 + 3600, "3d1h"),
            (30 * 86400, "30d"),
            (3 * 365 * 86400 + 86400, "3y1d"),
            (9 * 365 * 86400, "9y"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs}s");
        }
    }

    #[test]
    fn a_lease_row_shows_its_holder_and_age() {
        let lease = json!({
            "kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
            "metadata": {"name": "lock", "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z", "resourceVersion": "7"},
            "spec": {"holderIdentity": "pod-a"},
        });
        let t = table(
            Kind::Lease,
            [&lease],
            Some(9),
            Include::Metadata,
            at("2026-01-01T00:02:05Z"),
        );
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, ["Name", "Holder", "Age"]);
        assert_eq!(t["rows"][0]["cells"], json!(["lock", "pod-a", "2m5s"]));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["rows"][0]["object"]["metadata"]["resourceVersion"], "7");
        assert_eq!(t["metadata"]["resourceVersion"], "9");
        let bare = table(
            Kind::Lease,
            [&lease],
            None,
            Include::None,
            at("2026-01-01T00:00:00Z"),
        );
        assert_eq!(bare["rows"][0].get("object"), None);
        let full = table(
            Kind::Lease,
            [&lease],
            None,
            Include::Object,
            at("2026-01-01T00:00:00Z"),
        );
        assert_eq!(full["rows"][0]["object"], lease);
    }

    #[test]
    fn configmaps_count_data_and_binary_data() {
        let cm =
            json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
        let t = table(
            Kind::ConfigMap,
            [&cm],
            Some(1),
            Include::None,
            at("2026-01-01T00:00:00Z"),
        );
        assert_eq!(t["rows"][0]["cells"], json!(["c", 3, "<unknown>"]));
    }

    #[test]
    fn include_object_values_are_checked() {
        assert_eq!(Include::parse(None).ok(), Some(Include::Metadata));
        assert_eq!(Include::parse(Some("Object")).ok(), Some(Include::Object));
        let err = Include::parse(Some("All")).err().map(|e| (e.code, e.message));
        assert_eq!(
            err,
            Some((
                400,
                "includeObject: Unsupported value: \"All\": supported values: \"Metadata\", \"None\", \"Object\"".into()
            ))
        );
    }
}
