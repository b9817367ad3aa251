//! The election's state, advanced synchronously: what this process knows of the lock and of its
//! own claim, and what each observation, write outcome, failure, timer or piece of watch news
//! does to it.
//!
//! [`Election`] is the part of the loop that decides; the async shell ([`super::driver`]) does
//! the I/O, keeps the timers and channels, and carries out the [`Effect`]s each step leaves
//! behind (publish, log, count, record an Event), in order, with [`Election::take_effects`].
//! Every method takes the moment it happens at (`now`, a [`Reading`] of both clocks, the wall
//! clock) and randomness (`jitter`) as arguments, so unit tests drive it on tokio's paused clock
//! through every branch with no server, no task and no sleeping.
//!
//! The rules it keeps (the decisions themselves are [`decide`]'s):
//!
//! - A leader steps down the moment it learns the lock was deleted or holds any record other
//!   than the one it last wrote; writes that leave the record alone change nothing.
//! - A write answered after the claim's deadline wins nothing: the lock may name this process,
//!   but it does not lead on that write.
//! - A takeover of a lock with no past leads only from [`leads_from`]; the bound is kept across
//!   attempts ([`Election::note_takeover`]), so a takeover whose answer was lost and that is found
//!   as ours on a later read still waits.
//! - A record naming this identity with another incarnation, renewed under our eyes, is another
//!   live process with our identity: reported once per other incarnation.
//! - Conflicts (409) never reset the backoff; only an attempt that went through cleanly does.

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;

use super::decide::{
    Claim, Decision, Freshness, Me, Observed, decide, freshness, has_no_past, leads_from, observe,
};
use super::events::Leadership;
use super::pacing::{self, Backoff};
use super::record::{Holding, LeaderRecord};
use super::takeover::{Crowd, Draws, TakeoverNote, whole_micros};
use super::{FollowMode, Timing};
use crate::clock::{Reading, later};

/// How long a withdrawn follower with its watch up sleeps between wake-ups it has no use for
/// (the loop wakes on any news anyway).
const NOT_STANDING_WAKE: Duration = Duration::from_secs(3600);

/// Why this process stopped claiming the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepDown {
    /// The claim's deadline passed with no successful renewal.
    DeadlinePassed,
    /// A renewal was answered, but only after the claim's deadline.
    AnsweredAfterDeadline,
    /// A read showed another holder with an unexpired lease.
    AnotherHolder,
    /// The lock object is gone (a 404, a DELETED event).
    LockDeleted,
    /// The lock's record was emptied.
    RecordRemoved,
    /// The lock names another holder.
    OtherHolderNamed,
    /// The lock holds a record naming us that this process did not write.
    ForeignRecord,
    /// The process is shutting down.
    ShuttingDown,
    /// This process may no longer stand for election (see [`super::candidacy`]).
    Withdrawn,
}

impl StepDown {
    /// The reason as it appears in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            StepDown::DeadlinePassed => "renew deadline passed without a successful renewal",
            StepDown::AnsweredAfterDeadline => "renew deadline passed before the renewal was answered",
            StepDown::AnotherHolder => "another holder has the lock",
            StepDown::LockDeleted => "the lock was deleted",
            StepDown::RecordRemoved => "the lock's record was removed",
            StepDown::OtherHolderNamed => "the lock now names another holder",
            StepDown::ForeignRecord => "the lock holds a record this process did not write",
            StepDown::ShuttingDown => "shutting down",
            StepDown::Withdrawn => "this process may no longer stand for election",
        }
    }
}

impl fmt::Display for StepDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the shell must do after a step, in order. `O` is the lock object (for Events).
#[derive(Clone, Debug, PartialEq)]
pub enum Effect<O> {
    /// The claim ended: publish at once without it (readers must not see it a moment longer
    /// than the log says it lasted); if it was leading, count and log the loss.
    SteppedDown {
        /// Why the claim ended.
        reason: StepDown,
        /// Whether the claim had begun to lead (else the lock was given up before leading).
        leading: bool,
        /// The transition count the ended claim held the lock with.
        fencing_token: u64,
        /// The claim's deadline as it stood when it ended (monotonic).
        valid_until: Instant,
        /// When the claim ended (monotonic).
        at: Instant,
    },
    /// This process began to lead: count and log it.
    BecameLeader {
        /// The transition count this leadership holds the lock with.
        fencing_token: u64,
        /// The claim's deadline unless renewed (monotonic).
        valid_until: Instant,
        /// When leading began (monotonic).
        at: Instant,
    },
    /// A lock with no past was taken; it is held this long before it leads.
    HoldingBeforeLeading {
        /// The transition count written with the take.
        fencing_token: u64,
        /// How long from the answer until holding the lock counts as leading.
        leads_in: Duration,
    },
    /// A write went through, but was answered after the renew deadline: no claim.
    AnsweredLate {
        /// The time from sending the write to its answer.
        after: Duration,
    },
    /// The holder named by the lock changed.
    LeaderChanged {
        /// The holder named before, or `None` when the lock was free or missing.
        previous: Option<String>,
        /// The holder named now, or `None` when the lock is free or missing.
        leader: Option<String>,
    },
    /// Another live process holds the lock under this identity (reported once per incarnation).
    IdentityConflict {
        /// The other process's incarnation, or `(none)` when its record names none.
        other: String,
    },
    /// Record a Kubernetes Event about `object`.
    Event {
        /// The leadership change the Event reports.
        what: Leadership,
        /// The lock object the Event is about.
        object: O,
    },
    /// A renewal went through after `elapsed`.
    Renewed {
        /// The time from sending the renewal to its answer.
        elapsed: Duration,
    },
    /// A leader's write failed after `elapsed`.
    RenewFailed {
        /// The time from sending the write to its failure.
        elapsed: Duration,
    },
    /// A leader's write from its cached record lost a race and must read again.
    SlowPath,
    /// A step failed; the next attempt comes in `retry_in` (for a follower).
    Failed {
        /// The failure, as it appears in the log and the status.
        error: String,
        /// Whether this process held the lock (leading or waiting to lead) when the step failed.
        leader: bool,
        /// Consecutive failed attempts, this one included.
        failures: u32,
        /// The backoff before the next attempt.
        retry_in: Duration,
    },
    /// Every write of an attempt lost a race; backing off as after a failure.
    GaveUpAfterConflicts {
        /// Consecutive failed attempts, this one included.
        failures: u32,
        /// The backoff before the next attempt.
        retry_in: Duration,
    },
    /// The watch is back after a loss.
    WatchBack,
    /// The watch was lost; the loop polls until it is back.
    WatchLost {
        /// Why the watch ended, as it appears in the log.
        reason: String,
    },
}

/// What a withdrawal from candidacy leaves the shell to do ([`Election::set_standing`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Withdrawal {
    /// Nothing: no lock was held (or the process still stands).
    Nothing,
    /// The process led: release the lock once the outputs are follower, as at shutdown.
    Release,
    /// The lock was taken with no past and not led on yet: it is not released (others take a
    /// released lock at once, and the hazard its wait covers may still be there); others take
    /// it over when its lease runs out.
    KeepUntilExpiry,
}

/// The lock as it stood before a new record: who held it, and when it opened to takeover as
/// this process saw it.
#[derive(Clone, Debug)]
struct Opening {
    holder: Option<String>,
    no_past: bool,
    at: Instant,
}

/// What the shell does next in an attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum Step<O> {
    /// Read the lock and feed the result to [`Election::absorb`].
    Read,
    /// Create the lock with this record.
    Create(LeaderRecord),
    /// Write this record into this object (its resourceVersion guards the write).
    Update(O, LeaderRecord),
    /// The attempt is over.
    Done,
}

/// The election as this process sees it; `O` is the lock object, kept whole so a write changes
/// nothing but the record.
#[derive(Debug)]
pub struct Election<O> {
    me: Me,
    timing: Timing,
    follow: FollowMode,
    /// What is known of the lock, and since when.
    known: Option<Observed>,
    /// The object behind `known`.
    object: Option<O>,
    /// This process's hold on the lock, while it holds it (leading, or waiting to lead on a
    /// lock taken with no past).
    claim: Option<Claim>,
    /// No claim won before this instant leads: raised by every takeover of a lock with no past.
    not_before: Instant,
    /// The record of this process's last successful write: while leading, any other record
    /// seen on the lock was written by someone else.
    written: Option<LeaderRecord>,
    /// The incarnation of another live process holding the lock under this identity.
    conflict: Option<String>,
    watch_up: bool,
    /// The watch has failed at least once (so its return is worth a log line).
    watch_lost: bool,
    poll_due: Instant,
    backoff: Backoff,
    /// A follower attempt's calls all end by this (one renew deadline after it began).
    attempt_deadline: Instant,
    /// The current attempt lost a write race: it must not reset the backoff.
    conflicted: bool,
    last_error: Option<String>,
    last_renew: Option<Timestamp>,
    /// Whether this process may stand for election (see [`super::candidacy`]).
    standing: bool,
    /// How many candidates this process believes race for the lock when it opens.
    crowd: Crowd,
    /// Where the takeover delays come from.
    draws: Draws,
    /// How long after the lock as now known opens this follower waits before writing (see
    /// [`super::takeover`]); drawn anew for every record observed.
    takeover_delay: Duration,
    /// A takeover write lost a race since the record was last observed.
    raced: bool,
    /// A takeover write was sent since the record was last observed (its 409 may still come).
    takeover_sent: bool,
    /// The delay waited before the last takeover write sent.
    sent_delay: Duration,
    /// What this process writes into the lock with its record while it holds it: the note of
    /// the takeover that won the lock (see [`super::takeover::TakeoverNote`]).
    note: Option<TakeoverNote>,
    /// The resourceVersion of this process's last write and when it was sent, until the watch
    /// brings the write back.
    echo: Option<(Option<String>, Instant)>,
    effects: Vec<Effect<O>>,
}

impl<O: Clone> Election<O> {
    /// Nothing known yet, at `now`.
    pub fn new(me: Me, timing: Timing, follow: FollowMode, now: Instant) -> Self {
        let draws = Draws::seeded_from(&me.incarnation);
        Self {
            me,
            timing,
            follow,
            known: None,
            object: None,
            claim: None,
            not_before: now,
            written: None,
            conflict: None,
            watch_up: false,
            watch_lost: false,
            poll_due: now,
            backoff: Backoff::new(),
            attempt_deadline: now,
            conflicted: false,
            last_error: None,
            last_renew: None,
            standing: true,
            crowd: Crowd::new(&timing),
            draws,
            takeover_delay: Duration::ZERO,
            raced: false,
            takeover_sent: false,
            sent_delay: Duration::ZERO,
            note: None,
            echo: None,
            effects: Vec::new(),
        }
    }

    /// The effects of the steps taken since the last call, in order.
    pub fn take_effects(&mut self) -> Vec<Effect<O>> {
        std::mem::take(&mut self.effects)
    }

    /// Who this process is in the election: its identity and incarnation.
    pub fn me(&self) -> &Me {
        &self.me
    }

    /// This process's hold on the lock, leading or not.
    #[cfg(test)]
    pub fn claim(&self) -> Option<&Claim> {
        self.claim.as_ref()
    }

    /// The claim, once it leads.
    pub fn leading_claim(&self) -> Option<&Claim> {
        self.claim.as_ref().filter(|c| c.leading)
    }

    /// What is known of the lock.
    pub fn known(&self) -> Option<&Observed> {
        self.known.as_ref()
    }

    /// The holder named by the lock as last seen.
    pub fn leader(&self) -> Option<&str> {
        self.known.as_ref().and_then(Observed::holder)
    }

    /// The address the holder named by the lock advertises, as last seen.
    pub fn leader_address(&self) -> Option<&str> {
        let record = self.known.as_ref()?.record.as_ref()?;
        record.holder()?;
        record.address.as_deref()
    }

    /// The message of the last failed step, until an attempt goes through.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Wall-clock time at which this process's last successful write was answered.
    pub fn last_renew(&self) -> Option<Timestamp> {
        self.last_renew
    }

    /// The incarnation of another live process holding the lock under this identity.
    pub fn conflict(&self) -> Option<&str> {
        self.conflict.as_deref()
    }

    /// Whether this process stands for election (see [`Self::set_standing`]).
    pub fn standing(&self) -> bool {
        self.standing
    }

    /// This process may stand (`true`) or may not (`false`) from `now` on. Withdrawn, it makes
    /// no acquire or takeover attempt and steps down at once if it holds the lock; it keeps
    /// following the lock. Standing again, it competes like a fresh follower. A withdrawal never
    /// touches another holder's record: what it leaves to release is this process's own lead.
    pub fn set_standing(&mut self, may_stand: bool, now: Instant) -> Withdrawal {
        if may_stand || !self.standing {
            self.standing = may_stand;
            return Withdrawal::Nothing;
        }
        self.standing = false;
        let held = self.claim.is_some();
        let waiting = self.waiting_to_lead(now);
        self.step_down(StepDown::Withdrawn, now);
        match (held, waiting) {
            (true, false) => Withdrawal::Release,
            (true, true) => Withdrawal::KeepUntilExpiry,
            (false, _) => Withdrawal::Nothing,
        }
    }

    /// When the claim lapses unless renewed.
    pub fn lapse(&self) -> Option<Instant> {
        self.claim.as_ref().map(|c| c.valid_until)
    }

    /// When a claim that does not lead yet is due to lead.
    pub fn pending(&self) -> Option<Instant> {
        self.claim.as_ref().filter(|c| !c.leading).map(|c| c.leads_from)
    }

    /// When the next attempt is due: a claim's renewal; for a follower the expiry it waits for
    /// (watching), its next poll (polling), or the earlier of both (watch down); never before
    /// the backoff allows.
    pub fn next_attempt(&self, now: Instant, wall: Timestamp) -> Instant {
        let due = if let Some(claim) = &self.claim {
            claim.renew_due(&self.timing)
        } else if !self.standing {
            // Not standing: nothing to take; only a poll (polling, or the watch down) is due.
            match self.follow {
                FollowMode::Watch if self.watch_up => later(now, NOT_STANDING_WAKE),
                FollowMode::Poll | FollowMode::Watch => self.poll_due,
            }
        } else {
            let by_decision = match decide(self.known.as_ref(), &self.me, now, wall, &self.timing) {
                Decision::WaitUntil(expiry) => expiry,
                Decision::Read | Decision::Create(_) | Decision::Claim(_) => now,
            };
            match self.follow {
                FollowMode::Poll => self.poll_due,
                // Watching, every follower learns of an opening at once: each waits its drawn
                // delay, and the watch showing a winner meanwhile cancels the attempt.
                FollowMode::Watch if self.watch_up => self.takeover_due(now, wall).unwrap_or(by_decision),
                FollowMode::Watch => by_decision.min(self.poll_due),
            }
        };
        self.backoff.next_attempt(due, self.lapse(), &self.timing)
    }

    /// When a watching follower writes to take the lock as now known: its drawn delay after the
    /// lock opens (released, expired, or found with no past); `None` when there is nothing to
    /// take yet or it must read first. A record under this process's own identity (a
    /// predecessor in this pod) is taken without delay: no one else races for it.
    fn takeover_due(&self, now: Instant, wall: Timestamp) -> Option<Instant> {
        let known = self.known.as_ref()?;
        let opens = match decide(Some(known), &self.me, now, wall, &self.timing) {
            Decision::Read => return None,
            Decision::WaitUntil(opens) => opens,
            Decision::Create(_) | Decision::Claim(_) => self.opened_at(known),
        };
        if known.holder() == Some(self.me.identity.as_str()) {
            return Some(opens);
        }
        Some(later(opens, self.takeover_delay))
    }

    /// When the lock as `known` opened to takeover, once [`decide`] says to take it: when it
    /// was seen if it has no past or was left by a predecessor in this pod, else when the
    /// holder's lease ran out.
    fn opened_at(&self, known: &Observed) -> Instant {
        if has_no_past(known.record.as_ref()) || known.holder() == Some(self.me.identity.as_str()) {
            return known.observed_at;
        }
        known
            .expires_at(self.timing.lease_duration)
            .max(known.vanished_until.unwrap_or(known.observed_at))
    }

    /// This follower's estimate of the group racing for the lock (see [`super::takeover`]).
    #[cfg(test)]
    pub fn crowd(&self) -> Crowd {
        self.crowd
    }

    /// The delay drawn for taking the lock as now known.
    #[cfg(test)]
    pub fn takeover_delay(&self) -> Duration {
        self.takeover_delay
    }

    /// Whether an attempt must read the lock before deciding.
    pub fn must_read(&self) -> bool {
        if self.known.is_none() {
            return true;
        }
        self.claim.is_none() && (self.follow == FollowMode::Poll || !self.watch_up)
    }

    /// The time one API call started at `now` may take (see [`pacing::call_timeout`]).
    pub fn call_timeout(&self, now: Instant) -> Duration {
        pacing::call_timeout(now, self.lapse(), self.attempt_deadline, &self.timing)
    }

    /// An attempt starts at `now`; `jitter` in `[0, 1)` spreads a follower's next poll.
    pub fn begin_attempt(&mut self, now: Instant, jitter: f64) {
        self.attempt_deadline = later(now, self.timing.attempt_budget());
        self.conflicted = false;
        match &mut self.claim {
            // The leader renews every retry period, counted from the start of each attempt.
            Some(claim) => claim.last_attempt = now,
            None => self.poll_due = later(now, self.timing.jittered_retry(jitter)),
        }
    }

    /// The next step of the attempt at `now`: a lapsed claim steps down, another holder's
    /// unexpired lease ends the attempt (stepping down if we held the lock).
    pub fn next_step(&mut self, now: Reading, wall: Timestamp) -> Step<O> {
        if let Some(claim) = &self.claim
            && !claim.is_valid_at(now)
        {
            self.step_down(StepDown::DeadlinePassed, now.monotonic);
            return Step::Done;
        }
        if !self.standing && self.claim.is_none() {
            // Withdrawn: follow the lock, never write it.
            return match decide(self.known.as_ref(), &self.me, now.monotonic, wall, &self.timing) {
                Decision::Read => Step::Read,
                Decision::WaitUntil(_) | Decision::Create(_) | Decision::Claim(_) => {
                    self.succeeded();
                    Step::Done
                }
            };
        }
        match decide(self.known.as_ref(), &self.me, now.monotonic, wall, &self.timing) {
            Decision::Read => Step::Read,
            Decision::WaitUntil(_) => {
                self.step_down(StepDown::AnotherHolder, now.monotonic);
                self.succeeded();
                Step::Done
            }
            Decision::Create(record) => Step::Create(self.noted(record)),
            Decision::Claim(record) => match self.object.clone() {
                Some(object) => Step::Update(object, self.noted(record)),
                None => Step::Read,
            },
        }
    }

    /// `record` with the takeover note it carries: a renewal carries the note its takeover
    /// wrote; a takeover writes the delay it waited (none unless watching) and this process's
    /// model of the group; a lock taken back from a predecessor in this pod keeps its note.
    fn noted(&mut self, mut record: LeaderRecord) -> LeaderRecord {
        if self.claim.is_none() {
            let known = self.known.as_ref().and_then(|k| k.record.as_ref());
            let predecessor = known.filter(|r| r.holder() == Some(self.me.identity.as_str()));
            self.takeover_sent = true;
            self.sent_delay = match self.follow {
                FollowMode::Watch if self.watch_up && predecessor.is_none() => self.takeover_delay,
                FollowMode::Watch | FollowMode::Poll => Duration::ZERO,
            };
            let no_past = has_no_past(known);
            self.note = match predecessor.and_then(|r| r.takeover) {
                Some(note) => Some(note),
                None => Some(self.crowd.won(self.sent_delay, no_past)),
            };
        }
        if let Some(note) = &mut self.note
            && self.claim.is_some()
        {
            // A renewal carries the unit its own writes' round trips ask for.
            if let Some(unit) = self.crowd.measured_unit() {
                note.unit = whole_micros(unit);
            }
        }
        record.takeover = self.note;
        record
    }

    /// A write sent at `sent` may take the lock: when it is a takeover of a lock with no past,
    /// no claim leads before [`leads_from`].
    pub fn note_takeover(&mut self, sent: Instant) {
        if self.claim.is_none()
            && let Some(known) = &self.known
        {
            let from = leads_from(known, sent, self.timing.lease_duration);
            self.not_before = self.not_before.max(from);
        }
    }

    /// A write (create or update) sent at `sent` succeeded, answered at `now` with `object`
    /// holding `record`: the lock is ours, and leads if the answer came in time.
    pub fn wrote(
        &mut self,
        object: O,
        record: LeaderRecord,
        version: Option<String>,
        sent: Reading,
        now: Reading,
        wall: Timestamp,
    ) {
        let timing = self.timing;
        let at = now.monotonic;
        self.last_renew = Some(wall);
        self.written = Some(record.clone());
        match &mut self.claim {
            Some(claim) if claim.is_valid_at(now) => {
                claim.renewed(sent, &timing);
                self.effects.push(Effect::Renewed {
                    elapsed: at.saturating_duration_since(sent.monotonic),
                });
            }
            _ => {
                self.step_down(StepDown::AnsweredAfterDeadline, at);
                let Some(claim) = Claim::won(&record, wall, sent, now, &timing, self.not_before) else {
                    self.effects.push(Effect::AnsweredLate {
                        after: at.saturating_duration_since(sent.monotonic),
                    });
                    self.absorb(Some(object), Some(record), version, at);
                    return self.succeeded();
                };
                if claim.leads_from > at {
                    self.effects.push(Effect::HoldingBeforeLeading {
                        fencing_token: claim.fencing_token,
                        leads_in: claim.leads_from - at,
                    });
                }
                self.claim = Some(claim);
                // Won: a run of lost races ends.
                self.crowd.tally(false);
            }
        }
        self.absorb(Some(object), Some(record), version.clone(), at);
        // The watch brings this write back: the time until then is a round trip to the group.
        self.echo = Some((version, sent.monotonic));
        self.begin_leading(now, wall);
        self.succeeded();
    }

    /// A write sent at `sent` lost a race (409) at `now`; the shell reads again.
    pub fn write_conflicted(&mut self, sent: Instant, now: Instant) {
        self.conflicted = true;
        if self.claim.is_none() && !self.raced {
            // Others wrote at the same moment: the group is larger than this follower thought.
            self.raced = true;
            self.crowd.tally(self.sent_delay.is_zero());
            self.crowd.lost_race(self.sent_delay);
        }
        if self.claim.is_some() {
            self.effects.push(Effect::SlowPath);
            self.effects.push(Effect::RenewFailed {
                elapsed: now.saturating_duration_since(sent),
            });
        }
    }

    /// Starts leading on the claim held, once it is due (see [`Claim::begins_leading`]).
    pub fn begin_leading(&mut self, now: Reading, wall: Timestamp) {
        let Some(claim) = self.claim.as_mut().filter(|c| c.begins_leading(now)) else {
            return;
        };
        claim.leading = true;
        claim.since = wall;
        self.effects.push(Effect::BecameLeader {
            fencing_token: claim.fencing_token,
            valid_until: claim.valid_until,
            at: now.monotonic,
        });
        self.event(Leadership::Became);
    }

    /// The attempt went through. A conflict earlier in it keeps the backoff where it was.
    fn succeeded(&mut self) {
        self.backoff.went_through(self.conflicted);
        self.last_error = None;
    }

    /// A step failed at `now`; `sent` is when the failed write was sent, if it was one;
    /// `retry_after` is the server's, if it asked; `jitter` in `[0, 1)`.
    pub fn failed(
        &mut self,
        error: String,
        retry_after: Option<Duration>,
        sent: Option<Instant>,
        now: Instant,
        jitter: f64,
    ) {
        if let (Some(sent), Some(_)) = (sent, &self.claim) {
            self.effects.push(Effect::RenewFailed {
                elapsed: now.saturating_duration_since(sent),
            });
        }
        let retry_in = self.backoff.failed(now, &self.timing, retry_after, jitter);
        self.effects.push(Effect::Failed {
            error: error.clone(),
            leader: self.claim.is_some(),
            failures: self.backoff.failures(),
            retry_in,
        });
        self.last_error = Some(error);
    }

    /// Every write of an attempt lost a race (409): back off as after a failure.
    pub fn gave_up_after_conflicts(&mut self, now: Instant, jitter: f64) {
        let retry_in = self.backoff.failed(now, &self.timing, None, jitter);
        self.effects.push(Effect::GaveUpAfterConflicts {
            failures: self.backoff.failures(),
            retry_in,
        });
    }

    /// Whether this process holds the lock, or may have just taken it, without leading on it
    /// yet: a lock taken with no past, within its waiting lease (see [`super::decide::leads_from`]).
    /// Such a lock is not released on shutdown, since others take a released lock at once.
    pub fn waiting_to_lead(&self, now: Instant) -> bool {
        self.claim.as_ref().is_some_and(|c| !c.leading) || now < self.not_before
    }

    /// Stops claiming leadership (or, before leading, stops holding the lock).
    pub fn step_down(&mut self, reason: StepDown, now: Instant) {
        let Some(claim) = self.claim.take() else { return };
        self.effects.push(Effect::SteppedDown {
            reason,
            leading: claim.leading,
            fencing_token: claim.fencing_token,
            valid_until: claim.valid_until,
            at: now,
        });
        if claim.leading {
            self.event(Leadership::Stopped);
        }
    }

    /// The watch is (back) up.
    pub fn watch_connected(&mut self) {
        if !self.watch_up && self.watch_lost {
            self.effects.push(Effect::WatchBack);
        }
        self.watch_up = true;
    }

    /// The watch failed; reported once until it is back.
    pub fn watch_lost(&mut self, reason: String) {
        if self.watch_up || !self.watch_lost {
            self.effects.push(Effect::WatchLost { reason });
        }
        self.watch_up = false;
        self.watch_lost = true;
    }

    /// The watch is gone for good: poll from now on.
    pub fn watch_ended(&mut self) {
        self.watch_up = false;
    }

    /// The watch saw the lock deleted at `version`, its last state showing `last_token`.
    pub fn absorb_deleted(&mut self, version: Option<String>, last_token: Option<u64>, now: Instant) {
        // The last state of the object may be newer than what this process saw.
        if let Some(known) = &mut self.known
            && freshness(Some(known), version.as_deref()) == Freshness::Changed
        {
            known.highest_token = known.highest_token.max(last_token);
        }
        self.absorb(None, None, version, now);
    }

    /// Folds a version of the lock seen at `now` (or its absence) into what is known, keeping
    /// the object for the next write, noting holder changes, and stepping down if someone else
    /// now holds it. Stale versions and repeats are ignored.
    pub fn absorb(
        &mut self,
        object: Option<O>,
        record: Option<LeaderRecord>,
        version: Option<String>,
        now: Instant,
    ) {
        if let Some((written, sent)) = &self.echo
            && version.is_some()
            && *written == version
        {
            self.crowd.measured(now.saturating_duration_since(*sent));
            self.echo = None;
        }
        let freshness = freshness(self.known.as_ref(), version.as_deref());
        if freshness == Freshness::Stale {
            return;
        }
        if freshness == Freshness::Unchanged && self.known.as_ref().is_some_and(|k| k.record == record) {
            return;
        }
        let previous = self.known.as_ref().map(|k| k.holder().map(str::to_owned));
        let previous_record = self.known.as_ref().and_then(|k| k.record.clone());
        let previous_observation = self.known.as_ref().map(|k| k.observed_at);
        let opening = self.known.as_ref().map(|k| Opening {
            holder: k.holder().map(str::to_owned),
            no_past: has_no_past(k.record.as_ref()),
            at: self.opened_at(k),
        });
        self.known = Some(observe(
            self.known.take(),
            record,
            version,
            now,
            self.timing.lease_duration,
        ));
        if self.known.as_ref().map(|k| k.observed_at) != previous_observation {
            self.new_record_seen(opening, now);
        }
        if freshness == Freshness::Changed || self.object.is_none() {
            self.object = object;
        }
        let current = self.known.as_ref().and_then(|k| k.record.clone());
        self.check_identity(previous_record.as_ref(), current.as_ref());
        let holder = self.leader().map(str::to_owned);
        if let Some(previous) = previous
            && previous != holder
        {
            self.effects.push(Effect::LeaderChanged {
                previous,
                leader: holder,
            });
        }
        if self.claim.is_some() && current != self.written {
            let reason = match &current {
                None => StepDown::LockDeleted,
                Some(record) if record.holding() == Holding::Free => StepDown::RecordRemoved,
                Some(record) if record.holder() != Some(self.me.identity.as_str()) => {
                    StepDown::OtherHolderNamed
                }
                Some(_) => StepDown::ForeignRecord,
            };
            self.step_down(reason, now);
        }
    }

    /// The lock's record changed at `now`, `before` being what it showed until then: a new
    /// holder's takeover note teaches this follower the group's model (see [`Crowd::learn`]),
    /// and the delay for the record now known is drawn afresh.
    fn new_record_seen(&mut self, before: Option<Opening>, now: Instant) {
        let current = self.known.as_ref().and_then(|k| k.record.as_ref());
        let holder = current.and_then(LeaderRecord::holder);
        if let (Some(note), Some(holder)) = (current.and_then(|r| r.takeover), holder)
            && holder != self.me.identity
        {
            match before {
                // A first look, or a lock taken with no past (each saw that at its own time).
                None => self.crowd.adopt(&note),
                Some(before) if before.no_past && before.holder.as_deref() != Some(holder) => {
                    self.crowd.adopt(&note);
                }
                Some(before) if before.holder.as_deref() != Some(holder) => {
                    let round_trip = now
                        .checked_duration_since(before.at)
                        .and_then(|seen| seen.checked_sub(note.delay));
                    self.crowd.learn(&note, round_trip);
                    if self.raced {
                        // This follower's write lost to it: the group is larger, or the unit
                        // too short, than even the winner's note says.
                        self.crowd.lost_race(self.sent_delay);
                    } else if !self.takeover_sent {
                        // Watched without writing: a run of losses at once ends. (A write
                        // sent for this opening lost, and its 409 is still to come.)
                        self.crowd.tally(false);
                    }
                }
                // A renewal: the holder's unit, measured on its own writes.
                Some(_) => self.crowd.follow(&note),
            }
        }
        self.raced = false;
        self.takeover_sent = false;
        self.takeover_delay = self.crowd.delay(self.draws.next());
    }

    /// Notices another live process holding the lock under this identity: a record naming this
    /// identity with another incarnation that is renewed (so its writer is alive), or that
    /// replaced this process's own. Reported once per other incarnation, and kept in
    /// [`Self::conflict`] while it lasts.
    fn check_identity(&mut self, previous: Option<&LeaderRecord>, current: Option<&LeaderRecord>) {
        let other = current.and_then(|record| self.me.conflicts_with(record));
        let Some(other) = other else {
            self.conflict = None;
            return;
        };
        if self.conflict.as_deref() == Some(other.as_str()) {
            return;
        }
        let live = match previous {
            // Renewed by its holder since we last looked, or written over our own record.
            Some(previous) => {
                let renewed = previous.holding() == current.map_or(Holding::Free, LeaderRecord::holding)
                    && previous.incarnation == current.and_then(|r| r.incarnation.clone())
                    && Some(previous) != current;
                renewed || self.me.holds(previous)
            }
            None => false,
        };
        if !live {
            return;
        }
        self.effects
            .push(Effect::IdentityConflict { other: other.clone() });
        self.event(Leadership::IdentityConflict);
        self.conflict = Some(other);
    }

    /// Forgets what was known and starts from this read (for the release at shutdown, which
    /// acts only on what the lock holds now).
    pub fn reread(&mut self, read: Option<(O, LeaderRecord, Option<String>)>, now: Instant) {
        match read {
            Some((object, record, version)) => {
                self.known = Some(Observed::new(Some(record), version, now));
                self.object = Some(object);
            }
            None => {
                self.known = None;
                self.object = None;
            }
        }
    }

    /// The object and this process's own record in it, when the lock as last known is ours.
    pub fn own_record(&self) -> Option<(O, LeaderRecord)> {
        let record = self
            .known
            .as_ref()?
            .record
            .as_ref()
            .filter(|r| self.me.holds(r))?;
        Some((self.object.clone()?, record.clone()))
    }

    fn event(&mut self, what: Leadership) {
        if let Some(object) = self.object.clone() {
            self.effects.push(Effect::Event { what, object });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::BootClock;
    use crate::election::decide::tests::{ME, MY_INCARNATION, me, timing};
    use crate::election::takeover::UNIT_PER_ROUND_TRIP;
    use tokio::time::advance;

    fn wall() -> Timestamp {
        "2026-06-01T12:00:00Z".parse().unwrap()
    }

    /// A record held by `holder` (with `incarnation`), renewed at second `renewed` past noon.
    fn held(holder: &str, incarnation: &str, transitions: i32, renewed: i64) -> LeaderRecord {
        let at = Timestamp::from_second(wall().as_second() + renewed).unwrap();
        LeaderRecord {
            holder_identity: holder.into(),
            lease_duration_seconds: 3,
            acquire_time: Some(wall()),
            renew_time: Some(at),
            leader_transitions: transitions,
            incarnation: Some(incarnation.into()),
            fence: None,
            address: None,
            unreadable: None,
            takeover: None,
        }
    }

    /// A lock its holder let go of: it has a past, so it is taken and led at once.
    fn released() -> LeaderRecord {
        held("old", "old-pod/1000/bb", 4, 0).released(wall())
    }

    fn election(follow: FollowMode) -> Election<String> {
        Election::new(me(), timing(), follow, Instant::now())
    }

    fn rv(n: u32) -> Option<String> {
        Some(n.to_string())
    }

    /// Runs one attempt whose write goes through, answered `answer_after` after it was sent;
    /// the server stores the object as `object` at resourceVersion `version`.
    async fn write_through(
        election: &mut Election<String>,
        boot: &BootClock,
        version: u32,
        answer_after: Duration,
    ) -> LeaderRecord {
        election.begin_attempt(Instant::now(), 0.0);
        let record = match election.next_step(boot.read(), wall()) {
            Step::Update(_, record) | Step::Create(record) => record,
            other => panic!("expected a write, got {other:?}"),
        };
        let sent = boot.read();
        election.note_takeover(sent.monotonic);
        advance(answer_after).await;
        election.wrote(
            format!("object@{version}"),
            record.clone(),
            rv(version),
            sent,
            boot.read(),
            wall(),
        );
        record
    }

    /// A leader of a released lock (led at once), effects drained.
    async fn leader(boot: &BootClock) -> Election<String> {
        let mut election = election(FollowMode::Watch);
        election.watch_connected();
        election.absorb(Some("object@1".into()), Some(released()), rv(1), Instant::now());
        write_through(&mut election, boot, 2, Duration::from_millis(10)).await;
        assert!(
            election.leading_claim().is_some(),
            "a released lock is led at once"
        );
        let effects = election.take_effects();
        assert!(
            effects
                .iter()
                .any(|e| matches!(e, Effect::BecameLeader { fencing_token: 5, .. })),
            "taking a released lock with 4 transitions leads with token 5: {effects:?}"
        );
        election
    }

    fn step_downs(effects: &[Effect<String>]) -> Vec<(StepDown, bool)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::SteppedDown { reason, leading, .. } => Some((*reason, *leading)),
                _ => None,
            })
            .collect()
    }

    fn failures(effects: &[Effect<String>]) -> Vec<u32> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Failed { failures, .. } | Effect::GaveUpAfterConflicts { failures, .. } => {
                    Some(*failures)
                }
                _ => None,
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_keeps_the_claim_and_moves_its_deadline() {
        let boot = BootClock::manual();
        let mut election = leader(&boot).await;
        let before = election.lapse().unwrap();
        advance(Duration::from_millis(500)).await;
        let sent_at = Instant::now();
        write_through(&mut election, &boot, 3, Duration::from_millis(20)).await;
        let effects = election.take_effects();
        assert_eq!(
            step_downs(&effects),
            vec![],
            "a renewal must not step down: {effects:?}"
        );
        assert!(
            effects.iter().any(|e| *e
                == Effect::Renewed {
                    elapsed: Duration::from_millis(20)
                }),
            "the renewal is timed from its send: {effects:?}"
        );
        let claim = election.leading_claim().expect("still leading after a renewal");
        assert_eq!(claim.fencing_token, 5, "a renewal keeps the token");
        assert_eq!(claim.valid_until, sent_at + timing().renew_deadline);
        assert!(claim.valid_until > before, "the deadline moved on");
    }

    #[tokio::test(start_paused = true)]
    async fn a_404_on_renew_steps_down_as_a_deletion() {
        let boot = BootClock::manual();
        let mut election = leader(&boot).await;
        // What the shell does with a 404 on update.
        election.absorb(None, None, None, Instant::now());
        let effects = election.take_effects();
        assert_eq!(
            step_downs(&effects),
            vec![(StepDown::LockDeleted, true)],
            "{effects:?}"
        );
        assert!(
            !effects.iter().any(|e| matches!(e, Effect::Event { .. })),
            "no Event about an object that is gone: {effects:?}"
        );
        assert!(election.claim().is_none());
        assert_eq!(election.lapse(), None, "no deadline left to wait for");
    }

    #[tokio::test(start_paused = true)]
    async fn a_foreign_record_seen_while_leading_steps_down_with_the_right_reason() {
        for (record, reason) in [
            (held("other", "other-pod/1/cc", 6, 1), StepDown::OtherHolderNamed),
            (held("", "", 5, 1), StepDown::RecordRemoved),
            (held(ME, MY_INCARNATION, 9, 1), StepDown::ForeignRecord),
        ] {
            let boot = BootClock::manual();
            let mut election = leader(&boot).await;
            election.absorb(
                Some("object@3".into()),
                Some(record.clone()),
                rv(3),
                Instant::now(),
            );
            let effects = election.take_effects();
            assert_eq!(
                step_downs(&effects),
                vec![(reason, true)],
                "after {record:?}: {effects:?}"
            );
            assert!(
                effects.contains(&Effect::Event {
                    what: Leadership::Stopped,
                    object: "object@3".into()
                }),
                "a Stopped Event about the object now seen: {effects:?}"
            );
            assert!(election.leading_claim().is_none());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn unrelated_writes_keep_the_claim_and_the_expiry_timer() {
        let boot = BootClock::manual();
        let mut election = leader(&boot).await;
        let written = election.known().unwrap().record.clone();
        // A label changed: new resourceVersion, same record.
        election.absorb(Some("object@3".into()), written, rv(3), Instant::now());
        assert_eq!(
            step_downs(&election.take_effects()),
            vec![],
            "a label change is not a step-down"
        );
        assert!(election.leading_claim().is_some());

        // A follower's timer on another holder's lease is not restarted either.
        let mut follower = election_watching();
        let start = Instant::now();
        let theirs = held("other", "other-pod/1/cc", 2, 0);
        follower.absorb(Some("o@1".into()), Some(theirs.clone()), rv(1), start);
        let delay = follower.takeover_delay();
        advance(Duration::from_secs(1)).await;
        follower.absorb(Some("o@2".into()), Some(theirs), rv(2), Instant::now());
        assert_eq!(
            follower.next_attempt(Instant::now(), wall()),
            start + Duration::from_secs(3) + delay,
            "the holder's lease runs from when its record was first seen, and the delay is not redrawn"
        );
        assert_eq!(follower.takeover_delay(), delay);
        let effects = follower.take_effects();
        assert_eq!(effects, vec![], "the same holder, nothing to report");
    }

    fn election_watching() -> Election<String> {
        let mut election = election(FollowMode::Watch);
        election.watch_connected();
        election
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_answered_after_the_renew_deadline_wins_nothing() {
        let boot = BootClock::manual();
        let mut election = election_watching();
        election.absorb(Some("object@1".into()), Some(released()), rv(1), Instant::now());
        write_through(&mut election, &boot, 2, timing().renew_deadline).await;
        let effects = election.take_effects();
        assert!(
            effects.contains(&Effect::AnsweredLate {
                after: timing().renew_deadline
            }),
            "{effects:?}"
        );
        assert!(
            !effects.iter().any(|e| matches!(e, Effect::BecameLeader { .. })),
            "{effects:?}"
        );
        assert!(election.claim().is_none(), "no claim on a late answer");
        assert_eq!(election.leader(), Some(ME), "though the lock names this process");
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_answered_after_the_deadline_steps_down() {
        let boot = BootClock::manual();
        let mut election = leader(&boot).await;
        advance(Duration::from_millis(500)).await;
        write_through(&mut election, &boot, 3, timing().renew_deadline).await;
        let effects = election.take_effects();
        assert_eq!(
            step_downs(&effects),
            vec![(StepDown::AnsweredAfterDeadline, true)],
            "{effects:?}"
        );
        assert!(election.claim().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_takeover_of_a_lock_with_no_past_leads_only_from_leads_from_and_then_does() {
        let boot = BootClock::manual();
        let mut election = election_watching();
        let start = Instant::now();
        // The lock is missing.
        election.absorb(None, None, None, start);
        let record = write_through(&mut election, &boot, 1, Duration::from_millis(10)).await;
        assert_eq!(record.leader_transitions, 0, "a missing lock is created");
        let leads_from = start + timing().lease_duration;
        assert_eq!(
            election.pending(),
            Some(leads_from),
            "held for one lease before leading"
        );
        assert!(election.leading_claim().is_none());
        let effects = election.take_effects();
        assert!(
            effects
                .iter()
                .any(|e| matches!(e, Effect::HoldingBeforeLeading { .. })),
            "{effects:?}"
        );

        // Renew while waiting; the claim does not lead before its time.
        let mut version = 2;
        while Instant::now() + timing().retry_period < leads_from {
            advance(timing().retry_period).await;
            election.begin_leading(boot.read(), wall());
            assert!(
                election.leading_claim().is_none(),
                "not leading before {leads_from:?}"
            );
            write_through(&mut election, &boot, version, Duration::ZERO).await;
            version += 1;
            assert!(election.claim().is_some(), "the hold is renewed");
        }
        assert!(
            !election
                .take_effects()
                .iter()
                .any(|e| matches!(e, Effect::BecameLeader { .. })),
        );
        advance(leads_from - Instant::now()).await;
        election.begin_leading(boot.read(), wall());
        assert!(election.leading_claim().is_some(), "leads from its time on");
        assert_eq!(election.pending(), None);
        let effects = election.take_effects();
        assert!(
            effects
                .iter()
                .any(|e| matches!(e, Effect::BecameLeader { fencing_token: 0, .. })),
            "{effects:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_response_create_found_as_ours_later_still_waits_not_before() {
        let boot = BootClock::manual();
        let mut election = election_watching();
        let start = Instant::now();
        election.absorb(None, None, None, start);
        election.begin_attempt(Instant::now(), 0.0);
        let Step::Create(record) = election.next_step(boot.read(), wall()) else {
            panic!("a missing lock is created");
        };
        election.note_takeover(Instant::now());
        advance(Duration::from_millis(100)).await;
        // The answer is lost (a timeout)...
        election.failed("timed out".into(), None, Some(start), Instant::now(), 0.0);
        assert!(election.claim().is_none());
        // ...but the create went through: the watch shows our record.
        election.absorb(Some("object@1".into()), Some(record), rv(1), Instant::now());
        assert_eq!(step_downs(&election.take_effects()), vec![]);
        advance(Duration::from_millis(500)).await;
        write_through(&mut election, &boot, 2, Duration::ZERO).await;
        assert_eq!(
            election.pending(),
            Some(start + timing().lease_duration),
            "our own record found later still leads only a lease after the first take"
        );
        assert!(election.leading_claim().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lock_taken_with_no_past_is_not_for_release_until_it_is_led_on() {
        let boot = BootClock::manual();
        let mut election = election_watching();
        let start = Instant::now();
        election.absorb(None, None, None, start);
        assert!(!election.waiting_to_lead(start), "nothing taken yet");
        election.begin_attempt(Instant::now(), 0.0);
        let Step::Create(_) = election.next_step(boot.read(), wall()) else {
            panic!("a missing lock is created");
        };
        election.note_takeover(Instant::now());
        assert!(
            election.waiting_to_lead(Instant::now()),
            "a create in flight may have taken the lock"
        );
        write_through(&mut election, &boot, 1, Duration::ZERO).await;
        assert!(election.claim().is_some() && election.leading_claim().is_none());
        assert!(election.waiting_to_lead(Instant::now()), "held, not led on");
        for version in 2..=8 {
            advance(timing().retry_period).await;
            write_through(&mut election, &boot, version, Duration::ZERO).await;
        }
        assert!(
            election.leading_claim().is_some(),
            "leading a lease after the take"
        );
        assert!(!election.waiting_to_lead(Instant::now()), "a leader releases");
    }

    #[tokio::test(start_paused = true)]
    async fn conflicts_do_not_reset_the_backoff_but_a_clean_attempt_does() {
        let boot = BootClock::manual();
        let mut election = election_watching();
        election.failed("boom".into(), None, None, Instant::now(), 0.0);
        assert_eq!(failures(&election.take_effects()), vec![1]);

        // An attempt that lost a race, then went through: the backoff stays.
        election.absorb(
            Some("object@1".into()),
            Some(held("other", "o/1/x", 1, 0)),
            rv(1),
            Instant::now(),
        );
        advance(Duration::from_secs(3)).await;
        election.begin_attempt(Instant::now(), 0.0);
        let Step::Update(..) = election.next_step(boot.read(), wall()) else {
            panic!("an expired lease is taken over");
        };
        election.write_conflicted(Instant::now(), Instant::now());
        election.absorb(
            Some("object@2".into()),
            Some(held("other", "o/1/x", 1, 1)),
            rv(2),
            Instant::now(),
        );
        assert_eq!(
            election.next_step(boot.read(), wall()),
            Step::Done,
            "renewed: wait"
        );
        assert_eq!(election.last_error(), None, "the attempt went through");
        election.failed("boom".into(), None, None, Instant::now(), 0.0);
        assert_eq!(
            failures(&election.take_effects()),
            vec![2],
            "the 409 did not reset the count"
        );

        // A clean attempt resets it.
        election.begin_attempt(Instant::now(), 0.0);
        assert_eq!(election.next_step(boot.read(), wall()), Step::Done);
        election.failed("boom".into(), None, None, Instant::now(), 0.0);
        assert_eq!(failures(&election.take_effects()), vec![1]);
    }

    #[tokio::test(start_paused = true)]
    async fn every_write_losing_a_race_is_a_failure_for_pacing() {
        let mut election = election_watching();
        election.gave_up_after_conflicts(Instant::now(), 0.0);
        election.gave_up_after_conflicts(Instant::now(), 0.0);
        assert_eq!(failures(&election.take_effects()), vec![1, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_next_attempt_for_a_leader_a_watching_and_a_polling_follower_and_with_the_watch_down() {
        let boot = BootClock::manual();
        // Leader: one retry period after its last attempt began.
        let mut leading = leader(&boot).await;
        let attempt = Instant::now() - Duration::from_millis(10);
        assert_eq!(
            leading.next_attempt(Instant::now(), wall()),
            attempt + timing().retry_period
        );

        // Followers seeing another holder, whose lease runs 3 s from now.
        let start = Instant::now();
        let theirs = held("other", "other-pod/1/cc", 2, 0);
        let jitter = timing().jittered_retry(0.0);

        let mut watching = election_watching();
        watching.absorb(Some("o".into()), Some(theirs.clone()), rv(1), start);
        watching.begin_attempt(start, 0.0);
        let delay = watching.takeover_delay();
        assert_eq!(
            watching.next_attempt(start, wall()),
            start + Duration::from_secs(3) + delay,
            "a watching follower acts its drawn delay after the lease runs out"
        );

        let mut polling = election(FollowMode::Poll);
        polling.absorb(Some("o".into()), Some(theirs.clone()), rv(1), start);
        polling.begin_attempt(start, 0.0);
        assert_eq!(
            polling.next_attempt(start, wall()),
            start + jitter,
            "a polling follower polls every jittered retry period"
        );

        watching.watch_lost("reset".into());
        assert_eq!(
            watching.next_attempt(start, wall()),
            start + jitter,
            "with the watch down, a follower polls meanwhile"
        );
        assert!(watching.must_read(), "and reads before deciding");
        watching.watch_connected();
        assert_eq!(
            watching.next_attempt(start, wall()),
            start + Duration::from_secs(3) + delay
        );
        assert_eq!(
            watching.take_effects(),
            vec![
                Effect::WatchLost {
                    reason: "reset".into()
                },
                Effect::WatchBack
            ]
        );

        // Backoff holds a follower back.
        watching.failed("boom".into(), None, None, start, 0.0);
        let backoff = timing().backoff(1, 0.0);
        assert_eq!(
            watching.next_attempt(start, wall()),
            (start + Duration::from_secs(3) + delay).max(start + backoff)
        );
        assert!(backoff > Duration::ZERO);
        assert_eq!(leading.take_effects(), vec![]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_identity_conflict_is_reported_once() {
        let mut election = election_watching();
        let twin = "pod-2/3000/dd";
        election.absorb(
            Some("o@1".into()),
            Some(held(ME, twin, 1, 0)),
            rv(1),
            Instant::now(),
        );
        assert_eq!(election.conflict(), None, "not yet known to be alive");
        for (version, renewed) in [(2, 1), (3, 2), (4, 3)] {
            advance(Duration::from_millis(500)).await;
            election.absorb(
                Some(format!("o@{version}")),
                Some(held(ME, twin, 1, renewed)),
                rv(version),
                Instant::now(),
            );
        }
        let effects = election.take_effects();
        let reports: Vec<_> = effects
            .iter()
            .filter(|e| matches!(e, Effect::IdentityConflict { .. }))
            .collect();
        assert_eq!(
            reports,
            vec![&Effect::IdentityConflict { other: twin.into() }],
            "one report for three renewals: {effects:?}"
        );
        assert!(
            effects.contains(&Effect::Event {
                what: Leadership::IdentityConflict,
                object: "o@2".into()
            }),
            "{effects:?}"
        );
        assert_eq!(election.conflict(), Some(twin), "published while it lasts");
        election.absorb(Some("o@5".into()), Some(released()), rv(5), Instant::now());
        assert_eq!(election.conflict(), None, "cleared once the lock moves on");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lapsed_claim_steps_down_before_writing() {
        let boot = BootClock::manual();
        let mut election = leader(&boot).await;
        advance(timing().renew_deadline).await;
        election.begin_attempt(Instant::now(), 0.0);
        assert_eq!(election.next_step(boot.read(), wall()), Step::Done);
        assert_eq!(
            step_downs(&election.take_effects()),
            vec![(StepDown::DeadlinePassed, true)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_deleted_event_keeps_the_highest_token_of_the_last_state() {
        let mut election = election_watching();
        election.absorb(
            Some("o@1".into()),
            Some(held("other", "o/1/x", 3, 0)),
            rv(1),
            Instant::now(),
        );
        election.absorb_deleted(rv(5), Some(8), Instant::now());
        assert_eq!(election.known().unwrap().highest_token, Some(8));
        assert_eq!(
            election.take_effects(),
            vec![Effect::LeaderChanged {
                previous: Some("other".into()),
                leader: None
            }]
        );
        // A stale deletion (older than what is known) changes nothing.
        election.absorb_deleted(rv(4), Some(20), Instant::now());
        assert_eq!(election.known().unwrap().highest_token, Some(8));
    }

    #[tokio::test(start_paused = true)]
    async fn a_withdrawn_follower_never_writes_but_keeps_following() {
        let boot = BootClock::manual();
        for follow in [FollowMode::Watch, FollowMode::Poll] {
            let mut election = election(follow);
            election.watch_connected();
            assert_eq!(election.set_standing(false, Instant::now()), Withdrawal::Nothing);
            // A released lock, which a standing follower takes at once.
            election.absorb(Some("object@1".into()), Some(released()), rv(1), Instant::now());
            election.begin_attempt(Instant::now(), 0.0);
            let step = election.next_step(boot.read(), wall());
            assert_eq!(
                step,
                Step::Done,
                "{follow}: a released lock is not taken while withdrawn"
            );
            // It still follows: a new holder is noticed.
            election.absorb(
                Some("object@2".into()),
                Some(held("other", "o/1/aa", 5, 0)),
                rv(2),
                Instant::now(),
            );
            assert_eq!(election.leader(), Some("other"));
            // Its expiry is not a reason to wake a withdrawn watcher; a poller still polls.
            let now = Instant::now();
            let next = election.next_attempt(now, wall());
            match follow {
                FollowMode::Watch => assert!(next >= now + Duration::from_secs(60), "{next:?}"),
                FollowMode::Poll => assert_eq!(next, now + timing().jittered_retry(0.0)),
            }
            advance(Duration::from_secs(10)).await;
            election.begin_attempt(Instant::now(), 0.0);
            assert_eq!(
                election.next_step(boot.read(), wall()),
                Step::Done,
                "an expired lease is not taken over while withdrawn"
            );
            // Standing again, it competes like a fresh follower: the expired lease is taken.
            assert_eq!(election.set_standing(true, Instant::now()), Withdrawal::Nothing);
            election.begin_attempt(Instant::now(), 0.0);
            assert!(
                matches!(election.next_step(boot.read(), wall()), Step::Update(..)),
                "standing again, the expired lease is taken over"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_withdrawn_leader_steps_down_at_once_and_is_to_release() {
        let boot = BootClock::manual();
        let mut election = leader(&boot).await;
        assert!(election.standing());
        assert_eq!(election.set_standing(false, Instant::now()), Withdrawal::Release);
        assert!(
            election.leading_claim().is_none(),
            "no claim from the moment of withdrawal"
        );
        assert_eq!(
            step_downs(&election.take_effects()),
            vec![(StepDown::Withdrawn, true)]
        );
        assert!(
            election.own_record().is_some(),
            "the lock still names this process: its own record is what the release writes"
        );
        assert_eq!(
            election.set_standing(false, Instant::now()),
            Withdrawal::Nothing,
            "withdrawing again does nothing"
        );
        // While withdrawn it does not renew, even though the lock still names it.
        election.begin_attempt(Instant::now(), 0.0);
        assert_eq!(election.next_step(boot.read(), wall()), Step::Done);
    }

    #[tokio::test(start_paused = true)]
    async fn a_withdrawal_before_leading_on_a_lock_with_no_past_does_not_release() {
        let boot = BootClock::manual();
        let mut election = election(FollowMode::Watch);
        election.watch_connected();
        election.absorb(None, None, None, Instant::now());
        write_through(&mut election, &boot, 1, Duration::from_millis(10)).await;
        assert!(election.claim().is_some() && election.leading_claim().is_none());
        assert_eq!(
            election.set_standing(false, Instant::now()),
            Withdrawal::KeepUntilExpiry,
            "a lock taken with no past is waited out by others, never released early"
        );
        assert!(election.claim().is_none());
        assert_eq!(
            step_downs(&election.take_effects()),
            vec![(StepDown::Withdrawn, false)]
        );
    }

    /// A watching follower named `identity` (its own incarnation, so its own draws).
    fn watching_follower(identity: &str) -> Election<String> {
        let me = Me {
            identity: identity.into(),
            incarnation: format!("{identity}-pod/1/aa"),
            address: None,
        };
        let mut election = Election::new(me, timing(), FollowMode::Watch, Instant::now());
        election.watch_connected();
        election
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_release_a_watching_follower_writes_its_drawn_delay_later_within_bounds() {
        let longest = Crowd::new(&timing()).longest();
        let mut followers: Vec<_> = (0..50).map(|i| watching_follower(&format!("f{i}"))).collect();
        let holder = held("old", "old-pod/1000/bb", 4, 0);
        for follower in &mut followers {
            follower.absorb(Some("o@1".into()), Some(holder.clone()), rv(1), Instant::now());
        }
        advance(Duration::from_millis(700)).await;
        let seen = Instant::now();
        let mut dues = Vec::new();
        for follower in &mut followers {
            follower.absorb(Some("o@2".into()), Some(released()), rv(2), seen);
            let due = follower.next_attempt(seen, wall());
            assert_eq!(
                due,
                seen + follower.takeover_delay(),
                "the release is taken its delay after it was seen"
            );
            assert!(
                due <= seen + longest,
                "{due:?} is beyond the longest delay {longest:?}"
            );
            dues.push(due);
        }
        dues.sort();
        dues.dedup();
        assert!(
            dues.len() > 40,
            "the delays are spread, not shared: {} distinct of 50",
            dues.len()
        );
        // The same draw is not made again for the same record.
        let first = followers[0].next_attempt(seen, wall());
        advance(Duration::from_millis(1)).await;
        assert_eq!(followers[0].next_attempt(Instant::now(), wall()), first);
    }

    #[tokio::test(start_paused = true)]
    async fn the_winner_writes_its_delay_and_model_into_the_lock_and_renewals_carry_them() {
        let boot = BootClock::manual();
        let mut follower = watching_follower(ME);
        follower.absorb(Some("o@1".into()), Some(released()), rv(1), Instant::now());
        let delay = follower.takeover_delay();
        advance(delay).await;
        let taken = write_through(&mut follower, &boot, 2, Duration::from_millis(1)).await;
        let note = taken.takeover.expect("a takeover writes its note");
        assert_eq!(
            note,
            Crowd::new(&timing()).won(delay, false),
            "the delay it waited, its unit, the size it read off its delay"
        );
        assert!(note.size < 256, "a winner after {delay:?} shrinks the estimate");
        assert!(follower.leading_claim().is_some());
        advance(timing().retry_period).await;
        let renewal = write_through(&mut follower, &boot, 3, Duration::from_millis(1)).await;
        assert_eq!(
            renewal.takeover,
            Some(note),
            "a renewal carries the takeover's note, for processes that start later"
        );
        // Its own write comes back through the watch 12 ms after it was sent (11 after the
        // answer): the next renewal's note carries the unit that round trip asks for.
        advance(Duration::from_millis(11)).await;
        follower.absorb(Some("object@3".into()), Some(renewal), rv(3), Instant::now());
        advance(timing().retry_period).await;
        let measured = write_through(&mut follower, &boot, 4, Duration::from_millis(1)).await;
        let unit = whole_micros(Duration::from_millis(12).mul_f64(UNIT_PER_ROUND_TRIP));
        assert_eq!(measured.takeover, Some(TakeoverNote { unit, ..note }));
        assert!(
            follower.leading_claim().is_some(),
            "the record read back (micros) is the one written: no step-down"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_follower_learns_the_round_trip_and_the_group_model_from_a_watched_takeover() {
        let mut follower = watching_follower("f");
        let holder = held("old", "old-pod/1000/bb", 4, 0);
        follower.absorb(Some("o@1".into()), Some(holder), rv(1), Instant::now());
        advance(Duration::from_millis(700)).await;
        follower.absorb(Some("o@2".into()), Some(released()), rv(2), Instant::now());
        // The winner waited 5 ms; its write shows up here 25 ms after the release did.
        let note = TakeoverNote {
            delay: Duration::from_millis(5),
            unit: Duration::from_millis(2),
            size: 256,
        };
        advance(Duration::from_millis(25)).await;
        let winner = LeaderRecord {
            takeover: Some(note),
            ..held("w", "w-pod/1/aa", 5, 1)
        };
        follower.absorb(Some("o@3".into()), Some(winner.clone()), rv(3), Instant::now());
        let mut expected = Crowd::new(&timing());
        expected.learn(&note, Some(Duration::from_millis(20)));
        assert_eq!(follower.crowd().round_trip(), Some(Duration::from_millis(20)));
        assert_eq!(follower.crowd(), expected);
        assert!(
            follower.crowd().unit() > Crowd::new(&timing()).unit(),
            "a 20 ms round trip widens the 2 ms unit"
        );
        // The winner's renewals teach nothing more.
        advance(Duration::from_millis(500)).await;
        let renewed = LeaderRecord {
            takeover: Some(note),
            ..held("w", "w-pod/1/aa", 5, 2)
        };
        follower.absorb(Some("o@4".into()), Some(renewed), rv(4), Instant::now());
        assert_eq!(follower.crowd(), expected);
        // A process starting now adopts the group's model from its first look.
        let mut fresh = watching_follower("g");
        fresh.absorb(Some("o@3".into()), Some(winner), rv(3), Instant::now());
        let mut adopted = Crowd::new(&timing());
        adopted.adopt(&note);
        assert_eq!(fresh.crowd(), adopted);
        assert_eq!(fresh.crowd().round_trip(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_follower_whose_write_lost_learns_the_note_and_its_own_loss_whatever_comes_first() {
        let note = TakeoverNote {
            delay: Duration::ZERO,
            unit: Duration::from_millis(2),
            size: 64,
        };
        let winner = LeaderRecord {
            takeover: Some(note),
            ..held("w", "w-pod/1/aa", 5, 1)
        };
        let mut sizes = Vec::new();
        for conflict_first in [true, false] {
            let boot = BootClock::manual();
            let mut follower = watching_follower("f");
            follower.crowd = Crowd::new(&timing()).with_size(2.0);
            follower.absorb(Some("o@1".into()), Some(released()), rv(1), Instant::now());
            follower.takeover_delay = Duration::ZERO;
            lose_to(&mut follower, &boot, winner.clone(), 2, conflict_first).await;
            sizes.push(follower.crowd().size());
        }
        let mut expected = Crowd::new(&timing());
        expected.learn(&note, None);
        expected.lost_race(Duration::ZERO);
        assert_eq!(
            sizes,
            vec![expected.size(); 2],
            "the note, then this follower's loss on top"
        );
    }

    /// Sends `follower`'s takeover write, which loses to `winner` (stored at `version`): the
    /// 409 comes before the winner shows up in the watch, or after (`conflict_first`).
    async fn lose_to(
        follower: &mut Election<String>,
        boot: &BootClock,
        winner: LeaderRecord,
        version: u32,
        conflict_first: bool,
    ) {
        follower.begin_attempt(Instant::now(), 0.0);
        assert!(matches!(
            follower.next_step(boot.read(), wall()),
            Step::Update(..)
        ));
        let sent = Instant::now();
        advance(Duration::from_millis(3)).await;
        if conflict_first {
            follower.write_conflicted(sent, Instant::now());
        }
        follower.absorb(
            Some(format!("o@{version}")),
            Some(winner),
            rv(version),
            Instant::now(),
        );
        if !conflict_first {
            follower.write_conflicted(sent, Instant::now());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_follower_of_a_pair_writes_at_once_and_leaves_that_after_three_races_lost_in_a_row() {
        for conflict_first in [true, false] {
            let boot = BootClock::manual();
            let mut follower = watching_follower("f");
            let mut sizes = Vec::new();
            for round in 1..=3_u32 {
                advance(Duration::from_millis(100)).await;
                let opened = held(&format!("w{round}"), "w-pod/1/aa", 5, 0).released(wall());
                follower.absorb(
                    Some(format!("o@{round}0")),
                    Some(opened),
                    rv(round * 10),
                    Instant::now(),
                );
                if round == 1 {
                    // The group's note: a pair.
                    follower.crowd = Crowd::new(&timing()).with_size(2.0);
                    follower.takeover_delay = follower.crowd.delay(0.99);
                }
                assert_eq!(
                    follower.takeover_delay(),
                    Duration::ZERO,
                    "round {round}: at once"
                );
                let winner = LeaderRecord {
                    takeover: Some(TakeoverNote {
                        delay: Duration::ZERO,
                        unit: Duration::from_millis(2),
                        size: 2,
                    }),
                    ..held(&format!("v{round}"), "v-pod/1/aa", 5, 1)
                };
                lose_to(&mut follower, &boot, winner, round * 10 + 1, conflict_first).await;
                sizes.push(follower.crowd().size());
            }
            assert_eq!(
                sizes,
                vec![2.0, 2.0, 4.0],
                "two losses keep the pair at once, the third doubles (conflict first: {conflict_first})"
            );
            // Now it draws: its next delay may be more than zero.
            assert!((0..100).any(|_| !follower.crowd().delay(follower.draws.next()).is_zero()));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_winner_seen_in_the_watch_before_the_delay_runs_out_cancels_the_attempt() {
        let mut follower = watching_follower("f");
        let seen = Instant::now();
        follower.absorb(Some("o@2".into()), Some(released()), rv(2), seen);
        let delay = follower.takeover_delay();
        assert!(
            delay > Duration::from_millis(1),
            "this seed draws a delay: {delay:?}"
        );
        assert_eq!(follower.next_attempt(seen, wall()), seen + delay);
        // The winner's write shows up before the delay has run out.
        advance(delay / 2).await;
        let winner = held("winner", "winner-pod/1/cc", 5, 1);
        follower.absorb(Some("o@3".into()), Some(winner), rv(3), Instant::now());
        let expiry = Instant::now() + Duration::from_secs(3);
        assert_eq!(
            follower.next_attempt(Instant::now(), wall()),
            expiry + follower.takeover_delay(),
            "cancelled: the next attempt waits for the winner's lease"
        );
        assert_eq!(
            follower.crowd(),
            Crowd::new(&timing()),
            "a winner seen teaches nothing"
        );
        assert_eq!(follower.take_effects().len(), 1, "the new leader is reported");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_race_widens_the_spread_once_per_opening() {
        let mut follower = watching_follower("f");
        follower.absorb(Some("o@2".into()), Some(released()), rv(2), Instant::now());
        let delay = follower.takeover_delay();
        advance(delay).await;
        follower.begin_attempt(Instant::now(), 0.0);
        assert!(matches!(
            follower.next_step(BootClock::manual().read(), wall()),
            Step::Update(..)
        ));
        follower.write_conflicted(Instant::now(), Instant::now());
        follower.write_conflicted(Instant::now(), Instant::now());
        // Written after a delay: the unit doubles, once for this opening.
        assert!(delay > Duration::ZERO, "this seed draws a delay");
        let widened = Crowd::new(&timing()).unit() * 2;
        assert_eq!(follower.crowd().unit(), widened);
        assert_eq!(follower.crowd().size(), Crowd::new(&timing()).size());
        // Reading the winner after the race says nothing more about the group.
        advance(Duration::from_millis(50)).await;
        let winner = held("winner", "winner-pod/1/cc", 5, 1);
        follower.absorb(Some("o@3".into()), Some(winner), rv(3), Instant::now());
        assert_eq!(follower.crowd().size(), Crowd::new(&timing()).size());
        assert_eq!(follower.crowd().unit(), widened);
    }

    #[tokio::test(start_paused = true)]
    async fn expiry_timers_after_a_crash_are_spread_by_the_drawn_delays() {
        let longest = Crowd::new(&timing()).longest();
        let start = Instant::now();
        let holder = held("crashed", "crashed-pod/1/bb", 4, 0);
        let mut dues = Vec::new();
        for i in 0..20 {
            let mut follower = watching_follower(&format!("f{i}"));
            follower.absorb(Some("o@1".into()), Some(holder.clone()), rv(1), start);
            let due = follower.next_attempt(start, wall());
            let expiry = start + Duration::from_secs(3);
            assert!(
                due >= expiry && due <= expiry + longest,
                "{due:?} outside [expiry, expiry + {longest:?}]"
            );
            // Past the expiry the same instant stands: the timer does not slide with `now`.
            advance(Duration::from_secs(4)).await;
            assert_eq!(follower.next_attempt(Instant::now(), wall()), due);
            dues.push(due - expiry);
        }
        dues.sort();
        dues.dedup();
        assert!(dues.len() > 15, "expiry timers fire at spread instants: {dues:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lock_left_by_a_predecessor_in_this_pod_is_taken_without_delay() {
        let mut follower = election_watching();
        assert!(follower.crowd().delay(0.99) > Duration::ZERO, "others would wait");
        let predecessor = held(ME, "pod-1/1000/aa", 4, 0);
        let seen = Instant::now();
        follower.absorb(Some("o@1".into()), Some(predecessor), rv(1), seen);
        assert_eq!(follower.next_attempt(seen, wall()), seen);
    }
}
