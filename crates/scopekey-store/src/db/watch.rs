//! SQLite: noticing a commit made by any other connection, in this process or another, without
//! reading a table: the WAL-index header in the `-shm` file, confirmed by `PRAGMA data_version`
//! on a connection of the watcher's own.
//!
//! May import: its parent `db` and the crate root; no table.

use crate::StoreError;
use sqlx::ConnectOptions as _;
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often [`CommitWatch::changed`] asks SQLite even when the WAL-index header says nothing
/// changed: the bound on noticing a commit should the header ever be missed.
pub(crate) const CONFIRM_EVERY: Duration = Duration::from_secs(1);

/// A connection that only ever reads `PRAGMA data_version`, with a cheaper look first.
///
/// SQLite changes that number, per connection, whenever another connection commits; a
/// connection's own commits leave it alone. This one never writes, so every commit to the file
/// (through the store's pool or by another process) changes it. It is opened with the pool's
/// options (WAL, busy timeout), and each read is a short read transaction that ends at once,
/// so it never holds back a checkpoint.
///
/// Asking costs a round trip to the connection's thread (about half a millisecond of CPU on a
/// small virtual machine, polled 100 times a second). So each poll first reads the first copy
/// of the WAL-index header from the `-shm` file (48 bytes at offset 0, which every commit
/// rewrites: its change counter and last frame, see <https://www.sqlite.org/walformat.html>)
/// with one `pread`, and asks SQLite only when those bytes changed, or at least every
/// [`CONFIRM_EVERY`]. Where the file cannot be read (another platform, a journal mode other
/// than WAL), it asks every time, as before.
#[derive(Debug)]
pub(crate) struct CommitWatch {
    conn: SqliteConnection,
    version: i64,
    shm: Option<Shm>,
    asked: Instant,
    /// How many times SQLite was asked (for the tests).
    asks: u64,
}

/// The `-shm` file of the database and the header bytes last read from it.
#[derive(Debug)]
struct Shm {
    path: PathBuf,
    file: Option<std::fs::File>,
    header: [u8; 48],
}

impl Shm {
    fn new(db: &Path) -> Self {
        let mut path = db.as_os_str().to_owned();
        path.push("-shm");
        let mut shm = Self {
            path: PathBuf::from(path),
            file: None,
            header: [0; 48],
        };
        shm.reopen();
        shm
    }

    fn reopen(&mut self) {
        self.file = std::fs::File::open(&self.path).ok();
        self.header = self.read().unwrap_or([0; 48]);
    }

    /// The header now, or `None` when it cannot be read.
    #[cfg(unix)]
    fn read(&self) -> Option<[u8; 48]> {
        use std::os::unix::fs::FileExt as _;
        let mut buf = [0; 48];
        self.file.as_ref()?.read_exact_at(&mut buf, 0).ok()?;
        Some(buf)
    }

    #[cfg(not(unix))]
    fn read(&self) -> Option<[u8; 48]> {
        None
    }

    /// Whether the header changed since the last look; `None` when it cannot be read.
    fn changed(&mut self) -> Option<bool> {
        let now = self.read()?;
        let changed = now != self.header;
        self.header = now;
        Some(changed)
    }
}

impl CommitWatch {
    /// Opens the watching connection and reads the number once.
    pub(crate) async fn open(pool: &SqlitePool) -> Result<Self, StoreError> {
        let options = pool.connect_options();
        let mut conn = options.connect().await.map_err(StoreError::query)?;
        let version = data_version(&mut conn).await?;
        // After the connection opened: the `-shm` file exists (WAL) while it is open.
        let shm = Some(Shm::new(options.get_filename()));
        Ok(Self {
            conn,
            version,
            shm,
            asked: Instant::now(),
            asks: 0,
        })
    }

    /// Whether another connection committed since the last call (or since [`open`](Self::open)).
    pub(crate) async fn changed(&mut self) -> Result<bool, StoreError> {
        let header = self.shm.as_mut().and_then(Shm::changed);
        if header == Some(false) && self.asked.elapsed() < CONFIRM_EVERY {
            return Ok(false);
        }
        let version = data_version(&mut self.conn).await?;
        self.asked = Instant::now();
        self.asks += 1;
        let changed = version != self.version;
        self.version = version;
        if changed && header != Some(true) {
            // A commit the header did not show: the `-shm` file may have been replaced (every
            // connection closed and another reopened it). Look at the new one from now on.
            if let Some(shm) = self.shm.as_mut() {
                shm.reopen();
            }
        }
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

    /// Polls that find the WAL-index header unchanged do not ask SQLite; a commit changes the
    /// header and is confirmed by one question.
    #[test]
    fn unchanged_polls_read_the_header_only() {
        let dir = std::env::temp_dir().join(format!("scopekey-watch-shm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::open(
            &format!("sqlite://{}/w.db", dir.display()),
            &crate::StoreOptions::default(),
        )
        .unwrap();
        #[allow(irrefutable_let_patterns)]
        let Backend::Sqlite(pool) = db.backend().clone() else {
            panic!("not sqlite")
        };
        let seen = run_on(db.runtime().unwrap(), async move {
            let mut watch = CommitWatch::open(&pool).await.unwrap();
            assert!(watch.shm.as_ref().is_some_and(|s| s.file.is_some()));
            let mut idle = 0;
            for _ in 0..200 {
                idle += usize::from(watch.changed().await.unwrap());
            }
            let idle_asks = watch.asks;
            sqlx::query(
                "UPDATE scopekey_counters SET value = value + 1 WHERE name = 'revocations'",
            )
            .execute(&pool)
            .await
            .unwrap();
            let seen = watch.changed().await.unwrap();
            (idle, idle_asks, seen, watch.asks)
        })
        .unwrap();
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
        let (idle, idle_asks, committed, asks) = seen;
        assert_eq!(idle, 0);
        // 200 polls take well under a second; at most one confirming question if the machine
        // stalled past CONFIRM_EVERY meanwhile.
        assert!(idle_asks <= 1, "{idle_asks} questions in 200 idle polls");
        assert!(committed);
        assert_eq!(asks, idle_asks + 1);
    }
}
