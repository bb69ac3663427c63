//! Token manager tests against the provider simulators' real token endpoints on loopback.

use crate::config::Config;
use crate::credentials::{Applied, CredentialError, Credentials};
use gatehouse_sim::{
    Provider, SimConfig, SimHandle, Simulator, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_USER,
};
use http::HeaderMap;
use prometheus_client::registry::Registry;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct Harness {
    pub dir: tempfile::TempDir,
    pub creds: Credentials,
    pub registry: Registry,
}

/// A config with one connection `sf` whose `[connections.credentials]` is `credentials`.
pub(crate) fn config_text(dir: &Path, provider: &str, base_url: &str, credentials: &str) -> String {
    let key_file = dir.join("store.key");
    if !key_file.exists() {
        std::fs::write(&key_file, crate::credentials::StoreKey::generate_base64()).unwrap();
    }
    format!(
        r#"
[store]
data_dir = "{data}"
key_env = "GATEHOUSE_TEST_UNSET_KEY_ENV"
key_file = "{key}"

[[connections]]
id = "sf"
provider = "{provider}"
base_url = "{base_url}"

[connections.credentials]
{credentials}
"#,
        data = dir.display(),
        key = key_file.display(),
    )
}

pub(crate) async fn start_with(dir: tempfile::TempDir, text: &str) -> Harness {
    let config =
        Config::from_str(Path::new("test.toml"), text).unwrap_or_else(|e| panic!("config: {e}"));
    let mut registry = Registry::default();
    let creds = Credentials::start(&config, &mut registry)
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    Harness {
        dir,
        creds,
        registry,
    }
}

pub(crate) async fn sim(provider: Provider, lifetime: Duration, rotate: bool) -> SimHandle {
    let config = SimConfig {
        access_token_lifetime: Some(lifetime),
        rotate_refresh_tokens: Some(rotate),
        max_refresh_tokens_per_user: Some(1000),
        ..SimConfig::default()
    };
    Simulator::start(provider, config).await.unwrap()
}

pub(crate) fn refresh_credentials(
    sim: &SimHandle,
    seed: &str,
    lifetime_secs: u64,
    margin_secs: u64,
) -> String {
    format!(
        r#"type = "oauth_refresh_token"
token_url = "{}"
client_id = "{DEMO_CLIENT_ID}"
client_secret = "{DEMO_CLIENT_SECRET}"
refresh_token = "{seed}"
scopes = ["api", "refresh_token"]
token_lifetime_secs = {lifetime_secs}
refresh_margin_secs = {margin_secs}
token_timeout_secs = 2
"#,
        sim.token_url()
    )
}

impl Harness {
    pub async fn apply(&self) -> Result<(String, Applied), CredentialError> {
        let mut headers = HeaderMap::new();
        let applied = self.creds.apply("sf", &mut headers).await?;
        let value = headers
            .get("authorization")
            .map(|v| v.to_str().unwrap_or_default().to_owned())
            .unwrap_or_default();
        Ok((value, applied))
    }

    pub fn metrics(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).unwrap();
        out
    }

    pub fn state(&self) -> &'static str {
        self.creds
            .status()
            .into_iter()
            .find(|s| s.connection == "sf")
            .map(|s| s.state)
            .unwrap_or("missing")
    }

    async fn stored_refresh_token(&self) -> Option<String> {
        let manager = self.creds.manager.as_ref().unwrap();
        let record = manager.store.load("sf").await.unwrap()?;
        record.refresh_token.map(|t| t.expose().to_owned())
    }
}

// Paused time on one thread: the sim's token lifetime, the manager's expiry (`now_ms`) and the
// burst's spacing all run on tokio's clock, so the 3 s lifetime passes in no real time, and every
// interleaving of the 1,000 applies at their await points is one the single-flight must handle.
#[tokio::test(start_paused = true)]
async fn thousand_concurrent_applies_across_an_expiry_make_one_token_call() {
    thousand_applies_across_an_expiry(3, Duration::from_millis(1800), Duration::from_millis(2))
        .await;
}

// The same burst on four threads in real time: applies really run at once, so a check-then-act
// split across two locks (atomic on one thread) would show here. Kept short (1 s lifetime, burst
// over 0.5 s around the expiry) to bound its real time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_parallel_applies_across_an_expiry_make_one_token_call() {
    thousand_applies_across_an_expiry(1, Duration::from_millis(750), Duration::from_micros(500))
        .await;
}

/// 1,000 applies, the i-th `start + i * step` after the first token, around its expiry after
/// `lifetime_secs`: exactly one token call renews it.
async fn thousand_applies_across_an_expiry(lifetime_secs: u64, start: Duration, step: Duration) {
    let sim = sim(
        Provider::Salesforce,
        Duration::from_secs(lifetime_secs),
        true,
    )
    .await;
    let seed = sim.issue_refresh_token(DEMO_CLIENT_ID, DEMO_USER);
    let dir = tempfile::tempdir().unwrap();
    // Margin 0: nothing refreshes early, so the burst really straddles the expiry.
    let text = config_text(
        dir.path(),
        "salesforce",
        &sim.http_base_url(),
        &refresh_credentials(&sim, &seed, lifetime_secs, 0),
    );
    let h = Arc::new(start_with(dir, &text).await);
    let (first, _) = h.apply().await.unwrap();
    let calls_before = sim.token_calls().total;
    assert_eq!(calls_before, 1, "the first token call");
    tokio::time::sleep(start).await;
    let mut tasks = Vec::new();
    for i in 0..1000u64 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(step * i as u32).await;
            h.apply().await.map(|(v, _)| v)
        }));
    }
    let mut values = std::collections::HashSet::new();
    for task in tasks {
        let value = task
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("apply failed: {e}"));
        values.insert(value);
    }
    assert_eq!(
        sim.token_calls().total - calls_before,
        1,
        "exactly one token call for the expiry"
    );
    assert!(
        values.contains(&first) && values.len() == 2,
        "requests saw the old token, then the one new token"
    );
    assert_eq!(sim.token_calls().failures, 0);
}

#[tokio::test]
async fn rotated_refresh_token_is_stored_and_401_refreshes_once() {
    let sim = sim(Provider::Salesforce, Duration::from_secs(60), true).await;
    let seed = sim.issue_refresh_token(DEMO_CLIENT_ID, DEMO_USER);
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(
        dir.path(),
        "salesforce",
        &sim.http_base_url(),
        &refresh_credentials(&sim, &seed, 60, 10),
    );
    let h = start_with(dir, &text).await;
    let (token1, applied1) = h.apply().await.unwrap();
    let stored = h.stored_refresh_token().await.unwrap();
    assert_ne!(
        stored, seed,
        "rotation: the seed is dead, the new token is stored"
    );
    assert_eq!(
        Some(stored.clone()),
        sim.current_refresh_token(DEMO_CLIENT_ID)
    );
    assert_eq!(
        applied1.base_url.as_ref().map(|b| b.url()),
        Some(sim.http_base_url().trim_end_matches('/').to_owned()),
        "instance_url on an allowed host"
    );
    // A 401 forces one refresh; the token and the stored refresh token both move on.
    let calls = sim.token_calls().total;
    assert!(h.creds.on_unauthorized("sf", &applied1).await.unwrap());
    assert_eq!(sim.token_calls().total, calls + 1);
    let (token2, applied2) = h.apply().await.unwrap();
    assert_ne!(token1, token2);
    assert!(applied2.generation > applied1.generation);
    assert_eq!(
        h.stored_refresh_token().await,
        sim.current_refresh_token(DEMO_CLIENT_ID)
    );
    // A late 401 for the already-replaced token: no second refresh, just replay.
    assert!(h.creds.on_unauthorized("sf", &applied1).await.unwrap());
    assert_eq!(sim.token_calls().total, calls + 1);
    assert_eq!(sim.token_calls().failures, 0);
    let status = h.creds.status();
    assert_eq!(status[0].state, "ok");
    assert!(
        status[0].granted_scopes.contains(&"api".to_owned()),
        "{:?}",
        status[0]
    );
    assert!(status[0].expires_at.is_some());
}

#[tokio::test]
async fn without_rotation_the_old_refresh_token_is_kept() {
    let sim = sim(Provider::HubSpot, Duration::from_secs(1800), false).await;
    let seed = sim.issue_refresh_token(DEMO_CLIENT_ID, DEMO_USER);
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(
        dir.path(),
        "hubspot",
        &sim.http_base_url(),
        &refresh_credentials(&sim, &seed, 1800, 60),
    );
    let h = start_with(dir, &text).await;
    let (_, applied) = h.apply().await.unwrap();
    assert_eq!(
        h.stored_refresh_token().await.as_deref(),
        Some(seed.as_str())
    );
    assert!(h.creds.on_unauthorized("sf", &applied).await.unwrap());
    assert_eq!(
        h.stored_refresh_token().await.as_deref(),
        Some(seed.as_str())
    );
    let granted = &h.creds.status()[0].granted_scopes;
    assert!(!granted.is_empty(), "HubSpot's scopes[] is read");
}

#[tokio::test]
async fn dead_grant_fails_fast_without_hammering_and_a_new_seed_restores_it() {
    let sim = sim(Provider::Salesforce, Duration::from_secs(60), true).await;
    let seed = sim.issue_refresh_token(DEMO_CLIENT_ID, DEMO_USER);
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(
        dir.path(),
        "salesforce",
        &sim.http_base_url(),
        &refresh_credentials(&sim, &seed, 60, 10),
    );
    let h = start_with(dir, &text).await;
    let (_, applied) = h.apply().await.unwrap();
    sim.faults().revoke_all_tokens();
    let err = h.creds.on_unauthorized("sf", &applied).await.unwrap_err();
    assert!(
        matches!(&err, CredentialError::ReauthRequired { reason, .. } if reason == "invalid_grant"),
        "{err}"
    );
    let calls = sim.token_calls().total;
    for _ in 0..50 {
        assert!(matches!(
            h.apply().await,
            Err(CredentialError::ReauthRequired { .. })
        ));
    }
    assert_eq!(
        sim.token_calls().total,
        calls,
        "no token-endpoint calls while reauth_required"
    );
    assert_eq!(h.state(), "reauth_required");
    let metrics = h.metrics();
    assert!(
        metrics
            .contains(r#"gatehouse_credential_state{connection="sf",state="reauth_required"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics
            .contains(r#"gatehouse_token_refresh_total{connection="sf",outcome="dead_grant"} 1"#),
        "{metrics}"
    );
    // Still dead after a restart (stored), until a new seed arrives in config.
    let Harness { dir, creds, .. } = h;
    drop(creds);
    let h = start_with(dir, &text).await;
    assert!(matches!(
        h.apply().await,
        Err(CredentialError::ReauthRequired { .. })
    ));
    let new_seed = sim.issue_refresh_token(DEMO_CLIENT_ID, DEMO_USER);
    let text = config_text(
        h.dir.path(),
        "salesforce",
        &sim.http_base_url(),
        &refresh_credentials(&sim, &new_seed, 60, 10),
    );
    let Harness { dir, creds, .. } = h;
    drop(creds);
    let h = start_with(dir, &text).await;
    h.apply().await.unwrap();
    assert_eq!(h.state(), "ok");
}

#[tokio::test(start_paused = true)]
async fn token_endpoint_down_serves_the_cached_token_then_fails_with_retry_after_then_recovers() {
    let sim = sim(Provider::Salesforce, Duration::from_secs(3), true).await;
    let seed = sim.issue_refresh_token(DEMO_CLIENT_ID, DEMO_USER);
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(
        dir.path(),
        "salesforce",
        &sim.http_base_url(),
        &refresh_credentials(&sim, &seed, 3, 1),
    );
    let h = start_with(dir, &text).await;
    let (token, _) = h.apply().await.unwrap();
    sim.faults()
        .set_token_endpoint_down(Some(gatehouse_sim::TokenEndpointDown::Unavailable));
    // Inside the margin the refresh fails, but the still-valid token keeps being served.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(h.apply().await.unwrap().0, token);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    match h.apply().await {
        Err(CredentialError::TokenEndpointUnavailable {
            retry_after,
            reason,
            ..
        }) => {
            assert!(retry_after >= Duration::from_secs(1));
            assert_eq!(reason, "http_503");
        }
        other => panic!(
            "expected TokenEndpointUnavailable, got {:?}",
            other.map(|_| ())
        ),
    }
    assert_eq!(h.state(), "token_endpoint_down");
    sim.faults().set_token_endpoint_down(None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        match h.apply().await {
            Ok((fresh, _)) => {
                assert_ne!(fresh, token);
                break;
            }
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("no recovery: {e}"),
        }
    }
    assert_eq!(h.state(), "ok");
}

#[tokio::test]
async fn greenhouse_v3_client_credentials_send_sub_with_basic_client_auth() {
    let sim = sim(Provider::GreenhouseV3, Duration::from_secs(3600), false).await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = format!(
        "type = \"client_credentials\"\ntoken_url = \"{}\"\nclient_id = \"{DEMO_CLIENT_ID}\"\nclient_secret = \"{DEMO_CLIENT_SECRET}\"\nsub = \"4242\"\n",
        sim.token_url()
    );
    let h = start_with(
        dir,
        &config_text(
            tempfile::tempdir().unwrap().path(),
            "greenhouse-v3",
            &sim.http_base_url(),
            &credentials,
        ),
    )
    .await;
    let (value, _) = h.apply().await.unwrap();
    assert!(value.starts_with("Bearer "));
    let token_call = sim
        .received()
        .into_iter()
        .find(|r| r.path_and_query.contains("token"))
        .unwrap();
    let body = String::from_utf8_lossy(&token_call.body).into_owned();
    assert!(
        body.contains("grant_type=client_credentials") && body.contains("sub=4242"),
        "{body}"
    );
    assert!(
        !body.contains(DEMO_CLIENT_SECRET),
        "secret goes in the Basic header, not the body"
    );
    assert_eq!(h.creds.status()[0].grant, "client_credentials");
}

#[tokio::test]
async fn salesforce_jwt_bearer_gets_a_token() {
    let sim = sim(Provider::Salesforce, Duration::from_secs(3600), true).await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("jwt.pem");
    std::fs::write(&key, gatehouse_sim::DEMO_JWT_PRIVATE_KEY_PEM).unwrap();
    let credentials = format!(
        "type = \"jwt_bearer\"\ntoken_url = \"{}\"\nconsumer_key = \"{DEMO_CLIENT_ID}\"\nusername = \"{}\"\naudience = \"https://login.salesforce.com\"\nprivate_key_file = \"{}\"\n",
        sim.token_url(),
        gatehouse_sim::DEMO_RUN_AS_USER,
        key.display()
    );
    let text = config_text(dir.path(), "salesforce", &sim.http_base_url(), &credentials);
    let h = start_with(dir, &text).await;
    let (value, applied) = h.apply().await.unwrap();
    assert!(value.starts_with("Bearer 00D"));
    assert!(applied.base_url.is_some());
    assert_eq!(sim.token_calls().failures, 0);
    // Refresh on 401 mints a new assertion.
    assert!(h.creds.on_unauthorized("sf", &applied).await.unwrap());
}

#[tokio::test]
async fn invalid_client_is_misconfigured_and_backs_off() {
    let sim = sim(Provider::Salesforce, Duration::from_secs(3600), true).await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = format!(
        "type = \"client_credentials\"\ntoken_url = \"{}\"\nclient_id = \"{DEMO_CLIENT_ID}\"\nclient_secret = \"wrong\"\n",
        sim.token_url()
    );
    let text = config_text(dir.path(), "salesforce", &sim.http_base_url(), &credentials);
    let h = start_with(dir, &text).await;
    for _ in 0..20 {
        assert!(matches!(
            h.apply().await,
            Err(CredentialError::Misconfigured { .. })
        ));
    }
    assert!(
        sim.token_calls().total <= 2,
        "backoff: {} calls",
        sim.token_calls().total
    );
    assert_eq!(h.state(), "misconfigured");
}

#[tokio::test]
async fn connect_flow_redirects_with_pkce_and_stores_the_tokens() {
    let sim = sim(Provider::Salesforce, Duration::from_secs(3600), true).await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = format!(
        "type = \"oauth_refresh_token\"\ntoken_url = \"{}\"\nclient_id = \"{DEMO_CLIENT_ID}\"\nclient_secret = \"{DEMO_CLIENT_SECRET}\"\nscopes = [\"api\", \"refresh_token\"]\nauthorize_url = \"{}\"\nredirect_uri = \"http://127.0.0.1:9/connect/sf/callback\"\n",
        sim.token_url(),
        sim.authorize_url()
    );
    let text = config_text(dir.path(), "salesforce", &sim.http_base_url(), &credentials);
    let h = start_with(dir, &text).await;
    assert!(
        matches!(h.apply().await, Err(CredentialError::ReauthRequired { .. })),
        "no grant before connecting"
    );
    let start = h
        .creds
        .handle_admin(
            &http::Method::GET,
            &"/connect/sf".parse().unwrap(),
            Some("sre-oncall"),
        )
        .await
        .unwrap();
    assert_eq!(start.status(), http::StatusCode::FOUND);
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.contains("code_challenge_method=S256") && location.contains("state="),
        "{location}"
    );
    // The provider's authorize endpoint auto-approves and redirects to our callback.
    let redirect = follow_once(&location).await;
    let callback: http::Uri = redirect
        .trim_start_matches("http://127.0.0.1:9")
        .parse()
        .unwrap();
    let done = h
        .creds
        .handle_admin(&http::Method::GET, &callback, None)
        .await
        .unwrap();
    assert_eq!(done.status(), http::StatusCode::OK);
    h.apply().await.unwrap();
    assert_eq!(h.state(), "ok");
    // The state was single-use.
    let again = h
        .creds
        .handle_admin(&http::Method::GET, &callback, None)
        .await
        .unwrap();
    assert_eq!(again.status(), http::StatusCode::BAD_REQUEST);
}

/// GETs `url` and returns its `Location` header.
pub(crate) async fn follow_once(url: &str) -> String {
    use http_body_util::Empty;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    assert!(
        response.status().is_redirection(),
        "authorize answered {}",
        response.status()
    );
    response.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test(start_paused = true)]
async fn no_secret_reaches_logs_metrics_status_or_errors() {
    use tracing_subscriber::fmt::MakeWriter;
    #[derive(Clone, Default)]
    struct Capture(Arc<parking_lot::Mutex<Vec<u8>>>);
    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Capture {
            self.clone()
        }
    }
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let sim = sim(Provider::Salesforce, Duration::from_secs(60), true).await;
    let seed = sim.issue_refresh_token(DEMO_CLIENT_ID, DEMO_USER);
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(
        dir.path(),
        "salesforce",
        &sim.http_base_url(),
        &refresh_credentials(&sim, &seed, 60, 10),
    );
    let h = start_with(dir, &text).await;
    let mut secrets = vec![seed.clone(), DEMO_CLIENT_SECRET.to_owned()];
    let mut errors = Vec::new();
    let (access1, applied) = h.apply().await.unwrap();
    secrets.push(access1.trim_start_matches("Bearer ").to_owned());
    secrets.extend(sim.current_refresh_token(DEMO_CLIENT_ID));
    h.creds.on_unauthorized("sf", &applied).await.unwrap();
    let (access2, applied) = h.apply().await.unwrap();
    secrets.push(access2.trim_start_matches("Bearer ").to_owned());
    secrets.extend(sim.current_refresh_token(DEMO_CLIENT_ID));
    sim.faults()
        .set_token_endpoint_down(Some(gatehouse_sim::TokenEndpointDown::Unavailable));
    let _ = h.creds.on_unauthorized("sf", &applied).await;
    sim.faults().set_token_endpoint_down(None);
    sim.faults().revoke_all_tokens();
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let Err(e) = h.creds.on_unauthorized("sf", &applied).await {
        errors.push(e.to_string());
        errors.push(format!("{e:?}"));
        errors.push(format!("{:?}", crate::credentials::to_gateway_error(e)));
    }
    if let Err(e) = h.apply().await {
        errors.push(e.to_string());
    }
    assert!(!errors.is_empty());
    let logs = String::from_utf8_lossy(&capture.0.lock()).into_owned();
    assert!(
        logs.contains("grant is dead"),
        "the flow was logged: {logs}"
    );
    let status = serde_json::to_string(&h.creds.status()).unwrap();
    let metrics = h.metrics();
    let stored = std::fs::read(h.dir.path().join("credentials.db")).unwrap_or_default();
    for secret in &secrets {
        assert!(secret.len() >= 8, "test secrets are distinctive");
        assert!(!logs.contains(secret.as_str()), "secret in logs");
        assert!(!metrics.contains(secret.as_str()), "secret in metrics");
        assert!(!status.contains(secret.as_str()), "secret in status");
        assert!(
            !stored.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "plaintext secret in the store"
        );
        for error in &errors {
            assert!(!error.contains(secret.as_str()), "secret in error {error}");
        }
    }
}
