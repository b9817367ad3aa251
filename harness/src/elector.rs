//! One real `kube-elector` process, driven and observed from outside: the one launcher every
//! test, benchmark, the demo, the chaos suite and the `fleet` binary start electors with.
//!
//! Each [`Elector`] is the real binary, started from a [`Launch`] with its own kubeconfig from the
//! simulator, JSON logs on stderr (collected and searchable, leadership transitions optionally
//! gathered on shared [`Events`]), and its HTTP surface on a port it picks itself (read back from
//! its log). Nothing here shares code with what it tests: status comes over a raw HTTP/1.0
//! request, signals through `kill(2)`.
//!
//! [`Elector::launch`] and the `try_` methods return [`Error`]s; [`Elector::start`],
//! [`Elector::wait_exit`], [`Elector::signal`] and the like are thin panicking wrappers for tests.
//!
//! Logs are read by a task until stderr reaches end of file; [`Elector::wait_exit`] returns only
//! after that task has read the last line, so a line written just before the process exited or
//! was killed (a final `stopped leading`, a `became leader` just before a SIGKILL) is always in
//! [`Elector::logs`] when the caller looks.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use kube_sim::Sim;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::events::{Events, LeaderEvent, Transition};

/// The short timings every end-to-end test runs with.
pub const LEASE: Duration = Duration::from_secs(3);
pub const RENEW_DEADLINE: Duration = Duration::from_secs(2);
pub const RETRY: Duration = Duration::from_millis(500);

pub fn timing_args() -> Vec<String> {
    [
        "--lease-duration",
        "3s",
        "--renew-deadline",
        "2s",
        "--retry-period",
        "500ms",
    ]
    .map(String::from)
    .to_vec()
}

/// How to start one elector: everything [`Elector::launch`] passes to the binary.
#[derive(Clone, Debug)]
pub struct Launch {
    /// The `kube-elector` binary.
    pub binary: PathBuf,
    /// `--id`, also the simulator client whose kubeconfig is used.
    pub id: String,
    pub kubeconfig: PathBuf,
    pub election: String,
    pub namespace: String,
    /// `--http`; port 0 lets the process pick a free port (read back from its log).
    pub http: SocketAddr,
    /// Further flags: timings, `--follow`, ...
    pub args: Vec<String>,
    /// The environment (cleared but for `PATH`), e.g. for libfaketime.
    pub env: Vec<(String, String)>,
    /// Where every leadership transition it logs is gathered, if anywhere.
    pub events: Option<Events>,
    /// A file every log line is appended to as it is read, if any.
    pub log_file: Option<PathBuf>,
    /// Runs the process in its own process group, so a Ctrl-C at the terminal reaches only the
    /// harness, which then stops its children in order.
    pub own_process_group: bool,
    /// How long it may take to report its HTTP address.
    pub within: Duration,
    /// Exec mode: the command passed after `--`, last on the command line; empty for none.
    pub command: Vec<String>,
}

impl Launch {
    /// Candidate `id` of election `election` in `default`, kubeconfig `<dir>/<id>.kubeconfig`,
    /// HTTP on a free loopback port, no further flags.
    pub fn new(binary: &Path, kubeconfig_dir: &Path, election: &str, id: &str) -> Launch {
        Launch {
            binary: binary.to_owned(),
            id: id.to_owned(),
            kubeconfig: kubeconfig_dir.join(format!("{id}.kubeconfig")),
            election: election.to_owned(),
            namespace: "default".to_owned(),
            http: ([127, 0, 0, 1], 0).into(),
            args: Vec::new(),
            env: Vec::new(),
            events: None,
            log_file: None,
            own_process_group: false,
            within: Duration::from_secs(30),
            command: Vec::new(),
        }
    }

    /// The same launch for candidate `id`: its kubeconfig from the same directory.
    pub fn with_id(&self, id: &str) -> Launch {
        let dir = self.kubeconfig.parent().unwrap_or(Path::new(""));
        Launch {
            id: id.to_owned(),
            kubeconfig: dir.join(format!("{id}.kubeconfig")),
            ..self.clone()
        }
    }

    /// What the end-to-end tests run: election `test` in the in-process simulator `sim`, with
    /// `extra` flags and the short test timings (unless `extra` sets `--lease-duration`).
    pub fn test(binary: &Path, sim: &Sim, id: &str, extra: &[&str]) -> Launch {
        let mut launch = Launch::new(binary, Path::new(""), "test", id);
        launch.kubeconfig = sim.kubeconfig_path(id);
        if !extra.contains(&"--lease-duration") {
            launch.args.extend(timing_args());
        }
        launch.args.extend(extra.iter().map(|s| s.to_string()));
        launch
    }
}

/// What went wrong starting, signalling or waiting for an elector.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("starting {binary} as {id}")]
    SpawnFailed {
        id: String,
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("opening {path}, the log file of {id}")]
    LogFileFailed {
        id: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{id} exited before reporting its HTTP address ({status}); last log lines:\n{tail}")]
    ExitedBeforeListening {
        id: String,
        status: String,
        tail: String,
    },
    #[error("{id} did not report its HTTP address within {within:?}; last log lines:\n{tail}")]
    NoAddress {
        id: String,
        within: Duration,
        tail: String,
    },
    #[error("{id}: no log line {what} within {within:?}; logs:\n{logs}")]
    NoLogLine {
        id: String,
        what: String,
        within: Duration,
        logs: String,
    },
    #[error("sending {signal:?} to {id} (pid {pid})")]
    SignalFailed {
        id: String,
        signal: Signal,
        pid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("{id} did not exit (or close its stderr) within {within:?}; last log lines:\n{tail}")]
    DidNotExit {
        id: String,
        within: Duration,
        tail: String,
    },
    #[error("waiting for {id} to exit")]
    WaitFailed {
        id: String,
        #[source]
        source: std::io::Error,
    },
    #[error("killing {id}")]
    KillFailed {
        id: String,
        #[source]
        source: std::io::Error,
    },
    #[error("a task starting an elector ended abnormally")]
    StartTaskFailed {
        #[source]
        source: tokio::task::JoinError,
    },
}

/// `error` and its causes, one after another: what a panicking wrapper shows.
fn report(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    text
}

/// Signals the harness sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Term,
    Kill,
    Stop,
    Cont,
    Int,
    Hup,
}

impl Signal {
    /// By its name without `SIG`, as `kill -NAME` takes it.
    pub fn named(name: &str) -> Option<Signal> {
        Some(match name.trim_start_matches("SIG") {
            "TERM" => Signal::Term,
            "KILL" => Signal::Kill,
            "STOP" => Signal::Stop,
            "CONT" => Signal::Cont,
            "INT" => Signal::Int,
            "HUP" => Signal::Hup,
            _ => return None,
        })
    }

    fn raw(self) -> rustix::process::Signal {
        use rustix::process::Signal as Raw;
        match self {
            Signal::Term => Raw::TERM,
            Signal::Kill => Raw::KILL,
            Signal::Stop => Raw::STOP,
            Signal::Cont => Raw::CONT,
            Signal::Int => Raw::INT,
            Signal::Hup => Raw::HUP,
        }
    }
}

/// Everything read from a process's stderr so far.
#[derive(Default)]
struct LogState {
    /// Each line as JSON, or as a JSON string when it is not JSON.
    lines: Vec<Value>,
    /// The reader reached the end of stderr.
    closed: bool,
}

/// How many of a process's last log lines an error report shows.
const TAIL_LINES: usize = 40;

/// One running elector process. Dropping it kills the process.
pub struct Elector {
    pub id: String,
    /// Where its HTTP surface listens.
    pub addr: SocketAddr,
    pid: u32,
    child: Child,
    logs: watch::Receiver<LogState>,
    launch: Launch,
}

impl Elector {
    /// Starts an elector as `launch` says and waits, up to `launch.within`, until it logs the
    /// address it listens on. The one launcher; the others below are wrappers.
    pub async fn launch(launch: Launch) -> Result<Elector, Error> {
        let id = launch.id.clone();
        let mut command = Command::new(&launch.binary);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .args(["--election", &launch.election, "--namespace", &launch.namespace])
            .args(&launch.args)
            .args(["--id", &id, "--http", &launch.http.to_string()])
            .args(["--log-format", "json", "--log-level", "info"])
            .arg("--kubeconfig")
            .arg(&launch.kubeconfig)
            .args(if launch.command.is_empty() {
                &[][..]
            } else {
                &["--"][..]
            })
            .args(&launch.command)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if launch.own_process_group {
            command.process_group(0);
        }
        let spawn_failed = |source| Error::SpawnFailed {
            id: id.clone(),
            binary: launch.binary.display().to_string(),
            source,
        };
        let log_file = match &launch.log_file {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| Error::LogFileFailed {
                        id: id.clone(),
                        path: path.display().to_string(),
                        source,
                    })?,
            ),
            None => None,
        };
        let mut child = command.spawn().map_err(spawn_failed)?;
        let (Some(pid), Some(stderr)) = (child.id(), child.stderr.take()) else {
            let status = child
                .wait()
                .await
                .map_or_else(|e| e.to_string(), |s| s.to_string());
            return Err(Error::ExitedBeforeListening {
                id,
                status,
                tail: String::new(),
            });
        };
        let (tx, logs) = watch::channel(LogState::default());
        tokio::spawn(read_logs(
            id.clone(),
            stderr,
            launch.events.clone(),
            log_file.map(tokio::fs::File::from_std),
            tx,
        ));
        let mut elector = Elector {
            id: id.clone(),
            addr: launch.http,
            pid,
            child,
            logs,
            launch,
        };
        let within = elector.launch.within;
        let listening = |line: &Value| line["address"].as_str().and_then(|a| a.parse().ok());
        let seen = tokio::time::timeout(
            within,
            elector
                .logs
                .wait_for(|state| state.closed || state.lines.iter().any(|l| listening(l).is_some())),
        )
        .await
        .map(|state| {
            state
                .ok()
                .and_then(|state| state.lines.iter().find_map(listening))
        });
        let (bound, in_time) = match seen {
            Ok(bound) => (bound, true),
            Err(_) => (None, false),
        };
        match (bound, in_time) {
            (Some(addr), _) => {
                elector.addr = addr;
                Ok(elector)
            }
            (None, true) => {
                let status = elector.try_wait_exit(Duration::from_secs(2)).await;
                Err(Error::ExitedBeforeListening {
                    id,
                    status: status.map_or_else(|e| report(&e), |s| s.to_string()),
                    tail: elector.tail(),
                })
            }
            (None, false) => Err(Error::NoAddress {
                id,
                within,
                tail: elector.tail(),
            }),
        }
    }

    /// Starts every launch concurrently, returning the electors in the order given.
    pub async fn launch_all(launches: Vec<Launch>) -> Result<Vec<Elector>, Error> {
        let count = launches.len();
        let mut set = tokio::task::JoinSet::new();
        for (index, launch) in launches.into_iter().enumerate() {
            set.spawn(async move { (index, Elector::launch(launch).await) });
        }
        let mut started: Vec<Option<Elector>> = (0..count).map(|_| None).collect();
        let mut failure = None;
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((index, Ok(elector))) => started[index] = Some(elector),
                Ok((_, Err(error))) => {
                    failure.get_or_insert(error);
                }
                Err(source) => {
                    failure.get_or_insert(Error::StartTaskFailed { source });
                }
            }
        }
        if let Some(error) = failure {
            return Err(error);
        }
        Ok(started.into_iter().flatten().collect())
    }

    /// Starts `binary` as `id` (also the simulator client) in election `test`, with `extra`
    /// arguments and the short test timings (unless `extra` sets `--lease-duration`). Panics
    /// if it does not start: for tests.
    pub async fn start(binary: &Path, sim: &Sim, id: &str, extra: &[&str]) -> Elector {
        Self::start_with_env(binary, sim, id, extra, &[]).await
    }

    /// Like [`Elector::start`], with extra environment variables (e.g. for libfaketime).
    pub async fn start_with_env(
        binary: &Path,
        sim: &Sim,
        id: &str,
        extra: &[&str],
        env: &[(String, String)],
    ) -> Elector {
        let mut launch = Launch::test(binary, sim, id, extra);
        launch.env = env.to_vec();
        Self::launch(launch)
            .await
            .unwrap_or_else(|e| panic!("{}", report(&e)))
    }

    /// How this process was started.
    pub fn launch_spec(&self) -> &Launch {
        &self.launch
    }

    /// Starts the same process again (after it exited or was killed), as it was launched.
    pub async fn try_restart(&mut self) -> Result<(), Error> {
        *self = Self::launch(self.launch.clone()).await?;
        Ok(())
    }

    /// [`Elector::try_restart`], panicking on failure: for tests.
    pub async fn restart(&mut self) {
        if let Err(error) = self.try_restart().await {
            panic!("restarting {}: {}", self.id, report(&error));
        }
    }

    /// The log lines so far.
    pub fn logs(&self) -> Vec<Value> {
        self.logs.borrow().lines.clone()
    }

    /// Waits up to `within` for a log line matching `pred` (described by `what`), returning it.
    pub async fn try_wait_log(
        &mut self,
        what: &str,
        pred: impl Fn(&Value) -> bool,
        within: Duration,
    ) -> Result<Value, Error> {
        let found = tokio::time::timeout(within, self.logs.wait_for(|state| state.lines.iter().any(&pred)))
            .await
            .ok()
            .and_then(Result::ok)
            .and_then(|state| state.lines.iter().find(|l| pred(l)).cloned());
        found.ok_or_else(|| Error::NoLogLine {
            id: self.id.clone(),
            what: what.to_owned(),
            within,
            logs: self.dump_logs(),
        })
    }

    /// Waits for a log line matching `pred`, returning it; panics after `within`: for tests.
    pub async fn wait_log(&mut self, pred: impl Fn(&Value) -> bool, within: Duration) -> Value {
        self.try_wait_log("matching the condition", pred, within)
            .await
            .unwrap_or_else(|e| panic!("{}", report(&e)))
    }

    /// Lines with this message.
    pub fn log_messages(&self, message: &str) -> Vec<Value> {
        self.logs
            .borrow()
            .lines
            .iter()
            .filter(|l| l["message"] == message)
            .cloned()
            .collect()
    }

    /// Every log line so far, one a line.
    pub fn dump_logs(&self) -> String {
        lines_text(&self.logs.borrow().lines)
    }

    /// The last log lines, for error reports.
    pub fn tail(&self) -> String {
        let state = self.logs.borrow();
        lines_text(&state.lines[state.lines.len().saturating_sub(TAIL_LINES)..])
    }

    /// GET `path`: the status code, headers and body.
    pub async fn get(&self, path: &str) -> Option<(u16, String, String)> {
        http_get(self.addr, path).await
    }

    /// The status JSON, or `None` if the process does not answer.
    pub async fn status(&self) -> Option<Value> {
        let (code, _, body) = self.get("/status").await?;
        (code == 200).then(|| serde_json::from_str(&body).ok()).flatten()
    }

    pub async fn is_leader(&self) -> bool {
        self.status().await.is_some_and(|s| s["is_leader"] == true)
    }

    /// Base URL of the HTTP surface.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether the process has exited (without waiting).
    pub fn has_exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `signal`, returning the CLOCK_MONOTONIC moment just before it was sent, so that a
    /// signal-to-new-leader time is the difference of two readings of one clock.
    pub fn send(&self, signal: Signal) -> Result<u64, Error> {
        let failed = |source| Error::SignalFailed {
            id: self.id.clone(),
            signal,
            pid: self.pid,
            source,
        };
        let pid = i32::try_from(self.pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .ok_or_else(|| failed(std::io::Error::from(std::io::ErrorKind::InvalidInput)))?;
        let at = crate::monotonic_now_ns();
        rustix::process::kill_process(pid, signal.raw()).map_err(|e| failed(e.into()))?;
        Ok(at)
    }

    /// Sends the signal named `name` (`TERM`, `KILL`, `STOP`, `CONT`, `INT`, `HUP`); panics if
    /// it cannot: for tests.
    pub fn signal(&self, name: &str) {
        let Some(signal) = Signal::named(name) else {
            panic!("no signal named {name:?}; use TERM, KILL, STOP, CONT, INT or HUP");
        };
        if let Err(error) = self.send(signal) {
            panic!("{}", report(&error));
        }
    }

    /// Waits up to `within` for the process to exit and for its log to be read to the end
    /// (stderr closed), so [`Elector::logs`] and the [`Events`] then hold every line it wrote.
    pub async fn try_wait_exit(&mut self, within: Duration) -> Result<ExitStatus, Error> {
        let exited = async {
            let status = self.child.wait().await;
            let _ = self.logs.wait_for(|state| state.closed).await;
            status
        };
        match tokio::time::timeout(within, exited).await {
            Ok(status) => status.map_err(|source| Error::WaitFailed {
                id: self.id.clone(),
                source,
            }),
            Err(_) => Err(Error::DidNotExit {
                id: self.id.clone(),
                within,
                tail: self.tail(),
            }),
        }
    }

    /// [`Elector::try_wait_exit`], panicking on failure: for tests.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        self.try_wait_exit(within)
            .await
            .unwrap_or_else(|e| panic!("{}", report(&e)))
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`. Returns the exit status.
    pub async fn stop(&mut self, grace: Duration) -> Result<ExitStatus, Error> {
        if self.has_exited().is_some() {
            // Already gone: still read its log to the end.
            return self.try_wait_exit(grace).await;
        }
        self.send(Signal::Term)?;
        match self.try_wait_exit(grace).await {
            Ok(status) => Ok(status),
            Err(_) => {
                self.child.start_kill().map_err(|source| Error::KillFailed {
                    id: self.id.clone(),
                    source,
                })?;
                self.try_wait_exit(Duration::from_secs(5)).await
            }
        }
    }
}

fn lines_text(lines: &[Value]) -> String {
    lines.iter().map(Value::to_string).collect::<Vec<_>>().join("\n")
}

fn ns_field(value: &Value) -> Option<u64> {
    match value {
        Value::String(text) => text.parse().ok(),
        Value::Number(number) => number.as_u64(),
        _ => None,
    }
}

/// Reads a process's log lines until it closes stderr: every line kept (and appended to
/// `file`), leadership transitions pushed to `events`.
async fn read_logs(
    id: String,
    stderr: ChildStderr,
    events: Option<Events>,
    mut file: Option<tokio::fs::File>,
    logs: watch::Sender<LogState>,
) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(file) = file.as_mut() {
            let _ = file.write_all(format!("{line}\n").as_bytes()).await;
        }
        let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
        if let Some(events) = &events {
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
        logs.send_modify(|state| state.lines.push(value));
    }
    if let Some(file) = file.as_mut() {
        let _ = file.flush().await;
    }
    logs.send_modify(|state| state.closed = true);
}

/// A minimal HTTP/1.0 GET (the tests must not share code with what they test).
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String, String)> {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.ok()?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        let code = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((code, head.to_owned(), body.to_owned()))
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .flatten()
}

/// Polls `check` every 10 ms until it yields a value, or panics after `within` with `what`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The electors that report themselves leader right now.
pub async fn leaders(electors: &[Elector]) -> Vec<String> {
    let mut out = Vec::new();
    for elector in electors {
        if elector.is_leader().await {
            out.push(elector.id.clone());
        }
    }
    out
}

/// Waits until exactly one elector reports itself leader, returning its index.
pub async fn one_leader(electors: &[Elector], within: Duration) -> usize {
    eventually(within, "exactly one leader", || async {
        let now = leaders(electors).await;
        match now.as_slice() {
            [one] => electors.iter().position(|e| &e.id == one),
            _ => None,
        }
    })
    .await
}

/// The stored Lease (or other lock) named `test`, from the simulator.
pub fn lock_object(sim: &Sim, kind: &str) -> Option<Value> {
    sim.objects()
        .into_iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == "test")
}

/// The lease's holder and transitions.
pub fn lease_holder(sim: &Sim) -> Option<(String, i64)> {
    let lease = lock_object(sim, "Lease")?;
    Some((
        lease["spec"]["holderIdentity"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        lease["spec"]["leaseTransitions"].as_i64().unwrap_or_default(),
    ))
}
