//! Salesforce: OAuth 2.0 token endpoint (web-server code + PKCE, refresh with optional rotation
//! and family revocation, client credentials, JWT bearer), REST API under
//! `/services/data/vXX.X/` with `Sforce-Limit-Info`, 401 `INVALID_SESSION_ID`,
//! 403 `REQUEST_LIMIT_EXCEEDED`.

use base64::Engine;
use serde_json::{json, Value};

use crate::authorize::{authorize, AuthorizeError};
use crate::config::{JwtBearerConfig, Resolved, SimConfig};
use crate::http::{client_credentials, field, json, now_ms, set_header, Resp, SimRequest};
use crate::oauth::{AccessCheck, CodeError, Grant};
use crate::server::{Ctx, ProviderSim};
use crate::sf_api::{ApiOut, SfApi};
use crate::SimError;

pub(crate) const ORG_ID: &str = "00D5g000004SIMUEAU";
const TOKEN_PATH: &str = "/services/oauth2/token";
const AUTHORIZE_PATH: &str = "/services/oauth2/authorize";
const REVOKE_PATH: &str = "/services/oauth2/revoke";
const JWT_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub(crate) const LATEST_VERSION: &str = "66.0";

pub(crate) struct Salesforce {
    api: SfApi,
    jwt_key: Option<(jsonwebtoken::DecodingKey, JwtBearerConfig)>,
}

impl Salesforce {
    pub(crate) fn new(config: &SimConfig, resolved: &Resolved) -> Result<Self, SimError> {
        let jwt_key = match &config.jwt_bearer {
            Some(j) => {
                let key = jsonwebtoken::DecodingKey::from_rsa_pem(j.public_key_pem.as_bytes())
                    .map_err(|e| SimError::Config(format!("jwt_bearer.public_key_pem: {e}")))?;
                Some((key, j.clone()))
            }
            None => None,
        };
        Ok(Self {
            api: SfApi::new(config.seed, resolved.record_count),
            jwt_key,
        })
    }
}

/// `[{"message":..,"errorCode":..}]`, Salesforce's REST error shape.
pub(crate) fn sf_error(code: &str, message: &str) -> Value {
    json!([{"message": message, "errorCode": code}])
}

fn oauth_error(error: &str, description: &str) -> Resp {
    json(
        400,
        &json!({"error": error, "error_description": description}),
    )
}

impl ProviderSim for Salesforce {
    fn handle(&self, ctx: &Ctx, req: &SimRequest) -> Resp {
        let path = req.path.as_str();
        if path == TOKEN_PATH {
            return self.token(ctx, req);
        }
        if path == AUTHORIZE_PATH {
            return match authorize(ctx, req) {
                Ok(r) => r,
                Err(AuthorizeError::UnknownClient) => {
                    oauth_error("invalid_client_id", "client identifier invalid")
                }
                Err(AuthorizeError::BadRedirect) => oauth_error(
                    "redirect_uri_mismatch",
                    "redirect_uri must match configuration",
                ),
            };
        }
        if path == REVOKE_PATH {
            let token = field(&req.form(), "token").or_else(|| req.query_param("token"));
            let ok =
                token.is_some_and(|t| ctx.tokens.revoke_refresh(&t) | ctx.tokens.revoke_access(&t));
            return if ok {
                json(200, &json!({}))
            } else {
                oauth_error("unsupported_token_type", "this token type is not supported")
            };
        }
        let trimmed = path.trim_end_matches('/');
        if trimmed == "/services/data" {
            // The versions URI: no auth, no Sforce-Limit-Info.
            let versions: Vec<Value> = ["62.0", "63.0", "64.0", "65.0", LATEST_VERSION]
                .iter()
                .map(|v| {
                    json!({"label": "Simulated", "url": format!("/services/data/v{v}"), "version": v})
                })
                .collect();
            return json(200, &Value::Array(versions));
        }
        let Some(rest) = path.strip_prefix("/services/data/v") else {
            return json(
                404,
                &sf_error("NOT_FOUND", "The requested resource does not exist"),
            );
        };
        let (version, rest) = rest.split_once('/').unwrap_or((rest, ""));
        let mut resp = self.rest(ctx, req, version, rest);
        let q = ctx.quota.peek();
        set_header(
            &mut resp,
            "sforce-limit-info",
            format!("api-usage={}/{}", q.used, q.limit),
        );
        resp
    }

    fn is_token_endpoint(&self, path: &str) -> bool {
        path == TOKEN_PATH || path == AUTHORIZE_PATH
    }

    fn server_error(&self, status: u16) -> Resp {
        let body = if status == 503 {
            sf_error("SERVER_UNAVAILABLE", "Server is busy; please retry later.")
        } else {
            sf_error(
                "UNKNOWN_EXCEPTION",
                "An unexpected error occurred. Please include this ErrorId if you contact support: 1234567890-12345 (-123456789)",
            )
        };
        json(status, &body)
    }

    fn token_path(&self) -> &'static str {
        TOKEN_PATH
    }

    fn authorize_path(&self) -> &'static str {
        AUTHORIZE_PATH
    }
}

impl Salesforce {
    fn rest(&self, ctx: &Ctx, req: &SimRequest, version: &str, rest: &str) -> Resp {
        if !valid_version(version) {
            return json(
                404,
                &sf_error("NOT_FOUND", "The requested resource does not exist"),
            );
        }
        let check = match req.bearer() {
            Some(t) => ctx.tokens.check_access(t),
            None => AccessCheck::Invalid,
        };
        if !matches!(check, AccessCheck::Valid(_)) {
            let mut r = json(
                401,
                &sf_error("INVALID_SESSION_ID", "Session expired or invalid"),
            );
            set_header(&mut r, "www-authenticate", "Token");
            return r;
        }
        // Composite counts once; batch counts each subrequest (taken inside).
        let units = if rest.trim_end_matches('/') == "composite/batch" {
            0
        } else {
            1
        };
        if units > 0 && ctx.quota.take(units).is_err() {
            return limit_exceeded();
        }
        let out = self.api.dispatch(ctx, req, version, rest);
        match out {
            ApiOut::Json(status, v) => json(status, &v),
            ApiOut::Empty(status) => crate::http::empty(status),
            ApiOut::Raw(r) => r,
        }
    }

    fn token(&self, ctx: &Ctx, req: &SimRequest) -> Resp {
        if req.method != http::Method::POST {
            return oauth_error("invalid_request", "must use HTTP POST");
        }
        let form = req.form();
        let grant = field(&form, "grant_type").unwrap_or_default();
        let (client_id, secret) = client_credentials(req, &form);
        let client = client_id
            .as_deref()
            .and_then(|id| ctx.config.clients.iter().find(|c| c.client_id == id));
        let result: Result<Grant, Resp> = match grant.as_str() {
            "refresh_token" => (|| {
                let client = client
                    .ok_or_else(|| oauth_error("invalid_client_id", "client identifier invalid"))?;
                if secret.as_deref().is_some_and(|s| s != client.client_secret) {
                    return Err(oauth_error("invalid_client", "invalid client credentials"));
                }
                let token = field(&form, "refresh_token").unwrap_or_default();
                ctx.tokens
                    .refresh(&client.client_id, &token)
                    .map_err(|_| oauth_error("invalid_grant", "expired access/refresh token"))
            })(),
            "client_credentials" => (|| {
                let client = client
                    .ok_or_else(|| oauth_error("invalid_client_id", "client identifier invalid"))?;
                if secret.as_deref() != Some(client.client_secret.as_str()) {
                    return Err(oauth_error("invalid_client", "invalid client credentials"));
                }
                let scopes = crate::default_scopes(ctx.provider, &ctx.config, &client.client_id);
                let scopes: Vec<String> = scopes
                    .into_iter()
                    .filter(|s| s != "refresh_token" && s != "offline_access")
                    .collect();
                Ok(ctx
                    .tokens
                    .issue(&client.client_id, &client.run_as_user, &scopes, false))
            })(),
            "authorization_code" => (|| {
                let client = client
                    .ok_or_else(|| oauth_error("invalid_client_id", "client identifier invalid"))?;
                if secret.as_deref().is_some_and(|s| s != client.client_secret) {
                    return Err(oauth_error("invalid_client", "invalid client credentials"));
                }
                let code = field(&form, "code").unwrap_or_default();
                ctx.tokens
                    .redeem_code(
                        &code,
                        &client.client_id,
                        field(&form, "redirect_uri").as_deref(),
                        field(&form, "code_verifier").as_deref(),
                    )
                    .map_err(|e| match e {
                        CodeError::Expired => {
                            oauth_error("invalid_grant", "expired authorization code")
                        }
                        CodeError::PkceFailed => {
                            oauth_error("invalid_grant", "invalid code verifier")
                        }
                        CodeError::RedirectMismatch => oauth_error(
                            "redirect_uri_mismatch",
                            "redirect_uri must match configuration",
                        ),
                        CodeError::Invalid | CodeError::WrongClient => {
                            oauth_error("invalid_grant", "invalid authorization code")
                        }
                    })
            })(),
            JWT_GRANT => self.jwt_bearer(ctx, req, &form),
            _ => Err(oauth_error(
                "unsupported_grant_type",
                "grant type not supported",
            )),
        };
        match result {
            Ok(g) => {
                let secret = client
                    .map(|c| c.client_secret.clone())
                    .or_else(|| self.jwt_key.as_ref().map(|(_, j)| j.consumer_key.clone()))
                    .unwrap_or_default();
                json(200, &token_response(ctx, req, &g, &secret))
            }
            Err(r) => r,
        }
    }

    fn jwt_bearer(
        &self,
        ctx: &Ctx,
        req: &SimRequest,
        form: &[(String, String)],
    ) -> Result<Grant, Resp> {
        let Some((key, cfg)) = &self.jwt_key else {
            return Err(oauth_error(
                "unsupported_grant_type",
                "grant type not supported",
            ));
        };
        let assertion = field(form, "assertion").unwrap_or_default();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.validate_aud = false;
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Value>(&assertion, key, &validation)
            .map_err(|_| oauth_error("invalid_grant", "invalid assertion"))?;
        let claims = data.claims;
        let iss = claims["iss"].as_str().unwrap_or_default();
        if iss != cfg.consumer_key {
            return Err(oauth_error(
                "invalid_client_id",
                "client identifier invalid",
            ));
        }
        let aud_ok = |a: &str| {
            let a = a.trim_end_matches('/');
            cfg.allowed_audiences
                .iter()
                .any(|x| x.trim_end_matches('/') == a)
                || a == ctx.http_base
                || a == ctx.https_base
                || a == req.base_url
        };
        let aud_valid = match &claims["aud"] {
            Value::String(a) => aud_ok(a),
            Value::Array(v) => v.iter().filter_map(Value::as_str).any(aud_ok),
            _ => false,
        };
        if !aud_valid {
            return Err(oauth_error("invalid_grant", "audience is invalid"));
        }
        let now = now_ms() / 1000;
        match claims["exp"].as_u64() {
            Some(exp) if exp + 5 >= now => {}
            _ => return Err(oauth_error("invalid_grant", "expired authorization code")),
        }
        let sub = claims["sub"].as_str().unwrap_or_default();
        if !cfg.allowed_usernames.iter().any(|u| u == sub) {
            return Err(oauth_error(
                "invalid_grant",
                "user hasn't approved this consumer",
            ));
        }
        let scopes = crate::default_scopes(ctx.provider, &ctx.config, &cfg.consumer_key);
        let scopes: Vec<String> = scopes
            .into_iter()
            .filter(|s| s != "refresh_token" && s != "offline_access")
            .collect();
        Ok(ctx.tokens.issue(&cfg.consumer_key, sub, &scopes, false))
    }
}

fn token_response(ctx: &Ctx, req: &SimRequest, g: &Grant, secret: &str) -> Value {
    let issued_at = now_ms().to_string();
    let id = format!("{}/id/{}/{}", req.base_url, ORG_ID, user_id(&g.user));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, format!("{id}{issued_at}").as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
    let _ = ctx;
    let mut v = json!({
        "access_token": g.access_token,
        "signature": signature,
        "scope": g.scopes.join(" "),
        "instance_url": req.base_url,
        "id": id,
        "token_type": "Bearer",
        "issued_at": issued_at,
    });
    if let (Some(rt), Some(obj)) = (&g.refresh_token, v.as_object_mut()) {
        obj.insert("refresh_token".into(), json!(rt));
    }
    v
}

/// A stable 18-char User Id for a username.
pub(crate) fn user_id(username: &str) -> String {
    let h = username.bytes().fold(1469598103934665603u64, |a, b| {
        (a ^ u64::from(b)).wrapping_mul(1099511628211)
    });
    crate::sf_data::sf_id("005", h % 1_000_000)
}

pub(crate) fn limit_exceeded() -> Resp {
    json(
        403,
        &sf_error("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
    )
}

fn valid_version(v: &str) -> bool {
    let mut parts = v.split('.');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(a), Some(b), None) if !a.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) && b == "0"
    )
}
