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
//! is right or too small). The longest delay is `unit × ln(crowd)`, within [`spread`].
//!
//! **Learning from the lock.** The winner writes a [`TakeoverNote`] with its record: the delay
//! it waited, the unit it drew with, and the group size for the next race ([`Crowd::won`]),
//! read off its own delay (the first of `n` draws about `e^(d/unit) / size = 1 / n`), counting
//! only the part of the delay beyond a round trip (within one, the opening had not reached
//! everyone: slow delivery must not pass for a small group), and shrinking by a factor
//! [`SHRINK_AT_MOST`] at most. Every follower sees that write in its watch, and has
//! seen the lock open on its own clock, so it measures the round trip with no request of its
//! own: `r = (write seen − opening seen) − winner's delay` ([`Crowd::learn`]); the holder
//! measures it on every renewal too (send to its own watch's echo, [`Crowd::measured`]) and
//! keeps the note's unit current, which followers follow ([`Crowd::follow`]). The unit is
//! [`UNIT_PER_ROUND_TRIP`] times `r`. A write that lost a race (409) still widens this
//! follower's model ([`Crowd::lost_race`]). A new process adopts the group's model from its
//! first look at the lock ([`Crowd::adopt`]); before any note exists it starts from
//! [`CROWD_START`], large so that a big group's first handover is no herd.
//!
//! **Small groups.** Below an estimate of [`AT_ONCE_BELOW`] everyone writes at once, as with no
//! delay: two or three writes cost less than the unit a draw would add whenever no one drew
//! zero. Such a win teaches nothing; [`AT_ONCE_LOSSES`] losses in a row take a follower out.
//!
//! **Safety is untouched.** The delay only postpones a write the follower would have made
//! anyway; every write stays conditional on the resourceVersion it observed, so two followers
//! can never both take the lock, whatever their delays.

use std::time::Duration;

use super::Timing;

/// The group size a follower assumes before the lock tells it the group's: large, so that a big
/// group's first handover is no herd; a small group's estimate shrinks after a handover or two.
pub const CROWD_START: f64 = 256.0;

/// The smallest group size the estimate shrinks to (below 2, everyone would write at once).
pub const CROWD_MIN: f64 = 2.0;

/// Below this estimated size every follower writes at once: a group of two or three followers
/// costs at most that many writes, as without any delay, and takes the lock as fast (whoever
/// the release reaches first). A winner in such a race does not double the estimate (everyone
/// wrote at once by design); a follower whose writes lost [`AT_ONCE_LOSSES`] races in a row
/// doubles its own, so a group that has grown leaves this regime after a few handovers that
/// cost a write per follower.
pub const AT_ONCE_BELOW: f64 = 4.0;

/// Races lost in a row, all written at once below [`AT_ONCE_BELOW`], before a follower takes
/// the group to be larger than its estimate: in a group of two followers each loses half the
/// races, so a single loss says little (three in a row: one in eight), while in a group that
/// has grown to many, nearly every follower loses every race.
pub const AT_ONCE_LOSSES: u32 = 3;

/// The largest group size the estimate grows to.
pub const CROWD_MAX: f64 = 1024.0;

/// The unit per measured round trip: `1 / ln 1.5`, so that on average half a write more than
/// the first one comes in within a round trip of it (`e^(r / unit) − 1 = 0.5`). A larger unit
/// makes a bad handover rarer (one round trip well beyond the unit is what makes one; see
/// `scripts/takeover-model.py`) and the races where no one draws zero slower: with 4 round
/// trips the median handover at 200 candidates took 23 ms, 11 ms without any delay in the same
/// run; with this unit 18 ms, as without (docs/benchmarks.md).
pub const UNIT_PER_ROUND_TRIP: f64 = 2.466;

/// The most the size estimate shrinks by in one handover: one winner's delay is a noisy count
/// (a follower starved of CPU draws its delay late), and an estimate far too small is a herd.
pub const SHRINK_AT_MOST: f64 = 16.0;

/// How much of the group's unit a follower keeps when its own round trips ask for less: the
/// unit comes down by a fifth per handover once the round trips are shorter.
const UNIT_KEPT: f64 = 0.8;

/// The spread's smallest time unit: a retry period / 250 (2 ms for the demo's 500 ms, 8 ms for
/// client-go's 2 s), at least 1 ms; also where a process starts before it has learned any.
pub fn unit(timing: &Timing) -> Duration {
    (timing.retry_period / 250).max(Duration::from_millis(1))
}

/// The longest delay any follower draws: half a retry period (250 ms for the demo's 500 ms). So
/// a takeover still follows a release within one retry period, and an expiry within one.
pub fn spread(timing: &Timing) -> Duration {
    timing.retry_period / 2
}

/// What the winner of a takeover writes into the lock with its record (see
/// [`super::record::LeaderRecord::takeover`]): the delay it waited, and the group's model as it
/// held it. Every follower learns from it through its watch, with no request of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TakeoverNote {
    /// How long the winner waited after the lock opened before its write.
    pub delay: Duration,
    /// The spread's time unit the winner drew with.
    pub unit: Duration,
    /// The group size the winner drew with.
    pub size: u32,
}

/// `duration` counted in whole microseconds, as the lock keeps a note's times.
pub fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// `duration` in whole microseconds, as the lock keeps a note: the record read back must be the
/// one written.
pub fn whole_micros(duration: Duration) -> Duration {
    Duration::from_micros(micros(duration))
}

/// A follower's model of the race for the lock when it opens: how many candidates take part
/// (`size`), and the time `unit` against the round trip in which a write reaches them all.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crowd {
    size: f64,
    unit: Duration,
    min_unit: Duration,
    spread: Duration,
    /// This follower's estimate of the round trip: from the moment it sees the lock open until
    /// it sees the winner's write, less the winner's delay.
    round_trip: Option<Duration>,
    /// Races this follower lost in a row with a write sent at once (see [`AT_ONCE_LOSSES`]).
    losses_at_once: u32,
}

impl Crowd {
    /// The starting estimate for `timing`: [`CROWD_START`] candidates, the unit [`unit`].
    pub fn new(timing: &Timing) -> Self {
        Self {
            size: CROWD_START,
            unit: unit(timing),
            min_unit: unit(timing),
            spread: spread(timing),
            round_trip: None,
            losses_at_once: 0,
        }
    }

    /// The same with an estimate of `size` candidates, kept within `[CROWD_MIN, CROWD_MAX]`.
    pub fn with_size(self, size: f64) -> Self {
        let size = if size.is_nan() {
            CROWD_START
        } else {
            size.clamp(CROWD_MIN, CROWD_MAX)
        };
        Self { size, ..self }
    }

    /// The estimated group size.
    #[cfg(test)]
    pub fn size(self) -> f64 {
        self.size
    }

    /// The spread's time unit as drawn with: the learned unit, held so that the longest delay,
    /// `unit × ln(size)`, stays within [`spread`].
    pub fn unit(self) -> Duration {
        let cap = self.spread.div_f64(self.size.ln().max(1.0));
        self.unit.min(cap).max(self.min_unit.min(cap))
    }

    /// This follower's round-trip estimate, once it has measured one.
    #[cfg(test)]
    pub fn round_trip(self) -> Option<Duration> {
        self.round_trip
    }

    /// The delay before a takeover attempt, for `u` uniform in `[0, 1)`: zero with probability
    /// `1 / size` (always below [`AT_ONCE_BELOW`]), otherwise `unit × ln(u × size)`; never more
    /// than [`Crowd::longest`].
    pub fn delay(self, u: f64) -> Duration {
        let scaled = u.clamp(0.0, 1.0) * self.size;
        if scaled <= 1.0 || self.size < AT_ONCE_BELOW {
            return Duration::ZERO;
        }
        self.unit().mul_f64(scaled.ln()).min(self.longest())
    }

    /// The longest delay this estimate draws: `unit × ln(size)`, within [`spread`].
    pub fn longest(self) -> Duration {
        self.unit().mul_f64(self.size.ln()).min(self.spread)
    }

    /// This follower's takeover write, sent after a delay of `delay`, lost a race (409): others
    /// wrote within a round trip of it. Written at once, too many write at once: the group is
    /// larger than estimated, and the estimate doubles. Written after a delay, the writes were
    /// too close together for the round trip: the unit doubles (within [`spread`]).
    ///
    /// Below [`AT_ONCE_BELOW`], where everyone writes at once, the estimate doubles only once
    /// [`Crowd::tally`] has counted [`AT_ONCE_LOSSES`] such losses in a row.
    pub fn lost_race(&mut self, delay: Duration) {
        if delay.is_zero() && self.size < AT_ONCE_BELOW && self.losses_at_once < AT_ONCE_LOSSES {
            return;
        }
        if delay.is_zero() {
            *self = self.with_size(self.size * 2.0);
        } else {
            self.unit = (self.unit * 2).min(self.spread);
        }
    }

    /// Counts one race this follower took part in or watched: `lost_at_once` when its write,
    /// sent at once, lost; any other outcome ends a run of such losses.
    pub fn tally(&mut self, lost_at_once: bool) {
        self.losses_at_once = if lost_at_once {
            self.losses_at_once.saturating_add(1)
        } else {
            0
        };
    }

    /// What a winner that waited `delay` writes into the lock.
    pub fn note(self, delay: Duration) -> TakeoverNote {
        TakeoverNote {
            delay: whole_micros(delay),
            unit: whole_micros(self.unit),
            // Within [CROWD_MIN, CROWD_MAX]: the conversion cannot overflow.
            size: self.size.round() as u32,
        }
    }

    /// Takes the group's model from a note found in the lock, with nothing measured (a first
    /// look at the lock, or a lock taken with no past, whose opening each saw at its own time).
    pub fn adopt(&mut self, note: &TakeoverNote) {
        *self = self.with_size(f64::from(note.size));
        self.unit = note.unit.clamp(self.min_unit, self.spread);
    }

    /// The note a winner that waited `delay` writes: the delay, the unit it drew with, and the
    /// group size the next race should draw with (`after_a_lock_with_no_past`: none is learned).
    ///
    /// The size: the first of `n` followers draws a delay `d` with `e^(d/unit) / size ≈ 1 / n`,
    /// so `n ≈ size × e^(−d/unit)`; a winner that wrote at once says the group may be larger
    /// than `size`, which doubles. Only the part of `d` beyond a round trip counts: within a
    /// round trip of the opening, the opening had not yet reached everyone, so the race was
    /// smaller than the group (on a loaded machine, slow delivery looks like a small group). It
    /// shrinks by [`SHRINK_AT_MOST`] at most. The winner computes it, so every follower, and a
    /// process that starts later, takes the same estimate from the lock.
    pub fn won(self, delay: Duration, after_a_lock_with_no_past: bool) -> TakeoverNote {
        let drew_with = self.note(delay);
        if after_a_lock_with_no_past {
            // Each saw the missing lock at its own start-up: the delay counts nothing.
            return drew_with;
        }
        let unit = self.unit();
        let round_trip = self.round_trip.unwrap_or(unit.div_f64(UNIT_PER_ROUND_TRIP));
        let estimate = if delay.is_zero() && self.size < AT_ONCE_BELOW {
            // Everyone wrote at once by design: that says nothing of the group's size.
            self.size
        } else if delay.is_zero() {
            self.size * 2.0
        } else {
            // Only the part of the delay beyond a round trip counts: a follower the opening
            // reached late raced fewer of the others, so its delay alone would undercount them.
            let counted = delay.saturating_sub(round_trip);
            self.size * (-(counted.as_secs_f64() / unit.as_secs_f64().max(1e-6))).exp()
        };
        let next = self.with_size(estimate.max(self.size / SHRINK_AT_MOST));
        TakeoverNote {
            size: next.note(delay).size,
            ..drew_with
        }
    }

    /// Learns from a takeover this follower watched: `note` is what the winner wrote, and
    /// `round_trip` the time from this follower seeing the lock open to seeing the winner's
    /// write, less the winner's delay (`None` when it did not see the opening itself). The
    /// size is the winner's (see [`Crowd::won`]); the unit the larger of the group's (less a
    /// fifth) and [`UNIT_PER_ROUND_TRIP`] times this follower's round trip (which rises at once
    /// with a longer one and comes down slowly).
    pub fn learn(&mut self, note: &TakeoverNote, round_trip: Option<Duration>) {
        *self = self.with_size(f64::from(note.size));
        if let Some(sample) = round_trip {
            self.measured(sample);
        }
        self.take_unit(note.unit.mul_f64(UNIT_KEPT));
    }

    /// Takes in a round trip measured by this process: from a takeover it watched, or, holding
    /// the lock, from sending a write to seeing it come back through its own watch. A longer
    /// one counts at once; a shorter one moves the estimate 30% of the way.
    pub fn measured(&mut self, sample: Duration) {
        self.round_trip = Some(match self.round_trip {
            Some(known) if sample < known => known.mul_f64(0.7) + sample.mul_f64(0.3),
            _ => sample,
        });
    }

    /// The unit this process's own round trips ask for: [`UNIT_PER_ROUND_TRIP`] times its
    /// estimate, within `[unit(timing), spread]`; `None` until it has measured one.
    pub fn measured_unit(self) -> Option<Duration> {
        self.round_trip
            .map(|r| r.mul_f64(UNIT_PER_ROUND_TRIP).clamp(self.min_unit, self.spread))
    }

    /// Follows the holder's unit from a renewal's note (the holder measures it on every write),
    /// or this follower's own when that is longer.
    pub fn follow(&mut self, note: &TakeoverNote) {
        self.take_unit(note.unit);
    }

    /// Draws with `group`'s unit, or this process's own when its round trips ask for more,
    /// within `[unit(timing), spread]`.
    fn take_unit(&mut self, group: Duration) {
        self.unit = group
            .max(self.measured_unit().unwrap_or_default())
            .clamp(self.min_unit, self.spread);
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
    fn the_unit_scales_with_the_retry_period_and_the_longest_delay_stays_within_half_of_it() {
        assert_eq!(unit(&demo()), Duration::from_millis(2));
        assert_eq!(unit(&Timing::DEFAULT), Duration::from_millis(8));
        for timing in [demo(), Timing::DEFAULT] {
            let mut crowd = Crowd::new(&timing).with_size(f64::INFINITY);
            for _ in 0..20 {
                crowd.lost_race(Duration::from_millis(1));
            }
            let longest = crowd.longest();
            assert!(
                longest * 2 <= timing.retry_period + Duration::from_millis(1),
                "longest delay {longest:?} against retry period {:?}",
                timing.retry_period
            );
            assert_eq!(crowd.delay(1.0), longest, "the cap binds the draws too");
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
    }

    #[test]
    fn a_group_of_two_or_three_writes_at_once_and_leaves_that_when_a_race_is_lost() {
        let timing = demo();
        let mut draws = Draws::seeded(11);
        for size in [1.0, 2.0, 3.0] {
            let small = Crowd::new(&timing).with_size(size);
            assert!(
                (0..1_000).all(|_| small.delay(draws.next()).is_zero()),
                "an estimate of {size} writes at once"
            );
            // Everyone wrote at once: the winner learns nothing of the size from that.
            assert_eq!(
                small.won(Duration::ZERO, false).size,
                small.note(Duration::ZERO).size
            );
        }
        // From four on, delays are drawn, and a win at once doubles the estimate.
        let four = Crowd::new(&timing).with_size(4.0);
        assert!((0..1_000).any(|_| !four.delay(draws.next()).is_zero()));
        assert_eq!(four.won(Duration::ZERO, false).size, 8);
        // A follower of a small group whose writes lost three races in a row: more write at
        // once than the estimate says, so its own estimate doubles out of the at-once regime.
        // Two losses, or a run broken by a race it did not lose, change nothing.
        let mut lost = Crowd::new(&timing).with_size(2.0);
        for outcome in [true, true, false, true, true] {
            lost.tally(outcome);
            if outcome {
                lost.lost_race(Duration::ZERO);
            }
            assert_eq!(lost.size(), 2.0);
        }
        lost.tally(true);
        lost.lost_race(Duration::ZERO);
        assert_eq!(lost.size(), 4.0);
        assert!((0..1_000).any(|_| !lost.delay(draws.next()).is_zero()));
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
    fn the_round_trip_measured_from_a_takeover_sets_the_unit_and_comes_down_slowly() {
        let mut crowd = Crowd::new(&demo());
        let note = TakeoverNote {
            delay: Duration::ZERO,
            unit: Duration::from_millis(2),
            size: 256,
        };
        crowd.learn(&note, Some(Duration::from_millis(20)));
        assert_eq!(crowd.round_trip(), Some(Duration::from_millis(20)));
        let unit = Duration::from_millis(20).mul_f64(UNIT_PER_ROUND_TRIP);
        assert_eq!(crowd.unit(), unit.min(spread(&demo()).div_f64(crowd.size().ln())));
        // Shorter round trips pull the estimate down by 30% of the gap each; a longer one at once.
        crowd.learn(&note, Some(Duration::from_millis(10)));
        assert_eq!(crowd.round_trip(), Some(Duration::from_millis(17)));
        crowd.learn(&note, Some(Duration::from_millis(40)));
        assert_eq!(crowd.round_trip(), Some(Duration::from_millis(40)));
        // The group's unit, less a fifth, when it is the larger.
        let mut fresh = Crowd::new(&demo()).with_size(4.0);
        let wide = TakeoverNote {
            delay: Duration::from_millis(1),
            unit: Duration::from_millis(30),
            size: 4,
        };
        fresh.learn(&wide, Some(Duration::from_millis(1)));
        assert_eq!(fresh.unit(), Duration::from_millis(24));
        // Within the spread, however long the round trip.
        fresh.learn(&wide, Some(Duration::from_secs(10)));
        assert!(fresh.longest() <= spread(&demo()));
    }

    #[test]
    fn the_winner_reads_the_group_size_off_its_delay_and_every_follower_takes_it() {
        let timing = demo();
        let crowd = Crowd::new(&timing);
        let unit = crowd.unit();
        // Twenty followers drawing with an estimate of 256: the first draw comes around
        // e^(d/unit) = 256 / 20, and the opening reached them within a round trip (none
        // measured yet: unit / 2.466), which does not count.
        let round_trip = unit.div_f64(UNIT_PER_ROUND_TRIP);
        let first = round_trip + unit.mul_f64((256.0_f64 / 20.0).ln());
        let note = crowd.won(first, false);
        assert_eq!(
            (note.delay, note.unit, note.size),
            (whole_micros(first), unit, 20)
        );
        // Without the round trip taken off, the same delay would say 13: the late opening
        // would pass for a smaller group.
        let uncounted = (256.0 * (-first.as_secs_f64() / unit.as_secs_f64()).exp()).round();
        assert_eq!(uncounted, 13.0);
        // A delay that says 4 brings the estimate down by a factor 16 at most.
        let four = round_trip + unit.mul_f64((256.0_f64 / 4.0).ln());
        assert_eq!(crowd.won(four, false).size, 16);
        // A winner that wrote at once: the group may be larger; the estimate doubles.
        assert_eq!(crowd.won(Duration::ZERO, false).size, 512);
        // A winner within a round trip of the opening (here 2 ms / 2.466) shrinks nothing.
        assert_eq!(crowd.won(Duration::from_micros(700), false).size, 256);
        // A lock taken with no past teaches nothing.
        assert_eq!(crowd.won(first, true).size, 256);
        // A lone follower's long wait brings the estimate to its floor, never below.
        assert_eq!(
            crowd.with_size(4.0).won(Duration::from_millis(100), false).size,
            2
        );
        // Every follower, whatever its own estimate, takes the winner's.
        for own in [3.0, 1000.0] {
            let mut follower = Crowd::new(&timing).with_size(own);
            follower.learn(&note, Some(Duration::from_millis(3)));
            assert_eq!(follower.size(), 20.0);
        }
    }

    #[test]
    fn a_note_is_kept_in_whole_microseconds_and_adopted_as_written() {
        let crowd = Crowd::new(&demo()).with_size(37.4);
        let note = crowd.note(Duration::from_nanos(1_234_567));
        assert_eq!(note.delay, Duration::from_micros(1_234));
        assert_eq!(note.size, 37);
        let mut fresh = Crowd::new(&Timing::DEFAULT);
        fresh.adopt(&note);
        assert_eq!(fresh.size(), 37.0);
        assert_eq!(
            fresh.unit(),
            unit(&Timing::DEFAULT),
            "never below this timing's own floor"
        );
        assert_eq!(fresh.round_trip(), None, "adopting measures nothing");
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
