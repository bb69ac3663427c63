//! The `credentials` table of a connection: how it authenticates to its provider. The schema
//! lives with the config; the credential module turns it into a live credential.

use crate::secret::Secret;
use gatehouse_adapters::oauth::ClientAuth;
use serde::Deserialize;
use std::path::PathBuf;

/// How a connection authenticates to its provider (the `credentials` table of a connection).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CredentialsConfig {
    /// Send no credential (a public API, or a test upstream).
    #[default]
    None,
    /// `Authorization: Bearer <token>` (e.g. a private-app token).
    Bearer { token: Secret },
    /// `Authorization: Basic base64(username:password)`; providers that take an API key as
    /// the user name use a blank password.
    Basic {
        username: Secret,
        #[serde(default)]
        password: Secret,
    },
    /// Any single header carrying a static secret (e.g. `X-Api-Key`).
    Header { name: String, value: Secret },
    /// OAuth 2.0 refresh-token grant for authorization-code connections. The first refresh
    /// token comes from the connect flow (`GET /connect/<id>` on the admin port) or `refresh_token`.
    OauthRefreshToken {
        token_url: String,
        client_id: String,
        #[serde(default)]
        client_secret: Secret,
        /// Scopes requested in the connect flow (least privilege).
        #[serde(default)]
        scopes: Vec<String>,
        /// A seed refresh token. Changing it in config re-seeds the connection (and clears
        /// `reauth_required`); an unchanged seed never overwrites a rotated token.
        #[serde(default)]
        refresh_token: Option<Secret>,
        /// OAuth `audience` (Lever requires it).
        #[serde(default)]
        audience: Option<String>,
        /// The provider's authorize endpoint, for the connect flow.
        #[serde(default)]
        authorize_url: Option<String>,
        /// This Gatehouse's callback, as registered with the provider:
        /// `https://<admin host>/connect/<id>/callback`.
        #[serde(default)]
        redirect_uri: Option<String>,
        /// Access-token lifetime when the token endpoint sends no `expires_in` (overrides the
        /// provider profile's default, e.g. a Salesforce org's shorter session timeout).
        #[serde(default)]
        token_lifetime_secs: Option<u64>,
        /// Refresh this long before expiry (default 60; capped at half the lifetime). A random
        /// jitter of up to a quarter of the margin spreads a fleet's refreshes.
        #[serde(default)]
        refresh_margin_secs: Option<u64>,
        /// How long one token-endpoint call may take (default 10).
        #[serde(default)]
        token_timeout_secs: Option<u64>,
        /// `body` (client_secret_post) or `basic` (client_secret_basic); default per provider.
        #[serde(default)]
        client_auth: Option<ClientAuth>,
    },
    /// OAuth 2.0 client credentials (Salesforce "Run As" user; Greenhouse v3 with `sub`).
    ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: Secret,
        #[serde(default)]
        scopes: Vec<String>,
        /// The user the token acts for (Greenhouse v3 `sub`).
        #[serde(default)]
        sub: Option<String>,
        #[serde(default)]
        audience: Option<String>,
        /// Access-token lifetime when the token endpoint sends no `expires_in` (overrides the
        /// provider profile's default, e.g. a Salesforce org's shorter session timeout).
        #[serde(default)]
        token_lifetime_secs: Option<u64>,
        /// Refresh this long before expiry (default 60; capped at half the lifetime). A random
        /// jitter of up to a quarter of the margin spreads a fleet's refreshes.
        #[serde(default)]
        refresh_margin_secs: Option<u64>,
        /// How long one token-endpoint call may take (default 10).
        #[serde(default)]
        token_timeout_secs: Option<u64>,
        /// `body` (client_secret_post) or `basic` (client_secret_basic); default per provider.
        #[serde(default)]
        client_auth: Option<ClientAuth>,
    },
    /// RFC 7523 JWT bearer (Salesforce): an RS256 assertion signed with `private_key_file`.
    JwtBearer {
        token_url: String,
        /// `iss`: the connected app's consumer key.
        consumer_key: String,
        /// `sub`: the (pre-authorised) username.
        username: String,
        /// `aud`: the login URL (`https://login.salesforce.com`, `https://test.salesforce.com`).
        audience: String,
        /// PEM RSA private key whose certificate is uploaded to the connected app.
        private_key_file: PathBuf,
        #[serde(default)]
        scopes: Vec<String>,
        /// Access-token lifetime when the token endpoint sends no `expires_in` (overrides the
        /// provider profile's default, e.g. a Salesforce org's shorter session timeout).
        #[serde(default)]
        token_lifetime_secs: Option<u64>,
        /// Refresh this long before expiry (default 60; capped at half the lifetime). A random
        /// jitter of up to a quarter of the margin spreads a fleet's refreshes.
        #[serde(default)]
        refresh_margin_secs: Option<u64>,
        /// How long one token-endpoint call may take (default 10).
        #[serde(default)]
        token_timeout_secs: Option<u64>,
        /// `body` (client_secret_post) or `basic` (client_secret_basic); default per provider.
        #[serde(default)]
        client_auth: Option<ClientAuth>,
    },
}
