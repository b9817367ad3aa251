//! `fleet`: the simulator and a group of electors for a program in another language, so that
//! program starts nothing itself. `scripts/ship/live.py` runs it for the live proofs, with the
//! release binaries it is given.
//!
//! Starts `kube-sim serve` (kubeconfigs in `<workdir>/kubeconfigs`) and one `kube-elector` per
//! id of `--electors` (default: every client), each with the flags after `--`, its log in
//! `<workdir>/<id>.log`. Then it speaks JSON, one object a line on stdout:
//!
//! ```text
//! {"event":"ready","sim":{"url":…,"kubeconfig_dir":…},"electors":[{"id":…,"addr":…,"pid":…}]}
//! ```
//!
//! and reads commands, one a line on stdin, answering each with one line:
//!
//! | command    | does                                                  | answers                      |
//! |------------|-------------------------------------------------------|------------------------------|
//! | `term ID`  | SIGTERM, waits for the exit (`--grace`, then SIGKILL)  | `{"event":"exited",…}`       |
//! | `kill ID`  | SIGKILL, waits for the exit                           | `{"event":"exited",…}`       |
//! | `start ID` | starts ID again, on its previous address               | `{"event":"started",…}`      |
//!
//! With `--proxy` each elector also runs its leader-forwarding proxy in front of its stand-in
//! application, on a loopback port of its own that it keeps across restarts; the `ready` and
//! `started` lines then carry each elector's `proxy` address too.
//!
//! An `exited` answer carries `id`, `code` (null after a signal) and `signal` (null after an
//! exit). A command it cannot carry out is answered `{"event":"error","error":…}`.
//!
//! At end of input (the driving program closed its end or died), SIGTERM or SIGINT it stops every
//! elector (SIGTERM, then SIGKILL after `--grace`) and the simulator, prints
//! `{"event":"stopped","electors":[{"id":…,"code":…,"signal":…}]}` and exits 0.

use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitCode, ExitStatus};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use kube_elector::config::parse_duration;
use kube_elector_harness::fleet::sim_process::SimProcess;
use kube_elector_harness::{Elector, Launch, Signal, elector_binary, sim_binary};
use serde_json::{Value, json};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Debug, Parser)]
#[command(
    name = "fleet",
    about = "kube-sim and a group of kube-elector processes, driven by JSON lines on stdin/stdout"
)]
struct Args {
    /// The kube-elector binary [default: next to this one, or $KUBE_ELECTOR_BIN].
    #[arg(long)]
    elector: Option<PathBuf>,
    /// The kube-sim binary [default: next to this one, or $KUBE_SIM_BIN].
    #[arg(long)]
    sim: Option<PathBuf>,
    /// Holds the kubeconfigs (in kubeconfigs/) and every elector's log (<id>.log).
    #[arg(long)]
    workdir: PathBuf,
    /// The simulator's clients, comma-separated: one kubeconfig each.
    #[arg(long, value_delimiter = ',', required = true)]
    clients: Vec<String>,
    /// The clients to start an elector for, comma-separated [default: every client].
    #[arg(long, value_delimiter = ',', conflicts_with = "sim_only")]
    electors: Option<Vec<String>>,
    /// Start the simulator only (the caller runs the elector itself, e.g. in a container).
    #[arg(long)]
    sim_only: bool,
    /// Serve the Kubernetes API over plain HTTP instead of HTTPS.
    #[arg(long)]
    plain_http: bool,
    #[arg(long, default_value = "test")]
    election: String,
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Set POD_NAME (the id) and POD_NAMESPACE in each elector's environment, as in a pod.
    #[arg(long)]
    pod_env: bool,
    /// How long a process may take to start, and to exit after SIGTERM before it is killed.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    grace: Duration,
    /// Give each elector a healthy stand-in application to check (`--app-health`, every 500ms),
    /// so the application health series are exported.
    #[arg(long)]
    stand_in_app: bool,
    /// Run each elector's proxy in front of its stand-in application: `--proxy-listen` and
    /// `--advertise-address` a free loopback port, `--proxy-upstream` the application. Needs
    /// `--stand-in-app`.
    #[arg(long, requires = "stand_in_app")]
    proxy: bool,
    /// Further kube-elector flags, after `--` (timings, --follow, ...).
    #[arg(last = true)]
    elector_flags: Vec<String>,
    /// Each elector's stand-in application URL, with `--stand-in-app`.
    #[arg(skip)]
    app_urls: std::collections::HashMap<String, String>,
    /// Each elector's proxy and upstream addresses, with `--proxy`.
    #[arg(skip)]
    proxies: std::collections::HashMap<String, (SocketAddr, SocketAddr)>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let Err(error) = run(Args::parse()).await else {
        return ExitCode::SUCCESS;
    };
    eprintln!("fleet: {error:#}");
    ExitCode::FAILURE
}

async fn run(mut args: Args) -> Result<()> {
    let elector = args.elector.clone().unwrap_or_else(elector_binary);
    let sim_bin = args.sim.clone().unwrap_or_else(sim_binary);
    let ids = match (&args.electors, args.sim_only) {
        (_, true) => Vec::new(),
        (Some(ids), false) => ids.clone(),
        (None, false) => args.clients.clone(),
    };
    let needed = [
        (&sim_bin, "--sim", true),
        (&elector, "--elector", !ids.is_empty()),
    ];
    for (path, flag, _) in needed.into_iter().filter(|(_, _, needed)| *needed) {
        if !path.is_file() {
            bail!(
                "{flag}: no binary at {}; build it or give its path",
                path.display()
            );
        }
    }
    if let Some(id) = ids.iter().find(|id| !args.clients.contains(id)) {
        bail!(
            "--electors: {id:?} is not one of --clients {:?}; add it there",
            args.clients
        );
    }
    let kubeconfig_dir = args.workdir.join("kubeconfigs");
    std::fs::create_dir_all(&kubeconfig_dir)
        .with_context(|| format!("--workdir: creating {}", kubeconfig_dir.display()))?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;

    // Kept for the fleet's lifetime: a restarted elector checks the same application.
    let mut apps = Vec::new();
    if args.stand_in_app {
        for id in &ids {
            let app = kube_elector_harness::app::StandInApp::start(true)
                .await
                .context("starting a stand-in application")?;
            args.app_urls.insert(id.clone(), app.url());
            if args.proxy {
                let proxy = kube_elector_harness::echo::free_loopback_addr()
                    .context("--proxy: finding a free port")?;
                args.proxies.insert(id.clone(), (proxy, app.addr()));
            }
            apps.push(app);
        }
    }
    let flags: &[&str] = if args.plain_http { &["--plain-http"] } else { &[] };
    let mut sim = SimProcess::start_with(&sim_bin, &args.clients, &kubeconfig_dir, flags, args.grace).await?;
    let base = Launch {
        namespace: args.namespace.clone(),
        args: args.elector_flags.clone(),
        own_process_group: true,
        within: args.grace,
        ..Launch::new(&elector, &kubeconfig_dir, &args.election, "")
    };
    let launches = ids.iter().map(|id| launch_of(&base, &args, id, None)).collect();
    let mut electors = match Elector::launch_all(launches).await {
        Ok(electors) => electors,
        Err(error) => {
            let _ = sim.stop(args.grace).await;
            return Err(error.into());
        }
    };
    say(&json!({
        "event": "ready",
        "sim": {"url": sim.url, "kubeconfig_dir": kubeconfig_dir},
        "electors": electors.iter().map(|e| started(e, &args)).collect::<Vec<_>>(),
    }));

    let mut lines = stdin_lines();
    loop {
        let line = tokio::select! {
            line = lines.recv() => line,
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
        };
        let Some(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let answer = command(&base, &args, &mut electors, &line)
            .await
            .unwrap_or_else(|error| json!({"event": "error", "error": format!("{error:#}")}));
        say(&answer);
    }

    let mut stopped = Vec::new();
    // All at once, then each waited for: a group stops in one grace period, not one each.
    for elector in &mut electors {
        if elector.has_exited().is_none() {
            let _ = elector.send(Signal::Term);
        }
    }
    for elector in &mut electors {
        let status = elector.stop(args.grace).await;
        stopped.push(match status {
            Ok(status) => exited(&elector.id, status),
            Err(error) => json!({"id": elector.id, "error": format!("{error:#}")}),
        });
    }
    let _ = sim.stop(args.grace).await;
    say(&json!({"event": "stopped", "electors": stopped}));
    Ok(())
}

/// Lines from stdin, read on a thread of their own; the channel closes at end of input.
fn stdin_lines() -> tokio::sync::mpsc::Receiver<String> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Carries out one command line and says what happened.
async fn command(base: &Launch, args: &Args, electors: &mut [Elector], line: &str) -> Result<Value> {
    let (verb, id) = line
        .trim()
        .split_once(' ')
        .with_context(|| format!("{line:?}: expected `term ID`, `kill ID` or `start ID`"))?;
    let id = id.trim();
    let Some(elector) = electors.iter_mut().find(|e| e.id == id) else {
        bail!("{line:?}: no elector {id:?} in this fleet");
    };
    match verb {
        "term" => {
            let status = elector.stop(args.grace).await?;
            Ok(exited(id, status))
        }
        "kill" => {
            if elector.has_exited().is_none() {
                elector.send(Signal::Kill)?;
            }
            let status = elector.try_wait_exit(args.grace).await?;
            Ok(exited(id, status))
        }
        "start" => {
            if elector.has_exited().is_none() {
                bail!("{line:?}: {id} is still running; stop it first (term or kill)");
            }
            *elector = Elector::launch(launch_of(base, args, id, Some(elector.addr))).await?;
            let mut answer = started(elector, args);
            answer["event"] = json!("started");
            Ok(answer)
        }
        _ => bail!("{line:?}: unknown command {verb:?}; use term, kill or start"),
    }
}

fn launch_of(base: &Launch, args: &Args, id: &str, addr: Option<SocketAddr>) -> Launch {
    let mut launch = base.with_id(id);
    if let Some(addr) = addr {
        launch.http = addr;
    }
    if args.pod_env {
        launch.env = vec![
            ("POD_NAME".into(), id.into()),
            ("POD_NAMESPACE".into(), args.namespace.clone()),
        ];
    }
    if let Some(url) = args.app_urls.get(id) {
        launch.args.extend(
            [
                "--app-health",
                url,
                "--app-health-period",
                "500ms",
                "--app-health-timeout",
                "500ms",
            ]
            .map(String::from),
        );
    }
    if let Some((proxy, upstream)) = args.proxies.get(id) {
        let (proxy, upstream) = (proxy.to_string(), upstream.to_string());
        launch.args.extend(
            [
                "--proxy-listen",
                &proxy,
                "--advertise-address",
                &proxy,
                "--proxy-upstream",
                &upstream,
            ]
            .map(String::from),
        );
    }
    launch.log_file = Some(args.workdir.join(format!("{id}.log")));
    launch
}

fn started(elector: &Elector, args: &Args) -> Value {
    let mut line = json!({"id": elector.id, "addr": elector.addr, "pid": elector.pid()});
    if let Some((proxy, _)) = args.proxies.get(&elector.id) {
        line["proxy"] = json!(proxy);
    }
    line
}

fn exited(id: &str, status: ExitStatus) -> Value {
    json!({"event": "exited", "id": id, "code": status.code(), "signal": status.signal()})
}

/// One line on stdout. A reader that went away is noticed on stdin (end of input), not here.
fn say(value: &Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}").and_then(|()| out.flush());
}
