//! Ashby's unified API: candidates, applications and jobs through `POST /candidate.list`,
//! `/application.list`, `/job.list` (JSON bodies `{limit, cursor, syncToken}`).
//!
//! - Pages follow `nextCursor` while `moreDataAvailable`; the last page's `syncToken` is
//!   handed back in [`Page::sync_token`] for the next incremental walk.
//! - Incremental sync: a first page sends `ListAsk::sync_token` when the proxy kept one, so
//!   Ashby returns only what changed; without one the walk is a full one. Either way, with
//!   `modified_since` the walk keeps only records whose `updatedAt` is at or after it.
//! - Ashby answers a dead sync token (or cursor) with HTTP 200 `success:false` and
//!   `sync_token_expired`, `sync_token_invalid`, `next_cursor_expired` or
//!   `invalid_next_cursor`: [`UnifiedError::ResyncNeeded`], walk again without a token.
//!
//! Ashby's cursor holds the window of the walk (what had changed when it began), so a record
//! that changes mid-walk is served once here and again by the next incremental walk.

use super::{Ashby, NAME};
use crate::unified::{
    array_of_names, boolean, id_at, json_body, parse_time, post_json, remote_id, resumed,
    since_millis, split_name, strings, take_array, text, time_at, unsupported, walk_state, Answer,
    ListAsk, Mapped, Page, ProviderCall, UnifiedApi, UnifiedError,
};
use gatehouse_models::record::{Application, Candidate, EmailAddress, Job, PhoneNumber};
use gatehouse_models::{Fields, Model};
use serde_json::{json, Value};

const MAX_PAGE: u32 = 100;

const MODELS: &[Model] = &[Model::Candidate, Model::Application, Model::Job];

/// The error codes after which only a walk from the start (without a sync token) can go on.
const RESYNC_CODES: &[&str] = &[
    "sync_token_expired",
    "sync_token_invalid",
    "next_cursor_expired",
    "invalid_next_cursor",
];

fn category(model: Model) -> Result<&'static str, UnifiedError> {
    match model {
        Model::Candidate => Ok("candidate"),
        Model::Application => Ok("application"),
        Model::Job => Ok("job"),
        _ => Err(unsupported(NAME, model)),
    }
}

/// The `results` of a successful answer; `success:false` is what its code says.
fn results(body: &Value) -> Result<&Value, UnifiedError> {
    match body.get("success").and_then(Value::as_bool) {
        Some(true) => body
            .get("results")
            .ok_or_else(|| UnifiedError::Malformed("the answer has no `results`".into())),
        Some(false) => {
            let code = body
                .pointer("/errorInfo/code")
                .or_else(|| body.pointer("/errors/0"))
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            if RESYNC_CODES.contains(&code) {
                Err(UnifiedError::ResyncNeeded)
            } else {
                Err(UnifiedError::Malformed(format!(
                    "Ashby reported `{}`",
                    code.chars().take(64).collect::<String>()
                )))
            }
        }
        None => Err(UnifiedError::Malformed("`success` is not a boolean".into())),
    }
}

impl UnifiedApi for Ashby {
    fn models(&self) -> &'static [Model] {
        MODELS
    }

    fn max_page_size(&self, _model: Model) -> u32 {
        MAX_PAGE
    }

    fn list_call(&self, model: Model, ask: &ListAsk<'_>) -> Result<ProviderCall, UnifiedError> {
        let category = category(model)?;
        let mut body = json!({ "limit": ask.page_size.clamp(1, MAX_PAGE) });
        let extra = match resumed(ask, NAME, model)? {
            Some(state) => {
                let cursor = state
                    .get("cursor")
                    .and_then(Value::as_str)
                    .ok_or(UnifiedError::BadWalkState)?;
                Some(("cursor", cursor))
            }
            None => ask.sync_token.map(|token| ("syncToken", token)),
        };
        if let (Some((key, value)), Some(fields)) = (extra, body.as_object_mut()) {
            fields.insert(key.into(), Value::from(value));
        }
        Ok(post_json(format!("/{category}.list"), &body))
    }

    fn read_page(
        &self,
        model: Model,
        ask: &ListAsk<'_>,
        answer: &Answer<'_>,
    ) -> Result<Page, UnifiedError> {
        category(model)?;
        let since = since_millis(ask, NAME, model)?;
        let mut body = json_body(answer)?;
        results(&body)?;
        let rows = take_array(&mut body, "results")?;
        let more = body
            .get("moreDataAvailable")
            .and_then(Value::as_bool)
            .ok_or_else(|| {
                UnifiedError::Malformed("`moreDataAvailable` is not a boolean".into())
            })?;
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            let updated = row
                .get("updatedAt")
                .and_then(Value::as_str)
                .and_then(parse_time)
                .map(|at| (at.unix_timestamp_nanos() / 1_000_000) as i64);
            let mapped = map(model, row)?;
            let wanted = match (since, updated) {
                (Some(since), Some(updated)) => updated >= since,
                _ => true,
            };
            if wanted {
                records.push(mapped);
            }
        }
        let (next, sync_token) = if more {
            let cursor = text(&body, "nextCursor").ok_or_else(|| {
                UnifiedError::Malformed("`moreDataAvailable` but no `nextCursor`".into())
            })?;
            let state = walk_state(NAME, model, json!({"cursor": cursor, "since": since}));
            (Some(state), None)
        } else {
            (None, text(&body, "syncToken"))
        };
        Ok(Page {
            records,
            next,
            sync_token,
        })
    }

    fn get_call(&self, model: Model, remote_id: &str) -> Result<ProviderCall, UnifiedError> {
        let category = category(model)?;
        let valid = !remote_id.is_empty()
            && remote_id.len() <= 64
            && remote_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            return Err(UnifiedError::BadRemoteId(format!(
                "`{remote_id}` is not an Ashby id (a UUID)"
            )));
        }
        // `application.info` names its id `applicationId`; the others take `id`.
        let key = match model {
            Model::Application => "applicationId",
            _ => "id",
        };
        Ok(post_json(
            format!("/{category}.info"),
            &json!({ key: remote_id }),
        ))
    }

    fn read_record(&self, model: Model, answer: &Answer<'_>) -> Result<Mapped, UnifiedError> {
        category(model)?;
        let mut body = json_body(answer)?;
        results(&body)?;
        let record = body.get_mut("results").map(Value::take).unwrap_or_default();
        map(model, record)
    }
}

/// One Ashby record as `model`.
fn map(model: Model, owned: Value) -> Result<Mapped, UnifiedError> {
    let row = &owned;
    if !row.is_object() {
        return Err(UnifiedError::Malformed("a record is not an object".into()));
    }
    let fields = match model {
        Model::Candidate => {
            let (first_name, last_name) = split_name(text(row, "name"));
            let mut email_addresses: Vec<EmailAddress> = typed(row, "emailAddresses")
                .map(|(email_address, email_address_type)| EmailAddress {
                    email_address,
                    email_address_type,
                })
                .collect();
            if email_addresses.is_empty() {
                if let Some(primary) = row.get("primaryEmailAddress") {
                    if let Some(email_address) = text(primary, "value") {
                        email_addresses.push(EmailAddress {
                            email_address,
                            email_address_type: text(primary, "type"),
                        });
                    }
                }
            }
            Fields::Candidate(Candidate {
                first_name,
                last_name,
                company: text(row, "company"),
                title: text(row, "position"),
                email_addresses,
                phone_numbers: typed(row, "phoneNumbers")
                    .map(|(phone_number, phone_number_type)| PhoneNumber {
                        phone_number,
                        phone_number_type,
                    })
                    .collect(),
                // Tags are `{id, title}` objects; plain strings are taken as they are.
                tags: match array_of_names(row, "tags", "title") {
                    titles if !titles.is_empty() => titles,
                    _ => strings(row, "tags"),
                },
                applications: strings(row, "applicationIds"),
                last_interaction_at: None,
            })
        }
        Model::Application => Fields::Application(Application {
            candidate: id_at(row, "candidateId")
                .or_else(|| row.get("candidate").and_then(|c| id_at(c, "id"))),
            job: id_at(row, "jobId").or_else(|| row.get("job").and_then(|j| id_at(j, "id"))),
            applied_at: time_at(row, "createdAt"),
            rejected_at: time_at(row, "archivedAt"),
            current_stage: row
                .get("currentInterviewStage")
                .and_then(|stage| text(stage, "title")),
            status: text(row, "status"),
            source: row.get("source").and_then(|source| text(source, "title")),
        }),
        Model::Job => Fields::Job(Job {
            name: text(row, "title"),
            description: None,
            code: text(row, "requisitionId"),
            status: text(row, "status").map(|s| s.to_uppercase()),
            confidential: boolean(row, "confidential"),
            departments: id_at(row, "departmentId").into_iter().collect(),
            offices: strings(row, "locationIds"),
            hiring_managers: strings(row, "hiringManagerIds"),
        }),
        _ => return Err(unsupported(NAME, model)),
    };
    Ok(Mapped {
        remote_id: remote_id(row, "id")?,
        remote_created_at: time_at(row, "createdAt"),
        remote_modified_at: time_at(row, "updatedAt"),
        remote_was_deleted: None,
        fields,
        raw: owned,
    })
}

fn typed<'a>(row: &'a Value, key: &str) -> impl Iterator<Item = (String, Option<String>)> + 'a {
    row.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| Some((text(item, "value")?, text(item, "type"))))
}
