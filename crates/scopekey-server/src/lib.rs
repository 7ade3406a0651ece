//! The scopekey token service: standard OAuth 2.0 endpoints over a scopekey store, as an
//! embeddable axum [`Router`](axum::Router), so that consumers in any language get their
//! tokens from a standard client library.
//!
//! - `GET /.well-known/oauth-authorization-server`: RFC 8414 metadata.
//! - `GET /.well-known/jwks.json`: the store's public keys as a JWKS.
//! - `POST /oauth/token`: RFC 6749 `client_credentials`, the client authenticated by
//!   `client_secret_basic`, `client_secret_post` or `private_key_jwt` (RFC 7523, EdDSA, the
//!   consumer's registered key); `scope` a subset of the consumer's ceiling (omitted: its
//!   read-only part, broad scopes left out); `resource` (RFC 8707) one of the configured
//!   audiences. With [`ServerConfig::refresh_tokens`], also a refresh token, and
//!   `grant_type=refresh_token` (RFC 6749 §6): rotated on every use, a replayed one revoking its
//!   whole family. RFC 8693 token exchange: an access token of the client's traded for a
//!   narrower one that never outlives it and is revoked with it ([`lineage_of`]).
//! - `POST /oauth/introspect`: RFC 7662, for authenticated clients, about their own tokens.
//! - `POST /oauth/revoke`: RFC 7009, a client revoking its own token (with its family, or the
//!   tokens exchanged from it).
//!
//! Errors are RFC 6749 §5.2 JSON. Every form is read strictly (content type, size,
//! encoding, no repeated parameter) and a refused request changes nothing. Repeated failed
//! authentications from one source (or of one client) are answered `429` for a while
//! without a full secret check, except for a secret this instance has verified before;
//! secrets are checked (argon2id) off the async threads, a bounded number at once. See
//! `docs/server.md`.

mod admin;
mod config;
mod console;
mod endpoints;
mod form;
mod grants;
mod metadata;
mod oauth_error;
mod replay;
mod service;
mod throttle;

pub use admin::ADMIN_SCOPES;
pub use config::{MAX_AUDIENCES, MAX_BODY_LEN, ServerConfig, ServerError, ServerErrorKind};
pub use endpoints::{INTROSPECT_PATH, REVOKE_PATH, TOKEN_PATH};
pub use grants::lineage_of;
pub use metadata::{JWKS_PATH, METADATA_PATH};
pub use oauth_error::OAuthErrorCode;
pub use service::TokenService;
