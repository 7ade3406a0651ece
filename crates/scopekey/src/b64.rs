//! Strict base64url without padding, as PASETO requires: the URL-safe alphabet only, no `=`,
//! no whitespace, and canonical trailing bits (a string that decodes to the same bytes as a
//! different string is refused).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encodes bytes as unpadded base64url.
pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Appends bytes as unpadded base64url to `out`.
pub(crate) fn encode_into(bytes: &[u8], out: &mut String) {
    URL_SAFE_NO_PAD.encode_string(bytes, out);
}

/// Decodes unpadded, canonical base64url, appending to `out`; the same refusals as [`decode`].
/// On `false`, `out` holds unspecified bytes past its former length.
pub(crate) fn decode_into(text: &str, out: &mut Vec<u8>) -> bool {
    URL_SAFE_NO_PAD.decode_vec(text, out).is_ok()
}

/// Decodes unpadded, canonical base64url. Refuses padding, `+` and `/`, whitespace and
/// non-zero trailing bits.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Decodes exactly 22 canonical base64url characters into 16 bytes (a generated id), with
/// no allocation: revocation lookups do this on every verification. Four characters at a
/// time through a table, so the groups do not wait on one another.
pub(crate) fn decode_16(text: &str) -> Option<[u8; 16]> {
    let chars: &[u8; 22] = text.as_bytes().try_into().ok()?;
    let value = |c: u8| SEXTETS[usize::from(c)];
    let mut out = [0u8; 16];
    // Valid values are below 64; `INVALID` has the top bits set.
    let mut seen = 0u8;
    for g in 0..5 {
        let (a, b) = (value(chars[4 * g]), value(chars[4 * g + 1]));
        let (c, d) = (value(chars[4 * g + 2]), value(chars[4 * g + 3]));
        seen |= a | b | c | d;
        let n = (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(c) << 6) | u32::from(d);
        out[3 * g] = (n >> 16) as u8;
        out[3 * g + 1] = (n >> 8) as u8;
        out[3 * g + 2] = n as u8;
    }
    let (a, b) = (value(chars[20]), value(chars[21]));
    seen |= a | b;
    // The last character carries 2 bits; its low 4 bits must be zero (canonical).
    if seen & 0xc0 != 0 || b & 0x0f != 0 {
        return None;
    }
    out[15] = (a << 2) | (b >> 4);
    Some(out)
}

const INVALID: u8 = 0xff;

/// The value of each base64url character, [`INVALID`] for anything else.
const SEXTETS: [u8; 256] = {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

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

    #[test]
    fn decode_16_agrees_with_the_general_decoder() {
        for seed in 0u8..=255 {
            let bytes: [u8; 16] =
                std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8 * 17));
            let text = encode(&bytes);
            assert_eq!(decode_16(&text), Some(bytes));
        }
        let mut non_canonical = encode(&[0xff; 16]).into_bytes();
        *non_canonical.last_mut().unwrap() = b'x';
        let non_canonical = String::from_utf8(non_canonical).unwrap();
        assert_eq!(decode(&non_canonical), None);
        assert_eq!(decode_16(&non_canonical), None);
        assert_eq!(decode_16("AAAAAAAAAAAAAAAAAAAAA+"), None);
        assert_eq!(decode_16("AAAAAAAAAAAAAAAAAAAAA"), None);
        assert_eq!(decode_16("AAAAAAAAAAAAAAAAAAAAAAA"), None);
    }
}
