//! docs/server.md, run as written: its "Start it" commands (but the last, which serves in the
//! foreground, and which the worked example starts in the background itself), then the worked
//! example, with the `scopekey` binary and the example service this build made on the `PATH`.
//! `cargo run -q --example axum_service --` is the one command a shim stands in for (the test
//! does not start a second cargo inside itself): it runs the example binary already built.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `sh` blocks of `section` (up to the next `## ` heading), in order.
fn blocks(doc: &str, section: &str) -> Vec<String> {
    let body = doc.split(section).nth(1).unwrap();
    let body = body.split("\n## ").next().unwrap();
    body.split("```sh\n")
        .skip(1)
        .map(|b| b.split("\n```").next().unwrap().to_owned())
        .collect()
}

/// target/debug, from this test's own path (target/debug/deps/…).
fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

fn shim_dir(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let example = build_dir().join("examples/axum_service");
    assert!(example.exists(), "not built: {}", example.display());
    let shim = bin.join("cargo");
    std::fs::write(
        &shim,
        format!(
            "#!/usr/bin/env bash\n[ \"$1 $2 $3 $4 $5\" = \"run -q --example axum_service --\" ] || {{ echo \"shim: unexpected cargo $*\" >&2; exit 2; }}\nshift 5\nexec {} \"$@\"\n",
            example.display()
        ),
    )
    .unwrap();
    let status = Command::new("chmod").arg("+x").arg(&shim).status().unwrap();
    assert!(status.success());
    bin
}

#[test]
fn the_server_guide_runs_as_written() {
    let doc = include_str!("../docs/server.md");
    let start = blocks(doc, "## Start it").remove(0);
    let start: Vec<&str> = start
        .split("\nscopekey serve")
        .next()
        .unwrap()
        .lines()
        .collect();
    let example = blocks(doc, "## A worked example").remove(0);
    let expected = doc
        .split("It prints:\n\n```text\n")
        .nth(1)
        .and_then(|s| s.split("\n```").next())
        .unwrap();
    // The scopekey binary and the example: `cargo test --workspace` (the README's test
    // command) has built both; a narrower run builds them here.
    let debug = build_dir();
    if !debug.join("scopekey").exists() || !debug.join("examples/axum_service").exists() {
        let built = Command::new(env!("CARGO"))
            .args([
                "build",
                "-q",
                "--locked",
                "--all-features",
                "-p",
                "scopekey-cli",
                "-p",
                "scopekey-workspace",
                "--bin",
                "scopekey",
                "--example",
                "axum_service",
            ])
            .status()
            .unwrap();
        assert!(built.success());
    }
    let dir = std::env::temp_dir().join(format!("scopekey-server-docs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = format!(
        "{}:{}:{}",
        shim_dir(&dir).display(),
        build_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = format!("set -e\n{}\nset +e\n{example}", start.join("\n"));
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&dir)
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for line in expected.lines() {
        assert!(
            stdout.lines().any(|l| l == line),
            "docs/server.md promises {line:?}; got:\n{stdout}\n{stderr}"
        );
    }
    // The admin API block, on a fresh store of its own.
    let admin = blocks(doc, "## The admin API").remove(0);
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -e\n{admin}"))
        .current_dir(&dir)
        .env(
            "PATH",
            format!(
                "{}:{}",
                build_dir().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(r#""name":"ci""#), "{stdout}");
    assert!(
        stdout.contains(r#""client_id":"ci","client_secret":"…""#),
        "{stdout}"
    );
    assert!(
        stdout.contains("actions: consumers.create, consumers.credentials"),
        "{stdout}\n{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
