//! One request, start to end. Each stage is a call into the module that owns it and may end
//! the request early with a [`GatewayError`]; errors become responses in one place
//! ([`GatewayError::into_response`]).
//!
//! ```text
//! route → caller → policy → request guards → credentials → upstream (401 replay) → response → record
//! ```

use crate::body::ProxyBody;
use crate::error::{Category, ErrorContext, GatewayError};
use crate::headers::{self, X_REQUEST_ID};
use crate::identity::{self, PeerIdentity};
use crate::metrics::{Method, RequestLabelRefs, StatusClass};
use crate::request_body::RequestBody;
use crate::routing;
use crate::soql_stage;
use crate::state::{AppState, ConnectionRuntime};
use crate::upstream::{classify, UpstreamFailure};
use gatehouse_guards::policy::Denial;
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::time::Instant;

/// What the pipeline learns about a request as it goes, for errors, metrics and logs.
struct RequestContext<'s> {
    request_id: headers::RequestId,
    method: http::Method,
    connection: Option<&'s ConnectionRuntime>,
    caller: Option<std::sync::Arc<str>>,
    category: Option<Category>,
}

impl RequestContext<'_> {
    fn error_context(&self) -> ErrorContext<'_> {
        ErrorContext {
            request_id: self.request_id.as_str(),
            connection: self.connection.map(|c| c.id.as_str()),
            provider: self.connection.map(|c| c.profile.name.as_str()),
        }
    }
}

pub async fn handle(
    state: &AppState,
    peer: PeerIdentity,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    // Decremented on drop, so a request abandoned by its caller (the future is dropped
    // mid-flight) does not leave the gauge counting it.
    let _in_flight = state.metrics.requests.enter();
    // Recorded however the request ends: answered, or abandoned by its caller.
    let mut request_record = Recorder {
        state,
        started: Instant::now(),
        ctx: RequestContext {
            request_id: headers::request_id(request.headers()),
            method: routing::recorded_method(request.method()),
            connection: None,
            caller: None,
            category: None,
        },
        done: false,
    };
    let ctx = &mut request_record.ctx;
    let response = match run(state, &peer, ctx, request).await {
        Ok(response) => response,
        Err(error) => {
            ctx.category = Some(error.category);
            if error.category == Category::Internal {
                tracing::error!(request_id = %ctx.request_id, error = %error, "internal error");
            }
            error.into_response(&ctx.error_context())
        }
    };
    request_record.finish(response.status());
    response
}

/// The status recorded for a request its caller abandoned before the response head (nginx's
/// "client closed request").
const CALLER_GONE: u16 = 499;

/// Records a request once: when it is answered, or, if its caller goes away first (hyper drops
/// the request's future), as abandoned: status 499, category `caller_cancelled`, with the time
/// it had run. Abandoned requests would otherwise be missing from `requests_total`, the latency
/// histogram and the access log.
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
        record(self.state, &self.ctx, status, category, self.started);
    }
}

impl Drop for Recorder<'_> {
    fn drop(&mut self) {
        if !self.done {
            let status = StatusCode::from_u16(CALLER_GONE).unwrap_or(StatusCode::BAD_REQUEST);
            record(
                self.state,
                &self.ctx,
                status,
                "caller_cancelled",
                self.started,
            );
        }
    }
}

async fn run<'s>(
    state: &'s AppState,
    peer: &PeerIdentity,
    ctx: &mut RequestContext<'s>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, GatewayError> {
    let (parts, body) = request.into_parts();

    // Request line and header names, before any stage reads them.
    routing::check_method(&parts.method)?;
    headers::refuse_ambiguous_names(&parts.headers)?;

    // Route: which connection, which provider path.
    let target = routing::parse_target(&parts.uri, parts.version)?;
    let connection: &ConnectionRuntime =
        state.connections.get(target.connection).ok_or_else(|| {
            GatewayError::new(
                Category::NotFound,
                "unknown_connection",
                format!("no connection named {:?}", target.connection),
            )
        })?;
    ctx.connection = Some(connection);

    // Caller: who is calling.
    let policy = state.policy.load();
    let caller: &str = ctx
        .caller
        .insert(identity::identify(&policy, &parts.headers, peer)?);

    // Policy: may this caller do this?
    let content_length = content_length(&parts.headers)?;
    let method_override = connection.profile.method_override_param.as_deref();
    let method_override = routing::method_override(target.query, method_override)?;
    let allowed = policy
        .authorize_with_override(
            caller,
            &connection.id,
            parts.method.as_str(),
            method_override.as_deref(),
            &target.decoded_path,
            content_length,
        )
        .map_err(denial)?;
    let server = &state.config.server;
    let body_limit = allowed
        .max_body_bytes
        .map_or(server.max_body_bytes, |l| l.min(server.max_body_bytes));

    // A caller that trickles its body must not hold the request open for ever. (Most requests
    // have no body at all, and need no timer.)
    let mut body = if body.is_end_stream() {
        RequestBody::Empty
    } else {
        let prepare =
            RequestBody::prepare(body, content_length, body_limit, server.replay_buffer_bytes);
        tokio::time::timeout(server.request_timeout, prepare)
            .await
            .map_err(|_| {
                GatewayError::bad_request(
                    "body_read_timeout",
                    "the request body did not arrive in time",
                )
            })??
    };

    // Request guards: SOQL (rate limits and circuits join here).
    let soql = state.soql.get(&connection.id);
    let soql_plan = match soql {
        Some(guard) => {
            let request = soql_stage::Request {
                connection,
                caller,
                caller_policy: policy.caller_soql(caller),
                method: &parts.method,
                path: &target.decoded_path,
                query: target.query,
            };
            soql_stage::check(guard, &state.metrics, &request, &body)?
        }
        None => soql_stage::SoqlPlan::default(),
    };
    if let Some(rewritten) = soql_plan.body.clone() {
        body = RequestBody::Buffered(rewritten);
    }
    let query = soql_plan.query_string.as_deref().or(target.query);
    let mut outbound = parts.headers;
    headers::sanitize_request(&mut outbound);
    outbound.insert(X_REQUEST_ID, ctx.request_id.header());
    outbound.insert(headers::TRACEPARENT, headers::traceparent(&outbound));

    // Credentials, upstream, and one refresh-and-replay on a 401.
    let credentials = &state.credentials;
    let applied = credentials
        .apply(&connection.id, &mut outbound)
        .await
        .map_err(credential_error)?;
    let base = upstream_base(connection, &applied);
    let to = base.join(target.raw_path, query)?;
    if let Some(guard) = soql {
        soql_stage::explain(guard, connection, base, &outbound, &soql_plan).await?;
    }
    // The headers are kept for a replay only where a 401 can be cured by a fresh credential.
    let may_replay = connection.profile.replay_on_401 && credentials.refreshable(&connection.id);
    let first_headers = if may_replay {
        outbound.clone()
    } else {
        std::mem::take(&mut outbound)
    };
    let mut response = send(
        state,
        connection,
        &parts.method,
        &to,
        first_headers,
        &mut body,
    )
    .await?;
    let replay = may_replay && response.status() == StatusCode::UNAUTHORIZED;
    if replay
        && credentials
            .on_unauthorized(&connection.id, &applied)
            .await
            .map_err(credential_error)?
    {
        if !body.replayable() {
            // The credential is fresh again, but this body streamed through and is gone.
            return Err(GatewayError::new(
                Category::UpstreamUnavailable,
                "not_replayed_body_too_large",
                format!(
                    "{} rejected the credential; it has been refreshed, but a request body over replay_buffer_bytes cannot be replayed: send the request again",
                    connection.profile.name
                ),
            )
            .with_retry_after(std::time::Duration::from_secs(1)));
        }
        let applied = credentials
            .apply(&connection.id, &mut outbound)
            .await
            .map_err(credential_error)?;
        let to = upstream_base(connection, &applied).join(target.raw_path, query)?;
        response = send(state, connection, &parts.method, &to, outbound, &mut body).await?;
    }

    // Response: provider headers cleaned, our request id added.
    let (mut head, incoming) = response.into_parts();
    headers::sanitize_response(&mut head.headers);
    head.headers.insert(X_REQUEST_ID, ctx.request_id.header());
    Ok(Response::from_parts(head, incoming.boxed_unsync()))
}

async fn send(
    state: &AppState,
    connection: &ConnectionRuntime,
    method: &http::Method,
    to: &routing::UpstreamTarget,
    mut headers: HeaderMap,
    body: &mut RequestBody,
) -> Result<Response<crate::upstream::UpstreamBody>, GatewayError> {
    match body.len_hint() {
        Some(len) if len > 0 || method_has_body(method) => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        Some(_) => {}
        None => {
            headers.remove(header::CONTENT_LENGTH);
        }
    }
    let timeout = state.config.server.request_timeout;
    let sent = connection.clients.send(method, to, headers, body.take());
    match tokio::time::timeout(timeout, sent).await {
        Err(_) => Err(GatewayError::new(
            Category::UpstreamTimeout,
            "upstream_timeout",
            format!(
                "{} did not answer within {} ms",
                connection.profile.name,
                timeout.as_millis()
            ),
        )),
        Ok(Ok(response)) => Ok(response),
        Ok(Err(err)) => Err(match classify(&err) {
            UpstreamFailure::Connect => GatewayError::new(
                Category::UpstreamUnavailable,
                "upstream_connect_failed",
                format!("could not connect to {}", connection.profile.name),
            ),
            UpstreamFailure::BodyTooLarge => GatewayError::new(
                Category::PayloadTooLarge,
                "body_too_large",
                "request body exceeds the allowed size",
            ),
            UpstreamFailure::Other => GatewayError::new(
                Category::UpstreamUnavailable,
                "upstream_failed",
                format!(
                    "the exchange with {} failed before a response arrived",
                    connection.profile.name
                ),
            ),
        }),
    }
}

/// Where this request goes: the connection's base URL, or the API base the token belongs to (a
/// Salesforce `instance_url`, which the credential layer only hands out for configured hosts,
/// parsed once when the token arrived).
fn upstream_base<'a>(
    connection: &'a ConnectionRuntime,
    applied: &'a crate::credentials::Applied,
) -> &'a routing::UpstreamBase {
    applied.base_url.as_deref().unwrap_or(&connection.base)
}

fn credential_error(error: crate::credentials::CredentialError) -> GatewayError {
    crate::credentials::to_gateway_error(error)
}

fn method_has_body(method: &http::Method) -> bool {
    matches!(
        *method,
        http::Method::POST | http::Method::PUT | http::Method::PATCH
    )
}

fn content_length(headers: &HeaderMap) -> Result<Option<u64>, GatewayError> {
    headers::content_length(headers).map_err(|e| match e {
        headers::InvalidContentLength::NotANumber => {
            GatewayError::bad_request("invalid_content_length", "Content-Length is not a number")
        }
        headers::InvalidContentLength::Conflicting => {
            GatewayError::bad_request("invalid_content_length", "Content-Length values disagree")
        }
    })
}

fn denial(d: Denial) -> GatewayError {
    match d {
        Denial::BodyTooLarge { .. } => {
            GatewayError::new(Category::PayloadTooLarge, "body_too_large", d.to_string())
        }
        Denial::Connection { .. } => {
            GatewayError::forbidden("connection_not_granted", d.to_string())
        }
        Denial::Method { .. } => GatewayError::forbidden("method_not_granted", d.to_string()),
        Denial::MethodNeverForwarded { .. } => {
            GatewayError::forbidden("method_not_forwarded", d.to_string())
        }
        Denial::Path { .. } => GatewayError::forbidden("path_not_granted", d.to_string()),
    }
}

fn record(
    state: &AppState,
    ctx: &RequestContext,
    status: StatusCode,
    category: &'static str,
    started: Instant,
) {
    let elapsed = started.elapsed();
    let (connection, provider) = match ctx.connection {
        Some(c) => (c.id.as_str(), c.profile.name.as_str()),
        None => ("none", "none"),
    };
    let labels = RequestLabelRefs {
        connection,
        provider,
        caller: ctx.caller.as_deref().unwrap_or("none"),
        method: Method::from(&ctx.method),
        status_class: StatusClass::from(status),
        category,
    };
    crate::logging::access(&crate::logging::AccessRecord {
        request_id: ctx.request_id.as_str(),
        connection: labels.connection,
        caller: labels.caller,
        method: ctx.method.as_str(),
        status: status.as_u16(),
        category,
        duration: elapsed,
    });
    state
        .metrics
        .requests
        .record(&labels, elapsed.as_secs_f64());
}
