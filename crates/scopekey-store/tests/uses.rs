//! Usage limits counted in the store, on a real SQLite file and a real PostgreSQL server:
//! instances sharing the store share each token's count, exactly.
//!
//! PostgreSQL tests read `SCOPEKEY_TEST_POSTGRES_URL`, as in `tests/store.rs` (skipped without
//! it, unless `CI=true`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scopekey::cache::GrantCache;
use scopekey::usage::{Consumption, UsageCounter};
use scopekey::{
    Issuer, SigningKey, TokenId, TokenRequest, Verifier, VerifierConfig, VerifyErrorKind,
};
use scopekey_store::{Replica, ReplicaOptions, Store};
use sqlx::Connection as _;
use std::sync::{Arc, Barrier};
use std::time::Duration;
use time::OffsetDateTime;

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";

/// A database for one test: a SQLite file in a fresh folder, or a fresh PostgreSQL database.
enum TestDb {
    Sqlite { dir: std::path::PathBuf },
    Postgres { admin: String, name: String },
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

impl TestDb {
    fn url(&self) -> String {
        match self {
            Self::Sqlite { dir } => format!("sqlite://{}/scopekey.db", dir.display()),
            Self::Postgres { admin, name } => {
                format!("{}/{name}", admin.rsplit_once('/').unwrap().0)
            }
        }
    }

    /// Runs raw SQL in this database, outside the store.
    fn exec(&self, sql: &str) {
        let url = self.url();
        block_on(async move {
            if url.starts_with("sqlite") {
                let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            } else {
                let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
        });
    }
}

fn admin_exec(admin: &str, sql: &str) {
    block_on(async move {
        let mut c = sqlx::PgConnection::connect(admin).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    });
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self {
            Self::Sqlite { dir } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Self::Postgres { admin, name } => {
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    admin_exec(admin, &sql)
                }));
            }
        }
    }
}

fn unique(test: &str) -> String {
    let n = TokenId::generate()
        .unwrap()
        .as_str()
        .to_lowercase()
        .replace(['-', '_'], "x");
    format!(
        "sk_{}_{}",
        test.chars().take(20).collect::<String>(),
        &n[..10]
    )
}

fn backends(test: &str) -> Vec<TestDb> {
    let dir = std::env::temp_dir().join(unique(test));
    std::fs::create_dir_all(&dir).unwrap();
    let mut dbs = vec![TestDb::Sqlite { dir }];
    match std::env::var("SCOPEKEY_TEST_POSTGRES_URL") {
        Ok(admin) if !admin.is_empty() => {
            let name = unique(test);
            admin_exec(&admin, &format!("CREATE DATABASE {name}"));
            dbs.push(TestDb::Postgres { admin, name });
        }
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: SCOPEKEY_TEST_POSTGRES_URL is not set and CI=true")
        }
        _ => eprintln!("{test}: PostgreSQL part SKIPPED: set SCOPEKEY_TEST_POSTGRES_URL"),
    }
    dbs
}

fn fast() -> ReplicaOptions {
    ReplicaOptions::default()
        .poll_interval(Duration::from_millis(100))
        .heartbeat(Duration::from_millis(200))
        .reconcile_interval(Duration::from_secs(1))
}

fn issuer(key: &SigningKey) -> Issuer {
    Issuer::new(
        SigningKey::from_paserk(&key.to_paserk()).unwrap(),
        ISS,
        "production".parse().unwrap(),
    )
    .unwrap()
}

fn request() -> TokenRequest {
    TokenRequest::new("ci", AUD, "projects:read".parse().unwrap())
}

/// One instance: its own store handle (own pool and runtime), replica and verifier with the
/// store's usage counter.
fn instance(url: &str) -> (Store, Replica, Verifier) {
    let store = Store::open(url).unwrap();
    let replica = Replica::start(&store, fast()).unwrap();
    let verifier = replica
        .verifier(VerifierConfig::new(ISS, AUD, "production".parse().unwrap()))
        .unwrap()
        .with_usage_counter(Arc::new(store.usage_counter()));
    (store, replica, verifier)
}

/// Two instances on one database, each with many threads verifying the same token (through
/// each instance's grant cache, so most verifications are cache hits): exactly N succeed, the
/// rest are refused as used up.
#[test]
fn concurrent_requests_on_two_instances_sharing_a_store_get_exactly_n_uses() {
    for db in backends("uses_concurrent") {
        let key = SigningKey::generate().unwrap();
        Store::open(&db.url())
            .unwrap()
            .add_key(key.public_key(), None)
            .unwrap();
        let a = instance(&db.url());
        let b = instance(&db.url());
        const N: u32 = 7;
        let minted = issuer(&key).issue(&request().max_uses(N)).unwrap();
        let token: Arc<str> = minted.token().as_str().into();
        let verifiers = [Arc::new(a.2), Arc::new(b.2)];
        let caches = [
            Arc::new(GrantCache::default()),
            Arc::new(GrantCache::default()),
        ];
        let threads = 16;
        let barrier = Arc::new(Barrier::new(threads));
        let outcomes: Vec<Result<(), VerifyErrorKind>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|i| {
                    let (v, c) = (verifiers[i % 2].clone(), caches[i % 2].clone());
                    let (token, barrier) = (token.clone(), barrier.clone());
                    s.spawn(move || {
                        barrier.wait();
                        (0..3)
                            .map(|_| {
                                v.verify_cached(&token, &c)
                                    .map(|_| ())
                                    .map_err(|e| e.kind())
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let ok = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(ok, N as usize, "{}: {outcomes:?}", db.url());
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Ok(()) | Err(VerifyErrorKind::UsesExhausted))),
            "{outcomes:?}"
        );
        // The count is in the store: a third instance, opened later, finds the token used up.
        let c = instance(&db.url());
        assert_eq!(
            c.2.verify(&token).unwrap_err().kind(),
            VerifyErrorKind::UsesExhausted
        );
        // Unlimited tokens never touch the table.
        let plain = issuer(&key).issue(&request()).unwrap();
        assert!(c.2.verify(plain.token().as_str()).is_ok());
        drop((a.0, a.1, b.0, b.1, c));
    }
}

/// A counter that cannot reach its table refuses use-limited tokens (and only those).
#[test]
fn a_counter_failure_refuses_the_token() {
    for db in backends("uses_failure") {
        let key = SigningKey::generate().unwrap();
        let (store, _replica, verifier) = instance(&db.url());
        store.add_key(key.public_key(), None).unwrap();
        let plain = issuer(&key).issue(&request()).unwrap();
        let limited = issuer(&key).issue(&request().max_uses(5)).unwrap();
        // Wait for the replica to trust the key.
        let start = std::time::Instant::now();
        while verifier.verify(plain.token().as_str()).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "key never arrived"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        verifier.verify(limited.token().as_str()).unwrap();
        db.exec("DROP TABLE scopekey_token_uses");
        let e = verifier.verify(limited.token().as_str()).unwrap_err();
        assert_eq!(e.kind(), VerifyErrorKind::UsageUnavailable, "{e}");
        assert!(verifier.verify(plain.token().as_str()).is_ok());
    }
}

/// Counts are kept until `keep_until`, and pruned after it.
#[test]
fn expired_counts_are_pruned_and_live_ones_kept() {
    for db in backends("uses_prune") {
        let store = Store::open(&db.url()).unwrap();
        let counter = store.usage_counter();
        let now = OffsetDateTime::now_utc();
        let (old, live) = (TokenId::generate().unwrap(), TokenId::generate().unwrap());
        let past = now - time::Duration::hours(2);
        let future = now + time::Duration::hours(2);
        assert_eq!(
            store.consume_token_use(&old, 1, past).unwrap(),
            Consumption::Counted { used: 1 }
        );
        assert_eq!(
            counter.consume(&live, 2, future).unwrap(),
            Consumption::Counted { used: 1 }
        );
        // The counter's own hourly pruning ran on that first use: the old count is gone.
        assert_eq!(store.prune_token_uses(now).unwrap(), 0);
        assert_eq!(
            store.consume_token_use(&old, 1, past).unwrap(),
            Consumption::Counted { used: 1 }
        );
        assert_eq!(store.prune_token_uses(now).unwrap(), 1);
        assert_eq!(
            counter.consume(&live, 2, future).unwrap(),
            Consumption::Counted { used: 2 }
        );
        assert_eq!(
            counter.consume(&live, 2, future).unwrap(),
            Consumption::Exhausted
        );
        drop(store);
        // Counts survive a restart.
        let store = Store::open(&db.url()).unwrap();
        assert_eq!(
            store.consume_token_use(&live, 2, future).unwrap(),
            Consumption::Exhausted
        );
    }
}
