//! Fleet store: PostgreSQL. A refresh holds `SELECT ... FOR UPDATE` on the connection's row
//! for the duration of the token-endpoint call, so across every process sharing the database
//! exactly one refreshes; the others wait, re-read and use its token. If the refreshing process
//! dies, its session ends, the transaction rolls back and the lock is released.

use crate::migrations::{MIGRATIONS, VERSION_TABLE};
use crate::{now_ms, ConnectRecord, RawConnectState, RawRow, Secret, StoreError, EMPTY_STATE};
use parking_lot::Mutex;
use std::time::Duration;
use tokio_postgres::{Client, NoTls, Row};

/// Arbitrary constant: the advisory lock that serialises migrations of concurrent start-ups.
const MIGRATION_LOCK: i64 = 0x6761_7465_6372_6564;

const COLUMNS: &str = "version, key_id, access_token, access_expires_at, access_issued_at, refresh_token, scopes, instance_url, state, state_code, seed_fingerprint";

/// Idle clients, reused; a refresh holds one for its whole transaction.
const POOL_IDLE_MAX: usize = 4;

pub(crate) struct PgStore {
    url: Secret,
    schema: String,
    lock_wait: Duration,
    idle: Mutex<Vec<Client>>,
}

/// A connection's row locked by an open transaction on `client`.
pub(crate) struct PgLock {
    client: Client,
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("postgres: {e}"))
}

fn quote_ident(name: &str) -> Result<String, StoreError> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(StoreError::Unavailable(format!(
            "[store] schema {name:?} must be [a-z0-9_]"
        )));
    }
    Ok(format!("\"{name}\""))
}

impl PgStore {
    pub async fn open(
        url: &Secret,
        schema: Option<&str>,
        lock_wait: Duration,
    ) -> Result<Self, StoreError> {
        let schema = quote_ident(schema.unwrap_or("public"))?;
        let store = Self {
            url: url.clone(),
            schema,
            lock_wait,
            idle: Mutex::new(Vec::new()),
        };
        let client = store.client().await?;
        store.migrate(&client).await?;
        store.put_back(client);
        Ok(store)
    }

    async fn connect(&self) -> Result<Client, StoreError> {
        let (client, connection) = tokio_postgres::connect(self.url.expose(), NoTls)
            .await
            .map_err(unavailable)?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "credential store connection closed");
            }
        });
        // A process stopped mid-refresh (SIGSTOP, hung) must not hold a connection's row lock
        // forever: the server ends such idle transactions.
        let idle_ms = (self.lock_wait.as_millis() as u64)
            .saturating_mul(2)
            .max(1000);
        client
            .batch_execute(&format!(
                "SET search_path TO {}; SET idle_in_transaction_session_timeout = {idle_ms}",
                self.schema
            ))
            .await
            .map_err(unavailable)?;
        Ok(client)
    }

    pub(crate) async fn client(&self) -> Result<Client, StoreError> {
        loop {
            let candidate = self.idle.lock().pop();
            match candidate {
                Some(client) if !client.is_closed() => return Ok(client),
                Some(_) => continue,
                None => return self.connect().await,
            }
        }
    }

    pub(crate) fn put_back(&self, client: Client) {
        let mut idle = self.idle.lock();
        if idle.len() < POOL_IDLE_MAX && !client.is_closed() {
            idle.push(client);
        }
    }

    async fn migrate(&self, client: &Client) -> Result<(), StoreError> {
        client.batch_execute("BEGIN").await.map_err(unavailable)?;
        let result = async {
            client
                .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await
                .map_err(unavailable)?;
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", self.schema))
                .await
                .map_err(unavailable)?;
            client
                .batch_execute(&format!(
                    "CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version BIGINT NOT NULL)"
                ))
                .await
                .map_err(unavailable)?;
            let current: i64 = client
                .query_one(
                    &format!("SELECT COALESCE(MAX(version), 0) FROM {VERSION_TABLE}"),
                    &[],
                )
                .await
                .and_then(|row| row.try_get(0))
                .map_err(unavailable)?;
            for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
                client
                    .batch_execute(migration.postgres)
                    .await
                    .map_err(|e| {
                        unavailable(format!(
                            "migration {} ({}): {e}",
                            migration.version, migration.name
                        ))
                    })?;
                client
                    .execute(
                        &format!("INSERT INTO {VERSION_TABLE} (version) VALUES ($1)"),
                        &[&migration.version],
                    )
                    .await
                    .map_err(unavailable)?;
            }
            client.batch_execute("COMMIT").await.map_err(unavailable)
        }
        .await;
        if result.is_err() {
            let _ = client.batch_execute("ROLLBACK").await;
        }
        result
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .query_one("SELECT 1", &[])
            .await
            .map_err(unavailable)?;
        self.put_back(client);
        Ok(())
    }

    #[cfg(test)]
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                &format!("SELECT COALESCE(MAX(version), 0) FROM {VERSION_TABLE}"),
                &[],
            )
            .await
            .map_err(unavailable)?;
        self.put_back(client);
        row.try_get(0).map_err(unavailable)
    }

    pub async fn load(&self, connection: &str) -> Result<Option<RawRow>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM credential_tokens WHERE connection = $1"),
                &[&connection],
            )
            .await
            .map_err(unavailable)?;
        self.put_back(client);
        row.as_ref().map(raw_row).transpose()
    }

    pub async fn lock(&self, connection: &str) -> Result<(PgLock, RawRow), StoreError> {
        let client = self.client().await?;
        let result = async {
            client
                .batch_execute(&format!(
                    "BEGIN; SET LOCAL lock_timeout = {}",
                    self.lock_wait.as_millis().max(1)
                ))
                .await?;
            client
                .execute(
                    "INSERT INTO credential_tokens (connection, version, key_id, state, updated_at)
                     VALUES ($1, 0, '', $2, $3) ON CONFLICT (connection) DO NOTHING",
                    &[&connection, &EMPTY_STATE, &now_ms()],
                )
                .await?;
            client
                .query_one(
                    &format!(
                        "SELECT {COLUMNS} FROM credential_tokens WHERE connection = $1 FOR UPDATE"
                    ),
                    &[&connection],
                )
                .await
        }
        .await;
        match result {
            Ok(row) => Ok((PgLock { client }, raw_row(&row)?)),
            Err(e) => {
                // The session may be mid-transaction; it is not reused.
                drop(client);
                Err(unavailable(e))
            }
        }
    }

    pub async fn commit(
        &self,
        lock: PgLock,
        connection: &str,
        raw: RawRow,
    ) -> Result<i64, StoreError> {
        let client = lock.client;
        let result = async {
            client
                .execute(
                    "UPDATE credential_tokens SET version = $1, key_id = $2, access_token = $3, access_expires_at = $4,
                        access_issued_at = $5, refresh_token = $6, scopes = $7, instance_url = $8, state = $9,
                        state_code = $10, seed_fingerprint = $11, updated_at = $12
                     WHERE connection = $13",
                    &[
                        &raw.version,
                        &raw.key_id,
                        &raw.access_token,
                        &raw.access_expires_at,
                        &raw.access_issued_at,
                        &raw.refresh_token,
                        &raw.scopes,
                        &raw.instance_url,
                        &raw.state,
                        &raw.state_code,
                        &raw.seed_fingerprint,
                        &now_ms(),
                        &connection,
                    ],
                )
                .await?;
            client.batch_execute("COMMIT").await
        }
        .await;
        match result {
            Ok(()) => {
                self.put_back(client);
                Ok(raw.version)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    pub async fn rollback(&self, lock: PgLock) {
        if lock.client.batch_execute("ROLLBACK").await.is_ok() {
            self.put_back(lock.client);
        }
    }

    /// Drops expired states, then inserts `state` unless `max_pending` are already waiting
    /// (a soft cap: concurrent inserts may pass it by a few).
    pub async fn put_connect_state(
        &self,
        raw: RawConnectState,
        expired_before_ms: i64,
        max_pending: i64,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM credential_connect_states WHERE created_at < $1",
                &[&expired_before_ms],
            )
            .await
            .map_err(unavailable)?;
        let waiting: i64 = client
            .query_one("SELECT COUNT(*) FROM credential_connect_states", &[])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(unavailable)?;
        if waiting >= max_pending {
            self.put_back(client);
            return Ok(false);
        }
        client
            .execute(
                "INSERT INTO credential_connect_states (state_hash, connection, key_id, verifier, created_at, started_by)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &raw.state_hash,
                    &raw.connection,
                    &raw.key_id,
                    &raw.verifier,
                    &raw.created_at,
                    &raw.started_by,
                ],
            )
            .await
            .map_err(unavailable)?;
        self.put_back(client);
        Ok(true)
    }

    /// Removes and returns a state. `DELETE ... RETURNING` hands the row to exactly one of
    /// any number of concurrent callers across the fleet.
    pub async fn take_connect_state(
        &self,
        state_hash: &str,
    ) -> Result<Option<RawConnectState>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "DELETE FROM credential_connect_states WHERE state_hash = $1
                 RETURNING state_hash, connection, key_id, verifier, created_at, started_by",
                &[&state_hash],
            )
            .await
            .map_err(unavailable)?;
        self.put_back(client);
        row.map(|r| {
            Ok(RawConnectState {
                state_hash: r.try_get(0).map_err(unavailable)?,
                connection: r.try_get(1).map_err(unavailable)?,
                key_id: r.try_get(2).map_err(unavailable)?,
                verifier: r.try_get(3).map_err(unavailable)?,
                created_at: r.try_get(4).map_err(unavailable)?,
                started_by: r.try_get(5).map_err(unavailable)?,
            })
        })
        .transpose()
    }

    pub async fn record_connect(
        &self,
        connection: &str,
        record: &ConnectRecord,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE credential_tokens SET connected_account = $1, connected_by = $2, connected_at = $3
                 WHERE connection = $4",
                &[&record.account, &record.by, &record.at_ms, &connection],
            )
            .await
            .map_err(unavailable)?;
        self.put_back(client);
        Ok(changed == 1)
    }

    pub async fn last_connect(
        &self,
        connection: &str,
    ) -> Result<Option<ConnectRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT connected_account, connected_by, connected_at FROM credential_tokens
                 WHERE connection = $1",
                &[&connection],
            )
            .await
            .map_err(unavailable)?;
        self.put_back(client);
        let Some(row) = row else {
            return Ok(None);
        };
        let account: Option<String> = row.try_get(0).map_err(unavailable)?;
        let by: Option<String> = row.try_get(1).map_err(unavailable)?;
        let at: Option<i64> = row.try_get(2).map_err(unavailable)?;
        Ok(by
            .zip(at)
            .map(|(by, at_ms)| ConnectRecord { account, by, at_ms }))
    }

    pub async fn connections(&self) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT connection FROM credential_tokens ORDER BY connection",
                &[],
            )
            .await
            .map_err(unavailable)?;
        self.put_back(client);
        rows.iter()
            .map(|r| r.try_get(0).map_err(unavailable))
            .collect()
    }
}

fn raw_row(r: &Row) -> Result<RawRow, StoreError> {
    Ok(RawRow {
        version: r.try_get(0).map_err(unavailable)?,
        key_id: r.try_get(1).map_err(unavailable)?,
        access_token: r.try_get(2).map_err(unavailable)?,
        access_expires_at: r.try_get(3).map_err(unavailable)?,
        access_issued_at: r.try_get(4).map_err(unavailable)?,
        refresh_token: r.try_get(5).map_err(unavailable)?,
        scopes: r.try_get(6).map_err(unavailable)?,
        instance_url: r.try_get(7).map_err(unavailable)?,
        state: r.try_get(8).map_err(unavailable)?,
        state_code: r.try_get(9).map_err(unavailable)?,
        seed_fingerprint: r.try_get(10).map_err(unavailable)?,
    })
}
