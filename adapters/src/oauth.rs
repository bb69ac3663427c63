//! Provider token-endpoint semantics, as pure functions (no sockets): how each provider wants
//! a token request built, how its token responses read, and what its failure bodies mean.
//!
//! The proxy never names a provider; it hands the profile name to these functions. Providers
//! not listed here (custom profiles) get plain RFC 6749 behaviour.

use serde_json::Value;
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
    /// Overrides the profile's client authentication style.
    pub client_auth: Option<ClientAuth>,
}

/// A token request ready to send: a form body and, optionally, Basic client credentials.
pub struct TokenRequest {
    pub form: Vec<(&'static str, String)>,
    /// `(user, password)` for the `Authorization: Basic` header.
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

/// The client authentication a provider expects by default.
pub fn default_client_auth(profile: &str) -> ClientAuth {
    match profile {
        // Greenhouse v3 documents HTTP Basic `client_id:client_secret` on its token endpoint.
        "greenhouse-v3" => ClientAuth::Basic,
        _ => ClientAuth::Body,
    }
}

/// Builds the token request for `profile`.
pub fn token_request(profile: &str, params: &TokenParams<'_>) -> TokenRequest {
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
    // The JWT bearer assertion is the client's proof; Salesforce takes no client secret with it.
    if matches!(params.grant, Grant::JwtBearer { .. }) {
        return TokenRequest {
            form,
            basic_auth: None,
        };
    }
    let auth = params
        .client_auth
        .unwrap_or_else(|| default_client_auth(profile));
    let mut basic_auth = None;
    match auth {
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

/// The provider's authorize URL with the query the connect flow needs.
pub fn authorize_url(profile: &str, params: &AuthorizeParams<'_>) -> Result<String, String> {
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
        if let Some(audience) = params.audience {
            query.append_pair("audience", audience);
        }
        // Lever's authorization server (Auth0) only issues refresh tokens for offline access,
        // and requires the audience; both are configuration, checked at start-up.
        let _ = profile;
    }
    Ok(url.into())
}

/// The claims of a Salesforce-style JWT bearer assertion: `iss` = consumer key, `sub` =
/// username, `aud` = login URL, and a short `exp`.
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
    /// Seconds the access token lives: `expires_in`, else the profile default, else `None`.
    pub expires_in: Option<u64>,
    /// Salesforce: the org's API host.
    pub instance_url: Option<String>,
    /// Scopes actually granted, when the provider says.
    pub scopes: Vec<String>,
}

impl fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenGrant")
            .field("refresh_token", &self.refresh_token.is_some())
            .field("expires_in", &self.expires_in)
            .field("instance_url", &self.instance_url)
            .field("scopes", &self.scopes)
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
    fn new(kind: FailureKind, code: impl Into<String>) -> Self {
        Self {
            kind,
            code: code.into(),
        }
    }
}

/// Reads a token endpoint answer. `default_lifetime_secs` is the profile's lifetime for
/// providers that send no `expires_in`.
pub fn parse_token_response(
    profile: &str,
    default_lifetime_secs: Option<u64>,
    status: u16,
    body: &[u8],
) -> Result<TokenGrant, TokenFailure> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    if !(200..300).contains(&status) {
        return Err(classify_failure(profile, status, json.as_ref()));
    }
    let Some(Value::Object(object)) = json else {
        return Err(TokenFailure::new(
            FailureKind::Transient,
            "invalid_token_response",
        ));
    };
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
    })
}

/// Classifies a non-2xx token endpoint answer.
pub fn classify_failure(profile: &str, status: u16, body: Option<&Value>) -> TokenFailure {
    if status >= 500 || status == 429 || status == 408 {
        return TokenFailure::new(FailureKind::Transient, format!("http_{status}"));
    }
    let field = |name: &str| {
        body.and_then(|b| b.get(name))
            .and_then(Value::as_str)
            .map(safe_code)
    };
    // HubSpot puts its own code in `status` (`BAD_REFRESH_TOKEN`, `BAD_HUB`); newer bodies also
    // carry the RFC 6749 `error`. The HubSpot code is the more specific, so it wins.
    if profile == "hubspot" {
        if let Some(code) = field("status") {
            let kind = match code.as_str() {
                "BAD_REFRESH_TOKEN" | "BAD_HUB" | "BAD_AUTH_CODE" | "EXPIRED_AUTH_CODE" => {
                    Some(FailureKind::DeadGrant)
                }
                "BAD_CLIENT_ID" | "BAD_CLIENT_SECRET" | "BAD_REDIRECT_URI" | "BAD_GRANT_TYPE"
                | "BAD_SCOPES" => Some(FailureKind::Misconfigured),
                _ => None,
            };
            if let Some(kind) = kind {
                return TokenFailure::new(kind, code);
            }
        }
    }
    if let Some(code) = field("error") {
        let kind = match code.as_str() {
            // RFC 6749 §5.2: the grant (refresh token, code, assertion subject) is invalid,
            // expired or revoked. `access_denied` here means consent was withdrawn.
            "invalid_grant" | "access_denied" => FailureKind::DeadGrant,
            "invalid_client"
            | "unauthorized_client"
            | "unsupported_grant_type"
            | "invalid_scope"
            | "invalid_request" => FailureKind::Misconfigured,
            "temporarily_unavailable" | "server_error" | "slow_down" => FailureKind::Transient,
            _ if status == 401 || status == 403 => FailureKind::Misconfigured,
            _ => FailureKind::Misconfigured,
        };
        return TokenFailure::new(kind, code);
    }
    // A 4xx without a readable OAuth body: the request itself is being refused.
    TokenFailure::new(FailureKind::Misconfigured, format!("http_{status}"))
}

/// Keeps an error code printable and short: a hostile body must not inject text into logs.
fn safe_code(raw: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refresh(profile: &str) -> TokenRequest {
        token_request(
            profile,
            &TokenParams {
                grant: Grant::RefreshToken {
                    refresh_token: "rt-1",
                },
                client_id: "cid",
                client_secret: Some("csecret"),
                scopes: &[],
                audience: None,
                client_auth: None,
            },
        )
    }

    #[test]
    fn refresh_request_puts_client_credentials_in_the_body() {
        let req = refresh("hubspot");
        assert_eq!(
            req.body(),
            "grant_type=refresh_token&refresh_token=rt-1&client_id=cid&client_secret=csecret"
        );
        assert!(req.basic_auth.is_none());
    }

    #[test]
    fn greenhouse_v3_client_credentials_use_basic_and_sub() {
        let scopes = vec!["harvest:candidates:list".to_owned()];
        let req = token_request(
            "greenhouse-v3",
            &TokenParams {
                grant: Grant::ClientCredentials { sub: Some("4242") },
                client_id: "cid",
                client_secret: Some("csecret"),
                scopes: &scopes,
                audience: None,
                client_auth: None,
            },
        );
        assert_eq!(
            req.body(),
            "grant_type=client_credentials&scope=harvest%3Acandidates%3Alist&sub=4242"
        );
        assert_eq!(
            req.basic_auth,
            Some(("cid".to_owned(), "csecret".to_owned()))
        );
    }

    #[test]
    fn jwt_bearer_sends_only_the_assertion() {
        let req = token_request(
            "salesforce",
            &TokenParams {
                grant: Grant::JwtBearer { assertion: "a.b.c" },
                client_id: "cid",
                client_secret: Some("csecret"),
                scopes: &[],
                audience: None,
                client_auth: None,
            },
        );
        assert_eq!(
            req.body(),
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c"
        );
    }

    #[test]
    fn debug_of_request_shows_no_values() {
        let text = format!("{:?}", refresh("salesforce"));
        assert!(
            !text.contains("rt-1") && !text.contains("csecret"),
            "{text}"
        );
    }

    #[test]
    fn salesforce_response_without_expires_in_uses_profile_lifetime() {
        let body = br#"{"access_token":"00D!AQ","instance_url":"https://na1.example.com","id":"x","token_type":"Bearer","issued_at":"1700000000000","signature":"s","scope":"api refresh_token"}"#;
        let grant = parse_token_response("salesforce", Some(7200), 200, body).unwrap();
        assert_eq!(grant.expires_in, Some(7200));
        assert_eq!(
            grant.instance_url.as_deref(),
            Some("https://na1.example.com")
        );
        assert_eq!(grant.scopes, vec!["api", "refresh_token"]);
        assert!(grant.refresh_token.is_none());
    }

    #[test]
    fn hubspot_response_reads_scopes_array_and_rotated_token() {
        let body = br#"{"access_token":"CKabc","refresh_token":"na1-new","expires_in":1800,"token_type":"bearer","scopes":["oauth","crm.objects.contacts.read"]}"#;
        let grant = parse_token_response("hubspot", None, 200, body).unwrap();
        assert_eq!(grant.expires_in, Some(1800));
        assert_eq!(grant.refresh_token.as_deref(), Some("na1-new"));
        assert_eq!(grant.scopes, vec!["oauth", "crm.objects.contacts.read"]);
    }

    #[test]
    fn expires_in_as_string_is_accepted() {
        let grant = parse_token_response(
            "x",
            None,
            200,
            br#"{"access_token":"t","expires_in":"3600"}"#,
        )
        .unwrap();
        assert_eq!(grant.expires_in, Some(3600));
    }

    #[test]
    fn garbage_success_bodies_are_typed_errors() {
        for body in [
            &b"not json"[..],
            b"[]",
            b"{}",
            br#"{"access_token":""}"#,
            br#"{"access_token":42}"#,
            b"\xff\xfe",
            br#"{"access_token":"a b"}"#,
        ] {
            let failure = parse_token_response("salesforce", Some(7200), 200, body).unwrap_err();
            assert_eq!(failure.kind, FailureKind::Transient);
        }
    }

    #[test]
    fn dead_grants_are_recognised() {
        let cases: [(&str, u16, &[u8]); 4] = [
            ("salesforce", 400, br#"{"error":"invalid_grant","error_description":"expired access/refresh token"}"#),
            ("hubspot", 400, br#"{"status":"BAD_REFRESH_TOKEN","message":"missing or invalid refresh token"}"#),
            ("hubspot", 400, br#"{"status":"BAD_HUB","error":"access_denied"}"#),
            ("lever", 403, br#"{"error":"invalid_grant","error_description":"Unknown or invalid refresh token."}"#),
        ];
        for (profile, status, body) in cases {
            let failure = parse_token_response(profile, None, status, body).unwrap_err();
            assert_eq!(failure.kind, FailureKind::DeadGrant, "{profile} {status}");
        }
        let hub = parse_token_response(
            "hubspot",
            None,
            400,
            br#"{"status":"BAD_HUB","error":"access_denied"}"#,
        )
        .unwrap_err();
        assert_eq!(hub.code, "BAD_HUB");
    }

    #[test]
    fn transient_and_misconfigured_are_told_apart() {
        let down = parse_token_response("salesforce", None, 503, b"<html>busy</html>").unwrap_err();
        assert_eq!(down, TokenFailure::new(FailureKind::Transient, "http_503"));
        let client = parse_token_response(
            "salesforce",
            None,
            400,
            br#"{"error":"invalid_client","error_description":"bad secret"}"#,
        )
        .unwrap_err();
        assert_eq!(
            client,
            TokenFailure::new(FailureKind::Misconfigured, "invalid_client")
        );
        let odd = parse_token_response("x", None, 401, b"nope").unwrap_err();
        assert_eq!(
            odd,
            TokenFailure::new(FailureKind::Misconfigured, "http_401")
        );
    }

    #[test]
    fn error_codes_cannot_inject_text() {
        let failure = parse_token_response(
            "x",
            None,
            400,
            br#"{"error":"invalid_grant\nlevel=error secret=abc def"}"#,
        )
        .unwrap_err();
        assert_eq!(failure.code, "invalid_grantlevelerrorsecretabcdef");
    }

    #[test]
    fn authorize_url_carries_state_pkce_and_scopes() {
        let scopes = vec!["api".to_owned(), "refresh_token".to_owned()];
        let url = authorize_url(
            "salesforce",
            &AuthorizeParams {
                authorize_url: "https://login.example.com/services/oauth2/authorize",
                client_id: "cid",
                redirect_uri: "http://127.0.0.1:9090/connect/sf/callback",
                scopes: &scopes,
                state: "st",
                code_challenge: "ch",
                audience: None,
            },
        )
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
        let claims = jwt_bearer_claims(
            "ck",
            "user@example.com",
            "https://login.salesforce.com",
            1000,
            180,
        );
        assert_eq!(claims["exp"], 1180);
        assert_eq!(claims["iss"], "ck");
        assert_eq!(claims["sub"], "user@example.com");
    }
}
