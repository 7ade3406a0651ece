//! The JWT path and the JWKS importer on arbitrary input: never panics, never accepts a token,
//! and what `from_jwks` imports is only public Ed25519 keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopekey::{KeySet, SigningKey, Verifier, VerifierConfig};
use std::sync::OnceLock;

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| {
        let key = SigningKey::from_seed(&[42; 32]).expect("fixed seed");
        Verifier::new(
            KeySet::single(key.public_key().clone()),
            VerifierConfig::new("iss", "aud", "production".parse().expect("valid env"))
                // JWT acceptance is opt-in per verifier: on, so the JWT path is fuzzed.
                .accept_jwt(true),
        )
        .expect("valid config")
    })
}

/// base64url of `{"alg":"EdDSA","typ":"at+jwt","kid":"k4.pid.x"}`: gets the input past the
/// header checks into key lookup, or (with its own header) into the header parser.
const HEADER: &str = "eyJhbGciOiJFZERTQSIsInR5cCI6ImF0K2p3dCIsImtpZCI6Ims0LnBpZC54In0";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let after_header = format!("{HEADER}.{text}");
    for input in [text.as_ref(), after_header.as_str()] {
        assert!(verifier().verify(input).is_err(), "a random input verified");
        let _ = scopekey::danger::decode_unverified(input);
    }
    if let Ok(keys) = KeySet::from_jwks(&text) {
        assert!(!keys.is_empty());
    }
});
