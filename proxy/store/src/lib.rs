//! Gatehouse's store: one encrypted token record per connection and the connect flow's pending
//! authorizations, and the unified API's sync state (`sync_state`), in embedded SQLite (one
//! process) or PostgreSQL (a fleet). Audit records, idempotency keys and webhook deliveries
//! will live here too; each adds a
//! migration (see `migrations`) and a module beside `connect_state`.
//!
//! The crate holds no request logic and knows no provider: the proxy's credential code decides
//! what to store and when; this crate keeps it durable, encrypted and shared correctly.
//!
//! Refreshing goes through [`Store::lock`]: it takes the connection's row lock (PostgreSQL:
//! `SELECT ... FOR UPDATE`, held across the token-endpoint call, so only one process of a
//! fleet refreshes at a time; SQLite: a compare-and-set on `version` at commit) and hands back
//! the current record, so a caller that waited can see that somebody else already refreshed.
//! [`RowLock::commit`] makes the new record durable before anyone uses the new access token.
//!
//! The embedded store belongs to one process: [`Store::open`] locks its data directory for the
//! life of the store and refuses a second opener with [`StoreError::DataDirInUse`].

mod clock;
mod config;
mod connect_state;
pub mod crypto;
mod data_dir;
mod migrations;
mod postgres;
mod secret;
mod sqlite;
mod sync_state;
#[cfg(test)]
mod sync_state_tests;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use config::StoreConfig;
pub use connect_state::{ConnectRecord, ConnectState, NewConnectState};
pub use secret::Secret;
pub use sync_state::{Onboarding, SyncFilter, SyncRecord, WalkCompleted};

use connect_state::RawConnectState;
use crypto::KeyRing;
use std::path::PathBuf;

pub use clock::now_ms;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("credential store unavailable: {0}")]
    Unavailable(String),
    /// Another writer changed the row since it was read (SQLite compare-and-set).
    #[error("credential record changed concurrently")]
    Conflict,
    /// A record that cannot be opened (unknown key, tampered, bad encoding).
    #[error("credential record unreadable: {0}")]
    Corrupt(String),
    /// Another process holds the embedded store's data directory. Two processes on one SQLite
    /// file would both refresh with the same refresh token, and a provider that rotates refresh
    /// tokens revokes the whole grant on the reuse.
    #[error(
        "data directory {} is in use by another Gatehouse process{}; the embedded SQLite store serves one process only: to share a store between processes, use PostgreSQL ([store] url = \"postgres://...\")",
        dir.display(),
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    DataDirInUse {
        dir: PathBuf,
        /// The holder's process id, as it wrote it into the lock file.
        holder: Option<u32>,
    },
}

/// Whether a connection's grant is usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    Ok,
    /// The provider declared the grant dead: only a new connect flow or seed restores it.
    ReauthRequired,
}

/// One connection's stored credential, decrypted.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    /// Bumped on every write; doubles as the token generation handed out in `Applied`.
    pub version: i64,
    pub access_token: Option<Secret>,
    pub access_expires_at_ms: Option<i64>,
    /// When the access token was issued: with the expiry, its lifetime (for the refresh margin).
    pub access_issued_at_ms: Option<i64>,
    pub refresh_token: Option<Secret>,
    pub scopes: Vec<String>,
    pub instance_url: Option<String>,
    pub state: RecordState,
    /// The OAuth error code that put the record in `ReauthRequired`.
    pub state_code: Option<String>,
    /// SHA-256 of the config seed refresh token last applied (a new seed value re-seeds).
    pub seed_fingerprint: Option<String>,
}

impl TokenRecord {
    pub fn empty() -> Self {
        Self {
            version: 0,
            access_token: None,
            access_expires_at_ms: None,
            access_issued_at_ms: None,
            refresh_token: None,
            scopes: Vec::new(),
            instance_url: None,
            state: RecordState::Ok,
            state_code: None,
            seed_fingerprint: None,
        }
    }

    /// An access token that stays valid for at least `min_ms` more.
    pub fn valid_access(&self, now: i64, min_ms: i64) -> bool {
        self.access_token.is_some() && self.access_expires_at_ms.is_some_and(|e| e > now + min_ms)
    }
}

/// A record as stored: secrets sealed, scopes joined.
#[derive(Debug, Clone)]
struct RawRow {
    pub version: i64,
    pub key_id: String,
    pub access_token: Option<Vec<u8>>,
    pub access_expires_at: Option<i64>,
    pub access_issued_at: Option<i64>,
    pub refresh_token: Option<Vec<u8>>,
    pub scopes: String,
    pub instance_url: Option<String>,
    pub state: String,
    pub state_code: Option<String>,
    pub seed_fingerprint: Option<String>,
}

/// The placeholder row `lock` creates so there is always a row to lock.
const EMPTY_STATE: &str = "empty";

fn decode(
    keys: &KeyRing,
    connection: &str,
    raw: RawRow,
) -> Result<Option<TokenRecord>, StoreError> {
    if raw.state == EMPTY_STATE {
        return Ok(None);
    }
    let open = |field: &str, blob: Option<Vec<u8>>| -> Result<Option<Secret>, StoreError> {
        blob.map(|b| keys.open(&raw.key_id, connection, field, &b))
            .transpose()
            .map_err(StoreError::Corrupt)
    };
    let state = match raw.state.as_str() {
        "ok" => RecordState::Ok,
        "reauth_required" => RecordState::ReauthRequired,
        other => {
            return Err(StoreError::Corrupt(format!(
                "unknown state {other:?} for {connection}"
            )))
        }
    };
    Ok(Some(TokenRecord {
        version: raw.version,
        access_token: open("access_token", raw.access_token.clone())?,
        access_expires_at_ms: raw.access_expires_at,
        access_issued_at_ms: raw.access_issued_at,
        refresh_token: open("refresh_token", raw.refresh_token.clone())?,
        scopes: raw
            .scopes
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        instance_url: raw.instance_url,
        state,
        state_code: raw.state_code,
        seed_fingerprint: raw.seed_fingerprint,
    }))
}

fn encode(keys: &KeyRing, connection: &str, record: &TokenRecord) -> Result<RawRow, StoreError> {
    let seal = |field: &str, value: &Option<Secret>| -> Result<Option<Vec<u8>>, StoreError> {
        value
            .as_ref()
            .map(|v| keys.seal(connection, field, v))
            .transpose()
            .map_err(StoreError::Corrupt)
    };
    Ok(RawRow {
        version: record.version,
        key_id: keys.current_id().to_owned(),
        access_token: seal("access_token", &record.access_token)?,
        access_expires_at: record.access_expires_at_ms,
        access_issued_at: record.access_issued_at_ms,
        refresh_token: seal("refresh_token", &record.refresh_token)?,
        scopes: record.scopes.join(" "),
        instance_url: record.instance_url.clone(),
        state: match record.state {
            RecordState::Ok => "ok",
            RecordState::ReauthRequired => "reauth_required",
        }
        .to_owned(),
        state_code: record.state_code.clone(),
        seed_fingerprint: record.seed_fingerprint.clone(),
    })
}

enum Backend {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

/// The credential store of this process.
pub struct Store {
    backend: Backend,
    keys: KeyRing,
}

/// A connection's row, locked for a read-modify-write. Dropping it without `commit` rolls back.
pub struct RowLock<'a> {
    store: &'a Store,
    connection: String,
    /// The record as it was when the lock was taken (`None`: never stored).
    pub current: Option<TokenRecord>,
    read_version: i64,
    inner: LockInner,
}

enum LockInner {
    Sqlite,
    Postgres(postgres::PgLock),
}

impl Store {
    /// Opens the configured store and runs its migrations. An embedded store locks its data
    /// directory until the `Store` is dropped ([`StoreError::DataDirInUse`] if another holds
    /// it). `lock_wait` bounds how long a process waits for another's refresh (PostgreSQL
    /// `lock_timeout`).
    pub async fn open(
        config: &StoreConfig,
        keys: KeyRing,
        lock_wait: std::time::Duration,
    ) -> Result<Self, StoreError> {
        let backend = match &config.url {
            Some(url)
                if url.expose().starts_with("postgres://")
                    || url.expose().starts_with("postgresql://") =>
            {
                Backend::Postgres(
                    postgres::PgStore::open(url, config.schema.as_deref(), lock_wait).await?,
                )
            }
            Some(_) => {
                return Err(StoreError::Unavailable(
                    "[store] url must start with postgres://".to_owned(),
                ))
            }
            // The lock comes first: a second process must not even run migrations.
            None => Backend::Sqlite(sqlite::SqliteStore::open(&config.data_dir).await?),
        };
        Ok(Self { backend, keys })
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.ping().await,
            Backend::Postgres(p) => p.ping().await,
        }
    }

    /// The schema version after migrations.
    #[cfg(test)]
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.schema_version().await,
            Backend::Postgres(p) => p.schema_version().await,
        }
    }

    /// Reads a record without locking it.
    pub async fn load(&self, connection: &str) -> Result<Option<TokenRecord>, StoreError> {
        let raw = match &self.backend {
            Backend::Sqlite(s) => s.load(connection).await?,
            Backend::Postgres(p) => p.load(connection).await?,
        };
        match raw {
            Some(raw) => decode(&self.keys, connection, raw),
            None => Ok(None),
        }
    }

    /// Locks a connection's row (creating a placeholder if needed) and reads it.
    pub async fn lock(&self, connection: &str) -> Result<RowLock<'_>, StoreError> {
        let (raw, inner) = match &self.backend {
            Backend::Sqlite(s) => (s.ensure_and_read(connection).await?, LockInner::Sqlite),
            Backend::Postgres(p) => {
                let (lock, raw) = p.lock(connection).await?;
                (raw, LockInner::Postgres(lock))
            }
        };
        let read_version = raw.version;
        let current = decode(&self.keys, connection, raw)?;
        Ok(RowLock {
            store: self,
            connection: connection.to_owned(),
            current,
            read_version,
            inner,
        })
    }

    /// Every connection with a stored record.
    pub async fn connections(&self) -> Result<Vec<String>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.connections().await,
            Backend::Postgres(p) => p.connections().await,
        }
    }
}

impl RowLock<'_> {
    /// The row version read when the lock was taken (0 for a placeholder): a commit writes
    /// only over this version.
    pub fn read_version(&self) -> i64 {
        self.read_version
    }

    /// Writes `record` (its `version` is ignored) and releases the lock. Returns the new version.
    /// When this returns, the record is durable: only then may the new access token be used.
    pub async fn commit(self, record: &TokenRecord) -> Result<i64, StoreError> {
        let mut raw = encode(&self.store.keys, &self.connection, record)?;
        raw.version = self.read_version + 1;
        match (self.inner, &self.store.backend) {
            (LockInner::Sqlite, Backend::Sqlite(s)) => {
                s.write_cas(&self.connection, self.read_version, raw).await
            }
            (LockInner::Postgres(lock), Backend::Postgres(p)) => {
                p.commit(lock, &self.connection, raw).await
            }
            _ => Err(StoreError::Unavailable("store backend mismatch".to_owned())),
        }
    }

    /// Releases the lock without writing.
    pub async fn release(self) {
        if let (LockInner::Postgres(lock), Backend::Postgres(p)) = (self.inner, &self.store.backend)
        {
            p.rollback(lock).await;
        }
    }
}

/// Re-seals every record under `new_keys`' current key. Returns how many were re-sealed.
pub async fn reseal_all(store: &Store) -> Result<usize, StoreError> {
    let mut count = 0;
    for connection in store.connections().await? {
        let lock = store.lock(&connection).await?;
        match lock.current.clone() {
            Some(record) => {
                lock.commit(&record).await?;
                count += 1;
            }
            None => lock.release().await,
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests;
