//! # scopekey
//!
//! Small, scoped, short-lived API tokens. A token says "read on projects, write on comments"
//! and nothing more; read-only is the default posture and every escalation is explicit. Tokens
//! are PASETO v4.public (Ed25519, `verify_strict`), bound to one issuer, audience and
//! environment, and expire in minutes.
//!
//! ## Quick start: mint → verify → authorize
//!
//! ```
//! use scopekey::{Action, Issuer, KeySet, Resource, SigningKey, TokenRequest, Verifier, VerifierConfig};
//! use std::time::Duration;
//!
//! // The issuer holds the secret key; services hold only the public key set.
//! let key = SigningKey::generate()?;
//! let keys = KeySet::single(key.public_key().clone());
//! let issuer = Issuer::new(key, "https://auth.example", "production".parse()?)?;
//!
//! // One token per consumer, with explicit scopes and a short lifetime.
//! let minted = issuer.issue(
//!     &TokenRequest::new("billing-sync", "https://api.example", "projects:read projects/42/comments:write".parse()?)
//!         .ttl(Duration::from_secs(10 * 60))
//!         .owner("team-billing")
//!         .purpose("nightly comment import")
//!         .escalate(), // anything beyond read is a deliberate escalation
//! )?;
//!
//! // The service verifies (signature, key id, environment, issuer, audience, times)...
//! let verifier = Verifier::new(
//!     keys,
//!     VerifierConfig::new("https://auth.example", "https://api.example", "production".parse()?),
//! )?;
//! let grant = verifier.verify(minted.token().as_str())?;
//!
//! // ...and authorizes the specific action on the specific resource at the point of action.
//! let project = Resource::from_segments(["projects", "42"])?;
//! grant.authorize(&project, &Action::read())?;
//! grant.authorize(&project.child("comments")?, &Action::write())?;
//! let denied = grant.authorize(&project, &Action::delete()).unwrap_err();
//! assert_eq!(denied.required_scope().to_string(), "projects/42:delete");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Concepts
//!
//! - [`Scope`] / [`ScopeSet`]: `resource:action` grants. A grant on a resource covers its
//!   descendants, for its own action only. See [`ScopeSet`] and `docs/scopes.md`.
//! - [`SigningKey`], [`PublicKey`], [`KeyId`], [`KeySet`]: Ed25519 keys as PASERK, identified by
//!   `k4.pid`; a key set holds several keys with validity windows for rotation.
//! - [`Issuer`] and [`TokenRequest`]: mint one token for one consumer.
//! - [`Verifier`] and [`Grant`]: verification returns a grant, which only the verifier can
//!   create; handlers take it as proof and call [`Grant::authorize`].
//! - [`VerifyError`] with [`VerifyErrorKind`]: one kind per reason a token is refused.
//! - [`revocation`]: revoke a token, a refresh family, a consumer, everything issued before a
//!   moment, or a signing key; checked in memory on every verification, failing closed when
//!   stale. See `docs/revocation-playbook.md`.
//! - [`refresh`]: single-use refresh tokens rotated on every exchange; reuse revokes the family.
//! - [`audit`]: every decision as a structured event; sinks fail closed. See `docs/audit.md`.
//! - [`inventory`]: every issued token with owner, purpose, scopes and last use; pruning.
//! - [`consumer`]: registered consumers with ceilings, and roles; see `docs/consumers.md`.
//! - [`Clock`]: time is injected, so tests move it without sleeping.
//!
//! The wire format and its environment binding are described in `docs/tokens.md`; the
//! low-level format functions are in [`danger::paseto`] and [`danger::paserk`].
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `jwt` | no | JWT access tokens (JWS compact, EdDSA, `typ` at+jwt) next to PASETO: `TokenFormat::Jwt` for the issuer, JWT verification in the same `Verifier::verify` for a verifier that opts in (`VerifierConfig::accept_jwt(true)`), and JWKS export and import (`jwks`, `KeySet::to_jwks`, `KeySet::from_jwks`) |
//! | `tracing` | no | `audit::TracingSink`, audit events as `tracing` events |
//! | `test-util` | no | `Grant::for_tests`: a grant from scopes, without keys, to unit-test handler policy; for `[dev-dependencies]` only, and absent from release builds whatever the features |
//!
//! ## Non-goals
//!
//! - No policy language: a token's power is its scope set, checked by exact set semantics.
//! - No normalisation of look-alike or differently-cased input: such input is refused.
//! - No symmetric (`v4.local`) tokens and no other algorithms: one format, one signature scheme.

#![cfg_attr(docsrs, feature(doc_cfg))]

// The layers, lowest first; each imports only those above it in this list (see
// docs/architecture.md). The public modules below are the paved path over them.
mod codec;
mod key;
mod lifecycle;
mod scope;
mod token;

mod clock;
pub mod danger;

pub mod audit;
pub mod inventory;
pub mod revocation;
pub mod usage;
#[cfg(feature = "jwt")]
pub use key::jwks;
pub use lifecycle::{consumer, refresh};
pub use token::cache;
pub use token::custom;
#[cfg(feature = "jwt")]
pub use token::jwt;
pub use token::requirement;
pub use token::requirement::{Requirement, RequirementTemplate};
pub use token::trust;
pub use token::trust::TrustedIssuer;

pub use clock::{Clock, ManualClock, SystemClock};
pub use key::{
    KeyEntry, KeyError, KeyErrorKind, KeyId, KeyRing, KeySet, PublicKey, SignatureError, SigningKey,
};
pub use scope::{
    Action, MAX_ACTION_LEN, MAX_RESOURCE_LEN, MAX_SCOPE_STRING_LEN, MAX_SCOPES, MAX_SEGMENT_LEN,
    MAX_SEGMENTS, Resource, Scope, ScopeError, ScopeErrorKind, ScopeSet, is_valid_scope_literal,
};
pub use token::claims::Claims;
pub use token::error::{BackendError, BackendErrorKind, VerifyError, VerifyErrorKind};
pub use token::grant::{Denied, DenyReason, Grant};
pub use token::ids::{
    Environment, FamilyId, InvalidId, InvalidIdKind, MAX_TEXT_LEN, TokenId, TokenType,
};
pub use token::issuer::{
    BearerToken, DEFAULT_MAX_TTL, DEFAULT_TTL, IssueError, IssueErrorKind, Issuer, Minted,
    TokenFormat, TokenRequest, UnknownFormat, UnknownFormatKind,
};
pub use token::network::{InvalidNetwork, InvalidNetworkKind, MAX_NETWORKS, Network};
pub use token::verifier::{
    ConfigError, ConfigErrorKind, DEFAULT_LEEWAY, MAX_FOOTER_LEN, MAX_LEEWAY, Verifier,
    VerifierConfig,
};

// The user guides' code blocks are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/scopes.md")]
mod docs_scopes_md {}

#[cfg(doctest)]
#[doc = include_str!("../../../docs/tokens.md")]
mod docs_tokens_md {}

#[cfg(doctest)]
#[doc = include_str!("../../../docs/audit.md")]
mod docs_audit_md {}

#[cfg(doctest)]
#[doc = include_str!("../../../docs/revocation-playbook.md")]
mod docs_revocation_playbook_md {}

#[cfg(doctest)]
#[doc = include_str!("../../../docs/consumers.md")]
mod docs_consumers_md {}

#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
mod readme_md {}

// These have no Rust blocks today (shell, text, other languages); included so that one added
// later is compiled too. docs/axum.md is included by scopekey-axum, docs/deployment.md by
// scopekey-store.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/cli.md")]
mod docs_cli_md {}

#[cfg(doctest)]
#[doc = include_str!("../../../docs/interop.md")]
mod docs_interop_md {}

#[cfg(doctest)]
#[doc = include_str!("../../../docs/performance.md")]
mod docs_performance_md {}

#[cfg(doctest)]
#[doc = include_str!("../../../docs/threats.md")]
mod docs_threats_md {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    /// The feature table above names every feature of the manifest.
    #[test]
    fn the_feature_table_names_every_feature() {
        let manifest = include_str!("../Cargo.toml");
        let features = manifest
            .split_once("\n[features]\n")
            .unwrap()
            .1
            .split("\n[")
            .next()
            .unwrap();
        let docs = include_str!("lib.rs");
        let mut n = 0;
        for line in features.lines() {
            if let Some((name, _)) = line.split_once(" = ") {
                if name == "default" {
                    continue;
                }
                n += 1;
                assert!(
                    docs.contains(&format!("//! | `{name}` | no |")),
                    "feature `{name}` missing from the table in lib.rs"
                );
            }
        }
        assert!(n >= 3, "{features}");
    }
}
