//! A real store outage right after the provider rotated the refresh token (PostgreSQL at
//! 127.0.0.1:5432, db `test`; fails loudly when it is down, never skips).
//!
//! The store runs as its own login role; the outage is that role losing its right to log in
//! and its sessions being terminated (what a failover or a revoked credential looks like),
//! while the token call is in flight.

use super::tests::{start_with, Harness};
use crate::credentials::{to_gateway_error, CredentialError};
use gatehouse_sim::{
    Provider, SimConfig, Simulator, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_USER,
};
use gatehouse_store::testing::pg_url;
use std::time::Duration;
use tokio::time::Instant;
use tokio_postgres::{Client, NoTls};

pub(crate) async fn pg_admin() -> Client {
    let (client, connection) = tokio_postgres::connect(&pg_url(), NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL must be up at {}: {e}", pg_url()));
    tokio::spawn(connection);
    client
}

/// A login role owning a fresh schema; returns (role, schema, url as that role).
async fn role_and_schema(admin: &Client) -> (String, String, String) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (role, schema) = (format!("gh_role_{id}"), format!("gh_test_{id}"));
    let db: String = admin
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; GRANT CREATE ON DATABASE \"{db}\" TO {role};
             CREATE SCHEMA {schema} AUTHORIZATION {role};"
        ))
        .await
        .unwrap();
    let mut url = url::Url::parse(&pg_url()).unwrap();
    url.set_username(&role).unwrap();
    url.set_password(None).unwrap();
    (role, schema, url.to_string())
}

async fn set_outage(admin: &Client, role: &str, down: bool) {
    if down {
        admin
            .batch_execute(&format!(
                "ALTER ROLE {role} NOLOGIN;
                 SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}';"
            ))
            .await
            .unwrap();
    } else {
        admin
            .batch_execute(&format!("ALTER ROLE {role} LOGIN"))
            .await
            .unwrap();
    }
}

fn refresh_calls(sim: &gatehouse_sim::SimHandle) -> u64 {
    sim.token_calls()
        .by_grant_type
        .get("refresh_token")
        .copied()
        .unwrap_or(0)
}

// Real time, on purpose: the test waits on PostgreSQL, another process. A paused clock would
// auto-advance to the next timer whenever the runtime idles on that socket, so the store's
// connect and query timeouts would fire early and the outage would be one the test made up.
// Its waits are bounded (a 2.5 s outage, a 40 s recovery deadline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_tokens_survive_a_store_outage_and_are_used_once_written() {
    let admin = pg_admin().await;
    let (role, schema, url) = role_and_schema(&admin).await;
    let sim = Simulator::start(
        Provider::Salesforce,
        SimConfig {
            rotate_refresh_tokens: Some(true),
            max_refresh_tokens_per_user: Some(1000),
            ..SimConfig::default()
        },
    )
    .await
    .unwrap();
    let seed = sim.issue_refresh_token(DEMO_CLIENT_ID, DEMO_USER);
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("store.key");
    std::fs::write(&key_file, crate::credentials::StoreKey::generate_base64()).unwrap();
    // The seed is stored at start-up; the first refresh (on the first request) is the one
    // that meets the outage, so no still-valid cached token can hide the failure.
    let text = format!(
        r#"
[store]
url = "{url}"
schema = "{schema}"
key_env = "GATEHOUSE_TEST_UNSET_KEY_ENV"
key_file = "{key}"

[[connections]]
id = "sf"
provider = "salesforce"
base_url = "{base}"

[connections.credentials]
type = "oauth_refresh_token"
token_url = "{token_url}"
client_id = "{DEMO_CLIENT_ID}"
client_secret = "{DEMO_CLIENT_SECRET}"
refresh_token = "{seed}"
token_lifetime_secs = 60
refresh_margin_secs = 10
token_timeout_secs = 5
"#,
        key = key_file.display(),
        base = sim.http_base_url(),
        token_url = sim.token_url(),
    );
    let h: Harness = start_with(dir, &text).await;
    assert_eq!(refresh_calls(&sim), 0);

    // The provider answers after 1 s, and the store goes away while it is answering: after
    // the row was read and before the new pair can be written.
    sim.faults().set_latency(Duration::from_millis(1000));
    let h = std::sync::Arc::new(h);
    let during = {
        let h = h.clone();
        tokio::spawn(async move { h.apply().await.map(|(v, _)| v) })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    set_outage(&admin, &role, true).await;
    let err = during.await.unwrap().unwrap_err();
    sim.faults().set_latency(Duration::ZERO);
    assert!(
        matches!(&err, CredentialError::StoreUnavailable { retry_after, .. } if *retry_after >= Duration::from_secs(1)),
        "{err}"
    );
    assert_eq!(refresh_calls(&sim), 1, "the refresh happened, and rotated");
    let rotated = sim.current_refresh_token(DEMO_CLIENT_ID).unwrap();
    assert!(!sim.refresh_token_is_live(&seed));
    let envelope = to_gateway_error(err);
    assert_eq!(envelope.code, "credential_store_unavailable");
    assert!(envelope.message.contains("credential store is unavailable"));
    assert!(envelope.retry_after.is_some());
    assert!(!envelope.message.contains(&rotated) && !envelope.message.contains(&seed));

    // While the store stays down: typed errors, and the dead refresh token is never sent.
    // 2.5 s outlasts the first shared backoff (1 s, jittered to at most 1.2 s), so requests
    // retry the store while it is down; a longer outage only grows the backoff (2 s, 4 s, ...)
    // and with it the real time the recovery below waits.
    let until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < until {
        match h.apply().await {
            Err(CredentialError::StoreUnavailable { .. }) => {}
            other => panic!(
                "expected StoreUnavailable during the outage, got {:?}",
                other.map(|(v, _)| v.len())
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(h.state(), "store_unavailable");
    assert_eq!(refresh_calls(&sim), 1, "no refresh with the old token");
    assert!(h
        .metrics()
        .contains(r#"gatehouse_credential_state{connection="sf",state="store_unavailable"} 1"#));

    // The store returns: the pending pair is written, then used, without another token call.
    set_outage(&admin, &role, false).await;
    let deadline = Instant::now() + Duration::from_secs(40);
    let token2 = loop {
        match h.apply().await {
            Ok((value, _)) => break value,
            Err(CredentialError::StoreUnavailable { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("no recovery: {e}"),
        }
    };
    assert_eq!(
        refresh_calls(&sim),
        1,
        "the pending pair was used, not a new one"
    );
    assert_eq!(sim.token_calls().failures, 0, "never an invalid_grant");
    let manager = h.creds.manager.as_ref().unwrap();
    let stored = manager.store.load("sf").await.unwrap().unwrap();
    assert_eq!(
        stored.refresh_token.as_ref().map(|t| t.expose().to_owned()),
        Some(rotated.clone())
    );
    assert_eq!(sim.current_refresh_token(DEMO_CLIENT_ID), Some(rotated));
    assert_eq!(
        stored
            .access_token
            .as_ref()
            .map(|t| format!("Bearer {}", t.expose())),
        Some(token2)
    );
    assert_eq!(h.state(), "ok");

    // And the next refresh uses the rotated token successfully.
    let (_, applied) = h.apply().await.unwrap();
    assert!(h.creds.on_unauthorized("sf", &applied).await.unwrap());
    assert_eq!(refresh_calls(&sim), 2);
    assert_eq!(sim.token_calls().failures, 0);
    let stored = manager.store.load("sf").await.unwrap().unwrap();
    assert_eq!(
        stored.refresh_token.map(|t| t.expose().to_owned()),
        sim.current_refresh_token(DEMO_CLIENT_ID)
    );

    drop(h);
    admin
        .batch_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}';
             DROP SCHEMA {schema} CASCADE; DROP OWNED BY {role}; DROP ROLE {role};"
        ))
        .await
        .unwrap();
}
