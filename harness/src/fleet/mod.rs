//! What the benchmarks, the demo and the `fleet` binary need around a group of electors (each
//! started with [`crate::elector::Launch`], transitions gathered on [`crate::events::Events`]):
//!
//! - [`sim_process`]: the `kube-sim` binary as a child process (out of process, so its URL and
//!   admin API are usable from elsewhere while the electors run).
//! - [`procfs`]: resident memory and CPU time of a process from `/proc`.
//! - [`stats`]: medians and percentiles.

pub mod procfs;
pub mod sim_process;
pub mod stats;
