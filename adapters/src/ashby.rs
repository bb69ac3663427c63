//! Ashby (RPC-style API, `POST /<category>.<method>`): HTTP Basic with the API key as the
//! user name and a blank password, so a static `basic` credential; no OAuth. Its errors arrive
//! as HTTP 200 with `success:false` (classified when error classification joins the trait).
//! A missing key is a 401; a wrong or deactivated key (and a key without the endpoint's
//! permission, `missing_endpoint_permission`) is a 403: either way the key needs fixing.

use crate::provider::Provider;

mod unified;

pub const NAME: &str = "ashby";

#[derive(Debug, Clone, Copy, Default)]
pub struct Ashby;

impl Provider for Ashby {
    fn name(&self) -> &str {
        NAME
    }

    fn unified(&self) -> Option<&dyn crate::unified::UnifiedApi> {
        Some(self)
    }

    fn rejects_credential(&self, status: u16, _headers: &http::HeaderMap) -> bool {
        matches!(status, 401 | 403)
    }

    /// `{"success":false,"errorInfo":{"code":..,"message":..}}` (usually on a 200, which the
    /// proxy does not read yet; an error status with the same body is read here).
    fn error_code(&self, _status: http::StatusCode, body: &[u8]) -> Option<String> {
        crate::provider::error_code_at(body, &["/errorInfo/code", "/error"])
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
