//! The admin port: `/healthz` (process alive), `/readyz` (config loaded, stores reachable, not
//! shutting down), `/metrics` (Prometheus text), `/dashboard` (HTML) and `/status` (JSON), and
//! the credential routes under `/connect/`, and `/api/sync-state` (the unified API's sync state).
//! It listens on its own address so it can stay off the service network.
//!
//! Every request is authorised (`auth`) before it is routed: only the public paths and the
//! connect flow's callback answer without an admin token.

pub(crate) mod auth;
pub(crate) mod dashboard;
pub(crate) mod sync_state;

use crate::body::{full, ProxyBody};
use crate::state::AppState;
use auth::Access;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub async fn handle(state: Arc<AppState>, request: Request<Incoming>) -> Response<ProxyBody> {
    answer(&state, request.method(), request.uri(), request.headers()).await
}

/// The admin port's answer to a request head (the admin API reads no request bodies).
async fn answer(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response<ProxyBody> {
    let access = match state.admin.authorize(method, uri.path(), headers) {
        Ok(access) => access,
        Err(refusal) => return refusal.response(),
    };
    let path = uri.path();
    if path.starts_with("/connect/") {
        // Only an admin token (or, on the callback, the flow's own state) gets here.
        let admin = match &access {
            Access::Granted(identity) => Some(&*identity.id),
            Access::Public | Access::Callback => None,
        };
        if let Some(response) = state.credentials.handle_admin(method, uri, admin).await {
            return response;
        }
        return text(StatusCode::NOT_FOUND, "not found\n");
    }
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    match path {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => readiness(state).await,
        "/metrics" => metrics(state, headers.get(header::ACCEPT)),
        "/" | "/dashboard" => crate::admin::dashboard::page(state),
        "/status" => crate::admin::dashboard::status_json(state),
        "/api/sync-state" => sync_state::answer(state, uri).await,
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

async fn readiness(state: &AppState) -> Response<ProxyBody> {
    if !state.accepting.load(Ordering::Acquire) {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    match state.credentials.ready().await {
        Ok(()) => text(StatusCode::OK, "ready\n"),
        Err(reason) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("credential store unreachable: {reason}\n"),
        ),
    }
}

fn metrics(state: &AppState, accept: Option<&HeaderValue>) -> Response<ProxyBody> {
    use crate::telemetry::metrics::{encode, Format};
    let format = Format::negotiate(accept);
    let Ok(out) = encode(&state.registry, format) else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics encoding failed\n",
        );
    };
    let mut response = Response::new(full(out));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}

fn text(status: StatusCode, body: &str) -> Response<ProxyBody> {
    let mut response = Response::new(full(body.to_owned()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests;
