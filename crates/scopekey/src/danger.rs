//! Reading a token **without verifying it**.
//!
//! Nothing returned here is authenticated: anyone can write any claims into a token-shaped
//! string. This exists for operators' tools (inspecting a leaked token, scanning for tokens)
//! and must never feed an authorization decision. Applications verify with
//! [`Verifier`](crate::Verifier).

use crate::claims::{Environment, TokenType};
use crate::error::{ErrorKind, VerifyError};
use crate::json;
use crate::keys::PublicKey;
use crate::paseto::{self, Decoded};
use serde_json::{Map, Value};

/// A token split, decoded and parsed, with its signature **not** checked.
#[derive(Debug)]
pub struct UnverifiedToken {
    decoded: Decoded,
    footer: Option<Map<String, Value>>,
    claims: Result<Map<String, Value>, String>,
}

/// Decodes a v4.public token without verifying it: the same length, header, base64url and JSON
/// limits as verification, but no key and no signature check.
///
/// # Errors
/// [`ErrorKind::Oversized`], [`ErrorKind::UnsupportedFormat`] or [`ErrorKind::Malformed`] when the
/// token cannot even be taken apart. Claims that are not valid JSON are reported by
/// [`UnverifiedToken::claims`], not here.
///
/// # Security
/// The result is attacker-controlled data. Do not authorize anything with it.
pub fn decode_unverified(token: &str) -> Result<UnverifiedToken, VerifyError> {
    let decoded = paseto::decode(token)?;
    let footer = if decoded.footer().is_empty() {
        None
    } else {
        json::parse_object(decoded.footer(), json::FOOTER).ok()
    };
    let claims = json::parse_object(decoded.message(), json::CLAIMS);
    Ok(UnverifiedToken {
        decoded,
        footer,
        claims,
    })
}

impl UnverifiedToken {
    /// The raw footer bytes (empty when there is none).
    pub fn footer_bytes(&self) -> &[u8] {
        self.decoded.footer()
    }

    /// The footer as a JSON object, if it is one.
    pub fn footer(&self) -> Option<&Map<String, Value>> {
        self.footer.as_ref()
    }

    /// The `kid` the footer claims.
    pub fn key_id(&self) -> Option<&str> {
        self.footer.as_ref()?.get("kid")?.as_str()
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
    /// `token_type` (both are bound through the implicit assertion).
    ///
    /// # Errors
    /// [`ErrorKind::BadSignature`] when it does not verify.
    pub fn check_signature(
        &self,
        key: &PublicKey,
        environment: &Environment,
        token_type: TokenType,
    ) -> Result<(), VerifyError> {
        let assertion = paseto::implicit_assertion(environment, token_type);
        self.decoded.verify(key, &assertion).map(|_| ())
    }

    /// Checks the signature against the token's own (unverified) `env` claim, as an access or a
    /// refresh token. Returns the type that verified.
    ///
    /// # Errors
    /// [`ErrorKind::BadSignature`] when neither verifies, [`ErrorKind::InvalidClaims`] when
    /// there is no usable `env` claim to try.
    pub fn check_signature_any_type(&self, key: &PublicKey) -> Result<TokenType, VerifyError> {
        let env: Environment = self
            .claim_str("env")
            .and_then(|e| e.parse().ok())
            .ok_or_else(|| VerifyError::new(ErrorKind::InvalidClaims, "no valid `env` claim"))?;
        for t in [TokenType::Access, TokenType::Refresh] {
            if self.check_signature(key, &env, t).is_ok() {
                return Ok(t);
            }
        }
        Err(VerifyError::new(
            ErrorKind::BadSignature,
            "signature does not verify with this key",
        ))
    }
}
