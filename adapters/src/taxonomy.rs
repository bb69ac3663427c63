//! A provider's answer, classified into the shared error taxonomy ([`Category`]). Each provider
//! module overrides [`crate::Provider::classify_error`] where its API says more than its status
//! (Salesforce's 403 `REQUEST_LIMIT_EXCEEDED` is throttling; Ashby's 200 `success:false`);
//! [`classify_rest`] is what a plain REST status says. Bodies are read as JSON when they are
//! JSON; anything else (truncated JSON, an HTML error page, a field of the wrong type) leaves
//! the status to decide, so a garbage body never turns into a panic or a wrong category.

pub use gatehouse_models::Category;
use serde_json::Value;
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
    /// How long the provider asked to wait, when it said (or, for a provider that never says,
    /// the adapter's reading of its documented window).
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

    /// The provider's `Retry-After` when it sent one, else `hint` (the documented window of a
    /// provider that throttles without saying how long).
    pub fn retry_after_or(mut self, headers: &http::HeaderMap, hint: Option<Duration>) -> Self {
        self.retry_after = retry_after(headers).or(hint);
        self
    }
}

/// The category a plain REST status names. `None` for a success or a redirect.
pub fn rest_category(status: http::StatusCode) -> Option<Category> {
    Some(match status.as_u16() {
        0..=399 => return None,
        401 => Category::ProviderAuth,
        403 => Category::ProviderPermission,
        404 | 410 => Category::NotFound,
        409 | 412 => Category::Conflict,
        429 => Category::ProviderThrottled,
        408 | 504 => Category::UpstreamTimeout,
        400..=499 => Category::Validation,
        _ => Category::ProviderUnavailable,
    })
}

/// What a plain REST answer's status says. `None` for a success.
pub fn classify_rest(
    status: http::StatusCode,
    headers: &http::HeaderMap,
    code: Option<String>,
) -> Option<ProviderError> {
    let category = rest_category(status)?;
    Some(ProviderError::new(category, code).retry_after_or(headers, None))
}

/// A `Retry-After` in seconds (the HTTP-date form is rare from APIs and is not taken).
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// `body` as JSON, when it is JSON. Error bodies come from many places (the provider's API, a
/// load balancer's HTML page, a body cut short), so failing to parse is an answer, not an error.
pub fn json_of(body: &[u8]) -> Option<Value> {
    if body.is_empty() {
        return None;
    }
    serde_json::from_slice(body).ok()
}

/// The string at `pointer` in `value`, if it is a string.
pub fn str_at<'a>(value: Option<&'a Value>, pointer: &str) -> Option<&'a str> {
    value?.pointer(pointer)?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue, StatusCode};

    #[test]
    fn statuses_name_their_categories_and_successes_none() {
        let none = HeaderMap::new();
        let of = |s: u16| classify_rest(StatusCode::from_u16(s).unwrap(), &none, None);
        assert_eq!(of(200), None);
        assert_eq!(of(304), None);
        for (status, category) in [
            (400, Category::Validation),
            (401, Category::ProviderAuth),
            (403, Category::ProviderPermission),
            (404, Category::NotFound),
            (409, Category::Conflict),
            (412, Category::Conflict),
            (422, Category::Validation),
            (429, Category::ProviderThrottled),
            (500, Category::ProviderUnavailable),
            (503, Category::ProviderUnavailable),
            (504, Category::UpstreamTimeout),
        ] {
            assert_eq!(of(status).map(|e| e.category), Some(category), "{status}");
        }
    }

    #[test]
    fn retry_after_is_taken_in_seconds_and_a_hint_only_fills_a_gap() {
        let mut headers = HeaderMap::new();
        let hint = Some(Duration::from_secs(10));
        let e = ProviderError::new(Category::ProviderThrottled, None);
        assert_eq!(e.clone().retry_after_or(&headers, hint).retry_after, hint);
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static(" 3 "));
        assert_eq!(
            e.clone().retry_after_or(&headers, hint).retry_after,
            Some(Duration::from_secs(3))
        );
        headers.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(e.retry_after_or(&headers, None).retry_after, None);
    }
}
