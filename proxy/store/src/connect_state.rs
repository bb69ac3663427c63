//! Pending authorizations of the connect flow, kept in the store so that the callback may
//! reach any process sharing it (a fleet behind one admin URL, or a restart mid-flow).
//!
//! The `state` itself is never stored, only its SHA-256, so a read of the table cannot forge a
//! callback; the PKCE verifier is sealed with the store key like every other secret, bound to
//! its connection and state. Taking a state deletes it in the same statement (single use).

use crate::{Backend, Secret, Store, StoreError};
use sha2::{Digest, Sha256};

/// A pending authorization as stored.
#[derive(Debug, Clone)]
pub(crate) struct RawConnectState {
    pub state_hash: String,
    pub connection: String,
    pub key_id: String,
    pub verifier: Vec<u8>,
    pub created_at: i64,
}

/// A pending authorization, its verifier opened.
pub struct ConnectState {
    pub connection: String,
    pub verifier: Secret,
    pub created_at_ms: i64,
}

fn state_hash(state: &str) -> String {
    hex::encode(
        Sha256::new()
            .chain_update(b"gatehouse-connect-state:")
            .chain_update(state.as_bytes())
            .finalize(),
    )
}

/// The sealed verifier is bound to its state, so it cannot be moved to another row.
fn verifier_field(state_hash: &str) -> String {
    format!("pkce_verifier:{state_hash}")
}

impl Store {
    /// Records a started connect flow. `expired_before_ms`: states created before this are
    /// dropped first. Returns `false` (and stores nothing) when `max_pending` are waiting.
    pub async fn put_connect_state(
        &self,
        state: &str,
        connection: &str,
        verifier: &Secret,
        created_at_ms: i64,
        expired_before_ms: i64,
        max_pending: i64,
    ) -> Result<bool, StoreError> {
        let state_hash = state_hash(state);
        let sealed = self
            .keys
            .seal(connection, &verifier_field(&state_hash), verifier)
            .map_err(StoreError::Corrupt)?;
        let raw = RawConnectState {
            state_hash,
            connection: connection.to_owned(),
            key_id: self.keys.current_id().to_owned(),
            verifier: sealed,
            created_at: created_at_ms,
        };
        match &self.backend {
            Backend::Sqlite(s) => {
                s.put_connect_state(raw, expired_before_ms, max_pending)
                    .await
            }
            Backend::Postgres(p) => {
                p.put_connect_state(raw, expired_before_ms, max_pending)
                    .await
            }
        }
    }

    /// Takes (deletes and returns) a pending authorization. Whoever takes it first gets it;
    /// every later call, in any process, gets `None`. Expiry is the caller's check.
    pub async fn take_connect_state(
        &self,
        state: &str,
    ) -> Result<Option<ConnectState>, StoreError> {
        let state_hash = state_hash(state);
        let raw = match &self.backend {
            Backend::Sqlite(s) => s.take_connect_state(&state_hash).await?,
            Backend::Postgres(p) => p.take_connect_state(&state_hash).await?,
        };
        let Some(raw) = raw else {
            return Ok(None);
        };
        let verifier = self
            .keys
            .open(
                &raw.key_id,
                &raw.connection,
                &verifier_field(&raw.state_hash),
                &raw.verifier,
            )
            .map_err(StoreError::Corrupt)?;
        Ok(Some(ConnectState {
            connection: raw.connection,
            verifier,
            created_at_ms: raw.created_at,
        }))
    }
}
