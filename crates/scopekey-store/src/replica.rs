//! The local replica: the in-memory revocation list and key ring every verification reads,
//! kept current from the store in the background.
//!
//! May import: everything below it (the crate root, `db`, `store`, `tables`); nothing
//! imports it but the crate root.

use crate::db::{Backend, CHANNEL, now_seconds};
use crate::tables::keys::load_keys;
use crate::tables::revocations::load_revocations;
use crate::{Store, StoreError};
use scopekey::revocation::{
    Revocation, RevocationCheck, RevocationList, RevocationStatus, RevocationTarget, RevokeError,
    RevokeErrorKind, Revoker, TokenFacts,
};
use scopekey::{ConfigError, KeyRing, Verifier, VerifierConfig};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a [`Replica`] keeps up with its store.
#[derive(Debug, Clone)]
pub struct ReplicaOptions {
    max_staleness: Duration,
    poll_interval: Duration,
    heartbeat: Duration,
    reconcile_interval: Duration,
}

impl Default for ReplicaOptions {
    fn default() -> Self {
        Self {
            max_staleness: Duration::from_secs(30),
            poll_interval: Duration::from_millis(250),
            heartbeat: Duration::from_secs(1),
            reconcile_interval: Duration::from_secs(10),
        }
    }
}

impl ReplicaOptions {
    /// How long the replica may go without confirming it is current before verification fails
    /// closed (default 30 s).
    pub fn max_staleness(mut self, d: Duration) -> Self {
        self.max_staleness = d;
        self
    }

    /// SQLite: how often to poll (default 250 ms; kept at most 1 s).
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d.min(Duration::from_secs(1));
        self
    }

    /// PostgreSQL: how often to confirm currency when no notification arrives (default 1 s).
    pub fn heartbeat(mut self, d: Duration) -> Self {
        self.heartbeat = d;
        self
    }

    /// How often to reload everything, as a backstop to following the gap-free revocation
    /// numbers (default 10 s; never less often than once per
    /// [`max_staleness`](Self::max_staleness)).
    pub fn reconcile_interval(mut self, d: Duration) -> Self {
        self.reconcile_interval = d;
        self
    }
}

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    last_error: Mutex<Option<String>>,
    resyncs: AtomicU64,
    listen_failures: AtomicU64,
}

/// An in-memory mirror of the store's revocations and key set, for the hot path.
///
/// It implements [`RevocationCheck`] (answering from memory) and [`Revoker`] (writing to the
/// store and applying at once in this process). Other replicas see a revocation within the
/// PostgreSQL notification latency, or the SQLite poll interval. Dropping the replica stops
/// its background task.
#[derive(Debug)]
pub struct Replica {
    store: Store,
    list: Arc<RevocationList>,
    ring: Arc<KeyRing>,
    shared: Arc<Shared>,
}

impl Replica {
    /// Loads everything from the store, then keeps it current in the background.
    ///
    /// # Errors
    /// When the first load fails (the store is unreachable or a row is corrupt).
    pub fn start(store: &Store, options: ReplicaOptions) -> Result<Self, StoreError> {
        let list = Arc::new(RevocationList::replica(options.max_staleness));
        let ring = Arc::new(KeyRing::default());
        let (l, r) = (list.clone(), ring.clone());
        let last_id = store
            .block(move |b| Box::pin(async move { sync(&b, &l, &r, None).await }))?
            .max;
        mark_current(&list);
        let shared = Arc::new(Shared::default());
        let (b, l, r, s) = (
            store.backend().clone(),
            list.clone(),
            ring.clone(),
            shared.clone(),
        );
        store
            .runtime()?
            .spawn(async move { run(b, l, r, s, options, last_id).await });
        Ok(Self {
            store: store.clone(),
            list,
            ring,
            shared,
        })
    }

    /// The revocation list verifiers check.
    pub fn revocations(&self) -> Arc<RevocationList> {
        self.list.clone()
    }

    /// The key ring verifiers read.
    pub fn keys(&self) -> Arc<KeyRing> {
        self.ring.clone()
    }

    /// A verifier reading this replica's keys and revocations.
    ///
    /// # Errors
    /// As [`Verifier::new`].
    pub fn verifier(&self, config: VerifierConfig) -> Result<Verifier, ConfigError> {
        Ok(Verifier::with_key_ring(self.ring.clone(), config)?.with_revocations(self.list.clone()))
    }

    /// The last background sync error, if the last attempt failed.
    pub fn last_error(&self) -> Option<String> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many times this replica reloaded every revocation because the numbers it read
    /// skipped one (a row it never saw: it reloads before it reports itself current again).
    pub fn resyncs(&self) -> u64 {
        self.shared.resyncs.load(Ordering::Relaxed)
    }

    /// PostgreSQL: how many times connecting the notification listener failed. Each failure
    /// waits before the next attempt, doubling from the poll interval to 5 s.
    pub fn listen_failures(&self) -> u64 {
        self.shared.listen_failures.load(Ordering::Relaxed)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

impl RevocationCheck for Replica {
    fn status_of(&self, token: &TokenFacts<'_>) -> RevocationStatus {
        self.list.status_of(token)
    }
}

impl Revoker for Replica {
    fn revoke(
        &self,
        target: RevocationTarget,
        by: &str,
        reason: &str,
    ) -> Result<Arc<Revocation>, RevokeError> {
        let (_, record) = self.store.revoke(target, by, reason).map_err(|e| {
            let kind = match e.kind() {
                crate::StoreErrorKind::InvalidInput => RevokeErrorKind::InvalidInput,
                _ => RevokeErrorKind::Store,
            };
            RevokeError::new(kind, format!("nothing revoked: {e}"))
        })?;
        self.list.apply(record.clone());
        Ok(record)
    }

    fn adopt(&self, record: Arc<Revocation>) -> Result<Arc<Revocation>, RevokeError> {
        // Already in the store (written with the family's death): effective here at once;
        // other replicas read it from the store.
        self.list.adopt(record)
    }
}

fn mark_current(list: &RevocationList) {
    if let Ok(t) = time::OffsetDateTime::from_unix_timestamp(now_seconds()) {
        list.mark_current(t);
    }
}

/// What one sync found.
struct Synced {
    /// The highest revocation number applied (or `after` if none).
    max: i64,
    /// Numbers above `after` were not consecutive: something was missed.
    gap: bool,
}

/// Applies revocations numbered above `after` and replaces the key set if it changed.
///
/// Revocation numbers come from a counter incremented inside the writing transaction, so
/// they are gap-free and commit in order (see `insert_revocation!`): read above a number, the
/// next rows must be `after + 1`, `after + 2`, …. A skipped number means a row this replica
/// will never read that way (deleted, or written by a version without the counter); the
/// caller reloads everything before it vouches again. A full load (`after` is `None`)
/// accepts holes left by rows written before the counter existed.
async fn sync(
    b: &Backend,
    list: &RevocationList,
    ring: &KeyRing,
    after: Option<i64>,
) -> Result<Synced, StoreError> {
    let mut max = after.unwrap_or(0);
    let mut gap = false;
    for (id, record) in load_revocations(b, max).await? {
        if after.is_some() && id != max.saturating_add(1) {
            gap = true;
        }
        list.apply(Arc::new(record));
        max = max.max(id);
    }
    let keys = load_keys(b).await?;
    if *ring.snapshot() != keys {
        ring.replace(keys);
    }
    Ok(Synced { max, gap })
}

async fn run(
    b: Backend,
    list: Arc<RevocationList>,
    ring: Arc<KeyRing>,
    shared: Arc<Shared>,
    options: ReplicaOptions,
    mut last_id: i64,
) {
    let mut last_full = Instant::now();
    let mut force_full = false;
    let mut listener: Option<sqlx::postgres::PgListener> = None;
    // A full reconcile at least once per staleness bound, whatever was configured.
    let reconcile = options.reconcile_interval.min(options.max_staleness);
    // Listener failures back off (doubling to 5 s) instead of retrying in a tight loop.
    let mut backoff = options.poll_interval;
    let max_backoff = Duration::from_secs(5);
    while !shared.stop.load(Ordering::SeqCst) {
        match &b {
            Backend::Sqlite(_) => tokio::time::sleep(options.poll_interval).await,
            Backend::Postgres(pool) => {
                if listener.is_none() {
                    let failed = match sqlx::postgres::PgListener::connect_with(pool).await {
                        Ok(mut l) => match l.listen(CHANNEL).await {
                            Ok(()) => {
                                listener = Some(l);
                                force_full = true; // catch up on anything missed
                                backoff = options.poll_interval;
                                None
                            }
                            Err(e) => Some(format!("listen failed: {e}")),
                        },
                        Err(e) => Some(format!("cannot connect the listener: {e}")),
                    };
                    if let Some(message) = failed {
                        shared.listen_failures.fetch_add(1, Ordering::Relaxed);
                        record_error(&shared, &message);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(max_backoff);
                    }
                }
                if let Some(l) = listener.as_mut() {
                    match tokio::time::timeout(options.heartbeat, l.try_recv()).await {
                        Err(_) | Ok(Ok(Some(_))) => {}
                        Ok(Ok(None)) | Ok(Err(_)) => listener = None,
                    }
                }
            }
        }
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let full = force_full || last_full.elapsed() >= reconcile;
        let result = match sync(&b, &list, &ring, (!full).then_some(last_id)).await {
            Ok(s) if s.gap => {
                // A number was skipped: reload everything before vouching again.
                shared.resyncs.fetch_add(1, Ordering::Relaxed);
                sync(&b, &list, &ring, None).await.map(|s| (s.max, true))
            }
            Ok(s) => Ok((s.max, full)),
            Err(e) => Err(e),
        };
        match result {
            Ok((max, was_full)) => {
                last_id = last_id.max(max);
                mark_current(&list);
                *shared.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
                if was_full {
                    last_full = Instant::now();
                    force_full = false;
                }
            }
            Err(e) => record_error(&shared, &e.to_string()),
        }
    }
}

fn record_error(shared: &Shared, message: &str) {
    *shared.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(message.to_owned());
}
