//! PASERK k4 serialisation of Ed25519 keys: `k4.public.`, `k4.secret.` and the key id
//! `k4.pid.`.
//!
//! These functions are the format only: they check the prefix, canonical base64url and length,
//! not that the bytes are a usable key. Applications import keys with
//! [`PublicKey::from_paserk`](crate::PublicKey::from_paserk) and
//! [`SigningKey::from_paserk`](crate::SigningKey::from_paserk), which add the point, weak-key
//! and key-pair checks.

use crate::codec::b64;
use crate::key::{KeyError, KeyErrorKind};
use zeroize::Zeroizing;

/// Prefix of a PASERK Ed25519 public key.
pub const PUBLIC_PREFIX: &str = "k4.public.";
/// Prefix of a PASERK Ed25519 secret key (seed ‖ public key).
pub const SECRET_PREFIX: &str = "k4.secret.";
/// Prefix of a PASERK public key id.
pub const PID_PREFIX: &str = "k4.pid.";

/// `k4.public.` and the base64url of the 32 key bytes.
pub fn encode_public(key: &[u8; 32]) -> String {
    format!("{PUBLIC_PREFIX}{}", b64::encode(key))
}

/// The 32 bytes of a `k4.public.` PASERK.
///
/// # Errors
/// [`KeyErrorKind::WrongType`] for another PASERK version or type, [`KeyErrorKind::Malformed`]
/// for non-canonical base64url, [`KeyErrorKind::WrongLength`] unless 32 bytes.
pub fn decode_public(paserk: &str) -> Result<[u8; 32], KeyError> {
    let body = body(
        paserk,
        PUBLIC_PREFIX,
        "expected a PASERK `k4.public.…` public key",
    )?;
    let bytes = decode_body(body)?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::new(KeyErrorKind::WrongLength, "a `k4.public` key is 32 bytes"))
}

/// `k4.secret.` and the base64url of the 64 bytes seed ‖ public key, in a string zeroized on
/// drop.
pub fn encode_secret(keypair: &[u8; 64]) -> Zeroizing<String> {
    Zeroizing::new(format!("{SECRET_PREFIX}{}", b64::encode(keypair)))
}

/// The 64 bytes (seed ‖ public key) of a `k4.secret.` PASERK, zeroized on drop.
///
/// # Errors
/// As [`decode_public`], with 64 bytes expected.
pub fn decode_secret(paserk: &str) -> Result<Zeroizing<[u8; 64]>, KeyError> {
    let body = body(
        paserk,
        SECRET_PREFIX,
        "expected a PASERK `k4.secret.…` secret key",
    )?;
    let bytes = Zeroizing::new(decode_body(body)?);
    let mut out = Zeroizing::new([0u8; 64]);
    if bytes.len() != 64 {
        return Err(KeyError::new(
            KeyErrorKind::WrongLength,
            "a `k4.secret` key is 64 bytes (seed and public key)",
        ));
    }
    out.copy_from_slice(&bytes);
    Ok(out)
}

fn body<'a>(text: &'a str, prefix: &str, expected: &'static str) -> Result<&'a str, KeyError> {
    match text.strip_prefix(prefix) {
        Some(body) => Ok(body),
        None if looks_like_paserk(text) => Err(KeyError::new(KeyErrorKind::WrongType, expected)),
        None => Err(KeyError::new(KeyErrorKind::Malformed, expected)),
    }
}

/// `k<digit>.<type>.`: another PASERK version or type.
fn looks_like_paserk(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() > 3 && b[0] == b'k' && b[1].is_ascii_digit() && b[2] == b'.'
}

pub(crate) fn decode_body(body: &str) -> Result<Vec<u8>, KeyError> {
    b64::decode(body).ok_or(KeyError::new(
        KeyErrorKind::Malformed,
        "the PASERK body is not canonical unpadded base64url",
    ))
}

pub(crate) fn check_pid(text: &str) -> Result<(), KeyError> {
    let body = body(text, PID_PREFIX, "a key id is a PASERK `k4.pid.…`")?;
    match decode_body(body) {
        Ok(d) if d.len() == 33 => Ok(()),
        Ok(_) => Err(KeyError::new(
            KeyErrorKind::WrongLength,
            "a `k4.pid` key id holds 33 bytes",
        )),
        Err(e) => Err(e),
    }
}
