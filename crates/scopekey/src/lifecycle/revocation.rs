//! The revocation list: the in-memory [`RevocationList`] every verification asks, and the
//! [`Revoker`] trait revocations are written through.

use crate::clock::{Clock, SystemClock};
use crate::codec::rfc3339;
use crate::key::KeyId;
use crate::token::audit::{AuditEvent, AuditKind, AuditSink};
use crate::token::claims::{FamilyId, TokenId};
use crate::token::revocation::*;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use time::OffsetDateTime;

/// How long a single-token revocation whose expiry is unknown is kept: 30 days, the longest
/// refresh-token lifetime a [`Refresher`](crate::refresh::Refresher) allows.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// How often revoking also drops entries of tokens that have expired anyway.
const PURGE_INTERVAL_SECS: i64 = 60;

/// Something revocations can be written to: the in-memory list, or a durable store that also
/// updates every replica.
pub trait Revoker: Send + Sync + fmt::Debug {
    /// Revokes `target`, recording who and why. Effective for the next verification in this
    /// process when this returns.
    ///
    /// # Errors
    /// [`RevokeError`] for invalid input or when the revocation could not be recorded.
    fn revoke(
        &self,
        target: RevocationTarget,
        by: &str,
        reason: &str,
    ) -> Result<Arc<Revocation>, RevokeError>;

    /// Makes `record`, which is already recorded durably (a store wrote it in the transaction
    /// that detected refresh-token reuse), effective for the next verification in this process
    /// without recording it again. The default records it through
    /// [`revoke`](Self::revoke), for revokers that hold no state of their own to update.
    ///
    /// # Errors
    /// As [`revoke`](Self::revoke).
    fn adopt(&self, record: Arc<Revocation>) -> Result<Arc<Revocation>, RevokeError> {
        self.revoke(record.target().clone(), record.by(), record.reason())
    }
}

/// A [`RevocationCheck`] that is also a [`Revoker`]: what the refresher and the inventory's prune need.
pub trait Revocations: RevocationCheck + Revoker {}

impl<T: RevocationCheck + Revoker> Revocations for T {}

/// One single-token revocation, packed: 12 bytes besides its 16-byte key, so a million
/// revoked tokens take under 64 MiB (see `docs/performance.md`). Times are whole seconds since
/// 1970 (`u32` reaches 2106; later expiries are kept as "unknown", which only keeps the entry
/// longer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TokenEntry {
    /// The token's expiry, or [`UNKNOWN_EXPIRY`].
    expires: u32,
    /// When it was revoked.
    at: u32,
    /// Index of who and why in [`Entries::notes`].
    note: u32,
}

const UNKNOWN_EXPIRY: u32 = u32::MAX;

/// Who revoked and why, shared by every single-token revocation that says the same.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Note {
    by: Box<str>,
    reason: Box<str>,
}

/// A token id as the revocation list stores it: the 16 bytes of a scopekey-generated id
/// (22 canonical base64url characters), or the text of any other id.
fn packed_id(id: &TokenId) -> Option<PackedId> {
    crate::codec::b64::decode_16(id.as_str()).map(PackedId)
}

/// The 16 bytes of a generated token id. A byte array (alignment 1) keeps a table slot at
/// 28 bytes; hashing it as one `u128` keeps the hash to a single SipHash write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PackedId([u8; 16]);

impl std::hash::Hash for PackedId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(u128::from_ne_bytes(self.0));
    }
}

#[derive(Debug, Default)]
struct Entries {
    /// Single-token revocations of ids scopekey generated.
    packed: HashMap<PackedId, TokenEntry>,
    /// Single-token revocations of other ids (tokens minted elsewhere).
    other_tokens: HashMap<TokenId, TokenEntry>,
    notes: Vec<Arc<Note>>,
    note_index: HashMap<Arc<Note>, u32>,
    families: HashMap<FamilyId, Arc<Revocation>>,
    /// Per consumer: the widest revocation (`None` = every token).
    subjects: HashMap<String, (Option<i64>, Arc<Revocation>)>,
    keys: HashMap<KeyId, Arc<Revocation>>,
    issued_before: Option<(i64, Arc<Revocation>)>,
    last_purge: i64,
}

impl TokenEntry {
    /// Until when the entry matters: the token's expiry plus the largest leeway, or, when the
    /// expiry is unknown, the revocation time plus the retention.
    fn keep_until(&self, retention: i64) -> i64 {
        if self.expires == UNKNOWN_EXPIRY {
            i64::from(self.at).saturating_add(retention)
        } else {
            i64::from(self.expires) + crate::MAX_LEEWAY.as_secs() as i64
        }
    }
}

impl Entries {
    fn token_count(&self) -> usize {
        self.packed.len() + self.other_tokens.len()
    }

    /// The index of the shared note saying who and why, added if new.
    fn note_for(&mut self, by: &str, reason: &str) -> u32 {
        // Bulk revocations repeat the same note: check the last one before allocating.
        if let Some(last) = self.notes.last()
            && *last.by == *by
            && *last.reason == *reason
        {
            return u32::try_from(self.notes.len() - 1).unwrap_or(u32::MAX);
        }
        let note = Arc::new(Note {
            by: by.into(),
            reason: reason.into(),
        });
        if let Some(i) = self.note_index.get(&note) {
            return *i;
        }
        // More than four billion distinct (who, why) pairs cannot fit in memory anyway.
        let i = u32::try_from(self.notes.len()).unwrap_or(u32::MAX);
        self.notes.push(note.clone());
        self.note_index.insert(note, i);
        i
    }

    /// The full record of a single-token revocation.
    fn token_record(&self, token_id: TokenId, t: &TokenEntry) -> Arc<Revocation> {
        let note = self.notes.get(t.note as usize);
        Arc::new(Revocation {
            target: RevocationTarget::Token {
                token_id,
                expires_at: (t.expires != UNKNOWN_EXPIRY)
                    .then(|| OffsetDateTime::from_unix_timestamp(i64::from(t.expires)).ok())
                    .flatten(),
            },
            by: note.map_or_else(String::new, |n| n.by.to_string()),
            at: OffsetDateTime::from_unix_timestamp(i64::from(t.at))
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            reason: note.map_or_else(String::new, |n| n.reason.to_string()),
        })
    }
}

/// The in-memory revocation list: O(1) hash lookups under a shared read lock, so verifications
/// run in parallel and a revocation is visible to every verification that starts after
/// [`Revoker::revoke`] returns.
///
/// Memory stays bounded by the live tokens: a single-token entry is dropped once the token has
/// expired anyway ([`RevocationList::purge_expired`], also run at most once a minute while
/// revoking). Family, consumer, key and mass revocations are few and are kept.
#[derive(Debug)]
pub struct RevocationList {
    entries: RwLock<Entries>,
    clock: Arc<dyn Clock>,
    retention: Duration,
    /// For replicas: the bound past which the list reports itself stale.
    max_staleness: Option<Duration>,
    /// Unix seconds of the last confirmation; `i64::MIN`: never.
    last_confirmed: AtomicI64,
    /// When it was last confirmed current, by the clock's monotonic reading in milliseconds
    /// plus one (0: never). Staleness is measured with this, never with wall time.
    confirmed_elapsed: AtomicU64,
    /// Bumped before every change of the entries: [`RevocationCheck::generation`].
    generation: AtomicU64,
    audit: Option<Arc<dyn AuditSink>>,
}

impl Default for RevocationList {
    fn default() -> Self {
        Self::new()
    }
}

impl RevocationList {
    /// An empty list that is its own source of truth (never stale).
    pub fn new() -> Self {
        Self {
            entries: RwLock::new(Entries::default()),
            clock: Arc::new(SystemClock),
            retention: DEFAULT_RETENTION,
            max_staleness: None,
            last_confirmed: AtomicI64::new(i64::MIN),
            confirmed_elapsed: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            audit: None,
        }
    }

    /// An empty list that mirrors a store: it reports itself stale unless
    /// [`mark_current`](Self::mark_current) was called within `max_staleness`.
    pub fn replica(max_staleness: Duration) -> Self {
        Self {
            max_staleness: Some(max_staleness),
            ..Self::new()
        }
    }

    /// The clock (default: the system clock).
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How long a single-token revocation with unknown expiry is kept (default 30 days).
    /// Set it to at least your longest token lifetime.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Where [`Revoker::revoke`] records a `revoked` event.
    pub fn with_audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// Records that the list is current as of `at` (called by a store's sync loop). The
    /// staleness bound runs from this call by the clock's monotonic reading
    /// ([`Clock::elapsed`]); `at` is what a stale refusal reports.
    pub fn mark_current(&self, at: OffsetDateTime) {
        let elapsed = u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.confirmed_elapsed
            .fetch_max(elapsed.saturating_add(1), Ordering::SeqCst);
        self.last_confirmed
            .fetch_max(at.unix_timestamp(), Ordering::SeqCst);
    }

    /// Applies a revocation record (made here or loaded from a store). Idempotent.
    pub fn apply(&self, record: Arc<Revocation>) {
        let now = self.clock.now().unix_timestamp();
        let mut e = self.write();
        match &record.target() {
            RevocationTarget::Token {
                token_id,
                expires_at,
            } => {
                let entry = TokenEntry {
                    expires: expires_at
                        .and_then(|t| u32::try_from(t.unix_timestamp()).ok())
                        .filter(|t| *t != UNKNOWN_EXPIRY)
                        .unwrap_or(UNKNOWN_EXPIRY),
                    at: u32::try_from(record.at().unix_timestamp()).unwrap_or(0),
                    note: e.note_for(record.by(), record.reason()),
                };
                match packed_id(token_id) {
                    Some(key) => {
                        e.packed.entry(key).or_insert(entry);
                    }
                    None => {
                        e.other_tokens.entry(token_id.clone()).or_insert(entry);
                    }
                }
            }
            RevocationTarget::Family(fam) => {
                e.families.entry(fam.clone()).or_insert(record.clone());
            }
            RevocationTarget::Subject {
                subject,
                issued_before,
            } => {
                let before = issued_before.map(OffsetDateTime::unix_timestamp);
                let wider = match e.subjects.get(subject) {
                    None => true,
                    Some((None, _)) => false,
                    Some((Some(old), _)) => before.is_none_or(|b| b > *old),
                };
                if wider {
                    e.subjects.insert(subject.clone(), (before, record.clone()));
                }
            }
            RevocationTarget::IssuedBefore(t) => {
                let t = t.unix_timestamp();
                if e.issued_before.as_ref().is_none_or(|(old, _)| t > *old) {
                    e.issued_before = Some((t, record.clone()));
                }
            }
            RevocationTarget::Key(kid) => {
                e.keys.entry(kid.clone()).or_insert(record.clone());
            }
        }
        if now - e.last_purge >= PURGE_INTERVAL_SECS {
            self.purge_locked(&mut e, now);
        }
    }

    /// Drops single-token entries whose token has expired; returns how many.
    pub fn purge_expired(&self) -> usize {
        let now = self.clock.now().unix_timestamp();
        self.purge_locked(&mut self.write(), now)
    }

    fn purge_locked(&self, e: &mut Entries, now: i64) -> usize {
        let retention = i64::try_from(self.retention.as_secs()).unwrap_or(i64::MAX);
        let keep = |t: &TokenEntry| t.keep_until(retention) > now;
        let before = e.token_count();
        e.packed.retain(|_, t| keep(t));
        e.other_tokens.retain(|_, t| keep(t));
        e.last_purge = now;
        before - e.token_count()
    }

    /// How many single-token entries the list holds.
    pub fn token_entries(&self) -> usize {
        self.read().token_count()
    }

    /// An estimate of the memory the list holds, in bytes: its hash tables at their current
    /// capacity plus the text of ids, subjects and notes. With scopekey-generated token ids
    /// the single-token table costs at most 58 bytes per entry (at the worst point of its
    /// growth, half full), so 1,000,000 revoked tokens take under 64 MB.
    pub fn memory_estimate(&self) -> usize {
        fn table<K, V>(map: &HashMap<K, V>) -> usize {
            // hashbrown: a power-of-two number of buckets, 7/8 of them usable, one control
            // byte each.
            let buckets = if map.capacity() == 0 {
                0
            } else {
                (map.capacity() * 8 / 7).next_power_of_two()
            };
            buckets * (std::mem::size_of::<(K, V)>() + 1)
        }
        let e = self.read();
        let text = |s: &str| s.len();
        table(&e.packed)
            + table(&e.other_tokens)
            + e.other_tokens
                .keys()
                .map(|k| text(k.as_str()))
                .sum::<usize>()
            + table(&e.note_index)
            + e.notes
                .iter()
                .map(|n| text(&n.by) + text(&n.reason) + std::mem::size_of::<Note>() + 16)
                .sum::<usize>()
            + table(&e.families)
            + table(&e.subjects)
            + e.subjects.keys().map(|k| text(k)).sum::<usize>()
            + table(&e.keys)
    }

    /// Every revocation record in the list.
    pub fn records(&self) -> Vec<Arc<Revocation>> {
        let e = self.read();
        let tokens = e
            .packed
            .iter()
            .map(|(k, t)| {
                e.token_record(TokenId(crate::codec::b64::encode(&k.0).into_boxed_str()), t)
            })
            .chain(
                e.other_tokens
                    .iter()
                    .map(|(k, t)| e.token_record(k.clone(), t)),
            );
        let mut out: Vec<Arc<Revocation>> = tokens
            .chain(e.families.values().cloned())
            .chain(e.subjects.values().map(|(_, r)| r.clone()))
            .chain(e.keys.values().cloned())
            .chain(e.issued_before.iter().map(|(_, r)| r.clone()))
            .collect();
        out.sort_by_key(|r| r.at());
        out.dedup_by(|a, b| Arc::ptr_eq(a, b));
        out
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Entries> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // un-revokes anything (inserts are single operations), so the data stays usable.
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Entries> {
        let guard = self.entries.write().unwrap_or_else(|p| p.into_inner());
        // Bumped while the lock is held, before the change: a reader that sees the new number
        // read it after the lock was taken, so its own lookup (under the read lock, after
        // reading the number) waits for the change; one that sees the old number remembers
        // the old one, and its next hit looks up again.
        self.generation.fetch_add(1, Ordering::SeqCst);
        guard
    }
}

impl RevocationCheck for RevocationList {
    fn generation(&self) -> Option<u64> {
        Some(self.generation.load(Ordering::SeqCst))
    }

    fn stale_status(&self) -> Option<RevocationStatus> {
        let bound = self.max_staleness?;
        // Monotonic: a wall clock stepped back cannot make an old confirmation look new.
        let confirmed = self.confirmed_elapsed.load(Ordering::SeqCst);
        let now = u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let bound = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
        if confirmed == 0 || now.saturating_add(1).saturating_sub(confirmed) > bound {
            let last = self.last_confirmed.load(Ordering::SeqCst);
            return Some(RevocationStatus::Stale {
                last_confirmed: OffsetDateTime::from_unix_timestamp(last).ok(),
            });
        }
        None
    }

    fn status_of(&self, t: &TokenFacts<'_>) -> RevocationStatus {
        if let Some(stale) = self.stale_status() {
            return stale;
        }
        let iat = t.issued_at.unix_timestamp();
        let e = self.read();
        let hit = e
            .keys
            .get(t.key_id)
            .or_else(|| {
                e.issued_before
                    .as_ref()
                    .filter(|(t, _)| iat < *t)
                    .map(|(_, r)| r)
            })
            .or_else(|| {
                e.subjects
                    .get(t.subject)
                    .filter(|(before, _)| before.is_none_or(|b| iat < b))
                    .map(|(_, r)| r)
            })
            .or_else(|| t.family.and_then(|f| e.families.get(f)));
        if let Some(r) = hit {
            return RevocationStatus::Revoked(r.clone());
        }
        let token = match packed_id(t.token_id) {
            Some(key) => e.packed.get(&key),
            None => e.other_tokens.get(t.token_id),
        };
        match token {
            Some(entry) => RevocationStatus::Revoked(e.token_record(t.token_id.clone(), entry)),
            None => RevocationStatus::NotRevoked,
        }
    }
}

impl Revoker for RevocationList {
    fn revoke(
        &self,
        target: RevocationTarget,
        by: &str,
        reason: &str,
    ) -> Result<Arc<Revocation>, RevokeError> {
        let record = Arc::new(Revocation::new(target, by, self.clock.now(), reason)?);
        self.apply(record.clone());
        if let Some(sink) = &self.audit {
            sink.record(&AuditEvent::revoked(&record, self.clock.now()))
                .map_err(|e| {
                    RevokeError::new(
                        RevokeErrorKind::Audit,
                        format!("the revocation is in effect, but the audit sink failed: {e}"),
                    )
                })?;
        }
        Ok(record)
    }

    fn adopt(&self, record: Arc<Revocation>) -> Result<Arc<Revocation>, RevokeError> {
        // Recorded (and audited) where it was made: apply only.
        self.apply(record.clone());
        Ok(record)
    }
}

impl AuditEvent {
    /// The `revoked` event of `record`, dated when the revocation was made: for stores that
    /// write it in the same transaction as the revocation itself.
    pub fn for_revocation(record: &Revocation) -> Self {
        Self::revoked(record, record.at())
    }

    pub(crate) fn revoked(record: &Revocation, at: OffsetDateTime) -> Self {
        let mut event = Self::bare(
            at,
            AuditKind::Revoked {
                target: record.target().kind(),
                covers: record.target().to_string(),
                by: record.by().to_owned(),
                reason: record.reason().to_owned(),
                revoked_at: rfc3339::format(record.at()),
            },
        );
        use crate::token::revocation::RevocationTarget as T;
        match record.target() {
            T::Token { token_id, .. } => event.jti = Some(token_id.clone()),
            T::Family(f) => event.fam = Some(f.clone()),
            T::Subject { subject, .. } => event.sub = Some(subject.clone()),
            T::Key(k) => event.kid = Some(k.clone()),
            T::IssuedBefore(_) => {}
        }
        event
    }
}
