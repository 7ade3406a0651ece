//! Two instances of the example service sharing one store: a revocation posted to one is
//! refused by the other, and the audit trail and inventory land in the store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

#[path = "../examples/axum_service.rs"]
mod service;

use reqwest::{Client, StatusCode};
use scopekey::inventory::InventoryQuery;
use scopekey::{Issuer, KeySet, SigningKey, TokenRequest, VerifierConfig};
use scopekey_store::Store;
use std::time::{Duration, Instant};

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";

async fn serve(store: Store, keys: KeySet) -> String {
    let config = VerifierConfig::new(ISS, AUD, "production".parse().unwrap());
    let (verifier, revoker) = tokio::task::spawn_blocking(move || {
        service::with_store(&store, &keys, config).map_err(|e| e.to_string())
    })
    .await
    .unwrap()
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            service::app(verifier, revoker, Vec::new())
                .into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap()
    });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_through_one_instance_is_refused_by_the_other() {
    let dir = std::env::temp_dir().join(format!("scopekey-svc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/state.db", dir.display());
    let key = SigningKey::generate().unwrap();
    let keys = KeySet::single(key.public_key().clone());
    let (u1, u2) = (url.clone(), url.clone());
    let store_a = tokio::task::spawn_blocking(move || Store::open(&u1).unwrap())
        .await
        .unwrap();
    let store_b = tokio::task::spawn_blocking(move || Store::open(&u2).unwrap())
        .await
        .unwrap();
    let a = serve(store_a.clone(), keys.clone()).await;
    let b = serve(store_b, KeySet::new()).await; // B learns the key from the store

    let issuer = Issuer::new(key, ISS, "production".parse().unwrap()).unwrap();
    let mint = |sub: &str, scopes: &str| {
        let m = issuer
            .issue(&TokenRequest::new(sub, AUD, scopes.parse().unwrap()).escalate())
            .unwrap();
        (
            m.token().as_str().to_owned(),
            m.claims().token_id().to_string(),
        )
    };
    let (admin, _) = mint("ops", "tokens:revoke");
    let (victim, victim_jti) = mint("leaky", "projects:read");
    let client = Client::new();
    let get = |base: &str, token: &str| {
        client
            .get(format!("{base}/projects/1"))
            .header("authorization", format!("Bearer {token}"))
            .send()
    };
    assert_eq!(get(&a, &victim).await.unwrap().status(), StatusCode::OK);
    assert_eq!(get(&b, &victim).await.unwrap().status(), StatusCode::OK);

    let r = client
        .post(format!("{a}/admin/revocations"))
        .header("authorization", format!("Bearer {admin}"))
        .header("content-type", "application/json")
        .body(serde_json::json!({ "jti": victim_jti, "reason": "leaked" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Instance A refuses at once; instance B within its poll interval.
    assert_eq!(
        get(&a, &victim).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let start = Instant::now();
    loop {
        let status = get(&b, &victim).await.unwrap().status();
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_millis(1500),
            "instance B still accepts the token"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The audit trail and last uses are in the store: each token's decisions summarized, the
    // refusals by reason, within the service's one-second interval.
    let start = Instant::now();
    let (log, records) = loop {
        let store = store_a.clone();
        let (log, records) = tokio::task::spawn_blocking(move || {
            (
                store.audit_log(0, 1000).unwrap(),
                store.tokens(&InventoryQuery::all()).unwrap(),
            )
        })
        .await
        .unwrap();
        // Both instances' refusals: each flushes its own summary, so wait for the two.
        let refusals: u64 = log
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["event"] == "refused_summary" && e["reason"] == "revoked")
            .filter_map(|e| e["count"].as_u64())
            .sum();
        let summarized =
            refusals >= 2 && log.iter().any(|l| l.contains("\"event\":\"token_used\""));
        if summarized || start.elapsed() > Duration::from_secs(10) {
            break (log, records);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let events: Vec<serde_json::Value> = log
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Each instance refused the victim once, as revoked (B stops asking at its first refusal).
    let revoked: u64 = events
        .iter()
        .filter(|e| e["event"] == "refused_summary" && e["reason"] == "revoked")
        .map(|e| e["count"].as_u64().unwrap())
        .sum();
    assert_eq!(revoked, 2, "{log:?}");
    // A verified the victim once and the admin once; B writes to the same store.
    let verified = |jti: &str| -> u64 {
        events
            .iter()
            .filter(|e| e["event"] == "token_used" && e["jti"] == jti)
            .map(|e| e["verified"].as_u64().unwrap())
            .sum()
    };
    assert!(verified(&victim_jti) >= 1, "{log:?}");
    // The summaries say where the requests came from (the tower layer's request context).
    for e in events
        .iter()
        .filter(|e| e["event"] == "token_used" || e["event"] == "refused_summary")
    {
        let clients = e.get("clients").or_else(|| e.get("sample_clients"));
        assert_eq!(clients, Some(&serde_json::json!(["127.0.0.1"])), "{e}");
    }
    // Tokens minted outside the store's issuer are not in the inventory; that is what the
    // inventory's "minted outside the registry" report will be for.
    assert!(records.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_consumer_is_refused_by_the_service_and_others_are_not() {
    use scopekey::consumer::Consumer;
    let dir = std::env::temp_dir().join(format!("scopekey-svc-disable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/state.db", dir.display());
    let key = SigningKey::generate().unwrap();
    let public = key.public_key().clone();
    let store = tokio::task::spawn_blocking(move || {
        let s = Store::open(&url).unwrap();
        s.add_key(&public, None).unwrap();
        for (name, ceiling) in [
            ("analytics", "projects:read"),
            ("publisher", "projects:read"),
        ] {
            let c = Consumer::new(
                name,
                "team",
                "tests",
                "production".parse().unwrap(),
                ceiling.parse().unwrap(),
            )
            .unwrap();
            s.add_consumer(&c).unwrap();
        }
        s
    })
    .await
    .unwrap();
    let base = serve(store.clone(), KeySet::new()).await;
    let issuer = Issuer::new(key, ISS, "production".parse().unwrap()).unwrap();
    let s2 = store.clone();
    let consumers = tokio::task::spawn_blocking(move || s2.consumers().unwrap())
        .await
        .unwrap();
    let mint = |name: &str| {
        let c = consumers.iter().find(|c| c.name() == name).unwrap();
        issuer
            .issue_for(
                c,
                &TokenRequest::new(name, AUD, "projects:read".parse().unwrap()),
            )
            .unwrap()
            .token()
            .as_str()
            .to_owned()
    };
    let (analytics, publisher) = (mint("analytics"), mint("publisher"));
    let client = Client::new();
    let status = |t: String| {
        let req = client
            .get(format!("{base}/projects/1"))
            .header("authorization", format!("Bearer {t}"));
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(status(analytics.clone()).await, StatusCode::OK);
    let s3 = store.clone();
    tokio::task::spawn_blocking(move || {
        s3.disable_consumer("analytics", "ops", "contract ended")
            .unwrap()
            .unwrap()
    })
    .await
    .unwrap();
    let start = Instant::now();
    while status(analytics.clone()).await != StatusCode::UNAUTHORIZED {
        assert!(
            start.elapsed() < Duration::from_millis(1500),
            "the service still accepts the disabled consumer"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status(publisher).await, StatusCode::OK);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two instances of the service on one store share a use-limited token's count: of many
/// concurrent requests spread over both, exactly N are answered, the rest are 401
/// `invalid_token` ("the token has no uses left"); an unlimited token is unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_store_share_a_use_limited_tokens_count() {
    let dir = std::env::temp_dir().join(format!("scopekey-svc-uses-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/state.db", dir.display());
    let key = SigningKey::generate().unwrap();
    let keys = KeySet::single(key.public_key().clone());
    let (u1, u2) = (url.clone(), url.clone());
    let store_a = tokio::task::spawn_blocking(move || Store::open(&u1).unwrap())
        .await
        .unwrap();
    let store_b = tokio::task::spawn_blocking(move || Store::open(&u2).unwrap())
        .await
        .unwrap();
    let a = serve(store_a, keys.clone()).await;
    let b = serve(store_b, keys).await;
    let issuer = Issuer::new(key, ISS, "production".parse().unwrap()).unwrap();
    let request = TokenRequest::new("batch", AUD, "projects:read".parse().unwrap());
    let limited = issuer.issue(&request.clone().max_uses(4)).unwrap();
    let plain = issuer.issue(&request).unwrap();
    let client = Client::new();
    let requests = (0..20).map(|i| {
        let base = if i % 2 == 0 { a.clone() } else { b.clone() };
        let req = client.get(format!("{base}/projects/1")).header(
            "authorization",
            format!("Bearer {}", limited.token().as_str()),
        );
        async move { req.send().await.unwrap() }
    });
    let mut handles = Vec::new();
    for r in requests {
        handles.push(tokio::spawn(r));
    }
    let (mut ok, mut refused) = (0, 0);
    for h in handles {
        let response = h.await.unwrap();
        match response.status() {
            StatusCode::OK => ok += 1,
            StatusCode::UNAUTHORIZED => {
                let challenge = response.headers()["www-authenticate"].to_str().unwrap();
                assert!(challenge.contains("no uses left"), "{challenge}");
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((ok, refused), (4, 16));
    for base in [&a, &b] {
        let r = client
            .get(format!("{base}/projects/1"))
            .header(
                "authorization",
                format!("Bearer {}", plain.token().as_str()),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
