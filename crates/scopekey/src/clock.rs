//! Time, injected: verification and issuing read the current instant through [`Clock`], so tests
//! can move time without sleeping.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use time::OffsetDateTime;

/// A source of the current instant.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant, in UTC.
    fn now(&self) -> OffsetDateTime;

    /// The current instant in whole seconds since 1970: what the checks on a cached grant
    /// need. Override it when it can be had without building a calendar date.
    fn now_unix(&self) -> i64 {
        self.now().unix_timestamp()
    }

    /// Time elapsed since a fixed, arbitrary point, from a clock that never goes back: what
    /// staleness bounds are measured with, so that a wall-clock step cannot stretch them.
    /// The default reads [`std::time::Instant`].
    fn elapsed(&self) -> std::time::Duration {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed()
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn now_unix(&self) -> i64 {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            // A clock set before 1970: round toward the past, like `now().unix_timestamp()`.
            Err(e) => {
                let d = e.duration();
                -i64::try_from(d.as_secs()).unwrap_or(i64::MAX) - i64::from(d.subsec_nanos() > 0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clocks_two_readings_agree() {
        let a = SystemClock.now().unix_timestamp();
        let b = SystemClock.now_unix();
        let c = SystemClock.now().unix_timestamp();
        assert!(a <= b && b <= c, "{a} {b} {c}");
    }
}

/// A clock that only moves when told to, for tests. Clones share the same instant.
///
/// ```
/// use scopekey::ManualClock;
/// use scopekey::Clock as _;
///
/// let clock = ManualClock::at_unix(1_700_000_000);
/// clock.advance(std::time::Duration::from_secs(60));
/// assert_eq!(clock.now().unix_timestamp(), 1_700_000_060);
/// ```
///
/// Its monotonic reading ([`Clock::elapsed`]) moves only with [`advance`](Self::advance);
/// [`set_unix`](Self::set_unix) is a wall-clock step, as when an operator or NTP resets the time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>, Arc<AtomicU64>);

impl ManualClock {
    /// A clock stopped at `unix_seconds`.
    pub fn at_unix(unix_seconds: i64) -> Self {
        Self(
            Arc::new(AtomicI64::new(unix_seconds)),
            Arc::new(AtomicU64::new(0)),
        )
    }

    /// A clock stopped at the current system time, rounded down to a whole second.
    pub fn now_utc() -> Self {
        Self::at_unix(OffsetDateTime::now_utc().unix_timestamp())
    }

    /// Sets the instant, in Unix seconds.
    pub fn set_unix(&self, unix_seconds: i64) {
        self.0.store(unix_seconds, Ordering::SeqCst);
    }

    /// Moves the clock forward, saturating at the largest representable instant.
    pub fn advance(&self, by: std::time::Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(secs))
            });
        let _ = self
            .1
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(by.as_secs()))
            });
    }
}

impl Clock for ManualClock {
    fn elapsed(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.1.load(Ordering::SeqCst))
    }

    fn now(&self) -> OffsetDateTime {
        let t = self.0.load(Ordering::SeqCst);
        // Out-of-range settings clamp to the representable range instead of panicking.
        OffsetDateTime::from_unix_timestamp(t).unwrap_or(if t < 0 {
            OffsetDateTime::UNIX_EPOCH
        } else {
            time::macros::datetime!(9999-12-31 23:59:59 UTC)
        })
    }
}
