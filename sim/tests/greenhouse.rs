//! Greenhouse v1 (Basic, page/per_page + Link, X-RateLimit-*) and v3 (OAuth, cursor) (§3).

// Test code: a failed unwrap is a failed test with its message, and the real processes and
// sockets these tests drive run on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use gatehouse_sim::{Provider, SimConfig, DEMO_API_KEY, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};
use serde_json::Value;

fn links(h: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    let Some(v) = h.get("link") else {
        return Vec::new();
    };
    v.to_str()
        .unwrap()
        .split(", <")
        .map(|part| {
            let (url, rel) = part.split_once(">; rel=\"").unwrap();
            (
                rel.trim_end_matches('"').to_owned(),
                url.trim_start_matches('<').to_owned(),
            )
        })
        .collect()
}

fn rel<'a>(l: &'a [(String, String)], name: &str) -> Option<&'a str> {
    l.iter().find(|(r, _)| r == name).map(|(_, u)| u.as_str())
}

#[tokio::test]
async fn v1_link_header_next_prev_last_and_skip_count() {
    let cfg = SimConfig {
        record_count: Some(250),
        quota_limit: Some(1000),
        ..SimConfig::default()
    };
    let sim = common::start(Provider::GreenhouseV1, cfg).await;
    let c = common::client(&sim);
    let base = sim.https_base_url();
    let r = c
        .get(format!("{base}/v1/candidates?per_page=100"))
        .header("authorization", common::basic(DEMO_API_KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ratelimit-limit"], "1000");
    assert_eq!(r.headers()["x-ratelimit-remaining"], "999");
    let l = links(r.headers());
    assert_eq!(
        rel(&l, "next"),
        Some(format!("{base}/v1/candidates?page=2&per_page=100").as_str())
    );
    assert!(rel(&l, "last").unwrap().contains("page=3"));
    assert!(rel(&l, "prev").is_none());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v.as_array().unwrap().len(), 100);
    assert!(
        v[0]["id"].is_u64()
            && v[0]["email_addresses"].is_array()
            && v[0]["application_ids"].is_array()
    );

    let r = c
        .get(format!("{base}/v1/candidates?page=3&per_page=100"))
        .header("authorization", common::basic(DEMO_API_KEY))
        .send()
        .await
        .unwrap();
    let l = links(r.headers());
    assert!(rel(&l, "next").is_none(), "last page has no next");
    assert!(rel(&l, "prev").unwrap().contains("page=2"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v.as_array().unwrap().len(), 50);

    let r = c
        .get(format!("{base}/v1/candidates?per_page=100&skip_count=true"))
        .header("authorization", common::basic(DEMO_API_KEY))
        .send()
        .await
        .unwrap();
    let l = links(r.headers());
    assert!(rel(&l, "next").unwrap().contains("skip_count=true"));
    assert!(rel(&l, "last").is_none());
    // One page only: no Link header at all.
    let r = c
        .get(format!("{base}/v1/jobs?per_page=500"))
        .header("authorization", common::basic(DEMO_API_KEY))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("link").is_none());
    // per_page above 500 is a 422 validation error.
    let r = c
        .get(format!("{base}/v1/applications?per_page=501"))
        .header("authorization", common::basic(DEMO_API_KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["field"], "per_page");
}

#[tokio::test]
async fn v1_auth_and_429_without_rate_headers() {
    let cfg = SimConfig {
        quota_limit: Some(2),
        ..SimConfig::default()
    };
    let sim = common::start(Provider::GreenhouseV1, cfg).await;
    let c = common::client(&sim);
    let url = format!("{}/v1/jobs", sim.http_base_url());
    assert_eq!(c.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(
        c.get(&url)
            .header("authorization", common::basic("wrong"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    for _ in 0..2 {
        let r = c
            .get(&url)
            .header("authorization", common::basic(DEMO_API_KEY))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().contains_key("x-ratelimit-remaining"));
    }
    let r = c
        .get(&url)
        .header("authorization", common::basic(DEMO_API_KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("x-ratelimit-limit").is_none());
    assert!(r.headers().get("x-ratelimit-remaining").is_none());
    let rec = sim.received();
    assert_eq!(
        rec.last().unwrap().header("authorization"),
        Some(common::basic(DEMO_API_KEY).as_str())
    );
}

#[tokio::test]
async fn v1_rejects_plain_http_when_configured() {
    let cfg = SimConfig {
        reject_plain_http: true,
        ..SimConfig::default()
    };
    let sim = common::start(Provider::GreenhouseV1, cfg).await;
    let c = common::client(&sim);
    let auth = common::basic(DEMO_API_KEY);
    let r = c
        .get(format!("{}/v1/jobs", sim.http_base_url()))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .get(format!("{}/v1/jobs", sim.https_base_url()))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn v3_client_credentials_and_cursor_must_be_the_only_parameter() {
    let cfg = SimConfig {
        record_count: Some(120),
        ..SimConfig::default()
    };
    let sim = common::start(Provider::GreenhouseV3, cfg).await;
    let c = common::client(&sim);
    let r = c
        .post(sim.token_url())
        .basic_auth(DEMO_CLIENT_ID, Some(DEMO_CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials"), ("sub", "4080")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["expires_in"], 3600);
    let at = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(at.split('.').count(), 3, "JWT-shaped access token");
    let r = c
        .post(sim.token_url())
        .basic_auth(DEMO_CLIENT_ID, Some(DEMO_CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "sub is required");

    let mut url = format!(
        "{}/v3/applications?per_page=50&status=active",
        sim.http_base_url()
    );
    let mut seen = 0;
    let mut pages = 0;
    loop {
        let r = c.get(&url).bearer_auth(&at).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let l = links(r.headers());
        assert!(rel(&l, "prev").is_none() && rel(&l, "last").is_none());
        let next = rel(&l, "next").map(str::to_owned);
        let v: Value = r.json().await.unwrap();
        assert!(
            v.as_array()
                .unwrap()
                .iter()
                .all(|a| a["status"] == "active"),
            "filters carried by the cursor"
        );
        seen += v.as_array().unwrap().len();
        pages += 1;
        match next {
            Some(n) => {
                let u = url::Url::parse(&n).unwrap();
                assert_eq!(u.query_pairs().count(), 1);
                assert_eq!(u.query_pairs().next().unwrap().0, "cursor");
                url = n;
            }
            None => break,
        }
    }
    assert!(pages >= 2 && seen > 0 && seen < 120);
    let r = c
        .get(format!("{}/v3/candidates?per_page=10", sim.http_base_url()))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    let next = rel(&links(r.headers()), "next").unwrap().to_owned();
    let r = c
        .get(format!("{next}&per_page=10"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "cursor plus other params is rejected");
    assert_eq!(
        c.get(format!("{}/v3/jobs", sim.http_base_url()))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}
