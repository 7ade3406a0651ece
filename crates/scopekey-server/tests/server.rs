//! The token service over a real loopback socket: every endpoint, and every refusal with its
//! RFC error, changing nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use reqwest::{Client, StatusCode};
use scopekey::consumer::Consumer;
use scopekey::inventory::InventoryQuery;
use scopekey::{KeySet, SigningKey, VerifierConfig, VerifyErrorKind};
use scopekey_server::{ServerConfig, TokenService};
use scopekey_store::{ReplicaOptions, Store};
use serde_json::Value;
use std::time::Duration;

const API: &str = "https://api.example";
const OTHER_API: &str = "https://other.example";

struct Server {
    base: String,
    store: Store,
    /// The signing key, as PASERK (to mint tokens of this issuer outside the service).
    key: String,
    ci_secret: String,
    ops_secret: String,
    _dir: common::Dir,
}

fn consumer(name: &str, ceiling: &str) -> Consumer {
    Consumer::new(
        name,
        "platform",
        "tests",
        "test".parse().unwrap(),
        ceiling.parse().unwrap(),
    )
    .unwrap()
}

/// A server on a fresh SQLite store, with consumers `ci` (ceiling `projects:read
/// projects/42:write`) and `ops` (`audit:read`), each with a client secret.
async fn start(configure: impl FnOnce(ServerConfig) -> ServerConfig) -> Server {
    let dir = common::Dir::new("scopekey-server");
    let (listener, base) = common::listener().await;
    let url = dir.store_url();
    let config = configure(
        ServerConfig::new(base.clone(), API, "test".parse().unwrap())
            .unwrap()
            .audience(OTHER_API)
            .unwrap(),
    );
    let (service, store, ci_secret, ops_secret, key) = tokio::task::spawn_blocking(move || {
        let store = Store::open(&url).unwrap();
        store
            .add_consumer(&consumer("ci", "projects:read projects/42:write"))
            .unwrap();
        store.add_consumer(&consumer("ops", "audit:read")).unwrap();
        store
            .add_consumer(&consumer("wide", "projects/*:read projects/*:write"))
            .unwrap();
        let ci = store
            .rotate_client_secret("ci")
            .unwrap()
            .expose_secret()
            .to_owned();
        let ops = store
            .rotate_client_secret("ops")
            .unwrap()
            .expose_secret()
            .to_owned();
        let key = SigningKey::generate().unwrap();
        let paserk = key.to_paserk().to_string();
        let service = TokenService::new(store.clone(), key, config).unwrap();
        (service, store, ci, ops, paserk)
    })
    .await
    .unwrap();
    common::serve(listener, &service);
    Server {
        base,
        store,
        key,
        ci_secret,
        ops_secret,
        _dir: dir,
    }
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Server {
    async fn post(&self, path: &str, basic: Option<(&str, &str)>, form: &str) -> Answer {
        self.post_raw(
            path,
            basic,
            "application/x-www-form-urlencoded",
            form.to_owned(),
        )
        .await
    }

    async fn post_raw(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        content_type: &str,
        body: String,
    ) -> Answer {
        let mut req = Client::new()
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn token(&self, form: &str) -> Answer {
        self.post("/oauth/token", Some(("ci", &self.ci_secret)), form)
            .await
    }

    async fn issued_count(&self) -> usize {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.tokens(&InventoryQuery::all()).unwrap().len())
            .await
            .unwrap()
    }
}

fn assert_error(a: &Answer, status: StatusCode, error: &str) {
    assert_eq!(a.status, status, "{:?}", a.body);
    assert_eq!(a.body["error"], error, "{:?}", a.body);
    assert!(
        a.body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    assert_eq!(a.headers["cache-control"], "no-store");
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_and_jwks_describe_the_service() {
    let s = start(|c| c).await;
    let meta: Value = serde_json::from_str(
        &reqwest::get(format!("{}/.well-known/oauth-authorization-server", s.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(meta["issuer"], s.base);
    assert_eq!(meta["token_endpoint"], format!("{}/oauth/token", s.base));
    assert_eq!(
        meta["introspection_endpoint"],
        format!("{}/oauth/introspect", s.base)
    );
    assert_eq!(
        meta["revocation_endpoint"],
        format!("{}/oauth/revoke", s.base)
    );
    assert_eq!(
        meta["grant_types_supported"],
        serde_json::json!([
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ])
    );
    let jwks = reqwest::get(meta["jwks_uri"].as_str().unwrap())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let keys = KeySet::from_jwks(&jwks).unwrap();
    assert_eq!(keys.len(), 1);
    // The signing key was registered in the store.
    let store = s.store.clone();
    let stored = tokio::task::spawn_blocking(move || store.key_set().unwrap())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn client_credentials_give_tokens_that_verify_with_the_published_keys() {
    let s = start(|c| c).await;
    let jwks = reqwest::get(format!("{}/.well-known/jwks.json", s.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let verifier = scopekey::Verifier::new(
        KeySet::from_jwks(&jwks).unwrap(),
        VerifierConfig::new(s.base.clone(), API, "test".parse().unwrap()),
    )
    .unwrap();
    // No scope: the read-only part of the ceiling, by HTTP Basic.
    let a = s.token("grant_type=client_credentials").await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.headers["cache-control"], "no-store");
    assert_eq!(a.body["token_type"], "Bearer");
    assert_eq!(a.body["expires_in"], 900);
    let grant = verifier
        .verify(a.body["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(grant.subject(), "ci");
    assert!(
        grant.claims().scopes().is_read_only(),
        "{}",
        grant.claims().scopes()
    );
    assert_eq!(a.body["scope"], grant.claims().scopes().as_str());
    // An escalation within the ceiling, by client_secret_post, for the second audience.
    let form = format!(
        "grant_type=client_credentials&client_id=ci&client_secret={}&scope=projects%2F42%3Awrite&resource={}",
        s.ci_secret,
        urlencode(OTHER_API)
    );
    let a = s.post("/oauth/token", None, &form).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["scope"], "projects/42:write");
    let other = scopekey::Verifier::new(
        KeySet::from_jwks(&jwks).unwrap(),
        VerifierConfig::new(s.base.clone(), OTHER_API, "test".parse().unwrap()),
    )
    .unwrap();
    let token = a.body["access_token"].as_str().unwrap();
    assert!(other.verify(token).is_ok());
    assert_eq!(
        verifier.verify(token).unwrap_err().kind(),
        VerifyErrorKind::WrongAudience
    );
    // Both are in the inventory, with their issued events in the trail.
    assert_eq!(s.issued_count().await, 2);
    let store = s.store.clone();
    let trail = tokio::task::spawn_blocking(move || store.audit_log(0, 100).unwrap())
        .await
        .unwrap();
    assert_eq!(
        trail
            .iter()
            .filter(|e| e.contains("\"event\":\"issued\""))
            .count(),
        2
    );
    assert!(trail.iter().all(|e| !e.contains(token)));
}

use common::urlencode;

#[tokio::test(flavor = "multi_thread")]
async fn every_refusal_has_its_rfc_error_and_changes_nothing() {
    let s = start(|c| c).await;
    let cc = "grant_type=client_credentials";
    // Authentication.
    let a = s.post("/oauth/token", Some(("ci", "sks_wrong")), cc).await;
    assert_error(&a, StatusCode::UNAUTHORIZED, "invalid_client");
    assert!(
        a.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let a = s
        .post("/oauth/token", Some(("nobody", &s.ci_secret)), cc)
        .await;
    assert_error(&a, StatusCode::UNAUTHORIZED, "invalid_client");
    let a = s.post("/oauth/token", None, cc).await;
    assert_error(&a, StatusCode::UNAUTHORIZED, "invalid_client");
    let a = s
        .post("/oauth/token", None, &format!("{cc}&client_id=ci"))
        .await;
    assert_error(&a, StatusCode::UNAUTHORIZED, "invalid_client");
    let a = s
        .post(
            "/oauth/token",
            Some(("ci", &s.ci_secret)),
            &format!("{cc}&client_secret={}", s.ci_secret),
        )
        .await;
    assert_error(&a, StatusCode::BAD_REQUEST, "invalid_request");
    let a = s
        .post(
            "/oauth/token",
            Some(("ci", &s.ci_secret)),
            &format!("{cc}&client_id=ops"),
        )
        .await;
    assert_error(&a, StatusCode::BAD_REQUEST, "invalid_request");
    // The secret of one client is not another's.
    let a = s
        .post("/oauth/token", Some(("ops", &s.ci_secret)), cc)
        .await;
    assert_error(&a, StatusCode::UNAUTHORIZED, "invalid_client");
    // Grants, scopes, targets.
    assert_error(
        &s.token("").await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert_error(
        &s.token("grant_type=password").await,
        StatusCode::BAD_REQUEST,
        "unsupported_grant_type",
    );
    let a = s.token(&format!("{cc}&scope=projects%2F43%3Awrite")).await;
    assert_error(&a, StatusCode::BAD_REQUEST, "invalid_scope");
    let d = a.body["error_description"].as_str().unwrap();
    assert!(
        d.contains("projects/43:write") && !d.contains("projects/42"),
        "names only what was asked: {d}"
    );
    assert_error(
        &s.token(&format!("{cc}&scope=projects%2F%3Aread")).await,
        StatusCode::BAD_REQUEST,
        "invalid_scope",
    );
    assert_error(
        &s.token(&format!("{cc}&scope=admin%3Aadmin")).await,
        StatusCode::BAD_REQUEST,
        "invalid_scope",
    );
    assert_error(
        &s.token(&format!("{cc}&resource=https%3A%2F%2Fevil.example"))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_target",
    );
    // Malformed bodies.
    assert_error(
        &s.token(&format!("{cc}&scope=a%3Aread&scope=b%3Aread"))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert_error(
        &s.token("grant_type=client_credentials&scope=%zz").await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    let a = s
        .post_raw(
            "/oauth/token",
            Some(("ci", &s.ci_secret)),
            "application/json",
            "{\"grant_type\":\"client_credentials\"}".into(),
        )
        .await;
    assert_error(&a, StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request");
    let big = format!("{cc}&pad={}", "a".repeat(scopekey_server::MAX_BODY_LEN));
    let a = s
        .post_raw(
            "/oauth/token",
            Some(("ci", &s.ci_secret)),
            "application/x-www-form-urlencoded",
            big,
        )
        .await;
    assert_error(&a, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request");
    let a = s
        .post_raw(
            "/oauth/token",
            None,
            "application/x-www-form-urlencoded",
            "grant_type=client_credentials".into(),
        )
        .await;
    assert_error(&a, StatusCode::UNAUTHORIZED, "invalid_client");
    // Nothing was issued by any of it.
    assert_eq!(s.issued_count().await, 0);
    // A disabled consumer authenticates no more.
    let store = s.store.clone();
    tokio::task::spawn_blocking(move || store.disable_consumer("ci", "test", "leaked").unwrap())
        .await
        .unwrap();
    let a = s
        .post("/oauth/introspect", Some(("ci", &s.ci_secret)), "token=x")
        .await;
    assert_error(&a, StatusCode::UNAUTHORIZED, "invalid_client");
    let a = s.token(cc).await;
    assert_error(&a, StatusCode::UNAUTHORIZED, "invalid_client");
    assert!(
        a.body["error_description"]
            .as_str()
            .unwrap()
            .contains("disabled")
    );
    assert_eq!(s.issued_count().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_failures_slow_down_guessing_but_never_lock_out_a_known_client() {
    let s = start(|c| c.failure_throttle(3, Duration::from_secs(60), 100).unwrap()).await;
    let cc = "grant_type=client_credentials";
    // `ops` authenticated before the flood.
    let a = s
        .post("/oauth/token", Some(("ops", &s.ops_secret)), cc)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    for _ in 0..3 {
        let a = s.post("/oauth/token", Some(("ci", "sks_guess")), cc).await;
        assert_error(&a, StatusCode::UNAUTHORIZED, "invalid_client");
    }
    // From this source, no secret is checked any more until the window ends: not even the
    // right one of a client this instance has not verified yet.
    let a = s.token(cc).await;
    assert_error(&a, StatusCode::TOO_MANY_REQUESTS, "slow_down");
    let wait: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let a = s.post("/oauth/token", Some(("nobody", "sks_x")), cc).await;
    assert_error(&a, StatusCode::TOO_MANY_REQUESTS, "slow_down");
    // A client verified before is confirmed without the slow check, throttle or not.
    let a = s
        .post("/oauth/token", Some(("ops", &s.ops_secret)), cc)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(s.issued_count().await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn broad_scopes_need_the_servers_opt_in_and_are_never_a_default() {
    let s = start(|c| c).await;
    let store = s.store.clone();
    let wide = tokio::task::spawn_blocking(move || {
        store
            .rotate_client_secret("wide")
            .unwrap()
            .expose_secret()
            .to_owned()
    })
    .await
    .unwrap();
    let cc = "grant_type=client_credentials";
    let a = s.post("/oauth/token", Some(("wide", &wide)), cc).await;
    assert_error(&a, StatusCode::BAD_REQUEST, "invalid_scope");
    let a = s
        .post(
            "/oauth/token",
            Some(("wide", &wide)),
            &format!("{cc}&scope=projects%2F*%3Aread"),
        )
        .await;
    assert_error(&a, StatusCode::BAD_REQUEST, "invalid_scope");
    assert!(
        a.body["error_description"]
            .as_str()
            .unwrap()
            .contains("broad")
    );
    // A narrow scope within the broad ceiling is fine.
    let a = s
        .post(
            "/oauth/token",
            Some(("wide", &wide)),
            &format!("{cc}&scope=projects%2F7%3Awrite"),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    let s = start(|c| c.allow_broad(true)).await;
    let store = s.store.clone();
    let wide = tokio::task::spawn_blocking(move || {
        store
            .rotate_client_secret("wide")
            .unwrap()
            .expose_secret()
            .to_owned()
    })
    .await
    .unwrap();
    let a = s
        .post(
            "/oauth/token",
            Some(("wide", &wide)),
            &format!("{cc}&scope=projects%2F*%3Aread"),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["scope"], "projects/*:read");
}

/// A `private_key_jwt` client assertion signed by ed25519-dalek directly (not by scopekey).
fn assertion(key: &ed25519_dalek::SigningKey, header: &str, claims: &Value) -> String {
    use base64::Engine as _;
    use ed25519_dalek::Signer as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let input = format!(
        "{}.{}",
        b64(header.as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", b64(&sig.to_bytes()))
}

#[tokio::test(flavor = "multi_thread")]
async fn private_key_jwt_authenticates_without_a_shared_secret() {
    let s = start(|c| c).await;
    let client_key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let public = scopekey::PublicKey::from_bytes(client_key.verifying_key().as_bytes()).unwrap();
    let store = s.store.clone();
    tokio::task::spawn_blocking(move || store.register_client_key("ci", &public).unwrap())
        .await
        .unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let token_endpoint = format!("{}/oauth/token", s.base);
    let claims = |jti: &str, aud: &str, exp: i64| serde_json::json!({"iss": "ci", "sub": "ci", "aud": aud, "exp": exp, "iat": now, "jti": jti});
    let form = |a: &str| {
        format!(
            "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={a}"
        )
    };
    let header = r#"{"alg":"EdDSA","typ":"JWT"}"#;
    let good = assertion(
        &client_key,
        header,
        &claims("a1", &token_endpoint, now + 60),
    );
    let a = s.post("/oauth/token", None, &form(&good)).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    // Each refusal says why, and issues nothing.
    let other_key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let cases = [
        (
            assertion(
                &client_key,
                header,
                &claims("a1", &token_endpoint, now + 60),
            ),
            "already used",
        ),
        (
            assertion(&other_key, header, &claims("a2", &token_endpoint, now + 60)),
            "signature",
        ),
        (
            assertion(
                &client_key,
                header,
                &claims("a3", "https://evil.example", now + 60),
            ),
            "aud",
        ),
        (
            assertion(
                &client_key,
                header,
                &claims("a4", &token_endpoint, now - 120),
            ),
            "expired",
        ),
        (
            assertion(
                &client_key,
                header,
                &claims("a5", &token_endpoint, now + 7200),
            ),
            "short-lived",
        ),
        (
            assertion(
                &client_key,
                r#"{"alg":"EdDSA","typ":"at+jwt"}"#,
                &claims("a6", &token_endpoint, now + 60),
            ),
            "access token",
        ),
        (
            assertion(
                &client_key,
                r#"{"alg":"HS256"}"#,
                &claims("a7", &token_endpoint, now + 60),
            ),
            "EdDSA",
        ),
        (
            assertion(
                &client_key,
                header,
                &serde_json::json!({"iss": "ops", "sub": "ci", "aud": token_endpoint, "exp": now + 60, "jti": "a8"}),
            ),
            "iss and sub",
        ),
        (
            assertion(
                &client_key,
                header,
                &serde_json::json!({"iss": "ci", "sub": "ci", "aud": token_endpoint, "exp": now + 60}),
            ),
            "jti",
        ),
    ];
    for (bad, why) in cases {
        let a = s.post("/oauth/token", None, &form(&bad)).await;
        assert_error(&a, StatusCode::UNAUTHORIZED, "invalid_client");
        let d = a.body["error_description"].as_str().unwrap();
        assert!(d.contains(why), "{why}: {d}");
    }
    // An assertion for a client without a registered key, and two methods at once.
    let ops = assertion(
        &client_key,
        header,
        &serde_json::json!({"iss": "ops", "sub": "ops", "aud": token_endpoint, "exp": now + 60, "jti": "b1"}),
    );
    assert_error(
        &s.post("/oauth/token", None, &form(&ops)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    );
    let fresh = assertion(
        &client_key,
        header,
        &claims("c1", &token_endpoint, now + 60),
    );
    let a = s
        .post("/oauth/token", Some(("ci", &s.ci_secret)), &form(&fresh))
        .await;
    assert_error(&a, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(s.issued_count().await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn introspection_is_for_authenticated_clients_about_their_own_tokens() {
    let s = start(|c| c).await;
    let token = s.token("grant_type=client_credentials").await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ops_token = s
        .post(
            "/oauth/token",
            Some(("ops", &s.ops_secret)),
            "grant_type=client_credentials",
        )
        .await
        .body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let form = format!("token={token}");
    // Without authentication: refused.
    let a = s.post("/oauth/introspect", None, &form).await;
    assert_error(&a, StatusCode::UNAUTHORIZED, "invalid_client");
    let a = s
        .post("/oauth/introspect", Some(("ci", "sks_wrong")), &form)
        .await;
    assert_error(&a, StatusCode::UNAUTHORIZED, "invalid_client");
    assert_error(
        &s.post("/oauth/introspect", Some(("ci", &s.ci_secret)), "")
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    // Its own token: active, with its claims.
    let a = s
        .post("/oauth/introspect", Some(("ci", &s.ci_secret)), &form)
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["active"], true);
    assert_eq!(a.body["sub"], "ci");
    assert_eq!(a.body["client_id"], "ci");
    assert_eq!(a.body["aud"], API);
    assert_eq!(a.body["iss"], s.base);
    assert!(a.body["exp"].as_i64().unwrap() > a.body["iat"].as_i64().unwrap());
    // Another client's token, garbage, nothing: `active: false` and nothing else.
    for other in [
        format!("token={ops_token}"),
        "token=v4.public.garbage".into(),
        format!("token={}", "x".repeat(5000)),
    ] {
        let a = s
            .post("/oauth/introspect", Some(("ci", &s.ci_secret)), &other)
            .await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.body, serde_json::json!({"active": false}));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_revokes_its_own_token_everywhere() {
    let s = start(|c| c).await;
    let token = s.token("grant_type=client_credentials").await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ops_token = s
        .post(
            "/oauth/token",
            Some(("ops", &s.ops_secret)),
            "grant_type=client_credentials",
        )
        .await
        .body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // A verifier in another process would read the store: a replica of it here.
    let store = s.store.clone();
    let (base, t) = (s.base.clone(), token.clone());
    let verifier = tokio::task::spawn_blocking(move || {
        let replica = scopekey_store::Replica::start(
            &store,
            ReplicaOptions::default().poll_interval(Duration::from_millis(50)),
        )
        .unwrap();
        let v = replica
            .verifier(VerifierConfig::new(base, API, "test".parse().unwrap()))
            .unwrap();
        assert!(v.verify(&t).is_ok());
        (replica, v)
    })
    .await
    .unwrap();
    // Not the caller's: refused, and the token stays active.
    let a = s
        .post(
            "/oauth/revoke",
            Some(("ci", &s.ci_secret)),
            &format!("token={ops_token}"),
        )
        .await;
    assert_error(&a, StatusCode::BAD_REQUEST, "unauthorized_client");
    let a = s
        .post(
            "/oauth/introspect",
            Some(("ops", &s.ops_secret)),
            &format!("token={ops_token}"),
        )
        .await;
    assert_eq!(a.body["active"], true);
    // Without authentication or token: refused.
    assert_error(
        &s.post("/oauth/revoke", None, &format!("token={token}"))
            .await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    );
    assert_error(
        &s.post(
            "/oauth/revoke",
            Some(("ci", &s.ci_secret)),
            "token_type_hint=access_token",
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    // Its own: revoked; garbage and a second revocation are 200 too (RFC 7009 §2.2).
    for _ in 0..2 {
        let a = s
            .post(
                "/oauth/revoke",
                Some(("ci", &s.ci_secret)),
                &format!("token={token}&token_type_hint=access_token"),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    }
    let a = s
        .post(
            "/oauth/revoke",
            Some(("ci", &s.ci_secret)),
            "token=v4.public.garbage",
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = s
        .post(
            "/oauth/introspect",
            Some(("ci", &s.ci_secret)),
            &format!("token={token}"),
        )
        .await;
    assert_eq!(a.body, serde_json::json!({"active": false}));
    // A token of this issuer the service's own rules would not call live (another audience,
    // seven days, limited to a network) is revoked all the same, for every service.
    let key = SigningKey::from_paserk(&s.key).unwrap();
    let issuer = scopekey::Issuer::new(key, s.base.clone(), "test".parse().unwrap())
        .unwrap()
        .with_max_ttl(Duration::from_secs(30 * 86_400));
    let odd = issuer
        .issue(
            &scopekey::TokenRequest::new(
                "ci",
                "https://elsewhere.example",
                "projects:read".parse().unwrap(),
            )
            .ttl(Duration::from_secs(7 * 86_400))
            .allow_networks(["10.0.0.0/8".parse::<scopekey::Network>().unwrap()]),
        )
        .unwrap();
    let odd = odd.token().as_str().to_owned();
    let a = s
        .post(
            "/oauth/revoke",
            Some(("ci", &s.ci_secret)),
            &format!("token={odd}"),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    let (replica, v) = verifier;
    let elsewhere = replica
        .verifier(
            VerifierConfig::new(
                s.base.clone(),
                "https://elsewhere.example",
                "test".parse().unwrap(),
            )
            .max_lifetime(Duration::from_secs(30 * 86_400)),
        )
        .unwrap();
    let inside = Some("10.1.2.3".parse().unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match elsewhere.verify_from(&odd, None, inside) {
            Err(e) if e.kind() == VerifyErrorKind::Revoked => break,
            _ if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            other => panic!("the odd token was not revoked: {other:?}"),
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match v.verify(&token) {
            Err(e) if e.kind() == VerifyErrorKind::Revoked => break,
            _ if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            other => panic!("the replica did not see the revocation: {other:?}"),
        }
    }
}

/// `SCOPEKEY_TEST_PYTHON`, a Python with Authlib, requests and cryptography; without it the
/// interop test says it skipped, except with `CI=true`, where that is a failure.
fn python(test: &str) -> Option<std::path::PathBuf> {
    match std::env::var("SCOPEKEY_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p.into()),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: SCOPEKEY_TEST_PYTHON is not set and CI=true: interop must run in CI")
        }
        _ => {
            eprintln!(
                "{test}: SKIPPED, set SCOPEKEY_TEST_PYTHON to a Python with Authlib and requests"
            );
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn authlib_discovers_gets_introspects_and_revokes() {
    let Some(python) = python("authlib_discovers_gets_introspects_and_revokes") else {
        return;
    };
    let s = start(|c| c.refresh_tokens(true)).await;
    let seed = [42u8; 32];
    let client_key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let public = scopekey::PublicKey::from_bytes(client_key.verifying_key().as_bytes()).unwrap();
    let store = s.store.clone();
    tokio::task::spawn_blocking(move || store.register_client_key("ci", &public).unwrap())
        .await
        .unwrap();
    let request = serde_json::json!({
        "base": s.base,
        "client_id": "ci",
        "client_secret": s.ci_secret,
        "key_seed_hex": seed.iter().map(|b| format!("{b:02x}")).collect::<String>(),
    });
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/authlib_client.py");
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut child = std::process::Command::new(python)
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(request.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "authlib client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(answer["issuer"], s.base);
    let jwks = reqwest::get(format!("{}/.well-known/jwks.json", s.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let verifier = scopekey::Verifier::new(
        KeySet::from_jwks(&jwks).unwrap(),
        VerifierConfig::new(s.base.clone(), API, "test".parse().unwrap()),
    )
    .unwrap();
    // Three ways to authenticate, three tokens of `ci`: the Basic one was revoked (below),
    // the other two verify.
    for name in ["post_token", "jwt_token"] {
        let grant = verifier.verify(answer[name].as_str().unwrap()).unwrap();
        assert_eq!(grant.subject(), "ci", "{name}");
    }
    assert_eq!(answer["basic_scope"], "projects:read");
    // Authlib refreshed (a new pair), and its replay of the used refresh token was refused.
    assert_eq!(
        verifier
            .verify(answer["refreshed"].as_str().unwrap())
            .unwrap()
            .subject(),
        "ci"
    );
    assert_eq!(answer["refreshed_has_new_refresh"], true);
    assert_eq!(answer["replay"], "invalid_grant");
    // The exchanged token: the same consumer, the scope asked for.
    let child = verifier
        .verify(answer["exchanged"].as_str().unwrap())
        .unwrap();
    assert_eq!(child.subject(), "ci");
    assert_eq!(child.claims().scopes().as_str(), "projects:read");
    assert_eq!(
        answer["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(answer["expires_in"], 900);
    assert_eq!(answer["introspected"]["active"], true);
    assert_eq!(answer["introspected"]["sub"], "ci");
    assert_eq!(answer["revoke_status"], 200);
    assert_eq!(
        answer["introspected_after"],
        serde_json::json!({"active": false})
    );
    assert_eq!(answer["wrong_secret"], "invalid_client");
    // The revoked token is refused by a verifier that reads the store.
    let store = s.store.clone();
    let (base, revoked, refreshed) = (
        s.base.clone(),
        answer["basic_token"].as_str().unwrap().to_owned(),
        answer["refreshed"].as_str().unwrap().to_owned(),
    );
    tokio::task::spawn_blocking(move || {
        let replica = scopekey_store::Replica::start(&store, ReplicaOptions::default()).unwrap();
        let v = replica
            .verifier(VerifierConfig::new(base, API, "test".parse().unwrap()))
            .unwrap();
        // The revoked one, and the refreshed one whose family Authlib's replay killed.
        for token in [revoked, refreshed] {
            assert_eq!(
                v.verify(&token).unwrap_err().kind(),
                VerifyErrorKind::Revoked
            );
        }
    })
    .await
    .unwrap();
}

// ---- The refresh and token-exchange grants (issue #19) ----

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

fn field(a: &Answer, name: &str) -> String {
    a.body[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {:?}", a.body))
        .to_owned()
}

/// A verifier for `API` reading the store, as one in another process would.
async fn store_verifier(s: &Server) -> (scopekey_store::Replica, scopekey::Verifier) {
    let (store, base) = (s.store.clone(), s.base.clone());
    tokio::task::spawn_blocking(move || {
        let replica = scopekey_store::Replica::start(
            &store,
            ReplicaOptions::default().poll_interval(Duration::from_millis(50)),
        )
        .unwrap();
        let v = replica
            .verifier(VerifierConfig::new(base, API, "test".parse().unwrap()))
            .unwrap();
        (replica, v)
    })
    .await
    .unwrap()
}

/// Waits (up to 5 s) until `v` refuses `token` as revoked.
async fn refused_as_revoked(v: &scopekey::Verifier, token: &str, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match v.verify(token) {
            Err(e) if e.kind() == VerifyErrorKind::Revoked => return,
            _ if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            other => panic!("{what} is not refused as revoked: {other:?}"),
        }
    }
}

async fn exchange(s: &Server, subject: &str, extra: &str) -> Answer {
    s.token(&format!(
        "grant_type={EXCHANGE}&subject_token={subject}&subject_token_type={ACCESS_TYPE}{extra}"
    ))
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_tokens_are_opt_in_and_rotate_and_a_replay_revokes_the_family() {
    // By default (RFC 6749 §4.4.3): no refresh token, and no refresh grant.
    let plain = start(|c| c).await;
    let a = plain.token("grant_type=client_credentials").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.get("refresh_token").is_none(), "{:?}", a.body);
    assert_error(
        &plain
            .token("grant_type=refresh_token&refresh_token=x")
            .await,
        StatusCode::BAD_REQUEST,
        "unsupported_grant_type",
    );

    let s = start(|c| c.refresh_tokens(true)).await;
    let meta: Value = serde_json::from_str(
        &reqwest::get(format!("{}/.well-known/oauth-authorization-server", s.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        meta["grant_types_supported"],
        serde_json::json!(["client_credentials", "refresh_token", EXCHANGE])
    );
    let first = s
        .token("grant_type=client_credentials&scope=projects:read+projects/42:write")
        .await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let r1 = field(&first, "refresh_token");
    // Another client cannot use it, and its attempt changes nothing for the owner.
    let a = s
        .post(
            "/oauth/token",
            Some(("ops", &s.ops_secret)),
            &format!("grant_type=refresh_token&refresh_token={r1}"),
        )
        .await;
    assert_error(&a, StatusCode::BAD_REQUEST, "invalid_grant");
    // Without a refresh token, or widening: refused, and the token stays current.
    assert_error(
        &s.token("grant_type=refresh_token").await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert_error(
        &s.token(&format!(
            "grant_type=refresh_token&refresh_token={r1}&scope=projects:delete"
        ))
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_scope",
    );
    // The owner rotates it, narrowing the scope.
    let second = s
        .token(&format!(
            "grant_type=refresh_token&refresh_token={r1}&scope=projects:read"
        ))
        .await;
    assert_eq!(second.status, StatusCode::OK, "{:?}", second.body);
    assert_eq!(second.body["scope"], "projects:read");
    assert_eq!(second.body["token_type"], "Bearer");
    assert_eq!(second.headers["cache-control"], "no-store");
    let (a2, r2) = (
        field(&second, "access_token"),
        field(&second, "refresh_token"),
    );
    assert_ne!(r2, r1);
    let (replica, v) = store_verifier(&s).await;
    assert!(v.verify(&a2).is_ok());
    // A refresh token is not introspected as an access token: `active: false`, no error.
    let a = s
        .post(
            "/oauth/introspect",
            Some(("ci", &s.ci_secret)),
            &format!("token={r2}"),
        )
        .await;
    assert_eq!(a.body, serde_json::json!({"active": false}));
    // A child exchanged from the family's access token dies with the family.
    let child = exchange(&s, &a2, "").await;
    assert_eq!(child.status, StatusCode::OK, "{:?}", child.body);
    assert!(child.body.get("refresh_token").is_none());
    let child = field(&child, "access_token");
    assert!(v.verify(&child).is_ok());
    // The used refresh token comes back: reuse. The family dies, new tokens and all.
    let a = s
        .token(&format!("grant_type=refresh_token&refresh_token={r1}"))
        .await;
    assert_error(&a, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(
        a.body["error_description"]
            .as_str()
            .unwrap()
            .contains("reuse")
    );
    let a = s
        .token(&format!("grant_type=refresh_token&refresh_token={r2}"))
        .await;
    assert_error(&a, StatusCode::BAD_REQUEST, "invalid_grant");
    refused_as_revoked(&v, &a2, "the rotated access token").await;
    refused_as_revoked(&v, &child, "the exchanged child").await;
    let a = s
        .post(
            "/oauth/introspect",
            Some(("ci", &s.ci_secret)),
            &format!("token={a2}"),
        )
        .await;
    assert_eq!(a.body, serde_json::json!({"active": false}));
    drop(replica);
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_families_end_are_revocable_and_die_with_their_consumer() {
    let s = start(|c| {
        c.refresh_tokens(true)
            .refresh_lifetimes(Duration::from_secs(3600), Duration::from_secs(2))
            .unwrap()
    })
    .await;
    let (replica, v) = store_verifier(&s).await;
    // Revoking a refresh token revokes its family: its access token too (RFC 7009 §2.1).
    let a = s.token("grant_type=client_credentials").await;
    let (access, refresh) = (field(&a, "access_token"), field(&a, "refresh_token"));
    let r = s
        .post(
            "/oauth/revoke",
            Some(("ci", &s.ci_secret)),
            &format!("token={refresh}&token_type_hint=refresh_token"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    refused_as_revoked(&v, &access, "the family's access token").await;
    let a = s
        .token(&format!("grant_type=refresh_token&refresh_token={refresh}"))
        .await;
    assert_error(&a, StatusCode::BAD_REQUEST, "invalid_grant");
    // The family's absolute lifetime (2 s here) ends it, however recent the last rotation.
    let a = s.token("grant_type=client_credentials").await;
    let r1 = field(&a, "refresh_token");
    let a = s
        .token(&format!("grant_type=refresh_token&refresh_token={r1}"))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    let r2 = field(&a, "refresh_token");
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let a = s
        .token(&format!("grant_type=refresh_token&refresh_token={r2}"))
        .await;
    assert_error(&a, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(
        a.body["error_description"]
            .as_str()
            .unwrap()
            .contains("lifetime")
    );
    // A disabled consumer refreshes no more.
    let a = s.token("grant_type=client_credentials").await;
    let r = field(&a, "refresh_token");
    let store = s.store.clone();
    tokio::task::spawn_blocking(move || store.disable_consumer("ci", "test", "leaked").unwrap())
        .await
        .unwrap();
    let a = s
        .token(&format!("grant_type=refresh_token&refresh_token={r}"))
        .await;
    assert_error(&a, StatusCode::UNAUTHORIZED, "invalid_client");
    drop(replica);
}

#[tokio::test(flavor = "multi_thread")]
async fn token_exchange_only_narrows_and_a_refusal_changes_nothing() {
    let s = start(|c| c).await;
    let parent = s
        .token("grant_type=client_credentials&scope=projects:read+projects/42:write")
        .await;
    let parent = field(&parent, "access_token");
    let ops = s
        .post(
            "/oauth/token",
            Some(("ops", &s.ops_secret)),
            "grant_type=client_credentials",
        )
        .await;
    let ops = field(&ops, "access_token");
    let before = s.issued_count().await;
    let refusals = [
        // Wider scopes than the subject token's (even within the ceiling: none here).
        ("&scope=projects:delete", "invalid_scope"),
        ("&scope=audit:read", "invalid_scope"),
        ("&scope=projects:read+projects/7:write", "invalid_scope"),
        ("&scope=projects:", "invalid_scope"),
        // Another audience, configured or not.
        (&*format!("&resource={OTHER_API}"), "invalid_target"),
        ("&audience=https://evil.example", "invalid_target"),
        ("&resource=https://evil.example", "invalid_target"),
        // Other token types, delegation.
        (
            "&requested_token_type=urn:ietf:params:oauth:token-type:refresh_token",
            "invalid_request",
        ),
        ("&actor_token=x&actor_token_type=y", "invalid_request"),
    ];
    for (extra, error) in refusals {
        let a = exchange(&s, &parent, extra).await;
        assert_error(&a, StatusCode::BAD_REQUEST, error);
    }
    let bad_type = s
        .token(&format!(
            "grant_type={EXCHANGE}&subject_token={parent}&subject_token_type=urn:ietf:params:oauth:token-type:jwt"
        ))
        .await;
    assert_error(&bad_type, StatusCode::BAD_REQUEST, "invalid_request");
    assert_error(
        &s.token(&format!(
            "grant_type={EXCHANGE}&subject_token_type={ACCESS_TYPE}"
        ))
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    // Not a token of this client, or not a token at all: invalid_grant.
    for subject in [&*ops, "v4.public.garbage"] {
        let a = exchange(&s, subject, "").await;
        assert_error(&a, StatusCode::BAD_REQUEST, "invalid_grant");
    }
    // Without client authentication: invalid_client.
    let a = s
        .post(
            "/oauth/token",
            None,
            &format!(
                "grant_type={EXCHANGE}&subject_token={parent}&subject_token_type={ACCESS_TYPE}"
            ),
        )
        .await;
    assert_error(&a, StatusCode::UNAUTHORIZED, "invalid_client");
    assert_eq!(s.issued_count().await, before, "a refusal issued a token");

    // A valid exchange: narrower scope, same audience, ending no later than its parent.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let a = exchange(
        &s,
        &parent,
        &format!("&scope=projects/42:write&resource={API}&requested_token_type={ACCESS_TYPE}"),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["issued_token_type"], ACCESS_TYPE);
    assert_eq!(a.body["token_type"], "Bearer");
    assert_eq!(a.body["scope"], "projects/42:write");
    assert!(a.body.get("refresh_token").is_none());
    assert!(a.body["expires_in"].as_i64().unwrap() < 900, "{:?}", a.body);
    assert_eq!(a.headers["cache-control"], "no-store");
    let child = field(&a, "access_token");
    let look = |t: String| {
        let s = &s;
        async move {
            s.post(
                "/oauth/introspect",
                Some(("ci", &s.ci_secret)),
                &format!("token={t}"),
            )
            .await
            .body
        }
    };
    let (p, c) = (look(parent.clone()).await, look(child.clone()).await);
    assert_eq!(c["active"], true);
    assert_eq!(c["aud"], API);
    assert!(c["exp"].as_i64().unwrap() <= p["exp"].as_i64().unwrap());
    // No scope: the read-only part of the subject token's.
    let a = exchange(&s, &parent, "").await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    let scope = a.body["scope"].as_str().unwrap();
    assert!(
        scope.contains("projects:read") && !scope.contains("write"),
        "{scope}"
    );
    // The child cannot be traded back up to its parent's scopes.
    let a = exchange(&s, &child, "&scope=projects:read").await;
    assert_error(&a, StatusCode::BAD_REQUEST, "invalid_scope");
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_the_parent_revokes_every_descendant_at_a_store_replica() {
    let s = start(|c| c).await;
    let parent = s
        .token("grant_type=client_credentials&scope=projects:read+projects/42:write")
        .await;
    let parent = field(&parent, "access_token");
    let child = exchange(&s, &parent, "&scope=projects:read+projects/42:write").await;
    let child = field(&child, "access_token");
    let grandchild = exchange(&s, &child, "&scope=projects/42:write").await;
    let grandchild = field(&grandchild, "access_token");
    // An unrelated token of the same client is not a descendant.
    let other = s.token("grant_type=client_credentials").await;
    let other = field(&other, "access_token");
    let (replica, v) = store_verifier(&s).await;
    for t in [&parent, &child, &grandchild, &other] {
        assert!(v.verify(t).is_ok());
    }
    let a = s
        .post(
            "/oauth/revoke",
            Some(("ci", &s.ci_secret)),
            &format!("token={parent}"),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    refused_as_revoked(&v, &parent, "the parent").await;
    refused_as_revoked(&v, &child, "the child").await;
    refused_as_revoked(&v, &grandchild, "the grandchild").await;
    assert!(v.verify(&other).is_ok(), "an unrelated token was revoked");
    // And a revoked parent exchanges no more.
    let a = exchange(&s, &parent, "").await;
    assert_error(&a, StatusCode::BAD_REQUEST, "invalid_grant");
    drop(replica);
}

/// RFC 9449 §5: a `client_credentials` request with a `DPoP` proof for this token endpoint gets
/// a token bound to the proof's key (`token_type` `DPoP`, claim `cnf.jkt`); a replayed proof, or
/// one for another URL, is `invalid_dpop_proof` and issues nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_request_with_a_dpop_proof_gets_a_bound_token() {
    use scopekey::dpop::ProofBuilder;
    let s = start(|c| c).await;
    let meta: Value = serde_json::from_str(
        &reqwest::get(format!("{}/.well-known/oauth-authorization-server", s.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        meta["dpop_signing_alg_values_supported"],
        serde_json::json!(["EdDSA", "Ed25519", "ES256"])
    );
    let client_key = SigningKey::generate().unwrap();
    let builder = ProofBuilder::new(&client_key);
    let endpoint = format!("{}/oauth/token", s.base);
    let request = |proof: String| {
        Client::new()
            .post(&endpoint)
            .basic_auth("ci", Some(&s.ci_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("dpop", proof)
            .body("grant_type=client_credentials")
            .send()
    };
    let proof = builder.proof("POST", &endpoint, None, None).unwrap();
    let answer = request(proof.clone()).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap();
    let claims = scopekey::danger::decode_unverified(token).unwrap();
    assert_eq!(
        claims.claims().unwrap()["cnf"]["jkt"],
        builder.jkt().as_str()
    );
    let before = s.issued_count().await;
    let other = builder
        .proof("POST", &format!("{}/oauth/other", s.base), None, None)
        .unwrap();
    for bad in [proof, other, "not-a-proof".to_owned()] {
        let answer = request(bad).await.unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
        let body: Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
        assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
    }
    // Another grant with a proof is refused, not answered with a bearer token.
    let exchange = Client::new()
        .post(&endpoint)
        .basic_auth("ci", Some(&s.ci_secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("dpop", builder.proof("POST", &endpoint, None, None).unwrap())
        .body(format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token={token}&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(exchange.status(), StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_str(&exchange.text().await.unwrap()).unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
    assert_eq!(s.issued_count().await, before);
}
