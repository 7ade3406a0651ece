//! Strict base64url without padding, as PASETO requires: the URL-safe alphabet only, no `=`,
//! no whitespace, and canonical trailing bits (a string that decodes to the same bytes as a
//! different string is refused).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encodes bytes as unpadded base64url.
pub(crate) fn encode(bytes: &[u8]) -> String {
    // Exactly as long as needed, so `into_boxed_str` keeps the allocation.
    let mut text = Vec::with_capacity((bytes.len() * 4).div_ceil(3));
    encode_ascii_into(bytes, &mut text);
    // base64url is ASCII: this never falls back.
    String::from_utf8(text).unwrap_or_default()
}

/// Appends bytes as unpadded base64url (ASCII) to a byte buffer.
///
/// Whole blocks of 12 bytes become 16 characters: each half of a block is read as the top or
/// bottom 48 bits of one 8-byte load, and its four 12-bit indexes pick character pairs from a
/// table, assembled into one 8-byte store. The last, partial block goes to the `base64` crate.
/// A property test holds the result to the crate's.
pub(crate) fn encode_ascii_into(bytes: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    let blocks = bytes.len() / 12;
    out.resize(start + blocks * 16, 0);
    if let Some(room) = out.get_mut(start..) {
        for (block, chars) in bytes.chunks_exact(12).zip(room.chunks_exact_mut(16)) {
            let (Some(first), Some(last)) = (block.first_chunk::<8>(), block.last_chunk::<8>())
            else {
                continue; // a block is 12 bytes: never taken
            };
            // Bytes 0..6 are the top 48 bits of the first eight, bytes 6..12 the bottom 48 of
            // the last eight.
            let halves = [u64::from_be_bytes(*first) >> 16, u64::from_be_bytes(*last)];
            for (bits, chars) in halves.into_iter().zip(chars.chunks_exact_mut(8)) {
                let pair = |shift: u32| u64::from(PAIRS[((bits >> shift) & 0xfff) as usize]);
                let word = pair(36) | pair(24) << 16 | pair(12) << 32 | pair(0) << 48;
                chars.copy_from_slice(&word.to_le_bytes());
            }
        }
    }
    let rest = bytes.get(blocks * 12..).unwrap_or_default();
    let mut tail = [0u8; 16];
    let written = URL_SAFE_NO_PAD
        .encode_slice(rest, &mut tail)
        .unwrap_or_default();
    out.extend_from_slice(tail.get(..written).unwrap_or_default());
}

/// The two characters of every 12-bit value, first character in the low byte.
static PAIRS: [u16; 4096] = {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut table = [0; 4096];
    let mut i = 0;
    while i < 4096 {
        table[i] = u16::from_le_bytes([alphabet[i >> 6], alphabet[i & 63]]);
        i += 1;
    }
    table
};

/// Decodes unpadded, canonical base64url, appending to `out`; the same refusals as [`decode`].
/// On `false`, `out` holds unspecified bytes past its former length.
///
/// Token bodies are decoded on every verification, so whole blocks of 16 characters go through
/// four tables without a branch per character (validity is checked once for all of them), then
/// the groups of four left, then the last two or three characters, whose unused bits must be
/// zero. A property test holds the result to the `base64` crate's for any input.
pub(crate) fn decode_into(text: &str, out: &mut Vec<u8>) -> bool {
    let input = text.as_bytes();
    let blocks = input.len() / 16;
    let start = out.len();
    out.resize(start + blocks * 12, 0);
    let group = |c: &[u8]| {
        let at = |i: usize| usize::from(c.get(i).copied().unwrap_or(b'='));
        SHIFTED[0][at(0)] | SHIFTED[1][at(1)] | SHIFTED[2][at(2)] | SHIFTED[3][at(3)]
    };
    let mut seen = 0;
    if let Some(room) = out.get_mut(start..) {
        for (chars, bytes) in input.chunks_exact(16).zip(room.chunks_exact_mut(12)) {
            let (a, b) = (group(&chars[..4]), group(&chars[4..8]));
            let (c, d) = (group(&chars[8..12]), group(&chars[12..]));
            seen |= a | b | c | d;
            // Four groups of 24 bits, most significant first.
            let high = (u64::from(a) << 40)
                | (u64::from(b & 0xff_ffff) << 16)
                | u64::from((c >> 8) & 0xffff);
            let low = ((c & 0xff) << 24) | (d & 0xff_ffff);
            bytes[..8].copy_from_slice(&high.to_be_bytes());
            bytes[8..].copy_from_slice(&low.to_be_bytes());
        }
    }
    let rest = input.get(blocks * 16..).unwrap_or_default();
    let mut groups = rest.chunks_exact(4);
    for chars in groups.by_ref() {
        let n = group(chars);
        seen |= n;
        out.extend_from_slice(&n.to_be_bytes()[1..]);
    }
    let value = |c: u8| SEXTETS[usize::from(c)];
    match *groups.remainder() {
        [] => {}
        [a, b] => {
            let (a, b) = (value(a), value(b));
            // The second character's low four bits are not part of the byte: zero if canonical.
            if (a | b) >= 64 || b & 0x0f != 0 {
                return false;
            }
            out.push((a << 2) | (b >> 4));
        }
        [a, b, c] => {
            let (a, b, c) = (value(a), value(b), value(c));
            // The third character's low two bits are not part of the bytes.
            if (a | b | c) >= 64 || c & 0x03 != 0 {
                return false;
            }
            out.push((a << 2) | (b >> 4));
            out.push((b << 4) | (c >> 2));
        }
        // One character left over holds no whole byte: no encoder writes that.
        _ => return false,
    }
    seen & GROUP_INVALID == 0
}

/// Set in a table entry for a character outside the alphabet, above the 24 data bits.
const GROUP_INVALID: u32 = 0xff00_0000;

/// Each character's value shifted to its place in a group of four (`SHIFTED[i]` for the `i`th
/// character), [`GROUP_INVALID`] for anything else.
static SHIFTED: [[u32; 256]; 4] = {
    let mut tables = [[GROUP_INVALID; 256]; 4];
    let mut c = 0;
    while c < 256 {
        let v = SEXTETS[c];
        if v != INVALID {
            let v = v as u32;
            tables[0][c] = v << 18;
            tables[1][c] = v << 12;
            tables[2][c] = v << 6;
            tables[3][c] = v;
        }
        c += 1;
    }
    tables
};

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

/// Whether every byte is a base64url character.
pub(crate) fn is_alphabet(bytes: &[u8]) -> bool {
    // Values are below 64; `INVALID` has the top bits set. One pass, no branch per byte.
    bytes
        .iter()
        .fold(0, |seen, &b| seen | SEXTETS[usize::from(b)])
        < 64
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
        /// The block decoder accepts and refuses exactly what the `base64` crate does, and
        /// appends the same bytes, for text of any length near the alphabet.
        #[test]
        fn block_decoder_is_the_crate(
            text in proptest::collection::vec(
                proptest::prop_oneof![
                    20 => proptest::sample::select(
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".to_vec()
                    ),
                    1 => proptest::sample::select(b"=+/ .\n\0\x7f".to_vec()),
                ],
                0..80,
            ),
            prefix in proptest::collection::vec(proptest::num::u8::ANY, 0..3),
        ) {
            let text = String::from_utf8(text).unwrap();
            let mut ours = prefix.clone();
            let mut theirs = prefix.clone();
            let ok = decode_into(&text, &mut ours);
            proptest::prop_assert_eq!(ok, URL_SAFE_NO_PAD.decode_vec(&text, &mut theirs).is_ok(), "{}", text);
            if ok {
                proptest::prop_assert_eq!(ours, theirs);
            }
        }

        /// The block encoder writes what the `base64` crate writes, after what `out` held.
        #[test]
        fn block_encoder_is_the_crate(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..120),
            prefix in "[a-z.]{0,3}",
        ) {
            let mut ours = prefix.clone().into_bytes();
            encode_ascii_into(&bytes, &mut ours);
            let mut theirs = prefix;
            URL_SAFE_NO_PAD.encode_string(&bytes, &mut theirs);
            proptest::prop_assert_eq!(String::from_utf8(ours).unwrap(), theirs);
            // `encode` is the same text in an allocation of exactly its length.
            let text = encode(&bytes);
            proptest::prop_assert_eq!(text.capacity(), text.len());
            proptest::prop_assert_eq!(text, URL_SAFE_NO_PAD.encode(&bytes));
        }

        /// Valid text of every length round-trips (most of it is whole blocks).
        #[test]
        fn block_decoder_round_trips(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..120)) {
            let mut out = vec![7];
            proptest::prop_assert!(decode_into(&encode(&bytes), &mut out));
            proptest::prop_assert_eq!(&out[1..], &bytes[..]);
        }
    }

    /// Every ending of one to three characters (the alphabet and a few outsiders), after a
    /// whole block and a group: the same answer and bytes as the crate.
    #[test]
    fn every_short_ending_is_the_crate() {
        let mut chars: Vec<u8> =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".to_vec();
        chars.extend_from_slice(b"=+/. ");
        let prefix = "AbCdEfGhIjKlMnOp_-09";
        let check = |ending: &[u8]| {
            let text = format!("{prefix}{}", std::str::from_utf8(ending).unwrap());
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            let ok = decode_into(&text, &mut ours);
            assert_eq!(
                ok,
                URL_SAFE_NO_PAD.decode_vec(&text, &mut theirs).is_ok(),
                "{text}"
            );
            if ok {
                assert_eq!(ours, theirs, "{text}");
            }
        };
        for &a in &chars {
            check(&[a]);
            for &b in &chars {
                check(&[a, b]);
                for &c in &chars {
                    check(&[a, b, c]);
                }
            }
        }
    }

    #[test]
    fn block_decoder_refuses_a_bad_character_anywhere() {
        let text = encode(&[0xa5; 48]);
        for at in 0..text.len() {
            for bad in [b'=', b'+', b'/', b' ', 0x80] {
                let mut bytes = text.clone().into_bytes();
                bytes[at] = bad;
                let Ok(bad_text) = String::from_utf8(bytes) else {
                    continue;
                };
                assert!(!decode_into(&bad_text, &mut Vec::new()), "{bad_text}");
            }
        }
    }

    #[test]
    fn alphabet_is_the_url_safe_characters() {
        let naive = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        for b in 0..=255u8 {
            assert_eq!(is_alphabet(&[b]), naive(b), "{b}");
            assert_eq!(is_alphabet(&[b'A', b, b'z']), naive(b), "{b}");
        }
        assert!(is_alphabet(b""));
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
