//! Leadership as intervals on the shared monotonic clock, and the safety checks over them.
//!
//! Each elector logs `became leader` and `stopped leading` with `monotonic_ns` (CLOCK_MONOTONIC,
//! shared by every process on the machine) and the claim's `valid_until_monotonic_ns`. A claim
//! ends at the earlier of the two: a process that was paused logs its step-down late, but its
//! claim (and its readiness answer) had ended at the deadline. A process killed while leading
//! never logs the end; the harness closes its interval at the kill, or, if it was paused then,
//! at the pause plus the renew deadline (by which its claim had certainly lapsed).

use serde_json::Value;

/// One process's uninterrupted leadership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interval {
    pub identity: String,
    pub fencing_token: u64,
    pub start_ns: u128,
    /// `None` while still leading.
    pub end_ns: Option<u128>,
}

impl Interval {
    fn end_or(&self, open_end: u128) -> u128 {
        self.end_ns.unwrap_or(open_end)
    }
}

fn ns(line: &Value, field: &str) -> Option<u128> {
    match &line[field] {
        Value::String(text) => text.parse().ok(),
        Value::Number(number) => number.as_u64().map(u128::from),
        _ => None,
    }
}

/// Folds one process's log lines into its leadership intervals.
pub fn intervals_from_logs(identity: &str, logs: &[Value]) -> Vec<Interval> {
    let mut out: Vec<Interval> = Vec::new();
    for line in logs {
        match line["message"].as_str() {
            Some("became leader") => {
                let (Some(start_ns), Some(token)) =
                    (ns(line, "monotonic_ns"), line["fencing_token"].as_u64())
                else {
                    continue;
                };
                out.push(Interval {
                    identity: identity.to_owned(),
                    fencing_token: token,
                    start_ns,
                    end_ns: None,
                });
            }
            Some("stopped leading") => {
                let stopped = ns(line, "monotonic_ns");
                let valid_until = ns(line, "valid_until_monotonic_ns");
                let end = match (stopped, valid_until) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                if let Some(open) = out.last_mut().filter(|i| i.end_ns.is_none()) {
                    open.end_ns = end.map(|e| e.max(open.start_ns));
                }
            }
            _ => {}
        }
    }
    out
}

/// Closes a process's open interval at `at` (it was killed, or the run ended).
pub fn close_open(intervals: &mut [Interval], at: u128) {
    for interval in intervals.iter_mut().filter(|i| i.end_ns.is_none()) {
        interval.end_ns = Some(at.max(interval.start_ns));
    }
}

/// Two different processes leading at the same moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overlap {
    pub first: Interval,
    pub second: Interval,
    pub overlap_ns: u128,
}

/// Every pair of intervals of different processes that overlap in time.
pub fn overlaps(intervals: &[Interval], open_end: u128) -> Vec<Overlap> {
    let mut sorted = intervals.to_vec();
    sorted.sort_by_key(|i| i.start_ns);
    let mut found = Vec::new();
    for (i, a) in sorted.iter().enumerate() {
        for b in &sorted[i + 1..] {
            if b.start_ns >= a.end_or(open_end) {
                break;
            }
            if a.identity != b.identity {
                let overlap_ns = a.end_or(open_end).min(b.end_or(open_end)) - b.start_ns;
                found.push(Overlap {
                    first: a.clone(),
                    second: b.clone(),
                    overlap_ns,
                });
            }
        }
    }
    found
}

/// Successive leaders whose fencing tokens do not increase: a new leader must hold a strictly
/// higher token; the same process taking the lock back (nobody held it between) keeps its token.
pub fn token_regressions(intervals: &[Interval]) -> Vec<(Interval, Interval)> {
    let mut sorted = intervals.to_vec();
    sorted.sort_by_key(|i| i.start_ns);
    sorted
        .windows(2)
        .filter(|pair| {
            let (a, b) = (&pair[0], &pair[1]);
            if a.identity == b.identity {
                b.fencing_token < a.fencing_token
            } else {
                b.fencing_token <= a.fencing_token
            }
        })
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect()
}

/// Changes of leader: successive intervals held by different processes.
pub fn leader_changes(intervals: &[Interval]) -> usize {
    let mut sorted = intervals.to_vec();
    sorted.sort_by_key(|i| i.start_ns);
    sorted
        .windows(2)
        .filter(|pair| pair[0].identity != pair[1].identity)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn became(at: u64, token: u64, until: u64) -> Value {
        json!({"message": "became leader", "monotonic_ns": at.to_string(), "fencing_token": token, "valid_until_monotonic_ns": until.to_string()})
    }

    fn stopped(at: u64, until: u64) -> Value {
        json!({"message": "stopped leading", "monotonic_ns": at.to_string(), "valid_until_monotonic_ns": until.to_string()})
    }

    #[test]
    fn a_late_step_down_ends_at_the_deadline() {
        let intervals = intervals_from_logs("a", &[became(100, 1, 300), stopped(900, 400)]);
        assert_eq!(
            intervals[0].end_ns,
            Some(400),
            "paused: the claim ended at its deadline"
        );
        let intervals = intervals_from_logs("a", &[became(100, 1, 300), stopped(250, 400)]);
        assert_eq!(intervals[0].end_ns, Some(250));
    }

    #[test]
    fn overlapping_leaders_are_found_and_touching_ones_are_not() {
        let a = Interval {
            identity: "a".into(),
            fencing_token: 1,
            start_ns: 0,
            end_ns: Some(100),
        };
        let b = Interval {
            identity: "b".into(),
            fencing_token: 2,
            start_ns: 100,
            end_ns: Some(200),
        };
        assert!(
            overlaps(&[a.clone(), b.clone()], 1_000).is_empty(),
            "a handover at the same instant is fine"
        );
        let early = Interval {
            start_ns: 99,
            ..b.clone()
        };
        let found = overlaps(&[a.clone(), early], 1_000);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].overlap_ns, 1);
        let same = Interval {
            identity: "a".into(),
            ..b
        };
        assert!(overlaps(&[a, same], 1_000).is_empty());
    }

    #[test]
    fn an_open_interval_overlaps_everything_after_it() {
        let a = Interval {
            identity: "a".into(),
            fencing_token: 1,
            start_ns: 0,
            end_ns: None,
        };
        let b = Interval {
            identity: "b".into(),
            fencing_token: 2,
            start_ns: 500,
            end_ns: Some(600),
        };
        assert_eq!(overlaps(&[a, b], 1_000).len(), 1);
    }

    #[test]
    fn tokens_must_rise_with_each_new_leader() {
        let i = |id: &str, token, start| Interval {
            identity: id.into(),
            fencing_token: token,
            start_ns: start,
            end_ns: Some(start + 1),
        };
        assert!(token_regressions(&[i("a", 1, 0), i("b", 2, 10), i("b", 2, 20), i("a", 3, 30)]).is_empty());
        assert_eq!(token_regressions(&[i("a", 2, 0), i("b", 2, 10)]).len(), 1);
        assert_eq!(
            leader_changes(&[i("a", 1, 0), i("b", 2, 10), i("b", 2, 20), i("a", 3, 30)]),
            2
        );
    }
}
