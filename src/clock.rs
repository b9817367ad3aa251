//! The clock seam: wall-clock timestamps written into the lock, and monotonic readings for logs.
//!
//! Decisions never use the wall clock (see the election module); it only stamps `acquireTime`
//! and `renewTime` for humans and other tools. Tests fix it through [`WallClock::fixed`].
//! [`monotonic_ns`] turns a [`tokio::time::Instant`] into nanoseconds on the system-wide
//! `CLOCK_MONOTONIC`, so that the logs of several processes on one machine share a time axis.

use std::sync::{Arc, OnceLock};

use jiff::Timestamp;
use tokio::time::Instant;

/// Where wall-clock time comes from.
#[derive(Clone, Default)]
pub struct WallClock {
    fixed: Option<Arc<Timestamp>>,
}

impl WallClock {
    /// The system clock.
    pub fn system() -> Self {
        Self { fixed: None }
    }

    /// A clock stuck at `at`, for tests.
    pub fn fixed(at: Timestamp) -> Self {
        Self {
            fixed: Some(Arc::new(at)),
        }
    }

    pub fn now(&self) -> Timestamp {
        match &self.fixed {
            Some(at) => **at,
            None => Timestamp::now(),
        }
    }
}

impl std::fmt::Debug for WallClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.fixed {
            Some(at) => write!(f, "WallClock::fixed({at})"),
            None => f.write_str("WallClock::system()"),
        }
    }
}

/// One reading of both clocks, taken once, that anchors later conversions.
struct Anchor {
    instant: Instant,
    raw_ns: u128,
}

fn raw_monotonic_ns() -> u128 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    // Both fields are non-negative for CLOCK_MONOTONIC.
    (ts.tv_sec.max(0) as u128) * 1_000_000_000 + ts.tv_nsec.max(0) as u128
}

fn anchor() -> &'static Anchor {
    static ANCHOR: OnceLock<Anchor> = OnceLock::new();
    ANCHOR.get_or_init(|| Anchor {
        instant: Instant::now(),
        raw_ns: raw_monotonic_ns(),
    })
}

/// `instant` as nanoseconds on `CLOCK_MONOTONIC`, comparable across processes on this machine.
pub fn monotonic_ns(instant: Instant) -> u128 {
    let anchor = anchor();
    if instant >= anchor.instant {
        anchor.raw_ns + instant.duration_since(anchor.instant).as_nanos()
    } else {
        anchor
            .raw_ns
            .saturating_sub(anchor.instant.duration_since(instant).as_nanos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fixed_clock_does_not_move() {
        let at: Timestamp = "2026-01-02T03:04:05.123456Z".parse().unwrap();
        let clock = WallClock::fixed(at);
        assert_eq!(clock.now(), at);
        assert_eq!(clock.now(), at);
    }

    #[tokio::test]
    async fn monotonic_readings_follow_the_tokio_clock() {
        let a = Instant::now();
        let b = a + Duration::from_millis(1500);
        assert_eq!(monotonic_ns(b) - monotonic_ns(a), 1_500_000_000);
        let before = raw_monotonic_ns();
        let now = monotonic_ns(Instant::now());
        let after = raw_monotonic_ns();
        assert!(
            before <= now + 1_000_000 && now <= after + 1_000_000,
            "{before} <= {now} <= {after}"
        );
    }
}
