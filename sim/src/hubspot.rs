//! HubSpot: OAuth (`/oauth/v1/token`, `/oauth/v3/token`; authorization code + refresh token, no
//! client credentials), private-app tokens, CRM v3 objects (contacts, companies, deals) with
//! `limit`/`after` paging, search (10k cap, 4 req/s per token), batch read, the
//! `X-HubSpot-RateLimit-*` headers and 429 `policyName` bodies.

use std::collections::HashMap;
// tokio's clock, so tests that pause time move the simulators' rate windows too.
use tokio::time::Instant;

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::authorize::{authorize, AuthorizeError};
use crate::config::{Resolved, SimConfig};
use crate::http::{client_credentials, correlation_id, field, json, set_header, Resp, SimRequest};
use crate::hubspot_data::{HsStore, HsType};
use crate::oauth::{AccessCheck, CodeError, Grant};
use crate::server::{Ctx, ProviderSim};

const TOKEN_PATHS: &[&str] = &["/oauth/v1/token", "/oauth/v3/token", "/oauth/2026-03/token"];
const AUTHORIZE_PATH: &str = "/oauth/authorize";
const SEARCH_PER_SECOND: u32 = 4;

pub(crate) struct HubSpot {
    store: HsStore,
    search_window: Mutex<HashMap<String, (Instant, u32)>>,
}

/// HubSpot's error envelope.
pub(crate) fn hs_error(status: u16, category: &str, message: &str) -> Resp {
    json(
        status,
        &json!({"status": "error", "message": message, "correlationId": correlation_id(), "category": category}),
    )
}

/// Who is calling: an OAuth token (with scopes) or a private-app token.
struct Caller {
    private_app: bool,
    scopes: Vec<String>,
    token: String,
}

impl HubSpot {
    pub(crate) fn new(config: &SimConfig, resolved: &Resolved) -> Self {
        Self {
            store: HsStore::generate(config.seed, resolved.record_count),
            search_window: Mutex::new(HashMap::new()),
        }
    }

    fn token(&self, ctx: &Ctx, req: &SimRequest) -> Resp {
        let v3 = !req.path.starts_with("/oauth/v1/");
        let bad = |status: &str, message: &str, rfc: Option<(&str, &str)>| {
            let mut body =
                json!({"status": status, "message": message, "correlationId": correlation_id()});
            if let (true, Some((e, d)), Some(o)) = (v3, rfc, body.as_object_mut()) {
                o.insert("error".into(), json!(e));
                o.insert("error_description".into(), json!(d));
            }
            json(400, &body)
        };
        if req.method != http::Method::POST {
            return json(
                405,
                &json!({"status": "error", "message": "Method not allowed", "correlationId": correlation_id()}),
            );
        }
        let form = req.form();
        let grant = field(&form, "grant_type").unwrap_or_default();
        let (client_id, secret) = client_credentials(req, &form);
        let Some(client) = client_id
            .as_deref()
            .and_then(|id| ctx.config.clients.iter().find(|c| c.client_id == id))
        else {
            return bad(
                "BAD_CLIENT_ID",
                "missing or unknown client id",
                Some(("invalid_client", "client id is invalid")),
            );
        };
        if grant != "authorization_code" && grant != "refresh_token" {
            return bad(
                "BAD_GRANT_TYPE",
                "missing or unknown grant type",
                Some(("unsupported_grant_type", "grant type is not supported")),
            );
        }
        if secret.as_deref() != Some(client.client_secret.as_str()) {
            return bad(
                "BAD_CLIENT_SECRET",
                "missing or invalid client secret",
                Some(("invalid_client", "client secret is invalid")),
            );
        }
        let (grant_result, presented) = if grant == "refresh_token" {
            let rt = field(&form, "refresh_token").unwrap_or_default();
            let r = ctx.tokens.refresh(&client.client_id, &rt).map_err(|_| {
                bad(
                    "BAD_REFRESH_TOKEN",
                    "missing or invalid refresh token",
                    Some((
                        "invalid_grant",
                        "refresh token is invalid, expired or revoked",
                    )),
                )
            });
            (r, Some(rt))
        } else {
            let code = field(&form, "code").unwrap_or_default();
            let r = ctx
                .tokens
                .redeem_code(
                    &code,
                    &client.client_id,
                    field(&form, "redirect_uri").as_deref(),
                    field(&form, "code_verifier").as_deref(),
                )
                .map_err(|e| match e {
                    CodeError::RedirectMismatch => bad(
                        "BAD_REDIRECT_URI",
                        "redirect_uri does not match",
                        Some(("invalid_grant", "redirect uri mismatch")),
                    ),
                    _ => bad(
                        "BAD_AUTH_CODE",
                        "missing or unknown auth code",
                        Some(("invalid_grant", "authorization code is invalid or expired")),
                    ),
                });
            (r, None)
        };
        match grant_result {
            Ok(g) => json(200, &token_body(&g, presented)),
            Err(r) => r,
        }
    }

    fn authenticate(&self, ctx: &Ctx, req: &SimRequest) -> Result<Caller, Resp> {
        let Some(token) = req.bearer() else {
            return Err(hs_error(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            ));
        };
        if ctx.config.private_app_tokens.iter().any(|t| t == token)
            && !ctx.faults.rejects_credentials()
        {
            return Ok(Caller {
                private_app: true,
                scopes: Vec::new(),
                token: token.to_owned(),
            });
        }
        match ctx.tokens.check_access(token) {
            AccessCheck::Valid(info) => Ok(Caller { private_app: false, scopes: info.scopes, token: token.to_owned() }),
            AccessCheck::Expired => Err(hs_error(
                401,
                "INVALID_AUTHENTICATION",
                "The OAuth token used to make this call expired.",
            )),
            AccessCheck::Invalid => Err(hs_error(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            )),
        }
    }

    /// Takes quota and returns the rate headers to add, or the 429.
    fn rate_limit(&self, ctx: &Ctx, caller: &Caller) -> Result<Vec<(&'static str, String)>, Resp> {
        let mut headers = Vec::new();
        if caller.private_app {
            let d = ctx.daily.peek();
            if d.remaining() == 0 {
                return Err(rate_429(
                    &mut headers,
                    ctx,
                    "DAILY",
                    "You have reached your daily limit.",
                ));
            }
        }
        let burst = ctx.quota.take(1);
        let q = match burst {
            Ok(q) => q,
            Err(_) => {
                return Err(rate_429(
                    &mut headers,
                    ctx,
                    "TEN_SECONDLY_ROLLING",
                    "You have reached your ten_secondly_rolling limit.",
                ));
            }
        };
        headers.push((
            "x-hubspot-ratelimit-interval-milliseconds",
            q.window.as_millis().to_string(),
        ));
        headers.push(("x-hubspot-ratelimit-max", q.limit.to_string()));
        headers.push(("x-hubspot-ratelimit-remaining", q.remaining().to_string()));
        if caller.private_app {
            let d = ctx.daily.take(1).unwrap_or_else(|d| d);
            headers.push(("x-hubspot-ratelimit-daily", d.limit.to_string()));
            headers.push((
                "x-hubspot-ratelimit-daily-remaining",
                d.remaining().to_string(),
            ));
        }
        Ok(headers)
    }

    fn search_allowed(&self, token: &str) -> bool {
        let mut w = self.search_window.lock();
        let e = w.entry(token.to_owned()).or_insert((Instant::now(), 0));
        if e.0.elapsed().as_millis() >= 1000 {
            *e = (Instant::now(), 0);
        }
        e.1 += 1;
        e.1 <= SEARCH_PER_SECOND
    }

    fn api(&self, ctx: &Ctx, req: &SimRequest, caller: &Caller) -> Resp {
        let segs: Vec<&str> = req.path.trim_matches('/').split('/').collect();
        let method = &req.method;
        match segs.as_slice() {
            ["crm", "v3", "objects", ty, rest @ ..] => {
                let Some(ty) = HsType::parse(ty) else {
                    return hs_error(
                        400,
                        "VALIDATION_ERROR",
                        &format!("Unable to infer object type from: {ty}"),
                    );
                };
                if !caller.private_app && !ty.allowed(&caller.scopes) {
                    return missing_scopes(ty.read_scope());
                }
                match (method.as_str(), rest) {
                    ("GET", []) => self.store.list(req, ty),
                    ("GET", [id]) => self.store.get_one(req, ty, id),
                    ("POST", ["search"]) => {
                        if !self.search_allowed(&caller.token) {
                            return json(
                                429,
                                &json!({"status": "error", "message": "You have reached your secondly limit.", "errorType": "RATE_LIMIT", "correlationId": correlation_id(), "policyName": "SECONDLY", "groupName": "crm-search"}),
                            );
                        }
                        self.store.search(req, ty)
                    }
                    ("POST", ["batch", "read"]) => self.store.batch_read(req, ty),
                    _ => hs_error(405, "VALIDATION_ERROR", "Method not allowed"),
                }
            }
            ["oauth", "v1", "access-tokens", token] => match ctx.tokens.check_access(token) {
                AccessCheck::Valid(info) => json(
                    200,
                    &json!({
                        "token": token, "user": info.user, "hub_id": 12345678, "scopes": info.scopes,
                        "token_type": "access", "app_id": 1000001, "hub_domain": "gatehouse-sim.hubspot.com",
                        "user_id": 42, "client_id": info.client_id,
                        "expires_in": ctx.tokens.expires_in(token).map(|d| d.as_secs()).unwrap_or(0),
                    }),
                ),
                _ => hs_error(404, "OBJECT_NOT_FOUND", "access token not found"),
            },
            _ => hs_error(404, "OBJECT_NOT_FOUND", "resource not found"),
        }
    }
}

fn rate_429(
    headers: &mut Vec<(&'static str, String)>,
    ctx: &Ctx,
    policy: &str,
    message: &str,
) -> Resp {
    let q = ctx.quota.peek();
    headers.push((
        "x-hubspot-ratelimit-interval-milliseconds",
        q.window.as_millis().to_string(),
    ));
    headers.push(("x-hubspot-ratelimit-max", q.limit.to_string()));
    headers.push(("x-hubspot-ratelimit-remaining", "0".to_owned()));
    let mut r = json(
        429,
        &json!({"status": "error", "message": message, "errorType": "RATE_LIMIT", "correlationId": correlation_id(), "policyName": policy, "groupName": "publicapi"}),
    );
    for (k, v) in headers.iter() {
        set_header(&mut r, k, v);
    }
    r
}

fn missing_scopes(scope: &str) -> Resp {
    json(
        403,
        &json!({
            "status": "error",
            "message": "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
            "correlationId": correlation_id(),
            "errors": [{"message": "One or more of the following scopes are required.", "context": {"requiredGranularScopes": [scope]}}],
            "links": {"scopes": "https://developers.hubspot.com/scopes"},
            "category": "MISSING_SCOPES",
        }),
    )
}

fn token_body(g: &Grant, presented: Option<String>) -> Value {
    // Without rotation HubSpot answers with the same refresh token.
    let refresh = g.refresh_token.clone().or(presented);
    json!({
        "token_type": "bearer",
        "refresh_token": refresh,
        "access_token": g.access_token,
        "expires_in": g.expires_in.as_secs(),
        "scopes": g.scopes,
    })
}

impl ProviderSim for HubSpot {
    fn handle(&self, ctx: &Ctx, req: &SimRequest) -> Resp {
        let path = req.path.as_str();
        if TOKEN_PATHS.contains(&path) {
            return self.token(ctx, req);
        }
        if path == AUTHORIZE_PATH {
            return match authorize(ctx, req) {
                Ok(r) => r,
                Err(AuthorizeError::UnknownClient) => {
                    hs_error(400, "VALIDATION_ERROR", "missing or unknown client id")
                }
                Err(AuthorizeError::BadRedirect) => {
                    hs_error(400, "VALIDATION_ERROR", "redirect_uri does not match")
                }
            };
        }
        if let Some(token) = path.strip_prefix("/oauth/v1/refresh-tokens/") {
            return match req.method.as_str() {
                "DELETE" => {
                    if ctx.tokens.revoke_refresh(token) {
                        crate::http::empty(204)
                    } else {
                        json(
                            404,
                            &json!({"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token", "correlationId": correlation_id()}),
                        )
                    }
                }
                _ => {
                    if ctx.tokens.refresh_token_is_live(token) {
                        json(
                            200,
                            &json!({"token": token, "hub_id": 12345678, "token_type": "refresh", "app_id": 1000001}),
                        )
                    } else {
                        json(
                            404,
                            &json!({"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token", "correlationId": correlation_id()}),
                        )
                    }
                }
            };
        }
        let caller = match self.authenticate(ctx, req) {
            Ok(c) => c,
            Err(r) => return r,
        };
        let headers = match self.rate_limit(ctx, &caller) {
            Ok(h) => h,
            Err(r) => return r,
        };
        let mut resp = self.api(ctx, req, &caller);
        for (k, v) in headers {
            set_header(&mut resp, k, v);
        }
        resp
    }

    fn is_token_endpoint(&self, path: &str) -> bool {
        TOKEN_PATHS.contains(&path) || path == AUTHORIZE_PATH
    }

    fn server_error(&self, status: u16) -> Resp {
        let msg = if status == 503 {
            "Service Unavailable"
        } else {
            "internal error"
        };
        hs_error(status, "INTERNAL_ERROR", msg)
    }

    fn token_path(&self) -> &'static str {
        TOKEN_PATHS[0]
    }

    fn authorize_path(&self) -> &'static str {
        AUTHORIZE_PATH
    }
}
