//! Salesforce (REST API: query, sObjects, composite).
//!
//! - No `expires_in`: the token lives as long as the org's session timeout, two hours by
//!   default.
//! - The token response names the org's API host (`instance_url`) and the identity URL `id`
//!   (`.../id/<org id>/<user id>`), which says which org a new grant belongs to.
//! - SOQL travels in `GET .../query?q=`, `.../queryAll?q=`, `nextRecordsUrl` follow-ups
//!   (`.../query/<locator>`, no query text) and in query subrequests inside `/composite` and
//!   `/composite/batch`; the planner answers `GET .../query?explain=`.
//! - `_HttpMethod=<METHOD>` on a POST runs it as that method.

use crate::provider::{PageLinks, Provider, ProviderAccount, QueryPlan, SoqlApi};
use crate::taxonomy::{self, Category, ProviderError};
use serde_json::{Map, Value};

pub const NAME: &str = "salesforce";

/// The session timeout Salesforce orgs default to.
const DEFAULT_SESSION_SECS: u64 = 7200;

#[derive(Debug, Clone, Copy, Default)]
pub struct Salesforce;

impl Provider for Salesforce {
    fn name(&self) -> &str {
        NAME
    }

    fn default_token_lifetime_secs(&self) -> Option<u64> {
        Some(DEFAULT_SESSION_SECS)
    }

    fn token_sets_instance_url(&self) -> bool {
        true
    }

    fn account_from_token_response(&self, body: &Map<String, Value>) -> Option<ProviderAccount> {
        let identity = body.get("id")?.as_str()?;
        let url = url::Url::parse(identity).ok()?;
        if !matches!(url.scheme(), "https" | "http") {
            return None;
        }
        let segments: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
        let [.., "id", org, user] = segments.as_slice() else {
            return None;
        };
        if !is_record_id(org) || !is_record_id(user) {
            return None;
        }
        ProviderAccount::new(org, Some(user), Some(identity))
    }

    fn method_override_param(&self) -> Option<&'static str> {
        Some("_HttpMethod")
    }

    fn soql(&self) -> Option<&dyn SoqlApi> {
        Some(self)
    }

    /// REST errors are an array, `[{"message":..,"errorCode":..}]`; token endpoint errors are
    /// RFC 6749's `{"error":..}`.
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
        if status.is_success() {
            return composite_failure(headers, json.as_ref()?);
        }
        classify(status.as_u16(), headers, json.as_ref())
    }

    /// A composite call answers 200 whatever its subrequests did (`/composite`,
    /// `/composite/batch`).
    fn success_may_hold_errors(&self, method: &http::Method, path: &str) -> bool {
        *method == http::Method::POST && is_composite(path)
    }

    /// `nextRecordsUrl` of a query page, host-relative (`/services/data/v66.0/query/01g..-500`).
    fn page_links(&self, method: &http::Method, path: &str) -> PageLinks {
        if *method != http::Method::GET {
            return PageLinks::NONE;
        }
        let mut segments = path.trim_end_matches('/').rsplit('/');
        let last = segments.next().unwrap_or_default();
        let query = |s: &str| s.eq_ignore_ascii_case("query") || s.eq_ignore_ascii_case("queryAll");
        if query(last) || segments.next().is_some_and(query) {
            PageLinks {
                link_header: false,
                body_fields: &["/nextRecordsUrl"],
            }
        } else {
            PageLinks::NONE
        }
    }
}

// --- The error taxonomy --------------------------------------------------------------------
//
// Salesforce names its errors by `errorCode`, which decides before the status does: the same
// 403 is throttling (`REQUEST_LIMIT_EXCEEDED`) or a missing permission (`INSUFFICIENT_ACCESS_*`).

const ERROR_CODE_AT: [&str; 2] = ["/0/errorCode", "/error"];

/// The status, headers and parsed body of one answer (or one composite subrequest).
fn classify(status: u16, headers: &http::HeaderMap, json: Option<&Value>) -> Option<ProviderError> {
    let code = json.and_then(|v| crate::provider::error_code_in(v, &ERROR_CODE_AT));
    let status_code = http::StatusCode::from_u16(status).ok()?;
    let by_code = code.as_deref().and_then(|code| match code {
        "REQUEST_LIMIT_EXCEEDED" if daily_allocation_spent(headers, json) => {
            Some(Category::QuotaExhausted)
        }
        "REQUEST_LIMIT_EXCEEDED" => Some(Category::ProviderThrottled),
        "INVALID_SESSION_ID" => Some(Category::ProviderAuth),
        "NOT_FOUND" | "ENTITY_IS_DELETED" => Some(Category::NotFound),
        "SERVER_UNAVAILABLE" => Some(Category::ProviderUnavailable),
        // A query too slow for the provider fails again if resent as is: the caller must make it
        // selective, so it is the request's content, not a transient failure.
        "QUERY_TIMEOUT"
        | "MALFORMED_QUERY"
        | "INVALID_FIELD"
        | "INVALID_TYPE"
        | "REQUIRED_FIELD_MISSING"
        | "INVALID_REPLICATION_DATE"
        | "EXCEEDED_ID_LIMIT" => Some(Category::Validation),
        "DUPLICATE_VALUE" | "ENTITY_IS_LOCKED" => Some(Category::Conflict),
        c if c.starts_with("INSUFFICIENT_ACCESS")
            || c == "API_DISABLED_FOR_ORG"
            || c == "API_CURRENTLY_DISABLED"
            || c == "FUNCTIONALITY_NOT_ENABLED" =>
        {
            Some(Category::ProviderPermission)
        }
        _ => None,
    });
    let category = match by_code {
        Some(category) => category,
        // 300: an upsert's external id matches more than one record; nothing was written.
        None if status == 300 => Category::Conflict,
        None => taxonomy::rest_category(status_code)?,
    };
    Some(ProviderError::new(category, code).retry_after_or(headers, None))
}

/// Whether a `REQUEST_LIMIT_EXCEEDED` is the org's rolling 24-hour allocation (as opposed to
/// the limit on concurrent long-running requests, which frees up in seconds). Every REST answer
/// carries `Sforce-Limit-Info: api-usage=N/M`; `N >= M` says the allocation is spent. Without
/// the header, Salesforce's message for the allocation (`TotalRequests Limit exceeded.`) does.
fn daily_allocation_spent(headers: &http::HeaderMap, json: Option<&Value>) -> bool {
    if let Some((used, max)) = api_usage(headers) {
        return used >= max;
    }
    taxonomy::str_at(json, "/0/message").is_some_and(|m| m.starts_with("TotalRequests"))
}

/// `api-usage=N/M` of `Sforce-Limit-Info` (`api-usage=10018/100000; api-bursts=1/750`).
fn api_usage(headers: &http::HeaderMap) -> Option<(u64, u64)> {
    let value = headers.get("sforce-limit-info")?.to_str().ok()?;
    let usage = value
        .split([';', ','])
        .find_map(|part| part.trim().strip_prefix("api-usage="))?;
    let (used, max) = usage.split_once('/')?;
    Some((used.trim().parse().ok()?, max.trim().parse().ok()?))
}

/// `.../composite` and `.../composite/batch`.
fn is_composite(path: &str) -> bool {
    let mut segments = path.trim_end_matches('/').rsplit('/');
    match segments.next() {
        Some(last) if last.eq_ignore_ascii_case("composite") => true,
        Some(last) if last.eq_ignore_ascii_case("batch") => segments
            .next()
            .is_some_and(|s| s.eq_ignore_ascii_case("composite")),
        _ => false,
    }
}

/// The codes Salesforce gives the subrequests it did not run because another one failed.
fn halted(code: Option<&str>) -> bool {
    matches!(code, Some("PROCESSING_HALTED" | "BATCH_PROCESSING_HALTED"))
}

/// A composite answer with a failed subrequest, classified as its root failure: the first
/// failed subrequest that is not merely halted because of another (with `allOrNone`, or a
/// reference to a failed result, the others say `PROCESSING_HALTED`), else the first failed.
/// `/composite` answers `{compositeResponse:[{httpStatusCode, body}]}`; `/composite/batch`
/// `{hasErrors, results:[{statusCode, result}]}`.
fn composite_failure(headers: &http::HeaderMap, json: &Value) -> Option<ProviderError> {
    let (items, status_at, body_at) = if let Some(items) = json.get("compositeResponse") {
        (items.as_array()?, "httpStatusCode", "body")
    } else {
        (json.get("results")?.as_array()?, "statusCode", "result")
    };
    let failed = items.iter().filter_map(|item| {
        let status = u16::try_from(item.get(status_at)?.as_u64()?).ok()?;
        (status >= 400).then(|| (status, item.get(body_at)))
    });
    let mut first = None;
    for (status, body) in failed {
        let code = body.and_then(|b| crate::provider::error_code_in(b, &ERROR_CODE_AT));
        if !halted(code.as_deref()) {
            return classify(status, headers, body);
        }
        first.get_or_insert((status, body));
    }
    let (status, body) = first?;
    classify(status, headers, body)
}

/// Salesforce ids are 15 (case-sensitive) or 18 (case-safe) alphanumeric characters.
fn is_record_id(s: &str) -> bool {
    matches!(s.len(), 15 | 18) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl SoqlApi for Salesforce {
    fn body_carries_soql(&self, method: &http::Method, path: &str) -> bool {
        *method != http::Method::GET && path.split('/').any(|s| s.eq_ignore_ascii_case("composite"))
    }

    fn explain_path_and_query(&self, query_path: &str, soql: &str) -> Option<String> {
        let (prefix, last) = query_path.trim_end_matches('/').rsplit_once('/')?;
        if !(last.eq_ignore_ascii_case("query") || last.eq_ignore_ascii_case("queryAll")) {
            return None;
        }
        let encoded: String = url::form_urlencoded::byte_serialize(soql.as_bytes()).collect();
        Some(format!("{prefix}/query?explain={encoded}"))
    }

    /// `{"plans":[{"relativeCost":..,"leadingOperationType":..,"cardinality":..}]}`, best first.
    fn best_query_plan(&self, body: &Value) -> Option<QueryPlan> {
        let plan = body.get("plans")?.as_array()?.first()?;
        let leading_operation = plan.get("leadingOperationType")?.as_str()?.to_owned();
        Some(QueryPlan {
            relative_cost: plan.get("relativeCost")?.as_f64()?,
            full_scan: leading_operation.eq_ignore_ascii_case("TableScan"),
            leading_operation,
            cardinality: plan.get("cardinality").and_then(Value::as_u64),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_is_the_first_errors_code() {
        let body =
            br#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#;
        assert_eq!(
            Salesforce
                .error_code(http::StatusCode::UNAUTHORIZED, body)
                .as_deref(),
            Some("INVALID_SESSION_ID")
        );
        let throttled = br#"[{"message":"..","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#;
        assert_eq!(
            Salesforce
                .error_code(http::StatusCode::FORBIDDEN, throttled)
                .as_deref(),
            Some("REQUEST_LIMIT_EXCEEDED")
        );
    }
    use crate::oauth::{params, ClientAuth, Grant};

    #[test]
    fn only_a_401_refuses_the_session() {
        // 401 INVALID_SESSION_ID; a 403 is REQUEST_LIMIT_EXCEEDED or a missing permission.
        assert_eq!(crate::provider::refusal_statuses(&Salesforce), [401]);
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn soql_travels_in_composite_bodies_and_query_urls() {
        let sf = Salesforce;
        assert!(sf.body_carries_soql(&http::Method::POST, "/services/data/v60.0/composite/batch"));
        assert!(!sf.body_carries_soql(&http::Method::GET, "/services/data/v60.0/composite"));
        assert!(!sf.body_carries_soql(&http::Method::POST, "/services/data/v60.0/sobjects/Account"));
        assert_eq!(
            sf.explain_path_and_query("/services/data/v60.0/queryAll", "SELECT Id FROM Account"),
            Some("/services/data/v60.0/query?explain=SELECT+Id+FROM+Account".to_owned())
        );
        assert_eq!(
            sf.explain_path_and_query("/services/data/v60.0/sobjects", "x"),
            None
        );
    }

    #[test]
    fn the_first_plan_is_the_best_and_table_scans_are_named() {
        let plan = Salesforce.best_query_plan(
            &serde_json::json!({"plans":[{"relativeCost":2.5,"leadingOperationType":"TableScan","cardinality":10},{"relativeCost":0.1,"leadingOperationType":"Index"}]}),
        );
        assert_eq!(
            plan,
            Some(QueryPlan {
                relative_cost: 2.5,
                leading_operation: "TableScan".to_owned(),
                cardinality: Some(10),
                full_scan: true,
            })
        );
        let index = Salesforce.best_query_plan(
            &serde_json::json!({"plans":[{"relativeCost":0.1,"leadingOperationType":"Index"}]}),
        );
        assert_eq!(index.map(|p| p.full_scan), Some(false));
        assert_eq!(
            Salesforce.best_query_plan(&serde_json::json!({"plans":[]})),
            None
        );
    }

    #[test]
    fn response_without_expires_in_lives_a_session_and_names_its_org() {
        let body = br#"{"access_token":"00D!AQ","instance_url":"https://na1.example.com","id":"https://login.example.com/id/00D5g000004SIMUEAU/0055g0000012Q9PAAU","token_type":"Bearer","issued_at":"1700000000000","signature":"s","scope":"api refresh_token"}"#;
        let grant = Salesforce
            .parse_token_response(Salesforce.default_token_lifetime_secs(), 200, body)
            .unwrap();
        assert_eq!(grant.expires_in, Some(7200));
        assert_eq!(
            grant.instance_url.as_deref(),
            Some("https://na1.example.com")
        );
        assert_eq!(grant.scopes, vec!["api", "refresh_token"]);
        assert!(grant.refresh_token.is_none());
        let account = grant.account.unwrap();
        assert_eq!(account.account_id, "00D5g000004SIMUEAU");
        assert_eq!(account.user.as_deref(), Some("0055g0000012Q9PAAU"));
        assert_eq!(
            account.locator.as_deref(),
            Some("https://login.example.com/id/00D5g000004SIMUEAU/0055g0000012Q9PAAU")
        );
    }

    #[test]
    fn identity_urls_that_are_not_identity_urls_name_no_account() {
        for id in [
            json_str("not a url"),
            json_str("https://login.example.com/services/oauth2/token"),
            json_str("https://login.example.com/id/00D5g000004SIMUEAU"),
            json_str("https://login.example.com/id/00D5g0000/0055g0000012Q9PAAU"),
            json_str("javascript://x/id/00D5g000004SIMUEAU/0055g0000012Q9PAAU"),
            serde_json::json!(42),
        ] {
            let body = object(serde_json::json!({ "id": id }));
            assert_eq!(Salesforce.account_from_token_response(&body), None, "{id}");
        }
    }

    fn json_str(s: &str) -> Value {
        Value::String(s.to_owned())
    }

    #[test]
    fn dead_refresh_token_is_a_dead_grant() {
        let failure = Salesforce
            .parse_token_response(
                None,
                400,
                br#"{"error":"invalid_grant","error_description":"expired access/refresh token"}"#,
            )
            .unwrap_err();
        assert_eq!(failure.kind, crate::oauth::FailureKind::DeadGrant);
    }

    #[test]
    fn jwt_bearer_and_refresh_are_plain_rfc_requests() {
        let req = Salesforce.token_request(&params(
            Grant::JwtBearer { assertion: "a.b.c" },
            Some("csecret"),
        ));
        assert_eq!(
            req.body(),
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c"
        );
        assert_eq!(Salesforce.default_client_auth(), ClientAuth::Body);
        assert_eq!(Salesforce.method_override_param(), Some("_HttpMethod"));
        assert!(Salesforce.replay_on_401());
    }
}
