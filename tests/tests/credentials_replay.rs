//! End-to-end: a 401 from the provider → one refresh → one replay of the same request, body
//! included; bodies over the replay cap; a provider whose profile refreshes on TTL instead; a
//! dead grant; and no secret anywhere a caller or an operator can see.

// Test code: a failed unwrap is a failed test with its message, and the real processes and
// sockets these tests drive run on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use gatehouse_e2e::{configs, Gatehouse};
use gatehouse_sim::{
    Provider, SimConfig, SimHandle, Simulator, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET,
    DEMO_REFRESH_TOKEN,
};

const TOKEN: &str = "replay-caller";

fn config(sf: &SimHandle, hs: &SimHandle) -> String {
    let refreshing = |id, provider, sim: &SimHandle| {
        let (base, token) = (sim.http_base_url(), sim.token_url());
        configs::oauth_refresh_connection(id, provider, &base, &token, DEMO_REFRESH_TOKEN, "")
    };
    format!(
        "{}[store]\ndata_dir = \"data\"\n{}{}{}",
        configs::server("replay_buffer_bytes = 256"),
        refreshing("sf", "salesforce", sf),
        refreshing("hs", "hubspot", hs),
        configs::caller("app", TOKEN, &["sf", "hs"], &["GET", "POST"], &["/**"])
    )
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

async fn post_account(gh: &Gatehouse, name: &str) -> (u16, serde_json::Value) {
    let response = client()
        .post(format!(
            "{}/sf/services/data/v60.0/sobjects/Account",
            gh.data_url()
        ))
        .header("proxy-authorization", format!("Bearer {TOKEN}"))
        .json(&serde_json::json!({ "Name": name }))
        .send()
        .await
        .expect("send");
    (
        response.status().as_u16(),
        response.json().await.unwrap_or_default(),
    )
}

fn posts(sim: &SimHandle) -> Vec<gatehouse_sim::ReceivedRequest> {
    sim.received()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path_and_query.contains("/sobjects/Account"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_401_refreshes_once_and_replays_the_same_body() {
    let sf = Simulator::start(Provider::Salesforce, SimConfig::default())
        .await
        .expect("sf");
    let hs = Simulator::start(Provider::HubSpot, SimConfig::default())
        .await
        .expect("hs");
    let gh = Gatehouse::start_with(
        &config(&sf, &hs),
        &[],
        &[(
            "GATEHOUSE_STORE_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )],
    );

    let (status, body) = post_account(&gh, "First").await;
    assert_eq!(status, 201, "{body}");
    let refreshes_before = sf.token_calls().total;

    // The provider forgets every access token: the cached one is now stale.
    sf.faults().expire_access_tokens();
    let (status, body) = post_account(&gh, "Replayed").await;
    assert_eq!(status, 201, "the caller never sees the 401: {body}");
    assert_eq!(
        sf.token_calls().total,
        refreshes_before + 1,
        "exactly one refresh"
    );
    let sent = posts(&sf);
    assert_eq!(sent.len(), 3, "first create, the rejected try, the replay");
    assert_eq!(
        sent[1].body, sent[2].body,
        "the replay carries the same JSON body"
    );
    assert_ne!(
        sent[1].header("authorization"),
        sent[2].header("authorization"),
        "with the new token"
    );

    // Over the replay cap: the body streamed once; the token is refreshed, the caller is told to retry.
    sf.faults().expire_access_tokens();
    let long_name = "x".repeat(400);
    let (status, body) = post_account(&gh, &long_name).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "not_replayed_body_too_large");
    assert_eq!(body["error"]["retryable"], true);
    assert_eq!(posts(&sf).len(), 4, "sent once, not replayed");
    let (status, _) = post_account(&gh, &long_name).await;
    assert_eq!(
        status, 201,
        "the retry goes through with the refreshed token"
    );

    // HubSpot's profile refreshes on TTL, not on a 401: the 401 passes through, no token call.
    let ok = client()
        .get(format!(
            "{}/hs/crm/v3/objects/contacts?limit=1",
            gh.data_url()
        ))
        .header("proxy-authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status(), 200);
    let hs_calls = hs.token_calls().total;
    hs.faults().expire_access_tokens();
    let rejected = client()
        .get(format!(
            "{}/hs/crm/v3/objects/contacts?limit=1",
            gh.data_url()
        ))
        .header("proxy-authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .expect("send");
    assert_eq!(rejected.status(), 401);
    assert_eq!(hs.token_calls().total, hs_calls);

    // A dead grant: reauth_required, failing fast without hammering the token endpoint.
    sf.faults().revoke_all_tokens();
    let (status, body) = post_account(&gh, "Dead").await;
    assert_eq!(
        (status, body["error"]["category"].as_str()),
        (503, Some("reauth_required")),
        "{body}"
    );
    let calls = sf.token_calls().total;
    for _ in 0..10 {
        let (status, body) = post_account(&gh, "Still dead").await;
        assert_eq!(body["error"]["category"], "reauth_required", "{status}");
    }
    assert_eq!(
        sf.token_calls().total,
        calls,
        "no token calls while reauth is required"
    );
    let metrics = gh.metrics().await;
    assert!(
        metrics.contains("reauth_required"),
        "the state shows in metrics"
    );
    let status_page = gh
        .admin_get("/status")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(status_page.contains("reauth_required"), "{status_page}");

    // No secret appears in logs, metrics, the status page or error bodies.
    let mut secrets: Vec<String> = vec![
        DEMO_CLIENT_SECRET.to_owned(),
        DEMO_REFRESH_TOKEN.to_owned(),
        TOKEN.to_owned(),
    ];
    for r in sf.received().iter().chain(hs.received().iter()) {
        if let Some(auth) = r.header("authorization") {
            if let Some(token) = auth.strip_prefix("Bearer ") {
                secrets.push(token.to_owned());
            }
        }
    }
    if let Some(rt) = sf.current_refresh_token(DEMO_CLIENT_ID) {
        secrets.push(rt);
    }
    let logs = gh.logs().join("\n");
    let dashboard = gh
        .admin_get("/dashboard")
        .await
        .text()
        .await
        .unwrap_or_default();
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret leaked into the logs"
        );
        assert!(
            !metrics.contains(secret.as_str()),
            "a secret leaked into metrics"
        );
        assert!(
            !status_page.contains(secret.as_str()) && !dashboard.contains(secret.as_str()),
            "a secret leaked into the status page"
        );
        assert!(
            !body.to_string().contains(secret.as_str()),
            "a secret leaked into an error body"
        );
    }
}
