//! The store against a real SQLite file and a real PostgreSQL server.
//!
//! PostgreSQL tests read `SCOPEKEY_TEST_POSTGRES_URL` (a role allowed to create databases);
//! `.ci/run` starts a server and sets it. Without it they say they skipped, unless `CI=true`,
//! where a missing database is a failure. Each test works in a database of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scopekey::inventory::{Inventory, InventoryQuery};
use scopekey::refresh::{RefreshErrorKind, Refresher};
use scopekey::revocation::{
    RevocationCheck, RevocationStatus, RevocationTarget, Revoker, TokenFacts,
};
use scopekey::{
    Issuer, KeyId, PublicKey, SigningKey, TokenId, TokenRequest, VerifierConfig, VerifyErrorKind,
};
use scopekey_store::{
    CLIENT_SECRET_PREFIX, MAX_CLIENT_SECRET_LEN, Replica, ReplicaOptions, SecretCheck, Store,
    StoreErrorKind,
};
use sqlx::Connection as _;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";

/// A database for one test: a SQLite file in a fresh folder, or a fresh PostgreSQL database.
enum TestDb {
    Sqlite { dir: std::path::PathBuf },
    Postgres { admin: String, name: String },
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

impl TestDb {
    fn url(&self) -> String {
        match self {
            Self::Sqlite { dir } => format!("sqlite://{}/scopekey.db", dir.display()),
            Self::Postgres { admin, name } => {
                let base = admin.rsplit_once('/').unwrap().0;
                format!("{base}/{name}")
            }
        }
    }

    fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres { .. })
    }

    /// Runs raw SQL in this database, outside the store (to corrupt rows, break connections).
    fn exec(&self, sql: &str) {
        let url = self.url();
        let sql = sql.to_owned();
        runtime().block_on(async move {
            if url.starts_with("sqlite") {
                let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::raw_sql(&sql).execute(&mut c).await.unwrap();
            } else {
                let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                sqlx::raw_sql(&sql).execute(&mut c).await.unwrap();
            }
        });
    }

    /// The first column of the first row `sql` returns, as text.
    fn fetch_text(&self, sql: &str) -> String {
        let url = self.url();
        let sql = sql.to_owned();
        runtime().block_on(async move {
            if url.starts_with("sqlite") {
                let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query_scalar(&sql).fetch_one(&mut c).await.unwrap()
            } else {
                let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                sqlx::query_scalar(&sql).fetch_one(&mut c).await.unwrap()
            }
        })
    }

    /// Runs raw SQL on the PostgreSQL server from the admin database.
    fn admin_exec(&self, sql: &str) {
        let Self::Postgres { admin, .. } = self else {
            unreachable!()
        };
        let (admin, sql) = (admin.clone(), sql.to_owned());
        runtime().block_on(async move {
            let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::raw_sql(&sql).execute(&mut c).await.unwrap();
        });
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self {
            Self::Sqlite { dir } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Self::Postgres { name, .. } => {
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.admin_exec(&sql)
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

fn sqlite(test: &str) -> TestDb {
    let dir = std::env::temp_dir().join(unique(test));
    std::fs::create_dir_all(&dir).unwrap();
    TestDb::Sqlite { dir }
}

fn postgres(test: &str) -> Option<TestDb> {
    match std::env::var("SCOPEKEY_TEST_POSTGRES_URL") {
        Ok(admin) if !admin.is_empty() => {
            let db = TestDb::Postgres {
                admin,
                name: unique(test),
            };
            let TestDb::Postgres { name, .. } = &db else {
                unreachable!()
            };
            db.admin_exec(&format!("CREATE DATABASE {name}"));
            Some(db)
        }
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "{test}: SCOPEKEY_TEST_POSTGRES_URL is not set and CI=true: PostgreSQL tests must run in CI"
            )
        }
        _ => {
            eprintln!(
                "{test}: PostgreSQL part SKIPPED: set SCOPEKEY_TEST_POSTGRES_URL (e.g. the URL printed by `bash .ci/postgres.sh`)"
            );
            None
        }
    }
}

fn backends(test: &str) -> Vec<TestDb> {
    let mut dbs = vec![sqlite(test)];
    dbs.extend(postgres(test));
    dbs
}

fn fast() -> ReplicaOptions {
    ReplicaOptions::default()
        .poll_interval(Duration::from_millis(100))
        .heartbeat(Duration::from_millis(200))
        .reconcile_interval(Duration::from_secs(1))
}

fn config() -> VerifierConfig {
    VerifierConfig::new(ISS, AUD, "production".parse().unwrap())
}

fn issuer(key: &SigningKey) -> Issuer {
    Issuer::new(
        SigningKey::from_paserk(&key.to_paserk()).unwrap(),
        ISS,
        "production".parse().unwrap(),
    )
    .unwrap()
}

fn mint(issuer: &Issuer, subject: &str) -> (String, TokenId) {
    let m = issuer
        .issue(&TokenRequest::new(
            subject,
            AUD,
            "projects:read".parse().unwrap(),
        ))
        .unwrap();
    (m.token().as_str().to_owned(), m.claims().token_id().clone())
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

#[test]
fn revocations_survive_a_restart() {
    for db in backends("restart") {
        let key = SigningKey::generate().unwrap();
        let (token, jti) = mint(&issuer(&key), "ci");
        let (other, _) = mint(&issuer(&key), "other");
        {
            let store = Store::open(&db.url()).unwrap();
            store.add_key(key.public_key(), None).unwrap();
            let replica = Replica::start(&store, fast()).unwrap();
            let verifier = replica.verifier(config()).unwrap();
            assert!(verifier.verify(&token).is_ok());
            replica
                .revoke(
                    RevocationTarget::Token {
                        token_id: jti,
                        expires_at: None,
                    },
                    "alice",
                    "leak",
                )
                .unwrap();
            assert_eq!(
                verifier.verify(&token).unwrap_err().kind(),
                VerifyErrorKind::Revoked
            );
        } // every handle dropped
        let store = Store::open(&db.url()).unwrap();
        let replica = Replica::start(&store, fast()).unwrap();
        let verifier = replica.verifier(config()).unwrap();
        assert_eq!(
            verifier.verify(&token).unwrap_err().kind(),
            VerifyErrorKind::Revoked,
            "{}",
            db.url()
        );
        assert!(verifier.verify(&other).is_ok());
        let records = store.revocations_after(0).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(
            (records[0].1.by(), records[0].1.reason()),
            ("alice", "leak")
        );
    }
}

/// Two independent handles (separate pools, as two instances would have): a revocation
/// written through one is refused by the other. Measured over 100 revocations.
#[test]
fn revocations_propagate_between_instances() {
    for db in backends("propagation") {
        let a = Store::open(&db.url()).unwrap();
        let b = Store::open(&db.url()).unwrap();
        let key = SigningKey::generate().unwrap();
        a.add_key(key.public_key(), None).unwrap();
        let writer = Replica::start(&a, fast()).unwrap();
        let reader = Replica::start(&b, ReplicaOptions::default()).unwrap();
        let kid = key.key_id().clone();
        let mut samples = Vec::new();
        for i in 0..100 {
            let jti: TokenId = format!("prop-{i}").parse().unwrap();
            writer
                .revoke(
                    RevocationTarget::Token {
                        token_id: jti.clone(),
                        expires_at: None,
                    },
                    "bench",
                    "propagation",
                )
                .unwrap();
            let facts = TokenFacts {
                token_id: &jti,
                family: None,
                subject: "s",
                issued_at: OffsetDateTime::now_utc(),
                key_id: &kid,
            };
            let took = wait_until(Duration::from_secs(5), || {
                matches!(reader.status_of(&facts), RevocationStatus::Revoked(_))
            })
            .unwrap_or_else(|| panic!("revocation {i} never reached the other instance"));
            samples.push(took);
        }
        samples.sort();
        let (median, p99, max) = (samples[50], samples[98], samples[99]);
        let (backend, bound) = if db.is_postgres() {
            ("postgres", Duration::from_millis(100))
        } else {
            ("sqlite", Duration::from_millis(100))
        };
        eprintln!(
            "propagation {backend}: n=100 median={:.1} ms p99={:.1} ms max={:.1} ms",
            median.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        );
        // The bound is asserted on the 99th percentile, so one scheduling hiccup on a loaded
        // CI machine does not fail the suite; the slowest must still be within a second.
        assert!(
            p99 <= bound,
            "{backend}: p99 propagation {p99:?} above {bound:?}"
        );
        assert!(
            max <= Duration::from_secs(1).max(bound),
            "{backend}: slowest propagation {max:?}"
        );
    }
}

#[test]
fn a_key_rotation_reaches_another_instance_without_a_restart() {
    for db in backends("rotation") {
        let admin = Store::open(&db.url()).unwrap();
        let old = SigningKey::generate().unwrap();
        let new = SigningKey::generate().unwrap();
        admin.add_key(old.public_key(), None).unwrap();
        let other = Store::open(&db.url()).unwrap();
        let replica = Replica::start(&other, fast()).unwrap();
        let verifier = replica.verifier(config()).unwrap();
        let (old_token, _) = mint(&issuer(&old), "svc");
        let (new_token, _) = mint(&issuer(&new), "svc");
        assert!(verifier.verify(&old_token).is_ok());
        assert_eq!(
            verifier.verify(&new_token).unwrap_err().kind(),
            VerifyErrorKind::UnknownKey
        );

        admin.add_key(new.public_key(), None).unwrap();
        assert!(admin.retire_key(old.key_id(), None).unwrap());
        let switched = wait_until(Duration::from_secs(3), || {
            verifier.verify(&new_token).is_ok()
                && verifier
                    .verify(&old_token)
                    .map(|_| ())
                    .map_err(|e| e.kind())
                    == Err(VerifyErrorKind::UnknownKey)
        });
        assert!(
            switched.is_some(),
            "{}: rotation did not reach the other instance",
            db.url()
        );
        let keys = admin.key_set().unwrap();
        assert_eq!(keys.len(), 2);
        assert!(
            !admin
                .retire_key(&KeyId::of_public_key_bytes(&[9; 32]).unwrap(), None)
                .unwrap()
        );
    }
}

#[test]
fn concurrent_refresh_yields_exactly_one_new_pair() {
    for db in backends("refresh") {
        let store = Store::open(&db.url()).unwrap();
        let key = SigningKey::generate().unwrap();
        store.add_key(key.public_key(), None).unwrap();
        let replica = Arc::new(Replica::start(&store, fast()).unwrap());
        let refresher = Arc::new(
            Refresher::new(
                issuer(&key),
                AUD,
                replica.keys(),
                replica.clone(),
                Arc::new(store.families()),
            )
            .unwrap(),
        );
        let pair = refresher
            .start(&TokenRequest::new(
                "app",
                AUD,
                "projects:read".parse().unwrap(),
            ))
            .unwrap();
        let token = pair.refresh().token().as_str().to_owned();
        let n = 12;
        let barrier = Arc::new(Barrier::new(n));
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let (r, t, b) = (refresher.clone(), token.clone(), barrier.clone());
                std::thread::spawn(move || {
                    b.wait();
                    r.exchange(&t, None).map(|_| ()).map_err(|e| e.kind())
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 1, "{}: {results:?}", db.url());
        assert!(results.iter().all(|r| matches!(
            r,
            Ok(()) | Err(RefreshErrorKind::Reused | RefreshErrorKind::Invalid)
        )));
        // The losers detected reuse, so the whole family is revoked, winner's tokens included,
        // by exactly one revocation however many losers there were.
        let family_revocations = store
            .revocations_after(0)
            .unwrap()
            .iter()
            .filter(|(_, r)| r.target().kind() == "family")
            .count();
        assert_eq!(family_revocations, 1, "{}", db.url());
        let verifier = replica.verifier(config()).unwrap();
        assert_eq!(
            verifier
                .verify(pair.access().token().as_str())
                .unwrap_err()
                .kind(),
            VerifyErrorKind::Revoked
        );
    }
}

#[test]
fn corrupt_rows_are_errors_never_not_revoked() {
    for db in backends("garbage") {
        let store = Store::open(&db.url()).unwrap();
        let key = SigningKey::generate().unwrap();
        store.add_key(key.public_key(), None).unwrap();
        let replica = Replica::start(&store, fast().max_staleness(Duration::from_secs(2))).unwrap();
        let verifier = replica.verifier(config()).unwrap();
        let (token, jti) = mint(&issuer(&key), "ci");
        store
            .revoke(
                RevocationTarget::Token {
                    token_id: jti,
                    expires_at: None,
                },
                "ops",
                "x",
            )
            .unwrap();
        // The next number, written by something else, does not parse. (A running replica reads
        // each row once, when it arrives: one it already applied and that is then edited in
        // place is not read again; it stays revoked there.)
        db.exec(
            "UPDATE scopekey_counters SET value = value + 1 WHERE name = 'revocations'; \
             INSERT INTO scopekey_revocations (id, kind, value, instant, revoked_by, revoked_at, reason) \
             VALUES (2, 'bogus', 'x', NULL, 'ops', 0, 'x')",
        );
        let e = store.revocations_after(0).unwrap_err();
        assert_eq!(e.kind(), StoreErrorKind::Corrupt);
        assert!(e.to_string().contains("scopekey_revocations row 2"), "{e}");
        assert!(e.to_string().contains("bogus"), "{e}");
        // A new replica refuses to start on it; a running one reports the error and, past its
        // bound, fails closed instead of answering "not revoked".
        assert_eq!(
            Replica::start(&store, fast()).unwrap_err().kind(),
            StoreErrorKind::Corrupt
        );
        let failed = wait_until(Duration::from_secs(5), || {
            verifier.verify(&token).map(|_| ()).map_err(|e| e.kind())
                == Err(VerifyErrorKind::RevocationStale)
        });
        assert!(
            failed.is_some(),
            "{}: {:?}",
            db.url(),
            verifier.verify(&token).map(|_| ())
        );
        assert!(replica.last_error().unwrap().contains("bogus"));

        // A key row that does not import is corrupt too.
        db.exec("UPDATE scopekey_keys SET public_key = 'k4.public.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'");
        let e = store.key_set().unwrap_err();
        assert_eq!(e.kind(), StoreErrorKind::Corrupt);
        assert!(e.to_string().contains("small order"), "{e}");
    }
}

#[test]
fn a_broken_postgres_connection_loses_nothing_and_fails_closed_past_the_bound() {
    let Some(db) = postgres("fault") else { return };
    let TestDb::Postgres { name, .. } = &db else {
        unreachable!()
    };
    let name = name.clone();
    let writer_store = Store::open(&db.url()).unwrap();
    let key = SigningKey::generate().unwrap();
    writer_store.add_key(key.public_key(), None).unwrap();
    let reader_store = Store::open(&db.url()).unwrap();
    let options = fast().max_staleness(Duration::from_secs(3));
    let reader = Replica::start(&reader_store, options).unwrap();
    let verifier = reader.verifier(config()).unwrap();
    let issuer = issuer(&key);
    let (a, a_jti) = mint(&issuer, "a");
    let (b, _) = mint(&issuer, "b");
    assert!(verifier.verify(&a).is_ok());

    // Break every connection (the reader's listener and pools), then revoke at once.
    let terminate = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    );
    db.admin_exec(&terminate);
    writer_store
        .revoke(
            RevocationTarget::Token {
                token_id: a_jti,
                expires_at: None,
            },
            "ops",
            "during outage",
        )
        .unwrap();
    let seen = wait_until(Duration::from_secs(5), || {
        verifier.verify(&a).map(|_| ()).map_err(|e| e.kind()) == Err(VerifyErrorKind::Revoked)
    });
    assert!(
        seen.is_some(),
        "the revocation made while disconnected was lost"
    );
    assert!(verifier.verify(&b).is_ok());

    // Keep the reader out longer than its bound: it fails closed.
    db.admin_exec(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"));
    db.admin_exec(&terminate);
    let closed = wait_until(Duration::from_secs(10), || {
        verifier.verify(&b).map(|_| ()).map_err(|e| e.kind())
            == Err(VerifyErrorKind::RevocationStale)
    });
    db.admin_exec(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"));
    assert!(
        closed.is_some(),
        "verification did not fail closed while the store was unreachable"
    );
    assert!(reader.last_error().is_some());

    // And it recovers by itself when the store is back.
    let recovered = wait_until(Duration::from_secs(10), || verifier.verify(&b).is_ok());
    assert!(
        recovered.is_some(),
        "the replica did not recover: {:?}",
        reader.last_error()
    );
    // The listener's reconnection reloads everything (the start was the first load). It may
    // come after verification recovered: the heartbeat reads go on while it backs off.
    assert!(
        wait_until(Duration::from_secs(10), || reader.full_reloads() >= 2).is_some(),
        "{} full reloads",
        reader.full_reloads()
    );
}

#[test]
fn inventory_and_audit_live_in_the_store() {
    for db in backends("inventory") {
        let store = Store::open(&db.url()).unwrap();
        let key = SigningKey::generate().unwrap();
        store.add_key(key.public_key(), None).unwrap();
        let inventory = Arc::new(store.inventory().unwrap());
        let audit = Arc::new(store.audit_sink().unwrap());
        let issuer = issuer(&key)
            .with_inventory(inventory.clone())
            .with_audit(audit.clone());
        let replica = Replica::start(&store, fast()).unwrap();
        let verifier = replica
            .verifier(config())
            .unwrap()
            .with_inventory(inventory.clone())
            .with_audit(audit.clone());
        let minted = issuer
            .issue(
                &TokenRequest::new("reporter", AUD, "projects:read".parse().unwrap())
                    .owner("team-data")
                    .purpose("weekly report"),
            )
            .unwrap();
        verifier.verify(minted.token().as_str()).unwrap();
        assert!(inventory.flush(Duration::from_secs(10)));
        assert!(audit.flush(Duration::from_secs(10)));

        let rec = inventory.get(minted.claims().token_id()).unwrap().unwrap();
        assert_eq!(rec.owner(), Some("team-data"));
        assert_eq!(rec.scopes().to_string(), "projects:read");
        assert!(
            rec.last_used().is_some(),
            "{}: last use not recorded",
            db.url()
        );
        let by_owner = inventory
            .query(&InventoryQuery::all().owner("team-data"))
            .unwrap();
        assert_eq!(by_owner.len(), 1);

        let log = store.audit_log(0, 100).unwrap();
        let kinds: Vec<String> = log
            .iter()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(kinds, ["issued", "verified"], "{}", db.url());
        assert!(log.iter().all(|l| !l.contains(minted.token().as_str())));
    }
}

#[test]
fn urls_are_checked_and_passwords_never_shown() {
    let e = Store::open("redis://user:hunter2@localhost/0").unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::UnsupportedUrl);
    assert!(!e.to_string().contains("hunter2"));
    let e = Store::open("postgres://user:hunter2@127.0.0.1:1/nope").unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::Connect);
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

/// The store filters in SQL; it must answer exactly what the in-memory inventory answers.
#[test]
fn store_queries_agree_with_the_in_memory_inventory() {
    use scopekey::inventory::{MemoryInventory, TokenRecord, TokenRecordParts};
    for db in backends("querydiff") {
        let store = Store::open(&db.url()).unwrap();
        let memory = MemoryInventory::new();
        let t = |s: i64| OffsetDateTime::from_unix_timestamp(1_900_000_000 + s).unwrap();
        let kid = KeyId::of_public_key_bytes(&[1; 32]).unwrap();
        let rows = [
            ("a", Some("o1"), 0, 100, None),
            ("a", Some("o2"), 10, 50, Some(40)),
            ("b", None, 20, 200, Some(20)),
            ("b", Some("o1"), 30, 30 + 3600, Some(90)),
            ("c", Some("o1"), 50, 60, None),
            ("c", None, 60, 61, Some(61)),
        ];
        for (i, (sub, owner, iat, exp, used)) in rows.into_iter().enumerate() {
            let record: TokenRecord = TokenRecordParts {
                token_id: format!("tok-{i}").parse().unwrap(),
                token_type: scopekey::TokenType::Access,
                subject: sub.into(),
                owner: owner.map(Into::into),
                purpose: None,
                scopes: "a:read".parse().unwrap(),
                issued_at: t(iat),
                expires_at: t(exp),
                key_id: kid.clone(),
                family: None,
                last_used: used.map(t),
            }
            .into();
            store.record_token(&record).unwrap();
            memory.record_issued(record).unwrap();
        }
        let q = InventoryQuery::all;
        let queries = [
            q(),
            q().subject("a"),
            q().subject("zz"),
            q().owner("o1"),
            q().subject("b").owner("o1"),
            q().live_at(t(50)),
            q().live_at(t(60)),
            q().live_at(t(61)),
            q().expiring_before(t(60)),
            q().expiring_before(t(61)),
            q().unused_since(t(20)),
            q().unused_since(t(21)),
            q().unused_since(t(61)).live_at(t(55)),
            q().owner("o1")
                .live_at(t(0))
                .unused_since(t(100))
                .expiring_before(t(5000)),
        ];
        for query in &queries {
            let ids = |v: Vec<TokenRecord>| {
                v.into_iter()
                    .map(|r| r.token_id().to_string())
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                ids(store.tokens(query).unwrap()),
                ids(memory.query(query).unwrap()),
                "{}: {query:?}",
                db.url()
            );
        }
    }
}

/// Dropping the store handle, then the sink, loses no queued audit event.
#[test]
fn queued_audit_events_survive_dropping_the_handles() {
    use scopekey::audit::{AuditEvent, AuditKind, AuditSink};
    for db in backends("auditdrop") {
        let store = Store::open(&db.url()).unwrap();
        let sink = store.audit_sink().unwrap();
        drop(store);
        let at = OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
        for _ in 0..300 {
            sink.record(&AuditEvent::bare(at, AuditKind::Verified))
                .unwrap();
        }
        drop(sink); // waits for the queue to be written
        let store = Store::open(&db.url()).unwrap();
        assert_eq!(store.audit_log(0, 1000).unwrap().len(), 300, "{}", db.url());
    }
}

/// The request path's audit, summarized into the store: a flood of garbage and of valid
/// requests from two threads refuses no valid one, and the store's trail counts every
/// decision exactly.
#[test]
fn a_summarized_trail_keeps_up_with_a_flood_and_counts_exactly() {
    use scopekey::audit::{SummarizingSink, SummaryConfig};
    for db in backends("summaries") {
        let store = Store::open(&db.url()).unwrap();
        let key = SigningKey::generate().unwrap();
        store.add_key(key.public_key(), None).unwrap();
        let raw = Arc::new(store.audit_sink().unwrap());
        let summaries = Arc::new(
            SummarizingSink::new(
                raw.clone(),
                SummaryConfig::default().interval(Duration::from_millis(50)),
            )
            .unwrap(),
        );
        let replica = Replica::start(&store, fast()).unwrap();
        let verifier = Arc::new(
            replica
                .verifier(config())
                .unwrap()
                .with_audit(summaries.clone()),
        );
        let (token, jti) = mint(&issuer(&key), "flood");
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (verifier, token) = (verifier.clone(), token.clone());
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        verifier.verify(&token).unwrap();
                        for _ in 0..5 {
                            assert_eq!(
                                verifier.verify("v4.public.garbage").unwrap_err().kind(),
                                VerifyErrorKind::Malformed
                            );
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        summaries.flush().unwrap();
        assert!(raw.flush(Duration::from_secs(10)));
        let log = store.audit_log(0, 1_000_000).unwrap();
        let (mut refused, mut verified) = (0, 0);
        for line in &log {
            let e: serde_json::Value = serde_json::from_str(line).unwrap();
            match e["event"].as_str().unwrap() {
                "refused_summary" => {
                    assert_eq!(e["reason"], "malformed");
                    refused += e["count"].as_u64().unwrap();
                }
                "token_used" => {
                    assert_eq!(e["jti"], jti.as_str());
                    verified += e["verified"].as_u64().unwrap();
                }
                other => panic!("unexpected {other} in {line}"),
            }
        }
        assert_eq!((refused, verified), (100_000, 20_000), "{}", db.url());
        // Summaries, not 120,000 rows.
        assert!(log.len() < 2_000, "{} rows", log.len());
    }
}

/// Batches larger than one multi-row INSERT statement land whole and in order.
#[test]
fn audit_batches_span_several_statements_in_order() {
    use scopekey::audit::{AuditEvent, AuditKind};
    for db in backends("auditbatch") {
        let store = Store::open(&db.url()).unwrap();
        let events: Vec<AuditEvent> = (0..1_234)
            .map(|i| {
                let mut e = AuditEvent::bare(OffsetDateTime::now_utc(), AuditKind::Verified);
                e.sub = Some(format!("consumer-{i}"));
                e
            })
            .collect();
        store.append_audit(events).unwrap();
        let log = store.audit_log(0, 10_000).unwrap();
        assert_eq!(log.len(), 1_234, "{}", db.url());
        for (i, line) in log.iter().enumerate() {
            let e: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(e["sub"], format!("consumer-{i}"));
        }
    }
}

/// Store-backed revocations (through a replica, and consumer disable) write their `revoked`
/// event in the same transaction.
#[test]
fn store_revocations_are_in_the_trail() {
    use scopekey::consumer::Consumer;
    for db in backends("revokedtrail") {
        let store = Store::open(&db.url()).unwrap();
        let replica = Replica::start(&store, fast()).unwrap();
        let jti = TokenId::generate().unwrap();
        replica
            .revoke(
                RevocationTarget::Token {
                    token_id: jti.clone(),
                    expires_at: None,
                },
                "alice",
                "leaked in a log",
            )
            .unwrap();
        store
            .add_consumer(
                &Consumer::new(
                    "ci",
                    "team",
                    "deploys",
                    "production".parse().unwrap(),
                    "a:read".parse().unwrap(),
                )
                .unwrap(),
            )
            .unwrap();
        assert!(
            store
                .disable_consumer("ci", "bob", "offboarded")
                .unwrap()
                .is_some()
        );
        let events: Vec<serde_json::Value> = store
            .audit_log(0, 100)
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0]["event"], "revoked");
        assert_eq!(events[0]["target"], "token");
        assert_eq!(events[0]["jti"], jti.as_str());
        assert_eq!(events[0]["by"], "alice");
        assert_eq!(events[0]["reason"], "leaked in a log");
        assert_eq!(events[1]["target"], "subject");
        assert_eq!(events[1]["sub"], "ci");
        assert_eq!(events[1]["by"], "bob");
    }
}

/// A revocation whose transaction is held open is numbered before the hundred revocations
/// that start after it: they wait for it (the revocation counter's row lock), so none can
/// commit ahead of it, and a replica reading numbers in order never skips it. It is applied
/// within the replica's staleness bound of its commit. A writer that still takes an id from
/// the table's old sequence is refused rather than racing the counter.
#[test]
fn a_late_committed_revocation_is_applied_within_the_staleness_bound() {
    let Some(db) = postgres("latecommit") else {
        return;
    };
    let store = Store::open(&db.url()).unwrap();
    let key = SigningKey::generate().unwrap();
    store.add_key(key.public_key(), None).unwrap();
    let options = ReplicaOptions::default()
        .max_staleness(Duration::from_secs(2))
        .heartbeat(Duration::from_millis(200))
        .reconcile_interval(Duration::from_secs(3600));
    let writer = Arc::new(Replica::start(&store, options.clone()).unwrap());
    let reader = Replica::start(&Store::open(&db.url()).unwrap(), options).unwrap();
    let kid = key.key_id().clone();
    let late: TokenId = "late-commit".parse().unwrap();
    let facts = |jti: &TokenId| {
        let jti = jti.clone();
        let kid = kid.clone();
        move |r: &Replica| {
            matches!(
                r.status_of(&TokenFacts {
                    token_id: &jti,
                    family: None,
                    subject: "s",
                    issued_at: OffsetDateTime::now_utc(),
                    key_id: &kid,
                }),
                RevocationStatus::Revoked(_)
            )
        }
    };
    let rt = runtime();
    let url = db.url();
    let mut conn = rt.block_on(sqlx::PgConnection::connect(&url)).unwrap();
    // The old way, an id from the sequence, is refused.
    let old = rt.block_on(
        sqlx::raw_sql(
            "INSERT INTO scopekey_revocations (kind, value, instant, revoked_by, revoked_at, reason) \
             VALUES ('token', 'old-writer', NULL, 'test', 0, 'old')",
        )
        .execute(&mut conn),
    );
    assert!(
        old.is_err(),
        "a revocation without a counter number was accepted"
    );
    // A revocation written as the store writes it, in a transaction left open, dated now (one
    // of unknown expiry dated 1970 would be purged as past the list's retention).
    rt.block_on(
        sqlx::raw_sql(
            "BEGIN; \
             WITH n AS (UPDATE scopekey_counters SET value = value + 1 WHERE name = 'revocations' RETURNING value) \
             INSERT INTO scopekey_revocations (id, kind, value, instant, revoked_by, revoked_at, reason) \
             SELECT n.value, 'token', 'late-commit', NULL, 'test', CAST(EXTRACT(EPOCH FROM now()) AS BIGINT), 'late' FROM n",
        )
        .execute(&mut conn),
    )
    .unwrap();
    let later: Vec<TokenId> = (0..100)
        .map(|i| format!("after-{i}").parse().unwrap())
        .collect();
    let w = writer.clone();
    let ids = later.clone();
    let after = std::thread::spawn(move || {
        for jti in ids {
            w.revoke(
                RevocationTarget::Token {
                    token_id: jti,
                    expires_at: None,
                },
                "test",
                "after",
            )
            .unwrap();
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !facts(&later[0])(&reader),
        "a revocation committed ahead of one begun before it"
    );
    rt.block_on(sqlx::raw_sql("COMMIT").execute(&mut conn))
        .unwrap();
    let took = wait_until(Duration::from_secs(5), || facts(&late)(&reader));
    assert!(
        took.is_some_and(|t| t <= Duration::from_millis(2600)),
        "the late revocation was not applied within the 2 s bound: {took:?}"
    );
    after.join().unwrap();
    let all = wait_until(Duration::from_secs(5), || {
        later.iter().all(|j| facts(j)(&reader))
    });
    assert!(all.is_some(), "a later revocation was missed");
    // Numbers are gap-free: nothing here made the reader reload everything.
    assert_eq!(reader.resyncs(), 0);
}

/// A replica that reads a revocation number out of sequence (a row it never saw: deleted, or
/// written outside the counter) reloads everything before it reports itself current again.
#[test]
fn a_gap_in_the_revocation_numbers_makes_the_replica_reload() {
    for db in backends("gap") {
        let store = Store::open(&db.url()).unwrap();
        let key = SigningKey::generate().unwrap();
        store.add_key(key.public_key(), None).unwrap();
        let options = fast().reconcile_interval(Duration::from_secs(3600));
        let replica = Replica::start(&store, options).unwrap();
        let verifier = replica.verifier(config()).unwrap();
        let issuer = issuer(&key);
        let (first, first_jti) = mint(&issuer, "a");
        let (skipped, skipped_jti) = mint(&issuer, "b");
        replica
            .revoke(
                RevocationTarget::Token {
                    token_id: first_jti,
                    expires_at: None,
                },
                "ops",
                "first",
            )
            .unwrap();
        assert_eq!(replica.resyncs(), 0);
        // Number 3 arrives while 2 never will.
        db.exec(&format!(
            "UPDATE scopekey_counters SET value = 3 WHERE name = 'revocations'; \
             INSERT INTO scopekey_revocations (id, kind, value, instant, revoked_by, revoked_at, reason) \
             VALUES (3, 'token', '{}', NULL, 'ops', 0, 'written past a hole')",
            skipped_jti.as_str()
        ));
        let seen = wait_until(Duration::from_secs(5), || {
            verifier.verify(&skipped).map(|_| ()).map_err(|e| e.kind())
                == Err(VerifyErrorKind::Revoked)
        });
        assert!(
            seen.is_some(),
            "{}: the row past the hole was not applied",
            db.url()
        );
        assert!(
            wait_until(Duration::from_secs(5), || replica.resyncs() == 1).is_some(),
            "{}: the gap did not cause a reload: {} reloads",
            db.url(),
            replica.resyncs()
        );
        assert!(
            wait_until(Duration::from_secs(5), || replica.full_reloads() == 2).is_some(),
            "{}: {} full reloads (the start and the gap expected)",
            db.url(),
            replica.full_reloads()
        );
        assert_eq!(
            verifier.verify(&first).unwrap_err().kind(),
            VerifyErrorKind::Revoked
        );
        // Following on from 3, the next number is 4: no further reload.
        let (third, third_jti) = mint(&issuer, "c");
        store
            .revoke(
                RevocationTarget::Token {
                    token_id: third_jti,
                    expires_at: None,
                },
                "ops",
                "after the hole",
            )
            .unwrap();
        assert!(wait_until(Duration::from_secs(5), || verifier.verify(&third).is_err()).is_some());
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(replica.resyncs(), 1, "{}", db.url());
        assert_eq!(replica.full_reloads(), 2, "{}", db.url());
    }
}

/// Reuse detection kills the family and records its revocation (with the `revoked` event) in
/// one store transaction: even if the process dies right after it (here: the local revoker
/// fails), the store holds the revocation, and a fresh replica refuses the family's tokens.
#[test]
fn reuse_detection_records_the_family_revocation_in_the_same_transaction() {
    use scopekey::revocation::{Revocation, RevocationList, RevokeError, RevokeErrorKind, Revoker};

    /// Checks an empty list; every write fails, as if the process died after the store's commit.
    #[derive(Debug, Default)]
    struct DiesAfterCommit(RevocationList);
    impl RevocationCheck for DiesAfterCommit {
        fn status_of(&self, t: &TokenFacts<'_>) -> RevocationStatus {
            self.0.status_of(t)
        }
    }
    impl Revoker for DiesAfterCommit {
        fn revoke(
            &self,
            _: RevocationTarget,
            _: &str,
            _: &str,
        ) -> Result<Arc<Revocation>, RevokeError> {
            Err(RevokeError::new(RevokeErrorKind::Store, "process gone"))
        }
        fn adopt(&self, _: Arc<Revocation>) -> Result<Arc<Revocation>, RevokeError> {
            Err(RevokeError::new(RevokeErrorKind::Store, "process gone"))
        }
    }

    for db in backends("reusetx") {
        let store = Store::open(&db.url()).unwrap();
        let key = SigningKey::generate().unwrap();
        store.add_key(key.public_key(), None).unwrap();
        let keys = scopekey::KeySet::single(key.public_key().clone());
        let refresher = Refresher::new(
            issuer(&key),
            AUD,
            keys,
            Arc::new(DiesAfterCommit::default()),
            Arc::new(store.families()),
        )
        .unwrap();
        let first = refresher
            .start(&TokenRequest::new(
                "app",
                AUD,
                "projects:read".parse().unwrap(),
            ))
            .unwrap();
        let second = refresher
            .exchange(first.refresh().token().as_str(), None)
            .unwrap();
        let replayed = refresher
            .exchange(first.refresh().token().as_str(), None)
            .unwrap_err();
        assert_eq!(replayed.kind(), RefreshErrorKind::Unavailable, "{replayed}");

        let fresh = Replica::start(&Store::open(&db.url()).unwrap(), fast()).unwrap();
        let verifier = fresh.verifier(config()).unwrap();
        assert_eq!(
            verifier
                .verify(second.access().token().as_str())
                .unwrap_err()
                .kind(),
            VerifyErrorKind::Revoked,
            "{}: the detected-stolen family's access token is live",
            db.url()
        );
        let family = second.family().unwrap().as_str().to_owned();
        let revocations = store.revocations_after(0).unwrap();
        assert_eq!(revocations.len(), 1, "{revocations:?}");
        assert_eq!(
            revocations[0].1.target().to_string(),
            format!("family {family}")
        );
        let trail: Vec<serde_json::Value> = store
            .audit_log(0, 100)
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let revoked: Vec<_> = trail.iter().filter(|e| e["event"] == "revoked").collect();
        assert_eq!(revoked.len(), 1, "{trail:?}");
        assert_eq!(revoked[0]["target"], "family");
        assert_eq!(revoked[0]["reason"], "refresh token reuse detected");
    }
}

/// A store family past its absolute lifetime is not exchanged, and its start is what counts.
#[test]
fn store_families_end_after_their_lifetime() {
    for db in backends("famlife") {
        let store = Store::open(&db.url()).unwrap();
        let key = SigningKey::generate().unwrap();
        store.add_key(key.public_key(), None).unwrap();
        let replica = Arc::new(Replica::start(&store, fast()).unwrap());
        let refresher = Refresher::new(
            issuer(&key),
            AUD,
            replica.keys(),
            replica.clone(),
            Arc::new(store.families()),
        )
        .unwrap()
        .with_family_lifetime(Duration::from_secs(3600));
        let pair = refresher
            .start(&TokenRequest::new(
                "app",
                AUD,
                "projects:read".parse().unwrap(),
            ))
            .unwrap();
        let pair = refresher
            .exchange(pair.refresh().token().as_str(), None)
            .unwrap();
        // The family began two hours ago, as far as the store knows.
        db.exec("UPDATE scopekey_refresh_families SET started_at = started_at - 7200");
        let e = refresher
            .exchange(pair.refresh().token().as_str(), None)
            .unwrap_err();
        assert_eq!(
            e.kind(),
            RefreshErrorKind::FamilyExpired,
            "{}: {e}",
            db.url()
        );
        // Refusing an ended family is not reuse: its last access token still works.
        assert!(
            replica
                .verifier(config())
                .unwrap()
                .verify(pair.access().token().as_str())
                .is_ok()
        );
    }
}

/// The notification after a committed revocation fails (here: a `pg_notify` that raises,
/// found first on the store's search path). The revocation is recorded, the caller is told so,
/// it applies in this process at once, and another replica picks it up without a notification.
#[test]
fn a_failed_notification_after_the_commit_still_revokes() {
    let Some(db) = postgres("notifyfail") else {
        return;
    };
    let plain = Store::open(&db.url()).unwrap();
    let key = SigningKey::generate().unwrap();
    plain.add_key(key.public_key(), None).unwrap();
    db.exec(
        "CREATE FUNCTION public.pg_notify(text, text) RETURNS void LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'notifications are down'; END $$",
    );
    let trapped_url = format!("{}?options%5Bsearch_path%5D=public%2Cpg_catalog", db.url());
    // The trap is real: on that search path a notification fails.
    let rt = runtime();
    let notified = rt.block_on(async {
        let mut c = sqlx::PgConnection::connect(&trapped_url).await.unwrap();
        sqlx::query("SELECT pg_notify('scopekey_changes', 'x')")
            .execute(&mut c)
            .await
            .map(|_| ())
    });
    assert!(notified.is_err(), "the pg_notify trap did not take");

    let other = Replica::start(&plain, fast()).unwrap();
    let store = Store::open(&trapped_url).unwrap();
    let replica = Replica::start(&store, fast()).unwrap();
    let issuer = issuer(&key);
    let (token, jti) = mint(&issuer, "a");
    let record = replica.revoke(
        RevocationTarget::Token {
            token_id: jti,
            expires_at: None,
        },
        "ops",
        "leaked",
    );
    assert!(
        record.is_ok(),
        "a committed revocation was reported as failed: {record:?}"
    );
    let here = replica.verifier(config()).unwrap();
    assert_eq!(
        here.verify(&token).unwrap_err().kind(),
        VerifyErrorKind::Revoked
    );
    assert_eq!(plain.revocations_after(0).unwrap().len(), 1);
    let there = other.verifier(config()).unwrap();
    assert!(
        wait_until(Duration::from_secs(3), || there.verify(&token).is_err()).is_some(),
        "another replica never saw the revocation"
    );
    assert_eq!(
        there.verify(&token).unwrap_err().kind(),
        VerifyErrorKind::Revoked
    );
}

/// While the database refuses connections, the listener's reconnection attempts back off
/// (doubling from 100 ms, or the poll interval if longer, to 5 s) instead of spinning.
#[test]
fn listener_failures_back_off_instead_of_spinning() {
    let Some(db) = postgres("backoff") else {
        return;
    };
    let TestDb::Postgres { name, .. } = &db else {
        unreachable!()
    };
    let name = name.clone();
    let store = Store::open(&db.url()).unwrap();
    let replica = Replica::start(&store, fast().max_staleness(Duration::from_secs(60))).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(replica.listen_failures(), 0);
    db.admin_exec(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"));
    db.admin_exec(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    ));
    std::thread::sleep(Duration::from_secs(4));
    let failures = replica.listen_failures();
    db.admin_exec(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"));
    // From 100 ms doubling: 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s covers 3.1 s, so about five
    // attempts fit in four seconds; a loop without backoff makes hundreds.
    assert!(
        (2..=8).contains(&failures),
        "{failures} listener failures in 4 s"
    );
}

/// The trail is read back with filters in the database and keyset pages: a page is the same
/// whatever was read before, and a token's events include the revocations that cover it.
#[test]
fn audit_events_filter_in_the_database_and_page_by_id() {
    use scopekey::audit::{AuditEvent, AuditKind};
    use scopekey_store::AuditQuery;
    for db in backends("auditq") {
        let store = Store::open(&db.url()).unwrap();
        let key = SigningKey::generate().unwrap();
        let issuer = issuer(&key);
        let minted = issuer
            .issue(&TokenRequest::new(
                "ci",
                AUD,
                "projects:read".parse().unwrap(),
            ))
            .unwrap();
        let claims = minted.claims();
        let now = OffsetDateTime::now_utc();
        let mut events: Vec<AuditEvent> = (0..25)
            .map(|_| AuditEvent::for_token(now, AuditKind::Verified, claims, Some(key.key_id())))
            .collect();
        events.push(AuditEvent::bare(
            now,
            AuditKind::Refused {
                reason: "malformed",
            },
        ));
        store.append_audit(events).unwrap();
        let replica = Replica::start(&store, fast()).unwrap();
        // One revocation naming the token, one covering it through its consumer, one not.
        replica
            .revoke(
                RevocationTarget::Token {
                    token_id: claims.token_id().clone(),
                    expires_at: None,
                },
                "ops",
                "named",
            )
            .unwrap();
        replica
            .revoke(
                RevocationTarget::Subject {
                    subject: "ci".into(),
                    issued_before: None,
                },
                "ops",
                "its consumer",
            )
            .unwrap();
        replica
            .revoke(
                RevocationTarget::Subject {
                    subject: "someone-else".into(),
                    issued_before: None,
                },
                "ops",
                "unrelated",
            )
            .unwrap();

        // Pages of 10 by id: 25 + 1 + 3 events, in order, none twice.
        let mut query = AuditQuery::new().limit(10);
        let mut ids = Vec::new();
        loop {
            let page = store.audit_events(&query).unwrap();
            assert!(page.len() <= 10);
            let Some((last, _)) = page.last() else { break };
            query = query.after(*last);
            ids.extend(page.iter().map(|(id, _)| *id));
        }
        assert_eq!(ids.len(), 29, "{}", db.url());
        assert!(ids.windows(2).all(|w| w[0] < w[1]));

        let count = |q: AuditQuery| store.audit_events(&q.limit(1000)).unwrap().len();
        let jti = claims.token_id().as_str();
        assert_eq!(count(AuditQuery::new().kind("refused")), 1);
        assert_eq!(count(AuditQuery::new().kind("revoked")), 3);
        assert_eq!(count(AuditQuery::new().subject("ci")), 25 + 1);
        assert_eq!(count(AuditQuery::new().jti(jti)), 25 + 1);
        let covered = store
            .audit_events(&AuditQuery::new().jti(jti).with_revocations_covering(
                None,
                Some("ci"),
                Some(key.key_id()),
            ))
            .unwrap();
        let reasons: Vec<String> = covered
            .iter()
            .filter_map(|(_, l)| {
                let e: serde_json::Value = serde_json::from_str(l).unwrap();
                e["reason"].as_str().map(str::to_owned)
            })
            .collect();
        assert_eq!(reasons, ["named", "its consumer"], "{}", db.url());
        assert_eq!(covered.len(), 25 + 2);
        let later = now + time::Duration::hours(1);
        assert_eq!(count(AuditQuery::new().since(later)), 0);
        assert_eq!(
            count(AuditQuery::new().since(now - time::Duration::seconds(1))),
            29
        );
        // A hostile filter value is a value, not SQL.
        assert_eq!(count(AuditQuery::new().subject("x' OR '1'='1")), 0);
    }
}

#[test]
fn client_secrets_rotate_verify_and_are_never_stored() {
    for db in backends("client_secrets") {
        let store = Store::open(&db.url()).unwrap();
        let ci = scopekey::consumer::Consumer::new(
            "ci",
            "team",
            "deploys",
            "production".parse().unwrap(),
            "a:read".parse().unwrap(),
        )
        .unwrap();
        store.add_consumer(&ci).unwrap();
        // An unknown consumer has no secret to rotate, and no secret of its matches.
        let e = store.rotate_client_secret("nobody").unwrap_err();
        assert_eq!(e.kind(), StoreErrorKind::UnknownConsumer, "{e}");
        assert_eq!(
            store.verify_client_secret("nobody", "sks_x").unwrap(),
            SecretCheck::Refused
        );
        // A registered consumer without a secret yet: refused.
        assert_eq!(
            store.verify_client_secret("ci", "").unwrap(),
            SecretCheck::Refused
        );
        let first = store.rotate_client_secret("ci").unwrap();
        assert_eq!(first.client_id(), "ci");
        assert!(first.expose_secret().starts_with(CLIENT_SECRET_PREFIX));
        assert_eq!(first.expose_secret().len(), 4 + 43);
        assert!(!format!("{first:?}").contains(first.expose_secret()));
        assert_eq!(
            store
                .verify_client_secret("ci", first.expose_secret())
                .unwrap(),
            SecretCheck::Matches
        );
        // Near misses: one character off, a prefix, another consumer's name, oversized.
        let mut off = first.expose_secret().to_owned();
        let last = off.pop().unwrap();
        off.push(if last == 'A' { 'B' } else { 'A' });
        for wrong in [
            off.as_str(),
            &first.expose_secret()[..20],
            "",
            &"x".repeat(MAX_CLIENT_SECRET_LEN + 1),
        ] {
            assert_eq!(
                store.verify_client_secret("ci", wrong).unwrap(),
                SecretCheck::Refused,
                "{wrong:?}"
            );
        }
        // A verified secret is confirmed cheaply by this handle afterwards; others are not.
        assert!(
            store
                .confirm_client_secret("ci", first.expose_secret())
                .unwrap()
        );
        assert!(!store.confirm_client_secret("ci", &off).unwrap());
        assert!(
            !store
                .confirm_client_secret("nobody", first.expose_secret())
                .unwrap()
        );
        // Rotation replaces: the old secret stops working at once.
        let second = store.rotate_client_secret("ci").unwrap();
        assert_ne!(first.expose_secret(), second.expose_secret());
        assert_eq!(
            store
                .verify_client_secret("ci", first.expose_secret())
                .unwrap(),
            SecretCheck::Refused
        );
        assert_eq!(
            store
                .verify_client_secret("ci", second.expose_secret())
                .unwrap(),
            SecretCheck::Matches
        );
        assert!(
            !store
                .confirm_client_secret("ci", first.expose_secret())
                .unwrap()
        );
        assert!(
            store
                .confirm_client_secret("ci", second.expose_secret())
                .unwrap()
        );
        // Only a salted argon2id hash is stored, never the secret.
        let stored = db.fetch_text(
            "SELECT secret_hash FROM scopekey_client_credentials WHERE consumer = 'ci'",
        );
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(!stored.contains(&second.expose_secret()[4..]));
        // A client key registers beside the secret, which keeps working.
        assert_eq!(store.client_key("ci").unwrap(), None);
        let key = SigningKey::generate().unwrap();
        store.register_client_key("ci", key.public_key()).unwrap();
        assert_eq!(
            store
                .client_key("ci")
                .unwrap()
                .as_ref()
                .map(PublicKey::key_id),
            Some(key.key_id())
        );
        assert_eq!(
            store
                .verify_client_secret("ci", second.expose_secret())
                .unwrap(),
            SecretCheck::Matches
        );
        let e = store
            .register_client_key("nobody", key.public_key())
            .unwrap_err();
        assert_eq!(e.kind(), StoreErrorKind::UnknownConsumer);
        // Operators: set, replaced, removed; an unknown consumer is refused.
        assert_eq!(store.operator_scopes("ci").unwrap(), None);
        let admin: scopekey::ScopeSet = "tokens:read tokens:revoke".parse().unwrap();
        store.set_operator_scopes("ci", Some(&admin)).unwrap();
        assert_eq!(store.operator_scopes("ci").unwrap(), Some(admin));
        let less: scopekey::ScopeSet = "tokens:read".parse().unwrap();
        store.set_operator_scopes("ci", Some(&less)).unwrap();
        assert_eq!(store.operator_scopes("ci").unwrap(), Some(less.clone()));
        store.set_operator_scopes("ci", None).unwrap();
        assert_eq!(store.operator_scopes("ci").unwrap(), None);
        let e = store
            .set_operator_scopes("nobody", Some(&less))
            .unwrap_err();
        assert_eq!(e.kind(), StoreErrorKind::UnknownConsumer);
        // A corrupt hash is an error, never a match.
        db.exec("UPDATE scopekey_client_credentials SET secret_hash = 'not a hash'");
        let e = store
            .verify_client_secret("ci", second.expose_secret())
            .unwrap_err();
        assert_eq!(e.kind(), StoreErrorKind::Corrupt);
    }
}

#[test]
fn store_options_are_checked_and_a_one_connection_pool_still_works() {
    use scopekey_store::{MAX_POOL_CONNECTIONS, StoreOptions};
    for bad in [
        StoreOptions::default().max_connections(0).unwrap_err(),
        StoreOptions::default()
            .max_connections(MAX_POOL_CONNECTIONS + 1)
            .unwrap_err(),
        StoreOptions::default()
            .acquire_timeout(Duration::ZERO)
            .unwrap_err(),
        StoreOptions::default()
            .busy_timeout(Duration::from_secs(301))
            .unwrap_err(),
    ] {
        assert_eq!(bad.kind(), StoreErrorKind::InvalidInput, "{bad}");
    }
    let options = StoreOptions::default()
        .max_connections(1)
        .unwrap()
        .acquire_timeout(Duration::from_secs(5))
        .unwrap()
        .busy_timeout(Duration::from_millis(500))
        .unwrap();
    for db in backends("store_options") {
        let store = Store::open_with(&db.url(), &options).unwrap();
        let replica = Replica::start(&store, fast()).unwrap();
        let key = SigningKey::generate().unwrap();
        store.add_key(key.public_key(), None).unwrap();
        let (token, jti) = mint(&issuer(&key), "one-conn");
        store
            .revoke(
                RevocationTarget::Token {
                    token_id: jti,
                    expires_at: None,
                },
                "ops",
                "one connection",
            )
            .unwrap();
        let v = replica.verifier(config()).unwrap();
        let seen = wait_until(Duration::from_secs(5), || {
            v.verify(&token)
                .is_err_and(|e| e.kind() == VerifyErrorKind::Revoked)
        });
        assert!(
            seen.is_some(),
            "{}: the revocation arrives through one connection",
            db.url()
        );
    }
}

#[test]
fn a_consumers_networks_are_stored_updated_and_read_back() {
    use scopekey::Network;
    use scopekey::consumer::Consumer;
    for db in backends("consumer_networks") {
        let store = Store::open(&db.url()).unwrap();
        let nets =
            |list: &[&str]| -> Vec<Network> { list.iter().map(|n| n.parse().unwrap()).collect() };
        let ci = Consumer::new(
            "ci",
            "team",
            "builds",
            "production".parse().unwrap(),
            "a:read".parse().unwrap(),
        )
        .unwrap()
        .with_networks(nets(&["2001:db8::/32", "10.0.0.0/8"]))
        .unwrap();
        store.add_consumer(&ci).unwrap();
        let plain = Consumer::new(
            "web",
            "team",
            "site",
            "production".parse().unwrap(),
            "a:read".parse().unwrap(),
        )
        .unwrap();
        store.add_consumer(&plain).unwrap();
        let back = store.consumer("ci").unwrap().unwrap();
        assert_eq!(
            back.networks(),
            nets(&["10.0.0.0/8", "2001:db8::/32"]).as_slice(),
            "{}",
            db.url()
        );
        assert!(
            store
                .consumer("web")
                .unwrap()
                .unwrap()
                .networks()
                .is_empty()
        );
        // Updated with the rest of the registration; an empty list lifts the limit.
        assert!(
            store
                .update_consumer(&back.clone().with_networks(nets(&["192.0.2.0/24"])).unwrap())
                .unwrap()
        );
        assert_eq!(
            store.consumer("ci").unwrap().unwrap().networks(),
            nets(&["192.0.2.0/24"]).as_slice()
        );
        assert!(
            store
                .update_consumer(&back.with_networks([]).unwrap())
                .unwrap()
        );
        assert!(
            store
                .consumers()
                .unwrap()
                .iter()
                .all(|c| c.networks().is_empty())
        );
    }
}

/// `COUNT(*)` of `table`, read directly from the database.
fn rows(db: &TestDb, table: &str) -> i64 {
    db.fetch_text(&format!("SELECT CAST(COUNT(*) AS TEXT) FROM {table}"))
        .parse()
        .unwrap()
}

/// Tokens churn for eight rounds of ten minutes (virtual time, a day ahead of the clock):
/// each round issues 20 fifteen-minute tokens into the inventory and revokes them, then
/// sweeps. The revocation and inventory tables stay at two rounds' worth (what can still
/// verify, plus leeway and margin) instead of growing; the revocations sweeps never touch
/// (a family, a token without a known expiry) stay; a replica that watched it all still
/// refuses what is revoked and never reloads in full because of a sweep.
#[test]
fn row_counts_stay_flat_while_tokens_churn() {
    use scopekey::inventory::{TokenRecord, TokenRecordParts};
    use scopekey_store::RetentionPolicy;
    for db in backends("churn") {
        let store = Store::open(&db.url()).unwrap();
        let key = SigningKey::generate().unwrap();
        store.add_key(key.public_key(), None).unwrap();
        let replica = Replica::start(&store, fast()).unwrap();
        let verifier = replica.verifier(config()).unwrap();
        let (kept, kept_jti) = mint(&issuer(&key), "kept");
        store
            .revoke(
                RevocationTarget::Token {
                    token_id: kept_jti,
                    expires_at: None,
                },
                "ops",
                "no known expiry: never swept",
            )
            .unwrap();
        store
            .revoke(
                RevocationTarget::Family("fam-1".parse().unwrap()),
                "ops",
                "families are never swept",
            )
            .unwrap();
        let policy = RetentionPolicy::default()
            .revocation_margin(Duration::from_secs(60))
            .unwrap()
            .inventory_retention(Duration::ZERO)
            .keep_audit_forever()
            .batch_size(7)
            .unwrap()
            .batch_pause(Duration::ZERO);
        let base = OffsetDateTime::now_utc().unix_timestamp() + 86_400;
        let at = |s: i64| OffsetDateTime::from_unix_timestamp(s).unwrap();
        let kid = key.key_id();
        let mut counts = Vec::new();
        for round in 0..8_i64 {
            let now = base + round * 600;
            for i in 0..20 {
                let jti: TokenId = format!("churn-{round}-{i}").parse().unwrap();
                let record: TokenRecord = TokenRecordParts {
                    token_id: jti.clone(),
                    token_type: scopekey::TokenType::Access,
                    subject: "churner".into(),
                    owner: None,
                    purpose: None,
                    scopes: "projects:read".parse().unwrap(),
                    issued_at: at(now),
                    expires_at: at(now + 900),
                    key_id: kid.clone(),
                    family: None,
                    last_used: None,
                }
                .into();
                store.record_token(&record).unwrap();
                store
                    .revoke(
                        RevocationTarget::Token {
                            token_id: jti,
                            expires_at: Some(at(now + 900)),
                        },
                        "ops",
                        "churn",
                    )
                    .unwrap();
            }
            let report = store.sweep_at(&policy, at(now)).unwrap();
            // Round r sweeps round r-2 (expired 900 s, beyond leeway 120 s and margin 60 s).
            let expected = if round >= 2 { 20 } else { 0 };
            assert_eq!(report.revocations, expected, "{} round {round}", db.url());
            assert_eq!(report.tokens, expected, "{} round {round}", db.url());
            counts.push((
                rows(&db, "scopekey_revocations"),
                rows(&db, "scopekey_tokens"),
            ));
        }
        // Two rounds' worth of tokens, plus the two revocations no sweep takes.
        assert_eq!(counts[1], (42, 40), "{}", db.url());
        assert!(
            counts[1..].iter().all(|c| *c == (42, 40)),
            "{}: {counts:?}",
            db.url()
        );
        // The replica applied 162 revocations and saw 120 swept; its consistency check (every
        // second here) must not take the sweeps for lost rows.
        std::thread::sleep(Duration::from_millis(2_500));
        assert_eq!(replica.full_reloads(), 1, "{}", db.url());
        assert_eq!(
            verifier.verify(&kept).unwrap_err().kind(),
            VerifyErrorKind::Revoked
        );
        // A revocation after the sweeps still arrives incrementally.
        let (late, late_jti) = mint(&issuer(&key), "late");
        replica
            .revoke(
                RevocationTarget::Token {
                    token_id: late_jti,
                    expires_at: None,
                },
                "ops",
                "after the sweeps",
            )
            .unwrap();
        let fresh = Store::open(&db.url()).unwrap();
        let other = Replica::start(&fresh, fast()).unwrap();
        let v2 = other.verifier(config()).unwrap();
        assert_eq!(
            v2.verify(&late).unwrap_err().kind(),
            VerifyErrorKind::Revoked
        );
        assert_eq!(
            v2.verify(&kept).unwrap_err().kind(),
            VerifyErrorKind::Revoked
        );
        std::thread::sleep(Duration::from_millis(1_500));
        assert_eq!(replica.full_reloads(), 1, "{}", db.url());
        assert_eq!(other.full_reloads(), 1, "{}", db.url());
        // A year on, only the two revocations without an end remain, and the late one.
        let report = store.sweep_at(&policy, at(base + 365 * 86_400)).unwrap();
        assert_eq!(report.revocations, 40, "{}", db.url());
        assert_eq!(rows(&db, "scopekey_revocations"), 3, "{}", db.url());
        assert_eq!(rows(&db, "scopekey_tokens"), 0, "{}", db.url());
    }
}

/// Refresh families go with their used-token rows once their last token expired (plus the
/// retention); a family still inside it stays.
#[test]
fn expired_refresh_families_are_swept_with_their_used_tokens() {
    use scopekey_store::RetentionPolicy;
    for db in backends("famsweep") {
        let store = Store::open(&db.url()).unwrap();
        let key = SigningKey::generate().unwrap();
        store.add_key(key.public_key(), None).unwrap();
        let replica = Arc::new(Replica::start(&store, fast()).unwrap());
        let refresher = Refresher::new(
            issuer(&key),
            AUD,
            replica.keys(),
            replica.clone(),
            Arc::new(store.families()),
        )
        .unwrap();
        let request = TokenRequest::new("app", AUD, "projects:read".parse().unwrap());
        for _ in 0..3 {
            let pair = refresher.start(&request).unwrap();
            refresher
                .exchange(pair.refresh().token().as_str(), None)
                .unwrap();
        }
        assert_eq!(rows(&db, "scopekey_refresh_families"), 3);
        assert_eq!(rows(&db, "scopekey_refresh_used"), 3);
        // Two of them ended 70 days before their lifetime, as far as the store knows.
        db.exec(
            "UPDATE scopekey_refresh_families SET expires_at = expires_at - 70 * 86400 \
             WHERE family IN (SELECT family FROM scopekey_refresh_families ORDER BY family LIMIT 2)",
        );
        // Two expired inventory rows: one of the family that stays, one of a family gone.
        let live_family = db.fetch_text(
            "SELECT family FROM scopekey_refresh_families ORDER BY family DESC LIMIT 1",
        );
        let long_ago = OffsetDateTime::now_utc() - time::Duration::days(100);
        for (jti, family) in [
            ("in-live-family", live_family.as_str()),
            ("in-gone-family", "fam-gone"),
        ] {
            let record: scopekey::inventory::TokenRecord = scopekey::inventory::TokenRecordParts {
                token_id: jti.parse().unwrap(),
                token_type: scopekey::TokenType::Refresh,
                subject: "app".into(),
                owner: None,
                purpose: None,
                scopes: "projects:read".parse().unwrap(),
                issued_at: long_ago,
                expires_at: long_ago + time::Duration::hours(1),
                key_id: key.key_id().clone(),
                family: Some(family.parse().unwrap()),
                last_used: None,
            }
            .into();
            store.record_token(&record).unwrap();
        }
        let policy = RetentionPolicy::default().batch_pause(Duration::ZERO);
        let report = store.sweep(&policy).unwrap();
        assert_eq!(report.families, 2, "{}", db.url());
        // Revoking a token of a live family finds the family through its row: it stays.
        assert_eq!(report.tokens, 1, "{}", db.url());
        assert!(
            store
                .token(&"in-live-family".parse().unwrap())
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .token(&"in-gone-family".parse().unwrap())
                .unwrap()
                .is_none()
        );
        assert_eq!(rows(&db, "scopekey_refresh_families"), 1, "{}", db.url());
        assert_eq!(rows(&db, "scopekey_refresh_used"), 1, "{}", db.url());
        assert_eq!(store.sweep(&policy).unwrap().families, 0);
    }
}

/// Audit events older than the retention are exported to a 0600 JSON Lines file (flushed)
/// and then deleted, oldest first; newer ones stay. An export that cannot be written deletes
/// nothing and says why.
#[test]
fn old_audit_events_are_exported_then_deleted() {
    use scopekey::audit::{AuditEvent, AuditKind};
    use scopekey_store::RetentionPolicy;
    for db in backends("auditsweep") {
        let store = Store::open(&db.url()).unwrap();
        let now = OffsetDateTime::now_utc();
        let old = now - time::Duration::days(100);
        let mut events: Vec<AuditEvent> = (0..30)
            .map(|i| AuditEvent::bare(old + time::Duration::minutes(i), AuditKind::Verified))
            .collect();
        events.extend((0..5).map(|_| AuditEvent::bare(now, AuditKind::Verified)));
        store.append_audit(events).unwrap();
        let old_lines: Vec<String> = store.audit_log(0, 30).unwrap();
        let dir = std::env::temp_dir().join(unique("auditexport"));
        std::fs::create_dir_all(&dir).unwrap();

        let nowhere = RetentionPolicy::default()
            .batch_pause(Duration::ZERO)
            .export_audit_to(dir.join("missing").join("audit.jsonl"));
        let e = store.sweep(&nowhere).unwrap_err();
        assert_eq!(e.kind(), StoreErrorKind::Export, "{e}");
        assert!(e.to_string().contains("nothing deleted"), "{e}");
        assert_eq!(rows(&db, "scopekey_audit"), 35, "{}", db.url());

        // A file others may read, and a symbolic link, are refused; nothing is deleted.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let open = dir.join("world-readable.jsonl");
            std::fs::write(&open, "").unwrap();
            std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
            let link = dir.join("link.jsonl");
            std::os::unix::fs::symlink(dir.join("elsewhere.jsonl"), &link).unwrap();
            for (path, why) in [(&open, "chmod 600"), (&link, "symbolic link")] {
                let policy = RetentionPolicy::default()
                    .batch_pause(Duration::ZERO)
                    .export_audit_to(path);
                let e = store.sweep(&policy).unwrap_err();
                assert_eq!(e.kind(), StoreErrorKind::Export, "{e}");
                assert!(e.to_string().contains(why), "{e}");
            }
            assert_eq!(std::fs::read_to_string(&open).unwrap(), "");
            assert_eq!(rows(&db, "scopekey_audit"), 35, "{}", db.url());
        }

        let file = dir.join("audit.jsonl");
        let policy = RetentionPolicy::default()
            .audit_retention(Duration::from_secs(90 * 86_400))
            .unwrap()
            .batch_size(7)
            .unwrap()
            .batch_pause(Duration::ZERO)
            .export_audit_to(&file);
        let report = store.sweep(&policy).unwrap();
        assert_eq!(report.audit_events, 30, "{}", db.url());
        assert_eq!(rows(&db, "scopekey_audit"), 5, "{}", db.url());
        let exported = std::fs::read_to_string(&file).unwrap();
        let exported: Vec<&str> = exported.lines().collect();
        assert_eq!(exported, old_lines, "{}", db.url());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Nothing more is old enough: nothing deleted, nothing appended.
        assert_eq!(store.sweep(&policy).unwrap().audit_events, 0);
        assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 30);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// `tokens --unused-since` (and the live filter beside it) runs on an index, not a scan of the
/// whole inventory: the plan each database gives for the query `Store::tokens` sends.
#[test]
fn the_unused_since_query_uses_an_index() {
    for db in backends("plan") {
        let store = Store::open(&db.url()).unwrap();
        // 20,000 rows issued over 20,000 s, one in a hundred used recently, for the planner's
        // statistics.
        let series = if db.is_postgres() {
            "SELECT g FROM generate_series(1, 20000) AS g"
        } else {
            "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < 20000) SELECT g FROM s"
        };
        let kid = KeyId::of_public_key_bytes(&[1; 32]).unwrap();
        db.exec(&format!(
            "INSERT INTO scopekey_tokens (jti, token_type, subject, owner, purpose, scopes, issued_at, expires_at, kid, family, last_used) \
             SELECT 'tok-' || g, 'access', 'sub-' || (g % 50), NULL, NULL, 'projects:read', 1900000000 + g, 1900086400 + g, '{}', NULL, \
                    CASE WHEN g % 100 = 0 THEN 1900030000 ELSE NULL END FROM ({series}) AS series; \
             ANALYZE",
            kid.as_str()
        ));
        let cutoff = OffsetDateTime::from_unix_timestamp(1_900_000_100).unwrap();
        let unused = scopekey::inventory::InventoryQuery::all().unused_since(cutoff);
        let plan = store.tokens_plan(&unused).unwrap().join("\n");
        assert!(
            plan.contains("scopekey_tokens_unused"),
            "{}: {plan}",
            db.url()
        );
        assert_eq!(store.tokens(&unused).unwrap().len(), 99, "{}", db.url());
        let live = unused
            .clone()
            .live_at(OffsetDateTime::from_unix_timestamp(1_900_086_450).unwrap());
        let plan = store.tokens_plan(&live).unwrap().join("\n");
        assert!(
            plan.contains("INDEX") || plan.contains("Index"),
            "{}: {plan}",
            db.url()
        );
        assert!(
            !plan.contains("SCAN scopekey_tokens") && !plan.contains("Seq Scan"),
            "{}: {plan}",
            db.url()
        );
        assert_eq!(store.tokens(&live).unwrap().len(), 49, "{}", db.url());
    }
}

/// `Store::run` from async code: the operation runs off the caller's worker (a current-thread
/// runtime keeps serving another task meanwhile), its result and errors come back as they
/// are; outside a runtime it is a typed error, not a panic.
#[test]
fn async_callers_run_store_operations_off_their_thread() {
    for db in backends("run") {
        let store = Store::open(&db.url()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (number, ticks, invalid) = rt.block_on(async {
            let ticker = tokio::spawn(async {
                let mut n = 0_u32;
                for _ in 0..5 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    n += 1;
                }
                n
            });
            let s = store.clone();
            let number = s
                .run(|s| {
                    // A slow operation: the ticker must not wait for it.
                    std::thread::sleep(Duration::from_millis(100));
                    s.revoke(
                        RevocationTarget::Subject {
                            subject: "ci-deploy".into(),
                            issued_before: None,
                        },
                        "ops",
                        "leaked",
                    )
                })
                .await
                .unwrap()
                .0;
            let ticks = tokio::time::timeout(Duration::from_millis(1), ticker)
                .await
                .expect("the ticker waited for the store operation")
                .unwrap();
            let invalid = store
                .run(|s| {
                    s.revoke(
                        RevocationTarget::Subject {
                            subject: "ci-deploy".into(),
                            issued_before: None,
                        },
                        "",
                        "no one",
                    )
                })
                .await
                .unwrap_err()
                .kind();
            (number, ticks, invalid)
        });
        assert_eq!(number, 1, "{}", db.url());
        assert_eq!(ticks, 5);
        assert_eq!(invalid, StoreErrorKind::InvalidInput);
        let outside = futures_lite_block_on(store.run(|s| s.revocations_after(0)));
        assert_eq!(outside.unwrap_err().kind(), StoreErrorKind::Runtime);
    }
}

/// Polls `fut` to completion on this thread without any runtime.
fn futures_lite_block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}
