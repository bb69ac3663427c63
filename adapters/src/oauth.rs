//! Token-endpoint semantics as pure functions (no sockets): the RFC 6749 (and RFC 7523, RFC
//! 7636) behaviour every provider starts from. A provider that differs overrides the matching
//! method of [`crate::Provider`]; nothing here knows a provider by name.

use base64::Engine;
use serde_json::{Map, Value};
use std::fmt;

/// The grant being asked for. Borrowed values: the caller owns (and redacts) the secrets.
#[derive(Clone, Copy)]
pub enum Grant<'a> {
    /// Exchange a refresh token (authorization-code connections).
    RefreshToken { refresh_token: &'a str },
    /// Client credentials; `sub` names the user the token acts for (Greenhouse v3).
    ClientCredentials { sub: Option<&'a str> },
    /// RFC 7523 JWT bearer with a signed assertion (Salesforce).
    JwtBearer { assertion: &'a str },
    /// The end of the connect flow: a code from the authorize redirect plus its PKCE verifier.
    AuthorizationCode {
        code: &'a str,
        redirect_uri: &'a str,
        code_verifier: &'a str,
    },
}

impl Grant<'_> {
    fn grant_type(&self) -> &'static str {
        match self {
            Grant::RefreshToken { .. } => "refresh_token",
            Grant::ClientCredentials { .. } => "client_credentials",
            Grant::JwtBearer { .. } => "urn:ietf:params:oauth:grant-type:jwt-bearer",
            Grant::AuthorizationCode { .. } => "authorization_code",
        }
    }
}

/// How the client authenticates to the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    Body,
    /// `Authorization: Basic base64(client_id:client_secret)` (`client_secret_basic`).
    Basic,
}

/// Everything needed to build one token request.
#[derive(Clone, Copy)]
pub struct TokenParams<'a> {
    pub grant: Grant<'a>,
    pub client_id: &'a str,
    pub client_secret: Option<&'a str>,
    /// Requested scopes; sent where the grant takes a scope (client credentials).
    pub scopes: &'a [String],
    /// OAuth `audience` (Lever requires it; Auth0-hosted servers in general).
    pub audience: Option<&'a str>,
    /// Overrides the provider's client authentication style.
    pub client_auth: Option<ClientAuth>,
}

/// A token request ready to send: a form body and, optionally, Basic client credentials.
pub struct TokenRequest {
    pub form: Vec<(&'static str, String)>,
    /// `(client_id, client_secret)` as configured, for the `Authorization: Basic` header. Send
    /// [`TokenRequest::authorization`], which encodes them; never join these by hand.
    pub basic_auth: Option<(String, String)>,
}

impl TokenRequest {
    /// The `application/x-www-form-urlencoded` body.
    pub fn body(&self) -> String {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.form {
            serializer.append_pair(name, value);
        }
        serializer.finish()
    }

    /// The `Authorization` header value for Basic client authentication, if this request uses
    /// it. RFC 6749 §2.3.1 has the client id and secret form-urlencoded *before* they are
    /// joined with `:`, so a secret holding `:`, `+` or `%` reaches a strict token endpoint
    /// intact (it decodes each half after splitting on the first `:`).
    pub fn authorization(&self) -> Option<String> {
        let (id, secret) = self.basic_auth.as_ref()?;
        let encode = |raw: &str| -> String {
            url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
        };
        let joined = format!("{}:{}", encode(id), encode(secret));
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(joined)
        ))
    }
}

impl fmt::Debug for TokenRequest {
    // The form carries secrets (refresh tokens, client secrets, assertions): names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.form.iter().map(|(n, _)| *n).collect();
        f.debug_struct("TokenRequest")
            .field("form_fields", &names)
            .field("basic_auth", &self.basic_auth.is_some())
            .finish()
    }
}

/// Builds an RFC 6749 token request; `default_auth` is the provider's client authentication
/// style, used unless the connection's config overrides it.
pub fn token_request(params: &TokenParams<'_>, default_auth: ClientAuth) -> TokenRequest {
    let mut form: Vec<(&'static str, String)> =
        vec![("grant_type", params.grant.grant_type().to_owned())];
    match params.grant {
        Grant::RefreshToken { refresh_token } => {
            form.push(("refresh_token", refresh_token.to_owned()))
        }
        Grant::ClientCredentials { sub } => {
            if !params.scopes.is_empty() {
                form.push(("scope", params.scopes.join(" ")));
            }
            if let Some(sub) = sub {
                form.push(("sub", sub.to_owned()));
            }
            if let Some(audience) = params.audience {
                form.push(("audience", audience.to_owned()));
            }
        }
        Grant::JwtBearer { assertion } => form.push(("assertion", assertion.to_owned())),
        Grant::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            form.push(("code", code.to_owned()));
            form.push(("redirect_uri", redirect_uri.to_owned()));
            form.push(("code_verifier", code_verifier.to_owned()));
        }
    }
    // The JWT bearer assertion is the client's proof (RFC 7523 §2.1): no client secret with it.
    if matches!(params.grant, Grant::JwtBearer { .. }) {
        return TokenRequest {
            form,
            basic_auth: None,
        };
    }
    let mut basic_auth = None;
    match params.client_auth.unwrap_or(default_auth) {
        ClientAuth::Body => {
            form.push(("client_id", params.client_id.to_owned()));
            if let Some(secret) = params.client_secret {
                form.push(("client_secret", secret.to_owned()));
            }
        }
        ClientAuth::Basic => {
            basic_auth = Some((
                params.client_id.to_owned(),
                params.client_secret.unwrap_or_default().to_owned(),
            ));
        }
    }
    TokenRequest { form, basic_auth }
}

/// Parameters of the authorize redirect of the connect flow.
pub struct AuthorizeParams<'a> {
    pub authorize_url: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scopes: &'a [String],
    pub state: &'a str,
    /// PKCE S256 challenge: BASE64URL(SHA256(verifier)).
    pub code_challenge: &'a str,
    pub audience: Option<&'a str>,
}

/// The authorize URL with the query the connect flow needs (RFC 6749 §4.1.1, RFC 7636 §4.3).
pub fn authorize_url(params: &AuthorizeParams<'_>) -> Result<String, String> {
    let mut url = url::Url::parse(params.authorize_url)
        .map_err(|e| format!("authorize_url is not a URL: {e}"))?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", params.client_id)
            .append_pair("redirect_uri", params.redirect_uri)
            .append_pair("state", params.state)
            .append_pair("code_challenge", params.code_challenge)
            .append_pair("code_challenge_method", "S256");
        if !params.scopes.is_empty() {
            query.append_pair("scope", &params.scopes.join(" "));
        }
        // Auth0-hosted servers (Lever) require the audience and issue refresh tokens only for
        // offline access; both are configuration, checked at start-up.
        if let Some(audience) = params.audience {
            query.append_pair("audience", audience);
        }
    }
    Ok(url.into())
}

/// The claims of an RFC 7523 JWT bearer assertion: `iss` = consumer key, `sub` = username,
/// `aud` = login URL, and a short `exp`.
pub fn jwt_bearer_claims(
    consumer_key: &str,
    username: &str,
    audience: &str,
    now_unix: u64,
    lifetime_secs: u64,
) -> Value {
    serde_json::json!({
        "iss": consumer_key,
        "sub": username,
        "aud": audience,
        "exp": now_unix + lifetime_secs,
    })
}

/// A successful token response.
pub struct TokenGrant {
    pub access_token: String,
    /// A new refresh token: with rotation, the old one is now dead and this one must be kept.
    pub refresh_token: Option<String>,
    /// Seconds the access token lives: `expires_in`, else the given default, else `None`.
    pub expires_in: Option<u64>,
    /// The API host the token belongs to, where the provider names one (`instance_url`).
    pub instance_url: Option<String>,
    /// Scopes actually granted, when the provider says.
    pub scopes: Vec<String>,
    /// The provider account the grant belongs to, when the token response says
    /// ([`crate::Provider::account_from_token_response`]).
    pub account: Option<ProviderAccount>,
}

impl fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenGrant")
            .field("refresh_token", &self.refresh_token.is_some())
            .field("expires_in", &self.expires_in)
            .field("instance_url", &self.instance_url)
            .field("scopes", &self.scopes)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// What a failed token call means for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The grant is permanently dead (`invalid_grant`, HubSpot `BAD_REFRESH_TOKEN`/`BAD_HUB`):
    /// a person must re-authorise. Retrying only hammers the provider.
    DeadGrant,
    /// Worth retrying later: 5xx, 429, timeouts, garbage where JSON was expected.
    Transient,
    /// Our side is wrong (`invalid_client`, `unsupported_grant_type`, bad scope): retrying
    /// will not help until the configuration changes.
    Misconfigured,
}

/// A failed token call. `code` is an OAuth error code (or `http_<status>`), never body text,
/// so it is safe in logs, metrics and error envelopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFailure {
    pub kind: FailureKind,
    pub code: String,
}

impl TokenFailure {
    pub fn new(kind: FailureKind, code: impl Into<String>) -> Self {
        Self {
            kind,
            code: code.into(),
        }
    }
}

/// The RFC 6749 §5.1 fields of a successful answer (plus the `instance_url` and `scopes[]`
/// spellings providers use).
pub(crate) fn read_token_grant(
    object: &Map<String, Value>,
    default_lifetime_secs: Option<u64>,
) -> Result<TokenGrant, TokenFailure> {
    let access_token = match object.get("access_token") {
        Some(Value::String(token))
            if !token.is_empty() && token.bytes().all(|b| (0x21..0x7f).contains(&b)) =>
        {
            token.clone()
        }
        _ => {
            return Err(TokenFailure::new(
                FailureKind::Transient,
                "invalid_token_response",
            ))
        }
    };
    let refresh_token = match object.get("refresh_token") {
        Some(Value::String(token)) if !token.is_empty() => Some(token.clone()),
        _ => None,
    };
    let expires_in = match object.get("expires_in") {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
    .or(default_lifetime_secs);
    let instance_url = match object.get("instance_url") {
        Some(Value::String(url)) if !url.is_empty() => Some(url.clone()),
        _ => None,
    };
    let scopes = match (object.get("scope"), object.get("scopes")) {
        (Some(Value::String(s)), _) => s
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        (_, Some(Value::Array(items))) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    Ok(TokenGrant {
        access_token,
        refresh_token,
        expires_in,
        instance_url,
        scopes,
        account: None,
    })
}

/// Statuses that say "later", whatever the body: overload, throttling, a timed-out request.
pub fn is_transient_status(status: u16) -> bool {
    status >= 500 || status == 429 || status == 408
}

/// Classifies a non-2xx token endpoint answer by its RFC 6749 §5.2 `error`.
pub fn classify_failure(status: u16, body: Option<&Value>) -> TokenFailure {
    if is_transient_status(status) {
        return TokenFailure::new(FailureKind::Transient, format!("http_{status}"));
    }
    if let Some(code) = body_code(body, "error") {
        let kind = match code.as_str() {
            // RFC 6749 §5.2: the grant (refresh token, code, assertion subject) is invalid,
            // expired or revoked. `access_denied` here means consent was withdrawn.
            "invalid_grant" | "access_denied" => FailureKind::DeadGrant,
            "temporarily_unavailable" | "server_error" | "slow_down" => FailureKind::Transient,
            // `invalid_client`, `unauthorized_client`, `unsupported_grant_type`,
            // `invalid_scope`, `invalid_request`, and codes we do not know.
            _ => FailureKind::Misconfigured,
        };
        return TokenFailure::new(kind, code);
    }
    // A 4xx without a readable OAuth body: the request itself is being refused.
    TokenFailure::new(FailureKind::Misconfigured, format!("http_{status}"))
}

/// A string field of an error body, cleaned by [`safe_code`].
pub fn body_code(body: Option<&Value>, field: &str) -> Option<String> {
    body.and_then(|b| b.get(field))
        .and_then(Value::as_str)
        .map(safe_code)
}

/// Keeps an error code printable and short: a hostile body must not inject text into logs.
pub fn safe_code(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        .take(64)
        .collect();
    if cleaned.is_empty() {
        "unknown_error".to_owned()
    } else {
        cleaned
    }
}

/// The provider account a grant belongs to, as the provider names it. Values come from the
/// provider's answers and are cleaned of control characters and bounded in length before
/// they reach an admin page or a log line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProviderAccount {
    /// The provider's id of the account (organisation, portal, tenant).
    pub account_id: String,
    /// The user the grant acts as, when the provider says.
    pub user: Option<String>,
    /// Where the account lives or how the provider identifies it (an identity URL, a domain).
    pub locator: Option<String>,
}

impl ProviderAccount {
    /// Longest value kept from a provider's answer.
    const MAX_CHARS: usize = 256;

    /// An account from raw provider values; `None` if the id is empty once cleaned.
    pub fn new(account_id: &str, user: Option<&str>, locator: Option<&str>) -> Option<Self> {
        let clean = |raw: &str| -> Option<String> {
            let kept: String = raw
                .chars()
                .filter(|c| !c.is_control())
                .take(Self::MAX_CHARS)
                .collect();
            let kept = kept.trim();
            (!kept.is_empty()).then(|| kept.to_owned())
        };
        Some(Self {
            account_id: clean(account_id)?,
            user: user.and_then(clean),
            locator: locator.and_then(clean),
        })
    }
}

impl fmt::Display for ProviderAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "account {}", self.account_id)?;
        if let Some(user) = &self.user {
            write!(f, ", user {user}")?;
        }
        if let Some(locator) = &self.locator {
            write!(f, " ({locator})")?;
        }
        Ok(())
    }
}

/// Token parameters for the adapters' tests: client `cid` with `secret`, no scopes, no
/// audience, the provider's default client authentication.
#[cfg(test)]
pub(crate) fn params<'a>(grant: Grant<'a>, secret: Option<&'a str>) -> TokenParams<'a> {
    TokenParams {
        grant,
        client_id: "cid",
        client_secret: secret,
        scopes: &[],
        audience: None,
        client_auth: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refresh() -> TokenRequest {
        token_request(
            &params(
                Grant::RefreshToken {
                    refresh_token: "rt-1",
                },
                Some("csecret"),
            ),
            ClientAuth::Body,
        )
    }

    #[test]
    fn refresh_request_puts_client_credentials_in_the_body() {
        let req = refresh();
        assert_eq!(
            req.body(),
            "grant_type=refresh_token&refresh_token=rt-1&client_id=cid&client_secret=csecret"
        );
        assert!(req.basic_auth.is_none() && req.authorization().is_none());
    }

    #[test]
    fn config_client_auth_overrides_the_provider_default() {
        let mut p = params(
            Grant::RefreshToken {
                refresh_token: "rt-1",
            },
            Some("csecret"),
        );
        p.client_auth = Some(ClientAuth::Basic);
        let req = token_request(&p, ClientAuth::Body);
        assert_eq!(req.body(), "grant_type=refresh_token&refresh_token=rt-1");
        assert!(req.authorization().is_some());
    }

    /// Splits and decodes a Basic header the way a strict RFC 6749 §2.3.1 endpoint does.
    fn strict_decode(header: &str) -> (String, String) {
        let b64 = header.strip_prefix("Basic ").unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (id, secret) = raw.split_once(':').unwrap();
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .unwrap()
                .1
                .into_owned()
        };
        (decode(id), decode(secret))
    }

    #[test]
    fn basic_client_auth_form_urlencodes_id_and_secret_before_joining() {
        for (id, secret) in [
            ("cid", "plain"),
            ("client:with:colons", "s3cr+t%2F:/ =&\u{fc}"),
            ("a b", ""),
        ] {
            let mut p = params(Grant::ClientCredentials { sub: None }, Some(secret));
            p.client_id = id;
            let header = token_request(&p, ClientAuth::Basic)
                .authorization()
                .unwrap();
            assert_eq!(
                strict_decode(&header),
                (id.to_owned(), secret.to_owned()),
                "{id:?} {secret:?}"
            );
        }
        // The exact bytes for a secret with every troublesome character.
        let mut p = params(Grant::ClientCredentials { sub: None }, Some("a+b%c:d"));
        p.client_id = "id";
        let header = token_request(&p, ClientAuth::Basic)
            .authorization()
            .unwrap();
        let expected = base64::engine::general_purpose::STANDARD.encode("id:a%2Bb%25c%3Ad");
        assert_eq!(header, format!("Basic {expected}"));
    }

    #[test]
    fn jwt_bearer_sends_only_the_assertion() {
        let req = token_request(
            &params(Grant::JwtBearer { assertion: "a.b.c" }, Some("csecret")),
            ClientAuth::Basic,
        );
        assert_eq!(
            req.body(),
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c"
        );
        assert!(req.authorization().is_none());
    }

    #[test]
    fn debug_of_request_shows_no_values() {
        let text = format!("{:?}", refresh());
        assert!(
            !text.contains("rt-1") && !text.contains("csecret"),
            "{text}"
        );
    }

    #[test]
    fn authorize_url_carries_state_pkce_and_scopes() {
        let scopes = vec!["api".to_owned(), "refresh_token".to_owned()];
        let url = authorize_url(&AuthorizeParams {
            authorize_url: "https://login.example.com/services/oauth2/authorize",
            client_id: "cid",
            redirect_uri: "http://127.0.0.1:9090/connect/sf/callback",
            scopes: &scopes,
            state: "st",
            code_challenge: "ch",
            audience: None,
        })
        .unwrap();
        assert!(url.starts_with(
            "https://login.example.com/services/oauth2/authorize?response_type=code&client_id=cid"
        ));
        assert!(
            url.contains("state=st")
                && url.contains("code_challenge=ch")
                && url.contains("code_challenge_method=S256")
        );
        assert!(url.contains("scope=api+refresh_token"));
    }

    #[test]
    fn jwt_claims_have_short_expiry() {
        let claims = jwt_bearer_claims("ck", "user@example.com", "https://aud.example", 1000, 180);
        assert_eq!(claims["exp"], 1180);
        assert_eq!(claims["iss"], "ck");
        assert_eq!(claims["sub"], "user@example.com");
    }
}
