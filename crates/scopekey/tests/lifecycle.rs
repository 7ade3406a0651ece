//! Revocation, refresh rotation, audit and inventory: the acceptance tests of incident
//! response, and docs/threats.md section G.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scopekey::audit::{AuditEvent, AuditKind, AuditSink, JsonLinesSink, MemorySink};
use scopekey::inventory::{Inventory, InventoryQuery, MemoryInventory, reachable_scopes};
use scopekey::refresh::{MemoryFamilies, RefreshErrorKind, Refresher};
use scopekey::revocation::{RevocationList, RevocationTarget, Revoker};
use scopekey::{
    Action, DenyReason, Issuer, KeySet, ManualClock, Resource, SigningKey, TokenRequest, Verifier,
    VerifierConfig, VerifyErrorKind,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use time::OffsetDateTime;

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";
const NOW: i64 = 1_900_000_000;

struct World {
    clock: ManualClock,
    first_key: zeroize::Zeroizing<String>,
    keys: KeySet,
    issuers: Vec<Issuer>,
    revocations: Arc<RevocationList>,
    audit: Arc<MemorySink>,
    inventory: Arc<MemoryInventory>,
    verifier: Verifier,
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

/// Two signing keys (both trusted), an in-memory revocation list, audit sink and inventory.
fn world() -> World {
    let clock = ManualClock::at_unix(NOW);
    let audit = Arc::new(MemorySink::new());
    let inventory = Arc::new(MemoryInventory::new());
    let revocations = Arc::new(
        RevocationList::new()
            .with_clock(clock.clone())
            .with_audit(audit.clone()),
    );
    let mut keys = KeySet::new();
    let mut issuers = Vec::new();
    let mut first_key = None;
    for _ in 0..2 {
        let key = SigningKey::generate().unwrap();
        first_key.get_or_insert_with(|| key.to_paserk());
        keys.insert(key.public_key().clone());
        issuers.push(
            Issuer::new(key, ISS, "production".parse().unwrap())
                .unwrap()
                .with_clock(clock.clone())
                .with_audit(audit.clone())
                .with_inventory(inventory.clone()),
        );
    }
    let verifier = Verifier::new(
        keys.clone(),
        VerifierConfig::new(ISS, AUD, "production".parse().unwrap()).clock(clock.clone()),
    )
    .unwrap()
    .with_revocations(revocations.clone())
    .with_audit(audit.clone())
    .with_inventory(inventory.clone());
    World {
        clock,
        first_key: first_key.unwrap(),
        keys,
        issuers,
        revocations,
        audit,
        inventory,
        verifier,
    }
}

struct Token {
    text: String,
    subject: String,
    jti: scopekey::TokenId,
    issued_at: OffsetDateTime,
}

impl World {
    fn mint(&self, issuer: usize, subject: &str) -> Token {
        let minted = self.issuers[issuer]
            .issue(
                &TokenRequest::new(subject, AUD, "projects:read".parse().unwrap())
                    .owner(format!("owner-of-{subject}")),
            )
            .unwrap();
        Token {
            text: minted.token().as_str().to_owned(),
            subject: subject.to_owned(),
            jti: minted.claims().token_id().clone(),
            issued_at: minted.claims().issued_at(),
        }
    }

    fn accepted(&self, t: &Token) -> bool {
        match self.verifier.verify(&t.text) {
            Ok(_) => true,
            Err(e) => {
                assert_eq!(e.kind(), VerifyErrorKind::Revoked, "{e}");
                false
            }
        }
    }
}

/// Mints tokens for many consumers, applies one revocation, and checks exactly the expected
/// tokens are refused (as revoked) while every other token still verifies.
fn blast_radius(
    target: impl Fn(&World, &[Token]) -> RevocationTarget,
    doomed: impl Fn(&Token, usize) -> bool,
) {
    let w = world();
    let tokens: Vec<Token> = (0..40)
        .map(|i| {
            if i == 20 {
                w.clock.advance(Duration::from_secs(120)); // a second generation of tokens
            }
            w.mint(i % 2, &format!("consumer-{}", i % 10))
        })
        .collect();
    assert!(tokens.iter().all(|t| w.accepted(t)));
    w.revocations
        .revoke(target(&w, &tokens), "alice@example.com", "incident 42")
        .unwrap();
    let mut refused = 0;
    for (i, t) in tokens.iter().enumerate() {
        let expect_refused = doomed(t, i);
        assert_eq!(!w.accepted(t), expect_refused, "token {i} of {}", t.subject);
        refused += usize::from(expect_refused);
    }
    assert!(refused > 0 && refused < tokens.len(), "{refused} refused");
    // The revocation itself is in the audit trail, with who and why.
    let revoked: Vec<_> = w
        .audit
        .events()
        .into_iter()
        .filter(|e| matches!(e.kind, AuditKind::Revoked { .. }))
        .collect();
    assert_eq!(revoked.len(), 1);
    let AuditKind::Revoked { by, reason, .. } = &revoked[0].kind else {
        unreachable!()
    };
    assert_eq!(
        (by.as_str(), reason.as_str()),
        ("alice@example.com", "incident 42")
    );
}

#[test]
fn revoke_one_token_by_jti() {
    blast_radius(
        |_, ts| RevocationTarget::Token {
            token_id: ts[7].jti.clone(),
            expires_at: None,
        },
        |_, i| i == 7,
    );
}

#[test]
fn revoke_one_consumer_and_only_that_consumer() {
    blast_radius(
        |_, _| RevocationTarget::Subject {
            subject: "consumer-3".into(),
            issued_before: None,
        },
        |t, _| t.subject == "consumer-3",
    );
}

#[test]
fn revoke_one_consumer_issued_before_an_instant() {
    blast_radius(
        |_, ts| RevocationTarget::Subject {
            subject: "consumer-3".into(),
            issued_before: Some(ts[20].issued_at),
        },
        |t, i| t.subject == "consumer-3" && i < 20,
    );
}

#[test]
fn revoke_everything_issued_before_an_instant() {
    blast_radius(
        |_, ts| RevocationTarget::IssuedBefore(ts[20].issued_at),
        |_, i| i < 20,
    );
}

#[test]
fn revoke_everything_signed_by_a_compromised_key() {
    blast_radius(
        |w, _| RevocationTarget::Key(w.issuers[1].key_id().clone()),
        |_, i| i % 2 == 1,
    );
}

#[test]
fn revoke_a_family_and_the_rest_survive() {
    let w = world();
    let refresher = refresher(&w);
    let a = refresher
        .start(&TokenRequest::new(
            "app-a",
            AUD,
            "projects:read".parse().unwrap(),
        ))
        .unwrap();
    let b = refresher
        .start(&TokenRequest::new(
            "app-b",
            AUD,
            "projects:read".parse().unwrap(),
        ))
        .unwrap();
    let other = w.mint(0, "app-a");
    w.revocations
        .revoke(
            RevocationTarget::Family(a.family().unwrap().clone()),
            "ops",
            "lost phone",
        )
        .unwrap();
    assert_eq!(
        w.verifier
            .verify(a.access().token().as_str())
            .unwrap_err()
            .kind(),
        VerifyErrorKind::Revoked
    );
    let e = refresher
        .exchange(a.refresh().token().as_str(), None)
        .unwrap_err();
    assert_eq!(e.kind(), RefreshErrorKind::Invalid);
    assert_eq!(e.verify_error().unwrap().kind(), VerifyErrorKind::Revoked);
    assert!(w.verifier.verify(b.access().token().as_str()).is_ok());
    assert!(
        refresher
            .exchange(b.refresh().token().as_str(), None)
            .is_ok()
    );
    assert!(w.verifier.verify(&other.text).is_ok());
}

/// A refresher signing with the world's first key, so the world's verifier trusts its tokens.
fn refresher(w: &World) -> Refresher {
    let key = SigningKey::from_paserk(&w.first_key).unwrap();
    let keys = w.keys.clone();
    let issuer = Issuer::new(key, ISS, "production".parse().unwrap())
        .unwrap()
        .with_clock(w.clock.clone())
        .with_audit(w.audit.clone())
        .with_inventory(w.inventory.clone());
    Refresher::new(
        issuer,
        AUD,
        keys,
        w.revocations.clone(),
        Arc::new(MemoryFamilies::new()),
    )
    .unwrap()
    .with_audit(w.audit.clone())
}

#[test]
fn refresh_reuse_kills_both_chains_and_is_audited() {
    let w = world();
    let refresher = refresher(&w);
    let first = refresher
        .start(
            &TokenRequest::new(
                "mobile",
                AUD,
                "projects:read comments:write".parse().unwrap(),
            )
            .escalate(),
        )
        .unwrap();
    let family = first.family().unwrap().clone();

    // Rotate three times: every pair belongs to the same family, scopes kept.
    let mut chain = vec![first];
    for _ in 0..3 {
        w.clock.advance(Duration::from_secs(60));
        let next = refresher
            .exchange(chain.last().unwrap().refresh().token().as_str(), None)
            .unwrap();
        assert_eq!(next.family(), Some(&family));
        assert_eq!(
            next.access().claims().scopes().to_string(),
            "comments:write projects:read"
        );
        chain.push(next);
    }
    let latest = chain.last().unwrap();
    assert!(w.verifier.verify(latest.access().token().as_str()).is_ok());

    // The attacker replays the first refresh token.
    let e = refresher
        .exchange(chain[0].refresh().token().as_str(), None)
        .unwrap_err();
    assert_eq!(e.kind(), RefreshErrorKind::Reused);

    // Both chains are dead: the legitimate latest refresh token and every access token of the
    // family are refused.
    let e = refresher
        .exchange(latest.refresh().token().as_str(), None)
        .unwrap_err();
    assert_eq!(e.kind(), RefreshErrorKind::Invalid);
    for pair in &chain {
        assert_eq!(
            w.verifier
                .verify(pair.access().token().as_str())
                .unwrap_err()
                .kind(),
            VerifyErrorKind::Revoked
        );
    }

    // The audit trail holds the reuse event and the family revocation.
    let events = w.audit.events();
    let reuse: Vec<&AuditEvent> = events
        .iter()
        .filter(|e| matches!(e.kind, AuditKind::RefreshReuseDetected { .. }))
        .collect();
    assert_eq!(reuse.len(), 1);
    assert_eq!(reuse[0].fam.as_ref(), Some(&family));
    assert_eq!(
        reuse[0].jti.as_ref(),
        Some(chain[0].refresh().claims().token_id())
    );
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        AuditKind::Revoked {
            target: "family",
            ..
        }
    ) && e.fam.as_ref() == Some(&family)));
    let refreshed: Vec<&AuditEvent> = events
        .iter()
        .filter(|e| matches!(e.kind, AuditKind::Refreshed { .. }))
        .collect();
    assert_eq!(refreshed.len(), 3);
    for (e, pair) in refreshed.iter().zip(&chain[1..]) {
        assert_eq!(e.jti.as_ref(), Some(pair.refresh().claims().token_id()));
        assert_eq!(
            e.kid.as_ref(),
            Some(w.issuers[0].key_id()),
            "signed with the current key"
        );
    }
}

#[test]
fn exchange_narrows_but_never_widens() {
    let w = world();
    let refresher = refresher(&w);
    let pair = refresher
        .start(
            &TokenRequest::new("app", AUD, "projects:read comments:write".parse().unwrap())
                .escalate(),
        )
        .unwrap();
    let e = refresher
        .exchange(
            pair.refresh().token().as_str(),
            Some(&"projects:write".parse().unwrap()),
        )
        .unwrap_err();
    assert_eq!(e.kind(), RefreshErrorKind::Widening);
    // A refused widening does not use the refresh token up.
    let narrowed = refresher
        .exchange(
            pair.refresh().token().as_str(),
            Some(&"projects/42:read".parse().unwrap()),
        )
        .unwrap();
    assert_eq!(
        narrowed.access().claims().scopes().to_string(),
        "projects/42:read"
    );
    assert_eq!(
        narrowed.refresh().claims().scopes().to_string(),
        "projects/42:read"
    );
    let e = refresher
        .exchange(
            narrowed.refresh().token().as_str(),
            Some(&"projects:read".parse().unwrap()),
        )
        .unwrap_err();
    assert_eq!(
        e.kind(),
        RefreshErrorKind::Widening,
        "no widening back either"
    );
}

#[test]
fn g5_refresh_and_access_tokens_are_not_interchangeable() {
    let w = world();
    let refresher = refresher(&w);
    let pair = refresher
        .start(&TokenRequest::new(
            "app",
            AUD,
            "projects:read".parse().unwrap(),
        ))
        .unwrap();
    // A verifier that trusts the refresher's key refuses its refresh token as an access token.
    let verifier = &w.verifier;
    assert!(verifier.verify(pair.access().token().as_str()).is_ok());
    assert_eq!(
        verifier
            .verify(pair.refresh().token().as_str())
            .unwrap_err()
            .kind(),
        VerifyErrorKind::BadSignature
    );
    // And the exchange refuses an access token.
    let e = refresher
        .exchange(pair.access().token().as_str(), None)
        .unwrap_err();
    assert_eq!(e.kind(), RefreshErrorKind::Invalid);
    assert_eq!(
        e.verify_error().unwrap().kind(),
        VerifyErrorKind::BadSignature
    );
}

#[test]
fn concurrent_revocation_is_effective_when_revoke_returns() {
    let w = Arc::new(world());
    let tokens: Vec<Token> = (0..16).map(|i| w.mint(i % 2, &format!("c{i}"))).collect();
    let tokens = Arc::new(tokens);
    // revoked[i] is set only after revoke() for token i has returned.
    let revoked: Arc<Vec<AtomicBool>> = Arc::new((0..16).map(|_| AtomicBool::new(false)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let mut verifiers = Vec::new();
    for _ in 0..4 {
        let (w, tokens, revoked, stop) = (w.clone(), tokens.clone(), revoked.clone(), stop.clone());
        verifiers.push(std::thread::spawn(move || {
            let mut checks = 0u64;
            while !stop.load(Ordering::SeqCst) {
                for (i, t) in tokens.iter().enumerate() {
                    // Read the flag before verifying: if it was set, revoke() had returned.
                    let was_revoked = revoked[i].load(Ordering::SeqCst);
                    let ok = w.verifier.verify(&t.text).is_ok();
                    assert!(
                        !(was_revoked && ok),
                        "token {i} accepted after its revocation returned"
                    );
                    checks += 1;
                }
            }
            checks
        }));
    }
    for (i, t) in tokens.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        std::thread::sleep(Duration::from_millis(2));
        w.revocations
            .revoke(
                RevocationTarget::Token {
                    token_id: t.jti.clone(),
                    expires_at: None,
                },
                "test",
                "concurrency",
            )
            .unwrap();
        revoked[i].store(true, Ordering::SeqCst);
    }
    std::thread::sleep(Duration::from_millis(20));
    stop.store(true, Ordering::SeqCst);
    let checks: u64 = verifiers.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(checks > 100, "{checks} verifications ran");
    for (i, t) in tokens.iter().enumerate() {
        assert_eq!(w.verifier.verify(&t.text).is_ok(), i % 2 == 1);
    }
}

#[test]
fn expired_single_token_entries_are_purged() {
    let clock = ManualClock::at_unix(NOW);
    let list = RevocationList::new().with_clock(clock.clone());
    for i in 0..1000 {
        let target = RevocationTarget::Token {
            token_id: format!("t{i}").parse().unwrap(),
            expires_at: Some(at(NOW + 600 + i)),
        };
        list.revoke(target, "ops", "bulk").unwrap();
    }
    list.revoke(
        RevocationTarget::Family("f".parse().unwrap()),
        "ops",
        "kept",
    )
    .unwrap();
    assert_eq!(list.token_entries(), 1000);
    // Once expiry plus the maximum leeway has passed (the verifier refuses such tokens as
    // expired anyway), the entries go: here those of tokens 0..=499.
    clock.set_unix(NOW + 600 + 499 + 120);
    assert_eq!(list.purge_expired(), 500);
    assert_eq!(list.token_entries(), 500);
    // Revoking later purges by itself (at most once a minute).
    clock.set_unix(NOW + 10_000);
    list.revoke(
        RevocationTarget::Key(SigningKey::generate().unwrap().key_id().clone()),
        "ops",
        "x",
    )
    .unwrap();
    assert_eq!(list.token_entries(), 0);
    // Family and key revocations are kept.
    assert_eq!(list.records().len(), 2);
}

/// Staleness is measured on a monotonic clock: stepping the wall clock back after the last
/// confirmation does not make the replica current for longer.
#[test]
fn a_wall_clock_stepped_back_does_not_extend_current() {
    use scopekey::revocation::{RevocationCheck as _, RevocationStatus, TokenFacts};
    let w = world();
    let clock = w.clock.clone();
    let replica = RevocationList::replica(Duration::from_secs(30)).with_clock(clock.clone());
    let t = w.mint(0, "c");
    let grant = w.verifier.verify(&t.text).unwrap();
    let facts = TokenFacts::of(grant.claims(), grant.key_id());
    replica.mark_current(at(NOW));
    assert!(matches!(
        replica.status_of(&facts),
        RevocationStatus::NotRevoked
    ));
    // An hour's step back, then 31 s of real time without a confirmation.
    clock.set_unix(NOW - 3600);
    clock.advance(Duration::from_secs(31));
    assert!(
        matches!(replica.status_of(&facts), RevocationStatus::Stale { .. }),
        "a step back stretched the staleness bound"
    );
    replica.mark_current(at(NOW - 3600 + 31));
    assert!(matches!(
        replica.status_of(&facts),
        RevocationStatus::NotRevoked
    ));
    // A step forward alone is not staleness either: no real time passed.
    clock.set_unix(NOW + 86_400);
    assert!(matches!(
        replica.status_of(&facts),
        RevocationStatus::NotRevoked
    ));
}

#[test]
fn a_stale_replica_fails_closed_and_recovers() {
    let w = world();
    let clock = w.clock.clone();
    let replica =
        Arc::new(RevocationList::replica(Duration::from_secs(30)).with_clock(clock.clone()));
    let verifier = Verifier::new(
        w.keys.clone(),
        VerifierConfig::new(ISS, AUD, "production".parse().unwrap()).clock(clock.clone()),
    )
    .unwrap()
    .with_revocations(replica.clone());
    let t = w.mint(0, "c");
    assert_eq!(
        verifier.verify(&t.text).unwrap_err().kind(),
        VerifyErrorKind::RevocationStale,
        "never confirmed"
    );
    replica.mark_current(at(NOW));
    assert!(verifier.verify(&t.text).is_ok());
    clock.advance(Duration::from_secs(31));
    assert_eq!(
        verifier.verify(&t.text).unwrap_err().kind(),
        VerifyErrorKind::RevocationStale
    );
    replica.mark_current(at(NOW + 31));
    assert!(verifier.verify(&t.text).is_ok());
}

#[test]
fn every_decision_is_an_audit_event_without_the_token() {
    let w = world();
    let t = w.mint(0, "reporter");
    let grant = w.verifier.verify(&t.text).unwrap();
    let p = Resource::from_segments(["projects", "1"]).unwrap();
    grant.authorize(&p, &Action::read()).unwrap();
    grant.authorize(&p, &Action::delete()).unwrap_err();
    w.clock.advance(Duration::from_secs(3600));
    assert_eq!(
        w.verifier.verify(&t.text).unwrap_err().kind(),
        VerifyErrorKind::Expired
    );
    assert!(w.verifier.verify("v4.public.garbage").is_err());

    let events = w.audit.events();
    let kinds: Vec<String> = events
        .iter()
        .map(|e| e.to_json())
        .map(|j| {
            serde_json::from_str::<serde_json::Value>(&j).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "issued",
            "verified",
            "authorized",
            "denied",
            "refused",
            "refused"
        ]
    );
    for e in &events[..5] {
        assert_eq!(e.jti.as_ref(), Some(&t.jti));
        assert_eq!(e.sub.as_deref(), Some("reporter"));
        assert_eq!(e.env.as_ref().map(|e| e.as_str()), Some("production"));
    }
    assert!(events[1].kid.is_some());
    assert!(
        events[5].jti.is_none(),
        "nothing is known of an unverifiable token"
    );
    let json: Vec<String> = events.iter().map(AuditEvent::to_json).collect();
    assert!(json[4].contains("\"reason\":\"expired\""), "{}", json[4]);
    assert!(
        json[3].contains("\"resource\":\"projects/1\"")
            && json[3].contains("\"action\":\"delete\"")
    );
    let body = t.text.split('.').nth(2).unwrap();
    assert!(
        json.iter().all(|j| !j.contains(body)),
        "an event contains the token"
    );
}

#[test]
fn json_lines_sink_appends_one_event_per_line() {
    let dir = std::env::temp_dir().join(format!("scopekey-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.jsonl");
    let _ = std::fs::remove_file(&path);
    let sink = JsonLinesSink::open(&path).unwrap();
    let event = AuditEvent::bare(at(NOW), AuditKind::Verified);
    sink.record(&event).unwrap();
    sink.record(&event).unwrap();
    drop(sink);
    let again = JsonLinesSink::open(&path).unwrap(); // reopening appends
    again.record(&event).unwrap();
    again.sync().unwrap(); // written, and on disk
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["event"], "verified");
        assert_eq!(v["time"], "2030-03-17T17:46:40Z");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failing_audit_sink_fails_closed() {
    #[derive(Debug)]
    struct Broken;
    impl AuditSink for Broken {
        fn record(&self, _: &AuditEvent) -> Result<(), scopekey::audit::AuditError> {
            Err(scopekey::audit::AuditError::new("broken", "disk full"))
        }
    }
    let w = world();
    let t = w.mint(0, "c");
    let verifier = Verifier::new(
        w.keys.clone(),
        VerifierConfig::new(ISS, AUD, "production".parse().unwrap()).clock(w.clock.clone()),
    )
    .unwrap()
    .with_audit(Arc::new(Broken));
    assert_eq!(
        verifier.verify(&t.text).unwrap_err().kind(),
        VerifyErrorKind::AuditUnavailable
    );
    assert_eq!(
        verifier.verify("nope").unwrap_err().kind(),
        VerifyErrorKind::AuditUnavailable
    );
    // A real write failure from the JSON Lines sink (written in the background) surfaces as
    // an error: from `sync`, or from the next event, which is refused and fails closed.
    #[cfg(target_os = "linux")]
    {
        let full = JsonLinesSink::open("/dev/full").unwrap();
        full.record(&AuditEvent::bare(at(NOW), AuditKind::Verified))
            .unwrap();
        let e = full.sync().unwrap_err();
        assert!(e.to_string().contains("1 events were lost"), "{e}");
        let full = Arc::new(full);
        let issuer = Issuer::new(
            SigningKey::generate().unwrap(),
            ISS,
            "production".parse().unwrap(),
        )
        .unwrap()
        .with_audit(full.clone());
        let request = TokenRequest::new("c", AUD, "a:read".parse().unwrap());
        // The first issue's event is queued; the write fails behind it; a later issue is told.
        let started = std::time::Instant::now();
        let refused = loop {
            match issuer.issue(&request) {
                Err(e) => break e,
                Ok(_) => {
                    assert!(started.elapsed() < std::time::Duration::from_secs(5));
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        };
        assert_eq!(refused.kind(), scopekey::IssueErrorKind::Record);
    }
    // A grant whose audit fails refuses the action.
    let grant_sink = Arc::new(FlakySink::default());
    let verifier = Verifier::new(
        w.keys.clone(),
        VerifierConfig::new(ISS, AUD, "production".parse().unwrap()).clock(w.clock.clone()),
    )
    .unwrap()
    .with_audit(grant_sink.clone());
    let grant = verifier.verify(&t.text).unwrap();
    grant_sink.fail.store(true, Ordering::SeqCst);
    let denied = grant
        .authorize(
            &Resource::from_segments(["projects"]).unwrap(),
            &Action::read(),
        )
        .unwrap_err();
    assert_eq!(denied.reason(), DenyReason::AuditUnavailable);
}

#[derive(Debug, Default)]
struct FlakySink {
    fail: AtomicBool,
}

impl AuditSink for FlakySink {
    fn record(&self, _: &AuditEvent) -> Result<(), scopekey::audit::AuditError> {
        if self.fail.load(Ordering::SeqCst) {
            Err(scopekey::audit::AuditError::new("flaky", "down"))
        } else {
            Ok(())
        }
    }
}

#[test]
fn inventory_answers_who_what_and_when() {
    let w = world();
    let a1 = w.mint(0, "alpha");
    w.clock.advance(Duration::from_secs(60));
    let a2 = w.issuers[1]
        .issue(
            &TokenRequest::new("alpha", AUD, "users:read comments:write".parse().unwrap())
                .owner("owner-of-alpha")
                .purpose("sync")
                .ttl(Duration::from_secs(120))
                .escalate(),
        )
        .unwrap();
    let b1 = w.mint(0, "beta");
    w.clock.advance(Duration::from_secs(60));
    w.verifier.verify(&a1.text).unwrap();

    let inv: &dyn Inventory = w.inventory.as_ref();
    let all_alpha = inv.query(&InventoryQuery::all().subject("alpha")).unwrap();
    assert_eq!(all_alpha.len(), 2);
    let rec = inv.get(&a1.jti).unwrap().unwrap();
    assert_eq!(rec.owner(), Some("owner-of-alpha"));
    assert_eq!(rec.last_used(), Some(at(NOW + 120)));
    assert_eq!(rec.key_id(), w.issuers[0].key_id());
    assert_eq!(
        inv.query(&InventoryQuery::all().owner("owner-of-beta"))
            .unwrap()
            .len(),
        1
    );
    // Not used since NOW + 90: a2 and b1 (never used, issued at NOW + 60), not a1.
    let unused = inv
        .query(&InventoryQuery::all().unused_since(at(NOW + 90)))
        .unwrap();
    let unused: Vec<&str> = unused.iter().map(|r| r.token_id().as_str()).collect();
    assert_eq!(unused.len(), 2);
    assert!(!unused.contains(&a1.jti.as_str()));
    let soon = inv
        .query(&InventoryQuery::all().expiring_before(at(NOW + 600)))
        .unwrap();
    assert_eq!(soon.len(), 1);
    assert_eq!(soon[0].token_id(), a2.claims().token_id());

    // What alpha can touch right now: the union of its live tokens' scopes...
    let now = at(NOW + 120);
    let reach = reachable_scopes(inv, "alpha", now, None).unwrap();
    assert_eq!(reach.to_string(), "comments:write projects:read users:read");
    // ...minus revoked tokens, and minus expired ones.
    w.revocations
        .revoke(
            RevocationTarget::Token {
                token_id: a1.jti.clone(),
                expires_at: None,
            },
            "ops",
            "x",
        )
        .unwrap();
    let reach = reachable_scopes(inv, "alpha", now, Some(w.revocations.as_ref())).unwrap();
    assert_eq!(reach.to_string(), "comments:write users:read");
    let reach =
        reachable_scopes(inv, "alpha", at(NOW + 200), Some(w.revocations.as_ref())).unwrap();
    assert!(reach.is_empty());
    let _ = b1;
}

#[test]
fn a_million_single_token_revocations_fit_in_64_bytes_each() {
    let clock = ManualClock::at_unix(NOW);
    let list = RevocationList::new().with_clock(clock.clone());
    let mut ids = Vec::new();
    for i in 0..1_000_000 {
        // 22 canonical base64url characters, like generated ids, without a million syscalls.
        let id: scopekey::TokenId = format!("{i:0>21}A").parse().unwrap();
        ids.push(id.clone());
        let target = RevocationTarget::Token {
            token_id: id,
            expires_at: Some(at(NOW + 900)),
        };
        list.apply(Arc::new(
            scopekey::revocation::Revocation::new(target, "ops", at(NOW), "mass leak").unwrap(),
        ));
    }
    assert_eq!(list.token_entries(), 1_000_000);
    let per_entry = list.memory_estimate() / 1_000_000;
    assert!(per_entry <= 64, "{per_entry} bytes per entry");
    // Packed entries still answer with the full record.
    let w = world();
    let key = w
        .verifier
        .keys()
        .iter()
        .next()
        .unwrap()
        .key()
        .key_id()
        .clone();
    let claims = w.issuers[0]
        .issue(&TokenRequest::new(
            "ci",
            AUD,
            "projects:read".parse().unwrap(),
        ))
        .unwrap()
        .claims()
        .clone();
    let mut facts = scopekey::revocation::TokenFacts::of(&claims, &key);
    assert!(matches!(
        scopekey::revocation::RevocationCheck::status_of(&list, &facts),
        scopekey::revocation::RevocationStatus::NotRevoked
    ));
    facts.token_id = &ids[123_456];
    match scopekey::revocation::RevocationCheck::status_of(&list, &facts) {
        scopekey::revocation::RevocationStatus::Revoked(r) => {
            assert_eq!(r.by(), "ops");
            assert_eq!(r.reason(), "mass leak");
            assert_eq!(r.at(), at(NOW));
            assert_eq!(
                r.target(),
                &RevocationTarget::Token {
                    token_id: ids[123_456].clone(),
                    expires_at: Some(at(NOW + 900))
                }
            );
        }
        other => panic!("{other:?}"),
    }
}

/// Four threads record 2,500 events each through one sink: after `sync` the file holds all
/// 10,000, one whole JSON object per line, in batches (far fewer writes than events is not
/// observable here; whole lines are).
#[test]
fn json_lines_sink_writes_every_event_from_many_threads() {
    let dir = std::env::temp_dir().join(format!("scopekey-audit-mt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.jsonl");
    let _ = std::fs::remove_file(&path);
    let sink = Arc::new(JsonLinesSink::open(&path).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let sink = sink.clone();
            std::thread::spawn(move || {
                for i in 0..2_500 {
                    let mut e = AuditEvent::bare(at(NOW), AuditKind::Verified);
                    e.sub = Some(format!("t{t}-{i}"));
                    sink.record(&e).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    sink.sync().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut subs: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["sub"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(subs.len(), 10_000);
    subs.sort();
    subs.dedup();
    assert_eq!(subs.len(), 10_000);
    drop(sink);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The batch waiting to be written is bounded: past `max_pending` events a record is refused
/// as `Busy` (nothing half-queued), and accepted again once the writer caught up. Dropping the
/// sink writes what waited.
#[test]
fn json_lines_sink_refuses_past_its_bound_and_writes_on_drop() {
    use scopekey::audit::{AuditErrorKind, FsyncPolicy, JsonLinesOptions};
    let dir = std::env::temp_dir().join(format!("scopekey-audit-bound-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.jsonl");
    let _ = std::fs::remove_file(&path);
    let options = JsonLinesOptions::default()
        .flush_interval(std::time::Duration::from_secs(1))
        .max_pending(10)
        .fsync(FsyncPolicy::EveryBatch);
    let sink = JsonLinesSink::open_with(&path, options).unwrap();
    let event = AuditEvent::bare(at(NOW), AuditKind::Verified);
    // The writer gathers for a second after the first event: ten fit, the eleventh does not
    // (up to ten more if this thread stalled past that second and the writer took a batch).
    let mut accepted = 0;
    let refused = loop {
        match sink.record(&event) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted <= 30, "no bound");
    };
    assert_eq!(refused.kind(), AuditErrorKind::Busy, "{refused}");
    assert!(accepted >= 10, "{accepted}");
    sink.sync().unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap().lines().count(),
        accepted
    );
    sink.record(&event).unwrap();
    sink.record(&event).unwrap();
    drop(sink);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap().lines().count(),
        accepted + 2
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
