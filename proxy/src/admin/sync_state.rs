//! `GET /api/sync-state[?caller=&connection=&model=]`: the unified API's sync state, so a
//! service can resume after a crash (the high-water mark of its completed walks) and an SRE sees
//! staleness. Read-only; a `read` admin token may ask.

use crate::body::{full, ProxyBody};
use crate::state::AppState;
use gatehouse_adapters::models::Model;
use gatehouse_store::{SyncFilter, SyncRecord};
use http::{header, HeaderValue, Response, StatusCode, Uri};
use serde::Serialize;

/// One row as served: times as RFC 3339, and how long ago the last completed walk was.
#[derive(Serialize)]
struct Row<'a> {
    caller: &'a str,
    connection: &'a str,
    model: &'a str,
    /// Resume an incremental walk from here (`modified_since`).
    high_water: Option<&'a str>,
    records_seen: i64,
    walks_completed: i64,
    last_success_at: Option<String>,
    last_failure_at: Option<String>,
    last_failure_category: Option<&'a str>,
    /// Seconds since `last_success_at`.
    lag_seconds: Option<f64>,
}

pub(crate) async fn answer(state: &AppState, uri: &Uri) -> Response<ProxyBody> {
    let filter = match filter(uri.query()) {
        Ok(filter) => filter,
        Err(message) => return json(StatusCode::BAD_REQUEST, &error("bad_request", &message)),
    };
    match state.sync.list(filter).await {
        Ok(records) => {
            let now = crate::unified::sync_state::now_ms();
            let rows: Vec<Row<'_>> = records.iter().map(|r| row(r, now)).collect();
            json(StatusCode::OK, &serde_json::json!({ "sync_state": rows }))
        }
        Err(e) => {
            tracing::warn!(error = %e, "sync state: the store could not be read");
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                &error("store_unavailable", "the sync state store is unreachable"),
            )
        }
    }
}

fn row(record: &SyncRecord, now_ms: i64) -> Row<'_> {
    Row {
        caller: &record.caller,
        connection: &record.connection,
        model: &record.model,
        high_water: record.high_water.as_deref(),
        records_seen: record.records_seen,
        walks_completed: record.walks_completed,
        last_success_at: record.last_success_at_ms.and_then(rfc3339),
        last_failure_at: record.last_failure_at_ms.and_then(rfc3339),
        last_failure_category: record.last_failure_category.as_deref(),
        lag_seconds: record
            .last_success_at_ms
            .map(|at| (now_ms - at).max(0) as f64 / 1000.0),
    }
}

fn filter(query: Option<&str>) -> Result<SyncFilter, String> {
    let mut filter = SyncFilter::default();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let value = value.into_owned();
        match &*key {
            "caller" => filter.caller = Some(value),
            "connection" => filter.connection = Some(value),
            "model" => {
                if Model::from_label(&value).is_none() {
                    return Err(format!(
                        "unknown model {value:?}; expected one of {:?}",
                        Model::ALL.map(Model::label)
                    ));
                }
                filter.model = Some(value);
            }
            other => {
                return Err(format!(
                    "unknown parameter {other:?}; expected caller, connection or model"
                ))
            }
        }
    }
    Ok(filter)
}

fn rfc3339(ms: i64) -> Option<String> {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    at.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

fn error(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "error": { "code": code, "message": message } })
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<ProxyBody> {
    let mut response = Response::new(full(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_checked() {
        let f = filter(Some("caller=crm-sync&connection=hs&model=crm.contacts")).unwrap();
        assert_eq!(f.caller.as_deref(), Some("crm-sync"));
        assert_eq!(f.model.as_deref(), Some("crm.contacts"));
        assert!(filter(Some("model=contacts"))
            .unwrap_err()
            .contains("unknown model"));
        assert!(filter(Some("since=1"))
            .unwrap_err()
            .contains("unknown parameter"));
        assert!(filter(None).unwrap().caller.is_none());
    }

    #[test]
    fn rows_say_how_stale_they_are() {
        let record = SyncRecord {
            caller: "c".into(),
            connection: "hs".into(),
            model: "crm.contacts".into(),
            high_water: Some("2026-01-01T00:00:00.000Z".into()),
            records_seen: 3,
            walks_completed: 1,
            last_success_at_ms: Some(1_000),
            last_failure_at_ms: None,
            last_failure_category: None,
            sync_token: Some("secret-ish".into()),
            updated_at_ms: 1_000,
        };
        let value = serde_json::to_value(row(&record, 61_000)).unwrap();
        assert_eq!(value["lag_seconds"], 60.0);
        assert_eq!(value["last_success_at"], "1970-01-01T00:00:01Z");
        assert!(!value.to_string().contains("secret-ish"));
    }
}
