//! The election loop's async shell: the I/O, the timers and the channels around
//! [`Election`], which holds the state and makes every decision.
//!
//! One task owns the truth. It waits in a single `select!` on, in order of priority: shutdown,
//! the end of its own claim's validity, the moment a claim taken with no past begins to lead,
//! news from the [watch](super::watch) on the lock, and the time of its next attempt. An attempt
//! is client-go's `tryAcquireOrRenew`: the leader writes straight from its cached record (the
//! fast path) and reads again only after a conflict (the slow path, counted); a follower reads
//! first when it polls, or writes straight from what its watch showed it. Each call has the
//! timeout the state allows ([`super::pacing`]). After every step the shell carries out the
//! state's [`Effect`]s in order (log lines, transition counters, Events, renew metrics; a
//! step-down is published at once) and publishes a [`LeaderState`] on the watch channel.
//!
//! Followers in [`FollowMode::Watch`] make no requests in steady state: the watch tells them of
//! every renewal, a release is acted on as it arrives and an expiry when the observed lease
//! runs out, each after the delay [`super::takeover`] draws (a winner seen in the watch
//! meanwhile cancels the attempt). When the watch is down they poll every jittered retry period
//! until it is back. [`FollowMode::Poll`] is client-go's behaviour, kept as a baseline and an option.
//!
//! Shutdown: the claim is withdrawn and published first (`/readyz` answers 503), then the loop
//! waits for the [release gate](Settings::release_gate) (the leader file removed, the pod label
//! reset) and for [`Settings::release_delay`] to pass since the step-down, and only then writes
//! the release; all of it within [`Settings::shutdown_timeout`].

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use super::candidacy::Candidacy;
use super::decide::Me;
use super::events::{Leadership, LockRef, Recorder};
use super::lock::{Change, Error as LockError, KubeLock, LockObject, Snapshot};
use super::record::LeaderRecord;
use super::state::{Effect, Election, Step, StepDown, Withdrawal};
use super::watch::{WatchNews, watch_lock};
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
    /// The address published with every claim (see [`super::record::ADDRESS_ANNOTATION`]).
    pub advertise_address: Option<String>,
    /// The lease duration, renew deadline and retry period.
    pub timing: Timing,
    /// How a follower learns of changes to the lock: watching it or polling it.
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
    /// Whether this process may stand for election; [`Candidacy::always`] when nothing gates it.
    pub candidacy: Candidacy,
    /// Open while what follows the published state says follower: a leader withdrawn from
    /// candidacy releases the lock (with `release_on_shutdown`) once it is open and
    /// `release_delay` has passed, as at shutdown; all within `shutdown_timeout`.
    pub step_down_gate: ReleaseGate,
}

/// A gate the release waits for: open by default; [`ReleaseGate::pair`] makes one that opens
/// when its [`GateOpener`] is told to, or dropped; [`ReleaseGate::while_false`] one that is open
/// while a flag is false; [`ReleaseGate::and`] one open when both are.
#[derive(Clone, Debug, Default)]
pub struct ReleaseGate(Vec<(tokio::sync::watch::Receiver<bool>, bool)>);

/// Opens a [`ReleaseGate`].
#[derive(Debug)]
pub struct GateOpener(tokio::sync::watch::Sender<bool>);

impl ReleaseGate {
    /// A closed gate and its opener.
    pub fn pair() -> (GateOpener, ReleaseGate) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (GateOpener(tx), ReleaseGate(vec![(rx, true)]))
    }

    /// A gate open while `flag` is false (such as "the pod label may still say leader"), or
    /// once its sender is gone.
    pub fn while_false(flag: tokio::sync::watch::Receiver<bool>) -> Self {
        Self(vec![(flag, false)])
    }

    /// A gate open when both `self` and `other` are.
    pub fn and(mut self, other: ReleaseGate) -> Self {
        self.0.extend(other.0);
        self
    }

    /// Completes once the gate is open (or its opener is gone).
    pub async fn opened(&self) {
        // Each in turn: one that opens meanwhile is seen open when its turn comes; a flag that
        // is open now is not re-checked (outputs do not go back to leader after a step-down).
        for (rx, open) in &self.0 {
            let mut rx = rx.clone();
            let _ = rx.wait_for(|value| value == open).await;
        }
    }
}

impl GateOpener {
    /// Opens the gate, letting a waiting release go ahead; opening it again does nothing.
    pub fn open(&self) {
        let _ = self.0.send(true);
    }
}

/// The election loop for one lock of kind `K`.
pub struct Driver<K: LockObject> {
    lock: KubeLock<K>,
    settings: Settings,
    wall: WallClock,
    boot: BootClock,
    state: StateSender,
    metrics: ElectionMetrics,
    recorder: Option<Recorder>,
    /// Everything the loop knows and decides; this shell only feeds it and carries out its
    /// effects.
    election: Election<K>,
    /// A write whose outcome is unknown because it was interrupted (by shutdown).
    write_in_flight: bool,
    /// A release after a withdrawal from candidacy has not been written yet (shutdown finishes it).
    release_pending: bool,
    last_event: Option<JoinHandle<()>>,
}

impl<K: LockObject> Driver<K> {
    /// A loop on `lock` that publishes to `state`, counts in `metrics` and records Events with
    /// `recorder` when given; draws this process's incarnation from the pod UID and `wall`.
    /// Nothing runs until [`Driver::run`].
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
            address: settings.advertise_address.clone(),
        };
        let election = Election::new(me, settings.timing, settings.follow, Instant::now());
        Self {
            lock,
            settings,
            wall,
            boot: BootClock::system(),
            state,
            metrics,
            recorder,
            election,
            write_in_flight: false,
            release_pending: false,
            last_event: None,
        }
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
            incarnation = %self.election.me().incarnation,
            lock = %format!("{}/{}", self.lock.kind(), self.lock.name()),
            namespace = %self.lock.namespace(),
            follow = %self.settings.follow,
            lease_duration = ?timing.lease_duration,
            renew_deadline = ?timing.renew_deadline,
            retry_period = ?timing.retry_period,
            "election starting"
        );
        let mut candidacy = self.settings.candidacy.clone();
        self.stand(candidacy.may_stand(), &mut shutdown).await;
        self.publish(false);
        loop {
            let now = Instant::now();
            let wake = self.election.next_attempt(now, self.wall.now());
            let lapse = self.election.lapse();
            let pending = self.election.pending();
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = sleep_until(lapse.unwrap_or(now)), if lapse.is_some() => {
                    self.election.step_down(StepDown::DeadlinePassed, Instant::now());
                }
                () = sleep_until(pending.unwrap_or(now)), if pending.is_some() => {
                    self.election.begin_leading(self.boot.read(), self.wall.now());
                }
                may_stand = candidacy.changed() => {
                    if !self.stand(may_stand, &mut shutdown).await {
                        break;
                    }
                }
                news = news_rx.recv(), if watching => match news {
                    Some(news) => self.on_watch(news),
                    None => {
                        // The watch task is gone for good: poll from now on.
                        tracing::warn!(identity = %self.settings.identity, "watch task ended; polling");
                        watching = false;
                        self.election.watch_ended();
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
            self.carry_out();
            self.publish(false);
        }
        let follow = watcher.map(|watcher| (watcher, news_rx));
        self.shut_down(follow).await;
    }

    /// Stands for election (`may_stand`) or withdraws; a leader withdrawn steps down, publishes
    /// it, and releases as at shutdown (gate, delay, timeout). Returns false if `shutdown` came
    /// first (the shutdown then finishes the release).
    async fn stand(&mut self, may_stand: bool, shutdown: &mut (impl Future<Output = ()> + Unpin)) -> bool {
        let was = self.election.standing();
        let stepped_down = Instant::now();
        let withdrawal = self.election.set_standing(may_stand, stepped_down);
        self.carry_out();
        if was != self.election.standing() {
            if may_stand {
                tracing::info!(identity = %self.settings.identity, "standing for election");
            } else {
                tracing::info!(identity = %self.settings.identity, "not standing for election");
            }
        }
        match withdrawal {
            Withdrawal::Nothing => true,
            Withdrawal::KeepUntilExpiry => {
                tracing::info!(
                    identity = %self.settings.identity,
                    "withdrawn while holding a lock taken with no past, not led on yet; not releasing \
                     (others take it over when its lease runs out)"
                );
                true
            }
            Withdrawal::Release if !self.settings.release_on_shutdown => true,
            Withdrawal::Release => {
                self.release_pending = true;
                let gate = self.settings.step_down_gate.clone();
                tokio::select! {
                    biased;
                    () = shutdown => return false,
                    _ = self.settle_and_release(stepped_down, gate, true) => {}
                }
                self.release_pending = false;
                true
            }
        }
    }

    /// Waits for `gate` and the release delay, counted from `stepped_down`, then writes the
    /// release; all within the shutdown timeout. Returns false if the gate did not open in time
    /// (nothing was written).
    async fn settle_and_release(&mut self, stepped_down: Instant, gate: ReleaseGate, held: bool) -> bool {
        let deadline = later(stepped_down, self.settings.shutdown_timeout);
        let release_at = later(stepped_down, self.settings.release_delay);
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
            return false;
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
        true
    }

    /// One round of client-go's `tryAcquireOrRenew`: the I/O, with [`Election`] deciding.
    async fn attempt(&mut self) {
        self.election.begin_attempt(Instant::now(), rand::random::<f64>());
        if self.election.must_read()
            && let Err(error) = self.read().await
        {
            return self.failed(error, None);
        }
        // A fast write, then at most a couple of reads after conflicts: bounded, never a spin.
        for _ in 0..3 {
            let step = self.election.next_step(self.boot.read(), self.wall.now());
            self.carry_out();
            match step {
                Step::Done => return,
                Step::Read => {
                    if let Err(error) = self.read().await {
                        return self.failed(error, None);
                    }
                }
                Step::Create(record) => {
                    let sent = self.boot.read();
                    self.election.note_takeover(sent.monotonic);
                    self.write_in_flight = true;
                    let timeout = self.election.call_timeout(sent.monotonic);
                    let result = self.lock.create(&record, timeout).await;
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
                Step::Update(object, record) => {
                    let sent = self.boot.read();
                    self.election.note_takeover(sent.monotonic);
                    self.write_in_flight = true;
                    let timeout = self.election.call_timeout(sent.monotonic);
                    let result = self.lock.update(&object, &record, timeout).await;
                    self.write_in_flight = false;
                    match result {
                        Ok(snapshot) => return self.wrote(snapshot, sent),
                        Err(error) if error.is_not_found() => {
                            // Deleted under us: whoever held it, its lease is waited out as if
                            // the record still stood (see `decide`).
                            tracing::info!(identity = %self.settings.identity, "the lock was deleted");
                            self.election.absorb(None, None, None, Instant::now());
                            self.carry_out();
                        }
                        Err(error) if error.is_conflict() => {
                            self.election.write_conflicted(sent.monotonic, Instant::now());
                            self.carry_out();
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
        self.election
            .gave_up_after_conflicts(Instant::now(), rand::random::<f64>());
        self.carry_out();
    }

    /// Reads the lock and folds it into what is known.
    async fn read(&mut self) -> Result<(), LockError> {
        let snapshot = self.lock.get(self.election.call_timeout(Instant::now())).await?;
        match snapshot {
            Some(snapshot) => self.absorb_snapshot(snapshot),
            None => self.election.absorb(None, None, None, Instant::now()),
        }
        self.carry_out();
        Ok(())
    }

    /// A write (create or update) sent at `sent` succeeded.
    fn wrote(&mut self, snapshot: Snapshot<K>, sent: Reading) {
        let version = snapshot.resource_version();
        let now = self.boot.read();
        let wall = self.wall.now();
        self.election
            .wrote(snapshot.object, snapshot.record, version, sent, now, wall);
        self.carry_out();
    }

    fn failed(&mut self, error: LockError, sent: Option<Instant>) {
        self.election.failed(
            error.to_string(),
            error.retry_after(),
            sent,
            Instant::now(),
            rand::random::<f64>(),
        );
        self.carry_out();
    }

    fn on_watch(&mut self, news: WatchNews<K>) {
        match news {
            WatchNews::Connected => self.election.watch_connected(),
            WatchNews::Lost(reason) => self.election.watch_lost(reason),
            WatchNews::Changed(Change::Present(snapshot)) => self.absorb_snapshot(snapshot),
            WatchNews::Changed(Change::Deleted(version, last_token)) => {
                self.election.absorb_deleted(version, last_token, Instant::now())
            }
            WatchNews::Changed(Change::Bookmark(_)) => {}
        }
    }

    fn absorb_snapshot(&mut self, snapshot: Snapshot<K>) {
        let version = snapshot.resource_version();
        self.election.absorb(
            Some(snapshot.object),
            Some(snapshot.record),
            version,
            Instant::now(),
        );
    }

    /// Does what the election's last steps asked for: publish, log, count, record Events.
    fn carry_out(&mut self) {
        let identity = self.settings.identity.clone();
        for effect in self.election.take_effects() {
            match effect {
                Effect::SteppedDown {
                    reason,
                    leading: false,
                    ..
                } => {
                    tracing::info!(%identity, %reason, "gave up the lock before leading on it");
                    self.publish(true);
                }
                Effect::SteppedDown {
                    reason,
                    leading: true,
                    fencing_token,
                    valid_until,
                    at,
                } => {
                    self.metrics.stopped_leading();
                    self.log_transition("stopped leading", fencing_token, at, valid_until, Some(reason));
                    // Readers must not see the claim a moment longer than the log says it lasted.
                    self.publish(true);
                }
                Effect::BecameLeader {
                    fencing_token,
                    valid_until,
                    at,
                } => {
                    self.metrics.became_leader();
                    self.log_transition("became leader", fencing_token, at, valid_until, None);
                }
                Effect::HoldingBeforeLeading {
                    fencing_token,
                    leads_in,
                } => tracing::info!(
                    %identity,
                    fencing_token,
                    leads_in_ms = millis(leads_in),
                    "took a lock with no past; holding it for a lease before leading"
                ),
                Effect::AnsweredLate { after } => tracing::info!(
                    %identity,
                    answered_after = ?after,
                    "the lock was written but answered after the renew deadline; not leading on that write"
                ),
                Effect::LeaderChanged { previous, leader } => {
                    self.metrics.observed_leader_change();
                    tracing::info!(
                        %identity,
                        leader = leader.as_deref().unwrap_or(""),
                        previous = previous.as_deref().unwrap_or(""),
                        "observed a new leader"
                    );
                }
                Effect::IdentityConflict { other } => {
                    self.metrics.identity_conflict_detected();
                    tracing::warn!(
                        %identity,
                        incarnation = %self.election.me().incarnation,
                        other_incarnation = %other,
                        "another live process holds the lock under this identity; this one will not lead \
                         while it does (give every candidate its own --id)"
                    );
                }
                Effect::Event { what, object } => self.record_event(what, &object),
                Effect::Renewed { elapsed } => self.metrics.renew(RenewResult::Success, elapsed),
                Effect::RenewFailed { elapsed } => self.metrics.renew(RenewResult::Failure, elapsed),
                Effect::SlowPath => self.metrics.slowpath(),
                Effect::Failed {
                    error,
                    leader,
                    failures,
                    retry_in,
                } => tracing::warn!(
                    %identity,
                    %error,
                    leader,
                    failures,
                    retry_in_ms = millis(retry_in),
                    "election step failed"
                ),
                Effect::GaveUpAfterConflicts { failures, retry_in } => tracing::debug!(
                    %identity,
                    failures,
                    retry_in_ms = millis(retry_in),
                    "every write of this attempt lost a race; backing off"
                ),
                Effect::WatchBack => {
                    tracing::info!(%identity, "watch on the lock is back; polling stops")
                }
                Effect::WatchLost { reason } => tracing::warn!(
                    %identity,
                    %reason,
                    "watch on the lock lost; polling until it is back"
                ),
            }
        }
    }

    /// Logs a change of this process's leadership, with the monotonic times by which the logs of
    /// several processes on one machine are compared.
    fn log_transition(
        &self,
        message: &'static str,
        fencing_token: u64,
        at: Instant,
        valid_until: Instant,
        reason: Option<StepDown>,
    ) {
        tracing::info!(
            identity = %self.settings.identity,
            election = %self.lock.name(),
            fencing_token,
            monotonic_ns = %monotonic_ns(at),
            valid_until_monotonic_ns = %monotonic_ns(valid_until),
            reason = reason.map(StepDown::as_str),
            message,
        );
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

    /// Publishes what the loop knows now; `stepped_down` leaves out any claim (one won right
    /// after a step-down is published by the next call).
    fn publish(&self, stepped_down: bool) {
        let election = &self.election;
        let mut state = LeaderState::new(self.settings.identity.clone(), Instant::now());
        state.leader = election.leader().map(str::to_owned);
        state.leader_address = election.leader_address().map(str::to_owned);
        state.boot_clock = self.boot.clone();
        state.observed_transitions = election
            .known()
            .and_then(|k| k.record.as_ref())
            .map(LeaderRecord::fencing_token);
        state.last_error = election.last_error().map(str::to_owned);
        state.last_renew = election.last_renew();
        state.incarnation = election.me().incarnation.clone();
        state.identity_conflict = election.conflict().map(str::to_owned);
        state.candidate = election.standing();
        if let Some(claim) = election.leading_claim().filter(|_| !stepped_down) {
            state.lead(
                claim.fencing_token,
                claim.since,
                claim.valid_until,
                Some(claim.valid_until_boot),
            );
        }
        self.state.send_replace(state);
    }

    /// Stops competing and, if leader, lets go of the lock so another candidate takes over at
    /// once instead of after a lease duration. Leadership is withdrawn first: from here on the
    /// process never answers "leader", whatever the API server says. The release waits for the
    /// release gate (leader file and pod label caught up) and for the release delay, counted
    /// from the step-down; if the gate is not open by the shutdown timeout, there is no release
    /// and others take over when the lease expires. A lock held without leading on it yet (taken
    /// with no past, see [`leads_from`]) is not released either.
    ///
    /// With an advertised address (the sidecar's proxy), a leader that released keeps following
    /// the lock (the watch, `follow`) until it names a successor, for at most two retry periods and
    /// within the shutdown timeout, and publishes it: requests still waiting at this process's
    /// proxy go to the new leader.
    async fn shut_down(mut self, mut follow: Option<(JoinHandle<()>, mpsc::Receiver<WatchNews<K>>)>) {
        let stepped_down = Instant::now();
        let deadline = later(stepped_down, self.settings.shutdown_timeout);
        let held = self.election.leading_claim().is_some();
        // A lock taken with no past, not yet led on (or such a take in flight), is not released:
        // others take a released lock at once, and the hazard its wait covers may still be
        // there. They take it over when its lease runs out.
        let waiting_to_lead = self.election.waiting_to_lead(stepped_down);
        self.election.step_down(StepDown::ShuttingDown, stepped_down);
        self.carry_out();
        self.state.send_modify(LeaderState::shut_down);
        // The shutdown timeout ran out before the release (the gate stayed shut).
        let mut out_of_time = false;
        if self.settings.release_on_shutdown && waiting_to_lead {
            tracing::info!(
                identity = %self.settings.identity,
                "held the lock without leading on it yet; not releasing (others take it over when its lease runs out)"
            );
        } else if self.settings.release_on_shutdown && (held || self.write_in_flight || self.release_pending)
        {
            let gate = self.settings.release_gate.clone();
            out_of_time = !self.settle_and_release(stepped_down, gate, held).await;
            if let (false, Some((_, news)), Some(_)) =
                (out_of_time, follow.as_mut(), &self.settings.advertise_address)
            {
                // Followers take a released lock at once (watching) or within a retry period
                // (polling); with none left (the last replica) this wait is what exit costs.
                let until = deadline.min(later(Instant::now(), 2 * self.settings.timing.retry_period));
                let _ = tokio::time::timeout_at(until, self.follow_successor(news)).await;
            }
        }
        if let Some((watcher, _)) = follow {
            watcher.abort();
        }
        if let Some(event) = self.last_event.take() {
            if out_of_time {
                event.abort();
            } else {
                let _ = tokio::time::timeout_at(deadline, event).await;
            }
        }
    }

    /// Reads watch events until the lock names another holder, publishing each (with no claim,
    /// shutting down).
    async fn follow_successor(&mut self, news: &mut mpsc::Receiver<WatchNews<K>>) {
        loop {
            let successor = self
                .election
                .leader()
                .is_some_and(|leader| leader != self.settings.identity);
            if successor {
                return;
            }
            let Some(event) = news.recv().await else { return };
            self.on_watch(event);
            self.publish(true);
            self.state.send_modify(LeaderState::shut_down);
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
            let Some((object, record)) = self.election.own_record() else {
                return Ok(false);
            };
            let released = record.released(self.wall.now());
            match self.lock.update(&object, &released, timeout).await {
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
        let read = self.lock.get(timeout).await?.map(|snapshot| {
            let version = snapshot.resource_version();
            (snapshot.object, snapshot.record, version)
        });
        self.election.reread(read, Instant::now());
        Ok(())
    }
}

/// A duration in whole milliseconds, for log fields.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_combined_gate_opens_only_when_every_part_is_open() {
        let (label_tx, label) = tokio::sync::watch::channel(true);
        let (file_tx, file) = tokio::sync::watch::channel(true);
        let gate = ReleaseGate::while_false(label).and(ReleaseGate::while_false(file));
        let opened = tokio::spawn(async move { gate.opened().await });
        file_tx.send_replace(false);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!opened.is_finished(), "the label may still say leader");
        label_tx.send_replace(false);
        tokio::time::timeout(Duration::from_secs(1), opened)
            .await
            .expect("open once both say follower")
            .unwrap();
        ReleaseGate::default().opened().await;
    }
}
