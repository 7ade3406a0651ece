//! DPoP replay protection in the store, on a real SQLite file and a real PostgreSQL server:
//! two instances sharing the store refuse a proof replayed from one to the other.
//!
//! PostgreSQL tests read `SCOPEKEY_TEST_POSTGRES_URL`, as in `tests/store.rs` (skipped without
//! it, unless `CI=true`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scopekey::dpop::{DpopPolicy, DpopRequest, ProofBuilder, ReplayCache, ReplayCheck};
use scopekey::{
    Issuer, KeySet, Presentation, SigningKey, TokenId, TokenRequest, Verifier, VerifierConfig,
    VerifyErrorKind,
};
use scopekey_store::Store;
use sqlx::Connection as _;
use std::sync::Arc;

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";
const URL: &str = "https://api.example/projects/1";

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

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[test]
fn a_proof_replayed_to_another_instance_on_the_store_is_refused() {
    for db in backends("dpop_replay") {
        let key = SigningKey::generate().unwrap();
        let keys = KeySet::single(key.public_key().clone());
        let issuer = Issuer::new(key, ISS, "production".parse().unwrap()).unwrap();
        let client = SigningKey::generate().unwrap();
        let builder = ProofBuilder::new(&client);
        let token = issuer
            .issue(
                &TokenRequest::new("ci", AUD, "projects:read".parse().unwrap())
                    .bind_dpop(builder.jkt()),
            )
            .unwrap();
        let token = token.token().as_str();
        // Two instances: each its own store handle (pool) and verifier.
        let instance = || {
            let store = Store::open(&db.url()).unwrap();
            let verifier = Verifier::new(
                keys.clone(),
                VerifierConfig::new(ISS, AUD, "production".parse().unwrap()),
            )
            .unwrap()
            .with_dpop(DpopPolicy::new(Arc::new(store.replay_cache())));
            (store, verifier)
        };
        let (a_store, a) = instance();
        let (_b_store, b) = instance();
        let present = |v: &Verifier, proof: &str| {
            v.verify_presented(
                token,
                None,
                Presentation::new().dpop(DpopRequest::new(Some(proof), "GET", URL)),
            )
        };
        let proof = builder.proof("GET", URL, Some(token), None).unwrap();
        present(&a, &proof).unwrap();
        assert_eq!(
            present(&b, &proof).unwrap_err().kind(),
            VerifyErrorKind::DpopProofReplayed
        );
        assert_eq!(
            present(&a, &proof).unwrap_err().kind(),
            VerifyErrorKind::DpopProofReplayed
        );
        let next = builder.proof("GET", URL, Some(token), None).unwrap();
        present(&b, &next).unwrap();

        // Expired rows are taken again, and pruned.
        let cache = a_store.replay_cache();
        let t = now();
        assert_eq!(
            cache.check_and_insert(&[1; 32], t - 5, t - 10).unwrap(),
            ReplayCheck::Fresh
        );
        assert_eq!(
            cache.check_and_insert(&[1; 32], t - 5, t - 9).unwrap(),
            ReplayCheck::Replayed
        );
        assert_eq!(
            cache.check_and_insert(&[1; 32], t + 60, t).unwrap(),
            ReplayCheck::Fresh
        );
        assert_eq!(
            cache.check_and_insert(&[2; 32], t - 1, t - 2).unwrap(),
            ReplayCheck::Fresh
        );
        assert_eq!(a_store.prune_dpop_proofs(t).unwrap(), 1);
    }
}
