//! The store's schema, as one ordered list of migrations shared by both backends.
//!
//! Each database records the versions it has applied in [`VERSION_TABLE`]; opening a store
//! applies every later migration in order, each in the same transaction as its version row, so
//! a migration is applied exactly once even when a fleet starts at the same moment (SQLite: an
//! immediate transaction; PostgreSQL: an advisory lock).
//!
//! To add a table: append a [`Migration`] with the next version and the DDL in both dialects
//! (SQLite: `INTEGER`, `BLOB`; PostgreSQL: `BIGINT`, `BYTEA`). Never edit or reorder a migration
//! that has shipped: a store that already applied it would never see the change.

/// One schema change, in both SQL dialects.
pub(crate) struct Migration {
    /// 1, 2, 3, ...: no gaps, never reused.
    pub version: i64,
    /// What it adds, for the error message if it fails.
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// Where applied versions are recorded. The name predates the store's other tables; it stays
/// so that existing stores keep their history.
pub(crate) const VERSION_TABLE: &str = "credential_schema_version";

pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "credential tokens",
        sqlite: "CREATE TABLE credential_tokens (
            connection TEXT PRIMARY KEY,
            version INTEGER NOT NULL,
            key_id TEXT NOT NULL,
            access_token BLOB,
            access_expires_at INTEGER,
            access_issued_at INTEGER,
            refresh_token BLOB,
            scopes TEXT NOT NULL DEFAULT '',
            instance_url TEXT,
            state TEXT NOT NULL,
            state_code TEXT,
            seed_fingerprint TEXT,
            updated_at INTEGER NOT NULL
        );",
        postgres: "CREATE TABLE credential_tokens (
            connection TEXT PRIMARY KEY,
            version BIGINT NOT NULL,
            key_id TEXT NOT NULL,
            access_token BYTEA,
            access_expires_at BIGINT,
            access_issued_at BIGINT,
            refresh_token BYTEA,
            scopes TEXT NOT NULL DEFAULT '',
            instance_url TEXT,
            state TEXT NOT NULL,
            state_code TEXT,
            seed_fingerprint TEXT,
            updated_at BIGINT NOT NULL
        );",
    },
    // Connect-flow `state`s, so the callback may reach any process sharing the store.
    Migration {
        version: 2,
        name: "connect-flow states",
        sqlite: "CREATE TABLE credential_connect_states (
            state_hash TEXT PRIMARY KEY,
            connection TEXT NOT NULL,
            key_id TEXT NOT NULL,
            verifier BLOB NOT NULL,
            created_at INTEGER NOT NULL
        );",
        postgres: "CREATE TABLE credential_connect_states (
            state_hash TEXT PRIMARY KEY,
            connection TEXT NOT NULL,
            key_id TEXT NOT NULL,
            verifier BYTEA NOT NULL,
            created_at BIGINT NOT NULL
        );",
    },
    // Who started a connect flow (the admin token id), and whom the last completed flow bound
    // the connection to: the provider account (JSON), the admin id and when.
    Migration {
        version: 3,
        name: "connect-flow admin and account",
        sqlite: "ALTER TABLE credential_connect_states ADD COLUMN started_by TEXT;
            ALTER TABLE credential_tokens ADD COLUMN connected_account TEXT;
            ALTER TABLE credential_tokens ADD COLUMN connected_by TEXT;
            ALTER TABLE credential_tokens ADD COLUMN connected_at INTEGER;",
        postgres: "ALTER TABLE credential_connect_states ADD COLUMN started_by TEXT;
            ALTER TABLE credential_tokens ADD COLUMN connected_account TEXT;
            ALTER TABLE credential_tokens ADD COLUMN connected_by TEXT;
            ALTER TABLE credential_tokens ADD COLUMN connected_at BIGINT;",
    },
    // The unified API's sync state: per caller, connection and model, the high-water mark of
    // the last completed walk and how walks went; and per connection, when it was first
    // configured and first walked (onboarding time).
    Migration {
        version: 4,
        name: "sync state",
        sqlite: "CREATE TABLE sync_state (
            caller TEXT NOT NULL,
            connection TEXT NOT NULL,
            model TEXT NOT NULL,
            high_water TEXT,
            records_seen INTEGER NOT NULL DEFAULT 0,
            walks_completed INTEGER NOT NULL DEFAULT 0,
            last_success_at INTEGER,
            last_failure_at INTEGER,
            last_failure_category TEXT,
            sync_token TEXT,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (caller, connection, model)
        );
        CREATE TABLE sync_onboarding (
            connection TEXT PRIMARY KEY,
            first_seen_at INTEGER NOT NULL,
            first_walk_at INTEGER
        );",
        postgres: "CREATE TABLE sync_state (
            caller TEXT NOT NULL,
            connection TEXT NOT NULL,
            model TEXT NOT NULL,
            high_water TEXT,
            records_seen BIGINT NOT NULL DEFAULT 0,
            walks_completed BIGINT NOT NULL DEFAULT 0,
            last_success_at BIGINT,
            last_failure_at BIGINT,
            last_failure_category TEXT,
            sync_token TEXT,
            updated_at BIGINT NOT NULL,
            PRIMARY KEY (caller, connection, model)
        );
        CREATE TABLE sync_onboarding (
            connection TEXT PRIMARY KEY,
            first_seen_at BIGINT NOT NULL,
            first_walk_at BIGINT
        );",
    },
];

/// The schema version of a store whose migrations have all run.
#[cfg(test)]
pub(crate) const LATEST: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_up_from_one_without_gaps() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(
                migration.version,
                index as i64 + 1,
                "migration {:?} is out of order",
                migration.name
            );
            assert!(!migration.sqlite.trim().is_empty() && !migration.postgres.trim().is_empty());
        }
    }

    #[test]
    fn every_migration_applies_on_sqlite_in_order() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for migration in MIGRATIONS {
            conn.execute_batch(migration.sqlite)
                .unwrap_or_else(|e| panic!("migration {}: {e}", migration.version));
        }
    }
}
