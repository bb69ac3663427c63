//! Lever (v1 Data API): HTTP Basic with the API key as the user name, or, for partner apps,
//! OAuth 2.0 authorization code on an Auth0-hosted server that requires `audience` (and
//! `offline_access` for a refresh token); both are connection config. Refresh tokens are
//! reported to rotate on every use, which the token manager handles for every provider.

use crate::provider::Provider;

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
