//! HubSpot (CRM v3 objects and search).
//!
//! - Access tokens live `expires_in` = 1800 s, and HubSpot documents that a 401 is not a
//!   reliable signal to refresh: refresh on the lifetime, never refresh-and-replay on a 401.
//! - Token endpoint failures carry HubSpot's own code in `status` (`BAD_REFRESH_TOKEN`,
//!   `BAD_HUB`, ...); newer bodies add the RFC 6749 `error`, which is less specific.
//! - The token response does not name the portal (hub). The token-info call
//!   `GET /oauth/v1/access-tokens/<token>` does: `hub_id`, `hub_domain`, `user`.

use crate::oauth::{self, FailureKind, TokenFailure};
use crate::provider::{PageLinks, Provider, ProviderAccount};
use crate::taxonomy::{self, Category, ProviderError};
use serde_json::Value;
use std::time::Duration;

mod unified;

pub const NAME: &str = "hubspot";

/// The token-info resource, relative to the API base (`https://api.hubapi.com`).
const TOKEN_INFO_PATH: &str = "/oauth/v1/access-tokens/";

#[derive(Debug, Clone, Copy, Default)]
pub struct HubSpot;

impl Provider for HubSpot {
    fn name(&self) -> &str {
        NAME
    }

    fn unified(&self) -> Option<&dyn crate::unified::UnifiedApi> {
        Some(self)
    }

    fn replay_on_401(&self) -> bool {
        false
    }

    fn classify_token_failure(&self, status: u16, body: Option<&Value>) -> TokenFailure {
        if !oauth::is_transient_status(status) {
            if let Some(code) = oauth::body_code(body, "status") {
                let kind = match code.as_str() {
                    "BAD_REFRESH_TOKEN" | "BAD_HUB" | "BAD_AUTH_CODE" | "EXPIRED_AUTH_CODE" => {
                        Some(FailureKind::DeadGrant)
                    }
                    "BAD_CLIENT_ID" | "BAD_CLIENT_SECRET" | "BAD_REDIRECT_URI"
                    | "BAD_GRANT_TYPE" | "BAD_SCOPES" => Some(FailureKind::Misconfigured),
                    _ => None,
                };
                if let Some(kind) = kind {
                    return TokenFailure::new(kind, code);
                }
            }
        }
        oauth::classify_failure(status, body)
    }

    fn account_lookup_path(&self, access_token: &str) -> Option<String> {
        if access_token.is_empty() {
            return None;
        }
        let segment: String =
            url::form_urlencoded::byte_serialize(access_token.as_bytes()).collect();
        Some(format!("{TOKEN_INFO_PATH}{segment}"))
    }

    /// `{"token":..,"user":"a@b","hub_id":12345678,"hub_domain":"x.hubspot.com",..}`. The
    /// answer echoes the token; only the account fields are kept.
    fn account_from_lookup(&self, body: &Value) -> Option<ProviderAccount> {
        let hub_id = match body.get("hub_id")? {
            Value::Number(n) => n.as_u64()?.to_string(),
            Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.clone(),
            _ => return None,
        };
        let text = |field: &str| body.get(field).and_then(Value::as_str);
        ProviderAccount::new(&hub_id, text("user"), text("hub_domain"))
    }

    /// `{"status":"error","message":..,"category":"VALIDATION_ERROR","errors":[..]}`; a
    /// throttled answer names its `errorType` (`RATE_LIMIT`) and no category.
    fn error_code(&self, _status: http::StatusCode, body: &[u8]) -> Option<String> {
        crate::provider::error_code_at(body, &ERROR_CODE_AT)
    }

    /// The status first where HubSpot gives it a meaning of its own (429 by `policyName`, 423,
    /// 477), then the body's `category`, then the plain REST status.
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
        let (category, hint) = match status.as_u16() {
            429 => match taxonomy::str_at(json.as_ref(), "/policyName") {
                Some("DAILY") => (Category::QuotaExhausted, None),
                Some("SECONDLY") => (Category::ProviderThrottled, Some(Duration::from_secs(1))),
                // TEN_SECONDLY_ROLLING, or a 429 without a policy: the burst window.
                _ => (Category::ProviderThrottled, Some(burst_window(headers))),
            },
            // Locked: a burst of writes to one portal; HubSpot asks for a wait of 2 s.
            423 => (Category::ProviderThrottled, Some(Duration::from_secs(2))),
            // Migration in progress: the portal moves between data centres, with `Retry-After`.
            477 => (Category::ProviderUnavailable, None),
            _ => {
                let by_code = code.as_deref().and_then(|code| match code {
                    "INVALID_AUTHENTICATION" | "EXPIRED_AUTHENTICATION" => {
                        Some(Category::ProviderAuth)
                    }
                    "MISSING_SCOPES" => Some(Category::ProviderPermission),
                    "OBJECT_NOT_FOUND" => Some(Category::NotFound),
                    "VALIDATION_ERROR" => Some(Category::Validation),
                    "CONFLICT" | "OBJECT_ALREADY_EXISTS" => Some(Category::Conflict),
                    "RATE_LIMIT" => Some(Category::ProviderThrottled),
                    _ => None,
                });
                match by_code {
                    Some(category) if !status.is_success() => (category, None),
                    _ => (taxonomy::rest_category(status)?, None),
                }
            }
        };
        Some(ProviderError::new(category, code).retry_after_or(headers, hint))
    }

    /// A list page's `paging.next.link` (and `paging.prev.link`) is an absolute API URL: object
    /// lists (`/crm/v3/objects/contacts`), association lists and owners. A single record's
    /// answer is never read for it.
    fn page_links(&self, method: &http::Method, path: &str) -> PageLinks {
        // Asked on every answer: the path's segments are looked at in place, not collected.
        let mut segments = [""; 8];
        let mut count = 0;
        for segment in path.trim_matches('/').split('/') {
            match segments.get_mut(count) {
                Some(slot) => *slot = segment,
                None => return PageLinks::NONE,
            }
            count += 1;
        }
        let list = matches!(
            segments.get(..count).unwrap_or_default(),
            ["crm", _, "objects", _]
                | ["crm", _, "owners"]
                | ["crm", _, "objects", _, _, "associations", _]
        );
        if list && *method == http::Method::GET {
            PageLinks {
                link_header: false,
                body_fields: &["/paging/next/link", "/paging/prev/link"],
            }
        } else {
            PageLinks::NONE
        }
    }
}

const ERROR_CODE_AT: [&str; 3] = ["/category", "/errorType", "/error"];

/// The burst window HubSpot names in `X-HubSpot-RateLimit-Interval-Milliseconds`, else its
/// documented 10 s.
fn burst_window(headers: &http::HeaderMap) -> Duration {
    headers
        .get("x-hubspot-ratelimit-interval-milliseconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| (1..=3_600_000).contains(ms))
        .map_or(Duration::from_secs(10), |ms| {
            Duration::from_millis(ms.div_ceil(1000) * 1000)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_is_the_category() {
        let body = br#"{"status":"error","message":"..","correlationId":"c","category":"VALIDATION_ERROR","errors":[{"code":"INVALID_INTEGER"}]}"#;
        assert_eq!(
            HubSpot
                .error_code(http::StatusCode::BAD_REQUEST, body)
                .as_deref(),
            Some("VALIDATION_ERROR")
        );
        let limited = br#"{"status":"error","message":"..","errorType":"RATE_LIMIT","policyName":"TEN_SECONDLY_ROLLING"}"#;
        assert_eq!(
            HubSpot
                .error_code(http::StatusCode::TOO_MANY_REQUESTS, limited)
                .as_deref(),
            Some("RATE_LIMIT")
        );
    }
    use crate::oauth::{params, Grant};

    #[test]
    fn refreshes_on_the_lifetime_not_on_401() {
        assert!(!HubSpot.replay_on_401());
        assert_eq!(HubSpot.default_token_lifetime_secs(), None);
        assert!(HubSpot.soql().is_none());
        assert_eq!(HubSpot.method_override_param(), None);
    }

    #[test]
    fn a_401_refuses_the_token_and_a_403_is_a_missing_scope() {
        // A revoked install answers 401 INVALID_AUTHENTICATION; 403 is MISSING_SCOPES.
        assert_eq!(crate::provider::refusal_statuses(&HubSpot), [401]);
    }

    #[test]
    fn refresh_request_puts_client_credentials_in_the_body() {
        let req = HubSpot.token_request(&params(
            Grant::RefreshToken {
                refresh_token: "rt-1",
            },
            Some("csecret"),
        ));
        assert_eq!(
            req.body(),
            "grant_type=refresh_token&refresh_token=rt-1&client_id=cid&client_secret=csecret"
        );
        assert!(req.basic_auth.is_none());
    }

    #[test]
    fn response_reads_scopes_array_and_rotated_token() {
        let body = br#"{"access_token":"CKabc","refresh_token":"na1-new","expires_in":1800,"token_type":"bearer","scopes":["oauth","crm.objects.contacts.read"]}"#;
        let grant = HubSpot.parse_token_response(None, 200, body).unwrap();
        assert_eq!(grant.expires_in, Some(1800));
        assert_eq!(grant.refresh_token.as_deref(), Some("na1-new"));
        assert_eq!(grant.scopes, vec!["oauth", "crm.objects.contacts.read"]);
        // The portal is not in the token response: it takes the token-info call.
        assert!(grant.account.is_none());
    }

    #[test]
    fn hubspot_codes_win_over_the_rfc_error() {
        let cases: [(&[u8], FailureKind, &str); 4] = [
            (
                br#"{"status":"BAD_REFRESH_TOKEN","message":"missing or invalid refresh token"}"#,
                FailureKind::DeadGrant,
                "BAD_REFRESH_TOKEN",
            ),
            (
                br#"{"status":"BAD_HUB","error":"access_denied"}"#,
                FailureKind::DeadGrant,
                "BAD_HUB",
            ),
            (
                br#"{"status":"BAD_CLIENT_SECRET","error":"invalid_client"}"#,
                FailureKind::Misconfigured,
                "BAD_CLIENT_SECRET",
            ),
            // An unknown HubSpot code falls back to the RFC 6749 reading.
            (
                br#"{"status":"error","error":"invalid_grant"}"#,
                FailureKind::DeadGrant,
                "invalid_grant",
            ),
        ];
        for (body, kind, code) in cases {
            let failure = HubSpot.parse_token_response(None, 400, body).unwrap_err();
            assert_eq!(failure, TokenFailure::new(kind, code));
        }
        let busy = HubSpot
            .parse_token_response(None, 503, br#"{"status":"BAD_HUB"}"#)
            .unwrap_err();
        assert_eq!(busy, TokenFailure::new(FailureKind::Transient, "http_503"));
    }

    #[test]
    fn the_portal_comes_from_the_token_info_call() {
        assert_eq!(
            HubSpot.account_lookup_path("CK-a/b+c").as_deref(),
            Some("/oauth/v1/access-tokens/CK-a%2Fb%2Bc")
        );
        assert_eq!(HubSpot.account_lookup_path(""), None);
        let answer = serde_json::json!({
            "token": "CKabc", "user": "demo@example.com", "hub_id": 12345678,
            "scopes": ["oauth"], "token_type": "access", "app_id": 1000001,
            "hub_domain": "gatehouse-sim.hubspot.com", "user_id": 42, "expires_in": 1700,
        });
        let account = HubSpot.account_from_lookup(&answer).unwrap();
        assert_eq!(
            account,
            ProviderAccount {
                account_id: "12345678".to_owned(),
                user: Some("demo@example.com".to_owned()),
                locator: Some("gatehouse-sim.hubspot.com".to_owned()),
            }
        );
        assert!(!format!("{account:?}{account}").contains("CKabc"));
        for bad in [
            serde_json::json!({"user": "x"}),
            serde_json::json!({"hub_id": "12ab"}),
            serde_json::json!({"hub_id": -1}),
            serde_json::json!([]),
        ] {
            assert_eq!(HubSpot.account_from_lookup(&bad), None, "{bad}");
        }
    }
}
