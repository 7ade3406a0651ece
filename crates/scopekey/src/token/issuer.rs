//! Minting tokens.

use crate::clock::{Clock, SystemClock};
use crate::key::{KeyId, SigningKey};
use crate::scope::{Scope, ScopeSet};
use crate::token::audit::{AuditEvent, AuditSink};
use crate::token::claims::{Claims, Environment, FamilyId, TokenId, TokenType, check_text};
use crate::token::inventory::{Inventory, TokenRecord};
use crate::token::network::{MAX_NETWORKS, NETWORK_CLAIM, Network};
use crate::token::paseto;
use crate::token::usage::{MAX_USES, USES_CLAIM};
use serde_json::Map;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroize as _;

/// Lifetime of a token when the request does not say: 15 minutes.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);
/// Longest lifetime an issuer grants unless configured otherwise: 1 hour.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(60 * 60);

/// Why a token could not be minted.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssueErrorKind {
    /// The request grants no scope.
    NoScope,
    /// The request holds a broad scope without [`TokenRequest::allow_broad`].
    BroadScope,
    /// The lifetime is zero or longer than the issuer's maximum.
    Lifetime,
    /// A claim value is invalid (empty, too long, control characters).
    InvalidClaim,
    /// The operating system's random number generator failed.
    Randomness,
    /// The inventory or the audit sink could not record the token, so it was withheld.
    Record,
    /// The consumer is disabled.
    ConsumerDisabled,
    /// The consumer belongs to another environment than the issuer.
    ConsumerEnvironment,
    /// A requested scope is beyond the consumer's ceiling (the message names it).
    BeyondCeiling,
    /// A requested scope goes beyond `read` (write, delete, admin, a custom action or `*`)
    /// without an escalation: neither [`TokenRequest::escalate`] nor a consumer's ceiling
    /// ([`Issuer::issue_for`]) allowed it. The message names the scopes.
    NeedsEscalation,
}

/// A token that could not be minted, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct IssueError {
    kind: IssueErrorKind,
    message: String,
}

impl IssueError {
    pub(crate) fn new(kind: IssueErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Why, for matching.
    pub fn kind(&self) -> IssueErrorKind {
        self.kind
    }
}

/// A signed token string: the bearer secret.
///
/// Zeroized when dropped. `Debug` shows only the first 12 characters, so a token that ends up
/// in a log by accident is not usable from there.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl Drop for BearerToken {
    /// Zeroes the token and any spare capacity of its allocation, each as one bulk write
    /// (`Zeroizing<String>` writes byte by byte).
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.as_mut_slice().zeroize();
        bytes.spare_capacity_mut().zeroize();
    }
}

impl BearerToken {
    /// The token, for the `Authorization: Bearer` header.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.0.chars().take(12).collect();
        write!(f, "BearerToken({shown}…)")
    }
}

/// A freshly minted token and the claims it carries.
#[derive(Debug, Clone)]
pub struct Minted {
    token: BearerToken,
    claims: Claims,
}

impl Minted {
    /// The token to hand to the consumer.
    pub fn token(&self) -> &BearerToken {
        &self.token
    }

    /// The claims the token carries (for the inventory and the audit trail).
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// Both parts.
    pub fn into_parts(self) -> (BearerToken, Claims) {
        (self.token, self.claims)
    }
}

/// What to mint: one token for one consumer, with explicit scopes.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub(crate) subject: Arc<str>,
    audience: Arc<str>,
    pub(crate) scopes: ScopeSet,
    ttl: Option<Duration>,
    pub(crate) owner: Option<String>,
    pub(crate) purpose: Option<String>,
    family: Option<FamilyId>,
    allow_broad: bool,
    pub(crate) escalate: bool,
    pub(crate) networks: Vec<Network>,
    pub(crate) max_uses: Option<u32>,
    /// Application claims (claim `app`), checked when set.
    pub(crate) custom: Option<serde_json::Value>,
}

impl TokenRequest {
    /// A token for `subject` (the consumer), usable at `audience`, granting `scopes`.
    pub fn new(subject: impl Into<String>, audience: impl Into<String>, scopes: ScopeSet) -> Self {
        Self {
            subject: subject.into().into(),
            audience: audience.into().into(),
            scopes,
            ttl: None,
            owner: None,
            purpose: None,
            family: None,
            allow_broad: false,
            escalate: false,
            networks: Vec::new(),
            max_uses: None,
            custom: None,
        }
    }

    /// The lifetime (default [`DEFAULT_TTL`]); at most the issuer's maximum.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Who answers for this consumer (a person or team).
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// What the token is for.
    pub fn purpose(mut self, purpose: impl Into<String>) -> Self {
        self.purpose = Some(purpose.into());
        self
    }

    /// The refresh family the token belongs to.
    pub fn family(mut self, family: FamilyId) -> Self {
        self.family = Some(family);
        self
    }

    /// The scopes requested.
    pub fn scopes(&self) -> &ScopeSet {
        &self.scopes
    }

    /// Allows scopes beyond `read` (write, delete, admin, custom actions) for a token minted
    /// without a consumer: read-only is the default posture, and every escalation is explicit.
    /// Tokens minted for a consumer ([`Issuer::issue_for`]) are allowed what its ceiling allows
    /// instead. The `issued` audit event says whether a token is escalated.
    ///
    /// # Security
    /// A token that can write or delete does real damage when it leaks. Mint the write token
    /// only for the consumer and resource that needs it, with a short lifetime.
    pub fn escalate(mut self) -> Self {
        self.escalate = true;
        self
    }

    /// Signs `claims` into the token as its application claims (claim `app`), for the
    /// service to read back typed with [`Grant::custom_claims`](crate::Grant::custom_claims):
    /// see [`crate::custom`]. Replaces any set before.
    ///
    /// # Errors
    /// [`IssueErrorKind::InvalidClaim`] when `claims` does not serialise to JSON, is `null`,
    /// longer than [`MAX_CUSTOM_CLAIMS_LEN`](crate::custom::MAX_CUSTOM_CLAIMS_LEN) or nested
    /// beyond what a verifier reads.
    pub fn custom_claims(mut self, claims: &impl serde::Serialize) -> Result<Self, IssueError> {
        self.custom = Some(crate::token::custom::encode(claims)?);
        Ok(self)
    }

    /// Limits the token to clients in `networks` (claim `net`): a verifier refuses it from any
    /// other address, and from a request whose client address it cannot establish. At most
    /// [`MAX_NETWORKS`](crate::MAX_NETWORKS).
    pub fn allow_networks(mut self, networks: impl IntoIterator<Item = Network>) -> Self {
        self.networks.extend(networks);
        self
    }

    /// Limits the token to `uses` verifications (claim `uses`, 1 to
    /// [`MAX_USES`](crate::usage::MAX_USES)): a verifier counts each one with its
    /// [`UsageCounter`](crate::usage::UsageCounter), cached or not, and refuses the token
    /// after the last, and always when it has no counter or its counter fails (fail closed).
    /// Several instances must share the count (a store's counter) for the limit to hold
    /// across them; see `docs/binding.md`.
    pub fn max_uses(mut self, uses: u32) -> Self {
        self.max_uses = Some(uses);
        self
    }

    /// A token that verifies once: [`max_uses(1)`](Self::max_uses).
    pub fn single_use(self) -> Self {
        self.max_uses(1)
    }

    /// Allows broad scopes (a `*` action or a `*` resource segment).
    ///
    /// # Security
    /// A broad token does more damage when it leaks. Prefer listing the concrete scopes.
    pub fn allow_broad(mut self) -> Self {
        self.allow_broad = true;
        self
    }
}

/// Mints tokens with one signing key, for one issuer name and one environment.
///
/// ```
/// use scopekey::{Issuer, SigningKey, TokenRequest};
/// use std::time::Duration;
///
/// let issuer = Issuer::new(SigningKey::generate()?, "https://auth.example", "production".parse()?)?;
/// let minted = issuer.issue(
///     &TokenRequest::new("ci-deploy", "https://api.example", "projects:read".parse()?)
///         .ttl(Duration::from_secs(300))
///         .owner("team-infra"),
/// )?;
/// assert!(minted.token().as_str().starts_with("v4.public."));
/// assert_eq!(minted.claims().subject(), "ci-deploy");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Issuer {
    format: TokenFormat,
    key: SigningKey,
    issuer: Arc<str>,
    environment: Environment,
    footer: paseto::Footer,
    /// The implicit assertions for access and refresh tokens, written once.
    assertions: [Vec<u8>; 2],
    default_ttl: Duration,
    max_ttl: Duration,
    clock: Arc<dyn Clock>,
    audit: Option<Arc<dyn AuditSink>>,
    inventory: Option<Arc<dyn Inventory>>,
}

impl Issuer {
    /// An issuer signing with `key` as `issuer` (the `iss` claim) for `environment`.
    ///
    /// # Errors
    /// [`IssueErrorKind::InvalidClaim`] if `issuer` is empty, longer than 256 bytes or holds
    /// control characters.
    pub fn new(
        key: SigningKey,
        issuer: impl Into<String>,
        environment: Environment,
    ) -> Result<Self, IssueError> {
        let issuer: Arc<str> = issuer.into().into();
        check_text("iss", &issuer).map_err(|e| IssueError::new(IssueErrorKind::InvalidClaim, e))?;
        Ok(Self {
            format: TokenFormat::Paseto,
            footer: paseto::Footer::new(&kid_footer(key.key_id())),
            assertions: [
                paseto::implicit_assertion(&environment, TokenType::Access),
                paseto::implicit_assertion(&environment, TokenType::Refresh),
            ],
            key,
            issuer,
            environment,
            default_ttl: DEFAULT_TTL,
            max_ttl: DEFAULT_MAX_TTL,
            clock: Arc::new(SystemClock),
            audit: None,
            inventory: None,
        })
    }

    /// Mints access tokens in `format` (PASETO v4.public by default). Refresh tokens are always
    /// PASETO.
    pub fn with_format(mut self, format: TokenFormat) -> Self {
        self.format = format;
        self
    }

    /// The format access tokens are minted in.
    pub fn format(&self) -> TokenFormat {
        self.format
    }

    /// Records an `issued` event for every token. If the sink fails, the token is withheld.
    pub fn with_audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// Records every token in `inventory`. If that fails, the token is withheld.
    pub fn with_inventory(mut self, inventory: Arc<dyn Inventory>) -> Self {
        self.inventory = Some(inventory);
        self
    }

    /// The issuer name (`iss`).
    pub fn name(&self) -> &str {
        &self.issuer
    }

    /// The signing key's public half.
    pub fn public_key(&self) -> &crate::key::PublicKey {
        self.key.public_key()
    }

    /// The lifetime of tokens whose request does not set one (default 15 minutes).
    pub fn with_default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// The longest lifetime this issuer grants (default 1 hour).
    pub fn with_max_ttl(mut self, ttl: Duration) -> Self {
        self.max_ttl = ttl;
        self
    }

    /// The clock that sets `iat`, `nbf` and `exp` (default: the system clock).
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The key id every token of this issuer carries.
    pub fn key_id(&self) -> &KeyId {
        self.key.key_id()
    }

    /// The environment every token of this issuer is bound to.
    pub fn environment(&self) -> &Environment {
        &self.environment
    }

    /// Mints one token.
    ///
    /// # Errors
    /// [`IssueErrorKind::NoScope`] for an empty scope set; [`IssueErrorKind::BroadScope`] for a
    /// broad scope without [`TokenRequest::allow_broad`] (the message names it);
    /// [`IssueErrorKind::NeedsEscalation`] for a scope beyond `read` without
    /// [`TokenRequest::escalate`] (the message names it);
    /// [`IssueErrorKind::Lifetime`] for a zero lifetime or one above the maximum;
    /// [`IssueErrorKind::InvalidClaim`] for an invalid subject, audience, owner or purpose,
    /// too many networks, or a usage limit outside 1..=[`MAX_USES`](crate::usage::MAX_USES);
    /// [`IssueErrorKind::Randomness`] if no token id could be drawn.
    pub fn issue(&self, request: &TokenRequest) -> Result<Minted, IssueError> {
        self.issue_typed(request, TokenType::Access, None, None)
    }

    /// Mints a token of `token_type`, with a given id when the caller registered it first
    /// (refresh rotation) and a lifetime ceiling other than the issuer's.
    pub(crate) fn issue_typed(
        &self,
        request: &TokenRequest,
        token_type: TokenType,
        token_id: Option<TokenId>,
        max_ttl: Option<Duration>,
    ) -> Result<Minted, IssueError> {
        let claims = self.claims_for(request, token_id, max_ttl.unwrap_or(self.max_ttl))?;
        let token = match (self.format, token_type) {
            #[cfg(feature = "jwt")]
            (TokenFormat::Jwt, TokenType::Access) => {
                crate::token::jwt::sign(&self.key, &claims.to_jwt_json())
            }
            _ => {
                let assertion = match token_type {
                    TokenType::Refresh => &self.assertions[1],
                    _ => &self.assertions[0],
                };
                paseto::sign_writing(
                    &self.key,
                    claims.json_len_hint(),
                    |out| claims.write_json_into(out),
                    &self.footer,
                    assertion,
                )
            }
        };
        let record_failed = |what: &str, e: &dyn std::fmt::Display| {
            IssueError::new(
                IssueErrorKind::Record,
                format!("token withheld: the {what} could not record it: {e}"),
            )
        };
        if let Some(inventory) = &self.inventory {
            inventory
                .record_issued(TokenRecord::new(&claims, self.key.key_id(), token_type))
                .map_err(|e| record_failed("inventory", &e))?;
        }
        if let Some(sink) = &self.audit {
            let event =
                AuditEvent::issued(self.clock.now(), token_type, &claims, self.key.key_id());
            sink.record(&event)
                .map_err(|e| record_failed("audit sink", &e))?;
        }
        Ok(Minted {
            token: BearerToken(token),
            claims,
        })
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn claims_for(
        &self,
        r: &TokenRequest,
        token_id: Option<TokenId>,
        max_ttl: Duration,
    ) -> Result<Claims, IssueError> {
        let invalid = |e: String| IssueError::new(IssueErrorKind::InvalidClaim, e);
        check_text("sub", &r.subject).map_err(invalid)?;
        check_text("aud", &r.audience).map_err(invalid)?;
        for (name, value) in [("owner", &r.owner), ("purpose", &r.purpose)] {
            if let Some(v) = value {
                check_text(name, v).map_err(invalid)?;
            }
        }
        if r.scopes.is_empty() {
            return Err(IssueError::new(
                IssueErrorKind::NoScope,
                "a token must grant at least one scope",
            ));
        }
        if !r.allow_broad && r.scopes.is_broad() {
            let broad: Vec<String> = r.scopes.broad().map(Scope::to_string).collect();
            return Err(IssueError::new(
                IssueErrorKind::BroadScope,
                format!(
                    "broad scope {} needs an explicit opt-in (TokenRequest::allow_broad); \
                     prefer listing concrete scopes",
                    broad.join(" ")
                ),
            ));
        }
        if !r.escalate && !r.scopes.is_read_only() {
            let beyond: Vec<String> = r.scopes.beyond_read().map(Scope::to_string).collect();
            return Err(IssueError::new(
                IssueErrorKind::NeedsEscalation,
                format!(
                    "{} goes beyond read: mint it for a consumer whose ceiling allows it, or \
                     escalate explicitly (TokenRequest::escalate, `scopekey mint --escalate`)",
                    beyond.join(" ")
                ),
            ));
        }
        if r.networks.len() > MAX_NETWORKS {
            return Err(invalid(format!(
                "a token may be limited to at most {MAX_NETWORKS} networks"
            )));
        }
        let mut other = Map::new();
        if !r.networks.is_empty() {
            let mut nets: Vec<String> = r.networks.iter().map(ToString::to_string).collect();
            nets.sort();
            nets.dedup();
            other.insert(NETWORK_CLAIM.to_owned(), serde_json::json!(nets));
        }
        if let Some(uses) = r.max_uses {
            if !(1..=MAX_USES).contains(&uses) {
                return Err(invalid(format!(
                    "a token may be limited to 1 to {MAX_USES} uses, not {uses}"
                )));
            }
            other.insert(USES_CLAIM.to_owned(), serde_json::Value::from(uses));
        }
        if let Some(custom) = &r.custom {
            other.insert(
                crate::token::custom::CUSTOM_CLAIM.to_owned(),
                custom.clone(),
            );
        }
        let ttl = r.ttl.unwrap_or(self.default_ttl);
        if ttl.as_secs() == 0 || ttl > max_ttl {
            return Err(IssueError::new(
                IssueErrorKind::Lifetime,
                format!(
                    "lifetime {} s is not between 1 s and the maximum of {} s",
                    ttl.as_secs(),
                    max_ttl.as_secs()
                ),
            ));
        }
        let now = self.clock.now();
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let expires_at = i64::try_from(ttl.as_secs())
            .ok()
            .and_then(|s| now.checked_add(time::Duration::seconds(s)))
            .ok_or_else(|| IssueError::new(IssueErrorKind::Lifetime, "lifetime out of range"))?;
        let token_id = match token_id {
            Some(id) => id,
            None => TokenId::generate().map_err(|_| {
                IssueError::new(
                    IssueErrorKind::Randomness,
                    "the operating system's random number generator failed",
                )
            })?,
        };
        Ok(Claims {
            issuer: self.issuer.clone(),
            subject: r.subject.clone(),
            audience: r.audience.clone(),
            environment: self.environment.clone(),
            expires_at,
            not_before: Some(now),
            issued_at: now,
            token_id,
            scopes: r.scopes.clone(),
            owner: r.owner.clone(),
            purpose: r.purpose.clone(),
            family: r.family.clone(),
            other,
        })
    }
}

/// The wire format of minted access tokens.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TokenFormat {
    /// PASETO v4.public with a `{"kid":…}` footer and the environment bound in the implicit
    /// assertion: the default.
    #[default]
    Paseto,
    /// JWT (JWS compact, `alg` EdDSA, `typ` at+jwt), for gateways that only speak JWT: see
    /// [`crate::jwt`]. Needs the `jwt` feature.
    #[cfg(feature = "jwt")]
    Jwt,
}

impl TokenFormat {
    /// `paseto` or `jwt`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paseto => "paseto",
            #[cfg(feature = "jwt")]
            Self::Jwt => "jwt",
        }
    }
}

/// Why a token format name was refused, for matching.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnknownFormatKind {
    /// Neither `paseto` nor `jwt`.
    Unknown,
    /// `jwt`, in a build without the `jwt` feature.
    FeatureDisabled,
}

/// A token format name that is not `paseto` or `jwt` (or `jwt` without the `jwt` feature).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{1}")]
pub struct UnknownFormat(UnknownFormatKind, String);

impl UnknownFormat {
    /// Why, for matching.
    pub fn kind(&self) -> UnknownFormatKind {
        self.0
    }
}

impl std::str::FromStr for TokenFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, UnknownFormat> {
        match s {
            "paseto" => Ok(Self::Paseto),
            #[cfg(feature = "jwt")]
            "jwt" => Ok(Self::Jwt),
            #[cfg(not(feature = "jwt"))]
            "jwt" => Err(UnknownFormat(
                UnknownFormatKind::FeatureDisabled,
                "JWT needs scopekey's `jwt` feature (enable it in Cargo.toml)".into(),
            )),
            other => Err(UnknownFormat(
                UnknownFormatKind::Unknown,
                format!(
                    "unknown token format {:?}: use paseto or jwt",
                    other.chars().take(40).collect::<String>()
                ),
            )),
        }
    }
}

/// The footer every scopekey token carries: `{"kid":"k4.pid.…"}`.
pub(crate) fn kid_footer(kid: &KeyId) -> Vec<u8> {
    format!("{{\"kid\":\"{}\"}}", kid.as_str()).into_bytes()
}
