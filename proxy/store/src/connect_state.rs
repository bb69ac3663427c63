//! Pending authorizations of the connect flow, kept in the store so that the callback may
//! reach any process sharing it (a fleet behind one admin URL, or a restart mid-flow).
//!
//! The `state` itself is never stored, only its SHA-256, so a read of the table cannot forge a
//! callback; the PKCE verifier is sealed with the store key like every other secret, bound to
//! its connection and state. Taking a state deletes it in the same statement (single use).
//!
//! Each state names the admin (token id) who started the flow, so the callback, which the
//! provider's redirect brings without any admin credential, still knows on whose word it binds
//! the connection; a completed flow is recorded on the connection's row ([`Store::record_connect`]).

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
    /// `None` for a state stored before migration 3.
    pub started_by: Option<String>,
}

/// A connect flow being started, as [`Store::put_connect_state`] records it.
pub struct NewConnectState<'a> {
    /// The random `state` sent to the provider (only its hash is stored).
    pub state: &'a str,
    pub connection: &'a str,
    pub verifier: &'a Secret,
    /// The id of the admin token that started the flow.
    pub started_by: &'a str,
    pub created_at_ms: i64,
}

/// A pending authorization, its verifier opened.
pub struct ConnectState {
    pub connection: String,
    pub verifier: Secret,
    pub created_at_ms: i64,
    /// The admin token id that started the flow; `None` for a flow started before the store
    /// recorded it (migration 3).
    pub started_by: Option<String>,
}

/// What the last completed connect flow of a connection recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRecord {
    /// The provider account the grant belongs to, as the proxy wrote it (JSON); `None` when
    /// the provider did not say.
    pub account: Option<String>,
    /// The admin token id that started the flow.
    pub by: String,
    pub at_ms: i64,
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
        new: NewConnectState<'_>,
        expired_before_ms: i64,
        max_pending: i64,
    ) -> Result<bool, StoreError> {
        let state_hash = state_hash(new.state);
        let sealed = self
            .keys
            .seal(new.connection, &verifier_field(&state_hash), new.verifier)
            .map_err(StoreError::Corrupt)?;
        let raw = RawConnectState {
            state_hash,
            connection: new.connection.to_owned(),
            key_id: self.keys.current_id().to_owned(),
            verifier: sealed,
            created_at: new.created_at_ms,
            started_by: Some(new.started_by.to_owned()),
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
            started_by: raw.started_by,
        }))
    }

    /// Records on the connection's row who completed a connect flow and which provider account
    /// the new grant belongs to. Written after the grant itself; token refreshes leave it alone.
    /// Returns `false` when the connection has no row (no grant was stored).
    pub async fn record_connect(
        &self,
        connection: &str,
        record: &ConnectRecord,
    ) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.record_connect(connection, record.clone()).await,
            Backend::Postgres(p) => p.record_connect(connection, record).await,
        }
    }

    /// What the last completed connect flow of `connection` recorded, if any.
    pub async fn last_connect(
        &self,
        connection: &str,
    ) -> Result<Option<ConnectRecord>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.last_connect(connection).await,
            Backend::Postgres(p) => p.last_connect(connection).await,
        }
    }
}
