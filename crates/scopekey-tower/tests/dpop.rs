//! DPoP through the tower layer with `oneshot`: the scheme, the proof header, the challenges
//! RFC 9449 §7.1 and §9 ask for, and the origin the `htu` is checked against.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use scopekey::audit::{AuditEvent, AuditKind, MemorySink};
use scopekey::dpop::{DpopPolicy, MemoryReplayCache, NonceSource, ProofBuilder};
use scopekey::{
    Grant, Issuer, KeySet, ManualClock, SigningKey, TokenRequest, Verifier, VerifierConfig,
};
use scopekey_tower::{AuthLayer, AuthState, DPOP, DPOP_NONCE, DpopConfig, Realm};
use std::convert::Infallible;
use std::sync::Arc;
use tower::{ServiceExt, service_fn};

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";
const NOW: i64 = 1_900_000_000;
const URL: &str = "https://api.example/projects/42";

struct Fixture {
    issuer: Issuer,
    client: SigningKey,
    state: AuthState,
    audit: Arc<MemorySink>,
}

fn fixture(nonces: bool) -> Fixture {
    let clock = ManualClock::at_unix(NOW);
    let key = SigningKey::generate().unwrap();
    let keys = KeySet::single(key.public_key().clone());
    let mut policy = DpopPolicy::new(Arc::new(MemoryReplayCache::default()));
    if nonces {
        policy = policy.require_nonces(NonceSource::new([9; 32], 300));
    }
    let audit = Arc::new(MemorySink::new());
    let verifier = Verifier::new(
        keys,
        VerifierConfig::new(ISS, AUD, "production".parse().unwrap()).clock(clock.clone()),
    )
    .unwrap()
    .with_audit(audit.clone())
    .with_dpop(policy);
    let issuer = Issuer::new(key, ISS, "production".parse().unwrap())
        .unwrap()
        .with_clock(clock);
    let state = AuthState::new(Arc::new(verifier), Realm::new("api").unwrap())
        .dpop(DpopConfig::new([AUD]).unwrap());
    Fixture {
        issuer,
        client: SigningKey::generate().unwrap(),
        state,
        audit,
    }
}

impl Fixture {
    fn token(&self, bound: bool) -> String {
        let mut request = TokenRequest::new("svc", AUD, "projects:read".parse().unwrap());
        if bound {
            request = request.bind_dpop(ProofBuilder::new(&self.client).jkt());
        }
        self.issuer
            .issue(&request)
            .unwrap()
            .token()
            .as_str()
            .to_owned()
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        auth: &str,
        proofs: &[&str],
    ) -> Response<String> {
        let service = AuthLayer::new(self.state.clone()).layer(service_fn(
            |req: Request<String>| async move {
                let grant = req.extensions().get::<Grant>().expect("grant inserted");
                let sensitive = req.headers().get(DPOP).is_none_or(|v| v.is_sensitive());
                Ok::<_, Infallible>(Response::new(format!("{} {sensitive}", grant.subject())))
            },
        ));
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(AUTHORIZATION, auth);
        for proof in proofs {
            req = req.header(DPOP, *proof);
        }
        service
            .oneshot(req.body(String::new()).unwrap())
            .await
            .unwrap()
    }

    fn last_reason(&self) -> String {
        let events: Vec<AuditEvent> = self.audit.events();
        match &events.last().unwrap().kind {
            AuditKind::Refused { reason } => (*reason).to_owned(),
            other => format!("{other:?}"),
        }
    }
}

fn challenge(r: &Response<String>) -> &str {
    r.headers()[WWW_AUTHENTICATE].to_str().unwrap()
}

use tower::Layer as _;

#[tokio::test]
async fn a_bound_token_is_accepted_with_its_proof_and_refused_otherwise() {
    let f = fixture(false);
    let token = f.token(true);
    let b = ProofBuilder::new(&f.client);
    let proof = b.proof_at("GET", URL, Some(&token), None, NOW, "ok");
    let ok = f
        .call(
            "GET",
            "/projects/42?x=1",
            &format!("DPoP {token}"),
            &[&proof],
        )
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.body(), "svc true");

    let cases: [(String, &str, Vec<String>, &str, &str); 8] = [
        (
            format!("Bearer {token}"),
            "GET",
            vec![],
            "invalid_token",
            "dpop_proof_missing",
        ),
        (
            format!("DPoP {token}"),
            "GET",
            vec![],
            "invalid_token",
            "dpop_proof_missing",
        ),
        (
            format!("DPoP {token}"),
            "GET",
            vec![proof.clone()],
            "invalid_dpop_proof",
            "dpop_proof_replayed",
        ),
        (
            format!("DPoP {token}"),
            "POST",
            vec![b.proof_at("GET", URL, Some(&token), None, NOW, "m")],
            "invalid_dpop_proof",
            "dpop_request_mismatch",
        ),
        (
            format!("DPoP {token}"),
            "GET",
            vec![b.proof_at("GET", URL, Some(&token), None, NOW - 600, "s")],
            "invalid_dpop_proof",
            "dpop_proof_stale",
        ),
        (
            format!("DPoP {token}"),
            "GET",
            vec![b.proof_at("GET", URL, Some("other"), None, NOW, "a")],
            "invalid_dpop_proof",
            "dpop_token_mismatch",
        ),
        (
            format!("DPoP {token}"),
            "GET",
            vec![
                ProofBuilder::new(&SigningKey::generate().unwrap()).proof_at(
                    "GET",
                    URL,
                    Some(&token),
                    None,
                    NOW,
                    "k",
                ),
            ],
            "invalid_dpop_proof",
            "dpop_key_mismatch",
        ),
        (
            format!("DPoP {}", f.token(false)),
            "GET",
            vec![b.proof_at("GET", URL, None, None, NOW, "u")],
            "invalid_token",
            "dpop_not_bound",
        ),
    ];
    for (auth, method, proofs, error, reason) in cases {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let r = f.call(method, "/projects/42", &auth, &proofs).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{reason}");
        let c = challenge(&r);
        assert!(
            c.starts_with("DPoP realm=\"api\", algs=\"EdDSA Ed25519 ES256\""),
            "{c}"
        );
        assert!(c.contains(&format!("error=\"{error}\"")), "{c}");
        assert_eq!(f.last_reason(), reason);
    }

    // Two proof headers are refused before any is read.
    let p1 = b.proof_at("GET", URL, Some(&token), None, NOW, "two-1");
    let p2 = b.proof_at("GET", URL, Some(&token), None, NOW, "two-2");
    let r = f
        .call("GET", "/projects/42", &format!("DPoP {token}"), &[&p1, &p2])
        .await;
    assert!(challenge(&r).contains("invalid_dpop_proof"));
    // An unbound token keeps the Bearer path.
    let r = f
        .call(
            "GET",
            "/projects/42",
            &format!("Bearer {}", f.token(false)),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_required_nonce_is_handed_out_and_then_accepted() {
    let f = fixture(true);
    let token = f.token(true);
    let b = ProofBuilder::new(&f.client);
    let first = b.proof_at("GET", URL, Some(&token), None, NOW, "1");
    let r = f
        .call("GET", "/projects/42", &format!("DPoP {token}"), &[&first])
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&r).contains("error=\"use_dpop_nonce\""));
    let nonce = r.headers()[DPOP_NONCE].to_str().unwrap().to_owned();
    let second = b.proof_at("GET", URL, Some(&token), Some(&nonce), NOW, "2");
    let r = f
        .call("GET", "/projects/42", &format!("DPoP {token}"), &[&second])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[test]
fn origins_are_checked() {
    assert!(DpopConfig::new(["https://api.example", "http://localhost:8080"]).is_ok());
    for bad in [
        "api.example",
        "https://api.example/",
        "https://api.example/v1",
        "ftp://x",
        "https://u@x",
    ] {
        assert!(DpopConfig::new([bad]).is_err(), "{bad}");
    }
    assert!(DpopConfig::new(Vec::<String>::new()).is_err());
}
