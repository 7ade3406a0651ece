//! The example service's router on a real loopback socket, driven by a real HTTP client:
//! every route × {no token, malformed, expired, wrong environment, revoked, insufficient
//! scope, sufficient scope}, asserting status, `WWW-Authenticate` and the problem-details
//! body; the token in the `scopekey_token` cookie; the optional-auth route.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

#[path = "../examples/axum_service.rs"]
mod service;

use reqwest::{Client, Method, StatusCode};
use scopekey::revocation::{RevocationList, RevocationTarget, Revoker};
use scopekey::{
    Issuer, KeySet, ManualClock, SigningKey, TokenFormat, TokenRequest, Verifier, VerifierConfig,
};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";

struct Server {
    base: String,
    client: Client,
    key: String,
    revocations: Arc<RevocationList>,
}

async fn start() -> Server {
    start_behind(&[]).await
}

/// The example service trusting the reverse proxies in `trusted_proxy_networks` (CIDR blocks,
/// as `--trusted-proxy`; with `127.0.0.1` the loopback client is the nearest proxy), served
/// with axum's `ConnectInfo` as its `main` does.
async fn start_behind(trusted_proxy_networks: &[&str]) -> Server {
    let key = SigningKey::generate().unwrap();
    let keys = KeySet::single(key.public_key().clone());
    let verifier = Verifier::new(
        keys,
        VerifierConfig::new(ISS, AUD, "production".parse().unwrap()),
    )
    .unwrap();
    serve(verifier, &key, trusted_proxy_networks).await
}

/// The example service verifying with `verifier` (plus a revocation list), `key` being the
/// issuer's whose tokens `Server::mint` makes.
async fn serve(verifier: Verifier, key: &SigningKey, trusted_proxy_networks: &[&str]) -> Server {
    let revocations = Arc::new(RevocationList::new());
    let verifier = verifier.with_revocations(revocations.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let trusted_proxy_networks = trusted_proxy_networks
        .iter()
        .map(|n| n.parse().unwrap())
        .collect();
    let app = service::app(
        Arc::new(verifier),
        revocations.clone(),
        trusted_proxy_networks,
    );
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap()
    });
    Server {
        base,
        client: Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        key: key.to_paserk().to_string(),
        revocations,
    }
}

impl Server {
    fn issuer(&self, env: &str, at_unix: Option<i64>) -> Issuer {
        let issuer = Issuer::new(
            SigningKey::from_paserk(&self.key).unwrap(),
            ISS,
            env.parse().unwrap(),
        )
        .unwrap();
        match at_unix {
            Some(t) => issuer.with_clock(ManualClock::at_unix(t)),
            None => issuer,
        }
    }

    fn mint_with(&self, issuer: &Issuer, subject: &str, scopes: &str) -> (String, String) {
        let m = issuer
            .issue(
                &TokenRequest::new(subject, AUD, scopes.parse().unwrap())
                    .allow_broad()
                    .escalate(),
            )
            .unwrap();
        (
            m.token().as_str().to_owned(),
            m.claims().token_id().to_string(),
        )
    }

    fn mint(&self, subject: &str, scopes: &str) -> (String, String) {
        self.mint_with(&self.issuer("production", None), subject, scopes)
    }

    async fn send(&self, route: &Route, token: Option<&str>) -> Reply {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("authorization", b.as_str()))
            .collect();
        self.send_with(route, &headers).await
    }

    async fn send_with(&self, route: &Route, headers: &[(&str, &str)]) -> Reply {
        let mut req = self
            .client
            .request(route.method.clone(), format!("{}{}", self.base, route.path));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = route.body {
            req = req.header("content-type", "application/json").body(body);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let header = |name| {
            r.headers()
                .get(name)
                .map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_owned())
        };
        let (challenge, content_type) = (header("www-authenticate"), header("content-type"));
        let text = r.text().await.unwrap();
        Reply {
            status,
            challenge,
            content_type,
            text,
        }
    }
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    challenge: Option<String>,
    content_type: Option<String>,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("not JSON: {}", self.text))
    }

    /// The RFC 9457 body of a refusal, checked against the status.
    fn problem(&self) -> Value {
        assert_eq!(
            self.content_type.as_deref(),
            Some("application/problem+json"),
            "{self:?}"
        );
        let body = self.json();
        assert_eq!(body["type"], "about:blank", "{self:?}");
        assert_eq!(body["status"], self.status.as_u16(), "{self:?}");
        assert_eq!(
            body["title"],
            self.status.canonical_reason().unwrap(),
            "{self:?}"
        );
        body
    }
}

struct Route {
    method: Method,
    path: &'static str,
    scope: &'static str,
    ok: StatusCode,
    body: Option<&'static str>,
}

fn routes() -> Vec<Route> {
    let r = |method, path, scope, ok, body| Route {
        method,
        path,
        scope,
        ok,
        body,
    };
    vec![
        r(
            Method::GET,
            "/projects/42",
            "projects/42:read",
            StatusCode::OK,
            None,
        ),
        r(
            Method::POST,
            "/projects/42/comments",
            "projects/42/comments:write",
            StatusCode::CREATED,
            None,
        ),
        r(
            Method::DELETE,
            "/projects/42",
            "projects/42:delete",
            StatusCode::NO_CONTENT,
            None,
        ),
        r(
            Method::PUT,
            "/projects/42",
            "projects/42:write",
            StatusCode::OK,
            None,
        ),
        r(
            Method::GET,
            "/users/7",
            "users/7:read",
            StatusCode::OK,
            None,
        ),
        r(
            Method::GET,
            "/billing/invoices",
            "billing/invoices:read",
            StatusCode::OK,
            None,
        ),
        r(
            Method::POST,
            "/admin/revocations",
            "tokens:revoke",
            StatusCode::OK,
            Some(r#"{"jti":"unrelated-token-id"}"#),
        ),
    ]
}

fn assert_invalid_token(reply: &Reply, description: &str, cell: &str) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{cell}: {reply:?}");
    assert_eq!(
        reply.challenge.as_deref(),
        Some(format!("Bearer realm=\"scopekey-example\", error=\"invalid_token\", error_description=\"{description}\"").as_str()),
        "{cell}"
    );
    let body = reply.problem();
    assert_eq!(body["error"], "invalid_token", "{cell}");
    assert_eq!(body["detail"], description, "{cell}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_times_every_kind_of_token() {
    let s = start().await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let stale_issuer = s.issuer("production", Some(now - 2 * 3600));
    let staging_issuer = s.issuer("staging", None);
    let mut cells = 0;
    for route in routes() {
        let cell = |case: &str| format!("{} {} with {case}", route.method, route.path);

        // No token: a bare challenge, no error code.
        let r = s.send(&route, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", cell("no token"));
        assert_eq!(
            r.challenge.as_deref(),
            Some("Bearer realm=\"scopekey-example\"")
        );
        assert_eq!(r.problem()["detail"], "bearer token required");

        // Malformed.
        let r = s.send(&route, Some("v4.public.not-a-token")).await;
        assert_invalid_token(&r, "the token is malformed", &cell("malformed"));

        // Expired (minted two hours ago with the right scope).
        let (t, _) = s.mint_with(&stale_issuer, "svc", route.scope);
        let r = s.send(&route, Some(&t)).await;
        assert_invalid_token(&r, "the token has expired", &cell("expired"));

        // Wrong environment (same key, staging).
        let (t, _) = s.mint_with(&staging_issuer, "svc", route.scope);
        let r = s.send(&route, Some(&t)).await;
        assert_invalid_token(
            &r,
            "the token signature is not valid here",
            &cell("wrong env"),
        );

        // A JWT with the right scope, which the service was not told to accept
        // (`--accept-jwt`): the `jwt` feature alone turns no verifier's JWT acceptance on.
        let jwt_issuer = s.issuer("production", None).with_format(TokenFormat::Jwt);
        let (t, _) = s.mint_with(&jwt_issuer, "svc", route.scope);
        assert_eq!(t.matches('.').count(), 2);
        let r = s.send(&route, Some(&t)).await;
        assert_invalid_token(&r, "the token is malformed", &cell("JWT"));

        // Revoked.
        let (t, jti) = s.mint("svc", route.scope);
        s.revocations
            .revoke(
                RevocationTarget::Token {
                    token_id: jti.parse().unwrap(),
                    expires_at: None,
                },
                "test",
                "matrix",
            )
            .unwrap();
        let r = s.send(&route, Some(&t)).await;
        assert_invalid_token(&r, "the token has been revoked", &cell("revoked"));

        // Insufficient scope: 403 naming the needed scope.
        let (t, _) = s.mint("svc", "unrelated:read");
        let r = s.send(&route, Some(&t)).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{}",
            cell("insufficient scope")
        );
        assert_eq!(
            r.challenge.as_deref(),
            Some(format!("Bearer realm=\"scopekey-example\", error=\"insufficient_scope\", error_description=\"the token does not grant the required scope\", scope=\"{}\"", route.scope).as_str()),
        );
        let problem = r.problem();
        assert_eq!(problem["error"], "insufficient_scope");
        assert_eq!(problem["scope"], route.scope);

        // Sufficient scope.
        let (t, _) = s.mint("svc", route.scope);
        let r = s.send(&route, Some(&t)).await;
        assert_eq!(r.status, route.ok, "{}: {r:?}", cell("sufficient scope"));
        assert_eq!(r.challenge, None);
        cells += 7;
    }
    assert_eq!(cells, 49);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_projects_write_comments_can_do_exactly_that() {
    let s = start().await;
    let (t, _) = s.mint("integration", "projects:read projects/*/comments:write");
    let expected = [
        StatusCode::OK,        // GET /projects/42
        StatusCode::CREATED,   // POST /projects/42/comments
        StatusCode::FORBIDDEN, // DELETE /projects/42
        StatusCode::FORBIDDEN, // GET /users/7
        StatusCode::FORBIDDEN, // GET /billing/invoices
        StatusCode::FORBIDDEN, // POST /admin/revocations
    ];
    for (route, want) in routes().iter().zip(expected) {
        let r = s.send(route, Some(&t)).await;
        assert_eq!(r.status, want, "{} {}", route.method, route.path);
    }
    // Health needs nothing, and ignores a bad token.
    let health = Route {
        method: Method::GET,
        path: "/healthz",
        scope: "",
        ok: StatusCode::OK,
        body: None,
    };
    assert_eq!(
        s.send(&health, Some("garbage")).await.status,
        StatusCode::OK
    );
    // Path ids that would escape their segment are refused before any scope check. (`..` is
    // resolved by the client itself per the URL standard; the axum oneshot tests send it raw.)
    for path in [
        "/projects/42%2Fcomments",
        "/projects/%2A",
        "/users/7%3Aread",
        "/projects/4%202",
    ] {
        let route = Route {
            method: Method::GET,
            path,
            scope: "",
            ok: StatusCode::OK,
            body: None,
        };
        assert_eq!(
            s.send(&route, Some(&t)).await.status,
            StatusCode::BAD_REQUEST,
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_revocation_takes_effect_on_the_next_request() {
    let s = start().await;
    let (admin, _) = s.mint("ops-console", "tokens:revoke");
    let (victim, victim_jti) = s.mint("leaky-bot", "projects:read");
    let (bystander, _) = s.mint("careful-bot", "projects:read");
    let get = Route {
        method: Method::GET,
        path: "/projects/1",
        scope: "",
        ok: StatusCode::OK,
        body: None,
    };
    assert_eq!(s.send(&get, Some(&victim)).await.status, StatusCode::OK);

    let body = format!("{{\"jti\":\"{victim_jti}\",\"reason\":\"pasted in chat\"}}");
    let body: &'static str = Box::leak(body.into_boxed_str());
    let revoke = Route {
        method: Method::POST,
        path: "/admin/revocations",
        scope: "",
        ok: StatusCode::OK,
        body: Some(body),
    };
    let r = s.send(&revoke, Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.json()["by"], "ops-console");

    let r = s.send(&get, Some(&victim)).await;
    assert_invalid_token(&r, "the token has been revoked", "victim after revocation");
    assert_eq!(s.send(&get, Some(&bystander)).await.status, StatusCode::OK);

    // By consumer.
    let (victim2, _) = s.mint("leaky-bot-2", "projects:read");
    let revoke_sub = Route {
        method: Method::POST,
        path: "/admin/revocations",
        scope: "",
        ok: StatusCode::OK,
        body: Some(r#"{"sub":"leaky-bot-2"}"#),
    };
    assert_eq!(
        s.send(&revoke_sub, Some(&admin)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        s.send(&get, Some(&victim2)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(s.send(&get, Some(&bystander)).await.status, StatusCode::OK);

    // Bad bodies are refused.
    for bad in [
        r#"{}"#,
        r#"{"jti":"a","sub":"b"}"#,
        r#"{"jti":"a b"}"#,
        "not json",
        r#"{"jti":"x","extra":1}"#,
    ] {
        let route = Route {
            method: Method::POST,
            path: "/admin/revocations",
            scope: "",
            ok: StatusCode::OK,
            body: Some(bad),
        };
        let r = s.send(&route, Some(&admin)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.problem()["error"], "invalid_request", "{bad}");
    }
}

fn get(path: &'static str) -> Route {
    Route {
        method: Method::GET,
        path,
        scope: "",
        ok: StatusCode::OK,
        body: None,
    }
}

/// A browser's token in the `scopekey_token` cookie works as a bearer token does, and is
/// refused the same way; the same token in both places is fine, two different ones a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_cookie_is_a_token_source() {
    let s = start().await;
    let (reader, _) = s.mint("browser", "projects:read");
    let (other, _) = s.mint("browser", "projects:read");
    let route = get("/projects/42");
    let cookie = format!("theme=dark; scopekey_token={reader}");
    let r = s.send_with(&route, &[("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.json()["id"], "42");

    let r = s
        .send_with(&route, &[("cookie", "scopekey_token=v4.public.nope")])
        .await;
    assert_invalid_token(&r, "the token is malformed", "bad cookie");

    let bearer = format!("Bearer {reader}");
    let r = s
        .send_with(&route, &[("cookie", &cookie), ("authorization", &bearer)])
        .await;
    assert_eq!(r.status, StatusCode::OK);

    let bearer = format!("Bearer {other}");
    let r = s
        .send_with(&route, &[("cookie", &cookie), ("authorization", &bearer)])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    assert_eq!(r.problem()["error"], "invalid_request");
    assert!(
        r.challenge
            .as_deref()
            .is_some_and(|c| c.contains("error=\"invalid_request\""))
    );
    assert!(!r.text.contains(&reader) && !r.text.contains(&other));

    // Another cookie of the name is no token.
    let r = s
        .send_with(&route, &[("cookie", "scopekey_token_old=x")])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.challenge.as_deref(),
        Some("Bearer realm=\"scopekey-example\"")
    );
}

/// `GET /public/projects/{id}`: anonymous gets the public view, a token that may read the
/// project the full one, a valid token without the scope the public one, a bad token 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_optional_route_serves_anonymous_and_refuses_bad_tokens() {
    let s = start().await;
    let route = get("/public/projects/42");
    let r = s.send(&route, None).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.json()["view"], "public");
    assert!(r.json().get("viewer").is_none());

    let (reader, _) = s.mint("reader", "projects/42:read");
    let r = s.send(&route, Some(&reader)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        (&r.json()["view"], &r.json()["viewer"]),
        (&"full".into(), &"reader".into())
    );
    let cookie = format!("scopekey_token={reader}");
    let r = s.send_with(&route, &[("cookie", &cookie)]).await;
    assert_eq!(r.json()["view"], "full");

    let (elsewhere, _) = s.mint("reader", "projects/7:read");
    let r = s.send(&route, Some(&elsewhere)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["view"], "public");

    for bad in ["v4.public.nope", elsewhere.as_str()] {
        let token = if bad == elsewhere {
            format!("{bad}x")
        } else {
            bad.to_owned()
        };
        let r = s.send(&route, Some(&token)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
        assert_eq!(r.problem()["error"], "invalid_token");
    }
    let r = s
        .send_with(&route, &[("cookie", "scopekey_token=v4.public.nope")])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // The strict routes stay strict.
    let r = s.send(&get("/projects/42"), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

/// A token limited to a network, through the example service: with no trusted proxy, or with
/// trusted proxies that do not include the loopback peer (`--trusted-proxy 10.0.0.0/8`), the
/// client is the loopback peer and forged forwarded headers are ignored; with the loopback peer
/// trusted (`--trusted-proxy 127.0.0.1/32 --trusted-proxy 10.0.0.0/24`) it is the rightmost
/// `Forwarded` or `X-Forwarded-For` entry outside the trusted networks, and a spoofed leftmost
/// entry, an untrusted hop, only trusted hops, an obfuscated node or two headers that disagree
/// give that hop or no client, so the token is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_limited_tokens_through_the_example_behind_proxies() {
    let direct = start().await;
    let elsewhere = start_behind(&["10.0.0.0/8"]).await;
    let behind = start_behind(&["127.0.0.1/32", "10.0.0.0/24"]).await;
    let forged: &[(StatusCode, &[(&str, &str)])] = &[
        (
            StatusCode::UNAUTHORIZED,
            &[("forwarded", "for=203.0.113.9")][..],
        ),
        (
            StatusCode::UNAUTHORIZED,
            &[("x-forwarded-for", "203.0.113.9")],
        ),
        (
            StatusCode::UNAUTHORIZED,
            &[
                ("forwarded", "for=203.0.113.9"),
                ("x-forwarded-for", "203.0.113.9, 10.0.0.1"),
            ],
        ),
    ];
    for (server, cases) in [
        (&direct, forged),
        (&elsewhere, forged),
        (
            &behind,
            &[
                (
                    StatusCode::OK,
                    &[("forwarded", "for=203.0.113.9;proto=http")][..],
                ),
                (
                    StatusCode::OK,
                    &[("forwarded", "for=\"[2001:db8::1]:4711\"")],
                ),
                (
                    StatusCode::OK,
                    &[("x-forwarded-for", "198.51.100.1, 203.0.113.9")],
                ),
                (
                    StatusCode::OK,
                    &[
                        ("forwarded", "for=203.0.113.9"),
                        ("x-forwarded-for", "203.0.113.9"),
                    ],
                ),
                (
                    StatusCode::OK,
                    &[("x-forwarded-for", "203.0.113.9, 10.0.0.1")],
                ),
                (
                    StatusCode::OK,
                    &[("forwarded", "for=203.0.113.9, for=10.0.0.3, for=10.0.0.1")],
                ),
                (
                    StatusCode::UNAUTHORIZED,
                    &[("forwarded", "for=203.0.113.9, for=198.51.100.1")],
                ),
                (
                    StatusCode::UNAUTHORIZED,
                    &[("x-forwarded-for", "203.0.113.9, 198.51.100.1, 10.0.0.1")],
                ),
                (StatusCode::UNAUTHORIZED, &[("x-forwarded-for", "10.0.0.1")]),
                (StatusCode::UNAUTHORIZED, &[("forwarded", "for=_hidden")]),
                (
                    StatusCode::UNAUTHORIZED,
                    &[
                        ("forwarded", "for=203.0.113.9"),
                        ("x-forwarded-for", "198.51.100.1"),
                    ],
                ),
                (StatusCode::UNAUTHORIZED, &[]),
            ],
        ),
    ] {
        let limited = server
            .issuer("production", None)
            .issue(
                &TokenRequest::new("svc", AUD, "billing/invoices:read".parse().unwrap())
                    .allow_networks([
                        "203.0.113.0/24".parse().unwrap(),
                        "2001:db8::/32".parse().unwrap(),
                    ]),
            )
            .unwrap();
        let (plain, _) = server.mint_with(
            &server.issuer("production", None),
            "svc",
            "billing/invoices:read",
        );
        for (want, headers) in cases {
            for (token, want) in [
                (limited.token().as_str(), *want),
                (plain.as_str(), StatusCode::OK),
            ] {
                let mut request = server
                    .client
                    .get(format!("{}/billing/invoices", server.base))
                    .bearer_auth(token);
                for (name, value) in *headers {
                    request = request.header(*name, *value);
                }
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), want, "{headers:?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templated_and_composed_requirements_on_their_routes() {
    let s = start().await;
    let put = |path: &'static str| Route {
        method: Method::PUT,
        path,
        scope: "",
        ok: StatusCode::OK,
        body: None,
    };
    // Any of write or admin on the project in the path.
    for scopes in ["projects/42:write", "projects:admin"] {
        let (t, _) = s.mint("editor", scopes);
        let r = s.send(&put("/projects/42"), Some(&t)).await;
        assert_eq!(r.status, StatusCode::OK, "{scopes}: {r:?}");
        assert_eq!(r.json()["updated_by"], "editor");
    }
    // Another project's write, and read: 403 naming the first alternative.
    for scopes in ["projects/7:write", "projects/42:read"] {
        let (t, _) = s.mint("editor", scopes);
        let r = s.send(&put("/projects/42"), Some(&t)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{scopes}: {r:?}");
        assert_eq!(r.problem()["scope"], "projects/42:write");
    }
    // An id that cannot be one segment is a 400, never a broader scope: not `projects/*`,
    // not a parent, not another action.
    let (t, _) = s.mint("editor", "projects:write");
    for path in [
        "/projects/%2A",
        "/projects/42%2F7",
        "/projects/42:admin",
        "/projects/a%20b",
        "/projects/%FF",
    ] {
        let r = s.send(&put(path), Some(&t)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {r:?}");
        assert_eq!(r.challenge, None, "{path}");
        assert_eq!(
            r.problem()["detail"],
            "a resource id in the request is not a valid segment"
        );
    }
    // No token: the auth layer's 401 first.
    let r = s.send(&put("/projects/42"), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // All of read on the project and on reports.
    let report = get("/projects/42/report");
    let (t, _) = s.mint("analyst", "projects/42:read reports:read");
    let r = s.send(&report, Some(&t)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.json()["project"], "42");
    for (scopes, missing) in [
        ("projects/42:read", "reports:read"),
        ("reports:read projects/7:read", "projects/42:read"),
    ] {
        let (t, _) = s.mint("analyst", scopes);
        let r = s.send(&report, Some(&t)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{scopes}: {r:?}");
        assert_eq!(r.problem()["scope"], missing, "{scopes}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_layer_trusts_several_issuers_and_audiences() {
    const PARTNER: &str = "https://partner.example";
    const SECOND_AUD: &str = "https://api.example.net";
    let ours = SigningKey::generate().unwrap();
    let partner = SigningKey::generate().unwrap();
    let verifier = Verifier::new(
        KeySet::single(ours.public_key().clone()),
        VerifierConfig::new(ISS, AUD, "production".parse().unwrap()).accept_audience(SECOND_AUD),
    )
    .unwrap()
    .trust_issuer(scopekey::TrustedIssuer::new(
        PARTNER,
        "partner-prod".parse().unwrap(),
        KeySet::single(partner.public_key().clone()),
    ))
    .unwrap();
    let s = serve(verifier, &ours, &[]).await;
    let mint = |key: &SigningKey, iss: &str, env: &str, aud: &str| {
        Issuer::new(
            SigningKey::from_paserk(&key.to_paserk()).unwrap(),
            iss,
            env.parse().unwrap(),
        )
        .unwrap()
        .issue(&TokenRequest::new(
            "svc",
            aud,
            "projects/42:read".parse().unwrap(),
        ))
        .unwrap()
        .token()
        .as_str()
        .to_owned()
    };
    let project = get("/projects/42");
    for (token, case) in [
        (mint(&ours, ISS, "production", AUD), "ours"),
        (
            mint(&partner, PARTNER, "partner-prod", AUD),
            "the partner's",
        ),
        (
            mint(&partner, PARTNER, "partner-prod", SECOND_AUD),
            "the second audience",
        ),
    ] {
        let r = s.send(&project, Some(&token)).await;
        assert_eq!(r.status, StatusCode::OK, "{case}: {r:?}");
    }
    // Issuer A's name, issuer B's key: refused.
    let forged = mint(&partner, ISS, "partner-prod", AUD);
    let r = s.send(&project, Some(&forged)).await;
    assert_invalid_token(
        &r,
        "the token is not meant for this service",
        "forged issuer",
    );
    let forged = mint(&ours, PARTNER, "production", AUD);
    let r = s.send(&project, Some(&forged)).await;
    assert_invalid_token(
        &r,
        "the token is not meant for this service",
        "forged partner",
    );
    // The partner's key in our environment: the signature binds the partner's.
    let r = s
        .send(&project, Some(&mint(&partner, PARTNER, "production", AUD)))
        .await;
    assert_invalid_token(
        &r,
        "the token signature is not valid here",
        "partner, our env",
    );
    // Another audience.
    let r = s
        .send(
            &project,
            Some(&mint(&ours, ISS, "production", "https://other.example")),
        )
        .await;
    assert_invalid_token(
        &r,
        "the token is not meant for this service",
        "other audience",
    );
}
