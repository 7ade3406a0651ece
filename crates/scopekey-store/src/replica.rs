//! The local replica: the in-memory revocation list and key ring every verification reads,
//! kept current from the store in the background.
//!
//! May import: everything below it (the crate root, `db`, `store`, `tables`); nothing
//! imports it but the crate root.

#[cfg(feature = "postgres")]
use crate::db::CHANNEL;
#[cfg(feature = "sqlite")]
use crate::db::CommitWatch;
use crate::db::{Backend, now_seconds};
use crate::tables::keys::load_keys;
use crate::tables::revocations::{
    REVOCATION_PAGE, RevocationCounters, count_revocations_and_sweeps, count_revocations_through,
    load_revocation_page, revocation_counters,
};
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
///
/// A replica loads everything once when it starts, then follows the gap-free revocation
/// numbers: it reads only the revocations after the last one it applied (and the key set)
/// whenever something may have changed. It reloads everything only when the numbers it reads
/// skip one, when it reconnects after losing its store, or when the periodic consistency
/// check ([`reconcile_interval`](Self::reconcile_interval)) finds the store holding a
/// different number of revocations than it applied.
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
            poll_interval: Duration::from_millis(10),
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

    /// SQLite: how often to ask whether anything was committed (default 10 ms; kept between
    /// 1 ms and 1 s).
    ///
    /// Each poll reads `PRAGMA data_version` on a connection of the replica's own (a few
    /// microseconds, no table read); the revocations and keys are read only when another
    /// connection or process committed since. A poll that answers confirms the replica is
    /// current. PostgreSQL: the first wait after a failed listener connection, if longer than
    /// 100 ms (see [`Replica::listen_failures`]).
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d.clamp(Duration::from_millis(1), Duration::from_secs(1));
        self
    }

    /// PostgreSQL: how often to confirm currency when no notification arrives (default 1 s).
    pub fn heartbeat(mut self, d: Duration) -> Self {
        self.heartbeat = d;
        self
    }

    /// How often to check that the replica holds every revocation the store has (default
    /// 10 s; at least once per [`max_staleness`](Self::max_staleness)).
    ///
    /// The check counts the store's revocation rows numbered up to the last one the replica
    /// applied (the row count the store's triggers keep, less the rows numbered above: work
    /// that does not grow with the table; every row up to the number is counted only if
    /// that disagrees), adds the rows [`Store::sweep`] deleted since its last full load (the
    /// store counts them), and compares that with the rows it applied. Only a difference (a
    /// row deleted other than by a sweep, or written below the last number by something that
    /// bypassed the counter) makes it reload everything ([`Replica::full_reloads`]). (Earlier
    /// versions reloaded everything at this interval.)
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
    full_reloads: AtomicU64,
    listen_failures: AtomicU64,
}

/// An in-memory mirror of the store's revocations and key set, for the hot path.
///
/// It implements [`RevocationCheck`] (answering from memory) and [`Revoker`] (writing to the
/// store and applying at once in this process). Other replicas see a revocation within the
/// PostgreSQL notification latency, or the SQLite poll interval (plus one incremental read).
/// Dropping the replica stops its background task.
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
        let first = store.block(move |b| Box::pin(async move { load_all(&b, &l, &r).await }))?;
        mark_current(&list);
        let shared = Arc::new(Shared::default());
        shared.full_reloads.store(1, Ordering::Relaxed);
        let follow = Follow {
            b: store.backend().clone(),
            list: list.clone(),
            ring: ring.clone(),
            shared: shared.clone(),
            check_every: options.reconcile_interval.min(options.max_staleness),
            options,
            last_id: first.last_id,
            rows: first.rows,
            swept_base: first.swept_base,
            last_check: Instant::now(),
        };
        store.runtime()?.spawn(follow.run());
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

    /// How many times this replica loaded every revocation: 1 for the load at
    /// [`start`](Self::start), plus one for each gap ([`resyncs`](Self::resyncs)), each
    /// reconnection after losing the store (PostgreSQL: the notification listener; SQLite: the
    /// connection that watches for commits) and each failed consistency check (see
    /// [`ReplicaOptions::reconcile_interval`]). New revocations alone never cause one.
    pub fn full_reloads(&self) -> u64 {
        self.shared.full_reloads.load(Ordering::Relaxed)
    }

    /// PostgreSQL: how many times connecting the notification listener failed. Each failure
    /// waits before the next attempt, doubling from 100 ms (or the poll interval, if longer)
    /// to 5 s.
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

    fn generation(&self) -> Option<u64> {
        self.list.generation()
    }

    fn stale_status(&self) -> Option<RevocationStatus> {
        self.list.stale_status()
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
    /// How many revocation rows were read.
    rows: i64,
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
    let mut rows = 0;
    // In pages, so that a cold start over millions of rows holds one page of rows at a time
    // besides the list (not every row of the table, decoded, at once).
    loop {
        let page = load_revocation_page(b, max, REVOCATION_PAGE).await?;
        let full = i64::try_from(page.len()).unwrap_or(i64::MAX) >= REVOCATION_PAGE;
        for (id, record) in page {
            if after.is_some() && id != max.saturating_add(1) {
                gap = true;
            }
            list.apply(Arc::new(record));
            max = max.max(id);
            rows += 1;
        }
        if !full {
            break;
        }
    }
    let keys = load_keys(b).await?;
    if *ring.snapshot() != keys {
        ring.replace(keys);
    }
    Ok(Synced { max, rows, gap })
}

/// What a full load found.
struct Loaded {
    /// The number to follow on from: the highest applied, or the revocation counter read
    /// before the load if higher (rows numbered up to it that the load did not find were
    /// deleted, by a sweep or otherwise, and will never be read).
    last_id: i64,
    /// How many revocation rows were read.
    rows: i64,
    /// The sweep counter read before the load.
    swept_base: i64,
}

/// Loads every revocation and the key set. The counters are read first: a sweep between the
/// two reads makes the next consistency check reload once, never hides a lost row.
async fn load_all(
    b: &Backend,
    list: &RevocationList,
    ring: &KeyRing,
) -> Result<Loaded, StoreError> {
    let RevocationCounters {
        assigned, swept, ..
    } = revocation_counters(b).await?;
    let s = sync(b, list, ring, None).await?;
    Ok(Loaded {
        last_id: s.max.max(assigned),
        rows: s.rows,
        swept_base: swept,
    })
}

/// What a round of the background task reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// Everything (after a reconnection).
    Full,
    /// The revocations after the last number, and the keys.
    Incremental,
    /// Nothing: the store answered that nothing changed (SQLite's commit watch).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Confirm,
}

/// The background task's state: where it is in the revocation numbers.
struct Follow {
    b: Backend,
    list: Arc<RevocationList>,
    ring: Arc<KeyRing>,
    shared: Arc<Shared>,
    options: ReplicaOptions,
    /// How often the consistency check runs.
    check_every: Duration,
    /// The highest revocation number applied.
    last_id: i64,
    /// How many revocation rows numbered up to `last_id` were applied.
    rows: i64,
    /// The store's count of swept revocations when the last full load began.
    swept_base: i64,
    last_check: Instant,
}

impl Follow {
    fn stopped(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }

    async fn run(self) {
        match self.b.clone() {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(pool) => self.follow_sqlite(pool).await,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => self.follow_postgres(pool).await,
        }
    }

    /// SQLite: every poll interval, asks the commit watch whether anything was committed, and
    /// reads after the last number only then (or after a failed read).
    #[cfg(feature = "sqlite")]
    async fn follow_sqlite(mut self, pool: sqlx::sqlite::SqlitePool) {
        let mut watch: Option<CommitWatch> = None;
        let mut opened_before = false;
        let mut force_full = false;
        // A change seen but not applied (the read failed): read again whatever the watch says.
        let mut pending = false;
        while !self.stopped() {
            tokio::time::sleep(self.options.poll_interval).await;
            if self.stopped() {
                break;
            }
            let changed = match watch.as_mut() {
                // Opened after the last read: anything may have changed in between.
                None => match CommitWatch::open(&pool).await {
                    Ok(w) => {
                        watch = Some(w);
                        force_full |= opened_before;
                        opened_before = true;
                        true
                    }
                    Err(e) => {
                        record_error(&self.shared, &format!("cannot watch for commits: {e}"));
                        continue;
                    }
                },
                Some(w) => match w.changed().await {
                    Ok(changed) => changed,
                    Err(e) => {
                        // Reopened (and everything reloaded) on the next poll.
                        record_error(&self.shared, &format!("cannot watch for commits: {e}"));
                        watch = None;
                        continue;
                    }
                },
            };
            let round = if force_full {
                Round::Full
            } else if changed || pending {
                Round::Incremental
            } else {
                Round::Confirm
            };
            let done = self.round(round).await;
            pending = !done;
            if done && round == Round::Full {
                force_full = false;
            }
        }
    }

    /// PostgreSQL: reads after the last number on every notification and every heartbeat;
    /// everything after the listener reconnects.
    #[cfg(feature = "postgres")]
    async fn follow_postgres(mut self, pool: sqlx::postgres::PgPool) {
        // The listener holds its connection for good: a pool of its own (the store's connect
        // options, TLS included), so it never takes a connection the store's queries need.
        let listener_pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with((*pool.connect_options()).clone());
        let mut listener: Option<sqlx::postgres::PgListener> = None;
        // Right after LISTEN, read at once: anything committed between the last read and the
        // LISTEN sent no notification this listener could have received.
        let mut just_connected = false;
        let mut connected_before = false;
        let mut force_full = false;
        // Listener failures back off (doubling to 5 s) instead of retrying in a tight loop.
        let first_backoff = self.options.poll_interval.max(Duration::from_millis(100));
        let mut backoff = first_backoff;
        let max_backoff = Duration::from_secs(5);
        while !self.stopped() {
            if listener.is_none() {
                let failed = match sqlx::postgres::PgListener::connect_with(&listener_pool).await {
                    Ok(mut l) => match l.listen(CHANNEL).await {
                        Ok(()) => {
                            listener = Some(l);
                            just_connected = true;
                            // The first connection follows on from the load at start; a
                            // reconnection catches up on anything missed with a full load.
                            force_full |= connected_before;
                            connected_before = true;
                            backoff = first_backoff;
                            None
                        }
                        Err(e) => Some(format!("listen failed: {e}")),
                    },
                    Err(e) => Some(format!("cannot connect the listener: {e}")),
                };
                if let Some(message) = failed {
                    self.shared.listen_failures.fetch_add(1, Ordering::Relaxed);
                    record_error(&self.shared, &message);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(max_backoff);
                }
            }
            if let Some(l) = listener.as_mut()
                && !std::mem::take(&mut just_connected)
            {
                match tokio::time::timeout(self.options.heartbeat, l.try_recv()).await {
                    // One read covers every notification already received.
                    Ok(Ok(Some(_))) => while l.next_buffered().is_some() {},
                    Err(_) => {}
                    Ok(Ok(None)) | Ok(Err(_)) => listener = None,
                }
            }
            if self.stopped() {
                break;
            }
            let round = if force_full {
                Round::Full
            } else {
                Round::Incremental
            };
            if self.round(round).await && round == Round::Full {
                force_full = false;
            }
        }
    }

    /// Reads what `round` says, runs the consistency check when it is due, and marks the list
    /// current if everything answered. Returns whether it did.
    async fn round(&mut self, round: Round) -> bool {
        let result = match round {
            Round::Full => self.full().await,
            Round::Incremental => self.incremental().await,
            Round::Confirm => Ok(()),
        };
        let result = match result {
            Ok(()) if self.last_check.elapsed() >= self.check_every => self.check().await,
            other => other,
        };
        match result {
            Ok(()) => {
                mark_current(&self.list);
                let mut last = self
                    .shared
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if last.is_some() {
                    *last = None;
                }
                true
            }
            Err(e) => {
                record_error(&self.shared, &e.to_string());
                false
            }
        }
    }

    async fn full(&mut self) -> Result<(), StoreError> {
        let s = load_all(&self.b, &self.list, &self.ring).await?;
        // Keep the highest number seen even if that row is gone: the next one follows it.
        self.last_id = self.last_id.max(s.last_id);
        self.rows = s.rows;
        self.swept_base = s.swept_base;
        self.last_check = Instant::now();
        self.shared.full_reloads.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn incremental(&mut self) -> Result<(), StoreError> {
        let s = sync(&self.b, &self.list, &self.ring, Some(self.last_id)).await?;
        if s.gap {
            // A number was skipped: reload everything before vouching again.
            self.shared.resyncs.fetch_add(1, Ordering::Relaxed);
            return self.full().await;
        }
        self.last_id = s.max;
        self.rows = self.rows.saturating_add(s.rows);
        Ok(())
    }

    /// Compares the store's count of rows numbered up to the last one applied, plus the rows
    /// swept since the last full load, with the rows applied; reloads everything on a
    /// difference, or when a sweep deleted a row numbered above the last one applied.
    ///
    /// The count is first taken the cheap way (the trigger-kept row count less the rows
    /// above the last number: constant work however large the table); only when that
    /// disagrees is every row up to the last number counted, and only when that disagrees
    /// too is everything reloaded. A row count gone wrong (a `TRUNCATE`, a dropped trigger)
    /// costs the exact count at each check, never a reload loop.
    async fn check(&mut self) -> Result<(), StoreError> {
        let (cheap, counters) = count_revocations_and_sweeps(&self.b, self.last_id).await?;
        self.last_check = Instant::now();
        let consistent = |count: i64, c: &RevocationCounters| {
            let swept_since = c.swept.saturating_sub(self.swept_base);
            c.swept_through <= self.last_id && count.saturating_add(swept_since) == self.rows
        };
        if cheap.is_some_and(|n| consistent(n, &counters)) {
            return Ok(());
        }
        let (exact, counters) = count_revocations_through(&self.b, self.last_id).await?;
        if consistent(exact, &counters) {
            Ok(())
        } else {
            self.full().await
        }
    }
}

fn record_error(shared: &Shared, message: &str) {
    *shared.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(message.to_owned());
}
