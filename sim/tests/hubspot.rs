//! HubSpot OAuth, CRM v3 paging/search, rate-limit headers and 429s (providers.md §2).

// Test code: a failed unwrap is a failed test with its message, and the real processes and
// sockets these tests drive run on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use gatehouse_sim::{
    Provider, SimConfig, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_PRIVATE_APP_TOKEN,
    DEMO_REFRESH_TOKEN, DEMO_USER,
};
use serde_json::{json, Value};

fn refresh_form(rt: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("client_id", DEMO_CLIENT_ID),
        ("client_secret", DEMO_CLIENT_SECRET),
    ]
}

#[tokio::test]
async fn refresh_returns_expires_in_1800_scopes_and_same_refresh_token() {
    let sim = common::start(Provider::HubSpot, SimConfig::default()).await;
    let c = common::client(&sim);
    let r = c
        .post(sim.token_url())
        .form(&refresh_form(DEMO_REFRESH_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["expires_in"], 1800);
    assert_eq!(v["token_type"], "bearer");
    assert_eq!(
        v["refresh_token"], DEMO_REFRESH_TOKEN,
        "no rotation by default"
    );
    assert!(v["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "crm.objects.contacts.read"));
    // Rotation can be switched on.
    sim.faults().set_rotation(true);
    let v: Value = c
        .post(sim.token_url())
        .form(&refresh_form(DEMO_REFRESH_TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rotated = v["refresh_token"].as_str().unwrap();
    assert_ne!(rotated, DEMO_REFRESH_TOKEN);
    assert_eq!(
        sim.current_refresh_token(DEMO_CLIENT_ID).as_deref(),
        Some(rotated)
    );
}

#[tokio::test]
async fn bad_refresh_token_and_unsupported_grants() {
    let sim = common::start(Provider::HubSpot, SimConfig::default()).await;
    let c = common::client(&sim);
    let r = c
        .post(sim.token_url())
        .form(&refresh_form("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "BAD_REFRESH_TOKEN");
    assert_eq!(v["message"], "missing or invalid refresh token");
    assert!(v["correlationId"].is_string());
    // The v3 endpoint adds the RFC 6749 fields.
    let r = c
        .post(format!("{}/oauth/v3/token", sim.http_base_url()))
        .form(&refresh_form("nope"))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_grant");
    // No client credentials grant at HubSpot.
    let r = c
        .post(sim.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "BAD_GRANT_TYPE");
    // Revoking via DELETE kills the refresh token.
    let rt = sim.issue_refresh_token(DEMO_CLIENT_ID, DEMO_USER);
    let r = c
        .delete(format!(
            "{}/oauth/v1/refresh-tokens/{rt}",
            sim.http_base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = c
        .post(sim.token_url())
        .form(&refresh_form(&rt))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(sim.token_calls().failed("refresh_token"), 3);
}

#[tokio::test]
async fn list_pages_with_after_until_paging_is_absent() {
    let cfg = SimConfig {
        record_count: Some(250),
        quota_limit: Some(1000),
        ..SimConfig::default()
    };
    let sim = common::start(Provider::HubSpot, cfg).await;
    let c = common::client(&sim);
    let mut url = format!("{}/crm/v3/objects/contacts?limit=100", sim.http_base_url());
    let mut total = 0;
    let mut pages = 0;
    loop {
        let r = c
            .get(&url)
            .bearer_auth(DEMO_PRIVATE_APP_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        let results = v["results"].as_array().unwrap();
        let first = &results[0];
        assert!(first["id"].is_string());
        for p in [
            "email",
            "firstname",
            "lastname",
            "hs_object_id",
            "createdate",
            "lastmodifieddate",
        ] {
            assert!(first["properties"][p].is_string(), "{p}");
        }
        assert!(
            first["createdAt"].is_string()
                && first["updatedAt"].is_string()
                && first["archived"] == false
        );
        total += results.len();
        pages += 1;
        match v["paging"]["next"]["after"].as_str() {
            Some(after) => {
                assert!(v["paging"]["next"]["link"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("after={after}")));
                url = format!(
                    "{}/crm/v3/objects/contacts?limit=100&after={after}",
                    sim.http_base_url()
                );
            }
            None => {
                assert!(v.get("paging").is_none());
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    assert!(
        total > 230 && total < 250,
        "archived ones excluded: {total}"
    );
    // Default limit is 10.
    let v: Value = c
        .get(format!("{}/crm/v3/objects/deals", sim.http_base_url()))
        .bearer_auth(DEMO_PRIVATE_APP_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["results"].as_array().unwrap().len(), 10);
    assert!(v["results"][0]["properties"]["dealstage"].is_string());
}

#[tokio::test]
async fn search_caps_at_10000() {
    let cfg = SimConfig {
        record_count: Some(12_000),
        ..SimConfig::default()
    };
    let sim = common::start(Provider::HubSpot, cfg).await;
    let c = common::client(&sim);
    let url = format!("{}/crm/v3/objects/companies/search", sim.http_base_url());
    let r = c
        .post(&url)
        .bearer_auth(DEMO_PRIVATE_APP_TOKEN)
        .json(&json!({"filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "0"}]}], "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}], "limit": 200}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(v["total"].as_u64().unwrap() > 10_000);
    assert_eq!(v["paging"]["next"]["after"], "200");
    let r = c
        .post(&url)
        .bearer_auth(DEMO_PRIVATE_APP_TOKEN)
        .json(&json!({"limit": 100, "after": "10000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["category"], "VALIDATION_ERROR");
}

#[tokio::test]
async fn rate_headers_differ_for_oauth_and_private_apps_and_429_names_the_policy() {
    let cfg = SimConfig {
        quota_limit: Some(3),
        ..SimConfig::default()
    };
    let sim = common::start(Provider::HubSpot, cfg).await;
    let c = common::client(&sim);
    let url = format!("{}/crm/v3/objects/contacts?limit=1", sim.http_base_url());
    let r = c
        .get(&url)
        .bearer_auth(DEMO_PRIVATE_APP_TOKEN)
        .send()
        .await
        .unwrap();
    let h = r.headers();
    assert_eq!(h["x-hubspot-ratelimit-max"], "3");
    assert_eq!(h["x-hubspot-ratelimit-remaining"], "2");
    assert_eq!(h["x-hubspot-ratelimit-interval-milliseconds"], "10000");
    assert!(
        h.contains_key("x-hubspot-ratelimit-daily")
            && h.contains_key("x-hubspot-ratelimit-daily-remaining")
    );
    let at = sim.issue_access_token(DEMO_CLIENT_ID, DEMO_USER);
    let r = c.get(&url).bearer_auth(&at).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-hubspot-ratelimit-max"));
    assert!(
        !r.headers().contains_key("x-hubspot-ratelimit-daily"),
        "not sent for OAuth calls"
    );
    c.get(&url).bearer_auth(&at).send().await.unwrap();
    let r = c.get(&url).bearer_auth(&at).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["policyName"], "TEN_SECONDLY_ROLLING");
    assert_eq!(v["errorType"], "RATE_LIMIT");
    sim.faults().reset_quota();
    sim.faults().exhaust_daily_quota();
    let r = c
        .get(&url)
        .bearer_auth(DEMO_PRIVATE_APP_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["policyName"], "DAILY");
    assert_eq!(
        c.get(&url).bearer_auth(&at).send().await.unwrap().status(),
        200,
        "OAuth apps have no daily cap here"
    );
}

#[tokio::test]
async fn expired_or_unknown_token_gets_401_invalid_authentication() {
    let cfg = SimConfig {
        access_token_lifetime: Some(Duration::from_millis(200)),
        ..SimConfig::default()
    };
    let sim = common::start(Provider::HubSpot, cfg).await;
    let c = common::client(&sim);
    let v: Value = c
        .post(sim.token_url())
        .form(&refresh_form(DEMO_REFRESH_TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["expires_in"], 0, "lifetime below a second rounds down");
    let at = v["access_token"].as_str().unwrap();
    let url = format!("{}/crm/v3/objects/contacts/101", sim.https_base_url());
    let r = c.get(&url).bearer_auth(at).send().await.unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for token in [at, "garbage"] {
        let r = c.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["category"], "INVALID_AUTHENTICATION");
        assert_eq!(v["status"], "error");
    }
}
