//! End-to-end: the error taxonomy on the passthrough path, and passthrough pagination behind
//! the guard, against the real binary and the simulators. Provider errors reach the caller with
//! the provider's status and body unchanged and Gatehouse's three headers
//! (`x-gatehouse-error-category`, `-code`, `x-gatehouse-retryable`), the 200-with-errors answers
//! included (Ashby's `success:false`, a Salesforce composite call), and the metrics and the
//! access log count them by category. Page links that point at the provider (HubSpot's
//! `paging.next.link`, Greenhouse's `Link` header, Salesforce's `nextRecordsUrl`) come back as
//! Gatehouse paths, and following them walks on through Gatehouse with its credential.

// Test code: a failed unwrap is a failed test with its message, and the real processes and
// sockets these tests drive run on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use gatehouse_e2e::{configs, Gatehouse};
use gatehouse_sim::{
    Provider, SimConfig, SimHandle, Simulator, DEMO_API_KEY, DEMO_CLIENT_ID,
    DEMO_PRIVATE_APP_TOKEN, DEMO_USER,
};
use std::time::{Duration, Instant};

const TOKEN: &str = "taxonomy-caller-token";

struct World {
    sf: SimHandle,
    sf_token: String,
    hs: SimHandle,
    gh: SimHandle,
    ashby: SimHandle,
    gatehouse: Gatehouse,
}

async fn start() -> World {
    let sf = Simulator::start(Provider::Salesforce, SimConfig::default())
        .await
        .unwrap();
    let hs = Simulator::start(Provider::HubSpot, SimConfig::default())
        .await
        .unwrap();
    let gh = Simulator::start(Provider::GreenhouseV1, SimConfig::default())
        .await
        .unwrap();
    let ashby = Simulator::start(Provider::Ashby, SimConfig::default())
        .await
        .unwrap();
    let sf_token = sf.issue_access_token(DEMO_CLIENT_ID, DEMO_USER);
    let bearer =
        |t: &str| format!("[connections.credentials]\ntype = \"bearer\"\ntoken = \"{t}\"\n");
    let basic = format!(
        "[connections.credentials]\ntype = \"basic\"\nusername = \"{DEMO_API_KEY}\"\npassword = \"\"\n"
    );
    let connection = |id: &str, provider: &str, sim: &SimHandle, rest: &str| {
        format!(
            "[[connections]]\nid = \"{id}\"\nprovider = \"{provider}\"\nbase_url = \"{}\"\n{rest}",
            sim.http_base_url()
        )
    };
    // The SOQL guard is not under test here: whole-table queries make the pages.
    let soql_off = "[connections.soql.rules]\nmissing-where = \"off\"\nmissing-limit = \"off\"\n";
    let config = format!(
        "{}{}{}{}{}{}",
        configs::server("request_timeout = \"10s\""),
        connection(
            "sf",
            "salesforce",
            &sf,
            &format!("{}{soql_off}", bearer(&sf_token))
        ),
        connection("hs", "hubspot", &hs, &bearer(DEMO_PRIVATE_APP_TOKEN)),
        connection("gh", "greenhouse", &gh, &basic),
        connection("ashby", "ashby", &ashby, &basic),
        configs::caller(
            "svc",
            TOKEN,
            &["sf", "hs", "gh", "ashby"],
            &["GET", "POST"],
            &["/**"]
        ),
    );
    let gatehouse = Gatehouse::start(&config);
    World {
        sf,
        sf_token,
        hs,
        gh,
        ashby,
        gatehouse,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// An answer as the caller sees it.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The three taxonomy headers.
    fn taxonomy(&self) -> (Option<&str>, Option<&str>, Option<&str>) {
        (
            self.header("x-gatehouse-error-category"),
            self.header("x-gatehouse-error-code"),
            self.header("x-gatehouse-retryable"),
        )
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }

    /// The body length agrees with the `Content-Length` the caller was given.
    fn framed_right(&self) -> bool {
        self.header("content-length")
            .is_none_or(|n| n.parse::<usize>().ok() == Some(self.body.len()))
    }
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body").to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

/// A request through Gatehouse to `path` (which starts with the connection id).
fn through(w: &World, method: reqwest::Method, path: &str, id: &str) -> reqwest::RequestBuilder {
    client()
        .request(method, format!("{}{path}", w.gatehouse.data_url()))
        .header("proxy-authorization", format!("Bearer {TOKEN}"))
        .header("x-request-id", id)
}

/// The access line of request `id`, once written.
async fn access_line(gh: &Gatehouse, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for line in gh.logs() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if v["target"] == "gatehouse::access" && v["request_id"] == id {
                return v;
            }
        }
        assert!(Instant::now() < deadline, "no access line for {id}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `gatehouse_requests_total` count for `connection` and `category` (all other labels
/// summed), once the records have been counted.
async fn requests_counted(gh: &Gatehouse, connection: &str, category: &str) -> u64 {
    let metrics = gh.metrics().await;
    metrics
        .lines()
        .filter(|l| l.starts_with("gatehouse_requests_total{"))
        .filter(|l| l.contains(&format!("connection=\"{connection}\"")))
        .filter(|l| l.contains(&format!("category=\"{category}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spent_salesforce_allocation_passes_through_unchanged_as_quota_exhausted() {
    let w = start().await;
    w.sf.faults().exhaust_quota();
    let path = "/services/data/v60.0/limits";
    let answer = send(through(
        &w,
        reqwest::Method::GET,
        &format!("/sf{path}"),
        "sf-quota",
    ))
    .await;
    assert_eq!(
        answer.status,
        403,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    // The allocation is spent (`Sforce-Limit-Info` says N/N): retrying soon cannot help.
    assert_eq!(
        answer.taxonomy(),
        (
            Some("quota_exhausted"),
            Some("REQUEST_LIMIT_EXCEEDED"),
            Some("false")
        )
    );
    // The provider's own answer, byte for byte, as the provider gives it to anyone.
    let direct = send(
        client()
            .get(format!("{}{path}", w.sf.http_base_url()))
            .bearer_auth(&w.sf_token),
    )
    .await;
    assert_eq!(direct.status, 403);
    assert_eq!(answer.body, direct.body);
    assert!(answer.framed_right());
    assert!(answer.header("sforce-limit-info").is_some());
    let line = access_line(&w.gatehouse, "sf-quota").await;
    assert_eq!(
        (
            &line["status"],
            &line["category"],
            &line["code"],
            &line["provider_error"]
        ),
        (
            &403.into(),
            &"quota_exhausted".into(),
            &"provider_error".into(),
            &"REQUEST_LIMIT_EXCEEDED".into()
        ),
        "{line}"
    );
    assert_eq!(
        requests_counted(&w.gatehouse, "sf", "quota_exhausted").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hubspot_429_is_provider_throttled_and_counted_by_category() {
    let w = start().await;
    let path = "/hs/crm/v3/objects/contacts?limit=1";
    let ok = send(through(&w, reqwest::Method::GET, path, "hs-ok")).await;
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.taxonomy(),
        (None, None, None),
        "a success carries none of them"
    );
    w.hs.faults().exhaust_quota();
    for n in 0..3 {
        let answer = send(through(
            &w,
            reqwest::Method::GET,
            path,
            &format!("hs-429-{n}"),
        ))
        .await;
        assert_eq!(answer.status, 429);
        assert_eq!(
            answer.taxonomy(),
            (Some("provider_throttled"), Some("RATE_LIMIT"), Some("true"))
        );
        // HubSpot sends no Retry-After; its burst window (10 s) is the hint.
        assert_eq!(answer.header("retry-after"), Some("10"));
        assert_eq!(answer.header("x-hubspot-ratelimit-remaining"), Some("0"));
        let body = answer.json();
        assert_eq!(body["policyName"], "TEN_SECONDLY_ROLLING");
        assert!(
            body["correlationId"].is_string(),
            "the provider's body: {body}"
        );
        assert!(answer.framed_right());
    }
    let line = access_line(&w.gatehouse, "hs-429-2").await;
    assert_eq!(line["category"], "provider_throttled", "{line}");
    assert_eq!(line["provider_error"], "RATE_LIMIT", "{line}");
    assert_eq!(
        requests_counted(&w.gatehouse, "hs", "provider_throttled").await,
        3
    );
    assert_eq!(requests_counted(&w.gatehouse, "hs", "none").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn ashby_success_false_stays_200_and_gets_the_headers() {
    let w = start().await;
    let post = |path: &str, body: serde_json::Value, id: &str| {
        through(&w, reqwest::Method::POST, path, id).json(&body)
    };
    let missing = send(post(
        "/ashby/application.info",
        serde_json::json!({"id": "00000000-0000-0000-0000-000000000000"}),
        "ashby-missing",
    ))
    .await;
    assert_eq!(missing.status, 200);
    assert_eq!(
        missing.taxonomy(),
        (
            Some("not_found"),
            Some("application_not_found"),
            Some("false")
        )
    );
    let body = missing.json();
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["errorInfo"]["code"], "application_not_found");
    assert!(missing.framed_right());
    let line = access_line(&w.gatehouse, "ashby-missing").await;
    assert_eq!(
        (&line["status"], &line["category"]),
        (&200.into(), &"not_found".into())
    );

    let listed = send(post(
        "/ashby/candidate.list",
        serde_json::json!({"limit": 2}),
        "ashby-ok",
    ))
    .await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["success"], true);
    assert_eq!(listed.taxonomy(), (None, None, None));
    assert_eq!(
        access_line(&w.gatehouse, "ashby-ok").await["category"],
        "none"
    );
    // A page over the 16 KiB inspection cap: its first bytes were read, the rest streams on,
    // and the caller gets it all, unmarked.
    let big = send(post(
        "/ashby/candidate.list",
        serde_json::json!({"limit": 100}),
        "ashby-big",
    ))
    .await;
    assert_eq!(big.status, 200);
    assert!(big.body.len() > 16 * 1024, "{} bytes", big.body.len());
    assert!(big.framed_right());
    assert_eq!(big.json()["results"].as_array().map(Vec::len), Some(100));
    assert_eq!(big.taxonomy(), (None, None, None));
    assert!(!w.ashby.received().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_salesforce_composite_with_a_failed_subrequest_is_an_error() {
    let w = start().await;
    let composite = serde_json::json!({
        "allOrNone": false,
        "compositeRequest": [
            {"method": "GET", "url": "/services/data/v60.0/limits", "referenceId": "limits"},
            {"method": "GET", "url": "/services/data/v60.0/sobjects/Account/001000000000000AAA", "referenceId": "gone"},
        ],
    });
    let path = "/sf/services/data/v60.0/composite";
    let answer =
        send(through(&w, reqwest::Method::POST, path, "sf-composite").json(&composite)).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let body = answer.json();
    let statuses: Vec<u64> = body["compositeResponse"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["httpStatusCode"].as_u64())
        .collect();
    assert_eq!(statuses, [200, 404], "{body}");
    assert_eq!(
        answer.taxonomy(),
        (Some("not_found"), Some("NOT_FOUND"), Some("false"))
    );
    assert!(answer.framed_right());
    // Every subrequest succeeding: a plain success.
    let fine = serde_json::json!({"compositeRequest": [
        {"method": "GET", "url": "/services/data/v60.0/limits", "referenceId": "limits"}
    ]});
    let ok = send(through(&w, reqwest::Method::POST, path, "sf-composite-ok").json(&fine)).await;
    assert_eq!((ok.status, ok.taxonomy()), (200, (None, None, None)));
}

#[tokio::test(flavor = "multi_thread")]
async fn following_hubspot_paging_link_stays_in_gatehouse() {
    let w = start().await;
    let first = send(through(
        &w,
        reqwest::Method::GET,
        "/hs/crm/v3/objects/contacts?limit=2",
        "hs-p1",
    ))
    .await;
    assert_eq!(first.status, 200);
    assert!(first.framed_right());
    let page = first.json();
    let link = page["paging"]["next"]["link"].as_str().unwrap().to_owned();
    assert!(
        link.starts_with("/hs/crm/v3/objects/contacts?after="),
        "a Gatehouse path, not the provider's URL: {link}"
    );
    let after = page["paging"]["next"]["after"].as_str().unwrap().to_owned();
    w.hs.clear_received();
    let second = send(through(&w, reqwest::Method::GET, &link, "hs-p2")).await;
    assert_eq!(second.status, 200);
    let ids = |p: &serde_json::Value| -> Vec<String> {
        p["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (one, two) = (ids(&page), ids(&second.json()));
    assert_eq!(two.len(), 2);
    assert_eq!(two[0], after, "the next page starts where the cursor said");
    assert!(one.iter().all(|id| !two.contains(id)));
    // The provider saw the follow-up from Gatehouse, with Gatehouse's credential.
    let received = w.hs.received();
    assert_eq!(received.len(), 1, "one provider call for the second page");
    assert_eq!(
        received[0].header("authorization"),
        Some(format!("Bearer {DEMO_PRIVATE_APP_TOKEN}").as_str())
    );
    assert!(received[0]
        .path_and_query
        .starts_with(&format!("/crm/v3/objects/contacts?after={after}")));
}

#[tokio::test(flavor = "multi_thread")]
async fn greenhouse_link_headers_and_salesforce_next_records_urls_come_back_as_gatehouse_paths() {
    let w = start().await;
    let first = send(through(
        &w,
        reqwest::Method::GET,
        "/gh/v1/candidates?per_page=2",
        "gh-p1",
    ))
    .await;
    assert_eq!(first.status, 200);
    let link = first.header("link").unwrap().to_owned();
    assert!(
        link.starts_with("</gh/v1/candidates?page=2&per_page=2>; rel=\"next\""),
        "{link}"
    );
    assert!(
        link.contains("rel=\"last\"") && !link.contains("127.0.0.1"),
        "{link}"
    );
    let next = link[1..link.find('>').unwrap()].to_owned();
    w.gh.clear_received();
    let second = send(through(&w, reqwest::Method::GET, &next, "gh-p2")).await;
    assert_eq!(second.status, 200);
    assert!(second
        .header("link")
        .unwrap()
        .contains("</gh/v1/candidates?page=1&per_page=2>; rel=\"prev\""));
    let received = w.gh.received();
    assert_eq!(received.len(), 1);
    assert!(received[0]
        .header("authorization")
        .unwrap()
        .starts_with("Basic "));
    assert_ne!(first.json(), second.json());

    // Greenhouse throttles without Retry-After: Gatehouse adds its 10 s window as the hint.
    w.gh.faults().exhaust_quota();
    let throttled = send(through(
        &w,
        reqwest::Method::GET,
        "/gh/v1/candidates",
        "gh-429",
    ))
    .await;
    assert_eq!(throttled.status, 429);
    assert_eq!(
        throttled.taxonomy(),
        (Some("provider_throttled"), None, Some("true"))
    );
    assert_eq!(throttled.header("retry-after"), Some("10"));
    assert_eq!(throttled.json()["message"], "Rate limit exceeded");

    let query = "/sf/services/data/v60.0/query?q=SELECT+Id+FROM+Account";
    let page = send(
        through(&w, reqwest::Method::GET, query, "sf-p1")
            .header("sforce-query-options", "batchSize=200"),
    )
    .await;
    assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
    assert!(page.framed_right());
    let body = page.json();
    assert_eq!(body["done"], false);
    let next = body["nextRecordsUrl"].as_str().unwrap().to_owned();
    assert!(next.starts_with("/sf/services/data/v60.0/query/"), "{next}");
    // Records keep their own (host-relative) URLs: only the page link is Gatehouse's.
    assert!(body["records"][0]["attributes"]["url"]
        .as_str()
        .unwrap()
        .starts_with("/services/data/"));
    let more = send(through(&w, reqwest::Method::GET, &next, "sf-p2")).await;
    assert_eq!(more.status, 200, "{}", String::from_utf8_lossy(&more.body));
    assert_eq!(more.json()["records"].as_array().unwrap().len(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn gatehouse_envelopes_carry_the_same_three_headers() {
    let w = start().await;
    let unknown = send(through(&w, reqwest::Method::GET, "/nope/x", "unknown-conn")).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.taxonomy(),
        (Some("not_found"), Some("unknown_connection"), Some("false"))
    );
    assert_eq!(unknown.json()["error"]["category"], "not_found");
}

/// A provider that answers each path with a scripted error, to reach the respond stage's edges.
fn raw_errors(path: &str) -> Vec<gatehouse_e2e::raw_provider::Step> {
    use gatehouse_e2e::raw_provider::write;
    let big = format!(
        "{{\"code\":\"too_big\",\"pad\":\"{}\"}}",
        "x".repeat(20 * 1024)
    );
    match path {
        // No Content-Length: read as it comes, up to the cap.
        "/chunked" => vec![write(
            "HTTP/1.1 409 Conflict\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nf\r\n{\"code\":\"stale_\r\na\r\nversion\"}\n\r\n0\r\n\r\n",
        )],
        // Over the cap: classified by its status alone, and sent on whole.
        "/big" => vec![write(format!(
            "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
            big.len()
        ))],
        // Compressed: not JSON to read, so the status decides.
        _ => vec![write(
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\ncontent-length: 6\r\n\r\n\x1f\x8b\x08\x00zz",
        )],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn error_bodies_without_a_length_over_the_cap_or_compressed_are_classified_safely() {
    let raw = gatehouse_e2e::raw_provider::RawProvider::start(raw_errors).await;
    let config = format!(
        "{}{}{}",
        configs::server("request_timeout = \"5s\""),
        configs::testapi_connection(
            "raw",
            &raw.url(),
            "credentials = { type = \"bearer\", token = \"t\" }"
        ),
        configs::caller("svc", TOKEN, &["raw"], &["GET"], &["/**"]),
    );
    let gatehouse = Gatehouse::start(&config);
    let get = |path: &str| {
        client()
            .get(format!("{}/raw{path}", gatehouse.data_url()))
            .header("proxy-authorization", format!("Bearer {TOKEN}"))
    };
    let chunked = send(get("/chunked")).await;
    assert_eq!(chunked.status, 409);
    assert_eq!(
        chunked.taxonomy(),
        (Some("conflict"), Some("stale_version"), Some("false"))
    );
    assert_eq!(chunked.body, b"{\"code\":\"stale_version\"}\n");

    let big = send(get("/big")).await;
    assert_eq!(big.status, 500);
    assert_eq!(
        big.taxonomy(),
        (Some("provider_unavailable"), None, Some("true"))
    );
    assert!(big.body.len() > 20 * 1024);
    assert_eq!(big.json()["code"], "too_big", "the whole body arrived");

    let gzip = send(get("/gzip")).await;
    assert_eq!(gzip.status, 400);
    assert_eq!(gzip.taxonomy(), (Some("validation"), None, Some("false")));
    assert_eq!(gzip.body, b"\x1f\x8b\x08\x00zz");
}
