//! One request, start to end. [`run`] is the request's life on one page: each stage is one
//! call into the module that owns it, and any stage may end the request early with a
//! [`GatewayError`], which becomes the caller's response in one place
//! ([`GatewayError::into_response`]). Whatever happens, the request is recorded once and the
//! record handed to every sink ([`crate::telemetry::record`]).
//!
//! ```text
//! route → caller → policy → body → request guards → exchange → respond → record
//!                                  (SOQL; limits,   (credential, send,
//!                                   circuits)        401 refresh-and-replay)
//! ```
//!
//! The stages are composed by hand rather than as tower layers: see the README's design notes
//! ("Why the data plane is not a tower stack").

use crate::body::ProxyBody;
use crate::error::{Category, ErrorContext, GatewayError};
use crate::forward::exchange::{self, Outbound};
use crate::respond;
use crate::stages::caller::PeerIdentity;
use crate::stages::{body, caller, hygiene, policy, route, soql};
use crate::state::{AppState, ConnectionRuntime};
use crate::telemetry::ids;
use crate::telemetry::record::RequestRecord;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::time::Instant;

/// What the pipeline learns about a request as it goes, for errors and the request record.
struct RequestContext<'s> {
    request_id: ids::RequestId,
    method: http::Method,
    connection: Option<&'s ConnectionRuntime>,
    caller: Option<std::sync::Arc<str>>,
    category: Option<Category>,
}

/// Handles one caller request: runs the stages, turns a failure into the error envelope, and
/// records the outcome.
pub(crate) async fn handle(
    state: &AppState,
    peer: PeerIdentity,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    // Decremented on drop, so a request abandoned by its caller (the future is dropped
    // mid-flight) does not leave the gauge counting it.
    let _in_flight = state.metrics.requests.enter();
    let mut recorder = Recorder {
        state,
        started: Instant::now(),
        ctx: RequestContext {
            request_id: ids::request_id(request.headers()),
            // A method too long or malformed to log is recorded as `invalid`.
            method: route::recorded_method(request.method()),
            connection: None,
            caller: None,
            category: None,
        },
        done: false,
    };
    let ctx = &mut recorder.ctx;
    let response = match run(state, &peer, ctx, request).await {
        Ok(response) => response,
        Err(error) => {
            ctx.category = Some(error.category);
            let error_context = ctx.error_context();
            error.log(&error_context);
            error.into_response(&error_context)
        }
    };
    recorder.finish(response.status());
    response
}

/// The request's life.
async fn run<'s>(
    state: &'s AppState,
    peer: &PeerIdentity,
    ctx: &mut RequestContext<'s>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, GatewayError> {
    let (parts, body) = request.into_parts();

    // The request line and header names, before any stage reads them.
    route::check_method(&parts.method)?;
    hygiene::refuse_ambiguous_names(&parts.headers)?;

    // Route: which connection, which provider path.
    let target = route::parse_target(&parts.uri, parts.version)?;
    let connection: &ConnectionRuntime = ctx.connection.insert(state.connection(&target)?);

    // Caller: who is calling.
    let policy_doc = state.policy.load();
    let caller: &str = ctx
        .caller
        .insert(caller::identify(&policy_doc, &parts.headers, peer)?);

    // Policy: may this caller do this?
    let content_length = body::content_length(&parts.headers)?;
    let allowed = policy::authorize(
        &policy_doc,
        caller,
        connection,
        &parts.method,
        &target,
        content_length,
        &state.config.server,
    )?;

    // Body: capped by the grant, buffered when it may need to be sent twice.
    let mut request_body = body::read(
        body,
        content_length,
        allowed.body_limit,
        &state.config.server,
    )
    .await?;

    // Request guards: SOQL, and the provider's query planner (rate limits and circuits join here).
    let mut query = target.query;
    let soql_plan;
    if let Some(guard) = &connection.soql {
        let view = connection.soql_view();
        let request = soql::Request {
            connection: view,
            request_id: ctx.request_id.as_str(),
            caller,
            caller_policy: policy_doc.caller_soql(caller),
            method: &parts.method,
            path: &target.decoded_path,
            query: target.query,
        };
        soql_plan = soql::check(guard, &state.metrics, &request, &request_body)?;
        if let Some(rewritten) = &soql_plan.body {
            request_body = body::RequestBody::Buffered(rewritten.clone());
        }
        query = soql_plan.query_string.as_deref().or(query);
        let accept = parts.headers.get(http::header::ACCEPT);
        soql::explain(guard, view, &state.credentials, accept, &soql_plan).await?;
    }

    // Exchange: credential, send, one refresh-and-replay on a 401.
    let outbound = Outbound {
        method: &parts.method,
        path: target.raw_path,
        query,
        headers: hygiene::outbound(parts.headers, &ctx.request_id),
        body: request_body,
    };
    let response = exchange::exchange(state, connection, outbound).await?;

    // Respond: provider headers cleaned, our request id added.
    Ok(respond::to_caller(response, &ctx.request_id))
}

impl RequestContext<'_> {
    fn error_context(&self) -> ErrorContext<'_> {
        ErrorContext {
            request_id: self.request_id.as_str(),
            connection: self.connection.map(|c| c.id.as_str()),
            provider: self.connection.map(|c| c.provider.name()),
        }
    }
}

/// The status recorded for a request its caller abandoned before the response head (nginx's
/// "client closed request").
const CALLER_GONE: u16 = 499;

/// Records a request once: when it is answered, or, if its caller goes away first (hyper drops
/// the request's future), as abandoned: status 499, category `caller_cancelled`, with the time
/// it had run. Abandoned requests would otherwise be missing from the metrics and the log.
struct Recorder<'s> {
    state: &'s AppState,
    started: Instant,
    ctx: RequestContext<'s>,
    done: bool,
}

impl Recorder<'_> {
    fn finish(&mut self, status: StatusCode) {
        self.done = true;
        let category = self.ctx.category.map_or("none", Category::as_str);
        self.record(status, category);
    }

    fn record(&self, status: StatusCode, category: &'static str) {
        let ctx = &self.ctx;
        self.state.sinks.record(&RequestRecord {
            request_id: ctx.request_id.as_str(),
            connection: ctx.connection.map(|c| c.id.as_str()),
            provider: ctx.connection.map(|c| c.provider.name()),
            caller: ctx.caller.as_deref(),
            method: &ctx.method,
            status,
            category,
            duration: self.started.elapsed(),
        });
    }
}

impl Drop for Recorder<'_> {
    fn drop(&mut self) {
        if !self.done {
            let status = StatusCode::from_u16(CALLER_GONE).unwrap_or(StatusCode::BAD_REQUEST);
            self.record(status, "caller_cancelled");
        }
    }
}
