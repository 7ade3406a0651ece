//! Verifying tokens and authorizing actions.

use crate::clock::{Clock, SystemClock};
use crate::dpop::{DpopPolicy, DpopRequest};
use crate::key::{KeyEntry, KeyId, KeyRing, KeySet};
use crate::token::audit::{AuditEvent, AuditKind, AuditSink, RequestContext};
use crate::token::cache::{GrantCache, Verified};
use crate::token::claims::{Claims, Environment, Expected, TokenType, check_text};
use crate::token::claims_json;
use crate::token::error::{VerifyError, VerifyErrorKind};
use crate::token::footer::key_id_from_footer;
use crate::token::grant::Grant;
use crate::token::inventory::Inventory;
use crate::token::issuer::DEFAULT_MAX_TTL;
use crate::token::paseto;
use crate::token::revocation::{RevocationCheck, RevocationStatus, TokenFacts};
use crate::token::usage::UsageCounter;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Gives every verifier its own number, so a cache shared between verifiers never serves one
/// verifier's grant to another.
static NEXT_VERIFIER_ID: AtomicU64 = AtomicU64::new(1);

/// Clock skew tolerated by default: 60 seconds.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// The largest leeway a verifier accepts: 120 seconds.
pub const MAX_LEEWAY: Duration = Duration::from_secs(120);
/// Longest accepted footer, in bytes once decoded.
pub const MAX_FOOTER_LEN: usize = 256;

/// What was wrong with verifier settings, for matching.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigErrorKind {
    /// The issuer is empty, too long or has control characters.
    InvalidIssuer,
    /// The audience is empty, too long or has control characters.
    InvalidAudience,
    /// The leeway is above [`MAX_LEEWAY`].
    LeewayTooLarge,
    /// The maximum lifetime is under one second.
    LifetimeTooShort,
}

/// Invalid verifier settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid verifier configuration: {message}")]
pub struct ConfigError {
    kind: ConfigErrorKind,
    message: String,
}

impl ConfigError {
    fn new(kind: ConfigErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Why, for matching.
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }
}

/// What a verifier expects of every token. Issuer, audience and environment are required.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    issuer: Arc<str>,
    audience: Arc<str>,
    environment: Environment,
    leeway: Duration,
    max_lifetime: Duration,
    clock: Arc<dyn Clock>,
    token_type: TokenType,
    #[cfg(feature = "jwt")]
    accept_jwt: bool,
}

impl VerifierConfig {
    /// Tokens must come from `issuer`, be meant for `audience` and belong to `environment`.
    ///
    /// Defaults: leeway [`DEFAULT_LEEWAY`], maximum lifetime 1 hour, the system clock.
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        environment: Environment,
    ) -> Self {
        Self {
            issuer: issuer.into().into(),
            audience: audience.into().into(),
            environment,
            leeway: DEFAULT_LEEWAY,
            max_lifetime: DEFAULT_MAX_TTL,
            clock: Arc::new(SystemClock),
            token_type: TokenType::Access,
            #[cfg(feature = "jwt")]
            accept_jwt: false,
        }
    }

    /// Whether JWT access tokens are accepted next to PASETO (default: no).
    ///
    /// # Security
    /// Off unless asked for here, per verifier: turning the `jwt` feature on anywhere in a
    /// dependency graph does not make every verifier accept a second format. A verifier that
    /// does not accept JWTs refuses one as [`VerifyErrorKind::UnsupportedFormat`].
    #[cfg(feature = "jwt")]
    pub fn accept_jwt(mut self, accept: bool) -> Self {
        self.accept_jwt = accept;
        self
    }

    /// Clock skew to tolerate on `exp`, `nbf` and `iat`; at most [`MAX_LEEWAY`].
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The longest `exp − iat` accepted (default 1 hour).
    pub fn max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = max;
        self
    }

    /// The clock to check times against (default: the system clock).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The clock, shared with an issuer.
    pub(crate) fn shared_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Which token type to accept; only the refresh exchange asks for refresh tokens.
    pub(crate) fn token_type(mut self, token_type: TokenType) -> Self {
        self.token_type = token_type;
        self
    }
}

/// Verifies tokens: signature, key id, environment binding, claims and times.
///
/// ```
/// use scopekey::{Action, Issuer, KeySet, Resource, SigningKey, TokenRequest, Verifier, VerifierConfig};
///
/// let key = SigningKey::generate()?;
/// let keys = KeySet::single(key.public_key().clone());
/// let issuer = Issuer::new(key, "https://auth.example", "production".parse()?)?;
/// let verifier = Verifier::new(
///     keys,
///     VerifierConfig::new("https://auth.example", "https://api.example", "production".parse()?),
/// )?;
///
/// let minted = issuer.issue(&TokenRequest::new("ci", "https://api.example", "projects:read".parse()?))?;
/// let grant = verifier.verify(minted.token().as_str())?;
/// grant.authorize(&Resource::from_segments(["projects", "42"])?, &Action::read())?;
/// assert!(grant.authorize(&Resource::from_segments(["projects", "42"])?, &Action::write()).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Verifier {
    id: u64,
    keys: Arc<KeyRing>,
    cache: Option<GrantCache>,
    config: VerifierConfig,
    assertion: Vec<u8>,
    revocations: Option<Arc<dyn RevocationCheck>>,
    audit: Option<Arc<dyn AuditSink>>,
    inventory: Option<Arc<dyn Inventory>>,
    usage: Option<Arc<dyn UsageCounter>>,
    dpop: Option<DpopPolicy>,
}

impl Verifier {
    /// A verifier trusting `keys` and expecting what `config` says.
    ///
    /// # Errors
    /// [`ConfigError`] for an empty or invalid issuer or audience, a leeway above
    /// [`MAX_LEEWAY`], or a zero maximum lifetime.
    pub fn new(keys: KeySet, config: VerifierConfig) -> Result<Self, ConfigError> {
        Self::with_key_ring(Arc::new(KeyRing::new(keys)), config)
    }

    /// A verifier trusting whatever `ring` holds at each verification: a store replica keeps it
    /// current, so key rotations need no restart.
    ///
    /// # Errors
    /// As [`Verifier::new`].
    pub fn with_key_ring(keys: Arc<KeyRing>, config: VerifierConfig) -> Result<Self, ConfigError> {
        check_text("iss", &config.issuer)
            .map_err(|e| ConfigError::new(ConfigErrorKind::InvalidIssuer, e))?;
        check_text("aud", &config.audience)
            .map_err(|e| ConfigError::new(ConfigErrorKind::InvalidAudience, e))?;
        if config.leeway > MAX_LEEWAY {
            return Err(ConfigError::new(
                ConfigErrorKind::LeewayTooLarge,
                format!(
                    "leeway {} s is above the maximum of {} s",
                    config.leeway.as_secs(),
                    MAX_LEEWAY.as_secs()
                ),
            ));
        }
        if config.max_lifetime.as_secs() == 0 {
            return Err(ConfigError::new(
                ConfigErrorKind::LifetimeTooShort,
                "maximum lifetime must be at least 1 s",
            ));
        }
        Ok(Self {
            id: NEXT_VERIFIER_ID.fetch_add(1, Ordering::Relaxed),
            assertion: paseto::implicit_assertion(&config.environment, config.token_type),
            keys,
            cache: None,
            config,
            revocations: None,
            audit: None,
            inventory: None,
            usage: None,
            dpop: None,
        })
    }

    /// Checks every token against `revocations` after its signature and claims, before a
    /// grant exists. A list that reports itself stale makes verification fail closed.
    pub fn with_revocations(mut self, revocations: Arc<dyn RevocationCheck>) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// Records `verified` and `refused` events, and the grants' `authorized` and `denied`
    /// events. A sink failure fails closed ([`VerifyErrorKind::AuditUnavailable`]).
    pub fn with_audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// Caches verified grants in `cache`, so a token seen again skips the signature check
    /// (and nothing else): see [`crate::cache`]. Off by default.
    pub fn with_grant_cache(mut self, cache: GrantCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The verifier's own grant cache, if [`with_grant_cache`](Self::with_grant_cache) set one.
    pub fn grant_cache(&self) -> Option<&GrantCache> {
        self.cache.as_ref()
    }

    /// Notes each accepted token's last use in `inventory` (never blocking).
    pub fn with_inventory(mut self, inventory: Arc<dyn Inventory>) -> Self {
        self.inventory = Some(inventory);
        self
    }

    /// Counts the uses of use-limited tokens (claim `uses`) in `counter`, on every
    /// verification, cached or not, once every other check has passed. Without a counter, a
    /// use-limited token is refused ([`VerifyErrorKind::UsageUnavailable`]); tokens without
    /// `uses` never touch it. See [`crate::usage`].
    pub fn with_usage_counter(mut self, counter: Arc<dyn UsageCounter>) -> Self {
        self.usage = Some(counter);
        self
    }

    /// Checks the DPoP proof of every DPoP-bound token (claim `cnf.jkt`) as `policy` says, on
    /// every verification, cached or not, before a use is counted. Without a policy, a bound
    /// token is refused ([`VerifyErrorKind::DpopUnavailable`]); unbound tokens never touch
    /// it. See [`crate::dpop`].
    pub fn with_dpop(mut self, policy: DpopPolicy) -> Self {
        self.dpop = Some(policy);
        self
    }

    /// The DPoP policy, if [`with_dpop`](Self::with_dpop) set one (the HTTP layer asks it for
    /// nonces).
    pub fn dpop_policy(&self) -> Option<&DpopPolicy> {
        self.dpop.as_ref()
    }

    /// The server nonce a client should put in its next DPoP proof, by this verifier's
    /// clock, when its [policy](Self::with_dpop) requires nonces.
    pub fn dpop_nonce(&self) -> Option<String> {
        let policy = self.dpop.as_ref()?;
        policy.nonce(self.config.clock.now_unix())
    }

    /// The trusted keys, as of now.
    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.snapshot()
    }

    /// The ring of trusted keys, to rotate them in place:
    /// `verifier.key_ring().update(|keys| { keys.insert(new_key); })`.
    pub fn key_ring(&self) -> &Arc<KeyRing> {
        &self.keys
    }

    /// Verifies a token and returns the grant it carries.
    ///
    /// Order: length (before any decoding), header, structure and base64url, footer and key id
    /// (looked up in memory only), signature with the environment bound in, then the claims
    /// (parsed only once authenticated), issuer, audience, environment and times, revocation,
    /// and last one use of a use-limited token (claim `uses`), counted by the
    /// [usage counter](Self::with_usage_counter).
    ///
    /// # Errors
    /// A [`VerifyError`] whose [`kind`](VerifyError::kind) names the reason; see [`VerifyErrorKind`].
    ///
    /// # Security
    /// Nothing in the token is trusted before its signature verifies except the key id, which
    /// only selects a key from the configured set.
    pub fn verify(&self, token: &str) -> Result<Grant, VerifyError> {
        self.verify_inner(token, self.cache.as_ref(), None, None, None)
    }

    /// Verifies a token like [`verify`](Self::verify), through `cache` (which may be shared
    /// by several verifiers: entries are bound to the verifier that made them). The verifier's
    /// own cache, if any, is not used.
    ///
    /// # Errors
    /// As [`verify`](Self::verify).
    pub fn verify_cached(&self, token: &str, cache: &GrantCache) -> Result<Grant, VerifyError> {
        self.verify_inner(token, Some(cache), None, None, None)
    }

    /// Verifies a token made for `request`, through `cache` (or the verifier's own cache when
    /// `None`), as [`verify_cached`](Self::verify_cached) does: the `verified` or `refused`
    /// event, and the `authorized` and `denied` events of the grant's
    /// [`authorize`](Grant::authorize) calls, carry the request's method, path, client address
    /// and id. HTTP layers call this; see [`records_audit`](Self::records_audit) to skip
    /// building the context when nothing is recorded.
    ///
    /// # Errors
    /// As [`verify`](Self::verify).
    pub fn verify_for_request(
        &self,
        token: &str,
        cache: Option<&GrantCache>,
        request: RequestContext,
    ) -> Result<Grant, VerifyError> {
        self.verify_inner(
            token,
            cache.or(self.cache.as_ref()),
            None,
            Some(Arc::new(request)),
            None,
        )
    }

    /// Verifies a token presented by `client` (the request's client address, when the caller
    /// knows it), through `cache` (or the verifier's own cache when `None`): a token limited to
    /// client networks (claim `net`) is accepted only from inside them, and refused when
    /// `client` is `None`. [`verify`](Self::verify) knows no client, so it refuses every
    /// network-limited token; HTTP layers call this (or
    /// [`verify_for_request`](Self::verify_for_request), whose context carries the client).
    ///
    /// # Errors
    /// As [`verify`](Self::verify) (which includes [`VerifyErrorKind::UsesExhausted`] and
    /// [`VerifyErrorKind::UsageUnavailable`] for a use-limited token), and
    /// [`VerifyErrorKind::NetworkNotAllowed`].
    pub fn verify_from(
        &self,
        token: &str,
        cache: Option<&GrantCache>,
        client: Option<IpAddr>,
    ) -> Result<Grant, VerifyError> {
        self.verify_inner(token, cache.or(self.cache.as_ref()), client, None, None)
    }

    /// Verifies a token as [`verify`](Self::verify) does (signature, claims, revocation),
    /// except for a network caveat (claim `net`), which belongs to the request a token is
    /// presented with, not to the token: for an introspection or revocation endpoint, or an
    /// operator, asking whether a token is live. Records nothing in the audit trail or the
    /// inventory (it is not a use of the token) and bypasses the grant cache. A use-limited
    /// token (claim `uses`) uses nothing here, and its count is not read: one used up still
    /// verifies.
    ///
    /// # Security
    /// Never authorize a request with the grant it returns: a network-limited token presented
    /// from outside its networks verifies here, and so does a used-up one.
    ///
    /// # Errors
    /// As [`verify`](Self::verify), without [`VerifyErrorKind::NetworkNotAllowed`].
    pub fn verify_ignoring_network(&self, token: &str) -> Result<Grant, VerifyError> {
        let unix_now = self.config.clock.now_unix();
        self.check_token(token, unix_now, None)
            .map(|verified| Grant {
                verified,
                audit: None,
                request: None,
                clock: self.config.clock.clone(),
            })
            .map_err(|(error, _)| error)
    }

    /// Whether this verifier records decisions in an audit trail.
    pub fn records_audit(&self) -> bool {
        self.audit.is_some()
    }

    pub(crate) fn verify_inner(
        &self,
        token: &str,
        cache: Option<&GrantCache>,
        client: Option<IpAddr>,
        request: Option<Arc<RequestContext>>,
        dpop: Option<&DpopRequest<'_>>,
    ) -> Result<Grant, VerifyError> {
        let unix_now = self.config.clock.now_unix();
        let client = request.as_ref().and_then(|r| r.client).or(client);
        let result = self.check(token, unix_now, cache, client, dpop);
        if self.audit.is_none() && self.inventory.is_none() {
            // Nothing to record: skip building a calendar date (the cached path's largest cost).
            return match result {
                Ok(verified) => Ok(Grant {
                    verified,
                    audit: None,
                    request: None,
                    clock: self.config.clock.clone(),
                }),
                Err((error, _)) => Err(error),
            };
        }
        let now = self.config.clock.now();
        match result {
            Ok(verified) => {
                if let Some(sink) = &self.audit {
                    let event = AuditEvent::for_token(
                        now,
                        AuditKind::Verified,
                        &verified.claims,
                        Some(&verified.key_id),
                    )
                    .in_request(request.clone());
                    sink.record(&event).map_err(|e| audit_failed(&e))?;
                }
                if let Some(inventory) = &self.inventory {
                    inventory.touch(verified.claims.token_id(), now);
                }
                Ok(Grant {
                    verified,
                    audit: self.audit.clone(),
                    request,
                    clock: self.config.clock.clone(),
                })
            }
            Err((error, claims)) => {
                if let Some(sink) = &self.audit {
                    let event = AuditEvent::refused(now, error.kind(), claims.as_deref())
                        .in_request(request);
                    if let Err(e) = sink.record(&event) {
                        return Err(VerifyError::new(
                            VerifyErrorKind::AuditUnavailable,
                            format!(
                                "token refused ({}), and {}",
                                error.kind().as_str(),
                                audit_failed(&e)
                            ),
                        ));
                    }
                }
                Err(error)
            }
        }
    }

    /// Everything but the audit trail, for a request from `client` (when known). On failure,
    /// the claims if the signature had verified.
    fn check(
        &self,
        token: &str,
        unix_now: i64,
        cache: Option<&GrantCache>,
        client: Option<IpAddr>,
        dpop: Option<&DpopRequest<'_>>,
    ) -> Result<Arc<Verified>, Refusal> {
        let verified = self.check_token(token, unix_now, cache)?;
        // On every request, cached or not: the token stays valid elsewhere, so a refusal here
        // leaves the cache alone.
        if let Some(networks) = &verified.networks {
            let refuse = |why: String| {
                Err((
                    VerifyError::new(VerifyErrorKind::NetworkNotAllowed, why),
                    Some(Box::new(verified.claims.clone())),
                ))
            };
            match client {
                None => {
                    return refuse(
                        "the token is limited to client networks and the request's client \
                         address is not known (configure how the service finds it)"
                            .into(),
                    );
                }
                Some(ip) if !networks.iter().any(|n| n.contains(ip)) => {
                    return refuse(format!(
                        "the token may not be used from {ip}: it is limited to other networks"
                    ));
                }
                Some(_) => {}
            }
        }
        // On every request too, and before the use is counted.
        crate::token::presentation::check_binding(
            self.dpop.as_ref(),
            verified.dpop_jkt.as_ref(),
            token,
            dpop,
            unix_now,
        )
        .map_err(|e| (e, Some(Box::new(verified.claims.clone()))))?;
        // Last, so that a token refused for anything else uses nothing; on every request.
        if let Some(limit) = verified.max_uses {
            crate::token::usage::consume_use(self.usage.as_deref(), &verified.claims, limit)
                .map_err(|e| (e, Some(Box::new(verified.claims.clone()))))?;
        }
        Ok(verified)
    }

    /// The token's own checks (signature or cache, claims, revocation).
    fn check_token(
        &self,
        token: &str,
        unix_now: i64,
        cache: Option<&GrantCache>,
    ) -> Result<Arc<Verified>, Refusal> {
        // Before anything else, whatever the format, and the only length check on the way:
        // the decoders below rely on it.
        paseto::check_length(token).map_err(|e| (e, None))?;
        // Read before the key snapshot: an entry is never tagged newer than its keys.
        let ring_version = self.keys.version();
        if let Some(verified) = cache.and_then(|c| c.get(token, self.id, ring_version, unix_now)) {
            // A hit skips the signature and parsing; everything that can change since is
            // checked again.
            let checked = self
                .check_claims(&verified.claims, unix_now)
                .and_then(|()| self.check_revocation(&verified.claims, &verified.key_id));
            return match checked {
                Ok(()) => Ok(verified),
                Err(e) => {
                    if let Some(c) = cache {
                        c.remove(token);
                    }
                    Err((e, Some(Box::new(verified.claims.clone()))))
                }
            };
        }
        let (claims, key_id, retire_at) = self.check_signed(token, unix_now)?;
        if let Err(e) = self.check_claims(&claims, unix_now) {
            return Err((e, Some(Box::new(claims))));
        }
        if let Err(e) = self.check_revocation(&claims, &key_id) {
            return Err((e, Some(Box::new(claims))));
        }
        let leeway = i64::try_from(self.config.leeway.as_secs()).unwrap_or(0);
        let valid_until = (claims.expires_at.unix_timestamp() + leeway)
            .min(retire_at.map_or(i64::MAX, |t| t.unix_timestamp()));
        let networks = match crate::token::network::networks_of(&claims.other) {
            Ok(n) => n,
            Err(why) => {
                let e = VerifyError::new(VerifyErrorKind::InvalidClaims, why);
                return Err((e, Some(Box::new(claims))));
            }
        };
        let max_uses = match crate::token::usage::uses_of(&claims.other) {
            Ok(n) => n,
            Err(why) => {
                let e = VerifyError::new(VerifyErrorKind::InvalidClaims, why);
                return Err((e, Some(Box::new(claims))));
            }
        };
        let dpop_jkt = match crate::dpop::jkt_of(&claims.other) {
            Ok(jkt) => jkt,
            Err(why) => {
                let e = VerifyError::new(VerifyErrorKind::InvalidClaims, why);
                return Err((e, Some(Box::new(claims))));
            }
        };
        let verified = Arc::new(Verified {
            claims,
            key_id,
            networks,
            max_uses,
            dpop_jkt,
        });
        if let Some(c) = cache {
            c.insert(
                token,
                self.id,
                ring_version,
                valid_until,
                unix_now,
                verified.clone(),
            );
        }
        Ok(verified)
    }

    /// Decoding, key, signature and claims parsing: what the cache saves. Returns the claims,
    /// the key id and the key's `retire_at`.
    fn check_signed(
        &self,
        token: &str,
        unix_now: i64,
    ) -> Result<(Claims, KeyId, Option<time::OffsetDateTime>), Refusal> {
        // The length was checked by `check`, before the cache.
        #[cfg(feature = "jwt")]
        if crate::token::jwt::routes_to_jwt(token) {
            return self.check_signed_jwt(token, unix_now);
        }
        let mut decoded = paseto::decode(token).map_err(|e| (e, None))?;
        let kid = key_id_from_footer(decoded.footer()).map_err(|e| (e, None))?;
        let keys = self.keys.snapshot();
        let entry = active_key(&keys, &kid, unix_now).map_err(|e| (e, None))?;
        let payload = decoded
            .verify(entry.key(), &self.assertion)
            .map_err(|e| (e, None))?;
        let object = claims_json::parse_claims(payload, claims_json::CLAIMS).map_err(|e| {
            (
                VerifyError::claims(format!("claims are not valid: {e}")),
                None,
            )
        })?;
        let claims = Claims::from_object(
            object,
            Some(&Expected {
                issuer: &self.config.issuer,
                audience: &self.config.audience,
                environment: &self.config.environment,
            }),
        )
        .map_err(|e| (e, None))?;
        Ok((claims, entry.key().key_id().clone(), entry.retire_at()))
    }

    /// The JWT counterpart of [`check_signed`](Self::check_signed): header first, then the key,
    /// the signature, and only then the claims.
    #[cfg(feature = "jwt")]
    fn check_signed_jwt(
        &self,
        token: &str,
        unix_now: i64,
    ) -> Result<(Claims, KeyId, Option<time::OffsetDateTime>), Refusal> {
        if !self.config.accept_jwt {
            return Err((
                VerifyError::new(
                    VerifyErrorKind::UnsupportedFormat,
                    "this verifier accepts PASETO v4.public only, not JWTs (see VerifierConfig::accept_jwt)",
                ),
                None,
            ));
        }
        if self.config.token_type != TokenType::Access {
            return Err((
                VerifyError::new(
                    VerifyErrorKind::UnsupportedFormat,
                    "refresh tokens are PASETO v4.public; a JWT is an access token",
                ),
                None,
            ));
        }
        let decoded = crate::token::jwt::decode(token).map_err(|e| (e, None))?;
        let keys = self.keys.snapshot();
        let entry = active_key(&keys, decoded.kid(), unix_now).map_err(|e| (e, None))?;
        let payload = decoded.verify(token, entry.key()).map_err(|e| (e, None))?;
        let mut object = claims_json::parse_claims(payload, claims_json::CLAIMS).map_err(|e| {
            (
                VerifyError::claims(format!("claims are not valid: {e}")),
                None,
            )
        })?;
        if object.get_mut("env").is_none() {
            return Err((
                VerifyError::claims(
                    "claim `env` is missing: a JWT names its environment in the claims",
                ),
                None,
            ));
        }
        let claims =
            Claims::from_jwt_object(object, &self.config.audience).map_err(|e| (e, None))?;
        Ok((claims, entry.key().key_id().clone(), entry.retire_at()))
    }

    fn check_revocation(&self, claims: &Claims, key_id: &KeyId) -> Result<(), VerifyError> {
        if let Some(revocations) = &self.revocations {
            match revocations.status_of(&TokenFacts::of(claims, key_id)) {
                RevocationStatus::NotRevoked => {}
                RevocationStatus::Revoked(record) => {
                    return Err(VerifyError::new(
                        VerifyErrorKind::Revoked,
                        format!(
                            "token was revoked ({} revocation at {}); its consumer needs a new token",
                            record.target().kind(),
                            crate::codec::rfc3339::format(record.at())
                        ),
                    ));
                }
                RevocationStatus::Stale { .. } => {
                    return Err(VerifyError::new(
                        VerifyErrorKind::RevocationStale,
                        "revocation state is stale (the store has not been reached within its \
                         bound); refusing until it is current again",
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_claims(&self, c: &Claims, now: i64) -> Result<(), VerifyError> {
        let cfg = &self.config;
        if c.issuer != cfg.issuer {
            return Err(VerifyError::new(
                VerifyErrorKind::WrongIssuer,
                format!("token was not issued by {:?}", cfg.issuer),
            ));
        }
        if c.audience != cfg.audience {
            return Err(VerifyError::new(
                VerifyErrorKind::WrongAudience,
                format!("token is not meant for audience {:?}", cfg.audience),
            ));
        }
        if c.environment != cfg.environment {
            return Err(VerifyError::new(
                VerifyErrorKind::WrongEnvironment,
                format!(
                    "token does not belong to environment {:?}",
                    cfg.environment.as_str()
                ),
            ));
        }
        // Leeway is capped at 120 s, so these conversions and sums cannot overflow for the
        // years 1970..=9999 that claims are limited to.
        let leeway = i64::try_from(cfg.leeway.as_secs()).unwrap_or(0);
        let exp = c.expires_at.unix_timestamp();
        let iat = c.issued_at.unix_timestamp();
        if exp <= iat {
            return Err(VerifyError::claims("token expires before it was issued"));
        }
        if let Some(nbf) = c.not_before {
            if nbf.unix_timestamp() > exp {
                return Err(VerifyError::claims("token becomes valid after it expires"));
            }
            if nbf.unix_timestamp() > now + leeway {
                return Err(VerifyError::new(
                    VerifyErrorKind::NotYetValid,
                    format!(
                        "token is not valid for another {} s (leeway {leeway} s); check the clocks",
                        nbf.unix_timestamp() - now
                    ),
                ));
            }
        }
        if iat > now + leeway {
            return Err(VerifyError::new(
                VerifyErrorKind::NotYetValid,
                format!(
                    "token was issued {} s in the future (leeway {leeway} s); check the clocks",
                    iat - now
                ),
            ));
        }
        if now >= exp + leeway {
            return Err(VerifyError::new(
                VerifyErrorKind::Expired,
                format!(
                    "token expired {} s ago (leeway {leeway} s); ask the issuer for a new token",
                    now - exp
                ),
            ));
        }
        let max = i64::try_from(cfg.max_lifetime.as_secs()).unwrap_or(i64::MAX);
        if exp - iat > max {
            return Err(VerifyError::new(
                VerifyErrorKind::LifetimeTooLong,
                format!(
                    "token lifetime {} s is longer than the {max} s this service accepts",
                    exp - iat
                ),
            ));
        }
        Ok(())
    }
}

/// A refusal, with the claims when the signature had verified (for the audit event).
type Refusal = (VerifyError, Option<Box<Claims>>);

/// The trusted, currently valid key named `kid` in `keys` (a snapshot), looked up in memory only.
fn active_key<'k>(keys: &'k KeySet, kid: &str, unix_now: i64) -> Result<&'k KeyEntry, VerifyError> {
    let entry = keys.get(kid).ok_or_else(|| {
        VerifyError::new(
            VerifyErrorKind::UnknownKey,
            "token's key id is not in the key set: it was signed by a key this service does \
             not trust (add the issuer's current public key if keys were rotated)",
        )
    })?;
    if !entry.is_active_during_second(unix_now) {
        return Err(VerifyError::new(
            VerifyErrorKind::UnknownKey,
            format!(
                "token's key {} is retired or not yet valid",
                entry.key().key_id()
            ),
        ));
    }
    Ok(entry)
}

fn audit_failed(e: &crate::token::audit::AuditError) -> VerifyError {
    VerifyError::new(
        VerifyErrorKind::AuditUnavailable,
        format!("the audit sink failed, so the decision is refused: {e}"),
    )
}
