//! The operator console over a real loopback socket: login into a session cookie, CSRF on
//! every form (a form without it changes nothing), the pages, revoke and disable with a
//! confirmation step, escaping, and the security headers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use reqwest::{Client, StatusCode, redirect::Policy};
use scopekey::SigningKey;
use scopekey::consumer::Consumer;
use scopekey_server::{ServerConfig, TokenService};
use scopekey_store::Store;

struct Console {
    base: String,
    store: Store,
    admin: String,
    token: String,
    jti: String,
    client: Client,
    _dir: common::Dir,
}

async fn start() -> Console {
    let dir = common::Dir::new("scopekey-console");
    let (listener, base) = common::listener().await;
    let url = dir.store_url();
    let config =
        ServerConfig::new(base.clone(), "https://api.example", "test".parse().unwrap()).unwrap();
    let (service, store, admin, secret) = tokio::task::spawn_blocking(move || {
        let store = Store::open(&url).unwrap();
        let service =
            TokenService::new(store.clone(), SigningKey::generate().unwrap(), config).unwrap();
        let admin = service.bootstrap_admin().unwrap().unwrap();
        let c = Consumer::new(
            "<ci>",
            "team & co",
            "deploys",
            "test".parse().unwrap(),
            "projects:read projects/42/comments:write".parse().unwrap(),
        )
        .unwrap();
        store.add_consumer(&c).unwrap();
        let secret = store
            .rotate_client_secret("<ci>")
            .unwrap()
            .expose_secret()
            .to_owned();
        (service, store, admin, secret)
    })
    .await
    .unwrap();
    common::serve(listener, &service);
    let client = Client::builder().redirect(Policy::none()).build().unwrap();
    let resp = client
        .post(format!("{base}/oauth/token"))
        .basic_auth("%3Cci%3E", Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            "grant_type=client_credentials&scope=projects%3Aread+projects%2F42%2Fcomments%3Awrite",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    let s2 = store.clone();
    let jti = tokio::task::spawn_blocking(move || {
        s2.tokens(&scopekey::inventory::InventoryQuery::all().subject("<ci>"))
            .unwrap()[0]
            .token_id()
            .as_str()
            .to_owned()
    })
    .await
    .unwrap();
    Console {
        base,
        store,
        admin,
        token,
        jti,
        client,
        _dir: dir,
    }
}

/// `name=value` of the `Set-Cookie` named `name`.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(&format!("{name}=")))
}

/// The value of the hidden `csrf` field of a page.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

impl Console {
    async fn get(
        &self,
        path: &str,
        cookie: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        let (status, headers) = (r.status(), r.headers().clone());
        (status, headers, r.text().await.unwrap())
    }

    async fn post(&self, path: &str, cookie: &str, form: &str) -> (StatusCode, String) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned())
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.text().await.unwrap())
    }

    /// Logs in; returns the session cookie (`name=value`).
    async fn login(&self) -> String {
        self.login_with(&self.admin.clone()).await
    }

    /// A second admin token of the bootstrap operator, from the token endpoint.
    async fn second_admin_token(&self) -> String {
        let store = self.store.clone();
        let secret = tokio::task::spawn_blocking(move || {
            store
                .rotate_client_secret("admin")
                .unwrap()
                .expose_secret()
                .to_owned()
        })
        .await
        .unwrap();
        let resp = self
            .client
            .post(format!("{}/oauth/token", self.base))
            .basic_auth("admin", Some(&secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&scope=tokens%3Aread+tokens%3Arevoke&resource={}%2Fadmin",
                self.base.replace(':', "%3A").replace('/', "%2F")
            ))
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}"))
            .to_owned()
    }

    async fn login_with(&self, admin: &str) -> String {
        let r = self
            .client
            .get(format!("{}/console/login", self.base))
            .send()
            .await
            .unwrap();
        let nonce_cookie = set_cookie(&r, "scopekey_console_login").unwrap();
        let html = r.text().await.unwrap();
        let csrf = csrf_of(&html);
        let pair = nonce_cookie.split(';').next().unwrap().to_owned();
        let r = self
            .client
            .post(format!("{}/console/login", self.base))
            .header("cookie", &pair)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={csrf}&token={admin}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let session = set_cookie(&r, "scopekey_console").unwrap();
        assert!(
            session.contains("HttpOnly")
                && session.contains("SameSite=Strict")
                && session.contains("Path=/console"),
            "{session}"
        );
        assert!(
            !session.contains("Secure"),
            "plain HTTP on loopback: {session}"
        );
        session.split(';').next().unwrap().to_owned()
    }

    async fn revoked(&self) -> bool {
        let (store, jti) = (self.store.clone(), self.jti.clone());
        tokio::task::spawn_blocking(move || {
            let q = scopekey_store::AuditQuery::new().jti(&jti).kind("revoked");
            !store.audit_events(&q).unwrap().is_empty()
        })
        .await
        .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn login_needs_the_forms_csrf_token_and_an_admin_token() {
    let c = start().await;
    // Not logged in: every page sends to the login page.
    for path in [
        "/console",
        "/console/tokens",
        &format!("/console/tokens/{}", c.jti),
        "/console/audit",
    ] {
        let (status, headers, _) = c.get(path, "").await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(headers["location"], "/console/login");
    }
    let r = c
        .client
        .get(format!("{}/console/login", c.base))
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("frame-ancestors 'none'")
            && !csp.contains("script"),
        "{csp}"
    );
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let nonce = set_cookie(&r, "scopekey_console_login").unwrap();
    let pair = nonce.split(';').next().unwrap().to_owned();
    let csrf = csrf_of(&r.text().await.unwrap());
    // Without the field, with another value, without the cookie: refused, no session.
    for (cookie, form) in [
        (pair.as_str(), format!("token={}", c.admin)),
        (pair.as_str(), format!("csrf=x{csrf}&token={}", c.admin)),
        ("", format!("csrf={csrf}&token={}", c.admin)),
    ] {
        let (status, body) = c.post("/console/login", cookie, &form).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{form}");
        assert!(body.contains("CSRF"));
    }
    // An API token is no admin token.
    let (status, body) = c
        .post(
            "/console/login",
            &pair,
            &format!("csrf={csrf}&token={}", c.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("refused: the admin token is refused: wrong_audience"),
        "{body}"
    );
    let session = c.login().await;
    let (status, _, html) = c.get("/console", &session).await;
    assert_eq!(status, StatusCode::OK);
    // Consumer names and owners are escaped.
    assert!(
        html.contains("&lt;ci&gt;") && html.contains("team &amp; co") && !html.contains("<ci>"),
        "{html}"
    );
    // Logout needs the CSRF token too; then the session is gone.
    let csrf = csrf_of(&html);
    let (status, _) = c
        .post("/console/logout", &session, &format!("csrf={csrf}"))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(c.get("/console", &session).await.0, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_show_tokens_their_blast_radius_and_the_trail() {
    let c = start().await;
    let session = c.login().await;
    let (_, _, html) = c.get("/console/tokens?show=escalated", &session).await;
    assert!(html.contains(&c.jti), "{html}");
    // Issued a moment ago: not yet "unused for a day" (the inventory's rule), but expiring soon.
    let (_, _, html) = c.get("/console/tokens?show=unused&days=1", &session).await;
    assert!(
        html.contains("Unused for 1 days") && !html.contains(&c.jti),
        "{html}"
    );
    let (_, _, html) = c
        .get("/console/tokens?show=expiring&hours=1", &session)
        .await;
    assert!(html.contains(&c.jti), "{html}");
    let (status, _, _) = c.get("/console/tokens?show=everything", &session).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, _, html) = c.get(&format!("/console/tokens/{}", c.jti), &session).await;
    assert!(html.contains("id=\"blast-radius\""));
    assert!(
        html.contains("<code>comments</code><span class=\"act write\">write</span>"),
        "{html}"
    );
    let (_, _, html) = c.get("/console/consumers/%3Cci%3E", &session).await;
    assert!(
        html.contains("id=\"usage\"") && html.contains(&c.jti),
        "{html}"
    );
    let (_, _, html) = c
        .get(&format!("/console/audit?jti={}", c.jti), &session)
        .await;
    assert!(html.contains("issued"), "{html}");
    assert_eq!(
        c.get("/console/tokens/AAAAAAAAAAAAAAAAAAAAAA", &session)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.get("/console/tokens/%21%21", &session).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn revoke_and_disable_need_confirmation_and_csrf() {
    let c = start().await;
    let session = c.login().await;
    let path = format!("/console/tokens/{}/revoke", c.jti);
    let (_, _, confirm) = c.get(&path, &session).await;
    assert!(confirm.contains("Confirm revocation"));
    let csrf = csrf_of(&confirm);
    // CSRF missing or wrong, not confirmed, not a form: nothing happens.
    for (form, status) in [
        ("confirm=yes&reason=leak".to_owned(), StatusCode::FORBIDDEN),
        (
            "csrf=nope&confirm=yes&reason=leak".to_owned(),
            StatusCode::FORBIDDEN,
        ),
        (format!("csrf={csrf}&reason=leak"), StatusCode::BAD_REQUEST),
        (
            format!("csrf={csrf}&csrf={csrf}&confirm=yes"),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(c.post(&path, &session, &form).await.0, status, "{form}");
    }
    // Another session's CSRF token does not work either.
    let second = c.second_admin_token().await;
    let other = c.login_with(&second).await;
    let (_, _, other_page) = c.get(&path, &other).await;
    let other_csrf = csrf_of(&other_page);
    assert_ne!(other_csrf, csrf);
    assert_eq!(
        c.post(
            &path,
            &session,
            &format!("csrf={other_csrf}&confirm=yes&reason=x")
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert!(!c.revoked().await);
    // Logging in again with the same token replaces its session.
    let again = c.login_with(&second).await;
    assert_eq!(c.get(&path, &other).await.0, StatusCode::SEE_OTHER);
    assert_eq!(c.get(&path, &again).await.0, StatusCode::OK);
    let (status, _) = c
        .post(
            &path,
            &session,
            &format!("csrf={csrf}&confirm=yes&reason=printed+in+a+log"),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(c.revoked().await);
    let (_, _, html) = c.get(&format!("/console/tokens/{}", c.jti), &session).await;
    assert!(html.contains("Revoked."), "{html}");
    // Disable, the same way.
    let path = "/console/consumers/%3Cci%3E/disable";
    assert_eq!(
        c.post(path, &session, "confirm=yes&reason=x").await.0,
        StatusCode::FORBIDDEN
    );
    let (status, _) = c
        .post(
            path,
            &session,
            &format!("csrf={csrf}&confirm=yes&reason=contract+ended"),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let store = c.store.clone();
    let disabled =
        tokio::task::spawn_blocking(move || !store.consumer("<ci>").unwrap().unwrap().is_enabled())
            .await
            .unwrap();
    assert!(disabled);
}

#[tokio::test(flavor = "multi_thread")]
async fn consumer_names_stay_one_path_segment_in_links_and_forms() {
    let c = start().await;
    let store = c.store.clone();
    tokio::task::spawn_blocking(move || {
        let odd = Consumer::new(
            "x/../y?z#",
            "o",
            "p",
            "test".parse().unwrap(),
            "a:read".parse().unwrap(),
        )
        .unwrap();
        store.add_consumer(&odd).unwrap();
    })
    .await
    .unwrap();
    let session = c.login().await;
    let (_, _, html) = c.get("/console", &session).await;
    assert!(
        html.contains("href=\"/console/consumers/x%2F%2E%2E%2Fy%3Fz%23\""),
        "{html}"
    );
    let (status, _, html) = c
        .get("/console/consumers/x%2F%2E%2E%2Fy%3Fz%23/disable", &session)
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("action=\"/console/consumers/x%2F%2E%2E%2Fy%3Fz%23/disable\""),
        "{html}"
    );
    // A confirmation form for a consumer that does not exist is not offered.
    let (status, _, _) = c
        .get(
            "/console/consumers/..%2Fconsumers%2Fvictim/disable",
            &session,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Every page view is in the trail.
    let store = c.store.clone();
    let views = tokio::task::spawn_blocking(move || {
        let q = scopekey_store::AuditQuery::new().kind("admin_action");
        store
            .audit_events(&q)
            .unwrap()
            .into_iter()
            .map(|(_, e)| e)
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert!(
        views
            .iter()
            .any(|e| e.contains("\"action\":\"console.consumers\"")),
        "{views:?}"
    );
    assert!(
        views
            .iter()
            .any(|e| e.contains("\"action\":\"console.disable_form\"")),
        "{views:?}"
    );
}
