//! Runs real `kube-elector` processes against `kube-sim`, for the end-to-end tests, the chaos
//! suite, the benchmarks and the demo.
//!
//! - [`elector`]: one process, its logs, its HTTP surface, signals.
//! - [`flood`]: idle and slow-header connection floods against an elector's port.
//! - [`timeline`]: leadership intervals on the shared monotonic clock, and the safety checks.
#![forbid(unsafe_code)]

pub mod elector;
pub mod fleet;
pub mod flood;
pub mod timeline;

pub use elector::*;

/// The `kube-elector` binary next to the running executable (`target/<profile>/`), or
/// `$KUBE_ELECTOR_BIN`.
pub fn elector_binary() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("KUBE_ELECTOR_BIN") {
        return path.into();
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") || dir.ends_with("examples") {
        dir.pop();
    }
    dir.join("kube-elector")
}

/// Now, in nanoseconds on CLOCK_MONOTONIC: the time axis the electors log on (the same reading
/// the simulator stamps its write log with).
pub fn monotonic_now_ns() -> u128 {
    u128::from(kube_sim::accounting::monotonic_ns())
}
