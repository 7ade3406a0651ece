//! The store: connection, migrations and every query, on SQLite or PostgreSQL.

use crate::audit_query::AuditQuery;
use crate::redact::{self, RedactedUrl};
use crate::rows;
use crate::{StoreError, StoreErrorKind};
use scopekey::audit::AuditEvent;
use scopekey::consumer::{Consumer, Roles};
use scopekey::inventory::{InventoryQuery, TokenRecord};
use scopekey::refresh::{Presentation, Rotation};
use scopekey::revocation::{Revocation, RevocationTarget};
use scopekey::{FamilyId, KeyId, KeySet, PublicKey, TokenId};
use sqlx::Row as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable database future. Boxing at a concrete site sidesteps rustc's
/// higher-ranked `Send` inference limits with sqlx transactions in spawned futures.
pub(crate) type DbFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// The channel PostgreSQL notifications go to on every change.
pub(crate) const CHANNEL: &str = "scopekey_changes";

const MIGRATIONS_SQLITE: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_consumers.sql")),
    (
        3,
        include_str!("../migrations/sqlite/0003_sequence_and_family_start.sql"),
    ),
];
const MIGRATIONS_POSTGRES: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (2, include_str!("../migrations/postgres/0002_consumers.sql")),
    (
        3,
        include_str!("../migrations/postgres/0003_sequence_and_family_start.sql"),
    ),
];

#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same body against whichever pool the backend holds. Placeholders are written
/// `$1`, `$2`, … in order of first appearance, which both drivers bind positionally.
macro_rules! on {
    ($backend:expr, $pool:ident => $body:expr) => {
        match $backend {
            Backend::Sqlite($pool) => $body,
            Backend::Postgres($pool) => $body,
        }
    };
}

/// Inserts one audit row (from [`audit_row`]) in the transaction `$tx`.
macro_rules! insert_audit_row {
    ($tx:expr, $row:expr) => {{
        let [time, event, jti, sub, body] = $row;
        sqlx::query("INSERT INTO scopekey_audit (time, event, jti, subject, body) VALUES ($1, $2, $3, $4, $5)")
            .bind(time).bind(event).bind(jti).bind(sub).bind(body)
            .execute(&mut *$tx).await.map_err(StoreError::query)?;
    }};
}

/// Inserts one revocation (a [`RevocationInsert`]) and its `revoked` audit row in the
/// transaction `$tx`, numbered by the revocation counter; evaluates to its number. Every
/// revocation the store writes goes through here.
///
/// The counter's row is updated in `$tx`, so concurrent writers wait for each other: numbers
/// are gap-free and become visible in order, which lets a replica tell a missed revocation
/// from one not yet written (see `replica.rs`).
macro_rules! insert_revocation {
    ($tx:expr, $insert:expr) => {{
        let RevocationInsert { kind, value, instant, by, at, reason, audit } = $insert;
        let row = sqlx::query("UPDATE scopekey_counters SET value = value + 1 WHERE name = 'revocations' RETURNING value")
            .fetch_one(&mut *$tx).await.map_err(StoreError::query)?;
        let id: i64 = row.try_get("value").map_err(StoreError::query)?;
        sqlx::query("INSERT INTO scopekey_revocations (id, kind, value, instant, revoked_by, revoked_at, reason) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(id).bind(kind).bind(value).bind(instant).bind(by).bind(at).bind(reason)
            .execute(&mut *$tx).await.map_err(StoreError::query)?;
        // The `revoked` event commits with the revocation, or neither does.
        insert_audit_row!($tx, audit);
        id
    }};
}

/// A revocation's columns and its `revoked` audit row, owned, ready for [`insert_revocation!`].
struct RevocationInsert {
    kind: &'static str,
    value: Option<String>,
    instant: Option<i64>,
    by: String,
    at: i64,
    reason: String,
    audit: [Option<String>; 5],
}

impl RevocationInsert {
    fn of(record: &Revocation) -> Self {
        let (kind, value, instant) = rows::revocation_columns(record.target());
        Self {
            kind,
            value,
            instant,
            by: record.by().to_owned(),
            at: record.at().unix_timestamp(),
            reason: record.reason().to_owned(),
            audit: audit_row(AuditEvent::for_revocation(record)),
        }
    }
}

/// Owns the store's runtime; shuts it down without blocking, so dropping a store inside an
/// async context never panics.
#[derive(Debug)]
struct RuntimeHolder(Option<tokio::runtime::Runtime>);

impl Drop for RuntimeHolder {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

struct Inner {
    backend: Backend,
    runtime: RuntimeHolder,
    /// The URL without its secrets, for messages (and to scrub them from errors).
    url: RedactedUrl,
}

/// A handle to the store. Cheap to clone; every clone shares the connection pool and runtime.
///
/// Its `Debug` shows the URL as [`Store::url`] does, without password or secret parameters.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match self.inner.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        };
        f.debug_struct("Store")
            .field("url", &self.inner.url.as_str())
            .field("backend", &backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `url` (`sqlite://path` creates the file if needed; `postgres://…`)
    /// and applies pending migrations.
    ///
    /// PostgreSQL URLs take libpq's TLS parameters: `sslmode` (`disable`, `prefer` (the
    /// default), `require`, `verify-ca`, `verify-full`), `sslrootcert`, `sslcert` and `sslkey`
    /// (see `docs/deployment.md`). As with libpq, `sslmode=require` with an `sslrootcert`
    /// verifies the server's certificate against it (as `verify-ca`). With the sqlx and rustls
    /// versions this crate builds with, `verify-ca` checks the host name too (launchbadge/sqlx#3793):
    /// it is as strict as `verify-full`.
    ///
    /// # Errors
    /// [`StoreErrorKind::UnsupportedUrl`], [`StoreErrorKind::Connect`],
    /// [`StoreErrorKind::Migration`], [`StoreErrorKind::Runtime`].
    ///
    /// # Security
    /// No error, `Debug` output or [`Store::url`] shows the URL's password or secret parameters
    /// (`password`, `sslkey`, …): they are replaced by `***`. Use `sslmode=verify-full` for a
    /// server reached over a network; `prefer` and `require` encrypt but do not authenticate it.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("scopekey-store")
            .enable_all()
            .build()
            .map_err(|e| {
                StoreError::new(StoreErrorKind::Runtime, "cannot start the store runtime")
                    .with_source(e)
            })?;
        let shown = RedactedUrl::new(url);
        let owned = url.to_owned();
        let for_connect = shown.clone();
        let fut: DbFuture<Backend> = Box::pin(async move {
            let backend = connect(&owned, &for_connect).await?;
            migrate(&backend).await?;
            Ok(backend)
        });
        let backend = run_on(&runtime, fut)
            .and_then(|r| r)
            .map_err(|e| e.redacted(&shown))?;
        Ok(Self {
            inner: Arc::new(Inner {
                backend,
                runtime: RuntimeHolder(Some(runtime)),
                url: shown,
            }),
        })
    }

    /// The store's URL as it may be shown: the password and secret query parameters
    /// (`password`, `sslpassword`, `sslkey`, anything named like a key, token or secret) are
    /// replaced by `***`, and a URL that does not parse is shown as a placeholder naming only
    /// its scheme.
    pub fn url(&self) -> &str {
        self.inner.url.as_str()
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    pub(crate) fn runtime(&self) -> Result<&tokio::runtime::Runtime, StoreError> {
        self.inner
            .runtime
            .0
            .as_ref()
            .ok_or_else(|| StoreError::new(StoreErrorKind::Runtime, "store runtime is gone"))
    }

    /// Runs `f(backend)` on the store's runtime and waits for it.
    pub(crate) fn block<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Backend) -> DbFuture<T>,
    {
        let fut = f(self.inner.backend.clone());
        run_on(self.runtime()?, fut)
            .and_then(|r| r)
            .map_err(|e| e.redacted(&self.inner.url))
    }

    // ---- revocations -------------------------------------------------------------------------

    /// Records a revocation (and notifies every PostgreSQL replica). Returns its row id and the
    /// record. It takes effect in this process once a replica applies it; [`Replica`]'s
    /// [`Revoker`](scopekey::revocation::Revoker) does both at once.
    ///
    /// [`Replica`]: crate::Replica
    ///
    /// # Errors
    /// [`StoreErrorKind::InvalidInput`] for an invalid `by`, `reason` or subject, otherwise a
    /// query error.
    pub fn revoke(
        &self,
        target: RevocationTarget,
        by: &str,
        reason: &str,
    ) -> Result<(i64, Arc<Revocation>), StoreError> {
        let now = now_seconds();
        let record = Revocation::new(target, by, at(now)?, reason)
            .map_err(|e| StoreError::new(StoreErrorKind::InvalidInput, e.to_string()))?;
        let insert = RevocationInsert::of(&record);
        let id = self.block(move |b| {
            Box::pin(async move {
                let id: i64 = on!(&b, pool => {
                    let mut tx = pool.begin().await.map_err(StoreError::query)?;
                    let id = insert_revocation!(tx, insert);
                    tx.commit().await.map_err(StoreError::query)?;
                    id
                });
                // Committed: a lost notification only delays other replicas until their next
                // sync (every heartbeat), so it must not report the revocation as failed.
                let _ = notify(&b, "revocation").await;
                Ok(id)
            })
        })?;
        Ok((id, Arc::new(record)))
    }

    /// Every revocation with a row id above `after`, in id order.
    ///
    /// # Errors
    /// A query error, or [`StoreErrorKind::Corrupt`] naming the first row that does not parse.
    pub fn revocations_after(&self, after: i64) -> Result<Vec<(i64, Revocation)>, StoreError> {
        self.block(move |b| Box::pin(async move { load_revocations(&b, after).await }))
    }

    // ---- keys ----------------------------------------------------------------------------------

    /// Adds (or re-adds, clearing any retirement) a public key that every replica will trust
    /// from `not_before` (default: now).
    ///
    /// # Errors
    /// A query error.
    pub fn add_key(
        &self,
        key: &PublicKey,
        not_before: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let kid = key.key_id().as_str().to_owned();
        let paserk = key.to_paserk();
        let nb = not_before.map(OffsetDateTime::unix_timestamp);
        let now = now_seconds();
        self.block(move |b| Box::pin(async move {
            let sql = "INSERT INTO scopekey_keys (kid, public_key, not_before, retire_at, added_at) \
                       VALUES ($1, $2, $3, NULL, $4) \
                       ON CONFLICT (kid) DO UPDATE SET not_before = excluded.not_before, retire_at = NULL";
            on!(&b, pool => {
                sqlx::query(sql).bind(kid).bind(paserk).bind(nb).bind(now)
                    .execute(pool).await.map_err(StoreError::query)?;
            });
            notify(&b, "keys").await
        }))
    }

    /// Retires a key from `at` on (default: now) everywhere. Returns whether the key was known.
    ///
    /// # Errors
    /// A query error.
    pub fn retire_key(&self, kid: &KeyId, at: Option<OffsetDateTime>) -> Result<bool, StoreError> {
        let kid = kid.as_str().to_owned();
        let when = at.map_or_else(now_seconds, OffsetDateTime::unix_timestamp);
        self.block(move |b| Box::pin(async move {
            let n = on!(&b, pool => sqlx::query("UPDATE scopekey_keys SET retire_at = $1 WHERE kid = $2")
                .bind(when).bind(kid).execute(pool).await.map_err(StoreError::query)?.rows_affected());
            notify(&b, "keys").await?;
            Ok(n > 0)
        }))
    }

    /// The key set every replica verifies with.
    ///
    /// # Errors
    /// A query error, or [`StoreErrorKind::Corrupt`] for a row whose key does not import or
    /// whose key id does not match its key.
    pub fn key_set(&self) -> Result<KeySet, StoreError> {
        self.block(|b| Box::pin(async move { load_keys(&b).await }))
    }

    // ---- inventory -----------------------------------------------------------------------------

    /// Records an issued token.
    ///
    /// # Errors
    /// A query error.
    pub fn record_token(&self, record: &TokenRecord) -> Result<(), StoreError> {
        let r = record.clone();
        self.block(move |b| Box::pin(async move {
            let sql = "INSERT INTO scopekey_tokens (jti, token_type, subject, owner, purpose, scopes, issued_at, expires_at, kid, family, last_used) \
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
            on!(&b, pool => {
                sqlx::query(sql)
                    .bind(r.token_id().as_str().to_owned())
                    .bind(r.token_type().as_str())
                    .bind(r.subject().to_owned())
                    .bind(r.owner().map(str::to_owned))
                    .bind(r.purpose().map(str::to_owned))
                    .bind(r.scopes().to_string())
                    .bind(r.issued_at().unix_timestamp())
                    .bind(r.expires_at().unix_timestamp())
                    .bind(r.key_id().as_str().to_owned())
                    .bind(r.family().map(|f| f.as_str().to_owned()))
                    .bind(r.last_used().map(OffsetDateTime::unix_timestamp))
                    .execute(pool).await.map_err(StoreError::query)?;
            });
            Ok(())
        }))
    }

    /// Records last uses, keeping the latest per token.
    ///
    /// # Errors
    /// A query error.
    pub fn touch_tokens(&self, uses: Vec<(TokenId, i64)>) -> Result<(), StoreError> {
        self.block(move |b| Box::pin(async move {
            let sql = "UPDATE scopekey_tokens SET last_used = $1 WHERE jti = $2 AND (last_used IS NULL OR last_used < $1)";
            on!(&b, pool => {
                let mut tx = pool.begin().await.map_err(StoreError::query)?;
                for (jti, t) in uses {
                    sqlx::query(sql).bind(t).bind(jti.as_str().to_owned())
                        .execute(&mut *tx).await.map_err(StoreError::query)?;
                }
                tx.commit().await.map_err(StoreError::query)?;
            });
            Ok(())
        }))
    }

    /// The inventory records matching `query`, in issue order.
    ///
    /// # Errors
    /// A query error, or [`StoreErrorKind::Corrupt`] for a row that does not parse.
    pub fn tokens(&self, query: &InventoryQuery) -> Result<Vec<TokenRecord>, StoreError> {
        let query = query.clone();
        let ts = |t: Option<OffsetDateTime>| t.map(OffsetDateTime::unix_timestamp);
        let subject = query.subject_filter().map(str::to_owned);
        let owner = query.owner_filter().map(str::to_owned);
        let (live_at, expiring_before, unused_since) = (
            ts(query.live_at_filter()),
            ts(query.expiring_before_filter()),
            ts(query.unused_since_filter()),
        );
        self.block(move |b| Box::pin(async move {
            // The conditions run in the database; `matches` below re-checks every row, so the
            // result is exactly the in-memory inventory's.
            let sql = "SELECT jti, token_type, subject, owner, purpose, scopes, issued_at, expires_at, kid, family, last_used \
                       FROM scopekey_tokens \
                       WHERE ($1 IS NULL OR subject = $1) \
                         AND ($2 IS NULL OR owner = $2) \
                         AND ($3 IS NULL OR expires_at > $3) \
                         AND ($4 IS NULL OR expires_at < $4) \
                         AND ($5 IS NULL OR COALESCE(last_used, issued_at) < $5) \
                       ORDER BY issued_at, jti";
            let records = on!(&b, pool => {
                let rows = sqlx::query(sql)
                    .bind(subject).bind(owner).bind(live_at).bind(expiring_before).bind(unused_since)
                    .fetch_all(pool).await.map_err(StoreError::query)?;
                rows.iter().map(rows::token_record).collect::<Result<Vec<_>, _>>()?
            });
            Ok(records.into_iter().filter(|r| query.matches(r)).collect())
        }))
    }

    /// One token's record.
    ///
    /// # Errors
    /// As [`Store::tokens`].
    pub fn token(&self, jti: &TokenId) -> Result<Option<TokenRecord>, StoreError> {
        let jti = jti.as_str().to_owned();
        self.block(move |b| Box::pin(async move {
            let sql = "SELECT jti, token_type, subject, owner, purpose, scopes, issued_at, expires_at, kid, family, last_used \
                       FROM scopekey_tokens WHERE jti = $1";
            on!(&b, pool => {
                let row = sqlx::query(sql).bind(jti).fetch_optional(pool).await.map_err(StoreError::query)?;
                row.as_ref().map(rows::token_record).transpose()
            })
        }))
    }

    // ---- refresh families ----------------------------------------------------------------------

    /// Starts a refresh family at `started_at`.
    ///
    /// # Errors
    /// A query error (including a family id already in use).
    pub fn begin_family(
        &self,
        family: &FamilyId,
        first: &TokenId,
        started_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (fam, jti, start, exp) = (
            family.as_str().to_owned(),
            first.as_str().to_owned(),
            started_at.unix_timestamp(),
            expires_at.unix_timestamp(),
        );
        self.block(move |b| Box::pin(async move {
            let sql = "INSERT INTO scopekey_refresh_families (family, current_jti, started_at, expires_at, dead) VALUES ($1, $2, $3, $4, 0)";
            on!(&b, pool => { sqlx::query(sql).bind(fam).bind(jti).bind(start).bind(exp).execute(pool).await.map_err(StoreError::query)?; });
            Ok(())
        }))
    }

    /// Presents a refresh token to its family, in one transaction (see
    /// [`RefreshFamilies::rotate`](scopekey::refresh::RefreshFamilies::rotate)): at most one
    /// caller moves the family on; the current member of a family that began before
    /// [`Presentation::began_after`] is [`Rotation::Ended`]; any other presentation is reuse,
    /// which kills the family **and** records [`Presentation::on_reuse`] with its `revoked`
    /// event in the same transaction ([`Rotation::ReusedAndRevoked`]).
    ///
    /// # Errors
    /// A query error; then nothing changed.
    pub fn rotate_family(&self, p: &Presentation<'_>) -> Result<Rotation, StoreError> {
        let fam = p.family().as_str().to_owned();
        let presented = p.presented().as_str().to_owned();
        let next = p.next().as_str().to_owned();
        let (exp, began_after) = (
            p.expires_at().unix_timestamp(),
            p.began_after().unix_timestamp(),
        );
        let revocation = RevocationInsert::of(p.on_reuse());
        self.block(move |b| Box::pin(async move {
            let outcome = on!(&b, pool => {
                let mut tx = pool.begin().await.map_err(StoreError::query)?;
                let moved = sqlx::query(
                    "UPDATE scopekey_refresh_families SET current_jti = $1, expires_at = $2 \
                     WHERE family = $3 AND current_jti = $4 AND dead = 0 AND started_at >= $5")
                    .bind(next).bind(exp).bind(fam.clone()).bind(presented.clone()).bind(began_after)
                    .execute(&mut *tx).await.map_err(StoreError::query)?.rows_affected();
                let outcome = if moved == 1 {
                    sqlx::query("INSERT INTO scopekey_refresh_used (family, jti) VALUES ($1, $2)")
                        .bind(fam).bind(presented)
                        .execute(&mut *tx).await.map_err(StoreError::query)?;
                    Rotation::Rotated
                } else {
                    let row = sqlx::query("SELECT current_jti, dead FROM scopekey_refresh_families WHERE family = $1")
                        .bind(fam.clone()).fetch_optional(&mut *tx).await.map_err(StoreError::query)?;
                    match row {
                        None => Rotation::UnknownFamily,
                        Some(row) => {
                            let current: String = row.try_get("current_jti").map_err(StoreError::query)?;
                            let dead: i32 = row.try_get("dead").map_err(StoreError::query)?;
                            if dead != 0 {
                                // Killed before (its revocation went with it): nothing to add.
                                Rotation::Reused
                            } else if current == presented {
                                // The current member, refused only for the family's age (or
                                // for a start this version did not record).
                                Rotation::Ended
                            } else {
                                sqlx::query("UPDATE scopekey_refresh_families SET dead = 1 WHERE family = $1")
                                    .bind(fam).execute(&mut *tx).await.map_err(StoreError::query)?;
                                insert_revocation!(tx, revocation);
                                Rotation::ReusedAndRevoked
                            }
                        }
                    }
                };
                tx.commit().await.map_err(StoreError::query)?;
                outcome
            });
            if outcome == Rotation::ReusedAndRevoked {
                // Committed: a lost notification only delays other replicas until their next
                // sync, so it must not report the revocation as failed.
                let _ = notify(&b, "revocation").await;
            }
            Ok(outcome)
        }))
    }

    // ---- consumers and roles -----------------------------------------------------------------

    /// Registers a consumer.
    ///
    /// # Errors
    /// A query error (including a name already registered).
    pub fn add_consumer(&self, c: &Consumer) -> Result<(), StoreError> {
        let c = c.clone();
        self.block(move |b| Box::pin(async move {
            let sql = "INSERT INTO scopekey_consumers (name, owner, purpose, environment, ceiling, created_at, disabled_at) \
                       VALUES ($1, $2, $3, $4, $5, $6, $7)";
            on!(&b, pool => {
                sqlx::query(sql)
                    .bind(c.name().to_owned()).bind(c.owner().to_owned()).bind(c.purpose().to_owned())
                    .bind(c.environment().as_str().to_owned()).bind(c.ceiling().to_string())
                    .bind(c.created_at().unix_timestamp())
                    .bind(c.disabled_at().map(OffsetDateTime::unix_timestamp))
                    .execute(pool).await.map_err(StoreError::query)?;
            });
            Ok(())
        }))
    }

    /// Every registered consumer, by name.
    ///
    /// # Errors
    /// A query error, or [`StoreErrorKind::Corrupt`] for a row that does not parse.
    pub fn consumers(&self) -> Result<Vec<Consumer>, StoreError> {
        self.block(|b| Box::pin(async move {
            let sql = "SELECT name, owner, purpose, environment, ceiling, created_at, disabled_at FROM scopekey_consumers ORDER BY name";
            on!(&b, pool => {
                let rows = sqlx::query(sql).fetch_all(pool).await.map_err(StoreError::query)?;
                rows.iter().map(rows::consumer).collect()
            })
        }))
    }

    /// One consumer.
    ///
    /// # Errors
    /// As [`Store::consumers`].
    pub fn consumer(&self, name: &str) -> Result<Option<Consumer>, StoreError> {
        Ok(self.consumers()?.into_iter().find(|c| c.name() == name))
    }

    /// Disables a consumer and, in the same transaction, revokes every token issued to it so
    /// far. Returns the revocation, or `None` if no such consumer exists.
    ///
    /// # Errors
    /// [`StoreErrorKind::InvalidInput`] for an invalid `by` or `reason`, otherwise a query error.
    pub fn disable_consumer(
        &self,
        name: &str,
        by: &str,
        reason: &str,
    ) -> Result<Option<Arc<Revocation>>, StoreError> {
        let now = now_seconds();
        let target = RevocationTarget::Subject {
            subject: name.to_owned(),
            issued_before: Some(at(now + 1)?),
        };
        let record = Revocation::new(target, by, at(now)?, reason)
            .map_err(|e| StoreError::new(StoreErrorKind::InvalidInput, e.to_string()))?;
        let insert = RevocationInsert::of(&record);
        let name = name.to_owned();
        let found = self.block(move |b| Box::pin(async move {
            let found = on!(&b, pool => {
                let mut tx = pool.begin().await.map_err(StoreError::query)?;
                let n = sqlx::query("UPDATE scopekey_consumers SET disabled_at = $1 WHERE name = $2")
                    .bind(now).bind(name).execute(&mut *tx).await.map_err(StoreError::query)?.rows_affected();
                if n == 1 {
                    insert_revocation!(tx, insert);
                }
                tx.commit().await.map_err(StoreError::query)?;
                n == 1
            });
            // Committed: a lost notification only delays other replicas until their next
            // sync (every heartbeat), so it must not report the revocation as failed.
            let _ = notify(&b, "revocation").await;
            Ok(found)
        }))?;
        Ok(found.then(|| Arc::new(record)))
    }

    /// Stores role definitions, replacing roles of the same name.
    ///
    /// # Errors
    /// A query error.
    pub fn put_roles(&self, roles: &Roles) -> Result<(), StoreError> {
        let list: Vec<(String, String)> = roles
            .iter()
            .map(|(n, s)| (n.to_owned(), s.to_string()))
            .collect();
        self.block(move |b| Box::pin(async move {
            let sql = "INSERT INTO scopekey_roles (name, scopes) VALUES ($1, $2) \
                       ON CONFLICT (name) DO UPDATE SET scopes = excluded.scopes";
            on!(&b, pool => {
                let mut tx = pool.begin().await.map_err(StoreError::query)?;
                for (name, scopes) in list {
                    sqlx::query(sql).bind(name).bind(scopes).execute(&mut *tx).await.map_err(StoreError::query)?;
                }
                tx.commit().await.map_err(StoreError::query)?;
            });
            Ok(())
        }))
    }

    /// The stored role definitions.
    ///
    /// # Errors
    /// A query error, or [`StoreErrorKind::Corrupt`] for a row that does not parse.
    pub fn roles(&self) -> Result<Roles, StoreError> {
        self.block(|b| Box::pin(async move {
            on!(&b, pool => {
                let rows = sqlx::query("SELECT name, scopes FROM scopekey_roles ORDER BY name")
                    .fetch_all(pool).await.map_err(StoreError::query)?;
                let mut roles = Roles::new();
                for row in &rows {
                    let name: String = row.try_get("name").map_err(StoreError::query)?;
                    let scopes: String = row.try_get("scopes").map_err(StoreError::query)?;
                    let set = scopes.parse().map_err(|e| StoreError::corrupt("scopekey_roles", &name, e))?;
                    roles.insert(&name, set).map_err(|e| StoreError::corrupt("scopekey_roles", &name, e))?;
                }
                Ok(roles)
            })
        }))
    }

    // ---- audit ---------------------------------------------------------------------------------

    /// Appends audit events.
    ///
    /// # Errors
    /// A query error.
    pub fn append_audit(&self, events: Vec<AuditEvent>) -> Result<(), StoreError> {
        self.block(move |b| Box::pin(async move { append_audit(&b, events).await }))
    }

    /// One page of the audit trail matching `query`, oldest first: each event's row id (for
    /// [`AuditQuery::after`]) and its JSON line. The filters run in the database.
    ///
    /// # Errors
    /// A query error.
    pub fn audit_events(&self, query: &AuditQuery) -> Result<Vec<(i64, String)>, StoreError> {
        let (clause, params) = query.where_clause();
        let sql = format!("SELECT id, body FROM scopekey_audit{clause}");
        let (after, limit) = (query.after, query.limit);
        self.block(move |b| {
            Box::pin(async move {
                on!(&b, pool => {
                    let mut q = sqlx::query(&sql).bind(after);
                    for p in params {
                        q = q.bind(p);
                    }
                    let rows = q.bind(limit).fetch_all(pool).await.map_err(StoreError::query)?;
                    rows.iter()
                        .map(|r| Ok((
                            r.try_get::<i64, _>("id").map_err(StoreError::query)?,
                            r.try_get::<String, _>("body").map_err(StoreError::query)?,
                        )))
                        .collect()
                })
            })
        })
    }

    /// The audit trail as JSON lines, oldest first, at most `limit` events from `offset`.
    ///
    /// # Errors
    /// A query error.
    pub fn audit_log(&self, offset: i64, limit: i64) -> Result<Vec<String>, StoreError> {
        self.block(move |b| Box::pin(async move {
            on!(&b, pool => {
                let rows = sqlx::query("SELECT body FROM scopekey_audit ORDER BY id LIMIT $1 OFFSET $2")
                    .bind(limit).bind(offset).fetch_all(pool).await.map_err(StoreError::query)?;
                rows.iter().map(|r| r.try_get::<String, _>("body").map_err(StoreError::query)).collect()
            })
        }))
    }
}

pub(crate) fn append_audit(b: &Backend, events: Vec<AuditEvent>) -> DbFuture<()> {
    let b = b.clone();
    Box::pin(async move { append_audit_inner(&b, events).await })
}

/// An audit event as the columns of its row: time, event, jti, subject, body.
fn audit_row(e: AuditEvent) -> [Option<String>; 5] {
    let body = e.to_json();
    [
        Some(e.time),
        Some(e.kind.name().to_owned()),
        e.jti.map(|j| j.as_str().to_owned()),
        e.sub,
        Some(body),
    ]
}

async fn append_audit_inner(b: &Backend, events: Vec<AuditEvent>) -> Result<(), StoreError> {
    // Multi-row inserts in one transaction: 5 parameters a row, 500 rows a statement (2,500
    // parameters, under both SQLite's and PostgreSQL's limits).
    const ROWS: usize = 500;
    let rows: Vec<[Option<String>; 5]> = events.into_iter().map(audit_row).collect();
    on!(b, pool => {
        let mut tx = pool.begin().await.map_err(StoreError::query)?;
        for chunk in rows.chunks(ROWS) {
            let mut sql = String::from("INSERT INTO scopekey_audit (time, event, jti, subject, body) VALUES ");
            for i in 0..chunk.len() {
                let n = i * 5;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("(${}, ${}, ${}, ${}, ${})", n + 1, n + 2, n + 3, n + 4, n + 5));
            }
            let mut query = sqlx::query(&sql);
            for row in chunk {
                for value in row {
                    query = query.bind(value.clone());
                }
            }
            query.execute(&mut *tx).await.map_err(StoreError::query)?;
        }
        tx.commit().await.map_err(StoreError::query)?;
    });
    Ok(())
}

pub(crate) async fn load_revocations(
    b: &Backend,
    after: i64,
) -> Result<Vec<(i64, Revocation)>, StoreError> {
    let sql = "SELECT id, kind, value, instant, revoked_by, revoked_at, reason \
               FROM scopekey_revocations WHERE id > $1 ORDER BY id";
    on!(b, pool => {
        let rows = sqlx::query(sql).bind(after).fetch_all(pool).await.map_err(StoreError::query)?;
        rows.iter().map(rows::revocation).collect()
    })
}

pub(crate) async fn load_keys(b: &Backend) -> Result<KeySet, StoreError> {
    let sql = "SELECT kid, public_key, not_before, retire_at FROM scopekey_keys ORDER BY kid";
    on!(b, pool => {
        let rows = sqlx::query(sql).fetch_all(pool).await.map_err(StoreError::query)?;
        let mut set = KeySet::new();
        for row in &rows {
            let (key, nb, ra) = rows::key(row)?;
            set.insert_with_window(key, nb, ra);
        }
        Ok(set)
    })
}

/// Tells PostgreSQL replicas something changed (SQLite replicas poll).
async fn notify(b: &Backend, what: &str) -> Result<(), StoreError> {
    if let Backend::Postgres(pool) = b {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(what)
            .execute(pool)
            .await
            .map_err(StoreError::query)?;
    }
    Ok(())
}

async fn connect(url: &str, shown: &RedactedUrl) -> Result<Backend, StoreError> {
    let connect_err = |e: sqlx::Error| {
        let text = e.to_string();
        let hint = if matches!(e, sqlx::Error::Tls(_)) || text.contains("certificate") {
            " (check that `sslrootcert` is the CA that signed the server's certificate and, \
             for verify-full, that the URL's host is a name or address the certificate carries)"
        } else {
            ""
        };
        StoreError::new(
            StoreErrorKind::Connect,
            format!(
                "cannot connect to {}: {}{hint}",
                shown.as_str(),
                shown.scrub(&text)
            ),
        )
        .with_source(e)
    };
    if url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(connect_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(connect_err)?;
        Ok(Backend::Sqlite(pool))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let parsed = url::Url::parse(url).ok();
        if let Some(name) = parsed.as_ref().and_then(redact::ignored_secret_param) {
            return Err(StoreError::new(
                StoreErrorKind::UnsupportedUrl,
                format!(
                    "the store URL parameter `{name}` is not supported (the PostgreSQL driver \
                     would ignore it): remove it from {}; a client key (`sslkey`) must be \
                     unencrypted and readable only by this service",
                    shown.as_str()
                ),
            ));
        }
        let mut options = PgConnectOptions::from_str(url)
            .map_err(connect_err)?
            .application_name("scopekey");
        // libpq: "if a root CA file exists, sslmode=require behaves like verify-ca". sqlx
        // alone would accept any certificate; follow libpq, which fails closed.
        if matches!(options.get_ssl_mode(), PgSslMode::Require)
            && (parsed.as_ref().is_some_and(redact::has_root_cert)
                || std::env::var_os("PGSSLROOTCERT").is_some_and(|v| !v.is_empty()))
        {
            options = options.ssl_mode(PgSslMode::VerifyCa);
        }
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(connect_err)?;
        Ok(Backend::Postgres(pool))
    } else {
        Err(StoreError::new(
            StoreErrorKind::UnsupportedUrl,
            format!(
                "unsupported store URL {}: use sqlite://PATH or postgres://USER@HOST/DB",
                shown.as_str()
            ),
        ))
    }
}

fn migrate(b: &Backend) -> DbFuture<()> {
    let b = b.clone();
    Box::pin(async move { migrate_inner(&b).await })
}

async fn migrate_inner(b: &Backend) -> Result<(), StoreError> {
    let fail = |e: sqlx::Error| {
        StoreError::new(StoreErrorKind::Migration, format!("migration failed: {e}")).with_source(e)
    };
    let (migrations, lock): (&'static [(i64, &'static str)], Option<&'static str>) = match b {
        Backend::Sqlite(_) => (MIGRATIONS_SQLITE, None),
        // One migrator at a time across instances.
        Backend::Postgres(_) => (
            MIGRATIONS_POSTGRES,
            Some("SELECT pg_advisory_xact_lock(7236815)"),
        ),
    };
    // Every statement of every migration, owned, in order; `;` ends a statement (the shipped
    // migrations hold no `;` inside literals).
    let plan: Vec<(i64, Vec<String>)> = migrations
        .iter()
        .map(|(v, sql)| {
            let statements = sql
                .split(';')
                .map(str::trim)
                .filter(|st| !st.is_empty())
                .map(str::to_owned)
                .collect();
            (*v, statements)
        })
        .collect();
    on!(b, pool => {
        let mut tx = pool.begin().await.map_err(fail)?;
        if let Some(lock) = lock {
            sqlx::query(lock).execute(&mut *tx).await.map_err(fail)?;
        }
        sqlx::query("CREATE TABLE IF NOT EXISTS scopekey_schema_version (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
            .execute(&mut *tx).await.map_err(fail)?;
        let row = sqlx::query("SELECT MAX(version) AS v FROM scopekey_schema_version")
            .fetch_one(&mut *tx).await.map_err(fail)?;
        let current: Option<i64> = row.try_get("v").map_err(fail)?;
        let current = current.unwrap_or(0);
        for (version, statements) in plan {
            if version <= current {
                continue;
            }
            for statement in statements {
                sqlx::query(&statement).execute(&mut *tx).await.map_err(fail)?;
            }
            sqlx::query("INSERT INTO scopekey_schema_version (version, applied_at) VALUES ($1, $2)")
                .bind(version).bind(now_seconds())
                .execute(&mut *tx).await.map_err(fail)?;
        }
        tx.commit().await.map_err(fail)?;
    });
    Ok(())
}

/// Spawns `fut` on `rt` and waits on a plain channel: safe from any thread, including from
/// inside another runtime (where it blocks that thread for the duration).
pub(crate) fn run_on<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    fut: impl Future<Output = T> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .map_err(|_| StoreError::new(StoreErrorKind::Runtime, "the store runtime stopped"))
}

pub(crate) fn now_seconds() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

pub(crate) fn at(t: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp(t)
        .map_err(|_| StoreError::new(StoreErrorKind::Corrupt, format!("time {t} out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_urls_are_refused() {
        let e = Store::open("mysql://u:secret@h/db").unwrap_err();
        assert_eq!(e.kind(), StoreErrorKind::UnsupportedUrl);
        assert!(!e.to_string().contains("secret"));
    }
}
