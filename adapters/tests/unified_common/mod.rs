//! What the golden tests of every provider share: answers built from golden files, the
//! malformed bodies every adapter must refuse, and a look at the calls the adapters make.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use gatehouse_adapters::models::{Fields, Model};
use gatehouse_adapters::unified::{
    Answer, CallTarget, ListAsk, Mapped, Page, ProviderCall, UnifiedApi, UnifiedError, WalkState,
};
use gatehouse_adapters::{builtin, Provider};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The provider named `name`, which must serve the unified API.
pub fn provider(name: &str) -> Arc<dyn Provider> {
    let provider = builtin(name).unwrap();
    assert!(provider.unified().is_some(), "{name} serves no unified API");
    provider
}

/// A golden payload from `tests/golden/`.
pub fn golden(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/golden/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

pub fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

/// Reads `body` as a page of `model`.
pub fn read_page(
    api: &dyn UnifiedApi,
    model: Model,
    ask: &ListAsk<'_>,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<Page, UnifiedError> {
    api.read_page(
        model,
        ask,
        &Answer {
            status: 200,
            headers,
            body,
        },
    )
}

pub fn read_record(
    api: &dyn UnifiedApi,
    model: Model,
    body: &[u8],
) -> Result<Mapped, UnifiedError> {
    let headers = http::HeaderMap::new();
    api.read_record(
        model,
        &Answer {
            status: 200,
            headers: &headers,
            body,
        },
    )
}

pub fn ask(page_size: u32) -> ListAsk<'static> {
    ListAsk {
        page_size,
        ..ListAsk::default()
    }
}

pub fn resume(page_size: u32, state: &WalkState) -> ListAsk<'_> {
    ListAsk {
        page_size,
        resume: Some(state),
        ..ListAsk::default()
    }
}

/// 2024-03-01T00:00:00Z.
pub fn march_first() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_251_200)
}

/// Bodies that are not a page of any provider: truncated JSON, an HTML error page, empty,
/// and JSON of the wrong shape.
pub fn malformed_bodies() -> Vec<&'static [u8]> {
    vec![
        br#"{"records": [{"Id": "0015g0000"#,
        b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
        b"",
        b"null",
        b"42",
        br#""a string""#,
        br#"{"unexpected": true}"#,
    ]
}

/// Every malformed body is a typed error, never a page or a panic.
pub fn refuses_malformed_pages(api: &dyn UnifiedApi, model: Model) {
    let headers = http::HeaderMap::new();
    for body in malformed_bodies() {
        let read = read_page(api, model, &ask(10), &headers, body);
        assert!(
            matches!(read, Err(UnifiedError::Malformed(_))),
            "{model:?} {:?}: {read:?}",
            String::from_utf8_lossy(body)
        );
    }
}

/// The path and query of a relative call.
pub fn relative(call: &ProviderCall) -> (String, Option<String>) {
    match &call.target {
        CallTarget::Relative { path, query } => (path.clone(), query.clone()),
        other => panic!("not a relative call: {other:?}"),
    }
}

/// A decoded query parameter of `query`.
pub fn param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The JSON body of a call.
pub fn json_body(call: &ProviderCall) -> serde_json::Value {
    serde_json::from_slice(call.body.as_deref().unwrap()).unwrap()
}

pub fn account(mapped: &Mapped) -> &gatehouse_adapters::models::record::Account {
    match &mapped.fields {
        Fields::Account(a) => a,
        other => panic!("{other:?}"),
    }
}
pub fn contact(mapped: &Mapped) -> &gatehouse_adapters::models::record::Contact {
    match &mapped.fields {
        Fields::Contact(c) => c,
        other => panic!("{other:?}"),
    }
}
pub fn opportunity(mapped: &Mapped) -> &gatehouse_adapters::models::record::Opportunity {
    match &mapped.fields {
        Fields::Opportunity(o) => o,
        other => panic!("{other:?}"),
    }
}
pub fn candidate(mapped: &Mapped) -> &gatehouse_adapters::models::record::Candidate {
    match &mapped.fields {
        Fields::Candidate(c) => c,
        other => panic!("{other:?}"),
    }
}
pub fn application(mapped: &Mapped) -> &gatehouse_adapters::models::record::Application {
    match &mapped.fields {
        Fields::Application(a) => a,
        other => panic!("{other:?}"),
    }
}
pub fn job(mapped: &Mapped) -> &gatehouse_adapters::models::record::Job {
    match &mapped.fields {
        Fields::Job(j) => j,
        other => panic!("{other:?}"),
    }
}
