//! Claims chosen by the fuzzer behind a valid signature: the claims readers (the flat one for
//! plain strings and the general strict parser), the typing of every claim and the scope grammar
//! run on every input, which `token_decoder` cannot reach (its inputs never carry a valid
//! signature). Must never panic; what verifies must say what the verifier requires.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopekey::{KeySet, ManualClock, SigningKey, TokenType, Verifier, VerifierConfig};
use std::sync::OnceLock;

struct Setup {
    key: SigningKey,
    footer: Vec<u8>,
    assertion: Vec<u8>,
    verifier: Verifier,
}

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let key = SigningKey::from_seed(&[42; 32]).expect("fixed seed");
        let env = "production".parse().expect("valid env");
        let verifier = Verifier::new(
            KeySet::single(key.public_key().clone()),
            VerifierConfig::new("iss", "aud", "production".parse().expect("valid env"))
                // A fixed instant, so claims around it can verify: 2026-11-23T00:00:00Z.
                .clock(ManualClock::at_unix(1_795_392_000)),
        )
        .expect("valid config");
        Setup {
            footer: format!("{{\"kid\":\"{}\"}}", key.key_id().as_str()).into_bytes(),
            assertion: scopekey::danger::paseto::implicit_assertion(&env, TokenType::Access),
            key,
            verifier,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let s = setup();
    let token = scopekey::danger::paseto::sign(&s.key, data, &s.footer, &s.assertion);
    if let Ok(grant) = s.verifier.verify(&token) {
        let claims = grant.claims();
        assert_eq!(claims.issuer(), "iss");
        assert_eq!(claims.audience(), "aud");
        assert_eq!(claims.environment().as_str(), "production");
        assert!(!claims.scopes().is_empty());
        // The scope set reads back as itself.
        let again: scopekey::ScopeSet = claims.scopes().to_string().parse().expect("canonical");
        assert_eq!(&again, claims.scopes());
    }
});
