//! Exec mode: `kube-elector [FLAGS] -- COMMAND [ARG...]` runs the command only while this process
//! leads, and stops it before the lock is released.
//!
//! The supervisor reads the published leadership ([`crate::status`]) like every other consumer
//! and never a stored flag: it starts the command when [`LeaderState::is_leader_at`] holds, and
//! wakes by its own timer at the claim's validity deadline, so a claim that lapses with no news
//! from the election loop stops the command too. Every decision is [`decide::decide`], a pure
//! function; this module carries decisions out and reports ([`ChildStatus`], [`ChildMetrics`]).
//!
//! Stopping: SIGTERM to the command's process group, SIGKILL after `--child-grace`, and never
//! later than the moment another candidate could take the lock over ([`decide::Bounds::kill_at`]).
//! At shutdown the supervisor finishes only once the command has exited, and the release waits
//! for the supervisor (the release gate in `main`), so on a graceful handover the next leader's
//! command starts only after this one has exited.
//!
//! The command's own exit while leading is handled by `--on-child-exit` ([`OnChildExit`]). Its
//! environment is the elector's plus `ELECTOR_FENCING_TOKEN`, `ELECTOR_IDENTITY`,
//! `ELECTOR_ELECTION` and `ELECTOR_NAMESPACE`; its stdout and stderr are the elector's.

pub mod decide;
pub mod metrics;
pub mod process;

use std::ffi::OsString;
use std::time::Duration;

use jiff::Timestamp;
use rustix::process::{Pid, Signal};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use crate::clock::monotonic_ns;
use crate::status::{LeaderState, StateReceiver};
use decide::{Action, Bounds, Child, Leadership, Stopping};
pub use metrics::{ChildMetrics, ExitReason};
pub use process::Exit;

/// How often the supervisor checks for its command's exit if no SIGCHLD arrives (a safety net).
const REAP_POLL: Duration = Duration::from_secs(1);
/// At shutdown, how long a SIGKILLed command may take to be reaped before the supervisor gives
/// up waiting (a process in uninterruptible sleep): it can run no code of its own any more, so
/// the release may go ahead; the parent-death signal still covers it when the elector exits.
const KILLED_REAP_WAIT: Duration = Duration::from_secs(5);

/// What to do when the command exits while this process leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnChildExit {
    /// Start it again after a backoff (1 s doubling to 30 s, back to 1 s after a run of a
    /// minute), keeping leadership (the default).
    #[default]
    Restart,
    /// Step down, release the lock and exit with the command's exit code (128 + signal if a
    /// signal ended it), so the kubelet restarts the container and its logs show why.
    Exit,
}

/// Why a [`Supervisor`] could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SIGCHLD handler could not be installed.
    #[error("installing the SIGCHLD handler")]
    SignalHandler(#[source] std::io::Error),
}

/// The command and how to run it.
#[derive(Clone, Debug)]
pub struct ChildSpec {
    /// The program, looked up in `PATH` when it has no slash.
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// `ELECTOR_IDENTITY`.
    pub identity: String,
    /// `ELECTOR_ELECTION`.
    pub election: String,
    /// `ELECTOR_NAMESPACE`.
    pub namespace: String,
    /// SIGTERM to SIGKILL.
    pub grace: Duration,
    /// The lease duration, for the SIGKILL bound.
    pub lease_duration: Duration,
    /// The renew deadline, for the SIGKILL bound.
    pub renew_deadline: Duration,
    /// `--on-child-exit`.
    pub on_exit: OnChildExit,
}

impl ChildSpec {
    /// The variables added to the command's environment.
    pub fn env(&self, token: u64) -> Vec<(String, String)> {
        vec![
            ("ELECTOR_FENCING_TOKEN".to_owned(), token.to_string()),
            ("ELECTOR_IDENTITY".to_owned(), self.identity.clone()),
            ("ELECTOR_ELECTION".to_owned(), self.election.clone()),
            ("ELECTOR_NAMESPACE".to_owned(), self.namespace.clone()),
        ]
    }
}

/// The command's state for `/status` (the `child` object).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ChildStatus {
    /// `waiting` (not leading), `running`, `stopping`, `backoff` (restart pending) or `finished`.
    pub state: &'static str,
    /// The running process's PID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Wall-clock start of the running process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<Timestamp>,
    /// The fencing token the running process was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fencing_token: Option<u64>,
    /// Restarts after exits while leading.
    pub restarts: u64,
    /// How the last process ended.
    pub last_exit: Option<LastExit>,
}

/// How the last process ended, for `/status`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LastExit {
    /// Exit code, if it exited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// Signal number, if a signal ended it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// `exited`, `stopped`, `killed` or `spawn_failed`.
    pub reason: &'static str,
    /// Wall-clock time of the exit.
    pub at: Timestamp,
}

/// Sending half of the child status, owned by the supervisor.
pub type StatusSender = watch::Sender<ChildStatus>;
/// Receiving half, read by the HTTP surface.
pub type StatusReceiver = watch::Receiver<ChildStatus>;

/// A new child status channel.
pub fn status_channel() -> (StatusSender, StatusReceiver) {
    watch::channel(ChildStatus {
        state: "waiting",
        ..ChildStatus::default()
    })
}

/// Whether the command may still be alive (it has a process: running or being stopped), as a
/// flag for a `ReleaseGate::while_false`: a leader withdrawn from candidacy releases the lock only
/// once its command has exited, as at shutdown. Spawns a task on the current runtime that follows
/// `status` until its sender is gone.
pub fn alive(mut status: StatusReceiver) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(status.borrow_and_update().pid.is_some());
    tokio::spawn(async move {
        while status.changed().await.is_ok() {
            let alive = status.borrow_and_update().pid.is_some();
            tx.send_if_modified(|value| std::mem::replace(value, alive) != alive);
        }
    });
    rx
}

/// How the supervisor ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Shutdown: the command was stopped (or was not running).
    Shutdown,
    /// `--on-child-exit exit`: the command exited while leading, like this.
    ChildExited(Exit),
}

/// The running process.
#[derive(Clone, Copy, Debug)]
struct Running {
    pid: Pid,
    started: Instant,
}

/// Runs the command while leading; see the module documentation.
pub struct Supervisor {
    spec: ChildSpec,
    state: StateReceiver,
    metrics: ChildMetrics,
    status: StatusSender,
}

impl Supervisor {
    /// A supervisor of `spec` following `state`.
    pub fn new(spec: ChildSpec, state: StateReceiver, metrics: ChildMetrics, status: StatusSender) -> Self {
        Self {
            spec,
            state,
            metrics,
            status,
        }
    }

    /// Supervises until shutdown (`stop` completes, or the published state says shutting down,
    /// or its sender is gone) and the command has exited. With `--on-child-exit exit`, a
    /// command's exit while leading calls `request_shutdown` and ends the same way, returning
    /// that exit.
    pub async fn run(
        mut self,
        stop: impl Future<Output = ()>,
        request_shutdown: impl FnOnce(),
    ) -> Result<Outcome, Error> {
        let mut sigchld = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())
            .map_err(Error::SignalHandler)?;
        let init = process::is_init();
        let bounds = Bounds::new(
            self.spec.grace,
            self.spec.lease_duration,
            self.spec.renew_deadline,
        );
        let mut child = Child::Idle { restart_at: None };
        let mut running: Option<Running> = None;
        let mut killed_at: Option<Instant> = None;
        let mut claim_deadline: Option<Instant> = None;
        let mut last_delay: Option<Duration> = None;
        let mut outcome = Outcome::Shutdown;
        let mut request_shutdown = Some(request_shutdown);
        let mut stopped = false;
        let mut state_closed = false;
        tokio::pin!(stop);
        loop {
            let now = Instant::now();
            if let Some(exit) = process::reap(running.map(|r| r.pid), init) {
                let Some(ended) = running.take() else { continue };
                killed_at = None;
                let reason = match child {
                    Child::Running {
                        stopping: Some(Stopping { killed: true, .. }),
                        ..
                    } => ExitReason::Killed,
                    Child::Running {
                        stopping: Some(_), ..
                    } => ExitReason::Stopped,
                    _ => ExitReason::Exited,
                };
                self.metrics.ended(reason);
                // Read after the reap: an upper bound of the moment the process ended.
                tracing::info!(
                    pid = ended.pid.as_raw_nonzero().get(),
                    %exit,
                    reason = reason.as_str(),
                    monotonic_ns = %monotonic_ns(Instant::now()),
                    "the command ended"
                );
                child = Child::Idle { restart_at: None };
                if reason == ExitReason::Exited {
                    match self.spec.on_exit {
                        OnChildExit::Restart => {
                            let delay = decide::restart_delay(last_delay, now.duration_since(ended.started));
                            last_delay = Some(delay);
                            child = Child::Idle {
                                restart_at: Some(now + delay),
                            };
                            self.metrics.restarted();
                            self.status.send_modify(|status| status.restarts += 1);
                            tracing::info!(delay = ?delay, "restarting the command after a backoff (--on-child-exit restart)");
                        }
                        OnChildExit::Exit => {
                            outcome = Outcome::ChildExited(exit);
                            tracing::info!(
                                "stepping down and exiting with the command's code (--on-child-exit exit)"
                            );
                            if let Some(request) = request_shutdown.take() {
                                request();
                            }
                        }
                    }
                }
                self.publish_exit(reason, Some(exit));
            }

            let published: LeaderState = self.state.borrow_and_update().clone();
            let token = published.fencing_token_at(now);
            if token.is_some() {
                claim_deadline = claim_deadline.max(published.valid_until);
            }
            let leadership = Leadership {
                token,
                valid_until: published.valid_until.filter(|_| token.is_some()),
                finishing: stopped
                    || state_closed
                    || published.shutting_down
                    || matches!(outcome, Outcome::ChildExited(_)),
            };
            let action = decide::decide(&leadership, &child, claim_deadline, &bounds, now);
            match action {
                Action::Start { token } => match self.start(token) {
                    Ok(pid) => {
                        running = Some(Running { pid, started: now });
                        child = Child::Running {
                            token,
                            stopping: None,
                        };
                        continue;
                    }
                    Err(error) => {
                        tracing::error!(%error, program = ?self.spec.program, "could not start the command");
                        self.metrics.ended(ExitReason::SpawnFailed);
                        self.publish_exit(ExitReason::SpawnFailed, None);
                        let delay = decide::restart_delay(last_delay, Duration::ZERO);
                        last_delay = Some(delay);
                        child = Child::Idle {
                            restart_at: Some(now + delay),
                        };
                        if self.spec.on_exit == OnChildExit::Exit {
                            outcome = Outcome::ChildExited(Exit::Code(127));
                            if let Some(request) = request_shutdown.take() {
                                request();
                            }
                        }
                        continue;
                    }
                },
                Action::Terminate { kill_at } => {
                    if let Some(current) = running {
                        tracing::info!(
                            pid = current.pid.as_raw_nonzero().get(),
                            kill_in_ms = kill_at.saturating_duration_since(now).as_millis() as u64,
                            claim_deadline_monotonic_ns = ?claim_deadline.map(monotonic_ns),
                            monotonic_ns = %monotonic_ns(now),
                            "stopping the command: SIGTERM to its process group"
                        );
                        if let Err(error) = process::signal_group(current.pid, Signal::TERM) {
                            tracing::warn!(%error, "could not send SIGTERM to the command");
                        }
                    }
                    if let Child::Running { token, .. } = child {
                        child = Child::Running {
                            token,
                            stopping: Some(Stopping {
                                kill_at,
                                killed: false,
                            }),
                        };
                    }
                    self.status.send_modify(|status| status.state = "stopping");
                    continue;
                }
                Action::Kill => {
                    if let Some(current) = running {
                        tracing::warn!(
                            pid = current.pid.as_raw_nonzero().get(),
                            monotonic_ns = %monotonic_ns(now),
                            "the command did not stop in time: SIGKILL to its process group"
                        );
                        if let Err(error) = process::signal_group(current.pid, Signal::KILL) {
                            tracing::warn!(%error, "could not send SIGKILL to the command");
                        }
                    }
                    killed_at = Some(now);
                    if let Child::Running {
                        token,
                        stopping: Some(stopping),
                    } = child
                    {
                        child = Child::Running {
                            token,
                            stopping: Some(Stopping {
                                killed: true,
                                ..stopping
                            }),
                        };
                    }
                    continue;
                }
                Action::Finished => {
                    self.status.send_modify(|status| status.state = "finished");
                    return Ok(outcome);
                }
                Action::Wait { until } => {
                    let give_up = killed_at
                        .filter(|_| leadership.finishing)
                        .map(|at| at + KILLED_REAP_WAIT);
                    if give_up.is_some_and(|at| at <= now) {
                        tracing::error!(
                            pid = ?running.map(|r| r.pid.as_raw_nonzero().get()),
                            "the command was not reaped within {KILLED_REAP_WAIT:?} of SIGKILL; releasing anyway"
                        );
                        return Ok(outcome);
                    }
                    let until = match (until, give_up) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    self.status.send_if_modified(|status| {
                        let state = match child {
                            Child::Running { stopping: None, .. } => "running",
                            Child::Running { .. } => "stopping",
                            Child::Idle { restart_at: Some(at) } if at > now => "backoff",
                            Child::Idle { .. } => "waiting",
                        };
                        let changed = status.state != state;
                        status.state = state;
                        changed
                    });
                    let poll = running.is_some();
                    tokio::select! {
                        biased;
                        _ = &mut stop, if !stopped => stopped = true,
                        _ = sigchld.recv() => {}
                        changed = self.state.changed(), if !state_closed => {
                            if changed.is_err() {
                                state_closed = true;
                            }
                        }
                        _ = sleep_until(until.unwrap_or(now)), if until.is_some() => {}
                        _ = tokio::time::sleep(REAP_POLL), if poll => {}
                    }
                }
            }
        }
    }

    /// Spawns the command with `token` and reports it.
    fn start(&self, token: u64) -> std::io::Result<Pid> {
        // Read before the fork: a lower bound of the moment the process began.
        let before = monotonic_ns(Instant::now());
        let pid = process::spawn(&self.spec.program, &self.spec.args, &self.spec.env(token))?;
        self.metrics.started();
        tracing::info!(
            pid = pid.as_raw_nonzero().get(),
            fencing_token = token,
            monotonic_ns = %before,
            "started the command"
        );
        self.status.send_modify(|status| {
            status.state = "running";
            status.pid = Some(pid.as_raw_nonzero().get());
            status.started = Some(Timestamp::now());
            status.fencing_token = Some(token);
        });
        Ok(pid)
    }

    fn publish_exit(&self, reason: ExitReason, exit: Option<Exit>) {
        self.status.send_modify(|status| {
            status.pid = None;
            status.started = None;
            status.fencing_token = None;
            status.last_exit = Some(LastExit {
                code: match exit {
                    Some(Exit::Code(code)) => Some(code),
                    _ => None,
                },
                signal: match exit {
                    Some(Exit::Signal(signal)) => Some(signal),
                    _ => None,
                },
                reason: reason.as_str(),
                at: Timestamp::now(),
            });
        });
    }
}
