//! Greenhouse Harvest. v1: Basic auth (`key:`), `page`/`per_page` (≤ 500) with an RFC 5988
//! `Link` header (next/prev/last; `skip_count=true` drops last), `X-RateLimit-Limit` /
//! `X-RateLimit-Remaining` (absent on the 429). v3: OAuth (`POST /token` with client
//! credentials + `sub`, authorization code, refresh token), Bearer tokens, cursor paging where
//! `cursor` must be the only query parameter and only `rel="next"` is given.

use base64::Engine;
use serde_json::{json, Value};

use crate::authorize::{authorize, AuthorizeError};
use crate::config::{Resolved, SimConfig};
use crate::greenhouse_data::{filtered, GhKind, GhStore};
use crate::http::{client_credentials, field, json, set_header, Resp, SimRequest};
use crate::oauth::{AccessCheck, Grant};
use crate::server::{Ctx, ProviderSim};

const TOKEN_PATH: &str = "/token";
const AUTHORIZE_PATH: &str = "/authorize";
const MAX_PER_PAGE: usize = 500;

pub(crate) struct Greenhouse {
    v3: bool,
    store: GhStore,
}

fn message(status: u16, msg: &str) -> Resp {
    json(status, &json!({"message": msg}))
}

fn validation(field_name: &str, msg: &str) -> Resp {
    json(
        422,
        &json!({"message": "Validation error", "errors": [{"message": msg, "field": field_name}]}),
    )
}

fn oauth_error(status: u16, error: &str, description: &str) -> Resp {
    json(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

impl Greenhouse {
    pub(crate) fn new(v3: bool, config: &SimConfig, resolved: &Resolved) -> Self {
        Self {
            v3,
            store: GhStore::generate(config.seed, resolved.record_count),
        }
    }

    fn token(&self, ctx: &Ctx, req: &SimRequest) -> Resp {
        if req.method != http::Method::POST {
            return oauth_error(405, "invalid_request", "method not allowed");
        }
        let form = req.form();
        let (client_id, secret) = client_credentials(req, &form);
        let Some(client) = client_id
            .as_deref()
            .and_then(|id| ctx.config.clients.iter().find(|c| c.client_id == id))
        else {
            return oauth_error(401, "invalid_client", "client authentication failed");
        };
        if secret.as_deref() != Some(client.client_secret.as_str()) {
            return oauth_error(401, "invalid_client", "client authentication failed");
        }
        let grant = field(&form, "grant_type").unwrap_or_default();
        let scopes = crate::default_scopes(ctx.provider, &ctx.config, &client.client_id);
        let result: Result<Grant, Resp> = match grant.as_str() {
            "client_credentials" => match field(&form, "sub") {
                Some(sub) => Ok(ctx.tokens.issue(&client.client_id, &sub, &scopes, false)),
                None => Err(oauth_error(
                    400,
                    "invalid_request",
                    "sub (Greenhouse user id) is required",
                )),
            },
            "refresh_token" => ctx
                .tokens
                .refresh(
                    &client.client_id,
                    &field(&form, "refresh_token").unwrap_or_default(),
                )
                .map_err(|_| {
                    oauth_error(
                        400,
                        "invalid_grant",
                        "refresh token is invalid, expired or revoked",
                    )
                }),
            "authorization_code" => ctx
                .tokens
                .redeem_code(
                    &field(&form, "code").unwrap_or_default(),
                    &client.client_id,
                    field(&form, "redirect_uri").as_deref(),
                    field(&form, "code_verifier").as_deref(),
                )
                .map_err(|_| {
                    oauth_error(
                        400,
                        "invalid_grant",
                        "authorization code is invalid or expired",
                    )
                }),
            _ => Err(oauth_error(
                400,
                "unsupported_grant_type",
                "grant type not supported",
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

    fn authenticate(&self, ctx: &Ctx, req: &SimRequest) -> Result<(), Resp> {
        if self.v3 {
            return match req.bearer().map(|t| ctx.tokens.check_access(t)) {
                Some(AccessCheck::Valid(_)) => Ok(()),
                Some(AccessCheck::Expired) => Err(message(401, "Access token expired")),
                _ => Err(message(401, "Invalid or missing access token")),
            };
        }
        if ctx.config.reject_plain_http && !req.tls {
            return Err(message(403, "HTTPS is required"));
        }
        match req.basic() {
            Some((key, _))
                if ctx.config.api_keys.contains(&key) && !ctx.faults.rejects_credentials() =>
            {
                Ok(())
            }
            _ => Err(message(401, "Invalid Basic Auth credentials")),
        }
    }

    fn api(&self, req: &SimRequest) -> Resp {
        let prefix = if self.v3 { "/v3/" } else { "/v1/" };
        let Some(rest) = req.path.strip_prefix(prefix) else {
            return message(404, "Resource not found");
        };
        let segs: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        if req.method != http::Method::GET {
            return message(405, "Method not allowed");
        }
        match segs.as_slice() {
            [kind] => match GhKind::parse(kind) {
                Some(k) if self.v3 => self.list_v3(req, k),
                Some(k) => self.list_v1(req, k),
                None => message(404, "Resource not found"),
            },
            [kind, id] => {
                let rec = GhKind::parse(kind)
                    .zip(id.parse::<u64>().ok())
                    .and_then(|(k, id)| self.store.records(k).iter().find(|r| r.id == id));
                match rec {
                    Some(r) => json(200, &r.body),
                    None => message(404, "Resource not found"),
                }
            }
            _ => message(404, "Resource not found"),
        }
    }

    fn per_page(params: &[(String, String)]) -> Result<usize, Resp> {
        match params.iter().find(|(k, _)| k == "per_page") {
            None => Ok(100),
            Some((_, v)) => match v.parse::<usize>() {
                Ok(n) if (1..=MAX_PER_PAGE).contains(&n) => Ok(n),
                _ => Err(validation(
                    "per_page",
                    "must be an integer between 1 and 500",
                )),
            },
        }
    }

    fn list_v1(&self, req: &SimRequest, kind: GhKind) -> Resp {
        let params = req.query_pairs();
        let per_page = match Self::per_page(&params) {
            Ok(n) => n,
            Err(r) => return r,
        };
        let page = match params.iter().find(|(k, _)| k == "page") {
            None => 1,
            Some((_, v)) => match v.parse::<usize>() {
                Ok(n) if n >= 1 => n,
                _ => return validation("page", "must be a positive integer"),
            },
        };
        let skip_count = params.iter().any(|(k, v)| k == "skip_count" && v == "true");
        let rows = match filtered(&self.store, kind, &params) {
            Ok(r) => r,
            Err(f) => return validation(&f, "is not a valid value"),
        };
        let last = rows.len().div_ceil(per_page).max(1);
        let body: Vec<&Value> = rows
            .iter()
            .skip((page - 1).saturating_mul(per_page))
            .take(per_page)
            .map(|r| &r.body)
            .collect();
        let mut resp = json(200, &json!(body));
        // Keep the caller's filters in the links; only page/per_page change.
        let others: Vec<(String, String)> = params
            .into_iter()
            .filter(|(k, _)| k != "page" && k != "per_page")
            .collect();
        let link_for = |p: usize| {
            let mut s = form_urlencoded::Serializer::new(String::new());
            s.append_pair("page", &p.to_string());
            s.append_pair("per_page", &per_page.to_string());
            for (k, v) in &others {
                s.append_pair(k, v);
            }
            format!("{}/v1/{}?{}", req.base_url, kind.name(), s.finish())
        };
        let mut links = Vec::new();
        if page < last {
            links.push(format!("<{}>; rel=\"next\"", link_for(page + 1)));
        }
        if page > 1 {
            links.push(format!("<{}>; rel=\"prev\"", link_for(page - 1)));
        }
        if !skip_count && last > 1 {
            links.push(format!("<{}>; rel=\"last\"", link_for(last)));
        }
        if !links.is_empty() {
            set_header(&mut resp, "link", links.join(", "));
        }
        resp
    }

    fn list_v3(&self, req: &SimRequest, kind: GhKind) -> Resp {
        let params = req.query_pairs();
        let (params, position, per_page) = if let Some((_, cursor)) =
            params.iter().find(|(k, _)| k == "cursor")
        {
            if params.len() > 1 {
                return message(400, "A cursor must be the only query parameter; send filters and per_page on the first request only");
            }
            match decode_cursor(cursor, kind) {
                Some(c) => c,
                None => return message(400, "Invalid cursor"),
            }
        } else {
            let per_page = match Self::per_page(&params) {
                Ok(n) => n,
                Err(r) => return r,
            };
            let filters: Vec<(String, String)> = params
                .into_iter()
                .filter(|(k, _)| k != "per_page")
                .collect();
            (filters, 0, per_page)
        };
        let rows = match filtered(&self.store, kind, &params) {
            Ok(r) => r,
            Err(f) => return validation(&f, "is not a valid value"),
        };
        let body: Vec<&Value> = rows
            .iter()
            .skip(position)
            .take(per_page)
            .map(|r| &r.body)
            .collect();
        let mut resp = json(200, &json!(body));
        if position.saturating_add(per_page) < rows.len() {
            let cursor = encode_cursor(kind, &params, position + per_page, per_page);
            set_header(
                &mut resp,
                "link",
                format!(
                    "<{}/v3/{}?cursor={}>; rel=\"next\"",
                    req.base_url,
                    kind.name(),
                    cursor
                ),
            );
        }
        resp
    }
}

fn encode_cursor(
    kind: GhKind,
    filters: &[(String, String)],
    position: usize,
    per_page: usize,
) -> String {
    let v = json!({"k": kind.name(), "f": filters, "p": position, "n": per_page});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// (filters, position, per_page) carried by a v3 cursor.
type CursorState = (Vec<(String, String)>, usize, usize);

fn decode_cursor(c: &str, kind: GhKind) -> Option<CursorState> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    if v["k"].as_str()? != kind.name() {
        return None;
    }
    let filters = serde_json::from_value(v["f"].clone()).ok()?;
    let per_page = v["n"]
        .as_u64()
        .filter(|n| (1..=MAX_PER_PAGE as u64).contains(n))?;
    Some((
        filters,
        usize::try_from(v["p"].as_u64()?).ok()?,
        per_page as usize,
    ))
}

impl ProviderSim for Greenhouse {
    fn handle(&self, ctx: &Ctx, req: &SimRequest) -> Resp {
        if self.v3 && req.path == TOKEN_PATH {
            return self.token(ctx, req);
        }
        if self.v3 && req.path == AUTHORIZE_PATH {
            return match authorize(ctx, req) {
                Ok(r) => r,
                Err(AuthorizeError::UnknownClient) => {
                    oauth_error(400, "invalid_client", "unknown client")
                }
                Err(AuthorizeError::BadRedirect) => {
                    oauth_error(400, "invalid_request", "redirect_uri mismatch")
                }
            };
        }
        if let Err(r) = self.authenticate(ctx, req) {
            return r;
        }
        let q = match ctx.quota.take(1) {
            Ok(q) => q,
            // The 429 carries no X-RateLimit-* headers.
            Err(_) => return message(429, "Rate limit exceeded"),
        };
        let mut resp = self.api(req);
        set_header(&mut resp, "x-ratelimit-limit", q.limit.to_string());
        set_header(
            &mut resp,
            "x-ratelimit-remaining",
            q.remaining().to_string(),
        );
        resp
    }

    fn is_token_endpoint(&self, path: &str) -> bool {
        self.v3 && (path == TOKEN_PATH || path == AUTHORIZE_PATH)
    }

    fn server_error(&self, status: u16) -> Resp {
        message(
            status,
            if status == 503 {
                "Service Unavailable"
            } else {
                "Internal Server Error"
            },
        )
    }

    fn token_path(&self) -> &'static str {
        TOKEN_PATH
    }

    fn authorize_path(&self) -> &'static str {
        AUTHORIZE_PATH
    }
}
