//! Inventory reports and clean-up over any [`Inventory`]: what a consumer can reach, consumers
//! over their token limit, tokens of unregistered subjects, pruning unused tokens; and the
//! in-memory inventory.

use crate::scope::{Scope, ScopeSet};
use crate::token::claims::TokenId;
use crate::token::error::BackendError;
use crate::token::inventory::*;
use crate::token::revocation::{RevocationCheck, RevocationStatus};
use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;

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
) -> Result<ScopeSet, BackendError> {
    let records = inventory.query(&InventoryQuery::all().subject(subject).live_at(now))?;
    let mut union: BTreeSet<Scope> = BTreeSet::new();
    for r in &records {
        let revoked = revocations
            .is_some_and(|rc| !matches!(rc.status_of(&r.facts()), RevocationStatus::NotRevoked));
        if !revoked {
            union.extend(r.scopes().iter().cloned());
        }
    }
    // Distinct scopes from at most as many tokens as were issued: within the set limits unless
    // a consumer holds hundreds of distinct scopes, which is itself worth refusing to hide.
    ScopeSet::from_scopes(union).map_err(|e| BackendError::new(e.to_string(), None))
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
        map.retain(|_, e| e.record.expires_at() >= t);
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
    fn record_issued(&self, record: TokenRecord) -> Result<(), BackendError> {
        let last = record
            .last_used()
            .map_or(NEVER, OffsetDateTime::unix_timestamp);
        let mut map = self.entries.write().unwrap_or_else(|p| p.into_inner());
        map.insert(
            record.token_id().clone(),
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

    fn get(&self, token_id: &TokenId) -> Result<Option<TokenRecord>, BackendError> {
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        Ok(map.get(token_id).map(Self::snapshot))
    }

    fn query(&self, query: &InventoryQuery) -> Result<Vec<TokenRecord>, BackendError> {
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<TokenRecord> = map
            .values()
            .map(Self::snapshot)
            .filter(|r| query.matches(r))
            .collect();
        out.sort_by(|a, b| {
            (a.issued_at(), a.token_id().as_str()).cmp(&(b.issued_at(), b.token_id().as_str()))
        });
        Ok(out)
    }
}

/// Live, not yet revoked tokens not used since `unused_since` (never used counts from issue),
/// revoked one by one unless `dry_run`. Returns exactly the tokens that were (or would be)
/// revoked.
///
/// # Errors
/// [`BackendError`] when the inventory cannot be read, the revocation state is stale (it
/// cannot say which tokens are already revoked), or a revocation fails; tokens revoked before a
/// failure stay revoked.
pub fn prune(
    inventory: &dyn Inventory,
    revocations: &dyn crate::lifecycle::revocation::Revocations,
    unused_since: OffsetDateTime,
    now: OffsetDateTime,
    dry_run: bool,
    by: &str,
) -> Result<Vec<TokenRecord>, BackendError> {
    let query = InventoryQuery::all()
        .live_at(now)
        .unused_since(unused_since);
    let mut stale = Vec::new();
    for r in inventory.query(&query)? {
        match revocations.status_of(&r.facts()) {
            RevocationStatus::NotRevoked => stale.push(r),
            RevocationStatus::Revoked(_) => {}
            RevocationStatus::Stale { .. } => {
                return Err(BackendError::new(
                    "revocation state is stale; pruning needs a current list",
                    None,
                ));
            }
        }
    }
    if !dry_run {
        for r in &stale {
            let target = crate::token::revocation::RevocationTarget::Token {
                token_id: r.token_id().clone(),
                expires_at: Some(r.expires_at()),
            };
            revocations
                .revoke(target, by, "pruned: not used since the cut-off")
                .map_err(|e| {
                    BackendError::new(format!("pruning stopped: {e}"), Some(Box::new(e)))
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
) -> Result<Vec<(String, usize)>, BackendError> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for r in inventory.query(&InventoryQuery::all().live_at(now))? {
        *counts.entry(r.subject().to_owned()).or_default() += 1;
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
) -> Result<Vec<TokenRecord>, BackendError> {
    Ok(inventory
        .query(&InventoryQuery::all().live_at(now))?
        .into_iter()
        .filter(|r| !is_registered(r.subject()))
        .collect())
}
