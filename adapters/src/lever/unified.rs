//! Lever's unified API: candidates (opportunities, which replaced `/candidates`) and jobs
//! (postings), `GET /v1/opportunities` and `/v1/postings` with `limit` and `offset=<next>`
//! while `hasNext`.
//!
//! Applications are not served: Lever lists them only per opportunity
//! (`/opportunities/{id}/applications`), with no list across opportunities to page or sync,
//! and neither the simulator nor the provider notes document one. A candidate names its
//! applications' ids.
//!
//! `modified_since` is `updated_at_start` in epoch milliseconds, sent on every page (the offset
//! token is a position in the filtered list, so the filter must stay the same), and the walk
//! also keeps only records whose `updatedAt` is at or after it, in case an endpoint ignores the
//! filter. Lever's order does not follow modification, so a record that changes mid-walk keeps
//! its place; one that enters the filter mid-walk may push a record at a page boundary into a
//! second appearance, never out of the walk. Timestamps are Unix milliseconds.

use super::{Lever, NAME};
use crate::unified::{
    array_of_names, get, id_at, json_body, query_string, remote_id, resumed, since_millis,
    split_name, strings, text, time_from_millis, unsupported, untyped_emails, walk_state, Answer,
    ListAsk, Mapped, Page, ProviderCall, UnifiedApi, UnifiedError,
};
use gatehouse_models::record::{Candidate, Job, PhoneNumber};
use gatehouse_models::{Fields, Model};
use serde_json::{json, Value};

const MAX_PAGE: u32 = 100;

const MODELS: &[Model] = &[Model::Candidate, Model::Job];

fn resource(model: Model) -> Result<&'static str, UnifiedError> {
    match model {
        Model::Candidate => Ok("opportunities"),
        Model::Job => Ok("postings"),
        _ => Err(unsupported(NAME, model)),
    }
}

impl UnifiedApi for Lever {
    fn models(&self) -> &'static [Model] {
        MODELS
    }

    fn max_page_size(&self, _model: Model) -> u32 {
        MAX_PAGE
    }

    fn list_call(&self, model: Model, ask: &ListAsk<'_>) -> Result<ProviderCall, UnifiedError> {
        let resource = resource(model)?;
        let limit = ask.page_size.clamp(1, MAX_PAGE).to_string();
        let since = since_millis(ask, NAME, model)?.map(|ms| ms.to_string());
        let mut pairs = vec![("limit", limit.as_str())];
        if let Some(since) = &since {
            pairs.push(("updated_at_start", since));
        }
        let offset = match resumed(ask, NAME, model)? {
            Some(state) => Some(
                state
                    .get("offset")
                    .and_then(Value::as_str)
                    .ok_or(UnifiedError::BadWalkState)?,
            ),
            None => None,
        };
        if let Some(offset) = offset {
            pairs.push(("offset", offset));
        }
        Ok(get(format!("/v1/{resource}"), Some(query_string(pairs))))
    }

    fn read_page(
        &self,
        model: Model,
        ask: &ListAsk<'_>,
        answer: &Answer<'_>,
    ) -> Result<Page, UnifiedError> {
        resource(model)?;
        let since = since_millis(ask, NAME, model)?;
        let mut body = json_body(answer)?;
        let rows = crate::unified::take_array(&mut body, "data")?;
        let more = body
            .get("hasNext")
            .and_then(Value::as_bool)
            .ok_or_else(|| UnifiedError::Malformed("`hasNext` is not a boolean".into()))?;
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            let updated = crate::unified::integer(&row, "updatedAt");
            let mapped = map(model, row)?;
            let wanted = match (since, updated) {
                (Some(since), Some(updated)) => updated >= since,
                // A record without a modification time cannot be shown to be older.
                _ => true,
            };
            if wanted {
                records.push(mapped);
            }
        }
        let next = if more {
            let offset = text(&body, "next").ok_or_else(|| {
                UnifiedError::Malformed("`hasNext` is true but there is no `next`".into())
            })?;
            Some(walk_state(
                NAME,
                model,
                json!({"offset": offset, "since": since}),
            ))
        } else {
            None
        };
        Ok(Page {
            records,
            next,
            sync_token: None,
        })
    }

    fn get_call(&self, model: Model, remote_id: &str) -> Result<ProviderCall, UnifiedError> {
        let resource = resource(model)?;
        let valid = !remote_id.is_empty()
            && remote_id.len() <= 64
            && remote_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            return Err(UnifiedError::BadRemoteId(format!(
                "`{remote_id}` is not a Lever id (a UUID)"
            )));
        }
        Ok(get(format!("/v1/{resource}/{remote_id}"), None))
    }

    fn read_record(&self, model: Model, answer: &Answer<'_>) -> Result<Mapped, UnifiedError> {
        resource(model)?;
        let mut body = json_body(answer)?;
        let data = body
            .get_mut("data")
            .map(Value::take)
            .ok_or_else(|| UnifiedError::Malformed("the answer has no `data`".into()))?;
        map(model, data)
    }
}

/// One opportunity or posting as `model`.
fn map(model: Model, owned: Value) -> Result<Mapped, UnifiedError> {
    let row = &owned;
    if !row.is_object() {
        return Err(UnifiedError::Malformed("a record is not an object".into()));
    }
    let (fields, deleted) = match model {
        Model::Candidate => {
            let (first_name, last_name) = split_name(text(row, "name"));
            let archived = match row.get("archived") {
                None => None,
                Some(Value::Null) => Some(false),
                Some(_) => Some(true),
            };
            let candidate = Candidate {
                first_name,
                last_name,
                company: None,
                title: text(row, "headline"),
                email_addresses: untyped_emails(strings(row, "emails")),
                phone_numbers: row
                    .get("phones")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|phone| {
                        Some(PhoneNumber {
                            phone_number: text(phone, "value")?,
                            phone_number_type: text(phone, "type"),
                        })
                    })
                    .collect(),
                tags: strings(row, "tags"),
                applications: match strings(row, "applications") {
                    ids if !ids.is_empty() => ids,
                    _ => array_of_names(row, "applications", "id"),
                },
                last_interaction_at: time_from_millis(row, "lastInteractionAt"),
            };
            (Fields::Candidate(candidate), archived)
        }
        Model::Job => {
            let categories = row.get("categories").cloned().unwrap_or(Value::Null);
            let job = Job {
                name: text(row, "text"),
                description: row
                    .get("content")
                    .and_then(|content| text(content, "description")),
                code: strings(row, "requisitionCodes").into_iter().next(),
                status: text(row, "state").and_then(|state| posting_status(&state)),
                confidential: text(row, "confidentiality").map(|c| c == "confidential"),
                departments: ["department", "team"]
                    .into_iter()
                    .filter_map(|key| text(&categories, key))
                    .collect(),
                offices: text(&categories, "location").into_iter().collect(),
                hiring_managers: id_at(row, "hiringManager").into_iter().collect(),
            };
            (Fields::Job(job), None)
        }
        _ => return Err(unsupported(NAME, model)),
    };
    Ok(Mapped {
        remote_id: remote_id(row, "id")?,
        remote_created_at: time_from_millis(row, "createdAt"),
        remote_modified_at: time_from_millis(row, "updatedAt"),
        remote_was_deleted: deleted,
        fields,
        raw: owned,
    })
}

/// A posting's state as a job status: `published` and `internal` postings are open.
fn posting_status(state: &str) -> Option<String> {
    let status = match state {
        "published" | "internal" => "OPEN",
        "closed" => "CLOSED",
        "draft" => "DRAFT",
        "pending" => "PENDING",
        "rejected" => "ARCHIVED",
        _ => return None,
    };
    Some(status.to_owned())
}
