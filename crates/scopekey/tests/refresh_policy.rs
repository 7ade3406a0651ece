//! A refresh exchange obeys the consumer's registration as it is now, not as it was when the
//! family started.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scopekey::consumer::{Consumer, ConsumerDirectory, DirectoryError};
use scopekey::refresh::{MemoryFamilies, RefreshErrorKind, Refresher};
use scopekey::revocation::RevocationList;
use scopekey::{ErrorKind, Issuer, KeySet, SigningKey, TokenRequest, Verifier, VerifierConfig};
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
    fn consumer(&self, name: &str) -> Result<Option<Consumer>, DirectoryError> {
        match &*self.0.lock().unwrap() {
            Some(map) => Ok(map.get(name).cloned()),
            None => Err(DirectoryError::new("registry unreachable")),
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
        ErrorKind::Revoked
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
