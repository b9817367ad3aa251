//! The election's decisions, as pure functions of (what was observed, when, now).
//!
//! Nothing here talks to the API server or sleeps: the driver feeds observations in and carries
//! out the [`Decision`] that comes back. Two rules make the election safe:
//!
//! - **Expiry is judged on this process's own monotonic clock**, from the moment it first saw the
//!   current version of the record ([`Observed::observed_at`]), plus the duration the record
//!   itself states. The holder's `renewTime` (another machine's wall clock) is never compared
//!   with ours.
//! - **A claim is valid until the send time of its last successful write plus the renew
//!   deadline** ([`Claim::valid_until`]). Others wait a full lease duration from a moment that
//!   is later than that send time, and the lease duration exceeds the renew deadline, so the
//!   old leader's claim ends before anyone else's can begin. The deadline is kept on two clocks,
//!   the monotonic one and the boot-time one ([`crate::clock::BootClock`]), and the claim lapses
//!   when either passes: the monotonic clock stops while the machine is suspended, so a resumed
//!   VM would otherwise go on believing it leads.

use jiff::Timestamp;
use tokio::time::Instant;

use super::record::LeaderRecord;
use super::timing::Timing;
use crate::clock::{BootInstant, Reading, later};

/// What this process knows of the lock, and since when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// The record, or `None` when the lock object does not exist.
    pub record: Option<LeaderRecord>,
    /// The object's resourceVersion, for optimistic concurrency on the next write.
    pub resource_version: Option<String>,
    /// When this process first saw this version of the object (monotonic).
    pub observed_at: Instant,
}

impl Observed {
    /// A fresh observation of `record` at `now`.
    pub fn new(record: Option<LeaderRecord>, resource_version: Option<String>, now: Instant) -> Self {
        Self {
            record,
            resource_version,
            observed_at: now,
        }
    }

    /// The holder of the observed record.
    pub fn holder(&self) -> Option<&str> {
        self.record.as_ref().and_then(LeaderRecord::holder)
    }

    /// When the observed holder's lease runs out by this process's clock: the observation time
    /// plus the duration the record states (client-go uses the record's duration, not ours).
    pub fn expires_at(&self) -> Instant {
        let seconds = self
            .record
            .as_ref()
            .map_or(0, |r| r.lease_duration_seconds.max(0));
        self.observed_at + std::time::Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
    }
}

/// How a newly read object relates to what was known before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// A version not seen before: the observation time restarts now.
    Changed,
    /// The version already known: the observation time is kept.
    Unchanged,
    /// Older than what is known (an out-of-order watch event): ignore it.
    Stale,
}

/// Compares resourceVersions. They are opaque strings by API convention; when both are decimal
/// integers (as the API server's etcd storage produces) an older one is recognised as stale,
/// otherwise any difference counts as a change.
pub fn freshness(known: Option<&Observed>, resource_version: Option<&str>) -> Freshness {
    let Some(known) = known else {
        return Freshness::Changed;
    };
    let known_version = known.resource_version.as_deref();
    if known_version == resource_version {
        return Freshness::Unchanged;
    }
    match (
        known_version.and_then(|v| v.parse::<u64>().ok()),
        resource_version.and_then(|v| v.parse::<u64>().ok()),
    ) {
        (Some(old), Some(new)) if new < old => Freshness::Stale,
        _ => Freshness::Changed,
    }
}

/// Folds a newly read version of the lock into what is known.
///
/// The observation time restarts only when the version changed: re-reading the same version
/// must not extend anyone's lease (client-go compares the raw record for the same reason).
pub fn observe(
    known: Option<Observed>,
    record: Option<LeaderRecord>,
    resource_version: Option<String>,
    now: Instant,
) -> Observed {
    match freshness(known.as_ref(), resource_version.as_deref()) {
        Freshness::Changed => Observed::new(record, resource_version, now),
        Freshness::Unchanged | Freshness::Stale => match known {
            Some(known) => known,
            None => Observed::new(record, resource_version, now),
        },
    }
}

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing is known yet: read the lock.
    Read,
    /// The lock object does not exist: create it holding this record.
    Create(LeaderRecord),
    /// Write this record over the observed version: a renewal when the lock is ours, a takeover
    /// when it was released or has expired.
    Claim(LeaderRecord),
    /// Someone else holds an unexpired lease; nothing to do before this instant unless the lock
    /// changes.
    WaitUntil(Instant),
}

/// The heart of the election (client-go's `tryAcquireOrRenew`, minus the I/O).
pub fn decide(
    observed: Option<&Observed>,
    me: &str,
    now: Instant,
    wall: Timestamp,
    timing: &Timing,
) -> Decision {
    let Some(observed) = observed else {
        return Decision::Read;
    };
    let Some(old) = &observed.record else {
        return Decision::Create(LeaderRecord {
            holder_identity: me.to_owned(),
            lease_duration_seconds: timing.lease_duration_seconds(),
            acquire_time: Some(wall),
            renew_time: Some(wall),
            leader_transitions: 0,
        });
    };
    match old.holder() {
        Some(holder) if holder == me => Decision::Claim(LeaderRecord {
            holder_identity: me.to_owned(),
            lease_duration_seconds: timing.lease_duration_seconds(),
            acquire_time: old.acquire_time.or(Some(wall)),
            renew_time: Some(wall),
            leader_transitions: old.leader_transitions,
        }),
        Some(_) if now < observed.expires_at() => Decision::WaitUntil(observed.expires_at()),
        // Released, or expired by our own clock: take over, one more transition.
        _ => Decision::Claim(LeaderRecord {
            holder_identity: me.to_owned(),
            lease_duration_seconds: timing.lease_duration_seconds(),
            acquire_time: Some(wall),
            renew_time: Some(wall),
            leader_transitions: old.leader_transitions.max(-1).saturating_add(1),
        }),
    }
}

/// This process's hold on the lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The transition count with which the lock is held.
    pub fencing_token: u64,
    /// Wall-clock time at which this process became leader.
    pub since: Timestamp,
    /// Send time of the last successful write plus the renew deadline.
    pub valid_until: Instant,
    /// The same deadline on the boot-time clock, which keeps counting through a suspend.
    pub valid_until_boot: BootInstant,
    /// Send time of the last write attempt, successful or not; the next renew is due one retry
    /// period later.
    pub last_attempt: Instant,
}

impl Claim {
    /// The claim won by a write sent at `sent` and answered at `now`; `None` when the answer
    /// came so late that the claim would already have lapsed (a paused process, a slow server):
    /// the lock then names this process, but it does not lead on that write.
    pub fn won(
        record: &LeaderRecord,
        since: Timestamp,
        sent: Reading,
        now: Reading,
        timing: &Timing,
    ) -> Option<Self> {
        let claim = Self {
            fencing_token: record.fencing_token(),
            since,
            valid_until: later(sent.monotonic, timing.renew_deadline),
            valid_until_boot: sent.boot.later(timing.renew_deadline),
            last_attempt: sent.monotonic,
        };
        claim.is_valid_at(now).then_some(claim)
    }

    /// Whether the claim still holds at `now`: neither its monotonic nor its boot-time deadline
    /// has passed.
    pub fn is_valid_at(&self, now: Reading) -> bool {
        now.monotonic < self.valid_until && now.boot < self.valid_until_boot
    }

    /// When the next renewal is due.
    pub fn renew_due(&self, timing: &Timing) -> Instant {
        later(self.last_attempt, timing.retry_period)
    }

    /// A renewal sent at `sent` succeeded. A write that outlived the old deadline does not
    /// revive a lapsed claim: the caller steps down at the deadline and never gets here.
    pub fn renewed(&mut self, sent: Reading, timing: &Timing) {
        self.valid_until = self.valid_until.max(later(sent.monotonic, timing.renew_deadline));
        self.valid_until_boot = self.valid_until_boot.max(sent.boot.later(timing.renew_deadline));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::BootClock;
    use std::time::Duration;

    const ME: &str = "me";

    fn wall() -> Timestamp {
        "2026-06-01T12:00:00.000001Z".parse().unwrap()
    }

    fn timing() -> Timing {
        Timing::new(
            Duration::from_secs(3),
            Duration::from_secs(2),
            Duration::from_millis(500),
        )
        .unwrap()
    }

    fn held_by(holder: &str, transitions: i32, duration: i32) -> LeaderRecord {
        let earlier: Timestamp = "2026-06-01T11:00:00Z".parse().unwrap();
        LeaderRecord {
            holder_identity: holder.into(),
            lease_duration_seconds: duration,
            acquire_time: Some(earlier),
            renew_time: Some(earlier),
            leader_transitions: transitions,
        }
    }

    fn seen(record: Option<LeaderRecord>, rv: &str, at: Instant) -> Observed {
        Observed::new(record, Some(rv.into()), at)
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_known_means_read() {
        assert_eq!(
            decide(None, ME, Instant::now(), wall(), &timing()),
            Decision::Read
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_lock_is_created_with_zero_transitions() {
        let now = Instant::now();
        let observed = Observed::new(None, None, now);
        let Decision::Create(record) = decide(Some(&observed), ME, now, wall(), &timing()) else {
            panic!("expected Create");
        };
        assert_eq!(record.holder(), Some(ME));
        assert_eq!(record.leader_transitions, 0);
        assert_eq!(record.lease_duration_seconds, 3);
        assert_eq!(record.acquire_time, Some(wall()));
    }

    #[tokio::test(start_paused = true)]
    async fn renewing_our_own_lock_keeps_acquire_time_and_transitions() {
        let now = Instant::now();
        let old = held_by(ME, 5, 3);
        let observed = seen(Some(old.clone()), "10", now);
        let Decision::Claim(record) = decide(Some(&observed), ME, now, wall(), &timing()) else {
            panic!("expected Claim");
        };
        assert_eq!(record.leader_transitions, 5, "a renewal is not a transition");
        assert_eq!(
            record.acquire_time, old.acquire_time,
            "acquireTime is kept across renewals"
        );
        assert_eq!(record.renew_time, Some(wall()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lock_held_by_another_waits_until_our_observation_plus_its_duration() {
        let start = Instant::now();
        // The record states 7s although we run with 3s: the record's own duration is used.
        let observed = seen(Some(held_by("other", 2, 7)), "10", start);
        let expiry = start + Duration::from_secs(7);
        assert_eq!(
            decide(Some(&observed), ME, start, wall(), &timing()),
            Decision::WaitUntil(expiry)
        );
        tokio::time::advance(Duration::from_millis(6_999)).await;
        assert_eq!(
            decide(Some(&observed), ME, Instant::now(), wall(), &timing()),
            Decision::WaitUntil(expiry)
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        let Decision::Claim(record) = decide(Some(&observed), ME, Instant::now(), wall(), &timing()) else {
            panic!("expected a takeover exactly at expiry");
        };
        assert_eq!(record.leader_transitions, 3, "a takeover is one more transition");
        assert_eq!(
            record.acquire_time,
            Some(wall()),
            "a new holder starts a new acquireTime"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn expiry_ignores_the_renew_time_in_the_record() {
        // The record's renewTime is an hour old by the wall clock, but we only just saw it.
        let now = Instant::now();
        let observed = seen(Some(held_by("other", 0, 3)), "10", now);
        assert!(matches!(
            decide(Some(&observed), ME, now, wall(), &timing()),
            Decision::WaitUntil(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_lock_is_taken_at_once() {
        let now = Instant::now();
        let released = held_by(ME, 4, 3).released(wall());
        let observed = seen(Some(released), "11", now);
        let Decision::Claim(record) = decide(Some(&observed), "next", now, wall(), &timing()) else {
            panic!("expected Claim of a released lock");
        };
        assert_eq!(record.holder(), Some("next"));
        assert_eq!(record.leader_transitions, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_or_negative_duration_expires_at_once() {
        let now = Instant::now();
        for duration in [0, -5] {
            let observed = seen(Some(held_by("other", 1, duration)), "10", now);
            assert!(matches!(
                decide(Some(&observed), ME, now, wall(), &timing()),
                Decision::Claim(_)
            ));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn observation_time_restarts_only_on_a_new_version() {
        let t0 = Instant::now();
        let first = observe(None, Some(held_by("other", 0, 3)), Some("10".into()), t0);
        assert_eq!(first.observed_at, t0);
        tokio::time::advance(Duration::from_secs(1)).await;
        let t1 = Instant::now();
        let same = observe(
            Some(first.clone()),
            Some(held_by("other", 0, 3)),
            Some("10".into()),
            t1,
        );
        assert_eq!(
            same.observed_at, t0,
            "re-reading the same version must not extend the lease"
        );
        let newer = observe(Some(same), Some(held_by("other", 0, 3)), Some("11".into()), t1);
        assert_eq!(newer.observed_at, t1);
        let stale = observe(
            Some(newer.clone()),
            Some(held_by("old", 0, 3)),
            Some("9".into()),
            t1,
        );
        assert_eq!(stale, newer, "an older version is ignored");
    }

    #[test]
    fn opaque_versions_count_as_changes() {
        let known = Observed::new(None, Some("abc".into()), Instant::now());
        assert_eq!(freshness(Some(&known), Some("abd")), Freshness::Changed);
        assert_eq!(freshness(Some(&known), Some("abc")), Freshness::Unchanged);
        assert_eq!(freshness(None, Some("1")), Freshness::Changed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_claim_is_valid_from_send_time_plus_renew_deadline() {
        let boot = BootClock::manual();
        let sent = boot.read();
        let mut claim = Claim::won(&held_by(ME, 4, 3), wall(), sent, sent, &timing()).unwrap();
        assert_eq!(claim.fencing_token, 4);
        assert_eq!(claim.valid_until, sent.monotonic + Duration::from_secs(2));
        assert_eq!(
            claim.renew_due(&timing()),
            sent.monotonic + Duration::from_millis(500)
        );
        tokio::time::advance(Duration::from_millis(1_999)).await;
        assert!(claim.is_valid_at(boot.read()));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(
            !claim.is_valid_at(boot.read()),
            "the claim ends exactly at its deadline"
        );
        // A renewal sent earlier than the last one must not shorten the claim.
        let later = boot.read();
        claim.renewed(later, &timing());
        assert_eq!(claim.valid_until, later.monotonic + Duration::from_secs(2));
        claim.renewed(sent, &timing());
        assert_eq!(claim.valid_until, later.monotonic + Duration::from_secs(2));
        assert_eq!(claim.valid_until_boot, later.boot.later(Duration::from_secs(2)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_suspend_ends_the_claim_though_the_monotonic_clock_stood_still() {
        let boot = BootClock::manual();
        let sent = boot.read();
        let claim = Claim::won(&held_by(ME, 4, 3), wall(), sent, sent, &timing()).unwrap();
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(claim.is_valid_at(boot.read()));
        // Suspended for a minute: CLOCK_MONOTONIC (tokio's clock) stops, CLOCK_BOOTTIME does not.
        boot.suspend(Duration::from_secs(60));
        let resumed = boot.read();
        assert!(
            resumed.monotonic < claim.valid_until,
            "by the monotonic clock alone it would still hold"
        );
        assert!(
            !claim.is_valid_at(resumed),
            "the boot-time deadline has passed: no longer leader"
        );
        // A renewal sent before the suspend cannot revive it; neither can a write answered after it.
        let mut renewed = claim.clone();
        renewed.renewed(sent, &timing());
        assert!(!renewed.is_valid_at(resumed));
        assert_eq!(
            Claim::won(&held_by(ME, 4, 3), wall(), sent, resumed, &timing()),
            None,
            "a write sent before a suspend and answered after it wins nothing"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_answered_after_the_renew_deadline_wins_no_claim() {
        let boot = BootClock::manual();
        let sent = boot.read();
        let record = held_by(ME, 32, 3);
        let timing = timing();
        tokio::time::advance(timing.renew_deadline - Duration::from_millis(1)).await;
        assert!(Claim::won(&record, wall(), sent, boot.read(), &timing).is_some());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(Claim::won(&record, wall(), sent, boot.read(), &timing), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_old_leaders_claim_ends_before_a_follower_may_take_over() {
        // The invariant the whole design rests on, for the tightest case: the follower observes
        // the renewal at the very instant it was sent.
        let timing = timing();
        let sent = BootClock::manual().read();
        let claim = Claim::won(&held_by(ME, 1, 3), wall(), sent, sent, &timing).unwrap();
        let observed = seen(Some(held_by(ME, 1, 3)), "20", sent.monotonic);
        let Decision::WaitUntil(takeover) =
            decide(Some(&observed), "follower", sent.monotonic, wall(), &timing)
        else {
            panic!("a follower must wait");
        };
        assert!(
            claim.valid_until < takeover,
            "{:?} must precede {:?}",
            claim.valid_until,
            takeover
        );
    }
}
