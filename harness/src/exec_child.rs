//! A recording child for exec mode: a small Python program that the electors run as their
//! command. It appends `start` when it begins and `exit` when it ends after a SIGTERM, each with
//! its `CLOCK_MONOTONIC` time (`time.monotonic_ns()`), its PID, `ELECTOR_IDENTITY` and
//! `ELECTOR_FENCING_TOKEN`, to one file shared by every child of a test, so that the lifetimes
//! of the children of all electors can be compared on one clock.
//!
//! Behaviour is set by its environment, which it inherits from the elector (set it through
//! [`crate::Launch::env`]): `CHILD_STOP_DELAY` (seconds to keep working after SIGTERM),
//! `CHILD_IGNORE_TERM=1` (ignore SIGTERM, so only SIGKILL ends it), `CHILD_EXIT_AFTER` and
//! `CHILD_EXIT_CODE` (exit by itself after that many seconds with that code).

use std::path::{Path, PathBuf};

const SCRIPT: &str = r#"
import os, signal, sys, time
log = sys.argv[1]
def record(kind):
    line = "%s %d %d %s %s %d\n" % (kind, time.monotonic_ns(), os.getpid(),
        os.environ.get("ELECTOR_IDENTITY", "-"), os.environ.get("ELECTOR_FENCING_TOKEN", "-"),
        os.getppid())
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, line.encode())
    os.close(fd)
def on_term(signum, frame):
    time.sleep(float(os.environ.get("CHILD_STOP_DELAY", "0")))
    record("exit")
    os._exit(0)
record("start")
if os.environ.get("CHILD_IGNORE_TERM") == "1":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, on_term)
exit_after = os.environ.get("CHILD_EXIT_AFTER")
if exit_after:
    time.sleep(float(exit_after))
    record("exit")
    os._exit(int(os.environ.get("CHILD_EXIT_CODE", "0")))
while True:
    time.sleep(3600)
"#;

/// One line of the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildRecord {
    /// `start` or `exit`.
    pub kind: String,
    /// `CLOCK_MONOTONIC` in nanoseconds.
    pub monotonic_ns: u64,
    pub pid: u32,
    /// `ELECTOR_IDENTITY` as the child saw it.
    pub identity: String,
    /// `ELECTOR_FENCING_TOKEN` as the child saw it.
    pub token: u64,
    /// Its parent's PID when it recorded: the elector that started it.
    pub ppid: u32,
}

/// One child's life: its start and, if it recorded one, its exit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildLife {
    pub pid: u32,
    /// The elector that started it.
    pub ppid: u32,
    pub identity: String,
    pub token: u64,
    pub start_ns: u64,
    pub exit_ns: Option<u64>,
}

/// The recording child's script and its shared record file, in `dir`.
#[derive(Clone, Debug)]
pub struct ChildRecorder {
    script: PathBuf,
    log: PathBuf,
}

impl ChildRecorder {
    /// Writes the script into `dir` (which must exist); the record starts empty.
    pub fn new(dir: &Path) -> std::io::Result<Self> {
        let script = dir.join("recording-child.py");
        std::fs::write(&script, SCRIPT)?;
        let log = dir.join("children.log");
        let _ = std::fs::remove_file(&log);
        Ok(Self { script, log })
    }

    /// The command to pass after `--`: a shell that records `spawn PID PPID` at once (a child
    /// stopped before Python has started is still known), then becomes the Python program,
    /// without the libfaketime an elector may run under (it breaks Python's `time.sleep`).
    pub fn command(&self) -> Vec<String> {
        vec![
            "sh".to_owned(),
            "-c".to_owned(),
            "echo \"spawn $$ $PPID\" >> \"$2\"; unset LD_PRELOAD FAKETIME; exec python3 \"$1\" \"$2\""
                .to_owned(),
            "recording-child".to_owned(),
            self.script.display().to_string(),
            self.log.display().to_string(),
        ]
    }

    /// The PIDs of every child spawned so far, including those that never got to record a start.
    pub fn spawned(&self) -> Vec<u32> {
        self.spawned_by().into_iter().map(|(pid, _)| pid).collect()
    }

    /// (PID, parent PID) of every child spawned so far: the parent is the elector that started it.
    pub fn spawned_by(&self) -> Vec<(u32, u32)> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut words = line.strip_prefix("spawn ")?.split_whitespace();
                Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
            })
            .collect()
    }

    /// Every line recorded so far, in file order.
    pub fn records(&self) -> Vec<ChildRecord> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut words = line.split(' ');
                Some(ChildRecord {
                    kind: words.next()?.to_owned(),
                    monotonic_ns: words.next()?.parse().ok()?,
                    pid: words.next()?.parse().ok()?,
                    identity: words.next()?.to_owned(),
                    token: words.next()?.parse().ok()?,
                    ppid: words.next()?.parse().ok()?,
                })
            })
            .collect()
    }

    /// Each child's life, ordered by start.
    pub fn lives(&self) -> Vec<ChildLife> {
        let records = self.records();
        let mut lives: Vec<ChildLife> = records
            .iter()
            .filter(|r| r.kind == "start")
            .map(|start| ChildLife {
                pid: start.pid,
                ppid: start.ppid,
                identity: start.identity.clone(),
                token: start.token,
                start_ns: start.monotonic_ns,
                exit_ns: records
                    .iter()
                    .find(|r| r.kind == "exit" && r.pid == start.pid && r.monotonic_ns >= start.monotonic_ns)
                    .map(|r| r.monotonic_ns),
            })
            .collect();
        lives.sort_by_key(|life| life.start_ns);
        lives
    }
}

/// Whether process `pid` has ended: gone, or a zombie nobody has reaped yet.
pub fn process_ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name in parentheses, which may itself contain spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

/// The first pair of lives, in start order, where the later one started before the earlier one
/// had ended, taking each life's end as `end(life)` (`None`: it never ended, or its end is not
/// known: it then overlaps everything after it).
pub fn first_overlap(
    lives: &[ChildLife],
    end: impl Fn(&ChildLife) -> Option<u64>,
) -> Option<(ChildLife, ChildLife)> {
    for (i, earlier) in lives.iter().enumerate() {
        for later in &lives[i + 1..] {
            if end(earlier).is_none_or(|end| later.start_ns < end) {
                return Some((earlier.clone(), later.clone()));
            }
        }
    }
    None
}

/// A child's process group frozen (SIGSTOP) from `from_ns` until `to_ns` (`None`: never
/// resumed; it ended frozen).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Freeze {
    pub pid: u32,
    pub from_ns: u64,
    pub to_ns: Option<u64>,
}

/// The times a child could run: from its start to `end_ns`, less the times it was frozen.
pub fn running_segments(life: &ChildLife, end_ns: u64, freezes: &[Freeze]) -> Vec<(u64, u64)> {
    let mut segments = Vec::new();
    let mut from = life.start_ns;
    let mut frozen: Vec<&Freeze> = freezes.iter().filter(|f| f.pid == life.pid).collect();
    frozen.sort_by_key(|f| f.from_ns);
    for freeze in frozen {
        if freeze.from_ns > from {
            segments.push((from, freeze.from_ns.min(end_ns)));
        }
        match freeze.to_ns {
            Some(to) => from = from.max(to),
            None => return segments,
        }
    }
    if end_ns > from {
        segments.push((from, end_ns));
    }
    segments
}

/// Pairs of children that could run at the same time, with how long, given each one's end
/// (an upper bound of its death) and the freezes.
pub fn running_overlaps(
    lives: &[ChildLife],
    end_ns: impl Fn(&ChildLife) -> u64,
    freezes: &[Freeze],
) -> Vec<(ChildLife, ChildLife, u64)> {
    let segments: Vec<Vec<(u64, u64)>> = lives
        .iter()
        .map(|life| running_segments(life, end_ns(life), freezes))
        .collect();
    let mut out = Vec::new();
    for i in 0..lives.len() {
        for j in i + 1..lives.len() {
            let mut overlap = 0;
            for &(a0, a1) in &segments[i] {
                for &(b0, b1) in &segments[j] {
                    overlap += a1.min(b1).saturating_sub(a0.max(b0));
                }
            }
            if overlap > 0 {
                out.push((lives[i].clone(), lives[j].clone(), overlap));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn life(pid: u32, start_ns: u64) -> ChildLife {
        ChildLife {
            pid,
            ppid: 1,
            identity: "a".into(),
            token: 1,
            start_ns,
            exit_ns: None,
        }
    }

    #[test]
    fn frozen_time_is_not_running_time() {
        let old = life(1, 0);
        let new = life(2, 50);
        // Old ran 0..100, but was frozen from 40 and killed while frozen.
        let frozen = [Freeze {
            pid: 1,
            from_ns: 40,
            to_ns: None,
        }];
        assert_eq!(running_segments(&old, 100, &frozen), vec![(0, 40)]);
        let ends = |l: &ChildLife| if l.pid == 1 { 100 } else { 200 };
        assert!(running_overlaps(&[old.clone(), new.clone()], ends, &frozen).is_empty());
        // Thawed at 60, before it ended at 100: 60..100 overlaps the new one's 50..200.
        let thawed = [Freeze {
            pid: 1,
            from_ns: 40,
            to_ns: Some(60),
        }];
        let overlaps = running_overlaps(&[old, new], ends, &thawed);
        assert_eq!(overlaps.len(), 1);
        assert_eq!(overlaps[0].2, 40);
    }
}
