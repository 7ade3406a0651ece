//! The built `scopekey` binary, run as an operator would run it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assert_cmd::Command;
use std::path::{Path, PathBuf};

struct Env {
    dir: PathBuf,
}

impl Env {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("scopekey-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.join(p)
    }

    fn store(&self) -> String {
        format!("sqlite://{}", self.path("state.db").display())
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = Command::cargo_bin("scopekey")
            .unwrap()
            .args(args)
            .output()
            .unwrap();
        Output {
            code: out.status.code().unwrap(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    fn keygen(&self, name: &str) -> (String, String) {
        let out = self.run(&["keygen", "--out", self.path(name).to_str().unwrap()]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        (
            self.path(name).join("secret.paserk").display().to_string(),
            self.path(name).join("public.paserk").display().to_string(),
        )
    }

    fn mint(&self, secret: &str, extra: &[&str]) -> String {
        let mut args = vec![
            "mint",
            "--secret-key",
            secret,
            "--issuer",
            "https://auth.example",
            "--audience",
            "https://api.example",
            "--env",
            "production",
            "--subject",
            "ci-deploy",
            "--scope",
            "projects:read",
        ];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let token = out.stdout.trim().to_owned();
        let jwt = extra.windows(2).any(|w| w == ["--format", "jwt"]);
        assert!(token.starts_with(if jwt { "eyJ" } else { "v4.public." }) && !token.contains('\n'));
        token
    }

    fn verify(&self, public: &str, token: &str, extra: &[&str]) -> Output {
        self.verify_in("production", public, token, extra)
    }

    fn verify_in(&self, env: &str, public: &str, token: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "verify",
            "--public-key",
            public,
            "--issuer",
            "https://auth.example",
            "--audience",
            "https://api.example",
            "--env",
            env,
        ];
        args.extend_from_slice(extra);
        args.push(token);
        self.run(&args)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Debug)]
struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

#[test]
fn keygen_mint_verify_round_trip() {
    let env = Env::new("roundtrip");
    let (secret, public) = env.keygen("keys");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // Refuses to overwrite without --force.
    let again = env.run(&["keygen", "--out", env.path("keys").to_str().unwrap()]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("--force"));

    let token = env.mint(&secret, &["--owner", "team-infra", "--purpose", "deploys"]);
    let out = env.verify(
        &public,
        &token,
        &["--resource", "projects/42", "--action", "read"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let claims: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(claims["verified"], true);
    assert_eq!(claims["sub"], "ci-deploy");
    assert_eq!(claims["owner"], "team-infra");
    assert_eq!(claims["scope"], "projects:read");

    // Denied action: exit 1 with the reason.
    let out = env.verify(
        &public,
        &token,
        &["--resource", "projects/42", "--action", "delete"],
    );
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("denied"), "{}", out.stderr);

    // Inspect never needs a key and says it did not verify.
    let out = env.run(&["inspect", &token]);
    assert_eq!(out.code, 0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["verified"], false);
    assert_eq!(v["claims"]["sub"], "ci-deploy");
    assert!(v["expires"].as_str().unwrap().starts_with("expires in"));
    assert!(v["kid"].as_str().unwrap().starts_with("k4.pid."));
    // From standard input too.
    let out = Command::cargo_bin("scopekey")
        .unwrap()
        .args(["inspect", "-"])
        .write_stdin(token.clone())
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn refusals_exit_1_with_their_reason() {
    let env = Env::new("refusals");
    let (secret, public) = env.keygen("keys");
    let token = env.mint(&secret, &[]);

    let mut tampered = token.clone();
    let i = 20;
    let c = if &token[i..=i] == "A" { "B" } else { "A" };
    tampered.replace_range(i..=i, c);
    let out = env.verify(&public, &tampered, &[]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("bad_signature"), "{}", out.stderr);

    let out = env.run(&[
        "verify",
        "--public-key",
        &public,
        "--issuer",
        "https://auth.example",
        "--audience",
        "https://other.example",
        "--env",
        "production",
        &token,
    ]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("wrong_audience"), "{}", out.stderr);

    // Another environment: the implicit assertion makes the signature fail.
    let out = env.run(&[
        "verify",
        "--public-key",
        &public,
        "--issuer",
        "https://auth.example",
        "--audience",
        "https://api.example",
        "--env",
        "staging",
        &token,
    ]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("bad_signature"), "{}", out.stderr);

    let short = env.mint(&secret, &["--ttl", "1s"]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let out = env.verify(&public, &short, &["--leeway", "0"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("expired"), "{}", out.stderr);

    // Revoked, through the store.
    let store = env.store();
    let revoked = env.mint(&secret, &["--store", &store]);
    let jti = {
        let v: serde_json::Value =
            serde_json::from_str(&env.run(&["inspect", &revoked]).stdout).unwrap();
        v["claims"]["jti"].as_str().unwrap().to_owned()
    };
    assert_eq!(env.verify(&public, &revoked, &["--store", &store]).code, 0);
    let out = env.run(&[
        "revoke",
        "--store",
        &store,
        "--jti",
        &jti,
        "--reason",
        "leaked in a CI log",
        "--by",
        "alice",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&jti) && out.stdout.contains("alice"),
        "{}",
        out.stdout
    );
    let out = env.verify(&public, &revoked, &["--store", &store]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("revoked"), "{}", out.stderr);
    // Other tokens are untouched.
    assert_eq!(env.verify(&public, &token, &["--store", &store]).code, 0);

    // Usage errors exit 2.
    assert_eq!(env.run(&["verify", "--issuer", "x"]).code, 2);
    assert_eq!(
        env.run(&[
            "mint",
            "--secret-key",
            "/nonexistent",
            "--issuer",
            "i",
            "--audience",
            "a",
            "--env",
            "e",
            "--subject",
            "s",
            "--scope",
            "a:read"
        ])
        .code,
        2
    );
    let out = env.run(&[
        "mint",
        "--secret-key",
        &secret,
        "--issuer",
        "i",
        "--audience",
        "a",
        "--env",
        "e",
        "--subject",
        "s",
        "--scope",
        "a:*",
    ]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("--allow-broad"), "{}", out.stderr);
}

/// Every duration and time flag, given a value too large or outside the calendar: exit 2 with
/// a one-line message naming the flag and the accepted form, never a panic (exit 101).
#[test]
fn huge_durations_and_times_exit_2_with_the_accepted_form() {
    let env = Env::new("huge");
    let (secret, public) = env.keygen("k");
    let store = env.store();
    let mint = |ttl: &str| {
        env.run(&[
            "mint",
            "--secret-key",
            &secret,
            "--issuer",
            "i",
            "--audience",
            "a",
            "--env",
            "e",
            "--subject",
            "s",
            "--scope",
            "a:read",
            "--ttl",
            ttl,
        ])
    };
    let kid = "k4.pid.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let cases: Vec<(&str, Output, &str)> = vec![
        (
            "--ttl",
            mint("99999999999999999999d"),
            "whole number followed by s, m, h or d",
        ),
        (
            "--ttl",
            mint("18446744073709551615m"),
            "whole number followed by s, m, h or d",
        ),
        (
            "--ttl",
            mint("15 minutes"),
            "whole number followed by s, m, h or d",
        ),
        (
            "--unused-since",
            env.run(&[
                "tokens",
                "--store",
                &store,
                "--unused-since",
                "99999999999d",
            ]),
            "whole number followed by s, m, h or d",
        ),
        (
            "--unused-since",
            env.run(&[
                "tokens",
                "prune",
                "--store",
                &store,
                "--unused-since",
                "18446744073709551615s",
                "--dry-run",
            ]),
            "whole number followed by s, m, h or d",
        ),
        (
            "--issued-before",
            env.run(&[
                "revoke",
                "--store",
                &store,
                "--issued-before",
                "9999-12-31T23:59:59-23:59",
                "--reason",
                "x",
            ]),
            "RFC 3339 time",
        ),
        (
            "--not-before",
            env.run(&[
                "keys",
                "add",
                "--store",
                &store,
                "--public-key",
                &public,
                "--not-before",
                "soon",
            ]),
            "RFC 3339 time",
        ),
        (
            "--at",
            env.run(&[
                "keys",
                "retire",
                "--store",
                &store,
                "--key-id",
                kid,
                "--at",
                "0000-01-01T00:00:00+23:59",
            ]),
            "RFC 3339 time",
        ),
    ];
    for (flag, out, form) in cases {
        assert_eq!(out.code, 2, "{flag}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        let line = out.stderr.trim();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with(&format!("scopekey: {flag}: ")), "{line}");
        assert!(line.contains(form), "{line}");
    }
}

/// Every command and its flags, from the clap definition: (`keys add`, [`store`, …]).
fn commands() -> Vec<(String, Vec<String>)> {
    fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<(String, Vec<String>)>) {
        let flags: Vec<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|l| !matches!(*l, "help" | "version"))
            .map(str::to_owned)
            .collect();
        if !path.is_empty() {
            out.push((path.to_owned(), flags));
        }
        for sub in cmd.get_subcommands().filter(|c| c.get_name() != "help") {
            let p = format!("{path} {}", sub.get_name());
            walk(sub, p.trim_start(), out);
        }
    }
    let mut out = Vec::new();
    walk(
        &<scopekey_cli::Cli as clap::CommandFactory>::command(),
        "",
        &mut out,
    );
    out
}

/// Whether `text` has `--flag` as a whole word.
fn has_flag(text: &str, flag: &str) -> bool {
    let needle = format!("--{flag}");
    text.match_indices(&needle).any(|(i, _)| {
        !text[i + needle.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
    })
}

/// docs/cli.md has a synopsis of every command listing all its flags, and the README's layout
/// table names every command.
#[test]
fn the_docs_list_every_command_and_flag() {
    let doc = include_str!("../../../docs/cli.md");
    // Synopses: lines of ```text blocks that start with `scopekey `, with their indented
    // continuation lines.
    let mut synopses: Vec<String> = Vec::new();
    let mut in_text = false;
    for line in doc.lines() {
        if line.starts_with("```") {
            in_text = line == "```text";
        } else if !in_text {
        } else if let Some(rest) = line.strip_prefix("scopekey ") {
            synopses.push(format!(" {rest} "));
        } else if line.starts_with(' ')
            && let Some(last) = synopses.last_mut()
        {
            last.push_str(line);
            last.push(' ');
        }
    }
    let readme = include_str!("../../../README.md");
    let layout = readme
        .lines()
        .find(|l| l.starts_with("| `crates/scopekey-cli` |"))
        .unwrap();
    let commands = commands();
    assert!(commands.len() > 15, "{commands:?}");
    for (path, flags) in commands {
        let lines: Vec<&String> = synopses
            .iter()
            .filter(|s| s.starts_with(&format!(" {path} ")))
            .collect();
        assert!(
            !lines.is_empty(),
            "docs/cli.md: no synopsis of `scopekey {path}`"
        );
        for flag in flags {
            assert!(
                lines.iter().any(|l| has_flag(l, &flag)),
                "docs/cli.md: the synopsis of `scopekey {path}` misses --{flag}"
            );
        }
        if !path.contains(' ') {
            assert!(
                layout.contains(&format!(" {path},")) || layout.contains(&format!(" {path} |")),
                "README.md layout: `{path}` missing"
            );
        }
    }
}

#[test]
fn keys_and_inventory_in_the_store() {
    let env = Env::new("keys");
    let (secret, public) = env.keygen("old");
    let (new_secret, new_public) = env.keygen("new");
    let store = env.store();
    assert_eq!(
        env.run(&["keys", "add", "--store", &store, "--public-key", &public])
            .code,
        0
    );
    let token = env.mint(&secret, &["--store", &store, "--owner", "team-a"]);
    // verify --store without --public-key uses the store's key set.
    let store_verify = |t: &str| {
        env.run(&[
            "verify",
            "--store",
            &store,
            "--issuer",
            "https://auth.example",
            "--audience",
            "https://api.example",
            "--env",
            "production",
            t,
        ])
    };
    assert_eq!(store_verify(&token).code, 0);
    let new_token = env.mint(&new_secret, &[]);
    assert!(store_verify(&new_token).stderr.contains("unknown_key"));
    assert_eq!(
        env.run(&[
            "keys",
            "add",
            "--store",
            &store,
            "--public-key",
            &new_public
        ])
        .code,
        0
    );
    let kid = std::fs::read_to_string(&public).unwrap();
    let kid = scopekey::PublicKey::from_paserk(kid.trim())
        .unwrap()
        .key_id()
        .to_string();
    assert_eq!(
        env.run(&["keys", "retire", "--store", &store, "--key-id", &kid])
            .code,
        0
    );
    assert_eq!(store_verify(&new_token).code, 0);
    assert!(store_verify(&token).stderr.contains("unknown_key"));
    let list = env.run(&["keys", "list", "--store", &store]);
    assert_eq!(list.stdout.lines().count(), 2);
    assert!(list.stdout.contains("inactive"));

    let out = env.run(&["tokens", "--store", &store, "--owner", "team-a", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["subject"], "ci-deploy");
    let table = env.run(&["tokens", "--store", &store]);
    assert!(table.stdout.starts_with("JTI"));
    assert!(
        !table.stdout.contains(&token[10..40]),
        "the inventory never shows tokens"
    );
    let unused = env.run(&[
        "tokens",
        "--store",
        &store,
        "--unused-since",
        "30d",
        "--json",
    ]);
    assert_eq!(
        unused.stdout.lines().count(),
        0,
        "just issued: not unused for 30 days"
    );
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn scan_finds_leaks_and_never_prints_a_whole_token() {
    let env = Env::new("scan");
    let (secret, public) = env.keygen("keys");
    let (_, other_public) = env.keygen("other");
    let valid = env.mint(&secret, &[]);
    let short = env.mint(&secret, &["--ttl", "1s"]);
    let mut forged = valid.clone();
    let last = 30; // inside the claims, so the footer (kid) still names a trusted key
    let c = if &forged[last..=last] == "A" {
        "B"
    } else {
        "A"
    };
    forged.replace_range(last..=last, c);

    let tree = env.path("repo");
    write(
        &tree.join(".env"),
        format!("API_URL=https://api\nSCOPEKEY_TOKEN={valid}\n").as_bytes(),
    );
    write(
        &tree.join("logs/ci.log"),
        format!("2030-01-01 step 3\n2030-01-01 curl -H 'Authorization: Bearer {short}' ...\n")
            .as_bytes(),
    );
    write(
        &tree.join("config/settings.json"),
        format!("{{\n  \"a\": 1,\n  \"token\": \"{forged}\"\n}}\n").as_bytes(),
    );
    write(
        &tree.join("dist/app.min.js"),
        format!("var a=1;var t=\"{valid}\";var b=2;").as_bytes(),
    );
    let mut binary = vec![0u8, 1, 2, 3];
    binary.extend_from_slice(valid.as_bytes());
    write(&tree.join("assets/blob.bin"), &binary);
    let mut latin1 = b"caf\xe9 \xff\xfe ".to_vec();
    latin1.extend_from_slice(valid.as_bytes());
    write(&tree.join("notes/latin1.txt"), &latin1);
    write(&tree.join("ignored/secret.txt"), valid.as_bytes());
    write(&tree.join(".gitignore"), b"ignored/\n");

    std::thread::sleep(std::time::Duration::from_millis(1100)); // let `short` expire
    let out = env.run(&[
        "scan",
        "--public-key",
        &public,
        "--json",
        tree.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    for t in [&valid, &short, &forged] {
        assert!(!out.stdout.contains(t.as_str()) && !out.stderr.contains(t.as_str()));
        assert!(!out.stdout.contains(&t[..40]));
    }
    let found: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let at = |suffix: &str| -> &serde_json::Value {
        found
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with(suffix))
            .unwrap_or_else(|| panic!("nothing found in {suffix}: {found:?}"))
    };
    let f = at(".env");
    assert_eq!(
        (f["line"].as_u64(), f["column"].as_u64()),
        (Some(2), Some(16))
    );
    assert_eq!(f["status"], "valid");
    assert_eq!(f["sub"], "ci-deploy");
    assert_eq!(f["token"], format!("{}…", &valid[..12]));
    let f = at("ci.log");
    assert_eq!(
        (f["line"].as_u64(), f["column"].as_u64()),
        (Some(2), Some(43))
    );
    assert_eq!(f["status"], "expired");
    let f = at("settings.json");
    assert_eq!(
        (f["line"].as_u64(), f["column"].as_u64()),
        (Some(3), Some(13))
    );
    assert_eq!(f["status"], "bad-signature");
    let f = at("app.min.js");
    assert_eq!(
        (f["line"].as_u64(), f["column"].as_u64()),
        (Some(1), Some(16))
    );
    assert_eq!(f["status"], "valid");
    let f = at("latin1.txt");
    assert_eq!(f["column"].as_u64(), Some(9)); // 8 bytes, two of them invalid UTF-8, before it
    assert_eq!(
        found.len(),
        5,
        "binary and gitignored files are skipped: {found:?}"
    );

    // With another key: unknown-key; without keys: unverified.
    let out = env.run(&[
        "scan",
        "--public-key",
        &other_public,
        tree.join(".env").to_str().unwrap(),
    ]);
    assert!(out.stdout.contains("status=unknown-key"), "{}", out.stdout);
    let out = env.run(&["scan", tree.join(".env").to_str().unwrap()]);
    assert!(out.stdout.contains("status=unverified"));
    assert!(
        out.stdout
            .starts_with(&format!("{}:2:16:", tree.join(".env").display()))
    );

    // Standard input.
    let out = Command::cargo_bin("scopekey")
        .unwrap()
        .args(["scan", "-"])
        .write_stdin(format!("x {valid}\n"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stdout).unwrap().starts_with("-:1:3:"));
}

#[test]
fn scan_is_clean_on_a_tree_without_tokens_and_handles_big_files() {
    let env = Env::new("scanclean");
    let tree = env.path("clean");
    write(
        &tree.join("README.md"),
        b"v4.public is the format; v4.publicity is not a token\n",
    );
    write(
        &tree.join("src/main.rs"),
        b"fn main() { println!(\"hello\"); }\n",
    );
    // 100 MB of text without tokens, and a NUL-bearing binary file.
    let line = b"2030-01-01T00:00:00Z INFO request served in 3 ms, path=/projects/42 status=200\n";
    let mut big = Vec::with_capacity(100 * 1024 * 1024);
    while big.len() < 100 * 1024 * 1024 {
        big.extend_from_slice(line);
    }
    write(&tree.join("logs/big.log"), &big);
    write(&tree.join("bin/data"), &[0u8; 4096]);
    let out = env.run(&["scan", tree.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.is_empty());

    // A token at the very end of the 100 MB file is still found, with the right line.
    let (secret, _) = env.keygen("keys");
    let token = env.mint(&secret, &[]);
    big.extend_from_slice(token.as_bytes());
    write(&tree.join("logs/big.log"), &big);
    let out = env.run(&["scan", tree.join("logs/big.log").to_str().unwrap()]);
    assert_eq!(out.code, 1);
    let lines = big.iter().filter(|&&b| b == b'\n').count() + 1;
    assert!(
        out.stdout.contains(&format!(":{lines}:1:")),
        "{}",
        out.stdout
    );
}

#[test]
fn consumers_roles_ceilings_disable_and_prune() {
    let env = Env::new("consumers");
    let (secret, public) = env.keygen("keys");
    let store = env.store();
    let ok = |out: Output| {
        assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
        out
    };
    ok(env.run(&["keys", "add", "--store", &store, "--public-key", &public]));
    ok(env.run(&[
        "consumers",
        "add",
        "--store",
        &store,
        "--name",
        "analytics",
        "--owner",
        "team-data",
        "--purpose",
        "dashboards",
        "--env",
        "production",
        "--ceiling",
        "metrics:read",
    ]));
    ok(env.run(&[
        "consumers",
        "add",
        "--store",
        &store,
        "--name",
        "publisher",
        "--owner",
        "team-web",
        "--purpose",
        "blog",
        "--env",
        "production",
        "--ceiling",
        "posts:write posts:read",
    ]));

    // Roles: checked with file and line, imported, expanded at mint time.
    let roles = env.path("roles.toml");
    std::fs::write(
        &roles,
        "[roles]\nreader = \"metrics:read\"\nwriter = \"posts:write posts:read\"\n",
    )
    .unwrap();
    let bad = env.path("bad.toml");
    std::fs::write(
        &bad,
        "[roles]\nreader = \"metrics:read\"\nbroken = \"metrics/:read\"\n",
    )
    .unwrap();
    let out = env.run(&["roles", "check", bad.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(&format!("{}:3", bad.display()))
            && out.stderr.contains("metrics/:read"),
        "{}",
        out.stderr
    );
    ok(env.run(&["roles", "check", roles.to_str().unwrap()]));
    ok(env.run(&[
        "roles",
        "import",
        "--store",
        &store,
        roles.to_str().unwrap(),
    ]));

    let mint = |consumer: &str, extra: &[&str]| {
        let mut args = vec![
            "mint",
            "--secret-key",
            &secret,
            "--issuer",
            "https://auth.example",
            "--audience",
            "https://api.example",
            "--env",
            "production",
            "--consumer",
            consumer,
            "--store",
            &store,
        ];
        args.extend_from_slice(extra);
        env.run(&args)
    };
    // Within the ceiling.
    let analytics = ok(mint("analytics", &["--role", "reader"]))
        .stdout
        .trim()
        .to_owned();
    let publisher = ok(mint("publisher", &["--role", "writer"]))
        .stdout
        .trim()
        .to_owned();
    // Beyond it: exit 1, naming the scope. By role and by scope.
    for extra in [
        &["--role", "writer"][..],
        &["--scope", "metrics:write"][..],
        &["--role", "reader", "--scope", "billing:read"][..],
    ] {
        let out = mint("analytics", extra);
        assert_eq!(out.code, 1, "{extra:?}");
        assert!(out.stderr.contains("beyond its ceiling"), "{}", out.stderr);
    }
    assert!(
        mint("analytics", &["--scope", "billing:read"])
            .stderr
            .contains("billing:read")
    );
    let out = mint("nobody", &["--scope", "metrics:read"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("unknown consumer"));

    // Disable: its tokens are refused at once; the other consumer is unaffected; no new tokens.
    let verify = |t: &str| {
        env.run(&[
            "verify",
            "--store",
            &store,
            "--issuer",
            "https://auth.example",
            "--audience",
            "https://api.example",
            "--env",
            "production",
            t,
        ])
    };
    assert_eq!(verify(&analytics).code, 0);
    ok(env.run(&[
        "consumers",
        "disable",
        "--store",
        &store,
        "analytics",
        "--reason",
        "contract ended",
    ]));
    let out = verify(&analytics);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("revoked"), "{}", out.stderr);
    assert_eq!(verify(&publisher).code, 0);
    let out = mint("analytics", &["--role", "reader"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("disabled"), "{}", out.stderr);
    let list = ok(env.run(&["consumers", "list", "--store", &store])).stdout;
    assert!(list.contains("analytics") && list.contains("disabled"));
    let show = ok(env.run(&["consumers", "show", "--store", &store, "publisher"])).stdout;
    let show: serde_json::Value = serde_json::from_str(&show).unwrap();
    assert_eq!(show["can_touch_now"], "posts:read posts:write");

    // Reports.
    let out = env.run(&["tokens", "--store", &store, "--unregistered"]);
    assert_eq!(
        out.code, 0,
        "every token here was minted for a registered consumer"
    );
    let out = env.run(&["tokens", "--store", &store, "--over-limit", "0"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("publisher: 1 live tokens"),
        "{}",
        out.stdout
    );

    // Prune: one token used recently, one never used.
    let used = ok(mint("publisher", &["--role", "writer"]))
        .stdout
        .trim()
        .to_owned();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let jti_of = |t: &str| {
        let v: serde_json::Value = serde_json::from_str(&env.run(&["inspect", t]).stdout).unwrap();
        v["claims"]["jti"].as_str().unwrap().to_owned()
    };
    let s = scopekey_store::Store::open(&store).unwrap();
    // Stands in for "used recently". Dated a day ahead so that no delay between this and the
    // prune below (a loaded CI machine) can put it before the one-second cut-off.
    let recent = time::OffsetDateTime::now_utc().unix_timestamp() + 86_400;
    s.touch_tokens(vec![(jti_of(&used).parse().unwrap(), recent)])
        .unwrap();
    drop(s);
    let dry = ok(env.run(&[
        "tokens",
        "prune",
        "--store",
        &store,
        "--unused-since",
        "1s",
        "--dry-run",
    ]))
    .stdout;
    assert!(dry.contains(&jti_of(&publisher)), "{dry}");
    assert!(!dry.contains(&jti_of(&used)), "{dry}");
    assert!(dry.contains("1 token(s) would be revoked"), "{dry}");
    assert!(
        !dry.contains(&jti_of(&analytics)),
        "already revoked: not listed: {dry}"
    );
    assert_eq!(verify(&publisher).code, 0, "the dry run revoked nothing");
    let real = ok(env.run(&["tokens", "prune", "--store", &store, "--unused-since", "1s"])).stdout;
    assert!(
        real.contains(&jti_of(&publisher)) && real.contains("1 token(s) revoked"),
        "{real}"
    );
    assert_eq!(verify(&publisher).code, 1);
    assert_eq!(verify(&used).code, 0);
}

#[test]
fn jwt_tokens_mint_verify_inspect_scan_and_jwks() {
    let env = Env::new("jwt");
    let (secret, public) = env.keygen("keys");
    let jwt = env.mint(&secret, &["--format", "jwt"]);
    assert_eq!(jwt.matches('.').count(), 2, "{jwt}");

    // verify takes a JWT only when told to; inspect recognises the format without being told.
    let out = env.verify(
        &public,
        &jwt,
        &["--resource", "projects/1", "--action", "read"],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("unsupported_format") && out.stderr.contains("accept_jwt"),
        "{}",
        out.stderr
    );
    let out = env.verify(
        &public,
        &jwt,
        &[
            "--accept-jwt",
            "--resource",
            "projects/1",
            "--action",
            "read",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let claims: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(claims["sub"], "ci-deploy");
    let out = env.run(&["inspect", &jwt]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let shown: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(shown["format"], "jwt");
    assert_eq!(shown["header"]["alg"], "EdDSA");
    assert_eq!(shown["header"]["typ"], "at+jwt");
    assert!(shown["claims"]["exp"].is_i64());
    assert!(
        shown["expires"]
            .as_str()
            .unwrap()
            .starts_with("expires in "),
        "{shown}"
    );
    // Another environment: refused.
    let out = env.verify_in("staging", &public, &jwt, &["--accept-jwt"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("wrong_environment"), "{}", out.stderr);

    // scan finds it, checks it with the key, and never prints it whole.
    let leak = env.path("leak.log");
    std::fs::write(&leak, format!("curl -H 'Authorization: Bearer {jwt}'\n")).unwrap();
    let out = env.run(&[
        "scan",
        "--public-key",
        &public,
        "--json",
        leak.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(!out.stdout.contains(&jwt));
    let finding: serde_json::Value =
        serde_json::from_str(out.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(finding["format"], "jwt");
    assert_eq!(finding["status"], "valid");
    assert_eq!(finding["sub"], "ci-deploy");

    // jwks prints the key set; keys import reads it back into a store.
    let out = env.run(&["jwks", "--public-key", &public]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let jwks: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    assert_eq!(
        (key["use"].as_str(), key["alg"].as_str()),
        (Some("sig"), Some("EdDSA"))
    );
    assert!(key["kid"].as_str().unwrap().starts_with("k4.pid."));
    let file = env.path("jwks.json");
    std::fs::write(&file, &out.stdout).unwrap();
    let out = env.run(&[
        "keys",
        "import",
        "--store",
        &env.store(),
        "--jwks",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = env.run(&["jwks", "--store", &env.store()]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap(),
        jwks
    );
    // A JWKS holding a private key is refused.
    std::fs::write(
        &file,
        out.stdout.replace("\"alg\"", "\"d\":\"AAAA\",\"alg\""),
    )
    .unwrap();
    let out = env.run(&[
        "keys",
        "import",
        "--store",
        &env.store(),
        "--jwks",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("private"), "{}", out.stderr);
}

/// Read-only is the default posture: `mint` refuses a scope beyond read unless `--escalate`
/// says so or a registered consumer's ceiling allows it, and the `issued` event in the store's
/// trail says whether the token is escalated.
#[test]
fn minting_beyond_read_needs_escalate_or_a_ceiling_and_is_recorded() {
    let env = Env::new("escalate");
    let (secret, _) = env.keygen("keys");
    let store = env.store();
    let base = [
        "mint",
        "--secret-key",
        &secret,
        "--issuer",
        "https://auth.example",
        "--audience",
        "https://api.example",
        "--env",
        "production",
    ];
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        env.run(&args)
    };
    let write = [
        "--subject",
        "ci",
        "--scope",
        "projects/42:write",
        "--store",
        &store,
    ];
    let out = run(&write);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("projects/42:write") && out.stderr.contains("--escalate"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
    let escalated = run(&[&write[..], &["--escalate"]].concat());
    assert_eq!(escalated.code, 0, "{}", escalated.stderr);

    let out = env.run(&[
        "consumers",
        "add",
        "--store",
        &store,
        "--name",
        "importer",
        "--owner",
        "team-support",
        "--purpose",
        "import",
        "--env",
        "production",
        "--ceiling",
        "comments:write",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let by_ceiling = run(&[
        "--consumer",
        "importer",
        "--scope",
        "comments:write",
        "--store",
        &store,
    ]);
    assert_eq!(by_ceiling.code, 0, "{}", by_ceiling.stderr);
    let read = run(&[
        "--subject",
        "ci",
        "--scope",
        "projects:read",
        "--store",
        &store,
    ]);
    assert_eq!(read.code, 0, "{}", read.stderr);

    let trail = scopekey_store::Store::open(&store)
        .unwrap()
        .audit_log(0, 100)
        .unwrap();
    let issued: Vec<(String, bool)> = trail
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "issued")
        .map(|e| {
            (
                e["sub"].as_str().unwrap().to_owned(),
                e["escalated"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        issued,
        [
            ("ci".into(), true),
            ("importer".into(), true),
            ("ci".into(), false)
        ]
    );
    assert!(trail.iter().all(|l| !l.contains(escalated.stdout.trim())));
}

/// docs/cli.md's worked incident, run as written with bash: find, identify, revoke, confirm
/// with `verify` and with `scopekey audit`.
#[test]
fn the_worked_incident_runs_as_written() {
    let doc = include_str!("../../../docs/cli.md");
    let section = doc.split("## A worked incident").nth(1).unwrap();
    let script = section
        .split("```sh\n")
        .nth(1)
        .and_then(|s| s.split("\n```").next())
        .unwrap();
    assert!(script.contains("scopekey audit --store"), "{script}");
    let env = Env::new("incident");
    let bin = assert_cmd::cargo::cargo_bin("scopekey");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(&env.dir)
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    // The last command (the audit read) succeeded; the refusals before it said why.
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("revoked"), "{stderr}");
    assert!(stdout.contains("status=valid"), "{stdout}");
    let audit: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(" issued ") || l.contains(" revoked "))
        .collect();
    assert_eq!(audit.len(), 2, "{stdout}");
    assert!(
        audit[0].contains(" issued ") && audit[0].contains("sub=ci-deploy"),
        "{stdout}"
    );
    assert!(
        audit[1].contains(" revoked ") && audit[1].contains("reason=printed in public CI log"),
        "{stdout}"
    );
}

/// `scopekey audit` filters a JSON Lines trail and refuses what is not one.
#[test]
fn audit_reads_and_filters_a_json_lines_trail() {
    let env = Env::new("audit-file");
    let trail = env.path("audit.jsonl");
    std::fs::write(
        &trail,
        concat!(
            r#"{"time":"2030-01-01T00:00:00Z","event":"issued","jti":"a","sub":"x"}"#,
            "\n",
            r#"{"time":"2030-01-02T00:00:00Z","event":"revoked","jti":"a","sub":"x"}"#,
            "\n",
            r#"{"time":"2030-01-03T00:00:00Z","event":"issued","jti":"b","sub":"y"}"#,
            "\n",
        ),
    )
    .unwrap();
    let file = trail.to_str().unwrap();
    let run = |extra: &[&str]| env.run(&[&["audit", "--file", file][..], extra].concat());
    let out = run(&["--jti", "a", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 2);
    let out = run(&["--kind", "issued", "--since", "2030-01-02T00:00:00Z"]);
    assert_eq!(out.stdout.trim(), "2030-01-03T00:00:00Z issued jti=b sub=y");
    let out = run(&["--subject", "nobody"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""));
    assert!(out.stderr.contains("no matching"), "{}", out.stderr);
    let out = run(&["--since", "99999999999999999999d"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    // Not a trail: refused, naming the line.
    std::fs::write(&trail, "{\"event\":\"issued\"}\nnot json\n").unwrap();
    let out = run(&[]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("audit.jsonl:2"), "{}", out.stderr);
    std::fs::write(&trail, "x".repeat(2 << 20)).unwrap();
    let out = run(&[]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("longer than"), "{}", out.stderr);
}

/// A tampered trail cannot drive the operator's terminal: control and bidi characters in any
/// field are printed escaped.
#[test]
fn audit_escapes_control_characters() {
    let env = Env::new("audit-escape");
    let trail = env.path("audit.jsonl");
    std::fs::write(
        &trail,
        "{\"time\":\"2030-01-01T00:00:00Z\",\"event\":\"issued\",\"sub\":\"x\\u001b[2Ky\\u202e\"}\n",
    )
    .unwrap();
    let out = env.run(&["audit", "--file", trail.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stdout.contains('\u{1b}') && !out.stdout.contains('\u{202e}'));
    assert!(
        out.stdout.contains("sub=x\\u{1b}[2Ky\\u{202e}"),
        "{}",
        out.stdout
    );
}

/// The consumer is `--name NAME` in every `consumers` command; the positional spelling of
/// `show` and `disable` still works, with a one-line deprecation warning on standard error.
#[test]
fn consumers_take_name_everywhere_and_the_positional_name_is_deprecated() {
    let env = Env::new("consumer-name");
    let store = env.store();
    for name in ["analytics", "billing", "legacy"] {
        let out = env.run(&[
            "consumers",
            "add",
            "--store",
            &store,
            "--name",
            name,
            "--owner",
            "team-data",
            "--purpose",
            "dashboards",
            "--env",
            "production",
            "--ceiling",
            "metrics:read",
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let warned = |out: &Output, old: &str, new: &str| {
        let line = out.stderr.lines().next().unwrap_or_default();
        assert!(
            line.starts_with("scopekey: warning: ")
                && line.contains("deprecated")
                && line.contains(old)
                && line.contains(new),
            "{}",
            out.stderr
        );
    };

    // Canonical: no warning.
    let out = env.run(&[
        "consumers",
        "show",
        "--store",
        &store,
        "--name",
        "analytics",
    ]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{}", out.stderr);
    let shown: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(shown["name"], "analytics");
    let out = env.run(&[
        "consumers",
        "disable",
        "--store",
        &store,
        "--name",
        "billing",
        "--reason",
        "contract ended",
    ]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{}", out.stderr);
    assert!(out.stdout.starts_with("disabled billing"), "{}", out.stdout);

    // Deprecated: the same result, and the warning names both spellings.
    let old = env.run(&["consumers", "show", "--store", &store, "analytics"]);
    assert_eq!(old.code, 0, "{}", old.stderr);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&old.stdout).unwrap(),
        shown
    );
    warned(&old, "consumers show NAME", "consumers show --name NAME");
    let old = env.run(&[
        "consumers",
        "disable",
        "--store",
        &store,
        "legacy",
        "--reason",
        "contract ended",
    ]);
    assert_eq!(old.code, 0, "{}", old.stderr);
    assert!(old.stdout.starts_with("disabled legacy"), "{}", old.stdout);
    warned(
        &old,
        "consumers disable NAME",
        "consumers disable --name NAME",
    );
    let list = env.run(&["consumers", "list", "--store", &store]).stdout;
    assert_eq!(list.matches("disabled").count(), 2, "{list}");

    // Both spellings at once, or neither: a usage error.
    let both = env.run(&[
        "consumers",
        "show",
        "--store",
        &store,
        "--name",
        "analytics",
        "analytics",
    ]);
    assert_eq!(both.code, 2, "{}", both.stderr);
    let neither = env.run(&["consumers", "show", "--store", &store]);
    assert_eq!(neither.code, 2, "{}", neither.stderr);
}

/// `verify --leeway` is a duration like every other duration flag; a bare number of seconds
/// still works, with a deprecation warning.
#[test]
fn verify_leeway_is_a_duration_and_bare_seconds_are_deprecated() {
    let env = Env::new("leeway");
    let (secret, public) = env.keygen("keys");
    let token = env.mint(&secret, &[]);
    for leeway in ["30s", "2m"] {
        let out = env.verify(&public, &token, &["--leeway", leeway]);
        assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{leeway}");
    }
    let out = env.verify(&public, &token, &["--leeway", "30"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let line = out.stderr.trim();
    assert!(
        !line.contains('\n')
            && line.starts_with("scopekey: warning: `--leeway 30` is deprecated")
            && line.contains("`--leeway 30s`"),
        "{line}"
    );
    let out = env.verify(&public, &token, &["--leeway", "30x"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.starts_with("scopekey: --leeway: "),
        "{}",
        out.stderr
    );

    // Seconds mean what they meant: 0 tolerates no skew at all.
    let short = env.mint(&secret, &["--ttl", "1s"]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    for leeway in ["0", "0s"] {
        let out = env.verify(&public, &short, &["--leeway", leeway]);
        assert_eq!(out.code, 1, "{leeway}");
        assert!(out.stderr.contains("expired"), "{}", out.stderr);
    }
}

/// A role file takes a scope string or a TOML array of scopes per role, in `roles check`,
/// `roles import` and `mint --roles`; a malformed file is refused in one line naming the file
/// and line, never a panic.
#[test]
fn role_files_take_toml_arrays_and_refuse_malformed_ones_in_one_line() {
    let env = Env::new("roles-arrays");
    let (secret, _public) = env.keygen("keys");
    let store = env.store();
    let string_form = env.path("string.toml");
    std::fs::write(
        &string_form,
        "[roles]\nreader = \"projects:read issues:read\"\n",
    )
    .unwrap();
    let array_form = env.path("array.toml");
    std::fs::write(
        &array_form,
        "[roles]\nreader = [\"projects:read\", \"issues:read\"]\nwriter = [\n  \"posts:write\",\n  \"posts:read\",\n]\nmixed = \"metrics:read\"\n",
    )
    .unwrap();
    let check = |p: &Path| env.run(&["roles", "check", p.to_str().unwrap()]);
    let out = check(&string_form);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "reader = issues:read projects:read\n");
    let out = check(&array_form);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "mixed = metrics:read\nreader = issues:read projects:read\nwriter = posts:read posts:write\n"
    );

    // Both shapes expand the same at mint time, from the file and from the store.
    let scope_of = |token: &str| {
        let v: serde_json::Value =
            serde_json::from_str(&env.run(&["inspect", token]).stdout).unwrap();
        v["claims"]["scope"].as_str().unwrap().to_owned()
    };
    for file in [&string_form, &array_form] {
        let token = env.mint(
            &secret,
            &["--roles", file.to_str().unwrap(), "--role", "reader"],
        );
        assert_eq!(scope_of(&token), "issues:read projects:read");
    }
    let out = env.run(&[
        "roles",
        "import",
        "--store",
        &store,
        array_form.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("imported 3 role(s)"), "{}", out.stdout);
    let token = env.mint(&secret, &["--store", &store, "--role", "reader"]);
    assert_eq!(scope_of(&token), "issues:read projects:read");

    // Malformed: exit 1, one line, file and line, the reason.
    let bad = env.path("bad.toml");
    let cases = [
        ("[roles]\nreader = [\"projects:read\", 3]\n", 2, "string"),
        (
            "[roles]\nreader = [\"projects/:read\"]\n",
            2,
            "empty segment",
        ),
        (
            "[roles]\nreader = [\"a:read\", \"a:read\"]\n",
            2,
            "duplicate",
        ),
        ("[roles]\nreader = []\n", 2, "grants nothing"),
        (
            "[roles]\nok = \"a:read\"\nreader = [\"a:read\"\n",
            4,
            "expected",
        ),
        ("[roles]\nreader = { a = \"b\" }\n", 2, "array"),
    ];
    for (text, line, what) in cases {
        std::fs::write(&bad, text).unwrap();
        let out = check(&bad);
        assert_eq!(out.code, 1, "{text:?}: {}", out.stderr);
        let msg = out.stderr.strip_suffix('\n').unwrap_or(&out.stderr);
        assert!(!msg.contains('\n') && !msg.contains("panicked"), "{msg}");
        assert!(
            msg.starts_with(&format!("scopekey: {}:{line}: ", bad.display())),
            "{text:?}: {msg}"
        );
        assert!(msg.contains(what), "{text:?}: {msg}");
    }
}

/// Token and family ids are base64url, so one in 64 starts with `-`: `--jti "$JTI"` takes it as
/// the value (the worked incident failed on such a token), in `revoke` and in `audit`.
#[test]
fn ids_starting_with_a_hyphen_are_values_not_flags() {
    let env = Env::new("hyphen-ids");
    let store = env.store();
    for (flag, id) in [("--jti", "-39VBNrRyrLnN_9aMBmISA"), ("--family", "-fam")] {
        let out = env.run(&["revoke", "--store", &store, flag, id, "--reason", "leaked"]);
        assert_eq!(out.code, 0, "{flag}: {}", out.stderr);
        assert!(out.stdout.starts_with("revoked "), "{}", out.stdout);
    }
    let out = env.run(&[
        "audit",
        "--store",
        &store,
        "--jti",
        "-39VBNrRyrLnN_9aMBmISA",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    assert!(out.stdout.contains(" revoked "), "{}", out.stdout);
}

/// `audit --jti` also shows the revocations that cover the token without naming it: its
/// consumer's (from the store, whose inventory knows the token's subject and key) and, in a
/// JSON Lines trail, its family's (learned from the token's own events).
#[test]
fn audit_jti_shows_the_revocations_that_cover_the_token() {
    let env = Env::new("audit-covering");
    let (secret, _) = env.keygen("keys");
    let store = env.store();
    let token = env.mint(&secret, &["--store", &store]);
    let inspected: serde_json::Value =
        serde_json::from_str(&env.run(&["inspect", &token]).stdout).unwrap();
    let jti = inspected["claims"]["jti"].as_str().unwrap().to_owned();
    for subject in ["ci-deploy", "someone-else"] {
        let out = env.run(&[
            "revoke",
            "--store",
            &store,
            "--subject",
            subject,
            "--reason",
            "offboarded",
            "--by",
            "ops",
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let out = env.run(&["audit", "--store", &store, "--jti", &jti, "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap(),
                e["sub"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [("issued", "ci-deploy"), ("revoked", "ci-deploy")],
        "{}",
        out.stdout
    );

    // A JSON Lines trail: the family comes from the token's own event.
    let trail = env.path("family.jsonl");
    std::fs::write(
        &trail,
        concat!(
            r#"{"time":"2030-01-01T00:00:00Z","event":"issued","jti":"t1","sub":"app","fam":"f1"}"#,
            "\n",
            r#"{"time":"2030-01-01T00:01:00Z","event":"refreshed","jti":"t2","sub":"app","fam":"f1"}"#,
            "\n",
            r#"{"time":"2030-01-02T00:00:00Z","event":"revoked","target":"family","fam":"f1","reason":"reuse"}"#,
            "\n",
            r#"{"time":"2030-01-02T00:00:00Z","event":"revoked","target":"family","fam":"f2","reason":"other"}"#,
            "\n",
        ),
    )
    .unwrap();
    let out = env.run(&["audit", "--file", trail.to_str().unwrap(), "--jti", "t1"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(
        lines[1].contains("revoked") && lines[1].contains("fam=f1"),
        "{}",
        out.stdout
    );
}

/// `mint --allow-ip` limits a token to networks; `inspect` shows them; `verify` refuses the token
/// without a client address and checks it from `--client-ip`.
#[test]
fn allow_ip_limits_a_token_that_inspect_shows_and_verify_checks() {
    let env = Env::new("allow-ip");
    let (secret, public) = env.keygen("keys");
    let token = env.mint(
        &secret,
        &[
            "--allow-ip",
            "203.0.113.0/24",
            "--allow-ip",
            "2001:db8::/32",
        ],
    );
    // The issuer writes the blocks in its canonical (sorted) order.
    let nets = serde_json::json!(["2001:db8::/32", "203.0.113.0/24"]);
    let out = env.run(&["inspect", &token]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["claims"]["net"], nets);

    // No client address: refused, saying how to give one.
    let out = env.verify(&public, &token, &[]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains("network_not_allowed") && out.stderr.contains("--client-ip"),
        "{}",
        out.stderr
    );
    for inside in ["203.0.113.9", "2001:db8::7", "::ffff:203.0.113.9"] {
        let out = env.verify(&public, &token, &["--client-ip", inside]);
        assert_eq!(out.code, 0, "{inside}: {}", out.stderr);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["net"], nets);
    }
    for outside in ["198.51.100.1", "2001:db9::1"] {
        let out = env.verify(&public, &token, &["--client-ip", outside]);
        assert_eq!(out.code, 1, "{outside}");
        assert!(out.stderr.contains("network_not_allowed"), "{}", out.stderr);
    }
    let out = env.verify(&public, &token, &["--client-ip", "203.0.113.0/24"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--client-ip"), "{}", out.stderr);

    // A token without networks verifies from anywhere, with or without a client.
    let plain = env.mint(&secret, &[]);
    for extra in [&[][..], &["--client-ip", "198.51.100.1"]] {
        let out = env.verify(&public, &plain, extra);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["net"], serde_json::Value::Null);
    }

    // Invalid or too many networks are usage errors naming the flag; 32 are fine.
    let mint = |extra: &[String]| {
        let mut args: Vec<&str> = vec![
            "mint",
            "--secret-key",
            &secret,
            "--issuer",
            "https://auth.example",
            "--audience",
            "https://api.example",
            "--env",
            "production",
            "--subject",
            "ci-deploy",
            "--scope",
            "projects:read",
        ];
        args.extend(extra.iter().map(String::as_str));
        env.run(&args)
    };
    for bad in ["10.1.2.3/8", "10.0.0.0/33", "example.com", ""] {
        let out = mint(&["--allow-ip".into(), bad.into()]);
        assert_eq!(out.code, 2, "{bad}");
        assert!(out.stderr.contains("--allow-ip"), "{bad}: {}", out.stderr);
        assert!(out.stdout.is_empty());
    }
    let flags = |n: usize| -> Vec<String> {
        (0..n)
            .flat_map(|i| ["--allow-ip".to_owned(), format!("10.0.{i}.0/24")])
            .collect()
    };
    assert_eq!(mint(&flags(32)).code, 0);
    let out = mint(&flags(33));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("--allow-ip") && out.stderr.contains("32"),
        "{}",
        out.stderr
    );
}

/// `consumers credentials`: a secret printed once (text and JSON), rotated when run again, an
/// unknown consumer refused, and a public key registered for private_key_jwt.
#[test]
fn consumers_credentials_print_a_secret_once_and_rotate() {
    let env = Env::new("credentials");
    let store = env.store();
    let out = env.run(&[
        "consumers",
        "add",
        "--store",
        &store,
        "--name",
        "ci",
        "--owner",
        "team",
        "--purpose",
        "deploys",
        "--env",
        "dev",
        "--ceiling",
        "projects:read",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = env.run(&[
        "consumers",
        "credentials",
        "--store",
        &store,
        "--name",
        "ci",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("client_id: ci\nclient_secret: sks_"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("shown once"), "{}", out.stderr);
    let first = out
        .stdout
        .lines()
        .nth(1)
        .unwrap()
        .trim_start_matches("client_secret: ")
        .to_owned();
    let out = env.run(&[
        "consumers",
        "credentials",
        "--store",
        &store,
        "--name",
        "ci",
        "--json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["client_id"], "ci");
    let second = json["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    let s = scopekey_store::Store::open(&store).unwrap();
    use scopekey_store::SecretCheck::{Matches, Refused};
    assert_eq!(s.verify_client_secret("ci", &first).unwrap(), Refused);
    assert_eq!(s.verify_client_secret("ci", &second).unwrap(), Matches);
    // Unknown consumer: a refusal, exit 1, nothing printed on stdout.
    let out = env.run(&[
        "consumers",
        "credentials",
        "--store",
        &store,
        "--name",
        "nobody",
    ]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout.is_empty() && out.stderr.contains("unknown consumer"),
        "{}",
        out.stderr
    );
    // A key for private_key_jwt.
    let (_, public) = env.keygen("client-key");
    let out = env.run(&[
        "consumers",
        "credentials",
        "--store",
        &store,
        "--name",
        "ci",
        "--public-key",
        &public,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("registered key k4.pid."),
        "{}",
        out.stdout
    );
    assert!(s.client_key("ci").unwrap().is_some());
    assert_eq!(s.verify_client_secret("ci", &second).unwrap(), Matches);
}

/// The README's "A token over HTTP" block, run as written: keygen, a consumer, its secret,
/// `scopekey serve` in the background and `curl` getting a token.
#[test]
fn the_readme_gets_a_token_over_http_as_written() {
    let readme = include_str!("../../../README.md");
    let section = readme.split("### A token over HTTP").nth(1).unwrap();
    let script = section
        .split("```sh\n")
        .nth(1)
        .and_then(|s| s.split("\n```").next())
        .unwrap();
    assert!(
        script.contains("scopekey serve") && script.contains("curl"),
        "{script}"
    );
    let env = Env::new("readme-http");
    let bin = assert_cmd::cargo::cargo_bin("scopekey");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(&env.dir)
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let answer = stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("{stdout}\n{stderr}"));
    let json: serde_json::Value = serde_json::from_str(answer).unwrap();
    assert_eq!(json["token_type"], "Bearer", "{answer}");
    assert_eq!(json["scope"], "projects:read");
    assert_eq!(json["expires_in"], 900);
    let token = json["access_token"].as_str().unwrap();
    // The token verifies with the key the README made.
    let out = env.run(&[
        "verify",
        "--public-key",
        env.path("keys/public.paserk").to_str().unwrap(),
        "--issuer",
        "http://127.0.0.1:8080",
        "--audience",
        "https://api.example",
        "--env",
        "dev",
        token,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("\"sub\": \"ci\"") || out.stdout.contains("\"sub\":\"ci\""),
        "{}",
        out.stdout
    );
}

/// `serve --bootstrap-admin`: an admin token printed once on an empty store, refused after.
#[test]
fn serve_bootstraps_an_admin_once() {
    use std::io::BufRead as _;
    let env = Env::new("bootstrap");
    let (secret, public) = env.keygen("keys");
    let store = env.store();
    let args = [
        "serve",
        "--store",
        &store,
        "--secret-key",
        &secret,
        "--listen",
        "127.0.0.1:0",
        "--issuer",
        "http://127.0.0.1:9",
        "--audience",
        "https://api.example",
        "--env",
        "dev",
        "--bootstrap-admin",
    ];
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("scopekey"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let token = line.trim();
    assert!(token.starts_with("v4.public."), "{line:?}");
    let out = env.run(&[
        "verify",
        "--public-key",
        &public,
        "--issuer",
        "http://127.0.0.1:9",
        "--audience",
        "http://127.0.0.1:9/admin",
        "--env",
        "dev",
        token,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("consumers:write") && out.stdout.contains("tokens:revoke"),
        "{}",
        out.stdout
    );
    // Once: the store now has the admin consumer.
    let out = env.run(&args);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("already has consumers"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
}

/// `revoke --jti` of a token that tokens were exchanged from (RFC 8693, by the token service)
/// revokes their lineage too: no descendant outlives its parent's revocation.
#[test]
fn revoking_a_parent_jti_revokes_the_tokens_exchanged_from_it() {
    let env = Env::new("revoke-lineage");
    let url = env.store();
    let store = scopekey_store::Store::open(&url).unwrap();
    let key = scopekey::SigningKey::generate().unwrap();
    store.add_key(key.public_key(), None).unwrap();
    let issuer = scopekey::Issuer::new(key, "https://auth.example", "dev".parse().unwrap())
        .unwrap()
        .with_inventory(std::sync::Arc::new(store.inventory().unwrap()));
    let request = |fam: Option<scopekey::FamilyId>| {
        let r = scopekey::TokenRequest::new(
            "worker",
            "https://api.example",
            "projects:read".parse().unwrap(),
        );
        match fam {
            Some(f) => r.family(f),
            None => r,
        }
    };
    let parent = issuer.issue(&request(None)).unwrap();
    let lineage = scopekey_server::lineage_of(parent.claims().token_id()).unwrap();
    let child = issuer.issue(&request(Some(lineage.clone()))).unwrap();
    let unrelated = issuer.issue(&request(None)).unwrap();
    let jti = parent.claims().token_id().as_str().to_owned();
    let out = env.run(&[
        "revoke", "--store", &url, "--jti", &jti, "--reason", "leaked",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(lines[1].contains(lineage.as_str()), "{}", out.stdout);
    let replica =
        scopekey_store::Replica::start(&store, scopekey_store::ReplicaOptions::default()).unwrap();
    let v = replica
        .verifier(scopekey::VerifierConfig::new(
            "https://auth.example",
            "https://api.example",
            "dev".parse().unwrap(),
        ))
        .unwrap();
    for t in [&parent, &child] {
        let e = v.verify(t.token().as_str()).unwrap_err();
        assert_eq!(e.kind(), scopekey::VerifyErrorKind::Revoked);
    }
    assert!(v.verify(unrelated.token().as_str()).is_ok());
    // A token without descendants adds no lineage revocation.
    let jti = unrelated.claims().token_id().as_str().to_owned();
    let out = env.run(&[
        "revoke", "--store", &url, "--jti", &jti, "--reason", "leaked",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
}

/// `mint --max-uses` limits a token's uses; `inspect` shows the limit and uses nothing;
/// `verify` refuses it without `--consume-use` (counting nothing), and with `--store URL
/// --consume-use` counts one use per run in the store, then refuses it as used up.
#[test]
fn max_uses_limits_a_token_that_verify_counts_only_when_asked() {
    let env = Env::new("max-uses");
    let (secret, public) = env.keygen("keys");
    let store = env.store();
    let token = env.mint(&secret, &["--max-uses", "2"]);
    let out = env.run(&["inspect", &token]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["claims"]["uses"], 2);

    // Without --consume-use: refused, nothing counted, saying how.
    for extra in [&[][..], &["--store", &store]] {
        let out = env.verify(&public, &token, extra);
        assert_eq!(out.code, 1, "{}", out.stdout);
        assert!(
            out.stderr.contains("usage_unavailable") && out.stderr.contains("--consume-use"),
            "{}",
            out.stderr
        );
    }
    let consume = ["--store", store.as_str(), "--consume-use"];
    for _ in 0..2 {
        let out = env.verify(&public, &token, &consume);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["uses"], 2);
    }
    let out = env.verify(&public, &token, &consume);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("uses_exhausted"), "{}", out.stderr);
    // --consume-use needs a store; a limit out of range is a usage error naming the flag.
    assert_eq!(env.verify(&public, &token, &["--consume-use"]).code, 2);
    let plain = env.mint(&secret, &[]);
    let out = env.verify(&public, &plain, &consume);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["uses"], serde_json::Value::Null);
    for bad in ["0", "1000001", "x"] {
        let out = env.run(&[
            "mint",
            "--secret-key",
            &secret,
            "--issuer",
            "https://auth.example",
            "--audience",
            "https://api.example",
            "--env",
            "production",
            "--subject",
            "ci-deploy",
            "--scope",
            "projects:read",
            "--max-uses",
            bad,
        ]);
        assert_eq!(out.code, 2, "{bad}: {}", out.stderr);
        assert!(out.stderr.contains("--max-uses"), "{bad}: {}", out.stderr);
    }
}

/// `mint --dpop-jkt` binds a token to a client key (claim `cnf.jkt`); `inspect` shows it among
/// the caveats; `verify` (which has no proof) refuses it; a value that is not a thumbprint is a
/// usage error naming the flag.
#[test]
fn dpop_jkt_binds_a_token_that_inspect_shows_and_verify_refuses_as_bearer() {
    let env = Env::new("dpop-jkt");
    let (secret, public) = env.keygen("keys");
    // RFC 8037 §A.3's thumbprint.
    let jkt = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
    let token = env.mint(&secret, &["--dpop-jkt", jkt, "--max-uses", "3"]);
    let out = env.run(&["inspect", &token]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["claims"]["cnf"]["jkt"], jkt);
    assert_eq!(v["caveats"]["dpop_jkt"], jkt);
    assert_eq!(v["caveats"]["uses"], 3);
    assert_eq!(v["caveats"]["networks"], serde_json::Value::Null);
    let out = env.verify(&public, &token, &[]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stderr.contains("dpop_proof_missing"), "{}", out.stderr);
    for bad in ["short", &"A".repeat(44), &format!("{}B", "A".repeat(42))] {
        let out = env.run(&[
            "mint",
            "--secret-key",
            &secret,
            "--issuer",
            "https://auth.example",
            "--audience",
            "https://api.example",
            "--env",
            "production",
            "--subject",
            "ci-deploy",
            "--scope",
            "projects:read",
            "--dpop-jkt",
            bad,
        ]);
        assert_eq!(out.code, 2, "{bad}: {}", out.stderr);
        assert!(out.stderr.contains("--dpop-jkt"), "{bad}: {}", out.stderr);
    }
}

/// `scopekey sweep`: old inventory rows and audit events go (the audit events to the export
/// file first), recent ones stay; `revoke --jti` of an inventoried token records its expiry,
/// so that a later sweep can delete the revocation; bad retention flags exit 2 and delete
/// nothing.
#[test]
fn sweep_deletes_what_the_store_no_longer_keeps() {
    use scopekey::audit::{AuditEvent, AuditKind};
    use scopekey::inventory::{TokenRecord, TokenRecordParts};
    use time::OffsetDateTime;
    let env = Env::new("sweep");
    let (secret, _) = env.keygen("k");
    let url = env.store();
    let token = env.mint(&secret, &["--store", &url]);
    let jti = {
        let v: serde_json::Value =
            serde_json::from_str(&env.run(&["inspect", &token]).stdout).unwrap();
        v["claims"]["jti"].as_str().unwrap().to_owned()
    };
    let out = env.run(&[
        "revoke", "--store", &url, "--jti", &jti, "--reason", "leaked", "--by", "ops",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let store = scopekey_store::Store::open(&url).unwrap();
    let revocations = store.revocations_after(0).unwrap();
    let scopekey::revocation::RevocationTarget::Token { expires_at, .. } =
        revocations[0].1.target()
    else {
        panic!("{:?}", revocations[0].1.target())
    };
    let minted = store.token(&jti.parse().unwrap()).unwrap().unwrap();
    assert_eq!(*expires_at, Some(minted.expires_at()));

    // An inventory row expired 40 days ago and 12 audit events of 100 days ago.
    let long_ago = OffsetDateTime::now_utc() - time::Duration::days(100);
    let old: TokenRecord = TokenRecordParts {
        token_id: "old-token".parse().unwrap(),
        token_type: scopekey::TokenType::Access,
        subject: "ci-deploy".into(),
        owner: None,
        purpose: None,
        scopes: "projects:read".parse().unwrap(),
        issued_at: long_ago,
        expires_at: long_ago + time::Duration::days(60),
        key_id: minted.key_id().clone(),
        family: None,
        last_used: None,
    }
    .into();
    store.record_token(&old).unwrap();
    let events: Vec<AuditEvent> = (0..12)
        .map(|_| AuditEvent::bare(long_ago, AuditKind::Verified))
        .collect();
    store.append_audit(events).unwrap();
    let before = store.audit_log(0, 1_000).unwrap().len();

    for bad in [
        &["--revocation-margin", "30s"][..],
        &["--audit-retention", "1h"],
        &["--batch-size", "0"],
        &["--keep-audit", "--export-audit", "x.jsonl"],
        &["--inventory-retention", "soon"],
    ] {
        let mut args = vec!["sweep", "--store", url.as_str()];
        args.extend_from_slice(bad);
        let out = env.run(&args);
        assert_eq!(out.code, 2, "{bad:?}: {}", out.stderr);
        assert!(out.stderr.contains(bad[0]), "{bad:?}: {}", out.stderr);
    }
    assert_eq!(store.audit_log(0, 1_000).unwrap().len(), before);

    let export = env.path("audit-archive.jsonl");
    let out = env.run(&[
        "sweep",
        "--store",
        &url,
        "--export-audit",
        export.to_str().unwrap(),
        "--batch-size",
        "5",
        "--json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(report["tokens"], 1, "{report}");
    assert_eq!(report["audit_events"], 12, "{report}");
    assert_eq!(report["revocations"], 0, "{report}");
    let exported = std::fs::read_to_string(&export).unwrap();
    assert_eq!(exported.lines().count(), 12);
    assert!(
        exported.lines().all(|l| l.contains("\"verified\"")),
        "{exported}"
    );
    assert!(
        store
            .token(&"old-token".parse().unwrap())
            .unwrap()
            .is_none()
    );
    assert!(store.token(&jti.parse().unwrap()).unwrap().is_some());
    assert_eq!(store.audit_log(0, 1_000).unwrap().len(), before - 12);
    assert_eq!(store.revocations_after(0).unwrap().len(), 1);

    let out = env.run(&["sweep", "--store", &url]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("swept 0 rows"), "{}", out.stdout);

    // docs/cli.md's example, run as written in a folder of its own (a new store there).
    let doc = include_str!("../../../docs/cli.md");
    let example = doc
        .lines()
        .find(|l| l.starts_with("scopekey sweep --store sqlite://scopekey.db"))
        .unwrap();
    let words: Vec<&str> = example.split_whitespace().skip(1).collect();
    let out = Command::cargo_bin("scopekey")
        .unwrap()
        .args(&words)
        .current_dir(&env.dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{example}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("swept 0 rows"));
}

/// `serve --sweep-every`: a sweep at start (reported on standard error) deletes an expired
/// inventory row; an interval under a minute, or a bad retention flag, exits 2 before serving.
#[test]
fn serve_sweeps_the_store_when_asked() {
    use std::io::BufRead as _;
    let env = Env::new("serve-sweep");
    let (secret, _) = env.keygen("keys");
    let url = env.store();
    let store = scopekey_store::Store::open(&url).unwrap();
    let long_ago = time::OffsetDateTime::now_utc() - time::Duration::days(100);
    let kid = scopekey::KeyId::of_public_key_bytes(&[7; 32]).unwrap();
    let old: scopekey::inventory::TokenRecord = scopekey::inventory::TokenRecordParts {
        token_id: "expired-long-ago".parse().unwrap(),
        token_type: scopekey::TokenType::Access,
        subject: "ci".into(),
        owner: None,
        purpose: None,
        scopes: "projects:read".parse().unwrap(),
        issued_at: long_ago,
        expires_at: long_ago + time::Duration::hours(1),
        key_id: kid,
        family: None,
        last_used: None,
    }
    .into();
    store.record_token(&old).unwrap();
    let serve = |extra: &[&str]| {
        let mut args = vec![
            "serve",
            "--store",
            url.as_str(),
            "--secret-key",
            secret.as_str(),
            "--listen",
            "127.0.0.1:0",
            "--issuer",
            "http://127.0.0.1:9",
            "--audience",
            "https://api.example",
            "--env",
            "dev",
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    for bad in [
        &["--sweep-every", "30s"][..],
        &["--sweep-every", "1h", "--audit-retention", "2h"],
    ] {
        let out = env.run(&serve(bad).iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(out.code, 2, "{bad:?}: {}", out.stderr);
        assert!(out.stderr.contains(bad[bad.len() - 2]), "{}", out.stderr);
    }
    // Retention flags without --sweep-every would do nothing: refused.
    let out = env.run(
        &serve(&["--audit-retention", "180d"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--sweep-every"), "{}", out.stderr);
    assert!(store.token(old.token_id()).unwrap().is_some());

    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("scopekey"))
        .args(serve(&["--sweep-every", "1h"]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut swept = None;
    for line in stderr.lines() {
        let line = line.unwrap();
        if line.contains("swept") || line.contains("sweep failed") {
            swept = Some(line);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let swept = swept.unwrap();
    assert!(
        swept.starts_with("scopekey serve: swept ") && swept.contains("1 inventory rows"),
        "{swept}"
    );
    assert!(store.token(old.token_id()).unwrap().is_none());
}
