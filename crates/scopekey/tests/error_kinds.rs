//! Every public error says what went wrong through a `kind()` a caller can match.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scopekey::consumer::{Consumer, DefinitionErrorKind, RoleErrorKind, Roles};
use scopekey::refresh::{MemoryFamilies, RefreshFamilies};
use scopekey::{
    BackendErrorKind, ConfigErrorKind, DenyReason, Environment, FamilyId, Grant, InvalidIdKind,
    KeySet, SigningKey, TokenFormat, TokenId, UnknownFormatKind, Verifier, VerifierConfig,
};
use std::time::Duration;

#[test]
fn configuration_errors_name_the_setting() {
    let keys = KeySet::single(SigningKey::generate().unwrap().public_key().clone());
    let config = |iss: &str, aud: &str| VerifierConfig::new(iss, aud, "prod".parse().unwrap());
    let kind = |c: VerifierConfig| Verifier::new(keys.clone(), c).unwrap_err().kind();
    assert_eq!(kind(config("", "a")), ConfigErrorKind::InvalidIssuer);
    assert_eq!(
        kind(config("i", "a\u{7}")),
        ConfigErrorKind::InvalidAudience
    );
    assert_eq!(
        kind(config("i", "a").leeway(Duration::from_secs(3600))),
        ConfigErrorKind::LeewayTooLarge
    );
    assert_eq!(
        kind(config("i", "a").max_lifetime(Duration::ZERO)),
        ConfigErrorKind::LifetimeTooShort
    );
}

#[test]
fn id_and_format_errors_say_which() {
    assert_eq!(
        "pro duction".parse::<Environment>().unwrap_err().kind(),
        InvalidIdKind::Environment
    );
    assert_eq!(
        "a b".parse::<TokenId>().unwrap_err().kind(),
        InvalidIdKind::TokenId
    );
    assert_eq!(
        "a b".parse::<FamilyId>().unwrap_err().kind(),
        InvalidIdKind::FamilyId
    );
    assert_eq!(
        "cbor".parse::<TokenFormat>().unwrap_err().kind(),
        UnknownFormatKind::Unknown
    );
}

#[test]
fn consumer_and_role_errors_say_why() {
    let e = Consumer::new(
        "ci",
        "",
        "deploys",
        "prod".parse().unwrap(),
        "a:read".parse().unwrap(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), DefinitionErrorKind::InvalidText);
    assert_eq!(
        Roles::from_toml("roles.toml", "[roles]\n\"Bad Name\" = \"a:read\"\n")
            .unwrap_err()
            .kind(),
        RoleErrorKind::InvalidName
    );
    assert_eq!(
        Roles::from_toml("roles.toml", "[roles]\nreader = \"a:read a:read\"\n")
            .unwrap_err()
            .kind(),
        RoleErrorKind::InvalidScopes
    );
    assert_eq!(
        Roles::from_toml("roles.toml", "[roles\n")
            .unwrap_err()
            .kind(),
        RoleErrorKind::Syntax
    );
    assert_eq!(
        Roles::default()
            .expand(["nobody"], false)
            .unwrap_err()
            .kind(),
        RoleErrorKind::UnknownRole
    );
}

#[test]
fn a_refresh_family_id_in_use_is_a_conflict() {
    let families = MemoryFamilies::new();
    let (family, first) = (FamilyId::generate().unwrap(), TokenId::generate().unwrap());
    let now = time::OffsetDateTime::now_utc();
    families.begin(&family, &first, now, now).unwrap();
    let e = families.begin(&family, &first, now, now).unwrap_err();
    assert_eq!(e.kind(), BackendErrorKind::Conflict);
}

#[test]
fn a_denied_action_says_why() {
    let grant = Grant::for_tests("ci", "projects:read".parse().unwrap());
    let denied = grant
        .authorize(&"projects/1".parse().unwrap(), &"write".parse().unwrap())
        .unwrap_err();
    assert_eq!(denied.kind(), DenyReason::MissingScope);
}

#[cfg(feature = "jwt")]
#[test]
fn jwks_errors_say_why() {
    use scopekey::jwks::JwksErrorKind;
    let kind = |text: &str| KeySet::from_jwks(text).unwrap_err().kind();
    assert_eq!(kind("{}"), JwksErrorKind::Malformed);
    assert_eq!(
        kind(r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AA","d":"AA"}]}"#),
        JwksErrorKind::PrivateKeyMaterial
    );
    assert_eq!(
        kind(r#"{"keys":[{"kty":"RSA","n":"AA","e":"AQAB"}]}"#),
        JwksErrorKind::UnsupportedKey
    );
}
