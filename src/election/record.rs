//! The leader record: what a lock object says about who holds it.
//!
//! This is client-go's `LeaderElectionRecord`. A Lease stores it in its `spec`; a ConfigMap or an
//! Endpoints object stores it as JSON in the `control-plane.alpha.kubernetes.io/leader`
//! annotation, in client-go's field names, so tools that read that annotation keep working.
//!
//! Reading is **total and lenient** ([`LeaderRecord::from_annotation`]): other clients and people
//! write this annotation too, so numbers may come as strings (`"leaseDurationSeconds": "15"`),
//! times with or without fractional seconds and with any offset, and fields may be missing. Text
//! that is not a record at all (not a JSON object, a holder that is not a string) is kept as an
//! [`LeaderRecord::unreadable`] record: held by an unknown holder, never an error, never a panic.
//!
//! Two fields are not part of client-go's record and never appear in its JSON: the holder's
//! [`incarnation`](LeaderRecord::incarnation), which the lock keeps in its own annotation
//! ([`INCARNATION_ANNOTATION`]), and the unreadable text.

use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use super::takeover::{TakeoverNote, micros};

/// The annotation under which ConfigMap and Endpoints locks keep the record.
pub const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";

/// The annotation, on every kind of lock, naming the holder's incarnation (see
/// [`super::incarnation`]). client-go and other clients ignore it and keep it when they rewrite
/// the object, so its value also names the holder it belongs to: an incarnation left behind by
/// an earlier holder does not count for a new one.
pub const INCARNATION_ANNOTATION: &str = "kube-elector/holder-incarnation";

/// The annotation, on every kind of lock, in which a holder publishes the address at which the
/// other replicas reach it (`HOST:PORT`, the leader-forwarding proxy's `--advertise-address`).
/// It is written in the same conditional write as the claim, and read only while the
/// [`INCARNATION_ANNOTATION`] belongs to the holder: a client that rewrites the record keeps
/// annotations it does not know, so an address left behind by an earlier holder must not count.
pub const ADDRESS_ANNOTATION: &str = "kube-elector.io/leader-address";

/// Who holds the lock, since when, and for how long others must wait.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderRecord {
    /// The holder's identity; empty when the lock was released.
    pub holder_identity: String,
    /// How long, in seconds, others wait after observing a change before taking over.
    pub lease_duration_seconds: i32,
    /// When the current holder took the lock.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "serialize_time")]
    pub acquire_time: Option<Timestamp>,
    /// When the current holder last renewed.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "serialize_time")]
    pub renew_time: Option<Timestamp>,
    /// How many times the lock changed hands; the fencing token of its holder.
    pub leader_transitions: i32,
    /// The holder process's incarnation, from [`INCARNATION_ANNOTATION`]; `None` for holders
    /// that do not write one (client-go, older versions, people).
    #[serde(skip)]
    pub incarnation: Option<String>,
    /// The highest transition count the writer had seen, kept with the incarnation in
    /// [`INCARNATION_ANNOTATION`]: a rewrite of the record by another client (which keeps
    /// annotations it does not know) cannot make a candidate that starts later forget it.
    #[serde(skip)]
    pub fence: Option<u64>,
    /// The address the holder advertises for its proxy, from [`ADDRESS_ANNOTATION`]; `None`
    /// when it advertises none or the annotation is not the holder's.
    #[serde(skip)]
    pub address: Option<String>,
    /// The lock's record text when it could not be read as a record: the lock then counts as
    /// held by an unknown holder (see [`super::decide`]).
    #[serde(skip)]
    pub unreadable: Option<String>,
    /// What the holder's takeover taught the group (see [`super::takeover`]), kept with the
    /// incarnation in [`INCARNATION_ANNOTATION`] and carried on every renewal and the release,
    /// so a process that starts later begins from the group's model.
    #[serde(skip)]
    pub takeover: Option<TakeoverNote>,
}

/// Who a record says holds the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holding<'a> {
    /// Nobody: released, stripped or never taken.
    Free,
    /// This identity.
    Held(&'a str),
    /// Somebody: the record could not be read.
    Unknown,
}

impl LeaderRecord {
    /// The holder, or `None` when the lock is free or its holder unknown.
    pub fn holder(&self) -> Option<&str> {
        match self.holding() {
            Holding::Held(holder) => Some(holder),
            Holding::Free | Holding::Unknown => None,
        }
    }

    /// Who holds the lock according to this record.
    pub fn holding(&self) -> Holding<'_> {
        if self.unreadable.is_some() {
            Holding::Unknown
        } else if self.holder_identity.is_empty() {
            Holding::Free
        } else {
            Holding::Held(&self.holder_identity)
        }
    }

    /// The transition count as a fencing token (a negative count, which no well-behaved writer
    /// produces, reads as 0).
    pub fn fencing_token(&self) -> u64 {
        u64::try_from(self.leader_transitions).unwrap_or(0)
    }

    /// The record a leader writes when it lets go on shutdown, as client-go does: no holder, a
    /// one-second duration, the transition count unchanged.
    pub fn released(&self, now: Timestamp) -> LeaderRecord {
        LeaderRecord {
            holder_identity: String::new(),
            lease_duration_seconds: 1,
            acquire_time: Some(now),
            renew_time: Some(now),
            leader_transitions: self.leader_transitions,
            incarnation: None,
            fence: self.fence,
            address: None,
            unreadable: None,
            takeover: self.takeover,
        }
    }

    /// The highest token this record shows: its count, or the fence noted with it; none for
    /// an unreadable record.
    pub fn seen_token(&self) -> Option<u64> {
        if self.unreadable.is_some() {
            return None;
        }
        Some(self.fencing_token().max(self.fence.unwrap_or(0)))
    }

    /// Whether this record is its predecessor's holder letting go (as [`Self::released`] and
    /// client-go write it): no holder, a renew time, and the transition count kept. A stripped
    /// record, or one rewritten with a lower count, is not a release.
    pub fn releases(&self, previous: &LeaderRecord) -> bool {
        self.holding() == Holding::Free
            && self.renew_time.is_some()
            && previous.unreadable.is_none()
            && self.leader_transitions >= previous.leader_transitions
    }

    /// The record JSON, in client-go's field names (the incarnation is not part of it).
    pub fn to_annotation(&self) -> String {
        // A struct of strings and integers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads the annotation text, leniently and totally: see the module documentation.
    pub fn from_annotation(text: &str) -> LeaderRecord {
        let unreadable = || LeaderRecord {
            unreadable: Some(text.to_owned()),
            ..LeaderRecord::default()
        };
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(text) else {
            return unreadable();
        };
        let holder_identity = match fields.get("holderIdentity") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(holder)) => holder.clone(),
            Some(_) => return unreadable(),
        };
        LeaderRecord {
            holder_identity,
            lease_duration_seconds: fields
                .get("leaseDurationSeconds")
                .and_then(lenient_i32)
                .unwrap_or(0),
            acquire_time: fields.get("acquireTime").and_then(lenient_time),
            renew_time: fields.get("renewTime").and_then(lenient_time),
            leader_transitions: fields.get("leaderTransitions").and_then(lenient_i32).unwrap_or(0),
            incarnation: None,
            fence: None,
            address: None,
            unreadable: None,
            takeover: None,
        }
    }
}

/// A number, or a string holding one; fractions are cut, out-of-range values saturate.
fn lenient_i32(value: &Value) -> Option<i32> {
    let number = match value {
        Value::Number(number) => number.as_f64()?,
        Value::String(text) => text.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if number.is_nan() {
        return None;
    }
    // `as` saturates at the bounds of i32 for out-of-range floats.
    Some(number as i32)
}

/// An RFC 3339 time, with or without fractional seconds, in any offset.
fn lenient_time(value: &Value) -> Option<Timestamp> {
    let text = value.as_str()?.trim();
    if text.is_empty() {
        return None;
    }
    text.parse::<Timestamp>()
        .ok()
        .or_else(|| text.replace(' ', "T").parse::<Timestamp>().ok())
}

fn serialize_time<S: serde::Serializer>(value: &Option<Timestamp>, serializer: S) -> Result<S::Ok, S::Error> {
    // Times in annotations are written with microseconds (like a Lease's `MicroTime`), so that
    // two renewals within one second still differ; client-go's RFC 3339 parser accepts the fraction.
    match value {
        Some(at) => serializer.serialize_str(&format_micros(*at)),
        None => serializer.serialize_none(),
    }
}

/// The value of [`INCARNATION_ANNOTATION`] for `record`: the holder it belongs to, its
/// incarnation, the highest transition count its writer had seen, and its takeover note;
/// `None` when the record carries none of them.
pub fn incarnation_annotation(record: &LeaderRecord) -> Option<String> {
    if record.incarnation.is_none() && record.fence.is_none() && record.takeover.is_none() {
        return None;
    }
    let mut value = serde_json::json!({"holderIdentity": record.holder_identity});
    if let Some(incarnation) = &record.incarnation {
        value["incarnation"] = incarnation.as_str().into();
    }
    if let Some(fence) = record.fence {
        value["highestTransitions"] = fence.into();
    }
    if let Some(note) = record.takeover {
        value["takeover"] = serde_json::json!({
            "delayMicros": micros(note.delay),
            "unitMicros": micros(note.unit),
            "size": note.size,
        });
    }
    Some(value.to_string())
}

/// The takeover note an [`INCARNATION_ANNOTATION`] value gives `holder` (the empty holder of a
/// released lock included); `None` when it is missing, unreadable, or was written for another
/// holder (a client that rewrote the lock kept an annotation it does not know).
pub fn takeover_for(annotation: Option<&str>, holder: &str) -> Option<TakeoverNote> {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(annotation?) else {
        return None;
    };
    if fields.get("holderIdentity").and_then(Value::as_str) != Some(holder) {
        return None;
    }
    let note = fields.get("takeover")?;
    let field = |name: &str| note.get(name).and_then(Value::as_u64);
    Some(TakeoverNote {
        delay: Duration::from_micros(field("delayMicros")?),
        unit: Duration::from_micros(field("unitMicros")?),
        size: u32::try_from(field("size")?).ok()?,
    })
}

/// The highest transition count an [`INCARNATION_ANNOTATION`] value notes, whoever wrote it.
pub fn fence_in(annotation: Option<&str>) -> Option<u64> {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(annotation?) else {
        return None;
    };
    fields
        .get("highestTransitions")
        .and_then(lenient_i32)
        .and_then(|t| u64::try_from(t).ok())
}

/// The incarnation an [`INCARNATION_ANNOTATION`] value gives `holder`; `None` when it is
/// missing, unreadable, or belongs to another holder.
pub fn incarnation_for(annotation: Option<&str>, holder: &str) -> Option<String> {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(annotation?) else {
        return None;
    };
    if holder.is_empty() || fields.get("holderIdentity").and_then(Value::as_str) != Some(holder) {
        return None;
    }
    fields
        .get("incarnation")
        .and_then(Value::as_str)
        .filter(|i| !i.is_empty())
        .map(str::to_owned)
}

/// RFC 3339 in UTC with exactly six fractional digits, the API server's `MicroTime` format.
pub fn format_micros(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Truncates to whole microseconds, the precision a Lease stores.
pub fn truncate_micros(at: Timestamp) -> Timestamp {
    let nanos = at.as_nanosecond();
    Timestamp::from_nanosecond(nanos - nanos.rem_euclid(1_000)).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn annotation_json_uses_client_go_field_names() {
        let at: Timestamp = "2026-03-04T05:06:07.891234Z".parse().unwrap();
        let record = LeaderRecord {
            holder_identity: "pod-a".into(),
            lease_duration_seconds: 15,
            acquire_time: Some(at),
            renew_time: Some(at),
            leader_transitions: 4,
            incarnation: Some("not in the record".into()),
            fence: Some(9),
            address: None,
            unreadable: None,
            takeover: None,
        };
        let json: Value = serde_json::from_str(&record.to_annotation()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "holderIdentity": "pod-a",
                "leaseDurationSeconds": 15,
                "acquireTime": "2026-03-04T05:06:07.891234Z",
                "renewTime": "2026-03-04T05:06:07.891234Z",
                "leaderTransitions": 4,
            }),
            "client-go's fields, and nothing else"
        );
        let back = LeaderRecord::from_annotation(&record.to_annotation());
        assert_eq!(
            back,
            LeaderRecord {
                incarnation: None,
                fence: None,
                ..record
            }
        );
    }

    #[test]
    fn reads_records_written_by_client_go() {
        // client-go writes metav1.Time with second precision and may omit fields.
        let text = r#"{"holderIdentity":"b","leaseDurationSeconds":10,"acquireTime":"2019-05-02T18:28:51Z","renewTime":"2019-05-02T18:29:01Z","leaderTransitions":2}"#;
        let record = LeaderRecord::from_annotation(text);
        assert_eq!(record.holder(), Some("b"));
        assert_eq!(record.fencing_token(), 2);
        assert_eq!(record.renew_time.unwrap().to_string(), "2019-05-02T18:29:01Z");
        let empty = LeaderRecord::from_annotation("{}");
        assert_eq!(empty.holding(), Holding::Free);
    }

    #[test]
    fn reads_numbers_as_strings_times_with_offsets_and_missing_fields() {
        // As a Kubernetes client library that stringifies numbers writes it.
        let text = r#"{"holderIdentity":"py-1","leaseDurationSeconds":"15","renewTime":"2026-01-02T03:04:05+02:00","leaderTransitions":" 7 "}"#;
        let record = LeaderRecord::from_annotation(text);
        assert_eq!(record.holding(), Holding::Held("py-1"));
        assert_eq!(record.lease_duration_seconds, 15);
        assert_eq!(record.leader_transitions, 7);
        assert_eq!(record.renew_time.unwrap().to_string(), "2026-01-02T01:04:05Z");
        assert_eq!(record.acquire_time, None, "a missing optional field is None");
        let spaced =
            LeaderRecord::from_annotation(r#"{"holderIdentity":"x","renewTime":"2026-01-02 03:04:05.5Z"}"#);
        assert_eq!(spaced.renew_time.unwrap().to_string(), "2026-01-02T03:04:05.5Z");
        let float = LeaderRecord::from_annotation(
            r#"{"holderIdentity":"x","leaseDurationSeconds":15.9,"leaderTransitions":1e300}"#,
        );
        assert_eq!(float.lease_duration_seconds, 15);
        assert_eq!(float.leader_transitions, i32::MAX, "out of range saturates");
        let garbage_fields = LeaderRecord::from_annotation(
            r#"{"holderIdentity":"x","leaseDurationSeconds":"soon","renewTime":"yesterday","leaderTransitions":[1]}"#,
        );
        assert_eq!(
            garbage_fields.holding(),
            Holding::Held("x"),
            "bad optional fields are dropped"
        );
        assert_eq!(garbage_fields.lease_duration_seconds, 0);
        assert_eq!(garbage_fields.renew_time, None);
    }

    #[test]
    fn text_that_is_not_a_record_is_held_by_an_unknown_holder() {
        for text in ["{not json", "[1,2]", "\"x\"", r#"{"holderIdentity": 5}"#, "null"] {
            let record = LeaderRecord::from_annotation(text);
            assert_eq!(record.holding(), Holding::Unknown, "{text}");
            assert_eq!(record.holder(), None);
            assert_eq!(record.unreadable.as_deref(), Some(text));
        }
    }

    #[test]
    fn the_incarnation_annotation_counts_only_for_the_holder_it_names() {
        let value = incarnation_annotation(&LeaderRecord {
            holder_identity: "pod-a".into(),
            incarnation: Some("uid/1/ff".into()),
            fence: Some(12),
            ..LeaderRecord::default()
        })
        .unwrap();
        assert_eq!(
            fence_in(Some(&value)),
            Some(12),
            "read whoever holds the lock now"
        );
        assert_eq!(fence_in(Some("{}")), None);
        assert_eq!(
            incarnation_for(Some(&value), "pod-a").as_deref(),
            Some("uid/1/ff")
        );
        assert_eq!(
            incarnation_for(Some(&value), "pod-b"),
            None,
            "left by an earlier holder"
        );
        assert_eq!(incarnation_for(Some(&value), ""), None);
        assert_eq!(incarnation_for(Some("garbage"), "pod-a"), None);
        assert_eq!(incarnation_for(None, "pod-a"), None);
    }

    #[test]
    fn release_keeps_the_transition_count() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let held = LeaderRecord {
            holder_identity: "a".into(),
            leader_transitions: 7,
            incarnation: Some("i".into()),
            ..Default::default()
        };
        let released = held.released(now);
        assert_eq!(released.holder(), None);
        assert_eq!(released.lease_duration_seconds, 1);
        assert_eq!(released.leader_transitions, 7);
        assert!(released.releases(&held));
        assert!(
            !LeaderRecord::default().releases(&held),
            "a stripped record is not a release"
        );
        let lowered = LeaderRecord {
            leader_transitions: 0,
            ..released
        };
        assert!(
            !lowered.releases(&held),
            "a lower count is a rewrite, not a release"
        );
    }

    #[test]
    fn micro_time_format_has_six_digits() {
        let at: Timestamp = "2026-01-01T00:00:00.5Z".parse().unwrap();
        assert_eq!(format_micros(at), "2026-01-01T00:00:00.500000Z");
        let fine: Timestamp = "2026-01-01T00:00:00.123456789Z".parse().unwrap();
        assert_eq!(
            format_micros(truncate_micros(fine)),
            "2026-01-01T00:00:00.123456Z"
        );
        assert_eq!(fencing(-3), 0);
    }

    fn fencing(transitions: i32) -> u64 {
        LeaderRecord {
            leader_transitions: transitions,
            ..Default::default()
        }
        .fencing_token()
    }

    /// JSON-ish values built from the pieces records are made of, so that most cases reach the
    /// field parsers instead of failing as JSON at once.
    fn field_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            ".{0,40}".prop_map(Value::String),
            "[0-9 +.eE-]{0,24}".prop_map(Value::String),
            "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:[0-9]{2})?"
                .prop_map(Value::String),
            prop::collection::vec(any::<i32>().prop_map(Value::from), 0..3).prop_map(Value::Array),
        ]
    }

    fn record_text() -> impl Strategy<Value = String> {
        let keys = prop_oneof![
            Just("holderIdentity".to_owned()),
            Just("leaseDurationSeconds".to_owned()),
            Just("acquireTime".to_owned()),
            Just("renewTime".to_owned()),
            Just("leaderTransitions".to_owned()),
            "[a-zA-Z]{0,8}",
        ];
        prop_oneof![
            prop::collection::btree_map(keys, field_value(), 0..7)
                .prop_map(|fields| Value::Object(fields.into_iter().collect()).to_string()),
            ".{0,64}",
        ]
    }

    proptest! {
        // Bounded: a few hundred cases, well under a second.
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn any_annotation_text_parses_to_some_record(text in record_text()) {
            let record = LeaderRecord::from_annotation(&text);
            // Total: always a record, and one that either is unreadable or round-trips.
            if record.unreadable.is_none() {
                let again = LeaderRecord::from_annotation(&record.to_annotation());
                prop_assert_eq!(again.holder_identity, record.holder_identity);
                prop_assert_eq!(again.lease_duration_seconds, record.lease_duration_seconds);
                prop_assert_eq!(again.leader_transitions, record.leader_transitions);
            } else {
                prop_assert_eq!(record.holding(), Holding::Unknown);
            }
        }

        #[test]
        fn any_incarnation_annotation_is_read_without_panicking(text in ".{0,64}", holder in ".{0,8}") {
            let _ = incarnation_for(Some(&text), &holder);
            let _ = fence_in(Some(&text));
        }
    }
}
