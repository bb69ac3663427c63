//! The unified API's sync state: for each caller, connection and model, where the caller's
//! completed walks have reached (the high-water mark of `remote_modified_at`), how many records
//! the last one saw, when walks last succeeded and failed, and the provider's sync token (Ashby)
//! for the next incremental walk. A service resumes from it after a crash; an SRE sees
//! staleness. Per connection, when it was first configured and first walked (onboarding).
//!
//! High-water marks are compared as text, so they must be written in one fixed format (the
//! proxy writes RFC 3339 UTC with milliseconds, `2026-01-02T03:04:05.678Z`). Updates are single
//! upserts, so processes of a fleet sharing PostgreSQL never lose each other's progress: the
//! mark only moves forward.

use crate::{Backend, Store, StoreError};
use rusqlite::OptionalExtension;

/// One caller's sync state for one connection and model.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SyncRecord {
    pub caller: String,
    pub connection: String,
    pub model: String,
    /// The highest `remote_modified_at` any completed walk saw.
    pub high_water: Option<String>,
    /// Records the last completed walk returned.
    pub records_seen: i64,
    pub walks_completed: i64,
    pub last_success_at_ms: Option<i64>,
    pub last_failure_at_ms: Option<i64>,
    pub last_failure_category: Option<String>,
    /// Not served: the provider's token is the store's business (it is kept for the next
    /// walk, not shown).
    #[serde(skip)]
    pub sync_token: Option<String>,
    pub updated_at_ms: i64,
}

/// A completed walk, as [`Store::sync_walk_completed`] records it.
#[derive(Debug, Clone)]
pub struct WalkCompleted<'a> {
    pub caller: &'a str,
    pub connection: &'a str,
    pub model: &'a str,
    /// In the fixed format the module notes say.
    pub high_water: Option<&'a str>,
    pub records_seen: i64,
    pub sync_token: Option<&'a str>,
    pub at_ms: i64,
}

const COLUMNS: &str = "caller, connection, model, high_water, records_seen, walks_completed, last_success_at, last_failure_at, last_failure_category, sync_token, updated_at";

// The mark moves forward only; a walk that saw no record keeps the old mark, and one that got
// no sync token keeps the old token.
const COMPLETED_SQLITE: &str = "INSERT INTO sync_state (caller, connection, model, high_water, records_seen, walks_completed, last_success_at, sync_token, updated_at)
     VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?6)
     ON CONFLICT (caller, connection, model) DO UPDATE SET
       high_water = CASE WHEN excluded.high_water IS NULL THEN sync_state.high_water
                         WHEN sync_state.high_water IS NULL OR excluded.high_water > sync_state.high_water THEN excluded.high_water
                         ELSE sync_state.high_water END,
       records_seen = excluded.records_seen,
       walks_completed = sync_state.walks_completed + 1,
       last_success_at = excluded.last_success_at,
       sync_token = COALESCE(excluded.sync_token, sync_state.sync_token),
       updated_at = excluded.updated_at";

const COMPLETED_POSTGRES: &str = "INSERT INTO sync_state (caller, connection, model, high_water, records_seen, walks_completed, last_success_at, sync_token, updated_at)
     VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $6)
     ON CONFLICT (caller, connection, model) DO UPDATE SET
       high_water = CASE WHEN excluded.high_water IS NULL THEN sync_state.high_water
                         WHEN sync_state.high_water IS NULL OR excluded.high_water > sync_state.high_water THEN excluded.high_water
                         ELSE sync_state.high_water END,
       records_seen = excluded.records_seen,
       walks_completed = sync_state.walks_completed + 1,
       last_success_at = excluded.last_success_at,
       sync_token = COALESCE(excluded.sync_token, sync_state.sync_token),
       updated_at = excluded.updated_at";

const FAILED_SQLITE: &str = "INSERT INTO sync_state (caller, connection, model, last_failure_at, last_failure_category, updated_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?4)
     ON CONFLICT (caller, connection, model) DO UPDATE SET
       last_failure_at = excluded.last_failure_at,
       last_failure_category = excluded.last_failure_category,
       updated_at = excluded.updated_at";

const FAILED_POSTGRES: &str = "INSERT INTO sync_state (caller, connection, model, last_failure_at, last_failure_category, updated_at)
     VALUES ($1, $2, $3, $4, $5, $4)
     ON CONFLICT (caller, connection, model) DO UPDATE SET
       last_failure_at = excluded.last_failure_at,
       last_failure_category = excluded.last_failure_category,
       updated_at = excluded.updated_at";

fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<SyncRecord> {
    Ok(SyncRecord {
        caller: r.get(0)?,
        connection: r.get(1)?,
        model: r.get(2)?,
        high_water: r.get(3)?,
        records_seen: r.get(4)?,
        walks_completed: r.get(5)?,
        last_success_at_ms: r.get(6)?,
        last_failure_at_ms: r.get(7)?,
        last_failure_category: r.get(8)?,
        sync_token: r.get(9)?,
        updated_at_ms: r.get(10)?,
    })
}

fn from_postgres(r: &tokio_postgres::Row) -> Result<SyncRecord, tokio_postgres::Error> {
    Ok(SyncRecord {
        caller: r.try_get(0)?,
        connection: r.try_get(1)?,
        model: r.try_get(2)?,
        high_water: r.try_get(3)?,
        records_seen: r.try_get(4)?,
        walks_completed: r.try_get(5)?,
        last_success_at_ms: r.try_get(6)?,
        last_failure_at_ms: r.try_get(7)?,
        last_failure_category: r.try_get(8)?,
        sync_token: r.try_get(9)?,
        updated_at_ms: r.try_get(10)?,
    })
}

impl Store {
    /// Records a completed walk and returns the state after it.
    pub async fn sync_walk_completed(
        &self,
        walk: WalkCompleted<'_>,
    ) -> Result<SyncRecord, StoreError> {
        let key = (
            walk.caller.to_owned(),
            walk.connection.to_owned(),
            walk.model.to_owned(),
        );
        match &self.backend {
            Backend::Sqlite(s) => {
                let high_water = walk.high_water.map(str::to_owned);
                let token = walk.sync_token.map(str::to_owned);
                let (records, at) = (walk.records_seen, walk.at_ms);
                let (caller, connection, model) = key.clone();
                s.run(move |c| {
                    c.execute(
                        COMPLETED_SQLITE,
                        rusqlite::params![
                            caller, connection, model, high_water, records, at, token
                        ],
                    )
                    .map_err(crate::sqlite::unavailable)?;
                    Ok(())
                })
                .await?;
            }
            Backend::Postgres(p) => {
                let client = p.client().await?;
                client
                    .execute(
                        COMPLETED_POSTGRES,
                        &[
                            &walk.caller,
                            &walk.connection,
                            &walk.model,
                            &walk.high_water,
                            &walk.records_seen,
                            &walk.at_ms,
                            &walk.sync_token,
                        ],
                    )
                    .await
                    .map_err(crate::postgres::unavailable)?;
                p.put_back(client);
            }
        }
        self.sync_state(&key.0, &key.1, &key.2)
            .await?
            .ok_or_else(|| StoreError::Unavailable("sync state row vanished".to_owned()))
    }

    /// Records that a walk failed (`category`: the error taxonomy's name).
    pub async fn sync_walk_failed(
        &self,
        caller: &str,
        connection: &str,
        model: &str,
        category: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let row = (
                    caller.to_owned(),
                    connection.to_owned(),
                    model.to_owned(),
                    category.to_owned(),
                );
                s.run(move |c| {
                    let (caller, connection, model, category) = row;
                    c.execute(
                        FAILED_SQLITE,
                        rusqlite::params![caller, connection, model, at_ms, category],
                    )
                    .map_err(crate::sqlite::unavailable)?;
                    Ok(())
                })
                .await
            }
            Backend::Postgres(p) => {
                let client = p.client().await?;
                client
                    .execute(
                        FAILED_POSTGRES,
                        &[&caller, &connection, &model, &at_ms, &category],
                    )
                    .await
                    .map_err(crate::postgres::unavailable)?;
                p.put_back(client);
                Ok(())
            }
        }
    }

    /// One caller's state for one connection and model.
    pub async fn sync_state(
        &self,
        caller: &str,
        connection: &str,
        model: &str,
    ) -> Result<Option<SyncRecord>, StoreError> {
        let filter = SyncFilter {
            caller: Some(caller.to_owned()),
            connection: Some(connection.to_owned()),
            model: Some(model.to_owned()),
        };
        Ok(self.sync_states(filter, 1).await?.into_iter().next())
    }

    /// The states matching `filter`, ordered by connection, model and caller, at most `limit`.
    pub async fn sync_states(
        &self,
        filter: SyncFilter,
        limit: i64,
    ) -> Result<Vec<SyncRecord>, StoreError> {
        // `?n IS NULL OR column = ?n`: one statement for every combination of filters.
        match &self.backend {
            Backend::Sqlite(s) => {
                s.run(move |c| {
                    let sql = format!(
                        "SELECT {COLUMNS} FROM sync_state
                         WHERE (?1 IS NULL OR caller = ?1) AND (?2 IS NULL OR connection = ?2) AND (?3 IS NULL OR model = ?3)
                         ORDER BY connection, model, caller LIMIT ?4"
                    );
                    let mut statement = c.prepare(&sql).map_err(crate::sqlite::unavailable)?;
                    let rows = statement
                        .query_map(
                            rusqlite::params![filter.caller, filter.connection, filter.model, limit],
                            from_sqlite,
                        )
                        .map_err(crate::sqlite::unavailable)?;
                    rows.collect::<Result<Vec<_>, _>>()
                        .map_err(crate::sqlite::unavailable)
                })
                .await
            }
            Backend::Postgres(p) => {
                let client = p.client().await?;
                let sql = format!(
                    "SELECT {COLUMNS} FROM sync_state
                     WHERE ($1::TEXT IS NULL OR caller = $1) AND ($2::TEXT IS NULL OR connection = $2) AND ($3::TEXT IS NULL OR model = $3)
                     ORDER BY connection, model, caller LIMIT $4"
                );
                let rows = client
                    .query(
                        &sql,
                        &[&filter.caller, &filter.connection, &filter.model, &limit],
                    )
                    .await
                    .map_err(crate::postgres::unavailable)?;
                p.put_back(client);
                rows.iter()
                    .map(from_postgres)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(crate::postgres::unavailable)
            }
        }
    }

    /// Notes that `connection` is configured (the first call's time is kept) and returns when
    /// it was first seen and first walked.
    pub async fn sync_connection_seen(
        &self,
        connection: &str,
        at_ms: i64,
    ) -> Result<Onboarding, StoreError> {
        self.onboarding(connection, at_ms, false).await
    }

    /// Notes a successful unified walk of `connection` (the first one's time is kept) and
    /// returns its onboarding times.
    pub async fn sync_connection_walked(
        &self,
        connection: &str,
        at_ms: i64,
    ) -> Result<Onboarding, StoreError> {
        self.onboarding(connection, at_ms, true).await
    }

    async fn onboarding(
        &self,
        connection: &str,
        at_ms: i64,
        walked: bool,
    ) -> Result<Onboarding, StoreError> {
        let walk_at = walked.then_some(at_ms);
        match &self.backend {
            Backend::Sqlite(s) => {
                let connection = connection.to_owned();
                s.run(move |c| {
                    c.execute(
                        "INSERT INTO sync_onboarding (connection, first_seen_at, first_walk_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT (connection) DO UPDATE SET first_walk_at = COALESCE(sync_onboarding.first_walk_at, excluded.first_walk_at)",
                        rusqlite::params![connection, at_ms, walk_at],
                    )
                    .map_err(crate::sqlite::unavailable)?;
                    c.query_row(
                        "SELECT first_seen_at, first_walk_at FROM sync_onboarding WHERE connection = ?1",
                        rusqlite::params![connection],
                        |r| Ok(Onboarding { first_seen_at_ms: r.get(0)?, first_walk_at_ms: r.get(1)? }),
                    )
                    .optional()
                    .map_err(crate::sqlite::unavailable)?
                    .ok_or_else(|| crate::sqlite::unavailable("onboarding row vanished"))
                })
                .await
            }
            Backend::Postgres(p) => {
                let client = p.client().await?;
                let row = client
                    .query_one(
                        "INSERT INTO sync_onboarding (connection, first_seen_at, first_walk_at) VALUES ($1, $2, $3)
                         ON CONFLICT (connection) DO UPDATE SET first_walk_at = COALESCE(sync_onboarding.first_walk_at, excluded.first_walk_at)
                         RETURNING first_seen_at, first_walk_at",
                        &[&connection, &at_ms, &walk_at],
                    )
                    .await
                    .map_err(crate::postgres::unavailable)?;
                p.put_back(client);
                Ok(Onboarding {
                    first_seen_at_ms: row.try_get(0).map_err(crate::postgres::unavailable)?,
                    first_walk_at_ms: row.try_get(1).map_err(crate::postgres::unavailable)?,
                })
            }
        }
    }
}

/// Which sync states to list; `None` matches any.
#[derive(Debug, Clone, Default)]
pub struct SyncFilter {
    pub caller: Option<String>,
    pub connection: Option<String>,
    pub model: Option<String>,
}

/// When a connection was first configured and first walked through the unified API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Onboarding {
    pub first_seen_at_ms: i64,
    pub first_walk_at_ms: Option<i64>,
}

impl Onboarding {
    /// Configuration to first successful walk, once there was one.
    pub fn seconds(&self) -> Option<f64> {
        let walked = self.first_walk_at_ms?;
        Some((walked - self.first_seen_at_ms).max(0) as f64 / 1000.0)
    }
}
