//! The token manager: one [`OAuthConnection`] per OAuth connection holds the cached access
//! token and gets a new one when it is due.
//!
//! - Hot path: a lock-free read of the cached token (`ArcSwapOption`).
//! - Proactive refresh: a background task per connection wakes at expiry − margin − jitter;
//!   a request that sees a token inside the margin also kicks one off, and keeps using the
//!   still-valid token.
//! - Single-flight: refreshes of one connection queue on `refresh_lock`; whoever gets it
//!   first calls the token endpoint, the rest find the new token (or the shared failure and
//!   its backoff) when their turn comes. Across processes the store's row lock does the same.
//! - Every refresh names the token version it found stale, so a waiter, a 401 for a token
//!   that was already replaced, or a process that lost the race uses the newer token instead
//!   of refreshing again (with rotation, a second refresh would reuse a dead refresh token).
//! - New tokens the store could not take are kept as a pending pair (`pending`) and written
//!   before anything else: the old refresh token is never sent again once a newer one exists.

use super::http_client::post_form;
use super::metrics::CredentialMetrics;
use super::provider_auth::AuthHealth;
use super::spec::{seed_fingerprint, OAuthSpec};
use super::store::{now_ms, RecordState, Store, TokenRecord};
use super::StoreErrorExt as _;
use super::{sensitive_value, Applied, ConnectionStatus, CredentialError};
use crate::config::{Config, ConnectionConfig};
use crate::forward::upstream::UpstreamClient;
use crate::secret::Secret;
use arc_swap::ArcSwapOption;
use gatehouse_adapters::oauth::{FailureKind, TokenFailure, TokenGrant};
use gatehouse_adapters::Provider;
use http::{HeaderMap, HeaderValue};
use parking_lot::Mutex;
use rand::Rng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::time::Instant;

/// Used when neither the provider, the config nor the profile says how long a token lives.
const FALLBACK_LIFETIME_SECS: u64 = 3600;
/// How often a connection in `reauth_required` re-reads the store to see whether another
/// process (or the connect flow) restored it.
const RECOVERY_POLL: Duration = Duration::from_secs(2);
const MAX_TRANSIENT_BACKOFF: Duration = Duration::from_secs(30);
/// Misconfiguration (`invalid_client`) and dead client-credentials grants: retry rarely.
const LONG_BACKOFF: Duration = Duration::from_secs(60);

/// The token in use: a ready `Authorization` value and when to replace it.
pub(crate) struct Active {
    header: HeaderValue,
    pub version: i64,
    pub expires_at_ms: i64,
    /// Until then another refresh is pointless (expiry − margin).
    fresh_until_ms: i64,
    /// When this process starts refreshing (fresh_until − jitter).
    due_at_ms: i64,
    /// The token's API base (`instance_url`), checked and parsed once when the token arrives.
    base_url: Option<Arc<crate::stages::route::UpstreamBase>>,
}

#[derive(Clone)]
enum SharedFailure {
    Unavailable(String),
    /// The credential store cannot be locked or written.
    StoreUnavailable(String),
    Misconfigured(String),
    Reauth(String),
}

#[derive(Default)]
struct Backoff {
    failures: u32,
    until: Option<Instant>,
    failure: Option<SharedFailure>,
}

/// What the status page shows.
#[derive(Default)]
struct View {
    scopes: Vec<String>,
    instance_url: Option<String>,
    last_error: Option<String>,
    reauth: Option<String>,
    last_recovery_poll: Option<Instant>,
}

/// What the caller needs from the token a refresh hands back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    /// A token outside the refresh margin (proactive refresh, expired token).
    Fresh,
    /// Any valid token other than the stale one (after a 401).
    Replacement,
}

pub(crate) struct OAuthConnection {
    pub id: String,
    pub spec: OAuthSpec,
    pub provider: Arc<dyn Provider>,
    /// The connection's `base_url` (the connect flow asks the provider which account a new
    /// grant belongs to, relative to it).
    pub api_base: String,
    client: UpstreamClient,
    /// Hosts an `instance_url` may name: the base_url host and `allowed_hosts`.
    allowed_hosts: Vec<String>,
    store: Arc<Store>,
    metrics: CredentialMetrics,
    /// What the API answers say about the tokens (shared with [`super::Credentials`]).
    auth: Arc<AuthHealth>,
    active: ArcSwapOption<Active>,
    view: Mutex<View>,
    /// Mirrors `view.reauth.is_some()`, so the request path asks without taking the lock.
    reauth_flag: std::sync::atomic::AtomicBool,
    backoff: Mutex<Backoff>,
    refresh_lock: tokio::sync::Mutex<()>,
    /// Tokens the provider issued that are not yet durable (see `pending`).
    pending: Mutex<Option<pending::PendingPair>>,
    refreshing: AtomicBool,
    proactive_running: AtomicBool,
}

pub(crate) struct TokenManager {
    pub store: Arc<Store>,
    pub connections: rustc_hash::FxHashMap<String, Arc<OAuthConnection>>,
}

impl TokenManager {
    pub async fn start(
        config: &Config,
        oauth: &[&ConnectionConfig],
        metrics: &CredentialMetrics,
        health: &rustc_hash::FxHashMap<String, Arc<AuthHealth>>,
    ) -> Result<Arc<Self>, CredentialError> {
        let keys = super::crypto::load_key_ring(&config.store, config.store.url.is_none())?;
        let mut specs = Vec::new();
        let mut lock_wait = Duration::from_secs(5);
        for connection in oauth {
            let spec = OAuthSpec::from_config(&connection.id, &connection.credentials)?;
            // A process waiting for another's refresh waits at most one token call plus slack.
            lock_wait = lock_wait.max(spec.timeout + Duration::from_secs(5));
            specs.push((connection, spec));
        }
        let store = Arc::new(
            Store::open(&config.store, keys, lock_wait)
                .await
                .map_err(|e| e.into_credential_error("[store]"))?,
        );
        let mut connections = rustc_hash::FxHashMap::default();
        for (connection, spec) in specs {
            let bad = |reason: String| CredentialError::Misconfigured {
                connection: connection.id.clone(),
                reason,
            };
            let provider = connection.resolve_provider().map_err(bad)?;
            let client =
                crate::forward::upstream::build_client(&config.server, connection).map_err(bad)?;
            let mut allowed_hosts = connection.allowed_hosts.clone();
            if let Some(host) = url::Url::parse(&connection.base_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
            {
                allowed_hosts.push(host);
            }
            let conn = Arc::new(OAuthConnection {
                id: connection.id.clone(),
                spec,
                provider,
                api_base: connection.base_url.clone(),
                client,
                allowed_hosts,
                store: store.clone(),
                metrics: metrics.clone(),
                auth: health.get(&connection.id).cloned().unwrap_or_default(),
                active: ArcSwapOption::empty(),
                view: Mutex::new(View::default()),
                reauth_flag: std::sync::atomic::AtomicBool::new(false),
                backoff: Mutex::new(Backoff::default()),
                refresh_lock: tokio::sync::Mutex::new(()),
                pending: Mutex::new(None),
                refreshing: AtomicBool::new(false),
                proactive_running: AtomicBool::new(false),
            });
            conn.load_at_start().await?;
            tokio::spawn(run_background(Arc::downgrade(&conn)));
            connections.insert(connection.id.clone(), conn);
        }
        Ok(Arc::new(Self { store, connections }))
    }

    pub async fn ready(&self) -> Result<(), String> {
        self.store.ping().await.map_err(|e| e.to_string())
    }

    fn connection(&self, id: &str) -> Result<&Arc<OAuthConnection>, CredentialError> {
        self.connections
            .get(id)
            .ok_or_else(|| CredentialError::Misconfigured {
                connection: id.to_owned(),
                reason: "no credentials configured for this connection".to_owned(),
            })
    }

    pub async fn apply(
        &self,
        id: &str,
        headers: &mut HeaderMap,
    ) -> Result<Applied, CredentialError> {
        let active = self.connection(id)?.token().await?;
        headers.insert(http::header::AUTHORIZATION, active.header.clone());
        Ok(Applied {
            generation: active.version.max(0) as u64,
            base_url: active.base_url.clone(),
        })
    }

    pub async fn on_unauthorized(
        &self,
        id: &str,
        generation: u64,
    ) -> Result<bool, CredentialError> {
        let conn = self.connection(id)?;
        if let Some(left) = conn.auth.refresh_paused_for() {
            // A fresh token was refused moments ago: another refresh would only rotate again.
            return Err(CredentialError::ProviderAuthRejected {
                connection: conn.id.clone(),
                retry_after: left.max(Duration::from_secs(1)),
            });
        }
        let stale = generation as i64;
        let fresh = conn.refresh(stale, Need::Replacement).await?;
        if fresh.version == stale {
            // The token endpoint (or the store) is failing and handed back the cached token,
            // which the provider has just refused: the caller gets the outage, not the 401.
            return Err(conn.rejected_token_unreplaceable());
        }
        Ok(true)
    }

    /// The provider keeps refusing this connection's credential: one refresh in the
    /// background, unless refresh-on-401 is paused (the last fresh token was refused too).
    pub fn refresh_after_rejections(&self, id: &str, generation: u64) {
        if let Some(conn) = self.connections.get(id) {
            if conn.auth.refresh_paused_for().is_none() {
                conn.spawn_refresh(generation as i64, Need::Replacement);
            }
        }
    }

    /// Sets the state gauge of `id` to what it is now (after a provider-auth transition).
    pub fn publish_state(&self, id: &str) -> bool {
        match self.connections.get(id) {
            Some(conn) => {
                conn.metrics.set_state(&conn.id, conn.state());
                true
            }
            None => false,
        }
    }

    pub fn status(&self) -> Vec<ConnectionStatus> {
        self.connections.values().map(|c| c.status()).collect()
    }
}

/// Wakes when the token is due and refreshes it, so requests rarely wait for a token call.
async fn run_background(connection: Weak<OAuthConnection>) {
    loop {
        let wait = match connection.upgrade() {
            Some(c) => c.next_wake(),
            None => return,
        };
        tokio::time::sleep(wait).await;
        let Some(c) = connection.upgrade() else {
            return;
        };
        if c.reauth_code().is_some() {
            c.poll_for_recovery().await;
            if c.spec.uses_refresh_token() {
                continue;
            }
        }
        let now = now_ms();
        let stale = match c.active.load_full() {
            // A pending pair is written as soon as the backoff allows, due or not.
            Some(active) if c.has_pending() => active.version,
            Some(active) if now < active.due_at_ms => continue,
            Some(active) => active.version,
            None => -1,
        };
        // Failures are recorded (state, backoff, metrics) by `refresh`; nothing waits on this one.
        let _ = c.refresh(stale, Need::Fresh).await;
    }
}

impl OAuthConnection {
    /// The client this connection's token calls use (its trust roots, its `ca_file`).
    pub(crate) fn client(&self) -> &UpstreamClient {
        &self.client
    }

    fn lifetime_default(&self) -> Option<u64> {
        self.spec
            .lifetime_secs
            .or(self.provider.default_token_lifetime_secs())
    }

    /// Reads the stored record, applying a new config seed refresh token if there is one.
    async fn load_at_start(&self) -> Result<(), CredentialError> {
        let store_err = |e: super::store::StoreError| e.into_credential_error(&self.id);
        let mut record = self.store.load(&self.id).await.map_err(store_err)?;
        if let Some(seed) = &self.spec.seed {
            let fingerprint = seed_fingerprint(seed);
            if record.as_ref().and_then(|r| r.seed_fingerprint.as_deref())
                != Some(fingerprint.as_str())
            {
                let lock = self.store.lock(&self.id).await.map_err(store_err)?;
                let mut next = lock.current.clone().unwrap_or_else(TokenRecord::empty);
                // Re-checked under the lock: in a fleet only the first process applies a seed,
                // and an unchanged seed never overwrites a refresh token rotated since.
                if next.seed_fingerprint.as_deref() != Some(fingerprint.as_str()) {
                    next.refresh_token = Some(seed.clone());
                    next.seed_fingerprint = Some(fingerprint);
                    next.access_token = None;
                    next.access_expires_at_ms = None;
                    next.access_issued_at_ms = None;
                    next.state = RecordState::Ok;
                    next.state_code = None;
                    next.version = lock.commit(&next).await.map_err(store_err)?;
                    tracing::info!(connection = %self.id, "applied the seed refresh token from config");
                    record = Some(next);
                } else {
                    lock.release().await;
                    record = self.store.load(&self.id).await.map_err(store_err)?;
                }
            }
        }
        match record {
            Some(record) => {
                self.install(&record);
            }
            None => self.metrics.set_state(&self.id, self.state()),
        }
        Ok(())
    }

    /// Makes `record` the connection's current state and returns its token, if it has one.
    fn install(&self, record: &TokenRecord) -> Option<Arc<Active>> {
        {
            let mut view = self.view.lock();
            view.scopes = record.scopes.clone();
            view.instance_url = record.instance_url.clone();
            view.reauth = match record.state {
                RecordState::ReauthRequired => Some(
                    record
                        .state_code
                        .clone()
                        .unwrap_or_else(|| "invalid_grant".to_owned()),
                ),
                RecordState::Ok => None,
            };
            self.reauth_flag
                .store(view.reauth.is_some(), Ordering::Release);
        }
        let active = match (
            record.state,
            &record.access_token,
            record.access_expires_at_ms,
        ) {
            (RecordState::Ok, Some(token), Some(expires_at_ms)) => {
                self.active_from(record, token, expires_at_ms)
            }
            _ => None,
        };
        if let Some(active) = &active {
            self.metrics.set_expiry(&self.id, active.expires_at_ms);
        }
        self.active.store(active.clone());
        self.metrics.set_state(&self.id, self.state());
        active
    }

    fn active_from(
        &self,
        record: &TokenRecord,
        token: &Secret,
        expires_at_ms: i64,
    ) -> Option<Arc<Active>> {
        let header = match sensitive_value(format!("Bearer {}", token.expose())) {
            Ok(header) => header,
            Err(_) => {
                tracing::error!(connection = %self.id, "stored access token is not a valid header value");
                return None;
            }
        };
        let lifetime_ms = record
            .access_issued_at_ms
            .map_or(FALLBACK_LIFETIME_SECS as i64 * 1000, |i| expires_at_ms - i)
            .max(0);
        let margin_ms = (self.spec.margin.as_millis() as i64).min(lifetime_ms / 2);
        let fresh_until_ms = expires_at_ms - margin_ms;
        // Jitter spreads a fleet's wake-ups; the row lock decides who actually refreshes.
        let jitter_ms = if margin_ms >= 4 {
            rand::thread_rng().gen_range(0..=margin_ms / 4)
        } else {
            0
        };
        Some(Arc::new(Active {
            header,
            version: record.version,
            expires_at_ms,
            fresh_until_ms,
            due_at_ms: fresh_until_ms - jitter_ms,
            base_url: record
                .instance_url
                .as_deref()
                .and_then(|url| self.checked_base_url(url)),
        }))
    }

    /// An `instance_url` is used only if its host is one this connection may contact.
    fn checked_base_url(&self, url: &str) -> Option<Arc<crate::stages::route::UpstreamBase>> {
        if !self.provider.token_sets_instance_url() {
            return None;
        }
        let parsed = url::Url::parse(url).ok()?;
        let host = parsed.host_str()?;
        if matches!(parsed.scheme(), "https" | "http")
            && self
                .allowed_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host))
        {
            match crate::stages::route::UpstreamBase::parse(url.trim_end_matches('/')) {
                Ok(base) => Some(Arc::new(base)),
                Err(error) => {
                    tracing::warn!(connection = %self.id, error, "token endpoint named an unusable instance_url; ignored");
                    None
                }
            }
        } else {
            tracing::warn!(connection = %self.id, host, "token endpoint named an instance_url host outside allowed_hosts; ignored");
            None
        }
    }

    fn reauth_code(&self) -> Option<String> {
        if !self.reauth_flag.load(Ordering::Acquire) {
            return None;
        }
        self.view.lock().reauth.clone()
    }

    /// Puts the connection in `reauth_required` with `code`.
    fn mark_reauth(&self, code: String) {
        self.view.lock().reauth = Some(code);
        self.reauth_flag.store(true, Ordering::Release);
    }

    fn state(&self) -> &'static str {
        if self.view.lock().reauth.is_some() {
            return "reauth_required";
        }
        if self.refreshing.load(Ordering::Acquire) {
            return "refreshing";
        }
        match self.backoff.lock().failure {
            Some(SharedFailure::Unavailable(_)) => return "token_endpoint_down",
            Some(SharedFailure::StoreUnavailable(_)) => return "store_unavailable",
            Some(SharedFailure::Misconfigured(_)) => return "misconfigured",
            _ => {}
        }
        if self.auth.is_degraded() {
            return "degraded";
        }
        if self.active.load().is_none() {
            "no_token"
        } else {
            "ok"
        }
    }

    fn status(&self) -> ConnectionStatus {
        let active = self.active.load_full();
        let view = self.view.lock();
        let last_error = view.reauth.clone().or_else(|| view.last_error.clone());
        let (scopes, instance_url) = (view.scopes.clone(), view.instance_url.clone());
        drop(view);
        let state = self.state();
        ConnectionStatus {
            connection: self.id.clone(),
            grant: self.spec.grant_name(),
            state,
            reason: (state == "degraded").then_some(super::PROVIDER_AUTH),
            auth_rejections: self.auth.rejections(),
            granted_scopes: scopes,
            expires_at: active.and_then(|a| {
                time::OffsetDateTime::from_unix_timestamp(a.expires_at_ms / 1000)
                    .ok()
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
            }),
            last_error,
            instance_url,
        }
    }

    fn next_wake(&self) -> Duration {
        let now = now_ms();
        if self.reauth_code().is_some() {
            return RECOVERY_POLL;
        }
        if let Some(until) = self.backoff.lock().until {
            let left = until.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                return left;
            }
        }
        let wait_ms = match self.active.load_full() {
            Some(active) => (active.due_at_ms - now).clamp(0, 60_000),
            None => 0,
        };
        // Never spin: a failed attempt always leaves a backoff or a state that waits.
        Duration::from_millis(wait_ms.max(20) as u64)
    }

    /// The token for one request: the cached one, or (when missing or expired) the result of a
    /// refresh this request waits for.
    async fn token(self: &Arc<Self>) -> Result<Arc<Active>, CredentialError> {
        if let Some(code) = self.reauth_code() {
            if !self.poll_for_recovery().await {
                return Err(CredentialError::ReauthRequired {
                    connection: self.id.clone(),
                    reason: code,
                });
            }
        }
        let now = now_ms();
        let active = self.active.load_full();
        if let Some(active) = active {
            if now < active.due_at_ms {
                return Ok(active);
            }
            if now < active.expires_at_ms {
                self.spawn_proactive(active.version);
                return Ok(active);
            }
            return self.refresh(active.version, Need::Fresh).await;
        }
        self.refresh(-1, Need::Fresh).await
    }

    fn spawn_proactive(self: &Arc<Self>, stale: i64) {
        self.spawn_refresh(stale, Need::Fresh);
    }

    /// One background refresh at a time; its failures are recorded by `refresh`.
    fn spawn_refresh(self: &Arc<Self>, stale: i64, need: Need) {
        if self.proactive_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let _ = this.refresh(stale, need).await;
            this.proactive_running.store(false, Ordering::Release);
        });
    }

    /// In `reauth_required`: has another process, the connect flow or a new seed restored the
    /// grant? Reads the store at most every [`RECOVERY_POLL`].
    async fn poll_for_recovery(&self) -> bool {
        {
            let mut view = self.view.lock();
            if view
                .last_recovery_poll
                .is_some_and(|at| at.elapsed() < RECOVERY_POLL)
            {
                return false;
            }
            view.last_recovery_poll = Some(Instant::now());
        }
        match self.store.load(&self.id).await {
            Ok(Some(record)) if record.state == RecordState::Ok => {
                tracing::info!(connection = %self.id, "grant restored");
                self.clear_backoff();
                self.install(&record);
                true
            }
            _ => false,
        }
    }

    fn clear_backoff(&self) {
        *self.backoff.lock() = Backoff::default();
        self.view.lock().last_error = None;
    }

    /// Stores the tokens of a completed connect flow and makes them current.
    pub(crate) async fn complete_connect(&self, grant: TokenGrant) -> Result<(), CredentialError> {
        if grant.refresh_token.is_none() {
            return Err(CredentialError::Misconfigured {
                connection: self.id.clone(),
                reason: "the provider granted no refresh token (request offline access, e.g. the refresh_token/offline_access scope)".to_owned(),
            });
        }
        let _flight = self.refresh_lock.lock().await;
        let lock = self
            .store
            .lock(&self.id)
            .await
            .map_err(|e| e.into_credential_error(&self.id))?;
        let mut record = self.record_from_grant(lock.current.clone(), grant);
        record.version = lock
            .commit(&record)
            .await
            .map_err(|e| e.into_credential_error(&self.id))?;
        self.clear_backoff();
        self.install(&record);
        self.metrics.refreshed(&self.id, "connected");
        tracing::info!(connection = %self.id, "connected through the authorization-code flow");
        Ok(())
    }

    /// The authorization-code exchange of the connect flow.
    pub(crate) async fn exchange_code(
        &self,
        code: &str,
        verifier: &str,
    ) -> Result<TokenGrant, TokenFailure> {
        let Some(request) = self.spec.code_request(&*self.provider, code, verifier) else {
            return Err(TokenFailure {
                kind: FailureKind::Misconfigured,
                code: "no_redirect_uri".to_owned(),
            });
        };
        match post_form(
            &self.client,
            &self.spec.token_url,
            &request,
            self.spec.timeout,
        )
        .await
        {
            Ok((status, body)) => {
                self.provider
                    .parse_token_response(self.lifetime_default(), status, &body)
            }
            Err(failure) => Err(TokenFailure {
                kind: FailureKind::Transient,
                code: failure.code().to_owned(),
            }),
        }
    }
}

mod pending;
mod refresh;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod store_outage_tests;

#[cfg(test)]
mod connect_tests;

#[cfg(test)]
mod provider_auth_tests;
