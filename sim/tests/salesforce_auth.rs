//! Salesforce token endpoint, session expiry, rotation and HTTPS (providers.md §1.1, §1.2).

// Test code: a failed unwrap is a failed test with its message, and the real processes and
// sockets these tests drive run on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use gatehouse_sim::{
    pkce_s256, Provider, SimConfig, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_JWT_PRIVATE_KEY_PEM,
    DEMO_REFRESH_TOKEN, DEMO_RUN_AS_USER,
};
use serde_json::{json, Value};

async fn token(c: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = c.post(url).form(form).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn refresh_form(rt: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("client_id", DEMO_CLIENT_ID),
        ("client_secret", DEMO_CLIENT_SECRET),
    ]
}

#[tokio::test]
async fn refresh_returns_instance_url_without_expires_in_and_rotates() {
    let sim = common::start(Provider::Salesforce, SimConfig::default()).await;
    let c = common::client(&sim);
    let (s, v) = token(&c, &sim.token_url(), &refresh_form(DEMO_REFRESH_TOKEN)).await;
    assert_eq!(s, 200);
    assert!(
        v.get("expires_in").is_none(),
        "Salesforce sends no expires_in"
    );
    assert_eq!(v["instance_url"], sim.http_base_url());
    assert_eq!(v["token_type"], "Bearer");
    for k in ["access_token", "id", "issued_at", "signature"] {
        assert!(v[k].is_string(), "{k} missing: {v}");
    }
    let new_rt = v["refresh_token"]
        .as_str()
        .expect("rotation returns a new refresh token");
    assert_ne!(new_rt, DEMO_REFRESH_TOKEN);
    assert_eq!(
        sim.current_refresh_token(DEMO_CLIENT_ID).as_deref(),
        Some(new_rt)
    );
    assert_eq!(sim.token_calls().grant("refresh_token"), 1);

    let at = v["access_token"].as_str().unwrap();
    let r = c
        .get(format!(
            "{}/services/data/v66.0/limits",
            sim.http_base_url()
        ))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let info = r.headers()["sforce-limit-info"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(info.starts_with("api-usage=1/"), "{info}");
    let rec = sim.received();
    let last = rec.last().unwrap();
    assert_eq!(
        last.header("authorization"),
        Some(format!("Bearer {at}").as_str())
    );
    assert_eq!(last.path(), "/services/data/v66.0/limits");
    let first = &rec[0];
    assert!(first.body_text().contains("grant_type=refresh_token"));
}

#[tokio::test]
async fn reuse_of_rotated_refresh_token_revokes_the_family() {
    let sim = common::start(Provider::Salesforce, SimConfig::default()).await;
    let c = common::client(&sim);
    let (_, v) = token(&c, &sim.token_url(), &refresh_form(DEMO_REFRESH_TOKEN)).await;
    let current = v["refresh_token"].as_str().unwrap().to_owned();
    let at = v["access_token"].as_str().unwrap().to_owned();
    // Replay the rotated-out token.
    let (s, v) = token(&c, &sim.token_url(), &refresh_form(DEMO_REFRESH_TOKEN)).await;
    assert_eq!(s, 400);
    assert_eq!(
        v,
        json!({"error": "invalid_grant", "error_description": "expired access/refresh token"})
    );
    // The current one is dead too, and so are its access tokens.
    let (s, v) = token(&c, &sim.token_url(), &refresh_form(&current)).await;
    assert_eq!(s, 400);
    assert_eq!(v["error"], "invalid_grant");
    assert!(!sim.refresh_token_is_live(&current));
    let r = c
        .get(format!(
            "{}/services/data/v66.0/limits",
            sim.http_base_url()
        ))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(sim.token_calls().failed("refresh_token"), 2);
}

#[tokio::test]
async fn without_rotation_the_refresh_token_is_not_returned_and_stays_valid() {
    let cfg = SimConfig {
        rotate_refresh_tokens: Some(false),
        ..SimConfig::default()
    };
    let sim = common::start(Provider::Salesforce, cfg).await;
    let c = common::client(&sim);
    for _ in 0..2 {
        let (s, v) = token(&c, &sim.token_url(), &refresh_form(DEMO_REFRESH_TOKEN)).await;
        assert_eq!(s, 200);
        assert!(v.get("refresh_token").is_none());
    }
    sim.faults().set_rotation(true);
    let (_, v) = token(&c, &sim.token_url(), &refresh_form(DEMO_REFRESH_TOKEN)).await;
    assert!(v["refresh_token"].is_string());
}

#[tokio::test]
async fn expired_session_gets_401_invalid_session_id() {
    let cfg = SimConfig {
        access_token_lifetime: Some(Duration::from_millis(300)),
        ..SimConfig::default()
    };
    let sim = common::start(Provider::Salesforce, cfg).await;
    let c = common::client(&sim);
    let at = sim.issue_access_token(DEMO_CLIENT_ID, DEMO_RUN_AS_USER);
    let url = format!("{}/services/data/v66.0/limits", sim.http_base_url());
    assert_eq!(
        c.get(&url).bearer_auth(&at).send().await.unwrap().status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = c.get(&url).bearer_auth(&at).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );
    // Unknown tokens and missing headers get the same.
    let r = c.get(&url).bearer_auth("nope").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(c.get(&url).send().await.unwrap().status(), 401);
    // Expire-now fault.
    let at = sim.issue_access_token(DEMO_CLIENT_ID, DEMO_RUN_AS_USER);
    sim.faults().expire_access_tokens();
    assert_eq!(
        c.get(&url).bearer_auth(&at).send().await.unwrap().status(),
        401
    );
}

#[tokio::test]
async fn client_credentials_requires_the_secret_and_returns_no_refresh_token() {
    let sim = common::start(Provider::Salesforce, SimConfig::default()).await;
    let c = common::client(&sim);
    let (s, v) = token(
        &c,
        &sim.token_url(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", "wrong"),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(v["error"], "invalid_client");
    // Client auth by HTTP Basic.
    let r = c
        .post(sim.token_url())
        .basic_auth(DEMO_CLIENT_ID, Some(DEMO_CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(v.get("refresh_token").is_none());
    assert!(v["id"].as_str().unwrap().contains("/id/00D"));
    let (s, v) = token(
        &c,
        &sim.token_url(),
        &[("grant_type", "password"), ("client_id", DEMO_CLIENT_ID)],
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let calls = sim.token_calls();
    assert_eq!(calls.grant("client_credentials"), 2);
    assert_eq!(calls.failed("client_credentials"), 1);
}

fn assertion(iss: &str, sub: &str, aud: &str, exp_offset: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = json!({"iss": iss, "sub": sub, "aud": aud, "exp": now + exp_offset});
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(DEMO_JWT_PRIVATE_KEY_PEM.as_bytes()).unwrap();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .unwrap()
}

#[tokio::test]
async fn jwt_bearer_verifies_signature_and_claims() {
    let sim = common::start(Provider::Salesforce, SimConfig::default()).await;
    let c = common::client(&sim);
    const G: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    let aud = "https://login.salesforce.com";
    let ok = assertion(DEMO_CLIENT_ID, DEMO_RUN_AS_USER, aud, 120);
    let (s, v) = token(
        &c,
        &sim.token_url(),
        &[("grant_type", G), ("assertion", &ok)],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["access_token"].is_string() && v.get("refresh_token").is_none());

    let cases = [
        (
            assertion("other-app", DEMO_RUN_AS_USER, aud, 120),
            "invalid_client_id",
        ),
        (
            assertion(DEMO_CLIENT_ID, "stranger@example.com", aud, 120),
            "invalid_grant",
        ),
        (
            assertion(
                DEMO_CLIENT_ID,
                DEMO_RUN_AS_USER,
                "https://evil.example",
                120,
            ),
            "invalid_grant",
        ),
        (
            assertion(DEMO_CLIENT_ID, DEMO_RUN_AS_USER, aud, -600),
            "invalid_grant",
        ),
    ];
    for (a, err) in cases {
        let (s, v) = token(
            &c,
            &sim.token_url(),
            &[("grant_type", G), ("assertion", &a)],
        )
        .await;
        assert_eq!((s, v["error"].as_str()), (400, Some(err)), "{v}");
    }
    // Tampered signature.
    let mut bad = ok.clone();
    bad.pop();
    bad.push(if ok.ends_with('A') { 'B' } else { 'A' });
    let (s, v) = token(
        &c,
        &sim.token_url(),
        &[("grant_type", G), ("assertion", &bad)],
    )
    .await;
    assert_eq!(
        (s, v["error_description"].as_str()),
        (400, Some("invalid assertion"))
    );
    assert_eq!(sim.token_calls().grant(G), 6);
}

#[tokio::test]
async fn authorize_code_flow_with_pkce_over_https() {
    let sim = common::start(Provider::Salesforce, SimConfig::default()).await;
    let c = common::client(&sim);
    let verifier = "a-very-long-verifier-string-with-enough-entropy-1234567890";
    let authorize = format!("{}/services/oauth2/authorize", sim.https_base_url());
    let r = c
        .get(&authorize)
        .query(&[
            ("response_type", "code"),
            ("client_id", DEMO_CLIENT_ID),
            ("redirect_uri", "http://localhost:9999/callback"),
            ("state", "xyz"),
            ("code_challenge", &pkce_s256(verifier)),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert!(loc.as_str().starts_with("http://localhost:9999/callback?"));
    let q: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "xyz");
    let code = q["code"].clone();
    let token_url = format!("{}/services/oauth2/token", sim.https_base_url());
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("client_id", DEMO_CLIENT_ID),
        ("client_secret", DEMO_CLIENT_SECRET),
        ("redirect_uri", "http://localhost:9999/callback"),
    ];
    let mut wrong = base.to_vec();
    wrong.push(("code_verifier", "wrong"));
    let (s, v) = token(&c, &token_url, &wrong).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")));
    let mut right = base.to_vec();
    right.push(("code_verifier", verifier));
    let (s, v) = token(&c, &token_url, &right).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["instance_url"], sim.https_base_url());
    assert!(v["refresh_token"].is_string());
    // Codes are single-use.
    let (s, _) = token(&c, &token_url, &right).await;
    assert_eq!(s, 400);
    assert!(sim.received().iter().all(|r| r.tls));
}

#[tokio::test]
async fn at_most_five_refresh_tokens_per_user_oldest_revoked() {
    let sim = common::start(Provider::Salesforce, SimConfig::default()).await;
    let first = sim.issue_refresh_token(DEMO_CLIENT_ID, "pat@example.com");
    for _ in 0..5 {
        sim.issue_refresh_token(DEMO_CLIENT_ID, "pat@example.com");
    }
    assert!(!sim.refresh_token_is_live(&first));
    assert!(
        sim.refresh_token_is_live(DEMO_REFRESH_TOKEN),
        "other users unaffected"
    );
}
