//! The store at scale (issue #22): for each size (1,000,000 and 10,000,000 revocations by
//! default), on a SQLite file,
//!
//! - a replica's cold start (loading every revocation), and the bytes it holds per revoked
//!   token (its own estimate, and the process's resident memory grown over the load);
//! - a revocation lookup (half revoked ids, half not), median of five rounds of 1,000,000;
//! - what the idle replica costs (CPU time from `/proc/self/stat` over 10 s, nothing
//!   committed);
//! - applying 10,000 revocations committed in one transaction by another connection to the
//!   running replica (from the commit until the replica holds all of them);
//! - `Store::tokens` with `unused_since` (what `scopekey tokens --unused-since` runs) over an
//!   inventory of the same size, and the plan the database gives for it.
//!
//! A steady harness, not criterion: each figure is printed once per size. Run on a quiet
//! machine:
//!
//! ```sh
//! cargo bench --bench store                    # 1 M and 10 M (about 15 minutes, 6 GB of disk)
//! cargo bench --bench store -- --quick         # 100,000 only
//! SCOPEKEY_BENCH_STORE_SIZES=2000000 cargo bench --bench store
//! ```
//!
//! docs/performance.md ("The store at scale") has the figures and the machine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use scopekey::inventory::InventoryQuery;
use scopekey::revocation::{RevocationCheck, RevocationStatus, TokenFacts};
use scopekey::{KeyId, TokenId};
use scopekey_store::{Replica, ReplicaOptions, Store};
use sqlx::Connection as _;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Rows per `INSERT` statement while filling.
const CHUNK: usize = 1_000;

/// The `i`th token id: 16 bytes (a bijective mix of `i`) as scopekey generates them.
fn id(i: u64) -> String {
    let x = u128::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835) ^ 0x5bd1e995;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(x.to_le_bytes())
}

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

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs `sql` statements on their own connection to `url`, in one transaction.
fn exec_in_one_transaction(url: &str, statements: impl Iterator<Item = String>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        let mut tx = c.begin().await.unwrap();
        for sql in statements {
            sqlx::raw_sql(&sql).execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
    });
}

/// `INSERT`s of revocations numbered `from..to` (token ids `id(n)`, expiring a day from now).
fn revocation_inserts(from: u64, to: u64, now: i64) -> impl Iterator<Item = String> {
    (from..to).step_by(CHUNK).map(move |start| {
        let end = (start + CHUNK as u64).min(to);
        let mut sql = String::from(
            "INSERT INTO scopekey_revocations (id, kind, value, instant, revoked_by, revoked_at, reason) VALUES ",
        );
        for n in start..end {
            if n > start {
                sql.push(',');
            }
            sql.push_str(&format!(
                "({n},'token','{}',{},'ops',{now},'bench')",
                id(n),
                now + 86_400
            ));
        }
        sql
    })
}

fn run(n: u64, idle_secs: u64) {
    let dir = std::env::temp_dir().join(format!("scopekey-bench-store-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/scopekey.db", dir.display());
    let store = Store::open(&url).unwrap();
    let now = OffsetDateTime::now_utc().unix_timestamp();

    let t = Instant::now();
    exec_in_one_transaction(
        &url,
        revocation_inserts(1, n + 1, now).chain(std::iter::once(format!(
            "UPDATE scopekey_counters SET value = {n} WHERE name = 'revocations'"
        ))),
    );
    println!(
        "[{n}] filled {n} revocations in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // Cold start.
    let before = rss();
    let t = Instant::now();
    let replica = Replica::start(&store, ReplicaOptions::default()).unwrap();
    let cold = t.elapsed();
    let list = replica.revocations();
    assert_eq!(list.token_entries() as u64, n);
    let grown = rss().saturating_sub(before);
    println!(
        "[{n}] replica cold start: {:.2} s; {:.1} bytes per revoked token (estimate), {:.1} (resident memory grown)",
        cold.as_secs_f64(),
        list.memory_estimate() as f64 / n as f64,
        grown as f64 / n as f64
    );

    // Lookups: half revoked, half never revoked.
    let kid = KeyId::of_public_key_bytes(&[9; 32]).unwrap();
    let ids: Vec<TokenId> = (0..2_000_u64)
        .map(|i| {
            let k = if i % 2 == 0 {
                1 + (i * 7_919) % n
            } else {
                n + 1_000_000 + i
            };
            id(k).parse().unwrap()
        })
        .collect();
    let issued_at = OffsetDateTime::from_unix_timestamp(now).unwrap();
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut revoked = 0_u32;
        for i in 0..1_000_000_usize {
            let facts = TokenFacts {
                token_id: &ids[i % ids.len()],
                family: None,
                subject: "bench",
                issued_at,
                key_id: &kid,
            };
            if !matches!(
                std::hint::black_box(list.status_of(&facts)),
                RevocationStatus::NotRevoked
            ) {
                revoked += 1;
            }
        }
        assert_eq!(revoked, 500_000);
        rounds.push(t.elapsed().as_nanos() as f64 / 1e6);
    }
    println!(
        "[{n}] lookup: {:.0} ns median (5 rounds of 1,000,000, half revoked)",
        median(rounds)
    );

    // Idle.
    std::thread::sleep(Duration::from_secs(1));
    let ticks = cpu_ticks();
    std::thread::sleep(Duration::from_secs(idle_secs));
    let used = cpu_ticks() - ticks;
    println!(
        "[{n}] idle replica: {:.2} s of CPU in {idle_secs} s ({:.2}% of one core)",
        used as f64 / 100.0,
        used as f64 / idle_secs as f64
    );

    // 10,000 new revocations from another connection, one transaction.
    let t = Instant::now();
    exec_in_one_transaction(
        &url,
        revocation_inserts(n + 1, n + 10_001, now).chain(std::iter::once(format!(
            "UPDATE scopekey_counters SET value = {} WHERE name = 'revocations'",
            n + 10_000
        ))),
    );
    let committed = Instant::now();
    while (list.token_entries() as u64) < n + 10_000 {
        assert!(
            committed.elapsed() < Duration::from_secs(120),
            "not applied"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    println!(
        "[{n}] 10,000 new revocations: written in {:.0} ms, applied by the running replica {:.0} ms after the commit; {} full reload(s) in all",
        (committed - t).as_secs_f64() * 1e3,
        committed.elapsed().as_secs_f64() * 1e3,
        replica.full_reloads()
    );
    drop(list);
    drop(replica);

    // The inventory: n tokens issued over n seconds ending now, all used an hour ago but one in
    // ten thousand never used.
    let t = Instant::now();
    let kid_text = kid.as_str().to_owned();
    let start = now - n as i64;
    exec_in_one_transaction(
        &url,
        (0..n).step_by(CHUNK).map(|from| {
            let to = (from + CHUNK as u64).min(n);
            let mut sql = String::from(
                "INSERT INTO scopekey_tokens (jti, token_type, subject, owner, purpose, scopes, issued_at, expires_at, kid, family, last_used) VALUES ",
            );
            for i in from..to {
                if i > from {
                    sql.push(',');
                }
                let issued = start + i as i64;
                let used = if i % 10_000 == 0 { "NULL".to_owned() } else { (now - 3_600).to_string() };
                sql.push_str(&format!(
                    "('{}','access','consumer-{}',NULL,NULL,'projects:read',{issued},{},'{kid_text}',NULL,{used})",
                    id(i),
                    i % 1_000,
                    issued + 900,
                ));
            }
            sql
        }),
    );
    exec_in_one_transaction(&url, std::iter::once("ANALYZE".to_owned()));
    println!(
        "[{n}] filled {n} inventory rows in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // Unused for two hours: only the never-used ones issued more than two hours ago.
    let query = InventoryQuery::all()
        .unused_since(OffsetDateTime::from_unix_timestamp(now - 7_200).unwrap());
    let plan = store.tokens_plan(&query).unwrap().join("; ");
    let mut rounds = Vec::new();
    let mut found = 0;
    for _ in 0..5 {
        let t = Instant::now();
        found = store.tokens(&query).unwrap().len();
        rounds.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "[{n}] tokens --unused-since over {n} rows: {found} found in {:.1} ms median of 5; plan: {plan}",
        median(rounds)
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` run passes nothing and
    // should not fill gigabytes.
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        eprintln!("store: run with `cargo bench --bench store`");
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let sizes: Vec<u64> = match std::env::var("SCOPEKEY_BENCH_STORE_SIZES") {
        Ok(s) => s.split(',').map(|n| n.trim().parse().unwrap()).collect(),
        Err(_) if quick => vec![100_000],
        Err(_) => vec![1_000_000, 10_000_000],
    };
    for n in sizes {
        run(n, if quick { 5 } else { 10 });
    }
}
