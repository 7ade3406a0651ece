//! Minting and verifying: property tests, key rotation, authorization.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use scopekey::{
    Action, Issuer, KeySet, ManualClock, Resource, ScopeSet, SigningKey, TokenRequest, Verifier,
    VerifierConfig, VerifyErrorKind,
};
use std::sync::OnceLock;
use std::time::Duration;
use time::OffsetDateTime;

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";
const NOW: i64 = 1_900_000_000;

fn config(clock: &ManualClock) -> VerifierConfig {
    VerifierConfig::new(ISS, AUD, "production".parse().unwrap()).clock(clock.clone())
}

struct Setup {
    issuer: Issuer,
    verifier: Verifier,
    token: String,
}

/// One key, issuer, verifier and token shared by the property tests (key generation is not
/// what they test).
fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let key = SigningKey::generate().unwrap();
        let clock = ManualClock::at_unix(NOW);
        let verifier =
            Verifier::new(KeySet::single(key.public_key().clone()), config(&clock)).unwrap();
        let issuer = Issuer::new(key, ISS, "production".parse().unwrap())
            .unwrap()
            .with_clock(clock);
        let req = TokenRequest::new("ci", AUD, "projects:read comments:write".parse().unwrap())
            .owner("team-a")
            .purpose("tests")
            .escalate();
        let token = issuer.issue(&req).unwrap().token().as_str().to_owned();
        Setup {
            issuer,
            verifier,
            token,
        }
    })
}

fn scope_set() -> impl Strategy<Value = ScopeSet> {
    let scope = (
        prop::collection::vec("[A-Za-z0-9_-][A-Za-z0-9_.-]{0,8}", 1..4),
        prop::sample::select(vec!["read", "write", "delete", "admin", "publish"]),
    )
        .prop_map(|(segs, a)| format!("{}:{a}", segs.join("/")));
    prop::collection::btree_set(scope, 1..10)
        .prop_map(|s| s.into_iter().collect::<Vec<_>>().join(" ").parse().unwrap())
}

fn text() -> impl Strategy<Value = String> {
    // Any printable text, including non-ASCII: free-text claims are not part of the grammar.
    "[^\\p{Cc}]{1,40}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn mint_then_verify_round_trips_the_claims(
        subject in text(),
        scopes in scope_set(),
        ttl in 1u64..=3600,
        owner in prop::option::of(text()),
        purpose in prop::option::of(text()),
    ) {
        let s = setup();
        let mut req = TokenRequest::new(subject.clone(), AUD, scopes.clone())
            .ttl(Duration::from_secs(ttl))
            .escalate();
        if let Some(o) = &owner { req = req.owner(o.clone()); }
        if let Some(p) = &purpose { req = req.purpose(p.clone()); }
        let minted = s.issuer.issue(&req).unwrap();
        let grant = s.verifier.verify(minted.token().as_str()).unwrap();
        prop_assert_eq!(grant.claims(), minted.claims());
        prop_assert_eq!(grant.subject(), subject.as_str());
        prop_assert_eq!(grant.claims().scopes(), &scopes);
        prop_assert_eq!(grant.claims().owner(), owner.as_deref());
        prop_assert_eq!(grant.claims().purpose(), purpose.as_deref());
        prop_assert_eq!((grant.claims().expires_at() - grant.claims().issued_at()).whole_seconds(), ttl as i64);
        for scope in &scopes {
            prop_assert!(grant.authorize(scope.resource(), scope.action()).is_ok());
        }
    }

    #[test]
    fn flipping_any_bit_makes_verification_fail(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let s = setup();
        let mut bytes = s.token.clone().into_bytes();
        let i = pos.index(bytes.len());
        bytes[i] ^= 1 << bit;
        let tampered = String::from_utf8_lossy(&bytes);
        prop_assert!(s.verifier.verify(&tampered).is_err(), "bit {bit} of byte {i}");
    }

    #[test]
    fn replacing_any_byte_makes_verification_fail(pos in any::<prop::sample::Index>(), b in any::<u8>()) {
        let s = setup();
        let mut bytes = s.token.clone().into_bytes();
        let i = pos.index(bytes.len());
        prop_assume!(bytes[i] != b);
        bytes[i] = b;
        let tampered = String::from_utf8_lossy(&bytes);
        prop_assert!(s.verifier.verify(&tampered).is_err(), "byte {i} set to {b}");
    }

    #[test]
    fn the_decoder_never_panics_on_arbitrary_input(input in any::<String>()) {
        let _ = setup().verifier.verify(&input);
    }

    #[test]
    fn the_decoder_never_panics_on_token_shaped_input(
        body in "[A-Za-z0-9_=+/.-]{0,200}",
        footer in prop::option::of("[A-Za-z0-9_=+/.-]{0,80}"),
    ) {
        let t = match footer {
            Some(f) => format!("v4.public.{body}.{f}"),
            None => format!("v4.public.{body}"),
        };
        prop_assert!(setup().verifier.verify(&t).is_err());
    }

    #[test]
    fn truncating_a_token_makes_verification_fail(cut in 0usize..400) {
        let s = setup();
        let cut = cut.min(s.token.len() - 1);
        prop_assert!(s.verifier.verify(&s.token[..cut]).is_err());
    }
}

#[test]
fn every_single_bit_flip_is_refused() {
    // Exhaustive over the shared token, on top of the sampled property above.
    let s = setup();
    let bytes = s.token.as_bytes();
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.to_vec();
            b[i] ^= 1 << bit;
            let t = String::from_utf8_lossy(&b);
            assert!(s.verifier.verify(&t).is_err(), "bit {bit} of byte {i}");
        }
    }
}

#[test]
fn rotation_keeps_old_tokens_until_the_old_key_retires() {
    let clock = ManualClock::at_unix(NOW);
    let key_a = SigningKey::generate().unwrap();
    let key_b = SigningKey::generate().unwrap();
    let mut keys = KeySet::new();
    keys.insert(key_a.public_key().clone());
    let verifier = Verifier::new(keys, config(&clock)).unwrap();
    let req = TokenRequest::new("ci", AUD, "projects:read".parse().unwrap())
        .ttl(Duration::from_secs(3600));
    let issuer_a = Issuer::new(key_a, ISS, "production".parse().unwrap())
        .unwrap()
        .with_clock(clock.clone());
    let token_a = issuer_a.issue(&req).unwrap().token().clone();
    let a_id = issuer_a.key_id().clone();
    assert!(verifier.verify(token_a.as_str()).is_ok());

    // Step 1: publish B next to A. Nothing changes for A's tokens.
    verifier.key_ring().update(|k| {
        k.insert(key_b.public_key().clone());
    });
    assert!(verifier.verify(token_a.as_str()).is_ok());

    // Step 2: the issuer switches to B. Both keys' tokens verify.
    let issuer_b = Issuer::new(key_b, ISS, "production".parse().unwrap())
        .unwrap()
        .with_clock(clock.clone());
    let token_b = issuer_b.issue(&req).unwrap().token().clone();
    assert!(verifier.verify(token_a.as_str()).is_ok());
    assert!(verifier.verify(token_b.as_str()).is_ok());

    // Step 3: schedule A's retirement 30 minutes out; A still verifies until then.
    let retire_at = OffsetDateTime::from_unix_timestamp(NOW + 1800).unwrap();
    verifier
        .key_ring()
        .update(|k| assert!(k.retire(&a_id, retire_at)));
    clock.advance(Duration::from_secs(1799));
    assert!(verifier.verify(token_a.as_str()).is_ok());
    assert!(verifier.verify(token_b.as_str()).is_ok());

    // After the retirement A's tokens are refused as an unknown key, and B's still verify.
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        verifier.verify(token_a.as_str()).unwrap_err().kind(),
        VerifyErrorKind::UnknownKey
    );
    assert!(verifier.verify(token_b.as_str()).is_ok());

    // Removing A altogether gives the same answer.
    verifier.key_ring().update(|k| {
        k.remove(&a_id);
    });
    assert_eq!(
        verifier.verify(token_a.as_str()).unwrap_err().kind(),
        VerifyErrorKind::UnknownKey
    );
    assert!(verifier.verify(token_b.as_str()).is_ok());
}

#[test]
fn a_key_not_yet_valid_does_not_verify() {
    let clock = ManualClock::at_unix(NOW);
    let key = SigningKey::generate().unwrap();
    let mut keys = KeySet::new();
    let from = OffsetDateTime::from_unix_timestamp(NOW + 600).unwrap();
    keys.insert_with_window(key.public_key().clone(), Some(from), None);
    let verifier = Verifier::new(keys, config(&clock)).unwrap();
    let issuer = Issuer::new(key, ISS, "production".parse().unwrap())
        .unwrap()
        .with_clock(clock.clone());
    let token = issuer
        .issue(&TokenRequest::new("ci", AUD, "a:read".parse().unwrap()))
        .unwrap();
    assert_eq!(
        verifier.verify(token.token().as_str()).unwrap_err().kind(),
        VerifyErrorKind::UnknownKey
    );
}

#[test]
fn authorization_is_exactly_the_granted_scopes() {
    let s = setup(); // projects:read comments:write
    let grant = s.verifier.verify(&s.token).unwrap();
    let p42 = Resource::from_segments(["projects", "42"]).unwrap();
    assert!(grant.authorize(&p42, &Action::read()).is_ok());
    let denied = grant.authorize(&p42, &Action::write()).unwrap_err();
    assert_eq!(denied.required_scope().to_string(), "projects/42:write");
    assert_eq!(
        denied.to_string(),
        "token does not grant `projects/42:write`"
    );
    assert!(
        grant
            .authorize(
                &Resource::from_segments(["comments", "7"]).unwrap(),
                &Action::write()
            )
            .is_ok()
    );
    assert!(
        grant
            .authorize(
                &Resource::from_segments(["comments", "7"]).unwrap(),
                &Action::read()
            )
            .is_err()
    );
    assert!(
        grant
            .authorize(
                &Resource::from_segments(["users"]).unwrap(),
                &Action::read()
            )
            .is_err()
    );
    assert_eq!(grant.key_id(), s.issuer.key_id());
}
