//! Lever v1 Data API: Basic auth (`key:`) or an OAuth Bearer token (partner apps),
//! `/v1/opportunities` and `/v1/postings` with `limit` (1–100, default 100) and
//! `offset=<next>` → `{data, hasNext, next}`, Unix-millisecond timestamps,
//! `updated_at_start`/`updated_at_end` filters, `{code, message}` errors, 429 past the per-key
//! budget (no rate headers).
//!
//! OAuth (Auth0-hosted in reality: `auth.lever.co`): `GET /authorize` (shared authorize flow,
//! PKCE) and `POST /oauth/token` with `authorization_code` / `refresh_token`, client auth in the
//! form body, `audience=https://api.lever.co/v1/` required, access tokens 1 h, refresh tokens
//! only with `offline_access`, rotating on every use by default.

use base64::Engine;
use serde_json::{json, Value};

use crate::authorize::{authorize_with, AuthorizeError};
use crate::config::{Resolved, SimConfig, LEVER_AUDIENCE};
use crate::data::{slug, Gen, DEPARTMENTS, JOB_TITLES, OFFICES};
use crate::http::{field, json, Resp, SimRequest};
use crate::oauth::{AccessCheck, CodeError, Grant};
use crate::server::{Ctx, ProviderSim};

const TOKEN_PATH: &str = "/oauth/token";
const AUTHORIZE_PATH: &str = "/authorize";

pub(crate) struct Lever {
    opportunities: Vec<(i64, Value)>,
    postings: Vec<(i64, Value)>,
}

fn error(status: u16, code: &str, msg: &str) -> Resp {
    json(status, &json!({"code": code, "message": msg}))
}

/// Auth0's OAuth error body. Statuses follow what Auth0 is commonly seen to answer (403 for
/// `invalid_grant` / `access_denied`, 401 for bad client credentials) — an assumption: Lever
/// does not document its token endpoint's errors.
fn oauth_error(status: u16, error: &str, description: &str) -> Resp {
    json(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

/// Audiences accepted: Lever's production API identifier, and this simulator's own `/v1/`
/// (either port) so a client pointed at the simulator may send its base URL instead.
fn audience_ok(ctx: &Ctx, aud: &str) -> bool {
    aud == LEVER_AUDIENCE
        || aud == format!("{}/v1/", ctx.http_base)
        || aud == format!("{}/v1/", ctx.https_base)
}

/// The audience check shared by the authorize and token endpoints.
/// ASSUMPTION: Lever documents `audience` as required but not the error; this is the shape
/// Auth0 answers for an unknown API (`access_denied`, "Service not found: …"), used for a
/// missing audience too.
fn check_audience(ctx: &Ctx, aud: Option<&str>) -> Result<(), (&'static str, String)> {
    match aud {
        Some(a) if audience_ok(ctx, a) => Ok(()),
        Some(a) => Err(("access_denied", format!("Service not found: {a}"))),
        None => Err((
            "access_denied",
            format!("audience is required (use {LEVER_AUDIENCE})"),
        )),
    }
}

const STAGES: &[&str] = &[
    "lead-new",
    "lead-reached-out",
    "applicant-new",
    "phone-screen",
    "on-site",
    "offer",
];
const ORIGINS: &[&str] = &["applied", "sourced", "referred", "university", "agency"];
const STATES: &[&str] = &["published", "published", "internal", "closed", "draft"];

impl Lever {
    pub(crate) fn new(config: &SimConfig, resolved: &Resolved) -> Self {
        let mut g = Gen::new(config.seed, 4);
        let count = resolved.record_count;
        let owners: Vec<String> = (0..5).map(|_| g.uuid()).collect();
        let postings: Vec<(i64, Value)> = (0..(count / 10).max(5))
            .map(|_| {
                let (c, u) = g.created_modified();
                let (c, u) = (c * 1000, u * 1000);
                let v = json!({
                    "id": g.uuid(),
                    "text": g.pick(JOB_TITLES),
                    "state": g.pick(STATES),
                    "createdAt": c,
                    "updatedAt": u,
                    "owner": owners[g.range(0, 5) as usize],
                    "hiringManager": owners[g.range(0, 5) as usize],
                    "confidentiality": "non-confidential",
                    "categories": {
                        "team": g.pick(DEPARTMENTS), "department": g.pick(DEPARTMENTS),
                        "location": g.pick(OFFICES), "commitment": "Full-time", "level": null,
                    },
                    "tags": [],
                });
                (u, v)
            })
            .collect();
        let opportunities = (0..count)
            .map(|i| {
                let (first, last) = g.person();
                let (c, u) = g.created_modified();
                let (c, u) = (c * 1000, u * 1000);
                let archived = g.chance(0.2);
                let v = json!({
                    "id": g.uuid(),
                    "name": format!("{first} {last}"),
                    "headline": format!("{} at {}", g.pick(JOB_TITLES), g.company()),
                    "contact": g.uuid(),
                    "emails": [format!("{}.{}{}@example.com", slug(&first), slug(&last), i)],
                    "phones": [{"type": "mobile", "value": g.phone()}],
                    "location": g.pick(OFFICES),
                    "stage": g.pick(STAGES),
                    "origin": g.pick(ORIGINS),
                    "sources": [g.pick(&["LinkedIn", "Referral", "Job site"])],
                    "tags": [],
                    "owner": owners[g.range(0, 5) as usize],
                    "applications": [g.uuid()],
                    "archived": if archived { json!({"archivedAt": u, "reason": g.uuid()}) } else { Value::Null },
                    "createdAt": c,
                    "updatedAt": u,
                    "lastInteractionAt": u,
                });
                (u, v)
            })
            .collect();
        Self {
            opportunities,
            postings,
        }
    }

    fn list(&self, req: &SimRequest, rows: &[(i64, Value)], ms_filters: bool) -> Resp {
        let params = req.query_pairs();
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let limit = match get("limit").map(str::parse::<usize>) {
            None => 100,
            Some(Ok(n)) if (1..=100).contains(&n) => n,
            Some(_) => {
                return error(
                    400,
                    "BadRequestError",
                    "limit must be an integer between 1 and 100",
                )
            }
        };
        let start = match get("offset") {
            None => 0,
            Some(tok) => match decode_offset(tok) {
                Some(p) => p,
                None => return error(400, "BadRequestError", "Invalid offset token"),
            },
        };
        let mut from = i64::MIN;
        let mut to = i64::MAX;
        if ms_filters {
            for (k, bound) in [("updated_at_start", &mut from), ("updated_at_end", &mut to)] {
                if let Some(v) = get(k) {
                    match v.parse::<i64>() {
                        Ok(ms) => *bound = ms,
                        Err(_) => {
                            return error(
                                400,
                                "BadRequestError",
                                &format!("{k} must be a timestamp in milliseconds"),
                            )
                        }
                    }
                }
            }
        }
        let matched: Vec<&Value> = rows
            .iter()
            .filter(|(u, _)| *u >= from && *u <= to)
            .map(|(_, v)| v)
            .collect();
        let data: Vec<&Value> = matched.iter().skip(start).take(limit).copied().collect();
        let has_next = start.saturating_add(limit) < matched.len();
        let mut body = json!({"data": data, "hasNext": has_next});
        if let (true, Some(o)) = (has_next, body.as_object_mut()) {
            o.insert("next".into(), json!(encode_offset(start + limit)));
        }
        json(200, &body)
    }
}

fn encode_offset(p: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("[{p},\"sim\"]"))
}

fn decode_offset(t: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    v.get(0)?.as_u64().map(|n| n as usize)
}

impl Lever {
    fn token(&self, ctx: &Ctx, req: &SimRequest) -> Resp {
        if req.method != http::Method::POST {
            return oauth_error(405, "invalid_request", "method not allowed");
        }
        let form = req.form();
        // Client authentication in the body (client_secret_post), as Lever's docs show it.
        let client = field(&form, "client_id").and_then(|id| {
            ctx.config
                .clients
                .iter()
                .find(|c| c.client_id == id)
                .filter(|c| field(&form, "client_secret").as_deref() == Some(&c.client_secret))
        });
        let Some(client) = client else {
            // ASSUMPTION: Auth0's answer to unknown/wrong client credentials.
            return oauth_error(401, "access_denied", "Unauthorized");
        };
        if let Err((e, d)) = check_audience(ctx, field(&form, "audience").as_deref()) {
            return oauth_error(403, e, &d);
        }
        let grant = field(&form, "grant_type").unwrap_or_default();
        let result: Result<Grant, Resp> = match grant.as_str() {
            "authorization_code" => ctx
                .tokens
                .redeem_code(
                    &field(&form, "code").unwrap_or_default(),
                    &client.client_id,
                    field(&form, "redirect_uri").as_deref(),
                    field(&form, "code_verifier").as_deref(),
                )
                .map_err(|e| {
                    let d = match e {
                        CodeError::PkceFailed => "Failed to verify code verifier",
                        CodeError::RedirectMismatch => "Callback URL mismatch",
                        _ => "Invalid authorization code",
                    };
                    oauth_error(403, "invalid_grant", d)
                }),
            "refresh_token" => ctx
                .tokens
                .refresh(
                    &client.client_id,
                    &field(&form, "refresh_token").unwrap_or_default(),
                )
                .map_err(|_| {
                    oauth_error(403, "invalid_grant", "Unknown or invalid refresh token.")
                }),
            "" => Err(oauth_error(
                400,
                "invalid_request",
                "Missing required parameter: grant_type",
            )),
            other => Err(oauth_error(
                400,
                "unsupported_grant_type",
                &format!("Unsupported grant type: {other}"),
            )),
        };
        match result {
            Ok(g) => {
                let mut v = json!({
                    "access_token": g.access_token,
                    "token_type": "Bearer",
                    "expires_in": g.expires_in.as_secs(),
                    "scope": g.scopes.join(" "),
                });
                if let (Some(rt), Some(o)) = (&g.refresh_token, v.as_object_mut()) {
                    o.insert("refresh_token".into(), json!(rt));
                }
                json(200, &v)
            }
            Err(r) => r,
        }
    }

    /// Basic API key, or a Bearer access token carrying `<resource>:read:admin` for the
    /// resource asked for.
    fn authenticate(
        &self,
        ctx: &Ctx,
        req: &SimRequest,
        resource: Option<&str>,
    ) -> Result<(), Resp> {
        if let Some(token) = req.bearer() {
            return match ctx.tokens.check_access(token) {
                AccessCheck::Valid(info) => match resource {
                    Some(r)
                        if !info.scopes.iter().any(|s| {
                            s == &format!("{r}:read:admin") || s == &format!("{r}:write:admin")
                        }) =>
                    {
                        Err(error(
                            403,
                            "ForbiddenError",
                            &format!("Access token is missing the {r}:read:admin scope"),
                        ))
                    }
                    _ => Ok(()),
                },
                AccessCheck::Expired => {
                    Err(error(401, "UnauthorizedError", "Access token expired"))
                }
                AccessCheck::Invalid => {
                    Err(error(401, "UnauthorizedError", "Invalid access token"))
                }
            };
        }
        match req.basic() {
            Some((key, _))
                if ctx.config.api_keys.contains(&key) && !ctx.faults.rejects_credentials() =>
            {
                Ok(())
            }
            Some(_) => Err(error(401, "UnauthorizedError", "Invalid API key")),
            None => Err(error(401, "UnauthorizedError", "Missing API key")),
        }
    }
}

impl ProviderSim for Lever {
    fn handle(&self, ctx: &Ctx, req: &SimRequest) -> Resp {
        if req.path == TOKEN_PATH {
            return self.token(ctx, req);
        }
        if req.path == AUTHORIZE_PATH {
            let check = |q: &[(String, String)]| {
                let aud = q
                    .iter()
                    .find(|(k, v)| k == "audience" && !v.is_empty())
                    .map(|(_, v)| v.as_str());
                check_audience(ctx, aud)
            };
            return match authorize_with(ctx, req, &check) {
                Ok(r) => r,
                Err(AuthorizeError::UnknownClient) => {
                    oauth_error(400, "invalid_request", "Unknown client")
                }
                Err(AuthorizeError::BadRedirect) => {
                    oauth_error(400, "invalid_request", "Callback URL mismatch")
                }
            };
        }
        let segs: Vec<&str> = req.path.trim_matches('/').split('/').collect();
        let resource = match segs.as_slice() {
            ["v1", r @ ("opportunities" | "postings"), ..] => Some(*r),
            _ => None,
        };
        if let Err(r) = self.authenticate(ctx, req, resource) {
            return r;
        }
        if ctx.quota.take(1).is_err() {
            return error(429, "TooManyRequestsError", "Too many requests; slow down");
        }
        if req.method != http::Method::GET {
            return error(405, "MethodNotAllowedError", "Method not allowed");
        }
        match segs.as_slice() {
            ["v1", "opportunities"] => self.list(req, &self.opportunities, true),
            ["v1", "postings"] => self.list(req, &self.postings, true),
            ["v1", kind @ ("opportunities" | "postings"), id] => {
                let rows = if *kind == "opportunities" {
                    &self.opportunities
                } else {
                    &self.postings
                };
                match rows.iter().find(|(_, v)| v["id"].as_str() == Some(id)) {
                    Some((_, v)) => json(200, &json!({"data": v})),
                    None => error(
                        404,
                        "ResourceNotFoundError",
                        &format!("Could not find {kind} {id}"),
                    ),
                }
            }
            _ => error(404, "ResourceNotFoundError", "Not found"),
        }
    }

    fn is_token_endpoint(&self, path: &str) -> bool {
        path == TOKEN_PATH || path == AUTHORIZE_PATH
    }

    fn server_error(&self, status: u16) -> Resp {
        error(
            status,
            if status == 503 {
                "ServiceUnavailableError"
            } else {
                "InternalServerError"
            },
            "Something went wrong",
        )
    }

    fn token_path(&self) -> &'static str {
        TOKEN_PATH
    }

    fn authorize_path(&self) -> &'static str {
        AUTHORIZE_PATH
    }
}
