//! Store tests on a real SQLite file and the real PostgreSQL at 127.0.0.1:5432 (db `test`).
//! PostgreSQL tests fail loudly when the server is down: they never skip.

use super::*;
use crate::crypto::{KeyRing, StoreKey};
use crate::migrations::LATEST;
use crate::testing::{pg_config, pg_url};
use std::time::Duration;

fn ring() -> KeyRing {
    KeyRing::new(
        StoreKey::from_base64(&StoreKey::generate_base64()).unwrap(),
        vec![],
    )
}

fn sqlite_config(dir: &std::path::Path) -> StoreConfig {
    StoreConfig {
        data_dir: dir.to_owned(),
        ..StoreConfig::default()
    }
}

/// The admin token id the tests' connect flows are started by.
const ADMIN: &str = "sre-oncall";

fn pending<'a>(
    state: &'a str,
    connection: &'a str,
    verifier: &'a Secret,
    created_at_ms: i64,
) -> NewConnectState<'a> {
    NewConnectState {
        state,
        connection,
        verifier,
        started_by: ADMIN,
        created_at_ms,
    }
}

async fn open(config: &StoreConfig, keys: KeyRing) -> Store {
    Store::open(config, keys, Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("store must open (is PostgreSQL at {} up?): {e}", pg_url()))
}

fn record(access: &str, refresh: &str) -> TokenRecord {
    TokenRecord {
        access_token: Some(Secret::new(access)),
        access_expires_at_ms: Some(now_ms() + 60_000),
        access_issued_at_ms: Some(now_ms()),
        refresh_token: Some(Secret::new(refresh)),
        scopes: vec!["api".into(), "refresh_token".into()],
        instance_url: Some("https://na1.example.com".into()),
        ..TokenRecord::empty()
    }
}

async fn round_trip(store: &Store) {
    assert!(store.load("sf").await.unwrap().is_none());
    let lock = store.lock("sf").await.unwrap();
    assert!(
        lock.current.is_none(),
        "a placeholder row reads as no record"
    );
    let version = lock
        .commit(&record("access-AAA", "refresh-BBB"))
        .await
        .unwrap();
    assert_eq!(version, 1);
    let loaded = store.load("sf").await.unwrap().unwrap();
    assert_eq!(loaded.version, 1);
    assert_eq!(loaded.access_token.unwrap().expose(), "access-AAA");
    assert_eq!(loaded.refresh_token.unwrap().expose(), "refresh-BBB");
    assert_eq!(loaded.scopes, vec!["api", "refresh_token"]);
    assert_eq!(loaded.state, RecordState::Ok);
    assert_eq!(store.schema_version().await.unwrap(), LATEST);
}

/// The refresh token stored for `connection`, in the clear.
async fn refresh_token_of(store: &Store, connection: &str) -> String {
    let record = store.load(connection).await.unwrap().unwrap();
    record.refresh_token.unwrap().expose().to_owned()
}

/// No file the store wrote in `dir` holds any of `needles` in plain text (and it wrote some).
fn assert_not_on_disk(dir: &std::path::Path, needles: &[&[u8]]) {
    let mut raw = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        raw.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(!raw.is_empty());
    for needle in needles {
        assert!(
            !raw.windows(needle.len()).any(|w| w == *needle),
            "{} found in plain text on disk",
            String::from_utf8_lossy(needle)
        );
    }
}

#[tokio::test]
async fn sqlite_round_trip_keeps_tokens_encrypted_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&sqlite_config(dir.path()), ring()).await;
    round_trip(&store).await;
    drop(store);
    assert_not_on_disk(dir.path(), &[b"access-AAA", b"refresh-BBB"]);
}

#[tokio::test]
async fn sqlite_migrations_run_once_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let keys = ring();
    let store = open(&sqlite_config(dir.path()), keys.clone()).await;
    round_trip(&store).await;
    drop(store);
    let again = open(&sqlite_config(dir.path()), keys).await;
    assert_eq!(again.schema_version().await.unwrap(), LATEST);
    assert_eq!(again.load("sf").await.unwrap().unwrap().version, 1);
}

#[tokio::test]
async fn sqlite_refuses_a_write_based_on_a_stale_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&sqlite_config(dir.path()), ring()).await;
    let first = store.lock("sf").await.unwrap();
    let second = store.lock("sf").await.unwrap();
    first.commit(&record("a1", "r1")).await.unwrap();
    let err = second.commit(&record("a2", "r2")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict));
    assert_eq!(refresh_token_of(&store, "sf").await, "r1");
}

#[tokio::test]
async fn a_record_sealed_with_an_unknown_key_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&sqlite_config(dir.path()), ring()).await;
    store
        .lock("sf")
        .await
        .unwrap()
        .commit(&record("a", "r"))
        .await
        .unwrap();
    drop(store);
    let other = open(&sqlite_config(dir.path()), ring()).await;
    let err = other.load("sf").await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert!(!err.to_string().contains("r\""));
}

#[tokio::test]
async fn reseal_moves_every_record_to_the_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let old = ring();
    let store = open(&sqlite_config(dir.path()), old.clone()).await;
    store
        .lock("sf")
        .await
        .unwrap()
        .commit(&record("a", "r-sf"))
        .await
        .unwrap();
    store
        .lock("hs")
        .await
        .unwrap()
        .commit(&record("b", "r-hs"))
        .await
        .unwrap();
    drop(store);
    let new_key = StoreKey::from_base64(&StoreKey::generate_base64()).unwrap();
    let rotated = old.rotated_to(new_key.clone());
    let store = open(&sqlite_config(dir.path()), rotated).await;
    assert_eq!(reseal_all(&store).await.unwrap(), 2);
    drop(store);
    // Only the new key now: every record must still open.
    let store = open(&sqlite_config(dir.path()), KeyRing::new(new_key, vec![])).await;
    assert_eq!(refresh_token_of(&store, "sf").await, "r-sf");
    assert_eq!(refresh_token_of(&store, "hs").await, "r-hs");
}

#[tokio::test]
async fn postgres_round_trip_and_migrations() {
    let config = pg_config();
    let keys = ring();
    let store = open(&config, keys.clone()).await;
    round_trip(&store).await;
    // A second process starting on the same schema runs no migration twice.
    let second = open(&config, keys).await;
    assert_eq!(second.schema_version().await.unwrap(), LATEST);
    assert_eq!(second.load("sf").await.unwrap().unwrap().version, 1);
}

// Real time, on purpose: the second store waits on PostgreSQL's row lock, in another process.
// Paused time would let the 300 ms pass at once while this runtime idles on that socket, so
// "still waiting" would be checked before the second lock request had even reached the server.
#[tokio::test]
async fn postgres_row_lock_makes_the_second_refresher_wait_and_see_the_first() {
    let config = pg_config();
    let keys = ring();
    let a = open(&config, keys.clone()).await;
    let b = std::sync::Arc::new(open(&config, keys).await);
    let lock_a = a.lock("sf").await.unwrap();
    let b2 = b.clone();
    let waiter = tokio::spawn(async move {
        let lock_b = b2.lock("sf").await.unwrap();
        let seen = lock_b.current.as_ref().map(|r| {
            (
                r.version,
                r.refresh_token.clone().unwrap().expose().to_owned(),
            )
        });
        lock_b.release().await;
        seen
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiter.is_finished(),
        "the second process must wait for the row lock"
    );
    lock_a.commit(&record("a1", "rotated-1")).await.unwrap();
    let seen = waiter.await.unwrap();
    assert_eq!(seen, Some((1, "rotated-1".to_owned())));
}

#[tokio::test]
async fn postgres_lock_of_a_dead_session_is_released() {
    let config = pg_config();
    let keys = ring();
    let a = open(&config, keys.clone()).await;
    let b = open(&config, keys).await;
    let lock_a = a.lock("sf").await.unwrap();
    // Dropping without commit closes the session, as a killed process would.
    drop(lock_a);
    let lock_b = tokio::time::timeout(Duration::from_secs(5), b.lock("sf"))
        .await
        .unwrap()
        .unwrap();
    assert!(lock_b.current.is_none());
    lock_b.release().await;
}

#[tokio::test]
async fn unreachable_postgres_is_a_typed_error() {
    let config = StoreConfig {
        url: Some(Secret::new(
            "postgres://postgres:pw-SECRET@127.0.0.1:1/test",
        )),
        ..StoreConfig::default()
    };
    let err = match Store::open(&config, ring(), Duration::from_secs(1)).await {
        Err(e) => e,
        Ok(_) => panic!("port 1 must not accept"),
    };
    assert!(matches!(err, StoreError::Unavailable(_)));
    assert!(!err.to_string().contains("pw-SECRET"));
}

/// A state is taken once across two stores sharing the data, and its verifier is sealed.
async fn connect_state_is_single_use_across_stores(a: &Store, b: &Store) {
    let now = now_ms();
    let verifier = Secret::new("verifier-VVVVVVVV");
    assert!(a
        .put_connect_state(
            pending("state-1", "sf", &verifier, now),
            now - 600_000,
            1024
        )
        .await
        .unwrap());
    let taken = b.take_connect_state("state-1").await.unwrap().unwrap();
    assert_eq!(taken.connection, "sf");
    assert_eq!(taken.verifier.expose(), "verifier-VVVVVVVV");
    assert_eq!(taken.created_at_ms, now);
    assert_eq!(taken.started_by.as_deref(), Some(ADMIN));
    assert!(a.take_connect_state("state-1").await.unwrap().is_none());
    assert!(b.take_connect_state("state-1").await.unwrap().is_none());
    // Concurrent takes of one state: exactly one wins.
    assert!(a
        .put_connect_state(
            pending("state-2", "sf", &verifier, now),
            now - 600_000,
            1024
        )
        .await
        .unwrap());
    let (x, y) = tokio::join!(
        a.take_connect_state("state-2"),
        b.take_connect_state("state-2")
    );
    assert_eq!(
        usize::from(x.unwrap().is_some()) + usize::from(y.unwrap().is_some()),
        1
    );
    // Expired states are dropped on the next insert; the cap holds.
    assert!(a
        .put_connect_state(
            pending("old", "sf", &verifier, now - 700_000),
            now - 800_000,
            1024
        )
        .await
        .unwrap());
    assert!(a
        .put_connect_state(pending("fresh", "sf", &verifier, now), now - 600_000, 1)
        .await
        .unwrap());
    assert!(b.take_connect_state("old").await.unwrap().is_none());
    assert!(!a
        .put_connect_state(
            pending("one-too-many", "sf", &verifier, now),
            now - 600_000,
            1
        )
        .await
        .unwrap());
}

/// A completed connect flow's record (admin, account) sits on the connection's row, is read by
/// every store sharing it, and survives the token refreshes that rewrite the row.
async fn connect_record_is_kept_across_refreshes(a: &Store, b: &Store) {
    let unknown = ConnectRecord {
        account: None,
        by: ADMIN.to_owned(),
        at_ms: 1,
    };
    assert!(
        !a.record_connect("no-such-row", &unknown).await.unwrap(),
        "no grant, no row to record on"
    );
    assert_eq!(a.last_connect("no-such-row").await.unwrap(), None);
    let lock = a.lock("sf").await.unwrap();
    lock.commit(&record("access-1", "refresh-1")).await.unwrap();
    assert_eq!(b.last_connect("sf").await.unwrap(), None, "never connected");
    let connected = ConnectRecord {
        account: Some(r#"{"account_id":"00D000000000001"}"#.to_owned()),
        by: ADMIN.to_owned(),
        at_ms: now_ms(),
    };
    assert!(a.record_connect("sf", &connected).await.unwrap());
    assert_eq!(
        b.last_connect("sf").await.unwrap().as_ref(),
        Some(&connected)
    );
    let lock = b.lock("sf").await.unwrap();
    lock.commit(&record("access-2", "refresh-2")).await.unwrap();
    assert_eq!(a.last_connect("sf").await.unwrap(), Some(connected));
}

#[tokio::test]
async fn sqlite_connect_records_are_kept_across_refreshes() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(&sqlite_config(dir.path()), ring()).await;
    connect_record_is_kept_across_refreshes(&a, &a).await;
}

/// Two stores on one fresh PostgreSQL schema, as two processes of a fleet open it.
async fn two_pg_stores() -> (Store, Store) {
    let config = pg_config();
    let keys = ring();
    (open(&config, keys.clone()).await, open(&config, keys).await)
}

#[tokio::test]
async fn postgres_connect_records_are_kept_across_refreshes() {
    let (a, b) = two_pg_stores().await;
    connect_record_is_kept_across_refreshes(&a, &b).await;
}

#[tokio::test]
async fn sqlite_connect_states_are_single_use_and_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(&sqlite_config(dir.path()), ring()).await;
    // One process per SQLite store: "across stores" is one store taken from twice.
    connect_state_is_single_use_across_stores(&a, &a).await;
    a.put_connect_state(
        pending("state-X", "sf", &Secret::new("verifier-VVVVVVVV"), now_ms()),
        0,
        1024,
    )
    .await
    .unwrap();
    drop(a);
    assert_not_on_disk(dir.path(), &[b"verifier-VVVVVVVV", b"state-X"]);
}

#[tokio::test]
async fn postgres_connect_states_are_single_use_across_processes() {
    let (a, b) = two_pg_stores().await;
    connect_state_is_single_use_across_stores(&a, &b).await;
}

/// Issue 13: two processes on one SQLite data directory both refresh with the same refresh
/// token, and a provider that rotates refresh tokens revokes the grant. The second is refused.
#[tokio::test]
async fn sqlite_a_second_store_on_one_data_dir_is_refused_with_a_pointer_to_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let keys = ring();
    let first = open(&sqlite_config(&data), keys.clone()).await;
    let err = match Store::open(&sqlite_config(&data), keys.clone(), Duration::from_secs(1)).await {
        Err(e) => e,
        Ok(_) => panic!("a second store on {} must be refused", data.display()),
    };
    match &err {
        StoreError::DataDirInUse { dir, holder } => {
            assert_eq!(dir, &data);
            assert_eq!(*holder, Some(std::process::id()));
        }
        other => panic!("expected DataDirInUse, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(&data.display().to_string()), "{message}");
    assert!(message.contains("PostgreSQL"), "{message}");
    // The holder is unaffected, and once it is gone the directory opens again with its data.
    round_trip(&first).await;
    drop(first);
    let again = open(&sqlite_config(&data), keys).await;
    assert_eq!(again.load("sf").await.unwrap().unwrap().version, 1);
}

/// PostgreSQL is the shared store: any number of processes open one schema.
#[tokio::test]
async fn postgres_is_not_locked_to_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        data_dir: dir.path().to_owned(),
        ..pg_config()
    };
    let keys = ring();
    let _a = open(&config, keys.clone()).await;
    let _b = open(&config, keys).await;
    assert!(
        !dir.path().join("gatehouse.lock").exists(),
        "a PostgreSQL store leaves the data directory alone"
    );
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode();
    format!("{:o}", mode & 0o777)
}

/// The database holds refresh tokens (sealed) and sits beside the generated key: nobody but
/// the owner may read any of it, whatever the umask.
#[cfg(unix)]
#[tokio::test]
async fn sqlite_store_files_are_created_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("new").join("data");
    let store = open(&sqlite_config(&data), ring()).await;
    round_trip(&store).await;
    assert_eq!(mode(&data), "700", "a data directory the store creates");
    for name in [
        "credentials.db",
        "credentials.db-wal",
        "credentials.db-shm",
        "gatehouse.lock",
    ] {
        assert_eq!(mode(&data.join(name)), "600", "{name}");
    }
    let generate = StoreConfig {
        key_env: "GATEHOUSE_TEST_UNSET_KEY_ENV".to_owned(),
        ..sqlite_config(&data)
    };
    crypto::load_key_ring(&generate, true).unwrap();
    assert_eq!(mode(&data.join("store.key")), "600", "store.key");
}

/// A store written by an older build (0644 files) is made private when it is opened.
#[cfg(unix)]
#[tokio::test]
async fn sqlite_store_files_left_readable_by_others_are_narrowed_on_open() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let keys = ring();
    let store = open(&sqlite_config(dir.path()), keys.clone()).await;
    round_trip(&store).await;
    drop(store);
    let db = dir.path().join("credentials.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = open(&sqlite_config(dir.path()), keys).await;
    assert_eq!(mode(&db), "600");
    assert_eq!(mode(&dir.path().join("credentials.db-wal")), "600");
    assert_eq!(store.load("sf").await.unwrap().unwrap().version, 1);
}

/// A store that an older build left at schema version 1 is carried forward, its records kept.
#[tokio::test]
async fn sqlite_an_older_schema_is_migrated_forward() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = rusqlite::Connection::open(dir.path().join("credentials.db")).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE {table} (version INTEGER NOT NULL); INSERT INTO {table} VALUES (1); {v1}
             INSERT INTO credential_tokens (connection, version, key_id, state, updated_at)
             VALUES ('old', 0, '', 'empty', 0);",
            table = migrations::VERSION_TABLE,
            v1 = migrations::MIGRATIONS[0].sqlite,
        ))
        .unwrap();
    }
    let store = open(&sqlite_config(dir.path()), ring()).await;
    assert_eq!(store.schema_version().await.unwrap(), LATEST);
    assert_eq!(store.connections().await.unwrap(), vec!["old".to_owned()]);
    let now = now_ms();
    assert!(store
        .put_connect_state(pending("s", "old", &Secret::new("v"), now), now - 1000, 10)
        .await
        .unwrap());
}

#[tokio::test]
async fn postgres_an_older_schema_is_migrated_forward() {
    let config = pg_config();
    let schema = config.schema.clone().unwrap();
    let (client, connection) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL must be up at {}: {e}", pg_url()));
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; SET search_path TO {schema};
             CREATE TABLE {table} (version BIGINT NOT NULL); INSERT INTO {table} VALUES (1); {v1}",
            table = migrations::VERSION_TABLE,
            v1 = migrations::MIGRATIONS[0].postgres,
        ))
        .await
        .unwrap();
    let store = open(&config, ring()).await;
    assert_eq!(store.schema_version().await.unwrap(), LATEST);
    let now = now_ms();
    assert!(store
        .put_connect_state(pending("s", "sf", &Secret::new("v"), now), now - 1000, 10)
        .await
        .unwrap());
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}
