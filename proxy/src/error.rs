//! The one place where a failure becomes an HTTP response.
//!
//! Every stage of the pipeline ends a request early by returning a [`GatewayError`]; the
//! server turns it into the shared JSON error envelope with [`GatewayError::into_response`].
//! Messages are written for the caller and never contain secrets: stages build them from
//! config ids, rule ids and provider error codes, never from header values.

use crate::body::{full, ProxyBody};
use http::{header, HeaderValue, Response, StatusCode};
use serde::Serialize;
use std::time::Duration;

/// Stable error categories. They appear in the envelope, in metrics labels and in docs, so
/// renaming one is a breaking change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Unauthenticated,
    Forbidden,
    NotFound,
    BadRequest,
    PayloadTooLarge,
    GuardBlocked,
    RateLimited,
    ReauthRequired,
    UpstreamTimeout,
    UpstreamUnavailable,
    Internal,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Unauthenticated => "unauthenticated",
            Category::Forbidden => "forbidden",
            Category::NotFound => "not_found",
            Category::BadRequest => "bad_request",
            Category::PayloadTooLarge => "payload_too_large",
            Category::GuardBlocked => "guard_blocked",
            Category::RateLimited => "rate_limited",
            Category::ReauthRequired => "reauth_required",
            Category::UpstreamTimeout => "upstream_timeout",
            Category::UpstreamUnavailable => "upstream_unavailable",
            Category::Internal => "internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Category::Unauthenticated => StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            Category::Forbidden | Category::GuardBlocked => StatusCode::FORBIDDEN,
            Category::NotFound => StatusCode::NOT_FOUND,
            Category::BadRequest => StatusCode::BAD_REQUEST,
            Category::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Category::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            // The connection's grant is dead: nothing the caller can do by retrying.
            Category::ReauthRequired => StatusCode::SERVICE_UNAVAILABLE,
            Category::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Category::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            Category::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the same request may succeed if sent again later.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            Category::RateLimited | Category::UpstreamTimeout | Category::UpstreamUnavailable
        )
    }
}

/// A typed failure of one request. `code` is a finer, stable machine-readable reason inside
/// the category (for example `unknown_connection`, `policy_denied`, `path_traversal`).
#[derive(Debug, Clone)]
pub struct GatewayError {
    pub category: Category,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<Duration>,
    /// Rarely present, so kept behind one pointer: errors travel through every `Result`.
    extra: Option<Box<Extra>>,
}

#[derive(Debug, Clone, Default)]
struct Extra {
    /// The provider's own error body, kept verbatim when the failure came from the provider.
    provider_error: Option<serde_json::Value>,
    /// Extra structured detail (for example the SOQL guard's violations).
    details: Option<serde_json::Value>,
}

impl GatewayError {
    pub fn new(category: Category, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            category,
            code,
            message: message.into(),
            retry_after: None,
            extra: None,
        }
    }

    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.extra.get_or_insert_with(Box::default).details = Some(details);
        self
    }

    pub fn with_provider_error(mut self, body: serde_json::Value) -> Self {
        self.extra.get_or_insert_with(Box::default).provider_error = Some(body);
        self
    }

    pub fn details(&self) -> Option<&serde_json::Value> {
        self.extra.as_ref().and_then(|e| e.details.as_ref())
    }

    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Category::Unauthenticated, code, message)
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Category::Forbidden, code, message)
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Category::BadRequest, code, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Category::Internal, "internal", message)
    }

    /// Builds the envelope response. `ctx` carries what the pipeline knew when it failed.
    pub fn into_response(self, ctx: &ErrorContext<'_>) -> Response<ProxyBody> {
        let envelope = Envelope {
            error: EnvelopeBody {
                category: self.category,
                code: self.code,
                message: &self.message,
                retryable: self.category.retryable(),
                retry_after: self.retry_after.map(|d| d.as_secs().max(1)),
                provider: ctx.provider,
                connection: ctx.connection,
                request_id: ctx.request_id,
                provider_error: self.extra.as_ref().and_then(|e| e.provider_error.as_ref()),
                details: self.details(),
            },
        };
        // Serialising plain data cannot fail; fall back to a fixed body rather than panic.
        let body = serde_json::to_vec(&envelope).unwrap_or_else(|_| {
            br#"{"error":{"category":"internal","code":"envelope","message":"error envelope could not be built"}}"#.to_vec()
        });
        let mut response = Response::new(full(body));
        *response.status_mut() = self.category.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(id) = HeaderValue::from_str(ctx.request_id) {
            headers.insert(crate::headers::X_REQUEST_ID, id);
        }
        if let Some(after) = self.retry_after {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(after.as_secs().max(1)),
            );
        }
        if self.category == Category::Unauthenticated {
            headers.insert(
                header::PROXY_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"gatehouse\""),
            );
        }
        response
    }
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.category.as_str(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for GatewayError {}

/// What the pipeline knew about the request when it failed.
#[derive(Debug, Default, Clone, Copy)]
pub struct ErrorContext<'a> {
    pub request_id: &'a str,
    pub connection: Option<&'a str>,
    pub provider: Option<&'a str>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: EnvelopeBody<'a>,
}

#[derive(Serialize)]
struct EnvelopeBody<'a> {
    category: Category,
    code: &'a str,
    message: &'a str,
    retryable: bool,
    retry_after: Option<u64>,
    provider: Option<&'a str>,
    connection: Option<&'a str>,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_error: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn envelope_carries_category_code_and_context() {
        let err = GatewayError::new(
            Category::UpstreamUnavailable,
            "token_endpoint_down",
            "token endpoint unreachable",
        )
        .with_retry_after(Duration::from_secs(7));
        let ctx = ErrorContext {
            request_id: "req-1",
            connection: Some("acme-sf"),
            provider: Some("p"),
        };
        let response = err.into_response(&ctx);
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .map(|v| v.as_bytes()),
            Some(&b"7"[..])
        );
        let bytes = response
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        assert_eq!(value["error"]["category"], "upstream_unavailable");
        assert_eq!(value["error"]["code"], "token_endpoint_down");
        assert_eq!(value["error"]["retryable"], true);
        assert_eq!(value["error"]["retry_after"], 7);
        assert_eq!(value["error"]["connection"], "acme-sf");
        assert_eq!(value["error"]["request_id"], "req-1");
    }
}
