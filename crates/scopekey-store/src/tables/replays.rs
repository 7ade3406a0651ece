//! `scopekey_dpop_replays`: the DPoP proofs accepted while they could still be accepted, one
//! atomic insert-if-absent-or-expired per proof, shared by every instance on the store.
//!
//! May import: the crate root, `db` and `store`; no other table.

use crate::db::on;
use crate::{Store, StoreError};
use scopekey::BackendError;
use scopekey::dpop::{ReplayCache, ReplayCheck};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

impl Store {
    /// Remembers the DPoP proof `key` (the digest a verifier computes of its key thumbprint and
    /// `jti`) until `expires_at` unless a live row has it: one statement (`INSERT … ON CONFLICT
    /// (proof) DO UPDATE SET expires_at = … WHERE expires_at < now RETURNING proof`), so that of
    /// any number of concurrent presentations of one proof, from any number of instances
    /// sharing the store, at most one is [`ReplayCheck::Fresh`].
    ///
    /// # Errors
    /// A query error (then nothing was remembered, and the caller refuses the proof).
    pub fn remember_dpop_proof(
        &self,
        key: &[u8; 32],
        expires_at: i64,
        now: i64,
    ) -> Result<ReplayCheck, StoreError> {
        let mut proof = String::with_capacity(64);
        for b in key {
            let _ = write!(proof, "{b:02x}");
        }
        self.block(move |b| {
            Box::pin(async move {
                let sql = "INSERT INTO scopekey_dpop_replays (proof, expires_at) VALUES ($1, $2) \
                       ON CONFLICT (proof) DO UPDATE SET expires_at = excluded.expires_at \
                       WHERE scopekey_dpop_replays.expires_at < $3 RETURNING proof";
                let fresh = on!(&b, pool => {
                    sqlx::query(sql).bind(proof.clone()).bind(expires_at).bind(now)
                        .fetch_optional(pool).await.map_err(StoreError::query)?.is_some()
                });
                Ok(if fresh {
                    ReplayCheck::Fresh
                } else {
                    ReplayCheck::Replayed
                })
            })
        })
    }

    /// Deletes the remembered DPoP proofs that expired before `before` (unix seconds); returns
    /// how many. The store's replay cache does this by itself at most once a minute.
    ///
    /// # Errors
    /// A query error.
    pub fn prune_dpop_proofs(&self, before: i64) -> Result<u64, StoreError> {
        self.block(move |b| Box::pin(async move {
            let sql = "DELETE FROM scopekey_dpop_replays WHERE expires_at < $1";
            let n = on!(&b, pool => {
                sqlx::query(sql).bind(before).execute(pool).await.map_err(StoreError::query)?.rows_affected()
            });
            Ok(n)
        }))
    }

    /// A [`ReplayCache`] in this store, for
    /// [`DpopPolicy::new`](scopekey::dpop::DpopPolicy::new): every accepted proof is one atomic
    /// statement ([`Store::remember_dpop_proof`]), so a proof replayed to another instance
    /// sharing the store is refused, and a store that does not answer refuses the proof (fail
    /// closed, 503). The table holds only live proofs plus at most a minute of expired ones
    /// (pruned by the presentations themselves); its size is bounded by the proofs accepted
    /// per window, never by what a client sends (a proof is remembered only once everything
    /// else about it, its signature and key binding included, has passed).
    pub fn replay_cache(&self) -> StoreReplayCache {
        StoreReplayCache {
            store: self.clone(),
            pruned_at: Arc::new(AtomicI64::new(0)),
        }
    }
}

/// A [`ReplayCache`] in the store. See [`Store::replay_cache`].
#[derive(Debug, Clone)]
pub struct StoreReplayCache {
    store: Store,
    pruned_at: Arc<AtomicI64>,
}

/// How often a [`StoreReplayCache`] deletes expired proofs: once a minute.
const PRUNE_EVERY: i64 = 60;

impl ReplayCache for StoreReplayCache {
    fn check_and_insert(
        &self,
        key: &[u8; 32],
        expires_unix: i64,
        unix_now: i64,
    ) -> Result<ReplayCheck, BackendError> {
        let outcome = self
            .store
            .remember_dpop_proof(key, expires_unix, unix_now)
            .map_err(|e| BackendError::new(e.to_string(), Some(Box::new(e))))?;
        let last = self.pruned_at.load(Ordering::Relaxed);
        if unix_now - last >= PRUNE_EVERY
            && self
                .pruned_at
                .compare_exchange(last, unix_now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            // Housekeeping only: a failure leaves rows that the next pruning deletes.
            let _ = self.store.prune_dpop_proofs(unix_now);
        }
        Ok(outcome)
    }
}
