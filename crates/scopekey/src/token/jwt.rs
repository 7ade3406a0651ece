//! JWT access tokens (JWS compact serialization, EdDSA), for gateways that only speak JWT.
//!
//! The same claims and the same [`Verifier`](crate::Verifier) as PASETO: an application does not
//! change when its tokens do. Only access tokens are minted as JWTs; refresh tokens stay PASETO.
//!
//! A scopekey JWT is strict by construction:
//!
//! - header: exactly `{"alg":"EdDSA","typ":"at+jwt","kid":"k4.pid.…"}` in meaning (RFC 8037,
//!   RFC 9068). The algorithm is fixed by the key type: `none`, `HS*`, `ES*`, `Ed25519` and any
//!   other value are refused before anything else is looked at. `jwk`, `jku`, `x5u`, `x5c`,
//!   `x5t`, `x5t#S256` (a key chosen by the token) and `crit` or `b64` are refused, as is any
//!   other member. `typ` must be `at+jwt` (or `application/at+jwt`), so an ID token or another
//!   JWT is not taken for an access token.
//! - claims: the scopekey claims with NumericDate `exp`, `nbf` and `iat` (JSON integers; strings
//!   and floats are refused), `env` required, `aud` a string or an array that contains the
//!   expected audience.
//! - encoding: three non-empty parts of canonical unpadded base64url (no `=`, `+`, `/`,
//!   whitespace or stray trailing bits); duplicate JSON members refused in header and claims.
//!
//! Environment separation uses the `env` claim (a JWT has no implicit assertion); the verifier
//! requires it and compares it with its own environment.

use crate::codec::b64;
use crate::codec::json::{self, Limits};
use crate::key::{PublicKey, SigningKey};
use crate::token::error::{VerifyError, VerifyErrorKind};
use serde_json::{Map, Value};

/// The `typ` every scopekey JWT carries (RFC 9068).
pub const TYP: &str = "at+jwt";

/// The only accepted `alg` (RFC 8037).
pub const ALG: &str = "EdDSA";

const SIGNATURE_LEN: usize = 64;

/// Limits for a JWT header: flat, small.
const HEADER: Limits = Limits {
    max_depth: 2,
    max_members: 8,
    max_elements: 8,
    max_string: 256,
};

/// Header members that would let the token choose its own key.
const KEY_CARRYING: [&str; 6] = ["jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256"];

/// Whether `token` has the shape of a JWS compact serialization (three dot-separated parts,
/// the first starting like a base64url JSON object). Says nothing about validity.
pub fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.bytes().filter(|&b| b == b'.').count() == 2
}

/// Whether the verifier takes `token` down the JWT path: anything that does not start like a
/// PASETO (`v4.`, `V4.`, `v3.`, …). A JWS header is base64url JSON and starts with `e` (`{`);
/// other shapes are then refused as malformed JWTs rather than as unknown PASETO versions.
pub(crate) fn routes_to_jwt(token: &str) -> bool {
    !matches!(token.as_bytes().first(), Some(b'v' | b'V'))
}

/// Signs `claims_json` (the JWT claims set) with `key`.
pub(crate) fn sign(key: &SigningKey, claims_json: &[u8]) -> String {
    let header = format!(
        "{{\"alg\":\"{ALG}\",\"typ\":\"{TYP}\",\"kid\":\"{}\"}}",
        key.key_id().as_str()
    );
    let mut token = b64::encode(header.as_bytes());
    token.push('.');
    token.push_str(&b64::encode(claims_json));
    let signature = key.sign(token.as_bytes());
    token.push('.');
    token.push_str(&b64::encode(&signature));
    token
}

/// A JWT taken apart and its header checked; the signature is not checked yet.
///
/// Its `Debug` output leaves out the payload and the signature, which together with the
/// header are the token.
pub(crate) struct Decoded {
    header: Map<String, Value>,
    kid: String,
    /// Length of `header.payload`, the signing input.
    signing_input_len: usize,
    payload: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
}

impl std::fmt::Debug for Decoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoded")
            .field("header", &self.header)
            .field("kid", &self.kid)
            .field("payload_len", &self.payload.len())
            .finish_non_exhaustive()
    }
}

impl Decoded {
    /// The header's `kid`.
    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// The header, as parsed.
    pub(crate) fn header(&self) -> &Map<String, Value> {
        &self.header
    }

    /// The claims bytes. Not yet authenticated.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Checks the signature over `token`'s signing input with `key` (`verify_strict`) and
    /// returns the authenticated claims bytes.
    pub(crate) fn verify(&self, token: &str, key: &PublicKey) -> Result<&[u8], VerifyError> {
        let input = token
            .as_bytes()
            .get(..self.signing_input_len)
            .unwrap_or(&[]);
        key.verify_signature(input, &self.signature).map_err(|_| {
            VerifyError::new(
                VerifyErrorKind::BadSignature,
                "signature does not verify: the token was altered or signed by another key",
            )
        })?;
        Ok(&self.payload)
    }
}

fn malformed(why: &'static str) -> VerifyError {
    VerifyError::new(VerifyErrorKind::Malformed, why)
}

fn invalid_header(why: String) -> VerifyError {
    VerifyError::new(VerifyErrorKind::InvalidHeader, why)
}

/// Splits a JWT, decodes its parts and checks its header. The caller has checked the length
/// ([`check_length`](crate::token::paseto::check_length)). Nothing returned is authenticated.
pub(crate) fn decode(token: &str) -> Result<Decoded, VerifyError> {
    decode_as(token, Typ::AccessToken)
}

/// What a JWT's header must say its type is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Typ {
    /// `at+jwt` (RFC 9068), with a `kid`.
    AccessToken,
    /// A client assertion (RFC 7523): no `typ`, `JWT`, or `client-authentication+jwt`
    /// (draft-ietf-oauth-rfc7523bis), never `at+jwt`; the `kid` is optional.
    ClientAssertion,
}

fn decode_as(token: &str, typ: Typ) -> Result<Decoded, VerifyError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(
            "a JWT has exactly three parts (header.claims.signature)",
        ));
    };
    if h.is_empty() || p.is_empty() || s.is_empty() {
        return Err(malformed("a JWT part is empty"));
    }
    let header_bytes =
        b64::decode(h).ok_or_else(|| malformed("the header is not canonical base64url"))?;
    // The header is checked before the rest is even decoded: `alg` first.
    let header = json::parse_object(&header_bytes, HEADER)
        .map_err(|e| invalid_header(format!("the JWT header is not valid: {e}")))?;
    let kid = check_header(&header, typ)?;
    let payload =
        b64::decode(p).ok_or_else(|| malformed("the claims are not canonical base64url"))?;
    let signature = b64::decode(s)
        .ok_or_else(|| malformed("the signature is not canonical base64url"))?
        .try_into()
        .map_err(|_| malformed("an EdDSA signature is 64 bytes"))?;
    Ok(Decoded {
        header,
        kid,
        signing_input_len: h.len() + 1 + p.len(),
        payload,
        signature,
    })
}

/// Checks a parsed header and returns its `kid` (empty for a client assertion without one).
fn check_header(header: &Map<String, Value>, typ: Typ) -> Result<String, VerifyError> {
    match header.get("alg") {
        Some(Value::String(alg)) if alg == ALG => {}
        Some(Value::String(alg)) => {
            return Err(invalid_header(format!(
                "JWT algorithm {:?} is refused: scopekey keys are Ed25519 and accept only \
                 \"EdDSA\"",
                truncate(alg)
            )));
        }
        _ => return Err(invalid_header("the JWT header has no `alg` string".into())),
    }
    for name in header.keys() {
        match name.as_str() {
            "alg" | "typ" | "kid" => {}
            n if KEY_CARRYING.contains(&n) => {
                return Err(invalid_header(format!(
                    "the JWT header carries `{n}`: a token never chooses its own key"
                )));
            }
            "crit" | "b64" => {
                return Err(invalid_header(format!(
                    "the JWT header has `{name}`: no JWS extension is understood here"
                )));
            }
            other => {
                return Err(invalid_header(format!(
                    "unexpected JWT header member {:?}",
                    truncate(other)
                )));
            }
        }
    }
    if typ == Typ::ClientAssertion {
        match header.get("typ") {
            None => {}
            Some(Value::String(t))
                if t.eq_ignore_ascii_case("JWT")
                    || t.eq_ignore_ascii_case("client-authentication+jwt") => {}
            Some(_) => {
                return Err(invalid_header(
                    "a client assertion is typed \"JWT\" or \"client-authentication+jwt\" (or not at all); \
                     an access token is not a client assertion"
                        .into(),
                ));
            }
        }
        return match header.get("kid") {
            None => Ok(String::new()),
            Some(Value::String(kid)) => Ok(kid.clone()),
            Some(_) => Err(invalid_header("the JWT `kid` is not a string".into())),
        };
    }
    match header.get("typ") {
        Some(Value::String(t))
            if t.eq_ignore_ascii_case(TYP) || t.eq_ignore_ascii_case("application/at+jwt") => {}
        Some(Value::String(t)) => {
            return Err(invalid_header(format!(
                "JWT `typ` {:?} is not \"at+jwt\": not an access token",
                truncate(t)
            )));
        }
        _ => {
            return Err(invalid_header(
                "the JWT header has no `typ`: access tokens are typed \"at+jwt\"".into(),
            ));
        }
    }
    match header.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() => Ok(kid.clone()),
        _ => Err(invalid_header(
            "the JWT header has no `kid` naming its signing key".into(),
        )),
    }
}

/// Verifies a JWT client assertion (RFC 7523 §2.2, `private_key_jwt`) signed with `key`, and
/// returns its claims, authenticated but not yet checked: the caller checks `iss`, `sub`,
/// `aud`, `exp` and `jti` against its own context.
///
/// The same strict decoding as an access token's (canonical base64url, `alg` `EdDSA` only, no
/// key-carrying or unknown header member, no duplicate JSON member, bounded sizes), with
/// `typ` absent, `JWT` or `client-authentication+jwt` — never `at+jwt`, so that an access
/// token cannot stand in for an assertion — and `kid` optional.
///
/// # Errors
/// [`VerifyErrorKind::Oversized`], [`VerifyErrorKind::Malformed`],
/// [`VerifyErrorKind::InvalidHeader`], [`VerifyErrorKind::BadSignature`], or
/// [`VerifyErrorKind::InvalidClaims`] for claims that are not a bounded JSON object.
pub fn verify_client_assertion(
    assertion: &str,
    key: &PublicKey,
) -> Result<Map<String, Value>, VerifyError> {
    crate::token::paseto::check_length(assertion)?;
    let decoded = decode_as(assertion, Typ::ClientAssertion)?;
    let payload = decoded.verify(assertion, key)?;
    json::parse_object(payload, crate::token::claims_json::CLAIMS).map_err(|e| {
        VerifyError::new(
            VerifyErrorKind::InvalidClaims,
            format!("the assertion's claims are not valid: {e}"),
        )
    })
}

/// At most 40 characters of attacker-controlled text, for messages.
fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_detection() {
        assert!(looks_like_jwt("eyJh.eyJi.c2ln"));
        assert!(!looks_like_jwt("eyJh.eyJi"));
        assert!(!looks_like_jwt("v4.public.abc"));
        assert!(!looks_like_jwt("eyJh.eyJi.c2ln.x"));
    }

    #[test]
    fn client_assertions_are_typed_apart_from_access_tokens() {
        let key = SigningKey::generate().unwrap();
        let claims = br#"{"iss":"ci","sub":"ci"}"#;
        let with_header = |header: &str| {
            let mut t = b64::encode(header.as_bytes());
            t.push('.');
            t.push_str(&b64::encode(claims));
            let sig = key.sign(t.as_bytes());
            t.push('.');
            t.push_str(&b64::encode(&sig));
            t
        };
        for ok in [
            r#"{"alg":"EdDSA"}"#,
            r#"{"alg":"EdDSA","typ":"JWT"}"#,
            r#"{"alg":"EdDSA","typ":"client-authentication+jwt","kid":"x"}"#,
        ] {
            let c = verify_client_assertion(&with_header(ok), key.public_key()).unwrap();
            assert_eq!(c["sub"], "ci", "{ok}");
        }
        for (bad, kind) in [
            (
                r#"{"alg":"EdDSA","typ":"at+jwt"}"#,
                VerifyErrorKind::InvalidHeader,
            ),
            (r#"{"alg":"HS256"}"#, VerifyErrorKind::InvalidHeader),
            (r#"{"alg":"none"}"#, VerifyErrorKind::InvalidHeader),
            (
                r#"{"alg":"EdDSA","jwk":{}}"#,
                VerifyErrorKind::InvalidHeader,
            ),
            (
                r#"{"alg":"EdDSA","alg":"EdDSA"}"#,
                VerifyErrorKind::InvalidHeader,
            ),
        ] {
            let e = verify_client_assertion(&with_header(bad), key.public_key()).unwrap_err();
            assert_eq!(e.kind(), kind, "{bad}");
        }
        // An access token is never an assertion, even with the right key.
        let access = sign(&key, claims);
        assert_eq!(
            verify_client_assertion(&access, key.public_key())
                .unwrap_err()
                .kind(),
            VerifyErrorKind::InvalidHeader
        );
        let other = SigningKey::generate().unwrap();
        assert_eq!(
            verify_client_assertion(&with_header(r#"{"alg":"EdDSA"}"#), other.public_key())
                .unwrap_err()
                .kind(),
            VerifyErrorKind::BadSignature
        );
    }

    #[test]
    fn sign_then_decode_round_trips() {
        let key = SigningKey::generate().unwrap();
        let token = sign(&key, br#"{"a":1}"#);
        let decoded = decode(&token).unwrap();
        assert_eq!(decoded.kid(), key.key_id().as_str());
        assert_eq!(
            decoded.verify(&token, key.public_key()).unwrap(),
            br#"{"a":1}"#
        );
        let other = SigningKey::generate().unwrap();
        assert_eq!(
            decoded
                .verify(&token, other.public_key())
                .unwrap_err()
                .kind(),
            VerifyErrorKind::BadSignature
        );
    }
}
