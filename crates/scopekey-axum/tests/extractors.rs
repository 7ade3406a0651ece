//! The axum extractors driven with `oneshot` through an axum `Router`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::routing::get;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use scopekey::{Action, Issuer, KeySet, SigningKey, TokenRequest, Verifier, VerifierConfig};
use scopekey_axum::{
    AuthLayer, AuthState, Authorized, Forbidden, Realm, Rejection, Require, RequireRejection,
    RequiredScope, required_scope,
};
use std::sync::Arc;
use tower::ServiceExt;

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";

required_scope!(
    /// Reading invoices.
    struct InvoicesRead = "billing/invoices:read";
);

async fn project(auth: Authorized, Path(id): Path<String>) -> Result<String, Forbidden> {
    auth.authorize(["projects", id.as_str()], Action::read())?;
    Ok(format!("project {id} for {}", auth.subject()))
}

async fn invoices(r: Require<InvoicesRead>) -> String {
    format!("invoices for {}", r.authorized().subject())
}

async fn maybe(auth: Option<Authorized>) -> String {
    match auth {
        Some(a) => format!("hello {}", a.subject()),
        None => "hello anonymous".to_owned(),
    }
}

fn setup() -> (Issuer, AuthState) {
    let key = SigningKey::generate().unwrap();
    let keys = KeySet::single(key.public_key().clone());
    let verifier = Verifier::new(
        keys,
        VerifierConfig::new(ISS, AUD, "production".parse().unwrap()),
    )
    .unwrap();
    let issuer = Issuer::new(key, ISS, "production".parse().unwrap()).unwrap();
    (
        issuer,
        AuthState::new(Arc::new(verifier), Realm::new("axum-test").unwrap()),
    )
}

fn router(state: AuthState, with_layer: bool) -> Router {
    let protected = Router::new()
        .route("/projects/{id}", get(project))
        .route("/billing/invoices", get(invoices));
    let protected = if with_layer {
        protected.layer(AuthLayer::new(state.clone()))
    } else {
        protected
    };
    protected.route("/hello", get(maybe)).with_state(state)
}

async fn send(
    app: &Router,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, Option<String>, String) {
    let mut req = Request::builder().uri(path);
    if let Some(t) = token {
        req = req.header(AUTHORIZATION, format!("Bearer {t}"));
    }
    let r = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    read(r).await
}

/// A response's status, `WWW-Authenticate` challenge and body.
async fn read(r: axum::response::Response) -> (StatusCode, Option<String>, String) {
    let status = r.status();
    let challenge = r
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body =
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (status, challenge, body)
}

fn mint(issuer: &Issuer, scopes: &str) -> String {
    issuer
        .issue(&TokenRequest::new("svc", AUD, scopes.parse().unwrap()))
        .unwrap()
        .token()
        .as_str()
        .to_owned()
}

/// docs/axum.md: every refusal, 400 `invalid_resource` included, carries `Cache-Control:
/// no-store` and a JSON body.
#[tokio::test]
async fn every_refusal_is_no_store() {
    for with_layer in [true, false] {
        let (issuer, state) = setup();
        let app = router(state, with_layer);
        let reader = mint(&issuer, "projects/42:read");
        for (path, token, status, error) in [
            ("/projects/42", None, StatusCode::UNAUTHORIZED, ""),
            (
                "/projects/42",
                Some("v4.public.nope"),
                StatusCode::UNAUTHORIZED,
                "invalid_token",
            ),
            (
                "/projects/43",
                Some(reader.as_str()),
                StatusCode::FORBIDDEN,
                "insufficient_scope",
            ),
            (
                "/projects/..",
                Some(reader.as_str()),
                StatusCode::BAD_REQUEST,
                "invalid_resource",
            ),
            (
                "/projects/42%2Fx",
                Some(reader.as_str()),
                StatusCode::BAD_REQUEST,
                "invalid_resource",
            ),
        ] {
            let mut req = Request::builder().uri(path);
            if let Some(t) = token {
                req = req.header(AUTHORIZATION, format!("Bearer {t}"));
            }
            let r = app
                .clone()
                .oneshot(req.body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(r.status(), status, "{path}");
            assert_eq!(
                r.headers()
                    .get(http::header::CACHE_CONTROL)
                    .map(|v| v.as_bytes()),
                Some(&b"no-store"[..]),
                "{path} ({status})"
            );
            assert_eq!(
                r.headers()
                    .get(http::header::CONTENT_TYPE)
                    .map(|v| v.as_bytes()),
                Some(&b"application/problem+json"[..]),
                "{path}"
            );
            let body = r.into_body().collect().await.unwrap().to_bytes();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            if !error.is_empty() {
                assert_eq!(v["error"], error, "{path}");
            }
            assert_eq!(v["status"], status.as_u16(), "{path}");
            assert_eq!(v["type"], "about:blank", "{path}");
        }
    }
}

#[tokio::test]
async fn extractors_work_with_and_without_the_layer() {
    for with_layer in [true, false] {
        let (issuer, state) = setup();
        let app = router(state, with_layer);
        let reader = mint(&issuer, "projects/42:read");
        let (s, _, body) = send(&app, "/projects/42", Some(&reader)).await;
        assert_eq!((s, body.as_str()), (StatusCode::OK, "project 42 for svc"));

        let (s, c, body) = send(&app, "/projects/43", Some(&reader)).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert!(c.unwrap().ends_with("scope=\"projects/43:read\""));
        assert!(body.contains("insufficient_scope"));

        let (s, c, _) = send(&app, "/projects/42", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(c.unwrap(), "Bearer realm=\"axum-test\"");

        let (s, c, _) = send(&app, "/projects/42", Some("v4.public.nope")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(c.unwrap().contains("invalid_token"));

        // An id that would escape its segment: percent-decoded by the router, refused here.
        for id in ["42%2Fcomments", "..", "%2A", "42%3Awrite", "4%202"] {
            let (s, _, body) = send(&app, &format!("/projects/{id}"), Some(&reader)).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{id}");
            assert!(body.contains("invalid_resource"));
        }

        let billing = mint(&issuer, "billing:read");
        let (s, _, body) = send(&app, "/billing/invoices", Some(&billing)).await;
        assert_eq!((s, body.as_str()), (StatusCode::OK, "invoices for svc"));
        let (s, c, _) = send(&app, "/billing/invoices", Some(&reader)).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert!(c.unwrap().ends_with("scope=\"billing/invoices:read\""));
    }
}

#[tokio::test]
async fn optional_extractor_is_none_only_without_credentials() {
    let (issuer, state) = setup();
    let app = router(state, false);
    let (s, _, body) = send(&app, "/hello", None).await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "hello anonymous"));
    let token = mint(&issuer, "a:read");
    let (_, _, body) = send(&app, "/hello", Some(&token)).await;
    assert_eq!(body, "hello svc");
    // A bad token is refused, not treated as anonymous.
    let (s, _, _) = send(&app, "/hello", Some("v4.public.bad")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[cfg(feature = "test-util")]
#[test]
fn handler_policy_is_unit_testable_without_keys() {
    let auth = Authorized::for_tests("report-bot", "projects:read comments:write").unwrap();
    assert!(auth.authorize(["projects", "7"], Action::read()).is_ok());
    let denied = auth
        .authorize(["projects", "7"], Action::write())
        .unwrap_err();
    assert_eq!(
        denied.rejection().unwrap(),
        &scopekey_axum::Rejection::InsufficientScope("projects/7:write".parse().unwrap())
    );
    assert!(
        auth.authorize(["projects", "7/.."], Action::read())
            .unwrap_err()
            .invalid_resource()
            .is_some()
    );
}

/// `Require<R>` extracted directly: its typed rejection, then the response it becomes.
async fn require_invoices(
    state: &AuthState,
    token: Option<&str>,
) -> Result<Require<InvoicesRead>, RequireRejection> {
    use axum::extract::FromRequestParts as _;
    let mut req = Request::builder().uri("/billing/invoices");
    if let Some(t) = token {
        req = req.header(AUTHORIZATION, format!("Bearer {t}"));
    }
    let (mut parts, ()) = req.body(()).unwrap().into_parts();
    Require::<InvoicesRead>::from_request_parts(&mut parts, state).await
}

async fn response_of(rejection: RequireRejection) -> (StatusCode, Option<String>, String) {
    read(axum::response::IntoResponse::into_response(rejection)).await
}

#[tokio::test]
async fn require_rejects_missing_credentials_with_a_typed_401() {
    let (_, state) = setup();
    let rejection = require_invoices(&state, None).await.unwrap_err();
    assert_eq!(rejection.rejection(), &Rejection::MissingCredentials);
    assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED);
    let body = concat!(
        r#"{"type":"about:blank","title":"Unauthorized","status":401,"#,
        r#""detail":"bearer token required","error":"unauthorized"}"#
    );
    assert_eq!(rejection.body(), body);
    let (s, c, b) = response_of(rejection).await;
    assert_eq!((s, b.as_str()), (StatusCode::UNAUTHORIZED, body));
    assert_eq!(c.unwrap(), "Bearer realm=\"axum-test\"");
}

#[tokio::test]
async fn require_rejects_an_invalid_token_with_a_typed_401() {
    let (_, state) = setup();
    let rejection = require_invoices(&state, Some("v4.public.nope"))
        .await
        .unwrap_err();
    assert!(matches!(rejection.rejection(), Rejection::InvalidToken(_)));
    assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED);
    let body = concat!(
        r#"{"type":"about:blank","title":"Unauthorized","status":401,"#,
        r#""detail":"the token is malformed","error":"invalid_token"}"#
    );
    assert_eq!(rejection.body(), body);
    let (s, c, b) = response_of(rejection).await;
    assert_eq!((s, b.as_str()), (StatusCode::UNAUTHORIZED, body));
    assert!(c.unwrap().contains("error=\"invalid_token\""));
}

#[tokio::test]
async fn require_rejects_a_missing_scope_with_a_typed_403() {
    let (issuer, state) = setup();
    let reader = mint(&issuer, "projects/42:read");
    let rejection = require_invoices(&state, Some(&reader)).await.unwrap_err();
    assert_eq!(
        rejection.rejection(),
        &Rejection::InsufficientScope("billing/invoices:read".parse().unwrap())
    );
    assert_eq!(rejection.status(), StatusCode::FORBIDDEN);
    let body = concat!(
        r#"{"type":"about:blank","title":"Forbidden","status":403,"#,
        r#""detail":"the token does not grant the required scope","#,
        r#""error":"insufficient_scope","scope":"billing/invoices:read"}"#
    );
    assert_eq!(rejection.body(), body);
    let (s, c, b) = response_of(rejection).await;
    assert_eq!((s, b.as_str()), (StatusCode::FORBIDDEN, body));
    assert!(c.unwrap().ends_with("scope=\"billing/invoices:read\""));

    // Through the router, with and without the layer, the same answer.
    for with_layer in [true, false] {
        let app = router(state.clone(), with_layer);
        let (s, _, b) = send(&app, "/billing/invoices", Some(&reader)).await;
        assert_eq!((s, b.as_str()), (StatusCode::FORBIDDEN, body));
    }
}

#[tokio::test]
async fn require_accepts_a_grant_with_the_scope() {
    let (issuer, state) = setup();
    let billing = mint(&issuer, "billing:read");
    let required = require_invoices(&state, Some(&billing)).await.unwrap();
    assert_eq!(required.authorized().subject(), "svc");
}

#[test]
fn required_scope_is_parsed_once() {
    let first = InvoicesRead::scope().unwrap();
    let second = InvoicesRead::scope().unwrap();
    let (std::borrow::Cow::Borrowed(a), std::borrow::Cow::Borrowed(b)) = (&first, &second) else {
        panic!("required_scope! hands out its static parse, not a fresh one");
    };
    assert!(std::ptr::eq(*a, *b));
    assert_eq!(a.to_string(), InvoicesRead::SCOPE);
}

/// `Authorized`'s rejection says its status and body too, and becomes exactly that response.
#[tokio::test]
async fn the_authorized_rejection_has_its_status_and_body() {
    use axum::extract::FromRequestParts as _;
    let (_, state) = setup();
    let (mut parts, ()) = Request::builder()
        .uri("/projects/1")
        .header(AUTHORIZATION, "Bearer v4.public.nope")
        .body(())
        .unwrap()
        .into_parts();
    let rejection = Authorized::from_request_parts(&mut parts, &state)
        .await
        .unwrap_err();
    assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED);
    let body = concat!(
        r#"{"type":"about:blank","title":"Unauthorized","status":401,"#,
        r#""detail":"the token is malformed","error":"invalid_token"}"#
    );
    assert_eq!(rejection.body(), body);
    let (s, _, b) = read(axum::response::IntoResponse::into_response(rejection)).await;
    assert_eq!((s, b.as_str()), (StatusCode::UNAUTHORIZED, body));
}

/// An optional route under its own `allow_anonymous` layer (`route_layer`), with the cookie
/// source: anonymous is `None`, a good token `Some`, a bad one 401 in either source, and a
/// plain `Authorized` on an anonymous request is still 401 (it never re-verifies).
#[tokio::test]
async fn optional_routes_under_an_anonymous_layer() {
    let (issuer, state) = setup();
    let state = state.token_sources([
        scopekey_axum::TokenSource::bearer(),
        scopekey_axum::TokenSource::cookie("scopekey_token").unwrap(),
    ]);
    let app = Router::new()
        .route("/hello", get(maybe))
        .route(
            "/strict",
            get(|a: Authorized| async move { a.subject().to_owned() }),
        )
        .route_layer(AuthLayer::new(state.clone()).allow_anonymous())
        .with_state(state);
    let (s, _, b) = send(&app, "/hello", None).await;
    assert_eq!((s, b.as_str()), (StatusCode::OK, "hello anonymous"));
    let token = mint(&issuer, "projects:read");
    let (s, _, b) = send(&app, "/hello", Some(&token)).await;
    assert_eq!((s, b.as_str()), (StatusCode::OK, "hello svc"));
    let (s, c, _) = send(&app, "/hello", Some("v4.public.nope")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(c.unwrap().contains("error=\"invalid_token\""));
    let cookie = |value: &str| {
        let req = Request::builder()
            .uri("/hello")
            .header(http::header::COOKIE, format!("scopekey_token={value}"))
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(req)
    };
    let (s, _, b) = read(cookie(&token).await.unwrap()).await;
    assert_eq!((s, b.as_str()), (StatusCode::OK, "hello svc"));
    let (s, _, _) = read(cookie("v4.public.nope").await.unwrap()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, c, b) = send(&app, "/strict", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(c.unwrap(), "Bearer realm=\"axum-test\"");
    assert!(b.contains("\"error\":\"unauthorized\""), "{b}");
}

/// The state's renderer answers every refusal, with the layer and without it: the extractors'
/// 401, `Require`'s 403, and the point of action's 400 `invalid_resource`.
#[tokio::test]
async fn the_renderer_answers_every_refusal() {
    let (issuer, state) = setup();
    let state = state.render_rejections_with(|r: &Rejection| {
        scopekey_axum::RejectionBody::json(format!(
            "{{\"code\":{},\"reason\":\"{}\"}}",
            r.status().as_u16(),
            r.error()
        ))
    });
    let reader = mint(&issuer, "projects/42:read");
    for with_layer in [true, false] {
        let app = router(state.clone(), with_layer);
        for (path, token, want) in [
            (
                "/projects/42",
                None,
                r#"{"code":401,"reason":"unauthorized"}"#,
            ),
            (
                "/billing/invoices",
                Some(reader.as_str()),
                r#"{"code":403,"reason":"insufficient_scope"}"#,
            ),
            (
                "/projects/4%2F2",
                Some(reader.as_str()),
                r#"{"code":400,"reason":"invalid_resource"}"#,
            ),
        ] {
            let (_, challenge, body) = send(&app, path, token).await;
            assert_eq!(body, want, "{path} with layer {with_layer}");
            if path.starts_with("/billing") {
                assert!(
                    challenge
                        .unwrap()
                        .ends_with("scope=\"billing/invoices:read\"")
                );
            }
        }
    }
}
