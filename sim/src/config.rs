//! Simulator configuration. `SimConfig::default()` gives working demo values; fields left
//! `None` take the provider's documented default (see `providers.md`).

use std::time::Duration;

use crate::tls::TestCa;
use crate::Provider;

/// Demo RSA private key (PKCS#8 PEM) matching [`DEMO_JWT_PUBLIC_KEY_PEM`]. Test/demo use only:
/// sign Salesforce JWT bearer assertions with it.
pub const DEMO_JWT_PRIVATE_KEY_PEM: &str = include_str!("keys/demo_jwt_private.pem");
/// Demo RSA public key (SPKI PEM) the Salesforce simulator trusts by default.
pub const DEMO_JWT_PUBLIC_KEY_PEM: &str = include_str!("keys/demo_jwt_public.pem");
/// Default OAuth client id.
pub const DEMO_CLIENT_ID: &str = "gatehouse-demo-client";
/// Default OAuth client secret.
pub const DEMO_CLIENT_SECRET: &str = "gatehouse-demo-secret";
/// Default API key for Basic-auth providers (Greenhouse v1, Lever, Ashby).
pub const DEMO_API_KEY: &str = "demo-api-key";
/// Default HubSpot private-app token (static Bearer token).
pub const DEMO_PRIVATE_APP_TOKEN: &str = "pat-na1-11111111-2222-3333-4444-555555555555";
/// Default seed refresh token (valid for [`DEMO_CLIENT_ID`] at start).
pub const DEMO_REFRESH_TOKEN: &str = "demo-refresh-token";
/// Default user for the authorize flow and the seed refresh token.
pub const DEMO_USER: &str = "demo.user@example.com";
/// The `audience` Lever's OAuth endpoints require (Lever's API identifier, trailing slash
/// included). The Lever simulator also accepts its own `<base>/v1/`.
pub const LEVER_AUDIENCE: &str = "https://api.lever.co/v1/";
/// Default "Run As" user for client credentials.
pub const DEMO_RUN_AS_USER: &str = "integration@example.com";

/// A registered OAuth client (connected app / HubSpot app / Greenhouse v3 integration /
/// Lever partner app).
#[derive(Clone, Debug)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: String,
    /// Allowed redirect URIs for the authorize flow; empty = any.
    pub redirect_uris: Vec<String>,
    /// Scopes granted; empty = the provider's demo scopes.
    pub scopes: Vec<String>,
    /// The user client-credentials tokens run as (Salesforce "Run As"; Greenhouse `sub` is sent).
    pub run_as_user: String,
}

impl OAuthClient {
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            redirect_uris: Vec::new(),
            scopes: Vec::new(),
            run_as_user: DEMO_RUN_AS_USER.to_owned(),
        }
    }
}

/// A refresh token that is valid from start-up.
#[derive(Clone, Debug)]
pub struct SeedRefreshToken {
    pub client_id: String,
    pub refresh_token: String,
    pub user: String,
}

/// Salesforce JWT bearer flow settings.
#[derive(Clone, Debug)]
pub struct JwtBearerConfig {
    /// `iss` must equal this (the connected app's consumer key).
    pub consumer_key: String,
    /// RS256 public key (SPKI "BEGIN PUBLIC KEY" or PKCS#1 "BEGIN RSA PUBLIC KEY" PEM).
    pub public_key_pem: String,
    /// Usernames (`sub`) pre-authorised for the app.
    pub allowed_usernames: Vec<String>,
    /// Accepted `aud` values. Default: login/test.salesforce.com plus this simulator's own base URLs.
    pub allowed_audiences: Vec<String>,
}

impl Default for JwtBearerConfig {
    fn default() -> Self {
        Self {
            consumer_key: DEMO_CLIENT_ID.to_owned(),
            public_key_pem: DEMO_JWT_PUBLIC_KEY_PEM.to_owned(),
            allowed_usernames: vec![DEMO_RUN_AS_USER.to_owned(), DEMO_USER.to_owned()],
            allowed_audiences: vec![
                "https://login.salesforce.com".to_owned(),
                "https://test.salesforce.com".to_owned(),
            ],
        }
    }
}

/// Configuration for one simulator.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Registered OAuth clients. Default: one ([`DEMO_CLIENT_ID`] / [`DEMO_CLIENT_SECRET`]).
    pub clients: Vec<OAuthClient>,
    /// Basic-auth API keys (Greenhouse v1, Lever, Ashby). Default: [`DEMO_API_KEY`].
    pub api_keys: Vec<String>,
    /// HubSpot private-app tokens (static Bearer; get the Daily rate headers). Default: one.
    pub private_app_tokens: Vec<String>,
    /// Refresh tokens valid at start. Default: [`DEMO_REFRESH_TOKEN`] for the demo client.
    pub seed_refresh_tokens: Vec<SeedRefreshToken>,
    /// Salesforce JWT bearer settings (`None` disables the grant).
    pub jwt_bearer: Option<JwtBearerConfig>,
    /// Access-token lifetime. `None`: Salesforce 2 h, HubSpot 1800 s, Greenhouse v3 1 h, Lever 1 h.
    pub access_token_lifetime: Option<Duration>,
    /// Refresh-token lifetime. `None`: Greenhouse v3 24 h, Lever 90 days (restarted by each
    /// rotation), others never expire.
    pub refresh_token_lifetime: Option<Duration>,
    /// Authorization-code lifetime (Greenhouse documents 1 min).
    pub auth_code_lifetime: Duration,
    /// Refresh-token rotation. `None`: Salesforce on, HubSpot off, Greenhouse v3 on, Lever on.
    pub rotate_refresh_tokens: Option<bool>,
    /// Refresh-token families kept per (client, user); the oldest is revoked past it.
    /// `None`: Salesforce 5, others unlimited.
    pub max_refresh_tokens_per_user: Option<usize>,
    /// Seeded records per object. `None`: Salesforce 2500, HubSpot 1000, Greenhouse 1000,
    /// Lever 500, Ashby 500.
    pub record_count: Option<usize>,
    /// Seed for the deterministic record generator.
    pub seed: u64,
    /// Requests allowed per quota window. `None`: Salesforce 100000 (per 24 h), HubSpot 100
    /// (per 10 s), Greenhouse 50 (per 10 s), Lever 20 (per 1 s), Ashby 100 (per 10 s).
    pub quota_limit: Option<u64>,
    /// The quota window. `None`: the provider's window above.
    pub quota_window: Option<Duration>,
    /// HubSpot daily limit for private-app tokens (default 250000 per 24 h).
    pub daily_quota_limit: Option<u64>,
    /// Greenhouse v1 rejects plain HTTP with 403 when true (as the real API does). Default false
    /// so the plain HTTP port stays usable in tests.
    pub reject_plain_http: bool,
    /// Certificate authority for the HTTPS port. `None`: a fresh one per simulator.
    pub ca: Option<TestCa>,
    /// User the authorize endpoint "logs in" (auto-approves) as.
    pub authorize_user: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            clients: vec![OAuthClient::new(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)],
            api_keys: vec![DEMO_API_KEY.to_owned()],
            private_app_tokens: vec![DEMO_PRIVATE_APP_TOKEN.to_owned()],
            seed_refresh_tokens: vec![SeedRefreshToken {
                client_id: DEMO_CLIENT_ID.to_owned(),
                refresh_token: DEMO_REFRESH_TOKEN.to_owned(),
                user: DEMO_USER.to_owned(),
            }],
            jwt_bearer: Some(JwtBearerConfig::default()),
            access_token_lifetime: None,
            refresh_token_lifetime: None,
            auth_code_lifetime: Duration::from_secs(60),
            rotate_refresh_tokens: None,
            max_refresh_tokens_per_user: None,
            record_count: None,
            seed: 42,
            quota_limit: None,
            quota_window: None,
            daily_quota_limit: None,
            reject_plain_http: false,
            ca: None,
            authorize_user: DEMO_USER.to_owned(),
        }
    }
}

/// Provider defaults resolved against a config.
pub(crate) struct Resolved {
    pub access_lifetime: Duration,
    pub refresh_lifetime: Option<Duration>,
    pub rotate: bool,
    pub max_families: Option<usize>,
    pub record_count: usize,
    pub quota_limit: u64,
    pub quota_window: Duration,
    pub daily_limit: u64,
}

pub(crate) fn resolve(provider: Provider, c: &SimConfig) -> Resolved {
    use Provider::*;
    let (access, refresh, rotate, families, records, qlimit, qwin) = match provider {
        Salesforce => (7200, None, true, Some(5), 2500, 100_000, 86_400),
        HubSpot => (1800, None, false, None, 1000, 100, 10),
        GreenhouseV1 => (3600, None, false, None, 1000, 50, 10),
        GreenhouseV3 => (3600, Some(86_400), true, None, 1000, 50, 10),
        // Lever refresh tokens: 90 days of inactivity (each rotation restarts the clock; the
        // 1-year absolute cap is not modelled).
        Lever => (3600, Some(90 * 86_400), true, None, 500, 20, 1),
        Ashby => (3600, None, false, None, 500, 100, 10),
    };
    Resolved {
        access_lifetime: c
            .access_token_lifetime
            .unwrap_or(Duration::from_secs(access)),
        refresh_lifetime: c
            .refresh_token_lifetime
            .or(refresh.map(Duration::from_secs)),
        rotate: c.rotate_refresh_tokens.unwrap_or(rotate),
        max_families: c.max_refresh_tokens_per_user.or(families),
        record_count: c.record_count.unwrap_or(records),
        quota_limit: c.quota_limit.unwrap_or(qlimit),
        quota_window: c.quota_window.unwrap_or(Duration::from_secs(qwin)),
        daily_limit: c.daily_quota_limit.unwrap_or(250_000),
    }
}
