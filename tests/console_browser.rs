//! The operator console in a real browser: headless Chromium driven over WebDriver (Debian's
//! `chromium` and `chromium-driver`, which `.ci/run` installs) logs in with an admin token,
//! finds a consumer's token, looks at its blast radius (saved as a screenshot,
//! `target/console-blast-radius.png`), revokes it through the confirmation step — and the
//! example service, reading the same store, then refuses that token.
//!
//! Needs `chromedriver` (`SCOPEKEY_TEST_CHROMEDRIVER`, default `/usr/bin/chromedriver`) and
//! Chromium (`SCOPEKEY_TEST_CHROMIUM`, default `/usr/bin/chromium`); without them the test says
//! it skipped, except with `CI=true`, where that is a failure. The WebDriver calls are plain
//! W3C WebDriver over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

#[path = "../examples/axum_service.rs"]
mod service;

use base64::Engine as _;
use reqwest::{Client, StatusCode};
use scopekey::consumer::Consumer;
use scopekey::{KeySet, SigningKey, VerifierConfig};
use scopekey_server::{ServerConfig, TokenService};
use scopekey_store::Store;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const AUD: &str = "https://api.example";
/// The W3C WebDriver element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn tool(var: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var(var).map_or_else(|_| PathBuf::from(default), PathBuf::from);
    if path.exists() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{} is missing and CI=true: the browser test must run in CI ({var})",
            path.display()
        );
    }
    eprintln!(
        "console browser test SKIPPED: {} not found (set {var})",
        path.display()
    );
    None
}

/// chromedriver, stopped however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A WebDriver session.
struct Browser {
    http: Client,
    base: String,
}

impl Browser {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let text = req.send().await.unwrap().text().await.unwrap();
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("webdriver: {text}"));
        assert!(v["value"]["error"].is_null(), "webdriver {path}: {v}");
        v["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT].as_str().unwrap().to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The page source once it contains `text` (a form submit navigates only when the server
    /// has answered); fails after 10 s with the last source.
    async fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let source = self.source().await;
            if source.contains(text) {
                return source;
            }
            assert!(
                Instant::now() < deadline,
                "{text:?} never appeared: {source}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn screenshot(&self) -> Vec<u8> {
        let b64 = self.call(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_revokes_a_token_in_the_console_and_the_service_refuses_it() {
    let (Some(driver), Some(chromium)) = (
        tool("SCOPEKEY_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"),
        tool("SCOPEKEY_TEST_CHROMIUM", "/usr/bin/chromium"),
    ) else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("scopekey-console-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The token service and the example service, on one store.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let url = format!("sqlite://{}/scopekey.db", dir.display());
    let config = ServerConfig::new(issuer.clone(), AUD, "dev".parse().unwrap()).unwrap();
    let (server, store, admin, secret) = tokio::task::spawn_blocking(move || {
        let store = Store::open(&url).unwrap();
        let server =
            TokenService::new(store.clone(), SigningKey::generate().unwrap(), config).unwrap();
        let admin = server.bootstrap_admin().unwrap().unwrap();
        let c = Consumer::new(
            "comment-importer",
            "team-content",
            "imports comments",
            "dev".parse().unwrap(),
            "projects:read projects/42/comments:write billing/invoices:read"
                .parse()
                .unwrap(),
        )
        .unwrap();
        store.add_consumer(&c).unwrap();
        let secret = store
            .rotate_client_secret("comment-importer")
            .unwrap()
            .expose_secret()
            .to_owned();
        (server, store, admin, secret)
    })
    .await
    .unwrap();
    let app = server
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (s2, iss2) = (store.clone(), issuer.clone());
    let (verifier, revocations) = tokio::task::spawn_blocking(move || {
        service::with_store(
            &s2,
            &KeySet::new(),
            VerifierConfig::new(iss2, AUD, "dev".parse().unwrap()),
        )
        .unwrap()
    })
    .await
    .unwrap();
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", api_listener.local_addr().unwrap());
    let api_app = service::app(verifier, revocations, Vec::new())
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(api_listener, api_app).await.unwrap() });
    // The consumer gets its token over OAuth and uses it.
    let http = Client::new();
    let answer: Value = serde_json::from_str(
        &http
            .post(format!("{issuer}/oauth/token"))
            .basic_auth("comment-importer", Some(&secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&scope=projects%3Aread+projects%2F42%2Fcomments%3Awrite")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let token = answer["access_token"].as_str().unwrap().to_owned();
    let s3 = store.clone();
    let jti = tokio::task::spawn_blocking(move || {
        let q = scopekey::inventory::InventoryQuery::all().subject("comment-importer");
        s3.tokens(&q).unwrap()[0].token_id().as_str().to_owned()
    })
    .await
    .unwrap();
    let status = |t: String| {
        let (http, api) = (http.clone(), api.clone());
        async move {
            http.get(format!("{api}/projects/42"))
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status(token.clone()).await, StatusCode::OK);
    // The browser.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let _chromedriver = KillOnDrop(
        std::process::Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let driver_url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while http
        .get(format!("{driver_url}/status"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let profile = dir.join("chromium-profile");
    let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
        "binary": chromium,
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1100,900", format!("--user-data-dir={}", profile.display())]
    }}}});
    let session: Value = serde_json::from_str(
        &http
            .post(format!("{driver_url}/session"))
            .header("content-type", "application/json")
            .body(caps.to_string())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let id = session["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {session}"))
        .to_owned();
    let b = Browser {
        http: http.clone(),
        base: format!("{driver_url}/session/{id}"),
    };
    let () = async {
        b.go(&format!("{issuer}/console")).await;
        assert!(
            b.source().await.contains("Admin token"),
            "sent to the login page"
        );
        b.type_into("#token", &admin).await;
        b.click("#login").await;
        // The submit navigates once the login is recorded: wait for the consumers page.
        let consumers = b.wait_for("comment-importer").await;
        assert!(consumers.contains("team-content"), "{consumers}");
        // Find the token among the escalated ones and open it.
        b.go(&format!("{issuer}/console/tokens?show=escalated"))
            .await;
        // (The bootstrap admin's own token is escalated too: pick the consumer's.)
        b.click(&format!("a.jti[href=\"/console/tokens/{jti}\"]"))
            .await;
        let page = b.wait_for("id=\"blast-radius\"").await;
        assert!(page.contains("id=\"blast-radius\""), "{page}");
        assert!(page.contains("comments"), "{page}");
        let png = b.screenshot().await;
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let shot =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-blast-radius.png");
        std::fs::write(&shot, &png).unwrap();
        // Revoke, through the confirmation step.
        b.click("#revoke").await;
        b.wait_for("Confirm revocation").await;
        b.type_into("#reason", "found in a pasted chat log").await;
        b.click("#confirm").await;
        // The submit navigates once the revocation is recorded: wait for that page.
        b.wait_for("Revoked.").await;
    }
    .await;
    b.call(reqwest::Method::DELETE, "", None).await;
    // The example service refuses the token from then on.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = status(token.clone()).await;
        if s == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(Instant::now() < deadline, "the service still answers {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
