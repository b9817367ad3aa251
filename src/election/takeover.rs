//! Spreading the followers' takeover attempts so that a handover costs about one write at any
//! group size.
//!
//! Watching followers all learn of a release in the same instant, and all their expiry timers
//! run out within a watch delivery of each other after a crash. Were each to write at once,
//! every one of them would race for the lock: one wins, the rest get 409 Conflict, and the API
//! server takes a burst of writes that grows with the group at exactly the moment it matters.
//! So each follower waits a short delay drawn at random once the lock is open to takeover
//! ([`Crowd::delay`]), and its attempt is cancelled when the watch shows that someone else took
//! the lock meanwhile (the election loop recomputes the next attempt from every observation, so
//! a record held by a new holder simply moves it to that holder's expiry).
//!
//! **The distribution.** With `p = 1 / crowd` (the follower's estimate of the group's size), a
//! follower writes at once with probability `p`, and otherwise after `unit × ln(u / p)` for `u`
//! uniform in `(p, 1)`: its delay `D` has `P(D ≤ t) = min(1, p · e^(t / unit))`. With `N`
//! followers of the same estimate, about `N·p` write at once, and when none does the first
//! write comes about when `N · p · e^(t/unit)` reaches 1. Every later follower whose delay
//! falls within one round trip `r` of the first write (the time it takes that write to reach
//! everyone through their watches) writes too: on average `e^(r / unit) − 1` more. So the
//! expected writes per handover are about `N·p + e^(r/unit)` when the estimate is right, and
//! the expected added latency about `unit × ln(1 / (N·p))` when it is too large (none when it
//! is right or too small). The longest delay is `unit × ln(crowd)`.
//!
//! **Learning from lost races.** A follower cannot count the others or time their watches (they
//! make no requests), but a write that lost a race (409) says the spread was too tight
//! ([`Crowd::lost_race`]): one sent at once doubles the size estimate, one sent after a delay
//! doubles the unit (up to [`max_unit`]). Nothing shrinks them: a winner that shows up late says
//! either "a small group" or "a slow round trip", and the two cannot be told apart (shrinking
//! the estimate on it made large groups on a loaded machine herd again). A new process starts
//! from [`CROWD_START`], which is large so that a big group's first handover is no herd; a small
//! group pays `unit × ln(CROWD_START / N)` on every handover (about 9 ms for 3 candidates with
//! the demo's timings).
//!
//! **Safety is untouched.** The delay only postpones a write the follower would have made
//! anyway; every write stays conditional on the resourceVersion it observed, so two followers
//! can never both take the lock, whatever their delays.

use std::time::Duration;

use super::Timing;

/// The group size a follower assumes before it has seen a handover: large, so that a big
/// group's first handover is no herd (a group of 3 pays about `unit × ln(CROWD_START / 3)` once).
pub const CROWD_START: f64 = 256.0;

/// The largest group size the estimate grows to.
pub const CROWD_MAX: f64 = 1024.0;

/// The spread's starting time unit: a retry period / 250 (2 ms for the demo's 500 ms, 8 ms for
/// client-go's 2 s), at least 1 ms.
pub fn unit(timing: &Timing) -> Duration {
    (timing.retry_period / 250).max(Duration::from_millis(1))
}

/// The largest the unit grows to: such that the longest delay, `unit × ln(CROWD_MAX)`, stays
/// within a quarter of the retry period (125 ms for the demo's 500 ms). So a takeover still
/// follows a release within one retry period, and an expiry within half of one.
pub fn max_unit(timing: &Timing) -> Duration {
    (timing.retry_period / 4)
        .div_f64(CROWD_MAX.ln())
        .max(unit(timing))
}

/// A follower's model of the race for the lock when it opens: how many candidates take part
/// (`size`), and the time `unit` in which a write reaches them all.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crowd {
    size: f64,
    unit: Duration,
    max_unit: Duration,
}

impl Crowd {
    /// The starting estimate for `timing`: [`CROWD_START`] candidates, the unit [`unit`].
    pub fn new(timing: &Timing) -> Self {
        Self {
            size: CROWD_START,
            unit: unit(timing),
            max_unit: max_unit(timing),
        }
    }

    /// The same with an estimate of `size` candidates, kept within `[1, CROWD_MAX]`.
    pub fn with_size(self, size: f64) -> Self {
        let size = if size.is_nan() {
            CROWD_START
        } else {
            size.clamp(1.0, CROWD_MAX)
        };
        Self { size, ..self }
    }

    /// The estimated group size.
    #[cfg(test)]
    pub fn size(self) -> f64 {
        self.size
    }

    /// The spread's current time unit.
    #[cfg(test)]
    pub fn unit(self) -> Duration {
        self.unit
    }

    /// The delay before a takeover attempt, for `u` uniform in `[0, 1)`: zero with probability
    /// `1 / size`, otherwise `unit × ln(u × size)`; never more than [`Crowd::longest`].
    pub fn delay(self, u: f64) -> Duration {
        let scaled = u.clamp(0.0, 1.0) * self.size;
        if scaled <= 1.0 {
            return Duration::ZERO;
        }
        self.unit.mul_f64(scaled.ln()).min(self.longest())
    }

    /// The longest delay this estimate draws: `unit × ln(size)`.
    pub fn longest(self) -> Duration {
        self.unit.mul_f64(self.size.ln())
    }

    /// This follower's takeover write, sent after a delay of `delay`, lost a race (409): others
    /// wrote within a round trip of it. Written at once, too many write at once: the group is
    /// larger than estimated, and the estimate doubles. Written after a delay, the writes were
    /// too close together for the round trip: the unit doubles (up to [`max_unit`]).
    pub fn lost_race(&mut self, delay: Duration) {
        if delay.is_zero() {
            *self = self.with_size(self.size * 2.0);
        } else {
            self.unit = (self.unit * 2).min(self.max_unit);
        }
    }
}

/// A small deterministic generator of uniform draws in `[0, 1)` (SplitMix64), seeded per
/// process, so the election's state stays a pure function of its inputs and tests can replay it.
#[derive(Clone, Debug)]
pub struct Draws(u64);

impl Draws {
    /// Draws seeded with `seed`.
    #[cfg(test)]
    pub fn seeded(seed: u64) -> Self {
        Self(seed)
    }

    /// Draws seeded from `text` (such as the process's incarnation, which differs per process).
    pub fn seeded_from(text: &str) -> Self {
        // FNV-1a: stable across runs and platforms, unlike the std hasher's.
        let seed = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        Self(seed)
    }

    /// The next draw, uniform in `[0, 1)`.
    pub fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // The top 53 bits, as the mantissa of a double in [0, 1).
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Timing {
        Timing::new(
            Duration::from_secs(3),
            Duration::from_secs(2),
            Duration::from_millis(500),
        )
        .unwrap()
    }

    #[test]
    fn the_unit_scales_with_the_retry_period_and_the_longest_delay_is_small_against_it() {
        assert_eq!(unit(&demo()), Duration::from_millis(2));
        assert_eq!(unit(&Timing::DEFAULT), Duration::from_millis(8));
        for timing in [demo(), Timing::DEFAULT] {
            let mut crowd = Crowd::new(&timing).with_size(f64::INFINITY);
            for _ in 0..20 {
                crowd.lost_race(Duration::from_millis(1));
            }
            assert_eq!(
                crowd.unit(),
                max_unit(&timing),
                "the unit grows to its cap, no further"
            );
            let longest = crowd.longest();
            assert!(
                longest * 4 <= timing.retry_period + Duration::from_millis(1),
                "longest delay {longest:?} against retry period {:?}",
                timing.retry_period
            );
        }
    }

    #[test]
    fn delays_are_drawn_within_their_bounds_and_zero_with_probability_one_over_the_crowd() {
        let crowd = Crowd::new(&demo());
        let mut draws = Draws::seeded(7);
        let delays: Vec<Duration> = (0..20_000).map(|_| crowd.delay(draws.next())).collect();
        let longest = crowd.longest();
        assert!(delays.iter().all(|d| *d <= longest), "a delay beyond {longest:?}");
        let at_once = delays.iter().filter(|d| d.is_zero()).count() as f64 / delays.len() as f64;
        assert!(
            (at_once - 1.0 / CROWD_START).abs() < 0.003,
            "share written at once {at_once}, expected about {}",
            1.0 / CROWD_START
        );
        // P(D <= t) = e^(t/unit) / crowd: half of them within ln(crowd/2) units.
        let median = crowd.unit().mul_f64((CROWD_START / 2.0).ln());
        let within = delays.iter().filter(|d| **d <= median).count() as f64 / delays.len() as f64;
        assert!(
            (within - 0.5).abs() < 0.02,
            "{within} within {median:?}, expected half"
        );
        assert_eq!(crowd.delay(0.0), Duration::ZERO);
        assert_eq!(crowd.delay(1.0), longest);
        assert_eq!(
            crowd.with_size(1.0).delay(0.99),
            Duration::ZERO,
            "alone: no delay"
        );
    }

    #[test]
    fn a_race_lost_at_once_doubles_the_estimate_and_one_lost_after_a_delay_doubles_the_unit() {
        let mut crowd = Crowd::new(&demo()).with_size(300.0);
        crowd.lost_race(Duration::ZERO);
        assert_eq!(crowd.size(), 600.0);
        assert_eq!(crowd.unit(), unit(&demo()));
        crowd.lost_race(Duration::ZERO);
        assert_eq!(crowd.size(), CROWD_MAX);
        crowd.lost_race(Duration::from_millis(3));
        assert_eq!(crowd.size(), CROWD_MAX);
        assert_eq!(crowd.unit(), Duration::from_millis(4));
    }

    #[test]
    fn draws_are_uniform_in_the_unit_interval_and_differ_by_seed() {
        let mut draws = Draws::seeded_from("pod-a/1/aa");
        let values: Vec<f64> = (0..10_000).map(|_| draws.next()).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
        let mut other = Draws::seeded_from("pod-b/1/aa");
        assert_ne!(Draws::seeded_from("pod-a/1/aa").next(), other.next());
    }
}
