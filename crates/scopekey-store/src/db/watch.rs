//! SQLite: noticing a commit made by any other connection, in this process or another, without
//! reading a table: `PRAGMA data_version` on a connection of the watcher's own.
//!
//! May import: its parent `db` and the crate root; no table.

use crate::StoreError;
use sqlx::ConnectOptions as _;
use sqlx::sqlite::{SqliteConnection, SqlitePool};

/// A connection that only ever reads `PRAGMA data_version`.
///
/// SQLite changes that number, per connection, whenever another connection commits; a
/// connection's own commits leave it alone. This one never writes, so every commit to the file
/// (through the store's pool or by another process) changes it. It is opened with the pool's
/// options (WAL, busy timeout), and each read is a short read transaction that ends at once,
/// so it never holds back a checkpoint.
#[derive(Debug)]
pub(crate) struct CommitWatch {
    conn: SqliteConnection,
    version: i64,
}

impl CommitWatch {
    /// Opens the watching connection and reads the number once.
    pub(crate) async fn open(pool: &SqlitePool) -> Result<Self, StoreError> {
        let mut conn = pool
            .connect_options()
            .connect()
            .await
            .map_err(StoreError::query)?;
        let version = data_version(&mut conn).await?;
        Ok(Self { conn, version })
    }

    /// Whether another connection committed since the last call (or since [`open`](Self::open)).
    pub(crate) async fn changed(&mut self) -> Result<bool, StoreError> {
        let version = data_version(&mut self.conn).await?;
        let changed = version != self.version;
        self.version = version;
        Ok(changed)
    }
}

async fn data_version(conn: &mut SqliteConnection) -> Result<i64, StoreError> {
    sqlx::query_scalar("PRAGMA data_version")
        .fetch_one(conn)
        .await
        .map_err(StoreError::query)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::CommitWatch;
    use crate::db::{Backend, Db, run_on};

    /// The watching connection is opened as every pool connection is (WAL, a busy timeout),
    /// and it sees commits made through the pool but not reads.
    #[test]
    fn the_watch_has_the_pool_settings_and_sees_other_connections_commits() {
        let dir = std::env::temp_dir().join(format!("scopekey-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::open(
            &format!("sqlite://{}/w.db", dir.display()),
            &crate::StoreOptions::default(),
        )
        .unwrap();
        // Irrefutable when the crate is built for SQLite only.
        #[allow(irrefutable_let_patterns)]
        let Backend::Sqlite(pool) = db.backend().clone() else {
            panic!("not sqlite")
        };
        let seen = run_on(db.runtime().unwrap(), async move {
            let mut watch = CommitWatch::open(&pool).await.unwrap();
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut watch.conn)
                .await
                .unwrap();
            let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
                .fetch_one(&mut watch.conn)
                .await
                .unwrap();
            let mut pooled = pool.acquire().await.unwrap();
            let pool_mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut *pooled)
                .await
                .unwrap();
            let pool_busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
                .fetch_one(&mut *pooled)
                .await
                .unwrap();
            let idle = watch.changed().await.unwrap();
            sqlx::query("SELECT COUNT(*) FROM scopekey_revocations")
                .execute(&mut *pooled)
                .await
                .unwrap();
            let after_read = watch.changed().await.unwrap();
            sqlx::query(
                "UPDATE scopekey_counters SET value = value + 1 WHERE name = 'revocations'",
            )
            .execute(&mut *pooled)
            .await
            .unwrap();
            let after_write = watch.changed().await.unwrap();
            let again = watch.changed().await.unwrap();
            (
                mode,
                busy,
                pool_mode,
                pool_busy,
                idle,
                after_read,
                after_write,
                again,
            )
        })
        .unwrap();
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(seen.0, "wal");
        assert_eq!(seen.1, 10_000);
        assert_eq!(seen.2, "wal");
        assert_eq!(seen.3, 10_000);
        assert_eq!(
            (seen.4, seen.5, seen.6, seen.7),
            (false, false, true, false)
        );
    }
}
