//! What a revocation is, and the check the verifier asks on every request.
//!
//! The verifier calls [`RevocationCheck`]; the in-memory list and the store replica implement
//! it in the layers above. The public paths are in [`crate::revocation`].

use crate::codec::rfc3339;
use crate::key::KeyId;
use crate::token::claims::{Claims, FamilyId, TokenId, check_text};
use std::fmt;
use std::sync::Arc;
use time::OffsetDateTime;

/// What a revocation covers.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationTarget {
    /// One token, by `jti`. With its expiry the entry is dropped once the token has expired
    /// anyway; without it, after the list's retention.
    Token {
        /// The token id.
        token_id: TokenId,
        /// When the token expires, if known.
        expires_at: Option<OffsetDateTime>,
    },
    /// Every token of a refresh family (`fam`), access and refresh alike.
    Family(FamilyId),
    /// Every token of a consumer (`sub`); with `issued_before`, only those issued before it.
    Subject {
        /// The consumer.
        subject: String,
        /// Only tokens with `iat` before this instant; `None`: all of them, including future
        /// ones, until the consumer is re-enabled.
        issued_before: Option<OffsetDateTime>,
    },
    /// Every token issued before an instant (mass revocation).
    IssuedBefore(OffsetDateTime),
    /// Every token signed by a key (a compromised key).
    Key(KeyId),
}

impl RevocationTarget {
    /// A short machine-readable name: `token`, `family`, `subject`, `issued_before`, `key`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Token { .. } => "token",
            Self::Family(_) => "family",
            Self::Subject { .. } => "subject",
            Self::IssuedBefore(_) => "issued_before",
            Self::Key(_) => "key",
        }
    }
}

impl fmt::Display for RevocationTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token { token_id, .. } => write!(f, "token {token_id}"),
            Self::Family(fam) => write!(f, "family {fam}"),
            Self::Subject {
                subject,
                issued_before: None,
            } => write!(f, "every token of consumer {subject:?}"),
            Self::Subject {
                subject,
                issued_before: Some(t),
            } => write!(
                f,
                "tokens of consumer {subject:?} issued before {}",
                rfc3339::format(*t)
            ),
            Self::IssuedBefore(t) => write!(f, "every token issued before {}", rfc3339::format(*t)),
            Self::Key(kid) => write!(f, "every token signed by key {kid}"),
        }
    }
}

/// One revocation: what, who, when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub(crate) target: RevocationTarget,
    pub(crate) by: String,
    pub(crate) at: OffsetDateTime,
    pub(crate) reason: String,
}

impl Revocation {
    /// A record, for stores that load revocations made elsewhere.
    ///
    /// # Errors
    /// [`RevokeError`] when `by` or `reason` is empty, longer than 256 bytes or holds control
    /// characters, or a subject target's subject is.
    pub fn new(
        target: RevocationTarget,
        by: &str,
        at: OffsetDateTime,
        reason: &str,
    ) -> Result<Self, RevokeError> {
        check_text("by", by).map_err(invalid)?;
        check_text("reason", reason).map_err(invalid)?;
        if let RevocationTarget::Subject { subject, .. } = &target {
            check_text("subject", subject).map_err(invalid)?;
        }
        Ok(Self {
            target,
            by: by.to_owned(),
            at,
            reason: reason.to_owned(),
        })
    }

    /// What is revoked.
    pub fn target(&self) -> &RevocationTarget {
        &self.target
    }

    /// Who revoked it.
    pub fn by(&self) -> &str {
        &self.by
    }

    /// When.
    pub fn at(&self) -> OffsetDateTime {
        self.at
    }

    /// Why.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Why a revocation failed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevokeErrorKind {
    /// `by`, `reason` or the subject is empty, too long or holds control characters. Nothing
    /// was revoked.
    InvalidInput,
    /// The store could not record the revocation. Nothing was revoked.
    Store,
    /// The revocation is in effect, but the audit sink could not record it.
    Audit,
}

/// A revocation that failed, or whose audit record failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RevokeError {
    kind: RevokeErrorKind,
    message: String,
}

impl RevokeError {
    /// An error of `kind`, for [`Revoker`](crate::revocation::Revoker) implementations.
    pub fn new(kind: RevokeErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Why, for matching.
    pub fn kind(&self) -> RevokeErrorKind {
        self.kind
    }
}

fn invalid(message: String) -> RevokeError {
    RevokeError::new(
        RevokeErrorKind::InvalidInput,
        format!("nothing revoked: {message}"),
    )
}

/// The answer of a [`RevocationCheck`].
#[derive(Debug, Clone)]
pub enum RevocationStatus {
    /// Not revoked.
    NotRevoked,
    /// Revoked, by this record.
    Revoked(Arc<Revocation>),
    /// The list cannot vouch for being current; the verifier refuses (fail closed).
    Stale {
        /// When the list last confirmed it was current, if ever.
        last_confirmed: Option<OffsetDateTime>,
    },
}

/// What revocation looks at in a token: a borrowed view of its verified claims and key.
#[derive(Debug, Clone, Copy)]
pub struct TokenFacts<'a> {
    /// `jti`.
    pub token_id: &'a TokenId,
    /// `fam`, if any.
    pub family: Option<&'a FamilyId>,
    /// `sub`.
    pub subject: &'a str,
    /// `iat`.
    pub issued_at: OffsetDateTime,
    /// The key that signed the token.
    pub key_id: &'a KeyId,
}

impl<'a> TokenFacts<'a> {
    /// The facts of verified `claims` signed by `key_id`.
    pub fn of(claims: &'a Claims, key_id: &'a KeyId) -> Self {
        Self {
            token_id: claims.token_id(),
            family: claims.family(),
            subject: claims.subject(),
            issued_at: claims.issued_at(),
            key_id,
        }
    }
}

/// The check the verifier calls on every token. Synchronous and answered from memory.
pub trait RevocationCheck: Send + Sync + fmt::Debug {
    /// Whether the token is revoked, or whether the answer cannot be trusted.
    fn status_of(&self, token: &TokenFacts<'_>) -> RevocationStatus;

    /// A number that grows whenever a revocation is applied (or entries are dropped), if this
    /// check keeps one. A token found [`RevocationStatus::NotRevoked`] while it read `n` stays
    /// not revoked while it still reads `n`: the grant cache remembers the pair and, on a hit,
    /// asks only [`stale_status`](Self::stale_status), so that concurrent hits do not all take
    /// the list's lock. `None` (the default): [`status_of`](Self::status_of) every time.
    ///
    /// An implementation that returns `Some` must never return a number twice for different
    /// states (a count of entries is not one: it can go down and up again), must change it
    /// before a lookup made after it reads the new number could see the change, and must
    /// account for every source its `status_of` consults (a wrapper that adds a source of its
    /// own returns `None`, or a number covering both). `u64::MAX` is never remembered.
    fn generation(&self) -> Option<u64> {
        None
    }

    /// [`RevocationStatus::Stale`] when no answer can be trusted now, else `None`: the part of
    /// [`status_of`](Self::status_of) that does not depend on the token. The default says
    /// `None`; a check that returns `Some` from [`generation`](Self::generation) and can go
    /// stale must override it.
    fn stale_status(&self) -> Option<RevocationStatus> {
        None
    }
}
