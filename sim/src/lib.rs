//! Gatehouse provider simulators: in-process, loopback, faithful to `providers.md`.
//!
//! Each [`Simulator`] serves one provider on two ports (plain HTTP and HTTPS with a test CA),
//! with the provider's OAuth token endpoint, API endpoints over seeded records, pagination,
//! quotas and their signals, a record of every request received, and run-time fault
//! injection (through [`SimHandle::faults`] or `POST /__sim/faults`). See `sim/README.md`.

// Handlers return the provider's error response as `Err(Resp)`; boxing it would only add noise
// in a test simulator where the error path is as hot as the success path.
#![allow(clippy::result_large_err)]

mod authorize;
mod config;
mod data;
/// The `gatehouse demo` world and traffic generator.
pub mod demo;
mod faults;
mod http;
mod oauth;
mod quota;
mod record;
mod server;
mod sf_api;
mod sf_composite;
mod sf_data;
mod sf_explain;
mod tls;

mod ashby;
mod greenhouse;
mod greenhouse_data;
mod hubspot;
mod hubspot_data;
mod lever;
mod salesforce;
mod soql;
mod soql_eval;

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{
    JwtBearerConfig, OAuthClient, SeedRefreshToken, SimConfig, DEMO_API_KEY, DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET, DEMO_JWT_PRIVATE_KEY_PEM, DEMO_JWT_PUBLIC_KEY_PEM, DEMO_PRIVATE_APP_TOKEN,
    DEMO_REFRESH_TOKEN, DEMO_RUN_AS_USER, DEMO_USER, LEVER_AUDIENCE,
};
pub use faults::{FaultState, FaultTarget, Faults, SlowBody, TokenEndpointDown};
pub use oauth::pkce_s256;
pub use record::{ReceivedRequest, TokenCallCounts};
pub use tls::TestCa;

use crate::oauth::{TokenStore, TokenStyle};
use crate::quota::Quota;
use crate::server::{App, Ctx, ProviderSim};

/// The simulated providers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    Salesforce,
    HubSpot,
    /// Greenhouse Harvest v1 (Basic auth, page/per_page + Link).
    GreenhouseV1,
    /// Greenhouse Harvest v3 (OAuth client credentials / auth code, cursor Link).
    GreenhouseV3,
    Lever,
    Ashby,
}

impl Provider {
    /// Every provider, in a stable order.
    pub const ALL: [Provider; 6] = [
        Provider::Salesforce,
        Provider::HubSpot,
        Provider::GreenhouseV1,
        Provider::GreenhouseV3,
        Provider::Lever,
        Provider::Ashby,
    ];

    /// Stable lower-case name (`salesforce`, `hubspot`, `greenhouse_v1`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Provider::Salesforce => "salesforce",
            Provider::HubSpot => "hubspot",
            Provider::GreenhouseV1 => "greenhouse_v1",
            Provider::GreenhouseV3 => "greenhouse_v3",
            Provider::Lever => "lever",
            Provider::Ashby => "ashby",
        }
    }

    /// Whether the provider has an OAuth token endpoint and accepts OAuth access tokens
    /// (else Basic API keys only). Lever takes both: Basic API keys and, for partner apps,
    /// OAuth Bearer tokens.
    pub fn uses_oauth(self) -> bool {
        matches!(
            self,
            Provider::Salesforce | Provider::HubSpot | Provider::GreenhouseV3 | Provider::Lever
        )
    }
}

/// Start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("could not bind a loopback port: {0}")]
    Bind(#[from] std::io::Error),
    #[error("test certificate authority: {0}")]
    Tls(String),
    #[error("invalid simulator config: {0}")]
    Config(String),
}

/// Starts simulators.
pub struct Simulator;

impl Simulator {
    /// Binds two loopback ports (HTTP and HTTPS) and starts serving `provider`.
    pub async fn start(provider: Provider, config: SimConfig) -> Result<SimHandle, SimError> {
        let http_listener = TcpListener::bind("127.0.0.1:0").await?;
        let https_listener = TcpListener::bind("127.0.0.1:0").await?;
        let http_addr = http_listener.local_addr()?;
        let https_addr = https_listener.local_addr()?;
        let ca = match &config.ca {
            Some(ca) => ca.clone(),
            None => TestCa::generate()?,
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config()?);
        let resolved = config::resolve(provider, &config);
        let style = match provider {
            Provider::Salesforce => TokenStyle::Salesforce,
            Provider::HubSpot => TokenStyle::HubSpot,
            _ => TokenStyle::Jwt,
        };
        let mut store = TokenStore::new(
            style,
            resolved.access_lifetime,
            resolved.refresh_lifetime,
            config.auth_code_lifetime,
            resolved.rotate,
            resolved.max_families,
        );
        if provider == Provider::Lever {
            // Auth0: a refresh token only when `offline_access` was granted.
            store = store.with_refresh_scope("offline_access");
        }
        let tokens = Arc::new(store);
        let quota = Arc::new(Quota::new(resolved.quota_limit, resolved.quota_window));
        let daily = Arc::new(Quota::new(
            resolved.daily_limit,
            std::time::Duration::from_secs(86_400),
        ));
        let faults = Faults::new(
            provider.uses_oauth().then(|| tokens.clone()),
            quota.clone(),
            daily.clone(),
        );
        for seed in &config.seed_refresh_tokens {
            let scopes = default_scopes(provider, &config, &seed.client_id);
            tokens.add_refresh_token(
                &seed.client_id,
                &seed.user,
                &scopes,
                Some(seed.refresh_token.clone()),
            );
        }
        let sim: Box<dyn ProviderSim> = match provider {
            Provider::Salesforce => Box::new(salesforce::Salesforce::new(&config, &resolved)?),
            Provider::HubSpot => Box::new(hubspot::HubSpot::new(&config, &resolved)),
            Provider::GreenhouseV1 => {
                Box::new(greenhouse::Greenhouse::new(false, &config, &resolved))
            }
            Provider::GreenhouseV3 => {
                Box::new(greenhouse::Greenhouse::new(true, &config, &resolved))
            }
            Provider::Lever => Box::new(lever::Lever::new(&config, &resolved)),
            Provider::Ashby => Box::new(ashby::Ashby::new(&config, &resolved)),
        };
        let http_base = format!("http://127.0.0.1:{}", http_addr.port());
        let https_base = format!("https://localhost:{}", https_addr.port());
        let app = Arc::new(App {
            ctx: Ctx {
                provider,
                config,
                resolved,
                faults,
                recorder: Default::default(),
                tokens,
                quota,
                daily,
                http_base: http_base.clone(),
                https_base: https_base.clone(),
            },
            provider: sim,
        });
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(server::serve(
                http_listener,
                None,
                app.clone(),
                http_base,
                shutdown_rx.clone(),
            )),
            tokio::spawn(server::serve(
                https_listener,
                Some(acceptor),
                app.clone(),
                https_base,
                shutdown_rx,
            )),
        ];
        tracing::debug!(provider = provider.name(), %http_addr, %https_addr, "simulator started");
        Ok(SimHandle {
            app,
            http_addr,
            https_addr,
            ca_pem: ca.cert_pem(),
            shutdown: shutdown_tx,
            tasks,
        })
    }
}

/// A running simulator. Dropping it leaves the listeners running until the runtime ends;
/// call [`SimHandle::shutdown`] to stop them.
pub struct SimHandle {
    app: Arc<App>,
    http_addr: SocketAddr,
    https_addr: SocketAddr,
    ca_pem: String,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl SimHandle {
    pub fn provider(&self) -> Provider {
        self.app.ctx.provider
    }

    /// `http://127.0.0.1:PORT`
    pub fn http_base_url(&self) -> String {
        self.app.ctx.http_base.clone()
    }

    /// `https://localhost:PORT` (certificate valid for `localhost` and `127.0.0.1`).
    pub fn https_base_url(&self) -> String {
        self.app.ctx.https_base.clone()
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn https_addr(&self) -> SocketAddr {
        self.https_addr
    }

    /// PEM of the CA that signed the HTTPS certificate.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// Token endpoint on the HTTP port (the same path works on the HTTPS port).
    pub fn token_url(&self) -> String {
        format!("{}{}", self.http_base_url(), self.app.provider.token_path())
    }

    /// Authorize endpoint on the HTTP port (the same path works on the HTTPS port).
    pub fn authorize_url(&self) -> String {
        format!(
            "{}{}",
            self.http_base_url(),
            self.app.provider.authorize_path()
        )
    }

    /// Every request received so far (admin `/__sim/` calls excluded), oldest first.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.app.ctx.recorder.received()
    }

    /// Forgets received requests and token-call counters.
    pub fn clear_received(&self) {
        self.app.ctx.recorder.clear()
    }

    /// Token-endpoint calls by grant type, and failures.
    pub fn token_calls(&self) -> TokenCallCounts {
        self.app.ctx.recorder.token_calls()
    }

    /// Run-time fault controls.
    pub fn faults(&self) -> &Faults {
        &self.app.ctx.faults
    }

    /// The live refresh token of the newest family for `client_id` (after rotation, the new one).
    pub fn current_refresh_token(&self, client_id: &str) -> Option<String> {
        self.app.ctx.tokens.current_refresh_tokens(client_id).pop()
    }

    /// All live refresh tokens for `client_id`, oldest family first.
    pub fn current_refresh_tokens(&self, client_id: &str) -> Vec<String> {
        self.app.ctx.tokens.current_refresh_tokens(client_id)
    }

    /// Whether this refresh token would be accepted now.
    pub fn refresh_token_is_live(&self, refresh_token: &str) -> bool {
        self.app.ctx.tokens.refresh_token_is_live(refresh_token)
    }

    /// Mints a refresh token (a new family) for `client_id` acting as `user`.
    pub fn issue_refresh_token(&self, client_id: &str, user: &str) -> String {
        issue_refresh(&self.app.ctx, client_id, user)
    }

    /// Mints an access token directly (no token-endpoint call), e.g. to test API endpoints.
    pub fn issue_access_token(&self, client_id: &str, user: &str) -> String {
        let ctx = &self.app.ctx;
        let scopes = default_scopes(ctx.provider, &ctx.config, client_id);
        ctx.tokens
            .issue(client_id, user, &scopes, false)
            .access_token
    }

    /// Quota used and the limit, in the current window.
    pub fn quota_usage(&self) -> (u64, u64) {
        let q = self.app.ctx.quota.peek();
        (q.used, q.limit)
    }

    /// Stops both listeners and their connections.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

pub(crate) fn issue_refresh(ctx: &Ctx, client_id: &str, user: &str) -> String {
    let scopes = default_scopes(ctx.provider, &ctx.config, client_id);
    ctx.tokens.add_refresh_token(client_id, user, &scopes, None)
}

/// Scopes a client gets: its configured ones, else the provider's demo set.
pub(crate) fn default_scopes(
    provider: Provider,
    config: &SimConfig,
    client_id: &str,
) -> Vec<String> {
    if let Some(c) = config.clients.iter().find(|c| c.client_id == client_id) {
        if !c.scopes.is_empty() {
            return c.scopes.clone();
        }
    }
    let s: &[&str] = match provider {
        Provider::Salesforce => &["api", "refresh_token", "offline_access"],
        Provider::HubSpot => &[
            "oauth",
            "crm.objects.contacts.read",
            "crm.objects.contacts.write",
            "crm.objects.companies.read",
            "crm.objects.deals.read",
        ],
        Provider::GreenhouseV3 => &[
            "harvest:candidates:list",
            "harvest:applications:list",
            "harvest:jobs:list",
        ],
        Provider::Lever => &[
            "opportunities:read:admin",
            "postings:read:admin",
            "offline_access",
        ],
        _ => &[],
    };
    s.iter().map(|s| (*s).to_owned()).collect()
}

pub(crate) fn info_json(ctx: &Ctx, sim: &dyn ProviderSim) -> Value {
    json!({
        "provider": ctx.provider.name(),
        "http_base_url": ctx.http_base,
        "https_base_url": ctx.https_base,
        "token_path": sim.token_path(),
        "authorize_path": sim.authorize_path(),
        "clients": ctx.config.clients.iter().map(|c| json!({"client_id": c.client_id, "client_secret": c.client_secret})).collect::<Vec<_>>(),
        "api_keys": ctx.config.api_keys,
        "records_per_object": ctx.resolved.record_count,
        "quota": {"limit": ctx.quota.peek().limit, "window_ms": ctx.quota.peek().window.as_millis() as u64},
    })
}
