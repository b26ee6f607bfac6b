//! The agent's monotonic clock in milliseconds, shared by the runtimes whose times meet: MLD
//! timers travel in RBS records as absolute times on this clock.

use std::sync::OnceLock;
use std::time::Instant;

/// Milliseconds since the first call in this process.
pub fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}
