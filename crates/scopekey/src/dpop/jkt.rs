//! JWK thumbprints (RFC 7638) of the two key types DPoP clients use: OKP (Ed25519) and EC
//! (P-256), and the `jkt` a token is bound to (RFC 9449 §6).

use crate::codec::b64;
use crate::key::PublicKey;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// The base64url SHA-256 thumbprint (RFC 7638) of a client's public key: the `jkt` of a
/// DPoP-bound token's `cnf` claim. Always 43 base64url characters (32 bytes).
///
/// ```
/// use scopekey::dpop::Jkt;
/// // RFC 8037 §A.3: the thumbprint of its Ed25519 example key.
/// let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519",
///     "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
/// let jkt = Jkt::of_jwk(jwk.as_object().unwrap())?;
/// assert_eq!(jkt.as_str(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Jkt(Box<str>);

/// A thumbprint or JWK that was refused, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidJkt(&'static str);

impl Jkt {
    /// The thumbprint of a scopekey Ed25519 public key (as an OKP JWK).
    pub fn of_public_key(key: &PublicKey) -> Self {
        Self::of_okp(&b64::encode(key.as_bytes()))
    }

    /// The thumbprint of a public JWK: `kty` `OKP` with `crv` `Ed25519` and a 32-byte `x`, or
    /// `kty` `EC` with `crv` `P-256` and 32-byte `x` and `y`. Only the members RFC 7638 names
    /// are hashed; the others are ignored here (a DPoP proof's header is checked elsewhere).
    ///
    /// # Errors
    /// [`InvalidJkt`] for another key type or curve, or a coordinate of the wrong length.
    pub fn of_jwk(jwk: &Map<String, Value>) -> Result<Self, InvalidJkt> {
        let text = |name: &str| jwk.get(name).and_then(Value::as_str);
        let coordinate = |name: &str| {
            text(name)
                .filter(|v| b64::decode(v).is_some_and(|b| b.len() == 32))
                .ok_or(InvalidJkt(
                    "a key coordinate is missing or not 32 bytes of base64url",
                ))
        };
        match (text("kty"), text("crv")) {
            (Some("OKP"), Some("Ed25519")) => Ok(Self::of_okp(coordinate("x")?)),
            (Some("EC"), Some("P-256")) => {
                let (x, y) = (coordinate("x")?, coordinate("y")?);
                Ok(Self::digest(&format!(
                    r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#
                )))
            }
            _ => Err(InvalidJkt(
                "only OKP Ed25519 and EC P-256 keys are accepted for DPoP",
            )),
        }
    }

    fn of_okp(x: &str) -> Self {
        Self::digest(&format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#))
    }

    fn digest(members: &str) -> Self {
        Self(b64::encode(&Sha256::digest(members.as_bytes())).into())
    }

    /// The thumbprint, 43 base64url characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Jkt {
    type Err = InvalidJkt;

    /// Parses a thumbprint: exactly 43 canonical base64url characters (a SHA-256 digest).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 43 || b64::decode(s).is_none_or(|b| b.len() != 32) {
            return Err(InvalidJkt(
                "a jkt is 43 base64url characters (a SHA-256 JWK thumbprint)",
            ));
        }
        Ok(Self(s.into()))
    }
}

impl fmt::Display for Jkt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Jkt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Jkt({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn rfc_8037_okp_example() {
        let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "d": "ignored"});
        let jkt = Jkt::of_jwk(jwk.as_object().unwrap()).unwrap();
        assert_eq!(jkt.as_str(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        assert_eq!(jkt, jkt.as_str().parse().unwrap());
    }

    /// RFC 7638's hashed members for an EC key, computed independently here with the
    /// canonical JSON written out by hand.
    #[test]
    fn ec_members_are_hashed_in_lexicographic_order() {
        let x = b64::encode(&[1; 32]);
        let y = b64::encode(&[2; 32]);
        let jwk = serde_json::json!({"y": y, "x": x, "kty": "EC", "crv": "P-256", "alg": "ES256"});
        let expected = b64::encode(&Sha256::digest(
            format!("{{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"{x}\",\"y\":\"{y}\"}}").as_bytes(),
        ));
        assert_eq!(
            Jkt::of_jwk(jwk.as_object().unwrap()).unwrap().as_str(),
            expected
        );
    }

    #[test]
    fn refuses_other_keys_and_bad_thumbprints() {
        for jwk in [
            serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
            serde_json::json!({"kty": "OKP", "crv": "X25519", "x": b64::encode(&[0; 32])}),
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64::encode(&[0; 31])}),
            serde_json::json!({"kty": "EC", "crv": "P-256", "x": b64::encode(&[0; 32])}),
            serde_json::json!({"kty": "oct", "k": "c2VjcmV0"}),
        ] {
            assert!(Jkt::of_jwk(jwk.as_object().unwrap()).is_err(), "{jwk}");
        }
        for bad in [
            "",
            "short",
            &"A".repeat(44),
            &format!("{}=", "A".repeat(42)),
            &"+".repeat(43),
        ] {
            assert!(bad.parse::<Jkt>().is_err(), "{bad}");
        }
        let trailing_bits = format!("{}B", "A".repeat(42));
        assert!(
            trailing_bits.parse::<Jkt>().is_err(),
            "non-zero trailing bits"
        );
        assert!("A".repeat(43).parse::<Jkt>().is_ok());
    }
}
