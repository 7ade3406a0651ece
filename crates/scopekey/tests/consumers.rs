//! Consumers, ceilings and pruning through the public API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use scopekey::consumer::Consumer;
use scopekey::inventory::{
    Inventory, MemoryInventory, consumers_over_limit, prune, unregistered_tokens,
};
use scopekey::revocation::RevocationList;
use scopekey::{
    IssueErrorKind, Issuer, KeySet, ManualClock, ScopeSet, SigningKey, TokenRequest, Verifier,
    VerifierConfig, VerifyErrorKind,
};
use std::sync::Arc;
use std::time::Duration;

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";
const NOW: i64 = 1_900_000_000;

fn issuer() -> Issuer {
    Issuer::new(
        SigningKey::generate().unwrap(),
        ISS,
        "production".parse().unwrap(),
    )
    .unwrap()
}

fn consumer(ceiling: &str) -> Consumer {
    Consumer::new(
        "analytics",
        "team-data",
        "dashboards",
        "production".parse().unwrap(),
        ceiling.parse().unwrap(),
    )
    .unwrap()
}

fn scope_set() -> impl Strategy<Value = ScopeSet> {
    let seg = prop::sample::select(vec!["metrics", "projects", "42", "7", "*", "reports"]);
    let act = prop::sample::select(vec!["read", "write", "delete", "*"]);
    let scope =
        (prop::collection::vec(seg, 1..3), act).prop_map(|(s, a)| format!("{}:{a}", s.join("/")));
    prop::collection::btree_set(scope, 1..5)
        .prop_map(|s| s.into_iter().collect::<Vec<_>>().join(" ").parse().unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Minting for a consumer succeeds exactly when the request is within the ceiling.
    #[test]
    fn ceiling_enforcement_agrees_with_is_subset_of(ceiling in scope_set(), request in scope_set()) {
        let issuer = issuer();
        let c = Consumer::new("c", "o", "p", "production".parse().unwrap(), ceiling.clone()).unwrap();
        let result = issuer.issue_for(&c, &TokenRequest::new("ignored", AUD, request.clone()).allow_broad());
        prop_assert_eq!(result.is_ok(), request.is_subset_of(&ceiling));
        match result {
            Ok(m) => prop_assert_eq!(m.claims().subject(), "c"),
            Err(e) => {
                prop_assert_eq!(e.kind(), IssueErrorKind::BeyondCeiling);
                let offending: Vec<_> = request.iter().filter(|s| !ceiling.allows_scope(s)).collect();
                prop_assert!(!offending.is_empty());
                for s in offending {
                    prop_assert!(e.to_string().contains(&s.to_string()), "{} not named in {}", s, e);
                }
            }
        }
    }
}

#[test]
fn minting_beyond_the_ceiling_names_the_scope() {
    let c = consumer("metrics:read");
    let issuer = issuer();
    let ok = issuer
        .issue_for(
            &c,
            &TokenRequest::new("x", AUD, "metrics/cpu:read".parse().unwrap()),
        )
        .unwrap();
    assert_eq!(ok.claims().subject(), "analytics");
    assert_eq!(ok.claims().owner(), Some("team-data"));
    let e = issuer
        .issue_for(
            &c,
            &TokenRequest::new(
                "x",
                AUD,
                "metrics:read metrics:write billing:read".parse().unwrap(),
            ),
        )
        .unwrap_err();
    assert_eq!(e.kind(), IssueErrorKind::BeyondCeiling);
    assert!(
        e.to_string().contains("billing:read") && e.to_string().contains("metrics:write"),
        "{e}"
    );
    assert!(!e.to_string().contains("metrics:read "), "{e}");
}

#[test]
fn disabled_and_foreign_consumers_get_nothing() {
    let disabled = Consumer::from_parts(
        "old",
        "o",
        "p",
        "production".parse().unwrap(),
        "a:read".parse().unwrap(),
        time::OffsetDateTime::now_utc(),
        Some(time::OffsetDateTime::now_utc()),
    )
    .unwrap();
    let e = issuer()
        .issue_for(
            &disabled,
            &TokenRequest::new("x", AUD, "a:read".parse().unwrap()),
        )
        .unwrap_err();
    assert_eq!(e.kind(), IssueErrorKind::ConsumerDisabled);
    let staging = Consumer::new(
        "s",
        "o",
        "p",
        "staging".parse().unwrap(),
        "a:read".parse().unwrap(),
    )
    .unwrap();
    let e = issuer()
        .issue_for(
            &staging,
            &TokenRequest::new("x", AUD, "a:read".parse().unwrap()),
        )
        .unwrap_err();
    assert_eq!(e.kind(), IssueErrorKind::ConsumerEnvironment);
    assert!(
        Consumer::new(
            "",
            "o",
            "p",
            "production".parse().unwrap(),
            "a:read".parse().unwrap()
        )
        .is_err()
    );
    assert!(
        Consumer::new(
            "n",
            "o",
            "p",
            "production".parse().unwrap(),
            ScopeSet::new()
        )
        .is_err()
    );
}

#[test]
fn prune_dry_run_lists_exactly_the_unused_and_the_real_run_revokes_exactly_those() {
    let clock = ManualClock::at_unix(NOW);
    let key = SigningKey::generate().unwrap();
    let keys = KeySet::single(key.public_key().clone());
    let inventory = Arc::new(MemoryInventory::new());
    let revocations = Arc::new(RevocationList::new().with_clock(clock.clone()));
    let issuer = Issuer::new(key, ISS, "production".parse().unwrap())
        .unwrap()
        .with_clock(clock.clone())
        .with_max_ttl(Duration::from_secs(90 * 86_400))
        .with_inventory(inventory.clone());
    let verifier = Verifier::new(
        keys,
        VerifierConfig::new(ISS, AUD, "production".parse().unwrap())
            .clock(clock.clone())
            .max_lifetime(Duration::from_secs(90 * 86_400)),
    )
    .unwrap()
    .with_revocations(revocations.clone())
    .with_inventory(inventory.clone());
    let mint = |sub: &str| {
        issuer
            .issue(
                &TokenRequest::new(sub, AUD, "a:read".parse().unwrap())
                    .ttl(Duration::from_secs(60 * 86_400)),
            )
            .unwrap()
            .token()
            .as_str()
            .to_owned()
    };
    let used_recently = mint("a");
    let used_long_ago = mint("b");
    let never_used = mint("c");
    clock.advance(Duration::from_secs(86_400));
    verifier.verify(&used_long_ago).unwrap();
    clock.advance(Duration::from_secs(40 * 86_400));
    verifier.verify(&used_recently).unwrap();
    let fresh = mint("d"); // issued after the cut-off: not "unused since" it
    let now = time::OffsetDateTime::from_unix_timestamp(NOW + 41 * 86_400).unwrap();
    let cutoff = now - time::Duration::days(30);

    let listed = prune(
        inventory.as_ref(),
        revocations.as_ref(),
        cutoff,
        now,
        true,
        "ops",
    )
    .unwrap();
    let mut subjects: Vec<&str> = listed.iter().map(|r| r.subject()).collect();
    subjects.sort();
    assert_eq!(subjects, ["b", "c"]);
    // A dry run revokes nothing. (Checked on the list: verifying would record a use.)
    assert!(
        revocations.records().is_empty(),
        "a dry run revokes nothing"
    );
    let revoked = prune(
        inventory.as_ref(),
        revocations.as_ref(),
        cutoff,
        now,
        false,
        "ops",
    )
    .unwrap();
    assert_eq!(
        revoked
            .iter()
            .map(|r| r.token_id().clone())
            .collect::<Vec<_>>(),
        listed
            .iter()
            .map(|r| r.token_id().clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(revocations.records().len(), 2);
    for t in [&used_long_ago, &never_used] {
        assert_eq!(
            verifier.verify(t).unwrap_err().kind(),
            VerifyErrorKind::Revoked
        );
    }
    assert!(verifier.verify(&used_recently).is_ok());
    assert!(verifier.verify(&fresh).is_ok());

    // Reports: more than one live token per consumer, and tokens outside the registry.
    mint("a");
    let crowded = consumers_over_limit(inventory.as_ref(), now, 1).unwrap();
    assert_eq!(crowded, [("a".to_owned(), 2)]);
    let outside = unregistered_tokens(inventory.as_ref(), now, |s| s == "a" || s == "b").unwrap();
    let mut outside: Vec<&str> = outside.iter().map(|r| r.subject()).collect();
    outside.sort();
    assert_eq!(outside, ["c", "d"]);
    assert_eq!(
        inventory
            .query(&scopekey::inventory::InventoryQuery::all())
            .unwrap()
            .len(),
        5
    );
}
