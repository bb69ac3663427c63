//! Lever (limit/offset → data/hasNext/next, ms timestamps, 429) and Ashby (RPC, cursor,
//! syncToken, 200 success:false errors, 401/403, 429 scope) (providers.md §4, §5).

// Test code: a failed unwrap is a failed test with its message, and the real processes and
// sockets these tests drive run on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use gatehouse_sim::{Provider, SimConfig, DEMO_API_KEY};
use serde_json::{json, Value};

#[tokio::test]
async fn lever_pages_with_offset_next_and_ms_timestamps() {
    let cfg = SimConfig {
        record_count: Some(230),
        quota_limit: Some(1000),
        ..SimConfig::default()
    };
    let sim = common::start(Provider::Lever, cfg).await;
    let c = common::client(&sim);
    let auth = common::basic(DEMO_API_KEY);
    let mut url = format!("{}/v1/opportunities?limit=100", sim.http_base_url());
    let mut total = 0;
    loop {
        let r = c
            .get(&url)
            .header("authorization", &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        let data = v["data"].as_array().unwrap();
        total += data.len();
        let created = data[0]["createdAt"].as_i64().unwrap();
        assert!(created > 1_600_000_000_000, "Unix milliseconds: {created}");
        assert!(data[0]["emails"].is_array() && data[0]["phones"][0]["type"].is_string());
        if v["hasNext"] == true {
            let next = v["next"].as_str().unwrap();
            url = format!(
                "{}/v1/opportunities?limit=100&offset={next}",
                sim.http_base_url()
            );
        } else {
            assert!(v.get("next").is_none());
            break;
        }
    }
    assert_eq!(total, 230);
    let r = c
        .get(format!("{}/v1/postings?limit=101", sim.http_base_url()))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = c
        .get(format!(
            "{}/v1/opportunities?updated_at_start=1767225600000",
            sim.http_base_url()
        ))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        v["data"].as_array().unwrap().is_empty(),
        "nothing updated after the data anchor"
    );
}

#[tokio::test]
async fn lever_auth_and_429() {
    let cfg = SimConfig {
        quota_limit: Some(1),
        ..SimConfig::default()
    };
    let sim = common::start(Provider::Lever, cfg).await;
    let c = common::client(&sim);
    let url = format!("{}/v1/postings", sim.http_base_url());
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert!(v["code"].is_string() && v["message"].is_string());
    assert_eq!(
        c.get(&url)
            .header("authorization", common::basic(DEMO_API_KEY))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(&url)
            .header("authorization", common::basic(DEMO_API_KEY))
            .send()
            .await
            .unwrap()
            .status(),
        429
    );
}

async fn ashby(
    c: &reqwest::Client,
    url: &str,
    body: Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = c
        .post(url)
        .header("authorization", common::basic(DEMO_API_KEY))
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    let h = r.headers().clone();
    (s, h, r.json().await.unwrap())
}

#[tokio::test]
async fn ashby_cursor_paging_ends_with_sync_token_and_incremental_sync() {
    let cfg = SimConfig {
        record_count: Some(250),
        quota_limit: Some(1000),
        ..SimConfig::default()
    };
    let sim = common::start(Provider::Ashby, cfg).await;
    let c = common::client(&sim);
    let url = format!("{}/candidate.list", sim.https_base_url());
    let mut body = json!({"limit": 100});
    let mut total = 0;
    let sync_token;
    loop {
        let (s, _, v) = ashby(&c, &url, body.clone()).await;
        assert_eq!(s, 200);
        assert_eq!(v["success"], true);
        total += v["results"].as_array().unwrap().len();
        if v["moreDataAvailable"] == true {
            assert!(v.get("syncToken").is_none());
            body = json!({"limit": 100, "cursor": v["nextCursor"]});
        } else {
            sync_token = v["syncToken"].as_str().unwrap().to_owned();
            break;
        }
    }
    assert_eq!(total, 250);
    let (_, _, v) = ashby(&c, &url, json!({"syncToken": sync_token})).await;
    assert_eq!(v["success"], true);
    assert!(
        v["results"].as_array().unwrap().is_empty(),
        "no changes since the sync token"
    );
    assert!(v["syncToken"].is_string());
    // Errors are HTTP 200 with success:false.
    let (s, _, v) = ashby(&c, &url, json!({"cursor": "garbage"})).await;
    assert_eq!((s, v["success"].as_bool()), (200, Some(false)));
    assert_eq!(v["errorInfo"]["code"], "invalid_next_cursor");
    assert!(v["errorInfo"]["requestId"].is_string());
    let (_, _, v) = ashby(&c, &url, json!({"syncToken": "garbage"})).await;
    assert_eq!(v["errorInfo"]["code"], "sync_token_invalid");
    let (s, _, v) = ashby(
        &c,
        &format!("{}/application.info", sim.https_base_url()),
        json!({"id": "00000000-0000-0000-0000-000000000000"}),
    )
    .await;
    assert_eq!(
        (s, v["errorInfo"]["code"].as_str()),
        (200, Some("application_not_found"))
    );
    let (_, _, v) = ashby(&c, &format!("{}/job.list", sim.https_base_url()), json!({})).await;
    assert!(v["results"][0]["title"].is_string());
}

#[tokio::test]
async fn ashby_auth_and_429_with_partner_scope() {
    let cfg = SimConfig {
        quota_limit: Some(1),
        ..SimConfig::default()
    };
    let sim = common::start(Provider::Ashby, cfg).await;
    let c = common::client(&sim);
    let url = format!("{}/job.list", sim.http_base_url());
    assert_eq!(
        c.post(&url).json(&json!({})).send().await.unwrap().status(),
        401
    );
    assert_eq!(
        c.post(&url)
            .header("authorization", common::basic("wrong"))
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let (s, _, _) = ashby(&c, &url, json!({})).await;
    assert_eq!(s, 200);
    let (s, h, _) = ashby(&c, &url, json!({})).await;
    assert_eq!(s, 429);
    assert!(
        h.get("x-ratelimit-scope").is_none(),
        "per-key 429 has no scope header"
    );
    sim.faults().set_partner_throttle(true);
    let (s, h, _) = ashby(&c, &url, json!({})).await;
    assert_eq!(s, 429);
    assert_eq!(h["x-ratelimit-scope"], "integration-partner");
}
