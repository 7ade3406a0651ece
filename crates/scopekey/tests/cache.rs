//! The verified-grant cache: a hit skips the signature check and nothing else. Each test
//! caches a token first (and checks that it was cached), then changes the world and checks
//! that the cache does not let the token through.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scopekey::audit::{AuditKind, MemorySink};
use scopekey::cache::{GrantCache, GrantCacheConfig};
use scopekey::revocation::{RevocationList, RevocationTarget, Revoker};
use scopekey::{
    Action, Issuer, KeySet, ManualClock, PublicKey, Resource, SigningKey, TokenRequest, Verifier,
    VerifierConfig, VerifyErrorKind,
};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";
const NOW: i64 = 1_900_000_000;

struct World {
    clock: ManualClock,
    key: PublicKey,
    issuer: Issuer,
    revocations: Arc<RevocationList>,
    audit: Arc<MemorySink>,
    verifier: Verifier,
}

fn config(env: &str, clock: &ManualClock) -> VerifierConfig {
    VerifierConfig::new(ISS, AUD, env.parse().unwrap()).clock(clock.clone())
}

fn world() -> World {
    let clock = ManualClock::at_unix(NOW);
    let signing = SigningKey::generate().unwrap();
    let key = signing.public_key().clone();
    let issuer = Issuer::new(signing, ISS, "production".parse().unwrap())
        .unwrap()
        .with_clock(clock.clone());
    let revocations = Arc::new(RevocationList::new().with_clock(clock.clone()));
    let audit = Arc::new(MemorySink::new());
    let verifier = Verifier::new(KeySet::single(key.clone()), config("production", &clock))
        .unwrap()
        .with_revocations(revocations.clone())
        .with_audit(audit.clone())
        .with_grant_cache(GrantCache::default());
    World {
        clock,
        key,
        issuer,
        revocations,
        audit,
        verifier,
    }
}

fn mint(issuer: &Issuer, subject: &str) -> String {
    issuer
        .issue(
            &TokenRequest::new(
                subject,
                AUD,
                "projects:read comments:write".parse().unwrap(),
            )
            .escalate(),
        )
        .unwrap()
        .token()
        .as_str()
        .to_owned()
}

fn cache(v: &Verifier) -> &GrantCache {
    v.grant_cache().unwrap()
}

/// Verifies twice and checks the second one was a hit.
fn cached(w: &World, token: &str) {
    let before = cache(&w.verifier).stats();
    w.verifier.verify(token).unwrap();
    w.verifier.verify(token).unwrap();
    let after = cache(&w.verifier).stats();
    assert_eq!(after.hits, before.hits + 1, "second verification is a hit");
}

fn kind(v: &Verifier, token: &str) -> VerifyErrorKind {
    v.verify(token).unwrap_err().kind()
}

#[test]
fn a_hit_gives_the_same_grant_and_is_audited() {
    let w = world();
    let token = mint(&w.issuer, "ci");
    let cold = w.verifier.verify(&token).unwrap();
    assert_eq!(cache(&w.verifier).len(), 1);
    let hot = w.verifier.verify(&token).unwrap();
    assert_eq!(cache(&w.verifier).stats().hits, 1);
    assert_eq!(cache(&w.verifier).stats().misses, 1);
    assert_eq!(hot.claims().token_id(), cold.claims().token_id());
    assert_eq!(hot.key_id(), w.key.key_id());
    let projects = Resource::from_segments(["projects", "7"]).unwrap();
    hot.authorize(&projects, &Action::read()).unwrap();
    assert!(hot.authorize(&projects, &Action::write()).is_err());
    let verified = w
        .audit
        .events()
        .into_iter()
        .filter(|e| matches!(e.kind, AuditKind::Verified))
        .count();
    assert_eq!(verified, 2, "a hit is a verification decision too");
}

#[test]
fn a_revoked_token_is_refused_on_a_hit() {
    let w = world();
    let token = mint(&w.issuer, "ci");
    let other = mint(&w.issuer, "ci-other");
    let by_key = mint(&w.issuer, "ci-key");
    for t in [&token, &other, &by_key] {
        cached(&w, t);
    }
    let claims = w.verifier.verify(&token).unwrap().claims().clone();
    w.revocations
        .revoke(
            RevocationTarget::Token {
                token_id: claims.token_id().clone(),
                expires_at: Some(claims.expires_at()),
            },
            "ops",
            "leaked",
        )
        .unwrap();
    assert_eq!(kind(&w.verifier, &token), VerifyErrorKind::Revoked);
    assert_eq!(
        kind(&w.verifier, &token),
        VerifyErrorKind::Revoked,
        "and again"
    );
    w.revocations
        .revoke(
            RevocationTarget::Subject {
                subject: "ci-other".into(),
                issued_before: None,
            },
            "ops",
            "consumer compromised",
        )
        .unwrap();
    assert_eq!(kind(&w.verifier, &other), VerifyErrorKind::Revoked);
    let still = mint(&w.issuer, "ci-key-2");
    cached(&w, &still);
    w.revocations
        .revoke(
            RevocationTarget::Key(w.key.key_id().clone()),
            "ops",
            "key leaked",
        )
        .unwrap();
    assert_eq!(kind(&w.verifier, &by_key), VerifyErrorKind::Revoked);
    assert_eq!(kind(&w.verifier, &still), VerifyErrorKind::Revoked);
}

#[test]
fn a_stale_revocation_list_fails_closed_on_a_hit() {
    let clock = ManualClock::at_unix(NOW);
    let signing = SigningKey::generate().unwrap();
    let key = signing.public_key().clone();
    let issuer = Issuer::new(signing, ISS, "production".parse().unwrap())
        .unwrap()
        .with_clock(clock.clone());
    let replica =
        Arc::new(RevocationList::replica(Duration::from_secs(10)).with_clock(clock.clone()));
    replica.mark_current(OffsetDateTime::from_unix_timestamp(NOW).unwrap());
    let verifier = Verifier::new(KeySet::single(key.clone()), config("production", &clock))
        .unwrap()
        .with_revocations(replica.clone())
        .with_grant_cache(GrantCache::default());
    let token = mint(&issuer, "ci");
    verifier.verify(&token).unwrap();
    verifier.verify(&token).unwrap();
    assert_eq!(cache(&verifier).stats().hits, 1);
    clock.advance(Duration::from_secs(11));
    assert_eq!(kind(&verifier, &token), VerifyErrorKind::RevocationStale);
}

/// A key ring past its freshness bound (a remote key set not fetched for too long) refuses
/// every token, cached or not, as `KeysStale`, and verifies again once the bound moves.
#[test]
fn a_stale_key_ring_fails_closed_on_a_hit_and_recovers() {
    let clock = ManualClock::at_unix(NOW);
    let signing = SigningKey::generate().unwrap();
    let key = signing.public_key().clone();
    let issuer = Issuer::new(signing, ISS, "production".parse().unwrap())
        .unwrap()
        .with_clock(clock.clone());
    let verifier = Verifier::new(KeySet::single(key), config("production", &clock))
        .unwrap()
        .with_grant_cache(GrantCache::default());
    let ring = verifier.key_ring().clone();
    assert_eq!(ring.fresh_until(), None, "no bound by default");
    let until = OffsetDateTime::from_unix_timestamp(NOW + 10).unwrap();
    ring.set_fresh_until(Some(until));
    assert_eq!(ring.fresh_until(), Some(until));
    let token = mint(&issuer, "ci");
    verifier.verify(&token).unwrap();
    verifier.verify(&token).unwrap();
    assert_eq!(cache(&verifier).stats().hits, 1);
    clock.advance(Duration::from_secs(9));
    verifier.verify(&token).unwrap();
    clock.advance(Duration::from_secs(1));
    assert_eq!(kind(&verifier, &token), VerifyErrorKind::KeysStale);
    let other = mint(&issuer, "other");
    assert_eq!(kind(&verifier, &other), VerifyErrorKind::KeysStale);
    ring.set_fresh_until(Some(until + time::Duration::minutes(1)));
    verifier.verify(&token).unwrap();
    ring.set_fresh_until(None);
    verifier.verify(&other).unwrap();
}

#[test]
fn an_expired_token_is_refused_even_though_it_was_cached() {
    let w = world();
    let token = w
        .issuer
        .issue(
            &TokenRequest::new("ci", AUD, "projects:read".parse().unwrap())
                .ttl(Duration::from_secs(300)),
        )
        .unwrap()
        .token()
        .as_str()
        .to_owned();
    cached(&w, &token);
    // Within the leeway (60 s) after expiry: still served.
    w.clock.set_unix(NOW + 300 + 59);
    w.verifier.verify(&token).unwrap();
    w.clock.set_unix(NOW + 300 + 60);
    assert_eq!(kind(&w.verifier, &token), VerifyErrorKind::Expired);
    assert_eq!(cache(&w.verifier).len(), 0, "the entry is gone");
}

#[test]
fn a_retired_or_removed_key_is_refused_even_though_the_token_was_cached() {
    let w = world();
    let token = mint(&w.issuer, "ci");
    cached(&w, &token);
    // Retired now, through the ring (what a store replica does).
    w.verifier.key_ring().update(|keys| {
        keys.retire(
            w.key.key_id(),
            OffsetDateTime::from_unix_timestamp(NOW).unwrap(),
        );
    });
    assert_eq!(kind(&w.verifier, &token), VerifyErrorKind::UnknownKey);

    // Retirement scheduled in the future: served until then, refused from then on, without
    // any change to the ring in between.
    let w = world();
    w.verifier.key_ring().update(|keys| {
        keys.retire(
            w.key.key_id(),
            OffsetDateTime::from_unix_timestamp(NOW + 120).unwrap(),
        );
    });
    let token = mint(&w.issuer, "ci");
    cached(&w, &token);
    w.clock.set_unix(NOW + 119);
    w.verifier.verify(&token).unwrap();
    w.clock.set_unix(NOW + 120);
    assert_eq!(kind(&w.verifier, &token), VerifyErrorKind::UnknownKey);

    // Removed.
    let w = world();
    let token = mint(&w.issuer, "ci");
    cached(&w, &token);
    w.verifier.key_ring().update(|keys| {
        keys.remove(w.key.key_id());
    });
    assert_eq!(kind(&w.verifier, &token), VerifyErrorKind::UnknownKey);
}

#[test]
fn a_shared_cache_never_serves_one_verifiers_grant_to_another() {
    let clock = ManualClock::at_unix(NOW);
    let signing = SigningKey::generate().unwrap();
    let keys = KeySet::single(signing.public_key().clone());
    let staging_issuer = Issuer::new(signing, ISS, "staging".parse().unwrap())
        .unwrap()
        .with_clock(clock.clone());
    let staging = Verifier::new(keys.clone(), config("staging", &clock)).unwrap();
    let production = Verifier::new(keys.clone(), config("production", &clock)).unwrap();
    let other_audience = Verifier::new(
        keys,
        VerifierConfig::new(ISS, "https://other.example", "staging".parse().unwrap())
            .clock(clock.clone()),
    )
    .unwrap();
    let shared = GrantCache::default();
    let token = mint(&staging_issuer, "ci");
    staging.verify_cached(&token, &shared).unwrap();
    staging.verify_cached(&token, &shared).unwrap();
    assert_eq!(shared.stats().hits, 1);
    // Same key, same cache, another environment: refused, and not as a cache hit.
    let e = production.verify_cached(&token, &shared).unwrap_err();
    assert_eq!(e.kind(), VerifyErrorKind::BadSignature, "{e}");
    let e = other_audience.verify_cached(&token, &shared).unwrap_err();
    assert_eq!(e.kind(), VerifyErrorKind::WrongAudience, "{e}");
    assert_eq!(shared.stats().hits, 1);
}

#[test]
fn a_token_that_copies_a_cached_signature_is_checked_in_full() {
    let w = world();
    let token = mint(&w.issuer, "ci");
    cached(&w, &token);
    // Same signature and footer (so the same cache slot), one payload byte changed.
    let body_start = "v4.public.".len();
    let mut forged = token.clone().into_bytes();
    forged[body_start + 5] = if forged[body_start + 5] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let forged = String::from_utf8(forged).unwrap();
    let hits = cache(&w.verifier).stats().hits;
    assert_eq!(kind(&w.verifier, &forged), VerifyErrorKind::BadSignature);
    assert_eq!(cache(&w.verifier).stats().hits, hits);
    // The genuine token is still served.
    w.verifier.verify(&token).unwrap();
    assert_eq!(cache(&w.verifier).stats().hits, hits + 1);
}

#[test]
fn the_cache_is_bounded_in_entries_and_bytes() {
    let w = world();
    let verifier = Verifier::new(
        KeySet::single(w.key.clone()),
        config("production", &w.clock),
    )
    .unwrap()
    .with_grant_cache(GrantCache::new(GrantCacheConfig::default().max_entries(32)));
    for i in 0..200 {
        verifier.verify(&mint(&w.issuer, &format!("c{i}"))).unwrap();
    }
    assert!(cache(&verifier).len() <= 32, "{}", cache(&verifier).len());
    assert!(cache(&verifier).len() >= 16);

    let small = Verifier::new(
        KeySet::single(w.key.clone()),
        config("production", &w.clock),
    )
    .unwrap()
    .with_grant_cache(GrantCache::new(
        GrantCacheConfig::default().max_bytes(256 * 1024),
    ));
    for i in 0..200 {
        small.verify(&mint(&w.issuer, &format!("c{i}"))).unwrap();
    }
    let c = cache(&small);
    assert!(c.charged_bytes() <= 256 * 1024, "{}", c.charged_bytes());
    assert!(c.len() < 200 && !c.is_empty());
    c.clear();
    assert!(c.is_empty());
    assert_eq!(c.charged_bytes(), 0);
}

#[test]
fn concurrent_hits_all_succeed_and_see_a_revocation() {
    let w = Arc::new(world());
    let tokens: Arc<Vec<String>> =
        Arc::new((0..8).map(|i| mint(&w.issuer, &format!("c{i}"))).collect());
    for t in tokens.iter() {
        w.verifier.verify(t).unwrap();
    }
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (w, tokens) = (w.clone(), tokens.clone());
            std::thread::spawn(move || {
                for _ in 0..200 {
                    for t in tokens.iter() {
                        w.verifier.verify(t).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(cache(&w.verifier).stats().hits, 4 * 200 * 8);
    w.revocations
        .revoke(
            RevocationTarget::IssuedBefore(OffsetDateTime::from_unix_timestamp(NOW + 1).unwrap()),
            "ops",
            "mass revocation",
        )
        .unwrap();
    for t in tokens.iter() {
        assert_eq!(kind(&w.verifier, t), VerifyErrorKind::Revoked);
    }
}

/// The list's generation grows with every change, and a hit made after a revocation returned
/// is refused however the revocation and concurrent hits interleave: 200 rounds of a thread
/// hitting a cached token while another revokes it; once the revocation has returned (and
/// the hitting thread has seen that), the next hit is refused.
#[test]
fn a_hit_after_a_revocation_returned_is_refused_under_concurrency() {
    use scopekey::revocation::RevocationCheck as _;
    use std::sync::atomic::{AtomicBool, Ordering};
    let w = world();
    let before = w.revocations.generation().unwrap();
    for round in 0..200 {
        let token = mint(&w.issuer, &format!("race-{round}"));
        cached(&w, &token);
        let claims = w.verifier.verify(&token).unwrap().claims().clone();
        let revoked = AtomicBool::new(false);
        std::thread::scope(|s| {
            let hitter = s.spawn(|| {
                loop {
                    let done = revoked.load(Ordering::SeqCst);
                    let result = w.verifier.verify(&token);
                    if done {
                        return result.map(|_| ()).map_err(|e| e.kind());
                    }
                }
            });
            w.revocations
                .revoke(
                    RevocationTarget::Token {
                        token_id: claims.token_id().clone(),
                        expires_at: Some(claims.expires_at()),
                    },
                    "ops",
                    "race",
                )
                .unwrap();
            revoked.store(true, Ordering::SeqCst);
            assert_eq!(
                hitter.join().unwrap(),
                Err(VerifyErrorKind::Revoked),
                "round {round}"
            );
        });
    }
    assert!(w.revocations.generation().unwrap() >= before + 200);
    let g = w.revocations.generation().unwrap();
    w.revocations.purge_expired();
    assert!(
        w.revocations.generation().unwrap() > g,
        "a purge changes it too"
    );
}
