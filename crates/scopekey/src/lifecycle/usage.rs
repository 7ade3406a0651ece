//! The in-memory [`UsageCounter`]: one process's counts, bounded.

use crate::clock::{Clock, SystemClock};
use crate::token::claims::TokenId;
use crate::token::error::BackendError;
use crate::token::usage::{Consumption, UsageCounter};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// How many tokens a [`MemoryUsageCounter`] counts by default: 100 000.
pub const DEFAULT_USAGE_CAPACITY: usize = 100_000;

/// Counts the uses of use-limited tokens in this process's memory, for a single instance and
/// for tests. Several instances must share a store's counter instead (`scopekey-store`'s
/// `Store::usage_counter`): each would otherwise allow every token its full count.
///
/// Bounded: it counts at most `capacity` tokens at once. A token's count is kept until its
/// `keep_until` (its `exp` plus the largest leeway) and dropped afterwards, when room is
/// needed. When it is full of tokens that are all still valid, a use of a token it does not
/// count yet is refused (an error, so the verifier refuses the token as
/// [`UsageUnavailable`](crate::VerifyErrorKind::UsageUnavailable): fail closed), while the
/// tokens it counts go on being counted. Forgetting a count to make room would let that token
/// be used again, so it never does.
///
/// ```
/// use scopekey::usage::MemoryUsageCounter;
/// use scopekey::{Issuer, KeySet, SigningKey, TokenRequest, Verifier, VerifierConfig, VerifyErrorKind};
/// use std::sync::Arc;
///
/// let key = SigningKey::generate()?;
/// let keys = KeySet::single(key.public_key().clone());
/// let issuer = Issuer::new(key, "https://auth.example", "production".parse()?)?;
/// let verifier = Verifier::new(
///     keys,
///     VerifierConfig::new("https://auth.example", "https://api.example", "production".parse()?),
/// )?
/// .with_usage_counter(Arc::new(MemoryUsageCounter::new()));
///
/// let request = TokenRequest::new("ci", "https://api.example", "projects:read".parse()?);
/// let once = issuer.issue(&request.single_use())?;
/// assert!(verifier.verify(once.token().as_str()).is_ok());
/// let again = verifier.verify(once.token().as_str()).unwrap_err();
/// assert_eq!(again.kind(), VerifyErrorKind::UsesExhausted);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MemoryUsageCounter {
    capacity: usize,
    clock: Arc<dyn Clock>,
    /// Per token: uses so far, and the Unix second until which the count is kept.
    counts: Mutex<HashMap<TokenId, (u32, i64)>>,
}

impl MemoryUsageCounter {
    /// A counter for at most [`DEFAULT_USAGE_CAPACITY`] tokens at once, on the system clock.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_USAGE_CAPACITY)
    }

    /// A counter for at most `capacity` tokens at once (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            clock: Arc::new(SystemClock),
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// The clock that says when a count may be dropped (default: the system clock).
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How many tokens are counted now.
    pub fn len(&self) -> usize {
        self.counts.lock().map_or(0, |c| c.len())
    }

    /// Whether no token is counted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryUsageCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl UsageCounter for MemoryUsageCounter {
    fn consume(
        &self,
        token_id: &TokenId,
        limit: u32,
        keep_until: OffsetDateTime,
    ) -> Result<Consumption, BackendError> {
        let mut counts = self
            .counts
            .lock()
            .map_err(|_| BackendError::new("the usage counter's lock is poisoned", None))?;
        if let Some((used, until)) = counts.get_mut(token_id) {
            *until = (*until).max(keep_until.unix_timestamp());
            if *used >= limit {
                return Ok(Consumption::Exhausted);
            }
            *used += 1;
            return Ok(Consumption::Counted { used: *used });
        }
        if counts.len() >= self.capacity {
            let now = self.clock.now_unix();
            counts.retain(|_, (_, until)| *until >= now);
            if counts.len() >= self.capacity {
                return Err(BackendError::new(
                    format!(
                        "the in-memory usage counter is full ({} live tokens): a new \
                         use-limited token cannot be counted",
                        self.capacity
                    ),
                    None,
                ));
            }
        }
        counts.insert(token_id.clone(), (1, keep_until.unix_timestamp()));
        Ok(Consumption::Counted { used: 1 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn counts_to_the_limit_and_refuses_new_tokens_when_full_of_live_ones() {
        let clock = ManualClock::at_unix(1_000);
        let counter = MemoryUsageCounter::with_capacity(2).with_clock(clock.clone());
        let at = |s| OffsetDateTime::from_unix_timestamp(s).unwrap();
        let (a, b, c) = (
            TokenId::generate().unwrap(),
            TokenId::generate().unwrap(),
            TokenId::generate().unwrap(),
        );
        for used in 1..=3 {
            assert_eq!(
                counter.consume(&a, 3, at(2_000)).unwrap(),
                Consumption::Counted { used }
            );
        }
        assert_eq!(
            counter.consume(&a, 3, at(2_000)).unwrap(),
            Consumption::Exhausted
        );
        assert!(counter.consume(&b, 1, at(1_500)).is_ok());
        // Full of live counts: a new token is refused, the counted ones go on.
        assert!(counter.consume(&c, 1, at(3_000)).is_err());
        assert_eq!(
            counter.consume(&b, 1, at(1_500)).unwrap(),
            Consumption::Exhausted
        );
        // Once `b` can no longer verify anywhere, its count makes room.
        clock.advance(std::time::Duration::from_secs(501));
        assert_eq!(
            counter.consume(&c, 1, at(3_000)).unwrap(),
            Consumption::Counted { used: 1 }
        );
        assert_eq!(counter.len(), 2);
        assert_eq!(
            counter.consume(&a, 3, at(2_000)).unwrap(),
            Consumption::Exhausted
        );
    }
}
