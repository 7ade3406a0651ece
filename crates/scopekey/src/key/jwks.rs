//! JSON Web Key Sets (RFC 7517) for Ed25519 keys (RFC 8037): what JWT gateways fetch to verify
//! scopekey JWTs, and a way to import a scopekey issuer's published keys.
//!
//! Each key is `{"kty":"OKP","crv":"Ed25519","x":…,"kid":"k4.pid.…","use":"sig","alg":"EdDSA"}`.
//! The `kid` is the key's PASERK `k4.pid`, the same id scopekey tokens carry in their footer or
//! header.
//!
//! ```
//! use scopekey::{KeySet, SigningKey};
//!
//! let key = SigningKey::generate()?;
//! let keys = KeySet::single(key.public_key().clone());
//! let jwks = keys.to_jwks(time::OffsetDateTime::now_utc());
//! let back = KeySet::from_jwks(&jwks)?;
//! assert!(back.get(key.key_id().as_str()).is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::codec::b64;
use crate::codec::json::{self, Limits};
use crate::key::{KeySet, PublicKey};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// The most keys a JWKS may hold on import.
pub const MAX_JWKS_KEYS: usize = 64;

/// Longest JWKS accepted on import, in bytes.
pub const MAX_JWKS_LEN: usize = 64 * 1024;

const JWKS: Limits = Limits {
    max_depth: 4,
    max_members: 32,
    max_elements: MAX_JWKS_KEYS,
    max_string: 8192,
};

/// Members of a JWK that hold private key material.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "k", "p", "q", "dp", "dq", "qi", "oth"];

/// Why a JWKS or JWK could not be imported, for matching.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwksErrorKind {
    /// Longer than [`MAX_JWKS_LEN`], or not the JSON a JWKS is (no `keys`, no key, a key
    /// that is not an object, duplicate members, past the limits).
    Malformed,
    /// A JWK holds private key material: treat that key as leaked.
    PrivateKeyMaterial,
    /// A key scopekey does not verify with: not Ed25519, another `alg`, `use` or `key_ops`,
    /// or an `x` that is not a usable point.
    UnsupportedKey,
    /// The JWK's `kid` is not the key's `k4.pid`.
    KeyIdMismatch,
}

/// A JWKS or JWK that could not be imported: the message says which key and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{1}")]
pub struct JwksError(JwksErrorKind, String);

impl JwksError {
    /// Why, for matching.
    pub fn kind(&self) -> JwksErrorKind {
        self.0
    }
}

impl PublicKey {
    /// The key as a JWK: `kty` OKP, `crv` Ed25519, `x`, `kid` (its `k4.pid`), `use` sig,
    /// `alg` EdDSA.
    pub fn to_jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64::encode(self.as_bytes()),
            "kid": self.key_id().as_str(),
            "use": "sig",
            "alg": "EdDSA",
        })
    }

    /// Imports a public JWK. `kty` must be OKP and `crv` Ed25519; `x` 32 bytes of canonical
    /// base64url that are a valid, not small-order point; `alg`, `use` and `key_ops`, when
    /// present, must say EdDSA, sig and verify; `kid`, when present, must be the key's
    /// `k4.pid`. A JWK holding private material (`d`, …) is refused: treat that key as leaked.
    ///
    /// # Errors
    /// [`JwksError`] naming the problem.
    pub fn from_jwk(jwk: &Map<String, Value>) -> Result<Self, JwksError> {
        let err = |m: &str| JwksError(JwksErrorKind::UnsupportedKey, m.to_owned());
        if let Some(p) = PRIVATE_MEMBERS.iter().find(|p| jwk.contains_key(**p)) {
            return Err(JwksError(
                JwksErrorKind::PrivateKeyMaterial,
                format!(
                    "the JWK holds private key material (`{p}`): refused; treat that key as leaked"
                ),
            ));
        }
        let text = |name: &str| jwk.get(name).and_then(Value::as_str);
        if text("kty") != Some("OKP") || text("crv") != Some("Ed25519") {
            return Err(err(
                "only Ed25519 keys (`kty` OKP, `crv` Ed25519) are accepted",
            ));
        }
        if jwk.get("alg").is_some_and(|a| a != "EdDSA") {
            return Err(err("the JWK's `alg` must be EdDSA"));
        }
        if jwk.get("use").is_some_and(|u| u != "sig") {
            return Err(err("the JWK's `use` must be sig"));
        }
        if let Some(ops) = jwk.get("key_ops")
            && ops != &json!(["verify"])
        {
            return Err(err("the JWK's `key_ops` must be [\"verify\"]"));
        }
        let bytes = text("x")
            .and_then(b64::decode)
            .ok_or_else(|| err("the JWK's `x` is missing or not canonical base64url"))?;
        let key = PublicKey::from_bytes(&bytes).map_err(|e| {
            JwksError(
                JwksErrorKind::UnsupportedKey,
                format!("the JWK's `x` is not a usable key: {e}"),
            )
        })?;
        match jwk.get("kid") {
            None => {}
            Some(Value::String(kid)) if kid == key.key_id().as_str() => {}
            Some(_) => {
                return Err(JwksError(
                    JwksErrorKind::KeyIdMismatch,
                    format!(
                        "the JWK's `kid` is not the key's id {}: scopekey key ids are PASERK k4.pid",
                        key.key_id()
                    ),
                ));
            }
        }
        Ok(key)
    }
}

impl KeySet {
    /// The keys as a JWKS: every key that still verifies at `at` or will later (so keys added
    /// ahead of a rotation are published before they sign), in key id order. Retired keys
    /// are left out.
    pub fn to_jwks(&self, at: OffsetDateTime) -> String {
        let mut entries: Vec<_> = self
            .iter()
            .filter(|e| e.retire_at().is_none_or(|r| at < r))
            .collect();
        entries.sort_by(|a, b| a.key().key_id().cmp(b.key().key_id()));
        let keys: Vec<Value> = entries.iter().map(|e| e.key().to_jwk()).collect();
        json!({ "keys": keys }).to_string()
    }

    /// Imports the keys of a JWKS (each as [`PublicKey::from_jwk`]), every one verifying from
    /// now until removed or retired.
    ///
    /// # Errors
    /// [`JwksError`] for text longer than [`MAX_JWKS_LEN`], invalid or duplicate-member JSON, no
    /// `keys` array, more than [`MAX_JWKS_KEYS`] keys, or a key that [`PublicKey::from_jwk`]
    /// refuses (the message says which).
    pub fn from_jwks(text: &str) -> Result<Self, JwksError> {
        if text.len() > MAX_JWKS_LEN {
            return Err(JwksError(
                JwksErrorKind::Malformed,
                format!("the JWKS is longer than {MAX_JWKS_LEN} bytes"),
            ));
        }
        let map = json::parse_object(text.trim().as_bytes(), JWKS).map_err(|e| {
            JwksError(
                JwksErrorKind::Malformed,
                format!("the JWKS is not valid: {e}"),
            )
        })?;
        let Some(Value::Array(keys)) = map.get("keys") else {
            return Err(JwksError(
                JwksErrorKind::Malformed,
                "the JWKS has no `keys` array".into(),
            ));
        };
        if keys.is_empty() {
            return Err(JwksError(
                JwksErrorKind::Malformed,
                "the JWKS holds no key".into(),
            ));
        }
        let mut set = KeySet::new();
        for (i, jwk) in keys.iter().enumerate() {
            let Value::Object(jwk) = jwk else {
                return Err(JwksError(
                    JwksErrorKind::Malformed,
                    format!("key {i} of the JWKS is not an object"),
                ));
            };
            let key = PublicKey::from_jwk(jwk)
                .map_err(|e| JwksError(e.0, format!("key {i}: {}", e.1)))?;
            set.insert(key);
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SigningKey;

    #[test]
    fn retired_keys_are_left_out_and_future_ones_kept() {
        let now = OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
        let (old, current, next) = (
            SigningKey::generate().unwrap(),
            SigningKey::generate().unwrap(),
            SigningKey::generate().unwrap(),
        );
        let mut keys = KeySet::new();
        keys.insert_with_window(old.public_key().clone(), None, Some(now));
        keys.insert(current.public_key().clone());
        keys.insert_with_window(
            next.public_key().clone(),
            Some(now + time::Duration::hours(1)),
            None,
        );
        let jwks = KeySet::from_jwks(&keys.to_jwks(now)).unwrap();
        assert!(jwks.get(old.key_id().as_str()).is_none());
        assert!(jwks.get(current.key_id().as_str()).is_some());
        assert!(jwks.get(next.key_id().as_str()).is_some());
    }

    #[test]
    fn imports_refuse_what_is_not_a_public_ed25519_verification_key() {
        let key = SigningKey::generate().unwrap();
        let good = key.public_key().to_jwk();
        let with = |name: &str, v: Value| {
            let mut j = good.as_object().unwrap().clone();
            j.insert(name.into(), v);
            json!({ "keys": [j] }).to_string()
        };
        let without = |name: &str| {
            let mut j = good.as_object().unwrap().clone();
            j.remove(name);
            json!({ "keys": [j] }).to_string()
        };
        assert!(KeySet::from_jwks(&json!({ "keys": [good] }).to_string()).is_ok());
        assert!(KeySet::from_jwks(&without("kid")).is_ok());
        for (bad, why) in [
            (with("d", json!("AAAA")), "private"),
            (with("kty", json!("EC")), "kty"),
            (with("crv", json!("X25519")), "crv"),
            (with("alg", json!("HS256")), "alg"),
            (with("use", json!("enc")), "use"),
            (with("key_ops", json!(["sign"])), "key_ops"),
            (with("kid", json!("my-key")), "kid"),
            (
                with("x", json!(format!("{}=", b64::encode(&[1; 32])))),
                "padded x",
            ),
            (with("x", json!(b64::encode(&[0; 31]))), "short x"),
            (with("x", json!(b64::encode(&[0; 32]))), "weak x"),
            (without("x"), "no x"),
            (r#"{"keys":[]}"#.to_owned(), "empty"),
            (r#"{"keys":{}}"#.to_owned(), "not an array"),
            (r#"{"keys":[1]}"#.to_owned(), "not an object"),
            (r#"{"keys":[],"keys":[]}"#.to_owned(), "duplicate"),
            ("x".repeat(MAX_JWKS_LEN + 1), "too long"),
        ] {
            assert!(KeySet::from_jwks(&bad).is_err(), "{why}");
        }
    }
}
