//! The lowest layer: the connection pool ([`Backend`]), the runtime that drives it ([`Db`],
//! [`run_on`]), the [`on!`] macro, change notifications (PostgreSQL's channel, SQLite's
//! [`CommitWatch`]), migrations and time helpers.
//!
//! May import: the crate root ([`StoreError`], [`StoreErrorKind`]) and `redact`. It knows no
//! table: `tables/`, `store.rs`, `replica.rs` and `sinks.rs` build on it, never the reverse.

mod connect;
mod migrate;
#[cfg(feature = "sqlite")]
mod watch;

#[cfg(feature = "sqlite")]
pub(crate) use watch::CommitWatch;

use crate::redact::RedactedUrl;
use crate::{StoreError, StoreErrorKind};
#[cfg(feature = "postgres")]
use sqlx::postgres::PgPool;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::SqlitePool;
use std::future::Future;
use std::pin::Pin;
use time::OffsetDateTime;

/// A boxed, sendable database future. Boxing at a concrete site sidesteps rustc's
/// higher-ranked `Send` inference limits with sqlx transactions in spawned futures.
pub(crate) type DbFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>;

/// The channel PostgreSQL notifications go to on every change.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) const CHANNEL: &str = "scopekey_changes";

/// The pool of whichever database the URL named.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
}

/// Runs the same body against whichever pool the backend holds. Placeholders are written
/// `$1`, `$2`, … in order of first appearance, which both drivers bind positionally.
macro_rules! on {
    ($backend:expr, $pool:ident => $body:expr) => {
        match $backend {
            #[cfg(feature = "sqlite")]
            $crate::db::Backend::Sqlite($pool) => $body,
            #[cfg(feature = "postgres")]
            $crate::db::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on;

/// Owns the store's runtime; shuts it down without blocking, so dropping a store inside an
/// async context never panics.
#[derive(Debug)]
struct RuntimeHolder(Option<tokio::runtime::Runtime>);

impl Drop for RuntimeHolder {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// An open, migrated database: its pool, the runtime its queries run on, and its URL as it
/// may be shown.
#[derive(Debug)]
pub(crate) struct Db {
    backend: Backend,
    runtime: RuntimeHolder,
    /// The URL without its secrets, for messages (and to scrub them from errors).
    url: RedactedUrl,
}

impl Db {
    /// Starts a runtime, connects to `url` and applies pending migrations; every error is
    /// scrubbed of the URL's secrets.
    pub(crate) fn open(url: &str, options: &crate::StoreOptions) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("scopekey-store")
            .enable_all()
            .build()
            .map_err(|e| {
                StoreError::new(StoreErrorKind::Runtime, "cannot start the store runtime")
                    .with_source(e)
            })?;
        let shown = RedactedUrl::new(url);
        let owned = url.to_owned();
        let for_connect = shown.clone();
        let options = options.clone();
        let fut: DbFuture<Backend> = Box::pin(async move {
            let backend = connect::connect(&owned, &for_connect, &options).await?;
            migrate::migrate(&backend).await?;
            Ok(backend)
        });
        let backend = run_on(&runtime, fut)
            .and_then(|r| r)
            .map_err(|e| e.redacted(&shown))?;
        Ok(Self {
            backend,
            runtime: RuntimeHolder(Some(runtime)),
            url: shown,
        })
    }

    /// The URL without its secrets.
    pub(crate) fn url(&self) -> &RedactedUrl {
        &self.url
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.backend
    }

    pub(crate) fn runtime(&self) -> Result<&tokio::runtime::Runtime, StoreError> {
        self.runtime
            .0
            .as_ref()
            .ok_or_else(|| StoreError::new(StoreErrorKind::Runtime, "store runtime is gone"))
    }

    /// Runs `f(backend)` on the runtime and waits for it.
    pub(crate) fn block<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Backend) -> DbFuture<T>,
    {
        let fut = f(self.backend.clone());
        run_on(self.runtime()?, fut)
            .and_then(|r| r)
            .map_err(|e| e.redacted(&self.url))
    }
}

/// Spawns `fut` on `rt` and waits on a plain channel: safe from any thread, including from
/// inside another runtime (where it blocks that thread for the duration).
pub(crate) fn run_on<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    fut: impl Future<Output = T> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .map_err(|_| StoreError::new(StoreErrorKind::Runtime, "the store runtime stopped"))
}

/// Tells PostgreSQL replicas that `what` changed (SQLite replicas poll).
#[cfg_attr(
    not(feature = "postgres"),
    allow(clippy::unused_async, unused_variables)
)]
pub(crate) async fn notify(b: &Backend, what: &str) -> Result<(), StoreError> {
    #[cfg(feature = "postgres")]
    #[allow(irrefutable_let_patterns)]
    if let Backend::Postgres(pool) = b {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(what)
            .execute(pool)
            .await
            .map_err(StoreError::query)?;
    }
    Ok(())
}

pub(crate) fn now_seconds() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

pub(crate) fn at(t: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp(t)
        .map_err(|_| StoreError::new(StoreErrorKind::Corrupt, format!("time {t} out of range")))
}
