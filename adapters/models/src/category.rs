//! The error taxonomy: one set of categories for every failure, whoever caused it (the caller,
//! a Gatehouse guard, the provider, the network). They appear in the error envelope, in the
//! `x-gatehouse-error-category` header, in metric labels and in the docs, so renaming one is a
//! breaking change.

use serde::Serialize;

/// Why a request failed. See the README's error taxonomy table for who causes each and what a
/// caller should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// The caller did not say who it is (or said it wrongly).
    Unauthenticated,
    /// The scope policy does not grant this caller this request.
    Forbidden,
    /// A Gatehouse guard (the SOQL guard) refused the request's content.
    GuardBlocked,
    /// A Gatehouse rate limit: the caller's or the connection's share is spent for now.
    RateLimited,
    /// The provider said slow down (HubSpot's 429, Salesforce's 403 `REQUEST_LIMIT_EXCEEDED`).
    ProviderThrottled,
    /// A daily or longer provider quota is spent: retrying soon will not help.
    QuotaExhausted,
    /// The connection's grant is dead: an admin must connect it again.
    ReauthRequired,
    /// The provider refused Gatehouse's credential itself (unknown, expired, revoked).
    ProviderAuth,
    /// The credential is accepted but lacks a scope, permission or field access.
    ProviderPermission,
    /// The connection, route, model or record does not exist.
    NotFound,
    /// The provider rejected the request's content (a bad field, a malformed query).
    Validation,
    /// The provider refused a write that conflicts with the record's state.
    Conflict,
    /// The provider failed, answered garbage or could not be reached.
    ProviderUnavailable,
    /// The provider did not answer in time.
    UpstreamTimeout,
    /// Gatehouse stopped sending to a provider that keeps failing, for a while.
    CircuitOpen,
    /// The request is malformed before any provider sees it.
    BadRequest,
    /// The request body is larger than the grant or the server allows.
    PayloadTooLarge,
    /// A Gatehouse bug or an unexpected local failure.
    Internal,
}

impl Category {
    /// Every category, in the README's order.
    pub const ALL: [Category; 18] = [
        Category::Unauthenticated,
        Category::Forbidden,
        Category::GuardBlocked,
        Category::RateLimited,
        Category::ProviderThrottled,
        Category::QuotaExhausted,
        Category::ReauthRequired,
        Category::ProviderAuth,
        Category::ProviderPermission,
        Category::NotFound,
        Category::Validation,
        Category::Conflict,
        Category::ProviderUnavailable,
        Category::UpstreamTimeout,
        Category::CircuitOpen,
        Category::BadRequest,
        Category::PayloadTooLarge,
        Category::Internal,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Category::Unauthenticated => "unauthenticated",
            Category::Forbidden => "forbidden",
            Category::GuardBlocked => "guard_blocked",
            Category::RateLimited => "rate_limited",
            Category::ProviderThrottled => "provider_throttled",
            Category::QuotaExhausted => "quota_exhausted",
            Category::ReauthRequired => "reauth_required",
            Category::ProviderAuth => "provider_auth",
            Category::ProviderPermission => "provider_permission",
            Category::NotFound => "not_found",
            Category::Validation => "validation",
            Category::Conflict => "conflict",
            Category::ProviderUnavailable => "provider_unavailable",
            Category::UpstreamTimeout => "upstream_timeout",
            Category::CircuitOpen => "circuit_open",
            Category::BadRequest => "bad_request",
            Category::PayloadTooLarge => "payload_too_large",
            Category::Internal => "internal",
        }
    }

    /// The category named `name` (as [`Category::as_str`] spells it).
    pub fn parse(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The HTTP status of a Gatehouse-made error envelope in this category. (A passthrough
    /// provider error keeps the provider's own status; only its headers name the category.)
    pub const fn status(self) -> u16 {
        match self {
            // 407: the caller failed to authenticate to the proxy, not to the provider.
            Category::Unauthenticated => 407,
            Category::Forbidden | Category::GuardBlocked | Category::ProviderPermission => 403,
            Category::RateLimited | Category::ProviderThrottled | Category::QuotaExhausted => 429,
            // The grant is dead, or the provider refuses the credential: the caller can do
            // nothing about it, and a 401 would tell it to change its own credential.
            Category::ReauthRequired | Category::CircuitOpen => 503,
            Category::ProviderAuth | Category::ProviderUnavailable => 502,
            Category::NotFound => 404,
            Category::Validation => 422,
            Category::Conflict => 409,
            Category::UpstreamTimeout => 504,
            Category::BadRequest => 400,
            Category::PayloadTooLarge => 413,
            Category::Internal => 500,
        }
    }

    /// Whether the same request may succeed if sent again later (after `Retry-After`, when
    /// one is given). A spent daily quota is not: it comes back in hours, not seconds.
    pub const fn retryable(self) -> bool {
        matches!(
            self,
            Category::RateLimited
                | Category::ProviderThrottled
                | Category::ProviderUnavailable
                | Category::UpstreamTimeout
                | Category::CircuitOpen
        )
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for category in Category::ALL {
            assert_eq!(Category::parse(category.as_str()), Some(category));
            assert_eq!(
                serde_json::to_value(category).unwrap(),
                serde_json::Value::String(category.as_str().to_owned())
            );
        }
        assert_eq!(Category::parse("upstream_unavailable"), None);
    }

    #[test]
    fn statuses_are_errors_and_retryable_ones_are_transient() {
        for category in Category::ALL {
            assert!(category.status() >= 400, "{category}");
            if category.retryable() {
                assert!(
                    matches!(category.status(), 429 | 502 | 503 | 504),
                    "{category}"
                );
            }
        }
        assert!(!Category::QuotaExhausted.retryable());
        assert!(Category::ProviderThrottled.retryable());
    }
}
