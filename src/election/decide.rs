//! The election's decisions, as pure functions of (what was observed, when, now).
//!
//! Nothing here talks to the API server or sleeps: the driver feeds observations in and carries
//! out the [`Decision`] that comes back. The rules that make the election safe:
//!
//! - **Expiry is judged on this process's own monotonic clock**, from the moment it first saw the
//!   current leader record ([`Observed::observed_at`]), plus the duration the record itself
//!   states. The holder's `renewTime` (another machine's wall clock) is never compared with ours.
//!   Only a change of the record restarts that clock: a write to the object that leaves the
//!   record as it was (labels, data, other annotations) does not ([`observe`]).
//! - **A claim is valid until the send time of its last successful write plus the renew
//!   deadline** ([`Claim::valid_until`]). Others wait a full lease duration from a moment that
//!   is later than that send time, and the lease duration exceeds the renew deadline, so the
//!   old leader's claim ends before anyone else's can begin. The deadline is kept on two clocks,
//!   the monotonic one and the boot-time one ([`crate::clock::BootClock`]), and the claim lapses
//!   when either passes: the monotonic clock stops while the machine is suspended, so a resumed
//!   VM would otherwise go on believing it leads.
//! - **A holder seen is waited out even when its record vanishes.** When a record is deleted,
//!   stripped or rewritten by anyone but its holder, the holder's lease still runs out only when
//!   it would have had the record stood ([`Observed::vanished_until`]); only the holder's own
//!   release or renewal ends it early.
//! - **A lock taken with no past leads only a lease later.** A missing lock, or one whose record
//!   was stripped, says nothing about who held it a moment ago: between two reads of a poller (or
//!   while a watch was down) someone may have created it, led, and seen it deleted again, and a
//!   create carries no resourceVersion that would fail on that. So such a lock is taken at once
//!   (which stops anyone else from taking it, and makes a live holder's next renewal fail), but
//!   held for one of this process's own lease durations before it counts as leadership
//!   ([`leads_from`]): any claim made before the take, by a holder with the same timing, has
//!   ended by then.
//! - **The fencing token never goes down.** Every observation carries the highest transition count
//!   this process has seen ([`Observed::highest_token`]), across deletions; a new leader writes one
//!   more than that, also when it creates the lock anew.
//! - **A record naming this identity with another incarnation is someone else's**: waited out
//!   like any other holder, except a predecessor in the same pod, which has provably exited.
//!   A record that cannot be read is held by an unknown holder for this process's own lease
//!   duration, as is a held record with no usable duration.

use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;

use super::incarnation::is_predecessor_in_pod;
use super::record::{Holding, LeaderRecord};
use super::timing::Timing;
use crate::clock::{BootInstant, Reading, later};

/// Who this process is in the election.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Me {
    /// The identity written as `holderIdentity`.
    pub identity: String,
    /// This process's incarnation (see [`super::incarnation`]).
    pub incarnation: String,
    /// The address published with every claim (see [`super::record::ADDRESS_ANNOTATION`]).
    pub address: Option<String>,
}

impl Me {
    /// Whether `record` was written by this very process.
    pub fn holds(&self, record: &LeaderRecord) -> bool {
        record.holding() == Holding::Held(&self.identity)
            && record.incarnation.as_deref() == Some(self.incarnation.as_str())
    }

    /// Whether `record` names this identity but another process: the other incarnation, unless
    /// it is a predecessor in this pod (which has exited).
    pub fn conflicts_with(&self, record: &LeaderRecord) -> Option<String> {
        if record.holding() != Holding::Held(&self.identity) || self.holds(record) {
            return None;
        }
        let theirs = record.incarnation.as_deref().unwrap_or("");
        (!is_predecessor_in_pod(theirs, &self.incarnation)).then(|| {
            if theirs.is_empty() {
                "(none)".to_owned()
            } else {
                theirs.to_owned()
            }
        })
    }
}

/// What this process knows of the lock, and since when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// The record, or `None` when the lock object does not exist.
    pub record: Option<LeaderRecord>,
    /// The object's resourceVersion, for optimistic concurrency on the next write.
    pub resource_version: Option<String>,
    /// When this process first saw this record (monotonic).
    pub observed_at: Instant,
    /// The highest transition count in any record this process has seen.
    pub highest_token: Option<u64>,
    /// The latest moment until which a holder seen earlier, whose record was deleted, stripped
    /// or replaced by someone else, would still hold the lock had its record stood.
    pub vanished_until: Option<Instant>,
}

impl Observed {
    /// A first observation of `record` at `now`, with no memory of earlier ones.
    pub fn new(record: Option<LeaderRecord>, resource_version: Option<String>, now: Instant) -> Self {
        Self {
            highest_token: record.as_ref().and_then(LeaderRecord::seen_token),
            record,
            resource_version,
            observed_at: now,
            vanished_until: None,
        }
    }

    /// The holder of the observed record.
    pub fn holder(&self) -> Option<&str> {
        self.record.as_ref().and_then(LeaderRecord::holder)
    }

    /// When the observed holder's lease runs out by this process's clock: the observation time
    /// plus the duration the record states (client-go uses the record's duration, not ours), or
    /// plus `own` when the holder is unknown or the record states no positive duration. A free
    /// lock (no record, or no holder) runs out at its observation.
    pub fn expires_at(&self, own: Duration) -> Instant {
        let Some(record) = &self.record else {
            return self.observed_at;
        };
        let lasts = match record.holding() {
            Holding::Free => Duration::ZERO,
            Holding::Unknown => own,
            Holding::Held(_) => match u64::try_from(record.lease_duration_seconds) {
                Ok(seconds) if seconds > 0 => Duration::from_secs(seconds),
                _ => own,
            },
        };
        // Saturating towards "never": an overflow must not make a lease expire early.
        later(self.observed_at, lasts)
    }

    /// The transition count a new holder writes: one above the highest seen, 0 if none was.
    pub fn next_token(&self) -> i32 {
        self.highest_token
            .map_or(0, |t| i32::try_from(t.saturating_add(1)).unwrap_or(i32::MAX))
    }
}

/// Whether a lock observed like this tells nothing of who held it a moment ago: it is missing,
/// or its record was stripped (no holder and no renew time: not a holder's own release).
pub fn has_no_past(record: Option<&LeaderRecord>) -> bool {
    match record {
        None => true,
        Some(record) => record.holding() == Holding::Free && record.renew_time.is_none(),
    }
}

/// When a takeover write sent at `sent`, made on the strength of `observed`, lets this process
/// lead: at once for a lock that was released or had expired (its resourceVersion proves that no
/// one wrote it since it was seen), and for a lock with no past ([`has_no_past`]) one of this
/// process's own lease durations after the send, and never before a vanished holder's lease
/// would have run out. `own` is this process's lease duration.
pub fn leads_from(observed: &Observed, sent: Instant, own: Duration) -> Instant {
    if !has_no_past(observed.record.as_ref()) {
        return sent;
    }
    later(sent, own).max(observed.vanished_until.unwrap_or(sent))
}

/// How a newly read object relates to what was known before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// A version not seen before: the record may have changed.
    Changed,
    /// The version already known: nothing is updated.
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
/// The observation time restarts only when the leader record changed (holder, times, duration,
/// transitions, incarnation, or the text of an unreadable record): re-reading the same version,
/// or a new version whose record is the same (an unrelated write to the object), must not extend
/// anyone's lease. When the record changed other than by its holder's own renewal or release, the
/// old holder's expiry is remembered in [`Observed::vanished_until`]. `own` is this process's
/// lease duration (see [`Observed::expires_at`]).
pub fn observe(
    known: Option<Observed>,
    record: Option<LeaderRecord>,
    resource_version: Option<String>,
    now: Instant,
    own: Duration,
) -> Observed {
    let Some(known) = known else {
        // A first look that finds no lock, or a stripped one, cannot tell whether someone held
        // it a moment ago (deleted just before this process started): assume someone did.
        let unknown_past = has_no_past(record.as_ref());
        let mut first = Observed::new(record, resource_version, now);
        if unknown_past {
            first.vanished_until = Some(later(now, own));
        }
        return first;
    };
    match freshness(Some(&known), resource_version.as_deref()) {
        Freshness::Unchanged | Freshness::Stale => known,
        Freshness::Changed if known.record == record => Observed {
            resource_version,
            ..known
        },
        Freshness::Changed => {
            let highest_token = known
                .highest_token
                .max(record.as_ref().and_then(LeaderRecord::seen_token));
            let vanished = match (&known.record, &record) {
                // Counted from now, not from when the old record was seen: its holder may have
                // renewed since, unseen by this process, but not after the change now seen.
                (Some(old), new) if old.holding() != Holding::Free && !succeeds(old, new.as_ref()) => {
                    let lasts = Observed {
                        observed_at: now,
                        ..known.clone()
                    };
                    Some(lasts.expires_at(own))
                }
                _ => None,
            };
            Observed {
                record,
                resource_version,
                observed_at: now,
                highest_token,
                vanished_until: known.vanished_until.max(vanished),
            }
        }
    }
}

/// Whether `new` is `old`'s holder renewing or releasing its own lock, which ends the old lease.
fn succeeds(old: &LeaderRecord, new: Option<&LeaderRecord>) -> bool {
    let Some(new) = new else { return false };
    if old.holding() == Holding::Unknown {
        return false;
    }
    let same_holder = new.holding() == old.holding() && new.incarnation == old.incarnation;
    same_holder || new.releases(old)
}

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing is known yet: read the lock.
    Read,
    /// The lock object does not exist: create it holding this record (leading only from
    /// [`leads_from`]).
    Create(LeaderRecord),
    /// Write this record over the observed version: a renewal when the lock is ours, a takeover
    /// when it was released, stripped (leading only from [`leads_from`]) or has expired.
    Claim(LeaderRecord),
    /// Someone holds an unexpired lease (or a vanished holder's would still run): nothing to do
    /// before this instant unless the lock changes.
    WaitUntil(Instant),
}

/// The heart of the election (client-go's `tryAcquireOrRenew`, minus the I/O).
pub fn decide(
    observed: Option<&Observed>,
    me: &Me,
    now: Instant,
    wall: Timestamp,
    timing: &Timing,
) -> Decision {
    let Some(observed) = observed else {
        return Decision::Read;
    };
    let take = |transitions: i32| LeaderRecord {
        holder_identity: me.identity.clone(),
        lease_duration_seconds: timing.lease_duration_seconds(),
        acquire_time: Some(wall),
        renew_time: Some(wall),
        leader_transitions: transitions,
        incarnation: Some(me.incarnation.clone()),
        fence: observed.highest_token.max(u64::try_from(transitions).ok()),
        address: me.address.clone(),
        unreadable: None,
        takeover: None,
    };
    let Some(old) = &observed.record else {
        // Taken at once, led a lease later (see `leads_from`).
        return Decision::Create(take(observed.next_token()));
    };
    if me.holds(old) {
        return Decision::Claim(LeaderRecord {
            acquire_time: old.acquire_time.or(Some(wall)),
            leader_transitions: old.leader_transitions,
            ..take(0)
        });
    }
    if has_no_past(Some(old)) {
        return Decision::Claim(take(observed.next_token()));
    }
    let vanished = observed.vanished_until.filter(|until| now < *until);
    let predecessor = old.holding() == Holding::Held(&me.identity) && me.conflicts_with(old).is_none();
    let expiry = (!predecessor)
        .then(|| observed.expires_at(timing.lease_duration))
        .filter(|expiry| now < *expiry);
    match expiry.max(vanished) {
        Some(until) => Decision::WaitUntil(until),
        // Released, expired by our own clock, or left by our predecessor in this pod: take over
        // above every token seen.
        None => Decision::Claim(take(observed.next_token())),
    }
}

/// This process's hold on the lock. It is renewed from the write that won it, and counts as
/// leadership from [`Claim::leads_from`] on (at once, except for a lock taken with no past).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The transition count with which the lock is held.
    pub fencing_token: u64,
    /// Wall-clock time at which the lock was won; once leading, at which leadership began.
    pub since: Timestamp,
    /// When holding the lock starts to count as leading (see [`leads_from`]).
    pub leads_from: Instant,
    /// Whether this process has begun to lead on this claim.
    pub leading: bool,
    /// Send time of the last successful write plus the renew deadline.
    pub valid_until: Instant,
    /// The same deadline on the boot-time clock, which keeps counting through a suspend.
    pub valid_until_boot: BootInstant,
    /// Send time of the last write attempt, successful or not; the next renew is due one retry
    /// period later.
    pub last_attempt: Instant,
}

impl Claim {
    /// The claim won by a write sent at `sent` and answered at `now`, leading from `leads_from`
    /// (not yet leading: see [`Claim::begins_leading`]); `None` when the answer came so late that
    /// the claim would already have lapsed (a paused process, a slow server): the lock then names
    /// this process, but it does not lead on that write.
    pub fn won(
        record: &LeaderRecord,
        since: Timestamp,
        sent: Reading,
        now: Reading,
        timing: &Timing,
        leads_from: Instant,
    ) -> Option<Self> {
        let claim = Self {
            fencing_token: record.fencing_token(),
            since,
            leads_from,
            leading: false,
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

    /// Whether the claim, still valid at `now`, is due to start leading: held long enough, and
    /// not leading yet.
    pub fn begins_leading(&self, now: Reading) -> bool {
        !self.leading && now.monotonic >= self.leads_from && self.is_valid_at(now)
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
pub(crate) mod tests {
    use super::*;
    use crate::clock::BootClock;
    use std::time::Duration;

    pub(crate) const ME: &str = "me";
    pub(crate) const MY_INCARNATION: &str = "pod-1/2000/aa";

    pub(crate) fn me() -> Me {
        Me {
            identity: ME.into(),
            incarnation: MY_INCARNATION.into(),
            address: None,
        }
    }

    fn other(identity: &str) -> Me {
        Me {
            identity: identity.into(),
            incarnation: format!("{identity}-pod/1000/bb"),
            address: None,
        }
    }

    const OWN: Duration = Duration::from_secs(3);

    fn wall() -> Timestamp {
        "2026-06-01T12:00:00.000001Z".parse().unwrap()
    }

    pub(crate) fn timing() -> Timing {
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
            incarnation: Some(if holder == ME {
                MY_INCARNATION.to_owned()
            } else {
                format!("{holder}-pod/1000/bb")
            }),
            fence: None,
            address: None,
            unreadable: None,
            takeover: None,
        }
    }

    fn seen(record: Option<LeaderRecord>, rv: &str, at: Instant) -> Observed {
        Observed::new(record, Some(rv.into()), at)
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_known_means_read() {
        assert_eq!(
            decide(None, &me(), Instant::now(), wall(), &timing()),
            Decision::Read
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_lock_is_created_with_zero_transitions() {
        let now = Instant::now();
        let observed = Observed::new(None, None, now);
        let Decision::Create(record) = decide(Some(&observed), &me(), now, wall(), &timing()) else {
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
        let Decision::Claim(record) = decide(Some(&observed), &me(), now, wall(), &timing()) else {
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
            decide(Some(&observed), &me(), start, wall(), &timing()),
            Decision::WaitUntil(expiry)
        );
        tokio::time::advance(Duration::from_millis(6_999)).await;
        assert_eq!(
            decide(Some(&observed), &me(), Instant::now(), wall(), &timing()),
            Decision::WaitUntil(expiry)
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        let Decision::Claim(record) = decide(Some(&observed), &me(), Instant::now(), wall(), &timing())
        else {
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
            decide(Some(&observed), &me(), now, wall(), &timing()),
            Decision::WaitUntil(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_lock_is_taken_at_once() {
        let now = Instant::now();
        let released = held_by(ME, 4, 3).released(wall());
        let observed = seen(Some(released), "11", now);
        let Decision::Claim(record) = decide(Some(&observed), &other("next"), now, wall(), &timing()) else {
            panic!("expected Claim of a released lock");
        };
        assert_eq!(record.holder(), Some("next"));
        assert_eq!(record.leader_transitions, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_record_without_a_usable_duration_is_waited_out_for_our_own_lease() {
        let now = Instant::now();
        for duration in [0, -5] {
            let observed = seen(Some(held_by("other", 1, duration)), "10", now);
            assert_eq!(
                decide(Some(&observed), &me(), now, wall(), &timing()),
                Decision::WaitUntil(now + OWN),
                "duration {duration}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn observation_time_restarts_only_on_a_new_version() {
        let t0 = Instant::now();
        let first = observe(None, Some(held_by("other", 0, 3)), Some("10".into()), t0, OWN);
        assert_eq!(first.observed_at, t0);
        tokio::time::advance(Duration::from_secs(1)).await;
        let t1 = Instant::now();
        let same = observe(
            Some(first.clone()),
            Some(held_by("other", 0, 3)),
            Some("10".into()),
            t1,
            OWN,
        );
        assert_eq!(
            same.observed_at, t0,
            "re-reading the same version must not extend the lease"
        );
        let newer = observe(
            Some(same),
            Some(held_by("other", 1, 3)),
            Some("11".into()),
            t1,
            OWN,
        );
        assert_eq!(newer.observed_at, t1);
        let stale = observe(
            Some(newer.clone()),
            Some(held_by("old", 0, 3)),
            Some("9".into()),
            t1,
            OWN,
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
        let mut claim =
            Claim::won(&held_by(ME, 4, 3), wall(), sent, sent, &timing(), sent.monotonic).unwrap();
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
        let claim = Claim::won(&held_by(ME, 4, 3), wall(), sent, sent, &timing(), sent.monotonic).unwrap();
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
            Claim::won(
                &held_by(ME, 4, 3),
                wall(),
                sent,
                resumed,
                &timing(),
                sent.monotonic
            ),
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
        assert!(Claim::won(&record, wall(), sent, boot.read(), &timing, sent.monotonic).is_some());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            Claim::won(&record, wall(), sent, boot.read(), &timing, sent.monotonic),
            None
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_old_leaders_claim_ends_before_a_follower_may_take_over() {
        // The invariant the whole design rests on, for the tightest case: the follower observes
        // the renewal at the very instant it was sent.
        let timing = timing();
        let sent = BootClock::manual().read();
        let claim = Claim::won(&held_by(ME, 1, 3), wall(), sent, sent, &timing, sent.monotonic).unwrap();
        let observed = seen(Some(held_by(ME, 1, 3)), "20", sent.monotonic);
        let Decision::WaitUntil(takeover) = decide(
            Some(&observed),
            &other("follower"),
            sent.monotonic,
            wall(),
            &timing,
        ) else {
            panic!("a follower must wait");
        };
        assert!(
            claim.valid_until < takeover,
            "{:?} must precede {:?}",
            claim.valid_until,
            takeover
        );
    }

    /// Follows `known` through a new version of the lock at the current paused time.
    fn then(known: &Observed, record: Option<LeaderRecord>, rv: &str) -> Observed {
        observe(Some(known.clone()), record, Some(rv.into()), Instant::now(), OWN)
    }

    fn unrelated_write_keeps_the_timer(record: LeaderRecord) {
        let t0 = Instant::now();
        let first = observe(None, Some(record.clone()), Some("10".into()), t0, OWN);
        let relabelled = observe(
            Some(first.clone()),
            Some(record),
            Some("11".into()),
            t0 + OWN / 2,
            OWN,
        );
        assert_eq!(
            relabelled.observed_at, t0,
            "the record did not change: the timer must not restart"
        );
        assert_eq!(
            relabelled.resource_version.as_deref(),
            Some("11"),
            "the next write needs the new version"
        );
        assert_eq!(
            decide(Some(&relabelled), &me(), t0 + OWN, wall(), &timing()),
            decide(Some(&first), &me(), t0 + OWN, wall(), &timing()),
        );
    }

    #[tokio::test(start_paused = true)]
    async fn unrelated_writes_to_the_lock_object_do_not_restart_the_expiry_timer() {
        unrelated_write_keeps_the_timer(held_by("other", 2, 3));
        unrelated_write_keeps_the_timer(LeaderRecord::from_annotation("{garbage"));
    }

    #[tokio::test(start_paused = true)]
    async fn every_field_of_the_record_restarts_the_timer_when_it_changes() {
        let base = held_by("other", 2, 3);
        let later: Timestamp = "2026-06-01T11:00:01Z".parse().unwrap();
        let changes = [
            LeaderRecord {
                holder_identity: "third".into(),
                ..base.clone()
            },
            LeaderRecord {
                renew_time: Some(later),
                ..base.clone()
            },
            LeaderRecord {
                lease_duration_seconds: 4,
                ..base.clone()
            },
            LeaderRecord {
                leader_transitions: 3,
                ..base.clone()
            },
            LeaderRecord {
                incarnation: Some("other-pod/1001/cc".into()),
                ..base.clone()
            },
        ];
        let t0 = Instant::now();
        let first = observe(None, Some(base), Some("10".into()), t0, OWN);
        tokio::time::advance(Duration::from_secs(1)).await;
        for changed in changes {
            let next = then(&first, Some(changed.clone()), "11");
            assert_eq!(
                next.observed_at,
                Instant::now(),
                "{changed:?} is a change of the record"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_deleted_lock_is_recreated_at_once_but_led_only_after_the_holder_seen_would_have_expired() {
        let t0 = Instant::now();
        // The holder seen states 5 s, more than our own 3 s.
        let held = observe(None, Some(held_by("other", 3, 5)), Some("10".into()), t0, OWN);
        tokio::time::advance(Duration::from_secs(1)).await;
        let deleted = then(&held, None, "11");
        let t1 = Instant::now();
        assert_eq!(
            deleted.vanished_until,
            Some(t1 + Duration::from_secs(5)),
            "as if the record still stood, counted from when the deletion was seen"
        );
        let Decision::Create(record) = decide(Some(&deleted), &me(), t1, wall(), &timing()) else {
            panic!("a missing lock is taken at once, so that no one else takes it");
        };
        assert_eq!(
            record.leader_transitions, 4,
            "the token never goes down: highest seen + 1"
        );
        assert_eq!(record.incarnation.as_deref(), Some(MY_INCARNATION));
        assert_eq!(
            leads_from(&deleted, t1, OWN),
            t1 + Duration::from_secs(5),
            "leading waits for the vanished holder's lease"
        );
        let short = observe(None, Some(held_by("other", 3, 1)), Some("10".into()), t0, OWN);
        assert_eq!(
            leads_from(&then(&short, None, "11"), t1, OWN),
            t1 + OWN,
            "and for our own lease, whatever the vanished holder stated"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lock_with_no_past_leads_a_lease_after_it_is_taken_and_any_other_at_once() {
        // A poller saw the lock missing at t0; by its next read someone had created it, led and
        // seen it deleted again, invisibly. Its create at t1 proves nothing about that holder.
        let t0 = Instant::now();
        let missing = observe(None, None, None, t0, OWN);
        tokio::time::advance(Duration::from_secs(10)).await;
        let t1 = Instant::now();
        let still_missing = observe(Some(missing), None, None, t1, OWN);
        assert!(matches!(
            decide(Some(&still_missing), &me(), t1, wall(), &timing()),
            Decision::Create(_)
        ));
        assert_eq!(leads_from(&still_missing, t1, OWN), t1 + OWN);
        let stripped = seen(Some(LeaderRecord::default()), "12", t1);
        assert_eq!(leads_from(&stripped, t1, OWN), t1 + OWN);
        let released = seen(Some(held_by("x", 2, 3).released(wall())), "12", t1);
        assert_eq!(
            leads_from(&released, t1, OWN),
            t1,
            "its resourceVersion proves no one took it since"
        );
        let expired = seen(Some(held_by("x", 2, 3)), "12", t0);
        assert_eq!(leads_from(&expired, t1, OWN), t1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_claim_begins_leading_only_from_its_time_and_while_valid() {
        let boot = BootClock::manual();
        let sent = boot.read();
        let from = sent.monotonic + OWN;
        let mut claim = Claim::won(&held_by(ME, 4, 3), wall(), sent, sent, &timing(), from).expect("valid");
        assert!(!claim.begins_leading(boot.read()), "held, not yet leading");
        tokio::time::advance(Duration::from_millis(1_500)).await;
        claim.renewed(boot.read(), &timing());
        tokio::time::advance(Duration::from_millis(1_500)).await;
        assert!(claim.begins_leading(boot.read()), "a lease after the take");
        claim.leading = true;
        assert!(!claim.begins_leading(boot.read()), "once");
        let lapsed = Claim::won(&held_by(ME, 4, 3), wall(), sent, sent, &timing(), from).expect("valid");
        assert!(
            !lapsed.begins_leading(boot.read()),
            "not renewed within the renew deadline: never leads"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stripped_record_or_a_foreign_rewrite_is_waited_out_as_if_the_holder_still_held() {
        let t0 = Instant::now();
        let held = observe(None, Some(held_by("other", 5, 3)), Some("10".into()), t0, OWN);
        tokio::time::advance(Duration::from_secs(1)).await;
        let lowered = then(
            &held,
            Some(LeaderRecord {
                holder_identity: String::new(),
                leader_transitions: 0,
                ..held_by("x", 0, 1)
            }),
            "11",
        );
        // A foreign holder with a short lease, written over the live one without its consent.
        let short = then(&held, Some(held_by("intruder", 0, 1)), "11");
        for observed in [&lowered, &short] {
            assert_eq!(
                decide(Some(observed), &me(), Instant::now(), wall(), &timing()),
                Decision::WaitUntil(t0 + Duration::from_secs(4)),
                "{:?}",
                observed.record
            );
        }
        tokio::time::advance(Duration::from_secs(3)).await;
        for observed in [&lowered, &short] {
            let Decision::Claim(record) = decide(Some(observed), &me(), Instant::now(), wall(), &timing())
            else {
                panic!("expected a takeover of {:?}", observed.record);
            };
            assert_eq!(
                record.leader_transitions, 6,
                "above every token seen, not the rewritten one"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_release_by_the_holder_itself_is_taken_at_once() {
        let t0 = Instant::now();
        let held = observe(None, Some(held_by("other", 5, 3)), Some("10".into()), t0, OWN);
        let released = then(&held, Some(held_by("other", 5, 3).released(wall())), "11");
        assert_eq!(released.vanished_until, None);
        let renewed = then(
            &held,
            Some(LeaderRecord {
                renew_time: Some(wall()),
                ..held_by("other", 5, 3)
            }),
            "11",
        );
        assert_eq!(renewed.vanished_until, None, "a renewal ends nothing");
        assert!(matches!(
            decide(Some(&released), &me(), t0, wall(), &timing()),
            Decision::Claim(ref r) if r.leader_transitions == 6
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn the_highest_token_is_remembered_across_deletions_and_recreations() {
        let t0 = Instant::now();
        let held = observe(None, Some(held_by("other", 9, 1)), Some("10".into()), t0, OWN);
        let deleted = then(&held, None, "11");
        // Recreated by a candidate that remembers nothing, with transitions 0.
        let recreated = then(&deleted, Some(held_by("amnesiac", 0, 1)), "12");
        tokio::time::advance(Duration::from_secs(5)).await;
        let Decision::Claim(record) = decide(Some(&recreated), &me(), Instant::now(), wall(), &timing())
        else {
            panic!("expected a takeover");
        };
        assert_eq!(record.leader_transitions, 10);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreadable_record_is_held_by_an_unknown_holder_for_our_own_lease_duration() {
        let t0 = Instant::now();
        let garbage = observe(
            None,
            Some(LeaderRecord::from_annotation("not a record")),
            Some("10".into()),
            t0,
            OWN,
        );
        assert_eq!(
            decide(Some(&garbage), &me(), t0, wall(), &timing()),
            Decision::WaitUntil(t0 + OWN)
        );
        tokio::time::advance(OWN).await;
        let Decision::Claim(record) = decide(Some(&garbage), &me(), Instant::now(), wall(), &timing()) else {
            panic!("expected the unreadable record to be taken over");
        };
        assert_eq!(record.leader_transitions, 0);
        // Other garbage is a change: the unknown holder may be alive and writing.
        tokio::time::advance(Duration::from_secs(1)).await;
        let more = then(
            &garbage,
            Some(LeaderRecord::from_annotation("other garbage")),
            "11",
        );
        assert!(matches!(
            decide(Some(&more), &me(), Instant::now(), wall(), &timing()),
            Decision::WaitUntil(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn our_identity_with_another_incarnation_is_another_holder() {
        let now = Instant::now();
        let twin = LeaderRecord {
            incarnation: Some("pod-2/1000/cc".into()),
            ..held_by(ME, 4, 3)
        };
        assert_eq!(me().conflicts_with(&twin).as_deref(), Some("pod-2/1000/cc"));
        let observed = seen(Some(twin), "10", now);
        assert_eq!(
            decide(Some(&observed), &me(), now, wall(), &timing()),
            Decision::WaitUntil(now + Duration::from_secs(3)),
            "not renewed as ours"
        );
        tokio::time::advance(Duration::from_secs(3)).await;
        let Decision::Claim(record) = decide(Some(&observed), &me(), Instant::now(), wall(), &timing())
        else {
            panic!("expected a takeover");
        };
        assert_eq!(record.leader_transitions, 5, "a higher token than the twin's");
        // client-go or an older version naming our identity, without an incarnation: also foreign.
        let bare = LeaderRecord {
            incarnation: None,
            ..held_by(ME, 4, 3)
        };
        assert_eq!(me().conflicts_with(&bare).as_deref(), Some("(none)"));
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_container_of_this_pod_is_taken_over_at_once() {
        let now = Instant::now();
        let predecessor = LeaderRecord {
            incarnation: Some("pod-1/1000/99".into()),
            ..held_by(ME, 4, 3)
        };
        assert_eq!(me().conflicts_with(&predecessor), None);
        let observed = seen(Some(predecessor), "10", now);
        let Decision::Claim(record) = decide(Some(&observed), &me(), now, wall(), &timing()) else {
            panic!("the predecessor has exited: no need to wait");
        };
        assert_eq!(
            record.leader_transitions, 5,
            "still a new leadership, with a new token"
        );
        let sibling = LeaderRecord {
            incarnation: Some("pod-1/3000/99".into()),
            ..held_by(ME, 4, 3)
        };
        assert!(
            matches!(
                decide(
                    Some(&seen(Some(sibling), "10", now)),
                    &me(),
                    now,
                    wall(),
                    &timing()
                ),
                Decision::WaitUntil(_)
            ),
            "a later start in the same pod is a live sibling, not a predecessor"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lock_missing_or_stripped_is_taken_at_once_and_led_a_lease_later() {
        let t0 = Instant::now();
        let held = observe(None, Some(held_by("other", 5, 3)), Some("10".into()), t0, OWN);
        tokio::time::advance(Duration::from_secs(1)).await;
        let t1 = Instant::now();
        let stripped_later = then(&held, Some(LeaderRecord::default()), "11");
        for (observed, what) in [
            (observe(None, None, None, t0, OWN), "missing at the first look"),
            (
                observe(None, Some(LeaderRecord::default()), None, t0, OWN),
                "stripped at the first look",
            ),
            (stripped_later, "stripped under a holder"),
        ] {
            let (Decision::Create(record) | Decision::Claim(record)) =
                decide(Some(&observed), &me(), t1, wall(), &timing())
            else {
                panic!("{what}: expected a take at once");
            };
            assert_eq!(record.holder(), Some(ME), "{what}");
            assert_eq!(leads_from(&observed, t1, OWN), t1 + OWN, "{what}");
        }
        let released = observe(
            None,
            Some(held_by("x", 2, 3).released(wall())),
            Some("1".into()),
            t0,
            OWN,
        );
        assert!(
            matches!(
                decide(Some(&released), &me(), t0, wall(), &timing()),
                Decision::Claim(_)
            ),
            "a release says its holder let go"
        );
    }
}
