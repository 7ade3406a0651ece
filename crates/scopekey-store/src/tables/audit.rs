//! `scopekey_audit`: appending events (one at a time inside another table's transaction, or
//! in batches) and reading the trail back.
//!
//! May import: the crate root, `db`, `store` and `audit_query`; no other table.

use crate::audit_query::AuditQuery;
use crate::db::{Backend, DbFuture, on};
use crate::{Store, StoreError};
use scopekey::audit::AuditEvent;
use sqlx::Row as _;

/// Inserts one audit row (from [`audit_row`]) in the transaction `$tx`.
macro_rules! insert_audit_row {
    ($tx:expr, $row:expr) => {{
        let [time, event, jti, sub, body] = $row;
        sqlx::query("INSERT INTO scopekey_audit (time, event, jti, subject, body) VALUES ($1, $2, $3, $4, $5)")
            .bind(time).bind(event).bind(jti).bind(sub).bind(body)
            .execute(&mut *$tx).await.map_err($crate::StoreError::query)?;
    }};
}
pub(crate) use insert_audit_row;

impl Store {
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
pub(crate) fn audit_row(e: AuditEvent) -> [Option<String>; 5] {
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

/// At most `limit` audit rows whose time is before `cutoff` (RFC 3339, UTC, as the rows hold
/// it), oldest first (along the `(time, id)` index): id and JSON line.
pub(crate) async fn audit_before(
    b: &Backend,
    cutoff: String,
    limit: i64,
) -> Result<Vec<(i64, String)>, StoreError> {
    let sql = "SELECT id, body FROM scopekey_audit WHERE time < $1 ORDER BY time, id LIMIT $2";
    on!(b, pool => {
        let rows = sqlx::query(sql).bind(cutoff.clone()).bind(limit)
            .fetch_all(pool).await.map_err(StoreError::query)?;
        rows.iter()
            .map(|r| Ok((
                r.try_get::<i64, _>("id").map_err(StoreError::query)?,
                r.try_get::<String, _>("body").map_err(StoreError::query)?,
            )))
            .collect()
    })
}

/// Deletes the audit rows numbered `ids` (at most a few thousand: one parameter each).
/// Returns how many it deleted.
pub(crate) async fn delete_audit(b: &Backend, ids: &[i64]) -> Result<u64, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let mut sql = String::from("DELETE FROM scopekey_audit WHERE id IN (");
    for i in 1..=ids.len() {
        if i > 1 {
            sql.push(',');
        }
        sql.push_str(&format!("${i}"));
    }
    sql.push(')');
    on!(b, pool => {
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(*id);
        }
        Ok(q.execute(pool).await.map_err(StoreError::query)?.rows_affected())
    })
}
