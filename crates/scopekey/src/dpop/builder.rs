//! The client side: DPoP proofs signed with a scopekey [`SigningKey`] (EdDSA).

use crate::codec::b64;
use crate::dpop::jkt::Jkt;
use crate::dpop::proof::access_token_hash;
use crate::key::{KeyError, KeyErrorKind, SigningKey};
use std::fmt;

/// Builds DPoP proofs (RFC 9449 §4.2) for a Rust client, signed with its Ed25519 key.
///
/// ```
/// use scopekey::SigningKey;
/// use scopekey::dpop::ProofBuilder;
///
/// let client_key = SigningKey::generate()?;
/// let builder = ProofBuilder::new(&client_key);
/// // Mint the access token bound to `builder.jkt()`, then on every request:
/// let proof = builder.proof("GET", "https://api.example/projects/42", Some("v4.public.…"), None)?;
/// assert_eq!(proof.split('.').count(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ProofBuilder<'k> {
    key: &'k SigningKey,
    header: String,
}

impl<'k> ProofBuilder<'k> {
    /// A builder signing with `key`.
    pub fn new(key: &'k SigningKey) -> Self {
        let x = b64::encode(key.public_key().as_bytes());
        let header = serde_json::json!({
            "typ": "dpop+jwt",
            "alg": "EdDSA",
            "jwk": {"kty": "OKP", "crv": "Ed25519", "x": x},
        });
        Self {
            key,
            header: b64::encode(header.to_string().as_bytes()),
        }
    }

    /// The thumbprint to bind tokens to ([`TokenRequest::bind_dpop`](crate::TokenRequest::bind_dpop)).
    pub fn jkt(&self) -> Jkt {
        Jkt::of_public_key(self.key.public_key())
    }

    /// A proof for `method` at `url` (its query and fragment are dropped), now, with a random
    /// `jti`; with `ath` for `access_token` when given (every request to a resource server)
    /// and the server's `nonce` when it asked for one.
    ///
    /// # Errors
    /// [`KeyErrorKind::Randomness`] when the operating system's random number generator fails.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String, KeyError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let mut jti = [0; 16];
        getrandom::fill(&mut jti).map_err(|_| {
            KeyError::new(
                KeyErrorKind::Randomness,
                "the operating system's random number generator failed",
            )
        })?;
        Ok(self.proof_at(method, url, access_token, nonce, now, &b64::encode(&jti)))
    }

    /// A proof as [`proof`](Self::proof) makes, with a given `iat` and `jti` (for tests and
    /// clients with their own clock).
    pub fn proof_at(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
        iat: i64,
        jti: &str,
    ) -> String {
        let htu = url.split(['?', '#']).next().unwrap_or(url);
        let mut claims = serde_json::json!({"jti": jti, "htm": method, "htu": htu, "iat": iat});
        if let Some(map) = claims.as_object_mut() {
            if let Some(token) = access_token {
                map.insert("ath".into(), access_token_hash(token).into());
            }
            if let Some(nonce) = nonce {
                map.insert("nonce".into(), nonce.into());
            }
        }
        let input = format!(
            "{}.{}",
            self.header,
            b64::encode(claims.to_string().as_bytes())
        );
        let signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64::encode(&signature))
    }
}

impl fmt::Debug for ProofBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProofBuilder")
            .field("jkt", &self.jkt())
            .finish_non_exhaustive()
    }
}
