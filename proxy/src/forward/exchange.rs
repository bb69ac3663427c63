//! The exchange stage: everything between "this request may go" and "the provider's response
//! head is here". It applies the connection's credential, sends within the request timeout, and
//! on a 401 refreshes the credential once and sends the request again (when the provider's
//! profile says a 401 can be cured by a refresh and the body can be sent twice). Every provider
//! answer is reported to the credentials, which count credential refusals (a connection the
//! provider keeps refusing shows `degraded`) and stop refreshing when fresh tokens are refused.
//!
//! Retries within a budget with backoff, circuit-breaker feedback and quota feedback join here:
//! they are decisions about sending again, and this is the one place that sends.

use crate::credentials::AuthSignal;
use crate::error::{Category, GatewayError};
use crate::forward::upstream::UpstreamBody;
use crate::stages::body::RequestBody;
use crate::state::{AppState, ConnectionRuntime};
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};

/// A request ready to leave: checked, with its outbound headers and body.
pub(crate) struct Outbound<'a> {
    pub method: &'a http::Method,
    /// The provider path as the caller sent it (raw, not decoded) and the query string to send.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: HeaderMap,
    pub body: RequestBody,
}

/// Sends `outbound` to the connection's provider and returns the provider's response head.
pub(crate) async fn exchange(
    state: &AppState,
    connection: &ConnectionRuntime,
    outbound: Outbound<'_>,
) -> Result<Response<UpstreamBody>, GatewayError> {
    let Outbound {
        method,
        path,
        query,
        mut headers,
        mut body,
    } = outbound;
    let credentials = &state.credentials;
    let applied = credentials.apply(&connection.id, &mut headers).await?;
    // The headers are kept for a replay only where a 401 can be cured by a fresh credential
    // (no clone for static credentials).
    let may_replay = connection.provider.replay_on_401() && credentials.refreshable(&connection.id);
    let first_headers = if may_replay {
        headers.clone()
    } else {
        std::mem::take(&mut headers)
    };
    let to = connection.base_for(&applied).join(path, query)?;
    let response = send(state, connection, method, &to, first_headers, &mut body).await?;
    let provider = connection.provider.name();
    let signal = AuthSignal::of(&*connection.provider, response.status(), response.headers());
    credentials.observe(&connection.id, provider, signal, &applied);
    if !(may_replay && response.status() == StatusCode::UNAUTHORIZED) {
        return Ok(response);
    }
    if !credentials
        .on_unauthorized(&connection.id, &applied)
        .await?
    {
        return Ok(response);
    }
    if !body.replayable() {
        // The credential is fresh again, but this body streamed through and is gone.
        return Err(GatewayError::new(
            Category::ProviderUnavailable,
            "not_replayed_body_too_large",
            format!(
                "{} rejected the credential; it has been refreshed, but a request body over replay_buffer_bytes cannot be replayed: send the request again",
                connection.provider.name()
            ),
        )
        .with_retry_after(std::time::Duration::from_secs(1)));
    }
    let applied = credentials.apply(&connection.id, &mut headers).await?;
    let to = connection.base_for(&applied).join(path, query)?;
    let response = send(state, connection, method, &to, headers, &mut body).await?;
    let signal = AuthSignal::of(&*connection.provider, response.status(), response.headers());
    credentials.observe_replay(&connection.id, provider, signal, &applied)?;
    Ok(response)
}

/// One send within the request timeout, with the body framed for it.
async fn send(
    state: &AppState,
    connection: &ConnectionRuntime,
    method: &http::Method,
    to: &crate::stages::route::UpstreamTarget,
    mut headers: HeaderMap,
    body: &mut RequestBody,
) -> Result<Response<UpstreamBody>, GatewayError> {
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
        Ok(result) => Ok(result?),
        Err(_) => Err(GatewayError::new(
            Category::UpstreamTimeout,
            "upstream_timeout",
            format!(
                "{} did not answer within {} ms",
                connection.provider.name(),
                timeout.as_millis()
            ),
        )),
    }
}

fn method_has_body(method: &http::Method) -> bool {
    matches!(
        *method,
        http::Method::POST | http::Method::PUT | http::Method::PATCH
    )
}
