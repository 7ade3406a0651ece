//! The example service with its SQLite store, at saturation, as an operator would try it: `wrk`
//! sends a valid token on 16 connections and garbage on 16 more, for 30 s. Reports throughput,
//! every non-2xx answer to the valid token (the bar: none), and whether the store's audit trail
//! counts exactly the requests the service answered.
//!
//! ```sh
//! apt-get install wrk                              # the load generator (Debian's package)
//! cargo bench --bench audit_load                   # 30 s
//! cargo bench --bench audit_load -- --seconds 8    # shorter
//! ```
//!
//! It builds and starts `examples/axum_service.rs` in release mode (`--demo`, `--store
//! sqlite://…`), counts the answers the service logged, stops it with SIGINT (so the last
//! summaries are written), then reads the trail from the store file. Exits non-zero when a
//! valid request got a non-2xx answer or the counts differ.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scopekey_store::Store;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Wrk {
    requests: u64,
    non_2xx: u64,
    rps: f64,
    errors: String,
}

fn run_wrk(url: &str, token: &str, connections: u32, seconds: u64) -> Child {
    Command::new("wrk")
        .args(["-t1", &format!("-c{connections}"), &format!("-d{seconds}s")])
        .args(["-H", &format!("Authorization: Bearer {token}"), url])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run wrk ({e}): apt-get install wrk"))
}

fn wrk_result(child: Child) -> Wrk {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let number = |line: &str, after: &str| -> Option<f64> {
        line.split(after)
            .nth(1)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let mut w = Wrk {
        requests: 0,
        non_2xx: 0,
        rps: 0.0,
        errors: String::new(),
    };
    for line in text.lines() {
        let line = line.trim();
        if line.contains("requests in") {
            w.requests = line
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        } else if let Some(n) = number(line, "Non-2xx or 3xx responses:") {
            w.non_2xx = n as u64;
        } else if let Some(n) = number(line, "Requests/sec:") {
            w.rps = n;
        } else if line.starts_with("Socket errors") {
            w.errors = line.to_owned();
        }
    }
    assert!(w.requests > 0, "wrk printed no result:\n{text}");
    w
}

fn build_example() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--locked",
            "--example",
            "axum_service",
        ])
        .status()
        .unwrap();
    assert!(status.success(), "building the example failed");
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/examples/axum_service")
}

fn start_service(
    binary: &Path,
    dir: &Path,
    store: Option<&str>,
    log: &Path,
) -> (Child, String, std::thread::JoinHandle<()>) {
    let mut cmd = Command::new(binary);
    cmd.args(["--demo", dir.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    if let Some(url) = store {
        cmd.args(["--store", url]);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().expect("the service exited").unwrap();
        if let Some(a) = line.strip_prefix("listening on ") {
            break a.to_owned();
        }
    };
    // The rest of the output (one line per answered request) goes to `log`.
    let log = log.to_owned();
    let writer = std::thread::spawn(move || {
        use std::io::Write as _;
        let mut file = std::io::BufWriter::new(std::fs::File::create(log).unwrap());
        for line in lines.map_while(Result::ok) {
            let _ = writeln!(file, "{line}");
        }
    });
    (child, addr, writer)
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the service did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Answers the service logged, by status, for `path`.
fn served(log: &Path, path: &str, status: u16) -> u64 {
    let needle = format!("GET {path} -> {status} ");
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().filter(|l| l.contains(&needle)).count() as u64
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("audit_load: SKIPPED, wrk is not installed (apt-get install wrk)");
        return;
    }
    let binary = build_example();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-audit-load");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();

    let mut failed = false;
    for store in [false, true] {
        let dir = root.join(if store { "store" } else { "memory" });
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}/state.db", dir.display());
        let log = dir.join("service.log");
        let (child, addr, writer) =
            start_service(&binary, &dir, store.then_some(url.as_str()), &log);
        let token = std::fs::read_to_string(dir.join("reader.token")).unwrap();
        let jti = scopekey::danger::decode_unverified(token.trim())
            .unwrap()
            .claim_str("jti")
            .unwrap()
            .to_owned();
        let valid = run_wrk(&format!("{addr}/projects/42"), token.trim(), 16, seconds);
        let garbage = run_wrk(
            &format!("{addr}/projects/7"),
            "v4.public.garbage",
            16,
            seconds,
        );
        let (valid, garbage) = (wrk_result(valid), wrk_result(garbage));
        // Two summary intervals, then a graceful stop writes what is left.
        std::thread::sleep(Duration::from_secs(2));
        stop(child);
        writer.join().unwrap();
        let ok = served(&log, "/projects/42", 200);
        let refused = served(&log, "/projects/7", 401);
        let label = if store { "--store sqlite" } else { "in memory" };
        println!("== example service, {label}, {seconds} s, wrk 16 + 16 connections ==");
        println!(
            "valid token:   {:>9} requests, {:>9.0} req/s, non-2xx {} {}",
            valid.requests, valid.rps, valid.non_2xx, valid.errors
        );
        println!(
            "garbage token: {:>9} requests, {:>9.0} req/s, non-2xx {} {}",
            garbage.requests, garbage.rps, garbage.non_2xx, garbage.errors
        );
        println!("service answered: {ok} x 200 (valid), {refused} x 401 (garbage)");
        if valid.non_2xx > 0 {
            println!(
                "FAIL: {} valid requests got a non-2xx answer",
                valid.non_2xx
            );
            failed = true;
        }
        if store {
            let store = Store::open(&url).unwrap();
            let (mut verified, mut malformed, mut events) = (0u64, 0u64, 0usize);
            let mut offset = 0;
            loop {
                let page = store.audit_log(offset, 10_000).unwrap();
                if page.is_empty() {
                    break;
                }
                offset += page.len() as i64;
                for line in &page {
                    events += 1;
                    let e: serde_json::Value = serde_json::from_str(line).unwrap();
                    match e["event"].as_str() {
                        Some("token_used") if e["jti"] == jti.as_str() => {
                            verified += e["verified"].as_u64().unwrap();
                        }
                        Some("refused_summary") if e["reason"] == "malformed" => {
                            malformed += e["count"].as_u64().unwrap();
                        }
                        _ => {}
                    }
                }
            }
            println!(
                "audit trail: {events} events; token_used verified {verified}, refused_summary malformed {malformed}"
            );
            if verified != ok || malformed != refused {
                println!("FAIL: the trail's counts differ from the answers served");
                failed = true;
            } else {
                println!("trail counts equal the requests served");
            }
        }
        println!();
    }
    if failed {
        std::process::exit(1);
    }
}
