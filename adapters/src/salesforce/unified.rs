//! Salesforce's unified API: accounts, contacts and opportunities (`Account`, `Contact`,
//! `Opportunity`) through SOQL on `GET /services/data/v66.0/query` (or `queryAll`).
//!
//! Pages are walked by keyset on `(SystemModstamp, Id)` with `LIMIT page_size`, not by
//! `nextRecordsUrl`:
//! - the caller gets the page size it asked for (a `batchSize` is clamped to 200..2000, so a
//!   caller asking for 50 would get 200);
//! - nothing lives on the server between pages: a query locator expires after 15 minutes idle
//!   and an integration user keeps only a few open, so parallel walks through one user (several
//!   callers, several models) invalidate each other's; a keyset position never expires;
//! - the position is two short values, so the sealed cursor stays small.
//!
//! Exactly once: the order is total (`Id` breaks ties) and each page asks for what comes after
//! the last record seen. From the second page on, the walk is bounded above by the first
//! answer's `Date` (Salesforce's clock, which stamps `SystemModstamp`): a record that changes
//! mid-walk gets a stamp past the bound, so it cannot come round a second time in this walk,
//! and the next incremental walk (from the highest `remote_modified_at` this one served, which
//! is at or below that stamp) returns it. Incremental walks use `queryAll`, so a deletion since
//! the last walk is seen (`IsDeleted` → `remote_was_deleted`); full walks list live records.
//! `remote_modified_at` is `SystemModstamp`, the field the walk filters on, so a high-water
//! mark taken from it never skips a record.

use super::{is_record_id, Salesforce, NAME};
use crate::unified::{
    answer_date, boolean, date_or_time, get, id_at, integer, json_body, number, parse_time,
    query_string, remote_id, resumed, rfc3339_from_unix, rfc3339_seconds, state_str, take_array,
    text, time_at, unsupported, untyped_emails, walk_state, Answer, ListAsk, Mapped, Page,
    ProviderCall, UnifiedApi, UnifiedError,
};
use gatehouse_models::record::{Account, Address, Contact, Opportunity, PhoneNumber};
use gatehouse_models::{Fields, Model};
use serde_json::{json, Value};

/// The REST API version the adapter speaks (the simulator's latest).
pub const API_VERSION: &str = "v66.0";

/// A query's rows per batch at most; LIMIT stays within it so each page is one answer.
const MAX_PAGE: u32 = 2000;

const MODELS: &[Model] = &[Model::Account, Model::Contact, Model::Opportunity];

/// The sObject and the fields read for `model` (list and get ask for the same).
fn sobject(model: Model) -> Result<(&'static str, &'static str), UnifiedError> {
    Ok(match model {
        Model::Account => (
            "Account",
            "Id,Name,Website,Industry,NumberOfEmployees,OwnerId,BillingCountry,\
             CreatedDate,LastModifiedDate,SystemModstamp,IsDeleted",
        ),
        Model::Contact => (
            "Contact",
            "Id,FirstName,LastName,Email,Phone,AccountId,OwnerId,\
             CreatedDate,LastModifiedDate,SystemModstamp,IsDeleted",
        ),
        Model::Opportunity => (
            "Opportunity",
            "Id,Name,StageName,Amount,CloseDate,AccountId,OwnerId,IsClosed,IsWon,\
             CreatedDate,LastModifiedDate,SystemModstamp,IsDeleted",
        ),
        _ => return Err(unsupported(NAME, model)),
    })
}

/// A SOQL datetime literal (whole seconds, UTC) for a Salesforce or RFC 3339 time; `None` for
/// anything else, so nothing but a time reaches the query text.
fn soql_time(raw: &str) -> Option<String> {
    rfc3339_from_unix(parse_time(raw)?.unix_timestamp())
}

impl UnifiedApi for Salesforce {
    fn models(&self) -> &'static [Model] {
        MODELS
    }

    fn max_page_size(&self, _model: Model) -> u32 {
        MAX_PAGE
    }

    fn list_call(&self, model: Model, ask: &ListAsk<'_>) -> Result<ProviderCall, UnifiedError> {
        let (object, fields) = sobject(model)?;
        let mut filters = Vec::new();
        let all_rows = match resumed(ask, NAME, model)? {
            None => {
                if let Some(since) = ask.modified_since {
                    filters.push(format!("SystemModstamp >= {}", rfc3339_seconds(since)));
                }
                ask.modified_since.is_some()
            }
            Some(state) => {
                let last = soql_time(state_str(state, "ts")?).ok_or(UnifiedError::BadWalkState)?;
                let id = state_str(state, "id")?;
                if !is_record_id(id) {
                    return Err(UnifiedError::BadWalkState);
                }
                filters.push(format!(
                    "(SystemModstamp > {last} OR (SystemModstamp = {last} AND Id > '{id}'))"
                ));
                if let Some(until) = state.get("until").and_then(Value::as_str) {
                    let until = soql_time(until).ok_or(UnifiedError::BadWalkState)?;
                    filters.push(format!("SystemModstamp < {until}"));
                }
                state.get("all").and_then(Value::as_bool).unwrap_or(false)
            }
        };
        let mut soql = format!("SELECT {fields} FROM {object}");
        if !filters.is_empty() {
            soql.push_str(" WHERE ");
            soql.push_str(&filters.join(" AND "));
        }
        let size = ask.page_size.clamp(1, MAX_PAGE);
        soql.push_str(&format!(
            " ORDER BY SystemModstamp ASC, Id ASC LIMIT {size}"
        ));
        let resource = if all_rows { "queryAll" } else { "query" };
        Ok(get(
            format!("/services/data/{API_VERSION}/{resource}"),
            Some(query_string([("q", soql.as_str())])),
        ))
    }

    fn read_page(
        &self,
        model: Model,
        ask: &ListAsk<'_>,
        answer: &Answer<'_>,
    ) -> Result<Page, UnifiedError> {
        let state = resumed(ask, NAME, model)?;
        let mut body = json_body(answer)?;
        let rows = take_array(&mut body, "records")?;
        let done = body
            .get("done")
            .and_then(Value::as_bool)
            .ok_or_else(|| UnifiedError::Malformed("`done` is not a boolean".into()))?;
        let records = rows
            .into_iter()
            .map(|row| map(model, row))
            .collect::<Result<Vec<_>, _>>()?;
        // A short page that says it is done is the end; a full one (or a server that cut the
        // batch short) goes on after its last row.
        let more = !done || records.len() >= ask.page_size.clamp(1, MAX_PAGE) as usize;
        let next = match records.last() {
            Some(last) if more => {
                let stamp = text(&last.raw, "SystemModstamp")
                    .and_then(|s| soql_time(&s))
                    .ok_or_else(|| {
                        UnifiedError::Malformed("a record has no valid `SystemModstamp`".into())
                    })?;
                let id = last.remote_id.clone();
                let (until, all) = match state {
                    Some(state) => (
                        state.get("until").cloned(),
                        state.get("all").cloned().unwrap_or(Value::Bool(false)),
                    ),
                    None => (
                        answer_date(answer.headers)
                            .and_then(rfc3339_from_unix)
                            .map(Value::from),
                        Value::Bool(ask.modified_since.is_some()),
                    ),
                };
                let mut fields = json!({"ts": stamp, "id": id, "all": all});
                if let (Some(until), Some(object)) = (until, fields.as_object_mut()) {
                    object.insert("until".into(), until);
                }
                Some(walk_state(NAME, model, fields))
            }
            _ => None,
        };
        Ok(Page {
            records,
            next,
            sync_token: None,
        })
    }

    fn get_call(&self, model: Model, remote_id: &str) -> Result<ProviderCall, UnifiedError> {
        let (object, fields) = sobject(model)?;
        if !is_record_id(remote_id) {
            return Err(UnifiedError::BadRemoteId(format!(
                "`{remote_id}` is not a Salesforce id (15 or 18 letters and digits)"
            )));
        }
        Ok(get(
            format!("/services/data/{API_VERSION}/sobjects/{object}/{remote_id}"),
            Some(query_string([("fields", fields)])),
        ))
    }

    fn read_record(&self, model: Model, answer: &Answer<'_>) -> Result<Mapped, UnifiedError> {
        sobject(model)?;
        let body = json_body(answer)?;
        if !body.is_object() {
            return Err(UnifiedError::Malformed(
                "the record is not an object".into(),
            ));
        }
        map(model, body)
    }
}

/// One query row (or sObject) as `model`.
fn map(model: Model, owned: Value) -> Result<Mapped, UnifiedError> {
    let row = &owned;
    if !row.is_object() {
        return Err(UnifiedError::Malformed("a record is not an object".into()));
    }
    let fields = match model {
        Model::Account => Fields::Account(Account {
            name: text(row, "Name"),
            description: text(row, "Description"),
            industry: text(row, "Industry"),
            website: text(row, "Website"),
            number_of_employees: integer(row, "NumberOfEmployees"),
            phone_numbers: phone(row, "Phone", None),
            addresses: ["Billing", "Shipping"]
                .into_iter()
                .filter_map(|kind| address(row, kind))
                .collect(),
            owner: id_at(row, "OwnerId"),
        }),
        Model::Contact => Fields::Contact(Contact {
            first_name: text(row, "FirstName"),
            last_name: text(row, "LastName"),
            account: id_at(row, "AccountId"),
            owner: id_at(row, "OwnerId"),
            email_addresses: untyped_emails(text(row, "Email")),
            phone_numbers: phone(row, "Phone", None)
                .into_iter()
                .chain(phone(row, "MobilePhone", Some("MOBILE")))
                .collect(),
            addresses: address(row, "Mailing").into_iter().collect(),
        }),
        Model::Opportunity => Fields::Opportunity(Opportunity {
            name: text(row, "Name"),
            description: text(row, "Description"),
            amount: number(row, "Amount"),
            owner: id_at(row, "OwnerId"),
            account: id_at(row, "AccountId"),
            stage: text(row, "StageName"),
            status: match (boolean(row, "IsClosed"), boolean(row, "IsWon")) {
                (Some(false), _) => Some("OPEN".to_owned()),
                (Some(true), Some(true)) => Some("WON".to_owned()),
                (Some(true), Some(false)) => Some("LOST".to_owned()),
                _ => None,
            },
            close_date: date_or_time(row, "CloseDate"),
        }),
        _ => return Err(unsupported(NAME, model)),
    };
    Ok(Mapped {
        remote_id: remote_id(row, "Id")?,
        remote_created_at: time_at(row, "CreatedDate"),
        remote_modified_at: time_at(row, "SystemModstamp")
            .or_else(|| time_at(row, "LastModifiedDate")),
        remote_was_deleted: boolean(row, "IsDeleted"),
        fields,
        raw: owned,
    })
}

fn phone(row: &Value, key: &str, kind: Option<&str>) -> Vec<PhoneNumber> {
    text(row, key)
        .map(|phone_number| PhoneNumber {
            phone_number,
            phone_number_type: kind.map(str::to_owned),
        })
        .into_iter()
        .collect()
}

/// The compound address whose fields start with `prefix` (`BillingCity`...), when any is set.
fn address(row: &Value, prefix: &str) -> Option<Address> {
    let part = |name: &str| text(row, &format!("{prefix}{name}"));
    let street = part("Street");
    let (street_1, street_2) = match street.as_deref().map(|s| s.split_once('\n')) {
        Some(Some((first, rest))) => (Some(first.to_owned()), Some(rest.to_owned())),
        _ => (street, None),
    };
    let found = Address {
        street_1,
        street_2,
        city: part("City"),
        state: part("State"),
        postal_code: part("PostalCode"),
        country: part("Country"),
        address_type: Some(prefix.to_uppercase()),
    };
    let empty = Address {
        address_type: found.address_type.clone(),
        ..Address::default()
    };
    (found != empty).then_some(found)
}
