//! The [`Store`] handle: opening, its URL as shown, and its `Debug`. Its queries live with
//! their tables (`tables/`), each in an `impl Store` block of its own.
//!
//! May import: the crate root and `db`; no table.

use crate::StoreError;
use crate::db::{Backend, Db, DbFuture};
use std::sync::Arc;

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
        Ok(Self {
            db: Arc::new(Db::open(url)?),
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
            Backend::Sqlite(_) => "sqlite",
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
