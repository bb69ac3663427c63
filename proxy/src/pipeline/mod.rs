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

pub(crate) mod recorder;

use crate::body::ProxyBody;
use crate::error::GatewayError;
use crate::forward::exchange::{self, Outbound};
use crate::respond;
use crate::stages::caller::PeerIdentity;
use crate::stages::{body, caller, hygiene, policy, route, soql};
use crate::state::{AppState, ConnectionRuntime};
use crate::telemetry::ids;
use crate::unified;
use http::{Request, Response};
use hyper::body::Incoming;
use recorder::{Endpoint, Recorder, RequestContext};

/// Handles one caller request: runs the stages, turns a failure into the error envelope, and
/// records the outcome (at the end of the response body: see [`recorder`]).
pub(crate) async fn handle(
    state: &AppState,
    peer: PeerIdentity,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    // Decremented on drop, so a request abandoned by its caller (the future is dropped
    // mid-flight) does not leave the gauge counting it.
    let _in_flight = state.metrics.requests.enter();
    let mut recorder = Recorder::new(
        state.sinks.clone(),
        RequestContext::new(
            ids::request_id(request.headers()),
            // A method too long or malformed to log is recorded as `invalid`.
            route::recorded_method(request.method()),
        ),
    );
    match run(state, &peer, &mut recorder.ctx, request).await {
        Ok(response) => respond::recorded(response, recorder),
        Err(error) => {
            let ctx = &mut recorder.ctx;
            ctx.category = Some(error.category);
            ctx.code = error.code;
            let error_context = ctx.error_context();
            error.log(&error_context);
            respond::recorded(error.into_response(&error_context), recorder)
        }
    }
}

/// The request's life.
async fn run(
    state: &AppState,
    peer: &PeerIdentity,
    ctx: &mut RequestContext,
    request: Request<Incoming>,
) -> Result<Response<respond::Relayed>, GatewayError> {
    let (parts, body) = request.into_parts();

    // The request line and header names, before any stage reads them.
    route::check_method(&parts.method)?;
    hygiene::refuse_ambiguous_names(&parts.headers)?;

    // Route: which connection, which provider path.
    let target = route::parse_target(&parts.uri, parts.version)?;
    if unified::is_reserved(target.connection) {
        return unified::handle(state, peer, ctx, &parts, &target).await;
    }
    let connection: &ConnectionRuntime = ctx.connection.insert(state.connection(&target)?.clone());
    ctx.endpoint = Some(Endpoint::new(&parts.uri, target.raw_path));

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
    ctx.bytes_in = request_body.bytes_in();

    // Request guards: SOQL, and the provider's query planner (rate limits and circuits join here).
    let asked = soql::Asked {
        request_id: ctx.request_id.as_str(),
        caller,
        policy: &policy_doc,
        method: &parts.method,
        path: &target.decoded_path,
        query: target.query,
        headers: &parts.headers,
        keyset_walk: false,
    };
    let view = connection.soql_view();
    let rewritten_query = soql::guard(
        view,
        &state.metrics,
        &state.credentials,
        asked,
        &mut request_body,
    )
    .await?;
    let query = rewritten_query.as_deref().or(target.query);

    // Exchange: credential, send, one refresh-and-replay on a 401.
    let (headers, trace_id) = hygiene::outbound(parts.headers, &ctx.request_id);
    ctx.trace_id = trace_id;
    let outbound = Outbound {
        method: &parts.method,
        path: target.raw_path,
        query,
        headers,
        body: request_body,
    };
    let response = exchange::exchange(state, connection, outbound)
        .await
        .map_err(|e| body::blame_stalled_caller(e, &ctx.bytes_in))?;

    // Respond: provider headers cleaned, our request id added, a provider error's code read.
    respond::to_caller(response, ctx).await
}
