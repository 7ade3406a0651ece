//! `scopekey_consumers` and `scopekey_roles`: registered consumers (disabling one revokes its
//! tokens in the same transaction) and role definitions, with their row mapping.
//!
//! May import: the crate root, `db`, `store` and the `revocations` table (whose single
//! insert records the revocation on disable).

use super::Cells;
use super::revocations::{RevocationInsert, insert_revocation, notify_revoked, record_now};
use crate::db::{at, now_seconds, on};
use crate::{Store, StoreError};
use scopekey::consumer::{Consumer, Roles};
use scopekey::revocation::{Revocation, RevocationTarget};
use sqlx::Row as _;
use std::sync::Arc;
use time::OffsetDateTime;

impl Store {
    /// Registers a consumer.
    ///
    /// # Errors
    /// A query error (including a name already registered).
    pub fn add_consumer(&self, c: &Consumer) -> Result<(), StoreError> {
        let c = c.clone();
        self.block(move |b| Box::pin(async move {
            let sql = "INSERT INTO scopekey_consumers (name, owner, purpose, environment, ceiling, created_at, disabled_at, networks) \
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
            on!(&b, pool => {
                sqlx::query(sql)
                    .bind(c.name().to_owned()).bind(c.owner().to_owned()).bind(c.purpose().to_owned())
                    .bind(c.environment().as_str().to_owned()).bind(c.ceiling().to_string())
                    .bind(c.created_at().unix_timestamp())
                    .bind(c.disabled_at().map(OffsetDateTime::unix_timestamp))
                    .bind(networks_text(&c))
                    .execute(pool).await.map_err(StoreError::query)?;
            });
            Ok(())
        }))
    }

    /// Every registered consumer, by name.
    ///
    /// # Errors
    /// A query error, or [`StoreErrorKind::Corrupt`](crate::StoreErrorKind::Corrupt) for a row that does not parse.
    pub fn consumers(&self) -> Result<Vec<Consumer>, StoreError> {
        self.block(|b| Box::pin(async move {
            let sql = "SELECT name, owner, purpose, environment, ceiling, created_at, disabled_at, networks FROM scopekey_consumers ORDER BY name";
            on!(&b, pool => {
                let rows = sqlx::query(sql).fetch_all(pool).await.map_err(StoreError::query)?;
                rows.iter().map(consumer).collect()
            })
        }))
    }

    /// One consumer.
    ///
    /// # Errors
    /// As [`Store::consumers`].
    pub fn consumer(&self, name: &str) -> Result<Option<Consumer>, StoreError> {
        let name = name.to_owned();
        self.block(move |b| Box::pin(async move {
            let sql = "SELECT name, owner, purpose, environment, ceiling, created_at, disabled_at, networks FROM scopekey_consumers WHERE name = $1";
            on!(&b, pool => {
                let row = sqlx::query(sql).bind(name).fetch_optional(pool).await.map_err(StoreError::query)?;
                row.as_ref().map(consumer).transpose()
            })
        }))
    }

    /// Disables a consumer and, in the same transaction, revokes every token issued to it so
    /// far. Returns the revocation, or `None` if no such consumer exists.
    ///
    /// # Errors
    /// [`StoreErrorKind::InvalidInput`](crate::StoreErrorKind::InvalidInput) for an invalid `by` or `reason`, otherwise a query error.
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
        let record = record_now(target, by, now, reason)?;
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
            if found {
                notify_revoked(&b).await;
            }
            Ok(found)
        }))?;
        Ok(found.then(|| Arc::new(record)))
    }

    /// Re-enables a disabled consumer: it may be issued tokens again (those revoked when it was
    /// disabled stay revoked). Returns whether such a consumer exists.
    ///
    /// # Errors
    /// A query error.
    pub fn enable_consumer(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.block(move |b| Box::pin(async move {
            let n = on!(&b, pool => sqlx::query("UPDATE scopekey_consumers SET disabled_at = NULL WHERE name = $1")
                .bind(name).execute(pool).await.map_err(StoreError::query)?.rows_affected());
            Ok(n == 1)
        }))
    }

    /// Replaces a consumer's owner, purpose, ceiling and networks with `updated`'s (matched by name; its
    /// environment, creation and disabled times are kept). Narrowing a ceiling does not revoke
    /// tokens already issued beyond it: revoke them (the consumer's, before now) if it must.
    /// Returns whether such a consumer exists.
    ///
    /// # Errors
    /// A query error.
    pub fn update_consumer(&self, updated: &Consumer) -> Result<bool, StoreError> {
        let c = updated.clone();
        self.block(move |b| Box::pin(async move {
            let sql = "UPDATE scopekey_consumers SET owner = $1, purpose = $2, ceiling = $3, networks = $4 WHERE name = $5";
            let n = on!(&b, pool => sqlx::query(sql)
                .bind(c.owner().to_owned()).bind(c.purpose().to_owned()).bind(c.ceiling().to_string())
                .bind(networks_text(&c))
                .bind(c.name().to_owned())
                .execute(pool).await.map_err(StoreError::query)?.rows_affected());
            Ok(n == 1)
        }))
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
    /// A query error, or [`StoreErrorKind::Corrupt`](crate::StoreErrorKind::Corrupt) for a row that does not parse.
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
}

/// A consumer row as its consumer.
fn consumer(row: &impl Cells) -> Result<Consumer, StoreError> {
    const T: &str = "scopekey_consumers";
    let name: String = row.text(T, "?", "name")?;
    let shown: String = name.chars().take(60).collect();
    let bad = |why: String| StoreError::corrupt(T, &shown, why);
    let time = |t: i64| at(t).map_err(|_| bad("time out of range".into()));
    let env = row
        .text(T, &shown, "environment")?
        .parse()
        .map_err(|e: scopekey::InvalidId| bad(e.to_string()))?;
    let ceiling = row
        .text(T, &shown, "ceiling")?
        .parse()
        .map_err(|e: scopekey::ScopeError| bad(e.to_string()))?;
    let owner: String = row.text(T, &shown, "owner")?;
    let purpose: String = row.text(T, &shown, "purpose")?;
    let created = time(row.int(T, &shown, "created_at")?)?;
    let disabled = row
        .int_or_null(T, &shown, "disabled_at")?
        .map(time)
        .transpose()?;
    let networks = row
        .text(T, &shown, "networks")?
        .split_ascii_whitespace()
        .map(str::parse)
        .collect::<Result<Vec<scopekey::Network>, _>>()
        .map_err(|e| bad(format!("networks: {e}")))?;
    Consumer::from_parts(&name, &owner, &purpose, env, ceiling, created, disabled)
        .and_then(|c| c.with_networks(networks))
        .map_err(|e| bad(e.to_string()))
}

/// A consumer's networks as stored: canonical CIDR blocks, space-separated.
fn networks_text(c: &Consumer) -> String {
    c.networks()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}
