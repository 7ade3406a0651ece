//! The layers of docs/architecture.md hold: arrows only downward, in the core and in the store;
//! the CLI's `lib.rs` is a short wiring file; no source file grows past about 800 lines without
//! saying why at its top.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    assert!(!out.is_empty(), "no sources under {}", dir.display());
    out
}

/// The `crate::…` paths a file uses in code (comments and doc comments are not imports).
fn crate_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
            rest = after;
        }
    }
    out
}

/// No file under `layer` (relative to `src`) uses any of `forbidden` through `crate::`.
fn assert_never_imports(src: &Path, layer: &str, forbidden: &[&str]) -> usize {
    let files = sources(&src.join(layer));
    for (path, text) in &files {
        for used in crate_paths(text) {
            assert!(
                !forbidden.contains(&used.as_str()),
                "{} uses crate::{used}: `{layer}` may not import {forbidden:?} (docs/architecture.md)",
                path.display()
            );
        }
    }
    files.len()
}

#[test]
fn the_core_layers_import_only_downward() {
    let src = workspace().join("crates/scopekey/src");
    let facades = [
        "audit",
        "revocation",
        "inventory",
        "refresh",
        "consumer",
        "danger",
        "usage",
    ];
    let above_token: Vec<&str> = ["lifecycle"].iter().chain(&facades).copied().collect();
    assert!(assert_never_imports(&src, "token", &above_token) >= 10);
    assert!(assert_never_imports(&src, "lifecycle", &facades) >= 5);
    let above_key: Vec<&str> = ["scope", "token", "lifecycle"]
        .iter()
        .chain(&facades)
        .copied()
        .collect();
    assert!(assert_never_imports(&src, "key", &above_key) >= 3);
    let above_scope: Vec<&str> = ["token", "key", "lifecycle"]
        .iter()
        .chain(&facades)
        .copied()
        .collect();
    assert!(assert_never_imports(&src, "scope", &above_scope) >= 5);
    let above_codec: Vec<&str> = ["scope", "token", "key", "lifecycle", "clock"]
        .iter()
        .chain(&facades)
        .copied()
        .collect();
    assert!(assert_never_imports(&src, "codec", &above_codec) >= 4);
}

/// The check itself finds an upward import (so the test above cannot pass vacuously).
#[test]
fn the_layer_check_sees_an_upward_import() {
    let text = "use crate::lifecycle::refresh::Refresher;\n// crate::audit in a comment\n";
    assert_eq!(crate_paths(text), ["lifecycle"]);
}

#[test]
fn the_store_layers_import_only_downward() {
    let src = workspace().join("crates/scopekey-store/src");
    assert!(assert_never_imports(&src, "db", &["store", "tables", "replica", "sinks"]) >= 3);
    assert!(assert_never_imports(&src, "tables", &["replica", "sinks"]) >= 6);
}

#[test]
fn the_cli_wires_commands_that_live_in_their_own_files() {
    let cli = workspace().join("crates/scopekey-cli/src");
    let lib = std::fs::read_to_string(cli.join("lib.rs")).unwrap();
    assert!(
        lib.lines().count() <= 200,
        "crates/scopekey-cli/src/lib.rs grew past 200 lines"
    );
    let commands = sources(&cli.join("commands"));
    assert!(commands.len() >= 12, "{} command files", commands.len());
}

#[test]
fn no_source_file_is_much_over_eight_hundred_lines() {
    for krate in [
        "scopekey",
        "scopekey-tower",
        "scopekey-axum",
        "scopekey-store",
        "scopekey-cli",
        "scopekey-server",
        "scopekey-jwks",
    ] {
        for (path, text) in sources(&workspace().join("crates").join(krate).join("src")) {
            let lines = text.lines().count();
            let says_why = text.lines().take(5).any(|l| l.contains("one cohesive"));
            assert!(
                lines <= 850 || says_why,
                "{} has {lines} lines: split it, or say at its top why it is one cohesive thing",
                path.display()
            );
        }
    }
}
