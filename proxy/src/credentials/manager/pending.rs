//! New tokens the store could not take yet.
//!
//! With rotation, a successful refresh kills the refresh token it used. If the store write
//! then fails, dropping the new pair would leave only the dead token, and the next refresh
//! would end the connection in `reauth_required` (Salesforce even revokes the whole family on
//! reuse). So the pair is kept here, in memory, and written before anything else:
//!
//! - the write is retried with backoff inside the refresh that got the pair, then by later
//!   refreshes (waiters, requests, the background task) once the shared backoff allows;
//! - while a pair is pending the token endpoint is never called (the only refresh token the
//!   store knows is the dead one);
//! - the new access token is used only once the write succeeded: the rule "durable before
//!   use" stands, so a process that dies here is the documented "killed between the
//!   provider's reply and the commit" case, and nothing else changes.

use super::{Active, Need, OAuthConnection, SharedFailure};
use crate::credentials::store::{now_ms, TokenRecord};
use crate::credentials::CredentialError;
use std::sync::Arc;
use std::time::Duration;

/// Waits before each write attempt inside the refresh that got the new pair.
pub(super) const IN_FLIGHT_RETRIES: &[Duration] = &[
    Duration::from_millis(200),
    Duration::from_millis(500),
    Duration::from_millis(1000),
];
/// Later attempts (after the shared backoff): one now, one shortly after.
const LATER_RETRIES: &[Duration] = &[Duration::ZERO, Duration::from_millis(250)];

const STORE_DOWN: &str = "credential_store_unavailable";

/// A refreshed token pair waiting to be written.
pub(crate) struct PendingPair {
    /// The record to write: new access token, rotated refresh token.
    pub record: TokenRecord,
    /// The row version the refresh read: the write goes over this version only.
    pub base_version: i64,
}

pub(super) enum Persisted {
    /// Written (or found already written) and installed.
    Installed(Option<Arc<Active>>),
    /// Somebody else wrote the row meanwhile (connect flow, new seed): the pair is dropped and
    /// the stored record installed.
    Superseded,
    /// The store is still unavailable; the pair stays pending.
    StillPending,
}

impl OAuthConnection {
    pub(super) fn has_pending(&self) -> bool {
        self.pending.lock().is_some()
    }

    pub(super) fn keep_pending(&self, record: TokenRecord, base_version: i64) {
        *self.pending.lock() = Some(PendingPair {
            record,
            base_version,
        });
    }

    /// Tries to write the pending pair, waiting `delays[i]` before attempt `i`.
    pub(super) async fn persist_pending(&self, delays: &[Duration]) -> Persisted {
        for delay in delays {
            if !delay.is_zero() {
                tokio::time::sleep(*delay).await;
            }
            let Some((mut record, base_version)) = self
                .pending
                .lock()
                .as_ref()
                .map(|p| (p.record.clone(), p.base_version))
            else {
                return Persisted::Superseded;
            };
            let lock = match self.store.lock(&self.id).await {
                Ok(lock) => lock,
                Err(e) => {
                    tracing::warn!(connection = %self.id, error = %e, "credential store still unavailable; new tokens stay pending");
                    continue;
                }
            };
            if lock.read_version() != base_version {
                let current = lock.current.clone();
                lock.release().await;
                self.pending.lock().take();
                // A commit whose reply was lost may have landed after all: then the row
                // holds our refresh token.
                let ours = current.as_ref().is_some_and(|c| {
                    c.refresh_token.as_ref().map(|t| t.expose())
                        == record.refresh_token.as_ref().map(|t| t.expose())
                });
                let Some(current) = current else {
                    return Persisted::Superseded;
                };
                if ours {
                    tracing::info!(connection = %self.id, "pending tokens were already stored");
                    self.metrics.refreshed(&self.id, "ok");
                    self.clear_backoff();
                    return Persisted::Installed(self.install(&current));
                }
                tracing::warn!(connection = %self.id, "the stored record changed while new tokens were pending; using the stored record");
                self.install(&current);
                return Persisted::Superseded;
            }
            match lock.commit(&record).await {
                Ok(version) => {
                    record.version = version;
                    self.pending.lock().take();
                    tracing::info!(connection = %self.id, "stored the pending tokens");
                    self.metrics.refreshed(&self.id, "ok");
                    self.clear_backoff();
                    return Persisted::Installed(self.install(&record));
                }
                Err(e) => {
                    tracing::warn!(connection = %self.id, error = %e, "could not store the pending tokens yet");
                }
            }
        }
        Persisted::StillPending
    }

    /// After the write failed for good this time: the shared backoff, and the cached token if
    /// it is still valid, else the typed error.
    pub(super) fn store_down(&self) -> Result<Arc<Active>, CredentialError> {
        self.metrics.refreshed(&self.id, "store_error");
        let failure = SharedFailure::StoreUnavailable(STORE_DOWN.to_owned());
        let delay = self.record_failure(failure.clone());
        self.serve_cached_or(failure, delay)
    }

    /// A refresh while a pair is pending: write it instead of calling the token endpoint.
    pub(super) async fn refresh_pending(
        &self,
        stale: i64,
        need: Need,
    ) -> Result<Arc<Active>, CredentialError> {
        match self.persist_pending(LATER_RETRIES).await {
            Persisted::Installed(Some(active)) if good_enough(&active, need, now_ms()) => {
                Ok(active)
            }
            // Written but already due (the outage outlasted it): refresh with the new,
            // now durable, refresh token.
            Persisted::Installed(Some(active)) => {
                self.refresh_under_store_lock(active.version, need).await
            }
            Persisted::Installed(None) => Err(self.unavailable_now("token_unusable")),
            Persisted::Superseded => self.refresh_under_store_lock(stale, need).await,
            Persisted::StillPending => self.store_down(),
        }
    }

    /// The outcome of the retries inside the refresh that got the pair.
    pub(super) fn in_flight_outcome(
        &self,
        persisted: Persisted,
    ) -> Result<Arc<Active>, CredentialError> {
        match persisted {
            Persisted::Installed(Some(active)) => Ok(active),
            Persisted::Installed(None) => Err(self.unavailable_now("token_unusable")),
            // Rare (a connect flow or new seed landed meanwhile): the stored record is
            // installed; the caller's next attempt uses it.
            Persisted::Superseded => self
                .active
                .load_full()
                .ok_or_else(|| self.unavailable_now("stored_record_changed")),
            Persisted::StillPending => self.store_down(),
        }
    }
}

pub(super) fn good_enough(active: &Active, need: Need, now: i64) -> bool {
    match need {
        Need::Fresh => now < active.fresh_until_ms,
        Need::Replacement => now < active.expires_at_ms,
    }
}
