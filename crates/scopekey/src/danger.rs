//! Reading a token **without verifying it**.
//!
//! Nothing returned here is authenticated: anyone can write any claims into a token-shaped
//! string. This exists for operators' tools (inspecting a leaked token, scanning for tokens)
//! and must never feed an authorization decision. Applications verify with
//! [`Verifier`](crate::Verifier).
//!
//! The raw formats live here too: [`paseto`] (`v4.public` signing and verification of bytes,
//! with no claim checks) and [`paserk`] (key encodings, secret keys included). The issuer and
//! the verifier are built on them; an application should not need them.

use crate::codec::json;
use crate::key::PublicKey;
use crate::token::claims::{Environment, TokenType};
use crate::token::claims_json;
use crate::token::error::{VerifyError, VerifyErrorKind};
use crate::token::paseto::Decoded;
use serde_json::{Map, Value};

pub use crate::key::paserk;
pub use crate::token::paseto;

/// A token split, decoded and parsed, with its signature **not** checked.
///
/// Its `Debug` output shows the format, the footer and the claims, never the token text or
/// its signature.
pub struct UnverifiedToken {
    parts: Parts,
    footer: Option<Map<String, Value>>,
    claims: Result<Map<String, Value>, String>,
}

enum Parts {
    Paseto(Decoded),
    #[cfg(feature = "jwt")]
    Jwt {
        decoded: crate::token::jwt::Decoded,
        token: Box<str>,
    },
}

/// Decodes a v4.public token (or, with the `jwt` feature, a JWT) without verifying it: the same
/// length, header, base64url and JSON limits as verification, but no key and no signature
/// check. A JWT whose header scopekey would refuse (`alg` none, `jku`, …) is refused here too.
///
/// # Errors
/// [`VerifyErrorKind::Oversized`], [`VerifyErrorKind::UnsupportedFormat`] or [`VerifyErrorKind::Malformed`] when the
/// token cannot even be taken apart. Claims that are not valid JSON are reported by
/// [`UnverifiedToken::claims`], not here.
///
/// # Security
/// The result is attacker-controlled data. Do not authorize anything with it.
pub fn decode_unverified(token: &str) -> Result<UnverifiedToken, VerifyError> {
    // The one length check; the decoders rely on it.
    paseto::check_length(token)?;
    #[cfg(feature = "jwt")]
    if crate::token::jwt::routes_to_jwt(token) {
        let decoded = crate::token::jwt::decode(token)?;
        let claims = json::parse_object(decoded.payload(), claims_json::CLAIMS);
        return Ok(UnverifiedToken {
            parts: Parts::Jwt {
                decoded,
                token: token.into(),
            },
            footer: None,
            claims,
        });
    }
    let decoded = paseto::decode(token)?;
    let footer = crate::token::footer::footer_map(decoded.footer());
    let claims = json::parse_object(decoded.message(), claims_json::CLAIMS);
    Ok(UnverifiedToken {
        parts: Parts::Paseto(decoded),
        footer,
        claims,
    })
}

impl Drop for UnverifiedToken {
    fn drop(&mut self) {
        // A JWT is kept whole for its signature check: the copy is cleared when done.
        #[cfg(feature = "jwt")]
        if let Parts::Jwt { token, .. } = &mut self.parts {
            zeroize::Zeroize::zeroize(token);
        }
    }
}

impl std::fmt::Debug for UnverifiedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnverifiedToken")
            .field("format", &self.format())
            .field("header", &self.header())
            .field("footer", &self.footer)
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

impl UnverifiedToken {
    /// PASETO or JWT.
    pub fn format(&self) -> crate::TokenFormat {
        match &self.parts {
            Parts::Paseto(_) => crate::TokenFormat::Paseto,
            #[cfg(feature = "jwt")]
            Parts::Jwt { .. } => crate::TokenFormat::Jwt,
        }
    }

    /// The JWT header (`None` for PASETO).
    pub fn header(&self) -> Option<&Map<String, Value>> {
        match &self.parts {
            Parts::Paseto(_) => None,
            #[cfg(feature = "jwt")]
            Parts::Jwt { decoded, .. } => Some(decoded.header()),
        }
    }

    /// The raw footer bytes (empty when there is none, and for a JWT).
    pub fn footer_bytes(&self) -> &[u8] {
        match &self.parts {
            Parts::Paseto(d) => d.footer(),
            #[cfg(feature = "jwt")]
            Parts::Jwt { .. } => &[],
        }
    }

    /// The footer as a JSON object, if it is one.
    pub fn footer(&self) -> Option<&Map<String, Value>> {
        self.footer.as_ref()
    }

    /// The `kid` the footer (PASETO) or header (JWT) claims.
    pub fn key_id(&self) -> Option<&str> {
        match &self.parts {
            Parts::Paseto(_) => self.footer.as_ref()?.get("kid")?.as_str(),
            #[cfg(feature = "jwt")]
            Parts::Jwt { decoded, .. } => Some(decoded.kid()),
        }
    }

    /// The claims as JSON, or why they are not a valid JSON object.
    ///
    /// # Errors
    /// A description of why the payload is not a strict JSON object.
    pub fn claims(&self) -> Result<&Map<String, Value>, &str> {
        self.claims.as_ref().map_err(String::as_str)
    }

    /// A string claim, if present.
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.as_ref().ok()?.get(name)?.as_str()
    }

    /// Checks the signature with `key`, assuming the token belongs to `environment` and is of
    /// `token_type` (for PASETO both are bound through the implicit assertion; a JWT is an
    /// access token whose `env` claim must match).
    ///
    /// # Errors
    /// [`VerifyErrorKind::BadSignature`] when it does not verify.
    pub fn check_signature(
        &self,
        key: &PublicKey,
        environment: &Environment,
        token_type: TokenType,
    ) -> Result<(), VerifyError> {
        match &self.parts {
            Parts::Paseto(decoded) => {
                let assertion = paseto::implicit_assertion(environment, token_type);
                decoded.verify_detached(key, &assertion)
            }
            #[cfg(feature = "jwt")]
            Parts::Jwt { decoded, token } => {
                decoded.verify(token, key)?;
                if token_type != TokenType::Access
                    || self.claim_str("env") != Some(environment.as_str())
                {
                    return Err(VerifyError::new(
                        VerifyErrorKind::WrongEnvironment,
                        "the JWT verifies, but is not an access token of this environment",
                    ));
                }
                Ok(())
            }
        }
    }

    /// Checks the signature against the token's own (unverified) `env` claim, as an access or a
    /// refresh token. Returns the type that verified.
    ///
    /// # Errors
    /// [`VerifyErrorKind::BadSignature`] when neither verifies, [`VerifyErrorKind::InvalidClaims`] when
    /// there is no usable `env` claim to try.
    pub fn check_signature_any_type(&self, key: &PublicKey) -> Result<TokenType, VerifyError> {
        #[cfg(feature = "jwt")]
        if let Parts::Jwt { decoded, token } = &self.parts {
            return decoded.verify(token, key).map(|_| TokenType::Access);
        }
        let env: Environment = self
            .claim_str("env")
            .and_then(|e| e.parse().ok())
            .ok_or_else(|| {
                VerifyError::new(VerifyErrorKind::InvalidClaims, "no valid `env` claim")
            })?;
        for t in [TokenType::Access, TokenType::Refresh] {
            if self.check_signature(key, &env, t).is_ok() {
                return Ok(t);
            }
        }
        Err(VerifyError::new(
            VerifyErrorKind::BadSignature,
            "signature does not verify with this key",
        ))
    }
}
