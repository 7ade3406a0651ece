//! Application claims: data of the application's own, signed into the token under one claim
//! (`app`), and read back typed.
//!
//! Everything an application adds sits inside the `app` object, so it can never shadow a claim
//! this library defines (`sub`, `scope`, `exp`, `net`, `uses`, …) nor be read as one: scopes
//! alone authorize ([`Grant::authorize`](crate::Grant::authorize)).
//!
//! ```
//! use scopekey::{Issuer, KeySet, SigningKey, TokenRequest, Verifier, VerifierConfig};
//! use scopekey::custom::CustomClaimsErrorKind;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Tenant {
//!     tenant: String,
//!     plan: u8,
//! }
//!
//! let key = SigningKey::generate()?;
//! let verifier = Verifier::new(
//!     KeySet::single(key.public_key().clone()),
//!     VerifierConfig::new("https://auth.example", "https://api.example", "production".parse()?),
//! )?;
//! let issuer = Issuer::new(key, "https://auth.example", "production".parse()?)?;
//! let request = TokenRequest::new("billing-ui", "https://api.example", "invoices:read".parse()?)
//!     .custom_claims(&Tenant { tenant: "acme".into(), plan: 2 })?;
//! let grant = verifier.verify(issuer.issue(&request)?.token().as_str())?;
//!
//! let tenant: Tenant = grant.custom_claims()?;
//! assert_eq!(tenant, Tenant { tenant: "acme".into(), plan: 2 });
//!
//! // Another shape is refused, not defaulted.
//! #[derive(Debug, Deserialize)]
//! struct Other { tenant: u64 }
//! let refused = grant.custom_claims::<Other>().unwrap_err();
//! assert_eq!(refused.kind(), CustomClaimsErrorKind::Mismatch);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::codec::json;
use crate::token::claims::Claims;
use crate::token::claims_json;
use crate::token::grant::Grant;
use crate::token::issuer::{IssueError, IssueErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The claim application claims are signed under.
pub const CUSTOM_CLAIM: &str = "app";

/// The longest application claims may be, as JSON: 2 KiB (tokens are at most
/// [`MAX_TOKEN_LEN`](crate::danger::paseto::MAX_TOKEN_LEN) long in all).
pub const MAX_CUSTOM_CLAIMS_LEN: usize = 2048;

/// Why application claims could not be read back.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CustomClaimsErrorKind {
    /// The token carries no application claims.
    Missing,
    /// They do not have the shape of the type asked for (a missing field, another type, an
    /// unknown field for a type that denies them).
    Mismatch,
}

/// Application claims that could not be read back as the type asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CustomClaimsError {
    kind: CustomClaimsErrorKind,
    message: String,
}

impl CustomClaimsError {
    /// Why, for matching.
    pub fn kind(&self) -> CustomClaimsErrorKind {
        self.kind
    }
}

impl Claims {
    /// The application claims (claim `app`), as a `T`: see [`crate::custom`].
    ///
    /// # Errors
    /// [`CustomClaimsErrorKind::Missing`] when the token has none (never `T::default()`), and
    /// [`CustomClaimsErrorKind::Mismatch`] when they are not a `T`.
    pub fn custom<'a, T: Deserialize<'a>>(&'a self) -> Result<T, CustomClaimsError> {
        let value = self.other.get(CUSTOM_CLAIM).ok_or(CustomClaimsError {
            kind: CustomClaimsErrorKind::Missing,
            message: "the token carries no application claims (claim `app`)".to_owned(),
        })?;
        T::deserialize(value).map_err(|e| CustomClaimsError {
            kind: CustomClaimsErrorKind::Mismatch,
            message: format!(
                "the application claims are not a {}: {}",
                std::any::type_name::<T>(),
                e
            ),
        })
    }
}

impl Grant {
    /// The verified token's application claims, as a `T` (see [`crate::custom`]): data the
    /// issuer signed in with [`TokenRequest::custom_claims`](crate::TokenRequest::custom_claims).
    ///
    /// # Errors
    /// As [`Claims::custom`].
    ///
    /// # Security
    /// Authenticated, but not authorization: scopes alone say what the token may do.
    pub fn custom_claims<'a, T: Deserialize<'a>>(&'a self) -> Result<T, CustomClaimsError> {
        self.claims().custom()
    }
}

/// `claims` as the value of the `app` claim, checked as a verifier will read it: at most
/// [`MAX_CUSTOM_CLAIMS_LEN`] bytes of JSON, within the claims' nesting and size limits, not
/// `null`.
pub(crate) fn encode(claims: &impl Serialize) -> Result<Value, IssueError> {
    let invalid = |why: String| IssueError::new(IssueErrorKind::InvalidClaim, why);
    let bytes = serde_json::to_vec(claims)
        .map_err(|e| invalid(format!("application claims do not serialise: {e}")))?;
    if bytes.len() > MAX_CUSTOM_CLAIMS_LEN {
        return Err(invalid(format!(
            "application claims are {} bytes as JSON, above the limit of {MAX_CUSTOM_CLAIMS_LEN}",
            bytes.len()
        )));
    }
    // Read back exactly as a verifier will, inside the claims object.
    let mut wrapped = Vec::with_capacity(bytes.len() + 8);
    wrapped.extend_from_slice(b"{\"app\":");
    wrapped.extend_from_slice(&bytes);
    wrapped.push(b'}');
    let mut object = json::parse_object(&wrapped, claims_json::CLAIMS).map_err(|e| {
        invalid(format!(
            "application claims are beyond what a verifier reads: {e}"
        ))
    })?;
    match object.remove(CUSTOM_CLAIM) {
        None | Some(Value::Null) => Err(invalid(
            "application claims must not be null: leave them out instead".to_owned(),
        )),
        Some(value) => Ok(value),
    }
}
