//! The refresh itself: single-flight in this process, the store's row lock across processes,
//! the token-endpoint call, and what each kind of failure does to the connection.

use super::pending::{good_enough, IN_FLIGHT_RETRIES};
use super::{
    Active, Need, OAuthConnection, SharedFailure, FALLBACK_LIFETIME_SECS, LONG_BACKOFF,
    MAX_TRANSIENT_BACKOFF,
};
use crate::credentials::http_client::post_form;
use crate::credentials::store::{now_ms, RecordState, RowLock, TokenRecord};
use crate::credentials::CredentialError;
use crate::secret::Secret;
use gatehouse_adapters::oauth::{FailureKind, TokenFailure, TokenGrant};
use rand::Rng;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

impl OAuthConnection {
    /// The single-flight refresh. `stale` is the version the caller found wanting.
    pub(super) async fn refresh(
        &self,
        stale: i64,
        need: Need,
    ) -> Result<Arc<Active>, CredentialError> {
        let _flight = self.refresh_lock.lock().await;
        let now = now_ms();
        if let Some(active) = self.active.load_full() {
            if active.version != stale && good_enough(&active, need, now) {
                return Ok(active);
            }
        }
        if let Some(code) = self.reauth_code() {
            if self.spec.uses_refresh_token() {
                return Err(CredentialError::ReauthRequired {
                    connection: self.id.clone(),
                    reason: code,
                });
            }
        }
        let (until, failure) = {
            let backoff = self.backoff.lock();
            (backoff.until, backoff.failure.clone())
        };
        if let (Some(until), Some(failure)) = (until, failure) {
            let left = until.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                // Shared failure: waiters and later requests get it without another call.
                return self.serve_cached_or(failure, left);
            }
        }
        self.refreshing.store(true, Ordering::Release);
        self.metrics.set_state(&self.id, "refreshing");
        let result = if self.has_pending() {
            self.refresh_pending(stale, need).await
        } else {
            self.refresh_under_store_lock(stale, need).await
        };
        self.refreshing.store(false, Ordering::Release);
        self.metrics.set_state(&self.id, self.state());
        result
    }

    /// Keeps serving a still-valid cached token while the token endpoint is failing.
    pub(super) fn serve_cached_or(
        &self,
        failure: SharedFailure,
        retry_after: Duration,
    ) -> Result<Arc<Active>, CredentialError> {
        if let Some(active) = self.active.load_full() {
            let transient = matches!(
                failure,
                SharedFailure::Unavailable(_) | SharedFailure::StoreUnavailable(_)
            );
            if now_ms() < active.expires_at_ms && transient {
                return Ok(active);
            }
        }
        Err(self.failure_error(failure, retry_after))
    }

    pub(super) fn failure_error(
        &self,
        failure: SharedFailure,
        retry_after: Duration,
    ) -> CredentialError {
        let connection = self.id.clone();
        match failure {
            SharedFailure::Unavailable(code) => CredentialError::TokenEndpointUnavailable {
                connection,
                reason: code,
                retry_after: retry_after.max(Duration::from_secs(1)),
            },
            SharedFailure::StoreUnavailable(code) => CredentialError::StoreUnavailable {
                connection,
                reason: code,
                retry_after: retry_after.max(Duration::from_secs(1)),
            },
            SharedFailure::Misconfigured(code) => CredentialError::Misconfigured {
                connection,
                reason: format!("token endpoint answered {code}"),
            },
            SharedFailure::Reauth(code) => CredentialError::ReauthRequired {
                connection,
                reason: code,
            },
        }
    }

    /// The provider refused the cached token and no other can be had right now: the failure
    /// that stops the refresh (token endpoint or store down), with its backoff.
    pub(super) fn rejected_token_unreplaceable(&self) -> CredentialError {
        let (until, failure) = {
            let backoff = self.backoff.lock();
            (backoff.until, backoff.failure.clone())
        };
        let left = until.map_or(Duration::ZERO, |u| {
            u.saturating_duration_since(Instant::now())
        });
        match failure {
            Some(failure) => self.failure_error(failure, left),
            None => self.unavailable_now("token_endpoint_unavailable"),
        }
    }

    pub(super) fn record_failure(&self, failure: SharedFailure) -> Duration {
        let mut backoff = self.backoff.lock();
        backoff.failures = backoff.failures.saturating_add(1);
        let delay = match failure {
            SharedFailure::Unavailable(_) | SharedFailure::StoreUnavailable(_) => {
                let base = Duration::from_secs(1u64 << backoff.failures.saturating_sub(1).min(5))
                    .min(MAX_TRANSIENT_BACKOFF);
                base.mul_f64(rand::thread_rng().gen_range(0.8..1.2))
            }
            _ => LONG_BACKOFF,
        };
        let code = match &failure {
            SharedFailure::Unavailable(c)
            | SharedFailure::StoreUnavailable(c)
            | SharedFailure::Misconfigured(c)
            | SharedFailure::Reauth(c) => c.clone(),
        };
        backoff.until = Some(Instant::now() + delay);
        backoff.failure = Some(failure);
        drop(backoff);
        self.view.lock().last_error = Some(code);
        delay
    }

    pub(super) async fn refresh_under_store_lock(
        &self,
        stale: i64,
        need: Need,
    ) -> Result<Arc<Active>, CredentialError> {
        let lock = match self.store.lock(&self.id).await {
            Ok(lock) => lock,
            Err(e) => {
                tracing::warn!(connection = %self.id, error = %e, "credential store unavailable for refresh");
                return self.store_down();
            }
        };
        let now = now_ms();
        if let Some(current) = &lock.current {
            let valid_for = |min_ms: i64| current.valid_access(now, min_ms);
            let margin_ms = current
                .access_issued_at_ms
                .zip(current.access_expires_at_ms)
                .map_or(0, |(i, e)| {
                    (self.spec.margin.as_millis() as i64).min((e - i) / 2)
                });
            let good_enough = match need {
                Need::Fresh => valid_for(margin_ms),
                Need::Replacement => valid_for(0),
            };
            if current.version != stale && current.state == RecordState::Ok && good_enough {
                // Another process (or the connect flow) already refreshed: use its token.
                let record = current.clone();
                lock.release().await;
                self.metrics.refreshed(&self.id, "adopted");
                self.clear_backoff();
                return self
                    .install(&record)
                    .ok_or_else(|| self.unavailable_now("stored_token_unusable"));
            }
            if current.state == RecordState::ReauthRequired && self.spec.uses_refresh_token() {
                let record = current.clone();
                lock.release().await;
                self.install(&record);
                return Err(CredentialError::ReauthRequired {
                    connection: self.id.clone(),
                    reason: record
                        .state_code
                        .unwrap_or_else(|| "invalid_grant".to_owned()),
                });
            }
        }
        let refresh_token = lock.current.as_ref().and_then(|r| r.refresh_token.clone());
        let request = match self
            .spec
            .renew_request(&*self.provider, refresh_token.as_ref())
        {
            Ok(Some(request)) => request,
            Ok(None) => {
                lock.release().await;
                self.mark_reauth("no_refresh_token".to_owned());
                self.metrics.set_state(&self.id, "reauth_required");
                return Err(CredentialError::ReauthRequired {
                    connection: self.id.clone(),
                    reason: "no refresh token yet: run the connect flow (GET /connect/<connection> on the admin port) or configure a seed refresh_token".to_owned(),
                });
            }
            Err(reason) => {
                lock.release().await;
                return Err(CredentialError::Misconfigured {
                    connection: self.id.clone(),
                    reason,
                });
            }
        };
        let started = Instant::now();
        let answer = post_form(
            &self.client,
            &self.spec.token_url,
            &request,
            self.spec.timeout,
        )
        .await;
        let parsed = match answer {
            Ok((status, body)) => {
                self.provider
                    .parse_token_response(self.lifetime_default(), status, &body)
            }
            Err(failure) => Err(TokenFailure {
                kind: FailureKind::Transient,
                code: failure.code().to_owned(),
            }),
        };
        tracing::debug!(connection = %self.id, elapsed_ms = started.elapsed().as_millis() as u64, ok = parsed.is_ok(), "token endpoint called");
        match parsed {
            Ok(grant) => {
                let mut record = self.record_from_grant(lock.current.clone(), grant);
                let base_version = lock.read_version();
                match lock.commit(&record).await {
                    Ok(version) => {
                        record.version = version;
                        self.metrics.refreshed(&self.id, "ok");
                        self.clear_backoff();
                        self.install(&record)
                            .ok_or_else(|| self.unavailable_now("token_unusable"))
                    }
                    Err(e) => {
                        // Not durable, so not used yet; but not dropped either: with rotation
                        // the refresh token we sent is dead now (see `pending`).
                        tracing::error!(connection = %self.id, error = %e, "could not store refreshed tokens; keeping them pending and retrying the write");
                        record.version = base_version;
                        self.keep_pending(record, base_version);
                        let persisted = self.persist_pending(IN_FLIGHT_RETRIES).await;
                        self.in_flight_outcome(persisted)
                    }
                }
            }
            Err(failure) => self.handle_failure(lock, failure).await,
        }
    }

    pub(super) fn unavailable_now(&self, code: &str) -> CredentialError {
        CredentialError::TokenEndpointUnavailable {
            connection: self.id.clone(),
            reason: code.to_owned(),
            retry_after: Duration::from_secs(1),
        }
    }

    pub(crate) fn record_from_grant(
        &self,
        previous: Option<TokenRecord>,
        grant: TokenGrant,
    ) -> TokenRecord {
        let now = now_ms();
        let mut record = previous.unwrap_or_else(TokenRecord::empty);
        let lifetime_ms = grant
            .expires_in
            .unwrap_or(FALLBACK_LIFETIME_SECS)
            .saturating_mul(1000)
            .min(i64::MAX as u64 / 4) as i64;
        record.access_token = Some(Secret::new(grant.access_token));
        record.access_issued_at_ms = Some(now);
        record.access_expires_at_ms = Some(now + lifetime_ms);
        // Rotation: a returned refresh token replaces the old one (which is now dead); none
        // returned means the old one stays valid.
        if let Some(refresh_token) = grant.refresh_token {
            record.refresh_token = Some(Secret::new(refresh_token));
        }
        if !grant.scopes.is_empty() {
            record.scopes = grant.scopes;
        }
        if grant.instance_url.is_some() {
            record.instance_url = grant.instance_url;
        }
        record.state = RecordState::Ok;
        record.state_code = None;
        record
    }

    pub(super) async fn handle_failure(
        &self,
        lock: RowLock<'_>,
        failure: TokenFailure,
    ) -> Result<Arc<Active>, CredentialError> {
        let code = failure.code;
        match failure.kind {
            FailureKind::DeadGrant => {
                self.metrics.refreshed(&self.id, "dead_grant");
                tracing::warn!(connection = %self.id, code = %code, "grant is dead: connection needs re-authorisation");
                if self.spec.uses_refresh_token() {
                    // Stored, so every process and every restart fails fast too.
                    let mut record = lock.current.clone().unwrap_or_else(TokenRecord::empty);
                    record.state = RecordState::ReauthRequired;
                    record.state_code = Some(code.clone());
                    record.access_token = None;
                    record.access_expires_at_ms = None;
                    match lock.commit(&record).await {
                        Ok(version) => record.version = version,
                        Err(e) => {
                            tracing::error!(connection = %self.id, error = %e, "could not store reauth_required")
                        }
                    }
                    self.install(&record);
                    self.view.lock().last_recovery_poll = Some(Instant::now());
                } else {
                    // Client credentials / JWT bearer: fixed on the provider side (user
                    // pre-authorisation) or in config, so try again, rarely.
                    lock.release().await;
                    self.mark_reauth(code.clone());
                    self.active.store(None);
                    self.record_failure(SharedFailure::Reauth(code.clone()));
                }
                Err(CredentialError::ReauthRequired {
                    connection: self.id.clone(),
                    reason: code,
                })
            }
            FailureKind::Transient => {
                lock.release().await;
                self.metrics.refreshed(&self.id, "transient");
                tracing::warn!(connection = %self.id, code = %code, "token endpoint unavailable");
                let delay = self.record_failure(SharedFailure::Unavailable(code.clone()));
                self.serve_cached_or(SharedFailure::Unavailable(code), delay)
            }
            FailureKind::Misconfigured => {
                lock.release().await;
                self.metrics.refreshed(&self.id, "misconfigured");
                tracing::error!(connection = %self.id, code = %code, "token endpoint refused our client configuration");
                let delay = self.record_failure(SharedFailure::Misconfigured(code.clone()));
                Err(self.failure_error(SharedFailure::Misconfigured(code), delay))
            }
        }
    }
}
