//! A provider's answer, classified into the shared error taxonomy ([`Category`]). Each provider
//! module overrides [`crate::Provider::classify_error`] where its API says more than its status
//! (Salesforce's 403 `REQUEST_LIMIT_EXCEEDED` is throttling; Ashby's 200 `success:false`);
//! [`classify_rest`] is what a plain REST status says.

pub use gatehouse_models::Category;
use std::time::Duration;

/// A provider error, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    pub category: Category,
    /// The provider's own code (`REQUEST_LIMIT_EXCEEDED`, `MISSING_SCOPES`), a bounded token
    /// (see [`crate::provider::error_code_at`]).
    pub code: Option<String>,
    /// Whether the same request may succeed later: the category's answer unless the provider
    /// says otherwise.
    pub retryable: bool,
    /// How long the provider asked to wait, when it said.
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    pub fn new(category: Category, code: Option<String>) -> Self {
        Self {
            category,
            code,
            retryable: category.retryable(),
            retry_after: None,
        }
    }
}

/// What a plain REST answer's status says. `None` for a success.
pub fn classify_rest(
    status: http::StatusCode,
    headers: &http::HeaderMap,
    code: Option<String>,
) -> Option<ProviderError> {
    let category = match status.as_u16() {
        200..=399 => return None,
        401 => Category::ProviderAuth,
        403 => Category::ProviderPermission,
        404 | 410 => Category::NotFound,
        409 | 412 => Category::Conflict,
        429 => Category::ProviderThrottled,
        408 | 504 => Category::UpstreamTimeout,
        400..=499 => Category::Validation,
        _ => Category::ProviderUnavailable,
    };
    let mut error = ProviderError::new(category, code);
    error.retry_after = retry_after(headers);
    Some(error)
}

/// A `Retry-After` in seconds (the HTTP-date form is rare from APIs and is not taken).
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}
