//! `scopekey_refresh_families` and `scopekey_refresh_used`: refresh families, rotated in one
//! transaction; reuse kills the family and revokes it in that same transaction.
//!
//! May import: the crate root, `db`, `store` and the `revocations` table (whose single
//! insert records the revocation on reuse).

use super::revocations::{RevocationInsert, insert_revocation, notify_revoked};
use crate::db::on;
use crate::{Store, StoreError};
use scopekey::refresh::{Presentation, Rotation};
use scopekey::{FamilyId, TokenId};
use sqlx::Row as _;
use time::OffsetDateTime;

impl Store {
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
                                // Killed before, and revoked in the transaction that killed it
                                // (a replica that had not read that yet let the token through):
                                // nothing to write again; the caller applies it locally.
                                Rotation::ReusedAndRevoked
                            } else if current == presented {
                                // The current member, refused only for the family's age (or
                                // for a start this version did not record).
                                Rotation::Ended
                            } else {
                                // Only the presentation that kills the family writes its
                                // revocation: a concurrent one waits for this row and then finds
                                // it dead already.
                                let killed = sqlx::query("UPDATE scopekey_refresh_families SET dead = 1 WHERE family = $1 AND dead = 0")
                                    .bind(fam).execute(&mut *tx).await.map_err(StoreError::query)?.rows_affected();
                                if killed == 1 {
                                    insert_revocation!(tx, revocation);
                                }
                                Rotation::ReusedAndRevoked
                            }
                        }
                    }
                };
                tx.commit().await.map_err(StoreError::query)?;
                outcome
            });
            if outcome == Rotation::ReusedAndRevoked {
                notify_revoked(&b).await;
            }
            Ok(outcome)
        }))
    }
}

/// Deletes at most `limit` refresh families whose current token expired before
/// `expired_before`, with their used-token rows, in one transaction. Returns how many families
/// it deleted.
pub(crate) async fn sweep_families(
    b: &crate::db::Backend,
    expired_before: i64,
    limit: i64,
) -> Result<u64, StoreError> {
    // The families first (RETURNING what went): a family rotated meanwhile has a later expiry
    // and stays, with its used-token rows.
    let families = "DELETE FROM scopekey_refresh_families WHERE family IN (\
                      SELECT family FROM scopekey_refresh_families WHERE expires_at < $1 \
                      ORDER BY expires_at LIMIT $2) \
                    AND expires_at < $1 RETURNING family";
    on!(b, pool => {
        let mut tx = pool.begin().await.map_err(StoreError::query)?;
        let gone: Vec<String> = sqlx::query_scalar(families)
            .bind(expired_before).bind(limit)
            .fetch_all(&mut *tx).await.map_err(StoreError::query)?;
        for family in &gone {
            sqlx::query("DELETE FROM scopekey_refresh_used WHERE family = $1")
                .bind(family.clone()).execute(&mut *tx).await.map_err(StoreError::query)?;
        }
        tx.commit().await.map_err(StoreError::query)?;
        Ok(u64::try_from(gone.len()).unwrap_or(u64::MAX))
    })
}
