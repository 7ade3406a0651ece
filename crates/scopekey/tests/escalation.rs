//! Read-only is the default posture, enforced: any scope beyond `read` needs an explicit
//! escalation (the request's `escalate`, or a consumer's ceiling), and the `issued` event says
//! whether a token is escalated.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scopekey::audit::{AuditKind, MemorySink};
use scopekey::consumer::Consumer;
use scopekey::refresh::{MemoryFamilies, RefreshErrorKind, Refresher};
use scopekey::revocation::RevocationList;
use scopekey::{IssueErrorKind, Issuer, KeySet, SigningKey, TokenRequest};
use std::sync::Arc;

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";

fn issuer(sink: &Arc<MemorySink>) -> (Issuer, KeySet) {
    let key = SigningKey::generate().unwrap();
    let keys = KeySet::single(key.public_key().clone());
    let issuer = Issuer::new(key, ISS, "production".parse().unwrap())
        .unwrap()
        .with_audit(sink.clone());
    (issuer, keys)
}

fn escalated_flags(sink: &MemorySink) -> Vec<bool> {
    sink.events()
        .iter()
        .filter_map(|e| match &e.kind {
            AuditKind::Issued { escalated, .. } => Some(*escalated),
            _ => None,
        })
        .collect()
}

#[test]
fn every_action_beyond_read_needs_an_explicit_escalation() {
    let sink = Arc::new(MemorySink::new());
    let (issuer, _) = issuer(&sink);
    for scopes in [
        "projects/42/comments:write",
        "projects:read projects/42:delete",
        "billing:admin",
        "tokens:revoke",
        "reports:publish",
    ] {
        let req = TokenRequest::new("ci", AUD, scopes.parse().unwrap());
        let e = issuer.issue(&req).unwrap_err();
        assert_eq!(e.kind(), IssueErrorKind::NeedsEscalation, "{scopes}");
        let beyond = scopes.split(' ').find(|s| !s.ends_with(":read")).unwrap();
        assert!(e.to_string().contains(beyond), "{e}");
        assert!(e.to_string().contains("escalate"), "{e}");
        assert!(!e.to_string().contains("projects:read"), "{e}");
        assert!(issuer.issue(&req.escalate()).is_ok(), "{scopes}");
    }
    // A `*` action is broad and beyond read: both opt-ins.
    let star = TokenRequest::new("ci", AUD, "projects:*".parse().unwrap()).allow_broad();
    assert_eq!(
        issuer.issue(&star).unwrap_err().kind(),
        IssueErrorKind::NeedsEscalation
    );
    issuer.issue(&star.escalate()).unwrap();
    // Read-only needs nothing.
    issuer
        .issue(&TokenRequest::new(
            "ci",
            AUD,
            "projects:read users/7:read".parse().unwrap(),
        ))
        .unwrap();
    // Refused requests record nothing; the issued events say which tokens are escalated.
    assert_eq!(
        escalated_flags(&sink),
        [true, true, true, true, true, true, false]
    );
    let json = sink.events().last().unwrap().to_json();
    assert!(json.contains(r#""escalated":false"#), "{json}");
}

#[test]
fn a_consumers_ceiling_is_the_escalation_and_the_limit() {
    let sink = Arc::new(MemorySink::new());
    let (issuer, _) = issuer(&sink);
    let writer = Consumer::new(
        "importer",
        "team-support",
        "import comments",
        "production".parse().unwrap(),
        "projects:read projects/42/comments:write".parse().unwrap(),
    )
    .unwrap();
    let reader = Consumer::new(
        "dashboards",
        "team-data",
        "charts",
        "production".parse().unwrap(),
        "projects:read".parse().unwrap(),
    )
    .unwrap();
    let write = TokenRequest::new("x", AUD, "projects/42/comments:write".parse().unwrap());
    // Within the ceiling: no second opt-in needed.
    let minted = issuer.issue_for(&writer, &write).unwrap();
    assert_eq!(minted.claims().subject(), "importer");
    // A consumer whose ceiling names no write gets read only, escalate or not.
    for req in [write.clone(), write.clone().escalate()] {
        let e = issuer.issue_for(&reader, &req).unwrap_err();
        assert_eq!(e.kind(), IssueErrorKind::BeyondCeiling);
    }
    issuer
        .issue_for(
            &reader,
            &TokenRequest::new("x", AUD, "projects/1:read".parse().unwrap()),
        )
        .unwrap();
    assert_eq!(escalated_flags(&sink), [true, false]);
}

#[test]
fn refresh_families_start_escalated_only_when_asked_and_keep_it() {
    let sink = Arc::new(MemorySink::new());
    let (issuer, keys) = issuer(&sink);
    let refresher = Refresher::new(
        issuer,
        AUD,
        keys,
        Arc::new(RevocationList::new()),
        Arc::new(MemoryFamilies::new()),
    )
    .unwrap();
    let req = TokenRequest::new("app", AUD, "comments:write".parse().unwrap());
    let e = refresher.start(&req).unwrap_err();
    assert_eq!(e.kind(), RefreshErrorKind::Issue);
    assert!(e.to_string().contains("escalate"), "{e}");
    let pair = refresher.start(&req.escalate()).unwrap();
    let next = refresher
        .exchange(pair.refresh().token().as_str(), None)
        .unwrap();
    assert_eq!(
        next.access().claims().scopes().to_string(),
        "comments:write"
    );
}
