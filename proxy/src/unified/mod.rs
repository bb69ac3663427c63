//! The unified API: `GET /unified/{crm,ats}/<collection>[/{id}]?connection=<id>` answers
//! canonical records from any provider whose adapter serves the model, one page at a time,
//! with one sealed cursor whatever the provider's pagination style. `unified` is a reserved
//! connection id, so these requests come through the pipeline's route stage like any other and
//! meet the same caller identity and scope policy (a grant names `/unified/crm/**` on a
//! connection as it names provider paths); their provider calls go through the same SOQL guard
//! and exchange ([`walk`]).
//!
//! ```text
//! route → [unified] method → resource → connection → caller → policy → adapter → walk → page
//! ```
//!
//! - [`request`]: what the request line asks (model, record, walk parameters);
//! - [`cursor`]: the sealed cursor; [`records`]: the records and their ids;
//! - [`walk`]: sending the adapter's calls and reading their answers;
//! - [`openapi`]: the OpenAPI 3.1 document of all of it.

pub(crate) mod cursor;
pub(crate) mod openapi;
pub(crate) mod records;
pub(crate) mod request;
pub(crate) mod sync_state;
pub(crate) mod walk;

use crate::error::{Category, GatewayError};
use crate::pipeline::recorder::{Endpoint, RequestContext};
use crate::respond::Relayed;
use crate::stages::caller::{self, PeerIdentity};
use crate::stages::route::Target;
use crate::state::{AppState, ConnectionRuntime};
use bytes::Bytes;
use cursor::{Binding, CursorError, CursorKey, CursorState};
use gatehouse_adapters::unified::{ListAsk, Page, UnifiedApi, UnifiedError, WalkState};
use gatehouse_models::{Model, Record};
use http::{header, HeaderValue, Response};
use request::{Params, Resource};
use serde::Serialize;
use std::time::SystemTime;
use sync_state::WalkDone;
use walk::Sender;

/// The connection id the unified API lives under; no connection may take it.
pub(crate) const RESERVED_ID: &str = "unified";

/// What the unified API keeps for the process's life (its sync state is `AppState::sync`).
#[derive(Debug)]
pub(crate) struct UnifiedState {
    pub cursor_key: CursorKey,
}

impl UnifiedState {
    /// The cursor key from the store's key (see [`cursor`]), read where the store reads it:
    /// `key_env`, then `key_file`, then the embedded store's generated `store.key`. Without
    /// any, cursors are sealed with a key of this process alone, and the log says so.
    pub fn start(store: &gatehouse_store::StoreConfig) -> Self {
        let cursor_key = match store_key_bytes(store) {
            Some(bytes) => CursorKey::derive(&bytes),
            None => {
                tracing::warn!("no store key: unified API cursors are sealed with a key of this process only, so another process refuses them");
                CursorKey::random()
            }
        };
        UnifiedState { cursor_key }
    }
}

fn store_key_bytes(store: &gatehouse_store::StoreConfig) -> Option<Vec<u8>> {
    use base64::Engine;
    let text = std::env::var(&store.key_env)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| {
            let file = store.key_file.as_ref()?;
            std::fs::read_to_string(file).ok()
        })
        .or_else(|| std::fs::read_to_string(store.data_dir.join("store.key")).ok())?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    (bytes.len() == 32).then_some(bytes)
}

/// Serves one `/unified/...` request (`target.connection` is [`RESERVED_ID`]).
pub(crate) async fn handle(
    state: &AppState,
    peer: &PeerIdentity,
    ctx: &mut RequestContext,
    parts: &http::request::Parts,
    target: &Target<'_>,
) -> Result<Response<Relayed>, GatewayError> {
    ctx.endpoint = Some(Endpoint::new(&parts.uri, parts.uri.path()));
    if !matches!(parts.method, http::Method::GET | http::Method::HEAD) {
        return Err(GatewayError::bad_request(
            "method_not_allowed",
            "the unified API answers GET and HEAD only",
        ));
    }
    let (model, record_id) = match request::resource(target.raw_path)? {
        Resource::OpenApi => return Ok(json_response(ctx, openapi::document_bytes())),
        Resource::List(model) => (model, None),
        Resource::Record(model, id) => (model, Some(id)),
    };
    let params = Params::parse(target.query)?;

    // Route: the connection the caller names.
    let wanted = params.connection()?;
    let connection = state.connections.get(wanted).ok_or_else(|| {
        GatewayError::new(
            Category::NotFound,
            "unknown_connection",
            format!("no connection named {wanted:?}"),
        )
    })?;
    let connection: &ConnectionRuntime = ctx.connection.insert(connection.clone());

    // Caller and policy, as for a provider path: the grant names the unified path.
    let policy = state.policy.load();
    let caller: &str = ctx
        .caller
        .insert(caller::identify(&policy, &parts.headers, peer)?);
    let path = format!("/{RESERVED_ID}{}", target.decoded_path);
    policy.authorize(caller, &connection.id, parts.method.as_str(), &path, None)?;

    // The adapter: does this provider serve the model?
    let provider = connection.provider.name();
    let api = connection.provider.unified().ok_or_else(|| {
        GatewayError::new(
            Category::NotFound,
            "unified_not_served",
            format!(
                "connection {:?} ({provider}) does not serve the unified API",
                connection.id
            ),
        )
    })?;
    if !api.models().contains(&model) {
        return Err(GatewayError::new(
            Category::NotFound,
            "model_not_served",
            format!(
                "connection {:?} ({provider}) does not serve {}",
                connection.id,
                model.label()
            ),
        ));
    }

    let trace = crate::telemetry::ids::traceparent(&trace_headers(&parts.headers));
    ctx.trace_id = crate::telemetry::record::TraceId::of(&trace);
    let sender = Sender {
        state,
        connection,
        request_id: &ctx.request_id,
        caller,
        policy: &policy,
        trace,
    };
    let asked = Asked {
        sender: &sender,
        api,
        model,
        params: &params,
    };
    let body = match record_id {
        Some(id) => asked.record(id).await?,
        None => asked.page(state).await?,
    };
    Ok(json_response(ctx, body))
}

/// The caller's trace context alone (no other caller header reaches a provider).
fn trace_headers(headers: &http::HeaderMap) -> http::HeaderMap {
    let mut kept = http::HeaderMap::new();
    if let Some(value) = headers.get(crate::stages::hygiene::TRACEPARENT) {
        kept.insert(crate::stages::hygiene::TRACEPARENT, value.clone());
    }
    kept
}

fn json_response(ctx: &RequestContext, body: Bytes) -> Response<Relayed> {
    let mut response = Response::new(Relayed::Buffered(Some(body)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(crate::telemetry::ids::X_REQUEST_ID, ctx.request_id.header());
    response
}

/// One unified request past its checks.
struct Asked<'a> {
    sender: &'a Sender<'a>,
    api: &'a dyn UnifiedApi,
    model: Model,
    params: &'a Params,
}

/// A list answer.
#[derive(Serialize)]
struct ListBody {
    data: Vec<Record>,
    next_cursor: Option<String>,
}

/// Where a walk stands when a page is asked.
struct Walk {
    resume: Option<WalkState>,
    /// As the caller asked it (the cursor keeps the asked size; it is clamped at each use).
    page_size: u32,
    modified_since: Option<(String, SystemTime)>,
    include_raw: bool,
    seen: u64,
    high_water: Option<String>,
    started_at: u64,
}

impl Asked<'_> {
    fn connection(&self) -> &ConnectionRuntime {
        self.sender.connection
    }

    fn binding(&self) -> Binding<'_> {
        Binding {
            caller: self.sender.caller,
            connection: &self.connection().id,
            model: self.model,
        }
    }

    /// One record, by the id a list handed out.
    async fn record(&self, id: &str) -> Result<Bytes, GatewayError> {
        let params = self.params;
        if params.cursor.is_some() || params.page_size.is_some() || params.modified_since.is_some()
        {
            return Err(GatewayError::bad_request(
                "list_parameter_on_record",
                "cursor, page_size and modified_since apply to lists, not to one record",
            ));
        }
        let connection = self.connection();
        let remote = records::remote_id_of(&connection.id, self.model, id).ok_or_else(|| {
            GatewayError::new(
                Category::NotFound,
                "unknown_record_id",
                format!(
                    "{id:.64} is not the id of a {} record of connection {:?}",
                    self.model.label(),
                    connection.id
                ),
            )
        })?;
        let call = self
            .api
            .get_call(self.model, &remote)
            .map_err(|e| walk::unified_error(connection, e, None))?;
        let mut answered = self.sender.send(call).await?;
        if let Some(reported) = answered.reported.take() {
            return Err(reported);
        }
        let mapped = self
            .api
            .read_record(self.model, &answered.answer())
            .map_err(|e| walk::unified_error(connection, e, Some(&answered)))?;
        let record = records::record(
            &connection.id,
            connection.provider.name(),
            self.model,
            mapped,
            params.include_raw.unwrap_or(false),
        );
        to_json(&record)
    }

    /// The walk this request continues (its cursor's) or starts.
    fn walk(&self, key: &CursorKey) -> Result<Walk, GatewayError> {
        let params = self.params;
        let Some(cursor) = &params.cursor else {
            return Ok(Walk {
                resume: None,
                page_size: params.page_size.unwrap_or(request::DEFAULT_PAGE_SIZE),
                modified_since: params.modified_since.clone(),
                include_raw: params.include_raw.unwrap_or(false),
                seen: 0,
                high_water: None,
                started_at: unix_now(),
            });
        };
        let opened = key
            .open(&self.binding(), cursor, unix_now())
            .map_err(|e| match e {
                CursorError::Invalid => GatewayError::bad_request("invalid_cursor", e.to_string()),
                CursorError::Expired => GatewayError::bad_request("expired_cursor", e.to_string()),
            })?;
        let modified_since = match &opened.modified_since {
            Some(text) => Some((text.clone(), request::rfc3339(text)?)),
            None => None,
        };
        let contradicts = params.page_size.is_some_and(|p| p != opened.page_size)
            || params.include_raw.is_some_and(|r| r != opened.include_raw)
            || params
                .modified_since
                .as_ref()
                .is_some_and(|(_, at)| Some(*at) != modified_since.as_ref().map(|m| m.1));
        if contradicts {
            return Err(GatewayError::bad_request(
                "cursor_parameters_differ",
                "page_size, modified_since and include_raw are the walk's, fixed by its first page: send the cursor alone, or start a new walk",
            ));
        }
        Ok(Walk {
            resume: Some(opened.walk),
            page_size: opened.page_size,
            modified_since,
            include_raw: opened.include_raw,
            seen: opened.seen,
            high_water: opened.high_water,
            started_at: opened.started_at,
        })
    }

    /// One page of a walk, and the cursor to the next.
    async fn page(&self, state: &AppState) -> Result<Bytes, GatewayError> {
        let key = &state.unified.cursor_key;
        let mut walk = self.walk(key)?;
        let (caller, connection, model) = (self.sender.caller, self.connection(), self.model);
        let page = match self.fetch(state, &mut walk).await {
            Ok(page) => page,
            Err(error) => {
                state
                    .sync
                    .walk_failed(caller, &connection.id, model, error.category)
                    .await;
                return Err(error);
            }
        };
        let provider = connection.provider.name();
        let mut data = Vec::with_capacity(page.records.len());
        for mapped in page.records {
            walk.high_water = later(walk.high_water.take(), mapped.remote_modified_at.as_deref());
            data.push(records::record(
                &connection.id,
                provider,
                model,
                mapped,
                walk.include_raw,
            ));
        }
        let served = data.len() as u64;
        walk.seen += served;
        state.sync.page_served(&connection.id, model, served);
        let next_cursor = match page.next {
            Some(next) => {
                let mut sealed = CursorState::new(next, walk.page_size, walk.started_at);
                sealed.modified_since = walk.modified_since.map(|(text, _)| text);
                sealed.include_raw = walk.include_raw;
                sealed.seen = walk.seen;
                sealed.high_water = walk.high_water;
                Some(key.seal(&self.binding(), &sealed).ok_or_else(|| {
                    GatewayError::new(
                        Category::Internal,
                        "cursor_seal",
                        "the cursor could not be sealed",
                    )
                })?)
            }
            None => {
                let done = WalkDone {
                    caller,
                    connection: &connection.id,
                    model,
                    high_water: walk.high_water,
                    records_seen: walk.seen,
                    sync_token: page.sync_token,
                };
                state.sync.walk_completed(done).await;
                None
            }
        };
        to_json(&ListBody { data, next_cursor })
    }

    /// The provider sync token an incremental walk from `since` may go by: the one the last
    /// completed walk handed out, when that walk saw everything up to `since` (its high-water
    /// mark is not later). A token only yields what changed after its walk, so for an earlier
    /// `since` it would leave out records the caller asked for.
    async fn sync_token_for(&self, state: &AppState, since: SystemTime) -> Option<String> {
        let (caller, connection, model) = (self.sender.caller, &self.connection().id, self.model);
        let sync = &state.sync;
        let filter = gatehouse_store::SyncFilter {
            caller: Some(caller.to_owned()),
            connection: Some(connection.clone()),
            model: Some(model.label().to_owned()),
        };
        let kept = sync.list(filter).await.ok()?.into_iter().next()?;
        let covered = kept
            .high_water
            .as_deref()
            .is_some_and(|mark| request::rfc3339(mark).is_ok_and(|seen| seen <= since));
        if !covered {
            return None;
        }
        sync.sync_token(caller, connection, model).await
    }

    /// Asks the provider for the page `walk` stands at; when the provider says its sync token
    /// is no longer good, walks again from the first page without one (once).
    async fn fetch(&self, state: &AppState, walk: &mut Walk) -> Result<Page, GatewayError> {
        let (api, model, connection) = (self.api, self.model, self.connection());
        let page_size = walk.page_size.clamp(1, api.max_page_size(model).max(1));
        let mut sync_token = match (&walk.resume, &walk.modified_since) {
            (None, Some((_, since))) => self.sync_token_for(state, *since).await,
            _ => None,
        };
        let mut resynced = false;
        loop {
            let ask = ListAsk {
                page_size,
                modified_since: walk.modified_since.as_ref().map(|m| m.1),
                resume: walk.resume.as_ref(),
                sync_token: sync_token.as_deref(),
            };
            let call = api
                .list_call(model, &ask)
                .map_err(|e| walk::unified_error(connection, e, None))?;
            let mut answered = self.sender.send(call).await?;
            let page = api.read_page(model, &ask, &answered.answer());
            if matches!(page, Err(UnifiedError::ResyncNeeded)) && !resynced {
                tracing::info!(
                    connection = connection.id,
                    model = model.label(),
                    "the provider asked for a full walk; walking again from the first page"
                );
                resynced = true;
                sync_token = None;
                walk.resume = None;
                walk.seen = 0;
                walk.high_water = None;
                continue;
            }
            // Any other error the provider reported inside a 2xx answer is that error.
            if let Some(reported) = answered.reported.take() {
                return Err(reported);
            }
            return page.map_err(|e| walk::unified_error(connection, e, Some(&answered)));
        }
    }
}

/// The later of two RFC 3339 times (compared as times: `...:00Z` and `...:00.5Z` do not sort
/// as text).
fn later(current: Option<String>, seen: Option<&str>) -> Option<String> {
    let Some(seen) = seen else {
        return current;
    };
    let Ok(seen_at) = request::rfc3339(seen) else {
        return current;
    };
    match current.as_deref().map(request::rfc3339) {
        Some(Ok(at)) if at >= seen_at => current,
        _ => Some(seen.to_owned()),
    }
}

fn to_json(value: &impl Serialize) -> Result<Bytes, GatewayError> {
    serde_json::to_vec(value).map(Bytes::from).map_err(|e| {
        GatewayError::new(
            Category::Internal,
            "unified_serialise",
            "the answer could not be written",
        )
        .with_source(e)
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The unified API answers for connections of every id but its own.
pub(crate) fn is_reserved(connection: &str) -> bool {
    connection == RESERVED_ID
}

#[cfg(test)]
mod tests;
