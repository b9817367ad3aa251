//! The leader record: what a lock object says about who holds it.
//!
//! This is client-go's `LeaderElectionRecord`. A Lease stores it in its `spec`; a ConfigMap or an
//! Endpoints object stores it as JSON in the `control-plane.alpha.kubernetes.io/leader`
//! annotation, in client-go's field names, so tools that read that annotation keep working.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The annotation under which ConfigMap and Endpoints locks keep the record.
pub const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";

/// Who holds the lock, since when, and for how long others must wait.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderRecord {
    /// The holder's identity; empty when the lock was released.
    #[serde(default)]
    pub holder_identity: String,
    /// How long, in seconds, others wait after observing a change before taking over.
    #[serde(default)]
    pub lease_duration_seconds: i32,
    /// When the current holder took the lock.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "optional_time")]
    pub acquire_time: Option<Timestamp>,
    /// When the current holder last renewed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "optional_time")]
    pub renew_time: Option<Timestamp>,
    /// How many times the lock changed hands; the fencing token of its holder.
    #[serde(default)]
    pub leader_transitions: i32,
}

impl LeaderRecord {
    /// The holder, or `None` when the lock is free.
    pub fn holder(&self) -> Option<&str> {
        if self.holder_identity.is_empty() {
            None
        } else {
            Some(&self.holder_identity)
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
        }
    }
}

/// Timestamps in annotations are written with microseconds (like a Lease's `MicroTime`), so that
/// two renewals within one second still differ; client-go's RFC 3339 parser accepts the fraction.
mod optional_time {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Timestamp>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(at) => serializer.serialize_str(&super::format_micros(*at)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Timestamp>, D::Error> {
        let text: Option<String> = Option::deserialize(deserializer)?;
        match text.as_deref() {
            None | Some("") => Ok(None),
            Some(text) => text.parse().map(Some).map_err(serde::de::Error::custom),
        }
    }
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

    #[test]
    fn annotation_json_uses_client_go_field_names() {
        let at: Timestamp = "2026-03-04T05:06:07.891234Z".parse().unwrap();
        let record = LeaderRecord {
            holder_identity: "pod-a".into(),
            lease_duration_seconds: 15,
            acquire_time: Some(at),
            renew_time: Some(at),
            leader_transitions: 4,
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "holderIdentity": "pod-a",
                "leaseDurationSeconds": 15,
                "acquireTime": "2026-03-04T05:06:07.891234Z",
                "renewTime": "2026-03-04T05:06:07.891234Z",
                "leaderTransitions": 4,
            })
        );
        let back: LeaderRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn reads_records_written_by_client_go() {
        // client-go writes metav1.Time with second precision and may omit fields.
        let text = r#"{"holderIdentity":"b","leaseDurationSeconds":10,"acquireTime":"2019-05-02T18:28:51Z","renewTime":"2019-05-02T18:29:01Z","leaderTransitions":2}"#;
        let record: LeaderRecord = serde_json::from_str(text).unwrap();
        assert_eq!(record.holder(), Some("b"));
        assert_eq!(record.fencing_token(), 2);
        assert_eq!(record.renew_time.unwrap().to_string(), "2019-05-02T18:29:01Z");
        let empty: LeaderRecord = serde_json::from_str("{}").unwrap();
        assert_eq!(empty.holder(), None);
    }

    #[test]
    fn release_keeps_the_transition_count() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let held = LeaderRecord {
            holder_identity: "a".into(),
            leader_transitions: 7,
            ..Default::default()
        };
        let released = held.released(now);
        assert_eq!(released.holder(), None);
        assert_eq!(released.lease_duration_seconds, 1);
        assert_eq!(released.leader_transitions, 7);
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
}
