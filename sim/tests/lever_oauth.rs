//! Lever OAuth (partner apps, Auth0-hosted): authorize + PKCE, `audience` required, rotating
//! refresh tokens, Bearer access on `/v1/...` next to Basic keys, expiry/revocation and the
//! token-endpoint faults (providers.md §4.1).

// Test code: a failed unwrap is a failed test with its message, and the real processes and
// sockets these tests drive run on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use gatehouse_sim::{
    pkce_s256, OAuthClient, Provider, SimConfig, SimHandle, TokenEndpointDown, DEMO_API_KEY,
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REFRESH_TOKEN, LEVER_AUDIENCE,
};
use serde_json::Value;

const REDIRECT: &str = "https://app.example.com/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn cfg() -> SimConfig {
    SimConfig {
        record_count: Some(230),
        quota_limit: Some(10_000),
        ..SimConfig::default()
    }
}

/// Runs the authorize step and returns the code (asserting the 302 and `state`).
async fn authorize(c: &reqwest::Client, base: &str, scope: &str) -> String {
    let r = c
        .get(format!("{base}/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", DEMO_CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("state", "st-42"),
            ("scope", scope),
            ("audience", LEVER_AUDIENCE),
            ("code_challenge", &pkce_s256(VERIFIER)),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert!(loc.as_str().starts_with(REDIRECT), "{loc}");
    let get = |k: &str| {
        loc.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(get("state").as_deref(), Some("st-42"));
    get("code").expect("code in redirect")
}

async fn token(c: &reqwest::Client, sim: &SimHandle, form: &[(&str, &str)]) -> (u16, Value) {
    let r = c.post(sim.token_url()).form(form).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap())
}

async fn refresh(c: &reqwest::Client, sim: &SimHandle, rt: &str) -> (u16, Value) {
    token(
        c,
        sim,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
            ("refresh_token", rt),
            ("audience", LEVER_AUDIENCE),
        ],
    )
    .await
}

async fn get(c: &reqwest::Client, url: &str, auth: &str) -> (u16, Value) {
    let r = c
        .get(url)
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap())
}

#[tokio::test]
async fn auth_code_with_pkce_and_required_audience() {
    let sim = common::start(Provider::Lever, cfg()).await;
    assert!(Provider::Lever.uses_oauth());
    let c = common::client(&sim);
    let scope = "opportunities:read:admin postings:read:admin offline_access";
    // Over HTTPS: the same paths serve both ports.
    let code = authorize(&c, &sim.https_base_url(), scope).await;
    let exchange = |code: String, verifier: &'static str, audience: Option<&'static str>| {
        let c = c.clone();
        let url = sim.token_url();
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code".to_owned()),
                ("client_id", DEMO_CLIENT_ID.to_owned()),
                ("client_secret", DEMO_CLIENT_SECRET.to_owned()),
                ("code", code),
                ("redirect_uri", REDIRECT.to_owned()),
                ("code_verifier", verifier.to_owned()),
            ];
            if let Some(a) = audience {
                form.push(("audience", a.to_owned()));
            }
            let r = c.post(url).form(&form).send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap())
        }
    };

    // audience missing / wrong → Auth0-style access_denied.
    let (s, v) = exchange(code.clone(), VERIFIER, None).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (403, Some("access_denied")),
        "{v}"
    );
    assert!(v["error_description"].is_string());
    let (s, v) = exchange(code.clone(), VERIFIER, Some("https://api.lever.co/v1")).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (403, Some("access_denied")),
        "{v}"
    );
    assert!(v["error_description"]
        .as_str()
        .unwrap()
        .contains("Service not found"));
    // Wrong PKCE verifier.
    let (s, v) = exchange(code.clone(), "not-the-verifier", Some(LEVER_AUDIENCE)).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (403, Some("invalid_grant")),
        "{v}"
    );

    let (s, v) = exchange(code.clone(), VERIFIER, Some(LEVER_AUDIENCE)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3600);
    assert_eq!(v["scope"], scope);
    assert!(v["access_token"].as_str().unwrap().split('.').count() == 3);
    let rt = v["refresh_token"].as_str().unwrap();
    assert!(sim.refresh_token_is_live(rt));
    // Codes are single use.
    let (s, v) = exchange(code, VERIFIER, Some(LEVER_AUDIENCE)).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (403, Some("invalid_grant")),
        "{v}"
    );

    // No offline_access → no refresh token.
    let code = authorize(&c, &sim.http_base_url(), "opportunities:read:admin").await;
    let (s, v) = exchange(code, VERIFIER, Some(LEVER_AUDIENCE)).await;
    assert_eq!(s, 200, "{v}");
    assert!(v.get("refresh_token").is_none(), "{v}");

    // The authorize endpoint wants the audience too: the error goes back to the redirect URI.
    let r = c
        .get(sim.authorize_url())
        .query(&[
            ("response_type", "code"),
            ("client_id", DEMO_CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("state", "s"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        loc.contains("error=access_denied") && loc.contains("state=s"),
        "{loc}"
    );
    assert!(!loc.contains("code="), "{loc}");

    // Client authentication in the body; a wrong secret is refused.
    let (s, v) = token(
        &c,
        &sim,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", "wrong"),
            ("refresh_token", DEMO_REFRESH_TOKEN),
            ("audience", LEVER_AUDIENCE),
        ],
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (401, Some("access_denied")),
        "{v}"
    );
    let calls = sim.token_calls();
    assert_eq!(calls.by_grant_type.get("authorization_code"), Some(&6));
}

#[tokio::test]
async fn refresh_rotates_and_the_old_token_then_fails_invalid_grant() {
    let sim = common::start(Provider::Lever, cfg()).await;
    let c = common::client(&sim);
    // audience required on refresh too.
    let (s, v) = token(
        &c,
        &sim,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
            ("refresh_token", DEMO_REFRESH_TOKEN),
        ],
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (403, Some("access_denied")),
        "{v}"
    );
    assert!(sim.refresh_token_is_live(DEMO_REFRESH_TOKEN));

    let (s, v) = refresh(&c, &sim, DEMO_REFRESH_TOKEN).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["expires_in"], 3600);
    assert!(v["scope"].as_str().unwrap().contains("offline_access"));
    let rt1 = v["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, DEMO_REFRESH_TOKEN);
    assert!(!sim.refresh_token_is_live(DEMO_REFRESH_TOKEN));
    assert_eq!(
        sim.current_refresh_token(DEMO_CLIENT_ID).as_deref(),
        Some(rt1.as_str())
    );
    let (s, v) = refresh(&c, &sim, &rt1).await;
    assert_eq!(s, 200, "{v}");
    let rt2 = v["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt2, rt1);

    // Replaying a rotated-out token: invalid_grant, and reuse detection revokes the family.
    let (s, v) = refresh(&c, &sim, &rt1).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (403, Some("invalid_grant")),
        "{v}"
    );
    assert_eq!(v["error_description"], "Unknown or invalid refresh token.");
    let (s, _) = refresh(&c, &sim, &rt2).await;
    assert_eq!(s, 403, "family revoked after reuse");

    // Rotation off: no refresh_token in the answer, the same one keeps working.
    sim.faults().set_rotation(false);
    let rt = sim.issue_refresh_token(DEMO_CLIENT_ID, "someone@example.com");
    for _ in 0..2 {
        let (s, v) = refresh(&c, &sim, &rt).await;
        assert_eq!(s, 200, "{v}");
        assert!(v.get("refresh_token").is_none(), "{v}");
    }
    let calls = sim.token_calls();
    assert_eq!(calls.by_grant_type.get("refresh_token"), Some(&7));
    assert_eq!(calls.failures_by_grant_type.get("refresh_token"), Some(&3));
}

#[tokio::test]
async fn bearer_access_pages_opportunities_next_to_basic_keys() {
    let sim = common::start(Provider::Lever, cfg()).await;
    let c = common::client(&sim);
    let (s, v) = refresh(&c, &sim, DEMO_REFRESH_TOKEN).await;
    assert_eq!(s, 200, "{v}");
    let bearer = format!("Bearer {}", v["access_token"].as_str().unwrap());
    let mut url = format!("{}/v1/opportunities?limit=100", sim.https_base_url());
    let mut total = 0;
    loop {
        let (s, v) = get(&c, &url, &bearer).await;
        assert_eq!(s, 200, "{v}");
        total += v["data"].as_array().unwrap().len();
        match v["next"].as_str() {
            Some(next) if v["hasNext"] == true => {
                url = format!(
                    "{}/v1/opportunities?limit=100&offset={next}",
                    sim.https_base_url()
                )
            }
            _ => break,
        }
    }
    assert_eq!(total, 230);
    let base = sim.http_base_url();
    let (s, v) = get(&c, &format!("{base}/v1/postings"), &bearer).await;
    assert_eq!(s, 200, "{v}");
    let id = v["data"][0]["id"].as_str().unwrap().to_owned();
    let (s, v) = get(&c, &format!("{base}/v1/postings/{id}"), &bearer).await;
    assert_eq!((s, v["data"]["id"].as_str()), (200, Some(id.as_str())));
    // Basic keys keep working.
    let (s, _) = get(
        &c,
        &format!("{base}/v1/opportunities?limit=1"),
        &common::basic(DEMO_API_KEY),
    )
    .await;
    assert_eq!(s, 200);
    // Unknown bearer → Lever's {code, message}.
    let (s, v) = get(&c, &format!("{base}/v1/postings"), "Bearer nope").await;
    assert_eq!((s, v["code"].as_str()), (401, Some("UnauthorizedError")));
    assert!(v["message"].is_string());
}

#[tokio::test]
async fn scopes_are_enforced_per_resource() {
    let mut client = OAuthClient::new("narrow-app", "narrow-secret");
    client.scopes = vec!["opportunities:read:admin".into()];
    let sim = common::start(
        Provider::Lever,
        SimConfig {
            clients: vec![client],
            ..cfg()
        },
    )
    .await;
    let c = common::client(&sim);
    let bearer = format!(
        "Bearer {}",
        sim.issue_access_token("narrow-app", "u@example.com")
    );
    let base = sim.http_base_url();
    let (s, _) = get(&c, &format!("{base}/v1/opportunities?limit=1"), &bearer).await;
    assert_eq!(s, 200);
    let (s, v) = get(&c, &format!("{base}/v1/postings"), &bearer).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (403, Some("ForbiddenError")),
        "{v}"
    );
}

#[tokio::test]
async fn expiry_revocation_and_token_endpoint_faults() {
    let sim = common::start(
        Provider::Lever,
        SimConfig {
            access_token_lifetime: Some(Duration::from_millis(400)),
            ..cfg()
        },
    )
    .await;
    let c = common::client(&sim);
    let url = format!("{}/v1/opportunities?limit=5", sim.http_base_url());
    let (s, v) = refresh(&c, &sim, DEMO_REFRESH_TOKEN).await;
    assert_eq!(s, 200, "{v}");
    let rt = v["refresh_token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {}", v["access_token"].as_str().unwrap());
    assert_eq!(get(&c, &url, &bearer).await.0, 200);
    // Real lifetime runs out.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (s, v) = get(&c, &url, &bearer).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (401, Some("UnauthorizedError")),
        "{v}"
    );
    assert_eq!(v["message"], "Access token expired");

    // Fault: expire every access token now.
    sim.faults()
        .set_access_token_lifetime(Duration::from_secs(3600));
    let (s, v) = refresh(&c, &sim, &rt).await;
    assert_eq!((s, v["expires_in"].as_u64()), (200, Some(3600)), "{v}");
    let rt = v["refresh_token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {}", v["access_token"].as_str().unwrap());
    assert_eq!(get(&c, &url, &bearer).await.0, 200);
    sim.faults().expire_access_tokens();
    assert_eq!(get(&c, &url, &bearer).await.0, 401);

    // Fault: token endpoint down (503, then reset), API unaffected for Basic keys.
    sim.faults()
        .set_token_endpoint_down(Some(TokenEndpointDown::Unavailable));
    let r = c
        .post(sim.token_url())
        .form(&[("grant_type", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "ServiceUnavailableError");
    sim.faults()
        .set_token_endpoint_down(Some(TokenEndpointDown::Reset));
    assert!(c
        .post(sim.token_url())
        .form(&[("grant_type", "refresh_token")])
        .send()
        .await
        .is_err());
    assert_eq!(
        get(&c, &url, &common::basic(DEMO_API_KEY)).await.0,
        200,
        "API still up"
    );
    sim.faults().set_token_endpoint_down(None);
    let (s, v) = refresh(&c, &sim, &rt).await;
    assert_eq!(s, 200, "{v}");
    let rt = v["refresh_token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {}", v["access_token"].as_str().unwrap());

    // Fault: revoke everything → bearer 401 and refresh invalid_grant; Basic keys unaffected.
    sim.faults().revoke_all_tokens();
    let (s, v) = get(&c, &url, &bearer).await;
    assert_eq!(
        (s, v["message"].as_str()),
        (401, Some("Invalid access token"))
    );
    let (s, v) = refresh(&c, &sim, &rt).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (403, Some("invalid_grant")),
        "{v}"
    );
    assert_eq!(get(&c, &url, &common::basic(DEMO_API_KEY)).await.0, 200);
}
