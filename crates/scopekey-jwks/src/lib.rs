//! # scopekey-jwks
//!
//! Remote key sets for [scopekey] verifiers: a [`KeyRing`] that follows another issuer's JWKS
//! URL (the `scopekey-server` token service's `/.well-known/jwks.json`, or any JWKS of Ed25519
//! keys, RFC 8037).
//!
//! - **Fetched at start**: [`RemoteKeySet::start`] fails, with a typed
//!   [`RemoteKeySetError`], unless the first fetch yields a usable key set.
//! - **Refreshed in the background**, as often as the response's `Cache-Control: max-age`
//!   says, kept within a minimum and a maximum interval ([`RemoteKeySetConfig`]); `no-cache` and
//!   `no-store` mean "as often as the minimum interval allows".
//! - **Refreshed on an unknown key id** ([`RemoteKeySet::refresh`], or the
//!   [`RefreshHandle`] given to `scopekey-tower`'s `RefreshingAuthLayer`), with a rate limit:
//!   concurrent callers share one fetch, and at most one fetch is made per minimum interval
//!   however many unknown ids arrive.
//! - **Never replaced by a bad copy**: an empty, malformed, oversized or non-Ed25519 JWKS, an
//!   error status or a timeout keeps the last good set, and [`RemoteKeySet::status`] says what
//!   went wrong.
//! - **Fails closed**: once the last good copy is older than the staleness bound, every
//!   verification with the ring is refused as
//!   [`VerifyErrorKind::KeysStale`](scopekey::VerifyErrorKind::KeysStale) (503 in the tower
//!   layer) until a fetch succeeds again.
//!
//! ```no_run
//! use scopekey::{Verifier, VerifierConfig};
//! use scopekey_jwks::{RemoteKeySet, RemoteKeySetConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = RemoteKeySet::start(RemoteKeySetConfig::new(
//!     "https://auth.example/.well-known/jwks.json",
//! )?)
//! .await?;
//! let verifier = Verifier::with_key_ring(
//!     keys.ring().clone(),
//!     VerifierConfig::new("https://auth.example", "https://api.example", "production".parse()?),
//! )?;
//! # let _ = verifier;
//! # Ok(()) }
//! ```
//!
//! docs/axum.md ("Remote key sets") shows it behind the axum and tower layers.
//!
//! Needs a tokio runtime (with its timer): the refresher is a task spawned by
//! [`RemoteKeySet::start`], stopped when the [`RemoteKeySet`] is dropped.

mod config;
mod error;
mod fetch;
mod refresher;

pub use config::RemoteKeySetConfig;
pub use error::{RemoteKeySetError, RemoteKeySetErrorKind};
pub use refresher::{RefreshHandle, RemoteKeySet, RemoteKeySetStatus};

#[doc(no_inline)]
pub use scopekey::KeyRing;
