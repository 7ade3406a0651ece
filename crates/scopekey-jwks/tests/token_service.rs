//! A remote key set following the scopekey token service's own `/.well-known/jwks.json`: the
//! tokens it mints by client credentials verify, its `Cache-Control` sets the schedule, and a
//! key added to its store is picked up on the first token that names it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scopekey::consumer::Consumer;
use scopekey::{Issuer, SigningKey, TokenRequest, Verifier, VerifierConfig, VerifyErrorKind};
use scopekey_jwks::{RemoteKeySet, RemoteKeySetConfig};
use scopekey_server::{ServerConfig, TokenService};
use scopekey_store::Store;
use std::net::SocketAddr;
use std::time::Duration;

const API: &str = "https://api.example";

/// A fresh folder for the store, removed when dropped.
struct Dir(std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_the_token_service_jwks() {
    let id = scopekey::TokenId::generate()
        .unwrap()
        .as_str()
        .to_lowercase();
    let dir = Dir(std::env::temp_dir().join(format!("scopekey-jwks-{id}")));
    std::fs::create_dir_all(&dir.0).unwrap();
    let url = format!("sqlite://{}/scopekey.db", dir.0.display());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = ServerConfig::new(base.clone(), API, "test".parse().unwrap()).unwrap();
    let (service, store, secret) = tokio::task::spawn_blocking(move || {
        let store = Store::open(&url).unwrap();
        let ci = Consumer::new(
            "ci",
            "platform",
            "tests",
            "test".parse().unwrap(),
            "projects:read".parse().unwrap(),
        )
        .unwrap();
        store.add_consumer(&ci).unwrap();
        let secret = store
            .rotate_client_secret("ci")
            .unwrap()
            .expose_secret()
            .to_owned();
        let service =
            TokenService::new(store.clone(), SigningKey::generate().unwrap(), config).unwrap();
        (service, store, secret)
    })
    .await
    .unwrap();
    let app = service
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let keys = RemoteKeySet::start(
        RemoteKeySetConfig::new(&format!("{base}/.well-known/jwks.json"))
            .unwrap()
            .min_refresh_interval(Duration::from_millis(1))
            .unwrap(),
    )
    .await
    .unwrap();
    // The service sends `Cache-Control: public, max-age=300`.
    assert_eq!(keys.status().refresh_interval(), Duration::from_secs(300));
    assert_eq!(keys.status().keys(), 1);
    let verifier = Verifier::with_key_ring(
        keys.ring().clone(),
        VerifierConfig::new(base.clone(), API, "test".parse().unwrap()),
    )
    .unwrap();

    // A token the service mints verifies.
    let answer = reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .basic_auth("ci", Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let token = answer["access_token"].as_str().unwrap();
    assert_eq!(verifier.verify(token).unwrap().subject(), "ci");

    // A key added to the service's store (a rotation under way) is picked up on the first token
    // that names it, once the service publishes it.
    let next = SigningKey::generate().unwrap();
    let public = next.public_key().clone();
    tokio::task::spawn_blocking(move || store.add_key(&public, None).unwrap())
        .await
        .unwrap();
    let issuer = Issuer::new(next, base.clone(), "test".parse().unwrap()).unwrap();
    let minted = issuer
        .issue(&TokenRequest::new(
            "ci",
            API,
            "projects:read".parse().unwrap(),
        ))
        .unwrap();
    let rotated = minted.token().as_str();
    tokio::time::timeout(Duration::from_secs(30), async {
        // The service's replica publishes the key when it has read the store.
        while verifier.verify(rotated).err().map(|e| e.kind()) == Some(VerifyErrorKind::UnknownKey)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
            keys.refresh().await;
        }
    })
    .await
    .unwrap();
    assert_eq!(verifier.verify(rotated).unwrap().subject(), "ci");
    assert_eq!(keys.status().keys(), 2);
}
