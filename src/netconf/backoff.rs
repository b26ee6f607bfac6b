//! Password-guess backoff per (user, source address), shared by every connection: once a
//! password from a source has failed for a user, that user's next password checks from that
//! source are spaced by a delay that doubles with each failure (up to a maximum), however many
//! connections they come on. A success clears it; key logins never wait; the table is bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept at most; beyond, the stalest goes.
const MAX_ENTRIES: usize = 4096;
/// An entry unused this long is forgotten.
const FORGET: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    /// When the next check may run (reserved turns move it on).
    next_free: Instant,
    last_seen: Instant,
}

/// The shared backoff table.
pub struct Backoff {
    base: Duration,
    max: Duration,
    entries: Mutex<HashMap<(String, IpAddr), Entry>>,
}

impl Backoff {
    /// Delays start at `base` after the first failure and double up to `max`.
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The spacing between checks after `failures` failures (none before the first).
    pub fn delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32 << (failures - 1).min(16);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// When a password check for `user` from `source` may run: now, or the next free turn,
    /// which it then holds (a later attempt waits one more delay).
    pub fn turn(&self, user: &str, source: IpAddr, now: Instant) -> Instant {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let Some(e) = entries.get_mut(&(user.to_string(), source)) else {
            return now;
        };
        if e.failures == 0 || now.saturating_duration_since(e.last_seen) > FORGET {
            e.failures = 0;
            return now;
        }
        let at = e.next_free.max(now);
        e.next_free = at + self.delay(e.failures);
        e.last_seen = now;
        at
    }

    /// Records a failed check.
    pub fn failed(&self, user: &str, source: IpAddr, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&(user.to_string(), source)) {
            entries.retain(|_, e| now.saturating_duration_since(e.last_seen) <= FORGET);
            if entries.len() >= MAX_ENTRIES {
                if let Some(stalest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.last_seen)
                    .map(|(k, _)| k.clone())
                {
                    entries.remove(&stalest);
                }
            }
        }
        let e = entries.entry((user.to_string(), source)).or_insert(Entry {
            failures: 0,
            next_free: now,
            last_seen: now,
        });
        e.failures = e.failures.saturating_add(1);
        e.next_free = e.next_free.max(now + self.delay(e.failures));
        e.last_seen = now;
    }

    /// Records a successful login: the user's checks from that source no longer wait.
    pub fn succeeded(&self, user: &str, source: IpAddr) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(&(user.to_string(), source));
    }

    /// Failures on record for `user` from `source`.
    pub fn failures(&self, user: &str, source: IpAddr) -> u32 {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&(user.to_string(), source))
            .map_or(0, |e| e.failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn guesses_from_one_source_are_spaced_across_connections() {
        let b = Backoff::new(300 * MS, 10_000 * MS);
        let (a, other): (IpAddr, IpAddr) =
            ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
        let t0 = Instant::now();
        // The first check never waits; it fails.
        assert_eq!(b.turn("admin", a, t0), t0);
        b.failed("admin", a, t0);
        // Forty connections guessing at once: each takes the next turn, spaced by the delay,
        // which doubles with each failure.
        let mut turns = Vec::new();
        for _ in 0..40 {
            let at = b.turn("admin", a, t0);
            turns.push(at);
            b.failed("admin", a, at);
        }
        assert_eq!(turns[0], t0 + 300 * MS);
        assert_eq!(turns[1] - turns[0], 600 * MS);
        assert_eq!(turns[2] - turns[1], 1_200 * MS);
        assert!(turns.windows(2).all(|w| w[1] - w[0] <= 10_000 * MS));
        assert!(
            turns[39] - t0 > Duration::from_secs(300),
            "{:?}",
            turns[39] - t0
        );
        // Another source, another user: no wait.
        assert_eq!(b.turn("admin", other, t0), t0);
        assert_eq!(b.turn("operator", a, t0), t0);
        // A success clears the record.
        b.succeeded("admin", a);
        assert_eq!(b.failures("admin", a), 0);
        assert_eq!(b.turn("admin", a, t0), t0);
    }

    #[test]
    fn the_table_is_bounded_and_forgets() {
        let b = Backoff::new(300 * MS, 10_000 * MS);
        let t0 = Instant::now();
        let src: IpAddr = "127.0.0.2".parse().unwrap();
        for i in 0..MAX_ENTRIES + 10 {
            b.failed(&format!("u{i}"), src, t0 + i as u32 * MS);
        }
        assert_eq!(b.entries.lock().unwrap().len(), MAX_ENTRIES);
        assert_eq!(b.failures("u0", src), 0, "the stalest went");
        let later = t0 + FORGET + Duration::from_secs(60);
        assert_eq!(b.turn(&format!("u{}", MAX_ENTRIES + 9), src, later), later);
    }
}
