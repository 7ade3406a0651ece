//! `scopekey_token_uses`: the use counts of use-limited tokens, one atomic upsert per use.
//!
//! May import: the crate root, `db` and `store`; no other table.

use crate::db::on;
use crate::{Store, StoreError};
use scopekey::TokenId;
use scopekey::usage::Consumption;
use sqlx::Row as _;
use time::OffsetDateTime;

impl Store {
    /// Counts one use of the token `token_id`, allowed `limit` uses, keeping its row at least
    /// until `keep_until`: one statement (`INSERT … ON CONFLICT (jti) DO UPDATE SET used =
    /// used + 1 WHERE used < limit RETURNING used`), so that of any number of concurrent uses,
    /// from any number of instances sharing the store, at most `limit` are counted.
    ///
    /// # Errors
    /// A query error (then nothing was counted, and the caller refuses the token).
    pub fn consume_token_use(
        &self,
        token_id: &TokenId,
        limit: u32,
        keep_until: OffsetDateTime,
    ) -> Result<Consumption, StoreError> {
        let (jti, until, limit) = (
            token_id.as_str().to_owned(),
            keep_until.unix_timestamp(),
            i64::from(limit),
        );
        self.block(move |b| Box::pin(async move {
            // The first use inserts 1 (every limit is at least 1); a later one counts up only
            // while below the limit, and otherwise returns no row.
            let sql = "INSERT INTO scopekey_token_uses (jti, used, keep_until) VALUES ($1, 1, $2) \
                       ON CONFLICT (jti) DO UPDATE SET used = scopekey_token_uses.used + 1 \
                       WHERE scopekey_token_uses.used < $3 RETURNING used";
            let used: Option<i64> = on!(&b, pool => {
                match sqlx::query(sql).bind(jti.clone()).bind(until).bind(limit)
                    .fetch_optional(pool).await.map_err(StoreError::query)? {
                    None => None,
                    Some(row) => Some(row.try_get::<i64, _>("used").map_err(|e| {
                        StoreError::corrupt("scopekey_token_uses", &jti, format_args!("column used: {e}"))
                    })?),
                }
            });
            match used {
                None => Ok(Consumption::Exhausted),
                Some(n) => u32::try_from(n)
                    .ok()
                    .filter(|n| (1..=limit).contains(&i64::from(*n)))
                    .map(|used| Consumption::Counted { used })
                    .ok_or_else(|| StoreError::corrupt("scopekey_token_uses", &jti, format_args!("used {n} is outside 1..={limit}"))),
            }
        }))
    }

    /// Deletes the use counts of tokens whose `keep_until` is before `before` (pass the current
    /// time: no verifier accepts those tokens any more, so their counts are no longer needed).
    /// Returns how many were deleted. The store's usage counter also does this by itself, at
    /// most once an hour; call it from a scheduled job to keep the table small on a schedule
    /// of your own.
    ///
    /// # Errors
    /// A query error.
    pub fn prune_token_uses(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let before = before.unix_timestamp();
        self.block(move |b| Box::pin(async move {
            let sql = "DELETE FROM scopekey_token_uses WHERE keep_until < $1";
            let n = on!(&b, pool => {
                sqlx::query(sql).bind(before).execute(pool).await.map_err(StoreError::query)?.rows_affected()
            });
            Ok(n)
        }))
    }
}
