//! The token decoder and verifier on arbitrary input: must never panic, and must never accept.
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

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Also exercise the path past the header with every input.
    let prefixed = format!("v4.public.{text}");
    for input in [text.as_ref(), prefixed.as_str()] {
        assert!(verifier().verify(input).is_err(), "a random input verified");
    }
});
