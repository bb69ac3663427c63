//! What every request shares: connections (provider, upstream base, pooled client), the policy
//! in force (swapped atomically on reload), credentials and metrics.

use crate::config::{Config, ConfigErrors};
use crate::credentials::Credentials;
use crate::metrics::Metrics;
use crate::routing::UpstreamBase;
use crate::upstream::UpstreamClients;
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
}

pub struct AppState {
    pub config: Arc<Config>,
    pub connections: FxHashMap<String, Arc<ConnectionRuntime>>,
    pub policy: ArcSwap<Policy>,
    pub credentials: Credentials,
    /// SOQL guards of the connections whose provider speaks SOQL.
    pub soql: FxHashMap<String, crate::soql_stage::ConnectionSoql>,
    pub metrics: Metrics,
    /// Per-connection outcomes for the admin dashboard.
    pub registry: Registry,
    /// False once shutdown has begun, so `/readyz` takes the instance out of rotation.
    pub accepting: AtomicBool,
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
            connections.insert(
                conn.id.clone(),
                Arc::new(ConnectionRuntime {
                    id: conn.id.clone(),
                    provider,
                    base,
                    clients,
                }),
            );
        }
        let soql = crate::soql_stage::ConnectionSoql::build_all(&config).map_err(|message| {
            StartError::Connection {
                connection: "soql".into(),
                message,
            }
        })?;
        let credentials = Credentials::start(&config, &mut registry).await?;
        Ok(Arc::new(AppState {
            config: Arc::new(config),
            connections,
            policy: ArcSwap::from_pointee(policy),
            credentials,
            soql,
            metrics,
            registry,
            accepting: AtomicBool::new(true),
        }))
    }
}
