//! One real `kube-elector` process, driven and observed from outside.
//!
//! Each [`Elector`] is the real binary, started with its own kubeconfig from the simulator, JSON
//! logs on stderr (collected and searchable), and its HTTP surface on a port it picks itself
//! (read back from its log). Nothing here shares code with what it tests: status comes over a
//! raw HTTP/1.0 request, signals through `kill`.
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
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::time::Instant;

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

/// One running elector process.
pub struct Elector {
    pub id: String,
    pub addr: SocketAddr,
    binary: PathBuf,
    env: Vec<(String, String)>,
    child: Child,
    logs: watch::Receiver<Vec<Value>>,
    /// Becomes true once the log reader has reached the end of stderr.
    logs_closed: watch::Receiver<bool>,
    kubeconfig: PathBuf,
    args: Vec<String>,
}

impl Elector {
    /// Starts `binary` as `id` (also the simulator client) in election `test`, with `extra`
    /// arguments and the short test timings (unless `extra` sets `--lease-duration`).
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
        let kubeconfig = sim.kubeconfig_path(id);
        let mut args: Vec<String> = vec![
            "--election".into(),
            "test".into(),
            "--namespace".into(),
            "default".into(),
        ];
        if !extra.contains(&"--lease-duration") {
            args.extend(timing_args());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn(binary.to_owned(), env.to_vec(), id, kubeconfig, args).await
    }

    /// Starts the same process again (after it exited or was killed).
    pub async fn restart(&mut self) {
        let (binary, env, kubeconfig, args) = (
            self.binary.clone(),
            self.env.clone(),
            self.kubeconfig.clone(),
            self.args.clone(),
        );
        *self = Self::spawn(binary, env, &self.id.clone(), kubeconfig, args).await;
    }

    async fn spawn(
        binary: PathBuf,
        env: Vec<(String, String)>,
        id: &str,
        kubeconfig: PathBuf,
        args: Vec<String>,
    ) -> Elector {
        let mut command = Command::new(&binary);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(&args)
            .args([
                "--id",
                id,
                "--http",
                "127.0.0.1:0",
                "--log-format",
                "json",
                "--log-level",
                "info",
            ])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("kube-elector starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, logs) = watch::channel(Vec::new());
        let (closed_tx, logs_closed) = watch::channel(false);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                tx.send_modify(|logs| logs.push(value));
            }
            closed_tx.send_replace(true);
        });
        let mut elector = Elector {
            id: id.to_owned(),
            addr: ([127, 0, 0, 1], 0).into(),
            binary,
            env,
            child,
            logs,
            logs_closed,
            kubeconfig,
            args,
        };
        let line = elector
            .wait_log(|l| l["address"].is_string(), Duration::from_secs(30))
            .await;
        elector.addr = line["address"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .expect("address is host:port");
        elector
    }

    /// The log lines so far.
    pub fn logs(&self) -> Vec<Value> {
        self.logs.borrow().clone()
    }

    /// Waits for a log line matching `pred`, returning it.
    pub async fn wait_log(&mut self, pred: impl Fn(&Value) -> bool, within: Duration) -> Value {
        let found = tokio::time::timeout(within, self.logs.wait_for(|logs| logs.iter().any(&pred)))
            .await
            .ok()
            .and_then(Result::ok)
            .and_then(|logs| logs.iter().find(|l| pred(l)).cloned());
        match found {
            Some(line) => line,
            None => panic!(
                "{}: no matching log line within {within:?}; logs:\n{}",
                self.id,
                self.dump_logs()
            ),
        }
    }

    /// Lines with this message.
    pub fn log_messages(&self, message: &str) -> Vec<Value> {
        self.logs
            .borrow()
            .iter()
            .filter(|l| l["message"] == message)
            .cloned()
            .collect()
    }

    pub fn dump_logs(&self) -> String {
        self.logs
            .borrow()
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join("\n")
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

    /// Whether the process has exited (without waiting).
    pub fn has_exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn pid(&self) -> i32 {
        self.child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .expect("process is running")
    }

    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// Waits for the process to exit and for its log to be read to the end (stderr closed), so
    /// [`Elector::logs`] then holds every line the process wrote.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let exited = async {
            let status = self.child.wait().await.ok()?;
            self.logs_closed.wait_for(|closed| *closed).await.ok()?;
            Some(status)
        };
        match tokio::time::timeout(within, exited).await {
            Ok(Some(status)) => status,
            _ => panic!(
                "{} did not exit (or close its stderr) within {within:?}; logs:\n{}",
                self.id,
                self.dump_logs()
            ),
        }
    }
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
