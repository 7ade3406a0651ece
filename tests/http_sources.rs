//! Token sources and a service's own error format over a real loopback socket: an axum service
//! behind `AuthLayer` reading the token from `Authorization: Bearer`, a custom header and (for
//! WebSocket upgrades) a query parameter, answering refusals in the OAuth-style JSON of
//! `RenderRejection` instead of problem details; driven by a real HTTP client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::extract::Request;
use axum::routing::get;
use reqwest::{Client, StatusCode};
use scopekey::{Issuer, KeySet, SigningKey, TokenRequest, Verifier, VerifierConfig};
use scopekey_axum::{
    AuthLayer, AuthState, Authorized, Realm, Rejection, RejectionBody, TokenSource,
};
use std::sync::Arc;

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";

struct Service {
    base: String,
    client: Client,
    issuer: Issuer,
}

async fn start() -> Service {
    let key = SigningKey::generate().unwrap();
    let verifier = Verifier::new(
        KeySet::single(key.public_key().clone()),
        VerifierConfig::new(ISS, AUD, "production".parse().unwrap()),
    )
    .unwrap();
    let auth = AuthState::new(Arc::new(verifier), Realm::new("sources").unwrap())
        .token_sources([
            TokenSource::bearer(),
            TokenSource::header("x-api-token").unwrap(),
            TokenSource::query("access_token").unwrap(),
        ])
        .render_rejections_with(|r: &Rejection| RejectionBody::json(r.json_body()));
    // The handler reports what it saw of the request: the subject, and the URI as it reached it.
    let app = Router::new()
        .route(
            "/ws",
            get(|auth: Authorized, request: Request| async move {
                let uri = request.uri().to_string();
                serde_json::json!({ "sub": auth.subject(), "uri": uri }).to_string()
            }),
        )
        .layer(AuthLayer::new(auth.clone()))
        .with_state(auth);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Service {
        base,
        client: Client::new(),
        issuer: Issuer::new(key, ISS, "production".parse().unwrap()).unwrap(),
    }
}

impl Service {
    fn token(&self, sub: &str) -> String {
        self.issuer
            .issue(&TokenRequest::new(sub, AUD, "ws:read".parse().unwrap()))
            .unwrap()
            .token()
            .as_str()
            .to_owned()
    }

    async fn get(
        &self,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Option<String>, Option<String>, String) {
        let mut request = self.client.get(format!("{}{path_and_query}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let r = request.send().await.unwrap();
        let header = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
        let (status, challenge, content_type) = (
            r.status(),
            header("www-authenticate"),
            header("content-type"),
        );
        (status, challenge, content_type, r.text().await.unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_configured_source_carries_the_token_and_the_query_parameter_never_reaches_the_handler()
 {
    let s = start().await;
    let t = s.token("svc");
    let bearer = format!("Bearer {t}");
    for (case, path, headers) in [
        (
            "bearer",
            "/ws?room=7".to_owned(),
            vec![("authorization", bearer.as_str())],
        ),
        (
            "custom header",
            "/ws?room=7".to_owned(),
            vec![("x-api-token", t.as_str())],
        ),
        (
            "query parameter",
            format!("/ws?room=7&access_token={t}"),
            vec![],
        ),
        (
            "the same token twice",
            format!("/ws?access_token={t}&room=7"),
            vec![("x-api-token", t.as_str())],
        ),
    ] {
        let (status, _, _, body) = s.get(&path, &headers).await;
        assert_eq!(status, StatusCode::OK, "{case}: {body}");
        let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(seen["sub"], "svc", "{case}");
        // The parameter is gone from the URI the handler (and the audit trail) sees; the
        // others stay.
        assert_eq!(seen["uri"], "/ws?room=7", "{case}");
        assert!(!body.contains(&t), "{case}: the token reached the handler");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_different_tokens_are_a_400_and_refusals_use_the_services_own_format() {
    let s = start().await;
    let (a, b) = (s.token("a"), s.token("b"));
    let bearer = format!("Bearer {a}");
    for (path, headers) in [
        (
            "/ws".to_owned(),
            vec![
                ("authorization", bearer.as_str()),
                ("x-api-token", b.as_str()),
            ],
        ),
        (
            format!("/ws?access_token={b}"),
            vec![("x-api-token", a.as_str())],
        ),
        (format!("/ws?access_token={a}&access_token={b}"), vec![]),
    ] {
        let (status, challenge, content_type, body) = s.get(&path, &headers).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(content_type.as_deref(), Some("application/json"));
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["error"], "invalid_request", "{body}");
        assert!(challenge.unwrap().contains("error=\"invalid_request\""));
        assert!(!body.contains(&a) && !body.contains(&b));
    }
    // A bad token in the query: 401 in the service's format, the challenge beside it, nothing
    // of the token echoed.
    let (status, challenge, content_type, body) =
        s.get("/ws?access_token=v4.public.forged", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"error": "invalid_token", "error_description": "the token is malformed"})
    );
    assert!(
        challenge
            .unwrap()
            .starts_with("Bearer realm=\"sources\", error=\"invalid_token\"")
    );
    assert!(!body.contains("forged"));
    // No credentials at all: a bare challenge, the body in the service's format.
    let (status, challenge, _, body) = s.get("/ws", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some("Bearer realm=\"sources\""));
    assert!(body.starts_with("{\"error\""), "{body}");
}
