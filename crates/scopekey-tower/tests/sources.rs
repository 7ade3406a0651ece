//! Token sources, anonymous requests and refusal bodies, driven with `oneshot`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response, StatusCode};
use scopekey::audit::{AuditSink, MemorySink, RequestContext};
use scopekey::{Grant, Issuer, KeySet, SigningKey, TokenRequest, Verifier, VerifierConfig};
use scopekey_tower::{
    Anonymous, AuthLayer, AuthState, Realm, Rejection, RejectionBody, RequireScopeLayer,
    TokenSource,
};
use std::convert::Infallible;
use std::sync::Arc;
use tower::{ServiceBuilder, ServiceExt, service_fn};

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";

fn setup(sink: Option<Arc<MemorySink>>) -> (Issuer, AuthState) {
    let key = SigningKey::generate().unwrap();
    let keys = KeySet::single(key.public_key().clone());
    let mut verifier = Verifier::new(
        keys,
        VerifierConfig::new(ISS, AUD, "production".parse().unwrap()),
    )
    .unwrap();
    if let Some(sink) = sink {
        verifier = verifier.with_audit(sink as Arc<dyn AuditSink>);
    }
    let issuer = Issuer::new(key, ISS, "production".parse().unwrap()).unwrap();
    (
        issuer,
        AuthState::new(Arc::new(verifier), Realm::new("api").unwrap()),
    )
}

fn mint(issuer: &Issuer, scopes: &str) -> String {
    issuer
        .issue(&TokenRequest::new("svc", AUD, scopes.parse().unwrap()))
        .unwrap()
        .token()
        .as_str()
        .to_owned()
}

/// `layer` in front of a handler answering `<subject or anonymous> <uri>`.
async fn call(layer: AuthLayer, request: Request<String>) -> Response<String> {
    let service =
        ServiceBuilder::new()
            .layer(layer)
            .service(service_fn(|req: Request<String>| async move {
                let who = match (
                    req.extensions().get::<Grant>(),
                    req.extensions().get::<Anonymous>(),
                ) {
                    (Some(g), None) => g.subject().to_owned(),
                    (None, Some(_)) => "anonymous".to_owned(),
                    other => panic!("the layer decided nothing: {other:?}"),
                };
                Ok::<_, Infallible>(Response::new(format!("{who} {}", req.uri())))
            }));
    service.oneshot(request).await.unwrap()
}

fn get(uri: &str, headers: &[(&str, &str)]) -> Request<String> {
    let mut req = Request::builder().uri(uri);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(String::new()).unwrap()
}

fn all_sources(state: AuthState) -> AuthState {
    state.token_sources([
        TokenSource::bearer(),
        TokenSource::cookie("scopekey_token").unwrap(),
        TokenSource::header("x-api-token").unwrap(),
        TokenSource::query("access_token").unwrap(),
    ])
}

#[tokio::test]
async fn each_source_carries_the_token() {
    let (issuer, state) = setup(None);
    let token = mint(&issuer, "projects:read");
    let layer = AuthLayer::new(all_sources(state));
    let bearer = format!("Bearer {token}");
    let cookie = format!("theme=dark; scopekey_token={token}");
    let query = format!("/ws?room=1&access_token={token}");
    for request in [
        get("/ws?room=1", &[("authorization", &bearer)]),
        get("/ws?room=1", &[("cookie", &cookie)]),
        get("/ws?room=1", &[("x-api-token", &token)]),
        get(&query, &[]),
        // The same token twice is fine.
        get(&query, &[("authorization", &bearer), ("cookie", &cookie)]),
    ] {
        let r = call(layer.clone(), request).await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.body());
        assert_eq!(r.body(), "svc /ws?room=1");
    }
}

#[tokio::test]
async fn sources_are_off_until_configured() {
    let (issuer, state) = setup(None);
    let token = mint(&issuer, "projects:read");
    let layer = AuthLayer::new(state);
    let cookie = format!("scopekey_token={token}");
    let query = format!("/ws?access_token={token}");
    for request in [
        get("/ws", &[("cookie", &cookie)]),
        get("/ws", &[("x-api-token", &token)]),
        get(&query, &[]),
    ] {
        let r = call(layer.clone(), request).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[WWW_AUTHENTICATE], "Bearer realm=\"api\"");
    }
}

#[tokio::test]
async fn two_different_tokens_are_a_400_not_a_guess() {
    let (issuer, state) = setup(None);
    let (a, b) = (
        mint(&issuer, "projects:read"),
        mint(&issuer, "billing:read"),
    );
    let layer = AuthLayer::new(all_sources(state));
    let bearer = format!("Bearer {a}");
    let cookie = format!("scopekey_token={b}");
    let query = format!("/ws?access_token={b}");
    for request in [
        get("/ws", &[("authorization", &bearer), ("cookie", &cookie)]),
        get("/ws", &[("authorization", &bearer), ("x-api-token", &b)]),
        get(&query, &[("authorization", &bearer)]),
        get(&format!("/ws?access_token={a}&access_token={b}"), &[]),
        // A malformed value in any configured source is refused, not skipped.
        get(
            "/ws",
            &[("authorization", &bearer), ("x-api-token", "not a token")],
        ),
    ] {
        let r = call(layer.clone(), request).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{}", r.body());
        let challenge = r.headers()[WWW_AUTHENTICATE].to_str().unwrap();
        assert!(
            challenge.contains("error=\"invalid_request\""),
            "{challenge}"
        );
        assert!(!r.body().contains(&a) && !r.body().contains(&b));
    }
}

#[tokio::test]
async fn the_cookie_and_custom_headers_are_marked_sensitive() {
    let (issuer, state) = setup(None);
    let token = mint(&issuer, "projects:read");
    let service = ServiceBuilder::new()
        .layer(AuthLayer::new(all_sources(state)))
        .service(service_fn(|req: Request<String>| async move {
            let sensitive = [COOKIE.as_str(), "x-api-token"]
                .iter()
                .all(|h| req.headers()[*h].is_sensitive());
            Ok::<_, Infallible>(Response::new(sensitive.to_string()))
        }));
    let cookie = format!("scopekey_token={token}");
    let r = service
        .oneshot(get("/", &[("cookie", &cookie), ("x-api-token", &token)]))
        .await
        .unwrap();
    assert_eq!(r.body(), "true");
}

/// The query parameter leaves the URI before the request is described for the audit trail
/// (here by a description that records the whole URI) and before the handler sees it, even
/// when the token is refused.
#[tokio::test]
async fn the_query_token_is_stripped_before_the_handler_and_the_audit_trail() {
    let sink = Arc::new(MemorySink::new());
    let (issuer, state) = setup(Some(sink.clone()));
    let token = mint(&issuer, "projects:read");
    let state = state
        .token_sources([TokenSource::query("access_token").unwrap()])
        .describe_requests_with(|parts| {
            RequestContext::new(parts.method.as_str(), &parts.uri.to_string())
        });
    let layer = AuthLayer::new(state);
    let r = call(
        layer.clone(),
        get(&format!("/ws?access_token={token}&room=7"), &[]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.body(), "svc /ws?room=7");
    let r = call(layer, get("/ws?access_token=v4.public.refused", &[])).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let events = serde_json::to_string(&sink.events()).unwrap();
    assert!(
        events.contains("\"verified\"") && events.contains("\"refused\""),
        "{events}"
    );
    assert!(events.contains("/ws?room=7"), "{events}");
    assert!(
        !events.contains("access_token") && !events.contains(&token),
        "{events}"
    );
}

#[tokio::test]
async fn optional_routes_let_anonymous_requests_through_but_not_bad_tokens() {
    let (issuer, state) = setup(None);
    let token = mint(&issuer, "projects:read");
    let state = state.token_sources([
        TokenSource::bearer(),
        TokenSource::cookie("scopekey_token").unwrap(),
    ]);
    let layer = AuthLayer::new(state).allow_anonymous();
    let r = call(layer.clone(), get("/public", &[])).await;
    assert_eq!(
        (r.status(), r.body().as_str()),
        (StatusCode::OK, "anonymous /public")
    );
    // A cleared cookie, or another scheme, is no credential either.
    for anonymous in [
        ("cookie", "scopekey_token="),
        ("authorization", "Basic dXNlcjpwYXNz"),
    ] {
        let r = call(layer.clone(), get("/public", &[anonymous])).await;
        assert_eq!(r.body(), "anonymous /public");
    }
    let bearer = format!("Bearer {token}");
    let r = call(layer.clone(), get("/public", &[("authorization", &bearer)])).await;
    assert_eq!(
        (r.status(), r.body().as_str()),
        (StatusCode::OK, "svc /public")
    );
    for bad in [
        ("authorization", "Bearer v4.public.nope"),
        ("cookie", "scopekey_token=v4.public.nope"),
    ] {
        let r = call(layer.clone(), get("/public", &[bad])).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{bad:?}");
        let challenge = r.headers()[WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    }
    let r = call(layer, get("/public", &[("authorization", "Bearer a b")])).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_scope_layer_behind_an_optional_one_still_requires_a_grant() {
    let (_, state) = setup(None);
    let service = ServiceBuilder::new()
        .layer(AuthLayer::new(state).allow_anonymous())
        .layer(RequireScopeLayer::new(
            "projects:read".parse().unwrap(),
            Realm::new("api").unwrap(),
        ))
        .service(service_fn(|_: Request<String>| async {
            Ok::<_, Infallible>(Response::new(String::new()))
        }));
    let r = service.oneshot(get("/", &[])).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn refusals_are_problem_details_by_default() {
    let (_, state) = setup(None);
    let layer = AuthLayer::new(state);
    for (headers, status, error) in [
        (&[][..], 401, "unauthorized"),
        (
            &[("authorization", "Bearer v4.public.nope")][..],
            401,
            "invalid_token",
        ),
        (
            &[("authorization", "Bearer a b")][..],
            400,
            "invalid_request",
        ),
    ] {
        let r = call(layer.clone(), get("/", headers)).await;
        assert_eq!(r.status(), status);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/problem+json");
        assert_eq!(r.headers()["cache-control"], "no-store");
        let v: serde_json::Value = serde_json::from_str(r.body()).unwrap();
        assert_eq!(v["type"], "about:blank");
        assert_eq!(
            v["title"],
            StatusCode::from_u16(status)
                .unwrap()
                .canonical_reason()
                .unwrap()
        );
        assert_eq!(v["status"], status);
        assert_eq!(v["error"], error);
        assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
}

#[tokio::test]
async fn a_custom_renderer_sees_the_typed_reason_and_keeps_the_challenge() {
    let (issuer, state) = setup(None);
    let state = state.render_rejections_with(|r: &Rejection| {
        let reason = match r {
            Rejection::InvalidToken(kind) => format!("{kind:?}"),
            Rejection::InsufficientScope(scope) => format!("needs {scope}"),
            other => other.error().to_owned(),
        };
        let body = format!(
            "<error status=\"{}\" code=\"{}\">{reason}</error>",
            r.status().as_u16(),
            r.error_code().unwrap_or("-")
        );
        RejectionBody::new(HeaderValue::from_static("application/xml"), body)
    });
    let service = ServiceBuilder::new()
        .layer(AuthLayer::new(state))
        .layer(RequireScopeLayer::new(
            "billing/invoices:read".parse().unwrap(),
            Realm::new("api").unwrap(),
        ))
        .service(service_fn(|_: Request<String>| async {
            Ok::<_, Infallible>(Response::new(String::new()))
        }));
    let r = service
        .clone()
        .oneshot(get("/", &[("authorization", "Bearer v4.public.nope")]))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()[CONTENT_TYPE], "application/xml");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(
        r.headers()[WWW_AUTHENTICATE],
        "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"the token is malformed\""
    );
    assert_eq!(
        r.body(),
        "<error status=\"401\" code=\"invalid_token\">Malformed</error>"
    );
    // The scope layer inside answers with the same renderer.
    let token = mint(&issuer, "projects:read");
    let bearer = format!("Bearer {token}");
    let r = service
        .oneshot(get("/", &[("authorization", &bearer)]))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        r.body(),
        "<error status=\"403\" code=\"insufficient_scope\">needs billing/invoices:read</error>"
    );
    assert!(
        r.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .ends_with("scope=\"billing/invoices:read\"")
    );
}

#[tokio::test]
async fn the_old_json_body_is_one_renderer_away() {
    let (_, state) = setup(None);
    let state = state.render_rejections_with(|r: &Rejection| RejectionBody::json(r.json_body()));
    let r = call(AuthLayer::new(state), get("/", &[])).await;
    assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(
        r.body(),
        "{\"error\":\"unauthorized\",\"error_description\":\"bearer token required\"}"
    );
}

#[test]
fn bearer_only_is_the_default() {
    let (_, state) = setup(None);
    // Configuring just Bearer, or nothing, is the default (fast) path; the debug output names
    // no sources.
    let same = state.clone().token_sources([TokenSource::bearer()]);
    assert_eq!(format!("{state:?}"), format!("{same:?}"));
    let none = state.clone().token_sources([]);
    assert_eq!(format!("{state:?}"), format!("{none:?}"));
    let _ = AUTHORIZATION;
}
