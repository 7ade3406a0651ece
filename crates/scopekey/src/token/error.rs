//! Why a token was refused.

use std::borrow::Cow;

/// The reason a token was refused, for matching. One kind per reason.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VerifyErrorKind {
    /// Longer than [`MAX_TOKEN_LEN`](crate::danger::paseto::MAX_TOKEN_LEN); refused before any decoding.
    Oversized,
    /// Not a well-formed token: wrong number of parts, empty parts, non-canonical base64url,
    /// too short to hold a signature.
    Malformed,
    /// Another PASETO version or purpose (`v4.local.`, `v3.public.`, `V4.PUBLIC.`, …) or not a
    /// PASETO at all.
    UnsupportedFormat,
    /// The footer is missing, too large, not a flat JSON object with only a `kid`, or carries
    /// secret key material.
    InvalidFooter,
    /// A JWT header scopekey refuses: an `alg` other than `EdDSA` (`none`, `HS256`, …), a header
    /// that carries or points to a key (`jwk`, `jku`, `x5u`, `x5c`, …), `crit`, a `typ` other than
    /// `at+jwt`, no `kid`, or any other member.
    InvalidHeader,
    /// The key id is not in the key set, or the key is not yet valid or already retired.
    UnknownKey,
    /// The signature does not verify: an altered token, the wrong key, or a token bound to
    /// another environment or token type.
    BadSignature,
    /// The signed claims are not a valid claims object: invalid JSON, duplicate members, a
    /// missing, empty or ill-typed claim, or an invalid scope string.
    InvalidClaims,
    /// `exp` has passed (beyond the leeway).
    Expired,
    /// `nbf` or `iat` lies in the future (beyond the leeway).
    NotYetValid,
    /// `exp − iat` is longer than the verifier's maximum lifetime.
    LifetimeTooLong,
    /// `iss` is not the expected issuer.
    WrongIssuer,
    /// `aud` is not the expected audience.
    WrongAudience,
    /// `env` is not the expected environment.
    WrongEnvironment,
    /// The token, its family, its consumer, its signing key, or everything issued before a
    /// moment was revoked.
    Revoked,
    /// The revocation list cannot vouch for being current (a replica that lost its store for
    /// longer than its bound); refused to fail closed.
    RevocationStale,
    /// The key set cannot vouch for being current (a remote JWKS not fetched successfully
    /// within its bound, see [`KeyRing::set_fresh_until`](crate::KeyRing::set_fresh_until));
    /// refused to fail closed.
    KeysStale,
    /// The audit sink could not record the decision; refused to fail closed.
    AuditUnavailable,
    /// The token is limited to client networks (claim `net`) and the request came from outside
    /// them, or from an address the verifier could not establish (fail closed).
    NetworkNotAllowed,
    /// The token is limited to a number of uses (claim `uses`) and has had them all.
    UsesExhausted,
    /// The token is limited to a number of uses (claim `uses`) and its use could not be
    /// counted: the verifier has no usage counter, or the counter (its store) failed. Refused
    /// to fail closed.
    UsageUnavailable,
}

impl VerifyErrorKind {
    /// The kind in snake case, as written in audit events: `expired`, `bad_signature`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oversized => "oversized",
            Self::Malformed => "malformed",
            Self::UnsupportedFormat => "unsupported_format",
            Self::InvalidFooter => "invalid_footer",
            Self::InvalidHeader => "invalid_header",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::InvalidClaims => "invalid_claims",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::LifetimeTooLong => "lifetime_too_long",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::WrongEnvironment => "wrong_environment",
            Self::Revoked => "revoked",
            Self::RevocationStale => "revocation_stale",
            Self::AuditUnavailable => "audit_unavailable",
            Self::NetworkNotAllowed => "network_not_allowed",
            Self::UsesExhausted => "uses_exhausted",
            Self::UsageUnavailable => "usage_unavailable",
            Self::KeysStale => "keys_stale",
        }
    }
}

/// A token that was refused, with the reason.
///
/// The message says what was wrong and, where it helps, what to do. It never contains the
/// token or key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct VerifyError {
    kind: VerifyErrorKind,
    message: Cow<'static, str>,
}

impl VerifyError {
    pub(crate) fn new(kind: VerifyErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The reason, for matching.
    pub fn kind(&self) -> VerifyErrorKind {
        self.kind
    }

    pub(crate) fn malformed(why: &'static str) -> Self {
        Self::new(VerifyErrorKind::Malformed, why)
    }

    pub(crate) fn claims(why: impl Into<Cow<'static, str>>) -> Self {
        Self::new(VerifyErrorKind::InvalidClaims, why)
    }
}

/// What went wrong in a store behind one of the library's traits, for matching.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendErrorKind {
    /// The store did not answer (down, timed out, a query failed). Callers fail closed.
    Unavailable,
    /// The store refused a write that conflicts with what it holds (an id already in use).
    Conflict,
}

/// A store behind [`Inventory`](crate::inventory::Inventory),
/// [`UsageCounter`](crate::usage::UsageCounter),
/// [`RefreshFamilies`](crate::refresh::RefreshFamilies) or
/// [`ConsumerDirectory`](crate::consumer::ConsumerDirectory) could not do what was asked. The
/// caller fails closed: the token is withheld, the exchange refused.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    kind: BackendErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl BackendError {
    /// A store that did not answer ([`BackendErrorKind::Unavailable`]), with its cause.
    pub fn new(
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind: BackendErrorKind::Unavailable,
            message: message.into(),
            source,
        }
    }

    /// A write the store refused as conflicting ([`BackendErrorKind::Conflict`]).
    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            kind: BackendErrorKind::Conflict,
            message: message.into(),
            source: None,
        }
    }

    /// Why, for matching.
    pub fn kind(&self) -> BackendErrorKind {
        self.kind
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::VerifyErrorKind;

    /// Every kind, in declaration order.
    const ALL: [VerifyErrorKind; 21] = [
        VerifyErrorKind::Oversized,
        VerifyErrorKind::Malformed,
        VerifyErrorKind::UnsupportedFormat,
        VerifyErrorKind::InvalidFooter,
        VerifyErrorKind::InvalidHeader,
        VerifyErrorKind::UnknownKey,
        VerifyErrorKind::BadSignature,
        VerifyErrorKind::InvalidClaims,
        VerifyErrorKind::Expired,
        VerifyErrorKind::NotYetValid,
        VerifyErrorKind::LifetimeTooLong,
        VerifyErrorKind::WrongIssuer,
        VerifyErrorKind::WrongAudience,
        VerifyErrorKind::WrongEnvironment,
        VerifyErrorKind::Revoked,
        VerifyErrorKind::RevocationStale,
        VerifyErrorKind::AuditUnavailable,
        VerifyErrorKind::NetworkNotAllowed,
        VerifyErrorKind::UsesExhausted,
        VerifyErrorKind::UsageUnavailable,
        VerifyErrorKind::KeysStale,
    ];

    /// Fails to compile when a kind is added, until [`ALL`] (and so the guides' check) has it.
    fn position(kind: VerifyErrorKind) -> usize {
        match kind {
            VerifyErrorKind::Oversized => 0,
            VerifyErrorKind::Malformed => 1,
            VerifyErrorKind::UnsupportedFormat => 2,
            VerifyErrorKind::InvalidFooter => 3,
            VerifyErrorKind::InvalidHeader => 4,
            VerifyErrorKind::UnknownKey => 5,
            VerifyErrorKind::BadSignature => 6,
            VerifyErrorKind::InvalidClaims => 7,
            VerifyErrorKind::Expired => 8,
            VerifyErrorKind::NotYetValid => 9,
            VerifyErrorKind::LifetimeTooLong => 10,
            VerifyErrorKind::WrongIssuer => 11,
            VerifyErrorKind::WrongAudience => 12,
            VerifyErrorKind::WrongEnvironment => 13,
            VerifyErrorKind::Revoked => 14,
            VerifyErrorKind::RevocationStale => 15,
            VerifyErrorKind::AuditUnavailable => 16,
            VerifyErrorKind::NetworkNotAllowed => 17,
            VerifyErrorKind::UsesExhausted => 18,
            VerifyErrorKind::UsageUnavailable => 19,
            VerifyErrorKind::KeysStale => 20,
        }
    }

    #[test]
    fn all_lists_every_kind_once() {
        for (i, kind) in ALL.iter().enumerate() {
            assert_eq!(position(*kind), i, "{kind:?}");
        }
    }

    /// docs/tokens.md's "Errors" names every kind, and docs/audit.md every `reason` of a
    /// `refused` event.
    #[test]
    fn the_guides_name_every_kind() {
        let tokens = include_str!("../../../../docs/tokens.md");
        let errors = tokens.split_once("\n## Errors\n").unwrap().1;
        let audit = include_str!("../../../../docs/audit.md");
        let refused = audit
            .lines()
            .find(|l| l.starts_with("| `refused` |"))
            .unwrap();
        for kind in ALL {
            assert!(
                errors.contains(&format!("`{kind:?}`")),
                "docs/tokens.md, Errors: {kind:?} missing"
            );
            assert!(
                refused.contains(&format!("`{}`", kind.as_str())),
                "docs/audit.md, refused: {} missing",
                kind.as_str()
            );
        }
    }
}
