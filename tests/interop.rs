//! Interoperability with independent implementations in another language: pyseto (PASETO
//! v4.public) and PyJWT (JWT/EdDSA), run from `tests/interop/interop.py`.
//!
//! Both directions, both formats, keys exchanged as PASERK and JWK; the example service's JWKS
//! consumed by PyJWT's `PyJWKClient`; and tokens those libraries accept but scopekey refuses.
//!
//! Needs `SCOPEKEY_TEST_PYTHON`: a Python with `pyseto` and `PyJWT[crypto]` (`.ci/run` makes a
//! virtual environment). Without it the tests say they skipped, except with `CI=true`, where
//! that is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

#[path = "../examples/axum_service.rs"]
mod service;

use scopekey::revocation::RevocationList;
use scopekey::{
    Issuer, KeySet, PublicKey, SigningKey, TokenFormat, TokenRequest, TokenType, Verifier,
    VerifierConfig, VerifyErrorKind,
};
use serde_json::{Value, json};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";
const SCOPES: &str = "comments:write projects:read";

fn python(test: &str) -> Option<PathBuf> {
    match std::env::var("SCOPEKEY_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: SCOPEKEY_TEST_PYTHON is not set and CI=true: interop must run in CI")
        }
        _ => {
            eprintln!(
                "{test}: SKIPPED, set SCOPEKEY_TEST_PYTHON to a Python with pyseto and PyJWT[crypto]"
            );
            None
        }
    }
}

/// Runs `program tests/interop/<script>` with `request` as JSON on stdin; returns its JSON answer.
fn run_json(program: &std::path::Path, script: &str, request: &Value) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(script);
    let mut child = Command::new(program)
        .arg(script)
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
        "{} failed: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn run_python(python: &std::path::Path, request: &Value) -> Value {
    run_json(python, "interop.py", request)
}

fn verifier(keys: KeySet) -> Verifier {
    Verifier::new(
        keys,
        VerifierConfig::new(ISS, AUD, "production".parse().unwrap()).accept_jwt(true),
    )
    .unwrap()
}

fn implicit_assertion() -> String {
    String::from_utf8(scopekey::danger::paseto::implicit_assertion(
        &"production".parse().unwrap(),
        TokenType::Access,
    ))
    .unwrap()
}

#[test]
fn scopekey_tokens_verify_in_python() {
    let Some(py) = python("scopekey_tokens_verify_in_python") else {
        return;
    };
    let key = SigningKey::generate().unwrap();
    let public = key.public_key().clone();
    let paseto_issuer = Issuer::new(
        SigningKey::from_paserk(&key.to_paserk()).unwrap(),
        ISS,
        "production".parse().unwrap(),
    )
    .unwrap();
    let jwt_issuer = Issuer::new(key, ISS, "production".parse().unwrap())
        .unwrap()
        .with_format(TokenFormat::Jwt);
    // SCOPES include a write: an explicit escalation.
    let request = TokenRequest::new("ci-deploy", AUD, SCOPES.parse().unwrap()).escalate();
    let paseto = paseto_issuer.issue(&request).unwrap();
    let jwt = jwt_issuer.issue(&request).unwrap();
    let answer = run_python(
        &py,
        &json!({
            "mode": "verify",
            "paseto": {
                "token": paseto.token().as_str(),
                "public_paserk": public.to_paserk(),
                "implicit_assertion": implicit_assertion(),
            },
            "jwt": { "token": jwt.token().as_str(), "jwk": public.to_jwk(), "iss": ISS, "aud": AUD },
        }),
    );
    let pc = &answer["paseto_claims"];
    assert_eq!(pc["sub"], "ci-deploy");
    assert_eq!(pc["scope"], SCOPES);
    assert_eq!(pc["env"], "production");
    assert_eq!(pc["jti"], paseto.claims().token_id().as_str());
    assert_eq!(
        answer["paseto_footer"],
        json!({ "kid": public.key_id().as_str() })
    );
    let jc = &answer["jwt_claims"];
    assert_eq!(jc["sub"], "ci-deploy");
    assert_eq!(jc["scope"], SCOPES);
    assert_eq!(jc["jti"], jwt.claims().token_id().as_str());
    assert_eq!(jc["exp"], jwt.claims().expires_at().unix_timestamp());
    assert_eq!(
        answer["jwt_header"],
        json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": public.key_id().as_str() })
    );
}

#[test]
fn python_tokens_verify_in_scopekey_and_lenient_ones_do_not() {
    let Some(py) = python("python_tokens_verify_in_scopekey_and_lenient_ones_do_not") else {
        return;
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let rfc3339 = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let answer = run_python(
        &py,
        &json!({
            "mode": "mint",
            "implicit_assertion": implicit_assertion(),
            "claims": {
                "iss": ISS, "sub": "py-worker", "aud": AUD, "env": "production",
                "exp": now + 600, "nbf": now, "iat": now,
                "jti": "cHl0aG9uLW1pbnRlZC0wMQ", "scope": SCOPES,
            },
            "rfc3339": { "exp": rfc3339(now + 600), "nbf": rfc3339(now), "iat": rfc3339(now) },
        }),
    );
    // The key, both ways: PASERK (with its k4.pid) and a JWKS.
    let from_paserk = PublicKey::from_paserk(answer["public_paserk"].as_str().unwrap()).unwrap();
    assert_eq!(
        from_paserk.key_id().as_str(),
        answer["pid"].as_str().unwrap()
    );
    let from_jwks = KeySet::from_jwks(&answer["jwks"].to_string()).unwrap();
    assert!(from_jwks.get(answer["pid"].as_str().unwrap()).is_some());
    for keys in [KeySet::single(from_paserk), from_jwks] {
        let v = verifier(keys);
        for format in ["paseto", "jwt"] {
            let grant = v
                .verify(answer[format].as_str().unwrap())
                .unwrap_or_else(|e| panic!("{format}: {e}"));
            assert_eq!(grant.subject(), "py-worker");
            assert_eq!(grant.claims().scopes().to_string(), SCOPES);
            assert_eq!(grant.claims().expires_at().unix_timestamp(), now + 600);
        }
        // What the other libraries let through, scopekey keeps refusing.
        for (name, expected) in [
            ("jwt_float_exp", VerifyErrorKind::InvalidClaims),
            ("jwt_duplicate_scope", VerifyErrorKind::InvalidClaims),
            ("jwt_padded_signature", VerifyErrorKind::Malformed),
            ("paseto_duplicate_scope", VerifyErrorKind::InvalidClaims),
        ] {
            let e = v
                .verify(answer["lenient"][name].as_str().unwrap())
                .unwrap_err();
            assert_eq!(e.kind(), expected, "{name}: {e}");
        }
    }
    eprintln!(
        "accepted by the Python libraries, refused by scopekey: {}",
        answer["accepted_there"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_services_jwks_feeds_pyjwkclient() {
    let Some(py) = python("the_example_services_jwks_feeds_pyjwkclient") else {
        return;
    };
    let key = SigningKey::generate().unwrap();
    let revocations = Arc::new(RevocationList::new());
    let v =
        verifier(KeySet::single(key.public_key().clone())).with_revocations(revocations.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = service::app(Arc::new(v), revocations, Vec::new());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let kid = key.key_id().as_str().to_owned();
    let jwt = Issuer::new(key, ISS, "production".parse().unwrap())
        .unwrap()
        .with_format(TokenFormat::Jwt)
        .issue(&TokenRequest::new("gateway", AUD, SCOPES.parse().unwrap()).escalate())
        .unwrap()
        .token()
        .as_str()
        .to_owned();
    let request = json!({
        "mode": "jwks_client",
        "url": format!("{base}/.well-known/jwks.json"),
        "token": jwt,
        "iss": ISS,
        "aud": AUD,
    });
    let answer = tokio::task::spawn_blocking(move || run_python(&py, &request))
        .await
        .unwrap();
    assert_eq!(answer["kid"], kid.as_str());
    assert_eq!(answer["claims"]["sub"], "gateway");
}

/// The Node snippet of `docs/interop.md` (`tests/interop/verify_jwt.js`), with only `node:crypto`.
/// Runs when `SCOPEKEY_TEST_NODE` names a node binary (`.ci/run` sets it when node is
/// installed); Node is not required, so without it the test says it skipped.
#[test]
fn the_node_snippet_verifies_a_scopekey_jwt() {
    let Some(node) = std::env::var("SCOPEKEY_TEST_NODE")
        .ok()
        .filter(|n| !n.is_empty())
    else {
        eprintln!("the_node_snippet_verifies_a_scopekey_jwt: SKIPPED, SCOPEKEY_TEST_NODE not set");
        return;
    };
    let key = SigningKey::generate().unwrap();
    let jwks: Value = serde_json::from_str(
        &KeySet::single(key.public_key().clone()).to_jwks(time::OffsetDateTime::now_utc()),
    )
    .unwrap();
    let issuer = Issuer::new(key, ISS, "production".parse().unwrap())
        .unwrap()
        .with_format(TokenFormat::Jwt);
    let token = issuer
        .issue(&TokenRequest::new("node-worker", AUD, SCOPES.parse().unwrap()).escalate())
        .unwrap();
    let node = PathBuf::from(node);
    let run = |token: &str, env: &str| -> Value {
        let input = json!({ "token": token, "jwks": jwks, "expected": { "iss": ISS, "aud": AUD, "env": env } });
        run_json(&node, "verify_jwt.js", &input)
    };
    let ok = run(token.token().as_str(), "production");
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(ok["claims"]["sub"], "node-worker");
    let wrong_env = run(token.token().as_str(), "staging");
    assert_eq!(wrong_env["error"], "wrong environment");
    let mut tampered = token.token().as_str().to_owned();
    tampered.replace_range(40..41, if &tampered[40..41] == "A" { "B" } else { "A" });
    assert_eq!(run(&tampered, "production")["ok"], false);
}
