//! External test vectors, read in place from `../shared/vectors/`:
//! PASETO v4, PASERK k4, Wycheproof Ed25519 and ed25519-speccheck.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use scopekey::danger::{paserk, paseto};
use scopekey::{KeyErrorKind, KeyId, PublicKey, SigningKey, VerifyErrorKind};
use serde_json::Value;
use support::{hex, load, vectors_dir};

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

#[test]
fn paseto_v4_public_vectors() {
    let Some(dir) = vectors_dir("paseto_v4_public_vectors") else {
        return;
    };
    let doc = load(&dir, "paseto-v4.json");
    let mut checked = 0;
    for t in doc["tests"].as_array().unwrap() {
        let name = s(t, "name");
        let token = s(t, "token");
        let footer = s(t, "footer").as_bytes();
        let implicit = s(t, "implicit-assertion").as_bytes();
        if t["expect-fail"].as_bool().unwrap() {
            // 4-F-*: every one is refused; 4-F-2 is a v4.public token with a local key, which
            // the type system cannot even express (a symmetric key is not a PublicKey), so it is
            // checked against the vector file's public key.
            let pk = PublicKey::from_bytes(&hex(
                "1eb9dbbbbc047c03fd70604e0071f0987e16b28b757225c11f00415d0e20b1a2",
            ))
            .unwrap();
            let e = paseto::verify(&pk, token, footer, implicit).unwrap_err();
            let expected = match name {
                "4-F-2" => VerifyErrorKind::BadSignature,
                _ => VerifyErrorKind::UnsupportedFormat,
            };
            assert_eq!(e.kind(), expected, "{name}: {e}");
            checked += 1;
            continue;
        }
        if !token.starts_with("v4.public.") {
            continue; // 4-E-*: v4.local, out of scope
        }
        let pk = PublicKey::from_bytes(&hex(s(t, "public-key"))).unwrap();
        let payload = paseto::verify(&pk, token, footer, implicit).unwrap();
        assert_eq!(payload, s(t, "payload").as_bytes(), "{name}");

        // Re-signing reproduces the token byte for byte (Ed25519 is deterministic).
        let sk = SigningKey::from_keypair_bytes(&hex(s(t, "secret-key"))).unwrap();
        let seed: [u8; 32] = hex(s(t, "secret-key-seed")).try_into().unwrap();
        assert_eq!(SigningKey::from_seed(&seed).unwrap().public_key(), &pk);
        assert_eq!(
            paseto::sign(&sk, &payload, footer, implicit),
            token,
            "{name}"
        );

        // The extra cases the vectors README lists.
        if !implicit.is_empty() {
            let e = paseto::verify(&pk, token, footer, b"").unwrap_err();
            assert_eq!(
                e.kind(),
                VerifyErrorKind::BadSignature,
                "{name} with an empty assertion"
            );
        }
        if footer.is_empty() {
            let e = paseto::verify(&pk, token, b"{\"kid\":\"x\"}", implicit).unwrap_err();
            assert_eq!(
                e.kind(),
                VerifyErrorKind::InvalidFooter,
                "{name}: footer expected, none"
            );
            let e = paseto::verify(&pk, &format!("{token}."), footer, implicit).unwrap_err();
            assert_eq!(e.kind(), VerifyErrorKind::Malformed, "{name}: trailing dot");
        } else {
            let e = paseto::verify(&pk, token, b"", implicit).unwrap_err();
            assert_eq!(
                e.kind(),
                VerifyErrorKind::InvalidFooter,
                "{name}: footer not expected"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 8, "4-S-1..3 and 4-F-1..5");
}

#[test]
fn paseto_v4_public_refuses_non_canonical_base64_of_valid_vectors() {
    let Some(dir) = vectors_dir("paseto_v4_public_refuses_non_canonical_base64") else {
        return;
    };
    let doc = load(&dir, "paseto-v4.json");
    let t = doc["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "4-S-1")
        .unwrap();
    let pk = PublicKey::from_bytes(&hex(s(t, "public-key"))).unwrap();
    let token = s(t, "token");
    let body = token.strip_prefix("v4.public.").unwrap();
    // The body is 131 base64 characters (98 bytes): the last character carries 4 zero bits.
    let last = body.chars().last().unwrap();
    let mut variants = vec![
        format!("{token}="),
        format!("{token}=="),
        token.replacen('-', "+", 1),
        token.replacen('_', "/", 1),
        format!("{token}\n"),
        format!(" {token}"),
        format!("{}{}", &token[..20], &token[20..].replacen('M', " M", 1)),
    ];
    // Non-zero trailing bits: the same bytes, another last character.
    let idx = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        .find(last)
        .unwrap();
    for bump in 1..4 {
        let alt = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            .chars()
            .nth((idx & !3) + bump)
            .unwrap();
        variants.push(format!("{}{alt}", &token[..token.len() - 1]));
    }
    for v in variants {
        let e = paseto::verify(&pk, &v, b"", b"").unwrap_err();
        assert!(
            matches!(
                e.kind(),
                VerifyErrorKind::Malformed | VerifyErrorKind::UnsupportedFormat
            ),
            "{v:?}: {e}"
        );
    }
}

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[test]
fn paserk_k4_public_vectors() {
    let Some(dir) = vectors_dir("paserk_k4_public_vectors") else {
        return;
    };
    let doc = load(&dir, "paserk-k4.public.json");
    for t in doc["tests"].as_array().unwrap() {
        let name = s(t, "name");
        let key = hex(s(t, "key"));
        if t["expect-fail"].as_bool().unwrap() {
            assert_eq!(
                PublicKey::from_bytes(&key).unwrap_err().kind(),
                KeyErrorKind::WrongLength,
                "{name}"
            );
            let text = format!("k4.public.{}", b64url(&key));
            assert_eq!(
                paserk::decode_public(&text).unwrap_err().kind(),
                KeyErrorKind::WrongLength,
                "{name}"
            );
            continue;
        }
        let paserk = s(t, "paserk");
        if key.iter().all(|&b| b == 0) {
            // k4.public-1 is the all-zero key: it serialises, but it is of small order and a
            // strict verifier refuses to use it (docs/threats.md C2).
            assert_eq!(
                PublicKey::from_paserk(paserk).unwrap_err().kind(),
                KeyErrorKind::WeakKey,
                "{name}"
            );
            assert_eq!(
                PublicKey::from_bytes(&key).unwrap_err().kind(),
                KeyErrorKind::WeakKey
            );
            continue;
        }
        // The format round-trips every vector; k4.public-2 and -3 are not curve points, so a
        // key built from them is refused at import, never used.
        let arr: [u8; 32] = key.as_slice().try_into().unwrap();
        assert_eq!(paserk::encode_public(&arr), paserk, "{name}");
        assert_eq!(paserk::decode_public(paserk).unwrap(), arr, "{name}");
        match PublicKey::from_paserk(paserk) {
            Ok(pk) => assert_eq!(pk.to_paserk(), paserk, "{name}"),
            Err(e) => assert_eq!(e.kind(), KeyErrorKind::InvalidPoint, "{name}"),
        }
    }
}

#[test]
fn paserk_k4_secret_vectors() {
    let Some(dir) = vectors_dir("paserk_k4_secret_vectors") else {
        return;
    };
    let doc = load(&dir, "paserk-k4.secret.json");
    for t in doc["tests"].as_array().unwrap() {
        let name = s(t, "name");
        let key = hex(s(t, "key"));
        if t["expect-fail"].as_bool().unwrap() {
            assert_eq!(
                SigningKey::from_keypair_bytes(&key).unwrap_err().kind(),
                KeyErrorKind::WrongLength,
                "{name}"
            );
            let text = format!("k4.secret.{}", b64url(&key));
            assert_eq!(
                SigningKey::from_paserk(&text).unwrap_err().kind(),
                KeyErrorKind::WrongLength,
                "{name}"
            );
            continue;
        }
        let paserk = s(t, "paserk");
        let sk = SigningKey::from_paserk(paserk).unwrap();
        assert_eq!(sk.to_paserk().as_str(), paserk, "{name}");
        assert_eq!(
            sk.public_key().as_bytes().as_slice(),
            hex(s(t, "public-key")).as_slice()
        );
        let seed: [u8; 32] = hex(s(t, "secret-key-seed")).try_into().unwrap();
        assert_eq!(
            SigningKey::from_seed(&seed).unwrap().to_paserk().as_str(),
            paserk
        );
    }
}

#[test]
fn paserk_k4_pid_vectors() {
    let Some(dir) = vectors_dir("paserk_k4_pid_vectors") else {
        return;
    };
    let doc = load(&dir, "paserk-k4.pid.json");
    for t in doc["tests"].as_array().unwrap() {
        let name = s(t, "name");
        let key = hex(s(t, "key"));
        if t["expect-fail"].as_bool().unwrap() {
            assert_eq!(
                KeyId::of_public_key_bytes(&key).unwrap_err().kind(),
                KeyErrorKind::WrongLength,
                "{name}"
            );
            continue;
        }
        let pid = KeyId::of_public_key_bytes(&key).unwrap();
        assert_eq!(pid.as_str(), s(t, "paserk"), "{name}");
        assert_eq!(s(t, "paserk").parse::<KeyId>().unwrap(), pid);
        if let Ok(pk) = PublicKey::from_bytes(&key) {
            assert_eq!(pk.key_id(), &pid, "{name}");
        }
    }
}

/// docs/threats.md C1: all 151 Wycheproof Ed25519 cases through the primitive the verifier uses
/// (`PublicKey::from_bytes` then `verify_strict`).
#[test]
fn wycheproof_ed25519() {
    let Some(dir) = vectors_dir("wycheproof_ed25519") else {
        return;
    };
    let doc = load(&dir, "wycheproof-ed25519_test.json");
    let (mut valid, mut invalid) = (0, 0);
    for g in doc["testGroups"].as_array().unwrap() {
        let pk = hex(s(&g["publicKey"], "pk"));
        for t in g["tests"].as_array().unwrap() {
            let accepted = PublicKey::from_bytes(&pk)
                .map(|k| {
                    k.verify_signature(&hex(s(t, "msg")), &hex(s(t, "sig")))
                        .is_ok()
                })
                .unwrap_or(false);
            match s(t, "result") {
                "valid" => {
                    assert!(accepted, "tcId {} should verify", t["tcId"]);
                    valid += 1;
                }
                "invalid" => {
                    assert!(
                        !accepted,
                        "tcId {} ({}) must be refused",
                        t["tcId"], t["comment"]
                    );
                    invalid += 1;
                }
                other => panic!("unexpected result {other}"),
            }
        }
    }
    assert_eq!((valid, invalid), (88, 63));
}

/// docs/threats.md C2/C3: ed25519-speccheck. Strict verification (small-order A or R refused,
/// canonical encodings, S < L) accepts only case 3.
#[test]
fn ed25519_speccheck() {
    let Some(dir) = vectors_dir("ed25519_speccheck") else {
        return;
    };
    let doc = load(&dir, "speccheck-cases.json");
    let pattern: String = doc
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let ok = PublicKey::from_bytes(&hex(s(c, "pub_key")))
                .map(|k| {
                    k.verify_signature(&hex(s(c, "message")), &hex(s(c, "signature")))
                        .is_ok()
                })
                .unwrap_or(false);
            if ok { 'V' } else { 'X' }
        })
        .collect();
    assert_eq!(pattern, "XXXVXXXXXXXX");
}
