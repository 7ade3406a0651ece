//! Versioned migrations: the shipped SQL files, applied in one transaction on open (under an
//! advisory lock on PostgreSQL, so one instance migrates at a time).
//!
//! May import: the crate root and its parent `db`; no table.

use super::{Backend, DbFuture, now_seconds, on};
use crate::{StoreError, StoreErrorKind};
use sqlx::Row as _;

#[cfg(feature = "sqlite")]
const MIGRATIONS_SQLITE: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/sqlite/0002_consumers.sql"),
    ),
    (
        3,
        include_str!("../../migrations/sqlite/0003_sequence_and_family_start.sql"),
    ),
    (
        4,
        include_str!("../../migrations/sqlite/0004_client_credentials.sql"),
    ),
    (
        5,
        include_str!("../../migrations/sqlite/0005_operators.sql"),
    ),
    (
        6,
        include_str!("../../migrations/sqlite/0006_token_uses.sql"),
    ),
    (
        7,
        include_str!("../../migrations/sqlite/0007_consumer_networks.sql"),
    ),
    (
        8,
        include_str!("../../migrations/sqlite/0008_dpop_replays.sql"),
    ),
    (
        9,
        include_str!("../../migrations/sqlite/0009_retention.sql"),
    ),
    (
        10,
        include_str!("../../migrations/sqlite/0010_revocation_rows.sql"),
    ),
];
#[cfg(feature = "postgres")]
const MIGRATIONS_POSTGRES: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/postgres/0002_consumers.sql"),
    ),
    (
        3,
        include_str!("../../migrations/postgres/0003_sequence_and_family_start.sql"),
    ),
    (
        4,
        include_str!("../../migrations/postgres/0004_client_credentials.sql"),
    ),
    (
        5,
        include_str!("../../migrations/postgres/0005_operators.sql"),
    ),
    (
        6,
        include_str!("../../migrations/postgres/0006_token_uses.sql"),
    ),
    (
        7,
        include_str!("../../migrations/postgres/0007_consumer_networks.sql"),
    ),
    (
        8,
        include_str!("../../migrations/postgres/0008_dpop_replays.sql"),
    ),
    (
        9,
        include_str!("../../migrations/postgres/0009_retention.sql"),
    ),
    (
        10,
        include_str!("../../migrations/postgres/0010_revocation_rows.sql"),
    ),
];

/// The line that separates the statements of a migration whose statements hold `;`.
const NEXT_STATEMENT: &str = "\n-- next statement\n";

/// The statements of one migration file, trimmed, empty ones left out.
fn statements(sql: &str) -> Vec<String> {
    let parts: Vec<&str> = if sql.contains(NEXT_STATEMENT) {
        sql.split(NEXT_STATEMENT).collect()
    } else {
        sql.split(';').collect()
    };
    parts
        .into_iter()
        .map(str::trim)
        .filter(|st| !st.is_empty() && !st.lines().all(|l| l.trim_start().starts_with("--")))
        .map(str::to_owned)
        .collect()
}

pub(super) fn migrate(b: &Backend) -> DbFuture<()> {
    let b = b.clone();
    Box::pin(async move { migrate_inner(&b).await })
}

async fn migrate_inner(b: &Backend) -> Result<(), StoreError> {
    let fail = |e: sqlx::Error| {
        StoreError::new(StoreErrorKind::Migration, format!("migration failed: {e}")).with_source(e)
    };
    let (migrations, lock): (&'static [(i64, &'static str)], Option<&'static str>) = match b {
        #[cfg(feature = "sqlite")]
        Backend::Sqlite(_) => (MIGRATIONS_SQLITE, None),
        // One migrator at a time across instances.
        #[cfg(feature = "postgres")]
        Backend::Postgres(_) => (
            MIGRATIONS_POSTGRES,
            Some("SELECT pg_advisory_xact_lock(7236815)"),
        ),
    };
    // Every statement of every migration, owned, in order: `;` ends a statement (those
    // migrations hold no `;` inside literals or comments), except in a migration that
    // separates its statements with `-- next statement` lines (trigger and function bodies
    // hold `;`).
    let plan: Vec<(i64, Vec<String>)> = migrations
        .iter()
        .map(|(v, sql)| (*v, statements(sql)))
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

#[cfg(test)]
mod tests {
    #[test]
    fn every_migration_splits_into_statements_without_empty_or_comment_only_ones() {
        #[cfg(feature = "sqlite")]
        for (v, sql) in super::MIGRATIONS_SQLITE {
            check(*v, sql);
        }
        #[cfg(feature = "postgres")]
        for (v, sql) in super::MIGRATIONS_POSTGRES {
            check(*v, sql);
        }
        #[cfg(feature = "sqlite")]
        assert_eq!(super::MIGRATIONS_SQLITE.len(), 10);
        #[cfg(feature = "postgres")]
        assert_eq!(super::MIGRATIONS_POSTGRES.len(), 10);
    }

    fn check(version: i64, sql: &str) {
        let statements = super::statements(sql);
        assert!(!statements.is_empty(), "migration {version}");
        if version == 10 {
            assert_eq!(statements.len(), 3, "migration 10: {statements:?}");
        }
    }
}
