//! Scope parsers on arbitrary input: must never panic; what parses must print back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopekey::{Action, Resource, Scope, ScopeSet};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(set) = text.parse::<ScopeSet>() {
        let again: ScopeSet = set.to_string().parse().expect("canonical form parses");
        assert_eq!(again, set);
    }
    if let Ok(scope) = text.parse::<Scope>() {
        assert_eq!(scope.to_string(), text);
    }
    let _ = text.parse::<Resource>();
    let _ = text.parse::<Action>();
    if let Ok(r) = Resource::from_segments(text.split(' ')) {
        assert!(!r.has_wildcard());
    }
});
