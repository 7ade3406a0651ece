//! Strict base64url without padding, as PASETO requires: the URL-safe alphabet only, no `=`,
//! no whitespace, and canonical trailing bits (a string that decodes to the same bytes as a
//! different string is refused).
//!
//! Encoding uses the `base64` crate. Decoding, which runs on every untrusted token, is a table
//! walk here (four characters at a time, one validity check at the end), held by a property
//! test to accept and refuse exactly what the crate's strict engine does.

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

/// Decodes unpadded, canonical base64url, appending to `out`; the same refusals as [`decode`]
/// (a property test holds it to the `base64` crate). On `false`, `out` holds unspecified bytes
/// past its former length.
///
/// The verifier decodes every token body with this: four characters at a time through
/// [`SEXTETS`], with one check for invalid characters at the end instead of a branch per
/// character.
pub(crate) fn decode_into(text: &str, out: &mut Vec<u8>) -> bool {
    let chars = text.as_bytes();
    let tail = chars.len() % 4;
    if tail == 1 {
        return false;
    }
    let groups = chars.len() / 4;
    let len = groups * 3 + tail.saturating_sub(1);
    let start = out.len();
    out.resize(start + len, 0);
    let Some(dst) = out.get_mut(start..) else {
        return false;
    };
    let value = |c: u8| SEXTETS[usize::from(c)];
    // Valid values are below 64; `INVALID` has the top bits set.
    let mut seen = 0u8;
    for (src, dst) in chars.chunks_exact(4).zip(dst.chunks_exact_mut(3)) {
        let (a, b, c, d) = (value(src[0]), value(src[1]), value(src[2]), value(src[3]));
        seen |= a | b | c | d;
        let n = (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(c) << 6) | u32::from(d);
        dst[0] = (n >> 16) as u8;
        dst[1] = (n >> 8) as u8;
        dst[2] = n as u8;
    }
    let rest = &chars[groups * 4..];
    let out_rest = &mut dst[groups * 3..];
    let canonical = match (rest, out_rest) {
        ([], []) => true,
        // Two characters carry one byte; the second's low 4 bits must be zero.
        ([a, b], [x]) => {
            let (a, b) = (value(*a), value(*b));
            seen |= a | b;
            *x = (a << 2) | (b >> 4);
            b & 0x0f == 0
        }
        // Three carry two; the third's low 2 bits must be zero.
        ([a, b, c], [x, y]) => {
            let (a, b, c) = (value(*a), value(*b), value(*c));
            seen |= a | b | c;
            *x = (a << 2) | (b >> 4);
            *y = (b << 4) | (c >> 2);
            c & 0x03 == 0
        }
        _ => false,
    };
    canonical && seen & 0xc0 == 0
}

/// Decodes unpadded, canonical base64url. Refuses padding, `+` and `/`, whitespace and
/// non-zero trailing bits.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    decode_into(text, &mut out).then_some(out)
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

    proptest::proptest! {
        /// The verifier's decoder accepts and refuses exactly what the `base64` crate's strict
        /// unpadded URL-safe engine does, and decodes to the same bytes.
        #[test]
        fn decode_into_agrees_with_the_base64_crate(
            text in proptest::prop_oneof![
                // Encodings of real bytes, so most inputs are valid.
                proptest::strategy::Strategy::prop_map(
                    proptest::collection::vec(proptest::num::u8::ANY, 0..80),
                    |b: Vec<u8>| encode(&b),
                ),
                // Canonical-looking text with anything mixed in.
                proptest::strategy::Strategy::prop_map("[A-Za-z0-9_=+/ .\\-]{0,40}", String::from),
                proptest::strategy::Strategy::prop_map("[A-Za-z0-9_-]{0,40}", String::from),
            ],
            prefix in proptest::collection::vec(proptest::num::u8::ANY, 0..4),
        ) {
            let expected = URL_SAFE_NO_PAD.decode(&text).ok();
            let mut out = prefix.clone();
            let ok = decode_into(&text, &mut out);
            proptest::prop_assert_eq!(ok, expected.is_some(), "{:?}", text);
            if let Some(bytes) = expected {
                proptest::prop_assert_eq!(&out[..prefix.len()], &prefix[..]);
                proptest::prop_assert_eq!(&out[prefix.len()..], &bytes[..]);
            }
        }
    }

    #[test]
    fn decode_into_refuses_what_decode_refuses() {
        for bad in [
            "Zm9=", "Zm8=", "Zm9", "++//", "Zm 8", "Zm8\n", "Z", "AAAAB", "AB", "ABC", "Aé",
        ] {
            let mut out = Vec::new();
            assert_eq!(decode_into(bad, &mut out), decode(bad).is_some(), "{bad:?}");
        }
        let mut out = Vec::new();
        assert!(decode_into("Zm8", &mut out));
        assert_eq!(out, b"fo");
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
