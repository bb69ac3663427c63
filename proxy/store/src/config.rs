//! The `[store]` table of the config: the store's own schema.

use crate::Secret;
use serde::Deserialize;
use std::path::PathBuf;

/// Where credentials (and, later, audit records) are kept: the `[store]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `postgres://...` for a fleet sharing connections; unset for the embedded SQLite store.
    pub url: Option<Secret>,
    /// PostgreSQL schema holding the credential tables (created if missing). Default `public`.
    pub schema: Option<String>,
    /// Directory of the embedded store. One process at a time: it is locked while the store
    /// is open, so processes that share a store use PostgreSQL (`url`).
    pub data_dir: PathBuf,
    /// Environment variable holding the base64 AES-256 key that encrypts secrets at rest.
    pub key_env: String,
    /// Or a file holding that key.
    pub key_file: Option<PathBuf>,
    /// During a key rotation: the environment variable holding the previous key, so records
    /// not yet re-sealed stay readable.
    pub previous_key_env: Option<String>,
    /// Or a file holding the previous key.
    pub previous_key_file: Option<PathBuf>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: None,
            schema: None,
            data_dir: PathBuf::from("data"),
            key_env: "GATEHOUSE_STORE_KEY".to_owned(),
            key_file: None,
            previous_key_env: None,
            previous_key_file: None,
        }
    }
}
