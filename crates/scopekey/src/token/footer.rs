//! The footer of a PASETO token, read in one place: the strict `{"kid":"…"}` the verifier
//! requires, and the loose map `danger` shows.

use crate::codec::json;
use crate::token::claims_json;
use crate::token::error::{VerifyError, VerifyErrorKind};
use crate::token::verifier::MAX_FOOTER_LEN;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// The footer as a JSON object under the footer limits, for display; `None` when there is
/// none or it is not one.
pub(crate) fn footer_map(footer: &[u8]) -> Option<Map<String, Value>> {
    if footer.is_empty() {
        return None;
    }
    json::parse_object(footer, claims_json::FOOTER).ok()
}

/// Reads the key id from a footer, which must be `{"kid":"…"}` and nothing else; borrowed from the
/// footer in the form issuers write.
pub(crate) fn key_id_from_footer(footer: &[u8]) -> Result<Cow<'_, str>, VerifyError> {
    // What every scopekey issuer writes, `{"kid":"k4.pid.…"}` with the 44 base64url characters
    // of a key id, is taken in one pass: none of the refusals below can apply to it.
    if let Some(pid) = footer
        .strip_prefix(br#"{"kid":"k4.pid."#)
        .and_then(|rest| rest.strip_suffix(br#""}"#))
        && pid.len() == 44
        && crate::codec::b64::is_alphabet(pid)
        && let Some(Ok(kid)) = footer.get(8..footer.len() - 2).map(std::str::from_utf8)
    {
        return Ok(Cow::Borrowed(kid));
    }
    let invalid = |why: String| VerifyError::new(VerifyErrorKind::InvalidFooter, why);
    if footer.is_empty() {
        return Err(invalid(
            "token has no footer: scopekey tokens name their signing key in a `kid` footer".into(),
        ));
    }
    if footer.len() > MAX_FOOTER_LEN {
        return Err(invalid(format!(
            "token footer is longer than {MAX_FOOTER_LEN} bytes"
        )));
    }
    if carries_key_material(footer) {
        return Err(invalid(
            "token footer carries secret or symmetric key material; treat that key as leaked"
                .into(),
        ));
    }
    // The form every scopekey issuer writes, `{"kid":"…"}` with printable ASCII and no escape,
    // is read without building a map; it is exactly what the strict parser would return.
    if let Some(kid) = footer
        .strip_prefix(br#"{"kid":""#)
        .and_then(|rest| rest.strip_suffix(br#""}"#))
        && kid.len() <= claims_json::FOOTER.max_string
        && kid
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        && let Ok(kid) = std::str::from_utf8(kid)
    {
        return Ok(Cow::Borrowed(kid));
    }
    let mut map = json::parse_object(footer, claims_json::FOOTER)
        .map_err(|e| invalid(format!("token footer is not valid: {e}")))?;
    if map.len() != 1 {
        return Err(invalid(
            "token footer must hold exactly one member, `kid`".into(),
        ));
    }
    match map.remove("kid") {
        Some(Value::String(kid)) => Ok(Cow::Owned(kid)),
        _ => Err(invalid(
            "token footer must hold exactly one member, `kid`, a string".into(),
        )),
    }
}

/// Whether the bytes contain a PASERK of secret or symmetric key material (docs/threats.md B6).
pub(crate) fn carries_key_material(footer: &[u8]) -> bool {
    const TYPES: [&[u8]; 3] = [b".secret", b".local", b".seal"];
    footer.windows(2).enumerate().any(|(i, w)| {
        w[0] == b'k'
            && w[1].is_ascii_digit()
            && TYPES.iter().any(|t| footer[i + 2..].starts_with(t))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_key_material_is_detected() {
        assert!(carries_key_material(br#"{"kid":"k4.secret.AAAA"}"#));
        assert!(carries_key_material(br#"{"kid":"k3.local.AAAA"}"#));
        assert!(carries_key_material(br#"{"x":"k4.seal.AAAA"}"#));
        assert!(carries_key_material(
            br#"{"kid":"k4.secret-wrap.pie.AAAA"}"#
        ));
        assert!(!carries_key_material(br#"{"kid":"k4.pid.AAAA"}"#));
        assert!(!carries_key_material(b"k4"));
    }

    /// The plain-footer shortcut returns what the strict parser returns, and leaves everything
    /// else to it.
    #[test]
    fn footer_shortcut_agrees_with_the_strict_parser() {
        let strict = |footer: &[u8]| -> Result<String, ()> {
            let mut map = json::parse_object(footer, claims_json::FOOTER).map_err(|_| ())?;
            match (map.len(), map.remove("kid")) {
                (1, Some(Value::String(kid))) => Ok(kid),
                _ => Err(()),
            }
        };
        let long = format!(r#"{{"kid":"{}"}}"#, "a".repeat(129));
        let edge = format!(r#"{{"kid":"{}"}}"#, "a".repeat(128));
        let key = crate::SigningKey::generate().unwrap();
        let real = format!(r#"{{"kid":"{}"}}"#, key.key_id());
        let almost = [
            real.replacen("k4.pid.", "k4.pid.-", 1),
            real.replacen("k4.pid.", "k4.pid", 1),
            real.replacen("\"}", "=\"}", 1),
            real.replacen("\"}", "\"} ", 1),
            real.replacen("{", "{\"kid\":\"x\",", 1),
        ];
        let mut footers: Vec<&[u8]> = vec![
            real.as_bytes(),
            br#"{"kid":"k4.pid.AAAA"}"#,
            br#"{"kid":""}"#,
            br#"{"kid":"a\"b"}"#,
            br#"{"kid":"a\u0041"}"#,
            br#"{"kid":"a"b"}"#,
            b"{\"kid\":\"a\x01b\"}",
            b"{\"kid\":\"\xc3\xa9\"}",
            b"{\"kid\":\"\xff\"}",
            br#"{"kid":"a"} "#,
            br#"{"kid":"a","kid":"b"}"#,
            br#"{"kid":"a"}"}"#,
            br#"{"kid":"a","x":1}"#,
            br#"{"kid":1}"#,
            long.as_bytes(),
            edge.as_bytes(),
        ];
        footers.extend(almost.iter().map(|f| f.as_bytes()));
        // A real key id takes the one-pass path: borrowed, never built by the parser.
        assert!(matches!(
            key_id_from_footer(real.as_bytes()),
            Ok(Cow::Borrowed(kid)) if kid == key.key_id().as_str()
        ));
        for footer in footers {
            let fast = key_id_from_footer(footer)
                .map(Cow::into_owned)
                .map_err(|_| ());
            assert_eq!(fast, strict(footer), "{}", String::from_utf8_lossy(footer));
        }
    }
}
