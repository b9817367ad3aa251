//! `examples/embedded.rs` against the simulator: the library embedded in a program of its own.
//!
//! The example binary is built by `cargo test` (examples are built by default, next to the test
//! binaries in `target/<profile>/examples/`); a narrow `cargo test --test embedded_example`
//! does not build it: run `cargo build --example embedded` first, or set
//! `$KUBE_ELECTOR_EXAMPLE_EMBEDDED`.

use std::process::Stdio;
use std::time::Duration;

use kube_elector_harness::{binary, timing_args};
use kube_sim::{Sim, SimOptions};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Generous: a correctness bound, not a timing claim.
const WITHIN: Duration = Duration::from_secs(30);

struct Example {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Example {
    fn start(sim: &Sim, id: &str) -> Example {
        let path = binary("examples/embedded", "KUBE_ELECTOR_EXAMPLE_EMBEDDED");
        assert!(
            path.exists(),
            "{} is missing: `cargo test` builds it; for a narrow run, `cargo build --example embedded` first",
            path.display()
        );
        let mut child = Command::new(&path)
            .arg("--kubeconfig")
            .arg(sim.kubeconfig_path(id))
            .args(["--election", "embedded", "--id", id])
            // The end-to-end tests' short timings: a new Lease leads a lease duration after it is
            // taken.
            .args(timing_args())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the example starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Example { child, lines }
    }

    /// The next stdout line containing `needle`, skipping others.
    async fn line_with(&mut self, needle: &str) -> String {
        let found = tokio::time::timeout(WITHIN, async {
            while let Some(line) = self.lines.recv().await {
                if line.contains(needle) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            Ok(None) => panic!("the example's stdout closed before a line with {needle:?}"),
            Err(_) => panic!("no line with {needle:?} within {WITHIN:?}"),
        }
    }

    fn terminate(&self) {
        let pid = self
            .child
            .id()
            .and_then(|pid| rustix::process::Pid::from_raw(pid as i32))
            .expect("the example is running");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM is delivered");
    }
}

fn token(line: &str) -> u64 {
    line.rsplit(' ')
        .next()
        .and_then(|word| word.parse().ok())
        .unwrap_or_else(|| panic!("no fencing token at the end of {line:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_example_leads_and_hands_over_on_sigterm_with_a_higher_token() {
    let sim = Sim::start(SimOptions::new(["a", "b"]))
        .await
        .expect("simulator starts");
    let mut a = Example::start(&sim, "a");
    let first = a.line_with("became leader").await;
    let first_token = token(&first);

    let mut b = Example::start(&sim, "b");
    // b follows a's held Lease; it takes over on a's release (an expiry would do too, but a's
    // clean exit and the token order are what is checked).
    a.terminate();
    a.line_with("stopped leading").await;
    let status = tokio::time::timeout(WITHIN, a.child.wait())
        .await
        .expect("a exits after SIGTERM")
        .expect("a's status");
    assert!(status.success(), "a exits cleanly: {status}");

    let second = b.line_with("became leader").await;
    assert!(
        token(&second) > first_token,
        "b's token {second:?} must exceed a's {first:?}"
    );
    let holder = sim
        .objects()
        .into_iter()
        .find(|o| o["kind"] == "Lease" && o["metadata"]["name"] == "embedded")
        .expect("the Lease exists");
    assert_eq!(holder["spec"]["holderIdentity"], "b", "{holder}");

    b.terminate();
    b.line_with("stopped leading").await;
    tokio::time::timeout(WITHIN, b.child.wait())
        .await
        .expect("b exits after SIGTERM")
        .expect("b's status");
    // b released on its way out: the Lease names no holder.
    let released = sim
        .objects()
        .into_iter()
        .find(|o| o["kind"] == "Lease" && o["metadata"]["name"] == "embedded")
        .expect("the Lease exists");
    assert!(
        released["spec"]["holderIdentity"]
            .as_str()
            .unwrap_or("")
            .is_empty(),
        "released: {released}"
    );
    sim.shutdown().await;
}
