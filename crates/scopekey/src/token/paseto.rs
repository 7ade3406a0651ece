//! The PASETO v4.public wire format, on ed25519-dalek.
//!
//! ```text
//! token = "v4.public." base64url(message ‖ signature) [ "." base64url(footer) ]
//! signature = Ed25519(PAE("v4.public.", message, footer, implicit_assertion))
//! ```
//!
//! This module is the format layer: [`sign`] and [`verify`] work on raw bytes and are what the
//! official test vectors are checked against. Applications mint with
//! [`Issuer`](crate::Issuer) and verify with [`Verifier`](crate::Verifier), which add the claims,
//! the key id footer and the environment binding on top.
//!
//! Strictness beyond the specification's minimum: base64url must be canonical (no padding, no
//! `+`/`/`, zero trailing bits), an empty footer must not be written as a trailing `.`, and the
//! token length is checked before anything is decoded.

use crate::codec::b64;
use crate::key::{PublicKey, SigningKey};
use crate::token::claims::{Environment, TokenType};
use crate::token::error::{VerifyError, VerifyErrorKind};
use std::fmt;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroize as _;

/// The header of every token this library reads or writes.
pub const HEADER: &str = "v4.public.";

/// The longest token accepted, in bytes (8 KiB), checked before any split or decode.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

const SIGNATURE_LEN: usize = 64;

/// The implicit assertion that binds a token to its environment and type:
/// `{"env":"<environment>","typ":"<access|refresh>"}` as UTF-8, with no spaces.
///
/// It is signed but not carried in the token, so a token minted for `staging` fails signature
/// verification in `production` even if both used the same key, and a refresh token never
/// verifies as an access token (or the reverse). A verifier in another language passes these
/// exact bytes as the implicit assertion (see `docs/tokens.md`).
pub fn implicit_assertion(environment: &Environment, token_type: TokenType) -> Vec<u8> {
    format!(
        "{{\"env\":\"{}\",\"typ\":\"{}\"}}",
        environment.as_str(),
        token_type.as_str()
    )
    .into_bytes()
}

/// Pre-authentication encoding (PAE) of `pieces`, as the PASETO specification defines it.
pub(crate) fn pae(pieces: &[&[u8]]) -> Vec<u8> {
    let total: usize = pieces.iter().map(|p| p.len() + 8).sum::<usize>() + 8;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&le64(pieces.len()));
    for p in pieces {
        out.extend_from_slice(&le64(p.len()));
        out.extend_from_slice(p);
    }
    out
}

fn le64(n: usize) -> [u8; 8] {
    // The most significant bit is cleared, as the specification requires.
    ((n as u64) & (u64::MAX >> 1)).to_le_bytes()
}

/// Signs `message` as a v4.public token with an optional `footer` (empty: none) and implicit
/// assertion (empty: none).
pub fn sign(key: &SigningKey, message: &[u8], footer: &[u8], implicit_assertion: &[u8]) -> String {
    let footer = Footer::new(footer);
    sign_writing(
        key,
        message.len(),
        |out| out.extend_from_slice(message),
        &footer,
        implicit_assertion,
    )
}

/// A footer and its base64url, encoded once for every token an issuer signs.
#[derive(Debug, Clone)]
pub(crate) struct Footer {
    bytes: Vec<u8>,
    encoded: String,
}

impl Footer {
    pub(crate) fn new(bytes: &[u8]) -> Self {
        Self {
            bytes: bytes.to_vec(),
            encoded: b64::encode(bytes),
        }
    }
}

/// [`sign`], with the message written by `write` straight into the encoding that is signed
/// (`message_len` is a hint for the buffer), whose buffer then also holds the token's body:
/// one buffer, and no copy of the message.
pub(crate) fn sign_writing(
    key: &SigningKey,
    message_len: usize,
    write: impl FnOnce(&mut Vec<u8>),
    footer: &Footer,
    implicit_assertion: &[u8],
) -> String {
    let tail = 8 + footer.bytes.len() + 8 + implicit_assertion.len();
    let mut pae = Vec::with_capacity(PAE_PREFIX_LEN + message_len + tail.max(SIGNATURE_LEN));
    pae.extend_from_slice(&le64(4));
    pae.extend_from_slice(&le64(HEADER.len()));
    pae.extend_from_slice(HEADER.as_bytes());
    pae.extend_from_slice(&le64(0)); // the message length, written below
    write(&mut pae);
    let message_len = pae.len() - PAE_PREFIX_LEN;
    pae[PAE_PREFIX_LEN - 8..PAE_PREFIX_LEN].copy_from_slice(&le64(message_len));
    pae.extend_from_slice(&le64(footer.bytes.len()));
    pae.extend_from_slice(&footer.bytes);
    pae.extend_from_slice(&le64(implicit_assertion.len()));
    pae.extend_from_slice(implicit_assertion);
    let signature = key.sign(&pae);
    // The body, `message ‖ signature`, takes the place of the rest of the encoding.
    pae.truncate(PAE_PREFIX_LEN + message_len);
    pae.extend_from_slice(&signature);
    let body = pae.get(PAE_PREFIX_LEN..).unwrap_or_default();
    let mut token =
        Vec::with_capacity(HEADER.len() + (body.len() * 4).div_ceil(3) + 1 + footer.encoded.len());
    token.extend_from_slice(HEADER.as_bytes());
    b64::encode_ascii_into(body, &mut token);
    if !footer.bytes.is_empty() {
        token.push(b'.');
        token.extend_from_slice(footer.encoded.as_bytes());
    }
    // The encoding held the token's body (claims and signature): cleared before it is freed.
    pae.zeroize();
    // The header, base64url and `.`: ASCII throughout, so this never falls back.
    String::from_utf8(token).unwrap_or_default()
}

/// Bytes of the pre-authentication encoding before the message: the piece count, the header's
/// length, the header and the message's length.
const PAE_PREFIX_LEN: usize = 8 + 8 + HEADER.len() + 8;

/// A token split and decoded, not yet verified.
///
/// The message and the footer are decoded straight into the buffer the signature is checked
/// over, at their places in its pre-authentication encoding, so verifying copies nothing.
/// Its `Debug` output gives lengths only: the encoding and the signature together are the token.
pub(crate) struct Decoded {
    /// `PAE(header, message, footer, …)` up to the footer's end (the rest is added by
    /// `verify`).
    pae: Vec<u8>,
    message_len: usize,
    footer_len: usize,
    signature: [u8; SIGNATURE_LEN],
}

impl fmt::Debug for Decoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoded")
            .field("message_len", &self.message_len)
            .field("footer_len", &self.footer_len)
            .finish_non_exhaustive()
    }
}

impl Decoded {
    /// Where the footer starts in the encoding: after the message and the footer's length.
    fn footer_start(&self) -> usize {
        PAE_PREFIX_LEN + self.message_len + 8
    }

    /// The footer bytes (empty when the token has none). Not yet authenticated.
    pub(crate) fn footer(&self) -> &[u8] {
        let start = self.footer_start();
        self.pae
            .get(start..start + self.footer_len)
            .unwrap_or_default()
    }

    /// The message (claims) bytes. Not yet authenticated.
    pub(crate) fn message(&self) -> &[u8] {
        self.pae
            .get(PAE_PREFIX_LEN..PAE_PREFIX_LEN + self.message_len)
            .unwrap_or_default()
    }

    /// Verifies the signature and returns the authenticated message.
    pub(crate) fn verify(
        &mut self,
        key: &PublicKey,
        implicit_assertion: &[u8],
    ) -> Result<&[u8], VerifyError> {
        // Complete the encoding: `… ‖ footer ‖ LE64(|assertion|) ‖ assertion`.
        self.pae.truncate(self.footer_start() + self.footer_len);
        self.pae.extend_from_slice(&le64(implicit_assertion.len()));
        self.pae.extend_from_slice(implicit_assertion);
        key.verify_signature(&self.pae, &self.signature)
            .map_err(|_| bad_signature())?;
        Ok(self.message())
    }

    /// [`verify`](Self::verify) without touching `self`: assembles the encoding in a new buffer.
    pub(crate) fn verify_detached(
        &self,
        key: &PublicKey,
        implicit_assertion: &[u8],
    ) -> Result<(), VerifyError> {
        let m2 = pae(&[
            HEADER.as_bytes(),
            self.message(),
            self.footer(),
            implicit_assertion,
        ]);
        key.verify_signature(&m2, &self.signature)
            .map_err(|_| bad_signature())
    }
}

fn bad_signature() -> VerifyError {
    VerifyError::new(
        VerifyErrorKind::BadSignature,
        "signature does not verify: the token was altered, signed by another key, or bound to \
         another environment or token type",
    )
}

/// Refuses a token longer than [`MAX_TOKEN_LEN`], before any decoding (of either format).
pub(crate) fn check_length(token: &str) -> Result<(), VerifyError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(VerifyError::new(
            VerifyErrorKind::Oversized,
            format!(
                "token is {} bytes, more than the {MAX_TOKEN_LEN} accepted; refused before decoding",
                token.len()
            ),
        ));
    }
    Ok(())
}

/// Checks the header, splits the token and decodes its parts. The caller has checked the
/// length ([`check_length`]). Nothing returned is authenticated yet.
pub(crate) fn decode(token: &str) -> Result<Decoded, VerifyError> {
    let Some(rest) = token.strip_prefix(HEADER) else {
        return Err(unsupported(token));
    };
    // Split at the last `.`: the footer is short, the body long. A body that still holds a
    // `.` (more parts) fails to decode, and is then reported as such.
    let (body, footer) = match rest.rsplit_once('.') {
        None => (rest, None),
        Some((body, footer)) => (body, Some(footer)),
    };
    if body.is_empty() {
        return Err(VerifyError::malformed("token has an empty body"));
    }
    if footer == Some("") {
        return Err(VerifyError::malformed(
            "token ends with `.`: an empty footer must be omitted",
        ));
    }
    let footer = footer.unwrap_or_default();
    // Room for the whole encoding, so `verify` does not reallocate for a typical assertion.
    let mut pae = Vec::with_capacity(
        PAE_PREFIX_LEN + body.len() / 4 * 3 + 3 + 8 + footer.len() / 4 * 3 + 3 + 8 + 96,
    );
    pae.extend_from_slice(&le64(4));
    pae.extend_from_slice(&le64(HEADER.len()));
    pae.extend_from_slice(HEADER.as_bytes());
    pae.extend_from_slice(&le64(0)); // the message length, written below
    if !b64::decode_into(body, &mut pae) {
        return Err(VerifyError::malformed(if body.contains('.') {
            "token has more than four parts"
        } else {
            "token body is not canonical unpadded base64url"
        }));
    }
    let Some(message_len) = (pae.len() - PAE_PREFIX_LEN).checked_sub(SIGNATURE_LEN) else {
        return Err(VerifyError::malformed(
            "token body is too short to hold a signature",
        ));
    };
    let mut signature = [0u8; SIGNATURE_LEN];
    signature.copy_from_slice(&pae[PAE_PREFIX_LEN + message_len..]);
    pae.truncate(PAE_PREFIX_LEN + message_len);
    pae[PAE_PREFIX_LEN - 8..PAE_PREFIX_LEN].copy_from_slice(&le64(message_len));
    // `LE64(|footer|) ‖ footer`, the length written once the footer is decoded.
    let footer_at = pae.len();
    pae.extend_from_slice(&le64(0));
    if !b64::decode_into(footer, &mut pae) {
        return Err(VerifyError::malformed(
            "token footer is not canonical unpadded base64url",
        ));
    }
    let footer_len = pae.len() - footer_at - 8;
    pae[footer_at..footer_at + 8].copy_from_slice(&le64(footer_len));
    Ok(Decoded {
        pae,
        message_len,
        footer_len,
        signature,
    })
}

fn unsupported(token: &str) -> VerifyError {
    let head: String = token
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".")
        .chars()
        .take(16)
        .filter(|c| c.is_ascii_graphic())
        .collect();
    let looks_like_paseto = token.len() > 3
        && token.as_bytes()[0].eq_ignore_ascii_case(&b'v')
        && token.as_bytes()[1].is_ascii_digit()
        && token.as_bytes()[2] == b'.';
    let message = if looks_like_paseto {
        format!("unsupported token type `{head}.`: only `v4.public.` tokens are accepted")
    } else {
        "not a PASETO v4.public token (it must start with `v4.public.`)".to_owned()
    };
    VerifyError::new(VerifyErrorKind::UnsupportedFormat, message)
}

/// Verifies a v4.public token against one key, an expected footer (empty: the token must have
/// none) and an implicit assertion, and returns the signed message.
///
/// The footer is compared in constant time.
///
/// # Errors
/// [`VerifyErrorKind::Oversized`], [`VerifyErrorKind::UnsupportedFormat`], [`VerifyErrorKind::Malformed`],
/// [`VerifyErrorKind::InvalidFooter`] when the footer differs from `footer`, and
/// [`VerifyErrorKind::BadSignature`].
pub fn verify(
    key: &PublicKey,
    token: &str,
    footer: &[u8],
    implicit_assertion: &[u8],
) -> Result<Vec<u8>, VerifyError> {
    check_length(token)?;
    let mut decoded = decode(token)?;
    let same_footer =
        decoded.footer().len() == footer.len() && bool::from(decoded.footer().ct_eq(footer));
    if !same_footer {
        return Err(VerifyError::new(
            VerifyErrorKind::InvalidFooter,
            "token footer is not the expected footer",
        ));
    }
    decoded.verify(key, implicit_assertion).map(<[u8]>::to_vec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_specification_examples() {
        assert_eq!(pae(&[]), b"\x00\x00\x00\x00\x00\x00\x00\x00");
        assert_eq!(
            pae(&[b""]),
            b"\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        );
        assert_eq!(
            pae(&[b"test"]),
            b"\x01\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00test"
        );
    }

    /// Malformed shapes are refused, each with what is wrong.
    #[test]
    fn malformed_shapes_say_what_is_wrong() {
        let key = SigningKey::generate().unwrap();
        let token = sign(&key, b"{}", b"{\"kid\":\"x\"}", b"");
        let (body, footer) = token.strip_prefix(HEADER).unwrap().split_once('.').unwrap();
        for (bad, says) in [
            (format!("{token}.e30"), "more than four parts"),
            (format!("{HEADER}{body}..{footer}"), "more than four parts"),
            (
                format!("{HEADER}{body}.e30.{footer}"),
                "more than four parts",
            ),
            (format!("{token}."), "ends with `.`"),
            (format!("{HEADER}.{footer}"), "empty body"),
            (format!("{HEADER}{body}=.{footer}"), "body is not canonical"),
            (
                format!("{HEADER}{body}.{footer}="),
                "footer is not canonical",
            ),
            (format!("{HEADER}{}", &body[..20]), "too short"),
        ] {
            let e = decode(&bad).unwrap_err();
            assert_eq!(e.kind(), VerifyErrorKind::Malformed, "{bad}");
            assert!(e.to_string().contains(says), "{bad}: {e}");
        }
        assert!(decode(&token).is_ok());
        assert!(decode(&format!("{HEADER}{body}")).is_ok(), "no footer");
    }

    /// The encoding `decode` and `verify` assemble in place is `pae` of the four pieces.
    #[test]
    fn in_place_encoding_is_the_pae_of_the_pieces() {
        let key = SigningKey::generate().unwrap();
        for (message, footer, assertion) in [
            (&b"{}"[..], &b""[..], &b""[..]),
            (b"{\"a\":1}", b"{\"kid\":\"x\"}", b"ctx"),
            (&[7u8; 300][..], &b"f"[..], &[1u8; 500][..]),
        ] {
            let token = sign(&key, message, footer, assertion);
            let mut decoded = decode(&token).unwrap();
            assert_eq!(decoded.message(), message);
            assert_eq!(
                decoded.verify(key.public_key(), assertion).unwrap(),
                message
            );
            assert_eq!(
                decoded.pae,
                pae(&[HEADER.as_bytes(), message, footer, assertion])
            );
            assert!(decoded.verify_detached(key.public_key(), assertion).is_ok());
            assert!(decoded.verify_detached(key.public_key(), b"x").is_err());
            // Verifying again (another assertion) starts from the message again.
            assert!(decoded.verify(key.public_key(), b"other").is_err());
            assert_eq!(
                decoded.verify(key.public_key(), assertion).unwrap(),
                message
            );
        }
        let mut short = decode("v4.public.AAAA").map(|_| ()).unwrap_err();
        assert_eq!(short.kind(), VerifyErrorKind::Malformed);
        short = decode(&format!("v4.public.{}", "A".repeat(84)))
            .map(|_| ())
            .unwrap_err();
        assert_eq!(short.kind(), VerifyErrorKind::Malformed);
        assert!(decode(&format!("v4.public.{}", "A".repeat(86))).is_ok());
    }

    #[test]
    fn sign_verify_round_trip_with_footer_and_assertion() {
        let key = SigningKey::generate().unwrap();
        let token = sign(&key, b"{\"a\":1}", b"{\"kid\":\"x\"}", b"ctx");
        let msg = verify(key.public_key(), &token, b"{\"kid\":\"x\"}", b"ctx").unwrap();
        assert_eq!(msg, b"{\"a\":1}");
        let e = verify(key.public_key(), &token, b"{\"kid\":\"y\"}", b"ctx").unwrap_err();
        assert_eq!(e.kind(), VerifyErrorKind::InvalidFooter);
        let e = verify(key.public_key(), &token, b"{\"kid\":\"x\"}", b"").unwrap_err();
        assert_eq!(e.kind(), VerifyErrorKind::BadSignature);
        let e = verify(key.public_key(), &token, b"", b"ctx").unwrap_err();
        assert_eq!(e.kind(), VerifyErrorKind::InvalidFooter);
    }
}
