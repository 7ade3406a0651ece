#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::codec::b64;
use crate::usage::MemoryUsageCounter;
use crate::{
    Issuer, KeySet, ManualClock, Presentation, SigningKey, TokenRequest, Verifier, VerifierConfig,
    VerifyErrorKind,
};
use std::sync::Arc;

const NOW: i64 = 1_700_000_000;
const URL: &str = "https://api.example/projects/42";

struct Fixture {
    issuer: Issuer,
    verifier: Verifier,
    client: SigningKey,
    replay: Arc<MemoryReplayCache>,
}

fn fixture(policy: impl FnOnce(DpopPolicy) -> DpopPolicy) -> Fixture {
    let key = SigningKey::generate().unwrap();
    let clock = ManualClock::at_unix(NOW);
    let keys = KeySet::single(key.public_key().clone());
    let issuer = Issuer::new(key, "https://auth.example", "production".parse().unwrap())
        .unwrap()
        .with_clock(clock.clone());
    let replay = Arc::new(MemoryReplayCache::new(16));
    let verifier = Verifier::new(
        keys,
        VerifierConfig::new(
            "https://auth.example",
            "https://api.example",
            "production".parse().unwrap(),
        )
        .clock(clock),
    )
    .unwrap()
    .with_usage_counter(Arc::new(MemoryUsageCounter::new()))
    .with_dpop(policy(DpopPolicy::new(replay.clone())));
    Fixture {
        issuer,
        verifier,
        client: SigningKey::generate().unwrap(),
        replay,
    }
}

impl Fixture {
    fn token(&self, request: TokenRequest) -> String {
        let minted = self.issuer.issue(&request).unwrap();
        minted.token().as_str().to_owned()
    }

    fn bound(&self) -> String {
        let jkt = ProofBuilder::new(&self.client).jkt();
        self.token(
            TokenRequest::new(
                "ci",
                "https://api.example",
                "projects:read".parse().unwrap(),
            )
            .bind_dpop(jkt),
        )
    }

    fn present(
        &self,
        token: &str,
        proof: Option<&str>,
        method: &str,
        url: &str,
    ) -> Result<crate::Grant, crate::VerifyError> {
        self.verifier.verify_presented(
            token,
            None,
            Presentation::new().dpop(DpopRequest::new(proof, method, url)),
        )
    }
}

fn kind(r: Result<crate::Grant, crate::VerifyError>) -> VerifyErrorKind {
    match r {
        Ok(_) => panic!("accepted"),
        Err(e) => e.kind(),
    }
}

#[test]
fn a_bound_token_needs_a_fresh_proof_of_its_key_for_this_request() {
    let f = fixture(|p| p);
    let token = f.bound();
    let b = ProofBuilder::new(&f.client);
    let proof = b.proof_at("GET", URL, Some(&token), None, NOW, "one");
    f.present(&token, Some(&proof), "GET", URL).unwrap();
    // Normalised htu: case of scheme and host, default port, a query on the request.
    let proof = b.proof_at(
        "GET",
        "HTTPS://API.example:443/projects/42",
        Some(&token),
        None,
        NOW,
        "two",
    );
    f.present(
        &token,
        Some(&proof),
        "GET",
        "https://api.example/projects/42?page=2",
    )
    .unwrap();

    assert_eq!(
        kind(f.verifier.verify(&token)),
        VerifyErrorKind::DpopProofMissing
    );
    assert_eq!(
        kind(f.present(&token, None, "GET", URL)),
        VerifyErrorKind::DpopProofMissing
    );
    let replayed = b.proof_at("GET", URL, Some(&token), None, NOW, "one");
    assert_eq!(
        kind(f.present(&token, Some(&replayed), "GET", URL)),
        VerifyErrorKind::DpopProofReplayed
    );
    let cases = [
        (
            b.proof_at("POST", URL, Some(&token), None, NOW, "m"),
            VerifyErrorKind::DpopRequestMismatch,
        ),
        (
            b.proof_at(
                "GET",
                "https://api.example/projects/43",
                Some(&token),
                None,
                NOW,
                "u",
            ),
            VerifyErrorKind::DpopRequestMismatch,
        ),
        (
            b.proof_at(
                "GET",
                "https://other.example/projects/42",
                Some(&token),
                None,
                NOW,
                "o",
            ),
            VerifyErrorKind::DpopRequestMismatch,
        ),
        (
            b.proof_at("GET", URL, Some(&token), None, NOW - 61, "old"),
            VerifyErrorKind::DpopProofStale,
        ),
        (
            b.proof_at("GET", URL, Some(&token), None, NOW + 6, "ahead"),
            VerifyErrorKind::DpopProofStale,
        ),
        (
            b.proof_at("GET", URL, Some("another token"), None, NOW, "a"),
            VerifyErrorKind::DpopTokenMismatch,
        ),
        (
            b.proof_at("GET", URL, None, None, NOW, "no-ath"),
            VerifyErrorKind::DpopProofInvalid,
        ),
        (
            ProofBuilder::new(&SigningKey::generate().unwrap()).proof_at(
                "GET",
                URL,
                Some(&token),
                None,
                NOW,
                "k",
            ),
            VerifyErrorKind::DpopKeyMismatch,
        ),
    ];
    for (proof, expected) in cases {
        assert_eq!(
            kind(f.present(&token, Some(&proof), "GET", URL)),
            expected,
            "{proof}"
        );
    }
    // The window's edges are accepted.
    let edge = b.proof_at("GET", URL, Some(&token), None, NOW - 60, "edge");
    f.present(&token, Some(&edge), "GET", URL).unwrap();
}

#[test]
fn an_unbound_token_with_the_dpop_scheme_is_refused_and_as_bearer_accepted() {
    let f = fixture(|p| p);
    let token = f.token(TokenRequest::new(
        "ci",
        "https://api.example",
        "projects:read".parse().unwrap(),
    ));
    let proof = ProofBuilder::new(&f.client).proof_at("GET", URL, Some(&token), None, NOW, "x");
    assert_eq!(
        kind(f.present(&token, Some(&proof), "GET", URL)),
        VerifyErrorKind::DpopNotBound
    );
    f.verifier.verify(&token).unwrap();
    assert!(f.replay.is_empty());
}

#[test]
fn a_refused_proof_uses_nothing_of_a_use_limited_token() {
    let f = fixture(|p| p);
    let jkt = ProofBuilder::new(&f.client).jkt();
    let token = f.token(
        TokenRequest::new(
            "ci",
            "https://api.example",
            "projects:read".parse().unwrap(),
        )
        .bind_dpop(jkt)
        .single_use(),
    );
    let b = ProofBuilder::new(&f.client);
    for i in 0..3 {
        let wrong = b.proof_at("PUT", URL, Some(&token), None, NOW, &format!("w{i}"));
        assert_eq!(
            kind(f.present(&token, Some(&wrong), "GET", URL)),
            VerifyErrorKind::DpopRequestMismatch
        );
    }
    let proof = b.proof_at("GET", URL, Some(&token), None, NOW, "ok");
    f.present(&token, Some(&proof), "GET", URL).unwrap();
    let again = b.proof_at("GET", URL, Some(&token), None, NOW, "ok2");
    assert_eq!(
        kind(f.present(&token, Some(&again), "GET", URL)),
        VerifyErrorKind::UsesExhausted
    );
}

#[test]
fn nonces_are_required_when_configured() {
    let f = fixture(|p| p.require_nonces(NonceSource::new([3; 32], 60)));
    let token = f.bound();
    let b = ProofBuilder::new(&f.client);
    let none = b.proof_at("GET", URL, Some(&token), None, NOW, "n1");
    assert_eq!(
        kind(f.present(&token, Some(&none), "GET", URL)),
        VerifyErrorKind::DpopNonceRequired
    );
    let wrong = b.proof_at("GET", URL, Some(&token), Some("made-up"), NOW, "n2");
    assert_eq!(
        kind(f.present(&token, Some(&wrong), "GET", URL)),
        VerifyErrorKind::DpopNonceRequired
    );
    let nonce = f.verifier.dpop_policy().unwrap().nonce(NOW).unwrap();
    let good = b.proof_at("GET", URL, Some(&token), Some(&nonce), NOW, "n3");
    f.present(&token, Some(&good), "GET", URL).unwrap();
}

#[test]
fn a_full_replay_cache_refuses_new_proofs() {
    let f = fixture(|p| p);
    let token = f.bound();
    let b = ProofBuilder::new(&f.client);
    for i in 0..16 {
        let proof = b.proof_at("GET", URL, Some(&token), None, NOW, &format!("j{i}"));
        f.present(&token, Some(&proof), "GET", URL).unwrap();
    }
    let proof = b.proof_at("GET", URL, Some(&token), None, NOW, "one too many");
    assert_eq!(
        kind(f.present(&token, Some(&proof), "GET", URL)),
        VerifyErrorKind::DpopUnavailable
    );
}

#[test]
fn a_bound_token_without_a_policy_is_refused() {
    let f = fixture(|p| p);
    let token = f.bound();
    let verifier = Verifier::new(
        f.verifier.keys().as_ref().clone(),
        VerifierConfig::new(
            "https://auth.example",
            "https://api.example",
            "production".parse().unwrap(),
        )
        .clock(ManualClock::at_unix(NOW)),
    )
    .unwrap();
    let proof = ProofBuilder::new(&f.client).proof_at("GET", URL, Some(&token), None, NOW, "p");
    let r = verifier.verify_presented(
        &token,
        None,
        Presentation::new().dpop(DpopRequest::new(Some(&proof), "GET", URL)),
    );
    assert_eq!(kind(r), VerifyErrorKind::DpopUnavailable);
}

/// An ES256 proof signed with the RustCrypto signer, and the refusals of malformed ones.
#[test]
fn es256_proofs_verify_and_malformed_proofs_are_refused() {
    use p256::ecdsa::signature::Signer as _;
    let f = fixture(|p| p);
    let ec = p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap();
    let point = ec.verifying_key().to_encoded_point(false);
    let jwk = serde_json::json!({"kty": "EC", "crv": "P-256",
        "x": b64::encode(point.x().unwrap()), "y": b64::encode(point.y().unwrap())});
    let jkt = Jkt::of_jwk(jwk.as_object().unwrap()).unwrap();
    let token = f.token(
        TokenRequest::new(
            "ci",
            "https://api.example",
            "projects:read".parse().unwrap(),
        )
        .bind_dpop(jkt),
    );
    let sign = |header: serde_json::Value, claims: serde_json::Value| {
        let input = format!(
            "{}.{}",
            b64::encode(header.to_string().as_bytes()),
            b64::encode(claims.to_string().as_bytes())
        );
        let sig: p256::ecdsa::Signature = ec.sign(input.as_bytes());
        format!("{input}.{}", b64::encode(&sig.to_bytes()))
    };
    let claims = |jti: &str| {
        serde_json::json!({"jti": jti, "htm": "GET", "htu": URL, "iat": NOW,
            "ath": access_token_hash(&token)})
    };
    let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
    f.present(
        &token,
        Some(&sign(header.clone(), claims("es"))),
        "GET",
        URL,
    )
    .unwrap();

    let mut private = jwk.clone();
    private["d"] = b64::encode(&[0x42; 32]).into();
    let invalid = [
        sign(
            serde_json::json!({"typ": "jwt", "alg": "ES256", "jwk": jwk}),
            claims("t"),
        ),
        sign(
            serde_json::json!({"typ": "dpop+jwt", "alg": "none", "jwk": jwk}),
            claims("n"),
        ),
        sign(
            serde_json::json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk}),
            claims("h"),
        ),
        sign(
            serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk}),
            claims("e"),
        ),
        sign(
            serde_json::json!({"typ": "dpop+jwt", "alg": "ES256"}),
            claims("j"),
        ),
        sign(
            serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private}),
            claims("d"),
        ),
        sign(
            header.clone(),
            serde_json::json!({"htm": "GET", "htu": URL, "iat": NOW}),
        ),
        format!("{}x", sign(header.clone(), claims("s"))),
        "a.b".to_owned(),
        "a.b.c.d".to_owned(),
        "x".repeat(MAX_PROOF_LEN + 1),
    ];
    for proof in invalid {
        assert_eq!(
            kind(f.present(&token, Some(&proof), "GET", URL)),
            VerifyErrorKind::DpopProofInvalid,
            "{}",
            proof.chars().take(200).collect::<String>()
        );
    }
}

#[test]
fn cnf_claims_are_parsed_strictly() {
    let of = |json: &str| jkt_of(&serde_json::from_str(json).unwrap());
    assert_eq!(of("{}"), Ok(None));
    let jkt = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
    assert_eq!(
        of(&format!(r#"{{"cnf":{{"jkt":"{jkt}"}}}}"#)),
        Ok(Some(jkt.parse().unwrap()))
    );
    for bad in [
        r#"{"cnf":"x"}"#.to_owned(),
        r#"{"cnf":{}}"#.to_owned(),
        r#"{"cnf":{"jkt":"short"}}"#.to_owned(),
        format!(r#"{{"cnf":{{"jkt":"{jkt}","x5t#S256":"a"}}}}"#),
        r#"{"cnf":{"jwk":{}}}"#.to_owned(),
    ] {
        assert!(of(&bad).is_err(), "{bad}");
    }
}

#[test]
fn htu_normalisation() {
    let n = |s: &str| proof::normalize_htu(s);
    assert_eq!(
        n("HTTPS://Api.Example:443/a/./b/../c?q=1#f").as_deref(),
        Some("https://api.example/a/c")
    );
    assert_eq!(
        n("http://api.example:80").as_deref(),
        Some("http://api.example/")
    );
    assert_eq!(
        n("https://api.example:8443/x").as_deref(),
        Some("https://api.example:8443/x")
    );
    for bad in [
        "/relative",
        "ftp://api.example/",
        "https://user@api.example/",
        "not a url",
    ] {
        assert_eq!(n(bad), None, "{bad}");
    }
}
