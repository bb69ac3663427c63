//! End-to-end: a provider that misbehaves about credentials, against the real binary and the
//! simulators. (a) It refuses every token, fresh ones included, while its token endpoint keeps
//! issuing them: a handful of token calls in all, callers get a typed retryable error with
//! `Retry-After`, and the connection shows `degraded` on `/status` and the gauge. (b) It
//! refuses the cached token while the token endpoint is down: callers get the documented
//! `provider_unavailable` with `Retry-After`, never the provider's raw 401. (c) It keeps
//! refusing a static API key: `degraded` / `provider_auth` until the next 2xx.

// Test code: a failed unwrap is a failed test with its message, and the real processes and
// sockets these tests drive run on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use gatehouse_e2e::provider_auth::{credential_gauge, credential_status, dashboard, log_line};
use gatehouse_e2e::{token_hash, Gatehouse};
use gatehouse_sim::{
    Provider, SimConfig, SimHandle, Simulator, TokenEndpointDown, DEMO_API_KEY, DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET, DEMO_REFRESH_TOKEN,
};
use std::time::{Duration, Instant};

const TOKEN: &str = "provider-auth-caller";
const STORE_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// Gatehouse with one connection `c` (`provider`, at `sim`, with `credentials`: the fields of
/// an inline TOML table), which the caller may call with any GET or POST.
fn start(provider: &str, sim: &SimHandle, credentials: &str) -> Gatehouse {
    // Inline tables: one line per section, the connection's credential given inline too.
    let config = format!(
        r#"server = {{ listen = "127.0.0.1:0", admin_listen = "127.0.0.1:0" }}
store = {{ data_dir = "data" }}
connections = [{{ id = "c", provider = "{provider}", base_url = "{base}", credentials = {{ {credentials} }} }}]
callers = [{{ id = "app", token_sha256 = "{hash}", grants = [{{ connections = ["c"], methods = ["GET", "POST"], paths = ["/**"] }}] }}]
"#,
        base = sim.http_base_url(),
        hash = token_hash(TOKEN),
    );
    Gatehouse::start_with(&config, &[], &[("GATEHOUSE_STORE_KEY", STORE_KEY)])
}

fn refresh_token_credentials(sim: &SimHandle) -> String {
    format!(
        r#"type = "oauth_refresh_token", token_url = "{}", client_id = "{DEMO_CLIENT_ID}", client_secret = "{DEMO_CLIENT_SECRET}", refresh_token = "{DEMO_REFRESH_TOKEN}""#,
        sim.token_url()
    )
}

/// An answer as the caller sees it: status, `Retry-After`, body.
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

async fn call(gh: &Gatehouse, method: reqwest::Method, path: &str) -> Answer {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = client
        .request(method.clone(), format!("{}/c{path}", gh.data_url()))
        .header("proxy-authorization", format!("Bearer {TOKEN}"));
    if method == reqwest::Method::POST {
        request = request.json(&serde_json::json!({}));
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    Answer {
        status,
        retry_after,
        body: response.text().await.unwrap_or_default(),
    }
}

async fn salesforce_limits(gh: &Gatehouse) -> Answer {
    call(gh, reqwest::Method::GET, "/services/data/v60.0/limits").await
}

/// Every bearer token the simulator saw: none may show anywhere an operator or caller looks.
fn bearer_tokens(sim: &SimHandle) -> Vec<String> {
    sim.received()
        .iter()
        .filter_map(|r| r.header("authorization"))
        .filter_map(|a| a.strip_prefix("Bearer ").map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_refusing_every_fresh_token_costs_two_token_calls_not_one_per_request() {
    let config = SimConfig {
        rotate_refresh_tokens: Some(true),
        ..SimConfig::default()
    };
    let sf = Simulator::start(Provider::Salesforce, config)
        .await
        .unwrap();
    let gh = start("salesforce", &sf, &refresh_token_credentials(&sf));
    let first = salesforce_limits(&gh).await;
    assert_eq!(first.status, 200, "{}", first.body);

    sf.faults().set_reject_credentials(true);
    let mut answers = Vec::new();
    for _ in 0..11 {
        answers.push(salesforce_limits(&gh).await);
    }
    // And a concurrent group, as twenty callers at once would send it.
    let group: Vec<_> = (0..20)
        .map(|_| {
            let data = gh.data_url().to_owned();
            tokio::spawn(async move {
                let client = reqwest::Client::builder().no_proxy().build().unwrap();
                let r = client
                    .get(format!("{data}/c/services/data/v60.0/limits"))
                    .header("proxy-authorization", format!("Bearer {TOKEN}"))
                    .send()
                    .await
                    .unwrap();
                let retry = r
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().parse().unwrap());
                Answer {
                    status: r.status().as_u16(),
                    retry_after: retry,
                    body: r.text().await.unwrap(),
                }
            })
        })
        .collect();
    for task in group {
        answers.push(task.await.unwrap());
    }
    let calls = sf.token_calls();
    assert!(
        calls.total <= 2,
        "31 requests cost {} token calls (the first token and at most one refresh): {calls:?}",
        calls.total
    );
    for answer in &answers {
        let body = answer.json();
        assert_eq!(answer.status, 502, "{}", answer.body);
        assert_eq!(body["error"]["category"], "provider_unavailable");
        assert_eq!(body["error"]["code"], "provider_auth_rejected");
        assert_eq!(body["error"]["retryable"], true);
        let retry = answer.retry_after.expect("Retry-After is sent");
        assert!((1..=5).contains(&retry), "Retry-After {retry}");
        assert_eq!(body["error"]["retry_after"], retry);
        assert!(
            !answer.body.contains("INVALID_SESSION_ID"),
            "the provider's 401 is not passed through: {}",
            answer.body
        );
    }

    let credential = credential_status(&gh, "c").await;
    assert_eq!(credential["state"], "degraded", "{credential}");
    assert_eq!(credential["reason"], "provider_auth");
    assert!(credential["auth_rejections"].as_u64().unwrap() >= 3);
    let metrics = gh.metrics().await;
    assert_eq!(
        credential_gauge(&metrics, "c", "degraded"),
        Some(1),
        "{metrics}"
    );
    assert_eq!(credential_gauge(&metrics, "c", "ok"), Some(0));
    let warn = log_line(&gh, |l| l.contains("connection degraded (provider_auth)")).await;
    let warn: serde_json::Value = serde_json::from_str(&warn).unwrap();
    assert_eq!(
        (&warn["level"], &warn["connection"], &warn["provider"]),
        (&"WARN".into(), &"c".into(), &"salesforce".into())
    );
    assert!(warn["consecutive_rejections"].as_u64().is_some(), "{warn}");

    // The provider takes its tokens again: the next request gets through and the state is ok,
    // without waiting for the pause to end.
    sf.faults().set_reject_credentials(false);
    let back = salesforce_limits(&gh).await;
    assert_eq!(back.status, 200, "{}", back.body);
    assert_eq!(credential_status(&gh, "c").await["state"], "ok");
    assert_eq!(credential_gauge(&gh.metrics().await, "c", "ok"), Some(1));

    let (logs, page) = (gh.logs().join("\n"), dashboard(&gh).await);
    for token in bearer_tokens(&sf) {
        assert!(!logs.contains(&token), "a token leaked into the logs");
        assert!(!metrics.contains(&token) && !page.contains(&token));
        assert!(answers.iter().all(|a| !a.body.contains(&token)));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_token_while_the_token_endpoint_is_down_is_provider_unavailable() {
    let sf = Simulator::start(Provider::Salesforce, SimConfig::default())
        .await
        .unwrap();
    let gh = start("salesforce", &sf, &refresh_token_credentials(&sf));
    assert_eq!(salesforce_limits(&gh).await.status, 200);

    // The provider forgets the session and its token endpoint is down at the same time.
    sf.faults().expire_access_tokens();
    sf.faults()
        .set_token_endpoint_down(Some(TokenEndpointDown::Unavailable));
    for _ in 0..3 {
        let answer = salesforce_limits(&gh).await;
        let body = answer.json();
        // provider_unavailable is 502 in the documented envelope (docs/operating.md#errors).
        assert_eq!(answer.status, 502, "{}", answer.body);
        assert_eq!(body["error"]["category"], "provider_unavailable");
        assert_eq!(body["error"]["code"], "token_endpoint_unavailable");
        assert_eq!(body["error"]["retryable"], true);
        assert!(answer.retry_after.is_some_and(|s| s >= 1), "Retry-After");
        assert!(
            !answer.body.contains("INVALID_SESSION_ID"),
            "never the provider's raw 401: {}",
            answer.body
        );
    }
    assert_eq!(
        credential_status(&gh, "c").await["state"],
        "token_endpoint_down"
    );

    // Recovers by itself once the endpoint is back (within the backoff).
    sf.faults().set_token_endpoint_down(None);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let answer = salesforce_limits(&gh).await;
        if answer.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {}", answer.body);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(credential_status(&gh, "c").await["state"], "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_static_key_the_provider_keeps_refusing_is_degraded_until_the_next_2xx() {
    let ashby = Simulator::start(Provider::Ashby, SimConfig::default())
        .await
        .unwrap();
    let credentials = format!(r#"type = "basic", username = "{DEMO_API_KEY}", password = """#);
    let gh = start("ashby", &ashby, &credentials);
    let list = || call(&gh, reqwest::Method::POST, "/candidate.list");
    assert_eq!(list().await.status, 200);
    assert_eq!(credential_status(&gh, "c").await["state"], "static");
    assert_eq!(credential_gauge(&gh.metrics().await, "c", "ok"), Some(1));

    // The key is deactivated: Ashby answers 403 invalid_api_key.
    ashby.faults().set_reject_credentials(true);
    for n in 1..=3 {
        let answer = list().await;
        assert_eq!(answer.status, 403, "the provider's answer passes through");
        assert!(answer.body.contains("invalid_api_key"), "{}", answer.body);
        let expected = if n < 3 { "static" } else { "degraded" };
        assert_eq!(
            credential_status(&gh, "c").await["state"],
            expected,
            "after {n} refusals"
        );
    }
    let credential = credential_status(&gh, "c").await;
    assert_eq!(
        (&credential["reason"], &credential["auth_rejections"]),
        (&"provider_auth".into(), &3.into()),
        "{credential}"
    );
    let metrics = gh.metrics().await;
    assert_eq!(credential_gauge(&metrics, "c", "degraded"), Some(1));
    assert_eq!(credential_gauge(&metrics, "c", "ok"), Some(0));
    assert!(dashboard(&gh)
        .await
        .contains("degraded (provider_auth, 3 refused in a row)"));
    log_line(&gh, |l| {
        l.contains("connection degraded (provider_auth)")
            && l.contains(r#""consecutive_rejections":3"#)
            && l.contains(r#""provider":"ashby""#)
    })
    .await;
    assert_eq!(
        ashby.token_calls().total,
        0,
        "a static key is never refreshed"
    );

    ashby.faults().set_reject_credentials(false);
    assert_eq!(list().await.status, 200);
    let credential = credential_status(&gh, "c").await;
    assert_eq!(credential["state"], "static", "{credential}");
    assert_eq!(credential["reason"], serde_json::Value::Null);
    let metrics = gh.metrics().await;
    assert_eq!(credential_gauge(&metrics, "c", "ok"), Some(1));
    assert_eq!(credential_gauge(&metrics, "c", "degraded"), Some(0));
    let logs = gh.logs().join("\n");
    assert!(
        !logs.contains(DEMO_API_KEY),
        "the key never reaches a log line"
    );
}
