//! The tower middleware driven with `oneshot`: every answer's status, challenge and body.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use scopekey::revocation::{RevocationList, RevocationTarget, Revoker};
use scopekey::{
    Grant, Issuer, KeySet, ManualClock, SigningKey, TokenRequest, Verifier, VerifierConfig,
};
use scopekey_tower::{AuthLayer, AuthState, Realm, RequireScopeLayer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tower::{ServiceBuilder, ServiceExt, service_fn};

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";

struct Fixture {
    issuer: Issuer,
    clock: ManualClock,
    revocations: Arc<RevocationList>,
    state: AuthState,
}

fn fixture() -> Fixture {
    let clock = ManualClock::at_unix(1_900_000_000);
    let key = SigningKey::generate().unwrap();
    let keys = KeySet::single(key.public_key().clone());
    let revocations = Arc::new(RevocationList::new().with_clock(clock.clone()));
    let verifier = Verifier::new(
        keys,
        VerifierConfig::new(ISS, AUD, "production".parse().unwrap()).clock(clock.clone()),
    )
    .unwrap()
    .with_revocations(revocations.clone());
    let issuer = Issuer::new(key, ISS, "production".parse().unwrap())
        .unwrap()
        .with_clock(clock.clone());
    Fixture {
        issuer,
        clock,
        revocations,
        state: AuthState::new(Arc::new(verifier), Realm::new("test-api").unwrap()),
    }
}

impl Fixture {
    fn token(&self, scopes: &str) -> (String, scopekey::TokenId) {
        let m = self
            .issuer
            .issue(&TokenRequest::new("svc", AUD, scopes.parse().unwrap()))
            .unwrap();
        (m.token().as_str().to_owned(), m.claims().token_id().clone())
    }

    /// Auth + a fixed requirement of `billing/invoices:read`, in front of a handler that echoes
    /// the grant's subject and whether the Authorization header was marked sensitive.
    async fn call(&self, auth: Option<&str>) -> Response<String> {
        let realm = self.state.realm().clone();
        let service = ServiceBuilder::new()
            .layer(AuthLayer::new(self.state.clone()))
            .layer(RequireScopeLayer::new(
                "billing/invoices:read".parse().unwrap(),
                realm,
            ))
            .service(service_fn(|req: Request<String>| async move {
                let grant = req.extensions().get::<Grant>().expect("grant inserted");
                let sensitive = req.headers()[AUTHORIZATION].is_sensitive();
                Ok::<_, Infallible>(Response::new(format!("{} {sensitive}", grant.subject())))
            }));
        let mut req = Request::builder();
        if let Some(a) = auth {
            req = req.header(AUTHORIZATION, a);
        }
        service
            .oneshot(req.body(String::new()).unwrap())
            .await
            .unwrap()
    }
}

fn challenge(r: &Response<String>) -> Option<&str> {
    r.headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn sufficient_scope_reaches_the_handler_with_the_grant() {
    let f = fixture();
    let (token, _) = f.token("billing:read");
    let r = f.call(Some(&format!("Bearer {token}"))).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.body(), "svc true");
}

#[tokio::test]
async fn no_credentials_get_a_bare_challenge() {
    let f = fixture();
    for auth in [None, Some("Basic dXNlcjpwYXNz")] {
        let r = f.call(auth).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(challenge(&r), Some("Bearer realm=\"test-api\""));
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        assert_eq!(
            r.body(),
            "{\"type\":\"about:blank\",\"title\":\"Unauthorized\",\"status\":401,\"detail\":\"bearer token required\",\"error\":\"unauthorized\"}"
        );
    }
}

#[tokio::test]
async fn bad_tokens_get_invalid_token_without_leaking_it() {
    let f = fixture();
    let (token, jti) = f.token("billing:read");
    let mut tampered = token.clone();
    tampered.replace_range(30..31, if &token[30..31] == "A" { "B" } else { "A" });
    let cases = [
        (
            "Bearer v4.public.garbage".to_owned(),
            "the token is malformed",
        ),
        (
            format!("Bearer {tampered}"),
            "the token signature is not valid here",
        ),
        (
            format!("Bearer {}", "A".repeat(9000)),
            "the token is malformed",
        ),
    ];
    for (auth, description) in cases {
        let r = f.call(Some(&auth)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth:.40}");
        assert_eq!(
            challenge(&r).unwrap(),
            format!(
                "Bearer realm=\"test-api\", error=\"invalid_token\", error_description=\"{description}\""
            )
        );
        assert!(!r.body().contains(&auth[7..]));
    }
    f.revocations
        .revoke(
            RevocationTarget::Token {
                token_id: jti,
                expires_at: None,
            },
            "ops",
            "test",
        )
        .unwrap();
    let r = f.call(Some(&format!("Bearer {token}"))).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        challenge(&r)
            .unwrap()
            .contains("the token has been revoked")
    );
    let (fresh, _) = f.token("billing:read");
    f.clock.advance(Duration::from_secs(3600));
    let r = f.call(Some(&format!("Bearer {fresh}"))).await;
    assert!(challenge(&r).unwrap().contains("the token has expired"));
}

#[tokio::test]
async fn malformed_authorization_headers_are_invalid_requests() {
    let f = fixture();
    for auth in ["Bearer", "Bearer a b", "Bearer a=b"] {
        let r = f.call(Some(auth)).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{auth}");
        assert!(challenge(&r).unwrap().contains("error=\"invalid_request\""));
    }
}

#[tokio::test]
async fn missing_scope_is_403_with_the_needed_scope() {
    let f = fixture();
    let (token, _) = f.token("projects:read");
    let r = f.call(Some(&format!("Bearer {token}"))).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&r).unwrap(),
        "Bearer realm=\"test-api\", error=\"insufficient_scope\", error_description=\"the token does not grant the required scope\", scope=\"billing/invoices:read\""
    );
    assert_eq!(
        r.body(),
        "{\"type\":\"about:blank\",\"title\":\"Forbidden\",\"status\":403,\"detail\":\"the token does not grant the required scope\",\"error\":\"insufficient_scope\",\"scope\":\"billing/invoices:read\"}"
    );
}

#[tokio::test]
async fn a_stale_revocation_replica_answers_503() {
    let clock = ManualClock::at_unix(1_900_000_000);
    let key = SigningKey::generate().unwrap();
    let replica =
        Arc::new(RevocationList::replica(Duration::from_secs(30)).with_clock(clock.clone()));
    let verifier = Verifier::new(
        KeySet::single(key.public_key().clone()),
        VerifierConfig::new(ISS, AUD, "production".parse().unwrap()).clock(clock.clone()),
    )
    .unwrap()
    .with_revocations(replica);
    let issuer = Issuer::new(key, ISS, "production".parse().unwrap())
        .unwrap()
        .with_clock(clock);
    let token = issuer
        .issue(&TokenRequest::new(
            "svc",
            AUD,
            "billing:read".parse().unwrap(),
        ))
        .unwrap();
    let service = ServiceBuilder::new()
        .layer(AuthLayer::new(AuthState::new(
            Arc::new(verifier),
            Realm::new("x").unwrap(),
        )))
        .service(service_fn(|_req: Request<String>| async {
            Ok::<_, Infallible>(Response::new(String::new()))
        }));
    let req = Request::builder()
        .header(AUTHORIZATION, format!("Bearer {}", token.token().as_str()))
        .body(String::new())
        .unwrap();
    let r = service.oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().get(WWW_AUTHENTICATE).is_none());
}

#[tokio::test]
async fn require_without_auth_layer_fails_closed() {
    let realm = Realm::new("x").unwrap();
    let service = ServiceBuilder::new()
        .layer(RequireScopeLayer::new("a:read".parse().unwrap(), realm))
        .service(service_fn(|_req: Request<String>| async {
            Ok::<_, Infallible>(Response::new("reached".to_owned()))
        }));
    let r = service.oneshot(Request::new(String::new())).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_layer_caches_grants_by_default_and_still_honours_revocation() {
    let f = fixture();
    let (token, jti) = f.token("billing:read");
    let bearer = format!("Bearer {token}");
    assert_eq!(f.call(Some(&bearer)).await.status(), StatusCode::OK);
    assert_eq!(f.call(Some(&bearer)).await.status(), StatusCode::OK);
    let stats = f.state.grant_cache().unwrap().stats();
    assert_eq!((stats.hits, stats.misses), (1, 1));
    f.revocations
        .revoke(
            RevocationTarget::Token {
                token_id: jti,
                expires_at: None,
            },
            "ops",
            "leaked",
        )
        .unwrap();
    let r = f.call(Some(&bearer)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&r).unwrap().contains("invalid_token"));
    // Opting out verifies every request in full.
    let plain = f.state.clone().without_grant_cache();
    assert!(plain.grant_cache().is_none());
}

/// After a token has been served (and so sits in the layer's grant cache), neither the state,
/// the layer nor the service prints any run of its claims or signature in `Debug` output.
#[tokio::test]
async fn no_token_in_debug_output_of_the_layer() {
    let f = fixture();
    let (token, _) = f.token("billing/invoices:read");
    let response = f.call(Some(&format!("Bearer {token}"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(f.state.grant_cache().map(|c| c.len()), Some(1));
    let layer = AuthLayer::new(f.state.clone());
    let service = tower::Layer::layer(
        &layer,
        service_fn(|_: Request<String>| async {
            Ok::<_, Infallible>(Response::new(String::new()))
        }),
    );
    let body = token.split('.').nth(2).unwrap();
    assert!(body.len() > 100);
    for shown in [
        format!("{:?} {:#?}", f.state, f.state),
        format!("{layer:?} {layer:#?}"),
        format!("{service:?} {service:#?}"),
    ] {
        for start in 0..=body.len() - 16 {
            let run = &body[start..start + 16];
            assert!(!shown.contains(run), "Debug output shows `{run}`: {shown}");
        }
    }
}

/// With an audit sink, every event of a request carries the request: method, path (never the
/// query), client address, request id; the grant's `authorize` events carry the same. A request
/// without an id gets one, which the handler sees.
#[tokio::test]
async fn audit_events_carry_the_request() {
    use scopekey::audit::{AuditSink, MemorySink};
    let clock = ManualClock::at_unix(1_900_000_000);
    let key = SigningKey::generate().unwrap();
    let keys = KeySet::single(key.public_key().clone());
    let sink = Arc::new(MemorySink::new());
    let verifier = Verifier::new(
        keys,
        VerifierConfig::new(ISS, AUD, "production".parse().unwrap()).clock(clock.clone()),
    )
    .unwrap()
    .with_audit(sink.clone() as Arc<dyn AuditSink>);
    let issuer = Issuer::new(key, ISS, "production".parse().unwrap())
        .unwrap()
        .with_clock(clock);
    let token = issuer
        .issue(&TokenRequest::new(
            "svc",
            AUD,
            "projects:read".parse().unwrap(),
        ))
        .unwrap();
    let state = AuthState::new(Arc::new(verifier), Realm::new("api").unwrap());
    let service = ServiceBuilder::new()
        .layer(AuthLayer::new(state))
        .service(service_fn(|req: Request<String>| async move {
            let grant = req.extensions().get::<Grant>().unwrap();
            let _ = grant.authorize(&"projects/42".parse().unwrap(), &"read".parse().unwrap());
            let _ = grant.authorize(&"projects/42".parse().unwrap(), &"delete".parse().unwrap());
            let id = req.headers()["x-request-id"].to_str().unwrap().to_owned();
            Ok::<_, Infallible>(Response::new(id))
        }));
    let client: std::net::SocketAddr = "198.51.100.7:50123".parse().unwrap();
    let mut request = Request::builder()
        .method("GET")
        .uri("/projects/42?access_token=do-not-record")
        .header(AUTHORIZATION, format!("Bearer {}", token.token().as_str()))
        .header("x-request-id", "req-123")
        .body(String::new())
        .unwrap();
    request.extensions_mut().insert(client);
    let response = service.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let events: Vec<serde_json::Value> = sink
        .events()
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["verified", "authorized", "denied"]);
    for e in &events {
        assert_eq!(
            e["request"],
            serde_json::json!({
                "method": "GET",
                "path": "/projects/42",
                "client": "198.51.100.7",
                "request_id": "req-123",
            }),
            "{e}"
        );
    }
    assert!(
        !serde_json::to_string(&events)
            .unwrap()
            .contains("do-not-record")
    );

    // A refused token, no request id: the refusal carries the request and a made-up id, the
    // same one the request now holds.
    let request = Request::builder()
        .method("DELETE")
        .uri("/projects/7")
        .header(AUTHORIZATION, "Bearer v4.public.not-a-token")
        .body(String::new())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let refused = serde_json::to_value(sink.events().last().unwrap()).unwrap();
    assert_eq!(refused["event"], "refused");
    assert_eq!(refused["request"]["method"], "DELETE");
    assert_eq!(refused["request"]["path"], "/projects/7");
    assert!(refused["request"].get("client").is_none());
    let id = refused["request"]["request_id"].as_str().unwrap();
    assert!(id.starts_with("sk-"), "{id}");
}

/// A hostile path cannot put an unbounded or unprintable string in the trail.
#[test]
fn request_descriptions_are_bounded() {
    let long = format!("/{}", "a".repeat(1000));
    let (parts, ()) = Request::builder()
        .uri(long.as_str())
        .header("x-request-id", "x".repeat(500))
        .body(())
        .unwrap()
        .into_parts();
    let described = scopekey_tower::describe_request(&parts);
    assert!(described.path.len() <= scopekey::audit::RequestContext::MAX_PATH_LEN);
    assert!(described.path.ends_with('…'));
    assert_eq!(described.request_id, None);
    let wide = scopekey::audit::RequestContext::new("GET", &"é".repeat(1000));
    assert!(wide.path.len() <= scopekey::audit::RequestContext::MAX_PATH_LEN);
    assert!(wide.path.starts_with("éé") && wide.path.ends_with('…'));
    let c = scopekey::audit::RequestContext::new("GET\n", "/a\u{1b}[31m");
    assert_eq!((c.method.as_str(), c.path.as_str()), ("GET?", "/a?[31m"));
}

/// One request through the layer: its status and challenge.
async fn call(
    state: AuthState,
    token: String,
    peer: Option<&str>,
    xff: &[&str],
) -> (StatusCode, String) {
    let service = ServiceBuilder::new()
        .layer(AuthLayer::new(state))
        .service(service_fn(|_req: Request<String>| async {
            Ok::<_, Infallible>(Response::new(String::new()))
        }));
    let mut req = Request::builder().header(AUTHORIZATION, format!("Bearer {token}"));
    for x in xff {
        req = req.header("x-forwarded-for", *x);
    }
    let mut req = req.body(String::new()).unwrap();
    if let Some(p) = peer {
        req.extensions_mut()
            .insert(p.parse::<std::net::SocketAddr>().unwrap());
    }
    let r = service.oneshot(req).await.unwrap();
    let challenge = r
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (r.status(), challenge)
}

/// A token limited to client networks works from inside them only: the client is the peer,
/// or, for a peer in a trusted proxy network, the rightmost `X-Forwarded-For` entry outside the
/// trusted networks; with no
/// trustworthy address the token is refused (fail closed), and unlimited tokens are unaffected.
#[tokio::test]
async fn network_limited_tokens_work_only_from_their_networks() {
    let f = fixture();
    let limited = f
        .issuer
        .issue(
            &TokenRequest::new("svc", AUD, "billing:read".parse().unwrap()).allow_networks([
                "203.0.113.0/24".parse().unwrap(),
                "2001:db8::/32".parse().unwrap(),
            ]),
        )
        .unwrap();
    let limited = limited.token().as_str().to_owned();
    let (plain, _) = f.token("billing:read");
    let direct = f.state.clone();
    let ok = StatusCode::OK;
    let no = StatusCode::UNAUTHORIZED;
    // No proxies: the peer is the client; forwarded headers are ignored.
    assert_eq!(
        call(
            direct.clone(),
            limited.clone(),
            Some("203.0.113.9:4000"),
            &[]
        )
        .await
        .0,
        ok
    );
    assert_eq!(
        call(
            direct.clone(),
            limited.clone(),
            Some("[2001:db8::7]:4000"),
            &[]
        )
        .await
        .0,
        ok
    );
    assert_eq!(
        call(
            direct.clone(),
            limited.clone(),
            Some("[::ffff:203.0.113.9]:4000"),
            &[]
        )
        .await
        .0,
        ok
    );
    let (status, challenge) = call(
        direct.clone(),
        limited.clone(),
        Some("198.51.100.1:4000"),
        &["203.0.113.9"],
    )
    .await;
    assert_eq!(status, no);
    assert!(
        challenge.contains("may not be used from this network"),
        "{challenge}"
    );
    assert_eq!(call(direct.clone(), limited.clone(), None, &[]).await.0, no);
    assert_eq!(call(direct.clone(), plain.clone(), None, &[]).await.0, ok);
    // One trusted proxy: the rightmost entry is the client; what the client wrote before it is not.
    let one = f
        .state
        .clone()
        .trusted_proxy_networks(["10.0.0.2".parse().unwrap()]);
    let proxy = Some("10.0.0.2:4000");
    assert_eq!(
        call(one.clone(), limited.clone(), proxy, &["203.0.113.9"])
            .await
            .0,
        ok
    );
    assert_eq!(
        call(
            one.clone(),
            limited.clone(),
            proxy,
            &["203.0.113.9, 198.51.100.1"]
        )
        .await
        .0,
        no
    );
    assert_eq!(call(one.clone(), limited.clone(), proxy, &[]).await.0, no);
    // A peer outside the trusted network: its header is not read.
    assert_eq!(
        call(
            one.clone(),
            limited.clone(),
            Some("198.51.100.1:4000"),
            &["203.0.113.9"]
        )
        .await
        .0,
        no
    );
    // Two hops in the trusted network: skipped from the right, across header lines.
    let two = f
        .state
        .clone()
        .trusted_proxy_networks(["10.0.0.0/24".parse().unwrap()]);
    assert_eq!(
        call(
            two.clone(),
            limited.clone(),
            proxy,
            &["198.51.100.1, 203.0.113.9", "10.0.0.1"]
        )
        .await
        .0,
        ok
    );
    assert_eq!(
        call(
            two.clone(),
            limited.clone(),
            proxy,
            &["203.0.113.9, 198.51.100.1", "10.0.0.1"]
        )
        .await
        .0,
        no
    );
    assert_eq!(
        call(two, limited, proxy, &["not-an-address, 10.0.0.1"])
            .await
            .0,
        no
    );
}

/// A use-limited token is answered until its uses run out, then 401 `invalid_token` ("no uses
/// left"); behind a verifier without a usage counter it is 503 without a challenge (the
/// decision cannot be made safely), and unlimited tokens are unaffected.
#[tokio::test]
async fn use_limited_tokens_are_401_when_used_up_and_503_without_a_counter() {
    let f = fixture();
    let once = f
        .issuer
        .issue(&TokenRequest::new("svc", AUD, "billing:read".parse().unwrap()).single_use())
        .unwrap();
    let once = once.token().as_str().to_owned();
    let (plain, _) = f.token("billing:read");
    // The fixture's verifier has no counter: fail closed.
    let (status, challenge) = call(f.state.clone(), once.clone(), None, &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(challenge.is_empty(), "{challenge}");
    assert_eq!(
        call(f.state.clone(), plain.clone(), None, &[]).await.0,
        StatusCode::OK
    );

    let verifier = Verifier::new(
        KeySet::single(f.issuer.public_key().clone()),
        VerifierConfig::new(ISS, AUD, "production".parse().unwrap()).clock(f.clock.clone()),
    )
    .unwrap()
    .with_usage_counter(Arc::new(scopekey::usage::MemoryUsageCounter::new()));
    let counted = AuthState::new(Arc::new(verifier), Realm::new("test-api").unwrap());
    assert_eq!(
        call(counted.clone(), once.clone(), None, &[]).await.0,
        StatusCode::OK
    );
    let (status, challenge) = call(counted.clone(), once, None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        challenge.contains("invalid_token") && challenge.contains("no uses left"),
        "{challenge}"
    );
    assert_eq!(call(counted, plain, None, &[]).await.0, StatusCode::OK);
}
