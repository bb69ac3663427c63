//! Lever v1 Data API: Basic auth (`key:`), `/v1/opportunities` and `/v1/postings` with
//! `limit` (1–100, default 100) and `offset=<next>` → `{data, hasNext, next}`, Unix-millisecond
//! timestamps, `updated_at_start`/`updated_at_end` filters, `{code, message}` errors, 429 past
//! the per-key budget (no rate headers).

use base64::Engine;
use serde_json::{json, Value};

use crate::config::{Resolved, SimConfig};
use crate::data::{slug, Gen, DEPARTMENTS, JOB_TITLES, OFFICES};
use crate::http::{json, Resp, SimRequest};
use crate::server::{Ctx, ProviderSim};

pub(crate) struct Lever {
    opportunities: Vec<(i64, Value)>,
    postings: Vec<(i64, Value)>,
}

fn error(status: u16, code: &str, msg: &str) -> Resp {
    json(status, &json!({"code": code, "message": msg}))
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

impl ProviderSim for Lever {
    fn handle(&self, ctx: &Ctx, req: &SimRequest) -> Resp {
        match req.basic() {
            Some((key, _)) if ctx.config.api_keys.contains(&key) => {}
            Some(_) => return error(401, "UnauthorizedError", "Invalid API key"),
            None => return error(401, "UnauthorizedError", "Missing API key"),
        }
        if ctx.quota.take(1).is_err() {
            return error(429, "TooManyRequestsError", "Too many requests; slow down");
        }
        if req.method != http::Method::GET {
            return error(405, "MethodNotAllowedError", "Method not allowed");
        }
        let segs: Vec<&str> = req.path.trim_matches('/').split('/').collect();
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

    fn is_token_endpoint(&self, _path: &str) -> bool {
        false
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
        "/oauth/token"
    }

    fn authorize_path(&self) -> &'static str {
        "/authorize"
    }
}
