//! Opening the pool for a `sqlite://` or `postgres://` URL, with libpq's TLS semantics.
//!
//! May import: the crate root, `redact` and its parent `db`; no table.

use super::Backend;
#[cfg(feature = "postgres")]
use crate::redact;
use crate::redact::RedactedUrl;
use crate::{StoreError, StoreErrorKind};
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use std::str::FromStr;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use std::time::Duration;

pub(super) async fn connect(
    url: &str,
    shown: &RedactedUrl,
    o: &crate::StoreOptions,
) -> Result<Backend, StoreError> {
    if url.starts_with("sqlite:") {
        #[cfg(feature = "sqlite")]
        return sqlite(url, shown, o).await;
        #[cfg(not(feature = "sqlite"))]
        return Err(not_built(shown, "sqlite"));
    }
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        #[cfg(feature = "postgres")]
        return postgres(url, shown, o).await;
        #[cfg(not(feature = "postgres"))]
        return Err(not_built(shown, "postgres"));
    }
    Err(StoreError::new(
        StoreErrorKind::UnsupportedUrl,
        format!(
            "unsupported store URL {}: use sqlite://PATH or postgres://USER@HOST/DB",
            shown.as_str()
        ),
    ))
}

/// A URL of a driver this build left out (the crate's `sqlite` and `postgres` features).
#[cfg(not(all(feature = "sqlite", feature = "postgres")))]
fn not_built(shown: &RedactedUrl, driver: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::UnsupportedUrl,
        format!(
            "cannot open {}: this build of scopekey-store has no {driver} support (enable \
             its `{driver}` feature)",
            shown.as_str()
        ),
    )
}

/// The error for a failed connection, its text scrubbed of the URL's secrets.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn connect_err(shown: &RedactedUrl) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |e: sqlx::Error| {
        let text = e.to_string();
        let hint = if matches!(e, sqlx::Error::Tls(_)) || text.contains("certificate") {
            " (check that `sslrootcert` is the CA that signed the server's certificate and, \
             for verify-full, that the URL's host is a name or address the certificate carries)"
        } else {
            ""
        };
        StoreError::new(
            StoreErrorKind::Connect,
            format!(
                "cannot connect to {}: {}{hint}",
                shown.as_str(),
                shown.scrub(&text)
            ),
        )
        .with_source(e)
    }
}

#[cfg(feature = "sqlite")]
async fn sqlite(
    url: &str,
    shown: &RedactedUrl,
    o: &crate::StoreOptions,
) -> Result<Backend, StoreError> {
    let connect_err = connect_err(shown);
    let options = SqliteConnectOptions::from_str(url)
        .map_err(&connect_err)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(o.busy_timeout.unwrap_or(Duration::from_secs(10)));
    let pool = SqlitePoolOptions::new()
        .max_connections(o.max_connections.unwrap_or(4))
        .acquire_timeout(o.acquire_timeout.unwrap_or(Duration::from_secs(10)))
        .connect_with(options)
        .await
        .map_err(&connect_err)?;
    Ok(Backend::Sqlite(pool))
}

#[cfg(feature = "postgres")]
async fn postgres(
    url: &str,
    shown: &RedactedUrl,
    o: &crate::StoreOptions,
) -> Result<Backend, StoreError> {
    let connect_err = connect_err(shown);
    let parsed = url::Url::parse(url).ok();
    if let Some(name) = parsed.as_ref().and_then(redact::ignored_secret_param) {
        return Err(StoreError::new(
            StoreErrorKind::UnsupportedUrl,
            format!(
                "the store URL parameter `{name}` is not supported (the PostgreSQL driver \
                 would ignore it): remove it from {}; a client key (`sslkey`) must be \
                 unencrypted and readable only by this service",
                shown.as_str()
            ),
        ));
    }
    let mut options = PgConnectOptions::from_str(url)
        .map_err(&connect_err)?
        .application_name("scopekey");
    // libpq: "if a root CA file exists, sslmode=require behaves like verify-ca". sqlx
    // alone would accept any certificate; follow libpq, which fails closed.
    if matches!(options.get_ssl_mode(), PgSslMode::Require)
        && (parsed.as_ref().is_some_and(redact::has_root_cert)
            || std::env::var_os("PGSSLROOTCERT").is_some_and(|v| !v.is_empty()))
    {
        options = options.ssl_mode(PgSslMode::VerifyCa);
    }
    let pool = PgPoolOptions::new()
        .max_connections(o.max_connections.unwrap_or(8))
        .acquire_timeout(o.acquire_timeout.unwrap_or(Duration::from_secs(5)))
        .connect_with(options)
        .await
        .map_err(&connect_err)?;
    Ok(Backend::Postgres(pool))
}
