//! Fault injection through the handle and the `/__sim/` admin endpoint, and the request record.

// Test code: a failed unwrap is a failed test with its message, and the real processes and
// sockets these tests drive run on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use std::time::{Duration, Instant};

use gatehouse_sim::{
    FaultTarget, Provider, SimConfig, SlowBody, TokenEndpointDown, DEMO_API_KEY, DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET, DEMO_REFRESH_TOKEN, DEMO_RUN_AS_USER,
};
use serde_json::{json, Value};

fn refresh_form() -> Vec<(&'static str, &'static str)> {
    vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", DEMO_REFRESH_TOKEN),
        ("client_id", DEMO_CLIENT_ID),
        ("client_secret", DEMO_CLIENT_SECRET),
    ]
}

/// One refresh-token call to the simulator's token endpoint.
async fn refresh(c: &reqwest::Client, sim: &gatehouse_sim::SimHandle) -> reqwest::Response {
    c.post(sim.token_url())
        .form(&refresh_form())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn error_bursts_resets_latency_and_slow_bodies() {
    let sim = common::start(Provider::Salesforce, SimConfig::default()).await;
    let c = common::client(&sim);
    let at = sim.issue_access_token(DEMO_CLIENT_ID, DEMO_RUN_AS_USER);
    let url = format!("{}/services/data/v66.0/limits", sim.http_base_url());

    sim.faults().fail_next(2, 503);
    for _ in 0..2 {
        let r = c.get(&url).bearer_auth(&at).send().await.unwrap();
        assert_eq!(r.status(), 503);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v[0]["errorCode"], "SERVER_UNAVAILABLE");
    }
    assert_eq!(
        c.get(&url).bearer_auth(&at).send().await.unwrap().status(),
        200
    );

    sim.faults().reset_next(1);
    assert!(
        c.get(&url).bearer_auth(&at).send().await.is_err(),
        "connection closed without a response"
    );
    assert_eq!(
        c.get(&url).bearer_auth(&at).send().await.unwrap().status(),
        200
    );

    sim.faults().set_latency(Duration::from_millis(150));
    let t = Instant::now();
    c.get(&url).bearer_auth(&at).send().await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
    sim.faults().set_latency(Duration::ZERO);

    sim.faults().set_slow_body(Some(SlowBody {
        chunk_bytes: 64,
        interval: Duration::from_millis(20),
    }));
    let t = Instant::now();
    let r = c.get(&url).bearer_auth(&at).send().await.unwrap();
    let body = r.bytes().await.unwrap();
    assert!(
        serde_json::from_slice::<Value>(&body).is_ok(),
        "the trickled body is complete"
    );
    let chunks = body.len().div_ceil(64) as u32;
    assert!(t.elapsed() >= Duration::from_millis(20) * (chunks - 1));
    sim.faults().clear();
    assert!(sim.faults().snapshot().slow_body.is_none());
}

#[tokio::test]
async fn token_endpoint_down_and_revocation() {
    let sim = common::start(Provider::HubSpot, SimConfig::default()).await;
    let c = common::client(&sim);
    sim.faults()
        .set_token_endpoint_down(Some(TokenEndpointDown::Unavailable));
    let r = refresh(&c, &sim).await;
    assert_eq!(r.status(), 503);
    sim.faults()
        .set_token_endpoint_down(Some(TokenEndpointDown::Reset));
    assert!(c
        .post(sim.token_url())
        .form(&refresh_form())
        .send()
        .await
        .is_err());
    sim.faults().set_token_endpoint_down(None);
    let r = refresh(&c, &sim).await;
    assert_eq!(r.status(), 200);
    let calls = sim.token_calls();
    assert_eq!(
        (calls.grant("refresh_token"), calls.failed("refresh_token")),
        (3, 2)
    );
    // API faults do not touch the token endpoint by default, and vice versa.
    sim.faults().fail_next_on(1, 500, FaultTarget::Token);
    let at = sim.issue_access_token(DEMO_CLIENT_ID, "u@example.com");
    let api = format!("{}/crm/v3/objects/contacts?limit=1", sim.http_base_url());
    assert_eq!(
        c.get(&api).bearer_auth(&at).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        c.post(sim.token_url())
            .form(&refresh_form())
            .send()
            .await
            .unwrap()
            .status(),
        500
    );
    // Revocation kills access and refresh tokens.
    sim.faults().revoke_all_tokens();
    assert_eq!(
        c.get(&api).bearer_auth(&at).send().await.unwrap().status(),
        401
    );
    let r = refresh(&c, &sim).await;
    assert_eq!(r.status(), 400);
}

/// A provider that revoked the app: every access token is refused, even one issued a moment
/// ago, while the token endpoint keeps issuing them; API keys are refused the same way.
#[tokio::test]
async fn reject_credentials_refuses_fresh_tokens_and_api_keys_until_cleared() {
    let sim = common::start(Provider::Salesforce, SimConfig::default()).await;
    let c = common::client(&sim);
    let api = format!("{}/services/data/v66.0/limits", sim.http_base_url());
    sim.faults().set_reject_credentials(true);
    assert!(sim.faults().snapshot().reject_credentials);
    let r = refresh(&c, &sim).await;
    assert_eq!(r.status(), 200, "the token endpoint still issues tokens");
    let fresh: Value = r.json().await.unwrap();
    let fresh = fresh["access_token"].as_str().unwrap().to_owned();
    let r = c.get(&api).bearer_auth(&fresh).send().await.unwrap();
    assert_eq!(r.status(), 401, "a fresh token is refused");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v[0]["errorCode"], "INVALID_SESSION_ID");
    sim.faults().clear();
    assert_eq!(
        c.get(&api)
            .bearer_auth(&fresh)
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "clear() lifts the fault"
    );

    let ashby = common::start(Provider::Ashby, SimConfig::default()).await;
    let c = common::client(&ashby);
    let url = format!("{}/candidate.list", ashby.https_base_url());
    let send = || {
        c.post(&url)
            .header("authorization", common::basic(DEMO_API_KEY))
            .json(&json!({}))
            .send()
    };
    // Through the admin endpoint, as a test in another process would set it.
    let set = c
        .post(format!("{}/__sim/faults", ashby.https_base_url()))
        .json(&json!({"reject_credentials": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let r = send().await.unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errorInfo"]["code"], "invalid_api_key", "{v}");
    ashby.faults().set_reject_credentials(false);
    assert_eq!(send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn admin_endpoint_sets_faults_and_exposes_the_record() {
    let sim = common::start(Provider::Salesforce, SimConfig::default()).await;
    let c = common::client(&sim);
    let admin = format!("{}/__sim", sim.https_base_url());
    let r = c
        .post(format!("{admin}/faults"))
        .json(&json!({"fail_next": {"count": 1, "status": 500}, "exhaust_quota": true, "rotation": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error_burst_remaining"], 1);
    assert_eq!(v["rotation"], false);
    let at = sim.issue_access_token(DEMO_CLIENT_ID, DEMO_RUN_AS_USER);
    let url = format!("{}/services/data/v66.0/limits", sim.http_base_url());
    assert_eq!(
        c.get(&url).bearer_auth(&at).send().await.unwrap().status(),
        500
    );
    assert_eq!(
        c.get(&url).bearer_auth(&at).send().await.unwrap().status(),
        403,
        "quota exhausted"
    );
    c.post(format!("{admin}/faults"))
        .json(&json!({"reset_quota": true}))
        .send()
        .await
        .unwrap();
    c.post(sim.token_url())
        .form(&refresh_form())
        .send()
        .await
        .unwrap();

    let rec: Value = c
        .get(format!("{admin}/received"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rec = rec.as_array().unwrap();
    assert_eq!(rec.len(), 3, "admin calls are not recorded");
    assert_eq!(rec[0]["method"], "GET");
    assert_eq!(rec[0]["path_and_query"], "/services/data/v66.0/limits");
    let auth = rec[0]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "authorization")
        .unwrap();
    assert_eq!(auth[1], format!("Bearer {at}"));
    assert!(rec[2]["body"]
        .as_str()
        .unwrap()
        .contains("refresh_token=demo-refresh-token"));
    let calls: Value = c
        .get(format!("{admin}/token_calls"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(calls["by_grant_type"]["refresh_token"], 1);
    // Rotation off: the refresh token is still current.
    let rts: Value = c
        .get(format!("{admin}/refresh_tokens"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(rts["refresh_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == DEMO_REFRESH_TOKEN));
    let minted: Value = c
        .post(format!("{admin}/refresh_tokens"))
        .json(&json!({"user": "x@example.com"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(sim.refresh_token_is_live(minted["refresh_token"].as_str().unwrap()));
    assert_eq!(
        c.delete(format!("{admin}/received"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert!(sim.received().is_empty());
    assert_eq!(sim.token_calls().total, 0);
    let r = c
        .post(format!("{admin}/faults"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn shared_ca_and_shutdown() {
    let ca = gatehouse_sim::TestCa::generate().unwrap();
    let cfg = || SimConfig {
        ca: Some(ca.clone()),
        ..SimConfig::default()
    };
    let a = common::start(Provider::Lever, cfg()).await;
    let b = common::start(Provider::Ashby, cfg()).await;
    assert_eq!(a.ca_pem(), b.ca_pem());
    let c = common::client(&a);
    let r = c
        .get(format!(
            "{}/v1/postings",
            b.https_base_url().replace("localhost", "127.0.0.1")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "IP SAN works too (and Ashby wants a key)");
    let url = a.http_base_url();
    a.shutdown().await;
    assert!(c.get(format!("{url}/v1/postings")).send().await.is_err());
    b.shutdown().await;
}
