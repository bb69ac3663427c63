//! Ashby (RPC-style API, `POST /<category>.<method>`): HTTP Basic with the API key as the
//! user name and a blank password, so a static `basic` credential; no OAuth. Its errors arrive
//! as HTTP 200 with `success:false`, so every POST's answer is read (when small) and classified.
//! A missing key is a 401; a wrong or deactivated key (and a key without the endpoint's
//! permission, `missing_endpoint_permission`) is a 403: either way the key needs fixing.

use crate::provider::{PageLinks, Provider};
use crate::taxonomy::{self, Category, ProviderError};

pub const NAME: &str = "ashby";

#[derive(Debug, Clone, Copy, Default)]
pub struct Ashby;

impl Provider for Ashby {
    fn name(&self) -> &str {
        NAME
    }

    fn rejects_credential(&self, status: u16, _headers: &http::HeaderMap) -> bool {
        matches!(status, 401 | 403)
    }

    /// `{"success":false,"errorInfo":{"code":..,"message":..}}`, usually on a 200; older
    /// answers say `{"success":false,"errors":["<code>"]}`.
    fn error_code(&self, _status: http::StatusCode, body: &[u8]) -> Option<String> {
        crate::provider::error_code_at(body, &ERROR_CODE_AT)
    }

    fn classify_error(
        &self,
        status: http::StatusCode,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Option<ProviderError> {
        let json = taxonomy::json_of(body);
        let code = json
            .as_ref()
            .and_then(|v| crate::provider::error_code_in(v, &ERROR_CODE_AT));
        let category = match status.as_u16() {
            // Would-be 4xx errors: a 200 whose `success` is false. Anything else on a 200
            // (`success:true`, with or without `warnings`; a body that is not Ashby's) is
            // the success its status says.
            200..=299 => {
                let failed = json.as_ref().and_then(|v| v.get("success")?.as_bool()) == Some(false);
                if !failed {
                    return None;
                }
                code.as_deref()
                    .map_or(Category::Validation, category_of_code)
            }
            // A missing key (401) or a wrong or deactivated one (403), unless the key is good and
            // only lacks this endpoint's permission.
            401 | 403 if code.as_deref() == Some("missing_endpoint_permission") => {
                Category::ProviderPermission
            }
            401 | 403 => Category::ProviderAuth,
            // Per key or, with `X-RateLimit-Scope: integration-partner`, across the whole partner
            // integration: throttled either way, and either way with `Retry-After`.
            429 => Category::ProviderThrottled,
            _ => taxonomy::rest_category(status)?,
        };
        Some(ProviderError::new(category, code).retry_after_or(headers, None))
    }

    /// Every call is a POST whose 200 may say `success:false`.
    fn success_may_hold_errors(&self, method: &http::Method, _path: &str) -> bool {
        *method == http::Method::POST
    }

    /// Ashby pages by `nextCursor` in the body, never a URL.
    fn page_links(&self, _method: &http::Method, _path: &str) -> PageLinks {
        PageLinks::NONE
    }
}

const ERROR_CODE_AT: [&str; 4] = ["/errorInfo/code", "/errors/0/code", "/errors/0", "/error"];

/// The category of an Ashby error code on a 200.
fn category_of_code(code: &str) -> Category {
    match code {
        c if c.ends_with("_not_found") || c == "invalid_endpoint" => Category::NotFound,
        "missing_endpoint_permission" | "forbidden" => Category::ProviderPermission,
        "unauthorized" | "invalid_api_key" | "api_key_deactivated" => Category::ProviderAuth,
        "rate_limit_exceeded" => Category::ProviderThrottled,
        "internal_error" => Category::ProviderUnavailable,
        c if c.contains("conflict") || c.starts_with("duplicate") => Category::Conflict,
        // `invalid_input`, and the cursor and sync-token codes (`invalid_next_cursor`,
        // `next_cursor_expired`, `sync_token_invalid`, `sync_token_expired`): resending the same
        // request cannot help; a walk starts again without them.
        _ => Category::Validation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_is_the_error_infos_code() {
        let body = br#"{"success":false,"errorInfo":{"code":"application_not_found","message":"..","requestId":"01J"}}"#;
        assert_eq!(
            Ashby
                .error_code(http::StatusCode::NOT_FOUND, body)
                .as_deref(),
            Some("application_not_found")
        );
    }

    #[test]
    fn plain_rest_defaults() {
        assert_eq!(Ashby.name(), "ashby");
        assert!(Ashby.replay_on_401());
        assert!(Ashby.soql().is_none());
        assert!(Ashby.account_lookup_path("t").is_none());
    }

    #[test]
    fn a_403_is_a_refused_key() {
        assert_eq!(crate::provider::refusal_statuses(&Ashby), [401, 403]);
    }
}
