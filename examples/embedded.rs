//! A program that embeds the election: it competes for a Lease and says when it leads.
//!
//! ```text
//! cargo run -p kube-elector --example embedded -- --kubeconfig FILE --election NAME --id ID
//! ```
//!
//! `--lease-duration`, `--renew-deadline` and `--retry-period` (default 15s, 10s, 2s) are checked
//! with the sidecar's rules. A Lease that did not exist yet, or whose past is unknown, leads only a
//! lease duration after it is taken (see the crate documentation).
//!
//! Prints `became leader with fencing token N` when it starts leading and `stopped leading` when
//! it stops; on SIGTERM or Ctrl-C it steps down, releases the Lease (so another candidate takes
//! over at once) and exits 0. Exit 2 for arguments or a kubeconfig it cannot use.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use kube_elector::{Elector, Lock};
use tokio::signal::unix::{SignalKind, signal};

/// Competes for a Lease and prints its leadership transitions.
#[derive(Parser)]
struct Args {
    /// Kubeconfig to reach the API server with.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// The election's name: the Lease's name.
    #[arg(long)]
    election: String,
    /// This candidate's identity.
    #[arg(long)]
    id: String,
    /// The Lease's namespace.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// How long others wait before taking over an unrenewed Lease (whole seconds).
    #[arg(long, default_value = "15s", value_parser = duration)]
    lease_duration: Duration,
    /// How long a leader keeps leading after the send time of its last successful renew.
    #[arg(long, default_value = "10s", value_parser = duration)]
    renew_deadline: Duration,
    /// How often the leader renews.
    #[arg(long, default_value = "2s", value_parser = duration)]
    retry_period: Duration,
}

/// A duration such as `15s` or `500ms`.
fn duration(text: &str) -> Result<Duration, String> {
    let signed: jiff::SignedDuration = text
        .parse()
        .map_err(|error| format!("{error}; use e.g. 15s or 500ms"))?;
    Duration::try_from(signed).map_err(|_| format!("{text} is negative; use e.g. 15s or 500ms"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,kube_client::client::builder=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let client = match client(&args.kubeconfig).await {
        Ok(client) => client,
        Err(error) => {
            eprintln!("embedded: --kubeconfig {}: {error}", args.kubeconfig.display());
            return ExitCode::from(2);
        }
    };
    let elector = Elector::builder(client, Lock::lease(args.namespace, args.election), args.id)
        .timing(args.lease_duration, args.renew_deadline, args.retry_period)
        .build();
    let elector = match elector {
        Ok(elector) => elector,
        Err(error) => {
            eprintln!("embedded: {error}");
            return ExitCode::from(2);
        }
    };
    let (mut term, mut int) = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(term), Ok(int)) => (term, int),
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("embedded: installing signal handlers: {error}");
            return ExitCode::from(1);
        }
    };

    let mut state = elector.subscribe();
    let handle = elector.spawn();
    let mut leading = false;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            changed = state.changed() => {
                if changed.is_err() {
                    break;
                }
                // Asked at this moment: a claim whose deadline has passed is not leadership.
                let token = state.borrow_and_update().fencing_token_now();
                match (leading, token) {
                    (false, Some(token)) => println!("became leader with fencing token {token}"),
                    (true, None) => println!("stopped leading"),
                    _ => {}
                }
                leading = token.is_some();
            }
        }
    }
    // Steps down at once, then releases the Lease so another candidate takes over.
    let result = handle.shutdown().await;
    if leading {
        println!("stopped leading");
    }
    match result {
        Ok(()) => {
            println!("shut down");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("embedded: the election task failed: {error}");
            ExitCode::from(1)
        }
    }
}

async fn client(path: &std::path::Path) -> Result<kube::Client, Box<dyn std::error::Error>> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}
