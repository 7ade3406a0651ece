//! The [`Store`] handle: opening, its URL as shown, and its `Debug`. Its queries live with
//! their tables (`tables/`), each in an `impl Store` block of its own.
//!
//! May import: the crate root and `db`; no table.

use crate::StoreError;
use crate::db::{Backend, Db, DbFuture};
use std::sync::Arc;
use std::time::Duration;

/// How the store's connection pool is sized and timed. Unset values keep the defaults: SQLite 4
/// connections, 10 s to get one, a 10 s busy timeout; PostgreSQL 8 connections, 5 s to get one.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    pub(crate) max_connections: Option<u32>,
    pub(crate) acquire_timeout: Option<Duration>,
    pub(crate) busy_timeout: Option<Duration>,
}

/// The most connections a pool may be given.
pub const MAX_POOL_CONNECTIONS: u32 = 256;

/// The longest a pool timeout may be.
pub const MAX_POOL_TIMEOUT: Duration = Duration::from_secs(300);

impl StoreOptions {
    /// At most `n` connections (1 to [`MAX_POOL_CONNECTIONS`]). Every replica and sink of a
    /// handle shares them; each replica's change feed (a SQLite commit watch, a PostgreSQL
    /// listener) holds one connection of its own, outside this pool.
    ///
    /// # Errors
    /// [`StoreErrorKind::InvalidInput`](crate::StoreErrorKind::InvalidInput) outside that range.
    pub fn max_connections(mut self, n: u32) -> Result<Self, StoreError> {
        if n == 0 || n > MAX_POOL_CONNECTIONS {
            return Err(invalid(format!(
                "max_connections is 1 to {MAX_POOL_CONNECTIONS}, not {n}"
            )));
        }
        self.max_connections = Some(n);
        Ok(self)
    }

    /// How long a query waits for a free connection before failing (1 ms to
    /// [`MAX_POOL_TIMEOUT`]): the store then answers [`StoreErrorKind::Connect`](crate::StoreErrorKind::Connect), and a
    /// replica goes stale after its own bound rather than hanging.
    ///
    /// # Errors
    /// [`StoreErrorKind::InvalidInput`](crate::StoreErrorKind::InvalidInput) outside that range.
    pub fn acquire_timeout(mut self, d: Duration) -> Result<Self, StoreError> {
        self.acquire_timeout = Some(bounded("acquire_timeout", d)?);
        Ok(self)
    }

    /// SQLite: how long a statement waits for another writer's lock (1 ms to
    /// [`MAX_POOL_TIMEOUT`]); ignored for PostgreSQL.
    ///
    /// # Errors
    /// [`StoreErrorKind::InvalidInput`](crate::StoreErrorKind::InvalidInput) outside that range.
    pub fn busy_timeout(mut self, d: Duration) -> Result<Self, StoreError> {
        self.busy_timeout = Some(bounded("busy_timeout", d)?);
        Ok(self)
    }
}

fn invalid(message: String) -> StoreError {
    StoreError::new(crate::StoreErrorKind::InvalidInput, message)
}

fn bounded(name: &str, d: Duration) -> Result<Duration, StoreError> {
    if d < Duration::from_millis(1) || d > MAX_POOL_TIMEOUT {
        return Err(invalid(format!(
            "{name} is 1 ms to {} s, not {d:?}",
            MAX_POOL_TIMEOUT.as_secs()
        )));
    }
    Ok(d)
}

/// A handle to the store. Cheap to clone; every clone shares the connection pool and runtime.
///
/// Its `Debug` shows the URL as [`Store::url`] does, without password or secret parameters.
#[derive(Clone)]
pub struct Store {
    db: Arc<Db>,
    secrets: Arc<crate::tables::clients::SecretCache>,
}

impl Store {
    /// Opens the store at `url` (`sqlite://path` creates the file if needed; `postgres://…`)
    /// and applies pending migrations.
    ///
    /// PostgreSQL URLs take libpq's TLS parameters: `sslmode` (`disable`, `prefer` (the
    /// default), `require`, `verify-ca`, `verify-full`), `sslrootcert`, `sslcert` and `sslkey`
    /// (see `docs/deployment.md`). As with libpq, `sslmode=require` with an `sslrootcert`
    /// verifies the server's certificate against it (as `verify-ca`). With the sqlx and rustls
    /// versions this crate builds with, `verify-ca` checks the host name too (launchbadge/sqlx#3793):
    /// it is as strict as `verify-full`.
    ///
    /// # Errors
    /// [`StoreErrorKind::UnsupportedUrl`], [`StoreErrorKind::Connect`],
    /// [`StoreErrorKind::Migration`], [`StoreErrorKind::Runtime`].
    ///
    /// # Security
    /// No error, `Debug` output or [`Store::url`] shows the URL's password or secret parameters
    /// (`password`, `sslkey`, …): they are replaced by `***`. Use `sslmode=verify-full` for a
    /// server reached over a network; `prefer` and `require` encrypt but do not authenticate it.
    ///
    /// [`StoreErrorKind::UnsupportedUrl`]: crate::StoreErrorKind::UnsupportedUrl
    /// [`StoreErrorKind::Connect`]: crate::StoreErrorKind::Connect
    /// [`StoreErrorKind::Migration`]: crate::StoreErrorKind::Migration
    /// [`StoreErrorKind::Runtime`]: crate::StoreErrorKind::Runtime
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, &StoreOptions::default())
    }

    /// [`Store::open`] with the pool sized and timed by `options`.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_with(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        Ok(Self {
            db: Arc::new(Db::open(url, options)?),
            secrets: Arc::new(crate::tables::clients::SecretCache::new()),
        })
    }

    /// The store's URL as it may be shown: the password and secret query parameters
    /// (`password`, `sslpassword`, `sslkey`, anything named like a key, token or secret) are
    /// replaced by `***`, and a URL that does not parse is shown as a placeholder naming only
    /// its scheme.
    pub fn url(&self) -> &str {
        self.db.url().as_str()
    }

    /// Runs `op` (any of this handle's methods, which wait for the database) on tokio's
    /// blocking thread pool and awaits it: the form an async handler uses, so that its worker
    /// thread never waits on the database.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("scopekey-run-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let store = scopekey_store::Store::open(&format!("sqlite://{}/s.db", dir.display()))?;
    /// use scopekey::revocation::RevocationTarget;
    ///
    /// async fn revoke_consumer(
    ///     store: &scopekey_store::Store,
    ///     name: &str,
    /// ) -> Result<i64, scopekey_store::StoreError> {
    ///     let target = RevocationTarget::Subject { subject: name.into(), issued_before: None };
    ///     let (number, _record) = store.run(move |s| s.revoke(target, "ops", "leaked")).await?;
    ///     Ok(number)
    /// }
    ///
    /// let runtime = tokio::runtime::Runtime::new()?;
    /// assert_eq!(runtime.block_on(revoke_consumer(&store, "ci-deploy"))?, 1);
    /// # drop(store); std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// The blocking methods stay for the CLI and for code outside a runtime. The request path
    /// needs neither: verification reads only the replica's memory, and the inventory, last-use
    /// and audit sinks queue their writes for the store's own runtime.
    ///
    /// # Errors
    /// What `op` returns, or [`StoreErrorKind::Runtime`](crate::StoreErrorKind::Runtime) when
    /// called outside a tokio runtime or when `op` panicked.
    pub async fn run<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            StoreError::new(
                crate::StoreErrorKind::Runtime,
                "Store::run must be awaited inside a tokio runtime",
            )
        })?;
        let store = self.clone();
        runtime
            .spawn_blocking(move || op(&store))
            .await
            .map_err(|e| {
                StoreError::new(
                    crate::StoreErrorKind::Runtime,
                    format!("the store operation did not finish: {e}"),
                )
            })?
    }

    /// The client secrets this handle (and its clones) has verified.
    pub(crate) fn secret_cache(&self) -> &crate::tables::clients::SecretCache {
        &self.secrets
    }

    pub(crate) fn backend(&self) -> &Backend {
        self.db.backend()
    }

    pub(crate) fn runtime(&self) -> Result<&tokio::runtime::Runtime, StoreError> {
        self.db.runtime()
    }

    /// Runs `f(backend)` on the store's runtime and waits for it.
    pub(crate) fn block<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Backend) -> DbFuture<T>,
    {
        self.db.block(f)
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match self.db.backend() {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => "postgres",
        };
        f.debug_struct("Store")
            .field("url", &self.url())
            .field("backend", &backend)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreErrorKind;

    #[test]
    fn unsupported_urls_are_refused() {
        let e = Store::open("mysql://u:secret@h/db").unwrap_err();
        assert_eq!(e.kind(), StoreErrorKind::UnsupportedUrl);
        assert!(!e.to_string().contains("secret"));
    }
}
