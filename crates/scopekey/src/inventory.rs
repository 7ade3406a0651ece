//! The token inventory: every issued token with its owner, purpose, scopes, lifetime, key and
//! last use, so "what is this token, who issued it, and what can it touch" is a query, not an
//! investigation.

use crate::claims::{Claims, FamilyId, TokenId, TokenType};
use crate::keys::KeyId;
use crate::revocation::{RevocationCheck, RevocationStatus, TokenFacts};
use crate::scope::{Scope, ScopeSet};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;

/// One issued token, as the inventory knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    token_id: TokenId,
    token_type: TokenType,
    subject: String,
    owner: Option<String>,
    purpose: Option<String>,
    scopes: ScopeSet,
    issued_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    key_id: KeyId,
    family: Option<FamilyId>,
    last_used: Option<OffsetDateTime>,
}

impl TokenRecord {
    /// The record of a token with these claims, signed by `key_id`, never used yet.
    pub fn new(claims: &Claims, key_id: &KeyId, token_type: TokenType) -> Self {
        Self {
            token_id: claims.token_id().clone(),
            token_type,
            subject: claims.subject().to_owned(),
            owner: claims.owner().map(str::to_owned),
            purpose: claims.purpose().map(str::to_owned),
            scopes: claims.scopes().clone(),
            issued_at: claims.issued_at(),
            expires_at: claims.expires_at(),
            key_id: key_id.clone(),
            family: claims.family().cloned(),
            last_used: None,
        }
    }

    /// The same record with its last use set (for stores loading rows).
    pub fn with_last_used(mut self, at: Option<OffsetDateTime>) -> Self {
        self.last_used = at;
        self
    }

    /// `jti`.
    pub fn token_id(&self) -> &TokenId {
        &self.token_id
    }
    /// Access or refresh.
    pub fn token_type(&self) -> TokenType {
        self.token_type
    }
    /// `sub`: the consumer.
    pub fn subject(&self) -> &str {
        &self.subject
    }
    /// `owner`, if set.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }
    /// `purpose`, if set.
    pub fn purpose(&self) -> Option<&str> {
        self.purpose.as_deref()
    }
    /// The scopes granted.
    pub fn scopes(&self) -> &ScopeSet {
        &self.scopes
    }
    /// `iat`.
    pub fn issued_at(&self) -> OffsetDateTime {
        self.issued_at
    }
    /// `exp`.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }
    /// The signing key.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }
    /// `fam`, if any.
    pub fn family(&self) -> Option<&FamilyId> {
        self.family.as_ref()
    }
    /// When a verification last accepted the token, if ever.
    pub fn last_used(&self) -> Option<OffsetDateTime> {
        self.last_used
    }

    /// Whether the token is unexpired at `t`.
    pub fn is_live_at(&self, t: OffsetDateTime) -> bool {
        t < self.expires_at
    }

    /// What revocation looks at.
    pub fn facts(&self) -> TokenFacts<'_> {
        TokenFacts {
            token_id: &self.token_id,
            family: self.family.as_ref(),
            subject: &self.subject,
            issued_at: self.issued_at,
            key_id: &self.key_id,
        }
    }
}

/// The fields of a [`TokenRecord`], for stores that load records from rows.
#[derive(Debug, Clone)]
pub struct TokenRecordParts {
    /// `jti`.
    pub token_id: TokenId,
    /// Access or refresh.
    pub token_type: TokenType,
    /// `sub`.
    pub subject: String,
    /// `owner`.
    pub owner: Option<String>,
    /// `purpose`.
    pub purpose: Option<String>,
    /// The scopes granted.
    pub scopes: ScopeSet,
    /// `iat`.
    pub issued_at: OffsetDateTime,
    /// `exp`.
    pub expires_at: OffsetDateTime,
    /// The signing key.
    pub key_id: KeyId,
    /// `fam`.
    pub family: Option<FamilyId>,
    /// Last accepted use.
    pub last_used: Option<OffsetDateTime>,
}

impl From<TokenRecordParts> for TokenRecord {
    fn from(p: TokenRecordParts) -> Self {
        Self {
            token_id: p.token_id,
            token_type: p.token_type,
            subject: p.subject,
            owner: p.owner,
            purpose: p.purpose,
            scopes: p.scopes,
            issued_at: p.issued_at,
            expires_at: p.expires_at,
            key_id: p.key_id,
            family: p.family,
            last_used: p.last_used,
        }
    }
}

/// Which records to return; every condition set must hold.
#[derive(Debug, Clone, Default)]
pub struct InventoryQuery {
    subject: Option<String>,
    owner: Option<String>,
    unused_since: Option<OffsetDateTime>,
    expiring_before: Option<OffsetDateTime>,
    live_at: Option<OffsetDateTime>,
}

impl InventoryQuery {
    /// Every record.
    pub fn all() -> Self {
        Self::default()
    }

    /// Tokens of this consumer.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Tokens whose consumer has this owner.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Tokens not used since `t`: last used before `t`, or never used and issued before `t`.
    pub fn unused_since(mut self, t: OffsetDateTime) -> Self {
        self.unused_since = Some(t);
        self
    }

    /// Tokens expiring before `t`.
    pub fn expiring_before(mut self, t: OffsetDateTime) -> Self {
        self.expiring_before = Some(t);
        self
    }

    /// Tokens not yet expired at `t`.
    pub fn live_at(mut self, t: OffsetDateTime) -> Self {
        self.live_at = Some(t);
        self
    }

    /// The consumer condition, if set (for stores that filter in SQL).
    pub fn subject_filter(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// The owner condition, if set.
    pub fn owner_filter(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// The "not expired at" condition, if set.
    pub fn live_at_filter(&self) -> Option<OffsetDateTime> {
        self.live_at
    }

    /// The "expiring before" condition, if set.
    pub fn expiring_before_filter(&self) -> Option<OffsetDateTime> {
        self.expiring_before
    }

    /// The "not used since" condition, if set.
    pub fn unused_since_filter(&self) -> Option<OffsetDateTime> {
        self.unused_since
    }

    /// Whether `r` matches.
    pub fn matches(&self, r: &TokenRecord) -> bool {
        self.subject.as_deref().is_none_or(|s| r.subject == s)
            && self.owner.as_deref().is_none_or(|o| r.owner() == Some(o))
            && self
                .unused_since
                .is_none_or(|t| r.last_used.unwrap_or(r.issued_at) < t)
            && self.expiring_before.is_none_or(|t| r.expires_at < t)
            && self.live_at.is_none_or(|t| r.is_live_at(t))
    }
}

/// An inventory operation that failed.
#[derive(Debug, thiserror::Error)]
#[error("token inventory: {message}")]
pub struct InventoryError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl InventoryError {
    /// An error with a cause, for store-backed inventories.
    pub fn new(
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            message: message.into(),
            source,
        }
    }
}

/// Where issued tokens are recorded and looked up.
pub trait Inventory: Send + Sync + fmt::Debug {
    /// Records a newly issued token.
    ///
    /// # Errors
    /// When the record could not be stored; the issuer then withholds the token.
    fn record_issued(&self, record: TokenRecord) -> Result<(), InventoryError>;

    /// Notes that a verification accepted the token at `at`. Called on the request path: it
    /// must not block on I/O or on an exclusive lock, and never fails (a store batches these).
    fn touch(&self, token_id: &TokenId, at: OffsetDateTime);

    /// One token's record.
    ///
    /// # Errors
    /// When the inventory cannot be read.
    fn get(&self, token_id: &TokenId) -> Result<Option<TokenRecord>, InventoryError>;

    /// The records matching `query`, in issue order.
    ///
    /// # Errors
    /// When the inventory cannot be read.
    fn query(&self, query: &InventoryQuery) -> Result<Vec<TokenRecord>, InventoryError>;
}

/// What `subject` can touch at `now`: the union of the scopes of its live tokens, skipping
/// revoked ones when a revocation check is given.
///
/// # Errors
/// When the inventory cannot be read.
pub fn reachable_scopes(
    inventory: &dyn Inventory,
    subject: &str,
    now: OffsetDateTime,
    revocations: Option<&dyn RevocationCheck>,
) -> Result<ScopeSet, InventoryError> {
    let records = inventory.query(&InventoryQuery::all().subject(subject).live_at(now))?;
    let mut union: BTreeSet<Scope> = BTreeSet::new();
    for r in &records {
        let revoked = revocations
            .is_some_and(|rc| !matches!(rc.status_of(&r.facts()), RevocationStatus::NotRevoked));
        if !revoked {
            union.extend(r.scopes.iter().cloned());
        }
    }
    // Distinct scopes from at most as many tokens as were issued: within the set limits unless
    // a consumer holds hundreds of distinct scopes, which is itself worth refusing to hide.
    ScopeSet::from_scopes(union).map_err(|e| InventoryError::new(e.to_string(), None))
}

#[derive(Debug)]
struct Entry {
    record: TokenRecord,
    last_used: AtomicI64,
}

const NEVER: i64 = i64::MIN;

/// An in-memory inventory. Lookups and [`touch`](Inventory::touch) take a shared read lock and
/// an atomic store, so verifications never wait for one another.
#[derive(Debug, Default)]
pub struct MemoryInventory {
    entries: RwLock<HashMap<TokenId, Entry>>,
}

impl MemoryInventory {
    /// An empty inventory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops the records of tokens that expired before `t`; returns how many.
    pub fn purge_expired_before(&self, t: OffsetDateTime) -> usize {
        let mut map = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let before = map.len();
        map.retain(|_, e| e.record.expires_at >= t);
        before - map.len()
    }

    fn snapshot(e: &Entry) -> TokenRecord {
        let t = e.last_used.load(Ordering::Relaxed);
        let last = (t != NEVER)
            .then(|| OffsetDateTime::from_unix_timestamp(t).ok())
            .flatten();
        e.record.clone().with_last_used(last)
    }
}

impl Inventory for MemoryInventory {
    fn record_issued(&self, record: TokenRecord) -> Result<(), InventoryError> {
        let last = record
            .last_used
            .map_or(NEVER, OffsetDateTime::unix_timestamp);
        let mut map = self.entries.write().unwrap_or_else(|p| p.into_inner());
        map.insert(
            record.token_id.clone(),
            Entry {
                record,
                last_used: AtomicI64::new(last),
            },
        );
        Ok(())
    }

    fn touch(&self, token_id: &TokenId, at: OffsetDateTime) {
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = map.get(token_id) {
            e.last_used
                .fetch_max(at.unix_timestamp(), Ordering::Relaxed);
        }
    }

    fn get(&self, token_id: &TokenId) -> Result<Option<TokenRecord>, InventoryError> {
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        Ok(map.get(token_id).map(Self::snapshot))
    }

    fn query(&self, query: &InventoryQuery) -> Result<Vec<TokenRecord>, InventoryError> {
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<TokenRecord> = map
            .values()
            .map(Self::snapshot)
            .filter(|r| query.matches(r))
            .collect();
        out.sort_by(|a, b| {
            (a.issued_at, a.token_id.as_str()).cmp(&(b.issued_at, b.token_id.as_str()))
        });
        Ok(out)
    }
}

/// Live, not yet revoked tokens not used since `unused_since` (never used counts from issue),
/// revoked one by one unless `dry_run`. Returns exactly the tokens that were (or would be)
/// revoked.
///
/// # Errors
/// [`InventoryError`] when the inventory cannot be read, the revocation state is stale (it
/// cannot say which tokens are already revoked), or a revocation fails; tokens revoked before a
/// failure stay revoked.
pub fn prune(
    inventory: &dyn Inventory,
    revocations: &dyn crate::refresh::Revocations,
    unused_since: OffsetDateTime,
    now: OffsetDateTime,
    dry_run: bool,
    by: &str,
) -> Result<Vec<TokenRecord>, InventoryError> {
    let query = InventoryQuery::all()
        .live_at(now)
        .unused_since(unused_since);
    let mut stale = Vec::new();
    for r in inventory.query(&query)? {
        match revocations.status_of(&r.facts()) {
            RevocationStatus::NotRevoked => stale.push(r),
            RevocationStatus::Revoked(_) => {}
            RevocationStatus::Stale { .. } => {
                return Err(InventoryError::new(
                    "revocation state is stale; pruning needs a current list",
                    None,
                ));
            }
        }
    }
    if !dry_run {
        for r in &stale {
            let target = crate::revocation::RevocationTarget::Token {
                token_id: r.token_id.clone(),
                expires_at: Some(r.expires_at),
            };
            revocations
                .revoke(target, by, "pruned: not used since the cut-off")
                .map_err(|e| {
                    InventoryError::new(format!("pruning stopped: {e}"), Some(Box::new(e)))
                })?;
        }
    }
    Ok(stale)
}

/// Consumers holding more than `limit` live tokens at `now`, with their counts, most first.
///
/// # Errors
/// When the inventory cannot be read.
pub fn consumers_over_limit(
    inventory: &dyn Inventory,
    now: OffsetDateTime,
    limit: usize,
) -> Result<Vec<(String, usize)>, InventoryError> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for r in inventory.query(&InventoryQuery::all().live_at(now))? {
        *counts.entry(r.subject).or_default() += 1;
    }
    let mut over: Vec<(String, usize)> = counts.into_iter().filter(|(_, n)| *n > limit).collect();
    over.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(over)
}

/// Live tokens whose `sub` is not a registered consumer (minted outside the registry).
///
/// # Errors
/// When the inventory cannot be read.
pub fn unregistered_tokens(
    inventory: &dyn Inventory,
    now: OffsetDateTime,
    is_registered: impl Fn(&str) -> bool,
) -> Result<Vec<TokenRecord>, InventoryError> {
    Ok(inventory
        .query(&InventoryQuery::all().live_at(now))?
        .into_iter()
        .filter(|r| !is_registered(&r.subject))
        .collect())
}
