//! The sync-state hooks the unified walk calls, with the interface of the sync-state store
//! (`unified/sync_state.rs`, reached as `state.sync`) that replaces this shim when it lands.
//! Until then a walk's outcome is logged, and provider sync tokens are kept in memory for the
//! process's life (so an incremental Ashby walk can use the token of the walk before it).

use crate::error::Category;
use gatehouse_models::Model;
use parking_lot::Mutex;
use std::collections::HashMap;

/// A walk whose last page was served.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WalkDone {
    pub caller: String,
    pub connection: String,
    pub model: Model,
    /// The highest `remote_modified_at` the walk served (RFC 3339).
    pub high_water: Option<String>,
    pub records_seen: u64,
    /// The provider's sync token from the walk's last page (Ashby), for the next walk.
    pub sync_token: Option<String>,
}

type Key = (String, String, Model);

/// A completed walk's sync token and the highest `remote_modified_at` that walk served.
type Kept = (String, Option<String>);

#[derive(Debug, Default)]
pub(crate) struct SyncShim {
    tokens: Mutex<HashMap<Key, Kept>>,
}

impl SyncShim {
    pub fn page_served(&self, connection: &str, model: Model, records: u64) {
        tracing::debug!(
            connection,
            model = model.label(),
            records,
            "unified page served"
        );
    }

    pub async fn walk_completed(&self, done: WalkDone) {
        tracing::info!(
            caller = done.caller,
            connection = done.connection,
            model = done.model.label(),
            records_seen = done.records_seen,
            high_water = done.high_water.as_deref().unwrap_or("none"),
            "unified walk completed"
        );
        if let Some(token) = done.sync_token {
            self.tokens.lock().insert(
                (done.caller, done.connection, done.model),
                (token, done.high_water),
            );
        }
    }

    pub async fn walk_failed(
        &self,
        caller: &str,
        connection: &str,
        model: Model,
        category: Category,
    ) {
        tracing::info!(
            caller,
            connection,
            model = model.label(),
            category = category.as_str(),
            "unified walk failed"
        );
    }

    pub async fn sync_token(&self, caller: &str, connection: &str, model: Model) -> Option<String> {
        self.kept(caller, connection, model).map(|(token, _)| token)
    }

    /// The high-water mark of the last completed walk (RFC 3339), which the sync state keeps.
    pub async fn high_water(&self, caller: &str, connection: &str, model: Model) -> Option<String> {
        self.kept(caller, connection, model)
            .and_then(|(_, high_water)| high_water)
    }

    fn kept(&self, caller: &str, connection: &str, model: Model) -> Option<Kept> {
        self.tokens
            .lock()
            .get(&(caller.to_owned(), connection.to_owned(), model))
            .cloned()
    }
}
