//! The one place where a failure becomes an HTTP response.
//!
//! Every stage of the pipeline ends a request early by returning a [`GatewayError`]; the
//! server turns it into the shared JSON error envelope with [`GatewayError::into_response`].
//! Messages are written for the caller and never contain secrets: stages build them from
//! config ids, rule ids and provider error codes, never from header values.

use crate::body::{full, ProxyBody};
use http::{header, HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// The underlying failure of a [`GatewayError`], kept for the logs (never sent to the caller).
pub(crate) type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// The error taxonomy, shared with the adapters (which classify provider answers into it) and
/// the unified API: see `gatehouse_models::Category` and the README's table.
pub use gatehouse_adapters::Category;

/// The error's category, on every error response: a provider's passed through, and
/// Gatehouse's own envelopes. These three names are a contract with callers.
pub(crate) const X_ERROR_CATEGORY: HeaderName =
    HeaderName::from_static("x-gatehouse-error-category");
/// The provider's own error code (Gatehouse's code for an error it made itself).
pub(crate) const X_ERROR_CODE: HeaderName = HeaderName::from_static("x-gatehouse-error-code");
/// `true` or `false`: whether the same request may succeed if sent again later.
pub(crate) const X_RETRYABLE: HeaderName = HeaderName::from_static("x-gatehouse-retryable");

/// Marks an error response with the three headers. A provider cannot set them itself: the
/// respond stage removes any it sent ([`unmark`]).
pub(crate) fn mark(
    headers: &mut HeaderMap,
    category: Category,
    code: Option<&str>,
    retryable: bool,
) {
    headers.insert(
        X_ERROR_CATEGORY,
        HeaderValue::from_static(category.as_str()),
    );
    // Codes are bounded tokens (the adapters' `error_code_at`, or ours), valid header text;
    // one that is not is left out rather than sent mangled.
    match code.and_then(|c| HeaderValue::from_str(c).ok()) {
        Some(code) => headers.insert(X_ERROR_CODE, code),
        None => headers.remove(X_ERROR_CODE),
    };
    let retryable = if retryable { "true" } else { "false" };
    headers.insert(X_RETRYABLE, HeaderValue::from_static(retryable));
}

/// Removes the three headers from a provider's response, so that only Gatehouse says them.
pub(crate) fn unmark(headers: &mut HeaderMap) {
    for name in [X_ERROR_CATEGORY, X_ERROR_CODE, X_RETRYABLE] {
        headers.remove(name);
    }
}

/// The status of a Gatehouse-made envelope in `category`.
pub(crate) fn status_of(category: Category) -> StatusCode {
    StatusCode::from_u16(category.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
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
    /// The provider's own error code, when the failure came from the provider and it named one.
    provider_code: Option<String>,
    /// The provider's word on retrying, when it differs from the category's.
    retryable: Option<bool>,
    /// What went wrong underneath (a TLS verification failure, a refused connection, a
    /// malformed provider response), for the operator's log line.
    source: Option<Cause>,
}

impl GatewayError {
    /// The caller's answer for a request body that did not arrive in time
    /// ([`crate::body::BodyReadTimeout`]): the caller's fault, not the provider's.
    pub fn body_read_timeout() -> Self {
        GatewayError::bad_request(
            "body_read_timeout",
            "the request body did not arrive in time",
        )
    }

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

    /// A provider error the adapter classified (`error`), as the caller's envelope: the
    /// category and retry hint the adapter read, code `provider_error`, and the provider's own
    /// error body verbatim (its JSON, or its text as a string) inside.
    pub fn from_provider(
        provider: &str,
        error: &gatehouse_adapters::ProviderError,
        body: &[u8],
    ) -> Self {
        let message = match &error.code {
            Some(code) => format!("{provider} answered with an error ({code})"),
            None => format!("{provider} answered with an error"),
        };
        let verbatim = serde_json::from_slice(body).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(body).into_owned())
        });
        let mut gateway = GatewayError::new(error.category, "provider_error", message)
            .with_provider_error(verbatim);
        gateway.retry_after = error.retry_after;
        let extra = gateway.extra.get_or_insert_with(Box::default);
        extra.provider_code = error.code.clone();
        if error.retryable != error.category.retryable() {
            extra.retryable = Some(error.retryable);
        }
        gateway
    }

    /// Whether the same request may succeed if sent again later: the category's answer unless
    /// the provider said otherwise.
    pub fn retryable(&self) -> bool {
        self.extra
            .as_ref()
            .and_then(|e| e.retryable)
            .unwrap_or_else(|| self.category.retryable())
    }

    /// The code a caller reads in `x-gatehouse-error-code`: the provider's, for a provider
    /// error that named one, else Gatehouse's.
    pub fn header_code(&self) -> &str {
        self.extra
            .as_ref()
            .and_then(|e| e.provider_code.as_deref())
            .unwrap_or(self.code)
    }

    /// Keeps the provider's own error body verbatim in the envelope (the error taxonomy
    /// sets it when it classifies a provider error).
    pub fn with_provider_error(mut self, body: serde_json::Value) -> Self {
        self.extra.get_or_insert_with(Box::default).provider_error = Some(body);
        self
    }

    /// Keeps `cause` as this error's source: logged with its whole chain, never sent.
    pub fn with_source(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.extra.get_or_insert_with(Box::default).source = Some(Arc::new(cause));
        self
    }

    /// The cause chain as one line (`connect failed: tcp connect error: Connection refused`),
    /// or `None` when the error has no underlying cause.
    pub fn cause_chain(&self) -> Option<String> {
        let source = self.extra.as_ref()?.source.as_ref()?;
        let mut line = source.to_string();
        let mut next = source.source();
        while let Some(cause) = next {
            let text = cause.to_string();
            // Wrappers often repeat their inner error's text; say each thing once.
            if !line.ends_with(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            next = cause.source();
        }
        Some(line)
    }

    /// Whether the failure is on the provider's side of the exchange (an SRE's concern, not
    /// the caller's).
    pub fn is_provider_side(&self) -> bool {
        matches!(
            self.category,
            Category::UpstreamTimeout | Category::ProviderUnavailable
        )
    }

    /// Logs the failure where an operator needs it: provider-side failures at warn with their
    /// cause chain, internal errors at error. Request-side refusals (policy, guards, bad
    /// requests) are the caller's concern and are already in the access line.
    pub fn log(&self, ctx: &ErrorContext<'_>) {
        let cause = self.cause_chain();
        let cause = cause.as_deref().unwrap_or("none");
        if self.category == Category::Internal {
            tracing::error!(
                request_id = ctx.request_id,
                connection = ctx.connection.unwrap_or("none"),
                code = self.code,
                cause,
                "internal error: {}",
                self.message
            );
        } else if self.is_provider_side() {
            tracing::warn!(
                request_id = ctx.request_id,
                connection = ctx.connection.unwrap_or("none"),
                provider = ctx.provider.unwrap_or("none"),
                code = self.code,
                cause,
                "provider exchange failed: {}",
                self.message
            );
        }
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

    /// Builds the envelope response. `ctx` carries what the pipeline knew when it failed.
    pub fn into_response(self, ctx: &ErrorContext<'_>) -> Response<ProxyBody> {
        let envelope = Envelope {
            error: EnvelopeBody {
                category: self.category,
                code: self.code,
                message: &self.message,
                retryable: self.retryable(),
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
        *response.status_mut() = status_of(self.category);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(id) = HeaderValue::from_str(ctx.request_id) {
            headers.insert(crate::telemetry::ids::X_REQUEST_ID, id);
        }
        if let Some(after) = self.retry_after {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(after.as_secs().max(1)),
            );
        }
        mark(
            headers,
            self.category,
            Some(self.header_code()),
            self.retryable(),
        );
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

impl std::error::Error for GatewayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let source = self.extra.as_ref()?.source.as_ref()?;
        Some(source.as_ref())
    }
}

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

    async fn body_of(response: Response<ProxyBody>) -> bytes::Bytes {
        let body = response.into_body().collect().await;
        body.map(|c| c.to_bytes()).unwrap_or_default()
    }

    #[derive(Debug, thiserror::Error)]
    #[error("connect failed")]
    struct Outer(#[source] std::io::Error);

    #[tokio::test]
    async fn the_cause_is_kept_for_the_log_and_never_sent() {
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused by 10.0.0.9");
        let err = GatewayError::new(
            Category::ProviderUnavailable,
            "upstream_connect_refused",
            "could not connect to the provider",
        )
        .with_source(Outer(refused));
        assert_eq!(
            err.cause_chain().as_deref(),
            Some("connect failed: refused by 10.0.0.9")
        );
        assert!(std::error::Error::source(&err).is_some());
        assert!(GatewayError::bad_request("x", "y").cause_chain().is_none());
        let response = err.into_response(&ErrorContext::default());
        let bytes = body_of(response).await;
        let body = String::from_utf8_lossy(&bytes);
        assert!(!body.contains("10.0.0.9"), "{body}");
        assert!(body.contains("upstream_connect_refused"), "{body}");
    }

    #[tokio::test]
    async fn envelopes_carry_the_three_headers_a_passthrough_error_carries() {
        let ours =
            GatewayError::forbidden("policy_denied", "no").into_response(&ErrorContext::default());
        let headers = ours.headers();
        assert_eq!(headers[X_ERROR_CATEGORY], "forbidden");
        assert_eq!(headers[X_ERROR_CODE], "policy_denied");
        assert_eq!(headers[X_RETRYABLE], "false");
        // A provider error in an envelope names the provider's code, and the provider's word
        // on retrying wins over the category's.
        let mut error = gatehouse_adapters::ProviderError::new(
            Category::ProviderThrottled,
            Some("REQUEST_LIMIT_EXCEEDED".to_owned()),
        );
        error.retryable = false;
        error.retry_after = Some(Duration::from_secs(20));
        let body = br#"[{"errorCode":"REQUEST_LIMIT_EXCEEDED","message":"m"}]"#;
        let response = GatewayError::from_provider("salesforce", &error, body)
            .into_response(&ErrorContext::default());
        let headers = response.headers();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[X_ERROR_CATEGORY], "provider_throttled");
        assert_eq!(headers[X_ERROR_CODE], "REQUEST_LIMIT_EXCEEDED");
        assert_eq!(headers[X_RETRYABLE], "false");
        assert_eq!(headers[header::RETRY_AFTER], "20");
        let bytes = body_of(response).await;
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        assert_eq!(value["error"]["retryable"], false);
        assert_eq!(value["error"]["code"], "provider_error");
        assert_eq!(
            value["error"]["provider_error"][0]["errorCode"],
            "REQUEST_LIMIT_EXCEEDED"
        );
    }

    #[test]
    fn a_provider_cannot_set_the_headers_itself() {
        let mut headers = HeaderMap::new();
        headers.insert(X_ERROR_CATEGORY, HeaderValue::from_static("none"));
        headers.insert(X_RETRYABLE, HeaderValue::from_static("true"));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        unmark(&mut headers);
        assert_eq!(headers.len(), 1);
        mark(&mut headers, Category::NotFound, Some("bad\ncode"), false);
        assert!(!headers.contains_key(X_ERROR_CODE));
    }

    #[tokio::test]
    async fn envelope_carries_category_code_and_context() {
        let err = GatewayError::new(
            Category::ProviderUnavailable,
            "token_endpoint_down",
            "token endpoint unreachable",
        )
        .with_retry_after(Duration::from_secs(7))
        .with_provider_error(serde_json::json!([{"errorCode": "SERVER_UNAVAILABLE"}]));
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
        let bytes = body_of(response).await;
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        assert_eq!(value["error"]["category"], "provider_unavailable");
        assert_eq!(value["error"]["code"], "token_endpoint_down");
        assert_eq!(value["error"]["retryable"], true);
        assert_eq!(value["error"]["retry_after"], 7);
        assert_eq!(value["error"]["connection"], "acme-sf");
        assert_eq!(value["error"]["request_id"], "req-1");
        assert_eq!(
            value["error"]["provider_error"][0]["errorCode"],
            "SERVER_UNAVAILABLE"
        );
    }
}
