//! The clock seam: wall-clock timestamps written into the lock, and monotonic readings for logs.
//!
//! Decisions never use the wall clock (see the election module); it only stamps `acquireTime`
//! and `renewTime` for humans and other tools. Tests fix it through [`WallClock::fixed`].
//! [`monotonic_ns`] turns a [`tokio::time::Instant`] into nanoseconds on the system-wide
//! `CLOCK_MONOTONIC`, so that the logs of several processes on one machine share a time axis.
//!
//! [`BootClock`] reads `CLOCK_BOOTTIME`, which keeps counting while the machine is suspended
//! (`CLOCK_MONOTONIC`, behind tokio's `Instant`, stops). A claim carries a deadline on both
//! clocks and lapses when either passes, so a VM resumed after a suspend stops answering
//! "leader" at once. Tests use [`BootClock::manual`], which follows tokio's (paused) clock and can
//! be moved on alone with [`BootClock::suspend`].
//!
//! [`later`] is the only way `src/` adds a duration to an [`Instant`]: it saturates instead of
//! panicking on overflow, so no configured or received duration can abort the process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

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

    /// The current wall-clock time: the system's, or the fixed moment.
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

/// How far past any real deadline [`later`] saturates: about 30 years, as tokio's own "far future".
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `at + duration`, saturating: when the sum does not fit an [`Instant`] the result is the latest
/// of `at + 30 years` and `at` that fits, i.e. "never" for every practical purpose.
pub fn later(at: Instant, duration: Duration) -> Instant {
    at.checked_add(duration)
        .or_else(|| at.checked_add(FAR_FUTURE))
        .unwrap_or(at)
}

/// A reading of the boot-time clock: time since boot, suspended time included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BootInstant(Duration);

impl BootInstant {
    /// `self + duration`, saturating at the largest representable reading.
    pub fn later(self, duration: Duration) -> Self {
        Self(self.0.saturating_add(duration))
    }

    /// The time since boot this reading stands for.
    pub fn since_boot(self) -> Duration {
        self.0
    }
}

/// A moment on both clocks: the monotonic one (timers, logs) and the boot-time one (suspend).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// tokio's monotonic clock, which stops while the machine is suspended.
    pub monotonic: Instant,
    /// The boot-time clock at the same moment, which keeps counting through a suspend.
    pub boot: BootInstant,
}

/// Where boot-time readings come from.
#[derive(Clone, Default)]
pub struct BootClock {
    manual: Option<Arc<Manual>>,
}

/// A test clock: tokio's clock since `origin`, plus `suspended` nanoseconds.
struct Manual {
    origin: Instant,
    suspended_ns: AtomicU64,
}

impl BootClock {
    /// `CLOCK_BOOTTIME`.
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that advances with tokio's clock (paused in tests) and by [`Self::suspend`].
    pub fn manual() -> Self {
        Self {
            manual: Some(Arc::new(Manual {
                origin: Instant::now(),
                suspended_ns: AtomicU64::new(0),
            })),
        }
    }

    /// Moves a manual clock on by `duration` without moving tokio's clock, as a suspend does.
    /// No effect on the system clock.
    pub fn suspend(&self, duration: Duration) {
        if let Some(manual) = &self.manual {
            let ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
            let _ = manual
                .suspended_ns
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| Some(v.saturating_add(ns)));
        }
    }

    /// Both clocks, read together.
    pub fn read(&self) -> Reading {
        Reading {
            monotonic: Instant::now(),
            boot: self.now(),
        }
    }

    /// The boot-time clock now: `CLOCK_BOOTTIME`, or for a manual clock tokio's time since it
    /// was made plus every [`Self::suspend`].
    pub fn now(&self) -> BootInstant {
        match &self.manual {
            Some(manual) => BootInstant(
                manual
                    .origin
                    .elapsed()
                    .saturating_add(Duration::from_nanos(manual.suspended_ns.load(Ordering::SeqCst))),
            ),
            None => {
                let ts = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
                // Both fields are non-negative for CLOCK_BOOTTIME.
                BootInstant(Duration::new(
                    u64::try_from(ts.tv_sec).unwrap_or(0),
                    u32::try_from(ts.tv_nsec).unwrap_or(0),
                ))
            }
        }
    }
}

impl std::fmt::Debug for BootClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.manual {
            Some(_) => f.write_str("BootClock::manual()"),
            None => f.write_str("BootClock::system()"),
        }
    }
}

/// Two handles are equal when they read the same clock.
impl PartialEq for BootClock {
    fn eq(&self, other: &Self) -> bool {
        match (&self.manual, &other.manual) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for BootClock {}

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

    #[tokio::test(start_paused = true)]
    async fn later_saturates_instead_of_panicking() {
        let now = Instant::now();
        assert_eq!(later(now, Duration::from_secs(5)), now + Duration::from_secs(5));
        let never = later(now, Duration::MAX);
        assert!(
            never >= now + FAR_FUTURE,
            "Duration::MAX saturates to the far future"
        );
        assert_eq!(
            later(now, Duration::from_secs(u64::MAX)),
            never,
            "any overflowing sum saturates to the same point"
        );
        assert_eq!(
            BootInstant(Duration::MAX).later(Duration::from_secs(1)),
            BootInstant(Duration::MAX)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_manual_boot_clock_follows_tokio_and_moves_alone_on_suspend() {
        let clock = BootClock::manual();
        let start = clock.now();
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(clock.now(), start.later(Duration::from_secs(2)));
        let before = Instant::now();
        clock.suspend(Duration::from_secs(60));
        assert_eq!(
            Instant::now(),
            before,
            "a suspend does not move the monotonic clock"
        );
        assert_eq!(clock.now(), start.later(Duration::from_secs(62)));
        assert_eq!(clock.clone(), clock, "clones read the same clock");
        assert_ne!(BootClock::manual(), clock);
    }

    #[test]
    fn the_system_boot_clock_is_at_least_the_monotonic_clock() {
        let monotonic = raw_monotonic_ns();
        let boot = BootClock::system().now().since_boot().as_nanos();
        assert!(
            boot >= monotonic,
            "CLOCK_BOOTTIME {boot} counts at least CLOCK_MONOTONIC {monotonic}"
        );
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
