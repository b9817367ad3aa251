//! The proxy's metric families, registered only with `--proxy-listen`:
//! `elector_proxy_requests_total{outcome}` (`local`, `forwarded`, `rejected`),
//! `elector_proxy_queued_total`, `elector_proxy_queue_depth` and
//! `elector_proxy_added_latency_seconds`, with the `election` and `namespace` labels every family
//! carries.

use std::borrow::Cow;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Buckets of the added latency: 50 µs … 5 s (the queue wait during a handover is part of it).
const ADDED_LATENCY_BUCKETS: [f64; 14] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0,
];

/// What became of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Passed to this pod's application.
    Local,
    /// Forwarded to the leader's proxy.
    Forwarded,
    /// Answered 503 by the proxy (queue full or timed out, or turned away as a non-leader).
    Rejected,
}

impl Outcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Local => "local",
            Outcome::Forwarded => "forwarded",
            Outcome::Rejected => "rejected",
        }
    }
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: Outcome,
}

/// The proxy's metrics; cheap to clone.
#[derive(Clone, Debug)]
pub struct ProxyMetrics {
    requests: Family<OutcomeLabels, Counter>,
    queued: Counter,
    queue_depth: Gauge,
    added_latency: Histogram,
}

impl Default for ProxyMetrics {
    /// Handles registered nowhere.
    fn default() -> Self {
        Self {
            requests: Family::default(),
            queued: Counter::default(),
            queue_depth: Gauge::default(),
            added_latency: Histogram::new(ADDED_LATENCY_BUCKETS),
        }
    }
}

impl ProxyMetrics {
    /// Registers the families in `registry` with the election's labels.
    pub fn register(registry: &mut Registry, election: &str, namespace: &str) -> Self {
        let metrics = Self::default();
        let labelled = registry.sub_registry_with_labels(
            [
                (Cow::Borrowed("election"), Cow::Owned(election.to_owned())),
                (Cow::Borrowed("namespace"), Cow::Owned(namespace.to_owned())),
            ]
            .into_iter(),
        );
        let elector = labelled.sub_registry_with_prefix("elector");
        for outcome in [Outcome::Local, Outcome::Forwarded, Outcome::Rejected] {
            let _ = metrics.requests.get_or_create(&OutcomeLabels { outcome });
        }
        elector.register(
            "proxy_requests",
            "Requests through the leader-forwarding proxy, by outcome: passed to this pod's application \
             (local), forwarded to the leader's proxy, or answered 503 by the proxy (rejected)",
            metrics.requests.clone(),
        );
        elector.register(
            "proxy_queued",
            "Requests that had to wait for a leader (a handover) before they could be placed",
            metrics.queued.clone(),
        );
        elector.register(
            "proxy_queue_depth",
            "Requests waiting for a leader now",
            metrics.queue_depth.clone(),
        );
        elector.register_with_unit(
            "proxy_added_latency",
            "Time the proxy adds per hop: from a request's arrival until its response head is passed \
             back, minus the upstream's own time to the response head",
            prometheus_client::registry::Unit::Seconds,
            metrics.added_latency.clone(),
        );
        metrics
    }

    /// A request ended with `outcome`.
    pub fn count(&self, outcome: Outcome) {
        self.requests.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// A request began to wait; `depth` are waiting now.
    pub fn queued(&self, depth: u64) {
        self.queued.inc();
        self.set_depth(depth);
    }

    /// `depth` requests are waiting now.
    pub fn set_depth(&self, depth: u64) {
        self.queue_depth.set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// The proxy added `added` to a request.
    pub fn added(&self, added: Duration) {
        self.added_latency.observe(added.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The proxy families pass `promtool check metrics`; skipped with a note where promtool is
    /// not installed, except in CI.
    #[tokio::test]
    async fn proxy_families_are_served_and_promtool_clean() {
        let mut registry = Registry::default();
        let metrics = ProxyMetrics::register(&mut registry, "demo", "ns");
        metrics.count(Outcome::Forwarded);
        metrics.queued(3);
        metrics.added(Duration::from_micros(300));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        for line in [
            r#"elector_proxy_requests_total{election="demo",namespace="ns",outcome="forwarded"} 1"#,
            r#"elector_proxy_requests_total{election="demo",namespace="ns",outcome="local"} 0"#,
            r#"elector_proxy_queued_total{election="demo",namespace="ns"} 1"#,
            r#"elector_proxy_queue_depth{election="demo",namespace="ns"} 3"#,
            r#"elector_proxy_added_latency_seconds_count{election="demo",namespace="ns"} 1"#,
            r#"elector_proxy_added_latency_seconds_bucket{election="demo",namespace="ns",le="0.0005"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
        kube_elector_harness::tools::assert_metrics_lint_clean(&text);
    }
}
