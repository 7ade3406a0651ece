//! What DPoP costs per request through `AuthLayer`: a plain bearer request (warm grant cache)
//! against a DPoP-bound one (warm grant cache, a fresh EdDSA proof each time: its signature,
//! the thumbprint, `htu` normalisation and the in-memory replay cache). The proofs are made
//! outside the measurement. `cargo bench -p scopekey-tower --bench dpop`; figures in
//! docs/performance.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{HeaderValue, Request, Response};
use scopekey::dpop::{DpopPolicy, MemoryReplayCache, ProofBuilder};
use scopekey::{Issuer, KeySet, SigningKey, TokenRequest, Verifier, VerifierConfig};
use scopekey_tower::{AuthLayer, AuthState, DPOP, DpopConfig, Realm};
use std::future::Future as _;
use std::sync::Arc;
use tower::Layer as _;
use tower::ServiceExt as _;

const AUD: &str = "https://api.example";

fn bench(c: &mut Criterion) {
    let key = SigningKey::generate().unwrap();
    let keys = KeySet::single(key.public_key().clone());
    let issuer = Issuer::new(key, "https://auth.example", "production".parse().unwrap()).unwrap();
    // Large enough never to fill during a run (each proof is remembered for 61 s).
    let replay = Arc::new(MemoryReplayCache::new(50_000_000));
    let verifier = Verifier::new(
        keys,
        VerifierConfig::new("https://auth.example", AUD, "production".parse().unwrap()),
    )
    .unwrap()
    .with_dpop(DpopPolicy::new(replay));
    let state = AuthState::new(Arc::new(verifier), Realm::new("api").unwrap())
        .dpop(DpopConfig::new([AUD]).unwrap());
    let service =
        AuthLayer::new(state).layer(tower::service_fn(|req: Request<String>| async move {
            Ok::<_, std::convert::Infallible>(Response::new(req.into_body()))
        }));
    let call = |request: Request<String>| {
        let future = std::pin::pin!(service.clone().oneshot(request));
        match future.poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
            std::task::Poll::Ready(response) => response.unwrap(),
            std::task::Poll::Pending => panic!("the service is ready at once"),
        }
    };
    let request = |auth: &HeaderValue, proof: Option<HeaderValue>| {
        let mut request = Request::builder()
            .uri("/projects/42")
            .body(String::from("{\"hello\":\"world\"}"))
            .unwrap();
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, auth.clone());
        if let Some(proof) = proof {
            request.headers_mut().insert(DPOP, proof);
        }
        request
    };

    let scopes = "projects:read".parse().unwrap();
    let plain = issuer
        .issue(&TokenRequest::new("svc", AUD, scopes))
        .unwrap();
    let bearer = HeaderValue::from_str(&format!("Bearer {}", plain.token().as_str())).unwrap();
    let client = SigningKey::generate().unwrap();
    let builder = ProofBuilder::new(&client);
    let scopes = "projects:read".parse().unwrap();
    let bound = issuer
        .issue(&TokenRequest::new("svc", AUD, scopes).bind_dpop(builder.jkt()))
        .unwrap();
    let bound = bound.token().as_str().to_owned();
    let dpop = HeaderValue::from_str(&format!("DPoP {bound}")).unwrap();
    let proof = || {
        let p = builder
            .proof("GET", "https://api.example/projects/42", Some(&bound), None)
            .unwrap();
        HeaderValue::from_str(&p).unwrap()
    };
    // Warm both grants into the cache, and check both paths answer 200.
    for _ in 0..2 {
        assert_eq!(call(request(&bearer, None)).status(), 200);
        assert_eq!(call(request(&dpop, Some(proof()))).status(), 200);
    }

    let mut g = c.benchmark_group("dpop");
    g.bench_function("plain_bearer_request", |b| {
        b.iter_batched(
            || request(&bearer, None),
            |r| assert_eq!(call(r).status(), 200),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("dpop_bound_request", |b| {
        b.iter_batched(
            || request(&dpop, Some(proof())),
            |r| assert_eq!(call(r).status(), 200),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
