//! Ashby RPC API: `POST /<category>.<method>` with Basic auth (401 missing key, 403 wrong key),
//! `candidate.list` / `application.list` / `job.list` with `{limit, cursor, syncToken}` →
//! `{success, results, moreDataAvailable, nextCursor}` and `syncToken` on the last page;
//! would-be 4xx errors as HTTP 200 `{success:false, errorInfo:{code,message,requestId}}`;
//! 429 per key (with `X-RateLimit-Scope: integration-partner` in partner-throttle mode).

use base64::Engine;
use serde_json::{json, Value};

use crate::config::{Resolved, SimConfig};
use crate::data::{iso_millis, slug, Gen, DEPARTMENTS, JOB_TITLES};
use crate::http::{json, now_ms, set_header, Resp, SimRequest};
use crate::server::{Ctx, ProviderSim};

const MAX_LIMIT: u64 = 100;
/// Sync tokens older than this are `sync_token_expired` (full resync needed).
const SYNC_TOKEN_TTL_MS: u64 = 7 * 86_400 * 1000;

struct Row {
    updated_ms: i64,
    body: Value,
}

pub(crate) struct Ashby {
    candidates: Vec<Row>,
    applications: Vec<Row>,
    jobs: Vec<Row>,
}

fn request_id() -> String {
    format!(
        "01J{}",
        uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .to_uppercase()
            .get(..23)
            .unwrap_or_default()
    )
}

/// Ashby's error envelope, served with HTTP 200.
fn fail(code: &str, message: &str) -> Resp {
    json(
        200,
        &json!({"success": false, "errorInfo": {"code": code, "message": message, "requestId": request_id()}}),
    )
}

fn http_fail(status: u16, code: &str, message: &str) -> Resp {
    json(
        status,
        &json!({"success": false, "errorInfo": {"code": code, "message": message, "requestId": request_id()}}),
    )
}

const APP_STATUS: &[&str] = &["Active", "Active", "Active", "Hired", "Archived", "Lead"];
const JOB_STATUS: &[&str] = &["Open", "Open", "Closed", "Draft", "Archived"];
const STAGES: &[&str] = &[
    "Application Review",
    "Recruiter Screen",
    "Technical Interview",
    "Onsite",
    "Offer",
];

impl Ashby {
    pub(crate) fn new(config: &SimConfig, resolved: &Resolved) -> Self {
        let mut g = Gen::new(config.seed, 5);
        let count = resolved.record_count;
        let dept_ids: Vec<String> = DEPARTMENTS.iter().map(|_| g.uuid()).collect();
        let loc_ids: Vec<String> = (0..4).map(|_| g.uuid()).collect();
        let jobs: Vec<Row> = (0..(count / 10).max(5))
            .map(|_| {
                let (c, u) = g.created_modified();
                let body = json!({
                    "id": g.uuid(), "title": g.pick(JOB_TITLES), "status": g.pick(JOB_STATUS),
                    "employmentType": "FullTime", "departmentId": dept_ids[g.range(0, dept_ids.len() as i64) as usize],
                    "locationIds": [loc_ids[g.range(0, 4) as usize]], "createdAt": iso_millis(c), "updatedAt": iso_millis(u),
                    "confidential": false,
                });
                Row { updated_ms: u * 1000, body }
            })
            .collect();
        let mut candidates = Vec::with_capacity(count);
        let mut applications = Vec::with_capacity(count);
        for i in 0..count {
            let (first, last) = g.person();
            let (c, u) = g.created_modified();
            let cid = g.uuid();
            let aid = g.uuid();
            let name = format!("{first} {last}");
            let email = format!("{}.{}{}@example.com", slug(&first), slug(&last), i);
            let job = &jobs[g.range(0, jobs.len() as i64) as usize].body;
            candidates.push(Row {
                updated_ms: u * 1000,
                body: json!({
                    "id": cid, "createdAt": iso_millis(c), "updatedAt": iso_millis(u), "name": name,
                    "primaryEmailAddress": {"value": email, "type": "Personal", "isPrimary": true},
                    "emailAddresses": [{"value": email, "type": "Personal", "isPrimary": true}],
                    "phoneNumbers": [{"value": g.phone(), "type": "Mobile", "isPrimary": true}],
                    "socialLinks": [], "tags": [], "position": g.pick(JOB_TITLES), "company": g.company(),
                    "school": null, "applicationIds": [aid], "resumeFileHandle": null, "fileHandles": [],
                    "customFields": [], "profileUrl": format!("https://app.ashbyhq.com/candidates/{cid}"),
                    "source": null, "creditedToUser": null,
                }),
            });
            applications.push(Row {
                updated_ms: u * 1000,
                body: json!({
                    "id": aid, "createdAt": iso_millis(c), "updatedAt": iso_millis(u),
                    "status": g.pick(APP_STATUS), "candidateId": cid, "jobId": job["id"],
                    "candidate": {"id": cid, "name": name, "primaryEmailAddress": {"value": email, "type": "Personal", "isPrimary": true}},
                    "job": {"id": job["id"], "title": job["title"]},
                    "currentInterviewStage": {"id": g.uuid(), "title": g.pick(STAGES), "type": "Active", "orderInInterviewPlan": g.range(0, 5)},
                    "source": {"id": g.uuid(), "title": g.pick(&["LinkedIn", "Referral", "Careers page"]), "isArchived": false},
                    "archiveReason": null, "customFields": [],
                }),
            });
        }
        Self {
            candidates,
            applications,
            jobs,
        }
    }

    fn rows(&self, category: &str) -> Option<&[Row]> {
        match category {
            "candidate" => Some(&self.candidates),
            "application" => Some(&self.applications),
            "job" => Some(&self.jobs),
            _ => None,
        }
    }

    fn list(&self, rows: &[Row], kind: &str, body: &Value) -> Resp {
        let limit = body["limit"]
            .as_u64()
            .unwrap_or(MAX_LIMIT)
            .clamp(1, MAX_LIMIT) as usize;
        // The window this sync covers: (since, until]; a cursor carries it between pages.
        let (since, until, start) = match body["cursor"].as_str() {
            Some(c) => match decode(c, "c") {
                Some(v) if v["k"] == kind => (
                    v["s"].as_i64().unwrap_or(i64::MIN),
                    v["u"].as_i64().unwrap_or(0),
                    v["p"].as_u64().unwrap_or(0) as usize,
                ),
                _ => return fail("invalid_next_cursor", "The cursor is invalid"),
            },
            None => {
                let since = match body["syncToken"].as_str() {
                    None => i64::MIN,
                    Some(t) => match decode(t, "s") {
                        Some(v) if v["k"] == kind => {
                            let issued = v["u"].as_i64().unwrap_or(0);
                            if now_ms().saturating_sub(issued as u64) > SYNC_TOKEN_TTL_MS {
                                return fail(
                                    "sync_token_expired",
                                    "The sync token has expired; run a full sync",
                                );
                            }
                            issued
                        }
                        _ => {
                            return fail(
                                "sync_token_invalid",
                                "The sync token is invalid; run a full sync",
                            )
                        }
                    },
                };
                (since, now_ms() as i64, 0)
            }
        };
        let matched: Vec<&Value> = rows
            .iter()
            .filter(|r| r.updated_ms > since && r.updated_ms <= until)
            .map(|r| &r.body)
            .collect();
        let page: Vec<&Value> = matched.iter().skip(start).take(limit).copied().collect();
        let more = start.saturating_add(limit) < matched.len();
        let mut out = json!({"success": true, "results": page, "moreDataAvailable": more});
        if let Some(o) = out.as_object_mut() {
            if more {
                o.insert(
                    "nextCursor".into(),
                    json!(encode(
                        "c",
                        &json!({"k": kind, "s": since, "u": until, "p": start.saturating_add(limit)})
                    )),
                );
            } else {
                o.insert(
                    "syncToken".into(),
                    json!(encode("s", &json!({"k": kind, "u": until}))),
                );
            }
        }
        json(200, &out)
    }
}

fn encode(tag: &str, v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{tag}:{v}"))
}

fn decode(t: &str, tag: &str) -> Option<Value> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let body = s.strip_prefix(tag)?.strip_prefix(':')?;
    serde_json::from_str(body).ok()
}

impl ProviderSim for Ashby {
    fn handle(&self, ctx: &Ctx, req: &SimRequest) -> Resp {
        match req.basic() {
            None => {
                return http_fail(
                    401,
                    "unauthenticated",
                    "Missing API key; send it as the Basic auth username",
                )
            }
            Some((key, _))
                if !ctx.config.api_keys.contains(&key) || ctx.faults.rejects_credentials() =>
            {
                return http_fail(
                    403,
                    "invalid_api_key",
                    "The API key is invalid or deactivated",
                )
            }
            Some(_) => {}
        }
        if ctx.quota.take(1).is_err() {
            let mut r = http_fail(429, "rate_limit_exceeded", "Too many requests");
            let q = ctx.quota.peek();
            set_header(&mut r, "retry-after", q.window.as_secs().max(1).to_string());
            if ctx.faults.partner_throttle() {
                set_header(&mut r, "x-ratelimit-scope", "integration-partner");
            }
            return r;
        }
        if req.method != http::Method::POST {
            return http_fail(405, "method_not_allowed", "Use POST");
        }
        let Some(body) = req.json() else {
            return fail("invalid_input", "Request body must be JSON");
        };
        let endpoint = req.path.trim_start_matches('/');
        let Some((category, method)) = endpoint.split_once('.') else {
            return fail("invalid_endpoint", "Unknown endpoint");
        };
        let Some(rows) = self.rows(category) else {
            return fail("invalid_endpoint", &format!("Unknown endpoint {endpoint}"));
        };
        match method {
            "list" => self.list(rows, category, &body),
            "info" => {
                let id = body["id"]
                    .as_str()
                    .or_else(|| body[format!("{category}Id")].as_str());
                match id.and_then(|id| rows.iter().find(|r| r.body["id"].as_str() == Some(id))) {
                    Some(r) => json(200, &json!({"success": true, "results": r.body})),
                    None => fail(
                        &format!("{category}_not_found"),
                        &format!("No {category} found with that id"),
                    ),
                }
            }
            _ => fail("invalid_endpoint", &format!("Unknown endpoint {endpoint}")),
        }
    }

    fn is_token_endpoint(&self, _path: &str) -> bool {
        false
    }

    fn server_error(&self, status: u16) -> Resp {
        http_fail(status, "internal_error", "An internal error occurred")
    }

    fn token_path(&self) -> &'static str {
        "/oauth/token"
    }

    fn authorize_path(&self) -> &'static str {
        "/oauth/authorize"
    }
}
