//! The admin API over a real loopback socket: bootstrap, authorization by admin scopes,
//! consumers, tokens, revocations, keys and the audit trail, problem details for every
//! refusal, and bad input changing nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use reqwest::{Client, Method, StatusCode};
use scopekey::SigningKey;
use scopekey_server::{ServerConfig, TokenService};
use scopekey_store::Store;
use serde_json::{Value, json};

struct Admin {
    base: String,
    store: Store,
    token: String,
    _service: TokenService,
    _dir: common::Dir,
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn start() -> Admin {
    let dir = common::Dir::new("scopekey-admin");
    let (listener, base) = common::listener().await;
    let url = dir.store_url();
    let config =
        ServerConfig::new(base.clone(), "https://api.example", "test".parse().unwrap()).unwrap();
    let (service, store, token) = tokio::task::spawn_blocking(move || {
        let store = Store::open(&url).unwrap();
        let service =
            TokenService::new(store.clone(), SigningKey::generate().unwrap(), config).unwrap();
        let token = service
            .bootstrap_admin()
            .unwrap()
            .expect("an empty store bootstraps");
        // Only once.
        assert_eq!(service.bootstrap_admin().unwrap(), None);
        (service, store, token)
    })
    .await
    .unwrap();
    common::serve(listener, &service);
    Admin {
        base,
        store,
        token,
        _service: service,
        _dir: dir,
    }
}

impl Admin {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = Client::new().request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call(method, path, Some(&self.token), body).await
    }

    async fn raw(&self, path: &str, content_type: &str, body: String) -> Answer {
        let resp = Client::new()
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn client_token(&self, id: &str, secret: &str, form: &str) -> Answer {
        let resp = Client::new()
            .post(format!("{}/oauth/token", self.base))
            .basic_auth(id, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("grant_type=client_credentials{form}"))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Waits until a verifier reading the store refuses `token` as revoked.
    async fn assert_revoked(&self, token: &str) {
        let (store, base, token) = (self.store.clone(), self.base.clone(), token.to_owned());
        tokio::task::spawn_blocking(move || {
            let options = scopekey_store::ReplicaOptions::default()
                .poll_interval(std::time::Duration::from_millis(50));
            let replica = scopekey_store::Replica::start(&store, options).unwrap();
            let v = replica
                .verifier(scopekey::VerifierConfig::new(
                    base,
                    "https://api.example",
                    "test".parse().unwrap(),
                ))
                .unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            loop {
                match v.verify(&token) {
                    Err(e) if e.kind() == scopekey::VerifyErrorKind::Revoked => return,
                    _ if std::time::Instant::now() < deadline => {
                        std::thread::sleep(std::time::Duration::from_millis(20))
                    }
                    other => panic!("not revoked: {other:?}"),
                }
            }
        })
        .await
        .unwrap();
    }

    async fn consumer_count(&self) -> usize {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.consumers().unwrap().len())
            .await
            .unwrap()
    }
}

fn assert_problem(a: &Answer, status: StatusCode, slug: &str) {
    assert_eq!(a.status, status, "{:?}", a.body);
    assert_eq!(a.headers["content-type"], "application/problem+json");
    assert_eq!(
        a.body["type"],
        format!("urn:scopekey:problem:{slug}"),
        "{:?}",
        a.body
    );
    assert_eq!(a.body["status"], status.as_u16());
    assert!(a.body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(a.body["detail"].as_str().is_some_and(|t| !t.is_empty()));
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_tokens_and_scopes_gate_every_route() {
    let a = start().await;
    // No token, a garbage one, an API token of the same issuer: 401 with a Bearer challenge.
    let r = a.call(Method::GET, "/admin/consumers", None, None).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(
        r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let r = a
        .call(
            Method::GET,
            "/admin/consumers",
            Some("v4.public.garbage"),
            None,
        )
        .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    // A consumer with only consumers:read, for the admin audience, and one for the API.
    let r = a
        .admin(Method::POST, "/admin/consumers", Some(json!({"name": "auditor", "owner": "sec", "purpose": "reviews", "ceiling": ["consumers:read", "projects:read"]})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = a
        .admin(Method::POST, "/admin/consumers/auditor/credentials", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let secret = r.body["client_secret"].as_str().unwrap().to_owned();
    let admin_aud = format!("{}/admin", a.base);
    let as_admin = format!("&scope=consumers%3Aread&resource={}", urlencode(&admin_aud));
    // Its API ceiling holds consumers:read, yet it is no operator: no admin token.
    let r = a.client_token("auditor", &secret, &as_admin).await;
    assert_eq!(r.body["error"], "invalid_target", "{:?}", r.body);
    let r = a
        .admin(
            Method::PUT,
            "/admin/consumers/auditor/operator",
            Some(json!({"scopes": "consumers:read"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let reader = a
        .client_token(
            "auditor",
            &secret,
            &format!("&scope=consumers%3Aread&resource={}", urlencode(&admin_aud)),
        )
        .await;
    assert_eq!(reader.status, StatusCode::OK, "{:?}", reader.body);
    let reader = reader.body["access_token"].as_str().unwrap().to_owned();
    let api = a
        .client_token("auditor", &secret, "&scope=projects%3Aread")
        .await;
    let api = api.body["access_token"].as_str().unwrap().to_owned();
    let r = a
        .call(Method::GET, "/admin/consumers", Some(&api), None)
        .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("wrong_audience"),
        "{:?}",
        r.body
    );
    // The reader reads, and is forbidden to write, naming the scope it lacks.
    let r = a
        .call(Method::GET, "/admin/consumers", Some(&reader), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let names: Vec<&str> = r.body["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "auditor"]);
    let r = a
        .call(
            Method::POST,
            "/admin/consumers",
            Some(&reader),
            Some(json!({"name": "x", "owner": "o", "purpose": "p", "ceiling": "a:read"})),
        )
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    assert!(
        r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("scope=\"consumers:write\"")
    );
    for path in ["/admin/tokens", "/admin/keys", "/admin/audit"] {
        assert_problem(
            &a.call(Method::GET, path, Some(&reader), None).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
    assert_eq!(a.consumer_count().await, 2);
}

use common::urlencode;

#[tokio::test(flavor = "multi_thread")]
async fn consumers_are_created_edited_disabled_and_enabled() {
    let a = start().await;
    let new = json!({"name": "ci", "owner": "platform", "purpose": "deploys", "ceiling": "projects:read projects/42:write"});
    let r = a
        .admin(Method::POST, "/admin/consumers", Some(new.clone()))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["env"], "test");
    assert_problem(
        &a.admin(Method::POST, "/admin/consumers", Some(new)).await,
        StatusCode::CONFLICT,
        "conflict",
    );
    let broad =
        json!({"name": "wide", "owner": "o", "purpose": "p", "ceiling": "projects/*:write"});
    assert_problem(
        &a.admin(Method::POST, "/admin/consumers", Some(broad)).await,
        StatusCode::BAD_REQUEST,
        "invalid-request",
    );
    let r = a
        .admin(Method::POST, "/admin/consumers/ci/credentials", None)
        .await;
    let secret = r.body["client_secret"].as_str().unwrap().to_owned();
    let t = a.client_token("ci", &secret, "").await;
    assert_eq!(t.status, StatusCode::OK);
    let token = t.body["access_token"].as_str().unwrap().to_owned();
    // Show: the live token is listed.
    let r = a.admin(Method::GET, "/admin/consumers/ci", None).await;
    assert_eq!(r.body["live_tokens"].as_array().unwrap().len(), 1);
    assert_problem(
        &a.admin(Method::GET, "/admin/consumers/nobody", None).await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
    // Edit: narrow the ceiling; the write scope is then refused at the token endpoint.
    let r = a
        .admin(
            Method::PATCH,
            "/admin/consumers/ci",
            Some(json!({"ceiling": ["projects:read"], "purpose": "reads"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["ceiling"], "projects:read");
    assert_eq!(r.body["owner"], "platform");
    let t = a
        .client_token("ci", &secret, "&scope=projects%2F42%3Awrite")
        .await;
    assert_eq!(t.body["error"], "invalid_scope");
    // Disable: its token is revoked and it authenticates no more; enable: it does again.
    let r = a
        .admin(
            Method::POST,
            "/admin/consumers/ci/disable",
            Some(json!({"reason": "leaked in CI"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    a.assert_revoked(&token).await;
    assert_eq!(
        a.client_token("ci", &secret, "").await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = a
        .admin(Method::POST, "/admin/consumers/ci/enable", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        a.client_token("ci", &secret, "").await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_revocations_keys_and_the_trail() {
    let a = start().await;
    let r = a
        .admin(Method::POST, "/admin/consumers", Some(json!({"name": "ci", "owner": "platform", "purpose": "deploys", "ceiling": "projects:read"})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let secret = a
        .admin(Method::POST, "/admin/consumers/ci/credentials", None)
        .await
        .body["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = a.client_token("ci", &secret, "").await;
    let token = t.body["access_token"].as_str().unwrap().to_owned();
    // The inventory, filtered; one token shown.
    let r = a
        .admin(Method::GET, "/admin/tokens?subject=ci&live=true", None)
        .await;
    let list = r.body["tokens"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{:?}", r.body);
    assert_eq!(list[0]["escalated"], false);
    let jti = list[0]["jti"].as_str().unwrap().to_owned();
    let r = a
        .admin(Method::GET, &format!("/admin/tokens/{jti}"), None)
        .await;
    assert_eq!(r.body["revoked"], false);
    assert_problem(
        &a.admin(Method::GET, "/admin/tokens?live=maybe", None).await,
        StatusCode::BAD_REQUEST,
        "invalid-request",
    );
    assert_problem(
        &a.admin(Method::GET, "/admin/tokens?unused_since=yesterday", None)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid-request",
    );
    // Revoke it; a verifier reading the store refuses it.
    let r = a
        .admin(
            Method::POST,
            "/admin/revocations",
            Some(json!({"jti": jti, "reason": "printed in a CI log"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert!(
        r.body["by"]
            .as_str()
            .unwrap()
            .starts_with("admin admin (token ")
    );
    a.assert_revoked(&token).await;
    assert_eq!(
        a.admin(Method::GET, &format!("/admin/tokens/{jti}"), None)
            .await
            .body["revoked"],
        true
    );
    let r = a
        .admin(
            Method::POST,
            "/admin/revocations",
            Some(json!({"jti": jti, "family": "x", "reason": "r"})),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "invalid-request");
    // Keys: the signing key is listed; one added, then retired.
    let r = a.admin(Method::GET, "/admin/keys", None).await;
    assert_eq!(r.body["keys"].as_array().unwrap().len(), 1);
    let next = SigningKey::generate().unwrap();
    let r = a
        .admin(
            Method::POST,
            "/admin/keys",
            Some(json!({"public_key": next.public_key().to_paserk()})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let kid = next.key_id().as_str().to_owned();
    let r = a
        .admin(Method::POST, &format!("/admin/keys/{kid}/retire"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = a.admin(Method::GET, "/admin/keys", None).await;
    let retired = r.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap()
        .clone();
    assert_eq!(retired["active"], false);
    let r = a
        .admin(
            Method::POST,
            "/admin/keys",
            Some(json!({"public_key": "k4.public.nope"})),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "invalid-request");
    // Every change is an admin_action naming the admin token; the revocation is in the trail.
    let r = a
        .admin(
            Method::GET,
            "/admin/audit?event=admin_action&limit=50",
            None,
        )
        .await;
    let events = r.body["events"].as_array().unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    let changes: Vec<&str> = actions
        .iter()
        .copied()
        .filter(|a| !a.ends_with(".list") && !a.ends_with(".show") && !a.ends_with(".query"))
        .collect();
    assert_eq!(
        changes,
        [
            "consumers.create",
            "consumers.credentials",
            "tokens.revoke",
            "keys.add",
            "keys.retire"
        ]
    );
    // Reads are recorded too, the last one being this query itself.
    assert!(
        actions.contains(&"tokens.list") && actions.contains(&"keys.list"),
        "{actions:?}"
    );
    assert_eq!(actions.last(), Some(&"audit.query"));
    assert!(
        events
            .iter()
            .all(|e| e["sub"] == "admin" && e["jti"].is_string())
    );
    let r = a
        .admin(Method::GET, &format!("/admin/audit?jti={jti}"), None)
        .await;
    let kinds: Vec<&str> = r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"issued") && kinds.contains(&"revoked"),
        "{kinds:?}"
    );
    assert!(
        !r.body.to_string().contains(&secret),
        "no secret in the trail"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_problem_and_changes_nothing() {
    let a = start().await;
    let before = a.consumer_count().await;
    let cases = [
        ("text/plain", "{}".to_owned(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type"),
        ("application/json", "{".to_owned(), StatusCode::BAD_REQUEST, "invalid-request"),
        ("application/json", json!({"name": "x", "owner": "o", "purpose": "p", "ceiling": "a:read", "admin": true}).to_string(), StatusCode::BAD_REQUEST, "invalid-request"),
        ("application/json", r#"{"name":"x","name":"y","owner":"o","purpose":"p","ceiling":"a:read"}"#.to_owned(), StatusCode::BAD_REQUEST, "invalid-request"),
        ("application/json", json!({"name": "x", "owner": "o", "purpose": "p", "ceiling": "a:"}).to_string(), StatusCode::BAD_REQUEST, "invalid-request"),
        ("application/json", json!({"name": "", "owner": "o", "purpose": "p", "ceiling": "a:read"}).to_string(), StatusCode::BAD_REQUEST, "invalid-request"),
        ("application/json", json!({"name": "x", "owner": "o", "purpose": "p", "ceiling": "a:read", "env": "Not An Env"}).to_string(), StatusCode::BAD_REQUEST, "invalid-request"),
        ("application/json", format!("{{\"pad\":\"{}\"}}", "a".repeat(scopekey_server::MAX_BODY_LEN)), StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large"),
    ];
    for (content_type, body, status, slug) in cases {
        let r = a.raw("/admin/consumers", content_type, body.clone()).await;
        assert_problem(&r, status, slug);
    }
    let r = a
        .raw(
            "/admin/revocations",
            "application/json",
            json!({"subject": "ci"}).to_string(),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "invalid-request");
    assert_eq!(a.consumer_count().await, before);
    let r = a
        .admin(Method::GET, "/admin/audit?event=admin_action", None)
        .await;
    let events = r.body["events"].as_array().unwrap();
    assert_eq!(
        events.len(),
        1,
        "nothing was done, so only this read is recorded: {events:?}"
    );
    assert_eq!(events[0]["action"], "audit.query");
}

#[tokio::test(flavor = "multi_thread")]
async fn only_operators_get_admin_tokens_and_never_beyond_their_operator_scopes() {
    let a = start().await;
    let admin_aud = format!("{}/admin", a.base);
    let resource = |scope: &str| {
        format!(
            "&scope={}&resource={}",
            urlencode(scope),
            urlencode(&admin_aud)
        )
    };
    // API consumers whose ceilings spell admin scopes, or cover them broadly.
    for (name, ceiling) in [("sshkeys", json!("keys:write")), ("wide", json!("*:*"))] {
        let r = a
            .admin(Method::POST, "/admin/consumers", Some(json!({"name": name, "owner": "o", "purpose": "p", "ceiling": ceiling, "allow_broad": true})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let secret = a
            .admin(
                Method::POST,
                &format!("/admin/consumers/{name}/credentials"),
                None,
            )
            .await
            .body["client_secret"]
            .as_str()
            .unwrap()
            .to_owned();
        for scope in ["keys:write", "consumers:write"] {
            let r = a.client_token(name, &secret, &resource(scope)).await;
            assert_eq!(
                r.body["error"], "invalid_target",
                "{name} {scope}: {:?}",
                r.body
            );
        }
    }
    // An operator with consumers:read|write: its admin token, exact scopes only.
    let r = a
        .admin(
            Method::POST,
            "/admin/consumers",
            Some(json!({"name": "ops", "owner": "o", "purpose": "p", "ceiling": "reports:read"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let secret = a
        .admin(Method::POST, "/admin/consumers/ops/credentials", None)
        .await
        .body["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = a
        .admin(
            Method::PUT,
            "/admin/consumers/ops/operator",
            Some(json!({"scopes": ["consumers:read", "consumers:write"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_problem(
        &a.admin(
            Method::PUT,
            "/admin/consumers/ops/operator",
            Some(json!({"scopes": "projects:write"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid-request",
    );
    let r = a
        .client_token("ops", &secret, &resource("keys:write"))
        .await;
    assert_eq!(r.body["error"], "invalid_scope", "{:?}", r.body);
    let r = a
        .client_token("ops", &secret, &resource("consumers:*"))
        .await;
    assert_eq!(
        r.body["error"], "invalid_scope",
        "a broad scope never: {:?}",
        r.body
    );
    let r = a
        .client_token("ops", &secret, &resource("consumers:read consumers:write"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body.get("refresh_token").is_none());
    let ops = r.body["access_token"].as_str().unwrap().to_owned();
    // It cannot make an operator stronger than itself, nor itself.
    let r = a
        .call(
            Method::PUT,
            "/admin/consumers/ops/operator",
            Some(&ops),
            Some(json!({"scopes": "consumers:write keys:write"})),
        )
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    assert!(r.body["detail"].as_str().unwrap().contains("keys:write"));
    let r = a
        .call(
            Method::PUT,
            "/admin/consumers/sshkeys/operator",
            Some(&ops),
            Some(json!({"scopes": "consumers:read"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let shown = a.admin(Method::GET, "/admin/consumers/sshkeys", None).await;
    assert_eq!(shown.body["operator_scopes"], "consumers:read");
    // An unknown consumer is a 404 for every consumer write.
    for (method, path, body) in [
        (
            Method::PUT,
            "/admin/consumers/nobody/operator",
            Some(json!({"scopes": "consumers:read"})),
        ),
        (Method::DELETE, "/admin/consumers/nobody/operator", None),
        (Method::POST, "/admin/consumers/nobody/credentials", None),
    ] {
        assert_problem(
            &a.admin(method, path, body).await,
            StatusCode::NOT_FOUND,
            "not-found",
        );
    }
    // Removed: no more admin tokens.
    let r = a
        .admin(Method::DELETE, "/admin/consumers/ops/operator", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = a
        .client_token("ops", &secret, &resource("consumers:read"))
        .await;
    assert_eq!(r.body["error"], "invalid_target");
}
