//! Exec mode's metric families, registered only when a command is given:
//! `elector_child_running`, `elector_child_restarts_total` and
//! `elector_child_exits_total{reason}`, with the `election` and `namespace` labels every family
//! carries.

use std::borrow::Cow;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Why the command's process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExitReason {
    /// It exited by itself while it was meant to run.
    Exited,
    /// It ended after the supervisor's SIGTERM (leadership ended or shutdown).
    Stopped,
    /// It was killed with SIGKILL after the grace or at the takeover bound.
    Killed,
    /// It could not be started.
    SpawnFailed,
}

impl ExitReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Exited => "exited",
            ExitReason::Stopped => "stopped",
            ExitReason::Killed => "killed",
            ExitReason::SpawnFailed => "spawn_failed",
        }
    }
}

impl EncodeLabelValue for ExitReason {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    reason: ExitReason,
}

/// The child's metrics; cheap to clone.
#[derive(Clone, Debug)]
pub struct ChildMetrics {
    running: Gauge,
    restarts: Counter,
    exits: Family<ReasonLabels, Counter>,
}

impl ChildMetrics {
    /// Registers the families in `registry` with the election's labels.
    pub fn register(registry: &mut Registry, election: &str, namespace: &str) -> Self {
        let labelled = registry.sub_registry_with_labels(
            [
                (Cow::Borrowed("election"), Cow::Owned(election.to_owned())),
                (Cow::Borrowed("namespace"), Cow::Owned(namespace.to_owned())),
            ]
            .into_iter(),
        );
        let elector = labelled.sub_registry_with_prefix("elector");
        let running = Gauge::default();
        elector.register(
            "child_running",
            "1 while the exec-mode command's process is alive (including while it is being stopped), else 0",
            running.clone(),
        );
        let restarts = Counter::default();
        elector.register(
            "child_restarts",
            "Restarts of the exec-mode command after it exited while leading (--on-child-exit restart)",
            restarts.clone(),
        );
        let exits = Family::<ReasonLabels, Counter>::default();
        for reason in [
            ExitReason::Exited,
            ExitReason::Stopped,
            ExitReason::Killed,
            ExitReason::SpawnFailed,
        ] {
            let _ = exits.get_or_create(&ReasonLabels { reason });
        }
        elector.register(
            "child_exits",
            "Ends of the exec-mode command's process, by reason",
            exits.clone(),
        );
        Self {
            running,
            restarts,
            exits,
        }
    }

    /// The process started.
    pub fn started(&self) {
        self.running.set(1);
    }

    /// The process ended (or never started) for `reason`.
    pub fn ended(&self, reason: ExitReason) {
        self.running.set(0);
        self.exits.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// A restart was scheduled.
    pub fn restarted(&self) {
        self.restarts.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The child families pass `promtool check metrics` (through scripts/check-metrics-lint.sh);
    /// skipped with a note where promtool is not installed, except in CI.
    #[tokio::test]
    async fn child_families_are_served_and_promtool_clean() {
        let mut registry = Registry::default();
        let metrics = ChildMetrics::register(&mut registry, "demo", "ns");
        metrics.started();
        metrics.ended(ExitReason::Exited);
        metrics.restarted();
        metrics.started();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        for line in [
            r#"elector_child_running{election="demo",namespace="ns"} 1"#,
            r#"elector_child_restarts_total{election="demo",namespace="ns"} 1"#,
            r#"elector_child_exits_total{election="demo",namespace="ns",reason="exited"} 1"#,
            r#"elector_child_exits_total{election="demo",namespace="ns",reason="killed"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
        kube_elector_harness::tools::assert_metrics_lint_clean(&text);
    }
}
