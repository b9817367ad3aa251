//! The election's timing model (client-go's): lease duration, renew deadline, retry period.

use std::time::Duration;

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
    #[error(
        "lease-duration {value:?} must be a whole number of seconds, at least 1s (the Lease stores \
         seconds); use e.g. 15s"
    )]
    LeaseDurationNotWholeSeconds { value: Duration },
    #[error("renew-deadline must be greater than 0; use e.g. 10s")]
    RenewDeadlineZero,
    #[error("retry-period must be greater than 0; use e.g. 2s")]
    RetryPeriodZero,
    #[error(
        "lease-duration {lease_duration:?} must be greater than renew-deadline {renew_deadline:?}: \
         lower renew-deadline or raise lease-duration"
    )]
    LeaseNotAboveRenewDeadline {
        lease_duration: Duration,
        renew_deadline: Duration,
    },
    #[error(
        "renew-deadline {renew_deadline:?} must be greater than 1.2 × retry-period {retry_period:?} \
         (the leader needs room for a jittered retry): lower retry-period or raise renew-deadline"
    )]
    RenewDeadlineNotAboveRetry {
        renew_deadline: Duration,
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
        if renew_deadline.is_zero() {
            return Err(Error::RenewDeadlineZero);
        }
        if retry_period.is_zero() {
            return Err(Error::RetryPeriodZero);
        }
        if lease_duration <= renew_deadline {
            return Err(Error::LeaseNotAboveRenewDeadline {
                lease_duration,
                renew_deadline,
            });
        }
        if renew_deadline <= retry_period.mul_f64(1.0 + JITTER_FACTOR) {
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

    /// The lease duration in whole seconds, as stored in the lock record.
    pub fn lease_duration_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX)
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
    fn jitter_stays_within_client_go_bounds() {
        let timing = Timing::DEFAULT;
        assert_eq!(timing.jittered_retry(0.0), ms(2_000));
        assert_eq!(timing.jittered_retry(1.0), ms(2_400));
        assert_eq!(timing.jittered_retry(7.0), ms(2_400), "factor is clamped");
    }
}
