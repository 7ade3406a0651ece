//! scopekey against the raw signature and peer token libraries, in one run.
//!
//! `cargo bench --bench compare` from the workspace root. Every library verifies the same
//! claims: 8 scopes, `iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti` and `env`, under Ed25519.
//! Every verifying benchmark, the floor included, cycles through `common::POOL` signatures
//! (tokens with their own `jti`, or distinct 250-byte messages), because `verify_strict` costs
//! more or less depending on the signature: one fixed signature measures its own luck. And
//! every benchmark bound by a signature, the floors included, rotates through
//! `common::DEPTHS` stack depths, because where the stack falls moves the curve arithmetic by
//! several percent: one fixed depth per benchmark measures its placement's luck.
//! Results: `target/criterion/<group>/<id>/new/estimates.json`; `docs/performance.md` has
//! the table.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use scopekey::cache::GrantCache;
use scopekey::revocation::{RevocationCheck, RevocationList, RevocationTarget, TokenFacts};
use scopekey::{Action, KeySet, Resource, ScopeSet, SigningKey, TokenId, TokenType, Verifier};
use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::*;

struct Paseto {
    tokens: Vec<String>,
    key: pasetors::keys::AsymmetricPublicKey<pasetors::version4::V4>,
    footer: pasetors::footer::Footer,
    implicit: Vec<u8>,
    rules: pasetors::claims::ClaimsValidationRules,
}

/// pasetors verifies the very token scopekey minted (same claims, footer and implicit
/// assertion), then reads the environment and scope claims.
fn paseto(f: &Fixture) -> Paseto {
    let key = SigningKey::from_seed(&SEED).unwrap();
    let public = pasetors::keys::AsymmetricPublicKey::from(key.public_key().as_bytes()).unwrap();
    let mut footer = pasetors::footer::Footer::new();
    let footer_b64 = f.token.rsplit('.').next().unwrap();
    let footer_json = base64::Engine::decode(&URL_SAFE_NO_PAD, footer_b64).unwrap();
    footer.parse_bytes(&footer_json).unwrap();
    let mut rules = pasetors::claims::ClaimsValidationRules::new();
    rules.validate_issuer_with(ISS);
    rules.validate_audience_with(AUD);
    Paseto {
        tokens: f.tokens.clone(),
        key: public,
        footer,
        implicit: scopekey::danger::paseto::implicit_assertion(
            &ENV.parse().unwrap(),
            TokenType::Access,
        ),
        rules,
    }
}

fn paseto_verify(p: &Paseto, token: &str) -> bool {
    use pasetors::token::UntrustedToken;
    use pasetors::{Public, public, version4::V4};
    let untrusted = UntrustedToken::<Public, V4>::try_from(token).unwrap();
    let trusted = public::verify(
        &p.key,
        &untrusted,
        &p.rules,
        Some(&p.footer),
        Some(&p.implicit),
    )
    .unwrap();
    let claims = trusted.payload_claims().unwrap();
    claims.get_claim("env").and_then(|v| v.as_str()) == Some(ENV)
        && claims
            .get_claim("scope")
            .and_then(|v| v.as_str())
            .is_some_and(|s| s.split(' ').any(|s| s == "projects:read"))
}

struct Biscuit {
    tokens: Vec<String>,
    root: biscuit_auth::PublicKey,
}

fn biscuit() -> Biscuit {
    let root = biscuit_auth::KeyPair::new();
    let exp = time::OffsetDateTime::now_utc() + LIFETIME;
    let exp = exp
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let tokens = (0..POOL)
        .map(|_| {
            let mut code = format!(
                "issuer(\"{ISS}\"); subject(\"{SUB}\"); audience(\"{AUD}\"); environment(\"{ENV}\");\n\
                 token_id(\"{}\");\ncheck if time($t), $t < {exp};\n",
                TokenId::generate().unwrap()
            );
            for scope in SCOPES.split_whitespace() {
                let (resource, action) = scope.split_once(':').unwrap();
                code.push_str(&format!("right(\"{resource}\", \"{action}\");\n"));
            }
            biscuit_auth::Biscuit::builder()
                .code(&code)
                .unwrap()
                .build(&root)
                .unwrap()
                .to_base64()
                .unwrap()
        })
        .collect();
    Biscuit {
        tokens,
        root: root.public(),
    }
}

fn biscuit_verify(b: &Biscuit, token: &str) -> bool {
    let token = biscuit_auth::Biscuit::from_base64(token, b.root).unwrap();
    let mut authorizer = biscuit_auth::AuthorizerBuilder::new()
        .code(
            "resource(\"projects\"); operation(\"read\");\n\
             check if environment(\"production\"), audience(\"https://api.example\");\n\
             allow if resource($r), operation($o), right($r, $o);",
        )
        .unwrap()
        .time()
        .build(&token)
        .unwrap();
    authorizer.authorize().is_ok()
}

// ---------------------------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------------------------

fn verify(c: &mut Criterion) {
    println!(
        "signature-bound benchmarks rotate through {DEPTHS} stack depths of {} bytes",
        frame_bytes()
    );
    let f = fixture();
    let mut g = c.benchmark_group("verify");

    // Every verifying benchmark cycles through `POOL` signatures (see `common::POOL`).
    let public = ed25519_dalek::SigningKey::from_bytes(&SEED).verifying_key();
    let floor = signed_messages(250);
    g.bench_function("ed25519_dalek_verify_strict", |b| {
        let (mut at, mut depth) = (0, 0);
        b.iter(|| {
            let (message, signature) = next(&mut at, &floor);
            rotating(&mut depth, || {
                public
                    .verify_strict(black_box(message), black_box(signature))
                    .unwrap()
            })
        })
    });

    g.bench_function("scopekey_cold", |b| {
        let (mut at, mut depth) = (0, 0);
        b.iter(|| {
            let token = next::<String>(&mut at, &f.tokens);
            rotating(&mut depth, || {
                let grant = f.cold.verify(black_box(token)).unwrap();
                grant.authorize(&f.resource, &f.action).unwrap();
            })
        })
    });

    f.cached.verify(&f.token).unwrap();
    let stats = f.cached.grant_cache().unwrap().stats();
    assert!(
        stats.hits >= 1,
        "the cached bench runs from the cache: {stats:?}"
    );
    g.bench_function("scopekey_cached", |b| {
        b.iter(|| {
            let grant = f.cached.verify(black_box(&f.token)).unwrap();
            grant.authorize(&f.resource, &f.action).unwrap();
        })
    });

    cache_memory(&f);

    let j = jwt();
    assert!(j.tokens.iter().all(|t| jwt_verify(&j, t)));
    g.bench_function("jsonwebtoken_eddsa", |b| {
        let (mut at, mut depth) = (0, 0);
        b.iter(|| {
            let token = next::<String>(&mut at, &j.tokens);
            rotating(&mut depth, || assert!(jwt_verify(&j, black_box(token))))
        })
    });

    let p = paseto(&f);
    assert!(p.tokens.iter().all(|t| paseto_verify(&p, t)));
    g.bench_function("pasetors_v4_public", |b| {
        let (mut at, mut depth) = (0, 0);
        b.iter(|| {
            let token = next::<String>(&mut at, &p.tokens);
            rotating(&mut depth, || assert!(paseto_verify(&p, black_box(token))))
        })
    });

    let bi = biscuit();
    assert!(bi.tokens.iter().all(|t| biscuit_verify(&bi, t)));
    g.bench_function("biscuit_verify_authorize", |b| {
        let (mut at, mut depth) = (0, 0);
        b.iter(|| {
            let token = next::<String>(&mut at, &bi.tokens);
            rotating(&mut depth, || {
                assert!(biscuit_verify(&bi, black_box(token)))
            })
        })
    });
    g.finish();
}

fn mint(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("mint");
    let dalek = ed25519_dalek::SigningKey::from_bytes(&SEED);
    let message = [0x5a_u8; 250];
    g.bench_function("ed25519_dalek_sign", |b| {
        let mut depth = 0;
        b.iter(|| {
            rotating(&mut depth, || {
                black_box(ed25519_dalek::Signer::sign(&dalek, black_box(&message)));
            })
        })
    });
    g.bench_function("scopekey_mint", |b| {
        let mut depth = 0;
        b.iter(|| {
            rotating(&mut depth, || {
                black_box(f.issuer.issue(black_box(&f.request)).unwrap());
            })
        })
    });
    g.finish();
}

fn check(c: &mut Criterion) {
    let mut g = c.benchmark_group("check");

    // One check against a 32-scope set (4 actions on 8 resource trees), matching deep.
    let mut scopes = String::new();
    for r in [
        "projects",
        "comments",
        "billing",
        "users",
        "teams",
        "deployments",
        "builds",
        "artifacts",
    ] {
        for a in ["read", "write", "delete", "admin"] {
            scopes.push_str(&format!("{r}/{a}x:{a} "));
        }
    }
    let set: ScopeSet = scopes
        .trim()
        .replace("projects/readx:read", "projects:read")
        .parse()
        .unwrap();
    assert_eq!(set.len(), 32);
    let resource = Resource::from_segments(["projects", "42", "comments", "7"]).unwrap();
    let action = Action::read();
    assert!(set.allows(&resource, &action));
    g.bench_function("scopeset_allows_32", |b| {
        b.iter(|| black_box(&set).allows(black_box(&resource), black_box(&action)))
    });

    // A lookup (of a token that is not revoked, the common case) with 1,000,000 revoked.
    let list = RevocationList::new();
    let before = rss_bytes();
    for _ in 0..1_000_000 {
        list.apply(Arc::new(
            scopekey::revocation::Revocation::new(
                RevocationTarget::Token {
                    token_id: TokenId::generate().unwrap(),
                    expires_at: None,
                },
                "ops",
                time::OffsetDateTime::now_utc(),
                "mass leak",
            )
            .unwrap(),
        ));
    }
    let after = rss_bytes();
    eprintln!(
        "revocation list, 1,000,000 single-token entries: estimate {} bytes/entry, resident \
         set grew {} bytes/entry",
        list.memory_estimate() / 1_000_000,
        after.saturating_sub(before) / 1_000_000
    );
    let f = fixture();
    let claims = f.cold.verify(&f.token).unwrap().claims().clone();
    let key_id = f.issuer.key_id().clone();
    let facts = TokenFacts::of(&claims, &key_id);
    g.bench_function("revocation_lookup_1m", |b| {
        b.iter(|| list.status_of(black_box(&facts)))
    });
    drop(list);

    // A full request through the tower layer (default grant cache, warm), body included.
    // The handler is ready at once, so one poll with a no-op waker drives the whole request.
    let state = scopekey_tower::AuthState::new(
        Arc::new(
            Verifier::new(
                KeySet::single(SigningKey::from_seed(&SEED).unwrap().public_key().clone()),
                config(),
            )
            .unwrap()
            .with_revocations(Arc::new(RevocationList::new())),
        ),
        scopekey_tower::Realm::new("bench").unwrap(),
    );
    let service = tower::ServiceBuilder::new()
        .layer(scopekey_tower::AuthLayer::new(state.clone()))
        .service(tower::service_fn(|req: http::Request<String>| async move {
            let grant = req.extensions().get::<scopekey::Grant>().unwrap();
            let ok = grant
                .authorize(
                    &Resource::from_segments(["projects", "42"]).unwrap(),
                    &Action::read(),
                )
                .is_ok();
            Ok::<_, std::convert::Infallible>(http::Response::new(if ok {
                req.into_body()
            } else {
                String::new()
            }))
        }));
    let bearer = http::HeaderValue::from_str(&format!("Bearer {}", f.token)).unwrap();
    let call = || {
        let mut request = http::Request::new(String::from("{\"hello\":\"world\"}"));
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, bearer.clone());
        let future = std::pin::pin!(tower::ServiceExt::oneshot(service.clone(), request));
        match future.poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
            std::task::Poll::Ready(response) => response.unwrap(),
            std::task::Poll::Pending => panic!("the service is ready at once"),
        }
    };
    assert_eq!(call().body(), "{\"hello\":\"world\"}");
    assert_eq!(call().body(), "{\"hello\":\"world\"}");
    assert_eq!(state.grant_cache().unwrap().stats().hits, 1, "warm");
    g.bench_function("tower_layer_oneshot", |b| {
        b.iter(|| assert_eq!(call().body().len(), 17))
    });
    g.finish();
}

/// Memory per cached grant: 5,000 distinct tokens (minted first) verified into a fresh cache.
fn cache_memory(f: &Fixture) {
    const N: usize = 5_000;
    let tokens: Vec<String> = (0..N)
        .map(|_| {
            f.issuer
                .issue(&f.request)
                .unwrap()
                .token()
                .as_str()
                .to_owned()
        })
        .collect();
    let verifier = Verifier::new(
        KeySet::single(SigningKey::from_seed(&SEED).unwrap().public_key().clone()),
        config(),
    )
    .unwrap()
    .with_grant_cache(GrantCache::new(
        scopekey::cache::GrantCacheConfig::default().max_entries(N),
    ));
    let before = rss_bytes();
    for t in &tokens {
        verifier.verify(t).unwrap();
    }
    let after = rss_bytes();
    let cache = verifier.grant_cache().unwrap();
    eprintln!(
        "grant cache, {} entries of {}-byte tokens: charged {} bytes/entry, resident set grew \
         {} bytes/entry",
        cache.len(),
        tokens[0].len(),
        cache.charged_bytes() / cache.len().max(1),
        after.saturating_sub(before) / cache.len().max(1)
    );
}

/// The resident set size, from `/proc/self/statm` (0 elsewhere).
fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = verify, mint, check
}
criterion_main!(benches);
