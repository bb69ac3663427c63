//! Greenhouse Harvest, in its two generations (separate providers, since they authenticate
//! differently and v1 is being retired):
//!
//! - v1 (`greenhouse`): HTTP Basic with the Harvest API key as the user name and a blank
//!   password (a static `basic` credential); no token endpoint.
//! - v3 (`greenhouse-v3`): OAuth 2.0 client credentials at `https://auth.greenhouse.io/token`,
//!   with HTTP Basic `client_id:client_secret` and `sub=<Greenhouse user id>` in the form;
//!   access tokens live an hour.

use crate::oauth::ClientAuth;
use crate::provider::Provider;
use crate::taxonomy::{self, Category, ProviderError};
use std::time::Duration;

mod unified;

pub const V1_NAME: &str = "greenhouse";
pub const V3_NAME: &str = "greenhouse-v3";

/// Harvest v1: a static API key; every behaviour is the plain-REST default.
#[derive(Debug, Clone, Copy, Default)]
pub struct HarvestV1;

impl Provider for HarvestV1 {
    fn name(&self) -> &str {
        V1_NAME
    }

    fn classify_error(
        &self,
        status: http::StatusCode,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Option<ProviderError> {
        classify(status, headers, self.error_code(status, body))
    }

    fn unified(&self) -> Option<&dyn crate::unified::UnifiedApi> {
        Some(self)
    }
}

/// Harvest throttles per 10 s window, and its 429 carries neither `Retry-After` nor the
/// `X-RateLimit-*` headers: the window is the only hint there is.
const THROTTLE_WINDOW: Duration = Duration::from_secs(10);

/// Plain REST statuses (401 bad key, 403 no access, 404, 422 validation with
/// `errors[{message,field}]`, which name no code), with the window as a 429's hint.
fn classify(
    status: http::StatusCode,
    headers: &http::HeaderMap,
    code: Option<String>,
) -> Option<ProviderError> {
    let category = taxonomy::rest_category(status)?;
    let hint = (category == Category::ProviderThrottled).then_some(THROTTLE_WINDOW);
    Some(ProviderError::new(category, code).retry_after_or(headers, hint))
}

/// Harvest v3: OAuth client credentials.
#[derive(Debug, Clone, Copy, Default)]
pub struct HarvestV3;

impl Provider for HarvestV3 {
    fn name(&self) -> &str {
        V3_NAME
    }

    fn unified(&self) -> Option<&dyn crate::unified::UnifiedApi> {
        Some(self)
    }

    /// Greenhouse documents HTTP Basic on its token endpoint.
    fn default_client_auth(&self) -> ClientAuth {
        ClientAuth::Basic
    }

    fn classify_error(
        &self,
        status: http::StatusCode,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Option<ProviderError> {
        classify(status, headers, self.error_code(status, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::{params, Grant, TokenParams};

    #[test]
    fn v3_client_credentials_use_basic_and_sub() {
        let scopes = vec!["harvest:candidates:list".to_owned()];
        let req = HarvestV3.token_request(&TokenParams {
            scopes: &scopes,
            ..params(
                Grant::ClientCredentials { sub: Some("4242") },
                Some("csecret"),
            )
        });
        assert_eq!(
            req.body(),
            "grant_type=client_credentials&scope=harvest%3Acandidates%3Alist&sub=4242"
        );
        assert_eq!(
            req.basic_auth,
            Some(("cid".to_owned(), "csecret".to_owned()))
        );
    }

    #[test]
    fn v1_takes_the_body_default_and_replays_on_401() {
        assert_eq!(HarvestV1.default_client_auth(), ClientAuth::Body);
        assert!(HarvestV1.replay_on_401() && HarvestV3.replay_on_401());
        assert!(HarvestV1.soql().is_none() && HarvestV3.soql().is_none());
    }
}
