//! Several issuers for one verifier: [`TrustedIssuer`].
//!
//! A verifier built with [`Verifier::new`](crate::Verifier::new) trusts one issuer, with its key
//! set and environment. [`Verifier::trust_issuer`](crate::Verifier::trust_issuer) adds others,
//! each with keys and an environment of its own, and
//! [`VerifierConfig::accept_audience`](crate::VerifierConfig::accept_audience) adds audiences.
//!
//! A token is checked against the issuers whose key sets hold its key id, and accepted only if
//! its signed `iss` is the issuer whose key signed it: a token that says it comes from issuer A
//! but was signed with issuer B's key is refused
//! ([`WrongIssuer`](crate::VerifyErrorKind::WrongIssuer)), whatever A's keys are.
//!
//! ```
//! use scopekey::{Issuer, KeySet, SigningKey, TokenRequest, TrustedIssuer, Verifier, VerifierConfig, VerifyErrorKind};
//!
//! let (a, b) = (SigningKey::generate()?, SigningKey::generate()?);
//! let verifier = Verifier::new(
//!     KeySet::single(a.public_key().clone()),
//!     VerifierConfig::new("https://auth.example", "https://api.example", "production".parse()?),
//! )?
//! .trust_issuer(TrustedIssuer::new(
//!     "https://partner.example",
//!     "partner-prod".parse()?,
//!     KeySet::single(b.public_key().clone()),
//! ))?;
//!
//! let request = TokenRequest::new("ci", "https://api.example", "projects:read".parse()?);
//! let ours = Issuer::new(a, "https://auth.example", "production".parse()?)?;
//! let partner = Issuer::new(SigningKey::from_paserk(&b.to_paserk())?, "https://partner.example", "partner-prod".parse()?)?;
//! assert!(verifier.verify(ours.issue(&request)?.token().as_str()).is_ok());
//! assert!(verifier.verify(partner.issue(&request)?.token().as_str()).is_ok());
//!
//! // The partner's key, our issuer's name: refused.
//! let forged = Issuer::new(b, "https://auth.example", "partner-prod".parse()?)?;
//! let refused = verifier.verify(forged.issue(&request)?.token().as_str()).unwrap_err();
//! assert_eq!(refused.kind(), VerifyErrorKind::WrongIssuer);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::key::{KeyEntry, KeyRing, KeySet};
use crate::scope::ScopeSet;
use crate::token::claims::{Claims, Environment, Expected, TokenType};
use crate::token::claims_json;
use crate::token::error::{VerifyError, VerifyErrorKind};
use crate::token::paseto;
use crate::token::verifier::{Refusal, Signed};
use std::sync::Arc;

/// The most issuers one verifier trusts, its own included: 16.
pub const MAX_TRUSTED_ISSUERS: usize = 16;

/// The most audiences one verifier accepts, its own included: 16.
pub const MAX_AUDIENCES: usize = 16;

/// An issuer a [`Verifier`](crate::Verifier) trusts besides its own, with the keys it signs
/// with and the environment its tokens belong to: see [the module](self).
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    pub(crate) issuer: Arc<str>,
    pub(crate) environment: Environment,
    pub(crate) keys: Arc<KeyRing>,
    pub(crate) ceiling: Option<ScopeSet>,
}

impl TrustedIssuer {
    /// Tokens from `issuer`, signed by one of `keys`, belonging to `environment`.
    pub fn new(issuer: impl Into<String>, environment: Environment, keys: KeySet) -> Self {
        Self::with_key_ring(issuer, environment, Arc::new(KeyRing::new(keys)))
    }

    /// As [`new`](Self::new), with keys that change in place (a store replica's, or a
    /// remote key set's).
    pub fn with_key_ring(
        issuer: impl Into<String>,
        environment: Environment,
        keys: Arc<KeyRing>,
    ) -> Self {
        Self {
            issuer: issuer.into().into(),
            environment,
            keys,
            ceiling: None,
        }
    }

    /// Trusts this issuer with `ceiling` only: a token of it granting any scope beyond is
    /// refused ([`WrongIssuer`](crate::VerifyErrorKind::WrongIssuer), naming the issuer).
    /// Without one, the issuer is trusted with every scope, so give every partner one.
    pub fn scope_ceiling(mut self, ceiling: ScopeSet) -> Self {
        self.ceiling = Some(ceiling);
        self
    }

    /// The issuer's name, as its tokens' `iss` says it.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The environment its tokens belong to.
    pub fn environment(&self) -> &Environment {
        &self.environment
    }

    /// Its keys.
    pub fn key_ring(&self) -> &Arc<KeyRing> {
        &self.keys
    }
}

/// A trusted issuer as a verifier holds it: with the PASETO implicit assertion of its
/// environment computed once.
#[derive(Debug)]
pub(crate) struct Trust {
    pub(crate) issuer: Arc<str>,
    pub(crate) environment: Environment,
    pub(crate) keys: Arc<KeyRing>,
    pub(crate) assertion: Vec<u8>,
    /// What the issuer is trusted with; `None`: everything (the verifier's own issuer).
    pub(crate) ceiling: Option<ScopeSet>,
}

impl Trust {
    pub(crate) fn new(trusted: TrustedIssuer, token_type: TokenType) -> Self {
        Self {
            assertion: paseto::implicit_assertion(&trusted.environment, token_type),
            issuer: trusted.issuer,
            environment: trusted.environment,
            keys: trusted.keys,
            ceiling: trusted.ceiling,
        }
    }
}

impl Trust {
    /// A PASETO token's signature and claims, as this issuer's: `entry` is its key for the
    /// token's key id ([`active_key`]), its environment is bound in, and the signed `iss` must
    /// be its name.
    pub(crate) fn check_paseto(
        &self,
        decoded: &mut paseto::Decoded,
        entry: &KeyEntry,
        audiences: &[Arc<str>],
    ) -> Result<Signed, Refusal> {
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
                issuer: &self.issuer,
                audiences,
                environment: &self.environment,
            }),
        )
        .map_err(|e| (e, None))?;
        self.signed(claims, entry)
    }

    /// A JWT's key, signature and claims, as this issuer's.
    #[cfg(feature = "jwt")]
    pub(crate) fn check_jwt(
        &self,
        decoded: &crate::token::jwt::Decoded,
        token: &str,
        unix_now: i64,
        audiences: &[Arc<str>],
    ) -> Result<Signed, Refusal> {
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
        let claims = Claims::from_jwt_object(object, audiences).map_err(|e| (e, None))?;
        self.signed(claims, entry)
    }

    /// Claims signed by `entry`, one of this issuer's keys: accepted only if they say this
    /// issuer made them (a token naming issuer A signed with issuer B's key is B's forgery).
    fn signed(&self, claims: Claims, entry: &KeyEntry) -> Result<Signed, Refusal> {
        if claims.issuer != self.issuer {
            return Err((
                VerifyError::new(
                    VerifyErrorKind::WrongIssuer,
                    format!(
                        "token is signed by a key of {:?} but names another issuer",
                        self.issuer
                    ),
                ),
                Some(Box::new(claims)),
            ));
        }
        if let Some(ceiling) = &self.ceiling
            && let Some(beyond) = claims.scopes.iter().find(|s| !ceiling.allows_scope(s))
        {
            let e = VerifyError::new(
                VerifyErrorKind::WrongIssuer,
                format!(
                    "token of {:?} grants `{beyond}`, beyond what this service trusts that issuer with",
                    self.issuer
                ),
            );
            return Err((e, Some(Box::new(claims))));
        }
        Ok((claims, entry.key().key_id().clone(), entry.retire_at()))
    }
}

/// Of two refusals by two trusted issuers, the one that says more: one made after a signature
/// verified (it has claims) over one made before, a bad signature over an unknown key.
pub(crate) fn more_telling(earlier: Option<Refusal>, later: Refusal) -> Refusal {
    let Some(earlier) = earlier else {
        return later;
    };
    let rank = |r: &Refusal| match (&r.1, r.0.kind()) {
        (Some(_), _) => 2,
        (None, VerifyErrorKind::UnknownKey) => 0,
        (None, _) => 1,
    };
    if rank(&later) > rank(&earlier) {
        later
    } else {
        earlier
    }
}

/// The refusal of a token whose key no trusted issuer has.
pub(crate) fn unknown_key() -> VerifyError {
    VerifyError::new(
        VerifyErrorKind::UnknownKey,
        "token's key id is not in the key set: it was signed by a key this service does \
         not trust (add the issuer's current public key if keys were rotated)",
    )
}

/// The trusted, currently valid key named `kid` in `keys` (a snapshot), looked up in memory only.
pub(crate) fn active_key<'k>(
    keys: &'k KeySet,
    kid: &str,
    unix_now: i64,
) -> Result<&'k KeyEntry, VerifyError> {
    let entry = keys.get(kid).ok_or_else(unknown_key)?;
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
