//! Remote key sets against a JWKS server on loopback that rotates keys, serves garbage, and
//! goes away; and against the scopekey token service's own JWKS endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{JwksServer, Serve, jwks};
use http::{Request, Response, StatusCode};
use scopekey::jwks::JwksErrorKind;
use scopekey::{
    Issuer, ManualClock, SigningKey, TokenRequest, Verifier, VerifierConfig, VerifyErrorKind,
};
use scopekey_jwks::{RemoteKeySet, RemoteKeySetConfig, RemoteKeySetErrorKind};
use scopekey_tower::{AuthState, Realm, RefreshingAuthLayer, TokenSource};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tower::{Layer as _, ServiceExt as _, service_fn};

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";

/// An issuer signing with `key` on `clock`.
fn issuer(key: &SigningKey, clock: &ManualClock) -> Issuer {
    let key = SigningKey::from_paserk(&key.to_paserk()).unwrap();
    Issuer::new(key, ISS, "test".parse().unwrap())
        .unwrap()
        .with_clock(clock.clone())
}

fn token(key: &SigningKey, clock: &ManualClock) -> String {
    let request = TokenRequest::new("ci", AUD, "projects:read".parse().unwrap())
        .ttl(Duration::from_secs(3600));
    issuer(key, clock)
        .issue(&request)
        .unwrap()
        .token()
        .as_str()
        .to_owned()
}

fn verifier(keys: &RemoteKeySet, clock: &ManualClock) -> Arc<Verifier> {
    let config = VerifierConfig::new(ISS, AUD, "test".parse().unwrap()).clock(clock.clone());
    Arc::new(Verifier::with_key_ring(keys.ring().clone(), config).unwrap())
}

fn kind(verifier: &Verifier, token: &str) -> Option<VerifyErrorKind> {
    verifier.verify(token).err().map(|e| e.kind())
}

/// A config for `server` with a short rate limit, a 120 s staleness bound on `clock`, and no
/// scheduled retry after a failure within the test (refreshes are asked for).
fn config(server: &JwksServer, clock: &ManualClock) -> RemoteKeySetConfig {
    RemoteKeySetConfig::new(&server.url())
        .unwrap()
        .min_refresh_interval(Duration::from_millis(1))
        .unwrap()
        .retry_interval(Duration::from_secs(3600))
        .max_staleness(Duration::from_secs(120))
        .unwrap()
        .timeout(Duration::from_millis(500))
        .unwrap()
        .clock(clock.clone())
}

/// Past the 1 ms rate limit of [`config`]: a refresh asked for now is allowed.
async fn past_the_rate_limit() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}

/// The tower stack: the refreshing layer over a handler answering 200.
async fn call(layer: &RefreshingAuthLayer, token: &str) -> StatusCode {
    let service = layer.layer(service_fn(|_req: Request<String>| async {
        Ok::<_, std::convert::Infallible>(Response::new("ok".to_owned()))
    }));
    let request = Request::builder()
        .header("authorization", format!("Bearer {token}"))
        .body(String::new())
        .unwrap();
    service.oneshot(request).await.unwrap().status()
}

fn layer(verifier: Arc<Verifier>, keys: &RemoteKeySet) -> RefreshingAuthLayer {
    let handle = keys.handle();
    let state = AuthState::new(verifier, Realm::new("api").unwrap()).without_grant_cache();
    RefreshingAuthLayer::new(state, move || handle.refresh())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_with_the_served_keys_and_refuses_a_bad_first_copy() {
    let clock = ManualClock::now_utc();
    let a = SigningKey::generate().unwrap();
    let server = JwksServer::start(Serve::Json(jwks(&[&a]))).await;
    let keys = RemoteKeySet::start(config(&server, &clock)).await.unwrap();
    assert_eq!(server.hits(), 1);
    assert_eq!(keys.status().fetches(), 1);
    assert_eq!(keys.status().keys(), 1);
    assert!(keys.status().last_error().is_none());
    let v = verifier(&keys, &clock);
    assert_eq!(kind(&v, &token(&a, &clock)), None);
    let stranger = SigningKey::generate().unwrap();
    assert_eq!(
        kind(&v, &token(&stranger, &clock)),
        Some(VerifyErrorKind::UnknownKey)
    );

    let other_key = serde_json::json!({"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}).to_string();
    let mut private = a.public_key().to_jwk();
    private["d"] = "AAAA".into();
    let private = serde_json::json!({ "keys": [private] }).to_string();
    for (serve, expected) in [
        (
            Serve::Garbage,
            RemoteKeySetErrorKind::InvalidJwks(JwksErrorKind::Malformed),
        ),
        (
            Serve::Json(r#"{"keys":[]}"#.into()),
            RemoteKeySetErrorKind::InvalidJwks(JwksErrorKind::Malformed),
        ),
        (
            Serve::Json(other_key),
            RemoteKeySetErrorKind::InvalidJwks(JwksErrorKind::UnsupportedKey),
        ),
        (
            Serve::Json(private),
            RemoteKeySetErrorKind::InvalidJwks(JwksErrorKind::PrivateKeyMaterial),
        ),
        (Serve::OversizedDeclared, RemoteKeySetErrorKind::TooLarge),
        (Serve::OversizedStreamed, RemoteKeySetErrorKind::TooLarge),
        (Serve::Status(404), RemoteKeySetErrorKind::Status(404)),
        (Serve::Status(302), RemoteKeySetErrorKind::Status(302)),
        (Serve::Slow, RemoteKeySetErrorKind::Unreachable),
    ] {
        server.serve(serve);
        let e = RemoteKeySet::start(config(&server, &clock))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), expected, "{e}");
    }
    // An https URL speaks TLS: a plain-HTTP server never completes the handshake.
    server.serve(Serve::Json(jwks(&[&a])));
    let https = RemoteKeySetConfig::new(&server.url().replace("http://", "https://"))
        .unwrap()
        .timeout(Duration::from_secs(2))
        .unwrap();
    let e = RemoteKeySet::start(https).await.unwrap_err();
    assert_eq!(e.kind(), RemoteKeySetErrorKind::Unreachable, "{e}");
    server.stop().await;
    let e = RemoteKeySet::start(config(&server, &clock))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), RemoteKeySetErrorKind::Unreachable, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_is_picked_up_on_an_unknown_key_id() {
    let clock = ManualClock::now_utc();
    let (a, b, c) = (
        SigningKey::generate().unwrap(),
        SigningKey::generate().unwrap(),
        SigningKey::generate().unwrap(),
    );
    let server = JwksServer::start(Serve::Json(jwks(&[&a]))).await;
    let keys = RemoteKeySet::start(config(&server, &clock)).await.unwrap();
    let v = verifier(&keys, &clock);

    // The issuer adds b and signs with it: the verifier asks, and knows b.
    server.serve(Serve::Json(jwks(&[&a, &b])));
    let token_b = token(&b, &clock);
    assert_eq!(kind(&v, &token_b), Some(VerifyErrorKind::UnknownKey));
    past_the_rate_limit().await;
    assert!(keys.refresh().await);
    assert_eq!(kind(&v, &token_b), None);
    assert_eq!(kind(&v, &token(&a, &clock)), None);
    assert_eq!(keys.status().keys(), 2);
    assert_eq!(server.hits(), 2);

    // Through the tower layer, a rotation to c costs no failed request: the request with c's
    // key id waits for the refresh and is verified once more. a is withdrawn.
    server.serve(Serve::Json(jwks(&[&b, &c])));
    past_the_rate_limit().await;
    let layer = layer(v.clone(), &keys);
    assert_eq!(call(&layer, &token(&c, &clock)).await, StatusCode::OK);
    assert_eq!(server.hits(), 3);
    assert_eq!(
        kind(&v, &token(&a, &clock)),
        Some(VerifyErrorKind::UnknownKey)
    );
    // A known key never waits for a fetch.
    assert_eq!(call(&layer, &token(&b, &clock)).await, StatusCode::OK);
    assert_eq!(server.hits(), 3);
}

/// 1,000 requests with unknown key ids at once share one fetch, and within the rate limit's
/// interval no request costs a fetch at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_key_ids_costs_one_fetch() {
    let clock = ManualClock::now_utc();
    let a = SigningKey::generate().unwrap();
    let server = JwksServer::start(Serve::Json(jwks(&[&a]))).await;
    let keys = RemoteKeySet::start(config(&server, &clock)).await.unwrap();
    let v = verifier(&keys, &clock);
    // The next fetch is held at the server until every request of the flood has asked.
    server.serve(Serve::Held(jwks(&[&a])));
    past_the_rate_limit().await;
    let asked = Arc::new(AtomicU64::new(0));
    let handle = keys.handle();
    let counted = asked.clone();
    let state = AuthState::new(v.clone(), Realm::new("api").unwrap());
    let layer = RefreshingAuthLayer::new(state, move || {
        counted.fetch_add(1, Ordering::SeqCst);
        handle.refresh()
    });
    let strangers: Vec<String> = (0..10)
        .map(|_| token(&SigningKey::generate().unwrap(), &clock))
        .collect();
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..1_000 {
        let (layer, token) = (layer.clone(), strangers[i % strangers.len()].clone());
        flood.spawn(async move { call(&layer, &token).await });
    }
    while asked.load(Ordering::SeqCst) < 1_000 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.wait_for_hits(2).await;
    server.release();
    while let Some(status) = flood.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(server.hits(), 2, "one fetch for the whole flood");
    assert_eq!(keys.status().fetches(), 2);

    // With an hour's rate limit, a flood right after a fetch costs none.
    server.serve(Serve::Json(jwks(&[&a])));
    let hourly = RemoteKeySet::start(
        config(&server, &clock)
            .min_refresh_interval(Duration::from_secs(3600))
            .unwrap(),
    )
    .await
    .unwrap();
    let hits = server.hits();
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..1_000 {
        let handle = hourly.handle();
        flood.spawn(async move { handle.refresh().await });
    }
    while let Some(refreshed) = flood.join_next().await {
        assert!(!refreshed.unwrap(), "rate-limited: no fetch");
    }
    assert_eq!(server.hits(), hits);
    assert_eq!(hourly.status().fetches(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_control_max_age_sets_the_schedule_within_its_bounds() {
    let clock = ManualClock::now_utc();
    let (a, b) = (
        SigningKey::generate().unwrap(),
        SigningKey::generate().unwrap(),
    );
    let server = JwksServer::start(Serve::Json(jwks(&[&a]))).await;
    let interval = |cache: Option<&'static str>| {
        server.cache_control(cache);
        let config = config(&server, &clock)
            .min_refresh_interval(Duration::from_secs(1))
            .unwrap()
            .max_refresh_interval(Duration::from_secs(600))
            .unwrap()
            .refresh_interval(Duration::from_secs(120));
        async move {
            RemoteKeySet::start(config)
                .await
                .unwrap()
                .status()
                .refresh_interval()
        }
    };
    assert_eq!(interval(None).await, Duration::from_secs(120));
    assert_eq!(
        interval(Some("public, max-age=300")).await,
        Duration::from_secs(300)
    );
    assert_eq!(
        interval(Some("max-age=86400")).await,
        Duration::from_secs(600)
    );
    assert_eq!(interval(Some("max-age=0")).await, Duration::from_secs(1));
    assert_eq!(interval(Some("no-store")).await, Duration::from_secs(1));
    assert_eq!(
        interval(Some("max-age=300, no-cache")).await,
        Duration::from_secs(1)
    );

    // A short max-age: the set is fetched again on schedule, with no unknown key id asking.
    server.cache_control(Some("max-age=1"));
    let keys = RemoteKeySet::start(
        config(&server, &clock)
            .min_refresh_interval(Duration::from_millis(100))
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(keys.status().refresh_interval(), Duration::from_secs(1));
    let v = verifier(&keys, &clock);
    server.serve(Serve::Json(jwks(&[&b])));
    tokio::time::timeout(Duration::from_secs(30), keys.next_fetch())
        .await
        .unwrap();
    assert_eq!(kind(&v, &token(&b, &clock)), None);
    assert!(keys.status().fetches() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_copy_never_replaces_the_good_one() {
    let clock = ManualClock::now_utc();
    let a = SigningKey::generate().unwrap();
    let server = JwksServer::start(Serve::Json(jwks(&[&a]))).await;
    let keys = RemoteKeySet::start(config(&server, &clock)).await.unwrap();
    let v = verifier(&keys, &clock);
    let token_a = token(&a, &clock);
    let version = keys.ring().version();
    let weak = serde_json::json!({"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]});
    for (serve, expected) in [
        (
            Serve::Garbage,
            RemoteKeySetErrorKind::InvalidJwks(JwksErrorKind::Malformed),
        ),
        (
            Serve::Json(r#"{"keys":[]}"#.into()),
            RemoteKeySetErrorKind::InvalidJwks(JwksErrorKind::Malformed),
        ),
        (
            Serve::Json(String::new()),
            RemoteKeySetErrorKind::InvalidJwks(JwksErrorKind::Malformed),
        ),
        (
            Serve::Json(weak.to_string()),
            RemoteKeySetErrorKind::InvalidJwks(JwksErrorKind::UnsupportedKey),
        ),
        (Serve::OversizedDeclared, RemoteKeySetErrorKind::TooLarge),
        (Serve::OversizedStreamed, RemoteKeySetErrorKind::TooLarge),
        (Serve::Status(503), RemoteKeySetErrorKind::Status(503)),
        (Serve::Slow, RemoteKeySetErrorKind::Unreachable),
    ] {
        server.serve(serve);
        past_the_rate_limit().await;
        assert!(keys.refresh().await);
        let status = keys.status();
        assert_eq!(status.last_error().map(|e| e.kind()), Some(expected));
        assert!(status.last_failure().is_some());
        assert_eq!(status.keys(), 1);
        assert_eq!(keys.ring().version(), version, "the ring was not touched");
        assert_eq!(kind(&v, &token_a), None, "{expected:?}: still verifies");
    }
    // A good copy again clears the error; the same keys keep the ring's version.
    server.serve(Serve::Json(jwks(&[&a])));
    past_the_rate_limit().await;
    assert!(keys.refresh().await);
    assert!(keys.status().last_error().is_none());
    assert_eq!(keys.ring().version(), version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_gone_verifies_until_the_bound_then_fails_closed_and_recovers() {
    let clock = ManualClock::now_utc();
    let a = SigningKey::generate().unwrap();
    let server = JwksServer::start(Serve::Json(jwks(&[&a]))).await;
    let keys = RemoteKeySet::start(config(&server, &clock)).await.unwrap();
    let v = verifier(&keys, &clock);
    let layer = layer(v.clone(), &keys);
    let token_a = token(&a, &clock);
    let fetched_at = keys.status().last_success().unwrap();
    assert_eq!(
        keys.status().fresh_until(),
        Some(fetched_at + time::Duration::seconds(120))
    );

    server.stop().await;
    past_the_rate_limit().await;
    assert!(keys.refresh().await);
    assert_eq!(
        keys.status().last_error().map(|e| e.kind()),
        Some(RemoteKeySetErrorKind::Unreachable)
    );
    // Within the bound, the last good copy still verifies.
    clock.advance(Duration::from_secs(119));
    assert_eq!(kind(&v, &token_a), None);
    assert_eq!(call(&layer, &token_a).await, StatusCode::OK);
    // Past it: fail closed, with the typed kind; 503 from the layer.
    clock.advance(Duration::from_secs(1));
    assert_eq!(kind(&v, &token_a), Some(VerifyErrorKind::KeysStale));
    assert_eq!(
        call(&layer, &token_a).await,
        StatusCode::SERVICE_UNAVAILABLE
    );

    // Back: the next fetch vouches for the keys again.
    server.restart().await;
    past_the_rate_limit().await;
    assert!(keys.refresh().await);
    assert!(keys.status().last_error().is_none());
    assert_eq!(kind(&v, &token_a), None);
    assert_eq!(call(&layer, &token_a).await, StatusCode::OK);
}

/// Dropping the remote key set stops its refresher: refreshes do nothing, and the ring goes
/// stale at its bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_it_stops_the_refresher() {
    let clock = ManualClock::now_utc();
    let a = SigningKey::generate().unwrap();
    let server = JwksServer::start(Serve::Json(jwks(&[&a]))).await;
    let keys = RemoteKeySet::start(config(&server, &clock)).await.unwrap();
    let v = verifier(&keys, &clock);
    let handle = keys.handle();
    drop(keys);
    past_the_rate_limit().await;
    assert!(handle.is_stopped());
    assert!(!handle.refresh().await);
    assert_eq!(server.hits(), 1);
    clock.advance(Duration::from_secs(120));
    assert_eq!(
        kind(&v, &token(&a, &clock)),
        Some(VerifyErrorKind::KeysStale)
    );
}

/// A token in a query parameter (a WebSocket upgrade) that names a new key: the retry after
/// the refresh reads it again, and the handler never sees it in the URI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_token_is_read_again_after_the_refresh() {
    let clock = ManualClock::now_utc();
    let (a, b) = (
        SigningKey::generate().unwrap(),
        SigningKey::generate().unwrap(),
    );
    let server = JwksServer::start(Serve::Json(jwks(&[&a]))).await;
    let keys = RemoteKeySet::start(config(&server, &clock)).await.unwrap();
    let state = AuthState::new(verifier(&keys, &clock), Realm::new("api").unwrap())
        .token_sources([TokenSource::query("access_token").unwrap()]);
    let handle = keys.handle();
    let layer = RefreshingAuthLayer::new(state, move || handle.refresh());
    let service = layer.layer(service_fn(|req: Request<String>| async move {
        Ok::<_, std::convert::Infallible>(Response::new(req.uri().to_string()))
    }));
    server.serve(Serve::Json(jwks(&[&a, &b])));
    past_the_rate_limit().await;
    let request = Request::builder()
        .uri(format!("/ws?access_token={}&room=7", token(&b, &clock)))
        .body(String::new())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.into_body(), "/ws?room=7");
    assert_eq!(server.hits(), 2);
}
