//! The token inventory as the issuer and the verifier see it: a record per issued token and the
//! [`Inventory`] trait they write through (the issuer records, the verifier notes last use).
//! Implementations and reports are in the lifecycle layer; the public paths in
//! [`crate::inventory`].

use crate::key::KeyId;
use crate::scope::ScopeSet;
use crate::token::claims::{Claims, FamilyId, TokenId, TokenType};
use crate::token::error::BackendError;
use crate::token::revocation::TokenFacts;
use std::fmt;
use time::OffsetDateTime;

/// One issued token, as the inventory knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    token_id: TokenId,
    token_type: TokenType,
    subject: String,
    owner: Option<String>,
    purpose: Option<String>,
    scopes: ScopeSet,
    issued_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    key_id: KeyId,
    family: Option<FamilyId>,
    last_used: Option<OffsetDateTime>,
}

impl TokenRecord {
    /// The record of a token with these claims, signed by `key_id`, never used yet.
    pub fn new(claims: &Claims, key_id: &KeyId, token_type: TokenType) -> Self {
        Self {
            token_id: claims.token_id().clone(),
            token_type,
            subject: claims.subject().to_owned(),
            owner: claims.owner().map(str::to_owned),
            purpose: claims.purpose().map(str::to_owned),
            scopes: claims.scopes().clone(),
            issued_at: claims.issued_at(),
            expires_at: claims.expires_at(),
            key_id: key_id.clone(),
            family: claims.family().cloned(),
            last_used: None,
        }
    }

    /// The same record with its last use set (for stores loading rows).
    pub fn with_last_used(mut self, at: Option<OffsetDateTime>) -> Self {
        self.last_used = at;
        self
    }

    /// `jti`.
    pub fn token_id(&self) -> &TokenId {
        &self.token_id
    }
    /// Access or refresh.
    pub fn token_type(&self) -> TokenType {
        self.token_type
    }
    /// `sub`: the consumer.
    pub fn subject(&self) -> &str {
        &self.subject
    }
    /// `owner`, if set.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }
    /// `purpose`, if set.
    pub fn purpose(&self) -> Option<&str> {
        self.purpose.as_deref()
    }
    /// The scopes granted.
    pub fn scopes(&self) -> &ScopeSet {
        &self.scopes
    }
    /// `iat`.
    pub fn issued_at(&self) -> OffsetDateTime {
        self.issued_at
    }
    /// `exp`.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }
    /// The signing key.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }
    /// `fam`, if any.
    pub fn family(&self) -> Option<&FamilyId> {
        self.family.as_ref()
    }
    /// When a verification last accepted the token, if ever.
    pub fn last_used(&self) -> Option<OffsetDateTime> {
        self.last_used
    }

    /// Whether the token is unexpired at `t`.
    pub fn is_live_at(&self, t: OffsetDateTime) -> bool {
        t < self.expires_at
    }

    /// What revocation looks at.
    pub fn facts(&self) -> TokenFacts<'_> {
        TokenFacts {
            token_id: &self.token_id,
            family: self.family.as_ref(),
            subject: &self.subject,
            issued_at: self.issued_at,
            key_id: &self.key_id,
        }
    }
}

/// The fields of a [`TokenRecord`], for stores that load records from rows.
#[derive(Debug, Clone)]
pub struct TokenRecordParts {
    /// `jti`.
    pub token_id: TokenId,
    /// Access or refresh.
    pub token_type: TokenType,
    /// `sub`.
    pub subject: String,
    /// `owner`.
    pub owner: Option<String>,
    /// `purpose`.
    pub purpose: Option<String>,
    /// The scopes granted.
    pub scopes: ScopeSet,
    /// `iat`.
    pub issued_at: OffsetDateTime,
    /// `exp`.
    pub expires_at: OffsetDateTime,
    /// The signing key.
    pub key_id: KeyId,
    /// `fam`.
    pub family: Option<FamilyId>,
    /// Last accepted use.
    pub last_used: Option<OffsetDateTime>,
}

impl From<TokenRecordParts> for TokenRecord {
    fn from(p: TokenRecordParts) -> Self {
        Self {
            token_id: p.token_id,
            token_type: p.token_type,
            subject: p.subject,
            owner: p.owner,
            purpose: p.purpose,
            scopes: p.scopes,
            issued_at: p.issued_at,
            expires_at: p.expires_at,
            key_id: p.key_id,
            family: p.family,
            last_used: p.last_used,
        }
    }
}

/// Which records to return; every condition set must hold.
#[derive(Debug, Clone, Default)]
pub struct InventoryQuery {
    subject: Option<String>,
    owner: Option<String>,
    unused_since: Option<OffsetDateTime>,
    expiring_before: Option<OffsetDateTime>,
    live_at: Option<OffsetDateTime>,
}

impl InventoryQuery {
    /// Every record.
    pub fn all() -> Self {
        Self::default()
    }

    /// Tokens of this consumer.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Tokens whose consumer has this owner.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Tokens not used since `t`: last used before `t`, or never used and issued before `t`.
    pub fn unused_since(mut self, t: OffsetDateTime) -> Self {
        self.unused_since = Some(t);
        self
    }

    /// Tokens expiring before `t`.
    pub fn expiring_before(mut self, t: OffsetDateTime) -> Self {
        self.expiring_before = Some(t);
        self
    }

    /// Tokens not yet expired at `t`.
    pub fn live_at(mut self, t: OffsetDateTime) -> Self {
        self.live_at = Some(t);
        self
    }

    /// The consumer condition, if set (for stores that filter in SQL).
    pub fn subject_filter(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// The owner condition, if set.
    pub fn owner_filter(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// The "not expired at" condition, if set.
    pub fn live_at_filter(&self) -> Option<OffsetDateTime> {
        self.live_at
    }

    /// The "expiring before" condition, if set.
    pub fn expiring_before_filter(&self) -> Option<OffsetDateTime> {
        self.expiring_before
    }

    /// The "not used since" condition, if set.
    pub fn unused_since_filter(&self) -> Option<OffsetDateTime> {
        self.unused_since
    }

    /// Whether `r` matches.
    pub fn matches(&self, r: &TokenRecord) -> bool {
        self.subject.as_deref().is_none_or(|s| r.subject == s)
            && self.owner.as_deref().is_none_or(|o| r.owner() == Some(o))
            && self
                .unused_since
                .is_none_or(|t| r.last_used.unwrap_or(r.issued_at) < t)
            && self.expiring_before.is_none_or(|t| r.expires_at < t)
            && self.live_at.is_none_or(|t| r.is_live_at(t))
    }
}

/// Where issued tokens are recorded and looked up.
pub trait Inventory: Send + Sync + fmt::Debug {
    /// Records a newly issued token.
    ///
    /// # Errors
    /// When the record could not be stored; the issuer then withholds the token.
    fn record_issued(&self, record: TokenRecord) -> Result<(), BackendError>;

    /// Notes that a verification accepted the token at `at`. Called on the request path: it
    /// must not block on I/O or on an exclusive lock, and never fails (a store batches these).
    fn touch(&self, token_id: &TokenId, at: OffsetDateTime);

    /// One token's record.
    ///
    /// # Errors
    /// When the inventory cannot be read.
    fn get(&self, token_id: &TokenId) -> Result<Option<TokenRecord>, BackendError>;

    /// The records matching `query`, in issue order.
    ///
    /// # Errors
    /// When the inventory cannot be read.
    fn query(&self, query: &InventoryQuery) -> Result<Vec<TokenRecord>, BackendError>;
}
