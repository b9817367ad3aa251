//! The election loop: carries out [`decide`]'s decisions against the API server and publishes
//! the outcome.
//!
//! One task owns the truth. It waits in a single `select!` on, in order of priority: shutdown,
//! the end of its own claim's validity, news from the watch on the lock, and the time of its next
//! attempt. An attempt is client-go's `tryAcquireOrRenew`: the leader writes straight from its
//! cached record (the fast path) and reads again only after a conflict (the slow path, counted);
//! a follower reads first when it polls, or writes straight from what its watch showed it.
//! After every step the loop publishes a [`LeaderState`] on the watch channel.
//!
//! A leader steps down the moment it learns the lock was deleted (a 404, a DELETED event) or
//! holds any record other than the one it last wrote; writes that leave the record alone
//! (labels, data) change nothing. A record naming this identity with another incarnation, renewed
//! under our eyes, is another live process with our identity: reported once (log, Warning Event,
//! metrics, `/status`), and this process stays a follower while it holds the lock.
//!
//! Followers in [`FollowMode::Watch`] make no requests in steady state: the watch tells them of
//! every renewal, a release is acted on the moment it arrives, and an expiry exactly when the
//! observed lease runs out. When the watch is down they poll every jittered retry period until
//! it is back. [`FollowMode::Poll`] is client-go's behaviour, kept as a baseline and an option.
//!
//! Pacing ([`super::pacing`]): a follower backs off exponentially on consecutive failures and
//! honours `Retry-After`; a leader's call gets at most half the renew deadline, a follower's
//! attempt one renew deadline in all.
//!
//! Shutdown: the claim is withdrawn and published first (`/readyz` answers 503), then the loop
//! waits for the [release gate](Settings::release_gate) (the leader file removed, the pod label
//! reset) and for [`Settings::release_delay`] to pass since the step-down, and only then writes
//! the release; all of it within [`Settings::shutdown_timeout`].

use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use super::decide::{Claim, Decision, Freshness, Me, Observed, decide, freshness, leads_from, observe};
use super::events::{Leadership, LockRef, Recorder};
use super::lock::{Change, Error as LockError, KubeLock, LockObject, Snapshot, WatchError};
use super::pacing::{self, Backoff};
use super::record::{Holding, LeaderRecord};
use super::{FollowMode, Timing};
use crate::clock::{BootClock, Reading, WallClock, later, monotonic_ns};
use crate::metrics::{ElectionMetrics, RenewResult};
use crate::status::{LeaderState, StateSender};

/// What the loop needs to know beyond the lock itself.
#[derive(Clone, Debug)]
pub struct Settings {
    /// This process's identity in the election.
    pub identity: String,
    /// This pod's UID (downward API), part of the incarnation (see [`super::incarnation`]).
    pub pod_uid: Option<String>,
    pub timing: Timing,
    pub follow: FollowMode,
    /// Write an empty holder when shutting down as leader, so others take over at once.
    pub release_on_shutdown: bool,
    /// Upper bound on the whole shutdown: waiting for the gate, the delay, the release and the
    /// last Event.
    pub shutdown_timeout: Duration,
    /// How long after stepping down the release is written, for the application to notice.
    pub release_delay: Duration,
    /// Completes when what follows the published state (leader file, pod label) has caught up
    /// with the step-down; the release waits for it.
    pub release_gate: ReleaseGate,
}

/// A gate the release waits for: open by default; [`ReleaseGate::pair`] makes one that opens
/// when its [`GateOpener`] is told to, or dropped.
#[derive(Clone, Debug, Default)]
pub struct ReleaseGate(Option<tokio::sync::watch::Receiver<bool>>);

/// Opens a [`ReleaseGate`].
#[derive(Debug)]
pub struct GateOpener(tokio::sync::watch::Sender<bool>);

impl ReleaseGate {
    /// A closed gate and its opener.
    pub fn pair() -> (GateOpener, ReleaseGate) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (GateOpener(tx), ReleaseGate(Some(rx)))
    }

    /// Completes once the gate is open (or its opener is gone).
    pub async fn opened(&self) {
        if let Some(rx) = &self.0 {
            let mut rx = rx.clone();
            let _ = rx.wait_for(|open| *open).await;
        }
    }
}

impl GateOpener {
    pub fn open(&self) {
        let _ = self.0.send(true);
    }
}

/// How long a watch asks the server to keep it open before it is renewed.
const WATCH_SERVER_TIMEOUT: Duration = Duration::from_secs(290);

/// News from the watch task.
#[derive(Debug)]
enum WatchNews<K> {
    Connected,
    Changed(Change<K>),
    Lost(String),
}

/// The election loop for one lock of kind `K`.
pub struct Driver<K: LockObject> {
    lock: KubeLock<K>,
    settings: Settings,
    /// Identity and incarnation.
    me: Me,
    wall: WallClock,
    boot: BootClock,
    state: StateSender,
    metrics: ElectionMetrics,
    recorder: Option<Recorder>,
    /// What is known of the lock, and since when.
    known: Option<Observed>,
    /// The object behind `known`, kept whole so a write changes nothing but the record.
    object: Option<K>,
    /// This process's hold on the lock, while it holds it (leading, or waiting to lead on a
    /// lock taken with no past).
    claim: Option<Claim>,
    /// No claim won before this instant leads: raised by every takeover of a lock with no past
    /// ([`leads_from`]), so a takeover whose answer was lost, found as ours on the next read,
    /// still waits.
    not_before: Instant,
    /// The record of this process's last successful write: while leading, any other record
    /// seen on the lock was written by someone else.
    written: Option<LeaderRecord>,
    /// The incarnation of another live process holding the lock under this identity.
    conflict: Option<String>,
    identity_conflicts_total: u64,
    /// A write whose outcome is unknown because it was interrupted (by shutdown).
    write_in_flight: bool,
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
    acquired_total: u64,
    lost_total: u64,
    leader_changes_total: u64,
    last_event: Option<JoinHandle<()>>,
}

impl<K: LockObject> Driver<K> {
    pub fn new(
        lock: KubeLock<K>,
        settings: Settings,
        wall: WallClock,
        state: StateSender,
        metrics: ElectionMetrics,
        recorder: Option<Recorder>,
    ) -> Self {
        let me = Me {
            identity: settings.identity.clone(),
            incarnation: super::incarnation::draw(settings.pod_uid.as_deref(), wall.now()),
        };
        Self {
            lock,
            settings,
            me,
            wall,
            boot: BootClock::system(),
            state,
            metrics,
            recorder,
            known: None,
            object: None,
            claim: None,
            not_before: Instant::now(),
            written: None,
            conflict: None,
            identity_conflicts_total: 0,
            write_in_flight: false,
            watch_up: false,
            watch_lost: false,
            poll_due: Instant::now(),
            backoff: Backoff::new(),
            attempt_deadline: Instant::now(),
            conflicted: false,
            last_error: None,
            last_renew: None,
            acquired_total: 0,
            lost_total: 0,
            leader_changes_total: 0,
            last_event: None,
        }
    }

    /// Reads suspend-aware deadlines from `boot` instead of `CLOCK_BOOTTIME` (for tests).
    pub fn with_boot_clock(mut self, boot: BootClock) -> Self {
        self.boot = boot;
        self
    }

    /// Runs the election until `shutdown` completes, then lets go of the lock (if configured)
    /// and returns. Losing the election is never an error: the loop competes again.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let timing = self.settings.timing;
        let (news_tx, mut news_rx) = mpsc::channel(64);
        let watcher = match self.settings.follow {
            FollowMode::Watch => Some(tokio::spawn(watch_lock(self.lock.clone(), timing, news_tx))),
            FollowMode::Poll => {
                drop(news_tx);
                None
            }
        };
        let mut watching = watcher.is_some();
        let mut heartbeat = tokio::time::interval(timing.retry_period);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(
            identity = %self.settings.identity,
            incarnation = %self.me.incarnation,
            lock = %format!("{}/{}", self.lock.kind(), self.lock.name()),
            namespace = %self.lock.namespace(),
            follow = %self.settings.follow,
            lease_duration = ?timing.lease_duration,
            renew_deadline = ?timing.renew_deadline,
            retry_period = ?timing.retry_period,
            "election starting"
        );
        self.publish();
        loop {
            let now = Instant::now();
            let wake = self.next_attempt(now);
            let lapse = self.claim.as_ref().map(|c| c.valid_until);
            let pending = self.claim.as_ref().filter(|c| !c.leading).map(|c| c.leads_from);
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = sleep_until(lapse.unwrap_or(now)), if lapse.is_some() => {
                    self.step_down("renew deadline passed without a successful renewal");
                }
                () = sleep_until(pending.unwrap_or(now)), if pending.is_some() => self.begin_leading(),
                news = news_rx.recv(), if watching => match news {
                    Some(news) => self.on_watch(news),
                    None => {
                        // The watch task is gone for good: poll from now on.
                        tracing::warn!(identity = %self.settings.identity, "watch task ended; polling");
                        watching = false;
                        self.watch_up = false;
                    }
                },
                () = sleep_until(wake) => {
                    tokio::select! {
                        biased;
                        () = &mut shutdown => break,
                        () = self.attempt() => {}
                    }
                }
                _ = heartbeat.tick() => {}
            }
            self.publish();
        }
        if let Some(watcher) = watcher {
            watcher.abort();
        }
        self.shut_down().await;
    }

    /// When the next attempt is due.
    fn next_attempt(&self, now: Instant) -> Instant {
        let due = if let Some(claim) = &self.claim {
            claim.renew_due(&self.settings.timing)
        } else {
            let by_decision = match decide(
                self.known.as_ref(),
                &self.me,
                now,
                self.wall.now(),
                &self.settings.timing,
            ) {
                Decision::WaitUntil(expiry) => expiry,
                Decision::Read | Decision::Create(_) | Decision::Claim(_) => now,
            };
            match self.settings.follow {
                FollowMode::Poll => self.poll_due,
                FollowMode::Watch if self.watch_up => by_decision,
                FollowMode::Watch => by_decision.min(self.poll_due),
            }
        };
        self.backoff.next_attempt(
            due,
            self.claim.as_ref().map(|c| c.valid_until),
            &self.settings.timing,
        )
    }

    /// Whether an attempt must read the lock before deciding.
    fn must_read(&self) -> bool {
        if self.known.is_none() {
            return true;
        }
        self.claim.is_none() && (self.settings.follow == FollowMode::Poll || !self.watch_up)
    }

    /// The time one API call may take: for a leader half the renew deadline, and never past
    /// its claim; for a follower what is left of the attempt's renew deadline (a write answered
    /// later than that could not make it leader). See [`pacing::call_timeout`].
    fn call_timeout(&self, now: Instant) -> Duration {
        pacing::call_timeout(
            now,
            self.claim.as_ref().map(|c| c.valid_until),
            self.attempt_deadline,
            &self.settings.timing,
        )
    }

    /// One round of client-go's `tryAcquireOrRenew`.
    async fn attempt(&mut self) {
        let timing = self.settings.timing;
        self.attempt_deadline = later(Instant::now(), timing.attempt_budget());
        self.conflicted = false;
        match &mut self.claim {
            // The leader renews every retry period, counted from the start of each attempt.
            Some(claim) => claim.last_attempt = Instant::now(),
            None => self.poll_due = later(Instant::now(), timing.jittered_retry(rand::random::<f64>())),
        }
        if self.must_read()
            && let Err(error) = self.read().await
        {
            return self.failed(error, None);
        }
        // A fast write, then at most a couple of reads after conflicts: bounded, never a spin.
        for _ in 0..3 {
            let now = Instant::now();
            if let Some(claim) = &self.claim
                && !claim.is_valid_at(self.boot.read())
            {
                return self.step_down("renew deadline passed without a successful renewal");
            }
            match decide(self.known.as_ref(), &self.me, now, self.wall.now(), &timing) {
                Decision::Read => {
                    if let Err(error) = self.read().await {
                        return self.failed(error, None);
                    }
                }
                Decision::WaitUntil(_) => {
                    if self.claim.is_some() {
                        self.step_down("another holder has the lock");
                    }
                    return self.succeeded();
                }
                Decision::Create(record) => {
                    let sent = self.boot.read();
                    self.note_takeover(sent.monotonic);
                    self.write_in_flight = true;
                    let result = self.lock.create(&record, self.call_timeout(sent.monotonic)).await;
                    self.write_in_flight = false;
                    match result {
                        Ok(snapshot) => return self.wrote(snapshot, sent),
                        Err(error) if error.is_already_exists() => {
                            if let Err(error) = self.read().await {
                                return self.failed(error, None);
                            }
                        }
                        Err(error) => return self.failed(error, Some(sent.monotonic)),
                    }
                }
                Decision::Claim(record) => {
                    let Some(object) = self.object.clone() else {
                        if let Err(error) = self.read().await {
                            return self.failed(error, None);
                        }
                        continue;
                    };
                    let sent = self.boot.read();
                    self.note_takeover(sent.monotonic);
                    self.write_in_flight = true;
                    let result = self
                        .lock
                        .update(&object, &record, self.call_timeout(sent.monotonic))
                        .await;
                    self.write_in_flight = false;
                    match result {
                        Ok(snapshot) => return self.wrote(snapshot, sent),
                        Err(error) if error.is_not_found() => {
                            // Deleted under us: whoever held it, its lease is waited out as if
                            // the record still stood (see `decide`).
                            tracing::info!(identity = %self.settings.identity, "the lock was deleted");
                            self.absorb(None, None, None);
                        }
                        Err(error) if error.is_conflict() => {
                            self.conflicted = true;
                            if self.claim.is_some() {
                                self.metrics.slowpath();
                                self.metrics.renew(RenewResult::Failure, sent.monotonic.elapsed());
                            }
                            tracing::debug!(%error, "write lost a race; reading the lock again");
                            if let Err(error) = self.read().await {
                                return self.failed(error, None);
                            }
                        }
                        Err(error) => return self.failed(error, Some(sent.monotonic)),
                    }
                }
            }
        }
        // Every write of this attempt lost a race: that is a failure for pacing, not a success.
        self.gave_up_after_conflicts();
    }

    /// A write sent at `sent` may take the lock: when it is a takeover of a lock with no past,
    /// no claim leads before [`leads_from`].
    fn note_takeover(&mut self, sent: Instant) {
        if self.claim.is_none()
            && let Some(known) = &self.known
        {
            let from = leads_from(known, sent, self.settings.timing.lease_duration);
            self.not_before = self.not_before.max(from);
        }
    }

    /// Reads the lock and folds it into what is known.
    async fn read(&mut self) -> Result<(), LockError> {
        let snapshot = self.lock.get(self.call_timeout(Instant::now())).await?;
        match snapshot {
            Some(snapshot) => self.absorb_snapshot(snapshot),
            None => self.absorb(None, None, None),
        }
        Ok(())
    }

    /// A write (create or update) sent at `sent` succeeded: the lock is ours.
    fn wrote(&mut self, snapshot: Snapshot<K>, sent: Reading) {
        let timing = self.settings.timing;
        let reading = self.boot.read();
        let now = reading.monotonic;
        let wall = self.wall.now();
        self.last_renew = Some(wall);
        let record = snapshot.record.clone();
        self.written = Some(record.clone());
        match &mut self.claim {
            Some(claim) if claim.is_valid_at(reading) => {
                claim.renewed(sent, &timing);
                self.metrics.renew(
                    RenewResult::Success,
                    now.saturating_duration_since(sent.monotonic),
                );
            }
            _ => {
                if self.claim.is_some() {
                    self.step_down("renew deadline passed before the renewal was answered");
                }
                let won = Claim::won(&record, wall, sent, reading, &timing, self.not_before);
                let Some(claim) = won else {
                    tracing::info!(
                        identity = %self.settings.identity,
                        answered_after = ?now.saturating_duration_since(sent.monotonic),
                        "the lock was written but answered after the renew deadline; not leading on that write"
                    );
                    self.absorb_snapshot(snapshot);
                    return self.succeeded();
                };
                if claim.leads_from > now {
                    tracing::info!(
                        identity = %self.settings.identity,
                        fencing_token = claim.fencing_token,
                        leads_in_ms = u64::try_from((claim.leads_from - now).as_millis()).unwrap_or(u64::MAX),
                        "took a lock with no past; holding it for a lease before leading"
                    );
                }
                self.claim = Some(claim);
            }
        }
        self.absorb_snapshot(snapshot);
        self.begin_leading();
        self.succeeded();
    }

    /// Starts leading on the claim held, once it is due (see [`Claim::begins_leading`]).
    fn begin_leading(&mut self) {
        let reading = self.boot.read();
        let wall = self.wall.now();
        let Some(claim) = self.claim.as_mut().filter(|c| c.begins_leading(reading)) else {
            return;
        };
        claim.leading = true;
        claim.since = wall;
        self.acquired_total += 1;
        tracing::info!(
            identity = %self.settings.identity,
            election = %self.lock.name(),
            fencing_token = claim.fencing_token,
            monotonic_ns = %monotonic_ns(reading.monotonic),
            valid_until_monotonic_ns = %monotonic_ns(claim.valid_until),
            "became leader"
        );
        if let Some(object) = self.object.clone() {
            self.record_event(Leadership::Became, &object);
        }
    }

    /// The attempt went through. A conflict earlier in it keeps the backoff where it was.
    fn succeeded(&mut self) {
        self.backoff.went_through(self.conflicted);
        self.last_error = None;
    }

    fn failed(&mut self, error: LockError, sent: Option<Instant>) {
        let now = Instant::now();
        if let (Some(sent), Some(_)) = (sent, &self.claim) {
            self.metrics
                .renew(RenewResult::Failure, now.saturating_duration_since(sent));
        }
        let wait = self.backoff.failed(
            now,
            &self.settings.timing,
            error.retry_after(),
            rand::random::<f64>(),
        );
        tracing::warn!(
            identity = %self.settings.identity,
            %error,
            leader = self.claim.is_some(),
            failures = self.backoff.failures(),
            retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "election step failed"
        );
        self.last_error = Some(error.to_string());
    }

    /// Every write of an attempt lost a race (409): back off as after a failure.
    fn gave_up_after_conflicts(&mut self) {
        let wait = self
            .backoff
            .failed(Instant::now(), &self.settings.timing, None, rand::random::<f64>());
        tracing::debug!(
            identity = %self.settings.identity,
            failures = self.backoff.failures(),
            retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "every write of this attempt lost a race; backing off"
        );
    }

    /// Stops claiming leadership (or, before leading, stops holding the lock).
    fn step_down(&mut self, reason: &str) {
        let Some(claim) = self.claim.take() else { return };
        if !claim.leading {
            tracing::info!(identity = %self.settings.identity, reason, "gave up the lock before leading on it");
            return self.publish();
        }
        self.lost_total += 1;
        tracing::info!(
            identity = %self.settings.identity,
            election = %self.lock.name(),
            fencing_token = claim.fencing_token,
            monotonic_ns = %monotonic_ns(Instant::now()),
            valid_until_monotonic_ns = %monotonic_ns(claim.valid_until),
            reason,
            "stopped leading"
        );
        if let Some(object) = self.object.clone() {
            self.record_event(Leadership::Stopped, &object);
        }
        // Readers must not see the claim a moment longer than the log says it lasted.
        self.publish();
    }

    fn on_watch(&mut self, news: WatchNews<K>) {
        match news {
            WatchNews::Connected => {
                if !self.watch_up && self.watch_lost {
                    tracing::info!(identity = %self.settings.identity, "watch on the lock is back; polling stops");
                }
                self.watch_up = true;
            }
            WatchNews::Lost(reason) => {
                if self.watch_up || !self.watch_lost {
                    tracing::warn!(identity = %self.settings.identity, %reason, "watch on the lock lost; polling until it is back");
                }
                self.watch_up = false;
                self.watch_lost = true;
            }
            WatchNews::Changed(Change::Present(snapshot)) => self.absorb_snapshot(snapshot),
            WatchNews::Changed(Change::Deleted(version, last_token)) => {
                // The last state of the object may be newer than what this process saw.
                if let Some(known) = &mut self.known
                    && freshness(Some(known), version.as_deref()) == Freshness::Changed
                {
                    known.highest_token = known.highest_token.max(last_token);
                }
                self.absorb(None, None, version)
            }
            WatchNews::Changed(Change::Bookmark(_)) => {}
        }
    }

    fn absorb_snapshot(&mut self, snapshot: Snapshot<K>) {
        let version = snapshot.resource_version();
        self.absorb(Some(snapshot.object), Some(snapshot.record), version);
    }

    /// Folds a version of the lock (or its absence) into what is known, keeping the object for
    /// the next write, counting holder changes, and stepping down if someone else now holds it.
    fn absorb(&mut self, object: Option<K>, record: Option<LeaderRecord>, version: Option<String>) {
        let now = Instant::now();
        let freshness = freshness(self.known.as_ref(), version.as_deref());
        if freshness == Freshness::Stale {
            return;
        }
        if freshness == Freshness::Unchanged && self.known.as_ref().is_some_and(|k| k.record == record) {
            return;
        }
        let previous = self.known.as_ref().map(|k| k.holder().map(str::to_owned));
        let previous_record = self.known.as_ref().and_then(|k| k.record.clone());
        let own = self.settings.timing.lease_duration;
        self.known = Some(observe(self.known.take(), record, version, now, own));
        if freshness == Freshness::Changed || self.object.is_none() {
            self.object = object;
        }
        let current = self.known.as_ref().and_then(|k| k.record.clone());
        self.check_identity(previous_record.as_ref(), current.as_ref());
        let holder = self.known.as_ref().and_then(|k| k.holder().map(str::to_owned));
        if let Some(previous) = previous
            && previous != holder
        {
            self.leader_changes_total += 1;
            tracing::info!(
                identity = %self.settings.identity,
                leader = holder.as_deref().unwrap_or(""),
                previous = previous.as_deref().unwrap_or(""),
                "observed a new leader"
            );
        }
        if self.claim.is_some() && current != self.written {
            let reason = match &current {
                None => "the lock was deleted",
                Some(record) if record.holding() == Holding::Free => "the lock's record was removed",
                Some(record) if record.holder() != Some(self.settings.identity.as_str()) => {
                    "the lock now names another holder"
                }
                Some(_) => "the lock holds a record this process did not write",
            };
            self.step_down(reason);
        }
    }

    /// Notices another live process holding the lock under this identity: a record naming this
    /// identity with another incarnation that is renewed (so its writer is alive), or that
    /// replaced this process's own. Reported once per other incarnation in the log, an Event and
    /// the metrics, and in the published state while it lasts.
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
        self.identity_conflicts_total += 1;
        tracing::warn!(
            identity = %self.settings.identity,
            incarnation = %self.me.incarnation,
            other_incarnation = %other,
            "another live process holds the lock under this identity; this one will not lead while it does \
             (give every candidate its own --id)"
        );
        if let Some(object) = self.object.clone() {
            self.record_event(Leadership::IdentityConflict, &object);
        }
        self.conflict = Some(other);
    }

    fn record_event(&mut self, what: Leadership, object: &K) {
        let Some(recorder) = &self.recorder else { return };
        let lock = LockRef {
            api_version: K::api_version(&()).into_owned(),
            kind: K::kind(&()).into_owned(),
            namespace: self.lock.namespace().to_owned(),
            name: self.lock.name().to_owned(),
            uid: object.meta().uid.clone(),
        };
        self.last_event = Some(recorder.record(what, lock, self.wall.now()));
    }

    /// Publishes what the loop knows now.
    fn publish(&self) {
        let now = Instant::now();
        let claim = self.claim.as_ref().filter(|c| c.leading);
        self.state.send_replace(LeaderState {
            identity: self.settings.identity.clone(),
            claims_leadership: claim.is_some(),
            leader: self.known.as_ref().and_then(|k| k.holder().map(str::to_owned)),
            fencing_token: claim.map(|c| c.fencing_token),
            leader_since: claim.map(|c| c.since),
            valid_until: claim.map(|c| c.valid_until),
            valid_until_boot: claim.map(|c| c.valid_until_boot),
            boot_clock: self.boot.clone(),
            observed_transitions: self
                .known
                .as_ref()
                .and_then(|k| k.record.as_ref())
                .map(LeaderRecord::fencing_token),
            last_error: self.last_error.clone(),
            last_progress: now,
            acquired_total: self.acquired_total,
            lost_total: self.lost_total,
            observed_leader_changes_total: self.leader_changes_total,
            last_renew: self.last_renew,
            shutting_down: false,
            incarnation: self.me.incarnation.clone(),
            identity_conflict: self.conflict.clone(),
            identity_conflicts_total: self.identity_conflicts_total,
        });
    }

    /// Stops competing and, if leader, lets go of the lock so another candidate takes over at
    /// once instead of after a lease duration. Leadership is withdrawn first: from here on the
    /// process never answers "leader", whatever the API server says. The release waits for the
    /// release gate (leader file and pod label caught up) and for the release delay, counted
    /// from the step-down; if the gate is not open by the shutdown timeout, there is no release
    /// and others take over when the lease expires. A lock held without leading on it yet (taken
    /// with no past, see [`leads_from`]) is not released either.
    async fn shut_down(mut self) {
        let stepped_down = Instant::now();
        let deadline = later(stepped_down, self.settings.shutdown_timeout);
        let held = self.claim.as_ref().is_some_and(|c| c.leading);
        // A lock taken with no past, not yet led on (or such a take in flight), is not released:
        // others take a released lock at once, and the hazard its wait covers may still be
        // there. They take it over when its lease runs out.
        let waiting_to_lead =
            self.claim.as_ref().is_some_and(|c| !c.leading) || stepped_down < self.not_before;
        self.step_down("shutting down");
        self.state.send_modify(|state| {
            state.claims_leadership = false;
            state.valid_until = None;
            state.valid_until_boot = None;
            state.shutting_down = true;
            state.lost_total = self.lost_total;
        });
        if self.settings.release_on_shutdown && waiting_to_lead {
            tracing::info!(
                identity = %self.settings.identity,
                "held the lock without leading on it yet; not releasing (others take it over when its lease runs out)"
            );
        } else if self.settings.release_on_shutdown && (held || self.write_in_flight) {
            let release_at = later(stepped_down, self.settings.release_delay);
            let gate = self.settings.release_gate.clone();
            let settled = tokio::time::timeout_at(deadline, async {
                gate.opened().await;
                tokio::time::sleep_until(release_at).await;
            })
            .await;
            if settled.is_err() {
                tracing::warn!(
                    timeout = ?self.settings.shutdown_timeout,
                    "the leader file and pod label did not settle within the shutdown timeout; not \
                     releasing, others take over when the lease expires"
                );
                if let Some(event) = self.last_event.take() {
                    event.abort();
                }
                return;
            }
            match tokio::time::timeout_at(deadline, self.release(held)).await {
                Ok(Ok(true)) => tracing::info!(identity = %self.settings.identity, "released the lock"),
                Ok(Ok(false)) => {
                    tracing::info!(identity = %self.settings.identity, "the lock is not ours; nothing to release")
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "could not release the lock; others take over when it expires")
                }
                Err(_) => tracing::warn!(
                    timeout = ?self.settings.shutdown_timeout,
                    "releasing the lock timed out; others take over when it expires"
                ),
            }
        }
        if let Some(event) = self.last_event.take() {
            let _ = tokio::time::timeout_at(deadline, event).await;
        }
    }

    /// Writes the released record: from the cached object when we knew we held the lock, with
    /// one retry from a fresh read after a conflict, and only while the lock still names us.
    async fn release(&mut self, held: bool) -> Result<bool, LockError> {
        let timeout = self.settings.shutdown_timeout;
        let mut fresh = !held;
        if fresh {
            self.read_for_release(timeout).await?;
        }
        loop {
            let (Some(known), Some(object)) = (&self.known, &self.object) else {
                return Ok(false);
            };
            let Some(record) = known.record.as_ref().filter(|r| self.me.holds(r)) else {
                return Ok(false);
            };
            let released = record.released(self.wall.now());
            match self.lock.update(object, &released, timeout).await {
                Ok(_) => return Ok(true),
                Err(error) if error.is_conflict() && !fresh => {
                    fresh = true;
                    self.read_for_release(timeout).await?;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn read_for_release(&mut self, timeout: Duration) -> Result<(), LockError> {
        match self.lock.get(timeout).await? {
            Some(snapshot) => {
                self.known = Some(Observed::new(
                    Some(snapshot.record.clone()),
                    snapshot.resource_version(),
                    Instant::now(),
                ));
                self.object = Some(snapshot.object);
            }
            None => {
                self.known = None;
                self.object = None;
            }
        }
        Ok(())
    }
}

/// Keeps a watch open on the lock and reports what it sees; resumes from the last
/// resourceVersion after the server ends a watch, starts over from the current state after
/// `410 Gone`, and backs off (reporting the loss, so the loop polls) when the watch fails.
async fn watch_lock<K: LockObject>(lock: KubeLock<K>, timing: Timing, news: mpsc::Sender<WatchNews<K>>) {
    let mut version = String::new();
    let mut backoff = timing.retry_period;
    let max_backoff = timing.lease_duration.max(timing.retry_period);
    loop {
        let server_timeout = WATCH_SERVER_TIMEOUT.mul_f64(1.0 - rand::random::<f64>() * 0.1);
        let opened = Instant::now();
        let failure = match lock.watch(&version, server_timeout, timing.renew_deadline).await {
            Err(error) => Some(error.to_string()),
            Ok(mut stream) => {
                if news.send(WatchNews::Connected).await.is_err() {
                    return;
                }
                backoff = timing.retry_period;
                let mut failure = None;
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(change) => {
                            match &change {
                                Change::Present(snapshot) => {
                                    version = snapshot.resource_version().unwrap_or_default()
                                }
                                Change::Deleted(Some(v), _) | Change::Bookmark(v) => version = v.clone(),
                                Change::Deleted(None, _) => {}
                            }
                            if news.send(WatchNews::Changed(change)).await.is_err() {
                                return;
                            }
                        }
                        Err(WatchError::Expired(reason)) => {
                            tracing::debug!(%reason, "watch expired; starting over from the current state");
                            version.clear();
                            break;
                        }
                        Err(WatchError::Failed(reason)) => {
                            failure = Some(reason);
                            break;
                        }
                    }
                }
                // A server ends a healthy watch only at its timeout; one that ends much sooner
                // is treated as a failure so a flapping connection cannot make this spin.
                if failure.is_none() && !version.is_empty() && opened.elapsed() < server_timeout / 2 {
                    failure = Some("the server closed the watch early".to_owned());
                }
                failure
            }
        };
        if let Some(reason) = failure {
            if news.send(WatchNews::Lost(reason)).await.is_err() {
                return;
            }
            tokio::time::sleep(backoff.mul_f64(1.0 + rand::random::<f64>() * super::JITTER_FACTOR)).await;
            backoff = backoff.saturating_mul(2).min(max_backoff);
        }
    }
}
