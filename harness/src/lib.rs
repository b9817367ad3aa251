//! Runs real `kube-elector` processes against `kube-sim`, for the end-to-end tests, the chaos
//! suite, the benchmarks, the demo and the live proofs of `scripts/check-ship.sh`.
//!
//! - [`app`]: a stand-in application whose health endpoint a test flips (`--app-health`).
//! - [`echo`]: the proxy's stand-in application (names its pod, echoes its token) and load client.
//! - [`elector`]: the one launcher: one process, its logs, its HTTP surface, signals.
//! - [`exec_child`]: exec mode's recording child and the no-overlap check of children.
//! - [`events`]: the leadership transitions of a group of processes, on one channel.
//! - [`fleet`]: the simulator as a child process, `/proc` samples, statistics.
//! - [`proxy_bench`]: the leader-forwarding proxy's section of the benchmark.
//! - [`flood`]: idle and slow-header connection floods against an elector's port.
//! - [`timeline`]: leadership intervals on the shared monotonic clock, and the safety checks.
//! - [`tools`]: external programs a test needs: run, or skip saying so (fail under CI).
//!
//! The binaries they drive are found one way, [`binary`]: next to the running executable, or
//! where an environment variable says.
#![forbid(unsafe_code)]

pub mod app;
pub mod echo;
pub mod elector;
pub mod events;
pub mod exec_child;
pub mod fleet;
pub mod flood;
pub mod proxy_bench;
pub mod timeline;
pub mod tools;

pub use elector::*;

/// A binary built next to the running executable (`target/<profile>/NAME`), or the path in the
/// environment variable `env` when set.
pub fn binary(name: &str, env: &str) -> std::path::PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return path.into();
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") || dir.ends_with("examples") {
        dir.pop();
    }
    dir.join(name)
}

/// The `kube-elector` binary next to the running executable, or `$KUBE_ELECTOR_BIN`.
pub fn elector_binary() -> std::path::PathBuf {
    binary("kube-elector", "KUBE_ELECTOR_BIN")
}

/// The `kube-sim` binary next to the running executable, or `$KUBE_SIM_BIN`.
pub fn sim_binary() -> std::path::PathBuf {
    binary("kube-sim", "KUBE_SIM_BIN")
}

/// Now, in nanoseconds on CLOCK_MONOTONIC: the time axis the electors log on (the same reading
/// the simulator stamps its write log with).
pub fn monotonic_now_ns() -> u64 {
    kube_sim::accounting::monotonic_ns()
}
