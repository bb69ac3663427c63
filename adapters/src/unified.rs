//! What a provider module implements to serve the unified API ([`UnifiedApi`], reached through
//! [`crate::Provider::unified`]): which provider call lists or fetches a model's records, how
//! its answer reads as canonical records, and how its pagination resumes. Pure: the proxy sends
//! the calls (with the connection's credential, limits and audit) and hands the answers back.
//!
//! A walk's position between pages is a [`WalkState`]: whatever the provider needs to go on
//! (Salesforce's `nextRecordsUrl`, HubSpot's `after`, Greenhouse's `Link` target, Lever's
//! `offset`, Ashby's `nextCursor`), opaque to the proxy, which seals it into the caller's one
//! cursor so that it cannot be forged or used by another caller. A walk state carries the
//! walk's own filter (its `modified_since`, its upper bound), so a later page needs only the
//! state: what a later [`ListAsk`] says of `modified_since` and `sync_token` is not read.
//!
//! Every record matching a walk comes once in it; a record that changes mid-walk may come
//! again in a later walk, never be skipped, provided the next incremental walk starts from the
//! highest `remote_modified_at` the last completed walk served (each adapter maps
//! `remote_modified_at` from the very field its `modified_since` filters on). How each
//! provider's order guarantees it is in its module and in `docs/unified.md`.

use gatehouse_models::{Fields, Model};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::SystemTime;

/// A provider's unified API: list and fetch canonical records of the models it serves.
pub trait UnifiedApi: Send + Sync {
    /// The models this provider serves (a CRM serves accounts, contacts, opportunities).
    fn models(&self) -> &'static [Model];

    /// The largest page the provider serves for `model`; the proxy clamps `page_size` to it.
    fn max_page_size(&self, model: Model) -> u32;

    /// The call for one page of `model`: the first (`ask.resume` is `None`) or the next.
    fn list_call(&self, model: Model, ask: &ListAsk<'_>) -> Result<ProviderCall, UnifiedError>;

    /// Reads a successful (2xx, not classified as an error) answer to [`UnifiedApi::list_call`].
    fn read_page(
        &self,
        model: Model,
        ask: &ListAsk<'_>,
        answer: &Answer<'_>,
    ) -> Result<Page, UnifiedError>;

    /// The call that fetches one record by its remote id.
    fn get_call(&self, model: Model, remote_id: &str) -> Result<ProviderCall, UnifiedError>;

    /// Reads a successful answer to [`UnifiedApi::get_call`].
    fn read_record(&self, model: Model, answer: &Answer<'_>) -> Result<Mapped, UnifiedError>;
}

/// What the caller asked of one page.
#[derive(Debug, Clone, Default)]
pub struct ListAsk<'a> {
    /// Already clamped to 1..=[`UnifiedApi::max_page_size`].
    pub page_size: u32,
    /// Only records modified at or after this time (incremental sync).
    pub modified_since: Option<SystemTime>,
    /// Where the walk stands: `None` for its first page.
    pub resume: Option<&'a WalkState>,
    /// A provider sync token kept from this caller's last completed walk of this model
    /// (Ashby's `syncToken`), offered for an incremental first page. The adapter may ignore it.
    pub sync_token: Option<&'a str>,
}

/// A provider call the unified layer makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderCall {
    pub method: http::Method,
    pub target: CallTarget,
    /// Extra request headers (`Content-Type`, `Sforce-Query-Options`); never a credential.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub body: Option<Vec<u8>>,
}

/// Where a [`ProviderCall`] goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallTarget {
    /// A path (starting with `/`) and query relative to the connection's API base.
    Relative { path: String, query: Option<String> },
    /// A URL the provider itself handed out (a `Link` header's next page, an absolute
    /// `nextRecordsUrl`), to be followed as-is, but only on the connection's own hosts: the
    /// proxy refuses it otherwise.
    Absolute(String),
    /// A path and query the provider handed out, relative to the API host's root rather than
    /// to the connection's base path (Salesforce's `nextRecordsUrl`).
    HostRelative(String),
}

/// A provider answer, read whole.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub status: u16,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
}

/// One page of canonical records.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub records: Vec<Mapped>,
    /// How to ask for the next page; `None` at the end of the walk.
    pub next: Option<WalkState>,
    /// A sync token the provider handed out on the walk's last page (Ashby), to keep for the
    /// next incremental walk.
    pub sync_token: Option<String>,
}

/// A provider record mapped to its canonical model, before the proxy adds the connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub remote_id: String,
    /// RFC 3339, UTC.
    pub remote_created_at: Option<String>,
    pub remote_modified_at: Option<String>,
    pub remote_was_deleted: Option<bool>,
    pub fields: Fields,
    /// The provider's record, verbatim.
    pub raw: Value,
}

/// A walk's position, opaque to the proxy. Serialised into the caller's sealed cursor, so it
/// is kept small: the provider's own cursor plus what the adapter needs to go on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalkState(pub Value);

/// Why the unified layer cannot serve a request or read an answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UnifiedError {
    /// This provider does not serve the model.
    #[error("{provider} does not serve {model}")]
    Unsupported {
        provider: &'static str,
        model: &'static str,
    },
    /// The remote id cannot be one of this provider's ids.
    #[error("{0}")]
    BadRemoteId(String),
    /// The walk state does not belong to this provider or model (a cursor from elsewhere).
    #[error("the cursor does not belong to this walk")]
    BadWalkState,
    /// The provider's answer is not what its API documents (truncated JSON, an HTML page,
    /// wrong types). The proxy keeps the raw body for the audit record.
    #[error("malformed provider answer: {0}")]
    Malformed(String),
    /// The provider says the sync token is no good any more: walk again from the start,
    /// without one (Ashby's `sync_token_expired`).
    #[error("the provider's sync token expired; a full walk is needed")]
    ResyncNeeded,
}

// --- Helpers the provider modules share ---------------------------------------------------

/// Whether `ask` is a walk's first page or a later one, and the later one's state when it is.
/// The state must carry `provider` and `model` (from [`walk_state`]); one from another walk is
/// [`UnifiedError::BadWalkState`].
pub fn resumed<'a>(
    ask: &ListAsk<'a>,
    provider: &str,
    model: Model,
) -> Result<Option<&'a Map<String, Value>>, UnifiedError> {
    let Some(state) = ask.resume else {
        return Ok(None);
    };
    let object = state.0.as_object().ok_or(UnifiedError::BadWalkState)?;
    let ours = object.get("p").and_then(Value::as_str) == Some(provider)
        && object.get("m").and_then(Value::as_str) == Some(model.label());
    if ours {
        Ok(Some(object))
    } else {
        Err(UnifiedError::BadWalkState)
    }
}

/// A walk state for `provider`'s walk of `model`, carrying `fields` (an object).
pub fn walk_state(provider: &str, model: Model, fields: Value) -> WalkState {
    let mut object = Map::new();
    object.insert("p".into(), Value::from(provider));
    object.insert("m".into(), Value::from(model.label()));
    if let Value::Object(fields) = fields {
        object.extend(fields);
    }
    WalkState(Value::Object(object))
}

/// A string a walk state must hold (else the state is not one this adapter wrote).
pub fn state_str<'a>(state: &'a Map<String, Value>, key: &str) -> Result<&'a str, UnifiedError> {
    state
        .get(key)
        .and_then(Value::as_str)
        .ok_or(UnifiedError::BadWalkState)
}

/// [`UnifiedError::Unsupported`] for `model`.
pub fn unsupported(provider: &'static str, model: Model) -> UnifiedError {
    UnifiedError::Unsupported {
        provider,
        model: model.collection(),
    }
}

/// A GET relative to the connection's base.
pub fn get(path: String, query: Option<String>) -> ProviderCall {
    ProviderCall {
        method: http::Method::GET,
        target: CallTarget::Relative { path, query },
        headers: Vec::new(),
        body: None,
    }
}

/// A POST of a JSON body relative to the connection's base.
pub fn post_json(path: String, body: &Value) -> ProviderCall {
    ProviderCall {
        method: http::Method::POST,
        target: CallTarget::Relative { path, query: None },
        headers: vec![(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        )],
        body: Some(body.to_string().into_bytes()),
    }
}

/// A query string of `pairs`, form-encoded.
pub fn query_string<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The answer's body as JSON, or [`UnifiedError::Malformed`] saying what it is instead. The
/// message never quotes the body (the proxy keeps it for the audit record).
pub fn json_body(answer: &Answer<'_>) -> Result<Value, UnifiedError> {
    serde_json::from_slice(answer.body).map_err(|error| {
        let start = answer
            .body
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .copied();
        let what = match start {
            None => "an empty body".to_owned(),
            Some(b'<') => "an HTML or XML page, not JSON".to_owned(),
            Some(_) if error.is_eof() => format!("truncated JSON ({error})"),
            Some(_) => format!("not JSON ({error})"),
        };
        UnifiedError::Malformed(what)
    })
}

/// The array at `key` of a page object: a page without it, or with something else there, is
/// not the documented shape.
pub fn array_at<'a>(page: &'a Value, key: &str) -> Result<&'a [Value], UnifiedError> {
    match page.get(key) {
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(UnifiedError::Malformed(format!("`{key}` is not an array"))),
        None => Err(UnifiedError::Malformed(format!("the page has no `{key}`"))),
    }
}

/// Takes the array at `key` out of a page object (so that each record moves into its
/// `Mapped::raw` instead of being copied), with [`array_at`]'s checks.
pub fn take_array(page: &mut Value, key: &str) -> Result<Vec<Value>, UnifiedError> {
    array_at(page, key)?;
    match page.get_mut(key).map(Value::take) {
        Some(Value::Array(items)) => Ok(items),
        _ => Err(UnifiedError::Malformed(format!("`{key}` is not an array"))),
    }
}

/// A record's id: a non-empty string, or an integer (Greenhouse). A record without one cannot
/// be served (nothing could fetch it again), so the page is malformed.
pub fn remote_id(record: &Value, key: &str) -> Result<String, UnifiedError> {
    id_at(record, key).ok_or_else(|| UnifiedError::Malformed(format!("a record has no `{key}`")))
}

/// An id-like value at `key`: a non-empty string or an integer; anything else is `None`.
pub fn id_at(value: &Value, key: &str) -> Option<String> {
    id_of(value.get(key)?)
}

/// An id-like value: a non-empty string or an integer.
pub fn id_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// A non-empty string at `key`; null, absent, empty or another type is `None`.
pub fn text(value: &Value, key: &str) -> Option<String> {
    match value.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// A number at `key`, or a string holding one (HubSpot keeps every property as a string).
pub fn number(value: &Value, key: &str) -> Option<f64> {
    match value.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    }
}

/// A whole number at `key` (a float with no fraction, or a string holding one, is taken).
pub fn integer(value: &Value, key: &str) -> Option<i64> {
    match value.get(key)? {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
}

/// A boolean at `key`, or the string `true`/`false` (HubSpot).
pub fn boolean(value: &Value, key: &str) -> Option<bool> {
    match value.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// The strings of the array at `key` (other items are skipped).
pub fn strings(value: &Value, key: &str) -> Vec<String> {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(id_of).collect())
        .unwrap_or_default()
}

/// Of the objects in the array at `key`, the `field` of each (a name, or an id), skipping
/// those without one: `departments: [{"id": 1, "name": "R&D"}]` → `["R&D"]`.
pub fn array_of_names(value: &Value, key: &str, field: &str) -> Vec<String> {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.get(field).and_then(id_of))
                .collect()
        })
        .unwrap_or_default()
}

/// A full name as (first, last): the first word, then the rest.
pub fn split_name(name: Option<String>) -> (Option<String>, Option<String>) {
    let Some(name) = name else {
        return (None, None);
    };
    let name = name.trim();
    match name.split_once(char::is_whitespace) {
        Some((first, rest)) => (Some(first.to_owned()), Some(rest.trim().to_owned())),
        None => (Some(name.to_owned()), None),
    }
}

/// A provider time as RFC 3339 in UTC. Takes RFC 3339 with any offset and precision, and the
/// offset without a colon that Salesforce writes (`2024-01-01T00:00:00.000+0000`).
pub fn normalise_time(raw: &str) -> Option<String> {
    format_utc(parse_time(raw)?)
}

/// The time at `key` (see [`normalise_time`]); unparsable times are `None`.
pub fn time_at(value: &Value, key: &str) -> Option<String> {
    normalise_time(value.get(key)?.as_str()?)
}

/// A time in Unix milliseconds (Lever) as RFC 3339 in UTC.
pub fn time_from_millis(value: &Value, key: &str) -> Option<String> {
    let millis = integer(value, key)?;
    let nanos = i128::from(millis).checked_mul(1_000_000)?;
    format_utc(time::OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?)
}

/// A date (`YYYY-MM-DD`) kept as a date, or a time normalised as [`normalise_time`] does.
pub fn date_or_time(value: &Value, key: &str) -> Option<String> {
    let raw = value.get(key)?.as_str()?;
    let format = time::macros::format_description!("[year]-[month]-[day]");
    match time::Date::parse(raw, format) {
        Ok(date) => date.format(format).ok(),
        Err(_) => normalise_time(raw),
    }
}

/// Parses RFC 3339, or its colon-less offset variant.
pub fn parse_time(raw: &str) -> Option<time::OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    let raw = raw.trim();
    if let Ok(parsed) = time::OffsetDateTime::parse(raw, &Rfc3339) {
        return Some(parsed);
    }
    // `+0000` → `+00:00`.
    let split = raw.len().checked_sub(5)?;
    let (head, offset) = (raw.get(..split)?, raw.get(split..)?);
    let bytes = offset.as_bytes();
    let colonless = matches!(bytes[0], b'+' | b'-') && bytes[1..].iter().all(u8::is_ascii_digit);
    if !colonless {
        return None;
    }
    let fixed = format!("{head}{}:{}", &offset[..3], &offset[3..]);
    time::OffsetDateTime::parse(&fixed, &Rfc3339).ok()
}

fn format_utc(at: time::OffsetDateTime) -> Option<String> {
    at.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// `at` as RFC 3339 in UTC, whole seconds, rounded down (a filter bound that never excludes
/// a record modified in the same second).
pub fn rfc3339_seconds(at: SystemTime) -> String {
    let seconds = unix_millis(at).div_euclid(1000);
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(format_utc)
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// `at` in Unix milliseconds (before 1970 counts down from zero).
/// Email addresses the provider gives without a type (one field, or a list of strings).
pub fn untyped_emails(
    addresses: impl IntoIterator<Item = String>,
) -> Vec<gatehouse_models::record::EmailAddress> {
    addresses
        .into_iter()
        .map(|email_address| gatehouse_models::record::EmailAddress {
            email_address,
            email_address_type: None,
        })
        .collect()
}

/// A walk's `modified_since` in Unix milliseconds, for providers that filter by epoch
/// milliseconds on every page: from the walk state's `since` once the walk began (so a walk
/// keeps the filter it started with), from the ask on its first page.
pub fn since_millis(
    ask: &ListAsk<'_>,
    provider: &'static str,
    model: Model,
) -> Result<Option<i64>, UnifiedError> {
    Ok(match resumed(ask, provider, model)? {
        Some(state) => match state.get("since") {
            None | Some(Value::Null) => None,
            Some(since) => Some(since.as_i64().ok_or(UnifiedError::BadWalkState)?),
        },
        None => ask.modified_since.map(unix_millis),
    })
}

pub fn unix_millis(at: SystemTime) -> i64 {
    match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// The answer's `Date` header (RFC 9110 IMF-fixdate) in Unix seconds: the provider's own
/// clock, which its modification times are stamped by.
pub fn answer_date(headers: &http::HeaderMap) -> Option<i64> {
    let raw = headers.get(http::header::DATE)?.to_str().ok()?;
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let parsed = time::PrimitiveDateTime::parse(raw.trim(), format).ok()?;
    Some(parsed.assume_utc().unix_timestamp())
}

/// Unix seconds as RFC 3339 in UTC.
pub fn rfc3339_from_unix(seconds: i64) -> Option<String> {
    format_utc(time::OffsetDateTime::from_unix_timestamp(seconds).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_providers_time_format_becomes_rfc3339_utc() {
        let cases = [
            ("2024-01-01T00:00:00.000+0000", "2024-01-01T00:00:00Z"),
            ("2024-03-05T10:11:12.345+0200", "2024-03-05T08:11:12.345Z"),
            ("2024-01-01T00:00:00.000Z", "2024-01-01T00:00:00Z"),
            ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
            ("2014-05-01T15:48:53.322-04:00", "2014-05-01T19:48:53.322Z"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalise_time(raw).as_deref(), Some(want), "{raw}");
        }
        for bad in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2024-01-01T00:00:00+00",
            "+0000",
        ] {
            assert_eq!(normalise_time(bad), None, "{bad}");
        }
        let lever = serde_json::json!({"at": 1_704_067_200_123_i64, "s": "x"});
        assert_eq!(
            time_from_millis(&lever, "at").as_deref(),
            Some("2024-01-01T00:00:00.123Z")
        );
        assert_eq!(time_from_millis(&lever, "s"), None);
        let dates = serde_json::json!({"d": "2024-02-29", "t": "2024-02-29T10:00:00.000Z"});
        assert_eq!(date_or_time(&dates, "d").as_deref(), Some("2024-02-29"));
        assert_eq!(
            date_or_time(&dates, "t").as_deref(),
            Some("2024-02-29T10:00:00Z")
        );
    }

    #[test]
    fn filter_bounds_round_down_to_the_second() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_704_067_200_999);
        assert_eq!(rfc3339_seconds(at), "2024-01-01T00:00:00Z");
        assert_eq!(unix_millis(at), 1_704_067_200_999);
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::DATE,
            http::HeaderValue::from_static("Mon, 01 Jan 2024 00:00:05 GMT"),
        );
        assert_eq!(answer_date(&headers), Some(1_704_067_205));
        headers.insert(http::header::DATE, http::HeaderValue::from_static("soon"));
        assert_eq!(answer_date(&headers), None);
    }

    #[test]
    fn bodies_that_are_not_json_say_what_they_are() {
        let headers = http::HeaderMap::new();
        let answer = |body: &'static [u8]| Answer {
            status: 200,
            headers: &headers,
            body,
        };
        let said = |body| match json_body(&answer(body)) {
            Err(UnifiedError::Malformed(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(said(b"<html><body>502</body></html>").contains("HTML"));
        assert!(said(br#"{"records": [{"Id""#).contains("truncated"));
        assert!(said(b"").contains("empty"));
        assert!(said(b"nope").contains("not JSON"));
    }

    #[test]
    fn walk_states_belong_to_one_walk() {
        let state = walk_state("p", Model::Job, serde_json::json!({"after": "9"}));
        let ask = ListAsk {
            page_size: 10,
            resume: Some(&state),
            ..ListAsk::default()
        };
        let fields = resumed(&ask, "p", Model::Job).unwrap().unwrap();
        assert_eq!(state_str(fields, "after").unwrap(), "9");
        assert_eq!(
            resumed(&ask, "p", Model::Candidate),
            Err(UnifiedError::BadWalkState)
        );
        assert_eq!(
            resumed(&ask, "q", Model::Job),
            Err(UnifiedError::BadWalkState)
        );
        assert_eq!(resumed(&ListAsk::default(), "p", Model::Job), Ok(None));
    }
}
