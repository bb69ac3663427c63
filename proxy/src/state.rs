//! What every request shares: connections (provider, upstream base, pooled clients, request
//! guards), the policy in force (swapped atomically on reload), credentials, metrics and the
//! request record's sinks.

use crate::config::{Config, ConfigErrors};
use crate::credentials::Credentials;
use crate::forward::upstream::UpstreamClients;
use crate::stages::route::UpstreamBase;
use crate::telemetry::log::AccessLog;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::record::Sinks;
use arc_swap::ArcSwap;
use gatehouse_adapters::Provider;
use gatehouse_guards::policy::Policy;
use prometheus_client::registry::Registry;
use rustc_hash::FxHashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

pub struct ConnectionRuntime {
    pub id: String,
    /// What this connection's provider does differently from a plain OAuth/REST API.
    pub provider: Arc<dyn Provider>,
    pub base: UpstreamBase,
    /// Pooled clients to the provider, one per data-plane worker.
    pub clients: UpstreamClients,
    /// The SOQL guard, for a connection whose provider speaks SOQL.
    pub soql: Option<crate::stages::soql::ConnectionSoql>,
    /// Further hosts (lower case) this connection may be sent to besides its base's
    /// (`allowed_hosts`: a Salesforce `instance_url`).
    pub allowed_hosts: Vec<String>,
}

impl ConnectionRuntime {
    /// Where a request with this credential goes: the connection's base URL, or the API base
    /// the token belongs to (a token endpoint's `instance_url`, which the credential layer only
    /// hands out for configured hosts, parsed once when the token arrived).
    pub fn base_for<'a>(&'a self, applied: &'a crate::credentials::Applied) -> &'a UpstreamBase {
        applied.base_url.as_deref().unwrap_or(&self.base)
    }

    /// The path and query, relative to this connection's base path, of a URL the provider
    /// handed out (a pagination link), when the URL is on one of the connection's own hosts
    /// (its base URL's scheme and authority, or an `allowed_hosts` host on the same scheme)
    /// and under its base path. `None` for any other URL: Gatehouse neither follows nor
    /// rewrites it.
    pub fn own_path_of(&self, url: &str) -> Option<(String, Option<String>)> {
        let url = url::Url::parse(url).ok()?;
        if url.scheme() != self.base.scheme.as_str()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return None;
        }
        let host = url.host_str()?.to_ascii_lowercase();
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        let own = authority == self.base.authority.as_str()
            || (url.port().is_none() && self.allowed_hosts.contains(&host));
        if !own {
            return None;
        }
        let path = url.path().strip_prefix(self.base.base_path.as_str())?;
        if !(path.is_empty() || path.starts_with('/')) {
            return None;
        }
        let path = if path.is_empty() { "/" } else { path };
        Some((path.to_owned(), url.query().map(str::to_owned)))
    }

    /// What the SOQL stage sees of this connection.
    pub fn soql_view(&self) -> crate::stages::soql::Connection<'_> {
        crate::stages::soql::Connection {
            id: &self.id,
            provider: self.provider.as_ref(),
            clients: &self.clients,
            base: &self.base,
            soql: self.soql.as_ref(),
        }
    }
}

pub struct AppState {
    pub config: Arc<Config>,
    pub connections: FxHashMap<String, Arc<ConnectionRuntime>>,
    pub policy: ArcSwap<Policy>,
    pub credentials: Credentials,
    pub metrics: Metrics,
    /// Where each request's record goes (metrics, access log).
    pub sinks: Sinks,
    /// Per-connection outcomes for the admin dashboard.
    pub registry: Registry,
    /// False once shutdown has begun, so `/readyz` takes the instance out of rotation.
    pub accepting: AtomicBool,
    /// Who may use the admin port (`[admin]`).
    pub admin: crate::admin::auth::AdminAuth,
    /// The unified API's cursor key and sync-state hooks.
    pub unified: crate::unified::UnifiedState,
    /// The unified API's sync state and its metrics.
    pub sync: Arc<crate::unified::sync_state::SyncStates>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    #[error("connection {connection}: {message}")]
    Connection { connection: String, message: String },
    #[error(transparent)]
    Credentials(#[from] crate::credentials::CredentialError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
}

impl AppState {
    /// The connection a request is routed to (shared: the request's record, completed after
    /// the pipeline has returned, names it too).
    pub fn connection(
        &self,
        target: &crate::stages::route::Target<'_>,
    ) -> Result<&Arc<ConnectionRuntime>, crate::error::GatewayError> {
        self.connections.get(target.connection).ok_or_else(|| {
            crate::error::GatewayError::new(
                crate::error::Category::NotFound,
                "unknown_connection",
                format!("no connection named {:?}", target.connection),
            )
        })
    }

    pub async fn build(config: Config) -> Result<Arc<AppState>, StartError> {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry, config.server.worker_count());
        let policy = config.load_policy()?;
        let mut connections = FxHashMap::default();
        for conn in &config.connections {
            let err = |message: String| StartError::Connection {
                connection: conn.id.clone(),
                message,
            };
            let provider = conn.resolve_provider().map_err(err)?;
            let base = UpstreamBase::parse(&conn.base_url).map_err(err)?;
            let clients =
                UpstreamClients::build(&config.server, conn, config.server.worker_count())
                    .map_err(err)?;
            let soql =
                crate::stages::soql::ConnectionSoql::build(conn, provider.as_ref()).map_err(err)?;
            connections.insert(
                conn.id.clone(),
                Arc::new(ConnectionRuntime {
                    id: conn.id.clone(),
                    provider,
                    base,
                    clients,
                    soql,
                    allowed_hosts: conn
                        .allowed_hosts
                        .iter()
                        .map(|h| h.to_ascii_lowercase())
                        .collect(),
                }),
            );
        }
        let credentials = Credentials::start(&config, &mut registry).await?;
        let admin = crate::admin::auth::AdminAuth::start(&config.admin)?;
        // After the credentials: they create the embedded store's key when there is none.
        let unified = crate::unified::UnifiedState::start(&config.store);
        let sync =
            crate::unified::sync_state::SyncStates::start(&config, &credentials, &mut registry);
        Ok(Arc::new(AppState {
            config: Arc::new(config),
            connections,
            policy: ArcSwap::from_pointee(policy),
            credentials,
            // Every request record goes to the request metrics, then the access log.
            sinks: Sinks::new(vec![metrics.requests.clone(), Arc::new(AccessLog)]),
            metrics,
            registry,
            accepting: AtomicBool::new(true),
            admin,
            unified,
            sync,
        }))
    }
}
