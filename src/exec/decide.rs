//! Exec mode's decisions, as pure functions of the published leadership, the child's state and
//! the time: start the command, signal its process group, or wait (until when). The supervisor in
//! [`super`] only carries them out, so every branch is tested here on the paused clock.
//!
//! The command runs while this process may act as leader ([`crate::status::LeaderState::is_leader_at`])
//! with the fencing token it was started with. It is stopped (SIGTERM, then SIGKILL) as soon as
//! that no longer holds: a step-down, a shutdown, a new token, or the claim's deadline passing
//! with no news from the election loop (the supervisor wakes at that deadline by its own timer).
//!
//! The SIGKILL comes after the child grace, but never later than the moment another candidate
//! could take the lock over: the last successful renewal's send time plus the lease duration,
//! minus a margin ([`Bounds::kill_at`]). The claim's deadline is that send time plus the renew
//! deadline, so the bound is the deadline plus `lease duration - renew deadline - margin`.

use std::time::Duration;

use tokio::time::Instant;

/// Backoff before the first restart of a command that exited while leading.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest backoff between restarts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A command that ran at least this long before it exited is restarted after [`FIRST_BACKOFF`]
/// again.
pub const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(60);

/// Leadership as the supervisor sees it at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leadership {
    /// The fencing token while this process may act as leader now; `None` otherwise.
    pub token: Option<u64>,
    /// The claim's monotonic deadline while leading, for the supervisor's timer.
    pub valid_until: Option<Instant>,
    /// Shutdown has begun (or the command's exit asked for it): never start again.
    pub finishing: bool,
}

/// The command's process as the supervisor tracks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Child {
    /// No process; none is started before `restart_at` (the backoff after an exit).
    Idle {
        /// Not before this instant.
        restart_at: Option<Instant>,
    },
    /// A process started with fencing token `token`.
    Running {
        /// The token in its environment.
        token: u64,
        /// Set once SIGTERM has been sent.
        stopping: Option<Stopping>,
    },
}

/// A stop in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopping {
    /// When SIGKILL is due.
    pub kill_at: Instant,
    /// SIGKILL has been sent; only its exit remains.
    pub killed: bool,
}

/// What the supervisor does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start the command with this fencing token.
    Start {
        /// `ELECTOR_FENCING_TOKEN`.
        token: u64,
    },
    /// SIGTERM to the process group; SIGKILL is due at `kill_at`.
    Terminate {
        /// From [`Bounds::kill_at`].
        kill_at: Instant,
    },
    /// SIGKILL to the process group.
    Kill,
    /// Nothing until the state changes, the child exits, or `until` (if any) comes.
    Wait {
        /// The next instant at which the decision may change by time alone.
        until: Option<Instant>,
    },
    /// No child and none to come: the supervisor is done (the release may go ahead).
    Finished,
}

/// The time limits of a stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// `--child-grace`: SIGTERM to SIGKILL.
    pub grace: Duration,
    /// Lease duration minus renew deadline: how long after the claim's deadline another
    /// candidate may take the lock over.
    pub takeover_after_deadline: Duration,
}

impl Bounds {
    /// From the child grace, the lease duration and the renew deadline.
    pub fn new(grace: Duration, lease_duration: Duration, renew_deadline: Duration) -> Self {
        Self {
            grace,
            takeover_after_deadline: lease_duration.saturating_sub(renew_deadline),
        }
    }

    /// The margin kept before a possible takeover: a fifth of the time between the claim's
    /// deadline and that takeover (1 s with the default timings), for the SIGKILL to be delivered
    /// and for clock-rate differences between machines.
    pub fn margin(&self) -> Duration {
        self.takeover_after_deadline / 5
    }

    /// When SIGKILL is due for a stop begun at `now`: after the grace, but not after the takeover
    /// bound of the last claim (`claim_deadline`, the latest validity deadline seen), minus the
    /// margin. Without a known claim, after the grace.
    pub fn kill_at(&self, now: Instant, claim_deadline: Option<Instant>) -> Instant {
        let after_grace = now.checked_add(self.grace).unwrap_or(now);
        match claim_deadline {
            Some(deadline) => {
                let takeover_bound = deadline
                    .checked_add(self.takeover_after_deadline - self.margin())
                    .unwrap_or(deadline);
                after_grace.min(takeover_bound).max(now)
            }
            None => after_grace,
        }
    }
}

/// The next action for `child` given `leadership` at `now`; `claim_deadline` is the latest
/// validity deadline seen while leading (for the SIGKILL bound).
pub fn decide(
    leadership: &Leadership,
    child: &Child,
    claim_deadline: Option<Instant>,
    bounds: &Bounds,
    now: Instant,
) -> Action {
    match *child {
        Child::Running {
            token,
            stopping: None,
        } => {
            if !leadership.finishing && leadership.token == Some(token) {
                Action::Wait {
                    until: leadership.valid_until,
                }
            } else {
                Action::Terminate {
                    kill_at: bounds.kill_at(now, claim_deadline),
                }
            }
        }
        Child::Running {
            stopping: Some(Stopping { killed: true, .. }),
            ..
        } => Action::Wait { until: None },
        Child::Running {
            stopping: Some(Stopping { kill_at, .. }),
            ..
        } => {
            if now >= kill_at {
                Action::Kill
            } else {
                Action::Wait { until: Some(kill_at) }
            }
        }
        Child::Idle { .. } if leadership.finishing => Action::Finished,
        Child::Idle { restart_at } => match leadership.token {
            None => Action::Wait { until: None },
            Some(token) => match restart_at {
                Some(at) if at > now => Action::Wait {
                    until: Some(leadership.valid_until.map_or(at, |deadline| deadline.min(at))),
                },
                _ => Action::Start { token },
            },
        },
    }
}

/// The wait before restarting a command that exited after running for `ran_for`, given the
/// previous wait (`None` before the first restart): 1 s, doubled with each quick exit up to 30 s,
/// and 1 s again after a run of at least [`BACKOFF_RESET_AFTER`].
pub fn restart_delay(previous: Option<Duration>, ran_for: Duration) -> Duration {
    match previous {
        Some(previous) if ran_for < BACKOFF_RESET_AFTER => previous.saturating_mul(2).min(MAX_BACKOFF),
        _ => FIRST_BACKOFF,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn bounds() -> Bounds {
        // Lease 15s, renew deadline 10s: takeover 5s after the deadline, margin 1s.
        Bounds::new(10 * SECOND, 15 * SECOND, 10 * SECOND)
    }

    fn leading(token: u64, valid_until: Instant) -> Leadership {
        Leadership {
            token: Some(token),
            valid_until: Some(valid_until),
            finishing: false,
        }
    }

    const FOLLOWING: Leadership = Leadership {
        token: None,
        valid_until: None,
        finishing: false,
    };

    const IDLE: Child = Child::Idle { restart_at: None };

    #[tokio::test(start_paused = true)]
    async fn a_leader_starts_the_command_with_its_token_and_a_follower_does_not() {
        let now = Instant::now();
        assert_eq!(
            decide(&leading(7, now + SECOND), &IDLE, None, &bounds(), now),
            Action::Start { token: 7 }
        );
        assert_eq!(
            decide(&FOLLOWING, &IDLE, None, &bounds(), now),
            Action::Wait { until: None }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_running_command_is_left_alone_until_the_claims_deadline() {
        let now = Instant::now();
        let running = Child::Running {
            token: 7,
            stopping: None,
        };
        let deadline = now + 2 * SECOND;
        assert_eq!(
            decide(&leading(7, deadline), &running, Some(deadline), &bounds(), now),
            Action::Wait {
                until: Some(deadline)
            },
            "the supervisor must wake at the deadline even if nothing is published"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lapsed_claim_terminates_at_once_and_kills_before_a_takeover_is_possible() {
        let start = Instant::now();
        let deadline = start + 2 * SECOND;
        tokio::time::advance(2 * SECOND).await;
        let now = Instant::now();
        // At the deadline the published state (unchanged) no longer yields a token.
        let lapsed = FOLLOWING;
        let running = Child::Running {
            token: 7,
            stopping: None,
        };
        let action = decide(&lapsed, &running, Some(deadline), &bounds(), now);
        // Grace 10s, but a takeover is possible 5s after the deadline: kill 1s before that.
        assert_eq!(
            action,
            Action::Terminate {
                kill_at: deadline + 4 * SECOND
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_grace_kills_after_the_grace() {
        let now = Instant::now();
        let bounds = Bounds::new(2 * SECOND, 15 * SECOND, 10 * SECOND);
        assert_eq!(bounds.kill_at(now, Some(now)), now + 2 * SECOND);
        assert_eq!(bounds.kill_at(now, None), now + 2 * SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_begun_past_the_takeover_bound_kills_at_once() {
        let deadline = Instant::now();
        tokio::time::advance(20 * SECOND).await;
        let now = Instant::now();
        assert_eq!(bounds().kill_at(now, Some(deadline)), now);
        let stopping = Child::Running {
            token: 7,
            stopping: Some(Stopping {
                kill_at: now,
                killed: false,
            }),
        };
        assert_eq!(
            decide(&FOLLOWING, &stopping, Some(deadline), &bounds(), now),
            Action::Kill
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopping_command_is_killed_when_due_and_then_only_awaited() {
        let now = Instant::now();
        let kill_at = now + 3 * SECOND;
        let stopping = |killed| Child::Running {
            token: 7,
            stopping: Some(Stopping { kill_at, killed }),
        };
        assert_eq!(
            decide(&FOLLOWING, &stopping(false), None, &bounds(), now),
            Action::Wait { until: Some(kill_at) }
        );
        tokio::time::advance(3 * SECOND).await;
        let now = Instant::now();
        assert_eq!(
            decide(&FOLLOWING, &stopping(false), None, &bounds(), now),
            Action::Kill
        );
        assert_eq!(
            decide(&FOLLOWING, &stopping(true), None, &bounds(), now),
            Action::Wait { until: None }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_token_stops_the_old_command_first() {
        let now = Instant::now();
        let running = Child::Running {
            token: 7,
            stopping: None,
        };
        let action = decide(
            &leading(8, now + SECOND),
            &running,
            Some(now + SECOND),
            &bounds(),
            now,
        );
        assert!(
            matches!(action, Action::Terminate { .. }),
            "a command holding token 7 must not run under token 8: {action:?}"
        );
        assert_eq!(
            decide(&leading(8, now + SECOND), &IDLE, None, &bounds(), now),
            Action::Start { token: 8 }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stops_the_command_and_finishes_once_it_is_gone() {
        let now = Instant::now();
        let finishing = Leadership {
            finishing: true,
            ..leading(7, now + SECOND)
        };
        let running = Child::Running {
            token: 7,
            stopping: None,
        };
        assert_eq!(
            decide(&finishing, &running, Some(now + SECOND), &bounds(), now),
            Action::Terminate {
                kill_at: now + SECOND + 4 * SECOND
            }
        );
        assert_eq!(decide(&finishing, &IDLE, None, &bounds(), now), Action::Finished);
        assert_eq!(
            decide(&FOLLOWING, &IDLE, None, &bounds(), now),
            Action::Wait { until: None },
            "without shutdown an idle follower waits"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_waits_for_its_backoff_but_not_past_the_claim() {
        let now = Instant::now();
        let backoff = Child::Idle {
            restart_at: Some(now + 4 * SECOND),
        };
        assert_eq!(
            decide(&leading(7, now + 10 * SECOND), &backoff, None, &bounds(), now),
            Action::Wait {
                until: Some(now + 4 * SECOND)
            }
        );
        assert_eq!(
            decide(&leading(7, now + 2 * SECOND), &backoff, None, &bounds(), now),
            Action::Wait {
                until: Some(now + 2 * SECOND)
            }
        );
        tokio::time::advance(4 * SECOND).await;
        assert_eq!(
            decide(
                &leading(7, now + 10 * SECOND),
                &backoff,
                None,
                &bounds(),
                Instant::now()
            ),
            Action::Start { token: 7 }
        );
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_resets_after_a_long_run() {
        let mut previous = None;
        let mut seen = Vec::new();
        for _ in 0..7 {
            let delay = restart_delay(previous, SECOND);
            seen.push(delay.as_secs());
            previous = Some(delay);
        }
        assert_eq!(seen, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(
            restart_delay(Some(MAX_BACKOFF), BACKOFF_RESET_AFTER),
            FIRST_BACKOFF
        );
    }
}
