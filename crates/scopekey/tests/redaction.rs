//! No bearer token in any `Debug` output: every public type that holds a token (or the parts
//! that make one up) is formatted with `{:?}` and `{:#?}`, and no run of the token's text
//! appears in either.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scopekey::cache::{GrantCache, GrantCacheConfig};
use scopekey::refresh::{MemoryFamilies, Refresher};
use scopekey::revocation::RevocationList;
use scopekey::{Issuer, KeySet, SigningKey, TokenFormat, TokenRequest, Verifier, VerifierConfig};
use std::fmt::Debug;
use std::sync::Arc;

/// Shortest run of a token's characters that counts as leaking it: longer than the redacted
/// prefix `BearerToken` shows (12 characters), far shorter than any signature.
const WINDOW: usize = 16;

/// The parts of a token that make it a credential: a PASETO's body (claims and signature), a
/// JWT's payload and signature. The header and the footer name only the format and the key id,
/// which are public and shared by every token of a key.
fn secret_parts(token: &str) -> Vec<&str> {
    let parts: Vec<&str> = token.split('.').collect();
    match parts.as_slice() {
        ["v4", "public", body, ..] => vec![body],
        [_header, payload, signature] => vec![payload, signature],
        _ => panic!("not a token: {token}"),
    }
}

/// Panics if `value`'s `{:?}` or `{:#?}` output contains any `WINDOW`-character run of the
/// secret parts of `token`.
fn assert_redacted(what: &str, value: &impl Debug, token: &str) {
    assert!(token.len() > 100, "{what}: the fixture is not a real token");
    for shown in [format!("{value:?}"), format!("{value:#?}")] {
        for part in secret_parts(token) {
            assert!(part.len() > 40, "{what}: the fixture is not a real token");
            for start in 0..=part.len() - WINDOW {
                let run = &part[start..start + WINDOW];
                assert!(
                    !shown.contains(run),
                    "{what}: Debug output shows `{run}` of the token in:\n{shown}"
                );
            }
        }
    }
}

fn setup(format: TokenFormat) -> (Issuer, Verifier, String) {
    let key = SigningKey::generate().unwrap();
    let keys = KeySet::single(key.public_key().clone());
    let issuer = Issuer::new(key, "https://auth.example", "production".parse().unwrap())
        .unwrap()
        .with_format(format);
    let config = VerifierConfig::new(
        "https://auth.example",
        "https://api.example",
        "production".parse().unwrap(),
    );
    #[cfg(feature = "jwt")]
    let config = config.accept_jwt(true);
    let verifier = Verifier::new(keys, config)
        .unwrap()
        .with_grant_cache(GrantCache::new(GrantCacheConfig::default()));
    let minted = issuer
        .issue(
            &TokenRequest::new(
                "comment-importer",
                "https://api.example",
                "projects:read projects/42/comments:write".parse().unwrap(),
            )
            .escalate(),
        )
        .unwrap();
    let token = minted.token().as_str().to_owned();
    assert_redacted("Minted", &minted, &token);
    assert_redacted("BearerToken", minted.token(), &token);
    (issuer, verifier, token)
}

fn check_format(format: TokenFormat) {
    let (issuer, verifier, token) = setup(format);
    let grant = verifier.verify(&token).unwrap();
    // The token is now in the verifier's grant cache.
    assert_eq!(verifier.grant_cache().map(GrantCache::len), Some(1));
    assert_redacted("Grant", &grant, &token);
    assert_redacted("Verifier (with a cached grant)", &verifier, &token);
    assert_redacted("GrantCache", verifier.grant_cache().unwrap(), &token);

    let shared = GrantCache::default();
    verifier.verify_cached(&token, &shared).unwrap();
    assert_eq!(shared.len(), 1);
    assert_redacted("GrantCache (shared)", &shared, &token);

    let unverified = scopekey::danger::decode_unverified(&token).unwrap();
    assert_eq!(unverified.claim_str("sub"), Some("comment-importer"));
    assert_redacted("danger::UnverifiedToken", &unverified, &token);

    // Refusals name the class of problem, not the token.
    let at = token.len() - 10;
    let swap = if &token[at..=at] == "A" { "B" } else { "A" };
    let tampered = format!("{}{swap}{}", &token[..at], &token[at + 1..]);
    let error = verifier.verify(&tampered).unwrap_err();
    assert_redacted("VerifyError", &error, &tampered);
    assert_redacted("VerifyError (Display)", &error.to_string(), &tampered);
    drop(issuer);
}

#[test]
fn no_paseto_token_in_debug_output() {
    check_format(TokenFormat::Paseto);
}

#[cfg(feature = "jwt")]
#[test]
fn no_jwt_in_debug_output() {
    check_format(TokenFormat::Jwt);
}

#[test]
fn no_refresh_or_access_token_in_a_refresher_or_pair() {
    let key = SigningKey::generate().unwrap();
    let keys = KeySet::single(key.public_key().clone());
    let issuer = Issuer::new(key, "https://auth.example", "production".parse().unwrap()).unwrap();
    let refresher = Refresher::new(
        issuer,
        "https://api.example",
        keys,
        Arc::new(RevocationList::new()),
        Arc::new(MemoryFamilies::new()),
    )
    .unwrap();
    let pair = refresher
        .start(&TokenRequest::new(
            "ci",
            "https://api.example",
            "projects:read".parse().unwrap(),
        ))
        .unwrap();
    let next = refresher
        .exchange(pair.refresh().token().as_str(), None)
        .unwrap();
    for token in [pair.access(), pair.refresh(), next.access(), next.refresh()] {
        let token = token.token().as_str();
        assert_redacted("TokenPair", &pair, token);
        assert_redacted("TokenPair (next)", &next, token);
        assert_redacted("Refresher", &refresher, token);
    }
}

#[test]
fn the_check_itself_catches_a_leak() {
    // A value that prints the token must be caught, or the tests above prove nothing.
    let (_, _, token) = setup(TokenFormat::Paseto);
    let leaky = format!("prefix {token} suffix");
    let caught = std::panic::catch_unwind(|| assert_redacted("leaky", &leaky, &token));
    assert!(caught.is_err());
    let partial = token[40..60].to_owned();
    assert!(token.starts_with("v4.public.") && !token[10..60].contains('.'));
    let caught = std::panic::catch_unwind(|| assert_redacted("partial", &partial, &token));
    assert!(caught.is_err());
}

/// Secret key material leaves the library only in types that clear their memory on drop. (The
/// bytes themselves cannot be inspected after a drop without `unsafe`, which this workspace
/// forbids; this holds the types, and the signing buffer and cached token copies clear
/// themselves in their `Drop` impls.)
#[test]
fn secret_material_is_handed_out_in_zeroizing_types() {
    fn zeroizing<T: zeroize::Zeroize>(_: &zeroize::Zeroizing<T>) {}
    let key = SigningKey::generate().unwrap();
    let paserk = key.to_paserk();
    zeroizing::<String>(&paserk);
    let bytes = scopekey::danger::paserk::decode_secret(&paserk).unwrap();
    zeroizing::<[u8; 64]>(&bytes);
    assert_eq!(
        SigningKey::from_paserk(&paserk).unwrap().key_id(),
        key.key_id()
    );
    // And `Debug` of the key shows its id only.
    let shown = format!("{key:?}");
    assert!(
        !shown.contains(paserk.trim_start_matches("k4.secret.")),
        "{shown}"
    );
}
