//! One candidate process ([`Candidate`]) started from a [`Spec`], and [`Events`]: the leadership
//! transitions every process of a group logs, gathered on one channel so a caller can await
//! "the next `became leader` after this moment" across fifty processes.
//!
//! Times are CLOCK_MONOTONIC nanoseconds, the clock the elector stamps its `became leader` and
//! `stopped leading` lines with ([`now_ns`] reads the same clock here). [`Candidate::signal`]
//! returns the moment it sent the signal, read just before the `kill(2)` call, so that a
//! signal-to-new-leader time is the difference of two readings of one clock.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// CLOCK_MONOTONIC now, in nanoseconds (comparable with the electors' log stamps).
pub fn now_ns() -> u64 {
    kube_sim::accounting::monotonic_ns()
}

/// How many of a process's last log lines are kept for error reports.
const TAIL_LINES: usize = 40;

/// How to start the candidates of one election.
#[derive(Clone, Debug)]
pub struct Spec {
    /// The `kube-elector` binary.
    pub binary: PathBuf,
    /// Holds `<id>.kubeconfig` for every candidate id (the simulator writes them).
    pub kubeconfig_dir: PathBuf,
    pub election: String,
    pub namespace: String,
    /// Further flags: timings, `--follow`, ...
    pub args: Vec<String>,
}

/// A leadership transition, as a process logged it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    Became,
    Stopped,
}

/// One `became leader` or `stopped leading` line.
#[derive(Clone, Debug)]
pub struct LeaderEvent {
    pub id: String,
    pub transition: Transition,
    /// When the process logged it (CLOCK_MONOTONIC).
    pub monotonic_ns: u64,
    pub fencing_token: Option<u64>,
}

/// The leadership transitions of a group of processes, in arrival order.
#[derive(Clone, Debug)]
pub struct Events {
    tx: Arc<watch::Sender<Vec<LeaderEvent>>>,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::channel(Vec::new()).0),
        }
    }

    fn push(&self, event: LeaderEvent) {
        self.tx.send_modify(|events| events.push(event));
    }

    /// Every transition so far.
    pub fn snapshot(&self) -> Vec<LeaderEvent> {
        self.tx.borrow().clone()
    }

    /// Waits up to `within` until `pick` finds what it looks for among the transitions.
    pub async fn wait_for<T>(
        &self,
        within: Duration,
        what: &str,
        mut pick: impl FnMut(&[LeaderEvent]) -> Option<T>,
    ) -> Result<T> {
        let mut rx = self.tx.subscribe();
        let mut found = None;
        let _ = tokio::time::timeout(
            within,
            rx.wait_for(|events| {
                found = pick(events);
                found.is_some()
            }),
        )
        .await
        .map(|ready| ready.is_ok());
        found.ok_or_else(|| anyhow!("no {what} within {within:?}"))
    }

    /// The first `became leader` logged at or after `after_ns` by a process other than `not`.
    pub async fn became_after(
        &self,
        after_ns: u64,
        not: Option<&str>,
        within: Duration,
    ) -> Result<LeaderEvent> {
        self.wait_for(within, "new leader", |events| {
            events
                .iter()
                .filter(|e| e.transition == Transition::Became && e.monotonic_ns >= after_ns)
                .filter(|e| not.is_none_or(|not| e.id != not))
                .min_by_key(|e| e.monotonic_ns)
                .cloned()
        })
        .await
    }
}

/// Signals the harness sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Term,
    Kill,
    Stop,
    Cont,
}

impl Signal {
    fn raw(self) -> rustix::process::Signal {
        match self {
            Signal::Term => rustix::process::Signal::TERM,
            Signal::Kill => rustix::process::Signal::KILL,
            Signal::Stop => rustix::process::Signal::STOP,
            Signal::Cont => rustix::process::Signal::CONT,
        }
    }
}

/// One running `kube-elector` process. Dropping it kills the process.
#[derive(Debug)]
pub struct Candidate {
    pub id: String,
    /// Where its HTTP surface listens.
    pub addr: SocketAddr,
    pid: u32,
    child: Child,
    tail: watch::Receiver<VecDeque<String>>,
    /// Becomes true once the log reader has read stderr to its end.
    logs_closed: watch::Receiver<bool>,
}

impl Candidate {
    /// Starts candidate `id` with its HTTP surface on `http` (port 0 picks a free port) and
    /// waits, up to `within`, until it logs the address it listens on. The process runs in its
    /// own process group, so a Ctrl-C at the terminal reaches only the harness, which then stops
    /// its children in order.
    pub async fn start(
        spec: &Spec,
        id: &str,
        http: SocketAddr,
        events: &Events,
        within: Duration,
    ) -> Result<Candidate> {
        let kubeconfig = spec.kubeconfig_dir.join(format!("{id}.kubeconfig"));
        let mut command = Command::new(&spec.binary);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .args([
                "--election",
                &spec.election,
                "--namespace",
                &spec.namespace,
                "--id",
                id,
            ])
            .args([
                "--http",
                &http.to_string(),
                "--log-format",
                "json",
                "--log-level",
                "info",
            ])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(&spec.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {} as {id}", spec.binary.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("{id}: exited as soon as it started"))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| anyhow!("{id}: no stderr pipe"))?;
        let (tail_tx, tail) = watch::channel(VecDeque::new());
        let (id_owned, events_owned) = (id.to_owned(), events.clone());
        let (addr_tx, mut addr_rx) = watch::channel(None);
        let (closed_tx, logs_closed) = watch::channel(false);
        tokio::spawn(async move {
            read_logs(id_owned, stderr, events_owned, tail_tx, addr_tx).await;
            closed_tx.send_replace(true);
        });
        let mut candidate = Candidate {
            id: id.to_owned(),
            addr: http,
            pid,
            child,
            tail,
            logs_closed,
        };
        let bound = tokio::time::timeout(within, addr_rx.wait_for(Option::is_some))
            .await
            .map(|found| found.ok().and_then(|addr| *addr));
        match bound {
            Ok(Some(addr)) => {
                candidate.addr = addr;
                Ok(candidate)
            }
            Ok(None) => {
                let status = candidate.wait_exit(Duration::from_secs(2)).await;
                bail!(
                    "{id} exited before listening ({}); last log lines:\n{}",
                    status.map_or_else(|e| e.to_string(), |s| s.to_string()),
                    candidate.tail()
                )
            }
            Err(_) => bail!(
                "{id} did not report its HTTP address within {within:?}; last log lines:\n{}",
                candidate.tail()
            ),
        }
    }

    /// Starts every id concurrently with HTTP on `127.0.0.1:0`, in the order of `ids`.
    pub async fn start_all(
        spec: &Spec,
        ids: &[String],
        events: &Events,
        within: Duration,
    ) -> Result<Vec<Candidate>> {
        let mut set = JoinSet::new();
        for (index, id) in ids.iter().enumerate() {
            let (spec, id, events) = (spec.clone(), id.clone(), events.clone());
            set.spawn(async move {
                let started = Candidate::start(&spec, &id, ([127, 0, 0, 1], 0).into(), &events, within).await;
                (index, started)
            });
        }
        let mut started: Vec<Option<Candidate>> = ids.iter().map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            let (index, candidate) = joined.context("a start task failed")?;
            started[index] = Some(candidate?);
        }
        started
            .into_iter()
            .map(|c| c.ok_or_else(|| anyhow!("a candidate was not started")))
            .collect()
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `signal`, returning the CLOCK_MONOTONIC moment just before it was sent.
    pub fn signal(&self, signal: Signal) -> Result<u64> {
        let pid = i32::try_from(self.pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .ok_or_else(|| anyhow!("{}: pid {} is not a process id", self.id, self.pid))?;
        let at = now_ns();
        rustix::process::kill_process(pid, signal.raw())
            .with_context(|| format!("sending {signal:?} to {} (pid {})", self.id, self.pid))?;
        Ok(at)
    }

    /// The exit status, if the process has exited (without waiting).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits up to `within` for the process to exit and for its log to be read to the end, so
    /// every transition it logged (the last `stopped leading`, a `became leader` just before a
    /// SIGKILL) is in [`Events`] when this returns.
    pub async fn wait_exit(&mut self, within: Duration) -> Result<ExitStatus> {
        let exited = async {
            let status = self.child.wait().await;
            let _ = self.logs_closed.wait_for(|closed| *closed).await;
            status
        };
        match tokio::time::timeout(within, exited).await {
            Ok(status) => status.with_context(|| format!("waiting for {} to exit", self.id)),
            Err(_) => bail!("{} did not exit (or close its stderr) within {within:?}", self.id),
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`. Returns the exit status.
    pub async fn stop(&mut self, grace: Duration) -> Result<ExitStatus> {
        if self.exited().is_some() {
            // Already gone: still read its log to the end.
            return self.wait_exit(grace).await;
        }
        self.signal(Signal::Term)?;
        match self.wait_exit(grace).await {
            Ok(status) => Ok(status),
            Err(_) => {
                self.child
                    .start_kill()
                    .with_context(|| format!("killing {}", self.id))?;
                self.wait_exit(Duration::from_secs(5)).await
            }
        }
    }

    /// The process's last log lines.
    pub fn tail(&self) -> String {
        self.tail.borrow().iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// The `/status` JSON, or `None` if the process does not answer.
    pub async fn status(&self) -> Option<Value> {
        let (code, _, body) = crate::http_get(self.addr, "/status").await?;
        (code == 200).then(|| serde_json::from_str(&body).ok()).flatten()
    }

    /// Base URL of the HTTP surface.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn ns_field(value: &Value) -> Option<u64> {
    match value {
        Value::String(text) => text.parse().ok(),
        Value::Number(number) => number.as_u64(),
        _ => None,
    }
}

/// Reads a process's JSON log lines until it closes stderr: the listen address, leadership
/// transitions, and a tail for error reports.
async fn read_logs(
    id: String,
    stderr: ChildStderr,
    events: Events,
    tail: watch::Sender<VecDeque<String>>,
    addr: watch::Sender<Option<SocketAddr>>,
) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Ok(value) = serde_json::from_str::<Value>(&line) {
            if let Some(bound) = value["address"].as_str().and_then(|a| a.parse().ok()) {
                addr.send_replace(Some(bound));
            }
            let transition = match value["message"].as_str() {
                Some("became leader") => Some(Transition::Became),
                Some("stopped leading") => Some(Transition::Stopped),
                _ => None,
            };
            if let (Some(transition), Some(at)) = (transition, ns_field(&value["monotonic_ns"])) {
                events.push(LeaderEvent {
                    id: id.clone(),
                    transition,
                    monotonic_ns: at,
                    fencing_token: value["fencing_token"].as_u64(),
                });
            }
        }
        tail.send_modify(|tail| {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        });
    }
}
