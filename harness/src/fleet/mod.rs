//! Groups of real `kube-elector` processes for the benchmarks and the demo: any flags, errors
//! instead of panics, and every process's leadership transitions on one shared channel.
//!
//! The end-to-end tests use [`crate::elector`], which fixes the election name and the timings and
//! panics on failure (right for a test). The benchmark needs its own timings and fifty processes
//! whose transitions it can await together; the demo needs stable URLs across restarts and an
//! out-of-process simulator. Those are here:
//!
//! - [`process`]: one candidate process ([`Candidate`]), its launch [`Spec`], the shared
//!   leadership [`Events`], signals sent with their exact CLOCK_MONOTONIC moment.
//! - [`sim_process`]: the `kube-sim` binary as a child process (the demo).
//! - [`procfs`]: resident memory and CPU time of a process from `/proc`.
//! - [`stats`]: medians and percentiles.

pub mod process;
pub mod procfs;
pub mod sim_process;
pub mod stats;

pub use process::{Candidate, Events, LeaderEvent, Signal, Spec, Transition, now_ns};

/// A binary built next to the running executable (`target/<profile>/NAME`), or the path in the
/// environment variable `env` when set.
pub fn sibling_binary(name: &str, env: &str) -> std::path::PathBuf {
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

/// Parses a duration as the elector's flags write it: `500ms`, `3s`, `1m` (a bare number is
/// seconds).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{text:?} is not a duration; use e.g. 500ms, 3s or 1m");
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" | "" => value,
        "m" => value * 60.0,
        _ => return Err(bad()),
    };
    std::time::Duration::try_from_secs_f64(seconds).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_read_like_the_elector_flags() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("3h").is_err());
        assert!(parse_duration("s").is_err());
    }
}
