//! `scopekey_tokens`: the inventory of issued tokens (records, last uses, queries) and its
//! row mapping.
//!
//! May import: the crate root, `db` and `store`; no other table.

use super::Cells;
use crate::db::{at, on};
use crate::{Store, StoreError};
use scopekey::TokenId;
use scopekey::TokenType;
use scopekey::inventory::{InventoryQuery, TokenRecord, TokenRecordParts};
use sqlx::Row as _;
use time::OffsetDateTime;

impl Store {
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
    /// Only the query's filters become conditions, so that the database can use its indexes
    /// (`subject`, `expires_at`, and `COALESCE(last_used, issued_at)` for
    /// [`unused_since`](InventoryQuery::unused_since)); [`Store::tokens_plan`] shows the plan.
    ///
    /// # Errors
    /// A query error, or [`StoreErrorKind::Corrupt`](crate::StoreErrorKind::Corrupt) for a row that does not parse.
    pub fn tokens(&self, query: &InventoryQuery) -> Result<Vec<TokenRecord>, StoreError> {
        let query = query.clone();
        let (sql, params) = tokens_sql(&query);
        self.block(move |b| {
            Box::pin(async move {
                let records = on!(&b, pool => {
                    let mut q = sqlx::query(&sql);
                    for p in &params {
                        q = match p {
                            Param::Text(t) => q.bind(t.clone()),
                            Param::Int(i) => q.bind(*i),
                        };
                    }
                    let rows = q.fetch_all(pool).await.map_err(StoreError::query)?;
                    rows.iter().map(token_record).collect::<Result<Vec<_>, _>>()?
                });
                // `matches` re-checks every row, so the result is exactly the in-memory inventory's.
                Ok(records.into_iter().filter(|r| query.matches(r)).collect())
            })
        })
    }

    /// The database's plan for [`Store::tokens`] with `query`, one line per step (SQLite's
    /// `EXPLAIN QUERY PLAN`, PostgreSQL's `EXPLAIN`): to check that a filter uses an index.
    ///
    /// # Errors
    /// A query error.
    pub fn tokens_plan(&self, query: &InventoryQuery) -> Result<Vec<String>, StoreError> {
        let (sql, params) = tokens_sql(query);
        self.block(move |b| {
            Box::pin(async move {
                let (explain, column) = match &b {
                    #[cfg(feature = "sqlite")]
                    crate::db::Backend::Sqlite(_) => {
                        (format!("EXPLAIN QUERY PLAN {sql}"), "detail")
                    }
                    #[cfg(feature = "postgres")]
                    crate::db::Backend::Postgres(_) => (format!("EXPLAIN {sql}"), "QUERY PLAN"),
                };
                on!(&b, pool => {
                    let mut q = sqlx::query(&explain);
                    for p in &params {
                        q = match p {
                            Param::Text(t) => q.bind(t.clone()),
                            Param::Int(i) => q.bind(*i),
                        };
                    }
                    let rows = q.fetch_all(pool).await.map_err(StoreError::query)?;
                    rows.iter()
                        .map(|r| r.try_get::<String, _>(column).map_err(StoreError::query))
                        .collect()
                })
            })
        })
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
                row.as_ref().map(token_record).transpose()
            })
        }))
    }
}

/// A bound parameter of [`tokens_sql`].
enum Param {
    Text(String),
    Int(i64),
}

/// The `SELECT` for `query`: one condition per filter it has, numbered parameters.
fn tokens_sql(query: &InventoryQuery) -> (String, Vec<Param>) {
    let ts = |t: OffsetDateTime| Param::Int(t.unix_timestamp());
    let mut conditions: Vec<(&str, Param)> = Vec::new();
    if let Some(s) = query.subject_filter() {
        conditions.push(("subject = ", Param::Text(s.to_owned())));
    }
    if let Some(o) = query.owner_filter() {
        conditions.push(("owner = ", Param::Text(o.to_owned())));
    }
    if let Some(t) = query.live_at_filter() {
        conditions.push(("expires_at > ", ts(t)));
    }
    if let Some(t) = query.expiring_before_filter() {
        conditions.push(("expires_at < ", ts(t)));
    }
    if let Some(t) = query.unused_since_filter() {
        conditions.push(("COALESCE(last_used, issued_at) < ", ts(t)));
    }
    let mut sql = String::from(
        "SELECT jti, token_type, subject, owner, purpose, scopes, issued_at, expires_at, kid, family, last_used \
         FROM scopekey_tokens",
    );
    let mut params = Vec::with_capacity(conditions.len());
    for (i, (condition, param)) in conditions.into_iter().enumerate() {
        sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        sql.push_str(condition);
        sql.push_str(&format!("${}", i + 1));
        params.push(param);
    }
    sql.push_str(" ORDER BY issued_at, jti");
    (sql, params)
}

/// An inventory row as its record.
fn token_record(row: &impl Cells) -> Result<TokenRecord, StoreError> {
    const T: &str = "scopekey_tokens";
    let jti: String = row.text(T, "?", "jti")?;
    let shown: String = jti.chars().take(60).collect();
    let bad = |why: String| StoreError::corrupt(T, &shown, why);
    let token_type = match row.text(T, &shown, "token_type")?.as_str() {
        "access" => TokenType::Access,
        "refresh" => TokenType::Refresh,
        other => return Err(bad(format!("unknown token type {other:?}"))),
    };
    let time = |t: i64| at(t).map_err(|_| bad("time out of range".into()));
    let family: Option<String> = row.text_or_null(T, &shown, "family")?;
    let parts = TokenRecordParts {
        token_id: jti
            .parse()
            .map_err(|e: scopekey::InvalidId| bad(e.to_string()))?,
        token_type,
        subject: row.text(T, &shown, "subject")?,
        owner: row.text_or_null(T, &shown, "owner")?,
        purpose: row.text_or_null(T, &shown, "purpose")?,
        scopes: row
            .text(T, &shown, "scopes")?
            .parse()
            .map_err(|e: scopekey::ScopeError| bad(e.to_string()))?,
        issued_at: time(row.int(T, &shown, "issued_at")?)?,
        expires_at: time(row.int(T, &shown, "expires_at")?)?,
        key_id: row
            .text(T, &shown, "kid")?
            .parse()
            .map_err(|e: scopekey::KeyError| bad(e.to_string()))?,
        family: family
            .map(|f| {
                f.parse()
                    .map_err(|e: scopekey::InvalidId| bad(e.to_string()))
            })
            .transpose()?,
        last_used: row
            .int_or_null(T, &shown, "last_used")?
            .map(time)
            .transpose()?,
    };
    Ok(parts.into())
}

/// Deletes at most `limit` inventory rows of tokens that expired before `expired_before`
/// (earliest expiry first), except those of a refresh family the store still holds: revoking
/// such a token finds its family through its row. Returns how many it deleted.
pub(crate) async fn sweep_tokens(
    b: &crate::db::Backend,
    expired_before: i64,
    limit: i64,
) -> Result<u64, StoreError> {
    let sql = "DELETE FROM scopekey_tokens WHERE jti IN (\
                 SELECT t.jti FROM scopekey_tokens t WHERE t.expires_at < $1 \
                 AND (t.family IS NULL OR NOT EXISTS (\
                   SELECT 1 FROM scopekey_refresh_families f WHERE f.family = t.family)) \
                 ORDER BY t.expires_at LIMIT $2)";
    on!(b, pool => {
        Ok(sqlx::query(sql).bind(expired_before).bind(limit)
            .execute(pool).await.map_err(StoreError::query)?.rows_affected())
    })
}
