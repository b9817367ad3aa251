//! Prometheus metrics of the election: the families, their label types, and how state is mirrored.
//!
//! The driver counts events as they happen: API requests, renewals, slow paths, and transitions
//! ([`ElectionMetrics::became_leader`], [`ElectionMetrics::stopped_leading`],
//! [`ElectionMetrics::observed_leader_change`], [`ElectionMetrics::identity_conflict_detected`]).
//! Everything that is state (leadership, fencing token, last renew, a current identity conflict)
//! is mirrored from the published [`LeaderState`] when a scrape asks
//! ([`ElectionMetrics::observe_state`]), so a paused process cannot serve a stale "leader".
//!
//! Families (OpenMetrics names; every one carries `election` and `namespace` labels):
//!
//! | family | type | notes |
//! |---|---|---|
//! | `elector_is_leader` | gauge | 1 while `is_leader_at(now)`, 0 from start-up |
//! | `elector_leadership_transitions_total{direction="acquired\|lost"}` | counter | counted by the driver at each transition |
//! | `elector_observed_leader_changes_total` | counter | counted by the driver at each change of the observed holder |
//! | `elector_renew_duration_seconds{result="success\|failure"}` | histogram | 1 ms … 10 s buckets |
//! | `elector_api_requests_total{verb,code}` | counter | `code` = HTTP status, or `error` for transport failures and timeouts |
//! | `elector_api_request_duration_seconds{verb}` | histogram | |
//! | `elector_fencing_token` | gauge | the token while leader, **-1 while not leader** (always present, so alerts can compare `>= 0`) |
//! | `elector_last_renew_timestamp_seconds` | gauge | wall clock of the last successful renew; 0 before the first |
//! | `elector_build_info{version}` | gauge | always 1 |
//! | `leader_election_master_status{name}` | gauge | client-go's name, `name` = election |
//! | `leader_election_slowpath_total{name}` | counter | client-go's name |
//! | `elector_identity_conflicts_total` | counter | counted by the driver: other live processes seen holding the lock under this identity |
//! | `elector_identity_conflict` | gauge | 1 while another live process holds the lock under this identity |
//! | `elector_candidate` | gauge | 1 while this process stands for election, 0 while withdrawn (such as while its application is unhealthy) |
//! | `elector_app_healthy` | gauge | [`AppHealthMetrics`], only with `--app-health` (**absent without it**): 1 healthy, 0 starting or unhealthy |
//! | `elector_app_health_checks_total{result="success\|failure"}` | counter | [`AppHealthMetrics`], only with `--app-health` |
//! | `elector_endpoint_slice_writes_total{result}` | counter | only with `--endpoint-slice` ([`EndpointSliceMetrics`]): `created`, `updated`, `emptied`, `conflict`, `failed` |
//!
//! There is deliberately no `identity` label: Prometheus already attaches the pod through the scrape
//! configuration, and the identity is normally the pod name, so the label would only add cardinality.
//! Process metrics (`process_*`) come from `process_metrics` (the sidecar) and carry no election labels.
//!
//! Handles are cheap clones sharing atomics; nothing here takes a lock on the hot path.

use std::borrow::Cow;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use tokio::time::Instant;

pub use crate::labels::{RenewResult, Verb};
use crate::status::LeaderState;

/// Histogram buckets for API requests and renews: 1 ms … 10 s.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0,
];

impl EncodeLabelValue for Verb {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

impl EncodeLabelValue for RenewResult {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// Direction of a leadership transition of this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// This process began to lead.
    Acquired,
    /// This process stopped leading.
    Lost,
}

impl EncodeLabelValue for Direction {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        let value = match self {
            Direction::Acquired => "acquired",
            Direction::Lost => "lost",
        };
        EncodeLabelValue::encode(&value, encoder)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DirectionLabels {
    direction: Direction,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RenewLabels {
    result: RenewResult,
}

/// `code` is an HTTP status ("200", "409") or "error"; bounded by the statuses the API returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ApiRequestLabels {
    verb: Verb,
    code: Cow<'static, str>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VerbLabels {
    verb: Verb,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct NameLabels {
    name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// Handles to every election metric family; cheap to clone.
#[derive(Clone, Debug)]
pub struct ElectionMetrics {
    is_leader: Gauge,
    master_status: Gauge,
    fencing_token: Gauge,
    last_renew_timestamp: Gauge<f64, AtomicU64>,
    acquired: Counter,
    lost: Counter,
    observed_changes: Counter,
    renew_duration: HistogramFamily<RenewLabels>,
    api_requests: Family<ApiRequestLabels, Counter>,
    api_request_duration: HistogramFamily<VerbLabels>,
    slowpath: Counter,
    identity_conflicts: Counter,
    identity_conflict: Gauge,
    candidate: Gauge,
}

impl Default for ElectionMetrics {
    /// Handles that are registered nowhere: for code paths (and tests) that do not export metrics.
    fn default() -> Self {
        Self::register(&mut Registry::default(), "", "")
    }
}

impl ElectionMetrics {
    /// Registers every family in `registry`, labelled with the election and namespace.
    pub fn register(registry: &mut Registry, election: &str, namespace: &str) -> Self {
        let labelled = registry.sub_registry_with_labels(
            [
                (Cow::Borrowed("election"), Cow::Owned(election.to_owned())),
                (Cow::Borrowed("namespace"), Cow::Owned(namespace.to_owned())),
            ]
            .into_iter(),
        );

        // client-go's families, without the prefix, so existing dashboards keep working.
        let name = NameLabels {
            name: election.to_owned(),
        };
        let master_status_family = Family::<NameLabels, Gauge>::default();
        let master_status = master_status_family.get_or_create_owned(&name);
        labelled.register(
            "leader_election_master_status",
            "Whether this process is the leader (1) or not (0); client-go compatible",
            master_status_family,
        );
        let slowpath_family = Family::<NameLabels, Counter>::default();
        let slowpath = slowpath_family.get_or_create_owned(&name);
        labelled.register(
            "leader_election_slowpath",
            "Writes from the cached record that failed and had to read the lock again; client-go compatible",
            slowpath_family,
        );

        let elector = labelled.sub_registry_with_prefix("elector");

        let is_leader = Gauge::default();
        elector.register(
            "is_leader",
            "1 while this process holds the lock and its validity deadline has not passed, else 0",
            is_leader.clone(),
        );

        let transitions = Family::<DirectionLabels, Counter>::default();
        let acquired = transitions.get_or_create_owned(&DirectionLabels {
            direction: Direction::Acquired,
        });
        let lost = transitions.get_or_create_owned(&DirectionLabels {
            direction: Direction::Lost,
        });
        elector.register(
            "leadership_transitions",
            "Times this process became leader (acquired) or stopped being leader (lost)",
            transitions,
        );

        let observed_changes = Counter::default();
        elector.register(
            "observed_leader_changes",
            "Changes of the holder named by the lock, as observed by this process (including to and from no holder)",
            observed_changes.clone(),
        );

        let renew_duration: HistogramFamily<RenewLabels> = Family::new_with_constructor(duration_histogram);
        for result in [RenewResult::Success, RenewResult::Failure] {
            // Create both children now so the family is exported from start-up.
            drop(renew_duration.get_or_create(&RenewLabels { result }));
        }
        elector.register_with_unit(
            "renew_duration",
            "Duration of renew and acquire attempts, by result",
            Unit::Seconds,
            renew_duration.clone(),
        );

        let api_requests = Family::<ApiRequestLabels, Counter>::default();
        elector.register(
            "api_requests",
            "Kubernetes API requests made by the elector, by verb and HTTP status code (error = no response)",
            api_requests.clone(),
        );

        let api_request_duration: HistogramFamily<VerbLabels> =
            Family::new_with_constructor(duration_histogram);
        elector.register_with_unit(
            "api_request_duration",
            "Duration of Kubernetes API requests, by verb",
            Unit::Seconds,
            api_request_duration.clone(),
        );

        let fencing_token = Gauge::default();
        fencing_token.set(-1);
        elector.register(
            "fencing_token",
            "The lock's transition count with which this process holds it; -1 while not leader",
            fencing_token.clone(),
        );

        let last_renew_timestamp = Gauge::<f64, AtomicU64>::default();
        elector.register_with_unit(
            "last_renew_timestamp",
            "Wall-clock time of the last successful renew or acquire by this process; 0 before the first",
            Unit::Seconds,
            last_renew_timestamp.clone(),
        );

        let identity_conflicts = Counter::default();
        elector.register(
            "identity_conflicts",
            "Other live processes seen holding the lock under this process's identity (a duplicated --id)",
            identity_conflicts.clone(),
        );
        let identity_conflict = Gauge::default();
        elector.register(
            "identity_conflict",
            "1 while another live process holds the lock under this process's identity, else 0",
            identity_conflict.clone(),
        );

        let candidate = Gauge::default();
        candidate.set(1);
        elector.register(
            "candidate",
            "1 while this process stands for election, 0 while it may not (such as while its application is unhealthy)",
            candidate.clone(),
        );

        let build_info = Family::<VersionLabels, Gauge>::default();
        build_info
            .get_or_create_owned(&VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        elector.register("build_info", "Build information; always 1", build_info);

        Self {
            is_leader,
            master_status,
            fencing_token,
            last_renew_timestamp,
            acquired,
            lost,
            observed_changes,
            renew_duration,
            api_requests,
            api_request_duration,
            slowpath,
            identity_conflicts,
            identity_conflict,
            candidate,
        }
    }

    /// Runs one Kubernetes API call under `timeout` and counts it: the code is `verb`'s success
    /// status (201 for a create, 200 otherwise), the status of an error answer, or none (`error`)
    /// for a transport failure or a timeout. The outcome is `tokio::time::timeout`'s.
    pub async fn call<T>(
        &self,
        verb: Verb,
        timeout: Duration,
        request: impl Future<Output = kube::Result<T>>,
    ) -> Result<kube::Result<T>, tokio::time::error::Elapsed> {
        let started = Instant::now();
        let outcome = tokio::time::timeout(timeout, request).await;
        let code = match &outcome {
            Ok(Ok(_)) => Some(verb.success_code()),
            Ok(Err(kube::Error::Api(status))) => Some(status.code),
            Ok(Err(_)) | Err(_) => None,
        };
        self.api_request(verb, code, started.elapsed());
        outcome
    }

    /// One API request finished: `code` is the HTTP status, `None` for a transport error or timeout.
    pub fn api_request(&self, verb: Verb, code: Option<u16>, elapsed: Duration) {
        let code = match code {
            Some(code) => Cow::Owned(code.to_string()),
            None => Cow::Borrowed("error"),
        };
        self.api_requests
            .get_or_create(&ApiRequestLabels { verb, code })
            .inc();
        self.api_request_duration
            .get_or_create(&VerbLabels { verb })
            .observe(elapsed.as_secs_f64());
    }

    /// One renew or acquire attempt finished.
    pub fn renew(&self, result: RenewResult, elapsed: Duration) {
        self.renew_duration
            .get_or_create(&RenewLabels { result })
            .observe(elapsed.as_secs_f64());
    }

    /// A write from the cached record failed and the record had to be read again (client-go's
    /// `leader_election_slowpath_total`).
    pub fn slowpath(&self) {
        self.slowpath.inc();
    }

    /// This process became leader.
    pub fn became_leader(&self) {
        self.acquired.inc();
    }

    /// This process stopped being leader.
    pub fn stopped_leading(&self) {
        self.lost.inc();
    }

    /// The holder named by the lock changed (including to and from no holder).
    pub fn observed_leader_change(&self) {
        self.observed_changes.inc();
    }

    /// Another live process was found holding the lock under this identity.
    pub fn identity_conflict_detected(&self) {
        self.identity_conflicts.inc();
    }

    /// Brings the state-derived families up to date with `state` as of `now`; called per scrape.
    pub fn observe_state(&self, state: &LeaderState, now: Instant) {
        let leader = i64::from(state.is_leader_at(now));
        self.is_leader.set(leader);
        self.master_status.set(leader);
        let token = state
            .fencing_token_at(now)
            .map_or(-1, |token| i64::try_from(token).unwrap_or(i64::MAX));
        self.fencing_token.set(token);
        if let Some(at) = state.last_renew {
            // Nanosecond precision as f64 seconds is plenty for a timestamp gauge.
            self.last_renew_timestamp.set(at.as_nanosecond() as f64 / 1e9);
        }
        self.identity_conflict
            .set(i64::from(state.identity_conflict.is_some()));
        self.candidate.set(i64::from(state.candidate));
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CheckLabels {
    result: RenewResult,
}

/// The application health check's families, registered only with `--app-health`, so that
/// `elector_app_healthy` is absent (not a made-up value) where nothing is checked.
#[derive(Clone, Debug)]
pub struct AppHealthMetrics {
    // Set from the health check, which is part of the sidecar.
    #[cfg_attr(not(feature = "sidecar"), allow(dead_code))]
    healthy: Gauge,
    checks: Family<CheckLabels, Counter>,
}

impl AppHealthMetrics {
    /// Registers the families in `registry`, labelled with the election and namespace.
    pub fn register(registry: &mut Registry, election: &str, namespace: &str) -> Self {
        let elector = registry
            .sub_registry_with_labels(
                [
                    (Cow::Borrowed("election"), Cow::Owned(election.to_owned())),
                    (Cow::Borrowed("namespace"), Cow::Owned(namespace.to_owned())),
                ]
                .into_iter(),
            )
            .sub_registry_with_prefix("elector");
        let healthy = Gauge::default();
        elector.register(
            "app_healthy",
            "1 while the application passes its health check (--app-health), 0 while starting or unhealthy",
            healthy.clone(),
        );
        let checks = Family::<CheckLabels, Counter>::default();
        for result in [RenewResult::Success, RenewResult::Failure] {
            drop(checks.get_or_create(&CheckLabels { result }));
        }
        elector.register(
            "app_health_checks",
            "Health checks of the application (--app-health), by result",
            checks.clone(),
        );
        Self { healthy, checks }
    }

    /// One check finished.
    pub fn checked(&self, success: bool) {
        let result = if success {
            RenewResult::Success
        } else {
            RenewResult::Failure
        };
        self.checks.get_or_create(&CheckLabels { result }).inc();
    }

    /// Mirrors the verdict.
    #[cfg(feature = "sidecar")]
    pub fn observe(&self, health: &crate::app_health::Health) {
        self.healthy.set(i64::from(health.may_stand()));
    }
}

impl Default for AppHealthMetrics {
    /// Handles registered nowhere, for tests.
    fn default() -> Self {
        Self::register(&mut Registry::default(), "", "")
    }
}

/// Result of one EndpointSlice write, as a bounded label value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SliceWriteResult {
    /// The slice was created naming this pod.
    Created,
    /// The slice was replaced naming this pod.
    Updated,
    /// A slice naming this pod was emptied at step-down.
    Emptied,
    /// A write lost a race (409) and the slice was read again.
    Conflict,
    /// An attempt failed (error, timeout, claim ended, or every write conflicted).
    Failed,
}

impl EncodeLabelValue for SliceWriteResult {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        let value = match self {
            SliceWriteResult::Created => "created",
            SliceWriteResult::Updated => "updated",
            SliceWriteResult::Emptied => "emptied",
            SliceWriteResult::Conflict => "conflict",
            SliceWriteResult::Failed => "failed",
        };
        EncodeLabelValue::encode(&value, encoder)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SliceWriteLabels {
    result: SliceWriteResult,
}

/// `elector_endpoint_slice_writes_total{result}` (with `election` and `namespace`), registered
/// only when an EndpointSlice is configured; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct EndpointSliceMetrics {
    writes: Family<SliceWriteLabels, Counter>,
}

impl EndpointSliceMetrics {
    /// Registers the family in `registry`, labelled with the election and namespace.
    pub fn register(registry: &mut Registry, election: &str, namespace: &str) -> Self {
        let labelled = registry.sub_registry_with_labels(
            [
                (Cow::Borrowed("election"), Cow::Owned(election.to_owned())),
                (Cow::Borrowed("namespace"), Cow::Owned(namespace.to_owned())),
            ]
            .into_iter(),
        );
        let writes = Family::<SliceWriteLabels, Counter>::default();
        labelled.sub_registry_with_prefix("elector").register(
            "endpoint_slice_writes",
            "EndpointSlice writes by result: created, updated, emptied, conflict (409, read again), failed",
            writes.clone(),
        );
        Self { writes }
    }

    /// Counts one write with `result`.
    pub fn write(&self, result: SliceWriteResult) {
        self.writes.get_or_create(&SliceWriteLabels { result }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    fn encoded(registry: &Registry) -> String {
        let mut out = String::new();
        encode(&mut out, registry).unwrap();
        out
    }

    /// The value of the sample line starting with `series ` (exact series, labels included).
    fn sample(text: &str, series: &str) -> Option<String> {
        text.lines()
            .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .map(str::to_owned)
    }

    /// Asserts the value of every `(series, expected)` sample in `text`.
    fn expect_samples<const N: usize>(text: &str, samples: [(String, &str); N]) {
        for (series, expected) in samples {
            assert_eq!(
                sample(text, &series).as_deref(),
                Some(expected),
                "series {series} in:\n{text}"
            );
        }
    }

    fn leader_state(now: Instant) -> LeaderState {
        let mut state = LeaderState::new("pod-a", now);
        state.set_claims_leadership(true);
        state.leader = Some("pod-a".into());
        state.fencing_token = Some(7);
        state.valid_until = Some(now + Duration::from_secs(10));
        state.last_renew = Some("2026-01-02T03:04:05Z".parse().unwrap());
        state
    }

    const L: &str = r#"election="demo",namespace="ns""#;

    #[tokio::test(start_paused = true)]
    async fn families_exist_from_start_up_with_not_leader_values() {
        let mut registry = Registry::default();
        let _metrics = ElectionMetrics::register(&mut registry, "demo", "ns");
        let text = encoded(&registry);
        expect_samples(
            &text,
            [
                (format!("elector_is_leader{{{L}}}"), "0"),
                (format!("elector_fencing_token{{{L}}}"), "-1"),
                (format!("leader_election_master_status{{{L},name=\"demo\"}}"), "0"),
                (
                    format!("leader_election_slowpath_total{{{L},name=\"demo\"}}"),
                    "0",
                ),
                (
                    format!("elector_leadership_transitions_total{{{L},direction=\"acquired\"}}"),
                    "0",
                ),
                (
                    format!("elector_leadership_transitions_total{{{L},direction=\"lost\"}}"),
                    "0",
                ),
                (format!("elector_observed_leader_changes_total{{{L}}}"), "0"),
                (format!("elector_last_renew_timestamp_seconds{{{L}}}"), "0.0"),
                (
                    format!(
                        "elector_build_info{{{L},version=\"{}\"}}",
                        env!("CARGO_PKG_VERSION")
                    ),
                    "1",
                ),
            ],
        );
        assert!(
            text.contains("# TYPE elector_renew_duration_seconds histogram"),
            "renew histogram must be declared from start-up:\n{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn state_is_mirrored_at_scrape_time_and_leadership_lapses_without_an_update() {
        let mut registry = Registry::default();
        let metrics = ElectionMetrics::register(&mut registry, "demo", "ns");
        let now = Instant::now();
        let state = leader_state(now);
        count(&metrics, 2, 1, 5);
        metrics.observe_state(&state, now);
        let text = encoded(&registry);
        expect_samples(
            &text,
            [
                (format!("elector_is_leader{{{L}}}"), "1"),
                (format!("leader_election_master_status{{{L},name=\"demo\"}}"), "1"),
                (format!("elector_fencing_token{{{L}}}"), "7"),
                (
                    format!("elector_leadership_transitions_total{{{L},direction=\"acquired\"}}"),
                    "2",
                ),
                (
                    format!("elector_leadership_transitions_total{{{L},direction=\"lost\"}}"),
                    "1",
                ),
                (format!("elector_observed_leader_changes_total{{{L}}}"), "5"),
                (
                    format!("elector_last_renew_timestamp_seconds{{{L}}}"),
                    "1767323045.0",
                ),
            ],
        );

        // The same state, scraped after its deadline: no longer leader, token back to -1.
        metrics.observe_state(&state, now + Duration::from_secs(10));
        let text = encoded(&registry);
        assert_eq!(
            sample(&text, &format!("elector_is_leader{{{L}}}")).as_deref(),
            Some("0"),
            "{text}"
        );
        assert_eq!(
            sample(&text, &format!("elector_fencing_token{{{L}}}")).as_deref(),
            Some("-1"),
            "{text}"
        );
    }

    /// Counts transitions as the driver does.
    fn count(metrics: &ElectionMetrics, acquired: u64, lost: u64, changes: u64) {
        for _ in 0..acquired {
            metrics.became_leader();
        }
        for _ in 0..lost {
            metrics.stopped_leading();
        }
        for _ in 0..changes {
            metrics.observed_leader_change();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transition_counters_count_what_the_driver_reports_and_scrapes_add_nothing() {
        let mut registry = Registry::default();
        let metrics = ElectionMetrics::register(&mut registry, "demo", "ns");
        let now = Instant::now();
        let state = leader_state(now);
        count(&metrics, 2, 0, 5);
        metrics.observe_state(&state, now);
        count(&metrics, 0, 0, 4);
        metrics.identity_conflict_detected();
        metrics.observe_state(&state, now);
        metrics.observe_state(&state, now); // repeated scrapes add nothing
        let text = encoded(&registry);
        let acquired = format!("elector_leadership_transitions_total{{{L},direction=\"acquired\"}}");
        assert_eq!(sample(&text, &acquired).as_deref(), Some("2"), "{text}");
        let changes = format!("elector_observed_leader_changes_total{{{L}}}");
        assert_eq!(sample(&text, &changes).as_deref(), Some("9"), "{text}");
        let conflicts = format!("elector_identity_conflicts_total{{{L}}}");
        assert_eq!(sample(&text, &conflicts).as_deref(), Some("1"), "{text}");
    }

    #[test]
    fn driver_events_are_counted_with_bounded_labels() {
        let mut registry = Registry::default();
        let metrics = ElectionMetrics::register(&mut registry, "demo", "ns");
        metrics.api_request(Verb::Get, Some(200), Duration::from_millis(3));
        metrics.api_request(Verb::Update, Some(409), Duration::from_millis(4));
        metrics.api_request(Verb::Update, None, Duration::from_secs(3));
        metrics.renew(RenewResult::Success, Duration::from_millis(5));
        metrics.renew(RenewResult::Failure, Duration::from_secs(20));
        metrics.slowpath();
        let text = encoded(&registry);
        expect_samples(
            &text,
            [
                (
                    format!("elector_api_requests_total{{{L},verb=\"get\",code=\"200\"}}"),
                    "1",
                ),
                (
                    format!("elector_api_requests_total{{{L},verb=\"update\",code=\"409\"}}"),
                    "1",
                ),
                (
                    format!("elector_api_requests_total{{{L},verb=\"update\",code=\"error\"}}"),
                    "1",
                ),
                (
                    format!("elector_api_request_duration_seconds_count{{{L},verb=\"update\"}}"),
                    "2",
                ),
                (
                    format!("elector_renew_duration_seconds_count{{{L},result=\"success\"}}"),
                    "1",
                ),
                (
                    format!("elector_renew_duration_seconds_bucket{{{L},le=\"0.005\",result=\"success\"}}"),
                    "1",
                ),
                (
                    format!("elector_renew_duration_seconds_bucket{{{L},le=\"10.0\",result=\"failure\"}}"),
                    "0",
                ),
                (
                    format!("elector_renew_duration_seconds_bucket{{{L},le=\"+Inf\",result=\"failure\"}}"),
                    "1",
                ),
                (
                    format!("leader_election_slowpath_total{{{L},name=\"demo\"}}"),
                    "1",
                ),
            ],
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_instrumented_call_counts_its_success_code_or_error() {
        let mut registry = Registry::default();
        let metrics = ElectionMetrics::register(&mut registry, "demo", "ns");
        let timeout = Duration::from_secs(1);
        let created = metrics.call(Verb::Create, timeout, async { Ok(()) }).await;
        assert!(matches!(created, Ok(Ok(()))), "{created:?}");
        let patched = metrics.call(Verb::Patch, timeout, async { Ok(()) }).await;
        assert!(matches!(patched, Ok(Ok(()))), "{patched:?}");
        let hung = metrics
            .call(Verb::Get, timeout, std::future::pending::<kube::Result<()>>())
            .await;
        assert!(hung.is_err(), "a call that outlives its timeout ends with it");
        let text = encoded(&registry);
        expect_samples(
            &text,
            [
                (
                    format!("elector_api_requests_total{{{L},verb=\"create\",code=\"201\"}}"),
                    "1",
                ),
                (
                    format!("elector_api_requests_total{{{L},verb=\"patch\",code=\"200\"}}"),
                    "1",
                ),
                (
                    format!("elector_api_requests_total{{{L},verb=\"get\",code=\"error\"}}"),
                    "1",
                ),
                (
                    format!("elector_api_request_duration_seconds_sum{{{L},verb=\"get\"}}"),
                    "1.0",
                ),
            ],
        );
    }

    #[test]
    fn clones_share_their_values() {
        let mut registry = Registry::default();
        let metrics = ElectionMetrics::register(&mut registry, "demo", "ns");
        metrics.clone().slowpath();
        let text = encoded(&registry);
        let series = format!("leader_election_slowpath_total{{{L},name=\"demo\"}}");
        assert_eq!(sample(&text, &series).as_deref(), Some("1"), "{text}");
    }
}
