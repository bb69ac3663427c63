//! End-to-end: the admin port asks who you are. Tokens with roles, checked before routing;
//! the connect flow needs `admin`, names who started it and which provider account the grant
//! belongs to, and does not replace a working grant unless asked.

// Test code: a failed unwrap is a failed test with its message, and the real processes and
// sockets these tests drive run on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use gatehouse_e2e::{run_cli, token_hash, Gatehouse, ADMIN_TOKEN};
use gatehouse_sim::{
    Provider, SimConfig, SimHandle, Simulator, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET,
    DEMO_REFRESH_TOKEN,
};
use std::time::Duration;

const READ_TOKEN: &str = "e2e-read-token-2b7d4f9a61c3";
const SRE_TOKEN: &str = "e2e-sre-token-8f1e5c3a7d20";
/// Where the simulator's authorize endpoint sends the browser back (host stripped below).
const CALLBACK_HOST: &str = "http://127.0.0.1:9";
/// The org the Salesforce simulator's identity URL names.
const SIM_ORG: &str = "00D5g000004SIMUEAU";

/// A Salesforce connection with a connect flow; `seed`: a refresh token in config.
fn connection(sim: &SimHandle, id: &str, seed: Option<&str>) -> String {
    let seed = seed
        .map(|s| format!(", refresh_token = \"{s}\""))
        .unwrap_or_default();
    format!(
        "[[connections]]\nid = \"{id}\"\nprovider = \"salesforce\"\nbase_url = \"{base}\"\ncredentials = {{ type = \"oauth_refresh_token\", token_url = \"{token_url}\", client_id = \"{DEMO_CLIENT_ID}\", client_secret = \"{DEMO_CLIENT_SECRET}\", scopes = [\"api\", \"refresh_token\"], authorize_url = \"{authorize}\", redirect_uri = \"{CALLBACK_HOST}/connect/{id}/callback\"{seed} }}\n",
        base = sim.http_base_url(),
        token_url = sim.token_url(),
        authorize = sim.authorize_url(),
    )
}

/// Both listeners on free ports, the embedded store, and `rest`.
fn config_with(rest: &str) -> String {
    format!("server = {{ listen = \"127.0.0.1:0\", admin_listen = \"127.0.0.1:0\" }}\nstore = {{ data_dir = \"data\" }}\n{rest}")
}

/// Connections `fresh` (no grant) and `healthy` (a seed), tokens `ops` (read) and
/// `sre-oncall` (admin).
fn config(sim: &SimHandle) -> String {
    let token = |id: &str, token: &str, role: &str| {
        format!(
            "[[admin.tokens]]\nid = \"{id}\"\ntoken_sha256 = \"{}\"\nrole = \"{role}\"\n",
            token_hash(token)
        )
    };
    config_with(&format!(
        "{}{}{}{}",
        connection(sim, "fresh", None),
        connection(sim, "healthy", Some(DEMO_REFRESH_TOKEN)),
        token("ops", READ_TOKEN, "read"),
        token("sre-oncall", SRE_TOKEN, "admin"),
    ))
}

async fn status_of(gh: &Gatehouse, path: &str, token: Option<&str>) -> u16 {
    gh.admin_get_as(path, token).await.status().as_u16()
}

/// Waits until `/status` shows `connection` in credential state `state`.
async fn wait_for_state(gh: &Gatehouse, connection: &str, state: &str) {
    for _ in 0..200 {
        let status: serde_json::Value = gh
            .admin_get_as("/status", Some(READ_TOKEN))
            .await
            .json()
            .await
            .unwrap();
        let found = status["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == connection)
            .map(|c| c["credential"]["state"].clone());
        if found.as_ref().and_then(|s| s.as_str()) == Some(state) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{connection} never reached {state}");
}

/// The log lines (JSON) with `message`.
fn log_lines(gh: &Gatehouse, message: &str) -> Vec<serde_json::Value> {
    gh.logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == message)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_roles_and_the_connect_flow_on_the_real_binary() {
    let sim = Simulator::start(Provider::Salesforce, SimConfig::default())
        .await
        .unwrap();
    let gh = Gatehouse::start(&config(&sim));

    for path in ["/dashboard", "/status", "/connect/x", "/nope"] {
        let response = gh.admin_get_as(path, None).await;
        assert_eq!(response.status().as_u16(), 401, "{path}");
        let challenges: Vec<&str> = response
            .headers()
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert!(
            challenges.contains(&"Basic realm=\"gatehouse admin\"")
                && challenges.iter().any(|c| c.starts_with("Bearer ")),
            "{path}: {challenges:?}"
        );
    }
    assert_eq!(status_of(&gh, "/healthz", None).await, 200);
    assert_eq!(status_of(&gh, "/status", Some(READ_TOKEN)).await, 200);
    assert_eq!(
        status_of(&gh, "/connect/fresh", Some(READ_TOKEN)).await,
        403
    );
    assert_eq!(status_of(&gh, "/connect/nope", Some(READ_TOKEN)).await, 403);

    // No grant yet: the flow starts.
    assert_eq!(status_of(&gh, "/connect/fresh", Some(SRE_TOKEN)).await, 302);
    // A working grant is not replaced unless asked.
    wait_for_state(&gh, "healthy", "ok").await;
    let refused = gh.admin_get_as("/connect/healthy", Some(SRE_TOKEN)).await;
    assert_eq!(refused.status().as_u16(), 409);
    let text = refused.text().await.unwrap();
    assert!(text.contains("/connect/healthy?replace=true"), "{text}");
    assert_eq!(
        status_of(&gh, "/connect/healthy?replace=true", Some(SRE_TOKEN)).await,
        302
    );

    // The whole flow: the provider approves and its redirect (no token) completes it.
    let start = gh.admin_get_as("/connect/fresh", Some(SRE_TOKEN)).await;
    assert_eq!(start.status().as_u16(), 302);
    let authorize = start.headers()["location"].to_str().unwrap().to_owned();
    let no_redirects = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let approved = no_redirects.get(&authorize).send().await.unwrap();
    assert!(approved.status().is_redirection(), "{}", approved.status());
    let callback = approved.headers()["location"].to_str().unwrap();
    let callback = callback.strip_prefix(CALLBACK_HOST).unwrap().to_owned();
    let done = gh.admin_get_as(&callback, None).await;
    assert_eq!(done.status().as_u16(), 200);
    let page = done.text().await.unwrap();
    assert!(
        page.contains("started by sre-oncall") && page.contains(SIM_ORG),
        "{page}"
    );
    wait_for_state(&gh, "fresh", "ok").await;

    let started = log_lines(&gh, "connect flow started");
    assert!(
        started
            .iter()
            .any(|l| l["connection"] == "fresh" && l["admin"] == "sre-oncall"),
        "{started:?}"
    );
    let completed = log_lines(&gh, "connect flow completed");
    assert!(
        completed.iter().any(|l| l["connection"] == "fresh"
            && l["admin"] == "sre-oncall"
            && l["account"] == SIM_ORG),
        "the admin id came back from the stored state: {completed:?}"
    );
    let logs = gh.logs().join("\n");
    for secret in [READ_TOKEN, SRE_TOKEN, ADMIN_TOKEN] {
        assert!(!logs.contains(secret), "a token leaked into the logs");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_admin_tokens_only_the_public_paths_answer_and_the_lock_is_reported() {
    let gh = Gatehouse::start(&config_with(
        "[admin]\npublic_paths = [\"/healthz\", \"/readyz\"]\n",
    ));
    assert_eq!(status_of(&gh, "/healthz", None).await, 200);
    for path in ["/metrics", "/status", "/dashboard", "/connect/x", "/nope"] {
        assert_eq!(status_of(&gh, path, Some(ADMIN_TOKEN)).await, 401, "{path}");
    }
    assert!(
        gh.logs()
            .iter()
            .any(|l| l.contains("WARN") && l.contains("the admin port is locked")),
        "{:#?}",
        gh.logs()
    );
    let (code, out, _) = run_cli(&["check", "--config", "gatehouse.toml"], gh.dir());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("warning: the admin port is locked"), "{out}");
}
