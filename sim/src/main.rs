//! The `kube-sim` binary: parses flags, starts the simulator, prints `listening on <URL>`, and
//! runs until SIGTERM or SIGINT. Bad flags exit 2; start-up failures exit 1.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use kube_sim::{Sim, SimOptions};

#[derive(Debug, Parser)]
#[command(
    name = "kube-sim",
    about = "A Kubernetes API server simulator for leader-election tests"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API until SIGTERM/SIGINT.
    Serve {
        /// Listen address; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Client names, comma-separated; each gets a token, a kubeconfig and a Pod.
        #[arg(long, value_delimiter = ',', required = true)]
        clients: Vec<String>,
        /// Where to write `<client>.kubeconfig`.
        #[arg(long)]
        kubeconfig_dir: PathBuf,
        /// Serve plain HTTP instead of HTTPS.
        #[arg(long)]
        plain_http: bool,
        /// Extra namespaces besides default and kube-system.
        #[arg(long, value_delimiter = ',')]
        namespaces: Vec<String>,
        /// Interval between watch bookmarks (e.g. 10s, 500ms, 1m).
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        bookmark_interval: Duration,
        /// Watch history window, in events.
        #[arg(long, default_value_t = 1000)]
        history: usize,
    },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration; use e.g. 10s, 500ms, 1m or 1h");
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| s.split_at(i))
        .ok_or_else(|| format!("{s:?} has no unit; write {s}s for seconds (or {s}ms, {s}m)"))?;
    let n: u64 = num.parse().map_err(|_| bad())?;
    let seconds = |per: u64| n.checked_mul(per).map(Duration::from_secs).ok_or_else(bad);
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        _ => Err(bad()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let Command::Serve {
        listen,
        clients,
        kubeconfig_dir,
        plain_http,
        namespaces,
        bookmark_interval,
        history,
    } = cli.command;
    let opts = SimOptions::new(clients)
        .listen(listen)
        .kubeconfig_dir(kubeconfig_dir)
        .plain_http(plain_http)
        .namespaces(namespaces)
        .bookmark_interval(bookmark_interval)
        .history(history);
    let sim = match Sim::start(opts).await {
        Ok(sim) => sim,
        Err(
            e @ (kube_sim::Error::NoClients
            | kube_sim::Error::BadClient { .. }
            | kube_sim::Error::DuplicateClient(_)
            | kube_sim::Error::BadNamespace { .. }),
        ) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "listening on {}", sim.url())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        eprintln!("error: cannot write to stdout");
        return ExitCode::from(1);
    }
    if let Err(e) = wait_for_signal().await {
        eprintln!("error: installing signal handlers: {e}");
        return ExitCode::from(1);
    }
    tracing::info!("shutting down");
    sim.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        r = tokio::signal::ctrl_c() => r?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(
            parse_duration("7").is_err_and(|e| e.contains("write 7s")),
            "a bare number is refused, as kube-elector refuses it"
        );
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
