//! The clock of the core: [`Instant`], microseconds since the Unix epoch.
//!
//! The pure core never reads a clock. Live captures pass the kernel's packet timestamps (and the
//! wall clock for timers), replay passes the capture's timestamps, tests pass whatever they like.
use std::ops::{Add, Sub};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time, microseconds since the Unix epoch.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Instant(u64);

impl Instant {
    /// The epoch itself; useful as "never" for last-sent times.
    pub const ZERO: Instant = Instant(0);

    pub const fn from_micros(micros: u64) -> Self {
        Instant(micros)
    }

    pub const fn from_secs(secs: u64) -> Self {
        Instant(secs * 1_000_000)
    }

    /// A libpcap timestamp (seconds and microseconds).
    pub fn from_timeval(secs: i64, micros: i64) -> Self {
        let micros = (secs.max(0) as u64)
            .saturating_mul(1_000_000)
            .saturating_add(micros.max(0) as u64);
        Instant(micros)
    }

    /// The wall clock. Only the I/O edge calls this.
    pub fn now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Instant(since.as_micros() as u64)
    }

    pub const fn as_micros(self) -> u64 {
        self.0
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }

    /// As a `SystemTime`, for display and persistence.
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(self.0)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d.as_micros() as u64))
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(d.as_micros() as u64))
    }
}

/// Where the daemon's edge reads the time: the wall clock, or a test's clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

/// The system's wall clock, the clock of the kernel's packet timestamps too.
#[derive(Debug, Default, Clone, Copy)]
pub struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_secs(10);
        assert_eq!((t + Duration::from_millis(1500)).as_micros(), 11_500_000);
        assert_eq!(Instant::ZERO - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(
            t.saturating_since(t + Duration::from_secs(1)),
            Duration::ZERO
        );
        assert_eq!(Instant::from_timeval(2, 5).as_micros(), 2_000_005);
    }
}
