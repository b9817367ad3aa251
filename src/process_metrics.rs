//! Process metrics read from `/proc/self` at scrape time (the boot time from `/proc/stat` once, at
//! start-up), with the Prometheus client libraries' standard names: `process_resident_memory_bytes`,
//! `process_virtual_memory_bytes`, `process_cpu_seconds_total`, `process_open_fds`,
//! `process_max_fds`, `process_start_time_seconds`.
//!
//! Linux only: on other systems (or when `/proc` is not mounted) the families are simply absent.
//! A value that cannot be read is left out of that scrape rather than reported as 0. CPU time uses
//! `USER_HZ` = 100 ticks per second, the value the kernel exposes to user space on every mainstream
//! architecture (Go's `procfs` makes the same assumption).
//!
//! Why not `kubert-prometheus-process`, which does the same for prometheus-client: its latest
//! release (0.2.3) is built against prometheus-client 0.23 while this crate uses 0.25, whose
//! `Registry` it cannot register into without a second copy of the client library, and it brings
//! `procfs` and its dependency tree for six values read here from two files.

use std::path::{Path, PathBuf};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

/// Registers the process collector for this process in `registry` where `/proc/self` exists;
/// returns whether it did.
pub fn register(registry: &mut Registry) -> bool {
    ProcessCollector::register_for_self(registry)
}

/// Clock ticks per second as seen through `/proc` (`USER_HZ`).
const USER_HZ: f64 = 100.0;

/// One reading of the process's resources. Every field is `None` when it could not be read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessSnapshot {
    /// Resident set size in bytes (`VmRSS` of `status`).
    pub resident_memory_bytes: Option<u64>,
    /// Virtual memory size in bytes (`VmSize` of `status`).
    pub virtual_memory_bytes: Option<u64>,
    /// User plus system CPU time spent so far, in seconds.
    pub cpu_seconds: Option<f64>,
    /// Number of file descriptors open now (entries of `fd`).
    pub open_fds: Option<u64>,
    /// The soft limit on open file descriptors (`Max open files` of `limits`).
    pub max_fds: Option<u64>,
    /// When the process started, in seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
}

/// Reads [`ProcessSnapshot`]s from a procfs root (`/proc` in production, a fixture in tests).
#[derive(Clone, Debug)]
pub struct ProcessCollector {
    pid_dir: PathBuf,
    /// `btime` of `proc_root/stat`, read once: the boot time does not change while we run, and
    /// `/proc/stat` is the largest file a scrape would otherwise read (a line per CPU and IRQ).
    boot_time: Option<u64>,
}

impl ProcessCollector {
    /// The collector for this process, or `None` where `/proc/self` does not exist.
    pub fn for_self() -> Option<Self> {
        let proc_root = PathBuf::from("/proc");
        let pid_dir = proc_root.join("self");
        pid_dir
            .join("stat")
            .exists()
            .then(|| Self::at(proc_root, pid_dir))
    }

    /// A collector over an arbitrary procfs layout: `proc_root/stat` (read here, once) and
    /// `pid_dir/{stat,status,limits,fd}` (read at every snapshot).
    pub fn at(proc_root: impl Into<PathBuf>, pid_dir: impl Into<PathBuf>) -> Self {
        let boot_time = read(&proc_root.into().join("stat")).and_then(|text| parse_boot_time(&text));
        Self {
            pid_dir: pid_dir.into(),
            boot_time,
        }
    }

    /// Registers the collector in `registry` if this system has `/proc/self`; returns whether it did.
    pub fn register_for_self(registry: &mut Registry) -> bool {
        match Self::for_self() {
            Some(collector) => {
                registry.register_collector(Box::new(collector));
                true
            }
            None => false,
        }
    }

    /// Reads every value it can.
    pub fn snapshot(&self) -> ProcessSnapshot {
        let stat = read(&self.pid_dir.join("stat")).and_then(|text| parse_stat(&text));
        let status = read(&self.pid_dir.join("status"));
        ProcessSnapshot {
            resident_memory_bytes: status
                .as_deref()
                .and_then(|s| status_kib(s, "VmRSS:"))
                .map(|kib| kib * 1024),
            virtual_memory_bytes: status
                .as_deref()
                .and_then(|s| status_kib(s, "VmSize:"))
                .map(|kib| kib * 1024),
            cpu_seconds: stat.map(|s| (s.utime_ticks + s.stime_ticks) as f64 / USER_HZ),
            open_fds: std::fs::read_dir(self.pid_dir.join("fd"))
                .ok()
                .map(|dir| dir.count() as u64),
            max_fds: read(&self.pid_dir.join("limits")).and_then(|text| parse_max_open_files(&text)),
            start_time_seconds: stat
                .zip(self.boot_time)
                .map(|(s, boot)| boot as f64 + s.start_time_ticks as f64 / USER_HZ),
        }
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshot = self.snapshot();
        let gauges: [(&str, &str, Option<Unit>, Option<f64>); 5] = [
            (
                "process_resident_memory",
                "Resident memory size in bytes",
                Some(Unit::Bytes),
                snapshot.resident_memory_bytes.map(|v| v as f64),
            ),
            (
                "process_virtual_memory",
                "Virtual memory size in bytes",
                Some(Unit::Bytes),
                snapshot.virtual_memory_bytes.map(|v| v as f64),
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                None,
                snapshot.open_fds.map(|v| v as f64),
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors (soft limit)",
                None,
                snapshot.max_fds.map(|v| v as f64),
            ),
            (
                "process_start_time",
                "Start time of the process since the Unix epoch in seconds",
                Some(Unit::Seconds),
                snapshot.start_time_seconds,
            ),
        ];
        for (name, help, unit, value) in gauges {
            if let Some(value) = value {
                let gauge = ConstGauge::new(value);
                let metric = encoder.encode_descriptor(name, help, unit.as_ref(), gauge.metric_type())?;
                gauge.encode(metric)?;
            }
        }
        if let Some(seconds) = snapshot.cpu_seconds {
            let counter = ConstCounter::new(seconds);
            let metric = encoder.encode_descriptor(
                "process_cpu",
                "Total user and system CPU time spent in seconds",
                Some(&Unit::Seconds),
                counter.metric_type(),
            )?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stat {
    utime_ticks: u64,
    stime_ticks: u64,
    start_time_ticks: u64,
}

/// Fields 14 (utime), 15 (stime) and 22 (starttime) of `/proc/<pid>/stat`. The command name (field
/// 2) is in parentheses and may contain spaces and parentheses, so fields are counted after the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `fields[0]` is field 3 (state).
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(Stat {
        utime_ticks: field(14)?,
        stime_ticks: field(15)?,
        start_time_ticks: field(22)?,
    })
}

/// `btime` of `/proc/stat`: boot time in seconds since the epoch.
fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// A `Key:   1234 kB` line of `/proc/<pid>/status`, in KiB.
fn status_kib(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find_map(|line| line.strip_prefix(key))?;
    line.split_whitespace().next()?.parse().ok()
}

/// The soft limit of the `Max open files` row of `/proc/<pid>/limits`; `None` for "unlimited".
fn parse_max_open_files(text: &str) -> Option<u64> {
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))?;
    line.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    const STAT: &str = "4242 (kube (elector) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                        250 150 0 0 20 0 8 0 123456 110000000 3000 18446744073709551615";
    const STATUS: &str = "Name:\tkube-elector\nVmSize:\t  110000 kB\nVmRSS:\t    12000 kB\nThreads:\t8\n";
    const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units\n\
                          Max cpu time              unlimited            unlimited            seconds\n\
                          Max open files            1024                 524288               files\n";

    #[test]
    fn parses_stat_after_a_command_name_with_spaces_and_parentheses() {
        let stat = parse_stat(STAT).expect("fixture parses");
        assert_eq!(
            stat,
            Stat {
                utime_ticks: 250,
                stime_ticks: 150,
                start_time_ticks: 123456
            }
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1"), None, "a truncated line has no field 22");
    }

    #[test]
    fn parses_status_limits_and_boot_time() {
        assert_eq!(status_kib(STATUS, "VmRSS:"), Some(12000));
        assert_eq!(status_kib(STATUS, "VmSize:"), Some(110000));
        assert_eq!(parse_max_open_files(LIMITS), Some(1024));
        assert_eq!(
            parse_max_open_files("Max open files  unlimited unlimited files\n"),
            None
        );
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n"),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn snapshot_of_a_fixture_tree() {
        let dir = std::env::temp_dir().join(format!("kube-elector-proc-{}", std::process::id()));
        let pid = dir.join("4242");
        std::fs::create_dir_all(pid.join("fd")).unwrap();
        std::fs::write(dir.join("stat"), "btime 1700000000\n").unwrap();
        std::fs::write(pid.join("stat"), STAT).unwrap();
        std::fs::write(pid.join("status"), STATUS).unwrap();
        std::fs::write(pid.join("limits"), LIMITS).unwrap();
        for fd in ["0", "1", "2"] {
            std::fs::write(pid.join("fd").join(fd), "").unwrap();
        }
        let collector = ProcessCollector::at(&dir, &pid);
        let snapshot = collector.snapshot();
        // The boot time is read once, when the collector is made: a later scrape does not read
        // /proc/stat again (here it would see a different btime).
        std::fs::write(dir.join("stat"), "btime 1800000000\n").unwrap();
        let again = collector.snapshot();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            again.start_time_seconds, snapshot.start_time_seconds,
            "the start time must not follow a re-read of /proc/stat"
        );
        assert_eq!(
            snapshot,
            ProcessSnapshot {
                resident_memory_bytes: Some(12000 * 1024),
                virtual_memory_bytes: Some(110000 * 1024),
                cpu_seconds: Some(4.0),
                open_fds: Some(3),
                max_fds: Some(1024),
                start_time_seconds: Some(1_700_000_000.0 + 1234.56),
            }
        );
    }

    #[test]
    fn a_missing_tree_yields_no_families() {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ProcessCollector::at(
            "/nonexistent/proc",
            "/nonexistent/proc/self",
        )));
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert_eq!(text, "# EOF\n", "expected no families, got:\n{text}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reports_every_family() {
        let mut registry = Registry::default();
        assert!(
            ProcessCollector::register_for_self(&mut registry),
            "/proc/self must exist on Linux"
        );
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        for name in [
            "process_resident_memory_bytes ",
            "process_virtual_memory_bytes ",
            "process_open_fds ",
            "process_max_fds ",
            "process_start_time_seconds ",
            "process_cpu_seconds_total ",
        ] {
            assert!(
                text.lines().any(|line| line.starts_with(name)),
                "expected a {name}sample in:\n{text}"
            );
        }
    }
}
