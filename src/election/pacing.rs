//! Retry pacing: when the next attempt may start after failures, and how long one call may take.
//!
//! Pure state, driven by the [driver](super::driver) and unit-tested on tokio's paused clock:
//!
//! - **Capped exponential backoff with jitter** ([`Timing::backoff`]): each consecutive failed
//!   attempt of a follower doubles its wait, from the retry period up to the lease duration. An
//!   attempt that ends in conflicts (every write lost a race) is a failure too: **conflicts never
//!   reset the backoff**, only an attempt that went through cleanly does.
//! - **`Retry-After`**: a 429 (or 503) whose `Status` carries `details.retryAfterSeconds` (kube
//!   drops the header and keeps the body's copy, which the API server always sends with it)
//!   delays the next attempt at least that long, capped at the lease duration. A leader honours it
//!   too, but never so long that no call fits before its claim lapses.
//! - **Per-call budget** ([`call_timeout`]): a leader's call gets at most half the renew deadline
//!   and never more than what is left of its claim; a follower's calls share one renew deadline
//!   per attempt. So one attempt never outlasts a renew deadline, which is what `/livez`'s bound
//!   (`config::Config::liveness_bound`, in the sidecar) is built on.

use std::time::Duration;

use tokio::time::Instant;

use super::Timing;
use crate::clock::later;

/// Consecutive failures, and what they imply for the next attempt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backoff {
    failures: u32,
    /// A follower's next attempt does not start before this.
    not_before: Option<Instant>,
    /// The server asked not to be called again before this.
    server_asked: Option<Instant>,
}

impl Backoff {
    /// No failures yet: the next attempt may start when it is due.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consecutive failed attempts so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// An attempt failed at `now` (an error, or conflicts until it gave up); `retry_after` is the
    /// server's `Retry-After`, if it sent one; `jitter` is a random factor in `[0, 1)`. Returns
    /// how long a follower now waits.
    pub fn failed(
        &mut self,
        now: Instant,
        timing: &Timing,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let asked = retry_after.map(|wait| wait.min(timing.backoff_cap()));
        self.server_asked = asked.map(|wait| later(now, wait));
        let wait = timing
            .backoff(self.failures, jitter)
            .max(asked.unwrap_or_default());
        self.not_before = Some(later(now, wait));
        wait
    }

    /// An attempt went through without failure or conflict: back to the normal pace.
    pub fn succeeded(&mut self) {
        *self = Self::default();
    }

    /// An attempt ended without an error; `lost_a_race` if one of its writes got 409 on the way.
    /// Only a clean attempt resets the backoff: a conflict is not a sign of recovery.
    pub fn went_through(&mut self, lost_a_race: bool) {
        if !lost_a_race {
            self.succeeded();
        }
    }

    /// When the next attempt is due, given when it would be due without failures. A follower
    /// waits out its backoff; a leader only the server's `Retry-After`, and only as long as one
    /// call of [`Timing::leader_call_budget`] still fits before `claim_valid_until`.
    pub fn next_attempt(&self, due: Instant, claim_valid_until: Option<Instant>, timing: &Timing) -> Instant {
        match claim_valid_until {
            None => self.not_before.map_or(due, |until| due.max(until)),
            Some(valid_until) => {
                let last_chance = valid_until
                    .checked_sub(timing.leader_call_budget())
                    .unwrap_or(valid_until);
                match self.server_asked {
                    Some(asked) => due.max(asked.min(last_chance)),
                    None => due,
                }
            }
        }
    }
}

/// The time one API call started at `now` may take: for a leader, half the renew deadline and
/// never past its claim's end; for a follower, what is left of its attempt's budget.
pub fn call_timeout(
    now: Instant,
    claim_valid_until: Option<Instant>,
    attempt_deadline: Instant,
    timing: &Timing,
) -> Duration {
    match claim_valid_until {
        Some(valid_until) => valid_until
            .saturating_duration_since(now)
            .min(timing.leader_call_budget()),
        None => attempt_deadline.saturating_duration_since(now),
    }
}

/// The `Retry-After` a failed call carries, from the `Status` body's `details.retryAfterSeconds`.
pub fn retry_after(status: &kube::core::Status) -> Option<Duration> {
    let seconds = status.details.as_ref()?.retry_after_seconds;
    (seconds > 0).then(|| Duration::from_secs(u64::from(seconds)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn timing() -> Timing {
        Timing::new(ms(3_000), ms(2_000), ms(500)).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn consecutive_failures_back_off_exponentially_up_to_the_lease() {
        let t = timing();
        let mut backoff = Backoff::new();
        let mut waits = Vec::new();
        for _ in 0..6 {
            let now = Instant::now();
            let wait = backoff.failed(now, &t, None, 0.0);
            assert_eq!(
                backoff.next_attempt(now, None, &t),
                now + wait,
                "a follower waits it out"
            );
            waits.push(wait.as_millis());
            tokio::time::advance(wait).await;
        }
        assert_eq!(waits, [500, 1_000, 2_000, 3_000, 3_000, 3_000]);
        backoff.succeeded();
        let now = Instant::now();
        assert_eq!(
            backoff.next_attempt(now, None, &t),
            now,
            "success restores the normal pace"
        );
        assert_eq!(
            backoff.failed(now, &t, None, 0.0),
            ms(500),
            "and the sequence starts over"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn conflicts_never_reset_the_backoff() {
        let t = timing();
        let now = Instant::now();
        let mut backoff = Backoff::new();
        backoff.failed(now, &t, None, 0.0);
        backoff.failed(now, &t, None, 0.0);
        // An attempt that lost a race, read the lock again and found another holder.
        backoff.went_through(true);
        assert_eq!(backoff.failures(), 2, "a conflict is not a recovery");
        assert_eq!(
            backoff.next_attempt(now, None, &t),
            now + ms(1_000),
            "the wait stands"
        );
        // An attempt whose every write lost a race is a failure of its own (the driver calls
        // `failed` with no Retry-After): the sequence goes on doubling.
        assert_eq!(backoff.failed(now, &t, None, 0.0), ms(2_000));
        backoff.went_through(false);
        assert_eq!(backoff, Backoff::new(), "a clean attempt resets it");
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_spreads_the_wait_by_up_to_a_fifth() {
        let t = timing();
        let now = Instant::now();
        let mut low = Backoff::new();
        let mut high = Backoff::new();
        for _ in 0..2 {
            low.failed(now, &t, None, 0.0);
            high.failed(now, &t, None, 0.999);
        }
        assert_eq!(low.next_attempt(now, None, &t), now + ms(1_000));
        assert_eq!(high.next_attempt(now, None, &t), now + ms(1_000).mul_f64(1.1998));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_up_to_the_lease_duration() {
        let t = timing();
        let now = Instant::now();
        let mut backoff = Backoff::new();
        assert_eq!(
            backoff.failed(now, &t, Some(ms(2_000)), 0.0),
            ms(2_000),
            "beats the first backoff"
        );
        assert_eq!(backoff.next_attempt(now, None, &t), now + ms(2_000));
        assert_eq!(
            backoff.failed(now, &t, Some(Duration::from_secs(3_600)), 0.0),
            ms(3_000),
            "an hour is capped at the lease duration"
        );
        let mut backoff = Backoff::new();
        backoff.failed(now, &t, None, 0.0);
        backoff.failed(now, &t, None, 0.0);
        backoff.failed(now, &t, None, 0.0);
        assert_eq!(
            backoff.failed(now, &t, Some(ms(1_000)), 0.0),
            ms(3_000),
            "a shorter Retry-After does not shorten the backoff"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_honours_retry_after_only_while_a_call_still_fits() {
        let t = timing();
        let now = Instant::now();
        let renew_due = now + ms(500);
        let valid_until = now + ms(2_000);
        let mut backoff = Backoff::new();
        backoff.failed(now, &t, None, 0.0);
        assert_eq!(
            backoff.next_attempt(renew_due, Some(valid_until), &t),
            renew_due,
            "a leader does not back off exponentially: it renews every retry period"
        );
        backoff.failed(now, &t, Some(ms(800)), 0.0);
        assert_eq!(
            backoff.next_attempt(renew_due, Some(valid_until), &t),
            now + ms(800)
        );
        backoff.failed(now, &t, Some(ms(1_900)), 0.0);
        assert_eq!(
            backoff.next_attempt(renew_due, Some(valid_until), &t),
            valid_until - t.leader_call_budget(),
            "the last moment one call of half the renew deadline still fits"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn leader_calls_get_half_the_renew_deadline_and_never_outlive_the_claim() {
        let t = timing();
        let now = Instant::now();
        let far = now + Duration::from_secs(60);
        assert_eq!(call_timeout(now, Some(now + ms(2_000)), far, &t), ms(1_000));
        assert_eq!(call_timeout(now, Some(now + ms(700)), far, &t), ms(700));
        assert_eq!(call_timeout(now, Some(now), far, &t), Duration::ZERO);
        assert_eq!(
            call_timeout(now, None, now + ms(2_000), &t),
            ms(2_000),
            "a follower's first call may use its whole attempt budget"
        );
        tokio::time::advance(ms(1_500)).await;
        assert_eq!(
            call_timeout(Instant::now(), None, now + ms(2_000), &t),
            ms(500),
            "later calls of the attempt share what is left"
        );
    }

    #[test]
    fn retry_after_comes_from_the_status_details() {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 429,
            "reason": "TooManyRequests", "message": "slow down",
            "details": {"retryAfterSeconds": 4}
        }))
        .unwrap();
        assert_eq!(retry_after(&status), Some(Duration::from_secs(4)));
        let without: kube::core::Status = serde_json::from_value(serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500,
            "reason": "InternalError", "message": "boom"
        }))
        .unwrap();
        assert_eq!(retry_after(&without), None);
    }
}
