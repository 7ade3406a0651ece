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
//! use scopekey::{VerifyErrorKind, Issuer, KeySet, SigningKey, TokenRequest, Verifier, VerifierConfig};
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
//! assert_eq!(refused.kind(), VerifyErrorKind::Revoked);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::key::KeyRing;
use crate::lifecycle::consumer::ConsumerDirectory;
pub use crate::lifecycle::revocation::Revocations;
use crate::scope::ScopeSet;
use crate::token::audit::{AuditEvent, AuditKind, AuditSink};
use crate::token::claims::{FamilyId, TokenId, TokenType};
use crate::token::error::BackendError;
use crate::token::error::VerifyError;
use crate::token::issuer::{IssueError, Issuer, Minted, TokenRequest};
use crate::token::revocation::{Revocation, RevocationCheck, RevocationTarget};
use crate::token::verifier::{ConfigError, Verifier, VerifierConfig};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;

/// Lifetime of a refresh token unless configured: 24 hours.
pub const DEFAULT_REFRESH_TTL: Duration = Duration::from_secs(24 * 3600);
/// The longest refresh-token lifetime accepted: 30 days.
pub const MAX_REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long a family may be exchanged, from its first token, unless configured: 30 days. After
/// that the holder signs in again, however recently the last exchange was.
pub const DEFAULT_FAMILY_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

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
    /// It had already been used (or was never this family's current member): reuse. The family
    /// is now dead; the caller still has to record the family's revocation.
    Reused,
    /// Reuse, as [`Reused`](Self::Reused), and the family's revocation is already in the
    /// store: [`Presentation::on_reuse`], written in the transaction that killed the family (or
    /// the one written when an earlier presentation killed it). No crash can leave the family
    /// dead but its access tokens live, and the caller only applies it locally.
    ReusedAndRevoked,
    /// It was the current member, but the family began before
    /// [`Presentation::began_after`]: past its absolute lifetime, it is not exchanged.
    Ended,
    /// No such family.
    UnknownFamily,
}

/// One presentation of a refresh token to its family, for [`RefreshFamilies::rotate`].
#[derive(Debug, Clone)]
pub struct Presentation<'a> {
    family: &'a FamilyId,
    presented: &'a TokenId,
    next: &'a TokenId,
    expires_at: OffsetDateTime,
    began_after: OffsetDateTime,
    on_reuse: &'a Revocation,
}

impl<'a> Presentation<'a> {
    /// `presented` of `family`, to be replaced by `next` (kept until `expires_at`) if the family
    /// began at or after `began_after`; `on_reuse` is the family revocation to record if it is
    /// reuse.
    pub fn new(
        family: &'a FamilyId,
        presented: &'a TokenId,
        next: &'a TokenId,
        expires_at: OffsetDateTime,
        began_after: OffsetDateTime,
        on_reuse: &'a Revocation,
    ) -> Self {
        Self {
            family,
            presented,
            next,
            expires_at,
            began_after,
            on_reuse,
        }
    }

    /// The family presented to.
    pub fn family(&self) -> &FamilyId {
        self.family
    }

    /// The refresh token presented.
    pub fn presented(&self) -> &TokenId {
        self.presented
    }

    /// The refresh token that becomes current on success.
    pub fn next(&self) -> &TokenId {
        self.next
    }

    /// When `next` expires: the family can be forgotten after this.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }

    /// A family that began before this is past its absolute lifetime: [`Rotation::Ended`].
    pub fn began_after(&self) -> OffsetDateTime {
        self.began_after
    }

    /// The revocation of the whole family, to record with the family's death on reuse (a
    /// store that can do both in one transaction answers [`Rotation::ReusedAndRevoked`]).
    pub fn on_reuse(&self) -> &Revocation {
        self.on_reuse
    }
}

/// Refresh families and their used members. [`rotate`](Self::rotate) must be atomic: of two
/// concurrent calls with the same presented token, at most one returns [`Rotation::Rotated`].
pub trait RefreshFamilies: Send + Sync + fmt::Debug {
    /// Starts a family at `started_at` whose current, unused member is `first`, kept until
    /// `expires_at`.
    ///
    /// # Errors
    /// When the store cannot record it.
    fn begin(
        &self,
        family: &FamilyId,
        first: &TokenId,
        started_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), BackendError>;

    /// Presents a refresh token. The current member of a family that began at or after
    /// [`Presentation::began_after`] is marked used and [`Presentation::next`] becomes current
    /// ([`Rotation::Rotated`]); the current member of an older family is refused
    /// ([`Rotation::Ended`]); any other member is reuse: the family is marked dead, so nothing
    /// of it rotates again ([`Rotation::Reused`], or [`Rotation::ReusedAndRevoked`] when the
    /// store also recorded [`Presentation::on_reuse`] in the same transaction).
    ///
    /// # Errors
    /// When the store cannot answer; then nothing changed.
    fn rotate(&self, presentation: &Presentation<'_>) -> Result<Rotation, BackendError>;
}

#[derive(Debug)]
struct FamilyState {
    /// `None` once reuse killed the family.
    current: Option<TokenId>,
    used: HashSet<TokenId>,
    started_at: OffsetDateTime,
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
        started_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), BackendError> {
        let mut map = self.families.lock().unwrap_or_else(|p| p.into_inner());
        if map.contains_key(family) {
            return Err(BackendError::conflict("refresh family id already in use"));
        }
        map.insert(
            family.clone(),
            FamilyState {
                current: Some(first.clone()),
                used: HashSet::new(),
                started_at,
                expires_at,
            },
        );
        Ok(())
    }

    fn rotate(&self, p: &Presentation<'_>) -> Result<Rotation, BackendError> {
        let mut map = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let Some(state) = map.get_mut(p.family) else {
            return Ok(Rotation::UnknownFamily);
        };
        if state.current.as_ref() != Some(p.presented) {
            // Reuse: the family dies with the check, so no later presentation rotates it. The
            // revocation is the caller's to record (the list it goes to is elsewhere).
            state.current = None;
            return Ok(Rotation::Reused);
        }
        if state.started_at < p.began_after {
            return Ok(Rotation::Ended);
        }
        if let Some(used) = state.current.replace(p.next.clone()) {
            state.used.insert(used);
        }
        state.expires_at = p.expires_at;
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
    /// The family began longer ago than its absolute lifetime
    /// ([`Refresher::with_family_lifetime`]); the holder has to sign in again.
    FamilyExpired,
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
    family_lifetime: Duration,
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
            family_lifetime: DEFAULT_FAMILY_LIFETIME,
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

    /// How long a family may be exchanged, counted from [`start`](Self::start) (default
    /// [`DEFAULT_FAMILY_LIFETIME`], 30 days). Checked at every exchange against the family's
    /// recorded start, so shortening it applies to families already running.
    pub fn with_family_lifetime(mut self, lifetime: Duration) -> Self {
        self.family_lifetime = lifetime;
        self
    }

    /// Starts a family: an access token and the first refresh token for `request`.
    ///
    /// # Errors
    /// [`RefreshErrorKind::Issue`] when the request is refused (see [`Issuer::issue`]),
    /// [`RefreshErrorKind::Unavailable`] when the family cannot be recorded.
    pub fn start(&self, request: &TokenRequest) -> Result<TokenPair, RefreshError> {
        if !request.networks.is_empty() {
            // A refresh exchange has no client address to check a caveat against, so the
            // family could never be exchanged: refuse it up front rather than mint it.
            return Err(RefreshError::new(
                RefreshErrorKind::Issue,
                "network-limited tokens cannot start a refresh family yet (the exchange has no \
                 client address to check): mint them with Issuer::issue",
            ));
        }
        if request.max_uses.is_some() {
            // The exchange mints new access tokens of the family, each of which would get its
            // own count again; a usage limit belongs to one token, minted with Issuer::issue.
            return Err(RefreshError::new(
                RefreshErrorKind::Issue,
                "use-limited tokens cannot start a refresh family (each exchange would mint a fresh count): mint them with Issuer::issue",
            ));
        }
        let family = FamilyId::generate().map_err(|e| {
            RefreshError::new(RefreshErrorKind::Unavailable, format!("no family id: {e}"))
        })?;
        let request = request.clone().family(family.clone());
        let (refresh_id, refresh_exp) = self.next_refresh_id()?;
        self.families
            .begin(&family, &refresh_id, self.issuer.clock().now(), refresh_exp)
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
    /// `narrow_to` is not within its scopes; [`RefreshErrorKind::FamilyExpired`] when the family
    /// is past its absolute lifetime; [`RefreshErrorKind::ConsumerDisabled`] and
    /// [`RefreshErrorKind::BeyondCeiling`] under [`with_consumers`](Self::with_consumers);
    /// [`RefreshErrorKind::Unavailable`] when the family store or revocation fails;
    /// [`RefreshErrorKind::Issue`] when minting fails.
    ///
    /// # Security
    /// Two concurrent exchanges of one refresh token yield at most one new pair when the
    /// [`RefreshFamilies`] store is atomic; the loser is treated as reuse. A store that records
    /// the family revocation in the transaction that detects reuse
    /// ([`Rotation::ReusedAndRevoked`], as `scopekey-store` does) leaves no window in which a
    /// crash keeps a detected-stolen family's access tokens live.
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
        let now = self.issuer.clock().now();
        let lifetime = i64::try_from(self.family_lifetime.as_secs()).unwrap_or(i64::MAX);
        let began_after = now
            .checked_sub(time::Duration::seconds(lifetime))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let on_reuse = Revocation::new(
            RevocationTarget::Family(family.clone()),
            REFRESH_REVOKER,
            now,
            REUSE_REASON,
        )
        .map_err(|e| unavailable("no revocation record", e))?;
        let presentation = Presentation::new(
            &family,
            claims.token_id(),
            &next,
            next_exp,
            began_after,
            &on_reuse,
        );
        let rotation = self
            .families
            .rotate(&presentation)
            .map_err(|e| unavailable("the refresh family store did not answer", e))?;
        match rotation {
            Rotation::Rotated => {}
            Rotation::Ended => {
                return Err(RefreshError::new(
                    RefreshErrorKind::FamilyExpired,
                    format!(
                        "the refresh family began more than {} s ago, its absolute lifetime: sign in again",
                        self.family_lifetime.as_secs()
                    ),
                ));
            }
            Rotation::Reused | Rotation::ReusedAndRevoked | Rotation::UnknownFamily => {
                let reason = if rotation == Rotation::UnknownFamily {
                    "refresh token of an unknown family presented"
                } else {
                    REUSE_REASON
                };
                let revoked = if rotation == Rotation::ReusedAndRevoked {
                    // Recorded with the family's death; make it effective here too.
                    self.revoker.adopt(Arc::new(on_reuse))
                } else {
                    self.revoker.revoke(
                        RevocationTarget::Family(family.clone()),
                        REFRESH_REVOKER,
                        reason,
                    )
                };
                revoked.map_err(|e| unavailable("the family could not be revoked", e))?;
                self.record(AuditEvent::for_token(
                    now,
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
        // The family's application claims, as signed into the refresh token.
        request.custom = claims.other().get(crate::custom::CUSTOM_CLAIM).cloned();
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
                    REFRESH_REVOKER,
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

/// Who the revocations a refresher records are by.
const REFRESH_REVOKER: &str = "scopekey-refresh";
/// Why a family whose used refresh token came back is revoked.
const REUSE_REASON: &str = "refresh token reuse detected";

fn request_is_broad(r: &TokenRequest) -> bool {
    r.scopes().is_broad()
}

fn unavailable(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> RefreshError {
    RefreshError::new(RefreshErrorKind::Unavailable, format!("{what}: {e}")).with_source(e)
}
