//! The [`Provider`] trait: every question the proxy asks about a provider. Each method has the
//! behaviour of a plain OAuth 2.0 / REST API as its default, so a provider module overrides
//! only where its API differs, and the proxy never branches on a provider's name.

pub use crate::oauth::ProviderAccount;
use crate::oauth::TokenRequest;
use crate::oauth::{self, AuthorizeParams, ClientAuth, TokenFailure, TokenGrant, TokenParams};
use crate::taxonomy::ProviderError;
use crate::unified::UnifiedApi;
use serde_json::{Map, Value};
use std::fmt;

/// What Gatehouse knows about one provider. Implemented once per module in this crate
/// (`salesforce`, `hubspot`, `greenhouse`, `lever`, `ashby`, `custom`); the proxy holds one
/// `Arc<dyn Provider>` per connection, from [`crate::registry::resolve`].
///
/// Methods are grouped by the pipeline stage that asks. Room is left (see the notes at the
/// end of the trait) for what the next capabilities add.
pub trait Provider: Send + Sync + fmt::Debug {
    /// Stable name, used in metrics labels, logs and error envelopes (`salesforce`, ...).
    fn name(&self) -> &str;

    // --- Credentials: the token endpoint -------------------------------------------------

    /// The client authentication the token endpoint expects unless the connection's config
    /// says otherwise. RFC 6749 §2.3.1 lets servers take either; most take the body.
    fn default_client_auth(&self) -> ClientAuth {
        ClientAuth::Body
    }

    /// The token request for `params` (refresh, client credentials, JWT bearer, code).
    fn token_request(&self, params: &TokenParams<'_>) -> TokenRequest {
        oauth::token_request(params, self.default_client_auth())
    }

    /// The authorize redirect that starts the connect flow.
    fn authorize_url(&self, params: &AuthorizeParams<'_>) -> Result<String, String> {
        oauth::authorize_url(params)
    }

    /// What a non-2xx token endpoint answer means (dead grant, transient, misconfigured).
    /// `body` is the answer as JSON, when it is JSON.
    fn classify_token_failure(&self, status: u16, body: Option<&Value>) -> TokenFailure {
        oauth::classify_failure(status, body)
    }

    /// Reads a token endpoint answer; `default_lifetime_secs` applies when it has no
    /// `expires_in`. Uses [`Provider::classify_token_failure`] and
    /// [`Provider::account_from_token_response`], so providers rarely override this.
    fn parse_token_response(
        &self,
        default_lifetime_secs: Option<u64>,
        status: u16,
        body: &[u8],
    ) -> Result<TokenGrant, TokenFailure> {
        let json: Option<Value> = serde_json::from_slice(body).ok();
        if !(200..300).contains(&status) {
            return Err(self.classify_token_failure(status, json.as_ref()));
        }
        let Some(Value::Object(object)) = json else {
            return Err(TokenFailure::new(
                oauth::FailureKind::Transient,
                "invalid_token_response",
            ));
        };
        let mut grant = oauth::read_token_grant(&object, default_lifetime_secs)?;
        grant.account = self.account_from_token_response(&object);
        Ok(grant)
    }

    /// Access-token lifetime when the token endpoint sends no `expires_in` (a connection's
    /// `token_lifetime_secs` overrides it). `None`: the proxy's own fallback.
    fn default_token_lifetime_secs(&self) -> Option<u64> {
        None
    }

    /// Whether the token response's `instance_url` becomes the API base the token is used
    /// against (only ever within the connection's allowed hosts).
    fn token_sets_instance_url(&self) -> bool {
        false
    }

    /// Whether a 401 from the API is worth one refresh and one replay. A provider that says
    /// a 401 is not a reliable signal (refresh on the token's lifetime instead) answers false.
    fn replay_on_401(&self) -> bool {
        true
    }

    /// Whether an API answer says the provider refused the credential itself (unknown,
    /// expired, revoked, deactivated), as opposed to a permission, quota or validation error.
    /// The proxy counts these answers in a row to show the connection `degraded` (reason
    /// `provider_auth`); any 2xx clears it. Only the status and headers are asked: provider
    /// bodies stream through to the caller unread. The default is RFC 7235's 401; a provider
    /// that answers a bad credential with another status says so here.
    fn rejects_credential(&self, status: u16, _headers: &http::HeaderMap) -> bool {
        status == 401
    }

    // --- Credentials: which provider account a grant belongs to -------------------------

    /// The account a new grant belongs to, read from the successful token response (pure).
    /// `None` when the response does not say; see [`Provider::account_lookup_path`].
    fn account_from_token_response(&self, _body: &Map<String, Value>) -> Option<ProviderAccount> {
        None
    }

    /// For providers whose token response does not name the account: the path and query,
    /// relative to the connection's API base, of a GET that does. Send it with the new access
    /// token as its `Authorization: Bearer` credential (the simulators check it; HubSpot's
    /// reference shows the call without one). The access token may be part of the path, so this value
    /// is a secret: never log it. Its answer is read by [`Provider::account_from_lookup`].
    fn account_lookup_path(&self, _access_token: &str) -> Option<String> {
        None
    }

    /// Reads the answer of the [`Provider::account_lookup_path`] call (pure).
    fn account_from_lookup(&self, _body: &Value) -> Option<ProviderAccount> {
        None
    }

    // --- Request guards -----------------------------------------------------------------

    /// The query parameter through which the provider lets a request claim another HTTP
    /// method (a POST that it runs as a DELETE), so that policy can judge the claimed method.
    fn method_override_param(&self) -> Option<&'static str> {
        None
    }

    /// How this provider carries SOQL and how its query planner is asked; `None` for a
    /// provider that speaks no SOQL (its requests skip the SOQL stage).
    fn soql(&self) -> Option<&dyn SoqlApi> {
        None
    }

    // --- Respond: the provider's error code -------------------------------------------

    /// The provider's own error code in the body of one of its error responses (`status` 400
    /// or above), for the access log. A short token, never a message (messages may quote the
    /// caller's data); `None` when the body names none. The default reads the plain REST
    /// shapes: `{"error":"<code>"}` (RFC 6749) or `{"code":"<code>"}`.
    fn error_code(&self, _status: http::StatusCode, body: &[u8]) -> Option<String> {
        error_code_at(body, &["/error", "/code"])
    }

    // --- Respond: the error taxonomy ----------------------------------------------------

    /// Classifies a provider answer into the taxonomy, from its status, headers and body
    /// together, keeping the provider's own code. `None` when the answer is a success. `body`
    /// is the answer's body when the proxy read it (error statuses up to 16 KiB, and the
    /// successes [`Provider::success_may_hold_errors`] names), else empty.
    ///
    /// The default reads plain REST: 429 throttled, 401 `provider_auth`, 403
    /// `provider_permission`, 404, 409, 400/422 `validation`, 5xx `provider_unavailable`.
    fn classify_error(
        &self,
        status: http::StatusCode,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Option<ProviderError> {
        crate::taxonomy::classify_rest(status, headers, self.error_code(status, body))
    }

    /// Whether a successful answer to `method path` may still report errors in its body
    /// (Ashby's HTTP 200 `success:false`, a Salesforce composite call's failed subrequests), so
    /// the proxy must read it (when small) and ask [`Provider::classify_error`].
    fn success_may_hold_errors(&self, _method: &http::Method, _path: &str) -> bool {
        false
    }

    // --- Respond: passthrough pagination ------------------------------------------------

    /// Where a successful answer to `method path` names another page by URL, so that the proxy
    /// rewrites the URLs that point at the connection's own provider into Gatehouse's path for
    /// the connection (a caller that follows them stays behind the guard). The default is RFC
    /// 8288's `Link` header only: a JSON body is buffered and rewritten only for the paths an
    /// adapter names, since that costs a read of the whole page.
    fn page_links(&self, _method: &http::Method, _path: &str) -> PageLinks {
        PageLinks::LINK_HEADER
    }

    // --- Unified API ----------------------------------------------------------------------

    /// How this provider serves the unified API's canonical models; `None` for a provider
    /// that serves none (its connections answer `/unified/...` with `not_found`).
    fn unified(&self) -> Option<&dyn UnifiedApi> {
        None
    }

    // --- Room for the next capabilities ---------------------------------------------------
    //
    // - quota signals: read a response's rate-limit headers or body into the guards' budget
    //   (`Sforce-Limit-Info`, `X-HubSpot-RateLimit-*`, `X-RateLimit-*`) (issue 16).
}

/// Where a successful answer carries the URLs of other pages (see [`Provider::page_links`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLinks {
    /// The `Link` header's URLs (`<https://...?page=2>; rel="next"`).
    pub link_header: bool,
    /// JSON pointers (RFC 6901) into a JSON body whose strings are page URLs: absolute, or
    /// host-relative (`/services/data/...`).
    pub body_fields: &'static [&'static str],
}

impl PageLinks {
    /// Nothing to rewrite.
    pub const NONE: PageLinks = PageLinks {
        link_header: false,
        body_fields: &[],
    };
    /// The `Link` header only.
    pub const LINK_HEADER: PageLinks = PageLinks {
        link_header: true,
        body_fields: &[],
    };
}

/// The longest provider error code kept.
const MAX_ERROR_CODE: usize = 64;

/// The first of `pointers` (JSON pointers, RFC 6901) into the JSON `body` that holds an error
/// code: a string of 1 to 64 letters, digits, `_`, `-`, `.` or `:`. Anything else (a message, a
/// number, markup) is not taken, so that what reaches a log line is a bounded token.
pub fn error_code_at(body: &[u8], pointers: &[&str]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    error_code_in(&value, pointers)
}

/// As [`error_code_at`], in a body already parsed.
pub fn error_code_in(value: &Value, pointers: &[&str]) -> Option<String> {
    pointers.iter().find_map(|pointer| {
        let code = value.pointer(pointer)?.as_str()?;
        let token = !code.is_empty()
            && code.len() <= MAX_ERROR_CODE
            && code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b));
        token.then(|| code.to_owned())
    })
}

/// Which SOQL a provider's requests carry and how its planner answers. Only providers that
/// speak SOQL implement it (see [`Provider::soql`]).
pub trait SoqlApi: Send + Sync {
    /// Whether a request body sent to `path` can embed SOQL (composite subrequests), so the
    /// body must be buffered and checked.
    fn body_carries_soql(&self, method: &http::Method, path: &str) -> bool;

    /// The path and query of the planner call for `soql`, asked on behalf of a query sent
    /// to `query_path`; `None` when `query_path` is not a query endpoint.
    fn explain_path_and_query(&self, query_path: &str, soql: &str) -> Option<String>;

    /// The best plan of the planner's answer, reduced to what the guard decides on.
    fn best_query_plan(&self, body: &Value) -> Option<QueryPlan>;
}

/// A query plan as the provider's planner reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPlan {
    /// The planner's cost relative to a full scan (below 1 is selective).
    pub relative_cost: f64,
    /// The provider's name for the plan's leading operation, for messages.
    pub leading_operation: String,
    pub cardinality: Option<u64>,
    /// The plan reads the whole table (the adapter knows the provider's word for it).
    pub full_scan: bool,
}

/// Of the statuses an API answers with when something is wrong, those `provider` calls a
/// refused credential (for the adapters' tests).
#[cfg(test)]
pub(crate) fn refusal_statuses(provider: &dyn Provider) -> Vec<u16> {
    let headers = http::HeaderMap::new();
    [200, 400, 401, 403, 404, 429, 500, 503]
        .into_iter()
        .filter(|&status| provider.rejects_credential(status, &headers))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::FailureKind;

    /// A provider with every default: what RFC 6749 alone says.
    fn rfc() -> crate::CustomProfile {
        crate::CustomProfile::named("rfc")
    }

    #[test]
    fn expires_in_as_string_is_accepted_and_default_applies_otherwise() {
        let grant = rfc()
            .parse_token_response(None, 200, br#"{"access_token":"t","expires_in":"3600"}"#)
            .unwrap();
        assert_eq!(grant.expires_in, Some(3600));
        let grant = rfc()
            .parse_token_response(Some(60), 200, br#"{"access_token":"t"}"#)
            .unwrap();
        assert_eq!(grant.expires_in, Some(60));
        assert!(grant.account.is_none());
    }

    #[test]
    fn garbage_success_bodies_are_typed_errors() {
        for body in [
            &b"not json"[..],
            b"[]",
            b"{}",
            br#"{"access_token":""}"#,
            br#"{"access_token":42}"#,
            b"\xff\xfe",
            br#"{"access_token":"a b"}"#,
        ] {
            let failure = rfc()
                .parse_token_response(Some(7200), 200, body)
                .unwrap_err();
            assert_eq!(failure.kind, FailureKind::Transient);
        }
    }

    #[test]
    fn transient_and_misconfigured_are_told_apart() {
        let down = rfc()
            .parse_token_response(None, 503, b"<html>busy</html>")
            .unwrap_err();
        assert_eq!(down, TokenFailure::new(FailureKind::Transient, "http_503"));
        let client = rfc()
            .parse_token_response(
                None,
                400,
                br#"{"error":"invalid_client","error_description":"bad secret"}"#,
            )
            .unwrap_err();
        assert_eq!(
            client,
            TokenFailure::new(FailureKind::Misconfigured, "invalid_client")
        );
        let odd = rfc().parse_token_response(None, 401, b"nope").unwrap_err();
        assert_eq!(
            odd,
            TokenFailure::new(FailureKind::Misconfigured, "http_401")
        );
        let dead = rfc().parse_token_response(
            None,
            403,
            br#"{"error":"invalid_grant","error_description":"Unknown or invalid refresh token."}"#,
        )
        .unwrap_err();
        assert_eq!(dead.kind, FailureKind::DeadGrant);
    }

    #[test]
    fn error_codes_cannot_inject_text() {
        let failure = rfc()
            .parse_token_response(
                None,
                400,
                br#"{"error":"invalid_grant\nlevel=error secret=abc def"}"#,
            )
            .unwrap_err();
        assert_eq!(failure.code, "invalid_grantlevelerrorsecretabcdef");
    }

    #[test]
    fn error_codes_are_bounded_tokens_from_the_named_places() {
        #[derive(Debug)]
        struct Plain;
        impl Provider for Plain {
            fn name(&self) -> &str {
                "plain"
            }
        }
        let status = http::StatusCode::BAD_REQUEST;
        let code = |body: &str| Plain.error_code(status, body.as_bytes());
        assert_eq!(
            code(r#"{"error":"invalid_grant"}"#).as_deref(),
            Some("invalid_grant")
        );
        assert_eq!(
            code(r#"{"code":"NotFound","message":"x"}"#).as_deref(),
            Some("NotFound")
        );
        assert_eq!(code(r#"{"error":"has a space"}"#), None);
        assert_eq!(code(r#"{"error":7}"#), None);
        assert_eq!(code(&format!(r#"{{"error":"{}"}}"#, "x".repeat(65))), None);
        assert_eq!(code("<html>bad gateway</html>"), None);
        assert_eq!(code(r#"{"message":"only a message"}"#), None);
    }

    #[test]
    fn account_values_are_cleaned_and_bounded() {
        let long = "x".repeat(1000);
        let account = ProviderAccount::new(" 42\n", Some("a\u{1b}[31mb"), Some(&long)).unwrap();
        assert_eq!(account.account_id, "42");
        assert_eq!(account.user.as_deref(), Some("a[31mb"));
        assert_eq!(account.locator.map(|l| l.len()), Some(256));
        assert!(ProviderAccount::new("\n\t", None, None).is_none());
        let shown = ProviderAccount::new("42", Some("u"), Some("d.example"))
            .unwrap()
            .to_string();
        assert_eq!(shown, "account 42, user u (d.example)");
    }
}
