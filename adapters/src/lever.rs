//! Lever (v1 Data API): HTTP Basic with the API key as the user name, or, for partner apps,
//! OAuth 2.0 authorization code on an Auth0-hosted server that requires `audience` (and
//! `offline_access` for a refresh token); both are connection config. Refresh tokens are
//! reported to rotate on every use, which the token manager handles for every provider.

use crate::provider::{PageLinks, Provider};
use crate::taxonomy::{self, Category, ProviderError};
use std::time::Duration;

mod unified;

pub const NAME: &str = "lever";

#[derive(Debug, Clone, Copy, Default)]
pub struct Lever;

impl Provider for Lever {
    fn name(&self) -> &str {
        NAME
    }

    fn unified(&self) -> Option<&dyn crate::unified::UnifiedApi> {
        Some(self)
    }

    /// `{"code":"<ErrorCode>","message":..}`.
    fn error_code(&self, _status: http::StatusCode, body: &[u8]) -> Option<String> {
        crate::provider::error_code_at(body, &["/code", "/error"])
    }

    /// Lever's codes agree with its statuses; the code decides only where the status is odd
    /// (a proxy in front answering with another status). A 429 has no rate headers: Lever's
    /// bucket refills each second.
    fn classify_error(
        &self,
        status: http::StatusCode,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Option<ProviderError> {
        let code = self.error_code(status, body);
        let by_code = code.as_deref().and_then(|code| match code {
            "UnauthorizedError" => Some(Category::ProviderAuth),
            "ForbiddenError" => Some(Category::ProviderPermission),
            "NotFoundError" | "ResourceNotFoundError" | "ResourceNotFound" => {
                Some(Category::NotFound)
            }
            "BadRequestError" | "InvalidRequestError" | "MethodNotAllowedError" => {
                Some(Category::Validation)
            }
            "ConflictError" => Some(Category::Conflict),
            "TooManyRequestsError" => Some(Category::ProviderThrottled),
            _ => None,
        });
        let category = match by_code {
            Some(category) if !status.is_success() && !status.is_server_error() => category,
            _ => taxonomy::rest_category(status)?,
        };
        let hint = (category == Category::ProviderThrottled).then_some(Duration::from_secs(1));
        Some(ProviderError::new(category, code).retry_after_or(headers, hint))
    }

    /// Lever pages by an opaque `next` token, never a URL.
    fn page_links(&self, _method: &http::Method, _path: &str) -> PageLinks {
        PageLinks::NONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_is_the_code() {
        let body = br#"{"code":"ResourceNotFound","message":"no such opportunity"}"#;
        assert_eq!(
            Lever
                .error_code(http::StatusCode::NOT_FOUND, body)
                .as_deref(),
            Some("ResourceNotFound")
        );
    }
    use crate::oauth::FailureKind;

    #[test]
    fn auth0_invalid_grant_is_a_dead_grant() {
        let failure = Lever
            .parse_token_response(
                None,
                403,
                br#"{"error":"invalid_grant","error_description":"Unknown or invalid refresh token."}"#,
            )
            .unwrap_err();
        assert_eq!(failure.kind, FailureKind::DeadGrant);
        assert!(Lever.replay_on_401());
    }
}
