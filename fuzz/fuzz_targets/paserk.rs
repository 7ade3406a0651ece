//! PASERK and key id parsers on arbitrary input: must never panic; what parses must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopekey::danger::paserk;
use scopekey::{KeyId, PublicKey, SigningKey};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for input in [
        text.to_string(),
        format!("k4.public.{text}"),
        format!("k4.secret.{text}"),
        format!("k4.pid.{text}"),
    ] {
        if let Ok(pk) = PublicKey::from_paserk(&input) {
            assert_eq!(pk.to_paserk(), input.trim_end());
        }
        if let Ok(sk) = SigningKey::from_paserk(&input) {
            assert_eq!(sk.to_paserk().as_str(), input.trim_end());
        }
        if let Ok(id) = input.parse::<KeyId>() {
            assert_eq!(id.as_str(), input);
        }
        let _ = paserk::decode_public(&input);
        let _ = paserk::decode_secret(&input);
    }
});
