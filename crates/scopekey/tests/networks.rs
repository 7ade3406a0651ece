//! Network caveats in the core: a token limited to client networks verifies only for a client
//! inside them, on the cached path too, and never when the client is unknown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scopekey::cache::GrantCache;
use scopekey::{
    IssueErrorKind, Issuer, KeySet, MAX_NETWORKS, Network, SigningKey, TokenRequest, Verifier,
    VerifierConfig, VerifyErrorKind,
};

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";

fn setup() -> (Issuer, Verifier) {
    let key = SigningKey::generate().unwrap();
    let keys = KeySet::single(key.public_key().clone());
    let issuer = Issuer::new(key, ISS, "production".parse().unwrap()).unwrap();
    let verifier = Verifier::new(
        keys,
        VerifierConfig::new(ISS, AUD, "production".parse().unwrap()),
    )
    .unwrap();
    (issuer, verifier)
}

#[test]
fn a_limited_token_verifies_only_from_its_networks() {
    let (issuer, verifier) = setup();
    let minted = issuer
        .issue(
            &TokenRequest::new("ci", AUD, "projects:read".parse().unwrap())
                .allow_networks(["192.0.2.0/24".parse::<Network>().unwrap()]),
        )
        .unwrap();
    let token = minted.token().as_str();
    assert_eq!(
        minted.claims().other()["net"],
        serde_json::json!(["192.0.2.0/24"])
    );
    let cache = GrantCache::default();
    let inside = Some("192.0.2.10".parse().unwrap());
    let outside = Some("198.51.100.10".parse().unwrap());
    assert!(verifier.verify_from(token, Some(&cache), inside).is_ok());
    // The cached entry is checked against the client again.
    let e = verifier
        .verify_from(token, Some(&cache), outside)
        .unwrap_err();
    assert_eq!(e.kind(), VerifyErrorKind::NetworkNotAllowed);
    assert!(e.to_string().contains("198.51.100.10"), "{e}");
    assert_eq!(
        verifier.verify(token).unwrap_err().kind(),
        VerifyErrorKind::NetworkNotAllowed
    );
    assert!(verifier.verify_from(token, Some(&cache), inside).is_ok());
    // An unlimited token needs no client.
    let plain = issuer
        .issue(&TokenRequest::new(
            "ci",
            AUD,
            "projects:read".parse().unwrap(),
        ))
        .unwrap();
    assert!(verifier.verify(plain.token().as_str()).is_ok());
    assert!(plain.claims().other().get("net").is_none());
}

#[test]
fn too_many_networks_are_refused_at_issue() {
    let (issuer, _) = setup();
    let nets: Vec<Network> = (0..=MAX_NETWORKS)
        .map(|i| format!("10.{i}.0.0/16").parse().unwrap())
        .collect();
    let e = issuer
        .issue(&TokenRequest::new("ci", AUD, "projects:read".parse().unwrap()).allow_networks(nets))
        .unwrap_err();
    assert_eq!(e.kind(), IssueErrorKind::InvalidClaim);
}

/// A refresh family of network-limited tokens could never be exchanged (the exchange knows no
/// client), so it is refused when it would start, and nothing is minted.
#[test]
fn a_network_limited_request_cannot_start_a_refresh_family() {
    use scopekey::refresh::{MemoryFamilies, RefreshErrorKind, Refresher};
    use scopekey::revocation::RevocationList;
    use std::sync::Arc;
    let key = SigningKey::generate().unwrap();
    let keys = KeySet::single(key.public_key().clone());
    let issuer = Issuer::new(key, ISS, "production".parse().unwrap()).unwrap();
    let refresher = Refresher::new(
        issuer,
        AUD,
        keys,
        Arc::new(RevocationList::new()),
        Arc::new(MemoryFamilies::new()),
    )
    .unwrap();
    let e = refresher
        .start(
            &TokenRequest::new("ci", AUD, "projects:read".parse().unwrap())
                .allow_networks(["192.0.2.0/24".parse::<Network>().unwrap()]),
        )
        .unwrap_err();
    assert_eq!(e.kind(), RefreshErrorKind::Issue, "{e}");
}

#[test]
fn introspection_sees_a_limited_token_as_live_and_everything_else_as_verify_does() {
    let (issuer, verifier) = setup();
    let minted = issuer
        .issue(
            &TokenRequest::new("ci", AUD, "projects:read".parse().unwrap())
                .allow_networks(["192.0.2.0/24".parse::<Network>().unwrap()]),
        )
        .unwrap();
    let token = minted.token().as_str();
    assert_eq!(
        verifier.verify(token).unwrap_err().kind(),
        VerifyErrorKind::NetworkNotAllowed
    );
    let grant = verifier.verify_ignoring_network(token).unwrap();
    assert_eq!(grant.claims().token_id(), minted.claims().token_id());
    // The rest of the checks still apply: a tampered token, another audience.
    let mut tampered = token.to_owned();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert!(verifier.verify_ignoring_network(&tampered).is_err());
    let other = issuer
        .issue(&TokenRequest::new(
            "ci",
            "https://other.example",
            "projects:read".parse().unwrap(),
        ))
        .unwrap();
    assert_eq!(
        verifier
            .verify_ignoring_network(other.token().as_str())
            .unwrap_err()
            .kind(),
        VerifyErrorKind::WrongAudience
    );
}
