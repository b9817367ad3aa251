//! Resident memory and CPU time of a process, read from `/proc/<pid>/status` (`VmRSS`),
//! `/proc/<pid>/stat` (`utime` + `stime`, in clock ticks) and, for a finer figure, the run time
//! in nanoseconds of each of its threads (`/proc/<pid>/task/<tid>/schedstat`, first field). An
//! idle process uses less than one clock tick (10 ms) in many seconds, so over a short window the
//! tick count is mostly zero; the nanosecond sum misses only threads that exited in the window.

use anyhow::{Context, Result, anyhow};

/// One reading of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Resident set size, KiB.
    pub rss_kib: u64,
    /// User plus system CPU time so far, in clock ticks (see [`ticks_per_second`]).
    pub cpu_ticks: u64,
    /// Run time of the live threads, nanoseconds (`None` without schedstat support).
    pub cpu_ns: Option<u64>,
}

/// Clock ticks per second, the unit of [`Sample::cpu_ticks`].
pub fn ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second()
}

/// Reads `pid`'s resident memory and CPU time.
pub fn sample(pid: u32) -> Result<Sample> {
    let status_path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&status_path).with_context(|| format!("reading {status_path}"))?;
    let stat_path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&stat_path).with_context(|| format!("reading {stat_path}"))?;
    Ok(Sample {
        rss_kib: parse_rss_kib(&status).ok_or_else(|| anyhow!("{status_path}: no VmRSS line"))?,
        cpu_ticks: parse_cpu_ticks(&stat).ok_or_else(|| anyhow!("{stat_path}: no utime/stime fields"))?,
        cpu_ns: thread_run_time_ns(pid),
    })
}

/// Sum of the first field of every thread's `schedstat`.
fn thread_run_time_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0;
    for task in tasks.flatten() {
        // A thread may exit between the listing and the read; it then counts for nothing.
        if let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) {
            total += text.split_whitespace().next()?.parse::<u64>().ok()?;
        }
    }
    Some(total)
}

fn parse_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `utime + stime`: fields 14 and 15 of `/proc/<pid>/stat`, counted after the command name,
/// which is in parentheses and may itself contain spaces and parentheses.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // fields[0] is field 3 (state), so field 14 is fields[11].
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_and_cpu_fields() {
        assert_eq!(
            parse_rss_kib("Name:\tx\nVmRSS:\t    8120 kB\nVmSwap:\t0 kB\n"),
            Some(8120)
        );
        let stat = "1234 (kube (elector)) S 1 1234 1234 0 -1 4194560 700 0 0 0 17 5 0 0 20 0 3 0 99";
        assert_eq!(parse_cpu_ticks(stat), Some(22));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let own = sample(std::process::id()).expect("own /proc entry is readable");
        assert!(own.rss_kib > 0, "{own:?}");
        assert!(own.cpu_ns.is_none_or(|ns| ns > 0), "{own:?}");
        assert!(ticks_per_second() > 0);
    }
}
