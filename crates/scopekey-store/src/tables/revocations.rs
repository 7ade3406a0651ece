//! `scopekey_revocations` and the counter that numbers them: the one place a revocation is
//! written ([`insert_revocation!`], with its `revoked` audit row, and [`notify_revoked`] after
//! the commit), read back ([`load_revocations`], and counted for the replica's consistency
//! check, [`count_revocations_and_sweeps`]), swept once no token they name can verify
//! ([`sweep_revocations`]) and mapped to and from its row.
//!
//! May import: the crate root, `db`, `store` and the `audit` table; `families` and
//! `consumers` revoke through here.

use super::Cells;
use super::audit::audit_row;
use crate::db::{Backend, at, notify, now_seconds, on};
use crate::{Store, StoreError, StoreErrorKind};
use scopekey::audit::AuditEvent;
use scopekey::revocation::{Revocation, RevocationTarget};
use std::sync::Arc;
use time::OffsetDateTime;

/// Inserts one revocation (a [`RevocationInsert`]) and its `revoked` audit row in the
/// transaction `$tx`, numbered by the revocation counter; evaluates to its number. Every
/// revocation the store writes goes through here; after the commit, call [`notify_revoked`].
///
/// The counter's row is updated in `$tx`, so concurrent writers wait for each other: numbers
/// are gap-free and become visible in order, which lets a replica tell a missed revocation
/// from one not yet written (see `replica.rs`).
macro_rules! insert_revocation {
    ($tx:expr, $insert:expr) => {{
        let $crate::tables::revocations::RevocationInsert { kind, value, instant, by, at, reason, audit } = $insert;
        let row = sqlx::query("UPDATE scopekey_counters SET value = value + 1 WHERE name = 'revocations' RETURNING value")
            .fetch_one(&mut *$tx).await.map_err($crate::StoreError::query)?;
        let id: i64 = ::sqlx::Row::try_get(&row, "value").map_err($crate::StoreError::query)?;
        sqlx::query("INSERT INTO scopekey_revocations (id, kind, value, instant, revoked_by, revoked_at, reason) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(id).bind(kind).bind(value).bind(instant).bind(by).bind(at).bind(reason)
            .execute(&mut *$tx).await.map_err($crate::StoreError::query)?;
        // The `revoked` event commits with the revocation, or neither does.
        $crate::tables::audit::insert_audit_row!($tx, audit);
        id
    }};
}
pub(crate) use insert_revocation;

/// A revocation's columns and its `revoked` audit row, owned, ready for [`insert_revocation!`].
pub(crate) struct RevocationInsert {
    pub(super) kind: &'static str,
    pub(super) value: Option<String>,
    pub(super) instant: Option<i64>,
    pub(super) by: String,
    pub(super) at: i64,
    pub(super) reason: String,
    pub(super) audit: [Option<String>; 5],
}

impl RevocationInsert {
    pub(crate) fn of(record: &Revocation) -> Self {
        let (kind, value, instant) = revocation_columns(record.target());
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

/// A revocation of `target` made now (`now`, in Unix seconds), refusing an invalid `by`,
/// `reason` or subject as [`StoreErrorKind::InvalidInput`].
pub(super) fn record_now(
    target: RevocationTarget,
    by: &str,
    now: i64,
    reason: &str,
) -> Result<Revocation, StoreError> {
    Revocation::new(target, by, at(now)?, reason)
        .map_err(|e| StoreError::new(StoreErrorKind::InvalidInput, e.to_string()))
}

/// Tells other replicas about a revocation that has been committed.
pub(super) async fn notify_revoked(b: &Backend) {
    // Committed: a lost notification only delays other replicas until their next sync (every
    // heartbeat), so it must not report the revocation as failed.
    let _ = notify(b, "revocation").await;
}

impl Store {
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
        let record = record_now(target, by, now_seconds(), reason)?;
        let insert = RevocationInsert::of(&record);
        let id = self.block(move |b| {
            Box::pin(async move {
                let id: i64 = on!(&b, pool => {
                    let mut tx = pool.begin().await.map_err(StoreError::query)?;
                    let id = insert_revocation!(tx, insert);
                    tx.commit().await.map_err(StoreError::query)?;
                    id
                });
                notify_revoked(&b).await;
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
}

/// Every revocation with a row id above `after`, in id order.
pub(crate) async fn load_revocations(
    b: &Backend,
    after: i64,
) -> Result<Vec<(i64, Revocation)>, StoreError> {
    let mut all = Vec::new();
    let mut from = after;
    loop {
        let page = load_revocation_page(b, from, REVOCATION_PAGE).await?;
        let full = i64::try_from(page.len()).unwrap_or(i64::MAX) >= REVOCATION_PAGE;
        from = page.last().map_or(from, |(id, _)| *id);
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}

/// Rows a page of [`load_revocation_page`] holds in a full load: the memory a load needs
/// besides the list it fills is one page, not the whole table.
pub(crate) const REVOCATION_PAGE: i64 = 10_000;

/// At most `limit` revocations with a row id above `after`, in id order.
pub(crate) async fn load_revocation_page(
    b: &Backend,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, Revocation)>, StoreError> {
    let sql = "SELECT id, kind, value, instant, revoked_by, revoked_at, reason \
               FROM scopekey_revocations WHERE id > $1 ORDER BY id LIMIT $2";
    on!(b, pool => {
        let rows = sqlx::query(sql).bind(after).bind(limit).fetch_all(pool).await.map_err(StoreError::query)?;
        rows.iter().map(revocation).collect()
    })
}

/// `(kind, value, instant)` of a revocation target.
fn revocation_columns(t: &RevocationTarget) -> (&'static str, Option<String>, Option<i64>) {
    let ts = |t: &OffsetDateTime| t.unix_timestamp();
    match t {
        RevocationTarget::Token {
            token_id,
            expires_at,
        } => (
            "token",
            Some(token_id.as_str().into()),
            expires_at.as_ref().map(ts),
        ),
        RevocationTarget::Family(f) => ("family", Some(f.as_str().into()), None),
        RevocationTarget::Subject {
            subject,
            issued_before,
        } => (
            "subject",
            Some(subject.clone()),
            issued_before.as_ref().map(ts),
        ),
        RevocationTarget::IssuedBefore(t) => ("issued_before", None, Some(ts(t))),
        RevocationTarget::Key(k) => ("key", Some(k.as_str().into()), None),
        // RevocationTarget is non-exhaustive; a future kind cannot be stored by this version.
        _ => ("unknown", None, None),
    }
}

/// A revocation row as its number and record.
fn revocation(row: &impl Cells) -> Result<(i64, Revocation), StoreError> {
    const T: &str = "scopekey_revocations";
    let id: i64 = row.int(T, "?", "id")?;
    let key = id.to_string();
    let kind: String = row.text(T, &key, "kind")?;
    let value: Option<String> = row.text_or_null(T, &key, "value")?;
    let instant: Option<i64> = row.int_or_null(T, &key, "instant")?;
    let by: String = row.text(T, &key, "revoked_by")?;
    let revoked_at: i64 = row.int(T, &key, "revoked_at")?;
    let reason: String = row.text(T, &key, "reason")?;
    let bad = |why: &str| StoreError::corrupt(T, &key, why);
    let value_of = |what: &str| {
        value
            .clone()
            .ok_or_else(|| bad(&format!("{what} revocation without a value")))
    };
    let instant_at = |i: i64| at(i).map_err(|_| bad("instant out of range"));
    let target = match kind.as_str() {
        "token" => RevocationTarget::Token {
            token_id: value_of("token")?
                .parse()
                .map_err(|e| bad(&format!("{e}")))?,
            expires_at: instant.map(instant_at).transpose()?,
        },
        "family" => RevocationTarget::Family(
            value_of("family")?
                .parse()
                .map_err(|e| bad(&format!("{e}")))?,
        ),
        "subject" => RevocationTarget::Subject {
            subject: value_of("subject")?,
            issued_before: instant.map(instant_at).transpose()?,
        },
        "issued_before" => RevocationTarget::IssuedBefore(instant_at(
            instant.ok_or_else(|| bad("issued_before revocation without an instant"))?,
        )?),
        "key" => RevocationTarget::Key(value_of("key")?.parse().map_err(|e| bad(&format!("{e}")))?),
        other => {
            return Err(bad(&format!(
                "unknown revocation kind {:?}",
                other.chars().take(32).collect::<String>()
            )));
        }
    };
    let record = Revocation::new(target, &by, instant_at(revoked_at)?, &reason)
        .map_err(|e| bad(&e.to_string()))?;
    Ok((id, record))
}

/// The revocation counter and the sweep counters, as one statement reads them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RevocationCounters {
    /// The highest number given to a revocation (every row numbered up to it is committed).
    pub(crate) assigned: i64,
    /// How many revocation rows sweeps have deleted, ever.
    pub(crate) swept: i64,
    /// The highest number a sweep has deleted.
    pub(crate) swept_through: i64,
}

/// The [`RevocationCounters`] as the columns `assigned`, `swept` and `through` of a `SELECT`
/// (read back by [`counters_of`]).
macro_rules! counter_columns {
    () => {
        "COALESCE((SELECT value FROM scopekey_counters WHERE name = 'revocations'), 0) AS assigned, \
         COALESCE((SELECT value FROM scopekey_counters WHERE name = 'revocations_swept'), 0) AS swept, \
         COALESCE((SELECT value FROM scopekey_counters WHERE name = 'revocations_swept_through'), 0) AS through"
    };
}

/// The [`RevocationCounters`] of a row selected with [`counter_columns!`].
fn counters_of(row: &impl Cells) -> Result<RevocationCounters, StoreError> {
    const T: &str = "scopekey_counters";
    Ok(RevocationCounters {
        assigned: row.int(T, "revocations", "assigned")?,
        swept: row.int(T, "revocations_swept", "swept")?,
        swept_through: row.int(T, "revocations_swept_through", "through")?,
    })
}

/// Reads the [`RevocationCounters`] in one statement (one snapshot).
pub(crate) async fn revocation_counters(b: &Backend) -> Result<RevocationCounters, StoreError> {
    let sql = concat!("SELECT ", counter_columns!());
    on!(b, pool => {
        let row = sqlx::query(sql).fetch_one(pool).await.map_err(StoreError::query)?;
        counters_of(&row)
    })
}

/// How many revocation rows are numbered `through` or below, with the sweep counters, in one
/// statement, the cheap way: the row count the triggers of migration 10 keep, less the rows
/// numbered above `through` (only those since the replica's last read). `None` for the count
/// when the store has no such counter.
pub(crate) async fn count_revocations_and_sweeps(
    b: &Backend,
    through: i64,
) -> Result<(Option<i64>, RevocationCounters), StoreError> {
    let sql = concat!(
        "SELECT COALESCE((SELECT value FROM scopekey_counters WHERE name = 'revocation_rows'), -1) AS total, \
         (SELECT COUNT(*) FROM scopekey_revocations WHERE id > $1) AS above, ",
        counter_columns!()
    );
    on!(b, pool => {
        let row = sqlx::query(sql).bind(through).fetch_one(pool).await.map_err(StoreError::query)?;
        let total = row.int("scopekey_counters", "revocation_rows", "total")?;
        let above = row.int("scopekey_revocations", "count", "above")?;
        Ok(((total >= 0).then(|| total.saturating_sub(above)), counters_of(&row)?))
    })
}

/// The exact form of [`count_revocations_and_sweeps`]: `COUNT(*)` of the rows numbered
/// `through` or below (every one of them), for when the cheap count disagrees.
pub(crate) async fn count_revocations_through(
    b: &Backend,
    through: i64,
) -> Result<(i64, RevocationCounters), StoreError> {
    let sql = concat!(
        "SELECT (SELECT COUNT(*) FROM scopekey_revocations WHERE id <= $1) AS n, ",
        counter_columns!()
    );
    on!(b, pool => {
        let row = sqlx::query(sql).bind(through).fetch_one(pool).await.map_err(StoreError::query)?;
        Ok((row.int("scopekey_revocations", "count", "n")?, counters_of(&row)?))
    })
}

/// Deletes at most `limit` single-token revocations whose token expired before
/// `expired_before` and which were made before `revoked_before` (earliest expiry first, along
/// the sweep index), and counts them in the sweep counters in the same transaction. Returns
/// how many it deleted.
///
/// Only single-token revocations with a known expiry go: family, consumer, key and mass
/// revocations have no end a sweep could know, and are few.
pub(crate) async fn sweep_revocations(
    b: &Backend,
    expired_before: i64,
    revoked_before: i64,
    limit: i64,
) -> Result<u64, StoreError> {
    let delete = "DELETE FROM scopekey_revocations WHERE id IN (\
                    SELECT id FROM scopekey_revocations \
                    WHERE kind = 'token' AND instant IS NOT NULL AND instant < $1 AND revoked_at < $2 \
                    ORDER BY kind, instant LIMIT $3) \
                  RETURNING id";
    on!(b, pool => {
        let mut tx = pool.begin().await.map_err(StoreError::query)?;
        let ids: Vec<i64> = sqlx::query_scalar(delete)
            .bind(expired_before).bind(revoked_before).bind(limit)
            .fetch_all(&mut *tx).await.map_err(StoreError::query)?;
        let n = i64::try_from(ids.len()).unwrap_or(i64::MAX);
        if let Some(top) = ids.iter().copied().max() {
            sqlx::query("UPDATE scopekey_counters SET value = value + $1 WHERE name = 'revocations_swept'")
                .bind(n).execute(&mut *tx).await.map_err(StoreError::query)?;
            sqlx::query("UPDATE scopekey_counters SET value = $1 WHERE name = 'revocations_swept_through' AND value < $1")
                .bind(top).execute(&mut *tx).await.map_err(StoreError::query)?;
        }
        tx.commit().await.map_err(StoreError::query)?;
        Ok(u64::try_from(n).unwrap_or(0))
    })
}
