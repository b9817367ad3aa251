//! Request counts per client and the log of applied writes.
//!
//! Every accepted connection is counted, and every request when it arrives, before any fault or
//! auth decision: API requests keyed by client and `"<verb> <resource>"` (`"update leases"`,
//! `"watch leases"`), requests without a known bearer token under [`ANONYMOUS`] (the user name the
//! real API server gives them), and requests for paths outside the API (`/version`, unknown
//! paths) as `"<METHOD> <path>"`. Only the admin API (`/sim/...`, the observer's own channel) is
//! not counted. So "nothing reached the API server" is `connections() == 0`. The write log itself
//! is appended by the store under its lock (so sequence numbers and resourceVersions agree); this
//! module owns the record type and the counters.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The client name requests without a known bearer token are counted under.
pub const ANONYMOUS: &str = "system:anonymous";

use serde::{Deserialize, Serialize};

/// Counts per client, then per `"verb resource"`.
pub type RequestCounts = BTreeMap<String, BTreeMap<String, u64>>;

/// One applied write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteRecord {
    /// 1-based position in the log.
    pub seq: u64,
    /// The resourceVersion the write produced.
    pub resource_version: String,
    /// The client that wrote (`sim` for objects the simulator creates itself).
    pub client: String,
    /// create, update, patch or delete.
    pub verb: String,
    /// Plural resource (`leases`).
    pub resource: String,
    pub namespace: String,
    pub name: String,
    /// CLOCK_MONOTONIC in nanoseconds at the moment the write was applied.
    pub monotonic_ns: u64,
    /// The object as stored (for deletes: as it was when deleted).
    pub object: serde_json::Value,
}

/// Request counters.
#[derive(Debug, Default)]
pub struct Accounting {
    counts: Mutex<RequestCounts>,
    connections: AtomicU64,
}

impl Accounting {
    /// Counts one accepted connection (before TLS or any request on it).
    pub fn connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections accepted since start (or the last reset).
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Counts one request.
    pub fn count(&self, client: &str, verb: &str, resource: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *counts
            .entry(client.to_owned())
            .or_default()
            .entry(format!("{verb} {resource}"))
            .or_default() += 1;
    }

    /// A copy of all counts.
    pub fn snapshot(&self) -> RequestCounts {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Resets all counts, connections included.
    pub fn reset(&self) {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.connections.store(0, Ordering::Relaxed);
    }
}

/// CLOCK_MONOTONIC now, in nanoseconds (comparable across processes on this machine).
pub fn monotonic_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(ts.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(ts.tv_nsec).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_client_and_verb() {
        let a = Accounting::default();
        a.count("a", "update", "leases");
        a.count("a", "update", "leases");
        a.count("b", "watch", "leases");
        let s = a.snapshot();
        assert_eq!(s["a"]["update leases"], 2);
        assert_eq!(s["b"]["watch leases"], 1);
        a.connection();
        assert_eq!(a.connections(), 1);
        a.reset();
        assert!(a.snapshot().is_empty());
        assert_eq!(a.connections(), 0);
    }

    #[test]
    fn monotonic_clock_advances() {
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(a > 0 && b >= a, "expected {b} >= {a} > 0");
    }
}
