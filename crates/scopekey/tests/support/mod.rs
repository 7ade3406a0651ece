//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

/// The external vectors folder, `../shared/vectors` beside the checkout.
///
/// Absent: the calling test prints that it skipped and why, unless `CI=true`, where a missing
/// folder is a failure.
pub(crate) fn vectors_dir(test: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{test}: {} is missing and CI=true: vector tests must run in CI",
            dir.display()
        );
    }
    eprintln!(
        "{test}: SKIPPED, no test vectors at {} (place the shared/ folder beside the checkout)",
        dir.display()
    );
    None
}

/// Reads one vectors file as JSON.
pub(crate) fn load(dir: &std::path::Path, name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Decodes lowercase or uppercase hex.
pub(crate) fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
