//! Why a remote key set could not be configured, started or refreshed.

use scopekey::jwks::JwksErrorKind;

/// What went wrong, for matching.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RemoteKeySetErrorKind {
    /// A configuration value was refused (the message says which and why).
    InvalidConfig,
    /// The HTTP client could not be built (TLS set-up).
    Client,
    /// The JWKS URL did not answer: connection refused or reset, DNS, TLS, or the fetch took
    /// longer than its timeout.
    Unreachable,
    /// The server answered with a status other than 200 (a redirect included: redirects are
    /// not followed).
    Status(u16),
    /// The body is longer than [`MAX_JWKS_LEN`](scopekey::jwks::MAX_JWKS_LEN); reading stopped
    /// there.
    TooLarge,
    /// The body is not a JWKS scopekey accepts: not UTF-8, not JSON, no key, a key that is not
    /// Ed25519, private key material, a `kid` that is not the key's id.
    InvalidJwks(JwksErrorKind),
}

/// A remote key set that could not be configured, started or refreshed. The message says what
/// happened; it holds no key material (a JWKS is public) and no URL credentials (refused).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RemoteKeySetError {
    kind: RemoteKeySetErrorKind,
    message: String,
}

impl RemoteKeySetError {
    pub(crate) fn new(kind: RemoteKeySetErrorKind, message: String) -> Self {
        Self { kind, message }
    }

    /// What went wrong, for matching.
    pub fn kind(&self) -> RemoteKeySetErrorKind {
        self.kind
    }
}
