//! The store behind the core's traits: inventory, refresh families, audit sink and usage
//! counter.
//!
//! May import: everything below it (the crate root, `db`, `store`, `tables`); nothing
//! imports it but the crate root.

use crate::tables::audit::append_audit;
use crate::{Store, StoreError};
use scopekey::BackendError;
use scopekey::audit::{AuditError, AuditEvent, AuditKind, AuditSink};
use scopekey::consumer::{Consumer, ConsumerDirectory};
use scopekey::inventory::{Inventory, InventoryQuery, TokenRecord};
use scopekey::refresh::{Presentation, RefreshFamilies, Rotation};
use scopekey::usage::{Consumption, UsageCounter};
use scopekey::{FamilyId, TokenId};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// Most audit events or last-use notes waiting to be written.
const BACKLOG: usize = 10_000;

impl Store {
    /// An [`AuditSink`] writing to this store in batches, off the request path.
    ///
    /// # Errors
    /// When the store's runtime is gone.
    pub fn audit_sink(&self) -> Result<StoreAuditSink, StoreError> {
        let (tx, mut rx) = mpsc::channel::<AuditEvent>(BACKLOG);
        let state = Arc::new(Pending::default());
        let (b, s) = (self.backend().clone(), state.clone());
        self.runtime()?.spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < 500 {
                    match rx.try_recv() {
                        Ok(e) => batch.push(e),
                        Err(_) => break,
                    }
                }
                let n = batch.len();
                // Retry until written: events are never dropped; while failing, new events are
                // refused so that callers fail closed.
                loop {
                    match append_audit(&b, batch.clone()).await {
                        Ok(()) => {
                            s.failed.store(false, Ordering::SeqCst);
                            break;
                        }
                        Err(_) => {
                            s.failed.store(true, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
                s.count.fetch_sub(n, Ordering::SeqCst);
            }
        });
        Ok(StoreAuditSink {
            inner: Arc::new(AuditInner {
                tx,
                state,
                _store: self.clone(),
            }),
        })
    }

    /// An [`Inventory`] in this store; last uses are batched and written once a second.
    ///
    /// # Errors
    /// When the store's runtime is gone.
    pub fn inventory(&self) -> Result<StoreInventory, StoreError> {
        let (tx, mut rx) = mpsc::channel::<(TokenId, i64)>(BACKLOG);
        let state = Arc::new(Pending::default());
        let (store, s) = (self.clone(), state.clone());
        self.runtime()?.spawn(async move {
            while let Some(first) = rx.recv().await {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let mut latest: HashMap<TokenId, i64> = HashMap::new();
                let mut n = 1;
                latest.insert(first.0, first.1);
                while let Ok((jti, t)) = rx.try_recv() {
                    n += 1;
                    let e = latest.entry(jti).or_insert(t);
                    *e = (*e).max(t);
                }
                let uses: Vec<(TokenId, i64)> = latest.into_iter().collect();
                let st = store.clone();
                // Last use is best effort: a failed batch is retried once, then dropped.
                let write = tokio::task::spawn_blocking(move || {
                    st.touch_tokens(uses.clone())
                        .or_else(|_| st.touch_tokens(uses))
                })
                .await;
                s.failed
                    .store(!matches!(write, Ok(Ok(()))), Ordering::SeqCst);
                s.count.fetch_sub(n, Ordering::SeqCst);
            }
        });
        Ok(StoreInventory {
            store: self.clone(),
            tx,
            state,
        })
    }

    /// A [`UsageCounter`] in this store, for
    /// [`Verifier::with_usage_counter`](scopekey::Verifier::with_usage_counter): every use of a
    /// use-limited token is one atomic statement ([`Store::consume_token_use`]), so all the
    /// instances sharing the store share each token's count, and a store that does not answer
    /// refuses the token (fail closed). At most once an hour, a use also deletes the counts of
    /// tokens no verifier accepts any more ([`Store::prune_token_uses`]).
    pub fn usage_counter(&self) -> StoreUsageCounter {
        StoreUsageCounter {
            store: self.clone(),
            pruned_at: Arc::new(AtomicI64::new(0)),
        }
    }

    /// [`RefreshFamilies`] in this store: rotation is one atomic update, so two processes
    /// presenting the same refresh token get at most one new pair.
    pub fn families(&self) -> StoreFamilies {
        StoreFamilies {
            store: self.clone(),
        }
    }
}

#[derive(Debug, Default)]
struct Pending {
    count: AtomicUsize,
    failed: AtomicBool,
}

impl Pending {
    fn wait_empty(&self, timeout: Duration) -> bool {
        let start = std::time::Instant::now();
        while self.count.load(Ordering::SeqCst) > 0 {
            if start.elapsed() > timeout {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }
}

/// An [`AuditSink`] writing to the store. See [`Store::audit_sink`].
///
/// It keeps the store's runtime alive, and when its last clone is dropped it waits (up to 5 s)
/// for queued events to be written, so shutting down does not lose the tail of the trail.
#[derive(Debug, Clone)]
pub struct StoreAuditSink {
    inner: Arc<AuditInner>,
}

#[derive(Debug)]
struct AuditInner {
    tx: mpsc::Sender<AuditEvent>,
    state: Arc<Pending>,
    /// Keeps the runtime that writes the queue running while the sink exists.
    _store: Store,
}

impl Drop for AuditInner {
    fn drop(&mut self) {
        let _ = self.state.wait_empty(Duration::from_secs(5));
    }
}

impl StoreAuditSink {
    /// Waits until every queued event is written; returns whether that happened in `timeout`.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.inner.state.wait_empty(timeout)
    }
}

impl AuditSink for StoreAuditSink {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let state = &self.inner.state;
        if state.failed.load(Ordering::SeqCst) {
            return Err(AuditError::new(
                "store",
                "the store is not accepting audit events",
            ));
        }
        // Summaries may take only half the backlog: a flush of many summaries must leave room
        // for the events a caller fails closed on (`issued`, `refreshed`, `revoked`).
        let summary = matches!(
            event.kind,
            AuditKind::TokenUsed { .. }
                | AuditKind::OtherTokensUsed { .. }
                | AuditKind::RefusedSummary { .. }
        );
        if summary && self.inner.tx.capacity() < BACKLOG / 2 {
            return Err(AuditError::busy(
                "store",
                "the audit backlog is half full; summaries wait for the next interval",
            ));
        }
        state.count.fetch_add(1, Ordering::SeqCst);
        self.inner.tx.try_send(event.clone()).map_err(|e| {
            state.count.fetch_sub(1, Ordering::SeqCst);
            match e {
                mpsc::error::TrySendError::Full(_) => AuditError::busy(
                    "store",
                    "the audit backlog is full (wrap the sink in a SummarizingSink on the request path)",
                ),
                mpsc::error::TrySendError::Closed(_) => {
                    AuditError::new("store", "the audit writer has stopped")
                }
            }
        })
    }
}

/// An [`Inventory`] in the store. See [`Store::inventory`].
#[derive(Debug, Clone)]
pub struct StoreInventory {
    store: Store,
    tx: mpsc::Sender<(TokenId, i64)>,
    state: Arc<Pending>,
}

impl StoreInventory {
    /// Waits until every queued last use is written; returns whether that happened in
    /// `timeout`.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.state.wait_empty(timeout)
    }
}

fn inventory_error(e: StoreError) -> BackendError {
    BackendError::new(e.to_string(), Some(Box::new(e)))
}

impl Inventory for StoreInventory {
    fn record_issued(&self, record: TokenRecord) -> Result<(), BackendError> {
        self.store.record_token(&record).map_err(inventory_error)
    }

    fn touch(&self, token_id: &TokenId, at: OffsetDateTime) {
        self.state.count.fetch_add(1, Ordering::SeqCst);
        if self
            .tx
            .try_send((token_id.clone(), at.unix_timestamp()))
            .is_err()
        {
            // Full backlog: last use is best effort and never blocks a request.
            self.state.count.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn get(&self, token_id: &TokenId) -> Result<Option<TokenRecord>, BackendError> {
        self.store.token(token_id).map_err(inventory_error)
    }

    fn query(&self, query: &InventoryQuery) -> Result<Vec<TokenRecord>, BackendError> {
        self.store.tokens(query).map_err(inventory_error)
    }
}

/// A [`UsageCounter`] in the store. See [`Store::usage_counter`].
#[derive(Debug, Clone)]
pub struct StoreUsageCounter {
    store: Store,
    /// Unix second of the last pruning of expired counts (0: none yet).
    pruned_at: Arc<AtomicI64>,
}

/// How often a [`StoreUsageCounter`] deletes expired counts: once an hour.
const PRUNE_EVERY: i64 = 3600;

impl UsageCounter for StoreUsageCounter {
    fn consume(
        &self,
        token_id: &TokenId,
        limit: u32,
        keep_until: OffsetDateTime,
    ) -> Result<Consumption, BackendError> {
        let outcome = self
            .store
            .consume_token_use(token_id, limit, keep_until)
            .map_err(|e| BackendError::new(e.to_string(), Some(Box::new(e))))?;
        let now = crate::db::now_seconds();
        let last = self.pruned_at.load(Ordering::Relaxed);
        if now - last >= PRUNE_EVERY
            && self
                .pruned_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            // Housekeeping only: a failure leaves rows that the next pruning deletes.
            let _ = self
                .store
                .prune_token_uses(OffsetDateTime::from_unix_timestamp(now).unwrap_or(keep_until));
        }
        Ok(outcome)
    }
}

/// [`RefreshFamilies`] in the store. See [`Store::families`].
#[derive(Debug, Clone)]
pub struct StoreFamilies {
    store: Store,
}

fn family_error(e: StoreError) -> BackendError {
    BackendError::new(e.to_string(), Some(Box::new(e)))
}

impl RefreshFamilies for StoreFamilies {
    fn begin(
        &self,
        family: &FamilyId,
        first: &TokenId,
        started_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), BackendError> {
        self.store
            .begin_family(family, first, started_at, expires_at)
            .map_err(family_error)
    }

    fn rotate(&self, presentation: &Presentation<'_>) -> Result<Rotation, BackendError> {
        self.store.rotate_family(presentation).map_err(family_error)
    }
}

impl ConsumerDirectory for Store {
    fn consumer(&self, name: &str) -> Result<Option<Consumer>, BackendError> {
        Store::consumer(self, name).map_err(|e| BackendError::new(e.to_string(), None))
    }
}
