//! The election's timing model (client-go's): lease duration, renew deadline, retry period,
//! their bounds, and the pacing derived from them (backoff, per-call budget).
//!
//! Bounds, checked by [`Timing::new`] (and so at start-up, exit 2 naming the field):
//!
//! | field | minimum | maximum |
//! |---|---|---|
//! | lease duration | 1s, whole seconds | [`MAX_LEASE_DURATION`] (24h) |
//! | renew deadline | above 1.2 × retry period | below lease duration |
//! | retry period | [`MIN_RETRY_PERIOD`] (10ms) | below renew deadline / 1.2 |
//!
//! The Lease stores the duration as int32 seconds (at most 2147483647 s, 68 years); a day fits it
//! with room to spare and is longer than any lock anyone waits out in practice. With every
//! duration at most a day, sums such as `renew deadline + lease duration` and `Instant + lease`
//! cannot overflow; the arithmetic is saturating all the same ([`crate::clock::later`],
//! `saturating_mul` in [`Timing::backoff`]), and nothing here calls `Duration::mul_f64` on a value
//! that was not bounded first.
//!
//! Pacing: a follower that fails backs off exponentially from the retry period, doubling per
//! consecutive failure up to the lease duration, with client-go's jitter (× 1 to 1.2) on top
//! ([`Timing::backoff`]). A leader's single API call gets at most half the renew deadline
//! ([`Timing::leader_call_budget`]), so a call that hangs (a half-open pooled connection) leaves
//! room for a second try before the claim lapses. One follower attempt takes at most one renew
//! deadline in all ([`Timing::attempt_budget`]).

use std::time::Duration;

/// The longest lease duration accepted: one day.
pub const MAX_LEASE_DURATION: Duration = Duration::from_secs(24 * 60 * 60);
/// The shortest retry period accepted: shorter ones turn the leader into a busy loop.
pub const MIN_RETRY_PERIOD: Duration = Duration::from_millis(10);

/// client-go's jitter factor for follower retries: a follower waits `retry_period × (1 + rand × 0.2)`.
pub const JITTER_FACTOR: f64 = 0.2;

/// Validated timings. Construct with [`Timing::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long others wait, from their own observation of the last change, before taking over.
    pub lease_duration: Duration,
    /// How long the leader keeps claiming leadership after the send time of its last successful
    /// renew; it steps down when that passes.
    pub renew_deadline: Duration,
    /// How often the leader renews and a polling follower retries.
    pub retry_period: Duration,
}

/// Why a set of timings is refused. Each variant names the field and the rule.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The lease duration is under a second or has a fraction of a second.
    #[error(
        "lease-duration {value:?} must be a whole number of seconds, at least 1s (the Lease stores \
         seconds); use e.g. 15s"
    )]
    LeaseDurationNotWholeSeconds {
        /// The lease duration given.
        value: Duration,
    },
    /// The renew deadline is zero.
    #[error("renew-deadline must be greater than 0; use e.g. 10s")]
    RenewDeadlineZero,
    /// The retry period is zero.
    #[error("retry-period must be greater than 0; use e.g. 2s")]
    RetryPeriodZero,
    /// The lease duration is longer than a day (`MAX_LEASE_DURATION`).
    #[error(
        "lease-duration {value:?} is longer than the maximum of 24h (a Lease stores int32 seconds, and \
         a lock nobody can take over for a day is not an election); use e.g. 15s"
    )]
    LeaseDurationTooLong {
        /// The lease duration given.
        value: Duration,
    },
    /// The retry period is shorter than 10ms (`MIN_RETRY_PERIOD`).
    #[error("retry-period {value:?} is shorter than the minimum of 10ms; use e.g. 2s")]
    RetryPeriodTooShort {
        /// The retry period given.
        value: Duration,
    },
    /// The lease duration is not longer than the renew deadline.
    #[error(
        "lease-duration {lease_duration:?} must be greater than renew-deadline {renew_deadline:?}: \
         lower renew-deadline or raise lease-duration"
    )]
    LeaseNotAboveRenewDeadline {
        /// The lease duration given.
        lease_duration: Duration,
        /// The renew deadline given.
        renew_deadline: Duration,
    },
    /// The renew deadline is not above 1.2 × the retry period, leaving the leader no room for a
    /// jittered retry.
    #[error(
        "renew-deadline {renew_deadline:?} must be greater than 1.2 × retry-period {retry_period:?} \
         (the leader needs room for a jittered retry): lower retry-period or raise renew-deadline"
    )]
    RenewDeadlineNotAboveRetry {
        /// The renew deadline given.
        renew_deadline: Duration,
        /// The retry period given.
        retry_period: Duration,
    },
}

impl Timing {
    /// client-go's defaults: 15s, 10s, 2s.
    pub const DEFAULT: Timing = Timing {
        lease_duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry_period: Duration::from_secs(2),
    };

    /// Checks client-go's rules: lease duration > renew deadline > 1.2 × retry period, lease
    /// duration a whole number of seconds ≥ 1, the others greater than zero.
    /// Also checks the bounds in the module documentation, before any arithmetic on the values.
    ///
    /// The library and the CLI share these rules and these errors, which name the field and
    /// the fix:
    ///
    /// ```
    /// use std::time::Duration;
    /// use kube_elector::{Timing, TimingError};
    ///
    /// let s = Duration::from_secs;
    /// assert_eq!(Timing::new(s(15), s(10), s(2)), Ok(Timing::DEFAULT));
    ///
    /// let error = Timing::new(s(10), s(10), s(2)).unwrap_err();
    /// assert!(matches!(error, TimingError::LeaseNotAboveRenewDeadline { .. }));
    /// assert!(error.to_string().contains("lower renew-deadline or raise lease-duration"));
    ///
    /// // A Lease stores whole seconds.
    /// let error = Timing::new(Duration::from_millis(1500), s(1), Duration::from_millis(100)).unwrap_err();
    /// assert!(error.to_string().starts_with("lease-duration 1.5s must be a whole number of seconds"));
    /// ```
    pub fn new(
        lease_duration: Duration,
        renew_deadline: Duration,
        retry_period: Duration,
    ) -> Result<Self, Error> {
        if lease_duration < Duration::from_secs(1) || lease_duration.subsec_nanos() != 0 {
            return Err(Error::LeaseDurationNotWholeSeconds {
                value: lease_duration,
            });
        }
        if lease_duration > MAX_LEASE_DURATION {
            return Err(Error::LeaseDurationTooLong {
                value: lease_duration,
            });
        }
        if renew_deadline.is_zero() {
            return Err(Error::RenewDeadlineZero);
        }
        if retry_period.is_zero() {
            return Err(Error::RetryPeriodZero);
        }
        if retry_period < MIN_RETRY_PERIOD {
            return Err(Error::RetryPeriodTooShort { value: retry_period });
        }
        if lease_duration <= renew_deadline {
            return Err(Error::LeaseNotAboveRenewDeadline {
                lease_duration,
                renew_deadline,
            });
        }
        // The retry period is below the renew deadline, so below a day, before it is multiplied
        // (`mul_f64` panics on overflow).
        if retry_period >= renew_deadline || renew_deadline <= retry_period.mul_f64(1.0 + JITTER_FACTOR) {
            return Err(Error::RenewDeadlineNotAboveRetry {
                renew_deadline,
                retry_period,
            });
        }
        Ok(Self {
            lease_duration,
            renew_deadline,
            retry_period,
        })
    }

    /// The lease duration in whole seconds, as stored in the lock record (at most a day, so it
    /// always fits the Lease's int32).
    pub fn lease_duration_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }

    /// The longest a follower backs off after failures, and the longest it honours a server's
    /// `Retry-After`: one lease duration, so a follower is never out of the race for longer
    /// than a leader it waits for could hold the lock.
    pub fn backoff_cap(&self) -> Duration {
        self.lease_duration.max(self.retry_period)
    }

    /// How long a follower waits after its `failures`-th consecutive failed attempt:
    /// `retry period × 2^(failures − 1)`, at most [`Self::backoff_cap`], times client-go's jitter
    /// `1 + factor × 0.2` with `factor` in `[0, 1)`. `failures` 0 counts as 1.
    pub fn backoff(&self, failures: u32, factor: f64) -> Duration {
        let doublings = failures.saturating_sub(1).min(32);
        let base = self
            .retry_period
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.backoff_cap());
        base.mul_f64(1.0 + factor.clamp(0.0, 1.0) * JITTER_FACTOR)
    }

    /// The most one API call of the leader may take: half the renew deadline, so that a call
    /// that hangs still leaves time for a second try before the claim lapses.
    pub fn leader_call_budget(&self) -> Duration {
        self.renew_deadline / 2
    }

    /// The most one follower attempt (a read, a write, the reads after conflicts) may take in
    /// all: the renew deadline, since a write answered later could not make it leader anyway.
    pub fn attempt_budget(&self) -> Duration {
        self.renew_deadline
    }

    /// A follower's jittered retry interval: `retry_period × (1 + factor × JITTER_FACTOR)` with
    /// `factor` in `[0, 1)`.
    pub fn jittered_retry(&self, factor: f64) -> Duration {
        self.retry_period
            .mul_f64(1.0 + factor.clamp(0.0, 1.0) * JITTER_FACTOR)
    }
}

impl Default for Timing {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn defaults_and_sub_second_test_timings_are_valid() {
        assert_eq!(
            Timing::new(ms(15_000), ms(10_000), ms(2_000)),
            Ok(Timing::DEFAULT)
        );
        assert!(Timing::new(ms(3_000), ms(2_000), ms(500)).is_ok());
    }

    #[test]
    fn every_rule_names_its_field() {
        let cases = [
            (Timing::new(ms(1_500), ms(1_000), ms(100)), "lease-duration"),
            (Timing::new(ms(0), ms(1_000), ms(100)), "lease-duration"),
            (
                Timing::new(ms(3_000), ms(0), ms(100)),
                "renew-deadline must be greater than 0",
            ),
            (
                Timing::new(ms(3_000), ms(2_000), ms(0)),
                "retry-period must be greater than 0",
            ),
            (
                Timing::new(ms(3_000), ms(3_000), ms(500)),
                "must be greater than renew-deadline",
            ),
            (
                Timing::new(ms(3_000), ms(1_200), ms(1_000)),
                "greater than 1.2 × retry-period",
            ),
        ];
        for (result, expected) in cases {
            let message = result.expect_err("must be refused").to_string();
            assert!(
                message.contains(expected),
                "{message:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn every_bound_is_checked_before_any_arithmetic() {
        let day = MAX_LEASE_DURATION;
        assert!(
            Timing::new(day, day - ms(1), ms(10)).is_ok(),
            "a day is the longest lease"
        );
        let cases = [
            (
                Timing::new(day + Duration::from_secs(1), ms(10_000), ms(2_000)),
                "longer than the maximum of 24h",
            ),
            // The issue's example: 3000000000 s does not fit the Lease's int32 seconds.
            (
                Timing::new(
                    Duration::from_secs(3_000_000_000),
                    Duration::from_secs(2_500_000_000),
                    ms(1_000),
                ),
                "longer than the maximum of 24h",
            ),
            (
                Timing::new(
                    Duration::MAX - Duration::from_nanos(999_999_999),
                    Duration::MAX,
                    Duration::MAX,
                ),
                "longer than the maximum",
            ),
            // A huge retry period must be refused, not overflow `mul_f64` (which panics).
            (
                Timing::new(ms(15_000), ms(10_000), Duration::MAX),
                "must be greater than 1.2 × retry-period",
            ),
            (
                Timing::new(ms(15_000), ms(10_000), ms(9)),
                "shorter than the minimum of 10ms",
            ),
            (
                Timing::new(ms(15_000), Duration::MAX, ms(2_000)),
                "must be greater than renew-deadline",
            ),
        ];
        for (result, expected) in cases {
            let message = result.expect_err("must be refused").to_string();
            assert!(
                message.contains(expected),
                "{message:?} should contain {expected:?}"
            );
        }
        let t = Timing::new(day, day - ms(1), ms(10)).unwrap();
        assert_eq!(t.lease_duration_seconds(), 86_400);
        assert_eq!(
            t.backoff(u32::MAX, 1.0),
            day.mul_f64(1.2),
            "backoff saturates at the cap"
        );
    }

    #[test]
    fn backoff_doubles_from_the_retry_period_up_to_the_lease() {
        let t = Timing::new(ms(3_000), ms(2_000), ms(500)).unwrap();
        let sequence: Vec<u128> = (1..=6).map(|n| t.backoff(n, 0.0).as_millis()).collect();
        assert_eq!(sequence, [500, 1_000, 2_000, 3_000, 3_000, 3_000]);
        assert_eq!(t.backoff(0, 0.0), ms(500), "no failure counts as the first");
        assert_eq!(t.backoff(3, 1.0), ms(2_400), "jitter adds up to a fifth");
        assert_eq!(t.backoff(9, 0.999_999).as_millis(), 3_599);
    }

    #[test]
    fn a_leader_call_gets_half_the_renew_deadline_and_an_attempt_the_whole() {
        assert_eq!(Timing::DEFAULT.leader_call_budget(), ms(5_000));
        assert_eq!(Timing::DEFAULT.attempt_budget(), ms(10_000));
    }

    #[test]
    fn jitter_stays_within_client_go_bounds() {
        let timing = Timing::DEFAULT;
        assert_eq!(timing.jittered_retry(0.0), ms(2_000));
        assert_eq!(timing.jittered_retry(1.0), ms(2_400));
        assert_eq!(timing.jittered_retry(7.0), ms(2_400), "factor is clamped");
    }
}
