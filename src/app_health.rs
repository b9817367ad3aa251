//! The application's health check (`--app-health URL`), which gates this process's candidacy.
//!
//! Every `--app-health-period` the checker sends one HTTP GET to the local application, bounded
//! by `--app-health-timeout`; like a kubelet HTTP probe, a 2xx or 3xx answer is a success and
//! anything else (another status, a refused connection, no answer in time) a failure. The
//! verdict follows the kubelet's thresholds ([`Health::record`], pure): the application is
//! healthy after `--app-health-success-threshold` consecutive successes and unhealthy after
//! `--app-health-failure-threshold` consecutive failures. It starts as `starting`: an
//! application still warming up has not passed yet, and this process does not stand for election
//! until it has.
//!
//! The checker is the only writer of two things: the [`Candidacy`](crate::election::Candidacy)
//! it feeds (may stand exactly while healthy), and the published [`Health`] the HTTP surface
//! shows in `/status` and the metrics count ([`AppHealthMetrics`]).

use std::time::Duration;

use http_body_util::Empty;
use hyper::Request;
use hyper::body::Bytes;
use hyper::header::{HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use crate::config::format_duration;
use crate::election::CandidacySender;
use crate::metrics::AppHealthMetrics;

/// The URL checked: plain `http://` with a host, as a validated [`hyper::Uri`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthUrl(hyper::Uri);

impl HealthUrl {
    /// Accepts `http://HOST[:PORT][/PATH][?QUERY]`; the refusal says what to write instead.
    pub fn parse(text: &str) -> Result<Self, String> {
        let example = "use e.g. http://127.0.0.1:8081/healthz";
        let uri: hyper::Uri = text
            .parse()
            .map_err(|error| format!("is not a URL ({error}); {example}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(format!(
                    "has scheme {other:?}; the check speaks plain HTTP to the application in the same \
                     pod, so the URL must start with http://; {example}"
                ));
            }
            None => return Err(format!("has no scheme; {example}")),
        }
        let Some(authority) = uri.authority() else {
            return Err(format!("has no host; {example}"));
        };
        if authority.as_str().contains('@') {
            return Err(format!("must not carry credentials (user@host); {example}"));
        }
        if authority.host().is_empty() {
            return Err(format!("has no host; {example}"));
        }
        Ok(Self(uri))
    }

    /// The host to connect to, without IPv6 brackets.
    fn host(&self) -> &str {
        let host = self.0.host().unwrap_or_default();
        host.trim_start_matches('[').trim_end_matches(']')
    }

    fn port(&self) -> u16 {
        self.0.port_u16().unwrap_or(80)
    }

    fn authority(&self) -> &str {
        self.0.authority().map_or("", |a| a.as_str())
    }

    fn path_and_query(&self) -> &str {
        self.0.path_and_query().map_or("/", |p| p.as_str())
    }
}

impl std::fmt::Display for HealthUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How the application is checked.
#[derive(Clone, Debug)]
pub struct Probe {
    /// What is fetched.
    pub url: HealthUrl,
    /// Time between the starts of two checks.
    pub period: Duration,
    /// Bound on one check, connection included.
    pub timeout: Duration,
    /// Consecutive failures that make a healthy application unhealthy.
    pub failure_threshold: u32,
    /// Consecutive successes that make a starting or unhealthy application healthy.
    pub success_threshold: u32,
}

/// The application's state as the checks have found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppState {
    /// No verdict yet: not enough consecutive successes since start-up.
    Starting,
    /// Passed the success threshold, and not failed the failure threshold since.
    Healthy,
    /// Failed the failure threshold after being healthy, and not recovered since.
    Unhealthy,
}

impl AppState {
    /// The state as `/status` shows it: `starting`, `healthy` or `unhealthy`.
    pub fn as_str(self) -> &'static str {
        match self {
            AppState::Starting => "starting",
            AppState::Healthy => "healthy",
            AppState::Unhealthy => "unhealthy",
        }
    }
}

/// The verdict and the counts behind it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Health {
    /// The verdict.
    pub state: AppState,
    /// Failed checks in a row (0 after a success).
    pub consecutive_failures: u32,
    /// Successful checks in a row (0 after a failure).
    pub consecutive_successes: u32,
    /// Why the most recent failed check failed; kept after a recovery, as a clue.
    pub last_error: Option<String>,
    #[serde(skip)]
    failure_threshold: u32,
    #[serde(skip)]
    success_threshold: u32,
}

impl Health {
    /// Nothing checked yet: `starting`.
    pub fn new(failure_threshold: u32, success_threshold: u32) -> Self {
        Self {
            state: AppState::Starting,
            consecutive_failures: 0,
            consecutive_successes: 0,
            last_error: None,
            failure_threshold: failure_threshold.max(1),
            success_threshold: success_threshold.max(1),
        }
    }

    /// Folds one check's outcome into the verdict (the kubelet's threshold rule).
    pub fn record(&mut self, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => {
                self.consecutive_failures = 0;
                self.consecutive_successes = self.consecutive_successes.saturating_add(1);
                if self.consecutive_successes >= self.success_threshold {
                    self.state = AppState::Healthy;
                }
            }
            Err(error) => {
                self.consecutive_successes = 0;
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.last_error = Some(error);
                if self.state == AppState::Healthy && self.consecutive_failures >= self.failure_threshold {
                    self.state = AppState::Unhealthy;
                }
            }
        }
    }

    /// Whether this process may stand for election: only while the application is healthy.
    pub fn may_stand(&self) -> bool {
        self.state == AppState::Healthy
    }
}

/// What the HTTP surface reads: the latest [`Health`], or `None` without `--app-health`.
pub type HealthReceiver = watch::Receiver<Health>;

/// One check: a GET on `url` answered within `timeout` with a 2xx or 3xx status.
pub async fn check(url: &HealthUrl, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, get(url)).await {
        Ok(Ok(status)) if (200..400).contains(&status) => Ok(()),
        Ok(Ok(status)) => Err(format!("GET {url} answered {status}")),
        Ok(Err(error)) => Err(format!("GET {url}: {error}")),
        Err(_) => Err(format!(
            "GET {url}: no answer within {}",
            format_duration(timeout)
        )),
    }
}

async fn get(url: &HealthUrl) -> Result<u16, String> {
    let stream = TcpStream::connect((url.host(), url.port()))
        .await
        .map_err(|error| format!("cannot connect: {error}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| format!("HTTP handshake failed: {error}"))?;
    let request = Request::get(url.path_and_query())
        .header(HOST, url.authority())
        .header(USER_AGENT, concat!("kube-elector/", env!("CARGO_PKG_VERSION")))
        .body(Empty::<Bytes>::new())
        .map_err(|error| format!("cannot build the request: {error}"))?;
    // The connection is driven on its own task (it may finish, the answer read, before the
    // answer is taken); it ends with this check, whatever the outcome.
    let connection = AbortOnDrop(tokio::spawn(connection));
    let response = sender.send_request(request).await;
    drop(connection);
    response
        .map(|response| response.status().as_u16())
        .map_err(|error| format!("request failed: {error}"))
}

/// Aborts the task when dropped (a check that timed out leaves no connection behind).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A published [`Health`] channel starting as `starting` for `probe`.
pub fn channel(probe: &Probe) -> (watch::Sender<Health>, HealthReceiver) {
    watch::channel(Health::new(probe.failure_threshold, probe.success_threshold))
}

/// Checks the application every period until `shutdown`, publishing each verdict on `health`,
/// letting this process stand exactly while it is healthy (`candidacy`), counting in `metrics`.
pub async fn run(
    probe: Probe,
    health: watch::Sender<Health>,
    candidacy: CandidacySender,
    metrics: AppHealthMetrics,
    shutdown: impl Future<Output = ()>,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut ticks = tokio::time::interval_at(Instant::now(), probe.period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tracing::info!(
        url = %probe.url,
        period = ?probe.period,
        timeout = ?probe.timeout,
        failure_threshold = probe.failure_threshold,
        success_threshold = probe.success_threshold,
        "checking the application's health; not standing for election until it passes"
    );
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => return,
            _ = ticks.tick() => {}
        }
        let outcome = tokio::select! {
            biased;
            () = &mut shutdown => return,
            outcome = check(&probe.url, probe.timeout) => outcome,
        };
        metrics.checked(outcome.is_ok());
        let before = health.borrow().state;
        health.send_modify(|health| health.record(outcome));
        let now = health.borrow().clone();
        metrics.observe(&now);
        if now.state != before {
            match now.state {
                AppState::Healthy => tracing::info!(url = %probe.url, "the application is healthy"),
                AppState::Unhealthy | AppState::Starting => tracing::warn!(
                    url = %probe.url,
                    consecutive_failures = now.consecutive_failures,
                    last_error = now.last_error.as_deref().unwrap_or(""),
                    "the application is unhealthy"
                ),
            }
        }
        candidacy.set(now.may_stand());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail() -> Result<(), String> {
        Err("GET http://127.0.0.1:1/ answered 503".to_owned())
    }

    #[test]
    fn an_application_warming_up_is_not_healthy_until_the_success_threshold() {
        let mut health = Health::new(3, 2);
        assert_eq!(health.state, AppState::Starting);
        assert!(!health.may_stand());
        for _ in 0..10 {
            health.record(fail());
        }
        assert_eq!(
            health.state,
            AppState::Starting,
            "failures before the first pass keep it starting"
        );
        health.record(Ok(()));
        assert!(!health.may_stand(), "one success of two needed");
        health.record(Ok(()));
        assert_eq!(health.state, AppState::Healthy);
        assert!(health.may_stand());
    }

    #[test]
    fn failures_below_the_threshold_keep_it_healthy_and_a_success_resets_the_count() {
        let mut health = Health::new(3, 1);
        health.record(Ok(()));
        health.record(fail());
        health.record(fail());
        assert_eq!(
            (health.state, health.consecutive_failures),
            (AppState::Healthy, 2)
        );
        health.record(Ok(()));
        assert_eq!(health.consecutive_failures, 0);
        health.record(fail());
        health.record(fail());
        assert!(health.may_stand());
        health.record(fail());
        assert_eq!(health.state, AppState::Unhealthy);
        assert!(!health.may_stand());
        assert_eq!(health.last_error.as_deref(), fail().err().as_deref());
    }

    #[test]
    fn an_unhealthy_application_recovers_after_the_success_threshold() {
        let mut health = Health::new(1, 2);
        health.record(Ok(()));
        health.record(Ok(()));
        health.record(fail());
        assert_eq!(health.state, AppState::Unhealthy);
        health.record(Ok(()));
        assert_eq!(health.state, AppState::Unhealthy);
        health.record(Ok(()));
        assert_eq!(health.state, AppState::Healthy);
    }

    #[test]
    fn urls_must_be_plain_http_with_a_host() {
        let url = HealthUrl::parse("http://127.0.0.1:8081/healthz?full=1").unwrap();
        assert_eq!(
            (url.host(), url.port(), url.path_and_query()),
            ("127.0.0.1", 8081, "/healthz?full=1")
        );
        let url = HealthUrl::parse("http://[::1]/").unwrap();
        assert_eq!((url.host(), url.port()), ("::1", 80));
        for (text, says) in [
            ("https://127.0.0.1:8443/healthz", "must start with http://"),
            ("127.0.0.1:8081/healthz", "is not a URL"),
            ("127.0.0.1:8081", "no scheme"),
            ("/healthz", "no scheme"),
            ("http://user:pw@127.0.0.1/", "credentials"),
            ("not a url", "is not a URL"),
        ] {
            let error = HealthUrl::parse(text).unwrap_err();
            assert!(error.contains(says), "{text}: {error}");
            assert!(
                error.contains("http://127.0.0.1:8081/healthz"),
                "{text}: the fix is shown: {error}"
            );
        }
    }

    #[tokio::test]
    async fn a_check_is_a_failure_when_nothing_listens() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = HealthUrl::parse(&format!("http://127.0.0.1:{port}/healthz")).unwrap();
        let error = check(&url, Duration::from_secs(5)).await.unwrap_err();
        assert!(error.contains("cannot connect"), "{error}");
    }
}
