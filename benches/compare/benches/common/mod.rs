//! What both benchmarks of this package measure: the same claims, issuer, verifiers and JWT.
#![allow(dead_code, clippy::unwrap_used)] // each benchmark uses its own part; fixtures may panic

use scopekey::cache::GrantCache;
use scopekey::revocation::{RevocationList, RevocationTarget};
use scopekey::{
    Action, Issuer, KeySet, Resource, SigningKey, TokenId, TokenRequest, Verifier, VerifierConfig,
};
use std::sync::Arc;

pub(crate) const ISS: &str = "https://auth.example";
pub(crate) const AUD: &str = "https://api.example";
pub(crate) const ENV: &str = "production";
pub(crate) const SUB: &str = "ci-deploy";
pub(crate) const SCOPES: &str = "projects:read comments:write billing/invoices:read users:read \
                      teams:read deployments:read builds:write artifacts:read";
pub(crate) const SEED: [u8; 32] = [7; 32];

pub(crate) struct Fixture {
    pub(crate) issuer: Issuer,
    pub(crate) request: TokenRequest,
    pub(crate) token: String,
    pub(crate) cold: Verifier,
    pub(crate) cached: Verifier,
    pub(crate) resource: Resource,
    pub(crate) action: Action,
}

pub(crate) fn fixture() -> Fixture {
    let key = SigningKey::from_seed(&SEED).unwrap();
    let keys = KeySet::single(key.public_key().clone());
    let issuer = Issuer::new(key, ISS, ENV.parse().unwrap()).unwrap();
    let request = TokenRequest::new(SUB, AUD, SCOPES.parse().unwrap());
    let token = issuer.issue(&request).unwrap().token().as_str().to_owned();
    // A revocation list that is not empty: 1,000 other tokens revoked.
    let revocations = Arc::new(RevocationList::new());
    for _ in 0..1000 {
        scopekey::revocation::Revoker::revoke(
            revocations.as_ref(),
            RevocationTarget::Token {
                token_id: TokenId::generate().unwrap(),
                expires_at: None,
            },
            "ops",
            "bench",
        )
        .unwrap();
    }
    let config = || VerifierConfig::new(ISS, AUD, ENV.parse().unwrap());
    let cold = Verifier::new(keys.clone(), config())
        .unwrap()
        .with_revocations(revocations.clone());
    let cached = Verifier::new(keys, config())
        .unwrap()
        .with_revocations(revocations)
        .with_grant_cache(GrantCache::default());
    cached.verify(&token).unwrap();
    Fixture {
        issuer,
        request,
        token,
        cold,
        cached,
        resource: Resource::from_segments(["projects", "42"]).unwrap(),
        action: Action::read(),
    }
}

pub(crate) fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

// ---------------------------------------------------------------------------------------------
// Peers (bench-only dependencies)
// ---------------------------------------------------------------------------------------------

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct JwtClaims {
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) aud: String,
    pub(crate) exp: i64,
    pub(crate) nbf: i64,
    pub(crate) iat: i64,
    pub(crate) jti: String,
    pub(crate) env: String,
    pub(crate) scope: String,
}

pub(crate) struct Jwt {
    pub(crate) token: String,
    pub(crate) key: jsonwebtoken::DecodingKey,
    pub(crate) validation: jsonwebtoken::Validation,
}

pub(crate) fn jwt() -> Jwt {
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
    // PKCS#8 v1 wrapping of the Ed25519 seed (RFC 8410).
    let mut pkcs8 = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    pkcs8.extend_from_slice(&SEED);
    let public = ed25519_dalek::SigningKey::from_bytes(&SEED).verifying_key();
    let now = unix_now();
    let claims = JwtClaims {
        iss: ISS.into(),
        sub: SUB.into(),
        aud: AUD.into(),
        exp: now + 900,
        nbf: now,
        iat: now,
        jti: TokenId::generate().unwrap().as_str().into(),
        env: ENV.into(),
        scope: SCOPES.split_whitespace().collect::<Vec<_>>().join(" "),
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k4.pid.bench".into());
    let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&pkcs8)).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[ISS]);
    validation.set_audience(&[AUD]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    Jwt {
        token,
        key: DecodingKey::from_ed_der(public.as_bytes()),
        validation,
    }
}

pub(crate) fn jwt_verify(j: &Jwt) -> bool {
    let data = jsonwebtoken::decode::<JwtClaims>(&j.token, &j.key, &j.validation).unwrap();
    data.claims.env == ENV && data.claims.scope.split(' ').any(|s| s == "projects:read")
}
