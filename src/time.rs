//! The agent's one time type: [`Time`], an instant on its monotonic clock in microseconds.
//!
//! Protocol cores take `now: Time` and answer `next_deadline() -> Option<Time>`; spans of time
//! are [`Duration`]s. The clock's epoch is arbitrary (the IO side's `netio::clock` counts from
//! the first reading in the process, a simulation from its own zero), so a `Time` means
//! something only next to another `Time` on the same clock. Arithmetic saturates: an instant
//! never wraps and never panics, and the span between two instants is zero when the second is
//! the later one. Values that cross the wire are converted at the codec with their units named
//! (`as_millis`/`from_millis` and the like).

use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::time::Duration;

/// An instant on a monotonic clock: microseconds from the clock's (arbitrary) epoch.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Time(u64);

/// Whole microseconds in a duration, saturating at `u64::MAX`.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Time {
    /// The clock's epoch.
    pub const ZERO: Time = Time(0);
    /// The latest instant: "never" for a deadline that does not run.
    pub const MAX: Time = Time(u64::MAX);

    /// The instant `us` microseconds after the epoch.
    pub const fn from_micros(us: u64) -> Time {
        Time(us)
    }
    /// The instant `ms` milliseconds after the epoch (saturating at [`Time::MAX`]).
    pub const fn from_millis(ms: u64) -> Time {
        Time(ms.saturating_mul(1_000))
    }
    /// The instant `s` seconds after the epoch (saturating at [`Time::MAX`]).
    pub const fn from_secs(s: u64) -> Time {
        Time(s.saturating_mul(1_000_000))
    }
    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }
    /// Whole milliseconds since the epoch (rounded down).
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000
    }
    /// The span from the epoch to this instant.
    pub const fn since_epoch(self) -> Duration {
        Duration::from_micros(self.0)
    }

    /// `self + d`, or `None` past [`Time::MAX`].
    pub fn checked_add(self, d: Duration) -> Option<Time> {
        u64::try_from(d.as_micros())
            .ok()
            .and_then(|us| self.0.checked_add(us))
            .map(Time)
    }
    /// `self - d`, or `None` before the epoch.
    pub fn checked_sub(self, d: Duration) -> Option<Time> {
        u64::try_from(d.as_micros())
            .ok()
            .and_then(|us| self.0.checked_sub(us))
            .map(Time)
    }
    /// `self + d`, at most [`Time::MAX`].
    pub fn saturating_add(self, d: Duration) -> Time {
        Time(self.0.saturating_add(micros(d)))
    }
    /// `self - d`, at least [`Time::ZERO`].
    pub fn saturating_sub(self, d: Duration) -> Time {
        Time(self.0.saturating_sub(micros(d)))
    }
    /// The span from `earlier` to `self`, or `None` when `earlier` is the later instant.
    pub fn checked_duration_since(self, earlier: Time) -> Option<Duration> {
        self.0.checked_sub(earlier.0).map(Duration::from_micros)
    }
    /// The span from `earlier` to `self`, zero when `earlier` is the later instant.
    pub fn saturating_duration_since(self, earlier: Time) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

/// Saturates at [`Time::MAX`].
impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        self.saturating_add(d)
    }
}

impl AddAssign<Duration> for Time {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

/// Saturates at [`Time::ZERO`].
impl Sub<Duration> for Time {
    type Output = Time;
    fn sub(self, d: Duration) -> Time {
        self.saturating_sub(d)
    }
}

impl SubAssign<Duration> for Time {
    fn sub_assign(&mut self, d: Duration) {
        *self = *self - d;
    }
}

/// The span between two instants, zero when the right-hand one is the later.
impl Sub<Time> for Time {
    type Output = Duration;
    fn sub(self, earlier: Time) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_convert_both_ways() {
        let t = Time::from_millis(1_500);
        assert_eq!(t.as_micros(), 1_500_000);
        assert_eq!(t.as_millis(), 1_500);
        assert_eq!(Time::from_micros(1_999).as_millis(), 1);
        assert_eq!(Time::from_secs(2), Time::from_millis(2_000));
        assert_eq!(t.since_epoch(), Duration::from_millis(1_500));
        assert_eq!(Time::default(), Time::ZERO);
        assert_eq!(Time::from_millis(u64::MAX), Time::MAX);
        assert_eq!(Time::from_secs(u64::MAX), Time::MAX);
    }

    #[test]
    fn arithmetic_is_exact_in_range() {
        let t = Time::from_millis(10);
        assert_eq!(t + Duration::from_micros(5), Time::from_micros(10_005));
        assert_eq!(t - Duration::from_millis(4), Time::from_millis(6));
        assert_eq!(Time::from_millis(25) - t, Duration::from_millis(15));
        let mut u = t;
        u += Duration::from_secs(1);
        assert_eq!(u, Time::from_millis(1_010));
        u -= Duration::from_millis(10);
        assert_eq!(u, Time::from_secs(1));
        assert_eq!(
            t.checked_add(Duration::from_millis(1)),
            Some(Time::from_millis(11))
        );
        assert_eq!(t.checked_sub(Duration::from_millis(10)), Some(Time::ZERO));
        assert_eq!(
            Time::from_millis(12).checked_duration_since(t),
            Some(Duration::from_millis(2))
        );
        // Sub-microsecond parts of a duration are dropped.
        assert_eq!(t + Duration::from_nanos(999), t);
    }

    #[test]
    fn arithmetic_saturates_and_never_panics() {
        let t = Time::from_millis(10);
        assert_eq!(t - Duration::from_secs(1), Time::ZERO);
        assert_eq!(t - Time::from_secs(1), Duration::ZERO);
        assert_eq!(Time::MAX + Duration::from_micros(1), Time::MAX);
        assert_eq!(t + Duration::MAX, Time::MAX);
        assert_eq!(t - Duration::MAX, Time::ZERO);
        assert_eq!(Time::MAX - Time::ZERO, Duration::from_micros(u64::MAX));
        assert_eq!(t.checked_add(Duration::MAX), None);
        assert_eq!(Time::MAX.checked_add(Duration::from_micros(1)), None);
        assert_eq!(t.checked_sub(Duration::from_micros(10_001)), None);
        assert_eq!(t.checked_sub(Duration::MAX), None);
        assert_eq!(t.checked_duration_since(Time::from_millis(11)), None);
        assert!(Time::ZERO < t && t < Time::MAX);
    }
}
