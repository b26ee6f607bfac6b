//! The agent's monotonic clock: every runtime reads `now()` here, so times meet across runtimes
//! (MLD timers travel in RBS records as absolute times on this clock).

use crate::time::Time;
use std::sync::OnceLock;
use std::time::Instant;

/// The current instant: microseconds since the first reading in this process.
pub fn now() -> Time {
    static START: OnceLock<Instant> = OnceLock::new();
    let us = START.get_or_init(Instant::now).elapsed().as_micros();
    Time::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_is_monotonic_and_shared() {
        let a = now();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = now();
        assert!(b - a >= std::time::Duration::from_millis(2), "{a:?} {b:?}");
    }
}
