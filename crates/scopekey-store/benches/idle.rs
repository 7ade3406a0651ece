//! What an idle SQLite replica costs: the process's CPU time (utime + stime from
//! `/proc/self/stat`, Linux only) over 10 s with nothing committed, at poll intervals of 10 and
//! 20 ms, with 1,000 revocations in the store. A steady harness, not criterion: the figure is a
//! share of one core, printed per interval. `cargo bench -p scopekey-store --bench idle`; run it
//! on a quiet machine (docs/performance.md has the figures and the machine).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scopekey::revocation::RevocationTarget;
use scopekey_store::{Replica, ReplicaOptions, Store};
use std::time::Duration;

fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // utime and stime, fields 14 and 15 of proc(5), in clock ticks (1/100 s).
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` run passes nothing and
    // should not spend 25 s.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("idle: run with `cargo bench -p scopekey-store --bench idle`");
        return;
    }
    let dir = std::env::temp_dir().join(format!("scopekey-bench-idle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&format!("sqlite://{}/scopekey.db", dir.display())).unwrap();
    for i in 0..1000 {
        let target = RevocationTarget::Token {
            token_id: format!("idle-{i:06}").parse().unwrap(),
            expires_at: None,
        };
        store.revoke(target, "ops", "x").unwrap();
    }
    for ms in [10, 20] {
        let options = ReplicaOptions::default().poll_interval(Duration::from_millis(ms));
        let replica = Replica::start(&store, options).unwrap();
        std::thread::sleep(Duration::from_secs(1));
        let before = cpu_ticks();
        std::thread::sleep(Duration::from_secs(10));
        let used = cpu_ticks() - before;
        println!(
            "idle sqlite replica, {ms} ms poll: {:.2} s of CPU in 10 s ({:.1}% of one core), {} full reload(s)",
            used as f64 / 100.0,
            used as f64 / 10.0,
            replica.full_reloads()
        );
        drop(replica);
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
