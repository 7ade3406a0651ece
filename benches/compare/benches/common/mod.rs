//! What both benchmarks of this package measure: the same claims, issuer, verifiers and JWT.
#![allow(dead_code, clippy::unwrap_used)] // each benchmark uses its own part; fixtures may panic

use scopekey::cache::GrantCache;
use scopekey::revocation::{RevocationList, RevocationTarget};
use scopekey::{
    Action, Issuer, KeySet, Resource, SigningKey, TokenId, TokenRequest, Verifier, VerifierConfig,
};
use std::sync::Arc;
use std::time::Duration;

pub(crate) const ISS: &str = "https://auth.example";
pub(crate) const AUD: &str = "https://api.example";
pub(crate) const ENV: &str = "production";
pub(crate) const SUB: &str = "ci-deploy";
pub(crate) const SCOPES: &str = "projects:read comments:write billing/invoices:read users:read \
                      teams:read deployments:read builds:write artifacts:read";
pub(crate) const SEED: [u8; 32] = [7; 32];

/// The lifetime of every token the benchmarks mint (scopekey's, the JWTs and the biscuits),
/// and the longest the verifiers accept: ten years, so that no run, however long, outlives its
/// fixtures. The verifiers still read the system clock, as in production; the lifetime changes
/// no byte count (`exp` keeps its length).
pub(crate) const LIFETIME: Duration = Duration::from_secs(10 * 365 * 86_400);

/// The verifiers' configuration: the defaults, with [`LIFETIME`] as the maximum lifetime.
pub(crate) fn config() -> VerifierConfig {
    VerifierConfig::new(ISS, AUD, ENV.parse().unwrap()).max_lifetime(LIFETIME)
}

/// How many distinct signatures every verifying benchmark cycles through. `verify_strict` is
/// variable-time in the signature's scalars: one signature is up to about 3% faster or slower
/// than the average, so a benchmark of one fixed signature measures that draw as much as the code.
/// The floor cycles through as many messages as the token benchmarks through tokens.
pub(crate) const POOL: usize = 64;

/// `POOL` distinct messages of `len` bytes, each with its signature by the `SEED` key.
pub(crate) fn signed_messages(len: usize) -> Vec<(Vec<u8>, ed25519_dalek::Signature)> {
    let key = ed25519_dalek::SigningKey::from_bytes(&SEED);
    (0..POOL)
        .map(|i| {
            let mut message = vec![0x5a_u8; len];
            message[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let signature = ed25519_dalek::Signer::sign(&key, &message);
            (message, signature)
        })
        .collect()
}

/// Cycles through a pool: `next(&mut i, &pool)` returns the next element.
pub(crate) fn next<'p, T>(at: &mut usize, pool: &'p [T]) -> &'p T {
    *at = (*at + 1) % pool.len();
    &pool[*at]
}

/// How many stack depths every signature-bound benchmark rotates through. Where the stack
/// falls moves `verify_strict` by several percent on this project's machines (see
/// `steady -- placement`), and each benchmark closure sits at its own depth: without rotation,
/// each benchmark in a run draws a fast or a slow placement of its own. A frame of [`under`]
/// is 64 bytes (a cache line) as compiled here, so 64 depths step the stack through one 4 KiB
/// page, evenly: every benchmark averages over the same placements.
pub(crate) const DEPTHS: usize = 64;

/// Calls `f` under `frames` extra stack frames of 64 bytes each (the padding, the return
/// address and saved registers, as compiled here; [`frame_bytes`] measures it).
#[inline(never)]
pub(crate) fn under(frames: usize, f: &mut dyn FnMut()) {
    let pad = [frames as u8; 32];
    std::hint::black_box(&pad);
    if frames == 0 {
        f()
    } else {
        under(frames - 1, f)
    }
    std::hint::black_box(&pad);
}

/// The bytes one frame of [`under`] takes, as compiled: printed by the benchmarks, so the
/// claim that [`DEPTHS`] depths span 4 KiB is checked where it is used.
pub(crate) fn frame_bytes() -> usize {
    let mut at = [0usize; 2];
    for (frames, at) in at.iter_mut().enumerate() {
        under(frames, &mut || {
            let here = 0u8;
            *at = std::hint::black_box(&here) as *const u8 as usize;
        });
    }
    at[0].abs_diff(at[1])
}

/// Calls `f` under the next of [`DEPTHS`] stack depths (`at` keeps the place), so a benchmark
/// averages over placements rather than drawing one.
pub(crate) fn rotating(at: &mut usize, mut f: impl FnMut()) {
    *at = (*at + 1) % DEPTHS;
    under(*at, &mut f);
}

pub(crate) struct Fixture {
    pub(crate) issuer: Issuer,
    pub(crate) request: TokenRequest,
    /// The first of `tokens`.
    pub(crate) token: String,
    /// `POOL` tokens of the same request, each with its own id and signature.
    pub(crate) tokens: Vec<String>,
    pub(crate) cold: Verifier,
    pub(crate) cached: Verifier,
    pub(crate) resource: Resource,
    pub(crate) action: Action,
}

pub(crate) fn fixture() -> Fixture {
    let key = SigningKey::from_seed(&SEED).unwrap();
    let keys = KeySet::single(key.public_key().clone());
    let issuer = Issuer::new(key, ISS, ENV.parse().unwrap())
        .unwrap()
        .with_max_ttl(LIFETIME);
    let request = TokenRequest::new(SUB, AUD, SCOPES.parse().unwrap())
        .ttl(LIFETIME)
        .escalate();
    let tokens: Vec<String> = (0..POOL)
        .map(|_| issuer.issue(&request).unwrap().token().as_str().to_owned())
        .collect();
    let token = tokens[0].clone();
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
        tokens,
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
    /// `POOL` tokens of the same claims, each with its own `jti` and signature.
    pub(crate) tokens: Vec<String>,
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
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k4.pid.bench".into());
    let tokens = (0..POOL)
        .map(|_| {
            let claims = JwtClaims {
                iss: ISS.into(),
                sub: SUB.into(),
                aud: AUD.into(),
                exp: now + i64::try_from(LIFETIME.as_secs()).unwrap(),
                nbf: now,
                iat: now,
                jti: TokenId::generate().unwrap().as_str().into(),
                env: ENV.into(),
                scope: SCOPES.split_whitespace().collect::<Vec<_>>().join(" "),
            };
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&pkcs8)).unwrap()
        })
        .collect();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[ISS]);
    validation.set_audience(&[AUD]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    Jwt {
        tokens,
        key: DecodingKey::from_ed_der(public.as_bytes()),
        validation,
    }
}

pub(crate) fn jwt_verify(j: &Jwt, token: &str) -> bool {
    let data = jsonwebtoken::decode::<JwtClaims>(token, &j.key, &j.validation).unwrap();
    data.claims.env == ENV && data.claims.scope.split(' ').any(|s| s == "projects:read")
}
