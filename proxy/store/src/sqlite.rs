//! Embedded store: one SQLite file in WAL mode. rusqlite is synchronous, so every call runs on
//! the blocking pool. One process owns the file (the data directory is locked while the store
//! is open); the row version is still compared at commit, so a writer that read a stale row
//! (another task of this process, or a process the lock could not stop) cannot overwrite a
//! newer refresh token.

use crate::data_dir::{self, DataDirLock};
use crate::migrations::{MIGRATIONS, VERSION_TABLE};
use crate::{now_ms, ConnectRecord, RawConnectState, RawRow, StoreError, EMPTY_STATE};
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::Arc;

/// The database file inside the data directory.
const DB_FILE: &str = "credentials.db";

const COLUMNS: &str = "version, key_id, access_token, access_expires_at, access_issued_at, refresh_token, scopes, instance_url, state, state_code, seed_fingerprint";

pub(crate) struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// Held for the life of the store (declared after `conn`, so it is released last).
    _lock: DataDirLock,
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("sqlite: {e}"))
}

impl SqliteStore {
    /// Locks `data_dir` (creating it 0700 if needed), then opens or creates its database
    /// (0600) and runs the migrations.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let data_dir = data_dir.to_owned();
        let (conn, lock) = tokio::task::spawn_blocking(
            move || -> Result<(Connection, DataDirLock), StoreError> {
                let lock = DataDirLock::acquire(&data_dir)?;
                let path = data_dir.join(DB_FILE);
                // SQLite creates a database 0644 (less the umask) and gives its -wal and -shm
                // the database's mode: creating the file first, 0600, keeps all three private.
                data_dir::private_options()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&path)
                    .map_err(unavailable)?;
                let mut conn = Connection::open(&path).map_err(unavailable)?;
                // WAL: readers never block the writer. synchronous=FULL: a commit survives power
                // loss too, since a lost rotated refresh token cannot be recovered.
                conn.pragma_update(None, "journal_mode", "WAL")
                    .map_err(unavailable)?;
                conn.pragma_update(None, "synchronous", "FULL")
                    .map_err(unavailable)?;
                conn.busy_timeout(std::time::Duration::from_secs(5))
                    .map_err(unavailable)?;
                migrate(&mut conn)?;
                // A store written before files were created private is narrowed now.
                for file in data_dir::sqlite_files(&path) {
                    data_dir::make_private(&file);
                }
                Ok((conn, lock))
            },
        )
        .await
        .map_err(unavailable)??;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            _lock: lock,
        })
    }

    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&mut conn.lock()))
            .await
            .map_err(unavailable)?
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(unavailable))
            .await
    }

    #[cfg(test)]
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        self.run(|c| current_version(c)).await
    }

    pub async fn load(&self, connection: &str) -> Result<Option<RawRow>, StoreError> {
        let connection = connection.to_owned();
        self.run(move |c| read(c, &connection)).await
    }

    pub async fn ensure_and_read(&self, connection: &str) -> Result<RawRow, StoreError> {
        let connection = connection.to_owned();
        self.run(move |c| {
            c.execute(
                "INSERT INTO credential_tokens (connection, version, key_id, state, updated_at)
                 VALUES (?1, 0, '', ?2, ?3) ON CONFLICT (connection) DO NOTHING",
                params![connection, EMPTY_STATE, now_ms()],
            )
            .map_err(unavailable)?;
            read(c, &connection)?.ok_or_else(|| unavailable("row vanished"))
        })
        .await
    }

    pub async fn write_cas(
        &self,
        connection: &str,
        expected: i64,
        raw: RawRow,
    ) -> Result<i64, StoreError> {
        let connection = connection.to_owned();
        self.run(move |c| {
            let changed = c
                .execute(
                    "UPDATE credential_tokens SET version = ?1, key_id = ?2, access_token = ?3, access_expires_at = ?4,
                        access_issued_at = ?5, refresh_token = ?6, scopes = ?7, instance_url = ?8, state = ?9,
                        state_code = ?10, seed_fingerprint = ?11, updated_at = ?12
                     WHERE connection = ?13 AND version = ?14",
                    params![
                        raw.version,
                        raw.key_id,
                        raw.access_token,
                        raw.access_expires_at,
                        raw.access_issued_at,
                        raw.refresh_token,
                        raw.scopes,
                        raw.instance_url,
                        raw.state,
                        raw.state_code,
                        raw.seed_fingerprint,
                        now_ms(),
                        connection,
                        expected
                    ],
                )
                .map_err(unavailable)?;
            if changed == 1 {
                Ok(raw.version)
            } else {
                Err(StoreError::Conflict)
            }
        })
        .await
    }

    /// Drops expired states, then inserts `state` unless `max_pending` are already waiting.
    pub async fn put_connect_state(
        &self,
        raw: RawConnectState,
        expired_before_ms: i64,
        max_pending: i64,
    ) -> Result<bool, StoreError> {
        self.run(move |c| {
            c.execute(
                "DELETE FROM credential_connect_states WHERE created_at < ?1",
                params![expired_before_ms],
            )
            .map_err(unavailable)?;
            let waiting: i64 = c
                .query_row("SELECT COUNT(*) FROM credential_connect_states", [], |r| {
                    r.get(0)
                })
                .map_err(unavailable)?;
            if waiting >= max_pending {
                return Ok(false);
            }
            c.execute(
                "INSERT INTO credential_connect_states (state_hash, connection, key_id, verifier, created_at, started_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    raw.state_hash,
                    raw.connection,
                    raw.key_id,
                    raw.verifier,
                    raw.created_at,
                    raw.started_by
                ],
            )
            .map_err(unavailable)?;
            Ok(true)
        })
        .await
    }

    /// Removes and returns a state: a single statement, so two processes on the same file
    /// cannot both take it.
    pub async fn take_connect_state(
        &self,
        state_hash: &str,
    ) -> Result<Option<RawConnectState>, StoreError> {
        let state_hash = state_hash.to_owned();
        self.run(move |c| {
            c.query_row(
                "DELETE FROM credential_connect_states WHERE state_hash = ?1
                 RETURNING state_hash, connection, key_id, verifier, created_at, started_by",
                params![state_hash],
                |r| {
                    Ok(RawConnectState {
                        state_hash: r.get(0)?,
                        connection: r.get(1)?,
                        key_id: r.get(2)?,
                        verifier: r.get(3)?,
                        created_at: r.get(4)?,
                        started_by: r.get(5)?,
                    })
                },
            )
            .optional()
            .map_err(unavailable)
        })
        .await
    }

    pub async fn record_connect(
        &self,
        connection: &str,
        record: ConnectRecord,
    ) -> Result<bool, StoreError> {
        let connection = connection.to_owned();
        self.run(move |c| {
            let changed = c
                .execute(
                    "UPDATE credential_tokens SET connected_account = ?1, connected_by = ?2, connected_at = ?3
                     WHERE connection = ?4",
                    params![record.account, record.by, record.at_ms, connection],
                )
                .map_err(unavailable)?;
            Ok(changed == 1)
        })
        .await
    }

    pub async fn last_connect(
        &self,
        connection: &str,
    ) -> Result<Option<ConnectRecord>, StoreError> {
        let connection = connection.to_owned();
        self.run(move |c| {
            let row: Option<(Option<String>, Option<String>, Option<i64>)> = c
                .query_row(
                    "SELECT connected_account, connected_by, connected_at FROM credential_tokens
                     WHERE connection = ?1",
                    params![connection],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(unavailable)?;
            Ok(row.and_then(|(account, by, at)| {
                Some(ConnectRecord {
                    account,
                    by: by?,
                    at_ms: at?,
                })
            }))
        })
        .await
    }

    pub async fn connections(&self) -> Result<Vec<String>, StoreError> {
        self.run(|c| {
            let mut stmt = c
                .prepare("SELECT connection FROM credential_tokens ORDER BY connection")
                .map_err(unavailable)?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
        .await
    }
}

fn read(c: &Connection, connection: &str) -> Result<Option<RawRow>, StoreError> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM credential_tokens WHERE connection = ?1"),
        params![connection],
        |r| {
            Ok(RawRow {
                version: r.get(0)?,
                key_id: r.get(1)?,
                access_token: r.get(2)?,
                access_expires_at: r.get(3)?,
                access_issued_at: r.get(4)?,
                refresh_token: r.get(5)?,
                scopes: r.get(6)?,
                instance_url: r.get(7)?,
                state: r.get(8)?,
                state_code: r.get(9)?,
                seed_fingerprint: r.get(10)?,
            })
        },
    )
    .optional()
    .map_err(unavailable)
}

fn current_version(c: &Connection) -> Result<i64, StoreError> {
    c.query_row(
        &format!("SELECT COALESCE(MAX(version), 0) FROM {VERSION_TABLE}"),
        [],
        |r| r.get(0),
    )
    .map_err(unavailable)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute(
        &format!("CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER NOT NULL)"),
        [],
    )
    .map_err(unavailable)?;
    // IMMEDIATE: two openers at once must not both apply a migration.
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    let current = current_version(&tx)?;
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.execute_batch(migration.sqlite).map_err(|e| {
            unavailable(format!(
                "migration {} ({}): {e}",
                migration.version, migration.name
            ))
        })?;
        tx.execute(
            &format!("INSERT INTO {VERSION_TABLE} (version) VALUES (?1)"),
            params![migration.version],
        )
        .map_err(unavailable)?;
    }
    tx.commit().map_err(unavailable)
}
