//! Greenhouse Harvest records (candidates, applications, jobs) and their list filters.

use serde_json::{json, Value};

use crate::data::{iso, parse_datetime, slug, Gen, DEPARTMENTS, JOB_TITLES, OFFICES};

/// A record plus the values list filters look at.
pub(crate) struct GhRecord {
    pub id: u64,
    pub body: Value,
    pub created: i64,
    pub updated: i64,
    pub last_activity: i64,
    pub job_ids: Vec<u64>,
    pub status: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GhKind {
    Candidates,
    Applications,
    Jobs,
}

impl GhKind {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "candidates" => Some(GhKind::Candidates),
            "applications" => Some(GhKind::Applications),
            "jobs" => Some(GhKind::Jobs),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            GhKind::Candidates => "candidates",
            GhKind::Applications => "applications",
            GhKind::Jobs => "jobs",
        }
    }

    /// Filters each list endpoint documents (applications have no `updated_*`).
    pub(crate) fn filters(self) -> &'static [&'static str] {
        match self {
            GhKind::Candidates => &[
                "created_before",
                "created_after",
                "updated_before",
                "updated_after",
                "job_id",
            ],
            GhKind::Applications => &[
                "created_before",
                "created_after",
                "last_activity_after",
                "job_id",
                "status",
            ],
            GhKind::Jobs => &[
                "created_before",
                "created_after",
                "updated_before",
                "updated_after",
                "status",
            ],
        }
    }
}

pub(crate) struct GhStore {
    pub candidates: Vec<GhRecord>,
    pub applications: Vec<GhRecord>,
    pub jobs: Vec<GhRecord>,
}

const APP_STATUS: &[&str] = &[
    "active",
    "active",
    "active",
    "rejected",
    "hired",
    "converted",
];
const JOB_STATUS: &[&str] = &["open", "open", "closed", "draft"];
const STAGES: &[&str] = &[
    "Application Review",
    "Phone Screen",
    "Technical Interview",
    "Onsite",
    "Offer",
];
const SOURCES: &[&str] = &[
    "LinkedIn",
    "Referral",
    "Company Website",
    "Indeed",
    "Agency",
];

impl GhStore {
    pub(crate) fn generate(seed: u64, count: usize) -> Self {
        let mut g = Gen::new(seed, 3);
        let n_jobs = (count / 10).max(5);
        let jobs: Vec<GhRecord> = (0..n_jobs as u64)
            .map(|i| {
                let id = 4_000_000 + i;
                let (created, updated) = g.created_modified();
                let status = match g.pick(JOB_STATUS) {
                    "open" => "open",
                    "closed" => "closed",
                    _ => "draft",
                };
                let name = g.pick(JOB_TITLES).to_owned();
                let body = json!({
                    "id": id, "name": name, "requisition_id": format!("REQ-{:04}", i + 1),
                    "notes": null, "confidential": g.chance(0.1), "status": status,
                    "created_at": iso(created), "opened_at": iso(created),
                    "closed_at": if status == "closed" { json!(iso(updated)) } else { Value::Null },
                    "updated_at": iso(updated), "is_template": false, "copied_from_id": null,
                    "departments": [{"id": 10 + g.range(0, 6), "name": g.pick(DEPARTMENTS), "parent_id": null, "external_id": null}],
                    "offices": [{"id": 20 + g.range(0, 6), "name": g.pick(OFFICES), "location": {"name": null}, "external_id": null}],
                    "openings": [{"id": id * 10, "opening_id": format!("{}-1", i + 1), "status": if status == "open" { "open" } else { "closed" }, "opened_at": iso(created), "closed_at": null}],
                    "custom_fields": {"employment_type": "Full-time"},
                });
                GhRecord { id, body, created, updated, last_activity: updated, job_ids: Vec::new(), status }
            })
            .collect();
        let mut candidates = Vec::with_capacity(count);
        let mut applications = Vec::with_capacity(count);
        for i in 0..count as u64 {
            let cid = 10_000_000 + i;
            let aid = 50_000_000 + i;
            let (first, last) = g.person();
            let (created, updated) = g.created_modified();
            let job = &jobs[g.range(0, jobs.len() as i64) as usize];
            let status = g.pick(APP_STATUS);
            let status: &'static str = match status {
                "rejected" => "rejected",
                "hired" => "hired",
                "converted" => "converted",
                _ => "active",
            };
            let company = g.company();
            let app = json!({
                "id": aid, "candidate_id": cid, "prospect": false,
                "applied_at": iso(created),
                "rejected_at": if status == "rejected" { json!(iso(updated)) } else { Value::Null },
                "last_activity_at": iso(updated),
                "location": null,
                "source": {"id": 300 + g.range(0, 5), "public_name": g.pick(SOURCES)},
                "credited_to": {"id": 700, "first_name": "Rita", "last_name": "Recruiter", "name": "Rita Recruiter", "employee_id": null},
                "rejection_reason": if status == "rejected" { json!({"id": 1, "name": "Lacking skill(s)/qualification(s)", "type": {"id": 1, "name": "We rejected them"}}) } else { Value::Null },
                "jobs": [{"id": job.id, "name": job.body["name"]}],
                "job_post_id": job.id + 100,
                "status": status,
                "current_stage": if status == "active" { json!({"id": 900 + g.range(0, 5), "name": g.pick(STAGES)}) } else { Value::Null },
                "answers": [], "custom_fields": {},
            });
            let cand = json!({
                "id": cid, "first_name": first, "last_name": last, "company": company,
                "title": g.pick(JOB_TITLES), "created_at": iso(created), "updated_at": iso(updated),
                "last_activity": iso(updated), "is_private": false, "photo_url": null,
                "application_ids": [aid],
                "phone_numbers": [{"value": g.phone(), "type": "mobile"}],
                "addresses": [],
                "email_addresses": [{"value": format!("{}.{}{}@example.com", slug(&first), slug(&last), i), "type": "personal"}],
                "website_addresses": [], "social_media_addresses": [],
                "recruiter": null, "coordinator": null, "can_email": true,
                "tags": if g.chance(0.3) { json!(["Senior"]) } else { json!([]) },
                "applications": [app.clone()],
                "custom_fields": {},
            });
            candidates.push(GhRecord {
                id: cid,
                body: cand,
                created,
                updated,
                last_activity: updated,
                job_ids: vec![job.id],
                status: "active",
            });
            applications.push(GhRecord {
                id: aid,
                body: app,
                created,
                updated,
                last_activity: updated,
                job_ids: vec![job.id],
                status,
            });
        }
        Self {
            candidates,
            applications,
            jobs,
        }
    }

    pub(crate) fn records(&self, kind: GhKind) -> &[GhRecord] {
        match kind {
            GhKind::Candidates => &self.candidates,
            GhKind::Applications => &self.applications,
            GhKind::Jobs => &self.jobs,
        }
    }
}

/// Applies the documented list filters; `Err(field)` for an unparsable value.
pub(crate) fn filtered<'a>(
    store: &'a GhStore,
    kind: GhKind,
    params: &[(String, String)],
) -> Result<Vec<&'a GhRecord>, String> {
    let mut out: Vec<&GhRecord> = store.records(kind).iter().collect();
    for (k, v) in params {
        if !kind.filters().contains(&k.as_str()) {
            continue;
        }
        let time = || parse_datetime(v).ok_or_else(|| k.clone());
        match k.as_str() {
            "created_before" => {
                let t = time()?;
                out.retain(|r| r.created < t)
            }
            "created_after" => {
                let t = time()?;
                out.retain(|r| r.created >= t)
            }
            "updated_before" => {
                let t = time()?;
                out.retain(|r| r.updated < t)
            }
            "updated_after" => {
                let t = time()?;
                out.retain(|r| r.updated >= t)
            }
            "last_activity_after" => {
                let t = time()?;
                out.retain(|r| r.last_activity >= t)
            }
            "job_id" => {
                let id: u64 = v.parse().map_err(|_| k.clone())?;
                out.retain(|r| r.job_ids.contains(&id) || (kind == GhKind::Jobs && r.id == id));
            }
            "status" => out.retain(|r| r.status == v.as_str()),
            _ => {}
        }
    }
    Ok(out)
}
