//! # scopekey-store
//!
//! Durable and shared state for [scopekey]: revocations (with who, when and why), the public key
//! set, the token inventory, refresh families and the audit trail, in one store chosen by URL:
//!
//! - `sqlite://path/to/file.db`: the embedded default, no server to run;
//! - `postgres://user:password@host/db`: for deployments with many instances, over TLS with
//!   `?sslmode=verify-full&sslrootcert=/path/ca.pem` (rustls; see `docs/deployment.md`).
//!
//! URLs never show their secrets: [`Store::url`], `Debug` and errors print the password and
//! secret parameters as `***`.
//!
//! Versioned migrations ship with the crate and are applied on [`Store::open`].
//!
//! The hot path never waits on the database: a [`Replica`] keeps an in-memory
//! [`RevocationList`](scopekey::revocation::RevocationList) and [`KeyRing`](scopekey::KeyRing)
//! current in the background, reading only the revocations after the last one it applied
//! (PostgreSQL pushes changes with `LISTEN/NOTIFY`; a SQLite replica asks every 10 ms whether
//! anything was committed, and reads only then; a cheap periodic count catches anything
//! missed), and verification fails closed when the replica has not confirmed it is current
//! within its bound (30 s by default). The one exception is a use-limited token (claim
//! `uses`): its uses are counted in the store by [`Store::usage_counter`], one atomic statement
//! per use, so that every instance shares the count.
//!
//! ```
//! use scopekey::{KeySet, SigningKey, VerifierConfig};
//! use scopekey::revocation::{RevocationTarget, Revoker};
//! use scopekey_store::{Replica, ReplicaOptions, Store};
//!
//! let dir = std::env::temp_dir().join(format!("scopekey-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let store = Store::open(&format!("sqlite://{}/state.db", dir.display()))?;
//!
//! let key = SigningKey::generate()?;
//! store.add_key(key.public_key(), None)?; // every replica will trust it
//! let replica = Replica::start(&store, ReplicaOptions::default())?;
//! let verifier = replica.verifier(VerifierConfig::new("iss", "aud", "production".parse()?))?;
//!
//! replica.revoke(
//!     RevocationTarget::Subject { subject: "ci".into(), issued_before: None },
//!     "alice", "leaked",
//! )?;
//! # drop((verifier, replica, store)); std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The API is blocking: the store runs its own small tokio runtime, so it can be used from
//! plain threads, CLIs and tests. From async code, call it inside `spawn_blocking`.

// The deployment guide's code blocks are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/deployment.md")]
mod docs_deployment_md {}

// The layers, lowest first; each imports only from those above it in this list (see each
// module's doc): `redact` and `audit_query` (plain values), `db` (pool, runtime, migrations),
// `store` (the handle), `tables` (queries and row mapping), then `replica`, `retention` and `sinks`.
mod audit_query;
mod db;
mod redact;
mod replica;
mod retention;
mod sinks;
mod store;
mod tables;

pub use audit_query::{AuditQuery, MAX_AUDIT_PAGE};
pub use replica::{Replica, ReplicaOptions};
pub use retention::{
    MAX_SWEEP_BATCH, MIN_AUDIT_RETENTION, MIN_REVOCATION_MARGIN, RetentionPolicy, SweepReport,
};
pub use sinks::{StoreAuditSink, StoreFamilies, StoreInventory, StoreUsageCounter};
pub use store::{MAX_POOL_CONNECTIONS, MAX_POOL_TIMEOUT, Store, StoreOptions};
pub use tables::clients::{CLIENT_SECRET_PREFIX, ClientSecret, MAX_CLIENT_SECRET_LEN, SecretCheck};
pub use tables::replays::StoreReplayCache;

use std::fmt;

/// What went wrong in the store.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreErrorKind {
    /// The URL is not `sqlite://…` or `postgres://…`, or it carries a secret-looking parameter
    /// the driver would ignore (such as libpq's `sslpassword`).
    UnsupportedUrl,
    /// The database could not be reached.
    Connect,
    /// A migration failed.
    Migration,
    /// A query failed.
    Query,
    /// A row does not parse: it is reported, never treated as absent.
    Corrupt,
    /// The store's runtime is gone or could not be started.
    Runtime,
    /// The input was refused before reaching the database.
    InvalidInput,
    /// The operation names a consumer that is not registered.
    UnknownConsumer,
    /// A sweep could not write its audit export file (nothing more was deleted).
    Export,
}

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    pub(crate) fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    pub(crate) fn query(e: sqlx::Error) -> Self {
        let kind = match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                StoreErrorKind::Connect
            }
            _ => StoreErrorKind::Query,
        };
        Self::new(kind, format!("database error: {e}")).with_source(e)
    }

    pub(crate) fn corrupt(table: &str, key: impl fmt::Display, why: impl fmt::Display) -> Self {
        Self::new(
            StoreErrorKind::Corrupt,
            format!("{table} row {key} does not parse: {why}"),
        )
    }

    /// The error with every secret of `url` scrubbed from its message and, where the source
    /// chain would print one, with the chain replaced by a scrubbed copy of its texts.
    pub(crate) fn redacted(mut self, url: &redact::RedactedUrl) -> Self {
        self.message = url.scrub(&self.message);
        if let Some(source) = self.source.take() {
            self.source = Some(if redact::ScrubbedError::needed(&*source, url) {
                Box::new(redact::ScrubbedError::new(&*source, url))
            } else {
                // Nothing to hide: keep the original (a caller may downcast it).
                source
            });
        }
        self
    }

    /// What went wrong, for matching.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
