//! The verified-grant cache: skip the signature check for a token seen moments ago, and
//! nothing else.
//!
//! A service sees the same token on request after request. Checking its Ed25519 signature is
//! the whole cost of verification (tens of microseconds); everything else is nanoseconds. A
//! [`GrantCache`] remembers, per exact token, the claims that a full verification produced, so
//! the next request skips base64, the signature and JSON parsing. What can change between two
//! requests is checked again on every hit:
//!
//! - **time**: issuer, audience, environment, `nbf`, `exp` and lifetime are re-checked against
//!   the clock (an entry is also never served past its token's expiry plus the leeway);
//! - **revocation**: the revocation check runs on every hit, and a stale list fails closed;
//! - **keys**: an entry is bound to the verifier and to the version of its key ring, and is
//!   never served past its key's `retire_at`, so retiring or removing a key takes effect on
//!   the next request;
//! - **audit and inventory**: a hit records a `verified` event and notes the last use, like a
//!   full verification.
//!
//! The cache is keyed by the whole token. The slot is picked by a randomly keyed SipHash of
//! the end of the token's signature. For any token that is in the cache, the signature is a
//! collision-resistant digest of everything it signs, computed by the signer (Ed25519's
//! `S = r + SHA-512(R ‖ A ‖ M)·a`, and `verify_strict` admits one encoding), so no hash of
//! the whole token is computed per request. A hit then also requires the presented token to
//! be byte-for-byte the cached one, so a forgery that copies a cached token's signature is an
//! ordinary miss and goes through the full check.
//!
//! It is bounded in entries and in (estimated) bytes, split into shards that each have their
//! own read-write lock: concurrent hits take shared locks on different shards and never wait
//! on one another.
//!
//! ```
//! use scopekey::cache::{GrantCache, GrantCacheConfig};
//! use scopekey::{Issuer, KeySet, SigningKey, TokenRequest, Verifier, VerifierConfig};
//!
//! let key = SigningKey::generate()?;
//! let keys = KeySet::single(key.public_key().clone());
//! let issuer = Issuer::new(key, "https://auth.example", "production".parse()?)?;
//! let verifier = Verifier::new(
//!     keys,
//!     VerifierConfig::new("https://auth.example", "https://api.example", "production".parse()?),
//! )?
//! .with_grant_cache(GrantCache::new(GrantCacheConfig::default().max_entries(50_000)));
//!
//! let minted = issuer.issue(&TokenRequest::new("ci", "https://api.example", "projects:read".parse()?))?;
//! verifier.verify(minted.token().as_str())?; // full verification, then cached
//! verifier.verify(minted.token().as_str())?; // a hit: no signature check
//! assert_eq!(verifier.grant_cache().map(|c| c.len()), Some(1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::key::KeyId;
use crate::token::claims::Claims;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use zeroize::Zeroize as _;

/// Number of independently locked shards.
const SHARDS: usize = 16;

/// What the cache charges for an entry: [`CHARGE_PER_TOKEN_BYTE`] times the token's length
/// plus this. The token is kept whole, and its parsed claims (strings, scopes and their
/// compiled tree, each a separate allocation) take several times its length; for a 633-byte
/// token with 8 scopes the charge is 5,576 bytes against 2,268 measured (docs/performance.md),
/// so the byte bound holds.
const ENTRY_OVERHEAD: usize = 512;

/// See [`ENTRY_OVERHEAD`].
const CHARGE_PER_TOKEN_BYTE: usize = 8;

/// Limits of a [`GrantCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantCacheConfig {
    max_entries: usize,
    max_bytes: usize,
}

impl Default for GrantCacheConfig {
    /// 4,096 entries and 32 MiB: with one token per consumer, a service sees far fewer
    /// distinct tokens than that.
    fn default() -> Self {
        Self {
            max_entries: 4096,
            max_bytes: 32 << 20,
        }
    }
}

impl GrantCacheConfig {
    /// At most `n` tokens are cached (at least one per shard, 16).
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = n;
        self
    }

    /// At most about `bytes` of memory is held (each entry is charged eight times its
    /// token's length plus 512 bytes, which over-estimates what it holds).
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }
}

/// What a full verification established about a token: shared by the cache and every
/// [`Grant`](crate::Grant) made from it.
#[derive(Debug)]
pub(crate) struct Verified {
    pub(crate) claims: Claims,
    pub(crate) key_id: KeyId,
    /// The client networks of its `net` claim, parsed once; `None` for an unlimited token.
    pub(crate) networks: Option<Box<[crate::token::network::Network]>>,
    /// The usage limit of its `uses` claim, parsed once; `None` for an unlimited token.
    pub(crate) max_uses: Option<u32>,
    /// The client key of its `cnf.jkt` claim (DPoP), parsed once; `None` for an unbound token.
    pub(crate) dpop_jkt: Option<crate::dpop::Jkt>,
    /// The verifier's revocation generation at which this token was last found not revoked
    /// ([`RevocationCheck::generation`](crate::revocation::RevocationCheck::generation));
    /// [`NO_GENERATION`] when never.
    pub(crate) not_revoked_at: AtomicU64,
}

/// [`Verified::not_revoked_at`] before any check.
pub(crate) const NO_GENERATION: u64 = u64::MAX;

/// Holds the token text: no `Debug`, so no formatting of the cache can print it.
struct Entry {
    token: Box<str>,
    verifier: u64,
    ring_version: u64,
    /// Unix seconds from which the entry is never served: the token's expiry plus the leeway,
    /// or its key's `retire_at` if earlier.
    valid_until: i64,
    charge: usize,
    verified: Arc<Verified>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        // The cached copy of a bearer token is cleared before its memory is freed.
        self.token.zeroize();
    }
}

#[derive(Default)]
struct Shard {
    entries: HashMap<u64, Arc<Entry>, PassThrough>,
    bytes: usize,
}

/// Hits and misses of a [`GrantCache`] since it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Verifications served from the cache (then re-checked, and possibly refused).
    pub hits: u64,
    /// Verifications that went through the full check.
    pub misses: u64,
}

/// One shard and its lock, on cache lines of its own.
#[derive(Default)]
#[repr(align(64))]
struct Slot {
    shard: RwLock<Shard>,
}

/// Hit and miss counters, one pair per stripe on a cache line of its own: each thread counts
/// in its own stripe ([`stripe`]), so two cores counting hits never write the same line.
#[derive(Default)]
#[repr(align(64))]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Counter stripes.
const STRIPES: usize = 16;

/// This thread's counter stripe: threads take the stripes in turn as they first count.
fn stripe() -> usize {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static STRIPE: usize = (NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES as u64) as usize;
    }
    STRIPE.with(|s| *s)
}

/// A bounded, sharded cache of verified grants. See the [module documentation](self).
///
/// Its `Debug` output gives counts only, never a cached token.
pub struct GrantCache {
    shards: Box<[Slot]>,
    counters: Box<[Counters]>,
    hasher: RandomState,
    max_entries_per_shard: usize,
    max_bytes_per_shard: usize,
}

impl fmt::Debug for GrantCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrantCache")
            .field("len", &self.len())
            .field("charged_bytes", &self.charged_bytes())
            .field("max_entries_per_shard", &self.max_entries_per_shard)
            .field("max_bytes_per_shard", &self.max_bytes_per_shard)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Default for GrantCache {
    fn default() -> Self {
        Self::new(GrantCacheConfig::default())
    }
}

impl GrantCache {
    /// An empty cache with these limits.
    pub fn new(config: GrantCacheConfig) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Slot::default()).collect(),
            counters: (0..STRIPES).map(|_| Counters::default()).collect(),
            hasher: RandomState::new(),
            max_entries_per_shard: config.max_entries.div_ceil(SHARDS).max(1),
            max_bytes_per_shard: config.max_bytes.div_ceil(SHARDS).max(1),
        }
    }

    /// How many tokens are cached.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| read(&s.shard).entries.len())
            .sum()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes charged for the cached entries (an over-estimate of what they hold).
    pub fn charged_bytes(&self) -> usize {
        self.shards.iter().map(|s| read(&s.shard).bytes).sum()
    }

    /// Forgets every entry (for instance after changing what a verifier trusts by other means
    /// than its key ring).
    pub fn clear(&self) {
        for slot in self.shards.iter() {
            let mut s = write(&slot.shard);
            s.entries.clear();
            s.bytes = 0;
        }
    }

    /// Hits and misses so far.
    pub fn stats(&self) -> CacheStats {
        self.counters
            .iter()
            .fold(CacheStats::default(), |acc, c| CacheStats {
                hits: acc.hits + c.hits.load(Ordering::Relaxed),
                misses: acc.misses + c.misses.load(Ordering::Relaxed),
            })
    }

    fn slot(&self, token: &str) -> (u64, &Slot) {
        let h = self.hasher.hash_one(signature_part(token));
        // The low bits pick the shard; the map uses the whole value.
        (h, &self.shards[(h as usize) % SHARDS])
    }

    /// The cached verification of exactly `token`, made by verifier `verifier` with key ring
    /// version `ring_version`, if still servable at `now`.
    pub(crate) fn get(
        &self,
        token: &str,
        verifier: u64,
        ring_version: u64,
        now: i64,
    ) -> Option<Arc<Verified>> {
        let (h, slot) = self.slot(token);
        let shard = &slot.shard;
        let counters = &self.counters[stripe()];
        let miss = || {
            counters.misses.fetch_add(1, Ordering::Relaxed);
            None
        };
        // Compared under the read lock: a hit clones only the grant, not the entry.
        let expired = {
            let s = read(shard);
            let Some(entry) = s.entries.get(&h) else {
                return miss();
            };
            if entry.token.as_ref() != token
                || entry.verifier != verifier
                || entry.ring_version != ring_version
            {
                return miss();
            }
            if now < entry.valid_until {
                counters.hits.fetch_add(1, Ordering::Relaxed);
                return Some(entry.verified.clone());
            }
            entry.clone()
        };
        let mut s = write(shard);
        if s.entries.get(&h).is_some_and(|e| Arc::ptr_eq(e, &expired)) {
            s.entries.remove(&h);
            s.bytes -= expired.charge;
        }
        drop(s);
        miss()
    }

    /// Caches a full verification of `token`, servable until `valid_until` (Unix seconds).
    pub(crate) fn insert(
        &self,
        token: &str,
        verifier: u64,
        ring_version: u64,
        valid_until: i64,
        now: i64,
        verified: Arc<Verified>,
    ) {
        // A kept grant is checked again and again: build its scope tree once, now.
        verified.claims.scopes.compile();
        let charge = token
            .len()
            .saturating_mul(CHARGE_PER_TOKEN_BYTE)
            .saturating_add(ENTRY_OVERHEAD);
        if charge > self.max_bytes_per_shard || valid_until <= now {
            return;
        }
        let (h, slot) = self.slot(token);
        let entry = Arc::new(Entry {
            token: token.into(),
            verifier,
            ring_version,
            valid_until,
            charge,
            verified,
        });
        let mut s = write(&slot.shard);
        if let Some(old) = s.entries.remove(&h) {
            s.bytes -= old.charge;
        }
        if s.entries.len() >= self.max_entries_per_shard
            || s.bytes + charge > self.max_bytes_per_shard
        {
            // Drop what can no longer be served, then the entries closest to expiry, until
            // the new one fits.
            let before = s.entries.len();
            s.entries.retain(|_, e| e.valid_until > now);
            if s.entries.len() != before {
                s.bytes = s.entries.values().map(|e| e.charge).sum();
            }
            while s.entries.len() >= self.max_entries_per_shard
                || s.bytes + charge > self.max_bytes_per_shard
            {
                let Some((&victim, _)) = s.entries.iter().min_by_key(|(_, e)| e.valid_until) else {
                    break;
                };
                if let Some(old) = s.entries.remove(&victim) {
                    s.bytes -= old.charge;
                }
            }
        }
        s.bytes += charge;
        s.entries.insert(h, entry);
    }

    /// Drops the entry for exactly `token`, if any (after it was found revoked).
    pub(crate) fn remove(&self, token: &str) {
        let (h, slot) = self.slot(token);
        let mut s = write(&slot.shard);
        if s.entries.get(&h).is_some_and(|e| e.token.as_ref() == token)
            && let Some(old) = s.entries.remove(&h)
        {
            s.bytes -= old.charge;
        }
    }
}

/// The end of a token's signature: for PASETO (`v4.public.<payload>[.<footer>]`) the last
/// [`SIGNATURE_CHARS`] characters before the footer, for a JWS (`header.claims.signature`)
/// the last ones. That is 192 bits of the signature's `S` half, which differs between any two
/// tokens that verify. One short scan (`rfind` from the end): this runs on every request. Anything malformed yields some slice: it only picks a
/// slot, and the full comparison decides.
fn signature_part(token: &str) -> &[u8] {
    let end = match token.rfind('.') {
        Some(i) if i >= 10 && token.starts_with("v4.public.") => i,
        _ => token.len(),
    };
    &token.as_bytes()[end.saturating_sub(SIGNATURE_CHARS)..end]
}

/// How many characters of the signature pick a cache slot.
const SIGNATURE_CHARS: usize = 32;

fn read(shard: &RwLock<Shard>) -> std::sync::RwLockReadGuard<'_, Shard> {
    // Every update leaves a shard consistent before anything that could panic.
    shard.read().unwrap_or_else(|p| p.into_inner())
}

fn write(shard: &RwLock<Shard>) -> std::sync::RwLockWriteGuard<'_, Shard> {
    shard.write().unwrap_or_else(|p| p.into_inner())
}

/// The maps' keys are already keyed SipHash values; hashing them again would only cost time.
#[derive(Debug, Clone, Copy, Default)]
struct PassThrough;

#[derive(Debug, Default)]
struct PassThroughHasher(u64);

impl BuildHasher for PassThrough {
    type Hasher = PassThroughHasher;
    fn build_hasher(&self) -> PassThroughHasher {
        PassThroughHasher(0)
    }
}

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_part_finds_the_signature_of_either_format() {
        let sig = "S".repeat(SIGNATURE_CHARS);
        let paseto = format!("v4.public.{}{sig}.eyJraWQiOiJ4In0", "P".repeat(40));
        assert_eq!(signature_part(&paseto), sig.as_bytes());
        let paseto_no_footer = format!("v4.public.{}{sig}", "P".repeat(40));
        assert_eq!(signature_part(&paseto_no_footer), sig.as_bytes());
        let jwt = format!("eyJh.eyJi.{sig}");
        assert_eq!(signature_part(&jwt), sig.as_bytes());
        assert_eq!(signature_part("a.b.c"), b"a.b.c");
        assert_eq!(signature_part(""), b"");
        assert_eq!(signature_part("v4.public."), b"v4.public.");
        assert_eq!(signature_part("v4.public.x.y"), b"v4.public.x");
        assert_eq!(signature_part("..."), b"...");
    }
}
