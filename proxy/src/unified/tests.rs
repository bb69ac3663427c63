//! The unified layer against the adapter trait: a test adapter over a loopback provider that
//! pages by offset and hands out a sync token, so the walk, the cursor's sealing and binding,
//! the resync and the typed errors are checked without any real provider's mapping.

use super::*;
use crate::config::Config;
use crate::pipeline::recorder::RequestContext;
use crate::stages::route;
use gatehouse_adapters::unified::{Answer, CallTarget, Mapped, ProviderCall};
use gatehouse_adapters::Provider;
use gatehouse_models::record::Account;
use gatehouse_models::Fields;
use http::StatusCode;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

const RECORDS: usize = 5;

/// What the loopback provider does next.
#[derive(Default)]
struct Script {
    /// The next answer is an HTML error page with status 200.
    html_next: AtomicBool,
    requests: AtomicUsize,
}

fn item(i: usize) -> Value {
    json!({"id": format!("r{i}"), "name": format!("Account {i}"), "updated": format!("2025-06-0{}T00:00:00Z", i + 1)})
}

/// `/items?offset=&limit=[&sync=]` pages over [`RECORDS`] items (a `sync=expired` token is
/// refused as expired); `/items/<id>` is one item.
async fn provider(script: Arc<Script>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let script = script.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let script = script.clone();
                    async move {
                        script.requests.fetch_add(1, Ordering::SeqCst);
                        let (status, body) = answer(&script, req.uri());
                        let mut response = http::Response::new(crate::body::full(body));
                        *response.status_mut() = status;
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

fn answer(script: &Script, uri: &http::Uri) -> (StatusCode, String) {
    if script.html_next.swap(false, Ordering::SeqCst) {
        return (StatusCode::OK, "<html><body>Maintenance".into());
    }
    if let Some(id) = uri.path().strip_prefix("/items/") {
        return match (0..RECORDS).map(item).find(|i| i["id"] == id) {
            Some(found) => (StatusCode::OK, found.to_string()),
            None => (
                StatusCode::NOT_FOUND,
                json!({"error": "no_such_item"}).to_string(),
            ),
        };
    }
    let query: std::collections::HashMap<String, String> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    match query.get("sync").map(String::as_str) {
        Some("expired") => return (StatusCode::OK, json!({"error": "sync_expired"}).to_string()),
        Some("refused") => {
            return (
                StatusCode::OK,
                json!({"error": "invalid_input"}).to_string(),
            )
        }
        _ => {}
    }
    let offset: usize = query["offset"].parse().unwrap();
    let limit: usize = query["limit"].parse().unwrap();
    let end = (offset + limit).min(RECORDS);
    let items: Vec<Value> = (offset..end).map(item).collect();
    let mut page = json!({"items": items, "next": (end < RECORDS).then_some(end)});
    if end == RECORDS {
        page["syncToken"] = json!("tok-1");
    }
    (StatusCode::OK, page.to_string())
}

/// Serves accounts only, two to a page.
#[derive(Debug)]
struct TestApi;

impl UnifiedApi for TestApi {
    fn models(&self) -> &'static [Model] {
        &[Model::Account]
    }

    fn max_page_size(&self, _model: Model) -> u32 {
        2
    }

    fn list_call(&self, _model: Model, ask: &ListAsk<'_>) -> Result<ProviderCall, UnifiedError> {
        let offset = match ask.resume {
            None => 0,
            Some(WalkState(state)) => state["offset"].as_u64().ok_or(UnifiedError::BadWalkState)?,
        };
        let mut query = format!("offset={offset}&limit={}", ask.page_size);
        if let Some(token) = ask.sync_token {
            query.push_str(&format!("&sync={token}"));
        }
        Ok(ProviderCall {
            method: http::Method::GET,
            target: CallTarget::Relative {
                path: "/items".into(),
                query: Some(query),
            },
            headers: vec![],
            body: None,
        })
    }

    fn read_page(
        &self,
        _model: Model,
        _ask: &ListAsk<'_>,
        answer: &Answer<'_>,
    ) -> Result<Page, UnifiedError> {
        let body: Value = serde_json::from_slice(answer.body)
            .map_err(|e| UnifiedError::Malformed(e.to_string()))?;
        if body["error"] == "sync_expired" {
            return Err(UnifiedError::ResyncNeeded);
        }
        let items = body["items"]
            .as_array()
            .ok_or_else(|| UnifiedError::Malformed("no items".into()))?;
        Ok(Page {
            records: items.iter().map(mapped).collect(),
            next: body["next"]
                .as_u64()
                .map(|offset| WalkState(json!({ "offset": offset }))),
            sync_token: body["syncToken"].as_str().map(str::to_owned),
        })
    }

    fn get_call(&self, _model: Model, remote_id: &str) -> Result<ProviderCall, UnifiedError> {
        Ok(ProviderCall {
            method: http::Method::GET,
            target: CallTarget::Relative {
                path: format!("/items/{remote_id}"),
                query: None,
            },
            headers: vec![],
            body: None,
        })
    }

    fn read_record(&self, _model: Model, answer: &Answer<'_>) -> Result<Mapped, UnifiedError> {
        let body: Value = serde_json::from_slice(answer.body)
            .map_err(|e| UnifiedError::Malformed(e.to_string()))?;
        Ok(mapped(&body))
    }
}

fn mapped(item: &Value) -> Mapped {
    Mapped {
        remote_id: item["id"].as_str().unwrap_or_default().to_owned(),
        remote_created_at: None,
        remote_modified_at: item["updated"].as_str().map(str::to_owned),
        remote_was_deleted: None,
        fields: Fields::Account(Account {
            name: item["name"].as_str().map(str::to_owned),
            ..Default::default()
        }),
        raw: item.clone(),
    }
}

#[derive(Debug)]
struct TestProvider(TestApi);

impl Provider for TestProvider {
    fn name(&self) -> &str {
        "testcrm"
    }
    fn unified(&self) -> Option<&dyn UnifiedApi> {
        Some(&self.0)
    }
    /// Like Ashby: an error may come inside an HTTP 200 (`{"error": "<code>"}`).
    fn classify_error(
        &self,
        status: http::StatusCode,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Option<gatehouse_adapters::ProviderError> {
        let code = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|b| b["error"].as_str().map(str::to_owned));
        match code {
            Some(code) if status.is_success() => Some(gatehouse_adapters::ProviderError::new(
                gatehouse_adapters::Category::Validation,
                Some(code),
            )),
            _ => gatehouse_adapters::taxonomy::classify_rest(status, headers, None),
        }
    }
}

fn hash(token: &str) -> String {
    crate::stages::caller::hash_token(token)
}

/// Connections `crm` and `crm2` (the test adapter), `plain` (a custom provider, without a
/// unified API); callers `svc` (granted `/unified/crm/**` on all), `other` (on `crm`) and `nogrant`.
async fn state() -> (Arc<AppState>, Arc<Script>, tempfile::TempDir) {
    let script = Arc::new(Script::default());
    let base = provider(script.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let connection = |id: &str| {
        format!("[[connections]]\nid = \"{id}\"\nprovider = \"hubspot\"\nbase_url = \"{base}\"\ncredentials = {{ type = \"bearer\", token = \"t\" }}\n")
    };
    let caller = |id: &str, connections: &str, paths: &str| {
        format!("[[callers]]\nid = \"{id}\"\ntoken_sha256 = \"{}\"\n[[callers.grants]]\nconnections = {connections}\nmethods = [\"GET\"]\npaths = {paths}\n", hash(id))
    };
    // A custom provider: no unified API.
    let plain = format!("[[connections]]\nid = \"plain\"\nprovider = \"custom\"\nbase_url = \"{base}\"\n[connections.profile]\nname = \"testapi\"\n");
    let text = format!(
        "[store]\ndata_dir = \"{}\"\n{}{}{}{}{}{}",
        dir.path().display(),
        connection("crm"),
        connection("crm2"),
        plain,
        caller(
            "svc",
            "[\"crm\", \"crm2\", \"plain\"]",
            "[\"/unified/crm/**\"]"
        ),
        caller("other", "[\"crm\"]", "[\"/unified/crm/**\"]"),
        caller("nogrant", "[\"crm\"]", "[\"/crm/**\"]"),
    );
    let config = Config::from_str(Path::new("test.toml"), &text).unwrap();
    let mut state = AppState::build(config).await.unwrap();
    let app = Arc::get_mut(&mut state).unwrap();
    for id in ["crm", "crm2"] {
        let conn = Arc::get_mut(app.connections.get_mut(id).unwrap()).unwrap();
        conn.provider = Arc::new(TestProvider(TestApi));
    }
    (state, script, dir)
}

/// GETs `uri` as `caller` through the unified handler: (status, JSON body).
async fn get(state: &AppState, caller: &str, uri: &str) -> (StatusCode, Value) {
    let request = http::Request::builder()
        .uri(uri)
        .header(
            http::header::PROXY_AUTHORIZATION,
            format!("Bearer {caller}"),
        )
        .body(())
        .unwrap();
    let (parts, ()) = request.into_parts();
    let target = route::parse_target(&parts.uri, parts.version).unwrap();
    assert_eq!(target.connection, RESERVED_ID);
    let mut ctx = RequestContext::new(
        crate::telemetry::ids::request_id(&parts.headers),
        http::Method::GET,
    );
    let peer = PeerIdentity::default();
    let (status, bytes) = match handle(state, &peer, &mut ctx, &parts, &target).await {
        Ok(response) => {
            let status = response.status();
            (
                status,
                response.into_body().collect().await.unwrap().to_bytes(),
            )
        }
        Err(error) => {
            let response = error.into_response(&ctx.error_context());
            let status = response.status();
            (
                status,
                response.into_body().collect().await.unwrap().to_bytes(),
            )
        }
    };
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn code(body: &Value) -> (&str, &str) {
    (
        body["error"]["category"].as_str().unwrap_or("-"),
        body["error"]["code"].as_str().unwrap_or("-"),
    )
}

fn query_value(cursor: &str) -> String {
    form_urlencoded::byte_serialize(cursor.as_bytes()).collect()
}

/// Walks `crm` accounts as `caller` from `first` (a query), returning every page's body.
async fn walk(state: &AppState, caller: &str, first: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut uri = format!("/unified/crm/accounts?connection=crm{first}");
    loop {
        let (status, body) = get(state, caller, &uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let next = body["next_cursor"].as_str().map(str::to_owned);
        pages.push(body);
        match next {
            Some(cursor) => {
                uri = format!(
                    "/unified/crm/accounts?connection=crm&cursor={}",
                    query_value(&cursor)
                )
            }
            None => return pages,
        }
    }
}

#[tokio::test]
async fn a_walk_serves_every_record_once_and_ends_with_a_null_cursor() {
    let (state, _script, _dir) = state().await;
    // page_size above the adapter's largest page is clamped to it (2).
    let pages = walk(&state, "svc", "&page_size=50").await;
    assert_eq!(pages.len(), 3);
    let records: Vec<&Value> = pages
        .iter()
        .flat_map(|p| p["data"].as_array().unwrap())
        .collect();
    let remote: Vec<&str> = records
        .iter()
        .map(|r| r["remote_id"].as_str().unwrap())
        .collect();
    assert_eq!(remote, ["r0", "r1", "r2", "r3", "r4"]);
    let mut ids: Vec<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), RECORDS);
    let first = records[0];
    assert_eq!(first["connection"], "crm");
    assert_eq!(first["provider"], "testcrm");
    assert_eq!(first["name"], "Account 0");
    assert!(first.get("remote_data").is_none(), "raw only when asked");
    // The same walk again gives the same ids; the last page handed the sync token over.
    let again = walk(&state, "svc", "").await;
    assert_eq!(again[0]["data"][0]["id"], first["id"]);
    assert_eq!(
        state
            .sync
            .sync_token("svc", "crm", Model::Account)
            .await
            .as_deref(),
        Some("tok-1")
    );
}

#[tokio::test]
async fn a_cursor_is_refused_to_another_caller_edited_or_with_other_parameters() {
    let (state, _script, _dir) = state().await;
    let (_, first) = get(
        &state,
        "svc",
        "/unified/crm/accounts?connection=crm&page_size=2&include_raw=true",
    )
    .await;
    assert_eq!(first["data"][0]["remote_data"]["id"], "r0");
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let at = |connection: &str, cursor: &str| {
        format!(
            "/unified/crm/accounts?connection={connection}&cursor={}",
            query_value(cursor)
        )
    };
    let (status, body) = get(&state, "other", &at("crm", &cursor)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), ("bad_request", "invalid_cursor"));
    let (_, body) = get(&state, "svc", &at("crm2", &cursor)).await;
    assert_eq!(code(&body), ("bad_request", "invalid_cursor"));
    let mut edited = cursor.clone().into_bytes();
    let middle = edited.len() / 2;
    edited[middle] = if edited[middle] == b'A' { b'B' } else { b'A' };
    let edited = String::from_utf8(edited).unwrap();
    let (_, body) = get(&state, "svc", &at("crm", &edited)).await;
    assert_eq!(code(&body), ("bad_request", "invalid_cursor"));
    // The walk's parameters come with the cursor: repeating them is fine, changing them is not.
    let (_, body) = get(
        &state,
        "svc",
        &format!("{}&include_raw=false", at("crm", &cursor)),
    )
    .await;
    assert_eq!(code(&body), ("bad_request", "cursor_parameters_differ"));
    let (status, body) = get(
        &state,
        "svc",
        &format!("{}&page_size=2&include_raw=true", at("crm", &cursor)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"][0]["remote_id"], "r2");
    assert_eq!(
        body["data"][0]["remote_data"]["id"], "r2",
        "include_raw stays"
    );
}

#[tokio::test]
async fn a_record_is_fetched_by_the_id_a_list_gave() {
    let (state, _script, _dir) = state().await;
    let (_, page) = get(&state, "svc", "/unified/crm/accounts?connection=crm").await;
    let id = page["data"][1]["id"].as_str().unwrap().to_owned();
    let (status, record) = get(
        &state,
        "svc",
        &format!("/unified/crm/accounts/{id}?connection=crm&include_raw=true"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{record}");
    assert_eq!(record["id"], id.as_str());
    assert_eq!(record["remote_id"], "r1");
    assert_eq!(record["remote_data"]["name"], "Account 1");
    // The same id on another connection names nothing there.
    let (status, body) = get(
        &state,
        "svc",
        &format!("/unified/crm/accounts/{id}?connection=crm2"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), ("not_found", "unknown_record_id"));
    // A record the provider does not have: its 404, classified, with its body inside.
    let missing = records::record_id("crm", Model::Account, "r99");
    let (status, body) = get(
        &state,
        "svc",
        &format!("/unified/crm/accounts/{missing}?connection=crm"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), ("not_found", "provider_error"));
    assert_eq!(body["error"]["provider_error"]["error"], "no_such_item");
    assert_eq!(body["error"]["provider"], "testcrm");
}

#[tokio::test]
async fn an_expired_sync_token_walks_again_from_the_start() {
    let (state, script, _dir) = state().await;
    let done = WalkDone {
        caller: "svc",
        connection: "crm",
        model: Model::Account,
        high_water: Some("2024-12-31T00:00:00Z".into()),
        records_seen: 0,
        sync_token: Some("expired".into()),
    };
    state.sync.walk_completed(done).await;
    let before = script.requests.load(Ordering::SeqCst);
    let (status, body) = get(
        &state,
        "svc",
        "/unified/crm/accounts?connection=crm&modified_since=2025-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"][0]["remote_id"], "r0");
    assert_eq!(
        script.requests.load(Ordering::SeqCst) - before,
        2,
        "the refused token, then the first page without it"
    );
}

/// An error inside an HTTP 200 that is not "walk again" is the caller's envelope, classified
/// by the adapter, with the provider's body inside.
#[tokio::test]
async fn an_error_inside_a_success_is_the_envelope_unless_it_asks_for_a_full_walk() {
    let (state, _script, _dir) = state().await;
    let done = WalkDone {
        caller: "svc",
        connection: "crm",
        model: Model::Account,
        high_water: Some("2024-12-31T00:00:00Z".into()),
        records_seen: 0,
        sync_token: Some("refused".into()),
    };
    state.sync.walk_completed(done).await;
    let (status, body) = get(
        &state,
        "svc",
        "/unified/crm/accounts?connection=crm&modified_since=2025-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(code(&body), ("validation", "provider_error"));
    assert_eq!(body["error"]["provider_error"]["error"], "invalid_input");
}

#[tokio::test]
async fn refusals_are_typed_envelopes() {
    let (state, script, _dir) = state().await;
    script.html_next.store(true, Ordering::SeqCst);
    let (status, body) = get(&state, "svc", "/unified/crm/accounts?connection=crm").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        code(&body),
        ("provider_unavailable", "malformed_provider_answer")
    );
    assert!(!body.to_string().contains("Maintenance"));
    for (caller, uri, status, expected) in [
        (
            "nogrant",
            "/unified/crm/accounts?connection=crm",
            StatusCode::FORBIDDEN,
            ("forbidden", "path_not_granted"),
        ),
        (
            "svc",
            "/unified/crm/accounts?connection=nope",
            StatusCode::NOT_FOUND,
            ("not_found", "unknown_connection"),
        ),
        (
            "svc",
            "/unified/crm/contacts?connection=crm",
            StatusCode::NOT_FOUND,
            ("not_found", "model_not_served"),
        ),
        (
            "svc",
            "/unified/crm/accounts?connection=plain",
            StatusCode::NOT_FOUND,
            ("not_found", "unified_not_served"),
        ),
        (
            "svc",
            "/unified/crm/things?connection=crm",
            StatusCode::NOT_FOUND,
            ("not_found", "unknown_unified_path"),
        ),
        (
            "svc",
            "/unified/crm/accounts?connection=crm&modified_since=last-week",
            StatusCode::BAD_REQUEST,
            ("bad_request", "invalid_modified_since"),
        ),
        (
            "nobody",
            "/unified/crm/accounts?connection=crm",
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            ("unauthenticated", "unknown_caller"),
        ),
    ] {
        let (got, body) = get(&state, caller, uri).await;
        assert_eq!((got, code(&body)), (status, expected), "{uri}: {body}");
    }
}

#[test]
fn only_the_reserved_id_is_reserved() {
    assert!(is_reserved("unified"));
    assert!(!is_reserved("unified-crm"));
}

#[test]
fn the_high_water_mark_is_the_latest_time_seen() {
    let mut mark = None;
    for seen in [
        "2025-06-01T00:00:00Z",
        "2025-06-01T00:00:00.500Z",
        "2025-05-01T00:00:00Z",
        "not a time",
    ] {
        mark = later(mark, Some(seen));
    }
    assert_eq!(mark.as_deref(), Some("2025-06-01T00:00:00.500Z"));
    assert_eq!(later(mark.clone(), None), mark);
}

#[tokio::test]
async fn a_sync_token_is_offered_only_when_its_walk_covers_modified_since() {
    let (state, script, _dir) = state().await;
    let done = WalkDone {
        caller: "svc",
        connection: "crm",
        model: Model::Account,
        high_water: Some("2025-06-01T00:00:00Z".into()),
        records_seen: 5,
        sync_token: Some("expired".into()),
    };
    state.sync.walk_completed(done).await;
    let asked = |since: &'static str| {
        let state = state.clone();
        async move {
            get(
                &state,
                "svc",
                &format!("/unified/crm/accounts?connection=crm&modified_since={since}"),
            )
            .await
        }
    };
    // Earlier than what the token's walk saw: a full walk, the token is not sent.
    let before = script.requests.load(Ordering::SeqCst);
    let (status, _) = asked("2025-01-01T00:00:00Z").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(script.requests.load(Ordering::SeqCst) - before, 1);
    // From its high-water mark on: the token goes (and, refused, costs one more call).
    let before = script.requests.load(Ordering::SeqCst);
    let (status, _) = asked("2025-06-01T00:00:00Z").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(script.requests.load(Ordering::SeqCst) - before, 2);
}
