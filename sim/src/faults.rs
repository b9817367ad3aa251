//! Per-client fault injection: the JSON fault spec and the table of active faults.
//!
//! A [`Fault`] is set per client at run time (admin API `PUT /sim/faults/<client>` or
//! [`crate::Sim::set_fault`]) and replaces the previous one. Request faults (latency, hang, fail,
//! drop, lose_response) apply to the verbs listed in `verbs` (all verbs when absent); `partition`
//! applies to every request of the client and cuts its open watch streams; `watch` governs the
//! client's watch streams. Every change bumps a generation counter that open watch streams
//! observe, so `close`/`partition` take effect at once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rand::Rng;
use serde::{Deserialize, Serialize};

/// A fault spec. All fields are optional; the default is "no fault".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Fault {
    /// Delay before answering, in milliseconds.
    pub latency_ms: u64,
    /// Never answer: hold the connection open until the simulator shuts down.
    pub hang: bool,
    /// Refuse: close the connection at once with no response, and cut open watch streams.
    pub partition: bool,
    /// Answer with an error status at some ratio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail: Option<FailSpec>,
    /// Ratio of requests whose connection is closed before they are applied.
    pub drop_ratio: f64,
    /// Ratio of requests that are applied, after which the connection is closed instead of answered.
    pub lose_response_ratio: f64,
    /// What the client's watch streams do.
    pub watch: WatchMode,
    /// Restricts request faults to these verbs (get, list, watch, create, update, patch, delete).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verbs: Option<Vec<String>>,
    /// Finish a request even when its client hangs up before the answer (during `latency_ms`):
    /// a write is then applied although its client has gone, one of the outcomes the real API
    /// server has for a write whose client disconnects. By default such a request is abandoned
    /// (not applied).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub complete_abandoned: bool,
}

/// The `fail` part of a [`Fault`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FailSpec {
    /// HTTP status to answer with (429, 500, 503, ...).
    pub status: u16,
    /// Fraction of matching requests that fail, 0.0..=1.0.
    pub ratio: f64,
    /// `Retry-After` seconds (sent with 429 and 503).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u32>,
}

impl Default for FailSpec {
    fn default() -> Self {
        Self {
            status: 503,
            ratio: 1.0,
            retry_after_seconds: None,
        }
    }
}

/// What a client's watch streams do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    /// Deliver events.
    #[default]
    Normal,
    /// End open streams now, and new ones right after they start.
    Close,
    /// Keep streams open but deliver nothing; events are lost to those streams.
    Stall,
}

/// Errors in a fault spec.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("fault spec: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("fault spec: {field} must be within 0.0..=1.0, got {value}")]
    Ratio { field: &'static str, value: f64 },
    #[error("fault spec: fail.status must be an HTTP error status 400..=599, got {0}")]
    Status(u16),
    #[error("fault spec: verbs[]: unknown verb {0:?}; use get, list, watch, create, update, patch or delete")]
    Verb(String),
}

const VERBS: [&str; 7] = ["get", "list", "watch", "create", "update", "patch", "delete"];

impl Fault {
    /// Parses and checks a JSON fault spec (unknown fields are rejected, naming the field).
    pub fn from_json(body: &[u8]) -> Result<Self, Error> {
        let fault: Fault = serde_json::from_slice(body)?;
        fault.check()?;
        Ok(fault)
    }

    /// Checks ranges and verb names.
    pub fn check(&self) -> Result<(), Error> {
        let ratios = [
            ("drop_ratio", self.drop_ratio),
            ("lose_response_ratio", self.lose_response_ratio),
            ("fail.ratio", self.fail.as_ref().map_or(0.0, |f| f.ratio)),
        ];
        for (field, value) in ratios {
            if !(0.0..=1.0).contains(&value) {
                return Err(Error::Ratio { field, value });
            }
        }
        if let Some(f) = &self.fail
            && !(400..=599).contains(&f.status)
        {
            return Err(Error::Status(f.status));
        }
        for v in self.verbs.iter().flatten() {
            if !VERBS.contains(&v.as_str()) {
                return Err(Error::Verb(v.clone()));
            }
        }
        Ok(())
    }

    /// Whether request faults apply to `verb`.
    pub fn applies_to(&self, verb: &str) -> bool {
        self.verbs.as_ref().is_none_or(|v| v.iter().any(|x| x == verb))
    }
}

/// Draws true with probability `ratio`.
pub fn roll(ratio: f64) -> bool {
    ratio >= 1.0 || (ratio > 0.0 && rand::rng().random_bool(ratio))
}

/// The active faults, per client.
#[derive(Debug)]
pub struct Faults {
    table: Mutex<BTreeMap<String, Arc<Fault>>>,
    generation: tokio::sync::watch::Sender<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            table: Mutex::new(BTreeMap::new()),
            generation: tokio::sync::watch::channel(0).0,
        }
    }
}

impl Faults {
    /// The client's fault (default: none).
    pub fn get(&self, client: &str) -> Arc<Fault> {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(client)
            .cloned()
            .unwrap_or_default()
    }

    /// Replaces the client's fault.
    pub fn set(&self, client: &str, fault: Fault) {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(client.to_owned(), Arc::new(fault));
        self.generation.send_modify(|g| *g += 1);
    }

    /// Removes the client's fault.
    pub fn clear(&self, client: &str) {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(client);
        self.generation.send_modify(|g| *g += 1);
    }

    /// A receiver that changes whenever any fault changes.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_spec_round_trips() {
        let json = r#"{"latency_ms": 5, "hang": false, "partition": false,
            "fail": {"status": 429, "ratio": 0.5, "retry_after_seconds": 2},
            "drop_ratio": 0.1, "lose_response_ratio": 0.2, "watch": "stall", "verbs": ["update"]}"#;
        let f = Fault::from_json(json.as_bytes()).unwrap();
        assert_eq!(f.watch, WatchMode::Stall);
        assert_eq!(f.fail.as_ref().map(|f| f.status), Some(429));
        assert!(f.applies_to("update") && !f.applies_to("get"));
        let again: Fault = serde_json::from_value(serde_json::to_value(&f).unwrap()).unwrap();
        assert_eq!(again, f);
    }

    #[test]
    fn empty_spec_is_no_fault() {
        assert_eq!(Fault::from_json(b"{}").unwrap(), Fault::default());
        assert_eq!(serde_json::from_str::<FailSpec>("{}").unwrap().status, 503);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_named() {
        let e = Fault::from_json(br#"{"latency": 5}"#).unwrap_err().to_string();
        assert!(e.contains("unknown field `latency`"), "got {e}");
        let e = Fault::from_json(br#"{"fail": {"status": 503, "rate": 1}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `rate`"), "got {e}");
        let e = Fault::from_json(br#"{"drop_ratio": 2}"#).unwrap_err().to_string();
        assert!(e.contains("drop_ratio"), "got {e}");
        let e = Fault::from_json(br#"{"verbs": ["put"]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"put\""), "got {e}");
    }
}
