//! HubSpot's unified API: accounts (companies), contacts and opportunities (deals) through the
//! CRM v3 objects API.
//!
//! - A full walk lists `GET /crm/v3/objects/{type}` and follows `paging.next.after`, which is
//!   a position in id order: a record that changes mid-walk keeps its place, so each is served
//!   once. Archived records are not listed (HubSpot lists them only with `archived=true`).
//! - An incremental walk (`modified_since`) searches (`POST .../search`) with a `GTE` filter on
//!   `hs_lastmodifieddate` (`lastmodifieddate` for contacts), sorted ascending. Every page is a
//!   new search from the last modification time seen (keyset), rather than `after` offsets:
//!   offsets into a sorted result shift when a record ahead changes (skipping one), and stop at
//!   HubSpot's 10,000-result cap, while a restarted window does neither. The records already
//!   served at exactly that time are named in the walk state and dropped when they come back;
//!   only when more of them share that millisecond than a page holds does the walk step over
//!   them by offset. From the second page on, the walk is bounded above by the first answer's
//!   `Date`, so a record changed mid-walk waits for the next walk instead of coming twice.
//!   Search does not return archived records, so deletions are not seen incrementally.
//! - Property values are strings (`"1500.50"`); empty strings are unset.

use super::{HubSpot, NAME};
use crate::unified::{
    answer_date, boolean, date_or_time, get, id_at, id_of, integer, json_body, number, parse_time,
    post_json, query_string, remote_id, resumed, take_array, text, time_at, unix_millis,
    unsupported, untyped_emails, walk_state, Answer, ListAsk, Mapped, Page, ProviderCall,
    UnifiedApi, UnifiedError,
};
use gatehouse_models::record::{Account, Address, Contact, Opportunity, PhoneNumber};
use gatehouse_models::{Fields, Model};
use serde_json::{json, Map, Value};

/// The list endpoint's page cap (search allows 200, but one cap serves both kinds of walk).
const MAX_PAGE: u32 = 100;

/// How many ids at the boundary time a walk state names at most: a page's worth, since past
/// a page of ties the walk steps over them by offset instead (and the cursor stays short).
const MAX_BOUNDARY_IDS: usize = MAX_PAGE as usize;

const MODELS: &[Model] = &[Model::Account, Model::Contact, Model::Opportunity];

struct Object {
    path: &'static str,
    /// The property incremental sync filters and sorts on.
    modified: &'static str,
    properties: &'static str,
    /// `associations=` on list and get (a deal's company).
    associations: Option<&'static str>,
}

fn object(model: Model) -> Result<Object, UnifiedError> {
    Ok(match model {
        Model::Account => Object {
            path: "companies",
            modified: "hs_lastmodifieddate",
            properties: "name,domain,website,description,industry,numberofemployees,phone,\
                         address,address2,city,state,zip,country,hubspot_owner_id,createdate,\
                         hs_lastmodifieddate",
            associations: None,
        },
        Model::Contact => Object {
            path: "contacts",
            modified: "lastmodifieddate",
            properties: "firstname,lastname,email,phone,mobilephone,address,city,state,zip,\
                         country,associatedcompanyid,hubspot_owner_id,createdate,lastmodifieddate",
            associations: None,
        },
        Model::Opportunity => Object {
            path: "deals",
            modified: "hs_lastmodifieddate",
            properties: "dealname,description,amount,dealstage,pipeline,closedate,\
                         hubspot_owner_id,hs_is_closed,hs_is_closed_won,createdate,\
                         hs_lastmodifieddate",
            associations: Some("companies"),
        },
        _ => return Err(unsupported(NAME, model)),
    })
}

/// Where an incremental walk stands: the boundary time, how many records at exactly that
/// time were served, and (while few) which.
struct Boundary {
    at: i64,
    count: u64,
    ids: Vec<String>,
}

impl Boundary {
    fn read(state: &Map<String, Value>) -> Result<Boundary, UnifiedError> {
        let at = state
            .get("t")
            .and_then(Value::as_i64)
            .ok_or(UnifiedError::BadWalkState)?;
        let count = state
            .get("k")
            .and_then(Value::as_u64)
            .ok_or(UnifiedError::BadWalkState)?;
        let ids = state
            .get("ids")
            .and_then(Value::as_array)
            .map(|ids| ids.iter().filter_map(id_of).collect())
            .unwrap_or_default();
        Ok(Boundary { at, count, ids })
    }

    /// Whether a record returned again (at the boundary, already served) is to be dropped.
    fn already_served(&self, at: i64, id: &str) -> bool {
        at == self.at && self.ids.iter().any(|seen| seen == id)
    }

    fn advance(&mut self, at: i64, id: &str) {
        if at > self.at {
            self.at = at;
            self.count = 0;
            self.ids.clear();
        }
        if at == self.at {
            self.count += 1;
            if self.ids.len() < MAX_BOUNDARY_IDS {
                self.ids.push(id.to_owned());
            }
        }
    }

    /// Whether the named ids cover every record served at the boundary, so a search from the
    /// boundary can start at its first result and drop those.
    fn complete(&self) -> bool {
        self.ids.len() as u64 == self.count
    }
}

/// A search body: records modified at or after `from` (and before `until`), oldest first.
fn search_body(object: &Object, from: i64, until: Option<i64>, after: u64, limit: u32) -> Value {
    let mut filters = vec![json!({
        "propertyName": object.modified, "operator": "GTE", "value": from.to_string()
    })];
    if let Some(until) = until {
        filters.push(json!({
            "propertyName": object.modified, "operator": "LT", "value": until.to_string()
        }));
    }
    let properties: Vec<&str> = object.properties.split(',').collect();
    let mut body = json!({
        "filterGroups": [{"filters": filters}],
        "sorts": [{"propertyName": object.modified, "direction": "ASCENDING"}],
        "properties": properties,
        "limit": limit,
    });
    if let (true, Some(fields)) = (after > 0, body.as_object_mut()) {
        fields.insert("after".into(), Value::from(after.to_string()));
    }
    body
}

/// A record's modification time in Unix milliseconds, from the property the search sorts on.
fn modified_millis(object: &Object, record: &Value) -> Option<i64> {
    let raw = record
        .get("properties")
        .and_then(|p| p.get(object.modified))
        .and_then(Value::as_str)
        .or_else(|| record.get("updatedAt").and_then(Value::as_str))?;
    let at = parse_time(raw)?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

impl UnifiedApi for HubSpot {
    fn models(&self) -> &'static [Model] {
        MODELS
    }

    fn max_page_size(&self, _model: Model) -> u32 {
        MAX_PAGE
    }

    fn list_call(&self, model: Model, ask: &ListAsk<'_>) -> Result<ProviderCall, UnifiedError> {
        let object = object(model)?;
        let limit = ask.page_size.clamp(1, MAX_PAGE);
        let state = resumed(ask, NAME, model)?;
        let search = match state {
            Some(state) => state.contains_key("t"),
            None => ask.modified_since.is_some(),
        };
        if search {
            let path = format!("/crm/v3/objects/{}/search", object.path);
            let body = match (state, ask.modified_since) {
                (Some(state), _) => {
                    let boundary = Boundary::read(state)?;
                    let until = state.get("until").and_then(Value::as_i64);
                    let after = if boundary.complete() && boundary.count < u64::from(limit) {
                        0
                    } else {
                        boundary.count
                    };
                    search_body(&object, boundary.at, until, after, limit)
                }
                (None, Some(since)) => search_body(&object, unix_millis(since), None, 0, limit),
                (None, None) => return Err(UnifiedError::BadWalkState),
            };
            return Ok(post_json(path, &body));
        }
        let limit = limit.to_string();
        let mut pairs = vec![("limit", limit.as_str()), ("properties", object.properties)];
        if let Some(associations) = object.associations {
            pairs.push(("associations", associations));
        }
        if let Some(state) = state {
            let after = state
                .get("after")
                .and_then(Value::as_str)
                .ok_or(UnifiedError::BadWalkState)?;
            pairs.push(("after", after));
        }
        Ok(get(
            format!("/crm/v3/objects/{}", object.path),
            Some(query_string(pairs)),
        ))
    }

    fn read_page(
        &self,
        model: Model,
        ask: &ListAsk<'_>,
        answer: &Answer<'_>,
    ) -> Result<Page, UnifiedError> {
        let object = object(model)?;
        let state = resumed(ask, NAME, model)?;
        let mut body = json_body(answer)?;
        let results = take_array(&mut body, "results")?;
        let next_after =
            match body.get("paging").and_then(|p| p.get("next")) {
                None | Some(Value::Null) => None,
                Some(next) => Some(id_at(next, "after").ok_or_else(|| {
                    UnifiedError::Malformed("`paging.next` has no `after`".into())
                })?),
            };
        let search = match state {
            Some(state) => state.contains_key("t"),
            None => ask.modified_since.is_some(),
        };
        if !search {
            let records = results
                .into_iter()
                .map(|r| map(model, r))
                .collect::<Result<Vec<_>, _>>()?;
            let next = next_after.map(|after| walk_state(NAME, model, json!({ "after": after })));
            return Ok(Page {
                records,
                next,
                sync_token: None,
            });
        }
        let (mut boundary, until) = match state {
            Some(state) => (
                Boundary::read(state)?,
                state.get("until").and_then(Value::as_i64),
            ),
            None => (
                Boundary {
                    at: ask.modified_since.map(unix_millis).unwrap_or(i64::MIN),
                    count: 0,
                    ids: Vec::new(),
                },
                answer_date(answer.headers).map(|seconds| seconds.saturating_mul(1000)),
            ),
        };
        let before = (boundary.at, boundary.count);
        let mut records = Vec::with_capacity(results.len());
        for result in results {
            let at = modified_millis(&object, &result);
            let mapped = map(model, result)?;
            let at = at.ok_or_else(|| {
                UnifiedError::Malformed(format!("a record has no valid `{}`", object.modified))
            })?;
            if boundary.already_served(at, &mapped.remote_id) {
                continue;
            }
            boundary.advance(at, &mapped.remote_id);
            records.push(mapped);
        }
        let next = match next_after {
            Some(_) if (boundary.at, boundary.count) == before => {
                return Err(UnifiedError::Malformed(
                    "the search returned nothing new but says there is more".into(),
                ))
            }
            Some(_) => {
                let mut fields =
                    json!({"t": boundary.at, "k": boundary.count, "ids": boundary.ids});
                if let (Some(until), Some(object)) = (until, fields.as_object_mut()) {
                    object.insert("until".into(), Value::from(until));
                }
                Some(walk_state(NAME, model, fields))
            }
            None => None,
        };
        Ok(Page {
            records,
            next,
            sync_token: None,
        })
    }

    fn get_call(&self, model: Model, remote_id: &str) -> Result<ProviderCall, UnifiedError> {
        let object = object(model)?;
        if remote_id.is_empty() || !remote_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(UnifiedError::BadRemoteId(format!(
                "`{remote_id}` is not a HubSpot object id (digits)"
            )));
        }
        let mut pairs = vec![("properties", object.properties)];
        if let Some(associations) = object.associations {
            pairs.push(("associations", associations));
        }
        Ok(get(
            format!("/crm/v3/objects/{}/{remote_id}", object.path),
            Some(query_string(pairs)),
        ))
    }

    fn read_record(&self, model: Model, answer: &Answer<'_>) -> Result<Mapped, UnifiedError> {
        object(model)?;
        map(model, json_body(answer)?)
    }
}

/// One HubSpot object as `model`.
fn map(model: Model, owned: Value) -> Result<Mapped, UnifiedError> {
    let record = &owned;
    let object = object(model)?;
    if !record.is_object() {
        return Err(UnifiedError::Malformed("a record is not an object".into()));
    }
    let empty = Value::Object(Map::new());
    let p = match record.get("properties") {
        None | Some(Value::Null) => &empty,
        Some(properties @ Value::Object(_)) => properties,
        Some(_) => {
            return Err(UnifiedError::Malformed(
                "a record's `properties` is not an object".into(),
            ))
        }
    };
    let phones = |keys: &[(&str, Option<&str>)]| -> Vec<PhoneNumber> {
        keys.iter()
            .filter_map(|(key, kind)| {
                text(p, key).map(|phone_number| PhoneNumber {
                    phone_number,
                    phone_number_type: kind.map(str::to_owned),
                })
            })
            .collect()
    };
    let fields = match model {
        Model::Account => Fields::Account(Account {
            name: text(p, "name"),
            description: text(p, "description"),
            industry: text(p, "industry"),
            website: text(p, "website").or_else(|| text(p, "domain")),
            number_of_employees: integer(p, "numberofemployees"),
            phone_numbers: phones(&[("phone", None)]),
            addresses: address(p).into_iter().collect(),
            owner: id_at(p, "hubspot_owner_id"),
        }),
        Model::Contact => Fields::Contact(Contact {
            first_name: text(p, "firstname"),
            last_name: text(p, "lastname"),
            account: id_at(p, "associatedcompanyid"),
            owner: id_at(p, "hubspot_owner_id"),
            email_addresses: untyped_emails(text(p, "email")),
            phone_numbers: phones(&[("phone", None), ("mobilephone", Some("MOBILE"))]),
            addresses: address(p).into_iter().collect(),
        }),
        Model::Opportunity => Fields::Opportunity(Opportunity {
            name: text(p, "dealname"),
            description: text(p, "description"),
            amount: number(p, "amount"),
            owner: id_at(p, "hubspot_owner_id"),
            account: record
                .pointer("/associations/companies/results/0")
                .and_then(|company| id_at(company, "id")),
            stage: text(p, "dealstage"),
            status: deal_status(p),
            close_date: date_or_time(p, "closedate"),
        }),
        _ => return Err(unsupported(NAME, model)),
    };
    Ok(Mapped {
        remote_id: remote_id(record, "id")?,
        remote_created_at: time_at(record, "createdAt").or_else(|| time_at(p, "createdate")),
        remote_modified_at: time_at(p, object.modified).or_else(|| time_at(record, "updatedAt")),
        remote_was_deleted: boolean(record, "archived"),
        fields,
        raw: owned,
    })
}

/// `WON`/`LOST`/`OPEN` from HubSpot's closed flags; without them, from the default pipeline's
/// closed stages (other pipelines' stage ids say nothing about being closed).
fn deal_status(p: &Value) -> Option<String> {
    let status = match (boolean(p, "hs_is_closed"), boolean(p, "hs_is_closed_won")) {
        (_, Some(true)) => "WON",
        (Some(true), _) => "LOST",
        (Some(false), _) => "OPEN",
        (None, _) => match (
            text(p, "dealstage").as_deref(),
            text(p, "pipeline").as_deref(),
        ) {
            (Some("closedwon"), _) => "WON",
            (Some("closedlost"), _) => "LOST",
            (Some(_), Some("default")) => "OPEN",
            _ => return None,
        },
    };
    Some(status.to_owned())
}

fn address(p: &Value) -> Option<Address> {
    let found = Address {
        street_1: text(p, "address"),
        street_2: text(p, "address2"),
        city: text(p, "city"),
        state: text(p, "state"),
        postal_code: text(p, "zip"),
        country: text(p, "country"),
        address_type: None,
    };
    (found != Address::default()).then_some(found)
}
