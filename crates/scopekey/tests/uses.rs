//! Usage limits in the core: a token minted for N uses verifies exactly N times, on the cached
//! path too, is refused without a counter or when its counter fails, and its `uses` claim is
//! signed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use scopekey::audit::{AuditKind, MemorySink};
use scopekey::cache::GrantCache;
use scopekey::usage::{Consumption, MAX_USES, MemoryUsageCounter, UsageCounter};
use scopekey::{
    BackendError, IssueErrorKind, Issuer, KeySet, SigningKey, TokenId, TokenRequest, Verifier,
    VerifierConfig, VerifyErrorKind,
};
use std::sync::Arc;

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

fn request() -> TokenRequest {
    TokenRequest::new("ci", AUD, "projects:read".parse().unwrap())
}

#[test]
fn a_token_for_n_uses_verifies_exactly_n_times_cached_or_not() {
    let (issuer, verifier) = setup();
    let counter = Arc::new(MemoryUsageCounter::new());
    let verifier = verifier.with_usage_counter(counter.clone());
    let minted = issuer.issue(&request().max_uses(3)).unwrap();
    assert_eq!(minted.claims().max_uses(), Some(3));
    assert_eq!(minted.claims().other()["uses"], serde_json::json!(3));
    let token = minted.token().as_str();
    let cache = GrantCache::default();
    // The first use fills the cache; the next two are cache hits, which consume a use each.
    for _ in 0..3 {
        verifier.verify_cached(token, &cache).unwrap();
    }
    assert_eq!(cache.len(), 1);
    for _ in 0..2 {
        let e = verifier.verify_cached(token, &cache).unwrap_err();
        assert_eq!(e.kind(), VerifyErrorKind::UsesExhausted);
        assert!(e.to_string().contains("3 times"), "{e}");
        assert_eq!(
            verifier.verify(token).unwrap_err().kind(),
            VerifyErrorKind::UsesExhausted
        );
    }
    // Another token has its own count; an unlimited one is never counted.
    let once = issuer.issue(&request().single_use()).unwrap();
    assert_eq!(once.claims().max_uses(), Some(1));
    verifier.verify(once.token().as_str()).unwrap();
    assert_eq!(
        verifier.verify(once.token().as_str()).unwrap_err().kind(),
        VerifyErrorKind::UsesExhausted
    );
    let plain = issuer.issue(&request()).unwrap();
    assert_eq!(plain.claims().max_uses(), None);
    for _ in 0..5 {
        verifier.verify(plain.token().as_str()).unwrap();
    }
    assert_eq!(counter.len(), 2);
}

#[test]
fn many_threads_on_one_counter_get_exactly_n_uses() {
    let (issuer, verifier) = setup();
    let verifier = Arc::new(verifier.with_usage_counter(Arc::new(MemoryUsageCounter::new())));
    let minted = issuer.issue(&request().max_uses(5)).unwrap();
    let token: Arc<str> = minted.token().as_str().into();
    let cache = Arc::new(GrantCache::default());
    let ok: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (verifier, token, cache) = (verifier.clone(), token.clone(), cache.clone());
                s.spawn(move || {
                    (0..4)
                        .filter(|_| verifier.verify_cached(&token, &cache).is_ok())
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(ok, 5);
}

#[test]
fn without_a_counter_a_limited_token_is_refused() {
    let (issuer, verifier) = setup();
    let minted = issuer.issue(&request().max_uses(10)).unwrap();
    let e = verifier.verify(minted.token().as_str()).unwrap_err();
    assert_eq!(e.kind(), VerifyErrorKind::UsageUnavailable);
    assert!(e.to_string().contains("with_usage_counter"), "{e}");
    // Unlimited tokens need no counter.
    assert!(
        verifier
            .verify(issuer.issue(&request()).unwrap().token().as_str())
            .is_ok()
    );
}

/// A counter that cannot answer.
#[derive(Debug)]
struct Broken;

impl UsageCounter for Broken {
    fn consume(
        &self,
        _: &TokenId,
        _: u32,
        _: time::OffsetDateTime,
    ) -> Result<Consumption, BackendError> {
        Err(BackendError::new("the counter's store is down", None))
    }
}

#[test]
fn a_failing_counter_refuses_and_the_audit_trail_names_the_caveat() {
    let (issuer, verifier) = setup();
    let sink = Arc::new(MemorySink::new());
    let verifier = verifier
        .with_usage_counter(Arc::new(Broken))
        .with_audit(sink.clone());
    let minted = issuer.issue(&request().single_use()).unwrap();
    let e = verifier.verify(minted.token().as_str()).unwrap_err();
    assert_eq!(e.kind(), VerifyErrorKind::UsageUnavailable);
    assert!(e.to_string().contains("store is down"), "{e}");

    let (issuer, verifier) = setup();
    let verifier = verifier
        .with_usage_counter(Arc::new(MemoryUsageCounter::new()))
        .with_audit(sink.clone());
    let minted = issuer.issue(&request().single_use()).unwrap();
    verifier.verify(minted.token().as_str()).unwrap();
    verifier.verify(minted.token().as_str()).unwrap_err();
    let reasons: Vec<&str> = sink
        .events()
        .iter()
        .filter_map(|e| match &e.kind {
            AuditKind::Refused { reason } => Some(*reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, ["usage_unavailable", "uses_exhausted"]);
}

/// A use is counted only once every other check has passed: a revoked token uses nothing.
#[test]
fn a_refused_token_uses_nothing() {
    use scopekey::revocation::{RevocationList, RevocationTarget, Revoker};
    let (issuer, verifier) = setup();
    let counter = Arc::new(MemoryUsageCounter::new());
    let list = Arc::new(RevocationList::new());
    let verifier = verifier
        .with_usage_counter(counter.clone())
        .with_revocations(list.clone());
    let minted = issuer.issue(&request().single_use()).unwrap();
    list.revoke(
        RevocationTarget::Token {
            token_id: minted.claims().token_id().clone(),
            expires_at: None,
        },
        "alice",
        "test",
    )
    .unwrap();
    assert_eq!(
        verifier.verify(minted.token().as_str()).unwrap_err().kind(),
        VerifyErrorKind::Revoked
    );
    assert!(counter.is_empty());
}

#[test]
fn limits_outside_the_range_are_refused_at_issue() {
    let (issuer, _) = setup();
    for bad in [0, MAX_USES + 1, u32::MAX] {
        let e = issuer.issue(&request().max_uses(bad)).unwrap_err();
        assert_eq!(e.kind(), IssueErrorKind::InvalidClaim, "{bad}");
    }
    assert!(issuer.issue(&request().max_uses(MAX_USES)).is_ok());
}

/// The limit is signed: raising it in the payload breaks the signature.
#[test]
fn a_tampered_uses_claim_fails_the_signature() {
    let (issuer, verifier) = setup();
    let verifier = verifier.with_usage_counter(Arc::new(MemoryUsageCounter::new()));
    let minted = issuer.issue(&request().single_use()).unwrap();
    let token = minted.token().as_str();
    let parts: Vec<&str> = token.split('.').collect();
    let body = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    let (payload, signature) = body.split_at(body.len() - 64);
    let text = String::from_utf8(payload.to_vec()).unwrap();
    assert!(text.contains("\"uses\":1"), "{text}");
    for forged in [
        text.replace("\"uses\":1", "\"uses\":9"),
        text.replace(",\"uses\":1", ""),
    ] {
        let mut body = forged.into_bytes();
        body.extend_from_slice(signature);
        let tampered = format!(
            "{}.{}.{}.{}",
            parts[0],
            parts[1],
            URL_SAFE_NO_PAD.encode(&body),
            parts[3]
        );
        assert_eq!(
            verifier.verify(&tampered).unwrap_err().kind(),
            VerifyErrorKind::BadSignature
        );
    }
}

/// A use-limited request cannot start a refresh family (each exchange would mint a fresh count).
#[test]
fn a_use_limited_request_cannot_start_a_refresh_family() {
    use scopekey::refresh::{MemoryFamilies, RefreshErrorKind, Refresher};
    use scopekey::revocation::RevocationList;
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
    let e = refresher.start(&request().max_uses(2)).unwrap_err();
    assert_eq!(e.kind(), RefreshErrorKind::Issue, "{e}");
}

/// Introspection is not a use: it neither counts nor reads the count.
#[test]
fn introspection_uses_nothing() {
    let (issuer, verifier) = setup();
    let counter = Arc::new(MemoryUsageCounter::new());
    let verifier = verifier.with_usage_counter(counter.clone());
    let minted = issuer.issue(&request().single_use()).unwrap();
    verifier
        .verify_ignoring_network(minted.token().as_str())
        .unwrap();
    assert!(counter.is_empty());
    verifier.verify(minted.token().as_str()).unwrap();
}

/// A JWT carries `uses` too, counted the same way.
#[cfg(feature = "jwt")]
#[test]
fn a_use_limited_jwt_is_counted_too() {
    use scopekey::TokenFormat;
    let key = SigningKey::generate().unwrap();
    let keys = KeySet::single(key.public_key().clone());
    let issuer = Issuer::new(key, ISS, "production".parse().unwrap())
        .unwrap()
        .with_format(TokenFormat::Jwt);
    let verifier = Verifier::new(
        keys,
        VerifierConfig::new(ISS, AUD, "production".parse().unwrap()).accept_jwt(true),
    )
    .unwrap()
    .with_usage_counter(Arc::new(MemoryUsageCounter::new()));
    let minted = issuer.issue(&request().max_uses(2)).unwrap();
    let token = minted.token().as_str();
    assert!(token.starts_with("eyJ"));
    verifier.verify(token).unwrap();
    let grant = verifier.verify(token).unwrap();
    assert_eq!(grant.claims().max_uses(), Some(2));
    assert_eq!(
        verifier.verify(token).unwrap_err().kind(),
        VerifyErrorKind::UsesExhausted
    );
}
