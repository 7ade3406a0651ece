//! One test per applicable row of docs/threats.md sections B, C, D and E, each asserting the
//! specific refusal. Section A (JWT) is tested in `tests/jwt.rs`, section G (lifecycle) in
//! `tests/lifecycle.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scopekey::BackendError;
use scopekey::audit::{AuditKind, MemorySink};
use scopekey::cache::GrantCache;
use scopekey::danger::paseto::{self, MAX_TOKEN_LEN};
use scopekey::inventory::{Inventory, InventoryQuery, TokenRecord};
use scopekey::revocation::{RevocationCheck, RevocationStatus, TokenFacts};
use scopekey::{
    Environment, IssueErrorKind, Issuer, KeyErrorKind, KeyRing, KeySet, ManualClock, PublicKey,
    SigningKey, TokenRequest, TokenType, Verifier, VerifierConfig, VerifyErrorKind,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";
const NOW: i64 = 1_900_000_000; // 2030-03-17T17:46:40Z

struct Fixture {
    key: SigningKey,
    clock: ManualClock,
    verifier: Verifier,
}

fn env(s: &str) -> Environment {
    s.parse().unwrap()
}

fn fixture() -> Fixture {
    let key = SigningKey::generate().unwrap();
    let clock = ManualClock::at_unix(NOW);
    let verifier = Verifier::new(
        KeySet::single(key.public_key().clone()),
        VerifierConfig::new(ISS, AUD, env("production")).clock(clock.clone()),
    )
    .unwrap();
    Fixture {
        key,
        clock,
        verifier,
    }
}

impl Fixture {
    fn issuer(&self, environment: &str) -> Issuer {
        let key = SigningKey::from_paserk(&self.key.to_paserk()).unwrap();
        Issuer::new(key, ISS, env(environment))
            .unwrap()
            .with_clock(self.clock.clone())
    }

    fn mint(&self) -> String {
        let req = TokenRequest::new("ci", AUD, "projects:read".parse().unwrap());
        self.issuer("production")
            .issue(&req)
            .unwrap()
            .token()
            .as_str()
            .to_owned()
    }

    fn footer(&self) -> Vec<u8> {
        format!("{{\"kid\":\"{}\"}}", self.key.key_id()).into_bytes()
    }

    /// Signs an arbitrary payload with the trusted key, the right footer and the production
    /// binding: everything but the claims is valid.
    fn craft(&self, payload: &str) -> String {
        paseto::sign(
            &self.key,
            payload.as_bytes(),
            &self.footer(),
            &paseto::implicit_assertion(&env("production"), TokenType::Access),
        )
    }

    fn craft_footer(&self, footer: &[u8]) -> String {
        paseto::sign(
            &self.key,
            valid_claims().as_bytes(),
            footer,
            &paseto::implicit_assertion(&env("production"), TokenType::Access),
        )
    }

    fn refuse(&self, token: &str) -> VerifyErrorKind {
        match self.verifier.verify(token) {
            Ok(g) => panic!("accepted a token that must be refused: {:?}", g.claims()),
            Err(e) => {
                if token.len() > 16 {
                    assert!(!e.to_string().contains(token), "message leaks the token");
                }
                e.kind()
            }
        }
    }
}

/// A claims object that verifies, with `field` replaced by `value` (raw JSON) or removed.
fn claims_with(field: &str, value: Option<&str>) -> String {
    let mut fields = vec![
        ("iss", format!("\"{ISS}\"")),
        ("sub", "\"ci\"".to_owned()),
        ("aud", format!("\"{AUD}\"")),
        ("env", "\"production\"".to_owned()),
        ("exp", "\"2030-03-17T17:56:40Z\"".to_owned()),
        ("nbf", "\"2030-03-17T17:46:40Z\"".to_owned()),
        ("iat", "\"2030-03-17T17:46:40Z\"".to_owned()),
        ("jti", "\"AAAAAAAAAAAAAAAAAAAAAA\"".to_owned()),
        ("scope", "\"projects:read\"".to_owned()),
    ];
    fields.retain(|(k, _)| *k != field);
    if let Some(v) = value {
        fields.push((field, v.to_owned()));
    }
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    format!("{{{}}}", body.join(","))
}

fn valid_claims() -> String {
    claims_with("", None)
}

#[test]
fn the_crafting_helpers_produce_a_valid_token() {
    let f = fixture();
    let grant = f.verifier.verify(&f.craft(&valid_claims())).unwrap();
    assert_eq!(grant.subject(), "ci");
    assert!(f.verifier.verify(&f.mint()).is_ok());
}

// ---- B. PASETO v4.public -----------------------------------------------------------------------

#[test]
fn b1_other_versions_and_purposes_are_refused() {
    let f = fixture();
    let token = f.mint();
    let rest = token.strip_prefix("v4.public.").unwrap();
    for header in [
        "v4.local.",
        "v3.public.",
        "v2.public.",
        "V4.PUBLIC.",
        "v4.Public.",
        "v5.public.",
    ] {
        let e = f.refuse(&format!("{header}{rest}"));
        assert_eq!(e, VerifyErrorKind::UnsupportedFormat, "{header}");
    }
    for other in [
        "",
        "v4.public",
        "eyJhbGciOiJFZERTQSJ9.e30.sig",
        "Bearer v4.public.x",
    ] {
        let e = f.refuse(other);
        if cfg!(feature = "jwt") {
            // With JWT support, what is not a PASETO is taken apart as a JWT, and refused.
            assert!(
                matches!(
                    e,
                    VerifyErrorKind::Malformed
                        | VerifyErrorKind::InvalidHeader
                        | VerifyErrorKind::UnsupportedFormat
                ),
                "{other:?}: {e:?}"
            );
        } else {
            assert_eq!(e, VerifyErrorKind::UnsupportedFormat, "{other:?}");
        }
    }
}

#[test]
fn b2_symmetric_and_bare_keys_cannot_be_used() {
    // A local (symmetric) key has no type in this API; its PASERK is refused at import.
    let local = "k4.local.cHFyc3R1dnd4eXp7fH1-f4CBgoOEhYaHiImKi4yNjo8";
    assert_eq!(
        SigningKey::from_paserk(local).unwrap_err().kind(),
        KeyErrorKind::WrongType
    );
    assert_eq!(
        PublicKey::from_paserk(local).unwrap_err().kind(),
        KeyErrorKind::WrongType
    );
    // A bare byte string is not a key: the verifier takes a KeySet of PublicKeys, and bytes
    // become a PublicKey only through checked import.
    assert_eq!(
        PublicKey::from_bytes(b"secret").unwrap_err().kind(),
        KeyErrorKind::WrongLength
    );
}

#[test]
fn b3_non_canonical_base64_and_trailing_dot_are_refused() {
    let f = fixture();
    let token = f.mint();
    let (body, footer) = token
        .strip_prefix("v4.public.")
        .unwrap()
        .split_once('.')
        .unwrap();
    let bad = [
        format!("v4.public.{body}=.{footer}"),
        format!("v4.public.{body}.{footer}="),
        format!("v4.public.+{}.{footer}", &body[1..]),
        format!("v4.public./{}.{footer}", &body[1..]),
        format!("v4.public.{body} .{footer}"),
        format!("{token}."),
        format!("v4.public.{body}..{footer}"),
        format!("v4.public..{footer}"),
        format!("{token}.e30"),
    ];
    for t in bad {
        assert_eq!(f.refuse(&t), VerifyErrorKind::Malformed, "{t}");
    }
}

#[test]
fn b3_non_zero_trailing_bits_are_refused() {
    use base64::Engine as _;
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
    // What pyseto and jose do (docs/threats.md B3, A9): ignore the unused bits of the last character.
    let lenient = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
    );
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let f = fixture();
    // (body with 2 spare bits, body with 4, footer with 4): the cases tried, counted below.
    let mut tried = [0; 3];
    // Claims of three lengths, so that the body's byte count covers every remainder mod 3.
    for pad in 0..3 {
        let claims = claims_with("x", Some(&format!("\"{}\"", "a".repeat(pad))));
        let token = f.craft(&claims);
        assert!(
            f.verifier.verify(&token).is_ok(),
            "the canonical form verifies"
        );
        let (body, footer) = token
            .strip_prefix("v4.public.")
            .unwrap()
            .split_once('.')
            .unwrap();
        for (part, is_body) in [(body, true), (footer, false)] {
            let spare = match part.len() % 4 {
                2 => 4,
                3 => 2,
                _ => continue, // a whole number of 3-byte groups: no spare bits
            };
            let canonical = URL_SAFE_NO_PAD.decode(part).unwrap();
            let last = ALPHABET
                .iter()
                .position(|&c| c == *part.as_bytes().last().unwrap())
                .unwrap();
            for bit in 0..spare {
                let mut altered = part[..part.len() - 1].to_owned();
                altered.push(char::from(ALPHABET[last ^ (1 << bit)]));
                // The case is real: the trailing bits are not zero, and a lenient decoder
                // reads the very bytes of the canonical form (so the signature would verify).
                assert!(URL_SAFE_NO_PAD.decode(&altered).is_err(), "{altered}");
                assert_eq!(lenient.decode(&altered).unwrap(), canonical, "{altered}");
                let t = if is_body {
                    format!("v4.public.{altered}.{footer}")
                } else {
                    format!("v4.public.{body}.{altered}")
                };
                assert_eq!(f.refuse(&t), VerifyErrorKind::Malformed, "{t}");
                tried[match (is_body, spare) {
                    (true, 2) => 0,
                    (true, _) => 1,
                    (false, _) => 2,
                }] += 1;
            }
        }
    }
    // Every spare-bit width in the body, and the footer each time (61 bytes: 4 spare bits).
    assert_eq!(tried, [2, 4, 12]);
}

#[test]
fn b4_footer_is_authenticated_and_only_selects_from_the_allowlist() {
    let f = fixture();
    let other = SigningKey::generate().unwrap();
    // A kid not in the set.
    let foreign = format!("{{\"kid\":\"{}\"}}", other.key_id());
    assert_eq!(
        f.refuse(&f.craft_footer(foreign.as_bytes())),
        VerifyErrorKind::UnknownKey
    );
    // A footer swapped onto another token: the footer is signed, so the signature fails.
    let mut keys = KeySet::single(f.key.public_key().clone());
    keys.insert(other.public_key().clone());
    let both = Verifier::new(
        keys,
        VerifierConfig::new(ISS, AUD, env("production")).clock(f.clock.clone()),
    )
    .unwrap();
    let token = f.mint();
    let (head, _) = token.rsplit_once('.').unwrap();
    let swapped = format!(
        "{head}.{}",
        paseto::sign(&other, b"{}", foreign.as_bytes(), b"")
            .rsplit_once('.')
            .unwrap()
            .1
    );
    assert_eq!(
        both.verify(&swapped).unwrap_err().kind(),
        VerifyErrorKind::BadSignature
    );
    // kid injection: only ever a map lookup.
    for kid in [
        "../../dev/null",
        "' OR 1=1 --",
        "http://evil.example/key",
        "k4.pid.\u{0}",
        "ключ",
    ] {
        let footer = serde_json::json!({ "kid": kid }).to_string();
        assert_eq!(
            f.refuse(&f.craft_footer(footer.as_bytes())),
            VerifyErrorKind::UnknownKey,
            "{kid}"
        );
    }
    // No footer, or a footer with more than the kid.
    assert_eq!(
        f.refuse(&f.craft_footer(b"")),
        VerifyErrorKind::InvalidFooter
    );
    let extra = format!("{{\"kid\":\"{}\",\"x\":1}}", f.key.key_id());
    assert_eq!(
        f.refuse(&f.craft_footer(extra.as_bytes())),
        VerifyErrorKind::InvalidFooter
    );
    let dup = format!("{{\"kid\":\"{0}\",\"kid\":\"{0}\"}}", f.key.key_id());
    assert_eq!(
        f.refuse(&f.craft_footer(dup.as_bytes())),
        VerifyErrorKind::InvalidFooter
    );
    assert_eq!(
        f.refuse(&f.craft_footer(b"not json")),
        VerifyErrorKind::InvalidFooter
    );
}

#[test]
fn b5_footer_size_depth_and_members_are_capped() {
    let f = fixture();
    let big = format!("{{\"kid\":\"{}\"}}", "a".repeat(1 << 20));
    assert_eq!(
        f.refuse(&f.craft_footer(big.as_bytes())),
        VerifyErrorKind::Oversized
    );
    let long = format!("{{\"kid\":\"{}\"}}", "a".repeat(300));
    assert_eq!(
        f.refuse(&f.craft_footer(long.as_bytes())),
        VerifyErrorKind::InvalidFooter
    );
    let deep = format!("{{\"kid\":{}1{}}}", "[".repeat(100), "]".repeat(100));
    assert_eq!(
        f.refuse(&f.craft_footer(deep.as_bytes())),
        VerifyErrorKind::InvalidFooter
    );
    let deep_2000 = format!("{{\"kid\":{}1{}}}", "[".repeat(2000), "]".repeat(2000));
    assert_eq!(
        f.refuse(&f.craft_footer(deep_2000.as_bytes())),
        VerifyErrorKind::InvalidFooter
    );
    let many: Vec<String> = (0..20).map(|i| format!("\"k{i}\":0")).collect();
    let many = format!("{{{}}}", many.join(","));
    assert_eq!(
        f.refuse(&f.craft_footer(many.as_bytes())),
        VerifyErrorKind::InvalidFooter
    );
}

#[test]
fn b6_secret_key_material_in_the_footer_is_refused() {
    let f = fixture();
    for leaked in [
        f.key.to_paserk().to_string(),
        "k4.local.cHFyc3R1dnd4eXp7fH1-f4CBgoOEhYaHiImKi4yNjo8".to_owned(),
    ] {
        let footer = format!("{{\"kid\":\"{leaked}\"}}");
        assert_eq!(
            f.refuse(&f.craft_footer(footer.as_bytes())),
            VerifyErrorKind::InvalidFooter
        );
    }
}

#[test]
fn b7_implicit_assertion_binds_environment_and_type() {
    let f = fixture();
    // Minted for staging with the very same key: refused in production.
    let staging = f.issuer("staging");
    let req = TokenRequest::new("ci", AUD, "projects:read".parse().unwrap());
    let token = staging.issue(&req).unwrap().token().as_str().to_owned();
    assert_eq!(f.refuse(&token), VerifyErrorKind::BadSignature);
    // Signed with no implicit assertion at all.
    let bare = paseto::sign(&f.key, valid_claims().as_bytes(), &f.footer(), b"");
    assert_eq!(f.refuse(&bare), VerifyErrorKind::BadSignature);
    // Signed with another token type's binding.
    let refresh = paseto::sign(
        &f.key,
        valid_claims().as_bytes(),
        &f.footer(),
        br#"{"env":"production","typ":"refresh"}"#,
    );
    assert_eq!(f.refuse(&refresh), VerifyErrorKind::BadSignature);
}

#[test]
fn b8_payload_must_be_a_unique_member_json_object() {
    let f = fixture();
    let dup_aud = valid_claims().replacen('{', "{\"aud\":\"evil\",", 1);
    let dup_scope = valid_claims().replacen('{', "{\"scope\":\"admin:*\",", 1);
    for payload in [
        "",
        "[]",
        "\"claims\"",
        "null",
        &dup_aud,
        &dup_scope,
        &format!("\u{feff}{}", valid_claims()),
        &format!("{} ", valid_claims()),
        &format!("{}{{}}", valid_claims()),
        "{\"iss\":\"\u{0}\"}",
    ] {
        assert_eq!(
            f.refuse(&f.craft(payload)),
            VerifyErrorKind::InvalidClaims,
            "{payload:?}"
        );
    }
    let invalid_utf8 = paseto::sign(
        &f.key,
        b"{\"iss\":\"\xff\"}",
        &f.footer(),
        &paseto::implicit_assertion(&env("production"), TokenType::Access),
    );
    assert_eq!(f.refuse(&invalid_utf8), VerifyErrorKind::InvalidClaims);
}

#[test]
fn b9_time_claims_must_be_strict_rfc3339_strings() {
    let f = fixture();
    for (field, value) in [
        ("exp", "1900000600"),
        ("exp", "1900000600.0"),
        ("exp", "\"1900000600\""),
        ("exp", "\"2030-03-17t17:56:40Z\""),
        ("exp", "\"2030-03-17T17:56:40z\""),
        ("iat", "\"2030-03-17 17:46:40Z\""),
        ("nbf", "null"),
    ] {
        let t = f.craft(&claims_with(field, Some(value)));
        assert_eq!(
            f.refuse(&t),
            VerifyErrorKind::InvalidClaims,
            "{field}={value}"
        );
    }
}

// ---- C. Ed25519 --------------------------------------------------------------------------------

#[test]
fn c2_small_order_public_keys_are_refused_at_import() {
    let small_order = [
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    ];
    for hex in small_order {
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let kind = PublicKey::from_bytes(&bytes).unwrap_err().kind();
        assert!(
            matches!(kind, KeyErrorKind::WeakKey | KeyErrorKind::InvalidPoint),
            "{hex}: {kind:?}"
        );
    }
    let zero = "k4.public.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(
        PublicKey::from_paserk(zero).unwrap_err().kind(),
        KeyErrorKind::WeakKey
    );
}

#[test]
fn c4_malleated_signature_is_refused() {
    // S + L verifies under lax Ed25519 implementations; verify_strict refuses S >= L.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let f = fixture();
    let token = f.mint();
    let (head, footer) = token.rsplit_once('.').unwrap();
    let body = head.strip_prefix("v4.public.").unwrap();
    let mut bytes = decode_b64url(body);
    let n = bytes.len();
    let s = &mut bytes[n - 32..];
    let mut carry = 0u16;
    for (i, byte) in s.iter_mut().enumerate() {
        let sum = u16::from(*byte) + u16::from(L[i]) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    if carry == 0 {
        let t = format!("v4.public.{}.{footer}", encode_b64url(&bytes));
        assert_eq!(f.refuse(&t), VerifyErrorKind::BadSignature);
    }
}

#[test]
fn c5_secret_key_with_a_foreign_public_half_is_refused() {
    let a = SigningKey::generate().unwrap();
    let b = SigningKey::generate().unwrap();
    let mut bytes = decode_b64url(a.to_paserk().strip_prefix("k4.secret.").unwrap());
    bytes[32..].copy_from_slice(b.public_key().as_bytes());
    assert_eq!(
        SigningKey::from_keypair_bytes(&bytes).unwrap_err().kind(),
        KeyErrorKind::Mismatch
    );
    let paserk = format!("k4.secret.{}", encode_b64url(&bytes));
    assert_eq!(
        SigningKey::from_paserk(&paserk).unwrap_err().kind(),
        KeyErrorKind::Mismatch
    );
}

// ---- D. Claims and time ------------------------------------------------------------------------

#[test]
fn d1_expired_and_missing_exp_are_refused() {
    let f = fixture();
    let token = f.mint(); // 15 minutes
    f.clock.advance(Duration::from_secs(15 * 60 + 59));
    assert!(f.verifier.verify(&token).is_ok(), "inside the 60 s leeway");
    f.clock.advance(Duration::from_secs(1));
    let e = f.verifier.verify(&token).unwrap_err();
    assert_eq!(e.kind(), VerifyErrorKind::Expired);
    assert_eq!(
        e.to_string(),
        "token expired 60 s ago (leeway 60 s); ask the issuer for a new token"
    );
    let f = fixture();
    assert_eq!(
        f.refuse(&f.craft(&claims_with("exp", None))),
        VerifyErrorKind::InvalidClaims
    );
}

#[test]
fn d2_future_nbf_iat_and_long_lifetimes_are_refused() {
    let f = fixture();
    let t = f.craft(&claims_with("nbf", Some("\"2030-03-17T17:48:00Z\"")));
    assert_eq!(f.refuse(&t), VerifyErrorKind::NotYetValid);
    let t = f.craft(&claims_with("iat", Some("\"2030-03-17T17:48:00Z\"")));
    assert_eq!(f.refuse(&t), VerifyErrorKind::NotYetValid);
    let t = f.craft(&claims_with("exp", Some("\"2030-03-17T19:46:41Z\"")));
    assert_eq!(f.refuse(&t), VerifyErrorKind::LifetimeTooLong);
    let t = f.craft(&claims_with("exp", Some("\"2030-03-17T17:46:40Z\"")));
    assert_eq!(f.refuse(&t), VerifyErrorKind::InvalidClaims, "exp == iat");
    // Leeway is capped.
    let e = Verifier::new(
        KeySet::new(),
        VerifierConfig::new(ISS, AUD, env("production")).leeway(Duration::from_secs(121)),
    );
    assert!(e.is_err());
    // A token inside the leeway of nbf is accepted.
    let t = f.craft(&claims_with("nbf", Some("\"2030-03-17T17:47:30Z\"")));
    assert!(f.verifier.verify(&t).is_ok());
}

#[test]
fn d3_odd_times_are_refused_deterministically() {
    let f = fixture();
    for value in [
        "\"0000-01-01T00:00:00Z\"",
        "\"10000-01-01T00:00:00Z\"",
        "\"2030-03-17T23:59:60Z\"",
        "\"2030-03-17T17:56:40+99:00\"",
        "\"2030-03-17T17:56:40.5Z\"",
        "\"9223372036854775807\"",
        "9223372036854775808",
        "-1",
        "1e400",
    ] {
        let t = f.craft(&claims_with("exp", Some(value)));
        assert_eq!(f.refuse(&t), VerifyErrorKind::InvalidClaims, "exp={value}");
    }
}

#[test]
fn d4_audience_and_issuer_must_match_exactly() {
    let f = fixture();
    let t = f.craft(&claims_with("aud", Some("\"https://other.example\"")));
    assert_eq!(f.refuse(&t), VerifyErrorKind::WrongAudience);
    let t = f.craft(&claims_with("aud", Some(&format!("[\"{AUD}\"]"))));
    assert_eq!(
        f.refuse(&t),
        VerifyErrorKind::InvalidClaims,
        "aud arrays are not used by PASETO"
    );
    let t = f.craft(&claims_with("aud", None));
    assert_eq!(f.refuse(&t), VerifyErrorKind::InvalidClaims);
    let t = f.craft(&claims_with("iss", Some("\"https://auth.example.evil\"")));
    assert_eq!(f.refuse(&t), VerifyErrorKind::WrongIssuer);
    let t = f.craft(&claims_with("iss", Some("\"HTTPS://AUTH.EXAMPLE\"")));
    assert_eq!(f.refuse(&t), VerifyErrorKind::WrongIssuer);
}

#[test]
fn d5_tokens_from_another_environment_are_refused() {
    let f = fixture();
    // The usual case: the binding differs, so the signature fails (see b7).
    let staging = f.issuer("staging");
    let req = TokenRequest::new("ci", AUD, "projects:read".parse().unwrap());
    assert_eq!(
        f.refuse(staging.issue(&req).unwrap().token().as_str()),
        VerifyErrorKind::BadSignature
    );
    // A token whose binding says production but whose claim says staging.
    let t = f.craft(&claims_with("env", Some("\"staging\"")));
    assert_eq!(f.refuse(&t), VerifyErrorKind::WrongEnvironment);
}

#[test]
fn d6_subject_and_token_id_must_be_present_non_empty_strings() {
    let f = fixture();
    for field in ["sub", "jti"] {
        for value in [
            None,
            Some("\"\""),
            Some("42"),
            Some("null"),
            Some("[\"a\"]"),
        ] {
            let t = f.craft(&claims_with(field, value));
            assert_eq!(
                f.refuse(&t),
                VerifyErrorKind::InvalidClaims,
                "{field}={value:?}"
            );
        }
    }
    let t = f.craft(&claims_with("scope", Some("\"\"")));
    assert_eq!(f.refuse(&t), VerifyErrorKind::InvalidClaims, "empty scope");
    let t = f.craft(&claims_with(
        "scope",
        Some("\"projects:read projects:read\""),
    ));
    assert_eq!(
        f.refuse(&t),
        VerifyErrorKind::InvalidClaims,
        "duplicate scope"
    );
    let t = f.craft(&claims_with("scope", Some("\"projects\u{FF1A}read\"")));
    assert_eq!(
        f.refuse(&t),
        VerifyErrorKind::InvalidClaims,
        "confusable scope"
    );
}

// ---- E. Resource exhaustion --------------------------------------------------------------------

#[test]
fn e1_oversized_tokens_are_refused_before_decoding() {
    let f = fixture();
    let dots = format!("v4.public.{}", ".".repeat(1 << 20));
    let e = f.verifier.verify(&dots).unwrap_err();
    assert_eq!(e.kind(), VerifyErrorKind::Oversized);
    assert!(e.to_string().len() < 200);
    let long = format!("v4.public.{}", "A".repeat(MAX_TOKEN_LEN));
    assert_eq!(f.refuse(&long), VerifyErrorKind::Oversized);
    let padded = claims_with("x", Some(&format!("\"{}\"", "a".repeat(4000))));
    let padded = padded.replacen('{', &format!("{{\"y\":\"{}\",", "b".repeat(4000)), 1);
    assert_eq!(f.refuse(&f.craft(&padded)), VerifyErrorKind::Oversized);
}

#[test]
fn e2_deep_nesting_is_capped() {
    let f = fixture();
    let deep = claims_with(
        "x",
        Some(&format!("{}1{}", "[".repeat(2000), "]".repeat(2000))),
    );
    let e = f.verifier.verify(&f.craft(&deep)).unwrap_err();
    assert_eq!(e.kind(), VerifyErrorKind::InvalidClaims);
    assert!(e.to_string().contains("nesting"), "{e}");
    // Sixteen levels are allowed, and unknown claims are kept but never trusted.
    let ok = claims_with("x", Some(&format!("{}1{}", "[".repeat(15), "]".repeat(15))));
    let grant = f.verifier.verify(&f.craft(&ok)).unwrap();
    assert!(grant.claims().other().contains_key("x"));
}

#[test]
fn e3_members_strings_and_numbers_are_capped() {
    let f = fixture();
    let mut many = valid_claims();
    for i in 0..100 {
        many = many.replacen('{', &format!("{{\"k{i}\":0,"), 1);
    }
    assert_eq!(f.refuse(&f.craft(&many)), VerifyErrorKind::InvalidClaims);
    let long = claims_with("x", Some(&format!("\"{}\"", "a".repeat(5000))));
    assert_eq!(f.refuse(&f.craft(&long)), VerifyErrorKind::InvalidClaims);
    let huge = claims_with("x", Some("1e400"));
    assert_eq!(f.refuse(&f.craft(&huge)), VerifyErrorKind::InvalidClaims);
    // A long run of escapes stays within the caps and is handled without trouble.
    let escapes = claims_with("x", Some(&format!("\"{}\"", "\\u0041".repeat(900))));
    assert!(f.verifier.verify(&f.craft(&escapes)).is_ok());
}

/// A revocation check and an inventory that count every call: the stand-ins for a store.
#[derive(Debug, Default)]
struct Spy {
    revocation_checks: AtomicUsize,
    inventory_calls: AtomicUsize,
}

impl Spy {
    fn calls(&self) -> (usize, usize) {
        (
            self.revocation_checks.load(Ordering::SeqCst),
            self.inventory_calls.load(Ordering::SeqCst),
        )
    }
}

impl RevocationCheck for Spy {
    fn status_of(&self, _: &TokenFacts<'_>) -> RevocationStatus {
        self.revocation_checks.fetch_add(1, Ordering::SeqCst);
        RevocationStatus::NotRevoked
    }
}

impl Inventory for Spy {
    fn record_issued(&self, _: TokenRecord) -> Result<(), BackendError> {
        self.inventory_calls.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn touch(&self, _: &scopekey::TokenId, _: time::OffsetDateTime) {
        self.inventory_calls.fetch_add(1, Ordering::SeqCst);
    }
    fn get(&self, _: &scopekey::TokenId) -> Result<Option<TokenRecord>, BackendError> {
        self.inventory_calls.fetch_add(1, Ordering::SeqCst);
        Ok(None)
    }
    fn query(&self, _: &InventoryQuery) -> Result<Vec<TokenRecord>, BackendError> {
        self.inventory_calls.fetch_add(1, Ordering::SeqCst);
        Ok(Vec::new())
    }
}

#[test]
fn e4_unknown_key_ids_are_refused_from_the_key_map_alone() {
    let f = fixture();
    // A key ring of 64 keys, the trusted one among them.
    let mut keys = KeySet::single(f.key.public_key().clone());
    for _ in 0..63 {
        keys.insert(SigningKey::generate().unwrap().public_key().clone());
    }
    let ring = Arc::new(KeyRing::new(keys));
    let spy = Arc::new(Spy::default());
    let audit = Arc::new(MemorySink::new());
    let cache = GrantCache::default();
    let verifier = Verifier::with_key_ring(
        ring.clone(),
        VerifierConfig::new(ISS, AUD, env("production")).clock(f.clock.clone()),
    )
    .unwrap()
    .with_revocations(spy.clone())
    .with_inventory(spy.clone())
    .with_audit(audit.clone());
    // The spies are wired: a token of a known key consults the revocation check and the
    // inventory once each.
    verifier.verify_cached(&f.mint(), &cache).unwrap();
    assert_eq!(spy.calls(), (1, 1));
    let version = ring.version();
    for i in 0..2000 {
        let footer = format!("{{\"kid\":\"{}\"}}", KeyIdLike(i));
        let mut token = f.craft_footer(footer.as_bytes());
        if i % 2 == 1 {
            // A signature that cannot verify: the lookup refuses before any signature check.
            let at = "v4.public.".len() + 20;
            let swap = if &token[at..=at] == "A" { "B" } else { "A" };
            token.replace_range(at..=at, swap);
        }
        let e = verifier.verify_cached(&token, &cache).unwrap_err();
        assert_eq!(e.kind(), VerifyErrorKind::UnknownKey, "{e}");
    }
    // No revocation check, no inventory call, no key reload, nothing cached: the only work
    // done for an unknown kid is the key map's lookup and the refusal's audit event.
    assert_eq!(spy.calls(), (1, 1));
    assert_eq!(ring.version(), version);
    assert_eq!(cache.len(), 1);
    let events = audit.events();
    assert_eq!(events.len(), 2001);
    for e in &events[1..] {
        assert!(
            matches!(
                e.kind,
                AuditKind::Refused {
                    reason: "unknown_key"
                }
            ),
            "{e:?}"
        );
        // Nothing from the unverified claims reaches the trail.
        assert!(
            e.jti.is_none() && e.sub.is_none() && e.kid.is_none(),
            "{e:?}"
        );
    }
}

/// A syntactically valid `k4.pid` that no key has.
struct KeyIdLike(u32);

impl std::fmt::Display for KeyIdLike {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "k4.pid.{:A>44}",
            format!("{:08}", self.0).replace(|c: char| !c.is_ascii_alphanumeric(), "A")
        )
    }
}

// ---- Issuing -----------------------------------------------------------------------------------

#[test]
fn issuing_refuses_empty_broad_and_over_long_requests() {
    let f = fixture();
    let issuer = f.issuer("production");
    let e = issuer
        .issue(&TokenRequest::new("ci", AUD, "".parse().unwrap()))
        .unwrap_err();
    assert_eq!(e.kind(), IssueErrorKind::NoScope);
    for broad in ["projects:*", "projects/*/comments:read", "*:read"] {
        let req = TokenRequest::new("ci", AUD, broad.parse().unwrap());
        let e = issuer.issue(&req).unwrap_err();
        assert_eq!(e.kind(), IssueErrorKind::BroadScope);
        assert!(e.to_string().contains(broad), "{e}");
        let req = req.allow_broad();
        if req.scopes().is_read_only() {
            assert!(issuer.issue(&req).is_ok());
        } else {
            // A `*` action includes write: broad and an escalation, each opted into.
            let e = issuer.issue(&req).unwrap_err();
            assert_eq!(e.kind(), IssueErrorKind::NeedsEscalation);
            assert!(issuer.issue(&req.escalate()).is_ok());
        }
    }
    let req = TokenRequest::new("ci", AUD, "projects:read".parse().unwrap());
    let e = issuer
        .issue(&req.clone().ttl(Duration::from_secs(3601)))
        .unwrap_err();
    assert_eq!(e.kind(), IssueErrorKind::Lifetime);
    let e = issuer.issue(&req.clone().ttl(Duration::ZERO)).unwrap_err();
    assert_eq!(e.kind(), IssueErrorKind::Lifetime);
    let e = issuer
        .issue(&TokenRequest::new("", AUD, "a:read".parse().unwrap()))
        .unwrap_err();
    assert_eq!(e.kind(), IssueErrorKind::InvalidClaim);
    let e = issuer.issue(&req.clone().owner("a\nb")).unwrap_err();
    assert_eq!(e.kind(), IssueErrorKind::InvalidClaim);
    // Defaults: 15 minutes.
    let minted = issuer.issue(&req).unwrap();
    let c = minted.claims();
    assert_eq!((c.expires_at() - c.issued_at()).whole_seconds(), 15 * 60);
    assert!(!format!("{:?}", minted.token()).contains(&minted.token().as_str()[12..]));
}

fn decode_b64url(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        acc = acc << 6 | A.iter().position(|&a| a == c).unwrap() as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn encode_b64url(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    let (mut acc, mut bits) = (0u32, 0);
    for &b in bytes {
        acc = acc << 8 | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(A[(acc >> bits & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(A[(acc << (6 - bits) & 63) as usize] as char);
    }
    out
}
