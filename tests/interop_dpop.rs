//! DPoP interop (RFC 9449): proofs made by panva's `dpop` npm package
//! (`tests/interop/dpop_proofs.mjs`, keys generated with Node's WebCrypto, EdDSA and ES256)
//! against the example service over a real socket, and its RFC 7638 thumbprints against ours.
//!
//! Needs `SCOPEKEY_TEST_NODE` (a node binary) and the package installed from
//! `tests/interop/package-lock.json` (`.ci/run` runs `npm ci` in `target/interop-node`; set
//! `SCOPEKEY_TEST_NODE_MODULES` to use another `node_modules`). Without them the test says it
//! skipped, except with `CI=true`, where that is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

#[path = "../examples/axum_service.rs"]
mod service;

use reqwest::StatusCode;
use scopekey::audit::{AuditKind, MemorySink};
use scopekey::dpop::Jkt;
use scopekey::revocation::RevocationList;
use scopekey::{Issuer, KeySet, SigningKey, TokenRequest, Verifier, VerifierConfig};
use serde_json::{Value, json};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";

/// The node binary and the `node_modules` holding `dpop`, or `None` (skipped) outside CI.
fn node() -> Option<(PathBuf, PathBuf)> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let modules = std::env::var("SCOPEKEY_TEST_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/interop-node/node_modules")
        });
    let node = std::env::var("SCOPEKEY_TEST_NODE")
        .ok()
        .filter(|n| !n.is_empty());
    match node {
        Some(node) if modules.join("dpop/package.json").is_file() => {
            Some((PathBuf::from(node), modules))
        }
        _ if ci => panic!(
            "SCOPEKEY_TEST_NODE is not set or the dpop package is not in {} and CI=true: \
             DPoP interop must run in CI",
            modules.display()
        ),
        _ => {
            eprintln!(
                "dpop interop: SKIPPED, set SCOPEKEY_TEST_NODE and run `npm ci` in \
                 target/interop-node (see .ci/run)"
            );
            None
        }
    }
}

fn run_node(node: &(PathBuf, PathBuf), request: &Value) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/dpop_proofs.mjs");
    let mut child = Command::new(&node.0)
        .arg(script)
        .env("SCOPEKEY_TEST_NODE_MODULES", &node.1)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
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
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_from_the_dpop_package_are_accepted_and_each_bad_one_refused_with_its_reason() {
    let Some(node) = node() else {
        return;
    };
    let keys = run_node(&node, &json!({"mode": "keys"}));
    // Our RFC 7638 thumbprints are the package's.
    let jkt = |alg: &str| {
        let ours = Jkt::of_jwk(keys[alg]["public"].as_object().unwrap()).unwrap();
        assert_eq!(ours.as_str(), keys[alg]["jkt"].as_str().unwrap(), "{alg}");
        ours
    };
    let (ed_jkt, es_jkt) = (jkt("Ed25519"), jkt("ES256"));

    let key = SigningKey::generate().unwrap();
    let keyset = KeySet::single(key.public_key().clone());
    let issuer = Issuer::new(key, ISS, "production".parse().unwrap()).unwrap();
    let audit = Arc::new(MemorySink::new());
    let revocations = Arc::new(RevocationList::new());
    let verifier = Verifier::new(
        keyset,
        VerifierConfig::new(ISS, AUD, "production".parse().unwrap()),
    )
    .unwrap()
    .with_revocations(revocations.clone())
    .with_audit(audit.clone())
    .with_dpop(service::dpop_policy());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let dpop = scopekey_axum::DpopConfig::new([base.as_str()]).unwrap();
    let app = service::app_with_dpop(Arc::new(verifier), revocations, Vec::new(), Some(dpop));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mint = |jkt: Option<&Jkt>| {
        let mut request = TokenRequest::new("node-client", AUD, "projects:read".parse().unwrap());
        if let Some(jkt) = jkt {
            request = request.bind_dpop(jkt.clone());
        }
        issuer.issue(&request).unwrap().token().as_str().to_owned()
    };
    let (ed_token, es_token) = (mint(Some(&ed_jkt)), mint(Some(&es_jkt)));
    let url = format!("{base}/projects/7");
    let proof_request = |name: &str, alg: &str, htm: &str, htu: &str, token: &str| json!({"name": name, "alg": alg, "htm": htm, "htu": htu, "token": token});
    let mut stale = proof_request("stale", "Ed25519", "GET", &url, &ed_token);
    stale["iat"] = json!(now() - 600);
    let requests = json!([
        proof_request("ed", "Ed25519", "GET", &url, &ed_token),
        proof_request("es", "ES256", "GET", &url, &es_token),
        proof_request("method", "Ed25519", "POST", &url, &ed_token),
        proof_request(
            "url",
            "Ed25519",
            "GET",
            &format!("{base}/projects/8"),
            &ed_token
        ),
        stale,
        proof_request("ath", "Ed25519", "GET", &url, &es_token),
        proof_request("key", "ES256", "GET", &url, &ed_token),
    ]);
    let proofs = run_node(
        &node,
        &json!({"mode": "proofs", "keys": keys, "requests": requests}),
    );
    let proof = |name: &str| proofs[name].as_str().unwrap().to_owned();

    let client = reqwest::Client::new();
    let call = |auth: String, proof: Option<String>| {
        let mut request = client.get(&url).header("authorization", auth);
        if let Some(proof) = proof {
            request = request.header("dpop", proof);
        }
        async move { request.send().await.unwrap() }
    };

    // Accepted: EdDSA (the package writes `alg` `Ed25519`, RFC 9864) and ES256.
    for (token, name) in [(&ed_token, "ed"), (&es_token, "es")] {
        let r = call(format!("DPoP {token}"), Some(proof(name))).await;
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "{name}: {}",
            r.text().await.unwrap()
        );
    }

    let last_reason = || match &audit.events().last().unwrap().kind {
        AuditKind::Refused { reason } => (*reason).to_owned(),
        other => format!("{other:?}"),
    };
    let cases = [
        (
            "no proof",
            format!("DPoP {ed_token}"),
            None,
            "invalid_token",
            "dpop_proof_missing",
        ),
        (
            "as bearer",
            format!("Bearer {ed_token}"),
            None,
            "invalid_token",
            "dpop_proof_missing",
        ),
        (
            "replayed",
            format!("DPoP {ed_token}"),
            Some(proof("ed")),
            "invalid_dpop_proof",
            "dpop_proof_replayed",
        ),
        (
            "other method",
            format!("DPoP {ed_token}"),
            Some(proof("method")),
            "invalid_dpop_proof",
            "dpop_request_mismatch",
        ),
        (
            "other url",
            format!("DPoP {ed_token}"),
            Some(proof("url")),
            "invalid_dpop_proof",
            "dpop_request_mismatch",
        ),
        (
            "stale iat",
            format!("DPoP {ed_token}"),
            Some(proof("stale")),
            "invalid_dpop_proof",
            "dpop_proof_stale",
        ),
        (
            "wrong ath",
            format!("DPoP {ed_token}"),
            Some(proof("ath")),
            "invalid_dpop_proof",
            "dpop_token_mismatch",
        ),
        (
            "other key",
            format!("DPoP {ed_token}"),
            Some(proof("key")),
            "invalid_dpop_proof",
            "dpop_key_mismatch",
        ),
        (
            "unbound with DPoP",
            format!("DPoP {}", mint(None)),
            Some(proof("ed")),
            "invalid_token",
            "dpop_not_bound",
        ),
    ];
    for (name, auth, proof, error, reason) in cases {
        let r = call(auth, proof).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{name}");
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("DPoP "), "{name}: {challenge}");
        assert!(
            challenge.contains("algs=\"EdDSA Ed25519 ES256\""),
            "{name}: {challenge}"
        );
        assert!(
            challenge.contains(&format!("error=\"{error}\"")),
            "{name}: {challenge}"
        );
        let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(body["error"], error, "{name}: {body}");
        assert_eq!(last_reason(), reason, "{name}");
        eprintln!("{name}: refused, {reason}: {}", body["detail"]);
    }
}
