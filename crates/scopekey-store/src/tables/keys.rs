//! `scopekey_keys`: the public key set every replica verifies with, and its row mapping.
//!
//! May import: the crate root, `db` and `store`; no other table.

use super::Cells;
use crate::db::{Backend, at, notify, now_seconds, on};
use crate::{Store, StoreError};
use scopekey::{KeyId, KeySet, PublicKey};
use time::OffsetDateTime;

impl Store {
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
    /// A query error, or [`StoreErrorKind::Corrupt`](crate::StoreErrorKind::Corrupt) for a row whose key does not import or
    /// whose key id does not match its key.
    pub fn key_set(&self) -> Result<KeySet, StoreError> {
        self.block(|b| Box::pin(async move { load_keys(&b).await }))
    }
}

/// The key set, each key with its validity window.
pub(crate) async fn load_keys(b: &Backend) -> Result<KeySet, StoreError> {
    let sql = "SELECT kid, public_key, not_before, retire_at FROM scopekey_keys ORDER BY kid";
    on!(b, pool => {
        let rows = sqlx::query(sql).fetch_all(pool).await.map_err(StoreError::query)?;
        let mut set = KeySet::new();
        for row in &rows {
            let (key, nb, ra) = key(row)?;
            set.insert_with_window(key, nb, ra);
        }
        Ok(set)
    })
}

type KeyRow = (PublicKey, Option<OffsetDateTime>, Option<OffsetDateTime>);

/// A key row as the key and its window (`not_before`, `retire_at`).
fn key(row: &impl Cells) -> Result<KeyRow, StoreError> {
    const T: &str = "scopekey_keys";
    let kid: String = row.text(T, "?", "kid")?;
    let shown: String = kid.chars().take(60).collect();
    let bad = |why: String| StoreError::corrupt(T, &shown, why);
    let paserk: String = row.text(T, &shown, "public_key")?;
    let key = PublicKey::from_paserk(&paserk).map_err(|e| bad(e.to_string()))?;
    let expected: KeyId = kid
        .parse()
        .map_err(|e: scopekey::KeyError| bad(e.to_string()))?;
    if key.key_id() != &expected {
        return Err(bad("the key id does not match the key".into()));
    }
    let nb: Option<i64> = row.int_or_null(T, &shown, "not_before")?;
    let ra: Option<i64> = row.int_or_null(T, &shown, "retire_at")?;
    let time = |t: i64| at(t).map_err(|_| bad("time out of range".into()));
    Ok((key, nb.map(time).transpose()?, ra.map(time).transpose()?))
}
