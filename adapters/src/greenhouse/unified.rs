//! Greenhouse Harvest's unified API, both generations: candidates, applications and jobs
//! (`GET /v1/{kind}` or `/v3/{kind}`, arrays of snake_case records).
//!
//! - v1 pages by `Link: <...>; rel="next"`, followed as-is (the link keeps `per_page` and the
//!   filters); `skip_count=true` spares Greenhouse counting for `rel="last"`.
//! - v3 pages by an opaque `cursor` in the `Link` header, which must be the only query
//!   parameter: the walk keeps the cursor alone and asks `?cursor=<it>`.
//! - `modified_since` is `updated_after` (applications have none: `last_activity_after`, and
//!   their `remote_modified_at` is `last_activity_at`, so the high-water mark matches).
//!
//! Greenhouse orders a list by id, so a record that changes mid-walk keeps its place. A record
//! that enters an incremental walk's filter mid-walk (it changed after the walk began) shifts
//! the later pages by one, so one record at a page boundary may come twice; none is skipped.

use super::{HarvestV1, HarvestV3, V1_NAME, V3_NAME};
use crate::unified::{
    array_of_names, boolean, get, id_at, json_body, query_string, remote_id, resumed,
    rfc3339_seconds, state_str, strings, text, time_at, unsupported, walk_state, Answer,
    CallTarget, ListAsk, Mapped, Page, ProviderCall, UnifiedApi, UnifiedError,
};
use gatehouse_models::record::{Application, Candidate, EmailAddress, Job, PhoneNumber};
use gatehouse_models::{Fields, Model};
use serde_json::{json, Value};

const MAX_PAGE: u32 = 500;

const MODELS: &[Model] = &[Model::Candidate, Model::Application, Model::Job];

#[derive(Clone, Copy)]
enum Generation {
    V1,
    V3,
}

impl Generation {
    fn name(self) -> &'static str {
        match self {
            Generation::V1 => V1_NAME,
            Generation::V3 => V3_NAME,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Generation::V1 => "/v1",
            Generation::V3 => "/v3",
        }
    }
}

fn kind(provider: &'static str, model: Model) -> Result<&'static str, UnifiedError> {
    Ok(match model {
        Model::Candidate => "candidates",
        Model::Application => "applications",
        Model::Job => "jobs",
        _ => return Err(unsupported(provider, model)),
    })
}

fn list_call(
    generation: Generation,
    model: Model,
    ask: &ListAsk<'_>,
) -> Result<ProviderCall, UnifiedError> {
    let name = generation.name();
    let kind = kind(name, model)?;
    let path = format!("{}/{kind}", generation.prefix());
    if let Some(state) = resumed(ask, name, model)? {
        return Ok(match generation {
            Generation::V1 => {
                let mut call = get(path, None);
                call.target = CallTarget::Absolute(state_str(state, "next")?.to_owned());
                call
            }
            Generation::V3 => {
                let cursor = state_str(state, "cursor")?;
                get(path, Some(query_string([("cursor", cursor)])))
            }
        });
    }
    let per_page = ask.page_size.clamp(1, MAX_PAGE).to_string();
    let mut pairs = vec![("per_page", per_page)];
    if let Generation::V1 = generation {
        pairs.push(("skip_count", "true".to_owned()));
    }
    if let Some(since) = ask.modified_since {
        let filter = match model {
            Model::Application => "last_activity_after",
            _ => "updated_after",
        };
        pairs.push((filter, rfc3339_seconds(since)));
    }
    Ok(get(
        path,
        Some(query_string(pairs.iter().map(|(k, v)| (*k, v.as_str())))),
    ))
}

fn read_page(
    generation: Generation,
    model: Model,
    ask: &ListAsk<'_>,
    answer: &Answer<'_>,
) -> Result<Page, UnifiedError> {
    let name = generation.name();
    kind(name, model)?;
    resumed(ask, name, model)?;
    let Value::Array(rows) = json_body(answer)? else {
        return Err(UnifiedError::Malformed("the page is not an array".into()));
    };
    let records = rows
        .into_iter()
        .map(|row| map(name, model, row))
        .collect::<Result<Vec<_>, _>>()?;
    let next = match next_link(answer.headers)? {
        None => None,
        Some(link) => Some(match generation {
            Generation::V1 => walk_state(name, model, json!({ "next": link })),
            Generation::V3 => {
                let url = url::Url::parse(&link)
                    .map_err(|_| UnifiedError::Malformed("the next link is not a URL".into()))?;
                let cursor = url
                    .query_pairs()
                    .find(|(key, _)| key == "cursor")
                    .map(|(_, value)| value.into_owned())
                    .ok_or_else(|| UnifiedError::Malformed("the next link has no cursor".into()))?;
                walk_state(name, model, json!({ "cursor": cursor }))
            }
        }),
    };
    Ok(Page {
        records,
        next,
        sync_token: None,
    })
}

/// The `rel="next"` target of an RFC 8288 `Link` header, if there is one.
fn next_link(headers: &http::HeaderMap) -> Result<Option<String>, UnifiedError> {
    for value in headers.get_all(http::header::LINK) {
        let value = value
            .to_str()
            .map_err(|_| UnifiedError::Malformed("the Link header is not text".into()))?;
        for link in value.split(',') {
            let mut parts = link.split(';');
            let target = parts.next().unwrap_or_default().trim();
            let Some(target) = target.strip_prefix('<').and_then(|t| t.strip_suffix('>')) else {
                continue;
            };
            let next = parts.any(|param| {
                let param = param.trim();
                let value = param.strip_prefix("rel=").map(|v| v.trim_matches('"'));
                value.is_some_and(|rels| rels.split_whitespace().any(|rel| rel == "next"))
            });
            if next {
                return Ok(Some(target.to_owned()));
            }
        }
    }
    Ok(None)
}

fn get_call(
    generation: Generation,
    model: Model,
    remote_id: &str,
) -> Result<ProviderCall, UnifiedError> {
    let kind = kind(generation.name(), model)?;
    if remote_id.is_empty() || !remote_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UnifiedError::BadRemoteId(format!(
            "`{remote_id}` is not a Greenhouse id (digits)"
        )));
    }
    Ok(get(
        format!("{}/{kind}/{remote_id}", generation.prefix()),
        None,
    ))
}

/// One Greenhouse record as `model`.
fn map(provider: &'static str, model: Model, owned: Value) -> Result<Mapped, UnifiedError> {
    let row = &owned;
    if !row.is_object() {
        return Err(UnifiedError::Malformed("a record is not an object".into()));
    }
    let (fields, created, modified) = match model {
        Model::Candidate => (
            Fields::Candidate(Candidate {
                first_name: text(row, "first_name"),
                last_name: text(row, "last_name"),
                company: text(row, "company"),
                title: text(row, "title"),
                email_addresses: typed_values(row, "email_addresses")
                    .map(|(email_address, email_address_type)| EmailAddress {
                        email_address,
                        email_address_type,
                    })
                    .collect(),
                phone_numbers: typed_values(row, "phone_numbers")
                    .map(|(phone_number, phone_number_type)| PhoneNumber {
                        phone_number,
                        phone_number_type,
                    })
                    .collect(),
                tags: strings(row, "tags"),
                applications: match strings(row, "application_ids") {
                    ids if !ids.is_empty() => ids,
                    _ => array_of_names(row, "applications", "id"),
                },
                last_interaction_at: time_at(row, "last_activity"),
            }),
            time_at(row, "created_at"),
            time_at(row, "updated_at"),
        ),
        Model::Application => (
            Fields::Application(Application {
                candidate: id_at(row, "candidate_id"),
                job: row.pointer("/jobs/0").and_then(|job| id_at(job, "id")),
                applied_at: time_at(row, "applied_at"),
                rejected_at: time_at(row, "rejected_at"),
                current_stage: row.get("current_stage").and_then(|s| text(s, "name")),
                status: text(row, "status"),
                source: row.get("source").and_then(|s| text(s, "public_name")),
            }),
            time_at(row, "applied_at").or_else(|| time_at(row, "created_at")),
            time_at(row, "last_activity_at"),
        ),
        Model::Job => (
            Fields::Job(Job {
                name: text(row, "name"),
                description: text(row, "notes"),
                code: text(row, "requisition_id"),
                status: text(row, "status").map(|s| s.to_uppercase()),
                confidential: boolean(row, "confidential"),
                departments: array_of_names(row, "departments", "name"),
                offices: array_of_names(row, "offices", "name"),
                hiring_managers: row
                    .get("hiring_team")
                    .map(|team| array_of_names(team, "hiring_managers", "id"))
                    .unwrap_or_default(),
            }),
            time_at(row, "created_at"),
            time_at(row, "updated_at"),
        ),
        _ => return Err(unsupported(provider, model)),
    };
    Ok(Mapped {
        remote_id: remote_id(row, "id")?,
        remote_created_at: created,
        remote_modified_at: modified,
        remote_was_deleted: None,
        fields,
        raw: owned,
    })
}

/// `[{value, type}]` lists (emails, phones): the values with their types.
fn typed_values<'a>(
    row: &'a Value,
    key: &str,
) -> impl Iterator<Item = (String, Option<String>)> + 'a {
    row.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| Some((text(item, "value")?, text(item, "type"))))
}

macro_rules! harvest_unified {
    ($provider:ty, $generation:expr) => {
        impl UnifiedApi for $provider {
            fn models(&self) -> &'static [Model] {
                MODELS
            }

            fn max_page_size(&self, _model: Model) -> u32 {
                MAX_PAGE
            }

            fn list_call(
                &self,
                model: Model,
                ask: &ListAsk<'_>,
            ) -> Result<ProviderCall, UnifiedError> {
                list_call($generation, model, ask)
            }

            fn read_page(
                &self,
                model: Model,
                ask: &ListAsk<'_>,
                answer: &Answer<'_>,
            ) -> Result<Page, UnifiedError> {
                read_page($generation, model, ask, answer)
            }

            fn get_call(
                &self,
                model: Model,
                remote_id: &str,
            ) -> Result<ProviderCall, UnifiedError> {
                get_call($generation, model, remote_id)
            }

            fn read_record(
                &self,
                model: Model,
                answer: &Answer<'_>,
            ) -> Result<Mapped, UnifiedError> {
                kind($generation.name(), model)?;
                map($generation.name(), model, json_body(answer)?)
            }
        }
    };
}

harvest_unified!(HarvestV1, Generation::V1);
harvest_unified!(HarvestV3, Generation::V3);
