//! The `kube-sim` binary as a child process: `kube-sim serve` on a free loopback port, its
//! kubeconfigs in a directory of the caller's choosing, its URL read from the
//! `listening on <URL>` line. Out of process, the simulator's URL and `/sim/` admin API are
//! usable from another terminal (or another program: `fleet`, for the live proofs) while the
//! electors run.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `kube-sim serve`. Dropping it kills the process.
#[derive(Debug)]
pub struct SimProcess {
    /// Base URL, e.g. `https://127.0.0.1:41234`.
    pub url: String,
    /// Holds `<client>.kubeconfig` for every client.
    pub kubeconfig_dir: PathBuf,
    child: Child,
}

impl SimProcess {
    /// Starts `binary serve` for `clients` over HTTPS, writing kubeconfigs to `kubeconfig_dir`,
    /// and waits up to `within` for its URL.
    pub async fn start(
        binary: &Path,
        clients: &[String],
        kubeconfig_dir: &Path,
        within: Duration,
    ) -> Result<Self> {
        Self::start_with(binary, clients, kubeconfig_dir, &[], within).await
    }

    /// Like [`SimProcess::start`], with further `kube-sim serve` flags (e.g. `--plain-http`).
    pub async fn start_with(
        binary: &Path,
        clients: &[String],
        kubeconfig_dir: &Path,
        flags: &[&str],
        within: Duration,
    ) -> Result<Self> {
        let mut child = Command::new(binary)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--clients",
                &clients.join(","),
            ])
            .arg("--kubeconfig-dir")
            .arg(kubeconfig_dir)
            .args(flags)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("kube-sim: no stdout pipe"))?;
        let mut stderr = child
            .stderr
            .take()
            .ok_or_else(|| anyhow!("kube-sim: no stderr pipe"))?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(within, lines.next_line()).await;
        let url = match first {
            Ok(Ok(Some(line))) => line.strip_prefix("listening on ").map(str::to_owned),
            _ => None,
        };
        let Some(url) = url else {
            let _ = child.start_kill();
            let mut errors = String::new();
            let _ = tokio::time::timeout(Duration::from_secs(2), stderr.read_to_string(&mut errors)).await;
            bail!(
                "{} did not print `listening on <URL>` within {within:?}; its stderr:\n{}",
                binary.display(),
                errors.trim_end()
            );
        };
        // Keep both pipes drained so the simulator never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = stderr.read_to_end(&mut sink).await;
        });
        Ok(Self {
            url,
            kubeconfig_dir: kubeconfig_dir.to_owned(),
            child,
        })
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    pub async fn stop(&mut self, grace: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.child.try_wait().context("checking on kube-sim")? {
            return Ok(status);
        }
        let pid = self
            .child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw)
            .ok_or_else(|| anyhow!("kube-sim has no process id"))?;
        rustix::process::kill_process(pid, rustix::process::Signal::TERM)
            .context("sending SIGTERM to kube-sim")?;
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => status.context("waiting for kube-sim to exit"),
            Err(_) => {
                self.child.start_kill().context("killing kube-sim")?;
                self.child.wait().await.context("waiting for kube-sim to exit")
            }
        }
    }
}
