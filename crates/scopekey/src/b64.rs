//! Strict base64url without padding, as PASETO requires: the URL-safe alphabet only, no `=`,
//! no whitespace, and canonical trailing bits (a string that decodes to the same bytes as a
//! different string is refused).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encodes bytes as unpadded base64url.
pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded, canonical base64url. Refuses padding, `+` and `/`, whitespace and
/// non-zero trailing bits.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_non_canonical_forms() {
        for bytes in [&b""[..], b"f", b"fo", b"foo", b"\xff\xfe\xfd\x00"] {
            assert_eq!(decode(&encode(bytes)).as_deref(), Some(bytes));
        }
        assert_eq!(decode("Zm8").as_deref(), Some(&b"fo"[..]));
        assert_eq!(decode("Zm9="), None, "padding");
        assert_eq!(decode("Zm8="), None, "padding");
        assert_eq!(decode("Zm9"), None, "non-zero trailing bits");
        assert_eq!(decode("++//"), None, "standard alphabet");
        assert_eq!(decode("Zm 8"), None, "whitespace");
        assert_eq!(decode("Zm8\n"), None, "newline");
        assert_eq!(decode("Z"), None, "impossible length");
    }
}
