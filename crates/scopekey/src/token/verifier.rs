//! Verifying tokens and authorizing actions.

use crate::dpop::{DpopPolicy, DpopRequest};
use crate::key::{KeyId, KeyRing, KeySet};
use crate::token::audit::{AuditEvent, AuditKind, AuditSink, RequestContext};
use crate::token::cache::{GrantCache, NO_GENERATION, Verified};
use crate::token::claims::{Claims, check_text};
use crate::token::error::{VerifyError, VerifyErrorKind};
use crate::token::footer::key_id_from_footer;
use crate::token::grant::Grant;
use crate::token::inventory::Inventory;
use crate::token::paseto;
use crate::token::revocation::{RevocationCheck, RevocationStatus, TokenFacts};
use crate::token::trust::{self, MAX_AUDIENCES, MAX_TRUSTED_ISSUERS, Trust, TrustedIssuer};
use crate::token::usage::UsageCounter;
pub use crate::token::verifier_config::{ConfigError, ConfigErrorKind, VerifierConfig};
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
    /// The configured issuer.
    own: Trust,
    /// The issuers [`trust_issuer`](Self::trust_issuer) added.
    others: Vec<Trust>,
    /// The audiences accepted, the configured one first; never empty.
    audiences: Box<[Arc<str>]>,
    cache: Option<GrantCache>,
    config: VerifierConfig,
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
        let audiences: Box<[Arc<str>]> = std::iter::once(config.audience.clone())
            .chain(config.more_audiences.iter().cloned())
            .collect();
        if audiences.len() > MAX_AUDIENCES {
            return Err(ConfigError::new(
                ConfigErrorKind::TooMany,
                format!("a verifier accepts at most {MAX_AUDIENCES} audiences"),
            ));
        }
        for audience in &audiences {
            check_text("aud", audience)
                .map_err(|e| ConfigError::new(ConfigErrorKind::InvalidAudience, e))?;
        }
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
        let own = TrustedIssuer {
            issuer: config.issuer.clone(),
            environment: config.environment.clone(),
            keys,
            ceiling: None,
        };
        Ok(Self {
            id: NEXT_VERIFIER_ID.fetch_add(1, Ordering::Relaxed),
            own: Trust::new(own, config.token_type),
            others: Vec::new(),
            audiences,
            cache: None,
            config,
            revocations: None,
            audit: None,
            inventory: None,
            usage: None,
            dpop: None,
        })
    }

    /// Trusts tokens from `issuer` too, signed by its keys and bound to its environment, besides
    /// the issuer of the configuration: see [`crate::trust`]. Audiences, times, revocation,
    /// audit and caches are the verifier's, shared by every issuer it trusts.
    ///
    /// # Errors
    /// [`ConfigErrorKind::InvalidIssuer`] for an issuer that is not valid claim text,
    /// [`ConfigErrorKind::DuplicateIssuer`] for one already trusted, and
    /// [`ConfigErrorKind::TooMany`] beyond
    /// [`MAX_TRUSTED_ISSUERS`](crate::trust::MAX_TRUSTED_ISSUERS).
    pub fn trust_issuer(mut self, issuer: TrustedIssuer) -> Result<Self, ConfigError> {
        check_text("iss", &issuer.issuer)
            .map_err(|e| ConfigError::new(ConfigErrorKind::InvalidIssuer, e))?;
        if self.trusts().any(|t| t.issuer == issuer.issuer) {
            return Err(ConfigError::new(
                ConfigErrorKind::DuplicateIssuer,
                format!("issuer {:?} is already trusted", issuer.issuer),
            ));
        }
        if self.others.len() + 1 >= MAX_TRUSTED_ISSUERS {
            return Err(ConfigError::new(
                ConfigErrorKind::TooMany,
                format!("a verifier trusts at most {MAX_TRUSTED_ISSUERS} issuers"),
            ));
        }
        self.others.push(Trust::new(issuer, self.config.token_type));
        Ok(self)
    }

    /// The issuers this verifier trusts, the configured one first.
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.trusts().map(|t| &*t.issuer)
    }

    /// The audiences this verifier accepts, the configured one first.
    pub fn audiences(&self) -> impl Iterator<Item = &str> {
        self.audiences.iter().map(|a| &**a)
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

    /// The keys of the configured issuer, as of now (those of the others
    /// [`trust_issuer`](Self::trust_issuer) added are in their [`TrustedIssuer`]s).
    pub fn keys(&self) -> Arc<KeySet> {
        self.own.keys.snapshot()
    }

    /// The ring of the configured issuer's keys, to rotate them in place:
    /// `verifier.key_ring().update(|keys| { keys.insert(new_key); })`.
    pub fn key_ring(&self) -> &Arc<KeyRing> {
        &self.own.keys
    }

    /// Every trusted issuer, the configured one first.
    fn trusts(&self) -> impl Iterator<Item = &Trust> {
        std::iter::once(&self.own).chain(&self.others)
    }

    /// The version of every trusted key ring together: it changes whenever one of them does
    /// (each only ever grows), which is what a cached grant is tagged with.
    fn ring_version(&self) -> u64 {
        self.others.iter().fold(self.own.keys.version(), |sum, t| {
            sum.wrapping_add(t.keys.version())
        })
    }

    /// The trusted issuer named `issuer`, if any.
    fn trust_named(&self, issuer: &Arc<str>) -> Option<&Trust> {
        self.trusts()
            .find(|t| Arc::ptr_eq(&t.issuer, issuer) || t.issuer == *issuer)
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
                clock: None,
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
                    clock: None,
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
                    clock: Some(self.config.clock.clone()),
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
        let ring_version = self.ring_version();
        if let Some(verified) = cache.and_then(|c| c.get(token, self.id, ring_version, unix_now)) {
            // A hit skips the signature and parsing; everything that can change since is
            // checked again.
            let checked = self
                .check_claims(&verified.claims, unix_now)
                .and_then(|()| self.check_cached_revocation(&verified));
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
        let generation = self.revocations.as_ref().and_then(|r| r.generation());
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
            not_revoked_at: AtomicU64::new(generation.unwrap_or(NO_GENERATION)),
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
    ///
    /// The token is checked against each trusted issuer whose keys hold its key id, and
    /// accepted from the first one whose key signed it and whose name its `iss` is.
    fn check_signed(&self, token: &str, unix_now: i64) -> Result<Signed, Refusal> {
        // The length was checked by `check`, before the cache.
        #[cfg(feature = "jwt")]
        if crate::token::jwt::routes_to_jwt(token) {
            return self.check_signed_jwt(token, unix_now);
        }
        let mut decoded = paseto::decode(token).map_err(|e| (e, None))?;
        let kid = key_id_from_footer(decoded.footer()).map_err(|e| (e, None))?;
        if self.others.is_empty() {
            let keys = self.own.keys.snapshot();
            let entry = trust::active_key(&keys, &kid, unix_now).map_err(|e| (e, None))?;
            return self.own.check_paseto(&mut decoded, entry, &self.audiences);
        }
        // Owned: the footer it is read from is borrowed again by each signature check.
        let kid = kid.into_owned();
        let mut refusal: Option<Refusal> = None;
        for trust in self.trusts() {
            let keys = trust.keys.snapshot();
            let checked = trust::active_key(&keys, &kid, unix_now)
                .map_err(|e| (e, None))
                .and_then(|entry| trust.check_paseto(&mut decoded, entry, &self.audiences));
            match checked {
                Ok(signed) => return Ok(signed),
                Err(e) => refusal = Some(trust::more_telling(refusal, e)),
            }
        }
        Err(refusal.unwrap_or_else(|| (trust::unknown_key(), None)))
    }

    /// The JWT counterpart of [`check_signed`](Self::check_signed): header first, then the key,
    /// the signature, and only then the claims.
    #[cfg(feature = "jwt")]
    fn check_signed_jwt(&self, token: &str, unix_now: i64) -> Result<Signed, Refusal> {
        if !self.config.accept_jwt {
            return Err((
                VerifyError::new(
                    VerifyErrorKind::UnsupportedFormat,
                    "this verifier accepts PASETO v4.public only, not JWTs (see VerifierConfig::accept_jwt)",
                ),
                None,
            ));
        }
        if self.config.token_type != crate::token::claims::TokenType::Access {
            return Err((
                VerifyError::new(
                    VerifyErrorKind::UnsupportedFormat,
                    "refresh tokens are PASETO v4.public; a JWT is an access token",
                ),
                None,
            ));
        }
        let decoded = crate::token::jwt::decode(token).map_err(|e| (e, None))?;
        let mut refusal: Option<Refusal> = None;
        for trust in self.trusts() {
            match trust.check_jwt(&decoded, token, unix_now, &self.audiences) {
                Ok(signed) => return Ok(signed),
                Err(e) => refusal = Some(trust::more_telling(refusal, e)),
            }
        }
        Err(refusal.unwrap_or_else(|| (trust::unknown_key(), None)))
    }

    /// The revocation check of a cache hit: when the list's generation is still the one at
    /// which this token was last found not revoked, only whether the list is stale (no lock
    /// shared with other threads); otherwise the full check, remembering the generation read
    /// before it when it passes.
    fn check_cached_revocation(&self, verified: &Verified) -> Result<(), VerifyError> {
        let Some(revocations) = &self.revocations else {
            return Ok(());
        };
        let Some(generation) = revocations.generation().filter(|g| *g != NO_GENERATION) else {
            return self.check_revocation(&verified.claims, &verified.key_id);
        };
        if verified.not_revoked_at.load(Ordering::Relaxed) == generation {
            return match revocations.stale_status() {
                None => Ok(()),
                Some(status) => revocation_outcome(status),
            };
        }
        self.check_revocation(&verified.claims, &verified.key_id)?;
        verified.not_revoked_at.store(generation, Ordering::Relaxed);
        Ok(())
    }

    fn check_revocation(&self, claims: &Claims, key_id: &KeyId) -> Result<(), VerifyError> {
        if let Some(revocations) = &self.revocations {
            revocation_outcome(revocations.status_of(&TokenFacts::of(claims, key_id)))?;
        }
        Ok(())
    }

    fn check_claims(&self, c: &Claims, now: i64) -> Result<(), VerifyError> {
        let cfg = &self.config;
        let Some(trust) = self.trust_named(&c.issuer) else {
            return Err(VerifyError::new(
                VerifyErrorKind::WrongIssuer,
                if self.others.is_empty() {
                    format!("token was not issued by {:?}", self.own.issuer)
                } else {
                    "token was not issued by any issuer this service trusts".to_owned()
                },
            ));
        };
        // One atomic load, cached or not: a ring that cannot vouch for its keys refuses every
        // token of its issuer (the other trusted issuers' keep verifying).
        if trust.keys.is_stale_at(now) {
            return Err(VerifyError::new(
                VerifyErrorKind::KeysStale,
                "the key set is stale (its source has not been reached within its bound); \
                 refusing until it is current again",
            ));
        }
        if !self.audiences.contains(&c.audience) {
            return Err(VerifyError::new(
                VerifyErrorKind::WrongAudience,
                if self.audiences.len() == 1 {
                    format!("token is not meant for audience {:?}", cfg.audience)
                } else {
                    format!(
                        "token is not meant for any of the audiences {:?}",
                        self.audiences
                    )
                },
            ));
        }
        if c.environment != trust.environment {
            return Err(VerifyError::new(
                VerifyErrorKind::WrongEnvironment,
                format!(
                    "token does not belong to environment {:?}",
                    trust.environment.as_str()
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
pub(crate) type Refusal = (VerifyError, Option<Box<Claims>>);

/// What a signature check gives: the claims, the key id and the key's `retire_at`.
pub(crate) type Signed = (Claims, KeyId, Option<time::OffsetDateTime>);

fn audit_failed(e: &crate::token::audit::AuditError) -> VerifyError {
    VerifyError::new(
        VerifyErrorKind::AuditUnavailable,
        format!("the audit sink failed, so the decision is refused: {e}"),
    )
}

/// What a revocation status means for a verification.
fn revocation_outcome(status: RevocationStatus) -> Result<(), VerifyError> {
    match status {
        RevocationStatus::NotRevoked => Ok(()),
        RevocationStatus::Revoked(record) => Err(VerifyError::new(
            VerifyErrorKind::Revoked,
            format!(
                "token was revoked ({} revocation at {}); its consumer needs a new token",
                record.target().kind(),
                crate::codec::rfc3339::format(record.at())
            ),
        )),
        RevocationStatus::Stale { .. } => Err(VerifyError::new(
            VerifyErrorKind::RevocationStale,
            "revocation state is stale (the store has not been reached within its \
             bound); refusing until it is current again",
        )),
    }
}
