//! The published leadership state: what the election loop knows, for everything else to read.
//!
//! The election driver is the only writer. It publishes a [`LeaderState`] on a
//! [`tokio::sync::watch`] channel; the HTTP surface, the leader file, the pod label and the
//! metrics only read it. Readiness is never a stored flag: [`LeaderState::is_leader_at`] compares
//! the monotonic validity deadline with the moment of the question, so a process that was paused
//! or starved answers "not leader" the instant it wakes, before its loop has run again. It also
//! compares the claim's boot-time deadline with the boot-time clock, so a machine resumed from a
//! suspend (which stops the monotonic clock) answers "not leader" the instant it resumes.

use jiff::Timestamp;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::clock::{BootClock, BootInstant};

/// Sending half, owned by the election driver.
pub type StateSender = watch::Sender<LeaderState>;
/// Receiving half, cloned by every reader.
pub type StateReceiver = watch::Receiver<LeaderState>;

/// A snapshot of the election as this process sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderState {
    /// This process's identity in the election.
    pub identity: String,
    /// The loop's last decision: this process holds the lock. Private: readers ask
    /// [`Self::is_leader_at`], which also checks the deadline (this flag goes stale while the
    /// loop is not running); the driver sets it with [`Self::lead`].
    claims_leadership: bool,
    /// The holder named by the most recently observed record; `None` when the lock is free
    /// (released, or not created yet) or has not been read.
    pub leader: Option<String>,
    /// The address the leader named in [`Self::leader`] advertises for its leader-forwarding
    /// proxy (the lock's `kube-elector.io/leader-address` annotation, written with its claim);
    /// `None` when it advertises none.
    pub leader_address: Option<String>,
    /// The lock's transition count with which this process holds it, while it claims leadership.
    pub fencing_token: Option<u64>,
    /// Wall-clock time at which this process last became leader, while it claims leadership.
    pub leader_since: Option<Timestamp>,
    /// Monotonic deadline of the claim: send time of the last successful renew plus the renew
    /// deadline. `None` while not leader.
    pub valid_until: Option<Instant>,
    /// The same deadline on the boot-time clock ([`BootClock`]), which counts suspended time.
    /// `None` while not leader, or when the claim has no boot-time deadline (then only the
    /// monotonic one applies).
    pub valid_until_boot: Option<BootInstant>,
    /// The clock `valid_until_boot` is read against.
    pub boot_clock: BootClock,
    /// Transition count of the most recently observed record.
    pub observed_transitions: Option<u64>,
    /// The most recent failure of an election step, cleared by the next success.
    pub last_error: Option<String>,
    /// When the election loop last completed a step (an API attempt, a watch event or a timer).
    pub last_progress: Instant,
    /// Wall-clock time of the last successful renew or acquire by this process.
    pub last_renew: Option<Timestamp>,
    /// True once shutdown has begun: the loop has stopped competing.
    pub shutting_down: bool,
    /// This process's incarnation (see `election::incarnation`); empty before the loop starts.
    pub incarnation: String,
    /// The incarnation of another live process that holds the lock under this identity, while
    /// it does (a duplicated identity: this process will not lead meanwhile).
    pub identity_conflict: Option<String>,
    /// Whether this process stands for election (see `election::candidacy`); true unless
    /// something, such as the application's health check, withdrew it.
    pub candidate: bool,
}

impl LeaderState {
    /// The state before the first observation: not leader, nothing known.
    pub fn new(identity: impl Into<String>, now: Instant) -> Self {
        Self {
            identity: identity.into(),
            claims_leadership: false,
            leader: None,
            leader_address: None,
            fencing_token: None,
            leader_since: None,
            valid_until: None,
            valid_until_boot: None,
            boot_clock: BootClock::system(),
            observed_transitions: None,
            last_error: None,
            last_progress: now,
            last_renew: None,
            shutting_down: false,
            incarnation: String::new(),
            identity_conflict: None,
            candidate: true,
        }
    }

    /// This process claims leadership with `fencing_token` since `since` (wall clock), valid
    /// until `valid_until` (monotonic) and `valid_until_boot` (boot-time clock, if any).
    pub fn lead(
        &mut self,
        fencing_token: u64,
        since: Timestamp,
        valid_until: Instant,
        valid_until_boot: Option<BootInstant>,
    ) {
        self.claims_leadership = true;
        self.fencing_token = Some(fencing_token);
        self.leader_since = Some(since);
        self.valid_until = Some(valid_until);
        self.valid_until_boot = valid_until_boot;
    }

    /// Shutdown has begun: no claim from here on, whatever the lock says.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use kube_elector::LeaderState;
    /// # use tokio::time::Instant;
    /// let now = Instant::now();
    /// let mut state = LeaderState::new("pod-a", now);
    /// state.lead(1, jiff::Timestamp::now(), now + Duration::from_secs(10), None);
    /// state.shut_down();
    /// assert!(state.shutting_down && !state.is_leader_at(now));
    /// ```
    pub fn shut_down(&mut self) {
        self.claims_leadership = false;
        self.valid_until = None;
        self.valid_until_boot = None;
        self.shutting_down = true;
    }

    /// The loop's last decision, which goes stale while it is not running: for what to show
    /// beside [`Self::is_leader_at`] (the claim's details), never for whether to act as leader.
    pub fn claims_leadership(&self) -> bool {
        self.claims_leadership
    }

    /// Sets the claim flag alone, for tests of states the driver never publishes.
    #[cfg(test)]
    pub(crate) fn set_claims_leadership(&mut self, claims: bool) {
        self.claims_leadership = claims;
    }

    /// Whether this process may act as leader at `now`: it claims leadership and neither the
    /// monotonic validity deadline of that claim (compared with `now`) nor its boot-time deadline
    /// (compared with the boot-time clock as read now) has passed.
    ///
    /// Nothing needs to publish the end of a claim for the answer to change:
    ///
    /// ```
    /// use std::time::Duration;
    /// use kube_elector::LeaderState;
    /// use tokio::time::Instant;
    ///
    /// let now = Instant::now();
    /// let mut state = LeaderState::new("pod-a", now);
    /// assert!(!state.is_leader_at(now));
    ///
    /// // Renewed with a 10 s renew deadline: valid until then, on the monotonic clock.
    /// state.lead(7, jiff::Timestamp::now(), now + Duration::from_secs(10), None);
    /// assert!(state.is_leader_at(now + Duration::from_secs(9)));
    /// assert_eq!(state.fencing_token_at(now + Duration::from_secs(9)), Some(7));
    /// // A process paused past its deadline answers "not leader" the moment it asks.
    /// assert!(!state.is_leader_at(now + Duration::from_secs(10)));
    /// assert_eq!(state.fencing_token_at(now + Duration::from_secs(10)), None);
    /// ```
    pub fn is_leader_at(&self, now: Instant) -> bool {
        self.claims_leadership
            && self.valid_until.is_some_and(|deadline| now < deadline)
            && self
                .valid_until_boot
                .is_none_or(|deadline| self.boot_clock.now() < deadline)
    }

    /// The fencing token, only while [`Self::is_leader_at`] holds.
    pub fn fencing_token_at(&self, now: Instant) -> Option<u64> {
        if self.is_leader_at(now) {
            self.fencing_token
        } else {
            None
        }
    }
}

impl LeaderState {
    /// [`Self::is_leader_at`] the moment of asking: call it right before acting as leader.
    pub fn is_leader_now(&self) -> bool {
        self.is_leader_at(Instant::now())
    }

    /// [`Self::fencing_token_at`] the moment of asking.
    pub fn fencing_token_now(&self) -> Option<u64> {
        self.fencing_token_at(Instant::now())
    }
}

/// A new channel holding the initial state.
pub fn channel(identity: impl Into<String>) -> (StateSender, StateReceiver) {
    watch::channel(LeaderState::new(identity, Instant::now()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn leadership_lapses_at_the_validity_deadline_without_any_update() {
        let now = Instant::now();
        let mut state = LeaderState::new("a", now);
        assert!(!state.is_leader_at(now), "a fresh state must not be leader");
        state.lead(3, Timestamp::UNIX_EPOCH, now + Duration::from_secs(2), None);
        assert!(state.is_leader_at(now));
        assert_eq!(state.fencing_token_at(now), Some(3));
        tokio::time::advance(Duration::from_secs(2)).await;
        let later = Instant::now();
        assert!(
            !state.is_leader_at(later),
            "the claim must end exactly at its deadline"
        );
        assert_eq!(state.fencing_token_at(later), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_suspend_ends_leadership_at_once_by_the_boot_time_deadline() {
        let now = Instant::now();
        let boot = BootClock::manual();
        let mut state = LeaderState::new("a", now);
        state.lead(
            3,
            Timestamp::UNIX_EPOCH,
            now + Duration::from_secs(2),
            Some(boot.now().later(Duration::from_secs(2))),
        );
        state.boot_clock = boot.clone();
        assert!(state.is_leader_at(now));
        boot.suspend(Duration::from_secs(2));
        assert_eq!(Instant::now(), now, "only boot time moved");
        assert!(!state.is_leader_at(now), "the boot-time deadline has passed");
        assert_eq!(state.fencing_token_at(now), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_claim_without_a_deadline_is_not_leadership() {
        let now = Instant::now();
        let mut state = LeaderState::new("a", now);
        state.claims_leadership = true;
        assert!(!state.is_leader_at(now));
    }
}
