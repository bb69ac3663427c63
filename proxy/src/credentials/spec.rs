//! A connection's OAuth grant, read from config once and checked at start-up, and the token
//! requests it produces (their wire shape comes from the connection's `Provider`).

use super::{CredentialError, CredentialsConfig};
use crate::secret::Secret;
use gatehouse_adapters::oauth::{self, ClientAuth, Grant, TokenParams, TokenRequest};
use gatehouse_adapters::Provider;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Salesforce asks for a "short" `exp`; three minutes is its documented maximum.
const ASSERTION_LIFETIME_SECS: u64 = 180;
const DEFAULT_MARGIN: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn is_oauth(config: &CredentialsConfig) -> bool {
    matches!(
        config,
        CredentialsConfig::OauthRefreshToken { .. }
            | CredentialsConfig::ClientCredentials { .. }
            | CredentialsConfig::JwtBearer { .. }
    )
}

pub(crate) enum GrantKind {
    RefreshToken,
    ClientCredentials {
        sub: Option<String>,
    },
    JwtBearer {
        consumer_key: String,
        username: String,
        audience: String,
        key: jsonwebtoken::EncodingKey,
    },
}

pub(crate) struct OAuthSpec {
    pub grant: GrantKind,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub scopes: Vec<String>,
    pub audience: Option<String>,
    pub authorize_url: Option<String>,
    pub redirect_uri: Option<String>,
    /// Seed refresh token from config.
    pub seed: Option<Secret>,
    pub lifetime_secs: Option<u64>,
    pub margin: Duration,
    pub timeout: Duration,
    pub client_auth: Option<ClientAuth>,
}

fn check_url(connection: &str, field: &str, value: &str) -> Result<(), CredentialError> {
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Ok(()),
        _ => Err(CredentialError::Misconfigured {
            connection: connection.to_owned(),
            reason: format!("{field} must be an http(s) URL"),
        }),
    }
}

fn non_empty(secret: &Secret) -> Option<Secret> {
    (!secret.is_empty()).then(|| secret.clone())
}

impl OAuthSpec {
    pub fn from_config(
        connection: &str,
        config: &CredentialsConfig,
    ) -> Result<Self, CredentialError> {
        let bad = |reason: String| CredentialError::Misconfigured {
            connection: connection.to_owned(),
            reason,
        };
        let spec = match config {
            CredentialsConfig::OauthRefreshToken {
                token_url,
                client_id,
                client_secret,
                scopes,
                refresh_token,
                audience,
                authorize_url,
                redirect_uri,
                token_lifetime_secs,
                refresh_margin_secs,
                token_timeout_secs,
                client_auth,
            } => {
                if authorize_url.is_some() != redirect_uri.is_some() {
                    return Err(bad(
                        "the connect flow needs both authorize_url and redirect_uri".to_owned(),
                    ));
                }
                for (field, value) in [
                    ("authorize_url", authorize_url),
                    ("redirect_uri", redirect_uri),
                ] {
                    if let Some(value) = value {
                        check_url(connection, field, value)?;
                    }
                }
                Self {
                    grant: GrantKind::RefreshToken,
                    token_url: token_url.clone(),
                    client_id: client_id.clone(),
                    client_secret: non_empty(client_secret),
                    scopes: scopes.clone(),
                    audience: audience.clone(),
                    authorize_url: authorize_url.clone(),
                    redirect_uri: redirect_uri.clone(),
                    seed: refresh_token.as_ref().and_then(non_empty),
                    lifetime_secs: *token_lifetime_secs,
                    margin: refresh_margin_secs.map_or(DEFAULT_MARGIN, Duration::from_secs),
                    timeout: token_timeout_secs.map_or(DEFAULT_TIMEOUT, Duration::from_secs),
                    client_auth: *client_auth,
                }
            }
            CredentialsConfig::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scopes,
                sub,
                audience,
                token_lifetime_secs,
                refresh_margin_secs,
                token_timeout_secs,
                client_auth,
            } => Self {
                grant: GrantKind::ClientCredentials { sub: sub.clone() },
                token_url: token_url.clone(),
                client_id: client_id.clone(),
                client_secret: non_empty(client_secret),
                scopes: scopes.clone(),
                audience: audience.clone(),
                authorize_url: None,
                redirect_uri: None,
                seed: None,
                lifetime_secs: *token_lifetime_secs,
                margin: refresh_margin_secs.map_or(DEFAULT_MARGIN, Duration::from_secs),
                timeout: token_timeout_secs.map_or(DEFAULT_TIMEOUT, Duration::from_secs),
                client_auth: *client_auth,
            },
            CredentialsConfig::JwtBearer {
                token_url,
                consumer_key,
                username,
                audience,
                private_key_file,
                scopes,
                token_lifetime_secs,
                refresh_margin_secs,
                token_timeout_secs,
                client_auth,
            } => {
                let pem = std::fs::read(private_key_file).map_err(|e| {
                    bad(format!(
                        "cannot read private_key_file {}: {e}",
                        private_key_file.display()
                    ))
                })?;
                let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).map_err(|_| {
                    bad(format!(
                        "private_key_file {} is not an RSA private key (PEM)",
                        private_key_file.display()
                    ))
                })?;
                Self {
                    grant: GrantKind::JwtBearer {
                        consumer_key: consumer_key.clone(),
                        username: username.clone(),
                        audience: audience.clone(),
                        key,
                    },
                    token_url: token_url.clone(),
                    client_id: consumer_key.clone(),
                    client_secret: None,
                    scopes: scopes.clone(),
                    audience: None,
                    authorize_url: None,
                    redirect_uri: None,
                    seed: None,
                    lifetime_secs: *token_lifetime_secs,
                    margin: refresh_margin_secs.map_or(DEFAULT_MARGIN, Duration::from_secs),
                    timeout: token_timeout_secs.map_or(DEFAULT_TIMEOUT, Duration::from_secs),
                    client_auth: *client_auth,
                }
            }
            _ => return Err(bad("not an OAuth grant".to_owned())),
        };
        check_url(connection, "token_url", &spec.token_url)?;
        if spec.timeout.is_zero() {
            return Err(bad("token_timeout_secs must be positive".to_owned()));
        }
        Ok(spec)
    }

    pub fn grant_name(&self) -> &'static str {
        match self.grant {
            GrantKind::RefreshToken => "oauth_refresh_token",
            GrantKind::ClientCredentials { .. } => "client_credentials",
            GrantKind::JwtBearer { .. } => "jwt_bearer",
        }
    }

    /// Refresh-token grants die for good on `invalid_grant`; the others can mint again.
    pub fn uses_refresh_token(&self) -> bool {
        matches!(self.grant, GrantKind::RefreshToken)
    }

    fn params<'a>(&'a self, grant: Grant<'a>) -> TokenParams<'a> {
        TokenParams {
            grant,
            client_id: &self.client_id,
            client_secret: self.client_secret.as_ref().map(Secret::expose),
            scopes: &self.scopes,
            audience: self.audience.as_deref(),
            client_auth: self.client_auth,
        }
    }

    /// The request that gets a new access token (refresh, client credentials or JWT bearer).
    /// `None` for a refresh-token grant that has no refresh token yet.
    pub fn renew_request(
        &self,
        provider: &dyn Provider,
        refresh_token: Option<&Secret>,
    ) -> Result<Option<TokenRequest>, String> {
        Ok(Some(match &self.grant {
            GrantKind::RefreshToken => match refresh_token {
                Some(token) => provider.token_request(&self.params(Grant::RefreshToken {
                    refresh_token: token.expose(),
                })),
                None => return Ok(None),
            },
            GrantKind::ClientCredentials { sub } => {
                provider.token_request(&self.params(Grant::ClientCredentials {
                    sub: sub.as_deref(),
                }))
            }
            GrantKind::JwtBearer {
                consumer_key,
                username,
                audience,
                key,
            } => {
                let now = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
                let claims = oauth::jwt_bearer_claims(
                    consumer_key,
                    username,
                    audience,
                    now,
                    ASSERTION_LIFETIME_SECS,
                );
                let assertion = jsonwebtoken::encode(
                    &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
                    &claims,
                    key,
                )
                .map_err(|_| "cannot sign the JWT bearer assertion".to_owned())?;
                provider.token_request(&self.params(Grant::JwtBearer {
                    assertion: &assertion,
                }))
            }
        }))
    }

    /// The authorization-code exchange at the end of the connect flow.
    pub fn code_request(
        &self,
        provider: &dyn Provider,
        code: &str,
        code_verifier: &str,
    ) -> Option<TokenRequest> {
        let redirect_uri = self.redirect_uri.as_deref()?;
        Some(
            provider.token_request(&self.params(Grant::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            })),
        )
    }
}

/// Identifies a seed refresh token without storing it a second time.
pub(crate) fn seed_fingerprint(seed: &Secret) -> String {
    hex::encode(
        Sha256::new()
            .chain_update(b"gatehouse-seed:")
            .chain_update(seed.expose().as_bytes())
            .finalize(),
    )
}
