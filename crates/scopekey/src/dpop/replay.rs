//! Remembering the `jti` of every accepted DPoP proof while it could still be accepted.

use crate::token::error::BackendError;
use std::collections::HashMap;
use std::sync::Mutex;

/// The default capacity of a [`MemoryReplayCache`]: 100 000 proofs.
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

/// What a [`ReplayCache`] did with one proof.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplayCheck {
    /// Not seen before; now remembered until its expiry.
    Fresh,
    /// Seen before and not yet expired: a replay.
    Replayed,
    /// The cache is full of unexpired proofs and cannot remember another one; the proof is
    /// refused (never let through unremembered).
    Full,
}

/// Remembers the proofs a verifier accepted (keyed by a digest of their key thumbprint and
/// `jti`) until they expire, for [`DpopPolicy::new`](crate::dpop::DpopPolicy::new).
///
/// [`MemoryReplayCache`] remembers in one process; `scopekey-store`'s replay cache remembers in
/// the store, so that a proof replayed to another instance sharing it is refused too.
///
/// # Security
/// [`check_and_insert`](Self::check_and_insert) must be atomic: of any number of concurrent
/// calls with one key before its expiry, in any number of processes, at most one may return
/// [`ReplayCheck::Fresh`]. A cache that cannot tell returns an error or
/// [`ReplayCheck::Full`], and the proof is refused.
pub trait ReplayCache: Send + Sync + std::fmt::Debug {
    /// Remembers `key` until `expires_unix` (seconds) unless it is already remembered.
    ///
    /// # Errors
    /// [`BackendError`] when the cache's store could not answer; the proof is refused.
    fn check_and_insert(
        &self,
        key: &[u8; 32],
        expires_unix: i64,
        unix_now: i64,
    ) -> Result<ReplayCheck, BackendError>;
}

/// A bounded in-memory [`ReplayCache`] for one instance.
///
/// When full, it first forgets expired entries; if every entry is still unexpired it answers
/// [`ReplayCheck::Full`] (the verifier refuses the proof as
/// [`VerifyErrorKind::DpopUnavailable`](crate::VerifyErrorKind::DpopUnavailable), which the
/// HTTP layer answers with 503) rather than evict an entry that a replay could then slip past.
/// Size it above the proofs accepted per `max_age` window at peak.
#[derive(Debug)]
pub struct MemoryReplayCache {
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], i64>>,
}

impl MemoryReplayCache {
    /// A cache of at most `capacity` unexpired proofs (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// How many proofs it remembers now (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    /// Whether it remembers nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryReplayCache {
    fn default() -> Self {
        Self::new(DEFAULT_REPLAY_CAPACITY)
    }
}

impl ReplayCache for MemoryReplayCache {
    fn check_and_insert(
        &self,
        key: &[u8; 32],
        expires_unix: i64,
        unix_now: i64,
    ) -> Result<ReplayCheck, BackendError> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| BackendError::new("the replay cache's lock is poisoned", None))?;
        if entries.get(key).is_some_and(|expiry| *expiry >= unix_now) {
            return Ok(ReplayCheck::Replayed);
        }
        if entries.len() >= self.capacity && !entries.contains_key(key) {
            entries.retain(|_, expiry| *expiry >= unix_now);
            if entries.len() >= self.capacity {
                return Ok(ReplayCheck::Full);
            }
        }
        entries.insert(*key, expires_unix);
        Ok(ReplayCheck::Fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_fresh_once_until_it_expires_and_a_full_cache_refuses() {
        let cache = MemoryReplayCache::new(2);
        let check = |k: u8, exp, now| cache.check_and_insert(&[k; 32], exp, now).ok();
        assert_eq!(check(1, 100, 10), Some(ReplayCheck::Fresh));
        assert_eq!(check(1, 100, 11), Some(ReplayCheck::Replayed));
        assert_eq!(check(2, 50, 12), Some(ReplayCheck::Fresh));
        // Full of unexpired proofs: a new one is refused, the others still count as replays.
        assert_eq!(check(3, 100, 13), Some(ReplayCheck::Full));
        assert_eq!(check(1, 100, 13), Some(ReplayCheck::Replayed));
        // Once one expires, it is swept and the new proof fits.
        assert_eq!(check(3, 100, 51), Some(ReplayCheck::Fresh));
        assert_eq!(cache.len(), 2);
        assert_eq!(check(2, 200, 51), Some(ReplayCheck::Full));
    }
}
