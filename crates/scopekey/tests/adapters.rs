//! The core of the adapters (issue #20): several issuers and audiences on one verifier,
//! application claims read back typed, and composed and templated requirements, all without
//! a server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scopekey::audit::{AuditKind, MemorySink};
use scopekey::cache::GrantCache;
use scopekey::custom::{CustomClaimsErrorKind, MAX_CUSTOM_CLAIMS_LEN};
use scopekey::requirement::{MAX_REQUIREMENT_SCOPES, TemplateErrorKind};
use scopekey::trust::MAX_TRUSTED_ISSUERS;
use scopekey::{
    ConfigErrorKind, IssueErrorKind, Issuer, KeySet, Requirement, RequirementTemplate, Scope,
    ScopeSet, SigningKey, TokenRequest, TrustedIssuer, Verifier, VerifierConfig, VerifyErrorKind,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const OURS: &str = "https://auth.example";
const PARTNER: &str = "https://partner.example";
const AUD: &str = "https://api.example";

fn env(name: &str) -> scopekey::Environment {
    name.parse().unwrap()
}

/// A verifier trusting our issuer (key `a`, production) and a partner (key `b`, partner-prod).
fn two_issuers(a: &SigningKey, b: &SigningKey) -> Verifier {
    Verifier::new(
        KeySet::single(a.public_key().clone()),
        VerifierConfig::new(OURS, AUD, env("production"))
            .accept_audience("https://api.example.net"),
    )
    .unwrap()
    .trust_issuer(TrustedIssuer::new(
        PARTNER,
        env("partner-prod"),
        KeySet::single(b.public_key().clone()),
    ))
    .unwrap()
}

fn token(key: &SigningKey, iss: &str, environment: &str, aud: &str) -> String {
    Issuer::new(
        SigningKey::from_paserk(&key.to_paserk()).unwrap(),
        iss,
        env(environment),
    )
    .unwrap()
    .issue(&TokenRequest::new(
        "ci",
        aud,
        "projects:read".parse().unwrap(),
    ))
    .unwrap()
    .token()
    .as_str()
    .to_owned()
}

#[test]
fn each_trusted_issuer_is_accepted_with_its_own_keys_and_environment() {
    let (a, b) = (
        SigningKey::generate().unwrap(),
        SigningKey::generate().unwrap(),
    );
    let verifier = two_issuers(&a, &b);
    let ours = verifier
        .verify(&token(&a, OURS, "production", AUD))
        .unwrap();
    assert_eq!(ours.claims().issuer(), OURS);
    let partner = verifier
        .verify(&token(&b, PARTNER, "partner-prod", AUD))
        .unwrap();
    assert_eq!(partner.claims().issuer(), PARTNER);
    assert_eq!(partner.claims().environment().as_str(), "partner-prod");
    assert_eq!(verifier.issuers().collect::<Vec<_>>(), [OURS, PARTNER]);

    // The partner's token, but bound to our environment: its environment is the partner's.
    let wrong_env = verifier
        .verify(&token(&b, PARTNER, "production", AUD))
        .unwrap_err();
    assert_eq!(
        wrong_env.kind(),
        VerifyErrorKind::BadSignature,
        "{wrong_env}"
    );
}

#[test]
fn a_token_naming_one_issuer_signed_by_anothers_key_is_refused() {
    let (a, b) = (
        SigningKey::generate().unwrap(),
        SigningKey::generate().unwrap(),
    );
    let verifier = two_issuers(&a, &b);
    // Says it is ours, signed by the partner (in the partner's environment, so the signature
    // itself verifies with the partner's key).
    let forged = verifier
        .verify(&token(&b, OURS, "partner-prod", AUD))
        .unwrap_err();
    assert_eq!(forged.kind(), VerifyErrorKind::WrongIssuer, "{forged}");
    // And the other way round.
    let forged = verifier
        .verify(&token(&a, PARTNER, "production", AUD))
        .unwrap_err();
    assert_eq!(forged.kind(), VerifyErrorKind::WrongIssuer, "{forged}");
    // A third issuer's key is unknown.
    let c = SigningKey::generate().unwrap();
    let unknown = verifier
        .verify(&token(&c, OURS, "production", AUD))
        .unwrap_err();
    assert_eq!(unknown.kind(), VerifyErrorKind::UnknownKey);
}

#[test]
fn a_key_two_issuers_share_signs_for_each_of_them() {
    let shared = SigningKey::generate().unwrap();
    let keys = KeySet::single(shared.public_key().clone());
    let verifier = Verifier::new(
        keys.clone(),
        VerifierConfig::new(OURS, AUD, env("production")),
    )
    .unwrap()
    .trust_issuer(TrustedIssuer::new(PARTNER, env("production"), keys))
    .unwrap();
    for iss in [OURS, PARTNER] {
        let grant = verifier
            .verify(&token(&shared, iss, "production", AUD))
            .unwrap();
        assert_eq!(grant.claims().issuer(), iss);
    }
    let stranger = verifier
        .verify(&token(
            &shared,
            "https://stranger.example",
            "production",
            AUD,
        ))
        .unwrap_err();
    assert_eq!(stranger.kind(), VerifyErrorKind::WrongIssuer);
}

#[test]
fn every_listed_audience_is_accepted_and_no_other() {
    let (a, b) = (
        SigningKey::generate().unwrap(),
        SigningKey::generate().unwrap(),
    );
    let verifier = two_issuers(&a, &b);
    assert_eq!(
        verifier.audiences().collect::<Vec<_>>(),
        [AUD, "https://api.example.net"]
    );
    let second = verifier
        .verify(&token(
            &b,
            PARTNER,
            "partner-prod",
            "https://api.example.net",
        ))
        .unwrap();
    assert_eq!(second.claims().audience(), "https://api.example.net");
    let other = verifier
        .verify(&token(&a, OURS, "production", "https://other.example"))
        .unwrap_err();
    assert_eq!(other.kind(), VerifyErrorKind::WrongAudience);
}

#[test]
fn a_cached_grant_of_a_trusted_issuer_goes_when_its_key_does() {
    let (a, b) = (
        SigningKey::generate().unwrap(),
        SigningKey::generate().unwrap(),
    );
    let ring = Arc::new(scopekey::KeyRing::new(KeySet::single(
        b.public_key().clone(),
    )));
    let verifier = Verifier::new(
        KeySet::single(a.public_key().clone()),
        VerifierConfig::new(OURS, AUD, env("production")),
    )
    .unwrap()
    .trust_issuer(TrustedIssuer::with_key_ring(
        PARTNER,
        env("partner-prod"),
        ring.clone(),
    ))
    .unwrap();
    let cache = GrantCache::default();
    let partner = token(&b, PARTNER, "partner-prod", AUD);
    verifier.verify_cached(&partner, &cache).unwrap();
    assert_eq!(cache.len(), 1, "the partner's grant is cached");
    verifier.verify_cached(&partner, &cache).unwrap();
    assert_eq!(cache.len(), 1);
    ring.replace(KeySet::new());
    let gone = verifier.verify_cached(&partner, &cache).unwrap_err();
    assert_eq!(gone.kind(), VerifyErrorKind::UnknownKey);
}

#[test]
fn trusted_issuers_are_checked_and_bounded() {
    let a = SigningKey::generate().unwrap();
    let keys = KeySet::single(a.public_key().clone());
    let base = || {
        Verifier::new(
            keys.clone(),
            VerifierConfig::new(OURS, AUD, env("production")),
        )
        .unwrap()
    };
    let again = base()
        .trust_issuer(TrustedIssuer::new(OURS, env("production"), keys.clone()))
        .unwrap_err();
    assert_eq!(again.kind(), ConfigErrorKind::DuplicateIssuer);
    let bad = base()
        .trust_issuer(TrustedIssuer::new("", env("production"), keys.clone()))
        .unwrap_err();
    assert_eq!(bad.kind(), ConfigErrorKind::InvalidIssuer);
    let mut verifier = base();
    for n in 1..MAX_TRUSTED_ISSUERS {
        verifier = verifier
            .trust_issuer(TrustedIssuer::new(
                format!("https://i{n}.example"),
                env("production"),
                keys.clone(),
            ))
            .unwrap();
    }
    let over = verifier
        .trust_issuer(TrustedIssuer::new(
            "https://one-more.example",
            env("production"),
            keys.clone(),
        ))
        .unwrap_err();
    assert_eq!(over.kind(), ConfigErrorKind::TooMany);
    let mut config = VerifierConfig::new(OURS, AUD, env("production"));
    for n in 0..scopekey::trust::MAX_AUDIENCES {
        config = config.accept_audience(format!("https://a{n}.example"));
    }
    assert_eq!(
        Verifier::new(keys.clone(), config).unwrap_err().kind(),
        ConfigErrorKind::TooMany
    );
    let empty = VerifierConfig::new(OURS, AUD, env("production")).accept_audience("");
    assert_eq!(
        Verifier::new(keys, empty).unwrap_err().kind(),
        ConfigErrorKind::InvalidAudience
    );
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Tenant {
    tenant: String,
    plan: u8,
    regions: Vec<String>,
}

fn verifier_and_issuer() -> (Verifier, Issuer) {
    let key = SigningKey::generate().unwrap();
    let verifier = Verifier::new(
        KeySet::single(key.public_key().clone()),
        VerifierConfig::new(OURS, AUD, env("production")),
    )
    .unwrap();
    (verifier, Issuer::new(key, OURS, env("production")).unwrap())
}

fn request() -> TokenRequest {
    TokenRequest::new("billing-ui", AUD, "invoices:read".parse().unwrap())
}

#[test]
fn application_claims_come_back_typed_and_a_mismatch_is_refused() {
    let (verifier, issuer) = verifier_and_issuer();
    let tenant = Tenant {
        tenant: "acme".into(),
        plan: 2,
        regions: vec!["eu".into(), "us".into()],
    };
    let minted = issuer
        .issue(&request().custom_claims(&tenant).unwrap())
        .unwrap();
    let cache = GrantCache::default();
    for _ in 0..2 {
        // Uncached, then from the cache.
        let grant = verifier
            .verify_cached(minted.token().as_str(), &cache)
            .unwrap();
        assert_eq!(grant.custom_claims::<Tenant>().unwrap(), tenant);
    }
    let grant = verifier.verify(minted.token().as_str()).unwrap();

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct WrongType {
        plan: String,
    }
    let e = grant.custom_claims::<WrongType>().unwrap_err();
    assert_eq!(e.kind(), CustomClaimsErrorKind::Mismatch, "{e}");
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct MissingField {
        tenant: String,
        seats: u32,
    }
    let e = grant.custom_claims::<MissingField>().unwrap_err();
    assert_eq!(e.kind(), CustomClaimsErrorKind::Mismatch);
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        tenant: String,
    }
    assert_eq!(
        grant.custom_claims::<Strict>().unwrap_err().kind(),
        CustomClaimsErrorKind::Mismatch
    );

    // A token without application claims: missing, never a default.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    #[allow(dead_code)]
    struct Defaulting {
        tenant: String,
    }
    let plain = verifier
        .verify(issuer.issue(&request()).unwrap().token().as_str())
        .unwrap();
    assert_eq!(
        plain.custom_claims::<Defaulting>().unwrap_err().kind(),
        CustomClaimsErrorKind::Missing
    );
}

#[test]
fn application_claims_cannot_shadow_registered_ones() {
    let (verifier, issuer) = verifier_and_issuer();
    let sneaky = serde_json::json!({"sub": "root", "scope": "*:*", "exp": "9999-01-01T00:00:00Z", "uses": 1});
    let minted = issuer
        .issue(&request().custom_claims(&sneaky).unwrap())
        .unwrap();
    let grant = verifier.verify(minted.token().as_str()).unwrap();
    assert_eq!(grant.subject(), "billing-ui");
    assert_eq!(grant.claims().scopes().to_string(), "invoices:read");
    assert_eq!(grant.claims().max_uses(), None);
    assert!(
        grant.claims().expires_at() < time::OffsetDateTime::now_utc() + time::Duration::hours(2)
    );
    assert_eq!(grant.claims().other()["app"], sneaky);
    assert_eq!(grant.custom_claims::<serde_json::Value>().unwrap(), sneaky);
}

#[test]
fn application_claims_are_bounded_when_minting() {
    let big = "x".repeat(MAX_CUSTOM_CLAIMS_LEN);
    let e = request().custom_claims(&big).unwrap_err();
    assert_eq!(e.kind(), IssueErrorKind::InvalidClaim, "{e}");
    assert!(e.to_string().contains("limit"), "{e}");
    let e = request().custom_claims(&()).unwrap_err();
    assert_eq!(e.kind(), IssueErrorKind::InvalidClaim);
    let mut deep = serde_json::json!(1);
    for _ in 0..20 {
        deep = serde_json::json!([deep]);
    }
    let e = request().custom_claims(&deep).unwrap_err();
    assert_eq!(e.kind(), IssueErrorKind::InvalidClaim, "{e}");
    // Just under the limit mints and verifies.
    let (verifier, issuer) = verifier_and_issuer();
    let fits = "y".repeat(MAX_CUSTOM_CLAIMS_LEN - 2);
    let minted = issuer
        .issue(&request().custom_claims(&fits).unwrap())
        .unwrap();
    let grant = verifier.verify(minted.token().as_str()).unwrap();
    assert_eq!(grant.custom_claims::<String>().unwrap(), fits);
}

fn scope(s: &str) -> Scope {
    s.parse().unwrap()
}

fn granted(s: &str) -> ScopeSet {
    s.parse().unwrap()
}

#[test]
fn composed_requirements_decide_over_scopes_alone() {
    let both = Requirement::all_of([scope("projects/42:read"), scope("reports:read")]).unwrap();
    let either = Requirement::any_of([
        scope("projects/42:admin"),
        scope("owners/projects/42:delete"),
    ])
    .unwrap();
    let nested = Requirement::all_of([both.clone(), either.clone()]).unwrap();
    assert!(both.allows(&granted("projects:read reports:read")));
    assert!(!both.allows(&granted("projects:read")));
    assert!(!both.allows(&granted("reports:read")));
    assert!(either.allows(&granted("projects/42:admin")));
    assert!(either.allows(&granted("owners:delete")));
    assert!(!either.allows(&granted("projects/42:delete owners/projects/7:delete")));
    assert!(nested.allows(&granted("projects:read reports:read owners:delete")));
    assert!(!nested.allows(&granted("projects:read reports:read")));
    assert_eq!(
        nested.to_string(),
        "all(all(projects/42:read reports:read) any(projects/42:admin owners/projects/42:delete))"
    );
    assert_eq!(nested.scopes().count(), 4);

    let none: [Scope; 0] = [];
    assert_eq!(
        Requirement::all_of(none.clone()).unwrap_err().kind(),
        TemplateErrorKind::Empty
    );
    assert_eq!(
        Requirement::any_of(none).unwrap_err().kind(),
        TemplateErrorKind::Empty
    );
    let many = (0..=MAX_REQUIREMENT_SCOPES).map(|n| scope(&format!("p/{n}:read")));
    assert_eq!(
        Requirement::any_of(many).unwrap_err().kind(),
        TemplateErrorKind::TooLarge
    );
    let half: Vec<Requirement> = (0..2)
        .map(|_| {
            Requirement::all_of(
                (0..MAX_REQUIREMENT_SCOPES / 2 + 1).map(|n| scope(&format!("p/{n}:read"))),
            )
            .unwrap()
        })
        .collect();
    assert_eq!(
        Requirement::all_of(half).unwrap_err().kind(),
        TemplateErrorKind::TooLarge
    );
}

#[test]
fn a_composed_requirement_records_the_decisions_it_takes() {
    let key = SigningKey::generate().unwrap();
    let sink = Arc::new(MemorySink::new());
    let verifier = Verifier::new(
        KeySet::single(key.public_key().clone()),
        VerifierConfig::new(OURS, AUD, env("production")),
    )
    .unwrap()
    .with_audit(sink.clone());
    let issuer = Issuer::new(key, OURS, env("production")).unwrap();
    let minted = issuer
        .issue(&TokenRequest::new(
            "ci",
            AUD,
            "reports:read".parse().unwrap(),
        ))
        .unwrap();
    let grant = verifier.verify(minted.token().as_str()).unwrap();
    let decisions = || {
        sink.events()
            .into_iter()
            .filter_map(|e| match e.kind {
                AuditKind::Authorized { resource, action } => Some(format!("+{resource}:{action}")),
                AuditKind::Denied { resource, action } => Some(format!("-{resource}:{action}")),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let either = Requirement::any_of([scope("projects/42:read"), scope("reports/7:read")]).unwrap();
    either.authorize(&grant).unwrap();
    assert_eq!(decisions(), ["+reports/7:read"]);
    let neither = Requirement::any_of([scope("projects/42:read"), scope("admin:read")]).unwrap();
    let denied = neither.authorize(&grant).unwrap_err();
    assert_eq!(denied.required_scope().to_string(), "projects/42:read");
    assert_eq!(decisions(), ["+reports/7:read", "-projects/42:read"]);
    let both = Requirement::all_of([
        scope("reports/7:read"),
        scope("projects/42:read"),
        scope("admin:read"),
    ])
    .unwrap();
    assert_eq!(
        both.authorize(&grant)
            .unwrap_err()
            .required_scope()
            .to_string(),
        "projects/42:read"
    );
    assert_eq!(
        decisions(),
        [
            "+reports/7:read",
            "-projects/42:read",
            "+reports/7:read",
            "-projects/42:read"
        ]
    );
}

#[test]
fn templates_take_ids_from_the_request_and_refuse_malformed_ones() {
    let template: RequirementTemplate = "orgs/{org}/projects/{id}:write".parse().unwrap();
    assert_eq!(template.to_string(), "orgs/{org}/projects/{id}:write");
    let params = |org: &'static str, id: &'static str| {
        move |name: &str| match name {
            "org" => Some(org),
            "id" => Some(id),
            _ => None,
        }
    };
    let resolved = template.resolve(params("acme", "42")).unwrap();
    assert_eq!(resolved.to_string(), "orgs/acme/projects/42:write");
    assert!(resolved.allows(&granted("orgs/acme/projects:write")));
    assert!(!resolved.allows(&granted("orgs/acme/projects/43:write")));
    for bad in [
        "",
        ".",
        "..",
        "*",
        "42/../7",
        "42:read",
        "4 2",
        "é",
        &"9".repeat(200),
    ] {
        let bad: &'static str = Box::leak(bad.to_owned().into_boxed_str());
        let e = template.resolve(params("acme", bad)).unwrap_err();
        assert_eq!(e.kind(), TemplateErrorKind::InvalidValue, "{bad:?}: {e}");
    }
    let e = template.resolve(|_| None).unwrap_err();
    assert_eq!(e.kind(), TemplateErrorKind::UnknownParameter);

    let composed = RequirementTemplate::any_of([
        "projects/{id}:admin".parse().unwrap(),
        RequirementTemplate::all_of([
            "projects/{id}:write".parse().unwrap(),
            "audit:write".parse().unwrap(),
        ])
        .unwrap(),
    ])
    .unwrap();
    let r = composed.resolve(|_| Some("7")).unwrap();
    assert_eq!(
        r.to_string(),
        "any(projects/7:admin all(projects/7:write audit:write))"
    );
    assert!(r.allows(&granted("projects:write audit:write")));
    assert!(!r.allows(&granted("projects:write")));

    for bad in [
        "projects/{id}",
        "projects/{}:read",
        "projects/{id:read",
        "projects/{i-d}:read",
        "/projects:read",
        "projects/{id}:",
        "projects/a b:read",
        ":read",
    ] {
        let e = bad.parse::<RequirementTemplate>().unwrap_err();
        assert_eq!(e.kind(), TemplateErrorKind::InvalidTemplate, "{bad}: {e}");
    }
}

/// Two issuers in one environment: the environment binding cannot tell them apart, so only the
/// issuer check stops a token naming one issuer signed with the other's key.
#[test]
fn issuers_sharing_an_environment_are_told_apart_by_their_keys() {
    let (a, b) = (
        SigningKey::generate().unwrap(),
        SigningKey::generate().unwrap(),
    );
    let verifier = Verifier::new(
        KeySet::single(a.public_key().clone()),
        VerifierConfig::new(OURS, AUD, env("production")),
    )
    .unwrap()
    .trust_issuer(TrustedIssuer::new(
        PARTNER,
        env("production"),
        KeySet::single(b.public_key().clone()),
    ))
    .unwrap();
    verifier
        .verify(&token(&b, PARTNER, "production", AUD))
        .unwrap();
    let forged = verifier
        .verify(&token(&b, OURS, "production", AUD))
        .unwrap_err();
    assert_eq!(forged.kind(), VerifyErrorKind::WrongIssuer, "{forged}");
    let forged = verifier
        .verify(&token(&a, PARTNER, "production", AUD))
        .unwrap_err();
    assert_eq!(forged.kind(), VerifyErrorKind::WrongIssuer, "{forged}");
}

/// JWTs carry their environment as a claim, not in the signature: the issuer check is what
/// refuses a partner's JWT naming our issuer.
#[cfg(feature = "jwt")]
#[test]
fn a_jwt_naming_another_trusted_issuer_is_refused() {
    let (a, b) = (
        SigningKey::generate().unwrap(),
        SigningKey::generate().unwrap(),
    );
    let verifier = Verifier::new(
        KeySet::single(a.public_key().clone()),
        VerifierConfig::new(OURS, AUD, env("production")).accept_jwt(true),
    )
    .unwrap()
    .trust_issuer(TrustedIssuer::new(
        PARTNER,
        env("partner-prod"),
        KeySet::single(b.public_key().clone()),
    ))
    .unwrap();
    let jwt = |key: &SigningKey, iss: &str, environment: &str| {
        Issuer::new(
            SigningKey::from_paserk(&key.to_paserk()).unwrap(),
            iss,
            env(environment),
        )
        .unwrap()
        .with_format(scopekey::TokenFormat::Jwt)
        .issue(&TokenRequest::new(
            "ci",
            AUD,
            "projects:read".parse().unwrap(),
        ))
        .unwrap()
        .token()
        .as_str()
        .to_owned()
    };
    assert_eq!(
        verifier
            .verify(&jwt(&b, PARTNER, "partner-prod"))
            .unwrap()
            .claims()
            .issuer(),
        PARTNER
    );
    assert_eq!(
        verifier
            .verify(&jwt(&a, OURS, "production"))
            .unwrap()
            .claims()
            .issuer(),
        OURS
    );
    for forged in [
        jwt(&b, OURS, "production"),
        jwt(&b, OURS, "partner-prod"),
        jwt(&a, PARTNER, "partner-prod"),
    ] {
        let e = verifier.verify(&forged).unwrap_err();
        assert_eq!(e.kind(), VerifyErrorKind::WrongIssuer, "{e}");
    }
}

#[test]
fn a_partner_is_trusted_with_its_ceiling_only() {
    let (a, b) = (
        SigningKey::generate().unwrap(),
        SigningKey::generate().unwrap(),
    );
    let verifier = Verifier::new(
        KeySet::single(a.public_key().clone()),
        VerifierConfig::new(OURS, AUD, env("production")),
    )
    .unwrap()
    .trust_issuer(
        TrustedIssuer::new(
            PARTNER,
            env("partner-prod"),
            KeySet::single(b.public_key().clone()),
        )
        .scope_ceiling("partners/acme:read".parse().unwrap()),
    )
    .unwrap();
    let partner = Issuer::new(b, PARTNER, env("partner-prod")).unwrap();
    let mint = |scopes: &str| {
        partner
            .issue(
                &TokenRequest::new("acme-sync", AUD, scopes.parse().unwrap())
                    .allow_broad()
                    .escalate(),
            )
            .unwrap()
            .token()
            .as_str()
            .to_owned()
    };
    verifier.verify(&mint("partners/acme/orders:read")).unwrap();
    for beyond in [
        "tokens:revoke",
        "*:*",
        "partners/acme:write",
        "partners:read",
    ] {
        let e = verifier.verify(&mint(beyond)).unwrap_err();
        assert_eq!(e.kind(), VerifyErrorKind::WrongIssuer, "{beyond}: {e}");
        assert!(
            e.to_string().contains("beyond what this service trusts"),
            "{e}"
        );
    }
    // Our own issuer has no ceiling.
    let ours = Issuer::new(a, OURS, env("production")).unwrap();
    let t = ours
        .issue(&TokenRequest::new("ops", AUD, "tokens:revoke".parse().unwrap()).escalate())
        .unwrap();
    verifier.verify(t.token().as_str()).unwrap();
}

#[test]
fn application_claims_survive_refresh_rotation() {
    use scopekey::refresh::{MemoryFamilies, Refresher};
    use scopekey::revocation::RevocationList;
    let key = SigningKey::generate().unwrap();
    let keys = KeySet::single(key.public_key().clone());
    let verifier = Verifier::new(
        keys.clone(),
        VerifierConfig::new(OURS, AUD, env("production")),
    )
    .unwrap();
    let issuer = Issuer::new(key, OURS, env("production")).unwrap();
    let refresher = Refresher::new(
        issuer,
        AUD,
        keys,
        Arc::new(RevocationList::new()),
        Arc::new(MemoryFamilies::new()),
    )
    .unwrap();
    let tenant = Tenant {
        tenant: "acme".into(),
        plan: 3,
        regions: vec![],
    };
    let first = refresher
        .start(&request().custom_claims(&tenant).unwrap())
        .unwrap();
    let second = refresher
        .exchange(first.refresh().token().as_str(), None)
        .unwrap();
    let third = refresher
        .exchange(second.refresh().token().as_str(), None)
        .unwrap();
    for pair in [&first, &second, &third] {
        let grant = verifier.verify(pair.access().token().as_str()).unwrap();
        assert_eq!(grant.custom_claims::<Tenant>().unwrap(), tenant);
    }
}

#[test]
fn requirements_are_bounded_in_depth_and_templates_in_segments() {
    let mut r = Requirement::from(scope("a:read"));
    for _ in 0..scopekey::requirement::MAX_REQUIREMENT_DEPTH - 1 {
        r = Requirement::all_of([r]).unwrap();
    }
    let r = Requirement::all_of([r]).unwrap();
    assert_eq!(
        Requirement::any_of([r]).unwrap_err().kind(),
        TemplateErrorKind::TooLarge
    );
    let long = format!(
        "{}:read",
        vec!["{id}"; scopekey::MAX_SEGMENTS + 1].join("/")
    );
    assert_eq!(
        long.parse::<RequirementTemplate>().unwrap_err().kind(),
        TemplateErrorKind::InvalidTemplate
    );
}

#[test]
fn a_consumers_networks_limit_every_token_it_gets() {
    use scopekey::Network;
    use scopekey::consumer::Consumer;
    let (verifier, issuer) = verifier_and_issuer();
    let consumer = Consumer::new(
        "ci",
        "team",
        "builds",
        env("production"),
        "projects:read".parse().unwrap(),
    )
    .unwrap()
    .with_networks([
        "10.0.0.0/8".parse::<Network>().unwrap(),
        "2001:db8::/32".parse().unwrap(),
    ])
    .unwrap();
    let ask = |nets: &[&str]| {
        TokenRequest::new("ci", AUD, "projects:read".parse().unwrap())
            .allow_networks(nets.iter().map(|n| n.parse::<Network>().unwrap()))
    };
    // No networks asked: the consumer's.
    let minted = issuer.issue_for(&consumer, &ask(&[])).unwrap();
    assert_eq!(
        minted.claims().other()["net"],
        serde_json::json!(["10.0.0.0/8", "2001:db8::/32"])
    );
    let t = minted.token().as_str();
    assert!(
        verifier
            .verify_from(t, None, Some("10.1.2.3".parse().unwrap()))
            .is_ok()
    );
    let outside = verifier
        .verify_from(t, None, Some("192.0.2.1".parse().unwrap()))
        .unwrap_err();
    assert_eq!(outside.kind(), VerifyErrorKind::NetworkNotAllowed);
    assert_eq!(
        verifier.verify(t).unwrap_err().kind(),
        VerifyErrorKind::NetworkNotAllowed
    );
    // Narrower: allowed; wider or elsewhere: refused.
    let narrow = issuer
        .issue_for(&consumer, &ask(&["10.1.0.0/16", "2001:db8:1::/48"]))
        .unwrap();
    assert_eq!(
        narrow.claims().other()["net"],
        serde_json::json!(["10.1.0.0/16", "2001:db8:1::/48"])
    );
    for wide in [
        &["0.0.0.0/0"][..],
        &["10.0.0.0/7"],
        &["192.0.2.0/24"],
        &["10.1.0.0/16", "2001:db9::/32"],
        &["::ffff:10.0.0.0/104"],
    ] {
        let e = issuer.issue_for(&consumer, &ask(wide)).unwrap_err();
        assert_eq!(e.kind(), IssueErrorKind::BeyondCeiling, "{wide:?}: {e}");
    }
    let many =
        (0..=scopekey::MAX_NETWORKS).map(|n| format!("10.0.{n}.0/24").parse::<Network>().unwrap());
    let e = Consumer::new("x", "t", "p", env("production"), "a:read".parse().unwrap())
        .unwrap()
        .with_networks(many)
        .unwrap_err();
    assert_eq!(
        e.kind(),
        scopekey::consumer::DefinitionErrorKind::TooManyNetworks
    );
}
