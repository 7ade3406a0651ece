//! Refresh tokens: single use, rotated on every exchange, with reuse detection.
//!
//! A refresh token is its own token type, bound through the implicit assertion, so it never
//! verifies where an access token is expected and the reverse (docs/threats.md G5). Exchanging
//! refresh token *N* returns an access token and refresh token *N+1* of the same family. If a
//! refresh token is presented a second time, someone holds a copy: the whole family is revoked,
//! the legitimate chain and the attacker's alike, and a `refresh_reuse_detected` event is
//! recorded (RFC 9700 section 4.14).
//!
//! ```
//! use scopekey::refresh::{MemoryFamilies, Refresher};
//! use scopekey::revocation::RevocationList;
//! use scopekey::{ErrorKind, Issuer, KeySet, SigningKey, TokenRequest, Verifier, VerifierConfig};
//! use std::sync::Arc;
//!
//! let key = SigningKey::generate()?;
//! let keys = KeySet::single(key.public_key().clone());
//! let revocations = Arc::new(RevocationList::new());
//! let issuer = Issuer::new(key, "https://auth.example", "production".parse()?)?;
//! let refresher = Refresher::new(
//!     issuer, "https://api.example", keys.clone(), revocations.clone(), Arc::new(MemoryFamilies::new()),
//! )?;
//!
//! let first = refresher.start(&TokenRequest::new("mobile-app", "https://api.example", "projects:read".parse()?))?;
//! let second = refresher.exchange(first.refresh().token().as_str(), None)?;
//!
//! // Replaying the used refresh token kills the family: the new tokens die too.
//! assert!(refresher.exchange(first.refresh().token().as_str(), None).is_err());
//! let verifier = Verifier::new(keys, VerifierConfig::new("https://auth.example", "https://api.example", "production".parse()?))?
//!     .with_revocations(revocations);
//! let refused = verifier.verify(second.access().token().as_str()).unwrap_err();
//! assert_eq!(refused.kind(), ErrorKind::Revoked);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::audit::{AuditEvent, AuditKind, AuditSink};
use crate::claims::{FamilyId, TokenId, TokenType};
use crate::consumer::ConsumerDirectory;
use crate::error::VerifyError;
use crate::issuer::{IssueError, Issuer, Minted, TokenRequest};
use crate::keys::KeyRing;
use crate::revocation::{RevocationCheck, RevocationTarget, Revoker};
use crate::scope::ScopeSet;
use crate::verifier::{ConfigError, Verifier, VerifierConfig};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;

/// Lifetime of a refresh token unless configured: 24 hours.
pub const DEFAULT_REFRESH_TTL: Duration = Duration::from_secs(24 * 3600);
/// The longest refresh-token lifetime accepted: 30 days.
pub const MAX_REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// An access token and the refresh token that replaces it.
#[derive(Debug, Clone)]
pub struct TokenPair {
    access: Minted,
    refresh: Minted,
}

impl TokenPair {
    /// The access token, for services.
    pub fn access(&self) -> &Minted {
        &self.access
    }

    /// The refresh token, for the next exchange only.
    pub fn refresh(&self) -> &Minted {
        &self.refresh
    }

    /// The family both belong to.
    pub fn family(&self) -> Option<&FamilyId> {
        self.refresh.claims().family()
    }
}

/// The outcome of presenting a refresh token to its family.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// It was the family's current member; it is now used and `next` is current.
    Rotated,
    /// It had already been used (or was never this family's current member): reuse.
    Reused,
    /// No such family (or it has ended).
    UnknownFamily,
}

/// A family store that could not answer; the exchange fails closed.
#[derive(Debug, thiserror::Error)]
#[error("refresh family store: {message}")]
pub struct FamilyError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl FamilyError {
    /// An error with an optional cause, for store-backed implementations.
    pub fn new(
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            message: message.into(),
            source,
        }
    }
}

/// Refresh families and their used members. [`rotate`](Self::rotate) must be atomic: of two
/// concurrent calls with the same presented token, at most one returns [`Rotation::Rotated`].
pub trait RefreshFamilies: Send + Sync + fmt::Debug {
    /// Starts a family whose current, unused member is `first`, kept until `expires_at`.
    ///
    /// # Errors
    /// When the store cannot record it.
    fn begin(
        &self,
        family: &FamilyId,
        first: &TokenId,
        expires_at: OffsetDateTime,
    ) -> Result<(), FamilyError>;

    /// Presents `presented`; on success `next` (expiring at `expires_at`) becomes current.
    ///
    /// # Errors
    /// When the store cannot answer.
    fn rotate(
        &self,
        family: &FamilyId,
        presented: &TokenId,
        next: &TokenId,
        expires_at: OffsetDateTime,
    ) -> Result<Rotation, FamilyError>;
}

#[derive(Debug)]
struct FamilyState {
    current: TokenId,
    used: HashSet<TokenId>,
    expires_at: OffsetDateTime,
}

/// Refresh families in memory, for one process.
#[derive(Debug, Default)]
pub struct MemoryFamilies {
    families: Mutex<HashMap<FamilyId, FamilyState>>,
}

impl MemoryFamilies {
    /// No families yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets families whose last refresh token expired before `t`; returns how many.
    pub fn purge_expired_before(&self, t: OffsetDateTime) -> usize {
        let mut map = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let before = map.len();
        map.retain(|_, f| f.expires_at >= t);
        before - map.len()
    }
}

impl RefreshFamilies for MemoryFamilies {
    fn begin(
        &self,
        family: &FamilyId,
        first: &TokenId,
        expires_at: OffsetDateTime,
    ) -> Result<(), FamilyError> {
        let mut map = self.families.lock().unwrap_or_else(|p| p.into_inner());
        if map.contains_key(family) {
            return Err(FamilyError::new("family id already in use", None));
        }
        map.insert(
            family.clone(),
            FamilyState {
                current: first.clone(),
                used: HashSet::new(),
                expires_at,
            },
        );
        Ok(())
    }

    fn rotate(
        &self,
        family: &FamilyId,
        presented: &TokenId,
        next: &TokenId,
        expires_at: OffsetDateTime,
    ) -> Result<Rotation, FamilyError> {
        let mut map = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let Some(state) = map.get_mut(family) else {
            return Ok(Rotation::UnknownFamily);
        };
        if state.current != *presented {
            return Ok(Rotation::Reused);
        }
        let used = std::mem::replace(&mut state.current, next.clone());
        state.used.insert(used);
        state.expires_at = expires_at;
        Ok(Rotation::Rotated)
    }
}

/// Why an exchange failed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefreshErrorKind {
    /// The refresh token did not verify (see the source for the [`VerifyError`]).
    Invalid,
    /// The refresh token had already been used; its family is now revoked.
    Reused,
    /// The requested scopes are not within the refresh token's scopes.
    Widening,
    /// The family store, the revocation list or the audit sink failed; nothing was issued.
    Unavailable,
    /// The new tokens could not be minted.
    Issue,
    /// The consumer has been disabled since the family started; its family is now revoked.
    ConsumerDisabled,
    /// None of the family's scopes is within the consumer's ceiling any more; nothing issued.
    BeyondCeiling,
}

/// A refresh exchange that failed.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RefreshError {
    kind: RefreshErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl RefreshError {
    fn new(kind: RefreshErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    fn with_source(mut self, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(e));
        self
    }

    /// Why, for matching.
    pub fn kind(&self) -> RefreshErrorKind {
        self.kind
    }

    /// The verification error, when the refresh token did not verify.
    pub fn verify_error(&self) -> Option<&VerifyError> {
        self.source.as_ref().and_then(|s| s.downcast_ref())
    }
}

impl From<IssueError> for RefreshError {
    fn from(e: IssueError) -> Self {
        Self::new(RefreshErrorKind::Issue, format!("no tokens issued: {e}")).with_source(e)
    }
}

/// A [`RevocationCheck`] that is also a [`Revoker`]: what the refresher needs.
pub trait Revocations: RevocationCheck + Revoker {}

impl<T: RevocationCheck + Revoker> Revocations for T {}

/// Issues access/refresh pairs for one audience and exchanges refresh tokens.
#[derive(Debug)]
pub struct Refresher {
    issuer: Issuer,
    audience: String,
    verifier: Verifier,
    revoker: Arc<dyn Revocations>,
    families: Arc<dyn RefreshFamilies>,
    consumers: Option<Arc<dyn ConsumerDirectory>>,
    audit: Option<Arc<dyn AuditSink>>,
    refresh_ttl: Duration,
}

impl Refresher {
    /// A refresher minting with `issuer` for `audience`, verifying refresh tokens against
    /// `keys` (a [`KeySet`](crate::KeySet), or a shared [`KeyRing`] that a store replica keeps
    /// current, so refresh tokens survive a signing-key rotation), checking and writing
    /// revocations through `revocations`, and keeping families in `families`.
    ///
    /// # Errors
    /// [`ConfigError`] for an invalid audience.
    pub fn new(
        issuer: Issuer,
        audience: &str,
        keys: impl Into<Arc<KeyRing>>,
        revocations: Arc<dyn Revocations>,
        families: Arc<dyn RefreshFamilies>,
    ) -> Result<Self, ConfigError> {
        let config = VerifierConfig::new(issuer.name(), audience, issuer.environment().clone())
            .token_type(TokenType::Refresh)
            .max_lifetime(MAX_REFRESH_TTL)
            .shared_clock(issuer.clock().clone());
        let check: Arc<dyn RevocationCheck> = revocations.clone();
        let verifier = Verifier::with_key_ring(keys.into(), config)?.with_revocations(check);
        Ok(Self {
            issuer,
            audience: audience.to_owned(),
            verifier,
            revoker: revocations,
            families,
            consumers: None,
            audit: None,
            refresh_ttl: DEFAULT_REFRESH_TTL,
        })
    }

    /// Records `refreshed`, `refresh_reuse_detected` and the refresh tokens' `verified` and
    /// `refused` events. (Give the [`Issuer`] the sink too for `issued` events.)
    pub fn with_audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.verifier = self.verifier.with_audit(sink.clone());
        self.audit = Some(sink);
        self
    }

    /// Checks every exchange against the consumer as it is now in `consumers`: a disabled
    /// consumer's family is revoked and nothing is issued; the next tokens are narrowed to the
    /// consumer's current ceiling (refused if nothing is left). A directory that cannot answer
    /// fails the exchange closed. Subjects the directory does not know are exchanged as before.
    pub fn with_consumers(mut self, consumers: Arc<dyn ConsumerDirectory>) -> Self {
        self.consumers = Some(consumers);
        self
    }

    /// Lifetime of refresh tokens (default 24 hours, at most 30 days).
    pub fn with_refresh_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_ttl = ttl;
        self
    }

    /// Starts a family: an access token and the first refresh token for `request`.
    ///
    /// # Errors
    /// [`RefreshErrorKind::Issue`] when the request is refused (see [`Issuer::issue`]),
    /// [`RefreshErrorKind::Unavailable`] when the family cannot be recorded.
    pub fn start(&self, request: &TokenRequest) -> Result<TokenPair, RefreshError> {
        let family = FamilyId::generate().map_err(|e| {
            RefreshError::new(RefreshErrorKind::Unavailable, format!("no family id: {e}"))
        })?;
        let request = request.clone().family(family.clone());
        let (refresh_id, refresh_exp) = self.next_refresh_id()?;
        self.families
            .begin(&family, &refresh_id, refresh_exp)
            .map_err(|e| unavailable("the refresh family could not be recorded", e))?;
        self.mint_pair(&request, refresh_id)
    }

    /// Exchanges refresh token *N* for an access token and refresh token *N+1* of the same
    /// family, optionally narrowed to `narrow_to` (never widened).
    ///
    /// # Errors
    /// [`RefreshErrorKind::Invalid`] when the refresh token does not verify (an access token,
    /// expired, revoked, another environment, …); [`RefreshErrorKind::Reused`] when it was used
    /// before, after which the whole family is revoked; [`RefreshErrorKind::Widening`] when
    /// `narrow_to` is not within its scopes; [`RefreshErrorKind::Unavailable`] when the family
    /// store or revocation fails; [`RefreshErrorKind::Issue`] when minting fails.
    ///
    /// # Security
    /// Two concurrent exchanges of one refresh token yield at most one new pair when the
    /// [`RefreshFamilies`] store is atomic; the loser is treated as reuse.
    pub fn exchange(
        &self,
        refresh_token: &str,
        narrow_to: Option<&ScopeSet>,
    ) -> Result<TokenPair, RefreshError> {
        let grant = self.verifier.verify(refresh_token).map_err(|e| {
            RefreshError::new(
                RefreshErrorKind::Invalid,
                format!("refresh token refused: {e}"),
            )
            .with_source(e)
        })?;
        let claims = grant.claims();
        let Some(family) = claims.family().cloned() else {
            return Err(RefreshError::new(
                RefreshErrorKind::Invalid,
                "refresh token refused: it names no family (`fam`)",
            ));
        };
        let scopes = match narrow_to {
            None => claims.scopes().clone(),
            Some(n) if !n.is_empty() && n.is_subset_of(claims.scopes()) => n.clone(),
            Some(n) => {
                return Err(RefreshError::new(
                    RefreshErrorKind::Widening,
                    format!(
                        "scopes `{n}` are not within the refresh token's `{}`",
                        claims.scopes()
                    ),
                ));
            }
        };
        let scopes = self.current_policy(claims, &family, scopes)?;
        let (next, next_exp) = self.next_refresh_id()?;
        let rotation = self
            .families
            .rotate(&family, claims.token_id(), &next, next_exp)
            .map_err(|e| unavailable("the refresh family store did not answer", e))?;
        match rotation {
            Rotation::Rotated => {}
            Rotation::Reused | Rotation::UnknownFamily => {
                let reason = if rotation == Rotation::Reused {
                    "refresh token reuse detected"
                } else {
                    "refresh token of an unknown family presented"
                };
                self.revoker
                    .revoke(
                        RevocationTarget::Family(family.clone()),
                        "scopekey-refresh",
                        reason,
                    )
                    .map_err(|e| unavailable("the family could not be revoked", e))?;
                self.record(AuditEvent::for_token(
                    self.issuer.clock().now(),
                    AuditKind::RefreshReuseDetected {
                        presented_jti: claims.token_id().clone(),
                    },
                    claims,
                    Some(grant.key_id()),
                ))?;
                return Err(RefreshError::new(
                    RefreshErrorKind::Reused,
                    format!("{reason}: every token of its family is revoked; sign in again"),
                ));
            }
        }
        let mut request =
            TokenRequest::new(claims.subject(), self.audience.clone(), scopes).family(family);
        if let Some(o) = claims.owner() {
            request = request.owner(o);
        }
        if let Some(p) = claims.purpose() {
            request = request.purpose(p);
        }
        if !request.scopes().is_read_only() {
            // The escalation was granted when the family started (by the request or by the
            // consumer's ceiling); keeping or narrowing it is not a new one.
            request = request.escalate();
        }
        if request_is_broad(&request) {
            // Broad scopes were opted into when the family started; keeping or narrowing them
            // is not a new escalation.
            request = request.allow_broad();
        }
        let pair = self.mint_pair(&request, next)?;
        self.record(AuditEvent::for_token(
            self.issuer.clock().now(),
            AuditKind::Refreshed {
                previous_jti: claims.token_id().clone(),
            },
            pair.refresh.claims(),
            // The event describes the new refresh token, signed with the issuer's current key.
            Some(self.issuer.key_id()),
        ))?;
        Ok(pair)
    }

    /// The scopes the next tokens may carry under the consumer's current registration.
    fn current_policy(
        &self,
        claims: &crate::Claims,
        family: &FamilyId,
        scopes: ScopeSet,
    ) -> Result<ScopeSet, RefreshError> {
        let Some(directory) = &self.consumers else {
            return Ok(scopes);
        };
        let consumer = directory
            .consumer(claims.subject())
            .map_err(|e| unavailable("nothing issued", e))?;
        let Some(consumer) = consumer else {
            return Ok(scopes);
        };
        if !consumer.is_enabled() {
            self.revoker
                .revoke(
                    RevocationTarget::Family(family.clone()),
                    "scopekey-refresh",
                    "refresh exchange by a disabled consumer",
                )
                .map_err(|e| unavailable("the family could not be revoked", e))?;
            return Err(RefreshError::new(
                RefreshErrorKind::ConsumerDisabled,
                format!(
                    "consumer {:?} is disabled: its refresh family is revoked",
                    consumer.name()
                ),
            ));
        }
        let kept: Vec<crate::Scope> = scopes
            .iter()
            .filter(|s| consumer.ceiling().allows_scope(s))
            .cloned()
            .collect();
        if kept.is_empty() {
            return Err(RefreshError::new(
                RefreshErrorKind::BeyondCeiling,
                format!(
                    "none of `{scopes}` is within consumer {:?}'s ceiling any more",
                    consumer.name()
                ),
            ));
        }
        ScopeSet::from_scopes(kept).map_err(|e| {
            RefreshError::new(
                RefreshErrorKind::BeyondCeiling,
                format!("narrowed scopes: {e}"),
            )
        })
    }

    fn next_refresh_id(&self) -> Result<(TokenId, OffsetDateTime), RefreshError> {
        let id = TokenId::generate().map_err(|e| {
            RefreshError::new(RefreshErrorKind::Unavailable, format!("no token id: {e}"))
        })?;
        let secs = i64::try_from(self.refresh_ttl.as_secs()).unwrap_or(i64::MAX);
        let exp = self
            .issuer
            .clock()
            .now()
            .checked_add(time::Duration::seconds(secs))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Ok((id, exp))
    }

    fn mint_pair(
        &self,
        request: &TokenRequest,
        refresh_id: TokenId,
    ) -> Result<TokenPair, RefreshError> {
        let access = self
            .issuer
            .issue_typed(request, TokenType::Access, None, None)?;
        let refresh = self.issuer.issue_typed(
            &request.clone().ttl(self.refresh_ttl),
            TokenType::Refresh,
            Some(refresh_id),
            Some(MAX_REFRESH_TTL),
        )?;
        Ok(TokenPair { access, refresh })
    }

    fn record(&self, event: AuditEvent) -> Result<(), RefreshError> {
        match &self.audit {
            Some(sink) => sink
                .record(&event)
                .map_err(|e| unavailable("the audit sink failed", e)),
            None => Ok(()),
        }
    }
}

fn request_is_broad(r: &TokenRequest) -> bool {
    r.scopes().is_broad()
}

fn unavailable(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> RefreshError {
    RefreshError::new(RefreshErrorKind::Unavailable, format!("{what}: {e}")).with_source(e)
}
