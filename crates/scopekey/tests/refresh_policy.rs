//! A refresh exchange obeys the consumer's registration as it is now, not as it was when the
//! family started.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scopekey::BackendError;
use scopekey::consumer::{Consumer, ConsumerDirectory};
use scopekey::refresh::{MemoryFamilies, RefreshErrorKind, Refresher};
use scopekey::revocation::RevocationList;
use scopekey::{
    Issuer, KeySet, SigningKey, TokenRequest, Verifier, VerifierConfig, VerifyErrorKind,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";

/// Consumers by name; `None` makes every lookup fail.
#[derive(Debug)]
struct Directory(Mutex<Option<HashMap<String, Consumer>>>);

impl Directory {
    fn register(&self, ceiling: &str, disabled: bool) {
        let c = Consumer::from_parts(
            "app",
            "team",
            "sync",
            "production".parse().unwrap(),
            ceiling.parse().unwrap(),
            OffsetDateTime::now_utc(),
            disabled.then(OffsetDateTime::now_utc),
        )
        .unwrap();
        self.0
            .lock()
            .unwrap()
            .get_or_insert_with(HashMap::new)
            .insert("app".into(), c);
    }

    fn break_it(&self) {
        *self.0.lock().unwrap() = None;
    }
}

impl ConsumerDirectory for Directory {
    fn consumer(&self, name: &str) -> Result<Option<Consumer>, BackendError> {
        match &*self.0.lock().unwrap() {
            Some(map) => Ok(map.get(name).cloned()),
            None => Err(BackendError::new("registry unreachable", None)),
        }
    }
}

struct World {
    refresher: Refresher,
    directory: Arc<Directory>,
    access: Verifier,
}

fn world() -> World {
    let key = SigningKey::generate().unwrap();
    let keys = KeySet::single(key.public_key().clone());
    let issuer = Issuer::new(key, ISS, "production".parse().unwrap()).unwrap();
    let revocations = Arc::new(RevocationList::new());
    let directory = Arc::new(Directory(Mutex::new(Some(HashMap::new()))));
    let refresher = Refresher::new(
        issuer,
        AUD,
        keys.clone(),
        revocations.clone(),
        Arc::new(MemoryFamilies::new()),
    )
    .unwrap()
    .with_consumers(directory.clone());
    let access = Verifier::new(
        keys,
        VerifierConfig::new(ISS, AUD, "production".parse().unwrap()),
    )
    .unwrap()
    .with_revocations(revocations);
    World {
        refresher,
        directory,
        access,
    }
}

fn start(w: &World) -> scopekey::refresh::TokenPair {
    w.refresher
        .start(
            &TokenRequest::new("app", AUD, "projects:read comments:write".parse().unwrap())
                .escalate(),
        )
        .unwrap()
}

#[test]
fn a_disabled_consumer_gets_nothing_and_its_family_is_revoked() {
    let w = world();
    w.directory.register("projects:read comments:write", false);
    let pair = start(&w);
    w.access.verify(pair.access().token().as_str()).unwrap();
    w.directory.register("projects:read comments:write", true);
    let e = w
        .refresher
        .exchange(pair.refresh().token().as_str(), None)
        .unwrap_err();
    assert_eq!(e.kind(), RefreshErrorKind::ConsumerDisabled);
    // The family is revoked: its live access token stops working at once.
    assert_eq!(
        w.access
            .verify(pair.access().token().as_str())
            .unwrap_err()
            .kind(),
        VerifyErrorKind::Revoked
    );
}

#[test]
fn a_narrowed_ceiling_narrows_the_next_tokens_and_never_regrants() {
    let w = world();
    w.directory.register("projects:read comments:write", false);
    let pair = start(&w);
    w.directory.register("projects:read", false);
    let next = w
        .refresher
        .exchange(pair.refresh().token().as_str(), None)
        .unwrap();
    assert_eq!(next.access().claims().scopes().to_string(), "projects:read");
    assert_eq!(
        next.refresh().claims().scopes().to_string(),
        "projects:read"
    );
    // Widening the ceiling again does not bring back what the family lost.
    w.directory.register("projects:read comments:write", false);
    let after = w
        .refresher
        .exchange(next.refresh().token().as_str(), None)
        .unwrap();
    assert_eq!(
        after.access().claims().scopes().to_string(),
        "projects:read"
    );
}

#[test]
fn nothing_left_within_the_ceiling_is_refused() {
    let w = world();
    w.directory.register("projects:read comments:write", false);
    let pair = start(&w);
    w.directory.register("billing:read", false);
    let e = w
        .refresher
        .exchange(pair.refresh().token().as_str(), None)
        .unwrap_err();
    assert_eq!(e.kind(), RefreshErrorKind::BeyondCeiling);
}

#[test]
fn a_directory_that_cannot_answer_fails_closed_and_unknown_subjects_pass() {
    let w = world();
    // Not registered: exchanged as before.
    let pair = start(&w);
    let next = w
        .refresher
        .exchange(pair.refresh().token().as_str(), None)
        .unwrap();
    w.directory.break_it();
    let e = w
        .refresher
        .exchange(next.refresh().token().as_str(), None)
        .unwrap_err();
    assert_eq!(e.kind(), RefreshErrorKind::Unavailable);
    assert!(e.to_string().contains("registry unreachable"), "{e}");
}

/// A refresher on a manual clock, its access verifier on the same clock, and the clock.
fn timed_world(family_lifetime: Option<std::time::Duration>) -> (Refresher, scopekey::ManualClock) {
    let clock = scopekey::ManualClock::now_utc();
    let key = SigningKey::generate().unwrap();
    let keys = KeySet::single(key.public_key().clone());
    let issuer = Issuer::new(key, ISS, "production".parse().unwrap())
        .unwrap()
        .with_clock(clock.clone());
    let revocations = Arc::new(RevocationList::new().with_clock(clock.clone()));
    let mut refresher = Refresher::new(
        issuer,
        AUD,
        keys,
        revocations,
        Arc::new(MemoryFamilies::new()),
    )
    .unwrap();
    if let Some(l) = family_lifetime {
        refresher = refresher.with_family_lifetime(l);
    }
    (refresher, clock)
}

/// Exchanged every 23 hours (each refresh token lives 24), a family keeps going for its
/// absolute lifetime of 30 days and not one exchange longer.
#[test]
fn a_family_ends_after_thirty_days_however_often_it_is_exchanged() {
    let (refresher, clock) = timed_world(None);
    let mut pair = refresher
        .start(&TokenRequest::new(
            "app",
            AUD,
            "projects:read".parse().unwrap(),
        ))
        .unwrap();
    let step = std::time::Duration::from_secs(23 * 3600);
    let mut elapsed = std::time::Duration::ZERO;
    let mut exchanges = 0;
    loop {
        clock.advance(step);
        elapsed += step;
        match refresher.exchange(pair.refresh().token().as_str(), None) {
            Ok(next) => {
                assert!(
                    elapsed <= scopekey::refresh::DEFAULT_FAMILY_LIFETIME,
                    "exchanged {} s after the family began",
                    elapsed.as_secs()
                );
                pair = next;
                exchanges += 1;
            }
            Err(e) => {
                assert_eq!(e.kind(), RefreshErrorKind::FamilyExpired, "{e}");
                assert!(elapsed > scopekey::refresh::DEFAULT_FAMILY_LIFETIME);
                break;
            }
        }
    }
    // 30 days / 23 h = 31 exchanges fit; the 32nd, at 30 days 16 h, is refused.
    assert_eq!(exchanges, 31);
}

#[test]
fn the_family_lifetime_is_configurable_and_counts_from_the_start() {
    let day = std::time::Duration::from_secs(24 * 3600);
    let (refresher, clock) = timed_world(Some(day * 2));
    let pair = refresher
        .start(&TokenRequest::new(
            "app",
            AUD,
            "projects:read".parse().unwrap(),
        ))
        .unwrap();
    clock.advance(day - std::time::Duration::from_secs(60));
    let pair = refresher
        .exchange(pair.refresh().token().as_str(), None)
        .unwrap();
    clock.advance(day - std::time::Duration::from_secs(60));
    let pair = refresher
        .exchange(pair.refresh().token().as_str(), None)
        .unwrap();
    // Two days and a minute after the start: the refresh token is fresh, the family is not.
    clock.advance(std::time::Duration::from_secs(180));
    let e = refresher
        .exchange(pair.refresh().token().as_str(), None)
        .unwrap_err();
    assert_eq!(e.kind(), RefreshErrorKind::FamilyExpired);
    assert!(e.to_string().contains("sign in again"), "{e}");
}

/// Reuse kills an in-memory family in the same step that detects it: even a families store
/// used without a revocation list never rotates that family again.
#[test]
fn memory_families_die_on_reuse() {
    use scopekey::refresh::{Presentation, RefreshFamilies, Rotation};
    use scopekey::revocation::{Revocation, RevocationTarget};
    use scopekey::{FamilyId, TokenId};
    let families = MemoryFamilies::new();
    let now = OffsetDateTime::now_utc();
    let later = now + time::Duration::hours(1);
    let family = FamilyId::generate().unwrap();
    let [t1, t2, t3] = [(); 3].map(|_| TokenId::generate().unwrap());
    let revocation = Revocation::new(
        RevocationTarget::Family(family.clone()),
        "test",
        now,
        "reuse",
    )
    .unwrap();
    let present = |presented: &TokenId, next: &TokenId| {
        families
            .rotate(&Presentation::new(
                &family,
                presented,
                next,
                later,
                now - time::Duration::days(30),
                &revocation,
            ))
            .unwrap()
    };
    families.begin(&family, &t1, now, later).unwrap();
    assert_eq!(present(&t1, &t2), Rotation::Rotated);
    assert_eq!(present(&t1, &t3), Rotation::Reused);
    // The legitimate holder's current token no longer rotates: the family is dead.
    assert_eq!(present(&t2, &t3), Rotation::Reused);
}
