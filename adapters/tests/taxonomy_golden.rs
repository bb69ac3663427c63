//! Golden tests of the error taxonomy: every documented error kind of every provider, from a
//! realistic payload (`golden/errors/<provider>/`), classified from status, headers and body
//! together; and garbage bodies (truncated JSON, HTML, wrong types), which must leave the
//! status to decide and never panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gatehouse_adapters::{builtin, Category, CustomProfile, Provider, ProviderError};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use std::path::PathBuf;
use std::sync::Arc;

use Category::*;

fn provider(name: &str) -> Arc<dyn Provider> {
    if name == "custom" {
        return Arc::new(CustomProfile::named("crm"));
    }
    builtin(name).unwrap_or_else(|| panic!("no provider {name}"))
}

fn golden(provider: &str, file: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/errors")
        .join(provider)
        .join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
        .collect()
}

/// One golden answer and what it must be classified as.
struct Case {
    provider: &'static str,
    file: &'static str,
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    /// Category, provider code, retryable, retry-after seconds; `None` for a success.
    want: Option<(Category, Option<&'static str>, bool, Option<u64>)>,
}

const fn case(
    provider: &'static str,
    file: &'static str,
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    want: Option<(Category, Option<&'static str>, bool, Option<u64>)>,
) -> Case {
    Case {
        provider,
        file,
        status,
        headers,
        want,
    }
}

const SF_SPENT: &[(&str, &str)] = &[("sforce-limit-info", "api-usage=100012/100000")];
const SF_LEFT: &[(&str, &str)] = &[("sforce-limit-info", "api-usage=18/100000; api-bursts=1/750")];
const NONE: &[(&str, &str)] = &[];

const CASES: &[Case] = &[
    // Salesforce: the errorCode decides before the status.
    case(
        "salesforce",
        "request_limit_daily.json",
        403,
        SF_SPENT,
        Some((QuotaExhausted, Some("REQUEST_LIMIT_EXCEEDED"), false, None)),
    ),
    // Without the usage header, the allocation's own message says it.
    case(
        "salesforce",
        "request_limit_daily.json",
        403,
        NONE,
        Some((QuotaExhausted, Some("REQUEST_LIMIT_EXCEEDED"), false, None)),
    ),
    // Allocation left: the concurrent long-running limit, which frees up in seconds.
    case(
        "salesforce",
        "request_limit_concurrent.json",
        403,
        SF_LEFT,
        Some((
            ProviderThrottled,
            Some("REQUEST_LIMIT_EXCEEDED"),
            true,
            None,
        )),
    ),
    case(
        "salesforce",
        "request_limit_concurrent.json",
        403,
        NONE,
        Some((
            ProviderThrottled,
            Some("REQUEST_LIMIT_EXCEEDED"),
            true,
            None,
        )),
    ),
    case(
        "salesforce",
        "invalid_session.json",
        401,
        NONE,
        Some((ProviderAuth, Some("INVALID_SESSION_ID"), false, None)),
    ),
    case(
        "salesforce",
        "insufficient_access.json",
        403,
        SF_LEFT,
        Some((
            ProviderPermission,
            Some("INSUFFICIENT_ACCESS_OR_READONLY"),
            false,
            None,
        )),
    ),
    case(
        "salesforce",
        "api_disabled.json",
        403,
        NONE,
        Some((
            ProviderPermission,
            Some("API_DISABLED_FOR_ORG"),
            false,
            None,
        )),
    ),
    case(
        "salesforce",
        "malformed_query.json",
        400,
        NONE,
        Some((Validation, Some("MALFORMED_QUERY"), false, None)),
    ),
    case(
        "salesforce",
        "invalid_field.json",
        400,
        NONE,
        Some((Validation, Some("INVALID_FIELD"), false, None)),
    ),
    case(
        "salesforce",
        "required_field_missing.json",
        400,
        NONE,
        Some((Validation, Some("REQUIRED_FIELD_MISSING"), false, None)),
    ),
    case(
        "salesforce",
        "query_timeout.json",
        400,
        NONE,
        Some((Validation, Some("QUERY_TIMEOUT"), false, None)),
    ),
    case(
        "salesforce",
        "not_found.json",
        404,
        NONE,
        Some((NotFound, Some("NOT_FOUND"), false, None)),
    ),
    case(
        "salesforce",
        "conflict_409.json",
        409,
        NONE,
        Some((Conflict, Some("CONFLICT"), false, None)),
    ),
    case(
        "salesforce",
        "precondition_412.json",
        412,
        NONE,
        Some((Conflict, Some("PRECONDITION_FAILED"), false, None)),
    ),
    case(
        "salesforce",
        "multiple_choices_300.json",
        300,
        NONE,
        Some((Conflict, None, false, None)),
    ),
    case(
        "salesforce",
        "server_busy_503.json",
        503,
        NONE,
        Some((ProviderUnavailable, Some("SERVER_UNAVAILABLE"), true, None)),
    ),
    case(
        "salesforce",
        "unknown_exception_500.json",
        500,
        NONE,
        Some((ProviderUnavailable, Some("UNKNOWN_EXCEPTION"), true, None)),
    ),
    // Composite: 200 whatever the subrequests did; the root failure decides.
    case(
        "salesforce",
        "composite_mixed.json",
        200,
        NONE,
        Some((Validation, Some("REQUIRED_FIELD_MISSING"), false, None)),
    ),
    case(
        "salesforce",
        "composite_all_or_none.json",
        200,
        NONE,
        Some((NotFound, Some("MALFORMED_ID"), false, None)),
    ),
    case(
        "salesforce",
        "composite_batch_failed.json",
        200,
        NONE,
        Some((Validation, Some("MALFORMED_QUERY"), false, None)),
    ),
    case(
        "salesforce",
        "composite_halted_only.json",
        200,
        NONE,
        Some((Validation, Some("PROCESSING_HALTED"), false, None)),
    ),
    case("salesforce", "composite_ok.json", 200, NONE, None),
    // HubSpot: 429 by policy; then the category.
    case(
        "hubspot",
        "rate_limit_ten_secondly.json",
        429,
        &[
            ("x-hubspot-ratelimit-interval-milliseconds", "10000"),
            ("x-hubspot-ratelimit-remaining", "0"),
        ],
        Some((ProviderThrottled, Some("RATE_LIMIT"), true, Some(10))),
    ),
    case(
        "hubspot",
        "rate_limit_secondly.json",
        429,
        NONE,
        Some((ProviderThrottled, Some("RATE_LIMIT"), true, Some(1))),
    ),
    case(
        "hubspot",
        "rate_limit_daily.json",
        429,
        NONE,
        Some((QuotaExhausted, Some("RATE_LIMIT"), false, None)),
    ),
    case(
        "hubspot",
        "missing_scopes.json",
        403,
        NONE,
        Some((ProviderPermission, Some("MISSING_SCOPES"), false, None)),
    ),
    case(
        "hubspot",
        "invalid_authentication.json",
        401,
        NONE,
        Some((ProviderAuth, Some("INVALID_AUTHENTICATION"), false, None)),
    ),
    case(
        "hubspot",
        "object_not_found.json",
        404,
        NONE,
        Some((NotFound, Some("OBJECT_NOT_FOUND"), false, None)),
    ),
    case(
        "hubspot",
        "validation_error.json",
        400,
        NONE,
        Some((Validation, Some("VALIDATION_ERROR"), false, None)),
    ),
    case(
        "hubspot",
        "conflict.json",
        409,
        NONE,
        Some((Conflict, Some("CONFLICT"), false, None)),
    ),
    case(
        "hubspot",
        "locked_423.json",
        423,
        NONE,
        Some((ProviderThrottled, Some("LOCKED"), true, Some(2))),
    ),
    case(
        "hubspot",
        "migration_477.json",
        477,
        &[("retry-after", "30")],
        Some((
            ProviderUnavailable,
            Some("MIGRATION_IN_PROGRESS"),
            true,
            Some(30),
        )),
    ),
    case(
        "hubspot",
        "bad_gateway_502.html",
        502,
        NONE,
        Some((ProviderUnavailable, None, true, None)),
    ),
    // Greenhouse: plain statuses, no codes; a 429 says nothing of how long.
    case(
        "greenhouse",
        "unauthorized_401.json",
        401,
        NONE,
        Some((ProviderAuth, None, false, None)),
    ),
    case(
        "greenhouse",
        "forbidden_403.json",
        403,
        NONE,
        Some((ProviderPermission, None, false, None)),
    ),
    case(
        "greenhouse",
        "not_found_404.json",
        404,
        NONE,
        Some((NotFound, None, false, None)),
    ),
    case(
        "greenhouse",
        "validation_422.json",
        422,
        NONE,
        Some((Validation, None, false, None)),
    ),
    case(
        "greenhouse",
        "rate_limit_429.json",
        429,
        NONE,
        Some((ProviderThrottled, None, true, Some(10))),
    ),
    case(
        "greenhouse-v3",
        "rate_limit_429.json",
        429,
        &[("retry-after", "4")],
        Some((ProviderThrottled, None, true, Some(4))),
    ),
    case(
        "greenhouse",
        "server_error_500.json",
        500,
        NONE,
        Some((ProviderUnavailable, None, true, None)),
    ),
    // Lever: `{code, message}`.
    case(
        "lever",
        "unauthorized.json",
        401,
        NONE,
        Some((ProviderAuth, Some("UnauthorizedError"), false, None)),
    ),
    case(
        "lever",
        "forbidden.json",
        403,
        NONE,
        Some((ProviderPermission, Some("ForbiddenError"), false, None)),
    ),
    case(
        "lever",
        "not_found.json",
        404,
        NONE,
        Some((NotFound, Some("ResourceNotFoundError"), false, None)),
    ),
    case(
        "lever",
        "bad_request.json",
        400,
        NONE,
        Some((Validation, Some("BadRequestError"), false, None)),
    ),
    case(
        "lever",
        "too_many_requests.json",
        429,
        NONE,
        Some((
            ProviderThrottled,
            Some("TooManyRequestsError"),
            true,
            Some(1),
        )),
    ),
    case(
        "lever",
        "server_error.json",
        500,
        NONE,
        Some((ProviderUnavailable, Some("InternalServerError"), true, None)),
    ),
    // Ashby: errors on a 200.
    case(
        "ashby",
        "application_not_found.json",
        200,
        NONE,
        Some((NotFound, Some("application_not_found"), false, None)),
    ),
    case(
        "ashby",
        "invalid_next_cursor.json",
        200,
        NONE,
        Some((Validation, Some("invalid_next_cursor"), false, None)),
    ),
    case(
        "ashby",
        "sync_token_expired.json",
        200,
        NONE,
        Some((Validation, Some("sync_token_expired"), false, None)),
    ),
    case(
        "ashby",
        "invalid_input.json",
        200,
        NONE,
        Some((Validation, Some("invalid_input"), false, None)),
    ),
    case(
        "ashby",
        "older_errors.json",
        200,
        NONE,
        Some((NotFound, Some("candidate_not_found"), false, None)),
    ),
    case("ashby", "warnings.json", 200, NONE, None),
    case(
        "ashby",
        "missing_key_401.json",
        401,
        NONE,
        Some((ProviderAuth, Some("unauthorized"), false, None)),
    ),
    case(
        "ashby",
        "wrong_key_403.json",
        403,
        NONE,
        Some((ProviderAuth, Some("invalid_api_key"), false, None)),
    ),
    case(
        "ashby",
        "missing_permission_403.json",
        403,
        NONE,
        Some((
            ProviderPermission,
            Some("missing_endpoint_permission"),
            false,
            None,
        )),
    ),
    case(
        "ashby",
        "rate_limit_429.json",
        429,
        &[("retry-after", "10")],
        Some((
            ProviderThrottled,
            Some("rate_limit_exceeded"),
            true,
            Some(10),
        )),
    ),
    case(
        "ashby",
        "rate_limit_429.json",
        429,
        &[
            ("retry-after", "60"),
            ("x-ratelimit-scope", "integration-partner"),
        ],
        Some((
            ProviderThrottled,
            Some("rate_limit_exceeded"),
            true,
            Some(60),
        )),
    ),
    // Custom: plain REST.
    case(
        "custom",
        "oauth_error.json",
        401,
        NONE,
        Some((ProviderAuth, Some("invalid_token"), false, None)),
    ),
    case(
        "custom",
        "problem.json",
        409,
        NONE,
        Some((Conflict, Some("version_mismatch"), false, None)),
    ),
];

fn classify(c: &Case, body: &[u8]) -> Option<ProviderError> {
    let status = StatusCode::from_u16(c.status).unwrap();
    provider(c.provider).classify_error(status, &headers(c.headers), body)
}

#[test]
fn every_documented_error_kind_is_classified_with_the_providers_code() {
    let mut wrong = Vec::new();
    for c in CASES {
        let got = classify(c, &golden(c.provider.trim_end_matches("-v3"), c.file)).map(|e| {
            (
                e.category,
                e.code,
                e.retryable,
                e.retry_after.map(|d| d.as_secs()),
            )
        });
        let want = c
            .want
            .map(|(cat, code, retryable, after)| (cat, code.map(str::to_owned), retryable, after));
        if got != want {
            wrong.push(format!(
                "{} {} {}: got {got:?}, want {want:?}",
                c.provider, c.status, c.file
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn retryable_follows_the_category_for_every_golden_error() {
    for c in CASES {
        if let Some(e) = classify(c, &golden(c.provider.trim_end_matches("-v3"), c.file)) {
            assert_eq!(
                e.retryable,
                e.category.retryable(),
                "{} {}",
                c.provider,
                c.file
            );
        }
    }
}

/// Bodies no provider means: truncated, markup, the wrong JSON types in the right places.
const GARBAGE: &[&[u8]] = &[
    b"",
    b"[{\"errorCode\":\"REQUEST_LIMIT_EXC",
    b"{\"success\":false,\"errorInfo\":{\"code\":",
    b"<html><body><h1>503 Service Unavailable</h1></body></html>",
    b"\xff\xfe\x00garbage",
    b"null",
    b"42",
    b"\"a string\"",
    b"[]",
    b"[null]",
    b"[{\"errorCode\":42}]",
    b"{\"category\":[\"MISSING_SCOPES\"],\"policyName\":7}",
    b"{\"success\":\"false\",\"errorInfo\":\"application_not_found\"}",
    b"{\"compositeResponse\":{\"httpStatusCode\":400}}",
    b"{\"compositeResponse\":[{\"httpStatusCode\":\"400\"},{\"httpStatusCode\":-1},{\"httpStatusCode\":1e99},{\"httpStatusCode\":70000}]}",
    b"{\"results\":[null,7,{\"statusCode\":500}]}",
    b"{\"errors\":[{\"code\":{\"nested\":true}}],\"code\":[1,2]}",
];

#[test]
fn garbage_bodies_leave_the_status_to_decide_and_never_panic() {
    let names = [
        "salesforce",
        "hubspot",
        "greenhouse",
        "greenhouse-v3",
        "lever",
        "ashby",
        "custom",
    ];
    let statuses = [
        200, 201, 300, 400, 401, 403, 404, 409, 412, 422, 423, 429, 477, 500, 502, 503, 504,
    ];
    for name in names {
        let p = provider(name);
        for status in statuses {
            let status = StatusCode::from_u16(status).unwrap();
            let bare = p.classify_error(status, &HeaderMap::new(), b"");
            for body in GARBAGE {
                let got = p.classify_error(status, &HeaderMap::new(), body);
                // One exception: a composite body whose subrequest says 500 is that failure.
                if name == "salesforce" && status.is_success() && got.is_some() {
                    assert_eq!(got.as_ref().map(|e| e.category), Some(ProviderUnavailable));
                    continue;
                }
                assert_eq!(
                    got.as_ref().map(|e| e.category),
                    bare.as_ref().map(|e| e.category),
                    "{name} {status} {:?}",
                    String::from_utf8_lossy(body)
                );
                assert!(
                    got.as_ref().and_then(|e| e.code.as_ref()).is_none(),
                    "{name} {status}"
                );
            }
        }
    }
}

#[test]
fn codes_cannot_carry_text_into_headers_or_logs() {
    let body =
        br#"[{"errorCode":"REQUEST_LIMIT_EXCEEDED\r\nx-injected: 1","message":"TotalRequests"}]"#;
    let e = provider("salesforce")
        .classify_error(StatusCode::FORBIDDEN, &HeaderMap::new(), body)
        .unwrap();
    assert_eq!(e.code, None);
    // No code: the status decides (a plain 403 is a missing permission).
    assert_eq!(e.category, ProviderPermission);
}

#[test]
fn only_the_answers_that_may_hide_errors_are_read_on_success() {
    let post = Method::POST;
    let get = Method::GET;
    let sf = provider("salesforce");
    assert!(sf.success_may_hold_errors(&post, "/services/data/v60.0/composite"));
    assert!(sf.success_may_hold_errors(&post, "/services/data/v60.0/composite/batch/"));
    assert!(!sf.success_may_hold_errors(&post, "/services/data/v60.0/composite/tree/Account"));
    assert!(!sf.success_may_hold_errors(&get, "/services/data/v60.0/query"));
    assert!(!sf.success_may_hold_errors(&post, "/services/data/v60.0/sobjects/Account"));
    let ashby = provider("ashby");
    assert!(ashby.success_may_hold_errors(&post, "/candidate.list"));
    assert!(ashby.success_may_hold_errors(&post, "/application.info"));
    for name in ["hubspot", "greenhouse", "lever", "custom"] {
        let p = provider(name);
        assert!(!p.success_may_hold_errors(&get, "/anything"), "{name}");
        assert!(!p.success_may_hold_errors(&post, "/anything"), "{name}");
    }
}

#[test]
fn page_links_are_named_where_each_provider_puts_them() {
    let get = Method::GET;
    let sf = provider("salesforce");
    for path in [
        "/services/data/v60.0/query",
        "/services/data/v60.0/queryAll/",
        "/services/data/v60.0/query/01gRO0000016PIAYA2-500",
    ] {
        assert_eq!(
            sf.page_links(&get, path).body_fields,
            ["/nextRecordsUrl"],
            "{path}"
        );
    }
    assert!(sf
        .page_links(&get, "/services/data/v60.0/sobjects/Account")
        .body_fields
        .is_empty());
    let hs = provider("hubspot");
    assert_eq!(
        hs.page_links(&get, "/crm/v3/objects/contacts").body_fields,
        ["/paging/next/link", "/paging/prev/link"]
    );
    assert_eq!(
        hs.page_links(&get, "/crm/v4/objects/contacts/51/associations/companies")
            .body_fields
            .len(),
        2
    );
    // A single record, and anything but a GET, is never read for links.
    for (method, path) in [
        (&get, "/crm/v3/objects/contacts/51"),
        (&Method::DELETE, "/crm/v3/objects/contacts"),
        (&Method::POST, "/crm/v3/objects/contacts/search"),
    ] {
        assert!(
            hs.page_links(method, path).body_fields.is_empty(),
            "{method} {path}"
        );
    }
    for name in ["greenhouse", "greenhouse-v3", "custom"] {
        let links = provider(name).page_links(&get, "/v1/candidates");
        assert!(links.link_header && links.body_fields.is_empty(), "{name}");
    }
    for name in ["lever", "ashby"] {
        let links = provider(name).page_links(&get, "/v1/opportunities");
        assert!(!links.link_header && links.body_fields.is_empty(), "{name}");
    }
}
