//! Migrations are forward-only and keep what is stored: a SQLite database made with the
//! previous schema (migrations 1 to 6, what the store shipped before consumer networks and the
//! DPoP replay cache), holding a consumer, opens with the current store, which migrates it and
//! reads the consumer back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scopekey_store::Store;
use sqlx::Row as _;

/// The previous release's migrations, as shipped then (the files are never edited once
/// released, so the current tree holds them).
const PREVIOUS: [(i64, &str); 6] = [
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_consumers.sql")),
    (
        3,
        include_str!("../migrations/sqlite/0003_sequence_and_family_start.sql"),
    ),
    (
        4,
        include_str!("../migrations/sqlite/0004_client_credentials.sql"),
    ),
    (5, include_str!("../migrations/sqlite/0005_operators.sql")),
    (6, include_str!("../migrations/sqlite/0006_token_uses.sql")),
];

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Builds the previous release's database at `url`, as its store would have: the schema,
/// its version rows and one consumer.
fn previous_release_database(url: &str) {
    block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("{url}?mode=rwc"))
            .await
            .unwrap();
        sqlx::query("CREATE TABLE scopekey_schema_version (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();
        for (version, sql) in PREVIOUS {
            for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                sqlx::query(statement).execute(&pool).await.unwrap();
            }
            sqlx::query("INSERT INTO scopekey_schema_version (version, applied_at) VALUES ($1, 0)")
                .bind(version)
                .execute(&pool)
                .await
                .unwrap();
        }
        sqlx::query(
            "INSERT INTO scopekey_consumers (name, owner, purpose, environment, ceiling, created_at, disabled_at) \
             VALUES ('ci', 'team-build', 'deploys', 'production', 'projects:read', 1700000000, NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    });
}

#[test]
fn a_database_of_the_previous_release_is_migrated_and_keeps_its_rows() {
    let dir = std::env::temp_dir().join(format!("scopekey-upgrade-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("previous.db");
    let _ = std::fs::remove_file(&path);
    let url = format!("sqlite://{}", path.display());
    previous_release_database(&url);

    // The current store opens it, applying only the newer migrations.
    let store = Store::open(&url).unwrap();
    let ci = store
        .consumer("ci")
        .unwrap()
        .expect("the consumer survives the upgrade");
    assert_eq!(ci.owner(), "team-build");
    assert_eq!(ci.ceiling().to_string(), "projects:read");
    assert!(
        ci.networks().is_empty(),
        "a consumer of the previous release has no networks"
    );
    // New columns are written and read.
    let limited = ci.with_networks(["10.0.0.0/8".parse().unwrap()]).unwrap();
    assert!(store.update_consumer(&limited).unwrap());
    assert_eq!(store.consumer("ci").unwrap().unwrap().networks().len(), 1);
    drop(store);

    // Every version is recorded once, in order, and opening again changes nothing.
    let versions = || {
        block_on(async {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            let rows = sqlx::query("SELECT version FROM scopekey_schema_version ORDER BY version")
                .fetch_all(&pool)
                .await
                .unwrap();
            rows.iter()
                .map(|r| r.get::<i64, _>("version"))
                .collect::<Vec<_>>()
        })
    };
    let after = versions();
    assert!(
        after.len() > PREVIOUS.len(),
        "newer migrations applied: {after:?}"
    );
    assert_eq!(after, (1..=after.len() as i64).collect::<Vec<_>>());
    let store = Store::open(&url).unwrap();
    assert_eq!(store.consumers().unwrap().len(), 1);
    drop(store);
    assert_eq!(versions(), after);
    let _ = std::fs::remove_dir_all(&dir);
}
