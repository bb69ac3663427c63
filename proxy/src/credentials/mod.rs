//! Provider credentials: services never hold them, Gatehouse injects them.
//!
//! The pipeline calls [`Credentials::apply`] before forwarding and, when the provider answers
//! 401 and the connection's provider allows it, [`Credentials::on_unauthorized`] once before a
//! single replay. Everything else lives behind those calls:
//!
//! - `spec`: a connection's grant (refresh token, client credentials, JWT bearer) from config;
//! - `manager`: the token cache, proactive refresh, single-flight, backoff, dead grants;
//! - `connect`: the authorization-code flow on the admin port;
//! - `provider_auth`: what the API answers say about the credential (`degraded` /
//!   `provider_auth`, and the pause of refresh-on-401 when fresh tokens are refused too), fed by
//!   [`Credentials::observe`] for every provider answer;
//! - the `gatehouse-store` crate (`store`, `crypto` here): encrypted records in SQLite or
//!   PostgreSQL with the fleet-wide refresh lock, AES-256-GCM at rest and key rotation.

mod connect;
mod http_client;
mod manager;
mod metrics;
mod provider_auth;
mod spec;

// The store is its own crate; these names keep the paths the credential modules use.
use gatehouse_store as store;
use gatehouse_store::crypto;

use crate::error::{Category, GatewayError};
use crate::secret::Secret;
use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue};
use manager::TokenManager;
use provider_auth::AuthHealth;
pub(crate) use provider_auth::AuthSignal;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

pub use crate::config::CredentialsConfig;
pub use crypto::StoreKey;

/// Why a credential could not be applied. The pipeline maps each to an error category.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The grant is dead (revoked, `invalid_grant`): a person must re-authorise.
    #[error("connection {connection} needs re-authorisation: {reason}")]
    ReauthRequired { connection: String, reason: String },
    /// The token endpoint (or the credential store) cannot be reached and no valid token is cached.
    #[error("token endpoint for {connection} unavailable: {reason}")]
    TokenEndpointUnavailable {
        connection: String,
        reason: String,
        retry_after: Duration,
    },
    /// The credential store cannot be read or written and no usable stored token is cached.
    /// New tokens the provider already issued are kept in memory and written once it is back.
    #[error("credential store unavailable for {connection}: {reason}")]
    StoreUnavailable {
        connection: String,
        reason: String,
        retry_after: Duration,
    },
    /// The provider refused a token it had just issued (a refresh did not help): refreshing on
    /// 401 pauses for `retry_after` (see `provider_auth`).
    #[error("{connection}: the provider refuses freshly issued credentials; no refresh until the pause ends")]
    ProviderAuthRejected {
        connection: String,
        retry_after: Duration,
    },
    /// Configuration that only shows up at use (e.g. a header value that is not valid ASCII,
    /// or the provider answering `invalid_client`).
    #[error("credential for {connection} is misconfigured: {reason}")]
    Misconfigured { connection: String, reason: String },
}

/// The key ring is part of `[store]`: a key that cannot be loaded is a misconfigured store.
impl From<crypto::KeyError> for CredentialError {
    fn from(error: crypto::KeyError) -> Self {
        CredentialError::Misconfigured {
            connection: "[store]".to_owned(),
            reason: error.0,
        }
    }
}

/// How a store failure reaches a connection's callers.
pub(crate) trait StoreErrorExt {
    fn into_credential_error(self, connection: &str) -> CredentialError;
}

impl StoreErrorExt for store::StoreError {
    fn into_credential_error(self, connection: &str) -> CredentialError {
        match self {
            store::StoreError::Corrupt(reason) => CredentialError::Misconfigured {
                connection: connection.to_owned(),
                reason,
            },
            other => CredentialError::StoreUnavailable {
                connection: connection.to_owned(),
                reason: other.to_string(),
                retry_after: Duration::from_secs(1),
            },
        }
    }
}

/// The envelope for a credential failure. Messages carry connection ids and OAuth error
/// codes only (see `CredentialError`), never token values.
pub fn to_gateway_error(error: CredentialError) -> GatewayError {
    match error {
        CredentialError::ReauthRequired { .. } => GatewayError::new(
            Category::ReauthRequired,
            "reauth_required",
            error.to_string(),
        ),
        CredentialError::TokenEndpointUnavailable { retry_after, .. } => GatewayError::new(
            Category::ProviderUnavailable,
            "token_endpoint_unavailable",
            error.to_string(),
        )
        .with_retry_after(retry_after),
        // The store's own error text stays in the logs: the client learns what and when.
        CredentialError::StoreUnavailable {
            connection,
            retry_after,
            ..
        } => GatewayError::new(
            Category::ProviderUnavailable,
            "credential_store_unavailable",
            format!(
                "the credential store is unavailable, so no token for connection {connection} can be used yet; retry later"
            ),
        )
        .with_retry_after(retry_after),
        CredentialError::ProviderAuthRejected { retry_after, .. } => GatewayError::new(
            Category::ProviderUnavailable,
            "provider_auth_rejected",
            error.to_string(),
        )
        .with_retry_after(retry_after),
        CredentialError::Misconfigured { .. } => GatewayError::new(
            Category::Internal,
            "credential_misconfigured",
            error.to_string(),
        ),
    }
}

impl From<CredentialError> for GatewayError {
    fn from(error: CredentialError) -> Self {
        to_gateway_error(error)
    }
}

/// The credential metrics, registered alone (for the metric-name contract test).
#[cfg(test)]
pub(crate) fn register_metrics(
    registry: &mut prometheus_client::registry::Registry,
) -> metrics::CredentialMetrics {
    metrics::CredentialMetrics::register(registry)
}

/// What was applied to one request, handed back on a 401 so a refresh can tell whether
/// somebody else already replaced the token the request used.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// An opaque generation number of the token that was sent (0 for static credentials).
    pub generation: u64,
    /// The API base URL the token belongs to, when the token endpoint named one (Salesforce
    /// `instance_url`). Only ever a URL whose host is the connection's `base_url` host or one of
    /// its `allowed_hosts`; otherwise it is dropped (and logged) here.
    pub base_url: Option<std::sync::Arc<crate::stages::route::UpstreamBase>>,
}

/// One connection's credential state, for the health page and the admin JSON. No secrets.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ConnectionStatus {
    pub connection: String,
    /// `none`, `bearer`, `basic`, `header`, `oauth_refresh_token`, `client_credentials`, `jwt_bearer`.
    pub grant: &'static str,
    /// `ok`, `refreshing`, `reauth_required`, `token_endpoint_down`, `store_unavailable`
    /// (new tokens waiting for the store), `misconfigured`, `degraded` (the provider keeps
    /// refusing the credential, see `reason`), or `no_token` (an OAuth connection before its
    /// first token); `static` for healthy static credentials.
    pub state: &'static str,
    /// Why the state is `degraded`: `provider_auth`. `None` otherwise.
    pub reason: Option<&'static str>,
    /// Credential refusals by the provider in a row (reset by any 2xx).
    pub auth_rejections: u32,
    pub granted_scopes: Vec<String>,
    /// RFC 3339 expiry of the cached access token.
    pub expires_at: Option<String>,
    /// The provider's last error code, if the last token call failed.
    pub last_error: Option<String>,
    pub instance_url: Option<String>,
}

/// The `reason` of a `degraded` connection whose provider keeps refusing its credential.
pub(crate) const PROVIDER_AUTH: &str = "provider_auth";

/// A static credential: its grant name and the headers it sets.
type StaticCredential = (&'static str, Vec<(HeaderName, HeaderValue)>);

/// The credential state of every connection.
#[derive(Clone, Default)]
pub struct Credentials {
    statics: Arc<rustc_hash::FxHashMap<String, StaticCredential>>,
    manager: Option<Arc<TokenManager>>,
    /// Every connection's provider-auth health (static and OAuth alike).
    health: Arc<rustc_hash::FxHashMap<String, Arc<AuthHealth>>>,
    /// The state gauge and refresh counters; `None` before `start` (`gatehouse check`).
    metrics: Option<metrics::CredentialMetrics>,
}

impl Credentials {
    /// Starts the credential machinery for every connection of `config`, registering its
    /// metrics in `registry`: opens the store (running migrations), applies config seeds and
    /// starts each OAuth connection's proactive refresh.
    pub async fn start(
        config: &crate::config::Config,
        registry: &mut prometheus_client::registry::Registry,
    ) -> Result<Self, CredentialError> {
        let mut credentials = Self::from_config(
            config
                .connections
                .iter()
                .map(|c| (c.id.as_str(), &c.credentials)),
        )?;
        let oauth: Vec<_> = config
            .connections
            .iter()
            .filter(|c| spec::is_oauth(&c.credentials))
            .collect();
        let metrics = metrics::CredentialMetrics::register(registry);
        if !oauth.is_empty() {
            credentials.manager =
                Some(TokenManager::start(config, &oauth, &metrics, &credentials.health).await?);
        }
        for id in credentials.statics.keys() {
            metrics.set_state(id, "ok");
        }
        credentials.metrics = Some(metrics);
        Ok(credentials)
    }

    /// The store, when OAuth connections opened it (others who keep state in it share it: one
    /// SQLite directory has one opener).
    pub(crate) fn store(&self) -> Option<Arc<store::Store>> {
        self.manager.as_ref().map(|m| m.store.clone())
    }

    /// Whether the credential store is reachable (for `/readyz`).
    pub async fn ready(&self) -> Result<(), String> {
        match &self.manager {
            Some(manager) => manager.ready().await,
            None => Ok(()),
        }
    }

    /// Admin-port requests under `/connect/` (the authorization-code flow); `None` when the
    /// path is not one of ours. `admin`: the admin token id the admin port authenticated
    /// (`None` on the callback, which its `state` authorises).
    pub async fn handle_admin(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        admin: Option<&str>,
    ) -> Option<http::Response<crate::body::ProxyBody>> {
        let manager = self.manager.as_ref()?;
        connect::handle(manager, method, uri, admin).await
    }

    /// Every connection's credential state (no secrets).
    pub fn status(&self) -> Vec<ConnectionStatus> {
        let mut all: Vec<ConnectionStatus> = self
            .statics
            .iter()
            .map(|(id, (grant, _))| {
                let degraded = self.health.get(id).is_some_and(|h| h.is_degraded());
                ConnectionStatus {
                    connection: id.clone(),
                    grant,
                    state: if degraded { "degraded" } else { "static" },
                    reason: degraded.then_some(PROVIDER_AUTH),
                    auth_rejections: self.health.get(id).map_or(0, |h| h.rejections()),
                    granted_scopes: Vec::new(),
                    expires_at: None,
                    last_error: None,
                    instance_url: None,
                }
            })
            .collect();
        if let Some(manager) = &self.manager {
            all.extend(manager.status());
        }
        all.sort_by(|a, b| a.connection.cmp(&b.connection));
        all
    }

    /// Prepares the static credentials of every connection and checks the OAuth ones. Fails on
    /// a credential that can never be sent (so `gatehouse check` catches it) rather than on the
    /// first request.
    pub fn from_config<'a>(
        connections: impl IntoIterator<Item = (&'a str, &'a CredentialsConfig)>,
    ) -> Result<Self, CredentialError> {
        let mut statics = rustc_hash::FxHashMap::default();
        let mut health = rustc_hash::FxHashMap::default();
        for (id, config) in connections {
            health.insert(id.to_owned(), Arc::new(AuthHealth::default()));
            if spec::is_oauth(config) {
                spec::OAuthSpec::from_config(id, config)?;
            } else {
                statics.insert(
                    id.to_owned(),
                    (static_grant_name(config), static_headers(id, config)?),
                );
            }
        }
        Ok(Self {
            statics: Arc::new(statics),
            manager: None,
            health: Arc::new(health),
            metrics: None,
        })
    }

    /// Sets the connection's credential on the outbound request headers.
    pub async fn apply(
        &self,
        connection: &str,
        headers: &mut HeaderMap,
    ) -> Result<Applied, CredentialError> {
        if let Some((_, pairs)) = self.statics.get(connection) {
            for (name, value) in pairs {
                headers.insert(name.clone(), value.clone());
            }
            return Ok(Applied::default());
        }
        match &self.manager {
            Some(manager) => manager.apply(connection, headers).await,
            None => Ok(Applied::default()),
        }
    }

    /// Whether a rejected credential of this connection can be replaced (OAuth), so that a
    /// request is worth keeping for one replay after a 401.
    pub fn refreshable(&self, connection: &str) -> bool {
        self.manager.is_some() && !self.statics.contains_key(connection)
    }

    /// The provider rejected the credential that `applied` describes. Returns `Ok(true)` when
    /// a fresh credential is now in place and one replay is worthwhile.
    pub async fn on_unauthorized(
        &self,
        connection: &str,
        applied: &Applied,
    ) -> Result<bool, CredentialError> {
        match &self.manager {
            // Static credentials cannot be refreshed: replaying would only repeat the 401.
            Some(manager) if self.refreshable(connection) => {
                manager
                    .on_unauthorized(connection, applied.generation)
                    .await
            }
            _ => Ok(false),
        }
    }
}

/// What `gatehouse keys rotate` did.
#[derive(Debug, Clone, Serialize)]
pub struct RotateReport {
    pub records: usize,
    pub old_key_id: String,
    pub new_key_id: String,
}

/// Re-encrypts every stored record under `new_key_b64` (base64 of 32 bytes). The current key
/// (from `[store]` as configured) must still be set. Afterwards, configure the new key as the
/// current key (and the old one as `previous_key_*` until every process has restarted).
pub async fn rotate_keys(
    config: &crate::config::Config,
    new_key_b64: &Secret,
) -> Result<RotateReport, CredentialError> {
    let bad = |reason: String| CredentialError::Misconfigured {
        connection: "[store]".to_owned(),
        reason,
    };
    let new_key = StoreKey::from_base64(new_key_b64.expose()).map_err(bad)?;
    let old = crypto::load_key_ring(&config.store, false)
        .or_else(|_| crypto::load_key_ring(&config.store, config.store.url.is_none()))?;
    let old_key_id = old.current_id().to_owned();
    let ring = old.rotated_to(new_key);
    let new_key_id = ring.current_id().to_owned();
    let store = store::Store::open(&config.store, ring, Duration::from_secs(30))
        .await
        .map_err(|e| e.into_credential_error("[store]"))?;
    let records = store::reseal_all(&store)
        .await
        .map_err(|e| e.into_credential_error("[store]"))?;
    Ok(RotateReport {
        records,
        old_key_id,
        new_key_id,
    })
}

/// A fresh random store key as base64, for `gatehouse keys generate`.
pub fn generate_key() -> Secret {
    Secret::new(StoreKey::generate_base64())
}

fn static_grant_name(config: &CredentialsConfig) -> &'static str {
    match config {
        CredentialsConfig::None => "none",
        CredentialsConfig::Bearer { .. } => "bearer",
        CredentialsConfig::Basic { .. } => "basic",
        CredentialsConfig::Header { .. } => "header",
        CredentialsConfig::OauthRefreshToken { .. } => "oauth_refresh_token",
        CredentialsConfig::ClientCredentials { .. } => "client_credentials",
        CredentialsConfig::JwtBearer { .. } => "jwt_bearer",
    }
}

fn static_headers(
    connection: &str,
    config: &CredentialsConfig,
) -> Result<Vec<(HeaderName, HeaderValue)>, CredentialError> {
    let bad = |reason: &str| CredentialError::Misconfigured {
        connection: connection.to_owned(),
        reason: reason.to_owned(),
    };
    Ok(match config {
        CredentialsConfig::Bearer { token } => {
            vec![(
                http::header::AUTHORIZATION,
                sensitive_value(format!("Bearer {}", token.expose()))
                    .map_err(|_| bad(HEADER_CHARS))?,
            )]
        }
        CredentialsConfig::Basic { username, password } => {
            let raw = format!("{}:{}", username.expose(), password.expose());
            let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
            vec![(
                http::header::AUTHORIZATION,
                sensitive_value(format!("Basic {encoded}")).map_err(|_| bad(HEADER_CHARS))?,
            )]
        }
        CredentialsConfig::Header { name, value } => {
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("invalid header name"))?;
            vec![(
                name,
                sensitive_value(value.expose().to_owned()).map_err(|_| bad(HEADER_CHARS))?,
            )]
        }
        _ => Vec::new(),
    })
}

const HEADER_CHARS: &str = "credential contains characters not allowed in an HTTP header";

/// A header value marked sensitive (HPACK never indexes it; hyper's Debug hides it).
fn sensitive_value(value: String) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
    HeaderValue::from_str(&value).map(|mut v| {
        v.set_sensitive(true);
        v
    })
}

#[cfg(test)]
mod tests;
